"""Run lm-evaluation-harness itself on the files bayling reads, to check that both give the same numbers.

lm-eval's stock XCOPA, XNLI and Belebele tasks read Hugging Face hub data; offline, a task defined
by a local YAML over local JSON (``dataset_path: json``) runs instead. This module converts
bayling's local layouts to the hub schema those tasks expect (Belebele ungrouped into
``flores_passage``/``mc_answerN``, XNLI TSV into ``premise``/``hypothesis``/``label``), writes one
task per file whose prompt fields are taken from lm-eval's own stock task files (not from bayling's
readers, so the prompt strings are checked too), runs :func:`lm_eval.simple_evaluate` with the
``hf`` model on a local directory, and returns per-item log-likelihoods and accuracies next to
bayling's (:func:`bayling.evaluate.mc.score_mc`) on the same model.

Used by ``tests/evaluate/test_mc_parity.py`` (tiny model, written data) and ``bench/mc_parity.py``
(Gemma-3-270M, the real files). Needs ``pip install lm-eval`` (not a bayling dependency).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from bayling.errors import DataError, require
from bayling.evaluate import benchmarks as bm

KINDS = ("xcopa", "xnli", "belebele", "global_mmlu", "include")
STOCK = {
    "global_mmlu": ("global_mmlu/default/{lang}/_{lang}_template_yaml", None),
    "include": (
        "include/default/{lang}/_{low}_template_yaml",
        "include/default/{lang}/include_base_44_{low}_{dom}.yaml",
    ),
}
"""lm-eval's stock task files of the Hub sets (template, and INCLUDE's per-domain task with its description)."""


def hub_docs(kind: str, path: Path) -> list[dict[str, Any]]:
    """The documents of a bayling-layout benchmark file in the hub schema of lm-eval's stock task."""
    if kind == "xcopa":
        return [obj for _, obj in bm._jsonl(path)]
    if kind == "xnli":
        with path.open(encoding="utf-8", newline="") as f:
            rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r]
        return [{"premise": p, "hypothesis": h, "label": bm.XNLI_LABELS[lab]} for p, h, lab in rows]
    if kind in ("global_mmlu", "include"):  # already Hub rows: a JSONL of them
        return [obj for _, obj in bm._jsonl(path)]
    if kind == "belebele":
        docs = []
        for _, obj in bm._jsonl(path):
            for q in obj["items"]:
                answers = q["answers"]
                correct = next(k for k, a in enumerate(answers) if a.get("correct"))
                docs.append(
                    {
                        "flores_passage": obj["text"],
                        "question": q["question"],
                        **{f"mc_answer{k + 1}": a["text"] for k, a in enumerate(answers)},
                        "correct_answer_num": str(correct + 1),
                    }
                )
        return docs
    raise DataError(f"no lm-eval parity task for {kind!r}; choose from {', '.join(KINDS)}")


def bayling_items(kind: str, path: Path, lang: str) -> list[bm.MCItem]:
    """The same file read by bayling's own reader."""
    reader = {
        "xcopa": bm.read_xcopa,
        "xnli": bm.read_xnli,
        "belebele": bm.read_belebele,
        "global_mmlu": bm.read_global_mmlu,
        "include": bm.read_include,
    }[kind]
    return reader(path, lang)


def _stock_yaml(rel: str) -> dict[str, Any]:
    import lm_eval.tasks
    import yaml

    text = (Path(lm_eval.tasks.__file__).parent / rel).read_text(encoding="utf-8")
    return yaml.safe_load(text.replace("!function", ""))  # the Python hooks are not prompt fields


def write_task(task_dir: Path, name: str, kind: str, lang: str, docs: list[dict[str, Any]]) -> None:
    """``task_dir/NAME.yaml`` (+ ``NAME.jsonl``): lm-eval's stock prompts over local documents."""
    task_dir.mkdir(parents=True, exist_ok=True)
    data = task_dir / f"{name}.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    if kind == "xcopa":  # prompt functions are Python in lm-eval: import them from its own module
        (task_dir / "xcopa_stock.py").write_text(
            f"from lm_eval.tasks.xcopa.utils import doc_to_choice, doc_to_text_{lang}  # noqa: F401\n",
            encoding="utf-8",
        )
        fields = (
            f"doc_to_text: !function xcopa_stock.doc_to_text_{lang}\n"
            "doc_to_choice: !function xcopa_stock.doc_to_choice\n"
            "doc_to_target: label\n"
        )
    else:
        if kind == "xnli":
            stock = _stock_yaml("xnli/xnli_common_yaml") | _stock_yaml(f"xnli/xnli_{lang}.yaml")
        elif kind in STOCK:
            template, task = STOCK[kind]
            low, dom = lang.lower().replace(" ", "_"), docs[0].get("domain", "").lower().replace(" & ", "_")
            stock = _stock_yaml(template.format(lang=lang, low=low))
            if task:  # INCLUDE: one task per domain, whose description is part of the prompt
                stock |= _stock_yaml(task.format(lang=lang, low=low, dom=dom.replace(" ", "_")))
        else:
            stock = _stock_yaml("belebele/_default_template_yaml")
        keys = ("doc_to_text", "doc_to_choice", "doc_to_target", "description")
        fields = "".join(f"{k}: {json.dumps(stock[k], ensure_ascii=False)}\n" for k in keys if k in stock)
    (task_dir / f"{name}.yaml").write_text(
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        f"  cache_dir: {json.dumps(str(task_dir / '.datasets_cache'))}\n"  # not the user's HF cache
        "test_split: test\n"
        "output_type: multiple_choice\n"
        f"{fields}"
        "metric_list:\n"
        "  - {metric: acc, aggregation: mean, higher_is_better: true}\n"
        "  - {metric: acc_norm, aggregation: mean, higher_is_better: true}\n",
        encoding="utf-8",
    )


def lmeval_model(model_dir: str | Path, batch_size: int = 8, dtype: str = "float32") -> Any:
    """lm-eval's own ``hf`` model (``HFLM``) on a local directory, on the CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    require("lm_eval", "dev")
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(model_dir), dtype=dtype, device="cpu", batch_size=batch_size)


def run_lmeval(
    model: str | Path | Any, task_dir: Path, tasks: list[str], batch_size: int = 8, dtype: str = "float32"
) -> dict[str, dict[str, Any]]:
    """lm-eval's results per task: ``acc``/``acc_norm`` (%), ``n``, per-item ``loglik`` and ``requests``.

    Args:
        model: a local model directory (run as ``model="hf"``) or an lm-eval model object.
        task_dir: the directory :func:`write_task` wrote.
        tasks: task names in it.
        batch_size: lm-eval's batch size.
        dtype: weights dtype of a model loaded from a directory.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    lm_eval = require("lm_eval", "dev")
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(task_dir), include_defaults=False, verbosity="ERROR")
    local = isinstance(model, (str, Path))
    res = lm_eval.simple_evaluate(
        model="hf" if local else model,
        model_args={"pretrained": str(model), "dtype": dtype, "device": "cpu"} if local else None,
        tasks=tasks,
        task_manager=tm,
        batch_size=batch_size,
        log_samples=True,
        bootstrap_iters=0,
        verbosity="ERROR",
    )
    out = {}
    for t in tasks:
        samples = sorted(res["samples"][t], key=lambda s: s["doc_id"])
        out[t] = {
            "acc": round(100.0 * res["results"][t]["acc,none"], 2),
            "acc_norm": round(100.0 * res["results"][t]["acc_norm,none"], 2),
            "n": len(samples),
            "loglik": [[float(r[0]) for r in s["filtered_resps"]] for s in samples],
            "requests": [[list(a) for a in s["arguments"]] for s in samples],
        }
    return out


def compare(bayling: tuple[dict[str, Any], list[dict[str, Any]]], lmeval: dict[str, Any]) -> dict[str, Any]:
    """Accuracies of both tools and the largest per-item log-likelihood difference."""
    summary, rows = bayling
    if len(rows) != lmeval["n"]:
        raise DataError(f"bayling scored {len(rows)} items, lm-eval {lmeval['n']}")
    diffs = [
        abs(a - b) for r, ll in zip(rows, lmeval["loglik"], strict=True) for a, b in zip(r["loglik"], ll, strict=True)
    ]
    return {
        "n": summary["n"],
        "bayling": {"acc": summary["acc"], "acc_norm": summary["acc_norm"]},
        "lm_eval": {"acc": lmeval["acc"], "acc_norm": lmeval["acc_norm"]},
        "max_abs_loglik_diff": max(diffs, default=0.0),
        "same_predictions": all(
            max(range(len(ll)), key=ll.__getitem__) == r["pred"] for r, ll in zip(rows, lmeval["loglik"], strict=True)
        ),
    }
