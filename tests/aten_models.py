"""Tiny models for the ATen executor tests (CPU, CI): an MLP, an Inception-style CNN, and tiny
``transformers`` Llama, Qwen2-MoE (shared expert) and Mixtral configs. Random weights, no downloads."""

from __future__ import annotations

import torch
from torch import nn

from runtime.aten.tiny_cnn import CNN, InceptionBlock  # noqa: F401  (the benchmark's too: one definition)


def twins(cls: type[nn.Module]) -> tuple[nn.Module, nn.Module]:
    """Two instances of ``cls`` with the same weights: one to compile, one to run eagerly beside it (a module
    whose call changes its own state cannot be compared against itself)."""
    m, e = cls(), cls()
    e.load_state_dict(m.state_dict())
    for a, b in zip(m.parameters(), e.parameters()):
        b.data.copy_(a.data)
    return m, e


def same_calls(step, e: nn.Module, n: int = 3, shape: tuple[int, ...] = (4,)) -> None:
    """``n`` calls of the compiled ``step`` and of its eager twin ``e`` on the same random input, bit for bit equal:
    a state the first call fills (a cache, a counter) must be read by the later calls as eager reads it."""
    for _ in range(n):
        x = torch.randn(*shape)
        assert torch.equal(step(x), e(x))


class MLP(nn.Module):
    def __init__(self, d: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, 2 * d), nn.ReLU(inplace=True),
                                 nn.Linear(2 * d, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        y = self.norm(x + self.net(x))
        return y.view(y.shape[0], 2, -1).transpose(1, 2).sum(2)  # views of an arena tensor


class LogitsOnly(nn.Module):
    """A causal LM's logits for ``input_ids`` (no cache): a plain tensor in, a tensor out."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids):
        return self.lm(input_ids=input_ids, use_cache=False).logits


def tiny_lm(kind: str, vocab: int = 128, seed: int = 0) -> nn.Module:
    """A 2-layer, hidden-64 ``transformers`` causal LM of ``kind`` (llama, qwen2_moe, mixtral)."""
    import transformers as tf

    torch.manual_seed(seed)
    common = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  vocab_size=vocab, max_position_embeddings=128)
    if kind == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(intermediate_size=128, **common))
    elif kind == "qwen2_moe":
        model = tf.Qwen2MoeForCausalLM(tf.Qwen2MoeConfig(
            intermediate_size=128, moe_intermediate_size=32, shared_expert_intermediate_size=64, num_experts=4,
            num_experts_per_tok=2, **common))
    elif kind == "mixtral":
        model = tf.MixtralForCausalLM(tf.MixtralConfig(intermediate_size=64, num_local_experts=4,
                                                       num_experts_per_tok=2, **common))
    else:
        raise ValueError(kind)
    return LogitsOnly(model.eval())


class DetachInPlace(nn.Module):
    """``detach_`` on an intermediate (``torch.tensor`` constants get one too): autograd metadata only."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        y = self.lin(x)
        y.detach_()
        return y * 2 + self.lin.weight.detach()


class TensorConstants(nn.Module):
    """Tensors made in ``forward`` (``torch.tensor([...])``, list indexing): export lifts them to
    constants read through ``lift_fresh_copy``, a copy, whose fake tensor shares the constant's storage."""

    def forward(self, x):
        return x[:, [0, 2, 5]] * torch.tensor([1.0, 2.0, 3.0]) + torch.tensor(0.5)


class ScalarConstants(nn.Module):
    """0-dim tensors made in ``forward`` (torchvision's Swin): on a CUDA model they stay on the CPU, where
    eager uses them as scalars; export reads them through ``lift_fresh_copy`` into a CUDA arena slot."""

    def forward(self, x):
        return x * torch.tensor(0.5) + torch.tensor(2.0)


class MetadataInPlace(nn.Module):
    """In-place ops that change only a tensor's shape and strides: ``unsqueeze_``, ``transpose_``, ``t_``
    (this one on a tensor with a live view, so the importer keeps it where it stands)."""

    def forward(self, x):
        y = x * 2
        y.unsqueeze_(0)
        y.transpose_(1, 2)
        z = x + 1
        v = z[1:]
        z.t_()
        return y + 1, z * 3, v * 2


class ParamMatmul(nn.Module):
    """A parameter used directly in ``matmul`` (Mamba's ``dt_proj.weight @ x``): eager folds the product
    to one ``mm`` because the parameter requires grad (matmul's ``should_fold``, even under no_grad);
    with ``.data`` weights or ``matmul.out`` it runs ``bmm``, and the rounding differs."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 20)
        self.w = nn.Parameter(torch.randn(128, 4))
        self.v = nn.Parameter(torch.randn(4, 24))

    def forward(self, x):  # x: (1, 8, 16)
        h = self.proj(x)
        a = self.w @ h[..., :4].transpose(1, 2)       # 2D parameter @ 3D non-contiguous view
        b = h[..., 4:8].transpose(0, 1) @ self.v       # 3D non-contiguous view @ 2D parameter
        return a.sum(1, keepdim=True).transpose(1, 2) + b.sum(0)


class SizeOneStrides(nn.Module):
    """SegFormer's sequence reduction: tokens permuted and reshaped to an image, then a strided conv. The
    export's fake ``reshape`` gives the size-1 batch dimension another stride than the real op (1024 vs 16),
    and the CPU convolution picks its memory format from those strides (channels-last vs contiguous)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.sr = nn.Conv2d(16, 16, 2, 2)

    def forward(self, x):  # x: (1, 64, 16)
        h = self.proj(x)
        return self.sr(h.permute(0, 2, 1).reshape(1, 16, 8, 8))


class StridesChain(nn.Module):
    """DPT's reassemble stage: tokens permuted and reshaped to an image, then two convolutions. The fake
    ``reshape``'s size-1 stride (512, real 32) makes the export's first convolution channels-last, where
    the real one is contiguous; the second then ran channels-last on the executor's input (other
    rounding), unless the first result takes torch's real layout too."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32, 32)
        self.a = nn.Conv2d(32, 16, 1)
        self.b = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):  # x: (1, 16, 32)
        y = self.a(self.proj(x).permute(0, 2, 1).reshape(1, 32, 4, 4))
        return self.b(torch.relu_(y + 1)).flatten(2)


class StridesChainInPlace(StridesChain):
    """``StridesChain``'s first convolution takes torch's layout (contiguous, the plan's is channels-last);
    an in-place op on a slice of it (a tensor with live views: the importer makes its result a view of the
    slice, in the export's layout) then feeds a convolution, which must read the slice as torch laid it out."""

    def forward(self, x):  # x: (1, 16, 32)
        y = self.a(self.proj(x).permute(0, 2, 1).reshape(1, 32, 4, 4))
        s = y[:, :16]
        s.add_(1)
        return self.b(s) + self.b(y[:, :16] * 2)


class StridesChainMetadata(StridesChain):
    """An in-place metadata op (``unsqueeze_``) on ``StridesChain``'s first convolution, which took torch's
    layout and has a live view: its result is torch's view of that layout, not the export's."""

    def forward(self, x):  # x: (1, 16, 32)
        y = self.a(self.proj(x).permute(0, 2, 1).reshape(1, 32, 4, 4))
        s = y[:, :8]
        y.unsqueeze_(0)
        return y.sum(2) * s.mean(1, keepdim=True)


class VideoPool(nn.Module):
    """A video classifier's head (torchvision's mc3/r3d): ``AdaptiveAvgPool3d(1)``, which torch runs as a
    ``mean`` over time, height and width (its ``out=`` overload runs the pooling kernel: other rounding)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 64, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):  # x: (1, 3, 8, 4, 4)
        return self.fc(torch.flatten(self.pool(self.conv(x).relu()), 1))


class StridesChainFlat(nn.Module):
    """``StridesChain``'s start, then NCHW -> NHWC and W, C merged (a common flatten): a view on the plan's
    channels-last layout, a copy on torch's contiguous one, so with the result in torch's layout the
    ``reshape`` has no planned place. The executor then keeps the plan's layouts (as before session 16)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32, 32)
        self.a = nn.Conv2d(32, 16, 1)
        self.lin = nn.Linear(64, 8)

    def forward(self, x):  # x: (1, 16, 32)
        y = self.a(self.proj(x).permute(0, 2, 1).reshape(1, 32, 4, 4))
        return self.lin(y.permute(0, 2, 3, 1).reshape(1, 4, 64))


class WritesItsInputs(nn.Module):
    """In-place writes into user inputs, as eager makes them: ``add_`` on one, an item assignment into a
    row of another (then read again), ``copy_`` into a third; ``b`` is only read."""

    def forward(self, x, y, z, b):
        x.add_(1)
        y[0] = 5.0
        s = y.sum(0) * b
        z.copy_(b * 2)
        return x * 2, s, z + 1


class ChannelsLastGroupNorm(nn.Module):
    """HF BiT with channels-last inputs: torch 2.14's CPU ``group_norm`` and ``roll`` keep a channels-last
    input's format, their fake kernels return contiguous results, so the plan laid those results out
    contiguous; the convolution after them (contiguous weights) then ran on a contiguous input where
    eager's ran channels-last (other rounding, ~1e-6) unless those results take the real kernels' layout."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 32, 3, padding=1)
        self.gn = nn.GroupNorm(4, 32)
        self.b = nn.Conv2d(32, 32, 3, padding=1)
        self.c = nn.Conv2d(32, 16, 3, padding=1)

    def forward(self, x):  # x: channels-last (2, 8, 12, 12)
        y = self.b(self.gn(self.a(x)).relu())
        return self.c(torch.roll(y, 1, 2))


class TransposedBatchNorm(nn.Module):
    """A speech model's (batch, time, channels) activations transposed into an eval ``BatchNorm1d``: its CPU
    kernel returns a contiguous result where its fake kernel keeps the transposed order, so the plan laid it
    out transposed, and the sum over time after it added in another order than eager's (~1e-4)."""

    def __init__(self):
        super().__init__()
        self.lin, self.wide = nn.Linear(16, 32), nn.Linear(16, 48)
        self.bn, self.bn2 = nn.BatchNorm1d(32), nn.BatchNorm1d(32)
        with torch.no_grad():
            for bn in (self.bn, self.bn2):
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):  # x: (2, 301, 16); the second one reads a slice of a transpose (not dense)
        a = self.bn(self.lin(x).transpose(1, 2)).sum(-1)
        return torch.cat((a, self.bn2(self.wide(x).transpose(1, 2)[:, 8:40]).sum(-1)), 1)


class ComplexRotary(nn.Module):
    """DeepSeek-V2's rotary embedding: a complex view of a query laid out as torch lays it (its size-1 batch
    stride adopted); making a fake tensor of it fails in torch's fake mode, which logged a traceback per node."""

    def __init__(self):
        super().__init__()
        self.q = nn.Linear(32, 32)
        self.register_buffer("freqs", torch.polar(torch.ones(6, 4), torch.randn(6, 4)))

    def forward(self, x):  # x: (1, 6, 32)
        q = self.q(x).view(1, 6, 4, 8).transpose(1, 2)
        qc = torch.view_as_complex(q.float().reshape(1, 4, 6, 4, 2))
        return torch.view_as_real(qc * self.freqs).flatten(3).transpose(1, 2).reshape(1, 6, 32)



class PyramidPool(nn.Module):
    """UperNet's pyramid pooling over a ConvNeXt's channels-last features: pooled to 1x1, the fake tensors give
    the (1, C, 1, 1) results strides (C, 1, C, C) (contiguous and channels-last at once to torch), the CPU's
    eval ``batch_norm`` returns (C, 1, 1, 1); the plan kept the fake strides, so the bilinear upsampling ran
    channels-last and the convolution after the ``cat`` on another layout than eager's (~5e-7)."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8)
        self.out = nn.Conv2d(16, 8, 3, padding=1)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x):  # x: (1, H, W, C)
        f = x.permute(0, 3, 1, 2)
        p = nn.functional.relu(self.bn(self.conv(nn.functional.adaptive_avg_pool2d(f, 1))))
        up = nn.functional.interpolate(p, size=f.shape[2:], mode="bilinear", align_corners=False)
        return self.out(torch.cat([f, up], 1))


class InPlaceApart(nn.Module):
    """Swin2SR's upsampler: tokens reshaped to an image (the fake convolution's result is channels-last, the
    CPU's contiguous: adopted), then ``leaky_relu_``, whose result the plan puts apart from its input: it kept
    the fake channels-last order where eager's result is the input itself, so the next convolution ran on
    another layout (~2e-7)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, t):  # t: (1, 36, 8)
        x = t.transpose(1, 2).reshape(1, 8, 6, 6)
        return self.c2(nn.functional.leaky_relu_(self.c1(x), 0.1))


class BatchStrideConv(nn.Module):
    """Tokens reshaped to a (1, C, H, W) image, then an elementwise op and a convolution: torch's view and the
    CPU's ``add`` give the batch dimension stride C, export's fake tensors C*H*W. With the latter the input is
    channels-last to torch, with the former not: the convolution ran channels-last where eager's did not
    (~2e-7), until results over tensors laid out as torch lays them take the real kernel's strides."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, t):  # t: (1, 36, 8)
        return self.c2(self.c1(t.transpose(1, 2).reshape(1, 8, 6, 6) + 0))
