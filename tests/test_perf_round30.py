"""Planning speed without changing a plan (session 30): work that decided nothing is not done.

Counted or compared, never timed: each new shortcut must answer exactly what the work it skips would have.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

from memplan.lifetimes import buffer_problem
from memplan.schedule import build_happens_before, schedule_with_events
from memplan.solvers import greedy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_seen_work_is_counted_as_the_seen_sweep_counts_it(data):
    """``_seen_work_within`` says in advance whether ``_sweep_seen`` gives up at a work budget (so a sweep that
    would give up is not run): the same answer at every budget, around the sweep's own total work too."""
    graph = data.draw(graphs())
    order, stream_of = data.draw(schedules(graph))
    problem = buffer_problem(graph, build_happens_before(graph, schedule_with_events(graph, order, stream_of)))
    sparse = greedy._sparse_stream_times(problem)
    if sparse is None:
        return
    sizes = problem.sizes.tolist()
    sweep = problem.sweep_order().tolist()
    inplace_of = {out: inp for out, inp in problem.inplace}
    def gives_up(budget: int) -> bool:
        return not greedy._sweep_seen(problem, sparse, sweep, sizes, [0] * len(sizes), inplace_of, budget)

    lo, hi = 0, 1   # the sweep's total work: the least budget it keeps within
    while gives_up(hi):
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if gives_up(mid) else (lo, mid)
    for budget in {0, lo - 1, lo, lo + 1, 2 * lo} - {-1}:
        assert greedy._seen_work_within(problem, sparse, sweep, sizes, budget) == (not gives_up(budget)), budget
