"""Session 60: the search against google/minimalloc's results on its own benchmark (A-K, each packs its capacity
1,048,576), before and after, and the large cases of ``search_s59.py``.

    python docs/experiments/search_s60.py run old > /tmp/old.jsonl     (PYTHONPATH=/work/main: main before the branch)
    python docs/experiments/search_s60.py run new > /tmp/new.jsonl     (PYTHONPATH=this checkout)
    python docs/experiments/search_s60.py table /tmp/old.jsonl /tmp/new.jsonl >> docs/experiments/search_s60.txt

The problems of ``search_s59.py`` (minimalloc A-K from ``/work/shared/data/minimalloc/challenging`` or ``$MINIMALLOC``,
random intervals of 3,000 and 5,000 buffers, ``random_dag`` / ``layered_graph`` on 1 and 8 streams) with
``solver="search"`` at ``time_limit`` 1, 5 and 10 (``LIMITS``; ``ONLY`` picks problems by the end of their name). Each
row: arena, bound, work (units of ``search_tree.WORK_NS_PER_UNIT`` taken off the budget, as the budget counts them:
deterministic), CPU and wall seconds, tries. Old rows the default wall-clock stop had cut (under load) were run again with
the stop of ``WALL_PER_SECOND`` (``run`` merges by the last row of a problem and limit).
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from search_s59 import graph_problem, intervals  # noqa: E402

LIMITS = (1.0, 5.0, 10.0)
#: the wall-clock safety stop, far out: the 2-core machine ran 6 sessions' jobs (load 10), where the default stop
#: (4 x the limit + 10 s) cut rows short; set so, every row is the work budget's and repeats exactly
WALL_PER_SECOND = 40


def problems():
    from memplan.io.minimalloc import read_csv
    data = os.environ.get("MINIMALLOC", "/work/shared/data/minimalloc/challenging")
    out = {f"minimalloc {c}": (lambda c=c: read_csv(os.path.join(data, f"{c}.1048576.csv")).problem())
           for c in "ABCDEFGHIJK"}
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

    def counted(self, work: int) -> None:   # (what the budget took: at most what it had left)
        if not self.by_nodes:
            spent[0] += min(work, max(self.left, 0))
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
                s = solve(p, "search", SolveOptions(time_limit=tl, wall_limit=WALL_PER_SECOND * tl + 120))
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            print(json.dumps({"label": label, "problem": name, "buffers": len(p), "time_limit": tl,
                              "arena": int(s.arena), "bound": int(s.lower_bound), "cpu": round(cpu, 2),
                              "wall": round(wall, 2), "work": spent[0] // st.WORK_NS_PER_UNIT,
                              "nodes": s.info.get("nodes"), "tries": s.info.get("tries"),
                              "stopped": s.info.get("stopped")}), flush=True)


def _gap(row) -> float:
    return (row["arena"] - row["bound"]) / row["arena"]


def table(old_rows, new_rows) -> None:
    old = {(r["problem"], r["time_limit"]): r for r in old_rows}   # (a row run again replaces the first)
    new = {(r["problem"], r["time_limit"]): r for r in new_rows}
    print(f"{'problem':>22} {'bufs':>5} {'limit':>5} {'old bound':>10} {'new bound':>10} {'old arena':>10} "
          f"{'new arena':>10} {'old gap':>7} {'new gap':>7} {'old wk':>6} {'new wk':>6} {'old cpu':>7} {'new cpu':>7} "
          f"{'old#':>4} {'new#':>4}")
    for key, o in old.items():
        if key not in new:
            continue
        n = new[key]
        mark = "" if n["arena"] == o["arena"] else (" better" if n["arena"] < o["arena"] else " WORSE")
        mark += "" if n["bound"] == o["bound"] else (" bound+" if n["bound"] > o["bound"] else " bound-")
        mark += " (wall stop)" if n["stopped"] or o["stopped"] else ""
        print(f"{key[0]:>22} {o['buffers']:>5} {key[1]:>5g} {o['bound']:>10} {n['bound']:>10} {o['arena']:>10} "
              f"{n['arena']:>10} {_gap(o):>7.2%} {_gap(n):>7.2%} {o['work']:>6} {n['work']:>6} {o['cpu']:>7.2f} "
              f"{n['cpu']:>7.2f} {o['tries']!s:>4} {n['tries']!s:>4}{mark}")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        table([json.loads(x) for x in open(sys.argv[2])], [json.loads(x) for x in open(sys.argv[3])])
