"""Round 48 (aten48): the ATen executor against eager on the CPU (``cuda_graph=False``, a NaN-poisoned arena).

Bugs fixed (each test failed before):
- under ``return_views``, a previous call's output fed back as an input that the program writes in place
  (``h.mul_(0.5)``, a recurrent state updated in place) had its new value written back into the caller's arena view
  after the call: over this call's own output in the same bytes, which came back holding ``h * 0.5`` where eager's
  is ``tanh(...)``. Now the call writes into its copy of the input (the caller's view is of bytes the call
  overwrites, as documented), and its outputs are eager's;
- likewise a fed-back input returned as it is (``return x * 2, x, x[1:]``): the second and third outputs were the
  caller's arena view, which this call had overwritten with ``x * 2``; now that copy, holding the input's values.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


class _Cell(nn.Module):
    """A recurrent step whose state input is updated in place."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x, h):
        h.mul_(0.5)
        return torch.tanh(self.lin(x) + h)


class _Returns(nn.Module):
    def forward(self, x):
        return x * 2, x, x[1:]


@pytest.mark.parametrize("streams", [1, 3])
def test_a_fed_back_output_written_in_place_leaves_this_calls_outputs_as_eagers(streams):
    torch.manual_seed(0)
    m = _Cell().eval()
    x, h = torch.randn(3, 8), torch.randn(3, 8)
    step = compile(m, (x, h.clone()), return_views=True, poison=True, cuda_graph=False, streams=streams)
    with torch.no_grad():
        y = step(x, h.clone())
        want_y = m(x, h.clone())
        assert torch.equal(y, want_y)
        for k in range(3):
            x = torch.randn(3, 8)
            y = step(x, y)            # the previous call's view, written by the program
            want_y = m(x, want_y)
            assert torch.equal(y, want_y), k


def test_a_fed_back_input_returned_as_it_is_holds_its_values():
    torch.manual_seed(0)
    m = _Returns()
    x = torch.randn(3, 4)
    step = compile(m, (x,), return_views=True, poison=True, cuda_graph=False)
    a, b, _ = step(x)
    assert b is x
    before = a.clone()
    got = step(a)
    want = m(before)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    got[1].add_(1)   # the returned input and its view still share memory, as eager's
    assert torch.equal(got[2], got[1][1:])
