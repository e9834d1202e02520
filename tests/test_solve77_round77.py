"""Round 77 (solve77): the minimalloc CSV reader and the solvers on what minimalloc's own format says.

google/minimalloc's CSV (``src/converter.cc``) has an optional ``alignment`` column (``Buffer.alignment``: every offset
of the buffer is a multiple of it). memplan kept it as text and ignored it: a buffer of alignment 4 was written at
offset 3, and the arena called OPTIMAL.
"""

from __future__ import annotations

import pytest
from needs import need

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


# minimalloc's ``gaps`` column (``Buffer.gaps``: spans of a buffer's lifetime where it holds none of its bytes) was
# ignored too: a buffer in its gap still conflicted with those live there, and the bound counted it, so an arena above
# minimalloc's optimum was called OPTIMAL.
GAPPED = "id,lower,upper,size,gaps\na,0,10,3,2-5\nb,3,4,4,\nc,0,3,1,\n"


@pytest.mark.parametrize("solver", ["search", "cpsat", "greedy", "size", "auto"])
def test_a_buffer_in_its_gap_shares_bytes(solver):
    if solver == "cpsat":
        need("ortools")
    t = parse_csv(GAPPED, "g.csv")
    assert t.gaps == (((2, 5),), (), ())
    sol = solve_table(t, solver=solver)
    # a (3 B) and c (1 B) live together over 0-2; b (4 B) alone while a is in its gap
    assert (sol.arena, sol.lower_bound, str(sol.status)) == (4, 4, "OPTIMAL")
    assert format_csv(t, sol.offsets).splitlines()[0] == "id,lower,upper,size,gaps,offset"


def test_offsets_that_overlap_out_of_a_gap_are_no_solution():
    t = parse_csv(GAPPED, "g.csv")
    format_csv(t, [0, 0, 3])   # (a and b share bytes only while a is in its gap)
    with pytest.raises(SolverError, match="overlap buffers 'a' and 'c'"):
        format_csv(t, [0, 0, 2])


@pytest.mark.parametrize("cell, words", [
    ("2-5@0:1", "has a window"), ("2to5", "is not 'lower-upper'"), ("5-2", "not a span within its lifetime 0-10"),
    ("8-12", "not a span within its lifetime"), ("1-4 3-6", "gaps 1-4 and 3-6 overlap"),
])
def test_a_gap_memplan_cannot_plan_is_refused_by_name(cell, words):
    with pytest.raises(InputFormatError, match=r"g\.csv: line 2, column 'gaps': buffer 'a': .*" + words):
        parse_csv(f"id,lower,upper,size,gaps\na,0,10,3,{cell}\n", "g.csv")


# minimalloc's reader takes other names for the required columns (``converter.cc``): ``start`` / ``begin`` for lower,
# ``buffer`` / ``buffer_id`` for id, and the old format's ``end``, the last time step (``upper`` is ``end + 1``). memplan
# refused such a file as "missing column 'lower'".
def test_minimalloc_old_format_start_end_is_read_with_end_inclusive():
    t = parse_csv("buffer_id,start,end,size,gaps\nx,0,9,4,2-4\ny,2,4,4,\nz,9,12,2,\n", "old.csv")
    assert t.ids == ("x", "y", "z")
    assert t.lower.tolist() == [0, 2, 9] and t.upper.tolist() == [10, 5, 13] and t.gaps == (((2, 5),), (), ())
    sol = solve_table(t)
    # y lives over x's gap (time steps 2-4); z shares time step 9 with x
    assert sol.arena == 6 and str(sol.status) == "OPTIMAL"
    assert format_csv(t, sol.offsets).splitlines()[0] == "buffer_id,start,end,size,gaps,offset"
    t = parse_csv("buffer,begin,upper,size\na,0,1,3\nb,1,2,4\n", "b.csv")
    assert t.lower.tolist() == [0, 1] and t.upper.tolist() == [1, 2] and solve_table(t).arena == 4


@pytest.mark.parametrize("text, words", [
    ("id,start,lower,upper,size\nx,0,0,1,1\n", r"line 1: columns 'lower' and 'start' both name the buffers' 'lower'"),
    ("id,start,end,size\nx,3,2,4\n", r"line 2, column 'end': buffer 'x' ends with time step 2, before its start 3"),
    ("id,start,end,size\nx,0,9223372036854775807,4\n", r"column 'end': 9223372036854775807 is not below 2\*\*63 - 1"),
    ("buffer,lower,upper,size\n,0,1,1\n", r"line 2, column 'buffer': empty buffer id"),
])
def test_minimalloc_column_names_are_checked_by_their_own_names(text, words):
    with pytest.raises(InputFormatError, match=words):
        parse_csv(text, "x.csv")


def test_bench_minimalloc_row_of_capacity_0_says_whether_it_fits(tmp_path):
    """A minimalloc problem named ``Z.0.csv`` has capacity 0 (docs/benchmarks.md: ``fits`` null only without one):
    its rows said ``fits: null``, as if the name gave none."""
    import json

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Z.0.csv").write_text("id,lower,upper,size\na,0,2,0\nb,1,3,0\n")
    (tmp_path / "in" / "W.0.csv").write_text("id,lower,upper,size\na,0,2,1\n")
    out = tmp_path / "rows.json"
    assert main(["bench", "planners", "--minimalloc", str(tmp_path / "in"), "--corpus", "minimalloc", "--solvers", "greedy",
                 "--json", str(out)]) == 0
    rows = {r["problem"]: r for r in json.loads(out.read_text())}
    assert (rows["Z"]["capacity"], rows["Z"]["fits"]) == (0, True)
    assert (rows["W"]["capacity"], rows["W"]["fits"]) == (0, False)


def test_gaps_that_let_no_pair_share_keep_the_interval_bound():
    """Three buffers pairwise live together out of a's gap, but never all three at once: the gaps free no pair, so
    the heaviest clique (all three) bounds the arena, above the most bytes live at one time out of every gap."""
    t = parse_csv("id,lower,upper,size,gaps\na,0,10,3,3-6\nb,2,5,4,\nc,4,7,5,\n", "g.csv")
    p = t.problem()
    assert not p.compatible and p.lower_bound == 12
    sol = solve_table(t)
    assert sol.arena == 12 and str(sol.status) == "OPTIMAL"
