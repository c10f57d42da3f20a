"""The transformers engine's own greedy loop (:mod:`bayling.engines.decode`): shared prefixes computed once and
rows that leave the batch give the same greedy outputs as ``model.generate``, byte for byte, at any batch size.

Two tiny random models: the Llama of the other engine tests, and a Gemma-3 layout (sliding-window and full layers,
window 16) whose prompts and shared prefixes are longer than the window, so the cache layout of a shared prefix
under left padding is tested where the sliding mask cuts into it.
"""

from __future__ import annotations

import pytest

from bayling.engines import GenerationParams
from bayling.engines import decode as fast_decode
from bayling.engines.decode import ScreenedHead, argmax_rows, prefix_groups

DEMOS = [
    "English: Hello world! How are you?\nGerman: Das Wetter ist heute schön.\n\n"
    "English: The weather is nice today.\nGerman: Übersetze den folgenden Text.\n\n",
    "English: Make it more formal.\nChinese: 今天天气很好。\n\n"
    "English: Can you make it shorter?\nChinese: 我们明天早上九点在火车站见面。\n\n",
]
SOURCES = [
    "Hello world!",
    "Now translate it into German. 1 2 3",
    "The weather is nice today, so we meet at 9.",
    "How are you?",
    "Make it more formal. Can you make it shorter? Now translate it into Chinese.",
]


def _prompts() -> list[str]:
    """Few-shot prompts of two 'directions' (a long shared prefix each) and two prompts sharing nothing."""
    out = [f"{d}English: {s}\n{'German' if i == 0 else 'Chinese'}:" for i, d in enumerate(DEMOS) for s in SOURCES]
    return out + ["Übersetze den folgenden Text.", "1 2 3 4 5 6 7 8 9 0"]


def _conversations() -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Translate the following English text into German.\n{s}"}] for s in SOURCES]


@pytest.fixture(scope="module")
def tiny_gemma3(tmp_path_factory):
    """A random Gemma-3 text model (2 sliding-window layers of window 16, 1 full layer) with the tiny tokenizer."""
    import torch
    from tests.conftest import build_tiny_tokenizer
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    out = tmp_path_factory.mktemp("tiny_gemma3")
    tok = build_tiny_tokenizer(out)
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        sliding_window=16,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(out)
    return out


def _engine(path, decode: str, batch_size: int, screen_head: bool | None = False):
    """``screen_head`` False by default: the plain float32 output layer, whatever this CPU's bf16 support."""
    from bayling.engines.hf import TransformersEngine

    engine = TransformersEngine(path, dtype="float32", device="cpu", batch_size=batch_size, decode=decode)
    engine.screen_head = screen_head
    return engine


def test_prefix_groups_find_each_direction_and_leave_the_rest():
    prompts = [[1] * 40 + [2, i] for i in range(3)] + [[1] * 10 + [3]] + [[5] * 40 + [i] for i in range(2)] + [[7]]
    groups = prefix_groups(prompts, min_prefix=32)
    assert groups == [(41, [0, 1, 2]), (40, [4, 5]), (0, [3, 6])]
    assert prefix_groups(list(reversed(prompts)), 32) == [(41, [6, 5, 4]), (40, [2, 1]), (0, [0, 3])]
    # identical prompts: the shared prefix stops one short of the shortest (its last token must be fed)
    assert prefix_groups([[4] * 40, [4] * 40], 32) == [(39, [0, 1])]
    assert prefix_groups([], 32) == []


def test_argmax_rows_equals_argmax_of_the_logits_first_index_on_ties():
    import torch

    torch.manual_seed(0)
    weight = torch.randn(1000, 8)
    for rows in (1, 5, 16, 40):
        hidden = torch.randn(rows, 8) * 3
        want = (hidden @ weight.t()).argmax(-1)
        for chunk in (7, 64, 2048):
            assert torch.equal(argmax_rows(weight, hidden, chunk), want), (rows, chunk)
    # a tie across blocks: the same row at 3 and 900, and every hidden row pointing at it; the first index wins
    weight[900] = weight[3] = 50 * weight[3] / weight[3].norm()
    hidden = weight[3].repeat(20, 1)
    assert argmax_rows(weight, hidden, 64).tolist() == [3] * 20 == (hidden @ weight.t()).argmax(-1).tolist()


def test_screened_head_gives_the_float32_argmax_where_bf16_alone_does_not():
    """Gemma-like states (unit-norm vocabulary rows, two channels far above the rest) aimed at tokens with a
    near-twin: the bf16 logits' argmax is wrong in half the rows, the screen without its bound in some, the
    screened head in none; ties go to the first index; non-finite states and rows with too many candidates take
    the float32 product."""
    import torch

    torch.manual_seed(0)
    weight = torch.randn(6000, 48)
    weight = weight / weight.norm(dim=1, keepdim=True)
    weight[5000:5100] = weight[4000:4100] + 1e-4 * torch.randn(100, 48)  # near-duplicate tokens: near-ties
    hidden = torch.randn(256, 48) * 80
    hidden[:, 7] = 900 * torch.sign(torch.randn(256))
    hidden[:, 30] = 250.0
    hidden += 1200 * weight[4000:4100].repeat(3, 1)[:256]
    want = argmax_rows(weight, hidden)
    bf16 = (hidden.bfloat16() @ weight.bfloat16().t()).argmax(1)
    assert int((bf16 != want).sum()) > 100  # bf16 alone
    unbounded = ScreenedHead(weight, channels=4)
    unbounded.U = 2.0**-30  # the bound without bf16's rounding: candidates too few
    assert int((unbounded(hidden) != want).sum()) >= 1
    head = ScreenedHead(weight, channels=4)
    for rows in (16, 64, 256):
        for i in range(0, 256, rows):
            assert torch.equal(head(hidden[i : i + rows]), want[i : i + rows]), (rows, i)
    assert 7 in head.split.tolist() and head.fallbacks == 0 and head.rescored >= 256
    tied = weight.clone()
    tied[5999] = tied[11]
    assert ScreenedHead(tied)(tied[11:12].repeat(16, 1) * 50).tolist() == [11] * 16
    broken = hidden[:16].clone()
    broken[3, 0] = float("nan")
    head(broken)
    assert head.fallbacks == 1
    flat = torch.zeros(16, 48)  # every logit 0: every token a candidate
    assert head(flat).tolist() == [0] * 16 and head.fallbacks == 2


@pytest.mark.parametrize("model", ["wide_llama", "tiny_gemma3"])
def test_fast_decode_matches_generate_across_batch_sizes(model, request, monkeypatch):
    path = request.getfixturevalue(model)
    monkeypatch.setattr(fast_decode, "HEAD_CHUNK", 7)  # the fused output layer in many blocks, a short last one
    prompts = _prompts()
    plain = _engine(path, "generate", 4)
    limits = tuple(5 + 3 * (i % 7) for i in range(len(prompts)))  # rows stop at different steps and leave
    params = GenerationParams(max_new_tokens=24, max_new_tokens_each=limits)
    want = plain.complete(prompts, params, stop=())
    assert [len(plain.tokenizer(w, add_special_tokens=False)["input_ids"]) > 0 for w in want].count(True) > 5
    # a stop string that occurs mid-output for several rows, so rows also leave the batch on a stop string
    chars = [c for w in want for c in set(w[1:-1]) if c.strip()]
    stop = max(set(chars), key=chars.count)
    want_stop = plain.complete(prompts, params, stop=(stop,))
    assert sum(stop in w for w in want) >= 3 and want_stop != want
    want_chat = plain.generate_detailed(_conversations(), GenerationParams(max_new_tokens=12))
    for batch_size in (1, 3, 16):
        fast = _engine(path, "fast", batch_size)
        assert fast_decode._NextTokens(fast.model).fused  # the output layer taken from the decoder's hidden states
        assert fast.complete(prompts, params, stop=()) == want
        assert fast.complete(prompts, params, stop=(stop,)) == want_stop
        assert fast.generate_detailed(_conversations(), GenerationParams(max_new_tokens=12)) == want_chat
    # 20 rows at once (the blocked output layer); a stopped row stays until 1/16 of the batch has stopped, then
    # the rows are compacted, and a quarter free starts the next prompts
    twice = GenerationParams(max_new_tokens=24, max_new_tokens_each=limits + limits)
    assert _engine(path, "fast", 20).complete(prompts + prompts, twice, stop=(stop,)) == want_stop + want_stop
    # the same through the bf16-screened output layer (used from 16 rows up)
    screened = _engine(path, "fast", 20, screen_head=True)
    assert screened.complete(prompts + prompts, twice, stop=(stop,)) == want_stop + want_stop
    head = screened.model.get_output_embeddings().weight._bayling_screen[1]
    assert head.rescored > 0 and head.fallbacks == 0  # it ran, and screened every step


def test_fast_decode_computes_each_shared_prefix_once(wide_llama):
    """The two few-shot 'directions' cost one prefix pass each: far fewer prompt tokens reach the model."""
    prompts = _prompts()
    counted = {}
    for decode in ("generate", "fast"):
        engine = _engine(wide_llama, decode, 4)
        seen: list[int] = []

        def count(module, args, output, seen=seen):
            seen.append(args[0].numel())

        hook = engine.model.model.embed_tokens.register_forward_hook(count)
        engine.complete(prompts, GenerationParams(max_new_tokens=1), stop=())
        hook.remove()
        counted[decode] = sum(seen)
    prefix = len(engine.tokenizer(DEMOS[0])["input_ids"])
    assert counted["fast"] < counted["generate"] - 6 * prefix, counted


def test_per_request_limits_cut_every_engine_path(tiny_engine):
    convs = _conversations()
    params = GenerationParams(max_new_tokens=9, max_new_tokens_each=(1, 2, 3, 9, 9))
    got = tiny_engine.generate_detailed(convs, params)
    full = tiny_engine.generate_detailed(convs, GenerationParams(max_new_tokens=9))
    for r, f, k in zip(got, full, params.limits(5), strict=True):
        assert r["completion_tokens"] == min(k, f["completion_tokens"])
        assert f["text"].startswith(r["text"].rstrip())
    with pytest.raises(ValueError, match="2 limits for 5 requests"):
        tiny_engine.generate(convs, GenerationParams(max_new_tokens_each=(1, 2)))
    assert GenerationParams(max_new_tokens=4, max_new_tokens_each=(1, 9)).limits(2) == [1, 4]  # capped


def test_loop_period_finds_the_shortest_unit_repeated_over_the_span():
    from bayling.engines.decode import extend_loop, loop_period, replay

    row = [9, 8, 7] + [1, 2, 3] * 4  # a 3-token unit over the last 12 tokens
    assert loop_period(row, 12) == 3
    assert loop_period(row, 9) == 3
    assert loop_period(row, 8) == 0  # 3 > 8 // 3: fewer than three repeats of the unit fit in the span
    assert loop_period(row, 16) == 0  # the span reaches the tokens before the loop
    assert loop_period([4] * 6, 6) == 1 and loop_period([4] * 5, 6) == 0  # shorter than the span: no loop yet
    assert loop_period(row, 0) == 0  # 0: off
    # continued to the limit by repeating the unit, or to the first stop the repetition completes
    assert extend_loop(list(row), 3, 20, lambda r: False) == row + [1, 2, 3, 1, 2]
    assert extend_loop(list(row), 3, 40, lambda r: len(r) == 17) == row + [1, 2]
    # replay: the row a path that decodes every token produced, cut where the loop is complete and written out
    full = [9, 8, 7] + [1, 2] * 10
    assert replay(full, 23, lambda r: False, 6) == full  # the model stayed in its loop: the same row
    left = [9, 8, 7] + [1, 2] * 3 + [5, 6, 5]  # it would have left its loop: the rule writes the loop on
    assert replay(left, 12, lambda r: False, 6) == [9, 8, 7] + [1, 2] * 4 + [1]
    assert replay(left, 12, lambda r: r[-1] == 8, 6) == [9, 8]  # a stop before any loop ends the row there
    assert replay(left, 12, lambda r: False, 0) == left  # span 0: every token kept


@pytest.mark.parametrize("model", ["wide_llama", "tiny_gemma3"])
def test_loop_span_writes_loops_out_on_both_paths_and_decodes_less(model, request):
    """A random tiny model loops under greedy decoding: with ``loop_span`` both paths return the full decoding's
    tokens cut at the loop and written out (:func:`replay`), byte for byte, and the fast path runs fewer steps."""
    from bayling.engines.decode import StopCheck, replay

    path = request.getfixturevalue(model)
    prompts = _prompts()
    limits = tuple(30 + (i % 5) for i in range(len(prompts)))
    full = GenerationParams(max_new_tokens=40, max_new_tokens_each=limits)
    looped = GenerationParams(max_new_tokens=40, max_new_tokens_each=limits, loop_span=6)
    plain = _engine(path, "generate", 4)
    ids = [plain.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    kw = {"eos_token_id": sorted({*plain.stop_ids, plain.tokenizer.eos_token_id} - {None})}
    rows = plain._generate_ids(ids, full, {**plain._gen_kwargs(full), **kw}, None)
    check = StopCheck(set(kw["eos_token_id"]), (), plain.tokenizer)
    want = {span: [replay(r, k, check, span) for r, k in zip(rows, limits, strict=True)] for span in (0, 6)}
    assert want[0] != want[6]
    loops = sum(fast_decode.loop_period(r[:k], 6) > 0 for r, k in zip(rows, limits, strict=True))
    assert loops >= 3, "the tiny model should loop in some rows, or this test tests nothing"
    assert plain._generate_ids(ids, looped, {**plain._gen_kwargs(looped), **kw}, None) == want[6]
    steps = {}
    for span, params in ((0, full), (6, looped)):
        for batch_size in (1, 5, 16):
            fast = _engine(path, "fast", batch_size)
            calls: list[int] = []
            hook = fast.model.model.embed_tokens.register_forward_hook(lambda m, a, o, c=calls: c.append(1))
            got = fast._generate_ids(ids, params, {**fast._gen_kwargs(params), **kw}, None)
            hook.remove()
            assert got == want[span], (span, batch_size)
            steps[span, batch_size] = len(calls)
    assert steps[6, 1] < steps[0, 1] and steps[6, 16] <= steps[0, 16]
