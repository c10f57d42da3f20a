"""An LLM judge behind any OpenAI-compatible API: single-answer grading and pairwise comparison.

Follows FastChat's MT-Bench ``llm_judge`` protocol (same prompt names and ``[[rating]]`` / ``[[A]]``
markers; its ``judge_prompts.jsonl`` is used when given, else our own wording in
``judge_prompts.yaml``). A rating is the *first* ``[[n]]`` of the judgment (else the first ``[n]``), as
FastChat's ``one_score_pattern`` search takes it. Differences from FastChat, all deliberate:

* **Unparseable verdicts are errors, never ties or -1**: a judgment without a rating, or a pairwise one
  without exactly one of ``[[A]]``/``[[B]]``/``[[C]]`` (FastChat takes the first it finds, so "[[A]] or
  [[B]]" is A there), is asked again once (a separate cache entry); if the retry fails too the turn is
  recorded as an error, counted in the summaries (``errors``) and left out of scores and win rates.
* **Position swap**: every pairwise game is played twice with the answers swapped; a verdict counts
  only when both orders agree, otherwise the game is a tie (an order-biased judge cannot pick a side).
* **Verdict cache**: each judge reply is appended to a JSONL file keyed by a SHA-256 of the judge
  model, temperature and the exact prompt, so re-running (after a crash, or with one more system)
  never pays twice for the same judgment. A half-written last line is ignored on reading.
* **Wrong-language penalty**: an answer that language ID confidently places in another language than
  the question's (:func:`bayling.lid.wrong_language`: the :data:`~bayling.lid.JUDGE` policy; code, URLs,
  numbers and names are ignored, too little evidence is no evidence, and a language the question names
  is allowed) gets ``wrong_language_score`` (default 1, as the Finnish FastChat fork does) without asking
  the judge; in a pairwise game the answer in the right language wins.

The API key is read from the environment variable named by ``api_key_env`` (never from a config).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml

from bayling.config import Count, Positive, PositiveFloat, Temperature, between
from bayling.digest import digest
from bayling.endpoint import EndpointConfig, connection
from bayling.errors import BaylingError, ConfigError, require
from bayling.resume import Journal


@dataclass
class JudgeConfig(EndpointConfig):
    """An OpenAI-compatible judge (``eval.open_ended.judge``; FastChat MT-Bench prompts, single-answer and pairwise
    grading). The endpoint settings are :class:`bayling.endpoint.EndpointConfig`'s, shared with the data stage's
    teacher, at a judge's defaults (temperature 0, a longer timeout); the API root defaults to
    ``$BAYLING_JUDGE_BASE_URL``."""

    ALIASES: ClassVar[dict[str, str]] = {"timeout": "timeout_s", "workers": "concurrency"}
    """The judge's own names for two endpoint settings, from before they were shared; still accepted."""

    model: str = "gpt-4o"
    base_url_env: str = "BAYLING_JUDGE_BASE_URL"
    temperature: Temperature = 0.0
    max_tokens: Positive = 1024
    timeout_s: PositiveFloat = 120.0
    max_retries: Count = 3
    concurrency: Positive = 4
    mode: str = "single"
    """``single`` (1-10 rating per turn), ``pairwise`` (tuned vs base, both orders) or ``both``."""
    cache: str | None = None
    """Verdict cache (JSONL keyed by a hash of the judge prompt); default ``OUT_DIR/judge_cache.jsonl``."""
    prompts: str | None = None
    """FastChat-format ``judge_prompts.jsonl``; default: the copy shipped with bayling."""
    wrong_language_score: Annotated[float, between(0, 10)] = 1.0
    """Rating given, without asking the judge, to an answer not in the question's language."""


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    system: str
    template: str


def load_judge_prompts(path: str | Path | None = None) -> dict[str, JudgePrompt]:
    """FastChat ``judge_prompts.jsonl`` (``name``, ``system_prompt``, ``prompt_template``) or our YAML."""
    if path is None:
        src = Path(str(resources.files("bayling.evaluate") / "judge_prompts.yaml"))
        data = yaml.safe_load(src.read_text(encoding="utf-8"))
        return {k: JudgePrompt(k, v["system"], v["template"]) for k, v in data.items()}
    from bayling.validate import BadLines, field, iter_jsonl_numbered, need_file

    p = need_file(path, "judge prompts")
    out = {}
    for n, d in iter_jsonl_numbered(p, BadLines()):
        name, system, template = (field(d, k, str, f"{p}:{n}") for k in ("name", "system_prompt", "prompt_template"))
        out[name] = JudgePrompt(name, system, template)
    return out


_RATING = (re.compile(r"\[\[(\d+\.?\d*)\]\]"), re.compile(r"\[(\d+\.?\d*)\]"))


def parse_rating(text: str) -> float | None:
    """The first ``[[rating]]`` of a single-answer judgment, else the first ``[rating]`` (FastChat's two
    patterns, searched in that order); None if absent."""
    for pat in _RATING:
        m = pat.search(text)
        if m:
            return float(m.group(1))
    return None


def parse_winner(text: str) -> str | None:
    """``A``, ``B`` or ``tie`` from a pairwise judgment (``[[A]]``/``[[B]]``/``[[C]]``), None if absent."""
    marks = [m for m in ("[[A]]", "[[B]]", "[[C]]") if m in text]
    if len(marks) != 1:
        return None
    return {"[[A]]": "A", "[[B]]": "B", "[[C]]": "tie"}[marks[0]]


class Judge:
    """Ask an OpenAI-compatible chat model for verdicts, through the cache.

    Args:
        cfg: judge settings (base URL, model, key variable, retries…).
        cache_path: the verdict cache file.
        prompts: judge prompts by name (default: :func:`load_judge_prompts`).
    """

    def __init__(self, cfg: JudgeConfig, cache_path: str | Path, prompts: dict[str, JudgePrompt] | None = None):
        self.cfg = cfg
        self.cache = Journal(cache_path, key="key")
        self.prompts = prompts or load_judge_prompts(cfg.prompts)
        self.requests = 0  # judge calls actually sent (not served from the cache)
        self._client: Any = None
        self._lock = threading.Lock()

    def _api(self) -> Any:
        if self._client is None:
            openai = require("openai", "eval")
            base_url, key = connection(self.cfg, "eval.open_ended.judge")
            self._client = openai.OpenAI(
                base_url=base_url, api_key=key, timeout=self.cfg.timeout_s, max_retries=self.cfg.max_retries
            )
        return self._client

    def ask(self, prompt_name: str, attempt: int = 0, **fields: str) -> str:
        """Fill prompt ``prompt_name`` and return the judge's reply (cached; ``attempt`` > 0 is a retry, asked
        and cached separately from the first reply)."""
        if prompt_name not in self.prompts:
            raise ConfigError(f"judge prompt {prompt_name!r} missing from the prompt file")
        p = self.prompts[prompt_name]
        user = p.template.format(**fields)
        parts = [self.cfg.model, self.cfg.temperature, p.system, user] + ([attempt] if attempt else [])
        key = digest(parts, size=64, ensure_ascii=False)
        cached = self.cache.get(key)
        if cached is not None:
            return str(cached["judgment"])
        api = self._api()
        try:
            resp = api.chat.completions.create(
                model=self.cfg.model,
                messages=[{"role": "system", "content": p.system}, {"role": "user", "content": user}],
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens,
            )
        except Exception as e:  # noqa: BLE001 - openai's errors (connection, auth, 4xx/5xx) become one clear line
            if not type(e).__module__.startswith("openai"):
                raise
            raise BaylingError(f"judge request to {api.base_url} (model {self.cfg.model}) failed: {e}") from None
        text = resp.choices[0].message.content or ""
        with self._lock:
            self.requests += 1
        self.cache.add(
            {"key": key, "judgment": text, "prompt": prompt_name, "model": self.cfg.model, "attempt": attempt}
        )
        return text

    def verdict(self, parse: Callable[[str], Any], prompt_name: str, **fields: str) -> tuple[Any, str]:
        """``(parse(reply), reply)``, asking once more when the first reply does not parse (None)."""
        text = self.ask(prompt_name, **fields)
        value = parse(text)
        if value is None:
            text = self.ask(prompt_name, attempt=1, **fields)
            value = parse(text)
        return value, text

    def map(
        self, fn: Callable[[Any], Any], jobs: Sequence[Any], progress: Callable[[int], None] | None = None
    ) -> list:
        """Run ``fn`` over ``jobs`` with ``cfg.concurrency`` requests in flight; results in input order."""

        def run(job: Any) -> Any:
            r = fn(job)
            if progress is not None:
                progress(1)
            return r

        with ThreadPoolExecutor(max_workers=max(1, self.cfg.concurrency)) as pool:
            return list(pool.map(run, jobs))


# ----------------------------------------------------------------------------- grading one question


def _fields_single(turns: Sequence[str], answers: Sequence[str], refs: Sequence[str] | None, t: int) -> dict:
    if t == 0:
        f = {"question": turns[0], "answer": answers[0]}
    else:
        f = {"question_1": turns[0], "answer_1": answers[0], "question_2": turns[1], "answer_2": answers[1]}
    if refs:
        f |= {"ref_answer_1": refs[0], "ref_answer_2": refs[1] if len(refs) > 1 else ""}
    return f


def grade_single(
    judge: Judge, turns: Sequence[str], answers: Sequence[str], turn: int, lang: str, refs: Sequence[str] | None = None
) -> dict[str, Any]:
    """Rate ``answers[turn]`` 1-10 (turn 0 alone; turn 1 with the first exchange as context).

    Returns:
        ``{"rating": float | None, "penalized": bool, "error": bool, "judgment": str}``; ``error`` (rating
        None) when neither the judgment nor its retry holds a rating.
    """
    from bayling.lid import wrong_language

    if wrong_language(answers[turn], lang, turns[turn]):
        return {
            "rating": judge.cfg.wrong_language_score,
            "penalized": True,
            "error": False,
            "judgment": "wrong language",
        }
    name = ("single-math-v1" if refs else "single-v1") + ("-multi-turn" if turn > 0 else "")
    rating, text = judge.verdict(parse_rating, name, **_fields_single(turns, answers, refs, turn))
    return {"rating": rating, "penalized": False, "error": rating is None, "judgment": text}


def _fields_pair(turns: Sequence[str], a: Sequence[str], b: Sequence[str], refs: Sequence[str] | None, t: int) -> dict:
    if t == 0:
        f = {"question": turns[0], "answer_a": a[0], "answer_b": b[0]}
    else:
        f = {
            "question_1": turns[0],
            "question_2": turns[1],
            "answer_a_1": a[0],
            "answer_a_2": a[1],
            "answer_b_1": b[0],
            "answer_b_2": b[1],
        }
    if refs:
        f |= {"ref_answer_1": refs[0], "ref_answer_2": refs[1] if len(refs) > 1 else ""}
    return f


def grade_pair(
    judge: Judge,
    turns: Sequence[str],
    answers_1: Sequence[str],
    answers_2: Sequence[str],
    turn: int,
    lang: str,
    refs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Compare system 1 and system 2 on ``turn``, playing both orders.

    Returns:
        ``{"winner": "1" | "2" | "tie" | "error", "games": [verdict with 1 as A, verdict with 2 as A],
        "reason": ...}`` where an order-inconsistent pair of games is a tie and a game whose verdict did not
        parse twice makes the comparison an ``error`` (reason ``unparseable``).
    """
    from bayling.lid import wrong_language

    ok1 = wrong_language(answers_1[turn], lang, turns[turn]) is None
    ok2 = wrong_language(answers_2[turn], lang, turns[turn]) is None
    if ok1 != ok2:
        return {"winner": "1" if ok1 else "2", "games": [], "reason": "wrong language"}
    if not ok1:
        return {"winner": "tie", "games": [], "reason": "both wrong language"}
    name = ("pair-math-v1" if refs else "pair-v2") + ("-multi-turn" if turn > 0 else "")
    g1, _ = judge.verdict(parse_winner, name, **_fields_pair(turns, answers_1, answers_2, refs, turn))
    g2, _ = judge.verdict(parse_winner, name, **_fields_pair(turns, answers_2, answers_1, refs, turn))
    if g1 is None or g2 is None:
        return {"winner": "error", "games": [g1, g2], "reason": "unparseable"}
    first = {"A": "1", "B": "2"}.get(g1 or "", "tie")
    second = {"A": "2", "B": "1"}.get(g2 or "", "tie")
    winner = first if first == second else "tie"
    return {"winner": winner, "games": [g1, g2], "reason": "consistent" if first == second else "inconsistent"}
