"""Differential sweep (round 66): what round 65's sweep could not judge, against onnxruntime or ``onnx.reference``.

Why: round 65's sweep (``tests/onnx_sweep_round65.py``) compares every planned value with what onnxruntime makes,
but it skipped three kinds of case, each planned by the importer unchecked:

* **other inputs**: onnx's node test cases fed sequences, optionals, strings, or tensors of a type numpy has not
  (bfloat16, the float8s, int2/int4, float4: fed as ``TensorProto``), 183 cases;
* **no CPU kernel**: op versions onnxruntime 1.32's CPU provider has no kernel for and runs no function body of
  (``no_kernel_versions()``: RoiAlign-22, the random ops of opset 22, DequantizeLinear-28 ...), which round 65
  counted as "no CPU kernel, memplan plans" and did not judge (with made cases of those onnx has no node test of);
* **bfloat16**: each of round 65's base cases with its float32 values of bfloat16 (938 cases; round 65 varied
  float16 and double only).

Each case is run by onnxruntime where it runs the case, else by onnx's reference implementation (``ReferenceEvaluator``,
the specification's own), with every value exposed; each value memplan plans is compared by shape, element type and
bytes (a sequence or optional by the bytes of the tensors it holds). Classes as round 65's: ``agree``, ``MISMATCH``,
``over-refusal`` (memplan refuses what a runtime runs), ``both refuse``, ``RAW``; and ``planned, neither runs`` (no
runtime runs it: not judged, printed).

Run: ``python tests/onnx_sweep_round66.py [--show N] [--typed] [NAME_SUBSTRING ...]`` (``--typed``: instead, every case
of round 65's sweep that onnxruntime has no CPU kernel for at its types, judged by the reference) from the repository root
(``PYTHONPATH=$PWD:$PWD/tests``). Exit status 1 on any MISMATCH, over-refusal or RAW.
"""

from __future__ import annotations

import functools
import random
import sys
import warnings
from collections import Counter
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_sweep_driver as driver
import onnx_sweep_round65 as sweep65
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx_oracle import ORT_ERRORS

Case = sweep65.Case
_INT_MAX = 2**31 - 1


# -- the cases ---------------------------------------------------------------------------------------------------------

@functools.cache
def no_kernel_versions() -> frozenset[tuple[str, int]]:
    """(op, version) of the default domain (version 7 on, Constant aside: folded) that onnxruntime's CPU provider has
    no kernel for and no function body of. onnxruntime matches a kernel registered ``[start, end]`` to a node of
    version ``v`` when ``start == v``, or ``start < v <= end`` for a bounded ``end`` (an open one, its newest, takes
    its own version only)."""
    from onnxruntime.capi import _pybind_state as c

    kernels: dict[str, set] = {}
    for k in c.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider" and k.domain in ("", "ai.onnx"):
            kernels.setdefault(k.op_name, set()).add(tuple(k.version_range))
    out = set()
    for s in onnx.defs.get_all_schemas_with_history():
        v = s.since_version
        if s.domain != "" or s.deprecated or v < 7 or s.name == "Constant":
            continue
        if s.has_function or s.has_context_dependent_function:
            continue
        if not any(a == v or (a < v and b != _INT_MAX and b >= v) for a, b in kernels.get(s.name, ())):
            out.add((s.name, v))
    return frozenset(out)


def _versions(m) -> set[tuple[str, int]]:
    opset = sweep65._opset(m)
    out = set()
    for n in m.graph.node:
        if n.domain in ("", "ai.onnx"):
            try:
                out.add((n.op_type, onnx.defs.get_schema(n.op_type, opset, "").since_version))
            except onnx.defs.SchemaError:
                pass
    return out


def _feed(v):
    """A data set's input as onnxruntime and the reference take it: a ``TensorProto`` as its numpy array (of
    ``ml_dtypes`` for bfloat16 and the float8s), a list (a sequence) of such, None (an empty optional) as None."""
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return [_feed(x) for x in v]
    if isinstance(v, np.generic):
        return np.asarray(v)
    return v


def _ordinary(v) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind in "biufc"


def other_input_cases() -> Iterator[Case]:
    """onnx's node test cases of default-domain ops that round 65's sweep skipped for their inputs' kinds."""
    for c in sweep65._collected():
        m = c.model
        if not c.data_sets or any(n.domain not in ("", "ai.onnx") for n in m.graph.node):
            continue
        if any(n.op_type in sweep65.SKIP_OPS for n in m.graph.node):
            continue
        inputs = c.data_sets[0][0]
        names = [vi.name for vi in m.graph.input if vi.name not in {t.name for t in m.graph.initializer}]
        feeds = [_feed(v) for v in inputs]
        if len(feeds) != len(names) or all(_ordinary(v) for v in feeds):
            continue   # (round 65's)
        yield Case(c.name, m, dict(zip(names, feeds)))


def no_kernel_cases() -> Iterator[Case]:
    """round 65's cases (each variation, every opset) with a node of a version onnxruntime has no CPU kernel for."""
    missing = no_kernel_versions()
    ops = {op for op, _ in missing}
    for base in sweep65.base_cases():
        if not any(n.op_type in ops for n in base.model.graph.node):
            continue
        for c in sweep65.variations(base):
            if _versions(c.model) & missing:
                yield c


def _one_op(label: str, op: str, feeds: dict, outs: list[str], opset: int, inputs: list[str] | None = None,
            **attrs) -> Case:
    r = helper.make_node(op, list(feeds) if inputs is None else inputs, outs, name=f"{op}_0", **attrs)
    g = helper.make_graph([r], "g", [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype),
                                                                   list(v.shape)) for k, v in feeds.items()],
                          [helper.ValueInfoProto(name=o) for o in outs])
    return Case(label, helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), feeds)


def made_cases() -> Iterator[Case]:
    """Cases of the op versions without a CPU kernel that onnx has no node test case of (its random ops, GlobalLpPool,
    MaxRoiPool, Optional), in each float type they take, one of them empty."""
    r = np.random.default_rng(66)
    for dt in (np.float32, np.float16, np.float64):
        name = np.dtype(dt).name
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
        for shape in ((2, 3, 4, 5), (0, 3, 4, 5), (1, 2, 3)):
            x = r.random(shape).astype(dt)
            yield _one_op(f"made_globallppool_{name}_{shape}", "GlobalLpPool", {"x": x}, ["y"], 22, p=3)
        yield _one_op(f"made_maxroipool_{name}", "MaxRoiPool", {"x": r.random((1, 3, 8, 8)).astype(dt),
                      "rois": np.array([[0, 0, 0, 4, 4], [0, 2, 2, 7, 7]], dt)}, ["y"], 22, pooled_shape=[2, 3],
                      spatial_scale=1.0)
        yield _one_op(f"made_multinomial_{name}", "Multinomial", {"x": np.log(r.random((3, 5))).astype(dt)}, ["y"],
                      22, sample_size=4, seed=1.0)
        yield _one_op(f"made_multinomial64_{name}", "Multinomial", {"x": np.log(r.random((2, 5))).astype(dt)},
                      ["y"], 22, sample_size=3, seed=1.0, dtype=onnx.TensorProto.INT64)
        yield _one_op(f"made_randomnormal_{name}", "RandomNormal", {}, ["y"], 22, shape=[2, 3, 4], dtype=elem,
                      seed=1.0)
        yield _one_op(f"made_randomuniform_{name}", "RandomUniform", {}, ["y"], 22, shape=[5, 0], dtype=elem,
                      seed=1.0)
        yield _one_op(f"made_randomnormallike_{name}", "RandomNormalLike", {"x": r.random((3, 2)).astype(dt)},
                      ["y"], 22, seed=1.0)
        yield _one_op(f"made_randomuniformlike_{name}", "RandomUniformLike", {"x": r.random((3, 2)).astype(dt)},
                      ["y"], 22, seed=1.0, dtype=onnx.TensorProto.DOUBLE)
        x = r.random((2, 3)).astype(dt)
        opt = helper.make_node("Optional", ["x"], ["o"], name="Optional_0")
        get = helper.make_node("OptionalGetElement", ["o"], ["y"], name="Get_0")
        has = helper.make_node("OptionalHasElement", ["o"], ["h"], name="Has_0")
        g = helper.make_graph([opt, get, has], "g", [helper.make_tensor_value_info("x", elem, [2, 3])],
                              [helper.ValueInfoProto(name="y"), helper.ValueInfoProto(name="h")])
        yield Case(f"made_optional_{name}", helper.make_model(g, opset_imports=[helper.make_opsetid("", 28)]),
                   {"x": x})


def bfloat16_cases() -> Iterator[Case]:
    """round 65's base cases with every float32 input, output, declaration and initializer of bfloat16 (as its
    ``float16``/``double`` variations; ``ml_dtypes`` arrays fed): onnxruntime has few CPU kernels of bfloat16, so most
    are judged by the reference."""
    import ml_dtypes

    sweep65.FLOATS.setdefault("bfloat16", (onnx.TensorProto.BFLOAT16, ml_dtypes.bfloat16))
    for base in sweep65.base_cases():
        c = sweep65.retyped(base, "bfloat16")
        if c is not None:
            yield c


def typed_kernel_less_cases() -> Iterator[Case]:
    """Every case of round 65's sweep that onnxruntime has no CPU kernel for at its types (a GRU of double, a
    Det of float16 ...; status ``kernel``: not judged there), found by running each: a few minutes, so the main
    script's ``--typed`` only."""
    for c in sweep65.all_cases():
        if sweep65.ort_values(c)[0] == "kernel":
            yield c


def all_cases(bfloat16: int | None = None) -> Iterator[Case]:
    """Every case; of the bfloat16 variations, ``bfloat16`` of them drawn by a fixed seed (None: all 938)."""
    yield from other_input_cases()
    yield from no_kernel_cases()
    yield from made_cases()
    bf = list(bfloat16_cases())
    yield from bf if bfloat16 is None else random.Random(66).sample(bf, min(bfloat16, len(bf)))


# -- the runtimes ------------------------------------------------------------------------------------------------------

#: bits of an element of the sub-byte types (packed: numpy's arrays of them, ``ml_dtypes``', hold a byte each)
_SUB_BYTE = {"INT2": 2, "UINT2": 2, "INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4}


def _value_of(v) -> tuple:
    """(shape or None, element type text, bytes) of a runtime's value: a tensor, or a sequence / optional by the bytes
    of what it holds (shape None)."""
    if v is None:
        return None, "optional", 0
    if isinstance(v, list):
        return None, "sequence", sum(_value_of(x)[2] for x in v)
    a = np.asarray(v)
    if a.dtype.kind in "OU":
        return list(a.shape), "tensor(string)", -1
    elem = helper.np_dtype_to_tensor_dtype(a.dtype)
    bits = _SUB_BYTE.get(onnx.TensorProto.DataType.Name(elem))
    nbytes = (a.size * bits + 7) // 8 if bits else a.nbytes
    return list(a.shape), f"tensor({onnx.TensorProto.DataType.Name(elem).lower()})", nbytes


def _ort_feed(v):
    if isinstance(v, np.ndarray) and v.dtype.kind not in "biufcOU?":   # (ml_dtypes: by its bits and ONNX type)
        elem = helper.np_dtype_to_tensor_dtype(v.dtype)
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(v.view(f"uint{8 * v.dtype.itemsize}"), elem)
    return v


def ort_values(case: Case) -> tuple[str, dict]:
    """As round 65's, for these inputs: ``("ok", {value: (shape, type, bytes)})`` or the stage that refused."""
    stage, why = "load", ""
    exotic = any(isinstance(_ort_feed(v), ort.OrtValue) for v in case.feeds.values())
    containers = any(v is None or isinstance(v, list) for v in case.feeds.values())
    for m in (sweep65._exposed(case.model), case.model):
        try:
            stage = "load"
            s = sweep65._session(m)
            stage = "run"
            if exotic and not containers:
                vals = s.run_with_ort_values(None, {k: _ort_feed(v) if isinstance(_ort_feed(v), ort.OrtValue)
                                                    else ort.OrtValue.ortvalue_from_numpy(v)
                                                    for k, v in case.feeds.items()})
                out = {o.name: (list(v.shape()), v.data_type(), v.tensor_size_in_bytes()) for o, v in
                       zip(s.get_outputs(), vals) if v.has_value() and v.is_tensor() and
                       v.data_type() != "tensor(string)"}
                return "ok", out
            if exotic:
                raise RuntimeError("a sequence of types numpy has not")   # (not fed: judged by the reference)
            vals = s.run(None, dict(case.feeds))
        except (*ORT_ERRORS, RuntimeError, TypeError, ValueError) as exc:
            why = str(exc).replace("\n", " ")
            if "Could not find an implementation" in why or "Failed to find kernel" in why:
                stage = "kernel"
            continue
        return "ok", {o.name: _value_of(v) for o, v in zip(s.get_outputs(), vals)}
    return stage, {"": why}


def reference_values(case: Case) -> tuple[str, dict]:
    """``("ok", {value: (shape, type, bytes)})`` of every value ``onnx.reference`` computes, or ``("run", why)``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ReferenceEvaluator(case.model)
            out = ref.run(None, dict(case.feeds), intermediate=True)
    except Exception as exc:  # noqa: BLE001 - any failure of the reference: it does not run the case
        return "run", {"": f"{type(exc).__name__}: {str(exc)[:200]}"}
    inferred = onnx.shape_inference.infer_shapes(case.model)
    tensors = {vi.name for vi in (*inferred.graph.value_info, *inferred.graph.output) if vi.type.HasField("tensor_type")}
    # (the reference holds an optional's tensor as a list of it, also where OptionalGetElement took it out)
    return "ok", {k: _value_of(v[0] if isinstance(v, list) and len(v) == 1 and k in tensors else v)
                  for k, v in out.items() if k not in case.feeds}


def earlier_version(case: Case) -> Case | None:
    """``case`` stamped at the opset before its op versions without a CPU kernel, where each of those has a previous
    version onnxruntime has a kernel for and every other op keeps its version: for GlobalLpPool-22, MaxRoiPool-22 and
    Multinomial-22, which the reference implements not either. Their version 22 added types (bfloat16) and kept the
    shape rules of the version before, so the previous version's run sizes them."""
    missing = _versions(case.model) & no_kernel_versions()
    if not missing:
        return None
    before = max(v for _, v in missing) - 1
    for op, _ in missing:
        try:
            prev = onnx.defs.get_schema(op, before, "").since_version
        except onnx.defs.SchemaError:
            return None
        if (op, prev) in no_kernel_versions():
            return None
    r = sweep65.restamped(case, before)
    if r is not None:
        return r
    m = sweep65._copy(case.model)
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = before
    others = _versions(case.model) - missing
    return Case(f"{case.label}@opset={before}", m, case.feeds) if others <= _versions(m) else None


def _valid(model) -> bool:
    """Whether onnx's type and shape inference takes ``model`` (each input's type against its op's schema: the
    reference checks none, and runs a QuantizeLinear-28 of double that the schema does not allow)."""
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return False
    return True


# -- the comparison ----------------------------------------------------------------------------------------------------

def compare(case: Case) -> tuple[str, list[str]]:
    """The case's class and its lines to print (judged by onnxruntime where it runs the case, else the reference)."""
    status, real = ort_values(case)
    judge = "onnxruntime"
    if status != "ok" and not _valid(case.model):
        status, real = "load", {"": "onnx's type inference refuses the model"}   # (the reference checks no types)
    elif status != "ok":
        status, real = reference_values(case)
        judge = "onnx.reference"
        earlier = earlier_version(case) if status != "ok" else None
        if earlier is not None:
            status, real = ort_values(earlier)
            judge = f"onnxruntime (at opset {sweep65._opset(earlier.model)})"
    g, refusal, raw = sweep65.imported(case)
    if raw:
        return "RAW", raw
    if status != "ok":
        return ("both refuse", []) if g is None else ("planned, neither runs", [f"{case.label}: {real[''][:200]}"])
    if g is None:
        if any(w in refusal for w in sweep65.DATA_DEPENDENT):
            return "data-dependent refusal", [f"{case.label}: {refusal[:220]}"]
        if any(w in refusal for w in KNOWN_REFUSALS):
            return "known refusal", [f"{case.label}: {refusal[:220]}"]
        return "over-refusal", [f"{case.label}: memplan refuses what {judge} runs: {refusal[:220]}"]
    bad = []
    for t in g.tensors:
        if t.id not in real or t.kind == "input":
            continue
        shape, dtype, size = real[t.id]
        if dtype == "tensor(string)":
            continue   # (memplan refuses strings; a planned one would not be here)
        if "container" in t.attrs:
            got, want = t.size, size
        else:
            got = (list(t.attrs.get("shape", [])), f"tensor({t.attrs.get('dtype')})", t.size)
            want = (shape, dtype, size)
        wider = dtype in ("tensor(float)", "tensor(double)") and judge == "onnx.reference"
        if wider and "container" not in t.attrs and got[1] == "tensor(bfloat16)":
            want = (shape, got[1], t.size if shape == got[0] else size)   # (numpy computes Det of it wider: by shape)
        if got != want:
            under = " UNDER" if t.size < size else ""
            bad.append(f"{case.label}: {t.id!r} planned {got}, {judge} made {want}{under}")
    return ("MISMATCH", bad) if bad else (f"agree ({judge})", [])


#: memplan's refusals of what runtimes run, by design: strings have no fixed byte size, and how many tensors a
#: sequence given as a graph input holds, or whether an optional one holds one, is known only when it is fed
KNOWN_REFUSALS = ("which has no fixed byte size", "how many tensors a sequence holds is known only at run time",
                  "whether an optional holds a value is known only at run time",
                  # (onnxruntime refuses a batch-major recurrent op of any type; of bfloat16 the reference judges)
                  "Batchwise recurrent operations")
FAILING = ("MISMATCH", "over-refusal", "RAW")


def run(cases: list[Case], show: int = 20, out=sys.stdout) -> Counter:
    return driver.run(cases, compare, show, out)


def main(argv: list[str]) -> int:
    show, words = driver.options(argv)
    cases = list(typed_kernel_less_cases()) if "--typed" in argv else list(all_cases())
    return driver.status(run(driver.chosen(cases, words), show), FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
