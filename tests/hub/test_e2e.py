"""``bayling run configs/quickstart.yaml`` with a Hub model and Hub data sets, as a user runs it (a subprocess),
against the stand-in Hub: the download, the model card with the run's own scores, tracking (TensorBoard and
MLflow's local file store), cache reuse on a re-run, file permissions, and ``bayling push``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = "bayling-test/tiny-llama"


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from bayling.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def overrides(run_dir: Path, tiny_data) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"model.name_or_path={MODEL}",
        "model.dtype=float32",
        "data.source=hf:bayling-test/tiny-parallel",
        "data.instructions=[hf:bayling-test/tiny-instructions]",
        *tiny_data(heldout=6, interactive=16, crosslingual=8, general=4),
        "train.max_steps=2",
        "train.batch_size=2",
        "train.learning_rate=0.01",
        "train.logging_steps=1",
        "train.report_to=[tensorboard,mlflow]",
        "eval.translation.directions=[eng_Latn-zho_Hans,zho_Hans-eng_Latn]",
        "eval.max_sentences=3",
        "eval.max_new_tokens=4",
        "eval.report=false",
        "stages=[data,train,eval]",
    ]


@pytest.fixture(scope="module")
def hub_run(hub_env_module, hub_server, tmp_path_factory, tiny_data):
    work = tmp_path_factory.mktemp("e2e")
    # MLflow 3 keeps its file store behind an opt-in (it prefers sqlite); the brief is a local file store
    mlflow = {"MLFLOW_TRACKING_URI": (work / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    env = dict(hub_env_module, **mlflow, BAYLING_NO_PROGRESS="1")
    args = ["run", str(REPO / "configs" / "quickstart.yaml"), *overrides(work / "run", tiny_data)]
    hub_server.clear_log()
    result = cli(args, env, work)
    assert result.returncode == 0, result.stderr[-4000:]
    return SimpleNamespace(dir=work / "run", env=env, args=args, result=result, log=list(hub_server.log), work=work)


def test_quickstart_runs_on_a_hub_model_and_hub_data(hub_run, hub_server):
    assert f"downloading {MODEL} (6 files" in hub_run.result.stderr
    paths = [p for _, p, _ in hub_run.log]
    assert f"/api/models/{MODEL}" in paths
    assert (
        "/api/datasets/bayling-test/tiny-parallel/tree/"
        + hub_server.repo("bayling-test/tiny-parallel", "dataset").head
        in paths
    )
    stats = json.loads((hub_run.dir / "data" / "stats.json").read_text())
    assert stats["examples"] == 28 and stats["tasks"]["general"] == 4
    heldout = [json.loads(x) for x in (hub_run.dir / "data" / "heldout.jsonl").read_text().splitlines()]
    sample = {
        json.loads(x)["id"] for x in (REPO / "src/bayling/data/samples/parallel.jsonl").read_text().splitlines()[:80]
    }
    assert len(heldout) == 6 and {r["id"] for r in heldout} <= sample  # the Hub data set's own ids
    summary = json.loads((hub_run.dir / "train" / "summary.json").read_text())
    assert summary["steps"] == 2 and "models--bayling-test--tiny-llama" in summary["base_model"]


def test_model_card_loads_and_matches_eval_metrics(hub_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(hub_run.dir / "train" / "final" / "README.md")
    metrics = json.loads((hub_run.dir / "eval" / "metrics.json").read_text())
    d = card.data
    assert d.base_model == MODEL and d.library_name == "peft" and d.license == "apache-2.0"  # license of the base
    assert d.language == ["en", "zh", "de"] and d.pipeline_tag == "text-generation"
    assert d.datasets == ["bayling-test/tiny-parallel", "bayling-test/tiny-instructions"]
    assert f"base_model:adapter:{MODEL}" in d.tags and "lora" in d.tags
    tuned = metrics["systems"]["tuned"]
    expected = {
        (dr, m): (tuned[dr][m]["score"], tuned[dr][m]["signature"])
        for dr in metrics["directions"]
        for m in ("bleu", "chrf")
    }
    got = {(r.dataset_config, r.metric_type): (r.metric_value, r.metric_config) for r in d.eval_results}
    assert got == expected and len(d.eval_results) == 4
    assert {r.dataset_args["sentences"] for r in d.eval_results} == {3}
    assert all(r.task_type == "translation" and r.dataset_split == "heldout" for r in d.eval_results)
    assert shlex.join(["bayling", *hub_run.args]) in card.text  # the exact command that made it
    assert "| eng_Latn-zho_Hans |" in card.text and "nrefs:1" in card.text


def test_eval_scores_join_the_training_run_in_tensorboard_and_mlflow(hub_run, monkeypatch):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = json.loads((hub_run.dir / "eval" / "metrics.json").read_text())
    chrf = metrics["systems"]["tuned"]["zho_Hans-eng_Latn"]["chrf"]["score"]
    trackers = json.loads((hub_run.dir / "train" / "trackers.json").read_text())
    assert trackers["step"] == 2 and set(trackers["report_to"]) == {"tensorboard", "mlflow"}

    acc = EventAccumulator(trackers["tensorboard"]["log_dir"])
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert (
        "train/loss" in tags
        and "eval/tuned/zho_Hans-eng_Latn/chrf" in tags
        and "eval/base-fewshot/average/bleu" in tags
    )
    [event] = acc.Scalars("eval/tuned/zho_Hans-eng_Latn/chrf")
    assert (event.step, round(event.value, 4)) == (2, chrf)

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=hub_run.env["MLFLOW_TRACKING_URI"])
    run = client.get_run(trackers["mlflow"]["run_id"])
    assert "loss" in run.data.metrics  # the trainer's loss...
    assert run.data.metrics["eval/tuned/zho_Hans-eng_Latn/chrf"] == pytest.approx(chrf)  # ...and the scores, one run
    assert trackers["mlflow"]["tracking_uri"] == hub_run.env["MLFLOW_TRACKING_URI"]


def test_outputs_are_readable_by_others(hub_run):
    umask = os.umask(0o022)
    os.umask(umask)
    for rel in (
        "data/train.jsonl",
        "data/heldout.jsonl",
        "data/stats.json",
        "train/summary.json",
        "train/trackers.json",
        "train/final/README.md",
        "eval/metrics.json",
        "eval/_stage.json",
    ):
        assert (hub_run.dir / rel).stat().st_mode & 0o777 == 0o666 & ~umask, rel


def test_rerun_is_cached_and_fetches_no_file(hub_run, hub_server):
    hub_server.clear_log()
    again = cli(hub_run.args, hub_run.env, hub_run.work)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "downloading" not in again.stderr and again.stderr.count("up to date (cached)") == 3
    assert hub_server.file_requests() == []
    assert [r for r in hub_server.log if r[1].startswith("/api/models/")] == [("GET", f"/api/models/{MODEL}", 200)]


def test_push_uploads_the_adapter_and_its_card(hub_run, hub_server):
    from huggingface_hub import ModelCard

    target = "bayling-tester/quickstart-adapter"
    refused = cli(["push", str(hub_run.dir), target], hub_run.env, hub_run.work)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "bayling: error: pushing needs a Hugging Face token with write access: `hf auth login` or set HF_TOKEN"
    )

    hub_server.clear_log()
    pushed = cli(["push", str(hub_run.dir), target], dict(hub_run.env, HF_TOKEN="hf_writer"), hub_run.work)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    repo = hub_server.repo(target)
    files = repo.commits[repo.head]
    final = hub_run.dir / "train" / "final"
    assert files["adapter_model.safetensors"] == (final / "adapter_model.safetensors").read_bytes()
    local, remote = (
        json.loads(x) for x in ((final / "adapter_config.json").read_bytes(), files["adapter_config.json"])
    )
    assert "snapshots" in local["base_model_name_or_path"] and remote["base_model_name_or_path"] == MODEL
    assert {k: v for k, v in remote.items() if k != "base_model_name_or_path"} == {
        k: v for k, v in local.items() if k != "base_model_name_or_path"
    }
    assert "training_args.bin" not in files and "bayling_base_model.json" not in files
    assert pushed.stdout.strip() == f"{hub_server.url}/{target}/commit/{repo.head}"
    wire = [(m, p) for m, p, _ in hub_server.log]
    assert ("POST", "/api/repos/create") in wire and ("POST", f"/api/models/{target}/preupload/main") in wire
    assert ("POST", "/api/validate-yaml") in wire  # the card's metadata passed the Hub's check
    assert ("POST", f"/{target}.git/info/lfs/objects/batch") in wire  # safetensors go through git-LFS
    assert ("POST", f"/api/models/{target}/commit/main") in wire

    card = ModelCard(files["README.md"].decode())
    metrics = json.loads((hub_run.dir / "eval" / "metrics.json").read_text())
    tuned = metrics["systems"]["tuned"]
    assert {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results} == {
        (dr, m): tuned[dr][m]["score"] for dr in metrics["directions"] for m in ("bleu", "chrf")
    }
    assert f'AutoPeftModelForCausalLM.from_pretrained("{target}")' in card.text
