"""The command line, round 30: options that the other options leave without effect, ``bench`` selections
that ran more than was selected, and hostile files and paths.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zipfile

import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan import examples
from memplan.cli import main

CSV = "id,lower,upper,size\n0,0,2,4\n1,1,3,4\n2,2,4,8\n"


@pytest.fixture
def csv_file(tmp_path):
    c = tmp_path / "p.csv"
    c.write_text(CSV)
    return c


# ---- 1. an option accepted and then without effect ---------------------------------------------------------

#: (command, extra options, words of the refusal): each was accepted and ignored, the output written as without it
IDLE = [
    # greedy's (or auto's heuristics') one pass, with nothing said about the option
    ("plan", ["--solver", "greedy", "--time-limit", "60"], ["--time-limit 60", "--solver greedy"]),
    ("plan", ["--solver", "size", "--time-limit", "1"], ["--time-limit 1", "--solver size"]),
    ("plan", ["--solver", "ggml", "--time-limit", "1"], ["--time-limit 1", "--solver ggml"]),
    ("plan", ["--solver", "greedy", "--seed", "7"], ["--seed 7", "--solver greedy"]),
    ("plan", ["--seed", "7"], ["--seed 7", "--solver auto without --time-limit"]),
    ("plan", ["--seed", "0"], ["--seed 0", "--solver auto without --time-limit"]),   # given, though the default
    ("plan", ["--solver", "search", "--workers", "4"], ["--workers 4", "--solver search", "CP-SAT"]),
    ("plan", ["--workers", "4"], ["--workers 4", "--solver auto without --time-limit"]),
    ("plan", ["--solver", "size", "--workers", "1"], ["--workers 1", "--solver size"]),
    ("plan", ["--solver", "greedy", "--progress"], ["--progress", "--solver greedy"]),
    ("plan", ["--progress"], ["--progress", "--solver auto without --time-limit"]),
    ("plan", ["--solver", "search", "--progress", "-q"], ["--progress", "-q/--quiet"]),
    # the scheduler's event latency, for a serial plan (no events): the same plan, byte for byte
    ("plan", ["--event-us", "20"], ["--event-us 20", "without --streams"]),
    ("plan", ["--event-us", "0", "--memory-budget", "1M"], ["--event-us 0", "without --streams"]),
    ("csv", ["--solver", "greedy", "--time-limit", "5"], ["--time-limit 5", "--solver greedy"]),
    ("csv", ["--workers", "2"], ["--workers 2", "--solver search"]),          # the default solver is the search
    ("csv", ["--solver", "auto", "--seed", "3"], ["--seed 3", "--solver auto without --time-limit"]),
    ("csv", ["--progress", "-q"], ["--progress", "-q/--quiet"]),
    # without --capacity every solver minimises; with one, only the exact solvers (search, cpsat since round 44, and
    # auto with a time limit) stop at the first fit: the heuristics make one packing either way
    ("csv", ["--minimize"], ["--minimize", "without --capacity"]),
    ("csv", ["--capacity", "64", "--minimize", "--solver", "greedy"], ["--minimize", "--solver greedy"]),
    # (auto without --time-limit on this 3-buffer problem: its short search stops at the first fit, so --minimize may
    # change the packing and is not warned of; test_cli_round48 has the case and the one of more than 64 buffers)
]


@pytest.mark.parametrize("command, extra, words", IDLE)
def test_an_option_without_effect_is_warned_of(tmp_path, capsys, graph_file, csv_file, command, extra, words):
    """Said on one warning line naming both options, and the run goes on (a script sweeping solvers with one
    shared --time-limit is not stopped at its first heuristic): the output is the one made without it."""
    source, out = (graph_file, tmp_path / "p.json") if command == "plan" else (csv_file, tmp_path / "o.csv")
    code, _, err = run_memplan(capsys, [command, source, "-o", out, *extra])
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("memplan: warning: ")]
    assert len(warnings) >= 1 and "has no effect" in warnings[0], err
    assert all(w in " ".join(warnings) for w in words), (words, warnings)
    assert out.exists()


@pytest.mark.parametrize("extra", [
    ["--solver", "cpsat", "--time-limit", "0.2", "--seed", "3", "--workers", "2"],
    ["--solver", "search", "--time-limit", "0.2", "--seed", "3"],
    ["--time-limit", "0.2", "--seed", "3", "--workers", "2"],        # auto with a time limit runs both exact ones
    ["--solver", "search", "--progress"],
    ["--streams", "2", "--event-us", "20"],
    ["--devices", "2", "--graph-out", "{split}", "--event-us", "20"],   # the split's cross-device events
])
def test_plan_keeps_options_that_take_effect(tmp_path, capsys, graph_file, extra):
    extra = [x.replace("{split}", str(tmp_path / "s.json")) for x in extra]
    code, _, err = run_memplan(capsys, ["plan", graph_file, "-o", tmp_path / "p.json", "-q" if "--progress" not in
                                        extra else "--timings", *extra])
    assert code == 0, err
    assert "warning" not in err, err


def test_event_us_with_devices_changes_the_plan(tmp_path, capsys):
    """Why ``--event-us`` stays allowed with ``--devices N`` and no ``--streams``: the split's cross-device
    events are timed with it (the solver block's makespan)."""
    g = tmp_path / "g.json"
    memplan.save_graph(examples.llama(examples.LLAMA_TINY), str(g))
    spans = []
    for us in ("0", "50"):
        p = tmp_path / f"p{us}.json"
        assert main(["plan", str(g), "-o", str(p), "-q", "--devices", "2", "--graph-out", str(tmp_path / "s.json"),
                     "--event-us", us]) == 0
        spans.append(json.loads(p.read_text())["solver"]["split"]["makespan_us"])
    assert spans[0] < spans[1]


@pytest.mark.parametrize("extra", [
    ["--solver", "search", "--seed", "4"],
    ["--capacity", "64", "--minimize"],
    ["--capacity", "64", "--minimize", "--solver", "auto", "--time-limit", "0.2"],
    ["--capacity", "64", "--minimize", "--solver", "cpsat", "--time-limit", "0.2"],
    ["--solver", "cpsat", "--workers", "2", "--time-limit", "0.2"],
])
def test_csv_keeps_options_that_take_effect(tmp_path, capsys, csv_file, extra):
    code, _, err = run_memplan(capsys, ["csv", csv_file, "-o", tmp_path / "o.csv", "-q", *extra])
    assert "warning" not in err, err
    assert code == 0, err


def test_an_idle_option_is_refused_before_the_graph_is_read(tmp_path, capsys):
    """A usage mistake is named first: ``--max-events`` without ``--streams`` was refused only after the graph
    had been read (a missing graph was reported instead)."""
    missing = tmp_path / "missing.json"
    code, _, err = run_memplan(capsys, ["plan", missing, "-o", tmp_path / "p.json", "--max-events", "3"])
    assert_bad_input(code, err, "--max-events 3", "--streams")


# ---- 1. bench planners: options of a part not chosen ----------------------------------------------------------

@pytest.fixture
def no_planner_runs(monkeypatch):
    """``bench planners`` with its solves replaced by nothing: the checks before the run are what is tested."""
    from memplan.benchmarks import planners

    ran = []
    monkeypatch.setattr(planners, "_graph_rows", lambda part, name, *a: ran.append(name) or [])
    monkeypatch.setattr(planners, "_minimalloc_rows", lambda tables, *a: ran.extend(t.path for t in tables) or [])
    return ran


@pytest.mark.parametrize("argv, words", [
    (["--corpus", "llama", "--sizes", "100"], ["--sizes 100", "--corpus llama", "random"]),
    (["--corpus", "random", "--sizes", "50", "--layers", "2"], ["--layers 2", "--corpus random", "llama"]),
    (["--corpus", "examples", "--minimalloc", "{data}"], ["--minimalloc", "--corpus examples", "minimalloc"]),
    (["--corpus", "minimalloc", "--minimalloc", "{data}", "--streams", "2"], ["--streams 2", "--corpus minimalloc"]),
    (["--corpus", "examples", "--solvers", "greedy,size", "--time-limit", "5"],
     ["--time-limit 5", "--solvers greedy,size"]),
])
def test_bench_planners_refuses_an_option_without_effect(capsys, no_planner_runs, minimalloc_dir, argv, words):
    argv = [a.replace("{data}", minimalloc_dir) for a in argv]
    code, out, err = run_memplan(capsys, ["bench", "planners", *argv])
    assert_bad_input(code, err, *words)
    assert no_planner_runs == [] and out == ""


def test_bench_planners_minimalloc_chosen_without_problems(capsys, monkeypatch, no_planner_runs):
    """``--corpus minimalloc`` where the default problem directory is missing and none was given printed the
    table's head and nothing else, exit 0."""
    from memplan.benchmarks import planners

    monkeypatch.setattr(planners, "_default_minimalloc", lambda: None)
    code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc"])
    assert_bad_input(code, err, "--corpus minimalloc", "--minimalloc DIR")
    assert out == ""


def test_bench_planners_keeps_options_of_chosen_parts(capsys, no_planner_runs):
    code, _, err = run_memplan(capsys, ["bench", "planners", "--corpus", "random,llama", "--sizes", "40",
                                        "--layers", "1", "--streams", "2", "--solvers", "greedy,search",
                                        "--time-limit", "1"])
    assert code == 0, err
    assert len(no_planner_runs) == 3   # llama decode and prefill, one random graph


# ---- 2. bench scale: a selection runs only what it selects --------------------------------------------------

@pytest.fixture
def scale_cases(monkeypatch):
    """``bench scale`` with each case's child process replaced by a row: the cases it would run, in order."""
    from memplan.benchmarks import scale

    ran = []

    def fake(cmd, case):
        ran.append(tuple(cmd[3:6]))
        return json.dumps({"arena": 1, "lower_bound": 1, "tensors": 1, "streams": 1, "total_s": 0.0,
                           "peak_rss_mib": 1.0})

    monkeypatch.setattr(scale, "_run_case", fake)
    return ran


@pytest.mark.parametrize("argv, cases", [
    # ran the three default fan-out/join graphs (up to a million nodes, minutes each) before the chosen ones
    (["--inplace", "8", "--mode", "serial"], [("inplace-one", "8", "serial")]),
    (["--wide", "5", "--chain", "6", "--mode", "serial"], [("wide", "5", "serial"), ("chain", "6", "serial")]),
    (["--io", "7", "--mode", "auto"], [("io", "7", "auto")]),
    # as before: --nodes with no sizes clears the defaults, --nodes N runs N, nothing named runs the defaults
    (["--nodes", "--experts", "3", "--mode", "serial"], [("experts", "3", "serial")]),
    (["--nodes", "50", "--random", "9", "--mode", "serial"], [("fanout", "50", "serial"), ("random", "9", "serial")]),
    (["--mode", "serial"], [("fanout", "10000", "serial"), ("fanout", "100000", "serial"),
                            ("fanout", "1000000", "serial")]),
])
def test_bench_scale_runs_only_what_is_selected(capsys, scale_cases, argv, cases):
    code, _, err = run_memplan(capsys, ["bench", "scale", *argv])
    assert code == 0, err
    assert scale_cases == cases


@pytest.mark.parametrize("argv, words", [
    (["--nodes", "50", "--mode", "serial", "--streams", "4"], ["--streams 4", "--mode serial", "auto"]),
    (["--nodes", "50", "--inplace-shape", "spread"], ["--inplace-shape spread", "without --inplace"]),
    (["--wide", "5", "--mode", "serial", "natural"], ["--mode natural", "without --nodes"]),
])
def test_bench_scale_refuses_an_option_without_effect(capsys, scale_cases, argv, words):
    code, out, err = run_memplan(capsys, ["bench", "scale", *argv])
    assert_bad_input(code, err, *words, "has no effect")
    assert scale_cases == [] and out == ""


# ---- 3. hostile files and paths ------------------------------------------------------------------------------

def _packed(data: bytes) -> dict[str, tuple[bytes, list[str]]]:
    """``data`` made unreadable as text in each way a user may hand it in, and the words its refusal names."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("g.json", data)
    text = data.decode()
    return {
        "gzip": (gzip.compress(data), ["gzip-compressed", "gunzip"]),
        "bzip2": (bz2.compress(data), ["bzip2-compressed"]),
        "xz": (lzma.compress(data), ["xz-compressed"]),
        "zip": (buf.getvalue(), ["zip archive"]),
        "utf16": (text.encode("utf-16"), ["UTF-16 text", "save it as UTF-8"]),
        "utf32": (text.encode("utf-32"), ["UTF-32 text"]),
        "utf16le": (text.encode("utf-16-le"), ["NUL byte (at byte 1)", "UTF-16"]),
        "nul": (data[:5] + b"\x00" + data[5:], ["NUL byte (at byte 5)"]),
    }


@pytest.mark.parametrize("kind", sorted(_packed(b"{}")))
def test_a_graph_plan_or_csv_that_is_not_utf8_text_is_named(tmp_path, capsys, graph_file, csv_file, kind):
    """Compressed, zipped, UTF-16/32 or NUL-holding inputs were "not UTF-8 text", a nesting depth read from binary
    data, or the parser's complaint about the first bytes (a UTF-16 CSV: "missing column 'id'"; a UTF-16 graph
    without a byte-order mark: "Expecting property name enclosed in double quotes"); a CSV with a NUL in an id was
    planned and the NUL written out. Now one line says what the file is and what to do."""
    plan = tmp_path / "plan.json"
    assert main(["plan", str(graph_file), "-o", str(plan), "-q"]) == 0
    for src, argv in ((graph_file, lambda f: ["plan", f, "-o", tmp_path / "o.json"]),
                      (plan, lambda f: ["show", f]),
                      (csv_file, lambda f: ["csv", f, "-o", tmp_path / "o.csv"])):
        data, words = _packed(src.read_bytes())[kind]
        bad = tmp_path / f"bad{src.suffix}"
        bad.write_bytes(data)
        code, _, err = run_memplan(capsys, argv(bad))
        assert_bad_input(code, err, str(bad), *words)
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "o.csv").exists()


def test_the_library_reader_names_a_compressed_graph(tmp_path, graph_file):
    bad = tmp_path / "g.json.gz"
    bad.write_bytes(gzip.compress(graph_file.read_bytes()))
    with pytest.raises(memplan.GraphError, match="gzip-compressed"):
        memplan.load_graph(str(bad))


def test_text_that_starts_like_bzip2_is_still_read(tmp_path, capsys):
    """bzip2's mark is three letters a CSV header may start with: only the full block mark counts."""
    c = tmp_path / "c.csv"
    c.write_text("BZh,id,lower,upper,size\nx,0,0,2,4\n")
    code, _, err = run_memplan(capsys, ["csv", c, "-o", tmp_path / "o.csv", "-q"])
    assert code == 0, err


def test_import_names_a_compressed_model(tmp_path, capsys):
    """``memplan import model.onnx.gz`` renamed ``.onnx``: "not a readable ONNX model (DecodeError: Error parsing
    message with type 'onnx.ModelProto')"; now it says gzip and what to do, before onnx is loaded."""
    m = tmp_path / "m.onnx"
    m.write_bytes(gzip.compress(b"\x08\x07" * 50))
    code, _, err = run_memplan(capsys, ["import", m, "-o", tmp_path / "g.json"])
    assert_bad_input(code, err, "m.onnx", "gzip-compressed")


def test_example_into_a_path_with_a_nul(tmp_path, capsys):
    """``memplan example -o $'a\\0b'`` (a path from a program): a raw ValueError traceback, "embedded null byte"."""
    code, _, err = run_memplan(capsys, ["example", "-o", str(tmp_path / "a\x00b")])
    assert_bad_input(code, err, "NUL")


def test_example_into_a_file(tmp_path, capsys):
    """``memplan example -o FILE``: "cannot create directory FILE: File exists", which read as a directory that
    exists; now it says a file is in the way."""
    f = tmp_path / "f"
    f.write_text("keep")
    code, _, err = run_memplan(capsys, ["example", "-o", f])
    assert_bad_input(code, err, str(f), "not a directory", "a file")
    assert f.read_text() == "keep"
