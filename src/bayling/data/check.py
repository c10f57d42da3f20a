"""Contamination of a training file: which of its examples share an n-gram with an evaluation set.

``bayling data check FILE`` indexes the evaluation sets (FLORES-200 devtest of some languages, a WMT-layout
directory, more files) with the same index a build filters with (:func:`bayling.data.filters.build_contamination_index`)
and reports the examples of a chat JSONL (OpenAI ``messages``, ShareGPT or Alpaca) whose turns hit it.

Run as::

    bayling data check runs/quickstart/data/train.jsonl --flores $BAYLING_FLORES_DIR --languages eng_Latn zho_Hans
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bayling.data.config import ContaminationConfig
from bayling.data.filters import build_contamination_index
from bayling.data.stats import turns_of
from bayling.errors import DataError
from bayling.languages import expand_languages
from bayling.validate import BadLines, iter_jsonl_numbered


def check_file(
    path: str | Path,
    languages: list[str],
    flores_dir: str | None = None,
    wmt_dir: str | None = None,
    eval_files: list[str] | None = None,
    ngram: int = 13,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Check ``path`` against the evaluation sets.

    Args:
        path: the training file (chat JSONL).
        languages: FLORES languages (or sets such as ``flores101``) whose devtest files are indexed.
        flores_dir: FLORES-200 directory (its devtest of ``languages``).
        wmt_dir: a directory of evaluation files whose suffix is a language (WMT22 layout).
        eval_files: more evaluation files (text or JSONL).
        ngram: n-gram length of a hit.
        skip_bad: skip malformed lines (counted) instead of failing.

    Returns:
        ``{"file", "examples", "contaminated", "first" (up to 20 ids), "eval_sentences", "sources", "ngram",
        "skipped_lines"}``.
    """
    cfg = ContaminationConfig(flores_dir=flores_dir, wmt_dir=wmt_dir, extra_files=list(eval_files or []), ngram=ngram)
    index = build_contamination_index(cfg, expand_languages(languages), [], skip_flores=False)
    hits, n, bad = [], 0, BadLines(skip_bad)
    for line, obj in iter_jsonl_numbered(path, bad):
        try:
            turns = turns_of(obj, f"{path}:{line}")
        except DataError as e:
            bad.error(str(e))
            continue
        n += 1
        if index.hit([t["content"] for t in turns]):
            hits.append(str(obj.get("id", f"line {line}")))
    return {
        "file": str(path),
        "examples": n,
        "contaminated": len(hits),
        "first": hits[:20],
        "eval_sentences": index.sentences,
        "sources": index.sources,
        "ngram": ngram,
        "skipped_lines": bad.to_dict(),
    }
