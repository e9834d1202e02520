"""Review of round 40's merged change (onnx40, solver40, hostile40): the cases next to each fix that its tests left
out, and one bug found in a fix.

1. ``memplan example -o a/../b/ex`` on a disk that fills up: hostile40 takes away the directories a failed run made,
   but counted them on the path made absolute (``os.path.abspath`` folds ``a/..`` away), so the ``a`` that
   ``os.makedirs`` had made stayed, empty. The directories are now made one at a time and exactly those this run's
   ``mkdir`` made are taken away; a directory that was there before (``b``, reached as ``a/../b``) stays.
2. What onnx40's schema check must let through: models onnxruntime runs (an op deprecated later but not at the
   model's opset, ``__``-prefixed internal attributes, onnxruntime's own ``LayerNormalization`` in the default
   domain at opset 12, optional inputs and outputs given as "", every ``Constant`` form, ``ai.onnx.ml`` ops), each
   planned at the sizes onnxruntime allocates; and what it refuses as onnxruntime does (``Scatter`` from opset 11,
   ``TreeEnsembleRegressor`` at ``ai.onnx.ml`` 5, an attribute whose type and data disagree).
3. hostile40: a closed stdout for every subcommand of the parser, each either refused (one line, exit 2) or its file
   written; ``example -o DIR`` through a symlink named like an example.
4. solver40: a gap above the bound never prints 0.0 in ``show``'s solver line of a split plan either.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from cli_contract import assert_bad_input, run_memplan
from needs import need

import memplan
from memplan.examples import bundled, diamond
from memplan.io import graph_text

# ---- 1. a failed example takes away exactly the directories it made ---------------------------------------------


def _disk_full(monkeypatch) -> None:
    from memplan import files

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)


@pytest.mark.parametrize("given", ["a/../b/ex", "a/./b//ex/", "b/../a/ex"])
def test_a_failed_example_leaves_no_directory_it_made_on_a_path_with_dots(tmp_path, monkeypatch, capsys, given):
    """``a/../b/ex``: ``os.makedirs`` makes ``a``, then ``b`` and ``ex``; the run counted ``b`` and ``ex`` only
    (``abspath`` folds ``a/..``), so ``a`` stayed. ``b/../a/ex`` with ``b`` there before: ``b`` stays."""
    monkeypatch.chdir(tmp_path)
    if given.startswith("b/"):
        (tmp_path / "b").mkdir()
    _disk_full(monkeypatch)
    code, out, err = run_memplan(capsys, ["example", "-o", given])
    assert_bad_input(code, err, "No space left on device")
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == (["b"] if given.startswith("b/") else [])


def test_a_failed_example_keeps_a_directory_that_was_there_reached_through_dots(tmp_path, monkeypatch, capsys):
    """``a/../b/ex`` where ``b`` was there (empty) and ``a`` was not: before ``a`` is made, ``a/../b`` is no
    directory, yet it is the user's ``b``: it stays, and ``a`` and ``ex`` go."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b").mkdir()
    _disk_full(monkeypatch)
    code, _, err = run_memplan(capsys, ["example", "-o", "a/../b/ex"])
    assert_bad_input(code, err, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and not os.listdir(tmp_path / "b")


def test_example_through_dots_still_writes_every_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_memplan(capsys, ["example", "-o", "a/../b/ex"])
    assert code == 0
    assert sorted(os.listdir(tmp_path / "b" / "ex")) == sorted(f"{s}.json" for s in bundled())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]   # (``a`` made on the way, as mkdir -p does)


def test_example_under_a_file_is_refused_and_makes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("mine\n")
    code, _, err = run_memplan(capsys, ["example", "-o", "new/../f/ex"])
    assert_bad_input(code, err, "cannot create directory new/../f/ex")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"] and (tmp_path / "f").read_text() == "mine\n"


# ---- 2. the ONNX schema check against onnxruntime ----------------------------------------------------------------

def _onnx():
    onnx = need("onnx")
    need("onnxruntime")
    return onnx


def _model(nodes, inputs, inits=(), opsets=(("", 18),), ir=8):
    from onnx import helper

    g = helper.make_graph(nodes, "g", inputs, [helper.ValueInfoProto(name="y")], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=ir)


def _x(shape=(1, 1, 2, 2)):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))


def _runnable():
    """(name, model, feeds) onnxruntime runs, each planned as it allocates."""
    from onnx import helper
    from onnx import numpy_helper as nh

    x4 = {"x": np.ones((1, 1, 2, 2), np.float32)}
    x2 = {"x": np.ones((2, 2), np.float32)}
    tree = dict(n_targets=1, nodes_featureids=[0], nodes_modes=["LEAF"], nodes_nodeids=[0], nodes_treeids=[0],
                nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0], target_ids=[0],
                target_nodeids=[0], target_treeids=[0], target_weights=[1.0])
    scales = nh.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    return [
        ("Upsample at 9 (deprecated from 10)",
         _model([helper.make_node("Upsample", ["x", "s"], ["y"])], [_x()], [scales], (("", 9),)), x4),
        ("Scatter at 10 (deprecated from 11)",
         _model([helper.make_node("Scatter", ["x", "i", "u"], ["y"])], [_x()],
                [nh.from_array(np.zeros((1, 1, 1, 1), np.int64), "i"),
                 nh.from_array(np.ones((1, 1, 1, 1), np.float32), "u")], (("", 10),)), x4),
        ("an internal __ attribute", _model([helper.make_node("Relu", ["x"], ["y"], __note=1)], [_x()]), x4),
        ("onnxruntime's LayerNormalization at opset 12",
         _model([helper.make_node("LayerNormalization", ["x", "w"], ["y"], axis=-1, epsilon=1e-5)], [_x()],
                [nh.from_array(np.ones(2, np.float32), "w")], (("", 12),)), x4),
        ("Clip with an omitted min",
         _model([helper.make_node("Clip", ["x", "", "m"], ["y"])], [_x()],
                [nh.from_array(np.array(0.5, np.float32), "m")]), x4),
        ("Resize with an omitted roi",
         _model([helper.make_node("Resize", ["x", "", "s"], ["y"])], [_x()], [scales]), x4),
        ("Dropout with an omitted mask", _model([helper.make_node("Dropout", ["x"], ["y", ""])], [_x()]), x4),
        *[(f"Constant {k}", _model([helper.make_node("Constant", [], ["c"], **{k: v}),
                                     helper.make_node("Identity", ["c"], ["y"])], []), {})
          for k, v in (("value_float", 1.0), ("value_ints", [1, 2]), ("value_floats", [1.0, 2.0]),
                       ("value_int", 3))],
        ("ai.onnx.ml TreeEnsembleRegressor at 3",
         _model([helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", **tree)],
                [_x((2, 2))], opsets=(("", 18), ("ai.onnx.ml", 3))), x2),
        ("opset 7 at IR version 3", _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], (), (("", 7),), 3),
         x4),
    ]


def test_models_onnxruntime_runs_pass_the_schema_check_at_its_sizes():
    _onnx()
    from onnx_oracle import ort_sizes, size_mismatches

    from memplan.importers.onnx import import_onnx

    for name, model, feeds in _runnable():
        real = ort_sizes(model, feeds, strict=True)
        graph = import_onnx(model)
        compared, bad = size_mismatches(graph, real)
        assert compared and not bad, (name, bad)


def _refused():
    from onnx import helper
    from onnx import numpy_helper as nh

    tree = dict(n_targets=1, nodes_featureids=[0], nodes_modes=["LEAF"], nodes_nodeids=[0], nodes_treeids=[0],
                nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0], target_ids=[0],
                target_nodeids=[0], target_treeids=[0], target_weights=[1.0])
    gather = helper.make_node("Gather", ["x", "i"], ["y"], axis=1, name="pick")
    gather.attribute[0].f = 2.0   # (typed INT, a float field set too)
    return [
        ("Scatter at 13", _model([helper.make_node("Scatter", ["x", "i", "u"], ["y"], name="sc")], [_x()],
                                 [nh.from_array(np.zeros((1, 1, 1, 1), np.int64), "i"),
                                  nh.from_array(np.ones((1, 1, 1, 1), np.float32), "u")], (("", 13),)),
         {"x": np.ones((1, 1, 2, 2), np.float32)}, r"node 'sc' \(Scatter\).*deprecated"),
        ("TreeEnsembleRegressor at ai.onnx.ml 5",
         _model([helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", name="t", **tree)],
                [_x((2, 2))], opsets=(("", 18), ("ai.onnx.ml", 5))),
         {"x": np.ones((2, 2), np.float32)}, r"node 't' \(TreeEnsembleRegressor\).*deprecated"),
        ("a type and data that disagree", _model([gather], [_x()], [nh.from_array(np.zeros(2, np.int64), "i")]),
         {"x": np.ones((1, 1, 2, 2), np.float32)}, r"node 'pick' \(Gather\).*mismatch in attribute axis"),
    ]


@pytest.mark.parametrize("k", range(3))
def test_what_onnxruntime_refuses_the_schema_check_refuses_by_name(k):
    _onnx()
    from onnx_oracle import ort_sizes

    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    name, model, feeds, message = _refused()[k]
    assert ort_sizes(model, feeds) is None, name
    with pytest.raises(GraphError, match=message):
        import_onnx(model)


# ---- 3. a closed stdout, every subcommand; example over a link --------------------------------------------------

@pytest.fixture
def paths(tmp_path):
    g, p, c = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "c.csv"
    memplan.save_graph(diamond(), str(g))
    memplan.save_plan(memplan.plan(diamond()), str(p))
    c.write_text("id,lower,upper,size\n0,0,2,4\n1,1,3,4\n")
    onnx = _onnx()
    from onnx import helper
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"])], [_x()]), str(tmp_path / "m.onnx"))
    return {"g": str(g), "p": str(p), "c": str(c), "d": str(tmp_path)}


#: every subcommand with stdout closed: (argv, the file it writes where it runs, or None where it is refused)
CLOSED = [
    (["plan", "{g}", "-o", "-"], None), (["plan", "{g}", "-o", "{d}/p2.json"], "p2.json"),
    (["verify", "{g}", "{p}"], None), (["show", "{p}"], None), (["simulate", "{g}", "{p}"], None),
    (["example", "-o", "{d}/ex"], None), (["csv", "{c}", "-o", "-"], None), (["csv", "{c}", "-o", "{d}/o.csv"], "o.csv"),
    (["trace", "{g}", "{p}", "-o", "-"], None), (["trace", "{g}", "{p}", "-o", "{d}/t.json"], "t.json"),
    (["bench", "planners"], None), (["bench", "planners", "--json", "-"], None),
    (["import", "{d}/m.onnx", "-o", "-"], None),
]


def test_the_closed_stdout_table_covers_every_subcommand():
    from memplan.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    covered = {argv[0] for argv, _ in CLOSED} | {"draw"}   # (draw writes a picture file only: -o - is refused)
    assert covered == set(sub.choices)


@pytest.mark.parametrize("argv,written", CLOSED, ids=[" ".join(a[:2]) + (" file" if w else "") for a, w in CLOSED])
def test_every_subcommand_with_stdout_closed_refuses_or_writes_its_file(paths, capsys, monkeypatch, argv, written):
    import sys

    if argv[0] == "bench":   # (refused before any run: the suite is never reached)
        from memplan.benchmarks import planners
        monkeypatch.setattr(planners, "run", lambda *a, **k: pytest.fail("bench ran with stdout closed"))
    monkeypatch.setattr(sys, "stdout", None)
    code, _, err = run_memplan(capsys, [a.format(**paths) for a in argv])
    before = set(os.listdir(paths["d"]))
    if written is None:
        assert_bad_input(code, err, "stdout")
        assert "closed" in err
    else:
        assert code == 0, err
        assert written in before
    assert "ex" not in before


def test_example_over_a_link_to_the_examples_bytes_keeps_the_users_file(tmp_path, capsys):
    """A link ``ex/chain.json`` to the user's copy of the bundled chain: a rerun writes the same bytes through it
    (nothing lost); a link to another file is refused and the file kept."""
    ex, keep = tmp_path / "ex", tmp_path / "keep"
    ex.mkdir(), keep.mkdir()
    (keep / "chain.json").write_text(graph_text(bundled()["chain"]))
    (keep / "mine.json").write_text("mine\n")
    os.symlink(keep / "chain.json", ex / "chain.json")
    code, _, err = run_memplan(capsys, ["example", "-o", ex])
    assert code == 0, err
    assert (keep / "chain.json").read_text() == graph_text(bundled()["chain"])
    other = tmp_path / "ex2"
    other.mkdir()
    os.symlink(keep / "mine.json", other / "chain.json")
    code, _, err = run_memplan(capsys, ["example", "-o", other])
    assert_bad_input(code, err, "chain.json is already there")
    assert (keep / "mine.json").read_text() == "mine\n" and os.listdir(other) == ["chain.json"]


# ---- 4. gaps above the bound in show, split plans ----------------------------------------------------------------

def test_show_of_a_split_plan_above_its_bound_never_reads_gap_0():
    from memplan.graph import graph_from_dict
    from memplan.show import describe

    sizes = [2**48 - 1, 2**48 - 1, 2**48 - 3]
    doc = {"format": "memplan.graph/1", "name": "huge", "alignment": 256,
           "tensors": [{"id": "x", "size": 64, "kind": "input"}]
           + [{"id": f"t{i}", "size": s, "kind": "intermediate"} for i, s in enumerate(sizes)]
           + [{"id": "y", "size": 64, "kind": "output"}, {"id": "z", "size": 64, "kind": "output"}],
           "nodes": [{"id": "n", "inputs": ["x"], "outputs": ["t0", "t1", "t2"]},
                     {"id": "m", "inputs": ["t0", "t1", "t2"], "outputs": ["y"]},
                     {"id": "k", "inputs": ["y"], "outputs": ["z"]}]}
    planned = memplan.plan_graph(graph_from_dict(doc), devices=2, solver="greedy")
    block = planned.plan.solver
    assert any(e["arena_bytes"] > e["lower_bound_bytes"] for e in block["per_device"]), block
    assert 0 < block["gap"] < 1e-6
    line = next(ln for ln in describe(planned.plan).splitlines() if ln.startswith("solver"))
    assert "gap=0.0," not in line and f"gap={block['gap']}" in line, line


# ---- 5. a Ctrl-C in a capacity round where the solver asked for is the default itself (auto with a time limit) ----

def test_a_ctrl_c_under_auto_with_a_time_limit_carries_into_the_next_capacity_round(monkeypatch):
    """solver40's carry tested ``solver="search"``; with ``auto`` and a time limit the devices after a Ctrl-C get
    ``auto`` too (only without its time limit), so the stand-ins are told apart by their options: every solve after
    the Ctrl-C has no time limit (no exact search), and the plan says ``interrupted``."""
    import importlib

    from memplan.problem import Solution

    plan_module = importlib.import_module("memplan.plan")
    g = memplan.examples.moe()
    kw = dict(devices=2, solver="auto", time_limit=0.2)
    planned = memplan.plan_graph(g, **kw)
    cap = max(a + w for a, w in zip(planned.plan.device_arena_bytes, planned.split.weight_bytes)) - 1
    calls: list[tuple[str, float | None]] = []
    real = plan_module.solve

    def solve_(problem, solver, options):
        calls.append((solver, options.time_limit))
        sol = real(problem, solver, options)
        if len(calls) == 1:   # (device 0's solve of the first round: a Ctrl-C ends it)
            sol = Solution(sol.offsets, sol.arena, sol.solver, sol.status, sol.lower_bound,
                           {**sol.info, "interrupted": True})
        return sol

    monkeypatch.setattr(plan_module, "solve", solve_)
    planned = memplan.plan_graph(g, device_capacity=cap, **kw)
    assert planned.plan.solver.get("interrupted") is True, planned.plan.solver
    assert calls[0][1] is not None and len(calls) > 2 and all(t is None for _, t in calls[1:]), calls
    memplan.verify(planned.graph, planned.plan)
