"""Review of session 30's host folds (``runtime.aten.hostfold``) and constants moved to the device.

A fold computes a node once on the host and copies the value into its planned bytes every call. A result
that a later node writes in place (``a.add_(10)``) is no fixed value: folded, its host copy kept the value
from before the write, and a fold reading it through a view taken before the write (``v = a[1:3]``, then
``v * 3``) computed from that stale copy (12, 18 where eager gives 42, 48). The lowering decisions are
tested on the CPU with ``meta`` results standing for the device, as tests/test_aten_round30_own.py does.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_aten_round30_own import fold_for_cuda, reads  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.lower import Target  # noqa: E402


class WrittenHostValue(nn.Module):
    """Host work on a CPU attribute whose result is then changed in place, read through an earlier view."""

    def __init__(self):
        super().__init__()
        self.c = torch.tensor([1.0, 2.0, 3.0, 4.0])
        self.d = torch.tensor([5.0, 6.0])

    def forward(self, x):
        a = self.c * 2
        v = a[1:3]
        a.add_(10)
        w = v * 3          # eager: (c * 2 + 10)[1:3] * 3
        k = self.d + 1     # untouched host work: still folded
        return x + (w + k).to(x.device)


def test_a_result_written_in_place_later_is_not_folded_nor_read_stale():
    m = WrittenHostValue().eval()
    x = torch.randn(2)
    c = compile(m, (x,), streams=1)
    prog = c.program
    ctx, _launches = fold_for_cuda(prog, c.executor.layout.views)
    written = next(n for n in prog.exported.graph.nodes if n.op == "call_function" and n.name.startswith("add_"))
    (a,) = reads(prog, written.name)
    folded = {f.tid: f for f in ctx.folds}
    assert a not in folded   # the value add_ writes: no fixed host value
    # every fold's host value is eager's (a stale ``v * 3`` was 12, 18 against eager's 42, 48)
    with torch.no_grad():
        want_w = (m.c * 2 + 10)[1:3] * 3
        want_k = m.d + 1
    for f in ctx.folds:
        value = ctx.host[f.tid]
        if value.shape == want_w.shape and value.dtype == want_w.dtype and f.node.startswith("mul"):
            assert torch.equal(value, want_w), (f.node, value, want_w)
    assert any(torch.equal(ctx.host[f.tid], want_k) for f in ctx.folds)   # the untouched host work folds
    with torch.no_grad():
        assert torch.equal(c(x), m(x))


class HostScalar(nn.Module):
    """``x / self.s``, ``self.s`` a 0-dim plain attribute: on CUDA eager reads it as a host scalar."""

    def __init__(self):
        super().__init__()
        self.s = torch.tensor(19.0)
        self.t = torch.tensor([3.0, 7.0, 19.0, 1.5])

    def forward(self, x):
        return x / self.s * self.t


def test_a_0_dim_constant_of_an_op_eager_ran_on_the_device_stays_a_host_scalar():
    """CUDA divides by a CPU scalar through its reciprocal (``div_true_kernel_cuda``: ``is_cpu_scalar``);
    a 0-dim constant moved to the device made the division exact, an ulp from eager. Kept on the CPU where
    eager ran the op on the device (its exported result there; ``meta`` stands for CUDA); moved where eager
    ran it on the host (then both operands are host tensors there, as the fold's pattern has them), and a
    constant of more than 0 dims is moved as before."""
    from types import SimpleNamespace

    from runtime.aten.lower import _constants_moved_for

    m = HostScalar().eval()
    x = torch.randn(4)
    c = compile(m, (x,), streams=1)
    prog = c.program
    for prefix, moves_when_on_device in (("div", False), ("mul", True)):
        n = next(k for k in prog.exported.graph.nodes if k.op == "call_function" and k.name.startswith(prefix))
        gn = prog.graph.node(n.name)
        env = prog.env[n.name]
        views = dict(c.executor.layout.views)
        const = [t for t in reads(prog, n.name) if views[t].device.type == "cpu" and t not in gn.outputs
                 and t not in {tid for _p, tid in prog.user_inputs} and not t.startswith("div")]
        assert len(const) == 1
        for t in list(gn.outputs) + [t for t in reads(prog, n.name) if t not in const]:
            views[t] = torch.empty(tuple(views[t].shape), dtype=views[t].dtype, device="meta")
        on_device = SimpleNamespace(meta={"val": torch.empty(tuple(n.meta["val"].shape), device="meta")})
        read = _constants_moved_for(torch, prog, env, gn, views, Target("cuda", frozenset()), on_device)
        assert (read[const[0]].device.type == "meta") == moves_when_on_device, prefix
        read = _constants_moved_for(torch, prog, env, gn, views, Target("cuda", frozenset()), n)   # eager: host
        assert read[const[0]].device.type == "meta", prefix


class HostScalarBuffer(HostScalar):
    """HostScalar with ``t`` a buffer: ``.cuda()`` moves it, and leaves the 0-dim ``s`` on the host (a plain
    attribute), so eager on CUDA runs (``HostScalar`` itself fails there: ``* self.t`` mixes devices)."""

    def __init__(self):
        super().__init__()
        t = self.t
        del self.t
        self.register_buffer("t", t)


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("module,shape", [(WrittenHostValue, (2,)), (HostScalarBuffer, (4096, 4))])
def test_on_cuda_the_program_equals_eager_bitwise(module, shape):
    """Both cases run: the written host value (not folded) and the 0-dim host scalar (not moved)."""
    m = module().eval().cuda()
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(*shape, device="cuda", generator=g)
    c = compile(m, (x,), streams=1, poison=True)
    with torch.no_grad():
        want = m(x)
    got = c(x)
    torch.cuda.synchronize()
    assert torch.equal(got, want)
