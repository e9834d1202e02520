"""Round 55 review (review55): bugs found in this session's merged changes, each test failing before its fix.

The cost model's shape reading (``optimize/cost.py``, ``_matmul_flops``): a MUL_MAT whose weight's inner dim is 0
beside an output whose dims' product is finite but whose ``2 * M * N`` is not (``[10**154, 10**154]``) made
``inf * 0`` flops, a NaN run time, and ``plan(streams=2)`` refused a valid graph ("the run time nan"); ``shape``
attrs are free-form, and no graph is refused for one.

The ATen executor's refusal of a call whose arguments' structure is not the export's (``program.flatten_inputs``):
its message rebuilt the export's example call from the spec with a '*' for each leaf, and transformers'
``DynamicCache`` unflattening ran ``update`` on them, so a plain model's cache passed to a sliding-window step (its
spec's layout ``[None]`` for ``[4]``) raised a raw "AttributeError: 'str' object has no attribute 'device'"; it is
refused naming both layouts now, the cache left as passed.
"""

from __future__ import annotations

import copy
import math

import pytest
from needs import need

import memplan
from memplan.graph import graph_from_dict
from memplan.optimize.cost import CostModel


def _matmul(a_shape, y_shape):
    return graph_from_dict({"format": "memplan.graph/1", "name": "g", "tensors": [
        {"id": "a", "size": 256, "kind": "input", "attrs": {"shape": a_shape}},
        {"id": "w", "size": 256, "kind": "weight"},
        {"id": "y", "size": 256, "kind": "output", "attrs": {"shape": y_shape}}],
        "nodes": [{"id": "mm", "op": "MUL_MAT", "inputs": ["a", "w"], "outputs": ["y"]}]})


def test_an_empty_inner_dim_beside_a_huge_output_is_no_nan_run_time():
    """Before: ``node_us`` nan and ``plan(streams=2)`` a ScheduleError; now no multiply-add (K = 0): the node's
    bytes and floor decide, as for any MUL_MAT of an empty inner dim."""
    g = _matmul([4, 0], [10 ** 154, 10 ** 154])
    us = CostModel().node_us(g, 0)
    assert math.isfinite(us) and us == CostModel().node_us(_matmul([4, 0], [4, 4]), 0)
    p = memplan.plan(g, streams=2)
    assert p.arena_bytes >= 256


def test_a_cache_of_another_layout_is_refused_naming_it_not_a_raw_attribute_error():
    torch = need("torch")
    transformers = need("transformers")
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    def model(window):
        torch.manual_seed(0)
        cfg = transformers.MistralConfig(num_hidden_layers=1, vocab_size=128, hidden_size=32, intermediate_size=64,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                         sliding_window=window)
        cfg._attn_implementation = "eager"
        return transformers.MistralForCausalLM(cfg).eval()

    def prefilled(m, n):
        with torch.no_grad():
            return m(torch.randint(0, 128, (2, n), generator=torch.Generator().manual_seed(1)),
                     use_cache=True).past_key_values

    m = model(4)
    ids = torch.zeros((2, 1), dtype=torch.long)
    step = compile(m, (ids,), kwargs={"past_key_values": prefilled(copy.deepcopy(m), 6)}, cuda_graph=False)
    plain = prefilled(model(None), 3)   # (a DynamicLayer holding 3 tokens: the keys' shape the step takes)
    keys = plain.layers[0].keys.clone()
    with pytest.raises(AtenExecutorError, match=r"do not match the export's .*the call passes a DynamicCache with "
                                                r".*\[None\]\] where the export had a DynamicCache with .*\[4\]\]"):
        step(ids, past_key_values=plain)
    assert type(plain.layers[0]).__name__ == "DynamicLayer" and torch.equal(plain.layers[0].keys, keys)
