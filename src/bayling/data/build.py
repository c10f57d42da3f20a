"""The data stage: ``build(cfg, out_dir)`` writes ``train.jsonl``, ``heldout.jsonl`` and ``stats.json``.

Run as::

    bayling data configs/quickstart.yaml                 # the data stage of a run
    bayling data build configs/data/flores-100langs.yaml # a data-only preset

Steps: count the parallel records and draw the held-out split *before* any training example is made (so
evaluation sentences never leak into training data); generate template examples per record (optionally in
``num_proc`` processes); add general zh/en instructions and teacher-LLM examples; filter (length, ratio,
language ID, contamination); shuffle through hash buckets, drop duplicates and write. Inputs are streamed
and examples are never all in memory, so millions of examples fit in constant memory.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.data.config import DataConfig
from bayling.data.filters import Dedup, ExampleFilter
from bayling.data.generate import BucketWriter, ShardPlan, emit, make_filter, run_shard
from bayling.data.interactive import Dialogue
from bayling.data.io import BadLines, JsonlWriter, to_sharegpt, write_json, write_jsonl
from bayling.data.parallel import ParallelRecord, iter_parallel
from bayling.data.plan import Counts, GeneralPool, resolve_languages, select_general
from bayling.data.stats import Stats, TokenCounter, fertility
from bayling.errors import ConfigError, DataError
from bayling.progress import console

BUCKET_SIZE = 50_000
"""Examples per shuffle bucket: the merge holds one bucket in memory."""


def _directions(langs: list[str], pivots: list[str]) -> list[tuple[str, str]]:
    pairs = list(itertools.permutations(langs, 2))
    if pivots:
        pairs = [(a, b) for a, b in pairs if a in pivots or b in pivots]
    return pairs


def _check(cfg: DataConfig) -> None:
    unknown = set(cfg.formats) - {"chat", "sharegpt", "hf"}
    if unknown:
        raise ConfigError(f"data.formats: unknown format(s) {sorted(unknown)}; use chat, sharegpt and/or hf")
    if cfg.num_proc < 1:
        raise ConfigError("data.num_proc must be at least 1")
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
    heldout: list[ParallelRecord]
    heldout_idx: frozenset[int]
    selected: frozenset[int] | None
    n_used: int
    counts: Counts
    general: GeneralPool
    general_bad: dict[str, Any]


def prepare(cfg: DataConfig, out: Path, seed: int) -> Prepared:
    """Count records, draw (and write) the held-out split, plan counts and choose general instructions."""
    _check(cfg)
    seed = cfg.seed if cfg.seed is not None else seed
    langs = resolve_languages(cfg.languages)
    pivots = resolve_languages(cfg.pivot_languages)
    ils = resolve_languages(cfg.instruction_languages)
    rng = random.Random(seed)
    n = sum(
        1 for _ in iter_parallel(cfg.source, langs, cfg.flores_dir, cfg.flores_split, BadLines(cfg.skip_bad_lines))
    )
    if n <= cfg.heldout:
        raise DataError(
            f"{cfg.source}: only {n} parallel records with all of {len(langs)} languages, "
            f"need more than heldout={cfg.heldout}"
        )
    heldout_idx = frozenset(rng.sample(range(n), cfg.heldout))
    n_train = n - cfg.heldout
    selected = (
        frozenset(rng.sample(range(n_train), cfg.max_records))
        if cfg.max_records and cfg.max_records < n_train
        else None
    )
    heldout = [
        r
        for i, r in enumerate(iter_parallel(cfg.source, langs, cfg.flores_dir, cfg.flores_split, BadLines(True)))
        if i in heldout_idx
    ]
    write_jsonl(out / "heldout.jsonl", (r.to_dict() for r in heldout))
    counts, pool, general_bad = select_general(cfg, rng, cfg.teacher.examples)
    directions = _directions(langs, pivots)
    if (counts.interactive or cfg.teacher.examples) and not directions:
        raise DataError(f"no translation directions: languages={langs} pivot_languages={pivots}")
    return Prepared(
        seed,
        langs,
        ils,
        directions,
        n,
        heldout,
        heldout_idx,
        selected,
        len(selected) if selected is not None else n_train,
        counts,
        pool,
        general_bad,
    )


def run_teacher(
    cfg: DataConfig, out: Path, p: Prepared
) -> tuple[list[tuple[Dialogue, dict[str, Any], str]], dict[str, Any]]:
    """Teacher examples for this build (resuming from ``OUT/teacher/journal.jsonl``)."""
    from bayling.data.teacher_jobs import teacher_examples

    seeds = dict(p.general.iter(set(p.general.seeds)))
    records = [
        r
        for i, r in enumerate(iter_parallel(cfg.source, p.langs, cfg.flores_dir, cfg.flores_split, BadLines(True)))
        if i not in p.heldout_idx
    ]
    return teacher_examples(
        cfg, out, p.seed, records, [seeds[i] for i in p.general.seeds], p.langs, p.directions, p.ils
    )


def generate_teacher(cfg: DataConfig, out_dir: str | Path, seed: int = 0) -> Path:
    """Only the teacher part of a build: ``OUT/teacher/teacher.jsonl`` (+ journal); a later build reuses it."""
    out = Path(out_dir)
    if not cfg.teacher.examples:
        raise ConfigError("data.teacher.examples is 0: nothing for the teacher to do")
    _, info = run_teacher(cfg, out, prepare(cfg, out, seed))
    write_json(out / "teacher" / "stats.json", info)
    return out / "teacher" / "teacher.jsonl"


def build(cfg: DataConfig, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the training mix and the held-out split.

    Args:
        cfg: the data config.
        out_dir: directory to write into.
        seed: run seed (used when ``cfg.seed`` is None).

    Returns:
        ``out_dir``, holding ``train.jsonl`` (chat ``messages`` per line), ``heldout.jsonl``, ``stats.json``
        and, when asked for, ``train.sharegpt.jsonl``.
    """
    t0 = time.time()
    out = Path(out_dir)
    p = prepare(cfg, out, seed)
    tmp = out / ".build"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    expected = p.counts.interactive + p.counts.crosslingual + p.counts.general_total + cfg.teacher.examples
    buckets = max(1, -(-expected // BUCKET_SIZE))
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
        heldout_idx=p.heldout_idx,
        selected=p.selected,
        n_used=p.n_used,
        interactive=p.counts.interactive,
        crosslingual=p.counts.crosslingual,
        directions=p.directions,
        instruction_languages=p.ils,
        task_weights={k: w for k, w in sorted(cfg.crosslingual_tasks.items()) if w > 0},  # YAML order must not matter
        max_followups=cfg.max_followups,
        templates=cfg.templates,
        seed=p.seed,
        buckets=buckets,
        tmp_dir=str(tmp),
        filters=cfg.filters,
        contamination=cfg.contamination,
        heldout_texts=[r.texts for r in p.heldout],
        skip_flores=same_flores,
    )
    console.print(
        f"data: {p.n} parallel records x {len(p.langs)} languages ({cfg.heldout} held out); making "
        f"{p.counts.interactive} dialogues, {p.counts.crosslingual} cross-lingual, {p.counts.general_total} general"
        + (f", {cfg.teacher.examples} teacher jobs" if cfg.teacher.examples else "")
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

    stats, dups = _merge(cfg, out, tmp, buckets)
    shutil.rmtree(tmp, ignore_errors=True)
    if "hf" in cfg.formats:
        _save_hf(out)
    info = stats.to_dict()
    info.update(
        heldout_records=len(p.heldout),
        parallel_records=p.n,
        parallel_records_used=p.n_used,
        requested={
            "interactive": p.counts.interactive,
            "crosslingual": p.counts.crosslingual,
            "general": p.counts.general,
            "teacher": cfg.teacher.examples,
        },
        general_available=p.general.available,
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


def _merge(cfg: DataConfig, out: Path, tmp: Path, buckets: int) -> tuple[Stats, dict[str, int]]:
    """Sort each bucket by key, drop duplicates, write train.jsonl (+ ShareGPT) and collect stats."""
    stats = Stats(TokenCounter(cfg.tokenizer) if cfg.tokenizer else None)
    dedup = Dedup(cfg.filters.dedup, cfg.filters.near_dedup)
    dups: Counter[str] = Counter()
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
    return stats, dict(dups)


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
