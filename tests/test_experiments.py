"""The experiment presets (``configs/experiments``): what they promise, and that they run on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.cli import main
from bayling.config import load_config, to_dict
from bayling.languages import expand_languages, get_language
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "configs" / "experiments"
FLORES_ALIGNMENT = EXPERIMENTS / "flores_alignment.yaml"
ABLATION = [EXPERIMENTS / f"ablation_{k}.yaml" for k in "abc"]


def _tiny(tiny_llama: Path, run_dir: Path) -> list[str]:
    """Tiny sizes on the shipped sample (CI has no FLORES): the same stages and keys as the real run."""
    return [
        f"run_dir={run_dir}",
        f"model.name_or_path={tiny_llama}",
        "model.dtype=float32",
        "data.source=sample",
        "data.languages=[eng_Latn,zho_Hans,deu_Latn]",
        "data.split_by=auto",
        "data.heldout=6",
        "data.fewshot=4",
        "data.token_budget=6000",
        f"data.tokenizer={tiny_llama}",
        "train.max_steps=2",
        "train.learning_rate=0.01",
        "train.logging_steps=1",
        "train.save_steps=0",
        "train.report_to=[]",  # no TensorBoard/MLflow files in the working directory
        "eval.translation.languages=[zho_Hans,deu_Latn]",
        "eval.max_sentences=2",
        "eval.max_new_tokens=4",
        "eval.batch_size=2",
    ]


def test_flores_alignment_covers_what_the_issue_asks():
    cfg = load_config(RunConfig, FLORES_ALIGNMENT)
    langs = [get_language(c) for c in expand_languages(cfg.data.languages)]
    assert len(langs) >= 30 and {lang.tier for lang in langs} == {"high", "medium", "low"}
    assert min(sum(lang.tier == t for lang in langs) for t in ("high", "medium", "low")) >= 10
    evaluated = [get_language(c) for c in cfg.eval.translation.languages]
    assert len(evaluated) >= 12 and cfg.eval.translation.pivot == "eng_Latn" and cfg.eval.testset == "heldout"
    assert {lang.tier for lang in evaluated} == {"high", "medium", "low"}
    assert len({lang.script for lang in evaluated} - {"Latn"}) >= 4
    assert {lang.code for lang in evaluated} <= {lang.code for lang in langs}  # held-out records carry them
    mix = cfg.data.mix
    assert (mix["general_zho_Hans"], mix["general_eng_Latn"]) == (0.432, 0.262)  # BayLing 2's ratio
    assert sum(mix.values()) == pytest.approx(1.0) and mix["interactive"] > 0 and mix["crosslingual"] > 0
    assert cfg.data.split_by == "document" and cfg.data.token_budget and cfg.model.name_or_path == "gemma-3-270m"
    # enough sentences for a Δ's interval to exclude 0, and a few-shot base that is not one draw (issue 20)
    assert cfg.eval.max_sentences >= 50 and len(set(cfg.eval.translation.fewshot_seeds)) >= 3


def test_ablation_presets_change_only_the_translation_mix():
    base = to_dict(load_config(RunConfig, FLORES_ALIGNMENT))
    translation = {}
    for path in ABLATION:
        cfg = to_dict(load_config(RunConfig, path))
        mix = cfg["data"].pop("mix")
        assert cfg["name"] == path.stem and not cfg["eval"].pop("compare_base")
        same = {k: v for k, v in base.items() if k != "name"}
        same["data"] = {k: v for k, v in base["data"].items() if k != "mix"}
        same["eval"] = {k: v for k, v in base["eval"].items() if k != "compare_base"}
        assert {k: v for k, v in cfg.items() if k != "name"} == same
        assert {k: mix[k] for k in mix if k.startswith("general")} == {
            k: v for k, v in base["data"]["mix"].items() if k.startswith("general")
        }
        translation[path.stem] = {k: v for k, v in mix.items() if not k.startswith("general")}
    assert translation["ablation_a"] == {"pairs": pytest.approx(0.306)}
    assert set(translation["ablation_b"]) == {"pairs", "interactive"}
    assert translation["ablation_c"] == {k: v for k, v in base["data"]["mix"].items() if not k.startswith("general")}


def test_flores_alignment_runs_end_to_end_on_the_tiny_model(tiny_llama, tmp_path):
    run_dir = tmp_path / "fa"
    assert main(["run", str(FLORES_ALIGNMENT), *_tiny(tiny_llama, run_dir)]) == 0
    for stage in ("data", "train", "eval"):
        assert (run_dir / stage / "_stage.json").is_file(), stage
    data = run_dir / "data"
    held = [json.loads(x) for x in (data / "heldout.jsonl").read_text().splitlines()]
    pool = [json.loads(x) for x in (data / "fewshot.jsonl").read_text().splitlines()]
    assert len(held) == 6 and len(pool) == 4 and not {r["id"] for r in held} & {r["id"] for r in pool}
    stats = json.loads((data / "stats.json").read_text())
    assert set(stats["tasks"]) == {"general", "pairs", "interactive", "crosslingual"}
    assert abs(stats["tokens"]["total"] - 6000) < 600
    assert json.loads((run_dir / "train" / "summary.json").read_text())["steps"] == 2
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    directions = {"eng_Latn-zho_Hans", "zho_Hans-eng_Latn", "eng_Latn-deu_Latn", "deu_Latn-eng_Latn"}
    for system in ("base-fewshot", "base-chat", "tuned"):
        assert set(metrics["systems"][system]) >= directions
        assert all(0 <= metrics["systems"][system][d]["chrf"]["score"] <= 100 for d in directions)


@pytest.mark.parametrize("preset", ABLATION, ids=lambda p: p.stem)
def test_each_ablation_preset_builds_and_trains(preset, tiny_llama, tmp_path):
    run_dir = tmp_path / preset.stem
    assert main(["run", str(preset), *_tiny(tiny_llama, run_dir), "stages=[data,train]"]) == 0
    stats = json.loads((run_dir / "data" / "stats.json").read_text())
    assert abs(stats["tokens"]["total"] - 6000) < 600
    assert json.loads((run_dir / "train" / "summary.json").read_text())["steps"] == 2


def test_flores_alignment_data_stage_on_real_flores(shared_data_dir, tiny_llama, tmp_path):
    from bayling.evaluate.stage import load_testset

    run_dir = tmp_path / "real"
    over = [
        f"run_dir={run_dir}",
        f"data.flores_dir={shared_data_dir / 'flores200'}",
        f"data.tokenizer={tiny_llama}",  # the preset's token budget, counted by a small tokenizer
    ]
    assert main(["data", str(FLORES_ALIGNMENT), *over]) == 0
    cfg = load_config(RunConfig, FLORES_ALIGNMENT, over)
    stats = json.loads((run_dir / "data" / "stats.json").read_text())
    assert stats["split"]["by"] == "document" and stats["heldout_records"] >= 300 and stats["fewshot_records"] >= 20
    assert stats["languages_count"] == len(cfg.data.languages)  # every language reaches the training data
    bitexts = load_testset(cfg.eval, run_dir / "data" / "heldout.jsonl")
    assert len(bitexts) == 2 * len(cfg.eval.translation.languages) and all(
        len(b.sources) == cfg.eval.max_sentences for b in bitexts
    )
    train_text = (run_dir / "data" / "train.jsonl").read_text(encoding="utf-8")
    assert not [s for b in bitexts for s in b.sources if s in train_text]  # no evaluated sentence was trained on
