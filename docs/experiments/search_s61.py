"""Session 61: the search's nodes made cheaper and fewer on google/minimalloc's benchmark (A-K .1048576.csv), before
and after.

    python docs/experiments/search_s61.py run old > /tmp/old.jsonl     (PYTHONPATH=/work/main: main before the branch)
    python docs/experiments/search_s61.py run new > /tmp/new.jsonl     (PYTHONPATH=this checkout)
    python docs/experiments/search_s61.py table /tmp/old.jsonl /tmp/new.jsonl >> docs/experiments/search_s61.txt
    python docs/experiments/search_s61.py trees old > /tmp/old_trees.jsonl   (and ``new``), then
    python docs/experiments/search_s61.py tree-table /tmp/old_trees.jsonl /tmp/new_trees.jsonl

``run`` / ``table``: ``search_s60.py``'s rows (``solve(p, "search", time_limit=...)``: arena, bound, work units taken
off the budget, CPU, tries) for A-K at ``time_limit`` 1 and 5 (``LIMITS``, ``ONLY`` as there). ``trees``: one try of
the preorder that packs each problem's capacity (``TREES``; C at its bound 1,039,360) with a limit of ``TREE_UNITS``
work units: its nodes and the units it took to the packing (deterministic counts), and its CPU seconds.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from search_s60 import run, table  # noqa: E402

os.environ.setdefault("ONLY", "A,B,C,D,E,F,G,H,I,J,K")
os.environ.setdefault("LIMITS", "1,5")

#: (problem, capacity, preorder): the preorder whose tree packs the capacity first (``search_s60.txt``)
TREES = (("A", 1048576, "TWA"), ("B", 1048576, "TAW"), ("C", 1039360, "TAW"), ("D", 1048576, "WAT"),
         ("E", 1048576, "TWA"), ("F", 1048576, "TWA"), ("G", 1048576, "TWA"), ("H", 1048576, "TAW"),
         ("I", 1048576, "TWA"), ("J", 1048576, "TWA"), ("K", 1048576, "TWA"), ("K", 1048576, "WAT"),
         ("D", 986112, "WAT"), ("J", 989184, "TWA"))
TREE_UNITS = 60_000


def trees(label: str) -> None:
    from memplan.io.minimalloc import read_csv
    from memplan.solvers import search_tree as st
    from memplan.solvers.options import SearchParams
    data = os.environ.get("MINIMALLOC", "/work/shared/data/minimalloc/challenging")
    for name, cap, pre in TREES:
        p = read_csv(os.path.join(data, f"{name}.1048576.csv")).problem()
        budget = st.WorkBudget(10**9, 1e9)
        s = st.PackingSearch(p, SearchParams(), budget)
        units = TREE_UNITS if cap == 1048576 or name == "C" else 20_000   # (the bounds D and J do not pack)
        c0 = time.process_time()
        try:
            out = "packed" if s.feasible(cap, pre, units) is not None else "none"
        except st.Abort:
            out = "stopped"
        cpu = time.process_time() - c0
        print(json.dumps({"label": label, "problem": name, "cap": cap, "preorder": pre, "out": out, "nodes": s.nodes,
                          "units": (budget.taken + s.work) // st.WORK_NS_PER_UNIT, "cpu": round(cpu, 2),
                          "hits": getattr(s, "memo_hits", 0)}), flush=True)


def tree_table(old_rows, new_rows) -> None:
    new = {(r["problem"], r["cap"], r["preorder"]): r for r in new_rows}
    print(f"{'problem':>8} {'capacity':>9} {'pre':>4} {'old':>8} {'new':>8} {'old nodes':>9} {'new nodes':>9} "
          f"{'old units':>9} {'new units':>9} {'old us/node':>11} {'new us/node':>11} {'hits':>5}")
    for o in old_rows:
        n = new.get((o["problem"], o["cap"], o["preorder"]))
        if n is None:
            continue
        print(f"{o['problem']:>8} {o['cap']:>9} {o['preorder']:>4} {o['out']:>8} {n['out']:>8} {o['nodes']:>9} "
              f"{n['nodes']:>9} {o['units']:>9} {n['units']:>9} {1e6 * o['cpu'] / max(o['nodes'], 1):>11.0f} "
              f"{1e6 * n['cpu'] / max(n['nodes'], 1):>11.0f} {n['hits']:>5}")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "trees":
        trees(sys.argv[2])
    elif sys.argv[1] == "tree-table":
        tree_table([json.loads(x) for x in open(sys.argv[2])], [json.loads(x) for x in open(sys.argv[3])])
    else:
        table([json.loads(x) for x in open(sys.argv[2])], [json.loads(x) for x in open(sys.argv[3])])
