"""The reward stages: the language-gated reward, the requests it is computed on, GRPO and the sampled pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import PreferenceConfig, RewardConfig, TrainConfig
from bayling.train.grpo import reward_requests
from bayling.train.reward import RewardSpec, translation_requests, translation_rewards

ENG = "The children went to the market with their grandmother this morning to buy vegetables and fruit."
JAV = "Bocah-bocah padha lunga menyang pasar karo mbahe esuk iki kanggo tuku sayuran lan woh-wohan."
JAV_CLOSE = "Bocah-bocah lunga menyang pasar karo mbahne esuk mau arep tuku sayur lan woh-wohan."
IND = "Anak-anak pergi ke pasar bersama nenek mereka pagi ini untuk membeli sayur dan buah-buahan."


def test_gate_zeroes_wrong_language_and_copies_and_pays_chrf_otherwise():
    import sacrebleu

    hyps = [JAV_CLOSE, IND, ENG, ENG[:60], ""]
    rewards = translation_rewards(hyps, [JAV] * 5, [ENG] * 5, ["jav_Latn"] * 5)
    good, indonesian, copy, half_copy, empty = rewards
    expected = sacrebleu.CHRF(word_order=2).sentence_score(JAV_CLOSE, [JAV]).score
    assert not good.gated and good.value == pytest.approx(expected / 100, abs=1e-5) and 0.3 < good.value < 0.9
    assert indonesian.off_target and not indonesian.copy and indonesian.value == 0.0 and indonesian.chrf > 15
    assert copy.copy and copy.value == 0.0 and copy.chrf > 10  # the metric alone would pay a copy
    assert half_copy.copy and half_copy.value == 0.0  # a copy cut short by the token limit
    assert empty.value == 0.0


def test_length_penalty_costs_log_ratio():
    plain, penalised = (
        translation_rewards([JAV + " " + JAV], [JAV], [ENG], ["jav_Latn"], RewardSpec(length_penalty=lp))[0]
        for lp in (0.0, 0.1)
    )
    assert plain.length_ratio == pytest.approx(2.0, abs=0.02)
    assert plain.value - penalised.value == pytest.approx(0.1 * math.log(plain.length_ratio), abs=1e-4)


# outputs of the DPO-tuned Gemma-3-270M into Yoruba (runs of bench/results/rec_offline_e3.json): language ID says
# Yoruba, so the language gate pays them their chrF++
YOR_LOOP = "Ogunle bi jẹ́ ti ógun ti ógun ti ógun ti ógun ti ógun ti ógun ti ógun ti ógun ti ógun ti ógun ti ógun ti"
YOR_SRC = "Over four million people went to Rome to attend the funeral."
YOR_REF = "Ó kọjá èyan milionu mẹ́rin tó lọsí Romu fún ìsìnkú náà."


def test_loop_gate_zeroes_a_loop_that_passes_language_id_and_only_when_asked():
    plain, gated = (
        translation_rewards([YOR_LOOP], [YOR_REF], [YOR_SRC], ["yor_Latn"], RewardSpec(gate_loops=g))[0]
        for g in (False, True)
    )
    assert not plain.off_target and not plain.gated and plain.value > 0.03  # the metric pays the loop
    assert gated.loop and gated.gated and gated.value == 0.0 and gated.chrf == plain.chrf
    good = translation_rewards([JAV_CLOSE], [JAV], [ENG], ["jav_Latn"], RewardSpec(gate_loops=True))[0]
    assert not good.loop and good.value > 0.3  # a sentence is not a loop


def test_sampled_pairs_reject_a_loop_first_with_the_loop_gate():
    from bayling.train.preference import rank_samples

    item = {"prompt": [{"role": "user", "content": "x"}], "reference": YOR_REF, "source": YOR_SRC, "tgt": "yor_Latn"}
    stuck = YOR_REF + " náà" * 30  # a good start, then one word over and over ("Omo nawo nawo nawo ...")
    short = "Ó lọ sí Romu."
    # without the gate the loop out-scores the short answer: it is the "best" sample and the short one is rejected
    plain = rank_samples(item, [stuck, short], chosen="best")
    assert (plain["chosen"], plain["rejected"]) == (stuck, short)
    pair = rank_samples(item, [stuck, short], chosen="best", spec=RewardSpec(gate_loops=True))
    assert (pair["chosen"], pair["rejected"]) == (short, stuck) and pair["rejected_loop"]
    assert not pair["rejected_off_target"] and not pair["rejected_copy"]


def test_reward_gate_is_the_evaluations_rule_on_flores(shared_data_dir):
    """On FLORES sentences: a reward is 0 exactly where the evaluation counts off-target or copy."""
    from bayling.lid import copy_flags, off_target_rates

    devtest = shared_data_dir / "flores200" / "devtest"
    if not devtest.is_dir():
        pytest.skip("no FLORES-200 devtest")
    read = lambda code: (devtest / f"{code}.devtest").read_text(encoding="utf-8").splitlines()[:12]  # noqa: E731
    eng, jav, ind, asm = read("eng_Latn"), read("jav_Latn"), read("ind_Latn"), read("asm_Beng")
    for tgt, refs, wrong in (("jav_Latn", jav, ind), ("asm_Beng", asm, eng)):
        hyps = refs + wrong + eng
        rewards = translation_rewards(hyps, refs * 3, eng * 3, [tgt] * len(hyps))
        _, verdicts = off_target_rates(hyps, tgt)
        copies = copy_flags(hyps, eng * 3)
        assert [r.value == 0 for r in rewards] == [v.off or c for v, c in zip(verdicts, copies, strict=True)]
        assert all(r.value == 1.0 for r in rewards[:12])  # the reference itself
        assert sum(r.off_target for r in rewards[12:24]) >= 9, tgt  # Indonesian for Javanese, English for Assamese
        assert all(r.copy for r in rewards[24:])  # the English source


def test_requests_are_first_translation_exchanges_of_training_records(translation_data):
    items = translation_requests(translation_data, 1000, seed=0)
    rows = [json.loads(x) for x in translation_data.read_text(encoding="utf-8").splitlines()]
    opened = [r for r in rows if r["turns"][0] in ("translate", "translate_constrained")]
    assert len(items) == len(opened) >= 20
    heldout = [json.loads(x) for x in (translation_data.parent / "heldout.jsonl").read_text().splitlines()]
    held_texts = {v for rec in heldout for k, v in rec.items() if k != "id" and isinstance(v, str)}
    for it in items:
        assert it["source"] in it["prompt"][-1]["content"] and it["source"] != it["reference"]
        assert it["source"] not in held_texts and it["reference"] not in held_texts
        match = [r for r in opened if r["messages"][: len(it["prompt"])] == it["prompt"]]
        assert match and match[0]["messages"][len(it["prompt"])]["content"] == it["reference"]
        assert (match[0]["src"], match[0]["tgt"]) == (it["src"], it["tgt"])
    assert translation_requests(translation_data, 5, seed=0) == items[:5]
    assert translation_requests(translation_data, 1000, seed=1) != items


def test_requests_into_targets_keep_the_shuffled_order_and_the_limit(translation_data):
    """GRPO and the offline variant draw the same requests into the failing languages: the full shuffle, filtered."""
    items = translation_requests(translation_data, 1000, seed=0)
    tgts = sorted({it["tgt"] for it in items})
    assert len(tgts) >= 2
    into = translation_requests(translation_data, 1000, seed=0, targets=[tgts[0]])
    assert into == [it for it in items if it["tgt"] == tgts[0]] and 0 < len(into) < len(items)
    assert translation_requests(translation_data, 2, seed=0, targets=[tgts[0]]) == into[:2]
    cfg = TrainConfig(reward=RewardConfig(targets=[tgts[0]], max_prompts=2))
    assert reward_requests(cfg, translation_data, 0) == into[:2]


def test_requests_drop_records_of_the_heldout_file(translation_data, tmp_path):
    """A training file that (wrongly) contains a held-out record's text gives no request from it."""
    items = translation_requests(translation_data, 1000, seed=0)
    data = tmp_path / "train.jsonl"
    data.write_bytes(translation_data.read_bytes())
    leaked = items[0]
    (tmp_path / "heldout.jsonl").write_text(json.dumps({"id": "x", "a": leaked["reference"]}) + "\n")
    again = translation_requests(data, 1000, seed=0)
    assert len(again) < len(items) and all(it["reference"] != leaked["reference"] for it in again)


def _adapter(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "adapter_model.safetensors")


def _sft(**kw) -> TrainConfig:
    return TrainConfig(
        method="lora",
        learning_rate=5e-3,
        max_steps=2,
        batch_size=4,
        bf16=False,
        logging_steps=1,
        report_to=[],
        warmup_ratio=0.0,
        **kw,
    )


def test_grpo_stage_trains_the_sft_adapter_one_step(tiny_llama, translation_data, tmp_path):
    cfg = _sft(
        reward=RewardConfig(
            method="grpo", max_prompts=4, num_generations=4, prompts_per_step=2, max_new_tokens=8, max_steps=1,
            learning_rate=5e-2, beta=0.04,
        )
    )  # fmt: skip
    result = train(cfg, ModelConfig(str(tiny_llama), device="cpu"), translation_data, tmp_path, seed=1)
    sft, final = _adapter(tmp_path / "sft" / "output"), _adapter(result.final)
    assert result.final == tmp_path / "final" and sft.keys() == final.keys()  # one adapter, no "ref" copy
    assert any(not torch.equal(sft[k], final[k]) for k in sft)
    stage = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["stages"]["reward"]
    assert stage["method"] == "grpo" and stage["steps"] == 1 and stage["prompts"] == 4
    assert 0 <= stage["first_reward_off_target"] <= 1 and stage["first_reward"] is not None


def test_grpo_completions_end_at_the_chat_formats_stop_token(tiny_llama, tiny_tokenizer, translation_data, tmp_path):
    from transformers import AutoModelForCausalLM

    from bayling.chat import format_for_tokenizer
    from bayling.train.grpo import build_grpo_trainer, grpo_args

    fmt = format_for_tokenizer("auto", tiny_tokenizer)
    cfg = _sft(reward=RewardConfig(method="grpo"))
    items = translation_requests(translation_data, 4, 0)
    trainer = build_grpo_trainer(
        AutoModelForCausalLM.from_pretrained(tiny_llama), tiny_tokenizer, fmt, items, RewardSpec(),
        grpo_args(cfg, tmp_path, "cpu", 0),
    )  # fmt: skip
    turn_end = tiny_tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert turn_end != tiny_tokenizer.eos_token_id
    assert turn_end in trainer.eos_token_ids and turn_end in trainer.generation_config.eos_token_id


def test_sampled_pairs_reject_off_target_samples_first():
    from bayling.train.preference import rank_samples

    item = {"prompt": [{"role": "user", "content": "x"}], "reference": JAV, "source": ENG, "tgt": "jav_Latn"}
    pair = rank_samples(item, [JAV_CLOSE, IND, JAV_CLOSE + " lan liya-liyane"])
    assert pair["chosen"] == JAV and pair["rejected"] == IND and pair["rejected_off_target"]
    best = rank_samples(item, [JAV_CLOSE, IND, JAV_CLOSE + " lan liya-liyane"], chosen="best")
    assert best["chosen"] == JAV_CLOSE and best["rejected"] == IND  # the best sample the gate lets through
    worst = rank_samples(item, [JAV_CLOSE, JAV_CLOSE[:40]], chosen="reference")
    assert worst["rejected"] == JAV_CLOSE[:40] and not worst["rejected_off_target"]  # no gated one: the worst
    assert rank_samples(item, [JAV]) is None  # nothing to prefer


def test_sampled_preference_stage_runs_one_step_and_changes_the_adapter(tiny_llama, translation_data, tmp_path):
    tgt = translation_requests(translation_data, 1, 1)[0]["tgt"]
    cfg = _sft(
        preference=PreferenceConfig(
            method="dpo", pairs="sampled", samples=3, temperature=1.0, max_pairs=4, max_new_tokens=8, max_steps=1,
            learning_rate=5e-2, batch_size=2, targets=[tgt],
        )
    )  # fmt: skip
    result = train(cfg, ModelConfig(str(tiny_llama), device="cpu"), translation_data, tmp_path, seed=1)
    sft, final = _adapter(tmp_path / "sft" / "output"), _adapter(result.final)
    assert sft.keys() == final.keys() and any(not torch.equal(sft[k], final[k]) for k in sft)
    pairs = [json.loads(x) for x in (tmp_path / "preference" / "pairs.jsonl").read_text().splitlines()]
    requests = {json.dumps(it["prompt"]): it for it in translation_requests(translation_data, 4, 1, [tgt])}
    assert 1 <= len(pairs) <= 4
    for p in pairs:
        assert requests[json.dumps(p["prompt"])]["reference"] == p["chosen"] and p["rejected"] != p["chosen"]
    stage = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["stages"]["preference"]
    assert stage["pair_source"] == "sampled" and stage["steps"] == 1 and stage["pairs"] == len(pairs)


RECOMMENDED = Path(__file__).resolve().parents[2] / "configs" / "experiments" / "alignment_reward_draft.yaml"


def test_recommended_preset_is_sft_plus_reward_with_budget_by_need_and_runs_on_the_tiny_model(tiny_llama, tmp_path):
    from bayling.cli import main
    from bayling.config import load_config
    from bayling.pipeline import RunConfig

    header = RECOMMENDED.read_text(encoding="utf-8").split("\nname:")[0]
    assert header.startswith("# A DRAFT") and "NOT YET MEASURED" in header  # never presented as the measured best
    cfg = load_config(RunConfig, RECOMMENDED)
    assert cfg.train.reward.method == "grpo" and cfg.train.preference.method == "none"
    assert cfg.data.budget_by != "even" and cfg.data.token_budget and cfg.eval.max_sentences >= 50
    assert {"jav_Latn", "asm_Beng", "yor_Latn", "heb_Hebr"} <= set(cfg.train.reward.targets)
    run_dir = tmp_path / "rec"
    overrides = [
        f"run_dir={run_dir}", f"model.name_or_path={tiny_llama}", "model.dtype=float32", "data.source=sample",
        "data.languages=[eng_Latn,zho_Hans,deu_Latn]", "data.split_by=auto", "data.heldout=6", "data.fewshot=4",
        "data.token_budget=6000", f"data.tokenizer={tiny_llama}", "data.instructions=[sample]", "train.max_steps=2",
        "train.save_steps=0", "train.report_to=[]", "train.reward.targets=[zho_Hans,deu_Latn]",
        "train.reward.max_steps=1", "train.reward.max_prompts=4", "train.reward.max_new_tokens=6",
        "stages=[data,train]",
    ]  # fmt: skip
    assert main(["run", str(RECOMMENDED), *overrides]) == 0
    stats = json.loads((run_dir / "data" / "stats.json").read_text())
    assert stats["token_budget"]["budget_by"] == "fertility" and stats["token_budget"]["need_weights"]
    summary = json.loads((run_dir / "train" / "summary.json").read_text())
    assert summary["stages"]["reward"]["steps"] == 1 and set(summary["stages"]["reward"]["targets"]) <= {
        "zho_Hans",
        "deu_Latn",
    }
    # the eval stage scores the SFT result beside the final one, and compares the two (what the reward stage did)
    evaluate = [o for o in overrides if not o.startswith("stages=")] + [
        "stages=[data,train,eval]", "eval.max_sentences=2", "eval.max_new_tokens=6", "eval.base_prompts=[fewshot]",
        "eval.translation.languages=[zho_Hans]", "eval.translation.fewshot_seeds=[0]", "eval.perplexity.languages=[]",
        "eval.report=false",
    ]  # fmt: skip
    assert main(["run", str(RECOMMENDED), *evaluate]) == 0
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert {"base-fewshot", "tuned", "tuned-sft"} <= set(metrics["systems"])
    stages = metrics["significance_stages"]
    assert (stages["system"], stages["baseline"]) == ("tuned", "tuned-sft")
    assert set(stages["directions"]) == set(metrics["directions"]) == {"eng_Latn-zho_Hans", "zho_Hans-eng_Latn"}


@pytest.mark.parametrize(
    ("section", "match"),
    [
        (dict(reward=RewardConfig(method="ppo")), "train.reward.method"),
        (dict(reward=RewardConfig(method="grpo", num_generations=1)), "num_generations"),
        (dict(reward=RewardConfig(method="grpo", length_penalty=-1)), "length_penalty"),
        (dict(reward=RewardConfig(method="grpo", targets=["klingon"])), "klingon"),
        (dict(preference=PreferenceConfig(method="dpo", pairs="beam")), "train.preference.pairs"),
        (dict(preference=PreferenceConfig(method="dpo", pairs="sampled", temperature=0)), "temperature"),
        (dict(preference=PreferenceConfig(method="dpo", chosen="worst")), "train.preference.chosen"),
        (dict(preference=PreferenceConfig(method="dpo", targets=["jav_Latn"])), "would be ignored"),
        (dict(preference=PreferenceConfig(method="dpo", pairs="sampled", targets=["klingon"])), "klingon"),
    ],
)
def test_reward_config_errors_name_the_key(section, match):
    from bayling.errors import BaylingError

    with pytest.raises(BaylingError, match=match):
        TrainConfig(**section)
    assert TrainConfig(reward=RewardConfig(method="grpo", targets=["jv", "heb_Hebr"])).reward.targets == [
        "jav_Latn",
        "heb_Hebr",
    ]
