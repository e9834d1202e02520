"""Round 74 polish (polish74): small wording and refusal defects the round left.

* ``runtime.aten``: a list setting changed from NaN to -NaN was refused, but the message printed
  ``([nan, 1.0] -> [nan, 1.0])``: no visible change (``settings._nan_signs`` signed a tuple's NaNs, not a list's).
* ``check_integer_to_float_matmul``: scales outside the com.microsoft spec were refused as "onnxruntime refuses to
  run it", though onnxruntime 1.32 runs some (a ``b_scale`` [2, 4] for an output [1, 4]): still refused, worded
  truthfully.
* ``GraphBuilder("g").build(1)`` (and ``build(x=1)``) was Python's bare TypeError, where README promises an
  OptionError for a wrong call; ``build`` is a ``named_method`` now, and a call of a method that takes no
  arguments says so (not "must be given by keyword", nor an empty list of options).
* ``Graph("g", {"x": tensor}, ())`` said ``tensor #0 is not a memplan Tensor (str 'x')`` (the dict's key): the dict
  is named now, as are a string and a set (whose order, and so the plan, changed from process to process).
"""

from __future__ import annotations

import pytest
from needs import need

NAN = float("nan")


def test_a_list_setting_changed_to_minus_nan_shows_the_signs_in_its_refusal() -> None:
    from runtime.aten.python_reads import reads_refusal

    class _Reads:
        def first_changed(self):
            return "cfg.a", [-NAN, 1.0], [NAN, 1.0]

    why = reads_refusal(_Reads())
    assert "([+nan, 1.0] -> [-nan, 1.0])" in why


def test_integer_to_float_matmul_scales_outside_the_spec_are_not_said_to_be_refused_by_onnxruntime() -> None:
    need("onnx")
    from onnx import TensorProto as T
    from onnx import helper

    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    V = helper.make_tensor_value_info
    node = helper.make_node("DynamicQuantizeMatMul", ["a", "b", "s"], ["y"], name="qmm", domain="com.microsoft")
    g = helper.make_graph([node], "g", [V("a", T.FLOAT, [1, 8]), V("b", T.INT8, [8, 4]), V("s", T.FLOAT, [2, 4])],
                          [V("y", T.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=8)
    with pytest.raises(GraphError, match=r"node 'qmm' \(DynamicQuantizeMatMul\): its scales \('s' \[2, 4\]\) do not "
                                         r"broadcast into its output \[1, 4\], which is outside the com.microsoft "
                                         r"spec of DynamicQuantizeMatMul; onnxruntime's kernel is not defined") as e:
        import_onnx(model)
    assert "refuses" not in str(e.value)


@pytest.mark.parametrize("args, kwargs, words", [
    ((1,), {}, r"GraphBuilder.build\(\) takes no arguments, not 1: 1$"),
    ((), {"validate": False}, r"GraphBuilder.build\(\) got an unknown option 'validate'; it takes none$"),
])
def test_graph_builder_build_called_with_an_argument_is_an_option_error(args, kwargs, words) -> None:
    import memplan
    from memplan.errors import OptionError

    b = memplan.GraphBuilder("g")
    b.input("x", 4)
    with pytest.raises(OptionError, match=words):
        b.build(*args, **kwargs)
    assert b.build().name == "g"


@pytest.mark.parametrize("tensors, nodes, words", [
    ("dict", (), r"graph tensors must be a list or tuple of Tensors, not dict \{'x': Tensor\(.*list\(d.values\(\)\)"),
    ("tuple", {"n": 1}, r"graph nodes must be a list or tuple of Nodes, not dict \{'n': 1\}"),
    ("str", (), r"graph tensors must be a list or tuple of Tensors, not str 'x'"),
    ("set", (), r"graph tensors must be a list or tuple of Tensors, not set .*order that changes from run to run"),
])
def test_a_graph_given_a_dict_string_or_set_of_tensors_names_it(tensors, nodes, words) -> None:
    import memplan
    from memplan.errors import GraphError

    t = memplan.Tensor("x", 4, "input")
    given = {"dict": {"x": t}, "tuple": (t,), "str": "x", "set": {t}}[tensors]
    with pytest.raises(GraphError, match=words):
        memplan.Graph("g", given, nodes)


def test_a_graph_still_takes_dict_values_a_generator_and_empty_containers() -> None:
    import memplan

    t = memplan.Tensor("x", 4, "input")
    for tensors, nodes in (({"x": t}.values(), []), ((u for u in [t]), {}), ([t], set())):
        assert memplan.Graph("g", tensors, nodes) == memplan.Graph("g", (t,), ())
