"""``bayling eval run configs/eval/wmt24pp.yaml`` and ``configs/eval/benchmarks.yaml`` (with the Hub sets) as a user
runs them (a subprocess), against the stand-in Hub: per-locale scores with signatures, the dropped bad sources,
demonstrations from FLORES-200 dev (a split never scored), and multiple-choice scores equal to the scorer's own
on the same items."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL = "bayling-test/tiny-llama"


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from bayling.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_wmt24pp_preset_scores_each_locale(hub_env, hub_sets, tmp_path):
    data = tmp_path / "data"
    dev = data / "flores200" / "dev"
    dev.mkdir(parents=True)
    flores = hub_sets.sample(6, 300)  # FLORES-200 dev stand-in: demonstrations never come from WMT24++
    for code in ("eng_Latn", "deu_Latn", "fra_Latn"):
        (dev / f"{code}.dev").write_text("".join(r[code] + "\n" for r in flores), encoding="utf-8")
    env = dict(hub_env, BAYLING_EVAL_DATA=str(data), BAYLING_NO_PROGRESS="1")
    out = tmp_path / "run"
    args = [
        "eval",
        "run",
        str(REPO / "configs" / "eval" / "wmt24pp.yaml"),
        f"out_dir={out}",
        f"systems.base={MODEL}",
        "eval.translation.directions=[en-de,en-fr]",
        "eval.max_sentences=3",
        "eval.max_new_tokens=4",
        "eval.translation.fewshot_k=2",
        "eval.report=false",
    ]
    r = cli(args, env, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    m = json.loads((out / "metrics.json").read_text())
    keys = ["eng_Latn-de_DE", "eng_Latn-fr_CA", "eng_Latn-fr_FR"]
    assert m["testset"] == "wmt24pp" and m["directions"] == keys and m["sentences_per_direction"] == 3
    assert m["dropped"] == {k: len(hub_sets.WMT24PP_BAD) for k in keys}
    for k in keys:
        s = m["systems"]["base"][k]
        assert s["n"] == 3 and "off_target" in s
        assert "tok:13a" in s["bleu"]["signature"] and s["chrf"]["signature"].startswith("nrefs:1")
    prompt = m["prompts"]["base"]
    assert prompt["prompt"] == "fewshot" and prompt["pool"].startswith("FLORES-200 dev")
    assert prompt["demos"]["eng_Latn-fr_CA"] and all(
        i.startswith("flores200-dev-") for i in prompt["demos"]["eng_Latn-de_DE"]
    )
    kept = [i for i in range(8) if i not in hub_sets.WMT24PP_BAD][:3]
    assert prompt["seeds"] == [0, 1, 2]  # the few-shot base: three demonstration draws, each scored on its own
    for seed in prompt["seeds"]:
        rows = [
            json.loads(x) for x in (out / "base" / f"seed-{seed}" / "eng_Latn-fr_CA.jsonl").read_text().splitlines()
        ]
        assert [x["id"] for x in rows] == [f"wmt24pp-fr_CA-{1000 + i}" for i in kept]


def test_benchmarks_preset_takes_the_hub_sets(hub_env, hub_sets, tmp_path, tiny_llama, run_py):
    env = dict(hub_env, BAYLING_NO_PROGRESS="1")
    out = tmp_path / "run"
    tasks = ["global_mmlu_lite", "include", "mmlu_prox_lite"]
    args = [
        "eval",
        "run",
        str(REPO / "configs" / "eval" / "benchmarks.yaml"),
        f"out_dir={out}",
        f"systems.base={MODEL}",
        f"eval.benchmarks.tasks=[{','.join(tasks)}]",
        "eval.report=false",
    ]
    r = cli(args, env, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    got = json.loads((out / "metrics.json").read_text())["benchmarks"]["base"]
    assert {b: sorted(v) for b, v in got.items()} == {
        "global_mmlu_lite": ["de", "zh"],
        "include": ["Chinese", "German"],
        "mmlu_prox_lite": ["de", "zh"],
    }
    de = got["global_mmlu_lite"]["de"]
    assert de["n"] == 4 and sorted(de["subsets"]) == ["CA", "CS"]
    assert de["subsets"]["CA"]["n"] == de["subsets"]["CS"]["n"] == 2
    # the same items scored here, in-process, by the scorer on the same weights: the same numbers
    expected = run_py(
        f"""
        import json
        from bayling.engines.hf import TransformersEngine
        from bayling.evaluate.benchmarks import load_benchmark
        from bayling.evaluate.mc import score_mc
        engine = TransformersEngine({str(tiny_llama)!r}, dtype="float32", device="cpu")
        print(json.dumps({{b: {{k: score_mc(engine, v, 4)[0] for k, v in load_benchmark(b).items()}}
                          for b in {tasks!r}}}))
        """,
        env,
    )
    assert got == expected
    for b, per in got.items():
        for lang, s in per.items():
            rows = [
                json.loads(x) for x in (out / "base" / "benchmarks" / f"{b}.{lang}.jsonl").read_text().splitlines()
            ]
            assert s["acc"] == round(100.0 * sum(x["pred"] == x["label"] for x in rows) / len(rows), 2)
