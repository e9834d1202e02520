"""Round 31 (determinism): every output memplan writes repeats across processes and for equal input documents.

Why it exists: tests/test_solver_round30_determinism.py proves plan JSON repeats across ``PYTHONHASHSEED``
values for every solver; nothing checked the other outputs (``show``, ``trace``, ``simulate``, ``verify``,
``csv``, ``example``, ``draw``, the split graph of ``--devices``, ``import``) across hash seeds, nor what the
commands that read a plan print for an equal plan document whose JSON keys stand in another order (``jq -S``,
``json.dump(sort_keys=True)`` and most JSON tools rewrite a file so). ``memplan show`` printed the solver block
in the file's key order: the same plan, sorted by a tool, printed differently.

Each cross-seed test runs one child interpreter per hash seed (set and dict orders of strings differ between
them) that prints a digest per output, and compares the children's lines (the CLI and ONNX tests share theirs: one
interpreter per seed runs both children).
"""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from needs import need

import memplan
from memplan import examples
from memplan.cli import main
from memplan.show import describe

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ("0", "12345")


def _children(script: str, *args: str) -> list[str]:
    """The stdout of ``script`` run under each of ``SEEDS`` (asserting each run succeeded)."""
    outs = []
    for seed in SEEDS:
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append(r.stdout)
    return outs


def _assert_same_lines(outs: list[str]) -> None:
    """Every child printed the same lines (the first differing one named)."""
    first = outs[0].splitlines()
    assert len(first) > 5
    for other in outs[1:]:
        for a, b in zip(first, other.splitlines()):
            assert a == b
        assert len(first) == len(other.splitlines())


def _reorder(value, how: str):
    """``value`` with every object's keys sorted (``how="sorted"``, as ``jq -S`` writes them) or reversed."""
    if isinstance(value, dict):
        keys = sorted(value) if how == "sorted" else list(reversed(value))
        return {k: _reorder(value[k], how) for k in keys}
    if isinstance(value, list):
        return [_reorder(v, how) for v in value]
    return value


def _shown_plans() -> list[memplan.Plan]:
    """Plans whose solver blocks carry most of the keys a solver writes: search's node counts, the heuristics
    tried, a schedule, fused groups' bound, a device split."""
    moe, views = examples.moe(4), examples.views_inplace()
    return [memplan.plan(moe, solver="search", time_limit=0.2), memplan.plan(moe, streams="auto"),
            memplan.plan(views, streams=2, fused_groups=True), memplan.plan(examples.qkv_attention(), solver="ggml"),
            memplan.plan_graph(examples.chain(6), devices=2, streams="auto").plan]


@pytest.mark.parametrize("how", ["sorted", "reversed"])
def test_show_prints_an_equal_plan_document_the_same(how):
    """``memplan show`` of a plan and of the same plan with its JSON keys in another order print the same text:
    JSON objects are unordered, so the solver block's (and its nested blocks') keys are printed in one order
    of their own. Before, ``name=greedy, status=OPTIMAL, gap=0.0, bound=...`` became
    ``bound=..., gap=0.0, name=greedy, status=OPTIMAL`` for the key-sorted file, and ``tried: greedy=...,
    size=...`` swapped too."""
    for p in _shown_plans():
        doc = json.loads(p.to_json())
        written, again = memplan.plan_from_dict(doc), memplan.plan_from_dict(_reorder(doc, how))
        assert again == written == p
        assert describe(again) == describe(written), p.solver["name"]


def test_show_keeps_the_headline_first_and_every_key():
    """The canonical order still leads with what the plan's solver was and reached, and drops no key."""
    doc = json.loads(_shown_plans()[0].to_json())
    text = describe(memplan.plan_from_dict(_reorder(doc, "sorted")))
    line = next(x for x in text.splitlines() if x.startswith("solver "))
    assert line.split(None, 1)[1].startswith(f"name=search, status={doc['solver']['status']}, gap=")
    for k, v in doc["solver"].items():
        if not isinstance(v, (dict, list)):
            assert f"{k}={v}" in line


def _shuffled_keys(value, rnd):
    """``value`` with every object's keys in a random order (``rnd``): an equal JSON document."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: _shuffled_keys(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_shuffled_keys(v, rnd) for v in value]
    return value


@pytest.mark.parametrize("name", ["views", "moe", "llama-tiny"])
def test_a_graph_with_its_keys_in_another_order_plans_the_same_bytes(tmp_path, name):
    """What docs/format.md promises of an equal graph document: keys in any order give the same plan file (every
    option family), and the same split graph but for the free-form ``attrs`` it copies in their own order."""

    src = tmp_path / "g.json"
    memplan.save_graph(examples.bundled()[name], str(src))
    doc = json.loads(src.read_text())
    perm = tmp_path / "p.json"
    perm.write_text(json.dumps(_shuffled_keys(doc, random.Random(31))))
    for opts in ([], ["--streams", "auto"], ["--streams", "2", "--solver", "size"],
                 ["--streams", "auto", "--max-events", "2", "--fused-groups"], ["--devices", "2", "--streams", "auto"]):
        outs = []
        for k, g in enumerate((src, perm)):
            out, split = tmp_path / f"o{k}.json", tmp_path / f"s{k}.json"
            assert main(["plan", str(g), "-o", str(out), "-q", "--graph-out", str(split), *opts]) == 0
            drop_attrs = json.loads(split.read_text())
            for t in drop_attrs["tensors"] + drop_attrs["nodes"]:
                t.pop("attrs", None)
            outs.append((out.read_bytes(), json.dumps(drop_attrs)))
        assert outs[0] == outs[1], opts


#: the child: every command but ``import``, on small bundled and hand-made inputs, in-process; prints
#: "<case> <exit code> <sha256 of stdout, stderr (timings cut) and the files written>"
CLI_CHILD = r"""
import contextlib, hashlib, io, json, re, sys, tempfile
from pathlib import Path
import memplan
from memplan import examples
from memplan.cli import main

work = Path(tempfile.mkdtemp())
def run(case, argv, *files):
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = main([str(a) for a in argv])
    h = hashlib.sha256()
    for text in (o.getvalue(), re.sub(r"in \d+\.\d+s", "in Ts", e.getvalue())):
        h.update(text.replace(str(work), "W").encode())
    for f in files:
        h.update(Path(f).read_bytes())
    print(case, rc, h.hexdigest(), flush=True)

run("example", ["example", "-o", work / "ex"])
ex = sorted((work / "ex").glob("*.json"))
print("example-files", hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in ex)).hexdigest())
graphs = {"views": work / "ex" / "views.json", "moe": work / "ex" / "moe.json", "qkv": work / "ex" / "qkv.json"}
opts = {"default": [], "search": ["--solver", "search", "--time-limit", "0.2"], "s2": ["--streams", "2"],
        "sauto": ["--streams", "auto"], "maxev": ["--streams", "auto", "--max-events", "1"],
        "budget": ["--streams", "auto", "--memory-budget", "64K"], "fused": ["--fused-groups", "--streams", "2"]}
for g, src in graphs.items():
    for k, o in opts.items():
        out = work / f"{g}.{k}.json"
        run(f"plan/{g}/{k}", ["plan", src, "-o", out, *o], out)
        if k in ("default", "sauto"):
            run(f"show/{g}/{k}", ["show", out])
            run(f"verify/{g}/{k}", ["verify", src, out])
            run(f"simulate/{g}/{k}", ["simulate", src, out])
            run(f"trace/{g}/{k}", ["trace", src, out, "-o", work / "t.json"], work / "t.json")
    split, out = work / f"{g}.split.json", work / f"{g}.dev.json"
    run(f"plan/{g}/devices", ["plan", src, "-o", out, "--devices", "2", "--streams", "auto", "--graph-out", split],
        out, split)
    run(f"show/{g}/devices", ["show", out])
csv = work / "p.csv"
csv.write_text("id,lower,upper,size\n" + "".join(f"b{i},{i % 5},{i % 5 + 1 + i % 3},{64 * (1 + i % 4)}\n"
                                                 for i in range(24)))
for k, o in {"default": [], "greedy": ["--solver", "greedy"], "cap": ["--capacity", "4K"]}.items():
    run(f"csv/{k}", ["csv", csv, "-o", work / "o.csv", *o], work / "o.csv")
"""


def test_every_command_writes_the_same_bytes_under_other_hash_seeds():
    """``example``, ``plan`` (solvers, streams, a budget, an event cap, fused groups, two devices with the split
    graph), ``show``, ``verify``, ``simulate``, ``trace`` and ``csv``: exit code, stdout, stderr (solver seconds
    cut) and every file written repeat under another hash seed."""
    _assert_same_lines(_both_children()[0])


#: the child: ONNX models with unnamed nodes and values, names that look alike (``n``, ``n_1``, ``Relu_4``), a
#: wide fan-out of unnamed twins, a Split with an unused output, and a subgraph (refused): ``memplan import`` of
#: each, then a plan of each imported graph
ONNX_CHILD = r"""
import contextlib, hashlib, io, sys, tempfile
from pathlib import Path
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from memplan.cli import main

F = TensorProto.FLOAT
work = Path(tempfile.mkdtemp())
def vi(n, *s):
    return helper.make_tensor_value_info(n, F, list(s))
def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "m", list(inputs), list(outputs), initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
R = lambda i, o, name=None: helper.make_node("Relu", [i], [o], **({} if name is None else {"name": name}))
shape = numpy_helper.from_array(np.array([2, 4, 16], dtype="int64"), "shape")
w = numpy_helper.from_array(np.zeros((8, 64), dtype="float32"), "w")
models = {
    "unnamed": model([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Reshape", ["m", "shape"], ["m3"]),
                      helper.make_node("Softmax", ["m3"], ["p"], axis=-1), R("p", "q"), R("p", "q2"),
                      helper.make_node("Add", ["q", "q2"], ["r"]), helper.make_node("Flatten", ["r"], ["y"], axis=1)],
                     [vi("x", 2, 8)], [vi("y", 2, 64)], [w, shape]),
    "alike": model([R("x", "a", "n"), R("a", "b", "n"), R("b", "c", "n_1"), R("c", "d", "n_2"), R("d", "e", ""),
                    R("e", "f", "Relu_4"), R("f", "g", "Relu_5"), R("g", "n", "x"),
                    helper.make_node("Add", ["n", "a"], ["y"], name="n")], [vi("x", 4)], [vi("y", 4)]),
    "fan": model([n for i in range(10) for n in (R("x", f"r{i}"), helper.make_node("Sigmoid", [f"r{i}"], [f"s{i}"]))]
                 + [helper.make_node("Sum", [f"s{i}" for i in range(10)], ["y"])], [vi("x", 16, 16)], [vi("y", 16, 16)]),
    "split": model([helper.make_node("Split", ["x"], ["s0", "s1", "s2"], axis=1, num_outputs=3),
                    helper.make_node("Mul", ["s0", "s1"], ["y"])], [vi("x", "N", 6)], [vi("y", "N", 2)], opset=18),
    "subgraph": model([helper.make_node("If", ["c"], ["y"], name="branch",
                                        then_branch=helper.make_graph([R("x", "t")], "then", [], [vi("t", 4)]),
                                        else_branch=helper.make_graph([R("x", "e")], "else", [], [vi("e", 4)]))],
                      [helper.make_tensor_value_info("c", TensorProto.BOOL, []), vi("x", 4)], [vi("y", 4)]),
}
for name, m in models.items():
    src, out, plan = work / f"{name}.onnx", work / f"{name}.json", work / f"{name}.plan.json"
    onnx.save(m, src)
    batch = ["--batch", "3"] if name == "split" else []
    for argv, files in ((["import", src, "-o", out, *batch], [out]),
                        (["plan", out, "-o", plan, "--streams", "auto", "-q"], [plan])):
        o, e = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            rc = main([str(a) for a in argv])
        data = b"".join(Path(f).read_bytes() for f in files if rc == 0)
        print(name, argv[0], rc, hashlib.sha256(e.getvalue().replace(str(work), "W").encode() + data).hexdigest())
"""


#: the line between the two children's output in ``_both_children``
_PART = "----8<---- onnx ----8<----"


@functools.cache
def _both_children() -> tuple[list[str], list[str] | None]:
    """The outputs of ``CLI_CHILD`` and of ``ONNX_CHILD`` under each of ``SEEDS``: both children run one after the
    other in one fresh interpreter per seed, each with globals of its own (two launches instead of four: each
    launch spent most of a second starting Python and importing memplan). ``ONNX_CHILD``'s outputs are None where
    onnx is missing (its test then fails under CI and skips elsewhere, by ``need``); the CLI child runs anyway."""
    script = (f"exec(compile({CLI_CHILD!r}, 'CLI_CHILD', 'exec'), {{'__name__': '__main__'}})\n"
              "try:\n    import onnx  # noqa: F401\nexcept ImportError:\n    raise SystemExit(0)\n"
              f"print({_PART!r}, flush=True)\n"
              f"exec(compile({ONNX_CHILD!r}, 'ONNX_CHILD', 'exec'), {{'__name__': '__main__'}})\n")
    outs = _children(script)
    cli = [o.split(_PART + "\n")[0] for o in outs]
    onnx_outs = [o.split(_PART + "\n")[1] for o in outs] if all(_PART in o for o in outs) else None
    return cli, onnx_outs


def test_onnx_imports_repeat_across_hash_seeds():
    """``memplan import`` of ONNX models whose ids the importer makes up (unnamed nodes, names that collide with
    made-up ones) writes the same graph bytes, and its refusals the same line, under another hash seed."""
    need("onnx")
    outs = _both_children()[1]
    assert outs is not None, "the children could not import onnx"
    _assert_same_lines(outs)
