"""ONNX importer, round 65: agreement with onnxruntime 1.32, op by op.

Control flow left by round 64: an If whose untaken branch makes (undeclared) another dtype than the taken one, a Loop
scan output whose shape changes from iteration to iteration, and If/Loop outputs named "" are each refused naming the
user's node (onnxruntime refuses the first two; it crashes on the third). Then a fixed-seed sample of the differential
sweep (``tests/onnx_sweep_round65.py``): onnx's node test cases and their variations (other opsets, float types, empty
dims, negative axes, constant integer inputs), each value's shape, dtype and bytes planned as onnxruntime makes them.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import ort_refuses  # noqa: E402
from test_onnx_round64 import FX, _bool, _graph, _i64, _model, _session  # noqa: E402
from test_onnx_round64b import _body  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _ort_refuses(model) -> None:
    # (onnxruntime's own errors only: ``pytest.raises(Exception)`` here passed on a TypeError of the test's, round 69)
    assert ort_refuses(model, FX)


def _cast_if(cond: bool, then_to: int, else_to: int):
    """``y = If(c)`` whose branches Cast ``x`` to ``then_to`` and ``else_to``, neither output declared."""
    th = _graph([helper.make_node("Cast", ["x"], ["t"], to=then_to)], ["t"], "then")
    el = _graph([helper.make_node("Cast", ["x"], ["e"], to=else_to)], ["e"], "else")
    return _model([helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)], ["y"],
                  [_bool(cond, "c")])


@pytest.mark.parametrize("cond", [True, False])
def test_an_untaken_branch_making_another_dtype_undeclared_is_refused(cond):
    # (before: planned, the untaken branch dropped unchecked; onnxruntime: "Mismatched tensor element type")
    m = _cast_if(cond, T.FLOAT, T.INT64)
    _ort_refuses(m)
    other, made, runs = ("else_branch", "int64", "float") if cond else ("then_branch", "float", "int64")
    with pytest.raises(GraphError, match=rf"node 'if0' \(If\): its {other} \(not taken\) output #0 is "
                                         rf"tensor\({made}\), the branch that runs makes tensor\({runs}\)"):
        import_onnx(m)


DTYPES = [T.FLOAT, T.INT64, T.INT32, T.DOUBLE, T.FLOAT16, T.UINT8, T.BOOL]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.sampled_from(DTYPES), st.sampled_from(DTYPES))
def test_an_if_is_planned_exactly_where_onnxruntime_loads_it(cond, then_to, else_to):
    m = _cast_if(cond, then_to, else_to)
    try:
        out = _session(m).run(None, FX)[0]
        runs = True
    except Exception:  # noqa: BLE001 - onnxruntime's own exception types
        runs = False
    if runs:
        g = import_onnx(m)
        y = next(t for t in g.tensors if t.id == "y")
        assert y.size == out.nbytes
    else:
        with pytest.raises(GraphError, match="node 'if0'"):
            import_onnx(m)


def test_a_nested_untaken_branch_reading_outer_values_is_judged_by_their_types():
    # the untaken branch reads a value of the graph ('z', int64) made before the If: typed so, its Add of two int64
    # values is int64, against the taken branch's float
    th = _graph([helper.make_node("Relu", ["x"], ["t"])], ["t"], "then")
    el = _graph([helper.make_node("Add", ["z", "z"], ["e"])], ["e"], "else")
    m = _model([helper.make_node("Cast", ["x"], ["z"], to=T.INT64),
                helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)], ["y"],
               [_bool(True, "c")])
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"its else_branch \(not taken\) output #0 is tensor\(int64\)"):
        import_onnx(m)
    ok = _model([helper.make_node("Cast", ["x"], ["z"], to=T.FLOAT),
                 helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)], ["y"],
                [_bool(True, "c")])
    _session(ok).run(None, FX)
    assert next(t for t in import_onnx(ok).tensors if t.id == "y").size == 24


def test_a_loop_scan_output_changing_shape_is_refused_naming_the_loop():
    # (before: onnx's message naming 'loop0/scan_0/concat', a node the expansion made)
    body = _graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                   helper.make_node("Concat", ["v", "v"], ["v2"], axis=0)], ["cond_out", "v2", "v2"],
                  inputs=[V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v", T.FLOAT, None)])
    m = _model([helper.make_node("Loop", ["M", "", "x"], ["vf", "sc"], name="loop0", body=body)], ["vf", "sc"],
               [_i64(3, "M")])
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"^model: node 'loop0' \(Loop\): its scan output #0 'sc' differs in shape "
                                         "from one iteration to the next") as info:
        import_onnx(m)
    assert "concat" not in str(info.value)
    # a scan output of one shape throughout is planned at what onnxruntime stacks
    ok = _model([helper.make_node("Loop", ["M", "", "x"], ["vf", "sc"], name="loop0", body=_body(scan=True))],
                ["vf", "sc"], [_i64(3, "M")])
    sc = _session(ok).run(None, FX)[1]
    assert next(t for t in import_onnx(ok).tensors if t.id == "sc").size == sc.nbytes


def _two_branches():
    th = _graph([helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Neg", ["x"], ["t2"])], ["t", "t2"], "then")
    el = _graph([helper.make_node("Neg", ["x"], ["e"]), helper.make_node("Relu", ["x"], ["e2"])], ["e", "e2"], "else")
    return th, el


def _carried_body():
    nodes = [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v", "v"], ["v2"]),
             helper.make_node("Add", ["w", "w"], ["w2"])]
    return _graph(nodes, ["cond_out", "v2", "w2"], inputs=[V("i", T.INT64, []), V("cond_in", T.BOOL, []),
                                                           V("v", T.FLOAT, None), V("w", T.FLOAT, None)])


@pytest.mark.parametrize(("op", "outputs", "k"), [
    ("If", ["y", ""], 1), ("If", ["", "y"], 0),
    ("Loop", ["vf", ""], 1),           # a scan output left out (onnxruntime: "FindDeviceForValue")
    ("Loop", ["", "y"], 0),            # a loop-carried one (onnxruntime 1.32: segmentation fault)
    ("Loop2", ["y", ""], 1),           # the second of two loop-carried values (segmentation fault)
])
def test_an_if_or_loop_output_named_empty_is_refused(op, outputs, k):
    # (before: planned; onnxruntime 1.32 crashes loading most of these, so it is not run here)
    if op == "If":
        th, el = _two_branches()
        node = helper.make_node("If", ["c"], outputs, name="cf0", then_branch=th, else_branch=el)
        inits = [_bool(True, "c")]
    elif op == "Loop":
        node = helper.make_node("Loop", ["M", "", "x"], outputs, name="cf0", body=_body(scan=True))
        inits = [_i64(3, "M")]
    else:
        node = helper.make_node("Loop", ["M", "", "x", "x"], outputs, name="cf0", body=_carried_body())
        inits = [_i64(3, "M")]
    m = _model([node], [o for o in outputs if o], inits)
    with pytest.raises(GraphError, match=rf"node 'cf0' \({op[:4]}\): its output #{k} is named '' \(left out\)"):
        import_onnx(m)


# -- the sweep ------------------------------------------------------------------------------------------------------

def test_a_fixed_sample_of_the_differential_sweep_agrees_with_onnxruntime():
    import onnx_sweep_round65 as sweep

    out = io.StringIO()
    counts = sweep.run(sweep.sample(300, seed=65), show=50, out=out)
    failing = {k: counts[k] for k in sweep.FAILING if counts[k]}
    assert not failing, out.getvalue()
    assert counts["agree"] >= 150, out.getvalue()


def test_the_sweep_catches_an_under_sized_value(monkeypatch):
    # the comparison itself can fail: a planned size one byte short of what onnxruntime writes is a MISMATCH
    import onnx_sweep_round65 as sweep

    case = next(c for c in sweep.base_cases() if c.label == "test_relu")
    assert sweep.compare(case) == ("agree", [])
    real = sweep.import_onnx

    def short(model, **kw):
        g = real(model, **kw)
        for t in g.tensors:
            if t.id == "y":
                object.__setattr__(t, "size", t.size - 1)
        return g

    monkeypatch.setattr(sweep, "import_onnx", short)
    kind, lines = sweep.compare(case)
    assert kind == "MISMATCH" and "UNDER" in lines[0]
    assert np.prod([3, 4, 5]) * 4 == 240


# -- what the sweep found: shapes onnxruntime refuses, or sizes otherwise, that ONNX's inference lets through --------

def _sce(scores, labels, opset=13):
    """A SoftmaxCrossEntropyLoss of float ``scores`` and int64 ``labels`` of the given static shapes."""
    from onnx_sweep_round65 import Case

    ins = [V("x", T.FLOAT, list(scores)), V("y", T.INT64, list(labels))]
    g = helper.make_graph([helper.make_node("SoftmaxCrossEntropyLoss", ["x", "y"], ["z"], name="sce0",
                                            reduction="none")], "g", ins, [helper.ValueInfoProto(name="z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return Case("sce", m, {"x": np.random.default_rng(0).random(scores, dtype=np.float32),
                           "y": np.zeros(labels, np.int64)})


@pytest.mark.parametrize(("scores", "labels", "refused"), [
    ((3, 5, 2), (3, 2), None), ((3, 5), (3,), None), ((3, 5, 0), (3, 0), None), ((3, 5, 2, 2), (3, 2, 2), None),
    ((3, 5, 2), (4, 2), "its labels 'y' are \\[4, 2\\], where its scores 'x' \\(\\[3, 5, 2\\]\\) require \\[3, 2\\]"),
    ((3, 5, 2), (3,), "its labels 'y' are \\[3\\]"), ((3, 5), (3, 2), "its labels 'y' are \\[3, 2\\]"),
    ((0, 5, 2), (0, 2), "its scores 'x' are \\[0, 5, 2\\], empty in the batch or class dimension"),
    ((3, 0), (3,), "its scores .x. are \\[3, 0\\], empty in the batch or class dimension"),
    ((3, 5, 0, 2), (3, 0, 2), None), ((1, 1, 0, 0), (1, 0, 0), "its scores .x. are \\[1, 1, 0, 0\\], empty in a spatial dimension after the first"),
    ((2, 2, 2, 0), (2, 2, 0), "its scores .x. are \\[2, 2, 2, 0\\], empty in a spatial dimension after the first"),
])
@pytest.mark.parametrize("opset", [13, 23])
def test_softmax_cross_entropy_labels_and_empty_scores_as_onnxruntime_loads_them(scores, labels, refused, opset):
    # (before: each refused one was planned, its output sized from the scores alone; onnxruntime refuses to load it)
    import onnx_sweep_round65 as sweep

    case = _sce(scores, labels, opset)
    status, _real = sweep.ort_values(case)
    if refused is None:
        assert sweep.compare(case) == ("agree", [])
    else:
        assert status == "load"
        with pytest.raises(GraphError, match=r"node 'sce0' \(SoftmaxCrossEntropyLoss\): " + refused):
            import_onnx(case.model)


def _attention(batch: int, lengths: int, opset: int):
    """An Attention of Q/K/V ``[batch, 2, 3, 4]`` and ``nonpad_kv_seqlen`` of ``lengths`` entries."""
    from onnx_sweep_round65 import Case

    r = np.random.default_rng(0)
    qkv = {k: r.random((batch, 2, 3, 4), dtype=np.float32) for k in "QKV"}
    ins = [V(k, T.FLOAT, [batch, 2, 3, 4]) for k in "QKV"] + [V("n", T.INT64, [lengths])]
    node = helper.make_node("Attention", ["Q", "K", "V", "", "", "", "n"], ["Y"], name="att0")
    g = helper.make_graph([node], "g", ins, [helper.ValueInfoProto(name="Y")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return Case("attention", m, {**qkv, "n": np.full((lengths,), 3, np.int64)})


@pytest.mark.parametrize(("opset", "batch", "lengths", "refused"), [
    (25, 2, 2, None), (25, 2, 1, None), (25, 3, 1, None), (25, 0, 0, None), (24, 2, 2, None),
    (25, 1, 2, "onnxruntime runs it with an output of batch 2 \\(not the 1 planned\\)"),   # (was: planned half, UNDER)
    (25, 2, 3, "onnxruntime refuses to load the model"), (25, 0, 2, "onnxruntime refuses to load the model"),
    (24, 1, 2, "kernel of Attention-24 refuses to run it"), (24, 2, 1, "kernel of Attention-24 refuses to run it"),
])
def test_attention_nonpad_kv_seqlen_of_another_length_than_the_batch_is_refused(opset, batch, lengths, refused):
    import onnx_sweep_round65 as sweep

    case = _attention(batch, lengths, opset)
    if refused is None:
        assert sweep.compare(case) == ("agree", [])
        return
    status, real = sweep.ort_values(case)
    if opset == 24:
        assert status == "run"
    elif batch == 1:   # onnxruntime runs it, writing more than ONNX's inference sizes
        assert status == "ok" and real["Y"][0][0] == lengths
    else:
        assert status == "load"
    with pytest.raises(GraphError, match=rf"node 'att0' \(Attention\): its nonpad_kv_seqlen 'n' holds {lengths} "
                                         rf"lengths, where its Q 'Q' \(\[{batch}, 2, 3, 4\]\) has a batch of {batch}.*"
                                         + refused):
        import_onnx(case.model)


@pytest.mark.parametrize("shape", ["initializer", "nested_if", "same_names"])
def test_untaken_branches_are_typed_with_their_own_initializers_and_subgraphs(shape):
    # the untaken branches are inferred at once, their own values renamed apart: a branch's initializer, an If nested
    # in it, and two Ifs whose branches use the same names each keep their own types
    th = _graph([helper.make_node("Relu", ["x"], ["t"])], ["t"], "then")
    if shape == "initializer":
        el = _graph([helper.make_node("Add", ["w", "w"], ["e"])], ["e"], "else", inits=[_i64([1, 2, 3], "w")])
    elif shape == "nested_if":
        inner = [_graph([helper.make_node("Cast", ["x"], [f"i{b}"], to=T.INT64)], [f"i{b}"], f"b{b}") for b in (0, 1)]
        el = _graph([helper.make_node("If", ["c"], ["e"], then_branch=inner[0], else_branch=inner[1])], ["e"], "else")
    else:
        el = _graph([helper.make_node("Cast", ["x"], ["e"], to=T.INT64)], ["e"], "else")
    nodes = [helper.make_node("If", ["c"], ["y"], name="if0", then_branch=th, else_branch=el)]
    outputs = ["y"]
    if shape == "same_names":   # a first If whose untaken branch makes float under the same names: no mix-up
        ok_el = _graph([helper.make_node("Neg", ["x"], ["e"])], ["e"], "else")
        ok_th = _graph([helper.make_node("Relu", ["x"], ["t"])], ["t"], "then")
        nodes.insert(0, helper.make_node("If", ["c"], ["y0"], name="ifa", then_branch=ok_th, else_branch=ok_el))
        outputs.append("y0")
    m = _model(nodes, outputs, [_bool(True, "c")])
    _ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'if0' \(If\): its else_branch \(not taken\) output #0 is "
                                         r"tensor\(int64\)"):
        import_onnx(m)


@pytest.mark.parametrize("rank", [4, 3])
@pytest.mark.parametrize("ids", [(2, 3), (1, 3), (3, 3), (2, 1), (2, 4), (6,), (2, 3, 1)])
def test_rotary_embedding_position_ids_not_batch_by_sequence_are_refused(rank, ids):
    # (before: planned, ONNX's inference checking nothing of position_ids; onnxruntime refuses to run each)
    import onnx_sweep_round65 as sweep

    x = (2, 4, 3, 8) if rank == 4 else (2, 3, 32)
    r = np.random.default_rng(0)
    ins = [V("x", T.FLOAT, list(x)), V("cos", T.FLOAT, [50, 4]), V("sin", T.FLOAT, [50, 4]),
           V("ids", T.INT64, list(ids))]
    node = helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "ids"], ["y"], name="rope0",
                            **({} if rank == 4 else {"num_heads": 4}))
    g = helper.make_graph([node], "g", ins, [helper.ValueInfoProto(name="y")])
    case = sweep.Case("rope", helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)]),
                      {"x": r.random(x, dtype=np.float32), "cos": r.random((50, 4), dtype=np.float32),
                       "sin": r.random((50, 4), dtype=np.float32), "ids": np.zeros(ids, np.int64)})
    if ids == (2, 3):
        assert sweep.compare(case) == ("agree", [])
        return
    assert sweep.ort_values(case)[0] == "run"
    with pytest.raises(GraphError, match=rf"node 'rope0' \(RotaryEmbedding\): its position_ids 'ids' is "
                                         rf"\[{', '.join(map(str, ids))}\], where its input 'x' .* requires "
                                         r"\[batch, sequence_length\] = \[2, 3\]"):
        import_onnx(case.model)


@st.composite
def _sce_shapes(draw):
    scores = draw(st.lists(st.integers(0, 3), min_size=2, max_size=4))
    labels = [scores[0], *scores[2:]]
    if draw(st.booleans()):   # perturbed: a dimension changed, dropped or added
        how = draw(st.sampled_from(["change", "drop", "add"]))
        if how == "change":
            k = draw(st.integers(0, len(labels) - 1))
            labels[k] = draw(st.integers(0, 4).filter(lambda v, old=labels[k]: v != old))
        elif how == "drop":
            labels = labels[:-1]
        else:
            labels = [*labels, draw(st.integers(1, 3))]
    return tuple(scores), tuple(labels)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_sce_shapes(), st.sampled_from([13, 23]))
def test_softmax_cross_entropy_is_planned_exactly_where_onnxruntime_loads_it(shapes, opset):
    # differential: memplan refuses where onnxruntime refuses to load the model, and plans what it makes otherwise
    import onnx_sweep_round65 as sweep

    case = _sce(*shapes, opset=opset)
    status, _real = sweep.ort_values(case)
    kind, lines = sweep.compare(case)
    if status == "load":
        assert kind == "both refuse", lines
    elif status == "ok":
        assert kind == "agree", lines
