"""The optional outputs of an ``If`` whose condition only the run knows: whether each branch's optional holds a value
(known at import from the ``Optional`` node that makes it), and the selection of the output between the branches.

Why its own module: ``control_flow.expand_fed_if`` selects a tensor output by one ``Where`` between the branches'
values, which no optional can go through, so an If returning an optional (onnx's ``test_if_opt``: an empty optional
in one branch, an optional sequence in the other) was refused "not as a tensor" while onnxruntime runs it. Planned:

* both branches' optionals hold a value: the output is the ``Optional`` of the selection of their elements (a tensor
  by a ``Where``, judged as a tensor output is: one shape in both branches; a sequence tensor by tensor, as
  ``fed_sequences`` selects one), so it has the element's bytes, whichever branch runs;
* one branch's optional is empty (an ``Optional`` of no input): it has no bytes, so the output is the other branch's
  optional (an ``Identity`` of it): planned with the bytes the holding branch makes, it holds either branch's;
* both empty: the output is the then_branch's (nothing to hold).

An optional made by an If in a branch (a nested If, round 71) is followed into that If's branches (its taken branch,
where its condition is a constant): it holds a value where either branch's does, and is planned with the bytes of the
branch that holds one (the nested If is expanded the same way). An optional whose maker the import cannot follow (a
graph input, a Loop, a custom op) is refused naming the If, the output and the branch: whether it holds a value, and
so its size, is known only at run time.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import GraphError
from .common import EITHER_OPTIONAL
from .fed_sequences import Counter, Scope, _is_sequence, branches_model, select_sequences

#: ``(state, element, scopes)``: state ``"empty"``, ``"holds"`` (``element``: the value it holds, in ``scopes``),
#: ``"maybe"`` (made by a nested If of one branch empty, the other holding ``element``) or ``"unknown"``
Held = tuple[str, str | None, list]


def _held(name: str, scopes: list[Scope], depth: int = 0) -> Held | None:
    """Whether optional ``name`` holds a value, as the graphs ``scopes`` (innermost first) tell: made by an
    ``Optional`` node (through ``Identity``); None where ``name`` is no optional as far as they tell (neither made by
    one nor declared one)."""
    declared = any(name in s.optionals for s in scopes)
    unknown: Held | None = ("unknown", None, scopes) if declared else None
    if depth > 32:
        return unknown
    for i, s in enumerate(scopes):
        producer = s.producer.get(name)
        if producer is None:
            if name in s.fed:
                return unknown
            continue
        if producer.domain not in ("", "ai.onnx"):
            return unknown
        if producer.op_type == "Optional":
            ins = [v for v in producer.input if v]
            return ("holds", ins[0], scopes[i:]) if ins else ("empty", None, scopes[i:])
        if producer.op_type == "Identity" and producer.input:
            return _held(producer.input[0], scopes[i:], depth + 1) or unknown
        if producer.op_type == "If":
            return _held_by_if(producer, name, scopes[i:], depth) or unknown
        return unknown
    return unknown


def _constant_condition(name: str, scopes: list[Scope]) -> bool | None:
    """The one bool ``name`` holds where the graphs ``scopes`` (innermost first) make it a constant (an initializer
    that is no graph input, or a ``Constant`` node's ``value``); None where they do not (the run decides)."""
    for s in scopes:
        producer = s.producer.get(name)
        if producer is None and name not in s.fed:
            continue
        if producer is None:
            init = next((t for t in s.g.initializer if t.name == name), None)
            if init is None or name in {v.name for v in s.g.input}:
                return None
            value = init
        elif producer.op_type == "Constant" and producer.domain in ("", "ai.onnx") and len(producer.attribute) == 1 \
                and producer.attribute[0].name == "value":
            value = producer.attribute[0].t
        else:
            return None
        # (a condition that is no single bool: onnxruntime refuses it, and the If's own expansion says so)
        if value.data_type != 9 or len(value.dims) > 1 or any(d != 1 for d in value.dims) or value.data_location:
            return None
        if value.int32_data:
            return bool(value.int32_data[0])
        return bool(value.raw_data[:1] != b"\x00") if len(value.raw_data) == 1 else None
    return None


def _held_by_if(producer, name: str, scopes: list[Scope], depth: int) -> Held | None:
    """``_held`` of output ``name`` of ``If`` node ``producer`` (of the graph ``scopes[0]``): its branch's, where the
    condition is a constant; else what either branch may make, as an upper bound. Why: an optional made by a nested
    If (an If whose branch holds another If, on a run-time condition) was refused, while onnxruntime runs it.

    * both branches' optionals empty: it is empty;
    * both hold a value: it "holds" (the then_branch's element tells whether a tensor or a sequence): the nested If
      is itself expanded (``select_optionals``), so its output holds their selection (refused there if of two
      shapes), planned with those bytes, which either branch's run fits;
    * one holds a value, the other is empty: "maybe" (the holding branch's element): expanded, a nested If on a
      run-time condition makes the holding branch's (its bytes fit either run), but one on a condition folded at
      import (computed from constants) makes the branch it takes, maybe the empty one; ``select_optionals`` asks
      the expansion (``Expander.held``) where it must know;
    * either not followed: unknown (None)."""
    k = list(producer.output).index(name)
    branches = {a.name: a.g for a in producer.attribute if a.name in ("then_branch", "else_branch") and a.HasField("g")}
    if len(branches) != 2 or not producer.input or any(k >= len(b.output) for b in branches.values()):
        return None
    taken = _constant_condition(producer.input[0], scopes)
    names = ["then_branch", "else_branch"] if taken is None else ["then_branch" if taken else "else_branch"]
    held = [_held(branches[b].output[k].name, [Scope(branches[b]), *scopes], depth + 1) for b in names]
    if any(h is None or h[0] == "unknown" for h in held):
        return None
    states = {h[0] for h in held}
    if len(states) == 1 and states != {"maybe"}:
        return held[0]
    _, element, inside = next(h for h in held if h[0] != "empty")
    return ("maybe", element, inside)


def optional_outputs(n, g, outer: Scope | None = None) -> dict[int, tuple[Held | None, Held | None]]:
    """``{index: (then_branch's, else_branch's)}`` for the outputs of ``If`` node ``n`` (of graph ``g``; ``outer``:
    its index, where built) that either branch returns as an optional (``_held`` of each)."""
    branches = {a.name: a.g for a in n.attribute if a.name in ("then_branch", "else_branch") and a.HasField("g")}
    if n.op_type != "If" or len(branches) != 2:
        return {}
    outer = outer if outer is not None and outer.g is g else Scope(g)
    scopes = {b: [Scope(branches[b]), outer] for b in branches}
    out = {}
    for k in range(len(n.output)):
        held = {b: _held(branches[b].output[k].name, scopes[b]) if k < len(branches[b].output) else None
                for b in ("then_branch", "else_branch")}
        if any(h is not None for h in held.values()):
            out[k] = (held["then_branch"], held["else_branch"])
    return out


def select_optionals(ex, n, who: str, made: dict[str, list[str]], scalar: str,
                     outputs: dict[int, tuple[Held | None, Held | None]], count: Counter | None,
                     checks: tuple, type_check: type) -> None:
    """Append to ``ex.new_nodes`` (a ``control_flow._Expander``) the selection of each optional output of fed If
    ``n`` (``outputs``: ``optional_outputs``) between its branches' values (``made``: the branch's outer names of
    its outputs), by the bool scalar ``scalar``; ``count`` and ``checks`` as ``fed_sequences.select_sequences``;
    ``type_check``: ``control_flow.TypeCheck``, the two branches' optionals of one type (onnxruntime refuses two: an
    empty one's ``type`` attribute of int64 beside a float one was planned, at the holding branch's bytes)."""
    scan_check, branch_shapes = checks
    cond = n.input[0]
    helper = ex.onnx.helper
    names = ("then_branch", "else_branch")
    for k, pair in outputs.items():
        for b, h in zip(names, pair):
            if h is None or h[0] == "unknown":
                out = n.output[k]
                raise GraphError(f"{who}: its output #{k} {out!r} (an optional; its condition {cond!r} known only at "
                                 f"run time): whether its {b}'s optional holds a value is not known at import (it is "
                                 "made by no Optional node the import follows), so neither is its size (an optional "
                                 "of a fed If is planned as the value it holds; not supported)")
    outputs = _settled(ex, made, outputs)
    for k, pair in outputs.items():
        out = n.output[k]
        why = f"{who}: its output #{k} {out!r} (an optional; its condition {cond!r} known only at run time)"
        states = [h[0] for h in pair]
        t, e = made["then_branch"][k], made["else_branch"][k]
        ex.type_checks.append(type_check(e, None, t, f"{why}: its else_branch's optional, beside its then_branch's"))
        if "empty" in states:   # (an empty optional has no bytes: the other branch's holds either)
            source = e if states[0] == "empty" and states[1] == "holds" else t
            ex.new_nodes.append(helper.make_node("Identity", [source], [out], name=ex.fresh_node(f"{n.name}/select_{k}"),
                                                 doc_string=EITHER_OPTIONAL))
            continue
        a, b = ex.fresh(f"{n.name}/select_{k}/then"), ex.fresh(f"{n.name}/select_{k}/else")
        ex.new_nodes.append(helper.make_node("OptionalGetElement", [t], [a], name=ex.fresh_node(f"{n.name}/then_{k}")))
        ex.new_nodes.append(helper.make_node("OptionalGetElement", [e], [b], name=ex.fresh_node(f"{n.name}/else_{k}")))
        kinds = [_is_sequence(h[1], h[2]) for h in pair]
        w = ex.fresh(f"{n.name}/select_{k}")
        if kinds[0] != kinds[1]:
            raise GraphError(f"{why}: its then_branch's optional holds a {('tensor', 'sequence')[kinds[0]]}, its "
                             f"else_branch's a {('tensor', 'sequence')[kinds[1]]} (onnxruntime refuses the model)")
        if kinds[0]:
            select_sequences(ex, n, who, {"then_branch": {k: a}, "else_branch": {k: b}}, scalar, [k], count, checks,
                             into={k: w}, what="an optional sequence")
        else:
            select = ex.fresh_node(f"{n.name}/select_{k}")
            ex.new_nodes.append(helper.make_node("Where", [scalar, a, b], [w], name=select))
            ex.type_checks.append(scan_check(select, f"{why}: its branches' optionals hold tensors of two types, or "
                                             "the condition is not bool (onnxruntime refuses the model)",
                                             f"{why}: its branches' optionals hold tensors of two shapes: which branch "
                                             "runs is known only at run time, and so its size (planned as one buffer, "
                                             "it would be sized for one branch)"))
            ex.type_checks.append(branch_shapes(w, a, b, why))
        ex.new_nodes.append(helper.make_node("Optional", [w], [out], name=ex.fresh_node(f"{n.name}/optional_{k}")))


def _settled(ex, made: dict[str, list[str]], outputs: dict[int, tuple[Held, Held]]) -> dict[int, tuple[Held, Held]]:
    """``outputs`` (of ``select_optionals``) with each ``"maybe"`` state settled: where the other branch's optional is
    empty, the output is the maybe one's as it is (either run's bytes fit its holding branch's), taken as holding;
    where the other holds a value (its element is read: ``OptionalGetElement``), what the branch's value is once its
    nested If is expanded (``ex.held``: ``held_states``), an empty one taken as empty. Why: a nested If on a condition
    folded at import (a ``Not`` of a constant) that takes its empty branch was read as holding a value, and the
    element of its empty optional was refused as "of unknown shape"."""
    names = ("then_branch", "else_branch")
    asked = sorted({made[b][k] for k, pair in outputs.items() for i, b in enumerate(names)
                    if pair[i][0] == "maybe" and pair[1 - i][0] != "empty"})
    known = ex.held(asked) if asked and getattr(ex, "held", None) is not None else {}
    settled = {}
    for k, pair in outputs.items():
        both = []
        for b, h in zip(names, pair):
            if h[0] == "maybe":
                h = ("empty", None, []) if known.get(made[b][k]) == "empty" else ("holds", h[1], h[2])
            both.append(h)
        settled[k] = (both[0], both[1])
    return settled


def held_states(onnx, model, nodes: list, producer: dict[str, int], ex, names: list[str], resolve: Callable,
                expand: Callable) -> dict[str, str]:
    """Whether each optional of ``names`` that ``ex.new_nodes`` (an If's inlined branches) make holds a value once
    their control flow is expanded (``fed_sequences.branches_model``; arguments as ``sequence_lengths``'):
    ``{name: "holds" | "empty"}``, a name the expansion does not tell left out."""
    sub = branches_model(onnx, model, nodes, producer, ex, [], names, resolve, expand)
    scopes = [Scope(sub.graph)]
    out = {}
    for v in names:
        h = _held(v, scopes)
        if h is not None and h[0] in ("holds", "empty"):
            out[v] = h[0]
    return out
