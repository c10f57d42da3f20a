"""Few-shot translation prompts for base models: k demonstrations, completion style, cut at the newline.

A base LM given a chat turn copies the request or rambles; prompted the way it saw text in
pre-training, after a few translated examples, it translates. This is how lm-evaluation-harness,
ALMA and Tower evaluate base models, and what bayling's ``fewshot`` prompt does::

    English: <demonstration 1 source>
    German: <demonstration 1 target>

    ...

    English: <test source>
    German:

This is lm-eval's translation layout (``doc_to_text`` ``"{src}: {text}\\n{tgt}:"``, target delimiter
``" "``, demonstrations joined by a blank line); the engine continues it with
:meth:`~bayling.engines.Engine.complete` and the continuation is cut at the first newline. The wording is
:func:`bayling.prompts.fewshot_prompt`, with the language names the chat prompt uses
(:func:`bayling.prompts.lang_name`, i.e. the :mod:`bayling.languages` table: "German", "Chinese").

Demonstrations are never test sentences. The pool, first that applies (:func:`load_pool`):

1. ``eval.translation.fewshot_pool`` (a JSONL or TSV parallel file);
2. the data stage's ``fewshot.jsonl`` beside ``heldout.jsonl`` (``testset: heldout``);
3. FLORES-200 ``dev`` files when present (FLORES, WMT22, NTREX and WMT24++ test sets);
4. the test set's own records that are not scored (after the first ``max_sentences``); on FLORES
   devtest only those from articles with no scored sentence (``metadata_devtest.tsv``).

Each direction draws ``k`` records that have both languages, are not scored and share no text with
any scored source or reference, with ``random.Random(f"{seed}:{direction}")``: the same demonstrations
for every sentence of a direction, and the same in every run with that seed.

One draw is not a baseline: at 270M, which demonstrations are drawn moves a direction by several chrF++
points. A few-shot system is therefore translated once per seed of ``eval.translation.fewshot_seeds``
(:func:`fewshot_seeds`; three by default), each draw cached on its own, and scored as the mean over the
draws (:func:`mean_over_seeds`), which keeps the single-draw schema of ``metrics.json`` and adds each metric's
min–max and every draw's own scores.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayling.errors import ConfigError, DataError
from bayling.evaluate.config import EvalConfig
from bayling.prompts import DELIMITER, QUERY, SHOT, STOP, load_templates
from bayling.records import ParallelRecord
from bayling.testsets import Bitext


def fewshot_record(
    k: int, pool: str, demo_ids: dict[str, list[str]], by_seed: dict[int, dict[str, list[str]]] | None = None
) -> dict[str, Any]:
    """How a system was prompted few-shot, as ``metrics.json`` records it (``prompts.<system>``).

    ``demos`` holds the first draw's demonstration ids (what a single-draw reader expects); with several draws,
    ``seeds`` lists them and ``demos_by_seed`` holds each draw's ids.
    """
    rec = {
        "prompt": "fewshot",
        "k": k,
        "shot": SHOT,
        "query": QUERY,
        "delimiter": DELIMITER,
        "stop": STOP[0],
        "pool": pool,
        "demos": demo_ids,
    }
    if by_seed and len(by_seed) > 1:
        rec |= {"seeds": list(by_seed), "demos_by_seed": {str(s): ids for s, ids in by_seed.items()}}
    return rec


def chat_record(chat_format: str) -> dict[str, Any]:
    """How a system was prompted in chat, as ``metrics.json`` records it."""
    return {"prompt": "chat", "template": load_templates()["translate"]["eng_Latn"][0], "chat_format": chat_format}


def prompt_summary(rec: dict[str, Any]) -> str:
    """One line for tables: ``5-shot completion "{src}: {source}⏎{tgt}:" (demos: ...)`` or the chat request."""
    if rec.get("prompt") == "fewshot":
        ks = sorted({len(v) for v in rec.get("demos", {}).values()}) or [rec["k"]]
        k = "/".join(map(str, ks))
        seeds = rec.get("seeds")
        draws = f"; mean over {len(seeds)} demonstration draws, seeds {', '.join(map(str, seeds))}" if seeds else ""
        return f'{k}-shot completion "{rec["query"]}", cut at the newline (demos: {rec["pool"]}{draws})'.replace(
            "\n", "⏎"
        )
    fmt = rec.get("chat_format", "auto")
    return f'chat ({fmt} format): "{rec.get("template", "")}"'.replace("\n", "⏎")


@dataclass
class Pool:
    """Records demonstrations may be drawn from.

    Attributes:
        records: parallel records (any languages; each direction uses those that have both of its own).
        source: where they come from, as reported in ``metrics.json`` and the report.
        articles: record id -> document id, to keep demonstrations out of documents that have scored sentences.
    """

    records: list[ParallelRecord]
    source: str
    articles: dict[str, str] = field(default_factory=dict)


def select_demos(pool: Pool, bitext: Bitext, k: int, seed: int, scored: Iterable[Bitext] = ()) -> list[ParallelRecord]:
    """Up to ``k`` demonstrations for ``bitext``'s direction, never a scored sentence, deterministic in ``seed``.

    Args:
        pool: candidate records.
        bitext: the direction being prompted (its ids, sources and references are excluded).
        k: number of demonstrations.
        seed: the evaluation seed.
        scored: every bitext of the evaluation (their sentences are excluded too).
    """
    scored = [bitext, *scored]
    ids = {i for b in scored for i in b.ids}
    texts = {t for b in scored for t in (*b.sources, *b.refs)}
    docs = {pool.articles[i] for i in ids if i in pool.articles}
    usable = [
        r
        for r in pool.records
        if bitext.src in r.texts
        and bitext.tgt in r.texts
        and r.id not in ids
        and pool.articles.get(r.id, "\0") not in docs
        and not {r.texts[bitext.src], r.texts[bitext.tgt]} & texts
        and all(x.strip() and "\n" not in x for x in (r.texts[bitext.src], r.texts[bitext.tgt]))
    ]
    return random.Random(f"{seed}:{bitext.key}").sample(usable, min(k, len(usable)))


# ----------------------------------------------------------------------------- the pool


def _read_pool_file(path: str) -> list[ParallelRecord]:
    from bayling.records import iter_tsv_parallel, read_jsonl_parallel

    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"eval.translation.fewshot_pool: {p} not found")
    if p.suffix == ".tsv":
        return list(iter_tsv_parallel(p))
    if p.suffix in (".jsonl", ".json"):
        return read_jsonl_parallel(p)
    raise ConfigError(f"eval.translation.fewshot_pool: {p} must be a .jsonl or .tsv parallel file")


def _flores_articles(root: Path, split: str) -> dict[str, str]:
    """``flores200-{split}-N`` -> article URL from ``metadata_{split}.tsv`` (empty when it is absent)."""
    meta = root / f"metadata_{split}.tsv"
    if not meta.is_file():
        return {}
    from bayling.validate import read_lines

    lines = read_lines(meta)[1:]  # not UTF-8: one line naming the line and byte
    return {f"flores200-{split}-{i + 1}": line.split("\t", 1)[0] for i, line in enumerate(lines)}


def _flores_pool(root: Path, codes: Sequence[str], split: str) -> Pool:
    from bayling.records import read_columns

    cols = read_columns(root, codes, split)
    n = len(next(iter(cols.values())))
    recs = [ParallelRecord(f"flores200-{split}-{i + 1}", {c: cols[c][i] for c in codes}) for i in range(n)]
    if split == "dev":
        return Pool(recs, f"FLORES-200 dev ({root})")
    articles = _flores_articles(root, split)
    where = "from articles without a scored sentence" if articles else "(no metadata: articles not checked)"
    return Pool(recs, f"FLORES-200 {split} sentences not scored, {where}", articles)


def _flores_root(cfg: EvalConfig) -> Path | None:
    from bayling.records import dataset_dir
    from bayling.testsets import TESTSETS

    if cfg.testset not in TESTSETS:
        p = Path(cfg.testset).expanduser()
        return p if p.is_dir() else None
    try:
        return dataset_dir("flores200", cfg.data_dir, cfg.flores_dir)
    except DataError:
        return None


def load_pool(cfg: EvalConfig, bitexts: Sequence[Bitext], heldout_file: str | Path | None = None) -> Pool:
    """The demonstration pool for ``cfg`` (an :class:`~bayling.evaluate.config.EvalConfig`), by the order
    in the module docstring.

    Args:
        cfg: the evaluation config.
        bitexts: the full test data per direction, before cutting to ``max_sentences`` (its records after
            the scored ones are the last resort).
        heldout_file: the data stage's ``heldout.jsonl`` (``testset: heldout``).
    """
    from bayling.records import load_parallel, read_jsonl_parallel

    codes = sorted({c for b in bitexts for c in (b.src, b.tgt)})
    if cfg.translation.fewshot_pool:
        pool_file = cfg.translation.fewshot_pool
        return Pool(_read_pool_file(pool_file), f"eval.translation.fewshot_pool {pool_file}")
    if cfg.testset == "heldout":
        beside = Path(heldout_file).with_name("fewshot.jsonl") if heldout_file else None
        pool = read_jsonl_parallel(beside) if beside is not None and beside.is_file() else []
        if pool:  # an empty file: the data stage set no pool aside (data.fewshot: 0), so fall through
            return Pool(pool, "the data stage's fewshot.jsonl")
        if heldout_file is None or not Path(heldout_file).is_file():
            raise DataError("eval.testset=heldout needs the data stage's heldout.jsonl (run `bayling data` first)")
        return Pool(read_jsonl_parallel(heldout_file), "held-out records not scored (after eval.max_sentences)")
    if Path(cfg.testset).suffix in (".jsonl", ".json", ".tsv"):
        return Pool(load_parallel(cfg.testset, codes), f"records of {cfg.testset} not scored")
    root = _flores_root(cfg)
    if root is not None:
        try:
            return _flores_pool(root, codes, "dev")
        except DataError:
            if cfg.testset not in ("wmt22", "ntrex", "wmt24pp"):  # FLORES itself: its unscored devtest
                return _flores_pool(root, codes, "devtest")
    recs = [
        ParallelRecord(i, {b.src: s, b.tgt: r})
        for b in bitexts
        for i, s, r in zip(b.ids, b.sources, b.refs, strict=True)
    ]
    return Pool(recs, f"{cfg.testset} sentences not scored (after eval.max_sentences)")


def fewshot_seeds(cfg: EvalConfig) -> list[int]:
    """The demonstration draws of a few-shot system: ``eval.translation.fewshot_seeds``, else ``seed`` and the
    next two (``cfg.seed`` None counts as 0)."""
    if cfg.translation.fewshot_seeds is not None:
        return list(cfg.translation.fewshot_seeds)
    seed = cfg.seed or 0
    return [seed, seed + 1, seed + 2]


def demonstrations(
    cfg: EvalConfig, pool: Pool, scored: Sequence[Bitext], system: str = "fewshot", seed: int | None = None
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[str]]]:
    """Demonstrations for every scored direction: ``({direction: [(source, target)]}, {direction: [ids]})``,
    drawn with ``seed`` (default ``cfg.seed``).

    Raises:
        ConfigError: a direction has no usable demonstration (``k > 0``).
    """
    from bayling.progress import console

    texts: dict[str, list[tuple[str, str]]] = {}
    ids: dict[str, list[str]] = {}
    short: list[str] = []
    k = cfg.translation.fewshot_k
    for b in scored:
        demos = select_demos(pool, b, k, cfg.seed if seed is None else seed, scored)
        if k > 0 and not demos:
            raise ConfigError(
                f"eval.translation.prompt=fewshot ({system}, {b.key}): no demonstrations outside the scored "
                f"sentences in {pool.source}; set eval.translation.fewshot_pool, add FLORES-200 dev files, or "
                "lower eval.max_sentences"
            )
        if len(demos) < k:
            short.append(f"{b.key} {len(demos)}")
        texts[b.key] = [(r.texts[b.src], r.texts[b.tgt]) for r in demos]
        ids[b.key] = [r.id for r in demos]
    if short:
        console.print(f"[yellow]eval: fewer than {k} demonstrations in {pool.source}: {', '.join(short)}[/yellow]")
    return texts, ids


# ----------------------------------------------------------------------------- several draws


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2)


def mean_over_seeds(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The scores of a few-shot system drawn with several seeds, in the single-draw schema of ``metrics.json``.

    Args:
        per_seed: ``{seed: {direction: scores}}``, each as :func:`~bayling.evaluate.translation.translate_and_score`
            returns them.

    Returns:
        ``{direction: scores}`` where each metric is ``{"score": mean, "signature", "min", "max"}`` (``None``
        with its reason where BLEU does not apply), each rate (``off_target``, ``unknown``, ``copy``) is the mean,
        and ``seeds`` holds every draw's own scores (``{"0": {...}, "1": {...}}``).
    """
    runs = list(per_seed.values())
    out: dict[str, dict[str, Any]] = {}
    for d, first in runs[0].items():
        entry: dict[str, Any] = {}
        for key, v in first.items():
            vals = [r[d][key] for r in runs]
            if isinstance(v, dict) and "score" in v:
                scores = [x["score"] for x in vals]
                if any(x is None for x in scores):
                    entry[key] = next(x for x in vals if x["score"] is None)
                    continue
                entry[key] = {"score": _mean(scores), "min": min(scores), "max": max(scores)}
                entry[key] |= {f: v[f] for f in ("signature",) if f in v}
                if "bp" in v:
                    entry[key]["bp"] = round(sum(x["bp"] for x in vals) / len(vals), 4)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                entry[key] = v if key == "n" else _mean(vals)
            else:
                entry[key] = v
        entry["seeds"] = {str(s): r[d] for s, r in per_seed.items()}
        out[d] = entry
    return out
