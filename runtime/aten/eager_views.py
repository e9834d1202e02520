"""The view ops a program runs on a user input, run again on the caller's tensor where eager's could fail.

Why: each call copies its inputs into the export's layout, so the program's ``x.view(-1)`` of a transposed caller
``x``, ``view_as_real(z)`` of a conjugate ``z`` or ``x.detach_()`` of a caller's view ran and returned numbers where
eager raises ("view size is not compatible with input tensor's size and stride", "view_as_real doesn't work on
unresolved conjugated tensors", "Can't detach views in-place"). A view op only reads metadata: running the export's
chain of them from the input's placeholder again on the caller's tensor costs microseconds and fails exactly where
eager's does, and the call is refused naming the node, with eager's message.

Faithful only where nothing eager ran between ``x`` and those ops is missing from the program: a ``contiguous()``
that returned its tensor itself at export records no op (``x.contiguous().view(-1)`` is the program's ``view`` of
``x``), so the probes are made only where the export watched ``forward``'s Python and saw no such identity
(``Program.layout_watched``, ``layout_reads.LAYOUT_IDENTITIES``), and not for a program lowered after the export, whose
decompositions may hold views where eager's composite ops copy (``reshape``)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from . import layout_reads
from .errors import AtenExecutorError

#: at most this many view nodes replayed per input (a call's cost stays bounded on huge programs)
MAX_PROBES = 256


@dataclass(frozen=True)
class Probe:
    """One user input's view nodes: (node name, op, parent index or -1 for the input, other args, kwargs), parents
    first; ``detach`` the name of a ``detach_`` node run on the input itself, or None."""

    tid: str
    steps: tuple[tuple[str, Any, int, tuple, dict], ...]
    detach: str | None


def input_probes(torch: Any, program: Any, is_view_op: Any, is_views_op: Any = None) -> dict[int, Probe]:
    """{user input index: Probe} of each input some view op (``is_view_op``; a multi-view op, ``is_views_op``:
    ``chunk``, ``split``, ``unbind``, and the views taken of its list) or ``detach_`` of the program reads."""
    if not program.layout_watched or any(m in layout_reads.LAYOUT_IDENTITIES for m, _w in program.layout_reads):
        return {}
    if getattr(program, "lowered", False):
        return {}
    nodes = {n.name: n for n in program.exported.graph.nodes if n.op == "placeholder"}
    detach_op = torch.ops.aten.detach_.default
    out: dict[int, Probe] = {}
    for k, (_pos, tid) in enumerate(program.user_inputs):
        root = nodes.get(tid)
        if root is None:
            continue
        steps: list[tuple[str, Any, int, tuple, dict]] = []
        index = {root: -1}
        detach = None
        listed: set = set()   # the multi-view nodes among the steps (their value a list of views)
        frontier = [root]
        while frontier and len(steps) < MAX_PROBES:
            node = frontier.pop(0)
            for user in node.users:
                if user.op != "call_function" or not user.args or user.args[0] is not node or user in index:
                    continue
                if user.target is detach_op and index[node] == -1:   # (the input, or an in-place op of it)
                    detach = user.name
                    continue
                if _writes_and_returns_first(user.target):   # (``x.add_(1).view(-1)``: the op returns ``x`` itself,
                    index[user] = index[node]                 # the view runs on it; never replayed: a write)
                    frontier.append(user)
                    continue
                rest = (*user.args[1:], *user.kwargs.values())
                if any(isinstance(a, torch.fx.Node) for a in rest):
                    continue
                if user.target is operator.getitem:   # (one view of a multi-view op's list, which a step holds)
                    if node in listed and isinstance(user.args[1], int):
                        index[user] = len(steps)
                        steps.append((user.name, operator.getitem, index[node], (user.args[1],), {}))
                        frontier.append(user)
                    continue
                if is_views_op is not None and is_views_op(user.target):
                    listed.add(user)
                elif not is_view_op(user.target):
                    continue
                index[user] = len(steps)
                steps.append((user.name, user.target, index[node], tuple(user.args[1:]), dict(user.kwargs)))
                frontier.append(user)
        if steps or detach:
            out[k] = Probe(tid, tuple(steps), detach)
    return out


def _writes_and_returns_first(target: Any) -> bool:
    """Whether ATen op ``target`` writes its first argument in place and returns that very tensor (``add_``,
    ``mul_``, ``clamp_``): its result is the input itself, as the caller's tensor in eager."""
    schema = getattr(target, "_schema", None)
    if schema is None or len(schema.returns) != 1 or not schema.arguments:
        return False
    ret, first = schema.returns[0].alias_info, schema.arguments[0].alias_info
    return (ret is not None and first is not None and first.is_write and ret.is_write
            and ret.before_set == first.before_set)


def check_inputs(torch: Any, probes: dict[int, Probe], tensors: list, slots: list) -> None:
    """Refuse a call whose caller's tensor makes one of the program's view ops fail as eager's would: replayed
    only for an input laid out otherwise than its arena slot (strides of its dimensions of more than one element,
    a conjugate or negative bit) or, for ``detach_``, a caller's view."""
    for k, probe in probes.items():
        x, slot = tensors[k], slots[k]
        if not isinstance(x, torch.Tensor):
            continue
        if probe.detach is not None and x._is_view():
            raise AtenExecutorError(f"input {probe.tid!r} is a view of another tensor, and this node "
                                    "detaches it in place, which eager refuses (\"Can't detach views in-place\"): "
                                    "pass a tensor that is no view (.clone()), or detach() out of place in forward",
                                    probe.detach, "aten.detach_.default")
        laid_otherwise = (x.is_conj() or x.is_neg()
                          or any(n > 1 and a != b for n, a, b in zip(x.shape, x.stride(), slot.stride())))
        if not probe.steps or not laid_otherwise:
            continue
        values: list[Any] = []
        with torch.no_grad():
            for name, op, parent, args, kwargs in probe.steps:
                try:
                    values.append(op(x if parent < 0 else values[parent], *args, **kwargs))
                except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise AtenExecutorError(
                        f"input {probe.tid!r} has strides {tuple(x.stride())} (the export's {tuple(slot.stride())})"
                        f"{', conjugate' if x.is_conj() else ''}{', negative' if x.is_neg() else ''}, on which "
                        f"eager's {op} fails: {first} (pass a tensor laid out as at export, or make forward's "
                        "view a reshape)", name, str(op)) from None
