"""Round 56 (aten56): transformers' sliding-window caches inside containers and ``EncoderDecoderCache``s.

Bugs fixed (each test failed before):
- a ``DynamicCache`` inside a dict, a list or a tuple argument was neither given the example's token count at the
  export (its unflattening counts the keys: 3 for a window of 4 that has seen 6) nor checked at each call: a module
  reading the count ran at position 3 where eager runs at 6, and a call whose cache had seen 7 ran too, silently.
  Now the export's cache counts as the example's and a call counting otherwise is refused naming the path
  (``state['cache']``) and the layer.
- an ``EncoderDecoderCache`` (T5's, T5Gemma's) passed to a decode step was refused ("forward changes its argument
  'cache' in place"); T5Gemma's, whose self-attention cache has a full sliding window, failed as "a corrupted or
  edited program". Now the step grows the caller's cache as eager's, bitwise, its counts and flags too, and a call
  counting otherwise is refused naming ``cache.self_attention_cache``.
- a T5Gemma prefill past its window returned an ``EncoderDecoderCache`` counting 3 tokens where eager's counts 6.
"""

from __future__ import annotations

import copy
import functools
import re

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from test_aten_round54_cache import _ids  # noqa: E402  (round 54's cache helpers)

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _mistral_cache(seed, n=6):
    """A tiny Mistral's prefill cache (window 4: after 6 tokens it has seen 6 and keeps 3), its tensors contiguous
    (a full window's keys are a slice of the step's ``cat``; round 55 copes with that already)."""
    torch.manual_seed(0)
    cfg = transformers.MistralConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                     sliding_window=4)
    cfg._attn_implementation = "eager"
    with torch.no_grad():
        cache = transformers.MistralForCausalLM(cfg).eval()(_ids(seed, n), use_cache=True).past_key_values
    for x in cache.layers:
        x.keys, x.values = x.keys.contiguous(), x.values.contiguous()
    return cache


#: (how the cache sits in the argument, how forward reads it, the path a refusal names)
CONTAINERS = {
    "dict": (lambda c: {"cache": c}, lambda s: s["cache"], "state['cache']"),
    "list": (lambda c: [c], lambda s: s[0], "state[0]"),
    "tuple_in_dict": (lambda c: {"caches": (None, c)}, lambda s: s["caches"][1], "state['caches'][1]"),
}


class AbsolutePositions(torch.nn.Module):
    """Learned absolute positions after the tokens a cache has seen (GPT-2's position embedding past a cache), the
    cache read, not grown, from a container argument: the count is all the program takes from it."""

    def __init__(self, read):
        super().__init__()
        torch.manual_seed(0)
        self.tok, self.pos, self.read = torch.nn.Embedding(128, 8), torch.nn.Embedding(32, 8), read

    def forward(self, ids, state):
        start = self.read(state).get_seq_length()
        return self.tok(ids) + self.pos(torch.arange(start, start + ids.shape[1]))


@pytest.mark.parametrize("kind,streams", [("dict", 1), ("dict", 3), ("list", 1), ("tuple_in_dict", 3)])
def test_a_cache_inside_a_container_counts_as_the_example_and_another_count_is_refused_naming_its_path(kind, streams):
    """Window 4, 6 seen, 3 kept: the program runs at eager's positions (before: at 3, the keys' length); a call whose
    cache has seen 7 is refused naming the argument's path and the layer (before: it ran at the export's), the
    cache left as passed."""
    wrap, read, path = CONTAINERS[kind]
    m = AbsolutePositions(read).eval()
    step = compile(m, (_ids(0, 2), wrap(_mistral_cache(0))), streams=streams, cuda_graph=False)
    state = wrap(_mistral_cache(1))
    with torch.no_grad():
        assert torch.equal(step(_ids(3, 2), state), m(_ids(3, 2), state))
    later = _mistral_cache(1, 7)
    with pytest.raises(AtenExecutorError, match=rf"argument {re.escape(repr(path))} is a DynamicCache whose layer 0 is a "
                                                r"DynamicSlidingWindowLayer \(sliding_window=4\) whose window is full: it "
                                                r"has seen 7 tokens and keeps the last 3, where the program was exported "
                                                r"from one that had seen 6 tokens and kept 3"):
        step(_ids(3, 2), wrap(later))
    assert later.layers[0].cumulative_length == 7


def _t5gemma():
    """A tiny T5Gemma (Gemma2's encoder-decoder): its decoder's layer 0 slides (window 4), layer 1 is full."""
    torch.manual_seed(0)
    module = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8, max_position_embeddings=32, sliding_window=4,
                  query_pre_attn_scalar=8)
    cfg = transformers.T5GemmaConfig(encoder=dict(module), decoder=dict(module), vocab_size=128)
    for c in (cfg, cfg.encoder, cfg.decoder):
        c._attn_implementation = "eager"
    return transformers.T5GemmaForConditionalGeneration(cfg).eval()


@functools.cache
def _t5gemma_step(streams):
    """(T5Gemma, its eager twin, a decode step compiled from it at ``streams``) exported from a cache past its window
    (6 seen, 3 kept), made once per file: the decode-step tests (1 and 3 streams) and the flag test read the same
    export (~2 s of CPU each); the 3-stream step reuses the 1-stream one's program (``program=``: the same export,
    planned again, as test_aten's bitwise test does). Each call loads the caller's cache afresh and grows the caller's
    objects, so nothing one test sees survives in a step; no test changes the twin or the module."""
    if streams == 1:
        m = _t5gemma()
        e, program = copy.deepcopy(m), None
    else:
        m, e, serial = _t5gemma_step(1)
        program = serial.program
    enc, example = _prefilled(e, 0)
    step = compile(m, (), kwargs={"encoder_outputs": enc, "decoder_input_ids": _ids(0, 1), "cache": example},
                   streams=streams, cuda_graph=False, program=program)
    return m, e, step


def _encoded(model, seed):
    with torch.no_grad():
        return model.get_encoder()(input_ids=_ids(seed + 100, 5))


def _prefilled(model, seed, n=6):
    """(encoder outputs, the decoder's prefill cache: self-attention layer 0 has seen ``n`` and keeps 3)."""
    enc = _encoded(model, seed)
    with torch.no_grad():
        return enc, model(encoder_outputs=enc, decoder_input_ids=_ids(seed, n), use_cache=True).cache


def _state(cache):
    """Each layer's kind, count, window and keys' shape, both caches, and the cross-attention flags."""
    layers = [*cache.self_attention_cache.layers, *cache.cross_attention_cache.layers]
    return ([(type(x).__name__, getattr(x, "cumulative_length", None), getattr(x, "sliding_window", None),
              tuple(x.keys.shape)) for x in layers], dict(cache.is_updated))


def _same_tensors(a, b):
    layers = zip([*a.self_attention_cache.layers, *a.cross_attention_cache.layers],
                 [*b.self_attention_cache.layers, *b.cross_attention_cache.layers])
    return all(torch.equal(x.keys, y.keys) and torch.equal(x.values, y.values) for x, y in layers)


@pytest.mark.parametrize("streams", [1, 3])
def test_a_t5gemma_decode_step_given_a_full_sliding_window_equals_eager(streams):
    """The step's logits, the caller's ``EncoderDecoderCache`` (the very object, its self-attention cache grown as
    eager's: 7 seen, 3 kept; its cross-attention cache and flags), and an eager step given either cache equal eager's
    bitwise; the next step's cache (7 seen) is refused naming ``cache.self_attention_cache`` and left as passed."""
    _m, e, step = _t5gemma_step(streams)
    enc, mine = _prefilled(e, 1)
    theirs = copy.deepcopy(mine)
    out = step(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=mine)
    with torch.no_grad():
        ref = e(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=theirs)
    assert out.cache is mine and torch.equal(out.logits, ref.logits)
    assert _state(mine) == _state(theirs) and _state(mine)[0][0] == ("DynamicSlidingWindowLayer", 7, 4, (2, 2, 3, 8))
    assert _same_tensors(mine, theirs)
    held = copy.deepcopy(mine)
    with pytest.raises(AtenExecutorError, match=r"argument 'cache.self_attention_cache' is a DynamicCache whose layer 0 "
                                                r"is a DynamicSlidingWindowLayer \(sliding_window=4\) whose window is "
                                                r"full: it has seen 7 tokens and keeps the last 3, where the program was "
                                                r"exported from one that had seen 6 tokens and kept 3"):
        step(encoder_outputs=enc, decoder_input_ids=_ids(8, 1), cache=mine)
    assert _state(mine) == _state(held) and _same_tensors(mine, held)
    with torch.no_grad():
        nxt = e(encoder_outputs=enc, decoder_input_ids=_ids(8, 1), cache=mine).logits
        assert torch.equal(nxt, e(encoder_outputs=enc, decoder_input_ids=_ids(8, 1), cache=theirs).logits)


def test_a_t5gemma_prefill_returns_a_cache_counting_as_eager():
    """A prefill of 6 decoder tokens (window 4): the returned ``EncoderDecoderCache``'s sliding layer counts 6, as
    eager's (before: 3, its keys' length), so an eager step given it equals one given eager's."""
    m = _t5gemma()
    e = copy.deepcopy(m)
    enc = _encoded(e, 0)
    prefill = compile(m, (), kwargs={"encoder_outputs": enc, "decoder_input_ids": _ids(0), "use_cache": True},
                      streams=3, cuda_graph=False)
    enc = _encoded(e, 1)
    out = prefill(encoder_outputs=enc, decoder_input_ids=_ids(1), use_cache=True)
    with torch.no_grad():
        ref = e(encoder_outputs=enc, decoder_input_ids=_ids(1), use_cache=True)
    assert torch.equal(out.logits, ref.logits) and _state(out.cache) == _state(ref.cache)
    assert _same_tensors(out.cache, ref.cache)
    with torch.no_grad():
        a = e(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=out.cache).logits
        assert torch.equal(a, e(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=ref.cache).logits)


def test_a_t5_decode_step_grows_its_encoder_decoder_cache_as_eager():
    """T5 (no sliding window): its decode step was refused ("forward changes its argument 'cache' in place"); now
    the caller's ``EncoderDecoderCache`` grows as eager's (6 to 7 tokens), logits and tensors bitwise."""
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=128, d_model=32, d_ff=64, num_layers=1, num_heads=4, d_kv=8,
                                decoder_start_token_id=0)   # (one layer: its cache grows as a second's would)
    cfg._attn_implementation = "eager"
    m = transformers.T5ForConditionalGeneration(cfg).eval()
    e = copy.deepcopy(m)
    enc, example = _prefilled(e, 0)
    step = compile(m, (), kwargs={"encoder_outputs": enc, "decoder_input_ids": _ids(0, 1), "cache": example},
                   cuda_graph=False)
    enc, mine = _prefilled(e, 1)
    theirs = copy.deepcopy(mine)
    out = step(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=mine)
    with torch.no_grad():
        ref = e(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=theirs)
    assert out.cache is mine and torch.equal(out.logits, ref.logits)
    assert _state(mine) == _state(theirs) and _state(mine)[0][0][3] == (2, 4, 7, 8) and _same_tensors(mine, theirs)


def test_a_strict_export_of_a_cache_inside_a_container_is_refused_naming_its_path():
    """A strict export watches no ``forward``: a cache inside a dict was neither counted at the export nor checked
    at the calls (a top-level one has been refused since round 54); now refused naming its path."""
    from runtime.aten.program import load_program

    m = AbsolutePositions(CONTAINERS["dict"][1]).eval()
    with pytest.raises(AtenExecutorError, match=r"argument \"state\['cache'\]\" is a transformers DynamicCache and "
                                                r"this program is a strict export"):
        load_program(m, (_ids(0, 2), {"cache": _mistral_cache(0)}), strict=True)


def test_an_encoder_decoder_cache_flagged_otherwise_than_its_keys_is_refused_naming_the_layer():
    """``is_updated`` is no part of the flattening (the export's flags are rebuilt from the cross-attention keys):
    a cache whose layer 0 holds keys but is flagged False (eager would append the encoder's keys again) is refused
    before the program runs, left as passed."""
    _m, e, step = _t5gemma_step(1)   # (the decode-step test's: the refusal comes before any plan runs)
    enc, mine = _prefilled(e, 1)
    mine.is_updated[0] = False
    held = copy.deepcopy(mine)
    with pytest.raises(AtenExecutorError, match=r"argument 'cache' is an EncoderDecoderCache whose is_updated flag of "
                                                r"layer 0 is False where its cross-attention cache holds keys"):
        step(encoder_outputs=enc, decoder_input_ids=_ids(7, 1), cache=mine)
    assert _state(mine) == _state(held) and _same_tensors(mine, held)


@pytest.mark.parametrize("streams", [3])   # (compile_per_count passes streams through to compile, as every option:
def test_compile_per_count_steps_each_count_with_a_program_of_its_own(streams):   # 1 stream adds no path of its own)
    """A step compiled for one count refuses another (round 55); ``compile_per_count`` compiles one at the first call
    of each new count, the least recently used let go past ``limit``: counts 6, 7, 6, 8 with ``limit=2`` compile 3
    programs (6 reused; 7 let go), each step bitwise eager, logits and the caller's cache grown as eager's."""
    from test_aten_round54_cache import _mistral, _state

    from runtime.aten import compile_per_count

    m = _mistral(sliding_window=4)
    e = copy.deepcopy(m)

    def prefilled(seed, n):
        with torch.no_grad():
            return e(_ids(seed, n), use_cache=True).past_key_values

    steps = compile_per_count(m, (_ids(0, 1),), kwargs={"past_key_values": prefilled(0, 6)}, limit=2,
                              streams=streams, cuda_graph=False)
    for seed, n in [(1, 6), (2, 7), (3, 6), (4, 8)]:
        mine, theirs = prefilled(seed, n), prefilled(seed, n)
        out = steps(_ids(seed + 10, 1), past_key_values=mine)
        with torch.no_grad():
            ref = e(_ids(seed + 10, 1), past_key_values=theirs)
        assert out.past_key_values is mine and torch.equal(out.logits, ref.logits)
        assert _state(mine) == _state(theirs) and _state(mine)[0][1] == n + 1
        assert torch.equal(mine.layers[0].keys, theirs.layers[0].keys)
    assert steps.compiles == 3
    assert [key[0][1][0][1] for key in steps.programs] == [6, 8]


def test_compile_per_count_takes_a_positive_limit_and_no_one_count_plan():
    from runtime.aten import compile_per_count

    m = AbsolutePositions(CONTAINERS["dict"][1]).eval()
    with pytest.raises(AtenExecutorError, match=r"compile_per_count: limit must be an int of at least 1"):
        compile_per_count(m, (_ids(0, 2), {"cache": _mistral_cache(0)}), limit=0)
    with pytest.raises(AtenExecutorError, match=r"compile_per_count: option 'program' is one count's"):
        compile_per_count(m, (_ids(0, 2), {"cache": _mistral_cache(0)}), program=object())


class _Pair:
    """A pytree node registered without keys (``flatten_with_keys_fn``): torch cannot name its children's paths."""

    def __init__(self, a, b):
        self.a, self.b = a, b


class _PrefillWithPair(torch.nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        out = self.lm(ids, use_cache=True)
        return {"logits": out.logits, "cache": out.past_key_values, "pair": _Pair(out.logits, out.logits * 2)}


def test_a_prefill_returning_a_node_without_keys_beside_its_cache_still_counts_as_eager():
    """The output's caches are found by torch's key paths; an output holding a node registered without keys (which
    torch cannot walk by keys) falls back to dicts, lists and tuples: the cache beside it still counts 6, as eager's,
    not 3 (this round's first walk returned no cache there)."""
    from test_aten_round54_cache import _mistral, _state

    pytree = torch.utils._pytree
    pytree.register_pytree_node(_Pair, lambda p: ([p.a, p.b], None), lambda c, _ctx: _Pair(*c))
    try:
        m = _PrefillWithPair(_mistral(sliding_window=4))
        e = copy.deepcopy(m)
        prefill = compile(m, (_ids(0),), cuda_graph=False)
        out = prefill(_ids(1))
        with torch.no_grad():
            ref = e(_ids(1))
        assert torch.equal(out["logits"], ref["logits"]) and torch.equal(out["pair"].b, ref["pair"].b)
        assert _state(out["cache"]) == _state(ref["cache"]) and _state(out["cache"])[0][1] == 6
    finally:
        pytree._deregister_pytree_node(_Pair)
