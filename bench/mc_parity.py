"""bayling vs lm-evaluation-harness on the same model and the same real multiple-choice items.

For XCOPA-zh, XNLI-en, XNLI-zh and Belebele-eng (the first N items of each file under
``../shared/data``), runs lm-eval itself (``lm_eval.simple_evaluate``, ``model="hf"`` on the local
model directory, each task a local YAML over the file converted to the hub schema, prompts taken
from lm-eval's stock tasks: :mod:`bayling.evaluate.lmeval_parity`) and bayling's scorer
(:func:`bayling.evaluate.mc.score_mc` with the transformers engine), both in float32 on the CPU,
and writes per task: both tools' ``acc``/``acc_norm``, whether the prompt strings and predictions
are the same, the largest per-item log-likelihood difference, and each tool's wall time.

Run as (about 5-10 minutes on 2 CPU cores with the defaults)::

    nice -n 10 python bench/mc_parity.py --model gemma-3-270m --out bench/results/mc_parity.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = [  # (task name, benchmark, language key, items)
    ("xcopa_zh", "xcopa", "zh", 100),
    ("xnli_en", "xnli", "en", 60),
    ("xnli_zh", "xnli", "zh", 60),
    ("belebele_eng_Latn", "belebele", "eng_Latn", 40),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every task's number of items")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "mc_parity.json"))
    args = ap.parse_args()

    import lm_eval
    import torch
    import transformers

    from bayling.engines.hf import TransformersEngine
    from bayling.evaluate import lmeval_parity as par
    from bayling.evaluate.benchmarks import benchmark_files
    from bayling.evaluate.mc import MC_PROTOCOL, score_mc
    from bayling.models import resolve_model

    model_dir = resolve_model(args.model)
    work = Path(tempfile.mkdtemp(prefix="mc_parity_"))
    items, names = {}, []
    for name, kind, lang, n in TASKS:
        n = max(1, int(n * args.scale))
        path = benchmark_files(kind, args.data)[lang]
        items[name] = par.bayling_items(kind, path, lang)[:n]
        par.write_task(work, name, kind, lang, par.hub_docs(kind, path)[:n])
        names.append(name)
        print(f"{name}: {len(items[name])} items from {path}")

    load_before, cpu0 = os.getloadavg()[0], time.process_time()
    t0 = time.perf_counter()
    theirs = par.run_lmeval(model_dir, work, names, batch_size=args.batch_size, dtype="float32")
    t_lmeval = time.perf_counter() - t0

    t0 = time.perf_counter()
    engine = TransformersEngine(model_dir, dtype="float32", device="cpu")
    ours, t_ours = {}, {}
    for name in names:
        t1 = time.perf_counter()
        ours[name] = score_mc(engine, items[name], batch_size=args.batch_size)
        t_ours[name] = round(time.perf_counter() - t1, 1)
    t_bayling = time.perf_counter() - t0

    tasks = {}
    for name in names:
        got = par.compare(ours[name], theirs[name])
        reqs = [[[it.context, it.target_delimiter + c] for c in it.choices] for it in items[name]]
        got["same_requests"] = reqs == theirs[name]["requests"]
        got["max_abs_loglik_diff"] = float(f"{got['max_abs_loglik_diff']:.3g}")
        got["bayling_seconds"] = t_ours[name]
        tasks[name] = got
        print(
            f"{name:20s} n={got['n']:4d} acc {got['bayling']['acc']:6.2f} (lm-eval {got['lm_eval']['acc']:6.2f})"
            f"  acc_norm {got['bayling']['acc_norm']:6.2f} (lm-eval {got['lm_eval']['acc_norm']:6.2f})"
            f"  max |dLL| {got['max_abs_loglik_diff']:.2g}  same requests {got['same_requests']}"
        )
    tok = engine.tokenizer
    result = {
        "model": args.model,
        "model_dir": Path(model_dir).name,
        "dtype": "float32",
        "device": "cpu",
        "tokenizer_adds_bos": tok.encode("a")[0] == tok.bos_token_id,
        "versions": {
            "lm_eval": lm_eval.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "data": "../shared/data: xcopa/zh/test.zh.jsonl, xnli_dev/dev-{en,zh}.tsv, belebele_reformatted/eng_Latn.jsonl; "
        "the first n items of each",
        "bayling_protocol": MC_PROTOCOL,
        "lm_eval_setup": "simple_evaluate(model='hf', dtype=float32, device=cpu), local YAML tasks with the stock "
        "doc_to_text/doc_to_choice/doc_to_target of xcopa_zh, xnli_en/xnli_zh and belebele, metrics acc + acc_norm, "
        "0-shot",
        "tasks": tasks,
        "max_abs_loglik_diff": max(t["max_abs_loglik_diff"] for t in tasks.values()),
        "all_accuracies_equal": all(t["bayling"] == t["lm_eval"] for t in tasks.values()),
        "wall_seconds": {"lm_eval": round(t_lmeval, 1), "bayling": round(t_bayling, 1)},
        "cpu_threads": torch.get_num_threads(),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "load_average_1min": {"start": round(load_before, 1), "end": round(os.getloadavg()[0], 1)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: lm-eval {t_lmeval:.0f} s, bayling {t_bayling:.0f} s")


if __name__ == "__main__":
    main()
