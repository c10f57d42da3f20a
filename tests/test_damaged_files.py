"""Damaged model, run and metrics files: one line naming the file, never a traceback from deep inside a library,
and never a bug of bayling's blamed on a file that is fine (the CLI rows are in tests/cli/test_errors_table.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.errors import DataError, ModelError


def _embedded_gguf() -> Path | None:
    from bayling.models import _GEMMA_GGUF_NAME, cache_dir

    p = cache_dir() / "gguf" / _GEMMA_GGUF_NAME
    return p if p.is_file() else None


@pytest.mark.skipif(_embedded_gguf() is None, reason="the embedded GGUF is not assembled in the cache")
def test_the_real_gguf_passes_and_a_copy_cut_short_fails(tmp_path):
    from bayling.models import check_gguf

    real = _embedded_gguf()
    check_gguf(real)
    with real.open("rb") as f:
        head = f.read(64 << 20)  # the header and part of the tensors
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(head)
    with pytest.raises(ModelError) as e:
        check_gguf(cut)
    size = real.stat().st_size
    assert str(e.value) == (
        f"{cut}: truncated GGUF file ({64 << 20} bytes, its header describes {size}); download or export it again"
    )
    cut.write_bytes(head[:4096])  # inside the vocabulary of the header
    with pytest.raises(ModelError, match=r"truncated or damaged GGUF file \(its header ends early, 4096 bytes"):
        check_gguf(cut)


def test_a_model_directorys_json_files_are_checked_before_loading(tmp_path):
    from bayling.models import check_model

    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"tokenizer_config\.json: expected a JSON object, found a list of 2 items"):
        check_model(str(d))
    (d / "tokenizer_config.json").write_text("{}")
    assert check_model(str(d)) == "hf_dir"


def _metrics_dir(tmp_path: Path) -> Path:
    d = tmp_path / "eval"
    d.mkdir()
    metrics = {
        "name": "x",
        "testset": "heldout",
        "sentences_per_direction": 1,
        "directions": ["eng_Latn-deu_Latn"],
        "systems": {s: {"eng_Latn-deu_Latn": {"chrf": {"score": v, "signature": "s"}}} for s, v in [("tuned", 2.0)]},
        "prompts": {},
    }
    (d / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return d


def test_a_valid_metrics_file_is_reported(tmp_path):
    from bayling.evaluate.report import rebuild_report

    d = _metrics_dir(tmp_path)
    _, page = rebuild_report(d)
    assert Path(page).is_file()


def test_the_eval_stages_counts_and_rates_are_reported_and_a_bare_score_is_not(tmp_path):
    """Before: every metrics.json the eval stage writes (``n``, ``off_target``, ``copy`` are numbers) was refused
    by ``bayling eval report`` as damaged."""
    from bayling.evaluate.report import rebuild_report

    d = _metrics_dir(tmp_path)
    metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
    scores = metrics["systems"]["tuned"]["eng_Latn-deu_Latn"]
    scores |= {"n": 1, "off_target": 0.0, "unknown": None, "copy": 0.0, "seeds": {"0": {"chrf": {"score": 2.0}}}}
    (d / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    assert Path(rebuild_report(d)[1]).is_file()
    scores["chrf"] = 2.0
    (d / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    with pytest.raises(DataError, match=r"systems\.tuned\.eng_Latn-deu_Latn\.chrf: expected an object"):
        rebuild_report(d)
    scores["chrf"], scores["n"] = {"score": 2.0, "signature": "s"}, "one"
    (d / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    with pytest.raises(DataError, match=r"eng_Latn-deu_Latn\.n: expected a number"):
        rebuild_report(d)


def test_a_bug_on_a_valid_metrics_file_is_not_blamed_on_the_file(tmp_path, monkeypatch):
    """Before: any KeyError/TypeError/ValueError while rendering became 'not a metrics.json written by bayling'."""
    from bayling.evaluate import report

    d = _metrics_dir(tmp_path)

    def broken(*args, **kwargs):
        return {}["a bug of bayling's"]

    monkeypatch.setattr(report, "write_report", broken)
    with pytest.raises(KeyError, match="a bug of bayling's"):
        report.rebuild_report(d)


def test_flores_metadata_that_is_not_utf8_is_named(tmp_path):
    from bayling.evaluate.fewshot import _flores_articles

    (tmp_path / "metadata_devtest.tsv").write_bytes(b"URL\tdomain\nhttp://a\tx\nhttp://caf\xe9\tx\n")
    with pytest.raises(DataError, match=r"metadata_devtest\.tsv:3: not valid UTF-8 at byte 11 \(0xe9\)"):
        _flores_articles(tmp_path, "devtest")


def test_a_damaged_summary_is_an_error_not_an_empty_card(tmp_path):
    from bayling.card import _read_json

    (tmp_path / "summary.json").write_text('{"steps": 3,')
    with pytest.raises(DataError, match=r"summary\.json: invalid JSON"):
        _read_json(tmp_path / "summary.json")
    assert _read_json(tmp_path / "missing.json") == {}
