"""Round 36b review: warm starts of numpy integers that numpy's promotion reads as floats, ``files.staged``'s
renames that fail midway."""
from __future__ import annotations

import pytest

import memplan


def _two_buffers():
    import numpy as np

    from memplan.problem import BufferProblem

    return BufferProblem(sizes=np.array([16, 16]), lower=np.array([0, 0]), upper=np.array([1, 1]), alignment=16)


def _solve(offsets, arena, solver="search"):
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    return solve(_two_buffers(), solver, SolveOptions(warm_start=Solution(offsets, arena, "mine"), time_limit=0.1))


def _mixed():
    import numpy as np

    return [np.int64(0), np.uint64(16)]


def _uint_and_plain():
    import numpy as np

    return [np.uint64(0), 16]


@pytest.mark.parametrize("make", [_mixed, _uint_and_plain], ids=["int64+uint64", "uint64+int"])
@pytest.mark.parametrize("solver", ["search", "cpsat"])
def test_a_warm_start_list_of_numpy_integers_numpy_promotes_to_float_is_taken(make, solver):
    """numpy reads [np.int64(0), np.uint64(16)] (and [np.uint64(0), 16]) as float64: the integers were refused as
    "its offsets are float64 [0.0, 16.0], not integers"."""
    assert _solve(make(), 32, solver).arena == 32


@pytest.mark.parametrize("offsets", [[0, 2 ** 64], [0, 2 ** 63], "uint64"], ids=["2**64", "2**63", "uint64-2**63"])
def test_a_warm_start_offset_past_int64_is_refused_naming_it(offsets):
    """2**64 raised a raw OverflowError, 2**63 was called "float64 ... not integers", and a uint64 2**63 wrapped
    around to "placed '1' at negative offset -9223372036854775808"."""
    import numpy as np

    if offsets == "uint64":
        offsets = np.array([0, 2 ** 63], dtype=np.uint64)
    with pytest.raises(memplan.SolverError, match=r"^warm_start is no packing of this problem: its offset \d+ "
                                                  r"\(buffer #1\) is outside int64"):
        _solve(offsets, 32)
