"""Translation requests, batch translation with a resumable journal, and the ``translate``/``chat`` commands."""

from __future__ import annotations

import io
import json

import pytest

from bayling.cli import main
from bayling.engines import GenerationParams
from bayling.errors import BaylingError, UnknownLanguageError
from bayling.serve.translate import followup_text, translate_lines, translation_request


def test_translation_request_appends_templates():
    assert (
        translation_request("Hallo Welt", "de", "zh")
        == "Translate the following German text into Chinese.\nHallo Welt"
    )
    req = translation_request("The bank is closed.", "en", "fr", glossary={"bank": "banque"}, style="short")
    assert req.splitlines()[2:] == ['Make sure the translation uses "banque" for "bank".', "Can you make it shorter?"]
    zh = translation_request("Hello", "en", "de", style="formal", instruction_lang="zh")
    assert zh == "把下面的英语翻译成德语。\nHello\n请改得更正式一些。"
    assert followup_text("third_language", tgt2="Swahili") == "Now translate it into Swahili."
    with pytest.raises(UnknownLanguageError, match="klingon"):
        translation_request("x", "en", "klingon")
    with pytest.raises(BaylingError, match="unknown style"):
        translation_request("x", "en", "de", style="poetic")
    with pytest.raises(BaylingError, match="empty"):
        translation_request("  ", "en", "de")


class CountingEngine:
    """The real tiny engine, recording which conversations it was asked to answer."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def generate(self, conversations, params=None, progress=None):
        self.seen.extend(c[-1]["content"] for c in conversations)
        return self.engine.generate(conversations, params)


def test_translate_lines_blank_lines_and_journal_resume(tiny_engine, tmp_path):
    lines = ["Good morning.", "", "The weather is nice today.", "Hello world!", "How are you?"]
    params = GenerationParams(max_new_tokens=6)
    journal = tmp_path / "out.journal.jsonl"
    full = translate_lines(tiny_engine, lines, "en", "de", params)
    assert len(full) == 5 and full[1] == "" and all("\n" not in t for t in full)

    # a crash after two lines: the journal holds them (plus a torn line); a re-run answers only the rest
    first = CountingEngine(tiny_engine)
    translate_lines(first, lines[:3], "en", "de", params, chunk_size=2, journal=journal)
    assert len(journal.read_text().splitlines()) == 2
    with journal.open("a") as f:
        f.write('{"key": "3:torn')
    again = CountingEngine(tiny_engine)
    ticks = []
    out = translate_lines(again, lines, "en", "de", params, chunk_size=2, journal=journal, progress=ticks.append)
    assert out == full
    assert [s.splitlines()[1] for s in again.seen] == ["Hello world!", "How are you?"]
    assert sum(ticks) == len(lines)
    rows = [json.loads(x) for x in journal.read_text().splitlines() if x.startswith('{"key": "') and x.endswith("}")]
    assert len(rows) == 4


def test_translate_command_files(tiny_llama, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Good morning.\n\nThe weather is nice today.\n", encoding="utf-8")
    out = tmp_path / "sub" / "out.txt"
    args = ["translate", str(tiny_llama), "--src-lang", "en", "--tgt-lang", "de", "-i", str(src), "-o", str(out)]
    assert main(args + ["--max-new-tokens", "5", "--glossary", "morning=Morgen", "--style", "formal"]) == 0
    got = out.read_text(encoding="utf-8").split("\n")
    assert len(got) == 4 and got[1] == "" and got[3] == ""
    assert not (tmp_path / "sub" / "out.txt.journal.jsonl").exists()  # removed once the output is complete


def test_translate_command_stdin_stdout_and_progress(tiny_llama, monkeypatch, capsys):
    monkeypatch.setenv("BAYLING_NO_PROGRESS", "0")
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello world!\nGood morning.\n"))
    assert main(["translate", str(tiny_llama), "-s", "English", "-t", "zh-TW", "--max-new-tokens", "4"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "translating eng_Latn -> zho_Hant" in captured.err and "2/2" in captured.err


def test_translate_command_errors(tiny_llama, capsys):
    assert main(["translate", str(tiny_llama), "-s", "en", "-t", "klingon"]) == 2
    assert "bayling: error: unknown language 'klingon'" in capsys.readouterr().err
    assert main(["translate", str(tiny_llama), "-s", "en", "-t", "de", "-i", "/nonexistent/in.txt"]) == 2
    assert "input file not found" in capsys.readouterr().err
    assert main(["translate", str(tiny_llama), "-s", "en", "-t", "de", "--glossary", "oops"]) == 2
    assert "--glossary expects SRC=TGT" in capsys.readouterr().err


def test_chat_command_history_reset_translate_refine(tiny_llama, capsys):
    messages = [
        "Hello world!",
        "/translate de Good morning",
        "/refine formal",
        "/history",
        "/reset",
        "/history",
        "/translate zh:xx 你好",
        "/refine poetic",
        "/nope",
        "/quit",
        "never answered",
    ]
    args = ["chat", str(tiny_llama), "--max-new-tokens", "3"]
    assert main(args + [x for m in messages for x in ("-m", m)]) == 0
    out = capsys.readouterr().out
    history = out.split("(history cleared)")[0]
    assert "[user] Hello world!" in history
    assert "[user] Translate the following English text into German.\nGood morning" in history
    assert "[user] Make it more formal." in history
    assert history.count("[assistant]") == 3
    after = out.split("(history cleared)")[1]
    assert "[user]" not in after
    assert "unknown language 'xx'" in after
    assert "usage: /refine formal|casual|short" in after
    assert "unknown command /nope" in after


def test_chat_module_loop_with_system(tiny_engine):
    from bayling.serve.chat import chat_loop

    buf = io.StringIO()
    conv = chat_loop(tiny_engine, ["/system Be brief.", "Hello world!", "/refine short"], max_new_tokens=2, out=buf)
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user", "assistant"]
    assert conv[3]["content"] == "Can you make it shorter?"
