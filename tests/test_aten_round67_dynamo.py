"""Round 67: the value-read modes stay out of Dynamo's way (CPU).

A non-strict ``torch.export`` traces the bodies of ``while_loop``, ``cond`` and ``scan`` with Dynamo. On torch 2.11
(the GPU machine's) Dynamo also traces the active torch function modes' ``__torch_function__``, and stopped at the
value-read mode's ``id(func)`` of the higher-order op: "Dynamo doesn't know how to trace id() call with args
(WhileLoopHigherOrderVariable(),)". Every module with a ``while_loop`` (``tests/test_aten_host_outputs_gpu.py``,
the sweep's ``while_loop_carry``) failed to compile there; torch 2.14 passed. Inside a trace every tensor is a
stand-in, so the modes pass the call on untouched (``value_reads._compiling``).

The first test runs the real thing (it fails on torch 2.11 without the fix); the others hold the rule on any torch:
with ``torch.compiler.is_dynamo_compiling()`` true, neither mode takes an ``id()`` (a module-global ``id`` that raises stands
in for Dynamo's refusal), and outside a trace the reads are still recorded.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, thread_reads, value_reads  # noqa: E402


class _CountedLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 6) * 0.3)

    def forward(self, x):
        from torch._higher_order_ops import while_loop

        n, h = while_loop(lambda i, h: i < 4, lambda i, h: (i + 1, torch.tanh(h @ self.w)),
                          (torch.zeros((), dtype=torch.int64), x))
        return n, h


class _Branch(nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda a: a.sin(), lambda a: a.cos(), (x,))


@pytest.mark.parametrize("make", [_CountedLoop, _Branch])
def test_a_higher_order_op_compiles_under_the_value_read_watch_and_equals_eager(make):
    torch.manual_seed(0)
    m = make()
    x = torch.randn(3, 6)
    c = compile(m, (x,), streams=2, cuda_graph=False, poison=True, device="cpu")
    for k in range(2):
        out, ref = c(x + k), m(x + k)
        out, ref = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
        assert all(torch.equal(a, b) for a, b in zip(out, ref))


def _no_id(x):
    raise AssertionError("the mode took an id during a trace (Dynamo on torch 2.11 cannot trace id() of a "
                         "higher-order op)")


@pytest.mark.parametrize("which", ["forward", "thread"])
def test_during_a_trace_the_modes_pass_the_call_on_without_taking_ids(monkeypatch, which):
    cls = value_reads._mode_class(torch) if which == "forward" else thread_reads._child_class(torch)
    reads: dict = {}
    mode = cls(torch, reads)
    calls = []
    t = torch.ones(1)
    monkeypatch.setattr(torch.compiler, "is_dynamo_compiling", lambda: True)
    for module in (value_reads, thread_reads):   # (a module global ``id`` shadows the builtin in the modes' code)
        monkeypatch.setattr(module, "id", _no_id, raising=False)
    made = torch.zeros(1)   # (a new tensor out: the thread's mode would note what it was computed from, by id)
    assert mode.__torch_function__(lambda *a: calls.append(a) or made, (), (t,)) is made
    assert calls == [(t,)] and reads == {}


def test_outside_a_trace_a_read_is_still_recorded():
    t = torch.tensor([3.0])
    with value_reads.watch_value_reads(torch) as reads:
        float(t)
    assert id(t) in reads
