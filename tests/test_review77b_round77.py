"""Round 77 (review77b): a review of round 77's CLI (cli77) and minimalloc CSV (solve77) changes.

1. ``memplan import`` advised ``--dim 'n\\t'=VALUE`` for an ONNX dimension named ``'n\\t'`` (Python's quoting, which a
   shell passes as a backslash and a ``t``), and ``--dim batch size=VALUE`` (split by a shell) for ``'batch size'``:
   the advice failed as written. It is now the NAME ``--dim`` finds, quoted as a shell takes it.
2. One gap in a minimalloc CSV whose lifetimes all overlap took O(n^2) memory to read.
3. ``memplan plan -- --streams`` (a graph file named ``--streams``, what '--' is for) missing ``-o`` said "--streams
   comes after '--' ... give it before the '--'"; ``plan -o P -- G -q`` named no '--' where ``--quiet`` did.
"""

from __future__ import annotations

import shlex

import pytest
from needs import need

from memplan.cli import main


def _model(tmp_path, dim: str):
    onnx = need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [dim, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    return model


@pytest.mark.parametrize("dim, advice", [("n\t", "--dim n=VALUE"), ("batch size", "--dim 'batch size'=VALUE"),
                                         ("2*b", "--dim '2*b'=VALUE")])
def test_import_advises_a_dim_option_that_works_as_a_shell_passes_it(tmp_path, capsys, dim, advice):
    model, out = _model(tmp_path, dim), tmp_path / "g.json"
    assert main(["import", str(model), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"not fixed: pass {advice} or --batch N" in err, err
    argv = shlex.split(advice.replace("VALUE", "3"))   # (what a shell hands memplan for the line as advised)
    assert main(["import", str(model), "-o", str(out), *argv, "-q"]) == 0, capsys.readouterr().err
    assert '"size": 96' in out.read_text()


def test_one_gap_in_a_table_of_overlapping_lifetimes_reads_in_little_memory():
    """2. ``CsvTable.problem`` found the pairs a ``gaps`` column frees from every pair of buffers whose lifetimes
    overlap: one gap in a table of 6,000 rows all live together took 10 s and 700 MB (the interval problem without it
    plans in 0.1 s), and some more rows exhausted the memory. Only the gapped buffers' pairs are looked at now."""
    import tracemalloc

    from memplan.io.minimalloc import parse_csv, solve_table

    rows = [f"b{i},0,10,{1 + i % 7}," for i in range(4000)]
    rows[0], rows[1] = "b0,0,10,5,2-4", "b1,2,4,3,"
    t = parse_csv("id,lower,upper,size,gaps\n" + "\n".join(rows) + "\n", "big.csv")
    tracemalloc.start()
    try:
        p = t.problem()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert p.compatible == {(0, 1)} and peak < 16 << 20, peak
    assert solve_table(t, solver="greedy").arena >= p.lower_bound == sum(1 + i % 7 for i in range(2, 4000)) + 5


def test_after_double_dash_only_a_missing_or_unknown_option_is_named(tmp_path, capsys, monkeypatch):
    """3. The note of an option after '--' named any option-like token there, also the graph file so named that '--'
    let through, beside "required: -o/--output"; and a short option after '--' (``-q``) had no note where its long
    spelling did."""
    import memplan
    from memplan import examples

    monkeypatch.chdir(tmp_path)
    memplan.save_graph(examples.diamond(), "--streams")
    for argv, note in ((["plan", "--", "--streams"], None),
                       (["plan", "--", "--streams", "-o", "p.json"], "; -o comes after '--'"),
                       (["plan", "-o", "p.json", "--", "--streams", "-q"], "-q (-q comes after '--', which ends the "
                                                                          "options: give it before the '--')")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1, err
        assert (note in err) if note else "comes after" not in err, err
    assert main(["plan", "-o", "p.json", "-q", "--", "--streams"]) == 0   # (the file so named is planned)


@pytest.mark.parametrize("gaps, words", [
    ((((2, 3),),), r"gaps must be None or one sequence of \(lower, upper\) spans for each of the 3 buffers"),
    ((((2, 3), (20, 25)), (), ()), r"buffer 'a': gaps \(\(2, 3\), \(20, 25\)\) are not .* within its lifetime 0-10"),
    ((((6, 8), (2, 3)), (), ()), r"buffer 'a': gaps .* in time order"),
    ((((2.0, 3),), (), ()), r"buffer 'a': gaps .* of integers"),
])
def test_a_table_given_gaps_parse_csv_never_makes_is_refused_by_name(gaps, words):
    """4. ``CsvTable.gaps`` (new in round 77) was used unchecked: a table built or ``replace``d with one buffer's gaps
    short raised a raw IndexError, and a span past a buffer's lifetime counted it live there: a bound of 10 above the
    optimum of 5, refused as a solver's own bug ("packed the buffers in 5 bytes, below the problem's proven lower
    bound")."""
    from dataclasses import replace

    from memplan.errors import SolverError
    from memplan.io.minimalloc import parse_csv, solve_table

    t = parse_csv("id,lower,upper,size\na,0,10,5\nb,10,20,5\nc,2,3,1\n", "t.csv")
    with pytest.raises(SolverError, match=r"t\.csv: " + words):
        solve_table(replace(t, gaps=gaps))
    assert solve_table(replace(t, gaps=[[(2, 3)], [], []])).arena == 5   # (lists as tuples)
