"""Round 75 (models75): PyTorch models of families and forms no sweep list had run through ``runtime.aten`` and the torch
importer, and what broke.

An eager-mode quantized model (``torch.ao.quantization.quantize_dynamic``, or ``prepare`` + ``convert``: torchvision's
``quantization.*(quantize=True)``) holds its weights as TorchScript packed-parameter objects, which torch.export cannot
trace: both ``memplan.from_torch`` and ``runtime.aten.compile`` refused it with torch's internals ("__torch__.torch.
classes.quantized.LinearPackedParamsBase (of Python compilation unit at: 0) does not have a field with name
'__obj_flatten__'"), naming neither the quantized submodule nor a way out.
"""

from __future__ import annotations

import warnings

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _dynamic_quantized() -> nn.Module:
    torch.manual_seed(0)
    float_model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with warnings.catch_warnings():   # (torch's note that eager-mode quantization moved to torchao)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(float_model, {nn.Linear}, dtype=torch.qint8)


class _Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.body(self.quant(x)))


def _static_quantized() -> nn.Module:
    torch.manual_seed(0)
    m = _Convs().eval()
    m.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.ao.quantization.prepare(m, inplace=True)
        m(torch.randn(1, 3, 8, 8))
        torch.ao.quantization.convert(m, inplace=True)
    return m


def test_a_dynamic_quantized_model_is_refused_naming_its_packed_weights() -> None:
    """Failed before: "torch.export failed for Sequential: __torch__.torch.classes.quantized.LinearPackedParamsBase (of
    Python compilation unit at: 0) does not have a field with name '__obj_flatten__'"."""
    m = _dynamic_quantized()
    x = torch.randn(3, 8)
    for build in (lambda: memplan.from_torch(m, (x,)), lambda: compile(m, (x,), streams=1)):
        with pytest.raises(GraphError) as info:
            build()
        text = str(info.value)
        assert "Sequential.0" in text and "DynamicQuantizedLinear" in text, text
        assert "quantize_dynamic" in text and "float model" in text, text
        assert "__obj_flatten__" not in text, text


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


@pytest.mark.parametrize("root", [False, True])
def test_a_dynamic_quantized_lstm_or_linear_is_named_as_the_quantized_module(root: bool) -> None:
    """The object's holder is a helper of the quantized module (a dynamic LSTM's ``_all_weight_values.0``): the
    refusal names the quantized module, the model's root where it is one itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if root:
            m = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear})[0]
            want, x = "for Linear: Linear (DynamicQuantizedLinear) holds", torch.randn(3, 8)
        else:
            m = torch.ao.quantization.quantize_dynamic(_Recurrent().eval(), {nn.LSTM})
            want, x = "_Recurrent.rnn (DynamicQuantizedLSTM) holds", torch.randn(1, 3, 8)
    with pytest.raises(GraphError, match=want.replace("(", r"\(").replace(")", r"\)")):
        memplan.from_torch(m, (x,))


def test_a_converted_static_quantized_model_is_refused_naming_its_packed_weights() -> None:
    """Failed before as above, with ``Conv2dPackedParamsBase``: a converted ``QuantizedConv2d`` holds its packed
    weights itself (no ``_packed_params`` submodule)."""
    m = _static_quantized()
    with pytest.raises(GraphError) as info:
        memplan.from_torch(m, (torch.randn(1, 3, 8, 8),))
    text = str(info.value)
    assert "_Convs.body.0" in text and "QuantizedConv2d" in text, text
    assert "__obj_flatten__" not in text, text


class _Block(nn.Module):
    """A torchvision ResNet block's form: the model's own line calls each BatchNorm (``out = self.bn2(out)``)."""

    def __init__(self, momentum: float | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.bn2 = nn.BatchNorm2d(4, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv(x))
        out = self.bn2(out)
        return out.relu()


def test_a_cumulative_batchnorm_in_train_mode_is_refused_naming_its_own_buffer() -> None:
    """``BatchNorm2d(momentum=None)`` in train mode averages over ``float(self.num_batches_tracked)``, a Python number
    torch.export cannot trace. Failed before: called from the model's own line (a ResNet's ``out = self.bn2(out)``),
    the refusal was torch's "Could not extract specialized integer from data-dependent expression u0" with generic
    advice, naming no buffer; called from ``nn.Sequential`` it named every BatchNorm's ``num_batches_tracked``, not
    the one read."""
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(AtenExecutorError) as info:
        compile(_Block(None).train(), (x,), streams=1)
    text = str(info.value)
    assert "the buffer _Block.bn2.num_batches_tracked at batchnorm.py:" in text, text
    assert "bn1.num_batches_tracked" not in text and "BatchNorm2d(momentum=None)" in text, text
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4, momentum=None)).train()
    with pytest.raises(AtenExecutorError) as info:
        compile(seq, (x,), streams=1)
    text = str(info.value)
    assert "the buffer Sequential.2.num_batches_tracked at" in text and "Sequential.1." not in text, text
    compile(_Block(0.1).train(), (x,), streams=1)   # (a momentum: no Python number of the buffer, compiled)


def _positive(t: torch.Tensor) -> torch.Tensor:
    if t.sum() > 0:   # (a branch on the input's values, not on a parameter's)
        return t
    return -t


class _Gate(nn.Module):
    """A learnable threshold read as a Python bool, by a method whose first argument is not called ``self``."""

    def __init__(s, on_input: bool) -> None:
        super().__init__()
        s.gate = nn.Parameter(torch.tensor(0.5))
        s.on_input = on_input

    def forward(s, x: torch.Tensor) -> torch.Tensor:
        if s.on_input:
            return _positive(x * s.gate)
        if s.gate > 0:
            return x * 2
        return x


class _Gated(nn.Module):
    def __init__(self, on_input: bool) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.gated = _Gate(on_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gated(self.lin(x))


def test_a_parameter_read_as_a_python_bool_is_named() -> None:
    """Failed before: "torch.export failed for _Gated: Could not guard on data-dependent expression ...", naming no
    parameter (a buffer or a plain tensor so read was named). A branch on the input's values, on a line that also names
    a parameter (``_positive(x * s.gate)``), names no parameter: torch's refusal stands."""
    x = torch.randn(2, 4)
    with pytest.raises(AtenExecutorError, match=r"the parameter _Gated\.gated\.gate at test_models75_round75\.py:"):
        compile(_Gated(False).eval(), (x,), streams=1)
    with pytest.raises(GraphError) as info:
        compile(_Gated(True).eval(), (x,), streams=1)
    assert "the parameter _Gated" not in str(info.value), str(info.value)


def test_round_75s_sweep_models_are_listed_once() -> None:
    """``runtime.aten.sweep_models75``'s entries are sweep cases, each name once (``--only`` picks by name)."""
    from collections import Counter

    from runtime.aten import sweep
    from runtime.aten.sweep_models75 import MODELS75

    counts = Counter(c.name for c in sweep.CASES)
    assert [name for name, _, _ in MODELS75 if counts[name] != 1] == []

