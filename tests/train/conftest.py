"""Fixtures for the training tests: deterministic multi-turn dialogues of mixed length, as chat JSONL."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = (
    "the weather is nice today we meet at nine tomorrow morning train Berlin leaves make it more formal "
    "今天 天气 很好 我们 明天 早上 九点 见面 Das Wetter ist heute schön Zielsprache Englisch"
).split()


def make_dialogues(n: int, seed: int = 0, max_turns: int = 3, max_words: int = 30) -> list[dict]:
    """``n`` conversations with 1..max_turns user/assistant exchanges, a system turn in every third one."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        msgs = [{"role": "system", "content": "You are a careful translator."}] if i % 3 == 0 else []
        for _ in range(rng.randint(1, max_turns)):
            msgs.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(2, max_words)))})
            msgs.append({"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(1, max_words)))})
        rows.append({"messages": msgs})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def dialogues_file(tmp_path_factory) -> Path:
    """48 multi-turn dialogues (1-3 exchanges, 20-300 tokens each)."""
    return write_jsonl(tmp_path_factory.mktemp("dialogues") / "train.jsonl", make_dialogues(48))
