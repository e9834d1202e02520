"""The element types each op's schema lets a node's inputs and outputs take, checked for every node of every op.

Why: onnxruntime refuses to load a model one of whose nodes reads (or makes) a type its op's schema does not allow
at the model's opset ("Type Error: Type 'tensor(int32)' of input parameter (X) of operator (Gelu) ... is invalid"),
or that binds one type parameter to two types ("Type parameter (T) of Optype (Add) bound to different types").
ONNX's strict inference checks onnx's own ops, but names the node by its ONNX name (often empty) and, for an op it
infers through its function body (MeanVarianceNormalization), by an inner op ("(op_type:Sqrt): X typestr: T, has
unsupported type: tensor(int32)"); onnxruntime's own ops (``com.microsoft``'s, ``SimplifiedLayerNormalization``)
were not checked at all, so a Gelu or FusedMatMul of int32 was planned. The rules are read from the schemas (onnx's,
and onnxruntime's where it is installed, for its own ops), not from a list of ops, so a new op or a widened type
list is followed as the installed packages define it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..._interrupt import raise_if_interrupted
from ...errors import GraphError
from .common import _type_text


class Param(NamedTuple):
    """One formal input or output of a schema: its name, its type (a type parameter such as ``T``, or a literal
    type such as ``tensor(int64)``), whether it is variadic, and whether all its actuals share one type."""
    name: str
    type_str: str
    variadic: bool
    homogeneous: bool


class Rules(NamedTuple):
    """What a schema says of types: its formal inputs and outputs, and each type parameter's allowed types."""
    op: str
    since: int
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    allowed: Mapping[str, frozenset[str]]


def _params(formals, ort: bool) -> tuple[Param, ...]:
    """The ``Param``s of a schema's formal parameters (onnx's and onnxruntime's bindings spell their fields apart)."""
    return tuple(Param(p.name, p.typeStr if ort else p.type_str, "Variadic" in str(p.option),
                       bool(p.isHomogeneous if ort else p.is_homogeneous)) for p in formals)


def _rules_of(schema, ort: bool) -> Rules:
    return Rules(schema.name, schema.since_version, _params(schema.inputs, ort), _params(schema.outputs, ort),
                 {t.type_param_str: frozenset(t.allowed_type_strs) for t in schema.type_constraints})


@functools.cache  # (read once per process: a fact about the installation)
def _ort_schemas() -> dict[tuple[str, str], list]:
    """onnxruntime's registered schemas, ``(domain, op) -> [schema, ...]`` by version, or ``{}`` where onnxruntime is
    not installed. Loaded only when a node of an op onnx does not define is checked (its ops ship their schemas in
    onnxruntime only), never when ``memplan`` is imported."""
    try:
        from onnxruntime.capi import _pybind_state
        schemas = _pybind_state.get_all_operator_schema()
    except Exception as exc:  # noqa: BLE001 - not installed, or a build without its schemas: its ops go unchecked
        raise_if_interrupted(exc)   # (a Ctrl-C in its bindings' init: the command's, never cached as "not installed")
        return {}
    out: dict[tuple[str, str], list] = {}
    for s in schemas:
        out.setdefault((s.domain, s.name), []).append(s)
    for v in out.values():
        v.sort(key=lambda s: s.since_version)
    return out


def ort_default_domain_ops() -> frozenset[str] | None:
    """The default-domain ops onnxruntime registers that the installed onnx does not define, read from onnxruntime's
    schemas; None where onnxruntime is not installed (the caller then keeps the names it knows)."""
    schemas = _ort_schemas()
    return frozenset(op for (d, op) in schemas if d == "") if schemas else None


#: the ops of onnx's domains onnxruntime registers before onnx's first version of them (its own schemas, which it
#: loads), by their first version there: what stands in for ``_ort_schemas`` where onnxruntime is not installed
ORT_EARLIER_SCHEMAS = {("", "LayerNormalization"): 1, ("", "MeanVarianceNormalization"): 1, ("", "ThresholdedRelu"): 1}


def ort_registers(domain: str, op: str, version: int) -> bool:
    """Whether onnxruntime registers a schema of ``domain:op`` at opset ``version`` of its domain (one of that
    version or before), read from its schemas where it is installed, else from ``ORT_EARLIER_SCHEMAS`` (asked only
    of an op onnx defines from a later version on)."""
    schemas = _ort_schemas()
    if schemas:
        return any(s.since_version <= version for s in schemas.get((domain, op), ()))
    return ORT_EARLIER_SCHEMAS.get((domain, op), version + 1) <= version


#: onnxruntime's ops whose schemas take attributes they do not declare (``AllowUncheckedAttributes``: its checker lets
#: an unknown name through); found by loading a node of each of its ``com.microsoft`` ops with an extra attribute
ORT_UNCHECKED_ATTRIBUTES = frozenset({"BiasDropout", "BitmaskBiasDropout", "BitmaskDropout", "EPContext",
                                      "QOrderedLayerNormalization", "Snpe"})


def ort_attributes(domain: str, op: str, version: int) -> dict[str, tuple[int, bool]] | None:
    """``{attribute: (AttributeProto type, required)}`` of onnxruntime's own op ``domain:op`` at opset ``version`` of
    its domain, from onnxruntime's schema; None where it registers none there (or is not installed)."""
    found = [s for s in _ort_schemas().get((domain, op), []) if s.since_version <= version]
    if not found:
        return None
    return {name: (int(a.type), bool(a.required)) for name, a in found[-1].attributes.items()}


@functools.cache
def rules(domain: str, op: str, version: int) -> Rules | None:
    """The type rules of ``domain:op`` at opset ``version`` of its domain: onnx's schema where onnx defines the op,
    else onnxruntime's (its own ops); None where neither has one at that version (other checks name that)."""
    import onnx

    if onnx.defs.has(op, domain):
        try:
            return _rules_of(onnx.defs.get_schema(op, version, domain), ort=False)
        except Exception:  # noqa: BLE001 - SchemaError: not defined at that opset (``_check_node_schemas``
            # refuses it unless onnxruntime registers its own schema there, which is not judged here)
            return None
    found = [s for s in _ort_schemas().get((domain, op), []) if s.since_version <= version]
    return _rules_of(found[-1], ort=True) if found else None


def _formal(params: tuple[Param, ...], k: int) -> Param | None:
    """The formal parameter the ``k``-th actual binds to (a variadic last one takes all the rest)."""
    if k < len(params):
        return params[k]
    return params[-1] if params and params[-1].variadic else None


#: the most allowed types a message lists (Identity's V has 61: the ones of the actual's kind are shown first)
LISTED = 12


def _listed(types: frozenset[str], actual: str) -> str:
    """The allowed ``types``, those of ``actual``'s kind (``tensor``, ``seq``...) first, at most ``LISTED``."""
    kind = actual.partition("(")[0]
    ordered = sorted(types, key=lambda t: (t.partition("(")[0] != kind, t))
    more = f" and {len(ordered) - LISTED} more" if len(ordered) > LISTED else ""
    return ", ".join(ordered[:LISTED]) + more


def check_node_types(n, where: str, types: Mapping[str, str], version: int | None) -> None:
    """Refuse node ``n`` where one of its inputs or outputs is of a type (``types``: value -> type as the spec
    writes it, ``tensor(float)``; a value absent is not judged) that its op's schema at opset ``version`` of its
    domain does not allow, or where two of them bound to one type parameter differ, naming the node, the value,
    its position and formal name, its type and the types allowed."""
    if version is None:
        return
    domain = "" if n.domain == "ai.onnx" else n.domain
    r = rules(domain, n.op_type, version)
    if r is None:
        return
    bound: dict[str, tuple[str, str]] = {}   # type parameter -> (its first actual, described; that actual's type)
    for what, names, formals in (("input", n.input, r.inputs), ("output", n.output, r.outputs)):
        for k, v in enumerate(names):
            p = _formal(formals, k)
            t = types.get(v) if v else None
            if p is None or t is None:
                continue
            allowed = r.allowed.get(p.type_str)
            shown = f"{what} #{k} {v!r} ({p.name})"
            if allowed is None:   # (a literal type: Reshape's shape is tensor(int64))
                allowed, param = frozenset({p.type_str}), None
            else:
                param = p.type_str
            if t not in allowed:
                takes = f"its {param} is one of {_listed(allowed, t)}" if param else f"it must be {p.type_str}"
                raise GraphError(f"{where}: {shown} is {t}, which {r.op}-{r.since} does not "
                                 f"{'take' if what == 'input' else 'make'} ({takes}); onnxruntime refuses to load "
                                 "the model")
            if param is None or (p.variadic and not p.homogeneous):
                continue   # (each actual of a heterogeneous variadic, Loop's or Scan's, has a type of its own)
            first = bound.setdefault(param, (shown, t))
            if first[1] != t:
                raise GraphError(f"{where}: {shown} is {t} but {first[0]} is {first[1]}: {r.op}-{r.since} binds both "
                                 f"to its one type {param}; onnxruntime refuses to load the model")


def value_types(onnx, g, inferred) -> dict[str, str]:
    """Each value's type as the spec writes it, from the model's graph ``g`` (its inputs, initializers and
    Constants) and the inferred graph ``inferred`` (None: ``g`` alone); a value of unknown type is absent."""
    out: dict[str, str] = {}
    infos = [*g.input, *(() if inferred is None else (*inferred.input, *inferred.value_info, *inferred.output))]
    for vi in infos:
        t = _known_type(onnx, vi.type)
        if t is not None:
            out[vi.name] = t
    for t in g.initializer:
        out[t.name] = _tensor_text(onnx, t.data_type)
    for st in g.sparse_initializer:   # (onnxruntime makes a sparse initializer a dense one as it loads the model)
        out[st.values.name] = _tensor_text(onnx, st.values.data_type)
    return {v: t for v, t in out.items() if t is not None}


@functools.cache
def _tensor_text(onnx, elem: int) -> str | None:
    """``tensor(ELEM)`` of element type ``elem`` as the spec writes it, or None where unknown (0, none such)."""
    text = _type_text(onnx, onnx.helper.make_tensor_type_proto(elem, None)) if elem else "?"
    return None if "?" in text or "undefined" in text or "#" in text else text


def _known_type(onnx, tp) -> str | None:
    """``tp`` as the spec writes it, or None where it (or a type it holds) is unknown."""
    if tp.HasField("tensor_type"):   # (the usual value: one cached text an element type, not one a value)
        return _tensor_text(onnx, tp.tensor_type.elem_type)
    text = _type_text(onnx, tp)
    # (a map, or anything holding one, is not judged: the schemas spell its value type apart, "map(string, float)")
    return None if any(w in text for w in ("?", "undefined", "...", "#", "map(")) else text


#: the words of the importer's error where ONNX's inference of the model failed (what ``explain_type_error`` explains)
INFERENCE_FAILED = "ONNX shape inference failed"


def explain_type_error(onnx, model, node_ids: list[str], opsets: Mapping[str, int]) -> None:
    """Where the model's inference failed, refuse it by the first node (in the graph's order) whose types break its
    schema (``check_node_types``), if one does: the types are those ONNX's lenient inference gives a copy of the
    model stripped of every shape and every declaration but its inputs' types (its Constants too: stood in by
    their types), so that a wrong declaration is not taken as the node's type, and the inference knows fewer
    shapes than the one that failed (onnx's Slice inference aborts the process on a negative dimension: none can
    arise here that the failed inference did not meet first). Runs only once an import has failed. Returns where
    no node breaks its schema (the caller's error stands).

    Why: ONNX's message names the node by its ONNX name, and for an op inferred through its function body by an
    inner op of the body; the user needs the node, the value and the types the op takes."""
    g = model.graph
    bare = onnx.ModelProto()
    bare.ir_version = model.ir_version
    bare.opset_import.extend(model.opset_import)
    bare.functions.extend(model.functions)
    bg = bare.graph
    for vi in g.input:
        bg.input.append(_typed_only(onnx, vi.name, vi.type))
    listed = {vi.name for vi in g.input}
    for t in g.initializer:
        if t.name not in listed:
            bg.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, None))
    for st in g.sparse_initializer:
        if st.values.name not in listed:
            bg.input.append(onnx.helper.make_tensor_value_info(st.values.name, st.values.data_type, None))
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and n.output[0]:
            elem = _constant_elem(n)
            if elem is not None:   # (its data gives a shape: stood in by its type alone)
                bg.input.append(onnx.helper.make_tensor_value_info(n.output[0], elem, None))
                continue
        bg.node.append(n)
    for vi in g.output:
        bg.output.append(onnx.helper.make_empty_tensor_value_info(vi.name))
    try:
        inferred = onnx.shape_inference.infer_shapes(bare, check_type=False, strict_mode=False).graph
    except Exception:  # noqa: BLE001 - no types at all: the caller's error stands
        return
    types = value_types(onnx, bg, inferred)
    for nid, n in zip(node_ids, g.node):
        version = opsets.get("" if n.domain == "ai.onnx" else n.domain)
        check_node_types(n, f"node {nid!r} ({n.op_type})", types, version)


def _typed_only(onnx, name: str, tp) -> Any:
    """A value info of ``name`` of type ``tp`` with every shape in it cleared."""
    vi = onnx.ValueInfoProto()
    vi.name = name
    vi.type.CopyFrom(tp)
    stack = [vi.type]
    while stack:
        t = stack.pop()
        kind = t.WhichOneof("value")
        if kind in ("tensor_type", "sparse_tensor_type"):
            getattr(t, kind).ClearField("shape")
        elif kind in ("sequence_type", "optional_type"):
            stack.append(getattr(t, kind).elem_type)
        elif kind == "map_type":
            stack.append(t.map_type.value_type)
    return vi


#: a Constant's value attributes that are no ``TensorProto``, and the element type each gives
_SHORTHAND_ELEM = {"value_float": 1, "value_floats": 1, "value_int": 7, "value_ints": 7, "value_string": 8,
                   "value_strings": 8}


def _constant_elem(n) -> int | None:
    """The element type of Constant ``n``'s output, or None where it is not plain (a sparse value)."""
    for a in n.attribute:
        if a.name == "value" and a.HasField("t"):
            return a.t.data_type
        if a.name in _SHORTHAND_ELEM:
            return _SHORTHAND_ELEM[a.name]
    return None
