"""GPU checks of the training stack on one CUDA device (writes one JSON file).

Status: written for a lent GPU machine but NOT RUN: no GPU was lent to the task that wrote it. The same
code paths ran on CPU (``bench/train_throughput.py --device cpu``, ``tests/train/test_distributed.py``).

1. ``bench/train_throughput.py`` on a Gemma-3-270M-shaped model (the real config and tokenizer, random
   weights: 1 GB of weights cannot travel to a lent GPU machine, and speed depends on shapes, not values),
   ours (BFD packing, padding-free) vs plain ``trl.SFTTrainer`` defaults, same data, bf16 LoRA.
2. ``accelerate launch`` smoke runs of ``python -m bayling.train`` with the shipped presets on the tiny
   random Llama, one process each (one GPU), in bf16 as the presets ask: ``single_gpu.yaml`` (LoRA, packing,
   gradient checkpointing), ``fsdp.yaml`` (full and LoRA: FSDP2, full state dict gathered on save) and, when
   DeepSpeed is installed, ``deepspeed_zero2.yaml`` (full) and ``deepspeed_zero3.yaml`` (LoRA and full: the
   model must load partitioned, the engine start with bf16 agreed, the 16-bit weights gather on save);
   QLoRA when bitsandbytes is installed. Each result has the summary (losses, ``distributed_type``), the
   files of ``train/final`` and whether the run log says the weights loaded partitioned.

What stays unconfirmed after it: several processes (NCCL, sharding across GPUs) and two machines.

Run as::

    python bench/train_gpu.py --gemma-dir DIR_WITH_config.json_AND_tokenizer --out $OUT/train_gpu.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], env: dict[str, str], timeout: int) -> dict:
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, tail = p.returncode, (p.stdout + p.stderr)[-2500:]
    except subprocess.TimeoutExpired as e:
        rc, tail = 124, str(e)[-2500:]
    return {"cmd": " ".join(cmd), "rc": rc, "seconds": round(time.time() - t0, 1), "tail": tail}


def smoke(tmp: Path, env: dict[str, str], timeout: int) -> dict:
    """accelerate launch -m bayling.train with the shipped presets, on the tiny model and chat data."""
    spec = importlib.util.spec_from_file_location("_conftest", REPO / "tests" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    spec2 = importlib.util.spec_from_file_location("_train_conftest", REPO / "tests" / "train" / "conftest.py")
    mod2 = importlib.util.module_from_spec(spec2)
    spec2.loader.exec_module(mod2)  # type: ignore[union-attr]
    tiny = mod.build_tiny_llama(tmp / "tiny")
    results = {}
    one = ["--num_processes", "1"]
    runs = {
        "single_gpu_lora_packed": ("single_gpu.yaml", ["train.method=lora", "train.gradient_checkpointing=true"], []),
        "fsdp_full_1proc": ("fsdp.yaml", ["train.method=full"], one),
        "fsdp_lora_1proc": ("fsdp.yaml", ["train.method=lora"], one),
    }
    if importlib.util.find_spec("deepspeed") is not None:
        runs["deepspeed_zero2_full_1proc"] = ("deepspeed_zero2.yaml", ["train.method=full"], one)
        runs["deepspeed_zero3_lora_1proc"] = ("deepspeed_zero3.yaml", ["train.method=lora"], one)
        runs["deepspeed_zero3_full_1proc"] = ("deepspeed_zero3.yaml", ["train.method=full"], one)
    else:
        results["deepspeed"] = {"skipped": "deepspeed is not installed on this machine"}
    if importlib.util.find_spec("bitsandbytes") is not None:
        runs["single_gpu_qlora"] = ("single_gpu.yaml", ["train.method=qlora"], [])
    else:
        results["qlora"] = {"skipped": "bitsandbytes is not installed on this machine"}
    for name, (acc, overrides, extra) in runs.items():
        run_dir = tmp / name
        (run_dir / "data").mkdir(parents=True)
        mod2.write_jsonl(run_dir / "data" / "train.jsonl", mod2.make_dialogues(64))
        cfg = run_dir / "run.yaml"
        cfg.write_text(
            f"name: {name}\nrun_dir: {run_dir}\nstages: [train]\nmodel: {{name_or_path: {tiny}, device: cuda}}\n"
            "train: {max_steps: 8, batch_size: 4, max_length: 512, packing: true, logging_steps: 2, "
            "save_steps: 4, report_to: []}\n",
            encoding="utf-8",
        )
        cmd = [
            "accelerate",
            "launch",
            "--config_file",
            str(REPO / "configs" / "accelerate" / acc),
            *extra,
            "-m",
            "bayling.train",
            str(cfg),
            *overrides,
        ]
        res = _run(cmd, env, timeout)
        summary = run_dir / "train" / "summary.json"
        if summary.is_file():
            s = json.loads(summary.read_text(encoding="utf-8"))
            res["summary"] = {
                k: s.get(k)
                for k in (
                    "steps",
                    "first_loss",
                    "last_loss",
                    "seconds",
                    "world_size",
                    "distributed_type",
                    "tokens_per_second",
                    "method",
                )
            }
            final = run_dir / "train" / "final"
            res["final_files"] = sorted(p.name for p in final.iterdir()) if final.is_dir() else []
        log = run_dir / "run.log"
        res["loaded_partitioned"] = log.is_file() and "partitioned by DeepSpeed ZeRO-3" in log.read_text("utf-8")
        results[name] = res
        print(name, "rc", res["rc"], res.get("summary"), flush=True)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gemma-dir", required=True)
    p.add_argument("--examples", type=int, default=2000)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--attn", action="append", default=None, help="attention implementations to bench (sdpa)")
    p.add_argument("--timeout", type=int, default=240)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    import torch

    env = {**os.environ, "BAYLING_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for attn in a.attn or ["sdpa"]:
        out = Path(a.out).with_name(f"train_throughput_gpu_{attn}.json")
        cmd = [
            sys.executable,
            str(REPO / "bench" / "train_throughput.py"),
            "--model",
            f"random:{a.gemma_dir}",
            "--device",
            "cuda",
            "--examples",
            str(a.examples),
            "--max-length",
            str(a.max_length),
            "--batch-size",
            str(a.batch_size),
            "--repeats",
            str(a.repeats),
            "--attn",
            attn,
            "--out",
            str(out),
        ]
        res = _run(cmd, env, a.timeout * 2)
        print(res["tail"][-1200:], flush=True)
        if out.is_file():
            data = json.loads(out.read_text(encoding="utf-8"))["results"][0]
            res["result"] = {
                k: data[k]
                for k in (
                    "tokens_per_second",
                    "ratio_ours_over_plain",
                    "per_token_loss_check",
                    "plain_padding_fraction",
                    "examples",
                    "dataset_tokens",
                )
            }
        report[f"throughput_{attn}"] = res
    with tempfile.TemporaryDirectory() as d:
        report["accelerate_smoke"] = smoke(Path(d), env, a.timeout)
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
