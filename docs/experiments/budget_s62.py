"""Round 62 (docs/benchmarks.md, "A budget's fork scores and the conflict arrays kept"): run with PYTHONPATH at the
tree to measure, each mode in a fresh process, one tree after the other.

    python docs/experiments/budget_s62.py forks            # score_forks CPU seconds and a hash of every fork score
    python docs/experiments/budget_s62.py plan 2000 memory_budget=3.9   # a plan: sha1, CPU, score_forks, peak RSS
    python docs/experiments/budget_s62.py plan 5000 max_events=500
    python docs/experiments/budget_s62.py held 50          # 50 live problems, conflict_csr on each: bytes kept, RSS
    python docs/experiments/budget_s62.py held 50 pairs    # the same, their pairs' own cache left on them

``plan``'s budget is a factor of the serial plan's arena (1.0: the serial arena), on ``layered_graph(N)`` at 1,024
streams.
"""

from __future__ import annotations

import hashlib
import resource
import sys
import time
import warnings


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def forks() -> None:
    from memplan.benchmarks import scale
    from memplan.optimize.budget import score_forks
    from memplan.optimize.streams import optimize

    for name, n, s in (("layered_graph", 2000, 1024), ("layered_graph", 5000, 1024), ("random_dag", 2000, 64),
                       ("layered_graph", 700, 8), ("wide_graph", 500, 64), ("transformer_graph", 8, 8)):
        g = getattr(scale, name)(n)
        opt = optimize(g, s)
        t = time.process_time()
        fs = score_forks(g, opt, opt.schedule)
        dt = time.process_time() - t
        print(f"{name}({n}) s={s}: {len(fs)} forks, {dt:.2f} s, {hashlib.sha1(repr(fs).encode()).hexdigest()[:12]}",
              flush=True)


def plan(n: int, option: str) -> None:
    import memplan
    from memplan.benchmarks.scale import layered_graph
    from memplan.optimize import budget

    warnings.simplefilter("ignore")
    key, value = option.split("=")
    g = layered_graph(n)
    arena = memplan.plan(g).arena_bytes
    value = int(float(value) * arena) if key == "memory_budget" else int(value)
    spent = [0.0, 0]
    score = budget.score_forks

    def timed(*a, **k):
        t = time.process_time()
        out = score(*a, **k)
        spent[0] += time.process_time() - t
        spent[1] += len(out)
        return out

    budget.score_forks = timed
    t = time.process_time()
    p = memplan.plan(g, streams=1024, **{key: value})
    print(f"layered_graph({n}) {key}={value}: sha1 {hashlib.sha1(p.to_json().encode()).hexdigest()[:12]}, "
          f"CPU {time.process_time() - t:.1f} s, score_forks {spent[0]:.2f} s ({spent[1]} forks), peak RSS {_rss()} MiB")


def held(k: int, pairs: bool = False) -> None:
    """``k`` live problems, ``conflict_csr`` on each; their pairs' own cache popped by hand unless ``pairs`` (round 62
    (pairs): the ledger counts those too). Bytes kept, tracemalloc's current and peak, peak RSS."""
    import tracemalloc

    import numpy as np

    from memplan.problem import BufferProblem

    tracemalloc.start()
    kept = []
    for seed in range(k):
        rng = np.random.default_rng(seed)
        lower = rng.integers(0, 2000, 2500)
        p = BufferProblem(sizes=rng.integers(1, 64, 2500) * 16, lower=lower, upper=lower + rng.integers(1, 500, 2500))
        p.conflict_csr(as_lists=False)
        if not pairs:
            p.__dict__.pop("_pairs_cache", None)   # (the pairs' own cache aside: the CSR arrays alone)
        kept.append(p)
    now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held_bytes = sum(sum(a.nbytes for a in p.__dict__["_csr_cache"]) for p in kept if "_csr_cache" in p.__dict__)
    pairs_bytes = sum(sum(a.nbytes for a in p.__dict__["_pairs_cache"][1]) for p in kept if "_pairs_cache" in p.__dict__)
    n_pairs = len(kept[0]._conflict_csr()[1]) // 2
    print(f"{k} problems of {n_pairs} pairs: CSR arrays kept {held_bytes / 2**20:.0f} MiB, pairs kept "
          f"{pairs_bytes / 2**20:.0f} MiB, traced {now / 2**20:.0f} MiB (peak {peak / 2**20:.0f}), peak RSS {_rss()} MiB")

if __name__ == "__main__":
    mode, *args = sys.argv[1:] or ["forks"]
    if mode == "forks":
        forks()
    elif mode == "plan":
        plan(int(args[0]), args[1])
    else:
        held(int(args[0]), args[1:] == ["pairs"])
