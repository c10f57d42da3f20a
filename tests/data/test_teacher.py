"""Teacher generation against a real, deliberately flaky OpenAI-compatible server on 127.0.0.1.

The central promise: kill the build at any point (SIGKILL, no cleanup), run it again, and the final data is
byte-identical to an uninterrupted run, every finished response is reused (nothing asked twice once
journaled) and the journal holds each request once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bayling.data import build
from bayling.data.builder import generate_teacher
from bayling.data.config import DataConfig, FilterConfig, TeacherConfig
from bayling.data.teacher import TeacherJournal
from bayling.errors import DataError

LANGS = ["eng_Latn", "zho_Hans", "deu_Latn", "fra_Latn", "spa_Latn"]


def _cfg(url: str, seeds: Path, examples: int = 24, **teacher) -> DataConfig:
    return DataConfig(
        source="sample",
        languages=LANGS,
        heldout=10,
        interactive=6,
        crosslingual=6,
        general=2,
        instructions=[str(seeds)],
        max_followups=2,
        filters=FilterConfig(lid_min_chars=20),
        teacher=TeacherConfig(
            examples=examples,
            base_url=url,
            model="test-teacher",
            concurrency=3,
            max_retries=4,
            backoff_s=0.01,
            timeout_s=0.6,
            price_input_per_mtok=1.0,
            price_output_per_mtok=2.0,
            **teacher,
        ),
    )


def _journal_ids(path: Path) -> list[str]:
    return [json.loads(x)["id"] for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_teacher_build_survives_faults_and_validates(teacher_server, seed_instructions, tmp_path):
    out = build(_cfg(teacher_server.url, seed_instructions), tmp_path / "a", seed=3).out_dir
    stats = json.loads((out / "stats.json").read_text())
    t = stats["teacher"]
    assert t["jobs"] == 24 and t["failed"] == 0
    # Every fault kind was injected and survived by retrying.
    assert (
        teacher_server.faults["429"] > 0 and teacher_server.faults["500"] > 0 and teacher_server.faults["timeout"] > 0
    )
    assert t["retries"] >= sum(teacher_server.faults.values())
    # Every off-target reply the server sent was rejected by language ID, journaled as invalid and counted.
    journal = [json.loads(x) for x in (out / "teacher" / "journal.jsonl").read_text().splitlines()]
    wrong = [e for e in journal if e.get("reason") == "wrong_language"]
    assert teacher_server.off_target and len(wrong) == len(teacher_server.off_target)
    assert t["dropped"]["wrong_language"] == len(wrong)
    assert t["completed"] + sum(t["dropped"].values()) == 24
    assert stats["generated"]["teacher"] <= t["completed"]
    # Token and cost accounting add up from the journal.
    pt = sum(e["usage"]["prompt_tokens"] for e in journal)
    ct = sum(e["usage"]["completion_tokens"] for e in journal)
    assert t["tokens"] == {"prompt_tokens": pt, "completion_tokens": ct} and pt > 0
    assert t["cost_usd"] == pytest.approx(pt / 1e6 * 1.0 + ct / 1e6 * 2.0)
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    teacher_rows = [r for r in rows if r["task"] == "teacher"]
    assert teacher_rows and all(m["content"] for r in teacher_rows for m in r["messages"])
    cross = [r for r in teacher_rows if r["turns"] == ["crosslingual_instruction"]]
    assert cross and all(r["src"] != r["tgt"] for r in cross)


def test_rerun_reuses_journal_without_requests(teacher_server, seed_instructions, tmp_path):
    cfg = _cfg(teacher_server.url, seed_instructions, examples=10)
    build(cfg, tmp_path / "a", seed=1)
    first = (tmp_path / "a" / "train.jsonl").read_bytes()
    served = teacher_server.served
    build(cfg, tmp_path / "a", seed=1)
    assert teacher_server.served == served  # everything came from the journal
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == first
    assert json.loads((tmp_path / "a" / "stats.json").read_text())["teacher"]["requests_sent"] == 0


DRIVER = "import sys; from bayling.cli import main; sys.exit(main(sys.argv[1:]))"


def test_sigkill_midway_then_resume_equals_uninterrupted(teacher_server, seed_instructions, tmp_path):
    cfg = _cfg(teacher_server.url, seed_instructions, examples=30)
    preset = tmp_path / "teacher.yaml"
    from bayling.config import to_dict

    preset.write_text(
        yaml.safe_dump({"name": "t", "out_dir": str(tmp_path / "unused"), "seed": 5, "data": to_dict(cfg)})
    )
    # Reference: one uninterrupted run.
    build(cfg, tmp_path / "ref", seed=5)
    reference = (tmp_path / "ref" / "train.jsonl").read_bytes()
    ref_ids = _journal_ids(tmp_path / "ref" / "teacher" / "journal.jsonl")

    teacher_server.delay_s = 0.05  # slow enough to kill it in the middle
    out = tmp_path / "killed"
    journal = out / "teacher" / "journal.jsonl"
    env = dict(os.environ, BAYLING_NO_PROGRESS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "data", "build", str(preset), "-o", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 8:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"build ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _journal_ids(journal)
    assert 8 <= len(partial) < len(ref_ids)
    assert not (out / "train.jsonl").exists()

    teacher_server.delay_s = 0.0
    served_before = teacher_server.served
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "data", "build", str(preset), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "train.jsonl").read_bytes() == reference
    final_ids = _journal_ids(journal)
    assert len(final_ids) == len(set(final_ids)) == len(ref_ids) and set(final_ids) == set(ref_ids)
    # The resumed run asked only for what the killed run had not journaled (plus at most in-flight ones).
    assert teacher_server.served - served_before <= len(ref_ids) - len(partial) + 3
    stats = json.loads((out / "stats.json").read_text())
    assert stats["teacher"]["resumed_from_journal"] >= len(partial) - 1


def test_torn_journal_line_is_cut_and_corrupt_line_is_reported(tmp_path):
    p = tmp_path / "journal.jsonl"
    p.write_text('{"id": "a", "status": "ok", "text": "x"}\n{"id": "b", "sta', encoding="utf-8")
    j = TeacherJournal(p)
    assert list(j.entries) == ["a"]
    j.add({"id": "c", "status": "ok", "text": "y"})
    assert [json.loads(x)["id"] for x in p.read_text().splitlines()] == ["a", "c"]
    p.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"journal.jsonl:2: corrupt journal line"):
        TeacherJournal(p)


def test_auth_error_fails_fast_with_server_message(teacher_server, seed_instructions, tmp_path):
    teacher_server.mode = "401"
    t0 = time.time()
    with pytest.raises(DataError, match=r"HTTP 401.*invalid api key.*re-run"):
        build(_cfg(teacher_server.url, seed_instructions, examples=4), tmp_path / "a", seed=0)
    assert time.time() - t0 < 20
    assert sum(teacher_server.attempts.values()) <= 4  # no retries on 401


def test_exhausted_retries_keep_finished_work(teacher_server, seed_instructions, tmp_path):
    cfg = _cfg(teacher_server.url, seed_instructions, examples=6)
    generate_teacher(cfg, tmp_path / "a", seed=2)
    done = _journal_ids(tmp_path / "a" / "teacher" / "journal.jsonl")
    teacher_server.mode = "500"
    cfg.teacher.examples = 10  # four new jobs; the server now always fails
    with pytest.raises(DataError, match=r"teacher job\(s\) failed.*gave up after 4 retries.*re-run"):
        build(cfg, tmp_path / "a", seed=2)
    assert _journal_ids(tmp_path / "a" / "teacher" / "journal.jsonl")[: len(done)] == done
    teacher_server.mode = "flaky"
    build(cfg, tmp_path / "a", seed=2)  # the server is back: the same command finishes the job
    assert json.loads((tmp_path / "a" / "stats.json").read_text())["teacher"]["jobs"] == 10


def test_budget_stops_new_requests(teacher_server, seed_instructions, tmp_path):
    cfg = _cfg(teacher_server.url, seed_instructions, examples=12, max_cost_usd=1e-9)
    cfg.teacher.concurrency = 1
    build(cfg, tmp_path / "a", seed=0)
    t = json.loads((tmp_path / "a" / "stats.json").read_text())["teacher"]
    assert t["dropped"].get("budget", 0) > 0
    assert t["journal_entries"] <= 2  # the first request spends the (tiny) budget
