"""The reward stages resume after a SIGKILL like SFT does: same steps, same rewards, bit-identical adapter.

Real processes (``reward_resume_driver.py``): an uninterrupted run, one that SIGKILLs itself after step 3 of the
stage (checkpoints every step, so step 3's checkpoint may be cut off mid-save and step 2's is the fallback), and the
same command again, which resumes from the newest complete checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

DRIVER = Path(__file__).with_name("reward_resume_driver.py")


def _start(model: Path, data: Path, out: Path, stage: str, kill_at: int = 0) -> subprocess.Popen:
    env = {**os.environ, "BAYLING_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, str(DRIVER), str(model), str(data), str(out), stage] + ([str(kill_at)] if kill_at else [])
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


@pytest.mark.parametrize("stage", ["reward", "preference"])
def test_reward_stage_resumes_after_sigkill(tiny_llama, translation_data, tmp_path, stage):
    ref = _start(tiny_llama, translation_data, tmp_path / "ref", stage)
    crash_code, crash_log = _wait(_start(tiny_llama, translation_data, tmp_path / "crash", stage, kill_at=3))
    ref_code, ref_log = _wait(ref)
    assert ref_code == 0, ref_log[-3000:]
    assert crash_code == -9, crash_log[-3000:]  # really killed, not a clean exit
    assert not (tmp_path / "crash" / "final").exists()
    assert (tmp_path / "crash" / "sft" / "output" / "adapter_model.safetensors").is_file()  # SFT had finished
    code, log = _wait(_start(tiny_llama, translation_data, tmp_path / "crash", stage))
    assert code == 0, log[-3000:]
    assert "sft step" in crash_log and "sft step" not in log  # the finished SFT stage is not redone

    summary = json.loads((tmp_path / "crash" / stage / "summary.json").read_text(encoding="utf-8"))
    ref_summary = json.loads((tmp_path / "ref" / stage / "summary.json").read_text(encoding="utf-8"))
    assert summary["resumed_from"].endswith(("checkpoint-3", "checkpoint-2")) and summary["steps"] == 4
    key = "reward" if stage == "reward" else "loss"
    curve = [(h["step"], h[key]) for h in summary["log_history"] if "loss" in h]
    assert curve == [(h["step"], h[key]) for h in ref_summary["log_history"] if "loss" in h] and len(curve) == 4
    a = load_file(tmp_path / "ref" / "final" / "adapter_model.safetensors")
    b = load_file(tmp_path / "crash" / "final" / "adapter_model.safetensors")
    sft = load_file(tmp_path / "ref" / "sft" / "output" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], sft[k]) for k in a)  # the stage did train
