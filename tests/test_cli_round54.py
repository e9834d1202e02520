"""Round 54: what a plan file contradicts in itself (``memplan show PLAN`` without ``--graph``), and hostile JSON fed
to every reader and command.

``show`` alone has no graph to verify against, so it summarised a plan with a node on stream 3 of 3, an event waited
on before its record or a tensor past the arena as readily as a sound one. ``planfile.check_plan_alone`` refuses what
no graph could make safe, one line naming the node, tensor or event; the property test below holds it to the
verifier: everything the verifier accepts passes, and everything it refuses alone the verifier refuses too.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan import examples
from memplan.errors import PlanFormatError
from memplan.planfile import check_plan_alone, plan_alone_problems, plan_from_dict
from memplan.verify import check
from tests.cli_contract import assert_bad_input, run_memplan


@pytest.fixture(scope="module")
def fanout():
    """The bundled fan-out graph and a 3-stream plan of it (events on both sides), as a document."""
    graph = examples.bundled()["fanout15"]
    plan = memplan.plan(graph, solver="greedy", streams=3)
    assert plan.streams == 3 and plan.events
    return graph, plan.to_dict()


def _first_event(doc):
    return doc["events"][0]


#: (name, edit of the plan document, words the one error line must hold)
EDITS = [
    ("stream past the count", lambda d: d["order"][0].update(stream=d["streams"]),
     ["node 'src'", "stream 3", "outside 0..2"]),
    ("negative stream", lambda d: d["order"][1].update(stream=-1), ["stream -1", "outside 0..2"]),
    ("node listed twice", lambda d: d["order"].append(dict(d["order"][0])), ["node 'src' appears twice"]),
    ("tensor placed twice", lambda d: d["tensors"].append(dict(d["tensors"][2])), ["is placed twice"]),
    ("tensor past the arena", lambda d: d["tensors"][1].update(offset=d["arena_bytes"]), ["ends past arena_bytes"]),
    ("negative offset", lambda d: d["tensors"][1].update(offset=-256), ["offset -256, below 0"]),
    ("negative size", lambda d: d["tensors"][1].update(size=-1), ["size -1, below 0"]),
    ("event of an unlisted node", lambda d: d["events"].append({"after": "ghost", "before": "src"}),
     ["event 'ghost'->'src'", "node 'ghost'"]),
    ("event waited before its record", lambda d: d["events"].append({"after": d["order"][-1]["node"], "before": "src"}),
     ["->'src'", "waited on before it is recorded"]),
    ("event within one stream", lambda d: d["events"].append({"after": "src", "before": "src"}),
     ["event 'src'->'src'", "joins stream"]),
    ("bound above the arena", lambda d: d.update(lower_bound_bytes=d["arena_bytes"] + 1), ["lower_bound_bytes"]),
]


@pytest.mark.parametrize("name, edit, words", EDITS, ids=[e[0] for e in EDITS])
def test_show_without_graph_refuses_a_plan_that_contradicts_itself(fanout, tmp_path, capsys, name, edit, words):
    """Each edit made ``memplan show plan.json`` print the summary, exit 0 (``stream 3`` of a 3-stream plan, an event
    whose wait comes before its record: a race in CUDA). Now one line naming it, exit 2; the verifier refuses the same
    plan for the graph it was made for (so no safe plan is refused)."""
    graph, doc = fanout
    bad = copy.deepcopy(doc)
    edit(bad)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(bad))
    code, out, err = run_memplan(capsys, ["show", path])
    assert_bad_input(code, err, str(path), *words)
    assert out == ""
    assert check(graph, plan_from_dict(bad)), name   # (the verifier agrees: unsafe for its own graph)


def test_show_without_graph_still_summarises_the_sound_plan(fanout, tmp_path, capsys):
    """The control: the unedited plan, and one listing an event twice (one edge restated: the verifier accepts it)."""
    graph, doc = fanout
    twice = copy.deepcopy(doc)
    twice["events"].append(dict(_first_event(twice)))
    for i, d in enumerate((doc, twice)):
        path = tmp_path / f"p{i}.json"
        path.write_text(json.dumps(d))
        code, out, err = run_memplan(capsys, ["show", path])
        assert code == 0 and "arena" in out, err
        memplan.verify(graph, plan_from_dict(d))


def test_split_plan_device_fields_checked_alone(tmp_path, capsys):
    """A split plan's device fields: a node on device 5 of 2, a stream on two devices, a tensor past its device's arena
    (inside ``arena_bytes``) were all summarised; each is one line now."""
    pair = memplan.plan_graph(examples.bundled()["fanout15"], devices=2, streams=4)
    doc = pair.plan.to_dict()
    dev = doc["tensors"][1]["device"]
    edits = [(lambda d: d["order"][0].update(device=5), "device 5, outside 0..1"),
             (lambda d: d["order"][0].update(device=1 - d["order"][0]["device"]), "a stream belongs to one device"),
             (lambda d: d["tensors"][1].update(offset=d["device_arena_bytes"][dev]), f"device {dev}'s arena")]
    for edit, words in edits:
        bad = copy.deepcopy(doc)
        edit(bad)
        path = tmp_path / "d.json"
        path.write_text(json.dumps(bad))
        code, _out, err = run_memplan(capsys, ["show", path])
        assert_bad_input(code, err, words)
        assert check(pair.graph, plan_from_dict(bad))


def test_many_problems_are_counted_in_the_one_line(fanout):
    """Every node on a stream past the count: the first named, the rest counted."""
    _graph, doc = fanout
    bad = copy.deepcopy(doc)
    bad["streams"] = 1
    with pytest.raises(PlanFormatError, match=r"outside 0\.\.0 .*\(and \d+ more problems\)"):
        check_plan_alone(plan_from_dict(bad))


# ---- the property: the plan-alone check never refuses what the verifier accepts, and the verifier refuses what it
# refuses -----------------------------------------------------------------------------------------------------------

_GRAPHS = ("chain", "diamond", "fanout15", "qkv", "views", "moe")


@st.composite
def _edited_plans(draw):
    name = draw(st.sampled_from(_GRAPHS))
    graph = examples.bundled()[name]
    plan = memplan.plan(graph, solver="greedy", streams=draw(st.integers(1, 3)))
    doc = plan.to_dict()
    for _ in range(draw(st.integers(0, 2))):
        part = draw(st.sampled_from(["order", "events", "tensors", "top"]))
        if part == "top":
            key = draw(st.sampled_from(["streams", "arena_bytes", "lower_bound_bytes"]))
            doc[key] = max(doc[key] + draw(st.integers(-2, 2)) * draw(st.sampled_from([1, 256])), 1)
        elif doc[part]:
            i = draw(st.integers(0, len(doc[part]) - 1))
            entry = doc[part][i]
            key = draw(st.sampled_from(sorted(entry)))
            if isinstance(entry[key], str):
                pool = [e["node"] for e in doc["order"]] if part != "tensors" else [e["id"] for e in doc["tensors"]]
                entry[key] = draw(st.sampled_from(pool + ["ghost"]))
            elif entry[key] is not None:
                entry[key] += draw(st.integers(-2, 2)) * draw(st.sampled_from([1, 256, 1024]))
            if draw(st.booleans()):
                doc[part].append(dict(entry))
    return graph, plan_from_dict(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_edited_plans())
def test_plan_alone_agrees_with_the_verifier(case):
    graph, plan = case
    problems, total = plan_alone_problems(plan)
    findings = check(graph, plan)
    if not findings:
        assert total == 0, problems   # a safe plan passes
    if total:
        assert findings, problems     # what the plan alone refuses, the verifier refuses
