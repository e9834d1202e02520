"""Round 62's hostile driver (not a test: run it by hand): hostile graph JSON, plan JSON and CSV through every CLI
command and the library's entry points, in process.

    python tests/hostile62_drive.py --runs 400 [--seed 0] [--timeout 60] [--cli 0.5]
    python tests/hostile62_drive.py --onnx --runs 400 [--seed 0]

``--onnx``: a small ONNX model (Conv, Relu, Shape, Gather, Concat, Reshape, MatMul, Softmax; a symbolic batch) with
one to four of its bytes flipped or replaced, or cut short, through ``memplan import --batch 2``; a model imported is
given to onnxruntime where it is installed: ``ort-refuses`` (it loads the model memplan planned: no runtime can use
the plan) and ``undersized`` (an output onnxruntime writes larger than planned). Found in round 62: an attribute name
flipped to invalid UTF-8 (a UnicodeDecodeError traceback), and from there the attribute values onnxruntime refuses.

Each run takes a bundled example graph (or a small random multi-stream one) and memplan's plan of it, makes one to
three hostile edits at a random place of the graph's or the plan's JSON (a value replaced by a bool, NaN text, 2**63,
-1, a string, a list or an object, a deep nesting or a long list; a key dropped; an entry duplicated; a node reading its
own output; two nodes' ids swapped; the plan's order reversed; ...), then

- library: ``load_graph``/``load_plan`` of the text, ``memplan.plan`` (random options) with the plan re-judged by
  tests/reference.py, ``memplan.verify``, ``simulate``;
- CLI (a share ``--cli`` of runs): ``plan``, ``verify``, ``show``, ``simulate``, ``trace``, ``csv`` of the files.

Findings: ``crash`` (an exception that is no MemplanError, or a CLI traceback), ``cli-exit`` (an exit status other
than 0, 2; or exit 2 with more than one line on stderr), ``accepted-unsafe`` (a plan returned or written that the
reference finds unsafe) and ``hang`` (past ``--timeout``). Each is printed once per kind and edit with its run and the
inputs are saved under /tmp/h62_*; the exit status is 1 if there were any."""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import signal
import sys
import tempfile
import traceback
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.dirname(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import reference  # noqa: E402
from oracle_fuzz import multistream_graph  # noqa: E402

import memplan  # noqa: E402
from memplan import cli, examples  # noqa: E402
from memplan.errors import MemplanError  # noqa: E402

_BUNDLED = {k: v for k, v in examples.bundled().items() if len(v.nodes) < 400}
HOSTILE = [None, True, False, 0, -1, -0.0, 1.5, 2 ** 63, 2 ** 63 - 1, -2 ** 63 - 1, 2 ** 64, 10 ** 400, "", "x",
           "\u00e9\u0301", "\ud800", "a\x00b", [], {}, [[]], {"": None}, 1e308, "NaN", "__nan__", "__inf__",
           "__deep__", "__long__", 3, 255, 2 ** 62]


def _value(v, rnd):
    if v == "__deep__":   # (in the text only: ``dumps`` writes it)
        return f"__deep{rnd.choice([50, 500, 5000, 100_000])}__"
    if v == "__long__":
        return ["t"] * rnd.choice([1000, 100_000])
    return copy.deepcopy(v)


def _paths(doc, prefix=()):
    """Every (path, value) in ``doc``."""
    yield prefix, doc
    if len(prefix) > 8:
        return
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:200]):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def edit(doc: dict, rnd: random.Random, graph: bool) -> str:
    """One hostile edit of ``doc`` in place; its name."""
    paths = [p for p, _ in _paths(doc) if p]
    how = rnd.choice(["value", "value", "value", "drop", "dup", "swap", "self", "reverse", "key_type", "unknown"])
    if how == "value":
        p = rnd.choice(paths)
        v = rnd.choice(HOSTILE)
        _set(doc, p, _value(v, rnd))
        return f"value:{p[-1] if isinstance(p[-1], str) else (p[-2] if len(p) > 1 else '?')}={str(v)[:10]}"
    if how == "drop":
        dict_paths = [p for p in paths if isinstance(p[-1], str)]
        if dict_paths:
            p = rnd.choice(dict_paths)
            del _get(doc, p[:-1])[p[-1]]
            return f"drop:{p[-1]}"
    if how == "dup":
        list_paths = [p for p in paths if isinstance(p[-1], int)]
        if list_paths:
            p = rnd.choice(list_paths)
            lst = _get(doc, p[:-1])
            lst.insert(p[-1], copy.deepcopy(lst[p[-1]]))
            return f"dup:{p[-2] if len(p) > 1 else '?'}"
    if how == "swap" and graph and len(doc.get("nodes", [])) > 1:
        a, b = rnd.sample(range(len(doc["nodes"])), 2)
        doc["nodes"][a], doc["nodes"][b] = doc["nodes"][b], doc["nodes"][a]
        return "swap_nodes"
    if how == "self" and graph and doc.get("nodes"):
        n = rnd.choice(doc["nodes"])
        if isinstance(n, dict) and n.get("outputs"):
            n.setdefault("inputs", []).append(n["outputs"][0])
            return "self_loop"
    if how == "reverse":
        key = "nodes" if graph else "order"
        if isinstance(doc.get(key), list):
            doc[key].reverse()
            return f"reverse:{key}"
    if how == "key_type":
        p = rnd.choice(paths)
        v = _get(doc, p)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            _set(doc, p, rnd.choice([str(v), float(v), bool(v), [v]]))
            return f"key_type:{p[-1]}"
    if how == "unknown":
        dicts = [p for p, v in _paths(doc) if isinstance(v, dict)]
        p = rnd.choice(dicts) if dicts else ()
        _get(doc, p)[rnd.choice(["extra", "\u2028", "0"])] = rnd.choice(HOSTILE[:12])
        return "unknown_key"
    p = rnd.choice(paths)
    _set(doc, p, None)
    return f"null:{p[-1]}"


def dumps(doc) -> str:
    text = json.dumps(doc, allow_nan=True)
    text = text.replace('"__nan__"', "NaN").replace('"__inf__"', "Infinity")
    for n in (50, 500, 5000, 100_000):
        text = text.replace(f'"__deep{n}__"', "[" * n + "1" + "]" * n)
    return text


class Hang(Exception):
    pass


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def judge_plan(gobj, plan_dict) -> set:
    if plan_dict.get("devices", 1) != 1:
        return set()
    return set(reference.check_plan(gobj, plan_dict))


def one(run: int, a, d: str, found: Counter, shown: Counter, hows: Counter) -> None:
    rnd = random.Random(a.seed * 1_000_003 + run)
    if rnd.random() < 0.5:
        name, gobj = rnd.choice(sorted(_BUNDLED.items()))
        graph = gobj.to_dict()
    else:
        graph = multistream_graph(rnd, rnd.choice([3, 6, 12]))
        try:
            gobj = memplan.graph_from_dict(graph)
        except MemplanError:
            return
    try:
        plan = memplan.plan(gobj).to_dict()
    except MemplanError:
        return
    target_graph = rnd.random() < 0.6
    hw = []
    g2, p2 = copy.deepcopy(graph), copy.deepcopy(plan)
    for _ in range(rnd.choice([1, 1, 2, 3])):
        try:
            hw.append(edit(g2 if target_graph else p2, rnd, target_graph))
        except (KeyError, IndexError, TypeError, AttributeError):   # (an edit of an earlier edit's value)
            hw.append("noop")
    how = ("G " if target_graph else "P ") + "+".join(hw)
    hows[how.split(":")[0]] += 1
    gtext, ptext = dumps(g2), dumps(p2)
    gpath, ppath = os.path.join(d, f"g{run}.json"), os.path.join(d, f"p{run}.json")
    with open(gpath, "w") as f:
        f.write(gtext)
    with open(ppath, "w") as f:
        f.write(ptext)

    def report(kind, detail):
        key = (kind, how.split(":")[0])
        found[key] += 1
        if shown[key] < 3:
            shown[key] += 1
            print(f"== {kind} [{how}] run {run}: {detail}", flush=True)
            with open(f"/tmp/h62_{kind}_{run}.json", "w") as f:
                f.write('{"graph": ' + gtext + ', "plan": ' + ptext + '}')

    # library
    step = "load_graph"
    try:
        g = memplan.load_graph(gpath)
        step = "load_plan"
        pl = memplan.load_plan(ppath)
        step = "verify"
        try:
            memplan.verify(g, pl)
            ok = True
        except MemplanError:
            ok = False
        if ok:
            broken = judge_plan(g, json.loads(ptext)) if not isinstance(json.loads(ptext).get("tensors"), str) else set()
            if broken:
                report("accepted-unsafe", f"verify: {sorted(broken)[:3]}")
        step = "plan"
        opts = rnd.choice([{}, {"streams": 2}, {"streams": "auto"}, {"memory_budget": 1 << 20},
                           {"fused_groups": True}, {"solver": "greedy"}])
        if target_graph:
            try:
                new = memplan.plan(g, **opts)
            except MemplanError:
                new = None
            if new is not None:
                broken = judge_plan(g, new.to_dict())
                if broken:
                    report("accepted-unsafe", f"plan {opts}: {sorted(broken)[:3]}")
    except MemplanError:
        pass
    except Hang:
        raise
    except RecursionError as exc:
        report("crash", f"{step}: RecursionError {str(exc)[:80]}")
    except Exception as exc:   # noqa: BLE001
        report("crash", f"{step}: {type(exc).__name__}: {str(exc)[:100]} @ {traceback.extract_tb(exc.__traceback__)[-1]}")

    if rnd.random() >= a.cli:
        return
    out = os.path.join(d, f"o{run}")
    cmds = [["plan", gpath, "-o", out + ".plan.json", "-q"], ["verify", gpath, ppath], ["show", ppath],
            ["show", ppath, "--graph", gpath], ["simulate", gpath, ppath], ["trace", gpath, ppath, "-o",
                                                                              out + ".trace.json", "-q"]]
    for argv in rnd.sample(cmds, 3):
        try:
            code, so, se = run_cli(argv)
        except Hang:
            raise
        except Exception as exc:   # noqa: BLE001
            report("crash", f"cli {argv[0]}: {type(exc).__name__}: {str(exc)[:100]} @ "
                   f"{traceback.extract_tb(exc.__traceback__)[-1]}")
            continue
        if "Traceback" in se or code not in (0, 2) or (code == 2 and len(se.strip().splitlines()) != 1):
            report("cli-exit", f"cli {argv[0]} exit {code}: {se.strip()[:300]!r}")
        if code == 0 and argv[0] == "plan":
            try:
                g = memplan.load_graph(gpath)
                broken = judge_plan(g, json.load(open(out + ".plan.json")))
            except MemplanError as exc:
                broken = {f"plan written for a graph that does not load: {exc}"}
            if broken:
                report("accepted-unsafe", f"cli plan: {sorted(broken)[:3]}")


def onnx_model_bytes() -> bytes:
    """The ``--onnx`` runs' model, serialized."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    vi = helper.make_tensor_value_info
    inits = [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "W"),
             numpy_helper.from_array(np.array([0], np.int64), "idx"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1"),
             numpy_helper.from_array(np.ones((4 * 8 * 8, 10), np.float32), "M")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "idx"], ["b"], name="gather", axis=0),
             helper.make_node("Concat", ["b", "m1"], ["ns"], name="concat", axis=0),
             helper.make_node("Reshape", ["r", "ns"], ["flat"], name="reshape"),
             helper.make_node("MatMul", ["flat", "M"], ["mm"], name="mm"),
             helper.make_node("Softmax", ["mm"], ["y"], name="sm", axis=-1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                                                [vi("y", TensorProto.FLOAT, ["N", 10])], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def one_onnx(run: int, a, d: str, data: bytes, found: Counter, shown: Counter) -> None:
    """Run ``run`` of ``--onnx``: the model's bytes edited, imported, and judged by onnxruntime where it imports."""
    rnd = random.Random(a.seed * 1_000_003 + run)
    b = bytearray(data)
    how = rnd.choice(["flip", "flip", "trunc", "byte"])
    if how == "trunc":
        b = b[:rnd.randrange(len(b))]
    else:   # (mostly in the graph's structure: the first 800 and last 400 bytes, not the initializers' floats)
        for _ in range(rnd.choice([1, 2, 4])):
            pos = (rnd.randrange(len(b)) if rnd.random() < 0.3 else
                   rnd.choice([rnd.randrange(min(800, len(b))), len(b) - 1 - rnd.randrange(400)]))
            b[pos] = rnd.randrange(256) if how == "byte" else b[pos] ^ (1 << rnd.randrange(8))
    path, out = os.path.join(d, f"m{run}.onnx"), os.path.join(d, f"m{run}.json")
    with open(path, "wb") as f:
        f.write(bytes(b))

    def report(kind, detail):
        found[kind, how] += 1
        if shown[kind, how] < 3:
            shown[kind, how] += 1
            print(f"== {kind} [{how}] run {run}: {detail}", flush=True)
            with open(f"/tmp/h62_{kind}_{run}.onnx", "wb") as f:
                f.write(bytes(b))
    try:
        code, _, se = run_cli(["import", path, "-o", out, "-q", "--batch", "2"])
    except Hang:
        raise
    except Exception as exc:   # noqa: BLE001
        report("crash", f"{type(exc).__name__}: {str(exc)[:100]} @ {traceback.extract_tb(exc.__traceback__)[-1]}")
        return
    if "Traceback" in se or code not in (0, 2) or (code == 2 and len(se.strip().splitlines()) != 1):
        report("cli-exit", f"import exit {code}: {se.strip()[:300]!r}")
    if code != 0:
        return
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return
    ort.set_default_logger_severity(4)
    planned = {t["id"]: t["size"] for t in json.load(open(out))["tensors"]}
    try:
        s = ort.InferenceSession(bytes(b), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.ones([d if isinstance(d, int) else 2 for d in i.shape], np.float32) for i in s.get_inputs()}
        outs = s.run(None, feeds)
    except Exception as exc:   # noqa: BLE001
        report("ort-refuses", str(exc).split("\n")[0][-200:])
        return
    for o, v in zip(s.get_outputs(), outs):
        if o.name in planned and planned[o.name] < v.nbytes:
            report("undersized", f"{o.name}: planned {planned[o.name]} B, onnxruntime writes {v.nbytes} B {v.shape}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--cli", type=float, default=0.5)
    ap.add_argument("--onnx", action="store_true", help="bit-flipped ONNX models through memplan import")
    a = ap.parse_args()
    data = onnx_model_bytes() if a.onnx else b""
    found: Counter = Counter()
    shown: Counter = Counter()
    hows: Counter = Counter()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))

    def hung(signum, frame):
        raise Hang()
    signal.signal(signal.SIGALRM, hung)
    with tempfile.TemporaryDirectory() as d:
        for run in range(a.runs):
            signal.alarm(a.timeout)
            try:
                if a.onnx:
                    one_onnx(run, a, d, data, found, shown)
                else:
                    one(run, a, d, found, shown, hows)
            except Hang:
                found["hang", "?"] += 1
                print(f"== hang run {run} (seed {a.seed})", flush=True)
            signal.alarm(0)
            if run % 100 == 0:
                print(f"... {run} runs, findings {sum(found.values())}", flush=True)
    print("edits:", dict(hows))
    print("findings:", dict(found) or "none")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
