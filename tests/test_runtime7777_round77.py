"""The pycuda runtime's host side at its edges, round 77 (CPU only: the emulator and the fake driver). Each case was
a silently wrong result or a raw error for a graph or plan that is valid per the contract; each now runs as the
serial reference computes it, or is refused naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import memplan


def _silu(u):
    return u / (1 + np.exp(-u))


def _rms(x):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + np.float32(1e-5))


def _swiglu_with_its_silu_an_output(B: int, H: int):
    """gate/up products, SILU (in place over the gate product) and MUL in one fusion group; the SILU's output is
    also a graph output."""
    f = dict(shape=[B, H], dtype="f32")
    b = memplan.GraphBuilder("swiglu-silu-out")
    b.input("x", 4 * B * H, **f)
    b.weight("wg", 2 * H * H, shape=[H, H], dtype="f16")
    b.weight("wu", 2 * H * H, shape=[H, H], dtype="f16")
    b.node("mg", "MUL_MAT", ["wg", "x"], b.intermediate("g", 4 * B * H, **f), group="ffn")
    b.node("mu", "MUL_MAT", ["wu", "x"], b.intermediate("u", 4 * B * H, **f), group="ffn")
    b.node("si", "SILU", ["g"], b.output("s", 4 * B * H, **f), group="ffn", inplace={"s": "g"})
    b.node("gl", "MUL", ["s", "u"], b.output("y", 4 * B * H, **f), group="ffn")
    rng = np.random.default_rng(B)
    x = rng.standard_normal((B, H)).astype(np.float32)
    w = {k: (rng.standard_normal((H, H)) / 4).astype(np.float16) for k in ("wg", "wu")}
    s = _silu(x @ w["wg"].astype(np.float32).T)
    return b.build(), w, {"x": x}, {"s": s, "y": s * (x @ w["wu"].astype(np.float32).T)}


def _add_norm_with_its_norm_an_output(B: int, H: int):
    """ADD, RMS_NORM (in place over the ADD's h) and MUL in one fusion group; the norm's output is also a graph
    output."""
    f = dict(shape=[B, H], dtype="f32")
    b = memplan.GraphBuilder("addnorm-norm-out")
    b.input("x", 4 * B * H, **f)
    b.input("r", 4 * B * H, **f)
    b.weight("w", 4 * H, shape=[H], dtype="f32")
    b.node("add", "ADD", ["x", "r"], b.intermediate("h", 4 * B * H, **f), group="an")
    b.node("nrm", "RMS_NORM", ["h"], b.output("a", 4 * B * H, **f), group="an", inplace={"a": "h"})
    b.node("mul", "MUL", ["a", "w"], b.output("y", 4 * B * H, **f), group="an")
    rng = np.random.default_rng(B + 10)
    x, r = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal(H).astype(np.float32)
    a = _rms(x + r)
    return b.build(), {"w": w}, {"x": x, "r": r}, {"a": a, "y": a * w}


@pytest.mark.parametrize("make", [_swiglu_with_its_silu_an_output, _add_norm_with_its_norm_an_output])
@pytest.mark.parametrize("B", [1, 4])
def test_a_fused_groups_unstored_output_read_outside_it_runs_node_by_node(monkeypatch, make, B):
    """A fused group stores only some of its members' outputs; one that the graph outputs (or a node outside the
    group reads) makes the group run node by node. The check went by address: a SILU's (a norm's) output planned in
    place over the gate product (the ADD's h), which the fused launches do store, passed as stored, so the group
    fused and the output held the gate product (h) instead of its SiLU (norm), in the emulator and on the GPU alike,
    with a verified plan. Now such a group runs node by node and every output is the reference's."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    g, weights, inputs, want = make(B, 16)
    plan = memplan.plan(g)
    offsets = plan.offsets()
    assert offsets["a" if "a" in want else "s"] == offsets["h" if "a" in want else "g"]   # the in-place pair
    outs = emulate(g, plan, weights, inputs, check=True)[0]
    for t, v in want.items():
        np.testing.assert_allclose(outs[t], v, rtol=1e-3, atol=1e-3, err_msg=t)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, weights=weights, inputs=inputs)
    ex.run()
    for t, v in want.items():
        np.testing.assert_allclose(ex.read(t), v, rtol=1e-3, atol=1e-3, err_msg=t)
    assert ex.program.fused_groups == 0
    ex.free()
