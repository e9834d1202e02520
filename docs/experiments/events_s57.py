"""Session 57: the cost of ``graph_optimize(..., max_events=N)``'s fork thinning (``thin_streams``), old and new in one run.

    python docs/experiments/events_s57.py both /tmp/old /tmp/new > events_s57.txt

``both OLD NEW`` runs every case of ``events_s55.py`` (10 graphs, caps 2..100, ``event_us`` 0 and 2, 1,024 streams),
``wide_graph(21000)`` under ``max_events=1000`` and three memory-budget cases, each graph in a subprocess on ``OLD``'s
code, then on ``NEW``'s (interleaved, so that both see the same load of the shared machine), and prints the table.
Per schedule: simulated makespan, events, streams, the capped optimizer's CPU seconds (``process_time``), the part
of it in the fork thinning (``thin_streams``: the 2/3/4-stream bases thinned to the cap) and the uncapped optimizer's CPU
(``graph_optimize(g, 1024)``, once per graph and ``event_us``). A budget row is ``plan(g, streams=1024,
max_events=cap, memory_budget=B)``, ``B`` halfway between the serial plan's arena and the capped plan's without a
budget: its arena, CPU and how often the candidate pool was built.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CAPS = (2, 4, 8, 16, 60, 100)
BIG = {"wide(21000)": 1000}
BUDGET = {"budget:layered(400)": 60, "budget:moe(4x16)": 8, "budget:random_dag(400)": 60}


def _graphs():
    sys.path.insert(0, HERE)
    from events_s55 import GRAPHS

    from memplan.benchmarks.scale import wide_graph
    return dict(GRAPHS, **{"wide(21000)": lambda: wide_graph(21000)})


def run(label: str, names: list[str]) -> None:
    import memplan
    import memplan.optimize.budget as B
    import memplan.optimize.candidates as C
    from memplan import simulate
    from memplan.optimize import DEFAULT_EVENT_US, CostModel, graph_optimize

    spent = [0.0]
    pools = [0]

    def timed(f):
        def g(*a, **k):
            c = time.process_time()
            try:
                return f(*a, **k)
            finally:
                spent[0] += time.process_time() - c
        return g

    def counted(f):
        def g(*a, **k):
            pools[0] += 1
            return f(*a, **k)
        return g

    B.thin_streams = timed(B.thin_streams)
    B.candidate_pool = C.candidate_pool = counted(B.candidate_pool)
    graphs = _graphs()
    for name in names:
        g = graphs[name.removeprefix("budget:")]()
        if name in BUDGET:   # (halfway between the serial arena and the first plan's: the pool is tried)
            model = CostModel(event_us=0.0)
            serial = memplan.plan(g).arena_bytes
            first = memplan.plan(g, streams=1024, max_events=BUDGET[name], cost_model=model).arena_bytes
            budget = max(serial, (serial + first) // 2)
            pools[0] = 0
            c0 = time.process_time()
            p = memplan.plan(g, streams=1024, max_events=BUDGET[name], memory_budget=budget, cost_model=model)
            print(json.dumps({"label": label, "graph": name, "budget": budget, "first": first, "cap": BUDGET[name],
                              "arena": p.arena_bytes, "events": len(p.events), "streams": p.streams,
                              "cpu": round(time.process_time() - c0, 2), "pools": pools[0]}), flush=True)
            continue
        for ev in (0.0, DEFAULT_EVENT_US):
            model = CostModel(event_us=ev)
            c0 = time.process_time()
            graph_optimize(g, 1024, cost_model=model)
            uncapped = time.process_time() - c0
            for cap in ((BIG[name],) if name in BIG else CAPS):
                spent[0] = 0.0
                c0 = time.process_time()
                s = graph_optimize(g, 1024, cost_model=model, max_events=cap)
                cpu = time.process_time() - c0
                ms = simulate(g, s, model).makespan_us
                print(json.dumps({"label": label, "graph": name, "nodes": len(g.nodes), "event_us": ev, "cap": cap,
                                  "makespan": round(ms, 3), "events": len(s.events), "streams": s.num_streams,
                                  "cpu": round(cpu, 2), "search": round(spent[0], 2),
                                  "uncapped": round(uncapped, 2)}), flush=True)


def both(old: str, new: str) -> None:
    rows: dict[str, list[dict]] = {"old": [], "new": []}
    for name in list(_graphs()) + list(BUDGET):
        for label, root in (("old", old), ("new", new)):
            env = dict(os.environ, PYTHONPATH=root)
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "run", label, name], env=env,
                                 capture_output=True, text=True, check=True, cwd="/").stdout
            rows[label] += [json.loads(line) for line in out.splitlines()]
    table(rows["old"], rows["new"], old, new)


def table(old_rows: list[dict], new_rows: list[dict], old: str, new: str) -> None:
    key = lambda r: (r["graph"], r.get("event_us"), r["cap"], "budget" in r)   # noqa: E731
    new_of = {key(r): r for r in new_rows}
    plain = [(o, new_of[key(o)]) for o in old_rows if "budget" not in o]
    faster = sum(n["makespan"] < o["makespan"] - 1e-9 for o, n in plain)
    slower = sum(n["makespan"] > o["makespan"] + 1e-9 for o, n in plain)
    events = sum(n["events"] != o["events"] or n["streams"] != o["streams"] for o, n in plain)
    cpu_o, cpu_n = sum(o["cpu"] for o, _ in plain), sum(n["cpu"] for _, n in plain)
    s_o, s_n = sum(o["search"] for o, _ in plain), sum(n["search"] for _, n in plain)
    print(f"# docs/experiments/events_s57.py: old = {old}, new = {new}; graph_optimize(g, 1024, max_events=cap)")
    print("# us = simulated makespan, ev = events, st = streams, cpu = capped optimizer process_time (s), thin = its "
          "part in thin_streams (fork thinning), unc = uncapped graph_optimize(g, 1024) (s; shared 2-core VM)")
    print(f"# {len(plain)} rows: {faster} faster, {slower} slower, {events} with other events or streams; capped CPU {cpu_o:.1f} s -> {cpu_n:.1f} s, "
          f"thinning {s_o:.1f} s -> {s_n:.1f} s")
    print(f"{'graph':>17} {'ev':>3} {'cap':>4} | {'old us':>9} {'ev':>4} {'st':>3} {'cpu':>5} {'thin':>5} {'unc':>5} | "
          f"{'new us':>9} {'ev':>4} {'st':>3} {'cpu':>5} {'thin':>5} {'unc':>5} | {'gain':>6}")
    for o, n in plain:
        gain = (o["makespan"] - n["makespan"]) / o["makespan"] * 100 if o["makespan"] else 0.0
        print(f"{o['graph']:>17} {o['event_us']:>3g} {o['cap']:>4} | {o['makespan']:>9.1f} {o['events']:>4} "
              f"{o['streams']:>3} {o['cpu']:>5.2f} {o['search']:>5.2f} {o['uncapped']:>5.2f} | {n['makespan']:>9.1f} "
              f"{n['events']:>4} {n['streams']:>3} {n['cpu']:>5.2f} {n['search']:>5.2f} {n['uncapped']:>5.2f} | "
              f"{gain:>5.1f}%")
    print("# memory budget: plan(g, streams=1024, max_events=cap, memory_budget=B, event_us=0), B halfway between the "
          "serial arena and the capped plan's (first); pools = candidate_pool builds")
    for o in old_rows:
        if "budget" in o:
            n = new_of[key(o)]
            print(f"{o['graph']:>23} cap {o['cap']:>3} first {o['first']:>8} budget {o['budget']:>8} | old arena {o['arena']:>9} ev "
                  f"{o['events']:>3} st {o['streams']:>3} cpu {o['cpu']:>5.2f} pools {o['pools']} | new arena "
                  f"{n['arena']:>9} ev {n['events']:>3} st {n['streams']:>3} cpu {n['cpu']:>5.2f} pools {n['pools']}")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3].split(","))
    else:
        both(sys.argv[2], sys.argv[3])
