"""Round 77 (models77): ``runtime.models.llama``'s helpers given a config, weights or graph of another shape.

A sweep of configurations nobody had run (GQA groups 1/3/7, 3 and 7 heads, head sizes 8-256, odd FFN and vocab sizes,
batch 1-70, ctx 0/1/16400, zero to two layers, f16 activations on and off, both fusion modes, serial, hand and
optimized multi-stream plans, split over 2-3 devices, on the emulator and the fake driver) found every result equal to
the reference forward; what it found wrong were the helpers around the step: the reference forward, the prefetch and
poison plans and ``rel_err`` took another config's arrays silently or failed with raw numpy errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from memplan.errors import ExecutorError, GraphError
from runtime.models import llama as L


def _tiny(**over):
    cfg = L.config("tiny", batch=2, **over)
    g = L.build_graph(cfg)
    return cfg, g, L.make_weights(g, cfg, seed=1), L.make_inputs(cfg, seed=2)


@pytest.mark.parametrize("case", ["longer ctx", "missing", "short", "float idx", "none"])
def test_the_reference_forward_refuses_another_configs_weights_naming_the_weight(case) -> None:
    """Before: a KeyError ('l0.wq'), numpy's "cannot reshape array of size 320 into shape (102,2,16)", an IndexError
    from fancy indexing, an AttributeError for None."""
    cfg, _g, w, inp = _tiny()
    said = {"longer ctx": r"weight 'l0\.k_cache' has shape \(10, 32\), config 'llama-tiny' needs \(at least 102, 32\)",
            "missing": r"weight 'l0\.wq' has shape None, config 'llama-tiny' needs \(64, 64\)",
            "short": r"weight 'l1\.w_down' has shape \(64, 3\), config 'llama-tiny' needs \(64, 128\)",
            "float idx": r"input 'kv_idx' is float64, expected integers",
            "none": "weights must be a mapping"}[case]
    if case == "longer ctx":
        cfg = L.config("tiny", batch=2, ctx=100)
        inp = L.make_inputs(cfg)
    elif case == "missing":
        del w["l0.wq"]
    elif case == "short":
        w["l1.w_down"] = w["l1.w_down"][:, :3]
    elif case == "float idx":
        inp["kv_idx"] = inp["kv_idx"].astype(np.float64)
    else:
        w = None
    with pytest.raises(ExecutorError, match=said):
        L.reference_forward(cfg, w, inp)


def test_the_reference_forward_still_takes_its_own_configs_weights() -> None:
    cfg, _g, w, inp = _tiny(layers=1, hidden=48, heads=3, kv_heads=1, ffn=7, vocab=5, ctx=0)
    logits, caches = L.reference_forward(cfg, w, inp)
    assert logits.shape == (2, 5) and np.isfinite(logits).all()


@pytest.mark.parametrize("over", [{"layers": 3}, {"ctx": 100}, {"hidden": 32}])
def test_kv_prefetch_plan_refuses_a_config_the_graph_does_not_hold(over) -> None:
    """Before: prefetches of 'l2.k_cache' (a graph of 2 layers), of 3200 bytes of a 640-byte cache, or of another
    head layout's rows."""
    _cfg, g, _w, _inp = _tiny()
    with pytest.raises(ExecutorError, match=r"kv_prefetch_plan: \d+ bytes of 'l\d\.k_cache' do not lie inside graph"):
        L.kv_prefetch_plan(g, L.config("tiny", batch=2, **over))
    assert len(L.kv_prefetch_plan(g, _cfg)) == 4


def test_kv_poison_ranges_refuses_a_config_of_other_heads() -> None:
    """Before: the ranges of a config of hidden 32 (cache rows of 32 bytes, not 64) lay inside the graph's caches and
    were returned: a jitter test then poisoned bytes the step does not write and passed without testing its reads."""
    _cfg, g, _w, _inp = _tiny()
    with pytest.raises(ExecutorError, match=r"poison range .* does not lie inside tensor 'l0\.k_cache'"):
        L.kv_poison_ranges(g, L.config("tiny", batch=2, hidden=32))
    assert len(L.kv_poison_ranges(g, _cfg)) == 4


def test_rel_err_refuses_arrays_of_other_sizes_instead_of_broadcasting() -> None:
    """Before: one token's logits against a batch's broadcast and gave a number (row 0 equal to row 1 passed)."""
    ref = np.arange(12.0).reshape(2, 6) + 1
    with pytest.raises(ExecutorError, match=r"rel_err: result of shape \(6,\) and reference of shape \(2, 6\)"):
        L.rel_err(ref[0], ref)
    assert L.rel_err(ref.reshape(-1), ref) == 0.0


@pytest.mark.parametrize("fn", ["stream_assignment", "multi_stream_schedule", "weight_bytes"])
def test_the_graph_helpers_refuse_what_is_no_graph(fn) -> None:
    """Before: "'str' object has no attribute 'nodes'" (or 'tensors')."""
    with pytest.raises(GraphError, match=f"{fn} needs a memplan Graph"):
        getattr(L, fn)("llama-tiny")


@pytest.mark.parametrize("opt", ["qkv", "gate_up"])
def test_stream_assignment_refuses_a_flag_that_is_no_bool(opt) -> None:
    """Before: ``qkv="no"`` was truthy and put K's and V's branches on streams 1 and 2 all the same."""
    _cfg, g, _w, _inp = _tiny()
    with pytest.raises(ExecutorError, match=f"stream_assignment: {opt}='no', expected True or False"):
        L.stream_assignment(g, **{opt: "no"})
    assert set(L.stream_assignment(g, **{opt: False}).values()) <= {0, 1, 2}
