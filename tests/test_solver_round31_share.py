"""A time limit shared out over a plan's problems never becomes 0 seconds (which the options refuse)."""
import pytest

import memplan
from memplan.examples import qkv_attention
from memplan.solvers import SolveOptions, share_seconds

TINY = 5e-324   # the smallest positive float: half of it rounds to 0.0


def test_share_is_positive_and_exact_where_it_can_be():
    assert share_seconds(TINY, 2) == TINY
    assert share_seconds(10.0, 4) == 2.5
    SolveOptions(time_limit=share_seconds(TINY, 7))   # a valid limit


@pytest.mark.parametrize("solver", ["search", "auto"])
@pytest.mark.parametrize("kw", [dict(devices=2), dict(streams="auto", memory_budget=10**9)])
def test_the_smallest_limit_plans_over_several_problems(solver, kw):
    """devices=2 split 5e-324 into two shares of 0.0: ``SolverError: time_limit must be ... above 0 ..., not 0.0``,
    naming a value the caller never gave."""
    p = memplan.plan(qkv_attention(), solver=solver, time_limit=TINY, **kw)
    assert p.arena_bytes >= p.lower_bound_bytes
