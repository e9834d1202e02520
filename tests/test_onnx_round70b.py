"""ONNX importer, round 70 (b): optional outputs of an If on a run-time condition; the fed-If scans made linear.

* onnx's ``test_if_opt`` (an If returning an optional sequence, empty in its then_branch) was refused "not as a
  tensor" while onnxruntime runs it. A fed If's optional output is now planned (``importers/onnx/fed_optionals.py``):
  the Optional of the branches' elements selected (a tensor by a Where, a sequence tensor by tensor), or, where one
  branch's optional is empty (no bytes), the other branch's; one whose maker the import cannot follow is refused
  naming the If, the output and the branch. Planned sizes are held against onnxruntime's on random inputs.
* ``fed_sequences._is_sequence`` scanned the graph's nodes for each If output a branch returns through Identity:
  quadratic in the Ifs (3,000: 12 s of a 15 s import). Each graph is now indexed once a pass (``Scope``).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

import onnxruntime as ort  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import control_flow, fed_optionals, fed_sequences, import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _if_opt():
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return next(c for c in node_cases.collect_testcases(None) if c.name == "test_if_opt").model


def _held_bytes(value) -> int:
    """The bytes of what onnxruntime returns for an optional output: None (empty), an array, or a list of them."""
    if value is None:
        return 0
    return sum(np.asarray(v).nbytes for v in value) if isinstance(value, list) else np.asarray(value).nbytes


def _ort_bytes(model, feeds: dict) -> dict[str, int]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return {k: _held_bytes(v) for k, v in zip(names, sess.run(names, feeds))}


def _sizes(model) -> dict[str, int]:
    return {t.id: t.size for t in import_onnx(model).tensors}


# -- onnx's test_if_opt ----------------------------------------------------------------------------------------------

def test_onnx_test_if_opt_is_planned_with_the_bytes_of_the_branch_that_holds_a_value():
    m = _if_opt()
    planned = _sizes(m)["sequence"]
    ran = {c: _ort_bytes(m, {"cond": np.array(c)})["sequence"] for c in (True, False)}
    assert ran == {True: 0, False: 20}, ran   # (then: empty; else: a sequence of one float[5])
    assert planned == 20


def test_onnx_test_if_opt_is_planned_the_same_every_time():
    m = _if_opt()
    a, b = (json.dumps(memplan.plan(import_onnx(m)).to_json(), sort_keys=True) for _ in range(2))
    assert a == b


# -- a fed If of optionals, against onnxruntime -----------------------------------------------------------------------

def _elem_type(kind: str):
    tensor = helper.make_tensor_type_proto(T.FLOAT, None)
    return helper.make_sequence_type_proto(tensor) if kind == "sequence" else tensor


def _branch(label: str, kind: str, holds: bool, source: str, count: int):
    """A branch returning an optional of ``kind`` (``tensor``/``sequence``): empty, or holding Relu(``source``) (a
    sequence of ``count`` of them)."""
    out = f"{label}_opt"
    if not holds:
        nodes = [helper.make_node("Optional", [], [out], type=_elem_type(kind))]
    elif kind == "tensor":
        nodes = [helper.make_node("Relu", [source], [f"{label}_r"]), helper.make_node("Optional", [f"{label}_r"], [out])]
    else:
        nodes = [helper.make_node("Relu", [source], [f"{label}_r{i}"]) for i in range(count)]
        nodes += [helper.make_node("SequenceConstruct", [f"{label}_r{i}" for i in range(count)], [f"{label}_s"]),
                  helper.make_node("Optional", [f"{label}_s"], [out])]
    vi = helper.make_value_info(out, helper.make_optional_type_proto(_elem_type(kind)))
    return helper.make_graph(nodes, label, [], [vi])


def _model(kind: str, holds: tuple[bool, bool], rows: tuple[int, int], counts: tuple[int, int], cols: int):
    then = _branch("then", kind, holds[0], "a", counts[0])
    other = _branch("else", kind, holds[1], "b", counts[1])
    out = helper.make_value_info("y", helper.make_optional_type_proto(_elem_type(kind)))
    g = helper.make_graph([helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=then, else_branch=other)],
                          "g", [V("c", T.BOOL, []), V("a", T.FLOAT, [rows[0], cols]), V("b", T.FLOAT, [rows[1], cols])],
                          [out])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["tensor", "sequence"]), st.booleans(), st.booleans(), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_any_fed_if_of_optionals_is_planned_to_hold_what_onnxruntime_makes_or_refused_naming_it(
        kind, then_holds, else_holds, rows_t, rows_e, count_t, count_e, cols, seed):
    m = _model(kind, (then_holds, else_holds), (rows_t, rows_e), (count_t, count_e), cols)
    rng = np.random.default_rng(seed)
    feeds = {"a": rng.standard_normal((rows_t, cols)).astype(np.float32),
             "b": rng.standard_normal((rows_e, cols)).astype(np.float32)}
    ran = {c: _ort_bytes(m, {**feeds, "c": np.array(c)})["y"] for c in (True, False)}
    try:
        planned = _sizes(m)["y"]
    except GraphError as exc:   # (only where both hold values, of two shapes or, sequences, of two counts)
        assert "node 'the_if' (If): its output #0 'y' (an optional" in str(exc), str(exc)
        differ = rows_t != rows_e or (kind == "sequence" and count_t != count_e)
        assert then_holds and else_holds and differ, (str(exc), ran)
        return
    assert not (then_holds and else_holds and (rows_t != rows_e or (kind == "sequence" and count_t != count_e)))
    assert planned >= max(ran.values()), (planned, ran)
    assert planned == max(ran.values()), (planned, ran)   # (exact: the bytes of the branch that holds the most)


def test_an_optional_the_import_cannot_follow_is_refused_naming_the_if_the_output_and_the_branch():
    # (an optional graph input: whether it holds a value is the caller's; a nested If is followed since round 71)
    opt = helper.make_optional_type_proto(_elem_type("tensor"))
    then = helper.make_graph([helper.make_node("Identity", ["fed"], ["passed"])], "then", [],
                             [helper.make_value_info("passed", opt)])
    m = _model("tensor", (True, True), (2, 2), (1, 1), 3)
    for a in m.graph.node[0].attribute:
        if a.name == "then_branch":
            a.g.CopyFrom(then)
    m.graph.input.append(helper.make_value_info("fed", opt))
    with pytest.raises(GraphError, match=r"node 'the_if' \(If\): its output #0 'y' \(an optional; .*\): whether its "
                                         r"then_branch's optional holds a value is not known at import"):
        import_onnx(m)


def test_the_empty_branch_is_not_what_sizes_the_output(monkeypatch):
    # (the hazard: the output made as the empty branch's optional, of no bytes, while the other branch's holds 24)
    real = fed_optionals.select_optionals

    def empty_first(ex, n, who, made, scalar, outputs, count, checks, type_check):
        flipped = {k: (("empty", None, []), ("empty", None, [])) for k in outputs}
        return real(ex, n, who, made, scalar, flipped, count, checks, type_check)

    monkeypatch.setattr(control_flow, "select_optionals", empty_first)
    m = _model("tensor", (False, True), (1, 2), (1, 1), 3)
    assert _sizes(m)["y"] == 0 < _ort_bytes(m, {"c": np.array(False), "a": np.zeros((1, 3), np.float32),
                                                 "b": np.zeros((2, 3), np.float32)})["y"]


def test_an_empty_optional_of_another_type_than_the_other_branch_is_refused_as_onnxruntime_refuses_it():
    m = _model("tensor", (False, True), (2, 2), (1, 1), 3)
    then = next(a.g for a in m.graph.node[0].attribute if a.name == "then_branch")
    elem = helper.make_tensor_type_proto(T.INT64, None)
    then.node[0].attribute[0].tp.CopyFrom(elem)   # (an empty optional of int64 beside the else_branch's float)
    then.output[0].type.CopyFrom(helper.make_optional_type_proto(elem))
    with pytest.raises(Exception, match=r"the_if"):   # noqa: B017 - (onnxruntime's own error type)
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(GraphError, match=r"node 'the_if' \(If\): its output #0 'y' \(an optional; .*\): its "
                                         r"else_branch's optional, beside its then_branch's: it is "
                                         r"optional\(tensor\(float\)\), not optional\(tensor\(int64\)\)"):
        import_onnx(m)


# -- the index -------------------------------------------------------------------------------------------------------

def _ifs(n: int):
    """``n`` fed Ifs in a chain, each branch returning an outer value through Identity."""
    nodes, prev = [], "x"
    for i in range(n):
        nodes.append(helper.make_node("Relu", [prev], [f"a{i}"]))
        then = helper.make_graph([helper.make_node("Identity", [f"a{i}"], [f"t{i}"])], f"then{i}", [],
                                 [V(f"t{i}", T.FLOAT, [4])])
        other = helper.make_graph([helper.make_node("Identity", [prev], [f"e{i}"])], f"else{i}", [],
                                  [V(f"e{i}", T.FLOAT, [4])])
        nodes.append(helper.make_node("If", ["c"], [f"y{i}"], then_branch=then, else_branch=other))
        prev = f"y{i}"
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [4]), V("c", T.BOOL, [])], [V(prev, T.FLOAT, [4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_the_graph_around_many_fed_ifs_is_indexed_once_a_pass_not_once_an_if(monkeypatch):
    built = []
    real = fed_sequences.Scope.__init__

    def counted(self, g):
        built.append(len(g.node))
        real(self, g)

    monkeypatch.setattr(fed_sequences.Scope, "__init__", counted)
    import_onnx(_ifs(40))
    assert sum(1 for k in built if k >= 80) <= 2, built   # (the outer graph: 80 nodes; the branches: one each)
