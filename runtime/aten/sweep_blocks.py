"""Tiny torch.nn building blocks and op families for ``runtime.aten.sweep`` (session 39): ``nn.Transformer`` and
``MultiheadAttention`` with masks, RNNs, ``EmbeddingBag``, 3-D and transposed convolutions, pooling with indices,
every ``interpolate`` mode, ``scaled_dot_product_attention`` masks, ``torch.fft``, complex tensors and views,
int8 / bool / float8 / unsigned tensors, ``torch.linalg``, ``torch.special``, losses, in-place index ops,
``torch.cond`` and ``checkpoint``; session 40: ``flex_attention``, ``torch.vmap``, parametrizations, modules
reused and weights tied, ``associative_scan``'s generic mode.

Why: the sweep's models reach these ops only partly; a user's own module reaches them directly. Each entry is
``(name, make, inputs)`` with ``inputs(generator, device, dtype)``, as ``sweep.Case`` takes them (no import of the
sweep here: ``python -m runtime.aten.sweep`` runs it as the main module).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def rnd(*shape):
    return lambda g, dev, dt: torch.randn(*shape, generator=g, device=dev).to(dt)


def tup(*fs):
    return lambda g, dev, dt: tuple(f(g, dev, dt) for f in fs)


class TransformerFull(nn.Module):
    def __init__(self):
        super().__init__()
        self.t = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                                dim_feedforward=64, dropout=0.1, batch_first=True)

    def forward(self, src, tgt, pad):
        tm = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        return self.t(src, tgt, tgt_mask=tm, src_key_padding_mask=pad, memory_key_padding_mask=pad,
                      tgt_is_causal=True)


def tf_inputs(g, dev, dt):
    pad = torch.zeros(2, 6, dtype=torch.bool, device=dev)
    pad[1, 4:] = True
    return (torch.randn(2, 6, 32, generator=g, device=dev).to(dt), torch.randn(2, 5, 32, generator=g, device=dev).to(dt), pad)


class MHA(nn.Module):
    def __init__(self, batch_first=True, kdim=None):
        super().__init__()
        self.a = nn.MultiheadAttention(32, 4, batch_first=batch_first, kdim=kdim, vdim=kdim, bias=True,
                                       add_bias_kv=kdim is None, add_zero_attn=kdim is None)
        self.b = nn.MultiheadAttention(32, 4, batch_first=batch_first)

    def forward(self, q, k, fmask, kpm):
        y, w = self.a(q, k, k, key_padding_mask=kpm, need_weights=True, average_attn_weights=False)
        bm = torch.ones(q.shape[1], q.shape[1], dtype=torch.bool, device=q.device).triu(1)
        z, w2 = self.b(y, y, y, attn_mask=bm, need_weights=True)
        u, _ = self.b(q, q, q, attn_mask=fmask, need_weights=False)
        return y, w, z, w2, u


def mha_inputs(g, dev, dt):
    kpm = torch.zeros(2, 7, dtype=torch.bool, device=dev)
    kpm[0, 5:] = True
    fm = torch.randn(5, 5, generator=g, device=dev).to(dt)
    return (torch.randn(2, 5, 32, generator=g, device=dev).to(dt), torch.randn(2, 7, 32, generator=g, device=dev).to(dt), fm, kpm)


class RNNs(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.gru = nn.GRU(32, 12, num_layers=2, batch_first=False)
        self.rnn = nn.RNN(12, 8, nonlinearity="relu")
        self.proj = nn.LSTM(8, 16, proj_size=4)
        self.cell = nn.LSTMCell(8, 8)
        self.gcell = nn.GRUCell(8, 8)

    def forward(self, x, h0, c0):
        y, (h, c) = self.lstm(x, (h0, c0))
        z, hg = self.gru(y.transpose(0, 1))
        r, hr = self.rnn(z)
        p, (hp, cp) = self.proj(r)
        hc, cc = self.cell(x[:, 0])
        gc = self.gcell(x[:, 1], hc)
        return y, h, c, z, hg, r, hr, p, hp, cp, hc, cc, gc


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.s = nn.EmbeddingBag(50, 8, mode="sum")
        self.m = nn.EmbeddingBag(50, 8, mode="mean", padding_idx=0)
        self.x = nn.EmbeddingBag(50, 8, mode="max")
        self.e = nn.Embedding(50, 8, padding_idx=3)

    def forward(self, idx, offsets, w, idx2d):
        return (self.s(idx, offsets, per_sample_weights=w), self.m(idx, offsets), self.x(idx, offsets),
                self.m(idx2d), self.e(idx2d), F.one_hot(idx2d, 50).sum(1))


def bag_inputs(g, dev, dt):
    idx = torch.randint(0, 50, (12,), generator=g, device=dev)
    return (idx, torch.tensor([0, 3, 3, 7], device=dev), torch.rand(12, generator=g, device=dev).to(dt),
            torch.randint(0, 50, (3, 4), generator=g, device=dev))


class Convs(nn.Module):
    def __init__(self):
        super().__init__()
        self.c3 = nn.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1, dilation=1, groups=1)
        self.t3 = nn.ConvTranspose3d(8, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.t2 = nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=2, groups=2)
        self.t1 = nn.ConvTranspose1d(6, 4, 4, stride=3, padding=2, output_padding=1)
        self.c1 = nn.Conv1d(4, 4, 5, padding="same", padding_mode="circular")
        self.c2r = nn.Conv2d(4, 4, 3, padding=2, padding_mode="reflect", dilation=2)
        self.c2p = nn.Conv2d(4, 4, 3, padding=1, padding_mode="replicate", bias=False)

    def forward(self, x):
        y = self.t3(F.relu(self.c3(x)))            # (1, 4, 8, 16, 16)
        y2 = self.t2(y[:, :, 0])                   # 2D
        z = self.t1(y2.flatten(2)[:, :, :40])
        return y, y2, self.c1(z), self.c2r(y[:, :, 1]), self.c2p(y[:, :, 2])


class Pools(nn.Module):
    def __init__(self):
        super().__init__()
        self.mp = nn.MaxPool2d(2, return_indices=True)
        self.un = nn.MaxUnpool2d(2)
        self.mp3 = nn.MaxPool3d(2, stride=2, return_indices=True, ceil_mode=True)
        self.un3 = nn.MaxUnpool3d(2, stride=2)
        self.amp = nn.AdaptiveMaxPool2d((3, 5), return_indices=True)
        self.mp1 = nn.MaxPool1d(3, stride=2, padding=1, dilation=2, return_indices=True)

    def forward(self, x, v):
        y, i = self.mp(x)
        u = self.un(y, i, output_size=x.shape)
        y3, i3 = self.mp3(v)
        u3 = self.un3(y3, i3)
        a, ai = self.amp(x)
        m1, i1 = self.mp1(x.flatten(2))
        return (y, i, u, y3, i3, u3, a, ai, m1, i1, F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                F.adaptive_avg_pool3d(v, (2, 3, 1)), F.lp_pool2d(x.abs(), 2, 2), F.avg_pool3d(v, 2),
                F.adaptive_avg_pool1d(x.flatten(2), 7))


class Interp(nn.Module):
    def forward(self, x, v):
        out = []
        for mode in ("nearest", "nearest-exact", "area"):
            out.append(F.interpolate(x, size=(11, 7), mode=mode))
        for mode in ("bilinear", "bicubic"):
            for ac in (False, True):
                out.append(F.interpolate(x, scale_factor=1.7, mode=mode, align_corners=ac))
            out.append(F.interpolate(x, size=(5, 4), mode=mode, antialias=True))
        out.append(F.interpolate(v, scale_factor=2, mode="trilinear", align_corners=False))
        out.append(F.interpolate(v, size=(3, 5, 7), mode="nearest"))
        out.append(F.interpolate(x.flatten(2), size=20, mode="linear"))
        out.append(F.interpolate(x, scale_factor=(2, 3), mode="nearest", recompute_scale_factor=True))
        out.append(F.pixel_shuffle(x[:, :4], 2))
        out.append(F.pixel_unshuffle(x, 2))
        return tuple(out)


class SDPA(nn.Module):
    def forward(self, q, k, v, bmask, fmask, kg, vg):
        return (F.scaled_dot_product_attention(q, k, v),
                F.scaled_dot_product_attention(q, k, v, attn_mask=bmask),
                F.scaled_dot_product_attention(q, k, v, attn_mask=fmask, scale=0.3),
                F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.0),
                F.scaled_dot_product_attention(q, kg, vg, enable_gqa=True, is_causal=True),
                F.scaled_dot_product_attention(q[:, :, :3], k, v, is_causal=True))


def sdpa_inputs(g, dev, dt):
    def r(*s):
        return torch.randn(*s, generator=g, device=dev).to(dt)

    bm = torch.rand(1, 1, 6, 6, generator=g, device=dev) > 0.3
    bm[..., 0] = True
    return r(2, 4, 6, 8), r(2, 4, 6, 8), r(2, 4, 6, 8), bm, r(2, 1, 6, 6), r(2, 2, 6, 8), r(2, 2, 6, 8)


class FFT(nn.Module):
    def forward(self, x, s):
        X = torch.fft.rfft(x, dim=-1)
        y = torch.fft.irfft(X * X.conj(), n=x.shape[-1])
        f2 = torch.fft.fft2(x)
        fn = torch.fft.ifftn(f2, norm="ortho")
        h = torch.fft.hfft(X[..., :5], n=8)
        sh = torch.fft.fftshift(x, dim=(-2, -1))
        r2 = torch.fft.irfft2(torch.fft.rfft2(x, norm="forward"), s=x.shape[-2:], norm="forward")
        spec = torch.stft(s, 16, hop_length=4, window=torch.hann_window(16, device=s.device), return_complex=True)
        wave = torch.istft(spec, 16, hop_length=4, window=torch.hann_window(16, device=s.device), length=s.shape[-1])
        return (y, torch.view_as_real(f2), fn.real, fn.imag, h, sh, r2, spec.abs(), spec.angle(), wave,
                torch.fft.fftfreq(8, device=x.device), torch.fft.rfftfreq(8, d=0.5, device=x.device))


class Complex(nn.Module):
    def __init__(self):
        super().__init__()
        self.wr = nn.Parameter(torch.randn(8, 8))
        self.wi = nn.Parameter(torch.randn(8, 8))

    def forward(self, z, x):
        y = z @ torch.complex(self.wr, self.wi)
        c = torch.complex(x, x.flip(-1))
        p = torch.polar(x.abs(), x)
        return y, y * c, (c + p).exp(), torch.view_as_complex(torch.stack([x, x], -1)), c.abs(), c.angle(), c.conj() * 2, torch.view_as_real(c.sum(-1))


def complex_inputs(g, dev, dt):
    return (torch.randn(3, 8, generator=g, device=dev, dtype=torch.cfloat), torch.randn(3, 8, generator=g, device=dev))


class Sparse(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 4))

    def forward(self, x):
        s = x.relu().to_sparse()
        return torch.sparse.mm(s, self.w), s.to_dense()


class IntBool(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("w8", torch.randint(-128, 127, (8, 6), dtype=torch.int8))

    def forward(self, a, b, m):
        a8, b8 = a.to(torch.int8), b.to(torch.int8)
        s = a8 + b8                      # int8 wraps
        p = a8 * b8
        mm = torch.matmul(a.to(torch.int32), self.w8.to(torch.int32))
        return (s, p, a8 // 3, a8 % 5, a8 >> 2, a8 << 1, a8 & b8, a8 | b8, a8 ^ b8, ~a8, m & (a8 > 0), m | ~m,
                m ^ (b8 < 0), torch.where(m, a8, b8), m.sum(-1), m.cumsum(-1), m.any(-1), m.all(0), mm,
                a8.abs(), a8.max(-1).values, torch.bitwise_not(m), m.float().mean(), a8.sum(),
                torch.clamp(a8, -3, 3), a8.to(torch.uint8), torch.sort(a8, dim=-1, stable=True).values, torch.argsort(b8, dim=-1, stable=True))


def intbool_inputs(g, dev, dt):
    return (torch.randint(-100, 100, (4, 8), generator=g, device=dev), torch.randint(-100, 100, (4, 8), generator=g, device=dev),
            torch.rand(4, 8, generator=g, device=dev) > 0.5)


class Misc(nn.Module):
    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
        self.rms = nn.RMSNorm(7)
        self.bil = nn.Bilinear(7, 7, 3)
        self.prelu = nn.PReLU(4)
        self.lrn = nn.LocalResponseNorm(3)
        self.unfold = nn.Unfold(3, padding=1, stride=2)
        self.fold = nn.Fold((7, 7), 3, padding=1, stride=2)

    def forward(self, x, idx):
        u = self.unfold(x)
        grid = F.affine_grid(torch.tensor([[[0.9, 0.1, 0.0], [-0.1, 0.8, 0.1]]], device=x.device).expand(x.shape[0], 2, 3), x.shape, align_corners=False)
        return (self.gn(x), self.inorm(x), self.rms(x), self.bil(x[:, 0, 0], x[:, 1, 1]), self.prelu(x), self.lrn(x), u,
                self.fold(u), F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False),
                F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=True),
                F.pad(x, (1, 2, 0, 1), mode="reflect"), F.pad(x, (2, 2, 1, 1), mode="circular"), F.pad(x, (1, 1, 1, 1), mode="replicate"),
                x.topk(3, -1), x.sort(-1, descending=True), x.cumsum(1), x.cumprod(-1), x.logcumsumexp(2), torch.cummax(x, -1),
                torch.zeros(2, 4, 7, device=x.device).scatter_reduce(2, idx, x[:, :, 0], "amax", include_self=False),
                torch.zeros(2, 4, 7, device=x.device).index_add(2, idx[0, 0], x[:, :, 0], alpha=0.5),
                torch.bucketize(x, torch.linspace(-1, 1, 5, device=x.device)), torch.searchsorted(torch.linspace(-2, 2, 9, device=x.device), x.contiguous(), right=True),
                torch.einsum("bchw,bcwk->bhk", x, x), x.tril(-1), x.triu(2), torch.histc(x, 10, -2, 2), x.median(-1), x.mode(-1),
                x.kthvalue(2, -1), x.quantile(0.3, dim=-1), torch.var_mean(x, -1, correction=0), x.norm(p=3, dim=-1),
                torch.cdist(x[0, 0], x[0, 1]), torch.renorm(x, 2, 0, 1.0), x.diff(dim=-1), torch.cross(x[..., :3], x[..., 3:6], dim=-1),
                torch.logsumexp(x, -1), F.log_softmax(x, 1), F.normalize(x, dim=1),
                F.cosine_similarity(x, x.flip(-1), dim=-1), F.glu(x[..., :6]), F.hardswish(x), F.mish(x), F.softplus(x, 2, 1),
                F.elu(x), F.celu(x), F.selu(x), F.rrelu(x, training=False), F.hardtanh(x), F.silu(x), F.gelu(x, approximate="tanh"),
                F.softmin(x, -1), F.threshold(x, 0.1, 20.0), F.logsigmoid(x), F.tanhshrink(x), F.softshrink(x), F.hardshrink(x))


def misc_inputs(g, dev, dt):
    return (torch.randn(2, 4, 7, 7, generator=g, device=dev).to(dt), torch.randint(0, 7, (2, 4, 7), generator=g, device=dev))


class Losses(nn.Module):
    def forward(self, x, y, t):
        return (F.cross_entropy(x, t, label_smoothing=0.1, ignore_index=2), F.nll_loss(x.log_softmax(-1), t, reduction="none"),
                F.mse_loss(x, y), F.l1_loss(x, y, reduction="sum"), F.smooth_l1_loss(x, y, beta=0.5), F.huber_loss(x, y),
                F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=torch.ones(5, device=x.device) * 2), F.kl_div(x.log_softmax(-1), y.softmax(-1), reduction="batchmean"),
                F.margin_ranking_loss(x[:, 0], y[:, 0], t.sign().float() * 2 - 1), F.triplet_margin_loss(x, y, x.flip(0)),
                F.poisson_nll_loss(x, y.abs()), F.cosine_embedding_loss(x, y, torch.tensor([1, -1, 1, 1], device=x.device)), F.multi_margin_loss(x, t),
                F.soft_margin_loss(x, y.sign()), F.hinge_embedding_loss(x, y.sign()))


def loss_inputs(g, dev, dt):
    return (torch.randn(4, 5, generator=g, device=dev), torch.randn(4, 5, generator=g, device=dev), torch.randint(0, 5, (4,), generator=g, device=dev),
            )


class EncLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"), 2, enable_nested_tensor=False)
        self.d = nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, batch_first=False)

    def forward(self, x, pad):
        y = self.e(x, src_key_padding_mask=pad, is_causal=False)
        z = self.d(x.transpose(0, 1), y.transpose(0, 1), tgt_mask=nn.Transformer.generate_square_subsequent_mask(6, device=x.device), tgt_is_causal=True, memory_key_padding_mask=pad)
        return y, z


def enc_inputs(g, dev, dt):
    pad = torch.zeros(2, 6, dtype=torch.bool, device=dev)
    pad[0, 4:] = True
    return torch.randn(2, 6, 32, generator=g, device=dev).to(dt), pad


class EmbMaxNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(20, 8, max_norm=1.0)

    def forward(self, i):
        return self.e(i) * 2


class InPlace(nn.Module):
    def forward(self, x, idx, m):
        y = x.clone()
        y[:, 1] = 0.5
        y.index_put_((idx,), torch.ones(idx.shape[0], x.shape[1], device=x.device), accumulate=True)
        y.masked_scatter_(m, x * 3)
        y.index_fill_(1, torch.tensor([0, 2], device=x.device), -1.0)
        z = torch.zeros(5, 4, device=x.device).index_copy(0, torch.tensor([4, 0], device=x.device), x[:2])
        w = x.clone().put_(torch.tensor([1, 7, 1], device=x.device), torch.tensor([9.0, 8.0, 7.0], device=x.device), accumulate=True)
        s = torch.zeros(3, 4, device=x.device).scatter_add_(0, idx[:, None].expand(-1, 4), x[: idx.shape[0]])
        x.mul_(2)
        return y, z, w, s, torch.diagonal_scatter(torch.zeros(4, 4, device=x.device), x[0]), torch.select_scatter(torch.zeros(2, 4, device=x.device), x[1], 0, 1)


def inplace_inputs(g, dev, dt):
    return (torch.randn(5, 4, generator=g, device=dev), torch.tensor([0, 2, 2], device=dev),
            torch.rand(5, 4, generator=g, device=dev) > 0.5)


class F64(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(8, 8)
        self.c = nn.Conv1d(8, 8, 3)

    def forward(self, x, h):  # (the sweep casts a module to float32: float64 weights made here)
        y = F.linear(x, self.l.weight.double(), self.l.bias.double()).transpose(1, 2)
        return F.conv1d(y, self.c.weight.double(), self.c.bias.double()).softmax(-1), h.half() * 2, (h.to(torch.bfloat16) @ h.to(torch.bfloat16).T).float()


class ChannelsLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.d = nn.Conv2d(8, 8, 3, groups=8)

    def forward(self, x):
        return self.d(F.relu(self.c(x))), x.permute(0, 2, 3, 1)[:, ::2]


class Norms(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.utils.parametrizations.weight_norm(nn.Linear(8, 8))
        self.s = nn.utils.parametrizations.spectral_norm(nn.Linear(8, 8))

    def forward(self, x):
        return self.s(self.w(x))


class Cond(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        y = torch.cond(x.sum() > 0, lambda t: self.l(t).relu(), lambda t: (t * 2).sigmoid(), (x,))
        return y + 1


class Ckpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x):
        return torch.utils.checkpoint.checkpoint(lambda t: self.b(self.a(t).relu()), x, use_reentrant=False)


class Linalg(nn.Module):
    def forward(self, a, b):
        s = a @ a.transpose(-1, -2) + torch.eye(a.shape[-1], device=a.device) * 4
        q, r = torch.linalg.qr(a)
        u, sv, vh = torch.linalg.svd(a, full_matrices=False)
        ev, evec = torch.linalg.eigh(s)
        L = torch.linalg.cholesky(s)
        return (torch.linalg.solve(s, b), torch.linalg.inv(s), q, r, sv, u.abs(), vh.abs(), ev, evec.abs(), L,
                torch.linalg.det(s), torch.linalg.slogdet(s), torch.cholesky_solve(b, L), torch.linalg.norm(a, dim=(-2, -1)),
                torch.linalg.matrix_norm(a, "nuc"), torch.linalg.pinv(a), torch.linalg.solve_ex(s, b).result,
                torch.linalg.solve_triangular(L, b, upper=False), torch.linalg.lu_factor(s), torch.linalg.matrix_exp(a * 0.1),
                torch.linalg.eigvalsh(s), torch.linalg.vector_norm(a, 3, -1), torch.linalg.cross(a[..., :3], b[..., :3]),
                torch.linalg.matrix_power(a, 3), torch.trace(a[0]), torch.logdet(s), torch.linalg.householder_product(a, sv[..., :3]))


class Views(nn.Module):
    def forward(self, z, x):
        w = z * 2
        return (w.conj(), w.imag, w.real, z.conj(), z.real, -x, x.neg().conj(),
                torch.fft.fft(w), torch.fft.ifft(z, norm="forward"), w.conj().resolve_conj(), w[:, ::2].conj())


def views_inputs(g, dev, dt):
    return torch.randn(3, 6, generator=g, device=dev, dtype=torch.cfloat), torch.randn(3, 6, generator=g, device=dev)


class Dtypes(nn.Module):
    def forward(self, x, i):
        f8 = x.to(torch.float8_e4m3fn)
        f8b = x.to(torch.float8_e5m2)
        u16 = i.to(torch.uint16)
        u32 = i.to(torch.uint32)
        c32 = x.to(torch.complex128)
        return (f8.float() * 2, f8b.to(torch.float16), f8, u16, u32.to(torch.int64) + 1, u16.to(torch.int32) * 3, c32 * c32,
                x.to(torch.bfloat16).exp(), x.half().sigmoid(), i.to(torch.int16) * 1000, i.to(torch.uint8) + 250, x.double().sin())


def dtypes_inputs(g, dev, dt):
    return torch.randn(4, 5, generator=g, device=dev), torch.randint(0, 300, (4, 5), generator=g, device=dev)


class Empty(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 3)

    def forward(self, x):
        e = x[:, :0]
        z = x[:0]
        return (self.l(z), e.sum(-1), torch.cat([e, x], 1), z.softmax(-1), x.new_zeros(0), e * 2, x.sum(), x.max(),
                x.argmax(), torch.tensor(3.0, device=x.device) * x.mean(), x.expand(3, -1, -1), x.unsqueeze(0).expand(2, 5, 4), x.t(), x[:, 1], x[::2, ::3])


class Special(nn.Module):
    def forward(self, x):
        p = x.sigmoid()
        return (torch.special.erf(x), torch.special.erfinv(p * 2 - 1), torch.special.gammaln(p + 1), torch.special.digamma(p + 1),
                torch.special.i0(x), torch.special.i1e(x), torch.special.logit(p, 1e-6), torch.special.xlogy(p, p),
                torch.special.bessel_j0(x), torch.special.ndtri(p), torch.special.polygamma(1, p + 1), torch.lgamma(x),
                torch.special.zeta(p + 2, p + 1), torch.special.sinc(x), torch.special.entr(p), torch.special.log_ndtr(x),
                torch.atan2(x, p), torch.hypot(x, p), torch.nextafter(x, p), torch.frexp(x), torch.ldexp(x, torch.tensor(2, device=x.device)),
                torch.fmod(x, 0.3), torch.remainder(x, -0.3), torch.copysign(x, -p), torch.logaddexp(x, p), x.frac(), x.trunc(),
                torch.nan_to_num(x.log(), nan=1.0, neginf=-5.0), x.round(decimals=2), torch.signbit(x), torch.heaviside(x, p),
                torch.isclose(x, p), torch.float_power(p, 2.5), torch.gcd(torch.tensor([12, 18], device=x.device), torch.tensor([8, 27], device=x.device)))


class FlexAttention(nn.Module):
    """Self-attention through ``flex_attention``: a causal ``score_mod`` with a relative bias (flex_attention builds
    its default block mask under ``torch.vmap``), and a ``create_block_mask`` sliding-window mask (session 40).
    Frozen: on a CPU flex_attention refuses inputs that require grad ("does not support backward on CPU"), and the
    sweep exports outside ``no_grad``."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96).requires_grad_(False)

    def forward(self, x):
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 4, 8).permute(2, 0, 3, 1, 4)
        y = flex_attention(q, k, v, score_mod=lambda s, b, h, qi, ki: torch.where(qi >= ki, s + (qi - ki) * 0.1,
                                                                                   -float("inf")))
        mask = create_block_mask(lambda b, h, qi, ki: (qi >= ki) & (qi - ki < 4), None, None, t, t, device=x.device)
        return y, flex_attention(y, k, v, block_mask=mask)


class Vmapped(nn.Module):
    """``torch.vmap`` in ``forward``: a module over the batch, ``in_dims`` with a shared operand, a nested vmap,
    ``chunk_size`` with two outputs, a parameter's matrix-vector product (session 40)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x, y):
        return (torch.vmap(self.lin)(x), torch.vmap(lambda r, s: r * s.sum(), in_dims=(0, None))(x, y),
                torch.vmap(torch.vmap(lambda e: e.exp()))(x),
                *torch.vmap(lambda r: (r.max(), r.argmax()), chunk_size=2)(x),
                torch.vmap(lambda r: torch.softmax(self.lin.weight @ r + y, -1))(x))


class Symmetric(nn.Module):
    def forward(self, w):
        return w.triu() + w.triu(1).transpose(-1, -2)


class Parametrized(nn.Module):
    """``torch.nn.utils.parametrize``: orthogonal maps (matrix exponential, Cayley, Householder), a user's
    parametrization, and the same parametrized weight read twice under ``parametrize.cached()`` (session 40)."""

    def __init__(self):
        super().__init__()
        from torch.nn.utils import parametrizations, parametrize
        self.o = parametrizations.orthogonal(nn.Linear(6, 6))
        self.c = parametrizations.orthogonal(nn.Linear(6, 6), orthogonal_map="cayley")
        self.h = parametrizations.orthogonal(nn.Linear(6, 4), orthogonal_map="householder")
        self.s = nn.Linear(6, 6)
        parametrize.register_parametrization(self.s, "weight", Symmetric())

    def forward(self, x):
        from torch.nn.utils import parametrize
        y = self.h(self.s(self.c(self.o(x))))
        with parametrize.cached():
            return y, self.s(self.s(x))


class ReusedTied(nn.Module):
    """One module applied several times, one submodule under two names, an embedding tied to the output layer, and
    ``torch.func.functional_call`` with a buffer standing for a weight (session 40)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(32, 16)
        self.step = nn.Linear(16, 16)
        self.block = nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.LayerNorm(16))
        self.alias = self.block
        self.head = nn.Linear(16, 32, bias=False)
        self.head.weight = self.emb.weight
        self.register_buffer("other", torch.randn(16, 16))

    def forward(self, ids):
        h = self.emb(ids)
        for _ in range(3):
            h = self.step(h).tanh()
        h = self.alias(self.block(h))
        return self.head(h), torch.func.functional_call(self.step, {"weight": self.other}, (h,))


class ScanGeneric(nn.Module):
    """``associative_scan`` in its generic mode (a vmap over the combine function, session 40)."""

    def forward(self, x):
        from torch._higher_order_ops.associative_scan import associative_scan
        return associative_scan(lambda a, b: a * b + b, x, dim=0, combine_mode="generic")


BLOCKS = [
    ("nn_transformer", TransformerFull, tf_inputs),  # (close: eval MHA's fast path, docs/aten.md "Limits")
    ("nn_mha_masks", MHA, mha_inputs),
    ("nn_encoder_decoder_layers", EncLayers, enc_inputs),
    ("nn_rnns", RNNs, tup(rnd(3, 5, 8), rnd(4, 3, 16), rnd(4, 3, 16))),
    ("nn_embedding_bag", Bag, bag_inputs),
    ("nn_embedding_max_norm", EmbMaxNorm, lambda g, dev, dt: (torch.randint(0, 20, (3, 5), generator=g, device=dev),)),
    ("nn_convs3d_transposed", Convs, tup(rnd(1, 3, 4, 16, 16))),
    ("nn_pools_indices", Pools, tup(rnd(2, 3, 12, 10), rnd(1, 2, 5, 6, 7))),
    ("nn_interpolate", Interp, tup(rnd(2, 4, 6, 8), rnd(1, 2, 3, 4, 5))),
    ("nn_sdpa_masks", SDPA, sdpa_inputs),
    ("nn_misc_ops", Misc, misc_inputs),
    ("nn_losses", Losses, loss_inputs),
    ("torch_fft", FFT, tup(rnd(2, 6, 8), rnd(2, 64))),
    ("complex_ops", Complex, complex_inputs),
    ("complex_views", Views, views_inputs),
    ("int8_bool_ops", IntBool, intbool_inputs),
    ("exotic_dtypes", Dtypes, dtypes_inputs),
    ("float64_half_bf16_cpu", F64, tup(lambda g, dev, dt: torch.randn(2, 5, 8, generator=g, device=dev, dtype=torch.float64),
                                       rnd(4, 4))),
    ("empty_scalar_views", Empty, tup(rnd(5, 4))),
    ("torch_linalg", Linalg, tup(rnd(2, 5, 5), rnd(2, 5, 3))),
    ("torch_special", Special, tup(rnd(4, 6))),
    ("inplace_index_ops", InPlace, inplace_inputs),
    ("channels_last_conv", lambda: ChannelsLast().to(memory_format=torch.channels_last),
     lambda g, dev, dt: (torch.randn(2, 3, 8, 8, generator=g, device=dev).to(dt).to(memory_format=torch.channels_last),)),
    ("weight_spectral_norm", Norms, tup(rnd(3, 8))),
    ("torch_cond", Cond, tup(rnd(2, 4))),
    ("checkpoint_fn", Ckpt, tup(rnd(2, 8))),
]

#: session 40's blocks (apart from session 39's ``BLOCKS``, which its tests count)
BLOCKS40 = [
    ("flex_attention", FlexAttention, tup(rnd(2, 16, 32))),
    ("vmap_fns", Vmapped, tup(rnd(5, 6), rnd(6))),
    ("parametrize_maps", Parametrized, tup(rnd(3, 6))),
    ("reused_tied", ReusedTied, lambda g, dev, dt: (torch.randint(0, 32, (2, 5), generator=g, device=dev),)),
    ("assoc_scan_generic", ScanGeneric, tup(rnd(6, 3))),
]
