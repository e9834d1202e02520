"""Review of round 38's ATen executor, torch importer and pycuda runtime changes: adversarial cases their tests
left out.

- An input whose example is a slice of a larger tensor is now planned at its own bytes (``_own_layout``), in a
  fake storage of its own; a result that is the input itself through an op whose schema declares no alias (eval
  ``dropout``) was then found by storage no more: it was planned as a new 40-byte tensor, the input's in-place
  write (``x.add_(1)``) was no write to the input, and the compiled call left the caller's tensor unchanged
  where eager changed it."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402


class DropoutThenWrite(nn.Module):
    """An eval dropout (the input itself, no alias in its schema), then an in-place write to the input."""

    def forward(self, x):
        y = F.dropout(x, 0.5, training=False)
        x.add_(1)
        return y * 2


def _sliced(n: int = 4) -> torch.Tensor:
    return torch.arange(10.0)[2:2 + n]


def test_an_undeclared_alias_of_a_sliced_input_is_a_view_of_it():
    g = memplan.from_torch(DropoutThenWrite(), (_sliced(),))
    t = {x.id: x for x in g.tensors}
    assert t["x"].size == 16
    assert t["dropout"].view_of == "x" and t["dropout"].size == 16
    assert t["add_"].view_of == "dropout"   # the write is the input's bytes, ordered as every write to it


@pytest.mark.parametrize("streams", [1, "auto"])
def test_a_compiled_call_writes_a_sliced_input_as_eager(streams):
    m = DropoutThenWrite()
    c = compile(m, (_sliced(),), streams=streams, poison=True)
    for _ in range(3):
        a, b = _sliced(), _sliced()
        got, want = c(a), m(b)
        assert torch.equal(got, want)
        assert torch.equal(a, b)   # eager's ``x.add_(1)`` reached the caller's tensor
