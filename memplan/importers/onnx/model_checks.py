"""Checks of the model as a whole: IR and opset versions, domains, functions (inlined here), names,
declared types, tensors and node schemas.

Why: everything later assumes a well-formed graph: unique value names, nodes in topological order, tensors whose data
matches their dims, ops that exist at the model's opset. A model breaking one of those is refused naming the node or
value before any size is computed.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import Any

from ..._interrupt import raise_if_interrupted
from ...errors import GraphError, MemplanError
from .. import first_line
from .common import (
    _BITS,
    MAX_DIM,
    ORT_DOMAIN,
    _declared_type,
    _dtype_name,
    _function_name,
    _is_constant,
    _nbytes,
    _need_onnx,
    _node_ids,
    _show_type,
)
from .kernels import (
    check_before_inference,
)
from .ort_ops import ORT_DEFAULT_DOMAIN_OPS, ORT_RULED_ONLY, ORT_RULES, ORT_UNSIZED, ORT_WRONG
from .type_rules import ORT_UNCHECKED_ATTRIBUTES, ort_attributes, ort_default_domain_ops, ort_registers

#: ops that carry subgraphs: not supported (their bodies' tensors would be invisible to the plan)
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
#: the ones the import expands where their course is known (``control_flow``), in a local function's body too
EXPANDED_OPS = frozenset({"If", "Loop"})
#: nodes a model's graph may grow to by inlining its local functions (``_check_inlined_size``): far above any real
#: model's (the largest exports have a few hundred thousand nodes); importing as many takes minutes already
MAX_INLINED_NODES = 1 << 20
def _names(g, where: str = ""):
    """``(what, value)`` for every name field of the graph that memplan reads, copies or turns into an id, in
    the subgraphs of its nodes' attributes too (``where``: the node and attribute holding ``g``, for a subgraph).

    Why subgraphs: the import reads their names as it reads the graph's (an If branch inlined, a Loop body
    unrolled, their ops looked up in onnx's schemas); a byte flipped in a Loop body's value name or op type was a
    raw ``TypeError`` traceback out of ``memplan import`` (round 76)."""
    yield f"{where}graph name", g.name
    for t in g.initializer:
        yield f"{where}initializer name", t.name
    for st in g.sparse_initializer:
        yield f"{where}sparse initializer name", st.values.name
    for i, n in enumerate(g.node):
        yield f"{where}node #{i} name", n.name
        yield f"{where}node #{i} op_type", n.op_type
        yield f"{where}node #{i} domain", n.domain
        for v in list(n.input) + list(n.output):
            yield f"{where}node #{i} value name", v
        for a in n.attribute:   # (onnx's checker names an attribute it does not know: its message was undecodable)
            yield f"{where}node #{i} attribute name", a.name
            yield from _subgraph_names(a, f"{where}node #{i} attribute {a.name!r}")
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        yield f"{where}value name", vi.name
        yield from _type_names(vi.type, f"{where}dimension name of value {vi.name!r}")


def _subgraph_names(a, where: str):
    """``_names`` of the subgraphs an attribute ``a`` holds (``g``, ``graphs``)."""
    for k, sub in enumerate([a.g] if a.HasField("g") else list(a.graphs)):
        yield from _names(sub, f"{where} subgraph #{k}: ")


def _type_names(t, what: str):
    """The dimension names of a value's type: a tensor's, or the tensors' a sequence, optional or map holds."""
    for _ in range(64):   # (a nesting deeper than any real type: protobuf caps it far below)
        kind = t.WhichOneof("value")
        if kind in ("tensor_type", "sparse_tensor_type"):
            for d in getattr(t, kind).shape.dim:
                yield what, d.dim_param
            return
        if kind in ("sequence_type", "optional_type"):
            t = getattr(t, kind).elem_type
        elif kind == "map_type":
            t = t.map_type.value_type
        else:
            return


def _check_text(g) -> None:
    """Every name is text. protobuf (upb) hands back ``bytes`` for a string field that is not valid
    UTF-8: copied into another message it raises ``UnicodeDecodeError``, and as an id it is no string."""
    for what, v in _names(g):
        if isinstance(v, bytes):
            raise GraphError(f"{what} {v!r} is not valid UTF-8")


def _check_model_text(model) -> None:
    """``_check_text`` of the model's graph, its imported domains and its local functions (names, domains, their
    nodes' ops and values), before anything reads them.

    Why: the graph's names were checked only once the model was checked, versioned and its functions inlined, and
    several of those steps read them first: a byte flipped in an op type (``b'Resha\\xb1e'``) made
    ``_drop_ignored_declarations`` hand ``bytes`` to onnx (a raw ``TypeError`` traceback out of ``memplan
    import``) instead of the one-line error naming it."""
    _check_text(model.graph)
    for o in model.opset_import:
        if isinstance(o.domain, bytes):
            raise GraphError(f"imported domain {o.domain!r} is not valid UTF-8")
    for k, f in enumerate(model.functions):
        fields = [("local function name", f.name), ("local function domain", f.domain)]
        fields += [(f"local function #{k} input", v) for v in (*f.input, *f.output)]
        fields += [(f"local function #{k} imported domain", o.domain) for o in f.opset_import]
        for i, n in enumerate(f.node):
            fields += [(f"local function #{k} node #{i} {what}", v) for what, v in
                       (("name", n.name), ("op_type", n.op_type), ("domain", n.domain))]
            fields += [(f"local function #{k} node #{i} value name", v) for v in (*n.input, *n.output)]
            fields += [(f"local function #{k} node #{i} attribute name", a.name) for a in n.attribute]
            for a in n.attribute:
                fields += _subgraph_names(a, f"local function #{k} node #{i} attribute {a.name!r}")
        for what, v in fields:
            if isinstance(v, bytes):
                raise GraphError(f"{what} {v!r} is not valid UTF-8")


def _check_ir_version(onnx, model) -> None:
    """The model's IR version must be one this onnx release reads (1..``onnx.IR_VERSION``). The IR version
    says how the file's fields are to be read (IR 4 let initializers stop being graph inputs, IR 10 added
    per-value metadata, later ones new types and attributes): shape inference ran on a model stamped with a
    future version as if it were today's, silently, and one without a version (0: the field is missing, as in
    a hand-made or truncated model) is no valid model at all; onnx's own checker refuses both."""
    v = model.ir_version
    if v <= 0:
        raise GraphError(f"the model has no valid IR version (ir_version {v}; an ONNX file always sets one): not a "
                         "model onnx can read")
    if v > onnx.IR_VERSION:
        raise GraphError(f"the model's IR version {v} is newer than the installed onnx {onnx.__version__} reads "
                         f"(IR 1..{onnx.IR_VERSION}): a newer onnx may know it")


def _last_opset_imports(model):
    """The model with each domain it imports listed once, at the version listed last (a new model where one is
    listed twice; the one given is not modified). ``""`` and ``"ai.onnx"`` are one domain.

    Why: onnxruntime reads a model's ``opset_import`` in order, a later entry of a domain replacing an earlier one
    (``""`` at 11 then at 13: ``Squeeze`` takes its axes as an input; listed the other way, as an attribute), and
    runs the model; the importer refused it as naming no version. The imports of a local function are left as
    they are (``_check_opset`` still refuses a domain twice there)."""
    last: dict[str, Any] = {}
    for o in model.opset_import:
        last[o.domain if o.domain not in ("", "ai.onnx") else ""] = o
    if len(last) == len(model.opset_import):
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    del copy.opset_import[:]
    for o in model.opset_import:
        if last[o.domain if o.domain not in ("", "ai.onnx") else ""] is o:
            copy.opset_import.add(domain=o.domain, version=o.version)
    return copy


def _check_opset(onnx, model) -> None:
    """Each domain is imported at one version, by the model and by each model-local function, and the default
    domain's is one this onnx release defines.

    Why: shapes are inferred with the newest schema at or below the imported version, so a model stamped with a
    future opset (99) would be sized by today's ops, silently, where a later version may change them (as
    Reshape, Squeeze, Split changed inputs to attributes and back); opset 0 is no opset. A domain listed twice
    at two versions names no version at all: onnx.proto says a function "can rely on at most one version" of a
    domain, and for a model the spec's "highest version" and onnxruntime (which takes the last one listed)
    disagree, so which schema sizes its ops (``ai.onnx.ml``'s LabelEncoder-1 or -4...) is unknown (the model's own
    imports are then reduced to the last of each domain, as onnxruntime reads them: ``_last_opset_imports``; each
    checked first, as onnxruntime refuses an opset 99 listed before the one it uses). A local
    function's body is inlined and sized like the graph's nodes, so its imports are checked the same way
    (``_check_function_opsets`` checks them against the model's)."""
    newest = onnx.defs.onnx_opset_version()
    owners = [("the model", model.opset_import)]
    owners += [(f"local function {_function_name(f)}", f.opset_import) for f in model.functions]
    for owner, imports in owners:
        seen: dict[str, int] = {}
        for o in imports:
            default = (o.domain or "") in ("", "ai.onnx")
            domain = "" if default else o.domain
            if domain in seen and seen[domain] != o.version and owner != "the model":   # (the model's: the last)
                what = "the default ONNX domain" if default else f"domain {domain!r}"
                raise GraphError(f"{owner} imports {what} twice, at opsets {seen[domain]} and {o.version}: which "
                                 "version its ops follow is unknown (ONNX allows one version of a domain)")
            seen[domain] = o.version
            if default and not 1 <= o.version <= newest:
                # (0 or negative: no opset, which no newer onnx knows either; onnxruntime refuses the model)
                hint = "a newer onnx may know it" if o.version > newest else "ONNX's opsets start at 1: no onnx knows it"
                raise GraphError(f"{owner} uses opset {o.version} of the default ONNX domain; the installed onnx "
                                 f"{onnx.__version__} defines opsets 1..{newest} ({hint})")
            newest_ort = ORT_NEWEST_OPSETS.get(domain, newest if domain == "com.ms.internal.nhwc" else None)
            if owner == "the model" and newest_ort is not None and o.version > newest_ort:
                # (onnxruntime refuses to load the model whether or not a node uses the domain: "Current official
                # support for domain ai.onnx.ml is till opset 5"; an unused import was planned)
                raise GraphError(f"the model imports domain {domain!r} at opset {o.version}; onnxruntime supports "
                                 f"opsets up to {newest_ort} of it and refuses to load the model (import the domain "
                                 f"at opset {newest_ort} or below, or drop the import if no node uses it)")
            if domain in SINGLE_VERSION_DOMAINS and o.version != SINGLE_VERSION_DOMAINS[domain]:
                # (sized at its one version, silently, where onnxruntime refuses the model: "Current official
                # support for domain com.microsoft is till opset 1", or at 0 none of its ops registered)
                raise GraphError(f"{owner} imports domain {domain!r} at opset {o.version}; onnxruntime defines only "
                                 f"opset {SINGLE_VERSION_DOMAINS[domain]} of it and refuses the model")


#: the newest opset onnxruntime (1.32's CPU build) loads of each domain it registers besides the default one (whose
#: newest, and ``com.ms.internal.nhwc``'s, is the installed onnx's): a model importing a later one is refused at load
#: ("Current official support for domain com.microsoft.nchwc is till opset 1"), whether or not a node uses it
ORT_NEWEST_OPSETS = {"ai.onnx.ml": 5, "com.microsoft": 1, "com.microsoft.nchwc": 1, "com.microsoft.experimental": 1,
                     "ai.onnx.preview.training": 1, "ai.onnx.training": 1, "ai.onnx.preview": 1, "org.pytorch.aten": 1}

#: onnxruntime's CPU kernels of the default domain begin at these versions of these ops (onnxruntime 1.32): an older
#: version (that a model of opset 1 to 6 runs) has no kernel, and onnxruntime refuses the model ("Could not find an
#: implementation for Relu(1)"); from opset 7 on every op resolves to a version with a kernel
ORT_FIRST_KERNELS = {
    "Abs": 6, "Add": 7, "And": 7, "AveragePool": 7, "BatchNormalization": 7, "Cast": 6, "Ceil": 6, "Clip": 6,
    "Concat": 4, "Div": 7, "Dropout": 7, "Elu": 6, "Equal": 7, "Exp": 6, "Floor": 6, "GRU": 7, "Gemm": 7,
    "GlobalLpPool": 2, "Greater": 7, "HardSigmoid": 6, "InstanceNormalization": 6, "LSTM": 7, "LeakyRelu": 6,
    "Less": 7, "Log": 6, "LpPool": 2, "Max": 6, "Mean": 6, "Min": 6, "Mul": 7, "Neg": 6, "Or": 7, "PRelu": 7,
    "Pad": 2, "Pow": 7, "RNN": 7, "Reciprocal": 6, "Relu": 6, "Selu": 6, "Sigmoid": 6, "Split": 2, "Sqrt": 6,
    "Sub": 7, "Sum": 6, "Tanh": 6, "Tile": 6, "Upsample": 7, "Xor": 7}


def _check_kernel_versions(onnx, g, node_ids: list[str], opset: int) -> None:
    """Refuse a node of the default domain whose op, at the model's ``opset``, is a version onnxruntime has no CPU
    kernel for (``ORT_FIRST_KERNELS``), naming the node, the op's version, the opset and the first version it runs.

    Why: a model of opset 5 with a Relu was planned (onnx defines Relu-1 and sizes it) though onnxruntime refuses to
    load it, as it refuses an op no runtime implements; a plan for a model nothing runs is no plan."""
    if opset >= 7:
        return
    for nid, n in zip(node_ids, g.node):
        first = ORT_FIRST_KERNELS.get(n.op_type) if (n.domain or "") in ("", "ai.onnx") else None
        if first is None:
            continue
        try:
            version = onnx.defs.get_schema(n.op_type, opset, "").since_version
        except Exception:  # noqa: BLE001 - no schema at that opset: the schema check refuses it
            # (``_refuse_before_first``) or onnxruntime registers its own
            continue
        if version < first:
            raise GraphError(f"node {nid!r} ({n.op_type}) is {n.op_type}-{version} at the model's opset {opset} of the "
                             f"default domain; onnxruntime has no CPU kernel for it (its first is {n.op_type}-"
                             f"{first}) and refuses to load the model (unsupported; convert the model to opset 7 or "
                             "later)")


#: the newest default opset whose op versions the importer's sizes are checked against: each op version of onnx 1.23
#: (opset 28) by onnxruntime 1.32 (``tests/onnx_sweep_round65.py``) or, where it has no CPU kernel, by onnx's reference
#: implementation (``tests/onnx_sweep_round66.py``)
CHECKED_OPSET = 28


def _check_checked_versions(onnx, g, node_ids: list[str], opset: int) -> None:
    """Refuse a node of the default domain whose op, at the model's ``opset``, is a version newer than
    ``CHECKED_OPSET``, naming the node, the op's version and the newest opset checked.

    Why: the importer sizes a node by onnx's inference plus its own rules and checks, each written and tested for the
    op versions it knows; a newer onnx installed beside it defines versions none of those was checked against (a new
    input, a new output-shape rule), whose sizes would be planned unchecked: a guess. An op whose version at the
    model's opset is one already checked (a Relu-14 in a model of opset 29) is planned as before."""
    if opset <= CHECKED_OPSET:
        return
    for nid, n in zip(node_ids, g.node):
        if (n.domain or "") not in ("", "ai.onnx"):
            continue
        try:
            version = onnx.defs.get_schema(n.op_type, opset, "").since_version
        except Exception:  # noqa: BLE001 - no schema: the schema check refuses the node
            continue
        if version > CHECKED_OPSET:
            raise GraphError(f"node {nid!r} ({n.op_type}) is {n.op_type}-{version} at the model's opset {opset}: "
                             f"memplan's importer is checked against the op versions up to opset {CHECKED_OPSET}, "
                             f"so which sizes {n.op_type}-{version} makes is not known to it (unsupported; export "
                             f"the model at opset {CHECKED_OPSET} or below, or use a memplan that knows it)")


#: the training domains: their ops (Gradient, Adagrad, Adam, Momentum) compute gradients and updated weights, which no
#: inference runtime runs and memplan cannot size (onnx's inference gives Gradient's outputs no shape)
TRAINING_DOMAINS = frozenset({"ai.onnx.preview.training", "ai.onnx.training"})


def _newest_opset(onnx, domain: str) -> int:
    """The newest opset of ``domain`` the installed onnx defines (the newest version any op of it has)."""
    return max((s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.domain == domain), default=0)


def _check_domain_versions(onnx, g, node_ids: list[str], opset_import) -> None:
    """Refuse a node of ``ai.onnx.ml`` where the model imports that domain at an opset the installed onnx does not
    define (past its newest, or below 1), and a node of a training domain, naming the node, domain and version.

    Why: ``_check_opset`` checked the default domain's version alone, so a Normalizer of ``ai.onnx.ml`` opset 6
    (or 99) was sized by opset 5's rules, which a later opset may change, and planned (onnxruntime refuses it); an
    ``Adagrad`` of ``ai.onnx.preview.training`` was planned too, although no inference runtime runs it and
    a Gradient's outputs have no shape at all: a plan of an op that cannot be sized is a silently wrong plan."""
    versions = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in opset_import}
    newest_ml = None
    for nid, n in zip(node_ids, g.node):
        if n.domain in TRAINING_DOMAINS:
            raise GraphError(f"node {nid!r} ({n.domain}:{n.op_type}) is a training op (domain {n.domain!r}, opset "
                             f"{versions.get(n.domain, '(not imported)')}): it computes gradients or weight "
                             "updates, which memplan cannot size and onnxruntime's inference does not run "
                             "(unsupported; plan the inference model)")
        if n.domain == "ai.onnx.ml":
            newest_ml = _newest_opset(onnx, "ai.onnx.ml") if newest_ml is None else newest_ml
            v = versions.get("ai.onnx.ml", newest_ml)
            if not 1 <= v <= newest_ml:
                raise GraphError(f"node {nid!r} (ai.onnx.ml:{n.op_type}) is of domain 'ai.onnx.ml', which the model "
                                 f"imports at opset {v}; the installed onnx {onnx.__version__} defines opsets "
                                 f"1..{newest_ml} of it, so which rules size the node is unknown (a newer onnx may "
                                 "know it; onnxruntime refuses an opset it does not know)")


#: domains of which onnxruntime has one version only: a model that uses one without importing it runs at that
#: version (onnxruntime fills a domain the model does not import with its newest version)
SINGLE_VERSION_DOMAINS = {"com.microsoft": 1}


def _check_node_domains(model):
    """The model (a copy where an import is added) importing the domain of each of its graph's nodes: a node of a
    domain it does not import is refused naming the node (a call of a model-local function too, as onnxruntime
    refuses it), except ``com.microsoft``, imported at its one version.

    Why: onnxruntime runs such a node at its own newest version of the domain; onnx's inference refused it with
    "No opset import for domain com.microsoft" naming the node only by its ONNX name (or not at all, unnamed).
    ``com.microsoft`` has one version, so the version onnxruntime runs is known; the default domain's and
    ``ai.onnx.ml``'s newest differ between onnxruntime and onnx releases, so which rules size the node is not."""
    imported = {"" if (o.domain or "") in ("", "ai.onnx") else o.domain for o in model.opset_import}
    local = {f.domain for f in model.functions}
    missing: dict[str, int] = {}
    for nid, n in zip(_node_ids(model.graph), model.graph.node):
        domain = "" if (n.domain or "") in ("", "ai.onnx") else n.domain
        if domain in imported or domain in missing:
            continue
        if domain in local:   # (inlined, it was planned; onnxruntime refuses: "No opset import for domain 'local'")
            raise GraphError(f"node {nid!r} ({n.domain}:{n.op_type}) calls a model-local function of domain "
                             f"{domain!r}, which the model does not import; onnxruntime refuses the model (import "
                             "the domain)")
        if domain not in SINGLE_VERSION_DOMAINS:
            op = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
            raise GraphError(f"node {nid!r} ({op}) is of domain {domain or 'ai.onnx'!r}, which the model does not "
                             "import: which version of it sizes the node is unknown (onnxruntime takes its own newest, "
                             "onnx has no rule); import the domain at the version the model was written for")
        missing[domain] = SINGLE_VERSION_DOMAINS[domain]
    if not missing:
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    for d, version in sorted(missing.items()):
        copy.opset_import.append(_need_onnx().helper.make_opsetid(d, version))
    return copy


def _runtime_op(onnx, domain: str, name: str, opsets) -> bool:
    """Whether ``domain:name`` is an op a runtime has without the model's help: one onnx defines at the version
    of its domain the caller imports (``opsets``: its ``opset_import``), or one of onnxruntime's own
    (``_ort_op_names``). Why: a model-local function of that name does not replace it in onnxruntime, which
    ran its Relu where memplan inlined and sized the model's function "Relu"."""
    domain = "" if domain == "ai.onnx" else domain
    version = next((o.version for o in opsets if ("" if o.domain == "ai.onnx" else o.domain) == domain), None)
    if version is not None and onnx.defs.has(name, domain):
        try:
            onnx.defs.get_schema(name, version, domain)
            return True
        except onnx.defs.SchemaError:   # (defined from a later version on: the function is the op here)
            pass
    return name in ORT_DEFAULT_DOMAIN_OPS if domain == "" else domain == ORT_DOMAIN and name in _ort_op_names()


@functools.cache
def _ort_op_names() -> frozenset[str]:
    """The ``com.microsoft`` ops onnxruntime has: from its schemas where it is installed, else the ones this
    importer knows by name (its rules and refusals)."""
    try:
        from onnxruntime.capi import _pybind_state

        return frozenset(s.name for s in _pybind_state.get_all_operator_schema() if s.domain == ORT_DOMAIN)
    except Exception as exc:  # noqa: BLE001 - no onnxruntime, or one without its schemas: the names memplan knows
        raise_if_interrupted(exc)   # (a Ctrl-C in its bindings' init: the command's, never cached as "not installed")
        return frozenset(ORT_RULES) | ORT_RULED_ONLY | ORT_UNSIZED | frozenset(ORT_WRONG)


def _check_function_opsets(onnx, model):
    """A local function that imports a domain other than the default one at another version than the model
    must bind each of its ops of that domain to the schema the model's version gives; the model returned (a
    copy where any import changes) has such a function import the model's version, which onnx's inliner
    needs to inline it (it converts only the default domain).

    Why: inlined, the body's nodes are inferred (and run) at the model's version of their domain. onnx.proto
    allows the two versions to differ only where "the operator schema returned for op_type, domain, version
    combination for both the versions should be same": a body written for ``ai.onnx.ml`` 1 whose LabelEncoder
    changed by the model's version 4 would be sized by rules it was not written for. (The default domain's
    body is converted to the model's opset while inlining.) An op onnx defines no schema for (a runtime's
    custom op) cannot be shown to agree, and is refused too. A function's ``ai.onnx.ml`` opset the installed onnx
    does not define (6, 99) is refused where the body has a node of it: aligned to the model's 5, such a body was
    planned, and onnxruntime refuses the model."""
    model_v = {o.domain: o.version for o in model.opset_import if (o.domain or "") not in ("", "ai.onnx")}
    local = {(f.domain, f.name) for f in model.functions}
    aligned = None
    for k, f in enumerate(model.functions):
        own = {o.domain: o.version for o in f.opset_import if (o.domain or "") not in ("", "ai.onnx")}
        for n in f.node:
            d = n.domain
            if d == "ai.onnx.ml" and d in own and not 1 <= own[d] <= _newest_opset(onnx, d):
                # (as _check_domain_versions for the model's import: the inliner would take the model's version)
                raise GraphError(f"local function {_function_name(f)} imports domain 'ai.onnx.ml' at opset {own[d]}, "
                                 f"and its node {n.name or n.op_type!r} (ai.onnx.ml:{n.op_type}) is of it; the "
                                 f"installed onnx {onnx.__version__} defines opsets 1..{_newest_opset(onnx, d)} of it, "
                                 "so which rules size the node is unknown (a newer onnx may know it; onnxruntime "
                                 "refuses an opset it does not know)")
            if d not in own or d not in model_v or own[d] == model_v[d] or (d, n.op_type) in local:
                continue
            where = (f"local function {_function_name(f)} imports domain {d!r} at version {own[d]} and the model "
                     f"at version {model_v[d]}, and its node {n.name or n.op_type!r} ({d}:{n.op_type})")
            try:
                a = onnx.defs.get_schema(n.op_type, own[d], d).since_version
                b = onnx.defs.get_schema(n.op_type, model_v[d], d).since_version
            except Exception:  # noqa: BLE001 - no schema at one of the versions
                raise GraphError(f"{where} has no schema onnx defines at both versions, so whether they agree "
                                 "is unknown; import the domain at one version") from None
            if a != b:
                raise GraphError(f"{where} follows {d}:{n.op_type}-{a} in the function but -{b} in the model: "
                                 "import the domain at one version")
        if any(d in model_v and v != model_v[d] for d, v in own.items()):
            if aligned is None:
                aligned = onnx.ModelProto()
                aligned.CopyFrom(model)
            for o in aligned.functions[k].opset_import:
                if o.domain in model_v:
                    o.version = model_v[o.domain]
    return model if aligned is None else aligned


def _nested(who: str, nodes) -> list[tuple[str, Any]]:
    """``(who, node)`` for each of ``nodes`` and, after each, every node of its subgraphs (an If's branches, a Loop's
    body), at any depth, named as in a subgraph of the node ``who`` names. Why: onnx's inliner inlines a local
    function called from a subgraph too, and onnxruntime runs it; a walk of the top level alone took such a function
    for one nothing calls (its checks skipped) or refused the call."""
    out: list[tuple[str, Any]] = []
    stack = [(who, n, False) for n in reversed(list(nodes))]
    while stack:
        label, n, inner = stack.pop()
        here = f"node {n.name or n.op_type!r} in a subgraph of {label}" if inner else label
        out.append((here, n))
        subs = [sub for a in n.attribute for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs)]
        for sub in reversed(subs):
            stack.extend((label if inner else here, m, True) for m in reversed(list(sub.node)))
    return out


def _graph_nodes(g) -> list[tuple[str, Any]]:
    """``(who, node)`` for each node of graph ``g`` and of its subgraphs (``_nested``), a top-level one named by
    its id."""
    if not any(a.HasField("g") or len(a.graphs) for n in g.node for a in n.attribute):
        return [(f"node {nid!r}", n) for nid, n in zip(_node_ids(g), g.node)]
    return [x for nid, n in zip(_node_ids(g), g.node) for x in _nested(f"node {nid!r}", [n])]


def _body_nodes(f) -> list[tuple[str, Any]]:
    """``(who, node)`` for each node of local function ``f``'s body and of its subgraphs."""
    return [x for n in f.node for x in _nested(f"node {n.name or n.op_type!r} of local function {_function_name(f)}",
                                                [n])]


def _called_functions(model) -> dict[int, str]:
    """``{index in model.functions: who calls it first}`` for each local function a node of the graph calls,
    directly or through the bodies of the functions it calls (a function nothing calls is never run, nor inlined).
    (By index: protobuf gives a repeated field's element a new Python object on each access, so ``id`` is no key.)
    Why a deque, and nothing walked without functions: ``todo.pop(0)`` moved the whole list at each node, quadratic
    (a 100,000-node chain with no function at all: 1.1 s in each of the two checks that ask, 8.9 s at 300,000)."""
    if not model.functions:
        return {}
    funcs: dict[tuple[str, str], list[int]] = {}
    for k, f in enumerate(model.functions):
        funcs.setdefault((f.domain, f.name), []).append(k)
    todo = deque(_graph_nodes(model.graph))   # (calls in subgraphs too: onnx's inliner inlines them)
    called: dict[int, str] = {}
    while todo:
        who, n = todo.popleft()
        for k in funcs.get((n.domain, n.op_type), ()):
            if k not in called:
                called[k] = who
                todo.extend(_body_nodes(model.functions[k]))
    return called


def _bind_function_bodies_to_model_opset(onnx, model):
    """The model (a copy where any import changes) whose called local functions import the default ONNX domain at
    the model's version, each body node of that domain first checked against its schema at the model's version.

    Why: onnxruntime binds a function body's default-domain ops to the *model's* opset, whatever the function
    imports (a body written for opset 11 in an opset-17 model runs its ``Squeeze(axes=[0])`` as Squeeze-13, whose
    ``axes`` is an input, and refuses the model: "Unrecognized attribute: axes"), and infers its shapes there (a
    ``Split`` of no ``split`` written for opset 13 is refused at 18: "Neither 'split' input nor 'num_outputs'").
    onnx's inliner instead converted such a body to the model's opset, so memplan planned models onnxruntime
    refuses to load. Checking and inferring the body at the model's opset refuses what onnxruntime refuses and
    sizes what it runs as it runs it. A function nothing calls is not checked (onnxruntime loads it unchecked)."""
    model_v = next((o.version for o in model.opset_import if (o.domain or "") in ("", "ai.onnx")), None)
    if model_v is None or not model.functions:
        return model
    called = _called_functions(model)
    local = {(f.domain, f.name) for f in model.functions}
    ctx = None
    aligned = None
    for k, f in enumerate(model.functions):
        own = next((o.version for o in f.opset_import if (o.domain or "") in ("", "ai.onnx")), None)
        if own is None or own == model_v or k not in called:
            continue
        if ctx is None:
            ctx = onnx.checker.C.CheckerContext()
            ctx.ir_version = model.ir_version
            ctx.opset_imports = {("" if (o.domain or "") in ("", "ai.onnx") else o.domain): o.version
                                 for o in model.opset_import}
        for i, n in enumerate(f.node):
            if (n.domain or "") not in ("", "ai.onnx") or ("", n.op_type) in local or (n.domain, n.op_type) in local:
                continue
            if n.op_type == "Constant" or _has_external_tensor(n) or any(a.type in (5, 10) for a in n.attribute):
                continue   # (a Constant is folded, its data checked as an initializer's; a subgraph refused before)
            node = onnx.NodeProto()
            node.CopyFrom(n)
            node.domain = ""
            why = _checker_says(onnx, node, ctx)
            if why is not None:
                label = repr(n.name) if n.name else f"#{i}"
                raise GraphError(f"local function {_function_name(f)} (called by {called[k]}) imports the default "
                                 f"ONNX domain at opset {own} and the model at opset {model_v}: its node {label} "
                                 f"({n.op_type}) runs as {n.op_type} of opset {model_v} (onnxruntime binds a "
                                 f"function's ops to the model's opset), which refuses it: {why}; write the body "
                                 "for the model's opset")
        if aligned is None:
            aligned = type(model)()
            aligned.CopyFrom(model)
        for o in aligned.functions[k].opset_import:
            if (o.domain or "") in ("", "ai.onnx"):
                o.version = model_v
    return model if aligned is None else aligned


def _check_functions(onnx, model) -> None:
    """Every call of a model-local function names one the model defines, and every function the model defines
    is well formed: each output made by a node of its body (not one of its inputs), each value its nodes read
    an input of the function or an output of an earlier node of the body. Errors name the function and node.

    Why: onnx's inliner checks none of this. A call of a function that does not exist (a typo, another
    overload) was imported as an op nobody defines, sized by the model's declaration alone (onnxruntime fails:
    "is not a registered function/op"); a function whose output is its input, or an output no body node makes,
    was inlined to nothing, and the import failed with "graph output 'y' is produced by no node" naming
    neither; a body that reads a name it does not define bound it to the caller's value of that name
    (functions have no outer scope); a body node of a domain the function does not import (``com.microsoft``
    the model does not import either) failed in onnx's inference with "No opset import for domain" naming neither,
    and one the model imports was planned. onnxruntime refuses such functions, called or not."""
    funcs: dict[tuple[str, str], dict[str, Any]] = {}
    for f in model.functions:
        overloads = funcs.setdefault((f.domain, f.name), {})
        overload = getattr(f, "overload", "")
        if overload in overloads:
            raise GraphError(f"local function {_function_name(f)} is defined twice")
        overloads[overload] = f
    if not funcs:
        return
    domains = {d for d, _ in funcs}
    caller: dict[int, str] = {}   # id of a function -> the first graph node that calls it (for messages)
    callers = [(who, n, model.opset_import) for who, n in _graph_nodes(model.graph)]
    callers += [(who, n, f.opset_import) for f in model.functions for who, n in _body_nodes(f)]
    for who, n, opsets in callers:
        if n.domain not in domains:
            continue
        overloads = funcs.get((n.domain, n.op_type))
        overload = getattr(n, "overload", "")
        if overloads is None:
            if onnx.defs.has(n.op_type, n.domain):
                continue
            names = ", ".join(sorted(name for d, name in funcs if d == n.domain))
            raise GraphError(f"{who} calls {n.domain}:{n.op_type}, which is no local function of the model (its "
                             f"functions in domain {n.domain!r}: {names}) and no op onnx defines")
        if overload not in overloads:
            have = ", ".join(repr(o) for o in sorted(overloads))
            raise GraphError(f"{who} calls local function {n.domain}:{n.op_type} overload {overload!r}, which the "
                             f"model does not define (its overloads: {have})")
        f = overloads[overload]
        caller.setdefault(id(f), who)
        if _runtime_op(onnx, n.domain, n.op_type, opsets):
            raise GraphError(f"{who} calls {_function_name(f)}, which is both a local function of the model and an "
                             "op the runtime has: onnxruntime runs its op, onnx's inliner the function, so which one "
                             "runs (and the sizes it makes) is not known; rename the function or its domain")
        if len(n.input) > len(f.input) or len(n.output) > len(f.output):
            raise GraphError(f"{who} calls local function {_function_name(f)} with {len(n.input)} inputs and "
                             f"{len(n.output)} outputs; it takes {len(f.input)} and returns {len(f.output)}")
    for f in model.functions:
        name = f"local function {_function_name(f)}"
        if id(f) in caller:
            name += f" (called by {caller[id(f)]})"
        defined = set(f.input)
        imported = {"" if (o.domain or "") in ("", "ai.onnx") else o.domain for o in f.opset_import}
        for i, n in enumerate(f.node):
            label = repr(n.name) if n.name else f"#{i} ({n.op_type})"
            domain = "" if (n.domain or "") in ("", "ai.onnx") else n.domain
            inner = next((m for _w, m in _nested("", [n])[1:]
                          if ("" if (m.domain or "") in ("", "ai.onnx") else m.domain) not in imported), None)
            if domain not in imported or inner is not None:
                # (a node of a branch of the body binds its ops by the function's opset_import too)
                op = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
                where = "" if inner is None else (f": its subgraph's node {inner.name or inner.op_type!r} "
                                                  f"({inner.domain}:{inner.op_type})")
                domain = domain if inner is None else inner.domain
                raise GraphError(f"{name}: its node {repr(n.name) + f' ({op})' if n.name else f'#{i} ({op})'}{where} "
                                 f"is of domain {domain or 'ai.onnx'!r}, which the function does not import (a "
                                 "function binds its ops by its own opset_import, not the model's; onnxruntime "
                                 "refuses it: \"No opset registered for domain\")")
            who = f"{name}: its node {n.name!r} ({n.op_type})" if n.name else f"{name}: its node {label}"
            if id(f) in caller and not (n.op_type in EXPANDED_OPS and domain == ""):
                _check_no_subgraph(n, who)
            reads = list(n.input)
            if n.op_type in EXPANDED_OPS and domain == "" and id(f) in caller:
                # (an If or Loop, expanded once inlined (``control_flow``): what its subgraphs read from around them
                # must be the function's too)
                reads += sorted(_subgraph_reads(n))
            for v in reads:
                if v and v not in defined:
                    raise GraphError(f"{name}: its node {label} reads {v!r}, which is "
                                     "no input of the function and no output of an earlier node of its body "
                                     "(a function sees no value of its caller's)")
            for o in n.output:
                if o and o in defined:
                    raise GraphError(f"{name}: value {o!r} is produced twice in its body (or is one of its inputs)")
                defined.add(o)
        for o in f.output:
            if not o:
                raise GraphError(f"{name} has an output with an empty name")
            if o in f.input:
                raise GraphError(f"{name} returns its input {o!r} as its output, unsupported (onnxruntime refuses "
                                 "it too): make the output with an Identity node in its body")
            if o not in defined:
                raise GraphError(f"{name}: its output {o!r} is made by no node of its body")


def _subgraph_reads(n) -> set[str]:
    """The names the subgraphs of node ``n`` (of a local function's body) read from around them. (A call of a local
    function in them is inlined with the rest: ``_inline_functions``.)"""
    from .graph_scope import _free_names, _subgraphs

    free: set[str] = set()
    for _a, sub in _subgraphs(n):
        free |= _free_names(sub)
    return free


def _local_calls(model) -> list[tuple[str, Any, Any]]:
    """``(who, call node, its function)`` for every call of a local function that runs: each by a node of the graph,
    and each by a node of the body of a function the graph calls (directly or not; ``_called_functions``)."""
    if not model.functions:   # (no call to find: the list of every node below was built to be filtered away)
        return []
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions}
    found = _graph_nodes(model.graph)
    for k in sorted(_called_functions(model)):
        found += _body_nodes(model.functions[k])
    return [(who, n, funcs[key]) for who, n in found if (key := (n.domain, n.op_type, getattr(n, "overload", "")))
            in funcs]


def _check_call_outputs(model) -> None:
    """Refuse a call of a local function that lists fewer outputs than the function returns (an output left out at
    the end, not named ``""``), in the graph or in the body of a function that runs: onnxruntime refuses the model
    ("output index 1 is out of range; node has 1 outputs", "Output 1 is out of bounds").

    Why: onnx's inliner gives the outputs left out names of their own, so the importer planned them (a 48-byte
    ``c__1`` nothing reads) for a model onnxruntime will not load. An output named ``""`` is an omitted optional
    one, which onnxruntime runs."""
    for who, n, f in _local_calls(model):
        if len(n.output) < len(f.output):
            raise GraphError(f"{who} calls local function {_function_name(f)} with {len(n.output)} outputs; it "
                             f"returns {len(f.output)} ({', '.join(map(repr, f.output))}): onnxruntime refuses the "
                             "model (\"output index out of range\"); list every output, naming one the model does not "
                             "use \"\"")


#: how onnxruntime names what it inlines from a call of local function ``F``: each value of the body (and each named
#: node) ``t`` of the first call inlined becomes ``_inlfunc_F_t`` (later calls: ``_inlfunc_F_token_<k>_t``, of a
#: counter the importer cannot follow)
ORT_INLINE_PREFIX = "_inlfunc_"


def _ort_first_inlined(model) -> dict[str, tuple[str, Any, Any]]:
    """``{function name: (who, call node, function)}`` of the call of each name onnxruntime inlines first, the one whose
    body it names with the plain prefix ``_inlfunc_<name>``.

    Why: onnxruntime inlines in passes: each pass the graph's calls in node order (the order listed, not a
    topological one), the body nodes an inlined call adds going to the end, so their calls are inlined the next
    pass. Where several local functions share a name (``F`` in domains ``a`` and ``b``, or overloads), the prefix is
    the first inlined call's, whichever domain: a graph value ``_inlfunc_F_p`` clashes with ``a:F``'s body value
    ``p`` where a call of ``a:F`` is listed first (onnxruntime refuses the model), not where ``b:F``'s is. Each
    function's body is followed once: a later expansion adds its calls later still."""
    if not model.functions:   # (no call to inline: naming every node first cost a 100,000-node chain 0.5 s)
        return {}
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions}
    first: dict[str, tuple[str, Any, Any]] = {}
    expanded: set[tuple] = set()
    todo = [(f"node {nid!r}", n) for nid, n in zip(_node_ids(model.graph), model.graph.node)]
    while todo:
        later = []
        for who, n in todo:
            key = (n.domain, n.op_type, getattr(n, "overload", ""))
            f = funcs.get(key)
            if f is None:
                continue
            first.setdefault(n.op_type, (who, n, f))
            if key not in expanded:
                expanded.add(key)
                later += [(f"node {m.name or m.op_type!r} of local function {_function_name(f)}", m) for m in f.node]
        todo = later
    return first


def _check_ort_inline_names(model) -> None:
    """Refuse a model whose local function onnxruntime inlines under a name the graph already has: a value of the
    graph (or of another function's body inlined) named ``_inlfunc_F_t`` where ``F``'s body makes ``t``, or a node
    named ``_inlfunc_F_r`` where its body has a node ``r``. onnxruntime refuses the model ("Duplicate definition of
    name", "two nodes with same node name"); names the function, its caller, the body's value or node and the name.

    Why: onnx's inliner, which the importer runs, keeps clear of the graph's names (``t__1``), so such a model was
    planned, while onnxruntime, naming the first inlined call of ``F`` ``_inlfunc_F`` (unless a node already has
    that name), cannot load it. Only names that certain are checked: the first call's prefix, given to the body of
    the function onnxruntime inlines first of that name (``_ort_first_inlined``; of several functions of one name,
    in other domains or overloads, only the names every one makes were checked); later calls' prefixes follow a
    counter of onnxruntime's."""
    calls = _ort_first_inlined(model)
    if not calls:
        return
    g = model.graph
    read = {v for n in g.node for v in n.input if v} | {o.name for o in g.output}
    values: dict[str, str] = {}   # value name -> what the graph makes it (an unused initializer is dropped first)
    for v in g.input:
        values.setdefault(v.name, f"graph input {v.name!r}")
    for t in [*g.initializer, *(st.values for st in g.sparse_initializer)]:
        if t.name in read:
            values.setdefault(t.name, f"initializer {t.name!r}")
    for nid, n in zip(_node_ids(g), g.node):
        values.update((o, f"value {o!r} of node {nid!r}") for o in n.output if o and o not in values)
    nodes = {n.name for n in g.node if n.name and not _is_constant(n)}
    by_name: dict[str, list] = {}   # op name -> the functions of that name the model calls
    for _who, n, f in _local_calls(model):
        if f not in by_name.setdefault(n.op_type, []):
            by_name[n.op_type].append(f)
    made: dict[tuple[str, str], str] = {}   # (kind, each name inlining makes) -> what it is, across functions
    for name, (who, call, f) in sorted(calls.items()):
        prefix = f"{ORT_INLINE_PREFIX}{name}"
        if prefix in nodes:   # (the first call's prefix is then onnxruntime's choice)
            continue
        formal = set(f.input) | set(f.output)
        given = {k for k, o in enumerate(call.output) if o}
        parts = [("value", o) for m in f.node for o in m.output if o and o not in formal]
        parts += [("value", o) for k, o in enumerate(f.output) if k not in given]   # (the call omits it)
        parts += [("node", m.name) for m in f.node if m.name and not _is_constant(m)]   # (a Constant: a value)
        others = [h for h in by_name.get(name, ()) if h is not f]
        fname = _function_name(f) + (" (of the local functions named " + ", ".join(
            _function_name(h) for h in [f, *others]) + ", the one whose call onnxruntime inlines first)" if others
                                     else "")
        for kind, part in dict.fromkeys(parts):
            full, what = f"{prefix}_{part}", f"{kind} {part!r}"
            if kind == "value":
                clash = values.get(full)
            else:
                clash = f"node {full!r} of the graph" if full in nodes else None
            clash = clash or made.get((kind, full))
            if clash:
                raise GraphError(f"local function {fname} (called by {who}): onnxruntime inlines its "
                                 f"{what} as {full!r}, the name of {clash}: onnxruntime refuses the model (\"Duplicate "
                                 "definition of name\", \"two nodes with same node name\"); rename one")
            made[(kind, full)] = f"{what} of local function {_function_name(f)} as onnxruntime inlines it"


def _inline_functions(model):
    """The model with its model-local functions inlined (a new model; the one given is not modified).

    A call of a local function is one node, but its body runs ops whose intermediates need memory: runtimes
    inline such calls, so the importer does too, and the body's tensors are planned."""
    local = {(f.domain, f.name) for f in model.functions}
    if not any((n.domain, n.op_type) in local for _who, n in _graph_nodes(model.graph)):
        return model
    try:
        from onnx import inliner
    except ImportError:  # onnx < 1.16
        raise MemplanError("the model calls local functions: inlining them needs onnx >= 1.16") from None
    _check_inlined_size(model)
    model = _import_function_domains(_with_attribute_defaults(_without_standard_declarations(model)))
    try:
        try:   # a body written for another opset of the default domain is converted to the model's
            inlined = inliner.inline_local_functions(model, convert_version=True)
        except TypeError:   # an onnx without the option
            inlined = inliner.inline_local_functions(model)
    except Exception as exc:  # a malformed function body
        msg = first_line(exc)
        raise GraphError(f"inlining the model's local functions failed: {msg}") from None
    # the inliner leaves a call it cannot inline (a body at another opset it could not convert) as one node,
    # whose body's intermediates would then get no memory: refuse it by name
    left = sorted({(n.domain, n.op_type) for _who, n in _graph_nodes(inlined.graph) if (n.domain, n.op_type) in local})
    if left:
        domain, name = left[0]
        raise GraphError(f"local function {domain}:{name} could not be inlined (its body's opset differs from the "
                         "model's and could not be converted); convert the model to one opset first")
    return inlined


def _without_standard_declarations(model):
    """The model (a copy where any is dropped) without the ``value_info`` (IR 10) its local functions declare for
    the values ops onnx defines (default and ``ai.onnx.ml`` domains) and calls of its other local functions make in
    their bodies; a custom op's, which may be its only size, is kept.

    Why: onnxruntime inlines a function's body without its ``value_info`` and infers what its ops make, so a body
    declaring its ``Relu``'s output int64 runs; onnx's inliner carried the declaration into the graph, and the model
    was refused ("Inferred elem type differs from existing elem type"). A shape so declared was already merged into
    what the node makes, as onnxruntime runs it."""
    if not any(len(f.value_info) for f in model.functions):
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    local = {(f.domain, f.name, getattr(f, "overload", "")) for f in copy.functions}
    for f in copy.functions:
        # (a call of another local function too: inlined as well, its values are what its body makes, as
        # onnxruntime infers them; round 75, review75: a nested function's declaration refused a model it runs)
        made = {o for n in f.node if (n.domain or "") in ("", "ai.onnx", "ai.onnx.ml")
                or (n.domain, n.op_type, getattr(n, "overload", "")) in local for o in n.output if o}
        kept = [vi for vi in f.value_info if vi.name not in made]
        if len(kept) != len(f.value_info):
            del f.value_info[:]
            f.value_info.extend(kept)
    return copy


def _clear_negative_declarations(model):
    """The model with the shape of each ``value_info`` or graph output declaration that has a negative dimension
    cleared, and each negative dimension of a graph input made unknown (a new model where one is; the one given is
    not modified).

    Why: no tensor has a negative dimension, and onnxruntime does not refuse such a declaration: it drops it and sizes
    the value by its node (``Relu`` of a [2, 3] declared [-1, 3] runs and writes [2, 3]); the importer refused the
    model. Cleared before inference, the declaration can no longer reach onnx's Slice inference (which aborts the
    process on a negative dimension). A graph input's negative dimension is one onnxruntime takes as any length (a
    ``[-1, 3]`` input is fed ``[5, 3]``), as it takes a dimension of no value: it is made one, so it is sized as such
    (``batch=N`` for a leading one; an initializer listed as the input is its own dims at IR 3, and a default the
    caller may override from IR 4, refused unless ``constant_initializers``). It was refused as negative, also where
    onnxruntime runs the model as it stands (an IR-3 initializer declared ``[-1, 3]``)."""
    def negative(vi) -> bool:
        declared = _declared_type(vi)
        return declared is not None and any(d is not None and d < 0 for d in declared[1] or ())

    if not any(negative(vi) for vi in list(model.graph.input) + list(model.graph.output)
               + list(model.graph.value_info)):
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    for vi in list(copy.graph.output) + list(copy.graph.value_info):
        if negative(vi):
            vi.type.tensor_type.ClearField("shape")
    for vi in copy.graph.input:
        if negative(vi):
            for d in vi.type.tensor_type.shape.dim:
                if d.HasField("dim_value") and d.dim_value < 0:
                    d.Clear()
    return copy


def _drop_ignored_declarations(model):
    """The model without the declarations onnxruntime ignores (a new model where one is; the one given is not
    modified): a ``value_info`` naming a graph input or an initializer (the input's declaration, the initializer's
    own dims and type are what it runs by: a ``[5, 3]`` fed to an input declared ``['n', 3]`` with a ``value_info``
    ``[2, 3]`` runs), and the shapes of a value an op onnx defines makes that two of its declarations (graph output,
    ``value_info``) give differently with one element type (onnxruntime merges each into what the node makes, and
    its kernel writes that). The importer refused each ("declared twice with different types or shapes"). Two
    element types, and two shapes of a value an op onnx does not define makes (sized by its declaration alone), are
    still refused (``_check_declarations``).

    So is the type of a graph output that names a graph input or an initializer (round 73): onnxruntime runs such an
    output by the input's declaration or the initializer's own type, as it runs a ``value_info`` of it, and returns
    that. Given to inference, an output declaration of an input ``[2, 3]`` as a float of no shape (or ``["a", "b"]``)
    replaced the input's shape there, and every node reading the input was refused ("value 'y' has no shape"); one
    of another rank over an initializer was refused as "ONNX shape inference failed", naming no value. A ``Constant``
    node's value is an initializer to onnxruntime (it turns each into one as it loads the model): a declaration of
    it of another dtype is ignored too (it was refused as "Inferred elem type differs from existing elem type")."""
    import onnx

    g = model.graph
    given = ({v.name for v in g.input} | {t.name for t in g.initializer}
             | {t.values.name for t in g.sparse_initializer}
             | {n.output[0] for n in g.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output})
    typed_given = [k for k, vi in enumerate(g.output) if vi.name in given and vi.HasField("type")]
    standard = {o for n in g.node if n.domain in ("", "ai.onnx", "ai.onnx.ml")
                and onnx.defs.has(n.op_type, "" if n.domain == "ai.onnx" else n.domain) for o in n.output if o}
    declared: dict[str, list] = {}
    for vi in list(g.output) + list(g.value_info):
        if vi.name in standard and (t := _declared_type(vi)) is not None:
            declared.setdefault(vi.name, []).append(t)
    unsure = set()
    for name, types in declared.items():
        elems = {e for e, _ in types if e}
        shapes = [d for _, d in types if d is not None]
        if len(elems) <= 1 and any(len(a) != len(b) or any(x is not None and y is not None and x != y
                                                            for x, y in zip(a, b)) for a in shapes for b in shapes):
            unsure.add(name)
    if not unsure and not typed_given and not any(vi.name in given for vi in g.value_info):
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    for k in typed_given:
        copy.graph.output[k].ClearField("type")
    kept = [vi for vi in copy.graph.value_info if vi.name not in given]
    del copy.graph.value_info[:]
    copy.graph.value_info.extend(kept)
    for vi in list(copy.graph.output) + list(copy.graph.value_info):
        if vi.name in unsure and vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    return copy


def _constant_type(n) -> tuple[int, list[int]] | None:
    """(dtype, dims) of the tensor a default-domain ``Constant`` node ``n`` holds, or None where it is not one such
    node with one value attribute of a known form."""
    if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(n.attribute) != 1 or len(n.output) != 1:
        return None
    a = n.attribute[0]
    if a.name == "value" and a.HasField("t"):
        return a.t.data_type, list(a.t.dims)
    if a.name == "sparse_value" and a.HasField("sparse_tensor"):
        return a.sparse_tensor.values.data_type, list(a.sparse_tensor.dims)
    scalar = {"value_int": 7, "value_float": 1, "value_string": 8}
    many = {"value_ints": (7, a.ints), "value_floats": (1, a.floats), "value_strings": (8, a.strings)}
    if a.name in scalar:
        return scalar[a.name], []
    if a.name in many:
        return many[a.name][0], [len(many[a.name][1])]
    return None


def _merge_duplicate_initializers(model):
    """The model with each initializer given more than once kept once, as onnxruntime keeps it (a new model where one
    is; the one given is not modified); GraphError naming it where two of them differ in dtype or dims.

    Why: onnxruntime loads a model that gives one initializer twice with one dtype and dims and uses the latest it
    meets ("Duplicate initializer (dense, sparse or ConstantNode) ... the model will use the latest encountered"):
    the dense ones in order, then the sparse ones, then each ``Constant`` node writing that name (a Reshape by ``s``
    listed [3, 2] then [6, 1] writes [6, 1]; by a dense ``s`` and a ``Constant`` writing ``s``, the Constant's). It
    refuses two of another dtype or dims ("Shape of initializer w does not match"). The importer refused them all.
    The dense or sparse listings a later one overrides are dropped (a Constant's value is what its readers read)."""
    g = model.graph
    seen: dict[str, tuple[int, list[int], str]] = {}   # name -> (dtype, dims, what gave it) of the latest
    given = ([(t.name, t.data_type, list(t.dims), "initializer") for t in g.initializer]
             + [(t.values.name, t.values.data_type, list(t.dims), "sparse initializer") for t in g.sparse_initializer])
    names = {v for v, *_ in given}
    constants = [(k, n.output[0], typed) for k, n in enumerate(g.node)
                 if n.output and n.output[0] in names and (typed := _constant_type(n)) is not None]
    ids = _node_ids(g) if constants else []
    given += [(v, *typed, f"Constant node {ids[k]!r}") for k, v, typed in constants]
    overridden: dict[str, str] = {}   # name -> the kind that wins ("initializer", "sparse initializer", "Constant")
    for name, dtype, dims, what in given:
        if name in seen:
            e, d, first = seen[name]
            if first == what == "sparse initializer":   # (onnxruntime fails its graph's construction on it)
                raise GraphError(f"sparse initializer {name!r} is declared twice (ONNX names each value once; "
                                 "onnxruntime refuses the model)")
            if e != dtype or d != dims:
                raise GraphError(f"initializer {name!r} is listed twice with different types or shapes "
                                 f"({first}: {_show_type(e, d)}, {what}: {_show_type(dtype, dims)}): onnxruntime "
                                 "refuses the model (\"Shape of initializer ... does not match\", \"Data in "
                                 "initializer ... has element type\")")
            overridden[name] = what.split(" node")[0]
        seen[name] = (dtype, dims, what)
    if not overridden:
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    g = copy.graph
    last = {t.name: i for i, t in enumerate(g.initializer)}
    kept = [t for i, t in enumerate(g.initializer) if overridden.get(t.name) in (None, "initializer") and last[t.name] == i]
    del g.initializer[:]
    g.initializer.extend(kept)
    last = {t.values.name: i for i, t in enumerate(g.sparse_initializer)}
    kept = [t for i, t in enumerate(g.sparse_initializer)
            if overridden.get(t.values.name) in (None, "sparse initializer") and last[t.values.name] == i]
    del g.sparse_initializer[:]
    g.sparse_initializer.extend(kept)
    return copy


def _sorted_nodes(model) -> tuple[Any, list[int] | None]:
    """The model with its graph's nodes in a topological order, and each sorted node's position in the model given
    (a new model where a node reads a value made by a later one; ``(model, None)`` where none does, or where the
    order cannot be fixed: a cycle, a value made twice, which ``_check_structure`` then refuses naming the node).

    Why: onnxruntime sorts a graph's nodes itself and runs a model whose nodes are listed out of order (a ``Relu``
    listed before the node making its input; a ``Constant`` listed after its reader, also one whose value overrides
    an initializer of its name): the importer refused it. The order kept is the model's wherever the edges allow
    (of the nodes ready, the first listed runs first), so an in-order graph is left as it is; every node of the
    sorted graph is given its id in the model as written (an unnamed node's ``<op>_<index>`` is its position there),
    so ids and errors name the nodes as the user lists them."""
    import heapq

    g = model.graph
    available = ({v.name for v in g.input} | {t.name for t in g.initializer}
                 | {t.values.name for t in g.sparse_initializer})
    producer: dict[str, int] = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            if o and o not in available:
                if o in producer:
                    return model, None
                producer[o] = i
    needs = [sorted({producer[v] for v in n.input if v in producer}) for n in g.node]
    if all(p < i for i, ps in enumerate(needs) for p in ps):
        return model, None
    waiting = [len(ps) for ps in needs]
    readers: list[list[int]] = [[] for _ in g.node]
    for i, ps in enumerate(needs):
        for p in ps:
            readers[p].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) != len(g.node):   # a cycle: no order runs it
        return model, None
    ids = _node_ids(g)
    copy = type(model)()
    copy.CopyFrom(model)
    nodes = [copy.graph.node[k] for k in order]
    sorted_nodes = []
    for k, n in zip(order, nodes):
        m = type(n)()
        m.CopyFrom(n)
        m.name = ids[k]
        sorted_nodes.append(m)
    del copy.graph.node[:]
    copy.graph.node.extend(sorted_nodes)
    return copy, order


def _inlined_origins(model) -> list[str | None]:
    """For each node of ``model`` once its local functions are inlined, in the inlined graph's order: where it comes
    from in the model as written (``"node #1 (Reshape) of local function loc:F, called by node 'call'"``), or None
    for a node of the graph itself. Nested calls name each function down to the body node.

    Why: an unnamed body node, inlined, is ``<op>_<index>`` of the inlined graph (``'Reshape_1'``), a name the user's
    model does not have; an error naming it alone did not say which function, or which call of it, to fix. onnx's
    inliner puts each call's body where the call was, in body order; the caller checks the count matches."""
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions}
    out: list[str | None] = []

    def expand(nodes, where: str | None, depth: int) -> None:
        for j, n in enumerate(nodes):
            f = funcs.get((n.domain, n.op_type, getattr(n, "overload", "")))
            if f is None or depth > len(funcs):   # (deeper is recursion, which inlining refused already)
                out.append(None if where is None else f"node #{j} ({n.op_type}) of {where}")
                continue
            call = f"node {ids[j]!r}" if where is None else f"node #{j} ({n.op_type}) of {where}"
            expand(f.node, f"local function {_function_name(f)}, called by {call}", depth + 1)

    ids = _node_ids(model.graph)
    expand(model.graph.node, None, 0)
    return out


def _call_key(n) -> tuple[str, str, str]:
    """The local function a node calls, if any: (domain, name, overload), as ``FunctionProto`` keys it."""
    return n.domain, n.op_type, getattr(n, "overload", "")


def _inlined_sizes(model) -> dict[tuple[str, str, str], int]:
    """``{function key: nodes its body becomes once every local call in it is inlined}``, without inlining.

    Iterative (a chain of thousands of functions is no recursion); a function on a call cycle counts its call
    to the cycle as one node (the inliner refuses the cycle by name)."""
    bodies = {(f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions}
    counts: dict[tuple[str, str, str], int] = {}
    opened: set[tuple[str, str, str]] = set()
    for root in bodies:
        stack = [root]
        while stack:
            key = stack[-1]
            calls = [_call_key(n) for _who, n in _body_nodes(bodies[key])]
            if key not in opened:
                opened.add(key)
                stack.extend(c for c in calls if c in bodies and c not in opened)
                continue
            stack.pop()
            counts.setdefault(key, sum(counts.get(c, 1) for c in calls))
    return counts


def _check_inlined_size(model) -> None:
    """Refuse a model whose local-function calls would inline to more than ``MAX_INLINED_NODES`` nodes, naming
    the call that inlines the most. Why: a function calling another twice, and so on 24 deep, is a 1 KB file that
    inlines to 16 million nodes: the import ran out of time and memory instead of saying so."""
    sizes = _inlined_sizes(model)
    nodes = _graph_nodes(model.graph)   # (a call in a branch is inlined too)
    calls = [(sizes.get(_call_key(n), 1), k) for k, (_who, n) in enumerate(nodes)]
    total = sum(size for size, _ in calls)
    if total > max(MAX_INLINED_NODES, len(calls)):   # (a graph that large as written is no amplification)
        size, k = max(calls)
        who, n = nodes[k]
        raise GraphError(f"{who} calls local function {n.domain}:{n.op_type}, whose "
                         f"body inlines to {size} nodes (the graph to {total}), over the importer's limit of "
                         f"{MAX_INLINED_NODES}: its functions call each other too many times over")


def _with_attribute_defaults(model):
    """The model (a copy where any is added) with each call of a local function that omits an attribute the
    function gives a default value (``FunctionProto.attribute_proto``, IR 9) given that default.

    Why: onnx's inliner drops a body attribute that refers to one the call omits, default or not, so a body
    ``Gather`` whose ``axis`` refers to an attribute defaulting to 1 was sized at Gather's own default (0: 32
    bytes planned where onnxruntime writes 48), and a ``Concat``'s was refused ("Required attribute axis is
    missing", naming no node of the model). A body's call passing on its function's attribute (a reference) to a
    callee that defaults it takes the callee's default where the outer call omits it (``_implied_defaults``)."""
    if not any(len(f.attribute_proto) for f in model.functions):
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in copy.functions}
    ambiguous = _implied_defaults(funcs)
    for n in [*copy.graph.node, *(n for f in copy.functions for n in f.node)]:
        f = funcs.get((n.domain, n.op_type, getattr(n, "overload", "")))
        if f is None:
            continue
        given = {a.name for a in n.attribute}
        n.attribute.extend(a for a in f.attribute_proto if a.name not in given)
        left = sorted(ambiguous.get(id(f), set()) - given - {a.name for a in f.attribute_proto})
        if left:
            raise GraphError(f"node {n.name or n.op_type!r} calls local function {_function_name(f)} without its "
                             f"attribute {left[0]!r}, which the function passes on to nodes that default it to "
                             "different values: which value each takes is unknown to onnx's inliner; give it")
    return copy


def _implied_defaults(funcs: dict) -> dict[int, set[str]]:
    """Give each function of ``funcs`` (key -> FunctionProto; modified) a default for each attribute ``r`` it has
    none for whose every use in its body is an attribute of a call of a local function defaulting it to one same
    value: a call omitting ``r`` must run each of those callees with that default, which onnx's inliner would
    drop. Returns ``{id(function): {r}}`` where the uses would take different values (a callee's default, an
    op's own), left to the callers to give (one a later round defaults is no longer undecided)."""
    ambiguous: dict[int, set[str]] = {}
    changed = True
    while changed:   # (a default given to one function may settle the uses in the functions calling it)
        changed = False
        for f in funcs.values():
            defaulted = {a.name for a in f.attribute_proto}
            uses: dict[str, dict] = {}   # r -> {the value a use takes when r is omitted (bytes, None: dropped,
            #                                   or "?": undecided): that value's AttributeProto}
            for n in f.node:
                callee = funcs.get((n.domain, n.op_type, getattr(n, "overload", "")))
                own = {a.name: a for a in callee.attribute_proto} if callee is not None else {}
                for a in n.attribute:
                    if not a.ref_attr_name or a.ref_attr_name in defaulted:
                        continue
                    d = own.get(a.name)
                    taken = d.SerializeToString() if d is not None else (
                        "?" if callee is not None and a.name in ambiguous.get(id(callee), ()) else None)
                    uses.setdefault(a.ref_attr_name, {})[taken] = d
            for r, taken in uses.items():
                if len(taken) == 1 and isinstance(next(iter(taken)), bytes):
                    d = f.attribute_proto.add()
                    d.CopyFrom(next(iter(taken.values())))
                    d.name = r
                    changed = True
                elif (len(taken) > 1 or "?" in taken) and r not in ambiguous.get(id(f), ()):
                    ambiguous.setdefault(id(f), set()).add(r)
                    changed = True
    return ambiguous


def _import_function_domains(model):
    """The model (a copy where any import is added) importing each domain a local function it calls imports
    but the model does not, at the function's version; two called functions importing such a domain at two
    versions are refused, naming both.

    Why: a function's body may use a domain (``com.microsoft``) the model never imports; onnxruntime runs such
    a model, but once inlined the body's nodes stand in the graph, whose inference then refused them with
    onnx's "No opset import for domain ..." naming no node. The user's ModelProto is never modified."""
    funcs: dict[tuple[str, str], list] = {}
    for f in model.functions:
        funcs.setdefault((f.domain, f.name), []).append(f)
    have = {"" if (o.domain or "") in ("", "ai.onnx") else o.domain for o in model.opset_import}
    todo = [(n.domain, n.op_type) for n in model.graph.node if (n.domain, n.op_type) in funcs]
    seen: set[tuple[str, str]] = set()
    added: dict[str, tuple[int, str]] = {}   # domain -> (version, the function importing it)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        for f in funcs[key]:
            todo.extend((n.domain, n.op_type) for n in f.node if (n.domain, n.op_type) in funcs)
            for o in f.opset_import:
                d = "" if (o.domain or "") in ("", "ai.onnx") else o.domain
                if d in have or d in {fd for fd, _ in funcs}:
                    continue
                if d in added and added[d][0] != o.version:
                    raise GraphError(f"local functions {added[d][1]} and {_function_name(f)} import domain "
                                     f"{d or 'ai.onnx'!r} at versions {added[d][0]} and {o.version}, which the model "
                                     "does not import: which version their ops follow is unknown; import it in the "
                                     "model at one version")
                added.setdefault(d, (o.version, _function_name(f)))
    if not added:
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    for d, (version, _) in sorted(added.items()):
        o = copy.opset_import.add()
        o.domain, o.version = d, version
    return copy


def _name_by_ids(g2, ids: list[str]) -> None:
    """Name each node of the inference copy ``g2`` by its node id (``ids``, in order), as errors name it.

    Why: onnx's inference errors name a node by its ONNX name ("node name: ins"), and where two nodes share a name
    (or have none, or a nameless one is ``SequenceInsert_3`` in one count and another in the copy, whose stood-in
    constants are left out) the node blamed was another than the one at fault: a SequenceInsert of an int64 tensor
    into a float sequence, second of two nodes named ``ins``, was reported as ``ins``, the valid first one.
    An id holding a line break is given escaped (``bad\\nnode``): the error is the first line of onnx's message, which
    was cut inside the node's name, losing what inference found (round 73)."""
    for n, nid in zip(g2.node, ids):
        n.name = nid if len(f"{nid}.".splitlines()) == 1 else repr(nid)[1:-1]


def _repeated_name(nodes) -> tuple[str, int, int] | None:
    """``(name, first index, second index)`` of the first two of ``nodes`` that share a name, or None; unnamed nodes
    and ``Constant`` nodes (folded away by runtimes) do not count."""
    seen: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if not n.name or _is_constant(n):
            continue
        if n.name in seen:
            return n.name, seen[n.name], i
        seen[n.name] = i
    return None


def _check_node_names(model) -> None:
    """Two nodes of one name in the graph, or in the body of a local function a node calls, are refused naming the
    name, the nodes' positions and ops (and the function), as onnxruntime refuses the model ("two nodes with same
    node name").

    Why: the importer made the second ``n`` into ``n_1`` (and pushed a node really named ``n_1`` to ``n_2``), so
    the graph and the plan named nodes the model does not have, with nothing saying which ONNX node each was,
    while onnxruntime will not load the model at all. ``Constant`` nodes are exempt (onnxruntime folds them into
    initializers before it checks the names, and runs such a model), and so are uncalled functions (never inlined,
    never checked)."""
    g = model.graph
    hit = _repeated_name(g.node)
    if hit is not None:
        name, a, b = hit
        raise GraphError(f"nodes #{a} ({g.node[a].op_type}) and #{b} ({g.node[b].op_type}) of the graph are both "
                         f"named {name!r}: onnxruntime refuses the model (\"two nodes with same node name\"); give "
                         "each node its own name")
    for k, who in sorted(_called_functions(model).items()):
        f = model.functions[k]
        hit = _repeated_name(f.node)
        if hit is not None:
            name, a, b = hit
            raise GraphError(f"nodes #{a} ({f.node[a].op_type}) and #{b} ({f.node[b].op_type}) of local function "
                             f"{_function_name(f)} (called by {who}) are both named {name!r}: onnxruntime refuses "
                             "the model once it inlines the call (\"two nodes with same node name\"); give each "
                             "node of the body its own name")


def _check_declarations(g) -> None:
    """A value declared more than once (graph input, graph output, ``value_info``) must not be declared with
    two types or shapes. ONNX's inference checks a declaration against what it infers, but an op it does not
    define (a custom or ``com.microsoft`` op) is sized by its declaration alone, and which of two conflicting
    ones was taken depended on their order: ``[3]`` then ``[1000]`` planned 4,000 bytes, the reverse 12.
    A negative declared dimension is refused here, before inference: a Slice of such a value aborted the process
    (onnx's Slice inference clamps into ``[0, dim - 1]`` under a C++ assertion) before the importer could refuse it."""
    seen: dict[str, tuple[int, list | None]] = {}
    kinds = ["graph input"] * len(g.input) + ["graph output"] * len(g.output) + ["value_info"] * len(g.value_info)
    for kind, vi in zip(kinds, list(g.input) + list(g.output) + list(g.value_info)):
        this = _declared_type(vi)
        if this is None:
            continue
        if vi.type.tensor_type.elem_type == 0:   # (onnxruntime: "Invalid tensor data type 0"; onnx's own text)
            raise GraphError(f"{kind} {vi.name!r} has dtype undefined, which has no fixed byte size (it is declared "
                             "a tensor of element type 0, UNDEFINED: onnxruntime refuses to load the model, \"Invalid "
                             "tensor data type 0\")")
        code = vi.type.tensor_type.elem_type
        if not _defined_dtype(code):   # (round 71: "ONNX shape inference failed: Invalid tensor data type 999")
            raise GraphError(f"{kind} {vi.name!r} has dtype type#{code}, which has no fixed byte size (it is declared "
                             f"a tensor of element type {code}, which ONNX does not define: onnxruntime refuses to "
                             "load the model)")
        for i, d in enumerate(this[1] or ()):
            if d is not None and d < 0:   # (before inference: onnx's Slice inference aborts the process on one)
                raise GraphError(f"{kind} {vi.name!r}: value {vi.name!r} dimension {i} is negative ({d}), which no "
                                 "tensor has")
        first = seen.setdefault(vi.name, this)
        (e1, d1), (e2, d2) = first, this
        clash = (e1 and e2 and e1 != e2) or (d1 is not None and d2 is not None and (
            len(d1) != len(d2) or any(a is not None and b is not None and a != b for a, b in zip(d1, d2))))
        if clash:
            raise GraphError(f"value {vi.name!r} is declared twice with different types or shapes "
                             f"({_show_type(e1, d1)} and {_show_type(e2, d2)}): which one the runtime makes is unknown")
        # (what the two say together: the first's where the second adds nothing)
        seen[vi.name] = (e1 or e2, d2 if d1 is None else [a if a is not None else b for a, b in zip(d1, d2 or d1)])


def _check_no_subgraph(n, who: str) -> None:
    """Refuse a node with a subgraph (``If``, ``Loop``, ``Scan``...), ``who`` naming it as the user knows it.

    Why a function body is checked before inlining: once inlined, an unnamed body node is ``<op>_<index>`` of the
    inlined graph, a name the user's model does not have (a call's ``If`` was refused as ``'If_0'``)."""
    for a in n.attribute:
        if a.type in (5, 10) or a.g.ByteSize() or len(a.graphs):  # GRAPH, GRAPHS
            raise GraphError(f"{who} has a subgraph (attribute {a.name!r}): control flow (If/Loop/Scan) is not "
                             "supported; inline or unroll it first")
    if n.op_type in SUBGRAPH_OPS:
        raise GraphError(f"{who} is control flow: not supported")


#: the typed field of a TensorProto that holds each dtype's values when it has no raw_data (onnx.proto), and how
#: many of them one element takes (complex: 2) or how many elements one entry packs (2-bit: 4, 4-bit: 2)
_TYPED_FIELD = {
    1: ("float_data", 1, 1), 14: ("float_data", 2, 1), 11: ("double_data", 1, 1), 15: ("double_data", 2, 1),
    7: ("int64_data", 1, 1), 12: ("uint64_data", 1, 1), 13: ("uint64_data", 1, 1), 8: ("string_data", 1, 1),
    **{dt: ("int32_data", 1, 1) for dt in (2, 3, 4, 5, 6, 9, 10, 16, 17, 18, 19, 20, 24, 27, 28)},
    **{dt: ("int32_data", 1, 2) for dt in (21, 22, 23)}, **{dt: ("int32_data", 1, 4) for dt in (25, 26)},
}


def _defined_dtype(code: int) -> bool:
    """Whether ``code`` is an element type the installed onnx defines (``TensorProto.DataType``; 0 is UNDEFINED,
    which callers judge themselves). Why: a declaration or tensor of another code (999: a corrupt or hand-made file)
    reached onnx's inference, which failed with "Invalid tensor data type 999", naming no value."""
    import onnx

    try:
        onnx.TensorProto.DataType.Name(code)
    except ValueError:
        return False
    return True


def _check_tensor_dims(dims, what: str) -> None:
    """GraphError naming ``what`` (an initializer) when one of its dims is negative or their product, taken in
    order as onnxruntime takes it, leaves int64: onnx.checker and onnxruntime refuse the model, and memplan planned
    it (a product overflowing past a later 0 was planned as 0 bytes)."""
    product = 1
    for k, d in enumerate(dims):
        if d < 0:
            raise GraphError(f"{what} dimension {k} is negative ({d}, in its dims {list(dims)}; onnx.checker and "
                             "onnxruntime refuse the model)")
        product *= d
        if product > MAX_DIM:
            raise GraphError(f"{what}: the product of its dims {list(dims)} overflows int64 (onnx.checker and "
                             "onnxruntime refuse the model)")


def _check_tensor_data(onnx, t, what: str) -> None:
    """GraphError naming ``what`` (an initializer) when the data it holds is not as long as its dims and dtype
    make it: ``raw_data`` (where set, even empty) of another byte length, an external file's ``length`` (where given;
    the file itself is not read), or else another count of values in the dtype's typed field (``float_data``,
    ``int64_data``, ...). Why: memplan planned such a weight by its dims, while onnxruntime refuses the model
    ("raw_data size (8 bytes) does not match expected size"): a plan for a model that never runs."""
    _check_tensor_dims(t.dims, what)
    if t.data_type == 0 or not _defined_dtype(t.data_type):
        # (round 71: refused by onnx's inference as "Invalid tensor data type 999", naming no tensor)
        raise GraphError(f"{what} has data_type {t.data_type} ({_dtype_name(onnx, t.data_type)}), which ONNX does "
                         "not define as an element type: no byte size (onnxruntime refuses to load the model)")
    bits = _BITS.get(t.data_type)
    count = math.prod(t.dims)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        length = next((e.value for e in t.external_data if e.key == "length"), None)
        if length is not None and bits is not None and length.strip().isdigit() \
                and int(length) != _nbytes(bits, tuple(t.dims)):
            raise GraphError(f"{what}: its external data's length is {int(length)} bytes, but its dims "
                             f"{list(t.dims)} and dtype {_dtype_name(onnx, t.data_type)} make "
                             f"{_nbytes(bits, tuple(t.dims))} (onnxruntime refuses the model)")
        return
    if t.HasField("raw_data"):
        if bits is not None and len(t.raw_data) != _nbytes(bits, tuple(t.dims)):
            raise GraphError(f"{what}: its raw_data holds {len(t.raw_data)} bytes, but its dims {list(t.dims)} and "
                             f"dtype {_dtype_name(onnx, t.data_type)} make {_nbytes(bits, tuple(t.dims))} "
                             "(onnxruntime refuses the model)")
        return
    field = _TYPED_FIELD.get(t.data_type)
    if field is None:
        return
    name, per_element, per_entry = field
    want = -(-count * per_element // per_entry)
    have = len(getattr(t, name))
    if have != want:
        raise GraphError(f"{what}: its {name} holds {have} values, but its dims {list(t.dims)} and dtype "
                         f"{_dtype_name(onnx, t.data_type)} make {want} (onnxruntime refuses the model)")


def _check_sparse(onnx, st, what: str) -> None:
    """``_check_tensor_data``'s checks of a sparse tensor ``what`` (a sparse initializer, a Constant's
    ``sparse_value``): its dense dims, its values and indices, and each index inside the dense shape."""
    _check_tensor_dims(st.dims, what)
    _check_tensor_data(onnx, st.values, f"{what}'s values")
    _check_tensor_data(onnx, st.indices, f"{what}'s indices")
    values, indices = list(st.values.dims), list(st.indices.dims)
    if len(values) != 1 or indices not in (values, [*values, len(st.dims)]):
        raise GraphError(f"{what}: its values' dims {values} and its indices' dims {indices} are not [NNZ] and [NNZ] "
                         f"or [NNZ, {len(st.dims)}] (onnx.checker and onnxruntime refuse the model)")
    if st.indices.data_type not in SPARSE_INDEX_TYPES:   # (a uint64 index was read as the int64 it wraps to)
        raise GraphError(f"{what}: its indices {st.indices.name!r} are of dtype "
                         f"{_dtype_name(onnx, st.indices.data_type)}; onnxruntime takes int8, int16, int32 or int64 "
                         "and refuses the model")
    _check_sparse_indices(st, what)


#: the dtypes of a sparse tensor's indices that onnxruntime reads (TensorProto's INT8, INT16, INT32, INT64)
SPARSE_INDEX_TYPES = frozenset({3, 5, 6, 7})


#: the tensor attributes of the nodes that are data, not a description (folded into weights, or a fill value)
_DATA_ATTRIBUTES = {"Constant": ("value", "sparse_value"), "ConstantOfShape": ("value",)}


def _check_node_tensors(onnx, n, nid: str) -> None:
    """``_check_tensor_data`` (``_check_sparse``) of the data a ``Constant`` or ``ConstantOfShape`` node holds, each
    error naming the node and the attribute: a dense value was checked alone, so a ``sparse_value`` or a fill whose
    data disagreed with its dims was planned, where onnxruntime refuses the model."""
    names = _DATA_ATTRIBUTES.get(n.op_type, ()) if n.domain in ("", "ai.onnx") else ()
    for a in n.attribute:
        if a.name not in names:
            continue
        what = f"node {nid!r} ({n.op_type})'s {a.name}"
        if a.HasField("t"):
            _check_tensor_data(onnx, a.t, what)
        if a.HasField("sparse_tensor"):
            _check_sparse(onnx, a.sparse_tensor, what)


def _check_sparse_indices(st, what: str) -> None:
    """GraphError naming the sparse tensor ``what`` one of whose indices lies outside its dense shape: onnx.checker
    and onnxruntime refuse such a model, and memplan planned it (as the dense weight its dims declare). The
    indices are the linear ones (shape ``[NNZ]``, in ``0 .. prod(dims) - 1``) or coordinates (``[NNZ, rank]``,
    column ``k`` in ``0 .. dims[k] - 1``). Indices in an external file are not read here (the weights never are)."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    if st.indices.data_location == TensorProto.EXTERNAL:
        return
    try:
        idx = np.asarray(numpy_helper.to_array(st.indices))
    except Exception:   # noqa: BLE001 - indices onnx itself cannot read: left to the rest of the import
        return
    dims = [int(d) for d in st.dims]
    top = np.iinfo(np.int64).max   # (a larger dense size has no index past it)
    if idx.ndim == 1:
        limits = np.int64(min(math.prod(dims), top))
    elif idx.ndim == 2 and idx.shape[1] == len(dims):
        limits = np.asarray([min(d, top) for d in dims], dtype=np.int64)
    else:
        return
    idx = idx.astype(np.int64, copy=False)
    bad = np.flatnonzero(((idx < 0) | (idx >= limits)).ravel())
    if bad.size:
        at = np.unravel_index(int(bad[0]), idx.shape)
        raise GraphError(f"{what}: index {int(idx[at])} at position {list(map(int, at))} "
                         f"of its indices {st.indices.name!r} lies outside its dims {dims} (onnx.checker and "
                         "onnxruntime refuse the model)")


def _check_structure(g, node_ids: list[str], inits: set[str]) -> None:
    """Subgraphs, topological order and single assignment, each error naming the node."""
    for what, values in (("graph input", [v.name for v in g.input]), ("graph output", [v.name for v in g.output]),
                         ("initializer", [t.name for t in g.initializer]),
                         ("sparse initializer", [t.values.name for t in g.sparse_initializer])):
        for i, v in enumerate(values):
            if not v:  # else a tensor of id "" (an error naming no ONNX element) or an output nothing makes
                raise GraphError(f"{what} #{i} has an empty name (ONNX names every {what})")
        if what != "graph output" and len(set(values)) != len(values):   # (an output may be listed twice)
            dup = next(v for i, v in enumerate(values) if v in values[:i])
            raise GraphError(f"{what} {dup!r} is declared twice (ONNX names each value once)")
    _check_declarations(g)
    both = {t.name for t in g.initializer} & {t.values.name for t in g.sparse_initializer}
    if both:   # two weights of one name: which one a reader means (and its size) is anyone's guess
        raise GraphError(f"initializer {min(both)!r} is declared twice, as a dense and as a sparse initializer "
                         "(ONNX names each value once)")
    import onnx

    for t in g.initializer:
        _check_tensor_data(onnx, t, f"initializer {t.name!r}")
    for st in g.sparse_initializer:
        _check_sparse(onnx, st, f"sparse initializer {st.values.name!r}")
    for i, n in enumerate(g.node):   # a Constant is an initializer the runtime folds in (planned as a weight)
        _check_node_tensors(onnx, n, node_ids[i])
    producer: dict[str, int] = {}
    inputs = {v.name for v in g.input}
    for i, n in enumerate(g.node):
        _check_no_subgraph(n, f"node {node_ids[i]!r} ({n.op_type})")
        check_before_inference(n, f"node {node_ids[i]!r} ({n.op_type})")   # (inference may kill the process)
        _check_resize_axes(n, node_ids[i])
        _check_rnn_layout(n, node_ids[i])
        _check_rnn_hidden_size(n, node_ids[i])
        for o in n.output:
            if not o:
                continue
            if o in producer:
                raise GraphError(f"value {o!r} is produced twice (by nodes {node_ids[producer[o]]!r} and "
                                 f"{node_ids[i]!r})")
            if o in inits:
                raise GraphError(f"node {node_ids[i]!r} writes initializer {o!r}")
            if o in inputs:  # else one id for two tensors, an error that names no node
                raise GraphError(f"node {node_ids[i]!r} writes graph input {o!r}")
            producer[o] = i
    defined = inputs | inits
    for i, n in enumerate(g.node):
        for v in n.input:
            if not v or v in defined:
                continue
            p = producer.get(v)
            if p is None:
                raise GraphError(f"node {node_ids[i]!r} ({n.op_type}) reads {v!r}, which is no graph input, "
                                 "initializer or node output")
            what = "a cycle" if p >= i else "nodes out of topological order"
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}) reads {v!r} before its producer "
                             f"{node_ids[p]!r} runs ({what}; ONNX requires topological node order)")
        defined.update(o for o in n.output if o)


def _check_required_names(onnx, g, node_ids: list[str], opsets: dict[str, int]) -> None:
    """An empty name marks an omitted *optional* input or output; one in the place of a required one (a formal
    parameter the op's schema marks single) is refused, naming the node, the place and the parameter.

    Why: ``Add(X, "")`` or a ``Relu`` whose one output is ``""`` was imported and planned (a node reading only
    ``X``; a node writing nothing), while onnx's checker and onnxruntime refuse the model ("input 1 is marked
    single but has an empty string"): a plan of a model no runtime runs. An empty name among a variadic
    parameter's (a ``Split`` of outputs ``["a", "", "c"]``, a ``Concat`` or ``Sum`` reading ``""``) is refused
    too: ONNX's IR lets an empty name stand only for an omitted *optional* one, a variadic parameter has none to
    omit, and onnxruntime 1.32 crashes on such a Split (the process dies: a segmentation fault) where memplan
    planned it. Ops onnx has no schema for (custom domains, onnxruntime's own) are left as they are: their own
    runtime judges them."""
    schemas: dict[tuple[str, str], Any] = {}
    for i, n in enumerate(g.node):
        if all(n.input) and all(n.output):
            continue
        domain = "" if n.domain == "ai.onnx" else n.domain
        key = (domain, n.op_type)
        if key not in schemas:
            try:
                schemas[key] = onnx.defs.get_schema(n.op_type, opsets.get(domain, 0), domain)
            except Exception:  # noqa: BLE001 - no schema at that version (a custom op): not ours to judge
                schemas[key] = None
        schema = schemas[key]
        if schema is None:
            continue
        option = onnx.defs.OpSchema.FormalParameterOption
        for what, names, params in (("input", n.input, schema.inputs), ("output", n.output, schema.outputs)):
            for k, v in enumerate(names):
                if v or not params:
                    continue
                param = params[min(k, len(params) - 1)]   # (only the last formal parameter may be variadic)
                if k < len(params) and param.option == option.Single:
                    raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): {what} #{k} is empty, but {what} "
                                     f"{param.name!r} of {n.op_type}-{schema.since_version} is required (an empty "
                                     "name marks an omitted optional one; onnxruntime refuses the model too)")
                if param.option == option.Variadic and (k >= len(params) - 1):
                    raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): {what} #{k} is empty, but it is one of "
                                     f"the variadic {what}s {param.name!r} of {n.op_type}-{schema.since_version}, "
                                     "which ONNX does not let one leave out (an empty name marks an omitted "
                                     "optional one); onnxruntime 1.32 refuses such a model or crashes on it")


#: domains whose ops onnx's checker judges by their schema (onnxruntime runs the same check on them)
_SCHEMA_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


def _has_external_tensor(n) -> bool:
    """Whether a tensor attribute of node ``n`` keeps its data in an external file (onnx's checker would look the
    file up relative to the working directory: not the model's folder, and never read here)."""
    external = 1   # TensorProto.EXTERNAL
    return any(t.data_location == external
               for a in n.attribute
               for t in [a.t, *a.tensors, a.sparse_tensor.values, a.sparse_tensor.indices,
                         *(s.values for s in a.sparse_tensors), *(s.indices for s in a.sparse_tensors)])


#: ops onnx marks deprecated at an opset that onnxruntime still runs there (GroupNormalization-18, whose scale and bias
#: are per group, superseded by -21's per channel): onnx's checker refuses them, onnxruntime does not
ORT_RUNS_DEPRECATED = frozenset({("", "GroupNormalization")})


#: the default-domain ops onnxruntime registers that onnx does not define (onnxruntime 1.32's schemas: its own, the
#: experimental ops onnx dropped, TensorRT's plugins): an op of the default domain none of these nor onnx's is one no
#: runtime knows. Where onnxruntime is installed its own schemas are read instead (``ort_default_domain_ops``), so a
#: later onnxruntime's ops are known; this list stands in without it
ORT_DEFAULT_DOMAIN_SCHEMAS = frozenset({
    "Affine", "Crop", "DisentangledAttention_TRT", "DynamicSlice", "EfficientNMS_TRT", "GRUUnit", "GivenTensorFill",
    "ImageScaler", "MemcpyFromHost", "MemcpyToHost", "MultilevelCropAndResize_TRT", "ParametricSoftplus",
    "PyramidROIAlign_TRT", "Scale", "ScaledTanh", "SimplifiedLayerNormalization"})


def _check_known_ops(onnx, g, node_ids: list[str]) -> None:
    """Refuse, naming the node and its op, a node of the default domain (``""``, ``ai.onnx``) whose op neither onnx
    defines nor onnxruntime registers (``Softma|``, ``softmax``), with the nearest op names onnx defines as a hint.

    Why: such a node was taken for a custom op and planned from the shapes the model declares for its outputs, while
    onnxruntime refuses to load the model ("No Op registered for Softma| with domain_version of 17"): in the default
    domain it is a misspelt or corrupt op type, not an extension. Custom domains stay accepted (their runtime
    registers them)."""
    import difflib

    ort_ops = None
    for i, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx") or onnx.defs.has(n.op_type, ""):
            continue
        if ort_ops is None:   # (onnxruntime's own list where it is installed: one newer than 1.32 may add ops)
            ort_ops = ort_default_domain_ops() or ORT_DEFAULT_DOMAIN_SCHEMAS
        if n.op_type in ort_ops:
            continue
        names = sorted({s.name for s in onnx.defs.get_all_schemas() if s.domain == ""})
        near = difflib.get_close_matches(n.op_type, names, n=3) or difflib.get_close_matches(
            n.op_type.lower(), [x.lower() for x in names], n=3)
        near = [next(x for x in names if x.lower() == m) if m not in names else m for m in near]
        hint = f" (did you mean {' or '.join(repr(x) for x in near)}?)" if near else ""
        raise GraphError(f"node {node_ids[i]!r}: its op {n.op_type!r} is not an op of the default ONNX domain (onnx "
                         f"defines none such, nor does onnxruntime register one: it refuses to load the model){hint}; a "
                         "misspelt or corrupt op type, or a custom op that needs its own domain")


def _check_node_schemas(onnx, g, node_ids: list[str], model) -> None:
    """Each node of an op onnx defines (the default and ``ai.onnx.ml`` domains) checked against its schema at the
    model's opset, as ``onnx.checker.check_node`` does: an attribute given twice, of another type than the schema's
    (or of none), one the op does not have, an op deprecated at that opset... refused naming the node and what the
    checker says.

    Why: such a node was planned by what onnx's shape inference reads of it (the last of two ``axis`` attributes,
    the integer field of ``axis=1.0``: 0), a reading no runtime makes: onnxruntime runs this very check on every
    node before it runs a model, and refuses it (a Gather of ``[3, 2]`` by 5 indices with ``axis`` 1 then 0 was
    planned 40 bytes; taken by its first axis it writes 60). Left out: an op onnx has no schema for at that opset
    (onnxruntime's own ops in the default domain, such as ``SimplifiedLayerNormalization``: their runtime judges
    them), a ``Constant`` (folded into a weight; its data is checked as an initializer's), and a node with a tensor
    attribute in an external file (the checker would look for it relative to the working directory) or a subgraph
    (refused before: ``_check_no_subgraph``)."""
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = opsets
    known: dict[tuple[str, str], bool] = {}
    for i, n in enumerate(g.node):
        domain = "" if n.domain == "ai.onnx" else n.domain
        if (domain not in _SCHEMA_DOMAINS or (n.op_type == "Constant" and domain == "") or _has_external_tensor(n)
                or any(a.type in (5, 10) for a in n.attribute)):   # (a subgraph: refused before, by name)
            continue
        key = (domain, n.op_type)
        if key not in known:
            defined = onnx.defs.has(n.op_type, domain) and domain in opsets
            known[key] = defined and _schema_at(onnx, n.op_type, opsets[domain], domain)
            if defined and not known[key] and not ort_registers(domain, n.op_type, opsets[domain]):
                _refuse_before_first(onnx, n.op_type, domain, opsets[domain], node_ids[i])
        if not known[key]:
            continue
        names = [a.name for a in n.attribute]
        twice = next((a for k, a in enumerate(names) if a in names[:k]), None)
        if twice is not None:   # (onnx's inference reads the last, a runtime may read the first)
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): attribute {twice!r} is given twice (onnx's "
                             "checker and onnxruntime refuse the model)")
        untyped = next((a.name for a in n.attribute if not a.type), None)
        if untyped is not None:
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): attribute {untyped!r} has no type (onnx's "
                             "checker and onnxruntime refuse the model)")
        why = _checker_says(onnx, n, ctx) if n.domain == domain else None
        if n.domain != domain or why is not None:   # (a copy only then: copying every node doubles the time)
            node = onnx.NodeProto()   # named as memplan names it, its domain as the checker knows the default one
            node.CopyFrom(n)
            node.name, node.domain = node_ids[i], domain
            why = _checker_says(onnx, node, ctx)
        if why is not None and (domain, n.op_type) in ORT_RUNS_DEPRECATED and "is deprecated" in why:
            why = None   # (onnxruntime still runs it: sized by its schema, as onnxruntime runs it)
        if why is not None:
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): {why} (onnx's checker refuses the node, and "
                             "onnxruntime the model)")


#: the domains of onnxruntime's own ops whose attributes its checker holds against its schemas
_ORT_CHECKED_DOMAINS = frozenset({ORT_DOMAIN, "com.microsoft.nchwc"})


def _check_ort_node_attributes(onnx, g, node_ids: list[str], model) -> None:
    """Each node of onnxruntime's own ops (``com.microsoft``, ``com.microsoft.nchwc``) checked against onnxruntime's
    schema of it at the model's opset of its domain, as onnxruntime's checker does before it runs a model: an
    attribute the op does not have (a misspelt ``epsilon``), one of another type than the schema's (``num_heads=2.0``),
    and one given twice or of no type are refused naming the node and the attribute (a required one left out is
    left to the rules that read it, which refuse what they cannot size).

    Why: ``_check_node_schemas`` checks the ops onnx defines; these were planned by what memplan's rules read of
    them (a misspelt attribute read as absent: its default), while onnxruntime refuses to load the model
    ("Unrecognized attribute: eps for operator SkipLayerNormalization") (round 76). Ops whose schema takes undeclared
    attributes (``ORT_UNCHECKED_ATTRIBUTES``) keep those; names onnx reserves (``__...``) pass, as its checker lets
    them; without onnxruntime nothing is checked here."""
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    for i, n in enumerate(g.node):
        if n.domain not in _ORT_CHECKED_DOMAINS or n.domain not in opsets:
            continue
        declared = ort_attributes(n.domain, n.op_type, opsets[n.domain])
        if declared is None:
            continue
        who = f"node {node_ids[i]!r} ({n.domain}:{n.op_type})"
        seen: set[str] = set()
        for a in n.attribute:
            if a.name in seen or not a.type:
                raise GraphError(f"{who}: attribute {a.name!r} is "
                                 + ("given twice" if a.name in seen else "of no type")
                                 + " (onnxruntime refuses the model)")
            seen.add(a.name)
            if a.name not in declared:
                if n.op_type in ORT_UNCHECKED_ATTRIBUTES or a.name.startswith("__"):
                    continue
                raise GraphError(f"{who}: it has an attribute {a.name!r}, which onnxruntime's {n.op_type} does not "
                                 f"have (it has {', '.join(sorted(declared)) or 'none'}); onnxruntime refuses to load "
                                 f"the model (\"Unrecognized attribute: {a.name} for operator {n.op_type}\")")
            want = declared[a.name][0]
            if a.type != want:
                names = onnx.AttributeProto.AttributeType.Name
                raise GraphError(f"{who}: its attribute {a.name!r} is of type {names(a.type)}, where onnxruntime's "
                                 f"{n.op_type} takes {names(want)}; onnxruntime refuses to load the model "
                                 "(\"Mismatched attribute type\")")


def _refuse_before_first(onnx, op: str, domain: str, version: int, nid: str) -> None:
    """Refuse node ``nid`` of ``domain:op``, which onnx defines only from a version after the model's ``version``
    of its domain on. Why: ``Gelu`` at opset 17 (Gelu-20 is its first) was planned, sized by onnx's inference, while
    onnxruntime refuses the model ("No Op registered for Gelu with domain_version of 17"): this check skipped an op
    with no schema at the opset (for onnxruntime's own ops), and the kernel-version check and the type rules left it
    to this one."""
    first = min(s.since_version for s in onnx.defs.get_all_schemas_with_history()
                if s.domain == domain and s.name == op)
    where = "the default domain" if domain == "" else f"domain {domain!r}"
    raise GraphError(f"node {nid!r} ({op}): onnx defines {op} from opset {first} of {where} on, and the model "
                     f"imports opset {version} (onnxruntime refuses to load the model: no {op} is registered at "
                     f"that version); convert the model to opset {first} or later")


def _checker_says(onnx, n, ctx) -> str | None:
    """The first line of what ``onnx.checker.check_node`` refuses node ``n`` for, or None where it passes."""
    try:
        onnx.checker.check_node(n, ctx)
    except onnx.checker.ValidationError as exc:
        return str(exc).split("\n")[0].strip().rstrip(".")
    return None


def _schema_at(onnx, op: str, version: int, domain: str) -> bool:
    """Whether onnx defines ``op`` of ``domain`` at opset ``version`` (a schema that version resolves to)."""
    try:
        onnx.defs.get_schema(op, version, domain)
    except Exception:  # noqa: BLE001 - onnx.defs.SchemaError: none at that version
        return False
    return True


def _check_rnn_layout(n, nid: str) -> None:
    """Refuse an LSTM, GRU or RNN with ``layout`` other than 0, naming the node.

    Why: one with ``layout=1`` (batch-major, as ``torch.nn.LSTM(batch_first=True)`` means) was planned, sized by
    ONNX's inference, while onnxruntime refuses to create the kernel ("Batchwise recurrent operations (layout ==
    1) are not supported"): a plan for a model no runtime the importer sizes for can run."""
    if n.domain not in ("", "ai.onnx") or n.op_type not in ("LSTM", "GRU", "RNN"):
        return
    layout = next((a.i for a in n.attribute if a.name == "layout"), 0)
    if layout != 0:
        raise GraphError(f"node {nid!r} ({n.op_type}) has layout={layout} (batch-major): onnxruntime refuses to run "
                         "it (\"Batchwise recurrent operations (layout == 1) are not supported\"); export it "
                         "sequence-major (layout=0)")


def _check_rnn_hidden_size(n, nid: str) -> None:
    """Refuse an LSTM, GRU or RNN without a ``hidden_size``, or of a negative one, and a GRU or LSTM of
    ``hidden_size=0``, naming the node and the attribute.

    Why: ONNX's inference sizes the outputs' last dimension only from a positive ``hidden_size``, so each of these
    was refused as a dimension ONNX "could not derive", which names neither the attribute nor the cause; onnxruntime
    refuses each (to load it: "hidden_size ... > 0 was false"; to run an RNN of a negative one: its ``W`` never fits). An RNN
    of ``hidden_size=0`` runs (onnxruntime makes ``Y`` ``[seq, dirs, batch, 0]``) and is planned
    (``infer._zero_hidden_rnn_shapes``)."""
    if n.domain not in ("", "ai.onnx") or n.op_type not in ("LSTM", "GRU", "RNN"):
        return
    a = next((a for a in n.attribute if a.name == "hidden_size"), None)
    if a is None:
        raise GraphError(f"node {nid!r} ({n.op_type}) has no hidden_size attribute: onnxruntime refuses to load the "
                         "model (it reads the outputs' size from it); give hidden_size")
    if a.i < 0 or (a.i == 0 and n.op_type != "RNN"):
        raise GraphError(f"node {nid!r} ({n.op_type}) has hidden_size={a.i}: onnxruntime refuses the model "
                         "(its kernel needs hidden_size > 0)")


def _check_resize_axes(n, nid: str) -> None:
    """A Resize that keeps the aspect ratio (``keep_aspect_ratio_policy`` not ``stretch``) over negative ``axes``
    is refused: its output's size is not one that runtimes agree on. ONNX's inference (and the spec) count the
    axes from the end and scale them by one ratio; onnxruntime 1.32 leaves those dimensions at the input's size
    (``[1, 1, 3, 5]`` to ``sizes=[7, 4], axes=[-2, -1]``, ``not_larger``: planned [1, 1, 2, 4], 32 bytes, where
    onnxruntime writes 60); onnx's reference evaluator fails. Positive axes size the same everywhere.

    Also a Resize of ``antialias=1`` in a mode other than ``linear`` or ``cubic`` (round 67): the spec's antialias
    filter applies to those two only, ONNX's inference sizes it, and onnxruntime refuses to load the model."""
    if n.op_type != "Resize" or n.domain not in ("", "ai.onnx"):
        return
    attrs = {a.name: a for a in n.attribute}
    policy = attrs["keep_aspect_ratio_policy"].s if "keep_aspect_ratio_policy" in attrs else b"stretch"
    policy = policy.decode("utf-8", "replace") if isinstance(policy, bytes) else str(policy)
    mode = attrs["mode"].s if "mode" in attrs else b"nearest"
    if "antialias" in attrs and attrs["antialias"].i != 0 and mode not in (b"linear", b"cubic"):
        # (the spec's antialias applies to linear and cubic only; onnxruntime refuses to load it on nearest)
        raise GraphError(f"node {nid!r} (Resize) has antialias={attrs['antialias'].i} with mode "
                         f"{mode.decode('utf-8', 'replace')!r}: onnxruntime refuses to load the model (\"when "
                         "anti-aliasing is set, Resize only supports mode LINEAR and CUBIC\"); drop antialias")
    if policy != "stretch" and "axes" in attrs and any(a < 0 for a in attrs["axes"].ints):
        raise GraphError(f"node {nid!r} (Resize) keeps the aspect ratio ({policy!r}) over negative axes "
                         f"{list(attrs['axes'].ints)}, whose output size runtimes disagree on (onnxruntime leaves "
                         "them at the input's size): write the axes as non-negative")


def _flat(v):
    """A known value as the 1-D array onnxruntime reads it (None stays None).

    Why: onnxruntime reads a Resize's ``scales`` or ``sizes`` of any rank by their elements (a 0-D ``2.0``, a
    ``[[20]]``); ``len()`` of a 0-D one, and ``float()`` of a row of a 2-D one, failed with a raw TypeError."""
    import numpy as np

    return None if v is None else np.asarray(v).reshape(-1)
