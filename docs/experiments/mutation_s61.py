"""Session 61 (mutation61): mutation testing of the code round 60 added or changed and no earlier round covered.

Targets: the lowest-floor walks (``solvers/skyline.py``, whole), ``auto``'s gate of them (``skyline_runs``,
``skyline_gap``, ``_gap_at_least``, ``skyline_rounds``, ``skyline_below``, ``skyline_within`` and the lines of
``solve`` that ask them), the search's bound trees (``search.py``: ``BoundTrees``, ``_exhausted``, ``_round_robin``,
``resume_bound``, ``_outcome`` and the round loop's lines that use them) and ``WorkBudget.spend``'s ``taken``
(``search_tree.py``), a budget's probes taking what the cheap solve built (``plan.py``: ``_order_bound``,
``_clique_bounded``, ``solve_schedule(built=...)``'s lines, the budget loop's ``built``), the verifier's narrow
clocks (``verify.py``: ``_narrow``, ``_shared_or_own``, ``_clock_reader``, the clocks' zero), the checked opening of
inputs (``files.py``: ``checked_input``, ``check_opened``, ``read_text_input``, ``input_errors``, ``read_head``), the
protobuf walk (``importers/onnx/protoscan.py``, whole), ONNX Constants' ``value_float``/``value_int`` shorthands
(``infer._tensor_constants`` and the known values' ``value_int`` branch), ``errors.check_given``,
``caller_stacklevel`` and ``named_options``, and ``io``'s entry points decorated with ``named_options``.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s61.py [--only skyline,auto] [--list]
[--ids 3,17] [--tests tests/x.py] [--without tests/test_mutation_round61.py] [--timeout 60] [--retry 180]``.
The driver is round 60's (``mutation_s60.py``: its candidates (rounds 55-60's operators), ``mutate`` and its
options; round 59's run: a timeout reported apart and rerun once at ``--retry`` seconds), imported, not copied, with
one operator more:

- ``deco``: a decorator dropped (``@named_options`` off ``load_graph``: a wrong call is Python's TypeError again),
  only in a target whose ``KINDS`` names it.

A target may keep only some operators (``KINDS``): ``io``'s mutants are its decorators alone (round 60 added them;
the functions' bodies are older and tested).
"""
from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutation_s55 as s55  # noqa: E402  (round 55's driver: the evenly spaced pick)
import mutation_s59 as s59  # noqa: E402  (round 59's run: a timeout apart)
import mutation_s60 as s60  # noqa: E402  (round 60's candidates and mutate: rounds 55-60's operators)

R61 = "tests/test_mutation_round61.py"
H60 = "tests/test_hostile_round60.py::"
V60 = "tests/test_review_round60.py::"
#: name -> (module, fast test files (or node ids) that cover it, functions to mutate (None: all), line ranges too)
TARGETS: dict[str, tuple[str, list[str], tuple[str, ...] | None, tuple[tuple[int, int], ...]]] = {
    "skyline": ("memplan/solvers/skyline.py", [R61, "tests/test_quality_round60.py", "tests/test_review_round60.py"],
                None, ()),
    "auto": ("memplan/solvers/auto.py", [R61, "tests/test_quality_round60.py", "tests/test_review_round60.py"],
             ("skyline_runs", "_walk_work", "skyline_gap", "_gap_at_least", "skyline_rounds", "skyline_below",
              "skyline_within"), ((119, 128),)),
    "bound": ("memplan/solvers/search.py", [R61, "tests/test_search_round60.py"],
              ("_exhausted", "_round_robin", "resume_bound", "_outcome"), ((282, 282), (296, 312), (333, 336),
                                                                            (645, 716))),
    "taken": ("memplan/solvers/search_tree.py", [R61, "tests/test_search_round60.py"], (), ((186, 188),)),
    "plan": ("memplan/plan.py", [R61, "tests/test_budget_round60.py",
                                 "tests/test_time_round60.py::test_budget_probe_takes_its_cheap_solves_problem"],
             ("_order_bound", "_clique_bounded"), ((379, 392), (414, 438), (834, 838))),
    "verify": ("memplan/verify.py", [R61, "tests/test_time_round60.py::test_mesh_clocks_take_a_byte_a_stream",
                                     "tests/test_time_round60.py::test_narrow_clocks_give_the_same_findings",
                                     "tests/test_time_round60.py::test_narrow_clocks_widen_past_255_nodes_a_stream",
                                     V60 + "test_narrow_clocks_across_a_byte_of_nodes_on_one_stream"],
               ("_narrow", "_shared_or_own", "_clock_reader"), ((663, 663), (732, 732))),
    "files": ("memplan/files.py", [R61, H60 + "test_an_input_swapped_for_a_fifo_after_its_check_is_refused",
                                   H60 + "test_a_large_text_input_that_is_no_text_is_refused_from_its_head",
                                   V60 + "test_a_text_input_that_grew_past_the_limit_is_refused_naming_the_limit"],
              ("checked_input", "check_opened", "read_text_input", "input_errors", "read_head"), ()),
    "proto": ("memplan/importers/onnx/protoscan.py",
              [R61, H60 + "test_the_protobuf_walk_passes_real_models_and_names_truncations",
               H60 + "test_a_large_file_that_is_no_onnx_model_is_refused_without_reading_it_whole",
               V60 + "test_protoscan_walks_a_bounded_number_of_fields"], None, ()),
    "onnxc": ("memplan/importers/onnx/infer.py",
              [R61, H60 + "test_a_range_of_value_float_constants_is_sized_as_onnxruntime_runs_it",
               H60 + "test_a_sequence_position_given_by_a_value_int_constant_is_checked",
               # (round 50's test of the known values' value_int branch: added after the second sample's first run)
               "tests/test_onnx_round50.py::test_a_slice_of_external_starts_and_constant_ends_is_refused_as_"
               "onnxruntime_refuses_it"],
              ("_tensor_constants",), ((1701, 1705),)),
    "errors": ("memplan/errors.py", [R61, H60 + "test_a_missing_or_doubled_argument_is_an_option_error_naming_it",
                                     "tests/test_io_round60.py"],
               ("check_given", "caller_stacklevel", "named_options"), ()),
    "io": ("memplan/io/__init__.py", [R61, "tests/test_io_round60.py"],
           ("load_graph", "save_graph", "load_plan", "load_safe_pair", "save_plan"), ()),
}
# (a second sample, added after the first run: ids 65 on; each draws from its module's candidates the first sample of
# that module did not pick, evenly spaced as the first. ``taken``'s three lines hold none of the operators' targets:
# ``spend`` is the function they sit in)
_SECOND = {"skyline": 8, "auto": 5, "bound": 8, "plan": 6, "verify": 4, "files": 4, "proto": 5, "onnxc": 4,
           "errors": 4}
for _name in _SECOND:
    TARGETS[_name + "+"] = TARGETS[_name]
TARGETS["spend"] = ("memplan/solvers/search_tree.py", [R61, "tests/test_search_round60.py"], (), ((178, 193),))
QUOTA = {"skyline": 10, "auto": 6, "bound": 10, "taken": 2, "plan": 6, "verify": 5, "files": 7, "proto": 7,
         "onnxc": 4, "errors": 5, "io": 5, **{n + "+": q for n, q in _SECOND.items()}, "spend": 3}
#: a target's operators where not all of them
KINDS = {"io": ("deco",)}


def _decorators(tree: ast.Module) -> list[tuple[str, int, int, str]]:
    return [("deco", i, j, f"drop @{ast.unparse(d)}"[:40]) for i, n in enumerate(ast.walk(tree))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for j, d in enumerate(n.decorator_list)]


def candidates(tree: ast.Module, funcs: tuple[str, ...] | None, lines: tuple[tuple[int, int], ...],
               kinds: tuple[str, ...] | None = None) -> list[tuple[str, int, int, str]]:
    """Round 60's candidates in ``funcs`` or on ``lines``, of ``kinds`` only where given, and dropped decorators
    where ``kinds`` names them (a decorator belongs to its function: its ``def`` line is in the span). Why opt-in:
    elsewhere a decorator is ``contextmanager`` or ``functools.wraps``, round 60 added none there."""
    every = s60.candidates(tree, funcs, lines)
    nodes = list(ast.walk(tree))
    spans = [(f.lineno, f.end_lineno) for f in nodes
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and (funcs is None or f.name in funcs)]
    spans += list(lines)
    if kinds is not None and "deco" in kinds:
        every += [c for c in _decorators(tree) if any(a <= nodes[c[1]].lineno <= b for a, b in spans)]
    every.sort(key=lambda c: (c[1], c[2]))
    return [c for c in every if kinds is None or c[0] in kinds]


def mutate(tree: ast.Module, cand: tuple[str, int, int, str]) -> tuple[str, int]:
    kind, i, j, _ = cand
    if kind != "deco":
        return s60.mutate(tree, cand)
    t = copy.deepcopy(tree)
    n = list(ast.walk(t))[i]
    del n.decorator_list[j]
    ast.fix_missing_locations(t)
    return ast.unparse(t), n.lineno


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
    trees: dict[str, tuple[str, ast.Module]] = {}
    picked: dict[str, set] = {}   # module -> the candidates an earlier target picked (a second sample skips them)
    for name in TARGETS:   # (ids are fixed by TARGETS' order, whatever --only picks)
        path, tests, funcs, lines = TARGETS[name]
        if path not in trees:
            src = open(os.path.join(root, path)).read()
            trees[path] = (src, ast.parse(src))
        src, tree = trees[path]
        left = [c for c in candidates(tree, funcs, lines, KINDS.get(name)) if c not in picked.get(path, set())]
        for c in s55.pick(left, QUOTA[name]):
            picked.setdefault(path, set()).add(c)
            if name in a.only.split(","):
                plan.append((k, name, path, tests, tree, src, c))
            k += 1
    if a.list:
        for k, name, _path, _, tree, _, c in plan:
            if not want or k in want:
                print(f"{k:3d} {name:8s} L{mutate(tree, c)[1]:<4d} {c[0]:4s} {c[3]}")
        return
    tmp = tempfile.mkdtemp(prefix="mut61_")
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
            text, line = mutate(tree, c)
            target = os.path.join(tmp, path)
            with open(target, "w") as f:
                f.write(text)
            tests = a.tests.split(",") if a.tests else tests
            tests = [t for t in tests if os.path.exists(os.path.join(tmp, t.split("::")[0]))]
            t0 = time.perf_counter()
            dead = s59._run(tests, tmp, env, a.timeout)
            how = ""
            if dead is None:   # (the machine's load or a hang: one more run with a longer limit decides)
                dead = s59._run(tests, tmp, env, a.retry)
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
