"""The plan document (``memplan.plan/1``) as a plain dataclass, and its exact JSON form.

A Plan is string-keyed, like the JSON, so it can be loaded and checked without the planner that
made it. ``to_json`` is canonical (fixed key order, no wall-clock fields unless asked for), so the
same input and options give byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import PlanFormatError

PLAN_FORMAT = "memplan.plan/1"
#: solver fields that vary run to run; kept out of the JSON unless timings are asked for
TIMING_FIELDS = ("seconds",)


@dataclass(frozen=True)
class Plan:
    graph: str
    alignment: int
    arena_bytes: int
    lower_bound_bytes: int
    streams: int
    order: tuple[tuple[str, int], ...]
    events: tuple[tuple[str, str], ...]
    tensors: tuple[tuple[str, int | None, int], ...]
    solver: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: multi-device plans (docs/format.md "Multi-device plans"): the device count, the device of each
    #: ``order`` entry and of each ``tensors`` entry (parallel tuples), and each device's arena bytes.
    #: Emitted only when ``devices > 1``, so single-device plans keep their exact bytes.
    devices: int = 1
    node_devices: tuple[int, ...] = ()
    tensor_devices: tuple[int, ...] = ()
    device_arena_bytes: tuple[int, ...] = ()

    @property
    def ratio(self) -> float:
        """Arena over lower bound (1.0 is optimal for this schedule)."""
        return self.arena_bytes / self.lower_bound_bytes if self.lower_bound_bytes else 1.0

    def offsets(self) -> dict[str, int | None]:
        return {tid: off for tid, off, _ in self.tensors}

    def stream_of(self) -> dict[str, int]:
        return dict(self.order)

    def to_dict(self, *, timings: bool = False) -> dict[str, Any]:
        solver = {k: v for k, v in self.solver.items() if timings or k not in TIMING_FIELDS}
        doc = dict(self.extra)
        doc.update({
            "format": PLAN_FORMAT,
            "graph": self.graph,
            "alignment": self.alignment,
            "arena_bytes": self.arena_bytes,
            "lower_bound_bytes": self.lower_bound_bytes,
            "streams": self.streams,
            "order": [{"node": n, "stream": s} for n, s in self.order],
            "events": [{"after": a, "before": b} for a, b in self.events],
            "tensors": [{"id": t, "offset": o, "size": s} for t, o, s in self.tensors],
            "solver": solver,
        })
        if self.devices > 1:
            doc = _with_devices(doc, self)
        return doc

    def to_json(self, *, timings: bool = False) -> str:
        return json.dumps(self.to_dict(timings=timings), indent=1, sort_keys=False) + "\n"

    def save(self, path: str, *, timings: bool = False) -> None:
        from .io import atomic_write_text

        atomic_write_text(path, self.to_json(timings=timings))


def plan_from_dict(doc: Any, *, source: str = "plan") -> Plan:
    """Parse a plan document, rejecting structural problems (the verifier judges safety)."""
    if not isinstance(doc, dict):
        raise PlanFormatError(f"{source}: top level must be a JSON object")
    if doc.get("format") != PLAN_FORMAT:
        raise PlanFormatError(f"{source}: unknown format {doc.get('format')!r} (expected {PLAN_FORMAT!r})")

    def need(key: str, typ: type | tuple[type, ...]) -> Any:
        v = doc.get(key)
        if not isinstance(v, typ) or isinstance(v, bool):
            raise PlanFormatError(f"{source}: field {key!r} is missing or not a {getattr(typ, '__name__', typ)}")
        return v

    # each entry named by list and index (and its node or tensor), with the file name, before parsing
    for key, ids, ints in (("order", ("node",), ("stream",)), ("events", ("after", "before"), ()),
                           ("tensors", ("id",), ("offset", "size"))):
        for i, e in enumerate(need(key, list)):
            if not isinstance(e, dict):
                raise PlanFormatError(f"{source}: {key}[{i}] is not an object")
            for f in ids + ints:
                if f not in e:
                    raise PlanFormatError(f"{source}: {key}[{i}] has no {f!r}")
            for f in ids:
                if not isinstance(e[f], str):
                    raise PlanFormatError(f"{source}: {key}[{i}]: {f!r} is not a string ({e[f]!r})")
            for f in ints:
                v = e[f]
                if not (v is None and f == "offset") and (not isinstance(v, int) or isinstance(v, bool)):
                    raise PlanFormatError(f"{source}: {key}[{i}] ({e[ids[0]]!r}): {f!r} is not an integer ({v!r})")
    try:
        order = tuple((str(e["node"]), _int(e["stream"], f"stream of {e['node']!r}")) for e in need("order", list))
        events = tuple((str(e["after"]), str(e["before"])) for e in need("events", list))
        tensors = tuple(
            (str(e["id"]), None if e["offset"] is None else _int(e["offset"], f"offset of {e['id']!r}"),
             _int(e["size"], f"size of {e['id']!r}"))
            for e in need("tensors", list)
        )
    except (KeyError, TypeError) as exc:
        raise PlanFormatError(f"{source}: malformed order/events/tensors entry (missing {exc})") from None
    known = {"format", "graph", "alignment", "arena_bytes", "lower_bound_bytes", "streams", "order",
             "events", "tensors", "solver", "devices", "device_arena_bytes"}
    devices, node_devices, tensor_devices, device_arena = _read_devices(doc, source)
    return Plan(
        graph=str(doc.get("graph", "")),
        alignment=need("alignment", int),
        arena_bytes=need("arena_bytes", int),
        lower_bound_bytes=need("lower_bound_bytes", int),
        streams=need("streams", int),
        order=order,
        events=events,
        tensors=tensors,
        solver=doc.get("solver") if isinstance(doc.get("solver"), dict) else {},
        extra={k: v for k, v in doc.items() if k not in known},
        devices=devices, node_devices=node_devices, tensor_devices=tensor_devices,
        device_arena_bytes=device_arena,
    )


def _with_devices(doc: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """``doc`` with the multi-device fields: ``devices`` and ``device_arena_bytes`` after ``streams``,
    a ``device`` in every order and tensor entry (a missing one is written as -1, which verify rejects)."""
    nd, td = plan.node_devices, plan.tensor_devices
    for k, e in enumerate(doc["order"]):
        e["device"] = nd[k] if k < len(nd) else -1
    for k, e in enumerate(doc["tensors"]):
        e["device"] = td[k] if k < len(td) else -1
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "streams":
            out["devices"] = plan.devices
            out["device_arena_bytes"] = list(plan.device_arena_bytes)
    return out


def _read_devices(doc: dict[str, Any], source: str):
    """The multi-device fields of a plan document (defaults: one device, nothing per entry)."""
    devices = doc.get("devices", 1)
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise PlanFormatError(f"{source}: field 'devices' is not a positive integer ({devices!r})")
    if devices == 1:
        return 1, (), (), ()
    arenas = doc.get("device_arena_bytes")
    if not isinstance(arenas, list) or len(arenas) != devices:
        raise PlanFormatError(f"{source}: field 'device_arena_bytes' must list {devices} byte counts")
    device_arena = tuple(_int(a, f"device_arena_bytes[{d}]") for d, a in enumerate(arenas))
    try:
        node_devices = tuple(_int(e["device"], f"device of order entry {e.get('node')!r}") for e in doc["order"])
        tensor_devices = tuple(_int(e["device"], f"device of tensor {e.get('id')!r}") for e in doc["tensors"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise PlanFormatError(f"{source}: a multi-device plan needs a 'device' in every order and tensor entry "
                              f"(missing {exc})") from None
    return devices, node_devices, tensor_devices, device_arena


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise PlanFormatError(f"plan: {what} is not an integer ({v!r})")
    return v
