"""MeanVarianceNormalization's agreement with onnxruntime over opsets 9-23, float32/float16/double/bfloat16 and two
inputs (rank 4 with the default axes, rank 2 with ``axes=[0]``): memplan plans a case iff onnxruntime loads and runs
it (round 63b). Not a test: a table. ``-v`` prints every case.

Run: ``python tests/onnx_mvn_matrix63.py [-v]`` from the repository root (``PYTHONPATH=$PWD``). Exit status 1 where
they disagree.
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx

ELEMS = {T.FLOAT: "float32", T.FLOAT16: "float16", T.DOUBLE: "double", T.BFLOAT16: "bfloat16"}


def case(elem: int, opset: int, shape: list[int], axes: list[int] | None):
    kw = {} if axes is None else {"axes": axes}
    g = helper.make_graph([helper.make_node("MeanVarianceNormalization", ["x"], ["y"], name="n0", **kw)], "g",
                          [helper.make_tensor_value_info("x", elem, shape)],
                          [helper.make_tensor_value_info("y", elem, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def ort_runs(model, elem: int, shape: list[int]) -> bool:
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        if elem != T.BFLOAT16:   # (numpy has no bfloat16: loading is the answer)
            s.run(None, {"x": np.random.rand(*shape).astype(helper.tensor_dtype_to_np_dtype(elem))})
        return True
    except Exception:  # noqa: BLE001 - any refusal is a refusal
        return False


def main(argv: list[str]) -> int:
    total = disagree = false_refusals = 0
    for elem, ename in ELEMS.items():
        for opset in range(9, 24):
            for shape, axes in (([2, 3, 4, 5], None), ([2, 3], [0])):
                model = case(elem, opset, shape, axes)
                o = ort_runs(model, elem, shape)
                try:
                    import_onnx(model)
                    m, why = True, ""
                except MemplanError as exc:
                    m, why = False, str(exc)[:160]
                total += 1
                disagree += o != m
                false_refusals += o and not m
                if "-v" in argv or o != m:
                    print(f"{ename:9} opset {opset:2} {shape} axes={axes}: ort {'runs' if o else 'refuses'}, "
                          f"memplan {'plans' if m else 'refuses: ' + why}")
    print(f"{total} cases, {disagree} disagree, {false_refusals} false refusals (ort runs, memplan refuses)")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
