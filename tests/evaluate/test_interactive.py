"""Interactive translation evaluation on the tiny model: per-turn scores and constraint hit-rate."""

from __future__ import annotations

import pytest

from bayling.data.parallel import read_jsonl_parallel, sample_path
from bayling.errors import ConfigError, DataError
from bayling.evaluate.interactive import (
    constrained_translation,
    constraint_hits,
    load_constrained,
    refinement_dialogues,
)
from bayling.evaluate.testsets import read_flores_columns


def test_constraint_hits():
    assert constraint_hits("And how long does it take?", ["And how", "take", "prepare it"]) == (2, 2)
    assert constraint_hits("and HOW long", ["And how"]) == (0, 1)


def test_load_bayling_constrained_sets(shared_data_dir):
    sets = load_constrained(str(shared_data_dir))
    assert set(sets) == {"zho_Hans-eng_Latn", "eng_Latn-zho_Hans"}
    assert len(sets["zho_Hans-eng_Latn"]) == 1875 and len(sets["eng_Latn-zho_Hans"]) == 2037
    assert sets["zho_Hans-eng_Latn"][2]["constraint"] == ["And how", "help me", "prepare it"]


def test_constrained_translation_hit_rate(tiny_engine, shared_data_dir):
    items = load_constrained(str(shared_data_dir), limit=3)["zho_Hans-eng_Latn"]
    summary, rows = constrained_translation(tiny_engine, items, "zho_Hans", "eng_Latn", max_new_tokens=6)
    total = sum(len(it["constraint"]) for it in items)
    assert summary["constraints"] == total == 5 and summary["n"] == 3
    assert summary["hit_rate"] == pytest.approx(100 * sum(r["hits"] for r in rows) / total, abs=0.01)
    assert all(r["hits"] == constraint_hits(r["hyp"], r["constraint"])[0] for r in rows)
    assert "tok:13a" in summary["bleu"]["signature"]


def test_refinement_dialogue_scores_every_turn(tiny_engine, shared_data_dir):
    cols = read_flores_columns(shared_data_dir / "flores200", ["eng_Latn", "zho_Hans", "deu_Latn"])
    from bayling.data.parallel import ParallelRecord

    recs = [ParallelRecord(f"f{i}", {c: cols[c][i] for c in cols}) for i in range(3)]
    summary, rows = refinement_dialogues(
        tiny_engine, recs, "eng_Latn", "zho_Hans", ["translate", "third_language", "back_translate"], "deu_Latn", 6
    )
    assert summary["n"] == 3
    assert [(t["turn"], t["type"], t["lang"]) for t in summary["turns"]] == [
        (1, "translate", "zho_Hans"),
        (2, "third_language", "deu_Latn"),
        (3, "back_translate", "eng_Latn"),
    ]
    assert all("chrf" in t and "off_target" in t and "tok:zh" in t["signatures"]["bleu"] for t in summary["turns"][:1])
    d = rows[0]["turns"]
    assert (
        d[0]["ref"] == cols["zho_Hans"][0]
        and d[1]["ref"] == cols["deu_Latn"][0]
        and d[2]["ref"] == cols["eng_Latn"][0]
    )
    assert "German" in d[1]["user"] and "English" in d[2]["user"]


def test_glossary_and_register_turns_use_record_terms(tiny_engine):
    recs = read_jsonl_parallel(sample_path())[:3]
    summary, rows = refinement_dialogues(
        tiny_engine, recs, "eng_Latn", "zho_Hans", ["translate", "glossary", "formal"], "deu_Latn", 4
    )
    kinds = [t["type"] for t in summary["turns"]]
    assert kinds == ["translate", "glossary", "formal"] and "term_hit_rate" in summary["turns"][1]
    rec = next(r for r in recs if r.id == rows[0]["id"])
    assert rows[0]["turns"][2]["ref"] == rec.variants["formal"]["zho_Hans"]
    assert any(t["zho_Hans"] in rows[0]["turns"][1]["user"] for t in rec.terms)


def test_bad_scripts_are_rejected(tiny_engine, shared_data_dir):
    recs = read_jsonl_parallel(sample_path())[:2]
    with pytest.raises(ConfigError, match="must start with 'translate'"):
        refinement_dialogues(tiny_engine, recs, "eng_Latn", "zho_Hans", ["glossary"], "deu_Latn")
    with pytest.raises(ConfigError, match="unknown interactive turn"):
        refinement_dialogues(tiny_engine, recs, "eng_Latn", "zho_Hans", ["translate", "poem"], "deu_Latn")
    with pytest.raises(DataError, match="no record has what the turns"):
        refinement_dialogues(tiny_engine, recs, "eng_Latn", "zho_Hans", ["translate", "third_language"], "jpn_Jpan")
