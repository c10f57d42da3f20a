"""The transformers engine: batched greedy/sampled generation on CPU or GPU.

Prompts are token ids from :func:`bayling.chat.conversation_ids` (BOS and the format's control tokens
special, message text as plain text, so a user cannot forge a turn), left-padded, and generation stops on
the format's stop token.

Besides the :class:`~bayling.engines.Engine` protocol (``generate``/``stream``) it offers what the
HTTP server needs for per-request limits and OpenAI ``usage``: :meth:`generate_detailed` (token counts
and finish reasons), :meth:`count_prompt_tokens`, :meth:`count_tokens` and :attr:`context_length`.
A stream stops generating as soon as its consumer closes it (a client that disconnects must not keep
the model busy until ``max_new_tokens``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bayling.chat import conversation_ids, render
from bayling.engines import GenerationParams
from bayling.engines.common import DEFAULT_BATCH_SIZE, Conversations, HFTokenizerEngine, Progress
from bayling.errors import require
from bayling.models import load_model

DECODERS = ("fast", "generate")
"""The transformers engine's decoding paths for greedy requests (``engine_options: {decode: ...}``)."""


class TransformersEngine(HFTokenizerEngine):
    """Generate with a Hugging Face causal LM (optionally with a LoRA adapter).

    Args:
        model_path: HF model directory (see :func:`bayling.models.resolve_model`).
        adapter: optional PEFT adapter directory.
        chat_format: format name or ``auto``.
        dtype: weights dtype.
        device: ``auto``, ``cpu``, ``cuda``…
        batch_size: conversations per forward batch in :meth:`generate`.
        model_name: the name reported to clients (default: the adapter's or model's directory name).
        trust_remote_code: let transformers run the model's own code (``model.trust_remote_code``).
        decode: ``fast`` (greedy requests go through :func:`bayling.engines.decode.greedy_generate`: shared
            prompt prefixes computed once, finished rows leave the batch; same greedy outputs) or ``generate``
            (always ``model.generate``, the path before it, kept to measure against).
    """

    def __init__(
        self,
        model_path: str | Path,
        adapter: str | Path | None = None,
        chat_format: str = "auto",
        dtype: str = "bfloat16",
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        model_name: str | None = None,
        trust_remote_code: bool = False,
        decode: str = "fast",
    ) -> None:
        from bayling.errors import ConfigError

        if decode not in DECODERS:
            raise ConfigError(f"transformers engine: decode={decode!r}; choose from {', '.join(DECODERS)}")
        self._load_tokenizer(model_path, adapter, chat_format, model_name, trust_remote_code)
        self.tokenizer.padding_side = "left"
        self.model = load_model(model_path, dtype, device, adapter, trust_remote_code)
        self.batch_size = batch_size
        self.decode = decode
        self.screen_head: bool | None = None  # decode.greedy_generate's screen_head (None: where bf16 is native)
        self._lock = threading.Lock()  # one generate() at a time on a shared model

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def context_length(self) -> int:
        """Longest prompt + reply the model was built for (``max_position_embeddings``)."""
        cfg = self.model.config
        cfg = getattr(cfg, "text_config", None) or cfg
        return int(getattr(cfg, "max_position_embeddings", None) or 2048)

    def _gen_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=None)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def prompts(self, conversations: Sequence[Sequence[dict[str, Any]]]) -> list[str]:
        """The rendered prompt strings (for display; generation uses :meth:`prompt_ids`)."""
        return [render(c, self.format, add_generation_prompt=True) for c in conversations]

    def prompt_ids(self, conversations: Sequence[Sequence[dict[str, Any]]]) -> list[list[int]]:
        """The prompts' token ids (message text as plain text, see :func:`bayling.chat.conversation_ids`)."""
        return [conversation_ids(c, self.format, self.tokenizer) for c in conversations]

    def _batch(self, ids: Sequence[list[int]]) -> Any:
        """Left-padded ``input_ids`` + ``attention_mask`` tensors on the model's device."""
        return self.tokenizer.pad({"input_ids": list(ids)}, padding=True, return_tensors="pt").to(self.device)

    def _generate_ids(
        self,
        ids: Sequence[list[int]],
        params: GenerationParams,
        kw: dict[str, Any],
        progress: Progress,
        stop: Sequence[str] = (),
    ) -> list[list[int]]:
        """The new token ids after each prompt, in input order, each at most its limit (``params.limits``).

        Greedy requests take :func:`~bayling.engines.decode.greedy_generate` when the model allows it (``decode``
        ``fast``); the rest ``model.generate(**kw)`` on batches of prompts of similar length (left-padded), run to
        the batch's largest limit and cut to each row's own (greedy tokens do not depend on the limit).
        ``progress(n)`` is called after each batch of ``n``. ``params.seed`` seeds torch once, with the model held.
        """
        torch = require("torch", "train")
        from bayling.engines import decode

        limits = params.limits(len(ids))
        with self._lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            if params.temperature == 0 and self.decode == "fast" and decode.supports(self.model):
                return decode.greedy_generate(
                    self.model,
                    ids,
                    limits,
                    set(kw["eos_token_id"]),
                    self.tokenizer.pad_token_id,
                    self.batch_size,
                    self.tokenizer,
                    stop,
                    progress,
                    loop_span=params.loop_span,
                    screen_head=self.screen_head,
                )
            if stop:
                kw = {**kw, "stop_strings": list(stop), "tokenizer": self.tokenizer}
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            out: list[list[int]] = [[] for _ in ids]
            check = decode.StopCheck(set(kw["eos_token_id"]), stop, self.tokenizer)
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self._batch([ids[i] for i in idx])
                gen = self.model.generate(**enc, **{**kw, "max_new_tokens": max(limits[i] for i in idx)})
                for i, row in zip(idx, gen[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
                    out[i] = (
                        decode.replay(row, limits[i], check, params.loop_span)
                        if params.loop_span
                        else row[: limits[i]]
                    )
                if progress is not None:
                    progress(len(idx))
        return out

    def _answer(
        self, conversations: Conversations, params: GenerationParams, progress: Progress
    ) -> list[dict[str, Any]]:
        """Replies generated in batches of prompts of similar length, cut at the format's stop token."""
        prompts = self.prompt_ids(conversations)
        new = self._generate_ids(prompts, params, self._gen_kwargs(params), progress)
        return [self._finish(row, len(p)) for row, p in zip(new, prompts, strict=True)]

    def _finish(self, ids: list[int], n_prompt: int) -> dict[str, Any]:
        reason = "length"
        for j, t in enumerate(ids):
            if t in self.stop_ids:
                ids, reason = ids[:j], "stop"
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return {"text": text, "prompt_tokens": n_prompt, "completion_tokens": len(ids), "finish_reason": reason}

    def stream(self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield text pieces of the reply as they are generated (transformers' TextIteratorStreamer).

        Closing the iterator early (``.close()``, or dropping it) stops the generation at the next
        token; an error inside the generation thread is re-raised here instead of hanging the reader.
        """
        transformers = require("transformers", "train")
        torch = require("torch", "train")
        params = params or GenerationParams()
        enc = self._batch(self.prompt_ids([conversation]))
        streamer = transformers.TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()

        class _Cancelled(transformers.StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        kwargs = dict(
            **enc,
            **self._gen_kwargs(params),
            streamer=streamer,
            stopping_criteria=transformers.StoppingCriteriaList([_Cancelled()]),
        )
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock, torch.inference_mode():
                    if params.seed is not None:
                        torch.manual_seed(params.seed)
                    self.model.generate(**kwargs)
            except BaseException as e:  # surfaced to the reader below
                failure.append(e)
                streamer.text_queue.put(streamer.stop_signal)

        thread = threading.Thread(target=work, daemon=True, name="bayling-hf-stream")
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            cancel.set()
            thread.join()
        if failure:
            raise failure[0]

    # -- raw-text completion (few-shot prompts of base models; no chat template) -------------------------
    def _continue(
        self, prompts: Sequence[str], params: GenerationParams, stop: list[str], progress: Progress
    ) -> list[str]:
        """Continuations batched like :meth:`generate`.

        The prompt is tokenized with the tokenizer's own special tokens (``add_special_tokens=True``): BOS
        where the model's tokenizer adds one (Gemma, Llama), none where it does not (Qwen), i.e. the way the
        model saw text in pre-training. A row stops at EOS, at the chat format's stop token, or at a ``stop``
        string (transformers' ``stop_strings``).
        """
        kw = self._gen_kwargs(params)
        kw["eos_token_id"] = sorted({*self.stop_ids, self.tokenizer.eos_token_id} - {None})
        ids = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        return [
            self.tokenizer.decode(row, skip_special_tokens=True)
            for row in self._generate_ids(ids, params, kw, progress, stop)
        ]
