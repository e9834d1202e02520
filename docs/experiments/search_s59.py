"""Session 59: the search's own steps made cheaper and charged what they take (``search_tree._time_partitions``: the time
partitions made once, not every try; ``_split_parts``: decompositions of ``SPLIT_BULK_BUFFERS`` buffers or more split
in bulk, the Python split charged 150 ns a buffer a part, not 1,050; ``KEYS_BULK_BUFFERS``: preorders of 128 buffers or
more sorted in bulk). The same trees (a budget of nodes: the same plans); a budget of work buys more search.

    python docs/experiments/search_s59.py both /work/main > docs/experiments/search_s59.txt
    python docs/experiments/search_s59.py tallies /work/main >> docs/experiments/search_s59.txt

The problems and modes of ``search_s58.py`` (minimalloc A-J from ``/work/shared/data/minimalloc/challenging`` or
``$MINIMALLOC``, random intervals of 3,000 and 5,000 buffers, ``random_dag`` / ``layered_graph`` on 1 and 8 streams)
with ``solver="search"`` at ``time_limit`` 0.5, 1 and 5. ``both OLD`` runs them under ``PYTHONPATH=OLD`` and under this
checkout and prints them side by side: arena, bound, gap, work (units of ``search_tree.WORK_NS_PER_UNIT`` taken off the
budget: deterministic), wall seconds, tries. ``tally`` / ``tallies OLD``: the work charged per charging line. ``cpu``
(``honest OLD``): per large case the search's CPU seconds (the solve's less a ``time_limit=0.001`` solve's: the start)
against the work charged, old and new. ``run LABEL`` / ``table OLD.jsonl NEW.jsonl``: one side, then the table.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

LIMITS = (0.5, 1.0, 5.0)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def intervals(n: int):
    """``n`` short-lived buffers (``tests/test_search_round53.py``'s ``_random_intervals``)."""
    from memplan.problem import BufferProblem
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, 50, n), alignment=256)


def graph_problem(kind: str, n: int, streams: int):
    from memplan.benchmarks import scale
    from memplan.lifetimes import buffer_problem
    from memplan.optimize import graph_optimize
    from memplan.schedule import build_happens_before, serial_schedule
    g = getattr(scale, kind)(n)
    sched = serial_schedule(g) if streams == 1 else graph_optimize(g, streams)
    return buffer_problem(g, build_happens_before(g, sched))


def problems():
    from memplan.io.minimalloc import read_csv
    data = os.environ.get("MINIMALLOC", "/work/shared/data/minimalloc/challenging")
    out = {f"minimalloc {c}": (lambda c=c: read_csv(os.path.join(data, f"{c}.1048576.csv")).problem())
           for c in "ABCDEFGHIJ"}
    out.update({f"intervals {n}": (lambda n=n: intervals(n)) for n in (3000, 5000)})
    for kind, n, st in (("random_dag", 1000, 1), ("random_dag", 1000, 8), ("random_dag", 3000, 1),
                        ("random_dag", 3000, 8), ("layered_graph", 3000, 1), ("layered_graph", 3000, 8),
                        ("random_dag", 5000, 1), ("layered_graph", 5000, 1)):
        out[f"{kind} {n} s{st}"] = (lambda kind=kind, n=n, st=st: graph_problem(kind, n, st))
    return out


def run(label: str) -> None:
    import warnings

    from memplan.solvers import SolveOptions, solve
    from memplan.solvers import search_tree as st
    spent = [0]
    spend = st.WorkBudget.spend

    def counted(self, work: int) -> None:   # (the work taken off the budget, as the budget counts it)
        if not self.by_nodes:
            spent[0] += work
        spend(self, work)
    st.WorkBudget.spend = counted
    only = os.environ.get("ONLY")
    limits = tuple(float(x) for x in os.environ["LIMITS"].split(",")) if os.environ.get("LIMITS") else LIMITS
    for name, make in problems().items():
        if only and not any(name.endswith(o) for o in only.split(",")):
            continue
        p = make()
        for tl in limits:
            spent[0] = 0
            c0, w0 = time.process_time(), time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = solve(p, "search", SolveOptions(time_limit=tl))
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            print(json.dumps({"label": label, "problem": name, "buffers": len(p), "time_limit": tl,
                              "arena": int(s.arena), "bound": int(s.lower_bound), "cpu": round(cpu, 2),
                              "wall": round(wall, 2), "work": spent[0] // st.WORK_NS_PER_UNIT,
                              "nodes": s.info.get("nodes"), "tries": s.info.get("tries"),
                              "stopped": s.info.get("stopped"),
                              "opening": s.info.get("opening")}), flush=True)


def descent(label: str) -> None:
    """One descent per problem (``ONLY`` or the large ones) at one below the greedy arena: nodes, work, CPU."""
    import warnings

    from memplan.solvers import search_tree as st
    from memplan.solvers import solve
    from memplan.solvers.options import SearchParams
    only = os.environ.get("ONLY", "intervals 3000,intervals 5000,random_dag 3000 s8,minimalloc J")
    for name, make in problems().items():
        if not any(name.endswith(o) for o in only.split(",")):
            continue
        p = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cap = int(solve(p, "greedy").arena) - 1
        cpus = []
        for _ in range(3):
            budget = st.WorkBudget(10**9, 1e9)
            s = st.PackingSearch(p, SearchParams(), budget)
            left = budget.left
            c0 = time.process_time()
            s.feasible(cap, SearchParams().preorders[0], 10**7)
            s._flush()
            cpus.append(time.process_time() - c0)
        print(json.dumps({"label": label, "problem": name, "nodes": s.nodes,
                          "work_us_node": round((left - budget.left) / s.nodes / 1000, 1),
                          "cpu_us_node": round(min(cpus) / s.nodes * 1e6, 1)}), flush=True)


def descents(old_path: str) -> None:
    for label, path in (("old", old_path), ("new", ROOT)):
        env = dict(os.environ, PYTHONPATH=path)
        print(subprocess.run([sys.executable, os.path.abspath(__file__), "descent", label], env=env, check=True,
                             capture_output=True, text=True).stdout, end="")


def _gap(row) -> float:
    return (row["arena"] - row["bound"]) / row["arena"]


def table(old_rows, new_rows) -> None:
    old = {(r["problem"], r["time_limit"]): r for r in old_rows}
    new = {(r["problem"], r["time_limit"]): r for r in new_rows}
    print(f"{'problem':>22} {'bufs':>5} {'limit':>5} {'old bound':>10} {'new bound':>10} {'old arena':>10} "
          f"{'new arena':>10} {'old gap':>7} {'new gap':>7} {'old wk':>6} {'new wk':>6} {'old s':>5} {'new s':>5} "
          f"{'old#':>4} {'new#':>4} {'new opening':>28}")
    for key, o in old.items():
        n = new[key]
        mark = "" if n["arena"] == o["arena"] else (" better" if n["arena"] < o["arena"] else " WORSE")
        mark += "" if n["bound"] == o["bound"] else (" bound+" if n["bound"] > o["bound"] else " bound-")
        mark += " (wall stop)" if n["stopped"] or o["stopped"] else ""
        print(f"{key[0]:>22} {o['buffers']:>5} {key[1]:>5g} {o['bound']:>10} {n['bound']:>10} {o['arena']:>10} "
              f"{n['arena']:>10} {_gap(o):>7.2%} {_gap(n):>7.2%} {o['work']:>6} {n['work']:>6} {o['wall']:>5.2f} "
              f"{n['wall']:>5.2f} {o['tries']!s:>4} {n['tries']!s:>4} {n['opening'] or '-':>28}{mark}")


def both(old_path: str) -> None:
    rows = {}
    for label, path in (("old", old_path), ("new", ROOT)):
        env = dict(os.environ, PYTHONPATH=path)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "run", label], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows[label] = [json.loads(line) for line in out.splitlines()]
    commit = subprocess.run(["git", "-C", old_path, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# python docs/experiments/search_s59.py both {old_path}   (old = {old_path} at {commit}, new = this checkout)")
    print("# 2-core shared machine (5 other sessions' jobs on it): s = wall seconds of the whole solve (setup included);")
    print("# wk = work units taken off the budget (100 us estimated each; deterministic); # = info['tries'];")
    print("# new opening = info['opening'] (its outcomes in order: 'repaired' = a repair packed below the best; - : none)")
    table(rows["old"], rows["new"])


def tally(label: str) -> None:
    """Work charged per kind (per charging line of ``search_tree``) in solves of ``TALLY`` (``name@limit,...``): an
    instrumented copy of the module (each ``self.work += X`` / ``self._work(X)`` also adds ``X`` to a counter by line),
    the same charges as the plain code; the repairs' own ``budget.spend`` (``search.REPAIR_PER_*``) as one kind."""
    import collections
    import re
    import warnings

    import memplan.solvers.search_tree as st
    from memplan.solvers import SolveOptions, solve
    charged: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    text = open(st.__file__).read().splitlines()

    def count(line: int, value: int) -> int:
        charged[line] += value
        calls[line] += 1
        return value
    out = []
    for i, line in enumerate(text, 1):
        m = re.match(r"^(\s*)self\.work \+= (.*)$", line)
        if m and m.group(2) != "ns":
            line = f"{m.group(1)}self.work += _count({i}, {m.group(2)})"
        m = re.match(r"^(\s*)self\._work\((.*)\)$", line)
        if m:
            line = f"{m.group(1)}self._work(_count({i}, {m.group(2)}))"
        out.append(line)
    ns = dict(st.__dict__, _count=count)
    exec(compile("\n".join(out), st.__file__, "exec"), ns)
    for name in ("Abort", "OutOfWork", "WorkBudget"):   # (the classes the solver catches and shares: the module's own)
        ns[name] = getattr(st, name)
    for name, f in ns["PackingSearch"].__dict__.items():
        if callable(f):
            setattr(st.PackingSearch, name, f)
    st._Front = ns["_Front"]
    spend = st.WorkBudget.spend

    def spent(self, work: int) -> None:
        if not self.by_nodes:
            charged[0] += work
            calls[0] += 1
        spend(self, work)
    st.WorkBudget.spend = spent
    cases = os.environ.get("TALLY", "intervals 5000@0.5,random_dag 3000 s8@0.5,random_dag 3000 s8@1").split(",")
    for case in cases:
        name, tl = case.rsplit("@", 1)
        p = problems()[name]()
        charged.clear()
        calls.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = solve(p, "search", SolveOptions(time_limit=float(tl)))
        total = charged.pop(0, 0)   # (everything the budget took: the lines' charges and the repairs' own)
        calls.pop(0, 0)
        lines = sum(charged.values())
        print(f"{label}: {name} at time_limit={tl}: arena {int(s.arena)}, bound {int(s.lower_bound)}, "
              f"{s.info.get('nodes')} nodes, {total // st.WORK_NS_PER_UNIT} units taken off the budget")
        for line, v in charged.most_common():
            print(f"  {text[line - 1].strip()[:84]:84s} {calls[line]:6d} x {v // st.WORK_NS_PER_UNIT:6d} units "
                  f"{v / total:6.1%}")
        if total - lines > 0:
            print(f"  {'repairs: search.REPAIR_PER_* (pushed_down, free_part)':84s} {'':6s}   "
                  f"{(total - lines) // st.WORK_NS_PER_UNIT:6d} units {(total - lines) / total:6.1%}")


def tallies(old_path: str) -> None:
    for label, path in (("old", old_path), ("new", ROOT)):
        env = dict(os.environ, PYTHONPATH=path)
        print(subprocess.run([sys.executable, os.path.abspath(__file__), "tally", label], env=env, check=True,
                             capture_output=True, text=True).stdout, end="")


def honest(label: str) -> None:
    """Per case of ``HONEST``: the search's CPU (process time of the solve less that of a ``time_limit=0.001`` solve of
    the same problem: its start) against the work it charged (``WORK_NS_PER_UNIT`` units, as estimated nanoseconds)."""
    import warnings

    from memplan.solvers import SolveOptions, solve
    from memplan.solvers import search_tree as st
    spent = [0]
    spend = st.WorkBudget.spend

    def counted(self, work: int) -> None:
        if not self.by_nodes:
            spent[0] += work
        spend(self, work)
    st.WorkBudget.spend = counted
    cases = os.environ.get("HONEST", "random_dag 3000 s8@1,random_dag 3000 s8@5,intervals 5000@1,"
                                     "layered_graph 3000 s8@1,random_dag 1000 s8@1,minimalloc J@1").split(",")
    for case in cases:
        name, tl = case.rsplit("@", 1)
        p = problems()[name]()
        row = []
        for t in (0.001, float(tl)):
            spent[0] = 0
            c = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                solve(p, "search", SolveOptions(time_limit=t))
            row.append((time.process_time() - c, spent[0] / 1e9))
        (c0, _), (c1, w1) = row
        print(f"{label}: {case:28s} search CPU {c1 - c0:5.2f} s, charged {w1:5.2f} s: CPU / charged {(c1 - c0) / w1:4.2f}",
              flush=True)


def honests(old_path: str) -> None:
    for label, path in (("old", old_path), ("new", ROOT)):
        env = dict(os.environ, PYTHONPATH=path)
        print(subprocess.run([sys.executable, os.path.abspath(__file__), "cpu", label], env=env, check=True,
                             capture_output=True, text=True).stdout, end="")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "both":
        both(sys.argv[2])
    elif sys.argv[1] == "descent":
        descent(sys.argv[2])
    elif sys.argv[1] == "descents":
        descents(sys.argv[2])
    elif sys.argv[1] == "tally":
        tally(sys.argv[2])
    elif sys.argv[1] == "tallies":
        tallies(sys.argv[2])
    elif sys.argv[1] == "cpu":
        honest(sys.argv[2])
    elif sys.argv[1] == "honest":
        honests(sys.argv[2])
    else:
        table([json.loads(x) for x in open(sys.argv[2])], [json.loads(x) for x in open(sys.argv[3])])
