"""Review of round 67: silent-wrong results in the round's merged changes (CPU).

1. ``value_reads._compiling`` took ``torch.compiler.is_compiling()``, which a non-strict export sets True for its
   whole trace of ``forward`` (``torch._export.utils._compiling_state_context``), not only while Dynamo traces a
   higher-order op's body: the value-read modes passed every call on, so ``x * T.tolist()[0] + T`` on a global ``T``
   baked ``T``'s numbers into the program and ``T.mul_(1.5)`` after compile changed eager's result, silently not the
   program's (tests/test_aten_round64c.py failed on main too). The modes now step aside only while Dynamo itself
   traces (``torch.compiler.is_dynamo_compiling()``, which is False outside Dynamo).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, thread_reads, value_reads  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _export_flag():
    """The flag a non-strict export holds for its trace of ``forward`` (torch's own context where it has one)."""
    utils = pytest.importorskip("torch._export.utils")
    if not hasattr(utils, "_compiling_state_context"):
        pytest.skip("this torch's export sets no compiling flag")
    return utils._compiling_state_context()


def test_a_read_during_a_non_strict_exports_trace_is_recorded():
    t = torch.tensor([3.0])
    with value_reads.watch_value_reads(torch) as reads, _export_flag():
        assert torch.compiler.is_compiling()
        float(t)
    assert id(t) in reads


def test_the_threads_mode_records_during_a_non_strict_exports_trace_too():
    reads: dict = {}
    parent = value_reads._mode_class(torch)(torch, reads)   # (the export's mode, whose reads a thread carries)
    t = torch.tensor([2.0])
    with _export_flag():
        thread_reads._under(torch, parent, lambda: float(t))
    assert id(t) in reads


T = torch.tensor([1.5, -0.5])


class _GlobalTolist(nn.Module):
    def forward(self, x):
        return x * T.tolist()[0] + T


def test_a_global_read_as_numbers_and_changed_in_place_is_refused_not_the_exports_numbers():
    T.copy_(torch.tensor([1.5, -0.5]))
    m, x = _GlobalTolist(), torch.tensor([0.25, 2.0])
    c = compile(m, (x,), streams=2, cuda_graph=False, poison=True, device="cpu")
    assert torch.equal(c(x), m(x))
    T.mul_(1.5)
    try:
        with pytest.raises(AtenExecutorError, match="T.*changed since compile"):
            assert torch.equal(c(x), m(x)), "silently the export's numbers"
    finally:
        T.copy_(torch.tensor([1.5, -0.5]))
