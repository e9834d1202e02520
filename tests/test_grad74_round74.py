"""Round 74 (grad74): CPU kernels that choose their path by an operand's ``requires_grad`` or by grad mode, through
``runtime.aten.compile``, compared with eager bit for bit.

- ``matmul`` folds a 3-D-or-more operand into one ``mm`` by whether its matrix operand requires grad (torch's
  ``should_fold``); a matrix computed from parameters (``(w * s) @ x``; ``linear`` of an input that is not contiguous
  with a scaled weight) requires grad in eager under grad mode, the executor's arena view never did, and the result
  was 1 ulp (2e-07 .. 5e-07) off eager's under grad mode (``grad_masks.fold_slot``).
- The other way round: a mask or matrix made from a parameter by an op whose result never requires grad in eager
  (``torch.zeros_like(w) + m``, ``w.new_ones(...)``, ``full_like``, ``histc``) was taken as requiring grad, and its
  SDPA / matmul ran the math / folded kernel where eager ran flash / bmm (5e-07 off; ``grad_masks._no_grad_op``).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


class ScaledProducts(nn.Module):
    """Matrix operands computed from parameters: ``(w * s) @ x`` of a 3-D ``x`` and ``linear`` of a transposed
    (not contiguous) input with a scaled weight."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 4))
        self.v = nn.Parameter(torch.randn(5, 4))
        self.b = nn.Parameter(torch.randn(5))

    def forward(self, x):
        return (self.w * 1.0) @ x.transpose(-1, -2), nn.functional.linear(x.transpose(0, 1), self.v * 1.0, self.b)


@pytest.mark.parametrize("streams", [1, 3])
def test_matrix_computed_from_parameters_folds_as_eager(streams):
    torch.manual_seed(0)
    m = ScaledProducts()
    x = torch.randn(3, 2, 4)
    step = compile(m, (x,), streams=streams)
    for grad in (True, False, True):
        with torch.set_grad_enabled(grad):
            for k in range(2):
                got, want = step(x * (k + 1)), m(x * (k + 1))
                assert all(torch.equal(a, b) and not a.requires_grad for a, b in zip(got, want))
    with torch.inference_mode():
        assert all(torch.equal(a, b) for a, b in zip(step(x), m(x)))
    m.requires_grad_(False)   # (frozen after compile: eager's products require no grad, under grad mode too)
    with torch.enable_grad():
        assert all(torch.equal(a, b) for a, b in zip(step(x), m(x)))


class FreshFromParameters(nn.Module):
    """Operands made from parameters by factories (``zeros_like``, ``new_ones``, ``full_like``) and ``histc``, whose
    results require no grad in eager, under grad mode too."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(1, 1, 6, 6))
        self.w = nn.Parameter(torch.randn(5, 6))

    def forward(self, q, x):
        mask = torch.zeros_like(self.bias) + q[0, 0, :, :6]
        attn = nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
        mat = self.w.new_ones(5, 6) * q[0, 0, 0, 0] + torch.full_like(self.w, 0.5) + torch.histc(self.w, 6)
        return attn, mat @ x.transpose(-1, -2)


@pytest.mark.parametrize("streams", [1, 3])
def test_operands_made_by_factories_of_parameters_require_no_grad(streams):
    torch.manual_seed(0)
    m = FreshFromParameters()
    q, x = torch.randn(2, 2, 6, 8), torch.randn(2, 3, 6)
    step = compile(m, (q, x), streams=streams)
    for grad in (True, False, True):
        with torch.set_grad_enabled(grad):
            got, want = step(q, x), m(q, x)
            assert all(torch.equal(a, b) for a, b in zip(got, want))
