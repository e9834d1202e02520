"""Estimated run time of a plan (or schedule) under a cost model: the makespan the scheduler optimises.

Why a simulator: speedups from concurrency must be judged without a GPU, by the same rules for every
schedule (ours, the serial one, llama.cpp's Q/K/V fork). The model is the CUDA stream model: each
stream runs its nodes in issue order; a node starts when its stream is free and every event it waits
on has been recorded (its ``after`` node ended) plus the event latency ``event_us``. The serial
makespan is the sum of all node costs (one stream, no events). Deterministic and O(nodes + events).

``simulate(graph, plan)`` is the API the trace/visualisation tools use.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PlanFormatError, ScheduleError, named_fields, named_options
from .graph import Graph, check_graph
from .ops import COPY_OP
from .optimize.cost import EVENT_US_RULE, CostModelLike, is_event_us, node_costs
from .optimize.timeline import simulate_indices
from .planfile import Plan, _json_shown, check_plan_for
from .schedule import Schedule, check_schedule, schedule_of
from .values import by_value, derived


@by_value
@named_fields
@dataclass(frozen=True)
class Simulation:
    """Per-node start/end times (microseconds, keyed by node id) and the totals."""

    start_us: dict[str, float]
    end_us: dict[str, float]
    makespan_us: float
    serial_us: float
    stream_of: dict[str, int]
    num_events: int = 0
    event_us: float = 0.0

    @property
    @derived(ScheduleError, "serial_us", "makespan_us")
    def speedup(self) -> float:
        """Serial makespan over this one (1.0 for a serial plan)."""
        return self.serial_us / self.makespan_us if self.makespan_us > 0 else 1.0


@named_options
def simulate(graph: Graph, plan: Plan | Schedule, cost_model: CostModelLike | None = None) -> Simulation:
    """Simulate ``plan`` (a Plan or a Schedule) of ``graph``; raise ScheduleError on a bad order, and
    ``PlanMismatch`` for a Plan made for another graph (safety is not checked: ``verify`` does that).

    Without a ``cost_model``: the default one, with the event latency the plan was scheduled for
    (its solver block's ``schedule.event_us``) when the plan records one, so the makespan reproduces.
    """
    from .optimize.cost import CostModel, check_cost_model, event_latency

    check_graph(graph, "simulate")
    if not isinstance(plan, (Plan, Schedule)):
        raise PlanFormatError(f"simulate needs a memplan Plan or Schedule, not {type(plan).__name__} "
                              "(memplan.load_plan or memplan.plan_from_dict reads one)")
    if isinstance(plan, Plan):
        check_plan_for(graph, plan)  # a plan made for another graph is refused, not simulated
    model = check_cost_model(cost_model) if cost_model is not None else CostModel(**_recorded_event_us(plan))
    schedule = plan if isinstance(plan, Schedule) else schedule_of(plan)
    # a bad order (a reader issued before its writer, an event waited before it is recorded, a stream id
    # outside 0..1023) has no meaningful makespan: it was simulated, and a reversed order "ran" in the serial time
    check_schedule(graph, schedule)
    order, streams = list(schedule.order), list(schedule.streams)
    idx = graph.node_index
    order_i = [idx[n] for n in order]
    waits = [(idx[e.after], idx[e.before]) for e in schedule.events]
    cost = node_costs(graph, model)
    start, end = simulate_indices(order_i, streams, waits, cost, event_latency(model))
    nodes = graph.nodes
    stream_of = {nodes[n].id: int(s) for n, s in zip(order_i, streams)}
    return Simulation(
        start_us={nodes[n].id: start[n] for n in order_i},
        end_us={nodes[n].id: end[n] for n in order_i},
        makespan_us=max(end, default=0.0),
        serial_us=_serial_us(graph, plan, cost, order_i),
        stream_of=stream_of,
        num_events=len(waits),
        event_us=event_latency(model),
    )


def _serial_us(graph: Graph, plan: Plan | Schedule, cost: list[float], order_i: list[int]) -> float:
    """The serial makespan: every node on one stream of one device, summed in the schedule's issue order. A
    split plan's transfers (``COPY`` nodes between two devices) are no part of that run, so they are left out:
    counting them made ``memplan simulate``'s serial time of a split llama 30 us longer than the one the plan
    reports (``solver.split.serial_makespan_us``) and called a pipeline slower than one device a speedup of x1.23.
    A ``COPY`` within one device (the graph's own, or an earlier split's in a graph split again) is part of it:
    leaving out every ``COPY`` made the serial time 7 us shorter than the plan's for a graph with a 7 us copy.

    In issue order, as the one stream runs them, so a one-stream schedule's makespan *is* its serial time and
    its speedup exactly 1.0: summed in the listed order, float rounding made a serial plan in another order
    (a low-memory order) 262146.3533108632 us against a serial 262146.35331086325 us, a "slowdown"."""
    moved = _transfers(graph, plan) if isinstance(plan, Plan) and plan.devices > 1 else set()
    t = 0.0
    for n in order_i:
        if n not in moved:
            t += cost[n]
    return t


def _transfers(graph: Graph, plan: Plan) -> set[int]:
    """The ``COPY`` nodes of a split plan whose input and output lie on different devices (by the plan's
    ``tensors[].device``): the split's transfers, which a one-device run does not make."""
    dev = {tid: d for (tid, _, _), d in zip(plan.tensors, plan.tensor_devices)}
    return {n for n, node in enumerate(graph.nodes)
            if node.op == COPY_OP and len(node.inputs) == len(node.outputs) == 1
            and dev.get(node.inputs[0]) != dev.get(node.outputs[0])}


#: what the refusal of a recorded latency that is none advises (``check_recorded_event_us``): the library's way round
RECORDED_ADVICE = "pass the latency to simulate it anyway (CostModel(event_us=...), CLI --event-us)"


def _recorded_event_us(plan: Plan | Schedule, source: str | None = None,
                       advice: str = RECORDED_ADVICE) -> dict[str, float]:
    """The event latency the plan was scheduled with: its ``schedule`` block's, or a split plan's ``split``
    block's (without it a split plan made with ``--event-us 20`` was simulated at the default 2 us). ``source``
    (the plan's file) and ``advice`` word the refusal of one that is no latency (``check_recorded_event_us``)."""
    solver = plan.solver if isinstance(plan, Plan) else {}
    key = "schedule" if "schedule" in solver else "split"
    block = solver.get(key)
    e = block.get("event_us") if isinstance(block, dict) else None
    if e is None:
        return {}
    if isinstance(e, (int, float)) and not isinstance(e, bool) and is_event_us(e):
        return {"event_us": float(e)}
    # a hand-edited -1, "x" or 1e16 was simulated at the default 2 us with nothing said but "at 2 us"; quoted as the
    # file spells it (``_json_shown``): ``true`` was quoted 'True', and the string "5" as '5', as the number 5 was
    raise PlanFormatError(f"{source + ': ' if source else ''}plan field solver.{key}.event_us {_json_shown(e)} is not "
                          f"{EVENT_US_RULE}; {advice}")


def check_recorded_event_us(plan: Plan, source: str, advice: str) -> None:
    """PlanFormatError naming the file ``source`` where ``plan`` records an event latency that is none (a hand-edited
    ``solver.schedule.event_us`` of -1), with the way round that the command at hand has (``advice``). Why: the
    commands that simulate a plan at its recorded latency (``memplan simulate`` without ``--event-us``, ``trace``,
    ``draw --time``) refused such a plan in ``simulate``'s words, naming no file and advising "CLI --event-us", an
    option ``trace`` and ``draw`` do not have."""
    _recorded_event_us(plan, source, advice)
