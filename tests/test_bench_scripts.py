"""Bench scripts whose output the docs quote. bench/data_curve.py: the curve's points are checkpoints of one run, so
which steps it scores, how many tokens it places them at, and the copy that starts a stage after SFT from a
checkpoint must hold. bench/record_run.py: how a recorded run's evaluation time is split into its parts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from bayling.resume import mark
from bayling.train.stage import stage_done

REPO = Path(__file__).resolve().parents[1]


def _bench(name: str):
    """A bench script loaded as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _curve():
    return _bench("data_curve")


def test_points_halve_from_the_last_step_down_to_the_first_checkpoint():
    geometric = _curve().geometric
    steps = [7 * k for k in range(1, 17)] + [113]  # every 7 steps, then the final adapter
    assert geometric(steps) == [7, 14, 28, 56, 113]
    assert geometric([5, 10]) == [5, 10]
    assert geometric([3]) == [3]


def test_the_run_keeps_every_checkpoint_at_a_constant_rate_and_has_no_eval_stage(tmp_path):
    ov = _curve().run_overrides(["jav_Latn", "heb_Hebr"], 200_000, 7, tmp_path)
    assert "train.lr_scheduler=constant_with_warmup" in ov and "train.save_total_limit=null" in ov
    assert "train.save_steps=7" in ov and "stages=[data,train]" in ov
    assert "data.languages=[eng_Latn,zho_Hans,jav_Latn,heb_Hebr]" in ov
    assert "train.reward.method=none" in ov and "train.preference.method=none" in ov


def test_a_copy_for_the_stage_after_sft_has_the_checkpoint_as_its_finished_sft_output(tmp_path):
    curve = _curve()
    run = tmp_path / "sft"
    (run / "data").mkdir(parents=True)
    (run / "data" / "train.jsonl").write_text('{"messages": []}\n', encoding="utf-8")
    sft = run / "train" / "sft"
    sft.mkdir(parents=True)
    mark(sft / "summary.json", "fp-sft", steps=113)
    ckpt = sft / "checkpoints" / "checkpoint-14"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_model.safetensors").write_bytes(b"weights-at-14")
    (ckpt / "adapter_config.json").write_text("{}", encoding="utf-8")
    (ckpt / "optimizer.pt").write_bytes(b"x" * 1000)
    dest = tmp_path / "reward_14"
    curve.clone_at_checkpoint(run, 14, ckpt, dest)
    done = stage_done(dest / "train" / "sft", dest / "train" / "sft" / "output", "fp-sft")
    assert done is not None and done["from_checkpoint_step"] == 14  # SFT is skipped; its output is step 14
    out = dest / "train" / "sft" / "output"
    assert (out / "adapter_model.safetensors").read_bytes() == b"weights-at-14"
    assert not (out / "optimizer.pt").exists()  # not needed to start the next stage
    assert (dest / "data" / "train.jsonl").read_text(encoding="utf-8") == '{"messages": []}\n'
    assert stage_done(dest / "train" / "sft", out, "another-fp") is None  # a changed SFT config retrains
    assert json.loads((run / "train" / "sft" / "summary.json").read_text())["steps"] == 113  # the source is intact


def test_looping_flags_the_outputs_of_a_collapsed_model_and_not_sentences():
    """Real outputs of the curve's Gemma checkpoints: loops pass language ID, so they are counted apart."""
    looping = _bench("tier_summary").looping
    loops = [
        "Àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn àwọn",
        "তপ্ৰীয়াৰ প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত প্ৰশ্নত",
        "这个这个这个这个这个这个这个这个这个这个这个这个这个这个这个这个这个这个这个这个",
    ]
    sentences = [
        "Senam AS. nyengkuyung surat Komite Olimpiade Amerika Serikat lan nampa kebutuhan mutlak saka keluarga "
        "Olimpiade kanggo promosi sawijining lingkungan kang aman kita kabeh atlet.",
        "美国体操协会对美国奥委会的信函表示支持，并接受奥运会大家庭的严格要求，即为所有运动员营造一个安全的训练环境。",
        "802.11n-এর মান 2.4 gigahertz এবং 5.0 gigahertz মানত থাকে।",
        "The the the cat.",  # too short to call
    ]
    assert [looping(h) for h in loops] == [True, True, True]
    assert [looping(h) for h in sentences] == [False, False, False, False]


def test_record_run_times_each_eval_part_from_its_done_mark(tmp_path):
    """bench/record_run.py's ``eval_parts``: minutes between the parts' fingerprint marks, the first from the end of
    the training stage, and each translation part's hypothesis count (here from real files with set mtimes)."""
    import os

    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    (run / "train" / "_stage.json").write_text("{}")
    os.utime(run / "train" / "_stage.json", (1000, 1000))
    for part, t, scores in (
        ("base-fewshot/seed-0/translation", 1600, {"eng_Latn-deu_Latn": {"n": 50}, "deu_Latn-eng_Latn": {"n": 50}}),
        ("tuned/translation", 2500, {"eng_Latn-deu_Latn": {"n": 50}}),
        ("tuned/perplexity", 2530, None),
    ):
        d = run / "eval" / part
        d.mkdir(parents=True)
        if scores:
            (d / "scores.json").write_text(json.dumps(scores))
        (d / "fingerprint").write_text("x")
        os.utime(d / "fingerprint", (t, t))
    parts = _bench("record_run").eval_parts(run)["parts"]
    assert parts == [
        {"part": "base-fewshot/seed-0/translation", "minutes": 10.0, "hypotheses": 100},
        {"part": "tuned/translation", "minutes": 15.0, "hypotheses": 50},
        {"part": "tuned/perplexity", "minutes": 0.5, "hypotheses": None},
    ]
    assert _bench("record_run").eval_parts(tmp_path / "missing") == {}
    # a part copied from an earlier run keeps that run's mark: no time of its own, and the clock does not move
    parts = _bench("record_run").eval_parts(run, {"tuned/translation": "runs/earlier/x"})["parts"]
    assert parts[1] == {
        "part": "tuned/translation",
        "minutes": None,
        "hypotheses": None,
        "reused_from": "runs/earlier/x",
    }
    assert parts[2]["minutes"] == round((2530 - 1600) / 60, 1)
