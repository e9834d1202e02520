"""Review of round 76's merged changes (review76): each defect found in them, fixed, with the input that showed it.

Round 76 made a CONT of a tensor that is not whole 32-bit words a byte copy and refused one whose output overlaps its
input, its own output at its input's address included; but memplan plans an in-place CONT (``inplace {y: x}``) with
``y`` exactly at ``x``'s first byte, so such a plan of a valid graph was refused by the runtime where an f16 ``[1, 4]``
ran in place.
"""

from __future__ import annotations

import numpy as np
import pytest

import memplan


def _inplace_odd_cont_graph() -> memplan.Graph:
    """An f16 ``[1, 3]`` (6 bytes) copied by a CONT, then copied again in place by a second CONT."""
    b = memplan.GraphBuilder("odd-cont-inplace", alignment=256)
    b.input("h", 6, shape=[1, 3], dtype="f16")
    b.node("c", "CONT", ["h"], b.intermediate("h2", 6, shape=[1, 3], dtype="f16"))
    b.node("c2", "CONT", ["h2"], b.output("h3", 6, shape=[1, 3], dtype="f16"), inplace={"h3": "h2"})
    return b.build()


def test_an_inplace_cont_of_an_odd_number_of_f16_elements_runs_in_place(monkeypatch):
    """memplan plans the in-place CONT's output on its input; the runtime refused that plan ("CONT of 6 bytes, not
    whole words, with its output over its input") in the emulator and the executor alike. Its bytes are there
    already: no launch, as for a view op; an output overlapping its input at another address is still refused."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.kernels.ops import KernelError, node_launches

    g = _inplace_odd_cont_graph()
    plan = memplan.plan(g)
    at = {t: off for t, off, _ in plan.tensors}
    assert at["h3"] == at["h2"], plan.tensors   # (the plan this is about: the output on its input)
    h = np.array([[1.5, -0.25, 3.0]], np.float16)
    out = emulate(g, plan, {}, {"h": h})[0]
    assert np.array_equal(out["h3"], h.astype(np.float32))
    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    ex = Executor(g, plan, inputs={"h": h})
    ex.run()
    assert np.array_equal(ex.read("h3"), h)
    ex.free()
    assert node_launches(g, {"h2": 4096, "h3": 4096}.get, g.node_index["c2"], 132) == []
    with pytest.raises(KernelError, match=r"node 'c2': CONT of 6 bytes, not whole words, with its output over"):
        node_launches(g, {"h2": 4096, "h3": 4098}.get, g.node_index["c2"], 132)
