"""Scores equal sacreBLEU's own, with no shared data: golden tuples (from sacreBLEU's test suite, and pinned
once from the ``sacrebleu`` CLI 2.x), the FLORES-200 protocol (spBLEU through a SentencePiece model trained
here, compared with the sacreBLEU CLI), BLEU not applicable on unspaced scripts, and the model's download."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bayling.cli import main
from bayling.errors import ConfigError, DataError
from bayling.evaluate.metrics import bleu_tokenizer, corpus_scores, sacrebleu_spm_path, score_files, sentence_chrf

# sacreBLEU's README example (test/test_bleu.py): two references per segment
HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
ZH_HYPS = ["今天天气不错，我们去公园走走吧。", "他在北京大学读计算机。"]
ZH_REFS = ["今天天气很好，我们去公园散步吧。", "他在北京大学学习计算机科学。"]


def _files(tmp_path: Path, hyps: list[str], *refs: list[str]) -> tuple[str, list[str]]:
    (tmp_path / "hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    names = []
    for i, r in enumerate(refs):
        (tmp_path / f"ref{i}").write_text("\n".join(r) + "\n", encoding="utf-8")
        names.append(str(tmp_path / f"ref{i}"))
    return str(tmp_path / "hyp"), names


@pytest.mark.parametrize(
    ("tokenize", "bleu", "chrf"),
    [("wmt", 48.53, 59.15), ("13a", 48.53, 59.15), ("intl", 43.92, 59.15), ("none", 49.19, 59.15)],
)
def test_multi_reference_golden(tmp_path, tokenize, bleu, chrf):
    # BLEU: sacreBLEU's test_corpus_bleu (48.530827, intl 43.91623493, none 49.1919566); chrF++: its CLI
    hyp, refs = _files(tmp_path, HYPS, *REFS)
    res = score_files(hyp, refs, "en", ("bleu", "chrf"), bleu_tokenize=tokenize)
    assert (res["bleu"]["score"], res["chrf"]["score"]) == (bleu, chrf)
    assert res["bleu"]["signature"].startswith("nrefs:2|case:mixed|eff:no|tok:") and "nw:2" in res["chrf"]["signature"]


@pytest.mark.parametrize(
    ("hyps", "refs", "tgt", "bleu", "chrf", "tok"),
    [
        (HYPS, REFS[0], "eng_Latn", 45.07, 51.73, "tok:13a"),
        (ZH_HYPS, ZH_REFS, "zho_Hans", 48.05, 33.64, "tok:zh"),  # `sacrebleu -tok zh` (13a gives 0.0 here)
    ],
)
def test_single_reference_golden(hyps, refs, tgt, bleu, chrf, tok):
    res = corpus_scores(hyps, refs, tgt, ("bleu", "chrf"))
    assert (res["bleu"]["score"], res["chrf"]["score"]) == (bleu, chrf) and tok in res["bleu"]["signature"]


def test_sentence_chrf_golden():
    # sacreBLEU's test_sentence_level_chrf sentence; chrF++ (nw:2) from its CLI
    hyp = "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře."
    ref = "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."
    assert sentence_chrf([hyp], [ref]) == [40.38]


def test_cli_score_prints_golden_numbers(tmp_path, capsys):
    hyp, refs = _files(tmp_path, HYPS, *REFS)
    assert main(["eval", "score", "--hyp", hyp, "--ref", refs[0], "--ref", refs[1], "--tgt-lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "bleu         48.53  nrefs:2|case:mixed|eff:no|tok:13a" in out and "chrf         59.15" in out


# --- unspaced scripts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tgt", ["tha_Thai", "lao_Laoo", "khm_Khmr", "mya_Mymr", "bod_Tibt", "yue_Hant"])
def test_unspaced_targets_get_no_13a_bleu(tgt, monkeypatch, tmp_path):
    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))  # no SentencePiece model here
    res = corpus_scores(["กขค งจ"], ["กขคงจ"], tgt, ("bleu", "chrf"))
    assert (
        res["bleu"]["score"] is None and "without spaces" in res["bleu"]["reason"] and "signature" not in res["bleu"]
    )
    assert res["chrf"]["score"] > 0 and "nw:2" in res["chrf"]["signature"]
    assert bleu_tokenizer(tgt, "wmt") == (None, res["bleu"]["reason"])


@pytest.mark.parametrize(
    ("tgt", "tok"), [("zho_Hans", "zh"), ("zho_Hant", "zh"), ("jpn_Jpan", "ja-mecab"), ("kor_Hang", "ko-mecab")]
)
def test_language_tokenizers_stay(tgt, tok, monkeypatch, tmp_path):
    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))
    assert bleu_tokenizer(tgt, "auto") == (tok, "")
    (tmp_path / "models").mkdir()
    sacrebleu_spm_path().write_bytes(b"x")  # even with spBLEU available
    assert bleu_tokenizer(tgt, "auto", sacrebleu_spm_path()) == (tok, "")


def test_unknown_or_missing_tokenizer_settings_fail(tmp_path):
    with pytest.raises(ConfigError, match="eval.translation.bleu_tokenize: unknown 'spm200'"):
        bleu_tokenizer("de", "spm200")
    with pytest.raises(ConfigError, match="needs the FLORES-200 SentencePiece model"):
        bleu_tokenizer("de", "flores200", None)
    from bayling.evaluate.metrics import spm_model_path

    with pytest.raises(ConfigError, match="eval.translation.spm_model"):
        spm_model_path(str(tmp_path / "none.model"))


# --- spBLEU with a SentencePiece model trained here ------------------------------------------------------

CORPUS = [
    "วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนสาธารณะกันเถอะ",
    "เขาเรียนวิทยาการคอมพิวเตอร์ที่มหาวิทยาลัย",
    "รถไฟไปกรุงเทพออกเวลาเก้าโมงเช้าพรุ่งนี้",
    "The weather is very nice today, let us walk in the park.",
    "Das Wetter ist heute sehr schön, lass uns im Park spazieren gehen.",
    "He studies computer science at the university.",
] * 10
TH_HYPS = ["วันนี้อากาศดีมาก เราไปเดินที่สวนกัน", "เขาเรียนคอมพิวเตอร์ที่มหาวิทยาลัย"]
TH_REFS = ["วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนสาธารณะกันเถอะ", "เขาเรียนวิทยาการคอมพิวเตอร์ที่มหาวิทยาลัย"]


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Path:
    import sentencepiece

    buf = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=buf,
        vocab_size=120,
        character_coverage=1.0,
        hard_vocab_limit=False,
    )
    path = tmp_path_factory.mktemp("spm") / "tiny_flores200.model"
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def sacrebleu_dir(tmp_path, monkeypatch) -> Path:
    """A sacreBLEU cache of our own (sacreBLEU reads ``$SACREBLEU`` once, at import)."""
    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))
    return tmp_path / "sacrebleu"


def _sacrebleu_cli(sacrebleu_dir: Path, hyps: list[str], refs: list[str], tmp_path: Path) -> dict:
    hyp, (ref,) = _files(tmp_path, hyps, refs)
    env = {**os.environ, "SACREBLEU": str(sacrebleu_dir)}
    cmd = [sys.executable, "-m", "sacrebleu", ref, "-i", hyp, "-m", "bleu", "-tok", "flores200", "-w", "4"]
    return json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)


def test_spbleu_equals_the_sacrebleu_cli(spm_model, sacrebleu_dir, tmp_path):
    cache = sacrebleu_spm_path()
    assert cache == sacrebleu_dir / "models" / "flores200sacrebleuspm"  # where sacreBLEU itself looks
    cache.parent.mkdir(parents=True)
    cache.write_bytes(spm_model.read_bytes())
    hyp, refs = _files(tmp_path, TH_HYPS, TH_REFS)
    ours = score_files(hyp, refs, "tha_Thai", ("bleu", "chrf"))  # found in sacreBLEU's cache, no setting
    assert "tok:flores200" in ours["bleu"]["signature"]
    cli = _sacrebleu_cli(sacrebleu_dir, TH_HYPS, TH_REFS, tmp_path)
    assert ours["bleu"]["score"] == round(cli["score"], 2) and cli["tok"] == "flores200"
    assert 0 < ours["bleu"]["score"] < 100
    # auto: spBLEU for every target without a language tokenizer; wmt: 13a stays for spaced scripts
    de = (["Das Wetter ist schön."], ["Das Wetter ist heute schön."], "deu_Latn", ("bleu",))
    assert "tok:flores200" in corpus_scores(*de, "auto", cache)["bleu"]["signature"]
    assert "tok:13a" in corpus_scores(*de, "wmt", cache)["bleu"]["signature"]


def test_spbleu_from_a_configured_path_equals_sacrebleus_own(spm_model, sacrebleu_dir):
    from bayling.evaluate.metrics import sentence_bleu

    configured = corpus_scores(TH_HYPS, TH_REFS, "tha_Thai", ("bleu",), "auto", spm_model)
    assert not sacrebleu_spm_path().exists()  # read from the configured path: nothing downloaded or written
    sacrebleu_spm_path().parent.mkdir(parents=True)
    sacrebleu_spm_path().write_bytes(spm_model.read_bytes())
    own = corpus_scores(TH_HYPS, TH_REFS, "tha_Thai", ("bleu",), "auto", sacrebleu_spm_path())
    assert configured == own and "tok:flores200" in own["bleu"]["signature"]
    assert sentence_bleu(TH_HYPS, TH_REFS, "tha_Thai", "auto", spm_model) == sentence_bleu(
        TH_HYPS, TH_REFS, "tha_Thai", "auto", sacrebleu_spm_path()
    )


def test_eval_run_reports_spbleu_and_na_with_signatures(tiny_llama, spm_model, tmp_path):
    from dataclasses import replace

    from bayling.evaluate.config import EvalConfig, TranslationConfig
    from bayling.evaluate.stage import evaluate
    from bayling.evaluate.systems import System
    from bayling.models import ModelConfig

    rows = [{"id": f"s{i}", "eng_Latn": f"Sentence {i}.", "tha_Thai": f"{TH_REFS[i % 2]} {i}"} for i in range(6)]
    data = tmp_path / "th.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    model, systems = ModelConfig(dtype="float32", device="cpu"), {"base": System("base", str(tiny_llama))}
    common = dict(testset=str(data), max_sentences=3, max_new_tokens=3)
    tr = TranslationConfig(directions=["en-th", "th-en"], fewshot_k=2)
    m = evaluate(
        EvalConfig(**common, translation=replace(tr, spm_model=str(spm_model))), model, systems, tmp_path / "sp"
    ).metrics
    assert "tok:flores200" in m["systems"]["base"]["eng_Latn-tha_Thai"]["bleu"]["signature"]
    tr_wmt = replace(tr, spm_model=None, bleu_tokenize="wmt")
    m = evaluate(EvalConfig(**common, translation=tr_wmt), model, systems, tmp_path / "na").metrics
    th = m["systems"]["base"]["eng_Latn-tha_Thai"]
    assert th["bleu"]["score"] is None and th["chrf"]["signature"].startswith("nrefs:1")
    assert "tok:13a" in m["systems"]["base"]["tha_Thai-eng_Latn"]["bleu"]["signature"]
    table = (tmp_path / "na" / "table.md").read_text(encoding="utf-8")
    assert "| eng_Latn-tha_Thai | n/a |" in table and "n/a: no BLEU for a script written without spaces" in table
    assert ">n/a<" in (tmp_path / "na" / "report.html").read_text(encoding="utf-8")


# --- bayling eval download flores200-spm, against a server on 127.0.0.1 -----------------------------------


class _Server:
    """Serves ``/model`` behind a redirect (as sacreBLEU's tinyurl does) and ``/junk``."""

    def __init__(self, model: bytes):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/flores200sacrebleuspm":
                    self.send_response(302)
                    self.send_header("Location", "/real/flores200_sacrebleu_tokenizer_spm.model")
                    self.end_headers()
                    return
                body = model if self.path.startswith("/real/") else b"<html>not a model</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


def test_download_flores200_spm_to_sacrebleus_cache(spm_model, sacrebleu_dir, monkeypatch, capsys):
    from bayling.evaluate import download as testsets

    server = _Server(spm_model.read_bytes())
    try:
        assert testsets.flores200_spm_url() == "https://tinyurl.com/flores200sacrebleuspm"  # sacreBLEU's own
        monkeypatch.setattr(testsets, "flores200_spm_url", lambda: f"{server.url}/flores200sacrebleuspm")
        assert main(["eval", "download", "flores200-spm"]) == 0
        assert capsys.readouterr().out.strip() == str(sacrebleu_spm_path())
        assert sacrebleu_spm_path().read_bytes() == spm_model.read_bytes()
        hyp, refs = _files(sacrebleu_dir, TH_HYPS, TH_REFS)
        assert "tok:flores200" in score_files(hyp, refs, "tha_Thai", ("bleu",))["bleu"]["signature"]
        with pytest.raises(DataError, match="not a SentencePiece model"):
            testsets.download_flores200_spm(sacrebleu_dir / "other", url=f"{server.url}/junk")
        assert not (sacrebleu_dir / "other").exists()
        assert main(["eval", "download", "wmt22"]) == 2  # the test sets still need --dest
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_trailing_empty_hypotheses_are_scored_as_the_sacrebleu_cli_scores_them(tmp_path):
    """A system whose last outputs are empty: sacreBLEU's CLI reads them as segments (``readlines``), so
    ``eval score`` does too, instead of rejecting the file as one line short."""
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("Hallo Welt\nGuten Morgen\n\n\n", encoding="utf-8")
    ref.write_text("Hallo Welt\nGuten Morgen\nBis bald\nTschüss\n", encoding="utf-8")
    ours = score_files(str(hyp), [str(ref)], "de", ["bleu", "chrf"], bleu_tokenize="wmt")
    cmd = [sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-m", "bleu", "chrf"]
    cmd += ["--chrf-word-order", "2", "-f", "json", "-w", "2"]
    theirs = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert ours["n"] == 4
    assert [ours["bleu"]["score"], ours["chrf"]["score"]] == [s["score"] for s in theirs]


def test_score_reads_the_source_file_with_the_given_encoding(tmp_path):
    hyp, ref, src = tmp_path / "hyp.txt", tmp_path / "ref.txt", tmp_path / "src.txt"
    hyp.write_text("Kaffee heute\n", encoding="ascii")
    ref.write_text("Kaffee heute\n", encoding="ascii")
    src.write_bytes("Caf\xe9 today\n".encode("latin-1"))
    out = score_files(str(hyp), [str(ref)], "de", ["chrf"], src=str(src), off_target=True, encoding="latin-1")
    assert out["n"] == 1 and out["copy"] == 0.0
    with pytest.raises(DataError, match=r"src\.txt:1: not valid UTF-8 at byte 4 \(0xe9\)"):
        score_files(str(hyp), [str(ref)], "de", ["chrf"], src=str(src), off_target=True, encoding="utf-8")
