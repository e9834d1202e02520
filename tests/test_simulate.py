"""The simulator: stream order, event latency, serial makespan, the CLI and ``memplan show``."""

from __future__ import annotations

import json

import pytest

import memplan
from memplan import GraphBuilder, Schedule, simulate
from memplan.cli import main
from memplan.examples import diamond, fanout_join15
from memplan.optimize import CostModel
from memplan.schedule import Event, schedule_with_events


def test_hand_computed_diamond():
    g = diamond()  # a -> (l, r) -> j, every node 10 us
    sched = schedule_with_events(g, ["a", "l", "r", "j"], {"a": 0, "l": 0, "r": 1, "j": 0})
    assert sched.events == (Event("a", "r"), Event("r", "j"))
    sim = simulate(g, sched, CostModel(event_us=2.0))
    assert sim.start_us == {"a": 0.0, "l": 10.0, "r": 12.0, "j": 24.0}
    assert sim.end_us["j"] == 34.0 and sim.makespan_us == 34.0
    assert sim.serial_us == 40.0
    assert sim.stream_of == {"a": 0, "l": 0, "r": 1, "j": 0}
    assert sim.speedup == pytest.approx(40 / 34)
    serial = simulate(g, memplan.serial_schedule(g))
    assert serial.makespan_us == serial.serial_us == 40.0


def test_simulating_a_plan_equals_simulating_its_schedule():
    g = fanout_join15()
    p = memplan.plan(g, streams=3)
    sched = Schedule(tuple(n for n, _ in p.order), tuple(s for _, s in p.order),
                     tuple(Event(a, b) for a, b in p.events))
    assert simulate(g, p) == simulate(g, sched)
    assert simulate(g, p).makespan_us == p.solver["schedule"]["makespan_us"]


def test_estimated_costs_when_graph_has_none():
    b = GraphBuilder("nocost")
    b.input("x", 3_000_000)
    b.node("big", "ADD", ["x"], b.output("y", 3_000_000))
    b.node("v", "VIEW", ["y"], b.view("yv", "y", 16))
    g = b.build()
    sim = simulate(g, memplan.serial_schedule(g))
    assert sim.end_us["big"] == pytest.approx(2.0)   # 6 MB at 3 MB/us
    assert sim.end_us["v"] - sim.start_us["v"] == 0.0


def test_wait_before_record_is_rejected():
    g = diamond()
    bad = Schedule(("a", "r", "l", "j"), (0, 1, 0, 0), (Event("l", "r"),))
    with pytest.raises(memplan.ScheduleError, match="event 'l'->'r' is waited before it is recorded"):
        simulate(g, bad)


def test_cli_plan_simulate_show(tmp_path, capsys):
    gpath = tmp_path / "g.json"
    memplan.save_graph(fanout_join15(), str(gpath))
    ppath = tmp_path / "p.json"
    assert main(["plan", str(gpath), "-o", str(ppath), "--streams", "auto", "--memory-budget", "64K",
                 "--max-events", "8", "--event-us", "1", "-q"]) == 0
    doc = json.loads(ppath.read_text())
    assert doc["streams"] == 3 and doc["solver"]["schedule"]["makespan_us"] == 51.0
    assert main(["simulate", str(gpath), str(ppath)]) == 0
    out = capsys.readouterr().out
    assert "makespan     51.000 us" in out and "serial       110.000 us" in out
    assert main(["show", str(ppath)]) == 0
    out = capsys.readouterr().out
    assert "makespan     51.0 us simulated (serial 110.0 us" in out
    assert main(["plan", str(gpath), "-o", str(ppath), "--streams", "2", "--memory-budget", "1K"]) == 2
    assert "memory budget of 1024 B" in capsys.readouterr().err
