"""Round 79 (torch79): hand-made torch.export programs at the importer's corners.

Why: real-model families are covered elsewhere (hf78, hf79); these small modules reach the program shapes those
models rarely do. A CPU probe of the round passed, before any fix, for: ``torch.cond`` (also reading a buffer),
``while_loop``, ``map``, ``scan``; in-place writes to inputs and registered buffers (``index_put_``, ``copy_`` and
``add_`` on slices); outputs aliasing an input, each other, a weight or a buffer; flip / as_strided / unfold /
diagonal / expand views and their ``contiguous``; complex inputs and outputs (``view_as_real/complex``, ``fft``,
``conj``); bool, uint8, int8, int16, float8 and half/bfloat16 tensors; 0-d and 0-size tensors; channels_last;
a symbolic int output; uneven split/chunk, unbind; ``out=`` calls; sort/topk/kthvalue/median/mode on ties;
scatter_reduce, index_add, embedding_bag, group_norm, pixel_shuffle, grid_sample, every interpolate mode, cumulative
ops; data-dependent sizes (nonzero, masked_select, unique, ``.item()`` under ``torch._check``) planned at their bound
and covering an all-true mask's run, the executor refusing them by name.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_hf78_round78 import _uncovered  # noqa: E402

import memplan  # noqa: E402


class _SelectedRowsRepeated(torch.nn.Module):
    """The elements a mask selects (``u0`` of them, known only from the values), repeated as rows or columns and
    made contiguous: a copy of ``3 * u0`` elements from a view of ``u0``'s bytes."""

    def __init__(self, columns: bool) -> None:
        super().__init__()
        self.columns = columns

    def forward(self, x):
        y = x.masked_select(x > 0)
        wide = y.unsqueeze(1).expand(-1, 3) if self.columns else y.unsqueeze(0).expand(3, -1)
        return wide.contiguous() * 2


@pytest.mark.parametrize("columns", [False, True])
def test_contiguous_of_data_dependent_expand_plans_a_covering_copy(columns: bool) -> None:
    """``masked_select(...).expand(...).contiguous()``: contiguous (an alias) only when nothing is selected, which
    torch cannot tell at export. from_torch raised torch's raw ``GuardOnDataDependentSymNode``; now the result is
    planned as a copy in its own bytes, verified on 1 and 3 streams, and covers what an all-true mask writes."""
    m = _SelectedRowsRepeated(columns)
    x = torch.tensor([[1.0, -1, 2], [-3, 4, -5]])
    ep = torch.export.export(m, (x,))
    graph = memplan.from_torch(ep, (x,))
    for streams in (1, 3):
        memplan.verify(graph, memplan.plan(graph, streams=streams))
    for run in (x, torch.ones(2, 3)):
        checked, _views, faults = _uncovered(graph, ep, (run,))
        assert checked >= 5 and not faults, faults


class _LoopOverWeight(torch.nn.Module):
    """``x @ w + 1`` while ``i < 5`` (``i += 2``): ``w`` a parameter, passed to the loop as an operand
    (``operand=True``) or closed over by the body, which torch 2.11's export keeps as a FakeTensor constant."""

    def __init__(self, operand: bool) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)) * 0.3)
        self.operand = operand

    def forward(self, i, x):
        loop = torch.ops.higher_order.while_loop
        if self.operand:
            return loop(lambda i, x, w: i < 5, lambda i, x, w: (i + 2, x @ w + 1), (i, x), (self.w,))
        return loop(lambda i, x: i < 5, lambda i, x: (i + 2, x @ self.w + 1), (i, x), ())


def test_while_loop_body_closing_over_a_parameter_is_refused_by_name() -> None:
    """The body's constant is a FakeTensor with no values: the program was planned and verified, and the compiled
    call returned 3.6e16, -6.4e29... for eager's 1.91, -0.44, silently. Now ``from_torch`` and ``compile`` refuse it
    naming the node and the constant, and the operand form the refusal suggests runs equal to eager."""
    from runtime.aten import compile as aten_compile

    x = (torch.tensor(0), torch.randn(2, 3, generator=torch.Generator().manual_seed(1)))
    bad = _LoopOverWeight(operand=False)
    with pytest.raises(memplan.errors.GraphError, match=r"node 'while_loop'.*'_param_constant0'.*FakeTensor"):
        memplan.from_torch(torch.export.export(bad, x), x)
    with pytest.raises(memplan.errors.GraphError, match=r"node 'while_loop'.*'_param_constant0'"):
        aten_compile(bad, x, streams=3, cuda_graph=False, poison=True, device=torch.device("cpu"))
    good = _LoopOverWeight(operand=True)
    graph = memplan.from_torch(torch.export.export(good, x), x)
    memplan.verify(graph, memplan.plan(graph, streams=3))
    c = aten_compile(good, x, streams=3, cuda_graph=False, poison=True, device=torch.device("cpu"))
    with torch.no_grad():
        got, want = c(*x), good(*x)
    assert len(got) == len(want) == 2 and all(torch.equal(a, b) for a, b in zip(got, want))


class _LoopAddingIntoArgument(torch.nn.Module):
    """A body that closes over forward's argument ``acc`` and adds into it: export keeps ``acc`` as a FakeTensor."""

    def forward(self, i, x, acc):
        def body(i, x):
            acc.add_(x)
            return i + 1, x * 2

        return torch.ops.higher_order.while_loop(lambda i, x: i < 3, body, (i, x), ())


def test_while_loop_body_closing_over_an_argument_is_refused_by_name() -> None:
    """Eager adds 1 + 2 + 4 into ``acc``; the program holds a FakeTensor in its place, so no run could. Refused
    by ``compile``, naming the node and the constant, not run without the write."""
    from runtime.aten import compile as aten_compile

    x = (torch.tensor(0), torch.ones(3), torch.zeros(3))
    with pytest.raises(memplan.errors.GraphError, match=r"node 'while_loop'.*'_tensor_constant0'.*argument of forward"):
        aten_compile(_LoopAddingIntoArgument(), x, streams=1, cuda_graph=False, poison=True,
                     device=torch.device("cpu"))
