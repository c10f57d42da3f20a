"""Held-out, few-shot and training parts of a parallel corpus, split by document.

FLORES-200 devtest is 1012 sentences from 281 articles (runs of 1-6 consecutive lines per article,
``metadata_devtest.tsv``). A random sentence split would train on the neighbours of every test
sentence (same names, numbers, topic), so scores would measure memory, not translation. With document
ids, whole documents go to one part: the held-out test articles (``heldout.jsonl``), a small pool of
few-shot demonstration articles (``fewshot.jsonl``, for prompting the base model) and the training
articles. Every document id found is written to ``split.json`` under the part it went to.

Document ids come from the record's ``doc`` (a JSONL key or TSV column) or, for directories of aligned
files, from a file beside them (:func:`bayling.records.document_ids`): FLORES ``metadata_SPLIT.tsv`` (the ``URL`` column) or NTREX-128
``DOCUMENT_IDS.tsv`` (one id a line). A source without any (the shipped sample) is split by record,
exactly as before: ``heldout`` records drawn with the build's random generator.

The split is a function of the document ids, the two sizes and the seed only; the data mix never
changes it, so every preset of an ablation is scored on the same held-out sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bayling.errors import DataError

PARTS = ("heldout", "fewshot", "train")


@dataclass
class Split:
    """Which record ordinals (positions among the source's usable records) went to which part."""

    by: str
    """``document`` (whole documents per part) or ``record`` (no document ids: records drawn one by one)."""
    n: int
    heldout: list[int]
    """Ordinals of the held-out records, in the order they are written (see :func:`split_records`)."""
    fewshot: list[int]
    docs: dict[str, list[str]] = field(default_factory=dict)
    """``{part: document ids}`` (empty when split by record)."""

    @property
    def excluded(self) -> frozenset[int]:
        """Ordinals never used for training data (held-out and few-shot)."""
        return frozenset(self.heldout) | frozenset(self.fewshot)

    @property
    def n_train(self) -> int:
        return self.n - len(self.heldout) - len(self.fewshot)

    def to_dict(self, ids: dict[int, str], seed: int) -> dict[str, Any]:
        """What ``split.json`` holds: per part its records, documents and (held-out, few-shot) record ids."""
        parts: dict[str, Any] = {}
        for part in PARTS:
            rows = {"heldout": self.heldout, "fewshot": self.fewshot}.get(part)
            parts[part] = {
                "records": len(rows) if rows is not None else self.n_train,
                "documents": len(self.docs.get(part, [])) if self.by == "document" else None,
            }
            if rows is not None:
                parts[part]["ids"] = [ids[i] for i in rows]
            if self.by == "document":
                parts[part]["docs"] = self.docs[part]
        return {"by": self.by, "seed": seed, "records": self.n, "parts": parts}


def split_records(
    docs: list[str | None], heldout: int, fewshot: int, seed: int, rng: random.Random | None = None
) -> Split:
    """Split ``len(docs)`` records into held-out, few-shot and training parts.

    With document ids (any record has one; a record without gets a document of its own), documents are
    shuffled with a generator seeded by ``seed`` and taken whole, in that order, for the held-out part until
    it holds at least ``heldout`` records, then for the few-shot pool until it holds at least ``fewshot``;
    the rest is training data. Each part is written round-robin over its documents (first sentence of every
    document, then the second...), so the first N held-out records come from N different documents.

    Without any document ids, ``heldout`` records are drawn with ``rng`` (the build's generator, so this is
    the split bayling always made) and the few-shot pool from the rest with a generator of its own.

    Args:
        docs: the document id of each record (ordinal order), None where unknown.
        heldout: held-out records wanted.
        fewshot: few-shot pool records wanted.
        seed: the build's seed.
        rng: the build's generator (record split only); default ``random.Random(seed)``.

    Raises:
        DataError: when the two parts would leave no training record.
    """
    n = len(docs)
    if heldout < 0 or fewshot < 0:
        raise DataError(f"data.heldout and data.fewshot must be >= 0, got {heldout} and {fewshot}")
    if n <= heldout + fewshot:
        raise DataError(
            f"only {n} parallel records, need more than heldout={heldout} + fewshot={fewshot} (none left to train on)"
        )
    if not any(d is not None for d in docs):
        held = sorted((rng or random.Random(seed)).sample(range(n), heldout))
        taken = set(held)
        pool = random.Random(f"{seed}:fewshot").sample([i for i in range(n) if i not in taken], fewshot)
        return Split("record", n, held, sorted(pool))
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        groups.setdefault(d if d is not None else f"#record-{i}", []).append(i)
    order = list(groups)
    random.Random(f"{seed}:split").shuffle(order)
    chosen: dict[str, list[str]] = {part: [] for part in PARTS}
    size = dict.fromkeys(PARTS, 0)
    for d in order:
        part = "heldout" if size["heldout"] < heldout else "fewshot" if size["fewshot"] < fewshot else "train"
        chosen[part].append(d)
        size[part] += len(groups[d])
    if size["train"] == 0:
        raise DataError(
            f"{n} records in {len(groups)} documents: heldout={heldout} + fewshot={fewshot} leave no training document"
        )
    first = {d: groups[d][0] for d in groups}
    for part in PARTS:
        chosen[part].sort(key=first.__getitem__)  # file order within a part
    return Split(
        "document",
        n,
        _round_robin([groups[d] for d in chosen["heldout"]]),
        _round_robin([groups[d] for d in chosen["fewshot"]]),
        chosen,
    )


def _round_robin(runs: list[list[int]]) -> list[int]:
    out: list[int] = []
    for k in range(max((len(r) for r in runs), default=0)):
        out += [r[k] for r in runs if k < len(r)]
    return out
