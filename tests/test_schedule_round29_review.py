"""Review of round 29's issue-order checks: the 0-d numpy array was named, a 0-d tensor of another library not."""

from __future__ import annotations

import pytest

import memplan
from memplan import GraphBuilder


class ZeroDim:
    """What a 0-d ``torch.Tensor`` is to ``schedule_with_events``: iterable by its type, not by its value."""

    ndim = 0

    def __iter__(self):
        raise TypeError("iteration over a 0-d tensor")


class NotAnIterator:
    def __iter__(self):
        return 5   # iter() raises TypeError: "iter() returned non-iterator"


@pytest.mark.parametrize("order", [ZeroDim(), NotAnIterator()], ids=["zero_dim", "not_an_iterator"])
def test_an_order_that_cannot_be_iterated_is_a_schedule_error(order):
    """``schedule_with_events(g, torch.tensor(0), ...)`` raised the raw TypeError "iteration over a 0-d tensor"
    (only a numpy 0-d array was named); it is a ScheduleError naming the order."""
    b = GraphBuilder("one")
    b.input("x", 256)
    b.node("n0", "OP", ["x"], b.output("y", 256))
    with pytest.raises(memplan.ScheduleError, match=rf"order must be a sequence of node ids, not {type(order).__name__}"):
        memplan.schedule_with_events(b.build(), order, {"n0": 0})
