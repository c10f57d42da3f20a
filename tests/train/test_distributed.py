"""Multi-process training through the shipped accelerate presets, on CPU, against a single-process run.

Fast: every stage builds its ``TrainingArguments`` before it loads its model, so a ZeRO-3 preset's config is
live (``is_deepspeed_zero3_enabled()``) while the weights load and each rank gets only its shard.

Slow (``pytest -m slow tests/train``; each launch starts fresh interpreters importing torch/transformers/TRL
on a 2-core machine, 20-60 s): ``accelerate launch -m bayling.train`` with

* ``ddp_cpu.yaml``, 2 processes (gloo): the same loss curve and adapter as one process with the same global batch;
* ``deepspeed_zero3.yaml``, 1 process on DeepSpeed's CPU accelerator: a real ZeRO-3 engine (weights partitioned
  at load, 16-bit gather on save), again the same loss curve, adapter and merged export (a whole-model load
  after training: while the stage's ZeRO-3 config stayed live it loaded partitioned and the merge crashed).
  Two processes cannot run here: without a GPU accelerate gives DeepSpeed no process group, so it counts 1
  process while DeepSpeed counts 2 and stops on its batch-size check; bayling refuses that launch with the
  reason (tests/train/test_configs.py);
* ``fsdp.yaml``, 2 processes: accelerate turns FSDP on only for GPU-class devices (CPU processes become
  ``MULTI_CPU``, plain DDP) although torch's ``fully_shard`` itself runs on CPU/gloo, so bayling refuses the
  launch instead of training unsharded; the test checks that refusal and is skipped with accelerate's answer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bayling.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
ACCELERATE_DIR = REPO / "configs" / "accelerate"


# ----------------------------------------------------------------------------- ZeRO-3 init (fast)


class _Loaded(Exception):
    """Raised by the ``from_pretrained`` spy once it has seen what it came for."""


@pytest.mark.parametrize("stage", ["sft", "cpt", "preference"])
@pytest.mark.parametrize(("preset", "zero3"), [("deepspeed_zero3.yaml", True), ("deepspeed_zero2.yaml", False)])
def test_each_stage_loads_its_model_under_the_launchers_zero3_config(
    stage, preset, zero3, launched, monkeypatch, tiny_llama, dialogues_file, tmp_path
):
    """With a ZeRO-3 preset, ``from_pretrained`` runs while ZeRO-3 is live (so ``deepspeed.zero.Init`` partitions
    the weights as they load); before, SFT and DPO/CPO loaded the model before their config existed and every
    rank held the whole model (~32 GB x 8 ranks of host RAM for the 8B full preset)."""
    import transformers
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    from bayling.chat import format_for_tokenizer
    from bayling.train.config import CptConfig, PreferenceConfig, TrainConfig
    from bayling.train.cpt import run_cpt
    from bayling.train.preference import run_preference
    from bayling.train.sft import run_sft

    launched(ACCELERATE_DIR / preset, "--mixed_precision", "no")  # fp32: no GPU here
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llama)  # the stages set its chat template
    seen = []

    def spy(*args, **kwargs):
        seen.append(is_deepspeed_zero3_enabled())
        raise _Loaded

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    cfg = TrainConfig(method="lora", bf16=False, max_steps=1, report_to=[])
    fmt = format_for_tokenizer("auto", tokenizer)
    with pytest.raises(_Loaded):
        if stage == "sft":
            run_sft(cfg, tiny_llama, tokenizer, fmt, dialogues_file, tmp_path / "sft", tmp_path / "out", "cpu", 0)
        elif stage == "cpt":
            mono = tmp_path / "mono.txt"
            mono.write_text("Das Wetter ist heute schön.\n今天天气很好。\n", encoding="utf-8")
            cpt = dataclasses.replace(cfg, cpt=CptConfig(data=str(mono), max_steps=1))
            run_cpt(cpt, tiny_llama, tokenizer, tmp_path / "cpt", "cpu", 0)
        else:
            pairs = tmp_path / "pairs.jsonl"
            pairs.write_text(
                json.dumps({"prompt": [{"role": "user", "content": "Hallo"}], "chosen": "Hello", "rejected": "Hi"})
                + "\n",
                encoding="utf-8",
            )
            pref = dataclasses.replace(cfg, preference=PreferenceConfig(method="cpo", data=str(pairs), max_steps=1))
            sft_adapter = tmp_path / "sft_adapter"  # no config.json: the base plus an adapter is loaded
            sft_adapter.mkdir()
            run_preference(
                pref, tiny_llama, tokenizer, fmt, dialogues_file, sft_adapter, tmp_path / "pref",
                tmp_path / "pref_out", "cpu", 0,
            )  # fmt: skip
    assert seen == [zero3]


# ----------------------------------------------------------------------------- real launches (slow)


def _accelerate() -> str:
    exe = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if exe is None:
        pytest.skip("accelerate CLI not found")
    return exe


@pytest.fixture(scope="module")
def make_run(tmp_path_factory, tiny_llama, dialogues_file):
    """``make_run(name, batch_size)``: a run directory with the chat data and a LoRA config for ``bayling train``.

    No dropout, so that a run's numbers depend only on which examples each optimizer step sees. The adapter
    is also exported merged into the base: a load after training, which must get whole weights even when
    the training stage ran under ZeRO-3.
    """
    root = tmp_path_factory.mktemp("distributed")

    def make(name: str, batch_size: int) -> Path:
        run = root / name
        (run / "data").mkdir(parents=True)
        shutil.copy(dialogues_file, run / "data" / "train.jsonl")
        (run / "run.yaml").write_text(
            f"name: {name}\nrun_dir: {run}\nstages: [train]\n"
            f"model: {{name_or_path: {tiny_llama}, device: cpu}}\n"
            f"train: {{method: lora, lora_dropout: 0.0, max_steps: 6, batch_size: {batch_size}, bf16: false, "
            "learning_rate: 1.0e-2, logging_steps: 1, save_steps: 3, report_to: [], export: [merged]}\n",
            encoding="utf-8",
        )
        return run

    return make


@pytest.fixture(scope="module")
def reference(make_run) -> Path:
    """One process, global batch 4: what every launch below must reproduce."""
    run = make_run("single", 4)
    assert cli(["train", str(run / "run.yaml")]) == 0
    return run


def _launch(preset: str, run: Path, *launch_args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BAYLING_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    for key in [k for k in env if k.startswith(("ACCELERATE_", "FSDP_"))]:
        del env[key]
    cmd = [_accelerate(), "launch", "--config_file", str(ACCELERATE_DIR / preset), *launch_args]
    return subprocess.run(
        [*cmd, "-m", "bayling.train", str(run / "run.yaml")], env=env, capture_output=True, text=True, timeout=600
    )


def _summary(run: Path) -> dict:
    return json.loads((run / "train" / "summary.json").read_text(encoding="utf-8"))


def _assert_same_training(run: Path, reference: Path) -> None:
    """Same per-step losses, adapter and merged model as the single-process run; the saved adapter loads."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    losses = [h["loss"] for h in _summary(run)["log_history"] if "loss" in h]
    expected = [h["loss"] for h in _summary(reference)["log_history"] if "loss" in h]
    assert len(losses) == len(expected) == 6
    assert losses == pytest.approx(expected, rel=1e-4), (losses, expected)
    assert expected[-1] < expected[0]  # it trained
    ours = load_file(run / "train" / "final" / "adapter_model.safetensors")
    theirs = load_file(reference / "train" / "final" / "adapter_model.safetensors")
    assert set(ours) == set(theirs) and len(ours) == 28  # 2 layers x 7 target modules x (A, B)
    for key, value in theirs.items():
        torch.testing.assert_close(ours[key], value, atol=1e-5, rtol=1e-4)
    merged = load_file(run / "train" / "merged" / "model.safetensors")
    reference_merged = load_file(reference / "train" / "merged" / "model.safetensors")
    assert set(merged) == set(reference_merged)
    for key, value in reference_merged.items():
        torch.testing.assert_close(merged[key], value, atol=1e-5, rtol=1e-4)
    base = json.loads((run / "train" / "final" / "bayling_base_model.json").read_text())["base_model"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(run / "train" / "final"))
    ids = torch.tensor([[1, 5, 9, 12, 3]])
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
    assert not torch.allclose(tuned, plain)  # the adapter that loaded changes the outputs


@pytest.mark.slow
def test_ddp_cpu_two_processes_match_one_process(make_run, reference):
    run = make_run("ddp", 2)  # 2 ranks x 2 = the reference's global batch of 4
    proc = _launch("ddp_cpu.yaml", run)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = _summary(run)
    assert summary["world_size"] == 2 and summary["steps"] == 6 and summary["distributed_type"] == "MULTI_CPU"
    assert json.loads((run / "train" / "_stage.json").read_text())["output"].endswith("final")
    # the checkpoints hold both ranks' RNG states: a resumed 2-process run restores each rank's stream
    ckpt = run / "train" / "sft" / "checkpoints" / "checkpoint-6"
    assert (ckpt / "rng_state_0.pth").is_file() and (ckpt / "rng_state_1.pth").is_file()
    _assert_same_training(run, reference)


@pytest.mark.slow
def test_deepspeed_zero3_on_cpu_matches_one_process(make_run, reference):
    pytest.importorskip("deepspeed")
    run = make_run("zero3", 4)
    proc = _launch("deepspeed_zero3.yaml", run, "--num_processes", "1", "--mixed_precision", "no")
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = _summary(run)
    assert summary["distributed_type"] == "DEEPSPEED" and summary["steps"] == 6
    log = (run / "run.log").read_text(encoding="utf-8")
    assert "partitioned by DeepSpeed ZeRO-3" in log  # deepspeed.zero.Init ran during from_pretrained
    _assert_same_training(run, reference)


@pytest.mark.slow
def test_fsdp_preset_on_cpu(make_run, reference):
    run = make_run("fsdp", 2)
    proc = _launch("fsdp.yaml", run, "--num_processes", "2", "--mixed_precision", "no")
    if proc.returncode != 0:
        refusal = [line for line in proc.stderr.splitlines() if "asks for FSDP" in line]
        assert refusal, proc.stderr[-4000:]  # refused with the reason, not some other failure
        assert "accelerate set up MULTI_CPU" in refusal[0]
        pytest.skip(
            "FSDP cannot run on CPU through accelerate (torch's fully_shard can, but Trainer shards only via "
            f"accelerate): {refusal[0].removeprefix('bayling: error: ')}"
        )
    summary = _summary(run)  # a future accelerate that shards on CPU: then it must really be FSDP, and match
    assert summary["distributed_type"] == "FSDP" and summary["world_size"] == 2
    _assert_same_training(run, reference)
