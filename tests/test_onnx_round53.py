"""ONNX importer, round 53: each case held against what onnxruntime (CPU) does with the same model.

1. ``constant_initializers=True`` (``memplan import --constant-initializers``) dropped the graph inputs that are
   also initializers before their declarations were checked against the initializers, so an input declared
   ``[1, 4]``, ``[8]`` or double over a float ``[2, 4]`` initializer (onnxruntime refuses to load the model: "Can't
   merge shape info") was planned at the initializer's size; it is refused now, as it is without the option.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_refuses, ort_sizes, size_mismatches  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
ort.set_default_logger_severity(4)
X = np.ones((2, 4), np.float32)


def _declared_over_initializer(decl, ir_version):
    """``y = x + w``, ``w`` a float [2, 4] initializer also listed as a graph input declared ``decl``."""
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g",
                          [V("x", T.FLOAT, [2, 4]), decl], [onnx.ValueInfoProto(name="y")],
                          [numpy_helper.from_array(np.ones((2, 4), np.float32), "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)


# --- 1. an initializer's input declaration, checked also with constant_initializers ----------------------------------

@pytest.mark.parametrize("ir_version", [3, 8])
@pytest.mark.parametrize("decl,match", [
    (V("w", T.FLOAT, [1, 4]), r"graph input 'w' is declared with shape \[1, 4\] but its initializer has dims \[2, 4\]"),
    (V("w", T.FLOAT, [8]), r"graph input 'w' is declared with shape \[8\] but its initializer has dims \[2, 4\]"),
    (V("w", T.FLOAT, [-1, 8]), r"graph input 'w' is declared with shape \['\?', 8\] but its initializer has dims"),
    (V("w", T.DOUBLE, [2, 4]), r"graph input 'w' is declared double but its initializer is float"),
])
@pytest.mark.parametrize("constant", [False, True])
def test_an_input_declared_against_its_initializer_is_refused_also_as_a_constant(ir_version, decl, match, constant):
    """With constant_initializers the declaration was dropped unchecked and the model planned (32 B for 'y')."""
    m = _declared_over_initializer(decl, ir_version)
    assert ort_refuses(m, {"x": X})
    with pytest.raises(GraphError, match=rf"^model: {match}"):
        import_onnx(m, constant_initializers=constant)


@pytest.mark.parametrize("ir_version", [3, 8])
def test_a_symbolic_declaration_over_an_initializer_still_plans_as_a_constant(ir_version):
    """``["N", 4]`` over a [2, 4] initializer contradicts nothing: onnxruntime runs it, and so the plan stands."""
    m = _declared_over_initializer(V("w", T.FLOAT, ["N", 4]), ir_version)
    g = import_onnx(m, constant_initializers=True)
    memplan.plan(g)   # (verified)
    assert size_mismatches(g, ort_sizes(m, {"x": X}, strict=True)) == (1, [])


def test_the_cli_refuses_it_in_one_line(tmp_path, capsys):
    from memplan.cli import main

    path = tmp_path / "m.onnx"
    onnx.save(_declared_over_initializer(V("w", T.FLOAT, [1, 4]), 8), path)
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "--constant-initializers", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"memplan: error: {path}: graph input 'w' is declared with shape")
    assert not (tmp_path / "g.json").exists()
