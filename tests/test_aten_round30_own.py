"""Host work on a module's plain CPU tensor attribute inside a program that runs on another device.

torchvision's SSD anchors (``DefaultBoxGenerator``) clamp and repeat a plain tensor attribute (no buffer, so
``module.cuda()`` leaves it on the CPU) and move the result over with ``.to(device)``. Eager runs that host
work on the CPU; the executor's results of those ops live in the device arena, and on the H200 every call
failed at ``clamp`` ("Expected all tensors to be on the same device"). Any op, not only a copy, now reads
such a constant moved to its results' device once (its own dtype). The decision is tested on the CPU (a
``meta`` result stands for the device), the run on the GPU (marker ``gpu``).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.lower import Target, _constants_moved_for, fixed_constants  # noqa: E402


class HostAnchors(nn.Module):
    """SSD's pattern: clamp a CPU attribute, repeat it, concatenate, then ``.to(x.device)`` and use it."""

    def __init__(self):
        super().__init__()
        self.pairs = torch.tensor([[0.2, 1.3], [-0.1, 0.5], [0.7, 0.9]])

    def forward(self, x):
        wh = self.pairs.clamp(min=0, max=1).repeat(2, 1)
        boxes = torch.cat((wh, wh * 0.5), dim=1)
        return x + boxes.to(x.device).sum()


def _node_reading(program, name_prefix):
    return next(n for n in program.exported.graph.nodes
                if n.op == "call_function" and n.name.startswith(name_prefix))


def test_a_constant_read_by_a_non_copy_op_is_moved_to_the_results_device():
    m = HostAnchors().eval()
    x = torch.randn(3, 4)
    c = compile(m, (x,), streams=1, poison=True)
    prog = c.program
    assert fixed_constants(torch, prog)
    n = _node_reading(prog, "clamp")
    gn = prog.graph.node(n.name)
    env = prog.env[n.name]
    views = dict(c.executor.layout.views)
    (src,) = [t for t in env.values() if isinstance(t, str)]
    # the result on another device ("meta" stands for CUDA): the constant is read from a copy there
    for out in gn.outputs:
        views[out] = torch.empty(tuple(views[out].shape), dtype=views[out].dtype, device="meta")
    ctx = Target("cpu", frozenset())
    for _ in range(2):   # the second lowering takes the first one's copy
        read = _constants_moved_for(torch, prog, env, gn, views, ctx)
        assert read[src].device.type == "meta" and read[src].dtype == views[src].dtype
        assert views[src].device.type == "cpu"   # the caller's views are left as they were
    assert len(ctx.moved) == 1
    # results and constant on one device: nothing moves
    same = _constants_moved_for(torch, prog, env, gn, dict(c.executor.layout.views), Target("cpu", frozenset()))
    assert same[src] is c.executor.layout.views[src]
    for _ in range(2):
        assert torch.equal(c(x), m(x))


def test_an_intermediate_or_input_on_another_device_is_not_moved():
    """Only fixed constants move: an op reading an intermediate keeps reading it where it is."""
    m = HostAnchors().eval()
    c = compile(m, (torch.randn(3, 4),), streams=1)
    prog = c.program
    n = _node_reading(prog, "cat")
    gn = prog.graph.node(n.name)
    env = prog.env[n.name]
    views = dict(c.executor.layout.views)
    for out in gn.outputs:
        views[out] = torch.empty(tuple(views[out].shape), dtype=views[out].dtype, device="meta")
    read = _constants_moved_for(torch, prog, env, gn, views, Target("cpu", frozenset()))
    assert all(read[t] is views[t] for t in env.values() if isinstance(t, str))


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", [1, 3])
def test_host_work_on_a_cpu_attribute_runs_on_cuda_and_equals_eager(streams):
    m = HostAnchors().eval().cuda()
    assert m.pairs.device.type == "cpu"
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(3, 4, device="cuda", generator=g)
    c = compile(m, (x,), streams=streams, cuda_graph=True, poison=True)
    for _ in range(2):
        x = torch.randn(3, 4, device="cuda", generator=g)
        with torch.no_grad():
            want = m(x)
        got = c(x)
        torch.cuda.synchronize()
        assert torch.equal(got, want)
    m.pairs.mul_(0.5)   # changed in place on the host: eager sees it, and so does the next call
    with torch.no_grad():
        want = m(x)
    got = c(x)
    torch.cuda.synchronize()
    assert torch.equal(got, want)
