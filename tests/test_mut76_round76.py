"""Round 76 (mut76): tests that kill hand-written mutants of the safety core (``memplan/verify.py``,
``memplan/lifetimes.py``, ``memplan/reuse.py``) that the tests covering them let pass (the round's table is in
docs/experiments/mutation_s76.txt, its driver docs/experiments/mutation_s76.py). Each test names, in its docstring,
the mutant(s) it kills (id of that table, the change); each fails with its mutant applied and passes without. The
survivors were in paths added since round 62's mutation run and reached only on inputs no test had: ``fused_groups``'
own findings (a group that cannot fuse, roots nested in a group), a join's clock kept as differences (64 or more
streams), a clock past 255 nodes of a stream, the painting's split of a segment that ends one byte past the new
one, and the value of ``lifetimes.issue_order_bound``.
"""

from __future__ import annotations

import pytest

import memplan
from memplan.verify import check


def _doc(tensors: list[tuple], nodes: list[tuple], name: str = "g") -> dict:
    """A graph document: tensors (id, size, kind[, view_of, view_offset]), nodes (id, inputs, outputs[, inplace
    pairs[, group]])."""
    ts = []
    for t in tensors:
        d = {"id": t[0], "size": t[1], "kind": t[2]}
        if len(t) > 3:
            d.update(view_of=t[3], view_offset=t[4])
        ts.append(d)
    ns = []
    for n in nodes:
        d = {"id": n[0], "op": "A", "inputs": list(n[1]), "outputs": list(n[2])}
        if len(n) > 3 and n[3]:
            d["inplace"] = dict(n[3])
        if len(n) > 4:
            d["group"] = n[4]
        ns.append(d)
    return {"format": "memplan.graph/1", "name": name, "alignment": 1, "tensors": ts, "nodes": ns}


def _plan(order, events, offsets: dict, sizes: dict, arena: int, streams: int) -> dict:
    """A plan document of graph ``g`` (alignment 1)."""
    return {"format": "memplan.plan/1", "graph": "g", "alignment": 1, "arena_bytes": arena, "lower_bound_bytes": 0,
            "streams": streams, "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events],
            "tensors": [{"id": t, "offset": o, "size": sizes[t]} for t, o in offsets.items()], "solver": {}}


def _graph(tensors, nodes) -> tuple[memplan.Graph, dict]:
    return memplan.graph_from_dict(_doc(tensors, nodes)), {t[0]: t[1] for t in tensors}


# ---- verify(fused_groups=True): the group's own findings ---------------------------------------------------------

_KERNEL = "fusion groups counted as one kernel, which may write one while it still reads the other"


def _group_read_between(q_first: bool) -> tuple[memplan.Graph, dict]:
    """Group g = [m1, m2] on stream 0: m1 overwrites a with b in place, m2 reads b; q, on stream 1, reads b after an
    event from m1, issued between m1 and m2 (``q_first``: the group cannot run as one kernel, its record would come
    after q's wait) or after m2 (it can). b is placed over a."""
    g, sizes = _graph([("x", 4, "input"), ("a", 4, "intermediate"), ("b", 4, "intermediate"), ("z", 4, "output"),
                       ("y", 4, "output")],
                      [("p", ["x"], ["a"]), ("m1", ["a"], ["b"], [("b", "a")], "g"), ("m2", ["b"], ["y"], (), "g"),
                       ("q", ["b"], ["z"])])
    order = [("p", 0), ("m1", 0), ("q", 1), ("m2", 0)] if q_first else [("p", 0), ("m1", 0), ("m2", 0), ("q", 1)]
    return g, _plan(order, [("m1", "q")], {"x": 0, "a": 4, "b": 4, "z": 8, "y": 12}, sizes, 16, 2)


def test_a_group_that_cannot_run_as_one_kernel_is_judged_node_by_node():
    """V18 ``_fused_overlaps``' ``unfused.add`` skipped: a group an event of whose first member is waited on before
    its last member is issued runs node by node (``runtime.step.unfusable_groups``), so its in-place pair is the
    contract's; judged as one kernel it was refused. The same group issued so it can fuse is a finding. (Before, only
    the slow random oracle of ``test_verify_oracle65`` caught it.)"""
    g, doc = _group_read_between(q_first=True)
    assert check(g, doc) == check(g, doc, fused_groups=True) == []
    g, doc = _group_read_between(q_first=False)
    assert check(g, doc) == []
    assert check(g, doc, fused_groups=True) == [
        (3, "tensors 'a' and 'b' overlap in the arena and fusion group 'g' touches both ('m1' accesses 'a', 'm1' "
            f"accesses 'b'; {_KERNEL})")]


def test_a_fused_group_names_every_root_overlapping_an_earlier_one():
    """V14 ``_fused_overlaps``' sweep taking each root as the furthest-reaching one (``hi > reach[1]`` dropped): B,
    inside A, then stood for both, and C, past B's end but inside A, overlapped nothing: the finding for A and C
    was lost (the verdict held only through A and B's)."""
    g, sizes = _graph([("x", 4, "input"), ("A", 12, "intermediate"), ("B", 4, "intermediate"), ("C", 4, "output")],
                      [("p", ["x"], ["A"]), ("n1", ["A"], ["B"], [("B", "A")], "g"), ("n2", ["B"], ["C"], (), "g")])
    doc = _plan([("p", 0), ("n1", 0), ("n2", 0)], [], {"x": 0, "A": 4, "B": 8, "C": 12}, sizes, 16, 1)
    assert check(g, doc) == []
    assert check(g, doc, fused_groups=True) == [
        (3, f"tensors 'A' and 'B' overlap in the arena and fusion group 'g' touches both ('n1' accesses 'A', 'n1' "
            f"accesses 'B'; {_KERNEL})"),
        (3, f"tensors 'A' and 'C' overlap in the arena and fusion group 'g' touches both ('n1' accesses 'A', 'n2' "
            f"accesses 'C'; {_KERNEL})")]


# ---- rule 3: the painting ---------------------------------------------------------------------------------------

def test_a_root_overlapping_only_the_last_byte_left_of_an_earlier_one_is_compared_with_it():
    """V40 ``_Painting.paint``'s ``ends[last_b][last_i] > hi`` as ``> hi + 1``: B, painted over all of A but its last
    byte, lost that byte's owner, and C, on another stream with no event, overlapping A in that byte alone, was
    compared with nothing: the plan passed. (Before, only the slow 1,000-segment paintings of
    ``test_verify_round30`` caught it.)"""
    g, sizes = _graph([("x", 4, "input"), ("A", 8, "intermediate"), ("B", 7, "intermediate"), ("C", 1, "intermediate"),
                       ("y1", 4, "output"), ("y2", 4, "output"), ("y3", 4, "output")],
                      [("p", ["x"], ["A"]), ("q", ["A"], ["y1"]), ("r", ["x"], ["B"]), ("s", ["B"], ["y2"]),
                       ("u", ["x"], ["C"]), ("v", ["C"], ["y3"])])
    order = [("p", 0), ("q", 0), ("r", 0), ("s", 0), ("u", 1), ("v", 1)]
    offsets = {"x": 100, "A": 0, "B": 0, "C": 7, "y1": 8, "y2": 12, "y3": 16}
    assert check(g, _plan(order, [("q", "u")], offsets, sizes, 104, 2)) == []
    assert check(g, _plan(order, [], offsets, sizes, 104, 2)) == [
        (3, "tensors 'A' and 'C' overlap in the arena but not every access of one happens-before every access of the "
            "other: node 'q', which accesses 'A', does not happen-before node 'u', which accesses 'C'")]


# ---- the clocks on many streams: a join kept as a few differences from a stored clock ----------------------------

def _join_through_differences(streams: int, k: int) -> tuple[memplan.Graph, dict]:
    """``streams`` streams (64 or more: the verifier keeps a join's clock as a stored one plus a few differences, 8 or
    more of them in arrays from 512 streams): b1 .. bk write B1 .. Bk on streams 2 .. k + 1; a, on stream 1, waits on
    them all (its clock: the empty one plus k differences); c, on stream 0, waits on a alone and reads every B_i:
    each b_i happens-before c through a's differences. The streams past k + 1 run one node each."""
    ts = [("x", 1, "input"), ("A", 1, "intermediate")] + [(f"B{i}", 1, "intermediate") for i in range(1, k + 1)]
    ts += [("Y", 1, "output")] + [(f"y{s}", 1, "output") for s in range(k + 2, streams)]
    ns = [(f"b{i}", ["x"], [f"B{i}"]) for i in range(1, k + 1)]
    ns += [("a", ["x"], ["A"]), ("c", ["A"] + [f"B{i}" for i in range(1, k + 1)], ["Y"])]
    ns += [(f"f{s}", ["x"], [f"y{s}"]) for s in range(k + 2, streams)]
    g, sizes = _graph(ts, ns)
    order = [(f"b{i}", i + 1) for i in range(1, k + 1)] + [("a", 1), ("c", 0)]
    order += [(f"f{s}", s) for s in range(k + 2, streams)]
    events = [(f"b{i}", "a") for i in range(1, k + 1)] + [("a", "c")]
    return g, _plan(order, events, {t[0]: j for j, t in enumerate(ts)}, sizes, len(ts), streams)


@pytest.mark.parametrize("streams, k", [(64, 1), (512, 8)])
def test_happens_before_passes_through_a_joins_differences(streams, k):
    """V25 ``_raise_to``'s ``merged[t] < v`` as ``>`` (a join never raised to a few differences of a clock it waited
    on), V26 its array form's ``np.maximum`` as ``np.minimum`` (8 or more differences): on 64 streams a's clock is
    stored as the empty clock and {stream 2: 1} (on 512, 8 such), and c, waiting on a, did not count b1, refusing
    the read of B1 as racy. Below 64 streams no clock is kept as differences, and no test had 64."""
    g, doc = _join_through_differences(streams, k)
    assert check(g, doc) == []
    doc["events"] = [e for e in doc["events"] if e["after"] != "b1"]
    assert check(g, doc) == [(2, "node 'c' reads 'B1' but its writer 'b1' does not happen-before it (missing event?)")]


def test_a_join_counting_past_255_nodes_of_a_stream_keeps_its_count():
    """V28 ``_narrow`` one type too narrow (``min_scalar_type`` of half the largest count): c's clock, joining the
    300th node of stream 1, was stored in one byte each, 300 read back as 44, and c's read of that node's output
    refused as racy. No test had a join past 255 nodes of one stream."""
    n = 300
    ts = [("x", 1, "input")] + [(f"t{i}", 1, "intermediate") for i in range(1, n + 1)] + [("y", 1, "output")]
    ns = [(f"n{i}", ["x" if i == 1 else f"t{i - 1}"], [f"t{i}"]) for i in range(1, n + 1)]
    ns += [("c", [f"t{n}"], ["y"])]
    g, sizes = _graph(ts, ns)
    order = [(f"n{i}", 1) for i in range(1, n + 1)] + [("c", 0)]
    doc = _plan(order, [(f"n{n}", "c")], {t[0]: j for j, t in enumerate(ts)}, sizes, len(ts), 2)
    assert check(g, doc) == []
    doc["events"] = [{"after": f"n{n - 1}", "before": "c"}]
    assert check(g, doc) == [(2, f"node 'c' reads 't{n}' but its writer 'n{n}' does not happen-before it (missing "
                                 "event?)")]


# ---- lifetimes.issue_order_bound: the memory budget's filter --------------------------------------------------------

def test_the_issue_order_bound_is_the_sweep_of_the_schedule():
    """L14 ``issue_order_bound`` without ``lo[inputs] = 0`` (an input's span from its first read, not from the run's
    start) and L13 its in-place exception without ``hi[a] == pos[n] + 1`` (an input overwritten in place left out at
    the node though a later node still reads it): either bound fell to about half its plan's (x, read last, and a
    live together: 201; x still read after n1 writes o over it in place: 200), and a memory budget kept trying
    schedules that bound rules out. Only ``issue_order_bound <= `` the problem's bound was tested, never its value."""
    from memplan.lifetimes import issue_order_bound

    g, _ = _graph([("x", 100, "input"), ("z", 1, "input"), ("a", 100, "intermediate"), ("b", 1, "intermediate"),
                   ("y", 1, "output")],
                  [("n1", ["z"], ["a"]), ("n2", ["a"], ["b"]), ("n3", ["x", "b"], ["y"])])
    assert issue_order_bound(g, ["n1", "n2", "n3"]) == memplan.plan(g).lower_bound_bytes == 201
    g, _ = _graph([("x", 100, "input"), ("o", 100, "intermediate"), ("y", 1, "output")],
                  [("n1", ["x"], ["o"], [("o", "x")]), ("n2", ["x"], ["y"])])
    assert issue_order_bound(g, ["n1", "n2"]) == memplan.plan(g).lower_bound_bytes == 200
