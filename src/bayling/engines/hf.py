"""The transformers engine: batched greedy/sampled generation on CPU or GPU.

Prompts are rendered by :mod:`bayling.chat` and tokenized without adding special tokens (the
rendered string already holds BOS), left-padded, and generation stops on the format's stop token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bayling.chat import format_for_tokenizer, render, stop_token_ids
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
    """

    def __init__(
        self,
        model_path: str | Path,
        adapter: str | Path | None = None,
        chat_format: str = "auto",
        dtype: str = "bfloat16",
        device: str = "auto",
        batch_size: int = 8,
        model_name: str | None = None,
    ) -> None:
        self.tokenizer = load_tokenizer(model_path)
        self.tokenizer.padding_side = "left"
        self.model = load_model(model_path, dtype=dtype, device=device, adapter=adapter)
        self.format = format_for_tokenizer(chat_format, self.tokenizer)
        self.stop_ids = stop_token_ids(self.format, self.tokenizer)
        self.batch_size = batch_size
        self.model_name = model_name or Path(str(adapter or model_path)).name
        self._lock = threading.Lock()  # one generate() at a time on a shared model

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def _gen_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def prompts(self, conversations: Sequence[Sequence[dict[str, Any]]]) -> list[str]:
        return [render(c, self.format, add_generation_prompt=True) for c in conversations]

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
        torch = require("torch", "train")
        params = params or GenerationParams()
        prompts = self.prompts(conversations)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(self.device)
                gen = self.model.generate(**enc, **self._gen_kwargs(params))
                new = gen[:, enc["input_ids"].shape[1] :]
                for i, row in zip(idx, new, strict=True):
                    out[i] = self._decode(row.tolist())
                if progress is not None:
                    progress(len(idx))
        return out

    def _decode(self, ids: list[int]) -> str:
        for j, t in enumerate(ids):
            if t in self.stop_ids:
                ids = ids[:j]
                break
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def stream(self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield text pieces of the reply as they are generated (transformers' TextIteratorStreamer)."""
        transformers = require("transformers", "train")
        params = params or GenerationParams()
        prompt = self.prompts([conversation])[0]
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = transformers.TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**enc, **self._gen_kwargs(params), streamer=streamer)

        def work() -> None:
            with self._lock:
                self.model.generate(**kwargs)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        for piece in streamer:
            if piece:
                yield piece
        thread.join()
