"""Sweep: standard ops of opsets 21-23 (``ai.onnx``) on tiny generic inputs, run by onnxruntime's CPU provider and
imported by memplan, printing each op whose planned sizes differ from what onnxruntime writes, or that memplan
refuses where onnxruntime runs it. Not a test: a finder of cases for tests (round 55).

Run: ``python tests/onnx_sweep_round55.py`` (from the repository root, ``PYTHONPATH=$PWD``). Each op gets every
input a tensor of one shape (``[2, 3, 4]``, then ``[4]``, then ``[2, 3, 4, 5]``) of its first allowed type and no
attributes; an op onnxruntime refuses in all three forms is skipped (it needs attributes or values: a test
builds it by hand).
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import helper
from onnx_oracle import ORT_ERRORS, ort_sizes, size_mismatches

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx

SHAPES = ([2, 3, 4], [4], [2, 3, 4, 5])


def _elem(type_str: str) -> int | None:
    """The ONNX elem type of a schema type string (``tensor(float)``), None for sequences, maps, optionals."""
    if not type_str.startswith("tensor("):
        return None
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype({"float": "float32", "double": "float64", "bool": "bool",
                                                           "float16": "float16"}.get(type_str[7:-1], type_str[7:-1])))


def _model(schema, shape: list[int], opset: int):
    types = {tc.type_param_str: tc.allowed_type_strs for tc in schema.type_constraints}
    ins, names = [], []
    for k, p in enumerate(schema.inputs):
        if p.option == p.option.Optional:
            break
        allowed = types.get(p.type_str, [p.type_str])
        pick = next((t for t in allowed if t == "tensor(float)"), allowed[0])
        elem = _elem(pick)
        if elem is None:
            return None, None
        ins.append(helper.make_tensor_value_info(f"x{k}", elem, shape))
        names.append(f"x{k}")
    outs = [f"y{k}" for k, p in enumerate(schema.outputs) if p.option != p.option.Optional or k == 0]
    node = helper.make_node(schema.name, names, outs, name="n")
    g = helper.make_graph([node], "g", ins, [helper.ValueInfoProto(name=o) for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    rng = np.random.default_rng(0)
    feeds = {vi.name: rng.random(shape).astype(helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
             for vi in ins}
    return m, feeds


def uncovered_ort_ops() -> list[str]:
    """onnxruntime's ``com.microsoft`` ops that nothing covers: no rule of memplan's, no refusal by name, no rule of
    onnxruntime's symbolic shape inference (a declaration of their outputs would be planned unchecked)."""
    from onnxruntime.capi import _pybind_state

    from memplan.importers.onnx import ort_ops

    cls = ort_ops._ort_symbolic()
    theirs = set(cls(2**31 - 1, False, False, 0).dispatcher_) if cls is not None else set()
    ours = set(ort_ops.ORT_RULES) | ort_ops.ORT_UNSIZED | set(ort_ops.ORT_WRONG) | theirs
    return sorted({s.name for s in _pybind_state.get_all_operator_schema() if s.domain == ort_ops.ORT_DOMAIN
                   and s.name not in ours and not onnx.defs.has(s.name, ort_ops.ORT_DOMAIN)})


def main() -> int:
    opset = 23
    seen = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain == "" and 21 <= s.since_version <= opset and not s.deprecated:
            seen[s.name] = s if s.name not in seen or s.since_version > seen[s.name].since_version else seen[s.name]
    found, skipped = 0, []
    for name, schema in sorted(seen.items()):
        for shape in SHAPES:
            model, feeds = _model(schema, shape, opset)
            if model is None:
                break
            try:
                real = ort_sizes(model, feeds, strict=False)
            except ORT_ERRORS:
                real = None
            if real is None:
                continue
            try:
                _, bad = size_mismatches(import_onnx(model), real)
            except MemplanError as exc:
                bad = [f"refused where onnxruntime runs it: {str(exc)[:200]}"]
            for line in bad:
                found += 1
                print(f"{name} {shape}: {line}")
            break
        else:
            skipped.append(name)
    print(f"{len(seen)} ops of opsets 21-{opset}; {found} differences; not run generically: {', '.join(skipped)}")
    left = uncovered_ort_ops()
    print(f"com.microsoft ops nothing sizes or refuses: {', '.join(left) or 'none'}")
    return 1 if found or left else 0


if __name__ == "__main__":
    sys.exit(main())
