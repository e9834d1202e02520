"""The sequence outputs of an ``If`` whose condition only the run knows: which outputs are sequences, how many
tensors each branch's holds (folded at import), and the selection of the output tensor by tensor.

Why its own module: ``control_flow.expand_fed_if`` selects a tensor output by one ``Where`` between the branches'
values, which no sequence can go through, so an If whose branches return sequences (``SequenceConstruct``,
``SplitToSequence``...) was refused while onnxruntime runs it. A sequence is selected as its tensors: each the
``Where`` of the two branches' ``SequenceAt``, the output their ``SequenceConstruct``. That needs the count of
tensors, the same in both branches, known at import (as a Scan's length is); each tensor then follows the tensor
rule (both branches planned, one shape, so one size, whichever runs). A count or an element shape that differs
between the branches, or that the import cannot fold, is refused naming the If, the output and what is unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import GraphError
from .graph_scope import _ancestors, _free_names, _numpy, _sub_model, _subgraphs, _unused

#: the standard ops that make a sequence (what ``sequence_outputs`` follows a branch's output back to)
SEQUENCE_MAKERS = frozenset({"SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase",
                             "SplitToSequence"})

#: tensors a sequence output is selected over at most (three nodes each): one of more is refused naming its count.
#: Why a bound: a SplitToSequence of 100,000 rows was 300,000 nodes and minutes of import (1.5 ms a tensor)
MAX_SELECTED = 4096

#: ``names -> {name: tensor count}``: the counts among ``names`` (sequences the expansion made) known at import
Counter = Callable[[list[str]], dict[str, int]]


class Scope:
    """What ``_is_sequence`` asks of one graph, indexed once: the names it declares sequences, the node making each
    value, and its inputs and initializers.

    Why: it scanned the graph's nodes for each If output a branch returns through ``Identity`` (the producer of the
    outer value), so a graph of thousands of fed Ifs was quadratic (3,000 Ifs: 12 s of a 15 s import)."""

    def __init__(self, g) -> None:
        self.g = g
        self.sequences = {v.name for v in (*g.input, *g.output, *g.value_info) if v.type.HasField("sequence_type")}
        self.optionals = {v.name for v in (*g.input, *g.output, *g.value_info) if v.type.HasField("optional_type")}
        self.producer: dict = {}
        for n in g.node:
            for o in n.output:
                self.producer.setdefault(o, n)
        self.fed = {v.name for v in g.input} | {t.name for t in g.initializer}


def _is_sequence(name: str, scopes: list[Scope], depth: int = 0) -> bool:
    """Whether value ``name`` is a sequence, as far as the graphs ``scopes`` (innermost first) tell before inference:
    declared so, or made by a sequence op (through ``Identity`` and nested ``If`` branches). Why not inference: the
    expansion runs before it; a sequence missed here is refused by the ``Where`` that then selects it."""
    if depth > 32:
        return False
    for i, s in enumerate(scopes):
        if name in s.sequences:
            return True
        producer = s.producer.get(name)
        if producer is None:
            if name in s.fed:
                return False
            continue
        if producer.domain not in ("", "ai.onnx"):
            return False
        if producer.op_type in SEQUENCE_MAKERS:
            return True
        if producer.op_type == "Identity" and producer.input:
            return _is_sequence(producer.input[0], scopes[i:], depth + 1)
        if producer.op_type == "If":
            k = list(producer.output).index(name)
            branch = next((a.g for a in producer.attribute if a.name == "then_branch" and a.HasField("g")), None)
            if branch is not None and k < len(branch.output):
                return _is_sequence(branch.output[k].name, [Scope(branch), *scopes[i:]], depth + 1)
        return False
    return False


def sequence_outputs(n, g, outer: Scope | None = None) -> list[int]:
    """The indices of the outputs of ``If`` node ``n`` (of graph ``g``) that its then_branch returns as sequences.
    ``outer``: ``g``'s index, built once by the caller for all the Ifs of ``g`` (built here where not given)."""
    branch = next((a.g for a in n.attribute if a.name == "then_branch" and a.HasField("g")), None)
    if n.op_type != "If" or branch is None:
        return []
    scopes = [Scope(branch), outer if outer is not None and outer.g is g else Scope(g)]
    return [k for k, o in enumerate(branch.output) if k < len(n.output) and _is_sequence(o.name, scopes)]


def select_sequences(ex, n, who: str, made: dict, scalar: str, outputs: list[int],
                     count: Counter | None, checks: tuple, into: dict[int, str] | None = None,
                     what: str = "a sequence") -> None:
    """Append to ``ex.new_nodes`` (a ``control_flow._Expander``) the selection of each sequence output of fed If
    ``n`` (``outputs``: their indices) between its branches' (``made``: the branch's outer names of its outputs), by
    the bool scalar ``scalar``; ``checks``: ``(ScanCheck, BranchShapes)`` of ``control_flow``, each tensor's ``Where``
    judged as a tensor output's is. ``into``: the value each output's selection is made as, where not the If's own
    output (an optional's sequence: ``fed_optionals`` wraps it); ``what``: the output, as its refusals name it."""
    scan_check, branch_shapes = checks
    cond = n.input[0]
    asked = [made[b][k] for k in outputs for b in ("then_branch", "else_branch")]
    lengths = count(asked) if count is not None else {}
    np = _numpy()
    helper = ex.onnx.helper
    for k in outputs:
        out = n.output[k]
        why = f"{who}: its output #{k} {out!r} ({what}; its condition {cond!r} known only at run time)"
        t, e = made["then_branch"][k], made["else_branch"][k]
        out = (into or {}).get(k, out)
        nt, ne = lengths.get(t), lengths.get(e)
        if nt is None or ne is None:
            branch = "then_branch" if nt is None else "else_branch"
            raise GraphError(f"{why}: how many tensors its {branch}'s sequence holds is not known at import (not "
                             "folded from constants and the inputs' fixed shapes), so neither is its size (a "
                             "sequence is planned tensor by tensor; fix the inputs' dimensions, --dim / --batch)")
        if nt != ne:
            raise GraphError(f"{why}: its then_branch's sequence holds {nt} tensors, its else_branch's {ne}: which "
                             "branch runs is known only at run time, and so how many tensors it holds and its size "
                             "(planned as one buffer, it would be sized for one branch)")
        if nt > MAX_SELECTED:
            raise GraphError(f"{why}: its branches' sequences hold {nt} tensors each, over the {MAX_SELECTED} a "
                             "sequence output of an If on a run-time condition is planned tensor by tensor to (not "
                             "supported)")
        if nt == 0:   # (both empty: either is the output)
            ex.new_nodes.append(helper.make_node("Identity", [t], [out], name=ex.fresh_node(f"{n.name}/select_{k}")))
            continue
        parts = []
        for i in range(nt):
            stem = f"{n.name}/select_{k}/{i}"
            index = ex.constant(f"{stem}/index", np.array(i, dtype=np.int64))
            a, b, w = ex.fresh(f"{stem}/then"), ex.fresh(f"{stem}/else"), ex.fresh(stem)
            ex.new_nodes.append(helper.make_node("SequenceAt", [t, index], [a], name=ex.fresh_node(f"{stem}/then")))
            ex.new_nodes.append(helper.make_node("SequenceAt", [e, index], [b], name=ex.fresh_node(f"{stem}/else")))
            select = ex.fresh_node(stem)
            ex.new_nodes.append(helper.make_node("Where", [scalar, a, b], [w], name=select))
            item = f"{why}: its tensor #{i}"
            ex.type_checks.append(scan_check(select, f"{item}: its branches make it of two types, or the condition "
                                             "is not bool (onnxruntime refuses the model)",
                                             f"{item}: its branches make it of two shapes: which branch runs is known "
                                             "only at run time, and so its size (planned as one buffer, it would be "
                                             "sized for one branch)"))
            ex.type_checks.append(branch_shapes(w, a, b, item))
            parts.append(w)
        ex.new_nodes.append(helper.make_node("SequenceConstruct", parts, [out],
                                             name=ex.fresh_node(f"{n.name}/select_{k}")))


def sequence_lengths(onnx, model, nodes: list, producer: dict[str, int], ex, names: list[str],
                     resolve: Callable, expand: Callable) -> dict[str, int]:
    """The tensor counts of the sequences ``names`` that ``ex.new_nodes`` (an If's inlined branches) make, folded by
    ``resolve`` (``control_flow.Resolver``) over the nodes of ``model`` (``nodes``, ``producer``: its nodes and the
    index of each value's) they are computed from, those new nodes and a ``SequenceLength`` of each; a count not
    folded is left out. ``expand``: ``control_flow.expand_control_flow``, for control flow inside the branches (a
    nested If), which the folding does not take."""
    taken = set(ex.taken)   # (a copy: the expansion's own names stay what they were without this question)
    length_of = {v: _unused(f"{v}/length", taken) for v in names}
    counting = [onnx.helper.make_node("SequenceLength", [v], [s], name=s) for v, s in length_of.items()]
    asked = list(length_of.values())
    sub = branches_model(onnx, model, nodes, producer, ex, counting, asked, resolve, expand)
    known = resolve(sub, asked)
    out = {}
    for v, s in length_of.items():
        if s in known:
            value = _numpy().asarray(known[s])
            if value.size == 1 and value.dtype.kind in "iu":
                out[v] = int(value.reshape(-1)[0])
    return out


def branches_model(onnx, model, nodes: list, producer: dict[str, int], ex, extra: list, asked: list[str],
                   resolve: Callable, expand: Callable):
    """The model of ``ex.new_nodes`` (an If's inlined branches) and ``extra`` nodes after them, with the nodes of
    ``model`` (``nodes``, ``producer``: its nodes and the index of each value's) they are computed from, returning
    ``asked``; its control flow (an If inside a branch) expanded by ``expand`` (``control_flow.expand_control_flow``,
    ``resolve`` folding its conditions). Why: what a branch's value is once its nested control flow is expanded (a
    sequence's count, an optional's holding a value) is known only from that expansion."""
    made = {o for m in ex.new_nodes for o in m.output if o}
    read = {v for m in ex.new_nodes for v in m.input if v}
    for m in ex.new_nodes:   # (an If in the branch: what its own branches read from around it)
        for _a, sub in _subgraphs(m):
            read |= _free_names(sub)
    reads = read - made
    sub = _sub_model(onnx, model, [nodes[i] for i in sorted(_ancestors(nodes, producer, reads))] + list(ex.new_nodes)
                     + list(extra), asked)
    sub.graph.initializer.extend(t for t in ex.new_initializers if t.name in read)
    sub.graph.sparse_initializer.extend(t for t in ex.new_sparse if t.values.name in read)
    if any(a.HasField("g") or len(a.graphs) for m in sub.graph.node for a in m.attribute):
        sub = expand(onnx, sub, resolve)[0]
    return sub
