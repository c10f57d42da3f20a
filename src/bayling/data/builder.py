"""The data stage: ``build(cfg, out_dir, seed) -> DataResult`` writes ``train.jsonl``, ``heldout.jsonl``,
``fewshot.jsonl``, ``split.json`` and ``stats.json``.

Run as::

    bayling data configs/quickstart.yaml                 # the data stage of a run
    bayling data build configs/data/flores-100langs.yaml # a data-only preset

Steps: count the parallel records and split them (by document when the source has document ids, see
:mod:`bayling.data.split`) into held-out, few-shot and training parts *before* any training example is made (so
evaluation sentences, and their articles, never leak into training data); generate template examples per
training record (optionally in ``num_proc`` processes); add general zh/en instructions and teacher-LLM
examples; filter (length, ratio, language ID, contamination); shuffle through hash buckets, drop duplicates
(and, with ``token_budget``, each kind's surplus beyond its token share) and write. Inputs are streamed and
examples are never all in memory, so millions of examples fit in constant memory.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayling.config import check_bounds
from bayling.data.config import DataConfig
from bayling.data.filters import Dedup, ExampleFilter
from bayling.data.generate import (
    BucketWriter,
    ShardPlan,
    emit,
    make_filter,
    pilot_tokens,
    run_shard,
    training_records,
)
from bayling.data.interactive import Dialogue
from bayling.data.parallel import iter_parallel
from bayling.data.plan import (
    DIRECTED_KINDS,
    NEED_MEASURES,
    NEED_OVERGENERATE,
    OVERGENERATE,
    TRANSLATION_KINDS,
    Counts,
    GeneralPool,
    budgets_by_need,
    calibrate_counts,
    direction_weights,
    need_language,
    need_weights,
    read_need_file,
    select_general,
)
from bayling.data.split import Split, split_records
from bayling.data.stats import Stats, TokenCounter, fertility
from bayling.errors import ConfigError, DataError
from bayling.io import JsonlWriter, write_json, write_jsonl
from bayling.languages import expand_languages
from bayling.progress import console
from bayling.records import ParallelRecord
from bayling.validate import BadLines

log = logging.getLogger(__name__)

BUCKET_SIZE = 50_000
"""Examples per shuffle bucket: the merge holds one bucket in memory."""
DEFAULT_FEWSHOT = 20
"""Few-shot pool records when ``data.fewshot`` is unset and the source has document ids."""


def _directions(langs: list[str], pivots: list[str]) -> list[tuple[str, str]]:
    pairs = list(itertools.permutations(langs, 2))
    if pivots:
        pairs = [(a, b) for a, b in pairs if a in pivots or b in pivots]
    return pairs


def _check(cfg: DataConfig) -> None:
    unknown = set(cfg.formats) - {"chat", "sharegpt", "hf"}
    if unknown:
        raise ConfigError(f"data.formats: unknown format(s) {sorted(unknown)}; use chat, sharegpt and/or hf")
    check_bounds(cfg, "data")  # a config built in Python (the loader checks what it reads)
    if cfg.token_budget is not None:
        if cfg.total is not None:
            raise ConfigError("data.token_budget and data.total both size the build: set one of them")
        if not cfg.tokenizer:
            raise ConfigError("data.token_budget counts tokens with data.tokenizer: set it (e.g. gemma-3-270m)")
    if cfg.budget_by not in NEED_MEASURES:
        raise ConfigError(f"data.budget_by: use {', '.join(NEED_MEASURES)}, got {cfg.budget_by!r}")
    if cfg.budget_by != "even":
        if cfg.token_budget is None:
            raise ConfigError(f"data.budget_by={cfg.budget_by} splits data.token_budget: set data.token_budget")
        if cfg.budget_by in ("off_target", "chrf") and not cfg.need_file:
            raise ConfigError(f"data.budget_by={cfg.budget_by} reads the base's scores from data.need_file: set it")
        if cfg.need_floor < 0:
            raise ConfigError(f"data.need_floor must be >= 0, got {cfg.need_floor}")
    if cfg.split_by not in ("auto", "document", "record"):
        raise ConfigError(f"data.split_by: use auto, document or record, got {cfg.split_by!r}")
    known = ("translate", "multi_target", "identify", "verify")
    if any(k not in known or w < 0 for k, w in cfg.crosslingual_tasks.items()) or not any(
        w > 0 for w in cfg.crosslingual_tasks.values()
    ):
        raise ConfigError(
            f"data.crosslingual_tasks: use {', '.join(known)} with weights >= 0, got {cfg.crosslingual_tasks}"
        )


@dataclass
class Prepared:
    """What both the full build and the teacher-only command need, decided once per seed."""

    seed: int
    langs: list[str]
    ils: list[str]
    directions: list[tuple[str, str]]
    n: int
    split: Split
    heldout: list[ParallelRecord]
    fewshot: list[ParallelRecord]
    selected: frozenset[int] | None
    n_used: int
    counts: Counts
    general: GeneralPool
    general_bad: dict[str, Any]
    counter: Any = None
    """The :class:`~bayling.data.stats.TokenCounter` of a ``token_budget`` build (loaded once)."""
    pivots: list[str] = field(default_factory=list)
    """``data.pivot_languages``, expanded: a direction into one spends its source's budget (:func:`need_language`)."""


def prepare(cfg: DataConfig, out: Path, seed: int) -> Prepared:
    """Count records, split them (writing ``heldout.jsonl``, ``fewshot.jsonl``, ``split.json``), plan counts and
    choose general instructions."""
    _check(cfg)
    seed = cfg.seed if cfg.seed is not None else seed
    langs = expand_languages(cfg.languages)
    pivots = expand_languages(cfg.pivot_languages)
    ils = expand_languages(cfg.instruction_languages)
    rng = random.Random(seed)
    docs = [
        r.doc for r in iter_parallel(cfg.source, langs, cfg.flores_dir, cfg.flores_split, BadLines(cfg.skip_bad_lines))
    ]
    n = len(docs)
    if cfg.split_by == "record":
        docs = [None] * n
    elif cfg.split_by == "document" and not any(docs):
        raise DataError(
            f"{cfg.source}: data.split_by=document, but the records carry no document ids (FLORES: metadata_"
            f"{cfg.flores_split}.tsv beside {cfg.flores_split}/; NTREX: DOCUMENT_IDS.tsv; files: a 'doc' key or column)"
        )
    fallback = None
    if cfg.split_by == "auto" and not any(docs):
        fallback = (
            f"data.split_by=auto: {cfg.source} has no document ids, so held-out sentences were drawn one by one and "
            "their articles' other sentences may be training data (set split_by: record to accept this, or "
            "document to require ids)"
        )
        if cfg.source != "sample":  # the shipped sample is independent sentences: there are no articles to share
            log.warning(fallback)  # on stderr (the CLI shows warnings) and in the run's log
    fewshot = cfg.fewshot if cfg.fewshot is not None else (DEFAULT_FEWSHOT if any(docs) else 0)
    try:
        split = split_records(docs, cfg.heldout, fewshot, seed, rng)
    except DataError as e:
        raise DataError(f"{cfg.source}: {e} (records with all of {len(langs)} languages)") from None
    n_train = split.n_train
    selected = (
        frozenset(rng.sample(range(n_train), cfg.max_records))
        if cfg.max_records and cfg.max_records < n_train
        else None
    )
    where = {i: ("heldout", k) for k, i in enumerate(split.heldout)}
    where.update({i: ("fewshot", k) for k, i in enumerate(split.fewshot)})
    parts: dict[str, list[Any]] = {"heldout": [None] * len(split.heldout), "fewshot": [None] * len(split.fewshot)}
    for i, r in enumerate(iter_parallel(cfg.source, langs, cfg.flores_dir, cfg.flores_split, BadLines(True))):
        if i in where:
            part, k = where[i]
            parts[part][k] = r
    ids = {i: parts[part][k].id for i, (part, k) in where.items()}
    write_jsonl(out / "heldout.jsonl", (r.to_dict() for r in parts["heldout"]))
    write_jsonl(out / "fewshot.jsonl", (r.to_dict() for r in parts["fewshot"]))
    info = {"source": cfg.source, "languages": langs, **split.to_dict(ids, seed)}
    write_json(out / "split.json", info | ({"fallback": fallback} if fallback else {}))
    counter = None
    if cfg.token_budget:
        from bayling.data.stats import TokenCounter

        counter = TokenCounter(cfg.tokenizer)
    counts, pool, general_bad = select_general(cfg, rng, cfg.teacher.examples, counter)
    directions = _directions(langs, pivots)
    dialogues = (
        counts.interactive + counts.pairs + counts.budgets.get("interactive", 0) + counts.budgets.get("pairs", 0)
    )
    if (dialogues or cfg.teacher.examples) and not directions:
        raise DataError(f"no translation directions: languages={langs} pivot_languages={pivots}")
    return Prepared(
        seed,
        langs,
        ils,
        directions,
        n,
        split,
        parts["heldout"],
        parts["fewshot"],
        selected,
        len(selected) if selected is not None else n_train,
        counts,
        pool,
        general_bad,
        counter,
        pivots,
    )


def run_teacher(
    cfg: DataConfig, out: Path, p: Prepared
) -> tuple[list[tuple[Dialogue, dict[str, Any], str]], dict[str, Any]]:
    """Teacher examples for this build (resuming from ``OUT/teacher/journal.jsonl``)."""
    from bayling.data.teacher_jobs import teacher_examples

    seeds = dict(p.general.iter(set(p.general.seeds)))
    excluded = p.split.excluded
    records = [
        r
        for i, r in enumerate(iter_parallel(cfg.source, p.langs, cfg.flores_dir, cfg.flores_split, BadLines(True)))
        if i not in excluded
    ]
    return teacher_examples(
        cfg, out, p.seed, records, [seeds[i] for i in p.general.seeds], p.langs, p.directions, p.ils
    )


@dataclass
class DataResult:
    """What the data stage made.

    Attributes:
        out_dir: holds ``train.jsonl`` (chat ``messages`` per line), ``heldout.jsonl`` (the test records),
            ``fewshot.jsonl`` (the demonstration pool; same record format), ``split.json`` (which documents and
            records went where), ``stats.json`` and, when asked for, ``train.sharegpt.jsonl`` and ``hf/``.
        stats: what ``stats.json`` holds (``examples``, ``tasks``, ``heldout_records``, ``dropped``...).
    """

    out_dir: Path
    stats: dict[str, Any]

    @property
    def train_file(self) -> Path:
        return self.out_dir / "train.jsonl"

    @property
    def heldout_file(self) -> Path:
        return self.out_dir / "heldout.jsonl"

    @property
    def examples(self) -> int:
        return int(self.stats["examples"])


@dataclass
class TeacherResult:
    """The teacher part of a build alone: ``file`` (``OUT/teacher/teacher.jsonl``) and its ``stats``."""

    file: Path
    stats: dict[str, Any]


def generate_teacher(cfg: DataConfig, out_dir: str | Path, seed: int = 0) -> TeacherResult:
    """Only the teacher part of a build: ``OUT/teacher/teacher.jsonl`` (+ journal); a later build reuses it."""
    out = Path(out_dir)
    if not cfg.teacher.examples:
        raise ConfigError("data.teacher.examples is 0: nothing for the teacher to do")
    _, info = run_teacher(cfg, out, prepare(cfg, out, seed))
    write_json(out / "teacher" / "stats.json", info)
    return TeacherResult(out / "teacher" / "teacher.jsonl", info)


def build(cfg: DataConfig, out_dir: str | Path, seed: int = 0) -> DataResult:
    """Build the training mix and the held-out split.

    Args:
        cfg: the data config.
        out_dir: directory to write into.
        seed: run seed (used when ``cfg.seed`` is None).

    Returns:
        The output directory and the statistics also written to ``stats.json``.
    """
    t0 = time.time()
    out = Path(out_dir)
    p = prepare(cfg, out, seed)
    tmp = out / ".build"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    same_flores = cfg.source == "flores200" or (
        cfg.contamination.flores_dir is not None
        and Path(cfg.source).expanduser().resolve() == Path(cfg.contamination.flores_dir).expanduser().resolve()
    )
    plan = ShardPlan(
        source=cfg.source,
        languages=p.langs,
        flores_dir=cfg.flores_dir,
        split=cfg.flores_split,
        skip_bad=cfg.skip_bad_lines,
        excluded=p.split.excluded,
        selected=p.selected,
        n_used=p.n_used,
        interactive=p.counts.interactive,
        crosslingual=p.counts.crosslingual,
        pairs=p.counts.pairs,
        directions=p.directions,
        instruction_languages=p.ils,
        task_weights={k: w for k, w in sorted(cfg.crosslingual_tasks.items()) if w > 0},  # YAML order must not matter
        max_followups=cfg.max_followups,
        templates=cfg.templates,
        seed=p.seed,
        buckets=1,
        tmp_dir=str(tmp),
        filters=cfg.filters,
        contamination=cfg.contamination,
        heldout_texts=[r.texts for r in p.heldout],
        skip_flores=same_flores,
    )
    need = _need_weights(cfg, plan, p) if cfg.budget_by != "even" else None
    if need:
        p.counts.budgets.update(budgets_by_need(p.counts.budgets, need, DIRECTED_KINDS))
        plan.direction_weights = direction_weights(plan.directions, need, p.pivots)
    pilot = None
    kinds = [k for k in TRANSLATION_KINDS if p.counts.budgets.get(k)]
    if kinds:
        pilot = pilot_tokens(plan, p.counter, kinds)
        calibrate_counts(p.counts, pilot, NEED_OVERGENERATE if need else OVERGENERATE)
        plan.interactive, plan.crosslingual, plan.pairs = p.counts.interactive, p.counts.crosslingual, p.counts.pairs
    if p.counts.shortfall:
        unit = "tokens" if cfg.token_budget else "examples"
        console.print(
            f"[yellow]data: the seed instructions fill the general shares of data.mix only partly; "
            f"{p.counts.shortfall:,} {unit} go to the translation kinds instead (more: data.instructions)[/yellow]"
        )
    expected = p.counts.interactive + p.counts.crosslingual + p.counts.pairs + p.counts.general_total
    buckets = plan.buckets = max(1, -(-(expected + cfg.teacher.examples) // BUCKET_SIZE))
    console.print(
        f"data: {p.n} parallel records x {len(p.langs)} languages ({len(p.heldout)} held out, {len(p.fewshot)} "
        f"few-shot pool, split by {p.split.by}); making {p.counts.interactive} dialogues, "
        f"{p.counts.crosslingual} cross-lingual, {p.counts.pairs} plain pairs, {p.counts.general_total} general"
        + (f", {cfg.teacher.examples} teacher jobs" if cfg.teacher.examples else "")
        + (f" (token budget {cfg.token_budget:,}: surplus dropped)" if cfg.token_budget else "")
    )
    # Teacher first: if it fails (network), nothing else has been spent; its journal makes a re-run cheap.
    teacher, teacher_info = run_teacher(cfg, out, p) if cfg.teacher.examples else ([], None)
    flt = make_filter(plan)  # first, so forked shard workers inherit its contamination index
    results = _run_shards(plan, cfg.num_proc)
    drops: Counter[str] = Counter()
    made: Counter[str] = Counter()
    extra = BucketWriter(tmp, "extra", buckets)
    try:
        for i, rec in p.general.iter():
            d = Dialogue(
                rec["messages"],
                ["general"],
                [{"lang": rec["lang"]} for m in rec["messages"] if m["role"] == "assistant"],
            )
            meta = {
                "task": "general",
                "src": rec["lang"],
                "tgt": rec["lang"],
                "instruction_lang": rec["lang"],
                "source_id": rec["id"],
            }
            made["general"] += emit(d, meta, f"general-{i}", p.seed, flt, extra, drops)
        for d, meta, uid in teacher:
            made["teacher"] += emit(d, meta, uid, p.seed, flt, extra, drops)
    finally:
        extra.close()
    for r in results:
        made.update(r["made"])
        drops.update(r["dropped"])
        flt.counts.update(r["filter"])

    budgets = {k: v for k, v in p.counts.budgets.items() if k.split(":")[0] in TRANSLATION_KINDS}
    stats, dups, spent = _merge(cfg, out, tmp, buckets, p.counter, budgets)
    shutil.rmtree(tmp, ignore_errors=True)
    if "hf" in cfg.formats:
        _save_hf(out)
    info = stats.to_dict()
    info.update(
        heldout_records=len(p.heldout),
        fewshot_records=len(p.fewshot),
        split={
            "by": p.split.by,
            "heldout_documents": len(p.split.docs.get("heldout", [])),
            "fewshot_documents": len(p.split.docs.get("fewshot", [])),
            "train_documents": len(p.split.docs.get("train", [])),
        },
        parallel_records=p.n,
        parallel_records_used=p.n_used,
        requested={
            "interactive": p.counts.interactive,
            "crosslingual": p.counts.crosslingual,
            "pairs": p.counts.pairs,
            "general": p.counts.general,
            "teacher": cfg.teacher.examples,
        },
        token_budget=(
            {
                "total": cfg.token_budget,
                "budget_by": cfg.budget_by,
                "need_weights": need,
                "planned": p.counts.budgets,
                "spent": spent,
                "pilot": pilot,
            }
            if cfg.token_budget
            else None
        ),
        general_available=p.general.available,
        general_shortfall=p.counts.shortfall,
        generated=dict(made),
        dropped={**dict(drops), **dups},
        lid=_lid_info(cfg, flt, p.langs),
        contamination={
            "sources": flt.contamination.sources if flt.contamination else [],
            "eval_sentences": flt.contamination.sentences if flt.contamination else 0,
            "ngram": cfg.contamination.ngram,
            "action": cfg.contamination.action,
            "flores_skipped_as_source": bool(same_flores and cfg.contamination.flores_dir),
            "found": drops["contaminated"] + flt.counts["contaminated_reported"],
        },
        skipped_input={"parallel": results[0]["bad"], "instructions": p.general_bad},
        teacher=teacher_info,
        seed=p.seed,
        seconds=round(time.time() - t0, 1),
    )
    if stats.counter is not None and p.heldout:
        info["fertility"] = fertility({c: [r.texts[c] for r in p.heldout[:200]] for c in p.langs}, stats.counter)
    write_json(out / "stats.json", info)
    return DataResult(out, info)


def _need_weights(cfg: DataConfig, plan: ShardPlan, p: Prepared) -> dict[str, float]:
    """``data.budget_by``'s weight per language of the build's directions (:func:`need_language`,
    :func:`need_weights`)."""
    targets = sorted({need_language(s, t, p.pivots) for s, t in p.directions})
    if cfg.budget_by == "fertility":
        if "eng_Latn" not in p.langs:
            raise ConfigError("data.budget_by=fertility measures tokens per English token: add eng_Latn to languages")
        records = [rec for _, rec in itertools.islice(training_records(plan, BadLines(True)), FERTILITY_RECORDS)]
        ratios = fertility({c: [r.texts[c] for r in records] for c in {*targets, "eng_Latn"}}, p.counter)
        values = {t: float(ratios[t]["premium_vs_eng"] or 1.0) for t in targets}
    else:
        values = read_need_file(cfg.need_file or "", cfg.budget_by, targets, cfg.need_system)
    return need_weights(cfg.budget_by, values, cfg.need_floor)


FERTILITY_RECORDS = 200
"""Training records whose sentences measure tokenizer fertility for ``data.budget_by: fertility``."""


def to_sharegpt(example: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``messages`` -> ShareGPT ``conversations`` (``human``/``gpt``/``system``), metadata kept."""
    roles = {"user": "human", "assistant": "gpt", "system": "system"}
    out = {k: v for k, v in example.items() if k != "messages"}
    out["conversations"] = [{"from": roles[m["role"]], "value": m["content"]} for m in example["messages"]]
    return out


def _save_hf(out: Path) -> None:
    """``OUT/hf``: train.jsonl as a ``datasets`` directory (Arrow shards of <= 256 MB, memory-mapped on load)."""
    from bayling.errors import require

    datasets = require("datasets", "train")
    cache = out / ".hf_cache"
    try:
        ds = datasets.Dataset.from_json(str(out / "train.jsonl"), cache_dir=str(cache))
        shutil.rmtree(out / "hf", ignore_errors=True)
        ds.save_to_disk(str(out / "hf"), max_shard_size="256MB")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _lid_info(cfg: DataConfig, flt: ExampleFilter, langs: list[str]) -> dict[str, Any]:
    if flt.lid is None:
        return {"backend": None}
    return {
        "backend": cfg.filters.lid_backend,
        "checked_turns": flt.counts["lid_checked"],
        "unchecked_turns": flt.counts["lid_unchecked"],
        "unchecked_languages": [c for c in langs if not flt.lid.checkable(c)],
    }


def _merge(
    cfg: DataConfig,
    out: Path,
    tmp: Path,
    buckets: int,
    counter: Any = None,
    budgets: dict[str, int] | None = None,
) -> tuple[Stats, dict[str, int], dict[str, int]]:
    """Sort each bucket by key, drop duplicates (and, with ``budgets``, the examples of a kind once its token
    budget is spent), write train.jsonl (+ ShareGPT) and collect stats.

    Returns:
        The stats, the drop counts, and the tokens written per kind (token-budget builds; else empty).
    """
    counter = counter or (TokenCounter(cfg.tokenizer) if cfg.tokenizer else None)
    pivots = expand_languages(cfg.pivot_languages)
    stats = Stats(counter)
    dedup = Dedup(cfg.filters.dedup, cfg.filters.near_dedup)
    dups: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    sharegpt = JsonlWriter(out / "train.sharegpt.jsonl") if "sharegpt" in cfg.formats else None
    with JsonlWriter(out / "train.jsonl") as w:
        if sharegpt:
            sharegpt.__enter__()
        try:
            for b in range(buckets):
                for ex in _read_bucket(tmp, b):
                    why = dedup.reason(ex)
                    if why:
                        dups[why] += 1
                        continue
                    if cfg.token_budget:
                        kind = ex["task"] if ex["task"] != "general" else f"general_{ex['src']}"
                        # a kind split by language (data.budget_by) is capped per language instead
                        lang = need_language(ex.get("src", ""), ex.get("tgt", ""), pivots)
                        key = f"{kind}:{lang}" if f"{kind}:{lang}" in (budgets or {}) else kind
                        if key in (budgets or {}) and spent[key] >= budgets[key]:
                            dups["over_budget"] += 1
                            continue
                        n = sum(counter.count([m["content"] for m in ex["messages"]]))
                        spent[kind] += n
                        if key != kind:
                            spent[key] += n
                    w.write(ex)
                    if sharegpt:
                        sharegpt.write(to_sharegpt(ex))
                    stats.add(ex)
        except BaseException as e:
            if sharegpt:
                sharegpt.__exit__(type(e), e, None)
            raise
        if sharegpt:
            sharegpt.__exit__(None, None, None)
    return stats, dict(dups), dict(spent)


def _read_bucket(tmp: Path, b: int) -> Iterator[dict[str, Any]]:
    """One bucket of every shard, in (key, id) order: the same order whatever produced it. Lines stay unparsed
    until yielded, so the bucket costs its JSON text in memory, not its objects."""
    rows: list[tuple[int, str, str]] = []
    for f in sorted(tmp.glob(f"*.b{b}.tsv")):
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                key, uid, js = line.rstrip("\n").split("\t", 2)
                rows.append((int(key), uid, js))
    rows.sort(key=lambda r: (r[0], r[1]))
    for i in range(len(rows)):
        js = rows[i][2]
        rows[i] = None  # type: ignore[call-overload]  # free each line once parsed
        yield json.loads(js)


def _run_shards(plan: ShardPlan, num_proc: int) -> list[dict[str, Any]]:
    if num_proc == 1:
        return [run_shard(plan, 0, 1)]
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(num_proc) as pool:
        return pool.starmap(run_shard, [(plan, s, num_proc) for s in range(num_proc)])
