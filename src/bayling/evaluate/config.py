"""Config of the evaluation stage (``bayling eval``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvalConfig:
    """Translation scoring of the base and the tuned model on held-out sentences."""

    directions: list[str] = field(
        default_factory=lambda: ["eng_Latn-zho_Hans", "zho_Hans-eng_Latn", "eng_Latn-deu_Latn", "deu_Latn-eng_Latn"]
    )
    """``src-tgt`` pairs of FLORES-200 codes (ISO aliases accepted: ``en-zh``)."""
    testset: str = "heldout"
    """``heldout`` (the records the data stage set aside), ``flores200`` (devtest under ``flores_dir``), or a
    FLORES-layout directory / TSV / JSONL path."""
    flores_dir: str | None = None
    """FLORES-200 directory; default: ``$BAYLING_FLORES_DIR``."""
    max_sentences: int = 40
    """Sentences per direction (the first N of the test set)."""
    batch_size: int = 8
    max_new_tokens: int = 96
    compare_base: bool = True
    """Also score the untuned base model, for the before/after table."""
    metrics: list[str] = field(default_factory=lambda: ["bleu", "chrf"])
    """sacreBLEU metrics: ``bleu``, ``chrf`` (chrF++), ``ter``."""
