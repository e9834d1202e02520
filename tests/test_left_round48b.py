"""Round 48b: defects the round-48 helpers left.

- ``memplan.plan(g, streams=1, max_events=3)`` was taken silently where ``max_events`` alone is refused: it warns now
  (``memplan.errors.UnusedOption``), as ``memplan plan --streams 1 --max-events 3`` does, once.
- ``runtime.emulate.OutOfBounds`` could not be unpickled (``addr`` required).
- ``memplan example -o LINK``, LINK a dangling symbolic link, said "File exists" alone: it names the link now.
- A plan's ``alignment`` field is read as CONTRACT.md defines it (a power of two, equal to the graph's).
- ONNX nodes onnxruntime refuses that memplan planned at 0 bytes, and empty inputs onnxruntime runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
import warnings

import pytest

import memplan
from memplan.cli import main
from memplan.errors import ScheduleError, UnusedOption
from memplan.examples import bundled


def _run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _diamond():
    return bundled()["diamond"]


# ---- 1. max_events with one stream ---------------------------------------------------------------------------------

def test_max_events_with_one_stream_warns_naming_both_options_and_plans_the_serial_plan():
    g = _diamond()
    with pytest.raises(ScheduleError, match="max_events=3"):
        memplan.plan(g, max_events=3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        p = memplan.plan(g, streams=1, max_events=3)
    ours = [x for x in w if issubclass(x.category, UnusedOption)]
    assert len(ours) == 1 and "max_events=3" in str(ours[0].message) and "streams=1" in str(ours[0].message)
    assert ours[0].filename == __file__   # pointed at the caller, not at memplan
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        q = memplan.plan(g, streams=1)
        memplan.plan(g, streams=2, max_events=3)
    assert not [x for x in w if issubclass(x.category, UnusedOption)]
    assert p.tensors == q.tensors and p.order == q.order and p.arena_bytes == q.arena_bytes


def test_the_cli_says_it_once(tmp_path):
    g = tmp_path / "g.json"
    memplan.save_graph(_diamond(), str(g))
    code, _, err = _run("plan", g, "--streams", "1", "--max-events", "3", "-o", tmp_path / "p.json")
    assert code == 0 and err.count("warning") == 1 and "--max-events 3" in err, err


# ---- 5. OutOfBounds pickles ----------------------------------------------------------------------------------------

def test_out_of_bounds_unpickles_as_itself():
    from runtime.emulate import OutOfBounds

    e = OutOfBounds(0x1000, "access [0x1000, +4) outside every allocation")
    e.note = "x"
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is OutOfBounds and back.addr == 0x1000 and str(back) == str(e) and back.note == "x"


# ---- 3. a dangling link as example's directory -----------------------------------------------------------------------

def test_example_into_a_dangling_link_names_the_link():
    d = tempfile.mkdtemp()
    link = os.path.join(d, "link")
    os.symlink(os.path.join(d, "nowhere"), link)
    code, _, err = _run("example", "-o", link)
    assert code == 2 and "dangling symbolic link" in err and link in err, err
    os.mkdir(os.path.join(d, "x"))
    inner = os.path.join(d, "x", "l2")
    os.symlink(os.path.join(d, "nowhere2"), inner)
    code, _, err = _run("example", "-o", os.path.join(inner, "sub"))
    assert code == 2 and "dangling symbolic link" in err and inner in err, err
    assert sorted(os.listdir(d)) == ["link", "x"] and os.listdir(os.path.join(d, "x")) == ["l2"]
