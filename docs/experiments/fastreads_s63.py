# ruff: noqa: B023 - each lambda is timed within its own loop iteration
"""``python docs/experiments/fastreads_s63.py``: side by side in one process, round 63's ``PythonReads.unchanged``
(every place through its ``read``: three Python frames each; each container's items by a per-container generator)
against fastreads63's (places grouped by kind, read in C-level maps; containers' items in one row), alone and inside
``guard.unchanged``, on bench_reads' small MLP and a tiny transformers Llama (CPU). Ratios: the machine is shared."""
import operator
import statistics
import time
from operator import is_

import torch

from runtime.aten import compile
from runtime.aten.bench_reads import small_model, tiny_llama
from runtime.aten.python_reads import _same_objects


def old_unchanged(r):
    values = r.values
    if not all(map(is_, map(operator.call, r.reads), values)):
        return False
    return all(_same_objects(values[i], c) for i, c in r.copies)

def t(fn, n):
    s = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - s) / n * 1e6

for name, m, ex in (("small MLP", small_model(torch), (torch.randn(8, 64),)),
                    ("tiny Llama", tiny_llama(torch), (torch.randint(0, 128, (1, 16)),))):
    with torch.no_grad():
        step = compile(m, ex, streams=1, cuda_graph=False, device="cpu")
        step(*ex)
    r = step.guard.reads
    f = r.fast
    print(name, "places", len(r.labels), "dict", len(f.dicts[0]), "proxy", len(f.proxies[0]), "cell", len(f.cells[0]),
          "attrs", len(f.attrs[0]), "slow", len(f.slow[0]), "copies", len(r.copies))
    assert old_unchanged(r) and r.unchanged()
    res = {"old": [], "new": []}
    for _ in range(9):
        res["old"].append(t(lambda: old_unchanged(r), 2000))
        res["new"].append(t(r.unchanged, 2000))
    o, n = statistics.median(res["old"]), statistics.median(res["new"])
    print(f"  reads.unchanged old {o:.2f} us  new {n:.2f} us  ratio x{n / o:.3f}")
    from dataclasses import replace
    g, g0 = step.guard, replace(step.guard, reads=None)
    go = {"old": [], "new": [], "none": []}
    for _ in range(9):
        go["old"].append(t(lambda: g0.unchanged() and old_unchanged(r), 1000))
        go["new"].append(t(g.unchanged, 1000))
        go["none"].append(t(g0.unchanged, 1000))
    o, n, z = (statistics.median(go[k]) for k in ("old", "new", "none"))
    print(f"  guard.unchanged: no reads check {z:.2f} us, round 63 {o:.2f} us, now {n:.2f} us; reads share {o - z:.2f} -> {n - z:.2f} us (x{(n - z) / (o - z):.3f})")
    values = r.values
    parts = {"fast reads": f.unchanged, "fast items": f.items_unchanged,
             "old copies": lambda: all(_same_objects(values[i], c) for i, c in r.copies),
             "old reads": lambda: all(map(is_, map(operator.call, r.reads), values))}
    for k, fn in parts.items():
        print("   ", k, f"{statistics.median(t(fn, 2000) for _ in range(7)):.2f} us")
    from collections import Counter
    print("   copies types", Counter(type(c).__name__ for _i, c in r.copies), "lens", sorted(len(c) for _i, c in r.copies))
