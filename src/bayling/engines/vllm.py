"""The vLLM engine (GPU; optional extra ``pip install 'bayling[vllm]'``).

vLLM batches and pages the KV cache itself, so :meth:`VLLMEngine.generate` hands it the whole list of
conversations at once. Prompts are rendered by :mod:`bayling.chat` and passed as token ids
(``add_special_tokens=False``: the rendered string already holds BOS), never through vLLM's own
chat templates, so the server prompts exactly as training did. A LoRA adapter directory (PEFT
format, what ``bayling train`` writes) is served with ``enable_lora``.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bayling.chat import format_for_tokenizer, render, stop_token_ids
from bayling.engines import GenerationParams
from bayling.errors import ModelError, require

_REQUEST_IDS = itertools.count()


class VLLMEngine:
    """Generate with vLLM's offline ``LLM`` (continuous batching on one or more GPUs).

    Args:
        model_path: HF model directory.
        adapter: optional PEFT LoRA adapter directory.
        chat_format: format name or ``auto``.
        dtype: ``bfloat16``, ``float16``, ``float32`` or ``auto``.
        device: kept for config compatibility; vLLM needs a GPU (``cpu`` is refused with a clear error).
        model_name: the name reported to clients.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights + KV cache).
        max_model_len: context window; default: the model's own.
        tensor_parallel_size: GPUs to shard the model over.
        max_lora_rank: largest LoRA rank to accept when an adapter is given.
        seed: sampling seed used when a request gives none.
        **_ignored: transformers-only options (``batch_size``) are accepted and ignored.
    """

    batched = True
    """``generate`` runs several conversations through the model together."""

    def __init__(
        self,
        model_path: str | Path,
        adapter: str | Path | None = None,
        chat_format: str = "auto",
        dtype: str = "bfloat16",
        device: str = "auto",
        model_name: str | None = None,
        gpu_memory_utilization: float = 0.5,
        max_model_len: int | None = 4096,
        tensor_parallel_size: int = 1,
        max_lora_rank: int = 64,
        seed: int = 0,
        **_ignored: Any,
    ) -> None:
        if device == "cpu":
            raise ModelError("the vLLM engine runs on GPUs; use --engine transformers or llamacpp on CPU")
        vllm = require("vllm", "vllm")
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=str(model_path),
            tokenizer=str(model_path),
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            enable_lora=adapter is not None,
            max_lora_rank=max_lora_rank,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.format = format_for_tokenizer(chat_format, self.tokenizer)
        self.stop_ids = stop_token_ids(self.format, self.tokenizer)
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.model_name = model_name or Path(str(adapter or model_path)).name
        self.seed = seed
        self._lock = threading.Lock()  # LLM is not thread-safe; batching happens inside one call
        self._count_lock = threading.Lock()
        self._count_tokenizer: Any = None

    @property
    def context_length(self) -> int:
        return int(self.llm.llm_engine.model_config.max_model_len)

    def count_tokens(self, text: str) -> int:
        """Token count, on a private tokenizer copy (safe next to a running generation; see the hf engine)."""
        with self._count_lock:
            if self._count_tokenizer is None:
                self._count_tokenizer = copy.deepcopy(self.tokenizer)
            return len(self._count_tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt(self, conversation: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
        text = render(conversation, self.format, add_generation_prompt=True)
        return {"prompt_token_ids": self.tokenizer(text, add_special_tokens=False)["input_ids"]}

    def count_prompt_tokens(self, conversation: Sequence[dict[str, Any]]) -> int:
        return self.count_tokens(render(conversation, self.format, add_generation_prompt=True))

    def _sampling(self, params: GenerationParams, **extra: Any) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            seed=self.seed if params.seed is None else params.seed,
            stop_token_ids=self.stop_ids,
            skip_special_tokens=True,
            **extra,
        )

    def generate_detailed(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        params: GenerationParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Answer all conversations in one vLLM call; dicts as in the transformers engine."""
        params = params or GenerationParams()
        prompts = [self._prompt(c) for c in conversations]
        with self._lock:
            outs = self.llm.generate(prompts, self._sampling(params), lora_request=self.lora, use_tqdm=False)
        results = []
        for prompt, out in zip(prompts, outs, strict=True):
            o = out.outputs[0]
            results.append(
                {
                    "text": o.text.strip(),
                    "prompt_tokens": len(prompt["prompt_token_ids"]),
                    "completion_tokens": len(o.token_ids),
                    "finish_reason": "length" if o.finish_reason == "length" else "stop",
                }
            )
        if progress is not None:
            progress(len(results))
        return results

    def generate(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        params: GenerationParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Answer each conversation; returns the replies in input order."""
        return [r["text"] for r in self.generate_detailed(conversations, params, progress)]

    def stream(self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield pieces of one reply by stepping vLLM's engine; closing the iterator aborts the request."""
        params = params or GenerationParams()
        engine = self.llm.llm_engine
        request_id = f"bayling-{next(_REQUEST_IDS)}"
        sent = 0
        with self._lock:
            engine.add_request(request_id, self._prompt(conversation), self._sampling(params), lora_request=self.lora)
            finished = False
            try:
                while not finished and engine.has_unfinished_requests():
                    for out in engine.step():
                        if out.request_id != request_id:
                            continue
                        text = out.outputs[0].text  # cumulative
                        piece = text[sent:]
                        if sent == 0:
                            piece = piece.lstrip()
                        sent = len(text) if piece else sent
                        if piece:
                            yield piece
                        finished = out.finished
            finally:
                if not finished:
                    engine.abort_request([request_id])

    # -- raw-text completion (few-shot prompts of base models; no chat template) -------------------------
    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        stop: Sequence[str] = ("\n",),
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Continue all raw text prompts in one vLLM call, cut at the first ``stop`` string.

        Token ids come from the tokenizer with its own special tokens (``add_special_tokens=True``: BOS
        where the model's tokenizer adds one), as in the transformers engine.

        Returns:
            One continuation per prompt, in input order, without the stop string, stripped.
        """
        from bayling.engines import cut_at_stop

        params = params or GenerationParams()
        reqs = [{"prompt_token_ids": self.tokenizer(p, add_special_tokens=True)["input_ids"]} for p in prompts]
        with self._lock:
            outs = self.llm.generate(
                reqs, self._sampling(params, stop=list(stop)), lora_request=self.lora, use_tqdm=False
            )
        if progress is not None:
            progress(len(outs))
        return [cut_at_stop(o.outputs[0].text, stop) for o in outs]
