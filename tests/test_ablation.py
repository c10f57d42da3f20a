"""``bayling run``'s ablation stage on the tiny Llama: arms as child runs on the run's split, what they reuse,
and the one table comparing them with the few-shot base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.ablation import arm_config, check
from bayling.cli import main
from bayling.config import load_config
from bayling.errors import ConfigError
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
ARMS = (
    "ablation.arms={lr: {train.learning_rate: 0.03}, "
    "dpo: {train.preference.method: dpo, train.preference: {max_pairs: 4, max_new_tokens: 6, max_steps: 2, learning_rate: 0.01}}}"
)


def _overrides(tiny_llama: Path, run_dir: Path, tiny_data) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"model.name_or_path={tiny_llama}",
        "model.dtype=float32",
        *tiny_data(heldout=6, interactive=24, crosslingual=12, general=4),
        "train.max_steps=3",
        "train.batch_size=2",
        "train.learning_rate=0.01",
        "train.save_steps=0",
        "train.report_to=[]",
        "eval.max_sentences=3",
        "eval.max_new_tokens=6",
        "eval.translation.fewshot_seeds=[0,1]",
        "eval.perplexity.languages=[]",
        ARMS,
    ]


@pytest.fixture(scope="module")
def ablated(tiny_llama, tmp_path_factory, tiny_data):
    run_dir = tmp_path_factory.mktemp("ablation") / "tiny"
    args = ["run", str(QUICKSTART), *_overrides(tiny_llama, run_dir, tiny_data), "stages=[data,train,eval,ablation]"]
    assert main(args) == 0
    return run_dir


def test_every_arm_runs_on_the_runs_split_and_the_table_compares_them(ablated):
    table = json.loads((ablated / "ablation" / "ablation.json").read_text())
    assert list(table["arms"]) == ["sft", "lr", "dpo"]
    assert table["arms"]["lr"]["run"] == str(ablated / "ablation" / "lr")
    assert table["base"]["run"] == str(ablated) and table["base"]["seeds"] == [0, 1]
    assert table["overrides"]["lr"] == {"train.learning_rate": 0.03}
    # the arms were scored on the run's held-out sentences (the table refuses other ones)
    heldout = (ablated / "data" / "heldout.jsonl").read_bytes()
    for arm in ("lr", "dpo"):
        assert (ablated / "ablation" / arm / "data" / "heldout.jsonl").read_bytes() == heldout
    last = table["rows"][-1]
    assert last["group"].startswith("all ") and last["directions"] == len(table["directions"]) >= 4
    for arm in ("sft", "lr", "dpo"):
        iv = last[arm]["delta"]
        assert iv["low"] <= iv["delta"] <= iv["high"]
        assert 0 <= last[arm]["chrf"] <= 100
    md = (ablated / "ablation" / "ablation.md").read_text()
    assert "Δ (dpo) [95 % CI]" in md and "sentences per direction" in md
    assert "<h2>Ablation</h2>" in (ablated / "eval" / "report.html").read_text()


def test_an_arm_reuses_the_runs_data_and_sft_and_retrains_what_it_changes(ablated):
    parent_sft = json.loads((ablated / "train" / "sft" / "summary.json").read_text())
    # dpo keeps the run's training settings: its SFT is the run's (copied, not retrained), then DPO ran on it
    dpo = json.loads((ablated / "ablation" / "dpo" / "train" / "summary.json").read_text())
    assert dpo["stages"]["sft"]["fingerprint"] == parent_sft["fingerprint"]
    assert dpo["stages"]["sft"]["seconds"] == parent_sft["seconds"]  # the same summary: no second SFT
    assert dpo["stages"]["preference"]["steps"] == 2
    from safetensors.torch import load_file

    sft = load_file(str(ablated / "ablation" / "dpo" / "train" / "sft" / "output" / "adapter_model.safetensors"))
    run = load_file(str(ablated / "train" / "final" / "adapter_model.safetensors"))
    after = load_file(str(ablated / "ablation" / "dpo" / "train" / "final" / "adapter_model.safetensors"))
    assert all((sft[k] == run[k]).all() for k in run)
    assert any(not (after[k] == sft[k]).all() for k in sft)  # DPO changed the adapter
    # lr changes SFT itself: retrained on the same (copied) data, to another adapter
    lr = json.loads((ablated / "ablation" / "lr" / "train" / "summary.json").read_text())
    assert lr["fingerprint"] != parent_sft["fingerprint"] and lr["steps"] == 3
    assert (ablated / "ablation" / "lr" / "data" / "train.jsonl").read_bytes() == (
        ablated / "data" / "train.jsonl"
    ).read_bytes()
    # the arms' evaluations read the run's base passes instead of decoding them again
    metrics = json.loads((ablated / "ablation" / "lr" / "eval" / "metrics.json").read_text())
    base = json.loads((ablated / "eval" / "metrics.json").read_text())
    assert metrics["systems"]["base-fewshot"] == base["systems"]["base-fewshot"]
    assert metrics.get("reused"), "the base's passes were decoded again"


def test_a_second_run_is_cached_and_a_cut_off_ablation_resumes_at_its_arms(ablated, tiny_llama, tiny_data, capsys):
    args = ["run", str(QUICKSTART), *_overrides(tiny_llama, ablated, tiny_data), "stages=[data,train,eval,ablation]"]
    stamp = (ablated / "ablation" / "_stage.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (ablated / "ablation" / "_stage.json").stat().st_mtime_ns == stamp
    assert "ablation: up to date (cached)" in capsys.readouterr().err
    # as if killed before the table: every arm's finished stages are kept, only the table is made again
    arm_stamps = {a: (ablated / "ablation" / a / "train" / "_stage.json").stat().st_mtime_ns for a in ("lr", "dpo")}
    (ablated / "ablation" / "_stage.json").unlink()
    (ablated / "ablation" / "ablation.json").unlink()
    assert main(args) == 0
    assert (ablated / "ablation" / "ablation.json").is_file()
    for a, t in arm_stamps.items():
        assert (ablated / "ablation" / a / "train" / "_stage.json").stat().st_mtime_ns == t, a


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "ablation.arms={x: {train.lerning_rate: 0.1}}",
            r"ablation.arms.x: .*unknown config key 'train.lerning_rate'",
        ),
        ("ablation.arms={x: {stages: [data]}}", r"ablation.arms.x: stages is set by the ablation"),
        ("ablation.arms={sft: {train.learning_rate: 0.1}}", r"ablation.arms.sft: the name is the run's own model's"),
        ("ablation.arms={}", r"the ablation stage has no arms"),
        ("ablation.arms={x: {data.languages: [eng_Latn]}}", r"eval\..*zho_Hans is not in data.languages"),
    ],
)
def test_bad_arms_fail_before_any_work(override, expected, tmp_path, capsys):
    run_dir = tmp_path / "r"
    args = ["run", str(QUICKSTART), f"run_dir={run_dir}", override, "stages=[data,train,eval,ablation]"]
    assert main(args) != 0
    assert not (run_dir / "data").exists()
    import re

    assert re.search(expected, capsys.readouterr().err), capsys.readouterr()


def test_an_arm_merges_a_section_instead_of_replacing_it():
    cfg = load_config(
        RunConfig,
        QUICKSTART,
        ["train.preference.beta=0.3", "ablation.arms={d: {train.preference: {method: dpo}}}"],
    )
    arm = arm_config(cfg, "d")
    assert arm.train.preference.method == "dpo" and arm.train.preference.beta == 0.3  # the run's beta kept
    assert arm.eval.reuse_from[0] == str(cfg.resolved_run_dir())
    assert arm.resolved_run_dir() == cfg.resolved_run_dir() / "ablation" / "d" and arm.stages == [
        "data",
        "train",
        "eval",
    ]


def test_the_ablation_needs_the_fewshot_base():
    cfg = load_config(RunConfig, QUICKSTART, ["eval.compare_base=false", "ablation.arms={x: {seed: 1}}"])
    with pytest.raises(ConfigError, match="few-shot base"):
        check(cfg)


def test_the_recommended_preset_names_its_ablation():
    """The recipe is SFT (budget split evenly) + GRPO gated by language, copies and loops; its ablation is SFT
    alone, the offline variant instead of GRPO, and the budget by need: the alignment issue's ablation, one stage
    away."""
    cfg = load_config(RunConfig, REPO / "configs" / "experiments" / "alignment_recommended_60min.yaml")
    assert "ablation" not in cfg.stages  # the 60-minute run stays the run; the ablation is asked for
    assert cfg.train.reward.method == "grpo" and cfg.train.reward.gate_loops and cfg.ablation.baseline == "sft+grpo"
    arms = dict(zip(cfg.ablation.arms, check(cfg), strict=True))
    assert set(arms) == {"sft", "offline", "need"}
    assert arms["sft"].train.reward.method == arms["offline"].train.reward.method == "none"
    assert arms["need"].train.reward.method == "grpo" and arms["need"].data.budget_by == "fertility"
    assert arms["offline"].train.preference.pairs == "sampled" and arms["offline"].train.preference.gate_loops
    assert arms["sft"].train.preference.method == "none" and arms["sft"].data.budget_by == "even"
    assert cfg.data.budget_by == "even"
    for arm in arms.values():  # everything else is the run's
        assert arm.train.learning_rate == cfg.train.learning_rate and arm.eval.max_sentences == cfg.eval.max_sentences


def test_a_copied_sft_adapter_goes_where_the_arms_sft_sub_stage_looks(tmp_path):
    """train/final when SFT is the last sub-stage, train/sft/output when a stage follows it or when a LoRA on a
    continued-pre-trained base is merged afterwards (the orchestrator's own rule, not a second copy of it)."""
    from bayling.train.config import CptConfig, PreferenceConfig, RewardConfig, TrainConfig
    from bayling.train.orchestrator import stage_outputs

    out = tmp_path / "train"
    assert stage_outputs(TrainConfig(), out) == {"sft": out / "final"}
    assert stage_outputs(TrainConfig(reward=RewardConfig(method="grpo")), out) == {
        "sft": out / "sft" / "output",
        "reward": out / "final",
    }
    pref = TrainConfig(preference=PreferenceConfig(method="dpo"), reward=RewardConfig(method="grpo"))
    assert list(stage_outputs(pref, out)) == ["sft", "preference", "reward"]
    assert stage_outputs(TrainConfig(cpt=CptConfig(data="mono.txt")), out) == {"sft": out / "sft" / "output"}
    assert stage_outputs(TrainConfig(method="full", cpt=CptConfig(data="mono.txt")), out) == {"sft": out / "final"}
