"""Round 76 (aten76): compiled modules on dtypes, layouts and ops at their edges, bitwise against eager (CPU)."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from aten_changes import compile_cpu as _compile  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


def _bits(t):
    """``t``'s bytes in its logical order (NaN payloads and -0.0 included), with its dtype and shape."""
    return t.dtype, tuple(t.shape), bytes(t.contiguous().view(-1).view(torch.uint8).numpy())


class _Linear1d(nn.Module):
    def __init__(self, dtype, bias_shape):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(5, 7, generator=g).to(dtype), requires_grad=False)
        self.b = nn.Parameter(torch.randn(bias_shape, generator=g).to(dtype), requires_grad=False)

    def forward(self, x):
        return F.linear(x, self.w, self.b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("bias_shape", [(5,), (1, 5)])
def test_linear_of_a_vector_with_a_bias_is_eagers_addmm(dtype, bias_shape):
    """``F.linear`` of a 1-D input with a bias: eager (torch >= 2.10) runs ``addmm`` of the vector as one row, the
    bias fused; the lowering ran ``mm`` then ``add_``, an ulp off eager's in f16/bf16 (``[2.6953, ..., -7.8047]`` for
    eager's ``[2.6973, ..., -7.8008]``)."""
    m = _Linear1d(dtype, bias_shape)
    x = torch.randn(7, generator=torch.Generator().manual_seed(1)).to(dtype)
    step = _compile(m, x)
    for seed in (1, 2, 3):
        x = torch.randn(7, generator=torch.Generator().manual_seed(seed)).to(dtype)
        assert _bits(step(x)) == _bits(m(x))


class _BatchNormMixed(nn.Module):
    """A half / bfloat16 network whose eval BatchNorm kept f32 statistics and affine parameters (``bn.float()``,
    AMP-style), which eager's CPU kernel takes as a mixed-type batch norm."""

    def __init__(self, dims):
        super().__init__()
        self.bn = (nn.BatchNorm2d if dims == 4 else nn.BatchNorm1d)(3)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.randn(3, generator=g))
            self.bn.running_var.copy_(torch.rand(3, generator=g) + 0.5)
            self.bn.weight.copy_(torch.randn(3, generator=g))
            self.bn.bias.copy_(torch.randn(3, generator=g))
        self.eval()

    def forward(self, x):
        return self.bn(x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape, channels_last", [((2, 3, 4, 4), False), ((2, 3, 4, 4), True), ((2, 3), False)])
def test_eval_batch_norm_of_a_half_input_with_f32_statistics_runs_as_eager(dtype, shape, channels_last):
    """Eager's CPU batch norm of an f16/bf16 input with f32 running statistics keeps its saved statistics in f32;
    the lowering made them in the input's dtype and every call failed "expected scalar type Float but found
    Half" (naming the node, but eager runs it)."""
    m = _BatchNormMixed(len(shape))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    step = _compile(m, x)
    assert _bits(step(x)) == _bits(m(x))


def test_linear_of_a_vector_with_a_matrix_bias_fails_as_eager():
    """``F.linear`` of a 1-D input with a ``[3, N]`` bias: eager's ``add_`` of the bias into its ``[N]`` result
    raises; the export's fake kernel broadcasts it to ``[3, N]``, and the lowering resized its planned view and
    returned that where eager raises. Now the call fails as eager's, naming the node."""
    from runtime.aten.errors import AtenExecutorError

    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(5, 7, generator=g), torch.randn(3, 5, generator=g)

    class M(nn.Module):
        def forward(self, x):
            return F.linear(x, w, b)

    x = torch.randn(7, generator=g)
    with pytest.raises(RuntimeError):
        M()(x)
    step = _compile(M(), x)
    with pytest.raises(AtenExecutorError, match=r"node 'linear'.*broadcast shape"):
        step(x)


def test_relu_of_a_bool_tensor_fails_with_eagers_message():
    """``torch.relu`` of a bool tensor: eager refuses it ("Boolean inputs not supported for relu"); the lowering ran
    ``clamp_min.out``, whose error ("Found dtype Bool but expected Long") pointed at neither relu nor bool inputs."""
    from runtime.aten.errors import AtenExecutorError

    class M(nn.Module):
        def forward(self, x):
            return torch.relu(x)

    x = torch.tensor([True, False])
    with pytest.raises(RuntimeError, match="Boolean inputs not supported for relu"):
        M()(x)
    step = _compile(M(), x)
    with pytest.raises(AtenExecutorError, match=r"node 'relu'.*Boolean inputs not supported for relu"):
        step(x)


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_full_max_or_min_of_an_empty_tensor_fails_as_eager(reduce, dtype):
    """``x.max()`` / ``x.min()`` of a tensor of no elements: eager raises ("Expected reduction dim to be specified
    for input.numel() == 0"); the program ran ``max.unary_out``, which returns its identity, and the call returned
    -inf (int64's lowest) where eager raises."""
    from runtime.aten.errors import AtenExecutorError

    class M(nn.Module):
        def forward(self, x):
            return getattr(x, reduce)()

    x = torch.ones(0, 3, dtype=dtype)
    with pytest.raises(RuntimeError, match="numel\\(\\) == 0"):
        M()(x)
    step = _compile(M(), x)
    with pytest.raises(AtenExecutorError, match=rf"node '{reduce}.*numel\(\) == 0"):
        step(x)
    y = torch.tensor([[3, -1, 2]], dtype=dtype)   # (and one with elements, as before)
    assert _bits(_compile(M(), y)(y)) == _bits(M()(y))


class _FunctionalizedMixedBatchNorm(nn.Module):
    """A half network with an f32 BatchNorm whose ``no_grad`` block writes a buffer: compile lowers such a program by
    ``run_decompositions`` (a functionalized one), where the batch norm is ``_native_batch_norm_legit_*``."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(5)
        self.register_buffer("ema", torch.zeros(5, dtype=torch.float16))

    def forward(self, x):
        z = self.bn(x)
        with torch.no_grad():
            self.ema.mul_(0.5).add_(x[0])
        return z, self.ema.clone()


@pytest.mark.parametrize("train", [False, True])
def test_a_functionalized_mixed_type_batch_norm_runs_as_eager(train):
    """``_native_batch_norm_legit_no_training`` / ``_functional`` of an f16 input with f32 statistics: the CPU kernel
    makes its saved statistics in f32, the export's fake kernel said f16, and every call failed naming the node
    ("Expected out tensor to have dtype float, but got c10::Half"; in training "the op's fake implementation
    disagrees with its kernel") where eager runs it: outputs, running statistics and the buffer now equal eager's."""
    eager, compiled = _FunctionalizedMixedBatchNorm(), _FunctionalizedMixedBatchNorm()
    eager.train(train)
    compiled.train(train)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, generator=g).half()
    step = _compile(compiled, x)
    compiled.load_state_dict(eager.state_dict())
    for _ in range(2):
        x = torch.randn(3, 5, generator=g).half()
        want, got = eager(x), step(x)
        assert [_bits(t) for t in got] == [_bits(t) for t in want]
        for k, v in eager.state_dict().items():
            assert _bits(compiled.state_dict()[k]) == _bits(v), k
