"""Round 33's leftovers in the options the CLI shares with the library: one bound, defined in the library, and
one wording, for ``--event-us`` / ``event_us``, ``--time-limit`` / ``time_limit``, ``--workers`` and ``--seed``.

Each test names the input, what happened, and what happens now.
"""

from __future__ import annotations

import json

import handgraphs as H
import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan.graph import MAX_COST_US
from memplan.solvers.options import MAX_SECONDS, MAX_WORKERS, SEED_LIMIT, SolveOptions


@pytest.fixture
def graph_file(tmp_path):
    path = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(path))
    return str(path)


def test_event_us_above_1e9_plans_from_the_cli_as_from_the_library(tmp_path, capsys, graph_file):
    """``memplan plan --streams 3 --event-us 1e12`` was refused ("at most 1e+09") though
    ``plan(..., cost_model=CostModel(event_us=1e12))`` takes it (the library's bound is 1e15): now both plan it,
    to the same plan."""
    out = tmp_path / "p.json"
    code, _, err = run_memplan(capsys, ["plan", graph_file, "-o", out, "-q", "--streams", "3", "--event-us", "1e12"])
    assert code == 0, err
    lib = memplan.plan(H.qkv(), streams=3, cost_model=memplan.CostModel(event_us=1e12))
    doc = json.loads(out.read_text())
    assert doc["solver"]["schedule"]["event_us"] == 1e12
    assert doc["arena_bytes"] == lib.arena_bytes and doc["order"] == json.loads(lib.to_json())["order"]


@pytest.mark.parametrize("value", [f"{MAX_COST_US:g}", "0"])
def test_the_event_us_bound_is_the_library_s(tmp_path, capsys, graph_file, value):
    """The largest latency the library takes, and 0, are taken by the CLI too (simulate)."""
    plan_path = tmp_path / "p.json"
    assert run_memplan(capsys, ["plan", graph_file, "-o", plan_path, "-q", "--streams", "2"])[0] == 0
    code, _, err = run_memplan(capsys, ["simulate", graph_file, plan_path, "--event-us", value])
    assert code == 0, err


def _library_error(call) -> str:
    with pytest.raises(memplan.MemplanError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("option,value,shown,field,call", [
    ("--event-us", "2e15", "2000000000000000.0", "event_us",
     lambda: memplan.plan(H.qkv(), streams=2, cost_model=memplan.CostModel(event_us=2e15))),
    ("--time-limit", "2e9", "2000000000.0", "time_limit", lambda: SolveOptions(time_limit=2e9)),
    ("--workers", "1025", "1025", "workers", lambda: SolveOptions(workers=1025)),
    ("--seed", str(SEED_LIMIT), str(SEED_LIMIT), "seed", lambda: SolveOptions(seed=SEED_LIMIT)),
])
def test_the_cli_refuses_a_shared_option_in_the_library_s_words(tmp_path, capsys, graph_file, option, value, shown,
                                                                field, call):
    """Past the bound, the CLI's line (naming the option) and the library's error (naming the field) say the
    same rule in the same words: "--event-us ... microseconds must be finite, >= 0 and at most 1e+09" against
    "event_us ... is not a finite non-negative number of microseconds (at most 1e+15)" was two bounds and two
    texts; "seconds must be a number above 0 ..." / "... is more than 1024 workers" / "seed ... is not in
    0..2**31-1" were two texts for one bound."""
    out = tmp_path / "p.json"
    argv = ["plan", graph_file, "-o", out, "--streams", "2", option, value]
    code, _, err = run_memplan(capsys, argv)
    assert_bad_input(code, err, f"argument {option}: ")
    cli_rule = err.split(f"argument {option}: ", 1)[1].split(" (see '")[0]
    lib = _library_error(call)
    assert field in lib
    lib_rule = lib.split(f"{field} ", 1)[1]
    assert cli_rule.replace(repr(value), "X") == lib_rule.replace(shown, "X")
    assert not out.exists()


def test_the_cli_takes_the_library_s_largest_values():
    """The top of each shared bound, as the library defines it, is taken by the CLI's parsers too."""
    from memplan import argtypes

    assert argtypes.seconds(f"{MAX_SECONDS:g}") == MAX_SECONDS
    assert argtypes.workers(str(MAX_WORKERS)) == MAX_WORKERS
    assert argtypes.seed(str(SEED_LIMIT - 1)) == SEED_LIMIT - 1
    assert argtypes.microseconds(f"{MAX_COST_US:g}") == MAX_COST_US
    SolveOptions(time_limit=MAX_SECONDS, workers=MAX_WORKERS, seed=SEED_LIMIT - 1)
