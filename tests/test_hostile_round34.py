"""Hostile review round 34: the library's newest paths (per-device solves, rejoin, time-limited solves)."""

from __future__ import annotations

import importlib
import random
from dataclasses import replace

import pytest
from cli_contract import run_memplan

import memplan
from memplan import GraphBuilder
from memplan.generators import fanout_join

plan_module = importlib.import_module("memplan.plan")


def random_chain(seed: int, n: int = 40) -> memplan.Graph:
    """A serial graph of ``n`` nodes, each reading one to three of the last few tensors (odd sizes at alignment 16:
    the heuristics leave gaps, so exact solvers have work to do)."""
    r = random.Random(seed)
    b = GraphBuilder(f"r{seed}", alignment=16)
    b.input("x", 64)
    live = ["x"]
    for k in range(n):
        ins = r.sample(live, min(len(live), r.randint(1, 3)))
        b.tensor(f"t{k}", r.randint(1, 40) * 16 + r.choice([0, 3]), "output" if k == n - 1 else "intermediate")
        b.node(f"n{k}", "OP", ins, [f"t{k}"], cost=1.0)
        live.append(f"t{k}")
        if len(live) > 6:
            live.pop(r.randrange(len(live) - 1))
    return b.build()


def _first_solve_says(monkeypatch, info: dict) -> list[tuple[str, float | None]]:
    """Makes the first time-limited solve of a plan return with ``info`` added (as a Ctrl-C or the wall clock leaves
    it); returns the (solver, time_limit) of every solve."""
    real = plan_module.solve
    calls: list[tuple[str, float | None]] = []

    def solve(problem, solver, options):
        calls.append((solver, options.time_limit))
        sol = real(problem, solver, options)
        first = options.time_limit is not None and sum(t is not None for _, t in calls) == 1
        return replace(sol, info={**sol.info, **info}) if first else sol

    monkeypatch.setattr(plan_module, "solve", solve)
    return calls


def test_a_ctrl_c_in_one_devices_solve_marks_the_split_plan_and_ends_the_exact_work(monkeypatch):
    """A Ctrl-C in an exact solver keeps its best plan, marked ``interrupted`` in the solver block, as a one-device
    plan says. Split over devices, the mark was dropped (the block lists per-device status and gap only) and every
    later device was solved with its full share of the time limit: the Ctrl-C was lost to them."""
    calls = _first_solve_says(monkeypatch, {"interrupted": True})
    p = memplan.plan_graph(random_chain(29), devices=2, solver="cpsat", time_limit=3).plan
    assert p.solver["interrupted"] is True
    assert p.solver["per_device"][0]["interrupted"] is True
    assert "interrupted" not in p.solver["per_device"][1]
    assert calls == [("cpsat", 1.5), ("auto", None)]   # the device after it: the default's heuristics only


def test_a_wall_clock_stop_in_one_devices_solve_is_named_by_the_split_plan(monkeypatch):
    """A solve the wall-clock safety stop ended may not repeat: a one-device block says ``stopped: wall_clock``,
    a split plan's said nothing."""
    _first_solve_says(monkeypatch, {"stopped": "wall_clock"})
    p = memplan.plan_graph(random_chain(29), devices=2, solver="search", time_limit=2).plan
    assert p.solver["stopped"] == "wall_clock"
    assert p.solver["per_device"][0]["stopped"] == "wall_clock"
    assert "stopped" not in p.solver["per_device"][1]


def test_a_split_plan_nothing_stopped_says_neither():
    p = memplan.plan_graph(random_chain(29), devices=2).plan
    assert "interrupted" not in p.solver and "stopped" not in p.solver
    assert not any("interrupted" in d or "stopped" in d for d in p.solver["per_device"])


def test_a_ctrl_c_in_a_memory_budgets_exact_probe_marks_the_plan_and_ends_the_exact_work(monkeypatch):
    """With a memory budget the first schedule's heuristics miss, an exact solver probes the candidates, then plans
    the one chosen with the rest of the limit. A Ctrl-C in a probe kept its best plan, but the probes after it and
    the chosen schedule's solve still ran (the Ctrl-C lost), and the plan returned said nothing of it."""
    g = fanout_join(30, seed=0)[0]
    budget = memplan.plan(g).arena_bytes
    assert memplan.plan(g, streams="auto").arena_bytes > budget   # the budget makes it probe
    calls = _first_solve_says(monkeypatch, {"interrupted": True})
    p = memplan.plan(g, streams="auto", memory_budget=budget, solver="search", time_limit=1)
    assert p.solver["interrupted"] is True
    assert p.arena_bytes <= budget
    assert sum(t is not None for _, t in calls) == 1   # no exact solve after the Ctrl-C
    assert all(solver == "auto" for solver, t in calls if t is None)


def test_the_cli_summary_says_a_plan_was_cut_short(monkeypatch, tmp_path, capsys):
    """``memplan plan`` after a Ctrl-C writes the best plan found so far; its summary line read like any finished
    solve's ("solver cpsat FEASIBLE"), with nothing saying the time limit was not spent."""
    graph = tmp_path / "g.json"
    memplan.save_graph(random_chain(29), str(graph))
    _first_solve_says(monkeypatch, {"interrupted": True})
    code, _out, err = run_memplan(capsys, ["plan", str(graph), "-o", str(tmp_path / "p.json"), "--solver", "search",
                                           "--time-limit", "1"])
    assert code == 0 and "(interrupted: the best plan found so far)" in err, err
    assert err.count("\n") == 1


class _OwnLower(str):
    """A str subclass whose methods are the caller's code (here: they raise)."""

    def lower(self):
        raise RuntimeError("lower")


def test_a_str_subclass_field_name_is_matched_by_its_characters():
    """A graph document's free-form key that is a str subclass overriding ``lower`` was a raw RuntimeError from the
    misspelt-field matcher (round 33); its characters are what is matched, as everywhere else ids are read."""
    import warnings

    from memplan.errors import FieldWarning

    doc = random_chain(3, n=2).to_dict()
    doc["nodes"][0][_OwnLower("in_place")] = {}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        memplan.graph_from_dict(doc)
    assert [str(w.message) for w in seen if issubclass(w.category, FieldWarning)] == [
        "graph: node field 'in_place' is not a field of memplan.graph/1 (did you mean 'inplace'?); ignored"]


def test_a_node_stream_of_leaves_out_is_named_as_missing():
    """``schedule_with_events(g, order, stream_of)`` with a node left out of ``stream_of`` said "node 'n0': stream
    None is not an integer in 0..1023", as if the mapping gave it None; a None given is still named so."""
    g = random_chain(3, n=3)
    order = [n.id for n in g.nodes]
    with pytest.raises(memplan.ScheduleError, match=r"stream_of gives no stream for node 'n1'"):
        memplan.schedule_with_events(g, order, {"n0": 0, "n2": 0})
    with pytest.raises(memplan.ScheduleError, match=r"node 'n1': stream None is not an integer"):
        memplan.schedule_with_events(g, order, {"n0": 0, "n1": None, "n2": 0})


def test_a_list_of_one_capacity_for_two_devices_is_said_in_the_singular():
    with pytest.raises(memplan.BudgetError, match=r"lists 1 capacity for 2 devices"):
        memplan.plan(random_chain(3), devices=2, device_capacity=[1 << 30])


def test_the_csv_summary_says_a_solve_was_cut_short(monkeypatch, tmp_path, capsys):
    """``memplan csv`` writes offsets only, so its summary line is all a user learns of the solve: after a Ctrl-C it
    read like a finished solve's."""
    minimalloc = importlib.import_module("memplan.io.minimalloc")
    real = minimalloc.solve

    def solve(problem, solver, options):
        sol = real(problem, solver, options)
        return replace(sol, info={**sol.info, "interrupted": True})

    monkeypatch.setattr(minimalloc, "solve", solve)
    src = tmp_path / "p.csv"
    src.write_text("id,lower,upper,size\na,0,2,16\nb,1,3,16\n")
    code, _out, err = run_memplan(capsys, ["csv", str(src), "-o", str(tmp_path / "o.csv"), "--solver", "search",
                                           "--time-limit", "1"])
    assert code == 0 and err.count("\n") == 1 and "(interrupted: the best plan found so far)" in err, err


def test_a_ctrl_c_before_any_schedule_fits_the_budget_is_raised_not_a_budget_error(monkeypatch):
    """A budget no candidate's heuristics meet, and a Ctrl-C in the first exact probe: nothing fitted yet, so it
    is the caller's stop (``KeyboardInterrupt``, the CLI's "interrupted"), as the search raises it before anything
    fits. It was a ``BudgetError`` "no schedule tried fits", after the other probes had run their shares."""
    g = fanout_join(30, seed=0)[0]
    _first_solve_says(monkeypatch, {"interrupted": True})
    with pytest.raises(KeyboardInterrupt):
        memplan.plan(g, streams="auto", memory_budget=80_000, solver="search", time_limit=1)
