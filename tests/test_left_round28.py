"""Leftovers of round 28's reviews in the core: a multi-device plan's status and gap, a budget refusal that
quoted the serial arena as if nothing needed less, three CLI messages that said something untrue, and a plan
whose free-form blocks cannot be read."""

from __future__ import annotations

import dataclasses
import importlib
import os

import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan import files
from memplan.examples import chain
from memplan.io import save_graph
from memplan.problem import Status

plan_module = importlib.import_module("memplan.plan")   # (``memplan.plan`` is the function)

# ---- multi-device status and gap --------------------------------------------------------------------------


def test_a_device_stopped_at_its_budget_makes_the_plan_feasible_not_heuristic(monkeypatch):
    """An exact solver that stops at its budget on one device (FEASIBLE) beside a device solved to its bound
    (OPTIMAL) was reported as HEURISTIC, the status that claims nothing: the weakest device's status is the one
    that holds for all. The gap is the largest device's, which is never below the top-level fields' own ratio."""
    real = plan_module.solve

    def stopped_on(device: int, status: Status):
        calls: list[int] = []

        def solve(problem, solver, options):   # device ``device`` as an exact solver stopped at its limit reports it
            sol = real(problem, solver, options)
            calls.append(1)
            return dataclasses.replace(sol, status=status, lower_bound=sol.arena // 2) if len(calls) == device + 1 else sol
        return solve

    monkeypatch.setattr(plan_module, "solve", stopped_on(1, Status.FEASIBLE))
    p = memplan.plan(chain(8), devices=2)
    block = p.solver
    assert [d["status"] for d in block["per_device"]] == ["OPTIMAL", "FEASIBLE"]
    assert block["status"] == "FEASIBLE"
    assert block["gap"] == max(d["gap"] for d in block["per_device"]) > 0
    assert block["gap"] >= (p.arena_bytes - p.lower_bound_bytes) / p.arena_bytes
    # a heuristic device still makes the whole plan HEURISTIC (the weakest claim)
    monkeypatch.setattr(plan_module, "solve", stopped_on(0, Status.HEURISTIC))
    p = memplan.plan(chain(8), devices=2)
    assert [d["status"] for d in p.solver["per_device"]] == ["HEURISTIC", "OPTIMAL"]
    assert p.solver["status"] == "HEURISTIC"


def test_a_multi_device_plan_of_optimal_devices_is_optimal():   # the control
    p = memplan.plan(chain(8), devices=2)
    assert [d["status"] for d in p.solver["per_device"]] == ["OPTIMAL", "OPTIMAL"]
    assert p.solver["status"] == "OPTIMAL" and p.solver["gap"] == 0.0


# ---- a budget refusal ---------------------------------------------------------------------------------------

def _smaller_than_serial() -> memplan.Graph:
    """A random graph (hypothesis, ``tests.strategies.graphs``) on which a two-stream give-back needs 768 B, while
    the serial plan needs 1145 B and the low-memory serial order 889 B."""
    b = memplan.GraphBuilder("rand", alignment=64)
    b.input("in0", 256)
    b.input("in1", 121)
    b.tensor("v0", 48, view_of="in0", view_offset=53)
    b.tensor("t1", 256)
    b.tensor("v2", 169, view_of="in0", view_offset=84)
    b.tensor("t3", 512)
    b.tensor("v4", 78, view_of="in0", view_offset=178)
    b.tensor("t5", 121)   # (512 until round 51: an output larger than its in-place input is now kept apart from it)
    b.node("n0", "OP", ["in0", "in0"], ["t1"], cost=4.0, inplace={"t1": "in0"})
    b.node("n1", "OP", ["v2"], ["t3"], cost=3.0, group="g0")
    b.node("n2", "OP", ["t1", "v2", "t1"], ["v4"], cost=5.0, inplace={"v4": "v2"}, group="g1")
    b.node("n3", "OP", ["in1", "in1", "v2"], ["t5"], cost=2.0, inplace={"t5": "in1"}, group="g1")
    return b.build()


def test_a_budget_refusal_does_not_say_the_serial_plan_is_the_smallest():
    """"even the serial plan needs an arena of 1145 B" (with "a low-memory serial order needs 889 B") said that no
    schedule tried needed less, while the candidates are stopped once past the budget and one of them needs 768 B:
    a budget of 768 B is met. The refusal quotes the serial arenas as what they are."""
    g = _smaller_than_serial()
    assert memplan.plan(g).arena_bytes == 1145
    fits = memplan.plan(g, streams=2, memory_budget=768)
    assert fits.arena_bytes == 768
    with pytest.raises(memplan.BudgetError) as info:
        memplan.plan(g, streams=2, memory_budget=767)
    msg = str(info.value)
    assert "even" not in msg, msg
    assert msg.startswith("graph 'rand': no schedule tried fits: the serial plan needs an arena of 1145 B, over the "
                          "memory budget of 767 B (a low-memory serial order needs 889 B); "), msg
    # (768 B is what node n1 touches: below it no schedule is searched, and the refusal says so, round 48)
    assert msg.endswith("; no schedule can need less than 768 B: node 'n1' touches 2 arena tensor(s) that no plan "
                        "may overlap (all in use while it runs)"), msg
    # one stream: the serial orders are all that is tried, and both are quoted, as before
    with pytest.raises(memplan.BudgetError, match=r"^graph 'rand': the serial plan needs an arena of 1145 B, over "
                                                  r"the memory budget of 767 B \(a low-memory serial order needs "
                                                  r"889 B\); no schedule can need less than 768 B"):
        memplan.plan(g, memory_budget=767)


# ---- CLI wording ------------------------------------------------------------------------------------------------

def test_an_output_under_a_file_names_the_file_not_a_missing_directory(tmp_path, capsys):
    """``-o out.json/x`` beside a file ``out.json`` said "no directory out.json": there is one, a file."""
    g = tmp_path / "g.json"
    save_graph(chain(), str(g))
    (tmp_path / "f.json").write_text("{}")
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "f.json" / "x"])
    assert_bad_input(code, err, f"{tmp_path / 'f.json'} is not a directory")
    assert "no directory" not in err
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "f.json" / "d" / "x"])
    assert_bad_input(code, err, f"no directory {tmp_path / 'f.json' / 'd'} ({tmp_path / 'f.json'} is not a directory)")
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "none" / "x"])   # the control
    assert_bad_input(code, err, f"no directory {tmp_path / 'none'}")
    assert (tmp_path / "f.json").read_text() == "{}"


def test_a_writable_file_on_a_read_only_mount_is_not_called_read_only(tmp_path, monkeypatch):
    """A file whose mode allows writing, on a read-only mount (``os.access`` says no, root included), was refused
    as "the file is read-only"; it names the file system. Without write bits it is the file; with bits for
    another user only, the permission."""
    out = tmp_path / "p.json"
    out.write_text("{}")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(out) else real_access(p, mode, **k))

    class Flags:
        f_flag = os.ST_RDONLY

    real_statvfs = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda p: Flags() if str(p) == str(out) else real_statvfs(p))
    with pytest.raises(memplan.MemplanError) as info:
        files.check_writable(str(out), "-o")
    assert str(info.value) == f"-o {out}: cannot write: the file is on a read-only file system"
    monkeypatch.setattr(os, "statvfs", real_statvfs)
    with pytest.raises(memplan.MemplanError, match="no permission to write the file"):
        files.check_writable(str(out), "-o")
    out.chmod(0o444)
    with pytest.raises(memplan.MemplanError, match="the file is read-only"):
        files.check_writable(str(out), "-o")


def test_a_list_option_given_twice_without_values_says_so(capsys):
    """``--wide --wide`` (nargs="*") was quoted "the second time as --wide )": an empty value, shown as nothing."""
    code, _, err = run_memplan(capsys, ["bench", "scale", "--wide", "--wide"])
    assert_bad_input(code, err, "--wide", "the second time as --wide with no values)")
    code, _, err = run_memplan(capsys, ["bench", "scale", "--wide", "--wide", "7"])   # the control
    assert_bad_input(code, err, "the second time as --wide 7)")


# ---- a plan's free-form blocks from code ---------------------------------------------------------------------

class _Unreadable(dict):
    def items(self):
        raise RuntimeError("items() broke")


@pytest.mark.parametrize(("field", "value"), [("solver", _Unreadable(a=1)), ("solver", {"x": [_Unreadable(a=1)]}),
                                              ("extra", _Unreadable(a=1)), ("extra", {"y": {"z": _Unreadable()}})])
def test_a_plan_block_that_cannot_be_read_is_a_plan_format_error_naming_it(field, value):
    """A dict subclass whose ``items()`` raises, in the solver block or the extra fields (at any depth), raised
    that RuntimeError raw from ``Plan(...)``; it is a PlanFormatError naming the field."""
    p = memplan.plan(chain())
    with pytest.raises(memplan.PlanFormatError, match=rf"plan: field '{field}' cannot be read as JSON \(RuntimeError"):
        dataclasses.replace(p, **{field: value})
    # a readable dict subclass is copied as before (the control)
    q = dataclasses.replace(p, extra=type("D", (dict,), {})(note=1))
    assert type(q.extra) is dict and q.to_dict()["note"] == 1
