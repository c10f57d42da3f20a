"""Data sets named ``hf:ORG/NAME[:CONFIG][@SPLIT]``: parallel text, instructions and a FLORES+-layout FLORES,
loaded by ``datasets`` from the stand-in Hub (in a fresh interpreter: the ``run_py`` fixture), plus the reference syntax."""

from __future__ import annotations

import json

import pytest

from bayling.errors import DataError
from bayling.hub_data import HfRef, hub_dataset_ids, parse_hf


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hf:org/name", HfRef("org/name")),
        ("hf:org/name:de-en@validation", HfRef("org/name", "de-en", "validation")),
        ("hf:org/name@train[:100]", HfRef("org/name", None, "train[:100]")),
        ("hf:org/name:cfg?revision=v1.0&streaming=true", HfRef("org/name", "cfg", None, "v1.0", True)),
    ],
)
def test_reference_syntax(text, expected):
    assert parse_hf(text) == expected


def test_bad_references_and_local_paths(tmp_path):
    with pytest.raises(DataError, match="expected hf:ORG/NAME"):
        parse_hf("hf:justaname")
    with pytest.raises(DataError, match="no such local data set"):
        parse_hf(f"hf:{tmp_path}/missing")
    with pytest.raises(DataError, match="unknown option"):
        parse_hf("hf:org/name?rev=1")
    assert parse_hf(f"hf:{tmp_path}").local  # an existing directory keeps meaning that directory
    assert hub_dataset_ids(["sample", "hf:a/b@train", f"hf:{tmp_path}", "hf:a/b:x"]) == ["a/b"]


def test_hub_sources_for_parallel_text_instructions_and_streaming(hub_env, hub_server, run_py):
    out = run_py(
        """
        import json
        from bayling.data.parallel import iter_parallel
        from bayling.data.instructions import iter_instructions
        recs = list(iter_parallel("hf:bayling-test/tiny-parallel", ["eng_Latn", "zho_Hans"]))
        streamed = list(iter_parallel("hf:bayling-test/tiny-parallel?streaming=true", ["en", "de"]))
        inst = list(iter_instructions("hf:bayling-test/tiny-instructions"))
        print(json.dumps({"recs": [[r.id, r.texts] for r in recs], "streamed": [r.texts for r in streamed],
                          "inst": inst[:2], "n_inst": len(inst)}))
        """,
        hub_env,
    )
    sample = [json.loads(x) for x in open(_sample_path(), encoding="utf-8").read().splitlines()[:80]]
    assert out["recs"] == [[r["id"], {"eng_Latn": r["eng_Latn"], "zho_Hans": r["zho_Hans"]}] for r in sample]
    assert out["streamed"] == [{"eng_Latn": r["eng_Latn"], "deu_Latn": r["deu_Latn"]} for r in sample]
    assert out["n_inst"] == 12 and out["inst"][0]["messages"][0]["role"] == "user"
    assert out["inst"][0]["lang"] == "eng_Latn" and out["inst"][0]["messages"][1]["content"].startswith("Sunlight")
    # the streamed pass read the Parquet file with HTTP range requests instead of downloading it first
    assert any(r[0] == "GET" and r[1].startswith("/cdn/") and r[2] == 206 for r in hub_server.log)


def _sample_path():
    from bayling.data.parallel import sample_path

    return sample_path()


def test_flores_plus_layout_is_a_flores_source_for_data_and_evaluation(hub_env, hub_server, run_py):
    out = run_py(
        """
        import json
        from bayling.data.parallel import iter_parallel
        from bayling.records import ParallelRecord
        from bayling.testsets import load_bitexts
        recs = list(iter_parallel("flores200", ["eng_Latn", "zho_Hans"], flores="hf:bayling-test/flores_plus",
                                  split="devtest"))
        direct = list(iter_parallel("hf:bayling-test/flores_plus@dev", ["deu_Latn", "eng_Latn"]))
        bitexts = load_bitexts("flores200", [("zho_Hans", "eng_Latn")], flores_dir="hf:bayling-test/flores_plus")
        b = bitexts[0]
        print(json.dumps({"ids": [r.id for r in recs], "texts": [r.texts for r in recs],
                          "docs": [getattr(r, "doc", None) for r in recs], "n_dev": len(direct),
                          "bitext": [b.testset, b.src, b.tgt, b.sources[:3], b.refs[:3], b.ids[:3], len(b.refs)]}))
        """,
        hub_env,
    )
    sample = [json.loads(x) for x in open(_sample_path(), encoding="utf-8").read().splitlines()]
    devtest = sample[220:250]
    assert out["ids"] == [f"flores_plus-devtest-{i}" for i in range(30)]
    # zho_Hans is read from FLORES+'s cmn_Hans config, aligned by id with eng_Latn
    assert out["texts"] == [{"eng_Latn": r["eng_Latn"], "zho_Hans": r["zho_Hans"]} for r in devtest]
    assert out["n_dev"] == 20
    assert out["bitext"] == [
        "flores200",
        "zho_Hans",
        "eng_Latn",
        [r["zho_Hans"] for r in devtest[:3]],
        [r["eng_Latn"] for r in devtest[:3]],
        ["flores200-devtest-1", "flores200-devtest-2", "flores200-devtest-3"],
        30,
    ]
    if any(d is not None for d in out["docs"]):  # records carry the article when ParallelRecord has a doc field
        assert out["docs"][:4] == [f"https://en.wikinews.org/wiki/Article_{i // 3}" for i in range(4)]


def test_dataset_errors_are_one_line(hub_env, hub_server, run_py):
    out = run_py(
        """
        import json, os
        from bayling.data.parallel import iter_parallel
        from bayling.errors import DataError
        msgs = []
        for src in ("hf:bayling-test/gated-flores@devtest", "hf:bayling-test/no-such-set"):
            try:
                list(iter_parallel(src, ["eng_Latn", "zho_Hans"]))
            except DataError as e:
                msgs.append(str(e))
        online = [r.texts for r in iter_parallel("hf:bayling-test/tiny-parallel", ["eng_Latn", "zho_Hans"])]
        os.environ["BAYLING_OFFLINE"] = "1"  # from here on: the datasets cache only
        offline = [r.texts for r in iter_parallel("hf:bayling-test/tiny-parallel", ["eng_Latn", "zho_Hans"])]
        try:
            list(iter_parallel("hf:bayling-test/flores_plus", ["eng_Latn", "zho_Hans"]))
        except DataError as e:
            msgs.append(str(e))
        print(json.dumps({"msgs": msgs, "same_offline": offline == online and len(offline) == 80}))
        """,
        hub_env,
    )
    url = hub_server.url
    assert out["same_offline"]  # a data set loaded once is read from the cache when offline
    out = out["msgs"]
    assert out[0] == (
        f"data set 'bayling-test/gated-flores' is gated: accept its terms at {url}/datasets/bayling-test/gated-flores "
        "and log in (`hf auth login`, or set HF_TOKEN to a token of that account)"
    )
    assert out[1].startswith(f"data set 'bayling-test/no-such-set' not found on {url}: check the name")
    assert out[2].startswith("data set 'bayling-test/flores_plus' is not in the local Hugging Face cache")
    assert all("\n" not in m for m in out)
