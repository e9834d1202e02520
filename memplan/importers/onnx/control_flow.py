"""Control flow whose course is known at import: an ``If`` on a constant condition is its taken branch, a ``Loop`` of
a constant trip count whose condition stays true is its body repeated; both become plain nodes of the main graph.

Why: exporters write shape checks as ``If`` nodes whose condition folds to a constant once the inputs' shapes are
fixed (``Equal(Size(Shape(size)), 4)`` in ONNX's own AffineGrid function), and short fixed loops as ``Loop`` nodes of a
constant trip count. Each was refused ("control flow is not supported") though the nodes that run, and so every
tensor and its size, are known before the run. Inlined here, before the checks and the inference, the rest of the
import sees an ordinary graph, its errors naming the inlined nodes by ids that say where they came from
(``If_3/then/Add_0``, ``Loop_0/2/MatMul_1``: the branch, or the iteration).

Round 69: a ``Scan`` is unrolled too, over its scan inputs' length (their shapes folded as a condition is), and an
``If`` whose condition depends on what the inputs hold is both its branches, each output a ``Where`` between them
(the plan holds whichever runs; outputs of two shapes are refused, their size being the run's choice). The branch an
If on a constant does not take is checked as onnxruntime checks it as it loads (``untaken.check_untaken_validity``).

Round 75: a ``Loop`` whose body computes its condition (tf2onnx's while-loops) is unrolled while that condition folds
true after each iteration (``_folder``), at most ``MAX_UNROLL`` iterations.

What stays refused, each naming the node and why: a ``Loop`` without a trip count or over ``MAX_UNROLL`` whose body
passes its condition on, of a trip count not known at import, or whose body computes its condition from what the
inputs hold (how many iterations run is then a run-time fact: its scan outputs' sizes are not static), a
zero-iteration ``Loop`` with a scan output whose element shape its body does not declare, or declares otherwise than
its nodes compute (the body never runs; one it declares as computed is planned an empty tensor, round 76), a ``Scan``
over ``MAX_UNROLL`` or of length 0, ``Scan``-8, and ``SequenceMap`` (whose body runs per element of a sequence). The model passed in is never modified: each expansion works on a copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from ...errors import GraphError
from ...errors import short_repr as _short
from .common import _node_ids
from .fed_optionals import held_states, optional_outputs, select_optionals
from .fed_sequences import Counter, Scope, select_sequences, sequence_lengths, sequence_outputs
from .graph_scope import (
    _all_names,
    _ancestors,
    _defined,
    _free_names,
    _numpy,
    _rename_refs,
    _sub_model,
    _subgraphs,
    _unused,
)
from .type_rules import _known_type
from .untaken import UntakenBranch, _untaken_model, _untaken_types, check_untaken_validity

#: iterations a ``Loop`` is unrolled to at most: one of more is refused naming its trip count. Why a bound: each
#: iteration is a copy of the body in the planned graph, and a trip count of 10**9 would copy the body a billion times
#: (a hang, then out of memory). The loops this is for (fixed small repeats in exports) run a handful of times.
MAX_UNROLL = 64
#: nodes the graph may grow to by inlining control flow (as ``model_checks.MAX_INLINED_NODES`` bounds local functions:
#: nested loops of 64 multiply)
MAX_EXPANDED_NODES = 1 << 20
#: nodes the expansion of control flow may add to the graph (its copies of branches and bodies, beyond the model's
#: own nodes), bounded before any copy by each Loop's and Scan's estimate. Why below ``MAX_EXPANDED_NODES``: the
#: import costs 0.1-0.3 ms a node, so a 553-byte model of three nested 64-step Loops of two nodes (about 800,000
#: nodes unrolled, under 2**20) took minutes to import, a hang to the user; 131,072 added nodes import in well under
#: a minute, two nested 64-step Loops of a 30-node body still fit. A model's own nodes are not counted: a
#: 500,000-node model with one small If is not refused.
MAX_UNROLLED_NODES = 1 << 17
#: folds of a while-loop's condition (one an iteration, each an inference of the nodes it is computed from, 10-30
#: ms) one expansion may make. Why a bound: nested while-loops of 64 iterations each fold 4,096 times, minutes of
#: import for a model of a few nodes; one loop of 64 iterations, or a few, stays well under it.
MAX_CONDITION_FOLDS = 512
#: ops whose subgraphs run over the values of their inputs: refused, with the reason
NOT_UNROLLED = {
    "SequenceMap": "its body runs once per element of its input sequences, a count known only at run time "
                   "(not unrolled at import)",
}

#: ``(model, names) -> {name: numpy value}``: the values among ``names`` known at import (folded from constants and
#: the inputs' fixed shapes), where the model's nodes before the control flow compute them
Resolver = Callable[[Any, list[str]], dict[str, Any]]


class TypeCheck(NamedTuple):
    """A type the expanded graph's value ``value`` must have once inferred: the type ``declared`` (as the spec writes
    it, ``tensor(float)``) or that of the value ``like``; ``why`` is the error's text (naming the If or Loop), the two
    types appended. Why after inference: onnxruntime infers an If's branches and a Loop's body as it loads the model
    and refuses one whose values contradict what the subgraph declares or what the node feeds it (an else branch of
    int64 beside a then branch of float, a carried value that turns from float to int64); expanded, the subgraphs'
    declarations are gone and the graph was planned (at the bytes of the types that ran)."""
    value: str
    declared: str | None
    like: str | None
    why: str


class ScanCheck(NamedTuple):
    """The node ``node`` that stacks a Loop's scan output (its iterations' values, Concat after Unsqueeze), and the
    error ``why`` that names the user's Loop where ONNX's inference of that node fails. Why: the only way it fails is
    iterations whose values differ in shape, which onnxruntime refuses as it runs the Loop ("Inconsistent shape in
    loop output"); ONNX's own message named the node the expansion made, not one in the user's model. Also the
    ``Where`` that selects an output of an If on a run-time condition (``expand_fed_if``)."""
    node: str
    why: str
    #: where the failure is of shapes that do not broadcast (the ``Where`` of an If on a run-time condition), the
    #: error instead (None: ``why`` whatever the failure)
    shapes_why: str | None = None


class BranchShapes(NamedTuple):
    """An output of an ``If`` on a condition known only at run time, planned as one value (``value``) selected from
    its two branches' (``then``, ``other``), which must be of one shape: ``why`` names the If and the output. Why: the
    plan gives the output one buffer of one size; of two shapes its size is the branch's that runs, a run-time
    fact (onnxruntime runs it, making either), so it is refused rather than planned at one branch's bytes."""
    value: str
    then: str
    other: str
    why: str


class StateShape(NamedTuple):
    """A Scan's state ``value`` after its body's first iteration, which must have the shape of the state fed in
    (``like``); ``why`` names the Scan and the state. Why: onnxruntime's inference of a Scan merges each state's
    output shape into its input's and refuses the model where they differ ("Can't merge shape info"); unrolled, a
    state that grows each iteration was planned at the sizes of a model that does not load (a Loop's carried value
    may grow: onnxruntime runs that)."""
    value: str
    like: str
    why: str


class DeclaredShape(NamedTuple):
    """A value of the graph around a subgraph that the subgraph's ``value_info`` declares ``dims`` (an int per fixed
    dimension, None per open one); ``why`` names the If, Loop or Scan and the declaration. Why: onnxruntime infers
    each subgraph as it loads the model, merging such a declaration into the outer value's shape, and refuses the
    model where their ranks or fixed dimensions differ ("Can't merge shape info", "Mismatch between number of
    inferred and declared dimensions"); expanded, the declaration was gone and the model planned (round 73)."""
    value: str
    dims: list
    why: str


def scan_refusal(checks: Iterable, message: str) -> str | None:
    """The error naming the user's Loop, Scan or If where ``message`` (an inference failure) names a node that
    stacks a scan output or selects an If's output (``ScanCheck``); None where it names none, and where the failure is
    that node's output against the shape the model declares for it ("Inferred shape and existing shape differ", once
    ``--dim``/``--batch`` fixed a dimension the declaration names): the import's own message says so, naming the
    declaration and the dimensions fixed. Why: such a Loop, Scan or If was refused for iterations "of another shape
    from one iteration to the next" or branches "of two types", neither of which it has."""
    if "existing shape differ" in message:
        return None
    for c in checks:
        if isinstance(c, ScanCheck) and f"node name: {c.node})" in message:
            if c.shapes_why is not None and ("ncompatible dimensions" in message or "broadcast" in message.lower()):
                return c.shapes_why
            return c.why
    return None


def check_types(checks: list, types: dict[str, str], shapes: dict | None = None) -> None:
    """Refuse the first of ``checks`` (``TypeCheck``, ``UntakenBranch``, ``BranchShapes``; a ``ScanCheck`` is not
    judged here) that the inferred ``types`` (value -> type text) or ``shapes`` (value -> (element type, dims), as
    ``fold._shapes`` gives them) contradict; a value of unknown type is not judged."""
    for c in checks:
        if isinstance(c, DeclaredShape) and shapes is not None:
            a = shapes.get(c.value, (0, None))[1]
            if isinstance(a, tuple) and (len(a) != len(c.dims) or any(
                    isinstance(x, int) and d is not None and x != d for x, d in zip(a, c.dims))):
                raise GraphError(f"{c.why} is {_dims(a)} (onnxruntime refuses the model: \"Can't merge shape info\")")
        if isinstance(c, StateShape) and shapes is not None:
            a, b = shapes.get(c.value, (0, None))[1], shapes.get(c.like, (0, None))[1]
            if isinstance(a, tuple) and isinstance(b, tuple) and a != b and \
                    all(isinstance(d, int) for d in (*a, *b)):
                raise GraphError(f"{c.why} is {_dims(b)} fed in and {_dims(a)} after an iteration (onnxruntime "
                                 "refuses the model: a Scan's state keeps its shape)")
        if isinstance(c, BranchShapes) and shapes is not None:
            a, b = shapes.get(c.then, (0, None))[1], shapes.get(c.other, (0, None))[1]
            if a != b and (a is not None or b is not None):
                raise GraphError(f"{c.why} is {_dims(a)} where the then_branch runs and {_dims(b)} where the "
                                 "else_branch does: which branch runs is known only at run time, and so its size "
                                 "(planned as one buffer, it would be sized for one branch)")
    untaken = [c for c in checks if isinstance(c, UntakenBranch)]
    flat = _untaken_model(untaken, types) if untaken else None
    if flat is not None:   # (what onnxruntime refuses in the branches themselves, before what they make)
        check_untaken_validity(untaken, flat[0])
    inferred = iter(_untaken_types(untaken, types, flat) if untaken else [])   # (one list each, in their order)
    for c in checks:
        if isinstance(c, (ScanCheck, BranchShapes, StateShape, DeclaredShape)):
            continue
        if isinstance(c, UntakenBranch):
            for k, (value, other) in enumerate(zip(c.taken, next(inferred))):
                got = types.get(value)
                if got is not None and other is not None and got != other:
                    raise GraphError(f"{c.why} output #{k} is {other}, the branch that runs makes {got} (onnxruntime "
                                     "infers both branches and refuses the model)")
            continue
        got = types.get(c.value)
        want = c.declared if c.like is None else types.get(c.like)
        if got is not None and want is not None and got != want:
            raise GraphError(f"{c.why}: it is {got}, not {want} (onnxruntime refuses the model)")


def _dims(dims) -> str:
    if dims is None:
        return "of unknown shape"
    if isinstance(dims, str):
        return f"a {dims}"
    return "[" + ", ".join(str(d) if d != "" else "?" for d in dims) + "]"


#: the standard ops that carry subgraphs: what ``has_control_flow`` looks for
CONTROL_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def has_control_flow(g) -> bool:
    """Whether a node of graph ``g`` (its top level) is a standard control-flow op. Why by op type, not by walking
    every node's attributes for a subgraph: that walk cost 0.5 s of a 100,000-node model's import, every model
    paying for what few have; a node of another op with a subgraph is refused by the structure checks as before."""
    return any(n.op_type in CONTROL_OPS for n in g.node)


def _count_nodes(onnx, g, main) -> int:
    """Nodes of ``g`` once its control flow is expanded, at most: each nested Loop's body times its trip count (a
    constant of ``g`` or of the ``main`` graph; ``MAX_UNROLL`` where the count is computed), an If's larger branch.
    Why multiplied: four nested Loops of 64 are 16.7 million copies of the innermost body, which a sum of the
    bodies' sizes (a few dozen nodes) let through to be copied pass by pass for minutes before the bound caught it."""
    total = 0
    for n in g.node:
        subs = [_count_nodes(onnx, sub, main) for _a, sub in _subgraphs(n)]
        grown = max(subs, default=0)
        if n.op_type == "Scan" and subs:   # (its length is a shape, not read here: the bound)
            grown *= MAX_UNROLL
        if n.op_type == "Loop" and n.input and subs:
            trip = _constant_in(onnx, g, n.input[0]) if n.input[0] else None
            if trip is None and n.input[0]:
                trip = _constant_in(onnx, main, n.input[0])
            count = MAX_UNROLL
            if trip is not None and _numpy().asarray(trip).size == 1:
                count = min(max(0, int(_numpy().asarray(trip).reshape(-1)[0])), MAX_UNROLL)
            grown *= count
        total += 1 + grown
    return total


def _outer_types(onnx, model) -> dict[str, Any]:
    """The type (a ``TypeProto``) of each value of ``model``'s graph that ONNX's inference of the model, or the graph's
    own declarations (its inputs, outputs, value infos and initializers), give one: the types a subgraph's reads from
    the graph around take (``_computed_type``)."""
    g = model.graph
    try:
        inferred = list(onnx.shape_inference.infer_shapes(model).graph.value_info)
    except Exception:  # noqa: BLE001 - no inference: the declarations alone
        inferred = []
    types = {t.name: onnx.helper.make_tensor_type_proto(t.data_type, list(t.dims)) for t in g.initializer}
    types.update((vi.name, vi.type) for vi in (*inferred, *g.value_info, *g.output, *g.input) if vi.HasField("type"))
    return types


def _computed_type(onnx, model, body, k: int, outer: dict[str, Any]):
    """The type ONNX's inference gives output ``k`` of subgraph ``body`` of ``model`` from the body's own nodes, its
    declared type set aside (a ``TypeProto``), or None where inference fails; a value the body reads from the graph
    around has its type there (``outer``: ``_outer_types``), one of unknown type leaves what it decides open. What
    onnxruntime's empty scan output of a Loop that runs no iteration takes, or refuses (``_Expander.empty_scan``).
    Why the outer types: a body computing its scan output as ``Identity(x)`` of the graph's input x of [4] while
    declaring [2, 2] was left to its declaration (the body alone knows nothing of x), so planned [0, 2, 2] where
    onnxruntime's empty output is [0]: a ``ConstantOfShape(10 - ReduceSum(Shape(scan)))`` planned 24 bytes, and
    onnxruntime wrote 40."""
    g = onnx.GraphProto()
    g.CopyFrom(body)
    name = g.output[k].name
    g.output[k].ClearField("type")
    kept = [vi for vi in g.value_info if vi.name != name]
    del g.value_info[:]
    g.value_info.extend(kept)
    g.input.extend(onnx.ValueInfoProto(name=v, type=outer[v]) if v in outer else onnx.ValueInfoProto(name=v)
                   for v in sorted(_free_names(body)))
    alone = onnx.helper.make_model(g, opset_imports=model.opset_import, ir_version=model.ir_version)
    alone.functions.extend(model.functions)
    try:
        return next(vi for vi in onnx.shape_inference.infer_shapes(alone).graph.output if vi.name == name).type
    except Exception:  # noqa: BLE001 - no inference: the declaration stands
        return None


class _Expander:
    """One model's expansion: the names taken so far (so every new name is fresh) and the ids of its nodes."""

    def __init__(self, onnx, model) -> None:
        self.onnx = onnx
        self.model = model
        self.g = model.graph
        self.taken = _all_names(self.g, set())
        self.node_names = set(_node_ids(self.g))
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.functions = {(f.domain, f.name) for f in model.functions}
        self.new_nodes: list = []
        self.new_initializers: list = []
        self.new_sparse: list = []
        self.type_checks: list[TypeCheck] = []
        #: the tensor counts of sequences the current If's branches make (``fed_sequences.sequence_lengths``)
        self.count: Counter | None = None
        #: whether optionals the current If's branches make hold a value once expanded (``fed_optionals.held_states``)
        self.held: Callable[[list[str]], dict[str, str]] | None = None
        #: the index of ``g`` the fed Ifs' sequence and optional outputs are found by (built at the first fed If)
        self.scope: Scope | None = None
        self.value_info_checks: set[tuple[str, str]] = set()   # (check_value_info's, each added once)
        self.main_dims: dict[str, list] | None = None   # (load_time_dims', made once asked)
        #: the values of the graph's conditions and trip counts folded before the expansion (``expand_control_flow``)
        self.known: dict[str, Any] = {}
        #: ``names -> {name: value}``: the values among ``names`` (made by the nodes expanded so far, or before the
        #: node being expanded) that fold at import; a while-loop's condition, iteration by iteration. None: no
        #: folding (a Loop whose body computes its condition is then refused)
        self.fold: Callable[[list[str]], dict[str, Any]] | None = None
        #: the nodes the Loop being expanded may add (``MAX_UNROLLED_NODES`` less what the expansion added before),
        #: checked after each iteration of a while-loop, whose count of iterations is not estimated before
        self.room: int | None = None
        #: the types of the graph's values (``_outer_types``), made at the first Loop that runs no iteration
        self.outer_types: dict[str, Any] | None = None

    def declared(self, vi) -> str | None:
        """The type value info ``vi`` declares (``tensor(float)``), or None where it declares none."""
        return _known_type(self.onnx, vi.type) if vi.HasField("type") else None

    def fresh(self, stem: str) -> str:
        return _unused(stem, self.taken)

    def fresh_node(self, stem: str) -> str:
        return _unused(stem, self.node_names)

    def constant(self, stem: str, value) -> str:
        """A new initializer holding ``value`` (a numpy array), its fresh name returned."""
        name = self.fresh(stem)
        self.new_initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def inline(self, body, prefix: str, bind: dict[str, str], out_names: list[str | None], outer: set[str],
               who: str, what: str, fed_from: int = 2) -> list[str]:
        """Append to ``self.new_nodes`` a copy of subgraph ``body`` whose inputs are the outer values ``bind`` names,
        its own values renamed ``prefix`` + name (fresh), each output given the name ``out_names`` holds for it
        (None: the renamed one); returns the outer name of each output. ``outer``: the names the scope around
        defines (a name the body reads from neither is refused, naming ``who`` and its ``what``). ``fed_from``: the
        first body input whose declared type the value fed to it must have (2 for a Loop, whose iteration number and
        condition are its own; 0 for a Scan)."""
        local = _defined(body)
        for v in sorted(_free_names(body)):
            if v not in outer and v not in bind:
                raise GraphError(f"{who}: its {what} reads {v!r}, which neither the {what} nor the graph around it "
                                 "defines (onnxruntime refuses the model)")
        outputs = [o.name for o in body.output]
        produced = {o for n in body.node for o in n.output if o}
        mapping: dict[str, str] = dict(bind)
        direct: dict[str, str] = {}   # body output made by a body node -> the outer name it is made as
        for k, o in enumerate(outputs):
            want = out_names[k]
            if want is not None and o in produced and o not in direct and outputs.count(o) == 1:
                direct[o] = want
        for v in sorted(local - set(bind)):
            mapping[v] = direct.get(v) or self.fresh(f"{prefix}{v}")
        for t in body.initializer:
            if t.name in bind:   # (hoisted: one copy for every iteration)
                continue
            c = self.onnx.TensorProto()
            c.CopyFrom(t)
            c.name = mapping[t.name]
            self.new_initializers.append(c)
        for st in body.sparse_initializer:
            if st.values.name in bind:
                continue
            c = self.onnx.SparseTensorProto()
            c.CopyFrom(st)
            c.values.name = mapping[st.values.name]
            self.new_sparse.append(c)
        ids = _node_ids(body)
        for n, nid in zip(body.node, ids):
            if (n.domain, n.op_type) in self.functions:
                # (the model's local functions are inlined before control flow is expanded, and only where the graph
                # itself calls them: planned as it is, the call's body would get no memory)
                raise GraphError(f"{who}: its {what}'s node {nid!r} calls the model's local function "
                                 f"{n.domain}:{n.op_type} (a local function called from a subgraph is not supported)")
            if n.output and all(not o or o in bind for o in n.output):
                continue   # (a hoisted Constant)
            c = self.onnx.NodeProto()
            c.CopyFrom(n)
            c.name = self.fresh_node(f"{prefix}{nid}")
            for k, v in enumerate(c.input):
                if v in mapping:
                    c.input[k] = mapping[v]
            for k, v in enumerate(c.output):
                if v:
                    c.output[k] = mapping[v]
            for _a, sub in _subgraphs(c):
                _rename_refs(sub, mapping)
            self.new_nodes.append(c)
        result = []
        for k, o in enumerate(outputs):
            inner = mapping.get(o, o)
            want = out_names[k]
            if want is not None and inner != want:
                self.new_nodes.append(self.onnx.helper.make_node("Identity", [inner], [want],
                                                                 name=self.fresh_node(f"{prefix}output_{k}")))
                inner = want
            result.append(inner)
            declared = self.declared(body.output[k])
            if declared is not None:
                self.type_checks.append(TypeCheck(inner, declared, None, f"{who}: its {what}'s output #{k} {o!r} is "
                                                  f"declared {declared}, but its value"))
        self.check_value_info(body, mapping, outer, who, what)
        for v in body.input[fed_from:]:   # (a Loop body's loop-carried inputs, a Scan body's: what the node feeds
            #   them, against what the body declares; a Loop's iteration number and condition are expand_loop's)
            declared = self.declared(v)
            if declared is not None and v.name in bind and v.name in mapping:
                self.type_checks.append(TypeCheck(mapping[v.name], declared, None, f"{who}: its {what}'s input "
                                                  f"{v.name!r} is declared {declared}, but the value fed to it"))
        return result

    def load_time_dims(self, name: str) -> list:
        """The fixed dimensions (None where open) of the main graph's initializer or graph input ``name`` as the model
        gives them, an empty list for any other value (its rank alone is judged)."""
        if self.main_dims is None:
            self.main_dims = {vi.name: [d.dim_value if d.HasField("dim_value") else None
                                        for d in vi.type.tensor_type.shape.dim]
                              for vi in self.g.input
                              if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}
            self.main_dims.update((t.name, list(t.dims)) for t in self.g.initializer)
        return self.main_dims.get(name, [])

    def check_value_info(self, body, mapping: dict[str, str], outer: set[str], who: str, what: str) -> None:
        """Hold each ``value_info`` of subgraph ``body`` against the value it declares once the expansion is inferred:
        a value of the subgraph's own (renamed by ``mapping``) must have the declared element type (onnxruntime:
        "Type Error ... does not match expected type"; a declared shape it merges leniently), a value of the graph
        around (``outer``) the declared element type and rank and fixed dimensions (``DeclaredShape``). Why:
        onnxruntime infers every subgraph as it loads the model and refuses those; inlined, the declarations were
        dropped and the model planned (round 73)."""
        seen = self.value_info_checks   # (a Loop body's: once, not per iteration)
        for vi in body.value_info:
            declared = self.declared(vi)
            if vi.name in mapping:
                if declared is not None:
                    why = f"{who}: its {what}'s value_info declares {vi.name!r} {declared}, but its value"
                    if (mapping[vi.name], why) not in seen:
                        seen.add((mapping[vi.name], why))
                        self.type_checks.append(TypeCheck(mapping[vi.name], declared, None, why))
                continue
            if vi.name not in outer:
                continue
            if declared is not None:
                why = (f"{who}: its {what}'s value_info declares {vi.name!r}, a value of the graph around it, "
                       f"{declared}, but that value")
                if (vi.name, why) not in seen:
                    seen.add((vi.name, why))
                    self.type_checks.append(TypeCheck(vi.name, declared, None, why))
            tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
            if tt is not None and tt.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                text = _dims([d if d is not None else "" for d in dims])
                # (a fixed dimension is held against what onnxruntime knows of the value as it loads the model: an
                # initializer's dims, a graph input's declared fixed ones; not one --dim fixed, nor one a node makes)
                known = self.load_time_dims(vi.name)
                dims = [d if k < len(known) and known[k] is not None else None for k, d in enumerate(dims)]
                why = (f"{who}: its {what}'s value_info declares {vi.name!r}, a value of the graph around it, "
                       f"{text}, but that value")
                if (vi.name, why) not in seen:
                    seen.add((vi.name, why))
                    self.type_checks.append(DeclaredShape(vi.name, dims, why))

    # -- the two ops ------------------------------------------------------------------------------------------------
    def expand_if(self, n, who: str, cond, outer: set[str]) -> None:
        branches = dict(_subgraphs(n))
        name = "then_branch" if _truth(cond, who, "condition", n.input[0]) else "else_branch"
        body = branches.get(name)
        if body is None:
            raise GraphError(f"{who}: it has no {name} (onnxruntime refuses the model)")
        if len(body.output) != len(n.output):
            raise GraphError(f"{who}: its {name} returns {len(body.output)} values, the node {len(n.output)}")
        out = self.inline(body, f"{n.name}/{name[:-7]}/", {}, [o or None for o in n.output], outer, who, name)
        other = "else_branch" if name == "then_branch" else "then_branch"
        if other not in branches:   # (both are required attributes: onnxruntime resolves both)
            raise GraphError(f"{who}: it has no {other} (onnxruntime refuses the model, though that branch would "
                             "not run)")
        if len(branches[other].output) != len(out):
            raise GraphError(f"{who}: its {other} (not taken) returns {len(branches[other].output)} values, its "
                             f"{name} {len(out)} (onnxruntime refuses the model: \"then_branch and else_branch "
                             "produce different number of outputs\")")
        undefined = sorted(v for v in _free_names(branches[other]) if v not in outer)
        if undefined:
            raise GraphError(f"{who}: its {other} (not taken) reads {undefined[0]!r}, which neither the branch nor "
                             "the graph around it defines (onnxruntime refuses the model)")
        # (onnxruntime infers both branches: the one not taken must return the types the taken one does)
        for k, vi in enumerate(branches[other].output):
            declared = self.declared(vi)
            if declared is not None:
                self.type_checks.append(TypeCheck(out[k], declared, None, f"{who}: its {other}'s output #{k} "
                                                  f"{vi.name!r} is declared {declared}, but its {name}'s"))
        # (after the declarations, which say it first; then what the untaken branch's nodes make)
        self.type_checks.append(UntakenBranch(out, branches[other], self.onnx, self.model,
                                              f"{who}: its {other} (not taken)"))
        self.check_value_info(branches[other], {}, outer, who, f"{other} (not taken)")

    def expand_fed_if(self, n, who: str, outer: set[str]) -> None:
        """An ``If`` whose condition only the run knows: both branches inlined (``<if id>/then/...``,
        ``<if id>/else/...``), each output of the node a ``Where`` of the condition (as a scalar) between the two
        branches' values. Why: onnxruntime runs either branch, and the plan must hold what either makes; planned
        both, each branch's values have their memory whichever runs (an upper bound of the run's: the branch that
        does not run is planned too), and the output one buffer, of the size both branches make. Outputs of two
        shapes (``BranchShapes``) or two types (``ScanCheck`` on the Where: ONNX's inference of it fails) are
        refused naming the If. A sequence output is selected tensor by tensor (``fed_sequences``, round 70)."""
        branches = dict(_subgraphs(n))
        for name in ("then_branch", "else_branch"):
            if name not in branches:
                raise GraphError(f"{who}: it has no {name} (onnxruntime refuses the model)")
            if len(branches[name].output) != len(n.output):
                raise GraphError(f"{who}: its {name} returns {len(branches[name].output)} values, the node "
                                 f"{len(n.output)}")
        if self.opset < 9:
            raise GraphError(f"{who}: its condition {n.input[0]!r} is known only at run time, and at opset "
                             f"{self.opset} (before Where, opset 9) both branches are not planned (not supported)")
        made = {}
        for name in ("then_branch", "else_branch"):
            made[name] = self.inline(branches[name], f"{n.name}/{name[:-7]}/", {}, [None] * len(n.output), outer,
                                     who, name)
        if self.scope is None:
            self.scope = Scope(self.g)
        optionals = optional_outputs(n, self.g, self.scope)
        sequences = [k for k in sequence_outputs(n, self.g, self.scope) if k not in optionals]
        helper = self.onnx.helper
        np = _numpy()
        scalar = self.fresh(f"{n.name}/condition")
        self.new_nodes.append(helper.make_node(
            "Reshape", [n.input[0], self.constant(f"{n.name}/scalar", np.array([], dtype=np.int64))], [scalar],
            name=self.fresh_node(f"{n.name}/condition")))
        if sequences:
            select_sequences(self, n, who, made, scalar, sequences, self.count, (ScanCheck, BranchShapes))
        if optionals:
            select_optionals(self, n, who, made, scalar, optionals, self.count, (ScanCheck, BranchShapes),
                             TypeCheck)
        for k, out in enumerate(n.output):
            if k in sequences or k in optionals:
                continue
            t, e = made["then_branch"][k], made["else_branch"][k]
            select = self.fresh_node(f"{n.name}/select_{k}")
            self.new_nodes.append(helper.make_node("Where", [scalar, t, e], [out], name=select))
            why = f"{who}: its output #{k} {out!r} (its condition {n.input[0]!r} known only at run time)"
            self.type_checks.append(ScanCheck(select, f"{why}: its branches make it of two types, or not as a "
                                              "tensor, or the condition is not bool (onnxruntime refuses the model "
                                              "but for a sequence or optional output the import did not follow to "
                                              "the node making it)",
                                              f"{why}: its branches make it of two shapes: which branch runs is known "
                                              "only at run time, and so its size (planned as one buffer, it would be "
                                              "sized for one branch)"))
            self.type_checks.append(BranchShapes(out, t, e, why))

    def expand_loop(self, n, who: str, trip, cond, outer: set[str]) -> None:
        body = dict(_subgraphs(n)).get("body")
        if body is None:
            raise GraphError(f"{who}: it has no body (onnxruntime refuses the model)")
        carried = len(n.input) - 2
        if len(body.input) != carried + 2 or len(body.output) < carried + 1:
            raise GraphError(f"{who}: its body takes {len(body.input)} inputs and returns {len(body.output)} values; "
                             f"a Loop of {carried} loop-carried values needs {carried + 2} and at least {carried + 1}")
        scans = len(body.output) - 1 - carried
        if len(n.output) != carried + scans:   # (fewer: onnxruntime refuses, "inferencing returned type
            #   information for 3 outputs. Expected 2"; an output not wanted is named "")
            raise GraphError(f"{who}: it has {len(n.output)} outputs; its body makes {carried + scans} "
                             f"({carried} loop-carried, {scans} scan; onnxruntime refuses the model)")
        runs = cond is None or _truth(cond, who, "condition", n.input[1])
        # (a body computing its condition, tf2onnx's while-loops: unrolled while it folds true, round 75)
        computed = _computed_condition(self, body) if runs and self.fold is not None else None
        if trip is None and runs and computed is None:
            raise GraphError(f"{who}: it has no trip count: it runs until its condition turns false, known "
                             "only at run time (not supported)")
        m = None if trip is None else _integer(trip, who, n.input[0])
        steps = (max(0, m) if m is not None else MAX_UNROLL + 1) if runs else 0
        if computed is not None:
            steps = min(steps, MAX_UNROLL + 1)
        elif steps > MAX_UNROLL:
            raise GraphError(f"{who}: its trip count {n.input[0]!r} is {m}, over the {MAX_UNROLL} iterations a Loop is "
                             "unrolled to at import (each is a copy of its body in the planned graph)")
        for k, want in ((0, "tensor(int64)"), (1, "tensor(bool)"))[:1 if cond is None else 2]:
            # (onnxruntime's inference types the condition input only where the node has a condition: a body's
            # int64 one runs without)
            declared = self.declared(body.input[k])
            if declared is not None and declared != want:
                raise GraphError(f"{who}: its body's {('iteration number', 'condition')[k]} input "
                                 f"{body.input[k].name!r} is declared {declared}, not {want} (onnxruntime refuses "
                                 "the model)")
        cond_vi = body.input[1]
        if cond is not None and cond_vi.type.tensor_type.HasField("shape") \
                and len(cond_vi.type.tensor_type.shape.dim) != _numpy().asarray(cond).ndim:
            # (onnxruntime's inference of the body gives its condition input the node's condition's type: "Mismatch
            # between number of inferred and declared dimensions")
            raise GraphError(f"{who}: its condition {n.input[1]!r} is of rank {_numpy().asarray(cond).ndim}, its "
                             f"body's condition input {cond_vi.name!r} declared of rank "
                             f"{len(cond_vi.type.tensor_type.shape.dim)} (onnxruntime refuses the model)")
        if steps:
            for k in (0, 1):   # (onnxruntime's Loop kernel: "Loop subgraph input 0 has unknown shape")
                vi = body.input[k]
                if not (vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")):
                    raise GraphError(f"{who}: its body's {('iteration number', 'condition')[k]} input {vi.name!r} "
                                     "declares no shape (onnxruntime refuses to run the Loop: \"Loop subgraph input "
                                     f"{k} has unknown shape\")")
        if steps and computed is None:   # (a body that never runs decides nothing)
            _check_condition_stays_true(self, body, who, outer)
        for k in range(carried):
            if not n.input[2 + k]:
                raise GraphError(f"{who}: its loop-carried value #{k} has no initial value (input {2 + k} is empty)")
        if steps == 0:
            for j in range(scans):
                if carried + j < len(n.output) and n.output[carried + j]:
                    self.empty_scan(n, body, who, j, carried, m, runs)
            for k in range(carried):
                if k < len(n.output) and n.output[k]:
                    self.new_nodes.append(self.onnx.helper.make_node(
                        "Identity", [n.input[2 + k]], [n.output[k]], name=self.fresh_node(f"{n.name}/output_{k}")))
            return
        iter_in, cond_in = body.input[0].name, body.input[1].name
        hoisted = self.hoist(body, f"{n.name}/")
        reads = _read_in_body(body)
        np = _numpy()
        values = [n.input[2 + k] for k in range(carried)]
        scanned: list[list[str]] = [[] for _ in range(scans)]
        stem = n.name
        for i in range(steps):
            if computed is not None and i == MAX_UNROLL:
                raise GraphError(f"{who}: its body's condition {computed!r} still holds after {MAX_UNROLL} "
                                 f"iterations, the most a Loop is unrolled to at import (each is a copy of its body "
                                 "in the planned graph)")
            bind = {**hoisted, **{body.input[2 + k].name: values[k] for k in range(carried)}}
            if iter_in in reads:
                bind[iter_in] = self.constant(f"{stem}/{i}/{iter_in}", np.array(i, dtype=np.int64))
            if cond_in in reads:
                bind[cond_in] = self.constant(f"{stem}/{i}/{cond_in}", np.array(True))
            last = i == steps - 1 and computed is None   # (a while-loop's last is known once it has run)
            names: list[str | None] = [None] * len(body.output)
            if last:
                for k in range(carried):
                    if k < len(n.output) and n.output[k]:
                        names[1 + k] = n.output[k]
            out = self.inline(body, f"{stem}/{i}/", bind, names, outer, who, "body")
            values = out[1:1 + carried]
            if i == 0:   # (each iteration's value has the type of the one before: the first's is checked)
                self.type_checks.extend(
                    TypeCheck(values[k], None, n.input[2 + k], f"{who}: its loop-carried value #{k} "
                              f"{n.input[2 + k]!r} turns, after an iteration of its body, into a value that")
                    for k in range(carried))
            for j in range(scans):
                scanned[j].append(out[1 + carried + j])
            if computed is not None and self.room is not None and len(self.new_nodes) > self.room:
                raise GraphError(f"{who}: unrolling it adds {len(self.new_nodes)} nodes by its iteration {i} (its "
                                 f"body computes its condition {computed!r}), over the {MAX_UNROLLED_NODES} nodes the "
                                 "expansion of control flow at import may add (each iteration a copy of its body; "
                                 "importing more takes minutes)")
            if computed is not None and i + 1 < steps and not self.holds(out[0], computed, who, i):
                break
        if computed is not None:   # (the Loop's outputs, from the iteration that ran last)
            for k in range(carried):
                if k < len(n.output) and n.output[k]:
                    self.new_nodes.append(self.onnx.helper.make_node(
                        "Identity", [values[k]], [n.output[k]], name=self.fresh_node(f"{n.name}/output_{k}")))
        for j in range(scans):
            target = n.output[carried + j] if carried + j < len(n.output) else ""
            if target:
                concat = self.stack(scanned[j], target, f"{stem}/scan_{j}")
                if concat is not None:
                    self.type_checks.append(ScanCheck(concat, f"{who}: its scan output #{j} {target!r} differs in "
                                                      "shape from one iteration to the next (onnxruntime refuses to "
                                                      "run the Loop: \"Inconsistent shape in loop output\")"))

    def empty_scan(self, n, body, who: str, j: int, carried: int, m: int | None, runs: bool) -> None:
        """Scan output ``j`` of a ``Loop`` that runs no iteration: an empty tensor, of shape [0, *the element shape
        its body declares for it] and the body's element type, as onnxruntime returns it (round 76: it was refused).
        Refused, naming the output, where the body declares no fixed shape for it: the element shape is then the
        body's inference, a run that never happens here; where the body's nodes compute another element type than it
        declares (``_computed_type``), which onnxruntime refuses as it loads the model; and where they compute another
        fixed shape: onnxruntime's empty output then has another shape, which its graph
        optimizations decide (a body declaring [4] and computing [2, 3]: [0, 2, 3] optimized, [0] not), and what a
        ``Shape`` of it sizes was planned 4 elements where onnxruntime writes 6 (or none)."""
        target = n.output[carried + j]
        vi = body.output[1 + carried + j]
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        no_run = f"{who}: it runs no iteration (trip count {m}" + ("" if runs else ", condition false") + ")"
        if tt is None or not tt.elem_type or not tt.HasField("shape") \
                or not all(d.HasField("dim_value") for d in tt.shape.dim):
            raise GraphError(f"{no_run} and has scan outputs: its body declares no fixed element type and shape for scan "
                             f"output #{j} {target!r} (body output {vi.name!r}): its shape is then the body's, which "
                             "never runs (not supported; declare the body output's shape)")
        declared = [d.dim_value for d in tt.shape.dim]
        said = f"{no_run}: its body declares scan output #{j} {target!r} (body output {vi.name!r})"
        if self.outer_types is None:   # (once an expansion pass: the model's inference)
            self.outer_types = _outer_types(self.onnx, self.model)
        computed = _computed_type(self.onnx, self.model, body, 1 + carried + j, self.outer_types)
        ct = computed.tensor_type if computed is not None and computed.HasField("tensor_type") else None
        if ct is not None and ct.elem_type and ct.elem_type != tt.elem_type:
            raise GraphError(f"{said} {self.declared(vi)}, but its nodes compute "
                             f"{_known_type(self.onnx, computed)}: onnxruntime refuses to load the model (\"Type "
                             "Error\")")
        # (a rank of its own too, where some dimension is a name: an outer value of a symbolic shape, [N] computed for
        # [2, 2] declared, is [0] in onnxruntime as [4] is, where the declaration planned [0, 2, 2])
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in ct.shape.dim] \
            if ct is not None and ct.HasField("shape") else declared
        if len(dims) != len(declared) or all(isinstance(d, int) for d in dims) and dims != declared:
            raise GraphError(f"{said} of element shape {declared}, but its nodes compute "
                             f"[{', '.join(map(str, dims))}]: onnxruntime's empty "
                             "output then has another shape than the declared one, which its graph optimizations "
                             "decide (declare the shape the body computes)")
        empty = self.onnx.TensorProto()
        empty.name = self.fresh(f"{n.name}/scan_{j}/empty")
        empty.data_type = tt.elem_type
        empty.dims.extend([0, *(d.dim_value for d in tt.shape.dim)])
        self.new_initializers.append(empty)
        self.new_nodes.append(self.onnx.helper.make_node("Identity", [empty.name], [target],
                                                         name=self.fresh_node(f"{n.name}/scan_{j}")))

    def holds(self, value: str, computed: str, who: str, i: int) -> bool:
        """Whether the condition a while-loop's iteration ``i`` made (``value``, its body's ``computed``) is true,
        folded from the nodes expanded so far; refused where it does not fold (what the inputs hold decides it)."""
        assert self.fold is not None
        got = self.fold([value]).get(value)
        if got is None:
            raise GraphError(f"{who}: its body computes its condition {computed!r}, which after iteration {i} is not "
                             "a constant known at import (computed from what the graph inputs hold): how many "
                             "iterations run is known only at run time (control flow on run-time values is not "
                             "supported)")
        return _truth(got, who, "body's condition", computed)

    def expand_scan(self, n, who: str, shapes: list, outer: set[str]) -> None:
        """A ``Scan`` (opset 9 on) unrolled: its body once per slice of its scan inputs, as many as their length
        along their axes (``shapes``: each scan input's shape, folded at import). Each iteration reads its slice of
        each scan input (a ``Gather`` of the iteration's index along the input's axis: the last slice first where
        the input's direction is reverse), the states thread from one copy to the next and the last copy makes the
        node's final states, and each scan output is the iterations' values stacked along its axis (the last
        iteration's first where its direction is reverse). Why unrolled: the sizes of what a Scan makes are those
        of its body's values (an RNN exported by tf2onnx or torch.onnx's scripting: the hidden state, each step's
        output), known once the scan inputs' lengths are; planned as copies of the body, each value the run makes
        has its memory, as a Loop's iterations do."""
        np = _numpy()
        attrs = {a.name: a for a in n.attribute}
        body = dict(_subgraphs(n)).get("body")
        if body is None:
            raise GraphError(f"{who}: it has no body (onnxruntime refuses the model)")
        if "num_scan_inputs" not in attrs:
            raise GraphError(f"{who}: it has no num_scan_inputs attribute (onnxruntime refuses the model)")
        m = attrs["num_scan_inputs"].i
        states = len(n.input) - m
        if m < 1 or states < 0:
            raise GraphError(f"{who}: its num_scan_inputs is {m}, of {len(n.input)} inputs (onnxruntime refuses the "
                             "model)")
        scans = len(n.output) - states
        if len(body.input) != states + m or scans < 0 or len(body.output) != states + scans:
            raise GraphError(f"{who}: its body takes {len(body.input)} inputs and returns {len(body.output)} values, "
                             f"the node has {states} states, {m} scan inputs and {len(n.output)} outputs "
                             "(onnxruntime refuses the model)")
        if any(not v for v in n.input):
            raise GraphError(f"{who}: its input #{list(n.input).index('')} is empty (a Scan reads every input)")

        def ints(name: str, count: int, default: int) -> list[int]:
            values = list(attrs[name].ints) if name in attrs else [default] * count
            if len(values) != count:
                raise GraphError(f"{who}: its {name} has {len(values)} values for {count} "
                                 f"{'scan inputs' if 'input' in name else 'scan outputs'} (onnxruntime refuses the "
                                 "model)")
            return values

        in_axes, in_dirs = ints("scan_input_axes", m, 0), ints("scan_input_directions", m, 0)
        out_axes, out_dirs = ints("scan_output_axes", scans, 0), ints("scan_output_directions", scans, 0)
        lengths = []
        for j, (shape, axis) in enumerate(zip(shapes, in_axes)):
            v = n.input[states + j]
            rank = len(shape)
            if not -rank <= axis < rank:
                raise GraphError(f"{who}: its scan input #{j} {v!r} is of rank {rank}, its axis {axis} is out of "
                                 "range (onnxruntime refuses the model)")
            lengths.append(int(shape[axis]))
        if len(set(lengths)) > 1:
            raise GraphError(f"{who}: its scan inputs are of lengths {lengths} along their axes (onnxruntime refuses "
                             "to run it: every scan input has one length)")
        steps = lengths[0]
        if steps > MAX_UNROLL:
            raise GraphError(f"{who}: its scan inputs are {steps} long, over the {MAX_UNROLL} iterations a Scan is "
                             "unrolled to at import (each is a copy of its body in the planned graph)")
        if steps == 0:   # (onnxruntime 1.32: "Invalid dim0_offset of 0. Dimension 0 is 0", states only or not)
            raise GraphError(f"{who}: its scan inputs are of length 0: it runs no iteration, which onnxruntime "
                             "refuses to run (its slicer of the scan inputs fails on an empty one)")
        stem = n.name
        hoisted = self.hoist(body, f"{stem}/")
        reads = _read_in_body(body, first=0)
        values = [n.input[k] for k in range(states)]
        scanned: list[list[str]] = [[] for _ in range(scans)]
        for i in range(steps):
            bind = {**hoisted, **{body.input[k].name: values[k] for k in range(states)}}
            for j in range(m):
                slot = body.input[states + j].name
                if slot not in reads:
                    continue
                index = self.constant(f"{stem}/{i}/index_{j}",
                                      np.array(steps - 1 - i if in_dirs[j] else i, dtype=np.int64))
                piece = bind[slot] = self.fresh(f"{stem}/{i}/{slot}")
                self.new_nodes.append(self.onnx.helper.make_node(
                    "Gather", [n.input[states + j], index], [piece], name=self.fresh_node(f"{stem}/{i}/slice_{j}"),
                    axis=in_axes[j]))
            names: list[str | None] = [None] * len(body.output)
            if i == steps - 1:
                for k in range(states):
                    if n.output[k]:
                        names[k] = n.output[k]
            out = self.inline(body, f"{stem}/{i}/", bind, names, outer, who, "body", fed_from=0)
            values = out[:states]
            if i == 0:
                self.type_checks.extend(
                    TypeCheck(values[k], None, n.input[k], f"{who}: its state #{k} {n.input[k]!r} turns, after an "
                              "iteration of its body, into a value that") for k in range(states))
                self.type_checks.extend(StateShape(values[k], n.input[k], f"{who}: its state #{k} {n.input[k]!r}")
                                        for k in range(states))
            for j in range(scans):
                scanned[j].append(out[states + j])
        for j in range(scans):
            target = n.output[states + j]
            if not target:
                continue
            parts = scanned[j][::-1] if out_dirs[j] else scanned[j]
            concat = self.stack(parts, target, f"{stem}/scan_{j}", out_axes[j])
            if concat is not None:
                self.type_checks.append(ScanCheck(concat, f"{who}: its scan output #{j} {target!r} differs in shape "
                                                  "from one iteration to the next (onnxruntime refuses to run the "
                                                  "Scan)"))

    def hoist(self, body, prefix: str) -> dict[str, str]:
        """Copy a Loop body's constants (initializers, Constant nodes) into the graph once, returning each one's new
        name. Why: they hold the same value in every iteration; copied per iteration, a body's weight was planned
        ``M`` times over."""
        names: dict[str, str] = {}
        for t in body.initializer:
            c = self.onnx.TensorProto()
            c.CopyFrom(t)
            c.name = names[t.name] = self.fresh(f"{prefix}{t.name}")
            self.new_initializers.append(c)
        for st in body.sparse_initializer:
            c = self.onnx.SparseTensorProto()
            c.CopyFrom(st)
            c.values.name = names[st.values.name] = self.fresh(f"{prefix}{st.values.name}")
            self.new_sparse.append(c)
        for n, nid in zip(body.node, _node_ids(body)):
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and not n.input and len(n.output) == 1 \
                    and n.output[0]:
                c = self.onnx.NodeProto()
                c.CopyFrom(n)
                c.name = self.fresh_node(f"{prefix}{nid}")
                c.output[0] = names[n.output[0]] = self.fresh(f"{prefix}{n.output[0]}")
                self.new_nodes.append(c)
        return names

    def stack(self, parts: list[str], target: str, stem: str, axis: int = 0) -> str | None:
        """``target`` = the ``parts`` stacked on a new axis ``axis`` (of the result; Unsqueeze each there, then
        Concat): a Loop's or a Scan's scan output, each iteration's value one slice. Returns the Concat node's name
        (None: one part, no Concat)."""
        helper = self.onnx.helper
        axes = None
        if self.opset >= 13:
            axes = self.constant(f"{stem}/axes", _numpy().array([axis], dtype=_numpy().int64))
        pieces = []
        for i, p in enumerate(parts):
            piece = target if len(parts) == 1 else self.fresh(f"{stem}/{i}")
            node_name = self.fresh_node(f"{stem}/unsqueeze_{i}")
            if axes is None:
                self.new_nodes.append(helper.make_node("Unsqueeze", [p], [piece], name=node_name, axes=[axis]))
            else:
                self.new_nodes.append(helper.make_node("Unsqueeze", [p, axes], [piece], name=node_name))
            pieces.append(piece)
        if len(parts) == 1:
            return None
        concat = self.fresh_node(f"{stem}/concat")
        self.new_nodes.append(helper.make_node("Concat", pieces, [target], name=concat, axis=axis))
        return concat


def _read_in_body(body, first: int = 1) -> set[str]:
    """Every name the nodes (and subgraphs) of a Loop's ``body`` read, and its outputs but the condition (a body
    input only the condition passes through needs no value of its own); ``first``: the first output counted (0 for a
    Scan's body, which returns no condition)."""
    names = {v for n in body.node for v in n.input if v} | {o.name for o in body.output[first:]}
    for n in body.node:
        for _a, sub in _subgraphs(n):
            names.update(_free_names(sub))
    return names


def _truth(value, who: str, what: str, name: str) -> bool:
    """The one boolean ``value`` holds (an If's or Loop's condition)."""
    np = _numpy()
    arr = np.asarray(value)
    if arr.dtype != np.bool_:
        # (the schema's B is tensor(bool): onnxruntime refuses the model as it loads; read as a truth value, a
        # float or int condition was inlined as if it were one)
        raise GraphError(f"{who}: its {what} {name!r} is of dtype {arr.dtype}, not bool (If and Loop take a "
                         "tensor(bool) condition; onnxruntime refuses the model)")
    if arr.size != 1:
        raise GraphError(f"{who}: its {what} {name!r} holds {arr.size} values, not one (onnxruntime refuses to run it)")
    return bool(arr.reshape(-1)[0])


def _integer(value, who: str, name: str) -> int:
    np = _numpy()
    arr = np.asarray(value)
    if arr.dtype != np.int64:   # (the schema's I is tensor(int64) only: onnxruntime refuses an int32 one)
        raise GraphError(f"{who}: its trip count {name!r} is of dtype {arr.dtype}, not int64 (Loop takes a "
                         "tensor(int64) trip count; onnxruntime refuses the model)")
    if arr.size != 1:
        raise GraphError(f"{who}: its trip count {name!r} is {_short(arr.tolist())}, not one integer")
    return int(arr.reshape(-1)[0])


def _check_condition_stays_true(ex: _Expander, body, who: str, outer: set[str]) -> None:
    """Refuse a Loop whose body's condition output may turn false: only its condition input passed through (as it
    is, or through Identity nodes), or a
    constant true (a Constant node or initializer of the body, or of the main graph), keeps every iteration
    running; anything the body computes decides the count of iterations at run time."""
    cond_in, cond_out = body.input[1].name, body.output[0].name
    made = {o: n for n in body.node for o in n.output if o}
    seen: set[str] = set()
    while cond_out in made and made[cond_out].op_type == "Identity" and cond_out not in seen:
        seen.add(cond_out)   # (through Identity nodes: torch's exports pass the condition on so)
        cond_out = made[cond_out].input[0] if made[cond_out].input else ""
    if cond_out == cond_in:
        return
    value = _constant_in(ex.onnx, body, cond_out)
    if value is None and cond_out not in _defined(body):
        value = _constant_in(ex.onnx, ex.g, cond_out)
        if value is None:   # (a constant of the graph around, saved to external data: ``_outer_condition``)
            value = ex.known.get(cond_out)
    arr = None if value is None else _numpy().asarray(value)
    if arr is not None and arr.dtype == _numpy().bool_ and arr.size == 1 and bool(arr.reshape(-1)[0]):
        return   # (a constant of another dtype is a type error onnxruntime refuses: not taken for true)
    raise GraphError(f"{who}: its body computes its condition {cond_out!r} (not its condition input passed through "
                     "nor a constant true): how many iterations run is known only at run time (not supported)")


def _computed_condition(ex: _Expander, body) -> str | None:
    """The value a Loop's ``body`` computes its condition output from, or None where its condition stays true (its
    condition input passed through, or a constant true: ``_check_condition_stays_true`` passes it)."""
    try:
        _check_condition_stays_true(ex, body, "", set())
    except GraphError:
        return body.output[0].name if body.output else None
    return None


def _outer_condition(n, g, producer: dict[str, int]) -> list[str]:
    """The constant of graph ``g`` (an initializer, or a Constant node's output) that Loop ``n``'s body passes on as
    its condition (through Identity nodes: torch's scripted loops pass an outer Constant ``true`` so), or none: the
    expansion folds its value with the trip count's, so that one held in an external data file is read."""
    body = dict(_subgraphs(n)).get("body") if n.op_type == "Loop" else None
    if body is None or len(body.input) < 2 or not body.output:
        return []
    made = {o: m for m in body.node for o in m.output if o}
    cond_out, seen = body.output[0].name, set()
    while cond_out in made and made[cond_out].op_type == "Identity" and cond_out not in seen:
        seen.add(cond_out)
        cond_out = made[cond_out].input[0] if made[cond_out].input else ""
    if not cond_out or cond_out in _defined(body) or cond_out in {v.name for v in g.input}:
        return []
    constant = cond_out in producer and g.node[producer[cond_out]].op_type == "Constant"
    return [cond_out] if constant or cond_out in {t.name for t in g.initializer} else []


def _constant_in(onnx, g, name: str):
    """The value ``name`` holds where graph ``g`` makes it a constant: an initializer (not also a graph input, which
    the caller may override) or the output of a Constant node; else None."""
    if name in {v.name for v in g.input}:
        return None
    for t in g.initializer:
        if t.name == name:
            return _array(onnx, t)
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and list(n.output) == [name]:
            if len(n.attribute) != 1:
                return None
            a = n.attribute[0]
            if a.name == "value":
                return _array(onnx, a.t)
            if a.name in ("value_int", "value_ints", "value_float", "value_floats"):
                return _numpy().array(onnx.helper.get_attribute_value(a))
            return None
    return None


def _array(onnx, t):
    if t.data_location == onnx.TensorProto.EXTERNAL or math.prod(t.dims) > 16:
        return None
    try:
        return onnx.numpy_helper.to_array(t)
    except Exception:  # noqa: BLE001 - a tensor numpy cannot hold: not a condition or count
        return None


def _control_inputs(n) -> list[str]:
    """The inputs of control node ``n`` whose values decide its course: an If's condition, a Loop's trip count and
    condition."""
    if n.op_type == "If":
        return [v for v in n.input[:1] if v]
    if n.op_type == "Loop":
        return [v for v in n.input[:2] if v]
    return []


def _scan_inputs(n) -> list[str]:
    """The scan inputs of a ``Scan`` node ``n`` (whose shapes decide its iterations; [] for another node)."""
    if n.op_type != "Scan":
        return []
    m = next((a.i for a in n.attribute if a.name == "num_scan_inputs"), 0)
    return list(n.input[len(n.input) - m:]) if 0 < m <= len(n.input) else []


def expand_control_flow(onnx, model, resolve: Resolver,
                        type_checks: list[TypeCheck] | None = None) -> tuple[Any, list[int] | None]:
    """The model with each ``If`` and ``Loop`` of its graph (and of their branches and bodies, as they are inlined)
    expanded as the module's docstring says, and for each node of the result the index of the node of ``model`` it
    comes from (None where nothing was expanded: ``model`` itself is returned). ``resolve`` computes the values of
    conditions and trip counts that the nodes before them fold to. Anything else with a subgraph is refused,
    naming the node and why. ``type_checks`` (where given) is extended with the types the expanded values must
    have (``check_types``, once the import has inferred them)."""
    g = model.graph
    if not has_control_flow(g):
        return model, None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    _check_subgraph_names(g, _node_ids(g))
    copy = type(model)()
    copy.CopyFrom(model)
    g = copy.graph
    ids = _node_ids(g)
    for n, nid in zip(g.node, ids):
        n.name = nid   # (the ids the import names them by; the expansion's new nodes are then named after them)
    origin = list(range(len(g.node)))
    base = len(g.node)   # (the model's own nodes: what the expansion adds beyond them is bounded)
    folds = [0]   # (while-loop conditions folded so far, all passes: ``MAX_CONDITION_FOLDS``)
    while True:
        nodes = list(g.node)
        producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
        control = [i for i, n in enumerate(nodes) if _subgraphs(n)]
        if not control:
            break
        controls = set(control)
        ready: set[int] = set()
        scope = Scope(g)   # (g's index, built once a pass: each If asked of it was a scan of g, quadratic)
        for i in control:
            n = nodes[i]
            who = f"node {n.name!r} ({n.op_type})"
            if n.op_type in NOT_UNROLLED or n.op_type not in ("If", "Loop", "Scan") \
                    or n.domain not in ("", "ai.onnx"):
                why = NOT_UNROLLED.get(n.op_type, "only If, Loop and Scan are expanded at import")
                raise GraphError(f"{who} has a subgraph (attribute {_subgraphs(n)[0][0]!r}): control flow "
                                 f"(If/Loop/Scan) is not supported: {why}")
            if n.op_type == "Scan" and opset < 9:
                raise GraphError(f"{who}: a Scan of opset {opset} (Scan-8: batched, of sequence lengths fed at run "
                                 "time) is not unrolled at import (not supported; Scan-9 on is)")
            decides = _control_inputs(n) + _scan_inputs(n)
            if n.op_type == "If" and sequence_outputs(n, g, scope):   # (the tensor counts of its sequences are folded from
                #   what its branches read: not before that is expanded)
                decides += sorted({v for _a, sub in _subgraphs(n) for v in _free_names(sub)})
            if not any(j in controls for j in _ancestors(nodes, producer, decides)):
                ready.add(i)
        if not ready:   # (each waits for another: a cycle through what their subgraphs read; never a hang)
            n = nodes[control[0]]
            raise GraphError(f"node {n.name!r} ({n.op_type}): what it reads is computed from control flow that reads "
                             "what it makes (a cycle through its subgraphs; onnxruntime refuses the model)")
        wanted = sorted({v for i in ready for v in _control_inputs(nodes[i])}
                        | {v for i in ready for v in _outer_condition(nodes[i], g, producer)})
        known = {v: c for v in wanted if (c := _constant_in(onnx, g, v)) is not None}
        rest = [v for v in wanted if v not in known and v in producer]
        # (a Scan's iterations are its scan inputs' length: their shapes folded by Shape nodes of the sub-model)
        taken = _all_names(g, set())
        shape_of = {v: _unused(f"{v}/scan_shape", taken) for v in sorted({v for i in ready
                                                                         for v in _scan_inputs(nodes[i])})}
        shape_nodes = [onnx.helper.make_node("Shape", [v], [s], name=s) for v, s in shape_of.items()]
        # (an initializer whose data ``_constant_in`` does not read, saved to an external file: read by the import's
        # own inference, as a size would be, through an Identity of the sub-model. Round 74: a Loop's trip count or an
        # If's condition so was refused as "defined nowhere", though onnxruntime runs the model)
        held = {t.name for t in g.initializer} - {v.name for v in g.input}
        value_of = {v: _unused(f"{v}/value", taken) for v in wanted if v not in known and v in held}
        shape_nodes += [onnx.helper.make_node("Identity", [v], [s], name=s) for v, s in value_of.items()]
        if rest or shape_nodes:
            asked = rest + list(shape_of.values()) + list(value_of.values())
            sub = _sub_model(onnx, copy, [nodes[k] for k in sorted(_ancestors(nodes, producer, list(shape_of) + rest))]
                             + shape_nodes, asked)
            known.update({k: v for k, v in resolve(sub, asked).items() if k in asked})
            known.update({v: known.pop(s) for v, s in value_of.items() if s in known})
        ex = _Expander(onnx, copy)
        ex.scope = scope
        ex.known = known
        outer = _defined(g)
        inputs = {v.name for v in g.input}
        weights = {t.name for t in g.initializer}
        new_nodes: list = []
        new_origin: list[int] = []
        grown = len(nodes)
        for i, n in enumerate(nodes):
            if i not in ready:
                new_nodes.append(n)
                new_origin.append(origin[i])
                continue
            who = f"node {n.name!r} ({n.op_type})"
            if n.op_type == "If" and not (n.input and n.input[0]) or n.op_type == "Loop" and len(n.input) < 2:
                raise GraphError(f"{who}: it lacks its required inputs ({len(n.input)} given; onnxruntime refuses "
                                 "the model)")
            fed_if = n.op_type == "If" and n.input and n.input[0] and n.input[0] not in known and \
                (n.input[0] in inputs or n.input[0] in producer)
            for v in _control_inputs(n):
                if v not in known and not fed_if:
                    if v in inputs:
                        source = "a graph input" + (", an initializer the caller may override" if v in weights else "")
                    elif v in weights or v in producer and nodes[producer[v]].op_type == "Constant":
                        # (its data in an external file the import could not read: ``value_of``)
                        source = (f"{'an initializer' if v in weights else 'a Constant'} whose data lies in an "
                                  "external file that was not read (give the model by its path, or "
                                  "external_data_dir=its folder, with that file there)")
                    else:
                        source = "computed from what the graph inputs hold" if v in producer else "defined nowhere"
                    if n.op_type == "If":   # (an If of a condition defined nowhere)
                        raise GraphError(f"{who}: its condition {v!r} is not a constant known at import ({source}): "
                                         "which branch runs is known only at run time (not supported)")
                    raise GraphError(f"{who}: its {_role(n, v)} {v!r} is not a constant known at import ({source}): "
                                     f"which iterations run is known only at run time, and so {_unknown_of(n)} "
                                     "(control flow on run-time values is not supported: a Loop is planned unrolled, "
                                     "one copy of its body an iteration; give its trip "
                                     "count as a constant, an initializer that is not a graph input or a value the "
                                     "inputs' fixed shapes fold to, and its condition so, to plan it)")
            empty = next((k for k, o in enumerate(n.output) if not o), None)
            if empty is not None:
                # (onnxruntime 1.32 crashes loading an If or Loop with an output named "", a segmentation fault; one
                # Loop of a scan output so is refused, "FindDeviceForValue")
                raise GraphError(f"{who}: its output #{empty} is named '' (left out), which onnxruntime cannot load "
                                 "(version 1.32 crashes); name every output of an If or Loop")
            ex.new_nodes = []
            if n.op_type == "Scan":
                shapes = []
                for v in _scan_inputs(n):
                    if shape_of.get(v) not in known:
                        raise GraphError(f"{who}: the shape of its scan input {v!r} is not known at import (a "
                                         "dimension of it not fixed): how many iterations run is known only at run "
                                         "time (fix the inputs' dimensions, --dim / --batch)")
                    shapes.append([int(d) for d in _numpy().asarray(known[shape_of[v]]).reshape(-1)])
                axis = next((a.ints[0] for a in n.attribute if a.name == "scan_input_axes" and a.ints), 0)
                length = shapes[0][axis] if shapes and -len(shapes[0]) <= axis < len(shapes[0]) else 0
                # (bounded before any copy, as a Loop is: nested Scans of 64 multiply)
                steps = min(max(0, length), MAX_UNROLL + 1)
                _check_unrolled_size(who, grown, base, steps,
                                     _count_nodes(onnx, dict(_subgraphs(n)).get("body", g.__class__()), g))
                ex.expand_scan(n, who, shapes, outer)
            elif fed_if:
                sub_resolve, sub_expand = _branch_questions(resolve)
                ex.count = lambda names: sequence_lengths(onnx, copy, nodes, producer, ex, names,  # noqa: B023
                                                         sub_resolve, sub_expand)  # noqa: B023
                ex.held = lambda names: held_states(onnx, copy, nodes, producer, ex, names,  # noqa: B023
                                                    sub_resolve, sub_expand)  # noqa: B023
                ex.expand_fed_if(n, who, outer)
            elif n.op_type == "If":
                ex.expand_if(n, who, known[n.input[0]], outer)
            else:
                trip = known.get(n.input[0]) if n.input[0] else None   # (None with a false condition: no run)
                body = dict(_subgraphs(n)).get("body", g.__class__())
                steps = 0 if trip is None else min(max(0, _integer(trip, who, n.input[0])), MAX_UNROLL + 1)
                if len(body.input) >= 2 and body.output and _computed_condition(ex, body) is not None:
                    # (a while-loop: how many iterations run is known as they are made, each one checked then;
                    # 65 of a 2,100-node body, estimated, refused one that runs 3)
                    steps = 1
                _check_unrolled_size(who, grown, base, steps, _count_nodes(onnx, body, g))
                ex.fold = _folder(onnx, copy, nodes, ex, resolve, folds, who)
                ex.room = MAX_UNROLLED_NODES - (grown - base)
                ex.expand_loop(n, who, trip, known.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None,
                               outer)
            grown += len(ex.new_nodes)
            if grown > MAX_EXPANDED_NODES:
                raise GraphError(f"{who}: expanding control flow grows the graph past {MAX_EXPANDED_NODES} nodes")
            if grown - base > MAX_UNROLLED_NODES:   # (an If's branches, not estimated before: bounded as made)
                raise GraphError(f"{who}: expanding control flow adds {grown - base} nodes to the graph, over the "
                                 f"{MAX_UNROLLED_NODES} its expansion at import may add (each If branch, Loop "
                                 "iteration and Scan step a copy of its subgraph; importing more takes minutes)")
            new_nodes.extend(ex.new_nodes)
            new_origin.extend([origin[i]] * len(ex.new_nodes))
        del g.node[:]
        g.node.extend(new_nodes)
        g.initializer.extend(ex.new_initializers)
        g.sparse_initializer.extend(ex.new_sparse)
        if type_checks is not None:
            type_checks.extend(ex.type_checks)
        origin = new_origin
    return copy, origin


def _folder(onnx, copy, nodes: list, ex: _Expander, resolve: Resolver, folds: list[int],
            who: str) -> Callable[[list[str]], dict[str, Any]]:
    """``ex.fold`` for a Loop of ``nodes`` (the graph's this pass): the values among ``names`` that the import's
    inference folds from the nodes they are computed from, of ``nodes`` and of the Loop's expansion so far. Why: a
    tf2onnx while-loop's body computes its condition (``Less(i + 1, limit)``); its value after each iteration, known
    at import where the limit is a constant or a shape, says whether another runs. ``folds`` counts the folds made
    (``MAX_CONDITION_FOLDS``), ``who`` names the Loop."""
    def fold(names: list[str]) -> dict[str, Any]:
        folds[0] += 1
        if folds[0] > MAX_CONDITION_FOLDS:
            raise GraphError(f"{who}: folding its body's condition once an iteration makes more than "
                             f"{MAX_CONDITION_FOLDS} folds of while-loop conditions in this model (nested "
                             "while-loops; each fold an inference of what the condition is computed from), the most "
                             "made at import")
        pool = list(nodes) + list(ex.new_nodes)
        made = {o: k for k, m in enumerate(pool) for o in m.output if o}
        wanted = _ancestors(pool, made, names)
        if any(_subgraphs(pool[k]) for k in wanted):   # (computed from control flow not yet expanded)
            return {}
        picked = [pool[k] for k in sorted(wanted)]
        sub = _sub_model(onnx, copy, picked, names)
        read = {v for m in picked for v in m.input if v}
        sub.graph.initializer.extend(t for t in ex.new_initializers if t.name in read)
        sub.graph.sparse_initializer.extend(t for t in ex.new_sparse if t.values.name in read)
        return {k: v for k, v in resolve(sub, names).items() if k in names}

    return fold


def _check_unrolled_size(who: str, grown: int, base: int, steps: int, body: int) -> None:
    """Refuse, before any copy, a Loop or Scan whose ``steps`` iterations of a ``body`` of that many nodes (its own
    control flow unrolled, at most: ``_count_nodes``) would take the graph, now of ``grown`` nodes of which ``base``
    are the model's own, past ``MAX_EXPANDED_NODES``, or add more than ``MAX_UNROLLED_NODES`` to it. Why named with
    the count: a 553-byte model of three nested 64-step Loops unrolled to about 800,000 nodes, under the 2**20 bound,
    and took minutes to import; the message says how large it would be and why it is not unrolled."""
    estimate = steps * body
    if grown + estimate > MAX_EXPANDED_NODES:
        raise GraphError(f"{who}: unrolling it grows the graph past {MAX_EXPANDED_NODES} nodes")
    if grown - base + estimate > MAX_UNROLLED_NODES:
        raise GraphError(f"{who}: unrolling it adds about {estimate} nodes ({steps} iterations of a body of up to "
                         f"{body} nodes, its own control flow unrolled), over the {MAX_UNROLLED_NODES} nodes the "
                         "expansion of control flow at import may add (each iteration a copy of its body; importing "
                         "more takes minutes)")


def _branch_questions(resolve: Resolver) -> tuple[Resolver, Callable]:
    """``(resolve, expand)`` for the questions a fed If asks of its branches' expansion (``sequence_lengths``,
    ``held_states``): the expansion keeps its checks, and an inference failure at a node one of them names (the
    ``Where`` selecting a nested If's output of two shapes) is refused as that check says. Why: the failure was
    raised as it was ("ONNX shape inference failed: ... Where, node name: outer/then/inner/select_0/0:
    Incompatible dimensions"), where the nested If's own expansion names it and its output."""
    checks: list = []

    def expand(onnx, model, inner: Resolver):
        return expand_control_flow(onnx, model, inner, checks)

    def answered(model, names: list[str]) -> dict[str, Any]:
        try:
            return resolve(model, names)
        except GraphError as exc:
            why = scan_refusal(checks, str(exc))
            if why is None:
                raise
            raise GraphError(why) from None

    return answered, expand


def _check_subgraph_names(g, ids: list[str]) -> None:
    """Refuse, naming the node and the value, a subgraph node that makes a value of a name a scope around it has
    (an outer node's output, input or initializer), and a subgraph that returns an outer value as it is. Why:
    onnxruntime refuses both models ("Graph must be in single static assignment (SSA) form, however 't' has been
    used as output names multiple times"; "Subgraph output (x) is an outer scope value being returned directly");
    inlined, each would have been planned (renamed apart, or through an Identity) though the model does not
    load. The scope is the one onnxruntime holds a subgraph to: the names defined before its node (the graph's inputs
    and initializers, the outputs of the nodes before it, and the scopes around); a branch that makes the name of its
    If's own output, or of a value a later node makes, is renamed apart at inlining, as onnxruntime runs such a model
    (round 76: it was refused, "onnxruntime refuses the model", which it does not)."""
    def walk(graph, outer: set[str], who: str) -> None:
        scope: set[str] | None = None   # (once a graph, not once a node: 10,000 Ifs were 10,000 copies of it)
        for n, nid in zip(graph.node, _node_ids(graph)):
            subs = _subgraphs(n)
            if not subs:
                if scope is not None:
                    scope.update(o for o in n.output if o)
                continue
            where = f"{who}node {nid!r} ({n.op_type})"
            if scope is None:   # (what the nodes before this one define, grown node by node from here on)
                scope = outer | {v.name for v in graph.input} | {t.name for t in graph.initializer}
                scope |= {t.values.name for t in graph.sparse_initializer}
                for before in graph.node:
                    if before is n:
                        break
                    scope.update(o for o in before.output if o)
            for attr, sub in subs:
                for inner in sub.node:
                    taken = next((o for o in inner.output if o in scope), None)
                    if taken is not None:
                        raise GraphError(f"{where}: its {attr} makes {taken!r}, a name the graph around it has too "
                                         "(ONNX requires each name to be assigned once, subgraphs included; "
                                         "onnxruntime refuses the model)")
                own = _defined(sub)
                outer_value = next((o.name for o in sub.output if o.name not in own), None)
                if outer_value is not None:
                    raise GraphError(f"{where}: its {attr} returns {outer_value!r}, a value of the graph around it, "
                                     "as it is (onnxruntime refuses the model: \"Subgraph output is an outer scope "
                                     "value being returned directly\"; an Identity node between makes it valid)")
                walk(sub, scope, f"{where}: its {attr}'s ")
            scope.update(o for o in n.output if o)

    walk(g, set(), "")


def _unknown_of(loop) -> str:
    """What a ``Loop`` of a run-time count of iterations leaves unknown: its scan outputs' sizes where it has any
    (named), else how many times its body's values are made."""
    body = dict(_subgraphs(loop)).get("body")
    carried = len(loop.input) - 2
    scans = [o for o in loop.output[carried:] if o] if body is not None else []
    if scans:
        return ("the size of its scan output" + ("s " if len(scans) > 1 else " ") + ", ".join(map(repr, scans))
                + " (the iterations times each iteration's shape)")
    return "how many times its body's values are made"


def _role(n, v: str) -> str:
    if n.op_type == "If":
        return "condition"
    return "trip count" if n.input[0] == v else "condition"
