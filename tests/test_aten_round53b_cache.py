"""Round 53b (aten53b): transformers' KV cache (``DynamicCache``, flattened by the torch importer since round 53)
through ``runtime.aten.compile``: a tiny Llama's prefill with ``use_cache=True`` and its decode step given
``past_key_values``, against eager, bit for bit (logits and every cache tensor), on 1 and 3 streams (CPU)."""

from __future__ import annotations

import copy

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    cfg._attn_implementation = "eager"
    return transformers.LlamaForCausalLM(cfg).eval()


def _ids(seed, n=6):
    return torch.randint(0, 128, (2, n), generator=torch.Generator().manual_seed(seed))


def _tensors(cache):
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


def _same(out, ref):
    a, b = _tensors(out.past_key_values), _tensors(ref.past_key_values)
    return (type(out.past_key_values) is type(ref.past_key_values) and torch.equal(out.logits, ref.logits)
            and len(a) == len(b) == 4 and all(torch.equal(x, y) for x, y in zip(a, b)))


@pytest.mark.parametrize("streams", [1, 3])
def test_prefill_with_use_cache_equals_eager_bitwise(streams):
    m = _llama()
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0),), kwargs={"use_cache": True}, streams=streams, cuda_graph=False)
    outs, refs = [], []
    for k in (1, 2):
        with torch.no_grad():
            refs.append(e(_ids(k), use_cache=True))
        outs.append(step(_ids(k), use_cache=True))
    for out, ref in zip(outs, refs):   # (the first call's cache is still its own after the second call)
        assert _same(out, ref)


def _prefilled(e, seed=1):
    with torch.no_grad():
        return e(_ids(seed), use_cache=True).past_key_values


@pytest.mark.parametrize("streams", [1, 3])
def test_decode_step_with_past_key_values_grows_the_callers_cache_as_eager(streams):
    """Refused before ("forward changes its argument 'past_key_values' in place"): eager's decode step grows the
    cache passed in (its layers' tensors replaced by ones longer by the new token) and returns that very object. The
    compiled call now does the same, bit for bit, and leaves compile's example cache as it was."""
    m = _llama()
    e = copy.deepcopy(m)
    example = _prefilled(e, 0)
    before = [t.clone() for t in _tensors(example)]
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": example}, streams=streams, cuda_graph=False)
    assert all(torch.equal(a, b) for a, b in zip(_tensors(example), before))
    for k in (1, 2):
        mine, theirs = _prefilled(e, k), _prefilled(e, k)
        layers = list(mine.layers)
        with torch.no_grad():
            ref = e(_ids(k + 5, 1), past_key_values=theirs)
        out = step(_ids(k + 5, 1), past_key_values=mine)
        assert ref.past_key_values is theirs and out.past_key_values is mine and mine.layers == layers
        assert _same(out, ref) and mine.layers[0].keys.shape[-2] == 7


def test_a_decode_step_given_a_longer_cache_is_refused_and_leaves_it_as_passed():
    m = _llama()
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0)}, cuda_graph=False)
    cache = _prefilled(e, 1)
    step(_ids(3, 1), past_key_values=cache)   # (7 tokens now: the program's cache input holds 6)
    held = [t.clone() for t in _tensors(cache)]
    with pytest.raises(Exception, match=r"past_key_values_key_cache_0.* is \(2, 2, 7, 8\).*exported with \(2, 2, 6, 8\)"):
        step(_ids(4, 1), past_key_values=cache)
    assert all(torch.equal(a, b) for a, b in zip(_tensors(cache), held))


def test_a_cache_of_sliding_window_layers_is_refused_never_grown_without_its_count():
    """A ``DynamicSlidingWindowLayer`` counts the tokens it has seen (``cumulative_length``), which the flattened
    cache does not carry: such a decode step is never run with a cache that lost it (round 55: the export's cache
    counts as the example's, and a call whose cache counts otherwise is refused naming the layer)."""
    torch.manual_seed(0)
    cfg = transformers.MistralConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                     sliding_window=4)
    cfg._attn_implementation = "eager"
    m = transformers.MistralForCausalLM(cfg).eval()
    with torch.no_grad():
        cache = m(_ids(0), use_cache=True).past_key_values
    assert type(cache.layers[0]).__name__ == "DynamicSlidingWindowLayer"
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": cache}, cuda_graph=False)
    with torch.no_grad():
        other = m(_ids(1), use_cache=True).past_key_values
    other.layers[0].cumulative_length += 1
    with pytest.raises(AtenExecutorError, match="DynamicSlidingWindowLayer .*where the program was exported"):
        step(_ids(0, 1), past_key_values=other)


def test_a_call_with_a_cache_of_other_layers_is_refused_before_it_runs():
    m = _llama()
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0)}, cuda_graph=False)
    cache = _prefilled(e, 1)
    cache.layers[0] = type("OtherLayer", (type(cache.layers[0]),), {})()
    vars(cache.layers[0]).update(vars(_prefilled(e, 1).layers[0]))
    with pytest.raises(AtenExecutorError, match="not a DynamicCache of plain DynamicLayers"):
        step(_ids(3, 1), past_key_values=cache)
