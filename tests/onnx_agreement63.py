"""Agreement of the ONNX importer with onnxruntime over a corpus (round 63): each model is loaded by onnxruntime's
CPU provider and imported by memplan, and the table ``ort loads/refuses x memplan plans/refuses`` printed, with the
refusals memplan gives by a type rule (``type_rules``) counted apart. Not a test: a finder of disagreements.

Corpus: onnx's backend test models shipped with the package (``onnx/backend/test/data``), its node test cases
(``onnx.backend.test.case.node.collect_testcases``, built in memory; ``--no-node`` leaves them out), and models made
here with ``onnx.helper``: every default-domain op whose inputs and outputs are all one type parameter, on inputs of
shape ``[2, 3]`` of each of several element types, and a few of onnxruntime's own ops likewise.

Run: ``python tests/onnx_agreement63.py [--no-node] [--show N]`` from the repository root (``PYTHONPATH=$PWD``).
Exit status 1 where memplan refuses by a type rule a model onnxruntime loads.
"""

from __future__ import annotations

import glob
import os
import sys
import warnings
from collections import Counter

import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx

TYPE_WORDS = ("does not take (", "does not make (", "binds both to its one type")
DTYPES = (T.FLOAT, T.DOUBLE, T.FLOAT16, T.BFLOAT16, T.INT8, T.UINT8, T.INT32, T.INT64, T.BOOL)
ORT_OPS = ("Gelu", "FastGelu", "QuickGelu", "BiasGelu", "FusedMatMul", "Inverse")


def backend_models():
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    for path in sorted(glob.glob(os.path.join(root, "*", "*", "model.onnx"))):
        yield "data/" + os.path.relpath(os.path.dirname(path), root), onnx.load(path)


def node_models():
    import onnx.backend.test.case.node as cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in cases.collect_testcases(None):
            yield "node/" + c.name, c.model


def uniform_ops(opset: int = 21):
    """Default-domain ops (at ``opset``) whose every input and output is the one type parameter ``T``, no attribute
    required: each on ``[2, 3]`` inputs of each of ``DTYPES`` (the op's minimum count of inputs)."""
    for s in sorted(onnx.defs.get_all_schemas(), key=lambda s: s.name):
        if s.domain != "" or s.deprecated or any(a.required for a in s.attributes.values()):
            continue
        try:
            s = onnx.defs.get_schema(s.name, opset, "")
        except onnx.defs.SchemaError:
            continue
        params = list(s.inputs) + list(s.outputs)
        if not s.inputs or any(p.type_str != "T" for p in params):
            continue
        n_in = max(1, s.min_input)
        for elem in DTYPES:
            ins = [helper.make_tensor_value_info(f"x{k}", elem, [2, 3]) for k in range(n_in)]
            outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(max(1, s.min_output))]
            node = helper.make_node(s.name, [i.name for i in ins], [o.name for o in outs], name="n0")
            g = helper.make_graph([node], "g", ins, outs)
            yield (f"made/{s.name}/{helper.tensor_dtype_to_np_dtype(elem) if elem != T.BFLOAT16 else 'bfloat16'}",
                   helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))
    for op in ORT_OPS:
        for elem in DTYPES:
            n_in = 2 if op in ("BiasGelu", "FusedMatMul") else 1
            shape = [3, 3] if op in ("FusedMatMul", "Inverse") else [2, 3]
            ins = [helper.make_tensor_value_info(f"x{k}", elem, shape if k == 0 else shape[-1:] if op == "BiasGelu"
                                                 else shape) for k in range(n_in)]
            outs = [helper.make_tensor_value_info("y", elem, shape)]
            node = helper.make_node(op, [i.name for i in ins], ["y"], name="n0", domain="com.microsoft")
            g = helper.make_graph([node], "g", ins, outs)
            yield (f"made/ms:{op}/{elem}", helper.make_model(g, opset_imports=[
                helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]))


def ort_loads(model) -> tuple[bool, str]:
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any refusal is a refusal
        return False, str(exc).split("\n")[0]


def memplan_plans(model) -> tuple[bool, str]:
    try:
        import_onnx(model, batch=1) if _batched(model) else import_onnx(model)
        return True, ""
    except MemplanError as exc:
        return False, str(exc).split("\n")[0]
    except Exception as exc:  # noqa: BLE001 - a raw exception is a bug: shown as such
        return False, f"RAW {type(exc).__name__}: {exc}"


def _batched(model) -> bool:
    return any(i.type.tensor_type.shape.dim and i.type.tensor_type.shape.dim[0].dim_param
               for i in model.graph.input if i.type.HasField("tensor_type"))


def main(argv: list[str]) -> int:
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 10
    sources = [backend_models(), uniform_ops()] + ([] if "--no-node" in argv else [node_models()])
    table: Counter = Counter()
    typed: Counter = Counter()
    odd: dict[str, list[str]] = {"ort loads, memplan refuses by type": [], "ort refuses by type, memplan plans": [],
                                 "raw exception": []}
    for source in sources:
        for name, model in source:
            o, why_o = ort_loads(model)
            m, why_m = memplan_plans(model)
            table[(o, m)] += 1
            by_type = not m and any(w in why_m for w in TYPE_WORDS)
            if by_type:
                typed[o] += 1
                if o:
                    odd["ort loads, memplan refuses by type"].append(f"{name}: {why_m}")
            if not o and m and "Type Error" in why_o:
                odd["ort refuses by type, memplan plans"].append(f"{name}: {why_o[:160]}")
            if why_m.startswith("RAW"):
                odd["raw exception"].append(f"{name}: {why_m[:200]}")
    total = sum(table.values())
    print(f"models: {total}")
    print(f"{'':16}{'memplan plans':>15}{'memplan refuses':>17}")
    for o in (True, False):
        print(f"{'ort loads' if o else 'ort refuses':16}{table[(o, True)]:>15}{table[(o, False)]:>17}")
    print(f"memplan refusals by a type rule: {typed[False]} where ort refuses, {typed[True]} where ort loads")
    for what, items in odd.items():
        print(f"{what}: {len(items)}")
        for line in items[:show]:
            print("   ", line)
    return 1 if odd["ort loads, memplan refuses by type"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
