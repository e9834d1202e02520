"""Round 75 (cli75): the ``memplan`` command and its files as scripts and CI pipelines use them (CPU, in-process).

Each test names what the command did with an input or option nobody had shown it, and what holds now.
"""

from __future__ import annotations

import os
import time
import zipfile

import pytest

from memplan.cli import main


def test_bench_devices_refuses_ggml_before_planning(monkeypatch, capsys):
    """``memplan bench devices --solver ggml`` (a choice its ``--help`` lists) printed the table's header, then failed
    at the first split (the default ``--devices 2 4``: ggml plans one serial stream, every split has several), and
    with ``--devices 1 2`` after planning the one-device rows; one line before any plan now, as bench schedule."""
    from memplan.benchmarks import devices

    def no_graphs(name):
        raise AssertionError("a graph was built before the refusal")

    monkeypatch.setattr(devices, "model_graph", no_graphs)
    for argv in (["--solver", "ggml"], ["--devices", "1", "2", "--solver", "ggml"]):
        assert main(["bench", "devices", "--models", "tiny", *argv]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.startswith("memplan: error: --solver ggml plans one serial stream, and a split over 2 devices")


def test_bench_devices_takes_ggml_on_one_device(capsys):
    """``--devices 1`` alone splits nothing: ggml plans it (the refusal is for splits only)."""
    assert main(["bench", "devices", "--models", "tiny", "--devices", "1", "--solver", "ggml"]) == 0
    out, err = capsys.readouterr()
    assert "llama-tiny-decode" in out and err == ""


def _no_such_pid() -> int:
    """A process id no process has: the kernel's ``pid_max`` (ids run below it)."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except OSError:
        pytest.skip("no /proc/sys/kernel/pid_max")


def test_bench_graph_salvaged_from_a_killed_write_is_not_removed(tmp_path, monkeypatch, capsys):
    """A graph a SIGKILLed ``plan --graph-out`` / ``import`` left as ``.memplan-PID-XXXXXXXX.tmp``, given to ``bench
    planners --graph`` with ``--json`` into the same folder: the results' write removed that very input as a stale
    leftover where reading it left its read time old (a ``noatime`` mount; here the read is made to leave it old),
    as the positional inputs of every other command never are (``files.inputs_kept``)."""
    import memplan
    import memplan.io
    from memplan import examples, files

    leftover = tmp_path / f".memplan-{_no_such_pid()}-abcd1234.tmp"
    memplan.save_graph(examples.diamond(), str(leftover))
    real_load = memplan.io.load_graph

    def load_on_noatime(path):   # (the read leaves the file's times as they were: written and read hours ago)
        graph = real_load(path)
        then = time.time() - 2 * files.STALE_TEMPORARY_SECONDS
        os.utime(path, (then, then))
        return graph

    monkeypatch.setattr(memplan.io, "load_graph", load_on_noatime)
    load_on_noatime(str(leftover))
    assert main(["bench", "planners", "--graph", str(leftover), "--solvers", "greedy",
                 "--json", str(tmp_path / "results.json")]) == 0, capsys.readouterr().err
    assert leftover.exists() and (tmp_path / "results.json").exists()


def _ctrl_c_in_extension_init(monkeypatch, module: str) -> None:
    """Make importing ``module`` (or a module under it) fail as a C extension's init does when a Ctrl-C comes in it:
    pybind11 raises ImportError("initialization failed") from the KeyboardInterrupt (OR-Tools' ``cp_model_helper``,
    measured: SIGINT 0.62-0.71 s into ``from ortools.sat.python import cp_model``)."""
    import builtins

    real_import = builtins.__import__

    def interrupted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == module or name.startswith(module + ".")):
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as ctrl_c:
                raise ImportError("initialization failed") from ctrl_c
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)


def _left_above_its_bound():
    """A 13-node random DAG whose 3-stream plan the heuristics leave above its lower bound (29184 B, bound 27904 B), so
    that ``auto --time-limit`` runs cpsat on it."""
    import random

    from memplan import GraphBuilder

    r = random.Random(133)
    b = GraphBuilder("r133")
    b.input("x", 256 * r.randint(1, 8))
    ids, n = ["x"], r.randint(8, 16)
    for i in range(n):
        ins = r.sample(ids, min(len(ids), r.randint(1, 3)))
        out = (b.output if i == n - 1 else b.intermediate)(f"t{i}", 256 * r.randint(1, 20))
        b.node(f"n{i}", "X", ins, out, cost=float(r.randint(1, 9)))
        ids.append(f"t{i}")
    return b.build()


def test_ctrl_c_while_ortools_imports_is_an_interrupt(tmp_path, monkeypatch, capsys):
    """A Ctrl-C while CP-SAT's C extension initialised (the first cpsat solve of the process imports OR-Tools) was
    "solver 'cpsat' needs OR-Tools, which does not import (ImportError: initialization failed): pip install ortools",
    exit 2, and with ``--solver auto --time-limit`` it was swallowed: auto took cpsat for not installed and planned on
    with search, exit 0. It is the command's Ctrl-C now: "interrupted", exit 130, the output left as it was."""
    import memplan

    g = tmp_path / "g.json"
    memplan.save_graph(_left_above_its_bound(), str(g))
    out = tmp_path / "p.json"
    out.write_text("mine")
    _ctrl_c_in_extension_init(monkeypatch, "ortools")
    for solver in (["--solver", "cpsat"], ["--solver", "auto", "--time-limit", "5", "--streams", "3"]):
        assert main(["plan", str(g), "-o", str(out), *solver]) == 130
        assert capsys.readouterr().err == "memplan: error: interrupted\n"
        assert out.read_text() == "mine"


@pytest.mark.parametrize("module, argv", [
    ("matplotlib", ["draw", "{g}", "{p}", "-o", "{out}.png"]),
    ("onnx", ["import", "{model}", "-o", "{out}.json"]),
    ("torch", ["import", "{program}", "-o", "{out}.json"]),
])
def test_ctrl_c_while_an_optional_package_imports_is_an_interrupt(tmp_path, monkeypatch, capsys, module, argv):
    """The same for ``draw`` (matplotlib's C extensions) and ``import`` (onnx's bindings, torch's): a Ctrl-C while they
    were first imported was "drawing needs matplotlib: pip install 'memplan[plot]'" / "the ONNX importer needs the
    'onnx' package" / "the torch importer needs PyTorch", exit 2; it is the command's Ctrl-C now, exit 130, nothing
    written."""
    import memplan
    from memplan import examples

    g = examples.diamond()
    paths = {"g": tmp_path / "g.json", "p": tmp_path / "p.json", "model": tmp_path / "m.onnx",
             "program": tmp_path / "m.pt2", "out": tmp_path / "out"}
    memplan.save_graph(g, str(paths["g"]))
    memplan.plan(g).save(str(paths["p"]))
    paths["model"].write_bytes(b"\x08\x07")   # (never read: the package's import comes first)
    with zipfile.ZipFile(paths["program"], "w") as z:   # (a zip archive: read as a torch.export program)
        z.writestr("m/archive_format", "pt2")
    _ctrl_c_in_extension_init(monkeypatch, module)
    assert main([a.format(**paths) for a in argv]) == 130
    assert capsys.readouterr().err == "memplan: error: interrupted\n"
    assert not list(tmp_path.glob("out*"))


def test_trace_draws_a_repeated_event_once(tmp_path, capsys):
    """A plan listing an event more than once (the same happens-before edge, read and verified as listed once;
    ``show`` counts it once, ``simulate`` waits on it once) got one flow arrow per entry in ``memplan trace``: one
    event listed 500,000 times made a 100 MB trace of a million arrows. Each distinct event is one arrow now, and the
    trace is byte for byte the one of the plan listing it once."""
    import json

    import memplan
    from memplan import examples

    g = examples.qkv_attention()
    plan = memplan.plan(g, streams=3).to_dict()
    assert plan["events"]
    memplan.save_graph(g, str(tmp_path / "g.json"))
    (tmp_path / "p.json").write_text(json.dumps(plan))
    repeated = dict(plan, events=plan["events"] + [plan["events"][0]] * 50 + plan["events"][::-1])
    (tmp_path / "r.json").write_text(json.dumps(repeated))
    for name in ("p", "r"):
        assert main(["trace", str(tmp_path / "g.json"), str(tmp_path / f"{name}.json"), "-o",
                     str(tmp_path / f"{name}.trace.json"), "-q"]) == 0, capsys.readouterr().err
    once, again = ((tmp_path / f"{name}.trace.json").read_bytes() for name in ("p", "r"))
    assert once == again
    arrows = [e for e in json.loads(once)["traceEvents"] if e["ph"] == "s"]
    assert len(arrows) == len(plan["events"])


def test_ctrl_c_while_onnxruntime_imports_is_not_cached_as_not_installed(tmp_path, monkeypatch, capsys):
    """The ONNX importer asks onnxruntime (lazily, once a process: ``functools.cache``) for its schemas and op names;
    a Ctrl-C in its bindings' init was taken for "onnxruntime not installed", cached for the process, and the import
    went on without those checks, exit 0 (a model with a ``com.microsoft`` op). It is the command's Ctrl-C now, and
    nothing is cached."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from memplan.importers.onnx import model_checks, ort_ops, type_rules

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 8])
    node = helper.make_node("Gelu", ["X"], ["Y"], domain="com.microsoft")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    cached = (type_rules._ort_schemas, ort_ops._installed_ort_ops, model_checks._ort_op_names, ort_ops._ort_symbolic)
    for f in cached:   # (asked afresh, as a new process would)
        f.cache_clear()
    _ctrl_c_in_extension_init(monkeypatch, "onnxruntime")
    try:
        assert main(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "g.json")]) == 130
        assert capsys.readouterr().err == "memplan: error: interrupted\n"
        assert not (tmp_path / "g.json").exists()
        for f in cached[1:3]:   # (each asks onnxruntime itself)
            with pytest.raises(KeyboardInterrupt):
                f()
        assert all(f.cache_info().currsize == 0 for f in cached)
    finally:
        for f in cached:
            f.cache_clear()
