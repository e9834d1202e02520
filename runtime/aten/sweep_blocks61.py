"""Round 61's plain-PyTorch modules for ``runtime.aten.sweep``: patterns the sweep's blocks did not hold:
``torch.library`` custom ops (functional and writing an input), ``while_loop`` and nested ``torch.cond``, scatters and
``index_put`` with duplicate indices, in-place writes to views of buffers (an EMA, a ring slot), outputs that alias
each other and the inputs, ``Tensor.unfold`` windows that overlap, ``F.fold``/``F.unfold``, every padding mode,
``MultiheadAttention``'s rarer options (``kdim``/``vdim``, ``add_bias_kv``, ``add_zero_attn``, per-head 3-D masks,
sequence-first), RNNs from given states, dtype-reinterpreting views written in place, and shared parameters across
nested modules.

Why: the executor is checked on models nobody hand-picked; each reaches ATen overloads or aliasing the earlier blocks
do not. Each entry is ``(name, make, inputs)`` as ``sweep_blocks.BLOCKS``' are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .sweep_blocks import rnd, tup


def _custom_ops() -> tuple:
    """``memplan_sweep61::scale_shift`` (functional) and ``memplan_sweep61::clip_`` (writes its input), defined once
    per process (``torch.library.custom_op`` refuses a name twice)."""
    ns = torch.ops.memplan_sweep61 if hasattr(torch.ops, "memplan_sweep61") else None
    if ns is not None and hasattr(ns, "scale_shift"):
        return ns.scale_shift, ns.clip_

    @torch.library.custom_op("memplan_sweep61::scale_shift", mutates_args=())
    def scale_shift(x: torch.Tensor, w: torch.Tensor, k: float) -> torch.Tensor:
        return x * w * k + 1.0

    @scale_shift.register_fake
    def _(x, w, k):
        return torch.empty_like(x)

    @torch.library.custom_op("memplan_sweep61::clip_", mutates_args=("x",))
    def clip_(x: torch.Tensor, lo: float) -> None:
        x.clamp_(min=lo)

    @clip_.register_fake
    def _(x, lo):
        return None

    return torch.ops.memplan_sweep61.scale_shift, torch.ops.memplan_sweep61.clip_


class CustomOps(nn.Module):
    """A user's ``torch.library.custom_op``: a functional one on an intermediate and on a transposed view, and one
    that writes its argument in place (an intermediate, then a slice of one)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6))

    def forward(self, x):
        scale_shift, clip_ = _custom_ops()
        a = scale_shift(x.sin(), self.w, 0.5)
        b = scale_shift(x.t().contiguous().t(), self.w, 2.0)
        c = a * 3
        clip_(c, 0.1)
        d = b + 1
        clip_(d[1:], 0.5)
        return a, c, d


class WhileLoop(nn.Module):
    """``torch._higher_order_ops.while_loop``: a counter and a carried tensor (a fixed trip count of the carried
    int tensor, a power iteration)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 6) * 0.3)

    def forward(self, x):
        from torch._higher_order_ops import while_loop

        def cond_fn(i, h):
            return i < 4

        def body_fn(i, h):
            return i + 1, torch.tanh(h @ self.w + 0.1)

        n, h = while_loop(cond_fn, body_fn, (torch.zeros((), dtype=torch.int64), x))
        return n, h, h.sum(-1)


class NestedCond(nn.Module):
    """``torch.cond`` inside ``torch.cond``, predicates from the data, branches reading a buffer and a parameter and
    returning several tensors."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 5))
        self.register_buffer("b", torch.randn(5))

    def forward(self, x):
        def inner_t(y):
            return (y @ self.w, y + self.b)

        def inner_f(y):
            return (y - self.b, y * 2)

        def outer_t(y):
            return torch.cond(y.mean() > 0, inner_t, inner_f, (y,))

        def outer_f(y):
            return (y.cos(), y.sin())

        a, b = torch.cond(x.sum() > 0, outer_t, outer_f, (x,))
        return a, b, a + b


class DuplicateScatters(nn.Module):
    """Scatters and ``index_put`` with duplicate indices: ``accumulate=True`` (sums), ``index_add`` and
    ``scatter_add`` (sums), ``scatter_reduce`` amax/mean/prod without self, ``x[idx] += v`` (a gather, an add and an
    ``index_put`` whose duplicates write the same value), int64 accumulations, and ``index_put_`` without
    ``accumulate`` whose duplicates write different rows."""

    def forward(self, x, idx, v, src):
        a = torch.zeros(6, 4, device=x.device).index_put((idx,), v, accumulate=True)
        b = x.clone()
        b[idx] += 1.0
        c = torch.zeros(6, 4, device=x.device).index_add(0, idx, v, alpha=0.5)
        sidx = idx.view(-1, 1).expand(-1, 4)
        d = torch.zeros(6, 4, device=x.device).scatter_add(0, sidx, v)
        e = x.scatter_reduce(0, sidx, v, reduce="amax", include_self=False)
        f = x.scatter_reduce(0, sidx, v, reduce="mean", include_self=True)
        g = x.scatter_reduce(0, sidx, src, reduce="prod", include_self=False)
        h = torch.zeros(6, dtype=torch.int64, device=x.device).index_put((idx,), torch.ones_like(idx), accumulate=True)
        k = x.clone()
        k.index_put_((idx, torch.zeros_like(idx)), torch.full((idx.numel(),), 9.0, device=x.device), accumulate=True)
        w = x.clone()
        if x.device.type == "cpu":   # (duplicates, different rows: the last one written wins on a CPU; on CUDA any)
            w.index_put_((idx,), v)
        return a, b, c, d, e, f, g, h, k, w


def dup_inputs(g, dev, dt):
    idx = torch.tensor([0, 2, 2, 5, 0, 2], device=dev)
    return (torch.randn(6, 4, generator=g, device=dev).to(dt), idx, torch.randn(6, 4, generator=g, device=dev).to(dt),
            torch.rand(6, 4, generator=g, device=dev).to(dt) + 0.5)


class BufferViewWrites(nn.Module):
    """In-place writes to views of buffers: an EMA step of a slice (restarted each call: the sweep compares calls
    with eager's, so no output may depend on state carried between calls), a ring slot written at a fixed index, a
    counter incremented (returned by no output), a buffer's transposed view written, and outputs that are views of
    the written buffers."""

    def __init__(self):
        super().__init__()
        self.register_buffer("ema", torch.zeros(2, 6))
        self.register_buffer("ring", torch.zeros(4, 6))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("sq", torch.ones(6, 6))

    def forward(self, x):
        self.ema[0].mul_(0.0).add_(x.mean(0), alpha=0.1)
        self.ring[1].copy_(x[0])
        self.count.add_(1)
        self.sq.t()[2].copy_(x[1]).mul_(2)
        y = x + self.ema[0] + self.ring.sum(0)
        return y, self.ema[0], self.ring[1:3], self.sq.diagonal(), self.sq[2]


class AliasedOutputs(nn.Module):
    """Outputs that alias each other and the inputs: an intermediate and its transpose, row and flat view; an input
    and its slice; an input written in place and returned as a view; a view of a view returned twice."""

    def forward(self, x, z):
        y = x * 2 + 1
        z.mul_(3)
        w = y.view(3, 2, 4)
        return y, y.t(), y[1], y.view(-1), x, x[:, 1:], z[1:], w, w[1], w[1]


class Unfolds(nn.Module):
    """``Tensor.unfold`` windows that overlap (a view whose elements share memory) returned and reduced, ``F.unfold``
    with dilation/padding/stride, ``F.fold`` summing overlaps, every ``F.pad`` mode on 1-D/2-D/3-D inputs."""

    def forward(self, x, s, v):
        win = s.unfold(-1, 4, 2)
        cols = F.unfold(x, kernel_size=3, dilation=2, padding=1, stride=2)
        cols2 = F.unfold(x, kernel_size=2)
        back = F.fold(cols2, output_size=x.shape[-2:], kernel_size=2)
        pads = (F.pad(x, (1, 2, 0, 1), mode="reflect"), F.pad(x, (2, 1, 1, 0), mode="replicate"),
                F.pad(x, (1, 1, 2, 2), mode="circular"), F.pad(x, (1, -1, 0, 2), value=3.5),
                F.pad(s, (3, 1), mode="reflect"), F.pad(v, (1, 1, 1, 1, 1, 1), mode="replicate"),
                F.pad(v, (1, 0, 0, 1, 1, 0), mode="circular"))
        return (win, win.sum(-1), cols, back, *pads)


class MHAOptions(nn.Module):
    """``nn.MultiheadAttention`` with ``kdim``/``vdim``, ``add_bias_kv`` and ``add_zero_attn``, sequence-first, a
    per-head 3-D float mask, a bool causal mask with a padding mask, per-head weights (``average_attn_weights=False``)
    and no weights."""

    def __init__(self):
        super().__init__()
        self.a = nn.MultiheadAttention(16, 4, kdim=12, vdim=10, add_bias_kv=True, add_zero_attn=True)
        self.b = nn.MultiheadAttention(16, 2, batch_first=True, bias=False)

    def forward(self, q, k, v, m3, x, kpm):
        o1, w1 = self.a(q, k, v, attn_mask=m3, average_attn_weights=False)
        causal = torch.triu(torch.ones(5, 5, dtype=torch.bool, device=x.device), 1)
        o2, w2 = self.b(x, x, x, attn_mask=causal, key_padding_mask=kpm)
        o3, _ = self.b(x, x, x, need_weights=False, attn_mask=causal, is_causal=True)
        return o1, w1, o2, w2, o3


def mha_opt_inputs(g, dev, dt):
    def r(*s):
        return torch.randn(*s, generator=g, device=dev).to(dt)

    kpm = torch.zeros(2, 5, dtype=torch.bool, device=dev)
    kpm[1, 3:] = True
    # (L=4, N=2; S=6 keys, +1 bias_kv, +1 zero_attn: a (N*heads, L, S) mask of 6 columns, padded by the module)
    return r(4, 2, 16), r(6, 2, 12), r(6, 2, 10), r(8, 4, 6), r(2, 5, 16), kpm


class RNNStates(nn.Module):
    """RNNs from given states: a bidirectional 2-layer GRU sequence-first with ``h0``, an LSTM with ``proj_size``
    and given ``(h0, c0)``, a tanh RNN without bias, and an unbatched (2-D) GRU input."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 5, num_layers=2, bidirectional=True)
        self.lstm = nn.LSTM(10, 8, proj_size=3, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(6, 4, bias=False, num_layers=2)
        self.g1 = nn.GRU(6, 3)

    def forward(self, x, h0, lh, lc):
        y, h = self.gru(x, h0)
        z, (hz, cz) = self.lstm(y.transpose(0, 1), (lh, lc))
        r, hr = self.rnn(x)
        u, hu = self.g1(x[:, 0])
        return y, h, z, hz, cz, r, hr, u, hu


def rnn_inputs(g, dev, dt):
    def r(*s):
        return torch.randn(*s, generator=g, device=dev).to(dt)

    return r(7, 2, 6), r(4, 2, 5), r(2, 2, 3), r(2, 2, 8)


class ReinterpretWrites(nn.Module):
    """Views in another dtype written in place: ``view_as_real`` of a complex intermediate scaled through its real
    part, a float's bits as int32 masked and viewed back (``abs`` by bit clearing), a uint8 view of an int32."""

    def forward(self, x, z):
        c = z * 2
        torch.view_as_real(c)[..., 0].mul_(3)
        y = x.clone()
        bits = y.view(torch.int32)
        bits.bitwise_and_(0x7FFFFFFF)
        q = (x * 100).to(torch.int32)
        q.view(torch.uint8)[..., 0].fill_(0)
        return c, y, q, c.abs(), y.sum()


def reinterpret_inputs(g, dev, dt):
    return (torch.randn(3, 8, generator=g, device=dev).to(dt),
            torch.randn(3, 4, generator=g, device=dev, dtype=torch.cfloat))


class SharedParams(nn.Module):
    """Parameters shared across nested modules: one ``Linear`` in two ``Sequential``s and a ``ModuleDict``, a
    second ``Linear`` whose weight is the first's, a parameter used transposed in a ``functional`` call, and a
    block repeated in a ``ModuleList``."""

    def __init__(self):
        super().__init__()
        lin = nn.Linear(8, 8)
        self.a = nn.Sequential(lin, nn.GELU())
        self.b = nn.Sequential(nn.LayerNorm(8), lin)
        self.d = nn.ModuleDict({"x": lin, "y": nn.Linear(8, 8)})
        self.d["y"].weight = lin.weight
        blk = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
        self.stack = nn.ModuleList([blk, blk, blk])

    def forward(self, x):
        h = self.b(self.a(x))
        h = self.d["y"](h) + self.d["x"](x)
        h = F.linear(h, self.a[0].weight.t())
        for m in self.stack:
            h = m(h)
        return h


BLOCKS61 = [
    ("custom_ops_library", CustomOps, tup(rnd(4, 6))),
    ("while_loop_carry", WhileLoop, tup(rnd(3, 6))),
    ("nested_cond", NestedCond, tup(rnd(2, 5))),
    ("duplicate_scatters", DuplicateScatters, dup_inputs),
    ("buffer_view_writes", BufferViewWrites, tup(rnd(3, 6))),
    ("aliased_outputs", AliasedOutputs, tup(rnd(3, 8), rnd(3, 4))),
    ("unfold_fold_pads", Unfolds, tup(rnd(2, 3, 6, 7), rnd(2, 3, 11), rnd(1, 2, 3, 4, 5))),
    ("mha_options", MHAOptions, mha_opt_inputs),
    ("rnn_given_states", RNNStates, rnn_inputs),
    ("reinterpret_writes", ReinterpretWrites, reinterpret_inputs),
    ("shared_params_nested", SharedParams, tup(rnd(3, 8))),
]


class FlatIndexWrites(nn.Module):
    """Index writes that count elements in a tensor's logical order, on views that are not contiguous: ``put_`` with
    duplicates (``accumulate`` and not) into a transposed intermediate, ``take`` of one, ``index_fill_`` and
    ``index_reduce_`` (prod, amax) on column views, ``masked_scatter_`` into a strided slice, ``fill_diagonal_``,
    ``tril_`` and ``addcmul_`` on views."""

    def forward(self, x, flat, v):
        a = (x * 2).t()
        a.put_(flat, v, accumulate=True)
        b = (x + 1).t()
        # (duplicates of different values: the last one written wins on a CPU; on CUDA any, so distinct places there)
        b.put_(flat[:3], v[:3]) if x.device.type == "cpu" else b.put_(flat[3:], v[3:])
        t = torch.take(a, flat)
        c = x.clone()
        c[:, 1:].index_fill_(1, torch.tensor([0, 2], device=x.device), -1.0)
        d = x.clone()
        d.t().index_reduce_(0, torch.tensor([1, 1, 3], device=x.device), x.t()[:3] + 2, "prod", include_self=False)
        e = x.clone()
        e.t().index_reduce_(0, torch.tensor([0, 0, 2], device=x.device), x.t()[1:4], "amax")
        f = x.clone()
        f[::2].masked_scatter_(f[::2] > 0, v.repeat(2)[: f[::2].numel()].view(f[::2].shape))
        g = x.clone()
        g[1:, 1:].fill_diagonal_(5.0)
        g.t()[:, :3].tril_(-1)
        h = x.clone()
        h[:, ::2].addcmul_(x[:, 1::2], x[:, :3], value=0.5)
        return a, b, t, c, d, e, f, g, h


def flat_inputs(g, dev, dt):
    return (torch.randn(4, 6, generator=g, device=dev).to(dt), torch.tensor([0, 5, 5, 23, 7, 0], device=dev),
            torch.randn(6, generator=g, device=dev).to(dt))


class SDPACorners(nn.Module):
    """``scaled_dot_product_attention`` corners: ``enable_gqa`` with a bool mask and with a float mask, queries
    longer than keys under ``is_causal`` (the causal mask's upper-left alignment), transposed (non-contiguous) q/k/v,
    a mask broadcast over heads and batch, one query row fully masked (NaN-free: -inf replaced by a large negative)."""

    def forward(self, q, k, v, kg, vg, bm, fm):
        o1 = F.scaled_dot_product_attention(q, kg, vg, attn_mask=bm, enable_gqa=True)
        o2 = F.scaled_dot_product_attention(q, kg, vg, attn_mask=fm, enable_gqa=True, scale=0.25)
        o3 = F.scaled_dot_product_attention(q, k[:, :, :3], v[:, :, :3], is_causal=True)
        qt, kt, vt = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
        o4 = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=fm[0, 0])
        return o1, o2, o3, o4


def sdpa61_inputs(g, dev, dt):
    def r(*s):
        return torch.randn(*s, generator=g, device=dev).to(dt)

    bm = torch.rand(2, 1, 6, 6, generator=g, device=dev) > 0.4
    bm[..., 0] = True
    fm = torch.where(torch.rand(1, 1, 6, 6, generator=g, device=dev) > 0.3, 0.0, -1e4).to(dt)
    return r(2, 4, 6, 8), r(2, 4, 6, 8), r(2, 4, 6, 8), r(2, 2, 6, 8), r(2, 2, 6, 8), bm, fm


BLOCKS61 += [
    ("flat_index_writes", FlatIndexWrites, flat_inputs),
    ("sdpa_corners", SDPACorners, sdpa61_inputs),
]
