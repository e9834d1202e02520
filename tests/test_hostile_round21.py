"""Hostile input, round 21: the library API and its JSON formats.

Misspelt keywords of the planner entry points other than ``plan()``, file paths no file can have, device
fields of plan files, hand-made buffer problems and cost models, views whose kind contradicts their root's,
and schedules simulated without being checked. Each test names the input, what memplan did with it, and
what it does now: a ``memplan.errors`` exception naming the option, field, node or tensor.
"""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal

import handgraphs as H
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings

import memplan
from memplan import BufferProblem, GraphBuilder, examples
from memplan.optimize.streams import optimize
from memplan.solvers import solve
from memplan.verify import check

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- (1) unknown keywords of every public planner entry point ----------------------------------------------

def _entry_points():
    g = H.diamond()
    p = memplan.plan(g)
    return [
        ("plan_graph", lambda **kw: memplan.plan_graph(g, **kw), "streams"),
        ("plan_devices", lambda **kw: memplan.plan_devices(g, 2, **kw), "streams"),
        ("graph_optimize", lambda **kw: memplan.graph_optimize(g, 2, **kw), "max_streams"),
        ("optimize", lambda **kw: optimize(g, 2, **kw), "max_streams"),
        ("split_devices", lambda **kw: memplan.split_devices(g, 2, **kw), "streams"),
        ("simulate", lambda **kw: memplan.simulate(g, p, **kw), "cost_model"),
        ("verify", lambda **kw: memplan.verify(g, p, **kw), "fused_groups"),
        ("check", lambda **kw: check(g, p, **kw), "fused_groups"),
        ("solve", lambda **kw: solve(BufferProblem([8], [0], [1]), **kw), "solver"),
    ]


@pytest.mark.parametrize("name,call,option", _entry_points(), ids=[e[0] for e in _entry_points()])
def test_misspelt_keywords_name_the_nearest_option(name, call, option):
    """``plan_graph(g, stream=2)`` (and ``plan_devices``, ``graph_optimize``, ``simulate``, ``verify``...)
    raised Python's TypeError "unexpected keyword argument", naming no alternative; ``plan()`` alone
    answered with memplan's OptionError. Now every one does, from the one check ``plan()`` uses."""
    typo = option[:-1] if option.endswith("s") else option + "s"
    with pytest.raises(memplan.OptionError) as info:
        call(**{typo: 1})
    msg = str(info.value)
    assert isinstance(info.value, TypeError)
    assert msg.startswith(f"{name}() got an unknown option {typo!r}") and f"did you mean {option!r}" in msg


@FAST
@given(st.text(min_size=1, max_size=12).filter(lambda k: k not in {
    "graph", "schedule", "solver", "time_limit", "seed", "workers", "progress", "check", "streams", "memory_budget",
    "max_events", "cost_model", "devices", "device_capacity", "fused_groups", "n", "options"}))
def test_any_unknown_keyword_is_an_option_error(key):
    """Whatever the key (unicode, spaces, a near miss): an OptionError naming it, before any planning."""
    g = H.chain(2)
    for call in (lambda: memplan.plan_graph(g, **{key: 1}), lambda: memplan.plan_devices(g, 2, **{key: 1})):
        with pytest.raises(memplan.OptionError, match="unknown option"):
            call()


def test_plan_devices_max_events_without_streams():
    """``plan_devices(g, 2, max_events=1)`` was silently a serial plan per device (``plan()`` refuses the
    same options); ``split_devices`` too."""
    g = examples.bundled()["qkv"]
    for call in (lambda: memplan.plan_devices(g, 2, max_events=1), lambda: memplan.split_devices(g, 2, max_events=0)):
        with pytest.raises(memplan.ScheduleError, match="max_events=.*streams"):
            call()
    assert memplan.plan_devices(g, 2, max_events=1, streams=2)[1].devices == 2


# --- (2) paths no file can have ----------------------------------------------------------------------------

def test_a_path_with_a_nul_character(tmp_path):
    """``load_graph("a\\0b")`` (and ``load_plan``, ``save_plan``, ``save_graph``) raised Python's bare
    ``ValueError: embedded null byte``: neither a MemplanError nor naming the path."""
    g = H.qkv()
    p = memplan.plan(g)
    bad = str(tmp_path / "g\x00.json")
    for call, error in ((lambda: memplan.load_graph(bad), memplan.GraphError),
                        (lambda: memplan.load_plan(bad), memplan.PlanFormatError),
                        (lambda: memplan.save_plan(p, bad), memplan.MemplanError),
                        (lambda: memplan.save_graph(g, bad), memplan.MemplanError)):
        with pytest.raises(error, match=r"g\\x00\.json.*NUL"):
            call()
    from memplan.files import check_outputs
    with pytest.raises(memplan.MemplanError, match="-o.*NUL"):
        check_outputs({"graph": str(tmp_path / "g.json")}, {"-o": bad})
    assert list(tmp_path.iterdir()) == []


# --- (3) device fields of plan files -------------------------------------------------------------------------

def _two_device_doc():
    g = examples.bundled()["qkv"]
    split, p = memplan.plan_devices(g, 2)
    return split.graph, p.to_dict()


def test_a_negative_device_arena_is_refused():
    """A two-device plan whose ``device_arena_bytes`` gave a device without tensors -5 bytes was accepted as
    safe (only "above arena_bytes" was checked); rule 4 now says a byte count is not negative, and the
    oracle agrees. (Device 1 holds nothing here: the one-device plan, declared over two devices.)"""
    g = H.qkv()
    p = memplan.plan(g)
    two = dataclasses.replace(p, devices=2, node_devices=(0,) * len(p.order), tensor_devices=(0,) * len(p.tensors),
                              device_arena_bytes=(p.arena_bytes, 0))
    memplan.verify(g, two)
    assert findings(g.to_dict(), two.to_dict()) == []
    bad = dataclasses.replace(two, device_arena_bytes=(p.arena_bytes, -5))
    with pytest.raises(memplan.UnsafePlan, match="device 1's arena of -5 bytes is negative"):
        memplan.verify(g, bad)
    assert [m for _, m in findings(g.to_dict(), bad.to_dict())] == ["a device arena is negative"]


def test_device_fields_name_the_plan_file(tmp_path):
    """A malformed ``device_arena_bytes`` or ``device`` entry was named as in "plan: device_arena_bytes[0]
    is not an integer", not by the file it came from, as every other field of a plan file is."""
    _, doc = _two_device_doc()
    path = tmp_path / "p.json"
    for change in (lambda d: d["device_arena_bytes"].__setitem__(0, 1.5),
                   lambda d: d["order"][0].__setitem__("device", True),
                   lambda d: d["tensors"][0].__setitem__("device", "0")):
        d = json.loads(json.dumps(doc))
        change(d)
        path.write_text(json.dumps(d))
        with pytest.raises(memplan.PlanFormatError, match=f"^{path}: .*device"):
            memplan.load_plan(str(path))


# --- (4) hand-made buffer problems -----------------------------------------------------------------------------

@pytest.mark.parametrize("kw,words", [
    (dict(sizes=[1.5, 20]), r"sizes\[0\].*1.5"),                      # was planned as 1 byte
    (dict(sizes=["10", 20]), r"sizes\[0\].*'10'"),                    # was parsed
    (dict(sizes=[float("nan"), 20]), r"sizes\[0\].*nan"),              # ValueError
    (dict(sizes=[2 ** 63, 1]), r"sizes\[0\].*9223372036854775808"),   # OverflowError
    (dict(sizes=np.array([1.0, 2.5])), r"sizes\[1\].*2.5"),
    (dict(upper=np.array([2, np.inf])), r"upper\[1\].*inf"),
    (dict(sizes=np.array([True, False])), "sizes must be integers.*bool"),
    (dict(sizes=[2 ** 62, 2 ** 62]), "add up to .* over the 2\\*\\*63"),  # OverflowError
    (dict(sizes=[-10, 20]), r"sizes\[0\].*-10"),                       # blamed on the ggml solver
    (dict(lower=[-5, 1]), r"lower\[0\].*-5"),
    (dict(lower=[5, 1], upper=[2, 3]), "buffer 0 .* ends at 2, before its lower 5"),   # accepted
    (dict(sizes=[[1, 2]], lower=[[0, 0]], upper=[[1, 1]]), r"sizes\[0\]"),          # numpy's ValueError
    (dict(alignment=1.0), "alignment 1.0"),                              # TypeError
    (dict(alignment="4"), "alignment '4'"),                              # TypeError
    (dict(alignment=True), "alignment True"),                            # taken for 1
    (dict(alignment=2 ** 70), "alignment 1180591620717411303424"),      # OverflowError
    (dict(capacity=1.5), "capacity 1.5"),
    (dict(capacity=-1), "capacity -1"),
    (dict(lower_bound=-1), "lower_bound -1"),
    (dict(inplace=((0, 5),)), r"inplace entry \(0, 5\)"),               # IndexError
    (dict(compatible=frozenset({(0, 9)})), r"compatible entry \(0, 9\)"),  # ignored
    (dict(names=("a",)), "names must be a tuple of 2 strings"),          # accepted
])
def test_hand_made_buffer_problems_are_checked(kw, words):
    """``memplan.BufferProblem`` is public (minimalloc CSVs and benchmarks build one); its fields were taken
    as numpy made them: truncated, parsed, or failing deep in a solver with a TypeError or IndexError."""
    args = dict(sizes=[10, 20], lower=[0, 1], upper=[2, 3])
    args.update(kw)
    with pytest.raises(memplan.SolverError, match=words):
        solve(BufferProblem(**args), "greedy")


def test_a_false_lower_bound_is_not_reported_optimal():
    """A hand-made problem whose ``lower_bound`` lies above every packing was solved and reported OPTIMAL
    (the arena "met" the bound); a packing below a proven bound means the bound or the packing is wrong."""
    with pytest.raises(memplan.SolverError, match="below the problem's proven lower bound of 1000"):
        solve(BufferProblem([10, 20], [0, 1], [2, 3], lower_bound=1000), "greedy")
    ok = solve(BufferProblem(np.array([10, 20], dtype=np.uint32), [0, 1], [2, 3], lower_bound=30), "greedy")
    assert ok.arena == 30 and str(ok.status) == "OPTIMAL"


# --- (5) cost models ---------------------------------------------------------------------------------------------

class _Fixed:
    """A cost model giving every node the same run time."""

    def __init__(self, us):
        self.us, self.event_us = us, 1.0

    def node_us(self, graph, n):
        return self.us


@pytest.mark.parametrize("us", [1e308, 1e16, "3", True])
def test_a_cost_model_run_time_out_of_range(us):
    """``node_us`` returning 1e308 made the makespans infinite: the plan came back and could not be saved
    ("Out of range float values are not JSON compliant"); a string or a bool was taken for a number."""
    g = examples.bundled()["qkv"]
    for call in (lambda: memplan.plan(g, streams="auto", cost_model=_Fixed(us)),
                 lambda: memplan.simulate(g, memplan.plan(g), _Fixed(us))):
        with pytest.raises(memplan.ScheduleError, match="'norm' the run time"):
            call()


@pytest.mark.parametrize("us", [np.array(3.0), Decimal("3"), np.float32(3), np.int64(3)])
def test_a_cost_model_may_compute_in_any_number_type(us):
    """What ``float()`` takes is a run time (a 0-d numpy array, a ``Decimal``, numpy scalars): the range check
    that refuses strings and bools must not refuse these (a 0-d array was refused for a while)."""
    g = examples.bundled()["qkv"]
    p = memplan.plan(g)
    assert memplan.simulate(g, p, _Fixed(us)) == memplan.simulate(g, p, _Fixed(3.0))


@pytest.mark.parametrize("field,value", [("hbm_bytes_per_us", 0), ("flop_per_us", 0), ("hbm_bytes_per_us", -1.0),
                                         ("floor_us", float("nan")), ("floor_us", -1), ("floor_us", float("inf")),
                                         ("use_graph_costs", "no")])
def test_cost_model_fields(field, value):
    """``CostModel(hbm_bytes_per_us=0)`` raised ZeroDivisionError inside the scheduler; a negative rate or a
    NaN floor gave meaningless run times silently."""
    with pytest.raises(memplan.ScheduleError, match=field):
        memplan.CostModel(**{field: value})


# --- (6) views whose kind contradicts their root's -------------------------------------------------------------

@pytest.mark.parametrize("kind,root", [("weight", "a"), ("input", "a"), ("weight", "x"), ("input", "w")])
def test_a_view_of_kind_input_or_weight_lies_in_a_root_of_that_kind(kind, root):
    """A view of kind ``weight`` in an intermediate was given an arena offset (a weight is never planned,
    the contract says), and one of kind ``input`` lay in bytes that the root's producer overwrites: both
    planned and verified without a word. The view is named; views of a chain are checked too."""
    b = GraphBuilder("k")
    b.input("x", 1024)
    b.weight("w", 1024)
    b.view("mid", root, 512, 0)   # an intermediate view between
    b.view("v", "mid", 256, 256, kind=kind)
    b.node("n1", "OP", ["x"], [b.intermediate("a", 1024)])
    b.node("n2", "OP", ["v", "a"], [b.output("y", 256)])
    with pytest.raises(memplan.GraphError, match=f"view 'v' is an? {kind} but its root '{root}'"):
        b.build()


def test_views_of_their_own_kind_still_plan():
    """The control: input views of inputs, weight views of weights, and intermediate or output views of
    anything plan and verify as before."""
    b = GraphBuilder("ok")
    b.input("x", 1024)
    b.weight("w", 1024)
    b.view("xv", "x", 512, 512, kind="input")
    b.view("wv", "w", 512, 0, kind="weight")
    b.view("wi", "w", 256, 0)
    b.node("n1", "OP", ["xv", "wv", "wi"], [b.intermediate("a", 1024)])
    b.view("ao", "a", 256, 0, kind="output")
    b.node("n2", "OP", ["a"], [b.output("y", 256)])
    g = b.build()
    assert dict((t, o) for t, o, _ in memplan.plan(g).tensors)["wv"] is None


# --- (7) simulate checks the schedule it simulates ------------------------------------------------------------

def test_simulate_refuses_a_bad_order():
    """``simulate`` of a Schedule in reverse order, or of a Plan with stream -1, returned a makespan (the
    serial time) although its docstring promised a ScheduleError for a bad order."""
    g = H.qkv()
    p = memplan.plan(g)
    order = tuple(n for n, _ in p.order)
    with pytest.raises(memplan.ScheduleError, match="issued before 'norm'"):
        memplan.simulate(g, memplan.Schedule(order[::-1], (0,) * len(order)))
    with pytest.raises(memplan.ScheduleError, match="stream -1"):
        memplan.simulate(g, dataclasses.replace(p, order=((order[0], -1),) + p.order[1:]))
    with pytest.raises(memplan.ScheduleError, match="waited before it is recorded"):
        s = H.streams(g, H.QKV_STREAMS)
        memplan.simulate(g, dataclasses.replace(s, events=s.events + (memplan.Event("mm_o", "mm_k"),)))
    assert memplan.simulate(g, p).makespan_us > 0


# --- (8) the verifier against the oracle on graphs of odd shapes ------------------------------------------------

def _odd_graph(rnd: random.Random) -> dict:
    """A random graph of the shapes the other generators leave out: nodes without inputs or outputs, a tensor
    read twice by one node, views that a node produces into any earlier tensor (a weight, an input, a view),
    several in-place pairs on one node (views among them), and a fusion pair."""
    tensors, nodes, avail, size = [], [], [], {}

    def add(tid, s, kind, view_of=None, off=0):
        d = {"id": tid, "size": s, "kind": kind}
        if view_of is not None:
            d.update(view_of=view_of, view_offset=off)
        tensors.append(d)
        size[tid] = s
        return tid

    for i in range(rnd.randint(1, 3)):
        avail.append(add(f"x{i}", rnd.choice([0, 100, 256, 512]), "input"))
    if rnd.random() < 0.5:
        avail.append(add("w", 512, "weight"))
    k = 0
    for n in range(rnd.randint(1, 7)):
        ins = rnd.sample(avail, min(len(avail), rnd.randint(0, 3)))
        if ins and rnd.random() < 0.2:
            ins.append(ins[0])
        outs = []
        for _ in range(rnd.randint(0, 2)):
            p = rnd.choice(avail)
            if rnd.random() < 0.25 and size[p]:
                vs = rnd.randint(0, size[p])
                outs.append(add(f"v{k}", vs, rnd.choice(["intermediate"] * 4 + ["output"]), p, rnd.randint(0, size[p] - vs)))
            else:
                outs.append(add(f"t{k}", rnd.choice([0, 100, 256, 512, 768]),
                                rnd.choice(["intermediate"] * 3 + ["output"])))
            k += 1
        if rnd.random() < 0.2:
            p = rnd.choice(avail)
            vs = rnd.randint(0, size[p])
            ins.append(add(f"u{k}", vs, rnd.choice(["intermediate"] * 4 + ["output"]), p, rnd.randint(0, size[p] - vs)))
            avail.append(ins[-1])
            k += 1
        node = {"id": f"n{n}", "op": "OP", "inputs": ins, "outputs": outs, "cost": float(rnd.randint(0, 5))}
        inplace = {o: rnd.choice(ins) for o in outs if ins and rnd.random() < 0.4}
        if inplace:
            node["inplace"] = inplace
        nodes.append(node)
        avail.extend(outs)
    if len(nodes) >= 2 and rnd.random() < 0.3:
        i = rnd.randrange(len(nodes) - 1)
        nodes[i]["group"] = nodes[i + 1]["group"] = "g"
    return {"format": "memplan.graph/1", "name": "odd", "alignment": rnd.choice([1, 16, 256]), "tensors": tensors,
            "nodes": nodes}


def _odd_plan(rnd: random.Random, gd: dict) -> dict:
    """Any schedule (a neighbour swap may break the order, events may point back) and a random placement of
    the roots on a few slots, views with their roots."""
    order = [n["id"] for n in gd["nodes"]]
    if len(order) >= 2 and rnd.random() < 0.3:
        i = rnd.randrange(len(order) - 1)
        order[i], order[i + 1] = order[i + 1], order[i]
    streams = rnd.randint(1, 3)
    events = []
    for _ in range(rnd.randint(0, 4) if len(order) >= 2 else 0):
        i, j = sorted(rnd.sample(range(len(order)), 2))
        a, b = (order[j], order[i]) if rnd.random() < 0.1 else (order[i], order[j])
        events.append({"after": a, "before": b})
    tens = {t["id"]: t for t in gd["tensors"]}
    slots, step = rnd.randint(1, 4), rnd.choice([gd["alignment"], max(gd["alignment"], 256)])
    off: dict = {}

    def place(t):
        if t not in off:
            parent = tens[t].get("view_of")
            if parent is None:
                off[t] = None if tens[t]["kind"] == "weight" else rnd.randrange(slots) * step
            else:
                off[t] = None if place(parent) is None else off[parent] + tens[t]["view_offset"]
        return off[t]

    entries = [{"id": t["id"], "offset": place(t["id"]), "size": t["size"]} for t in gd["tensors"]]
    arena = max([e["offset"] + e["size"] for e in entries if e["offset"] is not None] + [0])
    stream = {n: rnd.randrange(streams) for n in order}
    return {"format": "memplan.plan/1", "graph": "odd", "alignment": rnd.choice([1, gd["alignment"]]),
            "arena_bytes": arena, "lower_bound_bytes": 0, "streams": streams,
            "order": [{"node": n, "stream": stream[n]} for n in order], "events": events, "tensors": entries,
            "solver": {}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 32))
def test_verify_agrees_with_the_oracle_on_odd_graphs(seed):
    """``memplan.verify`` accepts exactly the plans the brute-force oracle (CONTRACT.md read pair by pair)
    accepts, on graphs the other generators do not make, under arbitrary schedules and placements; and the
    planner's own plans of them pass the oracle."""
    rnd = random.Random(seed)
    try:
        g = memplan.graph_from_dict(_odd_graph(rnd))
    except memplan.GraphError:
        return
    gd = g.to_dict()
    for _ in range(4):
        pd = _odd_plan(rnd, gd)
        fused = rnd.random() < 0.3
        want = findings(gd, pd, fused_groups=fused)
        got = check(g, pd, fused_groups=fused)
        assert (got == []) == (want == []), (got[:3], want[:3])
    for opts in ({}, {"streams": 2}):
        assert findings(gd, memplan.plan(g, **opts).to_dict()) == []


# --- (9) documents nested too deep to load back -------------------------------------------------------------------

def _nested(depth: int):
    x: object = 1
    for _ in range(depth):
        x = [x]
    return x


@pytest.mark.parametrize("depth", [61, 100_000])
@pytest.mark.parametrize("where", ["tensor", "node"])
def test_attrs_nested_too_deep_are_not_saved(tmp_path, where, depth):
    """``attrs`` nested 61 deep in a tensor were saved into a graph file that ``load_graph`` then refused
    ("JSON nested more than 64 levels deep"); 100,000 deep, ``json`` raised RecursionError. The save is
    refused naming the tensor or node, and nothing is written."""
    b = GraphBuilder("g")
    b.input("x", 256, **({"deep": _nested(depth)} if where == "tensor" else {}))
    b.node("n", "OP", ["x"], b.output("y", 256), **({"deep": _nested(depth)} if where == "node" else {}))
    with pytest.raises(memplan.GraphError, match=f"{where} '[xn]'.*nested more than 64 levels"):
        memplan.save_graph(b.build(), str(tmp_path / "g.json"))
    assert list(tmp_path.iterdir()) == []


def test_attrs_nested_as_deep_as_a_file_may_be_load_back(tmp_path):
    """The control: the deepest attrs a graph file holds (64 levels in all) save and load back."""
    b = GraphBuilder("g")
    b.input("x", 256, deep=_nested(60))
    b.node("n", "OP", ["x"], b.output("y", 256))
    memplan.save_graph(b.build(), str(tmp_path / "g.json"))
    assert memplan.load_graph(str(tmp_path / "g.json")).tensor("x").attrs["deep"] == _nested(60)


@pytest.mark.parametrize("field", ["solver", "extra"])
@pytest.mark.parametrize("depth", [64, 100_000])
def test_plan_fields_nested_too_deep_are_not_saved(tmp_path, field, depth):
    """A Plan built in code with a solver block (or extra field) nested deeper than a plan file may be was
    saved and then refused by ``load_plan``, or raised RecursionError; a PlanFormatError names the field."""
    p = memplan.plan(H.qkv())
    bad = dataclasses.replace(p, **{field: {"deep": _nested(depth)}})
    with pytest.raises(memplan.PlanFormatError, match=f"field '{'solver' if field == 'solver' else 'deep'}'.*nested"):
        memplan.save_plan(bad, str(tmp_path / "p.json"))
    assert list(tmp_path.iterdir()) == []
    ok = dataclasses.replace(p, **{field: {"deep": _nested(62)}})
    memplan.save_plan(ok, str(tmp_path / "p.json"))
    assert memplan.load_plan(str(tmp_path / "p.json")).to_json() == ok.to_json()


# --- (10) graphs built in code ----------------------------------------------------------------------------------

@pytest.mark.parametrize("node,words", [
    (memplan.Node("n", "OP", None, ("y",)), "inputs must be a tuple of tensor ids, not NoneType"),
    (memplan.Node("n", "OP", ("x",), ("y",), inplace=None), "inplace must be a tuple of .* pairs, not NoneType"),
    (memplan.Node("n", "OP", ("x",), ("y",), inplace={"y": "x"}), "inplace must be a tuple of .* pairs, not dict"),
    (memplan.Node("n", "OP", ("x",), ("y",), attrs=[1]), "attrs must be a mapping, not list"),
])
def test_nodes_built_in_code(node, words):
    """``memplan.Node(..., inputs=None)`` (or ``inplace=None``) was a TypeError from inside the graph check; a
    dict for ``inplace`` was read key by key ("malformed inplace entry 'y'"); a list for ``attrs`` failed only
    in ``save_graph``."""
    with pytest.raises(memplan.GraphError, match=f"node 'n': {words}"):
        memplan.Graph("g", (memplan.Tensor("x", 8, "input"), memplan.Tensor("y", 8, "output")), (node,))


def test_tensor_attrs_and_builder_kinds():
    """``Tensor(attrs=[1])`` failed in ``save_graph`` with a TypeError; ``GraphBuilder.input("x", n, kind=...)``
    raised Python's TypeError about ``tensor()``."""
    with pytest.raises(memplan.GraphError, match="tensor 'x': attrs must be a mapping"):
        memplan.Graph("g", (memplan.Tensor("x", 8, "input", attrs=[1]),), ())
    with pytest.raises(memplan.GraphError, match="tensor 'x': weight\\(\\) makes a weight tensor; kind='input'"):
        GraphBuilder("g").weight("x", 8, kind="input")


@pytest.mark.parametrize("make", [lambda n: np.zeros(n, dtype=np.int64), lambda n: tuple(np.int64(0) for _ in range(n)),
                                  lambda n: [np.uint8(0)] * n])
def test_a_schedule_with_numpy_stream_ids_plans(tmp_path, make):
    """``Schedule(order, np.zeros(n, dtype=np.int64))`` passed the schedule check (numpy integers are stream
    ids), then ``plan()`` failed at the very end: "plan: field 'streams' is not an integer in 1..1024 (int64)",
    a field the caller never wrote. The stream ids are Python ints from the start."""
    g = H.qkv()
    order = tuple(n.id for n in g.nodes)
    s = memplan.Schedule(order, make(len(order)))
    assert all(type(x) is int for x in s.streams)
    p = memplan.plan(g, s)
    assert p.streams == 1 and p.tensors == memplan.plan(g).tensors
    memplan.save_plan(p, str(tmp_path / "p.json"))
    assert memplan.load_plan(str(tmp_path / "p.json")).to_json() == p.to_json()


def test_lifetimes_of_another_graphs_happens_before():
    """``compute_lifetimes(graph, hb)`` / ``buffer_problem`` with the happens-before of another graph (or
    None) failed inside with an IndexError or AttributeError; ``fused_groups=1`` was taken for True."""
    from memplan.lifetimes import buffer_problem, compute_lifetimes
    from memplan.schedule import build_happens_before, serial_schedule

    g, other = H.qkv(), H.diamond()
    hb = build_happens_before(g, serial_schedule(g))
    for call in (lambda: compute_lifetimes(other, hb), lambda: buffer_problem(other, hb)):
        with pytest.raises(memplan.ScheduleError, match="happens-before has 6 nodes, graph 'diamond' has 4"):
            call()
    with pytest.raises(memplan.ScheduleError, match="needs a memplan HappensBefore"):
        compute_lifetimes(g, None)
    with pytest.raises(memplan.SolverError, match="fused_groups must be True or False"):
        compute_lifetimes(g, hb, fused_groups=1)
    assert buffer_problem(g, hb).lower_bound == memplan.plan(g).lower_bound_bytes


def test_semantic_model_records_a_fused_groups_events_after_the_kernel():
    """tests/semantic.py, fused mode, re-read a group's inputs at the group's end (one kernel) but let a waiter
    on another stream start right after the member its event follows: ``n10`` then wrote a view of ``in0``
    while the group, still "running", read it, and the suite failed now and then on random schedules (a
    plan the planner cannot change: every tensor here is a view of ``in0``). A kernel records its events when
    it ends; the model now does too."""
    import semantic

    b = GraphBuilder("fused-event", alignment=1)
    b.input("in0", 256)
    b.view("v0", "in0", 256)
    b.view("v5", "v0", 256)
    b.view("v7", "in0", 128, 128)
    b.view("v10", "in0", 256)
    b.node("n0", "RESHAPE", ["in0"], ["v0"])
    b.node("n5", "RESHAPE", ["v0"], ["v5"], group="g0")
    b.node("n7", "SET_ROWS", ["in0"], ["v7"], group="g0")
    b.node("n10", "RESHAPE", ["in0", "v5"], ["v10"])
    g = b.build()
    s = memplan.schedule_with_events(g, ["n0", "n5", "n10", "n7"], {"n0": 0, "n5": 0, "n7": 0, "n10": 1})
    assert s.events == (memplan.Event("n5", "n10"),)
    assert semantic.check(g, memplan.plan(g, s, fused_groups=True), fused_groups=True) == []


def test_a_numpy_float32_cost_is_named_for_its_type():
    """np.float64 is a float and is taken, and so is np.int64 (an integer: ``errors.as_int``, round 22) as the
    plain number; np.float32 is neither: refused, and the message says why (it used to call 3 'not a finite
    non-negative number')."""
    def build(cost):
        b = memplan.GraphBuilder("c")
        b.input("x", 16)
        b.node("n", "ADD", ["x"], b.output("y", 16), cost=cost)
        return b.build()

    assert build(np.float64(3.0)).node("n").cost == 3.0
    assert type(build(np.float64(3.0)).node("n").cost) is float
    assert type(build(np.int64(3)).node("n").cost) is int
    with pytest.raises(memplan.GraphError, match=r"node 'n': cost .*float32: give a Python int or float"):
        build(np.float32(3))
    with pytest.raises(memplan.GraphError) as info:
        build(-1.0)
    assert "give a Python" not in str(info.value)
