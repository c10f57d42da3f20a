"""ServeConfig: shipped presets load, bad values fail with one clear line, the CLI parses overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling.config import load_config
from bayling.errors import ConfigError
from bayling.serve.config import ServeConfig

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "serve").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_presets_load(path):
    cfg = load_config(ServeConfig, path)
    assert cfg.engine in ("transformers", "llamacpp", "vllm") and cfg.host == "127.0.0.1"


def test_presets_exist():
    assert {p.name for p in PRESETS} >= {"cpu.yaml", "gpu.yaml"}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["max_queue=-1"], "max_queue must be >= 0"),
        (["default_max_tokens=900"], "default_max_tokens must not exceed"),
        (["port=70000"], r"port must be in \[1, 65535\], got 70000"),
        (["max_qeue=3"], "did you mean 'max_queue'"),
        (["max_batch_size=zero"], "expected an integer"),
        (["generation_timeout_s=0"], r"generation_timeout_s must be > 0, got 0"),
        (["queue_timeout_s=-1"], r"queue_timeout_s must be > 0, got -1"),
    ],
)
def test_bad_values(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(ServeConfig, None, overrides)


def test_overrides_and_engine_options():
    cfg = load_config(ServeConfig, None, ["max_queue=3", "engine_options.n_ctx=1024", "engine=llamacpp"])
    assert (cfg.max_queue, cfg.engine, cfg.engine_options) == (3, "llamacpp", {"n_ctx": 1024})


def test_serve_run_dir_reads_the_runs_serve_section(tmp_path, monkeypatch):
    """``RunConfig.serve`` is what ``bayling serve RUN_DIR`` starts from; --config, overrides and flags win."""
    from bayling.cli import main

    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "config.yaml").write_text(
        "name: r\nserve:\n  max_queue: 5\n  port: 8123\n  engine_options: {batch_size: 2}\n"
        "eval:\n  directions: [en-de]\n",  # saved before the eval section was nested: only `serve` is read
        encoding="utf-8",
    )
    (tmp_path / "serve.yaml").write_text("max_batch_size: 3\n", encoding="utf-8")
    seen = []
    monkeypatch.setattr("bayling.serve.api.serve", lambda target, **kw: seen.append((target, kw)))
    assert main(["serve", str(run)]) == 0
    cfg = seen[-1][1]["config"]
    assert (cfg.max_queue, cfg.port, cfg.max_batch_size, cfg.engine_options) == (5, 8123, 8, {"batch_size": 2})
    assert main(["serve", str(run), "max_queue=7", "--config", str(tmp_path / "serve.yaml"), "--port", "9000"]) == 0
    target, kw = seen[-1]
    assert (kw["config"].max_queue, kw["config"].port, kw["config"].max_batch_size) == (7, 8123, 3)
    assert target == str(run) and kw["port"] == 9000  # the flag is applied by serve() over the config
    assert main(["serve", "gemma-3-270m"]) == 0 and seen[-1][1]["config"] == ServeConfig()  # a model: defaults


def test_serve_command_reports_bad_model(capsys):
    from bayling.cli import main

    assert main(["serve", "no-such-model", "--port", "8123"]) == 2
    assert "bayling: error: unknown model 'no-such-model'" in capsys.readouterr().err
    assert main(["serve", "gemma-3-270m", "max_queue=-2"]) == 2
    assert "max_queue must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["cors_origins=[app.example]"], "is not an origin like"),
        (["cors_origins=[https://app.example/path]"], "is not an origin like"),
        (["allowed_hosts=['a b']"], "is not a host name"),
    ],
)
def test_bad_cross_site_settings(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(ServeConfig, None, overrides)


def test_host_allow_list_follows_the_bind_address():
    assert ServeConfig().host_allow_list() == {"localhost", "127.0.0.1", "::1"}
    assert ServeConfig(host="0.0.0.0").host_allow_list() is None  # public: no names known; set allowed_hosts
    assert ServeConfig(host="0.0.0.0", allowed_hosts=["Api.Example", "[::1]"]).host_allow_list() == {
        "api.example",
        "::1",
    }
    cfg = load_config(ServeConfig, None, ["cors_origins=[https://app.example:8443, '*']"])
    assert cfg.cors_origins == ["https://app.example:8443", "*"]
