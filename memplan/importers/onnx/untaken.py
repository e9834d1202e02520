"""The If branch not taken, checked as onnxruntime loads it: apart from the expansion, which drops that branch."""

from __future__ import annotations

from typing import Any, NamedTuple

from ...errors import GraphError
from .common import _node_ids
from .graph_scope import _defined, _free_names, _rename_refs, _subgraphs
from .type_rules import _known_type


class UntakenBranch(NamedTuple):
    """The branch ``body`` of an expanded ``If`` that does not run, whose outputs' types must still be those of the
    taken branch's (``taken``: their names in the expanded graph). Why: onnxruntime infers both branches as it loads
    the model and refuses an If whose else branch makes int64 where its then branch makes float, declared or not
    ("Mismatched tensor element type: inferred=int64 declared=float"); expanded, the untaken branch is gone, and an
    undeclared output of another dtype was planned. ``onnx`` and ``model``: the module and the model, whose opsets
    and local functions the branch's inference uses (``_untaken_types``)."""
    taken: list[str]
    body: Any
    onnx: Any
    model: Any
    why: str


def _untaken_model(checks: list[UntakenBranch], types: dict[str, str]) -> tuple[Any, list[list[str]], list]:
    """One flat model of every check's untaken branch, each branch's own values renamed apart (``untaken/<k>/<name>``)
    and its nodes named ``untaken/<k>/<node id>``, each value they read from the scopes around a graph input typed as
    the expanded graph's inference typed it (a tensor of unknown shape; another is left untyped; a graph input as the
    model declares it, an initializer of its dims: what onnxruntime knows of them as it loads); with each branch's
    outputs' names in it, and the initializers copied. Why flat and at once: ONNX's inference of an ``If``'s subgraph
    costs 0.4 ms a branch, a model a branch about as much (+40% on the import of 1,000 Ifs)."""
    onnx = checks[0].onnx
    helper = onnx.helper
    free: set[str] = set()
    nodes: list = []
    initializers: list = []
    outputs: list[list[str]] = []
    typed: list = []   # (the element type each branch's value_info declares of a value of its own)
    for k, c in enumerate(checks):
        body = c.body
        free |= _free_names(body)
        mapping = {v: f"untaken/{k}/{v}" for v in _defined(body)}
        # (its shape not: onnxruntime merges a declared shape of a subgraph's own value leniently, a type strictly)
        typed.extend(helper.make_tensor_value_info(mapping[vi.name], vi.type.tensor_type.elem_type, None)
                     for vi in body.value_info if vi.name in mapping and vi.type.HasField("tensor_type")
                     and vi.type.tensor_type.elem_type)
        for t in body.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(t)
            copy.name = mapping[t.name]
            initializers.append(copy)
        for n, nid in zip(body.node, _node_ids(body)):
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            copy.name = f"untaken/{k}/{nid}"
            copy.input[:] = [mapping.get(v, v) for v in n.input]
            copy.output[:] = [mapping.get(v, v) for v in n.output]
            for _a, sub in _subgraphs(copy):
                _rename_refs(sub, mapping)
            nodes.append(copy)
        outputs.append([mapping.get(o.name, o.name) for o in body.output])
    model = checks[0].model
    declared = {vi.name: vi for vi in model.graph.input if vi.HasField("type")}
    weights = {t.name: t for t in model.graph.initializer if t.name not in declared}
    inputs = []
    for v in sorted(free):
        elem = _elem_of(onnx, types.get(v))
        if v in declared:   # (a graph input: as the model declares it, what onnxruntime knows of it as it loads)
            inputs.append(declared[v])
        elif v in weights:   # (an initializer: its own dims)
            inputs.append(helper.make_tensor_value_info(v, weights[v].data_type, list(weights[v].dims)))
        else:
            inputs.append(helper.make_tensor_value_info(v, elem, None) if elem else helper.ValueInfoProto(name=v))
    g = helper.make_graph(nodes, "untaken", inputs, [], initializers, value_info=typed)
    m = helper.make_model(g, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    m.functions.extend(model.functions)
    return m, outputs, initializers


#: words of ONNX's strict inference errors that say only that a value the untaken branch reads from the graph around
#: is of a type the flat model could not give it (a sequence, an optional, a value of unknown type): not the branch's
#: own fault, so not judged
_UNTYPED_READ = "expected to have type but instead is null"


def check_untaken_validity(checks: list[UntakenBranch], flat) -> None:
    """Refuse the first untaken branch (of ``checks``, its nodes in the flat model ``flat``, ``_untaken_model``)
    that onnxruntime refuses as it loads the model: a node its schema rejects (an op not registered at the model's
    opset, a domain not imported, a required attribute missing, an unknown attribute, too many or too few inputs:
    onnx's checker, which onnxruntime's graph resolution applies to every subgraph), and a node ONNX's strict type and
    shape inference fails on (two types bound to one type parameter, a Cast to no type, a Transpose ``perm`` or a
    Gather ``axis`` out of its input's rank, a MatMul of declared dims that do not match). Why: the branch that does
    not run is still resolved, typed and inferred by onnxruntime, which then refuses to load the model; expanded, the
    branch was dropped unread and the model planned. A value the branch reads from the graph around that nodes make
    is typed, not shaped (its shape at import is what the inputs' fixed dims give, which onnxruntime does not know as
    it loads: a branch that does not run because of a shape may well be invalid for that shape), so a shape error
    on such a value is not judged; a graph input is as declared, an initializer of its dims."""
    onnx = checks[0].onnx
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = flat.ir_version
    ctx.opset_imports = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in flat.opset_import}
    owner = {}   # flat node name -> (the check it is of, its id in the branch)
    for n in flat.graph.node:
        _, k, nid = n.name.split("/", 2)
        owner[n.name] = (checks[int(k)], nid)

    def schema_check(nodes, ids: list[str], where: str, c: UntakenBranch) -> None:
        for n, nid in zip(nodes, ids):
            subs = _subgraphs(n)
            if subs:   # (onnx's checker of a node with a subgraph asks for a lexical scope Python cannot give it:
                #   the subgraphs' own nodes are checked one by one instead)
                for _a, sub in subs:
                    schema_check(sub.node, _node_ids(sub), f"{where}node {nid!r} ({n.op_type}): its {_a}'s ", c)
                continue
            if any(t.data_location == onnx.TensorProto.EXTERNAL for a in n.attribute
                   for t in (*([a.t] if a.HasField("t") else []), *a.tensors)):
                continue   # (onnx's checker looks for the data file, relative to no folder here: not checked, as
                #   the import's own node checks leave such a node to the file checks)
            try:
                onnx.checker.check_node(n, ctx)
            except Exception as exc:  # noqa: BLE001 - onnx's ValidationError, worded by onnx
                text = _first_line(exc).replace(f"Node({n.name})", f"Node({nid})")
                raise GraphError(f"{c.why}: its {where}node {nid!r} ({n.op_type}) is invalid: {text} (onnxruntime "
                                 "refuses the model)") from None

    for n in flat.graph.node:
        c, nid = owner[n.name]
        schema_check([n], [nid], "", c)
    try:
        onnx.shape_inference.infer_shapes(flat, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - onnx's InferenceError; what it says decides
        # (ONNX lists each node's error on a line of its own; a node whose input is untyped fails too, and so do the
        # nodes after it: the first error of another kind is the branch's own)
        lines = [line for line in str(exc).splitlines() if "node name: " in line and _UNTYPED_READ not in line]
        text = lines[0] if lines else ""
        name = next((name for name in owner if f"node name: {name})" in text), None)
        if name is None:   # (an error naming no node of a branch, or of a nested subgraph's: not judged)
            return
        c, nid = owner[name]
        text = text.replace(f"node name: {name})", f"node name: {nid})")
        text = text.replace("[ShapeInferenceError] ", "").replace("Inference error(s): ", "")
        where = f"its node {nid!r}: "
        raise GraphError(f"{c.why}: {where}ONNX's inference fails: {_first_line(text)} (onnxruntime infers both "
                         "branches and refuses the model)") from None


def _first_line(exc) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), str(exc))


def _untaken_types(checks: list[UntakenBranch], types: dict[str, str], flat=None) -> list[list[str | None]]:
    """The types ONNX's (lenient) inference gives each output of each check's untaken branch (None where unknown),
    inferred at once in one flat model (``_untaken_model``; ``flat``: the one already made)."""
    onnx = checks[0].onnx
    helper = onnx.helper
    m, outputs, initializers = flat or _untaken_model(checks, types)
    try:
        inferred = onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - what onnx cannot infer is not judged
        return [[None] * len(c.body.output) for c in checks]
    known = {vi.name: vi for vi in (*inferred.graph.value_info, *inferred.graph.input)}
    known.update({t.name: helper.make_tensor_value_info(t.name, t.data_type, None) for t in initializers})
    return [[_known_type(onnx, known[o].type) if o in known and known[o].HasField("type") else None for o in outs]
            for outs in outputs]


def _elem_of(onnx, text: str | None) -> int:
    """The element type of the tensor type ``text`` (``tensor(float)``), 0 where it is none or not a tensor's."""
    if not text or not text.startswith("tensor("):
        return 0
    from .type_rules import _tensor_text

    return next((e for e in onnx.TensorProto.DataType.values() if e and _tensor_text(onnx, e) == text), 0)
