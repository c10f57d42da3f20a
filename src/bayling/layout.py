"""The run directory of ``bayling run``, as one typed object instead of path strings spread over the code.

::

    RUN_DIR/
      config.yaml  run.log
      data/    train.jsonl  heldout.jsonl  fewshot.jsonl  split.json  stats.json  _stage.json
      train/   final/  merged/  summary.json  trackers.json  _stage.json   (cpt/ sft/ preference/: the stage's own)
      eval/    metrics.json  table.md  report.html  <system>/...  _stage.json
      chat/    chat.json  _stage.json

Every stage writes only under its own directory; what other parts of bayling read from a run (the served
model, the held-out records, the scores for the model card) is named here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory (nothing is created or checked here)."""

    run_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))  # a str is accepted too

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether ``path`` is a run directory (its ``config.yaml`` and ``data/`` exist), not a model."""
        p = Path(path)
        return (p / "config.yaml").is_file() and (p / "data").exists()

    # -- the run --------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        """The resolved config that produced the run."""
        return self.run_dir / "config.yaml"

    @property
    def log(self) -> Path:
        return self.run_dir / "run.log"

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    def stage_marker(self, stage: str) -> Path:
        """``STAGE/_stage.json``: the stage's fingerprint once it finished (:mod:`bayling.resume`)."""
        return self.run_dir / stage / "_stage.json"

    # -- data -----------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def train_jsonl(self) -> Path:
        """The training mix (chat ``messages`` per line)."""
        return self.data_dir / "train.jsonl"

    @property
    def heldout(self) -> Path:
        """The held-out test records (``eval.testset: heldout``)."""
        return self.data_dir / "heldout.jsonl"

    @property
    def fewshot(self) -> Path:
        """The few-shot demonstration pool, from documents apart from the held-out ones."""
        return self.data_dir / "fewshot.jsonl"

    @property
    def data_stats(self) -> Path:
        return self.data_dir / "stats.json"

    # -- train ----------------------------------------------------------------------------------------
    @property
    def train_dir(self) -> Path:
        return self.run_dir / "train"

    @property
    def train_final(self) -> Path:
        """The trained model: a PEFT adapter, or a full model directory (``config.json``)."""
        return self.train_dir / "final"

    @property
    def train_merged(self) -> Path:
        """The adapter merged into its base (``train.export: [merged]``)."""
        return self.train_dir / "merged"

    @property
    def train_summary(self) -> Path:
        return self.train_dir / "summary.json"

    @property
    def trackers(self) -> Path:
        """Where the training run's trackers (TensorBoard, MLflow) are recorded, for the eval scores."""
        return self.train_dir / "trackers.json"

    # -- eval and chat --------------------------------------------------------------------------------
    @property
    def eval_dir(self) -> Path:
        return self.run_dir / "eval"

    @property
    def metrics(self) -> Path:
        return self.eval_dir / "metrics.json"

    @property
    def report(self) -> Path:
        return self.eval_dir / "report.html"

    @property
    def chat_dir(self) -> Path:
        return self.run_dir / "chat"

    @property
    def chat_json(self) -> Path:
        return self.chat_dir / "chat.json"
