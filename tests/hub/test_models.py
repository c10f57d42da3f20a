"""Models named by Hub id: fetched on first use through huggingface_hub, reused from the cache, refused offline,
with one-line errors for gated and missing repositories; all against the stand-in Hub on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bayling.errors import ModelError
from bayling.models import check_model, resolve_model

REPO = Path(__file__).resolve().parents[2]
MODEL = "bayling-test/tiny-llama"


def test_first_use_downloads_into_the_hf_cache_then_reuses_it(hub_env, hub_server, tiny_llama, tmp_path):
    path = resolve_model(MODEL)
    assert path.is_relative_to(tmp_path / "hf" / "hub" / "models--bayling-test--tiny-llama" / "snapshots")
    assert path.name == hub_server.repo(MODEL).head  # the snapshot of the commit the Hub reported
    for f in tiny_llama.iterdir():
        assert (path / f.name).read_bytes() == f.read_bytes(), f.name
    assert (path / "README.md").is_file()
    first = hub_server.file_requests()
    assert ("GET", f"/cdn/{_sha256(tiny_llama / 'model.safetensors')}", 200) in first  # LFS through the "CDN"
    assert any(r[:2] == ("GET", f"/{MODEL}/resolve/{path.name}/config.json") for r in first)

    hub_server.clear_log()
    assert resolve_model(MODEL) == path
    assert hub_server.file_requests() == []  # cached: no file is fetched or probed again
    assert hub_server.log == [("GET", f"/api/models/{MODEL}", 200)]  # one call: which commit is current

    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(path).hidden_size == 16


def _sha256(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_offline_uses_the_cache_only(hub_env, hub_server, monkeypatch):
    monkeypatch.setenv("BAYLING_OFFLINE", "1")
    with pytest.raises(ModelError) as e:
        resolve_model(MODEL)
    msg = str(e.value)
    assert msg.startswith(f"model '{MODEL}' is not in the local Hugging Face cache") and "offline" in msg
    assert "\n" not in msg and hub_server.log == []  # refused without touching the network

    monkeypatch.delenv("BAYLING_OFFLINE")
    path = resolve_model(MODEL)
    hub_server.clear_log()
    monkeypatch.setenv("BAYLING_OFFLINE", "1")
    assert resolve_model(MODEL) == path and check_model(MODEL) == "hub"
    assert hub_server.log == []


def test_gated_model_says_what_to_do(hub_env, hub_server, monkeypatch):
    gated = "bayling-test/gated-llama"
    with pytest.raises(ModelError) as e:
        check_model(gated)  # preflight: metadata is public, the files are not
    assert str(e.value) == (
        f"model '{gated}' is gated: accept its terms at {hub_server.url}/{gated} and log in "
        "(`hf auth login`, or set HF_TOKEN to a token of that account)"
    )
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    with pytest.raises(ModelError, match="is gated and your Hugging Face token has no access yet"):
        resolve_model(gated)
    # the files were asked for and refused (which file first depends on the download's threads: under load it was
    # generation_config.json, not config.json)
    refused = f"/{gated}/resolve/{hub_server.repo(gated, 'model').head}/"
    assert any(m == "HEAD" and p.startswith(refused) and code == 403 for m, p, code in hub_server.log)
    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    assert (resolve_model(gated) / "model.safetensors").is_file()


def test_missing_model_and_unreachable_hub(hub_env, hub_server, monkeypatch):
    with pytest.raises(ModelError) as e:
        check_model("bayling-test/no-such-model")
    assert str(e.value).startswith(f"model 'bayling-test/no-such-model' not found on {hub_server.url}: check the name")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ModelError, match=r"^cannot reach http://127.0.0.1:9 to get model 'bayling-test/tiny-llama'"):
        resolve_model(MODEL)


def test_unreachable_hub_falls_back_to_a_cached_copy(hub_env, hub_server, monkeypatch):
    path = resolve_model(MODEL)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert resolve_model(MODEL) == path


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from bayling.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("offline", ["--offline first", "--offline last", "BAYLING_OFFLINE=1", "HF_HUB_OFFLINE=1"])
def test_cli_offline_with_an_empty_cache_is_one_line(hub_env, hub_server, tmp_path, offline):
    env = dict(hub_env)
    cmd = [
        "run",
        str(REPO / "configs" / "quickstart.yaml"),
        f"model.name_or_path={MODEL}",
        f"run_dir={tmp_path / 'r'}",
    ]
    if offline.startswith("--offline"):
        cmd = ["--offline", *cmd] if offline.endswith("first") else [*cmd, "--offline"]
    else:
        env[offline.split("=")[0]] = "1"
    r = _cli(cmd, env, tmp_path)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"bayling: error: model '{MODEL}' is not in the local Hugging Face cache")
    assert "offline" in err and hub_server.log == []


def test_cli_goes_online_without_verbose(hub_env, hub_server, tmp_path):
    """Verbosity never switches the network off: without -v the CLI still asks the Hub (here: a 404)."""
    cmd = [
        "run",
        str(REPO / "configs" / "quickstart.yaml"),
        "model.name_or_path=bayling-test/nope",
        f"run_dir={tmp_path / 'r'}",
    ]
    r = _cli(cmd, hub_env, tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"bayling: error: model 'bayling-test/nope' not found on {hub_server.url}: check the name (org/name); "
        "a private repository also needs HF_TOKEN or `hf auth login`"
    )
    assert ("GET", "/api/models/bayling-test/nope", 404) in hub_server.log


def test_download_shows_a_progress_bar_in_quiet_mode(hub_env, hub_server, monkeypatch, capfd):
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    monkeypatch.delenv("BAYLING_NO_PROGRESS", raising=False)
    monkeypatch.setenv("TQDM_POSITION", "-1")  # tqdm draws on a non-terminal too (pytest captures stderr)
    was = are_progress_bars_disabled()
    disable_progress_bars()  # what `bayling` without -v does to library bars
    try:
        resolve_model(MODEL)
        assert are_progress_bars_disabled()  # quiet again after the download
    finally:
        (disable_progress_bars if was else enable_progress_bars)()
    err = capfd.readouterr().err
    repo = hub_server.repo(MODEL)
    size = sum(len(b) for b in repo.commits[repo.head].values())
    assert f"downloading {MODEL} (6 files, {size / 1000:.1f} kB)" in err.replace("\n", " ")
    assert "Fetching 6 files: 100%" in err
