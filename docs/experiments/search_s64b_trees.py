"""Session 64b: the side proofs of each preorder's tree of minimalloc A-K alone at its bound (the peak of live bytes, as
a solve without a capacity tries it), each with a limit of 20,000 units.

    python docs/experiments/search_s64b_trees.py                 # with ``search_tree.PROBE_TRIAL`` (8)
    TRIAL=1000000 python docs/experiments/search_s64b_trees.py   # every proof the share allows, as before
    python docs/experiments/search_s64b_trees.py FK              # some problems only

Each row: the tree, whether it packed, the units it took, the proofs asked, how many proved, the index of the first
that proved, the proofs' units, and each proof in order (+ proved, . did not). Work counts: the rows repeat on any
machine.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from minimalloc_data import challenging  # noqa: E402,I001

from memplan.solvers import search_tree  # noqa: E402,I001
from memplan.solvers.options import SearchParams  # noqa: E402,I001
from memplan.solvers.start import known_bound  # noqa: E402,I001


def main() -> None:
    if os.environ.get("TRIAL"):
        search_tree.PROBE_TRIAL = int(os.environ["TRIAL"])
    log: list[tuple[bool, int]] = []
    real = search_tree.PackingSearch._side_proof

    def spy(self, a, z, *most):
        work, asked = self.probe_work, self.side_proofs
        out = real(self, a, z, *most)
        if self.side_proofs > asked:
            log.append((out, (self.probe_work - work) // search_tree.WORK_NS_PER_UNIT))
        return out

    search_tree.PackingSearch._side_proof = spy
    for name in sys.argv[1] if len(sys.argv) > 1 else "ABCDEFGHIJK":
        p = challenging(name, None)
        cap = known_bound(p, 0)
        for pre in SearchParams().preorders:
            budget = search_tree.WorkBudget(10**9, 1e9)
            s = search_tree.PackingSearch(p, SearchParams(), budget)
            log.clear()
            try:
                out = "packed" if s.feasible(cap, pre, 20000) is not None else "none"
            except search_tree.Abort:
                out = "-"
            ok = [i for i, (r, _) in enumerate(log) if r]
            print(f"{name} {pre} {out:6} {budget.taken // search_tree.WORK_NS_PER_UNIT:6d}u asked {len(log):3d} proved "
                  f"{len(ok):3d} first {ok[0] if ok else '-'} units {sum(u for _, u in log):5d} "
                  + "".join("+" if r else "." for r, _ in log), flush=True)


if __name__ == "__main__":
    main()
