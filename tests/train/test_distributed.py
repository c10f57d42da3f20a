"""``accelerate launch`` with the shipped CPU preset: two real processes (gloo DDP) through ``bayling train``.

Slow (two interpreters importing torch/transformers/TRL on a 2-core machine): ``pytest -m slow tests/train``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bayling.cli import main as cli

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_accelerate_launch_ddp_cpu_trains_with_two_processes(tiny_llama, dialogues_file, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("accelerate CLI not found")
    par = tmp_path / "parallel.jsonl"
    convs = [json.loads(x)["messages"] for x in dialogues_file.read_text(encoding="utf-8").splitlines()]
    par.write_text(
        "".join(
            json.dumps({"eng_Latn": c[-2]["content"], "deu_Latn": c[-1]["content"]}, ensure_ascii=False) + "\n"
            for c in convs
        ),
        encoding="utf-8",
    )
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"name: ddp\nrun_dir: {tmp_path / 'run'}\nstages: [data, train]\n"
        f"model: {{name_or_path: {tiny_llama}, device: cpu}}\n"
        f"data: {{source: {par}, languages: [eng_Latn, deu_Latn], pivot_languages: [eng_Latn], heldout: 4, "
        "interactive: 24, crosslingual: 24, general: 0}\n"
        "train: {method: lora, max_steps: 6, batch_size: 2, bf16: false, logging_steps: 2, save_steps: 3, "
        "report_to: []}\n",
        encoding="utf-8",
    )
    assert cli(["data", str(cfg)]) == 0  # built once, undistributed, as documented
    env = {**os.environ, "BAYLING_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            accelerate,
            "launch",
            "--config_file",
            str(REPO / "configs" / "accelerate" / "ddp_cpu.yaml"),
            "-m",
            "bayling.train",
            str(cfg),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((tmp_path / "run" / "train" / "summary.json").read_text(encoding="utf-8"))
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert (tmp_path / "run" / "train" / "final" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "run" / "train" / "_stage.json").read_text())["output"].endswith("final")
    # the checkpoints hold both ranks' RNG states: a resumed 2-process run restores each rank's stream
    ckpt = tmp_path / "run" / "train" / "sft" / "checkpoints" / "checkpoint-6"
    assert (ckpt / "rng_state_0.pth").is_file() and (ckpt / "rng_state_1.pth").is_file()
