"""Session 63: side proofs (``SearchParams.side_proofs``) off vs on, minimalloc A-K *without* their capacity (the
search minimises from its start), at ``time_limit`` 1 and 5.

    python docs/experiments/search_s63_nocap.py [LIMITS] [NAMES]     # default: 1,5 and A-K

Each row: the arena and status each way, and the search's tries (``info["tries"]``). Work budgets: the rows repeat
on any machine (none here stopped on the wall clock).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from minimalloc_data import challenging  # noqa: E402,I001

from memplan.solvers import SearchParams, SolveOptions, solve  # noqa: E402,I001


def main() -> None:
    limits = [float(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,5").split(",")]
    names = (sys.argv[2] if len(sys.argv) > 2 else "ABCDEFGHIJK").replace(",", "")
    for T in limits:
        for name in names:
            p = challenging(name)
            r = [solve(p, "search", SolveOptions(time_limit=T, search=SearchParams(side_proofs=sp))) for sp in (False, True)]
            mark = "" if (r[0].arena, r[0].status) == (r[1].arena, r[1].status) else (
                "BETTER" if (r[1].arena, r[1].status.name != "OPTIMAL") < (r[0].arena, r[0].status.name != "OPTIMAL")
                else "WORSE")
            print(f"T={T:<4} {name}  off {r[0].arena:>8} {r[0].status.name:9} tries {r[0].info.get('tries', '-'):>4}"
                  f"   on {r[1].arena:>8} {r[1].status.name:9} tries {r[1].info.get('tries', '-'):>4}  {mark}", flush=True)


if __name__ == "__main__":
    main()
