"""ONNX importer, round 64: control flow whose course is known at import (``importers/onnx/control_flow.py``).

An ``If`` on a constant condition (an initializer, a Constant, or one the inputs' fixed shapes fold to) is its taken
branch; a ``Loop`` of a constant trip count whose condition stays true is its body repeated, loop-carried values
threaded, scan outputs stacked. Each model is checked against onnxruntime 1.32: its graph outputs' shapes and dtypes,
and every value the expansion makes against what onnxruntime makes running the expanded model (which must compute
the same outputs as the model as written). Everything else is one error naming the node and why.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_sizes, size_mismatches  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import control_flow, import_onnx  # noqa: E402
from memplan.importers.onnx import importer as onnx_importer  # noqa: E402

V = helper.make_tensor_value_info
X = V("x", T.FLOAT, [2, 3])
FX = {"x": np.arange(6, dtype=np.float32).reshape(2, 3) - 2}


def _model(nodes, outputs, inits=(), inputs=(X,), opset: int = 18):
    g = helper.make_graph(nodes, "g", list(inputs), [o if not isinstance(o, str) else helper.ValueInfoProto(name=o)
                                                     for o in outputs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def _graph(nodes, outputs, name="body", inputs=(), inits=()):
    return helper.make_graph(nodes, name, list(inputs), [helper.ValueInfoProto(name=o) if isinstance(o, str) else o
                                                         for o in outputs], list(inits))


def _i64(value, name):
    return nh.from_array(np.array(value, np.int64), name)


def _bool(value, name):
    return nh.from_array(np.array(value, np.bool_), name)


def _session(model):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _expanded_model(model, monkeypatch, **options):
    """The model the import plans: ``model`` once its control flow is expanded (caught on its way through)."""
    seen = []
    real = onnx_importer._expanded

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out[0])
        return out

    monkeypatch.setattr(onnx_importer, "_expanded", spy)
    import_onnx(model, **options)
    monkeypatch.setattr(onnx_importer, "_expanded", real)
    assert seen, "the import expanded nothing"
    return seen[0]


def _planned_as_onnxruntime_runs(model, monkeypatch, feeds=FX, **options) -> memplan.Graph:
    """Import ``model`` and hold it against onnxruntime: the graph outputs' shapes and dtypes are those of the run
    of the model as written; the expanded model computes the same outputs, and every value of it is planned at the
    bytes onnxruntime makes; the plan verifies."""
    g = import_onnx(model, **options)
    s = _session(model)
    want = s.run(None, feeds)
    by_id = {t.id: t for t in g.tensors}
    for o, value in zip(s.get_outputs(), want):
        t = by_id[o.name]
        assert tuple(t.attrs["shape"]) == value.shape, (o.name, t.attrs, value.shape)
        assert np.dtype(t.attrs["dtype"] if t.attrs["dtype"] != "float" else "float32") == value.dtype, o.name
        assert t.size == value.nbytes
    expanded = _expanded_model(model, monkeypatch, **options)
    assert not control_flow.has_control_flow(expanded.graph)
    got = _session(expanded).run([o.name for o in s.get_outputs()], feeds)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    real = ort_sizes(expanded, feeds, strict=True)
    compared, bad = size_mismatches(g, real)
    assert not bad, bad
    assert compared >= len(g.nodes)
    memplan.verify(g, memplan.plan(g))
    return g


def _branches(then_nodes, then_out, else_nodes, else_out):
    return dict(then_branch=_graph(then_nodes, [then_out], "then"), else_branch=_graph(else_nodes, [else_out], "else"))


# -- If ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("taken", [True, False])
@pytest.mark.parametrize("how", ["initializer", "constant"])
def test_if_on_a_constant_condition_is_its_taken_branch(taken, how, monkeypatch):
    cond = [_bool(taken, "c")] if how == "initializer" else []
    nodes = [] if how == "initializer" else [helper.make_node("Constant", [], ["c"], value=_bool(taken, "c"))]
    branches = _branches([helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Add", ["t", "x"], ["a"])], "a",
                         [helper.make_node("Reshape", ["x", "six"], ["r"])], "r")
    m = _model(nodes + [helper.make_node("If", ["c"], ["y"], name="if0", **branches),
                        helper.make_node("Neg", ["y"], ["z"])], ["z"], cond + [_i64([6], "six")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    ops = [n.op for n in g.nodes]
    assert ops == (["Relu", "Add", "Neg"] if taken else ["Reshape", "Neg"])
    assert all(n.id.startswith("if0/then/" if taken else "if0/else/") for n in g.nodes[:-1])


def test_if_on_a_condition_the_shapes_fold_to_is_planned_as_onnxruntime_runs_it(monkeypatch):
    """``Equal(Size(Shape(x)), 2)``: the shape check of exported code, constant once x's shape is."""
    branches = _branches([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0])], "t",
                         [helper.make_node("Identity", ["x"], ["e"])], "e")
    m = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Size", ["s"], ["r"]),
                helper.make_node("Equal", ["r", "two"], ["c"]),
                helper.make_node("If", ["c"], ["y"], name="check", **branches),
                helper.make_node("MatMul", ["y", "x"], ["z"])], ["z"], [_i64(2, "two")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    assert "check/then/Transpose_0" in {n.id for n in g.nodes}
    assert {t.id: t.attrs["shape"] for t in g.tensors}["z"] == [3, 3]


def test_if_of_a_symbolic_shape_folds_once_the_dimension_is_fixed():
    """The condition is known only once ``--batch`` fixes the input's leading dimension: planned for each."""
    x = V("x", T.FLOAT, ["n", 3])
    branches = _branches([helper.make_node("Relu", ["x"], ["t"])], "t", [helper.make_node("Neg", ["x"], ["e"])], "e")
    m = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["d"], axis=0),
                helper.make_node("Greater", ["d", "one"], ["c"]),
                helper.make_node("If", ["c"], ["y"], name="big", **branches)], ["y"],
               [_i64(0, "zero"), _i64(1, "one")], inputs=[x])
    assert [n.op for n in import_onnx(m, batch=4).nodes][-1] == "Relu"
    assert [n.op for n in import_onnx(m, batch=1).nodes][-1] == "Neg"


def test_nested_if_inside_if_each_condition_folded(monkeypatch):
    inner = dict(then_branch=_graph([helper.make_node("Mul", ["x", "x"], ["m"])], ["m"], "ithen"),
                 else_branch=_graph([helper.make_node("Sub", ["x", "x"], ["d"])], ["d"], "ielse"))
    # the inner condition is computed inside the outer branch, from a value of that branch
    outer_then = _graph([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ReduceProd", ["s"], ["p"],
                                                                                    keepdims=0),
                         helper.make_node("Equal", ["p", "six"], ["ic"]),
                         helper.make_node("If", ["ic"], ["iy"], name="inner", **inner),
                         helper.make_node("Relu", ["iy"], ["o"])], ["o"], "othen")
    outer_else = _graph([helper.make_node("Neg", ["x"], ["n"])], ["n"], "oelse")
    m = _model([helper.make_node("If", ["c"], ["y"], name="outer", then_branch=outer_then, else_branch=outer_else)],
               ["y"], [_bool(True, "c"), _i64(6, "six")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    ids = [n.id for n in g.nodes]
    assert "outer/then/inner/then/Mul_0" in ids and not any("else" in i for i in ids)


def test_branch_names_that_collide_with_the_main_graph_are_renamed(monkeypatch):
    """The branch makes ``u`` and ``t2``, whose inlined names ``if0/then/u`` and ``if0/then/t2`` the main graph already
    has: the main graph's values keep their names and bytes; the branch's get fresh ones, so no value is made
    twice."""
    branches = _branches([helper.make_node("Reshape", ["x", "six"], ["t2"]), helper.make_node("Neg", ["t2"], ["u"]),
                          helper.make_node("Relu", ["u"], ["r"])], "r",
                         [helper.make_node("Identity", ["x"], ["e"])], "e")
    m = _model([helper.make_node("Tanh", ["x"], ["if0/then/t2"]), helper.make_node("Sigmoid", ["x"], ["if0/then/u"]),
                helper.make_node("If", ["c"], ["y"], name="if0", **branches),
                helper.make_node("Add", ["if0/then/t2", "if0/then/u"], ["w"])], ["y", "w"],
               [_bool(True, "c"), _i64([6], "six")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    shapes = {t.id: t.attrs["shape"] for t in g.tensors}
    assert shapes["if0/then/t2"] == [2, 3] and shapes["if0/then/u"] == [2, 3] and shapes["y"] == [6]
    assert shapes["if0/then/t2_1"] == [6] and shapes["if0/then/u_1"] == [6]
    assert len({t.id for t in g.tensors}) == len(g.tensors)


#: the ops a random branch applies: each keeps 6 elements, in shapes the If's output may change
BRANCH_OPS = (("Relu", {}), ("Neg", {}), ("Flatten", {"axis": 0}), ("Transpose", {}))


@st.composite
def _if_trees(draw, depth=0, counter=None):
    """A random branch (a graph of a few ops on ``x``, and ``If`` nodes nested in it up to depth 3, each on a
    constant condition of its own), returned as ``(nodes, output, initializers)``."""
    counter = counter if counter is not None else [0]
    counter[0] += 1
    k = counter[0]
    nodes, inits, value = [], [], "x"
    for j in range(draw(st.integers(1, 3))):
        if depth < 3 and draw(st.booleans()):
            then_nodes, then_out, then_inits = draw(_if_trees(depth + 1, counter))
            else_nodes, else_out, else_inits = draw(_if_trees(depth + 1, counter))
            cond = f"c{k}_{j}"
            inits += [_bool(draw(st.booleans()), cond)] + then_inits + else_inits
            out = f"if{k}_{j}"
            nodes.append(helper.make_node("If", [cond], [out], name=f"n{k}_{j}",
                                          then_branch=_graph(then_nodes, [then_out], f"t{k}_{j}"),
                                          else_branch=_graph(else_nodes, [else_out], f"e{k}_{j}")))
            value = out
        else:
            op, attrs = draw(st.sampled_from(BRANCH_OPS))
            out = f"v{k}_{j}"
            nodes.append(helper.make_node(op, [value], [out], name=f"n{k}_{j}", **attrs))
            value = out
    return nodes, value, inits


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_if_trees())
def test_any_tree_of_ifs_on_constant_conditions_is_planned_as_onnxruntime_runs_it(tree, monkeypatch):
    nodes, out, inits = tree
    if not any(n.op_type == "If" for n in nodes):
        nodes, out = nodes + [helper.make_node("If", ["c_top"], ["y_top"], name="top", **_branches(
            [helper.make_node("Relu", [out], ["r_top"])], "r_top", [helper.make_node("Neg", [out], ["g_top"])],
            "g_top"))], "y_top"
        inits = inits + [_bool(True, "c_top")]
    m = _model(nodes + [helper.make_node("Identity", [out], ["y"])], ["y"], inits)
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    assert all(n.op != "If" for n in g.nodes)


@pytest.mark.parametrize("nested", [False, True])
def test_a_branch_value_of_an_outer_name_is_refused_as_onnxruntime_refuses_it(nested):
    """ONNX's single assignment spans subgraphs: a branch making ``t`` where the graph around has ``t``."""
    from onnx_oracle import ort_refuses

    branches = _branches([helper.make_node("Relu", ["x"], ["t"])], "t", [helper.make_node("Neg", ["x"], ["e"])], "e")
    node = helper.make_node("If", ["c"], ["iy" if nested else "y"], name="if0", **branches)
    nodes = [helper.make_node("Tanh", ["x"], ["t"])]
    if nested:   # the outer name is the enclosing branch's own
        node = helper.make_node("If", ["c"], ["y"], name="out", then_branch=_graph(
            [helper.make_node("Tanh", ["x"], ["t"]), node], ["iy"], "o"),
            else_branch=_graph([helper.make_node("Neg", ["x"], ["y2"])], ["y2"], "oe"))
        nodes = []
    m = _model(nodes + [node], ["y"], [_bool(True, "c")])
    assert ort_refuses(m)
    who = r"node 'out' \(If\): its then_branch's node 'if0'" if nested else r"node 'if0'"
    with pytest.raises(GraphError, match=rf"{who} \(If\): its then_branch makes 't', a name the graph around"):
        import_onnx(m)


def test_a_branch_returning_an_outer_value_as_it_is_is_refused_as_onnxruntime_refuses_it():
    from onnx_oracle import ort_refuses

    branches = _branches([], "x", [helper.make_node("Neg", ["x"], ["e"])], "e")
    m = _model([helper.make_node("If", ["c"], ["y"], name="if0", **branches), helper.make_node("Relu", ["y"], ["z"])],
               ["z"], [_bool(True, "c")])
    assert ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'if0' \(If\): its then_branch returns 'x', a value of the graph "
                                         "around it, as it is"):
        import_onnx(m)


# -- Loop ----------------------------------------------------------------------------------------------------------

def _loop_body(cond="pass", scans=1, extra=()):
    """v <- v * 2 + i (i the iteration, cast to float); scan outputs: v's new value (and its sum)."""
    nodes = [helper.make_node("Cast", ["i"], ["fi"], to=T.FLOAT), helper.make_node("Mul", ["v", "two_f"], ["v2"]),
             helper.make_node("Add", ["v2", "fi"], ["v_out"]), helper.make_node("ReduceSum", ["v_out"], ["sum"],
                                                                               keepdims=0), *extra]
    outs = ["v_out", "sum"][:scans]
    if cond == "pass":
        cond_out = "cond_in"
    elif cond == "identity":
        nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
        cond_out = "cond_out"
    elif cond == "constant":
        nodes.append(helper.make_node("Constant", [], ["cond_out"], value=_bool(True, "t")))
        cond_out = "cond_out"
    else:   # computed: the body decides when to stop
        nodes.append(helper.make_node("Less", ["i", "three"], ["cond_out"]))
        cond_out = "cond_out"
    return _graph(nodes, [V(cond_out, T.BOOL, []), "v_out", *outs], inputs=[
        V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v", T.FLOAT, [2, 3])])


def _loop_model(trip, body, cond_input="", cond_value=None, outputs=("vf", "ss"), opset=18):
    inits = [nh.from_array(np.array(2, np.float32), "two_f"), _i64(3, "three")]
    if isinstance(trip, int):
        inits.append(_i64(trip, "M"))
    if cond_value is not None:
        inits.append(_bool(cond_value, cond_input))
    nodes = [helper.make_node("Loop", ["M", cond_input, "x"], list(outputs), name="loop0", body=body)]
    if not isinstance(trip, int):
        nodes = trip + nodes
    return _model(nodes, list(outputs), inits, opset=opset)


@pytest.mark.parametrize("cond", ["pass", "identity", "constant"])
def test_loop_of_a_constant_trip_count_is_unrolled(cond, monkeypatch):
    g = _planned_as_onnxruntime_runs(_loop_model(4, _loop_body(cond)), monkeypatch)
    shapes = {t.id: t.attrs["shape"] for t in g.tensors}
    assert shapes["vf"] == [2, 3] and shapes["ss"] == [4, 2, 3]
    assert sum(n.op == "Mul" for n in g.nodes) == 4
    assert "loop0/3/Mul_1" in {n.id for n in g.nodes}


def test_scan_outputs_before_opset_13_stack_with_unsqueeze_s_axes_attribute(monkeypatch):
    g = _planned_as_onnxruntime_runs(_loop_model(3, _loop_body(scans=2), outputs=("vf", "ss", "sums"), opset=11),
                                     monkeypatch)
    assert {t.id: t.attrs["shape"] for t in g.tensors}["sums"] == [3]


def test_loop_trip_count_folded_from_a_shape_and_a_constant_true_condition_input(monkeypatch):
    trip = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ReduceMax", ["s"], ["M"], keepdims=0)]
    m = _loop_model(trip, _loop_body(scans=2), cond_input="go", cond_value=True, outputs=("vf", "ss", "sums"))
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    shapes = {t.id: t.attrs["shape"] for t in g.tensors}
    assert shapes["ss"] == [3, 2, 3] and shapes["sums"] == [3]


@pytest.mark.parametrize("how", ["zero trips", "false condition"])
def test_a_loop_that_runs_no_iteration_returns_its_initial_values(how, monkeypatch):
    body = _loop_body(scans=0)
    m = _loop_model(0, body, outputs=("vf",)) if how == "zero trips" else _loop_model(
        5, body, cond_input="go", cond_value=False, outputs=("vf",))
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    assert [n.op for n in g.nodes] == ["Identity"]


def test_a_loop_body_s_constants_are_planned_once_not_per_iteration(monkeypatch):
    body = _graph([helper.make_node("Constant", [], ["k"], value=nh.from_array(np.full((2, 3), 3, np.float32), "k")),
                   helper.make_node("Add", ["v", "bias"], ["a"]), helper.make_node("Mul", ["a", "k"], ["v_out"])],
                  [V("cond_in", T.BOOL, []), "v_out"],
                  inputs=[V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v", T.FLOAT, [2, 3])],
                  inits=[nh.from_array(np.ones((2, 3), np.float32), "bias")])
    m = _model([helper.make_node("Loop", ["M", "", "x"], ["vf"], name="loop0", body=body)], ["vf"], [_i64(5, "M")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    weights = sorted(t.id for t in g.tensors if t.kind == "weight")
    assert weights == ["M", "loop0/bias", "loop0/k"]
    assert [n.op for n in g.nodes].count("Mul") == 5


def test_if_inside_a_loop_body_folds_per_iteration(monkeypatch):
    """The body's If tests the iteration number: each copy of the body folds its own condition."""
    inner = dict(then_branch=_graph([helper.make_node("Neg", ["v"], ["n"])], ["n"], "first"),
                 else_branch=_graph([helper.make_node("Add", ["v", "x"], ["a"])], ["a"], "later"))
    body = _graph([helper.make_node("Equal", ["i", "zero"], ["is0"]),
                   helper.make_node("If", ["is0"], ["v_out"], name="step", **inner),
                   helper.make_node("Identity", ["v_out"], ["seen"])],
                  [V("cond_in", T.BOOL, []), "v_out", "seen"],
                  inputs=[V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v", T.FLOAT, [2, 3])])
    m = _model([helper.make_node("Loop", ["M", "", "x"], ["vf", "ss"], name="loop0", body=body)], ["vf", "ss"],
               [_i64(3, "M"), _i64(0, "zero")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    ids = [n.id for n in g.nodes]
    assert "loop0/0/step/then/Neg_0" in ids and "loop0/1/step/else/Add_0" in ids and "loop0/2/step/else/Add_0" in ids
    assert not any(i.startswith("loop0/0/") and "else" in i for i in ids)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trips=st.integers(0, 6), scans=st.integers(0, 2), cond=st.sampled_from(["pass", "identity", "constant"]))
def test_any_small_loop_is_planned_as_onnxruntime_runs_it(trips, scans, cond, monkeypatch):
    outputs = ("vf", "ss", "sums")[:1 + scans]
    m = _loop_model(trips, _loop_body(cond, scans=scans), outputs=outputs)
    if trips == 0 and scans:
        with pytest.raises(GraphError, match="'loop0' \\(Loop\\): it runs no iteration .* scan outputs"):
            import_onnx(m)
        return
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    assert sum(n.op == "Mul" for n in g.nodes) == trips


def test_the_same_model_imports_to_the_same_graph_json():
    inner = dict(then_branch=_graph([helper.make_node("Neg", ["v"], ["n"])], ["n"], "first"),
                 else_branch=_graph([helper.make_node("Add", ["v", "x"], ["a"])], ["a"], "later"))
    body = _graph([helper.make_node("Equal", ["i", "zero"], ["is0"]),
                   helper.make_node("If", ["is0"], ["v_out"], **inner)],
                  [V("cond_in", T.BOOL, []), "v_out", "v_out"],
                  inputs=[V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v", T.FLOAT, [2, 3])])
    m = _model([helper.make_node("Loop", ["M", "", "x"], ["vf", "ss"], body=body)], ["vf", "ss"],
               [_i64(3, "M"), _i64(0, "zero")])
    first = json.dumps(import_onnx(m).to_dict(), sort_keys=True)
    assert first == json.dumps(import_onnx(m).to_dict(), sort_keys=True)
    assert "Loop_0/1/If_1/else/Add_0" in first


@pytest.mark.parametrize("batch", [1, 4])
def test_a_scripted_torch_export_of_shape_checks_and_a_shape_long_loop(batch, tmp_path, monkeypatch):
    """What ``torch.onnx.export`` of scripted code writes for a dynamic batch: an If on ``x.shape[0] > 1`` and a Loop
    of ``range(x.shape[0])``, both known once ``batch`` fixes the dimension."""
    torch = need("torch")

    class Checked(torch.nn.Module):
        def forward(self, x):
            if x.shape[0] > 1:
                x = x.relu()
            else:
                x = -x
            for _ in range(x.shape[0]):
                x = x * 2 + 1
            return x

    path = str(tmp_path / "m.onnx")
    torch.onnx.export(torch.jit.script(Checked()), (torch.ones(2, 3),), path, dynamo=False, opset_version=17,
                      input_names=["x"], dynamic_axes={"x": {0: "n"}})
    import onnx

    model = onnx.load(path)
    assert {"If", "Loop"} <= {n.op_type for n in model.graph.node}
    feeds = {"x": np.linspace(-1, 1, batch * 3, dtype=np.float32).reshape(batch, 3)}
    g = _planned_as_onnxruntime_runs(model, monkeypatch, feeds, batch=batch)
    ops = [n.op for n in g.nodes]
    assert ("Relu" in ops) == (batch > 1) and ("Neg" in ops) == (batch == 1)
    assert ops.count("Mul") == batch


# -- refusals ------------------------------------------------------------------------------------------------------

def test_a_loop_of_a_billion_iterations_is_refused_naming_the_bound():
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): its trip count 'M' is 1000000000, over the 64 "
                                         "iterations"):
        import_onnx(_loop_model(10**9, _loop_body()))


def test_the_unroll_bound_is_inclusive(monkeypatch):
    assert sum(n.op == "Mul" for n in import_onnx(_loop_model(control_flow.MAX_UNROLL, _loop_body())).nodes) == 64
    with pytest.raises(GraphError, match="over the 64 iterations"):
        import_onnx(_loop_model(control_flow.MAX_UNROLL + 1, _loop_body()))


def test_nested_loops_that_would_grow_the_graph_past_the_bound_are_refused_before_copying():
    body = _loop_body()
    for d in range(4):   # 64 ** 4 copies of the innermost body
        inner = helper.make_node("Loop", ["M", "", f"lv{d}"], [f"lvo{d}", f"ls{d}"], name=f"l{d}", body=body)
        body = _graph([inner], [V(f"lc{d}", T.BOOL, []), f"lvo{d}", f"ls{d}"], inputs=[
            V(f"li{d}", T.INT64, []), V(f"lc{d}", T.BOOL, []), V(f"lv{d}", T.FLOAT, [2, 3])])
    m = _model([helper.make_node("Loop", ["M", "", "x"], ["vf", "ss"], name="top", body=body)], ["vf", "ss"],
               [_i64(64, "M"), nh.from_array(np.array(2, np.float32), "two_f"), _i64(3, "three")])
    with pytest.raises(GraphError, match=r"node 'top' \(Loop\): unrolling it grows the graph past 1048576 nodes"):
        import_onnx(m)


@pytest.mark.parametrize("op", ["If", "Loop"])
def test_a_condition_or_trip_count_known_only_at_run_time_is_refused(op, monkeypatch):
    if op == "If":
        branches = _branches([helper.make_node("Relu", ["x"], ["t"])], "t", [helper.make_node("Neg", ["x"], ["e"])], "e")
        m = _model([helper.make_node("ReduceMax", ["x"], ["mx"], keepdims=0),
                    helper.make_node("Greater", ["mx", "zero_f"], ["c"]),
                    helper.make_node("If", ["c"], ["y"], name="if0", **branches)], ["y"],
                   [nh.from_array(np.array(0, np.float32), "zero_f")])
        what = "condition 'c'"
    else:
        m = _loop_model([helper.make_node("ReduceMax", ["x"], ["mf"], keepdims=0),
                         helper.make_node("Cast", ["mf"], ["M"], to=T.INT64)], _loop_body())
        what = "trip count 'M'"
    if op == "If":   # (round 69: both branches planned, the output selected between them)
        _planned_as_onnxruntime_runs(m, monkeypatch)
        return
    with pytest.raises(GraphError, match=rf"node '{op.lower()}0' \({op}\): its {what} is not a constant known at "
                                         r"import \(computed from what the graph inputs hold\)"):
        import_onnx(m)


def test_a_condition_that_is_a_graph_input_is_planned_both_branches(monkeypatch):
    # (round 64 refused it, "not a constant known at import (a graph input)"; round 69 plans both branches)
    branches = _branches([helper.make_node("Relu", ["x"], ["t"])], "t", [helper.make_node("Neg", ["x"], ["e"])], "e")
    m = _model([helper.make_node("If", ["c"], ["y"], name="if0", **branches)], ["y"],
               inputs=[X, V("c", T.BOOL, [])])
    for cond in (True, False):
        _planned_as_onnxruntime_runs(m, monkeypatch, feeds={**FX, "c": np.array(cond)})


def test_a_loop_whose_body_computes_its_condition_is_unrolled_while_it_folds_true(monkeypatch):
    # (refused until round 75; onnx75b unrolls it while its condition folds true: i < 3 holds after iterations 0-2)
    g = _planned_as_onnxruntime_runs(_loop_model(5, _loop_body("computed")), monkeypatch)
    assert sum(n.op == "Mul" for n in g.nodes) == 4


def test_a_loop_without_a_trip_count_is_refused():
    m = _loop_model(5, _loop_body(), cond_input="go", cond_value=True)
    m.graph.node[0].input[0] = ""
    with pytest.raises(GraphError, match=r"'loop0' \(Loop\): it has no trip count"):
        import_onnx(m)


@pytest.mark.parametrize("where", ["branch", "nested branch", "loop body"])
def test_a_subgraph_reading_an_undefined_name_is_refused_naming_it(where):
    bad = [helper.make_node("Add", ["x", "ghost"], ["t"])]
    if where == "loop body":
        body = _graph(bad + [helper.make_node("Identity", ["t"], ["v_out"])], [V("cond_in", T.BOOL, []), "v_out"],
                      inputs=[V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v", T.FLOAT, [2, 3])])
        m = _model([helper.make_node("Loop", ["M", "", "x"], ["vf"], name="n0", body=body)], ["vf"], [_i64(2, "M")])
        who, what = r"'n0' \(Loop\)", "body"
    else:
        branches = _branches(bad, "t", [helper.make_node("Neg", ["x"], ["e"])], "e")
        node = helper.make_node("If", ["c"], ["iy" if where == "nested branch" else "y"], name="n0", **branches)
        if where == "nested branch":
            node = helper.make_node("If", ["c"], ["y"], name="out", then_branch=_graph([node], ["iy"], "o"),
                                    else_branch=_graph([helper.make_node("Neg", ["x"], ["y2"])], ["y2"], "oe"))
        m = _model([node], ["y"], [_bool(True, "c")])
        who, what = (r"'out' \(If\)", "then_branch") if where == "nested branch" else (r"'n0' \(If\)", "then_branch")
    with pytest.raises(GraphError, match=rf"{who}: its {what} reads 'ghost', which neither"):
        import_onnx(m)


def _function_with_a_rank_check(branch_reads="a", inner_call=False):
    """Local function ``F(a)``: ``Relu(a)`` if ``a`` is 1-D (``Equal(Size(Shape(a)), 1)``), else ``Neg(a)``; called
    twice by the graph."""
    then_nodes = [helper.make_node("Relu", [branch_reads], ["t"])]
    if inner_call:
        then_nodes = [helper.make_node("G", [branch_reads], ["t"], domain="loc")]
    branches = _branches(then_nodes, "t", [helper.make_node("Neg", ["a"], ["e"])], "e")
    fn = helper.make_function("loc", "F", ["a"], ["b"], [
        helper.make_node("Shape", ["a"], ["s"]), helper.make_node("Size", ["s"], ["r"]),
        helper.make_node("Constant", [], ["one"], value=_i64(1, "one")), helper.make_node("Equal", ["r", "one"], ["c"]),
        helper.make_node("If", ["c"], ["b"], name="rank", **branches)], [helper.make_opsetid("", 18)])
    g_fn = helper.make_function("loc", "G", ["a"], ["b"], [helper.make_node("Abs", ["a"], ["b"])],
                                [helper.make_opsetid("", 18)])
    m = _model([helper.make_node("F", ["x"], ["y1"], domain="loc", name="call1"),
                helper.make_node("F", ["y1"], ["y2"], domain="loc", name="call2")], ["y2"],
               inputs=[V("x", T.FLOAT, [6])])
    m.opset_import.append(helper.make_opsetid("loc", 1))
    m.functions.extend([fn, g_fn])
    return m


def test_an_if_in_a_local_function_s_body_is_expanded_in_each_call(monkeypatch):
    g = _planned_as_onnxruntime_runs(_function_with_a_rank_check(), monkeypatch,
                                     {"x": np.linspace(-1, 1, 6, dtype=np.float32)})
    assert [n.op for n in g.nodes if n.op in ("Relu", "Neg")] == ["Relu", "Relu"]


@pytest.mark.parametrize("hazard", ["reads the caller's value", "calls a local function"])
def test_a_local_function_s_if_whose_branch_escapes_the_function_is_refused(hazard):
    """A function sees no value of its caller's (its branch reading ``x``, the graph's input, would be bound to it
    once inlined), and a call inside its branch binds its domain by the function's opset_import, which lacks it
    (round 64 review: such a call is inlined where the function imports its domain, tests/test_onnx_round64b.py)."""
    from onnx_oracle import ort_refuses

    m = (_function_with_a_rank_check(branch_reads="x") if hazard == "reads the caller's value"
         else _function_with_a_rank_check(inner_call=True))
    assert ort_refuses(m)
    if hazard == "reads the caller's value":
        match = r"local function loc:F \(called by node 'call1'\): its node 'rank' reads 'x', which is no input"
    else:
        match = (r"local function loc:F \(called by node 'call1'\): its node 'rank' \(If\): its subgraph's node 'G' "
                 r"\(loc:G\) is of domain 'loc', which the function does not import")
    with pytest.raises(GraphError, match=match):
        import_onnx(m)


def test_a_local_function_called_from_a_branch_is_inlined_not_planned_as_one_node(monkeypatch):
    """onnx's inliner inlines a call inside a branch too (round 64 review: it was refused); planned as one opaque
    node, its body's values would get no memory."""
    fn = helper.make_function("loc", "F", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["r"]),
                                                         helper.make_node("Add", ["r", "r"], ["b"])],
                              [helper.make_opsetid("", 18)])
    branches = _branches([helper.make_node("F", ["x"], ["t"], domain="loc", name="call")], "t",
                         [helper.make_node("Neg", ["x"], ["e"])], "e")
    m = _model([helper.make_node("If", ["c"], ["y"], name="if0", **branches)], ["y"], [_bool(True, "c")])
    m.opset_import.append(helper.make_opsetid("loc", 1))
    m.functions.append(fn)
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    assert sorted(n.op for n in g.nodes) == ["Add", "Relu"]


def test_a_scan_is_planned_as_onnxruntime_runs_it(monkeypatch):
    # (round 64 refused it, "its body runs once per slice"; round 69 unrolls it over its scan input's length)
    body = _graph([helper.make_node("Add", ["s_in", "xi"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["yo"])],
                  [V("s_out", T.FLOAT, [3]), V("yo", T.FLOAT, [3])],
                  inputs=[V("s_in", T.FLOAT, [3]), V("xi", T.FLOAT, [3])])
    m = _model([helper.make_node("Scan", ["s0", "x"], ["sf", "ys"], body=body, num_scan_inputs=1, name="scan0")],
               ["sf", "ys"], [nh.from_array(np.zeros(3, np.float32), "s0")])
    g = _planned_as_onnxruntime_runs(m, monkeypatch)
    assert {t.id: t.attrs["shape"] for t in g.tensors if t.id in ("sf", "ys")} == {"sf": [3], "ys": [2, 3]}


def test_the_cli_refuses_a_run_time_condition_in_one_line(tmp_path, capsys):
    import onnx

    from memplan.cli import main

    # (round 69: a fed If's branches of two shapes, as a fed condition is planned both branches)
    branches = _branches([helper.make_node("Relu", ["x"], ["t"])], "t",
                         [helper.make_node("ReduceSum", ["x"], ["e"], keepdims=0)], "e")
    path = tmp_path / "m.onnx"
    onnx.save(_model([helper.make_node("If", ["c"], ["y"], name="if0", **branches)], ["y"],
                     inputs=[X, V("c", T.BOOL, [])]), str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'if0' (If): its output #0 'y' (its condition 'c' known only at " \
        "run time) is [2, 3] where the then_branch runs and [] where the else_branch does" in err
    assert not (tmp_path / "g.json").exists()


def test_the_model_passed_in_is_not_modified():
    m = _loop_model(3, _loop_body())
    before = m.SerializeToString()
    import_onnx(m)
    assert m.SerializeToString() == before
