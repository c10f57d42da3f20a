"""Config of the data stage (``bayling data``): where parallel text comes from and what to build."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Build an instruction set from parallel text and seed instructions.

    The mix follows BayLing 2: interactive-translation dialogues (BayLing 1), cross-lingual instructions
    (instruction in one language, answer in another) and high-resource general instructions.
    """

    source: str = "sample"
    """Parallel text: ``sample`` (the small corpus shipped with bayling), ``flores200`` (FLORES-200
    devtest found under ``flores_dir``), a FLORES-layout directory, or a ``.tsv``/``.jsonl`` file whose
    columns/keys are language codes."""
    flores_dir: str | None = None
    """FLORES-200 directory (holding ``devtest/``); default: ``$BAYLING_FLORES_DIR``."""
    languages: list[str] = field(default_factory=lambda: ["eng_Latn", "zho_Hans", "deu_Latn"])
    """Languages used from the parallel text (FLORES-200 codes or ISO aliases)."""
    pivot_languages: list[str] = field(default_factory=lambda: ["eng_Latn", "zho_Hans"])
    """Translation requests always involve one of these on one side (BayLing: en/zh-centric); empty = any pair."""
    heldout: int = 40
    """Parallel records reserved for evaluation and never used for training data."""
    max_records: int | None = None
    """Use at most this many parallel records (after the held-out split); None = all."""
    interactive: int = 200
    """Number of interactive-translation dialogues (a translation request plus follow-up turns)."""
    max_followups: int = 2
    """Follow-up turns per dialogue are drawn from 0..max_followups."""
    crosslingual: int = 120
    """Number of single-turn cross-lingual instructions (instruction in language A, answer in language B)."""
    general: int = 80
    """Number of general (non-translation) zh/en instructions mixed in; capped by what the seed file holds."""
    instructions: str = "sample"
    """Seed general instructions: ``sample`` (shipped) or a JSONL file with ``instruction``/``response``/``lang``."""
    instruction_languages: list[str] = field(default_factory=lambda: ["eng_Latn", "zho_Hans"])
    """Languages the translation requests themselves are written in."""
    seed: int | None = None
    """Sampling seed; None = the run's seed."""
