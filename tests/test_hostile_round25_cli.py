"""Hostile input, round 25: command lines (``memplan`` and the scale benchmark's per-case entry point).

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import json

import pytest

from memplan import examples
from memplan.benchmarks import scale
from memplan.cli import main


def _one_line(capsys, words: list[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


@pytest.mark.parametrize("argv, words", [
    ([], ["the following arguments are required: kind, n, mode"]),
    (["fanout"], ["required: n, mode"]),
    (["fanout", "x", "serial"], ["argument n", "'x'"]),
    (["fanout", "10", "serial", "auto", "0"], ["argument streams", "0"]),
    (["fanout", "10", "sideways"], ["argument mode", "'sideways'"]),
    (["fan-out", "10", "serial"], ["argument kind", "'fan-out'"]),
    (["wide", "10", "natural"], ["argument mode", "natural", "fanout only"]),
    (["fanout", "10", "serial", "nosuch"], ["argument solver", "'nosuch'"]),
    (["fanout", "10", "serial", "auto", "auto", "extra"], ["unrecognized arguments: extra"]),
])
def test_the_scale_case_entry_point_names_a_bad_argument(capsys, argv, words):
    """``python -m memplan.benchmarks.scale`` (one case of ``memplan bench scale``, run in a child process) read
    ``sys.argv`` by position: a missing argument was an IndexError traceback, ``x`` for the size a ValueError
    traceback, and an unknown kind (``fan-out``) silently measured a fan-out graph under that name."""
    with pytest.raises(SystemExit) as exc:
        scale.child_main(argv)
    assert exc.value.code == 2
    _one_line(capsys, ["memplan.benchmarks.scale: error: ", *words])


def test_the_scale_case_entry_point_prints_its_row(capsys):
    """The control: a well-formed case prints its row as one JSON line (what ``bench scale`` reads back)."""
    assert scale.child_main(["chains", "2", "auto", "greedy", "3"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["graph"], row["n"], row["mode"], row["tensors"]) == ("chains", 2, "auto", 21)


def test_the_scale_case_entry_point_reports_a_solver_refusal_in_one_line(capsys):
    """ggml plans serial orders only: the natural 4-stream schedule is refused as one line (a traceback's last
    line was what ``bench scale`` quoted)."""
    assert scale.child_main(["fanout", "40", "natural", "ggml"]) == 2
    _one_line(capsys, ["memplan.benchmarks.scale: error: ", "ggml"])


def test_a_graph_number_past_a_double_is_refused_before_a_device_split(tmp_path, capsys):
    """``memplan plan G -o P --devices 2 --graph-out S`` of a graph whose attrs hold ``1e400``: the graph was read
    (as infinity), split and planned, then writing S failed naming the node but neither G nor the number, and
    nothing was written. It is now refused when G is read, naming G, the key and the node."""
    doc = examples.bundled()["llama-tiny"].to_dict()
    doc["nodes"][0].setdefault("attrs", {})["eps"] = 12345.5
    g = tmp_path / "g.json"
    g.write_text(json.dumps(doc).replace("12345.5", "1e400"))
    p, s = tmp_path / "p.json", tmp_path / "s.json"
    assert main(["plan", str(g), "-o", str(p), "--devices", "2", "--graph-out", str(s)]) == 2
    _one_line(capsys, [f"memplan: error: {g}: key ['attrs']['eps'] of '{doc['nodes'][0]['id']}': the number 1e400"])
    assert not p.exists() and not s.exists()
