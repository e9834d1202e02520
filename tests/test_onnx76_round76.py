"""ONNX importer, round 76 (onnx76): models real exporters write and hand-made hostile ones, against onnxruntime 1.32.

Hand-built with ``onnx.helper`` (every op's edge cases, external data, control flow, sequences, quantized and
``com.microsoft`` ops) and mutated byte by byte (a fuzz of ``memplan import`` over models with subgraphs, local
functions, sequences and sparse initializers), each planned size held against the bytes onnxruntime writes. What
was found:

* a model byte-flipped inside a subgraph (a Loop body's value name, an If branch's op type no longer UTF-8) was a raw
  ``TypeError`` traceback out of ``memplan import``: the UTF-8 check of names did not descend into subgraphs;
* a ``SplitToSequence`` anywhere before a ``com.microsoft`` op left that op unsized and the model refused, where
  onnxruntime runs it: onnxruntime's symbolic inference of ``SplitToSequence`` calls a helper onnx no longer has,
  which ended its pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_shapes  # noqa: E402

import memplan  # noqa: E402
from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), opset: int = 17, domains=(), ir: int = 8):
    g = helper.make_graph(nodes, "g", inputs, [helper.make_empty_tensor_value_info(o) for o in outputs],
                          initializer=list(inits))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains]
    return helper.make_model(g, opset_imports=imports, ir_version=ir)


def _loop_model():
    """A Loop of two iterations whose body adds ``x`` to its carried value."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc", "x"], ["acc_out"])],
        "body", [V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("acc", T.FLOAT, None)],
        [V("cond_out", T.BOOL, []), V("acc_out", T.FLOAT, None)])
    return _model([helper.make_node("Loop", ["trip", "", "x"], ["y"], body=body)], [V("x", T.FLOAT, [2, 3])], ["y"],
                  [nh.from_array(np.array(2, np.int64), "trip")])


@pytest.mark.parametrize("where", ["value name", "op_type", "function body"])
def test_a_name_inside_a_subgraph_that_is_not_utf8_is_refused_naming_it(tmp_path, capsys, where):
    """A byte flipped in a Loop body's value name or op type (``b'a\\xffcc'``) made the import hand ``bytes`` to a
    sort beside ``str`` (a raw ``TypeError``: "'<' not supported between instances of 'str' and 'bytes'") or to
    onnx's schema lookup ("has_schema(): incompatible function arguments"), a traceback out of ``memplan import``;
    the names of subgraphs (of the graph's nodes and of local functions' nodes) are checked as the graph's are."""
    model = _loop_model()
    if where == "function body":   # (the Loop in a local function's body)
        loop = model.graph.node[0]
        fn = helper.make_function("loc", "F", ["x"], ["y"], [loop], [helper.make_opsetid("", 17)])
        del model.graph.node[:]
        model.graph.node.append(helper.make_node("F", ["x"], ["y"], domain="loc"))
        model.graph.initializer.append(nh.from_array(np.array(2, np.int64), "trip"))
        fn.input[:] = ["x", "trip"]
        model.graph.node[0].input[:] = ["x", "trip"]
        model.functions.append(fn)
        model.opset_import.append(helper.make_opsetid("loc", 1))
    import_onnx(model)   # (the model as made imports)
    old = b"acc" if where != "op_type" else b"Identity"
    data = model.SerializeToString()
    assert data.count(old) >= 1
    bad = data.replace(old, old[:1] + b"\xff" + old[2:])
    path = tmp_path / "m.onnx"
    path.write_bytes(bad)
    with pytest.raises(GraphError, match="is not valid UTF-8"):
        import_onnx(str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not valid UTF-8" in err and "subgraph" in err
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("after", ["dead", "SequenceAt", "ConcatFromSequence"])
def test_a_split_to_sequence_does_not_leave_a_later_com_microsoft_op_unsized(after):
    """``SplitToSequence`` then ``com.microsoft``'s ``FastGelu`` / ``Gelu``: onnxruntime runs the model, but its symbolic
    shape inference, which sizes the contrib ops, failed on the SplitToSequence (its rule calls
    ``onnx.helper.make_sequence_value_info``, which onnx 1.23 lacks) and its pass ended there, so the contrib op was
    refused as "value 'fg' has no shape"; it is sized as onnxruntime's kernel writes it now."""
    nodes = [helper.make_node("SplitToSequence", ["x"], ["sq"], axis=1)]
    outs, inits = ["fg"], []
    if after == "dead":
        nodes.append(helper.make_node("FastGelu", ["x"], ["fg"], domain="com.microsoft"))
    elif after == "SequenceAt":
        nodes += [helper.make_node("SequenceAt", ["sq", "p"], ["t"]),
                  helper.make_node("Gelu", ["t"], ["fg"], domain="com.microsoft")]
        inits.append(nh.from_array(np.array(-1, np.int64), "p"))
        outs.append("t")
    else:
        nodes += [helper.make_node("ConcatFromSequence", ["sq"], ["t"], axis=0),
                  helper.make_node("FastGelu", ["t"], ["fg"], domain="com.microsoft")]
        outs.append("t")
    model = _model(nodes, [V("x", T.FLOAT, [2, 6])], outs, inits, domains=[("com.microsoft", 1)])
    real = ort_shapes(model, {"x": np.ones((2, 6), np.float32)})
    g = import_onnx(model)
    for name, shape in real.items():
        assert g.tensor(name).size == 4 * int(np.prod(shape)), name
    memplan.verify(g, memplan.plan(g))


@pytest.mark.parametrize("attrs, says", [
    ({"epsilon": 1e-5, "eps": 1e-5}, "has an attribute 'eps', which onnxruntime's SkipLayerNormalization does not have"),
    ({"epsilon": 1}, "its attribute 'epsilon' is of type INT, where onnxruntime's SkipLayerNormalization takes FLOAT"),
])
def test_an_attribute_onnxruntimes_schema_of_its_own_op_refuses_is_refused(tmp_path, capsys, attrs, says):
    """A ``com.microsoft`` node with an attribute its onnxruntime schema lacks (a misspelt ``eps``) or of another type
    (``epsilon=1``, an INT) was planned, read as absent by memplan's rule, while onnxruntime's checker refuses the model
    ("Unrecognized attribute: eps for operator SkipLayerNormalization", "Mismatched attribute type"); it is refused
    naming the node and the attribute, and the model as written imports."""
    def model(a):
        node = helper.make_node("SkipLayerNormalization", ["x", "s", "g"], ["y"], name="sln", domain="com.microsoft", **a)
        return _model([node], [V("x", T.FLOAT, [2, 3, 8]), V("s", T.FLOAT, [2, 3, 8])], ["y"],
                      [nh.from_array(np.ones(8, np.float32), "g")], domains=[("com.microsoft", 1)])
    good = model({"epsilon": 1e-5})
    real = ort_shapes(good, {"x": np.ones((2, 3, 8), np.float32), "s": np.ones((2, 3, 8), np.float32)})
    assert import_onnx(good).tensor("y").size == 4 * int(np.prod(real["y"]))
    bad = model(attrs)
    with pytest.raises(Exception, match="Unrecognized attribute|Mismatched attribute type|attribute"):
        ort_shapes(bad, {"x": np.ones((2, 3, 8), np.float32), "s": np.ones((2, 3, 8), np.float32)})
    with pytest.raises(GraphError, match=r"node 'sln' \(com.microsoft:SkipLayerNormalization\): .*" + says):
        import_onnx(bad)
    path = tmp_path / "m.onnx"
    path.write_bytes(bad.SerializeToString())
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_a_global_pool_of_a_rank_2_input_is_refused_as_onnxruntime_refuses_it(op):
    """A global pool of ``[N, C]`` (no spatial axis): ONNX's inference gives it ``[N, C]`` and it was planned, but
    onnxruntime's kernels refuse to run it ("Input dimension cannot be less than 3"); refused naming the node. Of
    ``[N, C, L]`` it is planned as onnxruntime writes it."""
    bad = _model([helper.make_node(op, ["x"], ["y"], name="gp")], [V("x", T.FLOAT, [2, 3])], ["y"], opset=13)
    with pytest.raises(Exception, match="Input dimension cannot be less than 3"):
        ort_shapes(bad, {"x": np.ones((2, 3), np.float32)})
    with pytest.raises(GraphError, match=r"node 'gp' \(" + op + r"\): its input 'x' is of rank 2 \(\[2, 3\]\)"):
        import_onnx(bad)
    good = _model([helper.make_node(op, ["x"], ["y"], name="gp")], [V("x", T.FLOAT, [2, 3, 5])], ["y"], opset=13)
    assert ort_shapes(good, {"x": np.ones((2, 3, 5), np.float32)})["y"] == (2, 3, 1)
    assert import_onnx(good).tensor("y").size == 24


@pytest.mark.parametrize("cond", [True, False])
@pytest.mark.parametrize("fed", [True, False])
def test_a_branch_making_its_ifs_own_output_name_is_planned_as_onnxruntime_runs_it(fed, cond):
    """Both branches of an If make ``y``, the If's own output (a converter naming the branch's result as the node's),
    and the then-branch a ``later`` that a node after the If makes too: onnxruntime runs the model (a subgraph's scope
    is what the graph defines before its node), but it was refused as making "a name the graph around it has too
    ... onnxruntime refuses the model"; it is planned now, every size as onnxruntime writes it. A branch making a name
    defined before the If (``n``) is still refused, as onnxruntime refuses it."""
    tb = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["later"], axis=0),
                            helper.make_node("Relu", ["later"], ["y"])], "t", [], [V("y", T.FLOAT, None)])
    eb = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["t"], axis=0),
                            helper.make_node("Neg", ["t"], ["y"])], "e", [], [V("y", T.FLOAT, None)])
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=tb, else_branch=eb),
             helper.make_node("Abs", ["y"], ["later"])]
    inputs, inits, feeds = [V("x", T.FLOAT, [2, 3])], [], {"x": np.ones((2, 3), np.float32)}
    if fed:
        inputs.append(V("c", T.BOOL, []))
        feeds["c"] = np.array(cond)
    else:
        inits.append(nh.from_array(np.array(cond), "c"))
    model = _model(nodes, inputs, ["later"], inits, opset=13)
    real = ort_shapes(model, feeds)
    g = import_onnx(model)
    assert g.tensor("later").size == 4 * int(np.prod(real["later"])) == 48
    assert g.tensor("y").size == 48
    memplan.verify(g, memplan.plan(g))
    then = next(a.g for a in model.graph.node[0].attribute if a.name == "then_branch")
    then.node[0].output[0] = then.node[1].input[0] = "n"   # (a name the graph defines before the If)
    model.graph.node.insert(0, helper.make_node("Abs", ["x"], ["n"]))
    model.graph.output.append(helper.make_empty_tensor_value_info("n"))
    with pytest.raises(Exception, match="SSA"):
        ort_shapes(model, feeds)
    with pytest.raises(GraphError, match=r"its then_branch makes 'n', a name the graph around it has too"):
        import_onnx(model)


@pytest.mark.parametrize("a, b, equation", [
    ([2, 1, 3], [4, 3, 5], "...ij,...jk->...ik"),
    ([2, 3, 1, 3], [3, 2, 3, 5], "...ij,...jk->...ik"),
    ([2, 3], [3, 3], "...,...->..."),
])
def test_an_einsum_whose_ellipses_do_not_broadcast_is_refused(a, b, equation):
    """The dimensions two ellipses stand for (``[2]`` and ``[4]``, ``[2, 3]`` and ``[3, 2]``) that do not broadcast:
    ONNX's inference takes the first input's and the Einsum was planned, though onnxruntime refuses to run it ("The
    broadcasted dimensions of the inputs are incompatible"); refused naming the node and both inputs. Ellipses that do
    broadcast (``[1]`` and ``[4]``) are planned as onnxruntime writes them."""
    def model(sa, sb):
        return _model([helper.make_node("Einsum", ["a", "b"], ["y"], name="es", equation=equation)],
                      [V("a", T.FLOAT, sa), V("b", T.FLOAT, sb)], ["y"], opset=13)
    bad = model(a, b)
    with pytest.raises(Exception, match="broadcast"):
        ort_shapes(bad, {"a": np.ones(a, np.float32), "b": np.ones(b, np.float32)})
    with pytest.raises(GraphError, match=r"node 'es' \(Einsum\): its ellipsis stands for .* in 'a' and .* in 'b', "
                                         "which do not broadcast"):
        import_onnx(bad)
    a1 = [1 if k < len(a) - 2 else d for k, d in enumerate(a)] if equation != "...,...->..." else [1] * len(a)
    good = model(a1, b)
    real = ort_shapes(good, {"a": np.ones(a1, np.float32), "b": np.ones(b, np.float32)})
    assert import_onnx(good).tensor("y").size == 4 * int(np.prod(real["y"]))
