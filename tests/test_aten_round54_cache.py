"""Round 54 (aten54): transformers' sliding-window KV caches through ``runtime.aten.compile``.

Bugs fixed (each test failed before):
- a tiny Mistral's decode step given its ``DynamicCache`` (``DynamicSlidingWindowLayer``s: ``sliding_window`` is 4096
  by default) was refused with "a corrupted or edited program" (a full window: the cached keys are a slice of the
  step's ``cat``) or "forward changes its argument 'past_key_values' in place" (a window not yet full), neither naming
  what is unsupported: the layer's token count (``cumulative_length``), which the cache's flattening does not carry.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _mistral(**window):
    torch.manual_seed(0)
    cfg = transformers.MistralConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                     **window)
    cfg._attn_implementation = "eager"
    return transformers.MistralForCausalLM(cfg).eval()


def _ids(seed, n=6):
    return torch.randint(0, 128, (2, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("window", [{}, {"sliding_window": 4}], ids=["default_4096", "full_window_4"])
def test_a_decode_step_with_a_sliding_window_cache_is_refused_naming_it(window):
    m = _mistral(**window)
    with torch.no_grad():
        cache = m(_ids(0), use_cache=True).past_key_values
    assert type(cache.layers[0]).__name__ == "DynamicSlidingWindowLayer"
    size = cache.layers[0].sliding_window
    with pytest.raises(AtenExecutorError, match=rf"argument 'past_key_values' is a DynamicCache whose layer 0 is a "
                       rf"DynamicSlidingWindowLayer, a sliding-window layer \(sliding_window={size}, .*cumulative_length=6"
                       r".* not supported"):
        compile(m, (_ids(0, 1),), kwargs={"past_key_values": cache}, cuda_graph=False)


def _state(cache):
    return [(type(x).__name__, x.cumulative_length, x.sliding_window, x.keys.shape) for x in cache.layers]


@pytest.mark.parametrize("streams", [1, 3])
def test_a_prefill_past_its_window_returns_the_cache_eager_does(streams):
    """6 tokens through ``sliding_window=4``: eager's layers count 6 tokens and keep the last 3. The program's
    cache, rebuilt from its tensors by transformers' unflattening, counted 3 (and its window was a tensor), so an
    eager decode step given it attended at other positions (1.3e-3 off, no error); its counts are now eager's."""
    import copy

    m = _mistral(sliding_window=4)
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0),), kwargs={"use_cache": True}, streams=streams, cuda_graph=False)
    out = step(_ids(1), use_cache=True)
    with torch.no_grad():
        ref = e(_ids(1), use_cache=True)
    assert _state(out.past_key_values) == _state(ref.past_key_values)
    assert out.past_key_values.layers[0].cumulative_length == 6
    assert torch.equal(out.logits, ref.logits)
    with torch.no_grad():
        a = e(_ids(5, 1), past_key_values=out.past_key_values).logits
        b = e(_ids(5, 1), past_key_values=ref.past_key_values).logits
    assert torch.equal(a, b)
