"""Round 39: models and building blocks the sweep did not hold, run as the sweep runs them (CPU, 1 stream and
``streams="auto"``, two calls on fresh inputs against eager, the arena NaN-poisoned), and planned through
``memplan.from_torch`` + ``plan`` + ``verify``.

No bug was found in this round's search (docs/aten.md, "Correctness", session 39): these tests keep the cheapest of
the new sweep entries (``runtime/aten/sweep_blocks.py``) bit for bit, and the refusals met on the way named.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from sweep_verdicts import BY_NAME  # noqa: E402
from sweep_verdicts import verdicts as _verdicts  # noqa: E402

from runtime.aten import sweep  # noqa: E402
from runtime.aten.sweep_blocks import BLOCKS  # noqa: E402


def test_session39_entries_are_listed_once():
    names = [c.name for c in sweep.CASES]
    assert len(names) == len(set(names))
    new = ["muse_spark_text", "qwen3_vl_text", "qwen2_5_vl_text", "siglip2_vision", "speecht5_hifigan",
           "ssd300_vgg16_head", "fasterrcnn_r50_head", "retinanet_v2_head"] + [n for n, _m, _i in BLOCKS]
    assert set(new) <= set(names)
    assert not any(BY_NAME[n].cuda_only for n in new)   # all run on a CPU


@pytest.mark.parametrize("name", ["nn_rnns", "nn_embedding_bag", "complex_views", "exotic_dtypes", "int8_bool_ops",
                                  "torch_fft"])
def test_block_bitwise_on_one_and_auto_streams(name):
    assert _verdicts(name) == {"s1": "bitwise", "auto": "bitwise"}


def test_mha_masks_bitwise_without_the_fast_path():
    """Eager's eval fast path of ``nn.MultiheadAttention`` rounds otherwise (the sweep reports it close); without
    it, the masks (bool causal, float, key padding, ``add_bias_kv``, ``add_zero_attn``) give eager's bits."""
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        assert _verdicts("nn_mha_masks") == {"s1": "bitwise", "auto": "bitwise"}
    finally:
        torch.backends.mha.set_fastpath_enabled(was)


def test_block_plans_verify_through_from_torch():
    import memplan

    case = BY_NAME["nn_pools_indices"]   # max-pool indices (side results), unpooling, 3-D pools
    model = case.make().eval()
    x = case.inputs(torch.Generator().manual_seed(1), torch.device("cpu"), torch.float32)
    graph = memplan.from_torch(torch.export.export(model, x, strict=False))
    for streams in (None, "auto"):
        planned = memplan.plan_graph(graph, streams=streams)
        memplan.verify(planned.graph, planned.plan)


def test_sparse_and_data_dependent_ops_refused_naming_the_node():
    from memplan.errors import GraphError
    from runtime.aten import compile

    class Sparse(torch.nn.Module):
        def forward(self, x):
            return torch.sparse.mm(x.relu().to_sparse(), x.t())

    class Unique(torch.nn.Module):
        def forward(self, i):
            return torch.unique(i, return_counts=True)

    with pytest.raises(GraphError, match=r"node 'to_sparse' \(aten.to_sparse.default\): a sparse_coo tensor"):
        compile(Sparse(), (torch.randn(3, 4),), streams=1)
    with pytest.raises(GraphError, match=r"node '_unique2' \(aten._unique2.default\): data-dependent size"):
        compile(Unique(), (torch.randint(0, 4, (8,)),), streams=1)
