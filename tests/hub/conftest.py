"""The Hub stand-in (``standin.py``) loaded with the tiny Llama and small data sets, and a clean HF environment.

Repositories served:

* ``bayling-test/tiny-llama``: the tiny Llama of ``tests/conftest.py`` plus a model card (license apache-2.0);
* ``bayling-test/gated-llama``: the same files, gated; only the token ``hf_granted`` has access;
* ``bayling-test/tiny-parallel`` (data set): 80 records of the shipped sample as Parquet with language-code
  columns, no dataset card (``datasets`` infers the split from ``data/train-*.parquet``);
* ``bayling-test/flores_plus`` (data set): the FLORES+ layout, one config per language (``eng_Latn``,
  ``cmn_Hans``, ``deu_Latn``) with ``dev``/``devtest`` Parquet files and FLORES+'s columns;
* ``bayling-test/tiny-instructions`` (data set): Alpaca-format instructions;
* ``bayling-test/gated-flores`` (data set): gated.

``hub_env`` points this process (and the environment handed to subprocesses) at the stand-in with an
empty HF cache, online, without a token.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path

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
