"""Review of round 38's last changes (``runtime/aten/sets.py``: ``fixed_sets``, ``check_carried_state``).

Bugs fixed (each test marked "failed before" did):
- a registered buffer replaced in ``forward`` (``self.sub.st = x + self.sub.st``: torch's export neither returns
  nor writes it back) was refused as "forward sets ... to a FakeTensor (neither a plain value, ... nor a tensor ...)",
  which called a tensor no tensor and named no way out; now the message says a buffer is replaced and to update it
  in place;
- a tensor attribute set from another one's value before the call (``self.a, self.b = self.b, self.a``) was refused
  as "computed from its own value before the call ('b')": now "from the value of M.b before the call".
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class _Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("st", torch.zeros(4))


class ReplacesSubBuffer(nn.Module):
    """State carried through a submodule's buffer replaced by ``setattr`` (not in place)."""

    def __init__(self):
        super().__init__()
        self.sub = _Holder()

    def forward(self, x):
        self.sub.st = x + self.sub.st
        return self.sub.st * 1


class SwapsAttrs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.ones(4)
        self.b = torch.full((4,), 2.0)

    def forward(self, x):
        self.a, self.b = self.b, self.a
        return x * self.a


class AddsToBufferInPlace(nn.Module):
    """A counter and an accumulator kept in buffers, updated in place: the program writes them (no refusal)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("n", torch.zeros(()))
        self.sub = _Holder()

    def forward(self, x):
        self.n += 1
        self.sub.st += x
        return x * self.n + self.sub.st


def test_a_replaced_buffer_is_refused_naming_it_as_a_buffer():
    """Failed before: the message read "to a FakeTensor (neither a plain value, ... nor a tensor ...)"."""
    with pytest.raises(AtenExecutorError, match=r"forward replaces buffer ReplacesSubBuffer\.sub\.st with a new "
                                                 r"tensor \(self\.st = \.\.\.\).*self\.st\.copy_") as err:
        compile(ReplacesSubBuffer(), (torch.ones(4),), poison=True)
    assert "FakeTensor" not in str(err.value)


def test_state_carried_from_another_attribute_names_that_attribute():
    """Failed before: "computed from its own value before the call ('b')" for ``SwapsAttrs.a``."""
    with pytest.raises(AtenExecutorError, match=r"forward sets SwapsAttrs\.a to a tensor computed from the value of "
                                                 r"SwapsAttrs\.b before the call"):
        compile(SwapsAttrs(), (torch.ones(4),), poison=True)


def test_buffers_updated_in_place_follow_eager_over_three_calls():
    """Counters and accumulators in buffers (in place) are no carried attribute state: compiled == eager."""
    eager, mine = AddsToBufferInPlace(), AddsToBufferInPlace()
    compiled = compile(mine, (torch.ones(4),), poison=True)
    for i in range(3):
        x = torch.full((4,), float(i + 1))
        assert torch.equal(compiled(x), eager(x))


def test_same_tensor_bits_of_a_conjugate_view():
    """Failed before: ``runtime.bits.same_tensor_bits`` (now ``callform._same_tensor``'s comparison) raised
    "torch.Tensor.view is not supported for conjugate view tensors" for ``c.conj()``; now it compares the values."""
    from runtime.bits import same_tensor_bits

    c = torch.tensor([1 + 2j, -3j], dtype=torch.complex64)
    assert same_tensor_bits(c.conj(), c.conj().resolve_conj())
    assert not same_tensor_bits(c.conj(), c)
    assert same_tensor_bits(-c, (-c).clone()) and same_tensor_bits(c._neg_view(), (-c).clone())
