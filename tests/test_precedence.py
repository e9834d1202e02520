"""The bulk precedence tests (``BufferProblem._precedes``, ``ordered_test``) against ``HBOrder.precedes``,
the definition, on random orders: dense and sparse columns, NEVER entries, every chunk size."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memplan import problem as P
from memplan.lifetimes import NEVER


@st.composite
def orders(draw):
    n = draw(st.integers(1, 12))
    s = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 8, size=(n, s))
    first[rng.random((n, s)) < draw(st.floats(0, 1))] = NEVER   # streams a buffer never touches
    visible = rng.integers(0, 9, size=(n, s))
    visible[rng.random((n, s)) < draw(st.floats(0, 1))] = NEVER  # streams that never see it
    has_start = rng.random(n) < 0.2
    has_end = rng.random(n) < 0.2
    last_time = rng.integers(0, 10, size=n) if draw(st.booleans()) else None
    order = P.HBOrder(first, visible, has_start, has_end, last_time)
    lower = rng.integers(0, 10, size=n)
    prob = P.BufferProblem(sizes=np.ones(n, dtype=np.int64), lower=lower, upper=lower + 5, order=order)
    return prob


def _reference(prob, i, j):
    order = prob.order
    if order.last_time is not None and order.last_time[i] >= prob.lower[j]:
        return False
    return order.precedes(i, j)


@settings(max_examples=300, deadline=None)
@given(orders(), st.sampled_from([1, 3, 1 << 22]))
def test_bulk_precedence_matches_the_definition(prob, chunk):
    n = len(prob)
    a, b = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    old = P._PRECEDES_CHUNK
    P._PRECEDES_CHUNK = chunk
    try:
        got = prob._precedes(a, b)
    finally:
        P._PRECEDES_CHUNK = old
    want = np.array([_reference(prob, int(i), int(j)) for i, j in zip(a, b)])
    assert np.array_equal(got, want)
    test = prob.ordered_test()
    for i, j in zip(a.tolist(), b.tolist()):
        assert test(i, j) == (_reference(prob, i, j) or _reference(prob, j, i)), (i, j)
