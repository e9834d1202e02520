"""Tests that kill mutants of the modules that decide safety that survived session 62's mutation run
(docs/experiments/mutation_s62.py: hand-written faults at the lines that stop them, and a sample of rounds 55-61's
operators). Each test names, in its docstring, the mutant(s) it kills: id, module, the change.
"""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_verify_round45 import _diamond, _plan

import memplan
from memplan import plan_devices
from memplan.devices.rewrite import insert_copies
from memplan.devices.split import check_capacity, weight_bytes
from memplan.examples import LLAMA_TINY, llama
from memplan.io import load_safe_pair
from memplan.io.minimalloc import format_csv, parse_csv
from memplan.lifetimes import compute_lifetimes
from memplan.optimize.events import Replay, wait_pairs
from memplan.problem import BufferProblem, Solution
from memplan.schedule import build_happens_before, schedule_of
from memplan.solvers.check import packs
from memplan.verify import check

APART = {"x": 0, "a": 4, "b": 8, "y": 12}
ORDER = [("p", 0), ("q", 1), ("r", 0)]


def _doc(tensors: list[tuple], nodes: list[tuple], name: str = "g") -> dict:
    """A graph document: tensors (id, size, kind[, view_of, view_offset]), nodes (id, inputs, outputs[, inplace])."""
    ts = []
    for t in tensors:
        d = {"id": t[0], "size": t[1], "kind": t[2]}
        if len(t) > 3:
            d.update(view_of=t[3], view_offset=t[4])
        ts.append(d)
    ns = [{"id": n[0], "op": "A", "inputs": list(n[1]), "outputs": list(n[2]),
           **({"inplace": {o: i for o, i in n[3]}} if len(n) > 3 else {})} for n in nodes]
    return {"format": "memplan.graph/1", "name": name, "alignment": 1, "tensors": ts, "nodes": ns}


def _plan_of(name: str, order, events, offsets: dict, sizes: dict, arena: int, streams: int = 2, **more) -> dict:
    return {"format": "memplan.plan/1", "graph": name, "alignment": 1, "arena_bytes": arena, "lower_bound_bytes": 0,
            "streams": streams, "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events],
            "tensors": [{"id": t, "offset": o, "size": sizes[t]} for t, o in offsets.items()], "solver": {}, **more}


# ---- verify: rule 1 --------------------------------------------------------------------------------------------

def test_an_event_from_a_node_to_itself_is_both_findings():
    """#1 verify ``pos[a] >= pos[b]`` as ``>``: an event ``q -> q`` was reported as joining a stream to itself only,
    not also as a wait that does not come after its record: each fault of an event is named, as for any other."""
    g = memplan.graph_from_dict(_diamond())
    found = check(g, _plan(ORDER, [("q", "r"), ("q", "q")], APART))
    assert found == [(1, "event 'q'->'q' joins stream 1 to itself"),
                     (1, "event 'q'->'q': the wait comes before the record in issue order")], found


# ---- verify: the clocks ----------------------------------------------------------------------------------------

def _two_on_one_stream() -> tuple[memplan.Graph, dict]:
    """p1 -> a -> p2 -> b on stream 1, r on stream 0 reads b, and waits on both p1 and p2 (a redundant event)."""
    gd = _doc([("x", 4, "input"), ("a", 4, "intermediate"), ("b", 4, "intermediate"), ("y", 4, "output")],
              [("p1", ["x"], ["a"]), ("p2", ["a"], ["b"]), ("r", ["b"], ["y"])])
    sizes = {"x": 4, "a": 4, "b": 4, "y": 4}
    return memplan.graph_from_dict(gd), _plan_of("g", [("p1", 1), ("p2", 1), ("r", 0)], [("p1", "r"), ("p2", "r")],
                                                 {"x": 0, "a": 4, "b": 8, "y": 12}, sizes, 16)


def test_a_node_waiting_on_two_nodes_of_one_stream_counts_the_later():
    """#7 verify ``_last_per_stream`` keeping each stream's earliest waited node (``idx[a] < idx[b]``), not its
    last: a node waiting on p1 and p2 of one stream joined p1's clock only, and the read of p2's output was
    reported as a race in a safe plan (redundant events are legal: CONTRACT.md defines safety by happens-before)."""
    g, doc = _two_on_one_stream()
    assert check(g, doc) == []
    doc["events"] = doc["events"][:1]   # (p1 -> r alone: the race is real)
    assert check(g, doc) == [(2, "node 'r' reads 'b' but its writer 'p2' does not happen-before it (missing event?)")]


# ---- verify: rule 4 --------------------------------------------------------------------------------------------

def test_a_tensor_placed_twice_at_the_same_place_is_a_finding():
    """#20 verify ``if seen[t]: bad(4, ...)`` skipped: a plan listing one tensor twice, both entries alike, passed
    (a plan file is one entry per tensor: docs/format.md)."""
    g = memplan.graph_from_dict(_diamond())
    doc = _plan(ORDER, [("q", "r")], APART)
    doc["tensors"].append(dict(doc["tensors"][1]))
    assert check(g, doc) == [(4, "tensor 'a' is placed twice")]


# ---- verify: rule 3's in-place exception ----------------------------------------------------------------------

def _view_writer() -> tuple[memplan.Graph, dict]:
    """n overwrites a with b in place; w, on stream 1, writes v, a view of b (an output)."""
    gd = _doc([("x", 4, "input"), ("a", 4, "intermediate"), ("b", 4, "intermediate"), ("v", 2, "output", "b", 0),
               ("y", 4, "output")],
              [("p", ["x"], ["a"]), ("n", ["a"], ["b"], [("b", "a")]), ("w", ["x"], ["v"]), ("m", ["b"], ["y"])])
    return memplan.graph_from_dict(gd), {"x": 4, "a": 4, "b": 4, "v": 2, "y": 4}


def _in_place_pairs(g: memplan.Graph, doc: dict) -> set[tuple[str, str, str]]:
    """The (in, out, node) pairs ``compute_lifetimes`` lets share bytes under ``doc``'s schedule."""
    lt = compute_lifetimes(g, build_happens_before(g, schedule_of(memplan.plan_from_dict(doc))))
    ids = [g.tensors[int(r)].id for r in lt.roots]
    return {(ids[a], ids[b], g.nodes[n].id) for a, b, n in lt.compatible}


def test_an_in_place_output_written_through_a_view_before_its_producer_is_a_finding():
    """#26 verify ``inplace_ok`` without ``x == n or at(x, sn) >= inn for x in first_of(b)``: n overwrites a with b
    in place, and w, on another stream with no event, writes a view of b: w may write a's bytes while n still reads
    them, and only the check that n happens-before every other access of b finds it."""
    g, sizes = _view_writer()
    order, offsets = [("p", 0), ("n", 0), ("w", 1), ("m", 0)], {"x": 4, "a": 0, "b": 0, "v": 0, "y": 8}
    assert check(g, _plan_of("g", order, [("n", "w")], offsets, sizes, 12)) == []
    assert check(g, _plan_of("g", order, [], offsets, sizes, 12)) == [
        (3, "tensors 'a' and 'b' overlap in the arena but not every access of one happens-before every access of the "
            "other: node 'n', which accesses 'a', does not happen-before node 'w', which accesses 'b'")]


def test_lifetimes_share_in_place_bytes_only_where_every_access_of_out_follows_the_node():
    """#49 lifetimes ``all(x == n or hb.hb(n, int(x)) for x in acc_bb)`` as always true: the in-place pair (a, b, n)
    was compatible though w writes a view of b on another stream with nothing ordering it after n (the solver may
    then put b over a: the verifier's finding above, now the planner's own plan)."""
    g, sizes = _view_writer()
    order, offsets = [("p", 0), ("n", 0), ("w", 1), ("m", 0)], {"x": 4, "a": 0, "b": 0, "v": 0, "y": 8}
    assert _in_place_pairs(g, _plan_of("g", order, [("n", "w")], offsets, sizes, 12)) == {("a", "b", "n")}
    assert _in_place_pairs(g, _plan_of("g", order, [], offsets, sizes, 12)) == set()


def test_an_in_place_pair_of_a_node_that_also_writes_a_view_of_its_input_is_no_exception():
    """#28 verify ``graph.producer[b] == ni and a not in roots_written`` without the second test, #47 lifetimes
    ``if root[...i_id] in written: continue`` skipped: n overwrites a with b in place and also writes va, a view of
    a that nothing reads after (n is a's last access): that write lands on b's bytes (CONTRACT.md: no in-place
    exception then), and a plan placing b over a passed, the planner's lifetimes calling the pair compatible."""
    gd = _doc([("x", 4, "input"), ("a", 4, "intermediate"), ("va", 2, "intermediate", "a", 0),
               ("b", 4, "intermediate"), ("y", 4, "output")],
              [("p", ["x"], ["a"]), ("n", ["a"], ["b", "va"], [("b", "a")]), ("c", ["b"], ["y"])])
    g = memplan.graph_from_dict(gd)
    sizes = {"x": 4, "a": 4, "b": 4, "va": 2, "y": 4}
    order = [("p", 0), ("n", 0), ("c", 0)]
    apart = _plan_of("g", order, [], {"x": 4, "a": 0, "va": 0, "b": 8, "y": 12}, sizes, 16, streams=1)
    assert check(g, apart) == []
    assert check(g, _plan_of("g", order, [], {"x": 4, "a": 0, "va": 0, "b": 0, "y": 8}, sizes, 12, streams=1)) == [
        (3, "tensors 'a' and 'b' overlap in the arena but not every access of one happens-before every access of the "
            "other: node 'n' accesses both (not as an in-place overwrite of 'a' by 'b' that the contract allows)")]
    assert _in_place_pairs(g, apart) == set()
    offs = memplan.plan(g).offsets()
    assert offs["b"] + 4 <= offs["a"] or offs["a"] + 4 <= offs["b"], offs


# ---- verify: multi-device plans -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_devices():
    split, p = plan_devices(llama(LLAMA_TINY), 2)
    assert check(split.graph, p) == []
    return split.graph, p


def test_a_copy_moved_onto_its_destinations_stream_is_a_finding(two_devices):
    """#35 verify: a COPY's ``tdev[graph.root[t]] != ndev[ni]`` check skipped: a plan issuing the COPY of ``pos`` on
    device 1's stream (a pull, which docs/format.md does not describe) passed."""
    g, p = two_devices
    i = [n for n, _ in p.order].index("copy:pos@dev1")
    order, nd = list(p.order), list(p.node_devices)
    order[i], nd[i] = ("copy:pos@dev1", 1), 1
    assert check(g, dataclasses.replace(p, order=tuple(order), node_devices=tuple(nd))) == [
        (4, "COPY node 'copy:pos@dev1' runs on device 1 but its source 'pos' is on device 0: a COPY runs on its "
            "source's device (a push)")]


def test_a_view_on_another_device_than_its_root_is_a_finding(two_devices):
    """#37 verify ``tdev[t] != tdev[graph.root[t]]`` skipped: a view listed on device 1, its root on device 0, passed
    (a view has no bytes of its own: they are its root's, on the root's device)."""
    g, p = two_devices
    j = [t for t, _, _ in p.tensors].index("l0.q3")
    td = list(p.tensor_devices)
    assert td[j] == 0
    td[j] = 1
    assert check(g, dataclasses.replace(p, tensor_devices=tuple(td))) == [
        (4, "view 'l0.q3' is on device 1 but its root 'l0.q' is on device 0")]


def test_a_tensor_one_byte_past_its_devices_arena_is_a_finding(two_devices):
    """#38 verify ``off + size > device_arena_bytes[d]`` as ``> ... + 1``: a device arena one byte short of its top
    tensor passed. Each device's arena is its tensors' top exactly (no slack to hide the byte)."""
    g, p = two_devices
    top = [0] * p.devices
    for (_, off, size), d in zip(p.tensors, p.tensor_devices):
        if off is not None:
            top[d] = max(top[d], off + size)
    assert list(p.device_arena_bytes) == top
    short = (p.device_arena_bytes[0], p.device_arena_bytes[1] - 1)
    want = [(4, f"tensor {tid!r} [{off}, {off + size}) ends past device 1's arena of {top[1] - 1} bytes")
            for (tid, off, size), d in zip(p.tensors, p.tensor_devices)
            if d == 1 and off is not None and off + size == top[1] and g.tensors[g.tensor_index[tid]].view_of is None]
    assert want and check(g, dataclasses.replace(p, device_arena_bytes=short)) == want


def test_a_device_arena_above_the_plans_arena_is_a_finding(two_devices):
    """#40 verify ``if a > plan.arena_bytes: bad(4, ...)`` skipped: ``arena_bytes`` is the largest device arena
    (docs/format.md), and a plan whose device 1 claimed more passed (its tensors all fit either number)."""
    g, p = two_devices
    over = (p.device_arena_bytes[0], p.arena_bytes + 1)
    assert check(g, dataclasses.replace(p, device_arena_bytes=over)) == [
        (4, f"device 1's arena of {p.arena_bytes + 1} bytes exceeds arena_bytes {p.arena_bytes}")]


# ---- lifetimes and reuse ---------------------------------------------------------------------------------------

def test_an_input_no_node_reads_is_free_from_the_first_node():
    """#54 lifetimes ``visible[np.bincount(pb, minlength=B) == 0] = 0`` dropped: a root no node accesses was never
    visible, so ``reuse_after`` said no node of the stream may reuse an unread input's bytes (``free_from`` None)."""
    gd = _doc([("x", 4, "input"), ("u", 4, "input"), ("a", 4, "intermediate"), ("y", 4, "output")],
              [("p", ["x"], ["a"]), ("q", ["a"], ["y"])])
    g = memplan.graph_from_dict(gd)
    p = memplan.plan(g)
    assert p.order == (("p", 0), ("q", 0))
    assert memplan.reuse_after(g, p, "u") == memplan.Reuse("u", "u", True, {}, {0: "p"})
    assert memplan.reuse_after(g, p, "x") == memplan.Reuse("x", "x", True, {0: "p"}, {0: "q"})


# ---- the optimizer's events against schedule_with_events, and both against the verifier --------------------------

def _random_dag(seed: int, n: int) -> memplan.Graph:
    """n nodes, each reading one to three earlier tensors (or the input), some through views; some nodes write into
    a view of an earlier tensor (a cache update: the view's chain then has writers of its own); one output."""
    rnd = random.Random(seed)
    b = memplan.GraphBuilder(f"dag{seed}")
    b.alignment = 1
    made = [b.input("x", 8)]
    roots: list[str] = []
    for i in range(n):
        reads = sorted(set(rnd.sample(made, min(len(made), rnd.randint(1, 3)))))
        if roots and i < n - 1 and rnd.random() < 0.15:
            out = b.view(f"w{i}", rnd.choice(roots), 4, 0)   # written into by this node
        else:
            out = b.output(f"t{i}", 8) if i == n - 1 else b.intermediate(f"t{i}", 8)
            roots.append(out)
        b.node(f"n{i}", "A", reads, out)
        made.append(out)
        if rnd.random() < 0.2 and i < n - 1 and out in roots:
            made.append(b.view(f"v{i}", out, 4, 4))
    return b.build()


@pytest.mark.parametrize(("seed", "streams"), [(1, 3), (2, 5), (3, 40), (4, 48)])
def test_wait_pairs_are_schedule_with_events_on_few_and_many_streams(seed, streams):
    """#67 events (a dense clock one count too high, ``count + 1``) and #72 schedule (``schedule_with_events`` trying
    the earliest dependency first: events the latest one implies) survived; #64-#66, #68, #70, #71 (a dict clock one
    too high, an event taken as implied one node early, the earliest writer of a stream waited for, a view's writers
    left out, the one cross-stream writer's event dropped) are killed here too. ``wait_pairs`` (sparse clocks; dense
    rows past ``DENSE_STREAMS`` = 32 streams) and ``schedule_with_events`` must give the same events, and those must
    make every read safe, each one needed. The tests of ``wait_pairs`` drew at most 5 streams: the dense rows were
    never compared; and runs of consecutive nodes on one stream are where a clock one too high claims a node."""
    g = _random_dag(seed, 150)
    rnd = random.Random(seed)
    order = [nd.id for nd in g.nodes]
    stream_of, run = {}, []
    for nid in order:   # runs of one to three consecutive nodes on a stream (a clock one too high shows there)
        if not run:
            run = [rnd.randrange(streams)] * rnd.randint(1, 3)
        stream_of[nid] = run.pop()
    want = memplan.schedule_with_events(g, order, stream_of)
    idx = g.node_index
    got = wait_pairs(g, [idx[n] for n in order], [stream_of[n] for n in order])
    assert [(g.nodes[a].id, g.nodes[b].id) for a, b in got] == [(e.after, e.before) for e in want.events]
    assert len(want.events) > 20
    # the events are enough: the plan of this schedule with every tensor apart has no finding
    sizes = {t.id: t.size for t in g.tensors}
    offsets, top = {}, 0
    for t in g.tensors:
        if t.view_of is None:
            offsets[t.id], top = top, top + t.size
    for t in g.tensors:
        if t.view_of is not None:
            offsets[t.id] = offsets[t.view_of] + t.view_offset
    doc = _plan_of(g.name, [(n, stream_of[n]) for n in order], [(e.after, e.before) for e in want.events], offsets,
                   sizes, top, streams=streams)
    assert check(g, doc) == []
    # and each one is needed: without it some read races
    for k in rnd.sample(range(len(want.events)), 5):
        less = dict(doc, events=doc["events"][:k] + doc["events"][k + 1:])
        assert any(r == 2 for r, _ in check(g, less)), k


# ---- solvers/check: the solver's own check against the definition ------------------------------------------------

def _packs_by_definition(sizes, lower, upper, offs, arena, alignment, bound, compatible) -> bool:
    """A packing: offsets non-negative and aligned, ``arena`` the top byte (0 with no buffer), at or above the bound,
    and no two buffers that are live at one time (half-open ``[lower, upper)``, both non-empty) and not a
    ``compatible`` pair share a byte."""
    n = len(sizes)
    if any(o < 0 or o % alignment for o in offs):
        return False
    if arena != max([0] + [o + s for o, s in zip(offs, sizes)]) or arena < bound:
        return False
    for i in range(n):
        for j in range(i + 1, n):
            if min(sizes[i], sizes[j]) == 0 or upper[i] <= lower[i] or upper[j] <= lower[j] or (i, j) in compatible:
                continue
            if lower[i] < upper[j] and lower[j] < upper[i] and offs[i] < offs[j] + sizes[j] and \
                    offs[j] < offs[i] + sizes[i]:
                return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_check_solution_is_the_definition_of_a_packing(data):
    """#73, #74, #77, #79, #81 solvers/check: ``check_solution`` on small interval problems with offsets drawn near
    each other accepts exactly the packings the definition accepts: an interval of one step, an arena above the span
    (``>`` for ``!=``), an unaligned or negative offset, an arena below the proven bound each accepted a wrong
    packing here (a byte of overlap above or below and touching intervals: the next test, drawn always). With
    compatible (in-place) pairs drawn the problem is no interval problem, checked pair by pair (``find_collision``;
    #80: the test after next, drawn always)."""
    n = data.draw(st.integers(2, 5))
    alignment = data.draw(st.sampled_from([1, 2]))
    sizes = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    lower = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    upper = [lo + data.draw(st.integers(0, 3)) for lo in lower]
    offs = data.draw(st.lists(st.integers(-1, 9), min_size=n, max_size=n))
    arena = max(0, max([0] + [o + s for o, s in zip(offs, sizes)]) + data.draw(st.sampled_from([0, 0, 0, 1, -1])))
    bound = data.draw(st.sampled_from([0, 0, arena, arena + 1]))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    compatible = frozenset(data.draw(st.lists(st.sampled_from(pairs), max_size=2)))
    problem = BufferProblem(sizes=np.array(sizes), lower=np.array(lower), upper=np.array(upper), alignment=alignment,
                            lower_bound=bound, compatible=compatible)
    assert problem.is_interval == (not compatible)
    want = _packs_by_definition(sizes, lower, upper, offs, arena, alignment, bound, compatible)
    assert packs(problem, Solution(np.array(offs, dtype=np.int64), arena, "hand")) == want, (want, offs, arena)


@pytest.mark.parametrize(("seed", "streams"), [(5, 3), (6, 40)])
def test_rescore_is_the_whole_replay_on_few_and_many_streams(seed, streams):
    """#62, #69 events: ``Replay.rescore`` (the fork scores' fast path) takes an event as implied one node early, or
    reads no event for a node's one cross-stream writer from its index (``_waits_on``): its event count then differs
    from a whole ``Replay`` of the same streams, which is what the optimizer's forks are scored by."""
    g = _random_dag(seed, 120)
    rnd = random.Random(seed)
    o = list(range(len(g.nodes)))
    s = [rnd.randrange(streams) for _ in o]
    cost = [float(rnd.randint(1, 9)) for _ in o]
    replay = Replay(g, o, s, cost, 1.0, range(len(o) + 1))
    for _ in range(12):
        p = rnd.randrange(len(o))
        moved = {o[q]: rnd.randrange(streams) for q in rnd.sample(range(p, len(o)), min(4, len(o) - p))}
        window = [moved.get(v, s[q]) for q, v in enumerate(o)]
        full = Replay(g, o, window, cost, 1.0)
        assert replay.rescore(p, len(o), moved) == (full.events, full.makespan), (p, moved)


@pytest.mark.parametrize(("lower", "upper", "offs", "want"), [
    ([0, 2], [2, 4], [0, 0], True),     # touching in time: [0, 2) then [2, 4), one place
    ([0, 1], [3, 3], [0, 3], False),    # the later one's first byte on the live one's last
    ([0, 1], [3, 3], [3, 0], False),    # the later one's last byte on the live one's first
    ([0, 1], [3, 3], [0, 4], True),     # side by side
    ([0, 0], [1, 1], [0, 3], False),    # one step each, one byte shared
])
def test_check_solution_at_the_edges(lower, upper, offs, want):
    """The property above's edges, drawn always: #75 (a live lower neighbour overlapping by one byte, ``> o + 1``),
    #76 (an upper one, ``< ends[i] - 1``), #77 (a one-step interval), #78 (intervals closed at their end, ``upper +
    1``: touching intervals refused); the property finds some of them only now and then."""
    # (bound 0: the interval bound would refuse an overlapping packing by its arena alone)
    problem = BufferProblem(sizes=np.array([4, 4]), lower=np.array(lower), upper=np.array(upper), lower_bound=0)
    arena = max(o + 4 for o in offs)
    assert _packs_by_definition([4, 4], lower, upper, offs, arena, 1, 0, frozenset()) == want
    assert packs(problem, Solution(np.array(offs, dtype=np.int64), arena, "hand")) == want


def test_check_solution_of_a_problem_with_compatible_pairs_checks_every_other_pair():
    """#80 solvers/check ``overlap`` answering None for a problem that is no interval problem (an in-place pair makes
    it one: ``find_collision``'s pairwise check): buffers 1 and 2, live together and not compatible, shared a byte."""
    problem = BufferProblem(sizes=np.array([4, 4, 4]), lower=np.array([0, 1, 1]), upper=np.array([2, 3, 3]),
                            compatible=frozenset({(0, 1)}), lower_bound=0)
    assert not problem.is_interval
    assert packs(problem, Solution(np.array([0, 0, 4], dtype=np.int64), 8, "hand"))   # 0 and 1: the in-place pair
    assert not packs(problem, Solution(np.array([0, 0, 3], dtype=np.int64), 7, "hand"))
    assert not packs(problem, Solution(np.array([0, 4, 0], dtype=np.int64), 8, "hand"))   # 0 and 2: no pair


# ---- planfile: a Plan built in code is held to a file's ranges ------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "message"), [
    ("alignment", 0, "field 'alignment' is not an integer in 1..9223372036854775807 (int 0)"),
    ("streams", 0, "field 'streams' is not an integer in 1..1024 (int 0)"),
    ("node_devices", (0, 1, 0), "field 'node_devices' puts node 'q' on device 1, outside 0..0 (the plan spans 1 "
                                "device)"),
    ("device_arena_bytes", (17,), "field 'device_arena_bytes' is (17,) in a plan of 1 device: it can only be "
                                  "(arena_bytes,) or empty"),
    ("tensors", (("x", 0.0, 4), ("a", 4, 4), ("b", 8, 4), ("y", 12, 4)),
     "tensors[0] ('x'): 'offset' is not an integer in ±2**63 (float 0.0)"),
])
def test_a_plan_built_in_code_outside_a_files_ranges_is_refused_by_verify(field, value, message):
    """#82-#86 planfile ``check_plan_fields``: alignment 0 or streams 0 taken (``low`` 0: then a raw
    ZeroDivisionError, or every stream out of range), a one-device plan's device fields not checked (both the call
    and the arena's test), a float offset kept as it is. ``verify`` of such a Plan is a PlanFormatError naming the
    field, as ``load_plan`` of its file is."""
    g = memplan.graph_from_dict(_diamond())
    p = memplan.plan_from_dict(_plan(ORDER, [("q", "r")], APART))
    assert check(g, p) == []
    with pytest.raises(memplan.PlanFormatError) as info:
        check(g, dataclasses.replace(p, **{field: value}))
    assert str(info.value) == f"plan: {message}"


# ---- io.load_safe_pair --------------------------------------------------------------------------------------------

def test_load_safe_pair_verifies_the_pair_with_the_fused_groups_asked(tmp_path):
    """#87, #88 io ``load_safe_pair``: without its ``verify`` call an unsafe pair was loaded for ``show``/``simulate``
    (a race drawn as if safe); with ``fused_groups`` not passed on, a plan safe node by node but overlapping inside
    a fusion group was loaded for a fused backend."""
    g = llama(LLAMA_TINY, fuse="runtime")
    plain = memplan.plan(g)
    gp, pp = str(tmp_path / "g.json"), str(tmp_path / "p.json")
    memplan.save_graph(g, gp)
    memplan.save_plan(plain, pp)
    assert load_safe_pair(gp, pp) == (g, plain)
    with pytest.raises(memplan.UnsafePlan, match="fusion groups counted as one kernel") as info:
        load_safe_pair(gp, pp, fused_groups=True)
    assert pp in str(info.value)
    dg = memplan.graph_from_dict(_diamond())
    memplan.save_graph(dg, gp)
    (tmp_path / "p.json").write_text(json.dumps(_plan(ORDER, [], APART)))   # r reads b, q's write not waited for
    with pytest.raises(memplan.UnsafePlan, match="rule 2") as info:
        load_safe_pair(gp, pp)
    assert pp in str(info.value)


# ---- devices: the COPY nodes a split inserts ---------------------------------------------------------------------

def test_a_split_sends_one_copy_per_tensor_in_producer_order_from_its_source():
    """devices/rewrite ``insert_copies``: #90 the copies sorted by tensor index, not by their producer (``late``,
    listed first, is made after ``early``: its copy went first, so device 1 waited for the later one to start);
    #89 a copy issued on its destination; #91 its ``src_device``/``dst_device`` swapped; #92 an in-place pair on
    device 1 still naming device 0's tensor, not its copy; #94 a copy per reading node (two of ``early``)."""
    b = memplan.GraphBuilder("c")
    b.input("x", 8)
    b.intermediate("late", 8)
    b.intermediate("early", 8)
    b.intermediate("z", 8)
    b.output("y", 8)
    b.node("n1", "A", ["x"], ["early"])
    b.node("n2", "A", ["early"], ["late"])
    b.node("n3", "A", ["late", "early"], ["z"])
    b.node("n4", "A", ["early", "z"], ["y"], inplace={"y": "early"})
    split, ndev, tdev, copies = insert_copies(b.build(), [0, 0, 1, 1], 2)
    assert [(n.id, n.inputs, n.inplace, dict(n.attrs)) for n in split.nodes] == [
        ("n1", ("x",), (), {"device": 0}), ("n2", ("early",), (), {"device": 0}),
        ("copy:early@dev1", ("early",), (), {"device": 0, "src_device": 0, "dst_device": 1}),
        ("copy:late@dev1", ("late",), (), {"device": 0, "src_device": 0, "dst_device": 1}),
        ("n3", ("late@dev1", "early@dev1"), (), {"device": 1}),
        ("n4", ("early@dev1", "z"), (("y", "early@dev1"),), {"device": 1})]
    assert ndev == [0, 0, 0, 0, 1, 1]
    assert [split.tensors[i].id for i in copies] == ["early@dev1", "late@dev1"]
    assert tdev == [0, 0, 0, 1, 1, 1, 1]


def test_a_single_device_capacity_counts_each_weights_bytes_once():
    """devices/split: #95 ``check_capacity`` without the weights (an arena alone under the capacity passed, the
    weights over it); #96 ``weight_bytes`` counting a weight's view as bytes of its own (a plan that fits refused)."""
    b = memplan.GraphBuilder("w")
    b.input("x", 8)
    b.weight("W", 16)
    b.view("Wv", "W", 8, 8, kind="weight")
    b.output("y", 8)
    b.node("n", "A", ["x", "Wv"], ["y"])
    g = b.build()
    p = memplan.plan(g)
    assert weight_bytes(g) == 16
    check_capacity(g, p, 16 + p.arena_bytes)
    with pytest.raises(memplan.BudgetError) as info:
        check_capacity(g, p, 15 + p.arena_bytes)
    assert str(info.value) == (f"device 0 needs 16 B of weights plus an arena of {p.arena_bytes} B = "
                               f"{16 + p.arena_bytes} B, over the device_capacity of {15 + p.arena_bytes} B")


def test_a_node_reading_from_a_later_device_is_refused_naming_both():
    """#93 devices/rewrite ``if src > d: raise`` as ``src > d + 1``: stages run in device order and copies are pushes
    to later devices, so a node on device 0 reading a tensor made on device 1 has no copy that could bring it; it
    was given one (a COPY issued on device 1 after the node it feeds)."""
    b = memplan.GraphBuilder("c")
    b.input("x", 8)
    b.intermediate("a", 8)
    b.output("y", 8)
    b.node("n1", "A", ["x"], ["a"])
    b.node("n2", "A", ["a"], ["y"])
    with pytest.raises(memplan.ScheduleError) as info:
        insert_copies(b.build(), [1, 0], 2)
    assert str(info.value) == ("node 'n2' on device 0 reads 'a' from the later device 1 (a stage cut splits a pinned "
                               "tensor's accesses)")


# ---- io/minimalloc: the CSV problem's reader and solution writer ---------------------------------------------------

def test_parse_csv_refuses_what_is_no_text_and_format_csv_offsets_past_the_limit_or_bools():
    """io/minimalloc: #113 ``parse_csv``'s ``not isinstance(text, str)`` check skipped (bytes: a raw TypeError);
    #117 ``flags``' ``arr.ndim == 1`` as ``!=`` (True taken for offset 1); #115 ``_offsets`` without
    ``len(arr) != n`` (one offset for two rows broadcast over both, three written as two: a table cut short or
    offsets dropped, silently). An offset whose end passes 2**63 - 1 is refused, the largest that fits written."""
    with pytest.raises(memplan.InputFormatError, match=r"^parse_csv needs the CSV as text \(a str; read_csv reads a "
                                                       r"file\), not bytes$"):
        parse_csv(b"id,lower,upper,size\n")
    one = parse_csv("id,lower,upper,size\na,0,2,4\n")
    assert format_csv(one, [2**63 - 5]) == "id,lower,upper,size,offset\na,0,2,4,9223372036854775803\n"
    with pytest.raises(memplan.SolverError) as info:
        format_csv(one, [2**63 - 4])
    assert str(info.value) == "<csv>: buffer 'a': offset 9223372036854775804 is not in 0..2**63-1 with its size"
    two = parse_csv("id,lower,upper,size\na,0,2,4\nb,1,3,4\n")
    assert format_csv(two, [0, 4]) == "id,lower,upper,size,offset\na,0,2,4,0\nb,1,3,4,4\n"
    for wrong in ([True, 8], [0], [0, 4, 8]):
        with pytest.raises(memplan.SolverError) as info:
            format_csv(two, wrong)
        assert str(info.value) == f"<csv>: offsets must be 2 integers, one per row, not {wrong}"
