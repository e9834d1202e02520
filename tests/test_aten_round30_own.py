"""Host work on a module's plain CPU tensor attribute inside a program that runs on another device.

Folded (``runtime.aten.hostfold``): host work on fixed constants only (SSD's anchors) is computed once on
the host, as eager computes it (bit for bit: CUDA divides by a host scalar through its reciprocal, and the
anchors moved by an ulp when the device computed them), and copied into its planned bytes every call (a
device copy a CUDA graph captures: ``arange`` on the host refused the capture). A constant changed in place
after ``compile`` makes the executor compute the folds again.


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

from runtime.aten import compile, hostfold  # noqa: E402
from runtime.aten.lower import Target, _constants_moved_for, _lower_folded, fixed_constants  # noqa: E402


class HostAnchors(nn.Module):
    """SSD's pattern: clamp a CPU attribute, repeat it, concatenate, then ``.to(x.device)`` and use it."""

    def __init__(self):
        super().__init__()
        self.pairs = torch.tensor([[0.2, 1.3], [-0.1, 0.5], [0.7, 0.9]])

    def forward(self, x):
        wh = self.pairs.clamp(min=0, max=1).repeat(2, 1)
        shifts = ((torch.arange(0, 6) + 0.5) / 19.0).to(torch.float32).reshape(6, 1)
        boxes = torch.cat((wh, wh * 0.5, shifts), dim=1)
        return x + boxes.to(x.device).sum(), boxes.to(x.device)


def reads(prog, name):
    """The graph tensors FX node ``name`` reads or writes (its argument names' tensor ids)."""
    from runtime.aten.lower import _tids
    return set(_tids(prog.env.get(name, {})))


def fold_for_cuda(prog, views):
    """Lower every node as for CUDA, planned non-view results on ``meta`` standing for the device: the Target
    holding the folds made, and each node's folded launch (None: lowered as any other)."""
    views = dict(views)
    nodes = [n for n in prog.exported.graph.nodes if n.op == "call_function" and n.name in prog.graph.node_index]
    for n in nodes:
        for out in prog.graph.node(n.name).outputs:
            v = views[out]
            if prog.graph.tensor(out).view_of is None:
                views[out] = torch.empty(tuple(v.shape), dtype=v.dtype, device="meta")
    ctx = Target("cuda", frozenset())
    launches = {n.name: _lower_folded(torch, prog, n, views, ctx) for n in nodes}
    return ctx, launches


def _node_reading(program, name_prefix):
    return next(n for n in program.exported.graph.nodes
                if n.op == "call_function" and n.name.startswith(name_prefix))


def test_a_constant_read_by_a_non_copy_op_is_moved_to_the_results_device():
    m = HostAnchors().eval()
    x = torch.randn(6, 5)
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
        assert all(torch.equal(a, b) for a, b in zip(c(x), m(x)))


def test_an_intermediate_or_input_on_another_device_is_not_moved():
    """Only fixed constants move: an op reading an intermediate keeps reading it where it is."""
    m = HostAnchors().eval()
    c = compile(m, (torch.randn(6, 5),), streams=1)
    prog = c.program
    n = _node_reading(prog, "cat")
    gn = prog.graph.node(n.name)
    env = prog.env[n.name]
    views = dict(c.executor.layout.views)
    for out in gn.outputs:
        views[out] = torch.empty(tuple(views[out].shape), dtype=views[out].dtype, device="meta")
    read = _constants_moved_for(torch, prog, env, gn, views, Target("cpu", frozenset()))
    assert all(read[t] is views[t] for t in env.values() if isinstance(t, str))


def test_host_work_on_constants_is_folded_once_as_eager_computes_it():
    """Lowered for CUDA (results on "meta" standing for the device), every host node of the anchors folds:
    clamp, repeat, arange, add, div, cat (and the reshape view); the folded ``cat`` is eager's host value
    bit for bit, and its launch is one copy; a node reading the user input is not folded."""
    m = HostAnchors().eval()
    c = compile(m, (torch.randn(6, 5),), streams=1)
    prog = c.program
    ctx, launches = fold_for_cuda(prog, c.executor.layout.views)
    folded = {f.node for f in ctx.folds}
    assert any(k.startswith("clamp") for k in folded) and any(k.startswith("arange") for k in folded)
    assert any(k.startswith("cat") for k in folded) and any(k.startswith("div") for k in folded)
    user = {tid for _pos, tid in prog.user_inputs}
    readers = [k for k in launches if user & reads(prog, k)]
    assert readers and not folded & set(readers)   # the user input is no constant: never folded
    assert all(launches[k] is None for k in launches if k not in folded)   # the rest lowers as before
    cat = next(f for f in ctx.folds if f.node.startswith("cat"))
    with torch.no_grad():
        wh = m.pairs.clamp(min=0, max=1).repeat(2, 1)
        want = torch.cat((wh, wh * 0.5, ((torch.arange(0, 6) + 0.5) / 19.0).reshape(6, 1)), dim=1)
    assert torch.equal(ctx.host[cat.tid], want)
    assert launches[cat.node].kind == "copy" and cat.device.device.type == "meta"


def test_refresh_computes_the_folds_again_after_an_in_place_change():
    """``hostfold.refresh``: unchanged versions do nothing; a source bumped in place recomputes every fold
    in order (the second reads the first's new value) and copies each into its device tensor."""
    src = torch.arange(4.0)
    first = hostfold.HostFold("a", "ta", lambda host: src * 2, torch.zeros(4), (src,))
    second = hostfold.HostFold("b", "tb", lambda host: host["ta"] + 1, torch.zeros(4), ())
    folds = [first, second]
    versions = [[src._version], []]
    assert not hostfold.refresh(folds, versions, lambda t: t._version)
    assert torch.equal(second.device, torch.zeros(4))
    src.mul_(3)
    assert hostfold.refresh(folds, versions, lambda t: t._version)
    assert torch.equal(first.device, torch.arange(4.0) * 6) and torch.equal(second.device, torch.arange(4.0) * 6 + 1)
    assert versions == [[src._version], []]


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", [1, 3])
def test_host_work_on_a_cpu_attribute_runs_on_cuda_and_equals_eager(streams):
    m = HostAnchors().eval().cuda()
    assert m.pairs.device.type == "cpu"
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(6, 5, device="cuda", generator=g)
    c = compile(m, (x,), streams=streams, cuda_graph=True, poison=True)
    assert c.executor.cuda_graph
    for _ in range(2):
        x = torch.randn(6, 5, device="cuda", generator=g)
        with torch.no_grad():
            want = m(x)
        got = c(x)
        torch.cuda.synchronize()
        assert all(torch.equal(a, b) for a, b in zip(got, want))   # bit for bit: the host's division
    assert c.executor._captured
    m.pairs.mul_(0.5)   # changed in place on the host: eager sees it, and so does the next call
    with torch.no_grad():
        want = m(x)
    got = c(x)
    torch.cuda.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(got, want))


class Keywords(nn.Module):
    def forward(self, x, d, *, y, z):
        return x + y * 2 - z * 3 + d["a"] * d["b"]


def test_keywords_and_dict_inputs_in_another_order_than_the_export_run():
    """``f(x, y=.., z=..)`` and ``f(x, z=.., y=..)`` are one call to Python and to eager; the executor compared
    pytree specs, which record the keys' order, and refused the second ("do not match the export's"). A call
    with other keywords is still refused."""
    import pytest as _pytest

    from runtime.aten.errors import AtenExecutorError

    m = Keywords()
    x, y, z, a, b = (torch.randn(3) for _ in range(5))
    c = compile(m, (x, {"a": a, "b": b}), kwargs={"y": y, "z": z}, streams=1)
    want = m(x, {"a": a, "b": b}, y=y, z=z)
    assert torch.equal(c(x, {"b": b, "a": a}, z=z, y=y), want)
    assert torch.equal(c(x, {"a": a, "b": b}, y=y, z=z), want)
    with _pytest.raises(AtenExecutorError, match="do not match the export"):
        c(x, {"a": a, "b": b}, y=y, w=z)
