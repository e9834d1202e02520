"""Round 63: the default solver on problems that walk ``skyline``'s narrow tier, and what those walks cost.

Usage: ``PYTHONPATH=TREE python docs/experiments/skyline_narrow_s63.py [cpu|work] [NAMES]`` (NAMES: comma-separated
``graph:s1|s3|sauto``; default every graph below, every option set). ``cpu``: one line a plan, the plan's CPU and the
CPU inside ``auto.skyline_below`` / ``skyline_within`` (run two trees one after the other in one shell line and
compare ratios: a shared machine). ``work``: one line a ``skyline`` solve: buffers, pairs a walk (``auto._walk_work``),
the tier's keys, promotion rounds and repair asked, and the work run in walks' worth (each walk whole; each rewalk
its neighbours over a walk's), split keys / promotions / extra / repair, and the plan's arena. Results:
docs/experiments/skyline_narrow_s63.txt.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_s62 import graphs  # noqa: E402,I001

import memplan  # noqa: E402,I001
from memplan import generators  # noqa: E402,I001
from memplan.benchmarks import scale  # noqa: E402,I001
from memplan.solvers import auto, skyline  # noqa: E402,I001

STREAMS = {"s1": {}, "s3": {"streams": 3}, "sauto": {"streams": "auto"}}


def all_graphs() -> dict:
    gs = dict(graphs())
    for n in (200, 500, 2000):
        gs[f"rdag{n}"] = (lambda n=n: scale.random_dag(n, seed=2))
        gs[f"layered{n}"] = (lambda n=n: scale.layered_graph(n, seed=2))
    for n in (200, 1000):
        gs[f"fj{n}"] = (lambda n=n: generators.fanout_join(n, seed=2)[0])
        gs[f"io{n}"] = (lambda n=n: scale.io_graph(n, seed=2))
    for k in (4, 16):
        gs[f"transformer{k}"] = (lambda k=k: scale.transformer_graph(k))
    gs["moe4x64"] = lambda: scale.moe_graph(4, 64)
    gs["chains60"] = lambda: scale.chains_graph(60)
    gs["wide1000"] = lambda: scale.wide_graph(1000)
    ex = tempfile.mkdtemp()
    import subprocess
    subprocess.run([sys.executable, "-m", "memplan", "example", "-o", ex], check=True, capture_output=True)
    for f in sorted(os.listdir(ex)):
        if f.endswith(".json"):
            gs[f"ex:{f[:-5]}"] = (lambda p=os.path.join(ex, f): memplan.load_graph(p))
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "tests"))
    from minimalloc_data import challenging
    for c in "ABCDEFGHIJK":
        gs[f"mm:{c}"] = (lambda c=c: challenging(c))
    return gs


def plan(g, opts):
    """The default's plan of a graph (``memplan.plan``), or of a minimalloc problem (``auto.solve``: no graph)."""
    if isinstance(g, memplan.BufferProblem):
        return auto.solve(g)
    return memplan.plan(g, **opts)


class Meter:
    """Counts what the walks of one ``skyline.solve`` ran, in walks' worth, by stage."""

    def __init__(self) -> None:
        self.stage = "keys"
        self.rows: list[dict] = []
        self.row: dict | None = None

    def install(self) -> None:
        real_walk, real_rewalk, real_promoted, real_solve = skyline.walk, skyline.rewalk, skyline.promoted, skyline.solve
        real_key_ranks = skyline.key_ranks
        m = self

        def walk(sizes, nbrs, *a, **k):
            if m.row is not None:
                m.row[m.stage] += 1.0
            return real_walk(sizes, nbrs, *a, **k)

        def rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free):
            if m.row is not None:
                m.row["repair"] += (len(free) + sum(len(nbrs[i]) for i in free)) / m.row["per_walk"]
            return real_rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free)

        def promoted(*a, **k):
            m.stage = "promo"
            try:
                return real_promoted(*a, **k)
            finally:
                m.stage = "extra"

        def key_ranks(name, *a):
            if m.row is not None and name in skyline.EXTRA_KEYS and m.stage != "repair":
                m.stage = "extra"
            return real_key_ranks(name, *a)

        def solve(problem, **k):
            m.row = {"n": len(problem), "w": auto._walk_work(problem), "keys": len(k.get("keys", ())),
                     "rounds": k.get("rounds", 0), "repair_asked": k.get("repair", 0), "keys_run": 0.0,
                     "per_walk": max(sum(len(r) for r in skyline.neighbours(problem)), 1),
                     "promo": 0.0, "extra": 0.0, "repair": 0.0}
            m.row["keys"] = 0.0
            m.row["nkeys"] = len(k.get("keys", ()))
            m.stage = "keys"
            try:
                sol = real_solve(problem, **k)
                m.row["arena"] = sol.arena
                m.row["info"] = {a: b for a, b in sol.info.items() if a.startswith("skyline")}
                return sol
            finally:
                self.rows.append(m.row)
                m.row = None

        def repaired(*a, **k):
            m.stage = "repair"
            return real_repaired(*a, **k)
        real_repaired = skyline.repaired
        skyline.walk, skyline.rewalk, skyline.promoted, skyline.solve = walk, rewalk, promoted, solve
        skyline.key_ranks, skyline.repaired = key_ranks, repaired


def cpu_mode(items) -> None:
    spent = [0.0]
    for name in ("skyline_below", "skyline_within"):
        real = getattr(auto, name)

        def timed(*a, real=real, **k):
            c = time.process_time()
            try:
                return real(*a, **k)
            finally:
                spent[0] += time.process_time() - c
        setattr(auto, name, timed)
    for label, g, opts in items:
        spent[0] = 0.0
        c = time.process_time()
        p = plan(g, opts)
        cpu = time.process_time() - c
        if isinstance(g, memplan.BufferProblem):
            from memplan.solvers.check import packs
            assert packs(g, p)
            arena, lb, solver = p.arena, int(g.lower_bound or 0), p.solver
        else:
            memplan.verify(g, p)
            arena, lb, solver = p.arena_bytes, p.lower_bound_bytes, p.solver.get("name")
        print(f"{label:28} arena={arena:>10} lb={lb:>10} cpu={cpu:6.2f}s walks={spent[0]:6.2f}s solver={solver}",
              flush=True)


def work_mode(items) -> None:
    m = Meter()
    m.install()
    for label, g, opts in items:
        m.rows.clear()
        p = plan(g, opts)
        for r in m.rows:
            total = r["keys"] + r["promo"] + r["extra"] + r["repair"]
            print(f"{label:28} n={r['n']:5} w={r['w']:7} keys={r['nkeys']} rounds={r['rounds']:2} "
                  f"repair={float(r['repair_asked']):4.2f} | walks: keys {r['keys']:.0f} promo {r['promo']:.0f} "
                  f"extra {r['extra']:.0f} repair {r['repair']:5.2f} total {total:5.2f} = {total * r['w']:9.0f} pairs"
                  f" | arena {r.get('arena')} {r.get('info')}", flush=True)
        arena = p.arena if isinstance(g, memplan.BufferProblem) else p.arena_bytes
        print(f"{label:28} plan arena={arena}", flush=True)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    if os.environ.get("NARROW_WORK"):   # (tuning: another total for the narrow tier)
        auto.SKYLINE_NARROW_WORK = int(os.environ["NARROW_WORK"])
    gs = all_graphs()
    if len(sys.argv) > 2:
        pairs = [(s, "s1") if s.startswith("mm:") else tuple(s.rsplit(":", 1)) for s in sys.argv[2].split(",")]
    else:
        pairs = [(a, s) for a in gs for s in (("s1",) if a.startswith("mm:") else STREAMS)]
    items = ((f"{a}:{s}", gs[a](), STREAMS[s]) for a, s in pairs)
    {"cpu": cpu_mode, "work": work_mode}[mode](items)


if __name__ == "__main__":
    main()
