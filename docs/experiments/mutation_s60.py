"""Session 60 (mutation60): mutation testing of the code round 59 added or changed and no earlier round covered.

Targets: the default solve's wide polish tier (``solvers/auto.py``: ``worth_polish``, ``polishes``, ``small`` and the
line of ``solve`` that asks them), the search's bulk time partitions, parts and preorder keys
(``search_tree.py``: ``_time_partitions``, ``_split_parts``, ``_keys``, the bulk branch of ``_decompose`` and
``_sub_solve``'s charge) and the repairs' start pushed down once (``search.py``), the index accessors that refuse
negative and non-integer indices (``graph.py``, ``problem.py`` with ``conflict_pairs``' cache, ``schedule.py``'s
``HappensBefore``, ``optimize/cost.py``'s ``node_us``), the importer's scatter relayout
(``importers/torch/layouts.py``: ``_preserved_strides_result``, ``_scatter_result_as_eager``) and a sample of the
modules round 59 split out of ``runtime/aten/ambient.py`` (``call_args``, ``held_iterators``,
``module_containers``, ``python_state``, ``hook_state``, ``cache_windows``).

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s60.py [--only auto,tree] [--list]
[--ids 3,17] [--tests tests/x.py] [--without tests/test_mutation_round60.py] [--timeout 60] [--retry 180]``.
The driver is round 59's (``mutation_s59.py``: the copy to a temporary tree, ``pytest -x -q``, a timeout reported
apart and rerun once at ``--retry`` seconds), with its run and candidate filter imported, not copied. Rounds 55-58's
operators (flipped comparisons, dropped ``and``/``or`` operands, skipped guards, off-by-one, skipped statements,
dropped aliases, swapped operands) plus two this round's brief names:

- ``brch``: swapped branches: an ``if`` with an ``else`` runs its ``else`` where it ran its body and the reverse,
  a conditional expression ``a if c else b`` gives ``b if c else a``;
- ``dflt``: a wrong default: a parameter's constant default changed (an int ``n`` -> ``n + 1``, a float ``x`` ->
  ``2 * x`` (1.0 where 0), ``True`` <-> ``False``), in the target's functions.
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
import mutation_s55 as s55  # noqa: E402  (round 55's driver: the evenly spaced pick, ``_replace``)
import mutation_s58 as s58  # noqa: E402  (round 58's operators, rounds 55-56's with them)
import mutation_s59 as s59  # noqa: E402  (round 59's run: a timeout apart)

R60 = "tests/test_mutation_round60.py"
A42 = "tests/test_aten_round42.py::"
A41 = "tests/test_aten_round41.py::"
#: name -> (module, fast test files (or node ids) that cover it, functions to mutate (None: all), line ranges too)
TARGETS: dict[str, tuple[str, list[str], tuple[str, ...] | None, tuple[tuple[int, int], ...]]] = {
    "auto": ("memplan/solvers/auto.py", [R60, "tests/test_quality_round59.py"],
             ("worth_polish", "polishes", "small"), ((110, 110),)),
    "tree": ("memplan/solvers/search_tree.py", [R60, "tests/test_search_round59.py"],
             ("_split_parts", "_time_partitions"), ((458, 459), (513, 514), (776, 778))),
    "down": ("memplan/solvers/search.py", [R60, "tests/test_search_round59.py"], (), ((544, 549),)),
    "graph": ("memplan/graph.py", [R60, "tests/test_hostile_round59.py"],
              (), ((197, 225), (251, 260), (276, 283))),
    "problem": ("memplan/problem.py", [R60, "tests/test_hostile_round59.py"],
                ("conflicts", "name", "conflict_pairs"), ()),
    "hb": ("memplan/schedule.py", [R60, "tests/test_hostile_round59.py"], ("hb", "first_at_least"), ()),
    "cost": ("memplan/optimize/cost.py", [R60, "tests/test_hostile_round59.py"], (), ((83, 90),)),
    "layouts": ("memplan/importers/torch/layouts.py", [R60, "tests/test_importers_round59.py"],
                ("_preserved_strides_result", "_scatter_result_as_eager"), ()),
    "callargs": ("runtime/aten/call_args.py",
                 [R60, "tests/test_aten_round58.py::test_an_in_place_rank_change_of_an_argument_is_refused_naming_it",
                  "tests/test_aten_round58.py::test_an_unchanged_container_argument_returned_as_itself_is_the_callers"
                  "_object", "tests/test_aten_round39.py::test_an_input_kept_as_an_attribute_is_the_callers_tensor"],
                 None, ()),
    "iters": ("runtime/aten/held_iterators.py",
              [R60, A42 + "test_forward_advancing_an_iterator_its_module_holds_is_refused",
               A42 + "test_an_iterator_forward_does_not_advance_is_no_change"], None, ()),
    "contain": ("runtime/aten/module_containers.py",
                [R60, A41 + "test_containers_counters_tuples_and_defaults_are_watched",
                 "tests/test_aten_round39.py::test_a_dict_rebuilt_in_another_key_order_is_no_refused_change",
                 "tests/test_aten_round39b.py::test_tensor_cache_filled_in_place_that_eager_reads_later_is_refused_"
                 "naming_it", "tests/test_aten_round37.py::test_a_reused_export_of_a_counter_is_refused_too"],
                None, ()),
    "pystate": ("runtime/aten/python_state.py",
                [R60, A41 + "test_python_state_forward_changes_is_refused_and_put_back",
                 A41 + "test_closure_counter_is_put_back", "tests/test_review_round41c.py"], None, ()),
    # (added after the first run: its ids follow the others')
    "hooks": ("runtime/aten/hook_state.py",
              [R60, "tests/test_aten_round39.py::test_hook_state_in_a_partial_is_restored_after_the_second_export",
               "tests/test_aten_round39.py::test_hook_state_in_an_object_a_partial_holds_is_restored",
               "tests/test_aten_round35_hooks.py::test_hooks_there_at_compile_run_as_eager_call_after_call"], None, ()),
    "windows": ("runtime/aten/cache_windows.py", [R60, "tests/test_aten_round55.py"],
                ("window_inputs", "window_refusal", "set_window_counts", "window_mismatch", "window_counts",
                 "put_window_counts"), ()),
}
QUOTA = {"auto": 5, "tree": 7, "down": 2, "graph": 4, "problem": 5, "hb": 3, "cost": 2, "layouts": 6,
         "callargs": 5, "iters": 4, "contain": 5, "pystate": 4, "hooks": 6, "windows": 5}


def _flip_default(v: ast.AST) -> ast.Constant | None:
    if not isinstance(v, ast.Constant):
        return None
    if type(v.value) is bool:
        return ast.Constant(not v.value)
    if type(v.value) is int:
        return ast.Constant(v.value + 1)
    if type(v.value) is float:
        return ast.Constant(2 * v.value or 1.0)
    return None


def _new_candidates(tree: ast.Module) -> list[tuple[str, int, int, str]]:
    """This round's two operators over the whole module (filtered to the target's functions as round 59's are)."""
    out = []
    for i, n in enumerate(ast.walk(tree)):
        if isinstance(n, ast.If) and n.orelse:
            out.append(("brch", i, 0, f"swap if/else of {ast.unparse(n.test)}"[:40]))
        elif isinstance(n, ast.IfExp):
            out.append(("brch", i, 0, f"swap ifexp of {ast.unparse(n.test)}"[:40]))
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = n.args
            defaults = list(a.defaults) + [d for d in a.kw_defaults if d is not None]
            for j, d in enumerate(defaults):
                new = _flip_default(d)
                if new is not None:
                    out.append(("dflt", i, j, f"default {ast.unparse(d)} -> {new.value!r}"[:40]))
    return out


def candidates(tree: ast.Module, funcs: tuple[str, ...] | None, lines: tuple[tuple[int, int], ...]
               ) -> list[tuple[str, int, int, str]]:
    """Round 59's candidates plus this round's, in ``funcs`` (every function where None) or on ``lines``. A
    default belongs to its function (its ``def`` line is in the span)."""
    every = sorted(s58.candidates(tree, None) + _new_candidates(tree), key=lambda c: (c[1], c[2]))
    if funcs is None:
        return every
    nodes = list(ast.walk(tree))
    spans = [(f.lineno, f.end_lineno) for f in nodes
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name in funcs]
    spans += list(lines)
    return [c for c in every if any(a <= getattr(nodes[c[1]], "lineno", -1) <= b for a, b in spans)]


def mutate(tree: ast.Module, cand: tuple[str, int, int, str]) -> tuple[str, int]:
    kind, i, j, _ = cand
    if kind not in ("brch", "dflt"):
        return s58.mutate(tree, cand)
    t = copy.deepcopy(tree)
    n = list(ast.walk(t))[i]
    if kind == "brch" and isinstance(n, ast.If):
        n.body, n.orelse = n.orelse, n.body
    elif kind == "brch":
        n.body, n.orelse = n.orelse, n.body
    else:
        a = n.args
        slots = [("d", k) for k in range(len(a.defaults))] + [("k", k) for k, d in enumerate(a.kw_defaults)
                                                              if d is not None]
        where, k = slots[j]
        if where == "d":
            a.defaults[k] = _flip_default(a.defaults[k])
        else:
            a.kw_defaults[k] = _flip_default(a.kw_defaults[k])
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
            if not want or k in want:
                print(f"{k:3d} {name:8s} L{mutate(tree, c)[1]:<4d} {c[0]:4s} {c[3]}")
        return
    tmp = tempfile.mkdtemp(prefix="mut60_")
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
