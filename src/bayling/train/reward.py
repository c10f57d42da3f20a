"""The translation reward of the reward stages, and the translation requests they are computed on.

Reward stages get hacked: a policy rewarded by a metric alone learns to answer in a related language it writes
better, or to copy the source (chrF++ of a copy against the reference is far from zero when names and numbers
are shared). MiLMMT-46 sets the reward to zero when language ID says the output is not in the target language;
we do the same, and also for copies, with the *same* decision the evaluation's off-target and copy rates use
(:mod:`bayling.lid`), so what the reward stage is paid for is what the evaluation counts.

A request's reward (0..1):

* 0 when the output is ``off`` under :data:`bayling.lid.OFF_TARGET` or a copy of the source
  (:func:`bayling.lid.is_copy`); ``unknown`` (too little evidence) is not gated, as it is not counted off-target;
  with ``gate_loops``, also 0 when the output is a loop (:func:`bayling.lid.is_loop`): a loop in the target
  language passes the language gate and earns chrF++ for its names and script;
* else sentence chrF++ against the reference (sacreBLEU ``CHRF(word_order=2)``), optionally mixed with the mean of
  COMET and CometKiwi segment scores (``comet_weight``), minus ``length_penalty`` x ``|ln(len(output)/len(ref))|``
  (a guard against the over- and under-translation metric rewards invite), floored at 0.

Requests (:func:`translation_requests`) are the first exchange of the training data's translation examples
(interactive dialogues, plain pairs, cross-lingual translations): the data stage draws them from the training
articles only, and records of the held-out and few-shot files beside the data file are dropped again here.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bayling.chat import first_exchange
from bayling.errors import ConfigError, require
from bayling.io import read_jsonl
from bayling.prompts import DEFAULT_IL, fill, lang_name, load_templates

__all__ = [
    "Reward",
    "RewardSpec",
    "gate_verdicts",
    "translation_requests",
    "translation_rewards",
]

TRANSLATE_TURNS = ("translate", "translate_constrained")
"""Opening turn types whose reply is the reference translation of the record into the example's ``tgt``."""


@dataclass(frozen=True)
class RewardSpec:
    """What the reward adds to gated chrF++ (see the module docstring); the defaults are plain gated chrF++."""

    length_penalty: float = 0.0
    """Subtracted per unit of ``|ln(len(output) / len(reference))|`` (characters), on the 0..1 scale."""
    comet_model: str | None = None
    """A COMET ``checkpoints/model.ckpt`` (with references); None = not used."""
    cometkiwi_model: str | None = None
    """A CometKiwi ``checkpoints/model.ckpt`` (reference-free); None = not used."""
    comet_weight: float = 0.5
    """Weight of the COMET/CometKiwi mean against chrF++ when a checkpoint is given."""
    gate_loops: bool = False
    """Also zero the reward of a loop (:func:`bayling.lid.is_loop`). Off by default: the measured runs gated
    off-target answers and copies only (``bench/results/rec_grpo.json``, ``rec_offline*.json``)."""

    @classmethod
    def of(cls, section: Any) -> RewardSpec:
        """The spec of a ``train.reward`` section (:class:`bayling.train.config.RewardConfig`): one place that
        carries every reward field, for the config's check and the GRPO stage alike."""
        return cls(
            section.length_penalty,
            section.comet_model,
            section.cometkiwi_model,
            section.comet_weight,
            section.gate_loops,
        )

    def __post_init__(self) -> None:
        if self.length_penalty < 0:
            raise ConfigError(f"train.reward.length_penalty must be >= 0, got {self.length_penalty}")
        if not 0 <= self.comet_weight <= 1:
            raise ConfigError(f"train.reward.comet_weight must be in [0, 1], got {self.comet_weight}")


@dataclass(frozen=True)
class Reward:
    """One output's reward and what it was made of (logged, and read by the offline pair builder)."""

    value: float
    chrf: float
    """Sentence chrF++ (0-100) against the reference, whatever the gate says."""
    off_target: bool
    copy: bool
    length_ratio: float
    comet: float | None = None
    """Mean COMET/CometKiwi segment score (0-100) when a checkpoint is given."""
    loop: bool = False
    """A loop that the gate zeroed (only with :attr:`RewardSpec.gate_loops`)."""

    @property
    def gated(self) -> bool:
        """Whether the gate zeroed the reward (off-target, copy, or a gated loop)."""
        return self.off_target or self.copy or self.loop


def gate_verdicts(hyps: Sequence[str], sources: Sequence[str], tgts: Sequence[str]) -> list[tuple[bool, bool]]:
    """``(off_target, copy)`` per output, by the evaluation's own rules.

    An adapter over today's :func:`bayling.lid.off_target_rates` and :func:`bayling.lid.copy_flags` (the calls
    :func:`bayling.evaluate.translation.score_direction` makes); ``bayling.lid.translation_verdicts`` will be the
    one shared function, and this adapter should become a call to it.
    """
    from bayling.lid import copy_flags, off_target_rates

    out: list[tuple[bool, bool]] = [(False, False)] * len(hyps)
    for tgt in sorted(set(tgts)):
        idx = [i for i, t in enumerate(tgts) if t == tgt]
        _, verdicts = off_target_rates([hyps[i] for i in idx], tgt)
        copies = copy_flags([hyps[i] for i in idx], [sources[i] for i in idx])
        for i, v, c in zip(idx, verdicts, copies, strict=True):
            out[i] = (v.off, c)
    return out


@lru_cache(maxsize=2)
def _comet(model_path: str) -> Any:
    comet = require("comet", "comet")
    if not Path(model_path).is_file():
        raise ConfigError(
            f"train.reward: COMET checkpoint not found: {model_path} (the path of checkpoints/model.ckpt)"
        )
    return comet.load_from_checkpoint(model_path)


def _comet_segments(model_path: str, sources: Sequence[str], hyps: Sequence[str], refs: Sequence[str] | None) -> list:
    torch = require("torch", "train")
    rows = [
        {"src": s, "mt": h} | ({"ref": refs[i]} if refs else {})
        for i, (s, h) in enumerate(zip(sources, hyps, strict=True))
    ]
    out = _comet(model_path).predict(
        rows, batch_size=16, gpus=1 if torch.cuda.is_available() else 0, progress_bar=False
    )
    return [100 * float(x) for x in out.scores]


def translation_rewards(
    hyps: Sequence[str],
    refs: Sequence[str],
    sources: Sequence[str],
    tgts: Sequence[str],
    spec: RewardSpec | None = None,
) -> list[Reward]:
    """The reward of each output (see the module docstring) with its parts."""
    import sacrebleu

    from bayling.lid import is_loop

    spec = spec or RewardSpec()
    chrf = sacrebleu.CHRF(word_order=2)
    gates = gate_verdicts(hyps, sources, tgts)
    comet: list[float | None] = [None] * len(hyps)
    parts = [
        _comet_segments(path, sources, hyps, r)
        for path, r in ((spec.comet_model, refs), (spec.cometkiwi_model, None))
        if path
    ]
    if parts:
        comet = [sum(p[i] for p in parts) / len(parts) for i in range(len(hyps))]
    out = []
    for i, (h, r) in enumerate(zip(hyps, refs, strict=True)):
        c = chrf.sentence_score(h, [r]).score
        ratio = len(h.strip()) / max(1, len(r.strip()))
        off, copy = gates[i]
        loop = spec.gate_loops and is_loop(h)
        value = c / 100
        if comet[i] is not None:
            value = (1 - spec.comet_weight) * value + spec.comet_weight * comet[i] / 100
        value -= spec.length_penalty * abs(math.log(max(ratio, 1e-3)))
        value = 0.0 if off or copy or loop or not h.strip() else max(0.0, value)
        out.append(Reward(round(value, 6), round(c, 2), off, copy, round(ratio, 3), comet[i], loop))
    return out


# ----------------------------------------------------------------------------- requests


def _excluded_texts(data_file: Path) -> set[str]:
    """Texts of the held-out and few-shot records written beside ``data_file`` (the data stage's layout)."""
    texts: set[str] = set()
    for name in ("heldout.jsonl", "fewshot.jsonl"):
        path = data_file.parent / name
        if path.is_file():
            for rec in read_jsonl(path):
                texts.update(
                    v.strip() for k, v in rec.items() if k not in ("id", "doc", "domain") and isinstance(v, str)
                )
    return texts


def _source_from_prompt(prompt: str, src: str, tgt: str, il: str, templates: dict[str, Any]) -> str | None:
    """The source text inside a templated translation request (``{text}`` of a shipped template), or None."""
    names = {"src": lang_name(src, il, templates), "tgt": lang_name(tgt, il, templates)}
    for tpl in templates["translate"].get(il) or templates["translate"][DEFAULT_IL]:  # as prompts.pick falls back
        head, _, tail = tpl.partition("{text}")
        pattern = re.escape(fill(head, **names)) + r"(?P<text>.+?)" + re.escape(fill(tail, **names))
        m = re.fullmatch(pattern + r"(?P<rest>\n.*)?", prompt, flags=re.DOTALL)
        if m:
            return m.group("text").strip()
    return None


def translation_requests(
    data_file: str | Path, limit: int, seed: int, targets: list[str] | tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Up to ``limit`` translation requests of the training data into ``targets`` (every language when empty),
    shuffled with ``seed``. Both stages after SFT that work on the failing languages draw from here: GRPO
    (``train.reward.targets``) and the offline variant (``train.preference.targets``).

    Each is ``{"prompt": messages, "reference": str, "source": str, "src": code, "tgt": code}``: the first
    exchange of an example whose opening turn is a translation (its reply is the record's text in ``tgt``).
    The source text is the same record's reply in ``src`` elsewhere in the file, or is read out of the request
    through the shipped templates; requests whose source is found neither way are skipped. Requests sharing a
    text with the held-out or few-shot records beside the file are dropped (those are evaluation data).
    """
    path = Path(data_file)
    rows = []
    texts: dict[tuple[str, str], str] = {}  # (record id, language) -> the record's text
    for ex in read_jsonl(path):
        if (ex.get("turns") or [None])[0] not in TRANSLATE_TURNS or not ex.get("tgt") or not ex.get("src"):
            continue
        head = first_exchange(ex.get("messages", []))
        if head is None:
            continue
        texts[(str(ex.get("source_id")), ex["tgt"])] = head[-1].content
        rows.append((ex, head))
    templates = load_templates()
    excluded = _excluded_texts(path)
    items = []
    for ex, head in rows:
        src, tgt, user = ex["src"], ex["tgt"], head[-2].content
        source = texts.get((str(ex.get("source_id")), src))
        if source is None or source not in user:
            source = _source_from_prompt(user, src, tgt, ex.get("instruction_lang") or "eng_Latn", templates)
        reference = head[-1].content
        if not source or source.strip() in excluded or reference.strip() in excluded:
            continue
        prompt = [m.to_dict() for m in head[:-1]]
        items.append({"prompt": prompt, "reference": reference, "source": source, "src": src, "tgt": tgt})
    random.Random(seed).shuffle(items)
    if targets:
        items = [it for it in items if it["tgt"] in targets]
    return items[:limit]
