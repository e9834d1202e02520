"""Round 51b of the torch.export importer: a program imported in memory and its saved-and-loaded copy.

- A ``while_loop`` over a module's parameters, traced under autograd, returns its last carry at a symbolic storage
  offset (``12*u0 - 12``): ``from_torch(module)`` refused it suggesting ``torch._check``, which cannot pin an offset,
  where the loaded ``.pt2`` imported. It is now traced again for inference (as ``trace_torch`` does) and imports
  with the loaded copy's sizes.
- Ops returning several tensors (some in one fresh storage: one-argument ``torch.where``, ``unique``, ``aminmax``,
  ``sort``...) import to the same tensors in memory and loaded (a guard: they did this round).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch._higher_order_ops.while_loop import while_loop  # noqa: E402
from torch_saved import rows, saved_and_loaded  # noqa: E402

import memplan  # noqa: E402


class _Refine(torch.nn.Module):
    """A fixed-step refinement loop over a parameter (which requires grad: torch traces it under autograd)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3))

    def forward(self, x):
        return while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * self.w), (torch.tensor(0), x))[1] + 1


def _loop_sizes(g) -> list[int]:
    """The sizes of the ``while_loop`` node's results and of the graph's outputs (ids differ: the lowering renames
    the loop counter's copy)."""
    sizes = {t.id: t.size for t in g.tensors}
    loop = next(n for n in g.nodes if n.op == "while_loop")
    return [sizes[t] for t in loop.outputs] + [t.size for t in g.tensors if t.kind == "output"]


def test_an_autograd_traced_while_loop_imports_as_its_loaded_copy():
    x = torch.randn(3)
    ep = torch.export.export(_Refine(), (x,))
    loaded = memplan.from_torch(saved_and_loaded(ep))
    want = _loop_sizes(loaded)
    assert want == [8, 12, 12]
    assert _loop_sizes(memplan.from_torch(_Refine(), (x,))) == want
    assert _loop_sizes(memplan.from_torch(ep)) == want


_X = torch.randn(3, 4)

_MULTI = {
    "where_one_arg": lambda x: tuple(t + 1 for t in torch.where(x > 0)),
    "unique": lambda x: torch.unique(x.round(), return_inverse=True, return_counts=True),
    "aminmax": lambda x: tuple(torch.aminmax(x, dim=1)),
    "sort": lambda x: tuple(torch.sort(x, dim=1)),
    "nonzero_static": lambda x: torch.nonzero_static(x > 0, size=5) + 1,
    "split_with_sizes_inplace": lambda x: [t.add_(1) for t in x.clone().split([1, 3], 1)],
    "var_mean": lambda x: torch.var_mean(x, 1),
    "diagonal_inplace": lambda x: x.clone().diagonal().mul_(2),
}


class _Fn(torch.nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("case", sorted(_MULTI))
def test_multi_result_ops_import_alike_in_memory_and_loaded(case):
    ep = torch.export.export(_Fn(_MULTI[case]), (_X,))
    if case == "unique" and _fake_unique_records_floats(ep):   # (torch 2.11: tests/test_torch_round67_unique.py)
        for source in (ep, saved_and_loaded(ep)):
            with pytest.raises(memplan.GraphError, match=r"torch's fake kernel recorded its .* as float32"):
                memplan.from_torch(source)
        pytest.skip(f"torch {torch.__version__}'s fake unique records int64 results as floats: refused, not planned")
    here = memplan.from_torch(ep)
    assert rows(here) == rows(memplan.from_torch(saved_and_loaded(ep)))
    assert rows(here) == rows(memplan.from_torch(_Fn(_MULTI[case]), (_X,)))


def _fake_unique_records_floats(ep) -> bool:
    """Whether torch's fake unique recorded its inverse indices or counts as floats (torch 2.11's does)."""
    node = next(n for n in ep.graph.nodes if n.op == "call_function" and "unique" in str(n.target))
    return any(v.dtype != torch.int64 for v in node.meta["val"][1:])


class _PinnedWhere(torch.nn.Module):
    """One-argument ``torch.where`` whose count a check pins: two index tensors in one fresh 32-byte storage."""

    def forward(self, x):
        a, b = torch.where(x > 0)
        torch._check(a.shape[0] == 2)
        return a * 3 + 1, b + 1


def test_results_sharing_one_fresh_storage_import_alike_in_memory_and_loaded():
    # (in memory each index tensor was a root of the whole 32-byte storage; loaded, 16 + 16)
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    ep = torch.export.export(_PinnedWhere(), (x,))
    want = rows(memplan.from_torch(saved_and_loaded(ep)))
    assert [r[1] for r in want if r[0].startswith("getitem")] == [16, 16]
    assert rows(memplan.from_torch(_PinnedWhere(), (x,))) == want
    assert rows(memplan.from_torch(ep)) == want


def test_results_sharing_one_fresh_storage_replay_as_eager():
    from runtime.aten import compile

    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    want = _PinnedWhere()(x)
    for program in (_PinnedWhere(), saved_and_loaded(torch.export.export(_PinnedWhere(), (x,)))):
        got = compile(program, (x,), streams=2, poison=True)(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want))


class _WhereViews(torch.nn.Module):
    """Views of, and an in-place write to, index tensors laid out alone (``_layout_alone``)."""

    def forward(self, x):
        a, b = torch.where(x > 0)
        torch._check(a.shape[0] == 3)
        b.add_(5)
        return a[1:] * 3, b[::2] + 1, b.view(3, 1).expand(3, 2).sum(1)


def test_views_of_results_laid_out_alone_import_alike_and_replay_as_eager():
    from runtime.aten import compile

    x = torch.tensor([[1.0, -1.0, 2.0], [-1.0, 1.0, -3.0]])
    ep = torch.export.export(_WhereViews(), (x,))
    loaded = saved_and_loaded(ep)
    here = rows(memplan.from_torch(_WhereViews(), (x,)))
    assert here == rows(memplan.from_torch(loaded))
    assert ("slice_1", 16, "intermediate", "getitem_2", 8) in here
    want = _WhereViews()(x)
    for program in (_WhereViews(), loaded):
        got = compile(program, (x,), streams=2, poison=True)(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
