"""Differential sweep (round 68): every ONNX element type, control flow and sequences, and round 67's leftovers.

Why: a wrong byte size is a silently wrong plan. Rounds 65-67 compared ops at float, float16, double and bfloat16;
the types of the quantized world (the packed 4- and 2-bit ones, the float8s, float4, float6) and the ops that make
them were planned unchecked, and so were the sizes the importer gives what an ``If``, a ``Loop``, a ``Scan``, a
sequence or an optional makes. Cases:

* **element types** (``type_cases``): each ``TensorProto`` data type the installed onnx has, as a graph input, an
  initializer (each fed through and by an ``Identity``), a ``Cast`` / ``CastLike`` target and source at the opsets
  that take it; odd element counts of the packed types (whose bytes round up) and empty tensors;
* **QuantizeLinear / DequantizeLinear** (``quant_cases``): per tensor, per axis and blocked, of every output type (by
  the zero point's type, or ``output_dtype``), at opsets 19, 21, 23, 24 and 25;
* **control flow** (``control_flow_cases``): ``If`` on a constant and a fed condition, ``Loop`` of constant trip counts
  with scan outputs and carried values (a carried value that grows each iteration), ``Scan`` of its axes and
  directions;
* **sequences and optionals** (``sequence_cases``): SequenceConstruct / Insert / Erase / At / Length, SplitToSequence,
  ConcatFromSequence (``new_axis``), Optional / OptionalGetElement / OptionalHasElement;
* **round 67's leftovers** (``leftover_cases``): Einsum ``""`` of a 0-D input, GatherND batch counts, and Einsum
  diagonals over an empty dimension, on which onnxruntime 1.32 dies of SIGFPE: every Einsum case is run by
  onnxruntime in a forked child (``isolated_ort_values``), a crash is a class, and the reference judges the case.

Each case is run by onnxruntime (every value exposed); where it cannot load or run it (no CPU kernel of the type,
complex tensors not registered, a crash), by onnx's reference implementation; where neither runs it, a case that
carries ``spec`` sizes (the element types: ONNX's bits per element, rounded up to bytes) is judged by those. Classes:
``agree (judge)``, ``MISMATCH``, ``over-refusal`` (memplan refuses what a runtime runs), ``invalid, memplan plans``
(onnx's strict type inference and onnxruntime both refuse the model), ``known refusal`` (``KNOWN_REFUSALS``: strings,
whose bytes depend on what they hold, and sequence or optional graph inputs), ``both refuse``,
``planned, neither runs`` (printed, not judged), ``RAW``.

Run: ``python tests/onnx_sweep_round68.py [--show N] [NAME_SUBSTRING ...]`` from the repository root
(``PYTHONPATH=$PWD:$PWD/tests``). Exit status 1 on any failing class (``FAILING``).
"""

from __future__ import annotations

import faulthandler
import itertools
import os
import pickle
import signal
import sys
from collections import Counter
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_sweep_driver as driver
import onnx_sweep_round65 as sweep65
import onnx_sweep_round66 as sweep66
from onnx import TensorProto as T
from onnx import helper, numpy_helper

I64 = np.iinfo(np.int64)


class Case(sweep65.Case):
    """A case, with what the specification sizes its values at (``spec``: value -> (shape, type text, bytes)) where
    no runtime may run it, and whether onnxruntime runs it in a child process (``isolate``: it may kill the process)."""

    def __init__(self, label: str, model, feeds: dict, spec: dict | None = None, isolate: bool = False) -> None:
        super().__init__(label, model, feeds)
        self.spec, self.isolate = spec or {}, isolate


# -- the element types -------------------------------------------------------------------------------------------------

#: bits of an element of each data type the installed onnx has (STRING, UNDEFINED: none), written from onnx.proto's
#: comments, not from memplan's table: the 4-bit types pack two to a byte, the 2-bit four, the 6-bit floats 4 in 3
#: bytes (``raw_data`` is "the packed 6-bit stream"); an odd count rounds up to whole bytes
SPEC_BITS: dict[str, int] = {
    "FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32, "INT64": 64, "BOOL": 8,
    "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64, "COMPLEX64": 64, "COMPLEX128": 128, "BFLOAT16": 16,
    "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8, "UINT4": 4, "INT4": 4,
    "FLOAT4E2M1": 4, "FLOAT8E8M0": 8, "UINT2": 2, "INT2": 2, "FLOAT6E2M3": 6, "FLOAT6E3M2": 6,
}
#: every data type of the installed onnx, by name (INT2/UINT2 from onnx 1.20, the float6s from 1.23)
TYPES: dict[str, int] = dict(T.DataType.items())


def spec_bytes(type_name: str, shape) -> int:
    return -(-int(np.prod(shape, dtype=np.int64)) * SPEC_BITS[type_name] // 8)


def _spec(name: str, type_name: str, shape) -> dict:
    return {name: (list(shape), f"tensor({type_name.lower()})", spec_bytes(type_name, shape))}


def _array(type_name: str, shape, seed: int = 68) -> np.ndarray:
    """A value of ``type_name`` and ``shape`` (numpy's or ml_dtypes' dtype): small values every type holds."""
    dt = helper.tensor_dtype_to_np_dtype(TYPES[type_name])
    if type_name == "STRING":
        return np.array([f"s{k}" for k in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    v = np.random.default_rng(seed).integers(0, 2, shape)
    return v.astype(np.float32).astype(dt) if dt.kind == "V" or type_name.startswith("FLOAT") else v.astype(dt)


def _model(nodes, inputs, outputs, inits=(), opset: int = 25, ir: int | None = None):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if ir is not None:
        m.ir_version = ir
    return m


def _out(*names: str) -> list:
    return [helper.ValueInfoProto(name=n) for n in names]


def _typed_cases(type_name: str) -> Iterator[Case]:
    code = TYPES[type_name]
    sized = type_name in SPEC_BITS
    for shape in ([5], [3, 3], [0, 4], []):
        tag = f"{type_name}{shape}"
        vi = helper.make_tensor_value_info("x", code, shape)
        feed = {"x": _array(type_name, shape)} if code else {}
        spec = _spec("y", type_name, shape) if sized else {}
        yield Case(f"input_identity_{tag}", _model([helper.make_node("Identity", ["x"], ["y"])], [vi], _out("y")),
                   feed, spec)
        yield Case(f"input_passthrough_{tag}", _model([], [vi], [helper.make_tensor_value_info("x", code, shape)]),
                   feed)
        if sized:
            raw = bytes(spec_bytes(type_name, shape))
            w = helper.make_tensor("w", code, shape, raw, raw=True)
            yield Case(f"initializer_identity_{tag}", _model([helper.make_node("Identity", ["w"], ["y"])], [],
                                                             _out("y"), [w]), {}, spec)
        elif code == T.STRING:
            w = helper.make_tensor("w", code, shape, [b"ab"] * int(np.prod(shape)))
            yield Case(f"initializer_identity_{tag}", _model([helper.make_node("Identity", ["w"], ["y"])], [],
                                                             _out("y"), [w]), {})


def _cast_cases(type_name: str) -> Iterator[Case]:
    code = TYPES[type_name]
    x = np.random.default_rng(1).random((3, 5)).astype(np.float32) * 3
    for opset in (13, 19, 21, 23, 24, 25):
        try:
            allowed = {c.type_param_str: c.allowed_type_strs for c in
                       onnx.defs.get_schema("Cast", opset, "").type_constraints}["T2"]
        except onnx.defs.SchemaError:
            continue
        if f"tensor({type_name.lower()})" not in allowed and type_name not in ("FLOAT6E2M3", "UNDEFINED"):
            continue   # (a type the opset's Cast does not take: one invalid neighbour per kind is enough)
        spec = _spec("y", type_name, (3, 5)) if type_name in SPEC_BITS else {}
        xin = helper.make_tensor_value_info("x", T.FLOAT, [3, 5])
        yield Case(f"cast{opset}_float_to_{type_name}",
                   _model([helper.make_node("Cast", ["x"], ["y"], to=code)], [xin], _out("y"), opset=opset),
                   {"x": x}, spec)
        if type_name in SPEC_BITS:
            like = helper.make_tensor("like", code, [1], bytes(spec_bytes(type_name, [1])), raw=True)
            yield Case(f"castlike{opset}_float_to_{type_name}",
                       _model([helper.make_node("CastLike", ["x", "like"], ["y"])], [xin], _out("y"), [like],
                              opset=opset), {"x": x}, spec)
            src = helper.make_tensor_value_info("x", code, [3, 5])
            yield Case(f"cast{opset}_{type_name}_to_float16",
                       _model([helper.make_node("Cast", ["x"], ["y"], to=T.FLOAT16)], [src], _out("y"), opset=opset),
                       {"x": _array(type_name, (3, 5))}, _spec("y", "FLOAT16", (3, 5)))
        elif type_name == "STRING":
            yield Case(f"cast{opset}_string_to_float",
                       _model([helper.make_node("Cast", ["x"], ["y"], to=T.FLOAT)],
                              [helper.make_tensor_value_info("x", code, [3, 5])], _out("y"), opset=opset),
                       {"x": np.full((3, 5), "1.5", dtype=object)}, _spec("y", "FLOAT", (3, 5)))


def type_cases() -> Iterator[Case]:
    """Every element type as a graph input, an initializer, a Cast/CastLike target and a Cast source."""
    for type_name in TYPES:
        yield from _typed_cases(type_name)
        yield from _cast_cases(type_name)


#: the quantized types each QuantizeLinear version writes (its T2/T3) and DequantizeLinear version reads (T1)
def _q_types(op: str, opset: int) -> list[str]:
    s = onnx.defs.get_schema(op, opset, "")
    param = {"QuantizeLinear": "T3" if s.since_version >= 23 else "T2", "DequantizeLinear": "T1"}[op]
    allowed = {c.type_param_str: c.allowed_type_strs for c in s.type_constraints}[param]
    return sorted(t[len("tensor("):-1].upper() for t in allowed)


def quant_cases() -> Iterator[Case]:
    """QuantizeLinear / DequantizeLinear per tensor, per axis and blocked, of each quantized type, opsets 19-25."""
    x = (np.random.default_rng(3).random((3, 5)).astype(np.float32) - 0.5) * 4
    xin = helper.make_tensor_value_info("x", T.FLOAT, [3, 5])
    for opset in (19, 21, 23, 24, 25):
        for qt in _q_types("QuantizeLinear", opset):
            code = TYPES[qt]
            for how in ("tensor", "axis", "block", "dtype"):
                if how in ("block", "dtype") and opset < 21:
                    continue
                attrs, scale_shape = {}, []
                if how == "axis":
                    attrs, scale_shape = {"axis": 1}, [5]
                if how == "block":
                    attrs, scale_shape = {"axis": 1, "block_size": 2}, [3, 3]
                scale = numpy_helper.from_array(np.full(scale_shape, 0.5, np.float32), "s")
                inits, ins = [scale], ["x", "s"]
                if how == "dtype":
                    attrs["output_dtype"] = code
                else:
                    inits.append(helper.make_tensor("z", code, scale_shape, bytes(spec_bytes(qt, scale_shape)),
                                                    raw=True))
                    ins.append("z")
                yield Case(f"quantize{opset}_{how}_{qt}",
                           _model([helper.make_node("QuantizeLinear", ins, ["y"], **attrs)], [xin], _out("y"), inits,
                                  opset=opset), {"x": x}, _spec("y", qt, (3, 5)))
        for qt in _q_types("DequantizeLinear", opset):
            code = TYPES[qt]
            for how, out_type in itertools.product(("tensor", "axis", "block"), ("FLOAT", "FLOAT16")):
                if how == "block" and opset < 21:
                    continue
                attrs, scale_shape = {}, []
                if how == "axis":
                    attrs, scale_shape = {"axis": 0}, [3]
                if how == "block":
                    attrs, scale_shape = {"axis": 0, "block_size": 2}, [2, 5]
                s_np = np.full(scale_shape, 0.5, np.float32 if out_type == "FLOAT" else np.float16)
                inits = [numpy_helper.from_array(s_np, "s")]
                ins = ["x", "s"]
                if qt not in ("INT32",) or how == "tensor":
                    inits.append(helper.make_tensor("z", code, scale_shape, bytes(spec_bytes(qt, scale_shape)),
                                                    raw=True))
                    ins.append("z")
                yield Case(f"dequantize{opset}_{how}_{qt}_to_{out_type}",
                           _model([helper.make_node("DequantizeLinear", ins, ["y"], **attrs)],
                                  [helper.make_tensor_value_info("x", code, [3, 5])], _out("y"), inits, opset=opset),
                           {"x": _array(qt, (3, 5))}, _spec("y", out_type, (3, 5)))
            if opset >= 23:   # output_dtype, equal to the scale's type as the spec requires, and unequal (invalid)
                for out_type in ("FLOAT", "FLOAT16"):
                    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "s")]
                    yield Case(f"dequantize{opset}_output_dtype_{qt}_to_{out_type}",
                               _model([helper.make_node("DequantizeLinear", ["x", "s"], ["y"],
                                                        output_dtype=TYPES[out_type])],
                                      [helper.make_tensor_value_info("x", code, [3, 5])], _out("y"), inits,
                                      opset=opset), {"x": _array(qt, (3, 5))}, _spec("y", out_type, (3, 5)))


# -- control flow, sequences, optionals --------------------------------------------------------------------------------

def _x(shape, seed: int = 68) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _fin(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, T.FLOAT, shape)


def _const(name: str, v) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(v), name))


def _graph(name: str, nodes, inputs, outputs) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, inputs, outputs)


def _if_cases() -> Iterator[Case]:
    then_same = _graph("then", [helper.make_node("Add", ["x", "x"], ["t"])], [], [_fin("t", [2, 3])])
    else_same = _graph("else", [helper.make_node("Mul", ["x", "x"], ["e"])], [], [_fin("e", [2, 3])])
    then_big = _graph("then", [_const("r", np.array([3, 2], np.int64)),
                               helper.make_node("Tile", ["x", "r"], ["t"])], [], [helper.ValueInfoProto(name="t")])
    else_small = _graph("else", [helper.make_node("ReduceSum", ["x"], ["e"], keepdims=0)], [],
                        [helper.ValueInfoProto(name="e")])
    x = _x((2, 3))
    for cond, (tg, eg), opset in itertools.product([True, False], [(then_same, else_same), (then_big, else_small)],
                                                   [13, 19, 21, 25]):
        kind = "same" if tg is then_same else "differ"   # (a fed condition of branches of two shapes: refused)
        nodes = [_const("c", np.array(cond)), helper.make_node("If", ["c"], ["y"], then_branch=tg, else_branch=eg)]
        yield Case(f"if{opset}_const_{cond}_{kind}", _model(nodes, [_fin("x", [2, 3])], _out("y"), opset=opset),
                   {"x": x})
        nodes = [helper.make_node("If", ["c"], ["y"], then_branch=tg, else_branch=eg)]
        yield Case(f"if{opset}_fed_{cond}_{kind}", _model(nodes, [_fin("x", [2, 3]),
                                                                  helper.make_tensor_value_info("c", T.BOOL, [])],
                                                          _out("y"), opset=opset), {"x": x, "c": np.array(cond)})
    # an If computed from a shape (as exporters write checks): folds at import
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Size", ["s"], ["n"]), _const("two", np.int64(2)),
             helper.make_node("Equal", ["n", "two"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_big, else_branch=else_small)]
    yield Case("if_shape_check", _model(nodes, [_fin("x", [2, 3])], _out("y"), opset=19), {"x": x})


def _loop_body(kind: str) -> onnx.GraphProto:
    """A Loop body over (i, cond, carried): ``same`` keeps the carried value's shape and scans it out, ``grow``
    concatenates a row to it each iteration, ``count`` computes its condition (i < 2)."""
    ins = [helper.make_tensor_value_info("i", T.INT64, []), helper.make_tensor_value_info("cin", T.BOOL, []),
           helper.make_tensor_value_info("v", T.FLOAT, None)]
    if kind == "same":
        nodes = [helper.make_node("Identity", ["cin"], ["cout"]), helper.make_node("Add", ["v", "v"], ["vo"]),
                 helper.make_node("Relu", ["vo"], ["scan"])]
        return _graph("body", nodes, ins, [helper.make_tensor_value_info("cout", T.BOOL, []),
                                           helper.ValueInfoProto(name="vo"), helper.ValueInfoProto(name="scan")])
    if kind == "grow":
        nodes = [helper.make_node("Identity", ["cin"], ["cout"]),
                 _const("a0", np.array([0], np.int64)), _const("n1", np.array([1], np.int64)),
                 helper.make_node("Slice", ["v", "a0", "n1", "a0"], ["row"]),
                 helper.make_node("Concat", ["v", "row"], ["vo"], axis=0)]
        return _graph("body", nodes, ins, [helper.make_tensor_value_info("cout", T.BOOL, []),
                                           helper.ValueInfoProto(name="vo")])
    nodes = [_const("lim", np.int64(2)), helper.make_node("Less", ["i", "lim"], ["cout"]),
             helper.make_node("Add", ["v", "v"], ["vo"])]
    return _graph("body", nodes, ins, [helper.make_tensor_value_info("cout", T.BOOL, []),
                                       helper.ValueInfoProto(name="vo")])


def _loop_cases() -> Iterator[Case]:
    x = _x((2, 3))
    for kind, trips, opset in itertools.product(["same", "grow", "count"], [0, 1, 3], [13, 16, 19, 21, 25]):
        outs = ["y", "ys"] if kind == "same" else ["y"]
        nodes = [_const("m", np.int64(trips)), _const("c", np.array(True)),
                 helper.make_node("Loop", ["m", "c", "x"], outs, body=_loop_body(kind))]
        yield Case(f"loop{opset}_{kind}_trips{trips}", _model(nodes, [_fin("x", [2, 3])], _out(*outs), opset=opset),
                   {"x": x})
        nodes = [helper.make_node("Loop", ["m", "c", "x"], outs, body=_loop_body(kind))]
        yield Case(f"loop{opset}_{kind}_fed{trips}",
                   _model(nodes, [_fin("x", [2, 3]), helper.make_tensor_value_info("m", T.INT64, []),
                                  helper.make_tensor_value_info("c", T.BOOL, [])], _out(*outs), opset=opset),
                   {"x": x, "m": np.array(trips, np.int64), "c": np.array(True)})


def _scan_cases() -> Iterator[Case]:
    body = _graph("body", [helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Mul", ["e", "e"], ["eo"])],
                  [_fin("s", [3]), _fin("e", [3])], [_fin("so", [3]), _fin("eo", [3])])
    for axis, direction, out_axis, out_dir in itertools.product([0, 1, -2], [0, 1], [0, 1, -1], [0, 1]):
        shape = (4, 3) if axis in (0, -2) else (3, 4)
        attrs = {"num_scan_inputs": 1, "scan_input_axes": [axis], "scan_input_directions": [direction],
                 "scan_output_axes": [out_axis], "scan_output_directions": [out_dir]}
        nodes = [helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body, **attrs)]
        yield Case(f"scan_axis{axis}_dir{direction}_out{out_axis}_dir{out_dir}",
                   _model(nodes, [_fin("s0", [3]), _fin("xs", list(shape))], _out("sN", "ys"), opset=19),
                   {"s0": _x((3,)), "xs": _x(shape, 1)})
    nodes = [helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body, num_scan_inputs=1)]
    yield Case("scan_empty", _model(nodes, [_fin("s0", [3]), _fin("xs", [0, 3])], _out("sN", "ys"), opset=19),
               {"s0": _x((3,)), "xs": _x((0, 3))})


def control_flow_cases() -> Iterator[Case]:
    """If (constant, fed and shape-computed conditions; branches of one shape and of two), Loop (constant and fed
    trip counts 0, 1, 3; a carried value kept, scanned out, grown; a computed condition), Scan (axes, directions)."""
    yield from _if_cases()
    yield from _loop_cases()
    yield from _scan_cases()


def sequence_cases() -> Iterator[Case]:
    """Sequences and optionals built and read inside the graph (their inputs plain tensors)."""
    x, y = _x((2, 3)), _x((4, 3), 1)
    ins = [_fin("x", [2, 3]), _fin("y", [4, 3])]
    feeds = {"x": x, "y": y}
    for opset in (13, 19, 25):
        for pos in (0, 1, -1, -2):
            yield Case(f"seq{opset}_construct_at{pos}", _model(
                [helper.make_node("SequenceConstruct", ["x", "y"], ["s"]), _const("p", np.int64(pos)),
                 helper.make_node("SequenceAt", ["s", "p"], ["z"])], ins, _out("z"), opset=opset), feeds)
        for axis, new_axis in ((0, 0), (1, 0), (-1, 0), (0, 1), (2, 1), (-1, 1), (-3, 1)):
            yield Case(f"seq{opset}_concat_axis{axis}_new{new_axis}", _model(
                [helper.make_node("SequenceConstruct", ["x", "x"], ["s"]),
                 helper.make_node("ConcatFromSequence", ["s"], ["z"], axis=axis, new_axis=new_axis)],
                [_fin("x", [2, 3])], _out("z"), opset=opset), {"x": x})
        yield Case(f"seq{opset}_concat_mixed", _model(
            [helper.make_node("SequenceConstruct", ["x", "y"], ["s"]),
             helper.make_node("ConcatFromSequence", ["s"], ["z"], axis=0)], ins, _out("z"), opset=opset), feeds)
        for split, axis, keep in ((None, 0, 1), (None, 1, 0), (None, 0, 0), (np.int64(2), 0, 1), (np.int64(3), 0, 1),
                                  (np.array([1, 3], np.int64), 0, 1), (np.array([3, 0], np.int64), 1, 1),
                                  (np.int64(5), 0, 1)):
            nodes = [helper.make_node("SplitToSequence", ["y", "sp"] if split is not None else ["y"], ["s"],
                                      axis=axis, keepdims=keep)]
            if split is not None:
                nodes.insert(0, _const("sp", split))
            for pos in (0, -1):
                tag = "none" if split is None else "_".join(map(str, np.atleast_1d(split)))
                yield Case(f"seq{opset}_split{tag}_axis{axis}_keep{keep}_at{pos}", _model(
                    [*nodes, _const("p", np.int64(pos)), helper.make_node("SequenceAt", ["s", "p"], ["z"]),
                     helper.make_node("ConcatFromSequence", ["s"], ["w"], axis=axis, new_axis=1 - keep)],
                    [_fin("y", [4, 3])], _out("z", "w"), opset=opset), {"y": y})
        yield Case(f"seq{opset}_insert_erase_length", _model(
            [helper.make_node("SequenceConstruct", ["x"], ["s"]),
             helper.make_node("SequenceInsert", ["s", "y"], ["s2"]), _const("p0", np.int64(0)),
             helper.make_node("SequenceInsert", ["s2", "x", "p0"], ["s3"]),
             helper.make_node("SequenceErase", ["s3"], ["s4"]), helper.make_node("SequenceLength", ["s4"], ["n"]),
             helper.make_node("SequenceAt", ["s4", "p0"], ["z"]),
             helper.make_node("ConcatFromSequence", ["s4"], ["w"], axis=0)], ins, _out("n", "z", "w"), opset=opset),
            feeds)
        yield Case(f"seq{opset}_empty_insert", _model(
            [helper.make_node("SequenceEmpty", [], ["s"], dtype=T.FLOAT),
             helper.make_node("SequenceInsert", ["s", "x"], ["s2"]),
             helper.make_node("ConcatFromSequence", ["s2"], ["w"], axis=0, new_axis=1)], [_fin("x", [2, 3])],
            _out("w"), opset=opset), {"x": x})
        if opset >= 18:
            yield Case(f"optional{opset}_get", _model(
                [helper.make_node("Optional", ["x"], ["o"]), helper.make_node("OptionalHasElement", ["o"], ["h"]),
                 helper.make_node("OptionalGetElement", ["o"], ["z"])], [_fin("x", [2, 3])], _out("h", "z"),
                opset=opset), {"x": x})
            tp = helper.make_tensor_type_proto(T.FLOAT, [2, 3])
            yield Case(f"optional{opset}_empty_has", _model(
                [helper.make_node("Optional", [], ["o"], type=tp), helper.make_node("OptionalHasElement", ["o"], ["h"])],
                [], _out("h"), opset=opset), {})
            yield Case(f"optional{opset}_get_tensor", _model(
                [helper.make_node("OptionalGetElement", ["x"], ["z"]), helper.make_node("OptionalHasElement", ["x"],
                                                                                          ["h"])],
                [_fin("x", [2, 3])], _out("z", "h"), opset=opset), {"x": x})


def leftover_cases() -> Iterator[Case]:
    """Round 67's leftovers: Einsum ``""`` (of a 0-D input: a scalar; of others: refused as onnxruntime refuses to run
    it), Einsum diagonals over an empty dimension (onnxruntime 1.32 dies of SIGFPE on ``iji->j`` of ``[0, 3, 0]``:
    every Einsum here runs in a child process), and GatherND batch counts (equal, a multiple, not a multiple)."""
    for eq, shapes in [("", [()]), ("", [(1,)]), ("", [(2,)]), ("", [(), ()]), (" ", [()]), ("->", [()]),
                       ("...", [()]), (",", [(), ()]), (",->", [(), ()]),
                       ("ii->i", [(0, 0)]), ("ii", [(0, 0)]), ("iij->j", [(0, 0, 3)]), ("iij->j", [(2, 2, 0)]),
                       ("iji->j", [(0, 3, 0)]), ("iji->ij", [(3, 0, 3)]), ("iijk->jk", [(2, 2, 0, 3)]),
                       ("ijj->i", [(3, 0, 0)]), ("iij->ij", [(0, 0, 2)]), ("iji->j", [(2, 3, 2)])]:
        ins = [helper.make_tensor_value_info(f"x{k}", T.FLOAT, list(sh)) for k, sh in enumerate(shapes)]
        node = helper.make_node("Einsum", [f"x{k}" for k in range(len(shapes))], ["y"], equation=eq)
        yield Case(f"einsum_{eq!r}_{shapes}", _model([node], ins, _out("y"), opset=12),
                   {f"x{k}": _x(sh, k) for k, sh in enumerate(shapes)}, isolate=True)
    for data, idx in [((2, 3, 4), (2, 1)), ((2, 3, 4), (4, 1)), ((2, 3, 4), (6, 1)), ((2, 3, 4), (3, 1)),
                      ((4, 2, 3), (2, 2, 1)), ((4, 2, 3), (4, 2, 1)), ((2, 3, 4), (4, 0, 1)), ((0, 2, 0), (3, 0, 0, 2))]:
        node = helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=1)
        yield Case(f"gathernd_{data}_by_{idx}", _model([node], [_fin("x", list(data))], _out("y"),
                                                       [numpy_helper.from_array(np.zeros(idx, np.int64), "i")],
                                                       opset=13), {"x": _x(data)})


def all_cases() -> Iterator[Case]:
    for make in (type_cases, quant_cases, control_flow_cases, sequence_cases, leftover_cases):
        yield from make()


# -- the runtimes ------------------------------------------------------------------------------------------------------

def isolated_ort_values(case: Case) -> tuple[str, dict]:
    """``sweep66.ort_values(case)`` run in a forked child: where onnxruntime kills the process (SIGFPE on an Einsum
    diagonal over an empty dimension, onnxruntime 1.32), ``("crash", {"": the signal})`` instead of the sweep's end."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: run, write the pickled result, leave without cleanup (the parent's state is shared)
        os.close(r)
        faulthandler.disable()   # (pytest's would print the crash's traceback: the crash is the expected status)
        try:
            data = pickle.dumps(_ort_values(case))
        except BaseException as exc:  # noqa: BLE001 - any failure is reported, never raised in the child
            data = pickle.dumps(("run", {"": f"{type(exc).__name__}: {exc}"}))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "crash", {"": f"onnxruntime killed the process ({signal.Signals(os.WTERMSIG(status)).name})"}
    return pickle.loads(data)


def _ort_values(case: Case) -> tuple[str, dict]:
    """``sweep66.ort_values``, a value onnxruntime cannot be fed (float6: "tensor type 27 is not supported") counted
    as its refusal to run the case."""
    try:
        return sweep66.ort_values(case)
    except RuntimeError as exc:
        return "run", {"": f"{type(exc).__name__}: {exc}"}


def runtime_values(case: Case) -> tuple[str, str, dict]:
    """(status, judge, values) of ``case``: onnxruntime's, or where it cannot run it (refusing or crashing) and onnx's
    strict inference takes the model, the reference's; ``status`` ``"invalid"`` where onnx refuses the model too."""
    status, real = isolated_ort_values(case) if case.isolate else _ort_values(case)
    if status == "ok":
        return status, "onnxruntime", real
    crashed = real[""] if status == "crash" else None
    if not _valid(case.model):
        return "invalid", "onnx", {"": f"onnx's type inference refuses the model; onnxruntime: {real[''][:200]}"}
    status, ref = sweep66.reference_values(case)
    if status == "ok":
        return status, "onnx.reference" + (" (onnxruntime crashed)" if crashed else ""), ref
    if case.spec:
        return "ok", "the specification", case.spec
    return "neither", "", {"": (crashed or real[""])[:200] + "; reference: " + ref[""][:160]}


def _valid(model) -> bool:
    """``sweep66._valid``, and every op defined at the model's opset (CastLike is not at 13: onnx's inference lets an
    op it does not know pass); an element type of 0 (UNDEFINED: onnx raises ValueError) counted invalid."""
    opset = sweep65._opset(model)
    if any(not onnx.defs.has(n.op_type, opset) for n in model.graph.node if n.domain in ("", "ai.onnx")):
        return False
    try:
        return sweep66._valid(model)
    except (ValueError, onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return False


# -- the comparison ----------------------------------------------------------------------------------------------------

#: the type onnxruntime 1.32's ``OrtValue.data_type()`` names a value of (its Python binding names float8e4m3fn
#: "tensor(uint8)": the bytes and shape are what it allocated, only the name is off)
ORT_TYPE_NAMES = {"tensor(float8e4m3fn)": "tensor(uint8)"}


def _differences(case: Case, g, real: dict, judge: str) -> list[str]:
    bad = []
    for t in g.tensors:
        if t.id not in real or t.kind == "input":
            continue
        shape, dtype, size = real[t.id]
        if dtype == "tensor(string)":
            continue
        if "container" in t.attrs or shape is None:
            got, want = t.size, size
        else:
            got = (list(t.attrs.get("shape", [])), f"tensor({t.attrs.get('dtype')})", t.size)
            want = (shape, dtype, size)
        if got != want and judge == "onnxruntime" and ORT_TYPE_NAMES.get(got[1]) == dtype and \
                got[0::2] == want[0::2]:
            continue
        if got != want:
            under = " UNDER" if t.size < size else ""
            bad.append(f"{case.label}: {t.id!r} planned {got}, {judge} made {want}{under}")
    for name, want in case.spec.items():   # (the specification's sizes hold whichever runtime judged)
        t = next((t for t in g.tensors if t.id == name), None)
        if t is not None and "shape" in t.attrs and t.size != want[2]:
            bad.append(f"{case.label}: {name!r} planned {t.size} bytes, the specification makes {want[2]}")
    return bad


def compare(case: Case) -> tuple[str, list[str]]:
    """The case's class (see the module's docstring) and its lines to print."""
    g, refusal, raw = sweep65.imported(case)
    if raw:
        return "RAW", raw
    status, judge, real = runtime_values(case)
    if status == "invalid":
        return ("both refuse", []) if g is None else ("invalid, memplan plans", [f"{case.label}: {real['']}"])
    if status != "ok":
        return ("both refuse", []) if g is None else ("planned, neither runs", [f"{case.label}: {real['']}"])
    if g is None:
        if any(w in refusal for w in KNOWN_REFUSALS):
            return "known refusal", [f"{case.label}: {refusal[:220]}"]
        return "over-refusal", [f"{case.label}: memplan refuses what {judge} runs: {refusal[:220]}"]
    bad = _differences(case, g, real, judge)
    return ("MISMATCH", bad) if bad else (f"agree ({judge})", [])


#: memplan's deliberate refusals of what a runtime runs (words of the refusal): strings (their bytes depend on what
#: they hold); control flow whose course depends on what the inputs hold (an If on a fed condition, a Loop of a fed
#: trip count or a computed condition) or that is not unrolled (Scan, and a zero-iteration Loop with scan outputs,
#: whose element shape is the body's, which never runs); GatherND batch dimensions the spec does not define
KNOWN_REFUSALS = ("which has no fixed byte size", "how many tensors a sequence holds is known only at run time",
                  "whether an optional holds a value is known only at run time",
                  "which branch runs is known only at run time", "which iterations run is known only at run time",
                  "how many iterations run is known only at run time", "not unrolled at import",
                  "it runs no iteration", "onnxruntime runs it as its own extension")
FAILING = ("MISMATCH", "over-refusal", "invalid, memplan plans", "RAW")


def run(cases: list[Case], show: int = 20, out=sys.stdout) -> Counter:
    return driver.run(cases, compare, show, out)


def main(argv: list[str]) -> int:
    show, words = driver.options(argv)
    return driver.status(run(driver.chosen(all_cases(), words), show), FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
