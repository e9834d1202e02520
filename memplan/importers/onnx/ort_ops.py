"""onnxruntime's own (``com.microsoft``) ops: which ones memplan can size, and their output-shape rules.

Why: ONNX shape inference knows nothing of contrib ops; onnxruntime's symbolic shape inference knows some and is
wrong about a few (``ORT_WRONG``). Each op memplan plans has a rule here, checked against onnxruntime's kernels; an
op without a rule is refused by name rather than planned at a guessed size.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Collection

from ..._interrupt import raise_if_interrupted
from ..._warnblock import warnings_caught
from ...errors import GraphError
from .. import first_line
from .common import ORT_DOMAIN, SMALL_INITIALIZER, _broadcast, _dtype_name, _node_ids, _show_type

ORT_DEFAULT_DOMAIN_OPS = frozenset({"SimplifiedLayerNormalization"})


@functools.cache  # (looked for once per process: the answer is a fact about the installation)
def _ort_symbolic():
    """onnxruntime's ``SymbolicShapeInference`` class, or None where onnxruntime (or sympy, which it needs) is not
    installed. Loaded lazily, never when ``memplan`` is imported, and as its own file: importing it as
    ``onnxruntime.tools.symbolic_shape_infer`` runs ``onnxruntime.tools/__init__``, which imports torch where torch
    is installed (1.5 s and its memory for a module that needs only onnx, numpy and sympy)."""
    import importlib.util
    import logging

    found = None
    try:
        spec = importlib.util.find_spec("onnxruntime")   # (locates the package without importing it)
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, "tools", "symbolic_shape_infer.py")
        if not os.path.isfile(path):
            continue
        try:
            mspec = importlib.util.spec_from_file_location("memplan._onnxruntime_symbolic_shape_infer", path)
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
            found = module.SymbolicShapeInference
            # its warnings ("unsupported broadcast...") are not the user's business: memplan's errors say what
            # matters, and the CLI writes one line on stderr or none
            quiet = logging.getLogger(module.__name__)
            quiet.addHandler(logging.NullHandler())
            quiet.propagate = False
        except Exception as exc:  # noqa: BLE001 - sympy missing, an onnxruntime whose file differs: not there
            raise_if_interrupted(exc)   # (a Ctrl-C in a C extension's init: the command's, never cached as "not there")
            found = None
        break
    return found


def _is_ort_op(onnx, n) -> bool:
    """Whether node ``n`` is one of onnxruntime's own ops (``ORT_DOMAIN``'s, ``ORT_DEFAULT_DOMAIN_OPS``), not onnx's."""
    if n.domain == ORT_DOMAIN:
        return not onnx.defs.has(n.op_type, n.domain)
    return n.domain in ("", "ai.onnx") and n.op_type in ORT_DEFAULT_DOMAIN_OPS and not onnx.defs.has(n.op_type, "")


#: the most elements of a ConstantOfShape onnxruntime's shape inference may compute the value of: the values its rules
#: read are shapes, axes and counts (a few elements); a longer one is sized without its data (``_bounded_constant_of_shape``)
ORT_DATA_ELEMENTS = 1 << 16


def _bounded_constant_of_shape(onnx, inst, original):
    """onnxruntime's ConstantOfShape rule (``original``) for its shape inference ``inst``, except that an output of
    more than ``ORT_DATA_ELEMENTS`` elements of a known shape is only sized (static dims), its value not computed.

    Why: onnxruntime's rule materializes an int64 ConstantOfShape of a known shape (``np.ones(shape)``), so a model
    with one of ``[100000, 100000]`` (80 GB) and any ``com.microsoft`` op had the importer allocate 80 GB, or be
    killed for it, before anything was sized; and its elementwise rules then loop in Python over such a value. No
    rule reads a value that long as a shape, so its data is never needed, and its size is the shape's product."""
    def run(node):
        try:
            shape = inst._get_int_or_float_values(node)[0]
        except Exception:  # noqa: BLE001 - not a value it knows: its own rule decides
            shape = None
        dims = shape if isinstance(shape, list) else [shape] if shape is not None else None
        if dims is not None and all(isinstance(d, int) or str(d).lstrip("-").isdigit() for d in dims):
            dims = [int(d) for d in dims]
            vi = inst.known_vi_.get(node.output[0]) if node.output and node.output[0] else None
            if vi is not None and all(d >= 0 for d in dims) and math.prod(dims) > ORT_DATA_ELEMENTS:
                vi.CopyFrom(onnx.helper.make_tensor_value_info(node.output[0], vi.type.tensor_type.elem_type, dims))
                return
        original(node)
    return run


def _ort_inferred(onnx, cls, m2, also: dict, known: dict | None = None,
                  why: dict | None = None) -> dict[str, tuple[int, tuple[int, ...]]]:
    """``{value: (elem type, static dims)}`` of the outputs of onnxruntime's own ops in ``m2``, as onnxruntime's
    symbolic shape inference makes them (the ones it leaves symbolic or untyped are absent).

    It runs on a copy of ``m2`` cut to what it can follow: a node it has no rule for (an op of another domain)
    is replaced by its outputs as graph inputs, typed as the model declares them (the nodes after one it does
    not declare are left out), so that one such op does not end its pass. Its declared ``value_info`` is not
    given to it (it would not be checked, but copied). ``known`` (value -> ValueInfoProto of static shape, from
    onnx's inference): a standard node all of whose outputs are known is given as those outputs, typed, unless
    one is a small integer tensor (a shape, an axis: a value the rules may read); onnxruntime's pass stops at
    the first op its rules fail on (its Expand of a shape it cannot follow), which left every op of its own
    after that one unsized, and the model refused, where onnxruntime runs it. Its private loop is driven here
    rather than through its ``infer_shapes``, which saves the model to ``sym_shape_infer_temp.onnx`` in the working directory whenever
    some value stays symbolic, as data-dependent ones do."""
    g2 = m2.graph
    inst = cls(2**31 - 1, False, False, 0)
    inst.dispatcher_ = {**getattr(inst, "dispatcher_", {}), **_ort_hooks(onnx, inst, also, why)}
    if "ConstantOfShape" in inst.dispatcher_:
        inst.dispatcher_["ConstantOfShape"] = _bounded_constant_of_shape(onnx, inst, inst.dispatcher_["ConstantOfShape"])
    if "SplitToSequence" in inst.dispatcher_:
        inst.dispatcher_["SplitToSequence"] = _split_to_sequence(onnx, inst)
    known_ops = set(inst.dispatcher_)
    declared = {vi.name: vi for vi in list(g2.value_info) + list(g2.output)}
    cut = onnx.ModelProto()
    cut.ir_version = m2.ir_version
    cut.opset_import.extend(m2.opset_import)
    cg = cut.graph
    cg.name = g2.name
    cg.input.extend(g2.input)
    cg.initializer.extend(g2.initializer)
    unknown: set[str] = set()
    wanted: list[str] = []
    for n in g2.node:
        outs = [o for o in n.output if o]
        if any(v in unknown for v in n.input if v):
            unknown.update(outs)
            continue
        domain = "" if n.domain == "ai.onnx" else n.domain
        if known and outs and onnx.defs.has(n.op_type, domain) and all(_given_sized(known.get(o)) for o in outs):
            cg.input.extend(known[o] for o in outs)
            continue
        if onnx.defs.has(n.op_type, domain) or (_is_ort_op(onnx, n) and n.op_type in known_ops):
            cg.node.append(n)
            if _is_ort_op(onnx, n):
                wanted.extend(outs)
            continue
        for o in outs:   # an op it cannot size: its outputs as the model declares them
            vi = declared.get(o)
            if vi is not None and vi.type.WhichOneof("value"):
                cg.input.append(vi)
            else:
                unknown.add(o)
    if not wanted:
        return {}
    cg.output.extend(onnx.ValueInfoProto(name=o) for o in dict.fromkeys(wanted))
    found: dict[str, tuple[int, tuple[int, ...]]] = {}

    try:
        with warnings_caught():
            inst._preprocess(cut)
            for _ in range(4):   # (it repeats a pass only to merge symbols, which it is not asked to)
                if not inst.run_ or inst._infer_impl():
                    break
    except Exception:  # noqa: BLE001 - an op its rules fail on: what it sized before that still stands
        pass
    for o in wanted:
        vi = getattr(inst, "known_vi_", {}).get(o)
        if vi is None or vi.type.WhichOneof("value") != "tensor_type":
            continue
        tt = vi.type.tensor_type
        if tt.elem_type and tt.HasField("shape") and all(d.HasField("dim_value") and d.dim_value >= 0
                                                         for d in tt.shape.dim):
            found[o] = (tt.elem_type, tuple(d.dim_value for d in tt.shape.dim))
    return found


def _split_to_sequence(onnx, inst):
    """A ``SplitToSequence`` rule for onnxruntime's inference ``inst``: its output a sequence of its input's dtype,
    of shapes left unknown (the tensors taken out of it are sized by onnx's inference and given to the pass).

    Why: onnxruntime 1.32's own rule calls ``onnx.helper.make_sequence_value_info``, which onnx no longer has (and
    would size the sequence as a Split's outputs, one per piece), and its pass runs no onnx inference of the node
    either; so the rule raised, which ended the pass: every ``com.microsoft`` op after a ``SplitToSequence`` was
    left unsized and the model refused, where onnxruntime runs it (round 76)."""
    def run(node):
        x = inst.known_vi_.get(node.input[0]) if node.input and node.input[0] else None
        elem = x.type.tensor_type.elem_type if x is not None and x.type.HasField("tensor_type") else 0
        if node.output and node.output[0] and elem:
            vi = onnx.helper.make_tensor_sequence_value_info(node.output[0], elem, None)
            inst.known_vi_.setdefault(node.output[0], vi).CopyFrom(vi)
    return run


#: integer types: a small tensor of one may be a value onnxruntime's rules read (a shape, an axis)
_INTEGER_TYPES = frozenset({2, 3, 4, 5, 6, 7, 12, 13})


def _given_sized(vi) -> bool:
    """Whether a value onnx's inference sized (``vi``; None: it did not) may be given to onnxruntime's inference as
    a typed input in place of its node: not a small integer tensor, whose data its rules may need."""
    if vi is None:
        return False
    tt = vi.type.tensor_type
    return not (tt.elem_type in _INTEGER_TYPES and math.prod(d.dim_value for d in tt.shape.dim) <= SMALL_INITIALIZER)


def _fused_matmul(attrs: dict, shapes: list, elems: list, value) -> dict:
    """FusedMatMul: MatMul of its inputs, each with its last two axes swapped where ``transA`` / ``transB`` say
    (onnxruntime's inference has no rule for it). ``transBatchA`` / ``transBatchB`` first move the input's axis 0
    behind its other batch axes (``[K, B, M]`` is read ``[B, K, M]``), as onnxruntime's kernel and its own
    inference read it; they need both inputs of one rank of at least 3 (onnxruntime refuses others: left unsized).
    A 1-D input has no axes to swap: onnxruntime's kernel ignores its flag (``[K]`` with ``transA`` is still the
    vector ``[K]``), so it is sized as MatMul sizes it rather than refused as unsized. (Round 74: a transBatch one,
    which onnxruntime's optimizer makes of a Transpose before a MatMul, was refused as unsized.)"""
    import numpy as np

    if len(shapes) < 2 or shapes[0] is None or shapes[1] is None:
        return {}
    a, b = list(shapes[0]), list(shapes[1])
    if attrs.get("transBatchA") or attrs.get("transBatchB"):
        if len(a) != len(b) or len(a) < 3:
            return {}
        for s, t in ((a, attrs.get("transBatchA")), (b, attrs.get("transBatchB"))):
            if t:
                s[:-1] = s[1:-1] + s[:1]   # (axis 0 moved to just before the last: [K, B, M] -> [B, K, M])
    for s, t in ((a, attrs.get("transA")), (b, attrs.get("transB"))):
        if t and len(s) >= 2:
            s[-1], s[-2] = s[-2], s[-1]
    if not a or not b:
        return {}
    one_a, one_b = len(a) == 1, len(b) == 1
    a, b = ([1] + a if one_a else a), (b + [1] if one_b else b)
    if a[-1] != b[-2]:
        return {}
    try:
        batch = list(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    except ValueError:
        return {}
    return {0: (elems[0], tuple(batch + ([] if one_a else [a[-2]]) + ([] if one_b else [b[-1]])))}


def _skip_layer_norm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """(Skip)(Simplified)LayerNormalization's outputs: the input's shape, and its ``mean`` / ``inv_std_var`` float
    of the input's shape with the last axis 1, as onnxruntime's kernels write them (its inference leaves those
    two unsized)."""
    x = shapes[0] if shapes else None
    if not x:
        return {}
    stat = (1, tuple(x[:-1]) + (1,))   # (float: the kernels' type U, whatever the input's type)
    return {0: (elems[0], tuple(x)), 1: stat, 2: stat, 3: (elems[0], tuple(x))}


def _multi_head_attention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MultiHeadAttention: output ``[B, S, num_heads * v_head]``, present key / value ``[B, num_heads, P + L,
    head]`` of the key's / value's own head size (onnxruntime's inference took the value's for both, and gave
    none for a 4-D key), and the optional ``qk`` scores ``[B, num_heads, S, P + L]`` (its inference gave them
    none: refused as unsized), in the query's type or the one the model declares (``ORT_DECLARED_TYPES``). Query ``[B, S, H]`` or packed ``[B, S, N, 3, h]``; key ``[B, L, H]``, ``[B, N, L, h]`` or
    packed with the value ``[B, L, N, 2, h]``; past key / value (inputs 6, 7) ``[B, N, P, h]``."""
    n = attrs.get("num_heads", 0)
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    q, k, v = get(0), get(1), get(2)
    if n <= 0 or q is None:
        return {}
    if len(q) == 5 and k is None and v is None:
        batch, seq, length, hk, hv = q[0], q[1], q[1], q[4], q[4]
    elif len(q) == 3 and k is not None:
        batch, seq = q[0], q[1]
        if len(k) == 5 and v is None:
            length, hk, hv = k[1], k[4], k[4]
        elif len(k) == 4 and v is not None and len(v) == 4:
            length, hk, hv = k[2], k[3], v[3]
        elif len(k) == 3 and v is not None and len(v) == 3 and k[2] % n == 0 and v[2] % n == 0:
            length, hk, hv = k[1], k[2] // n, v[2] // n
        else:
            return {}
    else:
        return {}
    past = get(6)
    total = length + (past[2] if past is not None and len(past) == 4 else 0)
    return {0: (elems[0], (batch, seq, n * hv)), 1: (elems[0], (batch, n, total, hk)),
            2: (elems[0], (batch, n, total, hv)), 3: (elems[0], (batch, n, seq, total))}


def _group_query_attention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GroupQueryAttention's present key / value ``[B, kv_num_heads, T, head]``: onnxruntime's kernels make ``T``
    ``max(P, total_sequence_length)`` for a past of ``P``, where ``total_sequence_length`` must be ``P + L`` (a
    cache that grows by the ``L`` new tokens) or at most ``P`` (a cache of fixed size). Its inference took ``P``:
    a growing cache's present overran that by ``L`` tokens. Where ``total_sequence_length`` is a value known here
    that is ``T``; where it is not (a graph input), ``P + L``, the largest onnxruntime accepts; a declared ``P``,
    right for a cache of fixed size, is then accepted (``[..., "also"]``) but not planned. Its ``output_qk`` (with
    ``qk_output`` 1 or 2) is ``[B, num_heads, S, total_sequence_length]`` in the query's type, as onnxruntime 1.32's
    CPU kernel writes it; where that value is not known here, ``P + L`` is planned and a declared ``P`` accepted, as
    for the presents (before, no rule sized it: refused where onnxruntime runs it, or a declaration planned
    unchecked)."""
    n, kv = attrs.get("num_heads", 0), attrs.get("kv_num_heads", 0)
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    q, k = get(0), get(1)
    if n <= 0 or kv <= 0 or q is None or len(q) != 3:
        return {}
    if k is not None and len(k) == 3 and k[2] % kv == 0:
        head, length = k[2] // kv, k[1]
    elif k is None and q[2] % (n + 2 * kv) == 0:
        head, length = q[2] // (n + 2 * kv), q[1]
    else:
        return {}
    past = get(3)
    p = past[2] if past is not None and len(past) == 4 else 0
    total = value(6)
    also: tuple = ()
    if total is None:
        t = seen = p + length
        also = ((q[0], kv, p, head),) if p > 0 else ()
        qk_also = ((q[0], n, q[1], p),) if p > 0 else ()
    elif total == p + length or length <= total <= p:
        t, seen, qk_also = max(p, total), total, ()
    else:   # (onnxruntime refuses to run the node: refused naming the value and the two it takes)
        takes = f"{p} + {length} = {p + length} (a cache that grows)" + \
            (f" or from {length} to {p} (a cache of fixed size)" if length <= p else "")
        raise KernelRefuses(f"its total_sequence_length (input #6) is {total} at import, but with a past of {p} "
                            f"and {length} new tokens onnxruntime takes only {takes} and refuses to run it "
                            "(\"total_sequence_length must equal past_sequence_length + kv_sequence_length for a "
                            "dynamic cache, or be no greater than past_sequence_length for a static cache\"); where "
                            "it is folded from a dimension given at import (--dim), give one that makes it so")
    present = (elems[0], (q[0], kv, t, head), also)
    out = {0: (elems[0], (q[0], q[1], n * head)), 1: present, 2: present}
    if attrs.get("qk_output", 0) in (1, 2):   # (0: onnxruntime refuses a node asking for output_qk)
        out[3] = (elems[0], (q[0], n, q[1], seen), qk_also)
    return out


def _gather_block_quantized(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GatherBlockQuantized: ``data`` gathered along ``gather_axis`` by ``indices``, in the scales' type. Data of
    type uint8 packs ``8 // bits`` values per byte along its last axis, which the output has unpacked (a 4-bit
    ``[V, K / 2]`` table gives ``[..., K]``); onnxruntime takes uint8 data only with ``gather_axis`` 0 and
    ``quantize_axis`` its last. onnxruntime's inference sized it as a Gather of the packed bytes along ``axis``
    (an attribute the op does not have): half the bytes its kernel writes for 4 bits, and the wrong axis."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    data, idx = get(0), get(1)
    if data is None or idx is None or not data or len(elems) < 3 or not elems[2]:
        return {}
    rank = len(data)
    gax, qax = attrs.get("gather_axis", 0), attrs.get("quantize_axis", 1)
    gax, qax = (gax + rank if gax < 0 else gax), (qax + rank if qax < 0 else qax)
    if not 0 <= gax < rank or not 0 <= qax < rank or gax == qax:
        return {}
    dims = list(data)
    if elems[0] == 2:   # uint8: packed
        bits = attrs.get("bits", 4)
        if gax != 0 or qax != rank - 1 or not isinstance(bits, int) or bits not in (2, 4, 8):
            return {}
        dims[-1] *= 8 // bits
    return {0: (elems[2], tuple(dims[:gax]) + tuple(idx) + tuple(dims[gax + 1:]))}


def _ms_pad(attrs: dict, shapes: list, elems: list, value) -> dict:
    """com.microsoft's Pad: ONNX's Pad-11 of ``data`` by the values of ``pads`` (input 1), which it also takes
    shaped ``[1, 2 * rank]``: ``data``'s dimension ``i`` grows by ``pads[i] + pads[rank + i]`` (negative values
    crop). onnxruntime's inference sized only a 1-D ``pads``: a model of the 2-D form was refused as unsized where
    onnxruntime runs it. Sized only where those values are known here (from a graph input the output is
    data-dependent, ``ORT_SHAPE_INPUTS``)."""
    x, pads = (shapes[0] if shapes else None), value(1, many=True)
    if x is None or pads is None or len(pads) != 2 * len(x) or not elems[0]:
        return {}
    dims = tuple(d + a + b for d, a, b in zip(x, pads[:len(x)], pads[len(x):]))
    return {} if any(d < 0 for d in dims) else {0: (elems[0], dims)}


def _unfold_tensor(attrs: dict, shapes: list, elems: list, value) -> dict:
    """UnfoldTensor: the windows of ``size`` every ``step`` along axis ``dim`` (default -1, the last): that axis
    becomes the count of windows, ``(d - size) // step + 1``, and a last axis of ``size`` is added. onnxruntime's
    inference counted a negative ``dim`` other than -1 from the end of the output (one axis more): ``dim=-3``
    of ``[3, 5, 4]`` was planned ``[3, 5, 1, 2]``, 192 bytes where the kernel writes ``[2, 5, 4, 2]``, 320."""
    x = shapes[0] if shapes else None
    size, step, dim = attrs.get("size"), attrs.get("step", 1), attrs.get("dim", -1)
    if not x or not all(isinstance(a, int) for a in (size, step, dim)):
        return {}
    dim = dim + len(x) if dim < 0 else dim
    if not 0 <= dim < len(x) or size <= 0 or step <= 0 or size > x[dim]:
        return {}
    dims = list(x)
    dims[dim] = (x[dim] - size) // step + 1
    return {0: (elems[0], tuple(dims) + (size,))}


#: onnxruntime's fusions of a standard op with an activation: op -> (the standard op, its inputs that size it)
AS_STANDARD = {"FusedConv": ("Conv", 2), "FusedGemm": ("Gemm", 2)}


def _as_standard(op: str, inputs: int):
    """A rule for onnxruntime's fusion of standard op ``op`` with an activation (FusedConv: Conv then Relu...;
    FusedGemm): its output is ``op``'s, so ONNX's inference of ``op`` on the first ``inputs`` inputs sizes it, with
    the attributes ``op`` has (the fused activation's are dropped). onnxruntime's inference has no rule for them:
    every model its optimizer saved from a model of symbolic batch was refused at its first FusedConv, whose
    declared output size (symbolic) cannot be fixed by a ``--batch``."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        if len(shapes) < inputs or any(s is None for s in shapes[:inputs]) or not all(elems[:inputs]):
            return {}
        dims = _standard_inference(op, attrs, shapes[:inputs], elems[:inputs])
        return {} if dims is None else {0: (elems[0], dims)}
    return rule


def _standard_inference(op: str, attrs: dict, shapes: list, elems: list) -> tuple[int, ...] | None:
    """The static output shape ONNX's inference of standard op ``op`` gives for these inputs and attributes (those
    ``op`` has), None where it gives none; raises onnx's error where it refuses them (``pads`` of the wrong
    length), as onnxruntime's own check of its fused op does."""
    import onnx

    schema = onnx.defs.get_schema(op, onnx.defs.onnx_opset_version(), "")
    names = [f"in{k}" for k in range(len(shapes))]
    node = onnx.helper.make_node(op, names, ["out"], **{k: v for k, v in attrs.items() if k in schema.attributes})
    types = {v: onnx.helper.make_tensor_type_proto(elems[k], shapes[k]) for k, v in enumerate(names)}
    tt = onnx.shape_inference.infer_node_outputs(schema, node, types)["out"].tensor_type
    if not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim):
        return None
    return tuple(d.dim_value for d in tt.shape.dim)


def _check_as_standard(n, where: str, shapes: dict) -> None:
    """onnxruntime's fusion of a standard op (FusedConv, FusedGemm: ``AS_STANDARD``) whose attributes or inputs
    ONNX's inference of that op refuses is refused naming the node, as a Conv or Gemm is: onnxruntime checks its
    fused op by that inference when it loads it ("Attribute pads has incorrect size"). Sized by the same rule, it
    was refused only as unsized, or, where the model declared its output, planned."""
    if n.domain != ORT_DOMAIN or n.op_type not in AS_STANDARD:
        return
    op, inputs = AS_STANDARD[n.op_type]
    if len(n.input) < inputs or not all(n.input[:inputs]):
        return
    given = [shapes.get(v, (0, None)) for v in n.input[:inputs]]
    if not all(isinstance(s, tuple) and all(isinstance(d, int) for d in s) and e > 0 for e, s in given):
        return
    import onnx

    try:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        _standard_inference(op, attrs, [s for _, s in given], [e for e, _ in given])
    except Exception as exc:  # noqa: BLE001 - onnx's InferenceError (or an attribute of the wrong kind)
        raise GraphError(f"{where}: ONNX's inference of the {op} it fuses refuses it: {first_line(exc)}; "
                         "onnxruntime refuses it too") from None


def _shape_of_input(k: int):
    """A rule for onnxruntime's ops whose output has input ``k``'s shape and type: its elementwise ops
    (QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, Inverse, its Trilu, GatedRMSNorm, GatedAdd, SampleOp,
    MRotaryEmbedding: their first input's), NGramRepeatBlock (its scores', input 1). Its inference has no rule for
    them: a declaration was planned as given (a QLinearSigmoid of ``[2, 3, 4]`` declared ``[2, 3, 2]`` was planned
    12 bytes, the kernel writes 24; a SampleOp of ``[2, 3]`` declared ``[1, 1]`` 4 bytes of 24)."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        x = shapes[k] if k < len(shapes) else None
        return {} if x is None or not elems[k] else {0: (elems[k], tuple(x))}
    return rule


_same_shape = _shape_of_input(0)


def _murmur_hash3(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MurmurHash3: one 32-bit hash per element of its input (of any type, strings too): uint32 where ``positive``
    (its default, 1), int32 otherwise."""
    x = shapes[0] if shapes else None
    return {} if x is None else {0: (12 if attrs.get("positive", 1) else 6, tuple(x))}


def _matmul_bnb4(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MatMulBnb4: ``A [..., K]`` times the 4-bit ``B`` of ``N`` columns (its attributes ``K`` and ``N``; B is a flat
    byte array) gives ``[..., N]`` in A's type."""
    a, k, n = (shapes[0] if shapes else None), attrs.get("K"), attrs.get("N")
    if not a or not isinstance(n, int) or n < 0 or a[-1] != k:
        return {}
    return {0: (elems[0], tuple(a[:-1]) + (n,))}


def _dynamic_quantize_lstm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """DynamicQuantizeLSTM: ONNX's LSTM of ``X [seq, batch, input]`` (its quantized weights transposed): ``Y
    [seq, directions, batch, hidden_size]``, ``Y_h`` and ``Y_c`` ``[directions, batch, hidden_size]`` in X's type,
    two directions where ``direction`` is ``bidirectional``."""
    x, hidden = (shapes[0] if shapes else None), attrs.get("hidden_size")
    if x is None or len(x) != 3 or not isinstance(hidden, int) or hidden <= 0:
        return {}
    dirs = 2 if attrs.get("direction", b"forward") in (b"bidirectional", "bidirectional") else 1
    last = (elems[0], (dirs, x[1], hidden))
    return {0: (elems[0], (x[0], dirs, x[1], hidden)), 1: last, 2: last}


def _matmul_to(elem_input: int):
    """onnxruntime's quantized MatMuls (DynamicQuantizeMatMul, MatMulIntegerToFloat): a MatMul of inputs 0 and 1
    (ONNX's inference of MatMul), written in the type of input ``elem_input`` (the float input A; A's scale).
    Its inference has no rule for them: a declaration was planned as given."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        if len(shapes) <= elem_input or shapes[0] is None or shapes[1] is None or not elems[elem_input]:
            return {}
        dims = _standard_inference("MatMul", {}, shapes[:2], [1, 1])   # (the shapes only: A may be uint8)
        return {} if dims is None else {0: (elems[elem_input], dims)}
    return rule


def _cdist(attrs: dict, shapes: list, elems: list, value) -> dict:
    """CDist: the distances ``[M, N]`` between the rows of A ``[M, K]`` and B ``[N, K]``, in A's type."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    if a is None or b is None or len(a) != 2 or len(b) != 2 or a[1] != b[1]:
        return {}
    return {0: (elems[0], (a[0], b[0]))}


def _expand_dims(attrs: dict, shapes: list, elems: list, value) -> dict:
    """ExpandDims: the input with a dimension of 1 inserted at ``axis`` (its scalar second input; negative from the
    end of the output), where that value is known."""
    x, axis = (shapes[0] if shapes else None), value(1)
    if x is None or axis is None or not -len(x) - 1 <= axis <= len(x):
        return {}
    axis += len(x) + 1 if axis < 0 else 0
    return {0: (elems[0], tuple(x[:axis]) + (1,) + tuple(x[axis:]))}


def _channels_last_op(op: str, sized_by: tuple[int, ...], elem_input: int | None = None, nhwc: bool = False):
    """onnxruntime's quantized / layout forms of a standard op whose output is ``op``'s (ONNX's inference of
    ``op`` on inputs ``sized_by``, with the attributes ``op`` has): QLinearConv (x, w), QLinearAveragePool,
    NhwcMaxPool, MaxpoolWithMask. Where ``channels_last`` is set (NhwcMaxPool: always) the first input and the
    output are ``[N, spatial..., C]``: moved to ``[N, C, spatial...]`` for the inference and back. Written in the
    type of input ``elem_input`` where it is given (QLinearConv: its ``y_zero_point``), else the first input's.
    onnxruntime's inference has no rule for them: a declaration was planned as given (a QLinearConv declared a
    row short of what its kernel writes overran its slot)."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        if len(shapes) <= max(sized_by) or any(shapes[k] is None for k in sized_by) or not elems[0]:
            return {}
        x = tuple(shapes[sized_by[0]])
        last = nhwc or attrs.get("channels_last", 0) == 1
        if last:
            if len(x) < 3:
                return {}
            x = (x[0], x[-1]) + x[1:-1]
        ins = [x] + [tuple(shapes[k]) for k in sized_by[1:]]
        dims = _standard_inference(op, attrs, ins, [1] * len(ins))
        if dims is None:
            return {}
        if last:
            dims = (dims[0],) + tuple(dims[2:]) + (dims[1],)
        e = elems[elem_input] if elem_input is not None and elem_input < len(elems) and elems[elem_input] else elems[0]
        return {0: (e, dims)}
    return rule


def _qlinear_global_average_pool(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QLinearGlobalAveragePool: every spatial axis of the input becomes 1 (``[N, C, 1, 1]``; with
    ``channels_last``, ``[N, 1, 1, C]``), in the input's type."""
    x = shapes[0] if shapes else None
    if x is None or len(x) < 3 or not elems[0]:
        return {}
    if attrs.get("channels_last", 0) == 1:
        return {0: (elems[0], (x[0],) + (1,) * (len(x) - 2) + (x[-1],))}
    return {0: (elems[0], (x[0], x[1]) + (1,) * (len(x) - 2))}


def _qgemm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QGemm: Gemm of A (input 0) and B (input 3), ``transA`` / ``transB`` applied; quantized in its
    ``y_zero_point``'s type where it has one (input 8), else float: onnxruntime's kernel writes float for a
    ``y_scale`` (input 7) given alone, too."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 3))
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return {}
    m = a[1] if attrs.get("transA", 0) else a[0]
    ka = a[0] if attrs.get("transA", 0) else a[1]
    kb, n = (b[1], b[0]) if attrs.get("transB", 0) else (b[0], b[1])
    if ka != kb:
        return {}
    return {0: (elems[8] if len(elems) > 8 and elems[8] else 1, (m, n))}


def _qlinear_concat(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QLinearConcat: inputs ``Y_scale, Y_zero_point`` then a ``(X, X_scale, X_zero_point)`` triple per tensor,
    concatenated along ``axis``, written in ``Y_zero_point``'s type."""
    xs = shapes[2::3]
    axis = attrs.get("axis")
    if not xs or any(x is None for x in xs) or len(elems) < 2 or not elems[1] or not isinstance(axis, int):
        return {}
    rank = len(xs[0])
    axis += rank if axis < 0 else 0
    if not 0 <= axis < rank or any(len(x) != rank or any(x[d] != xs[0][d] for d in range(rank) if d != axis)
                                   for x in xs):
        return {}
    dims = list(xs[0])
    dims[axis] = sum(x[axis] for x in xs)
    return {0: (elems[1], tuple(dims))}


def _qlinear_where(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QLinearWhere: the broadcast of ``condition`` (0), ``X`` (1) and ``Y`` (4), in ``z_zero_point``'s type (8)."""
    if len(shapes) < 9 or any(shapes[k] is None for k in (0, 1, 4)) or not elems[8]:
        return {}
    dims = _broadcast([shapes[0], shapes[1], shapes[4]])
    return {} if dims is None else {0: (elems[8], dims)}


def _grid_sample(attrs: dict, shapes: list, elems: list, value) -> dict:
    """com.microsoft's GridSample: ``X [N, C, H, W]`` sampled at ``grid [N, H_out, W_out, 2]`` gives ``[N, C,
    H_out, W_out]``, in X's type."""
    x, grid = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    if x is None or grid is None or len(x) != 4 or len(grid) != 4 or grid[3] != 2 or grid[0] != x[0]:
        return {}
    return {0: (elems[0], (x[0], x[1], grid[1], grid[2]))}


def _crop_and_resize(attrs: dict, shapes: list, elems: list, value) -> dict:
    """CropAndResize: ``[num_rois, C, crop_height, crop_width]`` for ``X [N, C, H, W]``, ``rois [num_rois, 4]``
    and ``crop_size`` (input 3, two values), where those values are known."""
    x, rois = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    crop = value(3, many=True)
    if x is None or rois is None or len(x) != 4 or len(rois) != 2 or crop is None or len(crop) != 2:
        return {}
    return {0: (elems[0], (rois[0], x[1], crop[0], crop[1]))}


def _qattention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QAttention: ``input [B, S, H]``, ``weight [H, 3 * H_out]``: output ``[B, S, H_out]`` in ``input_scale``'s
    type (input 3, float); ``present`` ``[2, B, num_heads, P + S, H_out / num_heads]`` for a ``past`` (input 8)
    ``[2, B, num_heads, P, head]``."""
    heads = attrs.get("num_heads", 0)
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    x, w = get(0), get(1)
    if heads <= 0 or x is None or w is None or len(x) != 3 or len(w) != 2 or w[1] % 3 or len(elems) < 4:
        return {}
    hidden = w[1] // 3
    e = elems[3] or 1
    out = {0: (e, (x[0], x[1], hidden))}
    past = get(8)
    if hidden % heads == 0:
        p = past[3] if past is not None and len(past) == 5 else 0
        out[1] = (e, (2, x[0], heads, p + x[1], hidden // heads))
    return out


def _qembed_layer_norm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QEmbedLayerNormalization: ``input_ids [B, S]`` and a word embedding ``[V, H]`` (input 2) give the layer
    norm's ``[B, S, H]`` in the scales' float type (input 8) and the mask index ``[B]`` int32."""
    ids, word = (shapes[k] if k < len(shapes) else None for k in (0, 2))
    if ids is None or word is None or len(ids) != 2 or len(word) != 2:
        return {}
    e = elems[8] if len(elems) > 8 and elems[8] else 1
    return {0: (e, (ids[0], ids[1], word[1])), 1: (6, (ids[0],))}


def _unique_indices(attrs: dict, shapes: list, elems: list, value) -> dict:
    """com.microsoft's Unique of a 1-D ``x [N]``: its ``idx`` (output 1) is int64 ``[N]``; its ``y`` and ``counts``
    (0, 2) have as many entries as ``x`` has distinct values, known only at run time (``ORT_DATA_DEPENDENT``)."""
    x = shapes[0] if shapes else None
    return {} if x is None or len(x) != 1 else {1: (7, tuple(x))}


def _dropout_mask(bitmask: bool):
    """BiasDropout / BitmaskDropout / BitmaskBiasDropout (CUDA kernels only): ``output`` has ``data``'s shape and
    type; the optional ``mask`` is bool of ``data``'s shape, or, packed (``bitmask``), one uint32 word per 32 elements
    (``[ceil(numel / 32)]``), as the op's documentation and CUDA kernel make it."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        x = shapes[0] if shapes else None
        if x is None or not elems[0]:
            return {}
        mask = (12, (-(-math.prod(x) // 32),)) if bitmask else (9, tuple(x))
        return {0: (elems[0], tuple(x)), 1: mask}
    return rule


def _broadcast_of(a: int, b: int, elem: int | None = None):
    """Elementwise binary ops with numpy broadcasting of inputs ``a`` and ``b`` (ComplexMul / ComplexMulConj: 0 and
    1, the last axis holding the real and imaginary parts; MulInteger: 0 and 2, int32), in input ``a``'s type or
    ``elem``."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        x, y = (shapes[k] if k < len(shapes) else None for k in (a, b))
        dims = None if x is None or y is None else _broadcast([x, y])
        return {} if dims is None or not (elem or elems[a]) else {0: (elem or elems[a], dims)}
    return rule


def _typed_like_input(elem: int | None):
    """QuantizeWithOrder (int8), DequantizeWithOrder (its ``to``: float or float16, as its schema allows, no other):
    the input's shape, its elements converted; an ordering attribute moves elements, not the count. Why not int8 for
    ``to``: a ``to=3`` DequantizeWithOrder, which onnxruntime refuses to load, was planned at 1 byte an element."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        x = shapes[0] if shapes else None
        to = elem if elem is not None else attrs.get("to")
        return {} if x is None or to not in ((elem,) if elem is not None else (1, 10)) else {0: (to, tuple(x))}
    return rule


def _qordered_matmul(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QOrderedMatMul: ``A`` (input 0) times ``B`` (input 2) as MatMul sizes them, in int8; the orders (cuBLASLt
    layouts) move elements, not the count."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 2))
    dims = None if a is None or b is None else _standard_inference("MatMul", {}, [a, b], [1, 1])
    return {} if dims is None else {0: (3, dims)}


def _torch_embedding(attrs: dict, shapes: list, elems: list, value) -> dict:
    """TorchEmbedding: ``weight [V, D]`` looked up by ``indices [...]`` gives ``[..., D]`` in the weight's type."""
    w, ids = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    return {} if w is None or ids is None or len(w) != 2 else {0: (elems[0], tuple(ids) + (w[1],))}


def _is_all_finite(attrs: dict, shapes: list, elems: list, value) -> dict:
    """IsAllFinite: one bool (a scalar) for all its inputs."""
    return {0: (9, ())}


def _gemma_rotary(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GemmaRotaryEmbedding: ``output1 = q * cos + q_rot * sin`` of ``q``'s shape (input 1), ``output2`` likewise of
    ``k``'s (input 3), both ``[B, N, S, D]`` float16."""
    q, k = (shapes[i] if i < len(shapes) else None for i in (1, 3))
    return {} if q is None or k is None else {0: (elems[1], tuple(q)), 1: (elems[3], tuple(k))}


def _linear_attention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """LinearAttention (query, key, value ``[B, T, heads * head]``): ``output [B, T, max(Hq, Hkv) * d_v]`` and
    ``present_state [B, Hkv, d_k, d_v]``, with ``d_k = query hidden / q_num_heads`` and ``d_v = value hidden /
    kv_num_heads``, as onnxruntime 1.32's CPU kernel writes them (its inverse-GQA case, fewer query heads than
    key/value heads, widens the output to ``Hkv * d_v``). Inputs or attributes its kernel refuses (a hidden size no
    multiple of its heads, a past state of another shape, ``state_window``, an unknown ``update_rule``) give no
    size: the node is refused."""
    hq, hkv = attrs.get("q_num_heads", 0), attrs.get("kv_num_heads", 0)
    rule = attrs.get("update_rule", b"gated_delta")
    rule = rule.decode() if isinstance(rule, bytes) else rule
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    q, k, v, past = get(0), get(1), get(2), get(3)
    if (not isinstance(hq, int) or not isinstance(hkv, int) or hq <= 0 or hkv <= 0 or attrs.get("state_window", 0)
            or rule not in ("linear", "gated", "delta", "gated_delta") or q is None or k is None or v is None
            or not len(q) == len(k) == len(v) == 3 or not q[:2] == k[:2] == v[:2]):
        return {}
    d_k, d_v = q[2] // hq, v[2] // hkv
    if q[2] != hq * d_k or v[2] != hkv * d_v or d_k == 0 or k[2] % d_k or (hq % hkv and hkv % hq):
        return {}
    if k[2] == 0 or hkv % (k[2] // d_k):   # (the kernel's key heads must divide kv_num_heads)
        return {}
    state = (q[0], hkv, d_k, d_v)
    if len(elems) > 3 and elems[3] and (past is None or tuple(past) != state):
        return {}
    state_elem = elems[3] if len(elems) > 3 and elems[3] else elems[0]
    return {0: (elems[0], (q[0], q[1], max(hq, hkv) * d_v)), 1: (state_elem, state)}


def _linear_attention_gate(attrs: dict, shapes: list, elems: list, value) -> dict:
    """LinearAttentionGate: ``decay`` of ``a``'s shape and type, and ``beta`` (where ``b`` is given, which must have
    ``a``'s shape) likewise; ``dt_bias`` and ``decay_scale`` hold one value per head (``a``'s last axis), as
    onnxruntime 1.32's CPU kernel checks and writes them."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    a, dt, ds, b = get(0), get(1), get(2), get(3)
    if not a or dt is None or ds is None or math.prod(dt) != a[-1] or math.prod(ds) != a[-1]:
        return {}
    out = {0: (elems[0], tuple(a))}
    if b is not None and tuple(b) == tuple(a):
        out[1] = (elems[0], tuple(a))
    return out


def _engram_gate(attrs: dict, shapes: list, elems: list, value) -> dict:
    """EngramGate: ``key`` and ``query`` ``[B, S, hc_mult, H]``, ``value`` ``[B, S, H]``, norm scales ``[hc_mult,
    H]``: ``output`` and ``gated_value_normed`` (only with ``conv_norm_scale``, input 5, which its kernel requires
    for it) of the key's shape and type, as onnxruntime 1.32's CPU kernel writes them."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    k, q, v = get(0), get(1), get(2)
    if k is None or len(k) != 4 or q is None or tuple(q) != tuple(k) or v is None or tuple(v) != (k[0], k[1], k[3]):
        return {}
    scale = (k[2], k[3])
    if any(get(i) is None or tuple(get(i)) != scale for i in (3, 4)):
        return {}
    out = {0: (elems[0], tuple(k))}
    if get(5) is not None and tuple(get(5)) == scale:
        out[1] = (elems[0], tuple(k))
    return out



def _word_conv_embedding(attrs: dict, shapes: list, elems: list, value) -> dict:
    """WordConvEmbedding: int32 ``Sequence [words, word_len, ...]`` of char ids, float conv weight ``W [filters, 1,
    window, char_embedding]``, bias ``B [filters]``, char table ``C [chars, char_embedding]``: one float
    embedding ``[words, filters]`` per word, as onnxruntime 1.32's CPU kernel writes it. Inputs or attributes its
    kernel refuses (a ``B`` of another length, a window wider than ``word_len``, ``embedding_size`` /
    ``conv_window_size`` / ``char_embedding_size`` other than ``W``'s, a char table of another width, another
    dtype) give no size: the node is refused."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    seq, w, b, c = get(0), get(1), get(2), get(3)
    if seq is None or w is None or b is None or c is None or tuple(elems[:4]) != (6, 1, 1, 1):
        return {}
    if len(seq) < 2 or len(w) < 4 or len(c) < 2 or tuple(b) != (w[0],) or c[1] != w[3] or w[2] > seq[1]:
        return {}
    for name, k in (("embedding_size", 0), ("conv_window_size", 2), ("char_embedding_size", 3)):
        if name in attrs and attrs[name] != w[k]:
            return {}
    return {0: (1, (seq[0], w[0]))}


#: CausalConvWithState's attributes onnxruntime's CPU kernel takes only at these values (its CUDA extended path's)
_CAUSAL_CONV_CPU_DEFAULTS = {"ndim": 1, "state_window": 0, "state_update_capacity": 0, "state_length": 0,
                             "state_channels_last": -1, "input_channel_offset": 0, "input_channels": 0}


def _causal_conv_with_state(attrs: dict, shapes: list, elems: list, value) -> dict:
    """CausalConvWithState (``ndim`` 1): ``output`` of the input's shape and type, ``present_state`` ``[B, C,
    (k - 1) * dilation]`` (``channels_last``: ``[B, (k - 1) * dilation, d_1, ..., d_n]``, ``C`` the product of the
    ``d``) for ``input [B, C, L]`` (``[B, L, d_1, ..., d_n]``) and a depthwise ``weight [C, 1, k]``, as onnxruntime
    1.32's CPU kernel writes them. What it refuses gives no size (the node is refused): another ``ndim``, a
    ``state_window``, the CUDA-only attributes and the ``state_update`` output they enable, a bias not ``[C]``, a
    ``past_state`` not of the present's shape, an unknown ``activation``, inputs of mixed or other types."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    x, w, bias, past = get(0), get(1), get(2), get(3)
    act = attrs.get("activation", b"none")
    act = act.decode() if isinstance(act, bytes) else act
    dilation, last = attrs.get("dilation", 1), attrs.get("channels_last", 0)
    if (any(attrs.get(k, v) != v for k, v in _CAUSAL_CONV_CPU_DEFAULTS.items()) or act not in ("none", "silu", "swish")
            or not isinstance(dilation, int) or dilation < 1 or last not in (0, 1) or x is None or w is None):
        return {}
    typed = [e for i, e in enumerate(elems[:4]) if get(i) is not None]
    if elems[0] not in (1, 10, 16) or any(e != elems[0] for e in typed):
        return {}
    if len(x) < 3 or (not last and len(x) != 3) or len(w) != 3 or w[1] != 1 or w[2] < 1:
        return {}
    channels = math.prod(x[2:]) if last else x[1]
    if w[0] != channels or (bias is not None and tuple(bias) != (channels,)):
        return {}
    span = (w[2] - 1) * dilation
    state = (x[0], span) + tuple(x[2:]) if last else (x[0], channels, span)
    if past is not None and tuple(past) != state:
        return {}
    return {0: (elems[0], tuple(x)), 1: (elems[0], state)}


def _moe_group_router(attrs: dict, shapes: list, elems: list, value, outputs: tuple[bool, ...] = ()) -> dict:
    """MoEGroupRouter: ``logits [..., E]`` (rank 2 at least) routed to ``E`` experts; the legacy ``router_probs``
    ``[rows, E]`` (``rows`` the product of the leading axes) in the logits' type, or (``outputs``: which of the
    three the node asks for) the paired full-score ``selection_scores`` and ``router_weights`` ``[rows, E]``
    float. With ``projection_weight [E, width]`` the logits are ``[rows, width]`` activations. As onnxruntime
    1.32's CPU kernel writes them; what it refuses gives no size (the node is refused): a ``top_k`` missing or
    not in ``[1, E]``, ``E`` no multiple of ``n_group``, ``topk_group`` above ``n_group``, a bias not ``[E]``, the
    full-score pair with ``router_probs``, alone, with several groups or more than 512 experts, a projection
    without them or of a width no positive multiple of 256."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    logits, bias, proj = get(0), get(1), get(2)
    top_k, n_group = attrs.get("top_k"), attrs.get("n_group", 1)
    topk_group, group_topk = attrs.get("topk_group", 1), attrs.get("group_topk", 2)
    if (not all(isinstance(a, int) for a in (top_k, n_group, topk_group, group_topk)) or min(n_group, group_topk) < 1
            or not 1 <= topk_group <= n_group or logits is None or bias is None or len(logits) < 2
            or elems[0] not in (1, 10, 16) or elems[1] != 1):
        return {}
    legacy = bool(outputs[0]) if outputs else True
    full = tuple(bool(o) for o in outputs[1:3]) + (False,) * (2 - len(outputs[1:3]))
    if full[0] != full[1] or legacy == full[0]:
        return {}
    if proj is not None:
        if (not full[0] or elems[2] != elems[0] or len(logits) != 2 or len(proj) != 2 or proj[1] != logits[1]
                or logits[1] <= 0 or logits[1] % 256):
            return {}
        experts = proj[0]
    else:
        experts = logits[-1]
    if tuple(bias) != (experts,) or experts % n_group or not 1 <= top_k <= experts:
        return {}
    rows = math.prod(logits[:-1])
    if legacy:
        return {0: (elems[0], (rows, experts))}
    if n_group != 1 or topk_group != 1 or experts > 512:
        return {}
    return {1: (1, (rows, experts)), 2: (1, (rows, experts))}


_moe_group_router.takes_outputs = True   # (its rule depends on which outputs the node asks for)



def _varlen_causal_conv_with_state(attrs: dict, shapes: list, elems: list, value) -> dict:
    """VarlenCausalConvWithState: ``output`` of ``input [T, C]``'s shape and type, ``final_state [B, C, (k - 1) *
    dilation]`` (``initial_state``'s shape, which must be that; ``B`` one less than ``cumulative_sequence_length``'s
    length), ``state_update [B, state_update_capacity, C]``, all in the input's type, as onnxruntime 1.32's CPU
    kernel writes them (its documentation names CUDA and WebGPU only). What it refuses gives no size (the node is
    refused), and so does its dynamic-delta mode (``kernel_delta``, ``previous_mask``, ``group_size``,
    ``delta_offset``: CUDA's only)."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    x, w, cu, bias, init, capture = (get(i) for i in range(6))
    act = attrs.get("activation", b"none")
    act = act.decode() if isinstance(act, bytes) else act
    dilation, cap = attrs.get("dilation", 1), attrs.get("state_update_capacity", 0)
    if (x is None or w is None or cu is None or init is None or act not in ("none", "silu", "swish")
            or not isinstance(dilation, int) or dilation < 1 or not isinstance(cap, int) or not 0 <= cap <= 8
            or (capture is not None) != (cap > 0) or get(6) is not None or get(7) is not None
            or attrs.get("group_size", 1) != 1 or attrs.get("delta_offset", 0) != 0):
        return {}
    if (elems[0] not in (1, 10, 16) or any(get(i) is not None and elems[i] != elems[0] for i in (1, 3, 4))
            or elems[2] != 6 or (capture is not None and elems[5] != 6)):
        return {}
    if len(x) != 2 or len(w) != 3 or w[0] != x[1] or w[1] != 1 or w[2] < 1 or len(cu) != 1 or cu[0] < 1:
        return {}
    batch, channels = cu[0] - 1, x[1]
    state = (batch, channels, (w[2] - 1) * dilation)
    if tuple(init) != state or (bias is not None and tuple(bias) != (channels,)):
        return {}
    return {0: (elems[0], tuple(x)), 1: (elems[0], state), 2: (elems[0], (batch, cap, channels))}


#: GatherPacked's ``packed_type`` ids (ggml's types) onnxruntime 1.32's CPU kernel takes, each as (values a block
#: holds, bytes a block takes): a row of ``K`` values is ``K / values`` blocks (read off onnxruntime: the one row
#: width it runs for each type and ``K``); other ids it refuses at load
_GATHER_PACKED_BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 6: (32, 22), 8: (32, 34), 13: (256, 176),
                         14: (256, 210), 16: (256, 66), 17: (256, 74), 18: (256, 98), 20: (32, 18), 22: (256, 82),
                         23: (256, 136), 30: (1, 2), 42: (64, 18)}
_GATHER_PACKED_TYPES = frozenset(_GATHER_PACKED_BLOCKS)


class KernelRefuses(ValueError):
    """Raised by a rule of ``ORT_RULES`` for inputs onnxruntime's kernel refuses, with what is wrong: the node's
    refusal then says that rather than "cannot size" alone (``_refuse_unruled``)."""


def _gather_packed_row_bytes(packed_type: int, k: int) -> int | None:
    """Bytes of one row of ``k`` values of ggml type ``packed_type``; None where ``k`` is no whole number of its
    blocks (onnxruntime refuses every row width then)."""
    values, nbytes = _GATHER_PACKED_BLOCKS[packed_type]
    return None if k % values else k // values * nbytes


def _gather_packed(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GatherPacked: rows of the packed table ``data [vocab, row_bytes]`` (uint8) gathered by ``indices`` (int32 or
    int64) and dequantized to ``K`` values each: ``indices.shape + [K]`` in ``output_dtype`` (float, float16 or
    bfloat16; bfloat16 by default), as onnxruntime 1.32's CPU kernel writes it. A missing or non-positive ``K``,
    another output type, a ``packed_type`` it does not take or a table not 2-D give no size (the node is refused);
    so does a ``row_bytes`` other than ``K`` values of ``packed_type`` take (``_GATHER_PACKED_BLOCKS``), or a ``K``
    no whole number of its blocks, which onnxruntime refuses: the kernel dequantizes ``K`` values from each row
    whatever its width, so a model whose table rows are narrower describes other data than the kernel reads."""
    data, idx = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    k, out, ptype = attrs.get("K"), attrs.get("output_dtype", 16), attrs.get("packed_type")
    if (data is None or idx is None or len(data) != 2 or elems[0] != 2 or elems[1] not in (6, 7)
            or not isinstance(k, int) or k <= 0 or out not in (1, 10, 16) or ptype not in _GATHER_PACKED_TYPES):
        return {}
    row = _gather_packed_row_bytes(ptype, k)
    values, nbytes = _GATHER_PACKED_BLOCKS[ptype]
    if row is None:
        raise KernelRefuses(f"K={k} is no whole number of packed_type {ptype}'s blocks of {values} values "
                            "(onnxruntime refuses it)")
    if data[1] != row:
        raise KernelRefuses(f"its table 'data' has rows of {data[1]} bytes, but K={k} values of packed_type {ptype} "
                            f"({nbytes} bytes per {values} values) take {row} (onnxruntime refuses it)")
    return {0: (out, tuple(idx) + (k,))}

#: GatedDeltaNet's update rules: which of ``decay`` (input 4) and ``beta`` (input 5) each requires, which it forbids
_DELTA_NET_RULES = {"linear": (False, False), "gated": (True, False), "delta": (False, True), "gated_delta": (True, True)}


def _delta_net_heads(q, k, v, state) -> tuple | None:
    """GatedDeltaNet's ``(leading axes, Hq, Dk, Hv, Dv)``: from ``q [..., Hq, Dk]``, ``k [..., Hq, Dk]``, ``v [...,
    Hv, Dv]``, or, packed (``k`` and ``v`` absent), from ``q [T, 2 * Hq * Dk + Hv * Dv]`` and ``state [B, Hv, Dv,
    Dk]``; None where onnxruntime's kernel refuses them (``Hv`` no positive multiple of ``Hq``)."""
    if k is not None and v is not None:
        if not len(q) == len(k) == len(v) or len(q) not in (3, 4) or not q[:-2] == k[:-2] == v[:-2] or q[-2:] != k[-2:]:
            return None
        lead, hq, dk, hv, dv = tuple(q[:-2]), q[-2], q[-1], v[-2], v[-1]
    elif k is None and v is None and state is not None and len(q) == 2 and len(state) == 4:
        hv, dv, dk = state[1], state[2], state[3]
        rest = q[1] - hv * dv
        if dk <= 0 or rest <= 0 or rest % (2 * dk):
            return None
        lead, hq = tuple(q[:1]), rest // (2 * dk)
    else:
        return None
    return None if hq <= 0 or hv <= 0 or hv % hq else (lead, hq, dk, hv, dv)


def _gated_delta_net(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GatedDeltaNet: ``output [..., Hv, Dv]`` in the query's type (the leading axes ``[T]`` or ``[B, S]`` of the
    query), ``final_state [B, Hv, Dv, Dk]`` float, and with ``state_update_capacity`` C > 0 ``state_update [B, C *
    (decay_width + Hq * Dk + Hv * Dv)]`` float (``decay_width`` ``Hv``, or ``Hv * Dk`` for a per-key decay), as
    onnxruntime 1.32's CPU kernel writes them. The batch ``B`` is the query's first axis at rank 4, else one less
    than ``cu_seqlens``' length, else ``initial_state``'s first axis. What the kernel refuses gives no size (the
    node is refused): heads that do not divide, ``decay`` / ``beta`` present where the update rule forbids them
    or absent where it needs them, ``capture_count`` without a capacity or a capacity outside ``[0, 8]``, a state
    or decay of another shape, no way to tell the batch, mixed types."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    et = (lambda i: elems[i] if i < len(elems) else 0)   # noqa: E731
    q, k, v, cu, decay, beta, state, capture = (get(i) for i in (0, 1, 2, 3, 4, 5, 6, 9))
    rule = attrs.get("update_rule", b"gated_delta")
    rule = rule.decode() if isinstance(rule, bytes) else rule
    cap = attrs.get("state_update_capacity", 0)
    if (q is None or rule not in _DELTA_NET_RULES or not isinstance(cap, int) or not 0 <= cap <= 8
            or (capture is not None) != (cap > 0) or et(0) not in (1, 10, 16)
            or any(get(i) is not None and et(i) != et(0) for i in (1, 2))
            or any(get(i) is not None and et(i) != 1 for i in (6, 7, 8))
            or any(get(i) is not None and et(i) != 6 for i in (3, 9, 10))
            or _DELTA_NET_RULES[rule] != (decay is not None, beta is not None)):
        return {}
    heads = _delta_net_heads(q, k, v, state)
    if heads is None:
        return {}
    lead, hq, dk, hv, dv = heads
    if len(lead) == 2:
        batch = None if cu is not None else lead[0]
    else:
        batch = cu[0] - 1 if cu is not None and len(cu) == 1 and cu[0] >= 1 else state[0] if state is not None else None
    final = (batch, hv, dv, dk)
    if batch is None or (state is not None and tuple(state) != final):
        return {}
    if decay is not None and tuple(decay) not in (lead + (hv,), lead + (hv, dk)):
        return {}
    if beta is not None and tuple(beta) != lead + (hv,):
        return {}
    out = {0: (et(0), lead + (hv, dv)), 1: (1, final)}
    if cap > 0:
        width = hv * dk if decay is not None and len(decay) == len(lead) + 2 else hv
        out[2] = (1, (batch, cap * (width + hq * dk + hv * dv)))
    return out


#: MatMulFpQ4's bytes per block of 32 values of a column of B, by ``blk_quant_type``: onnxruntime's kernel packs 0
#: as MLAS's ``BlkQ4Sym`` (16 bytes of values, a float scale), any other value as ``BlkQ4Zp8`` (and a zero point)
_FPQ4_BLOCK_BYTES = {True: 20, False: 21}


def _matmul_fpq4(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MatMulFpQ4: float ``A [..., K]`` times the 4-bit ``B`` of shape ``B_shape`` (input 2's value, ``[K, N]``;
    B itself a flat blob of ``N * ceil(K / 32)`` blocks) gives MatMul's ``[..., N]`` float, as onnxruntime 1.32's
    CPU kernel writes it. Sized only where ``B_shape`` is known here (from a graph input the output is
    data-dependent, ``ORT_SHAPE_INPUTS``); a blob of another length, a zero ``K`` or ``N``, or an ``A`` whose last
    axis is not ``K`` gives no size (onnxruntime refuses them: "Input q4 tensors of wrong size"). Where MLAS has
    no 4-bit GEMM (onnxruntime: "not yet supported on this hardware platform") onnxruntime refuses every such model."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    kn = value(2, many=True)
    q = attrs.get("blk_quant_type", 1)
    if a is None or b is None or kn is None or len(kn) != 2 or not isinstance(q, int) or elems[0] != 1 or elems[1] != 2:
        return {}
    k, n = kn
    if k <= 0 or n <= 0 or len(b) != 1:
        return {}
    blob = n * -(-k // 32) * _FPQ4_BLOCK_BYTES[q == 0]
    if b[0] != blob:
        raise KernelRefuses(f"its packed B has {b[0]} bytes, but B_shape [{k}, {n}] of blk_quant_type {q} takes "
                            f"{blob} (onnxruntime refuses it: \"Input q4 tensors of wrong size\")")
    dims = _standard_inference("MatMul", {}, [a, (k, n)], [1, 1])
    return {} if dims is None else {0: (1, dims)}


def _qmoe(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QMoE: ``output`` of ``input``'s shape and type (``[rows, hidden]`` or ``[batch, seq, hidden]``), as
    onnxruntime 1.32's CPU kernel writes it: each token's row is the weighted sum of its experts' rows. What decides
    the size is checked as the kernel checks it (inputs of other ranks or types, ``router_probs`` not ``[rows,
    experts]``, expert weights not 3-D of ``experts`` each); the rest of its checks (the weights' packed widths,
    scales, biases, ``k``) decide whether it runs, not how much it writes, and are left to onnxruntime."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    x, router, fc1, fc2 = get(0), get(1), get(2), get(5)
    if (x is None or router is None or fc1 is None or fc2 is None or len(x) not in (2, 3) or len(router) != 2
            or len(fc1) != 3 or len(fc2) != 3 or elems[0] not in (1, 10, 16) or elems[1] != elems[0]):
        return {}
    experts = router[1]
    if router[0] != math.prod(x[:-1]) or fc1[0] != experts or fc2[0] != experts:
        return {}
    return {0: (elems[0], tuple(x))}


def _attn_lstm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """AttnLSTM: an LSTM of ``X [seq, batch, input]`` with Bahdanau attention over ``M [batch, steps, depth]``:
    ``Y [seq, directions, batch, hidden_size]``, ``Y_h`` and ``Y_c`` ``[directions, batch, hidden_size]``, float, as
    onnxruntime 1.32's CPU kernel writes them (two directions where ``direction`` is ``bidirectional``). Inputs it
    refuses give no size (the node is refused): a type other than float (its double kernel is not implemented), a
    ``hidden_size`` missing or not positive, weights or memory of other shapes than its checks ask for, a number of
    ``activations`` other than three per direction, a ``clip`` not positive."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    hidden, direction = attrs.get("hidden_size"), attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    dirs = {"forward": 1, "reverse": 1, "bidirectional": 2}.get(direction)
    acts, clip = attrs.get("activations"), attrs.get("clip", 1.0)
    x, w, r, qw, mw, v, mem = (get(i) for i in (0, 1, 2, 8, 9, 10, 11))
    if (not isinstance(hidden, int) or hidden <= 0 or dirs is None or (acts is not None and len(acts) != 3 * dirs)
            or not clip > 0 or any(s is None for s in (x, w, r, qw, mw, v, mem))
            or any(get(i) is not None and elems[i] != 1 for i in (0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 13))
            or any(get(i) is not None and elems[i] != 6 for i in (4, 12))):
        return {}
    if len(x) != 3 or len(mem) != 3 or mem[0] != x[1] or len(mw) != 3 or tuple(mw[:2]) != (dirs, mem[2]):
        return {}
    seq, batch, depth, attn = x[0], x[1], mem[2], mw[2]
    aw = get(13)
    if aw is not None and (len(aw) != 3 or tuple(aw[:2]) != (dirs, depth + hidden)):
        return {}
    width = aw[2] if aw is not None else depth
    want = {1: (dirs, 4 * hidden, x[2] + width), 2: (dirs, 4 * hidden, hidden), 3: (dirs, 8 * hidden), 4: (batch,),
            5: (dirs, batch, hidden), 6: (dirs, batch, hidden), 7: (dirs, 3 * hidden), 8: (dirs, hidden, attn),
            10: (dirs, attn), 12: (batch,)}
    if any(get(i) is not None and tuple(get(i)) != s for i, s in want.items()):
        return {}
    state = (1, (dirs, batch, hidden))
    return {0: (1, (seq, dirs, batch, hidden)), 1: state, 2: state}


#: the attributes ConvTransposeWithDynamicPads has (its schema: no ``pads``, its input, and no ``output_shape``)
_DYNAMIC_PADS_ATTRS = ("group", "strides", "dilations", "output_padding", "kernel_shape")


def _conv_transpose_dynamic_pads(attrs: dict, shapes: list, elems: list, value) -> dict:
    """ConvTransposeWithDynamicPads: ONNX's ConvTranspose of ``X`` and ``W`` with ``pads`` the values of its third
    input, as onnxruntime 1.32's CPU kernel writes it. Sized only where those values are known here (an initializer
    or a constant; from a graph input the output is data-dependent, ``ORT_SHAPE_INPUTS``); without ``Pads`` the
    kernel refuses to run ("Dynamic pads tensor is required"), and with ``auto_pad`` it pads otherwise: no size."""
    pads = value(2, many=True)
    auto = attrs.get("auto_pad", b"NOTSET")
    if pads is None or (auto.decode() if isinstance(auto, bytes) else auto) != "NOTSET" or len(shapes) < 2:
        return {}
    if shapes[0] is None or shapes[1] is None or not elems[0]:
        return {}
    given = {a: attrs[a] for a in _DYNAMIC_PADS_ATTRS if a in attrs}
    dims = _standard_inference("ConvTranspose", {**given, "pads": list(pads)}, shapes[:2], elems[:2])
    return {} if dims is None else {0: (elems[0], dims)}


def _nhwc_conv(attrs: dict, shapes: list, elems: list, value) -> dict:
    """NhwcConv: ONNX's Conv of ``X [N, spatial..., C]`` by ``W [M, kernel..., C / group]`` (both channels last, as
    onnxruntime's NhwcConv fusion transposes them, ``perm [0, 2, 3, 1]``), its output ``[N, spatial'..., M]`` in X's
    type. onnxruntime's own rule takes the spatial sizes of a declared output where every input's is static (a
    declaration ``[1, 1, 1, 4]`` of what its kernel writes ``[1, 6, 6, 4]`` was planned 8 bytes of 288), and sizes
    nothing where none is declared."""
    x, w = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    if x is None or w is None or len(x) < 3 or len(x) != len(w) or not elems[0]:
        return {}
    first = (tuple(x[:1]) + (x[-1],) + tuple(x[1:-1]), tuple(w[:1]) + (w[-1],) + tuple(w[1:-1]))
    dims = _standard_inference("Conv", attrs, list(first), [1, 1])
    return {} if dims is None else {0: (elems[0], (dims[0],) + tuple(dims[2:]) + (dims[1],))}


def _gemm_float8(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GemmFloat8: ONNX's Gemm of A and B (``transA`` / ``transB`` applied), written in its ``dtype`` attribute's type
    (float by default; its documentation: "Same definition as attribute 'to' for operator Cast"). onnxruntime's
    rule is MatMul's in A's type: a float8 GemmFloat8 of ``dtype`` float16 was planned at one byte an element of
    the two written (and its float16 declaration refused as a "Type Error"), and the ``transB=1`` its float8 kernels
    require made it refuse or, declared, plan the declaration."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    dtype = attrs.get("dtype", 1)
    if a is None or b is None or len(a) != 2 or len(b) != 2 or dtype not in (1, 10, 16, 17, 19):
        return {}
    given = {k: attrs[k] for k in ("transA", "transB") if k in attrs}
    dims = _standard_inference("Gemm", given, [a, b], [1, 1])
    return {} if dims is None else {0: (dtype, dims)}


#: rules for onnxruntime ops with kernels for CUDA (or other GPU providers) only, that no shape inference sizes, each
#: from the op's documentation (its schema's doc and type constraints; onnxruntime's CPU build has no kernel to
#: check them against: tests/test_onnx_round54.py holds them to the documented shapes). Before round 54 a
#: declaration of their outputs was planned as given (a BiasSoftmax of ``[2, 3, 4]`` float declared ``[1]``: 4
#: bytes planned, 96 written)
ORT_GPU_RULES = {"BiasSoftmax": _shape_of_input(0), "BiasDropout": _dropout_mask(False),
                 "BitmaskDropout": _dropout_mask(True), "BitmaskBiasDropout": _dropout_mask(True),
                 "ComplexMul": _broadcast_of(0, 1), "ComplexMulConj": _broadcast_of(0, 1),
                 "MulInteger": _broadcast_of(0, 2, 6), "QOrderedGelu": _shape_of_input(0),
                 "QuantizeWithOrder": _typed_like_input(3), "DequantizeWithOrder": _typed_like_input(None),
                 "TorchEmbedding": _torch_embedding, "IsAllFinite": _is_all_finite, "QOrderedMatMul": _qordered_matmul,
                 "FusedMatMulActivation": _fused_matmul, "GemmaRotaryEmbedding": _gemma_rotary,
                 "NhwcConv": _nhwc_conv, "GemmFloat8": _gemm_float8}
#: memplan's own rules for onnxruntime ops whose outputs its inference sizes wrongly or not at all, each
#: checked against what onnxruntime 1.32's kernels write (tests/test_onnx_round27b.py, test_onnx_left28.py,
#: test_onnx_left28c.py): op ->
#: rule(attributes, static input shapes (None: absent or not static), input elem types, value(i) of a constant
#: scalar input) -> {output index: (elem, dims) or (elem, dims, other dims a declaration may have)}
ORT_RULES = {"FusedMatMul": _fused_matmul, "SkipLayerNormalization": _skip_layer_norm,
             "SkipSimplifiedLayerNormalization": _skip_layer_norm, "MultiHeadAttention": _multi_head_attention,
             "GroupQueryAttention": _group_query_attention, "GatherBlockQuantized": _gather_block_quantized,
             "UnfoldTensor": _unfold_tensor, "FusedConv": _as_standard(*AS_STANDARD["FusedConv"]),
             "FusedGemm": _as_standard(*AS_STANDARD["FusedGemm"]), "QLinearSigmoid": _same_shape,
             "QLinearLeakyRelu": _same_shape, "QLinearSoftmax": _same_shape, "Inverse": _same_shape,
             "Trilu": _same_shape, "TransposeMatMul": _fused_matmul, "DynamicQuantizeMatMul": _matmul_to(0),
             "MatMulIntegerToFloat": _matmul_to(2), "CDist": _cdist, "ExpandDims": _expand_dims,
             "QLinearConv": _channels_last_op("Conv", (0, 3), 7), "QGemm": _qgemm,
             "QLinearAveragePool": _channels_last_op("AveragePool", (0,)),
             "QLinearGlobalAveragePool": _qlinear_global_average_pool, "QLinearConcat": _qlinear_concat,
             "QLinearWhere": _qlinear_where, "NhwcMaxPool": _channels_last_op("MaxPool", (0,), nhwc=True),
             "MaxpoolWithMask": _channels_last_op("MaxPool", (0,)), "GridSample": _grid_sample,
             "CropAndResize": _crop_and_resize, "QAttention": _qattention,
             "QEmbedLayerNormalization": _qembed_layer_norm, "Unique": _unique_indices,
             **{op: _shape_of_input(0) for op in ("GatedRMSNorm", "GatedAdd", "SampleOp", "MRotaryEmbedding")},
             "NGramRepeatBlock": _shape_of_input(1), "MurmurHash3": _murmur_hash3, "MatMulBnb4": _matmul_bnb4,
             "DynamicQuantizeLSTM": _dynamic_quantize_lstm, "LinearAttention": _linear_attention,
             "ConvTransposeWithDynamicPads": _conv_transpose_dynamic_pads, "LinearAttentionGate": _linear_attention_gate,
             "EngramGate": _engram_gate, "WordConvEmbedding": _word_conv_embedding,
             "CausalConvWithState": _causal_conv_with_state, "MoEGroupRouter": _moe_group_router,
             "GatedDeltaNet": _gated_delta_net, "VarlenCausalConvWithState": _varlen_causal_conv_with_state,
             "GatherPacked": _gather_packed, "Pad": _ms_pad, "MatMulFpQ4": _matmul_fpq4, "QMoE": _qmoe, "AttnLSTM": _attn_lstm,
             **ORT_GPU_RULES}
#: the ops of ``ORT_RULES`` added in round 30, which no shape inference sized before (a declaration was planned as
#: given): an output their rule cannot size (an input of unknown shape, attributes onnxruntime refuses) is refused,
#: not taken from a declaration nothing checks
ORT_RULED_ONLY = frozenset({"GatedRMSNorm", "GatedAdd", "SampleOp", "MRotaryEmbedding", "NGramRepeatBlock",
                            "MurmurHash3", "MatMulBnb4", "DynamicQuantizeLSTM", "LinearAttention",
                            "ConvTransposeWithDynamicPads", "LinearAttentionGate", "EngramGate", "WordConvEmbedding",
                            "CausalConvWithState", "MoEGroupRouter", "GatedDeltaNet",
                            "VarlenCausalConvWithState", "GatherPacked", "MatMulFpQ4", "QMoE", "AttnLSTM",
                            *ORT_GPU_RULES})
#: onnxruntime's ops (with a CPU kernel; since round 54 also those of GPU providers only) that no shape inference
#: sizes and memplan has no rule for (each too
#: intricate to size without a check against its kernel: state caches, n-gram hashing, generation loops whose
#: length is a value): refused by name, wherever they are, rather than planned at a declared size nothing checks
#: (a declaration of half the size was planned at that, the kernel writing past it)
ORT_UNSIZED = frozenset({"BeamSearch", "BifurcationDetector",
                         "GreedySearch", "NGramHashMapping", "Sampling", "SparseToDenseMatMul", "Tokenizer",
                         "VarlenNGramHashMapping", "WhisperBeamSearch",
                         # (with kernels for GPU providers only, round 54: a declaration was planned as given)
                         "ConvStateReplay", "DecoderAttention", "DecoderMaskedSelfAttention", "DequantizeBFP",
                         "EPContext", "GatedDeltaNetStateReplay", "Irfft", "Mamba2Verify",
                         "MatMulBlockQuantizedFp4Weight", "MatMulBlockQuantizedFp8Weight", "MatMulNBitsMlp",
                         "MatMulNBitsQLoRA", "MatMulNBitsQkv", "MatMulPacked", "MoEPacked", "NhwcFusedConv",
                         "PackedSparseAttentionIndexerMerge", "QLinearReduceMean", "QOrderedAttention",
                         "QOrderedLayerNormalization", "QOrderedLongformerAttention",
                         "QuantizeBFP", "RMSNormRotary", "ReduceSumInteger", "Rfft", "RouterGateUpProj", "Snpe",
                         "SpeculativePrefixCommit", "SwiGLU"})
#: the outputs whose size onnxruntime's own rule gets wrong: where memplan's rule gives none (an input it cannot
#: size, attributes onnxruntime refuses), onnxruntime's is not taken either
ORT_WRONG = {"MultiHeadAttention": (0, 1, 2, 3), "GroupQueryAttention": (1, 2, 3), "GatherBlockQuantized": (0,),
             "UnfoldTensor": (0,), "NhwcConv": (0,), "GemmFloat8": (0,)}


#: outputs of onnxruntime's ops whose type the kernel takes from the model, any of these: op -> {output index:
#: elem types}. MultiHeadAttention's ``qk`` has its own type parameter (``QK``): a float16 model may declare it
#: float, and the kernel then writes float (twice the bytes of the query's type that its rule gives). Its kernels
#: take QK float or float16 only (CPU: float, or the query's float16; CUDA: either, for a query of either): a
#: ``qk`` declared bfloat16 runs nowhere and is refused; float16 in a float model runs on CUDA (CPU refuses it,
#: "Tensor type mismatch") and is planned as CUDA writes it
ORT_DECLARED_TYPES = {"MultiHeadAttention": {3: (1, 10)}}


def _ort_hooks(onnx, inst, also: dict, why: dict | None = None) -> dict:
    """``ORT_RULES`` as handlers for onnxruntime's inference ``inst`` (its ``dispatcher_``): each runs the
    handler it replaces, if any, then writes the outputs its rule sizes; ``also`` receives the other
    declarations a rule accepts, ``why`` (output -> reason) what a rule found the kernel refuses (``KernelRefuses``)."""
    why = {} if why is None else why

    def handler(rule, original):
        def run(node):
            if original is not None:
                try:
                    original(node)
                except Exception:  # noqa: BLE001 - its rule failed: ours may still size the outputs
                    pass
            shapes, elems = [], []
            for name in node.input:
                vi = inst.known_vi_.get(name) if name else None
                tt = vi.type.tensor_type if vi is not None and vi.type.HasField("tensor_type") else None
                static = (tt is not None and tt.HasField("shape")
                          and all(d.HasField("dim_value") for d in tt.shape.dim))
                shapes.append(tuple(d.dim_value for d in tt.shape.dim) if static else None)
                elems.append(tt.elem_type if tt is not None else 0)

            def value(i: int, many: bool = False):
                """Input ``i``'s known constant: a scalar int, or (``many``) a tuple of ints; None where unknown."""
                if i >= len(node.input) or not node.input[i]:
                    return None
                try:
                    v = inst._try_get_value(node, i)
                    if many:
                        v = list(v.flatten()) if hasattr(v, "flatten") else v
                        items = v if isinstance(v, list) else [v]
                        return (tuple(int(x) for x in items)
                                if v is not None and all(str(x).lstrip("-").isdigit() for x in items) else None)
                    v = v[0] if isinstance(v, list) and len(v) == 1 else v
                    return int(v) if v is not None and str(v).lstrip("-").isdigit() else None
                except Exception:  # noqa: BLE001 - not a value it knows
                    return None

            try:
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                if getattr(rule, "takes_outputs", False):
                    sized = rule(attrs, shapes, elems, value, outputs=tuple(bool(o) for o in node.output))
                else:
                    sized = rule(attrs, shapes, elems, value)
            except KernelRefuses as exc:   # (what the kernel refuses: the node's refusal says it)
                sized = {}
                for o in node.output:
                    if o:
                        why[o] = str(exc)
            except Exception:  # noqa: BLE001 - attributes of the wrong type: no size from this rule
                sized = {}
            for k in ORT_WRONG.get(node.op_type, ()):
                o = node.output[k] if k < len(node.output) else ""
                vi = inst.known_vi_.get(o) if o else None
                if vi is not None and k not in sized and vi.type.tensor_type.HasField("shape"):
                    for j, d in enumerate(vi.type.tensor_type.shape.dim):   # unknown from here on, not wrong
                        d.dim_param = f"memplan_unsized_{o}_{j}"
            for k, found in sized.items():
                o = node.output[k] if k < len(node.output) else ""
                if o and o in inst.known_vi_ and found[0]:
                    inst.known_vi_[o].CopyFrom(onnx.helper.make_tensor_value_info(o, found[0], list(found[1])))
                    if len(found) > 2:
                        also[o] = found[2]
        return run

    table = getattr(inst, "dispatcher_", {})
    return {op: handler(rule, table.get(op)) for op, rule in ORT_RULES.items()}


def _ruled_by(op: str) -> str:
    """What memplan's rule for onnxruntime's ``op`` was checked against, for its refusals."""
    return ("from its documentation: onnxruntime's CPU build has no kernel of it" if op in ORT_GPU_RULES
            else "checked against onnxruntime's kernels")


@functools.cache  # (a fact about the installation)
def _installed_ort_ops() -> tuple[str, frozenset[str]] | None:
    """(onnxruntime's version, the names of its ``com.microsoft`` ops) where onnxruntime is installed, else None."""
    try:
        import onnxruntime
        from onnxruntime.capi import _pybind_state

        return onnxruntime.__version__, frozenset(s.name for s in _pybind_state.get_all_operator_schema()
                                                   if s.domain == ORT_DOMAIN)
    except Exception as exc:  # noqa: BLE001 - no onnxruntime, or one without its schemas: not known
        raise_if_interrupted(exc)   # (a Ctrl-C in its bindings' init: the command's, never cached as "not installed")
        return None


def _refuse_unknown_ort_ops(g2, ort_nodes: list, source: str) -> None:
    """Refuse a ``com.microsoft`` node of an op the installed onnxruntime does not have, naming the node and op.

    Why: no rule, onnxruntime's or memplan's, sizes it, so a declared output was planned as declared, unchecked
    (a ``com.microsoft:GemmFastGelu2d`` declared ``[1]``: 4 bytes), where onnxruntime refuses to load the model
    ("is not a registered function/op"). Without onnxruntime the ops it has are not known: nothing is refused."""
    installed = _installed_ort_ops()
    if installed is None:
        return
    version, names = installed
    for i, n in ort_nodes:
        if n.domain == ORT_DOMAIN and n.op_type not in names:
            raise GraphError(f"{source}: node {_node_ids(g2)[i]!r} ({n.domain}:{n.op_type}): onnxruntime {version} has no "
                             f"op {n.op_type} in domain {ORT_DOMAIN} (it refuses to load the model: \"is not a "
                             "registered function/op\"), and no rule sizes its outputs; check the op's name")


def _refuse_unsized_ort_ops(g2, ort_nodes: list, source: str) -> None:
    """Refuse the first node of ``ORT_UNSIZED`` among ``ort_nodes`` (``(index, node)`` of onnxruntime's ops in
    ``g2``), naming it and its op, whether or not onnxruntime is installed: nothing sizes its outputs but the
    model's declaration, which nothing checks."""
    for i, n in ort_nodes:
        if n.op_type in ORT_UNSIZED:
            outs = [o for o in n.output if o]
            raise GraphError(f"{source}: node {_node_ids(g2)[i]!r} ({n.domain}:{n.op_type}): neither onnx's nor "
                             f"onnxruntime's shape inference sizes onnxruntime's {n.op_type}, and memplan has no rule "
                             f"for it checked against its kernel, so its output {outs[0] if outs else ''!r} could "
                             "only be planned at the size the model declares, which nothing checks (unsupported)")


def _refuse_unruled(g2, ort_nodes: list, source: str, found: dict, data_dependent: Collection[str],
                    why: dict | None = None) -> None:
    """Refuse an output of an ``ORT_RULED_ONLY`` op that its rule did not size (``found``: what onnxruntime's
    inference and memplan's rules sized), naming the node, op and value: before round 30 such an output was
    planned at its declaration, and the rule is the only check of one. A data-dependent value is left to
    that refusal. ``why``: output -> what its rule found the kernel refuses, said in place of the generic cause."""
    for i, n in ort_nodes:
        if n.op_type not in ORT_RULED_ONLY:
            # (an op onnxruntime's own inference also sizes, whose rule found what its kernel refuses: said so, not
            # "has no shape"; a GroupQueryAttention's total_sequence_length folded to 9 for a past of 4 and 1 token)
            refused = next((o for o in n.output if o and o not in data_dependent and (why or {}).get(o)), None)
            if refused is not None:
                raise GraphError(f"{source}: node {_node_ids(g2)[i]!r} ({n.domain}:{n.op_type}): {why[refused]}")
            continue
        for o in n.output:
            if o and o not in found and o not in data_dependent:
                cause = ((why or {}).get(o) or "one of unknown shape or type, or attributes the kernel refuses")
                raise GraphError(f"{source}: node {_node_ids(g2)[i]!r} ({n.domain}:{n.op_type}): memplan's rule for "
                                 f"{n.op_type} ({_ruled_by(n.op_type)}) cannot size its output {o!r} "
                                 f"from these inputs ({cause}), and a declared size is not checked (unsupported)")


def _check_fixed_contradiction(source: str, where: str, o: str, have: list | None, dims: tuple,
                               others: tuple, fixed: dict[str, int]) -> None:
    """Refuse a declared shape ``have`` of an onnxruntime op's output ``o`` that the shape its kernel writes
    (``dims``; or one of ``others``, a declaration its rule accepts) contradicts, where ``--dim``/``--batch`` fixed
    dimensions (``fixed``): the rule a standard op's output is held to (strict inference there).

    Why: torch.export specializes a dimension whose example size is 1 inside the graph while the input stays
    symbolic; imported at another size, such a model's own shapes (its Reshape targets) hold at the example's size
    only, and the importer refuses it where a standard op's declaration says so. A ``com.microsoft`` op's
    declaration (``BiasGelu`` declared ``[1, 4]``, imported at ``n=3``) was replaced by its kernel's size unseen
    and the model planned."""
    if have is None:
        return
    for want in (dims, *others):
        if len(have) == len(want) and all(a is None or a == b for a, b in zip(have, want)):
            return
    shown = ["?" if d is None else d for d in have]
    named = ", ".join(f"{k}={v}" for k, v in sorted(fixed.items()))
    raise GraphError(f"{source}: {where}: its output {o!r} is declared {shown}, which the dimensions fixed ({named}) "
                     f"contradict (onnxruntime's kernel writes {list(dims)}): the model was likely exported with that "
                     "dimension fixed at its example's size (torch.export does so for a size of 1) and runs at that "
                     "size only: import it at that size, or export it from a larger example")


def _size_ort_ops(onnx, m2, source: str, data_dependent: set[str], known: dict | None = None,
                  fixed: dict[str, int] | None = None, sized: set[str] | None = None) -> bool:
    """Declare in ``m2`` (the copy given to shape inference) the outputs of onnxruntime's own ops as onnxruntime's
    shape inference sizes them, so that onnx's inference sizes what follows from them; refuse a declaration of
    the model's that disagrees, naming the node and value. False where onnxruntime is not installed (the
    model's declarations are then taken as before: the only size there is). A value whose size depends on what
    the graph inputs hold (``data_dependent``) is left to that refusal, whatever onnxruntime makes of it.
    ``known``: values onnx's inference sized, handed to onnxruntime's as sized (``_ort_inferred``). ``fixed``: the
    dimensions ``--dim``/``--batch`` fixed (``{name: value}``); where any is, a declared shape the kernel's
    contradicts is refused (``_check_fixed_contradiction``), as a standard op's is. ``sized`` receives the outputs
    onnxruntime's inference or memplan's rules sized (the others hold their declaration alone)."""
    ort_nodes = [(i, n) for i, n in enumerate(m2.graph.node) if _is_ort_op(onnx, n)]
    if not ort_nodes:
        return True
    _refuse_unsized_ort_ops(m2.graph, ort_nodes, source)
    _refuse_unknown_ort_ops(m2.graph, ort_nodes, source)
    cls = _ort_symbolic()
    if cls is None:
        return False
    also: dict[str, tuple] = {}   # value -> other shapes a declaration of it may have (a bound is planned)
    why: dict[str, str] = {}      # value -> what its rule found the kernel refuses
    found = _ort_inferred(onnx, cls, m2, also, known or {}, why)
    if sized is not None:
        sized.update(found)
    _refuse_unruled(m2.graph, ort_nodes, source, found, data_dependent, why)
    if not found:
        return True
    g2 = m2.graph
    ids = _node_ids(g2)
    declared: dict[str, list] = {}
    for vi in list(g2.value_info) + list(g2.output):
        declared.setdefault(vi.name, []).append(vi)
    for i, n in ort_nodes:
        op = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
        for o in n.output:
            if not o or o not in found or o in data_dependent:
                continue
            elem, dims = found[o]
            free = ORT_DECLARED_TYPES.get(n.op_type, {}).get(list(n.output).index(o), ())
            for vi in declared.get(o, ()):
                kind = vi.type.WhichOneof("value")
                tt = vi.type.tensor_type
                if kind == "tensor_type" and tt.elem_type in free:
                    elem = tt.elem_type   # (the type the kernel writes: the model's, not the rule's)
                elif kind == "tensor_type" and free and tt.elem_type and tt.elem_type != elem:
                    takes = " or ".join(_dtype_name(onnx, e) for e in free)
                    have_type = _dtype_name(onnx, tt.elem_type)
                    raise GraphError(f"{source}: node {ids[i]!r} ({op}): value {o!r} is declared {have_type}, but "
                                     f"onnxruntime's {n.op_type} kernels write it only as {takes} (no provider has one "
                                     f"writing {have_type} for an input of {_dtype_name(onnx, elem)}); declare it "
                                     f"{takes}")
                if kind is None or (kind == "tensor_type" and not tt.elem_type and not tt.HasField("shape")):
                    continue
                have = ([d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                        if tt.HasField("shape") else None)
                # (a declared shape the kernel contradicts is replaced below, as for a standard op: onnxruntime
                # runs such a model, its kernel writing its own size; a contradicted type it refuses: "Type Error";
                # where dimensions were fixed, a contradicted shape is refused, as a standard op's)
                if fixed and kind == "tensor_type":
                    _check_fixed_contradiction(source, f"node {ids[i]!r} ({op})", o, have, dims, also.get(o, ()),
                                               fixed)
                if kind != "tensor_type" or (tt.elem_type and tt.elem_type != elem):
                    shown = f"a {kind.removesuffix('_type')}" if kind != "tensor_type" else _show_type(tt.elem_type, have)
                    by = (f"memplan's rule for {n.op_type} ({_ruled_by(n.op_type)})"
                          if n.op_type in ORT_RULES else "onnxruntime's shape inference")
                    raise GraphError(f"{source}: node {ids[i]!r} ({op}): value {o!r} is declared {shown}, but {by} "
                                     f"makes it {_show_type(elem, list(dims))}: onnxruntime refuses the model "
                                     "(\"Type Error\"); correct or remove the declaration")
            tp = onnx.helper.make_tensor_type_proto(elem, list(dims))
            if o in declared:
                for vi in declared[o]:
                    vi.type.CopyFrom(tp)
            else:
                g2.value_info.append(onnx.helper.make_value_info(o, tp))
    return True
