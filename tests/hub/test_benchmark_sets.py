"""WMT24++, Global-MMLU-Lite, INCLUDE and MMLU-ProX-Lite read from the stand-in Hub (small copies of the real
layouts, ``conftest.BENCHMARK_SETS``) by the loaders bayling uses, in a fresh interpreter (``datasets`` reads
HF_ENDPOINT when imported): the dropped bad sources, the locale mapping, the prompts as text and the labels."""

from __future__ import annotations

import json


def test_wmt24pp_drops_bad_sources_and_maps_locales(hub_env, hub_server, run_py, hub_sets):
    out = run_py(
        """
        import json
        from bayling.testsets import load_bitexts
        bs = load_bitexts("wmt24pp", [("en", "de"), ("eng_Latn", "fra_Latn"), ("en", "zh_CN")])
        one = load_bitexts("hf:google/wmt24pp:en-fr_CA", [("en", "fr")])
        print(json.dumps({"b": [[b.key, b.src, b.tgt, b.locale, b.dropped, b.ids, b.sources, b.refs] for b in bs],
                          "one": [b.key for b in one]}))
        """,
        hub_env,
    )
    recs = hub_sets.sample(8, 100)
    kept = [r for i, r in enumerate(recs) if i not in hub_sets.WMT24PP_BAD]
    keys = [b[0] for b in out["b"]]
    # one Bitext per locale: French has two in WMT24++, each scored on its own; the key names the locale
    assert keys == ["eng_Latn-de_DE", "eng_Latn-fr_CA", "eng_Latn-fr_FR", "eng_Latn-zh_CN"]
    assert [b[1:5] for b in out["b"]] == [
        ["eng_Latn", "deu_Latn", "de_DE", 2],
        ["eng_Latn", "fra_Latn", "fr_CA", 2],
        ["eng_Latn", "fra_Latn", "fr_FR", 2],
        ["eng_Latn", "zho_Hans", "zh_CN", 2],
    ]
    de = out["b"][0]
    assert de[5] == [f"wmt24pp-de_DE-{i}" for i in range(8) if i not in hub_sets.WMT24PP_BAD]
    assert de[6] == [r["eng_Latn"] for r in kept] and de[7] == [r["deu_Latn"] for r in kept]
    assert not any("<a href" in s for b in out["b"] for s in b[6])  # the flagged rows are gone
    assert out["one"] == ["eng_Latn-fr_CA"]  # a config in the reference keeps that locale only


def test_wmt24pp_errors_are_one_line(hub_env, hub_server, run_py):
    out = run_py(
        """
        import json
        from bayling.errors import DataError
        from bayling.testsets import load_bitexts
        msgs = []
        for d in ([("de", "en")], [("en", "ja")]):
            try:
                load_bitexts("wmt24pp", d)
            except DataError as e:
                msgs.append(str(e))
        print(json.dumps(msgs))
        """,
        hub_env,
    )
    assert out == [
        "WMT24++ translates from English only; deu_Latn-eng_Latn is not in it",
        "hf:google/wmt24pp: no locale of jpn_Jpan (Japanese); it has de_DE, fr_CA, fr_FR, zh_CN",
    ]


def test_mc_sets_from_the_hub_with_lm_eval_prompts(hub_env, hub_server, run_py, hub_sets):
    out = run_py(
        """
        import json
        from bayling.evaluate.benchmarks import load_benchmark
        got = {}
        for name in ("global_mmlu_lite", "include", "mmlu_prox_lite"):
            got[name] = {k: [[i.id, i.context, i.choices, i.label, i.lang, i.subset] for i in v]
                         for k, v in load_benchmark(name).items()}
        got["de_only"] = list(load_benchmark("include", languages=["deu_Latn"]))
        print(json.dumps(got))
        """,
        hub_env,
    )
    assert set(out["global_mmlu_lite"]) == set(hub_sets.GLOBAL_MMLU) and set(out["include"]) == set(hub_sets.INCLUDE)
    assert out["de_only"] == ["German"]  # INCLUDE's config names are language names: resolved by the table
    de = out["global_mmlu_lite"]["de"]
    assert de[0] == [
        "global_mmlu-de-high_school_geography/test/0",
        "Was ist die Hauptstadt von Frankreich?\nA. Berlin\nB. Paris\nC. Rom\nD. Madrid\nAnswer:",
        ["A", "B", "C", "D"],
        1,
        "de",
        "CA",
    ]
    assert [i[5] for i in de] == ["CA", "CS", "CA", "CS"] and [i[3] for i in de] == [1, 2, 1, 0]
    inc = out["include"]["German"][0]
    # lm-eval's include_base_44 prompt: the domain's description glued to the question, " D." folded by YAML
    assert inc[1] == (
        "The following is multiple-choice question about Driving License.Wie schnell darf man innerorts fahren?"
        "\nA. 30 km/h\nB. 50 km/h\nC. 70 km/h\n D. 100 km/h\nAnswer:"
    )
    assert inc[2:5] == [["A", "B", "C", "D"], 1, "German"]
    prox = out["mmlu_prox_lite"]["de"]
    assert prox[0][1] == (
        "Welches Organell erzeugt ATP?\nA. Ribosom\nB. Mitochondrium\nC. Zellkern\nD. Golgi-Apparat\nE. Lysosom"
        "\nAnswer:"
    )
    assert prox[0][2] == list("ABCDE") and prox[1][2] == list("ABCDEFGHIJ") and prox[0][3] == prox[1][3] == 1
    assert json.dumps(out["mmlu_prox_lite"]["zh"][0][:4], ensure_ascii=False) == json.dumps(
        ["mmlu_prox-zh-70", "光速约为多少？\nA. 3×10^8 m/s\nB. 3×10^6 m/s\nC. 340 m/s\nD. 1×10^3 m/s\nAnswer:",
         ["A", "B", "C", "D"], 0], ensure_ascii=False
    )  # fmt: skip
    assert {tuple(hub_sets.MMLU_PROX)} == {tuple(out["mmlu_prox_lite"])}
