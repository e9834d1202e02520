"""What onnxruntime really allocates for an ONNX model, to check the importer's planned sizes against.

Why: a planned size smaller than what an op writes is a buffer overrun in every plan made from it, and
a hand-worked expected size shares the author's mistake with the rule under test. onnxruntime's CPU
provider runs the model on concrete inputs with every node output exposed as a graph output (graph
optimizations off, so no value is fused away), and each value's byte size is what the importer must
have planned. Used by the corpus test and by the round-29 exporter checks; import it from tests
(``from onnx_oracle import ort_sizes, size_mismatches``) after ``need("onnxruntime")``.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

#: bits per element of onnxruntime's output type names (sub-byte types pack, as the importer plans them)
ORT_BITS = {"float": 32, "uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "int32": 32, "int64": 64, "bool": 8,
            "float16": 16, "double": 64, "uint32": 32, "uint64": 64, "bfloat16": 16, "complex64": 64,
            "complex128": 128, "float8e4m3fn": 8, "float8e4m3fnuz": 8, "float8e5m2": 8, "float8e5m2fnuz": 8,
            "int4": 4, "uint4": 4, "float4e2m1": 4, "int2": 2, "uint2": 2}


def nbytes(value, type_name: str) -> int:
    """Bytes of one value onnxruntime returned (a sequence: the tensors it holds)."""
    if isinstance(value, list):
        return sum(nbytes(v, "") for v in value)
    a = np.asarray(value)
    bits = ORT_BITS.get(type_name[len("tensor("):-1]) if type_name.startswith("tensor(") else None
    return (a.size * bits + 7) // 8 if bits else a.nbytes


def exposed(model):
    """A copy of ``model`` with every node output of its main graph also a graph output (untyped, so
    onnxruntime takes each value's own type); the original is not modified."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    outs = {o.name for o in m.graph.output}
    for o in dict.fromkeys(o for n in m.graph.node for o in n.output if o and o not in outs):
        m.graph.output.append(helper.ValueInfoProto(name=o))
    return m


#: onnxruntime's own refusals of a model or a run (its pybind error classes: InvalidGraph, Fail, InvalidArgument,
#: NotImplemented, RuntimeException, ...); a Python error of the test's own making (a TypeError, a feed named wrong)
#: is none of them, so it fails the test instead of counting as onnxruntime's refusal
ORT_ERRORS = tuple(e for e in vars(_ort_state).values() if isinstance(e, type) and issubclass(e, Exception))


def ort_refuses(model, feeds: dict | None = None) -> bool:
    """Whether onnxruntime's CPU provider refuses to load ``model`` (or, given ``feeds``, to run it): the reference a
    refusal by the importer is held against. Only onnxruntime's own errors count (``ORT_ERRORS``)."""
    try:
        s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        if feeds is not None:
            s.run(None, feeds)
    except ORT_ERRORS:
        return True
    return False


def _session(model, path: str | None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    if path is not None:   # external data resolves against the model file's folder
        onnx.save_model(model, path)
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _run_sizes(s, feeds: dict) -> list[int]:
    """Bytes of each output of session ``s`` fed ``feeds``: a tensor's as onnxruntime allocated it
    (``tensor_size_in_bytes``: int4, float8 and the other types numpy holds none of, which ``run`` cannot return,
    so a model with one such value was compared by its graph outputs alone); a sequence, an optional (none: 0) or a
    string tensor's by ``nbytes`` of the value ``run`` returns."""
    values = s.run_with_ort_values(None, {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in feeds.items()})
    outs = s.get_outputs()
    sizes: list[int | None] = [0 if not v.has_value()   # (first: an empty optional says it is a tensor, and its
                               else v.tensor_size_in_bytes()   # size crashes the process)
                               if v.is_tensor() and v.data_type() != "tensor(string)" else None for v in values]
    if None in sizes:
        plain = s.run(None, feeds)
        sizes = [nbytes(plain[k], o.type) if n is None else n for k, (o, n) in enumerate(zip(outs, sizes))]
    return sizes


def ort_sizes(model, feeds: dict, *, path: str | None = None, strict: bool = False) -> dict[str, int] | None:
    """``{value: bytes}`` onnxruntime produced for every node output of ``model`` fed ``feeds`` (with every
    intermediate exposed; failing that, the graph outputs alone), or None where onnxruntime cannot run the
    model (``strict``: raise instead). ``path``: where to write the exposed model first, for a model whose
    external data files lie in that folder."""
    last = None
    for m in (exposed(model), model):
        try:
            s = _session(m, path)
            sizes = _run_sizes(s, feeds)
        except Exception as exc:  # noqa: BLE001 - an op or dtype onnxruntime lacks: not the importer's business
            last = exc
            continue
        return {o.name: n for o, n in zip(s.get_outputs(), sizes)}
    if strict:
        raise AssertionError(f"onnxruntime cannot run the model: {last}")
    return None


def size_mismatches(graph, real: dict[str, int], label: str = "") -> tuple[int, list[str]]:
    """(values compared, one line per value whose planned size differs from onnxruntime's) of an imported
    ``graph`` against ``real`` (``ort_sizes``); graph inputs are the caller's and are not compared."""
    compared, bad = 0, []
    for t in graph.tensors:
        if t.id in real and t.kind != "input":
            compared += 1
            if t.size != real[t.id]:
                bad.append(f"{label}{t.id!r}: planned {t.size} B, onnxruntime made {real[t.id]} B "
                           f"({dict(t.attrs)})")
    return compared, bad


def feeds_for(model, dims: dict[str, int] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Concrete inputs for every graph input that is not an initializer: symbolic dimensions from ``dims``
    (by name; 1 where it does not name them), floats random in [0, 1), integers and booleans ones (valid
    token ids, masks and positions for the exported language models)."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (dims or {}).get(d.dim_param, 1) for d in tt.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.floating):
            out[vi.name] = rng.random(shape).astype(dtype)
        else:
            out[vi.name] = np.ones(shape, dtype)
    return out


def ort_run(model, feeds: dict, optimized: bool = False) -> dict[str, np.ndarray]:
    """``{output: value}`` onnxruntime's CPU provider makes running ``model`` on ``feeds``, quietly; its graph
    optimizations off unless ``optimized`` (an importer's sizes must match what either level writes)."""
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return {o.name: np.asarray(v) for o, v in zip(sess.get_outputs(), sess.run(None, feeds))}


def ort_shapes(model, feeds: dict) -> dict[str, tuple[int, ...]]:
    """``{output: shape}`` onnxruntime makes running ``model`` on ``feeds`` (its graph optimizations off): the
    sizes an importer's plan of the graph outputs must match (rounds 75-77 each checked theirs so)."""
    return {name: v.shape for name, v in ort_run(model, feeds).items()}
