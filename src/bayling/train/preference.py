"""Stage 3: preference tuning on translation with TRL's DPO or CPO, pairs = reference vs model output.

ALMA-R (Xu et al., 2024, "Contrastive Preference Optimization") showed that after SFT a translation
model still prefers its own adequate-but-flawed outputs; training it to rank the reference above what it
actually writes closes part of the gap to GPT-4. We build those pairs cheaply: for the single-turn
translation requests of the training data, ``chosen`` is the reference and ``rejected`` the SFT model's
greedy answer (pairs where both are equal are dropped). CPO needs no reference model; DPO keeps a frozen
copy of the SFT adapter (TRL's ``ref`` adapter) as its reference.

``preference.pairs: sampled`` is the cheap offline variant of the reward stage (:mod:`bayling.train.grpo`): the SFT
model samples several answers per request through the bayling engine, the language-gated reward
(:mod:`bayling.train.reward`) ranks them, and the pair is (reference or best gated sample) over (an off-target or
copied sample, else the worst): the wrong-language answers the model actually writes are what it learns against.

Prompts reach TRL as conversations and the tokenizer's chat template is set to
:func:`bayling.chat.jinja_template`, so DPO/CPO see byte-for-byte the strings :func:`bayling.chat.render` makes.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from bayling.chat import ChatFormat, first_exchange, jinja_template
from bayling.digest import file_digest, fingerprint
from bayling.errors import DataError, require
from bayling.io import read_jsonl, write_json, write_jsonl
from bayling.resume import mark, marked
from bayling.train.args import common_args
from bayling.train.config import PreferenceConfig, TrainConfig
from bayling.train.distributed import check_launch, is_main_process, local_device, release_zero3_init
from bayling.train.model import generation_dtype, load_stage_output
from bayling.train.reward import RewardSpec, translation_requests, translation_rewards
from bayling.train.stage import clear_output, fit, last_checkpoint, save_output, stage_done

log = logging.getLogger(__name__)


def translation_prompts(data_file: Path, limit: int, seed: int) -> list[dict[str, Any]]:
    """``{"prompt": messages, "reference": str}`` for the first exchange of non-general training examples."""
    items = []
    for ex in read_jsonl(data_file):
        if ex.get("task") == "general":
            continue
        head = first_exchange(ex.get("messages", []))
        if head is None:
            continue
        items.append({"prompt": [m.to_dict() for m in head[:-1]], "reference": head[-1].content})
    random.Random(seed).shuffle(items)
    return items[:limit]


def _engine(
    model_path: Path, adapter: Path | None, chat_format: str, device: str, dtype: str, trust_remote_code: bool
) -> Any:
    from bayling.engines.hf import TransformersEngine

    return TransformersEngine(
        model_path,
        adapter=adapter,
        chat_format=chat_format,
        dtype=dtype,
        device=device,
        trust_remote_code=trust_remote_code,
    )


def build_pairs(
    items: list[dict[str, Any]],
    model_path: Path,
    adapter: Path | None,
    chat_format: str,
    device: str,
    max_new_tokens: int,
    dtype: str,
    trust_remote_code: bool = False,
) -> list[dict[str, Any]]:
    """Generate the SFT model's greedy answers and pair them with the references (identical ones dropped)."""
    from bayling.engines import GenerationParams

    engine = _engine(model_path, adapter, chat_format, device, dtype, trust_remote_code)
    outputs = engine.generate([it["prompt"] for it in items], GenerationParams(max_new_tokens=max_new_tokens))
    pairs = []
    for it, out in zip(items, outputs, strict=False):
        if out.strip() and out.strip() != it["reference"].strip():
            pairs.append({"prompt": it["prompt"], "chosen": it["reference"], "rejected": out})
    return pairs


def rank_samples(
    item: dict[str, Any], samples: list[str], chosen: str = "reference", spec: RewardSpec | None = None
) -> dict[str, Any] | None:
    """One pair from a request's samples, ranked by the gated reward (:func:`bayling.train.reward.translation_rewards`).

    Rejected: the first off-target or copied sample (or looping, with ``spec.gate_loops``), else the lowest-scoring
    one. Chosen: the reference, or with ``chosen="best"`` the best sample the gate lets through when it beats the
    rejected one (else the reference). None when nothing differs from the chosen answer. The pair keeps the rejected
    sample's verdicts (``rejected_off_target``, ``rejected_copy``, ``rejected_loop``) and both rewards, for the
    stage summary.
    """
    samples = [s for s in samples if s.strip()]
    if not samples:
        return None
    n = len(samples)
    rewards = translation_rewards(samples, [item["reference"]] * n, [item["source"]] * n, [item["tgt"]] * n, spec)
    order = sorted(range(n), key=lambda i: (rewards[i].value, rewards[i].chrf))  # worst first, deterministic
    bad = next((i for i in range(n) if rewards[i].gated), order[0])
    best = order[-1]
    use_best = chosen == "best" and not rewards[best].gated and rewards[best].value > rewards[bad].value
    chosen_text = samples[best] if use_best else item["reference"]
    if samples[bad].strip() == chosen_text.strip():
        return None
    return {
        "prompt": item["prompt"],
        "chosen": chosen_text,
        "rejected": samples[bad],
        "chosen_reward": rewards[best].value if use_best else 1.0,
        "rejected_reward": rewards[bad].value,
        "rejected_off_target": rewards[bad].off_target,
        "rejected_copy": rewards[bad].copy,
        "rejected_loop": rewards[bad].loop,
    }


def sample_pairs(
    items: list[dict[str, Any]],
    model_path: Path,
    adapter: Path | None,
    chat_format: str,
    device: str,
    pc: PreferenceConfig,
    dtype: str,
    seed: int,
    trust_remote_code: bool = False,
) -> list[dict[str, Any]]:
    """The offline variant of the reward stage: ``pc.samples`` sampled answers per request, ranked into pairs
    by the gated reward (:func:`rank_samples`)."""
    from bayling.engines import GenerationParams

    engine = _engine(model_path, adapter, chat_format, device, dtype, trust_remote_code)
    params = GenerationParams(max_new_tokens=pc.max_new_tokens, temperature=pc.temperature, seed=seed)
    flat = engine.generate([it["prompt"] for it in items for _ in range(pc.samples)], params)
    spec = RewardSpec(gate_loops=pc.gate_loops)
    pairs = []
    for k, it in enumerate(items):
        pair = rank_samples(it, flat[k * pc.samples : (k + 1) * pc.samples], pc.chosen, spec)
        if pair is not None:
            pairs.append(pair)
    return pairs


def read_pairs(path: Path) -> list[dict[str, Any]]:
    from bayling.validate import chat_messages

    pairs = []
    for n, obj in enumerate(read_jsonl(path), 1):
        ok = isinstance(obj.get("prompt"), list) and all(isinstance(obj.get(k), str) for k in ("chosen", "rejected"))
        if not ok:
            raise DataError(f"{path}:{n}: expected 'prompt' (a messages list) and 'chosen'/'rejected' strings")
        chat_messages({"messages": obj["prompt"]}, f"{path}:{n}: prompt")  # role/content of every turn
        pairs.append(obj)
    if not pairs:
        raise DataError(f"{path}: no preference pairs")
    return pairs


def _conversational(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "prompt": p["prompt"],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in pairs
    ]


def run_preference(
    cfg: TrainConfig,
    base: Path,
    tokenizer: Any,
    fmt: ChatFormat,
    data_file: Path,
    sft_output: Path,
    stage_dir: Path,
    output: Path,
    device: str,
    seed: int,
    sft_fp: str = "",
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Tune the SFT result on preference pairs; writes ``output`` (same kind as the SFT output).

    ``sft_fp`` is the SFT stage's fingerprint: new SFT weights redo the pairs and the tuning.
    """
    trl = require("trl", "train")
    datasets = require("datasets", "train")
    pc = cfg.preference
    fp = fingerprint(
        cfg.preference, name="preference", sft=sft_fp, data=file_digest(data_file), seed=seed, chat_format=fmt.name
    )
    done = stage_done(stage_dir, output, fp)
    if done:
        return done
    clear_output(output)
    pairs_file = stage_dir / "pairs.jsonl"
    pairs_fp = stage_dir / "pairs.fingerprint"
    if pc.data:
        pairs = read_pairs(Path(pc.data))
    elif pairs_file.is_file() and marked(pairs_fp, fp) is not None:
        pairs = read_pairs(pairs_file)  # generation is the slow part: reuse it on resume
    else:
        sampled = pc.pairs == "sampled"
        if sampled:
            items = translation_requests(data_file, pc.max_pairs, seed, pc.targets)
        else:
            items = translation_prompts(data_file, pc.max_pairs, seed)
        if not items:
            into = f" into {', '.join(pc.targets)}" if sampled and pc.targets else ""
            raise DataError(f"{data_file}: no single-turn translation example{into} to build preference pairs from")
        is_full = (sft_output / "config.json").is_file()
        model_path, adapter = (sft_output, None) if is_full else (base, sft_output)
        dev = local_device(device)  # every rank generates on its own GPU
        dtype = generation_dtype(cfg.bf16, dev)
        if sampled:
            pairs = sample_pairs(items, model_path, adapter, fmt.name, dev, pc, dtype, seed, trust_remote_code)
        else:
            pairs = build_pairs(items, model_path, adapter, fmt.name, dev, pc.max_new_tokens, dtype, trust_remote_code)
        if not pairs:
            raise DataError("every model output equals its reference: nothing to prefer")
        if is_main_process():
            write_jsonl(pairs_file, pairs)
            mark(pairs_fp, fp)

    tokenizer.chat_template = jinja_template(fmt)  # TRL renders through it: the one prompt format (set by train())
    args = preference_args(cfg, stage_dir, device, seed)  # before the model: ZeRO-3 partitions it as it loads
    model = load_stage_output(
        sft_output, base, cfg.method, cfg.bf16, device, cfg.attn_implementation, trust_remote_code
    )
    dataset = datasets.Dataset.from_list(_conversational(pairs))
    if pc.method == "dpo":
        trainer = trl.DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    else:
        from trl.experimental.cpo import CPOTrainer

        trainer = CPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    resume = last_checkpoint(stage_dir, fp, cfg.resume)
    summary = fit(trainer, pc.method, resume)
    peft_model = trainer.model
    if hasattr(peft_model, "peft_config") and "ref" in peft_model.peft_config:
        peft_model.delete_adapter("ref")  # DPO's frozen reference copy is not part of the result
    save_output(trainer, tokenizer, output, base, cfg.method)
    release_zero3_init()
    last = next((h for h in reversed(summary["log_history"]) if "rewards/accuracies" in h), {})
    summary.update(
        method=pc.method,
        pair_source="file" if pc.data else pc.pairs,
        pairs=len(pairs),
        rejected_off_target=sum(bool(p.get("rejected_off_target")) for p in pairs),
        rejected_copy=sum(bool(p.get("rejected_copy")) for p in pairs),
        rejected_loop=sum(bool(p.get("rejected_loop")) for p in pairs),
        pairs_file=str(pc.data or pairs_file),
        fingerprint=fp,
        final_reward_accuracy=last.get("rewards/accuracies"),
        final_reward_margin=last.get("rewards/margins"),
    )
    if is_main_process():
        write_json(stage_dir / "summary.json", summary)
    return summary


def preference_args(cfg: TrainConfig, stage_dir: Path, device: str, seed: int) -> Any:
    """The ``DPOConfig`` / ``CPOConfig`` of the preference stage (shared fields from :func:`common_args`)."""
    trl = require("trl", "train")
    pc = cfg.preference
    shared = common_args(
        cfg,
        stage_dir,
        device=device,
        seed=seed,
        batch_size=pc.batch_size,
        learning_rate=pc.learning_rate,
        epochs=pc.epochs,
        max_steps=pc.max_steps,
        count_tokens=pc.method == "dpo",
    )
    if pc.method == "dpo":
        return check_launch(trl.DPOConfig(**shared, beta=pc.beta, max_length=cfg.max_length))
    from trl.experimental.cpo import CPOConfig

    return check_launch(CPOConfig(**shared, beta=pc.beta, cpo_alpha=pc.cpo_alpha, max_length=cfg.max_length))


def preference_margin(model: Any, tokenizer: Any, fmt: ChatFormat, pairs: list[dict[str, Any]]) -> float:
    """Mean ``log p(chosen) - log p(rejected)`` (summed over reply tokens) under ``model``; for tests and reports."""
    torch = require("torch", "train")
    from bayling.chat import tokenize_conversation

    margins = []
    device = next(model.parameters()).device
    for p in pairs:
        scores = []
        for reply in (p["chosen"], p["rejected"]):
            row = tokenize_conversation(p["prompt"] + [{"role": "assistant", "content": reply}], fmt, tokenizer)
            ids = torch.tensor([row["input_ids"]], device=device)
            mask = torch.tensor(row["assistant_masks"][1:], device=device, dtype=torch.bool)
            with torch.no_grad():
                logp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
            tok_logp = logp.gather(-1, ids[0, 1:, None])[:, 0]
            scores.append(float(tok_logp[mask].sum()))
        margins.append(scores[0] - scores[1])
    return sum(margins) / len(margins)


__all__ = [
    "build_pairs",
    "preference_args",
    "preference_margin",
    "rank_samples",
    "read_pairs",
    "run_preference",
    "sample_pairs",
    "translation_prompts",
]
