"""Round 76 (models76): PyTorch models of families and call forms no sweep list had run through ``runtime.aten`` and
the torch importer, and what broke.

Every hybrid or recurrent transformers model (Mamba, Mamba2, FalconMamba, Jamba, Bamba, Zamba, LFM2, Qwen3-Next)
called as its users call it, ``use_cache`` at its default (True), returns a ``DynamicCache`` of
``LinearAttentionLayer``s: the sweep ran each with ``use_cache=False``, and called so, ``memplan.from_torch`` and
``runtime.aten.compile`` refused them with transformers' own "This pytree flattening function should be applied to
DynamicCache containing only `DynamicLayer`, `DynamicSlidingWindowLayer` and `DummyLayer` (at executorch.py:1091 in
_get_cache_dict ...)", naming neither the model's cache nor ``use_cache=False``.
"""

from __future__ import annotations

import functools

import pytest
from needs import need

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402


@functools.cache
def _mamba():
    """A tiny transformers Mamba LM and a cache of its (two ``LinearAttentionLayer``s), from one eager call."""
    tf = need("transformers")
    torch.manual_seed(0)
    m = tf.MambaForCausalLM(tf.MambaConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, state_size=4,
                                           expand=2, conv_kernel=2)).eval()
    ids = torch.randint(0, 32, (1, 3))
    with torch.no_grad():
        cache = m(ids).past_key_values
    return m, ids, cache


def test_a_recurrent_models_returned_cache_is_refused_naming_its_layer_and_use_cache() -> None:
    """Failed before: "torch.export failed for MambaForCausalLM: This pytree flattening function should be applied to
    DynamicCache containing only `DynamicLayer`, `DynamicSlidingWindowLayer` and `DummyLayer` (at executorch.py:1091
    in _get_cache_dict: `raise RuntimeError(`)"."""
    m, ids, cache = _mamba()
    assert type(cache.layers[0]).__name__ == "LinearAttentionLayer"   # (what transformers 5 holds the states in)
    for build in (lambda: memplan.from_torch(m, (ids,)), lambda: compile(m, (ids,), streams=1)):
        with pytest.raises(GraphError) as info:
            build()
        text = str(info.value)
        assert "MambaForCausalLM" in text and "returns its cache" in text, text
        assert "layer 0 is a LinearAttentionLayer" in text and "kwargs={'use_cache': False}" in text, text
        assert "executorch.py" not in text and "pytree flattening function" not in text, text


def test_a_recurrent_models_given_cache_is_refused_naming_its_layer() -> None:
    m, ids, cache = _mamba()
    with pytest.raises(GraphError) as info:
        memplan.from_torch(m, (ids[:, :1],), kwargs={"cache_params": cache, "use_cache": True})
    text = str(info.value)
    assert "forward is given a DynamicCache whose layer 0 is a LinearAttentionLayer" in text, text
    assert "use_cache=False" in text and "executorch.py" not in text, text


def test_a_recurrent_models_cache_argument_is_refused_with_a_way_out_that_fits_it() -> None:
    """Before: "... is a LinearAttentionLayer, not a plain DynamicLayer ...; pass a cache of plain layers (no
    activate_past_recording), a config without a sliding window (sliding_window=None), or a static cache's tensors
    written in place": a sliding window's ways out, none of which a Mamba has."""
    from runtime.aten.errors import AtenExecutorError

    m, ids, cache = _mamba()
    with pytest.raises(AtenExecutorError) as info:
        compile(m, (ids[:, :1],), kwargs={"cache_params": cache, "use_cache": True}, streams=1)
    text = str(info.value)
    assert "argument 'cache_params' is a DynamicCache whose layer 0 is a LinearAttentionLayer" in text, text
    assert "use_cache=False" in text and "sliding_window" not in text, text


def test_the_same_model_without_its_cache_still_compiles_bitwise() -> None:
    m, ids, _cache = _mamba()
    step = compile(m, (ids,), kwargs={"use_cache": False}, streams=1)
    other = torch.randint(0, 32, (1, 3), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(step(other, use_cache=False).logits, m(other, use_cache=False).logits)


def test_round_76s_sweep_models_are_listed_once() -> None:
    """``runtime.aten.sweep_models76``'s entries are sweep cases, each name once (``--only`` picks by name)."""
    from collections import Counter

    from runtime.aten import sweep
    from runtime.aten.sweep_models76 import MODELS76

    counts = Counter(c.name for c in sweep.CASES)
    assert len(MODELS76) == 11 and [name for name, _, _ in MODELS76 if counts[name] != 1] == []
