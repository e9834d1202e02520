"""ONNX importer, round 69: Scan, an If on a run-time condition, a Loop of a run-time trip count, and the branch an
If on a constant does not take.

* A ``Scan`` (opset 9 on) is unrolled over its scan inputs' length (folded from their shapes): was refused ("its
  body runs once per slice"), though RNNs exported by tf2onnx and torch.onnx's scripting are made of them.
* An ``If`` whose condition only the run knows is planned both branches, each output a ``Where`` between them; of
  two shapes (or types) it is refused naming the If. Was refused whatever its branches.
* A ``Loop`` of a run-time trip count or condition stays refused, naming what that leaves unknown.
* The branch an If on a constant does not take is checked as onnxruntime checks it as it loads the model (onnx's
  checker per node; ONNX's strict inference, graph inputs as declared): was dropped unread and the model planned.
* The differential sweep (``tests/onnx_sweep_round69.py``) holds every case against onnxruntime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

import onnx_sweep_round69 as sweep  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import control_flow, import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _case(label: str) -> sweep.Case:
    return next(c for c in sweep.all_cases() if c.label == label)


def _refusal(label: str) -> str:
    with pytest.raises(GraphError) as info:
        import_onnx(_case(label).model, dims=sweep.DIMS.get(label))
    return str(info.value)


# -- the sweep -----------------------------------------------------------------------------------------------------

def test_the_round_69_sweep_agrees_with_onnxruntime():
    counts = sweep.run(list(sweep.all_cases()), show=5)
    assert not any(counts[k] for k in sweep.FAILING), counts
    assert counts["agree"] > 250 and counts["both refuse"] >= 40, counts


def test_the_sweep_catches_an_untaken_branch_planned_unchecked(monkeypatch):
    # (the hazard: round 68's import, which dropped the untaken branch unread)
    monkeypatch.setattr(control_flow, "check_untaken_validity", lambda checks, flat: None)
    kinds = {sweep.compare(c)[0] for c in sweep.untaken_cases() if "unknown_op" in c.label}
    assert kinds == {"planned, onnxruntime refuses"}, kinds


def test_the_sweep_catches_a_scan_output_stacked_on_the_wrong_axis(monkeypatch):
    real = control_flow._Expander.stack
    monkeypatch.setattr(control_flow._Expander, "stack", lambda self, parts, target, stem, axis=0:
                        real(self, parts, target, stem, 0))
    assert sweep.compare(_case("scan_axes_in0_dir0_out1_dir0"))[0] == "MISMATCH"


def test_the_sweep_catches_a_scan_read_in_the_wrong_direction(monkeypatch):
    # (sizes alone do not tell a reversed scan input: the expanded model's outputs are held against the model's)
    real = control_flow._Expander.expand_scan

    def forward_only(self, n, who, shapes, outer):
        for a in n.attribute:
            if a.name == "scan_input_directions":
                a.ints[:] = [0] * len(a.ints)
        return real(self, n, who, shapes, outer)

    monkeypatch.setattr(control_flow._Expander, "expand_scan", forward_only)
    kind, lines = sweep.compare(_case("scan_axes_in0_dir1_out0_dir0"))
    assert kind == "MISMATCH" and "differs from the model's" in lines[0], lines


# -- Scan ------------------------------------------------------------------------------------------------------------

def test_an_rnn_scan_is_planned_at_onnxruntime_s_sizes_and_verifies():
    case = _case("scan_rnn_len7")
    g = import_onnx(case.model)
    sizes = {t.id: (t.attrs["shape"], t.size) for t in g.tensors}
    assert sizes["h_last"] == ([2, 8], 64) and sizes["ys"] == ([2, 7, 8], 448) and sizes["pooled"] == ([2, 8], 64)
    assert sum(1 for n in g.nodes if n.op == "Tanh") == 7   # (one copy of the body a step)
    assert sum(1 for t in g.tensors if t.kind == "weight" and t.id.endswith("scale")) == 1   # (hoisted once)
    memplan.verify(g, memplan.plan(g))
    assert sweep.compare(case) == ("agree", [])


def test_a_scan_is_planned_the_same_every_time():
    m = _case("scan_rnn_len7").model
    a, b = import_onnx(m), import_onnx(m)
    assert json.dumps(memplan.plan(a).to_json(), sort_keys=True) == json.dumps(memplan.plan(b).to_json(),
                                                                              sort_keys=True)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 9), st.sampled_from([0, 1, -1, -2]), st.booleans(), st.sampled_from([0, 1, -1, -2]),
       st.booleans(), st.integers(1, 3))
def test_any_scan_of_a_fixed_length_is_planned_as_onnxruntime_runs_it(length, axis, reverse, out_axis, out_reverse,
                                                                        width):
    body = sweep._body([helper.make_node("Add", ["s", "e"], ["so"]), helper.make_node("Mul", ["e", "s"], ["eo"])],
                       [V("s", T.FLOAT, [width]), V("e", T.FLOAT, [width])], ["so", "eo"])
    shape = [length, width] if axis in (0, -2) else [width, length]
    node = helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], body=body, num_scan_inputs=1,
                            scan_input_axes=[axis], scan_input_directions=[int(reverse)],
                            scan_output_axes=[out_axis], scan_output_directions=[int(out_reverse)])
    case = sweep.Case("hypothesis", sweep._model([node], [V("s0", T.FLOAT, [width]), V("xs", T.FLOAT, shape)],
                                                 ["sN", "ys"]),
                      {"s0": sweep._x((width,)), "xs": sweep._x(shape, seed=length)})
    assert sweep.compare(case) == ("agree", [])


@pytest.mark.parametrize("label, message", [
    ("scan_len65", r"node 'Scan_0' \(Scan\): its scan inputs are 65 long, over the 64 iterations a Scan is unrolled"),
    ("scan_symbolic_length_unfixed", r"graph input 'xs' dimension 0 is symbolic \('seq'\) and not fixed"),
    ("scan_len0_scan_output", r"node 'Scan_0' \(Scan\): its scan inputs are of length 0: it runs no iteration, "
                              r"which onnxruntime refuses to run"),
    ("scan_len0_states_only", r"its scan inputs are of length 0"),
    ("scan_unequal_lengths", r"node 'Scan_0' \(Scan\): its scan inputs are of lengths \[4, 5\] along their axes"),
    ("scan_state_grows", r"node 'Scan_0' \(Scan\): its state #0 's0' is \[3\] fed in and \[6\] after an iteration "
                         r"\(onnxruntime refuses the model"),
    ("scan8", r"node 'Scan_0' \(Scan\): a Scan of opset 8 \(Scan-8"),
])
def test_a_scan_that_cannot_be_unrolled_is_refused_naming_it(label, message):
    import re

    assert re.search(message, _refusal(label)), _refusal(label)


# -- an If on a run-time condition -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cond", [True, False])
def test_an_if_on_a_graph_input_is_planned_both_branches(cond):
    case = _case(f"fed_if19_several_c[]_{cond}")
    g = import_onnx(case.model)
    ids = [n.id for n in g.nodes]
    assert {"If_1/then/Mul_0", "If_1/else/Sub_0", "If_1/select_0", "If_1/select_2"} <= set(ids), ids
    assert {t.id: t.size for t in g.tensors if t.kind == "output"} == {"y0": 24, "y1": 24, "y2": 24}
    memplan.verify(g, memplan.plan(g))
    assert sweep.compare(case) == ("agree", [])


@pytest.mark.parametrize("kind, message", [
    ("shapes", r"its output #0 'y' \(its condition 'c' known only at run time\) is \[6, 6\] where the then_branch "
               r"runs and \[\] where the else_branch does: which branch runs is known only at run time"),
    ("transposed", r"its output #0 'y' \(its condition 'c' known only at run time\): its branches make it of two "
                   r"shapes"),
    ("types", r"its output #0 'y' \(its condition 'c' known only at run time\): its branches make it of two types"),
])
def test_an_if_on_a_graph_input_of_branches_unlike_is_refused_naming_it(kind, message):
    import re

    text = _refusal(f"fed_if19_{kind}_c[]_True")
    assert re.search(r"node 'If_1' \(If\): " + message, text), text


# -- a Loop of a run-time trip count -----------------------------------------------------------------------------------

@pytest.mark.parametrize("label, unknown", [
    ("fed_loop_trip_scanned", r"its trip count 'm' is not a constant known at import \(a graph input\): which "
                              r"iterations run is known only at run time, and so the size of its scan output 'ys'"),
    ("fed_loop_cond_carried", r"its condition 'c' is not a constant known at import \(a graph input\): which "
                              r"iterations run is known only at run time, and so how many times its body's values"),
])
def test_a_loop_of_a_run_time_count_is_refused_naming_what_is_unknown(label, unknown):
    import re

    text = _refusal(label)
    assert re.search(r"node 'Loop_\d' \(Loop\): " + unknown, text) and "give its trip count as a constant" in text


# -- the untaken branch ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    ("unknown_op", r"its node 'Frobnicate_0' \(Frobnicate\) is invalid: No Op registered for Frobnicate"),
    ("domain_not_imported", r"its node 'Relu_0' \(Relu\) is invalid: No opset import for domain 'com.nope'"),
    ("required_attribute_missing", r"its node 'Concat_0' \(Concat\) is invalid: Required attribute 'axis' is "
                                   r"missing"),
    ("too_many_inputs", r"its node 'Relu_0' \(Relu\) is invalid: Node\(Relu_0\) with schema\(::Relu:14\) has input "
                        r"size 2"),
    ("types_bound_apart", r"its node 'Add_1': ONNX's inference fails: .*B has inconsistent type tensor\(int64\)"),
    ("matmul_of_declared_dims", r"its node 'MatMul_0': ONNX's inference fails: .*Incompatible dimensions"),
    ("constants_mismatch", r"its node 'MatMul_2': ONNX's inference fails: .*Incompatible dimensions"),
    ("reads_undefined", r"reads 'nope', which neither the branch nor the graph around it defines"),
    ("more_outputs", r"returns 2 values, its (then|else)_branch 1"),
    ("nested_invalid", r"its node 'If_1' \(If\): its then_branch's node 'Frobnicate_0' \(Frobnicate\) is invalid"),
])
@pytest.mark.parametrize("cond", [True, False])
def test_an_invalid_untaken_branch_is_refused_naming_the_if_the_branch_and_the_node(name, message, cond):
    import re

    branch = "else_branch" if cond else "then_branch"
    text = _refusal(f"untaken_{name}_{cond}")
    assert re.search(rf"node 'if0' \(If\): its {branch} \(not taken\)(:| ).*" + message, text), text
    assert sweep.compare(_case(f"untaken_{name}_{cond}"))[0] == "both refuse"


@pytest.mark.parametrize("name", [n for n in sweep.UNTAKEN if n.startswith("valid")])
def test_a_valid_untaken_branch_is_not_refused(name):
    for cond in (True, False):
        assert sweep.compare(_case(f"untaken_{name}_{cond}")) == ("agree", [])


def test_an_untaken_branch_invalid_only_for_the_fixed_dims_is_not_refused():
    # (x is [n, 3]; with n = 2 the If squeezes nothing: its then_branch, a Squeeze of axis 0, is invalid for 2 but not
    # for the symbolic n onnxruntime infers with as it loads)
    case = _case("untaken_squeeze_of_a_symbolic_dim")
    g = import_onnx(case.model, dims={"n": 2})
    assert next(t.attrs["shape"] for t in g.tensors if t.id == "y") == [2, 3]


def test_the_cli_refuses_an_invalid_untaken_branch_in_one_line(tmp_path, capsys):
    import onnx

    from memplan.cli import main

    path = tmp_path / "m.onnx"
    onnx.save(_case("untaken_unknown_op_True").model, str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "node 'if0' (If): its else_branch (not taken): its node 'Frobnicate_0'" in err
    assert not (tmp_path / "g.json").exists()


def test_the_model_passed_in_is_not_modified():
    m = _case("scan_rnn_len7").model
    before = m.SerializeToString()
    import_onnx(m)
    assert m.SerializeToString() == before
    assert np.frombuffer(before, np.uint8).size > 0


def test_nested_scans_that_would_grow_the_graph_past_its_bound_are_refused_before_copying():
    # five Scans of 64 nested: a billion copies of the innermost body, refused before the copies are made
    body = sweep._body([helper.make_node("Add", ["a", "v"], ["ao"]), helper.make_node("Identity", ["ao"], ["w"])],
                       [V("a", T.FLOAT, []), V("v", T.FLOAT, [])], ["ao", "w"])
    shape: list[int] = []
    for depth in range(4):
        shape = [64] + shape
        d = depth   # (each level's names its own: ONNX's single assignment spans subgraphs)
        inner = helper.make_node("Scan", [f"zero{d}", f"row{d}"], [f"tot{d}", f"cum{d}"], body=body,
                                 num_scan_inputs=1)
        body = sweep._body([sweep._const(f"zero{d}", np.float32(0)), inner,
                            helper.make_node("Add", [f"acc{d}", f"tot{d}"], [f"acc_o{d}"])],
                           [V(f"acc{d}", T.FLOAT, []), V(f"row{d}", T.FLOAT, shape)], [f"acc_o{d}", f"cum{d}"])
    m = sweep._model([helper.make_node("Scan", ["a0", "m"], ["total", "cums"], body=body, num_scan_inputs=1,
                                       name="top")], [V("a0", T.FLOAT, []), V("m", T.FLOAT, [64] + shape)],
                     ["total", "cums"])
    with pytest.raises(GraphError, match=r"node 'top' \(Scan\): unrolling it grows the graph past 1048576 nodes"):
        import_onnx(m)


def test_an_untaken_branch_constant_of_external_data_is_not_refused_by_the_checker(tmp_path):
    # (onnx's checker looks for the data file relative to no folder: "should be stored in w.bin, but it is not regular
    # file"; onnxruntime loads the model from its folder)
    import onnx
    from onnx import TensorProto, numpy_helper

    t = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    (tmp_path / "w.bin").write_bytes(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", "24")):
        e = t.external_data.add()
        e.key, e.value = k, v
    m = sweep._untaken([helper.make_node("Constant", [], ["k"], value=t), helper.make_node("Add", ["x", "k"], ["e"])],
                       ["e"])
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    import onnxruntime as ort

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": sweep._x((2, 3))})[0]
    g = import_onnx(str(path))
    assert out.nbytes == 24
    assert next(t.size for t in g.tensors if t.id == "y") == 24
