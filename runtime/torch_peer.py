"""The same Llama step in PyTorch, as a peer user would write it: the benchmark's baseline.

f16 weights and activations (RMSNorm in f32), ``F.linear`` (cuBLAS), RoPE on adjacent pairs,
``index_copy_`` into the KV cache, ``F.scaled_dot_product_attention`` with GQA and the same additive
mask; eager and ``torch.cuda.graphs``. Run as a subprocess by ``runtime.bench`` (prints one JSON line),
so its CUDA context and caching allocator stay out of the pycuda runtime's process.
"""

from __future__ import annotations

import argparse
import json
import statistics

from .torch_timing import event_ms


def build(cfg, device="cuda"):
    import torch

    from .models import llama as L

    torch.manual_seed(0)
    dm = L.dims(cfg)
    H, kvd, F = cfg.hidden, dm["kvd"], cfg.ffn
    f16 = torch.float16

    def mat(n, k):
        return ((torch.rand(n, k, device=device) * 2 - 1) * (3.0 / k) ** 0.5).to(f16)

    layers = []
    for _ in range(cfg.layers):
        layers.append({
            "attn_norm": torch.ones(H, device=device, dtype=f16), "wq": mat(H, H), "wk": mat(kvd, H),
            "wv": mat(kvd, H), "wo": mat(H, H), "ffn_norm": torch.ones(H, device=device, dtype=f16),
            "w_gate": mat(F, H), "w_up": mat(F, H), "w_down": mat(H, F),
            "k_cache": torch.randn(dm["cache_rows"], kvd, device=device).to(f16),
            "v_cache": torch.randn(dm["cache_rows"], kvd, device=device).to(f16),
        })
    top = {"out_norm": torch.ones(H, device=device, dtype=f16), "w_out": mat(cfg.vocab, H)}
    return layers, top


def make_step(cfg, layers, top, inputs, device="cuda", use_sdpa=True):
    import torch
    import torch.nn.functional as Fn

    from .models import llama as L

    dm = L.dims(cfg)
    B, H, d, n_kv = dm["B"], cfg.hidden, dm["d"], dm["n_kv"]
    nh, nkv = cfg.heads, cfg.kv_heads
    pos = torch.as_tensor(inputs["pos"], device=device).long()
    idx = torch.as_tensor(inputs["kv_idx"], device=device).long()
    mask = torch.as_tensor(inputs["mask"], device=device).to(torch.float16)[None, None]  # [1,1,B,n_kv]
    inv = L.ROPE_BASE ** (-(2.0 * torch.arange(d // 2, device=device, dtype=torch.float32)) / d)
    th = pos.float()[:, None] * inv[None, :]
    cos, sin = torch.cos(th)[:, None, :], torch.sin(th)[:, None, :]   # [B,1,d/2]
    x_in = torch.as_tensor(inputs["inp"], device=device).to(torch.float16)

    def rms(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + L.RMS_EPS)).to(torch.float16) * w

    def rope(x):  # [B, h, d]
        xf = x.float().view(B, -1, d // 2, 2)
        x0, x1 = xf[..., 0], xf[..., 1]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).view(B, -1, d).to(torch.float16)

    def step(x):
        for lw in layers:
            h = rms(x, lw["attn_norm"])
            q = rope(Fn.linear(h, lw["wq"]).view(B, nh, d))
            k = rope(Fn.linear(h, lw["wk"]).view(B, nkv, d))
            v = Fn.linear(h, lw["wv"])
            lw["k_cache"].index_copy_(0, idx, k.reshape(B, -1))
            lw["v_cache"].index_copy_(0, idx, v)
            K = lw["k_cache"][:n_kv].view(n_kv, nkv, d).transpose(0, 1)[None]   # [1, nkv, n_kv, d]
            V = lw["v_cache"][:n_kv].view(n_kv, nkv, d).transpose(0, 1)[None]
            qh = q.transpose(0, 1)[None]                                        # [1, nh, B, d]
            if use_sdpa:
                a = Fn.scaled_dot_product_attention(qh, K, V, attn_mask=mask, enable_gqa=True)
            else:
                Kr = K.repeat_interleave(nh // nkv, dim=1)
                Vr = V.repeat_interleave(nh // nkv, dim=1)
                s = (qh @ Kr.transpose(-1, -2)).float() / d ** 0.5 + mask.float()
                a = (torch.softmax(s, -1).to(torch.float16) @ Vr)
            a = a[0].transpose(0, 1).reshape(B, H)
            x = x + Fn.linear(a, lw["wo"])
            h = rms(x, lw["ffn_norm"])
            x = x + Fn.linear(Fn.silu(Fn.linear(h, lw["w_gate"])) * Fn.linear(h, lw["w_up"]), lw["w_down"])
        return Fn.linear(rms(x, top["out_norm"]), top["w_out"])

    return step, x_in


def run(name: str, batch: int, steps: int, rounds: int) -> dict:
    import torch

    from .models import llama as L

    cfg = L.config(name, batch=batch)
    layers, top = build(cfg)
    inputs = L.make_inputs(cfg, seed=1)
    step, x = make_step(cfg, layers, top, inputs)
    sdpa = True
    try:
        step(x)
        torch.cuda.synchronize()
    except Exception:
        sdpa = False
        step, x = make_step(cfg, layers, top, inputs, use_sdpa=False)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        step(x)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.no_grad():
        for _ in range(3):
            step(x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g), torch.no_grad():
        y = step(x)
    torch.cuda.synchronize()

    def timed(fn, n):
        return event_ms(torch, fn, n)

    def eager():
        with torch.no_grad():
            step(x)

    eager_ms, graph_ms = [], []
    timed(eager, 2)
    timed(g.replay, 3)
    for _ in range(rounds):
        eager_ms.append(timed(eager, max(2, steps // 10)))
        graph_ms.append(timed(g.replay, steps))
    assert torch.isfinite(y.float()).all()
    out = {"torch": torch.__version__, "sdpa": sdpa, "peak_activation_bytes": int(peak),
           "dtype": "f16 weights and activations"}
    for lab, ms in (("eager", eager_ms), ("graph", graph_ms)):
        m = statistics.median(ms)
        out[lab] = {"ms_per_step": round(m, 4), "ms_spread": [round(min(ms), 4), round(max(ms), 4)],
                    "tokens_per_s": round(batch / (m / 1e3), 1)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.torch_peer")
    ap.add_argument("--config", default="1b")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.config, a.batch, a.steps, a.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
