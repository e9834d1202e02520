"""A device whose weights alone are over its ``device_capacity`` is told so.

The refusal said "device 0 needs 4194304 B of weights plus an arena of 49152 B = 4243456 B, over the device_capacity
of 10 B": true, but it left the user to find out from the sum that no order or solver can help, the weights alone
being over. Where they fit, the sum is still quoted."""

from __future__ import annotations

import pytest

import memplan
from memplan import examples as E
from memplan.devices.split import weight_bytes


def test_weights_alone_over_the_capacity_are_named_alone():
    g = E.moe()
    weights = weight_bytes(g)
    with pytest.raises(memplan.BudgetError, match=rf"^device 0 needs {weights} B of weights alone, over the "
                                                  rf"device_capacity of {weights - 1} B \(its arena needs \d+ B more\)"):
        memplan.plan(g, device_capacity=weights - 1)


def test_weights_that_fit_quote_the_sum():
    g = E.moe()
    weights = weight_bytes(g)
    with pytest.raises(memplan.BudgetError, match=rf"^device 0 needs {weights} B of weights plus an arena of \d+ B = "
                                                  rf"\d+ B, over the device_capacity of {weights} B"):
        memplan.plan(g, device_capacity=weights)
