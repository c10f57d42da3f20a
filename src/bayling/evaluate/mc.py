"""Multiple choice by log-likelihood (Belebele, XCOPA, XNLI, GaoKao) and MGSM by exact match.

Why our own thin scorer and not lm-evaluation-harness: lm-eval 0.4.13's stock ``belebele``,
``xcopa``, ``xnli``, ``mgsm`` and ``agieval_gaokao_*`` tasks all load Hugging Face hub data sets
(``facebook/belebele``, ``cambridgeltl/xcopa``, ``facebook/xnli``, ``juletxara/mgsm``,
``hails/agieval-*``), so offline each fails with ``Couldn't reach '…' on the Hub``. Overriding
``dataset_path: json`` + ``dataset_kwargs.data_files`` in a custom task YAML works only where the
local file has the hub schema: it ran for XCOPA, but Belebele failed (``'flores_passage' is
undefined``: the public copy is grouped by passage), and XNLI/MGSM are header-less TSVs and the
AGIEval files use ``question/options/label`` instead of ``query/choices/gold`` — each would need a
custom ``process_docs`` function anyway. lm-eval would also load its own model wrapper instead of
our engines and chat formats. So :mod:`bayling.evaluate.benchmarks` reads the files and reproduces
lm-eval's prompt strings, and this module scores them (about 100 lines) with the engine's model.

Scoring: for each ``(context, continuation)`` the summed log-probability of the continuation tokens
(context and continuation tokenized separately and concatenated, as lm-eval does). ``acc`` takes the
best sum, ``acc_norm`` the best sum per byte of continuation. ``chat=True`` wraps the context in
the model's chat format (through :mod:`bayling.chat`) for instruction-tuned models; the default
plain layout is lm-eval's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from bayling.engines import GenerationParams
from bayling.errors import ConfigError, require
from bayling.evaluate.benchmarks import GenItem, MCItem


def _hf_parts(engine: Any) -> tuple[Any, Any, Any]:
    if not all(hasattr(engine, a) for a in ("model", "tokenizer", "format")):
        raise ConfigError(
            "multiple-choice benchmarks need token log-likelihoods: use eval.engine=transformers "
            f"(engine {type(engine).__name__} only generates text)"
        )
    return engine.model, engine.tokenizer, engine.format


def _context_ids(tokenizer: Any, fmt: Any, context: str, chat: bool) -> list[int]:
    if chat:
        from bayling.chat import render

        text = render([{"role": "user", "content": context}], fmt, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + ids


def loglikelihoods(
    engine: Any,
    requests: Sequence[tuple[str, str]],
    batch_size: int = 8,
    chat: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Summed log-probability of each continuation given its context.

    Args:
        engine: a :class:`~bayling.engines.hf.TransformersEngine` (needs ``model``, ``tokenizer``, ``format``).
        requests: ``(context, continuation)`` pairs.
        batch_size: sequences per forward pass (left-padded, explicit position ids).
        chat: render the context as a user turn in the model's chat format.
        progress: called with the number of requests finished after each batch.
    """
    torch = require("torch", "train")
    model, tok, fmt = _hf_parts(engine)
    device = next(model.parameters()).device
    seqs = []
    for ctx, cont in requests:
        c_ids = _context_ids(tok, fmt, ctx, chat)
        k_ids = tok(cont, add_special_tokens=False)["input_ids"]
        if not k_ids:
            raise ConfigError(f"empty continuation for context {ctx[:60]!r}")
        seqs.append((c_ids + k_ids, len(k_ids)))
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i][0]))
    out = [0.0] * len(seqs)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(seqs[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                s = seqs[i][0]
                ids[r, width - len(s) :] = torch.tensor(s)
                mask[r, width - len(s) :] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            keep = max(seqs[i][1] for i in idx) + 1  # logits only where continuations are predicted
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=pos.to(device),
                logits_to_keep=keep,
            ).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # position j predicts token j+1
            targets = ids[:, width - keep + 1 :].to(device)
            tok_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            for r, i in enumerate(idx):
                n = seqs[i][1]
                out[i] = float(tok_lp[r, keep - 1 - n :].sum())
            if progress is not None:
                progress(len(idx))
    return out


def score_mc(
    engine: Any,
    items: Sequence[MCItem],
    batch_size: int = 8,
    chat: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accuracy (``acc``, ``acc_norm``, in %) and per-item predictions for multiple-choice items."""
    reqs = [(it.context, ch) for it in items for ch in it.choices]
    lls = loglikelihoods(engine, reqs, batch_size, chat, progress)
    rows, k = [], 0
    for it in items:
        ll = lls[k : k + len(it.choices)]
        k += len(it.choices)
        norm = [v / max(len(c.encode("utf-8")), 1) for v, c in zip(ll, it.choices, strict=True)]
        pred, pred_norm = max(range(len(ll)), key=ll.__getitem__), max(range(len(norm)), key=norm.__getitem__)
        rows.append(
            {"id": it.id, "label": it.label, "pred": pred, "pred_norm": pred_norm, "loglik": [round(v, 4) for v in ll]}
        )
    n = max(len(rows), 1)
    summary = {
        "acc": round(100.0 * sum(r["pred"] == r["label"] for r in rows) / n, 2),
        "acc_norm": round(100.0 * sum(r["pred_norm"] == r["label"] for r in rows) / n, 2),
        "n": len(rows),
    }
    return summary, rows


MGSM_INSTRUCTION = "Solve this math problem step by step, then give the final answer as a number after 'Answer:'."
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_number(text: str) -> str | None:
    """The number after the last ``Answer:`` if any, else the last number in ``text`` (commas removed)."""
    after = _NUMBER.findall(text.rsplit("Answer:", 1)[1]) if "Answer:" in text else []
    nums = after[:1] or _NUMBER.findall(text)[-1:]
    if not nums:
        return None
    n = nums[0].replace(",", "").rstrip(".")
    return n[:-2] if n.endswith(".0") else n


def score_mgsm(
    engine: Any,
    items: Sequence[GenItem],
    max_new_tokens: int = 256,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Exact match (%) of the final number of greedy answers (any engine)."""
    convs = [[{"role": "user", "content": f"{it.question}\n\n{MGSM_INSTRUCTION}"}] for it in items]
    outs = engine.generate(convs, GenerationParams(max_new_tokens=max_new_tokens, seed=seed), progress=progress)
    rows = []
    for it, o in zip(items, outs, strict=True):
        pred = extract_number(o)
        rows.append({"id": it.id, "answer": it.answer, "pred": pred, "output": o, "correct": pred == it.answer})
    n = max(len(rows), 1)
    return {"exact_match": round(100.0 * sum(r["correct"] for r in rows) / n, 2), "n": len(rows)}, rows
