"""Kill training with SIGKILL mid-epoch, re-run, and get the uninterrupted run's data order, losses and weights.

Three real processes (``resume_driver.py``): an uninterrupted run, a run that SIGKILLs itself at step 14
(checkpoints every 4 steps, so steps 13-14 are lost), and the same command again, which must resume from
``checkpoint-12`` in the middle of the second epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

DRIVER = Path(__file__).with_name("resume_driver.py")
KILL_AT = 14


def _cmd(model: Path, data: Path, out: Path, kill_at: int = 0) -> list[str]:
    return [sys.executable, str(DRIVER), str(model), str(data), str(out)] + ([str(kill_at)] if kill_at else [])


def _env() -> dict[str, str]:
    return {**os.environ, "BAYLING_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _losses(summary: dict) -> list[tuple[int, float]]:
    return [(h["step"], h["loss"]) for h in summary["log_history"] if "loss" in h]


def test_sigkill_mid_epoch_then_rerun_continues_exactly(tiny_llama, dialogues_file, tmp_path):
    ref_dir, crash_dir = tmp_path / "uninterrupted", tmp_path / "crashed"
    ref = subprocess.Popen(_cmd(tiny_llama, dialogues_file, ref_dir), env=_env(), stderr=subprocess.PIPE, text=True)
    crash = subprocess.run(
        _cmd(tiny_llama, dialogues_file, crash_dir, KILL_AT), env=_env(), capture_output=True, text=True, timeout=300
    )
    _, ref_err = ref.communicate(timeout=300)
    assert ref.returncode == 0, ref_err[-3000:]
    assert crash.returncode == -9, crash.stderr[-3000:]  # really killed, not a clean exit
    assert not (crash_dir / "run" / "final").exists()
    ckpts = sorted(p.name for p in (crash_dir / "run" / "sft" / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-12", "checkpoint-8"]

    ref_summary = json.loads((ref_dir / "run" / "summary.json").read_text(encoding="utf-8"))
    steps = ref_summary["steps"]
    assert steps == 20 and KILL_AT > steps // 2, "the kill must land in the middle of the second epoch"

    crashed_batches = (crash_dir / "batches.txt").read_text(encoding="utf-8").split()
    resumed = subprocess.run(
        _cmd(tiny_llama, dialogues_file, crash_dir), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((crash_dir / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["resumed_from"].endswith("checkpoint-12")

    # Same data order: the crashed run saw the reference's first batches, the resumed run exactly the rest.
    ref_batches = (ref_dir / "batches.txt").read_text(encoding="utf-8").split()
    resumed_batches = (crash_dir / "batches.txt").read_text(encoding="utf-8").split()[len(crashed_batches) :]
    assert len(ref_batches) == steps
    assert crashed_batches[:KILL_AT] == ref_batches[:KILL_AT]
    assert resumed_batches == ref_batches[12:]

    # Same loss curve (every step logged) and bit-identical final adapter.
    assert _losses(summary) == _losses(ref_summary)
    assert summary["steps"] == steps and summary["last_loss"] == ref_summary["last_loss"]
    a = load_file(ref_dir / "run" / "final" / "adapter_model.safetensors")
    b = load_file(crash_dir / "run" / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(a[k].abs().sum() > 0 for k in a if "lora_B" in k)  # the adapter did train


def test_changed_config_discards_old_checkpoints(tmp_path):
    from bayling.train.stage import last_checkpoint

    stage = tmp_path / "sft"
    (stage / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (stage / "fingerprint.json").write_text('{"fingerprint": "fp-a"}')
    (stage / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (stage / "checkpoints" / "checkpoint-8").mkdir()  # cut off mid-save: no trainer_state.json
    assert last_checkpoint(stage, "fp-a", resume=True).endswith("checkpoint-4")
    assert not (stage / "checkpoints" / "checkpoint-8").exists()
    assert last_checkpoint(stage, "fp-a", resume=True).endswith("checkpoint-4")
    assert last_checkpoint(stage, "fp-b", resume=True) is None  # different config/data: start over
    assert not (stage / "checkpoints").exists()
