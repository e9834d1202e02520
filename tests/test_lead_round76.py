"""Round 76, lead: fixes made while reviewing the round's areas."""

import numpy as np
import pytest

import memplan
from runtime.emulate import emulate
from runtime.models import llama as L


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
def test_out_of_range_kv_index_writes_nothing_in_reference_and_emulator(fuse):
    """A padded batch row's -1 (vLLM's padding slot) and an index past the cache: the kernels and the emulator skip
    the write; ``reference_forward`` wrapped the -1 onto the cache's last row and raised IndexError past the end, so
    the reference a GPU test compares with disagreed with the kernels it checks."""
    cfg = L.config("tiny", batch=3)
    g = L.build_graph(cfg, fuse)
    w, inp = L.make_weights(g, cfg, seed=0), L.make_inputs(cfg, seed=1)
    rows = len(w["l0.k_cache"])
    inp["kv_idx"] = np.array([inp["kv_idx"][0], -1, rows], dtype=inp["kv_idx"].dtype)
    ref, ref_caches = L.reference_forward(cfg, w, inp)
    for tid in (t for t in ref_caches if t.endswith("_cache")):
        before, after = np.asarray(w[tid], dtype=np.float16), ref_caches[tid]
        changed = np.flatnonzero((before != after).any(axis=1))
        assert changed.tolist() == [int(inp["kv_idx"][0])], tid   # only the in-range row, never the last one
    out, _, _ = emulate(g, memplan.plan(g), w, inp)
    assert L.rel_err(out["logits"], ref) < 5e-3
