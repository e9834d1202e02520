"""Session 54: the search's per-try limits in work units (``search_tree.TRY_NS_PER_NODE``, ``search.TRY_SHARES``).

    PYTHONPATH=/work/main python docs/experiments/search_tries_s54.py run old > /tmp/old.jsonl
    PYTHONPATH=.          python docs/experiments/search_tries_s54.py run new > /tmp/new.jsonl
    python docs/experiments/search_tries_s54.py table /tmp/old.jsonl /tmp/new.jsonl

``run`` solves minimalloc A-J (``/work/shared/data/minimalloc/challenging``, or ``$MINIMALLOC``) and random interval problems of 300 and 3,000 buffers
with ``solver="search"`` at ``time_limit`` 0.5, 1 and 5 and prints one JSON line per solve: the arena, the whole
solve's CPU seconds (``process_time``: the machine is shared), its nodes and tries. ``table`` sets two runs side by
side."""
import json
import os
import sys
import time

import numpy as np

from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, solve

LIMITS = (0.5, 1.0, 5.0)


def intervals(n: int) -> BufferProblem:
    """``n`` short-lived buffers (``tests/test_search_round53.py``'s ``_random_intervals``)."""
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, 50, n), alignment=256)


def run(label: str) -> None:
    if os.environ.get("TRY_NS"):   # (variants of the new code's constants)
        from memplan.solvers import search, search_tree
        search_tree.TRY_NS_PER_NODE = int(os.environ["TRY_NS"])
        search.TRY_SHARES = tuple(int(x) for x in os.environ["SHARES"].split(","))
        search.PROOF_SCALE = int(os.environ.get("PROOF_SCALE", search.PROOF_SCALE))
    only = os.environ.get("ONLY")
    data = os.environ.get("MINIMALLOC", "/work/shared/data/minimalloc/challenging")
    problems = {f"minimalloc {c}": (lambda c=c: read_csv(os.path.join(data, f"{c}.1048576.csv")).problem())
                for c in "ABCDEFGHIJ"}
    problems.update({f"intervals {n}": (lambda n=n: intervals(n)) for n in (300, 3000)})
    for name, make in problems.items():
        if only and not any(name.endswith(o) for o in only.split(",")):
            continue
        p = make()
        for tl in LIMITS:
            c0 = time.process_time()
            s = solve(p, "search", SolveOptions(time_limit=tl))
            cpu = time.process_time() - c0
            print(json.dumps({"label": label, "problem": name, "time_limit": tl, "arena": int(s.arena),
                              "cpu": round(cpu, 2), "nodes": s.info.get("nodes"), "tries": s.info.get("tries")}),
                  flush=True)


def table(old_path: str, new_path: str) -> None:
    def load(path):
        return {(r["problem"], r["time_limit"]): r for r in map(json.loads, open(path))}
    old, new = load(old_path), load(new_path)
    print(f"{'problem':>16} {'limit':>5} {'old arena':>10} {'new arena':>10} {'old cpu':>7} {'new cpu':>7} {'tries':>5}")
    for key, o in old.items():
        n = new[key]
        mark = "" if n["arena"] == o["arena"] else (" better" if n["arena"] < o["arena"] else " WORSE")
        print(f"{key[0]:>16} {key[1]:>5g} {o['arena']:>10} {n['arena']:>10} {o['cpu']:>7.2f} {n['cpu']:>7.2f} "
              f"{n['tries']!s:>5}{mark}")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        table(sys.argv[2], sys.argv[3])
