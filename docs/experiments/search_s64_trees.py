"""Session 64: each static preorder's tree of a minimalloc problem alone at given capacities (``feasible``).

    python docs/experiments/search_s64_trees.py D 986112,1048575 20000
    python docs/experiments/search_s64_trees.py J 989184,1044479 20000 TWA

Arguments: the problem, capacities, the limit in work units, preorders (default WAT,TAW,TWA). Each row: whether the
tree packed (``-``: stopped at the limit; ``none``: exhausted), the units and nodes it took, its backtracks, failed-state
hits and side proofs (asked / answered from the try's table). Work counts: the rows repeat on any machine.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from minimalloc_data import challenging  # noqa: E402,I001

from memplan.solvers import search_tree  # noqa: E402,I001
from memplan.solvers.options import SearchParams  # noqa: E402,I001


def main() -> None:
    name, caps, limit = sys.argv[1], [int(c) for c in sys.argv[2].split(",")], int(sys.argv[3])
    preorders = sys.argv[4].split(",") if len(sys.argv) > 4 else ["WAT", "TAW", "TWA"]
    for cap in caps:
        for pre in preorders:
            budget = search_tree.WorkBudget(10**9, 1e9)
            s = search_tree.PackingSearch(challenging(name), SearchParams(), budget)
            try:
                r = s.feasible(cap, pre, limit)
                out = "packed" if r is not None else f"none(above={s.above})"
            except search_tree.Abort:
                out = "-"
            units = budget.taken // search_tree.WORK_NS_PER_UNIT
            print(f"{name} {cap} {pre} {out:6} {units:6d}u {s.nodes:6d}n bt={s.backtracks} memo={s.memo_hits} "
                  f"p{s.side_proofs}/h{s.side_hits}", flush=True)


if __name__ == "__main__":
    main()
