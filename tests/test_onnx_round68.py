"""ONNX importer, round 68: every element type, control flow and sequences, and what round 67 left.

* The differential sweep (``tests/onnx_sweep_round68.py``): each ONNX data type as a graph input, an initializer, a
  Cast / CastLike target and source, QuantizeLinear / DequantizeLinear outputs (per tensor, axis, block;
  ``output_dtype``; opsets 19-25); If / Loop / Scan; sequences and optionals: planned at onnxruntime's sizes (or the
  reference's, or the spec's bits where neither runs the type) or refused by design.
* Einsum ``""`` of a 0-D input is planned (a scalar, as onnxruntime runs it); ONNX's inference gave it no rank.
* A GatherND whose indices hold a multiple of the data's batches is refused naming the spec rule: onnxruntime runs
  it as its own extension, the spec does not define it and onnx's reference fails on it.
* onnxruntime 1.32 dies of SIGFPE on an Einsum diagonal over an empty dimension: the sweep runs Einsum in a child.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

import onnx_sweep_round68 as sweep  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def test_the_round_68_sweep_agrees_with_onnxruntime_the_reference_and_the_spec():
    cases = list(sweep.all_cases())
    counts = sweep.run(cases, show=5)
    assert not any(counts[k] for k in sweep.FAILING), counts
    assert counts["agree (onnxruntime)"] > 900 and counts["agree (onnx.reference)"] > 300, counts


def test_the_sweep_catches_a_packed_type_sized_a_byte_an_element(monkeypatch):
    # (the hazard: int4 planned as a byte an element, 15 bytes for [3, 5] where the runtime packs 8)
    from memplan.importers.onnx import common

    monkeypatch.setitem(common._BITS, T.INT4, 8)
    cases = [c for c in sweep.all_cases() if "INT4" in c.label and "UINT4" not in c.label]
    kinds = {sweep.compare(c)[0] for c in cases[:12]}
    assert "MISMATCH" in kinds, kinds


def test_the_sweep_catches_a_model_onnx_refuses_that_memplan_plans(monkeypatch):
    # (the hazard: an importer that plans whatever ONNX's inference sized, a Cast to a type the opset lacks included)
    case = next(c for c in sweep.all_cases() if c.label == "cast19_float_to_FLOAT6E2M3")
    assert sweep.compare(case)[0] == "both refuse"
    monkeypatch.setattr(sweep.sweep65, "imported", lambda c: (object(), None, []))
    assert sweep.compare(case)[0] == "invalid, memplan plans"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(sweep.SPEC_BITS)), st.lists(st.integers(0, 7), max_size=3))
def test_every_fixed_size_type_is_planned_at_its_packed_bytes(type_name, shape):
    # an initializer of any type and shape (odd counts of the packed types round up), returned by the graph
    code = sweep.TYPES[type_name]
    w = helper.make_tensor("w", code, shape, bytes(sweep.spec_bytes(type_name, shape)), raw=True)
    g = helper.make_graph([], "g", [], [helper.make_tensor_value_info("w", code, shape)], initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])
    t = next(t for t in import_onnx(m).tensors if t.id == "w")
    assert (t.attrs["shape"], t.size) == (shape, sweep.spec_bytes(type_name, shape))


@pytest.mark.parametrize("where", ["input", "initializer", "cast"])
def test_a_string_tensor_is_refused_naming_it(where):
    if where == "input":
        m = sweep._model([helper.make_node("Identity", ["s"], ["y"])],
                         [helper.make_tensor_value_info("s", T.STRING, [3])], sweep._out("y"))
    elif where == "initializer":
        m = sweep._model([helper.make_node("Identity", ["s"], ["y"])], [], sweep._out("y"),
                         [helper.make_tensor("s", T.STRING, [3], [b"a", b"bb", b"c"])])
    else:
        m = sweep._model([helper.make_node("Cast", ["x"], ["s"], to=T.STRING)],
                         [helper.make_tensor_value_info("x", T.FLOAT, [3])], sweep._out("s"))
    with pytest.raises(GraphError, match=r"(value|input) 's' has dtype string, which has no fixed byte size"):
        import_onnx(m)


# -- round 67's leftovers ----------------------------------------------------------------------------------------------

def _einsum(eq: str, *shapes):
    ins = [helper.make_tensor_value_info(f"x{k}", T.FLOAT, list(s)) for k, s in enumerate(shapes)]
    node = helper.make_node("Einsum", [f"x{k}" for k in range(len(shapes))], ["y"], name="e", equation=eq)
    return sweep._model([node], ins, sweep._out("y"), opset=12)


def test_an_einsum_of_the_empty_equation_on_a_scalar_is_planned_as_a_scalar():
    # (before: refused, "value 'y' has no shape: shape inference could not find its rank")
    y = next(t for t in import_onnx(_einsum("", ())).tensors if t.id == "y")
    assert (y.attrs["shape"], y.size) == ([], 4)


@pytest.mark.parametrize("shapes", [[(2,)], [(0,)], [(), ()]])
def test_an_einsum_of_the_empty_equation_on_other_inputs_is_refused_as_onnxruntime_refuses_to_run_it(shapes):
    case = sweep.Case("e", _einsum("", *shapes), {f"x{k}": sweep._x(s) for k, s in enumerate(shapes)}, isolate=True)
    assert sweep.isolated_ort_values(case)[0] == "run"
    with pytest.raises(GraphError, match=r"node 'e' \(Einsum\)|Einsum, node name: e\)"):
        import_onnx(case.model)


def test_an_einsum_diagonal_over_an_empty_dimension_is_judged_though_onnxruntime_crashes_on_it():
    case = next(c for c in sweep.leftover_cases() if c.label == "einsum_'iji->j'_[(0, 3, 0)]")
    status, real = sweep.isolated_ort_values(case)
    assert status in ("crash", "ok"), real   # (onnxruntime 1.32: SIGFPE; a later one may run it)
    if status == "crash":
        assert "SIGFPE" in real[""]
    assert sweep.compare(case) in (("agree (onnx.reference (onnxruntime crashed))", []), ("agree (onnxruntime)", []))
    y = next(t for t in import_onnx(case.model).tensors if t.id == "y")
    assert (y.attrs["shape"], y.size) == ([3], 12)


def test_a_crash_in_the_child_is_a_status_not_the_end_of_the_sweep(monkeypatch):
    import os
    import signal

    monkeypatch.setattr(sweep, "_ort_values", lambda case: os.kill(os.getpid(), signal.SIGFPE))
    case = next(c for c in sweep.leftover_cases() if c.isolate)
    assert sweep.isolated_ort_values(case) == ("crash", {"": "onnxruntime killed the process (SIGFPE)"})


@pytest.mark.parametrize(("data", "indices"), [((2, 3, 4), (4, 1)), ((2, 3, 4), (6, 1)), ((4, 2, 3), (2, 2, 1))])
def test_a_gathernd_of_a_multiple_of_the_datas_batches_is_refused_naming_the_spec_rule(data, indices):
    # (before: planned at ONNX's size, what onnxruntime writes; the spec requires equal batch dimensions and onnx's
    # reference fails on it: "cannot reshape array of size 24 into shape (4,3,4)")
    node = helper.make_node("GatherND", ["x", "i"], ["y"], name="g", batch_dims=1)
    m = sweep._model([node], [sweep._fin("x", list(data))], sweep._out("y"),
                     [numpy_helper.from_array(np.zeros(indices, np.int64), "i")], opset=13)
    case = sweep.Case("g", m, {"x": sweep._x(data)})
    assert sweep._ort_values(case)[0] == "ok"
    assert sweep.sweep66.reference_values(case)[0] == "run"
    with pytest.raises(GraphError, match=r"node 'g' \(GatherND\): its indices 'i' .* ONNX requires them equal\); "
                                         r"onnxruntime runs it as its own extension"):
        import_onnx(m)


def test_a_gathernd_of_equal_batches_or_an_empty_output_is_still_planned():
    for data, indices, want in [((4, 2, 3), (4, 2, 1), ([4, 2, 3], 96)), ((2, 3, 4), (4, 0, 1), ([4, 0, 4], 0))]:
        node = helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=1)
        m = sweep._model([node], [sweep._fin("x", list(data))], sweep._out("y"),
                         [numpy_helper.from_array(np.zeros(indices, np.int64), "i")], opset=13)
        y = next(t for t in import_onnx(m).tensors if t.id == "y")
        assert (y.attrs["shape"], y.size) == want
