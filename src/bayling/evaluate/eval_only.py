"""Eval-only runs: score any models without the data/train stages (``bayling eval run CONFIG``).

The config names the systems to compare (``base``/``tuned`` get the before/after columns and the
pairwise judge) and holds one :class:`~bayling.evaluate.config.EvalConfig` section, with the same sections
as a run's (``eval.translation``, ``eval.benchmarks``…). This is how the FLORES grids, the benchmark suites
and judge runs in ``configs/eval/`` are launched.

Run as::

    bayling eval run configs/eval/flores_grid.yaml eval.max_sentences=5
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bayling.config import Seed, load_config, save_config, stage_seed
from bayling.errors import ConfigError
from bayling.evaluate.config import EvalConfig
from bayling.models import ModelConfig

if TYPE_CHECKING:
    from bayling.evaluate.stage import EvalResult


@dataclass
class EvalRunConfig:
    """An eval-only run."""

    name: str = "eval"
    out_dir: str = "runs/{name}"
    """Where metrics, tables, per-system outputs and the report go; ``{name}`` is replaced by ``name``."""
    systems: dict[str, str] = field(default_factory=lambda: {"base": "gemma-3-270m"})
    """``{system name: model reference}``; a reference is a model (embedded alias, HF directory, ``.gguf``) or
    ``MODEL::ADAPTER``. How each is prompted to translate: ``eval.translation.prompts`` /
    ``eval.translation.prompt`` (by default few-shot for a base model, chat for an instruct model or an
    adapter)."""
    seed: Seed = 0
    """The run's one seed (few-shot demonstrations, sampling); ``eval.seed`` may repeat it, never differ."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Settings shared by every system (chat format, dtype, device); ``name_or_path`` is unused here."""
    eval: EvalConfig = field(default_factory=EvalConfig)

    def resolved_out_dir(self) -> Path:
        return Path(self.out_dir.replace("{name}", self.name))


def run_eval_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> EvalResult:
    """Load an :class:`EvalRunConfig` and evaluate its systems."""
    from bayling.evaluate.stage import evaluate
    from bayling.evaluate.systems import System

    cfg = load_config(EvalRunConfig, path, overrides)
    eval_cfg = replace(cfg.eval, seed=stage_seed(cfg.seed, cfg.eval.seed, "eval.seed"))
    if not cfg.systems:
        raise ConfigError(f"{path}: 'systems' must name at least one model")
    if cfg.eval.testset == "heldout":
        raise ConfigError(f"{path}: eval.testset=heldout needs a run; use flores200, wmt22, ntrex or a file")
    out = cfg.resolved_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    systems = {n: System.parse(n, ref) for n, ref in cfg.systems.items()}
    return evaluate(eval_cfg, cfg.model, systems, out, name=cfg.name)
