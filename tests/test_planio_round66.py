"""Round 66 (planio): plan files, ``verify`` and the CLI against hostile inputs.

- A node of a multi-device plan on a device out of range (7 of 2, -1) is rule 1's finding alone: it was also read
  as on device 0, so every tensor of its own device it touched drew a false rule-4 finding ("node 'l1.norm' on
  device 0 accesses 'l1.xn' on device 1"), which the oracle (tests/oracle65.py) does not make.
- The command's process ends with its own status, after every ``atexit`` callback, also where one was registered
  before memplan was imported (a wrapper script's, a sitecustomize's): ``_interrupt._end_at_exit`` was then not
  registered at all, and a Ctrl-C in Python's teardown killed the process (status -2).
- Hypothesis: random hostile and well-formed edits of valid plan files through ``memplan verify`` and ``show``: exit 0
  or one line, never a traceback, and "safe" only where tests/oracle65.py agrees.
- Reading large graph and plan files sets off no garbage collection (counted, not timed).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest
from cli_contract import assert_bad_input, run_memplan
from oracle65 import findings

import memplan
from memplan import plan_devices
from memplan.examples import LLAMA_TINY, llama
from memplan.verify import check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def two_devices():
    return plan_devices(llama(LLAMA_TINY), 2)


@pytest.mark.parametrize("device", [7, 2, -1, -(2**62)])
def test_a_node_on_a_device_out_of_range_is_rule_1_alone(two_devices, device):
    """Each node of device 1 moved in turn to ``device``: one finding, rule 1, naming the node and the device; no
    rule-4 finding of a node on device 0 (it was one per tensor the node touches). The oracle's rules agree."""
    split, p = two_devices
    graph_doc = split.graph.to_dict()
    for k, d in enumerate(p.node_devices):
        if d != 1:
            continue
        nid = p.order[k][0]
        bad = dataclasses.replace(p, node_devices=p.node_devices[:k] + (device,) + p.node_devices[k + 1:])
        found = check(split.graph, bad)
        assert found == [(1, f"node {nid!r} runs on device {device}, outside 0..1")], found
        assert {r for r, _ in findings(graph_doc, bad.to_dict())} == {1}


def test_cli_names_the_node_of_an_out_of_range_device_in_one_line(tmp_path, capsys, two_devices):
    """``memplan verify`` of the file: exit 2, one line naming the node and its device, no word of device 0."""
    split, p = two_devices
    doc = p.to_dict()
    k = p.node_devices.index(1)
    doc["order"][k]["device"] = 7
    (tmp_path / "g.json").write_text(json.dumps(split.graph.to_dict()))
    (tmp_path / "p.json").write_text(json.dumps(doc))
    code, _out, err = run_memplan(capsys, ["verify", tmp_path / "g.json", tmp_path / "p.json"])
    assert_bad_input(code, err, f"node {p.order[k][0]!r} runs on device 7, outside 0..1")
    assert "device 0" not in err and "rule 4" not in err, err


# ---- the command's end with atexit callbacks of the program's own ---------------------------------------------------

#: a ``sitecustomize`` whose object's ``__del__`` raises a real SIGINT as Python tears its modules down, after every
#: ``atexit`` callback, where Python has put SIGINT's default action back (test_hostile_round65's)
_LATE_SIGINT = """
import builtins, signal
class _Late:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)
builtins._memplan_round66_late = _Late()
"""

#: a wrapper script named ``memplan`` (the command's process) that registers an atexit handler of its own, before or
#: after importing memplan, then runs the CLI's ``main`` and exits with its code plus ``SHIFT`` (a wrapper may map it)
_WRAPPER = """
import atexit, os, sys
def _mine():
    print("user handler ran", flush=True)
if os.environ["WHEN"] == "before":
    atexit.register(_mine)
from memplan.cli import main
if os.environ["WHEN"] == "after":
    atexit.register(_mine)
sys.exit(main() + int(os.environ["SHIFT"]))
"""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["show", "missing.json"], 2)])
def test_a_programs_own_atexit_handler_runs_and_the_command_ends_with_its_status(tmp_path, when, argv, code):
    """A Ctrl-C in Python's final teardown of a command process whose program registered an atexit handler: the
    handler runs once and the process ends with the program's status. Registered before memplan was imported, the
    process was killed by SIGINT (-2): memplan's end was registered only where no callback existed (ending there
    at once would have skipped the program's handler, which Python calls after it)."""
    (tmp_path / "sitecustomize.py").write_text(_LATE_SIGINT)
    (tmp_path / "memplan").write_text(_WRAPPER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]), WHEN=when)
    env.pop("PYTHONSTARTUP", None)
    for shift in (0, 3) if when == "before" and code else (0,):   # (``--version`` ends in argparse's SystemExit)
        r = subprocess.run([sys.executable, str(tmp_path / "memplan"), *argv], env=dict(env, SHIFT=str(shift)),
                           cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
        assert r.returncode == code + shift, (r.returncode, r.stdout, r.stderr)
        assert r.stdout.count("user handler ran") == 1, r.stdout
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == (code != 0), r.stderr


def test_the_stand_in_stream_passes_everything_through(monkeypatch):
    """``_LastFlush``: writes, attributes and flushes reach the stream; only a flush once Python is finalizing makes
    SIGINT ignored (before that ``_interrupted`` keeps it: a Ctrl-C in a later callback is the line and 130)."""
    import io
    import signal

    from memplan import _interrupt

    raw = io.StringIO()
    s = _interrupt._LastFlush(raw)
    s.write("x")
    s.flush()
    assert raw.getvalue() == "x" and s.closed is False
    seen = []
    monkeypatch.setattr(signal, "signal", lambda *a: seen.append(a))
    s.flush()
    assert seen == []
    monkeypatch.setattr(sys, "is_finalizing", lambda: True)
    s.flush()
    assert seen == [(signal.SIGINT, signal.SIG_IGN)]


# ---- hostile plan files: random mutations of valid plans through `memplan verify` and `memplan show` -------------

_HUGE = (2**63, -(2**63) - 1, 10**30, 2**63 - 1, -1)


def _bases() -> list[tuple[dict, dict]]:
    """(graph document, plan document) of valid plans: multi-stream plans of small bundled graphs (events, views,
    in-place pairs, weights), a fused-group-free serial one, and a two-device split (devices, COPY nodes)."""
    from memplan import examples

    out = []
    for g, streams in ((examples.qkv_attention(), 3), (examples.views_inplace(), 2), (examples.diamond(), 2),
                       (examples.fanout_join15(), 4), (examples.chain(3), 1)):
        out.append((g.to_dict(), memplan.plan(g, streams=streams).to_dict()))
    split, p = plan_devices(llama(LLAMA_TINY), 2)
    out.append((split.graph.to_dict(), p.to_dict()))
    return out


_BASES: list[tuple[dict, dict]] = []


def _json_values():
    """Any JSON-ish value a hostile file may hold: huge and negative integers, NaN and infinities, unicode text
    (twins of ids, control characters), nested arrays and objects."""
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.sampled_from(_HUGE),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                        st.sampled_from(["qk", "q", "attn", "ＱＫ", "q\u200b", "", "\x00", "0", "1.0"]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=6)


def _containers(doc) -> list:
    """Every list and dict inside ``doc`` (``doc`` first), in a fixed order."""
    out, stack = [], [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, dict)):
            out.append(v)
            stack.extend(reversed(list(v.values()) if isinstance(v, dict) else v))
    return out


def _mutate(doc, data, semantic: bool) -> None:
    """One hostile edit of ``doc`` in place, drawn from ``data``: a value replaced (by any JSON value, by one of
    another type, wrapped in a list), a key dropped or added, a list entry duplicated, dropped or swapped; and, most
    often, a well-formed edit that may make the plan unsafe (an integer moved by a byte or an alignment, an event or
    order entry naming another node)."""
    from hypothesis import strategies as st

    entries = [e for key in ("order", "events", "tensors") for e in doc.get(key, ()) if isinstance(e, dict)] \
        if semantic and isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("order", "events",
                                                                                             "tensors")) else []
    where = data.draw(st.sampled_from(entries + [doc] if entries else _containers(doc)))
    keys = list(where) if isinstance(where, dict) else list(range(len(where)))
    op = "nudge" if entries else data.draw(st.sampled_from(["replace", "retype", "wrap", "drop", "add", "dup", "swap",
                                                            "nudge"]))
    if not keys or op == "add":
        if isinstance(where, dict):
            where[data.draw(st.sampled_from(["device", "devices", "stream", "offset", "size", "id", "node", "after",
                                             "before", "streams", "alignment", "x", "format", "graph"]))] = \
                data.draw(_json_values())
        else:
            where.append(data.draw(_json_values()))
        return
    k = data.draw(st.sampled_from(keys))
    v = where[k]
    if op == "nudge" and isinstance(where, list):
        if len(where) > 1:
            j = data.draw(st.sampled_from(keys))
            where[k], where[j] = where[j], where[k]
    elif op == "nudge" and type(v) is int:   # well-formed, perhaps unsafe: an offset, stream, size or count moved
        where[k] = max(0, v + data.draw(st.sampled_from([-1024, -256, -1, 1, 256, 1024])))
    elif op == "nudge" and type(v) is str and isinstance(where, dict) and k in ("node", "after", "before"):
        order = doc.get("order") if isinstance(doc, dict) and isinstance(doc.get("order"), list) else []
        where[k] = data.draw(st.sampled_from(sorted({e["node"] for e in order if isinstance(e, dict)
                                                     and isinstance(e.get("node"), str)} or {v})))
    elif op == "nudge":
        return   # (a string no node names, a null, an object: left as it is)
    elif op == "replace":
        where[k] = data.draw(_json_values())
    elif op == "retype":
        where[k] = (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else
                    (v == 1 if isinstance(v, int) else 1) if not isinstance(v, str) else
                    int(v) if v.isdigit() else len(v))
    elif op == "wrap":
        where[k] = [v] if data.draw(st.booleans()) else {"value": v}
    elif op == "drop":
        del where[k]
    elif op == "dup" and isinstance(where, list):
        where.insert(k, json.loads(json.dumps(v)))
    elif op == "swap" and isinstance(where, list) and len(where) > 1:
        j = data.draw(st.sampled_from(keys))
        where[k], where[j] = where[j], where[k]
    else:
        where[k] = data.draw(_json_values())


def _text(doc, data) -> str:
    """``doc`` as the file's text: NaN/Infinity as Python writes them, and now and then a key written twice."""
    from hypothesis import strategies as st

    text = json.dumps(doc, ensure_ascii=data.draw(st.booleans()))
    if data.draw(st.integers(0, 5)) == 0:
        key = data.draw(st.sampled_from(['"stream": ', '"offset": ', '"node": ', '"arena_bytes": ', '"id": ']))
        if key in text:
            text = text.replace(key, key + "0, " + key, 1)
    return text


def _assert_clean(code: int, out: str, err: str, what: str) -> None:
    """Exit 0 (stderr at most warnings) or exit 2 with one ``memplan: error:`` line; never a traceback."""
    assert "Traceback" not in err and "Traceback" not in out, (what, err)
    if code == 0:
        assert all(line.startswith("memplan: warning: ") for line in err.splitlines()), (what, err)
    else:
        assert code == 2, (what, code, err)
        assert_bad_input(code, err)


def test_hostile_mutations_of_valid_plans_are_one_line_or_a_verdict_the_oracle_shares(tmp_path):
    """Random edits of valid plan files (types swapped, fields dropped, added or written twice, entries duplicated or
    swapped, huge integers, NaN and infinities, unicode ids, nesting) through ``memplan verify`` and ``memplan show``:
    exit 0 or exit 2 with one line, never a traceback; and ``verify``'s "safe" only where tests/oracle65.py finds the
    edited plan safe too."""
    from cli_contract import run_captured
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    if not _BASES:
        _BASES.extend(_bases())

    @settings(max_examples=250, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def run(data):
        k = data.draw(st.integers(0, len(_BASES) - 1))
        graph_doc, plan_doc = copy.deepcopy(_BASES[k])
        semantic = data.draw(st.booleans())   # well-formed edits only (the oracle's verdict), or hostile ones
        for _ in range(data.draw(st.integers(1, 3))):
            _mutate(plan_doc, data, semantic)
        text = _text(plan_doc, data)
        (tmp_path / "g.json").write_text(json.dumps(graph_doc))
        (tmp_path / "p.json").write_text(text)
        code, out, err = run_captured("verify", str(tmp_path / "g.json"), str(tmp_path / "p.json"))
        _assert_clean(code, out, err, "verify")
        if code == 0:
            assert out.strip().endswith("safe"), out
            assert findings(graph_doc, json.loads(text)) == [], (text, out)
        code, out, err = run_captured("show", str(tmp_path / "p.json"))
        _assert_clean(code, out, err, "show")

    run()


# ---- large files: the cyclic GC stays out of reading them -----------------------------------------------------------

def test_reading_a_large_graph_and_plan_runs_no_garbage_collection(tmp_path):
    """``load_graph`` and ``load_plan`` of a 20,000-node chain and its plan, and ``graph_from_dict``, run with the cyclic
    collector paused: it walked the growing document and graph again and again (half of ``load_graph``'s CPU time at
    200,000 nodes, docs/experiments/planio_s66.py). Counted by ``gc.callbacks``, not timed; and it is on again after."""
    import gc

    from memplan import examples
    from memplan.io import load_graph, load_plan

    g = examples.chain(20_000)
    (tmp_path / "g.json").write_text(json.dumps(g.to_dict()))
    (tmp_path / "p.json").write_text(memplan.plan(g, solver="greedy").to_json())
    doc = g.to_dict()
    runs = []

    def seen(phase, info):   # (one that memplan's code set off: the test's own allocations may set off the one due)
        frame = sys._getframe(1)
        while frame is not None and not frame.f_globals.get("__name__", "").startswith("memplan"):
            frame = frame.f_back
        # (round 67: the pause reads the thresholds on entry, an allocation that may set off the one already due)
        if phase == "start" and frame is not None and frame.f_code.co_name != "_enter":
            runs.append((info["generation"], frame.f_code.co_name))

    gc.collect()
    gc.callbacks.append(seen)
    try:
        load_graph(str(tmp_path / "g.json"))
        load_plan(str(tmp_path / "p.json"))
        memplan.graph_from_dict(doc)
    finally:
        gc.callbacks.remove(seen)
    assert runs == [] and gc.isenabled(), runs
