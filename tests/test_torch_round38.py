"""torch importer, round 38: ``.pt2`` dimension names, ``_lazy_clone``, and what the op database's samples showed.

- ``memplan import x.pt2 --dim`` took torch's symbols alone (``s77``), numbered by a hash and learned only from an
  error; a dimension is now also named by its input (``x.1``) and, for a program still in memory, by its
  ``torch.export.Dim`` name (torch's ``export.save`` keeps none).
- ``torch._lazy_clone`` (a clone whose copy torch defers, copy-on-write) imported, but the ATen executor ran it
  as it is on an arena view, which turned the arena's own storage copy-on-write: the next write moved it and
  every call was refused ("the arena's storage moved"). It runs as the copy it is."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import sized_inputs  # noqa: E402
from runtime.aten import compile  # noqa: E402


class LazyClone(nn.Module):
    """A lazy clone written in place, and its source read after (the write must not reach it)."""

    def forward(self, x):
        y = torch._lazy_clone(x * 1)
        y.add_(1)
        z = torch._lazy_clone(x.t())
        return y * 2, x + 0, z.sin()


@pytest.mark.parametrize("streams", [1, 3])
def test_a_lazy_clone_runs_as_a_copy(streams):
    m = LazyClone()
    x = torch.randn(4, 4)
    c = compile(m, (x,), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(4, 4)
        keep = x.clone()
        for o, r in zip(c(x), m(x)):
            assert torch.equal(o, r)
        assert torch.equal(x, keep)


def test_a_loaded_lazy_clone_is_a_new_tensor():
    ep = torch.export.export(LazyClone(), (torch.randn(4, 4),))
    for g in (memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))):
        clones = [n for n in g.nodes if n.op == "_lazy_clone"]
        assert len(clones) == 2
        for n in clones:
            (out,) = n.outputs
            assert g.tensor(out).view_of is None and g.tensor(out).size == 64


class TwoDims(nn.Module):
    def forward(self, x, y):
        return x @ y


def _dynamic():
    b, k = torch.export.Dim("batch", max=64), torch.export.Dim("k", max=64)
    return torch.export.export(TwoDims(), (torch.randn(4, 8), torch.randn(8, 3)),
                               dynamic_shapes={"x": {0: b, 1: k}, "y": {0: k}})


def _shapes(args):
    return [tuple(a.shape) for a in args]


def test_dims_are_named_by_their_input_and_by_their_dim_name():
    ep = _dynamic()
    args, _ = sized_inputs(ep, None, {"batch": 5, "k": 6})   # in memory: the Dim names
    assert _shapes(args) == [(5, 6), (6, 3)]
    loaded = _saved_and_loaded(ep)
    args, _ = sized_inputs(loaded, None, {"x.0": 5, "y.0": 6})   # loaded: by input dimension
    assert _shapes(args) == [(5, 6), (6, 3)]
    sym = {n.name: [str(d) for d in n.meta["val"].shape] for n in loaded.graph.nodes if n.op == "placeholder"}
    args, _ = sized_inputs(loaded, None, {sym["x"][0]: 2, sym["x"][1]: 7})   # torch's symbols still
    assert _shapes(args) == [(2, 7), (7, 3)]
    with pytest.raises(GraphError, match=r"--dim x\.1=5 and --dim y\.0=6 disagree: both name the symbolic "):
        sized_inputs(loaded, None, {"x.0": 2, "x.1": 5, "y.0": 6})
    with pytest.raises(GraphError, match=r"--dim batch: .*keeps no torch\.export\.Dim names.*INPUT\.K"):
        sized_inputs(loaded, None, {"batch": 5})
    with pytest.raises(GraphError, match=rf"--batch 3 and --dim x\.0=4 disagree: {sym['x'][0]} is input 'x'"):
        sized_inputs(loaded, 3, {"x.0": 4, "x.1": 2})
    with pytest.raises(GraphError, match=rf"symbolic size {sym['x'][1]} \(fix it with --dim {sym['x'][1]}=N or "
                                         r"--dim x\.1=N"):
        sized_inputs(loaded, None, {"x.0": 3})


def test_cli_takes_input_dimension_names(tmp_path):
    from memplan.cli import main

    path, out = tmp_path / "dyn.pt2", tmp_path / "g.json"
    torch.export.save(_dynamic(), str(path))
    assert main(["import", str(path), "-o", str(out), "-q", "--dim", "x.0=4", "--dim", "y.0=7"]) == 0
    fixed = memplan.from_torch(TwoDims(), (torch.randn(4, 7), torch.randn(7, 3)))
    got = memplan.load_graph(str(out))
    assert [(t.id, t.size, t.kind) for t in got.tensors] == [(t.id, t.size, t.kind) for t in fixed.tensors]


class WritesASliceOfItsInput(nn.Module):
    """Reads and writes its input through views (offsets in it), and a 0-dim input."""

    def forward(self, x, s):
        x[1:].add_(s)
        v = x.view(-1)[2:6]
        v.mul_(2)
        return x * 1, v + s, x.t().contiguous()


def _eager_scalar():
    """A 0-dim result of eager's CPU ``mse_loss`` (mean): its kernel leaves it in a storage of the input's size."""
    s = torch.nn.functional.mse_loss(torch.randn(5), torch.randn(5))
    assert s.dim() == 0 and s.untyped_storage().nbytes() == 20
    return s


def test_an_input_is_planned_at_its_own_bytes_not_its_examples_storage():
    """An example input that is a slice of a larger tensor was planned at that tensor's whole storage (1600 bytes
    for 48), its views at offsets in it; an eager loss given as a 0-dim input at its 20-byte storage."""
    big = torch.randn(100, 4)
    g = memplan.from_torch(WritesASliceOfItsInput(), (big[10:13], _eager_scalar()))
    assert g.tensor("x").size == 48 and g.tensor("s").size == 4
    assert (g.tensor("slice_1").view_of, g.tensor("slice_1").view_offset) == ("x", 16)
    assert (g.tensor("view").view_of, g.tensor("view").view_offset) == ("x", 0)
    assert (g.tensor("slice_2").view_of, g.tensor("slice_2").view_offset) == ("view", 8)


@pytest.mark.parametrize("streams", [1, 3])
def test_an_input_relaid_runs_as_eager(streams):
    m = WritesASliceOfItsInput()
    c = compile(m, (torch.randn(100, 4)[10:13], _eager_scalar()), poison=True, streams=streams)
    for start in (20, 0, 10):
        b1 = torch.randn(100, 4)
        b2 = b1.clone()
        s = torch.tensor(0.5)
        for o, r in zip(c(b1[start:start + 3], s), m(b2[start:start + 3], s)):
            assert torch.equal(o, r)
        assert torch.equal(b1, b2)


class SharedBuffers(nn.Module):
    """A buffer that is a view of another: a write to the one is a write to the other."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("a", torch.zeros(4, 3))
        self.register_buffer("b", self.a[1])

    def forward(self, x):
        self.a.add_(x)
        return self.b * 2


def test_a_buffer_viewing_another_is_ordered_after_its_writes():
    g = memplan.from_torch(SharedBuffers(), (torch.ones(4, 3),))
    assert (g.tensor("b_b").view_of, g.tensor("b_b").view_offset, g.tensor("b_b").size) == ("b_a", 12, 12)
    mul = g.node("mul")
    assert "add_" in mul.inputs   # read after the write, which is its memory
    for streams in (1, 3):
        m, ref = SharedBuffers(), SharedBuffers()
        c = compile(m, (torch.ones(4, 3),), streams=streams)
        for _ in range(2):
            x = torch.randn(4, 3)
            assert torch.equal(c(x), ref(x))
        assert torch.equal(m.a, ref.a) and torch.equal(m.b, ref.b)


class SetsToAnother(nn.Module):
    """``y.set_(w)``: from then on ``y`` is ``w``'s memory, and a write through ``y`` is one to ``w``."""

    def forward(self, x, v):
        y = x * 1
        w = v * 1
        y.set_(w)
        y.add_(1)
        return w * 1, y * 1


def _structure(g):
    return ([(t.id, t.size, t.view_of, t.view_offset) for t in g.tensors],
            [(n.id, n.inputs, n.outputs, n.inplace) for n in g.nodes])


def test_a_loaded_set_aliases_its_source():
    """Loaded from ``.pt2``, ``set_`` was taken at its schema's word (``Tensor(a!) self``): an in-place result in
    ``y``'s slot, so ``w * 1`` was not ordered after ``y.add_(1)``, and the executor refused the call (torch's
    result at another address than the plan's)."""
    x, v = torch.randn(4, 6), torch.randn(4, 6)
    ep = torch.export.export(SetsToAnother(), (x, v))
    loaded = _saved_and_loaded(ep)
    g = memplan.from_torch(loaded)
    assert _structure(g) == _structure(memplan.from_torch(ep))
    assert g.tensor("set_").view_of == "mul_1" and "add_" in g.node("mul_2").inputs
    for streams in (1, 3):
        c = compile(loaded, (x, v), streams=streams, poison=True)
        for o, r in zip(c(x, v), SetsToAnother()(x, v)):
            assert torch.equal(o, r)
