"""ATen executor, round 43 (fix43b): a ``contiguous()`` that returned its tensor itself at export counts only for
the inputs whose memory it returned.

Before: the export recorded every such call but not of which tensor, so a program calling ``contiguous()`` on an
intermediate (or any tensor) and writing an input in place (``x.add_(1)``) refused a transposed ``x``, where eager
writes the caller's ``x``. A write through ``x.contiguous()`` itself (or a view of ``x``) stays refused.
"""
from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs, **kw):
    return compile(m, inputs, cuda_graph=False, **kw)


class ContiguousElsewhere(nn.Module):
    """``contiguous()`` of an intermediate and of another input, and an in-place write of ``x``."""

    def forward(self, x, z):
        y = (x * 2).contiguous() + z.contiguous()
        x.add_(1)
        return x * 1 + y


class ContiguousOfX(nn.Module):
    def forward(self, x, z):
        x.contiguous().mul_(2)
        return x * 1 + z


class ContiguousOfAViewOfX(nn.Module):
    def forward(self, x, z):
        x[0].contiguous().mul_(2)
        return x * 1 + z


def test_a_write_to_an_input_beside_contiguous_of_other_tensors_runs_laid_out_otherwise():
    """Failed before: "input 'x' has strides (1, 3), the export's (4, 1), the program writes it in place, and
    forward's Tensor.contiguous() ... returned its tensor itself", a false refusal."""
    m = ContiguousElsewhere()
    with torch.no_grad():
        step = _compile(m, torch.randn(3, 4), torch.randn(3, 4))
        assert step.program.identity_inputs == frozenset({1})
        base, z = torch.randn(4, 3), torch.randn(3, 4)
        x, xe = base.clone().t(), base.clone().t()
        got, want = step(x, z), m(xe, z.clone())
        assert torch.equal(got, want) and torch.equal(x, xe) and not torch.equal(x, base.t())


@pytest.mark.parametrize("module", [ContiguousOfX, ContiguousOfAViewOfX])
def test_a_write_through_contiguous_of_the_input_laid_out_otherwise_stays_refused(module):
    m = module()
    with torch.no_grad():
        step = _compile(m, torch.randn(3, 4), torch.randn(3, 4))
        assert step.program.identity_inputs == frozenset({0})
        base = torch.randn(4, 3)
        x = base.clone().t()
        with pytest.raises(AtenExecutorError, match=r"input 'x' has strides \(1, 3\), the export's \(4, 1\), the "
                                                    r"program writes it in place, and forward's Tensor.contiguous\(\)"):
            step(x, torch.randn(3, 4))
        assert torch.equal(x, base.t())
        x, z = torch.randn(3, 4), torch.randn(3, 4)
        xe = x.clone()
        assert torch.equal(step(x, z), m(xe, z)) and torch.equal(x, xe)
