"""``bayling run`` end to end on the tiny Llama: every stage's output, caching, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.cli import main
from bayling.config import load_config
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[1]


def _overrides(tiny_llama: Path, run_dir: Path, tiny_data) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"model.name_or_path={tiny_llama}",
        "model.dtype=float32",
        *tiny_data(heldout=6, interactive=24, crosslingual=12, general=4),
        "train.max_steps=4",
        "train.batch_size=2",
        "train.learning_rate=0.01",
        "train.logging_steps=1",
        "eval.max_sentences=3",
        "eval.max_new_tokens=6",
        "chat.max_new_tokens=6",
    ]


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, tmp_path_factory, tiny_data):
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["run", str(REPO / "configs" / "quickstart.yaml"), *_overrides(tiny_llama, run_dir, tiny_data)]) == 0
    return run_dir


def test_run_writes_every_stage(tiny_run):
    cfg = load_config(RunConfig, tiny_run / "config.yaml")
    assert cfg.train.max_steps == 4  # the resolved config, overrides included, is saved
    for stage in ("data", "train", "eval", "chat"):
        assert (tiny_run / stage / "_stage.json").is_file(), stage
    train_rows = [json.loads(x) for x in (tiny_run / "data" / "train.jsonl").read_text().splitlines()]
    heldout = [json.loads(x) for x in (tiny_run / "data" / "heldout.jsonl").read_text().splitlines()]
    assert len(heldout) == 6
    # held-out sentences never appear in any training message
    held_texts = {r["eng_Latn"] for r in heldout} | {r["zho_Hans"] for r in heldout}
    assert not any(m["content"] in held_texts for r in train_rows for m in r["messages"])
    summary = json.loads((tiny_run / "train" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["first_loss"] > 0
    assert (tiny_run / "train" / "final" / "adapter_model.safetensors").is_file()


def test_training_changed_the_adapter(tiny_run):
    from safetensors.torch import load_file

    weights = load_file(str(tiny_run / "train" / "final" / "adapter_model.safetensors"))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().sum()) > 0 for v in lora_b)  # PEFT initialises lora_B to zeros


def test_eval_metrics_have_both_systems_and_signatures(tiny_run):
    metrics = json.loads((tiny_run / "eval" / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"base-fewshot", "tuned"}  # the base few-shot, the tuned model in chat
    assert [metrics["prompts"][s]["prompt"] for s in ("base-fewshot", "tuned")] == ["fewshot", "chat"]
    for system in metrics["systems"].values():
        for d in ("eng_Latn-zho_Hans", "zho_Hans-eng_Latn", "eng_Latn-deu_Latn", "deu_Latn-eng_Latn"):
            assert 0 <= system[d]["chrf"]["score"] <= 100
            assert "nrefs:1" in system[d]["bleu"]["signature"]
    assert "tok:zh" in metrics["systems"]["base-fewshot"]["eng_Latn-zho_Hans"]["bleu"]["signature"]
    assert "tok:13a" in metrics["systems"]["base-fewshot"]["eng_Latn-deu_Latn"]["bleu"]["signature"]
    table = (tiny_run / "eval" / "table.md").read_text()
    assert "| average |" in table and "Δ chrF++" in table and "Δ = tuned - base-fewshot" in table


def test_rerun_uses_the_cache_and_eval_change_reruns_only_eval(tiny_run, tiny_llama, tiny_data, capsys):
    stamps = {s: (tiny_run / s / "_stage.json").stat().st_mtime_ns for s in ("data", "train", "eval")}
    assert main(["run", str(REPO / "configs" / "quickstart.yaml"), *_overrides(tiny_llama, tiny_run, tiny_data)]) == 0
    assert {s: (tiny_run / s / "_stage.json").stat().st_mtime_ns for s in stamps} == stamps
    over = _overrides(tiny_llama, tiny_run, tiny_data) + ["eval.max_sentences=2"]
    assert main(["eval", str(REPO / "configs" / "quickstart.yaml"), *over]) == 0
    assert (tiny_run / "train" / "_stage.json").stat().st_mtime_ns == stamps["train"]
    assert (tiny_run / "eval" / "_stage.json").stat().st_mtime_ns != stamps["eval"]
    assert json.loads((tiny_run / "eval" / "metrics.json").read_text())["sentences_per_direction"] == 2


def test_chat_answers_from_a_run_dir(tiny_run, capsys):
    assert main(["chat", str(tiny_run), "-m", "Hello", "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert out.strip() != ""


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "nope.yaml"], "config file not found: nope.yaml"),
        (["run", str(REPO / "configs" / "quickstart.yaml"), "train.lr=1"], "unknown config key 'train.lr'"),
        (
            ["run", str(REPO / "configs" / "quickstart.yaml"), "data.languages=[eng_Latn,deu_Latm]"],
            "did you mean: deu_Latn",
        ),
        (
            ["run", str(REPO / "configs" / "quickstart.yaml"), "model.name_or_path=no-such-model"],
            "unknown model 'no-such-model'",
        ),
        (["chat", "/no/such/dir"], "unknown model '/no/such/dir'"),
    ],
)
def test_bad_input_gives_one_clear_line(args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bayling: error: ") and expected in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_load_data_config_tells_a_data_preset_from_a_run_config(tmp_path, monkeypatch):
    from bayling.pipeline import load_data_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "preset.yaml").write_text("name: p\nout_dir: built/{name}\nseed: 3\ndata:\n  total: 7\n")
    (tmp_path / "run.yaml").write_text("name: r\nrun_dir: rr/{name}\nseed: 5\ndata:\n  total: 9\n")
    data, out, seed = load_data_config("preset.yaml", ["data.total=8"])
    assert (data.total, out, seed) == (8, Path("built/p"), 3)
    assert "total: 8" in (out / "config.yaml").read_text()
    data, out, seed = load_data_config("run.yaml")
    assert (data.total, out, seed) == (9, Path("rr/r/data"), 5)
    assert load_data_config("run.yaml", out=tmp_path / "elsewhere")[1] == tmp_path / "elsewhere"
