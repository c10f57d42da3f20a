"""Planning a build: which languages, how many examples of each kind, which general instructions.

BayLing 2's mix is about 43% Chinese and 26% English general instructions and 31% cross-lingual data.
With ``data.total`` set, :func:`plan_counts` turns ``data.mix`` shares into counts; general shares are
capped by what the seed files hold (counted per language in a first streaming pass) and the shortfall is
given to the translation tasks, so the requested total is still met.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from bayling.data.config import DataConfig
from bayling.data.instructions import iter_instructions
from bayling.errors import ConfigError, DataError, UnknownLanguageError
from bayling.languages import get_language
from bayling.validate import BadLines

TRANSLATION_KINDS = ("interactive", "pairs", "crosslingual")
"""Example kinds made from parallel records (the rest of a mix is general instructions)."""


@dataclass
class Counts:
    interactive: int
    crosslingual: int
    general: dict[str, int] = field(default_factory=dict)
    """``{code or "any": count}``."""
    pairs: int = 0
    budgets: dict[str, int] = field(default_factory=dict)
    """Token budget per kind (``interactive``, ``pairs``, ``crosslingual``, ``general_<code>``/``general``) when
    ``data.token_budget`` is set; empty otherwise."""
    shortfall: int = 0
    """What the general shares of ``mix`` wanted beyond the seed files (examples, or tokens with a token budget);
    given to the translation kinds."""

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
        elif key in (*TRANSLATION_KINDS, "general"):
            out[key] = share
        else:
            raise ConfigError(
                f"data.mix: unknown key {key!r}; use interactive, pairs, crosslingual, general or general_<code>"
            )
    if sum(out.values()) <= 0:
        raise ConfigError("data.mix: shares must not all be zero")
    return out


def split_mix(
    total: int, mix: dict[str, float], available: Counter[str]
) -> tuple[dict[str, int], dict[str, int], int]:
    """``total`` (examples or tokens) shared out by ``mix``: ``({code or "any": general}, {kind: translation},
    shortfall)``.

    General shares are capped by ``available`` (per language, in the same unit as ``total``); the shortfall
    goes to the translation kinds in proportion to their shares (all to ``crosslingual`` when none has one).
    """
    mix = _mix_keys(mix)
    norm = sum(mix.values())
    want = {k: round(total * v / norm) for k, v in mix.items()}
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
    trans = {k: want.get(k, 0) for k in TRANSLATION_KINDS}
    norm_t = sum(trans.values())
    if norm_t == 0:
        trans["crosslingual"] = shortfall
    else:
        kinds = [k for k in TRANSLATION_KINDS if trans[k] > 0]
        added = 0
        for k in kinds[:-1]:
            add = shortfall * trans[k] // norm_t
            trans[k] += add
            added += add
        trans[kinds[-1]] += shortfall - added
    return general, trans, shortfall


def plan_counts(cfg: DataConfig, available: Counter[str]) -> Counts:
    """Example counts per kind, from explicit counts or from ``total`` x ``mix`` (see module docstring)."""
    if cfg.total is None:
        return Counts(cfg.interactive, cfg.crosslingual, {"any": min(cfg.general, sum(available.values()))}, cfg.pairs)
    general, trans, shortfall = split_mix(cfg.total, cfg.mix, available)
    return Counts(trans["interactive"], trans["crosslingual"], general, trans["pairs"], shortfall=shortfall)


OVERGENERATE = 1.2
"""Token-budget builds generate this much more than each translation kind's budget (the merge drops the rest)."""


NEED_OVERGENERATE = 2.0
"""The same with ``data.budget_by`` splitting a kind's budget across target languages: a language with a small
share gets few examples, whose count varies more, so more are drawn to fill every language's share."""


def calibrate_counts(counts: Counts, pilot: dict[str, dict[str, float]], factor: float = OVERGENERATE) -> None:
    """Set the translation example counts of a ``token_budget`` build from a pilot's tokens per example and
    filter keep-rate (:func:`bayling.data.generate.pilot_tokens`): ``factor`` times what fills each kind's budget.

    Raises:
        DataError: when no pilot example of a budgeted kind passed the filters.
    """
    for kind, st in pilot.items():
        per = st["tokens"] * st["kept"]
        if per <= 0:
            raise DataError(
                f"data.token_budget: no {kind} example passed the filters in a pilot of the build "
                "(see data.filters); the budget cannot be filled"
            )
        setattr(counts, kind, math.ceil(counts.budgets[kind] * factor / per))


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
    cfg: DataConfig, rng: random.Random, teacher_seeds: int = 0, counter: Any = None
) -> tuple[Counts, GeneralPool, dict[str, Any]]:
    """Count the seed instructions per language, plan the counts, and choose which records to use.

    With ``data.token_budget`` the seed records are also token-counted (``counter``, a
    :class:`~bayling.data.stats.TokenCounter`) and chosen in random order until each general share of the
    budget is reached; the translation counts are then left at 0 for the build to calibrate
    (:func:`calibrate_counts`).

    Returns:
        The planned :class:`Counts`, the :class:`GeneralPool` and the skipped-input report of the seed files.
    """
    from bayling.lid import LanguageID

    lid = LanguageID(cfg.filters.lid_backend, min_chars=1)
    bad = BadLines(cfg.skip_bad_lines)
    langs: list[str | None] = []
    toks: list[int] = []
    pending: list[list[str]] = []

    def flush() -> None:
        counts = iter(counter.count([t for texts in pending for t in texts]))
        toks.extend(sum(next(counts) for _ in texts) for texts in pending)
        pending.clear()

    for src in cfg.instructions:
        if src == "sample" and not _sample_has_data():
            continue
        for rec in iter_instructions(src, bad, lid):
            langs.append(rec["lang"])
            if cfg.token_budget:
                pending.append([m["content"] for m in rec["messages"]])
                if len(pending) >= 256:
                    flush()
    if cfg.token_budget:
        flush()
    available = Counter(x for x in langs if x)
    pool = GeneralPool(
        [s for s in cfg.instructions if s != "sample" or _sample_has_data()],
        cfg.skip_bad_lines,
        dict(available),
        lid=lid,
    )
    taken: set[int] = set()
    if cfg.token_budget:
        tokens_available: Counter[str] = Counter()
        for x, t in zip(langs, toks, strict=True):
            if x:
                tokens_available[x] += t
        general, trans, shortfall = split_mix(cfg.token_budget, cfg.mix, tokens_available)
        chosen: dict[str, int] = {}
        for key, budget in sorted(general.items()):
            cands = [i for i, x in enumerate(langs) if i not in taken and (key == "any" or x == key)]
            used = 0
            chosen[key] = 0
            for i in rng.sample(cands, len(cands)):
                if used >= budget:
                    break
                taken.add(i)
                used += toks[i]
                chosen[key] += 1
        budgets = {("general" if k == "any" else f"general_{k}"): v for k, v in general.items() if v > 0}
        counts = Counts(0, 0, chosen, 0, budgets | {k: v for k, v in trans.items() if v > 0}, shortfall)
    else:
        counts = plan_counts(cfg, available)
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


# ----------------------------------------------------------------------------- budget by need

NEED_MEASURES = ("even", "off_target", "chrf", "fertility")
DIRECTED_KINDS = ("interactive", "pairs")
"""The translation kinds drawn over ``directions``, whose budget ``data.budget_by`` splits by language
(:func:`need_language`; cross-lingual examples pick their languages per record and stay even)."""
"""``data.budget_by``: how the translation budget is split across target languages (see :func:`need_weights`)."""


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` split in proportion to ``weights``: integers that sum exactly to ``total`` (largest remainder;
    ties go to the earlier code in sorted order, so the split is the same on every machine and run)."""
    if total < 0 or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"cannot split {total} by weights {weights}: need total >= 0 and weights >= 0, not all 0")
    norm = sum(weights.values())
    exact = {k: total * w / norm for k, w in sorted(weights.items())}
    out = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[: total - sum(out.values())]:
        out[k] += 1
    return out


def read_need_file(path: str, measure: str, targets: list[str], system: str | None = None) -> dict[str, float]:
    """The base's ``measure`` (``off_target`` % or ``chrf``) per target language, from ``path``.

    Accepted layouts: ``{code: value}``; a direction-keyed scores file (``{"eng_Latn-jav_Latn": {"chrf": {"score":
    ...}, "off_target": ...}}``, as ``scores.json`` of a translation evaluation); or an evaluation's
    ``metrics.json`` (``systems`` -> the system named ``system``, else the first whose name starts with ``base``).
    A language with several directions into it gets their mean. Every target must have a value.
    """
    from bayling.validate import read_json

    data = read_json(path, what="data.need_file")
    if isinstance(data, dict) and isinstance(data.get("systems"), dict):
        systems = data["systems"]
        name = system or next((n for n in systems if n.startswith("base")), None)
        if name not in systems:
            raise DataError(f"{path}: no system {name or 'base*'} among {sorted(systems)} (set data.need_system)")
        data = systems[name]
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of languages or directions")
    values: dict[str, list[float]] = {}
    for key, v in data.items():
        code = key.split("-")[-1]
        if isinstance(v, dict):
            v = v.get(measure)
            v = v.get("score") if isinstance(v, dict) else v
        try:
            code = get_language(code).code
        except UnknownLanguageError:
            continue  # not a language or direction key (a mean, a count...)
        if isinstance(v, int | float) and not isinstance(v, bool):
            values.setdefault(code, []).append(float(v))
    missing = [t for t in targets if t not in values]
    if missing:
        raise DataError(f"{path}: no {measure} for target language(s) {', '.join(missing)}")
    return {t: sum(values[t]) / len(values[t]) for t in targets}


def need_weights(measure: str, values: dict[str, float], floor: float) -> dict[str, float]:
    """Each target language's weight, ``floor + need`` with need in [0, 1]: what the base lacks there.

    * ``off_target``: the base's off-target share (``values`` in %);
    * ``chrf``: its chrF++ shortfall from the best target language, ``(best - chrf) / best``;
    * ``fertility``: the tokenizer's premium over English (tokens per English token on the same sentences) above 1,
      as a share of the largest premium: a tokenizer that splits a language finely was trained on little of it;
    * ``even``: equal weights.

    ``floor`` keeps a language the base already handles in the mix (0 would drop it entirely).
    """
    if measure == "even":
        return {t: 1.0 for t in values}
    if measure == "off_target":
        need = {t: min(max(v / 100, 0.0), 1.0) for t, v in values.items()}
    elif measure == "chrf":
        best = max(values.values())
        need = {t: (best - v) / best if best > 0 else 0.0 for t, v in values.items()}
    elif measure == "fertility":
        top = max(v - 1 for v in values.values())
        need = {t: max(v - 1, 0.0) / top if top > 0 else 0.0 for t, v in values.items()}
    else:
        raise ConfigError(f"data.budget_by: use {', '.join(NEED_MEASURES)}, got {measure!r}")
    return {t: floor + n for t, n in need.items()}


def budgets_by_need(budgets: dict[str, int], weights: dict[str, float], kinds: tuple[str, ...]) -> dict[str, int]:
    """Each of ``kinds``' token budget split across target languages by ``weights``: ``{"KIND:CODE": tokens}``,
    summing exactly to the kind's budget (:func:`allocate`). Kinds without a budget are left out."""
    out = {}
    for kind in kinds:
        if budgets.get(kind):
            out.update({f"{kind}:{t}": n for t, n in allocate(budgets[kind], weights).items()})
    return out


def need_language(src: str, tgt: str, pivots: Collection[str] = ()) -> str:
    """The language whose budget a direction spends: its target, unless the target is a pivot (en, zh) and the
    source is not; then its source.

    Why: a pivot needs nothing by every measure (English pays no premium over itself, the base is never
    off-target into it), so keyed by target the directions *into* a pivot got only ``need_floor``: in the first
    by-need build 7 of 714 translation pairs were X->en, and the tuned model returned the source unchanged in
    27-56 % of its X->en outputs, by tier (``bench/results/alignment_reward_draft.json``). Keyed by the non-pivot
    language, X's share covers both en->X and X->en, and the build stays even across the directions of each
    language.
    """
    return src if tgt in pivots and src not in pivots else tgt


def direction_weights(
    directions: list[tuple[str, str]], weights: dict[str, float], pivots: Collection[str] = ()
) -> list[float]:
    """Sampling weight of each direction: the weight of its :func:`need_language` shared among that language's
    directions, so examples of each language are drawn in proportion to its share of the budget."""
    keys = [need_language(s, t, pivots) for s, t in directions]
    count = Counter(keys)
    return [weights[k] / count[k] for k in keys]
