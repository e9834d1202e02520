"""Round 30 of the PyTorch path on the CPU: ``out=`` calls with several outs, and inference-serving programs
(KV caches, MoE routing, LoRA, beam gathers), run by the ATen executor against eager (1 and 3 streams,
poisoned arena, bitwise).

- ``torch.max(x, 1, out=(v, i))``, ``torch.sort(..., out=...)``, ``torch.topk(..., out=...)``: every out the
  call resizes (or the plan places apart) is an in-place result of its own; two of them were refused as
  "2 in-place results over 2 written arguments (unsupported)". They run as the functional twin's out=
  overload into the planned results."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


def _equal_eager(module, make_inputs, streams, calls: int = 3):
    """Compile on ``make_inputs()``, then each call on fresh inputs equals eager bitwise."""
    step = compile(module, make_inputs(), streams=streams, poison=True)
    for _ in range(calls):
        xs = make_inputs()
        with torch.no_grad():
            ref = module(*xs)
        out = step(*xs)
        ref, out = (ref, out) if isinstance(ref, tuple) else ((ref,), (out,))
        assert len(out) == len(ref)
        for a, b in zip(out, ref):
            assert a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    return step


def _max(x, outs):
    return torch.max(x, 1, out=outs)


def _min(x, outs):
    return torch.min(x, 1, keepdim=True, out=outs)


def _sort(x, outs):
    return torch.sort(x, dim=-1, descending=True, out=outs)


def _topk(x, outs):
    return torch.topk(x, 3, out=outs)


def _kthvalue(x, outs):
    return torch.kthvalue(x, 2, 1, out=outs)


def _aminmax(x, outs):
    return torch.aminmax(x, dim=0, out=outs)


class SeveralOuts(nn.Module):
    """``fn(x * 2, out=(v, i))`` into outs of ``size`` elements (0: every out resized), read afterwards."""

    def __init__(self, fn, size: int, second=torch.long):
        super().__init__()
        self.fn, self.size, self.second = fn, size, second

    def forward(self, x):
        v = torch.empty(self.size)
        i = torch.empty(self.size, dtype=self.second)
        self.fn(x * 2, (v, i))
        return v + 1, i * 1


@pytest.mark.parametrize("fn,second", [(_max, torch.long), (_min, torch.long), (_sort, torch.long),
                                       (_topk, torch.long), (_kthvalue, torch.long), (_aminmax, torch.float32)],
                         ids=["max", "min", "sort", "topk", "kthvalue", "aminmax"])
@pytest.mark.parametrize("streams", [1, 3, "auto"])
def test_out_calls_with_several_resized_outs_run_as_eager(fn, second, streams):
    step = _equal_eager(SeveralOuts(fn, 0, second), lambda: (torch.randn(4, 8),), streams)
    assert step.stats.copies_per_call == 0   # the functional twin's out= overload, straight into the plan


def test_several_outs_of_the_right_size_run_where_the_plan_puts_them():
    step = _equal_eager(SeveralOuts(_max, 4), lambda: (torch.randn(4, 8),), 3)
    assert step.stats.copies_per_call == 0


class SortsIntoItsInput(nn.Module):
    """``torch.sort(y, out=(y, i))``: an out that is also the input the op reads."""

    def forward(self, x):
        y = x * 2
        i = torch.empty(0, dtype=torch.long)
        torch.sort(y, dim=1, out=(y, i))
        return y + 1, i * 1


@pytest.mark.parametrize("streams", [1, 3])
def test_an_out_that_is_also_the_input_the_op_reads(streams):
    _equal_eager(SortsIntoItsInput(), lambda: (torch.randn(4, 8),), streams)
