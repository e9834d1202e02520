"""Round 60's plain-PyTorch modules for ``runtime.aten.sweep``: patterns users write by hand that the sweep's
blocks reached only partly: ``out=`` variants (into fresh tensors, into slices, into an operand), ``torch.where``
with Python scalars on either side (int results, NaN, half operands), int64 index arithmetic (floor division and
remainders of negatives, shifts, wrap-around multiplies, ``bucketize``), in-place ops through views of the inputs,
``torch.nn.functional`` corner cases (negative and circular padding, fractional interpolation scales, reflection
``grid_sample``, pooling with ``ceil_mode`` and ``divisor_override``, losses with ``ignore_index`` and soft
targets), complex64 arithmetic, channels-last chains and a bfloat16 block on any device.

Why: the executor is checked on models nobody hand-picked; these reach ATen overloads (``add.out``, ``where.ScalarOther``,
``div.Tensor_mode``, ``bucketize.Tensor``) and aliasing patterns the sweep's models do not. Each entry is
``(name, make, inputs)`` as ``sweep_blocks.BLOCKS``' are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .sweep_blocks import rnd, tup


class OutVariants(nn.Module):
    """``out=`` into a fresh tensor, into a column slice of one (strided), into an operand (in place), and an
    ``out=`` of the wrong size that the op resizes (an empty tensor)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 4))

    def forward(self, x, y):
        a = torch.empty(3, 6, device=x.device)
        torch.add(x, y, alpha=2, out=a)
        b = torch.zeros(3, 8, device=x.device)
        torch.matmul(a, self.w, out=b[:, 2:6])
        torch.mul(x, 3, out=x)
        c = torch.empty(0, device=x.device)
        torch.cat([a, y], dim=1, out=c)
        s = torch.empty(6, device=x.device)
        torch.sum(c[:, :6], 0, out=s)
        return a, b, x, c, s


class WhereScalars(nn.Module):
    """``torch.where`` with scalars (both sides, int results, NaN), half operands promoted, a fully masked softmax
    row (NaN), ``clamp`` with a tensor bound."""

    def forward(self, x, h):
        m = x > 0
        a = torch.where(m, x, 0.0)
        b = torch.where(m, 1, 0)                       # int64
        c = torch.where(m, 1.5, -1.5)                  # the default dtype
        d = torch.where(m, float("nan"), x)
        e = torch.where(m[:, :4], 2, h)                # half stays half
        f = torch.where(m, x.double(), 1)              # float64
        g = x.masked_fill(x < 10, float("-inf")).softmax(-1)   # every row masked: NaN
        k = torch.clamp(x, min=-0.5, max=torch.tensor(0.3))
        return a, b, c, d, e, f, g, k, b.sum(-1)


class IntIndexMath(nn.Module):
    """int64 arithmetic on indices: floor division and remainders of negatives, ``fmod``, shifts, bit ops, a
    multiplicative hash that wraps, ``bucketize`` / ``searchsorted``, ``cumsum`` of ints, gathers at computed
    indices, int ``pow`` and ``abs``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("bounds", torch.tensor([-1.0, -0.25, 0.0, 0.5, 1.5]))
        self.table = nn.Parameter(torch.randn(16, 4))

    def forward(self, i, x):
        a = i // 3
        b = torch.div(i, 4, rounding_mode="floor")
        c = torch.div(i, 4, rounding_mode="trunc")
        d = torch.remainder(i, 5)
        e = torch.fmod(i, 5)
        f = (i << 3) | 1 ^ (i >> 1)
        h = (i * 2654435761 + 97) % 2147483647
        bk = torch.bucketize(x, self.bounds)
        ss = torch.searchsorted(self.bounds, x.contiguous(), right=True)
        cs = torch.cumsum(i.abs(), 0)
        idx = torch.arange(4, device=i.device) * 3 + d[:4]
        g = self.table[(idx + i[:4].abs()) % 16]
        t = torch.true_divide(i, 2)
        return a, b, c, d, e, f, h, bk, ss, cs, g, t, i.pow(2), i.clamp(-3, 3), torch.argsort(i, stable=True)


def int_inputs(g, dev, dt):
    return (torch.randint(-20, 20, (12,), generator=g, device=dev),
            torch.randn(3, 5, generator=g, device=dev).to(dt))


class InputViewWrites(nn.Module):
    """In-place ops on views of the user's inputs (a column, a transposed row, a strided flat view, an
    ``as_strided`` window, ``relu_`` of a slice), the input returned after, and a copy of one input into a diagonal
    view of another."""

    def forward(self, x, z):
        x[:, 0] += 1
        x.t()[1].mul_(2)
        x.view(-1)[::3].fill_(7)
        F.relu(x[1:], inplace=True)
        x.as_strided((2, 2), (1, 4), 1).add_(10)
        y = x * 1
        y.diagonal().copy_(z)
        x.clamp_(max=8)
        return x, y, z.sum()


class FunctionalCorners(nn.Module):
    """``torch.nn.functional`` corner cases: negative / reflect / circular padding, fractional interpolation scales
    (``recompute_scale_factor``, ``nearest-exact``, antialiased downsampling), reflection ``grid_sample`` with
    ``align_corners``, pooling with ``ceil_mode``, ``count_include_pad=False`` and ``divisor_override``, dilated
    ``max_pool1d``, ``lp_pool2d``, ``unfold`` / ``fold``, ``pixel_unshuffle``, ``one_hot``, ``normalize`` with p=1,
    ``log_softmax`` over ``-inf``, eval ``rrelu`` / ``dropout``, ``softplus`` with beta and threshold."""

    def forward(self, x, theta):
        a = F.pad(x, (-1, 2, 1, -2))
        b = F.pad(x, (2, 1, 1, 2), mode="reflect")
        c = F.pad(x, (1, 3, 2, 0), mode="circular")
        d = F.interpolate(x, scale_factor=1.7, mode="bilinear", align_corners=False, recompute_scale_factor=True)
        e = F.interpolate(x, scale_factor=0.6, mode="nearest-exact")
        f = F.interpolate(x, size=(3, 5), mode="bicubic", antialias=True)
        grid = F.affine_grid(theta, [2, 3, 5, 6], align_corners=True)
        gs = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        p1 = F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        p2 = F.avg_pool2d(x, 2, divisor_override=3)
        p3 = F.max_pool1d(x.flatten(2), 3, stride=2, dilation=2, ceil_mode=True)
        p4 = F.lp_pool2d(x.abs(), 2.0, 2, ceil_mode=True)
        u = F.fold(F.unfold(x, 2, stride=2), (8, 8), 2, stride=2)
        ps = F.pixel_unshuffle(x, 2)
        oh = F.one_hot(x.argmax(1).flatten(), 8).float()
        n1 = F.normalize(x, p=1.0, dim=-1, eps=1e-3)
        ls = F.log_softmax(x.masked_fill(x > 0.5, float("-inf")), -1)
        r = F.rrelu(x, training=False) + F.dropout(x, 0.5, training=False)
        sp = F.softplus(x * 10, beta=2, threshold=5)
        return a, b, c, d, e, f, gs, p1, p2, p3, p4, u, ps, oh, n1, ls, r, sp


def corner_inputs(g, dev, dt):
    theta = torch.tensor([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.05]]], device=dev).to(dt).repeat(2, 1, 1)
    return torch.randn(2, 3, 8, 8, generator=g, device=dev).to(dt), theta


class LossCorners(nn.Module):
    """Losses' options: ``cross_entropy`` with ``ignore_index``, class weights and ``label_smoothing``, and with soft
    (probability) targets; ``nll_loss`` per element; ``kl_div`` with ``log_target``; ``huber_loss`` (``ctc_loss`` fails in torch.export: its output size depends
    on values)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("cw", torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0]))

    def forward(self, logits, target, soft):
        a = F.cross_entropy(logits, target, weight=self.cw, ignore_index=2, label_smoothing=0.1)
        b = F.cross_entropy(logits, soft.softmax(-1), label_smoothing=0.05)
        c = F.nll_loss(logits.log_softmax(-1), target, reduction="none", ignore_index=0)
        d = F.kl_div(logits.log_softmax(-1), soft.log_softmax(-1), reduction="batchmean", log_target=True)
        e = F.huber_loss(logits, soft, delta=0.5)
        return a, b, c, d, e


def loss_inputs(g, dev, dt):
    return (torch.randn(6, 5, generator=g, device=dev).to(dt), torch.randint(0, 5, (6,), generator=g, device=dev),
            torch.randn(6, 5, generator=g, device=dev).to(dt))


class ComplexMath(nn.Module):
    """complex64 arithmetic on a complex input: ``* 1j``, ``polar``, a write through ``.real`` of an intermediate,
    ``conj().imag``, ``sgn``, ``reciprocal``, complex matmul against a weight made complex from two real parameters (a
    module's ``.to(dtype)`` leaves real ones real), ``fft.ifft``,
    ``view_as_real`` of the result."""

    def __init__(self):
        super().__init__()
        self.wr, self.wi = nn.Parameter(torch.randn(4, 4)), nn.Parameter(torch.randn(4, 4))

    def forward(self, z, r):
        a = z * 1j + 0.5
        p = torch.polar(r.abs(), r)
        b = a.clone()
        b.real.mul_(2)
        b.imag.add_(r)
        c = z.conj().imag
        m = (b @ torch.complex(self.wr, self.wi)).exp()
        f = torch.fft.ifft(m, dim=-1)
        return a, p, b, c, z.sgn(), (z + 1).reciprocal(), torch.view_as_real(f), f.abs().pow(2).sum(-1)


def complex_inputs(g, dev, dt):
    z = torch.complex(torch.randn(3, 4, generator=g, device=dev), torch.randn(3, 4, generator=g, device=dev))
    return z, torch.randn(3, 4, generator=g, device=dev).to(dt)


class ChannelsLastChain(nn.Module):
    """Channels-last input through ``interpolate``, ``cat``, batch norm, ``adaptive_avg_pool2d``, a ``permute``
    returned (NHWC), ``flatten`` and a grouped conv; the input's layout decides every intermediate's."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=4)

    def forward(self, x):
        u = F.interpolate(x, scale_factor=2, mode="nearest")
        c = torch.cat([u, u * 2], 1)
        y = self.conv(self.bn(c)).relu()
        p = F.adaptive_avg_pool2d(y, (3, 3))
        nhwc = y.permute(0, 2, 3, 1)
        return y, p.flatten(1), nhwc, nhwc.mean(-1), y.sum((2, 3))


def cl_inputs(g, dev, dt):
    return (torch.randn(2, 4, 5, 5, generator=g, device=dev).to(dt).contiguous(memory_format=torch.channels_last),)


class WritesAfterReads(nn.Module):
    """In-place writes through views of an intermediate after other nodes read it (a linear of the whole, a sum of
    one half), then a write of the whole and a read of it again: the orders a multi-stream plan must keep."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, x):
        y = self.l1(x)
        a, b = y.narrow(1, 0, 8), y.narrow(1, 8, 8)
        r = self.l2(y).relu()
        s = a.sum(1)
        b.mul_(3)
        a.add_(s[:, None])
        t = torch.cat([a, b], 1)
        y.sub_(1)
        return t, y.t() @ r, r, s, y


class Bf16Block(nn.Module):
    """A block the sweep runs in bfloat16 on any device (the module cast as a whole, inputs too): linear, layer
    norm, GELU, attention through ``scaled_dot_product_attention`` with a causal mask, a conv1d, a softmax."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)
        self.ln = nn.LayerNorm(32)
        self.conv = nn.Conv1d(32, 32, 3, padding=1)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        q, k, v = self.qkv(self.ln(x)).view(2, 6, 3, 4, 8).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 6, 32)
        h = F.gelu(a + x)
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.out(h).softmax(-1), h.float().mean()


BLOCKS60 = [
    ("out_variants", OutVariants, tup(rnd(3, 6), rnd(3, 6))),
    ("where_scalars", WhereScalars, lambda g, dev, dt: (torch.randn(3, 6, generator=g, device=dev).to(dt),
                                                        torch.randn(3, 4, generator=g, device=dev).half())),
    ("int_index_math", IntIndexMath, int_inputs),
    ("input_view_writes", InputViewWrites, tup(rnd(4, 4), rnd(4))),
    ("functional_corners", FunctionalCorners, corner_inputs),
    ("loss_corners", LossCorners, loss_inputs),
    ("complex_math", ComplexMath, complex_inputs),
    ("writes_after_reads", WritesAfterReads, tup(rnd(8, 16))),
    ("channels_last_chain", lambda: ChannelsLastChain().to(memory_format=torch.channels_last), cl_inputs),
]

#: run in bfloat16 (``Case.dtype``) on a CPU as on CUDA
BLOCKS60_BF16 = [("bf16_block", Bf16Block, tup(rnd(2, 6, 32)))]
