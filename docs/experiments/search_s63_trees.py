"""Session 63: each packing tree of minimalloc A-K alone at its capacity 1,048,576, side proofs off or on.

    SP=0 python docs/experiments/search_s63_trees.py      # off (``SearchParams(side_proofs=False)``)
    python docs/experiments/search_s63_trees.py           # on; PROBE_* constants may be given in the environment
    python docs/experiments/search_s63_trees.py E:TWA     # some trees only

Each row: the tree (problem and preorder), whether it packed within a limit of 42,000 units, the units and nodes it took
and its side proofs (asked / answered from the try's table). Work counts: the rows repeat on any machine.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from minimalloc_data import challenging  # noqa: E402,I001

from memplan.solvers import search_tree  # noqa: E402,I001
from memplan.solvers.options import SearchParams  # noqa: E402,I001

CAP = 1048576
TREES = [("A", "TWA"), ("B", "TAW"), ("C", "TAW"), ("D", "WAT"), ("D", "TWA"), ("E", "TWA"), ("F", "TWA"), ("G", "TWA"),
         ("H", "TAW"), ("I", "TWA"), ("J", "TWA"), ("K", "WAT"), ("K", "TWA")]


def main() -> None:
    for k in ("PROBE_MOST_NUM", "PROBE_MOST_DEN", "PROBE_SHARE", "PROBE_AFTER_NODES", "PROBE_UNITS_PER_BUFFER"):
        if k in os.environ:
            setattr(search_tree, k, int(os.environ[k]))
    trees = [tuple(x.split(":")) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else TREES
    on = os.environ.get("SP", "1") == "1"
    total = 0
    for name, pre in trees:
        budget = search_tree.WorkBudget(10**9, 1e9)
        s = search_tree.PackingSearch(challenging(name), SearchParams(side_proofs=on), budget)
        try:
            out = "packed" if s.feasible(CAP, pre, 42000) is not None else "none"
        except search_tree.Abort:
            out = "-"
        units = budget.taken // search_tree.WORK_NS_PER_UNIT
        total += units
        print(f"{name} {pre} {out:6} {units:6d}u {s.nodes:6d}n p{s.side_proofs}/h{s.side_hits}", flush=True)
    print("total", total)


if __name__ == "__main__":
    main()
