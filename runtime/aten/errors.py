"""The ATen executor's one error type: a ``memplan.errors.MemplanError`` that names the node and op.

It derives from ``MemplanError`` so the CLI and callers handle it like any other memplan failure.
"""

from __future__ import annotations

from typing import Any

from memplan.errors import BudgetError, MemplanError


class AtenExecutorError(MemplanError):
    """The executor cannot run a node (an op it cannot place, a view torch lays out differently than the
    plan, a non-tensor value it cannot reproduce), or a call's inputs do not match the export."""

    def __init__(self, message: str, node: str | None = None, op: str | None = None):
        self.node, self.op = node, op
        where = f"node {node!r} ({op}): " if node is not None else ""
        super().__init__(where + message)


class ArenaOutOfMemory(AtenExecutorError, BudgetError, MemoryError):
    """The device cannot hold the plan's arena (``runtime.aten.layout.aligned_arena``): the message names the
    bytes, the device and what it holds. A ``BudgetError`` and a ``MemoryError``, as the pycuda executors'
    ``DeviceOutOfMemory`` is. Why: a given plan's ``arena_bytes`` of 2**60 (verify takes any arena at least its
    tensors') was torch's raw "DefaultCPUAllocator: can't allocate memory" RuntimeError from inside the build."""


def add_source(exc: AtenExecutorError, exported: Any) -> None:
    """Append `` (at FILE:LINE in FN: `CODE`)``, the model's line that made the node ``exc`` names, from the stack
    trace the export recorded for it (``memplan.importers.torch.common.node_source``), to ``exc``'s message, in place
    (its type and fields kept); nothing where export recorded no trace. Why: a refusal named the ATen node alone
    ("node 'add' (aten.add.out): out= resizes weight 'b_buf' ..."), not the line of ``forward`` that wrote (round 60)."""
    if exc.node is None or exported is None or not exc.args or " (at " in str(exc.args[0]):
        return
    from memplan.importers.torch.common import node_source

    try:
        node = next((n for n in exported.graph.nodes if n.name == exc.node), None)
    except AttributeError:   # (no FX graph: nothing to name)
        return
    source = node_source(node)
    if node is not None and "cannot be captured" in str(exc.args[0]) and "; inside it, node " not in str(exc.args[0]):
        source += _body_culprit(node)
    if source:
        exc.args = (str(exc.args[0]) + source, *exc.args[1:])


def _body_culprit(node: Any) -> str:
    """``; inside it, node 'N' (OP) makes a data-dependent size (at FILE:LINE ...)`` where FX node ``node`` is a
    higher-order op (``wrap_with_set_grad_enabled``, ``cond``, ...) whose bodies hold a node with a data-dependent
    size (an unbacked symbol in its result: boolean-mask indexing, ``nonzero``, ``.item()``), the first one in the
    bodies' order, else "". Why: the executor runs such a node's bodies as one launch, so a capture it broke named
    the wrapper alone: GLM-5 Next's indexer (a ``@torch.no_grad()`` method, one ``wrap_with_set_grad_enabled`` node)
    was refused as "node 'to_25' (wrap_with_set_grad_enabled): cannot be captured", not by its ``x[:, mask]`` (H100,
    round 73)."""
    try:
        import torch
        from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols
    except ImportError:   # (no torch: no FX graph either)
        return ""
    from memplan.importers.torch import subgraphs
    from memplan.importers.torch.common import node_source

    todo = subgraphs(torch, node.graph.owning_module, node)
    while todo:
        sub = todo.pop(0)
        for inner in sub.graph.nodes:
            try:
                unbacked = free_unbacked_symbols(inner.meta.get("val")) if inner.op == "call_function" else None
            except Exception:   # (a value free_unbacked_symbols does not walk: not a size)
                unbacked = None
            if unbacked:
                return (f"; inside it, node {inner.name!r} ({inner.target}) makes a data-dependent size"
                        f"{node_source(inner)}")
            todo += subgraphs(torch, sub, inner)   # (a body's own higher-order ops, after this body)
    return ""
    from memplan.importers.torch.common import node_source

    def bodies(n: Any) -> list:
        owner = getattr(getattr(n, "graph", None), "owning_module", None)
        out = []
        for a in (*n.args, *n.kwargs.values()):
            if getattr(a, "op", None) == "get_attr" and owner is not None:
                sub = getattr(owner, a.target, None)
                if hasattr(sub, "graph"):
                    out.append(sub)
        return out

    todo = bodies(node) if getattr(node, "op", None) == "call_function" else []
    seen: set[int] = set()
    while todo:
        sub = todo.pop(0)
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        for inner in sub.graph.nodes:
            if inner.op != "call_function":
                continue
            try:
                unbacked = free_unbacked_symbols(inner.meta.get("val"))
            except Exception:   # (a value free_unbacked_symbols does not walk: not a size)
                unbacked = None
            if unbacked:
                return (f"; inside it, node {inner.name!r} ({inner.target}) makes a data-dependent size"
                        f"{node_source(inner)}")
            todo.extend(bodies(inner))
    return ""


#: the refusal of a deep copy or a pickle of a compiled module or its executor (``CompiledModule.__deepcopy__``)
NOT_COPIED = ("a {thing} cannot be {what}: its executor holds a planned arena, streams and launches bound to that "
              "arena's views (device state), and its program reads and writes the module's own tensors by identity; "
              "compile a copy of the module instead: runtime.aten.compile(copy.deepcopy(module), example_inputs)")


def release_frames(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in the tracebacks of ``exc`` and the exceptions it was
    raised from or during (``traceback.clear_frames``: the file and line of each frame stay, for printing). Why: a
    refused build's frames held the arena's views (``lower_program``'s ``views``, the half-built executor), so the
    arena stayed allocated, on a GPU too, as long as the caller kept the exception (a notebook's last error)."""
    import traceback

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
