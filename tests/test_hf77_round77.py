"""Round 77 (hf77): transformers models no sweep list had driven through ``memplan.from_torch`` and
``runtime.aten``, called as their users call them, and what broke.

DeepSeek-V3.2 and GLM-MoE-DSA (dynamic sparse attention) called with ``use_cache`` at its default return a
``DynamicCache`` of ``DynamicIndexedLayer``s (keys, values and the indexer's keys): the refusal named the layer but
said what it drops was "a recurrent or linear-attention layer's conv and recurrent states" of "a hybrid or recurrent
model", neither of which such a model has.
"""

from __future__ import annotations

import functools

import pytest
from needs import need

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


@functools.cache
def _deepseek_v32():
    tf = need("transformers")
    if not hasattr(tf, "DeepseekV32ForCausalLM"):
        pytest.skip(f"transformers {tf.__version__} has no DeepseekV32ForCausalLM")
    torch.manual_seed(0)
    cfg = tf.DeepseekV32Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                               vocab_size=64, max_position_embeddings=32, intermediate_size=32, n_routed_experts=2,
                               num_experts_per_tok=1, moe_intermediate_size=16, first_k_dense_replace=1,
                               n_shared_experts=1, q_lora_rank=16, kv_lora_rank=16, qk_rope_head_dim=8,
                               qk_nope_head_dim=8, v_head_dim=16, n_group=1, topk_group=1)
    cfg._attn_implementation = "eager"
    return tf.DeepseekV32ForCausalLM(cfg).eval()


def test_an_indexed_attention_cache_is_refused_naming_what_its_layer_holds() -> None:
    m = _deepseek_v32()
    ids = torch.randint(0, 64, (1, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer = m(ids).past_key_values.layers[0]
    assert type(layer).__name__ == "DynamicIndexedLayer"   # (what transformers 5 holds a DSA layer's cache in)
    with pytest.raises(GraphError) as info:
        memplan.from_torch(m, (ids,))
    text = str(info.value)
    assert "layer 0 is a DynamicIndexedLayer" in text and "not that layer's indexer_keys" in text, text
    assert "kwargs={'use_cache': False}" in text, text
    assert "recurrent" not in text and "conv" not in text and "hybrid" not in text, text


def test_a_decode_step_given_an_indexed_attention_cache_is_refused_naming_what_its_layer_holds() -> None:
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    m = _deepseek_v32()
    ids = torch.randint(0, 64, (1, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cache = m(ids).past_key_values
    with pytest.raises(AtenExecutorError) as info:
        compile(m, (ids[:, :1],), kwargs={"past_key_values": cache}, streams=1, cuda_graph=False)
    text = str(info.value)
    assert "argument 'past_key_values' is a DynamicCache whose layer 0 is a DynamicIndexedLayer" in text, text
    assert "not that layer's indexer_keys" in text and "use_cache=False" in text, text


def test_a_recurrent_layers_states_are_named_as_it_holds_them() -> None:
    """A ``LinearAttentionLayer`` holds its conv and recurrent states in dicts of tensors (one per state index): the
    names first found were its ``cumulative_length_linear`` alone, its 0-d count."""
    tf = need("transformers")
    from memplan.importers.torch.common import layer_states

    layer = tf.cache_utils.LinearAttentionLayer()
    layer.conv_states[0] = torch.zeros(1, 4, 2)
    layer.recurrent_states[0] = torch.zeros(1, 4, 4)
    names = layer_states(layer)
    assert names[:2] == ["conv_states", "recurrent_states"], names
