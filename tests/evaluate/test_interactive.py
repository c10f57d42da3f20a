"""Interactive translation evaluation on the tiny model: per-turn scores and constraint hit-rate."""

from __future__ import annotations

import pytest

from bayling.data.parallel import sample_path
from bayling.errors import ConfigError, DataError
from bayling.evaluate.interactive import (
    constrained_translation,
    constraint_hits,
    load_constrained,
    refinement_dialogues,
)
from bayling.records import read_columns, read_jsonl_parallel


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
    assert all(r["hits_raw"] == constraint_hits(r["hyp"], r["constraint"])[0] for r in rows)
    assert all(r["hits"] == (r["hits_raw"] if r["valid"] else 0) for r in rows)
    assert "tok:13a" in summary["bleu"]["signature"]


class Echo:
    """A base model at its worst: it repeats the request, where the required words are written."""

    def generate(self, conversations, params, progress=None):
        return [c[-1]["content"] for c in conversations]


class Replies:
    """A model that answers each request with ``reply(item index)``; requests are matched by source text."""

    def __init__(self, items, reply):
        self.items, self.reply = items, reply

    def generate(self, conversations, params, progress=None):
        out = []
        for c in conversations:
            i = next(k for k, it in enumerate(self.items) if it["src"] in c[-1]["content"])
            out.append(self.reply(i))
        return out


ZH_EN = [
    {"id": "a", "src": "又或者餐厅还要多久会准备好？", "tgt": "And how long will the restaurant take to prepare it?", "constraint": ["And how", "prepare it"]},
    {"id": "b", "src": "请尽快安排退款给我，谢谢。", "tgt": "Please arrange a refund soon, thanks.", "constraint": ["refund soon"]},
    {"id": "c", "src": "我的订单已经晚了四十分钟了。", "tgt": "My order is already forty minutes late.", "constraint": ["forty minutes"]},
    {"id": "d", "src": "骑手说他找不到我的地址。", "tgt": "The rider says he cannot find my address.", "constraint": ["cannot find"]},
]  # fmt: skip


def test_echoing_the_prompt_earns_no_constraint_hits():
    summary, rows = constrained_translation(Echo(), ZH_EN, "zho_Hans", "eng_Latn")
    # every required word is in the echoed request: the naive rate is perfect, the counted one is zero
    assert summary["hit_rate_raw"] == 100.0 and summary["hit_rate"] == 0.0 and summary["all_constraints"] == 0.0
    assert summary["excluded"] == 100.0 and summary["copy"] == 100.0 and summary["valid"]["n"] == 0
    assert summary["chrf"]["score"] < 40 and all(not r["valid"] and r["hits"] == 0 for r in rows)


def test_hit_rate_counts_only_on_target_non_copies():
    def reply(i):
        it = ZH_EN[i]
        return [
            it["tgt"],  # a real translation
            it["src"],  # the Chinese source copied: off-target and a copy
            it["tgt"] + "\nMake sure to include these words: " + ", ".join(it["constraint"]),  # echoes the line
            "骑手说他怎么也找不到我的地址，真让人着急（cannot find）。",  # Chinese, English word pasted in
        ][i]

    summary, rows = constrained_translation(Replies(ZH_EN, reply), ZH_EN, "zho_Hans", "eng_Latn")
    assert [(r["lid"], r["copy"], r["valid"], r["hits_raw"], r["hits"]) for r in rows] == [
        ("on", False, True, 2, 2),
        ("off", True, False, 0, 0),
        ("on", True, False, 1, 0),
        ("off", False, False, 1, 0),
    ]
    assert summary["hit_rate"] == 40.0 and summary["hit_rate_raw"] == 80.0  # 2 of 5 constraints vs 4 of 5
    assert (summary["excluded"], summary["off_target"], summary["copy"]) == (75.0, 50.0, 50.0)
    assert summary["valid"] == {"n": 1, "hit_rate": 100.0, "chrf": summary["valid"]["chrf"]}
    assert summary["valid"]["chrf"]["score"] == 100.0 and summary["chrf"]["score"] < 100


def test_bayling_constrained_set_echo_vs_reference(shared_data_dir):
    sets = load_constrained(str(shared_data_dir), limit=40)
    for key, items in sets.items():
        s, t = key.split("-")
        echo, _ = constrained_translation(Echo(), items, s, t)
        assert echo["hit_rate_raw"] > 95 and echo["hit_rate"] == 0.0 and echo["excluded"] == 100.0, key
        ref = Replies(items, lambda i, items=items: items[i]["tgt"])
        good, _ = constrained_translation(ref, items, s, t)
        assert good["excluded"] == 0.0 and good["hit_rate"] == good["hit_rate_raw"] > 90, key
        assert good["chrf"]["score"] == 100.0 and good["valid"]["n"] == 40


def test_refinement_dialogue_scores_every_turn(tiny_engine, shared_data_dir):
    cols = read_columns(shared_data_dir / "flores200", ["eng_Latn", "zho_Hans", "deu_Latn"])
    from bayling.records import ParallelRecord

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
    assert all("unknown" in t and "off_target" in t for t in summary["turns"])
    rec = next(r for r in recs if r.id == rows[0]["id"])
    assert rows[0]["turns"][2]["ref"] == rec.variants["formal"]["zho_Hans"]
    assert any(t["zho_Hans"] in rows[0]["turns"][1]["user"] for t in rec.terms)


def test_glossary_term_hits_do_not_count_an_echo():
    recs = read_jsonl_parallel(sample_path())[:4]
    summary, rows = refinement_dialogues(Echo(), recs, "eng_Latn", "zho_Hans", ["translate", "glossary"], "deu_Latn")
    glossary = summary["turns"][1]
    assert glossary["type"] == "glossary" and glossary["term_hit_rate"] == 0.0  # the request names the term
    assert all(
        any(t["zho_Hans"] in r["turns"][1]["hyp"] for t in rec.terms) for r, rec in zip(rows, recs, strict=False)
    )


def test_bad_scripts_are_rejected(tiny_engine, shared_data_dir):
    recs = read_jsonl_parallel(sample_path())[:2]
    with pytest.raises(ConfigError, match="must start with 'translate'"):
        refinement_dialogues(tiny_engine, recs, "eng_Latn", "zho_Hans", ["glossary"], "deu_Latn")
    with pytest.raises(ConfigError, match="unknown interactive turn"):
        refinement_dialogues(tiny_engine, recs, "eng_Latn", "zho_Hans", ["translate", "poem"], "deu_Latn")
    with pytest.raises(DataError, match="no record has what the turns"):
        refinement_dialogues(tiny_engine, recs, "eng_Latn", "zho_Hans", ["translate", "third_language"], "jpn_Jpan")
