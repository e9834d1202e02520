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


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("affine", [True, False])
def test_a_public_native_batch_norm_of_mixed_types_whose_statistics_nobody_reads_runs_as_eager(dtype, affine):
    """``torch.native_batch_norm(x, w, b, rm, rv, False, ...)[0]`` of an f16/bf16 ``x`` with f32 statistics: eager's
    CPU kernel runs it (its statistics in f32), the export's fake kernel says the input's dtype, and the statistics are
    planned though nothing reads them; round 76 cast them for the private batch-norm ops alone, so every call failed
    ("expected scalar type Float but found Half"). Unread, they are cast too, and the call is eager's bit for bit;
    returned, they are not (they would come back in the export's dtype): refused as before, never silently other."""
    torch = pytest.importorskip("torch")
    from aten_changes import compile_cpu
    from torch import nn

    from runtime.aten.errors import AtenExecutorError

    class BN(nn.Module):
        def __init__(self, all_results: bool):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.all = all_results
            self.register_buffer("rm", torch.randn(3, generator=g))
            self.register_buffer("rv", torch.rand(3, generator=g) + 0.5)
            self.w = nn.Parameter(torch.randn(3, generator=g), requires_grad=False) if affine else None
            self.b = nn.Parameter(torch.randn(3, generator=g), requires_grad=False) if affine else None

        def forward(self, x):
            r = torch.native_batch_norm(x, self.w, self.b, self.rm, self.rv, False, 0.1, 1e-5)
            return r if self.all else r[0]

    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1)).to(getattr(torch, dtype))
    m = BN(False)
    got, want = compile_cpu(m, x)(x), m(x)
    assert got.dtype == want.dtype and torch.equal(got, want)
    m = BN(True)
    try:
        got = compile_cpu(m, x)(x)
    except AtenExecutorError:
        return
    want = m(x)
    assert [t.dtype for t in got] == [t.dtype for t in want] and torch.equal(got[0], want[0])
