"""Session 55: ``graph_optimize(..., max_events=N)`` on general DAGs: the stream count an event cap is spent on.

    PYTHONPATH=/work/main python docs/experiments/events_s55.py run old > /tmp/old.jsonl
    PYTHONPATH=.          python docs/experiments/events_s55.py run new > /tmp/new.jsonl
    python docs/experiments/events_s55.py table /tmp/old.jsonl /tmp/new.jsonl

``run`` schedules each graph on up to 1,024 streams under each cap (2, 4, 8, 16, 60, 100) with ``event_us`` 0 and the
default (2 us) and prints one JSON line per schedule: simulated makespan, events, streams and the optimizer's CPU
seconds (``process_time``: the machine is shared). ``table`` sets two runs side by side."""
import json
import os
import sys
import time

from memplan import simulate
from memplan.benchmarks.scale import layered_graph, moe_graph, random_dag, transformer_graph, wide_graph
from memplan.generators import fanout_join
from memplan.graph import GraphBuilder
from memplan.optimize import DEFAULT_EVENT_US, CostModel, graph_optimize

CAPS = (2, 4, 8, 16, 60, 100)


def diamonds(depth: int, width: int = 3):
    """Diamonds of diamonds: each level forks ``width`` branches, each branch a diamond of the level below."""
    b = GraphBuilder(f"diamonds-{depth}x{width}")
    n = [0]

    def node(ins: list[str], cost: float) -> str:
        t = b.intermediate(f"t{n[0]}", 4096)
        b.node(f"n{n[0]}", "OP", ins, t, cost=cost)
        n[0] += 1
        return t

    def level(src: str, d: int) -> str:
        if d == 0:
            return node([node([src], 10.0)], 10.0)
        head = node([src], 3.0)
        return node([level(head, d - 1) for _ in range(width)], 3.0)

    x = b.input("x", 4096)
    out = level(x, depth)
    b.node("out", "OUT", [out], b.output("y", 4096), cost=1.0)
    return b.build()


GRAPHS = {
    "random_dag(400)": lambda: random_dag(400),
    "layered(400)": lambda: layered_graph(400),
    "layered(2000)": lambda: layered_graph(2000),
    "diamonds(4x3)": lambda: diamonds(4, 3),
    "moe(4x16)": lambda: moe_graph(4, 16),
    "moe(2x64)": lambda: moe_graph(2, 64),
    "transformer(8)": lambda: transformer_graph(8),
    "fanout_join(600)": lambda: fanout_join(600, max_width=8)[0],
    "wide(300)": lambda: wide_graph(300),
    "moe(4x64)": lambda: moe_graph(4, 64),
}


def run(label: str) -> None:
    only = sys.argv[3].split(",") if len(sys.argv) > 3 else None   # (graphs by name; $CAPS: caps, comma-separated)
    caps = tuple(int(c) for c in os.environ["CAPS"].split(",")) if os.environ.get("CAPS") else CAPS
    for name, make in GRAPHS.items():
        if only and name not in only:
            continue
        g = make()
        for ev in (0.0, DEFAULT_EVENT_US):
            model = CostModel(event_us=ev)
            for cap in caps:
                c0 = time.process_time()
                s = graph_optimize(g, 1024, cost_model=model, max_events=cap)
                cpu = time.process_time() - c0
                ms = simulate(g, s, model).makespan_us
                print(json.dumps({"label": label, "graph": name, "nodes": len(g.nodes), "event_us": ev, "cap": cap,
                                  "makespan": round(ms, 3), "events": len(s.events), "streams": s.num_streams,
                                  "cpu": round(cpu, 2)}), flush=True)


def table(old_path: str, new_path: str) -> None:
    def load(path):
        return {(r["graph"], r["event_us"], r["cap"]): r for r in map(json.loads, open(path))}
    old, new = load(old_path), load(new_path)
    print(f"{'graph':>17} {'ev':>3} {'cap':>3} | {'old us':>9} {'ev':>3} {'st':>3} {'cpu':>5} | "
          f"{'new us':>9} {'ev':>3} {'st':>3} {'cpu':>5} | {'gain':>6}")
    for key, o in old.items():
        n = new.get(key)
        if n is None:
            continue
        gain = (o["makespan"] - n["makespan"]) / o["makespan"] * 100 if o["makespan"] else 0.0
        print(f"{key[0]:>17} {key[1]:>3g} {key[2]:>3} | {o['makespan']:>9.1f} {o['events']:>3} {o['streams']:>3} "
              f"{o['cpu']:>5.2f} | {n['makespan']:>9.1f} {n['events']:>3} {n['streams']:>3} {n['cpu']:>5.2f} | "
              f"{gain:>5.1f}%")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        table(sys.argv[2], sys.argv[3])
