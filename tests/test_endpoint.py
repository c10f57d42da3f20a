"""One OpenAI-compatible endpoint settings type for the data stage's teacher and the evaluation's judge."""

from __future__ import annotations

import dataclasses

import pytest

from bayling.config import from_dict, load_config
from bayling.data.config import TeacherConfig
from bayling.endpoint import EndpointConfig, connection
from bayling.errors import ConfigError
from bayling.evaluate.judge import JudgeConfig
from bayling.pipeline import RunConfig

SHARED = {"model", "base_url", "base_url_env", "api_key_env", "temperature", "max_tokens", "timeout_s", "max_retries"}


def test_teacher_and_judge_share_the_endpoint_settings_at_their_own_defaults():
    assert issubclass(TeacherConfig, EndpointConfig) and issubclass(JudgeConfig, EndpointConfig)
    shared = {f.name for f in dataclasses.fields(EndpointConfig)}
    assert shared == SHARED | {"concurrency"}
    teacher, judge = TeacherConfig(), JudgeConfig()
    assert (teacher.temperature, teacher.timeout_s, teacher.max_retries, teacher.concurrency) == (0.7, 60.0, 6, 8)
    assert (judge.temperature, judge.timeout_s, judge.max_retries, judge.concurrency) == (0.0, 120.0, 3, 4)
    assert (teacher.model, judge.model, judge.base_url_env) == ("gpt-4o-mini", "gpt-4o", "BAYLING_JUDGE_BASE_URL")


def test_yaml_keys_of_both_sections_keep_working():
    cfg = load_config(
        RunConfig,
        None,
        [
            "data.teacher.timeout_s=30",
            "data.teacher.concurrency=2",
            "eval.open_ended.judge.timeout=45",  # the judge's older names
            "eval.open_ended.judge.workers=3",
            "eval.open_ended.judge.max_retries=1",
        ],
    )
    assert (cfg.data.teacher.timeout_s, cfg.data.teacher.concurrency) == (30.0, 2)
    judge = cfg.eval.open_ended.judge
    assert (judge.timeout_s, judge.concurrency, judge.max_retries) == (45.0, 3, 1)
    assert from_dict(JudgeConfig, {"timeout_s": 5, "concurrency": 6}).concurrency == 6
    with pytest.raises(ConfigError, match="unknown config key 'judge.workers'"):  # both names: one is too many
        from_dict(JudgeConfig, {"workers": 2, "concurrency": 3}, "judge")


def test_connection_reads_the_environment_and_names_the_section(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("BAYLING_JUDGE_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match=r"^data\.teacher: set \$OPENAI_API_KEY \(or data\.teacher\.base_url"):
        connection(TeacherConfig(), "data.teacher")
    monkeypatch.setenv("BAYLING_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    assert connection(JudgeConfig(), "eval.open_ended.judge") == ("http://127.0.0.1:9/v1", "not-needed")
    with pytest.raises(ConfigError):  # the teacher does not read the judge's variable
        connection(TeacherConfig(), "data.teacher")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert connection(TeacherConfig(base_url="http://127.0.0.1:8/v1"), "data.teacher") == (
        "http://127.0.0.1:8/v1",
        "sk-test",
    )
