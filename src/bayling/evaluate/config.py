"""Config of the evaluation stage (``bayling eval``) and of eval-only runs (``bayling eval run``).

One :class:`EvalConfig` drives every part of the suite. Each part has its own section and is off unless
its list is non-empty, so the quickstart's config (translation only) stays cheap:

* ``translation``: ``directions`` or a FLORES grid (``languages`` around a ``pivot``), scored by sacreBLEU;
* ``benchmarks``: knowledge/understanding ``tasks`` (multiple choice by log-likelihood, MGSM by exact match);
* ``open_ended``: multi-turn question ``sets`` answered turn by turn, graded by a ``judge``;
* ``interactive``: interactive-translation ``tasks`` (refinement dialogues, constrained translation);
* ``perplexity``: held-out text log-likelihood in these ``languages`` (per token, character and byte).

What several parts share sits at the top of the section: the test data (``testset``, ``data_dir``,
``flores_dir``, ``max_sentences``), the generation limit of translations (``max_new_tokens``), the engine,
the seed and which systems are compared. Test data is found under ``data_dir`` (the ``shared/data``
layout: ``flores200/``, ``wmt22/``, ``ntrex128/``, ``xcopa/``…), or per-set paths; ``bayling eval
download`` fetches the translation sets from their original sources into that layout.

Keys of the flat layout before the sections (``eval.grid_languages``, ``eval.benchmark_limit``…) are
rejected with their new name (:data:`RENAMED_KEYS`); :func:`validate` checks a section in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bayling.config import Count, NonNegative, Positive, Seed, check_bounds
from bayling.engines.common import DEFAULT_BATCH_SIZE
from bayling.errors import ConfigError
from bayling.evaluate.judge import JudgeConfig

PROMPTS = ("auto", "chat", "fewshot")
"""How a system is prompted: ``chat`` (its chat format), ``fewshot`` (k demonstrations, for a base LM) or
``auto`` (chat for a tuned model or one with its own chat template, else few-shot)."""


def baseline_system(names: Iterable[str]) -> str | None:
    """The system ``tuned`` is compared with (Δ): ``base-fewshot`` whenever it exists (the strong base-model
    baseline; with ``base_prompts: [chat, fewshot]`` the chat-prompted base is the weak one), else ``base``, else
    the first other ``base-*`` by name, so the choice never depends on the order systems are listed in."""
    names = set(names)
    for name in ("base-fewshot", "base"):
        if name in names:
            return name
    return min((n for n in names if n.startswith("base")), default=None)


@dataclass
class TranslationConfig:
    """Translation of the test set's sentences, scored against their references (``eval.translation``)."""

    directions: list[str] = field(
        default_factory=lambda: ["eng_Latn-zho_Hans", "zho_Hans-eng_Latn", "eng_Latn-deu_Latn", "deu_Latn-eng_Latn"]
    )
    """``src-tgt`` pairs of FLORES-200 codes (ISO aliases accepted: ``en-zh``). Ignored when ``languages`` is set."""
    languages: list[str] = field(default_factory=list)
    """A FLORES grid: ``pivot``->X and X->``pivot`` for each X. Besides codes, ``flores101``, ``all`` and
    ``tier:high|medium|low`` expand to those languages."""
    pivot: str = "eng_Latn"
    """The grid's pivot language."""
    metrics: list[str] = field(default_factory=lambda: ["bleu", "chrf"])
    """sacreBLEU metrics: ``bleu``, ``chrf`` (chrF++), ``ter``."""
    off_target: bool = True
    """Report the share of outputs not in the target language (language ID)."""
    comet_model: str | None = None
    """Local COMET checkpoint (e.g. wmt22-comet-da ``checkpoints/model.ckpt``); needs ``bayling[comet]``."""
    cometkiwi_model: str | None = None
    """Local CometKiwi checkpoint (reference-free)."""
    bleu_tokenize: str = "auto"
    """BLEU tokenizer: ``auto`` (FLORES-200 protocol: sacreBLEU's ``zh``/``ja-mecab``/``ko-mecab`` where they
    apply, else spBLEU (``flores200``) when its SentencePiece model is available, else ``13a``), ``wmt`` (13a for
    spaced scripts, as WMT papers), or a sacreBLEU tokenizer name forced for every target. Either policy reports
    BLEU as not applicable (null + reason) for unspaced scripts (Thai, Lao, Khmer, Burmese…) without spBLEU."""
    spm_model: str | None = None
    """FLORES-200 SentencePiece model for spBLEU; default: sacreBLEU's copy (``~/.sacrebleu/models/
    flores200sacrebleuspm``, fetched by ``bayling eval download flores200-spm``) when present."""
    prompt: str = "auto"
    """How systems are asked to translate: ``chat`` (the canonical request in the model's chat format),
    ``fewshot`` (``fewshot_k`` demonstrations, completion style ``English: …\nGerman:``, cut at the newline:
    how base models are evaluated) or ``auto`` (``fewshot`` for a model without a chat template of its own,
    such as the embedded Gemma-3-270M base; ``chat`` for instruct and tuned models). Translation only: the
    other parts have their own protocols."""
    prompts: dict[str, str] = field(default_factory=dict)
    """Per-system ``prompt`` (``{system: chat|fewshot|auto}``), e.g. for eval-only runs."""
    fewshot_k: Count = 5
    """Demonstrations per few-shot prompt (the same ones for every sentence of a direction)."""
    max_new_tokens_per_source_token: NonNegative = 3.0
    """Each translation's generation limit scales with its source: ``min(eval.max_new_tokens,
    max_new_tokens_per_source_token x source tokens + max_new_tokens_offset)``, counted with the system's
    tokenizer, the same rule for every system; 0 keeps ``eval.max_new_tokens`` alone. A row still going at three
    times its source's length is rambling or looping, and it holds up its whole batch."""
    max_new_tokens_offset: Count = 16
    """Tokens added to the source-scaled limit (short sources, scripts that take more tokens than the source)."""
    loop_span: Count = 32
    """A greedy translation whose last ``loop_span`` tokens repeat one unit (of at most a third of them) is written out
    to its limit by repeating that unit instead of being decoded token by token (transformers engine; 0: every
    token is decoded). Greedy decoding that has looped this long keeps looping: the hypotheses are those of full
    decoding except where the model would have left its loop (counted by ``bench/eval_throughput.py``), and a
    base model looping into a language it cannot write no longer holds up its batch."""
    fewshot_pool: str | None = None
    """JSONL/TSV parallel file of demonstrations; default: the data stage's ``fewshot.jsonl``, else FLORES-200
    ``dev`` (FLORES/WMT22/NTREX test sets), else the test set's records that are not scored (after
    ``eval.max_sentences``). A scored sentence is never a demonstration."""
    fewshot_seeds: list[Seed] | None = None
    """Demonstration draws of a few-shot system: each seed draws its own ``fewshot_k`` demonstrations per direction
    and is translated and cached on its own (``OUT/<system>/seed-<s>/``); tables show the mean over the draws and
    their min–max, and Δ is taken against the mean. At 270M which demonstrations are drawn moves a direction by
    several chrF++ points, so one draw is not a baseline. None: three draws, ``seed``, ``seed + 1``, ``seed + 2``
    (the first is the draw of a single-seed evaluation); one seed keeps the single-draw layout ``OUT/<system>/``."""


@dataclass
class BenchmarksConfig:
    """Knowledge and understanding benchmarks (``eval.benchmarks``)."""

    tasks: list[str] = field(default_factory=list)
    """Names in :data:`bayling.evaluate.benchmarks.REGISTRY`: ``belebele``, ``xcopa``, ``xnli``, ``agieval_gaokao``,
    ``global_mmlu_lite``, ``global_mmlu``, ``include``, ``mmlu_prox_lite`` (the Hub sets) and ``mgsm``."""
    languages: list[str] = field(default_factory=list)
    """Restrict the benchmarks to these languages (empty: every language found)."""
    limit: Count = 50
    """Items per benchmark and language; 0 = all."""
    mgsm_max_new_tokens: Positive = 256
    """Tokens generated per MGSM answer (the other benchmarks are scored by log-likelihood)."""


@dataclass
class OpenEndedConfig:
    """Open-ended multi-turn questions, answered turn by turn and graded by a judge (``eval.open_ended``)."""

    sets: list[str] = field(default_factory=list)
    """``bayling80_en``, ``bayling80_zh`` (multi-turn), ``mt_bench``."""
    limit: Count = 0
    """Questions per set; 0 = all."""
    max_new_tokens: Positive = 512
    judge: JudgeConfig | None = None
    """Grade the answers; without it answers are generated and saved only."""


@dataclass
class InteractiveConfig:
    """Interactive translation (``eval.interactive``)."""

    tasks: list[str] = field(default_factory=list)
    """``refinement`` (multi-turn dialogues scored per turn) and/or ``constrained`` (BayLing's lexically
    constrained sets: constraint hit-rate). Dialogues use the held-out records with ``eval.testset: heldout``
    (they carry glossary terms and register variants), else FLORES-200 (multi-parallel, for third-language turns).
    Turns are translations: ``eval.max_new_tokens`` applies."""
    limit: Count = 20
    """Dialogues / constrained items per direction; 0 = all."""
    turns: list[str] = field(default_factory=lambda: ["translate", "third_language", "back_translate"])
    """Turn script of each refinement dialogue (turn types of ``templates/interactive.yaml``)."""
    directions: list[str] = field(default_factory=lambda: ["eng_Latn-zho_Hans", "zho_Hans-eng_Latn"])
    """Directions of the refinement dialogues."""
    third_language: str = "deu_Latn"
    """Language of ``third_language`` turns (when the direction's own languages do not include it)."""


@dataclass
class PerplexityConfig:
    """Held-out text log-likelihood (``eval.perplexity``): what tuning cost in these languages."""

    languages: list[str] = field(default_factory=list)
    """Per-token log-likelihood (perplexity) of held-out text in these languages (``[eng_Latn, zho_Hans]``).
    Texts: those of the test set (``heldout.jsonl`` or FLORES-200 devtest), first ``eval.max_sentences``; needs
    ``eval.engine: transformers``."""


RENAMED_KEYS: dict[str, str] = {
    "directions": "translation.directions",
    "grid_languages": "translation.languages",
    "grid_pivot": "translation.pivot",
    "metrics": "translation.metrics",
    "off_target": "translation.off_target",
    "comet_model": "translation.comet_model",
    "cometkiwi_model": "translation.cometkiwi_model",
    "bleu_tokenize": "translation.bleu_tokenize",
    "spm_model": "translation.spm_model",
    "prompt": "translation.prompt",
    "prompts": "translation.prompts",
    "fewshot_k": "translation.fewshot_k",
    "fewshot_pool": "translation.fewshot_pool",
    "benchmarks": "benchmarks.tasks",
    "benchmark_languages": "benchmarks.languages",
    "benchmark_limit": "benchmarks.limit",
    "mgsm_max_new_tokens": "benchmarks.mgsm_max_new_tokens",
    "open_ended": "open_ended.sets",
    "open_ended_limit": "open_ended.limit",
    "open_ended_max_new_tokens": "open_ended.max_new_tokens",
    "judge": "open_ended.judge",
    "interactive": "interactive.tasks",
    "interactive_limit": "interactive.limit",
    "interactive_turns": "interactive.turns",
    "interactive_directions": "interactive.directions",
    "interactive_third": "interactive.third_language",
    "perplexity_languages": "perplexity.languages",
}
"""Keys of the flat ``eval`` section (before its parts had sections) -> their place now, relative to ``eval``.
The loader rejects an old key with its new name; ``benchmarks``, ``open_ended`` and ``interactive`` are
sections now, so a list given for one of them is an old key too."""


BATCH_SIZE = DEFAULT_BATCH_SIZE
"""Prompts (or scored sequences) per forward batch unless a caller says otherwise: ``eval.batch_size``'s default,
and the default of the log-likelihood scorers (:mod:`bayling.evaluate.mc`, :mod:`bayling.evaluate.perplexity`);
the engines' own default (:data:`bayling.engines.common.DEFAULT_BATCH_SIZE`)."""


@dataclass
class EvalConfig:
    """Translation, benchmark, open-ended, interactive and perplexity evaluation of the base and the tuned model."""

    RENAMED: ClassVar[dict[str, str]] = RENAMED_KEYS

    testset: str = "heldout"
    """``heldout`` (the data stage's held-out split), ``flores200``, ``wmt22``, ``ntrex``, or a FLORES-layout
    directory / TSV / JSONL path. Read by translation, perplexity and the interactive dialogues."""
    data_dir: str | None = None
    """Root of the test data in the shared-data layout; default ``$BAYLING_EVAL_DATA``."""
    flores_dir: str | None = None
    """FLORES-200 directory (holding ``devtest/``); default ``DATA_DIR/flores200``, then ``$BAYLING_FLORES_DIR``."""
    max_sentences: Count = 40
    """Sentences per translation direction and texts per perplexity language (the first N of the test set);
    0 = all."""
    max_new_tokens: Positive = 96
    """Tokens generated per translation: the translation part and the interactive turns (open-ended answers
    and MGSM have their own limits)."""
    batch_size: Positive = BATCH_SIZE
    """Prompts per forward batch (transformers engine). On CPU in float32 (the default there, see
    ``engine_options``) greedy outputs do not depend on it: the same 320 quickstart hypotheses at 8, 16 and 32,
    the same 1440 FLORES ones (``flores_alignment``) at 16 and 32."""
    engine: str = "transformers"
    """Generation engine: ``transformers``, ``llamacpp`` (GGUF) or ``vllm``."""
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Extra engine arguments (``n_ctx``, ``gpu_memory_utilization``, ``dtype``…). The transformers engine
    computes in float32 on CPU unless ``dtype`` is given here (``model.dtype`` on a GPU): in bfloat16, greedy
    decoding depends on which prompts share a batch (padding changes the rounding), which moved quickstart
    chrF++ by up to 1.3 between batch sizes 8 and 16; in float32 all 320 hypotheses were identical, and at
    batch 16 it is as fast on 2 cores (see :func:`bayling.evaluate.systems.engine_dtype`)."""
    seed: Seed | None = None
    """Few-shot demonstrations and sampling; None: the run's ``seed`` (a run has one seed)."""
    compare_base: bool = True
    """Also score the untuned base model, for the before/after table."""
    base_prompts: list[str] = field(default_factory=lambda: ["fewshot"])
    """Pipeline runs: one base system ``base-<prompt>`` per entry (``[fewshot, chat]`` also scores the base
    with the chat prompt); the tuned model is always prompted ``chat``."""
    compare_stages: bool = True
    """Pipeline runs whose train stage ran a preference or reward stage after SFT: also score the SFT result
    (``train/sft/output``) as ``tuned-sft``, and compare ``tuned`` with it (``metrics.json``'s
    ``significance_stages``): what the later stage itself did."""
    reuse_from: list[str] = field(default_factory=list)
    """Earlier runs (run directories or their ``eval/`` folders) whose finished parts may be reused: a part
    (a translation pass or demonstration draw, perplexity, benchmarks...) whose fingerprint equals one of theirs
    (the same weights digest, an adapter by content wherever it lies, test sentences, prompt, demonstrations and
    every ``eval`` field that can change it, batch size included) is copied instead of computed, and
    ``metrics.json``'s ``reused`` says from where. For runs on one split: the base is scored once, and each later
    arm pays for its tuned model only."""
    report: bool = True
    """Write ``report.json`` and ``report.html`` beside ``metrics.json``."""
    allow_trained_text: bool = False
    """``bayling run``: score on text the run trained on (``data.source: flores200`` with ``eval.testset:
    flores200``, or interactive dialogues read from that devtest). Refused unless true; then the overlap is
    recorded in ``metrics.json`` (``train_overlap``)."""

    translation: TranslationConfig = field(default_factory=TranslationConfig)
    benchmarks: BenchmarksConfig = field(default_factory=BenchmarksConfig)
    open_ended: OpenEndedConfig = field(default_factory=OpenEndedConfig)
    interactive: InteractiveConfig = field(default_factory=InteractiveConfig)
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)


def validate(cfg: EvalConfig, systems: Mapping[str, Any] | None = None) -> None:
    """Check an ``eval`` section before any model is loaded: names, modes, languages, directions, options and,
    given the ``systems`` to compare, their model references and what needs two of them.

    A run checks its section up front (``systems`` None) and :func:`~bayling.evaluate.stage.evaluate` again with
    its systems.

    Raises:
        ConfigError: a value no part accepts, named by its dotted key.
        UnknownLanguageError: a language or direction that is not in the language table.
        ModelError: a system's model reference that does not resolve.
    """
    from bayling.engines import ENGINES
    from bayling.engines.factory import check_options
    from bayling.evaluate.benchmarks import BENCHMARKS
    from bayling.evaluate.interactive import TURN_TYPES
    from bayling.evaluate.metrics import METRICS, check_bleu_tokenize, spm_model_path
    from bayling.evaluate.openended import OPEN_ENDED
    from bayling.evaluate.translation import grid_directions, parse_direction
    from bayling.languages import get_language
    from bayling.models import check_model

    tr, it, judge = cfg.translation, cfg.interactive, cfg.open_ended.judge
    checks: list[tuple[str, list[Any], tuple[str, ...]]] = [
        ("eval.translation.metrics", tr.metrics, METRICS),
        ("eval.benchmarks.tasks", cfg.benchmarks.tasks, BENCHMARKS),
        ("eval.open_ended.sets", cfg.open_ended.sets, OPEN_ENDED),
        ("eval.interactive.tasks", it.tasks, ("refinement", "constrained")),
        ("eval.interactive.turns", it.turns if it.tasks else [], TURN_TYPES),
        ("eval.engine", [cfg.engine], tuple(ENGINES)),
        ("eval.open_ended.judge.mode", [judge.mode] if judge else [], ("single", "pairwise", "both")),
        ("eval.translation.prompt", [tr.prompt], PROMPTS),
        ("eval.translation.prompts", list(tr.prompts.values()), PROMPTS),
        ("eval.base_prompts", cfg.base_prompts, PROMPTS),
    ]
    if systems is not None:
        checks.append(("eval.translation.prompts (system)", list(tr.prompts), tuple(systems)))
    for key, values, allowed in checks:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ConfigError(f"{key}: unknown {', '.join(map(str, bad))}; choose from {', '.join(allowed)}")
    if tr.fewshot_seeds is not None and (not tr.fewshot_seeds or len(set(tr.fewshot_seeds)) != len(tr.fewshot_seeds)):
        raise ConfigError(
            f"eval.translation.fewshot_seeds: {tr.fewshot_seeds} must be distinct seeds, at least one (or null: 3 draws)"
        )
    check_bounds(cfg, "eval")  # a config built in Python (the loader checks what it reads)
    check_options(cfg.engine, cfg.engine_options, "eval.engine_options")
    check_bleu_tokenize(tr.bleu_tokenize)
    spm_model_path(tr.spm_model)  # an explicit path must exist
    if tr.languages:  # the grid replaces the directions
        grid_directions(tr.languages, tr.pivot)
    else:
        for d in tr.directions:
            parse_direction(d)
    if "refinement" in it.tasks:
        for d in it.directions:
            parse_direction(d)
        get_language(it.third_language)
    for c in cfg.perplexity.languages:
        get_language(c)
    if systems is None:
        return
    if judge and judge.mode != "single" and not ("tuned" in systems and baseline_system(systems)):
        raise ConfigError(
            "eval.open_ended.judge.mode pairwise/both compares 'tuned' with 'base': both systems are needed"
        )
    for s in systems.values():
        check_model(s.model, s.gguf_file)
