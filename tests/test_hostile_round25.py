"""Hostile input, round 25: the library API and its JSON formats (cases the earlier rounds did not cover).

Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import importlib
import json

import pytest

import memplan
from memplan import examples

graph_module = importlib.import_module("memplan.graph")
plan_module = importlib.import_module("memplan.plan")   # (``memplan.plan`` is also the function)

# ---- numbers past a double's range in a JSON file ----------------------------------------------------------


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _graph_text(**node_fields) -> str:
    doc = examples.bundled()["qkv"].to_dict()
    doc["nodes"][0].update(node_fields)
    return json.dumps(doc)


@pytest.mark.parametrize("literal", ["1e400", "-1e999", "1.5e309"])
@pytest.mark.parametrize("where, key", [
    ({"attrs": {"eps": 12345.5}}, "['attrs']['eps'] of 'norm'"),
    ({"attrs": {"s": [1, [{"e": 12345.5}]]}}, "['attrs']['s']['e'] of 'norm'"),
    ({"cost": 12345.5}, "['cost'] of 'norm'"),
])
def test_a_graph_number_past_a_double_is_refused_on_reading(tmp_path, literal, where, key):
    """``1e400`` is a JSON number Python reads as infinity: in a node's ``attrs`` it was loaded without a word,
    and the graph (or the split graph of ``--devices``) could not be saved again, failing after the whole plan
    with "attrs are not JSON that load_graph reads back" that named neither the file nor the number."""
    path = _write(tmp_path / "g.json", _graph_text(**where).replace("12345.5", literal))
    with pytest.raises(memplan.GraphError) as exc:
        memplan.load_graph(path)
    assert str(exc.value).startswith(f"{path}: key {key}: the number {literal} is beyond the range of a double")


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.update(x=12345.5), "['x']"),
    (lambda d: d["solver"].update(x=[1, {"y": 12345.5}]), "['solver']['x']['y']"),
    # (named by its order entry since round 49, as a repeated key there is)
    (lambda d: d["order"][0].update(note={"z": 12345.5}), "['note']['z'] of order entry 'norm'"),
])
def test_a_plan_number_past_a_double_is_refused_on_reading(tmp_path, edit, key):
    """The same in a plan file's free-form fields (an extra field, the solver block): ``load_plan`` took it and
    ``save_plan`` of the loaded plan was refused."""
    doc = memplan.plan(examples.bundled()["qkv"]).to_dict()
    edit(doc)
    path = _write(tmp_path / "p.json", json.dumps(doc).replace("12345.5", "1e400"))
    with pytest.raises(memplan.PlanFormatError) as exc:
        memplan.load_plan(path)
    assert str(exc.value).startswith(f"{path}: key {key}: the number 1e400 is beyond the range of a double")


@pytest.mark.parametrize("text", ["1e400", "[1, [2e999]]"])
def test_a_document_that_is_a_number_past_a_double(tmp_path, text):
    path = _write(tmp_path / "g.json", text)
    with pytest.raises(memplan.GraphError, match=r"the number .* is beyond the range of a double"):
        memplan.load_graph(path)


def test_numbers_within_a_double_still_load(tmp_path):
    """The controls: the largest finite doubles and an underflow to zero are numbers, loaded and saved back."""
    path = _write(tmp_path / "g.json", _graph_text(attrs={"big": 1.7e308, "tiny": 1e-400}, cost=1e-400))
    g = memplan.load_graph(path)
    assert g.nodes[0].attrs["big"] == 1.7e308 and g.nodes[0].attrs["tiny"] == 0.0
    memplan.save_graph(g, str(tmp_path / "g2.json"))
    assert memplan.load_graph(str(tmp_path / "g2.json")).nodes[0].attrs["big"] == 1.7e308


# ---- device_capacity: checked on entry, below 2**63 ----------------------------------------------------------

@pytest.mark.parametrize("capacity", [-1, 2 ** 63, 2 ** 100])
def test_device_capacity_is_checked_before_the_solve(monkeypatch, capacity):
    """A single-device ``plan(g, device_capacity=-1)`` solved the whole graph (with a time limit: spent it) and
    only then refused the capacity; 2**63 and past were taken (``memory_budget`` and ``--device-capacity`` stop
    below 2**63)."""
    def no_solve(*args, **kwargs):
        raise AssertionError("solved before the options were checked")

    monkeypatch.setattr(plan_module, "solve_schedule", no_solve)
    with pytest.raises(memplan.BudgetError, match=r"device_capacity must be a non-negative byte count below 2\*\*63"):
        memplan.plan(examples.bundled()["qkv"], device_capacity=capacity)


def test_the_largest_device_capacity_plans():
    g = examples.bundled()["llama-tiny"]
    assert memplan.plan(g, device_capacity=2 ** 63 - 1).arena_bytes > 0
    assert memplan.plan_graph(g, devices=2, device_capacity=2 ** 63 - 1).plan.devices == 2


# ---- a device split past a graph limit -------------------------------------------------------------------------

def test_a_split_past_the_byte_limit_names_the_devices(monkeypatch):
    """The COPY tensors of a device split add bytes: a graph just within the 2**63-byte total came back as
    "the tensors' sizes add up to ... over the 2**63-byte limit", about a graph the caller never wrote (a
    chain of 32,767 tensors of 2**48 bytes). Checked here with the limit lowered, as the message is the point."""
    b = memplan.GraphBuilder("big")
    prev = b.input("x", 1 << 20)
    for i in range(6):
        t = b.intermediate(f"t{i}", 1 << 20)
        b.node(f"n{i}", "OP", [prev], t, cost=1.0)
        prev = t
    b.node("last", "OP", [prev], b.output("y", 1 << 20), cost=1.0)
    g = b.build()
    monkeypatch.setattr(graph_module, "MAX_TOTAL_BYTES", 8 * (1 << 20) + 1)   # the graph fits, a copy does not
    with pytest.raises(memplan.GraphError, match=r"^split over 2 devices, graph 'big' with its 1 COPY tensor\(s\) "
                                                 r"breaks a graph limit: .*2\*\*63-byte limit \(give fewer devices\)"):
        memplan.plan_graph(g, devices=2)
    assert memplan.plan(g).arena_bytes > 0   # one device: no copies


def test_a_produced_weight_is_a_weight():
    b = memplan.GraphBuilder("w")
    b.input("x", 256)
    b.weight("w", 256)
    b.node("a", "OP", ["x"], "w")
    with pytest.raises(memplan.GraphError, match=r"tensor 'w' is a weight but node 'a' produces it"):
        b.build()


# ---- keys that json writes as the same text ----------------------------------------------------------------

def _tiny_plan() -> memplan.Plan:
    b = memplan.GraphBuilder("g")
    b.input("x", 256)
    b.node("a", "OP", ["x"], b.output("y", 256))
    return memplan.plan(b.build())


@pytest.mark.parametrize("change, field, words", [
    ({"extra": {1: 2, "1": 3}}, "extra", "keys 1 and '1' are both written as '1'"),
    ({"solver": {"name": "x", True: 1, "true": 2}}, "solver", "keys True and 'true' are both written as 'true'"),
    ({"extra": {"z": [{None: 1, "null": 2}]}}, "z", "keys None and 'null' are both written as 'null'"),
    ({"extra": {"z": {1.5: 1, "1.5": 2}}}, "z", "keys 1.5 and '1.5' are both written as '1.5'"),
])
def test_a_plan_whose_keys_json_writes_twice_is_not_saved(tmp_path, change, field, words):
    """``json`` writes a key that is no string as text: a Plan built in code with ``extra={1: 2, "1": 3}`` (or such a
    solver block) was saved as a file repeating the key "1", which ``load_plan`` refuses (a repeated key is
    ambiguous): a file memplan wrote and could not read."""
    import dataclasses

    q = dataclasses.replace(_tiny_plan(), **change)
    path = tmp_path / "p.json"
    with pytest.raises(memplan.PlanFormatError, match=rf"^plan: field '{field}' is not JSON that load_plan reads back"):
        memplan.save_plan(q, str(path))
    with pytest.raises(memplan.PlanFormatError) as exc:
        q.to_json()
    assert words in str(exc.value)
    assert not path.exists()


def test_keys_that_are_no_strings_but_written_once_still_save(tmp_path):
    """The control: an int key alone is written as its text and reads back as that string."""
    import dataclasses

    q = dataclasses.replace(_tiny_plan(), extra={1: 2, "z": {None: 1}})
    memplan.save_plan(q, str(tmp_path / "p.json"))
    assert memplan.load_plan(str(tmp_path / "p.json")).extra == {"1": 2, "z": {"null": 1}}


def test_graph_attrs_whose_keys_json_writes_twice_are_not_saved(tmp_path):
    b = memplan.GraphBuilder("g")
    b.input("x", 256, m={1: "a", "1": "b"})
    b.node("a", "OP", ["x"], b.output("y", 256))
    path = tmp_path / "g.json"
    with pytest.raises(memplan.GraphError, match=r"^tensor 'x': attrs are not JSON that load_graph reads back "
                                                 r"\(keys 1 and '1' are both written as '1'\)"):
        memplan.save_graph(b.build(), str(path))
    assert not path.exists()


# ---- a memory budget no candidate can meet --------------------------------------------------------------------

def test_a_budget_below_every_bound_solves_no_candidate(monkeypatch):
    """``plan(g, streams="auto", memory_budget=B)`` with ``B`` below every candidate schedule's proven lower bound
    solved each candidate in turn before refusing (20 solves for 30 outputs of one input; a 2,000-output fan took
    30 s to refuse). A candidate whose bound is over the budget cannot fit (every solution is checked to be at least
    its bound): it is no longer solved. The first plan and the serial one the refusal quotes still are."""
    calls = []
    real = plan_module.solve
    monkeypatch.setattr(plan_module, "solve", lambda *a, **k: calls.append(1) or real(*a, **k))
    b = memplan.GraphBuilder("fan")
    b.input("x", 256)
    for i in range(30):
        b.node(f"n{i}", "OP", ["x"], b.output(f"o{i}", 256))
    g = b.build()
    arena = memplan.plan(g, streams="auto").arena_bytes
    calls.clear()
    with pytest.raises(memplan.BudgetError, match=rf"no schedule tried fits: the serial plan needs an arena of {arena} B, "
                                                  rf"over the memory budget of {arena - 1} B"):
        memplan.plan(g, streams="auto", memory_budget=arena - 1)
    assert len(calls) == 2
    assert memplan.plan(g, streams="auto", memory_budget=arena).arena_bytes == arena   # the control
