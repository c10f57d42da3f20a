"""Shareable outputs (mode 0644 under the default umask, not mkstemp's 0600), ``train.report_to`` checks, and
the model-card pieces that need no network: base-model ids, licenses, languages, ``model-index`` entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bayling.card import base_license, base_model_id, eval_results, iso_languages
from bayling.errors import ConfigError
from bayling.io import JsonlWriter, atomic_temp_dir, write_json, write_jsonl, write_text
from bayling.train.config import TrainConfig


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize(
    "mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750), (0o002, 0o664, 0o775)]
)
def test_atomic_writes_get_the_umask_s_normal_permissions(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    write_json(tmp_path / "stats.json", {"a": 1})
    write_jsonl(tmp_path / "train.jsonl", [{"a": 1}])
    write_text(tmp_path / "README.md", "hi\n")
    with JsonlWriter(tmp_path / "w.jsonl") as w:
        w.write({"b": 2})
    for name in ("stats.json", "train.jsonl", "README.md", "w.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == file_mode, name
    assert atomic_temp_dir(tmp_path / "merged").stat().st_mode & 0o777 == dir_mode
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "README.md",
        "stats.json",
        "train.jsonl",
        "w.jsonl",
    ]


def test_report_to_accepts_transformers_trackers_and_names_the_key():
    assert TrainConfig(report_to=["tensorboard", "mlflow"]).report_to == ["tensorboard", "mlflow"]
    assert TrainConfig(report_to=["none"]).report_to == ["none"]
    with pytest.raises(ConfigError, match=r"train.report_to: unknown tracker 'tensorbord'"):
        TrainConfig(report_to=["tensorbord"])
    with pytest.raises(ConfigError, match=r"train.report_to: wandb is not installed \(pip install wandb\)"):
        TrainConfig(report_to=["wandb"])  # not in the test environment: fails at config time, not mid-training


def test_default_trackers_write_only_into_the_run(monkeypatch):
    from bayling.train.callbacks import default_report_to

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    assert default_report_to(None) == ["tensorboard"]  # no mlflow.db / mlruns in the working directory
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert default_report_to(None) == ["tensorboard", "mlflow"]
    assert default_report_to(["none"]) == [] and default_report_to(["mlflow"]) == ["mlflow"]


def test_base_model_ids_and_licenses(tmp_path):
    assert base_model_id("gemma-3-270m") == "google/gemma-3-270m"
    assert base_model_id("Qwen/Qwen2.5-1.5B@main") == "Qwen/Qwen2.5-1.5B"
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    assert base_model_id(str(tmp_path / "elsewhere"), snap) == "org/tiny"
    assert base_model_id(str(tmp_path)) is None
    assert base_license("google/gemma-3-270m", None) == {"license": "gemma"}
    (snap / "README.md").write_text("---\nlicense: other\nlicense_name: tiny\nlicense_link: LICENSE\n---\n# x\n")
    assert base_license("org/tiny", snap) == {"license": "other", "license_name": "tiny", "license_link": "LICENSE"}
    assert base_license(None, tmp_path) == {}
    assert iso_languages(["eng_Latn", "zho_Hans", "zho_Hant", "ast_Latn"]) == ["en", "zh", "ast"]


def test_eval_results_cover_translation_and_benchmarks():
    from types import SimpleNamespace

    sig = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    metrics = {
        "testset": "flores200",
        "sentences_per_direction": 1012,
        "directions": ["eng_Latn-deu_Latn"],
        "systems": {
            "base": {"eng_Latn-deu_Latn": {"bleu": {"score": 10.0, "signature": sig}}},
            "tuned": {"eng_Latn-deu_Latn": {"bleu": {"score": 12.5, "signature": sig}, "n": 1012}},
        },
        "benchmarks": {"tuned": {"xcopa": {"zh": {"accuracy": 61.2, "n": 500}}}},
    }
    cfg = SimpleNamespace(data=SimpleNamespace(source="sample"))
    [bleu, xcopa] = eval_results(metrics, cfg)
    assert (bleu.dataset_type, bleu.dataset_name, bleu.dataset_split) == ("facebook/flores", "FLORES-200", "devtest")
    assert (bleu.metric_type, bleu.metric_value, bleu.metric_config, bleu.dataset_args) == (
        "bleu",
        12.5,
        sig,
        {"sentences": 1012},
    )
    assert (xcopa.dataset_name, xcopa.dataset_config, xcopa.metric_type, xcopa.metric_value) == (
        "xcopa",
        "zh",
        "accuracy",
        61.2,
    )


def test_no_stray_temp_files(tmp_path):
    write_json(tmp_path / "a.json", [1])
    assert [p.name for p in Path(tmp_path).iterdir()] == ["a.json"]


def test_merged_model_card_is_a_transformers_fine_tune(tmp_path):
    from huggingface_hub import ModelCard

    from bayling.card import write_cards
    from bayling.pipeline import RunConfig

    cfg = RunConfig()
    cfg.model.name_or_path = "gemma-3-270m"
    (tmp_path / "train" / "final").mkdir(parents=True)
    (tmp_path / "train" / "final" / "adapter_config.json").write_text("{}")
    (tmp_path / "train" / "merged").mkdir()
    (tmp_path / "train" / "merged" / "config.json").write_text("{}")
    written = write_cards(cfg, tmp_path, metrics=None, cmd="bayling train configs/quickstart.yaml")
    assert written == [tmp_path / "train" / "final" / "README.md", tmp_path / "train" / "merged" / "README.md"]
    adapter, merged = (ModelCard.load(p) for p in written)
    assert (adapter.data.library_name, merged.data.library_name) == ("peft", "transformers")
    assert merged.data.base_model == "google/gemma-3-270m" and merged.data.license == "gemma"
    assert "base_model:finetune:google/gemma-3-270m" in merged.data.tags
    assert merged.data.eval_results is None and "Not evaluated yet" in merged.text
    assert "bayling train configs/quickstart.yaml" in merged.text
