"""The judge against a real OpenAI-compatible HTTP server on 127.0.0.1 (see conftest.JudgeServer)."""

from __future__ import annotations

import json

import pytest

from bayling.evaluate.config import JudgeConfig
from bayling.evaluate.judge import Judge, VerdictCache, grade_pair, grade_single, parse_rating, parse_winner
from bayling.evaluate.openended import Question, judge_pairwise, judge_single, load_questions

GOOD = ["The capital of France is Paris.", "Paris has about two million inhabitants."]
BAD = ["The capital of France is Lyon.", "Lyon has about half a million inhabitants."]
TURNS = ["What is the capital of France?", "How many people live there?"]


def _judge(server, tmp_path, model="fair", **kw):
    return Judge(JudgeConfig(base_url=server.url, model=model, **kw), tmp_path / "cache.jsonl")


def test_single_grading_turns_and_cache(judge_server, tmp_path):
    judge = _judge(judge_server, tmp_path)
    r1 = grade_single(judge, TURNS, GOOD, 0, "eng_Latn")
    r2 = grade_single(judge, TURNS, BAD, 1, "eng_Latn")
    assert (r1["rating"], r2["rating"]) == (9.0, 2.0) and not r1["penalized"]
    sent = judge_server.requests
    assert len(sent) == 2 and sent[0]["model"] == "fair" and sent[0]["temperature"] == 0.0
    assert "### Assistant A:\nLyon has about half" in sent[1]["messages"][1]["content"]  # turn 2 sees turn 1
    # a fresh Judge on the same cache file asks nothing again
    again = _judge(judge_server, tmp_path)
    assert grade_single(again, TURNS, GOOD, 0, "eng_Latn")["rating"] == 9.0
    assert again.requests == 0 and len(judge_server.requests) == 2
    lines = (tmp_path / "cache.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and {"key", "judgment", "prompt", "model"} <= set(json.loads(lines[0]))


def test_pairwise_position_swap(judge_server, tmp_path):
    fair = _judge(judge_server, tmp_path)
    assert grade_pair(fair, TURNS, GOOD, BAD, 0, "eng_Latn") == {
        "winner": "1",
        "games": ["A", "B"],
        "reason": "consistent",
    }
    assert grade_pair(fair, TURNS, BAD, GOOD, 0, "eng_Latn")["winner"] == "2"
    # each game is played in both orders; the reversed comparison is the same two prompts, served from the cache
    assert len(judge_server.requests) == 2 and fair.requests == 2
    assert [
        m["messages"][1]["content"].index("Paris") < m["messages"][1]["content"].index("Lyon")
        for m in judge_server.requests
    ] == [True, False]
    biased = _judge(judge_server, tmp_path, model="biased")  # always says [[A]]
    r = grade_pair(biased, TURNS, GOOD, BAD, 0, "eng_Latn")
    assert r == {"winner": "tie", "games": ["A", "A"], "reason": "inconsistent"}


def test_wrong_language_penalty_skips_the_judge(judge_server, tmp_path):
    judge = _judge(judge_server, tmp_path, wrong_language_score=1.0)
    zh_turns = ["法国的首都是哪里？"]
    r = grade_single(judge, zh_turns, ["The capital of France is Paris."], 0, "zho_Hans")
    assert r == {"rating": 1.0, "penalized": True, "judgment": "wrong language"}
    p = grade_pair(judge, zh_turns, ["法国的首都是巴黎。"], ["The capital is Paris."], 0, "zho_Hans")
    assert p["winner"] == "1" and p["reason"] == "wrong language"
    assert judge_server.requests == []
    assert grade_single(judge, zh_turns, ["法国的首都是巴黎（Paris）。"], 0, "zho_Hans")["rating"] == 9.0


def test_set_summaries(judge_server, tmp_path):
    qs = [
        Question(f"q{i}", cat, [f"{t} (#{i})" for t in TURNS], "eng_Latn")
        for i, cat in enumerate(["knowledge", "knowledge", "roleplay"])
    ]
    judge = _judge(judge_server, tmp_path, workers=3)
    summary, rows = judge_single(judge, qs, [GOOD, BAD, GOOD])
    assert summary["n"] == 6 and summary["by_turn"] == {
        "turn1": pytest.approx(20 / 3, abs=1e-3),
        "turn2": pytest.approx(20 / 3, abs=1e-3),
    }
    assert summary["by_category"]["roleplay"] == 9.0 and summary["by_category"]["knowledge"] == 5.5
    pw, prow = judge_pairwise(judge, qs, [GOOD, GOOD, BAD], [BAD, GOOD, GOOD])
    assert (pw["wins"], pw["ties"], pw["losses"]) == (2, 2, 2) and pw["win_rate_adjusted"] == 50.0
    # 6 single prompts; pairwise 2 turns x 2 orders for q0 and q2, but for q1 (identical answers) the swapped
    # prompt is the same text, so the cache answers it
    assert len(judge_server.requests) == 6 + 4 + 2 + 4


def test_fastchat_prompts_from_shared_data(judge_server, tmp_path, shared_data_dir):
    from bayling.evaluate.judge import load_judge_prompts

    prompts = load_judge_prompts(shared_data_dir / "mt_bench" / "judge_prompts.jsonl")
    assert {"single-v1", "single-v1-multi-turn", "pair-v2", "pair-math-v1"} <= set(prompts)
    judge = Judge(JudgeConfig(base_url=judge_server.url, model="fair"), tmp_path / "c.jsonl", prompts)
    assert grade_single(judge, TURNS, GOOD, 1, "eng_Latn")["rating"] == 9.0
    mt = load_questions("mt_bench", str(shared_data_dir))
    assert len(mt) == 80 and sum(bool(q.refs) for q in mt) == 30  # math, reasoning, coding have references
    b80 = load_questions("bayling80_zh", str(shared_data_dir), limit=5)
    assert len(b80) == 5 and b80[0].lang == "zho_Hans" and len(b80[0].turns) == 2


def test_parsers_and_torn_cache(tmp_path):
    assert parse_rating("Rating: [[7.5]]") == 7.5 and parse_rating("[8]") == 8.0 and parse_rating("none") is None
    assert (
        parse_winner("so [[B]]") == "B" and parse_winner("[[C]]") == "tie" and parse_winner("[[A]] or [[B]]") is None
    )
    f = tmp_path / "c.jsonl"
    f.write_text('{"key": "k1", "judgment": "[[5]]"}\n{"key": "k2", "judgm', encoding="utf-8")  # crash mid-line
    assert VerdictCache(f).get("k1") == "[[5]]" and len(VerdictCache(f)) == 1
