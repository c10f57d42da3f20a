"""Property-based fuzzing of every file reader: damaged input gives a clean result or one ``BaylingError``.

Each reader gets files built from generated records (wrong types, missing keys, empty strings) passed through
a damage layer (invalid UTF-8, NUL bytes, BOMs, CRLF, other encodings, deeply nested and huge lines, raw
bytes). The properties:

* the reader returns, or raises a :class:`~bayling.errors.BaylingError` whose one-line message names the file
  (and, where it names a line, a line that exists); never any other exception;
* readers that can skip bad records (``skip_bad_lines``) account for every non-blank line: kept + skipped
  equals the lines given, and every known-good line interleaved with the damage is kept.

Bounded: a fixed seed (``derandomize``), a small example budget, no deadline flakiness.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayling.errors import BaylingError
from bayling.validate import BadLines

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# ----------------------------------------------------------------------------- generated records

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
texts = st.sampled_from(["", " ", "Hi", "你好", "x\ny", "\x00", "\u2028", "a\tb"]) | st.text(max_size=20)
roles = st.sampled_from(["user", "assistant", "system", "tool", "human", "gpt", "", "USER"])


def record(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Objects with any subset of ``fields`` (each the right shape or any JSON value) plus a stray key."""
    return st.fixed_dictionaries(
        {}, optional={**{k: v | values for k, v in fields.items()}, "extra": values}
    )  # fmt: skip


turn = record({"role": roles, "content": texts, "from": roles, "value": texts})
chat_record = record(
    {
        "messages": st.lists(turn | values, max_size=4),
        "conversations": st.lists(turn | values, max_size=4),
        "instruction": texts,
        "input": texts,
        "output": texts,
        "response": texts,
        "history": st.lists(st.lists(texts, max_size=3) | values, max_size=2),
        "lang": st.sampled_from(["en", "zh", "klingon", "eng_Latn"]),
        "task": texts,
        "src": texts,
        "tgt": texts,
        "turns": st.lists(texts, max_size=2),
        "reply_langs": st.lists(texts | st.none(), max_size=2),
        "id": values,
    }
)
parallel_record = record(
    {
        "en": texts,
        "de": texts,
        "eng_Latn": texts,
        "xx_Zzzz": texts,
        "id": values,
        "doc": values,
        "domain": texts,
        "terms": st.lists(
            st.dictionaries(st.sampled_from(["en", "de", "qq"]), texts, max_size=2) | values, max_size=2
        ),
        "variants": st.dictionaries(texts, st.dictionaries(st.sampled_from(["en", "de"]), texts, max_size=2) | values),
    }
)
belebele_record = record(
    {
        "text": texts,
        "items": st.lists(
            record(
                {"question": texts, "answers": st.lists(record({"text": texts, "correct": st.booleans()}), max_size=5)}
            )
            | values,
            max_size=2,
        ),
    }
)
xcopa_record = record(
    {
        "premise": texts,
        "choice1": texts,
        "choice2": texts,
        "question": st.sampled_from(["cause", "effect", "why"]),
        "label": st.sampled_from([0, 1, 2, "1"]),
        "idx": values,
    }
)
agieval_record = record(
    {"passage": texts, "question": texts, "options": st.lists(texts, max_size=5), "label": st.sampled_from("ABQ")}
)
judge_record = record({"name": texts, "system_prompt": texts, "prompt_template": texts})
question_record = record(
    {
        "question_id": values,
        "category": texts,
        "text": st.lists(texts, max_size=2),
        "turns": st.lists(texts, max_size=2),
        "choices": st.lists(record({"turns": st.lists(texts, max_size=2)}), max_size=1),
    }
)
constraint_record = record({"src": texts, "tgt": texts, "constraint": st.lists(texts, max_size=2)})

# ----------------------------------------------------------------------------- the damage layer

BOM = b"\xef\xbb\xbf"
DAMAGE = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf", b"\r", b"\x80abc", b"\xe4\xb8"]


def _json_line(obj) -> st.SearchStrategy:
    return st.booleans().map(lambda ascii_: json.dumps(obj, ensure_ascii=ascii_).encode())


@st.composite
def damaged_line(draw, records: st.SearchStrategy) -> bytes:
    """One line: a JSON record, damaged or not, or something that is no JSON at all."""
    kind = draw(st.sampled_from(["json", "json", "json", "damaged", "encoded", "deep", "huge", "bytes", "value"]))
    if kind in ("json", "damaged"):
        line = draw(records.flatmap(_json_line))
        if kind == "damaged":
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(st.sampled_from(DAMAGE)) + line[at:]
    elif kind == "encoded":  # another encoding than UTF-8 (mixed encodings in one file)
        obj = draw(records)
        enc = draw(st.sampled_from(["latin-1", "cp1252", "gb18030", "utf-16", "shift_jis"]))
        line = json.dumps(obj, ensure_ascii=False).encode(enc, "replace")
    elif kind == "deep":
        depth = draw(st.integers(100, 5000))
        line = b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "huge":
        line = json.dumps({"messages": [{"role": "user", "content": "x" * 200_000}], "en": "y" * 1000}).encode()
    elif kind == "bytes":
        line = draw(st.binary(min_size=1, max_size=30))
    else:
        line = draw(values.flatmap(_json_line))
    return line.replace(b"\n", b" ")


@st.composite
def damaged_file(draw, records: st.SearchStrategy, good: bytes, max_lines: int = 6) -> tuple[bytes, int, int]:
    """``(file bytes, non-blank lines, known-good lines)``: damaged lines with good ones interleaved."""
    lines = draw(st.lists(damaged_line(records) | st.just(good) | st.just(b"") | st.just(b" \t"), max_size=max_lines))
    bom = draw(st.booleans())
    sep = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = (BOM if bom else b"") + sep.join(lines) + draw(st.sampled_from([b"", sep]))
    blank = [ln.decode("utf-8", "replace").strip() == "" for ln in lines]
    if bom and lines:  # the reader drops the BOM of line 1
        blank[0] = lines[0].decode("utf-8", "replace").strip() == ""
    return data, blank.count(False), lines.count(good)


def _file(data: bytes, name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix="fuzz-"))
    p = d / name
    p.write_bytes(data)
    return p


def assert_clean_error(err: BaseException, path: Path, n_lines: int | None = None) -> None:
    """A BaylingError, one line, naming the file; a ``file:N:`` it gives points at a line that exists."""
    assert isinstance(err, BaylingError), f"{type(err).__name__}: {err}"
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert str(path) in msg, msg
    m = re.match(re.escape(str(path)) + r":(\d+):", msg)
    if m and n_lines is not None:
        assert 1 <= int(m.group(1)) <= n_lines, msg


def run_reader(fn, path: Path, n_lines: int | None = None):
    try:
        return fn(path)
    except Exception as e:  # noqa: BLE001 - the property: only a clean BaylingError may escape
        assert_clean_error(e, path, n_lines)
        return None


GOOD_CHAT = json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
GOOD_PAR = json.dumps({"en": "Hello.", "de": "Hallo."})

# ----------------------------------------------------------------------------- chat / instruction / parallel


@FUZZ
@given(damaged_file(chat_record, GOOD_CHAT.encode()))
def test_data_stats_reader(sample):
    from bayling.data.stats import file_stats

    data, nonblank, good = sample
    path = _file(data, "train.jsonl")
    run_reader(file_stats, path, data.count(b"\n") + 1)
    out = file_stats(path, skip_bad=True)  # skipping: every line accounted for, no good one lost
    assert out["examples"] + out["skipped_lines"]["count"] == nonblank
    assert out["examples"] >= good


@FUZZ
@given(damaged_file(chat_record, GOOD_CHAT.encode()), st.sampled_from([".jsonl", ".json", ".json"]))
def test_instruction_seeds_reader(sample, suffix):
    from bayling.data.instructions import iter_instructions

    data, nonblank, good = sample
    if suffix == ".json" and nonblank % 2:  # Alpaca JSON: the lines as items of one list (else a damaged file)
        data = b"[" + b",".join(ln for ln in data.split(b"\n") if ln.strip()) + b"]"
    path = _file(data, "seeds" + suffix)
    run_reader(lambda p: list(iter_instructions(str(p))), path, data.count(b"\n") + 1)
    bad = BadLines(skip=True)
    recs = run_reader(lambda p: list(iter_instructions(str(p), bad)), path)
    if suffix == ".jsonl":
        assert len(recs) + bad.count == nonblank and len(recs) >= good


@FUZZ
@given(damaged_file(parallel_record, GOOD_PAR.encode()))
def test_parallel_jsonl_reader(sample):
    from bayling.records import iter_jsonl_parallel

    data, nonblank, good = sample
    path = _file(data, "par.jsonl")
    run_reader(lambda p: list(iter_jsonl_parallel(p)), path, data.count(b"\n") + 1)
    bad = BadLines(skip=True)
    recs = list(iter_jsonl_parallel(path, bad))
    assert len(recs) + bad.count == nonblank and len(recs) >= good
    assert all(isinstance(t, str) and t for r in recs for t in r.texts.values())


tsv_line = st.lists(texts.map(lambda t: t.replace("\t", " ").replace("\n", " ")), max_size=4).map(
    lambda cells: "\t".join(cells).encode()
)


@FUZZ
@given(
    st.sampled_from([b"id\ten\tde", b"en\tde", b"en\ten", b"klingon\tde", b"", b"\xffen\tde"]),
    st.lists(tsv_line | damaged_line(st.just({})), max_size=6),
)
def test_parallel_tsv_reader(header, rows):
    from bayling.records import iter_tsv_parallel

    data = b"\n".join([header, *rows]) + b"\n"
    path = _file(data, "par.tsv")
    run_reader(lambda p: list(iter_tsv_parallel(p)), path, len(rows) + 1)
    bad = BadLines(skip=True)
    run_reader(lambda p: list(iter_tsv_parallel(p, bad)), path, len(rows) + 1)


@FUZZ
@given(
    st.lists(tsv_line | damaged_line(st.just({})), max_size=5),
    st.lists(tsv_line | damaged_line(st.just({})), max_size=5),
    st.booleans(),
)
def test_aligned_files_reader(en, de, skip):
    from bayling.records import iter_aligned

    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    (root / "eng_Latn.devtest").write_bytes(b"\n".join(en) + b"\n")
    (root / "deu_Latn.devtest").write_bytes(b"\n".join(de) + b"\n")
    try:
        list(iter_aligned(root, ["en", "de"], bad=BadLines(skip=skip)))
    except Exception as e:  # noqa: BLE001
        assert_clean_error(e, root)


# ----------------------------------------------------------------------------- eval, benchmark and judge files


text_lines = st.lists(tsv_line | damaged_line(st.just({})), max_size=5).map(lambda ls: b"\n".join(ls))


@FUZZ
@given(text_lines, text_lines, st.sampled_from(["strict", "replace"]))
def test_eval_score_reader(hyp, ref, errors):
    from bayling.evaluate.metrics import score_files

    h, r = _file(hyp, "hyp.txt"), _file(ref, "ref.txt")
    try:
        score_files(str(h), [str(r)], "de", ["chrf"], errors=errors)
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, BaylingError) and "\n" not in str(e), repr(e)
        assert str(h) in str(e) or str(r) in str(e), str(e)
        assert errors == "strict" or "not valid" not in str(e)


@pytest.mark.parametrize(
    "name, records, good",
    [
        ("belebele", belebele_record, {"text": "P", "items": [{"question": "Q", "answers": [{"text": "a"}] * 4}]}),
        ("xcopa", xcopa_record, {"premise": "P.", "choice1": "A", "choice2": "B", "question": "cause", "label": 0}),
        ("agieval", agieval_record, {"question": "Q", "options": ["(A)x", "(B)y"], "label": "A"}),
        ("judge", judge_record, {"name": "n", "system_prompt": "s", "prompt_template": "t"}),
    ],
)
@FUZZ
@given(data=st.data())
def test_benchmark_and_judge_readers(name, records, good, data):
    from bayling.evaluate import benchmarks
    from bayling.evaluate.judge import load_judge_prompts

    readers = {
        "belebele": lambda p: benchmarks.read_belebele(p, "eng_Latn"),
        "xcopa": lambda p: benchmarks.read_xcopa(p, "en"),
        "agieval": benchmarks.read_agieval,
        "judge": load_judge_prompts,
    }
    raw, _, _ = data.draw(damaged_file(records, json.dumps(good).encode()))
    path = _file(raw, f"{name}.jsonl")
    run_reader(readers[name], path, raw.count(b"\n") + 1)


@FUZZ
@given(st.lists(tsv_line | damaged_line(st.just({})), max_size=6), st.sampled_from(["xnli", "mgsm"]))
def test_benchmark_tsv_readers(rows, name):
    from bayling.evaluate import benchmarks

    path = _file(b"\n".join(rows), f"{name}.tsv")
    reader = benchmarks.read_xnli if name == "xnli" else benchmarks.read_mgsm
    run_reader(lambda p: reader(p, "en"), path, len(rows))


@FUZZ
@given(
    damaged_file(question_record, b'{"question_id": 1, "text": ["Hi"], "turns": ["Hi"]}'),
    damaged_file(question_record, b'{"question_id": 1, "choices": [{"turns": ["ref"]}]}'),
    damaged_file(constraint_record, b'{"src": "a", "tgt": "b", "constraint": ["c"]}'),
)
def test_open_ended_and_constrained_readers(questions, refs, constraints):
    from bayling.evaluate.interactive import load_constrained
    from bayling.evaluate.openended import load_questions

    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    for rel, (raw, _, _) in {
        "bayling/BayLing-80/BayLing-80.multiturn.en.jsonl": questions,
        "mt_bench/question.jsonl": questions,
        "mt_bench/reference_answer/gpt-4.jsonl": refs,
        "bayling/constrained_translation/constraints.zh-en.en.jsonl": constraints,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
    for fn in (
        lambda: load_questions("bayling80_en", str(root)),
        lambda: load_questions("mt_bench", str(root)),
        lambda: load_constrained(str(root)),
    ):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            assert_clean_error(e, root)


@FUZZ
@given(damaged_file(record({"text": texts}), b'{"text": "Ein Satz."}'), st.sampled_from([".jsonl", ".txt"]))
def test_monolingual_text_reader(sample, suffix):
    from bayling.train.data import read_texts

    path = _file(sample[0], "mono" + suffix)
    run_reader(read_texts, path, sample[0].count(b"\n") + 1)


# ----------------------------------------------------------------------------- YAML configs and overrides

KEYS = ["name", "seed", "train", "data", "eval", "model", "serve", "lr", "learning_rate", "epochs", "languages", "x"]
yaml_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                                                          inner, max_size=3),
    max_leaves=10,
)  # fmt: skip


@st.composite
def yaml_file(draw) -> bytes:
    doc = draw(st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=4) | yaml_values)
    text = yaml.safe_dump(doc, allow_unicode=True).encode()
    kind = draw(st.sampled_from(["plain", "damaged", "alias", "tabs"]))  # deep nesting: a test below (~1 s)
    if kind == "damaged":
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at] + draw(st.sampled_from(DAMAGE + [b":", b"- ", b"{", b"!!python/object:os.system "])) + text[at:]
        )
    elif kind == "alias":
        text = draw(st.sampled_from([b"train: &a\n  export: *a\n", b"train: {lora_target_modules: &x [*x]}\n"]))
    elif kind == "tabs":
        text = text.replace(b"  ", b"\t")
    return text


@FUZZ
@given(yaml_file(), st.lists(st.text(max_size=24), max_size=3))
def test_yaml_config_reader(raw, overrides):
    from bayling.config import load_config
    from bayling.pipeline import RunConfig

    path = _file(raw, "cfg.yaml")
    run_reader(lambda p: load_config(RunConfig, p), path, raw.count(b"\n") + 1)
    try:
        load_config(RunConfig, None, overrides)
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, BaylingError) and "\n" not in str(e).strip(), repr(e)


TEMPLATE_KEYS = ["translate", "followups", "names", "eng_Latn", "answer", "needs", "target", "x"]
template_values = st.recursive(
    scalars | st.sampled_from(["target", "{text} {tgt}", "term"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(TEMPLATE_KEYS), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(TEMPLATE_KEYS), template_values, max_size=4), st.sampled_from(DAMAGE + [b""]))
def test_template_yaml_reader(doc, damage):
    from bayling.prompts import load_templates

    path = _file(yaml.safe_dump(doc, allow_unicode=True).encode() + damage, "templates.yaml")
    run_reader(lambda p: load_templates(str(p)), path)


pair_record = record({"prompt": st.lists(turn | values, max_size=2), "chosen": texts, "rejected": texts})


@FUZZ
@given(damaged_file(pair_record, b'{"prompt": [{"role": "user", "content": "Hi"}], "chosen": "a", "rejected": "b"}'))
def test_preference_pairs_reader(sample):
    from bayling.train.preference import read_pairs

    path = _file(sample[0], "pairs.jsonl")
    run_reader(read_pairs, path, sample[0].count(b"\n") + 1)


def test_config_nested_too_deeply_is_one_line(tmp_path):
    from bayling.config import load_config
    from bayling.pipeline import RunConfig

    p = tmp_path / "deep.yaml"
    p.write_text("train: " + "[" * 1100 + "]" * 1100 + "\n", encoding="utf-8")
    with pytest.raises(BaylingError, match=r"deep\.yaml: invalid YAML \(nested too deeply\)"):
        load_config(RunConfig, p)


def test_damaged_files_name_line_and_byte(tmp_path):
    """The message shapes the README shows, on hand-made damaged files."""
    from bayling.data.stats import file_stats
    from bayling.validate import read_lines

    p = tmp_path / "in.txt"
    p.write_bytes(b"one\ntwo\nthe caf\xe9 is open\n")
    with pytest.raises(BaylingError, match=r"in\.txt:3: not valid UTF-8 at byte 8 \(0xe9\)"):
        read_lines(p)
    assert read_lines(p, errors="replace")[2] == "the caf\ufffd is open"
    assert read_lines(p, encoding="latin-1")[2] == "the café is open"
    j = tmp_path / "chat.jsonl"
    j.write_bytes(
        b'\xef\xbb\xbf{"messages": [{"role": "user", "content": "Hi"}]}\r\n{"messages": [{"role": "user"}]}\n'
    )
    with pytest.raises(BaylingError) as e:
        file_stats(j)
    assert str(e.value) == f"{j}:2: messages[0]: expected a 'content' field, found an object with role"
    out = file_stats(j, skip_bad=True)
    assert out["examples"] == 1 and out["skipped_lines"]["count"] == 1
    j.write_text('{"messages": "oops"}\n', encoding="utf-8")
    with pytest.raises(BaylingError, match=r"chat\.jsonl:1: messages: expected a list, found a string \('oops'\)"):
        file_stats(j)
