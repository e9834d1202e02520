"""Round 67 (determinism): plan JSON that cannot depend on the Python version, the hash seed or the machine's load.

Why it exists: Python 3.12 made ``sum()`` of floats compensated (Neumaier), so every total of node costs the planner
took with ``sum()`` (the serial makespan the plan reports, a fused unit's cost in the scheduler's ranks, a pipeline
stage's cost in ``devices``' split) could round differently on 3.11 (CI) and 3.12 (the GPU machine): a chain with
costs 0.0005, 0.7, 0.0005, 0.0005, 1.1 on two streams wrote ``"serial_makespan_us": 1.801`` on 3.11 and ``1.802``
on 3.12. The tests below run the planner with ``builtins.sum`` replaced by a correctly rounded one (``math.fsum``,
what a compensated sum returns here), which makes the 3.11 interpreter round as 3.12 does: any float total still
taken with ``sum()`` shows up as a plan that changed.

Also: a node's ``inplace`` object is read in the node's output order, so a document with its keys in another order
writes the same ``--graph-out`` (it kept the document's order); and the CLI's plan and ``--graph-out`` repeat across
hash seeds and key orders with devices, streams, events and alignment at once.
"""

from __future__ import annotations

import builtins
import json
import math
import numbers
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan import GraphBuilder

#: costs whose left-to-right sums round off their exact sums (0.1 + 0.2 != 0.3), so a compensated ``sum()``
#: differs from a plain one on most lists of them
COSTS = (0.0005, 0.0015, 0.1, 0.2, 0.3, 0.35, 0.7, 1.1)

_builtin_sum = builtins.sum
ROOT = Path(__file__).resolve().parents[1]


def _rounded_sum(iterable, /, start=0):
    """``sum()`` as Python 3.12 computes a float total (compensated: here exactly rounded), exact on integers."""
    items = list(iterable)
    if any(isinstance(x, float) for x in items) and all(isinstance(x, numbers.Real) for x in items) \
            and isinstance(start, numbers.Real):
        return math.fsum([start, *items])
    return _builtin_sum(items, start)


def _plan_docs(graph: memplan.Graph, options: list[dict]) -> list[str]:
    out = []
    for o in options:
        planned = memplan.plan_graph(graph, **o)
        out.append(planned.plan.to_json() + str(planned.graph.to_dict()))
    return out


def _chain(costs, group_every: int = 0) -> memplan.Graph:
    """A chain with a side branch from its input: one node per cost, every ``group_every`` nodes fused."""
    b = GraphBuilder("fsum")
    x = prev = b.input("x", 1024)
    for i, c in enumerate(costs):
        t = b.intermediate(f"t{i}", 1024 * (1 + i % 3))
        group = f"g{i // group_every}" if group_every else None
        b.node(f"n{i}", "OP", [prev], t, cost=c, group=group)
        prev = t
    side = b.intermediate("side", 2048)
    b.node("side", "OP", [x], side, cost=sum(costs[:2]))
    y = b.output("y", 1024)
    b.node("join", "ADD", [prev, side], y, cost=0.1)
    return b.build()


OPTIONS = [{"streams": 2}, {"streams": "auto"}, {"devices": 2}, {"devices": 2, "streams": 2}]


def test_serial_makespan_is_the_same_total_on_every_python(monkeypatch):
    """The reproducer: 3.11's plain sum wrote 1.801, 3.12's compensated one 1.802; now both 1.801."""
    b = GraphBuilder("fsum")
    prev = b.input("x", 1024)
    for i, c in enumerate([0.0005, 0.7, 0.0005, 0.0005, 1.1]):
        t = (b.output if i == 4 else b.intermediate)(f"t{i}", 1024)
        b.node(f"n{i}", "OP", [prev], t, cost=c)
        prev = t
    g = b.build()
    plain = _plan_docs(g, OPTIONS[:3])
    monkeypatch.setattr(builtins, "sum", _rounded_sum)
    assert _plan_docs(g, OPTIONS[:3]) == plain
    block = memplan.plan(g, streams=2).solver["schedule"]
    assert block["serial_makespan_us"] == 1.801 == block["makespan_us"]


@settings(max_examples=40)
@given(costs=st.lists(st.sampled_from(COSTS), min_size=3, max_size=9), group_every=st.sampled_from([0, 2, 3]))
def test_plans_do_not_depend_on_how_sum_rounds(costs, group_every):
    """Random chains of such costs, fused or not, on streams and devices: the same plan and split graph whether
    ``sum()`` rounds as 3.11's or as 3.12's."""
    g = _chain(costs, group_every)
    plain = _plan_docs(g, OPTIONS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "sum", _rounded_sum)
        assert _plan_docs(g, OPTIONS) == plain


def test_no_float_total_is_taken_with_sum(monkeypatch):
    """No step of a plan (schedule, streams, budgets, devices, every solver) adds floats with ``sum()``: a
    tripwire ``sum()`` names each caller that hands it a float. Why beside the tests above: a 1-ulp difference
    in a scheduler's rank or a stage's cost changes a plan only where it breaks a tie, which few graphs show."""
    seen: set[str] = set()

    def tripwire(iterable, /, start=0):
        items = list(iterable)
        if any(isinstance(x, float) for x in items) or isinstance(start, float):
            frame = sys._getframe(1)
            seen.add(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        return _builtin_sum(items, start)

    g = _chain([0.1, 0.2, 0.3, 0.7, 1.1, 0.35], group_every=2)
    serial = memplan.plan(g).arena_bytes
    monkeypatch.setattr(builtins, "sum", tripwire)
    for o in [{}, {"streams": 2}, {"streams": "auto"}, {"streams": "auto", "max_events": 1},
              {"streams": "auto", "memory_budget": serial}, {"streams": 3, "fused_groups": True},
              {"devices": 2}, {"devices": 3, "streams": "auto"}, {"solver": "search", "time_limit": 0.05},
              {"solver": "auto", "streams": 2, "time_limit": 0.05}, {"solver": "cpsat", "time_limit": 0.05},
              {"solver": "ggml"}, {"solver": "size", "streams": 2}, {"solver": "greedy", "devices": 2}]:
        memplan.plan_graph(g, **o)
    package = os.path.dirname(memplan.__file__) + os.sep
    assert not {s for s in seen if s.startswith(package)}


def _permuted(value, rng):
    """``value`` with every JSON object's keys in a shuffled order (lists keep theirs: they are input)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _permuted(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_permuted(v, rng) for v in value]
    return value


def _multi_inplace(sizes, pairs) -> memplan.Graph:
    """A graph with one node of three outputs, some written over its inputs (``pairs``: output k over input j, the
    ``inplace`` mapping built in their order), between two producers and a reader."""
    b = GraphBuilder("multi_inplace")
    xs = [b.input(f"x{j}", 4096) for j in range(2)]
    ins = []
    for j in range(3):
        ins.append(b.intermediate(f"a{j}", sizes[j]))
        b.node(f"mk{j}", "OP", [xs[j % 2]], ins[-1], cost=1.0 + j)
    outs = [b.intermediate(f"p{k}", sizes[3 + k]) for k in range(3)]
    b.node("multi", "OP3", ins, outs, inplace={f"p{k}": f"a{j}" for k, j in pairs}, cost=2.0)
    b.node("fin", "ADD", outs, b.output("y", 4096), cost=0.5)
    return b.build()


@settings(max_examples=25)
@given(sizes=st.lists(st.sampled_from([1024, 2048, 4096]), min_size=6, max_size=6),
       pairs=st.dictionaries(st.integers(0, 2), st.integers(0, 2), min_size=2, max_size=3),
       shuffle=st.randoms(use_true_random=False))
def test_inplace_key_order_is_no_input(sizes, pairs, shuffle):
    """A node's ``inplace`` mapping with its keys in another order is the same graph: the same plan bytes and the
    same ``--graph-out`` document (``save_graph``'s text), whether the graph was built in code (``GraphBuilder``),
    read from its document or from the document with every object's keys shuffled. Before, the pairs kept the order
    they were given in, so the graph written back (``to_dict``: ``--graph-out``, a device split's graph) listed them
    so, and a built graph saved, loaded and saved again changed its text."""
    from memplan.io import graph_text

    items = list(pairs.items())
    shuffle.shuffle(items)
    built = _multi_inplace(sizes, items)
    doc = built.to_dict()
    canonical = _multi_inplace(sizes, sorted(items))
    graphs = [built, canonical, memplan.graph_from_dict(doc), memplan.graph_from_dict(_permuted(doc, shuffle))]
    assert all(g.nodes == canonical.nodes for g in graphs)   # built and read: the pairs in one order
    # (a Graph made of Nodes directly keeps the order given, and is written in the canonical one)
    graphs.append(memplan.Graph(built.name, built.tensors, tuple(
        replace(n, inplace=tuple((f"p{k}", f"a{j}") for k, j in items)) if n.id == "multi" else n
        for n in built.nodes)))
    texts = {graph_text(g) for g in graphs}
    assert len(texts) == 1
    for o in ({}, {"streams": 2}, {"devices": 2}):
        planned = [memplan.plan_graph(g, **o) for g in graphs]
        assert len({p.plan.to_json() for p in planned}) == 1
        assert len({graph_text(p.graph) for p in planned}) == 1


def _reversed_keys(value):
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def test_cli_plan_and_graph_out_repeat_across_hash_seeds_and_key_orders(tmp_path):
    """``memplan plan`` with the options that reach most of the planner at once (two devices, ``--streams auto``,
    ``--max-events``, ``--event-us``, ``--alignment``) writes the same plan and ``--graph-out`` bytes under two
    hash seeds, from a document and from the same document with every object's keys reversed."""
    doc = _multi_inplace([2048, 4096, 1024, 4096, 1024, 2048], [(0, 0), (1, 2), (2, 0)]).to_dict()
    for n in doc["nodes"]:
        n["cost"] = 0.1 * (1 + len(n["id"]) % 3) + 0.0005
    for name, d in (("a", doc), ("b", _reversed_keys(doc))):
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
    # (one process per hash seed plans both documents, each document first in one of them: two launches of the
    # CLI instead of four, each document still planned by a fresh interpreter under one of the seeds)
    runs = {"0": ("a", "b"), "4321": ("b", "a")}
    child = ("import sys\nfrom memplan.cli import main\nfor args in ({}):\n    code = main(list(args))\n"
             "    if code:\n        sys.exit(code)\n")
    outs = []
    for seed, names in runs.items():
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        calls = [["plan", str(tmp_path / f"{name}.json"), "-o", str(tmp_path / f"p{name}{seed}.json"), "-q",
                  "--devices", "2", "--streams", "auto", "--max-events", "3", "--event-us", "0.5", "--alignment",
                  "512", "--graph-out", str(tmp_path / f"g{name}{seed}.json")] for name in names]
        r = subprocess.run([sys.executable, "-c", child.format(", ".join(map(repr, calls)) + ",")],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    for name in ("a", "b"):
        for seed in runs:
            outs.append(((tmp_path / f"p{name}{seed}.json").read_bytes(), (tmp_path / f"g{name}{seed}.json").read_bytes()))
    assert len(outs) == 4
    assert all(o == outs[0] for o in outs[1:])
