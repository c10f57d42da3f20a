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
* Global-MMLU(-Lite), INCLUDE and MMLU-ProX-Lite (Hub data sets, one config per language, or a local copy
  under the data root) -> lm-eval's MMLU-family prompt ``question\nA. …\nD. …\nAnswer:`` (INCLUDE: with its
  per-domain description; MMLU-ProX: up to ten options, scored by log-likelihood where lm-eval generates).

Each benchmark is one :class:`Benchmark` entry of :data:`REGISTRY` (files, reader, scorer, metric), as lm-eval
keeps a task as one YAML entry; ``docs/datasets.md`` lists them with their licences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.errors import DataError
from bayling.records import dataset_dir
from bayling.validate import BadLines, at, check, iter_jsonl_numbered, iter_tsv


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
    subset: str = ""
    """A part reported on its own besides the whole (Global-MMLU: ``CS`` culturally sensitive, ``CA`` agnostic)."""


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


# ----------------------------------------------------------------------------- Hub sets (MMLU layout)

LETTERS = "ABCDEFGHIJ"


def mmlu_context(question: str, options: list[str], before_d: str = "\n") -> str:
    """lm-eval's MMLU-family ``doc_to_text``: ``{question.strip()}\nA. {a}\nB. {b}…\nAnswer:``.

    ``before_d`` precedes the ``D.`` line: INCLUDE's YAML folds its line break there into ``"\n "``.
    """
    text = question.strip()
    for i, (letter, option) in enumerate(zip(LETTERS, options, strict=False)):
        text += (before_d if i == 3 else "\n") + f"{letter}. {option}"
    return text + "\nAnswer:"


def hub_rows(source: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of one config and split of a Hub (or local ``hf:``) data set (an ``HfRef``),
    or of a JSONL file holding such rows."""
    from bayling.hub_data import load

    if isinstance(source, Path):
        return [(f"{source}:{n}", obj) for n, obj in _jsonl(source)]
    ds = load(source)
    return [(f"{source.text}:{n}", dict(row)) for n, row in enumerate(ds, 1)]


def read_global_mmlu(source: Any, lang: str) -> list[MCItem]:
    """Global-MMLU(-Lite) rows (``question``, ``option_a..d``, ``answer`` letter, ``cultural_sensitivity_label``).

    The prompt is lm-eval's ``global_mmlu`` one; ``subset`` carries the CS/CA label so the two halves are
    reported separately, as the Global-MMLU authors do.
    """
    items = []
    for where, row in hub_rows(source):
        _need(row, ("question", "answer"), where)
        _need(row, tuple(f"option_{x}" for x in "abcd"), where, str)
        if row["answer"] not in ("A", "B", "C", "D"):
            raise DataError(f"{where}: answer must be A, B, C or D, got {row['answer']!r}")
        options = [row[f"option_{x}"] for x in "abcd"]
        ctx = mmlu_context(row["question"], options)
        label = str(row.get("cultural_sensitivity_label") or "")
        rid = row.get("sample_id") or where.rsplit(":", 1)[1]
        label_index = "ABCD".index(row["answer"])
        items.append(MCItem(f"global_mmlu-{lang}-{rid}", ctx, list("ABCD"), label_index, lang, " ", label))
    return items


def read_include(source: Any, lang: str) -> list[MCItem]:
    """INCLUDE rows (``question``, ``option_a..d``, ``answer`` 0-3, ``domain``), lm-eval's ``include_base_44``
    prompt: the domain's description glued to the question (lm-eval puts no delimiter after a description in
    a 0-shot context) and its folded ``"\n D."`` line."""
    items = []
    for where, row in hub_rows(source):
        _need(row, ("question", "domain"), where)
        _need(row, tuple(f"option_{x}" for x in "abcd"), where, str)
        _need(row, ("answer",), where, int)
        if row["answer"] not in range(4):
            raise DataError(f"{where}: answer must be 0-3, got {row['answer']!r}")
        options = [row[f"option_{x}"] for x in "abcd"]
        ctx = INCLUDE_DESCRIPTION.format(domain=row["domain"]) + mmlu_context(row["question"], options, "\n ")
        items.append(MCItem(f"include-{lang}-{where.rsplit(':', 1)[1]}", ctx, list("ABCD"), row["answer"], lang))
    return items


INCLUDE_DESCRIPTION = "The following is multiple-choice question about {domain}."
"""lm-eval's per-domain ``description`` of ``include_base_44_*`` (one task per ``domain`` value)."""


def read_mmlu_prox(source: Any, lang: str) -> list[MCItem]:
    """MMLU-ProX(-Lite) rows (``question``, ``option_0..9`` (None when absent), ``answer`` letter).

    lm-eval has only a generative chain-of-thought task for MMLU-ProX; bayling scores it by log-likelihood
    in lm-eval's MMLU multiple-choice layout (the ``global_mmlu`` prompt with up to ten options A-J).
    """
    items = []
    for where, row in hub_rows(source):
        _need(row, ("question", "answer"), where)
        options = [row[f"option_{i}"] for i in range(10) if row.get(f"option_{i}") not in (None, "")]
        letters = LETTERS[: len(options)]
        if len(options) < 2 or row["answer"] not in letters:
            raise DataError(f"{where}: answer {row['answer']!r} is not one of the {len(options)} options")
        rid = row.get("question_id", where.rsplit(":", 1)[1])
        ctx = mmlu_context(row["question"], options)
        items.append(MCItem(f"mmlu_prox-{lang}-{rid}", ctx, list(letters), letters.index(row["answer"]), lang))
    return items


# ----------------------------------------------------------------------------- the registry


def _glob(folder: str, pattern: str, key: Callable[[Path], str], skip: tuple[str, ...] = ()) -> Callable:
    """``files`` of a benchmark kept as files under the data root: ``{key(path): path}``."""

    def files(data_dir: str | None) -> dict[str, Any]:
        root = dataset_dir(folder, data_dir)
        return {key(p): p for p in sorted(root.glob(pattern)) if p.stem not in skip}

    return files


def _hub(repo: str, folder: str, split: str) -> Callable:
    """``files`` of a Hub data set with one config per language: ``{config: HfRef(config, split)}``, read from
    ``DATA_DIR/folder`` when a local copy (``hf download --repo-type dataset --local-dir``) is there."""

    def files(data_dir: str | None) -> dict[str, Any]:
        from bayling.hub_data import HfRef, config_names, parse_hf
        from bayling.records import data_root

        root = data_root(data_dir)
        local = root / folder if root is not None and (root / folder).is_dir() else None
        ref = parse_hf(f"hf:{local}") if local is not None else HfRef(repo)
        return {c: HfRef(ref.repo_id, c, split, local=ref.local) for c in config_names(ref)}

    return files


@dataclass(frozen=True)
class Benchmark:
    """One benchmark as data, the way lm-eval keeps a task as a YAML entry: where its files are, how a file
    becomes items, how items are scored and which number is its headline.

    Adding a benchmark is one entry in :data:`REGISTRY` plus its reader.
    """

    name: str
    files: Callable[[str | None], dict[str, Any]]
    """data root -> ``{subset key (a language or a GaoKao subject): source}``; a source is a file or an ``HfRef``."""
    read: Callable[[Any, str], list]
    """``(source, language)`` -> items (:class:`MCItem` or :class:`GenItem`)."""
    scorer: str = "multiple_choice"
    """``multiple_choice`` (log-likelihood, :func:`bayling.evaluate.mc.score_mc`) or ``generate``
    (greedy answer, exact match of the final number: :func:`bayling.evaluate.mc.score_mgsm`)."""
    metric: str = "acc"
    """The headline number of its summary (``acc``, ``exact_match``)."""
    language: Callable[[str], str] = str
    """subset key -> the language it is in (an alias :func:`bayling.languages.get_language` accepts)."""
    source: str = ""
    """Where it comes from: a Hub id or the data-root folder (docs/datasets.md lists them all)."""


REGISTRY: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("belebele", _glob("belebele_reformatted", "*.jsonl", lambda p: p.stem), read_belebele,
                  source="belebele_reformatted/"),
        Benchmark("xcopa", _glob("xcopa", "*/test.*.jsonl", lambda p: p.parent.name), read_xcopa, source="xcopa/"),
        Benchmark("xnli", _glob("xnli_dev", "dev-*.tsv", lambda p: p.stem.split("-", 1)[1]), read_xnli,
                  source="xnli_dev/"),
        Benchmark("agieval_gaokao", _glob("agieval_v1", "gaokao-*.jsonl", lambda p: p.stem, ("gaokao-mathcloze",)),
                  read_agieval, language=lambda key: "zh", source="agieval_v1/"),
        Benchmark("global_mmlu_lite", _hub("CohereLabs/Global-MMLU-Lite", "global_mmlu_lite", "test"),
                  read_global_mmlu, source="CohereLabs/Global-MMLU-Lite"),
        Benchmark("global_mmlu", _hub("CohereLabs/Global-MMLU", "global_mmlu", "test"), read_global_mmlu,
                  source="CohereLabs/Global-MMLU"),
        Benchmark("include", _hub("CohereLabs/include-base-44", "include_base_44", "test"), read_include,
                  source="CohereLabs/include-base-44"),
        Benchmark("mmlu_prox_lite", _hub("li-lab/MMLU-ProX-Lite", "mmlu_prox_lite", "test"), read_mmlu_prox,
                  source="li-lab/MMLU-ProX-Lite"),
        Benchmark("mgsm", _glob("mgsm", "mgsm_*.tsv", lambda p: p.stem.split("_", 1)[1]), read_mgsm,
                  scorer="generate", metric="exact_match", source="mgsm/"),
    )
}  # fmt: skip
"""Every benchmark bayling runs, by the name ``eval.benchmarks.tasks`` uses."""

BENCHMARKS = tuple(REGISTRY)


def get_benchmark(name: str) -> Benchmark:
    """The registry entry of ``name``; an unknown name fails with the closest ones."""
    import difflib

    if name not in REGISTRY:
        close = difflib.get_close_matches(name, BENCHMARKS, n=3)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise DataError(f"unknown benchmark {name!r}{hint}; choose from {', '.join(BENCHMARKS)}")
    return REGISTRY[name]


def benchmark_files(name: str, data_dir: str | None = None) -> dict[str, Any]:
    """``{language or subset: source}`` of a benchmark (a file under the data root, or a Hub config)."""
    return get_benchmark(name).files(data_dir)


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

    task = get_benchmark(name)
    want = {get_language(x).code for x in languages} if languages else None
    out: dict[str, list] = {}
    for key, source in task.files(data_dir).items():
        lang = task.language(key)
        if want is not None and get_language(lang).code not in want:
            continue
        items = task.read(source, lang)
        out[key] = items[:limit] if limit > 0 else items
    if not out:
        raise DataError(f"{name}: no files for the requested languages under the data root")
    return out
