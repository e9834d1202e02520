"""Graph optimisation: stream assignment, issue order, events and memory-budgeted concurrency.

``graph_optimize(graph, max_streams)`` returns a ``Schedule`` that runs the graph on several CUDA
streams with the fewest events; ``memplan.plan(graph, streams=..., memory_budget=...)`` uses it and,
when concurrency costs more memory than the budget allows, gives concurrency back where it buys the
least time per byte (``budget.py``). Baselines (serial, llama.cpp's Q/K/V fork) live in
``baselines.py`` for the benchmark.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from ..errors import UnusedOption, named_options
from .cost import DEFAULT_EVENT_US, CostModel, CostModelLike, node_costs
from .streams import Optimized, optimize

if TYPE_CHECKING:
    from ..graph import Graph
    from ..schedule import Schedule


@named_options
def graph_optimize(graph: Graph, max_streams: int = 4, *, cost_model: CostModelLike | None = None,
                   max_events: int | None = None) -> Schedule:
    """The fastest schedule (simulated) of ``graph`` on at most ``max_streams`` streams (an integer in
    1..1024, the most a plan may declare; never more streams than nodes are used).

    Fusion groups stay consecutive on one stream; events are the fewest happens-before allows and
    are recorded before they are waited. ``max_events`` caps the number of events by giving back
    the concurrency that buys the least time per event; with ``max_streams=1`` there is no cross-stream
    event to cap, so it is ignored with an ``UnusedOption`` warning, as ``plan(streams=1, max_events=N)``
    and ``memplan plan --streams 1 --max-events N`` warn. ``cost_model`` (default ``CostModel()``: graph
    costs, else a roofline, 2 us per event) is what "fastest" is simulated under.
    """
    from ..errors import caller_stacklevel
    from .budget import check_max_events, limit_events

    if max_events is not None:   # before any work: a bad cap was refused only after every candidate was scheduled
        check_max_events(max_events)
    opt = optimize(graph, max_streams, cost_model=cost_model)
    if max_streams == 1 and max_events is not None:
        # (after ``optimize`` checked ``max_streams``: True is refused there, not warned of). It was taken silently,
        # as if the cap had shaped the schedule, while ``plan(streams=1, max_events=N)`` warns
        warnings.warn(UnusedOption(f"max_events={max_events!r} has no effect with max_streams=1: it caps cross-stream "
                                   "events, and one stream has none (the schedule is serial); give max_streams=N "
                                   "(N > 1); ignored"), stacklevel=caller_stacklevel())
        return opt.schedule
    sched = opt.schedule
    if max_events is not None:
        sched = limit_events(graph, opt, max_events).schedule
    return sched


__all__ = ["DEFAULT_EVENT_US", "CostModel", "CostModelLike", "Optimized", "graph_optimize", "node_costs",
           "optimize"]
