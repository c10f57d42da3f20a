"""Readers for the knowledge/understanding benchmarks in their public file layouts.

Each reader turns one language's file into items. Belebele, XCOPA and XNLI use the prompt strings
of lm-evaluation-harness 0.4 (``doc_to_text``/``doc_to_choice`` of its stock tasks, the default
``target_delimiter`` " "), so with :mod:`bayling.evaluate.mc`'s scoring their accuracies are lm-eval's
(``tests/evaluate/test_mc_parity.py``, ``bench/mc_parity.py``); GaoKao uses AGIEval's own zero-shot
Chinese layout (lm-eval reads a preformatted hub copy instead), with no delimiter; MGSM questions are
asked in a chat turn with bayling's instruction and answers extracted with lm-eval's ``mgsm`` regex:

* Belebele (``belebele_reformatted/LANG.jsonl``, grouped by passage) -> ``P: … Q: … A: … Answer:``, choices A-D;
* XCOPA (``xcopa/LANG/test.LANG.jsonl``) -> premise + cause/effect connector, the two choices;
* XNLI (``xnli_dev/dev-LANG.tsv``: premise, hypothesis, label) -> empty context, choices
  ``premise, right? Yes|Also|No, hypothesis``;
* AGIEval v1 GaoKao (``agieval_v1/gaokao-*.jsonl``, single-answer items) -> question + options, choices A-D;
* MGSM (``mgsm/mgsm_LANG.tsv``: question, number; no header, unbalanced quotes) -> generation items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bayling.errors import DataError
from bayling.records import dataset_dir
from bayling.validate import BadLines, at, check, iter_jsonl_numbered, iter_tsv

MC_BENCHMARKS = ("belebele", "xcopa", "xnli", "agieval_gaokao")
BENCHMARKS = MC_BENCHMARKS + ("mgsm",)


@dataclass
class MCItem:
    """A multiple-choice item: score ``context`` + ``target_delimiter + choice`` for each choice.

    ``choices`` are lm-eval's ``doc_to_choice`` strings (without the delimiter: ``acc_norm`` divides by
    their length); ``label`` is the right one.
    """

    id: str
    context: str
    choices: list[str]
    label: int
    lang: str
    target_delimiter: str = " "
    """lm-eval's default ``target_delimiter``; GaoKao's Chinese layout uses none."""


@dataclass
class GenItem:
    """A generation item scored by exact match of the final number (MGSM)."""

    id: str
    question: str
    answer: str
    lang: str


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    """``(line, object)`` rows; bad bytes, bad JSON and non-objects name ``file:line`` (:mod:`bayling.validate`)."""
    return list(iter_jsonl_numbered(path, BadLines()))


def _need(obj: dict, keys: tuple[str, ...], where: str, kind: object = "text") -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    for k in keys:
        if kind is not None:
            check(obj[k], kind, at(where, k))


# ----------------------------------------------------------------------------- Belebele


def read_belebele(path: Path, lang: str) -> list[MCItem]:
    """Belebele in the passage-grouped layout (``text``, ``items[].question``, ``answers[].text/correct``)."""
    items = []
    for n, obj in _jsonl(path):
        _need(obj, ("text",), f"{path}:{n}")
        _need(obj, ("items",), f"{path}:{n}", list)
        for j, q in enumerate(obj["items"]):
            where = at(f"{path}:{n}", f"items[{j}]")
            _need(check(q, dict, where), ("question",), where)
            answers = check(q.get("answers") or [], list, at(where, "answers"))
            for k, a in enumerate(answers):
                _need(check(a, dict, at(where, f"answers[{k}]")), ("text",), at(where, f"answers[{k}]"), str)
            correct = [k for k, a in enumerate(answers) if a.get("correct")]
            if len(answers) != 4 or len(correct) != 1:
                raise DataError(f"{path}:{n}: item {j} must have 4 answers with exactly one correct")
            opts = "\n".join(f"{letter}: {a['text']}" for letter, a in zip("ABCD", answers, strict=True))
            ctx = f"P: {obj['text']}\nQ: {q['question'].strip()}\n{opts}\nAnswer:"
            items.append(MCItem(f"belebele-{lang}-{n}-{j}", ctx, ["A", "B", "C", "D"], correct[0], lang))
    return items


# ----------------------------------------------------------------------------- XCOPA

XCOPA_CONNECTORS = {
    "et": ("sest", "seetõttu"), "ht": ("poukisa", "donk sa"), "it": ("perché", "quindi"), "id": ("karena", "maka"),
    "qu": ("imataq", "chaymi"), "sw": ("kwa sababu", "kwa hiyo"), "zh": ("因为", "所以"), "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"), "tr": ("çünkü", "bu yüzden"), "vi": ("bởi vì", "vì vậy"), "en": ("because", "therefore"),
}  # fmt: skip
"""(cause, effect) connectors per language, as in lm-eval's ``xcopa/utils.py``."""


def read_xcopa(path: Path, lang: str) -> list[MCItem]:
    """XCOPA JSONL (``premise``, ``choice1``, ``choice2``, ``question`` cause|effect, ``label`` 0|1)."""
    if lang not in XCOPA_CONNECTORS:
        raise DataError(f"{path}: no XCOPA connectors for language {lang!r}")
    cause, effect = XCOPA_CONNECTORS[lang]
    items = []
    for n, obj in _jsonl(path):
        _need(obj, ("premise", "choice1", "choice2", "question"), f"{path}:{n}")
        _need(obj, ("label",), f"{path}:{n}", None)
        conn = {"cause": cause, "effect": effect}.get(obj["question"])
        if conn is None or obj["label"] not in (0, 1):
            raise DataError(f"{path}:{n}: question must be cause|effect and label 0|1")
        ctx = obj["premise"].strip()[:-1] + f" {conn}"
        choices = [c[0].lower() + c[1:] for c in (obj["choice1"], obj["choice2"])]
        items.append(MCItem(f"xcopa-{lang}-{obj.get('idx', n)}", ctx, choices, int(obj["label"]), lang))
    return items


# ----------------------------------------------------------------------------- XNLI

XNLI_WORDS = {
    "en": ("right?", "Yes", "Also", "No"), "de": ("richtig?", "Ja", "Auch", "Nein"),
    "fr": ("correct?", "Oui", "Aussi", "Non"), "ru": ("правильно?", "Да", "Так", "Нет"),
    "sw": ("sahihi?", "Ndiyo", "Hivyo", "Hapana"), "zh": ("正确?", "是的", "所以", "不是的"),
    "es": ("correcto?", "Sí", "Asi que", "No"),
}  # fmt: skip
"""(question, entailment, neutral, contradiction) words per language, as in lm-eval's ``xnli_*.yaml``."""
XNLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


def read_xnli(path: Path, lang: str) -> list[MCItem]:
    """XNLI TSV without header: premise, hypothesis, label (entailment|neutral|contradiction)."""
    if lang not in XNLI_WORDS:
        raise DataError(f"{path}: no XNLI prompt words for language {lang!r}")
    q, *answers = XNLI_WORDS[lang]
    items = []
    for n, row in iter_tsv(path):
        if row == [""]:
            continue
        if len(row) != 3 or row[2] not in XNLI_LABELS:
            raise DataError(f"{path}:{n}: expected premise<TAB>hypothesis<TAB>entailment|neutral|contradiction")
        premise, hyp, label = row
        choices = [f"{premise}, {q} {a}, {hyp}" for a in answers]
        items.append(MCItem(f"xnli-{lang}-{n}", "", choices, XNLI_LABELS[label], lang))
    return items


# ----------------------------------------------------------------------------- AGIEval GaoKao


def read_agieval(path: Path, lang: str = "zh") -> list[MCItem]:
    """AGIEval v1 JSONL (``passage``, ``question``, ``options`` "(A)…", ``label`` letter); multi-answer items skipped."""
    items = []
    for n, obj in _jsonl(path):
        _need(obj, ("question",), f"{path}:{n}")
        _need(obj, ("options",), f"{path}:{n}", list)
        _need(obj, ("label",), f"{path}:{n}", None)
        for k, option in enumerate(obj["options"]):
            check(option, str, at(f"{path}:{n}", f"options[{k}]"))
        label, options = obj["label"], obj["options"]
        if not options or not isinstance(label, str) or len(label) != 1 or label not in "ABCDE"[: len(options)]:
            continue  # cloze or multiple-answer item: not a single-choice question
        passage = f"{obj['passage']}\n" if obj.get("passage") else ""
        letters = "ABCDE"[: len(options)]
        ctx = f"{passage}问题：{obj['question']}\n选项：{' '.join(options)}\n答案：从A到{letters[-1]}，我们应选择"
        items.append(MCItem(f"agieval-{path.stem}-{n}", ctx, list(letters), letters.index(label), lang, ""))
    return items


# ----------------------------------------------------------------------------- MGSM


def read_mgsm(path: Path, lang: str) -> list[GenItem]:
    """MGSM TSV without header (question<TAB>number); read with ``QUOTE_NONE`` because quotes are unbalanced."""
    items = []
    for n, row in iter_tsv(path):
        if row == [""]:
            continue
        if len(row) != 2 or not row[1].strip().replace(",", "").lstrip("-").replace(".", "", 1).isdigit():
            raise DataError(f"{path}:{n}: expected question<TAB>number")
        items.append(GenItem(f"mgsm-{lang}-{n}", row[0], row[1].strip().replace(",", ""), lang))
    return items


# ----------------------------------------------------------------------------- discovery


def benchmark_files(name: str, data_dir: str | None = None) -> dict[str, Path]:
    """``{language or subset: file}`` of a benchmark found under the data root."""
    if name == "belebele":
        root = dataset_dir("belebele_reformatted", data_dir)
        return {p.stem: p for p in sorted(root.glob("*.jsonl"))}
    if name == "xcopa":
        root = dataset_dir("xcopa", data_dir)
        return {p.parent.name: p for p in sorted(root.glob("*/test.*.jsonl"))}
    if name == "xnli":
        root = dataset_dir("xnli_dev", data_dir)
        return {p.stem.split("-", 1)[1]: p for p in sorted(root.glob("dev-*.tsv"))}
    if name == "agieval_gaokao":
        root = dataset_dir("agieval_v1", data_dir)
        return {p.stem: p for p in sorted(root.glob("gaokao-*.jsonl")) if p.stem != "gaokao-mathcloze"}
    if name == "mgsm":
        root = dataset_dir("mgsm", data_dir)
        return {p.stem.split("_", 1)[1]: p for p in sorted(root.glob("mgsm_*.tsv"))}
    raise DataError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")


def load_benchmark(
    name: str, data_dir: str | None = None, languages: list[str] | None = None, limit: int = 0
) -> dict[str, list[MCItem] | list[GenItem]]:
    """Items per language/subset of one benchmark (first ``limit`` of each; 0 = all).

    Args:
        name: one of :data:`BENCHMARKS`.
        data_dir: the data root (``$BAYLING_EVAL_DATA`` by default).
        languages: keep only these (FLORES codes or aliases; ``agieval_gaokao`` subsets count as Chinese).
        limit: items per language.
    """
    from bayling.languages import get_language

    want = {get_language(x).code for x in languages} if languages else None
    readers = {
        "belebele": read_belebele,
        "xcopa": read_xcopa,
        "xnli": read_xnli,
        "agieval_gaokao": read_agieval,
        "mgsm": read_mgsm,
    }
    out: dict[str, list] = {}
    for key, path in benchmark_files(name, data_dir).items():
        lang_key = "zh" if name == "agieval_gaokao" else key
        code = get_language(lang_key).code
        if want is not None and code not in want:
            continue
        items = readers[name](path, lang_key if name != "belebele" else key)
        out[key] = items[:limit] if limit > 0 else items
    if not out:
        raise DataError(f"{name}: no files for the requested languages under the data root")
    return out
