"""Cost model for the scheduler and the simulator: how long a node runs, what an event costs.

Why a model at all: stream assignment trades kernel overlap against synchronisation, and neither can
be judged without durations. A node's ``cost`` from the graph (microseconds) always wins; otherwise
the model estimates it with a roofline from the bytes the node touches (and the FLOPs of a matrix
product when tensor ``shape`` attrs say what they are), with a per-kernel floor standing in for
launch overhead. Anything with ``event_us`` and ``node_us(graph, n)`` can replace the default
(``CostModelLike``), so a measured table of kernel times plugs in the same way.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from ..errors import (
    ScheduleError,
    add_note,
    as_int,
    mark_callers,
    named_fields,
    named_method,
    not_an_index,
    plain_bool,
)
from ..errors import short_repr as _short
from ..graph import MAX_COST_US, Graph
from ..ops import FLOP_PER_US, HBM_BYTES_PER_US, KERNEL_FLOOR_US, VIEW_OPS
from ..values import by_value

#: the default latency of one cross-stream dependency (record + wait), microseconds
DEFAULT_EVENT_US = 2.0
#: what an event latency must be, in the words of every refusal: a cost model's ``event_us`` and the CLI's
#: ``--event-us`` (``argtypes.microseconds``) share this rule and text (the CLI stopped at 1e9, the library at
#: MAX_COST_US, the cap of a node's cost that keeps every sum of latencies finite)
EVENT_US_RULE = f"a finite non-negative number of microseconds (at most {MAX_COST_US:g})"


def total_us(costs: Iterable[float]) -> float:
    """The sum of ``costs`` (floats), added one at a time from the left, as ``sum()`` did before Python 3.12.

    Why not ``sum()``: Python 3.12 made ``sum()`` of floats compensated (Neumaier), so one graph got other totals
    on 3.11 and 3.12 and the plan JSON differed between them (costs 0.0005, 0.7, 0.0005, 0.0005, 1.1: a serial
    makespan of 1.8014999999999999 us on 3.11, 1.8015 on 3.12, written 1.801 and 1.802). A plain left fold is the
    same IEEE additions on every version and machine, and 3.11's own result, so no plan planned there changes."""
    total = 0.0
    for c in costs:
        total += c
    return total


def is_event_us(us: float) -> bool:
    """Whether the float ``us`` is an event latency by ``EVENT_US_RULE`` (NaN is not)."""
    return 0 <= us <= MAX_COST_US


@runtime_checkable
class CostModelLike(Protocol):
    """What the scheduler and simulator need from a cost model."""

    event_us: float

    def node_us(self, graph: Graph, n: int) -> float:
        """Run time of node index ``n`` in microseconds (finite, >= 0)."""
        ...


@named_fields
@by_value
@dataclass(frozen=True)
class CostModel:
    """The default model: graph ``cost`` when given, else an H100-like roofline estimate.

    ``event_us`` is added to every cross-stream dependency the simulator sees: the waiting node
    starts no earlier than ``event_us`` after the recorded node ends (the device-side latency of
    ``cudaStreamWaitEvent``; recording itself is taken to be free for the recording stream).
    """

    event_us: float = DEFAULT_EVENT_US
    hbm_bytes_per_us: float = HBM_BYTES_PER_US
    flop_per_us: float = FLOP_PER_US
    floor_us: float = KERNEL_FLOOR_US
    use_graph_costs: bool = True

    def __post_init__(self) -> None:
        """ScheduleError naming a field no run time can come from: a rate of 0 divided by zero deep in the
        scheduler, and a negative or NaN rate or floor gave negative or meaningless run times silently.
        ``event_us`` is held to ``EVENT_US_RULE`` here too (``check_cost_model`` checks it where any model comes in:
        other models have one): ``CostModel(event_us=-1)`` (or NaN, "1", True) was made without a word and refused
        only by the first ``plan``/``simulate`` given it, far from the line that made it."""
        e = self.event_us
        if isinstance(e, bool) or not isinstance(e, numbers.Real) or not is_event_us(_float(e)):
            raise ScheduleError(f"CostModel: event_us {_short(e)} is not {EVENT_US_RULE}")
        for name in ("hbm_bytes_per_us", "flop_per_us"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < _float(v) < math.inf:
                raise ScheduleError(f"CostModel: {name} {_short(v)} is not a finite positive rate")
        f = self.floor_us
        if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 <= _float(f) <= MAX_COST_US:
            raise ScheduleError(f"CostModel: floor_us {_short(f)} is not a finite non-negative number of "
                                f"microseconds (at most {MAX_COST_US:g})")
        object.__setattr__(self, "use_graph_costs", plain_bool(self.use_graph_costs))   # (np.True_ as True)
        if not isinstance(self.use_graph_costs, bool):
            raise ScheduleError(f"CostModel: use_graph_costs must be True or False, not {_short(self.use_graph_costs)}")
        for name in ("event_us", "hbm_bytes_per_us", "flop_per_us", "floor_us"):
            object.__setattr__(self, name, _plain_real(getattr(self, name)))

    @named_method
    def node_us(self, graph: Graph, n: int) -> float:
        try:
            if n < 0:   # (it would wrap around to another node: ``errors.not_an_index``)
                raise IndexError
            node = graph.nodes[n]
        except (TypeError, IndexError, ValueError, AttributeError):
            if not isinstance(graph, Graph):
                raise ScheduleError(f"CostModel.node_us needs a memplan Graph, not {type(graph).__name__}") from None
            raise not_an_index(ScheduleError, "CostModel.node_us: node", n, len(graph.nodes)) from None
        if self.use_graph_costs and node.cost is not None:
            return float(node.cost)
        if node.op.upper() in VIEW_OPS:
            return 0.0
        touched = set(graph.node_inputs[n]) | set(graph.node_outputs[n])
        nbytes = sum(graph.tensors[t].size for t in touched)
        flops = _matmul_flops(graph, n) if node.op.upper() == "MUL_MAT" else 0.0
        # capped like a graph's own costs, so that no shape attribute makes a sum of costs infinite
        return min(max(flops / self.flop_per_us, nbytes / self.hbm_bytes_per_us, self.floor_us), MAX_COST_US)


def _matmul_flops(graph: Graph, n: int) -> float:
    """2*M*N*K when shapes are known (ggml: out = b @ a^T, K = a's last dim), else 0."""
    ins = graph.node_inputs[n]
    outs = graph.node_outputs[n]
    if not ins or not outs:
        return 0.0
    a_dims = _dims(graph.tensors[ins[0]].attrs.get("shape"))
    o_dims = _dims(graph.tensors[outs[0]].attrs.get("shape"))
    if not a_dims or not o_dims or a_dims[-1] == 0:   # (K 0: no multiply-add; a huge M * N then made inf * 0, NaN)
        return 0.0
    try:
        return 2.0 * float(math.prod(o_dims)) * a_dims[-1]
    except OverflowError:   # (dims whose product no float holds: a shape no tensor has)
        return 0.0


def _dims(shape: object) -> list[int] | None:
    """A ``shape`` attr's dimensions when it is a list of non-negative integers (a tuple or a 1-D numpy array of
    them from code too), else None: a shape the cost model does not know. ``attrs`` are free-form (no graph is
    refused for one), so what is no shape is read as none, not misread. Why: each dim went through ``int()``, so a
    shape of ``[-100000, -100000]`` (a negative product squared positive) made a MUL_MAT an estimated 0.2 s where
    its bytes say 2 us, ``[1.5, 4096]`` and ``[true, 4096]`` were read as 1 row, ``["64", "4096"]`` as numbers,
    and the string ``"4096"`` as the dims 4, 0, 9, 6; the scheduler balanced streams and ``simulate`` reported
    makespans by those misreadings without a word."""
    if not isinstance(shape, (list, tuple)):
        if getattr(shape, "ndim", None) != 1 or not callable(getattr(shape, "tolist", None)):
            return None   # (a set has no order, a string's characters are no dims, a mapping's keys neither)
        try:
            shape = shape.tolist()   # a 1-D numpy array of dims
        except Exception:   # (a hostile ``tolist`` of the caller's)
            return None
        if not isinstance(shape, list):
            return None
    dims = [as_int(d) for d in shape]
    if any(d is None or d < 0 for d in dims):
        return None
    return dims


_T = TypeVar("_T")


def from_hook(model: object, hook: str, what: str, get: Callable[[], _T]) -> _T:
    """``get()``, which runs a user cost model's ``hook`` (``node_us``, ``event_us``: a method, a property, a
    returned number's ``__float__``). What it raises propagates as itself with a note naming the hook, the
    model and ``what`` it was asked (``add_note``, as for a progress callback): it came from the caller's own
    code, so it keeps its type and traceback and every ``except`` around ``plan()`` still catches it; bare,
    nothing said which hook of which model raised, and an ``event_us`` property's error said nothing at all."""
    try:
        return get()
    except Exception as exc:
        add_note(exc, f"(raised by {type(model).__name__}.{hook} {what})")
        mark_callers(exc)
        raise


def _has(model: object, name: str) -> bool:
    """Whether ``model`` has attribute ``name``, without running a property (``inspect.getattr_static``):
    the protocol's ``isinstance`` ran the ``event_us`` property, whose error escaped bare from the check, and
    whose AttributeError made a model "have no event_us". A dynamic attribute (``__getattr__``) is asked."""
    try:
        inspect.getattr_static(model, name)
        return True
    except AttributeError:
        return from_hook(model, name, "(looked up)", lambda: hasattr(model, name))


def check_cost_model(model: object) -> CostModelLike:
    """``model`` (None: the default ``CostModel()``) if it is a cost model whose ``event_us`` is a number
    in ``0 .. MAX_COST_US``, else ScheduleError naming it. Checked where a model comes in: a NaN or
    infinite latency would otherwise reach the plan's report as ``NaN``, which is not JSON (the plan file
    could not be read back)."""
    if model is None:
        return CostModel()
    if isinstance(model, type) and inspect.isfunction(inspect.getattr_static(model, "node_us", None)):
        # the class (``cost_model=CostModel``) has both names too, but its ``node_us`` then misses ``self``: a
        # raw TypeError ("missing 1 required positional argument: 'n'") named no option. (A class whose
        # ``node_us`` is a static or class method is a model as it is.)
        raise ScheduleError(f"cost_model must be a cost model object, not the class {model.__name__} "
                            f"(give {model.__name__}(...))")
    if not (_has(model, "event_us") and _has(model, "node_us")
            and from_hook(model, "node_us", "(looked up)", lambda: callable(model.node_us))):
        raise ScheduleError(f"cost_model must have event_us and node_us(graph, n) (a memplan.CostModel), "
                            f"not {type(model).__name__} {_short(model)}")
    event_latency(model)
    return model


def event_latency(model: CostModelLike) -> float:
    """``model.event_us`` as a float, or ScheduleError unless it is a number in ``0 .. MAX_COST_US``
    (the cap of a node's cost: every sum of latencies stays finite). Read once per call: what a user's
    property raises carries a note naming it (``from_hook``)."""
    what = "(the cost model's cross-stream event latency)"
    e = from_hook(model, "event_us", what, lambda: model.event_us)
    # any real number but a bool: numpy scalars (latencies from measurements) included
    us = math.nan if isinstance(e, bool) or not isinstance(e, numbers.Real) else from_hook(
        model, "event_us", what, lambda: _float(e))
    if not is_event_us(us):
        raise ScheduleError(f"cost model: event_us {_short(e)} is not {EVENT_US_RULE}")
    return us


def node_costs(graph: Graph, model: CostModelLike | None = None) -> list[float]:
    """Every node's run time under ``model`` (default ``CostModel()``), by node index.

    An exception a user's ``node_us`` raises propagates as itself, with a note naming the node being costed
    (``add_note``: shown under the traceback): it came from the caller's own code, so it keeps its type and
    traceback, and every ``except KeyError:`` around ``plan()`` still catches it. Wrapping it in a memplan error
    would have named the node in the message but changed what callers catch; bare, nothing said which node."""
    model = model if model is not None else CostModel()
    out = []
    for n in range(len(graph.nodes)):
        what = f"costing node {_short(graph.nodes[n].id)}, index {n}, of graph {_short(graph.name)}"
        raw = from_hook(model, "node_us", what, lambda: model.node_us(graph, n))   # noqa: B023 (called at once)
        us = from_hook(model, "node_us", what, lambda: _microseconds(raw))   # noqa: B023 (its result's __float__)
        if us is None:
            raise ScheduleError(f"cost model gave node {graph.nodes[n].id!r} the run time {_short(raw)} (expected "
                                f"a number of microseconds in 0..{MAX_COST_US:g})")
        out.append(us)
    return out


def _plain_real(v):
    """``v`` as a plain int or float where it is a number of another class (an int or float subclass, a numpy
    scalar), else ``v`` itself (plain ones, and what no check here has judged yet: ``event_latency`` names it).
    Why: ``node_us`` divides by the rates in Python, and a float subclass's own ``__rtruediv__`` (taken before
    ``float``'s) made every estimated run time, and so the schedule, whatever the class said, while its value,
    the number the model shows, looked right. Plain values keep their type, so a model's repr is unchanged."""
    if type(v) is int or type(v) is float or isinstance(v, bool) or not isinstance(v, numbers.Real):
        return v
    i = as_int(v)
    if i is not None:
        return i
    return float.__float__(v) if isinstance(v, float) else _float(v)


def _float(v: numbers.Real) -> float:
    """``float(v)``, or infinity for an integer too large for a float (``10**400``: OverflowError), which
    every range check here then refuses by name."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _microseconds(raw) -> float | None:
    """``raw`` as a run time in 0 .. MAX_COST_US, or None. Anything ``float()`` takes counts (numpy scalars
    and 0-d arrays, ``Decimal``: a user's cost model may compute in any of them) but a string or a bool,
    which ``float()`` would turn into a number nobody meant; 1e308 made the makespans infinite (a plan whose
    JSON could not be written)."""
    if isinstance(raw, (bool, str, bytes)):
        return None
    try:
        us = float(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return us if 0 <= us <= MAX_COST_US else None
