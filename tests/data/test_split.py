"""The held-out / few-shot / training split: by article on FLORES (real metadata), by record on the sample."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from bayling.data import build
from bayling.data.config import DataConfig, FilterConfig
from bayling.data.parallel import iter_parallel
from bayling.data.split import split_records
from bayling.errors import DataError
from bayling.records import document_ids, read_jsonl_parallel


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _line(record_id: str) -> int:
    return int(record_id.rsplit("-", 1)[1])  # flores200-devtest-N: line N of devtest


@pytest.fixture(scope="module")
def flores(shared_data_dir) -> Path:
    return shared_data_dir / "flores200"


@pytest.fixture(scope="module")
def flores_build(flores, tmp_path_factory) -> Path:
    cfg = DataConfig(
        source="flores200",
        flores_dir=str(flores),
        languages=["eng_Latn", "deu_Latn"],
        split_by="document",
        heldout=100,
        fewshot=20,
        interactive=60,
        pairs=60,
        crosslingual=60,
        general=0,
    )
    return build(cfg, tmp_path_factory.mktemp("flores") / "out", seed=3).out_dir


def test_flores_split_leaks_no_article(flores, flores_build):
    urls, _ = document_ids(flores, "devtest")
    assert len(urls) == 1012 and len(set(urls)) == 281
    split = json.loads((flores_build / "split.json").read_text())
    parts = {p: set(split["parts"][p]["docs"]) for p in ("heldout", "fewshot", "train")}
    # no article in two parts, and every article somewhere
    assert not parts["heldout"] & parts["fewshot"] and not parts["heldout"] & parts["train"]
    assert not parts["fewshot"] & parts["train"]
    assert parts["heldout"] | parts["fewshot"] | parts["train"] == set(urls)
    assert sum(split["parts"][p]["records"] for p in parts) == 1012
    # what was written agrees with the metadata, line by line, and whole articles were taken
    held, pool = _rows(flores_build / "heldout.jsonl"), _rows(flores_build / "fewshot.jsonl")
    assert 100 <= len(held) < 106 and 20 <= len(pool) < 26  # FLORES articles have at most 6 sentences
    for rows, part in ((held, "heldout"), (pool, "fewshot")):
        assert [r["id"] for r in rows] == split["parts"][part]["ids"]
        assert all(r["doc"] == urls[_line(r["id"]) - 1] for r in rows)
        lines = {_line(r["id"]) for r in rows}
        assert lines == {n for n, u in enumerate(urls, 1) if u in parts[part]}
        assert {r["doc"] for r in rows} == parts[part]
    # the first held-out sentences come from different articles (evaluation reads the first N)
    first = [r["doc"] for r in held[: len(parts["heldout"])]]
    assert len(set(first)) == len(first)
    # every training example comes from a training article
    train = _rows(flores_build / "train.jsonl")
    assert len(train) > 150
    assert {urls[_line(ex["source_id"]) - 1] for ex in train} <= parts["train"]
    stats = json.loads((flores_build / "stats.json").read_text())
    assert stats["split"]["by"] == "document" and stats["parallel_records_used"] == split["parts"]["train"]["records"]


def test_flores_split_is_deterministic_and_seeded(flores, flores_build):
    docs = [r.doc for r in iter_parallel("flores200", ["eng_Latn"], str(flores))]
    a = split_records(docs, 100, 20, seed=3)
    assert a == split_records(docs, 100, 20, seed=3)
    held = [r["id"] for r in _rows(flores_build / "heldout.jsonl")]
    assert held == [f"flores200-devtest-{i + 1}" for i in a.heldout]  # the build made this same split
    b = split_records(docs, 100, 20, seed=4)
    assert set(b.docs["heldout"]) != set(a.docs["heldout"])
    # the split depends on the documents and sizes only: a build's data mix cannot change the test set
    assert split_records(docs, 100, 20, seed=3, rng=random.Random(99)) == a


def test_sample_split_is_unchanged_and_the_fewshot_pool_is_disjoint(tmp_path):
    langs = ["eng_Latn", "zho_Hans", "deu_Latn"]
    kw = dict(source="sample", languages=langs, heldout=12, interactive=40, crosslingual=20, general=0)
    base = build(DataConfig(**kw), tmp_path / "a", seed=5).out_dir
    assert (base / "fewshot.jsonl").read_text() == ""  # no documents: no pool unless asked for
    n = sum(1 for _ in iter_parallel("sample", langs))
    expected = sorted(random.Random(5).sample(range(n), 12))  # what bayling has always held out
    assert json.loads((base / "split.json").read_text())["by"] == "record"
    with_pool = build(DataConfig(**kw, fewshot=8), tmp_path / "b", seed=5).out_dir
    held = _rows(with_pool / "heldout.jsonl")
    assert (with_pool / "heldout.jsonl").read_bytes() == (base / "heldout.jsonl").read_bytes()
    all_ids = [r.id for r in iter_parallel("sample", langs)]
    assert [r["id"] for r in held] == [all_ids[i] for i in expected]
    pool = read_jsonl_parallel(with_pool / "fewshot.jsonl")
    assert len(pool) == 8 and set(langs) == set(pool[0].texts)
    pool_ids = {r.id for r in pool}
    assert not pool_ids & {r["id"] for r in held}
    assert not pool_ids & {ex["source_id"] for ex in _rows(with_pool / "train.jsonl")}


def test_doc_key_of_a_jsonl_source_drives_the_split(tmp_path):
    src = tmp_path / "par.jsonl"
    rows = [
        {"id": f"r{i}", "doc": f"story-{i // 3}", "en": f"Sentence {i} of story {i // 3}.", "de": f"Satz {i}."}
        for i in range(30)
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = build(
        DataConfig(
            source=str(src),
            languages=["en", "de"],
            heldout=5,
            fewshot=2,
            interactive=0,
            pairs=20,
            crosslingual=0,
            general=0,
            filters=FilterConfig(lid=False),
        ),
        tmp_path / "o",
        seed=0,
    ).out_dir
    held, pool = _rows(out / "heldout.jsonl"), _rows(out / "fewshot.jsonl")
    assert len(held) == 6 and len({r["doc"] for r in held}) == 2  # two whole stories of three sentences
    assert len(pool) == 3 and not {r["doc"] for r in pool} & {r["doc"] for r in held}
    used = {r["doc"] for r in held + pool}
    assert not {rows[int(ex["source_id"][1:])]["doc"] for ex in _rows(out / "train.jsonl")} & used


def test_document_split_needs_document_ids_and_aligned_metadata(tmp_path):
    with pytest.raises(DataError, match="split_by=document, but the records carry no document ids"):
        build(DataConfig(source="sample", languages=["en", "zh"], split_by="document"), tmp_path / "s", seed=0)
    (tmp_path / "devtest").mkdir()
    for code, text in (("eng_Latn", "One.\nTwo.\nThree.\n"), ("deu_Latn", "Eins.\nZwei.\nDrei.\n")):
        (tmp_path / "devtest" / f"{code}.devtest").write_text(text)
    (tmp_path / "metadata_devtest.tsv").write_text("URL\tdomain\nhttp://a\tx\nhttp://b\tx\n")
    with pytest.raises(DataError, match=r"metadata_devtest\.tsv: 2 document ids but .* has more lines"):
        list(iter_parallel(str(tmp_path), ["en", "de"]))
    (tmp_path / "metadata_devtest.tsv").write_text("URL\tdomain\nhttp://a\tx\nhttp://b\tx\nhttp://b\tx\n")
    assert [r.doc for r in iter_parallel(str(tmp_path), ["en", "de"])] == ["http://a", "http://b", "http://b"]
    with pytest.raises(DataError, match="leave no training document"):
        split_records(["a", "b", "b", "b"], 1, 1, seed=0)  # two documents cannot make three parts


def test_ntrex_directory_reads_with_its_document_ids(shared_data_dir):
    recs = list(iter_parallel(str(shared_data_dir / "ntrex128"), ["eng_Latn", "deu_Latn", "zho_Hans"]))
    assert len(recs) == 1997 and len({r.doc for r in recs}) == 123
    by_doc = defaultdict(list)
    for i, r in enumerate(recs):
        by_doc[r.doc].append(i)
    assert all(v == list(range(v[0], v[-1] + 1)) for v in by_doc.values())  # articles are contiguous lines


def test_auto_falling_back_to_a_sentence_split_warns_and_is_recorded(tmp_path, caplog):
    """A source without document ids under ``split_by: auto``: a loud warning, and ``split.json`` says so."""
    src = tmp_path / "par.jsonl"
    rows = [{"id": f"r{i}", "en": f"Sentence number {i}.", "de": f"Satz Nummer {i}."} for i in range(30)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    kw = dict(languages=["en", "de"], heldout=5, interactive=0, pairs=10, crosslingual=0, general=0)
    cfg = DataConfig(source=str(src), filters=FilterConfig(lid=False), **kw)
    with caplog.at_level("WARNING"):
        out = build(cfg, tmp_path / "o", seed=0).out_dir
    split = json.loads((out / "split.json").read_text())
    assert split["by"] == "record" and split["fallback"].startswith(f"data.split_by=auto: {src} has no document ids")
    assert any("has no document ids" in r.getMessage() for r in caplog.records)
    cfg.split_by = "record"  # asked for: no warning, nothing to record
    caplog.clear()
    out = build(cfg, tmp_path / "r", seed=0).out_dir
    assert "fallback" not in json.loads((out / "split.json").read_text()) and not caplog.records
