"""Round trips, round 27: graph -> JSON -> graph, plan -> JSON -> plan, through dicts, files and stdout.

The first tests pin the leftovers fixed this round (ids of a ``str`` subclass, ``attrs`` shared with the caller,
repeated schedule events, which Node a graph keeps); the properties after them run random graphs
(``strategies.graphs``), unicode ids, huge integers and alignment edges through every round trip, and demand
the same document and the same plan bytes back.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from enum import Enum

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

import memplan
from memplan import Event, Graph, GraphBuilder, Node, Schedule, Tensor, graph_from_dict, plan_from_dict
from memplan.cli import main
from memplan.errors import GraphError, ScheduleError, UnsafePlan
from memplan.graph import MAX_TENSOR_BYTES

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Ident(str):
    """An id that is equal only to itself (``is``): two ``Ident("x")`` are distinct to a dict."""

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other


class Caseless(str):
    """An id that compares and hashes case-blind: ``Caseless("X") == "x"``."""

    def __hash__(self):
        return hash(self.lower())

    def __eq__(self, other):
        return isinstance(other, str) and self.lower() == other.lower()

    def __ne__(self, other):
        return not self == other


class Colour(str, Enum):
    """A str-mixin enum: its characters are "red", its ``str()`` is "Colour.RED"."""

    RED = "red"


def _json_roundtrip_graph(g: Graph) -> Graph:
    return graph_from_dict(json.loads(json.dumps(g.to_dict())))


def _chain_graph(cls=str) -> Graph:
    b = GraphBuilder(cls("g"))
    x = b.input(cls("x"), 1000)
    t = b.node(cls("n0"), cls("RELU"), [x], b.intermediate(cls("t"), 3000))
    b.node(cls("n1"), cls("ADD"), [t, x], b.output(cls("y"), 1000), inplace={cls("y"): t}, group=cls("g1"))
    return b.build()


# ---- ids of a str subclass -------------------------------------------------------------------------------------


def test_ids_equal_only_to_themselves_are_refused_as_duplicates():
    """Two tensors ``Ident("x")`` (a class comparing by identity) passed the graph check as distinct ids, were saved
    as a file repeating the id "x", and ``load_graph`` refused the file it had just written. The graph takes an id
    for its characters, as its JSON does: the duplicate is refused up front, naming it."""
    b = GraphBuilder("g")
    x1, x2 = b.input(Ident("x"), 1000), b.input(Ident("x"), 2000)
    b.node("n", "ADD", [x1, x2], b.output("y", 1000))
    with pytest.raises(GraphError, match="duplicate tensor id 'x'"):
        b.build()


def test_a_caseless_id_does_not_name_another_tensor():
    """A node reading ``Caseless("X")`` found tensor "x" (the class hashes and compares case-blind): the graph was
    built, planned and saved, and its file named an input "X" that no tensor has. Now refused, naming "X"."""
    b = GraphBuilder("g")
    b.input("x", 1000)
    b.node("n", "RELU", [Caseless("X")], b.output("y", 1000))
    with pytest.raises(GraphError, match="reads unknown tensor 'X'"):
        b.build()


@pytest.mark.parametrize("cls", [Ident, Caseless, str])
def test_ids_of_a_str_subclass_plan_as_their_json(cls):
    """Every id, op, group and name of a str subclass is kept as the plain str of its characters: the graph, its
    JSON round trip and their plans are the same bytes (the graph's identity-comparing ids now find their tensors
    by their characters)."""
    g = _chain_graph(cls)
    assert {type(v) for t in g.tensors for v in (t.id, t.kind, t.view_of) if v is not None} == {str}
    assert {type(v) for n in g.nodes for v in (n.id, n.op, n.group, *n.inputs, *n.outputs, *(i for p in n.inplace for i in p)) if v} == {str}
    assert type(g.name) is str
    g2 = _json_roundtrip_graph(g)
    assert g2.to_dict() == g.to_dict()
    assert memplan.plan(g, solver="greedy").to_json() == memplan.plan(g2, solver="greedy").to_json()


def test_plan_from_dict_reads_an_enum_id_as_its_characters():
    """``plan_from_dict`` took each id through ``str()``, which for a str-mixin enum is "Colour.RED", not the "red"
    ``json`` writes: a plan document built in Python read back with other ids than its own JSON."""
    g = _chain_graph()
    doc = memplan.plan(g, solver="greedy").to_dict()
    first = doc["tensors"][0]["id"]
    Tid = Enum("Tid", {"A": first}, type=str)
    doc["tensors"][0]["id"] = Tid.A
    doc["graph"] = Enum("Name", {"G": doc["graph"]}, type=str).G
    p = plan_from_dict(doc)
    assert p.tensors[0][0] == first and type(p.tensors[0][0]) is str and type(p.graph) is str
    assert p.to_json() == memplan.plan(g, solver="greedy").to_json()


def test_a_schedule_of_caseless_ids_names_the_graphs_nodes():
    """A schedule listing ``Caseless("N0")`` found node "n0": the plan was verified (its ids compared case-blind) and
    written with an order naming "N0", a node the graph does not have. The schedule's ids are plain now, and
    refused as unknown."""
    g = _chain_graph()
    s = Schedule((Caseless("N0"), "n1"), (0, 0))
    assert type(s.order[0]) is str
    with pytest.raises(ScheduleError, match="unknown node 'N0'"):
        memplan.plan(g, s)


def test_a_plan_in_code_with_caseless_ids_is_checked_by_their_characters():
    """A Plan built in code placing ``Caseless("X")`` passed the pairing check against a graph of tensor "x" (and
    ``verify``), and its file named a tensor "X" that the graph does not have."""
    g = _chain_graph()
    p = memplan.plan(g, solver="greedy")
    odd = dataclasses.replace(p, tensors=tuple((Caseless(t.upper()) if t == "x" else t, o, s) for t, o, s in p.tensors))
    with pytest.raises(UnsafePlan, match="unknown tensor 'X'"):
        memplan.verify(g, odd)


# ---- attrs: the graph's own ----------------------------------------------------------------------------------


def _doc_with_attrs() -> dict:
    return {"format": "memplan.graph/1", "name": "g",
            "tensors": [{"id": "x", "size": 64, "kind": "input", "attrs": {"shape": [4, 4], "meta": {"a": [1]}}},
                        {"id": "y", "size": 64, "kind": "output"}],
            "nodes": [{"id": "n", "op": "RELU", "inputs": ["x"], "outputs": ["y"], "attrs": {"k": {"a": [1]}}}]}


def test_graph_from_dict_keeps_attrs_of_its_own():
    """``graph_from_dict`` kept the caller's attrs objects: editing the document afterwards (its shape list, a
    nested object) changed the graph, and so its cost model and what ``save_graph`` writes."""
    doc = _doc_with_attrs()
    g = graph_from_dict(doc)
    before = json.dumps(g.to_dict())
    doc["tensors"][0]["attrs"]["shape"].append(9)
    doc["tensors"][0]["attrs"]["meta"]["a"].append(2)
    doc["tensors"][0]["attrs"]["new"] = 1
    doc["nodes"][0]["attrs"]["k"]["b"] = 3
    assert json.dumps(g.to_dict()) == before


def test_to_dict_hands_out_attrs_of_its_own():
    """``Graph.to_dict`` copied each attrs one level deep: a caller editing the returned document's shape (to write
    a variant) edited the graph's."""
    g = graph_from_dict(_doc_with_attrs())
    before = json.dumps(g.to_dict())
    d = g.to_dict()
    d["tensors"][0]["attrs"]["shape"].append(7)
    d["tensors"][0]["attrs"]["meta"]["a"].clear()
    d["nodes"][0]["attrs"]["k"]["b"] = 3
    assert json.dumps(g.to_dict()) == before


def test_load_graph_and_graph_from_dict_agree(tmp_path):
    """``load_graph`` keeps the attrs of the document it parsed itself (nobody else holds it): the same graph."""
    doc = _doc_with_attrs()
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    assert memplan.load_graph(str(path)).to_dict() == graph_from_dict(doc).to_dict()


# ---- repeated events -----------------------------------------------------------------------------------------


def _fork() -> Graph:
    b = GraphBuilder("g")
    x = b.input("x", 1000)
    a = b.node("a", "RELU", [x], b.intermediate("ta", 1000))
    c = b.node("c", "RELU", [x], b.intermediate("tc", 1000))
    b.node("d", "ADD", [a, c], b.output("y", 1000))
    return b.build()


def test_a_schedule_keeps_one_event_per_pair():
    """A Schedule with one event twice (same after and before) kept both: ``plan()`` wrote the event twice (the
    runtime recorded and waited it twice) and ``max_events=1`` refused a schedule holding one event. The first of
    each pair is kept, in order (the contract's happens-before is unchanged)."""
    g = _fork()
    s = memplan.schedule_with_events(g, ["a", "c", "d"], {"a": 0, "c": 1, "d": 0})
    twice = Schedule(s.order, s.streams, s.events + (Event("c", "d"),) + s.events)
    assert twice.events == (Event("c", "d"),) and twice == s
    p = memplan.plan(g, twice, max_events=1)
    assert p.events == (("c", "d"),)
    assert p.to_json() == memplan.plan(g, s, max_events=1).to_json()


def test_repeated_events_keep_their_first_order():
    g = _fork()
    s = Schedule(("a", "c", "d"), (1, 2, 0), (Event("c", "d"), Event("a", "d"), Event("c", "d"), Event("a", "d")))
    assert s.events == (Event("c", "d"), Event("a", "d"))
    memplan.plan(g, s)   # still verified


def test_a_malformed_event_is_still_named():
    """Deduplication leaves what is no Event (or holds unhashable ids) for check_schedule to name."""
    g = _fork()
    with pytest.raises(ScheduleError, match="event #0"):
        memplan.plan(g, Schedule(("a", "c", "d"), (0, 1, 0), (("c", "d"), ("c", "d"))))
    with pytest.raises(ScheduleError, match="event #0"):
        memplan.plan(g, Schedule(("a", "c", "d"), (0, 1, 0), (Event(["c"], "d"), Event(["c"], "d"))))


def test_a_plan_file_with_a_repeated_event_round_trips(tmp_path):
    """The contract does not forbid a repeated event in a plan file: it is read, verified and written back as it
    was (``plan_to_dict`` of ``plan_from_dict`` is the document)."""
    g = _fork()
    doc = memplan.plan(g, memplan.schedule_with_events(g, ["a", "c", "d"], {"a": 0, "c": 1, "d": 0})).to_dict()
    doc["events"] = doc["events"] * 2
    p = plan_from_dict(doc)
    memplan.verify(g, p)
    assert p.to_dict() == doc


# ---- which Node a graph keeps ------------------------------------------------------------------------------------


def test_a_graph_keeps_plain_nodes_and_replaces_the_others():
    """The documented rule (``Graph``'s docstring): a Tensor or Node already in plain form is kept as that very
    object; one holding a list, a numpy number, ``attrs=None`` or an id of a str subclass is replaced by its plain
    equivalent, found by id."""
    x, y = Tensor("x", 256, "input"), Tensor("y", np.int64(256), "output")
    plain = Node("n0", "RELU", ("x",), ("t",))
    listed = Node("n1", "ADD", ["t", "x"], ["y"], attrs=None)
    named = Node(Caseless("n2"), "RELU", ("x",), ("u",))
    t, u = Tensor("t", 256), Tensor("u", 256, "output")
    g = Graph("g", (x, y, t, u), (plain, listed, named))
    assert g.nodes[0] is plain and g.tensors[0] is x and g.tensors[2] is t
    assert g.nodes[1] is not listed and g.nodes[1] == dataclasses.replace(listed, inputs=("t", "x"), outputs=("y",))
    assert g.node("n1") is g.nodes[1] and g.node("n2") is g.nodes[2] and type(g.nodes[2].id) is str
    assert g.tensors[1] is not y and type(g.tensors[1].size) is int and g.tensor("y") is g.tensors[1]
    hash(g)   # every part hashable


# ---- properties over random graphs -------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_graph_dict_json_graph_is_identity(data):
    """graph -> dict -> JSON text -> graph -> dict is the same document, and both graphs plan to the same bytes
    (one stream and a random multi-stream schedule)."""
    g = data.draw(graphs())
    doc = g.to_dict()
    g2 = graph_from_dict(json.loads(json.dumps(doc)))
    assert g2.to_dict() == doc and g2 == g
    order, stream_of = data.draw(schedules(g))
    for gg in (g, g2):
        s = memplan.schedule_with_events(gg, order, stream_of)
        assert memplan.plan(gg, s, solver="greedy").to_json() == memplan.plan(g, s, solver="greedy").to_json()


@SETTINGS
@given(st.data())
def test_plan_dict_plan_is_identity(data):
    """plan -> dict -> JSON text -> plan -> dict is the same document (timings kept, extra fields too), and the
    plan read back is equal and still verifies."""
    g = data.draw(graphs())
    order, stream_of = data.draw(schedules(g))
    p = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of), solver="greedy")
    extra = data.draw(st.dictionaries(st.text(min_size=1).filter(lambda k: k not in memplan.planfile.PLAN_FIELDS),
                                      st.recursive(st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
                                                   | st.text(), lambda c: st.lists(c, max_size=3)
                                                   | st.dictionaries(st.text(), c, max_size=3), max_leaves=6),
                                      max_size=3))
    p = dataclasses.replace(p, extra=extra)
    doc = p.to_dict(timings=True)
    p2 = plan_from_dict(json.loads(json.dumps(doc)))
    assert p2.to_dict(timings=True) == doc and p2 == p
    assert p2.to_json(timings=True) == p.to_json(timings=True)
    memplan.verify(g, p2)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_files_and_stdout_round_trip(tmp_path, capsysbinary, data):
    """save_graph / load_graph / save_plan / load_plan, and ``memplan plan -o -`` (stdout), give the library's bytes."""
    g = data.draw(graphs(max_nodes=6))
    gpath, ppath = str(tmp_path / "g.json"), str(tmp_path / "p.json")
    memplan.save_graph(g, gpath)
    g2 = memplan.load_graph(gpath)
    assert g2.to_dict() == g.to_dict()
    p = memplan.plan(g, solver="greedy")
    memplan.save_plan(p, ppath)
    with open(ppath, encoding="utf-8") as f:
        assert f.read() == p.to_json()
    assert memplan.load_plan(ppath).to_json() == p.to_json()
    capsysbinary.readouterr()
    assert main(["plan", gpath, "-o", "-", "-q", "--solver", "greedy"]) == 0
    assert capsysbinary.readouterr().out == p.to_json().encode()


# ---- unicode ids ------------------------------------------------------------------------------------------------

_ID_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)


@st.composite
def unicode_graphs(draw) -> Graph:
    """A chain whose ids are random text, always holding an NFC / NFD pair ("\u00e9" and "e\u0301") as two tensors,
    and sometimes ids with lone surrogates (valid JSON: "\\ud800")."""
    names = draw(st.lists(_ID_TEXT, min_size=2, max_size=6, unique=True))
    if draw(st.booleans()):
        names.append(draw(st.sampled_from(["\ud800", "a\udfff", "\udc00\ud83d"])))
    nfc, nfd = unicodedata.normalize("NFC", "\u00e9"), unicodedata.normalize("NFD", "\u00e9")
    names = [n for n in names if n not in (nfc, nfd)] + [nfc, nfd]
    b = GraphBuilder(draw(_ID_TEXT), alignment=draw(st.sampled_from([1, 2, 256, 1 << 48])))
    prev = b.input(names[0], draw(st.integers(0, 5000)))
    for i, tid in enumerate(names[1:]):
        prev = b.node(f"{tid}\u0300{i}", tid, [prev], b.tensor(tid, draw(st.integers(0, 5000)),
                                                               "output" if i == len(names) - 2 else "intermediate"))
    return b.build()


@SETTINGS
@given(unicode_graphs())
def test_unicode_ids_round_trip(g):
    """NFC and NFD spellings stay two ids through dicts, JSON and plans (nothing normalizes them), and lone
    surrogates (valid JSON escapes, accepted as ids since round 18) come back as they went."""
    ids = [t.id for t in g.tensors]
    assert len(set(ids)) == len(ids)
    text = json.dumps(g.to_dict(), ensure_ascii=True)
    g2 = graph_from_dict(json.loads(text))
    assert [t.id for t in g2.tensors] == ids and g2.to_dict() == g.to_dict()
    p = memplan.plan(g, solver="greedy")
    assert memplan.plan(g2, solver="greedy").to_json() == p.to_json()
    assert plan_from_dict(json.loads(p.to_json())).to_json() == p.to_json()


def test_unicode_ids_through_files(tmp_path):
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    b = GraphBuilder("\u30b0\u30e9\u30d5\ud800")
    b.node("n\ud83d", "OP", [b.input(nfc, 300)], b.intermediate(nfd, 300))
    b.node("m", "OP", [nfd, nfc], b.output("\U0001f600", 10))
    g = b.build()
    memplan.save_graph(g, str(tmp_path / "g.json"))
    g2 = memplan.load_graph(str(tmp_path / "g.json"))
    assert g2.to_dict() == g.to_dict() and g2.tensor(nfd).kind == "intermediate"
    p = memplan.plan(g, solver="greedy")
    p.save(str(tmp_path / "p.json"))
    assert memplan.load_plan(str(tmp_path / "p.json")).to_json() == p.to_json() == memplan.plan(g2, solver="greedy").to_json()


# ---- huge integers and alignment edges -------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_huge_sizes_and_alignments_round_trip(data):
    """Sizes up to ``MAX_TENSOR_BYTES``, alignments from 1 to 2**48, views at the far end of their parents and
    attrs holding integers past int64 survive every round trip, with the same plan bytes."""
    align = data.draw(st.sampled_from([1, 2, 4096, 1 << 47, MAX_TENSOR_BYTES]))
    big = data.draw(st.integers(MAX_TENSOR_BYTES - (1 << 20), MAX_TENSOR_BYTES))
    b = GraphBuilder("huge", alignment=align)
    x = b.input("x", big, note=data.draw(st.integers(-(1 << 200), 1 << 200)))
    off = data.draw(st.integers(0, big))
    v = b.view("v", x, big - off, off)
    t = b.node("n0", "OP", [v], b.intermediate("t", data.draw(st.integers(0, MAX_TENSOR_BYTES))))
    b.node("n1", "OP", [t, x], b.output("y", data.draw(st.sampled_from([0, 1, align - 1 or 1, MAX_TENSOR_BYTES]))))
    g = b.build()
    g2 = graph_from_dict(json.loads(json.dumps(g.to_dict())))
    assert g2.to_dict() == g.to_dict()
    p = memplan.plan(g, solver="greedy")
    assert all(o % align == 0 for tid, o, _ in p.tensors if o is not None and tid != "v")
    assert memplan.plan(g2, solver="greedy").to_json() == p.to_json()
    doc = json.loads(p.to_json())
    assert plan_from_dict(doc).to_dict() == doc


def test_plan_integers_at_the_int64_edge_round_trip():
    """A plan document's integers may reach 2**63 - 1 (and offsets -2**63): read and written back unchanged."""
    top = (1 << 63) - 1
    doc = {"format": "memplan.plan/1", "graph": "g", "alignment": 1 << 62, "arena_bytes": top,
           "lower_bound_bytes": top, "streams": 1024, "order": [{"node": "n", "stream": 1023}], "events": [],
           "tensors": [{"id": "x", "offset": -(1 << 63), "size": top}, {"id": "w", "offset": None, "size": 0}],
           "solver": {"big": 1 << 100}, "extra": [1 << 64]}
    assert plan_from_dict(json.loads(json.dumps(doc))).to_dict() == doc


# ---- found while hunting: keys of a str subclass, a lone carriage return in a CSV id --------------------------


def test_attrs_keys_of_a_str_subclass_that_json_writes_twice_are_refused(tmp_path):
    """Two attrs keys ``Ident("a")`` are two keys to Python and one to JSON: ``save_graph`` wrote a file repeating
    "a", which ``load_graph`` refused. The save is refused now, naming the tensor and the key, as ``{1: .., "1": ..}``
    was; a plan's solver block likewise."""
    b = GraphBuilder("g")
    b.node("n", "OP", [b.input("x", 8, meta={Ident("a"): 1, Ident("a"): 2})], b.output("y", 8))
    g = b.build()
    with pytest.raises(GraphError, match="tensor 'x'.*'a'"):
        memplan.save_graph(g, str(tmp_path / "g.json"))
    assert not (tmp_path / "g.json").exists()
    p = dataclasses.replace(memplan.plan(_fork(), solver="greedy"), solver={Ident("k"): 1, Ident("k"): 2})
    with pytest.raises(memplan.errors.PlanFormatError, match="'solver'"):
        p.to_json()


@pytest.mark.parametrize("cell", ["a\rb", "\u00e9\r\u00e9\r"])
def test_a_csv_id_holding_a_carriage_return_reads_back(cell, tmp_path):
    """``format_csv`` (``memplan csv -o``) wrote an id holding a lone "\\r" (quoted in the input) bare: ``csv`` quotes
    only the characters of its "\\n" line terminator, the reader takes "\\r" for a line end, and the solution file
    split that row in two ("1 fields, expected 5"). Such a row is written quoted."""
    from memplan.io.minimalloc import format_csv, parse_csv

    quoted = cell.replace('"', '""')
    table = parse_csv(f'id,lower,upper,size\n"{quoted}",0,2,8\nb,1,3,8\n')
    text = format_csv(table, np.array([0, 8]))
    back = parse_csv(text)
    assert back.ids == table.ids and back.rows[1] == ("b", "1", "3", "8", "8")
    assert format_csv(back, np.array([0, 8])) == text
    assert text.endswith("\nb,1,3,8,8\n")   # rows without one are written as before


def test_schedule_with_events_reads_an_order_of_a_str_subclass_by_its_characters():
    """``schedule_with_events(g, [Ident("a"), ...], {"a": 0, ...})`` looked the stream up by the subclass's hash and
    refused node 'a' for a stream ``None`` the caller never gave; the order is read by its characters now."""
    g = _fork()
    s = memplan.schedule_with_events(g, [Ident("a"), "c", "d"], {"a": 0, "c": 1, "d": 0})
    assert s == memplan.schedule_with_events(g, ["a", "c", "d"], {"a": 0, "c": 1, "d": 0})
    assert type(s.order[0]) is str


def test_an_extra_field_of_a_str_subclass_naming_a_plan_field_is_refused(tmp_path):
    """``extra={Ident("devices"): 2}`` passed the check that an extra field names no plan field (the set lookup used
    the subclass's hash) and a single-device plan was saved as a file declaring two devices, which ``load_plan``
    refused ("'device_arena_bytes' must list 2 byte counts")."""
    p = dataclasses.replace(memplan.plan(_fork(), solver="greedy"), extra={Ident("devices"): 2})
    with pytest.raises(memplan.errors.PlanFormatError, match="extra.*'devices'"):
        p.save(str(tmp_path / "p.json"))
    assert not (tmp_path / "p.json").exists()


_JSON_LEAF = (st.none() | st.booleans() | st.integers(-(1 << 80), 1 << 80) | st.floats(allow_nan=False, allow_infinity=False)
              | st.text(st.characters(blacklist_categories=("Cs",)), max_size=4) | st.sampled_from(["\ud800", "e\u0301"]))
_JSON = st.recursive(_JSON_LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                     max_leaves=8)


@SETTINGS
@given(st.data())
def test_documents_with_random_attrs_round_trip(tmp_path_factory, data):
    """A document whose tensors and nodes carry random JSON attrs (unicode keys, integers past int64, -0.0, the
    smallest subnormal, nesting): ``graph_from_dict`` then ``to_dict`` gives it back, as does ``save_graph`` then
    ``load_graph``; the graph shares no object with either document."""
    g = data.draw(graphs(max_nodes=4))
    doc = g.to_dict()
    for entry in doc["tensors"] + doc["nodes"]:
        attrs = data.draw(st.dictionaries(st.text(max_size=4), _JSON, max_size=3))
        if attrs:
            entry["attrs"] = attrs
    text = json.dumps(doc)
    g2 = graph_from_dict(doc)
    assert g2.to_dict() == doc
    path = str(tmp_path_factory.mktemp("docs") / "g.json")
    memplan.save_graph(g2, path)
    assert memplan.load_graph(path).to_dict() == doc
    for entry in doc["tensors"] + doc["nodes"]:   # the caller's edits stay the caller's
        entry.setdefault("attrs", {})["edited"] = [1]
    assert json.dumps(g2.to_dict()) == text
