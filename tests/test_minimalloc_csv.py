"""The minimalloc CSV format: parsing, clear errors, output columns, and the ``memplan csv`` command."""

from __future__ import annotations

import csv
import os

import pytest

from memplan.cli import main
from memplan.errors import InputFormatError
from memplan.io.minimalloc import format_csv, parse_csv, read_csv, solve_table
from memplan.problem import find_collision
from memplan.solvers import SolveOptions

TEXT = "id,lower,upper,size\nb1,0,3,4\nb2,3,9,4\nb3,0,9,4\nb4,9,21,4\nb5,0,21,4\n"


def test_parse_and_problem():
    t = parse_csv(TEXT, "x.csv")
    assert t.ids == ("b1", "b2", "b3", "b4", "b5")
    p = t.problem(12)
    assert p.lower_bound == 12 and p.capacity == 12 and p.is_interval
    assert p.sizes.tolist() == [4] * 5 and p.upper.tolist() == [3, 9, 9, 21, 21]


@pytest.mark.parametrize("solver", ["auto", "greedy", "size", "search", "cpsat", "ggml"])
def test_solve_names_a_problem_that_is_no_buffer_problem(solver):
    """``solvers.solve`` of a CSV table (not its ``problem()``), None or a list is a SolverError naming what
    it got, whatever the solver: each solver failed on it with its own TypeError or AttributeError."""
    from memplan.errors import SolverError
    from memplan.solvers import solve

    table = parse_csv(TEXT, "x.csv")
    with pytest.raises(SolverError, match=r"BufferProblem, not CsvTable .*pass table\.problem\(\)"):
        solve(table, solver)
    for bad in (None, [1, 2]):
        with pytest.raises(SolverError, match=f"BufferProblem, not {type(bad).__name__}"):
            solve(bad, solver)
    assert solve(table.problem(), solver).arena >= 12


def test_output_repeats_input_columns_plus_offset():
    t = parse_csv("size,id,upper,lower,note\n4,a,2,0,x\n4,b,3,1,y\n", "y.csv")
    sol = solve_table(t, 8)
    rows = list(csv.reader(format_csv(t, sol.offsets).splitlines()))
    assert rows[0] == ["size", "id", "upper", "lower", "note", "offset"]
    assert sorted(int(r[5]) for r in rows[1:]) == [0, 4]
    # an offset column already there is replaced, not repeated
    t2 = parse_csv("id,lower,upper,size,offset\na,0,1,4,99\n", "z.csv")
    assert format_csv(t2, solve_table(t2, 4).offsets).splitlines() == ["id,lower,upper,size,offset", "a,0,1,4,0"]


@pytest.mark.parametrize("text, where", [
    ("", "empty file"),
    ("id,lower,size\na,0,4\n", "line 1: missing column 'upper'"),
    ("id,lower,upper,size\na,0,3,4\nb,0,x3,4\n", "line 3, column 'upper': 'x3' is not an integer (buffer 'b')"),
    ("id,lower,upper,size\na,0,3,4\na,1,3,4\n", "line 3, column 'id': buffer 'a' already defined on line 2"),
    ("id,lower,upper,size\na,3,3,4\n", "line 2, column 'upper': buffer 'a' ends at 3, not after its lower 3"),
    ("id,lower,upper,size\na,0,3\n", "line 2: 3 fields, expected 4"),
    ("id,lower,upper,size\na,0,3,-4\n", "line 2, column 'size': negative value -4"),
    ("id,lower,upper,size,id\na,0,3,4,a\n", "line 1: column 'id' appears twice"),
    ("id,lower,upper,size\n,0,3,4\n", "line 2, column 'id': empty buffer id"),
])
def test_malformed_csv_names_file_line_and_column(text, where):
    with pytest.raises(InputFormatError) as info:
        parse_csv(text, "bad.csv")
    assert str(info.value).startswith("bad.csv: ") and where in str(info.value)


def test_missing_file():
    with pytest.raises(InputFormatError, match="no such file"):
        read_csv("/nonexistent/x.csv")


def test_minimalloc_example_file(minimalloc_dir):
    t = read_csv(os.path.join(minimalloc_dir, "examples", "input.12.csv"))
    sol = solve_table(t, 12, options=SolveOptions(time_limit=10))
    assert sol.arena == 12 and find_collision(t.problem(12), sol.offsets) is None


def test_cli_csv_capacity_and_minimise(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text(TEXT)
    out = tmp_path / "out.csv"
    assert main(["csv", str(src), "--capacity", "12", "-o", str(out), "-q"]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["id"] for r in rows] == ["b1", "b2", "b3", "b4", "b5"]
    t = read_csv(str(src))
    offs = [int(r["offset"]) for r in rows]
    assert max(o + 4 for o in offs) <= 12 and find_collision(t.problem(), offs) is None
    assert main(["csv", str(src), "-o", str(out)]) == 0  # no capacity: minimise
    assert "arena 12" in capsys.readouterr().err


def test_cli_csv_capacity_too_small_exits_2_with_both_numbers(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text(TEXT)
    out = tmp_path / "out.csv"
    for solver in ("search", "greedy"):
        assert main(["csv", str(src), "--capacity", "11", "-o", str(out), "--solver", solver]) == 2
        err = capsys.readouterr().err
        assert err.startswith("memplan: error: ") and "capacity 11" in err and "12" in err
        assert not out.exists()


def test_cli_csv_bad_input_exits_2(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("id,lower,upper,size\na,0,1,zz\n")
    assert main(["csv", str(src), "-o", str(tmp_path / "o.csv")]) == 2
    assert "line 2, column 'size'" in capsys.readouterr().err
