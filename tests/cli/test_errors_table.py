"""The contract for bad input: every command, every kind of damaged input -> exit status 2 and one line on
stderr starting ``bayling: error:``, never a traceback.

Each row runs the real ``bayling`` console script in a subprocess (this checkout's code, through PYTHONPATH)
in a directory of damaged files, and every failure comes before a model loads, so a row takes ~0.2 s.
**Add a row whenever a new input is accepted** (a new command, file format, flag or config section);
``test_every_command_has_a_row`` fails when a command of ``bayling --help`` has none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHAT_OK = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def _gguf_header() -> bytes:
    """A GGUF v3 header describing one float32 tensor of 4 values (16 bytes of data that are not there)."""
    import struct

    name = b"t"
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 0)
    return head + struct.pack("<Q", len(name)) + name + struct.pack("<IQIQ", 1, 4, 0, 0)


GGUF_HEADER = _gguf_header()

FILES: dict[str, bytes | str | None] = {
    "ok.jsonl": json.dumps(CHAT_OK) + "\n",
    "nocontent.jsonl": '{"messages": [{"role": "user"}]}\n',
    "oops.jsonl": '{"messages": "oops"}\n',
    "mixed.jsonl": json.dumps(CHAT_OK).encode() + b'\n{"messages": [{"role": "user", "content": "h\xffi"}]}\n',
    "deep.jsonl": "[" * 100_000 + "\n",
    "array.jsonl": "[1, 2]\n",
    "speaker.jsonl": '{"conversations": [{"from": "bot", "value": "Hi"}]}\n',
    "alpaca.jsonl": '{"instruction": "Say hi"}\n',
    "bad.txt": b"hello\nw\xffrld\n",
    "two.txt": "Hallo\nWelt\n",
    "one.txt": "Hallo\n",
    "empty.txt": "",
    "bad.tsv": "en\tde\nHello\tHallo\nonly one column\n",
    "afile": "not a directory\n",
    "ok.yaml": "name: t\n",
    "lr.yaml": "name: t\ntrain:\n  lr: 1.0e-4\n",
    "broken.yaml": "train: [\n",
    "list.yaml": "- a\n- b\n",
    "latin1.yaml": b"name: t\ndata:\n  total: 5\n  caf\xe9: 1\n",
    "dbuild.yaml": "name: t\nout_dir: out\ndata:\n  source: bad.tsv\n  languages: [en, de]\n",
    "evrun.yaml": "eval:\n  max_sentence: 5\nsystems:\n  base: gemma-3-270m\n",
    "evold.yaml": "eval:\n  benchmark_limit: 5\nsystems:\n  base: gemma-3-270m\n",
    "serve.yaml": "max_qeue: 3\n",
    "ev/metrics.json": '{"name": "x", "translation": [1,\n',
    "runs/broken/config.yaml": "name: broken\ntrain: [\n",
    "runs/broken/data/.keep": "",
    "adir/.keep": "",
    # damaged model files, run files and test-set metadata (issue 24)
    "bad.gguf": "not a GGUF file\n",
    "cut.gguf": GGUF_HEADER[:-5],
    "short.gguf": GGUF_HEADER,
    "badtok/config.json": '{"model_type": "llama"}',
    "badtok/tokenizer_config.json": '{"chat_template": ',
    "latintok/config.json": '{"model_type": "llama"}',
    "latintok/tokenizer_config.json": b'{"chat_template": "caf\xe9"}',
    "runs/adbad/config.yaml": "name: adbad\n",
    "runs/adbad/data/.keep": "",
    "runs/adbad/train/final/adapter_config.json": "{",
    "runs/sumbad/config.yaml": "name: sumbad\n",
    "runs/sumbad/data/.keep": "",
    "runs/sumbad/train/final/adapter_config.json": "{}",
    "runs/sumbad/train/summary.json": '{"steps": 3,',
    "runs/markbad/config.yaml": "name: markbad\n",
    "runs/markbad/data/.keep": "",
    "runs/markbad/train/final/adapter_config.json": "{}",
    "runs/markbad/train/final/bayling_base_model.json": b'{"base_model": "caf\xe9"}',
    "fl/devtest/eng_Latn.devtest": "Hello\nWorld\nAgain\n",
    "fl/devtest/deu_Latn.devtest": "Hallo\nWelt\nWieder\n",
    "fl/metadata_devtest.tsv": b"URL\tdomain\nhttp://a\tx\nhttp://caf\xe9\tx\nhttp://b\tx\n",
    "evfl.yaml": "eval:\n  testset: flores200\n  flores_dir: fl\n  translation:\n    directions: [eng_Latn-deu_Latn]\n"
    "    prompt: fewshot\nsystems:\n  base: gemma-3-270m\n",
    "ev2/metrics.json": b'{"name": "caf\xe9"}\n',
    "ev3/metrics.json": '{"name": "x", "directions": ["eng_Latn-deu_Latn"], "systems": {"tuned": [1, 2]}}\n',
}

# (row id, argv after `bayling`, stdin, what the one error line must contain)
TABLE = [
    # bayling data: chat JSONL (OpenAI messages, ShareGPT conversations, Alpaca) read by stats and check
    ("data stats: no content", "data stats nocontent.jsonl", None,
     "nocontent.jsonl:1: messages[0]: expected a 'content' field, found an object with role"),
    ("data stats: messages not a list", "data stats oops.jsonl", None,
     "oops.jsonl:1: messages: expected a list, found a string ('oops')"),
    ("data check: no content", "data check nocontent.jsonl", None,
     "nocontent.jsonl:1: messages[0]: expected a 'content' field, found an object with role"),
    ("data check: messages not a list", "data check oops.jsonl", None,
     "oops.jsonl:1: messages: expected a list, found a string ('oops')"),
    ("data stats: not UTF-8", "data stats mixed.jsonl", None, "mixed.jsonl:2: not valid UTF-8 at byte 45 (0xff)"),
    ("data stats: nested too deeply", "data stats deep.jsonl", None,
     "deep.jsonl:1: invalid JSON line (nested too deeply)"),
    ("data stats: not an object", "data stats array.jsonl", None,
     "array.jsonl:1: invalid JSON line (expected a JSON object, got array)"),
    ("data stats: Alpaca without output", "data stats alpaca.jsonl", None,
     "alpaca.jsonl:1: expected 'instruction' + 'response'/'output'"),
    ("data stats: missing file", "data stats missing.jsonl", None, "file not found: missing.jsonl"),
    ("data stats: a directory", "data stats adir", None, "adir is a directory, not a file"),
    ("data check: ShareGPT speaker", "data check speaker.jsonl", None, "speaker.jsonl:1: conversations[0]: unknown"),
    ("data check: eval file not UTF-8", "data check ok.jsonl --eval-file bad.txt", None,
     "bad.txt:2: not valid UTF-8 at byte 2 (0xff)"),
    # bayling data build / teacher / the run-config form: presets and the files they name
    ("data build: parallel TSV", "data build dbuild.yaml", None,
     "bad.tsv:3: expected 2 tab-separated columns, found 1"),
    ("data build: config typo", "data build dbuild.yaml data.totl=5", None,
     "unknown config key 'data.totl' (did you mean 'total'?)"),
    ("data teacher: YAML not UTF-8", "data teacher latin1.yaml", None, "latin1.yaml:4: not valid UTF-8 at byte 6 (0xe9)"),
    ("data RUN_CONFIG: alias", "data ok.yaml train.lr=1", None,
     "ok.yaml: unknown config key 'train.lr' (did you mean 'learning_rate'?)"),
    # run / train: YAML configs and overrides
    ("run: lr in the YAML", "run lr.yaml", None, "lr.yaml: unknown config key 'train.lr' (did you mean 'learning_rate'?)"),
    ("run: bs", "run ok.yaml train.bs=8", None, "unknown config key 'train.bs' (did you mean 'batch_size'?)"),
    ("train: num_train_epochs", "train ok.yaml train.num_train_epochs=1", None,
     "unknown config key 'train.num_train_epochs' (did you mean 'epochs'?)"),
    ("train: steps", "train ok.yaml train.steps=1", None, "unknown config key 'train.steps' (did you mean 'max_steps'?)"),
    ("train: key in the wrong section", "train ok.yaml learning_rate=1", None,
     "unknown config key 'learning_rate' (did you mean 'train.learning_rate'?)"),
    ("train: YAML syntax", "train broken.yaml", None, "broken.yaml:2: invalid YAML"),
    ("train: missing config", "train nope.yaml", None, "config file not found: nope.yaml"),
    # bayling eval: the stage, eval-only presets, file scoring, reports, downloads
    ("eval: not a mapping", "eval list.yaml", None,
     "list.yaml: expected a mapping of config keys at the top level, found a list of 2 items"),
    ("eval run: config typo", "eval run evrun.yaml", None,
     "unknown config key 'eval.max_sentence' (did you mean 'max_sentences'?)"),
    ("eval run: a key of the flat eval section", "eval run evold.yaml", None,
     "evold.yaml: eval.benchmark_limit was renamed: use eval.benchmarks.limit"),
    ("eval run: an old override", "eval run ok.yaml eval.grid_languages=[de]", None,
     "eval.grid_languages was renamed: use eval.translation.languages"),
    ("eval score: not UTF-8", "eval score --hyp bad.txt --ref two.txt --tgt-lang de", None,
     "bad.txt:2: not valid UTF-8 at byte 2 (0xff); re-encode the file as UTF-8 (or pass --encoding ENC or --errors replace)"),
    ("eval score: line counts", "eval score --hyp two.txt --ref one.txt --tgt-lang de", None,
     "one.txt:2: 1 reference lines but 2 hypothesis lines"),
    ("eval score: empty hypotheses", "eval score --hyp empty.txt --ref one.txt --tgt-lang de", None,
     "empty.txt: empty file"),
    ("eval score: unknown encoding", "eval score --hyp two.txt --ref two.txt --tgt-lang de --encoding klingon", None,
     "unknown text encoding 'klingon'"),
    ("eval report: damaged metrics.json", "eval report ev", None, "metrics.json: invalid JSON"),
    ("eval download: --dest is a file", "eval download flores200 --dest afile", None, "--dest afile is not a directory"),
    # chat / serve / translate: model references and run directories
    ("chat: missing run directory", "chat runs/nope", None,
     "unknown model 'runs/nope': no such file or directory (read as a local path"),
    ("chat: missing relative path", "chat ./nope", None, "unknown model './nope': no such file or directory"),
    ("chat: damaged run config", "chat runs/broken", None, "config.yaml:3: invalid YAML"),
    ("serve: missing run directory", "serve runs/nope", None, "unknown model 'runs/nope': no such file or directory"),
    ("serve: config typo", "serve gemma-3-270m --config serve.yaml", None,
     "serve.yaml: unknown config key 'max_qeue' (did you mean 'max_queue'?)"),
    ("translate: stdin not UTF-8", "translate -s en -t de", b"hello\nw\xffrld\n",
     "<stdin>:2: not valid UTF-8 at byte 2 (0xff)"),
    ("translate: file not UTF-8", "translate -s en -t de -i bad.txt", None, "bad.txt:2: not valid UTF-8 at byte 2 (0xff)"),
    ("translate: unknown language", "translate -s klingon -t de", b"hi\n", "unknown language 'klingon'"),
    ("translate: missing model path", "translate runs/nope -s en -t de", b"hi\n",
     "unknown model 'runs/nope': no such file or directory"),
    ("push: not a run directory", "push runs/nope org/name", None, "runs/nope: not a run directory"),
    # numbers out of range (issue 24): a negative batch gave empty hypotheses with exit status 0
    ("translate: negative batch size", "translate -s en -t de --batch-size -1", b"hi\n",
     "--batch-size must be >= 1, got -1"),
    ("translate: no new tokens", "translate -s en -t de --max-new-tokens 0", b"hi\n",
     "--max-new-tokens must be >= 1, got 0"),
    ("run: eval batch size", "run ok.yaml eval.batch_size=-1", None, "eval.batch_size must be >= 1, got -1"),
    ("eval: eval batch size 0", "eval ok.yaml eval.batch_size=0", None, "eval.batch_size must be >= 1, got 0"),
    ("serve: port", "serve gemma-3-270m --port 0", None, "--port must be in [1, 65535], got 0"),
    # damaged model and run files (issue 24)
    ("translate: not a GGUF file", "translate bad.gguf -s en -t de", b"hi\n",
     "bad.gguf: not a GGUF file (it does not start with the bytes 'GGUF')"),
    ("translate: GGUF header cut", "translate cut.gguf -s en -t de", b"hi\n",
     "cut.gguf: truncated or damaged GGUF file (its header ends early"),
    ("chat: GGUF data cut", "chat short.gguf", None,
     "short.gguf: truncated GGUF file (57 bytes, its header describes 80); download or export it again"),
    ("translate: tokenizer_config.json not JSON", "translate badtok -s en -t de", b"hi\n",
     "badtok/tokenizer_config.json: invalid JSON"),
    ("translate: tokenizer_config.json not UTF-8", "translate latintok -s en -t de", b"hi\n",
     "latintok/tokenizer_config.json:1: not valid UTF-8 at byte 23 (0xe9)"),
    ("chat: adapter_config.json not JSON", "chat runs/adbad", None,
     "runs/adbad/train/final/adapter_config.json: invalid JSON"),
    ("push: train/summary.json not JSON", "push runs/sumbad org/name", None,
     "runs/sumbad/train/summary.json: invalid JSON"),
    ("push: base-model marker not UTF-8", "push runs/markbad org/name", None,
     "runs/markbad/train/final/bayling_base_model.json:1: not valid UTF-8 at byte 20 (0xe9)"),
    ("eval run: metadata_devtest.tsv not UTF-8", "eval run evfl.yaml", None,
     "fl/metadata_devtest.tsv:3: not valid UTF-8 at byte 11 (0xe9)"),
    ("eval report: metrics.json not UTF-8", "eval report ev2", None,
     "ev2/metrics.json:1: not valid UTF-8 at byte 14 (0xe9)"),
    ("eval report: metrics.json of another shape", "eval report ev3", None,
     "ev3/metrics.json: systems.tuned: expected an object, found a list of 2 items"),
]  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("damaged")
    for rel, content in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def bayling_command() -> list[str]:
    """The installed console script (run with this checkout's code); ``python -c`` if it is not installed."""
    script = shutil.which("bayling", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "import sys; from bayling.cli import main; sys.exit(main())"]


def run_bayling(argv: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", BAYLING_NO_PROGRESS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(
        bayling_command() + argv, cwd=cwd, input=stdin or b"", capture_output=True, env=env, timeout=120
    )


@pytest.mark.parametrize(("argv", "stdin", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_damaged_input_gives_one_error_line(inputs, argv, stdin, expected):
    proc = run_bayling(argv.split(), inputs, stdin)
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert proc.returncode == 2, (proc.returncode, err)
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("bayling: error: "), err
    assert expected in lines[0], lines[0]


def test_every_command_has_a_row():
    """``bayling --help`` and the ``data``/``eval`` subcommands: each has at least one row above."""
    from bayling.cli import build_parser
    from bayling.cli.data import SUBCOMMANDS as DATA
    from bayling.cli.eval import SUBCOMMANDS as EVAL

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices) | {f"data {c}" for c in DATA} | {f"eval {c}" for c in EVAL}
    covered = {" ".join(a.split()[:2]) for _, a, _, _ in TABLE} | {a.split()[0] for _, a, _, _ in TABLE}
    assert commands - covered == set(), f"add rows for: {sorted(commands - covered)}"


def test_readme_error_examples_are_real_output(tmp_path):
    """The README's bad-input examples, run on the inputs they describe, print exactly what the README shows."""
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("expected and found (real output):\n\n```text\n", 1)[1].split("```", 1)[0]
    examples = re.findall(r"^\$ bayling (.*)\n(bayling: error: .*)$", block, flags=re.M)
    assert len(examples) >= 8
    good = json.dumps(CHAT_OK)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "x.yaml").write_text("name: x\ntrain:\n  lr: 2.0e-4\n")
    no_content = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant"}]}
    (tmp_path / "train.jsonl").write_text("\n".join([good] * 16 + [json.dumps(no_content)]) + "\n")
    (tmp_path / "data.jsonl").write_text("\n".join([good] * 16 + ['{"messages": [}']) + "\n")
    (tmp_path / "in.txt").write_bytes(b"Good morning.\nHow are you?\nThe new caf\xe9 opens on Monday.\n")
    (tmp_path / "model.gguf").write_text("<!DOCTYPE html>\n<html><body>Rate limit exceeded</body></html>\n")
    for command, shown in examples:
        argv, _, stdin_file = command.partition(" < ")
        stdin = (tmp_path / stdin_file).read_bytes() if stdin_file else None
        proc = run_bayling(argv.split(), tmp_path, stdin)
        assert proc.returncode == 2 and proc.stderr.decode().strip() == shown, (command, proc.stderr.decode())
