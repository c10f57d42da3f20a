"""The judge against a real OpenAI-compatible HTTP server on 127.0.0.1 (see conftest.JudgeServer)."""

from __future__ import annotations

import json

import pytest

from bayling.evaluate.config import JudgeConfig
from bayling.evaluate.judge import Judge, grade_pair, grade_single, parse_rating, parse_winner
from bayling.evaluate.openended import Question, judge_pairwise, judge_single, load_questions
from bayling.resume import Journal

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
    r = grade_single(judge, zh_turns, ["The capital of France is Paris, on the Seine."], 0, "zho_Hans")
    assert r == {"rating": 1.0, "penalized": True, "error": False, "judgment": "wrong language"}
    p = grade_pair(
        judge, zh_turns, ["法国的首都是巴黎。"], ["The capital of France is Paris, of course."], 0, "zho_Hans"
    )
    assert p["winner"] == "1" and p["reason"] == "wrong language"
    assert judge_server.requests == []
    assert grade_single(judge, zh_turns, ["法国的首都是巴黎（Paris）。"], 0, "zho_Hans")["rating"] == 9.0


def test_right_language_with_names_code_or_a_requested_language_reaches_the_judge(judge_server, tmp_path):
    judge = _judge(judge_server, tmp_path, wrong_language_score=1.0)
    code = "可以这样写：\n\n```python\ndef capital(country):\n    return {'France': 'Paris'}[country]\n```\n它返回 Paris。"
    named = "法国的首都是 Paris，位于 Île-de-France 大区，塞纳河从市中心穿过。"
    for answer in (code, named):  # both were a 1/10 "wrong language" before: Latin names and code are not English
        assert grade_single(judge, ["用 Python 写一个返回法国首都的函数。"], [answer], 0, "zho_Hans")["rating"] == 9.0
    # BayLing-80 zh #71: turn 2 asks for English, so an English e-mail is in the right language
    turns = [
        "你能帮我写一封正式的电子邮件给一个潜在的商业合作伙伴，提议合资吗？",
        "这个商业伙伴来自美国，请使用英语。",
    ]
    answers = [
        "尊敬的先生：我们希望与贵公司在巴黎成立合资企业。",
        "Dear Sir, we would like to propose a joint venture in Paris with your company.",
    ]
    r = grade_single(judge, turns, answers, 1, "zho_Hans")
    assert r["rating"] == 9.0 and not r["penalized"]
    assert len(judge_server.requests) == 3


def test_set_summaries(judge_server, tmp_path):
    qs = [
        Question(f"q{i}", cat, [f"{t} (#{i})" for t in TURNS], "eng_Latn")
        for i, cat in enumerate(["knowledge", "knowledge", "roleplay"])
    ]
    judge = _judge(judge_server, tmp_path, concurrency=3)
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


def test_unparseable_verdicts_are_retried_once_then_errors_never_ties(judge_server, tmp_path):
    garbled = _judge(judge_server, tmp_path, model="garbled")
    r = grade_single(garbled, TURNS, GOOD, 0, "eng_Latn")
    assert (r["rating"], r["error"], r["penalized"]) == (None, True, False)
    assert len(judge_server.requests) == 2  # the first reply and one retry
    p = grade_pair(garbled, TURNS, GOOD, BAD, 0, "eng_Latn")
    assert p == {"winner": "error", "games": [None, None], "reason": "unparseable"}  # not a tie
    assert len(judge_server.requests) == 2 + 4
    qs = [Question(f"q{i}", "knowledge", TURNS, "eng_Latn") for i in range(2)]
    summary, _ = judge_pairwise(garbled, qs, [GOOD, GOOD], [BAD, BAD])
    assert (summary["errors"], summary["ties"], summary["wins"], summary["win_rate"]) == (4, 0, 0, None)
    single, _ = judge_single(garbled, qs, [GOOD, BAD])
    assert (single["errors"], single["score"], single["n"]) == (4, None, 4)
    # a judge that answers on the second try: the retry is used, and both replies are cached
    flaky = _judge(judge_server, tmp_path / "f", model="flaky")
    assert grade_single(flaky, TURNS, GOOD, 0, "eng_Latn")["rating"] == 9.0 and flaky.requests == 2
    assert grade_pair(flaky, TURNS, GOOD, BAD, 0, "eng_Latn")["winner"] == "1" and flaky.requests == 6
    again = _judge(judge_server, tmp_path / "f", model="flaky")
    assert grade_single(again, TURNS, GOOD, 0, "eng_Latn")["rating"] == 9.0 and again.requests == 0


def test_judge_errors_are_shown_in_the_report():
    from bayling.evaluate.report import render_html

    oe = {
        "single": {"tuned": {"bayling80_en": {"score": 7.0, "by_turn": {}, "penalized": 0, "errors": 3, "n": 10}}},
        "pairwise": {
            "bayling80_en": {
                "wins": 4,
                "ties": 1,
                "losses": 2,
                "errors": 3,
                "win_rate_adjusted": 64.29,
                "inconsistent": 0,
            }
        },
    }
    page = render_html({"translation": {}, "open_ended": oe})
    assert page.count("<th>judge errors</th>") == 2 and "<td>3</td>" in page


def test_parsers_and_torn_cache(tmp_path):
    assert parse_rating("Rating: [[7.5]]") == 7.5 and parse_rating("[8]") == 8.0 and parse_rating("none") is None
    # the first rating counts, as in FastChat (a judge that quotes the scale after its verdict)
    assert parse_rating("Rating: [[3]]. For reference, an excellent answer would get [[10]].") == 3.0
    assert parse_rating("[[4]] ... [9]") == 4.0 and parse_rating("[2] and later [[6]]") == 6.0
    assert (
        parse_winner("so [[B]]") == "B" and parse_winner("[[C]]") == "tie" and parse_winner("[[A]] or [[B]]") is None
    )
    f = tmp_path / "c.jsonl"
    f.write_text('{"key": "k1", "judgment": "[[5]]"}\n{"key": "k2", "judgm', encoding="utf-8")  # crash mid-line
    assert Journal(f, key="key").get("k1")["judgment"] == "[[5]]" and len(Journal(f, key="key")) == 1
