"""Round 43's review: bugs found in the round's merged changes, each test failing before its fix."""

from __future__ import annotations

import pytest
from needs import need

from memplan.planfile import Plan
from memplan.show import describe


def test_show_plan_of_several_streams_and_no_nodes():
    """The per-stream table's widths (round 43) took ``max(7, *rows)``: a plan of 2 streams and no nodes (a valid
    file) was a raw "TypeError: 'int' object is not iterable" from ``memplan show``."""
    p = Plan(graph="g", alignment=256, arena_bytes=0, lower_bound_bytes=0, streams=2, order=(), events=(), tensors=())
    text = describe(p)
    assert "streams      2  (no nodes)" in text
    assert "per stream:" in text


class _WritesThroughASplitView:
    """``x.view(2, 2, 3).add_(1)``: splitting dimension 0 is a view of ``x`` for any row stride; ``x.mul_(2)`` first
    (the view of an in-place op's result: the check must not run the ``mul_`` again on the caller's tensor)."""

    def __init__(self, scaled: bool):
        self.scaled = scaled

    def __call__(self, torch):
        scaled = self.scaled

        class M(torch.nn.Module):
            def forward(self, x):
                (x.mul_(2) if scaled else x).view(2, 2, 3).add_(1)
                return x * 1

        return M()


@pytest.mark.parametrize("scaled", [False, True])
def test_a_write_through_a_reshape_that_stays_a_view_of_the_callers_layout_runs(scaled):
    """Round 43 refused every input written through a reshape of it and laid out otherwise than at export: ``x`` [4, 3]
    sliced out of a [4, 6] tensor (strides (6, 1)) and written through ``x.view(2, 2, 3)`` was refused ("eager's view
    of a tensor so laid out can be a copy"), where eager's view is a view of it and its write reaches the caller's
    ``x`` (so for a transposed ``x``: dimension 0 has stride 1). It runs now, as eager (the caller's ``x`` written);
    ``x.reshape(-1)`` of such an ``x`` (a copy in eager) is still refused (test_aten_round43)."""
    torch = need("torch")
    from runtime.aten import compile

    m = _WritesThroughASplitView(scaled)(torch)
    with torch.no_grad():
        step = compile(m, (torch.randn(4, 3),), cuda_graph=False)
        big = torch.randn(4, 6)
        x, xe = big.clone()[:, :3], big.clone()[:, :3]
        want = m(xe)
        got = step(x)
        assert torch.equal(got, want) and torch.equal(x, xe)
        base = torch.randn(3, 4)   # (transposed: strides (1, 4); dimension 0, stride 1, splits as a view too)
        x, xe = base.clone().t(), base.clone().t()
        want = m(xe)
        assert torch.equal(step(x), want) and torch.equal(x, xe) and not torch.equal(x, base.t())


def test_a_program_is_imported_where_the_default_dtype_is_another_than_at_export():
    """Round 43's record check ran each op in this process: a program exported under float32 whose
    ``torch.arange(4) / 4`` recorded a float32 result, imported where ``torch.set_default_dtype(torch.float64)`` is set
    (the very ExportedProgram in memory too), was refused as "a corrupted or edited program" ("records its result as
    float32 [4] ..., but the op makes float64 [4]"). The op is run again under the recorded dtype as default: the
    program imports, its tensors sized as recorded; the process's default dtype is left as it was."""
    torch = need("torch")
    from memplan.importers.torch import from_torch

    class M(torch.nn.Module):
        def forward(self, x):
            return x + torch.arange(4) / 4

    ep = torch.export.export(M(), (torch.randn(4),))
    want = from_torch(ep)
    torch.set_default_dtype(torch.float64)
    try:
        got = from_torch(ep)
        assert torch.get_default_dtype() is torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert [t.size for t in got.tensors] == [t.size for t in want.tensors]


_PASS_THROUGH_MODULE = '''
import torch

class PassThrough(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs)
'''


def test_a_pass_through_subclass_from_a_module_without_future_annotations_runs():
    """Round 43's pass-through forms were compiled in ``runtime/aten/subclass.py``, under its ``from __future__ import
    annotations``, and compared by ``co_flags`` too: a ``PassThrough`` defined in a module without that import (most
    user code; this test file has it, so the class is compiled apart) was refused ("does more than pass each call
    on"). It runs now, its result of the class as eager's."""
    torch = need("torch")
    from runtime.aten import compile

    space: dict = {}
    exec(compile_source(_PASS_THROUGH_MODULE), space)  # noqa: S102 - the test's own source
    cls = space["PassThrough"]

    class M(torch.nn.Module):
        def forward(self, x):
            return x * 2

    m = M()
    with torch.no_grad():
        step = compile(m, (torch.randn(3),), cuda_graph=False)
        x = torch.randn(3).as_subclass(cls)
        got, want = step(x), m(x)
    assert type(got) is type(want) is cls and torch.equal(got.as_subclass(torch.Tensor), want.as_subclass(torch.Tensor))


def compile_source(source: str):
    """``source`` compiled as a module of its own: no ``from __future__`` import of this file inherited."""
    return compile(source, "<user module>", "exec", dont_inherit=True)
