"""Experiment trackers: ``train.report_to`` as transformers takes it, and the eval scores in the same tracker run.

Transformers' own integrations log the training (``tensorboard``, ``mlflow``, ``wandb``, ...; the names of
``TrainingArguments.report_to``). The callback of :func:`run_recorder` notes, when SFT starts and ends, which tracker run
that was (TensorBoard log directory, MLflow tracking URI + run id, W&B run id) in ``train/trackers.json``;
the eval stage then calls :func:`log_eval_metrics`, which reopens those runs and adds the scores
(``eval/<system>/<direction>/<metric>`` and ``eval/<system>/average/<metric>``) at the last training step,
so one run shows the loss curve and the BLEU/chrF++ it led to.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from bayling.errors import ConfigError

log = logging.getLogger(__name__)

TRACKERS = (
    "tensorboard",
    "mlflow",
    "wandb",
    "trackio",
    "comet_ml",
    "neptune",
    "azure_ml",
    "codecarbon",
    "clearml",
    "dagshub",
    "flyte",
    "dvclive",
    "swanlab",
)
"""What ``train.report_to`` accepts (transformers' integrations), besides ``all`` and ``none``."""

_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "comet_ml": ("comet_ml",), "azure_ml": ("azureml",)}


def check_report_to(requested: list[str] | None) -> None:
    """Fail on an unknown or uninstalled tracker, naming the config key (before any model is loaded)."""
    for name in requested or []:
        if name in ("all", "none"):
            continue
        if name not in TRACKERS:
            raise ConfigError(
                f"train.report_to: unknown tracker {name!r}; choose from {', '.join(TRACKERS)}, all, none"
            )
        modules = _MODULES.get(name, (name,))
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            raise ConfigError(f"train.report_to: {name} is not installed (pip install {modules[0]})")


def run_recorder(path: str | Path) -> Any:
    """A ``TrainerCallback`` writing ``path`` (``trackers.json``): which tracker runs SFT logged to (rank 0 only).

    It runs after transformers' integration callbacks, so the MLflow/W&B run exists when training starts.
    """
    from transformers import TrainerCallback

    class RunRecorder(TrainerCallback):
        def __init__(self) -> None:
            self.path = Path(path)
            self.info: dict[str, Any] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.info = {"report_to": list(args.report_to or [])}
            if "mlflow" in self.info["report_to"]:
                import mlflow

                run = mlflow.active_run()
                if run is not None:
                    self.info["mlflow"] = {
                        "tracking_uri": mlflow.get_tracking_uri(),
                        "run_id": run.info.run_id,
                        "experiment_id": run.info.experiment_id,
                    }
            if "wandb" in self.info["report_to"]:  # pragma: no cover - wandb is not installed in the tests
                import wandb

                if wandb.run is not None:
                    self.info["wandb"] = {"id": wandb.run.id, "project": wandb.run.project, "entity": wandb.run.entity}

        def on_train_end(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            if "tensorboard" in self.info.get("report_to", []):
                log_dir = os.environ.get("TENSORBOARD_LOGGING_DIR")
                if not log_dir:  # transformers' default: OUTPUT_DIR/runs/<date>_<host>; the newest is this run's
                    runs = sorted(Path(args.output_dir, "runs").glob("*"), key=lambda p: p.stat().st_mtime)
                    log_dir = str(runs[-1]) if runs else None
                if log_dir:
                    self.info["tensorboard"] = {"log_dir": str(Path(log_dir).resolve())}
            self.info["step"] = state.global_step
            from bayling.io import write_json

            write_json(self.path, self.info)

    return RunRecorder()


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``eval/<system>/<direction>/<metric>`` scores (plus per-system averages) from ``metrics.json``."""
    flat: dict[str, float] = {}
    for system, by_direction in metrics.get("systems", {}).items():
        sums: dict[str, list[float]] = {}
        for direction, scores in by_direction.items():
            for metric, entry in scores.items():
                value = entry.get("score") if isinstance(entry, dict) else None
                if isinstance(value, int | float):
                    flat[f"eval/{system}/{direction}/{metric}"] = float(value)
                    sums.setdefault(metric, []).append(float(value))
        for metric, values in sums.items():
            flat[f"eval/{system}/average/{metric}"] = round(sum(values) / len(values), 4)
    for system, benches in (metrics.get("benchmarks") or {}).items():
        for bench, by_lang in benches.items():
            for lang, summary in by_lang.items():
                for key, value in (summary or {}).items():
                    if key in ("accuracy", "exact_match") and isinstance(value, int | float):
                        flat[f"eval/{system}/{bench}/{lang}/{key}"] = float(value)
    return flat


def log_eval_metrics(train_dir: str | Path, metrics: dict[str, Any]) -> list[str]:
    """Add the eval scores to the tracker runs recorded in ``train_dir/trackers.json``.

    Returns:
        The trackers that received the scores (empty when training logged to none).
    """
    path = Path(train_dir) / "trackers.json"
    if not path.is_file():
        return []
    info = json.loads(path.read_text(encoding="utf-8"))
    flat = flatten_metrics(metrics)
    step = int(info.get("step") or 0)
    done = []
    if not flat:
        return done
    if "tensorboard" in info:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboardX instead
            from tensorboardX import SummaryWriter
        writer = SummaryWriter(log_dir=info["tensorboard"]["log_dir"])
        for key, value in flat.items():
            writer.add_scalar(key, value, step)
        writer.close()
        done.append("tensorboard")
    if "mlflow" in info:
        import mlflow

        mlflow.set_tracking_uri(info["mlflow"]["tracking_uri"])
        clean = {re.sub(r"[^0-9A-Za-z_\-\.\ :/]", "_", k): v for k, v in flat.items()}
        with mlflow.start_run(run_id=info["mlflow"]["run_id"]):
            mlflow.log_metrics(clean, step=step)
        done.append("mlflow")
    if "wandb" in info:  # pragma: no cover - wandb is not installed in the test environment
        import wandb

        w = info["wandb"]
        run = wandb.init(id=w["id"], project=w["project"], entity=w["entity"], resume="allow")
        run.log({**flat, "train/global_step": step})
        run.finish()
        done.append("wandb")
    log.info("eval scores logged to %s", ", ".join(done))
    return done
