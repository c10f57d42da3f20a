"""bayling's multiple-choice scorer against lm-evaluation-harness itself, on the tiny model.

Three tokenizers over the same weights cover lm-eval's BOS policy: one that adds BOS (Gemma,
Llama), one that has a BOS token but does not add it, and one without BOS (empty contexts are then
conditioned on EOS). For each, lm-eval's ``HFLM`` scores hand-made edge-case requests and runs
XCOPA-, XNLI- and Belebele-shaped tasks (local YAML over local JSON with lm-eval's stock prompts),
and bayling must give the same per-item log-likelihoods (1e-4), the same prompt strings and the
same ``acc``/``acc_norm``.
"""

from __future__ import annotations

import json
import shutil

import pytest

from bayling.evaluate import lmeval_parity as par
from bayling.evaluate.benchmarks import MCItem
from bayling.evaluate.mc import encode_request, loglikelihoods, score_mc

pytest.importorskip("lm_eval")

XCOPA_ZH = [
    {"premise": "杯子从桌子上掉了下来。", "choice1": "它摔碎了。", "choice2": "它变大了。", "question": "effect", "label": 0},
    {"premise": "我打开了伞。", "choice1": "天开始下雨了。", "choice2": "天气很好。", "question": "cause", "label": 0},
    {"premise": "他很饿。", "choice1": "他睡觉了。", "choice2": "他吃了一个苹果。", "question": "effect", "label": 1},
    {"premise": "火车晚点了。", "choice1": "我们准时到达。", "choice2": "我们错过了会议。", "question": "effect", "label": 1},
]  # fmt: skip
XNLI = {
    "en": [
        ("The weather is nice today.", "It is sunny.", "neutral"),
        ("We meet at nine at the station.", "We meet in the morning.", "entailment"),
        ("Make it more formal.", "Nothing should change.", "contradiction"),
    ],
    "zh": [
        ("今天天气很好。", "今天下雨。", "contradiction"),
        ("我们明天早上九点在火车站见面。", "我们明天见面。", "entailment"),
        ("把下面的英语翻译成中文。", "这是一个翻译任务。", "neutral"),
    ],
}
BELEBELE = [
    {
        "text": "The weather is nice today. We meet at nine at the station and take the train to the city.",
        "items": [
            {
                "question": "Where do they meet? ",
                "answers": [
                    {"text": "At the station", "correct": True},
                    {"text": "In the city", "correct": False},
                    {"text": "At home", "correct": False},
                    {"text": "On the train", "correct": False},
                ],
            },
            {
                "question": "When do they meet?",
                "answers": [
                    {"text": "At noon", "correct": False},
                    {"text": "At nine", "correct": True},
                    {"text": "Tomorrow evening", "correct": False},
                    {"text": "Never", "correct": False},
                ],
            },
        ],
    },
    {
        "text": "Hello world! How are you? Make it shorter, then translate it into German.",
        "items": [
            {
                "question": "What language is the target?",
                "answers": [
                    {"text": "English", "correct": False},
                    {"text": "Chinese", "correct": False},
                    {"text": "French", "correct": False},
                    {"text": "German", "correct": True},
                ],
            }
        ],
    },
]
# lm-eval 0.4.13's one-token logits cache (``Collator.get_cache``) scores a request at the wrong position
# when another request has the same tokens split elsewhere (("", "<bos>Hello world") next to
# ("<bos>Hello", " world")): the second gets the first's logits for "Hello". Real MC tasks never produce
# such pairs; the edge cases below avoid them.
EDGE_REQUESTS = [
    ("Hello world", " How are you?"),
    ("Hello world ", "How are you?"),  # trailing space moves to the continuation
    ("Make it more formal.\n\n", "Now translate it."),
    ("", " The weather is nice today."),  # empty context: conditioned on the prefix token
    ("", "<bos>The weather is nice"),  # continuation starting with BOS (the prefix of two of the tokenizers)
    ("<bos>Hello", " world"),  # context already holding BOS: no second one
    ("今天天气", "很好。"),
    ("word " * 300, "the end"),  # longer than the model (512 positions): cut from the left
]


@pytest.fixture(scope="module")
def variants(tiny_llama, tmp_path_factory):
    """``{name: model dir}``: the same weights with three BOS behaviours of the tokenizer."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("bos_variants")
    out = {}
    for name in ("bos_added", "bos_not_added", "no_bos"):
        d = root / name
        shutil.copytree(tiny_llama, d)
        tok = AutoTokenizer.from_pretrained(tiny_llama)
        if name == "bos_added":
            bos = tok.bos_token_id
            tok._tokenizer.post_processor = processors.TemplateProcessing(
                single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
            )
        elif name == "no_bos":
            tok.bos_token = None
        tok.save_pretrained(d)
        out[name] = d
    return out


def _write_bayling_files(root):
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    p = root / "test.zh.jsonl"
    p.write_text(
        "".join(json.dumps({**d, "idx": i}, ensure_ascii=False) + "\n" for i, d in enumerate(XCOPA_ZH)), "utf-8"
    )
    files["xcopa_zh"] = ("xcopa", "zh", p)
    for lang, rows in XNLI.items():
        p = root / f"dev-{lang}.tsv"
        p.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
        files[f"xnli_{lang}"] = ("xnli", lang, p)
    p = root / "eng_Latn.jsonl"
    p.write_text("".join(json.dumps(d) + "\n" for d in BELEBELE), encoding="utf-8")
    files["belebele_eng_Latn"] = ("belebele", "eng_Latn", p)
    return files


@pytest.mark.parametrize("variant", ["bos_added", "bos_not_added", "no_bos"])
def test_same_loglikelihoods_and_accuracies_as_lm_eval(variant, variants, tmp_path):
    from lm_eval.api.instance import Instance

    from bayling.engines.hf import TransformersEngine

    model_dir = variants[variant]
    lm = par.lmeval_model(model_dir, batch_size=4)
    engine = TransformersEngine(model_dir, dtype="float32", device="cpu")
    tok = engine.tokenizer
    assert (tok.encode("Hi")[0] == tok.bos_token_id) == (variant == "bos_added")

    # 1. edge cases straight through lm-eval's HFLM.loglikelihood, token ids included
    for ctx, cont in EDGE_REQUESTS:
        if ctx:
            assert list(encode_request(tok, ctx, cont)) == list(lm._encode_pair(ctx, cont))
    instances = [Instance("loglikelihood", {}, req, i) for i, req in enumerate(EDGE_REQUESTS)]
    theirs = [ll for ll, _ in lm.loglikelihood(instances, disable_tqdm=True)]
    ours = loglikelihoods(engine, EDGE_REQUESTS, batch_size=3)
    assert ours == pytest.approx(theirs, abs=1e-4)

    # 2. tasks defined by local YAML over local JSON, lm-eval's stock prompts
    files = _write_bayling_files(tmp_path / "bayling")
    for name, (kind, lang, path) in files.items():
        par.write_task(tmp_path / "tasks", name, kind, lang, par.hub_docs(kind, path))
    lmeval = par.run_lmeval(lm, tmp_path / "tasks", list(files), batch_size=4)
    for name, (kind, lang, path) in files.items():
        items = par.bayling_items(kind, path, lang)
        reqs = [[[it.context, it.target_delimiter + c] for c in it.choices] for it in items]
        assert reqs == lmeval[name]["requests"], name  # the same prompt strings
        got = par.compare(score_mc(engine, items, batch_size=3), lmeval[name])
        assert got["max_abs_loglik_diff"] < 1e-4, (name, got)
        assert got["bayling"] == got["lm_eval"] and got["same_predictions"], (name, got)
        assert got["n"] == {"xcopa": 4, "xnli": 3, "belebele": 3}[kind]


def test_acc_norm_divides_by_characters_of_the_choice(monkeypatch):
    """lm-eval: loglik / len(choice) without the delimiter; bytes would pick the other choice here."""
    monkeypatch.setattr("bayling.evaluate.mc.loglikelihoods", lambda engine, reqs, *a, **k: [-6.0, -3.5])
    item = MCItem("x", "问题", ["是的", "no"], 1, "zho_Hans")
    summary, rows = score_mc(object(), [item])
    # per character: -3.0 vs -1.75 -> "no"; per UTF-8 byte with the space: -6/7 vs -3.5/3 -> "是的"
    assert rows[0]["pred"] == 1 and rows[0]["pred_norm"] == 1 and summary["acc_norm"] == 100.0
    assert "len(choice) in characters" in summary["protocol"]


def test_empty_context_without_bos_is_conditioned_on_eos(variants):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(variants["no_bos"])
    ctx, cont = encode_request(tok, "", " Hello world")
    assert tok.bos_token_id is None and ctx == [tok.eos_token_id]
    assert cont == tok.encode(" Hello world", add_special_tokens=False)
    with_bos = AutoTokenizer.from_pretrained(variants["bos_added"])
    assert encode_request(with_bos, "", " Hello world")[0] == [with_bos.bos_token_id]
    assert encode_request(with_bos, "Hello", " world")[0][0] == with_bos.bos_token_id
    assert encode_request(with_bos, "Hello ", "world") == encode_request(with_bos, "Hello", " world")


GLOBAL_MMLU_DE = [
    {"sample_id": "geo/0", "question": " Was ist die Hauptstadt von Frankreich? ", "option_a": "Berlin",
     "option_b": "Paris", "option_c": "Rom", "option_d": "Madrid", "answer": "B", "cultural_sensitivity_label": "CA",
     "subject_category": "Social Sciences"},
    {"sample_id": "misc/1", "question": "Wie viele Bundesländer hat Deutschland?", "option_a": "12", "option_b": "14",
     "option_c": "16", "option_d": "18", "answer": "C", "cultural_sensitivity_label": "CS",
     "subject_category": "Other"},
]  # fmt: skip
INCLUDE_GERMAN_STEM = [
    {"question": "Was ist die Ableitung von x²?", "option_a": "x", "option_b": "2x", "option_c": "x²", "option_d": "2",
     "answer": 1, "domain": "STEM", "language": "German"},
    {"question": "Wie viele Seiten hat ein Würfel?", "option_a": "4", "option_b": "6", "option_c": "8",
     "option_d": "12", "answer": 1, "domain": "STEM", "language": "German"},
]  # fmt: skip


def test_hub_set_prompts_and_scores_equal_lm_eval(variants, tmp_path):
    """Global-MMLU(-Lite) and INCLUDE rows: lm-eval's stock ``global_mmlu_de`` and ``include_base_44_german_stem``
    prompt fields (INCLUDE's description and folded ``"\\n D."`` included) give the same requests and scores."""
    from bayling.engines.hf import TransformersEngine

    files = {}
    for name, kind, lang, docs in (
        ("global_mmlu_de", "global_mmlu", "de", GLOBAL_MMLU_DE),
        ("include_german_stem", "include", "German", INCLUDE_GERMAN_STEM),
    ):
        path = tmp_path / "bayling" / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        files[name] = (kind, lang, path)
        par.write_task(tmp_path / "tasks", name, kind, lang, par.hub_docs(kind, path))
    lm = par.lmeval_model(variants["bos_added"], batch_size=4)
    engine = TransformersEngine(variants["bos_added"], dtype="float32", device="cpu")
    lmeval = par.run_lmeval(lm, tmp_path / "tasks", list(files), batch_size=4)
    for name, (kind, lang, path) in files.items():
        items = par.bayling_items(kind, path, lang)
        reqs = [[[it.context, it.target_delimiter + c] for c in it.choices] for it in items]
        assert reqs == lmeval[name]["requests"], name
        got = par.compare(score_mc(engine, items, batch_size=3), lmeval[name])
        assert got["max_abs_loglik_diff"] < 1e-4 and got["same_predictions"] and got["n"] == 2, (name, got)
        assert got["bayling"]["acc"] == got["lm_eval"]["acc"], (name, got)
    assert lmeval["include_german_stem"]["requests"][0][0][0].startswith(
        "The following is multiple-choice question about STEM.Was ist"
    )
