"""The command line and library, round 49b: leftovers of earlier rounds.

Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import json
import warnings

import pytest
from cli_contract import assert_bad_input, run_captured

import memplan
from memplan import examples
from memplan.errors import InputFormatError, UnusedOption

CSV = "id,lower,upper,size\n0,0,2,4\n1,1,3,4\n2,2,4,8\n"


@pytest.fixture
def graph_file(tmp_path):
    g = tmp_path / "g.json"
    memplan.save_graph(examples.bundled()["diamond"], str(g))
    return g


# ---- 1. --device-capacity's list without --devices -----------------------------------------------------------------

def test_capacity_list_without_devices_does_not_name_an_option_never_given(tmp_path, graph_file):
    """``plan G --device-capacity 1G,1G`` said "for 1 device (--devices 1)", an option the user never typed."""
    code, _, err = run_captured("plan", graph_file, "-o", tmp_path / "p.json", "--device-capacity", "1G,1G")
    assert_bad_input(code, err, "2 capacities for 1 device", "no --devices given", "--devices 2")
    assert "(--devices 1)" not in err
    code, _, err = run_captured("plan", graph_file, "-o", tmp_path / "p.json", "--devices", "1",
                                "--device-capacity", "1G,1G")
    assert_bad_input(code, err, "(--devices 1)")   # (given: named as given)


# ---- 2. bench planners --json among the problems -------------------------------------------------------------------

@pytest.fixture
def problems(tmp_path):
    chal = tmp_path / "mm" / "challenging"
    chal.mkdir(parents=True)
    (chal / "A.64.csv").write_text(CSV)
    return tmp_path / "mm"


@pytest.mark.parametrize("where", ["challenging/B.csv", "challenging/out.json"])
def test_bench_json_inside_the_problem_folder_is_refused(problems, where):
    """``bench planners --minimalloc D --json D/challenging/B.csv`` wrote the results among the problems, and the next
    run failed reading them as a CSV problem."""
    out = problems / where
    code, _, err = run_captured("bench", "planners", "--minimalloc", problems, "--corpus", "minimalloc",
                                "--solvers", "greedy", "--json", out)
    assert_bad_input(code, err, "--json", "--minimalloc", "problem folder")
    assert not out.exists()
    code, _, err = run_captured("bench", "planners", "--minimalloc", problems, "--corpus", "minimalloc",
                                "--solvers", "greedy", "--json", problems / "results.json")
    assert code == 0, err   # (beside the problem folder: fine)
    assert json.loads((problems / "results.json").read_text())


def test_bench_json_inside_a_flat_problem_folder_is_refused(tmp_path):
    """Without ``challenging/`` the problems are read from the folder itself."""
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "A.csv").write_text(CSV)
    code, _, err = run_captured("bench", "planners", "--minimalloc", tmp_path / "flat", "--corpus", "minimalloc",
                                "--solvers", "greedy", "--json", tmp_path / "flat" / "B.csv")
    assert code == 2, err
    assert not (tmp_path / "flat" / "B.csv").exists()


# ---- 3. a column named as the format's in other letter case --------------------------------------------------------

@pytest.mark.parametrize("header", ["id,lower,upper,size,Offset", "ID,lower,upper,size", "id,Lower,upper,size,lower"])
def test_csv_column_in_other_case_is_refused_naming_it(tmp_path, header):
    """An input with ``Offset`` was written back with both ``Offset`` and ``offset``; ``ID`` was "missing column
    'id'" with the column there."""
    name = next(h for h in header.split(",") if h.lower() != h)
    src = tmp_path / "c.csv"
    rows = "\n".join(",".join(["a", "0", "2", "4", "0"][: len(header.split(","))]) for _ in range(1))
    src.write_text(f"{header}\n{rows}\n")
    code, _, err = run_captured("csv", src, "-o", tmp_path / "o.csv")
    assert_bad_input(code, err, repr(name), "case")
    assert not (tmp_path / "o.csv").exists()


def test_format_csv_refuses_a_table_built_with_such_a_header():
    from dataclasses import replace

    from memplan.io.minimalloc import format_csv, parse_csv

    table = parse_csv(CSV + "", "t.csv")
    table = replace(table, header=("id", "lower", "upper", "size"), rows=tuple(r for r in table.rows))
    assert format_csv(table, [0, 4, 8]).splitlines()[0] == "id,lower,upper,size,offset"
    bad = replace(table, header=("id", "lower", "upper", "Size"))
    with pytest.raises(InputFormatError, match="'Size'"):
        format_csv(bad, [0, 4, 8])


def test_csv_lowercase_offset_is_still_replaced(tmp_path):
    src = tmp_path / "c.csv"
    src.write_text("id,lower,upper,size,offset,note\na,0,2,4,99,x\n")
    code, _, err = run_captured("csv", src, "-o", tmp_path / "o.csv", "-q")
    assert code == 0, err
    assert (tmp_path / "o.csv").read_text() == "id,lower,upper,size,note,offset\na,0,2,4,x,0\n"


# ---- 4. the library warns of solver options a heuristic never reads ------------------------------------------------

@pytest.mark.parametrize("solver, options, named", [
    ("greedy", {"time_limit": 5}, ["time_limit=5", "solver='greedy'"]),
    ("size", {"seed": 3}, ["seed=3", "solver='size'"]),
    ("ggml", {"workers": 2}, ["workers=2", "solver='ggml'"]),
    ("auto", {"seed": 3}, ["seed=3", "solver='auto'"]),
    ("search", {"workers": 2}, ["workers=2", "solver='search'"]),
])
def test_library_plan_warns_of_an_option_the_solver_never_reads(solver, options, named):
    g = examples.bundled()["diamond"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = memplan.plan(g, solver=solver, **options)
    texts = [str(w.message) for w in caught if issubclass(w.category, UnusedOption)]
    assert len(texts) == 1 and all(n in texts[0] for n in named), texts
    assert caught[0].filename == __file__   # (points at the caller's line)
    assert p.to_json() == memplan.plan(g, solver=solver).to_json()


@pytest.mark.parametrize("solver, options", [
    ("search", {"time_limit": 0.1, "seed": 3}), ("cpsat", {"time_limit": 0.1, "seed": 3, "workers": 2}),
    ("auto", {"time_limit": 0.1, "seed": 3, "workers": 2}), ("greedy", {}),
])
def test_library_plan_is_silent_where_the_options_are_read(solver, options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        memplan.plan(examples.bundled()["diamond"], solver=solver, **options)
    assert not [w for w in caught if issubclass(w.category, UnusedOption)]


def test_solve_table_and_plan_devices_warn_too():
    from memplan.io.minimalloc import parse_csv, solve_table
    from memplan.solvers import SolveOptions

    with pytest.warns(UnusedOption, match="time_limit=2 has no effect with solver='greedy'"):
        solve_table(parse_csv(CSV), solver="greedy", options=SolveOptions(time_limit=2))
    with pytest.warns(UnusedOption, match="seed=4 has no effect with solver='size'"):
        memplan.plan_devices(examples.llama(examples.LLAMA_TINY), 2, solver="size", options=SolveOptions(seed=4))


@pytest.mark.parametrize("command, extra, words", [
    ("plan", ["--solver", "greedy", "--time-limit", "60", "--seed", "3"], ["--time-limit 60", "--seed 3"]),
    ("plan", ["--solver", "greedy", "--seed", "0", "--workers", "1"], ["--seed 0", "--workers 1"]),
    ("csv", ["--solver", "size", "--time-limit", "2", "--workers", "3"], ["--time-limit 2", "--workers 3"]),
])
def test_cli_prints_each_unused_solver_option_once(tmp_path, graph_file, command, extra, words):
    src = graph_file if command == "plan" else tmp_path / "c.csv"
    if command == "csv":
        src.write_text(CSV)
    code, _, err = run_captured(command, src, "-o", tmp_path / "out", "-q", *extra)
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == len(words), err
    for w in words:
        assert sum(line.startswith(f"memplan: warning: {w} has no effect") for line in lines) == 1, err


# ---- 5. show counts distinct events --------------------------------------------------------------------------------

@pytest.fixture
def two_stream(tmp_path, graph_file):
    out = tmp_path / "p.json"
    code, _, err = run_captured("plan", graph_file, "-o", out, "-q", "--streams", "2")
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert len(doc["events"]) == 2
    return out, doc


def test_show_counts_each_event_once_and_says_how_many_repeat(tmp_path, graph_file, two_stream):
    """A plan listing its 2 events three times each read "events 6" in ``show`` while ``simulate`` said 2."""
    out, doc = two_stream
    doc["events"] = doc["events"] * 3
    edited = tmp_path / "e.json"
    edited.write_text(json.dumps(doc))
    code, text, err = run_captured("show", edited)
    assert code == 0, err
    line = next(x for x in text.splitlines() if x.startswith("events"))
    assert line.split()[1] == "2" and "4 duplicate entries" in line, line
    code, sim, err = run_captured("simulate", graph_file, edited)
    assert code == 0 and "2 event(s)" in sim, (sim, err)
    code, plain, _ = run_captured("show", out)
    assert next(x for x in plain.splitlines() if x.startswith("events")) == "events       2"


# ---- 6. ids that print alike are escaped in show's table ------------------------------------------------------------

def test_show_escapes_ids_that_differ_only_in_normalization(tmp_path):
    """Two tensors ``'t\\u00e9'`` and ``'te\\u0301'`` printed both as ``té`` in the largest-tensors table."""
    nfc, nfd = "t\u00e9", "te\u0301"
    g = memplan.graph_from_dict({"format": "memplan.graph/1", "name": "twins", "alignment": 1, "tensors": [
        {"id": "x", "size": 8, "kind": "input"}, {"id": nfc, "size": 16, "kind": "intermediate"},
        {"id": nfd, "size": 32, "kind": "intermediate"},
        {"id": "y", "size": 4, "kind": "output"}], "nodes": [
        {"id": "a", "inputs": ["x"], "outputs": [nfc]}, {"id": "b", "inputs": [nfc], "outputs": [nfd]},
        {"id": "c", "inputs": [nfd], "outputs": ["y"]}]})
    p = memplan.plan(g)
    from memplan.show import describe

    text = describe(p)
    rows = text.split("largest tensors")[1].splitlines()[2:]
    names = [r.split()[0] for r in rows]
    assert ascii(nfc) in names and ascii(nfd) in names, text
    assert "x" in names and "y" in names   # (ids without a twin as they are)
    path = tmp_path / "p.json"
    p.save(str(path))
    code, out, err = run_captured("show", path)
    assert code == 0 and ascii(nfd) in out and ascii(nfc) in out, (out, err)


# ---- 7. an OPTIMAL claim the plan's numbers contradict ---------------------------------------------------------------

def test_show_and_verify_flag_an_optimal_claim_above_the_lower_bound(tmp_path, graph_file):
    """A hand-edited plan claiming OPTIMAL with its arena above its lower bound was shown without comment."""
    out = tmp_path / "p.json"
    assert run_captured("plan", graph_file, "-o", out, "-q", "--solver", "greedy")[0] == 0
    doc = json.loads(out.read_text())
    assert doc["solver"]["status"] == "OPTIMAL"
    code, text, err = run_captured("show", out)
    assert code == 0 and "warning" not in text + err
    code, text, err = run_captured("verify", graph_file, out)
    assert code == 0 and "warning" not in err
    # the arena made larger (every offset moved up: still safe), the claim left as it was
    doc["tensors"] = [dict(t, offset=t["offset"] + 1024) if t["offset"] is not None else t for t in doc["tensors"]]
    doc["arena_bytes"] += 1024
    edited = tmp_path / "e.json"
    edited.write_text(json.dumps(doc))
    code, text, err = run_captured("show", edited)
    assert code == 0, err
    warn = [x for x in text.splitlines() if x.startswith("warning")]
    assert len(warn) == 1 and "OPTIMAL" in warn[0] and str(doc["arena_bytes"]) in warn[0], text
    code, text, err = run_captured("verify", graph_file, edited)
    assert code == 0 and text.endswith(": safe\n"), (text, err)
    assert err.count("memplan: warning: ") == 1 and "OPTIMAL" in err, err
    # a proven bound equal to the arena supports the claim
    doc["solver"]["bound"] = doc["arena_bytes"]
    edited.write_text(json.dumps(doc))
    code, text, err = run_captured("show", edited)
    assert code == 0 and "warning" not in text, text


def test_show_flags_a_bound_above_the_arena(tmp_path, graph_file):
    out = tmp_path / "p.json"
    assert run_captured("plan", graph_file, "-o", out, "-q", "--solver", "search", "--time-limit", "0.1")[0] == 0
    doc = json.loads(out.read_text())
    doc["solver"]["bound"] = doc["arena_bytes"] + 1
    out.write_text(json.dumps(doc))
    code, text, err = run_captured("show", out)
    assert code == 0 and "bound" in next(x for x in text.splitlines() if x.startswith("warning")), text


@pytest.mark.parametrize("kw", [{}, {"solver": "greedy", "fused_groups": True}, {"streams": 2},
                                {"devices": 2, "solver": "size"}, {"solver": "cpsat", "time_limit": 0.1}])
def test_library_plans_are_never_flagged(kw):
    from memplan.show import solver_claim_warnings

    for g in (examples.bundled()["llama-tiny"], examples.bundled()["moe"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert solver_claim_warnings(memplan.plan(g, **kw)) == []


# ---- abbreviations of options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, typed", [
    (["--str", "2"], "--str"), (["--time", "1"], "--time"), (["--solv", "greedy"], "--solv"), (["--out", "{out}"], "--out"),
])
def test_option_abbreviations_are_refused(tmp_path, graph_file, argv, typed):
    """``--str 2`` was taken as ``--streams 2`` (argparse's prefix matching)."""
    argv = [a.replace("{out}", str(tmp_path / "q.json")) for a in argv]
    code, _, err = run_captured("plan", graph_file, "-o", tmp_path / "p.json", *argv)
    assert_bad_input(code, err, typed)
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "q.json").exists()


def test_bench_stdout_redirected_into_the_problem_folder_is_refused(problems, tmp_path, capsys):
    """``bench planners --minimalloc D > D/challenging/Z.csv``: the shell's empty Z.csv was read as a problem ("empty
    file", naming no redirection), and a report sent there lands among the inputs."""
    import contextlib

    from cli_contract import exit_code

    from memplan.cli import main

    argv = ["bench", "planners", "--minimalloc", str(problems), "--corpus", "minimalloc", "--solvers", "greedy"]
    for target, extra in ((problems / "challenging" / "Z.csv", []), (problems / "challenging" / "Y.json",
                                                                     ["--json", "-"]), (tmp_path / "ok.txt", [])):
        with open(target, "w") as out, contextlib.redirect_stdout(out):
            code = exit_code(main, argv + extra)
        err = capsys.readouterr().err
        if target.parent == tmp_path:
            assert code == 0 and "greedy" in target.read_text(), err
        else:
            assert_bad_input(code, err, f"stdout is redirected to {target.name}", "problem folder")
            assert target.read_text() == ""
            target.unlink()


def test_show_escapes_node_ids_that_print_alike_in_the_stream_table():
    from memplan.show import describe

    p = memplan.Plan(graph="g", alignment=1, arena_bytes=0, lower_bound_bytes=0, streams=2,
                     order=(("n\u00e9", 0), ("ne\u0301", 1), ("z", 1)), events=(), tensors=())
    table = describe(p).split("\nper stream:")[1]
    assert ascii("n\u00e9") in table and ascii("ne\u0301") in table and " z" in table, table


@pytest.mark.parametrize("bound, flagged", [(10, False), (10.0, False), ("10", True), (True, True), (None, True),
                                            (11, True), (1e308, True)])
def test_optimal_claim_against_a_bound_of_any_json_type(bound, flagged):
    from memplan.show import solver_claim_warnings

    p = memplan.Plan(graph="g", alignment=1, arena_bytes=10, lower_bound_bytes=8, streams=1, order=(), events=(),
                     tensors=(), solver={"status": "OPTIMAL", "bound": bound})
    assert bool(solver_claim_warnings(p)) == flagged
