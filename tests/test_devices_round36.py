"""Round 36: the device split's weight query with shared (tied) weights."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan  # noqa: F401  (loads memplan.devices.partition)

partition_module = sys.modules["memplan.devices.partition"]


def test_a_stage_that_fits_exactly_before_a_replica_is_taken():
    """Units 4..5 hold 34 B and the tied weight's replica joins only at unit 6: device 1 may take 4..5 at a
    capacity of 34 B. The weight query had subtracted the replica from every end past its first reader's
    start, so the split [0..3] [4..5] [6] was refused as "device 1 needs 34 B ... over the device_capacity of
    34 B" (found by hypothesis in test_devices_round29's brute-force check)."""
    stages = partition_module.partition([0.0] * 7, [1, 0, 0, 0, 14, 20, 0],
                                        [False, False, False, True, False, True, False], 3, 34,
                                        shared=[(1, [0, 6])])
    assert stages == ((0, 4), (4, 6), (6, 7))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_last_within_is_the_last_end_whose_stage_fits(data):
    """``last_within(s, W)`` against ``of``: the last end e >= s - 1 with ``of(s, e) <= W`` (bytes only grow
    with e), for random weights and shared weights read by several units."""
    U = data.draw(st.integers(1, 9))
    weight = data.draw(st.lists(st.integers(0, 20), min_size=U, max_size=U))
    shared = []
    for _ in range(data.draw(st.integers(0, 3))):
        units = sorted(data.draw(st.sets(st.integers(0, U - 1), min_size=min(2, U), max_size=U)))
        if len(units) < 2:
            continue
        size = data.draw(st.integers(1, 30))
        weight[units[0]] += size
        shared.append((size, units))
    pw = [0]
    for w in weight:
        pw.append(pw[-1] + w)
    sw = partition_module._StageWeights(pw, shared)
    s = data.draw(st.integers(0, U - 1))
    W = data.draw(st.integers(0, pw[-1] + 40))
    want = s - 1
    for e in range(s, U):
        if sw.of(s, e) <= W:
            want = e
    got = sw.last_within(s, W)
    assert got == want if want >= s else got < s


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
