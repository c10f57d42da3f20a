"""Training throughput on one machine: bayling's SFT recipe with and without the label-only LM head, vs plain TRL.

Three paths, same model, data, LoRA init, learning rate, precision and gradient-checkpointing setting:

- *plain*: ``trl.SFTTrainer`` with its defaults (no packing, no padding-free: every batch padded to its
  longest example).
- *packed*: :func:`bayling.train.sft.build_sft_trainer` with ``packing=True, packing_strategy="bfd"`` and
  ``label_only_loss=False``, i.e. the packed path before the label-only head: examples packed best-fit-
  decreasing into rows of ``max_length`` tokens, flattened without padding, position ids restarting per
  example; TRL's fused LM head, which on CPU scores every position.
- *label_only*: the same with ``label_only_loss=True`` (the default): logits and loss only at labelled
  (assistant) positions, in chunks, gradients formed while each chunk is live (:mod:`bayling.train.loss`).

Packed paths get as many packed rows per optimizer step as carry the same number of real tokens as plain's
batch (same optimisation granularity): on GPU they are flattened into one varlen batch, on CPU accumulated one
row at a time (sdpa on CPU computes a dense masked score matrix over everything flattened together).

Throughput is *real* (non-padding) tokens per second over one epoch, first step excluded (warm-up). The paths
run interleaved, ``--repeats`` times, each on a fresh model, so a busy neighbour slows all of them alike; the
JSON holds every run with the load average before and after it, and the ratios (more robust than absolute
tokens/s on a shared machine). Checks: the first-step (and every logged) loss of *packed* and *label_only*
(same batches, same init); the per-token loss of the first packed rows against the same examples as padded
batches and against the model's full logits (fp32, eval mode).

Data: a realistic mix from ``../shared/data`` when present (50 % short NTREX sentence translations, 30 %
Alpaca en/zh instructions, 20 % multi-turn OpenAssistant zh dialogues), else synthetic dialogues with a
similar length spread.

Run as::

    nice -n 10 python bench/train_throughput.py --model tiny --model gemma \
        --out bench/results/train_throughput_cpu.json   # one run: writes train_throughput_cpu_{tiny,gemma}.json
    python bench/train_throughput.py --model random:GEMMA_DIR --device cuda --examples 2000 --max-length 2048 \
        --batch-size 16        # GPU: Gemma-3-270M's config and tokenizer, random weights
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from flops import matmul_peak  # noqa: E402
from provenance import provenance  # noqa: E402

# ----------------------------------------------------------------------------- data


def _shared() -> Path | None:
    p = Path(os.environ.get("BAYLING_SHARED_DATA", REPO.parent / "shared" / "data"))
    return p if (p / "instruct").is_dir() else None


def mixed_dialogues(n: int, seed: int = 0) -> tuple[list[list[dict[str, str]]], str]:
    """``n`` conversations: short translations, single-turn instructions and long multi-turn dialogues."""
    rng = random.Random(seed)
    shared = _shared()
    if shared is None:
        return _synthetic(n, rng), "synthetic"
    from bayling.prompts import translation_prompt

    eng = (shared / "ntrex128" / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    refs = {
        c: (shared / "ntrex128" / f"newstest2019-ref.{f}.txt").read_text(encoding="utf-8").splitlines()
        for c, f in (("zho_Hans", "zho-CN"), ("deu_Latn", "deu"))
    }
    alpaca = json.loads((shared / "instruct" / "alpaca_en_demo.json").read_text(encoding="utf-8")) + json.loads(
        (shared / "instruct" / "alpaca_zh_demo.json").read_text(encoding="utf-8")
    )
    oasst = json.loads((shared / "instruct" / "oaast_sft_zh.json").read_text(encoding="utf-8"))
    convs = []
    for i in range(n):
        r = i % 10
        if r < 5:  # short: one sentence translation
            j, tgt = rng.randrange(len(eng)), rng.choice(list(refs))
            convs.append(
                [
                    {"role": "user", "content": translation_prompt(eng[j], "eng_Latn", tgt)},
                    {"role": "assistant", "content": refs[tgt][j]},
                ]
            )
        elif r < 8:  # medium: single-turn instruction
            a = rng.choice(alpaca)
            q = a["instruction"] + ("\n\n" + a["input"] if a.get("input") else "")
            convs.append([{"role": "user", "content": q}, {"role": "assistant", "content": a["output"]}])
        else:  # long: multi-turn dialogue with history
            o = rng.choice(oasst)
            msgs = []
            for q, a in o.get("history") or []:
                msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            q = o["instruction"] + ("\n\n" + o["input"] if o.get("input") else "")
            convs.append(msgs + [{"role": "user", "content": q}, {"role": "assistant", "content": o["output"]}])
    return convs, f"shared/data: ntrex128 + alpaca_en/zh_demo + oaast_sft_zh ({shared})"


def _synthetic(n: int, rng: random.Random) -> list[list[dict[str, str]]]:
    words = "the weather is nice today we meet at nine tomorrow 今天 天气 很好 Das Wetter ist heute schön".split()
    convs = []
    for i in range(n):
        turns = 1 if i % 10 < 8 else rng.randint(2, 5)
        size = 12 if i % 10 < 5 else 120
        msgs = []
        for _ in range(turns):
            msgs.append({"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(size // 2, size)))})
            msgs.append({"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randint(size // 2, size)))})
        convs.append(msgs)
    return convs


# ----------------------------------------------------------------------------- models


def tiny_model(out: Path) -> Path:
    """The test suite's tiny random Llama (hidden 16, 2 layers), built with tests/conftest.py's helper."""
    spec = importlib.util.spec_from_file_location("_bayling_test_conftest", REPO / "tests" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.build_tiny_llama(out)


def random_model(src: Path, out: Path) -> Path:
    """Random weights with ``src``'s config and tokenizer: throughput depends on shapes, not values, and
    1 GB of Gemma weights cannot travel to a lent GPU machine (its config and tokenizer can)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(src), dtype=torch.float32)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def resolve(name: str, tmp: Path) -> Path:
    if name == "tiny":
        return tiny_model(tmp / "tiny")
    if name.startswith("random:"):
        return random_model(Path(name.split(":", 1)[1]), tmp / "random")
    from bayling.models import resolve_model

    return resolve_model("gemma-3-270m" if name == "gemma" else name)


# ----------------------------------------------------------------------------- runs


def _timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time and real tokens of each optimizer step (the GPU is synchronised at step ends)."""

        def __init__(self) -> None:
            self.steps: list[tuple[float, int]] = []
            self._t = 0.0
            self._tok = 0
            self.counter: Any = None
            self.first_step_flops = 0

        def on_step_begin(self, args, state, control, **kw):
            _sync()
            if not self.steps and self.counter is None:  # the warm-up step (never timed): count its FLOPs
                from torch.utils.flop_counter import FlopCounterMode

                self.counter = FlopCounterMode(display=False)
                self.counter.__enter__()
            self._t, self._tok = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kw):
            _sync()
            self.steps.append((time.perf_counter() - self._t, state.num_input_tokens_seen - self._tok))
            if len(self.steps) == 1 and self.counter is not None:
                self.counter.__exit__(None, None, None)
                self.first_step_flops = self.counter.get_total_flops()

    return StepTimer()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


KINDS = ("plain", "packed", "label_only")


def _cpu_jiffies() -> list[int]:
    """Machine-wide CPU time from /proc/stat (user nice system idle iowait irq softirq steal), or []."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return []


def _busy(before: list[int], after: list[int], own_cpu: float) -> dict[str, float] | None:
    """How busy the machine was during a run: CPU share used by other processes and stolen by the host."""
    if not before or not after:
        return None
    d = [y - x for x, y in zip(before, after, strict=True)]
    total = sum(d) or 1
    hz = os.sysconf("SC_CLK_TCK")
    busy = (total - d[3] - d[4] - d[7]) / total
    return {
        "machine_busy_fraction": round(busy, 3),
        "others_busy_fraction": round(max(0.0, busy - own_cpu * hz / total), 3),
        "steal_fraction": round(d[7] / total, 4),
    }


def run_one(
    kind: str, model_path: Path, tok: Any, rows: list[dict], a: argparse.Namespace, tmp: Path, packed_rows: int
) -> dict[str, Any]:
    import trl
    from datasets import Dataset

    from bayling.train.config import TrainConfig
    from bayling.train.model import load_for_training, lora_config
    from bayling.train.sft import build_sft_trainer

    cfg = TrainConfig(
        method=a.method,
        max_length=a.max_length,
        batch_size=a.batch_size,
        learning_rate=1e-4,
        bf16=a.bf16,
        logging_steps=1,
        report_to=[],
        attn_implementation=a.attn,
        lora_dropout=0.0,
        label_only_loss=kind == "label_only",
    )
    load_before = os.getloadavg()
    model = load_for_training(model_path, cfg.method, cfg.bf16, a.device, a.attn)
    timer = _timer()
    if kind != "plain":
        cfg.packing, cfg.packing_strategy = True, "bfd"
        if a.device.startswith("cuda"):  # varlen-capable kernels: flatten all rows of a step into one
            cfg.batch_size = packed_rows
        else:  # CPU sdpa computes a dense (masked) score matrix over the whole flattened batch: one row at a time
            cfg.batch_size, cfg.grad_accum = 1, packed_rows
        trainer = build_sft_trainer(cfg, model, tok, rows, tmp / kind, a.device, seed=0, callbacks=[timer])
    else:  # trl.SFTTrainer defaults, aligned only on what a fair comparison needs
        on_gpu = a.device.startswith("cuda")
        args = trl.SFTConfig(
            output_dir=str(tmp / kind),
            per_device_train_batch_size=a.batch_size,
            learning_rate=1e-4,
            num_train_epochs=1,
            max_length=a.max_length,
            seed=0,
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            use_cpu=not on_gpu,
            bf16=bool(cfg.bf16 and on_gpu and cfg.method == "full"),
            activation_checkpointing=False,
            include_num_input_tokens_seen="non_padding",
        )
        peft = lora_config(cfg.lora_r, cfg.lora_alpha, 0.0, cfg.lora_target_modules) if cfg.method == "lora" else None
        trainer = trl.SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=peft,
            callbacks=[timer],
        )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    padded = 0
    if kind == "plain":  # how much of plain's compute goes to padding
        for batch in trainer.get_train_dataloader():
            padded += int(batch["attention_mask"].numel() - batch["attention_mask"].sum())
    jiffies, cpu0, wall0 = _cpu_jiffies(), time.process_time(), time.perf_counter()
    result = trainer.train()
    own_cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    steps = timer.steps[1:] if len(timer.steps) > 1 else timer.steps
    secs, toks = sum(s for s, _ in steps), sum(t for _, t in steps)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    # FLOPs of the warm-up step (torch's FlopCounterMode: matmuls and attention, forward and backward, as executed)
    # per real token of it, times the timed tokens over the timed seconds: the achieved rate of the timed steps
    flops_per_token = timer.first_step_flops / max(timer.steps[0][1], 1) if timer.steps else 0.0
    achieved = flops_per_token * toks / secs / 1e9 if secs else 0.0
    out = {
        "kind": kind,
        "flops_per_token_gflop": round(flops_per_token / 1e9, 3),
        "achieved_gflop_per_s": round(achieved, 2),
        "fraction_of_matmul_peak": round(achieved / a.peak_gflop_per_s, 3) if a.peak_gflop_per_s else None,
        "steps": len(timer.steps),
        "timed_steps": len(steps),
        "timed_seconds": round(secs, 3),
        "timed_tokens": toks,
        "tokens_per_second": round(toks / secs, 1),
        "all_tokens": trainer.state.num_input_tokens_seen,
        "train_loss": result.training_loss,
        "losses": losses,
        "padding_tokens": padded,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "train_wall_seconds": round(wall, 2),
        "own_cpu_seconds": round(own_cpu, 2),  # ~ wall x threads when the bench had its cores to itself
        "cpu": _busy(jiffies, _cpu_jiffies(), own_cpu),
    }
    del trainer, model
    return out


def per_token_check(
    model_path: Path, tok: Any, rows: list[dict], a: argparse.Namespace, tmp: Path, n_rows: int = 4
) -> dict[str, Any]:
    """Largest per-token NLL differences on the first packed rows (fp32, eval mode): packed vs the same examples
    in padded batches, and the label-only head vs the model's full logits on the packed rows."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from bayling.train.config import TrainConfig
    from bayling.train.sft import build_sft_trainer

    model = AutoModelForCausalLM.from_pretrained(
        str(model_path), dtype=torch.float32, **({"attn_implementation": a.attn} if a.attn else {})
    )
    model.to(a.device).eval()
    cfg = TrainConfig(method="full", packing=True, max_length=a.max_length, batch_size=1, bf16=False, report_to=[])
    trainer = build_sft_trainer(cfg, model, tok, rows, tmp / "check", a.device)  # label-only head installed

    def nll(logits, lab):
        lab = lab[1:]
        v = F.cross_entropy(logits[:-1].float(), lab.clamp(min=0), reduction="none")
        return v[lab != -100]

    diffs, label_only_diffs, n, n_ex, dev = [], [], 0, 0, a.device
    for r, packed in enumerate(trainer.get_train_dataloader()):
        if r == n_rows:
            break
        ids, labels, pos = packed["input_ids"][0], packed["labels"][0], packed["position_ids"][0]
        starts = (pos == 0).nonzero().flatten().tolist() + [len(pos)]
        segs = [(x, y) for x, y in zip(starts, starts[1:], strict=False) if y - x > 1]
        padded = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)(
            [{"input_ids": ids[x:y].tolist(), "labels": labels[x:y].tolist()} for x, y in segs]
        )
        with torch.no_grad():
            lp = model(input_ids=ids[None].to(dev), position_ids=pos[None].to(dev)).logits[0].cpu()
            lq = model(
                input_ids=padded["input_ids"].to(dev), attention_mask=padded["attention_mask"].to(dev)
            ).logits.cpu()
            fused = trainer.model(
                input_ids=ids[None].to(dev),
                position_ids=pos[None].to(dev),
                labels=labels[None].to(dev),
                fused_lm_head=True,
            )
        ours = -fused.log_probs[0][fused.label_mask[0]].cpu()
        label_only_diffs.append(float((ours - nll(lp, labels)).abs().max()) if len(ours) else 0.0)
        for k, (x, y) in enumerate(segs):
            p, q = nll(lp[x:y], labels[x:y]), nll(lq[k, : y - x], labels[x:y])
            diffs.append(float((p - q).abs().max()) if len(p) else 0.0)
            n += len(p)
        n_ex += len(segs)
    return {
        "packed_rows": min(n_rows, r + 1),
        "examples": n_ex,
        "trained_tokens": n,
        "max_abs_diff": max(diffs),
        "label_only_vs_full_logits_max_abs_diff": max(label_only_diffs),
        "dtype": "float32",
    }


# ----------------------------------------------------------------------------- main


def _loss_check(runs: dict[str, list[dict]]) -> dict[str, Any]:
    """First-step and curve agreement of *packed* and *label_only* (same init, same batches, training dtype)."""
    a, b = runs["packed"][0]["losses"], runs["label_only"][0]["losses"]
    rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b, strict=False)]
    return {
        "packed_first_step_loss": a[0] if a else None,
        "label_only_first_step_loss": b[0] if b else None,
        "first_step_rel_diff": rel[0] if rel else None,
        "max_rel_diff_over_steps": max(rel) if rel else None,
        "steps_compared": len(rel),
    }


def bench_model(name: str, a: argparse.Namespace) -> dict[str, Any]:
    from bayling.chat import format_for_tokenizer, tokenize_conversation
    from bayling.models import load_tokenizer
    from bayling.train.data import count_tokens

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as d:
        tmp = Path(d)
        path = resolve(name, tmp)
        tok = load_tokenizer(path)
        fmt = format_for_tokenizer("auto", tok)
        convs, source = mixed_dialogues(a.examples, a.seed)
        rows = [tokenize_conversation(c, fmt, tok, max_length=a.max_length) for c in convs]
        rows = [r for r in rows if 1 in r["assistant_masks"]]
        lengths = sorted(len(r["input_ids"]) for r in rows)
        total, trained = count_tokens(rows)
        mean_len = total / len(rows)
        packed_rows = max(1, round(a.batch_size * mean_len / a.max_length))
        print(
            f"[{name}] {len(rows)} examples, {total} tokens ({trained} labelled; median {lengths[len(lengths) // 2]}"
            f", max {lengths[-1]}); packed paths take {packed_rows} row(s) of {a.max_length} per step",
            flush=True,
        )
        runs: dict[str, list[dict]] = {k: [] for k in KINDS}
        for r in range(a.repeats):
            order = KINDS[r % 3 :] + KINDS[: r % 3]  # rotate, so no path always runs first or last
            for kind in order:
                res = run_one(kind, path, tok, rows, a, tmp, packed_rows)
                runs[kind].append(res)
                print(
                    f"[{name}] {kind:10s} run {r + 1}: {res['tokens_per_second']:8.1f} tok/s "
                    f"({res['steps']} steps, first loss {res['losses'][0]:.4f}, own cpu/wall "
                    f"{res['own_cpu_seconds'] / res['train_wall_seconds']:.2f}, others busy "
                    f"{(res['cpu'] or {}).get('others_busy_fraction', float('nan')):.2f})",
                    flush=True,
                )
        check = per_token_check(path, tok, rows, a, tmp)
        tps = {k: statistics.median(x["tokens_per_second"] for x in v) for k, v in runs.items()}
        paired = [
            lo["tokens_per_second"] / pk["tokens_per_second"]
            for lo, pk in zip(runs["label_only"], runs["packed"], strict=True)
        ]
        losses = _loss_check(runs)
        result = {
            "model": name,
            "model_path": str(path) if name != "tiny" else "tiny random Llama (tests/conftest.py)",
            "data_source": source,
            "examples": len(rows),
            "dataset_tokens": total,
            "trained_tokens": trained,
            "labelled_fraction": round(trained / total, 3),
            "length_median": lengths[len(lengths) // 2],
            "length_max": lengths[-1],
            "ours_rows_per_step": packed_rows,
            "plain_examples_per_step": a.batch_size,
            "plain_padding_fraction": round(
                runs["plain"][0]["padding_tokens"] / (runs["plain"][0]["padding_tokens"] + total), 3
            ),
            "tokens_per_second": tps,
            "matmul_peak_gflop_per_s": a.peak_gflop_per_s,
            "fraction_of_matmul_peak": {
                k: statistics.median(x["fraction_of_matmul_peak"] or 0 for x in v) for k, v in runs.items()
            },
            "ratio_label_only_over_packed": round(tps["label_only"] / tps["packed"], 3),
            "ratio_label_only_over_packed_paired": [round(x, 3) for x in paired],
            "ratio_label_only_over_plain": round(tps["label_only"] / tps["plain"], 3),
            "ratio_packed_over_plain": round(tps["packed"] / tps["plain"], 3),
            "ratio_ours_over_plain": round(tps["label_only"] / tps["plain"], 3),  # ours = the default recipe
            "loss_check": losses,
            "per_token_loss_check": check,
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "runs": runs,
        }
        print(
            f"[{name}] fraction of the matmul peak ({a.peak_gflop_per_s} GFLOP/s): "
            + ", ".join(f"{k} {100 * v:.0f} %" for k, v in result["fraction_of_matmul_peak"].items())
            + "\n"
            f"[{name}] label_only/packed = {result['ratio_label_only_over_packed']:.2f}x (paired "
            f"{', '.join(f'{x:.2f}' for x in paired)}), label_only/plain = {result['ratio_label_only_over_plain']:.2f}x"
            f", packed/plain = {result['ratio_packed_over_plain']:.2f}x\n"
            f"[{name}] first-step loss packed {losses['packed_first_step_loss']:.6f} vs label_only "
            f"{losses['label_only_first_step_loss']:.6f} (max rel diff over {losses['steps_compared']} steps "
            f"{losses['max_rel_diff_over_steps']:.1e}); per-token |diff| label_only vs full logits "
            f"{check['label_only_vs_full_logits_max_abs_diff']:.1e}, packed vs padded {check['max_abs_diff']:.1e}",
            flush=True,
        )
        return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", help="tiny, gemma or a model directory (repeatable)")
    p.add_argument("--examples", type=int, default=None, help="default: 256 for tiny, 16 for other models")
    p.add_argument("--max-length", type=int, default=None, help="default: 1024 for tiny, 512 for other models")
    p.add_argument("--batch-size", type=int, default=None, help="plain's examples per step (8 tiny, 4 others)")
    p.add_argument("--method", default="lora", choices=["lora", "full"])
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 weights (default: on for Gemma, off for tiny)",
    )
    p.add_argument("--attn", default=None, help="attention implementation (default: the model's, sdpa)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds of the three paths")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=str(REPO / "bench" / "results" / "train_throughput.json"),
        help="with several --model: one file per model, OUT's stem + _MODEL",
    )
    a = p.parse_args(argv)
    os.environ.setdefault("BAYLING_NO_PROGRESS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    if a.threads:
        torch.set_num_threads(a.threads)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets
    import trl

    datasets.disable_progress_bars()
    names = a.model or ["tiny"]
    outs = []
    for name in names:
        tiny = name == "tiny"
        args = argparse.Namespace(**vars(a))
        defaults = {
            "examples": (256, 16),
            "max_length": (1024, 512),
            "batch_size": (8, 4),
        }
        for key, (for_tiny, other) in defaults.items():
            if getattr(args, key) is None:
                setattr(args, key, for_tiny if tiny else other)
        if args.bf16 is None:
            args.bf16 = not tiny  # LoRA on a bf16 base, as the recipe trains Gemma
        # the peak of the precision the step computes in, measured in this run (CPU only)
        args.peak_gflop_per_s = (
            round(matmul_peak("bfloat16" if args.bf16 else "float32"), 1) if a.device == "cpu" else None
        )
        load_start = os.getloadavg()
        result = bench_model(name, args)
        report = {
            "benchmark": "train_throughput",
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "device": a.device,
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "cpu_count": os.cpu_count(),
                "cpu_threads": torch.get_num_threads(),
                "load_avg_start": [round(x, 2) for x in load_start],
                "load_avg_end": [round(x, 2) for x in os.getloadavg()],
                "note": "other engineers share the cores (and the VM's host may be shared too), so absolute tok/s "
                "vary from run to run: compare the ratios. Per run: load average (runnable processes, this bench "
                "included), own_cpu_seconds/train_wall_seconds (1.0 = one thread had a core to itself) and the "
                "fraction of machine CPU time used by other processes",
            },
            "provenance": provenance(load_start),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
            "settings": {k: v for k, v in vars(args).items() if k != "model"},
            "results": [result],
        }
        out = Path(a.out)
        if len(names) > 1:
            out = out.with_name(f"{out.stem}_{Path(name).name.replace(':', '_')}{out.suffix}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        outs.append((result, out))
    for r, out in outs:
        t = r["tokens_per_second"]
        print(
            f"{r['model']}: label_only {t['label_only']:.0f} tok/s, packed {t['packed']:.0f}, plain {t['plain']:.0f}"
            f" -> label_only/packed {r['ratio_label_only_over_packed']:.2f}x, label_only/plain "
            f"{r['ratio_label_only_over_plain']:.2f}x  ({out})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
