"""Review of rounds 45-47 (round 48): the tests' own blind spots, pinned so they cannot come back.

- Property tests that plan random graphs skipped every ``MemplanError`` as "a refusal": that caught UnsafePlan (a plan
  failing the planner's own verification) and InvalidPacking (a solver's offsets overlapping), the bugs those tests
  hunt. With the ``size`` solver returning every offset 0, rounds 47's three oracle property tests passed. They now
  skip through ``tests/refusals.skip_refusal``, which re-raises both.
- The onnxruntime refusal oracle of rounds 35/36/45/46 took any exception (a TypeError of the test's own making) as
  onnxruntime refusing the model; ``onnx_oracle.ort_refuses`` counts onnxruntime's own errors only.
- The import walls of DESIGN.md, checked from the source (memplan never imports runtime; verify.py none of the
  planner's steps; solvers/ never a Graph; nothing imports cli.py), so a later round cannot break one unseen.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import numpy as np
import pytest
from needs import need
from refusals import REFUSALS, skip_refusal

import memplan
from memplan.errors import BudgetError, ScheduleError, SolverError, UnsafePlan
from memplan.examples import bundled
from memplan.solvers.check import InvalidPacking

ROOT = pathlib.Path(__file__).resolve().parent.parent


# ---- refusals: what a property test may skip ------------------------------------------------------------------

def _skipped(exc: BaseException) -> bool:
    try:
        skip_refusal(exc)
    except BaseException as raised:   # noqa: BLE001 - the very object handed in comes back out
        assert raised is exc
        return False
    return True


def test_refusals_by_design_are_skipped_and_planner_bugs_are_not():
    assert _skipped(BudgetError("no schedule fits"))
    assert _skipped(ScheduleError("devices=3 is more than the graph can use"))
    assert _skipped(SolverError("solver 'ggml' plans a serial order only"))
    assert not _skipped(UnsafePlan([(3, "tensors 'a' and 'b' overlap")]))
    assert not _skipped(InvalidPacking("solver 'size' overlapped conflicting buffers"))
    assert not _skipped(ValueError("a raw error is never a refusal"))
    assert InvalidPacking.__mro__.index(SolverError) > 0 and issubclass(InvalidPacking, REFUSALS)


def test_a_solver_returning_overlapping_offsets_is_not_skipped(monkeypatch):
    """The mutation that round 47's oracle property tests passed: every offset of the ``size`` solver set to 0. The
    planner refuses its own packing (InvalidPacking), and the refusal filter the tests now use re-raises it."""
    from memplan.solvers import size

    real = size.solve

    def broken(*args, **kwargs):
        sol = real(*args, **kwargs)
        return dataclasses.replace(sol, offsets=sol.offsets * 0)

    monkeypatch.setattr(size, "solve", broken)
    with pytest.raises(InvalidPacking) as err:
        try:
            memplan.plan(bundled()["moe"], solver="size")
        except REFUSALS as exc:
            skip_refusal(exc)
    assert "'size'" in str(err.value)


# ---- onnxruntime's refusals ------------------------------------------------------------------------------------

def test_ort_refuses_counts_onnxruntime_errors_only():
    need("onnx")
    need("onnxruntime")
    from onnx import TensorProto as T
    from onnx import helper
    from onnx_oracle import ort_refuses

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", T.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    assert not ort_refuses(m)
    assert not ort_refuses(m, {"x": np.ones(2, np.float32)})
    assert ort_refuses(m, {"x": np.ones(2, np.int64)})   # onnxruntime's InvalidArgument: a refusal of its own
    bad = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"], axis=1)], "g",
                                              list(g.input), list(g.output)),
                            opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    assert ort_refuses(bad)   # an attribute Relu has not: onnxruntime refuses to load it
    with pytest.raises(AttributeError):   # a test's own mistake (feeds as a list) surfaces, not counted as refused
        ort_refuses(m, [np.ones(2, np.float32)])


# ---- DESIGN.md's import walls --------------------------------------------------------------------------------

def _imports(root: pathlib.Path) -> dict[str, set[str]]:
    """Every module's imported module names under ``root/memplan`` (absolute; relative ones resolved against the
    module's package; imports inside functions too, as the walls bar those as well)."""
    out: dict[str, set[str]] = {}
    for path in sorted((root / "memplan").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        package = parts[:-1]   # (a module's package; an __init__.py's is its own folder, the same list)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package[:len(package) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                names.add(base)
                names.update(f"{base}.{a.name}" for a in node.names)
        out[".".join(parts)] = names
    return out


def _hits(names: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))


def _breaches(imports: dict[str, set[str]]) -> list[tuple[str, list[str]]]:
    """(module, the names it imports across a wall) for every breach of DESIGN.md's walls."""
    out = []
    for mod, names in imports.items():
        banned: tuple[str, ...] = ("runtime",)
        if mod not in ("memplan.cli", "memplan.__main__"):
            banned += ("memplan.cli",)
        if mod.startswith("memplan.solvers"):
            banned += ("memplan.graph", "memplan.schedule", "memplan.lifetimes", "memplan.optimize", "memplan.plan")
        if mod == "memplan.verify":
            banned += ("memplan.solvers", "memplan.lifetimes", "memplan.optimize", "memplan.schedule",
                       "memplan.problem", "memplan.plan")
        if _hits(names, banned):
            out.append((mod, _hits(names, banned)))
    return out


def test_design_import_walls_hold():
    imports = _imports(ROOT)
    assert {"memplan.verify", "memplan.solvers", "memplan.solvers.greedy", "memplan.cli"} <= set(imports)
    assert _breaches(imports) == []


def test_the_wall_check_sees_each_breach(tmp_path):
    """The check above can fail: a relative import of the graph from solvers/, of a solver from verify.py, of cli.py
    from inside a function, and of runtime, are each found."""
    files = {"memplan/__init__.py": "", "memplan/solvers/__init__.py": "from . import bad\n",
             "memplan/solvers/bad.py": "from ..graph import Graph\n",
             "memplan/verify.py": "def f():\n    from .solvers import greedy\n",
             "memplan/show.py": "def g():\n    from . import cli\n",
             "memplan/io/__init__.py": "import runtime.aten\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _breaches(_imports(tmp_path)) == [
        ("memplan.io", ["runtime.aten"]), ("memplan.show", ["memplan.cli"]),
        ("memplan.solvers.bad", ["memplan.graph", "memplan.graph.Graph"]),
        ("memplan.verify", ["memplan.solvers", "memplan.solvers.greedy"])]


# ---- UnsafePlan made from a plain message ---------------------------------------------------------------------

def test_unsafe_plan_from_a_message_is_itself_not_a_value_error():
    """``raise memplan.UnsafePlan("...")`` (a checker of one's own, raising as with any exception) raised a bare
    ValueError ("not enough values to unpack"): the message was read as findings, one per character. It is one finding
    of no rule now; findings as ``(rule, message)`` show as before, and it pickles as itself."""
    import pickle

    e = memplan.UnsafePlan("tensor 'a' is read before it is written")
    assert str(e) == "unsafe plan: tensor 'a' is read before it is written"
    assert e.violations == [(0, "tensor 'a' is read before it is written")]
    assert str(e.at("p.json")) == "p.json: unsafe plan: tensor 'a' is read before it is written"
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is memplan.UnsafePlan and str(back) == str(e)
    assert str(memplan.UnsafePlan([(1, "m1"), (3, "m3")], "p.json")) == "p.json: unsafe plan: rule 1: m1; rule 3: m3"
    assert str(memplan.UnsafePlan([(3, "a", "b"), (1, "m")])) == "unsafe plan: (3, 'a', 'b'); rule 1: m"
    # where the plan was read, as a path object (``where + ": "`` raised a TypeError for one)
    assert str(memplan.UnsafePlan([(1, "m")], pathlib.Path("p.json"))) == "p.json: unsafe plan: rule 1: m"


# ---- errors survive a trip to another process --------------------------------------------------------------------

def test_errors_raised_to_callers_unpickle_as_themselves():
    """An error raised in a worker process comes back pickled (``ProcessPoolExecutor``, ``multiprocessing.Pool``).
    ``runtime.aten``'s ExtraArguments (a compiled call given an argument compile left out) took ``extra`` as a
    required argument, and unpickling, which calls the class with the message alone, raised a TypeError in its place;
    every memplan error class is held to the same here."""
    import pickle

    import memplan.errors as errors

    need("torch")
    from runtime.aten.callform import ExtraArguments

    e = ExtraArguments("forward got 'flag' which compile left out", {"flag": True})
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is ExtraArguments and str(back) == str(e) and back.extra == {"flag": True}
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.MemplanError)]
    assert errors.UnsafePlan in classes and errors.GraphError in classes
    for cls in classes:
        made = cls("some message")
        again = pickle.loads(pickle.dumps(made))
        assert type(again) is cls and str(again) == str(made), cls


def _module_level_imports(tree: ast.Module) -> list[str]:
    """The modules a file imports when it is imported: every import outside a function body (inside a top-level
    ``try``/``if`` too), absolute ones only."""
    out: list[str] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.append(node.module or "")
        todo.extend(ast.iter_child_nodes(node))
    return out


def test_runtime_walls_hold():
    """DESIGN.md: ``runtime/aten/`` never imports pycuda (anywhere); the pycuda side never imports torch at module
    level (``import runtime`` must work without torch)."""
    breaches = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("runtime/aten/"):
            every = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            every += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
            breaches += [(rel, m) for m in every if m.split(".")[0] == "pycuda"]
        elif not rel.startswith("runtime/tools/"):   # (tools are scripts, run by hand)
            breaches += [(rel, m) for m in _module_level_imports(tree) if m.split(".")[0] == "torch"]
    assert breaches == []
    fake = ast.parse("try:\n    import torch\nexcept ImportError:\n    pass\ndef f():\n    import torch.nn\n")
    assert _module_level_imports(fake) == ["torch"]   # (the check sees a guarded top-level import, not a lazy one)


# ---- skips that hide a broken install ------------------------------------------------------------------------

def test_ortools_is_there_where_the_solver_tests_skip_without_it():
    """ortools is a core dependency (setup.py's install_requires), yet some thirty solver tests of earlier rounds skip
    where it does not import (``skipif(find_spec("ortools") is None)``, ``importorskip``), so an install without it
    passed CI as a run of skipped tests. This one goes through ``need``: skipped in a bare checkout, failed under CI."""
    need("ortools")
    from ortools.sat.python import cp_model

    assert cp_model.CpModel().validate() == ""


def test_need_fails_under_ci_where_a_plain_skip_would_pass(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="no_such_module_r48 is missing"):
        need("no_such_module_r48")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        need("no_such_module_r48")
