"""Dataset statistics: counts per task, turn type, direction and language; token counts with the target
tokenizer; per-language tokenizer fertility (the cost non-English users pay).

:class:`Stats` is fed one example at a time, so a 3M-example file is summarised in constant memory. Run
as::

    bayling data stats runs/quickstart/data/train.jsonl --tokenizer gemma-3-270m
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bayling.data.filters import tokens as lexical_tokens


class TokenCounter:
    """Counts tokens with a model's tokenizer (a name ``resolve_model`` knows, or a directory)."""

    def __init__(self, model: str) -> None:
        from bayling.models import load_tokenizer, resolve_model

        self.model = model
        self.tok = load_tokenizer(resolve_model(model))

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tok(texts, add_special_tokens=False)["input_ids"]
        return [len(x) for x in enc]


class Stats:
    """Streaming summary of chat examples (``messages`` plus bayling's metadata fields)."""

    def __init__(self, counter: TokenCounter | None = None, batch: int = 256) -> None:
        self.counter = counter
        self.batch = batch
        self._pending: list[dict[str, Any]] = []
        self.n = 0
        self.tasks: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()
        self.directions: Counter[str] = Counter()
        self.languages: Counter[str] = Counter()
        self.reply_languages: Counter[str] = Counter()
        self.instruction_languages: Counter[str] = Counter()
        self.assistant_turns = 0
        self.chars = 0
        self.tok: Counter[str] = Counter()
        self.tok_by_task: Counter[str] = Counter()
        self.tok_by_lang: Counter[str] = Counter()

    def add(self, ex: dict[str, Any]) -> None:
        self.n += 1
        task = ex.get("task", "unknown")
        self.tasks[task] += 1
        self.turns.update(ex.get("turns") or [])
        if task != "general" and ex.get("src") and ex.get("tgt"):
            self.directions[f"{ex['src']}-{ex['tgt']}"] += 1
        self.languages.update({c for c in (ex.get("src"), ex.get("tgt")) if c})
        if ex.get("instruction_lang"):
            self.instruction_languages[ex["instruction_lang"]] += 1
        self.reply_languages.update(c for c in ex.get("reply_langs") or [] if c)
        self.assistant_turns += sum(m["role"] == "assistant" for m in ex["messages"])
        self.chars += sum(len(m["content"]) for m in ex["messages"])
        if self.counter is not None:
            self._pending.append(ex)
            if len(self._pending) >= self.batch:
                self._flush()

    def _flush(self) -> None:
        exs, self._pending = self._pending, []
        texts = [m["content"] for ex in exs for m in ex["messages"]]
        counts = iter(self.counter.count(texts))
        for ex in exs:
            replies = iter(ex.get("reply_langs") or [])
            for m in ex["messages"]:
                k = next(counts)
                self.tok[m["role"]] += k
                self.tok_by_task[ex.get("task", "unknown")] += k
                if m["role"] == "assistant":
                    lang = next(replies, None)
                    self.tok_by_lang[lang or "mixed"] += k

    def to_dict(self) -> dict[str, Any]:
        if self._pending:
            self._flush()
        n = max(1, self.n)
        out: dict[str, Any] = {
            "examples": self.n,
            "tasks": dict(self.tasks),
            "task_ratio": {k: round(v / n, 3) for k, v in self.tasks.items()},
            "turn_types": dict(self.turns.most_common()),
            "directions_count": len(self.directions),
            "directions": dict(sorted(self.directions.items())),
            "languages_count": len(self.languages),
            "languages": dict(sorted(self.languages.items())),
            "reply_languages": dict(sorted(self.reply_languages.items())),
            "instruction_languages": dict(self.instruction_languages.most_common()),
            "assistant_turns_mean": round(self.assistant_turns / n, 3),
            "characters": self.chars,
        }
        if self.counter is not None:
            out["tokens"] = {
                "tokenizer": self.counter.model,
                "total": sum(self.tok.values()),
                "by_role": dict(self.tok),
                "by_task": dict(self.tok_by_task),
                "assistant_by_language": dict(sorted(self.tok_by_lang.items())),
            }
        return out


def fertility(columns: dict[str, list[str]], counter: TokenCounter) -> dict[str, dict[str, float | None]]:
    """Tokens per word / per character for each language, over the same (parallel) sentences.

    ``premium_vs_eng`` is tokens(lang) / tokens(eng_Latn) on identical content (Petrov et al., 2023, "Language
    Model Tokenizers Introduce Unfairness Between Languages"): how many times more a speaker pays per message.
    ``tokens_per_word`` is None for scripts written without spaces.

    Args:
        columns: ``{code: sentences}``, aligned across languages.
        counter: the tokenizer.
    """
    out: dict[str, dict[str, float | None]] = {}
    totals: dict[str, int] = {}
    for code, sents in columns.items():
        n_tok = sum(counter.count(sents))
        n_chars = sum(len(s) for s in sents)
        n_words = sum(len(s.split()) for s in sents)
        n_lex = sum(len(lexical_tokens(s)) for s in sents)
        spaced = n_words >= 0.5 * n_lex  # scripts without spaces have far fewer space-split words than units
        totals[code] = n_tok
        out[code] = {
            "sentences": len(sents),
            "tokens": n_tok,
            "tokens_per_word": round(n_tok / max(1, n_words), 3) if spaced else None,
            "tokens_per_char": round(n_tok / max(1, n_chars), 3),
        }
    if "eng_Latn" in totals:
        for code in out:
            out[code]["premium_vs_eng"] = round(totals[code] / max(1, totals["eng_Latn"]), 3)
    return dict(sorted(out.items(), key=lambda kv: -(kv[1].get("premium_vs_eng") or kv[1]["tokens_per_char"])))


META_FIELDS = {"task": str, "src": str, "tgt": str, "instruction_lang": str, "turns": [str], "reply_langs": [str]}
"""bayling's metadata fields of a chat example and their types (checked before counting; all optional)."""


def turns_of(obj: dict[str, Any], where: str) -> list[dict[str, str]]:
    """The turns of a chat (``messages``), ShareGPT (``conversations``) or Alpaca-style record, shape-checked.

    Raises:
        DataError: ``file:line``, what was expected and what was found.
    """
    from bayling.data.instructions import to_messages
    from bayling.validate import chat_messages

    return chat_messages(obj, where) if "messages" in obj or "conversations" in obj else to_messages(obj, where)


def file_stats(path: str | Path, tokenizer: str | None = None, skip_bad: bool = False) -> dict[str, Any]:
    """Stats of an existing chat JSONL (``messages``), ShareGPT (``conversations``) or Alpaca-style file.

    Raises:
        DataError: ``file:line`` of the first malformed record (unless ``skip_bad``: then they are counted in
            ``skipped_lines``).
    """
    from bayling.errors import DataError
    from bayling.validate import BadLines, check_fields, iter_jsonl_numbered

    bad = BadLines(skip_bad)
    st = Stats(TokenCounter(tokenizer) if tokenizer else None)
    for n, obj in iter_jsonl_numbered(path, bad):
        where = f"{path}:{n}"
        try:
            msgs = turns_of(obj, where)
            check_fields(obj, META_FIELDS, where)
        except DataError as e:
            bad.error(str(e))
            continue
        st.add(dict(obj, messages=msgs))
    out = st.to_dict()
    out["skipped_lines"] = bad.to_dict()
    return out
