"""Multiple choice by log-likelihood (Belebele, XCOPA, XNLI, GaoKao) and MGSM by exact match.

Why our own thin scorer and not lm-evaluation-harness: lm-eval 0.4's stock ``belebele``,
``xcopa``, ``xnli``, ``mgsm`` and ``agieval_gaokao_*`` tasks load Hugging Face hub data sets, so
offline each fails with ``Couldn't reach '…' on the Hub``; the public local copies have other
layouts (Belebele grouped by passage, XNLI/MGSM header-less TSVs, AGIEval ``question/options/label``),
and lm-eval would load its own model wrapper instead of our engines, adapters and chat formats. So
:mod:`bayling.evaluate.benchmarks` reads the files and builds lm-eval's prompt strings, and this
module scores them with lm-eval's rules, reproduced here (lm-eval 0.4.13, ``HFLM``):

* **Requests**: each choice is scored as the continuation ``target_delimiter + choice`` of the
  item's context (``TemplateLM``/``ConfigurableTask.construct_requests``).
* **Tokenization** (``TemplateLM._encode_pair``): trailing whitespace of the context moves to the
  continuation; context + continuation are encoded whole and split at the length of the encoded
  context. Encoding adds special tokens the way the tokenizer does by default (``tok.encode``), so
  BOS appears exactly when the tokenizer adds one (Gemma, Llama: yes; Qwen, GPT-2: no), and none is
  added when the context already starts with the BOS string.
* **Empty context** (XNLI: the whole sentence is the choice): the continuation is encoded without
  special tokens and conditioned on the prefix token: BOS, or EOS when the tokenizer has no BOS
  (``HFLM.prefix_token_id``). If the continuation itself starts with that token, its first token
  becomes the context instead (``TemplateLM.loglikelihood``).
* **Length**: context + continuation longer than the model's length (``n_positions``,
  ``max_position_embeddings``, ``n_ctx``, the tokenizer's ``model_max_length``, else 2048) + 1 is
  cut from the left, as lm-eval does.
* **Metrics** (``ConfigurableTask.process_results``): ``acc`` takes the highest summed
  log-likelihood, ``acc_norm`` the highest log-likelihood divided by the number of *characters* of
  the choice (without the delimiter); ties go to the first choice (``numpy.argmax``).

``tests/evaluate/test_mc_parity.py`` runs lm-eval itself on XCOPA-, XNLI- and Belebele-shaped data
and requires the same per-item log-likelihoods (1e-4) and accuracies; ``bench/mc_parity.py`` does the
same on Gemma-3-270M and the real files. Deliberate differences (also in :data:`MC_PROTOCOL`):

* the log-softmax is taken in float32 whatever the weights' dtype (lm-eval: in the weights' dtype
  unless ``softmax_dtype`` is set), so bf16 runs differ from lm-eval's bf16 runs by rounding only;
* a context that is only whitespace (lm-eval: an assertion error for BOS-less tokenizers) is
  treated as empty;
* ``chat=True`` (not lm-eval's default) renders the context as a user turn in bayling's chat format
  and drops the delimiter, as lm-eval's ``--apply_chat_template`` does; it is not covered by the
  parity test.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from bayling.engines import Engine, GenerationParams
from bayling.errors import ConfigError, require
from bayling.evaluate.benchmarks import GenItem, MCItem
from bayling.evaluate.config import BATCH_SIZE, EvalConfig

MC_PROTOCOL = (
    "lm-eval 0.4 multiple_choice: loglikelihood of target_delimiter+choice after the context "
    "(TemplateLM._encode_pair; BOS as the tokenizer adds it; empty context -> BOS, else EOS); "
    "acc = argmax loglik, acc_norm = argmax loglik / len(choice) in characters; "
    "deliberate difference: log-softmax in float32"
)
"""How bayling's multiple-choice numbers are computed; written next to every MC summary."""

_TOKENIZER_INFINITY = 1000000000000000019884624838656  # transformers' "no model_max_length"


def _hf_parts(engine: Engine) -> tuple[Any, Any, Any]:
    if not all(hasattr(engine, a) for a in ("model", "tokenizer", "format")):
        raise ConfigError(
            "log-likelihood scoring (multiple choice, perplexity) needs token log-probabilities: use "
            f"eval.engine=transformers (engine {type(engine).__name__} only generates text)"
        )
    return engine.model, engine.tokenizer, engine.format


def max_length(model: Any, tokenizer: Any) -> int:
    """The model's context length as lm-eval resolves it (``resolve_max_length``, default 2048)."""
    cfg = getattr(model, "config", None)
    cfg = getattr(cfg, "text_config", None) or cfg
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    mml = getattr(tokenizer, "model_max_length", None)
    return int(mml) if mml is not None and mml != _TOKENIZER_INFINITY else 2048


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context is conditioned on: BOS, else EOS (lm-eval's ``HFLM.prefix_token_id``)."""
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tid is None:
        raise ConfigError("the tokenizer has neither a BOS nor an EOS token to condition an empty context on")
    return int(tid)


def _tok_encode(tokenizer: Any, text: str) -> list[int]:
    """``HFLM.tok_encode``: the tokenizer's default special tokens, none if ``text`` already starts with BOS."""
    bos_text = tokenizer.decode(prefix_token_id(tokenizer))
    if bos_text and text.startswith(bos_text):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def encode_request(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of ``(context, continuation)`` exactly as lm-eval's ``TemplateLM.loglikelihood`` makes them.

    Args:
        tokenizer: a Hugging Face tokenizer.
        context: the conditioning text (may be empty).
        continuation: the text to score (delimiter included).

    Returns:
        ``(context_ids, continuation_ids)``; both non-empty.
    """
    if not context.strip():  # lm-eval: context == "" (whitespace-only would crash it; we treat it as empty)
        cont = tokenizer.encode(context + continuation, add_special_tokens=False)
        if not cont:
            raise ConfigError(f"empty continuation {continuation!r} after an empty context")
        prefix = prefix_token_id(tokenizer)
        return ([prefix], cont) if cont[0] != prefix else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = _tok_encode(tokenizer, context + continuation)
    ctx = _tok_encode(tokenizer, context)
    cont = whole[len(ctx) :]
    if not cont:
        raise ConfigError(f"continuation {continuation!r} of context {context[-60:]!r} encodes to no tokens")
    return ctx, cont


def score_tokens(
    engine: Engine,
    requests: Sequence[tuple[list[int], list[int]]],
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Summed log-probability of each continuation's tokens after its context's tokens.

    Requests whose model input (context + continuation without its last token) is the same share
    one sequence (the four one-token answers of a Belebele item cost one forward pass, like lm-eval's
    logits cache). Sequences are batched longest first and right-padded without an attention mask,
    as lm-eval's ``HFLM._loglikelihood_tokens`` does (causal attention never looks at padding on the
    right); logits are computed only at the positions that predict continuation tokens.
    """
    torch = require("torch", "train")
    model, tok, _ = _hf_parts(engine)
    device = next(model.parameters()).device
    limit = max_length(model, tok)
    groups: dict[tuple[int, ...], list[int]] = {}  # model input -> requests scored on it
    for i, (ctx, cont) in enumerate(requests):
        if not ctx or not cont:
            raise ConfigError("log-likelihood requests need a non-empty context and continuation")
        if len(cont) > limit:
            raise ConfigError(f"a continuation of {len(cont)} tokens is longer than the model ({limit})")
        groups.setdefault(tuple((ctx + cont)[-(limit + 1) :][:-1]), []).append(i)
    inputs = sorted(groups, key=len, reverse=True)
    out = [0.0] * len(requests)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    vocab = model.get_output_embeddings().weight.shape[0]
    with torch.inference_mode():
        for batch in _logit_batches(inputs, groups, requests, batch_size, vocab):
            ids = torch.full((len(batch), len(batch[0])), pad, dtype=torch.long)
            members = []  # (row, request, positions predicting its continuation)
            for r, inp in enumerate(batch):
                ids[r, : len(inp)] = torch.tensor(inp)
                for i in groups[inp]:
                    members.append((r, i, range(len(inp) - len(requests[i][1]), len(inp))))
            keep = sorted({p for _, _, span in members for p in span})
            col = {p: j for j, p in enumerate(keep)}
            logits = model(input_ids=ids.to(device), logits_to_keep=torch.tensor(keep, device=device)).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for r, i, span in members:
                cols = torch.tensor([col[p] for p in span], device=device)
                tgt = torch.tensor(requests[i][1], device=device)
                out[i] = float(logprobs[r, cols, tgt].sum())
            if progress is not None:
                progress(len(members))
    return out


LOGITS_BUDGET = 2**28
"""Most logits (float32: 1 GiB) one scoring batch may hold: a perplexity row keeps a logit vector at every position,
so 128 rows of 80 tokens over Gemma's 262k vocabulary would be 10.7 GB (twice, with the log-softmax)."""


def _logit_batches(
    inputs: Sequence[tuple[int, ...]],
    groups: dict[tuple[int, ...], list[int]],
    requests: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    vocab: int,
) -> Iterator[list[tuple[int, ...]]]:
    """``inputs`` in order, in batches of at most ``batch_size`` whose kept logits fit :data:`LOGITS_BUDGET`
    (a batch holds at least one input)."""
    batch: list[tuple[int, ...]] = []
    kept: set[int] = set()
    for inp in inputs:
        span = {p for i in groups[inp] for p in range(len(inp) - len(requests[i][1]), len(inp))}
        grown = kept | span
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * len(grown) * vocab > LOGITS_BUDGET):
            yield batch
            batch, grown = [], span
        batch.append(inp)
        kept = grown
    if batch:
        yield batch


def _chat_context(fmt: Any, context: str) -> str:
    from bayling.chat import render

    return render([{"role": "user", "content": context}], fmt, add_generation_prompt=True)


def loglikelihoods(
    engine: Engine,
    requests: Sequence[tuple[str, str]],
    batch_size: int = BATCH_SIZE,
    chat: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Summed log-probability of each continuation given its context (lm-eval's ``loglikelihood``).

    Args:
        engine: a :class:`~bayling.engines.hf.TransformersEngine` (needs ``model``, ``tokenizer``, ``format``).
        requests: ``(context, continuation)`` pairs; the continuation carries its delimiter (``" A"``).
        batch_size: sequences per forward pass.
        chat: render the context as a user turn in the model's chat format (not lm-eval's default).
        progress: called with the number of requests finished after each batch.
    """
    _, tok, fmt = _hf_parts(engine)
    enc = [encode_request(tok, _chat_context(fmt, c) if chat else c, k) for c, k in requests]
    return score_tokens(engine, enc, batch_size, progress)


def score_mc(
    engine: Engine,
    items: Sequence[MCItem],
    batch_size: int = BATCH_SIZE,
    chat: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accuracy (``acc``, ``acc_norm``, in %) and per-item predictions for multiple-choice items.

    ``acc_norm`` divides each log-likelihood by the character length of the choice without its
    delimiter, as lm-eval does; with ``chat=True`` the delimiter is dropped (lm-eval's chat-template rule).
    """
    reqs = [(it.context, ("" if chat else it.target_delimiter) + ch) for it in items for ch in it.choices]
    lls = loglikelihoods(engine, reqs, batch_size, chat, progress)
    rows, k = [], 0
    for it in items:
        ll = lls[k : k + len(it.choices)]
        k += len(it.choices)
        norm = [v / len(c) if c else float("-inf") for v, c in zip(ll, it.choices, strict=True)]
        pred, pred_norm = max(range(len(ll)), key=ll.__getitem__), max(range(len(norm)), key=norm.__getitem__)
        rows.append(
            {"id": it.id, "label": it.label, "pred": pred, "pred_norm": pred_norm, "loglik": [round(v, 6) for v in ll]}
        )
        if it.subset:
            rows[-1]["subset"] = it.subset
    summary: dict[str, Any] = {
        **_accuracy(rows),
        "protocol": MC_PROTOCOL + ("; chat layout (delimiter dropped)" if chat else ""),
    }
    subsets = sorted({r["subset"] for r in rows if "subset" in r})
    if subsets:  # e.g. Global-MMLU's culturally sensitive (CS) and agnostic (CA) halves, reported on their own
        summary["subsets"] = {s: _accuracy([r for r in rows if r.get("subset") == s]) for s in subsets}
    return summary, rows


def _accuracy(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``acc`` and ``acc_norm`` (%) and ``n`` of scored rows."""
    n = max(len(rows), 1)
    return {
        "acc": round(100.0 * sum(r["pred"] == r["label"] for r in rows) / n, 2),
        "acc_norm": round(100.0 * sum(r["pred_norm"] == r["label"] for r in rows) / n, 2),
        "n": len(rows),
    }


# ----------------------------------------------------------------------------- MGSM

MGSM_INSTRUCTION = "Solve this math problem step by step, then give the final answer as a number after 'Answer:'."
MGSM_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
"""lm-eval's ``mgsm`` ``flexible-extract`` pattern (``tasks/mgsm/*/…yaml``): the last match is the answer."""
_SEPARATORS = str.maketrans({"\u066b": ".", "\u066c": ",", "\u2212": "-"})  # Arabic decimal/thousands, minus sign

MGSM_PROTOCOL = (
    "lm-eval mgsm flexible-extract regex (-?[$0-9.,]{2,})|(-?[0-9]+), last match (first match after the "
    "last 'Answer:' when present); differences: Unicode digits -> ASCII, matches without a digit skipped, "
    "numbers compared by value (18.00 == 18, 1,234 == 1234, 3,5 == 3.5)"
)
"""How bayling's MGSM exact match is computed; written next to every MGSM summary."""


def _ascii_digits(text: str) -> str:
    """Every Unicode decimal digit (Arabic-Indic ``٣``, full-width ``１``, Devanagari…) as its ASCII digit."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text.translate(_SEPARATORS))


def _matches(text: str) -> list[str]:
    found = ["".join(m).strip() for m in MGSM_NUMBER.findall(text)]
    return [m for m in found if any(ch.isdigit() for ch in m)]  # lm-eval would also take "..." or ","


def normalize_number(text: str) -> str:
    """A number string in canonical form: ``$`` and outer punctuation dropped, separators resolved, by value.

    ``1,234`` and ``1,234,567`` are thousands (``1234``); a single comma not followed by exactly three
    digits is a decimal comma (``3,5`` -> ``3.5``); ``1.234.567`` and ``1.234,5`` are European thousands;
    ``18.00`` -> ``18``. A string that is not a number after that is returned stripped.
    """
    s = _ascii_digits(text).strip().replace("$", "")
    neg = s.startswith("-")
    s = s.lstrip("-").strip(".,")
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    elif re.fullmatch(r"\d+,\d+", s):
        s = s.replace(",", ".")
    elif re.fullmatch(r"\d{1,3}(\.\d{3})+,\d+|\d{1,3}(\.\d{3}){2,}", s):
        s = s.replace(".", "").replace(",", ".")
    try:
        d = Decimal(s)
    except InvalidOperation:
        return text.strip()
    d = -d if neg else d
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def extract_number(text: str) -> str | None:
    """The model's final answer as a canonical number (:func:`normalize_number`), or None.

    lm-eval's ``flexible-extract`` regex over the text with Unicode digits made ASCII: the first
    match after the last ``Answer:`` (the line bayling's prompt asks for) when there is one, else the
    last match anywhere (lm-eval's ``group_select: -1``).
    """
    t = _ascii_digits(text)
    after = _matches(t.rsplit("Answer:", 1)[1]) if "Answer:" in t else []
    found = after[:1] or _matches(t)[-1:]
    return normalize_number(found[0]) if found else None


def score_mgsm(
    engine: Engine,
    items: Sequence[GenItem],
    max_new_tokens: int = 256,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Exact match (%) of the final number of greedy answers (any engine), compared by value."""
    convs = [[{"role": "user", "content": f"{it.question}\n\n{MGSM_INSTRUCTION}"}] for it in items]
    outs = engine.generate(convs, GenerationParams(max_new_tokens=max_new_tokens, seed=seed), progress=progress)
    rows = []
    for it, o in zip(items, outs, strict=True):
        pred = extract_number(o)
        correct = pred is not None and pred == normalize_number(it.answer)
        rows.append({"id": it.id, "answer": it.answer, "pred": pred, "output": o, "correct": correct})
    n = max(len(rows), 1)
    summary = {"exact_match": round(100.0 * sum(r["correct"] for r in rows) / n, 2), "n": len(rows)}
    return {**summary, "protocol": MGSM_PROTOCOL}, rows


# ----------------------------------------------------------------------------- scorers by kind

Scorer = Callable[
    [Engine, Sequence[Any], Any, Callable[[int], None] | None], tuple[dict[str, Any], list[dict[str, Any]]]
]


def _multiple_choice(
    engine: Engine, items: Sequence[Any], cfg: EvalConfig, progress: Callable[[int], None] | None
) -> Any:
    return score_mc(engine, items, cfg.batch_size, progress=progress)


def _generate(engine: Engine, items: Sequence[Any], cfg: EvalConfig, progress: Callable[[int], None] | None) -> Any:
    return score_mgsm(engine, items, cfg.benchmarks.mgsm_max_new_tokens, progress, cfg.seed)


SCORERS: dict[str, tuple[Scorer, Callable[[Sequence[Any]], int]]] = {
    "multiple_choice": (_multiple_choice, lambda items: sum(len(it.choices) for it in items)),
    "generate": (_generate, len),
}
"""``Benchmark.scorer`` -> (score ``(engine, items, EvalConfig, progress)``, progress total of ``items``)."""
