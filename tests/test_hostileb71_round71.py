"""Round 71 (hostileb71): public API inputs refused where they are given, naming the argument.

1. ``plan_from_dict`` of a document built in Python took NaN/Infinity in the free-form ``solver`` block (or an extra
   field); ``to_json``/``save_plan`` of the plan then refused it, far from the dict that held it. Refused at load,
   naming the path (``solver.gap``).
2. ``schedule_with_events(graph, order, stream_of)`` ignored ``stream_of`` keys that name no node: a typo'd id gave
   no stream to the node it meant, without a word. Refused, naming the keys (the first few and a count).
3. ``CostModel(event_us=-1)`` (NaN, "1", True, inf) was made without a word and refused only by the first call
   given it. Refused at construction, naming the field, in the words every other refusal of ``event_us`` uses.
"""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction

import numpy as np
import pytest

import memplan
from memplan import CostModel, PlanFormatError, ScheduleError
from memplan.optimize.cost import EVENT_US_RULE


def _chain(n: int = 3, name: str = "g") -> memplan.Graph:
    b = memplan.GraphBuilder(name)
    t = b.input("x", 256)
    for i in range(n):
        out = b.output(f"t{i}", 256) if i == n - 1 else b.intermediate(f"t{i}", 256)
        b.node(f"n{i}", "ADD", [t], out, cost=1.0)
        t = out
    return b.build()


def _fork() -> memplan.Graph:
    b = memplan.GraphBuilder("fork")
    b.input("x", 256)
    b.node("a", "OP", ["x"], b.intermediate("ya", 256), cost=1.0)
    b.node("b", "OP", ["x"], b.intermediate("yb", 256), cost=1.0)
    b.node("c", "ADD", ["ya", "yb"], b.output("y", 256), cost=1.0)
    return b.build()


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(memplan.plan(_chain()).to_json())


# ---- 1. NaN / Infinity in the free-form blocks of a plan document ---------------------------------------------

@pytest.mark.parametrize("change, path, shown", [
    ({"solver": {"name": "greedy", "gap": math.nan}}, "solver.gap", "nan"),
    ({"solver": {"name": "greedy", "gap": math.inf}}, "solver.gap", "inf"),
    ({"solver": {"name": "x", "tried": {"a": [1, 2, -math.inf]}}}, r"solver.tried.a\[2\]", "-inf"),
    ({"solver": {"name": "x", "a b": [np.float64("nan")]}}, r'solver\["a b"\]\[0\]', "nan"),
    ({"my_tool": {"runs": [{"t": 1.5}, {"t": math.nan}]}}, r"my_tool.runs\[1\].t", "nan"),
    ({"my_tool": math.inf}, "my_tool", "inf"),
])
def test_plan_from_dict_refuses_nan_in_a_free_form_block_by_its_path(doc, change, path, shown):
    """It returned a plan whose ``to_json`` then raised "field 'solver' is not JSON that load_plan reads back"."""
    with pytest.raises(PlanFormatError, match=rf"^plan: field '{path}' is {shown}: NaN and infinities are no JSON"):
        memplan.plan_from_dict({**doc, **change})
    with pytest.raises(PlanFormatError, match=rf"^p\.json: field '{path}'"):
        memplan.plan_from_dict({**doc, **change}, source="p.json")


@pytest.mark.parametrize("value, words", [
    ({1, 2}, "Object of type set is not JSON serializable"),
    (np.float32(1.5), "Object of type float32 is not JSON serializable"),
    ({1: 2, "1": 3}, "keys 1 and '1' are both written as '1'"),
])
def test_plan_from_dict_refuses_what_no_plan_file_holds_in_the_solver_block(doc, value, words):
    """The same for the rest of what ``to_json`` refuses of a block: named at load by the field."""
    with pytest.raises(PlanFormatError, match=rf"^plan: field 'solver' is not JSON that a plan file holds \({words}"):
        memplan.plan_from_dict({**doc, "solver": {"name": "x", "v": value}})


def test_plan_from_dict_still_takes_every_json_value_and_numpy_numbers(doc):
    """Finite floats, numpy integers and float64 (a float), nesting, None, unicode keys: taken as before, and the
    plan writes them (numpy values as the plain numbers they are)."""
    block = {"name": "x", "gap": 0.5, "n": np.int64(3), "f": np.float64(2.5), "deep": {"l": [None, True, "é", -1e300]}}
    p = memplan.plan_from_dict({**doc, "solver": block, "my_tool": {"k": [1, 2.0]}})
    back = json.loads(p.to_json())
    assert back["solver"] == {"name": "x", "gap": 0.5, "n": 3, "f": 2.5, "deep": {"l": [None, True, "é", -1e300]}}
    assert back["my_tool"] == {"k": [1, 2.0]}
    assert memplan.plan_from_dict(back) == p


def test_a_plan_file_with_nan_is_refused_by_load_plan_as_before(tmp_path, doc):
    """The file path already refused NaN (``read_json``); both roads now refuse it before a plan exists."""
    text = json.dumps({**doc, "solver": {"name": "x", "gap": math.nan}})
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(PlanFormatError, match="NaN is not a JSON number"):
        memplan.load_plan(str(path))


def test_a_plan_built_in_code_with_nan_is_still_refused_when_written(doc):
    """``Plan(...)`` itself stays lenient (a plan from code is judged when it is written or verified)."""
    p = dataclasses.replace(memplan.plan_from_dict(doc), solver={"gap": math.nan})
    with pytest.raises(PlanFormatError, match="field 'solver' is not JSON that load_plan reads back"):
        p.to_json()


# ---- 2. stream_of keys that name no node ------------------------------------------------------------------------

def test_schedule_with_events_refuses_a_stream_of_key_no_node_has():
    g = _fork()
    with pytest.raises(ScheduleError, match=r"stream_of names key 'bb' that no node of graph 'fork' has"):
        memplan.schedule_with_events(g, ["a", "b", "c"], {"a": 0, "b": 1, "c": 0, "bb": 1})


def test_many_unknown_keys_are_capped_and_counted():
    g = _fork()
    extra = {f"z{i}": 1 for i in range(9)}
    with pytest.raises(ScheduleError, match=r"stream_of names 9 keys: 'z0', 'z1', .* and \d+ more that no node"):
        memplan.schedule_with_events(g, ["a", "b", "c"], {"a": 0, "b": 1, "c": 0, **extra})


def test_a_key_that_is_no_string_is_named_too():
    g = _fork()
    with pytest.raises(ScheduleError, match=r"stream_of names key 7 that no node"):
        memplan.schedule_with_events(g, ["a", "b", "c"], {"a": 0, "b": 1, "c": 0, 7: 1})


def test_the_typo_is_named_with_the_node_it_left_unmapped():
    """The usual typo: the node meant has no key at all, so "gives no stream for node 'b'" fires first; it names
    the stray key beside it."""
    g = _fork()
    with pytest.raises(ScheduleError, match=r"no stream for node 'b' .*; stream_of names key 'bb' that no node has"):
        memplan.schedule_with_events(g, ["a", "b", "c"], {"a": 0, "bb": 1, "c": 0})


@pytest.mark.parametrize("order, words", [
    (["a", "a", "b", "c"], "lists node 'a' twice"),
    (["a", "c"], "missing node 'b'"),
    (["a", "b", "c", "q"], "unknown node 'q'"),
])
def test_the_order_is_checked_as_before(order, words):
    with pytest.raises(ScheduleError, match=words):
        memplan.schedule_with_events(_fork(), order, {"a": 0, "b": 1, "c": 0, "q": 0})


def test_an_order_names_every_unknown_and_missing_node_capped():
    """The order's checks named the first unknown or missing node only: a list of typos or a half order took a run
    per node to learn. Now the first five and a count, as the verifier names a plan's missing nodes."""
    g = _chain(9)
    ids = [n.id for n in g.nodes]
    with pytest.raises(ScheduleError, match=r"^schedule is missing 8 nodes: 'n1', 'n2', 'n3', 'n4', 'n5' and 3 more$"):
        memplan.schedule_with_events(g, ["n0"], {"n0": 0})
    order = ["n0", "q1", "q1", "q2", *ids[1:]]
    with pytest.raises(ScheduleError, match=r"^schedule names 2 unknown nodes: 'q1', 'q2'$"):
        memplan.schedule_with_events(g, order, dict.fromkeys(order, 0))
    with pytest.raises(ScheduleError, match=r"^schedule names unknown node \['n0'\]$"):
        memplan.plan(g, memplan.Schedule((["n0"], *ids[1:]), (0,) * 9))


def test_an_exact_stream_of_still_schedules():
    g = _fork()
    s = memplan.schedule_with_events(g, ["a", "b", "c"], {"a": 0, "b": np.int64(1), "c": 0})
    assert s.streams == (0, 1, 0)
    assert [(e.after, e.before) for e in s.events] == [("b", "c")]


# ---- 3. CostModel's event latency checked at construction -------------------------------------------------------

@pytest.mark.parametrize("value", [-1, -0.5, math.nan, math.inf, "1", True, False, None, [], 2e15, pytest.param(-(10 ** 400), id="-10**400")])
def test_cost_model_refuses_a_bad_event_us_when_made(value):
    with pytest.raises(ScheduleError, match=r"^CostModel: event_us .* is not a finite non-negative number"):
        CostModel(event_us=value)


@pytest.mark.parametrize("value, want", [
    (0, 0), (0.0, 0.0), (2, 2), (1e15, 1e15), (np.float32(2.0), 2.0), (np.int64(3), 3), (Fraction(1, 2), 0.5),
])
def test_cost_model_takes_every_valid_event_us(value, want):
    model = CostModel(event_us=value)
    assert model.event_us == want
    sim = memplan.simulate(_fork(), memplan.schedule_with_events(_fork(), ["a", "b", "c"], {"a": 0, "b": 1, "c": 0}),
                           model)
    assert sim.event_us == float(want)


def test_the_rule_is_the_one_the_cli_and_check_cost_model_state():
    with pytest.raises(ScheduleError) as info:
        CostModel(event_us=-1)
    assert str(info.value).endswith(EVENT_US_RULE)


# ---- 4. a misspelt keyword of a public value class: OptionError naming it and the field meant ---------------------

@pytest.mark.parametrize("make, typo, meant", [
    (lambda: memplan.Schedule(ordr=("a",), streams=(0,)), "ordr", "order"),
    (lambda: memplan.Plan(graph="g", alignment=1, arena_bytes=0, lower_bound_bytes=0, streams=1, order=(), events=(),
                          tensors=(), solvr={}), "solvr", "solver"),
    (lambda: memplan.Graph(name="g", tensors=(), nodes=(), alignmnet=256), "alignmnet", "alignment"),
    (lambda: memplan.BufferProblem(sizes=np.array([4]), lower=np.array([0]), uppr=np.array([1])), "uppr", "upper"),
    (lambda: memplan.Solution(offset=[0], arena=4), "offset", "offsets"),
])
def test_a_misspelt_field_is_an_option_error_naming_the_field_meant(make, typo, meant):
    """It was Python's bare TypeError ("__init__() got an unexpected keyword argument 'ordr'"), no memplan error and
    no word on the field meant, as ``CostModel`` and ``SolveOptions`` already said. Still a TypeError."""
    with pytest.raises(memplan.OptionError, match=rf"got an unknown option '{typo}' \(did you mean '{meant}'\?\)") as info:
        make()
    assert isinstance(info.value, TypeError)


def test_the_value_classes_are_made_copied_and_replaced_as_before():
    import copy
    import pickle

    g = _fork()
    p = memplan.plan(g)
    s = memplan.Schedule(order=("a", "b", "c"), streams=(0, 0, 0))
    assert dataclasses.replace(p, arena_bytes=p.arena_bytes) == p == pickle.loads(pickle.dumps(p))
    assert copy.deepcopy(g) == g and dataclasses.replace(s, events=()) == s
    assert memplan.Graph(g.name, g.tensors, g.nodes, alignment=g.alignment) == g
