"""Δ (tuned - baseline) is taken against the few-shot base whenever one is scored, whatever the order of
``eval.base_prompts``: the chat-prompted base model is the weak baseline and would flatter the tuned model."""

from __future__ import annotations

import itertools

import pytest

from bayling.evaluate.config import baseline_system
from bayling.evaluate.stage import comparison_table


@pytest.mark.parametrize("order", list(itertools.permutations(["base-chat", "base-fewshot", "tuned"])))
def test_the_few_shot_base_is_the_baseline_in_any_order(order):
    assert baseline_system(order) == "base-fewshot"
    scores = {"base-chat": 10.0, "base-fewshot": 30.0, "tuned": 35.0}
    metrics = {
        "testset": "heldout",
        "sentences_per_direction": 1,
        "directions": ["eng_Latn-deu_Latn"],
        "systems": {s: {"eng_Latn-deu_Latn": {"chrf": {"score": scores[s]}}} for s in order},
    }
    _, markdown = comparison_table(metrics, ["chrf"])
    assert "Δ = tuned - base-fewshot" in markdown
    assert markdown.splitlines()[2].endswith("| +5.0 |")


@pytest.mark.parametrize(
    ("names", "baseline"),
    [
        (["tuned", "base"], "base"),
        (["base", "base-fewshot", "tuned"], "base-fewshot"),
        (["base-chat", "tuned"], "base-chat"),
        (["tuned", "base-zeta", "base-alpha"], "base-alpha"),
        (["tuned", "other"], None),
    ],
)
def test_without_a_few_shot_base(names, baseline):
    assert baseline_system(names) == baseline
    assert baseline_system(reversed(names)) == baseline
