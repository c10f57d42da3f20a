"""Training logs: loss / learning rate / tokens per second on the console (rich) and in experiment trackers.

Transformers reports only loss and learning rate per logging step; throughput is what tells whether
packing, padding-free batches or a bigger batch helped, so :class:`ThroughputLogger` adds
``tokens_per_second`` (non-padding tokens, from ``state.num_input_tokens_seen``) to every log entry. It
is inserted *first* among the trainer's callbacks so TensorBoard/MLflow receive the extra field too.
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

from transformers import TrainerCallback

from bayling.progress import console


def default_report_to(requested: list[str] | None) -> list[str]:
    """Trackers to enable: the requested ones, or (None) TensorBoard when importable (it writes into the run
    directory) and MLflow / W&B only when configured through ``MLFLOW_TRACKING_URI`` / ``WANDB_PROJECT``, so a
    default run never creates a tracking store in the working directory."""
    if requested is not None:
        return [r for r in requested if r != "none"]
    found = []
    if importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None:
        found.append("tensorboard")
    if os.environ.get("MLFLOW_TRACKING_URI") and importlib.util.find_spec("mlflow") is not None:
        found.append("mlflow")
    if os.environ.get("WANDB_PROJECT") and importlib.util.find_spec("wandb") is not None:
        found.append("wandb")
    return found


class ThroughputLogger(TrainerCallback):
    """Adds ``tokens_per_second`` to the logs and prints one rich line per logging step (rank 0 only).

    Args:
        label: stage name shown in front of each line (``sft``, ``cpt``, ``dpo``…).
        progress: show a progress bar (off when ``BAYLING_NO_PROGRESS=1``).
    """

    def __init__(self, label: str = "train", progress: bool = True) -> None:
        self.label = label
        self.progress = progress and os.environ.get("BAYLING_NO_PROGRESS") != "1"
        self._last_time = 0.0
        self._last_tokens = 0
        self.start_tokens = 0
        self._bar: Any = None
        self._task: Any = None
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ lifecycle
    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.perf_counter()
        self._last_tokens = self.start_tokens = state.num_input_tokens_seen
        if self.progress and state.is_world_process_zero:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(self._task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # ------------------------------------------------------------------ logs
    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:
            return
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen
        if tokens > self._last_tokens and now > self._last_time:
            logs["tokens_per_second"] = round((tokens - self._last_tokens) / (now - self._last_time), 1)
        self._last_time, self._last_tokens = now, tokens
        entry = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, int | float)}}
        self.history.append(entry)
        if state.is_world_process_zero:
            parts = [
                f"[bold]{self.label}[/bold] step {state.global_step}/{state.max_steps}",
                f"loss {logs['loss']:.4f}",
            ]
            if "learning_rate" in logs:
                parts.append(f"lr {logs['learning_rate']:.2e}")
            if "tokens_per_second" in logs:
                parts.append(f"{logs['tokens_per_second']:.0f} tok/s")
            msg = "  ".join(parts)
            (self._bar.console if self._bar is not None else console).print(msg)


def install_first(trainer: Any, callback: TrainerCallback) -> None:
    """Put ``callback`` ahead of the reporting integrations so the fields it adds reach them."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # raw dict prints; our line replaces them
    trainer.callback_handler.callbacks.insert(0, callback)
