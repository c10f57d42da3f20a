"""Evaluation throughput: the transformers engine's old path (``model.generate``) against the new one, one run.

The old path is the evaluation before issue 20: ``decode=generate`` (every few-shot prompt re-reads its
demonstrations; a batch computes stopped rows until its longest row ends) with one token limit for every row
(``eval.max_new_tokens``). The new path is today's default: ``decode=fast`` (:mod:`bayling.engines.decode`: a
shared prompt prefix computed once per direction, finished rows leave the batch) with the source-scaled limit
(``min(max_new_tokens, 3 x source tokens + 16)``). Both run :func:`bayling.evaluate.translation.translate`, the
function the evaluation calls, on the same model object, sentences and demonstrations, in float32 (the eval dtype
on CPU), at the same batch size.

Two slices of the FLORES grid (FLORES-200 devtest; the demonstrations are sentences that are never scored):

* ``fewshot``: the base model, ``--shots`` demonstrations, completion cut at the newline (``base-fewshot``);
* ``chat``: the base model given the chat request (``base-chat``: the known-weak baseline that runs to the limit),
  and with ``--adapter`` the tuned LoRA too (``tuned``).

Reported per slice and path: hypotheses/s, output tokens/s (tokens of the returned hypotheses), the matmul FLOPs the
path executed (every ``nn.Linear`` call counted by a hook: padding and stopped rows included, attention scores not)
per second as a fraction of the fp32 matmul peak measured in the same run (``torch.matmul`` 2048^3, best of 5), and
how many hypotheses are identical to the old path's, with every difference classified: ``limit`` (the new
hypothesis is the old one cut by the source-scaled limit) or ``rounding`` (a different token: float rounding of a
differently shaped computation), and the chrF++ of both paths per direction.

Run as::

    python bench/eval_throughput.py --out bench/results/eval_throughput_cpu_gemma.json
    python bench/eval_throughput.py --adapter runs/quickstart/train/final --sentences 24   # + the tuned model
    python bench/eval_throughput.py --model DIR --attn eager                               # also: eager attention
    python bench/eval_throughput.py --fast-batch-sizes 64,128 --llamacpp embedded,/tmp/gemma-3-270m-f32.gguf
    python bench/eval_throughput.py --batch-size 64 --loop-spans 32 --screen    # + the bf16-screened output layer

``--screen`` runs each fast path again through :class:`bayling.engines.decode.ScreenedHead` (the default where the
CPU multiplies bf16 natively; every other path here runs the float32 output layer) and counts the hypotheses that
differ from the same path without it.

An F32 GGUF of the embedded model for the llama.cpp comparison at the same precision: llama.cpp's
``convert_hf_to_gguf.py MODEL_DIR --outtype f32`` (bayling caches it beside ``convert_lora_to_gguf.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from flops import LinearFlops, matmul_peak  # noqa: E402
from provenance import provenance  # noqa: E402

DIRECTIONS = ["eng_Latn-deu_Latn", "eng_Latn-zho_Hans", "eng_Latn-heb_Hebr", "hin_Deva-eng_Latn"]
"""A slice of the FLORES experiment's grid: high-, mid-resource and non-Latin targets, and one X->en direction."""


def load_slice(flores: Path, directions: list[str], n: int, shots: int) -> tuple[list[Any], dict[str, list]]:
    """The first ``n`` devtest sentences of each direction, and ``shots`` demonstrations drawn from sentences
    900 onwards (never scored)."""
    from bayling.evaluate.translation import parse_direction
    from bayling.testsets import load_flores

    full = load_flores(flores, [parse_direction(d) for d in directions])
    demos = {b.key: list(zip(b.sources[900 : 900 + shots], b.refs[900 : 900 + shots], strict=True)) for b in full}
    return [b.head(n) for b in full], demos


def run_path(
    engine: Any,
    bitexts: list[Any],
    demos: dict[str, list] | None,
    decode: str,
    rule: tuple[float, int] | None,
    max_new_tokens: int,
    attn: str,
    batch_size: int,
    loop_span: int = 0,
    screen: bool = False,
) -> dict[str, Any]:
    """Translate the slice on one path; hypotheses, wall seconds and counted FLOPs."""
    from bayling.evaluate.translation import translate

    engine.decode = decode
    engine.batch_size = batch_size
    engine.screen_head = screen
    engine.model.set_attn_implementation(attn)
    counter = LinearFlops(engine.model)
    t0 = time.perf_counter()
    hyps = translate(engine, bitexts, max_new_tokens, seed=0, fewshot=demos, length_rule=rule, loop_span=loop_span)
    wall = time.perf_counter() - t0
    counter.close()
    n = sum(len(h) for h in hyps.values())
    out_tokens = sum(engine.count_tokens(h) for hs in hyps.values() for h in hs)
    return {
        "decode": decode,
        "batch_size": batch_size,
        "length_rule": list(rule) if rule else None,
        "attn": attn,
        "loop_span": loop_span,
        "screen_head": screen and decode == "fast",
        "seconds": round(wall, 2),
        "hypotheses": n,
        "hypotheses_per_s": round(n / wall, 4),
        "output_tokens": out_tokens,
        "output_tokens_per_s": round(out_tokens / wall, 2),
        "linear_gflop": round(counter.flops / 1e9, 1),
        "linear_gflop_per_s": round(counter.flops / wall / 1e9, 2),
        "hyps": hyps,
    }


def run_llamacpp(
    gguf: str,
    bitexts: list[Any],
    demos: dict[str, list],
    n: int,
    rule: tuple[float, int],
    max_new_tokens: int,
    fast: dict[str, Any],
) -> dict[str, Any]:
    """The few-shot slice's first ``n`` sentences per direction through the llama.cpp engine, as the evaluation
    runs it (``prompt_cache`` off, all cores), against the transformers fast path's hypotheses of them."""
    from bayling.engines.llamacpp import LlamaCppEngine
    from bayling.evaluate.translation import translate

    engine = LlamaCppEngine(None if gguf == "embedded" else gguf, n_ctx=2048, n_threads=os.cpu_count(),
                            prompt_cache=False)  # fmt: skip
    head = [b.head(n) for b in bitexts]
    t0 = time.perf_counter()
    hyps = translate(engine, head, max_new_tokens, seed=0, fewshot=demos, length_rule=rule)
    wall = time.perf_counter() - t0
    count = sum(len(h) for h in hyps.values())
    same = sum(a == b for key, hs in hyps.items() for a, b in zip(hs, fast["hyps"][key], strict=False))
    row = {
        "gguf": "embedded Q4_K_M" if gguf == "embedded" else Path(gguf).name,
        "seconds": round(wall, 2),
        "hypotheses": count,
        "hypotheses_per_s": round(count / wall, 4),
        "vs_transformers_fast_hypotheses_per_s": round(count / wall / fast["hypotheses_per_s"], 3),
        "identical_to_transformers_fast": same,
    }
    print(f"llama.cpp     {row['gguf']:24s} {wall:8.1f} s  {row['hypotheses_per_s']:.3f} hyp/s "
          f"(x{row['vs_transformers_fast_hypotheses_per_s']:.2f} of transformers fast)  identical {same}/{count}")  # fmt: skip
    return row


def compare(old: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, Any]:
    """Identical hypotheses, and the differences classified as ``limit`` (new = old cut short) or ``rounding``."""
    same = limit = rounding = 0
    examples = []
    for key, hs in old.items():
        for i, (a, b) in enumerate(zip(hs, new[key], strict=True)):
            if a == b:
                same += 1
            elif a.startswith(b):
                limit += 1
            else:
                rounding += 1
                if len(examples) < 5:
                    examples.append({"direction": key, "i": i, "old": a, "new": b})
    return {"identical": same, "differ_limit": limit, "differ_rounding": rounding, "rounding_examples": examples}


def loop_effect(bitexts: list[Any], full: dict[str, Any], looped: dict[str, Any]) -> dict[str, Any]:
    """What ``eval.translation.loop_span`` changed against decoding every token (same path, batch and limits):
    hypotheses identical, different ones (the model would have left its loop before its limit), and the chrF++
    of both per direction."""
    differ = [
        {"direction": key, "i": i, "full": x, "looped": y}
        for key, hs in full["hyps"].items()
        for i, (x, y) in enumerate(zip(hs, looped["hyps"][key], strict=True))
        if x != y
    ]
    return {
        "identical": looped["hypotheses"] - len(differ),
        "differ": len(differ),
        "differ_examples": differ[:5],
        "chrf_full": chrf(bitexts, full["hyps"]),
        "chrf_looped": chrf(bitexts, looped["hyps"]),
        "speedup_hypotheses_per_s": round(looped["hypotheses_per_s"] / full["hypotheses_per_s"], 2),
    }


def chrf(bitexts: list[Any], hyps: dict[str, list[str]]) -> dict[str, float]:
    from sacrebleu.metrics import CHRF

    metric = CHRF(word_order=2)
    return {b.key: round(metric.corpus_score(hyps[b.key], [b.refs]).score, 2) for b in bitexts}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="gemma-3-270m", help="embedded alias or HF directory (default: Gemma-3-270M)")
    p.add_argument("--adapter", default=None, help="a tuned LoRA: the chat slice also runs it (system 'tuned')")
    p.add_argument("--flores-dir", default=None, help="FLORES-200 root (default: $BAYLING_FLORES_DIR, ../shared)")
    p.add_argument("--directions", default=",".join(DIRECTIONS))
    p.add_argument("--sentences", type=int, default=16, help="scored sentences per direction")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32, help="rows per batch of the old path (and the new)")
    p.add_argument("--fast-batch-sizes", default="", help="more batch sizes for the new path, e.g. 64,128")
    p.add_argument("--max-new-tokens", type=int, default=128, help="the cap (the FLORES experiment's)")
    p.add_argument("--attn", default="", help="extra attention implementations for the new path, e.g. eager")
    p.add_argument("--systems", default="", help="run only these of base-fewshot,base-chat,tuned")
    p.add_argument(
        "--loop-spans",
        default="",
        help="eval.translation.loop_span values to also run on the new path (at every batch size), e.g. 32,24;\n"
        "each is compared with the new path without it at the same batch size",
    )
    p.add_argument(
        "--screen",
        action="store_true",
        help="also run every fast path through the bf16-screened output layer (decode.ScreenedHead; other paths\n"
        "run the float32 product) and count the hypotheses that differ from the same path without it",
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--llamacpp",
        default="",
        help="GGUF files to also run the few-shot slice through the llama.cpp engine (one sequence at a time),\n"
        "e.g. an F32 conversion of the same model and the embedded Q4_K_M ('embedded')",
    )
    p.add_argument("--llamacpp-sentences", type=int, default=4, help="sentences per direction for llama.cpp")
    p.add_argument("--out", default=str(REPO / "bench/results/eval_throughput_cpu_gemma.json"))
    a = p.parse_args()

    import torch

    from bayling.engines.hf import TransformersEngine
    from bayling.models import resolve_model

    if a.threads:
        torch.set_num_threads(a.threads)
    load_start = os.getloadavg()
    flores = Path(
        a.flores_dir or os.environ.get("BAYLING_FLORES_DIR") or REPO.parent / "shared" / "data" / "flores200"
    )
    bitexts, demos = load_slice(flores, a.directions.split(","), a.sentences, a.shots)
    peak = matmul_peak()
    model_dir = resolve_model(a.model)
    rule = (3.0, 16)
    systems: list[tuple[str, str | None, bool]] = [("base-fewshot", None, True), ("base-chat", None, False)]
    if a.adapter:
        systems.append(("tuned", a.adapter, False))
    if a.systems:
        systems = [s for s in systems if s[0] in a.systems.split(",")]
    slices = []
    for name, adapter, fewshot in systems:
        engine = TransformersEngine(model_dir, adapter=adapter, dtype="float32", device="cpu", batch_size=a.batch_size)
        default_attn = engine.model.config._attn_implementation or "sdpa"
        shots = demos if fewshot else None
        bs = a.batch_size
        paths = [
            run_path(engine, bitexts, shots, "generate", None, a.max_new_tokens, default_attn, bs),
            run_path(engine, bitexts, shots, "fast", rule, a.max_new_tokens, default_attn, bs),
        ]
        for wide in (int(b) for b in filter(None, a.fast_batch_sizes.split(","))):
            paths.append(run_path(engine, bitexts, shots, "fast", rule, a.max_new_tokens, default_attn, wide))
        for attn in filter(None, a.attn.split(",")):
            paths.append(run_path(engine, bitexts, shots, "fast", rule, a.max_new_tokens, attn, bs))
        exact = {p["batch_size"]: p for p in paths[1:] if p["attn"] == default_attn}
        for span in (int(s) for s in filter(None, a.loop_spans.split(","))):
            for size, ref in list(exact.items()):
                path = run_path(engine, bitexts, shots, "fast", rule, a.max_new_tokens, default_attn, size, span)
                path["vs_fast_without_loop_span"] = loop_effect(bitexts, ref, path)
                paths.append(path)
        if a.screen:
            for ref in [p for p in paths if p["decode"] == "fast" and p["attn"] == default_attn]:
                path = run_path(
                    engine,
                    bitexts,
                    shots,
                    "fast",
                    rule,
                    a.max_new_tokens,
                    default_attn,
                    ref["batch_size"],
                    ref["loop_span"],
                    screen=True,
                )
                path["vs_same_path_unscreened"] = {
                    **compare(ref["hyps"], path["hyps"]),
                    "speedup_hypotheses_per_s": round(path["hypotheses_per_s"] / ref["hypotheses_per_s"], 2),
                }
                paths.append(path)
        old = paths[0]
        for path in paths:
            path["speedup_hypotheses_per_s"] = round(path["hypotheses_per_s"] / old["hypotheses_per_s"], 2)
            path["fraction_of_matmul_peak"] = round(path["linear_gflop_per_s"] / peak, 3)
            path["vs_old"] = compare(old["hyps"], path["hyps"])
            path["chrf"] = chrf(bitexts, path["hyps"])
        slices.append({"system": name, "prompt": "fewshot" if fewshot else "chat", "paths": paths})
        del engine
        for path in paths:
            print(
                f"{name:13s} {path['decode']:8s}{'+screen' if path['screen_head'] else '':7s} {path['attn']:6s} "
                f"b{path['batch_size']:<4d} loop{path['loop_span']:<3d} {path['seconds']:8.1f} s  "
                f"{path['hypotheses_per_s']:.3f} hyp/s (x{path['speedup_hypotheses_per_s']:.2f})  "
                f"{path['output_tokens_per_s']:.1f} out tok/s  {path['linear_gflop_per_s']:.1f} GFLOP/s "
                f"({100 * path['fraction_of_matmul_peak']:.0f} % of {peak:.0f})  identical "
                f"{path['vs_old']['identical']}/{path['hypotheses']} (limit {path['vs_old']['differ_limit']}, "
                f"rounding {path['vs_old']['differ_rounding']})"
            )
    llamacpp = [
        run_llamacpp(gguf, bitexts, demos, a.llamacpp_sentences, rule, a.max_new_tokens, slices[0]["paths"][1])
        for gguf in filter(None, a.llamacpp.split(","))
    ]
    report = {
        "benchmark": "eval_throughput",
        **provenance(load_start),
        "settings": {
            "model": a.model,
            "adapter": a.adapter,
            "directions": a.directions.split(","),
            "sentences_per_direction": a.sentences,
            "shots": a.shots,
            "batch_size": a.batch_size,
            "max_new_tokens": a.max_new_tokens,
            "new_length_rule": "min(max_new_tokens, 3 x source tokens + 16)",
            "dtype": "float32",
            "demonstrations": "FLORES-200 devtest sentences 900.. (never scored)",
        },
        "matmul_peak_gflop_per_s": round(peak, 1),
        "versions": {"torch": torch.__version__, "transformers": sys.modules["transformers"].__version__},
        "slices": slices,
        "llamacpp_fewshot": llamacpp,
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
