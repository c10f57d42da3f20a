"""``data.token_budget``: the three data-mix ablation presets build training sets of equal size in tokens."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bayling.config import load_config
from bayling.data import build
from bayling.data.config import DataConfig
from bayling.data.plan import split_mix
from bayling.errors import ConfigError
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[2]
ABLATION = {k: REPO / "configs" / "experiments" / f"ablation_{k}.yaml" for k in "abc"}


def _small(path: Path, tokenizer: Path) -> DataConfig:
    """The preset's data section on the shipped sample (CI has no FLORES), with a small budget."""
    return load_config(
        RunConfig,
        path,
        [
            "data.source=sample",
            "data.languages=[eng_Latn,zho_Hans,deu_Latn]",
            "data.split_by=auto",
            "data.heldout=20",
            "data.fewshot=8",
            "data.token_budget=40000",
            f"data.tokenizer={tokenizer}",
        ],
    ).data


@pytest.fixture(scope="module")
def ablation_builds(tiny_llama, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ablation")
    return {k: build(_small(p, tiny_llama), root / k, seed=0).out_dir for k, p in ABLATION.items()}


def test_ablation_mixes_have_equal_token_budgets(ablation_builds):
    stats = {k: json.loads((out / "stats.json").read_text()) for k, out in ablation_builds.items()}
    totals = {k: s["tokens"]["total"] for k, s in stats.items()}
    assert max(totals.values()) / min(totals.values()) < 1.03, totals
    assert all(abs(t - 40000) / 40000 < 0.03 for t in totals.values()), totals
    tasks = {k: set(s["tasks"]) for k, s in stats.items()}
    assert tasks == {
        "a": {"general", "pairs"},
        "b": {"general", "pairs", "interactive"},
        "c": {"general", "pairs", "interactive", "crosslingual"},
    }
    # each translation kind got its token share (within one example), the general part is the same in all three
    for s in stats.values():
        tb = s["token_budget"]
        for kind in ("pairs", "interactive", "crosslingual"):
            if kind in tb["planned"]:
                assert 0 <= tb["spent"][kind] - tb["planned"][kind] < 1500, (kind, tb)
        assert s["dropped"]["over_budget"] > 0  # over-generated, then cut to the budget
    general = {k: s["tokens"]["by_task"]["general"] for k, s in stats.items()}
    assert len(set(general.values())) == 1, general
    assert stats["a"]["tokens"]["by_task"]["pairs"] == pytest.approx(
        sum(stats["c"]["tokens"]["by_task"][t] for t in ("pairs", "interactive", "crosslingual")), rel=0.03
    )


def test_ablation_mixes_share_one_split(ablation_builds):
    files = [
        {n: (out / n).read_bytes() for n in ("heldout.jsonl", "fewshot.jsonl")} for out in ablation_builds.values()
    ]
    assert files[0] == files[1] == files[2] and files[0]["heldout.jsonl"]


def test_plain_pairs_are_one_translation_turn(ablation_builds):
    rows = [json.loads(x) for x in (ablation_builds["a"] / "train.jsonl").read_text().splitlines()]
    pairs = [r for r in rows if r["task"] == "pairs"]
    assert pairs and all(len(r["messages"]) == 2 and r["turns"] == ["translate"] for r in pairs)
    assert all("eng_Latn" in (r["src"], r["tgt"]) or "zho_Hans" in (r["src"], r["tgt"]) for r in pairs)  # pivots
    assert len(Counter((r["src"], r["tgt"]) for r in pairs)) == 6


def test_token_budget_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.token_budget counts tokens with data.tokenizer"):
        build(DataConfig(token_budget=1000), tmp_path / "a")
    with pytest.raises(ConfigError, match="data.token_budget and data.total"):
        build(DataConfig(token_budget=1000, total=10, tokenizer="x"), tmp_path / "b")


def test_general_shortfall_goes_to_translation_kinds_in_proportion():
    general, trans, shortfall = split_mix(
        1000, {"general_zho_Hans": 0.5, "pairs": 0.1, "interactive": 0.1, "crosslingual": 0.3}, Counter(zho_Hans=100)
    )
    assert general == {"zho_Hans": 100} and shortfall == 400
    assert trans == {"interactive": 180, "pairs": 180, "crosslingual": 540}
    assert sum(general.values()) + sum(trans.values()) == 1000
