"""Differential sweep (round 69): Scan, an If on a run-time condition, a Loop of a run-time trip count, and the
branch of an If that does not run, against onnxruntime.

Why: round 69 plans what rounds 64-68 refused (a ``Scan``, unrolled over its scan inputs' length; an ``If`` whose
condition only the run knows, both branches planned and each output selected by a ``Where``) and refuses what was
planned though onnxruntime does not load it (an ``If`` on a constant whose untaken branch is invalid). A wrong byte
size is a silently wrong plan, and a plan of a model onnxruntime refuses plans nothing that runs. Cases:

* **Scan** (``scan_cases``): scan input axes and directions, scan output axes and directions, 0-2 states, 1-3 scan
  inputs and outputs, lengths 1, 5 and 64 (the bound; 65 is refused), element types, opsets 9-25, a body reading
  the graph around and holding its own initializers, an RNN-like body (MatMul, Tanh, a hidden state), a Scan in a
  Scan's body and in a Loop's, lengths of 0 (states only: planned; with scan outputs: refused), unequal lengths;
* **fed If** (``fed_if_cases``): a condition that is a graph input (of shape ``[]`` and ``[1]``, each value) or computed
  from what the inputs hold, branches of one shape (planned), of two shapes or two types (refused), several outputs,
  branches with their own initializers or nested Ifs, a fed If in a Loop's body;
* **fed Loop** (``fed_loop_cases``): a trip count or condition fed at run time, with and without scan outputs
  (refused by design, naming what is unknown);
* **untaken branches** (``untaken_cases``): the branch an If on a constant does not take, valid (other ops, another
  declared shape, a rank onnxruntime does not check) and invalid in each way onnxruntime checks as it loads (an op
  not registered, a domain not imported, a required attribute missing, an unknown attribute, too many inputs, two
  types bound to one type parameter, a Cast to no type, a Transpose ``perm`` / Gather ``axis`` out of a declared
  rank, a MatMul of declared dims that do not match, a name nothing defines, another count of outputs).

Each case is run by onnxruntime; each value memplan plans is held against what onnxruntime makes, and where memplan
expanded the control flow, the expanded model is run too: every planned value of it (the unrolled iterations, both
branches) at onnxruntime's bytes, and its outputs equal the model's. Classes: ``agree``, ``MISMATCH``,
``over-refusal`` (memplan refuses what onnxruntime runs, not by design), ``planned, onnxruntime refuses``,
``known refusal`` (``KNOWN_REFUSALS``), ``both refuse``, ``RAW``.

Run: ``python tests/onnx_sweep_round69.py [--show N] [NAME_SUBSTRING ...]`` from the repository root
(``PYTHONPATH=$PWD:$PWD/tests``). Exit status 1 on any failing class (``FAILING``).
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_sweep_driver as driver
import onnx_sweep_round65 as sweep65
import onnx_sweep_round68 as sweep68
from onnx import TensorProto as T
from onnx import helper, numpy_helper
from onnx_oracle import ort_sizes, size_mismatches

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx
from memplan.importers.onnx import importer as onnx_importer

Case = sweep68.Case
V = helper.make_tensor_value_info
U = helper.ValueInfoProto


def _x(shape, dtype=np.float32, seed: int = 69) -> np.ndarray:
    r = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return r.integers(-3, 4, shape).astype(dtype)
    return (r.random(shape) - 0.5).astype(dtype)


def _model(nodes, inputs, outputs, inits=(), opset: int = 19):
    g = helper.make_graph(nodes, "g", inputs, [U(name=o) if isinstance(o, str) else o for o in outputs],
                          initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _const(name: str, v) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(v), name))


def _body(nodes, inputs, outputs, inits=()) -> onnx.GraphProto:
    return helper.make_graph(nodes, "body", inputs, [U(name=o) if isinstance(o, str) else o for o in outputs],
                             initializer=list(inits))


# -- Scan ----------------------------------------------------------------------------------------------------------------

ELEM = {np.float32: T.FLOAT, np.float16: T.FLOAT16, np.float64: T.DOUBLE, np.int64: T.INT64, np.int32: T.INT32}


def _axes_cases() -> Iterator[Case]:
    """One state, one scan input and output: every input axis / direction and output axis / direction."""
    body = _body([helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Mul", ["e", "e"], ["eo"])],
                 [V("s", T.FLOAT, [3]), V("e", T.FLOAT, [3])], ["so", "eo"])
    for axis, direction, out_axis, out_dir in itertools.product([0, 1, -1, -2], [0, 1], [0, 1, -1, -2], [0, 1]):
        shape = (5, 3) if axis in (0, -2) else (3, 5)
        attrs = {"num_scan_inputs": 1, "scan_input_axes": [axis], "scan_input_directions": [direction],
                 "scan_output_axes": [out_axis], "scan_output_directions": [out_dir]}
        nodes = [helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body, **attrs)]
        yield Case(f"scan_axes_in{axis}_dir{direction}_out{out_axis}_dir{out_dir}",
                   _model(nodes, [V("s0", T.FLOAT, [3]), V("xs", T.FLOAT, list(shape))], ["sN", "ys"]),
                   {"s0": _x((3,)), "xs": _x(shape, seed=1)})


def _shape_cases() -> Iterator[Case]:
    """States 0-2, scan inputs 1-3 (of their own axes), scan outputs 0-3, at several lengths and opsets."""
    for states, ins, outs, length, opset in itertools.product([0, 1, 2], [1, 3], [0, 1, 3], [1, 5, 64],
                                                              [9, 11, 16, 21, 25]):
        if states + outs == 0 or (opset in (11, 16, 21) and length != 5):
            continue
        axes = [0, 1, 0][:ins] if opset >= 11 else [0] * ins   # (negative axes from Scan-11 on)
        body_in = [V(f"s{k}", T.FLOAT, [2, 4]) for k in range(states)] + \
                  [V(f"e{j}", T.FLOAT, [2, 4]) for j in range(ins)]
        nodes, body_out = [], []
        acc = "e0"
        for j in range(1, ins):
            nodes.append(helper.make_node("Add", [acc, f"e{j}"], [f"acc{j}"]))
            acc = f"acc{j}"
        for k in range(states):
            nodes.append(helper.make_node("Add", [f"s{k}", acc], [f"so{k}"]))
            body_out.append(f"so{k}")
        for j in range(outs):
            nodes.append(helper.make_node(["Relu", "Neg", "Abs"][j], [acc], [f"o{j}"]))
            body_out.append(f"o{j}")
        body = _body(nodes, body_in, body_out)
        attrs = {"num_scan_inputs": ins}
        if opset >= 11 or any(axes):
            attrs["scan_input_axes"] = axes
        if outs:
            attrs["scan_output_axes"] = [0, 1, 2][:outs] if opset >= 11 else [0] * outs
        graph_in = [V(f"i{k}", T.FLOAT, [2, 4]) for k in range(states)] + \
                   [V(f"x{j}", T.FLOAT, [length, 2, 4] if axes[j] == 0 else [2, length, 4]) for j in range(ins)]
        feeds = {v.name: _x([d.dim_value for d in v.type.tensor_type.shape.dim], seed=k)
                 for k, v in enumerate(graph_in)}
        outputs = [f"f{k}" for k in range(states)] + [f"y{j}" for j in range(outs)]
        nodes = [helper.make_node("Scan", [v.name for v in graph_in], outputs, body=body, **attrs)]
        yield Case(f"scan{opset}_states{states}_ins{ins}_outs{outs}_len{length}",
                   _model(nodes, graph_in, outputs, opset=opset), feeds)


def _type_cases() -> Iterator[Case]:
    for dtype, opset in itertools.product(ELEM, [16, 25]):
        e = ELEM[dtype]
        body = _body([helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Identity", ["so"], ["eo"])],
                     [V("s", e, [4]), V("e", e, [4])], ["so", "eo"])
        nodes = [helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body, num_scan_inputs=1)]
        yield Case(f"scan{opset}_{np.dtype(dtype).name}",
                   _model(nodes, [V("s0", e, [4]), V("xs", e, [6, 4])], ["sN", "ys"], opset=opset),
                   {"s0": _x((4,), dtype), "xs": _x((6, 4), dtype, 2)})


def _rnn_case(length: int, hidden: int = 8, batch: int = 2, opset: int = 17) -> Case:
    """An Elman RNN as tf2onnx writes one: h' = tanh(x W + h R + b), each step's h scanned out; W, R, b outer
    initializers, the step's output also through a body initializer."""
    r = np.random.default_rng(3)
    inits = [numpy_helper.from_array(r.random((5, hidden)).astype(np.float32), "W"),
             numpy_helper.from_array(r.random((hidden, hidden)).astype(np.float32) * 0.1, "R"),
             numpy_helper.from_array(r.random(hidden).astype(np.float32), "b")]
    body = _body([helper.make_node("MatMul", ["xt", "W"], ["xw"]), helper.make_node("MatMul", ["h", "R"], ["hr"]),
                  helper.make_node("Add", ["xw", "hr"], ["pre"]), helper.make_node("Add", ["pre", "b"], ["pre_b"]),
                  helper.make_node("Tanh", ["pre_b"], ["h_out"]), helper.make_node("Mul", ["h_out", "scale"], ["y_t"])],
                 [V("h", T.FLOAT, [batch, hidden]), V("xt", T.FLOAT, [batch, 5])], ["h_out", "y_t"],
                 [numpy_helper.from_array(np.float32(0.5), "scale")])
    nodes = [helper.make_node("Scan", ["h0", "x"], ["h_last", "ys"], body=body, num_scan_inputs=1,
                              scan_input_axes=[1], scan_output_axes=[1]),
             helper.make_node("ReduceMean", ["ys"], ["pooled"], axes=[1], keepdims=0)]
    return Case(f"scan_rnn_len{length}", _model(nodes, [V("h0", T.FLOAT, [batch, hidden]),
                                                        V("x", T.FLOAT, [batch, length, 5])],
                                                ["h_last", "ys", "pooled"], inits, opset=opset),
                {"h0": np.zeros((batch, hidden), np.float32), "x": _x((batch, length, 5))})


def _nested_cases() -> Iterator[Case]:
    # a Scan in a Scan's body (rows, then the elements of each row)
    inner = _body([helper.make_node("Add", ["a", "v"], ["ao"]), helper.make_node("Identity", ["ao"], ["w"])],
                  [V("a", T.FLOAT, []), V("v", T.FLOAT, [])], ["ao", "w"])
    outer = _body([helper.make_node("Scan", ["zero", "row"], ["tot", "cum"], body=inner, num_scan_inputs=1),
                   helper.make_node("Add", ["acc", "tot"], ["acc_o"])],
                  [V("acc", T.FLOAT, []), V("row", T.FLOAT, [4])], ["acc_o", "cum"])
    nodes = [_const("zero", np.float32(0)),
             helper.make_node("Scan", ["a0", "m"], ["total", "cums"], body=outer, num_scan_inputs=1)]
    yield Case("scan_in_scan", _model(nodes, [V("a0", T.FLOAT, []), V("m", T.FLOAT, [3, 4])], ["total", "cums"]),
               {"a0": np.array(1, np.float32), "m": _x((3, 4))})
    # a Scan in a Loop's body (a constant trip count): each iteration scans the carried value's rows
    sbody = _body([helper.make_node("Mul", ["p", "q"], ["po"]), helper.make_node("Neg", ["q"], ["qo"])],
                  [V("p", T.FLOAT, [3]), V("q", T.FLOAT, [3])], ["po", "qo"])
    lbody = _body([helper.make_node("Identity", ["cin"], ["cout"]),
                   helper.make_node("Scan", ["one", "v"], ["prod", "negs"], body=sbody, num_scan_inputs=1),
                   helper.make_node("Add", ["negs", "negs"], ["vo"])],
                  [V("i", T.INT64, []), V("cin", T.BOOL, []), V("v", T.FLOAT, [2, 3])],
                  [V("cout", T.BOOL, []), "vo", "prod"])
    nodes = [_const("n", np.int64(3)), _const("t", np.array(True)), _const("one", np.ones(3, np.float32)),
             helper.make_node("Loop", ["n", "t", "x"], ["xf", "prods"], body=lbody)]
    yield Case("scan_in_loop", _model(nodes, [V("x", T.FLOAT, [2, 3])], ["xf", "prods"]), {"x": _x((2, 3))})
    # an If on a constant in a Scan's body, reading the body's slice
    th = helper.make_graph([helper.make_node("Relu", ["e"], ["t"])], "then", [], [U(name="t")])
    el = helper.make_graph([helper.make_node("Neg", ["e"], ["f"])], "else", [], [U(name="f")])
    body = _body([_const("yes", np.array(True)), helper.make_node("If", ["yes"], ["eo"], then_branch=th, else_branch=el),
                  helper.make_node("Add", ["s", "eo"], ["so"])], [V("s", T.FLOAT, [3]), V("e", T.FLOAT, [3])],
                 ["so", "eo"])
    nodes = [helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body, num_scan_inputs=1)]
    yield Case("scan_body_if", _model(nodes, [V("s0", T.FLOAT, [3]), V("xs", T.FLOAT, [4, 3])], ["sN", "ys"]),
               {"s0": _x((3,)), "xs": _x((4, 3), seed=2)})
    # the scan input computed by nodes before it (its length folded from the shapes)
    body = _body([helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Sqrt", ["e"], ["eo"])],
                 [V("s", T.FLOAT, [3]), V("e", T.FLOAT, [3])], ["so", "eo"])
    nodes = [helper.make_node("Concat", ["x", "x"], ["xx"], axis=0), helper.make_node("Abs", ["xx"], ["ax"]),
             helper.make_node("Scan", ["s0", "ax"], ["sN", "ys"], body=body, num_scan_inputs=1)]
    yield Case("scan_computed_input", _model(nodes, [V("s0", T.FLOAT, [3]), V("x", T.FLOAT, [2, 3])], ["sN", "ys"]),
               {"s0": _x((3,)), "x": _x((2, 3))})


def _edge_cases() -> Iterator[Case]:
    body = _body([helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Mul", ["e", "e"], ["eo"])],
                 [V("s", T.FLOAT, [3]), V("e", T.FLOAT, [3])], ["so", "eo"])
    states_only = _body([helper.make_node("Add", ["s", "e"], ["so"])], [V("s", T.FLOAT, [3]), V("e", T.FLOAT, [3])],
                        ["so"])
    ins = [V("s0", T.FLOAT, [3])]
    yield Case("scan_len65", _model([helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body,
                                                      num_scan_inputs=1)], ins + [V("xs", T.FLOAT, [65, 3])],
                                    ["sN", "ys"]), {"s0": _x((3,)), "xs": _x((65, 3))})
    yield Case("scan_len0_scan_output", _model([helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body,
                                                                 num_scan_inputs=1)],
                                               ins + [V("xs", T.FLOAT, [0, 3])], ["sN", "ys"]),
               {"s0": _x((3,)), "xs": _x((0, 3))})
    yield Case("scan_len0_states_only", _model([helper.make_node("Scan", ["s0", "xs"], ["sN"], body=states_only,
                                                                 num_scan_inputs=1)],
                                               ins + [V("xs", T.FLOAT, [0, 3])], ["sN"]),
               {"s0": _x((3,)), "xs": _x((0, 3))})
    two = _body([helper.make_node("Add", ["e", "f"], ["eo"])], [V("e", T.FLOAT, [3]), V("f", T.FLOAT, [3])], ["eo"])
    yield Case("scan_unequal_lengths", _model([helper.make_node("Scan", ["a", "b"], ["ys"], body=two,
                                                                num_scan_inputs=2)],
                                              [V("a", T.FLOAT, [4, 3]), V("b", T.FLOAT, [5, 3])], ["ys"]),
               {"a": _x((4, 3)), "b": _x((5, 3))})
    yield Case("scan_symbolic_length_unfixed", _model([helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body,
                                                                        num_scan_inputs=1)],
                                                      ins + [V("xs", T.FLOAT, ["seq", 3])], ["sN", "ys"]),
               {"s0": _x((3,)), "xs": _x((4, 3))})
    yield Case("scan_symbolic_length", _model([helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body,
                                                                num_scan_inputs=1)],
                                              ins + [V("xs", T.FLOAT, ["seq", 3])], ["sN", "ys"]),
               {"s0": _x((3,)), "xs": _x((4, 3))})
    grow = _body([helper.make_node("Concat", ["s", "e"], ["so"], axis=0), helper.make_node("Identity", ["e"], ["eo"])],
                 [V("s", T.FLOAT, None), V("e", T.FLOAT, [3])], ["so", "eo"])
    yield Case("scan_state_grows", _model([helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=grow,
                                                            num_scan_inputs=1)],
                                          ins + [V("xs", T.FLOAT, [4, 3])], ["sN", "ys"]),
               {"s0": _x((3,)), "xs": _x((4, 3))})
    # opset 8: Scan-8 (a batch axis, sequence_lens): not unrolled
    body8 = _body([helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Identity", ["so"], ["eo"])],
                  [V("s", T.FLOAT, [3]), V("e", T.FLOAT, [3])], ["so", "eo"])
    yield Case("scan8", _model([helper.make_node("Scan", ["", "s0", "xs"], ["sN", "ys"], body=body8,
                                                 num_scan_inputs=1)],
                               [V("s0", T.FLOAT, [2, 3]), V("xs", T.FLOAT, [2, 4, 3])], ["sN", "ys"], opset=8),
               {"s0": _x((2, 3)), "xs": _x((2, 4, 3))})


def scan_cases() -> Iterator[Case]:
    yield from _axes_cases()
    yield from _shape_cases()
    yield from _type_cases()
    for length in (1, 7, 64):
        yield _rnn_case(length)
    yield from _nested_cases()
    yield from _edge_cases()


# -- an If on a run-time condition -----------------------------------------------------------------------------------

def _branches(kind: str):
    g = helper.make_graph
    if kind == "same":
        return (g([helper.make_node("Add", ["x", "x"], ["t"])], "then", [], [U(name="t")]),
                g([helper.make_node("Mul", ["x", "x"], ["e"])], "else", [], [U(name="e")]))
    if kind == "shapes":   # (two shapes: refused)
        return (g([_const("r", np.array([3, 2], np.int64)), helper.make_node("Tile", ["x", "r"], ["t"])], "then", [],
                  [U(name="t")]),
                g([helper.make_node("ReduceSum", ["x"], ["e"], keepdims=0)], "else", [], [U(name="e")]))
    if kind == "transposed":   # (one size, two shapes: refused)
        return (g([helper.make_node("Transpose", ["x"], ["t"])], "then", [], [U(name="t")]),
                g([helper.make_node("Relu", ["x"], ["e"])], "else", [], [U(name="e")]))
    if kind == "types":   # (two types: onnxruntime refuses the model)
        return (g([helper.make_node("Relu", ["x"], ["t"])], "then", [], [U(name="t")]),
                g([helper.make_node("Cast", ["x"], ["e"], to=T.INT64)], "else", [], [U(name="e")]))
    if kind == "several":   # (three outputs, a branch initializer, a branch reading the graph's later value)
        w = numpy_helper.from_array(np.full((2, 3), 2, np.float32), "w")
        return (g([helper.make_node("Mul", ["x", "w"], ["t0"]), helper.make_node("Relu", ["x"], ["t1"]),
                   helper.make_node("Identity", ["z"], ["t2"])], "then", [], [U(name="t0"), U(name="t1"), U(name="t2")],
                  initializer=[w]),
                g([helper.make_node("Sub", ["x", "x"], ["e0"]), helper.make_node("Neg", ["x"], ["e1"]),
                   helper.make_node("Neg", ["z"], ["e2"])], "else", [], [U(name="e0"), U(name="e1"), U(name="e2")]))
    if kind == "nested":   # (a fed If in a branch, on the same condition negated)
        inner_t = g([helper.make_node("Sin", ["x"], ["it"])], "it", [], [U(name="it")])
        inner_e = g([helper.make_node("Cos", ["x"], ["ie"])], "ie", [], [U(name="ie")])
        return (g([helper.make_node("Not", ["c"], ["nc"]),
                   helper.make_node("If", ["nc"], ["t"], then_branch=inner_t, else_branch=inner_e)], "then", [],
                  [U(name="t")]),
                g([helper.make_node("Exp", ["x"], ["e"])], "else", [], [U(name="e")]))
    raise ValueError(kind)


def fed_if_cases() -> Iterator[Case]:
    x = _x((2, 3))
    for kind, cshape, cond, opset in itertools.product(["same", "shapes", "transposed", "types", "several", "nested"],
                                                      [[], [1]], [True, False], [11, 19, 25]):
        th, el = _branches(kind)
        outs = ["y0", "y1", "y2"] if kind == "several" else ["y"]
        nodes = [helper.make_node("Relu", ["x"], ["z"]), helper.make_node("If", ["c"], outs, then_branch=th,
                                                                          else_branch=el)]
        ins = [V("x", T.FLOAT, [2, 3]), V("c", T.BOOL, cshape)]
        yield Case(f"fed_if{opset}_{kind}_c{cshape}_{cond}", _model(nodes, ins, outs, opset=opset),
                   {"x": x, "c": np.full(cshape, cond)})
    # a condition computed from what the input holds (each value), the output read on
    for sign in (1, -1):
        th, el = _branches("same")
        nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), _const("zero", np.float32(0)),
                 helper.make_node("Greater", ["s", "zero"], ["c"]),
                 helper.make_node("If", ["c"], ["y"], then_branch=th, else_branch=el),
                 helper.make_node("Softmax", ["y"], ["out"])]
        yield Case(f"fed_if_computed_{sign}", _model(nodes, [V("x", T.FLOAT, [2, 3])], ["out"]),
                   {"x": np.abs(x) * sign})
    # a fed If in a Loop's body (a constant trip count), on the carried value's sum
    th = helper.make_graph([helper.make_node("Add", ["v", "v"], ["t"])], "then", [], [U(name="t")])
    el = helper.make_graph([helper.make_node("Sub", ["v", "v"], ["e"])], "else", [], [U(name="e")])
    body = _body([helper.make_node("Identity", ["cin"], ["cout"]), helper.make_node("ReduceSum", ["v"], ["s"],
                                                                                   keepdims=0),
                  _const("zero", np.float32(0)), helper.make_node("Greater", ["s", "zero"], ["c"]),
                  helper.make_node("If", ["c"], ["vo"], then_branch=th, else_branch=el)],
                 [V("i", T.INT64, []), V("cin", T.BOOL, []), V("v", T.FLOAT, [2, 3])], [V("cout", T.BOOL, []), "vo"])
    nodes = [_const("n", np.int64(3)), _const("yes", np.array(True)),
             helper.make_node("Loop", ["n", "yes", "x"], ["xf"], body=body)]
    yield Case("fed_if_in_loop", _model(nodes, [V("x", T.FLOAT, [2, 3])], ["xf"]), {"x": np.abs(x)})


# -- a Loop of a run-time trip count or condition -----------------------------------------------------------------------

def fed_loop_cases() -> Iterator[Case]:
    x = _x((2, 3))
    for scanned, fed in itertools.product([True, False], ["trip", "cond", "both"]):
        body = _body([helper.make_node("Identity", ["cin"], ["cout"]), helper.make_node("Add", ["v", "v"], ["vo"]),
                      helper.make_node("Relu", ["vo"], ["sc"])],
                     [V("i", T.INT64, []), V("cin", T.BOOL, []), V("v", T.FLOAT, [2, 3])],
                     [V("cout", T.BOOL, []), "vo"] + (["sc"] if scanned else []))
        outs = ["y", "ys"] if scanned else ["y"]
        nodes, ins, feeds = [], [V("x", T.FLOAT, [2, 3])], {"x": x}
        if fed == "cond":
            nodes.append(_const("m", np.int64(3)))
        else:
            ins.append(V("m", T.INT64, []))
            feeds["m"] = np.array(3, np.int64)
        if fed == "trip":
            nodes.append(_const("c", np.array(True)))
        else:
            ins.append(V("c", T.BOOL, []))
            feeds["c"] = np.array(True)
        nodes.append(helper.make_node("Loop", ["m", "c", "x"], outs, body=body))
        yield Case(f"fed_loop_{fed}_{'scanned' if scanned else 'carried'}", _model(nodes, ins, outs), feeds)


# -- the branch an If on a constant does not take ---------------------------------------------------------------------

def _untaken(else_nodes, else_out, inputs=None, then_out=None, opset: int = 19, cond: bool = True,
             domains=()) -> onnx.ModelProto:
    th = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [], then_out or [U(name="t")])
    el = helper.make_graph(else_nodes, "else", [], [U(name=o) if isinstance(o, str) else o for o in else_out])
    if not cond:
        th, el = el, th
        th.name, el.name = "then", "else"
    nodes = [_const("c", np.array(cond)), helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th,
                                                           else_branch=el)]
    m = _model(nodes, inputs or [V("x", T.FLOAT, [2, 3])], ["y"], opset=opset)
    m.opset_import.extend(helper.make_opsetid(d, 1) for d in domains)
    return m


def _i64(name, v):
    return _const(name, np.array(v, np.int64))


#: the untaken branch's nodes and outputs, and whether onnxruntime loads the model
UNTAKEN: dict[str, tuple[list, list, bool]] = {
    "valid_other_ops": ([helper.make_node("Mul", ["x", "x"], ["e"])], ["e"], True),
    "valid_declared_other_shape": ([helper.make_node("Mul", ["x", "x"], ["e"])], [V("e", T.FLOAT, [7])], True),
    "valid_other_rank": ([helper.make_node("ReduceSum", ["x"], ["e"], keepdims=0)], ["e"], True),
    "valid_reshape_of_wrong_count": ([_i64("k", [5, 5]), helper.make_node("Reshape", ["x", "k"], ["e"])], ["e"], True),
    "valid_contrib_op": ([helper.make_node("FastGelu", ["x"], ["e"], domain="com.microsoft")], ["e"], True),
    "valid_nested_if": ([_const("d", np.array(False)), helper.make_node(
        "If", ["d"], ["e"], then_branch=helper.make_graph([helper.make_node("Neg", ["x"], ["n"])], "a", [], [U(name="n")]),
        else_branch=helper.make_graph([helper.make_node("Abs", ["x"], ["b"])], "b", [], [U(name="b")]))], ["e"], True),
    "unknown_op": ([helper.make_node("Frobnicate", ["x"], ["e"])], ["e"], False),
    "op_not_at_opset": ([helper.make_node("Gelu", ["x"], ["e"])], ["e"], False),   # (Gelu is opset 20)
    "domain_not_imported": ([helper.make_node("Relu", ["x"], ["e"], domain="com.nope")], ["e"], False),
    "required_attribute_missing": ([helper.make_node("Concat", ["x", "x"], ["e"])], ["e"], False),
    "unknown_attribute": ([helper.make_node("Relu", ["x"], ["e"], bogus=3)], ["e"], False),
    "too_many_inputs": ([helper.make_node("Relu", ["x", "x"], ["e"])], ["e"], False),
    "types_bound_apart": ([_i64("k", [1]), helper.make_node("Add", ["x", "k"], ["e"])], ["e"], False),
    "cast_to_no_type": ([helper.make_node("Cast", ["x"], ["e"], to=999)], ["e"], False),
    "transpose_perm_out_of_rank": ([helper.make_node("Transpose", ["x"], ["e"], perm=[0, 5])], ["e"], False),
    "gather_axis_out_of_rank": ([_i64("k", 0), helper.make_node("Gather", ["x", "k"], ["e"], axis=4)], ["e"], False),
    "matmul_of_declared_dims": ([helper.make_node("MatMul", ["x", "x"], ["e"])], ["e"], False),
    "constants_mismatch": ([_const("a", np.ones((2, 3), np.float32)), _const("b", np.ones((4, 5), np.float32)),
                            helper.make_node("MatMul", ["a", "b"], ["e0"]), helper.make_node("Add", ["e0", "x"], ["e"])],
                           ["e"], False),
    "reads_undefined": ([helper.make_node("Relu", ["nope"], ["e"])], ["e"], False),
    "more_outputs": ([helper.make_node("Relu", ["x"], ["e"]), helper.make_node("Neg", ["x"], ["e2"])], ["e", "e2"],
                     False),
    "nested_invalid": ([_const("d", np.array(True)), helper.make_node(
        "If", ["d"], ["e"], then_branch=helper.make_graph([helper.make_node("Frobnicate", ["x"], ["n"])], "a", [],
                                                          [U(name="n")]),
        else_branch=helper.make_graph([helper.make_node("Abs", ["x"], ["b"])], "b", [], [U(name="b")]))], ["e"], False),
}


def untaken_cases() -> Iterator[Case]:
    x = _x((2, 3))
    for (name, (nodes, outs, _loads)), cond in itertools.product(UNTAKEN.items(), [True, False]):
        domains = ("com.microsoft",) if name == "valid_contrib_op" else ()
        yield Case(f"untaken_{name}_{cond}", _untaken(nodes, outs, cond=cond, domains=domains), {"x": x})
    # a branch that does not run because of a shape, invalid for that shape (a symbolic dim as onnxruntime sees it)
    nodes = [helper.make_node("Shape", ["x"], ["s"]), _i64("zero", 0), helper.make_node("Gather", ["s", "zero"], ["d0"]),
             _i64("one", 1), helper.make_node("Equal", ["d0", "one"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=helper.make_graph(
                 [_i64("ax", [0]), helper.make_node("Squeeze", ["x", "ax"], ["t"])], "then", [], [U(name="t")]),
                 else_branch=helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [U(name="e")]))]
    yield Case("untaken_squeeze_of_a_symbolic_dim", _model(nodes, [V("x", T.FLOAT, ["n", 3])], ["y"]), {"x": x})


def all_cases() -> Iterator[Case]:
    for make in (scan_cases, fed_if_cases, fed_loop_cases, untaken_cases):
        yield from make()


# -- the comparison ----------------------------------------------------------------------------------------------------

#: memplan's deliberate refusals of what onnxruntime runs (words of the refusal): a Loop of a run-time trip count or
#: condition (naming what that leaves unknown), an If whose branches make an output of two shapes, a Scan over the
#: unroll bound or of a length no fixed dim gives, one of no iteration with scan outputs, and Scan-8
KNOWN_REFUSALS = ("which iterations run is known only at run time", "is symbolic ('seq') and not fixed", "which branch runs is known only at run time",
                  "over the 64 iterations a Scan is unrolled to", "how many iterations run is known only at run time",
                  "it runs no iteration", "is not unrolled at import")
FAILING = ("MISMATCH", "over-refusal", "planned, onnxruntime refuses", "RAW")


#: the import's fixed dims of the cases whose inputs have symbolic ones (by label)
DIMS = {"scan_symbolic_length": {"seq": 4}, "untaken_squeeze_of_a_symbolic_dim": {"n": 2}}


def imported(case: Case):
    """``sweep65.imported(case)`` (with the case's ``DIMS``) and the model the import planned once its control flow
    was expanded (None where it expanded none or refused)."""
    seen: list = []
    real = onnx_importer._expanded

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out[0])
        return out

    onnx_importer._expanded = spy
    try:
        if case.label in DIMS:
            try:
                g, refusal, raw = import_onnx(case.model, dims=DIMS[case.label]), None, []
            except MemplanError as exc:
                g, refusal, raw = None, str(exc).split("\n")[0], []
        else:
            g, refusal, raw = sweep65.imported(case)
    finally:
        onnx_importer._expanded = real
    expanded = seen[0] if seen and g is not None and seen[0] is not case.model else None
    return g, refusal, raw, expanded


def _expanded_differences(case: Case, g, expanded) -> list[str]:
    """Every planned value of the expanded model at the bytes onnxruntime makes running it, and its outputs equal the
    model's (``case.feeds``)."""
    real = ort_sizes(expanded, case.feeds)
    if real is None:
        return [f"{case.label}: onnxruntime cannot run the expanded model"]
    _, bad = size_mismatches(g, real, f"{case.label}: expanded ")
    s0, s1 = sweep65._session(case.model), sweep65._session(expanded)
    names = [o.name for o in s0.get_outputs()]
    for name, a, b in zip(names, s0.run(None, case.feeds), s1.run(names, case.feeds)):
        pairs = list(zip(a, b)) if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) else [(a, b)]
        for x, y in pairs:   # (a sequence output: tensor by tensor, round 70)
            tol = 1e-2 if getattr(x, "dtype", None) == np.float16 else 1e-5   # (float16 sums rounded at each step)
            if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or x.shape != y.shape or \
                    not np.allclose(x, y, rtol=tol, atol=tol, equal_nan=True):
                bad.append(f"{case.label}: the expanded model's {name!r} differs from the model's")
                break
    return bad


def compare(case: Case) -> tuple[str, list[str]]:
    """The case's class (see the module's docstring) and its lines to print."""
    g, refusal, raw, expanded = imported(case)
    if raw:
        return "RAW", raw
    status, real = sweep68._ort_values(case)
    if status != "ok":
        if g is None:
            return "both refuse", []
        return "planned, onnxruntime refuses", [f"{case.label}: {real[''][:220]}"]
    if g is None:
        if any(w in refusal for w in KNOWN_REFUSALS):
            return "known refusal", [f"{case.label}: {refusal[:220]}"]
        return "over-refusal", [f"{case.label}: memplan refuses what onnxruntime runs: {refusal[:220]}"]
    bad = sweep68._differences(case, g, real, "onnxruntime")
    if expanded is not None:
        bad += _expanded_differences(case, g, expanded)
    return ("MISMATCH", bad) if bad else ("agree", [])


def run(cases: list[Case], show: int = 20, out=sys.stdout) -> Counter:
    return driver.run(cases, compare, show, out)


def main(argv: list[str]) -> int:
    show, words = driver.options(argv)
    return driver.status(run(driver.chosen(all_cases(), words), show), FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
