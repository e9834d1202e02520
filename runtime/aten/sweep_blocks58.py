"""Round 58's plain-PyTorch modules for ``runtime.aten.sweep``: what a user writes by hand beside the op families of
``sweep_blocks``: packed LSTM/GRU sequences, in-place ops through chains of views, ``torch.where`` / ``scatter`` /
``index_put`` forms, boolean-mask writes, ``einsum`` forms, ``stft``/``istft``, int8 and bfloat16 CPU arithmetic,
channels-last blocks, a ``TransformerDecoder`` with every mask, ``torch.cond`` on a module's parameters.

Why: the executor is checked on models nobody hand-picked; these reach ATen ops and aliasing patterns
(``pack_padded_sequence``'s ``_pack_padded_sequence``, a write through ``t().diagonal()``) the sweep's models do not.
Each entry is ``(name, make, inputs)`` as ``sweep_blocks.BLOCKS``' are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .sweep_blocks import rnd, tup


class PackedRNNs(nn.Module):
    """An LSTM and a GRU over padded sequences of fixed lengths (a batch of one padded shape: ``lengths`` is the
    module's, as a loader that buckets by length gives it)."""

    def __init__(self, lengths=(5, 3, 2)):
        super().__init__()
        self.lengths = list(lengths)
        self.lstm = nn.LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(16, 4, batch_first=True)

    def forward(self, x):
        packed = pack_padded_sequence(x, self.lengths, batch_first=True, enforce_sorted=False)
        y, (h, c) = self.lstm(packed)
        z, hg = self.gru(y)
        out, lens = pad_packed_sequence(z, batch_first=True)
        return out, h, c, hg


class ViewWrites(nn.Module):
    """In-place ops through views of views (a transpose's diagonal, a strided slice of a flattened view, ``narrow``),
    an in-place op on an input, and views of the written tensor returned beside it."""

    def forward(self, x, w):
        y = x.clone()
        y[:, 1:].mul_(2)
        y.t().diagonal().add_(10)
        y.view(-1)[::3].neg_()
        y.narrow(1, 0, 2).copy_(w)
        y.transpose(0, 1)[2].fill_(0.5)
        y.unsqueeze(0).select(0, 0)[1].clamp_(-0.1, 0.1)
        x.add_(1)
        return y, y[1:, ::2], y.t(), x * 2


def view_inputs(g, dev, dt):
    return torch.randn(4, 5, generator=g, device=dev).to(dt), torch.randn(4, 2, generator=g, device=dev).to(dt)


class WhereScatter(nn.Module):
    """``torch.where`` (tensor and scalar forms), ``scatter`` / ``scatter_reduce`` (each reduction, with and without
    self), ``gather``, ``take_along_dim``, ``index_put`` with a boolean mask and with index tensors, ``masked_fill``."""

    def forward(self, x, idx, m):
        a = torch.where(m, x, -x)
        b = torch.where(x > 0, x, 0.0)
        s = torch.zeros(3, 4, device=x.device).scatter(0, idx, x[:2])
        r = [torch.ones(3, 4, device=x.device).scatter_reduce(0, idx, x[:2], reduce=red, include_self=inc)
             for red in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)]
        g = x.gather(1, idx.t()[:, :2].contiguous() % 4)
        t = torch.take_along_dim(x, x.argsort(dim=1), dim=1)
        y = x.clone()
        y[m] = 0.0                                     # (a boolean-mask write: index_put with a mask)
        z = x.clone()
        z[torch.tensor([0, 2], device=x.device), torch.tensor([1, 3], device=x.device)] = -5.0
        return a, b, s, *r, g, t, y, z, x.masked_fill(~m, 7.0)


def where_inputs(g, dev, dt):
    x = torch.randn(5, 4, generator=g, device=dev).to(dt)
    idx = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]], device=dev)
    return x, idx, torch.rand(5, 4, generator=g, device=dev) > 0.5


class Einsums(nn.Module):
    """``einsum`` forms: batched matmul, attention scores, a trace and a diagonal, an outer product, an ellipsis
    transpose, a full contraction, three operands."""

    def forward(self, a, b, q, k, sq):
        return (torch.einsum("bij,bjk->bik", a, b), torch.einsum("bhqd,bhkd->bhqk", q, k),
                torch.einsum("ii->", sq), torch.einsum("ii->i", sq), torch.einsum("i,j->ij", sq[0], sq[1]),
                torch.einsum("...ij->...ji", a), torch.einsum("bij,bij->", a, a),
                torch.einsum("ij,bjk,kl->bil", sq, b, sq[:3, :3]))


def einsum_inputs(g, dev, dt):
    r = lambda *s: torch.randn(*s, generator=g, device=dev).to(dt)  # noqa: E731
    return r(2, 4, 5), r(2, 5, 3), r(1, 2, 3, 8), r(1, 2, 4, 8), r(5, 5)


class Spectral(nn.Module):
    """``stft`` / ``istft`` with a window, ``rfft2`` / ``irfft2``, complex matmul, ``polar``, ``angle``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("win", torch.hann_window(16))

    def forward(self, x, img):
        spec = torch.stft(x, 16, hop_length=4, window=self.win, return_complex=True)
        back = torch.istft(spec, 16, hop_length=4, window=self.win, length=x.shape[-1])
        f = torch.fft.rfft2(img)
        z = torch.polar(img.abs() + 1, img)
        return spec.abs(), back, torch.fft.irfft2(f * f.conj(), s=img.shape[-2:]), (z @ z.mT).angle()


class Int8Bf16(nn.Module):
    """int8 arithmetic a user writes around a quantized matmul (int32 accumulation, per-row scales, bit ops) and
    bfloat16 linear / layer norm / softmax / conv on a CPU (the weights cast in ``forward``: the sweep casts a module
    to float32)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.ln = nn.LayerNorm(8)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)

    def forward(self, x):
        bf = torch.bfloat16
        scale = x.abs().amax(dim=1, keepdim=True) / 127
        q = (x / scale).round().clamp(-128, 127).to(torch.int8)
        acc = q.to(torch.int32) @ q.to(torch.int32).t()
        deq = acc.float() * scale * scale.t()
        h = F.linear(x.to(bf), self.lin.weight.to(bf), self.lin.bias.to(bf))
        h = F.layer_norm(h, (8,), self.ln.weight.to(bf), self.ln.bias.to(bf)).softmax(-1)
        c = F.conv1d(h.t().unsqueeze(0), self.conv.weight.to(bf), self.conv.bias.to(bf), padding=1)
        return q, acc, deq, h, c, (q >> 2) & 0x0F


class ChannelsLastBlock(nn.Module):
    """A residual block run channels-last: conv, batch norm, an upsample, an add with a contiguous tensor, a 3-D conv."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 4, 1)
        self.c3 = nn.Conv3d(2, 2, 3, padding=1).to(memory_format=torch.channels_last_3d)
        for conv in (self.c1, self.c2):
            conv.to(memory_format=torch.channels_last)

    def forward(self, x, v):
        y = self.c2(F.relu(self.bn(self.c1(x))))
        u = F.interpolate(y, scale_factor=2, mode="nearest")
        return y + x.contiguous(), u, self.c3(v), u.contiguous(memory_format=torch.channels_last)


def cl_inputs(g, dev, dt):
    x = torch.randn(2, 4, 6, 6, generator=g, device=dev).to(dt).to(memory_format=torch.channels_last)
    v = torch.randn(1, 2, 3, 4, 4, generator=g, device=dev).to(dt).to(memory_format=torch.channels_last_3d)
    return x, v


class Decoder(nn.Module):
    """``nn.TransformerDecoder`` (pre-norm, GELU) with a causal target mask, padding masks of target and memory, and a
    float memory mask."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.dec = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(32))

    def forward(self, tgt, mem, tpad, mpad, mmask):
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        return self.dec(tgt, mem, tgt_mask=causal, memory_mask=mmask, tgt_key_padding_mask=tpad,
                        memory_key_padding_mask=mpad, tgt_is_causal=True)


def dec_inputs(g, dev, dt):
    tpad = torch.zeros(2, 5, dtype=torch.bool, device=dev)
    tpad[1, 4:] = True
    mpad = torch.zeros(2, 6, dtype=torch.bool, device=dev)
    mpad[0, 5:] = True
    return (torch.randn(2, 5, 32, generator=g, device=dev).to(dt), torch.randn(2, 6, 32, generator=g, device=dev).to(dt),
            tpad, mpad, torch.randn(5, 6, generator=g, device=dev).to(dt))


class CondParams(nn.Module):
    """``torch.cond`` whose branches read the module's parameters and buffers and return two tensors, on a predicate
    computed from the input."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.register_buffer("shift", torch.arange(4.0))

    def forward(self, x):
        def yes(t):
            return self.a(t) + self.shift, t.sum(0)

        def no(t):
            return self.b(t).tanh() - self.shift, t.amax(0)

        y, s = torch.cond(x.mean() > 0, yes, no, (x,))
        return y * 2, s


BLOCKS58 = [
    ("inplace_view_chains", ViewWrites, view_inputs),
    ("where_scatter_index_put", WhereScatter, where_inputs),
    ("einsum_forms", Einsums, einsum_inputs),
    ("stft_spectral", Spectral, tup(rnd(2, 64), rnd(2, 4, 4))),
    ("int8_bf16_cpu", Int8Bf16, tup(rnd(3, 8))),
    ("channels_last_block", ChannelsLastBlock, cl_inputs),
    ("nn_transformer_decoder", Decoder, dec_inputs),
    ("torch_cond_params", CondParams, tup(rnd(3, 4))),
]
