"""Round 67 hostile inputs: random mutations of valid GRAPH files through ``memplan plan``, ``verify``, ``show
--graph``, ``bench planners --graph`` and ``memplan.plan()``.

Round 66 mutated plan files; round 64 mutated graph files through ``trace``/``simulate``/``show`` only. Here each
example takes a valid graph document (views, in-place pairs, fusion groups, weights, a two-device split graph), makes
one to three edits of CONTRACT.md's graph format (a value of another type, a field dropped or written twice, huge,
negative, bool, float and NaN/inf sizes and costs, unicode and empty ids, a node reading its own output, two nodes
swapped so a read comes before its write, a tensor reference no tensor has, a duplicate id, deep nesting, a BOM,
trailing bytes) and holds every command to the CLI's contract: exit 0 with a plan the independent oracle
(tests/oracle65.py) calls safe for the edited graph, or exit 2 with one ``memplan: error:`` line; never a traceback,
never an input changed, never a temporary file left. ``memplan.plan()`` of the same document: a plan or a
``MemplanError``, nothing else. Bounded: a fixed number of small examples.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os

import pytest
from cli_contract import exit_code, leftovers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle65 import findings

import memplan
from memplan import examples
from memplan.cli import main as memplan_main

#: examples per command run of the graph fuzz (each runs up to five commands on a graph of at most ~60 nodes)
EXAMPLES = int(os.environ.get("MEMPLAN_FUZZ67_EXAMPLES", "120"))
#: a longer, random (not derandomized) search: ``MEMPLAN_FUZZ67_RANDOM=1``
RANDOM = bool(os.environ.get("MEMPLAN_FUZZ67_RANDOM"))

_HUGE = (2 ** 63, -(2 ** 63) - 1, 10 ** 30, 2 ** 63 - 1, 2 ** 62, -1, 2 ** 53 + 1)
_FLOATS = (float("nan"), float("inf"), -float("inf"), 1.5, -0.0, 1e308, 256.0, 0.0)
_NAMES = ("", " ", "x", "q", "qk", "attn", "ＱＫ", "q\u200b", "\x00", "a\nb", "\ud800", "e\u0301", "0", "1.0", "-")


def _bases() -> list[dict]:
    """Valid graph documents: multi-input nodes, views and in-place pairs, fusion groups, weights, a long chain,
    a two-device split graph (COPY nodes, per-tensor devices in attrs)."""
    from memplan import plan_devices
    from memplan.examples import LLAMA_TINY, llama

    docs = [g.to_dict() for g in (examples.qkv_attention(), examples.views_inplace(), examples.diamond(),
                                  examples.fanout_join15(), examples.chain(4))]
    split, _ = plan_devices(llama(LLAMA_TINY), 2)
    docs.append(split.graph.to_dict())
    return docs


def _values():
    """Any JSON value a hostile graph field may hold."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 4096), st.sampled_from(_HUGE),
                        st.sampled_from(_FLOATS), st.text(max_size=5), st.sampled_from(_NAMES),
                        st.sampled_from(["input", "output", "weight", "intermediate", "Input", "memplan.graph/1",
                                         "memplan.plan/1"]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=5)


def _containers(doc) -> list:
    out, stack = [], [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, dict)):
            out.append(v)
            stack.extend(reversed(list(v.values()) if isinstance(v, dict) else v))
    return out


def _ids(doc, key: str) -> list[str]:
    items = doc.get(key) if isinstance(doc, dict) else None
    return [e["id"] for e in items if isinstance(e, dict) and isinstance(e.get("id"), str)] \
        if isinstance(items, list) else []


def _mutate(doc: dict, draw, semantic: bool = False) -> None:
    """One hostile edit of the graph document ``doc``, in place; ``semantic``: a well-formed one only (the graph
    stays valid but for a kind edit that breaks a rule, and the original plan may be unsafe for it)."""
    nodes = doc.get("nodes") if isinstance(doc.get("nodes"), list) else []
    tensors = doc.get("tensors") if isinstance(doc.get("tensors"), list) else []
    node_dicts = [n for n in nodes if isinstance(n, dict)]
    tensor_dicts = [t for t in tensors if isinstance(t, dict)]
    hostile = ["value", "value", "retype", "drop", "add", "dup", "swap", "size", "size", "cost", "selfloop",
               "cycle", "dangle", "dupid", "rename", "inplace", "view", "group", "extend", "grow", "kind"]
    op = draw(st.sampled_from(["extend", "extend", "grow", "kind"] if semantic else hostile))
    # well-formed edits, most of which leave a valid graph for which the original plan may be unsafe: a later node
    # reading an earlier tensor (a longer lifetime), a tensor grown past its slot, another kind
    if op == "extend" and len(node_dicts) > 1:
        i = draw(st.integers(1, len(node_dicts) - 1))
        earlier = [t for n in node_dicts[:i] for t in (n.get("outputs") if isinstance(n.get("outputs"), list) else ())]
        if earlier and isinstance(node_dicts[i].get("inputs"), list):
            node_dicts[i]["inputs"].append(draw(st.sampled_from(earlier)))
        return
    if op == "grow" and tensor_dicts:
        t = draw(st.sampled_from(tensor_dicts))
        if type(t.get("size")) is int:
            t["size"] = max(0, t["size"] + draw(st.sampled_from([-256, -1, 1, 255, 256, 1024, 4096])))
        return
    if op == "kind" and tensor_dicts:
        draw(st.sampled_from(tensor_dicts))["kind"] = draw(st.sampled_from(["input", "output", "weight",
                                                                            "intermediate"]))
        return
    if op == "size" and tensor_dicts:
        t = draw(st.sampled_from(tensor_dicts))
        t[draw(st.sampled_from(["size", "size", "view_offset"]))] = draw(st.one_of(
            st.sampled_from(_HUGE), st.sampled_from(_FLOATS), st.booleans(), st.integers(-2, 3),
            st.sampled_from(["16", None, [16], {"v": 16}])))
    elif op == "cost" and node_dicts:
        draw(st.sampled_from(node_dicts))["cost"] = draw(st.one_of(
            st.sampled_from(_HUGE), st.sampled_from(_FLOATS), st.booleans(), st.sampled_from(["1", None, [1]])))
    elif op == "selfloop" and node_dicts:   # a node reading what it writes
        n = draw(st.sampled_from(node_dicts))
        if isinstance(n.get("outputs"), list) and n["outputs"] and isinstance(n.get("inputs"), list):
            n["inputs"].append(n["outputs"][0])
    elif op == "cycle" and len(node_dicts) > 1:   # two nodes swapped: a read may come before its write
        i, j = draw(st.integers(0, len(nodes) - 1)), draw(st.integers(0, len(nodes) - 1))
        nodes[i], nodes[j] = nodes[j], nodes[i]
    elif op == "dangle" and node_dicts:   # a reference to a tensor no entry has (or a twin of one that has)
        n = draw(st.sampled_from(node_dicts))
        key = draw(st.sampled_from(["inputs", "outputs"]))
        if isinstance(n.get(key), list):
            n[key].append(draw(st.sampled_from(["nope", "ＱＫ", "q\u200b", "", "x "])))
    elif op in ("dupid", "rename") and (node_dicts or tensor_dicts):
        items = draw(st.sampled_from([x for x in (node_dicts, tensor_dicts) if x]))
        e = draw(st.sampled_from(items))
        if op == "dupid" and len(items) > 1:
            e["id"] = draw(st.sampled_from(items))["id"]
        else:
            e["id"] = draw(st.sampled_from(_NAMES))
    elif op == "inplace" and node_dicts:
        n = draw(st.sampled_from(node_dicts))
        ids = _ids(doc, "tensors") or ["x"]
        n["inplace"] = draw(st.one_of(
            st.dictionaries(st.sampled_from(ids), st.sampled_from(ids), max_size=2), _values()))
    elif op == "view" and tensor_dicts:
        t = draw(st.sampled_from(tensor_dicts))
        ids = _ids(doc, "tensors") or ["x"]
        t["view_of"] = draw(st.one_of(st.sampled_from(ids), _values()))
        if draw(st.booleans()):
            t["view_offset"] = draw(st.one_of(st.integers(-1, 4096), st.sampled_from(_HUGE)))
    elif op == "group" and node_dicts:
        draw(st.sampled_from(node_dicts))["group"] = draw(st.one_of(st.sampled_from(["g", "g2", ""]), _values()))
    else:
        where = draw(st.sampled_from(_containers(doc)))
        keys = list(where) if isinstance(where, dict) else list(range(len(where)))
        if not keys or op == "add":
            if isinstance(where, dict):
                where[draw(st.sampled_from(["id", "size", "kind", "op", "inputs", "outputs", "cost", "inplace",
                                            "group", "view_of", "view_offset", "alignment", "name", "format",
                                            "attrs", "x"]))] = draw(_values())
            else:
                where.append(draw(_values()))
            return
        k = draw(st.sampled_from(keys))
        v = where[k]
        if op == "retype":
            where[k] = (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else
                        [v] if isinstance(v, str) else {"value": v} if isinstance(v, list) else 1)
        elif op == "drop":
            del where[k]
        elif op == "dup" and isinstance(where, list):
            where.insert(k, copy.deepcopy(v))
        elif op == "swap" and isinstance(where, list) and len(where) > 1:
            j = draw(st.sampled_from(keys))
            where[k], where[j] = where[j], where[k]
        else:
            where[k] = draw(_values())


def _file_bytes(doc, draw) -> bytes:
    """``doc`` as a file's bytes: now and then a key written twice, a BOM, deep nesting, or bytes after the end."""
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    how = draw(st.sampled_from(["plain"] * 10 + ["dupkey", "bom", "deep", "trail", "trail_ws"]))
    if how == "dupkey":
        key = draw(st.sampled_from(['"size": ', '"id": ', '"inputs": ', '"outputs": ', '"kind": ', '"view_of": ',
                                    '"alignment": ', '"tensors": ']))
        if key in text:
            text = text.replace(key, key + "0, " + key, 1)
    elif how == "deep":
        depth = draw(st.sampled_from([50, 990, 1100, 5000, 100_000]))
        text = text[:-1] + ', "attrs": ' + "[" * depth + "]" * depth + "}"
    elif how == "trail":
        text += draw(st.sampled_from(["x", "}", " {}", "\x00", "[]", ",", "\n\n{\"a\": 1}"]))
    elif how == "trail_ws":
        text += draw(st.sampled_from([" \n", "\t", "\r\n"]))
    data = text.encode("utf-8", "surrogatepass")
    return b"\xef\xbb\xbf" + data if how == "bom" else data


def _run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = exit_code(memplan_main, [str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _clean(code: int, out: str, err: str, what) -> None:
    """Exit 0 (stderr: summary and warnings, no traceback) or exit 2 with exactly one ``memplan: error:`` line."""
    assert "Traceback" not in err and "Traceback" not in out, (what, err[-3000:])
    assert code in (0, 2), (what, code, err[-3000:])
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("memplan: error: "), (what, err[-3000:])


_BASES: list[dict] = []


@pytest.fixture(scope="module")
def bases():
    if not _BASES:
        _BASES.extend(_bases())
    return _BASES


def test_hostile_graph_files_keep_the_cli_contract(tmp_path, bases):
    """Random hostile edits of valid graph files through ``plan``, ``verify`` (of the original graph's plan), ``show
    --graph``, ``bench planners --graph`` and ``memplan.plan()``: exit 0 with an oracle-safe plan or one line."""
    originals = [(doc, memplan.plan(memplan.graph_from_dict(doc), solver="greedy").to_json()) for doc in bases]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        draw = data.draw
        k = draw(st.integers(0, len(bases) - 1))
        doc = copy.deepcopy(bases[k])
        semantic = draw(st.booleans())
        for _ in range(draw(st.integers(1, 3))):
            _mutate(doc, draw, semantic)
        raw = _file_bytes(doc, draw)
        g, p, out = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "out.json"
        g.write_bytes(raw)
        p.write_text(originals[k][1])
        for f in (out, tmp_path / "b.json"):
            if f.exists():
                f.unlink()
        streams = draw(st.sampled_from([[], ["--streams", "2"], ["--streams", "auto"]]))
        argv = ["plan", g, "-o", out, "-q", "--solver", draw(st.sampled_from(["greedy", "auto", "size"])), *streams]
        code, so, se = _run(argv)
        _clean(code, so, se, (argv, raw[:300]))
        if code == 0:   # a plan of the graph as the file says it: safe by the oracle's own reading
            graph_doc = json.loads(raw.decode("utf-8-sig"))
            graph_doc.setdefault("name", "")   # (docs/format.md: absent is "", which the oracle does not default)
            assert findings(graph_doc, json.loads(out.read_text())) == [], raw[:300]
        else:
            assert not out.exists(), "a failed plan wrote its output"
        for argv in (["verify", g, p], ["show", p, "--graph", g]):
            code, so, se = _run(argv)
            _clean(code, so, se, (argv, raw[:300]))
            if code == 0:   # the original graph's plan called safe for the edited graph: the oracle agrees
                graph_doc = json.loads(raw.decode("utf-8-sig"))
                graph_doc.setdefault("name", "")
                assert findings(graph_doc, json.loads(originals[k][1])) == [], (argv, raw[:300])
        if draw(st.integers(0, 3)) == 0:
            argv = ["bench", "planners", "--graph", g, "--solvers", "greedy", "--json", tmp_path / "b.json"]
            _clean(*_run(argv), (argv, raw[:300]))
        assert g.read_bytes() == raw and p.read_text() == originals[k][1], "an input changed"
        assert not leftovers(tmp_path), leftovers(tmp_path)
        try:   # the library, on the same file: a plan (which ``plan`` verified) or a MemplanError
            memplan.plan(memplan.load_graph(str(g)), solver="greedy")
        except memplan.MemplanError:
            pass
        try:   # and on the document Python's json makes of it (NaN, Infinity and repeated keys let through)
            parsed = json.loads(raw.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            return
        try:
            memplan.plan(memplan.graph_from_dict(parsed), solver="greedy")
        except memplan.MemplanError:
            pass

    run()
