"""A stand-in for the part of vLLM that :mod:`bayling.engines.vllm` calls, for tests on machines without a GPU.

vLLM needs a CUDA build, so the engine is tested against this fake, installed as ``vllm`` in ``sys.modules``
only inside a test (fixture ``fake_vllm`` in ``conftest.py``). Names, signatures and behaviour follow vLLM
0.33.0 (``vllm/v1/engine/async_llm.py``, ``vllm/engine/arg_utils.py``, ``vllm/sampling_params.py``,
``vllm/outputs.py``, ``vllm/lora/request.py``; read from the released wheel):

* ``AsyncLLM.from_engine_args(engine_args, ...)``; ``AsyncLLM.generate(prompt, sampling_params, request_id,
  *, lora_request=..., ...)`` is an async generator of cumulative ``RequestOutput`` s; ``abort(request_id,
  internal=False)`` ends a running request with a final ``finish_reason="abort"`` output; a ``generate()``
  that is cancelled or closed aborts its own request (``internal=True``), as vLLM does.
* The engine belongs to the event loop it first runs on (vLLM starts its output handler task there).
* ``max_model_len=None`` means the model's own context length (``max_position_embeddings``).
* Keyword-only dataclasses for ``AsyncEngineArgs``/``SamplingParams``: an argument vLLM does not have is a
  ``TypeError``, as with the real classes. ``tests/serve/test_vllm.py`` compares these signatures with the
  installed vLLM when there is one.

Each step of a request takes ``AsyncLLM.step_s`` and produces one token; the text of step ``k`` is
``"t{k} "``, after a first piece naming the prompt's length (``"p{n} "``), so tests can check what the
engine was sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__version__ = "0.33.0"


@dataclasses.dataclass(kw_only=True)
class AsyncEngineArgs:
    """A subset of ``vllm.engine.arg_utils.AsyncEngineArgs`` (all real field names)."""

    model: str = "Qwen/Qwen3-0.6B"
    tokenizer: str | None = None
    dtype: str = "auto"
    seed: int = 0
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.92
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    trust_remote_code: bool = False
    disable_log_stats: bool = False
    enable_lora: bool = False
    max_lora_rank: int = 16
    max_loras: int = 1
    enable_log_requests: bool = False


@dataclasses.dataclass(kw_only=True)
class SamplingParams:
    """A subset of ``vllm.SamplingParams`` (all real field names and defaults)."""

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True


@dataclasses.dataclass
class LoRARequest:
    """``vllm.lora.request.LoRARequest``."""

    lora_name: str
    lora_int_id: int
    lora_path: str = ""


@dataclasses.dataclass
class CompletionOutput:
    """``vllm.outputs.CompletionOutput`` (the fields bayling reads)."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: Any
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class RequestOutput:
    """``vllm.outputs.RequestOutput`` (constructor arguments in vLLM's order)."""

    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int] | None,
        prompt_logprobs: Any,
        outputs: list[CompletionOutput],
        finished: bool,
    ) -> None:
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.prompt_logprobs, self.outputs, self.finished = prompt_logprobs, outputs, finished


@dataclasses.dataclass
class ModelConfig:
    model: str
    max_model_len: int


def _model_context(model: str) -> int:
    config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config)
    return int(config["max_position_embeddings"])


class AsyncLLM:
    """``vllm.v1.engine.async_llm.AsyncLLM``: many requests generating at once on one event loop."""

    step_s = 0.01
    instances: list[AsyncLLM] = []

    def __init__(self, engine_args: AsyncEngineArgs) -> None:
        self.engine_args = engine_args
        self.model_config = ModelConfig(
            engine_args.model, engine_args.max_model_len or _model_context(engine_args.model)
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._abort_events: dict[str, asyncio.Event] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompts: dict[str, list[int]] = {}
        self.sampling: dict[str, SamplingParams] = {}
        self.loras: dict[str, LoRARequest | None] = {}
        self.generated: dict[str, int] = {}
        self.finished: list[str] = []
        self.aborted: list[str] = []  # external aborts (bayling's own abort(request_id) calls)
        self.internal_aborts: list[str] = []  # a cancelled/closed generate() aborting itself
        self.is_shut_down = False

    @classmethod
    def from_engine_args(
        cls,
        engine_args: AsyncEngineArgs,
        start_engine_loop: bool = True,
        usage_context: Any = None,
        stat_loggers: list[Any] | None = None,
    ) -> AsyncLLM:
        engine = cls(engine_args)
        cls.instances.append(engine)
        return engine

    @property
    def errored(self) -> bool:
        return self.is_shut_down

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        elif loop is not self.loop:
            raise RuntimeError("AsyncLLM used from a second event loop (its output handler runs on the first)")

    async def generate(
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        *,
        prompt_text: str | None = None,
        lora_request: LoRARequest | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        trace_headers: Mapping[str, str] | None = None,
        priority: int = 0,
        data_parallel_rank: int | None = None,
        session_id: str | None = None,
        kv_hints: Any = None,
        reasoning_ended: bool | None = None,
        reasoning_parser_kwargs: dict[str, Any] | None = None,
    ):
        self._check_loop()
        if self.is_shut_down:
            raise RuntimeError("EngineDeadError")
        if request_id in self._abort_events:
            raise ValueError(f"request id {request_id} is already running")
        ids = list(prompt["prompt_token_ids"])
        if len(ids) + (sampling_params.max_tokens or 0) > self.model_config.max_model_len:
            raise ValueError(f"prompt + max_tokens exceed max_model_len {self.model_config.max_model_len}")
        aborted = self._abort_events[request_id] = asyncio.Event()
        self.prompts[request_id], self.sampling[request_id] = ids, sampling_params
        self.loras[request_id] = lora_request
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        text, tokens = f"p{len(ids)} ", []
        try:
            for k in range(sampling_params.max_tokens or 16):
                try:
                    await asyncio.wait_for(aborted.wait(), self.step_s)
                except (TimeoutError, asyncio.TimeoutError):
                    pass
                if aborted.is_set():
                    out = CompletionOutput(0, text, list(tokens), None, None, "abort")
                    yield RequestOutput(request_id, prompt_text, ids, None, [out], True)
                    return
                text += f"t{k} "
                tokens.append(100 + k)
                self.generated[request_id] = len(tokens)
                done = len(tokens) == sampling_params.max_tokens
                out = CompletionOutput(0, text, list(tokens), None, None, "length" if done else None)
                yield RequestOutput(request_id, prompt_text, ids, None, [out], done)
            self.finished.append(request_id)
        except (asyncio.CancelledError, GeneratorExit):
            await self.abort(request_id, internal=True)
            raise
        finally:
            self.in_flight -= 1
            self._abort_events.pop(request_id, None)

    async def abort(self, request_id: str | Iterable[str], internal: bool = False) -> None:
        self._check_loop()
        for rid in (request_id,) if isinstance(request_id, str) else list(request_id):
            (self.internal_aborts if internal else self.aborted).append(rid)
            event = self._abort_events.get(rid)
            if event is not None:
                event.set()

    def shutdown(self, timeout: float | None = None) -> None:
        self.is_shut_down = True


def modules() -> dict[str, types.ModuleType]:
    """The ``sys.modules`` entries that make ``import vllm`` (and the submodules bayling uses) find this fake."""
    vllm = types.ModuleType("vllm")
    vllm.__version__ = __version__
    vllm.AsyncEngineArgs, vllm.SamplingParams = AsyncEngineArgs, SamplingParams
    vllm.AsyncLLMEngine = AsyncLLM  # vllm/engine/async_llm_engine.py: AsyncLLMEngine = AsyncLLM
    vllm.RequestOutput, vllm.CompletionOutput = RequestOutput, CompletionOutput
    async_llm = types.ModuleType("vllm.v1.engine.async_llm")
    async_llm.AsyncLLM = AsyncLLM
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    out = {"vllm": vllm, "vllm.v1.engine.async_llm": async_llm, "vllm.lora.request": request}
    for parent in ("vllm.v1", "vllm.v1.engine", "vllm.lora"):
        out[parent] = types.ModuleType(parent)
    vllm.v1, out["vllm.v1"].engine, out["vllm.v1.engine"].async_llm = out["vllm.v1"], out["vllm.v1.engine"], async_llm
    vllm.lora, out["vllm.lora"].request = out["vllm.lora"], request
    return out
