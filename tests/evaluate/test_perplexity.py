"""Log-likelihood of held-out text: the numbers, the windows for long texts, lm-eval's rolling
log-likelihood, and the ``eval.perplexity.languages`` part end to end (metrics.json, cache)."""

from __future__ import annotations

import json
import math

import pytest

from bayling.evaluate.config import EvalConfig, PerplexityConfig, TranslationConfig
from bayling.evaluate.perplexity import _windows, perplexity_summary, text_loglikelihoods
from bayling.evaluate.stage import evaluate, pipeline_systems
from bayling.models import ModelConfig

TEXTS = [
    "The weather is nice today.",
    "今天天气很好。我们明天早上九点在火车站见面。",
    "Make it more formal. Can you make it shorter?",
]


def _independent(engine, text):
    import torch

    tok = engine.tokenizer
    ids = [tok.bos_token_id] + tok.encode(text, add_special_tokens=False)
    with torch.inference_mode():
        lp = torch.log_softmax(engine.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    return float(sum(lp[i, ids[i + 1]] for i in range(len(ids) - 1))), len(ids) - 1


def test_text_loglikelihood_is_raw_text_after_bos(tiny_engine):
    got = text_loglikelihoods(tiny_engine, TEXTS, batch_size=2)
    for (ll, n), text in zip(got, TEXTS, strict=True):
        exp_ll, exp_n = _independent(tiny_engine, text)
        assert n == exp_n and ll == pytest.approx(exp_ll, abs=1e-4)


def test_summary_arithmetic():
    s = perplexity_summary(["ab", "日本"], [(-3.0, 2), (-5.0, 2)])
    assert s["nll_per_token"] == 2.0 and s["perplexity"] == pytest.approx(math.exp(2.0), abs=1e-3)
    assert s["chars"] == 4 and s["bytes"] == 8 and s["nll_per_char"] == 2.0 and s["nll_per_byte"] == 1.0
    assert s["bits_per_byte"] == pytest.approx(1 / math.log(2), abs=1e-4) and s["tokens"] == 4 and s["n"] == 2


def test_windows_cover_every_token_once_within_the_model_length():
    ids = list(range(100, 123))
    wins = _windows(ids, 1, 8)
    assert [t for _, cont in wins for t in cont] == ids
    assert all(len(ctx) + len(cont) <= 9 and ctx for ctx, cont in wins)
    assert wins[0][0] == [1] and wins[1][0][-1] == ids[7]  # each window continues right after the previous


def test_long_text_matches_lm_eval_loglikelihood_rolling(tiny_llama, tiny_engine):
    """Over the model length (512) the text is scored in windows exactly as lm-eval's rolling windows.

    The fixture's tokenizer does not add BOS, so lm-eval's ``loglikelihood_rolling`` (which encodes the
    text with the tokenizer's special tokens and then prepends the prefix token) scores the same tokens;
    for a BOS-adding tokenizer lm-eval would also score a second BOS after the prefix BOS, which we do not.
    """
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance

    from bayling.evaluate.lmeval_parity import lmeval_model

    texts = [TEXTS[0], " ".join(["Hello world! How are you?"] * 150)]
    n_tokens = len(tiny_engine.tokenizer.encode(texts[1]))
    assert n_tokens > 600
    lm = lmeval_model(tiny_llama, batch_size=2)
    theirs = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(texts)])
    ours = text_loglikelihoods(tiny_engine, texts, batch_size=2)
    assert [ll for ll, _ in ours] == pytest.approx(theirs, abs=1e-4)
    assert ours[1][1] == n_tokens


def test_eval_part_writes_metrics_per_system_and_caches(tiny_llama, tmp_path, monkeypatch):
    held = tmp_path / "heldout.jsonl"
    held.write_text(
        "".join(
            json.dumps({"id": f"h{i}", "eng_Latn": en, "zho_Hans": zh}, ensure_ascii=False) + "\n"
            for i, (en, zh) in enumerate(
                [(TEXTS[0], "今天天气很好。"), (TEXTS[2], "我们明天见面。"), ("Hi.", "你好。")]
            )
        ),
        encoding="utf-8",
    )
    cfg = EvalConfig(
        max_sentences=2,
        report=False,
        translation=TranslationConfig(directions=[]),
        perplexity=PerplexityConfig(languages=["en", "zho_Hans"]),
    )
    model = ModelConfig(name_or_path=str(tiny_llama), dtype="float32", device="cpu")
    m = evaluate(
        cfg,
        model,
        pipeline_systems(model, None, cfg.compare_base, cfg.base_prompts),
        tmp_path / "eval",
        heldout_file=held,
    ).metrics
    en = m["perplexity"]["base-fewshot"]["eng_Latn"]
    assert set(m["perplexity"]["base-fewshot"]) == {"eng_Latn", "zho_Hans"} and en["n"] == 2
    assert en["chars"] == len(TEXTS[0]) + len(TEXTS[2]) and en["tokens"] > 0
    assert en["perplexity"] == pytest.approx(math.exp(en["nll_per_token"]), rel=1e-3)
    assert en["nll_per_token"] > 0 and m["perplexity"]["base-fewshot"]["zho_Hans"]["bytes"] == len(
        "今天天气很好。我们明天见面。".encode()
    )
    rows = (tmp_path / "eval" / "base-fewshot" / "perplexity" / "eng_Latn.jsonl").read_text().splitlines()
    assert len(rows) == 2 and json.loads(rows[0])["loglik"] < 0

    def no_engine(*a, **k):
        raise AssertionError("cached perplexity must not load a model")

    monkeypatch.setattr("bayling.evaluate.stage.make_engine", no_engine)
    again = evaluate(
        cfg,
        model,
        pipeline_systems(model, None, cfg.compare_base, cfg.base_prompts),
        tmp_path / "eval",
        heldout_file=held,
    ).metrics
    assert again["perplexity"] == m["perplexity"]
