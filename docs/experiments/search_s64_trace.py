"""Session 64: where a minimise solve of minimalloc's D or J spends its work (each try, shot and restart in order).

    python docs/experiments/search_s64_trace.py D 5                      # with the capacity 1,048,576, time_limit=5
    SPARAMS="chase=False" python docs/experiments/search_s64_trace.py J 5   # as round 63 solved it
    NOCAP=1 python docs/experiments/search_s64_trace.py K 1               # without the capacity (round 64b)

Each row: the step (``trycap``: the three preorders interleaved at a capacity; ``bound``: the bound's trees resumed;
``shot``: one preorder alone; ``restart``), its arguments, the work units it took, the best arena and bound before and
after. Work counts: the rows repeat on any machine.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from minimalloc_data import challenging  # noqa: E402,I001

from memplan.solvers import search, solve  # noqa: E402,I001
from memplan.solvers.options import SearchParams, SolveOptions  # noqa: E402,I001


def _wrap(fn, label):
    def f(self, *a, **k):
        b = self.searches[0].budget
        t0, best0, pr0 = b.taken, self.best, self.bound()
        r = fn(self, *a, **k)
        args = [x for x in a[:2] if isinstance(x, int)]
        print(f"{label:8} {args!s:20} units={(b.taken - t0) // 100000:6d} total={b.taken // 100000:6d} "
              f"best {best0}->{self.best} bound {pr0}->{self.bound()}", flush=True)
        return r
    return f


def main() -> None:
    name, limit = sys.argv[1], float(sys.argv[2])
    m = search._Minimiser
    m.resume_bound, m.try_capacity = _wrap(m.resume_bound, "bound"), _wrap(m.try_capacity, "trycap")
    m.restart, m.shot = _wrap(m.restart, "restart"), _wrap(m.shot, "shot")
    params = SearchParams(**eval("dict(" + os.environ.get("SPARAMS", "") + ")"))
    cap = None if os.environ.get("NOCAP") else 1048576
    r = solve(challenging(name, cap), "search", SolveOptions(time_limit=limit, search=params))
    print(name, limit, r.arena, r.status, r.lower_bound, r.info)


if __name__ == "__main__":
    main()
