"""Round-31 review: bugs the round's own fixes introduced (each test fails on main before the fix in its commit)."""

from __future__ import annotations

import json
import sys

from cli_contract import assert_bad_input, run_memplan

from memplan import examples
from memplan.io import save_graph


def _minimalloc_dir(tmp_path, name: str):
    d = tmp_path / "mm"
    d.mkdir()
    (d / name).write_text("id,lower,upper,size\na,0,2,10\nb,1,3,20\n")
    return d


def test_bench_takes_a_file_name_capacity_with_leading_zeros_past_19_digits(tmp_path, capsys):
    """``A.<21 zeros>64.csv`` names capacity 64 (befd190 ran it so). The round-31 check counted digits before
    dropping leading zeros and refused it as "the capacity ... is not below 2**63", which it is."""
    name = "A." + "0" * 21 + "64.csv"
    d = _minimalloc_dir(tmp_path, name)
    code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc", "--minimalloc", d,
                                          "--solvers", "greedy", "--json", "-"])
    assert code == 0 and "Traceback" not in err, err
    (row,) = json.loads(out)
    assert row["problem"] == "A" and row["capacity"] == 64, row


def test_bench_still_refuses_a_file_name_capacity_of_2_63_written_with_leading_zeros(tmp_path, capsys):
    """The fix above drops leading zeros only: 2**63 behind them is still refused, naming the file."""
    name = "A.000" + str(1 << 63) + ".csv"
    d = _minimalloc_dir(tmp_path, name)
    code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc", "--minimalloc", d,
                                          "--solvers", "greedy"])
    assert_bad_input(code, err, name, "capacity")
    assert out == ""


def test_plan_to_stdout_redirected_over_its_input_says_the_shell_emptied_it(tmp_path, capsys, monkeypatch):
    """``memplan plan G -o - > G``: the shell truncates ``G`` before memplan runs. The round-31 check said
    "refusing to write over an input (redirect stdout elsewhere)", as if ``G`` were intact: it is already empty, and
    the user must restore it. (``>> G`` leaves ``G`` whole: that message stays.)"""
    g = tmp_path / "g.json"
    g.write_text("")   # what '> g.json' leaves
    with open(g, "a") as out, monkeypatch.context() as m:
        m.setattr(sys, "stdout", out)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
    assert_bad_input(code, err, "-o -", "input graph", "emptied")
    assert "refusing to write over an input" not in err

    save_graph(examples.qkv_attention(), str(g))
    before = g.read_text()
    with open(g, "a") as out, monkeypatch.context() as m:
        m.setattr(sys, "stdout", out)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
    assert_bad_input(code, err, "-o -", "input graph", "refusing to write over an input")
    assert g.read_text() == before
