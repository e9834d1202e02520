"""Host work on fixed constants in a program that runs on CUDA, done once on the host, as eager does it.

A module moved to CUDA keeps its plain tensor attributes on the CPU (they are no buffers), and code such
as torchvision's SSD anchor generator works on them on the host every call (``clamp``, ``repeat``,
``arange``, ``cat``) before one ``.to(device)``. The export records those ops with CPU results. Lowered
like the others, their results would be computed on the device, in the arena: not bit for bit eager's
(CUDA divides by a host scalar through its reciprocal, so SSD's anchors moved by an ulp), and not
capturable where an op reads a host tensor (``arange`` refused the CUDA graph).

Such a node, whose every tensor argument is a fixed constant or an earlier folded result, with no
randomness and no writes, is computed once here on the host with the module's own tensors: exactly
eager's op on eager's device. Its launch then copies that value, moved to the device once, into its
planned bytes every call (a device-to-device copy a CUDA graph captures), so the plan and the schedule
stay as they are. A constant changed in place after ``compile`` (its version counter moved) makes the
executor compute every fold again before the next call (``refresh``), as eager would see the change.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HostFold:
    """One node's host result: ``compute(host)`` makes it from the module's tensors and earlier results
    (``host``: tensor id -> host value); ``device`` is its copy on the program's device (None for a view,
    whose bytes are its base's) and ``sources`` the constants it reads directly."""

    node: str
    tid: str
    compute: Callable[[Mapping[str, Any]], Any]
    device: Any
    sources: tuple


def foldable(torch, n, device_type: str) -> bool:
    """Whether FX node ``n`` is host work eager repeats unchanged every call (before its arguments are
    looked at): a CPU result in a CUDA program, one tensor, no randomness, no argument written."""
    op = n.target
    if device_type != "cuda" or not isinstance(op, torch._ops.OpOverload):
        return False
    val = n.meta.get("val")
    if not isinstance(val, torch.Tensor) or val.device.type != "cpu":
        return False
    if torch.Tag.nondeterministic_seeded in op.tags:
        return False
    return not any(a.alias_info is not None and a.alias_info.is_write for a in op._schema.arguments)


def fold(torch, n, tids: Iterable[str], out: str, views: Mapping[str, Any], host: dict[str, Any],
         is_constant: Callable[[str], bool], bind: Callable[[Mapping[str, Any]], tuple],
         is_view: bool) -> HostFold | None:
    """The fold of node ``n`` (result tensor id ``out``) where every tensor it reads is a fixed constant
    on the host (``is_constant``) or an earlier fold's result (in ``host``, which this one joins); None
    where it reads anything else or its host result disagrees with the export's (then it is lowered as
    any other node, on the device). ``bind(values)`` gives the node's (args, kwargs) over ``values``. A
    view (``is_view``) keeps no device copy: its planned bytes are its folded base's."""
    sources = []
    for tid in tids:
        if tid in host:
            continue
        x = views.get(tid)
        if not (is_constant(tid) and isinstance(x, torch.Tensor) and x.device.type == "cpu"):
            return None
        sources.append(x)
    op = n.target

    def compute(values: Mapping[str, Any]) -> Any:   # reads folded results and constants, which lowering never rebinds
        args, kwargs = bind(ChainMap(values, views))
        with torch.no_grad():
            return op(*args, **kwargs)

    result = compute(host)
    val = n.meta["val"]
    planned = views.get(out)
    if (not isinstance(result, torch.Tensor) or result.dtype != val.dtype or tuple(result.shape) != tuple(val.shape)
            or not isinstance(planned, torch.Tensor) or tuple(planned.shape) != tuple(result.shape)):
        return None
    host[out] = result
    device = None if is_view or planned.device.type == "cpu" else result.to(planned.device)
    return HostFold(n.name, out, compute, device, tuple(sources))


def refresh(folds: list[HostFold], versions: list[Any], version_of: Callable[[Any], Any]) -> bool:
    """Compute every fold again, in program order, where a constant one reads changed in place since
    ``versions`` (its version counters, per fold and source, updated here); whether anything changed."""
    now = [[version_of(s) for s in f.sources] for f in folds]
    if now == versions:
        return False
    host: dict[str, Any] = {}
    for f in folds:
        host[f.tid] = f.compute(host)
        if f.device is not None:
            f.device.copy_(host[f.tid])
    versions[:] = now
    return True
