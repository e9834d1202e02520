"""Round 74 (export74): the torch.export importer's sizes and aliasing against what eager torch allocates.

- A ``torch.no_grad()`` / ``torch.autocast`` block in ``forward`` is one node (``wrap_with_set_grad_enabled``,
  ``wrap_with_autocast``) whose results may be views of one another (``y = x @ w; z = y[1:]`` inside it returns ``y``
  and ``z``, one storage) or, in a program loaded from ``.pt2``, of its operands (``z = y.t()``). Both were planned as
  tensors of their own: a later ``y.mul_(2)`` never reached ``z``, and ``runtime.aten.compile`` returned ``z`` as it
  was before the write where eager returns it written (silently wrong, bitwise).
"""

from __future__ import annotations

import io
import warnings

from needs import need

torch = need("torch")

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402


def _compiled(program, x):
    """``program`` (a module or an ExportedProgram) compiled for the CPU on one stream, arena poisoned."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(program, (x,), streams=1, cuda_graph=False, poison=True, device="cpu")


def _loaded(ep):
    """``ep`` saved with ``torch.export.save`` and loaded again (its fake tensors then share no storage)."""
    f = io.BytesIO()
    torch.export.save(ep, f)
    f.seek(0)
    return torch.export.load(f)


def _root(graph, tid: str) -> tuple[str, int]:
    """(the root tensor ``tid`` is a view of, its byte offset there)."""
    t, off = graph.tensor(tid), 0
    while t.view_of is not None:
        off += t.view_offset
        t = graph.tensor(t.view_of)
    return t.id, off


class _NoGradSlice(torch.nn.Module):
    """A ``@torch.no_grad()``-style block returning a product and a view of it; the product is written after."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(36.0).reshape(6, 6) / 10)

    def forward(self, x):
        with torch.no_grad():
            y = x @ self.w
            z = y[1:]
        y.mul_(2)
        return z + 0


class _AutocastOperandView(torch.nn.Module):
    """An autocast block returning a transpose of its operand; the operand is written after."""

    def forward(self, x):
        y = x * 1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = y.t()
            w = y @ y.t()
        y.add_(1)
        return z * 1, w


def test_a_no_grad_blocks_result_viewing_another_is_planned_as_its_view():
    # (before: 'slice_1' a tensor of its own; the compiled call returned z unscaled)
    m, x = _NoGradSlice(), torch.arange(24.0).reshape(4, 6) / 7
    g = memplan.from_torch(m, (x,))
    node = next(n for n in g.nodes if n.op == "wrap_with_set_grad_enabled")
    first, second = node.outputs
    assert _root(g, second) == (first, 6 * 4)   # (y[1:]: one row of 6 floats into y)
    assert g.tensor(first).size == 4 * 6 * 4
    assert torch.equal(_compiled(m, x)(x), m(x))


def test_a_loaded_programs_block_results_keep_their_aliases():
    # (before: loaded, a no_grad block's view of its own result and an autocast block's view of its operand were
    # tensors of their own, and the compiled loaded program missed the writes after the block)
    x = torch.arange(24.0).reshape(4, 6) / 7
    ep = _loaded(torch.export.export(_NoGradSlice(), (x,)))
    g = memplan.from_torch(ep, (x,))
    first, second = next(n for n in g.nodes if n.op == "wrap_with_set_grad_enabled").outputs
    assert _root(g, second) == (first, 24)
    assert torch.equal(_compiled(ep, x)(x), ep.module()(x))

    m = _AutocastOperandView()
    for program in (m, _loaded(torch.export.export(m, (x,)))):
        g = memplan.from_torch(program, (x,))
        node = next(n for n in g.nodes if n.op == "wrap_with_autocast")
        assert _root(g, node.outputs[0]) == (_root(g, node.inputs[0])[0], 0)   # (z = y.t(): a view of y)
        got, want = _compiled(program, x)(x), m(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_block_results_in_memory_and_loaded_plan_alike():
    x = torch.arange(24.0).reshape(4, 6) / 7
    for m in (_NoGradSlice(), _AutocastOperandView()):
        ep = torch.export.export(m, (x,))
        here, there = memplan.from_torch(ep, (x,)), memplan.from_torch(_loaded(ep), (x,))
        assert [(t.id, t.size, t.view_of, t.view_offset) for t in here.tensors] == \
            [(t.id, t.size, t.view_of, t.view_offset) for t in there.tensors]


class _NoGradExpand(torch.nn.Module):
    """A ``torch.no_grad()`` block returning an expand of a tensor it makes, and a row of it."""

    def forward(self, x):
        with torch.no_grad():
            y = (x * 2).unsqueeze(0).expand(3, 4, 6)
            z = y[1]
        return y + 0, z * 1, y


def test_a_no_grad_blocks_expanded_result_is_copied_into_its_repeating_slot():
    # (before: every call refused, "more than one element of the written-to tensor refers to a single memory location",
    # where eager runs it)
    m, x = _NoGradExpand(), torch.arange(24.0).reshape(4, 6) / 7
    step = _compiled(m, x)
    for _ in range(2):
        got, want = step(x), m(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert got[2].stride() == want[2].stride() == (0, 6, 1)


class _RavelOfSlice(torch.nn.Module):
    """``ravel`` of a column slice (no view expresses it: eager copies, as ``reshape(-1)`` does), then its source written."""

    def forward(self, x):
        y = x * 1
        a = torch.ravel(y[:, 1:])
        y.add_(1)
        return a + 0, torch.ravel(y[1:])   # (the second: a view, rows are contiguous)


def test_ravel_copies_where_no_view_expresses_it():
    # (before: the copy was planned as a view over y's bytes, in memory and loaded: a plan placed one buffer where torch
    # has two, and the executor refused the program, "torch's view is (20,) ... at 0x..., the plan's ... at 0x...")
    m, x = _RavelOfSlice(), torch.arange(24.0).reshape(4, 6) / 7
    for program in (m, _loaded(torch.export.export(m, (x,)))):
        g = memplan.from_torch(program, (x,))
        first, second = (n for n in g.nodes if n.op == "ravel")
        assert g.tensor(first.outputs[0]).view_of is None
        assert _root(g, second.outputs[0]) == ("mul", 24)
        got, want = _compiled(program, x)(x), m(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


class _RavelOfInput(torch.nn.Module):
    def forward(self, x):
        return x.t().ravel(), x * 1


def test_a_ravel_of_the_callers_input_is_its_view_where_eagers_is():
    # (before: exported with a contiguous x, x.t().ravel() is a copy; called with a transposed x, eager's is a view of the
    # caller's x, as x.t().reshape(-1)'s is, and the compiled call returned a copy: a write to it left x as it was)
    m = _RavelOfInput()
    step = _compiled(m, torch.arange(24.0).reshape(4, 6))
    for x in (torch.arange(24.0).reshape(6, 4).t(), torch.arange(24.0).reshape(4, 6) / 3):
        got, want = step(x)[0], m(x)[0]
        assert torch.equal(got, want)
        shares = got.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert shares == (want.untyped_storage().data_ptr() == x.untyped_storage().data_ptr())
