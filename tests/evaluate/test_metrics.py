"""sacreBLEU objects per target language, per-sentence scores, and the optional COMET extra."""

from __future__ import annotations

import importlib.util

import pytest

from bayling.errors import MissingDependencyError
from bayling.evaluate.metrics import corpus_scores, sentence_bleu, sentence_chrf


@pytest.mark.parametrize(
    ("tgt", "tok"),
    [("zh", "tok:zh"), ("ja", "tok:ja-mecab"), ("ko", "tok:ko-mecab"), ("de", "tok:13a"), ("hin_Deva", "tok:13a")],
)
def test_bleu_tokenizer_follows_the_target_language(tgt, tok):
    s = corpus_scores(["今天 天气 很好"], ["今天天气很好"], tgt, ("bleu", "chrf", "ter"))
    assert tok in s["bleu"]["signature"] and "nw:2" in s["chrf"]["signature"] and "tok:tercom" in s["ter"]["signature"]


def test_chinese_tokenizer_ignores_spacing_but_13a_does_not():
    assert corpus_scores(["今天 天气 很好 。"], ["今天天气很好。"], "zh", ("bleu",))["bleu"]["score"] == 100.0
    assert corpus_scores(["今天 天气 很好 。"], ["今天天气很好。"], "de", ("bleu",))["bleu"]["score"] < 100.0


def test_sentence_scores():
    hyps, refs = ["The cat sat on the mat.", "Completely different"], ["The cat sat on the mat.", "A dog ran away."]
    assert sentence_bleu(hyps, refs, "en") == [100.0, 0.0]
    chrf = sentence_chrf(hyps, refs)
    assert chrf[0] == 100.0 and 0 <= chrf[1] < 20


@pytest.mark.skipif(importlib.util.find_spec("comet") is not None, reason="unbabel-comet is installed")
def test_comet_without_the_extra_names_it(tmp_path):
    from bayling.evaluate.translation import score_direction
    from bayling.testsets import Bitext

    b = Bitext("t", "eng_Latn", "deu_Latn", ["Hello."], ["Hallo."], ["1"])
    with pytest.raises(MissingDependencyError, match=r"bayling\[comet\]"):
        score_direction(b, ["Hallo."], ("bleu",), off_target=False, comet_model=str(tmp_path / "model.ckpt"))
