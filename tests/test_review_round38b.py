"""Review of round 38's ATen executor, torch importer and pycuda runtime changes: adversarial cases their tests
left out.

- An input whose example is a slice of a larger tensor is now planned at its own bytes (``_own_layout``), in a
  fake storage of its own; a result that is the input itself through an op whose schema declares no alias (eval
  ``dropout``) was then found by storage no more: it was planned as a new 40-byte tensor, the input's in-place
  write (``x.add_(1)``) was no write to the input, and the compiled call left the caller's tensor unchanged
  where eager changed it.
- Weights sharing a storage (now views of the first) were found by a scan of every tensor per weight (quadratic),
  and a buffer that is another's bytes in another dtype, now a view, was refused by ``runtime.aten``'s layout.
- Any op writing any argument under a functional name (a training ``batch_norm``'s running statistics) was taken
  for an ``out=`` call into an input, which keeps the examples' layouts: such models kept the old sizes.
- The check of writes that bypass ``nn.Module.__setattr__`` refused a ``functools.cached_property``.
- ``_lazy_clone`` of an expand (strides kept, zeros too) ran as ``copy_`` into an overlapping destination."""

from __future__ import annotations

import functools

import pytest
from needs import need

torch = need("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402


class DropoutThenWrite(nn.Module):
    """An eval dropout (the input itself, no alias in its schema), then an in-place write to the input."""

    def forward(self, x):
        y = F.dropout(x, 0.5, training=False)
        x.add_(1)
        return y * 2


def _sliced(n: int = 4) -> torch.Tensor:
    return torch.arange(10.0)[2:2 + n]


def test_an_undeclared_alias_of_a_sliced_input_is_a_view_of_it():
    g = memplan.from_torch(DropoutThenWrite(), (_sliced(),))
    t = {x.id: x for x in g.tensors}
    assert t["x"].size == 16
    assert t["dropout"].view_of == "x" and t["dropout"].size == 16
    # the write is the input's bytes, ordered as every write to it (torch 2.11's export writes ``x`` itself: its
    # Python kernel for the dropout made a copy, and the program's ``add_`` reads ``x``; tests/test_torch_round68_t211)
    assert t["add_"].view_of in ("dropout", "x")


@pytest.mark.parametrize("streams", [1, "auto"])
def test_a_compiled_call_writes_a_sliced_input_as_eager(streams):
    m = DropoutThenWrite()
    c = compile(m, (_sliced(),), streams=streams, poison=True)
    for _ in range(3):
        a, b = _sliced(), _sliced()
        got, want = c(a), m(b)
        assert torch.equal(got, want)
        assert torch.equal(a, b)   # eager's ``x.add_(1)`` reached the caller's tensor


class ManyBuffers(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.n = n
        for i in range(n):
            self.register_buffer(f"b{i}", torch.full((2,), float(i)))

    def forward(self, x):
        for i in range(self.n):
            x = x + getattr(self, f"b{i}")
        return x


def test_weights_sharing_storage_are_found_without_a_scan_per_weight(monkeypatch):
    """``_shared_weight`` compared each weight's storage with every earlier tensor's: quadratic in the weights (an
    import of 4,000 buffers took 4.2 s, 1.0 s before). Pinned by counting storage comparisons, not by time."""
    from torch.multiprocessing.reductions import StorageWeakRef

    n = 100   # (a scan per weight compares n(n-1)/2 = 4,950 pairs, 5x the bound; 300 took 3x the export time)
    ep = torch.export.export(ManyBuffers(n), (torch.randn(2),))
    calls = [0]
    real = StorageWeakRef.__eq__

    def counted(self, other):
        calls[0] += 1
        return real(self, other)

    monkeypatch.setattr(StorageWeakRef, "__eq__", counted)
    g = memplan.from_torch(ep)
    assert sum(t.kind == "weight" for t in g.tensors) == n
    assert calls[0] < 10 * n, calls[0]   # a few per node (its arguments), not one per pair of weights


class ViewBuffers(nn.Module):
    """Buffers over one storage registered smallest first: the later, larger one is a view of the first."""

    def __init__(self):
        super().__init__()
        base = torch.arange(12.0)
        self.register_buffer("row", base.view(3, 4)[1])
        self.register_buffer("all", base)
        self.register_buffer("bits", base.view(torch.int32)[2:4])

    def forward(self, x):
        self.all.add_(x.sum())
        return self.row * 2, self.bits + 0


def test_buffers_of_one_storage_in_any_order_are_views_of_the_first():
    m = ViewBuffers()
    g = memplan.from_torch(m, (torch.ones(3),))
    t = {x.id: x for x in g.tensors}
    roots = [x.id for x in g.tensors if x.kind == "weight" and x.view_of is None]
    assert roots == ["b_row"] and t["b_row"].size == 48   # (a weight root is its whole storage)
    for tid, off, size in (("b_all", 0, 48), ("b_bits", 8, 8)):
        assert t[tid].view_of == "b_row" and g.offset_in_root(list(t).index(tid)) == off, tid
        assert t[tid].size == size, tid
    c = compile(ViewBuffers(), (torch.ones(3),), streams="auto", poison=True)
    e = ViewBuffers()
    for k in range(3):
        x = torch.full((3,), float(k))
        for got, want in zip(c(x), e(x)):
            assert torch.equal(got, want)


def test_a_training_batch_norm_leaves_a_sliced_input_at_its_own_bytes():
    """``_keeps_input_layouts`` took any op writing any argument (not an in-place one) for an ``out=`` call into an
    input: a training-mode ``batch_norm`` writes its running statistics, so every such model kept the example's
    whole storage for a sliced input (1536 bytes for its own 768)."""
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    g = memplan.from_torch(m, (torch.randn(2, 3, 8, 8)[1:],))
    assert [t.size for t in g.tensors if t.kind == "input"] == [3 * 8 * 8 * 4]


class OutIntoInput(nn.Module):
    def forward(self, a, x):
        torch.add(a, 1, out=x)
        return x * 2


def test_an_out_call_into_a_sliced_input_keeps_its_example_layout():
    big = torch.zeros(10)
    g = memplan.from_torch(OutIntoInput(), (torch.ones(3), big[2:5]))
    assert {t.id: t.size for t in g.tensors if t.kind == "input"}["x"] == 40


class CachedScale(nn.Module):
    """A ``functools.cached_property`` read by ``forward``: the first call stores it in ``__dict__`` (no
    ``nn.Module.__setattr__``), every later call reads the stored value."""

    def __init__(self, d: int = 4):
        super().__init__()
        self.d = d
        self.lin = nn.Linear(d, d)

    @functools.cached_property
    def scale(self):
        return self.d ** -0.5

    def forward(self, x):
        return self.lin(x) * self.scale


@pytest.mark.parametrize("warm", [False, True])
def test_a_cached_property_is_no_write_to_refuse(warm):
    """Refused since round 38 when compiled before any eager call ("forward sets CachedScale.scale without
    nn.Module.__setattr__ ... unset at compile, 0.5 after the export's call"): the value it stores is the one every
    later call reads, and exported again from it ``forward`` stores nothing more and runs the very program. Taken,
    and each call leaves it stored, as eager's first call does."""
    m, e = CachedScale(), CachedScale()
    e.load_state_dict(m.state_dict())
    if warm:
        m(torch.randn(2, 4))
    c = compile(m, (torch.randn(2, 4),), poison=True)
    for _ in range(3):
        x = torch.randn(2, 4)
        assert torch.equal(c(x), e(x))
        assert vars(m)["scale"] == vars(e)["scale"] == 0.5


class LazyCloneOfExpand(nn.Module):
    """``_lazy_clone`` keeps its input's strides, an expand's zeros too (eager: ``(0, 1)``)."""

    def forward(self, x):
        y = torch._lazy_clone(x.expand(3, 4))
        z = torch._lazy_clone(x[:, ::2])
        return y * 2, z + 1, y, y.stride()


@pytest.mark.parametrize("streams", [1, "auto"])
def test_a_lazy_clone_of_an_expand_runs(streams):
    """Failed at every compile since round 38 ran ``_lazy_clone`` as ``out.copy_(x)``: "more than one element of the
    written-to tensor refers to a single memory location"."""
    m = LazyCloneOfExpand()
    c = compile(m, (torch.randn(1, 4),), streams=streams, poison=True)
    for _ in range(3):
        x = torch.randn(1, 4)
        got, want = c(x), m(x)
        for a, b in zip(got[:3], want[:3]):
            assert torch.equal(a, b) and a.stride() == b.stride()
        assert got[3] == want[3] == (0, 1)
