"""Round 75 (review75): a hostile review of round 75's merged changes, each defect with a test that fails without
its fix.

- grad75's refusal of writes eager's autograd refuses under grad mode followed the caller's inputs alone: a module
  compiled under ``no_grad`` (its export then traces the write) whose ``forward`` writes ``out=`` of a value computed
  from a parameter, or in place into a view of ``(self.w * 2).unbind(0)``, ran silently when called under grad mode,
  where eager raises for the parameter's flag whatever the inputs' (``executor._weights_reaching_writes``).
"""

from __future__ import annotations

import functools

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class WeightWrites(nn.Module):
    """Writes eager's autograd refuses under grad mode for the parameter ``w``'s flag alone."""

    def __init__(self, which: str) -> None:
        super().__init__()
        self.which = which
        self.w = nn.Parameter(torch.randn(2, 3))

    def forward(self, x):
        if self.which == "out":
            t = torch.empty(2, 3)
            torch.mul(self.w * 2, 1, out=t)
            return t + x
        a, b = (self.w * 2).unbind(0)
        a.add_(x[0])
        return a + b


@pytest.mark.parametrize("which,message", [
    ("out", "functions with out=... arguments don't support automatic differentiation"),
    ("unbind", "is a view and is being modified inplace")])
def test_writes_eager_refuses_for_a_parameter_that_requires_grad_are_refused_under_grad_mode(which, message):
    torch.manual_seed(0)
    m = WeightWrites(which)
    x = torch.randn(2, 3)
    with torch.no_grad():
        step = compile(m, (x,))
        assert torch.equal(step(x), m(x))
    with pytest.raises(RuntimeError, match=message):
        m(x)
    for _ in range(2):   # (the verdict cached)
        with pytest.raises(AtenExecutorError, match=r"weight 'p_w' \(the module's parameter 'w'\) requires grad.*"
                                                    + message.replace("(", r"\(").replace(")", r"\)")
                                                    .replace(".", r"\.")):
            step(x)
    with torch.inference_mode():
        assert torch.equal(step(x), m(x))
    m.w.requires_grad_(False)
    step = compile(m, (x,))
    assert torch.equal(step(x), m(x))   # (no flag: eager runs it, and so does the program)


class InPlaceOnFresh(nn.Module):
    """In-place writes to fresh results (``ReLU(inplace=True)`` of a conv's, of an eval BatchNorm's, ``add_`` of a
    product's), which eager's autograd never refuses, and one to a multi-output view, which it does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3).eval()

    def forward(self, x):
        y = torch.relu_(self.bn(torch.relu_(self.conv(x))))
        z = (x * 2).add_(1)
        a, _b = (x * 3).unbind(0)
        return y + z, a.add_(1)


def test_in_place_writes_to_fresh_results_need_no_fake_run():
    """Only the write to ``unbind``'s view may be refused: the first grad-mode call of a CNN with in-place ReLUs ran
    its graph on fake tensors to find nothing (every call with an input that requires grad, once per pattern)."""
    from runtime.aten import grad_refusals

    torch.manual_seed(0)
    m = InPlaceOnFresh()
    x = torch.randn(2, 3, 4, 4)
    step = compile(m, (x,))
    graph = step.program.exported.graph
    written = {n.name: n.target for n in graph.nodes if n.op == "call_function"
               and str(n.target).startswith(("aten.relu_", "aten.add_"))}
    assert len(written) == 4, written
    found = grad_refusals.mutating_nodes(torch, step.program)
    assert len(found) == 1 and "add_" in str(written[next(iter(found))]), found
    assert step.executor._weight_writes == ()
    xr = x.clone().requires_grad_(True)
    with pytest.raises(AtenExecutorError, match="is a view and is being modified inplace"):
        step(xr)
    with torch.no_grad():
        assert all(torch.equal(g, w) for g, w in zip(step(xr), m(xr)))


class OwnSide(nn.Module):
    """An eval BatchNorm of bfloat16 on a CPU: its saved statistics cannot take the plan's f32 slots, so the launch
    allocates its own."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3).eval().to(torch.bfloat16)

    def forward(self, x):
        return self.bn(x) * 2


def test_every_tensor_a_launch_writes_outside_the_arena_is_recorded_on_caller_streams():
    from runtime.aten.exact import Scratch

    step = compile(OwnSide(), (torch.randn(1, 3, 4, 4, dtype=torch.bfloat16),), streams=1)
    ex = step.executor

    def ptr(t):
        return t.untyped_storage().data_ptr()

    known = {ptr(t) for t in ex._device_memory() if isinstance(t, torch.Tensor)}
    known |= {ptr(w) for w in ex.program.weights.values() if isinstance(w, torch.Tensor)}
    held = [(name, tuple(a.shape)) for name, launch in ex.launches.items() if isinstance(launch.run, functools.partial)
            for a in (*launch.run.args, *launch.run.keywords.values())
            if isinstance(a, torch.Tensor) and ptr(a) not in known]
    assert ex.stats.scratch_bytes > 0 and held == []
    scratch = Scratch(torch, "cpu")
    small = scratch.take(0, (2,), torch.float32)
    large = scratch.take(0, (8,), torch.float32)   # (replaces the buffer ``small`` is a view of)
    assert {ptr(small), ptr(large)} <= {ptr(t) for t in scratch.tensors()}


def test_a_nested_local_functions_declared_value_is_not_held_against_it():
    """``F`` calls local function ``G`` (a ``Relu``) and declares ``G``'s result int64 [2, 3] in its ``value_info``
    (IR 10): onnxruntime inlines both bodies without their declarations and runs the model; it was refused ("Inferred
    elem type differs from existing elem type")."""
    need("onnx")
    ort = need("onnxruntime")
    import numpy as np
    from onnx import TensorProto as T
    from onnx import helper

    from memplan.importers.onnx import import_onnx

    g_fn = helper.make_function("local", "G", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                                [helper.make_opsetid("", 18)])
    f_fn = helper.make_function("local", "F", ["x"], ["y"],
                                [helper.make_node("G", ["x"], ["g"], domain="local"),
                                 helper.make_node("Concat", ["g", "g"], ["y"], axis=0)],
                                [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)])
    f_fn.value_info.append(helper.make_tensor_value_info("g", T.INT64, [2, 3]))
    graph = helper.make_graph([helper.make_node("F", ["x"], ["y"], domain="local", name="call")], "g",
                              [helper.make_tensor_value_info("x", T.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", T.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)],
                              functions=[g_fn, f_fn], ir_version=10)
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.ones((2, 3), np.float32)})[0].shape == (4, 3)
    g = import_onnx(model)
    assert tuple(g.tensor("y").attrs["shape"]) == (4, 3) and g.tensor("y").size == 48


def _fed_optional_model(else_shape):
    """``opt = If(cond, Optional(x), Optional())`` on a run-time ``cond``; ``y = If(OptionalHasElement(opt),
    Relu(OptionalGetElement(opt)), a constant of ``else_shape``)``."""
    import numpy as np
    from onnx import TensorProto as T
    from onnx import helper

    tt = helper.make_tensor_type_proto(T.FLOAT, [2, 3])
    opt_t = helper.make_optional_type_proto(tt)
    then_g = helper.make_graph([helper.make_node("Optional", ["x"], ["o1"])], "then", [],
                               [helper.make_value_info("o1", opt_t)])
    else_g = helper.make_graph([helper.make_node("Optional", [], ["o2"], type=tt)], "else", [],
                               [helper.make_value_info("o2", opt_t)])
    t2 = helper.make_graph([helper.make_node("OptionalGetElement", ["opt"], ["e"]), helper.make_node("Relu", ["e"], ["a"])],
                           "t2", [], [helper.make_tensor_value_info("a", T.FLOAT, [2, 3])])
    n = int(np.prod(else_shape))
    e2 = helper.make_graph([helper.make_node("Constant", [], ["b"], value=helper.make_tensor("c", T.FLOAT, else_shape,
                                                                                             [0.0] * n))],
                           "e2", [], [helper.make_tensor_value_info("b", T.FLOAT, else_shape)])
    nodes = [helper.make_node("If", ["cond"], ["opt"], then_branch=then_g, else_branch=else_g),
             helper.make_node("OptionalHasElement", ["opt"], ["has"]),
             helper.make_node("If", ["has"], ["y"], then_branch=t2, else_branch=e2)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [2, 3]),
                                       helper.make_tensor_value_info("cond", T.BOOL, [])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def test_whether_a_fed_ifs_optional_holds_a_value_is_not_folded():
    need("onnx")
    ort = need("onnxruntime")
    import numpy as np

    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    model = _fed_optional_model([4, 5])
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    assert [sess.run(None, {"x": np.ones((2, 3), np.float32), "cond": np.array(c)})[0].shape
            for c in (True, False)] == [(2, 3), (4, 5)]
    with pytest.raises(GraphError, match="'If_2'.*two shapes"):   # (was planned 24 bytes: the then branch alone)
        import_onnx(model)
    g = import_onnx(_fed_optional_model([2, 3]))   # (both branches of one shape: both planned)
    assert g.tensor("y").size == 24 and any(n.id.startswith("If_2/select") for n in g.nodes)


@pytest.mark.parametrize("axes", [[-1, 3], [3, 3], [1, -3]])
def test_an_unsqueeze_naming_one_axis_twice_before_opset_11_is_refused(axes):
    need("onnx")
    from onnx import TensorProto as T
    from onnx import helper

    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    g = helper.make_graph([helper.make_node("Unsqueeze", ["x"], ["y"], axes=axes)], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, [3, 4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)], ir_version=5)
    with pytest.raises(GraphError, match=r"Unsqueeze.*name one axis of the 4 dimensions of its output twice"):
        import_onnx(model)
    ok = helper.make_graph([helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, -1])], "g",
                           [helper.make_tensor_value_info("x", T.FLOAT, [3, 4])],
                           [helper.make_tensor_value_info("y", T.FLOAT, None)])
    got = import_onnx(helper.make_model(ok, opset_imports=[helper.make_opsetid("", 10)], ir_version=5))
    assert tuple(got.tensor("y").attrs["shape"]) == (1, 3, 4, 1)
