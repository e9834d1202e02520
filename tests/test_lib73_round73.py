"""Round 73 (lib73): hostile calls of the Python library API.

Each test names the call that misbehaved and what it did before the fix.
"""

from __future__ import annotations

import pytest

import memplan
from memplan.errors import OptionError


def _graph() -> memplan.Graph:
    b = memplan.GraphBuilder("tiny")
    b.input("x", 256)
    b.node("a", "U", ["x"], b.intermediate("t", 256))
    b.node("b", "U", ["t"], b.output("y", 256))
    return b.build()


def _calls():
    """(label, call) of each wrong call of an entry point that was Python's bare TypeError."""
    g = _graph()
    doc = g.to_dict()
    plan_doc = memplan.plan(g).to_dict()
    s = memplan.serial_schedule(g)
    order, streams = ["a", "b"], {"a": 0, "b": 0}
    return [
        ("plan_from_dict source by position", lambda: memplan.plan_from_dict(plan_doc, "p.json"), "source"),
        ("plan_from_dict misspelt keyword", lambda: memplan.plan_from_dict(plan_doc, sorce="p.json"), "source"),
        ("plan_from_dict no document", lambda: memplan.plan_from_dict(), "doc"),
        ("graph_from_dict source by position", lambda: memplan.graph_from_dict(doc, "g.json"), "source"),
        ("graph_from_dict misspelt keyword", lambda: memplan.graph_from_dict(doc, sorce="g.json"), "source"),
        ("graph_from_dict given twice", lambda: memplan.graph_from_dict(doc, doc=doc), "doc"),
        ("schedule_with_events without stream_of", lambda: memplan.schedule_with_events(g, order), "stream_of"),
        ("schedule_with_events misspelt keyword", lambda: memplan.schedule_with_events(g, order, stream_off=streams),
         "stream_of"),
        ("schedule_with_events too many", lambda: memplan.schedule_with_events(g, order, streams, 2), "2"),
        ("serial_schedule given twice", lambda: memplan.serial_schedule(g, graph=g), "graph"),
        ("serial_schedule no graph", lambda: memplan.serial_schedule(), "graph"),
        ("build_happens_before unknown keyword", lambda: memplan.build_happens_before(g, s, check=False), "check"),
        ("build_happens_before no schedule", lambda: memplan.build_happens_before(g), "schedule"),
        ("GraphBuilder misspelt keyword", lambda: memplan.GraphBuilder("g", alignmnet=512), "alignment"),
    ]


@pytest.mark.parametrize("label", [c[0] for c in _calls()])
def test_wrong_calls_of_public_functions_are_option_errors(label):
    """``plan_from_dict(doc, "p.json")`` (the keyword-only ``source`` by position), ``graph_from_dict(doc,
    sorce=...)``, ``schedule_with_events(g, order)``, ``serial_schedule(g, graph=g)``, ``build_happens_before(g)``
    and ``GraphBuilder("g", alignmnet=512)`` were Python's bare TypeErrors ("takes 1 positional argument but 2 were
    given", "got an unexpected keyword argument"), while README's API table and every other public entry point
    (``plan``, ``verify``, ``load_graph``, ...) give an ``OptionError`` (still a TypeError) naming the argument."""
    (call, named), = [(c[1], c[2]) for c in _calls() if c[0] == label]
    with pytest.raises(OptionError) as info:
        call()
    assert isinstance(info.value, TypeError)   # (what Python raised before: callers catching it still do)
    assert named in str(info.value)


def test_right_calls_still_work_and_keep_their_signatures():
    """The wrappers change no result and keep each function's signature for ``help``."""
    import inspect

    g = _graph()
    s = memplan.schedule_with_events(g, ["a", "b"], {"a": 0, "b": 0})
    assert s == memplan.serial_schedule(g)
    assert memplan.build_happens_before(g, schedule=s).num_streams == 1
    assert memplan.graph_from_dict(g.to_dict(), source="g.json") == g
    p = memplan.plan(g)
    assert memplan.plan_from_dict(p.to_dict(), source="p.json").to_json() == p.to_json()
    assert memplan.GraphBuilder(name="g", alignment=512).build().alignment == 512
    assert list(inspect.signature(memplan.schedule_with_events).parameters) == ["graph", "order", "stream_of"]
    assert list(inspect.signature(memplan.plan_from_dict).parameters) == ["doc", "source"]
