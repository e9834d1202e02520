"""Round 55 (aten55): a decode step given a transformers ``DynamicCache`` whose sliding window is full.

Bug fixed (each test failed before): a tiny Mistral with ``sliding_window=4`` and 6 cached tokens (each layer has
seen 6 tokens and keeps the last 3) was refused at compile, its count (``cumulative_length``) being no part of the
cache's flattening for torch.export. The export's cache (rebuilt by transformers' unflattening, counting the keys:
3) now counts as the example's (6), so the program runs at eager's positions; the count is a Python int the export
specializes, so a call whose cache counts otherwise (the next step's, 7) is refused naming the layer and both counts,
before it runs, its cache left as passed. (Without the count set, the step ran 1.8e-3 off eager, no error.)
"""

from __future__ import annotations

import copy

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from test_aten_round54_cache import _ids, _state  # noqa: E402  (round 54's cache helpers)

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _model(kind="mistral", **window):
    torch.manual_seed(0)
    common = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=32, **window)
    if kind == "mistral":
        cfg, cls = transformers.MistralConfig(num_hidden_layers=1, **common), transformers.MistralForCausalLM
    else:   # Gemma2: a sliding layer, then a full one
        cfg, cls = transformers.Gemma2Config(num_hidden_layers=2, head_dim=8, **common), transformers.Gemma2ForCausalLM
    cfg._attn_implementation = "eager"
    return cls(cfg).eval()


def _prefilled(e, seed, n=6):
    with torch.no_grad():
        return e(_ids(seed, n), use_cache=True).past_key_values


def _same_tensors(a, b):
    return all(torch.equal(x.keys, y.keys) and torch.equal(x.values, y.values) for x, y in zip(a.layers, b.layers))


@pytest.mark.parametrize("streams", [1, 3])
def test_a_decode_step_given_a_full_sliding_window_equals_eager(streams):
    """Window 4, 6 tokens seen, 3 kept: refused at compile before; now the step's logits, the caller's cache (the
    very object, grown as eager's: 7 seen, 3 kept) and an eager step given either cache equal eager's bitwise."""
    m = _model(sliding_window=4)
    e = copy.deepcopy(m)
    example = _prefilled(e, 0)
    keys = example.layers[0].keys
    assert _state(example)[0][1:] == (6, 4, (2, 2, 3, 8)) and not keys.is_contiguous()   # (a slice of the cat)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": example}, streams=streams, cuda_graph=False)
    assert _state(example)[0][1] == 6 and example.layers[0].keys is keys   # (compile leaves its example as passed)
    mine, theirs = _prefilled(e, 1), _prefilled(e, 1)
    out = step(_ids(7, 1), past_key_values=mine)
    with torch.no_grad():
        ref = e(_ids(7, 1), past_key_values=theirs)
    assert out.past_key_values is mine and torch.equal(out.logits, ref.logits)
    assert _state(mine) == _state(theirs) and _state(mine)[0][1:] == (7, 4, (2, 2, 3, 8))
    assert _same_tensors(mine, theirs)
    with torch.no_grad():
        assert torch.equal(e(_ids(8, 1), past_key_values=mine).logits, e(_ids(8, 1), past_key_values=theirs).logits)


def test_a_call_whose_window_counts_otherwise_is_refused_naming_the_layer_and_left_as_passed():
    """The count is specialized by the export (the step's positions): the next step's cache (7 seen, 3 kept: the
    shapes the program takes) is refused before the program runs, naming the layer and both counts; a step compiled
    with such a cache as its example runs it, bitwise."""
    m = _model(sliding_window=4)
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0)}, cuda_graph=False)
    cache = _prefilled(e, 1)
    step(_ids(7, 1), past_key_values=cache)
    held = [(x.keys.clone(), x.values.clone()) for x in cache.layers]
    with pytest.raises(AtenExecutorError, match=r"argument 'past_key_values' is a DynamicCache whose layer 0 is a "
                                                r"DynamicSlidingWindowLayer \(sliding_window=4\) whose window is full: "
                                                r"it has seen 7 tokens and keeps the last 3, where the program was "
                                                r"exported from one that had seen 6 tokens and kept 3"):
        step(_ids(8, 1), past_key_values=cache)
    assert cache.layers[0].cumulative_length == 7
    assert all(torch.equal(x.keys, k) and torch.equal(x.values, v) for x, (k, v) in zip(cache.layers, held))
    theirs = copy.deepcopy(cache)
    next_step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": copy.deepcopy(cache)}, cuda_graph=False)
    out = next_step(_ids(8, 1), past_key_values=cache)
    with torch.no_grad():
        ref = e(_ids(8, 1), past_key_values=theirs)
    assert torch.equal(out.logits, ref.logits) and _state(cache) == _state(theirs) and _same_tensors(cache, theirs)


def test_a_gemma2_decode_step_of_a_full_sliding_layer_and_a_full_layer_equals_eager():
    """Gemma2 alternates a sliding-window layer (window 4: full after 6 tokens) and a full layer: both grown in the
    caller's cache as eager's, bitwise (3 streams)."""
    m = _model("gemma2", sliding_window=4)
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0)}, streams=3, cuda_graph=False)
    mine, theirs = _prefilled(e, 1), _prefilled(e, 1)
    assert _state(mine) == [("DynamicSlidingWindowLayer", 6, 4, (2, 2, 3, 8)), ("DynamicLayer", None, None, (2, 2, 6, 8))]
    out = step(_ids(7, 1), past_key_values=mine)
    with torch.no_grad():
        ref = e(_ids(7, 1), past_key_values=theirs)
    assert out.past_key_values is mine and torch.equal(out.logits, ref.logits)
    assert _state(mine) == _state(theirs) and _same_tensors(mine, theirs)


def test_a_layer_recording_its_past_is_still_refused_naming_it():
    """``activate_past_recording`` keeps more than the window until a ``crop``: not carried, refused at compile."""
    m = _model(sliding_window=4)
    cache = _prefilled(m, 0, 2)
    cache.layers[0].activate_past_recording()
    with pytest.raises(AtenExecutorError, match=r"layer 0 is a DynamicSlidingWindowLayer, .*records its past"):
        compile(m, (_ids(0, 1),), kwargs={"past_key_values": cache}, cuda_graph=False)
