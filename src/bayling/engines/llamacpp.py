"""The llama.cpp engine: GGUF models (optionally with a LoRA adapter GGUF) on CPU via llama-cpp-python.

llama.cpp's own chat formats are deliberately NOT used: the prompt's token ids come from
:func:`bayling.chat.conversation_ids` (the layout the model was tuned on; the format's control strings,
BOS included, as special tokens, message text tokenized with ``special=False`` so that a user cannot
forge a turn; ``add_bos=False`` so that llama.cpp adds no second BOS) and are passed to
``create_completion`` with the format's stop string. On Gemma-3-270M this is ~7x faster than transformers on 2 CPU cores
(see ``bench/serve_throughput.py``).

Example:
    >>> engine = LlamaCppEngine()                      # the embedded Gemma-3-270M GGUF
    >>> engine.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=8))
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bayling.chat import FORMATS, ChatFormat, conversation_ids, get_format
from bayling.engines import GenerationParams
from bayling.engines.common import Conversations, EngineBase, Progress
from bayling.errors import ModelError, require


class LlamaTokens:
    """The llama.cpp vocabulary as a :class:`bayling.chat.TextTokenizer`."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def encode_text(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=False)

    def special_token_id(self, text: str) -> int | None:
        ids = self.llm.tokenize(text.encode(), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 and self.encode_text(text) != ids else None


class LlamaCppEngine(EngineBase):
    """Generate with a GGUF model through llama-cpp-python.

    Args:
        model_path: a ``.gguf`` file; ``None`` uses the embedded Gemma-3-270M
            (:func:`bayling.models.embedded_gguf`).
        lora_path: optional LoRA adapter in GGUF form (``convert_lora_to_gguf.py`` output).
        chat_format: a :mod:`bayling.chat` format name, or ``auto`` (detected from the GGUF vocabulary).
        n_ctx: context window to allocate (prompt + reply).
        n_threads: CPU threads; default: llama-cpp-python's (half the cores). All cores is ~35% faster on an
            idle machine, but llama.cpp's threads spin on barriers, so on a shared, busy machine it can be
            5x slower than one thread; set ``engine_options.n_threads`` on dedicated hardware.
        n_gpu_layers: layers to offload when llama.cpp was built with GPU support.
        model_name: the name reported to clients.
        seed: sampling seed used when a request gives none.
        prompt_cache: keep the evaluated prompt between requests, so a request that shares a prefix with the
            previous one (a chat's next turn) starts where it left off. A prefix read from the cache is computed in
            other shapes than a fresh one, and a greedy output can change (seen on the embedded Gemma: "Danke, ich
            danke." fresh, "Danke, liebe Grüße." after the same prompt), so the evaluation turns it off: each
            request then starts from an empty context and its output depends on nothing before it.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        lora_path: str | Path | None = None,
        chat_format: str = "auto",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        model_name: str | None = None,
        seed: int = 0,
        prompt_cache: bool = True,
    ) -> None:
        llama_cpp = require("llama_cpp", "llamacpp")
        if model_path is None:
            from bayling.models import embedded_gguf

            model_path = embedded_gguf()
        model_path = Path(model_path)
        if model_path.suffix != ".gguf" or not model_path.is_file():
            raise ModelError(f"the llama.cpp engine needs a .gguf file; {model_path} is not one")
        if lora_path is not None and not Path(lora_path).is_file():
            raise ModelError(f"LoRA adapter GGUF not found: {lora_path}")
        self.llm = llama_cpp.Llama(
            model_path=str(model_path),
            lora_path=str(lora_path) if lora_path else None,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
            verbose=False,
        )
        self.format = self._detect_format() if chat_format == "auto" else get_format(chat_format)
        self.tokens = LlamaTokens(self.llm)
        self.model_name = model_name or (Path(lora_path).stem if lora_path else model_path.stem)
        self.model_path, self.lora_path = model_path, lora_path
        self.seed = seed
        self.prompt_cache = prompt_cache
        self._lock = threading.Lock()  # a llama context serves one sequence at a time

    # -- formats and token counts ------------------------------------------------------------------
    def _is_single_token(self, text: str) -> bool:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True)) == 1

    def _detect_format(self) -> ChatFormat:
        """Same rule as :func:`bayling.chat.detect_format`, read from the GGUF vocabulary."""
        for name, markers in (
            ("gemma", ("<start_of_turn>", "<end_of_turn>")),
            ("llama3", ("<|start_header_id|>", "<|eot_id|>")),
            ("chatml", ("<|im_start|>", "<|im_end|>")),
        ):
            if all(self._is_single_token(m) for m in markers):
                return FORMATS[name]
        bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode(errors="replace")
        eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode(errors="replace")
        return FORMATS["bayling_v1"].with_special_tokens(bos=bos, eos=eos)

    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def _prompt_ids(self, conversation: Sequence[dict[str, Any]]) -> list[int]:
        return conversation_ids(conversation, self.format, self.tokens)

    def count_prompt_tokens(self, conversation: Sequence[dict[str, Any]]) -> int:
        return len(self._prompt_ids(conversation))

    # -- generation --------------------------------------------------------------------------------
    def _completion_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        # top_k/min_p off so that sampling means what it means in the other engines (temperature + top_p)
        return {
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p if params.temperature > 0 else 1.0,
            "top_k": 0,
            "min_p": 0.0,
            "repeat_penalty": 1.0,
            "stop": [self.format.stop] if self.format.stop else [],
            "seed": (self.seed if params.seed is None else params.seed) & 0xFFFFFFFF,  # llama.cpp seeds are uint32
        }

    def _one_by_one(
        self, prompts: Iterable[list[int]], kws: Iterable[dict[str, Any]], progress: Progress
    ) -> list[Any]:
        """llama.cpp's completion of each prompt (token ids) with its own keyword arguments, one after another
        (llama.cpp keeps the shared prompt prefix cached); ``progress(1)`` after each."""
        out = []
        for ids, kw in zip(prompts, kws, strict=True):
            with self._lock:
                if not self.prompt_cache:
                    self.llm.reset()
                out.append(self.llm.create_completion(ids, **kw))
            if progress is not None:
                progress(1)
        return out

    def _answer(
        self, conversations: Conversations, params: GenerationParams, progress: Progress
    ) -> list[dict[str, Any]]:
        """Replies one after another, with llama.cpp's own token counts."""
        prompts = (self._prompt_ids(conv) for conv in conversations)
        kws = (self._completion_kwargs(p) for p in params.per_request(len(conversations)))
        out = []
        for r in self._one_by_one(prompts, kws, progress):
            choice, usage = r["choices"][0], r["usage"]
            out.append(
                {
                    "text": choice["text"].strip(),
                    "prompt_tokens": usage["prompt_tokens"],
                    "completion_tokens": usage["completion_tokens"],
                    "finish_reason": choice["finish_reason"] or "stop",
                }
            )
        return out

    def stream(self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield pieces of the reply; closing the iterator stops llama.cpp at the next token."""
        params = params or GenerationParams()
        ids = self._prompt_ids(conversation)
        first = True
        with self._lock:
            chunks = self.llm.create_completion(ids, stream=True, **self._completion_kwargs(params))
            try:
                for chunk in chunks:
                    text = chunk["choices"][0]["text"]
                    if first:  # the reply's leading whitespace, like generate()'s strip()
                        text = text.lstrip()
                        first = not text
                    if text:
                        yield text
            finally:
                chunks.close()

    # -- raw-text completion (few-shot prompts of base models; no chat template) -------------------------
    def _continue(
        self, prompts: Sequence[str], params: GenerationParams, stop: list[str], progress: Progress
    ) -> list[str]:
        """Continuations one prompt after another.

        ``tokenize(add_bos=True, special=False)`` adds BOS only when the GGUF says the model wants one
        (``tokenizer.ggml.add_bos_token``), the same rule as the transformers engine's
        ``add_special_tokens=True``; text that looks like a special token stays text.
        """
        ids = (self.llm.tokenize(p.encode(), add_bos=True, special=False) for p in prompts)
        kws = ({**self._completion_kwargs(p), "stop": stop} for p in params.per_request(len(prompts)))
        return [r["choices"][0]["text"] for r in self._one_by_one(ids, kws, progress)]
