"""Round 75 (plan75): the planner's slow spots round 74 left, measured in CPU seconds (the 2-core VM is shared, so
wall-clock times there run 2-4x these), each with its plan's sha (or the refusal), to compare two trees byte for byte.

Cases (the generators of round 74's probes): ``random_wide(3000)`` over 128 devices with ``device_capacity=4000`` (a
refusal, after two rounds of 128 device problems), ``tiny_giant(5000)`` on ``streams=1024``, ``random_wide(5000)`` on
``streams=1024, max_events=10``, and the split alone without a capacity. Run from a tree's root:

    PYTHONPATH=$PWD python docs/experiments/cliffs_s75.py

Results: docs/experiments/cliffs_s75.txt.
"""

import hashlib
import json
import random
import sys
import time

import memplan


def _graph(tensors: list, nodes: list, alignment: int = 256) -> memplan.Graph:
    return memplan.graph_from_dict({"format": "memplan.graph/1", "name": "f", "alignment": alignment,
                                    "tensors": tensors, "nodes": nodes})


def tiny_giant(n: int, seed: int = 0) -> memplan.Graph:
    """A 1 GiB input and a 1 GiB tensor every 1,000 nodes among tensors of 1-1,024 bytes, each node reading two of
    the last 50 (alignment 1)."""
    rng = random.Random(seed)
    ts, ns, avail = [{"id": "x", "size": 1 << 30, "kind": "input"}], [], ["x"]
    for i in range(n):
        size = (1 << 30) if i % 1000 == 0 else rng.choice([1, 16, 256, 1024])
        ts.append({"id": f"t{i}", "size": size, "kind": "intermediate" if i < n - 1 else "output"})
        ins = rng.sample(avail[-50:], min(2, len(avail[-50:])))
        ns.append({"id": f"n{i}", "inputs": ins, "outputs": [f"t{i}"], "cost": float(rng.randint(1, 9))})
        avail.append(f"t{i}")
    return _graph(ts, ns, 1)


def random_wide(n: int, seed: int = 1) -> memplan.Graph:
    """Each node reads 1-3 tensors drawn from every earlier one (2 % outputs)."""
    rng = random.Random(seed)
    ts = [{"id": f"x{i}", "size": 4096, "kind": "input"} for i in range(4)]
    ns, avail = [], [f"x{i}" for i in range(4)]
    for i in range(n):
        ts.append({"id": f"t{i}", "size": rng.choice([256, 4096, 65536]),
                   "kind": "output" if rng.random() < 0.02 else "intermediate"})
        ns.append({"id": f"n{i}", "inputs": rng.sample(avail, min(len(avail), rng.randint(1, 3))),
                   "outputs": [f"t{i}"], "cost": float(rng.randint(1, 30))})
        avail.append(f"t{i}")
    return _graph(ts, ns)


CASES = [
    ("random_wide(3000)", lambda: random_wide(3000), {"devices": 128, "device_capacity": 4000}),
    ("random_wide(3000)", lambda: random_wide(3000), {"devices": 128}),
    ("tiny_giant(5000)", lambda: tiny_giant(5000), {"streams": 1024}),
    ("random_wide(5000)", lambda: random_wide(5000), {"streams": 1024, "max_events": 10}),
]


def main() -> None:
    for name, make, opts in CASES:
        g = make()
        t = time.process_time()
        try:
            planned = memplan.plan_graph(g, **opts)
            text = planned.plan.to_json() + json.dumps(planned.graph.to_dict(), sort_keys=True)
            what = hashlib.sha1(text.encode()).hexdigest()[:12]
        except memplan.MemplanError as exc:
            what = f"refused: {str(exc)[:60]}"
        print(f"{name} {json.dumps(opts)} {time.process_time() - t:.2f} s CPU {what}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
