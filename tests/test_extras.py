"""Each optional import names an extra that really installs it (``pip install 'bayling[eval]'`` then runs the
evaluation the default config asks for, off-target rates and the judge included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DISTRIBUTIONS = {
    "py3langid.langid": "py3langid",
    "lm_eval": "lm-eval",
    "comet": "unbabel-comet",
    "llama_cpp": "llama-cpp-python",
}
"""Import name -> distribution name, where they differ."""


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower()


def installed_by(extra: str) -> set[str]:
    """Distributions ``pip install 'bayling[EXTRA]'`` installs directly (core dependencies and nested extras)."""
    names = {_name(r) for r in PROJECT["dependencies"]}
    todo, seen = [extra], set()
    while todo:
        e = todo.pop()
        if e in seen:
            continue
        seen.add(e)
        for r in PROJECT["optional-dependencies"][e]:
            if _name(r) == "bayling":
                todo += re.search(r"\[(.*)\]", r).group(1).split(",")
            else:
                names.add(_name(r))
    return names


REQUIRES = sorted(
    {m for f in (REPO / "src").rglob("*.py") for m in re.findall(r'require\("([\w.]+)", "(\w+)"\)', f.read_text())}
)


def test_the_eval_extra_installs_what_evaluation_imports():
    eval_extra = installed_by("eval")
    assert {"py3langid", "sacrebleu", "matplotlib", "numpy", "openai", "torch", "transformers"} <= eval_extra
    assert "py3langid" in {_name(r) for r in PROJECT["optional-dependencies"]["eval"]}


@pytest.mark.parametrize(("module", "extra"), REQUIRES, ids=[f"{m}:{e}" for m, e in REQUIRES])
def test_every_required_module_is_in_the_extra_it_names(module, extra):
    assert DISTRIBUTIONS.get(module, module).lower() in installed_by(extra)
