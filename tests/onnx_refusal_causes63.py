"""The models of ``onnx_agreement63``'s corpus that onnxruntime loads and memplan refuses, classified by cause (round
63): a table of causes, each with its count and one example. Not a test: a finder of false refusals.

A refusal saying the sizes depend on values computed at run time is checked: the model's inputs are fixed to the
test case's values (onnx's node test data, or the backend model's ``test_data_set_0``), first all but the first
input, then all of them, and imported again; one memplan then plans is "value-dependent (checked)", one it still
refuses is listed apart (a refusal whose reason may be memplan's own). A refusal where onnxruntime loads the model
but fails running it (the run is tried on the test's inputs, or ones of the declared shapes) is memplan agreeing
with onnxruntime at run time.

Run: ``python tests/onnx_refusal_causes63.py [--no-node] [--show N]`` from the repository root
(``PYTHONPATH=$PWD``). Exit status 1 where a refusal has no known cause ("other").
"""

from __future__ import annotations

import glob
import os
import re
import sys
import warnings
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_agreement63 as A  # noqa: E402 - the corpus is the agreement script's

#: ops whose output's length is a count of what their input's values call for, whatever is constant
COUNTING_OPS = frozenset({"NonZero", "Unique", "NonMaxSuppression", "Compress"})
VALUE_WORDS = ("depends on values computed at run time", "is computed at run time from what the graph inputs hold")
#: (cause, pattern of memplan's first line): the first that matches names the cause
CAUSES = (
    ("sizes depend on input values", "|".join(re.escape(w) for w in VALUE_WORDS)),
    ("control flow (If/Loop/Scan/SequenceMap) not supported", r"control flow \(If/Loop/Scan\) is not supported"),
    ("control flow on run-time values (If condition / Loop trip count or condition not known at import)",
     r"control flow on run-time values is not supported|known only at run time \(not supported\)"),
    ("string tensor: no fixed byte size", r"has dtype string, which has no fixed byte size"),
    ("sequence/optional graph input not supported", r"not a tensor \(only tensors are supported"),
    ("onnxruntime refuses at run time (named by memplan)", r"onnxruntime refuses to run it"),
    ("ONNX shape inference failed", r"ONNX shape inference failed"),
    ("raw exception (a bug)", r"^RAW "),
)


def _test_inputs(name: str, model) -> list | None:
    """The test case's input arrays of ``name`` (in graph-input order), or None where there are none."""
    if name.startswith("node/"):
        return _NODE_DATA.get(name)
    if name.startswith("data/"):
        root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", name[len("data/"):])
        files = sorted(glob.glob(os.path.join(root, "test_data_set_0", "input_*.pb")),
                       key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))
        out = []
        for f in files:
            t = onnx.TensorProto()
            with open(f, "rb") as fh:
                t.ParseFromString(fh.read())
            out.append(numpy_helper.to_array(t))
        return out or None
    return None


_NODE_DATA: dict[str, list] = {}


def node_models():
    """``onnx_agreement63.node_models`` keeping each case's first data set's inputs."""
    import onnx.backend.test.case.node as cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in cases.collect_testcases(None):
            if c.data_sets:
                _NODE_DATA["node/" + c.name] = list(c.data_sets[0][0])
            yield "node/" + c.name, c.model


def _frozen(model, values: list, keep: int):
    """A copy of ``model`` whose graph inputs past the first ``keep`` are initializers holding ``values``."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inputs = [i for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    kept = []
    for k, vi in enumerate(inputs):
        value = values[k] if k < len(values) else None
        if k < keep or not isinstance(value, (np.ndarray, np.generic)) or np.asarray(value).dtype == object:
            kept.append(vi)   # (a sequence, an optional, a string: left an input)
            continue
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
    del m.graph.input[:]
    m.graph.input.extend(kept)
    return m


def value_dependence_checked(name: str, model) -> bool | None:
    """Whether memplan plans ``model`` once its inputs hold the test's values (None: no test values)."""
    values = _test_inputs(name, model)
    if not values:
        return None
    return any(A.memplan_plans(_frozen(model, values, keep))[0] for keep in (1, 0))


def ort_runs(name: str, model) -> tuple[bool, str]:
    """Whether onnxruntime runs ``model`` on the test's inputs (or ones of the declared shapes)."""
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        values = _test_inputs(name, model)
        if values is None:
            values = [np.ones([d.dim_value for d in i.type.tensor_type.shape.dim],
                              onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))
                      for i in model.graph.input]
        s.run(None, {i.name: v for i, v in zip(s.get_inputs(), values)})
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure is a failure
        return False, str(exc).split("\n")[0][:160]


def classify(name: str, model, why: str) -> str:
    cause = next((c for c, pat in CAUSES if re.search(pat, why)), "other")
    op = re.search(r"node '[^']*' \((\w+)\)", why)
    if cause == "sizes depend on input values" and op and op.group(1) in COUNTING_OPS:
        cause += f" ({'/'.join(sorted(COUNTING_OPS))}: how many entries its input's values call for)"
    elif cause == "sizes depend on input values":
        checked = value_dependence_checked(name, model)
        cause += {True: " (checked: planned once they are fixed)", None: " (no test values to check)",
                  False: " (NOT planned once they are fixed)"}[checked]
    elif cause == "onnxruntime refuses at run time (named by memplan)":
        cause += " (checked: ort fails running it)" if not ort_runs(name, model)[0] else " (ORT RUNS IT)"
    return cause


def main(argv: list[str]) -> int:
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 3
    sources = [A.backend_models(), A.uniform_ops()] + ([] if "--no-node" in argv else [node_models()])
    causes: Counter = Counter()
    examples: dict[str, list[str]] = {}
    total = 0
    for source in sources:
        for name, model in source:
            if not A.ort_loads(model)[0]:
                continue
            planned, why = A.memplan_plans(model)
            if planned:
                continue
            total += 1
            cause = classify(name, model, why)
            causes[cause] += 1
            examples.setdefault(cause, []).append(f"{name}: {why[:220]}")
    print(f"ort loads, memplan refuses: {total}")
    for cause, count in causes.most_common():
        print(f"{count:5}  {cause}")
        for line in examples[cause][:show]:
            print("         ", line)
    return 1 if causes["other"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
