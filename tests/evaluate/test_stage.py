"""End to end on the tiny model: a FLORES grid of 10 languages x 2 directions with every other part,
caching, determinism, the pipeline stage, and the HTML report in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bayling.cli import main
from bayling.config import load_config
from bayling.evaluate.config import EvalConfig, TranslationConfig
from bayling.evaluate.eval_only import EvalRunConfig
from bayling.evaluate.stage import evaluate
from bayling.evaluate.systems import System
from bayling.models import ModelConfig

REPO = Path(__file__).resolve().parents[2]
GRID = [
    "zho_Hans",
    "deu_Latn",
    "fra_Latn",
    "jpn_Jpan",
    "kor_Hang",
    "rus_Cyrl",
    "arb_Arab",
    "hin_Deva",
    "swh_Latn",
    "ace_Latn",
]


@pytest.fixture(scope="module")
def full_run(tiny_llama, shared_data_dir, tmp_path_factory, module_judge_server):
    server = module_judge_server
    out = tmp_path_factory.mktemp("evalrun") / "grid"
    overrides = [
        f"out_dir={out}",
        f"systems.base={tiny_llama}",
        f"systems.tuned={tiny_llama}",
        "model.dtype=float32",
        "model.device=cpu",
        f"eval.data_dir={shared_data_dir}",
        f"eval.translation.languages=[{','.join(GRID)}]",
        "eval.max_sentences=2",
        "eval.max_new_tokens=4",
        "eval.benchmarks.tasks=[xcopa]",
        "eval.benchmarks.languages=[zh]",
        "eval.benchmarks.limit=2",
        "eval.open_ended.sets=[mt_bench]",
        "eval.open_ended.limit=2",
        "eval.open_ended.max_new_tokens=4",
        f"eval.open_ended.judge.base_url={server.url}",
        "eval.open_ended.judge.model=fair",
        "eval.open_ended.judge.mode=both",
        "eval.interactive.tasks=[refinement,constrained]",
        "eval.interactive.limit=2",
    ]
    assert main(["eval", "run", str(REPO / "configs" / "eval" / "flores_grid.yaml"), *overrides]) == 0
    return out, overrides, server


def test_grid_metrics_and_files(full_run):
    out, _, _ = full_run
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert len(m["directions"]) == 20 and m["sentences_per_direction"] == 2
    assert {"eng_Latn-ace_Latn", "ace_Latn-eng_Latn", "eng_Latn-zho_Hans"} <= set(m["directions"])
    for system in ("base", "tuned"):
        per = m["systems"][system]
        assert set(per) == set(m["directions"])
        assert "tok:zh" in per["eng_Latn-zho_Hans"]["bleu"]["signature"]
        assert "tok:ja-mecab" in per["eng_Latn-jpn_Jpan"]["bleu"]["signature"]
        assert 0 <= per["eng_Latn-deu_Latn"]["chrf"]["score"] <= 100 and "off_target" in per["eng_Latn-deu_Latn"]
        # both prompted few-shot (the tiny model has no chat template): 3 demonstration draws each (the preset's)
        assert list(per["eng_Latn-deu_Latn"]["seeds"]) == ["0", "1", "2"]
        rows = [json.loads(x) for x in (out / system / "seed-0" / "eng_Latn-zho_Hans.jsonl").read_text().splitlines()]
        assert [r["id"] for r in rows] == ["flores200-devtest-1", "flores200-devtest-2"]
    assert m["systems"]["base"] == m["systems"]["tuned"]  # the same weights, greedy: the same scores
    sig = m["significance"]  # the same outputs: every Δ and its interval are 0, no win is significant
    assert sig["counts"]["chrf"] == {
        "directions": 20,
        "wins": 0,
        "losses": 0,
        "significant_wins": 0,
        "significant_losses": 0,
    }
    assert all(iv["chrf"]["low"] == iv["chrf"]["high"] == 0 for iv in sig["directions"].values())
    assert m["benchmarks"]["base"]["xcopa"]["zh"]["n"] == 2
    oe = m["open_ended"]
    assert oe["answered"] == {"base": {"mt_bench": 2}, "tuned": {"mt_bench": 2}}
    assert oe["single"]["base"]["mt_bench"]["n"] == 4 and oe["pairwise"]["mt_bench"]["n"] == 4
    assert oe["pairwise"]["mt_bench"]["ties"] == 4  # identical answers can only tie
    inter = m["interactive"]
    assert [t["type"] for t in inter["refinement"]["base"]["eng_Latn-zho_Hans"]["turns"]] == [
        "translate",
        "third_language",
        "back_translate",
    ]
    assert inter["constrained"]["base"]["zho_Hans-eng_Latn"]["n"] == 2
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "| eng_Latn-ace_Latn |" in table and "Δ chrF++" in table
    # how the hypotheses were decoded, in metrics.json and the caption (the preset's limit rule and loop span)
    assert m["decoding"] == {"greedy": True, "engine": "transformers", "limit": "min(4, 3 x source tokens + 16)",
                             "loop_span": 32}  # fmt: skip
    assert "greedy decoding (transformers), at most min(4, 3 x source tokens + 16) new tokens; a loop over 32" in table
    saved = load_config(EvalRunConfig, out / "config.yaml")
    assert saved.eval.max_sentences == 2 and saved.systems["tuned"]


def test_rerun_is_fully_cached(full_run, monkeypatch):
    out, overrides, server = full_run
    sent = len(server.requests)
    before = (out / "base" / "scores.json").stat().st_mtime_ns

    def no_engine(*a, **k):
        raise AssertionError("a cached evaluation must not load a model")

    monkeypatch.setattr("bayling.evaluate.stage.make_engine", no_engine)
    assert main(["eval", "run", str(REPO / "configs" / "eval" / "flores_grid.yaml"), *overrides]) == 0
    assert len(server.requests) == sent  # judge verdicts come from the cache
    assert (out / "base" / "scores.json").stat().st_mtime_ns == before


def test_report_is_self_contained(full_run):
    out, _, _ = full_run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3  # heatmap, tier bars, deltas
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from anywhere
    assert "<script" not in page and "<link" not in page and "<dc:date>" not in page
    for section in (
        "Translation",
        "Knowledge and understanding",
        "Open-ended",
        "Pairwise",
        "Interactive translation: per turn",
        "Constrained translation",
        "Metric signatures",
    ):
        assert section in page
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    tiers = report["languages"]["systems"]["base"]["tiers"]
    assert set(tiers) == {"high", "medium", "low"} and report["languages"]["pivot"] == "eng_Latn"
    assert report["deltas"]["chrf"]["eng_Latn-deu_Latn"] == 0.0


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(full_run, tmp_path):
    out, _, _ = full_run
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,2600",
            f"--screenshot={shot}",
            (out / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] == 2600 and img.shape[1] == 1200
    plot_band = img[900:2200, :, :3]  # below the table: the plots are drawn (dark and coloured pixels)
    assert (plot_band.mean(axis=2) < 0.5).mean() > 0.01 and plot_band.std() > 0.1


def _grid_cfg(data_dir: Path) -> EvalConfig:
    return EvalConfig(
        testset="flores200",
        data_dir=str(data_dir),
        max_sentences=2,
        max_new_tokens=4,
        translation=TranslationConfig(languages=GRID, metrics=["bleu", "chrf"]),
        report=False,
    )


def test_same_model_twice_gives_identical_scores(tiny_llama, shared_data_dir, tmp_path):
    model = ModelConfig(name_or_path=str(tiny_llama), dtype="float32", device="cpu")
    systems = {"base": System("base", str(tiny_llama))}
    a = evaluate(_grid_cfg(shared_data_dir), model, systems, tmp_path / "a").metrics
    b = evaluate(_grid_cfg(shared_data_dir), model, systems, tmp_path / "b").metrics
    assert a["systems"] == b["systems"] and len(a["directions"]) == 20
    for d in a["directions"]:  # every demonstration draw (three by default) gives the same outputs again
        files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "base").glob(f"seed-*/{d}.jsonl"))
        assert len(files) == 3
        assert all((tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text() for f in files)


def test_pipeline_stage_still_writes_the_before_after_table(tiny_llama, tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    argv = [
        "eval",
        str(REPO / "configs" / "quickstart.yaml"),
        f"run_dir={run_dir}",
        "stages=[data,eval]",
        f"model.name_or_path={tiny_llama}",
        "model.dtype=float32",
        *tiny_data(heldout=4, interactive=8, crosslingual=4, general=2),
        "eval.max_sentences=2",
        "eval.max_new_tokens=4",
    ]
    assert main(argv) == 0
    m = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert m["testset"] == "heldout" and list(m["systems"]) == ["base-fewshot"]  # a base model: few-shot
    assert m["systems"]["base-fewshot"]["eng_Latn-zho_Hans"]["bleu"]["signature"].startswith("nrefs:1")
    assert m["prompts"]["base-fewshot"]["prompt"] == "fewshot"
    assert (run_dir / "eval" / "table.md").is_file() and (run_dir / "eval" / "report.html").is_file()


def test_every_shipped_eval_config_loads():
    files = sorted((REPO / "configs" / "eval").glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        cfg = load_config(EvalRunConfig, f)
        assert cfg.systems and cfg.eval.testset != "heldout", f


class _CrashingEngine:
    """The real tiny engine, interrupted (as by Ctrl-C) on its second call: fault injection, not a mock."""

    def __init__(self, engine, crash_on: int | None = 2):
        self.engine, self.crash_on, self.calls = engine, crash_on, 0

    def generate(self, convs, params=None, progress=None):
        self.calls += 1
        if self.calls == self.crash_on:
            raise KeyboardInterrupt
        return self.engine.generate(convs, params, progress=progress)


def test_interrupted_translation_resumes_from_the_journal(tiny_engine, shared_data_dir, tmp_path):
    from bayling.evaluate.translation import translate_and_score
    from bayling.testsets import load_flores

    dirs = [("eng_Latn", c) for c in ("deu_Latn", "fra_Latn", "spa_Latn", "ita_Latn")]
    bitexts = [b.head(2) for b in load_flores(shared_data_dir / "flores200", dirs)]
    crashing = _CrashingEngine(tiny_engine)
    with pytest.raises(KeyboardInterrupt):
        translate_and_score(crashing, bitexts, tmp_path / "a", 4, journal_tag="t", group_size=4)
    assert len((tmp_path / "a" / "hypotheses.journal.jsonl").read_text().splitlines()) == 2  # first group kept
    resumed = _CrashingEngine(tiny_engine, crash_on=None)
    res = translate_and_score(resumed, bitexts, tmp_path / "a", 4, journal_tag="t", group_size=4)
    assert resumed.calls == 1  # only the second group was generated again
    fresh = translate_and_score(tiny_engine, bitexts, tmp_path / "b", 4, journal_tag="t", group_size=4)
    assert res == fresh
    again = _CrashingEngine(tiny_engine, crash_on=None)
    translate_and_score(again, bitexts, tmp_path / "a", 4, journal_tag="other settings", group_size=4)
    assert again.calls == 2 and len((tmp_path / "a" / "hypotheses.journal.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.benchmarks.tasks=[mmlu]", "eval.benchmarks.tasks: unknown mmlu"),
        ("eval.engine=onnx", "eval.engine: unknown onnx"),
        ("eval.engine_options.n_ctx=512", "eval.engine_options: the transformers engine has no option 'n_ctx'"),
        ("eval.open_ended.judge.mode=pairwise", "compares 'tuned' with 'base'"),
        ("systems.base=/no/such/model", "unknown model '/no/such/model'"),
    ],
)
def test_bad_eval_config_fails_in_one_line_before_any_work(override, message, capsys, tmp_path):
    argv = ["eval", "run", str(REPO / "configs" / "eval" / "judge.yaml"), f"out_dir={tmp_path}", override]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bayling: error:") and message in err and len(err.splitlines()) == 1


def test_translate_writes_loops_out_with_loop_span(tiny_engine, shared_data_dir):
    """``eval.translation.loop_span`` reaches the engine: the tiny random model loops, and with the rule its
    looping rows end early (fewer decoding steps) while every hypothesis is the full decoding's wherever the model
    stays in its loop (:func:`bayling.engines.decode.replay`)."""
    from bayling.evaluate.translation import translate
    from bayling.testsets import load_flores

    full = load_flores(shared_data_dir / "flores200", [("eng_Latn", "deu_Latn")])[0]
    bitexts = [full.head(6)]
    demos = {full.key: list(zip(full.sources[900:902], full.refs[900:902], strict=True))}
    steps, hyps = {}, {}
    for span in (0, 30):
        calls: list[int] = []
        hook = tiny_engine.model.get_input_embeddings().register_forward_hook(lambda m, a, o, c=calls: c.append(1))
        hyps[span] = translate(tiny_engine, bitexts, 96, fewshot=demos, length_rule=(3.0, 16), loop_span=span)
        hook.remove()
        steps[span] = len(calls)
    assert steps[30] < steps[0], (steps, hyps)
    same = sum(a == b for a, b in zip(hyps[0]["eng_Latn-deu_Latn"], hyps[30]["eng_Latn-deu_Latn"], strict=True))
    assert same == 6, hyps  # this model never leaves a loop it has repeated over 30 tokens
