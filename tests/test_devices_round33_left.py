"""Round 33: one ``device_capacity`` per device (two different GPUs), in the library and as ``--device-capacity
A,B`` in the CLI. A single number keeps meaning each device's capacity, and plans made with one are unchanged.

Each test names the input, what happened, and what happens now.
"""

from __future__ import annotations

import itertools
import json

import pytest
from cli_contract import assert_bad_input, run_memplan
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan import BudgetError, plan_devices
from memplan.devices import partition, split_devices
from memplan.examples import LLAMA_TINY, llama


def _brute_force(cost, weight, allowed, caps):
    """The smallest largest stage cost over every contiguous split into as many non-empty stages as the allowed
    cuts permit, up to ``len(caps)`` (no device left empty that a stage could fill), stage ``d`` on device ``d``
    holding at most ``caps[d]`` bytes of weights (None: none fits)."""
    cuts = [i + 1 for i in range(len(cost) - 1) if allowed[i]]
    fitting = ([0, *chosen, len(cost)] for chosen in itertools.combinations(cuts, min(len(caps) - 1, len(cuts))))
    worst = [max(sum(cost[a:b]) for a, b in zip(bounds, bounds[1:])) for bounds in fitting
             if all(sum(weight[a:b]) <= cap for cap, a, b in zip(caps, bounds, bounds[1:]))]
    return min(worst, default=None)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_partition_with_one_capacity_per_device_is_optimal(data):
    """Random unit lists and one capacity per device: ``partition`` finds a split exactly when one exists,
    every device within its own capacity, and as balanced as the best such split (brute force). It took one
    number only (every device the same)."""
    U = data.draw(st.integers(1, 8))
    cost = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5, 7.0]), min_size=U, max_size=U))
    weight = data.draw(st.lists(st.integers(0, 40), min_size=U, max_size=U))
    allowed = data.draw(st.lists(st.booleans(), min_size=U, max_size=U))
    n = data.draw(st.integers(1, 4))
    caps = data.draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    cut_bytes = data.draw(st.one_of(st.none(), st.lists(st.integers(0, 9), min_size=U, max_size=U)))
    want = _brute_force(cost, weight, allowed, caps)
    if want is None:
        with pytest.raises(BudgetError, match=r"device (\d+) needs (at least )?\d+ B of weights .* over the device_capacity of"):
            partition(cost, weight, allowed, n, caps, cut_bytes=cut_bytes)
        return
    stages = partition(cost, weight, allowed, n, caps, cut_bytes=cut_bytes, slack=0.0)
    assert len(stages) == n and [u for a, b in stages for u in range(a, b)] == list(range(U))
    for d, (a, b) in enumerate(stages):
        assert sum(weight[a:b]) <= caps[d], (stages, caps)
        assert b == a or b == U or allowed[b - 1]
    got = max(sum(cost[a:b]) for a, b in stages)
    assert got <= want * (1 + 1e-9) + 1e-9, (got, want, stages, caps)
    assert sum(b > a for a, b in stages) == min(n, 1 + sum(allowed[:-1]))   # no device left empty needlessly


def test_two_different_gpus_split_by_their_own_capacities():
    """``plan(g, devices=2, device_capacity=[big, small])``: device 1 holds at most its own (smaller) capacity,
    where the cost-balanced split needs more; one number could only say "each device", so the smaller GPU's
    capacity refused the split outright (device 0 could not hold what it must then)."""
    g = llama(LLAMA_TINY)
    total = sum(t.size for t in g.tensors if t.kind == "weight")
    balanced, bp = plan_devices(g, 2)
    small = min(balanced.weight_bytes)   # what device 0 holds in the balanced split: less than device 1's
    big = total + max(bp.device_arena_bytes) * 4
    with pytest.raises(BudgetError, match="device"):
        memplan.plan(g, devices=2, device_capacity=small)
    split, p = plan_devices(g, 2, device_capacity=[big, small])
    assert split.stages != balanced.stages
    for d, cap in enumerate([big, small]):
        assert split.weight_bytes[d] + p.device_arena_bytes[d] <= cap
    memplan.verify(split.graph, p)


def test_one_number_and_a_list_of_the_same_number_plan_the_same():
    """A list of equal capacities is what one number meant: the same plan, byte for byte."""
    g = llama(LLAMA_TINY)
    _, p = plan_devices(g, 2)
    cap = 4 * max(p.device_arena_bytes) + sum(t.size for t in g.tensors if t.kind == "weight")
    one = memplan.plan(g, devices=2, device_capacity=cap).to_json()
    assert memplan.plan(g, devices=2, device_capacity=[cap, cap]).to_json() == one
    assert memplan.plan(g, devices=2, device_capacity=(cap, cap)).to_json() == one
    single = memplan.plan(g)
    assert memplan.plan(g, device_capacity=[cap]).to_json() == single.to_json()


@pytest.mark.parametrize("cap,words", [
    ([1 << 40, -1], r"device_capacity\[1\] \(device 1\) must be a non-negative byte count"),
    ([1 << 40, 2.5], r"device_capacity\[1\] \(device 1\)"),
    ([], "or a list of them"),
    ("1G", "or a list of them"),
    ([1 << 40, 1 << 40, 1 << 40], "device_capacity lists 3 capacities for 2 devices"),
    ([1 << 40], "device_capacity lists 1 capacity for 2 devices"),
])
def test_a_bad_capacity_list_is_refused_naming_the_device(cap, words):
    g = llama(LLAMA_TINY)
    for call in (lambda: memplan.plan(g, devices=2, device_capacity=cap),
                 lambda: split_devices(g, 2, device_capacity=cap)):
        with pytest.raises(BudgetError, match=words):
            call()


def test_a_list_for_one_device_must_hold_one():
    g = llama(LLAMA_TINY)
    with pytest.raises(BudgetError, match="device_capacity lists 2 capacities for 1 device:"):
        memplan.plan(g, device_capacity=[1 << 40, 1 << 40])


def test_the_device_over_its_own_capacity_is_named():
    """Device 1's capacity too small for anything: the error names device 1 and its own capacity."""
    g = llama(LLAMA_TINY)
    with pytest.raises(BudgetError, match=r"device 1 needs at least \d+ B of weights .* over the device_capacity of 16 B"):
        memplan.plan(g, devices=2, device_capacity=[1 << 40, 16])


def test_the_cli_takes_one_capacity_per_device(tmp_path, capsys):
    """``memplan plan --devices 2 --device-capacity BIG,SMALL`` plans as the library does; the option took one
    byte count only ("not a byte count: '...,...'")."""
    g = llama(LLAMA_TINY)
    gpath, out, split_out = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "s.json"
    memplan.save_graph(g, str(gpath))
    balanced, _ = plan_devices(g, 2)
    small, big = min(balanced.weight_bytes), 1 << 40
    code, _, err = run_memplan(capsys, ["plan", gpath, "-o", out, "-q", "--devices", "2", "--graph-out", split_out,
                                        "--device-capacity", f"{big},{small}"])
    assert code == 0, err
    _, lib = plan_devices(g, 2, device_capacity=[big, small])
    assert json.loads(out.read_text()) == json.loads(lib.to_json())


@pytest.mark.parametrize("value,extra,words", [
    ("1G,x", ["--devices", "2"], ["argument --device-capacity: device 1: not a byte count: 'x'"]),
    ("1G,,2G", ["--devices", "3"], ["argument --device-capacity: device 1: not a byte count: ''"]),
    ("1G,-5", ["--devices", "2"], ["device 1: negative byte count"]),
    ("1G,2G,3G", ["--devices", "2"], ["--device-capacity lists 3 capacities for 2 devices (--devices 2)"]),
    ("1G,2G", [], ["--device-capacity lists 2 capacities for 1 device (no --devices given: one device; give --devices 2"]),
])
def test_the_cli_refuses_a_bad_capacity_list_naming_the_device(tmp_path, capsys, value, extra, words):
    gpath, out = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(llama(LLAMA_TINY), str(gpath))
    argv = ["plan", gpath, "-o", out, "--graph-out", tmp_path / "s.json", *extra, "--device-capacity", value]
    code, _, err = run_memplan(capsys, argv)
    assert_bad_input(code, err, *words)
    assert not out.exists()
