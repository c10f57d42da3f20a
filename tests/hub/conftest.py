"""The Hub stand-in (``standin.py``) loaded with the tiny Llama and small data sets, and a clean HF environment.

Repositories served:

* ``bayling-test/tiny-llama``: the tiny Llama of ``tests/conftest.py`` plus a model card (license apache-2.0);
* ``bayling-test/gated-llama``: the same files, gated; only the token ``hf_granted`` has access;
* ``bayling-test/tiny-parallel`` (data set): 80 records of the shipped sample as Parquet with language-code
  columns, no dataset card (``datasets`` infers the split from ``data/train-*.parquet``);
* ``bayling-test/flores_plus`` (data set): the FLORES+ layout, one config per language (``eng_Latn``,
  ``cmn_Hans``, ``deu_Latn``) with ``dev``/``devtest`` Parquet files and FLORES+'s columns;
* ``bayling-test/tiny-instructions`` (data set): Alpaca-format instructions;
* ``bayling-test/gated-flores`` (data set): gated;
* ``google/wmt24pp``, ``CohereLabs/Global-MMLU-Lite``, ``CohereLabs/include-base-44``, ``li-lab/MMLU-ProX-Lite``:
  small copies of the real layouts (the same config names, columns, splits and file paths; a few rows written
  here), so ``bayling eval run configs/eval/wmt24pp.yaml`` / ``benchmarks.yaml`` run against the stand-in
  unchanged (:data:`BENCHMARK_SETS`).

``hub_env`` points this process (and the environment handed to subprocesses) at the stand-in with an
empty HF cache, online, without a token.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bayling_hub_standin", Path(__file__).with_name("standin.py"))
standin = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = standin
_spec.loader.exec_module(standin)

MODEL_CARD = b"---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n\n# tiny llama\n\nA random test model.\n"
FLORES_PLUS_NAMES = {
    "eng_Latn": ("eng", "Latn", "stan1293"),
    "cmn_Hans": ("cmn", "Hans", "beij1234"),
    "deu_Latn": ("deu", "Latn", "stan1295"),
}
SAMPLE_CODES = {"eng_Latn": "eng_Latn", "cmn_Hans": "zho_Hans", "deu_Latn": "deu_Latn"}


def parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def sample_records(n: int, start: int = 0) -> list[dict]:
    lines = (REPO / "src" / "bayling" / "data" / "samples" / "parallel.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(x) for x in lines[start : start + n]]


def flores_plus_files() -> dict[str, bytes]:
    """The FLORES+ layout: ``dev/CODE.parquet`` and ``devtest/CODE.parquet`` plus a card declaring the configs."""
    splits = {"dev": sample_records(20, 200), "devtest": sample_records(30, 220)}
    files, configs = {}, []
    for name, (iso3, script, glotto) in FLORES_PLUS_NAMES.items():
        for split, recs in splits.items():
            rows = [
                {
                    "id": i,
                    "iso_639_3": iso3,
                    "iso_15924": script,
                    "glottocode": glotto,
                    "text": r[SAMPLE_CODES[name]],
                    "url": f"https://en.wikinews.org/wiki/Article_{i // 3}",
                    "domain": "wikinews",
                    "topic": r.get("domain", "misc"),
                    "has_image": 0,
                    "has_hyperlink": 0,
                    "last_updated": "2.0",
                }
                for i, r in enumerate(recs)
            ]
            files[f"{split}/{name}.parquet"] = parquet(rows)
        configs.append(
            f"- config_name: {name}\n  data_files:\n  - split: dev\n    path: dev/{name}.parquet\n"
            f"  - split: devtest\n    path: devtest/{name}.parquet\n"
        )
    card = "---\nlicense: cc-by-sa-4.0\nconfigs:\n" + "".join(configs) + "---\n\n# FLORES+ (test copy)\n"
    files["README.md"] = card.encode()
    return files


def card(license: str, configs: dict[str, dict[str, str]]) -> bytes:
    """A dataset card declaring ``{config: {split: path}}`` the way the Hub repositories do."""
    body = "".join(
        f"- config_name: {name}\n  data_files:\n"
        + "".join(f"  - split: {split}\n    path: {path}\n" for split, path in splits.items())
        for name, splits in configs.items()
    )
    return f"---\nlicense: {license}\nconfigs:\n{body}---\n\n# test copy\n".encode()


WMT24PP_BAD = {1, 4}
"""Rows (0-based) of every WMT24++ pair flagged ``is_bad_source`` in the copy."""


def wmt24pp_files() -> dict[str, bytes]:
    """``google/wmt24pp``: ``en-LOCALE.jsonl`` at the root, one config per pair, split ``train``."""
    recs = sample_records(8, 100)
    pairs = {"en-de_DE": "deu_Latn", "en-fr_CA": "fra_Latn", "en-fr_FR": "fra_Latn", "en-zh_CN": "zho_Hans"}
    files = {}
    for lp, code in pairs.items():
        rows = [
            {
                "lp": lp,
                "domain": ("news", "social", "speech", "literary")[i % 4],
                "document_id": f"doc-{i // 2}",
                "segment_id": 1000 * list(pairs).index(lp) + i,
                "is_bad_source": i in WMT24PP_BAD,
                "source": r["eng_Latn"] if i not in WMT24PP_BAD else f"<a href='x'>{r['eng_Latn']}</a> 😀",
                "target": r[code],
                "original_target": r[code] + (" (v0)" if i % 3 == 0 else ""),
            }
            for i, r in enumerate(recs)
        ]
        files[f"{lp}.jsonl"] = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows).encode()
    files["README.md"] = card("apache-2.0", {lp: {"train": f"{lp}.jsonl"} for lp in pairs})
    return files


GLOBAL_MMLU = {
    "de": [
        ("Was ist die Hauptstadt von Frankreich?", ["Berlin", "Paris", "Rom", "Madrid"], "B", "CA"),
        ("Wie viele Bundesländer hat Deutschland?", ["12", "14", "16", "18"], "C", "CS"),
        ("Was ist 2 + 2?", ["3", "4", "5", "22"], "B", "CA"),
        ("Welches Fest feiert man am 3. Oktober?", ["Tag der Deutschen Einheit", "Ostern", "Fasching", "Advent"],
         "A", "CS"),
    ],
    "zh": [
        ("水的化学式是什么？", ["CO2", "H2O", "O2", "NaCl"], "B", "CA"),
        ("春节通常在哪个月份？", ["一月或二月", "五月", "八月", "十一月"], "A", "CS"),
        ("三角形的内角和是多少度？", ["90", "180", "270", "360"], "B", "CA"),
    ],
}  # fmt: skip
"""Global-MMLU-Lite rows of the copy: (question, options a-d, answer letter, CS/CA label)."""


def global_mmlu_files() -> dict[str, bytes]:
    """``CohereLabs/Global-MMLU-Lite``: one config per language, ``LANG/test-*.parquet`` and ``LANG/dev-*``."""
    files, configs = {}, {}
    for lang, rows in GLOBAL_MMLU.items():
        recs = [
            {
                "sample_id": f"{('high_school_geography', 'miscellaneous')[i % 2]}/test/{i}",
                "subject": ("high_school_geography", "miscellaneous")[i % 2],
                "subject_category": ("Social Sciences", "Other")[i % 2],
                "question": q,
                **{f"option_{x}": o for x, o in zip("abcd", opts, strict=True)},
                "answer": ans,
                "required_knowledge": "['cultural']" if cs == "CS" else "['none']",
                "time_sensitive": "['No']",
                "reference": "",
                "culture": "['Western Culture']" if cs == "CS" else "",
                "region": "['Europe']" if cs == "CS" else "",
                "country": "",
                "cultural_sensitivity_label": cs,
                "is_annotated": True,
            }
            for i, (q, opts, ans, cs) in enumerate(rows)
        ]
        files[f"{lang}/test-00000-of-00001.parquet"] = parquet(recs)
        files[f"{lang}/dev-00000-of-00001.parquet"] = parquet(recs[:1])
        configs[lang] = {"test": f"{lang}/test-*", "dev": f"{lang}/dev-*"}
    files["README.md"] = card("apache-2.0", configs)
    return files


INCLUDE = {
    "German": [
        ("Wie schnell darf man innerorts fahren?", ["30 km/h", "50 km/h", "70 km/h", "100 km/h"], 1,
         "Driving License"),
        ("Was ist die Ableitung von x²?", ["x", "2x", "x²", "2"], 1, "STEM"),
    ],
    "Chinese": [("中国的首都是哪里？", ["上海", "北京", "广州", "深圳"], 1, "Social Science")],
}  # fmt: skip
"""INCLUDE rows of the copy: (question, options a-d, answer index, domain)."""


def include_files() -> dict[str, bytes]:
    """``CohereLabs/include-base-44``: one config per language name, ``NAME/test-*.parquet``, ``NAME/validation-*``."""
    files, configs = {}, {}
    for lang, rows in INCLUDE.items():
        recs = [
            {
                "language": lang,
                "country": {"German": "Germany", "Chinese": "China"}[lang],
                "domain": domain,
                "subject": domain.lower(),
                "regional_feature": "region explicit",
                "level": "University",
                "question": q,
                **{f"option_{x}": o for x, o in zip("abcd", opts, strict=True)},
                "answer": ans,
            }
            for q, opts, ans, domain in rows
        ]
        files[f"{lang}/test-00000-of-00001.parquet"] = parquet(recs)
        files[f"{lang}/validation-00000-of-00001.parquet"] = parquet(recs[:1])
        configs[lang] = {"test": f"{lang}/test-*", "validation": f"{lang}/validation-*"}
    files["README.md"] = card("apache-2.0", configs)
    return files


MMLU_PROX = {
    "de": [
        ("Welches Organell erzeugt ATP?", ["Ribosom", "Mitochondrium", "Zellkern", "Golgi-Apparat", "Lysosom"], "B",
         "biology"),
        ("Was ist 7 * 6?", ["36", "42", "48", "54", "56", "63", "64", "72", "81", "49"], "B", "math"),
    ],
    "zh": [("光速约为多少？", ["3×10^8 m/s", "3×10^6 m/s", "340 m/s", "1×10^3 m/s"], "A", "physics")],
}  # fmt: skip
"""MMLU-ProX-Lite rows of the copy: (question, options (up to ten), answer letter, category)."""


def mmlu_prox_files() -> dict[str, bytes]:
    """``li-lab/MMLU-ProX-Lite``: one config per language, ``LANG/test-*.parquet`` and ``LANG/validation-*``."""
    files, configs = {}, {}
    for lang, rows in MMLU_PROX.items():
        recs = [
            {
                "question_id": 70 + i,
                "question": q,
                **{f"option_{k}": (opts[k] if k < len(opts) else None) for k in range(10)},
                "answer": ans,
                "answer_index": "ABCDEFGHIJ".index(ans),
                "cot_content": "",
                "category": cat,
                "src": f"ori_mmlu-{cat}",
                "question_id_src": 70 + i,
            }
            for i, (q, opts, ans, cat) in enumerate(rows)
        ]
        files[f"{lang}/test-00000-of-00001.parquet"] = parquet(recs)
        files[f"{lang}/validation-00000-of-00001.parquet"] = parquet(recs[:1])
        configs[lang] = {"test": f"{lang}/test-*", "validation": f"{lang}/validation-*"}
    files["README.md"] = card("mit", configs)
    return files


BENCHMARK_SETS = {
    "google/wmt24pp": wmt24pp_files,
    "CohereLabs/Global-MMLU-Lite": global_mmlu_files,
    "CohereLabs/include-base-44": include_files,
    "li-lab/MMLU-ProX-Lite": mmlu_prox_files,
}
"""Hub id -> the files of its copy on the stand-in."""


@pytest.fixture(scope="session")
def hub_server(tiny_llama):
    """The running stand-in with the test repositories."""
    with standin.HubStandIn() as hub:
        model_files = {p.name: p.read_bytes() for p in sorted(tiny_llama.iterdir()) if p.is_file()}
        model_files["README.md"] = MODEL_CARD
        hub.add_repo("bayling-test/tiny-llama", model_files)
        hub.add_repo("bayling-test/gated-llama", model_files, gated=True, granted_tokens={"hf_granted"})
        recs = sample_records(80)
        rows = [
            {"id": r["id"], "eng_Latn": r["eng_Latn"], "zho_Hans": r["zho_Hans"], "deu_Latn": r["deu_Latn"]}
            for r in recs
        ]
        hub.add_repo("bayling-test/tiny-parallel", {"data/train-00000-of-00001.parquet": parquet(rows)}, "dataset")
        hub.add_repo("bayling-test/flores_plus", flores_plus_files(), "dataset")
        lines = (REPO / "src" / "bayling" / "data" / "samples" / "instructions.jsonl").read_text(encoding="utf-8")
        alpaca = [
            {"instruction": o["instruction"], "input": "", "output": o["response"], "lang": o["lang"]}
            for o in map(json.loads, lines.splitlines()[:6] + lines.splitlines()[60:66])  # 6 en + 6 zh
        ]
        hub.add_repo(
            "bayling-test/tiny-instructions", {"data/train-00000-of-00001.parquet": parquet(alpaca)}, "dataset"
        )
        hub.add_repo("bayling-test/gated-flores", flores_plus_files(), "dataset", gated=True)
        for repo_id, files in BENCHMARK_SETS.items():
            hub.add_repo(repo_id, files(), "dataset")
        yield hub


def point_at(hub: standin.HubStandIn, home: Path, mp: pytest.MonkeyPatch) -> dict[str, str]:
    """Online, pointed at ``hub``, HF cache under ``home``, no token: this process and its subprocesses.

    huggingface_hub reads ``HF_HUB_OFFLINE`` and the token path when imported (tests/conftest.py set
    offline), so those constants are patched here too; bayling reads the endpoint and cache per call.
    """
    from huggingface_hub import constants

    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home / "hf"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        # The stand-in stores uploads through git-LFS, not the Xet storage protocol: with this standard switch
        # huggingface_hub uploads the way it does when hf_xet is not installed (downloads never use Xet here,
        # since the stand-in sends no X-Xet-Hash header).
        "HF_HUB_DISABLE_XET": "1",
        "BAYLING_CACHE": str(home / "bayling-cache"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    for k, v in env.items():
        mp.setenv(k, v)
    for k in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "BAYLING_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_DATASETS_CACHE",
        "MLFLOW_TRACKING_URI",
    ):
        mp.delenv(k, raising=False)
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(constants, "HF_TOKEN_PATH", str(home / "hf" / "token"))
    hub.clear_log()
    return dict(os.environ)


@pytest.fixture
def hub_env(hub_server, tmp_path, monkeypatch) -> dict[str, str]:
    """This test, online against the stand-in with an empty HF cache and no token."""
    return point_at(hub_server, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def hub_env_module(hub_server, tmp_path_factory) -> dict[str, str]:
    """Like ``hub_env``, shared by the tests of one module (one HF cache for all of them)."""
    with pytest.MonkeyPatch.context() as mp:
        yield point_at(hub_server, tmp_path_factory.mktemp("hubhome"), mp)


def _run_py(code: str, env: dict[str, str]) -> dict:
    """Run ``code`` in a fresh interpreter with ``env`` (``datasets`` reads HF_ENDPOINT when imported); it prints
    one JSON object as its last line, returned here."""
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def run_py():
    """:func:`_run_py`."""
    return _run_py


@pytest.fixture(scope="session")
def hub_sets():
    """The rows the benchmark copies hold (what the tests compare against)."""
    return SimpleNamespace(
        GLOBAL_MMLU=GLOBAL_MMLU, INCLUDE=INCLUDE, MMLU_PROX=MMLU_PROX, WMT24PP_BAD=WMT24PP_BAD, sample=sample_records
    )
