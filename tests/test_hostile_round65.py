"""Round 65 hostile inputs: ``memplan verify`` on hostile plan files (one line, exit 2, naming the field), a Ctrl-C
in Python's final teardown, ``show``'s times in a unit a reader takes in, and NaN / Infinity named by their key."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from cli_contract import assert_bad_input, run_captured

import memplan
from memplan import examples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def qkv(tmp_path_factory):
    """qkv's graph file and its 3-stream plan (document), in a folder of their own."""
    d = tmp_path_factory.mktemp("h65")
    g = examples.qkv_attention()
    (d / "g.json").write_text(json.dumps(g.to_dict()))
    return d, memplan.plan(g, streams=3).to_dict()


def _verify_text(d, text: str) -> tuple[int, str, str]:
    (d / "p.json").write_text(text, encoding="utf-8")
    code, out, err = run_captured("verify", str(d / "g.json"), str(d / "p.json"))
    return code, out, err


def _set(path: list, value):
    def edit(doc):
        at = doc
        for k in path[:-1]:
            at = at[k]
        at[path[-1]] = value
        return doc
    return edit


def _events(*pairs):
    def edit(doc):
        doc["events"] += [{"after": a, "before": b} for a, b in pairs]
        return doc
    return edit


def _tensors(fn):
    def edit(doc):
        fn(doc["tensors"])
        return doc
    return edit


#: (name, edit of the plan document, words the one error line must hold)
HOSTILE_PLANS = [
    ("arena bool", _set(["arena_bytes"], True), ["'arena_bytes'", "true"]),
    ("arena float", _set(["arena_bytes"], 10240.0), ["'arena_bytes'", "not an integer"]),
    ("arena negative", _set(["arena_bytes"], -1), ["'arena_bytes'", "-1"]),
    ("arena huge", _set(["arena_bytes"], 2 ** 64), ["'arena_bytes'", "18446744073709551616"]),
    ("arena string", _set(["arena_bytes"], "10240"), ["'arena_bytes'", "'10240'"]),
    ("streams zero", _set(["streams"], 0), ["'streams'", "1..1024"]),
    ("streams bool", _set(["streams"], False), ["'streams'", "false"]),
    ("alignment null", _set(["alignment"], None), ["'alignment'", "null"]),
    ("offset bool", _set(["tensors", 0, "offset"], False), ["'offset'", "'x'"]),
    ("offset huge", _set(["tensors", 0, "offset"], 2 ** 63), ["'offset'", "'x'"]),
    ("offset negative", _set(["tensors", 0, "offset"], -256), ["rule 4", "'x'", "-256"]),
    ("offset off by one", _set(["tensors", 0, "offset"], 1), ["rule 4", "'x'", "alignment"]),
    ("size wrong", _set(["tensors", 0, "size"], 4095), ["rule 4", "'x'", "4095"]),
    ("stream string", _set(["order", 0, "stream"], "0"), ["'stream'", "'norm'"]),
    ("stream out of range", _set(["order", 0, "stream"], 7), ["rule 1", "'norm'", "7"]),
    ("graph of another name", _set(["graph"], "diamond"), ["'diamond'", "wrong graph"]),
    ("graph name int", _set(["graph"], 5), ["'graph'"]),
    ("tensor missing", _tensors(lambda ts: ts.pop()), ["'y'"]),
    ("tensor extra", _tensors(lambda ts: ts.append({"id": "zz", "offset": 0, "size": 4})), ["'zz'"]),
    ("tensor twice", _tensors(lambda ts: ts.append(dict(ts[0]))), ["'x'", "twice"]),
    ("event unknown node", _events(("zz", "attn")), ["rule 1", "'zz'"]),
    ("event cycle", _events(("mm_q", "mm_k"), ("mm_k", "mm_q")), ["rule 1", "'mm_k'->'mm_q'", "before the record"]),
    ("event onto itself", _events(("attn", "attn")), ["rule 1", "'attn'->'attn'"]),
    ("event after not a string", _events((1, "attn")), ["events[", "'after'"]),
    ("event before missing", lambda d: (d["events"].append({"after": "norm"}), d)[1], ["events[", "'before'"]),
    ("events null", _set(["events"], None), ["'events'", "null"]),
    ("order entry a list", _set(["order", 0], ["norm", 0]), ["order[0]", "not an object"]),
    ("order node empty", _set(["order", 0, "node"], ""), ["rule 1", "''", "'norm'"]),
    ("order node a twin", _set(["order", 0, "node"], "n\u043erm"), ["rule 1", "looks like the graph's 'norm'"]),
    ("tensor without size", _tensors(lambda ts: ts[0].pop("size")), ["tensors[0]", "'size'"]),
    ("weight given an offset", _tensors(lambda ts: [e.update(offset=0) for e in ts if e["id"] == "wq"]),
     ["rule 4", "'wq'", "weight memory"]),
    ("devices bool", _set(["devices"], True), ["'devices'", "(true)"]),   # (quoted as JSON writes it: round 77)
    ("a graph where a plan belongs", _set(["format"], "memplan.graph/1"), ["'memplan.graph/1'", "swapped"]),
    ("lower bound above the arena", lambda d: (d.update(lower_bound_bytes=d["arena_bytes"] + 1), d)[1],
     ["rule 4", "lower_bound_bytes"]),
]


@pytest.mark.parametrize(("name", "edit", "words"), HOSTILE_PLANS, ids=[c[0] for c in HOSTILE_PLANS])
def test_verify_refuses_a_hostile_plan_in_one_line_naming_it(qkv, name, edit, words):
    d, plan = qkv
    code, out, err = _verify_text(d, json.dumps(edit(copy.deepcopy(plan))))
    assert_bad_input(code, err, *words)
    assert out == ""


def test_verify_refuses_hostile_bytes_in_one_line(qkv):
    """A byte-order mark, a key repeated at the top or in an order entry, trailing text, an empty file, a number of
    5,000 digits, 1e400: each one line naming what is wrong (and where, where there is a where)."""
    d, plan = qkv
    raw = json.dumps(plan)
    arena = f'"arena_bytes": {plan["arena_bytes"]}'
    cases = {
        "\ufeff" + raw: ["byte-order mark"],
        raw[:-1] + ', "streams": 3}': ["'streams'", "twice"],
        raw.replace('"stream": 0', '"stream": 0, "stream": 1', 1): ["'stream'", "twice", "'norm'"],
        raw + " x": ["not valid JSON"],
        "": ["empty file"],
        raw.replace(arena, '"arena_bytes": ' + "9" * 5000): ["too many digits"],
        raw.replace(arena, '"arena_bytes": 1e400'): ["['arena_bytes']", "1e400"],
    }
    for text, words in cases.items():
        code, _out, err = _verify_text(d, text)
        assert_bad_input(code, err, *words)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(("where", "words"), [("arena", ["['arena_bytes']"]),
                                              ("solver", ["['solver']['seconds']"]),
                                              ("tensor", ["['offset']", "'x'"])])
def test_nan_or_infinity_is_refused_naming_its_key(qkv, constant, where, words):
    """``NaN`` / ``Infinity`` (Python's json reads them; JSON has none) were "not valid JSON (NaN is not a JSON
    number)", naming no field: in a plan of 100,000 tensors the user was left to search. Now the key, and the tensor,
    node, order entry or event it is in, as a number past a double's range (``1e400``) was named already."""
    d, plan = qkv
    doc = copy.deepcopy(plan)
    marker = 123456789
    if where == "arena":
        doc["arena_bytes"] = marker
    elif where == "solver":
        doc["solver"]["seconds"] = marker
    else:
        doc["tensors"][0]["offset"] = marker
    code, _out, err = _verify_text(d, json.dumps(doc).replace(str(marker), constant))
    assert_bad_input(code, err, f"{constant} is not a JSON number", *words)


def test_nan_in_a_graph_file_names_the_tensor(tmp_path):
    g = examples.chain(2).to_dict()
    g["tensors"][0]["size"] = 987654321
    (tmp_path / "g.json").write_text(json.dumps(g).replace("987654321", "NaN"))
    code, _out, err = run_captured("plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"))
    assert_bad_input(code, err, "['size']", f"of {g['tensors'][0]['id']!r}", "NaN is not a JSON number")
    assert not (tmp_path / "p.json").exists()


# ---- a Ctrl-C in Python's final teardown ------------------------------------------------------------------------

#: a ``sitecustomize`` whose object's ``__del__`` raises a real SIGINT as Python tears its modules down, after every
#: ``atexit`` callback, where Python has put SIGINT's default action back: a Ctrl-C landing as the process ends
_LATE_SIGINT = """
import builtins, signal
class _Late:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)
builtins._memplan_round65_late = _Late()
"""


@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["show", "missing.json"], 2),
                                            (["example", "-o", "ex"], 0)])
def test_ctrl_c_in_pythons_final_teardown_is_no_kill(tmp_path, argv, code):
    """A Ctrl-C landing after the command's last write, as Python exits: once the ``atexit`` callbacks have run,
    Python's finalization puts SIGINT's default action back and then collects garbage and tears the modules down
    (tens of ms with numpy loaded); a SIGINT there killed the process (status -2: the shell's 130 without the line).
    Now the command's own status: the process ends (``_interrupt._end_at_exit``, the last callback) before that
    teardown, its outputs all written."""
    (tmp_path / "sitecustomize.py").write_text(_LATE_SIGINT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    env.pop("PYTHONSTARTUP", None)
    r = subprocess.run([sys.executable, "-m", "memplan", *argv], env=env, cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == (code != 0), r.stderr
    if argv[0] == "example":
        assert len(os.listdir(tmp_path / "ex")) > 5   # (every file written)


def test_end_at_exit_is_only_the_commands(monkeypatch):
    """``_end_at_exit`` ends nothing where no command ended (a program importing memplan, a traceback's exit)."""
    from memplan import _interrupt

    monkeypatch.setattr(_interrupt, "_ended", [])
    monkeypatch.setattr(os, "_exit", lambda code: pytest.fail(f"os._exit({code})"))
    _interrupt._end_at_exit()


# ---- show's times ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (1e15, "31.69 years"), (10 ** 15, "31.69 years"), (2.0, "2.0 us"), (999999.9, "999999.9 us"), (1e6, "1 s"),
    (9e7, "1.5 min"), (7.2e9, "2 h"), (1e12, "11.57 days"), (-5, "-5 us"), ("x", "x us"), (None, "null us"),
    (True, "true us"), (10 ** 400, None)], ids=lambda v: repr(v)[:20])
def test_show_writes_a_time_of_a_second_or_more_in_its_unit(qkv, value, text):
    """``show`` printed a hand-edited ``event_us`` of 1e15 as ``event 1000000000000000.0 us``; now ``31.69 years``,
    times under a second as the file spells them (every plan of a real graph: the 81 example plans' ``show`` is
    byte-identical), and what is no number as before. An integer past a double's range is no crash."""
    from memplan.show import _duration, _text

    got = _duration(value, _text(value))
    assert got == (text if text is not None else _text(value) + " us")
    d, plan = qkv
    if isinstance(value, int) and value > 10 ** 20:
        return
    doc = copy.deepcopy(plan)
    doc["solver"]["schedule"]["event_us"] = value
    (d / "s.json").write_text(json.dumps(doc))
    code, out, err = run_captured("show", str(d / "s.json"))
    assert code == 0, err
    assert f"; event {text})" in out, out


def test_a_plan_of_many_megabytes_finishes_in_one_line(qkv):
    """A plan file of ~10 MB: its events repeated 60,000 times (harmless: one happens-before edge each), then its
    order too (every node listed 20,000 times). Each is judged, not hung on: ``safe``, then one line naming the
    repeated node. (A 200 MB file of either finishes too: 40-47 s and 1.7-2.6 GB on the loaded 2-core CI machine,
    linear in its entries; the reader's limit is 1 GiB, docs/format.md "Limits".)"""
    d, plan = qkv
    doc = copy.deepcopy(plan)
    doc["events"] = doc["events"] * 60_000
    code, out, err = _verify_text(d, json.dumps(doc))
    assert (code, err) == (0, "") and out.strip().endswith("safe"), err
    doc = copy.deepcopy(plan)
    doc["order"] = doc["order"] * 20_000
    code, _out, err = _verify_text(d, json.dumps(doc))
    assert_bad_input(code, err, "rule 1", "'norm' appears twice")


#: a ``sitecustomize`` raising a real SIGINT at the SIG_K-th line run inside ``_interrupt._end_at_exit``
_SIGINT_IN_END = """
import os, signal, sys
_k, _seen = int(os.environ["SIG_K"]), [0]
def _trace(frame, event, arg):
    if frame.f_code.co_name != "_end_at_exit":
        return None
    if event == "line":
        _seen[0] += 1
        if _seen[0] == _k:
            signal.raise_signal(signal.SIGINT)
    return _trace
sys.settrace(_trace)
"""


def test_ctrl_c_at_each_line_of_the_last_callback_is_the_line_and_130(tmp_path):
    """A Ctrl-C at any line of ``_end_at_exit`` itself (the command over, Python exiting): the line and exit 130 at
    once (``_interrupted`` still holds SIGINT there), never a traceback or a SIGINT death; past its last line the
    command's own status."""
    (tmp_path / "sitecustomize.py").write_text(_SIGINT_IN_END)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    env.pop("PYTHONSTARTUP", None)
    k = 1
    while True:
        r = subprocess.run([sys.executable, "-m", "memplan", "--version"], env=dict(env, SIG_K=str(k)),
                           cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            break
        assert (r.returncode, r.stderr) == (130, "memplan: error: interrupted\n"), (k, r.returncode, r.stderr)
        k += 1
    assert k > 3   # (the lines before ``os._exit`` were each interrupted)
