"""Review round 33a: ``device_capacity`` as one byte count per device takes numpy integers, as one number does.

``plan(g, devices=2, device_capacity=np.int64(...))`` was taken (every option's integer arrives plain), but a list
of numpy integers (``[np.int64(...)] * 2``, capacities read into an array) was refused "device_capacity[0]
(device 0) must be a non-negative byte count", and a 1-D array of them as "not ... a list of them".
"""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan import examples
from memplan.devices.split import device_capacities
from memplan.errors import BudgetError

GIB = 1 << 30


def test_a_list_of_numpy_integers_is_one_capacity_per_device():
    g = examples.bundled()["llama-tiny"]
    want = memplan.plan(g, devices=2, device_capacity=[GIB, GIB // 2])
    for caps in ([np.int64(GIB), np.int64(GIB // 2)], (np.int32(1 << 30), GIB // 2), np.array([GIB, GIB // 2])):
        got = memplan.plan(g, devices=2, device_capacity=caps)
        assert (got.offsets(), got.arena_bytes) == (want.offsets(), want.arena_bytes)


def test_the_capacities_come_back_as_plain_ints():
    got = device_capacities([np.int64(5), np.uint32(7)], 2)
    assert got == (5, 7) and all(type(c) is int for c in got)
    assert device_capacities(np.int64(3), 2) == (3, 3)


@pytest.mark.parametrize("bad", [[np.float64(1.0), 2], [True, 2], [-1, 2], np.array([[1, 2]]), [2 ** 63, 1]])
def test_what_is_no_byte_count_is_still_refused(bad):
    with pytest.raises(BudgetError, match="device_capacity"):
        device_capacities(bad, 2)
