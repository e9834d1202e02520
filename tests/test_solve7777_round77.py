"""Round 77 (solve77): the minimalloc CSV reader and the solvers on what minimalloc's own format says.

google/minimalloc's CSV (``src/converter.cc``) has an optional ``alignment`` column (``Buffer.alignment``: every offset
of the buffer is a multiple of it). memplan kept it as text and ignored it: a buffer of alignment 4 was written at
offset 3, and the arena called OPTIMAL.
"""

from __future__ import annotations

import pytest

from memplan.cli import main
from memplan.errors import InputFormatError, SolverError
from memplan.io.minimalloc import format_csv, parse_csv, solve_table


@pytest.mark.parametrize("solver", ["search", "greedy", "auto"])
def test_an_alignment_column_aligns_every_offset(solver):
    t = parse_csv("id,lower,upper,size,alignment\na,0,2,3,4\nb,0,2,4,4\nc,1,3,5,4\n", "al.csv")
    assert t.alignment == 4 and t.problem().alignment == 4
    sol = solve_table(t, solver=solver)
    assert all(int(o) % 4 == 0 for o in sol.offsets), sol.offsets
    out = format_csv(t, sol.offsets)
    assert out.splitlines()[0] == "id,lower,upper,size,alignment,offset"


def test_an_unaligned_offset_is_not_written_as_a_solution():
    t = parse_csv("id,lower,upper,size,alignment\na,0,2,3,4\nb,0,2,4,4\n", "al.csv")
    with pytest.raises(SolverError, match=r"buffer 'b': offset 3 is not a multiple of its alignment 4"):
        format_csv(t, [0, 3])


@pytest.mark.parametrize("cells, words", [
    (("1", "4"), r"line 3, column 'alignment': buffer 'b' has alignment 4, buffer 'a' \(line 2\) 1: memplan plans "
                 "one alignment"),
    (("3", "3"), r"line 2, column 'alignment': buffer 'a' has alignment 3: memplan plans an alignment that is a power "
                 "of two"),
    (("0", "0"), r"buffer 'a' has alignment 0"),
])
def test_an_alignment_memplan_cannot_plan_is_refused_by_name(cells, words):
    text = f"id,lower,upper,size,alignment\na,0,2,3,{cells[0]}\nb,0,2,4,{cells[1]}\n"
    with pytest.raises(InputFormatError, match=words):
        parse_csv(text, "al.csv")


def test_cli_csv_with_an_alignment_column(tmp_path, capsys):
    src = tmp_path / "al.csv"
    src.write_text("id,lower,upper,size,alignment\na,0,2,3,8\nb,0,2,4,8\n")
    assert main(["csv", str(src), "-o", str(tmp_path / "out.csv"), "-q"]) == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert sorted(int(r.rsplit(",", 1)[1]) for r in rows[1:]) == [0, 8]
    src.write_text("id,lower,upper,size,alignment\na,0,2,3,1\nb,0,2,4,8\n")
    assert main(["csv", str(src), "-o", str(tmp_path / "out2.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one alignment for every buffer" in err
