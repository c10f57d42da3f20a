"""Golden check: BayLing-13B's released WMT22 outputs rescored with sacreBLEU reproduce the published numbers.

BayLing released hypotheses but no scoring code; recomputing with sacreBLEU 2.x against WMT22
reference A (``-tok zh`` for Chinese targets, 13a otherwise) gives zh-en 20.1, en-zh 37.9, de-en 27.4,
en-de 25.6. Reference B gives different numbers (zh-en 15.2), so this also pins the reference choice.
"""

from __future__ import annotations

import json

import pytest

from bayling.cli import main
from bayling.testsets import load_wmt22, wmt22_files

GOLDEN = {"zh-en": 20.1, "en-zh": 37.9, "de-en": 27.4, "en-de": 25.6}


@pytest.mark.parametrize("pair", list(GOLDEN))
def test_bayling13b_wmt22_bleu_reproduces(shared_data_dir, pair, capsys):
    hyp = shared_data_dir / "bayling" / "wmt22_hypotheses" / "bayling-13b" / f"{pair}.hypo"
    src, tgt = pair.split("-")
    _, ref = wmt22_files(shared_data_dir / "wmt22", src, tgt)
    assert ref.name.endswith(f".ref.A.{tgt}")
    argv = ["eval", "score", "--hyp", str(hyp), "--ref", str(ref), "--tgt-lang", tgt, "--json", "--metrics", "bleu"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["bleu"]["score"] == pytest.approx(GOLDEN[pair], abs=0.1)
    assert res["n"] == len(hyp.read_text(encoding="utf-8").splitlines())
    assert f"tok:{'zh' if tgt == 'zh' else '13a'}" in res["bleu"]["signature"]


def test_model_output_path_scores_like_the_file_path(shared_data_dir, tmp_path):
    """`bayling eval` scores model outputs through Bitext + score_direction; it must agree with `eval score`."""
    from bayling.evaluate.metrics import score_files
    from bayling.evaluate.translation import score_direction
    from bayling.validate import read_lines

    (b,) = load_wmt22(shared_data_dir / "wmt22", [("en", "zh")])
    b = b.head(300)
    hyps = read_lines(shared_data_dir / "bayling" / "wmt22_hypotheses" / "bayling-13b" / "en-zh.hypo")[:300]
    scores, rows = score_direction(b, hyps, ("bleu", "chrf"), off_target=True)
    (tmp_path / "h").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "r").write_text("\n".join(b.refs) + "\n", encoding="utf-8")
    files = score_files(str(tmp_path / "h"), [str(tmp_path / "r")], "zh", ("bleu", "chrf"))
    assert scores["bleu"] == {**files["bleu"], "bp": scores["bleu"]["bp"]} and scores["chrf"] == files["chrf"]
    assert "nw:2" in scores["chrf"]["signature"]  # chrF++, not chrF
    assert len(rows) == 300 and {"chrf", "bleu", "off_target"} <= set(rows[0])
    assert scores["off_target"] < 5  # BayLing's Chinese output is Chinese


def test_score_rejects_misaligned_files(tmp_path, capsys):
    (tmp_path / "h").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "r").write_text("a\n", encoding="utf-8")
    assert main(["eval", "score", "--hyp", str(tmp_path / "h"), "--ref", str(tmp_path / "r"), "--tgt-lang", "de"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'r'}:2:" in err and "1 reference lines but 2 hypothesis lines" in err
