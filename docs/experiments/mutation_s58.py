"""Session 58 (mutation58): mutation testing of the code rounds 55-56 left out, to find checks no test can make fail.

Targets: the importers (the ONNX sizing rules: dtype sizes, element counts, which values become tensors, weights,
views and shared buffers; the torch.export translation: weights vs inputs, views, in-place writes, element counts),
the plan/graph JSON reader and writer (``memplan/io``), the CLI's exit codes (the ``cmd_*`` commands and
``_main``), and the CPU-runnable parts of the ATen executor: the arena layout (``runtime/aten/layout.py``), the
stream/event issue order (``runtime/aten/streams.py``) and the program's specs and call checks
(``runtime/aten/program.py``).

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s58.py [--only layout,streams] [--list]
[--ids 3,17] [--tests tests/x.py] [--without tests/test_mutation_round58.py]``. The driver is round 56's (itself
round 55's: the same operators, the same evenly spaced pick per target, the same copy-to-a-temporary-tree run of
``pytest -x -q`` under a 60 s timeout), imported, not copied. This round adds operators for the faults the brief
names (a wrong dtype size, a dropped alias, a skipped event, swapped offsets):

- ``table``: one int value of a module-level table of ints (``_BITS``: bits per ONNX dtype) doubled: a wrong dtype
  size;
- ``stmt``: a statement that is a method call (``stream.wait_event(e)``, ``events[e].record(s)``,
  ``tensors.append(...)``, ``taken.add(v)``) becomes ``pass``: a skipped event, a tensor never listed;
- ``alias``: a ``view_of=`` keyword, or the ``view_of`` argument of ``Tensor(id, size, kind, view_of, ...)``,
  becomes None: a dropped alias;
- ``swap``: the operands of a ``-`` (neither a constant) swapped: ``a - b`` -> ``b - a`` (offsets swapped).
"""
from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutation_s55 as s55  # noqa: E402  (round 55's driver: operators, pick, mutate)
import mutation_s56 as s56  # noqa: E402  (round 56's: the function filter and ``ret``)

R58 = "tests/test_mutation_round58.py"
#: name -> (module, fast test files that cover it, functions to mutate: None for all)
TARGETS: dict[str, tuple[str, list[str], tuple[str, ...] | None]] = {
    "onnxsize": ("memplan/importers/onnx/common.py",
                 [R58, "tests/test_onnx_round36_tensors.py", "tests/test_importer_layers.py"],
                 ("_nbytes", "_declared_type", "_node_ids")),
    "onnximp": ("memplan/importers/onnx/importer.py",
                [R58, "tests/test_onnx_round28.py", "tests/test_importers_onnx.py"],
                ("_import_inlined", "_return_inputs", "_shared_buffers", "_check_shared_buffers")),
    "torchtr": ("memplan/importers/torch/translate.py", [R58, "tests/test_importers_torch.py"],
                ("_from_exported",)),
    "torchck": ("memplan/importers/torch/checks.py", [R58, "tests/test_importers_torch.py"],
                ("_elements", "_extent", "_overlapping", "_bounded", "_declared_aliases", "_aliases_here")),
    "io": ("memplan/io/__init__.py", [R58, "tests/test_io_round50.py", "tests/test_io_modes.py",
                                      "tests/test_plan_round30_eq.py"],
           ("read_json", "_repeated_key", "_path", "load_graph", "save_graph", "graph_text", "_unwritable",
            "load_plan", "load_safe_pair", "save_plan")),
    "cli": ("memplan/cli.py", [R58, "tests/test_cli.py"],
            ("_main", "cmd_plan", "cmd_verify", "cmd_show", "cmd_simulate", "cmd_csv", "cmd_example")),
    "layout": ("runtime/aten/layout.py", [R58, "tests/test_layout_round32.py", "tests/test_aten_round48.py",
                                          "tests/test_runtime_round49.py"], None),
    "streams": ("runtime/aten/streams.py", [R58, "tests/test_aten_round36.py", "tests/test_runtime_round39.py"],
                ("used_streams", "__init__", "issue", "_issue")),
    "program": ("runtime/aten/program.py", [R58, "tests/test_aten_round31_stale.py", "tests/test_aten_round50.py"],
                ("_spec", "flatten_inputs", "_same_constant", "_alike", "strides_agree", "_in_order")),
}
QUOTA = {"onnxsize": 6, "onnximp": 8, "torchtr": 7, "torchck": 5, "io": 6, "cli": 6, "layout": 8, "streams": 6,
         "program": 6}


def _int_table(n: ast.AST) -> bool:
    return (isinstance(n, ast.Dict) and len(n.values) >= 4
            and all(isinstance(v, ast.Constant) and type(v.value) is int for v in n.values))


def candidates(tree: ast.Module, funcs: tuple[str, ...] | None) -> list[tuple[str, int, int, str]]:
    """Round 56's candidates plus this round's four operators (``table`` at module level, the rest in ``funcs``)."""
    inside = s56._inside(tree, funcs)
    out = s56.candidates(tree, funcs)
    for i, n in enumerate(ast.walk(tree)):
        if _int_table(n):
            for j, (k, v) in enumerate(zip(n.keys, n.values)):
                out.append(("tabl", i, j, f"table[{ast.unparse(k)}] {v.value} -> {2 * v.value}"))
        if i not in inside:
            continue
        if (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                and isinstance(n.value.func, ast.Attribute)):
            out.append(("stmt", i, 0, f"drop {ast.unparse(n.value.func)}()"[:40]))
        elif isinstance(n, ast.Call):
            for j, kw in enumerate(n.keywords):
                if kw.arg == "view_of" and not (isinstance(kw.value, ast.Constant) and kw.value.value is None):
                    out.append(("alia", i, j, "view_of=... -> None"))
            if isinstance(n.func, ast.Name) and n.func.id == "Tensor" and len(n.args) >= 4:
                out.append(("alia", i, -1, "Tensor(.., view_of -> None)"))
        elif (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
              and not isinstance(n.left, ast.Constant) and not isinstance(n.right, ast.Constant)):
            out.append(("swap", i, 0, f"swap {ast.unparse(n)}"[:40]))
    return sorted(out, key=lambda c: (c[1], c[2]))


def mutate(tree: ast.Module, cand: tuple[str, int, int, str]) -> tuple[str, int]:
    kind, i, j, _ = cand
    if kind not in ("tabl", "stmt", "alia", "swap"):
        return s56.mutate(tree, cand)
    t = copy.deepcopy(tree)
    n = list(ast.walk(t))[i]
    if kind == "tabl":
        n.values[j] = ast.Constant(2 * n.values[j].value)
    elif kind == "stmt":
        s55._replace(t, n, ast.Pass())
    elif kind == "alia" and j >= 0:
        n.keywords[j].value = ast.Constant(None)
    elif kind == "alia":
        n.args[3] = ast.Constant(None)
    else:
        n.left, n.right = n.right, n.left
    ast.fix_missing_locations(t)
    return ast.unparse(t), n.lineno


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--ids", default="")
    ap.add_argument("--tests", default="", help="comma-separated test files to run instead of the target's own")
    ap.add_argument("--without", default="", help="a test file left out of every run (the 'before' column)")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    root = os.getcwd()
    want = {int(x) for x in a.ids.split(",") if x}
    plan = []
    k = 0
    for name in TARGETS:   # (ids are fixed by TARGETS' order, whatever --only picks)
        path, tests, funcs = TARGETS[name]
        src = open(os.path.join(root, path)).read()
        tree = ast.parse(src)
        for c in s55.pick(candidates(tree, funcs), QUOTA[name]):
            if name in a.only.split(","):
                plan.append((k, name, path, tests, tree, src, c))
            k += 1
    if a.list:
        for k, name, _path, _, tree, _, c in plan:
            print(f"{k:3d} {name:8s} L{mutate(tree, c)[1]:<4d} {c[0]:4s} {c[3]}")
        return
    tmp = tempfile.mkdtemp(prefix="mut58_")
    for d in ("memplan", "runtime", "tests"):
        shutil.copytree(os.path.join(root, d), os.path.join(tmp, d), ignore=shutil.ignore_patterns("__pycache__"))
    if a.without and os.path.exists(os.path.join(tmp, a.without)):
        os.remove(os.path.join(tmp, a.without))
    env = dict(os.environ, PYTHONPATH=tmp, PYTHONDONTWRITEBYTECODE="1")
    killed = survived = 0
    try:
        for k, name, path, tests, tree, src, c in plan:
            if want and k not in want:
                continue
            text, line = mutate(tree, c)
            target = os.path.join(tmp, path)
            with open(target, "w") as f:
                f.write(text)
            tests = a.tests.split(",") if a.tests else tests
            tests = [t for t in tests if os.path.exists(os.path.join(tmp, t))]
            t0 = time.perf_counter()
            how = ""
            try:
                r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                   cwd=tmp, env=env, capture_output=True, timeout=a.timeout)
                dead = r.returncode != 0
            except subprocess.TimeoutExpired:
                dead, how = True, " (timeout)"
            with open(target, "w") as f:
                f.write(src)
            killed += dead
            survived += not dead
            print(f"{k:3d} {name:8s} L{line:<4d} {c[0]:4s} {c[3]:40s} {'KILLED' if dead else 'SURVIVED':8s} "
                  f"{time.perf_counter() - t0:5.1f} s{how}", flush=True)
    finally:
        shutil.rmtree(tmp)
    print(f"total {killed + survived}: killed {killed}, survived {survived}")


if __name__ == "__main__":
    main()
