"""Significance of Δ: the paired bootstrap is sacreBLEU's, a multi-seed few-shot base counts as its mean, and
the tables show the intervals, the draws' spread and the counts of significant wins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest, _bootstrap_resample, estimate_ci

import bayling.evaluate.stage as stage
from bayling.evaluate.config import EvalConfig, TranslationConfig
from bayling.evaluate.fewshot import fewshot_record, mean_over_seeds
from bayling.evaluate.metrics import (
    bootstrap_indices,
    delta_interval,
    paired_bootstrap,
    resampled_scores,
)
from bayling.evaluate.report import write_report
from bayling.evaluate.significance import summarize
from bayling.evaluate.stage import comparison_table, evaluate
from bayling.evaluate.systems import System
from bayling.models import ModelConfig

REFS = [
    "The cat sat on the mat near the door.",
    "A storm is expected to reach the coast tonight.",
    "The museum opens at nine in the morning.",
    "She bought three apples and a loaf of bread.",
    "The committee approved the new budget on Friday.",
    "Rain fell all day over the mountain villages.",
    "He has lived in this town for twenty years.",
    "The train to the capital was delayed by an hour.",
    "Children played football in the park after school.",
    "The bridge will be closed for repairs next week.",
    "Scientists found water ice near the lunar pole.",
    "The restaurant serves fish caught the same morning.",
]
BASE = [
    "The cat sits on a mat by the door.",
    "A storm will reach the coast this night.",
    "Museum opens at nine morning.",
    "She buys three apple and bread.",
    "Committee approved budget Friday.",
    "It rained all the day on mountain villages.",
    "He lived in the town twenty years.",
    "Train to capital late one hour.",
    "Kids played soccer in park after the school.",
    "The bridge is closed for repair next week.",
    "Scientists found ice of water at the pole of the moon.",
    "Restaurant serves fish of the morning.",
]
TUNED = [
    "The cat sat on the mat by the door.",
    "A storm is expected on the coast tonight.",
    "The museum opens at nine in the morning.",
    "She bought three apples and bread.",
    "The committee approved the budget on Friday.",
    "Rain fell all day on the mountain villages.",
    "He lived in this town for twenty years.",
    "The train to the capital was late by one hour.",
    "Children played football in the park after school.",
    "The bridge is closed for repairs next week.",
    "Scientists found ice near the pole of the moon.",
    "The restaurant serves fish from the morning.",
]

CLOSE = TUNED[:1] + BASE[1:6] + [REFS[6][:10]] + BASE[7:]
"""Better than BASE in one sentence, worse in another: a Δ within noise."""


@pytest.mark.parametrize("make", [BLEU, lambda: CHRF(word_order=2)], ids=["bleu", "chrf++"])
@pytest.mark.parametrize("hyps", [TUNED, CLOSE], ids=["clear", "close"])
def test_interval_is_sacrebleus_paired_bootstrap(make, hyps):
    # sacreBLEU's own paired bootstrap (sacrebleu --paired-bs): per-system resampled mean and 95 % CI, p-value
    _, res = PairedTest([("base", BASE), ("tuned", hyps)], {"m": make()}, [REFS], test_type="bs", n_samples=1000)()
    base_res, tuned_res = next(v for k, v in res.items() if k != "System")

    idxs = bootstrap_indices(len(REFS))
    t_score, t_samples = resampled_scores(make(), hyps, REFS, idxs)
    b_score, b_samples = resampled_scores(make(), BASE, REFS, idxs)
    assert t_score == pytest.approx(tuned_res.score) and b_score == pytest.approx(base_res.score)
    # the same resamples: the same bootstrap mean and CI for both systems as sacreBLEU reports
    assert estimate_ci(t_samples) == pytest.approx((tuned_res.mean, tuned_res.ci))
    assert estimate_ci(b_samples) == pytest.approx((base_res.mean, base_res.ci))

    real, samples = paired_bootstrap(make(), [hyps], [BASE], REFS)
    iv = delta_interval(real, samples)
    assert iv["p"] == pytest.approx(tuned_res.p_value, abs=1e-4)
    # Δ's interval from sacreBLEU's own resampling code (its _bootstrap_resample draws the same indices)
    m = make()
    theirs = [
        np.array([x.score for x in _bootstrap_resample(m._extract_corpus_statistics(h, [REFS]), m, 1000)[1]])
        for h in (hyps, BASE)
    ]
    diffs = np.sort(theirs[0] - theirs[1])
    assert (iv["low"], iv["high"]) == (round(float(diffs[25]), 2), round(float(diffs[974]), 2))
    assert iv["delta"] == round(tuned_res.score - base_res.score, 2)
    assert iv["low"] < iv["delta"] < iv["high"]


def test_fixed_example_gives_fixed_numbers():
    # regression anchors (sacreBLEU 2.6, numpy's default_rng(12345), 1000 resamples): a clear win, and a Δ
    # whose interval straddles 0 (not significant)
    chrf = CHRF(word_order=2)
    assert delta_interval(*paired_bootstrap(chrf, [TUNED], [BASE], REFS)) == {
        "delta": 28.66,
        "low": 21.98,
        "high": 36.1,
        "p": 0.001,
        "significant": "win",
    }
    assert delta_interval(*paired_bootstrap(chrf, [CLOSE], [BASE], REFS)) == {
        "delta": -0.39,
        "low": -8.01,
        "high": 6.66,
        "p": 0.2987,
        "significant": None,
    }
    same = delta_interval(*paired_bootstrap(chrf, [BASE], [BASE], REFS))
    assert same["delta"] == same["low"] == same["high"] == 0 and same["significant"] is None


def test_a_multi_seed_baseline_counts_as_the_mean_of_its_draws():
    chrf = CHRF(word_order=2)
    idxs = bootstrap_indices(len(REFS))
    t, ts = resampled_scores(chrf, TUNED, REFS, idxs)
    b1, bs1 = resampled_scores(chrf, BASE, REFS, idxs)
    b2, bs2 = resampled_scores(chrf, REFS, REFS, idxs)  # a perfect draw
    real, samples = paired_bootstrap(chrf, [TUNED], [BASE, REFS], REFS)
    assert real == pytest.approx(t - (b1 + b2) / 2)
    assert np.allclose(samples, ts - (bs1 + bs2) / 2)
    # one draw repeated is that draw
    assert np.allclose(paired_bootstrap(chrf, [TUNED], [BASE, BASE], REFS)[1], ts - bs1)
    # a system drawn twice counts as the mean of its draws too
    real2, samples2 = paired_bootstrap(chrf, [TUNED, REFS], [BASE], REFS)
    assert real2 == pytest.approx((t + b2) / 2 - b1) and np.allclose(samples2, (ts + bs2) / 2 - bs1)
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap(chrf, [TUNED], [BASE[:-1]], REFS)


def test_counts_of_wins_and_significant_wins():
    rng = np.random.default_rng(0)
    per = {
        "a": {"chrf": (3.0, rng.normal(3.0, 0.5, 1000)), "ter": (-4.0, rng.normal(-4.0, 1.0, 1000))},
        "b": {"chrf": (1.0, rng.normal(1.0, 2.0, 1000)), "ter": (2.0, rng.normal(2.0, 3.0, 1000))},
        "c": {"chrf": (-2.0, rng.normal(-2.0, 0.5, 1000))},
    }
    out = summarize(per, ["chrf", "ter"])
    assert out["counts"]["chrf"] == {
        "directions": 3,
        "wins": 2,
        "losses": 1,
        "significant_wins": 1,
        "significant_losses": 1,
    }
    assert out["directions"]["a"]["ter"]["significant"] == "win"  # lower TER is better
    assert out["counts"]["ter"]["significant_wins"] == 1 and out["counts"]["ter"]["losses"] == 1
    assert out["average"]["chrf"]["delta"] == round((3 + 1 - 2) / 3, 2)


def test_mean_over_seeds_keeps_the_schema_and_records_each_draw():
    sig = "nrefs:1|nc:6|nw:2"

    def draw(c, b, off):
        return {
            "x-y": {
                "chrf": {"score": c, "signature": sig},
                "bleu": {"score": b, "signature": "B", "bp": 1.0} if b is not None else {"score": None, "reason": "r"},
                "off_target": off,
                "unknown": 10.0,
                "copy": 0.0,
                "n": 4,
            }
        }

    m = mean_over_seeds({0: draw(30.0, 10.0, 0.0), 1: draw(33.0, 12.0, 50.0), 2: draw(36.0, None, 25.0)})["x-y"]
    assert m["chrf"] == {"score": 33.0, "min": 30.0, "max": 36.0, "signature": sig}
    assert m["bleu"] == {"score": None, "reason": "r"}  # one draw without BLEU: no mean
    assert (m["off_target"], m["unknown"], m["n"]) == (25.0, 10.0, 4)
    assert m["seeds"]["1"]["chrf"]["score"] == 33.0 and list(m["seeds"]) == ["0", "1", "2"]


def _metrics() -> dict:
    dirs = ["eng_Latn-deu_Latn", "deu_Latn-eng_Latn"]
    sig = "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"

    def s(c, off=5.0, unk=2.5):
        return {"chrf": {"score": c, "signature": sig}, "off_target": off, "unknown": unk, "n": 50}

    draws = {"0": [30.0, 40.0], "1": [32.0, 44.0], "2": [34.0, 42.0]}
    base = {
        d: {
            "chrf": {"score": sum(v[i] for v in draws.values()) / 3, "signature": sig}
            | {"min": min(v[i] for v in draws.values()), "max": max(v[i] for v in draws.values())},
            "off_target": 10.0,
            "unknown": 5.0,
            "n": 50,
            "seeds": {k: s(v[i]) for k, v in draws.items()},
        }
        for i, d in enumerate(dirs)
    }
    ids = {d: ["a"] for d in dirs}
    return {
        "testset": "heldout",
        "sentences_per_direction": 50,
        "directions": dirs,
        "systems": {"base-fewshot": base, "tuned": {dirs[0]: s(36.0, 0.0, 4.0), dirs[1]: s(41.0)}},
        "prompts": {"base-fewshot": fewshot_record(1, "pool", ids, {0: ids, 1: ids, 2: ids})},
        "significance": {
            "system": "tuned",
            "baseline": "base-fewshot",
            "method": "paired bootstrap resampling (sacreBLEU --paired-bs: 1000 resamples, seed 12345)",
            "directions": {
                dirs[0]: {"chrf": {"delta": 4.0, "low": 1.2, "high": 6.9, "p": 0.001, "significant": "win"}},
                dirs[1]: {"chrf": {"delta": -1.0, "low": -3.5, "high": 1.4, "p": 0.3, "significant": None}},
            },
            "average": {"chrf": {"delta": 1.5, "low": -0.2, "high": 3.1, "p": 0.08, "significant": None}},
            "counts": {
                "chrf": {"directions": 2, "wins": 1, "losses": 1, "significant_wins": 1, "significant_losses": 0}
            },
        },
    }


def test_table_shows_intervals_spread_counts_and_unknown(tmp_path):
    _, md = comparison_table(_metrics(), ["chrf"])
    head = (
        "| direction | chrF++ base-fewshot | chrF++ tuned | Δ chrF++ [95 % CI] | off-target / unknown % base-fewshot |"
    )
    assert md.startswith(head + " off-target / unknown % tuned |")
    assert "| eng_Latn-deu_Latn | 32.0 (30.0–34.0) | 36.0 | +4.0 [+1.2, +6.9] * | 10.0 / 5.0 | 0.0 / 4.0 |" in md
    assert "| deu_Latn-eng_Latn | 42.0 (40.0–44.0) | 41.0 | -1.0 [-3.5, +1.4] | 10.0 / 5.0 | 5.0 / 2.5 |" in md
    # the average: the draws' own averages over directions are 35, 38, 38
    assert "| average | 37.0 (35.0–38.0) | 38.5 | +1.5 [-0.2, +3.1] | 10.0 / 5.0 | 2.5 / 3.2 |" in md
    assert (
        "- chrF++: tuned ahead of base-fewshot in 1 of 2 directions (1 significantly), behind in 1 (0 significantly)"
        in md
    )
    assert "mean over 3 demonstration draws, seeds 0, 1, 2" in md

    json_file, page = write_report(tmp_path, _metrics())
    html = page.read_text(encoding="utf-8")
    assert "Δ = tuned - base-fewshot, with 95 % intervals" in html and "+4.0 [+1.2, +6.9] *" in html
    assert "<td>32.00 (30.0–34.0)</td>" in html and "LID unknown %" in html
    assert (
        json.loads(json_file.read_text(encoding="utf-8"))["translation"]["significance"]["counts"]["chrf"]["wins"] == 1
    )


def _testset(tmp_path: Path) -> str:
    rows = [
        {"id": f"s{i}", "eng_Latn": f"Sentence number {i} is here.", "deu_Latn": f"Satz Nummer {i} ist hier."}
        for i in range(12)
    ]
    f = tmp_path / "test.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(f)


def test_seeds_are_translated_cached_and_averaged_on_the_tiny_model(tiny_llama, tmp_path, monkeypatch):
    model = ModelConfig(dtype="float32", device="cpu")
    systems = {
        "base": System("base", str(tiny_llama), prompt="fewshot"),
        "tuned": System("tuned", str(tiny_llama), prompt="chat"),
    }
    tr = TranslationConfig(directions=["en-de"], fewshot_k=2, fewshot_seeds=[0, 1])
    kw = dict(testset=_testset(tmp_path), max_sentences=4, max_new_tokens=4, report=False)
    calls = []
    real = stage.translate_and_score

    def counting(engine, bitexts, out_dir, *a, **k):
        calls.append(Path(out_dir).name)
        return real(engine, bitexts, out_dir, *a, **k)

    monkeypatch.setattr(stage, "translate_and_score", counting)
    out = tmp_path / "out"
    m = evaluate(EvalConfig(**kw, translation=tr), model, systems, out).metrics
    assert sorted(calls) == ["seed-0", "seed-1", "tuned"]
    d = "eng_Latn-deu_Latn"
    per_seed = [json.loads((out / "base" / f"seed-{s}" / "scores.json").read_text())[d] for s in (0, 1)]
    entry = m["systems"]["base"][d]
    chrf = [p["chrf"]["score"] for p in per_seed]
    assert entry["chrf"]["score"] == round(sum(chrf) / 2, 2) and entry["chrf"]["min"] == min(chrf)
    assert entry["seeds"] == {"0": per_seed[0], "1": per_seed[1]}
    rec = m["prompts"]["base"]
    assert rec["seeds"] == [0, 1] and rec["demos_by_seed"]["0"] != rec["demos_by_seed"]["1"]
    sig = m["significance"]
    assert sig["baseline"] == "base" and sig["baseline_seeds"] == [0, 1] and sig["n_samples"] == 1000
    iv = sig["directions"][d]["chrf"]
    assert iv["delta"] == pytest.approx(m["systems"]["tuned"][d]["chrf"]["score"] - entry["chrf"]["score"], abs=0.02)
    assert iv["low"] <= iv["high"] and sig["counts"]["chrf"]["directions"] == 1
    assert "Δ chrF++ [95 % CI]" in (out / "table.md").read_text(encoding="utf-8")

    # a third seed: only its draw is translated; the other two come from their caches
    calls.clear()
    tr3 = TranslationConfig(directions=["en-de"], fewshot_k=2, fewshot_seeds=[0, 1, 2])
    m3 = evaluate(EvalConfig(**kw, translation=tr3), model, systems, out).metrics
    assert calls == ["seed-2"] and m3["systems"]["tuned"] == m["systems"]["tuned"]
    assert m3["systems"]["base"][d]["seeds"]["0"] == per_seed[0]
    calls.clear()
    assert evaluate(EvalConfig(**kw, translation=tr3), model, systems, out).metrics == m3 and calls == []


def test_a_run_without_the_base_still_compares_tuned_with_its_sft(tiny_llama, tmp_path):
    """An ablation arm that takes the base's scores from elsewhere (``compare_base: false``) still gets what its
    stage after SFT did: ``significance_stages``, tuned against tuned-sft, and the count under the table."""
    model = ModelConfig(dtype="float32", device="cpu")
    systems = {name: System(name, str(tiny_llama), prompt="chat") for name in ("tuned", "tuned-sft")}
    tr = TranslationConfig(directions=["en-de"])
    kw = dict(testset=_testset(tmp_path), max_sentences=4, max_new_tokens=4, report=False)
    m = evaluate(EvalConfig(**kw, translation=tr), model, systems, tmp_path / "out").metrics
    assert "significance" not in m
    stages = m["significance_stages"]
    assert (stages["system"], stages["baseline"]) == ("tuned", "tuned-sft")
    assert stages["average"]["chrf"]["delta"] == 0 and stages["counts"]["chrf"]["directions"] == 1
    assert "tuned-sft" in (tmp_path / "out" / "table.md").read_text(encoding="utf-8").split("\n- ", 1)[1]
