"""Round 77, review77c: a review of the round's arch77, models77 and hf77 merges.

1. hf77's ``layer_states`` named a cache layer's 0-d tensors as the states its flattening drops: an empty
   ``LinearAttentionLayer`` (a ``DynamicCache(config=...)`` of a recurrent model, before its first call) was refused
   as dropping "that layer's cumulative_length_linear" alone, its token count, and a hybrid sliding-window layer
   named its ``_sliding_window_tensor``, the config's window kept as a tensor.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")


def _cache_utils():
    tf = need("transformers")
    cu = getattr(tf, "cache_utils", None)
    if cu is None or not hasattr(cu, "LinearAttentionLayer"):
        pytest.skip("this transformers has no LinearAttentionLayer")
    return cu


def test_an_empty_recurrent_layers_count_is_not_named_as_its_dropped_state() -> None:
    cu = _cache_utils()
    from runtime.aten.cache_args import cache_refusal

    cache = cu.DynamicCache.__new__(cu.DynamicCache)
    cache.layers = [cu.LinearAttentionLayer()]
    text = cache_refusal(torch, "past_key_values", cache)
    assert text is not None and "LinearAttentionLayer" in text, text
    assert "cumulative_length" not in text, text


def test_a_hybrid_layer_names_its_states_not_its_count_or_window() -> None:
    cu = _cache_utils()
    from memplan.importers.torch.common import layer_states

    if not hasattr(cu, "LinearAttentionAndSlidingWindowAttentionLayer"):
        pytest.skip("this transformers has no LinearAttentionAndSlidingWindowAttentionLayer")
    layer = cu.LinearAttentionAndSlidingWindowAttentionLayer(sliding_window=4)
    layer.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    layer.conv_states[0] = torch.zeros(1, 4, 2)
    layer.recurrent_states[0] = torch.zeros(1, 4, 4)
    assert layer_states(layer) == ["conv_states", "recurrent_states"]
    static = cu.StaticLayer(max_cache_len=8)
    static.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), {"cache_position": torch.arange(3)})
    assert layer_states(static) == []
