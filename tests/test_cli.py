"""The command line: exit codes, one-line errors, atomic outputs, byte-identical plans.

Most tests call ``memplan.cli.main`` in-process; one runs ``python -m memplan`` in a subprocess to
prove the real entry point behaves the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import handgraphs as H
import pytest
from cli_contract import assert_bad_input, leftovers

import memplan
from memplan.cli import main
from memplan.examples import bundled

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_graph(path, graph):
    memplan.save_graph(graph, str(path))
    return str(path)



@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("examples")
    assert main(["example", "-o", str(d)]) == 0
    return d


def test_example_writes_every_bundled_graph(examples_dir, capsys):
    d = examples_dir / "again"
    code, out, _ = run(capsys, "example", "-o", str(d))
    assert code == 0
    stems = sorted(bundled())
    assert sorted(f[:-5] for f in os.listdir(d)) == stems
    assert sorted(os.path.basename(p)[:-5] for p in out.split()) == stems
    for stem, g in bundled().items():
        assert memplan.load_graph(str(d / f"{stem}.json")) == g


@pytest.mark.parametrize("stem", sorted(bundled()))
def test_plan_verify_show_every_example(examples_dir, tmp_path, capsys, stem):
    graph = str(examples_dir / f"{stem}.json")
    out = str(tmp_path / "plan.json")
    code, _, err = run(capsys, "plan", graph, "-o", out)
    assert code == 0, err
    assert "arena" in err and "lower bound" in err
    doc = json.loads(open(out).read())
    assert doc["format"] == "memplan.plan/1" and doc["arena_bytes"] >= doc["lower_bound_bytes"]
    assert "seconds" not in doc["solver"]
    code, stdout, _ = run(capsys, "verify", graph, out)
    assert code == 0 and "safe" in stdout
    code, stdout, _ = run(capsys, "show", out)
    assert code == 0
    assert str(doc["arena_bytes"]) in stdout and str(doc["lower_bound_bytes"]) in stdout
    g = memplan.load_graph(graph)
    memplan.verify(g, memplan.load_plan(out))


@pytest.mark.parametrize("extra", [[], ["--solver", "greedy"], ["--solver", "size"], ["--streams", "2"]])
def test_same_options_same_bytes(examples_dir, tmp_path, capsys, extra):
    graph = str(examples_dir / "llama-tiny.json")
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    assert main(["plan", graph, "-o", a, "-q", *extra]) == 0
    assert main(["plan", graph, "-o", b, "-q", *extra]) == 0
    assert open(a, "rb").read() == open(b, "rb").read()
    # and the API gives the same bytes
    if not extra:
        assert memplan.plan(memplan.load_graph(graph)).to_json().encode() == open(a, "rb").read()


def test_timings_flag_adds_seconds(examples_dir, tmp_path):
    out = str(tmp_path / "p.json")
    assert main(["plan", str(examples_dir / "qkv.json"), "-o", out, "-q", "--timings"]) == 0
    assert isinstance(json.load(open(out))["solver"]["seconds"], float)


def test_quiet_prints_nothing(examples_dir, tmp_path, capsys):
    code, out, err = run(capsys, "plan", str(examples_dir / "qkv.json"), "-o", str(tmp_path / "p.json"), "-q")
    assert (code, out, err) == (0, "", "")


# --- bad input: exit 2, one line, nothing written ---------------------------------------------------

def test_missing_graph_file(tmp_path, capsys):
    out = tmp_path / "p.json"
    code, _, err = run(capsys, "plan", str(tmp_path / "nope.json"), "-o", str(out))
    assert_bad_input(code, err, "nope.json", "no such file")
    assert not out.exists() and leftovers(tmp_path) == []


def test_graph_is_a_directory(tmp_path, capsys):
    code, _, err = run(capsys, "plan", str(tmp_path), "-o", str(tmp_path / "p.json"))
    assert_bad_input(code, err, "directory")


def test_unreadable_graph(tmp_path, capsys, monkeypatch):
    g = write_graph(tmp_path / "g.json", H.chain())
    os.chmod(g, 0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root reads any file: deny it in-process, as the kernel would for a mode-000 file
        from memplan import files

        def denied(path, *a, **k):
            raise PermissionError(13, "Permission denied", path)

        monkeypatch.setattr(files, "open", denied, raising=False)  # every input is read through memplan.files
    code, _, err = run(capsys, "plan", g, "-o", str(tmp_path / "p.json"))
    assert_bad_input(code, err, "g.json", "Permission denied")
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("content,words", [
    (b"{", ["not valid JSON", "line 1"]),
    (b"\xff\xfe\x00", ["UTF-8"]),
    (b"[]", ["JSON object"]),
    (b'{"format": "memplan.graph/9", "tensors": [], "nodes": []}', ["format", "memplan.graph/9"]),
    (b'{"format": "memplan.graph/1", "tensors": [{"id": "t", "size": -1, "kind": "intermediate"}], "nodes": []}', ["'t'", "negative"]),
])
def test_bad_graph_file(tmp_path, capsys, content, words):
    g = tmp_path / "g.json"
    g.write_bytes(content)
    out = tmp_path / "p.json"
    code, _, err = run(capsys, "plan", str(g), "-o", str(out))
    assert_bad_input(code, err, "g.json", *words)
    assert not out.exists() and leftovers(tmp_path) == []


def test_failed_plan_leaves_existing_output_untouched(tmp_path, capsys):
    g = tmp_path / "g.json"
    doc = H.chain().to_dict()
    doc["alignment"] = 3
    g.write_text(json.dumps(doc))
    out = tmp_path / "p.json"
    out.write_text("OLD")
    code, _, err = run(capsys, "plan", str(g), "-o", str(out))
    assert_bad_input(code, err, "alignment")
    assert out.read_text() == "OLD" and leftovers(tmp_path) == []


def test_output_in_missing_directory(tmp_path, capsys):
    g = write_graph(tmp_path / "g.json", H.chain())
    code, _, err = run(capsys, "plan", g, "-o", str(tmp_path / "no" / "such" / "p.json"))
    assert_bad_input(code, err, "cannot write")


def test_output_is_a_directory(tmp_path, capsys):
    g = write_graph(tmp_path / "g.json", H.chain())
    (tmp_path / "d").mkdir()
    code, _, err = run(capsys, "plan", g, "-o", str(tmp_path / "d"))
    assert_bad_input(code, err, "cannot write")
    assert leftovers(tmp_path) == []


def test_example_into_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = run(capsys, "example", "-o", str(f))
    assert_bad_input(code, err, "file")
    assert f.read_text() == "x"


def test_successful_write_replaces_output(tmp_path):
    g = write_graph(tmp_path / "g.json", H.chain())
    out = tmp_path / "p.json"
    out.write_text("OLD")
    assert main(["plan", g, "-o", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["format"] == "memplan.plan/1"
    assert leftovers(tmp_path) == []


@pytest.fixture
def planned(tmp_path):
    g = write_graph(tmp_path / "g.json", H.qkv())
    p = tmp_path / "p.json"
    assert main(["plan", g, "-o", str(p), "-q"]) == 0
    return g, p, json.loads(p.read_text())


@pytest.mark.parametrize("mutate,words", [
    (lambda d: d.pop("arena_bytes"), ["arena_bytes"]),
    (lambda d: d.update(format="memplan.plan/0"), ["format"]),
    (lambda d: d.update(order={}), ["order"]),
    (lambda d: d["order"].__setitem__(0, "norm"), ["order[0]", "not an object"]),
    (lambda d: d["order"][0].pop("stream"), ["order[0]", "'stream'"]),
    (lambda d: d["order"][0].update(stream=True), ["order[0]", "'norm'", "'stream'", "not an integer"]),
    (lambda d: d["order"][1].update(node=[1]), ["order[1]", "'node'", "not a string"]),
    (lambda d: d["tensors"][0].update(offset=1.5), ["tensors[0]", "'x'", "'offset'", "1.5"]),
    (lambda d: d["tensors"][0].pop("size"), ["tensors[0]", "'size'"]),
    (lambda d: d["tensors"][2].update(id=None), ["tensors[2]", "'id'", "not a string"]),
    (lambda d: d.update(events=[5]), ["events[0]", "not an object"]),
    (lambda d: d["events"].append({"after": "norm"}), ["events[0]", "'before'"]),
    (lambda d: d.update(alignment="256"), ["alignment"]),
    (lambda d: d.update(alignment=0), ["'alignment'", "0"]),          # was read, and verified "safe"
    (lambda d: d.update(alignment=-256), ["'alignment'", "-256"]),
    (lambda d: d.update(alignment=256.0), ["'alignment'"]),
    (lambda d: d.update(streams=0), ["'streams'", "0"]),              # was verified "safe" as one stream
    (lambda d: d.update(streams=-1), ["'streams'", "-1"]),
    (lambda d: d.update(streams=True), ["'streams'"]),
])
def test_malformed_plan(planned, tmp_path, capsys, mutate, words):
    g, p, doc = planned
    mutate(doc)
    p.write_text(json.dumps(doc))
    code, _, err = run(capsys, "verify", g, str(p))
    assert_bad_input(code, err, *words)
    code, _, err = run(capsys, "show", str(p))
    assert_bad_input(code, err, *words)


@pytest.mark.parametrize("content", [b"", b"{'a': 1}", b"null", b"\x00\x01"])
def test_plan_not_json(planned, capsys, content):
    g, p, _ = planned
    p.write_bytes(content)
    code, _, err = run(capsys, "verify", g, str(p))
    assert_bad_input(code, err, "p.json")


def test_missing_plan_file(planned, tmp_path, capsys):
    g, _, _ = planned
    code, _, err = run(capsys, "verify", g, str(tmp_path / "gone.json"))
    assert_bad_input(code, err, "gone.json")
    code, _, err = run(capsys, "show", str(tmp_path / "gone.json"))
    assert_bad_input(code, err, "gone.json")


def test_unsafe_plan_is_reported_in_one_line(planned, capsys):
    g, p, doc = planned
    xn = next(e for e in doc["tensors"] if e["id"] == "xn")
    q = next(e for e in doc["tensors"] if e["id"] == "q")
    q["offset"] = xn["offset"]
    p.write_text(json.dumps(doc))
    code, _, err = run(capsys, "verify", g, str(p))
    assert_bad_input(code, err, "unsafe plan", "rule 3", "'xn'", "'q'")


def test_plan_for_another_graph_is_unsafe(planned, tmp_path, capsys):
    _, p, _ = planned
    other = write_graph(tmp_path / "other.json", H.chain())
    code, _, err = run(capsys, "verify", other, str(p))
    assert_bad_input(code, err, "unsafe plan", "rule 1")


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["plan"], ["plan", "g.json"], ["bogus"], ["plan", "g.json", "-o", "p", "--solver", "nope"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
        assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, command", [
    (["verify", "g.json", "p.json", "extra"], "memplan verify"),
    (["show", "p.json", "x", "y"], "memplan show"),
    (["plan", "g.json", "-o", "p.json", "--bogus"], "memplan plan"),
    (["bench", "planners", "--bogus"], "memplan bench planners"),
])
def test_unrecognized_arguments_name_the_commands_help(capsys, argv, command):
    """A stray argument is a usage mistake of that command: its line points at the command's ``--help``
    (as argparse's own errors do), not at ``memplan --help``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert_bad_input(info.value.code, capsys.readouterr().err, "unrecognized arguments", f"(see '{command} --help')")


def test_max_events_without_streams_is_refused(tmp_path, capsys):
    """``--max-events`` caps a multi-stream schedule's events; alone the plan stayed serial with no events,
    the option silently ignored. It is a one-line error now, and nothing is written."""
    g = write_graph(tmp_path / "g.json", H.qkv())
    out = tmp_path / "p.json"
    code, _, err = run(capsys, "plan", g, "-o", str(out), "--max-events", "4")
    assert_bad_input(code, err, "--max-events 4", "--streams")
    assert not out.exists()
    code, _, err = run(capsys, "plan", g, "-o", str(out), "--max-events", "4", "--streams", "auto", "-q")
    assert code == 0, err
    assert len(json.loads(out.read_text())["events"]) <= 4


def test_subprocess_entry_point(tmp_path, capsys, monkeypatch):
    """``python -m memplan`` itself (the suite's entry-point test): a real process writes the examples and its
    exit status 2 reaches the shell with one error line. The commands between run ``main`` in-process (the same
    code ``__main__`` calls; a fresh Python each cost a second of imports), in the same folder."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def sh(*argv):
        return subprocess.run([sys.executable, "-m", "memplan", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    monkeypatch.chdir(tmp_path)
    r = sh("example", "-o", "ex")
    assert r.returncode == 0, r.stderr
    code, _, err = run(capsys, "plan", "ex/fanout15.json", "-o", "p.json")
    assert code == 0, err
    code, _, err = run(capsys, "plan", "ex/fanout15.json", "-o", "p2.json", "-q")
    assert code == 0 and err == ""
    assert (tmp_path / "p.json").read_bytes() == (tmp_path / "p2.json").read_bytes()
    code, out, _ = run(capsys, "verify", "ex/fanout15.json", "p.json")
    assert code == 0 and "safe" in out
    code, out, _ = run(capsys, "show", "p.json")
    assert code == 0 and "fanout15" in out
    r = sh("plan", "missing.json", "-o", "q.json")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith("memplan: error: ")
    assert "Traceback" not in r.stderr and not (tmp_path / "q.json").exists()


def test_format_doc_worked_example_is_what_memplan_plan_writes(tmp_path, capsys):
    """docs/format.md shows a graph and the plan ``memplan plan --streams 3`` writes for it: keep it true."""
    text = open(os.path.join(ROOT, "docs", "format.md"), encoding="utf-8").read()
    section = text[text.index("## Worked example"):]
    blocks = [b.split("```", 1)[0] for b in section.split("```json\n")[1:3]]
    graph_doc, shown = json.loads(blocks[0]), json.loads(blocks[1])
    g = tmp_path / "qkv.json"
    g.write_text(json.dumps(graph_doc))
    out = tmp_path / "plan.json"
    code, _, err = run(capsys, "plan", str(g), "-o", str(out), "--streams", "3", "-q")
    assert code == 0, err
    written = json.loads(out.read_text())
    for key in ("format", "graph", "alignment", "arena_bytes", "lower_bound_bytes", "streams", "order",
                "events", "tensors"):
        assert written[key] == shown[key], key
    assert written["solver"]["name"] == shown["solver"]["name"]
    code, stdout, _ = run(capsys, "verify", str(g), str(out))
    assert code == 0 and stdout.strip() == f"{out}: safe"


def test_interrupted_write_leaves_target_and_no_temp_file(tmp_path, monkeypatch):
    from memplan import io as mio

    target = tmp_path / "p.json"
    target.write_text("OLD")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mio.os, "replace", boom)
    with pytest.raises(memplan.MemplanError, match="No space left"):
        mio.atomic_write_text(str(target), "NEW")
    assert target.read_text() == "OLD" and leftovers(tmp_path) == []

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(mio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mio.atomic_write_text(str(target), "NEW")
    assert target.read_text() == "OLD" and leftovers(tmp_path) == []


def test_plan_file_round_trip(tmp_path):
    g = H.views()
    p = memplan.plan(g, H.streams(g, H.VIEWS_STREAMS))
    path = str(tmp_path / "p.json")
    memplan.save_plan(p, path)
    loaded = memplan.load_plan(path)
    assert loaded.to_json() == p.to_json() == open(path).read()
    memplan.verify(g, loaded)
    assert loaded.offsets() == p.offsets() and loaded.stream_of() == p.stream_of()


@pytest.mark.parametrize("extra", [[], ["--streams", "3"]])
def test_same_bytes_across_processes_and_hash_seeds(tmp_path, extra):
    # set iteration order changes with PYTHONHASHSEED; the plan file must not
    memplan.save_graph(bundled()["llama-tiny"], str(tmp_path / "g.json"))
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed,
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = tmp_path / f"p{seed}.json"
        r = subprocess.run([sys.executable, "-m", "memplan", "plan", "g.json", "-o", out.name, "-q", *extra],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_dash_output_is_stdout(tmp_path, capsys):
    """``-o -`` writes the document to stdout (it wrote a file named ``-``), byte for byte what ``-o FILE``
    writes; the summary stays on stderr; two outputs to stdout, or a picture, are one-line errors."""
    g = write_graph(tmp_path / "g.json", H.qkv())
    f = tmp_path / "p.json"
    assert main(["plan", g, "-o", str(f), "-q"]) == 0
    capsys.readouterr()
    assert run(capsys, "plan", g, "-o", "-")[:2] == (0, f.read_text())
    assert not (tmp_path / "-").exists() and not os.path.exists("-")
    code, out, err = run(capsys, "trace", g, str(f), "-o", "-")
    assert code == 0 and json.loads(out)["traceEvents"] and "trace of" in err
    code, out, err = run(capsys, "plan", g, "-o", "-", "--devices", "2", "--graph-out", "-")
    assert_bad_input(code, err, "-")
    assert out == ""
    code, out, err = run(capsys, "draw", g, str(f), "-o", "-")
    assert_bad_input(code, err, "picture format")
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("id,lower,upper,size\nb0,0,2,64\nb1,1,3,32\nb2,2,4,64\n")
    code, out, err = run(capsys, "csv", str(csv_in), "-o", "-", "--solver", "greedy")
    assert code == 0 and out.splitlines()[0].startswith("id,") and "buffers" in err
    code, out, err = run(capsys, "bench", "scale", "--nodes", "50", "--json", "-")
    assert code == 0 and isinstance(json.loads(out), list) and err   # the table on stderr, the JSON alone
    code, out, err = run(capsys, "bench", "scale", "--nodes", "--chains", "12", "--mode", "auto", "--streams",
                         "1024", "--json", "-")
    (row,) = json.loads(out)
    assert code == 0 and row["graph"] == "chains" and row["tensors"] == 121 and row["streams"] == 12


def test_dash_output_to_a_text_only_stdout(tmp_path, capsys):
    """``-o -`` where stdout is a text stream with no ``buffer`` (``contextlib.redirect_stdout`` to a
    StringIO, a notebook's stream): the document is written as text; it was refused with "cannot write to
    stdout: it is closed"."""
    import contextlib
    import io

    g = write_graph(tmp_path / "g.json", H.qkv())
    f = tmp_path / "p.json"
    assert main(["plan", g, "-o", str(f), "-q"]) == 0
    capsys.readouterr()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["plan", g, "-o", "-", "-q"])
    assert (code, capsys.readouterr().err) == (0, "")
    assert buf.getvalue() == f.read_text()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        memplan.load_plan(str(f)).save("-")
    assert buf.getvalue() == f.read_text()
    buf = io.StringIO()
    buf.close()   # a stream closed in the process: one line, not a traceback
    with contextlib.redirect_stdout(buf):
        code = main(["plan", g, "-o", "-", "-q"])
    assert_bad_input(code, capsys.readouterr().err, "stdout")


def test_dash_is_stdout_only_as_the_string(tmp_path, capsys, monkeypatch):
    """Only the string ``-`` is stdout: ``./-`` and ``Path("-")`` name a file, which may be an input or an
    output beside a stdout output; two stdout outputs are refused by name."""
    monkeypatch.chdir(tmp_path)
    g = write_graph(tmp_path / "-", H.qkv())           # an input file named "-"
    code, out, _ = run(capsys, "plan", "./-", "-o", "-", "-q")
    assert code == 0 and json.loads(out)["format"] == "memplan.plan/1"
    code, out, _ = run(capsys, "plan", g, "-o", str(tmp_path / "p.json"), "--devices", "2", "--graph-out", "-", "-q")
    assert code == 0 and json.loads(out)["format"] == "memplan.graph/1"
    code, out, err = run(capsys, "plan", g, "-o", "-", "--devices", "2", "--graph-out", "-")
    assert_bad_input(code, err, "both write to stdout")
    from pathlib import Path

    memplan.save_plan(memplan.plan(H.qkv()), Path("-"))   # a Path: the file in the working directory
    assert json.loads((tmp_path / "-").read_text())["format"] == "memplan.plan/1"
    assert capsys.readouterr().out == ""
