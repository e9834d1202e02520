"""Round 74 review (review74): round 74's merged changes attacked with variants of their own inputs.

* com.microsoft ``RotaryEmbedding``'s new check (``check_ms_rotary_caches``) returned at once for an input of a rank
  other than 3 or 4, and checked ``rotary_embedding_dim`` without ``num_heads`` only where every shape was static
  and the caches 2-D: a 2-D or 5-D input was planned (the symbolic inference sizes the output as the input) though
  onnxruntime refuses to run it ("Input 'x' is expected to have 3 or 4 dimensions"), and so was the attribute pair
  its kernel's constructor refuses whatever the shapes.
* ``runtime.aten``'s settings proof told a NaN from a -NaN among a node's float arguments (``callform._nan_signs``)
  but not among a complex one's parts (``repr`` writes ``(nan+1j)`` for both): a complex model's ``x * cfg.a``,
  ``cfg.a`` changed from ``complex(nan, 1)`` to ``complex(-nan, 1)`` after compile, was proven the same program and
  returned NaNs of the export's sign where eager's were negative.
* ``memplan.importers.torch``'s own ``from_torch`` / ``trace_torch`` (the runtime's export entry; docs/aten.md names
  it) called with an option by position or without the module raised Python's bare TypeError, where round 74 made
  ``memplan.from_torch`` name it with the ``OptionError`` README promises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import memplan
from memplan.errors import GraphError


def _ms_rope(x, cache, **attrs):
    """A com.microsoft RotaryEmbedding model of input ``x`` (a shape), position_ids ``[1, 1]`` and both caches
    ``cache``."""
    from onnx import TensorProto as T
    from onnx import helper

    V = helper.make_tensor_value_info
    ins = [V("x", T.FLOAT, x), V("ids", T.INT64, [1, 1]), V("cos", T.FLOAT, cache), V("sin", T.FLOAT, cache)]
    node = helper.make_node("RotaryEmbedding", [v.name for v in ins], ["y"], name="rope", domain="com.microsoft",
                            **attrs)
    g = helper.make_graph([node], "g", ins, [V("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=10)


def _ort_refuses(model) -> bool:
    """Whether onnxruntime (when installed) refuses to load or run ``model`` on zeros; True without it."""
    try:
        import onnxruntime as ort
    except ImportError:
        return True
    so = ort.SessionOptions()
    so.log_severity_level = 4
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = np.zeros(shape, np.int64 if vi.name == "ids" else np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
    except Exception:  # noqa: BLE001 - onnxruntime's refusal is the point
        return True
    return False


@pytest.mark.parametrize("x", [[1, 16], [1, 2, 1, 1, 16]])
def test_ms_rotary_embedding_of_an_input_not_3d_or_4d_is_refused(x):
    pytest.importorskip("onnx")
    from memplan.importers.onnx import import_onnx

    model = _ms_rope(x, [1, 8])
    assert _ort_refuses(model)
    with pytest.raises(GraphError, match=rf"node 'rope' \(RotaryEmbedding\): its input 'x' is \[[0-9, ]+\], of rank "
                                         rf"{len(x)}, not 3-D .*onnxruntime refuses to run it"):
        import_onnx(model)


def test_ms_rotary_embedding_dim_without_num_heads_is_refused_whatever_the_shapes():
    """A 5-D input (the check returned before reading the attributes) and a 3-D one of 3-D caches (refused, but as
    caches not 2-D where the attributes alone already settle it)."""
    pytest.importorskip("onnx")
    from memplan.importers.onnx import import_onnx

    for x, cache in (([1, 2, 1, 1, 16], [1, 8]), ([1, 1, 16], [1, 1, 8])):
        model = _ms_rope(x, cache, rotary_embedding_dim=8)
        assert _ort_refuses(model)
        with pytest.raises(GraphError, match=r"its rotary_embedding_dim is 8 and it has no num_heads"):
            import_onnx(model)


def test_ms_rotary_embedding_valid_3d_and_4d_inputs_still_plan():
    pytest.importorskip("onnx")
    from memplan.importers.onnx import import_onnx

    for x, attrs in (([1, 1, 16], {}), ([1, 2, 1, 16], {}), ([1, 1, 32], {"num_heads": 2, "rotary_embedding_dim": 16})):
        g = import_onnx(_ms_rope(x, [1, 8], **attrs))
        assert g.tensor("y").size == 4 * int(np.prod(x))
        memplan.verify(g, memplan.plan(g))


# --- runtime.aten: the sign of a complex NaN among a node's arguments --------------------------------------------------


def test_nan_signs_read_each_part_of_a_complex_argument():
    from runtime.aten.callform import _nan_signs

    nan = float("nan")
    assert _nan_signs((complex(nan, 1.0),)) != _nan_signs((complex(-nan, 1.0),))
    assert _nan_signs([{"k": complex(1.0, -nan)}]) == (True,)
    assert _nan_signs((complex(1.0, 2.0), 3.0, "nan")) == ()


class _Cfg:
    def __init__(self, a: complex) -> None:
        self.a = a


def test_a_complex_setting_changed_to_minus_nan_is_not_taken_as_the_same_program():
    torch = pytest.importorskip("torch")
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = _Cfg(complex(float("nan"), 1.0))

        def forward(self, x):
            return x * self.cfg.a

    m, x = Scaled(), torch.ones(2, dtype=torch.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = compile(m, (x,), streams=1, cuda_graph=False, poison=True, device="cpu")
    m.cfg.a = complex(-float("nan"), 1.0)
    with torch.no_grad():
        want = torch.view_as_real(m(x))
    assert want.signbit().all()
    try:
        got = torch.view_as_real(step(x))
    except AtenExecutorError:
        return   # (refused naming the setting: eager's NaNs are not the program's)
    assert torch.equal(got.signbit(), want.signbit())


# --- memplan.importers.torch's entry points: a call that does not bind -------------------------------------------------


def test_torch_importers_own_entry_points_name_a_call_that_does_not_bind():
    torch = pytest.importorskip("torch")
    import inspect

    from memplan.errors import OptionError
    from memplan.importers.torch import from_torch, trace_torch

    m, x = torch.nn.Linear(2, 2), torch.ones(1, 2)
    for f in (from_torch, trace_torch):
        name = f.__name__
        with pytest.raises(OptionError, match=rf"{name}\(\) takes at most 2 \(module, example_inputs\) positional "
                                              r"arguments, not 3: None .*options: kwargs, name"):
            f(m, (x,), None)
        with pytest.raises(OptionError, match=rf"{name}\(\) needs argument 'module'"):
            f()
        assert "alignment" in inspect.signature(f).parameters   # (help still shows its own signature)
