"""Session 59 (mutation59): mutation testing of the code added or changed since round 58, and a driver that no
longer counts a timeout as a kill.

Targets: ``memplan/values.py`` (the ``==`` / ``hash`` of public dataclasses, ``derived``), the search's repair
(``solvers/search_repair.py``), the CP-SAT wrapper's two worker phases and their wall-clock stops (``cpsat.py``'s
``_solve_component``, ``_interleave``, ``work_phases``, the interleaved block of ``solve``; ``auto``'s one stop
that counts them), ``runtime/aten``'s ``returned_args``, ``per_count``, ``cache_growth`` and ``cache_paths``, and the
pycuda executor's CPU-runnable parts (``runtime/executor.py``, and ``runtime/cuda_core.py``'s issue, capture and
replay path, which the fake driver ``tests/fake_cuda.py`` runs on numpy).

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s59.py [--only values,repair] [--list]
[--ids 3,17] [--tests tests/x.py] [--without tests/test_mutation_round59.py] [--timeout 60] [--retry 180]``.
Operators and the evenly spaced pick are rounds 55-58's (``mutation_s58.py``, imported, not copied); a target names
its functions and, where only part of a long function is new, line ranges.

What changed in the driver: round 58 counted a mutant whose tests ran past the 60 s timeout as killed, though on a
loaded machine that is the machine's doing, not a failing test (2 of its 31 "kills" survived at 180 s). Now a
timeout is "TIMEOUT" and the mutant is run once more with ``--retry`` seconds (default 180): its verdict is that
run's (KILLED / SURVIVED, marked "after a timeout"), or TIMEOUT again, which is reported apart and counted neither
killed nor survived.
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutation_s55 as s55  # noqa: E402  (round 55's driver: the evenly spaced pick)
import mutation_s58 as s58  # noqa: E402  (round 58's operators, rounds 55-56's with them)

R59 = "tests/test_mutation_round59.py"
PER_COUNT = ["tests/test_aten_round56.py::test_compile_per_count_steps_each_count_with_a_program_of_its_own",
             "tests/test_aten_round56.py::test_compile_per_count_takes_a_positive_limit_and_no_one_count_plan",
             "tests/test_aten_round58.py::test_compile_per_count_a_refused_arena_rebuild_keeps_the_older_arena_correct"]
#: name -> (module, fast test files (or node ids) that cover it, functions to mutate (None: all), line ranges too)
TARGETS: dict[str, tuple[str, list[str], tuple[str, ...] | None, tuple[tuple[int, int], ...]]] = {
    "values": ("memplan/values.py", [R59, "tests/test_hostile_round58.py", "tests/test_plan_round30_left.py"],
               None, ()),
    "repair": ("memplan/solvers/search_repair.py", [R59, "tests/test_search_round58.py"], None, ()),
    "cpsat": ("memplan/solvers/cpsat.py", [R59, "tests/test_cpsat_round58.py", "tests/test_cpsat_round57.py"],
              ("_solve_component", "interleaved_workers", "work_phases", "_interleave", "_improves"),
              ((270, 275), (336, 383))),
    "auto": ("memplan/solvers/auto.py", [R59, "tests/test_cpsat_round58.py"], (), ((122, 128),)),
    "retargs": ("runtime/aten/returned_args.py", [R59, "tests/test_aten_round58.py"], None, ()),
    "percount": ("runtime/aten/per_count.py", [R59, "tests/test_aten_round57.py", *PER_COUNT], None, ()),
    "growth": ("runtime/aten/cache_growth.py", [R59, "tests/test_aten_round57.py"], None, ()),
    "paths": ("runtime/aten/cache_paths.py", [R59, "tests/test_aten_round56.py"], None, ()),
    "executor": ("runtime/executor.py", [R59, "tests/test_runtime_hostile2.py", "tests/test_runtime_round38.py"],
                 None, ()),
    "core": ("runtime/cuda_core.py", [R59, "tests/test_runtime_round39.py", "tests/test_runtime_round32.py"],
             ("_make_streams_and_events", "_issue", "_fork_all", "_issue_steps", "run", "capture", "replay",
              "_replay_stages", "_check_step_args", "_check_inputs_set", "_live"), ()),
}
QUOTA = {"values": 7, "repair": 6, "cpsat": 9, "auto": 2, "retargs": 6, "percount": 6, "growth": 5, "paths": 5,
         "executor": 3, "core": 9}


def candidates(tree: ast.Module, funcs: tuple[str, ...] | None, lines: tuple[tuple[int, int], ...]
               ) -> list[tuple[str, int, int, str]]:
    """Round 58's candidates in ``funcs`` (every function where None) or on the lines of ``lines``."""
    every = s58.candidates(tree, None)
    if funcs is None:
        return every
    nodes = list(ast.walk(tree))
    spans = [(f.lineno, f.end_lineno) for f in nodes
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name in funcs]
    spans += list(lines)
    return [c for c in every if any(a <= getattr(nodes[c[1]], "lineno", -1) <= b for a, b in spans)]


def _run(tests: list[str], tmp: str, env: dict, timeout: float) -> bool | None:
    """True: a test failed (killed); False: all passed; None: the run passed ``timeout`` seconds."""
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                           cwd=tmp, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return r.returncode != 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--ids", default="")
    ap.add_argument("--tests", default="", help="comma-separated test files to run instead of the target's own")
    ap.add_argument("--without", default="", help="a test file left out of every run (the 'before' column)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--retry", type=float, default=180.0, help="the limit of the one rerun of a mutant that timed out")
    a = ap.parse_args()
    root = os.getcwd()
    want = {int(x) for x in a.ids.split(",") if x}
    plan = []
    k = 0
    for name in TARGETS:   # (ids are fixed by TARGETS' order, whatever --only picks)
        path, tests, funcs, lines = TARGETS[name]
        src = open(os.path.join(root, path)).read()
        tree = ast.parse(src)
        for c in s55.pick(candidates(tree, funcs, lines), QUOTA[name]):
            if name in a.only.split(","):
                plan.append((k, name, path, tests, tree, src, c))
            k += 1
    if a.list:
        for k, name, _path, _, tree, _, c in plan:
            print(f"{k:3d} {name:8s} L{s58.mutate(tree, c)[1]:<4d} {c[0]:4s} {c[3]}")
        return
    tmp = tempfile.mkdtemp(prefix="mut59_")
    for d in ("memplan", "runtime", "tests"):
        shutil.copytree(os.path.join(root, d), os.path.join(tmp, d), ignore=shutil.ignore_patterns("__pycache__"))
    if a.without and os.path.exists(os.path.join(tmp, a.without)):
        os.remove(os.path.join(tmp, a.without))
    env = dict(os.environ, PYTHONPATH=tmp, PYTHONDONTWRITEBYTECODE="1")
    counts = {"KILLED": 0, "SURVIVED": 0, "TIMEOUT": 0}
    retried = {"KILLED": 0, "SURVIVED": 0, "TIMEOUT": 0}
    try:
        for k, name, path, tests, tree, src, c in plan:
            if want and k not in want:
                continue
            text, line = s58.mutate(tree, c)
            target = os.path.join(tmp, path)
            with open(target, "w") as f:
                f.write(text)
            tests = a.tests.split(",") if a.tests else tests
            tests = [t for t in tests if os.path.exists(os.path.join(tmp, t.split("::")[0]))]
            t0 = time.perf_counter()
            dead = _run(tests, tmp, env, a.timeout)
            how = ""
            if dead is None:   # (the machine's load or a hang: one more run with a longer limit decides)
                dead = _run(tests, tmp, env, a.retry)
                how = f" (timeout at {a.timeout:.0f} s, rerun at {a.retry:.0f} s)"
            with open(target, "w") as f:
                f.write(src)
            verdict = "TIMEOUT" if dead is None else "KILLED" if dead else "SURVIVED"
            counts[verdict] += 1
            if how:
                retried[verdict] += 1
            print(f"{k:3d} {name:8s} L{line:<4d} {c[0]:4s} {c[3]:40s} {verdict:8s} "
                  f"{time.perf_counter() - t0:5.1f} s{how}", flush=True)
    finally:
        shutil.rmtree(tmp)
    total = sum(counts.values())
    print(f"total {total}: killed {counts['KILLED']}, survived {counts['SURVIVED']}, timeout {counts['TIMEOUT']} "
          f"(of them after a timeout and a rerun: killed {retried['KILLED']}, survived {retried['SURVIVED']}, "
          f"timeout twice {retried['TIMEOUT']})")


if __name__ == "__main__":
    main()
