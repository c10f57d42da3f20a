"""``data.budget_by``: the translation budget split across target languages by what the base lacks."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from bayling.data import build
from bayling.data.config import DataConfig
from bayling.data.plan import (
    allocate,
    budgets_by_need,
    direction_weights,
    need_language,
    need_weights,
    read_need_file,
)
from bayling.errors import ConfigError, DataError


def test_allocate_sums_exactly_and_is_deterministic():
    rng = random.Random(0)
    for _ in range(300):
        weights = {f"l{i}": rng.choice([0.0, rng.random(), 1.0]) for i in range(rng.randint(1, 9))}
        weights["l0"] = weights["l0"] or 0.5
        total = rng.randint(0, 10**6)
        out = allocate(total, weights)
        assert sum(out.values()) == total and out == allocate(total, dict(reversed(weights.items())))
        norm = sum(weights.values())
        assert all(abs(n - total * weights[k] / norm) < 1 for k, n in out.items())
    assert allocate(10, {"b": 1, "a": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}  # ties: the earlier code
    with pytest.raises(ConfigError):
        allocate(10, {"a": 0.0})


def test_need_weights_per_measure():
    assert need_weights("off_target", {"jav_Latn": 90.0, "heb_Hebr": 20.0, "eng_Latn": 0.0}, 0.2) == pytest.approx(
        {"jav_Latn": 1.1, "heb_Hebr": 0.4, "eng_Latn": 0.2}
    )
    assert need_weights("chrf", {"jav_Latn": 10.0, "eng_Latn": 50.0}, 0.1) == pytest.approx(
        {"jav_Latn": 0.9, "eng_Latn": 0.1}
    )
    assert need_weights("fertility", {"asm_Beng": 3.0, "jav_Latn": 2.0, "eng_Latn": 1.0}, 0.0) == pytest.approx(
        {"asm_Beng": 1.0, "jav_Latn": 0.5, "eng_Latn": 0.0}
    )
    assert need_weights("even", {"a": 5.0, "b": 1.0}, 0.3) == {"a": 1.0, "b": 1.0}
    split = budgets_by_need(
        {"interactive": 1001, "crosslingual": 50}, {"jav_Latn": 1.1, "eng_Latn": 0.2}, ("interactive", "pairs")
    )
    assert split == {"interactive:eng_Latn": 154, "interactive:jav_Latn": 847}
    dirs = [("eng_Latn", "jav_Latn"), ("zho_Hans", "jav_Latn"), ("jav_Latn", "eng_Latn")]
    assert direction_weights(dirs, {"jav_Latn": 1.0, "eng_Latn": 0.2}) == [0.5, 0.5, 0.2]
    # with pivots, X->en spends X's share: jav's weight is shared by all three of its directions
    assert direction_weights(dirs, {"jav_Latn": 0.9}, ["eng_Latn", "zho_Hans"]) == pytest.approx([0.3, 0.3, 0.3])


def test_a_direction_into_a_pivot_spends_its_source_share():
    pivots = ["eng_Latn", "zho_Hans"]
    assert need_language("eng_Latn", "jav_Latn", pivots) == "jav_Latn"
    assert need_language("jav_Latn", "eng_Latn", pivots) == "jav_Latn"
    assert need_language("eng_Latn", "zho_Hans", pivots) == "zho_Hans"  # pivot to pivot: its target
    assert need_language("jav_Latn", "eng_Latn") == "eng_Latn"  # no pivots: always the target


def test_need_file_layouts(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"jav_Latn": 80, "heb_Hebr": 10}))
    scores = tmp_path / "scores.json"
    scores.write_text(
        json.dumps(
            {
                "eng_Latn-jav_Latn": {"chrf": {"score": 20.0}, "off_target": 90.0},
                "zho_Hans-jav_Latn": {"chrf": {"score": 10.0}, "off_target": 70.0},
                "jav_Latn-eng_Latn": {"chrf": {"score": 40.0}, "off_target": 0.0},
            }
        )
    )
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"systems": {"tuned": {}, "base-fewshot": json.loads(scores.read_text())}}))
    assert read_need_file(str(plain), "off_target", ["jav_Latn"]) == {"jav_Latn": 80.0}
    assert read_need_file(str(scores), "off_target", ["eng_Latn", "jav_Latn"]) == {"eng_Latn": 0.0, "jav_Latn": 80.0}
    assert read_need_file(str(metrics), "chrf", ["jav_Latn"]) == {"jav_Latn": 15.0}
    with pytest.raises(DataError, match="heb_Hebr"):
        read_need_file(str(scores), "chrf", ["heb_Hebr"])


def _cfg(tokenizer: Path, **kw) -> DataConfig:
    return DataConfig(
        languages=["eng_Latn", "zho_Hans", "deu_Latn"],
        heldout=6,
        token_budget=20000,
        mix={"interactive": 0.7, "pairs": 0.3},
        tokenizer=str(tokenizer),
        **kw,
    )


@pytest.fixture(scope="module")
def need_builds(tiny_llama, tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("need")
    need = root / "need.json"
    need.write_text(json.dumps({"eng_Latn": 0.0, "zho_Hans": 80.0, "deu_Latn": 30.0}))
    cfgs = {
        "even": _cfg(tiny_llama),
        "off_target": _cfg(tiny_llama, budget_by="off_target", need_file=str(need)),
        "off_target_again": _cfg(tiny_llama, budget_by="off_target", need_file=str(need)),
        "fertility": _cfg(tiny_llama, budget_by="fertility"),
    }
    return {k: {"out": (out := build(c, root / k, 0).out_dir), **json.loads((out / "stats.json").read_text())}
            for k, c in cfgs.items()}  # fmt: skip


def _tokens_by_language(build_dir: Path, tokenizer: Path) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Translation tokens per budget language (the target, or the source of a direction into a pivot), and
    examples per direction."""
    from bayling.data.stats import TokenCounter

    counter = TokenCounter(str(tokenizer))
    out: Counter[str] = Counter()
    directions: Counter[tuple[str, str]] = Counter()
    for line in (build_dir / "train.jsonl").read_text(encoding="utf-8").splitlines():
        ex = json.loads(line)
        if ex["task"] in ("interactive", "pairs"):
            lang = need_language(ex["src"], ex["tgt"], ["eng_Latn", "zho_Hans"])
            out[lang] += sum(counter.count([m["content"] for m in ex["messages"]]))
            directions[ex["src"], ex["tgt"]] += 1
    return out, directions


def test_by_need_split_sums_to_each_kind_budget_and_follows_the_need(need_builds, tiny_llama):
    tb = need_builds["off_target"]["token_budget"]
    assert tb["budget_by"] == "off_target"
    assert tb["need_weights"] == pytest.approx({"eng_Latn": 0.2, "zho_Hans": 1.0, "deu_Latn": 0.5})
    for kind in ("interactive", "pairs"):
        per_lang = {k: v for k, v in tb["planned"].items() if k.startswith(kind + ":")}
        assert len(per_lang) == 3 and sum(per_lang.values()) == tb["planned"][kind]
        for key, planned in per_lang.items():  # each language filled to its share (within an example or two)
            assert 0 <= tb["spent"][key] - planned < 400, (key, planned, tb["spent"][key])
    even, _ = _tokens_by_language(need_builds["even"]["out"], tiny_llama)
    need, directions = _tokens_by_language(need_builds["off_target"]["out"], tiny_llama)
    assert need["zho_Hans"] > need["deu_Latn"] > need["eng_Latn"]
    assert need["zho_Hans"] > 1.5 * even["zho_Hans"]
    total = sum(need.values())  # each language's share of the tokens follows its weight (0.2 : 1.0 : 0.5)
    for lang, weight in {"eng_Latn": 0.2, "zho_Hans": 1.0, "deu_Latn": 0.5}.items():
        assert need[lang] / total == pytest.approx(weight / 1.7, abs=0.05), (lang, need)
    # the same total: only where it goes changes
    assert sum(need.values()) == pytest.approx(sum(even.values()), rel=0.05)
    # deu's share covers its directions out of the pivots and into them alike: de->en is not starved
    deu = [directions[d] for d in directions if "deu_Latn" in d]
    assert len(deu) == 4 and min(deu) >= 2, directions


def test_by_need_build_is_deterministic(need_builds):
    a, b = need_builds["off_target"]["out"], need_builds["off_target_again"]["out"]
    assert (a / "train.jsonl").read_bytes() == (b / "train.jsonl").read_bytes()


def test_fertility_needs_no_model_run(need_builds):
    tb = need_builds["fertility"]["token_budget"]
    weights = tb["need_weights"]
    assert weights["eng_Latn"] == pytest.approx(0.2)  # English pays no premium over itself: the floor only
    assert max(weights.values()) == pytest.approx(1.2)  # the finest-split language: floor + 1
    assert sum(v for k, v in tb["planned"].items() if k.startswith("interactive:")) == tb["planned"]["interactive"]


def test_budget_by_config_errors(tmp_path, tiny_llama):
    with pytest.raises(ConfigError, match="token_budget"):
        build(DataConfig(budget_by="fertility"), tmp_path / "a")
    with pytest.raises(ConfigError, match="need_file"):
        build(_cfg(tiny_llama, budget_by="chrf"), tmp_path / "b")
    with pytest.raises(ConfigError, match="budget_by"):
        build(_cfg(tiny_llama, budget_by="sometimes"), tmp_path / "c")
