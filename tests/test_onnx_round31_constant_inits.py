"""``import_onnx(constant_initializers=True)`` / ``memplan import --constant-initializers``: an initializer the
model also lists as a graph input (an overridable default from IR 4, refused where it sizes something) is taken as
the constant it holds, for exports that list every initializer as an input and never feed them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError, OptionError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _expand_to_input():
    s = numpy_helper.from_array(np.array([1, 2, 3, 4], np.int64), "s")
    g = helper.make_graph([helper.make_node("Expand", ["x", "s"], ["y"], name="ex")], "g",
                          [V("x", T.FLOAT, [2, 3, 4]), V("s", T.INT64, [4])], [V("y", T.FLOAT, None)], [s])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_refused_by_default_with_a_hint_naming_the_option():
    with pytest.raises(GraphError, match=r"graph input 's'.*constant_initializers=True"):
        import_onnx(_expand_to_input())


def test_taken_as_the_constant_it_holds_and_the_callers_model_is_kept():
    model = _expand_to_input()
    before = model.SerializeToString()
    g = import_onnx(model, constant_initializers=True)
    sizes = {t.id: t.size for t in g.tensors}
    assert sizes["y"] == 96
    assert {t.id: t.kind for t in g.tensors}["s"] == "weight"
    assert model.SerializeToString() == before


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_the_option_is_a_bool(bad):
    with pytest.raises(OptionError, match="constant_initializers"):
        import_onnx(_expand_to_input(), constant_initializers=bad)


def test_the_cli_option(tmp_path, capsys):
    """In process (``cli.main``, what ``python -m memplan`` runs): two subprocesses spent 3.6 s of CI importing onnx
    again for the same lines and exit statuses (tests/test_cli.py keeps the real entry point's tests)."""
    path = tmp_path / "m.onnx"
    onnx.save(_expand_to_input(), str(path))
    out = tmp_path / "g.json"
    argv = ["import", str(path), "-o", str(out), "-q"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "--constant-initializers" in err and not out.exists()
    code = main(argv + ["--constant-initializers"])
    assert code == 0, capsys.readouterr().err
    assert {t["id"]: t["size"] for t in json.loads(out.read_text())["tensors"]}["y"] == 96
