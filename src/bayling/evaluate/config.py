"""Config of the evaluation stage (``bayling eval``) and of eval-only runs (``bayling eval run``).

One :class:`EvalConfig` drives every part of the suite; each part is off unless its list is
non-empty, so the quickstart's section (translation only) stays cheap:

* translation: ``directions`` or a FLORES ``grid_languages`` grid, on ``testset``;
* knowledge/understanding: ``benchmarks`` (multiple choice by log-likelihood, MGSM by exact match);
* open-ended multi-turn: ``open_ended`` answered turn by turn, graded by ``judge``;
* interactive translation: ``interactive`` (refinement dialogues, constrained translation);
* held-out text log-likelihood: ``perplexity_languages`` (per token, character and byte).

Test data is found under ``data_dir`` (the ``shared/data`` layout: ``flores200/``, ``wmt22/``,
``ntrex128/``, ``xcopa/``…), or per-set paths; ``bayling eval download`` fetches the translation
sets from their original sources into that layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class JudgeConfig:
    """An OpenAI-compatible judge (FastChat MT-Bench prompts, single-answer and pairwise grading)."""

    base_url: str | None = None
    """API root, e.g. ``http://127.0.0.1:8000/v1``; default ``$BAYLING_JUDGE_BASE_URL``, else OpenAI's."""
    model: str = "gpt-4o"
    """Judge model name sent in each request."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the key (keys never live in configs)."""
    mode: str = "single"
    """``single`` (1-10 rating per turn), ``pairwise`` (tuned vs base, both orders) or ``both``."""
    cache: str | None = None
    """Verdict cache (JSONL keyed by a hash of the judge prompt); default ``OUT_DIR/judge_cache.jsonl``."""
    prompts: str | None = None
    """FastChat-format ``judge_prompts.jsonl``; default: the copy shipped with bayling."""
    wrong_language_score: float = 1.0
    """Rating given, without asking the judge, to an answer not in the question's language."""
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout: float = 120.0
    max_retries: int = 3
    workers: int = 4
    """Judge requests in flight at once."""


@dataclass
class EvalConfig:
    """Translation, benchmark, open-ended and interactive evaluation of the base and the tuned model."""

    directions: list[str] = field(
        default_factory=lambda: ["eng_Latn-zho_Hans", "zho_Hans-eng_Latn", "eng_Latn-deu_Latn", "deu_Latn-eng_Latn"]
    )
    """``src-tgt`` pairs of FLORES-200 codes (ISO aliases accepted: ``en-zh``). Ignored when ``grid_languages``
    is set."""
    grid_languages: list[str] = field(default_factory=list)
    """FLORES grid: ``grid_pivot``->X and X->``grid_pivot`` for each X. Besides codes, ``flores101``, ``all`` and
    ``tier:high|medium|low`` expand to those languages."""
    grid_pivot: str = "eng_Latn"
    testset: str = "heldout"
    """``heldout`` (the data stage's held-out split), ``flores200``, ``wmt22``, ``ntrex``, or a FLORES-layout
    directory / TSV / JSONL path."""
    data_dir: str | None = None
    """Root of the test data in the shared-data layout; default ``$BAYLING_EVAL_DATA``."""
    flores_dir: str | None = None
    """FLORES-200 directory (holding ``devtest/``); default ``DATA_DIR/flores200``, then ``$BAYLING_FLORES_DIR``."""
    max_sentences: int = 40
    """Sentences per direction (the first N of the test set); 0 = all."""
    batch_size: int = 8
    max_new_tokens: int = 96
    compare_base: bool = True
    """Also score the untuned base model, for the before/after table."""
    metrics: list[str] = field(default_factory=lambda: ["bleu", "chrf"])
    """sacreBLEU metrics: ``bleu``, ``chrf`` (chrF++), ``ter``."""
    off_target: bool = True
    """Report the share of outputs not in the target language (language ID)."""
    comet_model: str | None = None
    """Local COMET checkpoint (e.g. wmt22-comet-da ``checkpoints/model.ckpt``); needs ``bayling[comet]``."""
    cometkiwi_model: str | None = None
    """Local CometKiwi checkpoint (reference-free)."""
    engine: str = "transformers"
    """Generation engine: ``transformers``, ``llamacpp`` (GGUF) or ``vllm``."""
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Extra engine arguments (``n_ctx``, ``gpu_memory_utilization``…)."""
    seed: int | None = None
    """Few-shot demonstrations and sampling; None: the run's ``seed`` (a run has one seed)."""
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
    base_prompts: list[str] = field(default_factory=lambda: ["fewshot"])
    """Pipeline runs: one base system ``base-<prompt>`` per entry (``[fewshot, chat]`` also scores the base
    with the chat prompt); the tuned model is always prompted ``chat``."""
    fewshot_k: int = 5
    """Demonstrations per few-shot prompt (the same ones for every sentence of a direction)."""
    fewshot_pool: str | None = None
    """JSONL/TSV parallel file of demonstrations; default: the data stage's ``fewshot.jsonl``, else FLORES-200
    ``dev`` (FLORES/WMT22/NTREX test sets), else the test set's records that are not scored (after
    ``max_sentences``). A scored sentence is never a demonstration."""

    benchmarks: list[str] = field(default_factory=list)
    """``belebele``, ``xcopa``, ``xnli``, ``agieval_gaokao``, ``mgsm``."""
    benchmark_languages: list[str] = field(default_factory=list)
    """Restrict benchmarks to these languages (empty: every language found)."""
    benchmark_limit: int = 50
    """Items per benchmark and language; 0 = all."""
    mgsm_max_new_tokens: int = 256

    open_ended: list[str] = field(default_factory=list)
    """``bayling80_en``, ``bayling80_zh`` (multi-turn), ``mt_bench``."""
    open_ended_limit: int = 0
    """Questions per set; 0 = all."""
    open_ended_max_new_tokens: int = 512
    judge: JudgeConfig | None = None
    """Grade the open-ended answers; without it answers are generated and saved only."""

    interactive: list[str] = field(default_factory=list)
    """``refinement`` (multi-turn dialogues scored per turn) and/or ``constrained`` (BayLing's lexically
    constrained sets: constraint hit-rate). Dialogues use the held-out records with ``testset: heldout``
    (they carry glossary terms and register variants), else FLORES-200 (multi-parallel, for third-language turns)."""
    interactive_limit: int = 20
    """Dialogues / constrained items per direction; 0 = all."""
    interactive_turns: list[str] = field(default_factory=lambda: ["translate", "third_language", "back_translate"])
    """Turn script of each refinement dialogue (turn types of ``templates/interactive.yaml``)."""
    interactive_directions: list[str] = field(default_factory=lambda: ["eng_Latn-zho_Hans", "zho_Hans-eng_Latn"])
    interactive_third: str = "deu_Latn"
    """Language of ``third_language`` turns (when the direction's own languages do not include it)."""
    report: bool = True
    """Write ``report.json`` and ``report.html`` beside ``metrics.json``."""
    perplexity_languages: list[str] = field(default_factory=list)
    """Per-token log-likelihood (perplexity) of held-out text in these languages (``[eng_Latn, zho_Hans]``): what
    tuning cost there. Texts: those of the test set (``heldout.jsonl`` or FLORES-200 devtest), first
    ``max_sentences``; needs ``engine: transformers``."""
