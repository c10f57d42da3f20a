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

import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bayling.chat import conversation_ids, format_for_tokenizer, render, stop_token_ids
from bayling.engines import GenerationParams
from bayling.errors import require
from bayling.models import load_model, load_tokenizer


class TransformersEngine:
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
        batch_size: int = 8,
        model_name: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.tokenizer = load_tokenizer(model_path, trust_remote_code)
        self.tokenizer.padding_side = "left"
        self.model = load_model(model_path, dtype, device, adapter, trust_remote_code)
        self.format = format_for_tokenizer(chat_format, self.tokenizer)
        self.stop_ids = stop_token_ids(self.format, self.tokenizer)
        self.batch_size = batch_size
        self.model_name = model_name or Path(str(adapter or model_path)).name
        self._lock = threading.Lock()  # one generate() at a time on a shared model
        self._count_lock = threading.Lock()
        self._count_tokenizer: Any = None  # made on first use (the server's token limits), see count_tokens

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

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` (special tokens written as text count as one).

        Safe to call from another thread while a generation runs: it uses a private copy of the
        tokenizer, because a fast tokenizer switching padding on and off in two threads at once fails with
        "Already borrowed".
        """
        with self._count_lock:
            if self._count_tokenizer is None:
                self._count_tokenizer = copy.deepcopy(self.tokenizer)
            return len(self._count_tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt_tokens(self, conversation: Sequence[dict[str, Any]]) -> int:
        """Number of tokens of the prompt for ``conversation`` (thread-safe, like :meth:`count_tokens`)."""
        with self._count_lock:
            if self._count_tokenizer is None:
                self._count_tokenizer = copy.deepcopy(self.tokenizer)
            return len(conversation_ids(conversation, self.format, self._count_tokenizer))

    def generate(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        params: GenerationParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Answer each conversation; batches are formed from prompts of similar length.

        Args:
            conversations: OpenAI-style message lists ending with a user turn.
            params: generation parameters (greedy by default).
            progress: called with the number of conversations finished after each batch.

        Returns:
            One reply per conversation, in input order, stop string removed.
        """
        return [r["text"] for r in self.generate_detailed(conversations, params, progress)]

    def generate_detailed(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        params: GenerationParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Like :meth:`generate`, with what an OpenAI response reports about each reply.

        Returns:
            One dict per conversation: ``text``, ``prompt_tokens``, ``completion_tokens`` and
            ``finish_reason`` (``stop`` when the model ended its turn, ``length`` when it ran into
            ``max_new_tokens``).
        """
        torch = require("torch", "train")
        params = params or GenerationParams()
        prompts = self.prompt_ids(conversations)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[dict[str, Any]] = [{} for _ in prompts]
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self._batch([prompts[i] for i in idx])
                gen = self.model.generate(**enc, **self._gen_kwargs(params))
                new = gen[:, enc["input_ids"].shape[1] :]
                n_prompt = enc["attention_mask"].sum(dim=1).tolist()
                for i, row, n in zip(idx, new, n_prompt, strict=True):
                    out[i] = self._finish(row.tolist(), int(n))
                if progress is not None:
                    progress(len(idx))
        return out

    def _finish(self, ids: list[int], n_prompt: int) -> dict[str, Any]:
        reason = "length"
        for j, t in enumerate(ids):
            if t in self.stop_ids:
                ids, reason = ids[:j], "stop"
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return {"text": text, "prompt_tokens": n_prompt, "completion_tokens": len(ids), "finish_reason": reason}

    def _decode(self, ids: list[int]) -> str:
        return self._finish(ids, 0)["text"]

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
    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        stop: Sequence[str] = ("\n",),
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Continue each raw text prompt, cut at the first ``stop`` string (batched like :meth:`generate`).

        The prompt is tokenized with the tokenizer's own special tokens (``add_special_tokens=True``): BOS
        where the model's tokenizer adds one (Gemma, Llama), none where it does not (Qwen), i.e. the way the
        model saw text in pre-training. A row stops at EOS, at the chat format's stop token, or at a ``stop``
        string (transformers' ``stop_strings``).

        Returns:
            One continuation per prompt, in input order, without the stop string, stripped.
        """
        from bayling.engines import cut_at_stop

        torch = require("torch", "train")
        params = params or GenerationParams()
        kw = self._gen_kwargs(params)
        kw["eos_token_id"] = sorted({*self.stop_ids, self.tokenizer.eos_token_id} - {None})
        if stop:
            kw.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        out = [""] * len(prompts)
        with self._lock, torch.inference_mode():
            ids = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            if params.seed is not None:
                torch.manual_seed(params.seed)
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(self.device)
                gen = self.model.generate(**enc, **kw)
                for i, row in zip(idx, gen[:, enc["input_ids"].shape[1] :], strict=True):
                    out[i] = cut_at_stop(self.tokenizer.decode(row, skip_special_tokens=True), stop)
                if progress is not None:
                    progress(len(idx))
        return out
