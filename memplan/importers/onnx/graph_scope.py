"""Scopes of ONNX subgraphs (defined, read, fresh names), apart so the expansion's modules each keep one job."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _subgraphs(n) -> list[tuple[str, Any]]:
    """``(attribute name, graph)`` of each subgraph node ``n`` carries."""
    out = []
    for a in n.attribute:
        if a.HasField("g"):
            out.append((a.name, a.g))
        out.extend((a.name, sub) for sub in a.graphs)
    return out


def _defined(g) -> set[str]:
    """The names graph ``g`` defines at its own level: inputs, initializers, node outputs."""
    names = {v.name for v in g.input} | {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    names.update(o for n in g.node for o in n.output if o)
    return names


def _all_names(g, into: set[str]) -> set[str]:
    """Every name ``g`` and its subgraphs define or read (what a fresh name must avoid)."""
    into.update(_defined(g))
    into.update(v.name for v in g.output)
    for n in g.node:
        into.update(v for v in n.input if v)
        for _a, sub in _subgraphs(n):
            _all_names(sub, into)
    return into


def _free_names(g) -> set[str]:
    """The names ``g`` (and its subgraphs) read that it does not define: what it takes from the scopes around it."""
    defined = _defined(g)
    free = {v for n in g.node for v in n.input if v and v not in defined}
    free.update(v.name for v in g.output if v.name not in defined)
    for n in g.node:
        for _a, sub in _subgraphs(n):
            free.update(v for v in _free_names(sub) if v not in defined)
    return free


def _rename_refs(g, mapping: dict[str, str]) -> None:
    """Rename in place what subgraph ``g`` reads from the scopes around it (``mapping``); a name ``g`` defines itself
    shadows the outer one and is left alone, in ``g`` and below."""
    local = _defined(g)
    inner = {k: v for k, v in mapping.items() if k not in local}
    if not inner:
        return
    for n in g.node:
        for k, v in enumerate(n.input):
            if v in inner:
                n.input[k] = inner[v]
        for _a, sub in _subgraphs(n):
            _rename_refs(sub, inner)
    for o in g.output:
        if o.name in inner:
            o.name = inner[o.name]


def _unused(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem_1``, ``stem_2``... the first not in ``taken``, which it joins: names of copied values and
    nodes stay unique and the same for the same model (deterministic graph JSON)."""
    name, k = stem, 0
    while name in taken:
        k += 1
        name = f"{stem}_{k}"
    taken.add(name)
    return name


def _ancestors(nodes, producer: dict[str, int], names: Iterable[str]) -> set[int]:
    """Indices of the nodes (of ``nodes``) that the values ``names`` are computed from, implicit reads of
    subgraphs included."""
    seen: set[int] = set()
    stack = [producer[v] for v in names if v in producer]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        n = nodes[i]
        reads = [v for v in n.input if v]
        for _a, sub in _subgraphs(n):
            reads.extend(_free_names(sub))
        stack.extend(producer[v] for v in reads if v in producer)
    return seen


def _sub_model(onnx, model, nodes: list, outputs: list[str]):
    """A model of ``nodes`` (of ``model``'s graph) returning ``outputs``: the graph's inputs, the initializers the
    nodes read (an input that is an initializer they do not read is left out with it), its declarations.
    Why not a copy of the whole model: it held every weight, copied once per pass of the expansion (0.7 s a pass
    for 400 MB of embedded weights, for a condition computed from three shape ops)."""
    read = {v for n in nodes for v in n.input if v}
    for n in nodes:
        for _a, sub in _subgraphs(n):
            read |= _free_names(sub)
    g = model.graph
    weights = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    out = onnx.ModelProto()
    out.ir_version = model.ir_version
    out.opset_import.extend(model.opset_import)
    out.functions.extend(model.functions)
    sg = out.graph
    sg.name = g.name
    sg.input.extend(vi for vi in g.input if vi.name not in weights or vi.name in read)
    sg.initializer.extend(t for t in g.initializer if t.name in read)
    sg.sparse_initializer.extend(t for t in g.sparse_initializer if t.values.name in read)
    sg.value_info.extend(g.value_info)
    sg.node.extend(nodes)
    sg.output.extend(onnx.helper.make_empty_tensor_value_info(v) for v in outputs)
    return out


def _numpy():
    import numpy

    return numpy
