"""Which types of MeanVarianceNormalization onnxruntime runs, read from ONNX's function body of the op.

Why: onnxruntime's CPU kernel of MeanVarianceNormalization takes float32 alone. A node of another type it runs one
of two ways: where ONNX's function body of the op is valid at the model's opset (onnx's ``GetFunction(opset,
validate=true)``: every op of the body has, at the model's opset, the version it had at the body's), it expands the
node into that body, and the body's float32 constants (the epsilon its Add adds; before opset 13 the exponent of
its Pow) do not bind to a float16 or double input: "Type Error: Type parameter (T) of Optype (Add) bound to
different types", at opsets 9, 10, 13 and 18 with onnx 1.23. Elsewhere it casts a float16 node to its float32
kernel and runs it, and has no kernel for double or bfloat16 ("NOT_IMPLEMENTED"). Both read off onnxruntime 1.32.
ONNX's own inference of the node goes through the body at every opset, so memplan refused float16 everywhere; the
opsets are computed here from the schemas, not listed, so a new opset or body is followed as onnx defines it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from ...errors import GraphError

#: the one type onnxruntime's CPU kernel of MeanVarianceNormalization takes
MVN_KERNEL_TYPE = "tensor(float)"
#: the type onnxruntime casts to ``MVN_KERNEL_TYPE`` around that kernel, where it does not expand the function body
MVN_CAST_TYPE = "tensor(float16)"
MVN = "MeanVarianceNormalization"


@functools.cache  # (a fact about the installed onnx)
def expanded_body(op: str, opset: int) -> int | None:
    """The opset of ONNX's function body of default-domain ``op`` that is valid at the model's ``opset`` (the
    newest body at or before it, every op of which has the same version at ``opset`` as at the body's opset), or
    None where there is none: where onnxruntime, having no kernel for a node's type, expands the node into it."""
    import onnx

    try:
        schema = onnx.defs.get_schema(op, opset, "")
    except Exception:  # noqa: BLE001 - SchemaError: no such op at that opset (the schema check names it)
        return None
    versions = [v for v in schema.function_opset_versions if v <= opset]
    if not versions:
        return None
    body_opset = max(versions)
    body = onnx.FunctionProto.FromString(schema.get_function_with_opset_version(body_opset))
    for inner in body.node:
        if inner.domain not in ("", "ai.onnx"):
            return None
        try:
            same = (onnx.defs.get_schema(inner.op_type, opset, "").since_version
                    == onnx.defs.get_schema(inner.op_type, body_opset, "").since_version)
        except Exception:  # noqa: BLE001 - an inner op undefined at one of them: not valid there
            return None
        if not same:
            return None
    return body_opset


@functools.cache
def _tensor_elems() -> dict[str, int]:
    """Element type of each tensor type as the spec writes it (``tensor(float16)`` -> 10)."""
    import onnx

    from .type_rules import _tensor_text

    texts = ((_tensor_text(onnx, e), e) for e in onnx.TensorProto.DataType.values() if e)
    return {t: e for t, e in texts if t is not None}


@functools.cache
def body_type_error(op: str, opset: int, t: str) -> str | None:
    """ONNX's message where its inference of a one-node model of ``op`` (through its function body) at ``opset`` on
    an input of type ``t`` (a tensor type as the spec writes it) fails, or None where it types (or ``t`` is no
    tensor type)."""
    import onnx
    from onnx import helper

    elem = _tensor_elems().get(t)
    if elem is None:
        return None
    node = helper.make_node(op, ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, None)],
                              [helper.make_empty_tensor_value_info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - InferenceError: the body's message is the answer
        return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return None


def check_mvn_type(n, where: str, types: Mapping[str, str], opset: int) -> None:
    """Refuse, naming the node, a MeanVarianceNormalization (default domain) of a type onnxruntime does not run at
    the model's ``opset`` (the module's docstring says which); ``types``: value -> type as the spec writes it (a
    value of unknown type is not judged)."""
    if n.op_type != MVN or n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    if any(a.name != "axes" for a in n.attribute):
        return   # (opset 1's attributes: another op)
    x = n.input[0]
    t = types.get(x)
    if t is None or t == MVN_KERNEL_TYPE:
        return
    body = expanded_body(MVN, opset)
    if body is not None:
        error = body_type_error(MVN, opset, t)
        if error is None:
            return
        raise GraphError(f"{where}: its input {x!r} is {t}, for which onnxruntime has no {MVN} kernel, so at opset "
                         f"{opset} it expands the node into ONNX's function body of the op"
                         + (f" (opset {body}'s, whose ops are unchanged at {opset})" if body != opset else "")
                         + f", whose float32 constants do not bind to {t} ({error}); "
                         "onnxruntime refuses to load the model (Type Error). onnxruntime runs it as "
                         f"{MVN_KERNEL_TYPE}" + (f", or as {t} at an opset where it does not expand that body"
                                                 if t == MVN_CAST_TYPE else ""))
    if t != MVN_CAST_TYPE:
        raise GraphError(f"{where}: its input {x!r} is {t}; onnxruntime's {MVN} kernel takes {MVN_KERNEL_TYPE} "
                         f"({MVN_CAST_TYPE} cast to it) and ONNX's function body of the op is not one it expands at "
                         f"opset {opset}: onnxruntime refuses to load the model (NOT_IMPLEMENTED)")
