"""Round 78 (review78): defects found while reviewing round 77's library changes.

1. A minimalloc CSV with a ``gaps`` column makes a problem of compatible pairs, whose packings ``check.overlap``
   checks pairwise up to ``PAIRWISE_LIMIT`` (5,000) buffers and not at all past it: ``format_csv`` wrote a table of
   5,001 rows, one with a gap, with buffers live at one time at one offset as a solution, and ``solve_table`` took
   any packing of such a table, as ``memplan bench planners`` did (its row "verified"). All three now check the
   buffers' live spans by the interval sweep, at any size (``minimalloc.check_packing``).
2. A ``Loop`` that runs no iteration makes each scan output empty, of the element shape its body's nodes compute
   (onnxruntime optimized; [0] not), never the one its body declares where that differs; round 77 planned the
   declared shape, unchecked, so a body declaring [4] but computing [2, 3] had what a ``Shape`` of the output sizes
   planned 4 floats where onnxruntime writes 6. Such a contradiction is now refused naming the Loop, the output and
   both shapes; so is a body declaring another element type than its nodes compute, which onnxruntime refuses to
   load ("Type Error") and round 77 planned.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from needs import need

import memplan.io.minimalloc as mm
from memplan.errors import GraphError, SolverError


def _gapped_table(n: int) -> mm.CsvTable:
    """``n - 1`` buffers in turn over time steps 0, 1, ..., and ``g`` over all of them, live at steps 0 and 1 alone
    (a gap from 2 on): ``g`` may share bytes with all but ``b0`` and ``b1``."""
    rows = ["id,lower,upper,size,gaps", *(f"b{i},{i},{i + 1},4," for i in range(n - 1)), f"g,0,{n},4,2-{n}"]
    return mm.parse_csv("\n".join(rows), "gaps.csv")


def test_format_csv_refuses_overlapping_live_buffers_of_a_gapped_table_past_the_pairwise_limit():
    table = _gapped_table(5001)
    assert not table.problem().is_interval   # (the problem of compatible pairs the check skipped past 5,000)
    with pytest.raises(SolverError, match="offsets overlap buffers 'b0' and 'g', which are live at the same time"):
        mm.format_csv(table, np.zeros(5001, dtype=np.int64))
    good = np.zeros(5001, dtype=np.int64)
    good[-1] = 4   # (g beside the others: every b shares offset 0 in turn, as g does its gap's)
    assert mm.format_csv(table, good).count("\n") == 5002


def test_solve_table_refuses_a_solvers_overlapping_packing_of_a_gapped_table(monkeypatch):
    table = _gapped_table(4)
    real = mm.solve

    def overlapping(problem, solver, options):   # (a solver bug: every buffer at offset 0)
        sol = real(problem, solver, options)
        return dataclasses.replace(sol, offsets=np.zeros(len(problem), dtype=np.int64), arena=4)

    assert mm.solve_table(table).arena == 8
    monkeypatch.setattr(mm, "solve", overlapping)
    with pytest.raises(SolverError, match="solver 'search' overlapped buffers 'b0' and 'g'.*a solver bug"):
        mm.solve_table(table)


def test_bench_planners_calls_a_solvers_overlapping_packing_of_a_gapped_table_invalid(monkeypatch):
    import memplan.solvers
    from memplan.benchmarks.planners import _minimalloc_rows

    table = _gapped_table(4)
    real = memplan.solvers.solve

    def overlapping(problem, solver, options):   # (a solver bug that ``check_solution`` cannot see past 5,000 rows)
        return dataclasses.replace(real(problem, solver, options), offsets=np.zeros(len(problem), dtype=np.int64),
                                   arena=4)

    assert [r["verified"] for r in _minimalloc_rows([table], ["greedy"], 1.0)] == [True]
    monkeypatch.setattr(memplan.solvers, "solve", overlapping)
    (row,) = _minimalloc_rows([table], ["greedy"], 1.0)
    assert row["verified"] is False and "INVALID" in row.values(), row


def _empty_scan_model(declared: list[int], elem: int = 1):
    """A Loop of trip count 0 whose body scans a float ConstantOfShape([2, 3]) declared ``declared`` of element type
    ``elem`` (1: float); after it, a ConstantOfShape of the scan output's element shape (``Shape`` less its first
    entry): 6 floats by onnxruntime."""
    onnx = need("onnx")
    from onnx import TensorProto as T
    from onnx import helper
    from onnx import numpy_helper as nh

    V = helper.make_tensor_value_info
    fill = helper.make_tensor("v", T.FLOAT, [1], [1.0])
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["x"], ["x_out"]),
         helper.make_node("ConstantOfShape", ["shp"], ["s"], value=fill)], "body",
        [V("i", T.INT64, []), V("c", T.BOOL, []), V("x", T.FLOAT, [2])],
        [V("c_out", T.BOOL, []), V("x_out", T.FLOAT, [2]), V("s", elem, declared)],
        [nh.from_array(np.array([2, 3], np.int64), "shp")])
    nodes = [helper.make_node("Loop", ["M", "C", "x0"], ["xf", "scan"], name="loop0", body=body),
             helper.make_node("Shape", ["scan"], ["sh"]), helper.make_node("Slice", ["sh", "one", "big"], ["es"]),
             helper.make_node("ConstantOfShape", ["es"], ["z"], value=fill)]
    inits = [nh.from_array(np.array(0, np.int64), "M"), nh.from_array(np.array(True), "C"),
             nh.from_array(np.array([1], np.int64), "one"), nh.from_array(np.array([9], np.int64), "big")]
    g = helper.make_graph(nodes, "g", [V("x0", T.FLOAT, [2])], [V("xf", T.FLOAT, None), V("z", T.FLOAT, None)], inits)
    return onnx, helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_a_zero_iteration_loops_scan_output_declared_otherwise_than_its_body_computes_is_refused(tmp_path):
    from onnx_oracle import ort_run, ort_shapes

    from memplan.importers.onnx import import_onnx

    onnx, model = _empty_scan_model([2, 3])
    feeds = {"x0": np.ones(2, np.float32)}
    assert ort_shapes(model, feeds)["z"] == (2, 3)
    onnx.save(model, tmp_path / "same.onnx")
    assert import_onnx(str(tmp_path / "same.onnx")).tensor("z").size == 24   # (as onnxruntime writes)
    onnx, model = _empty_scan_model([4])
    # (onnxruntime's empty output: the computed element shape where its optimizations run, [0] where they do not)
    assert ort_run(model, feeds, optimized=True)["z"].shape == (2, 3) and ort_shapes(model, feeds)["z"] == ()
    onnx.save(model, tmp_path / "other.onnx")
    with pytest.raises(GraphError, match=r"node 'loop0' \(Loop\): it runs no iteration \(trip count 0\): its body "
                                         r"declares scan output #0 'scan' \(body output 's'\) of element shape \[4\], "
                                         r"but its nodes compute \[2, 3\]"):
        import_onnx(str(tmp_path / "other.onnx"))


def test_a_zero_iteration_loops_scan_output_typed_otherwise_than_its_body_computes_is_refused(tmp_path):
    from onnx_oracle import ort_run

    from memplan.importers.onnx import import_onnx

    onnx, model = _empty_scan_model([2, 3], elem=3)   # (int8 declared, float computed)
    with pytest.raises(Exception, match="Type Error"):
        ort_run(model, {"x0": np.ones(2, np.float32)})
    onnx.save(model, tmp_path / "typed.onnx")
    with pytest.raises(GraphError, match=r"declares scan output #0 'scan' \(body output 's'\) tensor\(int8\), but its "
                                         r"nodes compute tensor\(float\): onnxruntime refuses to load the model"):
        import_onnx(str(tmp_path / "typed.onnx"))
