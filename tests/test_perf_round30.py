"""Planning speed without changing a plan (session 30): work that decided nothing is not done.

Counted or compared, never timed: each new shortcut must answer exactly what the work it skips would have.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

from memplan.lifetimes import buffer_problem
from memplan.schedule import build_happens_before, schedule_with_events
from memplan.solvers import greedy
from memplan.solvers.exact_pairs import inplace_targets


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
    inplace_of = inplace_targets(problem)
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


# ---- memory_budget's candidate pool: the same replays and streams, with less bookkeeping ----


def _fanout_opt(n: int, seed: int):
    from memplan.generators import fanout_join
    from memplan.optimize.budget import unit_streams
    from memplan.optimize.streams import optimize

    g = fanout_join(n, max_width=6, seed=seed)[0]
    opt = optimize(g, 4)
    return g, opt, unit_streams(opt, opt.schedule, g)[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_node_streams_are_expands(seed):
    """``budget._node_streams`` (numpy) gives ``expand``'s streams for any unit assignment: renumbered by first use
    in the fixed order, with gaps and stream ids out of order too."""
    import random

    from memplan.optimize.budget import _node_streams
    from memplan.optimize.streams import expand

    _, opt, ustream = _fanout_opt(150, seed)
    U = opt.units
    rng = random.Random(seed)
    for assign in (ustream, [0] * len(ustream), [rng.choice([7, 3, 0, 12]) for _ in ustream]):
        assert _node_streams(U, assign).tolist() == expand(U, U.fixed_order, assign)[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replays_without_windows_branch_as_with_them(seed):
    """A ``Replay`` that keeps no windows (``windows=False``, the pool's) and its branches give the events, event
    pairs and makespan of the default one's; ``rerun_window`` refuses it rather than read windows it lacks."""
    import random

    from memplan.optimize.events import Replay
    from memplan.optimize.streams import expand

    g, opt, ustream = _fanout_opt(200, seed)
    order, streams = expand(opt.units, opt.units.fixed_order, ustream)
    rng = random.Random(seed)
    N = len(order)
    p1, p2 = sorted(rng.sample(range(1, N), 2))
    s1 = streams[:p1] + [rng.randrange(4) for _ in range(N - p1)]
    s2 = s1[:p2] + [rng.randrange(4) for _ in range(N - p2)]
    runs = []
    for windows in (True, False):
        base = Replay(g, order, streams, opt.cost, opt.event_us, [p1, p2], record=True, windows=windows)
        b1 = base.branch(p1, s1, [p2])
        b2 = b1.branch(p2, s2)
        runs.append([(r.events, r.makespan, r.pairs) for r in (base, b1, b2)])
        assert bool(base.events_at) == windows and bool(b2.events_at) == windows
    assert runs[0] == runs[1]
    with pytest.raises(AssertionError, match="windows"):
        Replay(g, order, streams, opt.cost, opt.event_us, [p1], windows=False).rerun_window(p1, N, streams[p1:])
