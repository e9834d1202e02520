"""Round 54: what a plan file contradicts in itself (``memplan show PLAN`` without ``--graph``), and hostile JSON fed
to every reader and command.

``show`` alone has no graph to verify against, so it summarised a plan with a node on stream 3 of 3, an event waited
on before its record or a tensor past the arena as readily as a sound one. ``planfile.check_plan_alone`` refuses what
no graph could make safe, one line naming the node, tensor or event; the property test below holds it to the
verifier: everything the verifier accepts passes, and everything it refuses alone the verifier refuses too.
"""

from __future__ import annotations

import copy
import functools
import json

import pytest
from cli_contract import assert_bad_input, run_memplan
from corrupt import _slots, bench_command, commands, corrupt_n, make_inputs, run_case, semantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan import examples
from memplan.errors import PlanFormatError
from memplan.planfile import check_plan_alone, plan_alone_problems, plan_from_dict
from memplan.verify import check


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
    ("empty node id", lambda d: d["order"][2].update(node=""), ["order[2] names node ''"]),
    ("empty tensor id", lambda d: d["tensors"][2].update(id=""), ["tensors[2] places tensor ''"]),
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


@functools.cache
def _planned(name: str, streams: int, devices: int):
    """The graph a plan refers to (the split graph for 2 devices) and the plan's document."""
    planned = memplan.plan_graph(examples.bundled()[name], solver="greedy", streams=streams, devices=devices)
    return planned.graph, planned.plan.to_dict()


@st.composite
def _edited_plans(draw):
    devices = draw(st.sampled_from([1, 1, 2]))
    name = draw(st.sampled_from(_GRAPHS if devices == 1 else ("chain", "fanout15", "moe", "views")))
    graph, doc = _planned(name, draw(st.integers(1, 3)), devices)
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, 2))):
        part = draw(st.sampled_from(["order", "events", "tensors", "top"]))
        if part == "top":
            key = draw(st.sampled_from(["streams", "arena_bytes", "lower_bound_bytes"]
                                       + ["device_arena_bytes"] * (devices > 1)))
            if key == "device_arena_bytes":
                d = draw(st.integers(0, devices - 1))
                doc[key][d] += draw(st.integers(-2, 2)) * draw(st.sampled_from([1, 256, 1024]))
            else:
                doc[key] = min(max(doc[key] + draw(st.integers(-2, 2)) * draw(st.sampled_from([1, 256])), 1), 1024)
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


# ---- hostile JSON: every reader and command --------------------------------------------------------------------------

#: the mutations of the brief's list that tests/corrupt.py does not make: raw text put where a value was
DEEP = 10_000
RAW_VALUES = ["NaN", "Infinity", "-Infinity", "9" * 5000, str(2 ** 63), str(2 ** 64), str(-(2 ** 63) - 1), "1e400",
              "[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP, "1.0", "-0", '"\\ud800"', '"\\u0000"']
WRONG = [None, True, False, "x", "", [], {}, 1.5, -1, 0, [1, 2], {"a": 1}]
MUTATIONS = ("drop", "wrong", "raw", "dupkey", "byte", "bom", "utf16", "truncate")
_MARK = "__memplan_round54__"


def mutate(data: bytes, how: str, pick) -> bytes:
    """``data`` (a valid JSON document) mutated ``how``; ``pick(n)`` chooses an index below ``n`` (hypothesis's draws,
    or a ``random.Random``'s in a fuzz run), so each choice shrinks."""
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "utf16":
        return data.decode().encode(["utf-16", "utf-16-le", "utf-32"][pick(3)])
    if how == "truncate":
        return data[:pick(len(data))]
    if how == "byte":
        i = pick(len(data) + 1)
        return data[:i] + bytes([0x80 + pick(128)]) + data[i:]
    doc = json.loads(data)
    slots = _slots(doc)
    if how == "drop":
        dicts = [(c, k) for c, k in slots if isinstance(c, dict)]
        c, k = dicts[pick(len(dicts))]
        del c[k]
        return json.dumps(doc).encode()
    c, k = slots[pick(len(slots))]
    if how == "wrong":
        c[k] = WRONG[pick(len(WRONG))]
        return json.dumps(doc).encode()
    if how == "raw":
        c[k] = _MARK
        return json.dumps(doc).replace(json.dumps(_MARK), RAW_VALUES[pick(len(RAW_VALUES))], 1).encode()
    # dupkey: a key of an object written twice, the second time with a value from elsewhere in the document
    dicts = [(c, k) for c, k in slots if isinstance(c, dict)]
    c, k = dicts[pick(len(dicts))]
    other = slots[pick(len(slots))]
    old, c[k] = c[k], _MARK
    text = json.dumps(doc)
    twice = f"{json.dumps(old)}, {json.dumps(k)}: {json.dumps(other[0][other[1]]) if other[0] is not c else json.dumps(old)}"
    return text.replace(json.dumps(_MARK), twice, 1).encode()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """tests/corrupt.py's valid graphs (views, in-place, groups, KV-cache writes), their serial, multi-stream and
    split plans: each mutated in turn."""
    return make_inputs(str(tmp_path_factory.mktemp("round54")))


def _json_files(inputs) -> list[str]:
    return sorted(n for n in inputs.files if n.endswith(".json"))


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_json_keeps_the_contract_of_readers_and_commands(inputs, data):
    """Each mutation of the list (a field dropped, a wrong type, NaN, Infinity, 5,000 digits, 2**64, arrays or objects
    nested 10,000 deep, a key written twice, a byte that is no UTF-8, a byte-order mark, UTF-16/32, a truncation) of
    a valid graph or plan, read by ``load_graph``/``load_plan`` (a ``MemplanError`` or a value, nothing else) and by a
    command that reads it (``corrupt.run_case``: exit 0, or exit 2 with one line and no output written; no input
    changed, no temporary file left; a ``verify`` that passes is held to the oracle)."""
    target = data.draw(st.sampled_from(_json_files(inputs)), "file")
    how = data.draw(st.sampled_from(MUTATIONS), "mutation")
    mutated = mutate(inputs.files[target], how, lambda n: data.draw(st.integers(0, max(n - 1, 0))))
    lib = inputs.path("lib.json")
    with open(lib, "wb") as f:
        f.write(mutated)
    load = memplan.load_graph if target == f"{target.split('.')[0]}.json" else memplan.load_plan
    try:
        load(lib)
    except memplan.MemplanError:
        pass
    bench = bench_command(inputs, target)   # (a graph: ``bench planners --graph`` reads it too)
    argv = data.draw(st.sampled_from(commands(inputs, target) + ([bench] if bench else [])), "command")
    _code, problem = run_case(inputs, target, mutated, argv, timeout=60)
    assert problem is None, f"{target} ({how}): memplan {' '.join(argv)}: {problem}"


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_show_alone_never_refuses_a_plan_verify_proves_safe(inputs, data, seed):
    """A plan edited (tests/corrupt.py's corruptions, a hazard planted, the mutations above): where ``memplan verify
    GRAPH PLAN`` passes it, ``memplan show PLAN`` (no graph) shows it; where ``show`` refuses it alone, so does
    ``verify``."""
    import random

    rnd = random.Random(seed)
    target = data.draw(st.sampled_from([n for n in _json_files(inputs) if n.count(".") == 2]), "plan")
    edit = data.draw(st.sampled_from(["corrupt", "semantic", "semantic", "mutate"]), "edit")
    made = (corrupt_n(inputs.files[target], rnd) if edit == "corrupt" else semantic(inputs, target, rnd)
            if edit == "semantic" else ("mutate", mutate(inputs.files[target], rnd.choice(MUTATIONS), rnd.randrange)))
    if made is None:
        return
    what, mutated = made
    graph = inputs.path(f"{target.split('.')[0]}.json")
    verified, problem = run_case(inputs, target, mutated, ["verify", graph, inputs.path(target)], timeout=60)
    assert problem is None, (what, problem)
    shown, problem = run_case(inputs, target, mutated, ["show", inputs.path(target)], timeout=60)
    assert problem is None, (what, problem)
    assert shown == 0 or verified == 2, f"{target} ({what}): show refused a plan verify passed"
