"""The README and docs/ point at things that exist, and the commands in docs/results.md still run.

A newcomer follows links and copies commands; a renamed preset, a moved page or a renamed config key would
otherwise leave a dead link or a command that fails on its first word. Checked here:

* every relative link in README.md and docs/*.md names an existing file, and its ``#anchor`` a heading there;
* every ``configs/...`` path they name exists (an upper-case placeholder such as ``PRESET`` matches any name;
  paths inside ``text`` blocks are printed output, not instructions);
* every command in a ``bash`` block of docs/results.md parses: ``bayling run|data|train|eval CONFIG k=v…`` loads its
  config with the overrides, ``python bench/X.py …`` names a script whose ``--help`` works;
* the README's test command is the one CI runs (``.ci/run``), character for character.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bayling.config import load_config
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CONFIG_PATH = re.compile(r"configs/[A-Za-z0-9_./{}-]*[A-Za-z0-9_}]")
FENCE = re.compile(r"^\s*```(\w*)\s*$")


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block; prose outside blocks is ``("", prose)``."""
    out, lang, lines = [], None, []
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and lang is None:
            out.append(("", "\n".join(lines)))
            lang, lines = m.group(1) or "plain", []
        elif m:
            out.append((lang, "\n".join(lines)))
            lang, lines = None, []
        else:
            lines.append(line)
    out.append(("" if lang is None else lang, "\n".join(lines)))
    return out


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = "\n".join(body for lang, body in _blocks(page.read_text(encoding="utf-8")) if lang == "")
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def test_the_docs_pages_are_there():
    names = {p.name for p in PAGES}
    assert {"results.md", "evaluation.md", "training-and-scale-out.md", "serving.md", "data.md", "models.md"} <= names
    assert len((REPO / "README.md").read_text(encoding="utf-8")) <= 12_000


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert bad == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_config_paths_exist(page):
    bad = []
    for lang, body in _blocks(page.read_text(encoding="utf-8")):
        if lang == "text":  # printed output (e.g. the error examples), not a path to open
            continue
        for path in CONFIG_PATH.findall(body):
            pattern = re.sub(r"\b[A-Z][A-Z_]+\b", "*", path).replace("{name}", "*")
            if not any(REPO.glob(pattern)) and not (REPO / path).exists():
                bad.append(path)
    assert bad == []


def test_config_path_check_sees_placeholders_and_misses():
    assert CONFIG_PATH.findall("see `configs/accelerate/PRESET.yaml`, configs/data/.") == [
        "configs/accelerate/PRESET.yaml",
        "configs/data",
    ]
    assert any(REPO.glob(re.sub(r"\b[A-Z][A-Z_]+\b", "*", "configs/accelerate/PRESET.yaml")))
    assert not any(REPO.glob("configs/quickstart_old.yaml"))


def _commands(page: Path) -> list[str]:
    """The commands of the ``bash`` blocks of ``page``: continuation lines joined, ``export`` lines left out."""
    out = []
    for lang, body in _blocks(page.read_text(encoding="utf-8")):
        if lang != "bash":
            continue
        for cmd in re.sub(r"\\\n\s*", " ", body).splitlines():
            cmd = cmd.strip()
            if cmd and not cmd.startswith(("#", "export ")):
                out.append(cmd)
    return out


RESULT_COMMANDS = _commands(REPO / "docs" / "results.md")


def test_results_page_shows_commands():
    assert any(c.startswith("bayling run ") for c in RESULT_COMMANDS)
    assert any(c.startswith("python bench/") for c in RESULT_COMMANDS)


@pytest.mark.parametrize("command", RESULT_COMMANDS)
def test_results_commands_parse(command):
    argv = shlex.split(command, comments=True)
    if argv[0] == "bayling":
        assert argv[1] in ("run", "data", "train", "eval"), f"no check for {command!r}"
        config, overrides = argv[2], [a for a in argv[3:] if not a.startswith("-")]
        assert (REPO / config).is_file(), config
        assert load_config(RunConfig, REPO / config, overrides) is not None
    elif argv[0] == "python":
        script = REPO / argv[1]
        assert script.is_file() and script.parent.name == "bench", command
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-2000:]
    else:
        pytest.fail(f"no check for {command!r}")


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("# 2. install, then run the tests", 1)[1].split("```", 1)[0]
    command = block.split("\n", 1)[1].strip()
    assert command.endswith("&& pytest") and command in (REPO / ".ci" / "run").read_text(encoding="utf-8")
