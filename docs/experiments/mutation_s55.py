"""Session 55 (mutation55): mutation testing of the safety core, to find checks no test can make fail.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s55.py [--only verify,lifetimes]
[--list] [--ids 3,17]``. The tree (``memplan/``, ``runtime/``, ``tests/``) is copied once into a temporary folder;
each mutant rewrites one target module there (``ast.unparse`` of the module with one node changed), runs only the
fast test files that cover that module (``pytest -x -q``, 60 s timeout), records killed / survived, and puts the
module back. Mutants are picked by an AST walk over each target's functions, deterministically (evenly spaced over
all candidates, ``QUOTA`` per target), with these operators:

- ``cmp``: flip one comparison (``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``in``/``not in``, ``is``/``is not``);
- ``drop``: drop one operand of an ``and`` / ``or``;
- ``skip``: make the test of an ``if`` whose body starts with ``raise``, ``return``, ``continue`` or a call
  that reports (``bad(...)``) always False (the check is skipped);
- ``obo``: ``x + 1`` / ``x - 1`` become ``x`` (off-by-one).

Output: one line per mutant (id, target, line, operator, what changed, KILLED/SURVIVED, seconds), then totals.
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

TARGETS = {
    "verify": ("memplan/verify.py", ["tests/test_verify.py", "tests/test_mutants.py", "tests/test_mutation_round55.py"]),
    "lifetimes": ("memplan/lifetimes.py", ["tests/test_lifetimes.py", "tests/test_mutants.py",
                                           "tests/test_precedence.py", "tests/test_bounds.py",
                                           "tests/test_mutation_round55.py"]),
    "events": ("memplan/optimize/events.py", ["tests/test_schedule.py", "tests/test_lifetimes.py",
                                              "tests/test_verify.py", "tests/test_mutation_round55.py"]),
    "planfile": ("memplan/planfile.py", ["tests/test_hostile_round37_fields.py", "tests/test_roundtrip_round27.py",
                                         "tests/test_plan_round30_left.py", "tests/test_mutation_round55.py"]),
}
QUOTA = {"verify": 26, "lifetimes": 16, "events": 12, "planfile": 12}
FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
        ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def _guard_body(node: ast.If) -> bool:
    """True for ``if cond: raise/return/continue/bad(...)``: the shape of a check."""
    first = node.body[0]
    if isinstance(first, (ast.Raise, ast.Return, ast.Continue)):
        return True
    return (isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
            and isinstance(first.value.func, ast.Name) and first.value.func.id in {"bad", "past_cap", "fail"})


def candidates(tree: ast.Module) -> list[tuple[str, int, int, str]]:
    """Every (operator, node index in ast.walk order, sub-index, description) in the module's functions."""
    out = []
    in_func = set()
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for n in ast.walk(f):
                in_func.add(id(n))
    for i, n in enumerate(ast.walk(tree)):
        if id(n) not in in_func:
            continue
        if isinstance(n, ast.Compare):
            for j, op in enumerate(n.ops):
                if type(op) in FLIP:
                    out.append(("cmp", i, j, f"{type(op).__name__}->{FLIP[type(op)].__name__}"))
        elif isinstance(n, ast.BoolOp) and len(n.values) >= 2:
            for j in range(len(n.values)):
                out.append(("drop", i, j, f"drop {type(n.op).__name__} operand {j}"))
        elif isinstance(n, ast.If) and _guard_body(n):
            out.append(("skip", i, 0, f"skip if-{type(n.body[0]).__name__}"))
        elif (isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub))
              and isinstance(n.right, ast.Constant) and n.right.value == 1):
            out.append(("obo", i, 0, f"drop {'+' if isinstance(n.op, ast.Add) else '-'} 1"))
    return out


def mutate(tree: ast.Module, cand: tuple[str, int, int, str]) -> tuple[str, int]:
    """The module's source with one candidate applied, and the line it is on."""
    kind, i, j, _ = cand
    t = copy.deepcopy(tree)
    nodes = list(ast.walk(t))
    n = nodes[i]
    line = n.lineno
    if kind == "cmp":
        n.ops[j] = FLIP[type(n.ops[j])]()
    elif kind == "drop":
        n.values.pop(j)
        if len(n.values) == 1:
            _replace(t, n, n.values[0])
    elif kind == "skip":
        n.test = ast.Constant(False)
    elif kind == "obo":
        _replace(t, n, n.left)
    ast.fix_missing_locations(t)
    return ast.unparse(t), line


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for k, v in enumerate(value):
                    if v is old:
                        value[k] = new
                        return


def pick(cands: list, quota: int) -> list:
    """Evenly spaced over all candidates: every part of the module gets some, deterministically."""
    if len(cands) <= quota:
        return cands
    return [cands[(k * len(cands)) // quota] for k in range(quota)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--ids", default="")
    ap.add_argument("--tests", default="", help="comma-separated test files to run instead of the target's own")
    a = ap.parse_args()
    root = os.getcwd()
    want = {int(x) for x in a.ids.split(",") if x}
    plan = []
    for name in a.only.split(","):
        path, tests = TARGETS[name]
        src = open(os.path.join(root, path)).read()
        tree = ast.parse(src)
        for c in pick(candidates(tree), QUOTA[name]):
            plan.append((name, path, tests, tree, src, c))
    if a.list:
        for k, (name, _path, _, tree, _, c) in enumerate(plan):
            print(f"{k:3d} {name:9s} L{mutate(tree, c)[1]:<4d} {c[0]:4s} {c[3]}")
        return
    tmp = tempfile.mkdtemp(prefix="mut55_")
    for d in ("memplan", "runtime", "tests"):
        shutil.copytree(os.path.join(root, d), os.path.join(tmp, d), ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=tmp, PYTHONDONTWRITEBYTECODE="1")
    killed = survived = 0
    try:
        for k, (name, path, tests, tree, src, c) in enumerate(plan):
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
            print(f"{k:3d} {name:9s} L{line:<4d} {c[0]:4s} {c[3]:28s} {'KILLED' if dead else 'SURVIVED':8s} "
                  f"{time.perf_counter() - t0:5.1f} s", flush=True)
    finally:
        shutil.rmtree(tmp)
    print(f"total {killed + survived}: killed {killed}, survived {survived}")


if __name__ == "__main__":
    main()
