"""CONTRACT.md line by line: each normative statement with a minimal hand-written case (round 31).

Why it exists: the fuzzers (``oracle_fuzz``, ``verify_fuzz30``) and ``contract_fields`` check the library
against the contract on many random inputs, but a statement of the contract that no generator happens to
produce (a required field left out, a boundary exactly equal, an unread input) is covered only by chance.
Here each statement has its own smallest case, named after it: the loaders take every legal form of a field
(absent when optional, null, in any order, beside unknown fields, at its edge values) and refuse every
illegal one naming the field; ``verify`` accepts each plan the contract calls safe and rejects each it calls
unsafe, under the rule the contract gives, and agrees with the independent ``oracle``; plans round-trip.
"""

from __future__ import annotations

import json
import random

import pytest
from cli_contract import assert_bad_input
from contract_fields import problems
from oracle import findings, optimal_arena, per_node_bound

import memplan
from memplan.cli import main
from memplan.verify import check


# ---- tiny document builders ------------------------------------------------------------------------------
def G(tensors: list[dict], nodes: list[dict], **top) -> dict:
    """A ``memplan.graph/1`` document named "g"."""
    return {"format": "memplan.graph/1", "name": "g", "tensors": tensors, "nodes": nodes, **top}


def T(tid: str, size: int, kind: str = "intermediate", **more) -> dict:
    return {"id": tid, "size": size, "kind": kind, **more}


def N(nid: str, ins: list[str], outs: list[str], **more) -> dict:
    return {"id": nid, "op": "OP", "inputs": ins, "outputs": outs, **more}


def P(order, events, tensors, arena: int, *, streams: int = 2, alignment: int = 256, lower: int = 0) -> dict:
    """A ``memplan.plan/1`` document for graph "g": order ``(node, stream)``, events ``(after, before)``,
    tensors ``(id, offset, size)``."""
    return {"format": "memplan.plan/1", "graph": "g", "alignment": alignment, "arena_bytes": arena,
            "lower_bound_bytes": lower, "streams": streams,
            "order": [{"node": n, "stream": s} for n, s in order],
            "events": [{"after": a, "before": b} for a, b in events],
            "tensors": [{"id": t, "offset": o, "size": s} for t, o, s in tensors],
            "solver": {"name": "hand", "status": "HEURISTIC"}}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:   # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# ---- the deviation found this round: a tensor without "kind" -------------------------------------------------
def test_a_graph_tensor_without_kind_is_refused_naming_it():
    """CONTRACT.md: ``tensors[].kind`` is one of four kinds; unlike alignment, view_of, cost, inplace and
    group it is not optional and has no default. The loader read a missing kind as "intermediate": an
    output whose "kind" key was misspelt was planned as an intermediate and its bytes handed to a later
    tensor right after its producer (a plan verify called safe, wrong for the graph the file meant)."""
    doc = G([T("x", 256, "input"), {"id": "y", "size": 256, "knd": "output"}, T("a", 256), T("z", 256, "output")],
            [N("n1", ["x"], ["y"]), N("n2", ["x"], ["a"]), N("n3", ["a"], ["z"])])
    with pytest.raises(memplan.GraphError, match=r"tensor 'y' has no 'kind'"):
        memplan.graph_from_dict(doc)


@pytest.mark.parametrize("key", ["inputs", "outputs"])
def test_a_graph_node_without_inputs_or_outputs_is_refused_naming_it(key):
    """``nodes[].inputs`` / ``outputs`` are not optional either. Read as [], a misspelt ``"input"`` key made a
    node that reads nothing: the tensor it does read had no reader left, so a plan could hand its bytes to any
    later tensor before the node ran (and verify agreed: for the graph as read, that was safe). A node without
    ``outputs`` was mostly refused already, as a tensor without producer; now the message names the field."""
    node = N("n2", ["a"], ["y"])
    node["input" if key == "inputs" else "output"] = node.pop(key)
    doc = G([T("x", 256, "input"), T("a", 256), T("y", 256, "output")], [N("n1", ["x"], ["a"]), node])
    with pytest.raises(memplan.GraphError, match=rf"node 'n2' has no '{key}'"):
        memplan.graph_from_dict(doc)


def test_cli_refuses_a_graph_file_tensor_without_kind(tmp_path, capsys):
    g = tmp_path / "g.json"
    g.write_text(json.dumps(G([{"id": "x", "size": 8}], [])))
    out = tmp_path / "p.json"
    code, _, err = run(capsys, "plan", str(g), "-o", str(out))
    assert_bad_input(code, err, "g.json", "'x'", "'kind'")
    assert not out.exists()


# ---- graph: every legal form is taken ------------------------------------------------------------------------
def _base_graph() -> dict:
    return G([T("x", 256, "input"), T("w", 64, "weight"), T("q", 256), T("y", 256, "output")],
             [N("mm", ["w", "x"], ["q"]), N("add", ["q", "x"], ["y"])], alignment=256)


def _without(key):
    def edit(d):
        d.pop(key)
    return edit


def _set(path, value):
    """An edit setting ``d[path[0]][path[1]]...`` to ``value``."""
    def edit(d):
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


def _shuffled(d):
    """Every object of the document with its keys in another order (JSON objects are unordered)."""
    rng = random.Random(31)
    items = list(d.items())
    rng.shuffle(items)
    d.clear()
    for k, v in items:
        d[k] = v
        if isinstance(v, list):
            for i, e in enumerate(v):
                if isinstance(e, dict):
                    es = list(e.items())
                    rng.shuffle(es)
                    v[i] = dict(es)


GRAPH_LEGAL = [
    ("alignment absent: default 256", _without("alignment"), lambda g: g.alignment == 256),
    ("alignment given", _set(["alignment"], 1024), lambda g: g.alignment == 1024),
    ("alignment 1", _set(["alignment"], 1), lambda g: g.alignment == 1),
    ("fields in any order", _shuffled, lambda g: g.tensor("w").kind == "weight"),
    ("unknown top-level field ignored", _set(["x-other-tool"], {"a": [1]}), lambda g: True),
    ("unknown tensor field ignored", _set(["tensors", 0, "dtype"], "f16"), lambda g: True),
    ("unknown node field ignored", _set(["nodes", 0, "x-note"], None), lambda g: True),
    ("size 0", _set(["tensors", 2, "size"], 0), lambda g: g.tensor("q").size == 0),
    ("cost absent", lambda d: None, lambda g: g.node("mm").cost is None),
    ("cost 0", _set(["nodes", 0, "cost"], 0), lambda g: g.node("mm").cost == 0),
    ("cost a fraction of a microsecond", _set(["nodes", 0, "cost"], 3.1), lambda g: g.node("mm").cost == 3.1),
    ("inplace {output: input}", _set(["nodes", 1, "inplace"], {"y": "q"}), lambda g: g.node("add").inplace == (("y", "q"),)),
    ("inplace empty", _set(["nodes", 1, "inplace"], {}), lambda g: g.node("add").inplace == ()),
    ("group a string", _set(["nodes", 0, "group"], "f"), lambda g: g.node("mm").group == "f"),
    ("group null", _set(["nodes", 0, "group"], None), lambda g: g.node("mm").group is None),
    ("view_of null: a root", _set(["tensors", 2, "view_of"], None), lambda g: g.is_root(g.tensor_index["q"])),
]


@pytest.mark.parametrize("label,edit,holds", GRAPH_LEGAL, ids=[c[0] for c in GRAPH_LEGAL])
def test_graph_loader_takes_every_legal_form(label, edit, holds):
    doc = _base_graph()
    edit(doc)
    g = memplan.graph_from_dict(doc)
    assert holds(g), label
    assert memplan.graph_from_dict(g.to_dict()) == g   # and writes it back as a document meaning the same


def _views(*views: dict) -> dict:
    """x (input) -> p -> r (intermediate, 1024 bytes), its views read by c, which writes y."""
    return G([T("x", 1024, "input"), T("r", 1024), *views, T("y", 256, "output")],
             [N("p", ["x"], ["r"]), N("c", [v["id"] for v in views] + ["r"], ["y"])])


@pytest.mark.parametrize("view,offset_in_root", [
    (T("v", 512, view_of="r", view_offset=512), 512),            # ends exactly at its parent's end
    (T("v", 0, view_of="r", view_offset=1024), 1024),            # a zero-size view at the very end
    (T("v", 1024, view_of="r"), 0),                              # view_offset left out with view_of: 0
    (T("v", 100, view_of="r", view_offset=3), 3),                # a view needs no alignment
])
def test_graph_loader_takes_views_at_their_edges(view, offset_in_root):
    g = memplan.graph_from_dict(_views(view))
    v = g.tensor_index["v"]
    assert g.root[v] == g.tensor_index["r"] and g.offset_in_root(v) == offset_in_root


def test_view_chains_add_their_offsets():
    """``[parent.offset + view_offset, + size)`` with the parent itself a view: offsets add up."""
    g = memplan.graph_from_dict(_views(T("v1", 512, view_of="r", view_offset=512),
                                       T("v2", 256, view_of="v1", view_offset=256)))
    assert g.offset_in_root(g.tensor_index["v2"]) == 768


# ---- graph: every illegal form is refused, naming the field ---------------------------------------------------
GRAPH_ILLEGAL = [
    ("format absent", _without("format"), "format"),
    ("format of another version", _set(["format"], "memplan.graph/2"), "memplan.graph/2"),
    ("alignment null", _set(["alignment"], None), "alignment"),
    ("alignment not a power of two", _set(["alignment"], 384), "alignment"),
    ("alignment a float", _set(["alignment"], 256.0), "alignment"),
    ("size negative", _set(["tensors", 2, "size"], -1), "'q'"),
    ("size a float", _set(["tensors", 2, "size"], 256.0), "'q': size"),
    ("size true", _set(["tensors", 2, "size"], True), "'q': size"),
    ("size absent", lambda d: d["tensors"][2].pop("size"), "'q' has no 'size'"),
    ("kind absent", lambda d: d["tensors"][2].pop("kind"), "'q' has no 'kind'"),
    ("node inputs absent", lambda d: d["nodes"][1].pop("inputs"), "'add' has no 'inputs'"),
    ("node outputs absent", lambda d: d["nodes"][0].pop("outputs"), "'mm' has no 'outputs'"),
    ("kind unknown", _set(["tensors", 2, "kind"], "activation"), "'q': unknown kind"),
    ("cost negative", _set(["nodes", 0, "cost"], -1), "'mm': cost"),
    ("cost a string", _set(["nodes", 0, "cost"], "3"), "'mm': cost"),
    ("inplace a list", _set(["nodes", 1, "inplace"], [["y", "q"]]), "'add': 'inplace'"),
    ("inplace swapped", _set(["nodes", 1, "inplace"], {"q": "y"}), "inplace output 'q'"),
    ("inplace naming another node's input", _set(["nodes", 1, "inplace"], {"y": "w"}), "inplace input 'w'"),
    ("group not a string", _set(["nodes", 0, "group"], 1), "'mm': group"),
    ("intermediate with no producer", lambda d: d["nodes"][0]["outputs"].clear(), "'q' has no producing node"),
    ("input produced", lambda d: d["nodes"][1]["outputs"].append("x"), "'x' is an input"),
    ("weight produced", lambda d: d["nodes"][1]["outputs"].append("w"), "'w' is a weight"),
    ("tensor produced twice", lambda d: d["nodes"][1]["outputs"].append("q"), "'q' is produced twice"),
    ("nodes out of topological order", lambda d: d["nodes"].reverse(), "'add' reads tensor 'q'"),
    ("view_offset without view_of", _set(["tensors", 2, "view_offset"], 8), "'q': view_offset"),
]


@pytest.mark.parametrize("label,edit,words", GRAPH_ILLEGAL, ids=[c[0] for c in GRAPH_ILLEGAL])
def test_graph_loader_refuses_every_illegal_form_naming_it(label, edit, words):
    _assert_refused(_base_graph(), edit, memplan.graph_from_dict, memplan.GraphError, words)


def _assert_refused(doc: dict, edit, load, error: type, words: str) -> None:
    """``load(doc)`` after ``edit(doc)`` raises ``error`` whose message holds ``words`` (the field it names)."""
    edit(doc)
    with pytest.raises(error) as info:
        load(doc)
    assert words in str(info.value), str(info.value)


@pytest.mark.parametrize("view,words", [
    (T("v", 513, view_of="r", view_offset=512), "lies outside its parent"),   # one byte past the end
    (T("v", 8, view_of="r", view_offset=-8), "view_offset -8"),
    (T("v", 8, view_of="r", view_offset=None), "view_offset None"),
    (T("v", 8, view_of="nowhere"), "unknown tensor 'nowhere'"),
])
def test_graph_loader_refuses_views_that_do_not_lie_inside_their_parent(view, words):
    with pytest.raises(memplan.GraphError, match=words):
        memplan.graph_from_dict(_views(view))


# ---- plan: legal and illegal forms ---------------------------------------------------------------------------
def _base_plan() -> dict:
    return P([("mm", 0), ("add", 1)], [("mm", "add")],
             [("x", 0, 256), ("w", None, 64), ("q", 256, 256), ("y", 512, 256)], 768)


PLAN_LEGAL = [
    ("as written", lambda d: None),
    ("fields in any order", _shuffled),
    ("unknown top-level field", _set(["x-other-tool"], [1, 2])),
    ("unknown entry fields", lambda d: [e.update(note="n") for e in d["order"] + d["events"] + d["tensors"]]),
    ("tensors in another order", lambda d: d["tensors"].reverse()),
    ("more streams declared than used", _set(["streams"], 8)),
    ("arena larger than the tensors reach", _set(["arena_bytes"], 1 << 20)),
    ("lower bound equal to the arena", _set(["lower_bound_bytes"], 768)),
    ("an empty solver block", _set(["solver"], {})),
]


@pytest.mark.parametrize("label,edit", PLAN_LEGAL, ids=[c[0] for c in PLAN_LEGAL])
def test_plan_loader_and_verify_take_every_legal_form(label, edit):
    doc = _base_plan()
    edit(doc)
    g = memplan.graph_from_dict(_base_graph())
    plan = memplan.plan_from_dict(doc)
    assert check(g, plan) == [] and findings(_base_graph(), doc) == [], label
    assert memplan.plan_from_dict(json.loads(plan.to_json())) == plan


PLAN_ILLEGAL = [
    ("format of another version", _set(["format"], "memplan.plan/2"), "memplan.plan/2"),
    ("arena_bytes absent", _without("arena_bytes"), "'arena_bytes'"),
    ("arena_bytes negative", _set(["arena_bytes"], -1), "'arena_bytes'"),
    ("arena_bytes a float", _set(["arena_bytes"], 768.0), "'arena_bytes'"),
    ("lower_bound_bytes absent", _without("lower_bound_bytes"), "'lower_bound_bytes'"),
    ("streams 0", _set(["streams"], 0), "'streams'"),
    ("alignment 0", _set(["alignment"], 0), "'alignment'"),
    ("order absent", _without("order"), "'order'"),
    ("events absent", _without("events"), "'events'"),
    ("tensors absent", _without("tensors"), "'tensors'"),
    ("a stream that is no integer", _set(["order", 0, "stream"], True), "'stream'"),
    ("an offset that is no integer", _set(["tensors", 0, "offset"], "0"), "'offset'"),
    ("an offset left out", lambda d: d["tensors"][0].pop("offset"), "'offset'"),
    ("an event without before", lambda d: d["events"][0].pop("before"), "'before'"),
    ("a solver block that is no object", _set(["solver"], "greedy"), "'solver'"),
]


@pytest.mark.parametrize("label,edit,words", PLAN_ILLEGAL, ids=[c[0] for c in PLAN_ILLEGAL])
def test_plan_loader_refuses_every_illegal_form_naming_it(label, edit, words):
    _assert_refused(_base_plan(), edit, memplan.plan_from_dict, memplan.PlanFormatError, words)


# ---- the four rules, one minimal case each way ---------------------------------------------------------------
CHAIN = G([T("x", 256, "input"), T("a", 256), T("y", 256, "output")], [N("n1", ["x"], ["a"]), N("n2", ["a"], ["y"])])
APART = [("x", 0, 256), ("a", 256, 256), ("y", 512, 256)]
INPLACE = G([T("x", 256, "input"), T("q", 256), T("o", 256, "output"), T("y", 256, "output")],
            [N("n1", ["x"], ["q"]), N("n3", ["q"], ["o"]), N("n2", ["q"], ["y"], inplace={"y": "q"})])
KV = G([T("x", 512, "input"), T("w", 1024, "weight"), T("slot", 256, view_of="w", view_offset=256),
        T("a", 256), T("y", 256, "output")],
       [N("set", ["x"], ["slot"]), N("rd", ["slot", "x"], ["a"]), N("fin", ["a"], ["y"])])
KV_T = [("x", 0, 512), ("w", None, 1024), ("slot", None, 256), ("a", 512, 256), ("y", 768, 256)]
VIEWOP = G([T("x", 256, "input"), T("r", 256), T("rv", 256, view_of="r"), T("o", 256, "output"),
            T("y", 256, "output")],
           [N("p", ["x"], ["r"]), N("view", ["r"], ["rv"]), N("c", ["x"], ["o"]), N("d", ["o"], ["y"])])
VIEWOP_T = [("x", 0, 256), ("r", 256, 256), ("rv", 256, 256), ("o", 512, 256), ("y", 256, 256)]
TWO_IN = G([T("x1", 256, "input"), T("x2", 256, "input"), T("y", 256, "output")], [N("n", ["x1"], ["y"])])
ZERO = G([T("x", 256, "input"), T("z", 0), T("y", 256, "output")], [N("n1", ["x"], ["z"]), N("n2", ["z", "x"], ["y"])])
OUTVIEW = G([T("x", 256, "input"), T("r", 512), T("ov", 256, "output", view_of="r"), T("a", 256), T("y", 256, "output")],
            [N("p", ["x"], ["r"]), N("q", ["x"], ["a"]), N("z", ["a"], ["y"])])
GROUP = G([T("x", 256, "input"), T("a", 256), T("b", 256), T("c", 256), T("y", 256, "output")],
          [N("g1", ["x"], ["a"], group="f"), N("g2", ["a"], ["b"], group="f"), N("h", ["x"], ["c"]),
           N("k", ["b", "c"], ["y"])])
GROUP_T = [("x", 0, 256), ("a", 256, 256), ("b", 512, 256), ("c", 768, 256), ("y", 1024, 256)]

#: (statement, graph, plan, the rules verify must report: empty means the contract calls the plan safe)
RULES = [
    # HB and rule 2
    ("same stream: earlier HB later", CHAIN, P([("n1", 0), ("n2", 0)], [], APART, 768), set()),
    ("an event is an HB edge", CHAIN, P([("n1", 0), ("n2", 1)], [("n1", "n2")], APART, 768), set()),
    ("rule 2: a cross-stream read without event", CHAIN, P([("n1", 0), ("n2", 1)], [], APART, 768), {2}),
    ("rule 2: HB is transitive through a third stream",
     G([T("x", 256, "input"), T("a", 256), T("b", 256), T("y", 256, "output")],
       [N("n1", ["x"], ["a"]), N("n2", ["a"], ["b"]), N("n3", ["a", "b"], ["y"])]),
     P([("n1", 0), ("n2", 1), ("n3", 2)], [("n1", "n2"), ("n2", "n3")],
       [("x", 0, 256), ("a", 256, 256), ("b", 512, 256), ("y", 768, 256)], 1024, streams=3), set()),
    ("rule 2: a view of a weight written by SET_ROWS, read without event", KV,
     P([("set", 0), ("rd", 1), ("fin", 1)], [], KV_T, 1024), {2}),
    ("rule 2: ... and with the event", KV, P([("set", 0), ("rd", 1), ("fin", 1)], [("set", "rd")], KV_T, 1024), set()),
    # rule 1
    ("rule 1: order not topological", CHAIN, P([("n2", 0), ("n1", 0)], [], APART, 768), {1, 2}),
    ("rule 1: a wait recorded before its record", CHAIN, P([("n1", 0), ("n2", 1)], [("n2", "n1")], APART, 768), {1, 2}),
    ("rule 1: an event within one stream", CHAIN, P([("n1", 0), ("n2", 0)], [("n1", "n2")], APART, 768), {1}),
    ("rule 1: a stream id outside 0..streams-1", CHAIN, P([("n1", 0), ("n2", 2)], [("n1", "n2")], APART, 768), {1}),
    ("rule 1: a fusion group consecutive on one stream (others interleaved)", GROUP,
     P([("g1", 0), ("h", 1), ("g2", 0), ("k", 0)], [("h", "k")], GROUP_T, 1280), set()),
    ("rule 1: a fusion group split over streams", GROUP,
     P([("g1", 0), ("g2", 1), ("h", 0), ("k", 0)], [("g1", "g2"), ("g2", "k")], GROUP_T, 1280), {1}),
    ("rule 1: a fusion group interrupted on its stream", GROUP,
     P([("g1", 0), ("h", 0), ("g2", 0), ("k", 0)], [], GROUP_T, 1280), {1}),
    # rule 3
    ("rule 3: ranges that only touch do not overlap", CHAIN, P([("n1", 0), ("n2", 0)], [], APART, 768), set()),
    ("rule 3: an output over a dead input", CHAIN,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("a", 256, 256), ("y", 0, 256)], 512), set()),
    ("rule 3: a node's input and output never share bytes (an access is not HB itself)", CHAIN,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("a", 0, 256), ("y", 256, 256)], 512), {3}),
    ("rule 3: the in-place exception", INPLACE,
     P([("n1", 0), ("n3", 1), ("n2", 0)], [("n1", "n3"), ("n3", "n2")],
       [("x", 0, 256), ("q", 256, 256), ("o", 512, 256), ("y", 256, 256)], 768), set()),
    ("rule 3: in place while another stream still reads the input", INPLACE,
     P([("n1", 0), ("n3", 1), ("n2", 0)], [("n1", "n3")],
       [("x", 0, 256), ("q", 256, 256), ("o", 512, 256), ("y", 256, 256)], 768), {3}),
    ("rule 3: in place where the graph allows none",
     G([T("x", 256, "input"), T("q", 256), T("y", 256, "output")], [N("n1", ["x"], ["q"]), N("n2", ["q"], ["y"])]),
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("q", 256, 256), ("y", 256, 256)], 512), {3}),
    ("rule 3: a node producing a view is an access of the root", VIEWOP,
     P([("p", 0), ("view", 1), ("c", 0), ("d", 0)], [("p", "view")], VIEWOP_T, 768), {3}),
    ("rule 3: ... ordered by an event", VIEWOP,
     P([("p", 0), ("view", 1), ("c", 0), ("d", 0)], [("p", "view"), ("view", "d")], VIEWOP_T, 768), set()),
    ("rule 3: two inputs are both written before the run", TWO_IN,
     P([("n", 0)], [], [("x1", 0, 256), ("x2", 0, 256), ("y", 256, 256)], 512, streams=1), {3}),
    ("rule 3: an unread input's only access is the virtual start", TWO_IN,
     P([("n", 0)], [], [("x1", 0, 256), ("x2", 256, 256), ("y", 256, 256)], 512, streams=1), set()),
    ("rule 3: an output lives until the run ends",
     G([T("x", 256, "input"), T("y", 256, "output"), T("a", 256), T("z", 256, "output")],
       [N("n1", ["x"], ["y"]), N("n2", ["x"], ["a"]), N("n3", ["a"], ["z"])]),
     P([("n1", 0), ("n2", 0), ("n3", 0)], [], [("x", 0, 256), ("y", 256, 256), ("a", 256, 256), ("z", 0, 256)], 512,
       streams=1), {3}),
    ("rule 3 (interpretation): an output view keeps its root to the end", OUTVIEW,
     P([("p", 0), ("q", 0), ("z", 0)], [], [("x", 0, 256), ("r", 256, 512), ("ov", 256, 256), ("a", 768, 256),
                                          ("y", 256, 256)], 1024), {3}),
    ("rule 3: a zero-size tensor overlaps nothing", ZERO,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("z", 0, 0), ("y", 256, 256)], 512), set()),
    # rule 4 and the tensors' offsets
    ("rule 4: offset + size == arena_bytes", CHAIN, P([("n1", 0), ("n2", 0)], [], APART, 768), set()),
    ("rule 4: one byte past arena_bytes", CHAIN, P([("n1", 0), ("n2", 0)], [], APART, 767), {4}),
    ("rule 4: a root offset off the alignment", CHAIN,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("a", 256, 256), ("y", 520, 256)], 776), {4}),
    ("rule 4: a zero-size root is aligned too", ZERO,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("z", 3, 0), ("y", 256, 256)], 512), {4}),
    ("rule 4: a zero-size root at arena_bytes", ZERO,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("z", 512, 0), ("y", 256, 256)], 512), set()),
    ("rule 4: a zero-size root past arena_bytes", ZERO,
     P([("n1", 0), ("n2", 0)], [], [("x", 0, 256), ("z", 768, 0), ("y", 256, 256)], 512), {4}),
    ("tensors: a weight's view has a null offset", KV,
     P([("set", 0), ("rd", 0), ("fin", 0)], [], [*KV_T[:2], ("slot", 256, 256), *KV_T[3:]], 1024), {4}),
    ("tensors: a view's offset is its parent's plus view_offset", _views(T("v1", 512, view_of="r", view_offset=512),
                                                                        T("v2", 256, view_of="v1", view_offset=256)),
     P([("p", 0), ("c", 0)], [], [("x", 0, 1024), ("r", 1024, 1024), ("v1", 1536, 512), ("v2", 1280, 256),
                                  ("y", 0, 256)], 2048), {4}),
    ("tensors: ... along a chain of views", _views(T("v1", 512, view_of="r", view_offset=512),
                                                  T("v2", 256, view_of="v1", view_offset=256)),
     P([("p", 0), ("c", 0)], [], [("x", 0, 1024), ("r", 1024, 1024), ("v1", 1536, 512), ("v2", 1792, 256),
                                  ("y", 0, 256)], 2048), set()),
    ("tensors: a view needs no alignment", _views(T("v", 100, view_of="r", view_offset=100)),
     P([("p", 0), ("c", 0)], [], [("x", 0, 1024), ("r", 1024, 1024), ("v", 1124, 100), ("y", 0, 256)], 2048), set()),
]


@pytest.mark.parametrize("statement,graph,plan,rules", RULES, ids=[c[0] for c in RULES])
def test_verify_decides_each_rule_as_the_contract_says(statement, graph, plan, rules):
    """``check`` reports exactly the rules the contract says the plan breaks, and the independent oracle
    (which reads only the JSON) agrees on safe or not."""
    found = check(memplan.graph_from_dict(graph), memplan.plan_from_dict(plan))
    assert {r for r, _ in found} == rules, (statement, found)
    assert (findings(graph, plan) == []) == (not rules), statement


# ---- the dumper: contract fields and meaning; a round trip re-verifies ---------------------------------------
MIXED = G([T("x", 300, "input"), T("u", 100, "input"), T("w", 4096, "weight"),
           T("slot", 512, view_of="w", view_offset=1024), T("a", 700), T("av", 200, view_of="a", view_offset=100),
           T("b", 300), T("c", 0), T("y", 256, "output"), T("yv", 128, "output", view_of="y", view_offset=128)],
          [N("set", ["x"], ["slot"], cost=1), N("mk", ["x", "w"], ["a"], cost=5), N("l", ["av"], ["b"], cost=2),
           N("r", ["a", "slot"], ["c"], cost=3), N("j", ["b", "c"], ["y"], inplace={"y": "b"}, cost=1)],
          alignment=128)


@pytest.mark.parametrize("streams", [None, 2, "auto"])
def test_plan_json_is_the_contract_document_and_round_trips(streams):
    g = memplan.graph_from_dict(MIXED)
    plan = memplan.plan(g) if streams is None else memplan.plan(g, streams=streams)
    text = plan.to_json()
    assert problems(MIXED, text) == []          # fields, order, types, units, offsets, views, events
    doc = json.loads(text)
    assert findings(MIXED, doc) == []
    back = memplan.plan_from_dict(doc)
    assert back == plan and back.to_json() == text
    memplan.verify(g, back)
    assert {e["id"]: e["offset"] for e in doc["tensors"]}["slot"] is None   # a weight's view: null


def test_cli_verify_takes_a_foreign_plan_with_shuffled_fields_and_extras(tmp_path, capsys):
    """A plan another tool wrote: keys in another order, entries reordered, unknown fields everywhere."""
    g = memplan.graph_from_dict(MIXED)
    doc = json.loads(memplan.plan(g, streams=2).to_json())
    _shuffled(doc)
    doc["tensors"].reverse()
    doc["events"].reverse()
    doc["x-tool"] = {"made_by": "elsewhere"}
    for e in doc["order"]:
        e["x-note"] = 1
    gfile, pfile = tmp_path / "g.json", tmp_path / "p.json"
    gcopy = json.loads(json.dumps(MIXED))
    _shuffled(gcopy)
    gcopy["x-tool"] = 5
    gfile.write_text(json.dumps(gcopy))
    pfile.write_text(json.dumps(doc))
    code, out, err = run(capsys, "verify", str(gfile), str(pfile))
    assert code == 0 and "safe" in out, err


# ---- lower_bound_bytes: a proven bound, at least the live-at-one-node one --------------------------------------
def test_an_input_overwritten_in_place_is_not_live_at_its_last_access():
    """"leaving out an ``in`` that ``n`` overwrites in place as its last access": x and y are both accessed at
    n, yet only one of them counts, so the bound is one tensor and the in-place plan meets it."""
    g = memplan.graph_from_dict(G([T("x", 256, "input"), T("y", 256, "output")],
                                  [N("n", ["x"], ["y"], inplace={"y": "x"})]))
    plan = memplan.plan(g)
    assert plan.lower_bound_bytes == plan.arena_bytes == 256 and plan.offsets() == {"x": 0, "y": 0}


@pytest.mark.parametrize("graph", [CHAIN, INPLACE, KV, VIEWOP, TWO_IN, OUTVIEW, GROUP, MIXED],
                         ids=["chain", "inplace", "kv", "viewop", "two_inputs", "output_view", "group", "mixed"])
@pytest.mark.parametrize("streams", [1, 2, 3])
def test_lower_bound_is_proven_and_at_least_the_live_bound(graph, streams):
    """Round-robin stream assignments of each hand graph (by fusion unit): the reported bound lies between the contract's
    live-at-one-node bound and the brute-force smallest safe arena of that schedule."""
    g = memplan.graph_from_dict(graph)
    order = [n.id for n in g.nodes]
    stream_of = {g.nodes[m].id: u % streams for u, unit in enumerate(g.units()) for m in unit}   # a group on one
    plan = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of))
    doc = json.loads(plan.to_json())
    best = optimal_arena(graph, doc)
    assert per_node_bound(graph, doc) <= plan.lower_bound_bytes <= plan.arena_bytes
    assert best is None or plan.lower_bound_bytes <= best
