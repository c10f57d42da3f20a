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


def accelerate_launch_env(config_file: Path, *launch_args: str) -> dict[str, str]:
    """The ``ACCELERATE_*`` / ``FSDP_*`` variables ``accelerate launch --config_file FILE [ARGS] script`` gives
    its processes, computed by accelerate's own launcher code (the torchrun rank variables are left out).

    accelerate starts from a copy of ``os.environ``: call it with no such variables set (see ``launched``).
    """
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import (
        prepare_deepspeed_cmd_env,
        prepare_multi_gpu_env,
        prepare_simple_launcher_cmd_env,
    )

    args = launch_command_parser().parse_args(["--config_file", str(config_file), *launch_args, "train.py"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before deepspeed_launcher
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
    elif args.use_fsdp or args.multi_gpu:
        env = prepare_multi_gpu_env(args)
    else:
        _, env = prepare_simple_launcher_cmd_env(args)
    return {k: v for k, v in env.items() if k.startswith(("ACCELERATE_", "FSDP_"))}


@pytest.fixture
def launched(monkeypatch):
    """``launched(config_file, *launch_args)`` puts this process in the environment ``accelerate launch`` makes.

    accelerate's process state and transformers' global DeepSpeed config are reset afterwards.
    """
    import os

    def apply(config_file: Path, *launch_args: str) -> dict[str, str]:
        for key in [k for k in os.environ if k.startswith(("ACCELERATE_", "FSDP_"))]:
            monkeypatch.delenv(key)  # first: accelerate's launcher starts from a copy of os.environ
        env = accelerate_launch_env(config_file, *launch_args)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    yield apply
    from accelerate.state import AcceleratorState
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    AcceleratorState._reset_state(reset_partial_state=True)
    unset_hf_deepspeed_config()


@pytest.fixture(scope="session")
def translation_data(tmp_path_factory) -> Path:
    """``train.jsonl`` of a tiny real data-stage build from the shipped sample corpus (en/zh/de translation
    dialogues, plain pairs, cross-lingual examples), with its ``heldout.jsonl`` beside it."""
    from bayling.data import build
    from bayling.data.config import DataConfig

    out = tmp_path_factory.mktemp("translation_data")
    build(DataConfig(interactive=24, pairs=8, crosslingual=12, general=4, heldout=6), out, 0)
    return out / "train.jsonl"
