"""Tests that kill mutants of the modules that decide safety that survived session 62's mutation run
(docs/experiments/mutation_s62.py: hand-written faults at the lines that stop them, and a sample of rounds 55-61's
operators). Each test names, in its docstring, the mutant(s) it kills: id, module, the change.
"""

from __future__ import annotations

from test_verify_round45 import _diamond, _plan

import memplan
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
    not as a wait that does not come after its record (the oracle's reading: it is both)."""
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
