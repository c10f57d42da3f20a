"""Planning a build: which languages, how many examples of each kind, which general instructions.

BayLing 2's mix is about 43% Chinese and 26% English general instructions and 31% cross-lingual data.
With ``data.total`` set, :func:`plan_counts` turns ``data.mix`` shares into counts; general shares are
capped by what the seed files hold (counted per language in a first streaming pass) and the shortfall is
given to the translation tasks, so the requested total is still met.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bayling.data.config import DataConfig
from bayling.data.instructions import iter_instructions
from bayling.data.io import BadLines
from bayling.errors import ConfigError
from bayling.languages import get_language, languages

LANGUAGE_SETS = {"flores101": True, "all": False, "flores200": False}


def resolve_languages(items: list[str]) -> list[str]:
    """Codes/aliases -> FLORES-200 codes, expanding ``flores101`` (102 codes) and ``all``/``flores200`` (204)."""
    out: list[str] = []
    for x in items:
        if x in LANGUAGE_SETS:
            out += [lang.code for lang in languages(flores101_only=LANGUAGE_SETS[x])]
        else:
            out.append(get_language(x).code)
    return list(dict.fromkeys(out))


@dataclass
class Counts:
    interactive: int
    crosslingual: int
    general: dict[str, int] = field(default_factory=dict)
    """``{code or "any": count}``."""

    @property
    def general_total(self) -> int:
        return sum(self.general.values())


def _mix_keys(mix: dict[str, float]) -> dict[str, float]:
    out = {}
    for key, share in mix.items():
        if share < 0:
            raise ConfigError(f"data.mix.{key}: share must be >= 0")
        if key.startswith("general_"):
            out["general_" + get_language(key[len("general_") :]).code] = share
        elif key in ("interactive", "crosslingual", "general"):
            out[key] = share
        else:
            raise ConfigError(
                f"data.mix: unknown key {key!r}; use interactive, crosslingual, general or general_<code>"
            )
    if sum(out.values()) <= 0:
        raise ConfigError("data.mix: shares must not all be zero")
    return out


def plan_counts(cfg: DataConfig, available: Counter[str]) -> Counts:
    """Example counts per kind, from explicit counts or from ``total`` x ``mix`` (see module docstring)."""
    if cfg.total is None:
        return Counts(cfg.interactive, cfg.crosslingual, {"any": min(cfg.general, sum(available.values()))})
    mix = _mix_keys(cfg.mix)
    norm = sum(mix.values())
    want = {k: round(cfg.total * v / norm) for k, v in mix.items()}
    general: dict[str, int] = {}
    left = Counter(available)
    for key, n in want.items():
        if key.startswith("general_"):
            code = key[len("general_") :]
            general[code] = min(n, left[code])
            left[code] -= general[code]
    if "general" in want:
        general["any"] = min(want["general"], sum(left.values()))
    shortfall = sum(n for k, n in want.items() if k.startswith("general")) - sum(general.values())
    i, c = want.get("interactive", 0), want.get("crosslingual", 0)
    if i + c == 0:
        c = shortfall
    else:
        add_i = shortfall * i // (i + c)
        i, c = i + add_i, c + shortfall - add_i
    return Counts(i, c, general)


@dataclass
class GeneralPool:
    """The general instructions a build uses, chosen by index after a counting pass."""

    sources: list[str]
    skip_bad: bool
    available: dict[str, int]
    chosen: set[int] = field(default_factory=set)
    seeds: list[int] = field(default_factory=list)
    """Indices set aside as teacher seeds (never also used as general examples)."""
    lid: Any = None

    def iter(self, which: set[int] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, record)`` of the chosen records (or of ``which``), streamed from the files."""
        which = self.chosen if which is None else which
        i = -1
        for src in self.sources:
            for rec in iter_instructions(src, BadLines(True), self.lid):
                i += 1
                if i in which:
                    yield i, rec


def select_general(
    cfg: DataConfig, rng: random.Random, teacher_seeds: int = 0
) -> tuple[Counts, GeneralPool, dict[str, Any]]:
    """Count the seed instructions per language, plan the counts, and choose which records to use.

    Returns:
        The planned :class:`Counts`, the :class:`GeneralPool` and the skipped-input report of the seed files.
    """
    from bayling.lid import LanguageID

    lid = LanguageID(cfg.filters.lid_backend, min_chars=1)
    bad = BadLines(cfg.skip_bad_lines)
    langs: list[str | None] = []
    for src in cfg.instructions:
        if src == "sample" and not _sample_has_data():
            continue
        langs += [rec["lang"] for rec in iter_instructions(src, bad, lid)]
    available = Counter(x for x in langs if x)
    counts = plan_counts(cfg, available)
    pool = GeneralPool(
        [s for s in cfg.instructions if s != "sample" or _sample_has_data()],
        cfg.skip_bad_lines,
        dict(available),
        lid=lid,
    )
    taken: set[int] = set()
    for key, k in sorted(counts.general.items()):
        cands = [i for i, x in enumerate(langs) if i not in taken and (key == "any" or x == key)]
        taken.update(rng.sample(cands, min(k, len(cands))))
    pool.chosen = taken
    if teacher_seeds:
        rest = [i for i, x in enumerate(langs) if i not in taken and x in ("eng_Latn", "zho_Hans")]
        pool.seeds = rng.sample(rest, min(teacher_seeds, len(rest)))
    return counts, pool, bad.to_dict()


def _sample_has_data() -> bool:
    from bayling.data.instructions import sample_instructions

    p = sample_instructions()
    return p.is_file() and p.stat().st_size > 0
