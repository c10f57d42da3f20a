"""Config of the data stage (``bayling data``): where text comes from, what to build, how to filter it.

``DataConfig`` is the ``data:`` section of a run config (``bayling run``/``bayling data RUN_CONFIG``).
``DataBuildConfig`` wraps it for data-only presets in ``configs/data/`` (``bayling data build``), so
the same section works in both places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from bayling.config import Count, Fraction, NonNegative, Positive, Seed, at_least
from bayling.endpoint import EndpointConfig


@dataclass
class FilterConfig:
    """Per-example filters and dataset-level deduplication, applied to every generated example."""

    lid: bool = True
    """Check that each assistant turn is in the language the example says it is (language ID, the
    ``DATA_FILTER`` policy of :mod:`bayling.lid`): a turn is dropped only when it is confidently in another
    language that its question does not ask for; too little evidence keeps it (counted as ``lid_unchecked``)."""
    lid_backend: str = "py3langid"
    """``py3langid`` (bundled model, installed with bayling) or ``heliport`` (``pip install 'bayling[heliport]'``,
    after calibrating it with ``bench/data_lid_calibrate.py --backends heliport``)."""
    lid_min_chars: Count = 20
    """Texts with fewer letters than this, once code, URLs, numbers and names are stripped, are not
    language-checked (LID is unreliable on a few characters; a Han character counts 3)."""
    min_chars: Count = 1
    """Drop examples with an assistant turn shorter than this."""
    max_chars: Positive = 4000
    """Drop examples with any turn longer than this."""
    max_length_ratio: Annotated[float, at_least(1, also=(0,))] = 3.0
    """Translation turns: drop when len(answer)/len(source) (in characters, script-normalised) is outside
    [1/r, r]; 0 disables. Chinese/Japanese text counts each character as ~3 Latin characters."""
    dedup: bool = True
    """Drop exact duplicates (whole conversation, case- and whitespace-normalised)."""
    near_dedup: Fraction = 0.0
    """Drop near duplicates whose estimated Jaccard similarity (MinHash over character 5-grams) is at least
    this; 0 disables. 0.8 is a common choice."""


@dataclass
class ContaminationConfig:
    """Overlap of training data with evaluation sets. The held-out split is always checked."""

    flores_dir: str | None = None
    """Also check against FLORES-200 devtest under this directory (languages of the build). Ignored when the
    build's own source is that FLORES split, since then only its held-out records are evaluation data."""
    wmt_dir: str | None = None
    """Also check against every ``*.txt`` under this directory (e.g. the WMT22 sources and references)."""
    extra_files: list[str] = field(default_factory=list)
    """More evaluation files: plain text (one sentence a line) or JSONL parallel records."""
    ngram: Positive = 13
    """N-gram length in tokens (words; CJK/Thai characters count as one token each)."""
    action: str = "drop"
    """``drop`` contaminated examples, only ``report`` them, or ``fail`` the build."""


@dataclass
class TeacherConfig(EndpointConfig):
    """Teacher-LLM generation over any OpenAI-compatible endpoint (resumable, see ``bayling.data.teacher``).

    The endpoint settings (``model``, ``base_url``, ``api_key_env``, ``temperature``, ``max_tokens``,
    ``timeout_s``, ``max_retries``, ``concurrency``) are :class:`bayling.endpoint.EndpointConfig`'s, shared with
    the evaluation's judge; retries back off exponentially from ``backoff_s``."""

    examples: Count = 0
    """Number of teacher jobs (each yields at most one example); 0 = no teacher generation."""
    tasks: list[str] = field(default_factory=lambda: ["crosslingual_instruction", "interactive"])
    """Job kinds, used round-robin: ``crosslingual_instruction`` (a seed instruction, translated into language A
    by the teacher, answered by the teacher in language B) and ``interactive`` (a template dialogue whose
    follow-up replies are written by the teacher)."""
    backoff_s: NonNegative = 1.0
    """First backoff delay; doubles each retry (plus jitter), capped at ``max_backoff_s``; ``Retry-After`` wins."""
    max_backoff_s: NonNegative = 60.0
    price_input_per_mtok: NonNegative = 0.0
    """USD per million prompt tokens, for the cost report."""
    price_output_per_mtok: NonNegative = 0.0
    max_cost_usd: NonNegative | None = None
    """Stop sending new requests once the journal's cost reaches this."""
    journal: str | None = None
    """Journal path; default ``OUT_DIR/teacher/journal.jsonl``. Re-running resumes from it."""


@dataclass
class DataConfig:
    """Build an instruction set from parallel text and seed instructions.

    The mix follows BayLing 2: interactive-translation dialogues (BayLing 1), cross-lingual instructions
    (instruction in one language, answer in another) and high-resource general instructions.
    """

    source: str = "sample"
    """Parallel text: ``sample`` (the small corpus shipped with bayling), ``flores200`` (FLORES-200 ``flores_split``
    under ``flores_dir``), a directory of aligned files (``CODE.SPLIT``, ``SPLIT/CODE.SPLIT`` or ``NAME.CODE``), a
    ``.tsv``/``.jsonl`` file whose columns/keys are language codes, or a HF data set with language-code columns or a
    ``translation`` column: ``hf:ORG/NAME[:CONFIG][@SPLIT]`` on the Hub or ``hf:PATH`` locally (:mod:`bayling.hub_data`)."""
    flores_dir: str | None = None
    """FLORES-200 directory (holding ``devtest/``); default: ``$BAYLING_FLORES_DIR``."""
    flores_split: str = "devtest"
    languages: list[str] = field(default_factory=lambda: ["eng_Latn", "zho_Hans", "deu_Latn"])
    """Languages used from the parallel text (FLORES-200 codes or ISO aliases). ``flores101`` or ``all``
    expand to the FLORES-101 set (102 codes) or all 204 FLORES-200 codes."""
    pivot_languages: list[str] = field(default_factory=lambda: ["eng_Latn", "zho_Hans"])
    """Interactive dialogues always involve one of these on one side (BayLing: en/zh-centric); empty = any pair."""
    heldout: Count = 40
    """Parallel records reserved for evaluation (``heldout.jsonl``) and never used for training data. When the
    source has document ids (FLORES ``metadata_devtest.tsv``, NTREX ``DOCUMENT_IDS.tsv``, a ``doc`` key/column),
    whole documents are held out until at least this many records are (see :mod:`bayling.data.split`)."""
    split_by: str = "auto"
    """``document`` (fail when the source has no document ids: evaluation must never share an article with
    training data), ``record`` (ignore document ids) or ``auto`` (documents when the source has ids)."""
    fewshot: Count | None = None
    """Records set aside as a pool of few-shot demonstrations (``fewshot.jsonl``), disjoint from both the held-out
    and the training records (whole documents, like ``heldout``). None = 20 when the source has document ids,
    else 0 (the sample source then splits exactly as before)."""
    max_records: Positive | None = None
    """Use at most this many parallel records (after the held-out split); None = all."""
    interactive: Count = 200
    """Number of interactive-translation dialogues (a translation request plus follow-up turns)."""
    max_followups: Count = 2
    """Follow-up turns per dialogue are drawn from 0..max_followups."""
    pairs: Count = 0
    """Number of plain translation pairs: one translation request (same directions and request languages as the
    dialogues) answered with the reference, no follow-ups. The baseline of the data-mix ablation."""
    crosslingual: Count = 120
    """Number of single-turn cross-lingual examples (any direction; instruction in a third language)."""
    crosslingual_tasks: dict[str, NonNegative] = field(
        default_factory=lambda: {"translate": 0.7, "multi_target": 0.1, "identify": 0.1, "verify": 0.1}
    )
    """Weights of the cross-lingual task kinds (see ``templates/interactive.yaml``, section ``crosslingual``)."""
    general: Count = 80
    """Number of general (non-translation) zh/en instructions mixed in; capped by what the seed files hold."""
    instructions: list[str] = field(default_factory=lambda: ["sample"])
    """Seed general instructions: ``sample`` (shipped) or files: JSONL ``instruction``/``response``/``lang``,
    Alpaca (``instruction``/``input``/``output``, JSON or JSONL), ShareGPT ``conversations`` or OpenAI
    ``messages``. A record without ``lang`` gets one from language ID."""
    instruction_languages: list[str] = field(default_factory=lambda: ["eng_Latn", "zho_Hans"])
    """Languages the translation requests themselves are written in (each needs templates)."""
    total: Positive | None = None
    """If set, ``interactive``/``crosslingual``/``pairs``/``general`` are derived from ``total`` and ``mix``."""
    token_budget: Positive | None = None
    """If set, ``mix`` shares are shares of this many tokens (counted with ``tokenizer``: the text of every
    message, as ``stats.json`` ``tokens.total``; chat-template tokens not included). Each kind gets its share: general
    instructions are chosen until their share is reached; translation examples are over-generated (counts calibrated
    on a pilot sample) and the surplus of each kind is dropped in the shuffled order, so equal budgets give
    mixes of equal size whatever their composition (the data-mix ablation). Exclusive with ``total``."""
    budget_by: str = "even"
    """How the token budget of the kinds with translation directions (``interactive``, ``pairs``) is split across
    languages (a direction spends its target's share, or its source's when the target is a pivot: X->en is in X's
    share, :func:`bayling.data.plan.need_language`): ``even`` (directions drawn uniformly, as BayLing 2) or by what the base lacks there, as
    weights ``need_floor + need`` (:func:`bayling.data.plan.need_weights`): ``off_target`` or ``chrf`` (the base's
    few-shot off-target rate / chrF++ per target language, read from ``need_file``) or ``fertility`` (the
    tokenizer's tokens per English token on the training records: no model run). Needs ``token_budget``; each
    language's share sums exactly to its kind's budget and is enforced like the kind's (surplus dropped)."""
    need_file: str | None = None
    """JSON of the base's scores for ``budget_by: off_target | chrf``: ``{code: value}``, a direction-keyed
    ``scores.json``, or an evaluation's ``metrics.json`` (see :func:`bayling.data.plan.read_need_file`)."""
    need_system: str | None = None
    """The system of a ``metrics.json`` ``need_file`` to read; None = the first named ``base*``."""
    need_floor: NonNegative = 0.2
    """Weight every language has beyond its need (need is in [0, 1]), so none is left out of the mix."""
    mix: dict[str, Fraction] = field(
        default_factory=lambda: {"general_zho_Hans": 0.432, "general_eng_Latn": 0.262, "crosslingual": 0.306}
    )
    """Shares used with ``total`` or ``token_budget`` (BayLing 2: 43.2% zh, 26.2% en, 30.6% cross-lingual). Keys:
    ``interactive``, ``crosslingual``, ``pairs``, ``general`` or ``general_<code>``; general shares are capped by the
    seed files, and the shortfall goes to the translation tasks in proportion."""
    skip_bad_lines: bool = False
    """Skip malformed input lines (counted with ``file:line: reason`` in stats.json) instead of failing."""
    formats: list[str] = field(default_factory=lambda: ["chat"])
    """Outputs: ``chat`` (train.jsonl, OpenAI ``messages``; always written), ``sharegpt`` (train.sharegpt.jsonl) and
    ``hf`` (``hf/``, a ``datasets.load_from_disk`` directory of Arrow shards)."""
    num_proc: Positive = 1
    """Worker processes generating example shards; the output is identical for any value."""
    tokenizer: str | None = None
    """Model (name or path) whose tokenizer counts tokens and per-language fertility in stats.json; None = skip.
    Required by ``token_budget``."""
    filters: FilterConfig = field(default_factory=FilterConfig)
    contamination: ContaminationConfig = field(default_factory=ContaminationConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    templates: str | None = None
    """Template YAML replacing the shipped ``templates/interactive.yaml``."""
    seed: Seed | None = None
    """Sampling seed; None = the run's (or preset's) ``seed``, which it may repeat but never contradict."""


@dataclass
class DataBuildConfig:
    """A data-only preset for ``bayling data build`` (``configs/data/*.yaml``)."""

    name: str = "data"
    out_dir: str = "runs/data/{name}"
    """Where train.jsonl, heldout.jsonl and stats.json go; ``{name}`` is replaced by ``name``."""
    seed: Seed = 0
    data: DataConfig = field(default_factory=DataConfig)

    def resolved_out_dir(self) -> str:
        return self.out_dir.replace("{name}", self.name)
