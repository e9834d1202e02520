"""Session 56 (mutation56): mutation testing of the code round 55 left out, to find checks no test can make fail.

Targets: the solvers' result checking and offsets (``solvers/check.py``, the dispatch in ``solvers/__init__.py``
that decides a packing is returned, ``size``, ``greedy``, ``search``, the CP-SAT wrapper), the optimizer's stream
assignment (fusion groups, ``optimize/streams.py``) and memory budget (``optimize/budget.py``), plan JSON writing
(``planfile``'s dump and ``files``' atomic writes) and the CLI's exit codes (``cli.main`` / ``cli._main``).

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s56.py [--only check,cli] [--list]
[--ids 3,17] [--tests tests/x.py]``. The driver is round 55's (``mutation_s55.py``: the same operators, the same
evenly spaced pick, the same copy-to-a-temporary-tree run of ``pytest -x -q`` under a 60 s timeout), imported, not
copied; this file adds the targets, a filter to the functions of a module that do the job under test (a module
such as ``cli.py`` is mostly argument checks this round does not test), and one operator:

- ``ret``: ``return <int>`` / ``return EXIT_*`` becomes ``return 0`` (``return 1`` where it was 0): an exit code lost.
"""
from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutation_s55 as s55  # noqa: E402  (round 55's driver: operators, pick, mutate)

R56 = "tests/test_mutation_round56.py"
#: name -> (module, fast test files that cover it, functions to mutate: None for all)
TARGETS: dict[str, tuple[str, list[str], tuple[str, ...] | None]] = {
    "check": ("memplan/solvers/check.py", ["tests/test_mutants.py", "tests/test_solver_round42.py", R56], None),
    "solve": ("memplan/solvers/__init__.py", ["tests/test_solver_round42.py", "tests/test_planners.py", R56], None),
    "size": ("memplan/solvers/size.py", ["tests/test_review_round32c.py", "tests/test_solver_round30.py", R56], None),
    "greedy": ("memplan/solvers/greedy.py", ["tests/test_greedy_round49.py", R56], None),
    "search": ("memplan/solvers/search.py", ["tests/test_search_restarts.py", "tests/test_solvers_round50.py", R56],
               None),
    "cpsat": ("memplan/solvers/cpsat.py", ["tests/test_cpsat.py", R56], None),
    "streams": ("memplan/optimize/streams.py", ["tests/test_optimize.py", "tests/test_fused_groups.py", R56], None),
    "budget": ("memplan/optimize/budget.py", ["tests/test_budget_round54.py", R56], None),
    "files": ("memplan/files.py", ["tests/test_io_modes.py", "tests/test_io_round50.py", R56],
              ("atomic_write_bytes", "atomic_write_text", "staged", "_rename_all", "_discard", "_put_back", "_keep")),
    "planjson": ("memplan/planfile.py", ["tests/test_determinism_round31.py", R56],
                 ("to_dict", "_with_fields", "to_json", "json_text", "_by_entry", "_dumps_by_entry")),
    "cli": ("memplan/cli.py", ["tests/test_cli.py", R56], ("main", "_main")),
}
QUOTA = {"check": 8, "solve": 6, "size": 6, "greedy": 8, "search": 6, "cpsat": 6, "streams": 8, "budget": 6,
         "files": 6, "planjson": 5, "cli": 6}


def _inside(tree: ast.Module, funcs: tuple[str, ...] | None) -> set[int]:
    """ast.walk indices of the nodes inside the named functions (every function where None)."""
    keep = set()
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and (funcs is None or f.name in funcs):
            keep.update(id(n) for n in ast.walk(f))
    return {i for i, n in enumerate(ast.walk(tree)) if id(n) in keep}


def _exit_code(n: ast.AST) -> bool:
    v = n.value if isinstance(n, ast.Return) else None
    return ((isinstance(v, ast.Constant) and type(v.value) is int)
            or (isinstance(v, ast.Name) and v.id.startswith("EXIT_")))


def candidates(tree: ast.Module, funcs: tuple[str, ...] | None) -> list[tuple[str, int, int, str]]:
    """Round 55's candidates plus ``ret``, inside ``funcs``."""
    inside = _inside(tree, funcs)
    out = [c for c in s55.candidates(tree) if c[1] in inside]
    for i, n in enumerate(ast.walk(tree)):
        if i in inside and _exit_code(n):
            out.append(("ret", i, 0, f"return {ast.unparse(n.value)} -> {1 if _is_zero(n.value) else 0}"))
    return sorted(out, key=lambda c: (c[1], c[2]))


def _is_zero(v: ast.AST) -> bool:
    return isinstance(v, ast.Constant) and v.value == 0


def mutate(tree: ast.Module, cand: tuple[str, int, int, str]) -> tuple[str, int]:
    if cand[0] != "ret":
        return s55.mutate(tree, cand)
    t = copy.deepcopy(tree)
    n = list(ast.walk(t))[cand[1]]
    n.value = ast.Constant(1 if _is_zero(n.value) else 0)
    ast.fix_missing_locations(t)
    return ast.unparse(t), n.lineno


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--ids", default="")
    ap.add_argument("--tests", default="", help="comma-separated test files to run instead of the target's own")
    ap.add_argument("--without", default="", help="a test file left out of every run (the 'before' column)")
    a = ap.parse_args()
    root = os.getcwd()
    want = {int(x) for x in a.ids.split(",") if x}
    plan = []
    k = 0
    for name in TARGETS:   # (ids are fixed by TARGETS' order, whatever --only picks)
        path, tests, funcs = TARGETS[name]
        src = open(os.path.join(root, path)).read()
        tree = ast.parse(src)
        for c in s55.pick(candidates(tree, funcs), QUOTA[name]):
            if name in a.only.split(","):
                plan.append((k, name, path, tests, tree, src, c))
            k += 1
    if a.list:
        for k, name, _path, _, tree, _, c in plan:
            print(f"{k:3d} {name:8s} L{mutate(tree, c)[1]:<4d} {c[0]:4s} {c[3]}")
        return
    tmp = tempfile.mkdtemp(prefix="mut56_")
    for d in ("memplan", "runtime", "tests"):
        shutil.copytree(os.path.join(root, d), os.path.join(tmp, d), ignore=shutil.ignore_patterns("__pycache__"))
    if a.without:
        os.remove(os.path.join(tmp, a.without))
    env = dict(os.environ, PYTHONPATH=tmp, PYTHONDONTWRITEBYTECODE="1")
    killed = survived = 0
    try:
        for k, name, path, tests, tree, src, c in plan:
            if want and k not in want:
                continue
            text, line = mutate(tree, c)
            target = os.path.join(tmp, path)
            with open(target, "w") as f:
                f.write(text)
            tests = a.tests.split(",") if a.tests else tests
            tests = [t for t in tests if os.path.exists(os.path.join(tmp, t))]
            t0 = time.perf_counter()
            try:
                r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                   cwd=tmp, env=env, capture_output=True, timeout=60)
                dead = r.returncode != 0
            except subprocess.TimeoutExpired:
                dead = True
            with open(target, "w") as f:
                f.write(src)
            killed += dead
            survived += not dead
            print(f"{k:3d} {name:8s} L{line:<4d} {c[0]:4s} {c[3]:30s} {'KILLED' if dead else 'SURVIVED':8s} "
                  f"{time.perf_counter() - t0:5.1f} s", flush=True)
    finally:
        shutil.rmtree(tmp)
    print(f"total {killed + survived}: killed {killed}, survived {survived}")


if __name__ == "__main__":
    main()
