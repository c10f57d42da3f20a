"""Off-target detection on FLORES-200 itself: references pass, English output is caught, for all 204 languages."""

from __future__ import annotations

from bayling.evaluate.lid import is_target_language, majority_script, off_target_rate
from bayling.evaluate.testsets import read_flores_columns
from bayling.languages import languages


def test_all_flores_languages(shared_data_dir):
    codes = [lang.code for lang in languages()]
    cols = read_flores_columns(shared_data_dir / "flores200", codes)
    refs_flagged = {c: off_target_rate(cols[c][:20], c) for c in codes}
    assert max(refs_flagged.values()) <= 25, {c: v for c, v in refs_flagged.items() if v > 25}
    assert sum(refs_flagged.values()) / len(codes) < 1.0
    english = cols["eng_Latn"][:20]
    caught = {c: off_target_rate(english, c, "eng_Latn") for c in codes if c != "eng_Latn"}
    assert min(caught.values()) >= 90, {c: v for c, v in caught.items() if v < 90}


def test_rules():
    assert majority_script("Hi 世界世界") == "CJK" and majority_script("123 !") is None
    assert not is_target_language("", "deu_Latn")  # an empty output is not German
    assert is_target_language("42", "zho_Hans")  # nothing contradicts the target
    assert not is_target_language("Der Zug fährt morgen um neun Uhr ab.", "fra_Latn")
    assert is_target_language("Der Zug fährt morgen um neun Uhr ab.", "deu_Latn")
    # a language py3langid does not know (Acehnese in Arabic script) is still checked by script and for copies
    assert not is_target_language("The train leaves tomorrow at nine o'clock in the morning.", "ace_Arab")
