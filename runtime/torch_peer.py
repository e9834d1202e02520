"""The same Llama step in PyTorch, as a peer user would write it: the benchmark's baseline.

f16 weights and activations (RMSNorm in f32), ``F.linear`` (cuBLAS), RoPE on adjacent pairs,
``index_copy_`` into the KV cache, ``F.scaled_dot_product_attention`` with GQA and the same additive
mask. Three ways to run it, because "PyTorch" is not one number: eager (what most users run), eager
captured in a ``torch.cuda.CUDAGraph`` (no host launch overhead), and each layer ``torch.compile``d
(inductor: fused Triton kernels around cuBLAS) and captured the same way, the strongest baseline a
PyTorch user gets without writing kernels. The per-layer body is one function of its weights and caches
(``make_layer``), so one compiled artifact serves every layer and compile time does not grow with depth.

It also measures how fast PyTorch reads 4 GiB (``read_bandwidth``): the benchmark's HBM roofline is the
best read rate either side reaches, so neither our kernel nor PyTorch's reduction sets it alone.

Run as a subprocess by ``runtime.bench`` (prints one JSON line), so its CUDA context, caching allocator
and compiler stay out of the pycuda runtime's process.
"""

from __future__ import annotations

import functools
import json
import statistics
import time

from .torch_timing import event_ms

#: the per-layer tensors, in the order ``make_layer``'s function takes them after ``x``
LAYER_TENSORS = ("attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w_gate", "w_up", "w_down", "k_cache", "v_cache")

READ_BYTES = 4 << 30


def build(cfg, device="cuda", dtype=None):
    """Random weights (seed 0) and KV caches: a list of per-layer dicts (keys ``LAYER_TENSORS``) and the
    top (``out_norm``, ``w_out``). ``dtype``: f16 unless given (the CPU tests may pass float32)."""
    import torch

    from .models import llama as L

    torch.manual_seed(0)
    dt = torch.float16 if dtype is None else dtype
    dm = L.dims(cfg)
    H, kvd, F = cfg.hidden, dm["kvd"], cfg.ffn

    def mat(n, k):
        return ((torch.rand(n, k, device=device) * 2 - 1) * (3.0 / k) ** 0.5).to(dt)

    layers = []
    for _ in range(cfg.layers):
        layers.append({
            "attn_norm": torch.ones(H, device=device, dtype=dt), "wq": mat(H, H), "wk": mat(kvd, H),
            "wv": mat(kvd, H), "wo": mat(H, H), "ffn_norm": torch.ones(H, device=device, dtype=dt),
            "w_gate": mat(F, H), "w_up": mat(F, H), "w_down": mat(H, F),
            "k_cache": torch.randn(dm["cache_rows"], kvd, device=device).to(dt),
            "v_cache": torch.randn(dm["cache_rows"], kvd, device=device).to(dt),
        })
    top = {"out_norm": torch.ones(H, device=device, dtype=dt), "w_out": mat(cfg.vocab, H)}
    return layers, top


def _rms(x, w):
    import torch

    from .models import llama as L

    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + L.RMS_EPS)).to(x.dtype) * w


def make_layer(cfg, use_sdpa=True):
    """One decoder layer as a function of everything it reads: ``layer(x, *LAYER_TENSORS, idx, mask, cos,
    sin) -> x``. Only the config's sizes (the same in every layer) are Python constants, so torch.compile
    traces it once and its guards (shapes, dtypes, strides) pass for every layer."""
    import torch
    import torch.nn.functional as Fn

    from .models import llama as L

    dm = L.dims(cfg)
    B, H, d, n_kv = dm["B"], cfg.hidden, dm["d"], dm["n_kv"]
    nh, nkv = cfg.heads, cfg.kv_heads

    def rope(x, cos, sin):  # [B, h, d]
        xf = x.float().view(B, -1, d // 2, 2)
        x0, x1 = xf[..., 0], xf[..., 1]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).view(B, -1, d).to(x.dtype)

    def layer(x, attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down, k_cache, v_cache, idx, mask, cos, sin):
        h = _rms(x, attn_norm)
        q = rope(Fn.linear(h, wq).view(B, nh, d), cos, sin)
        k = rope(Fn.linear(h, wk).view(B, nkv, d), cos, sin)
        v = Fn.linear(h, wv)
        k_cache.index_copy_(0, idx, k.reshape(B, -1))
        v_cache.index_copy_(0, idx, v)
        K = k_cache[:n_kv].view(n_kv, nkv, d).transpose(0, 1)[None]   # [1, nkv, n_kv, d]
        V = v_cache[:n_kv].view(n_kv, nkv, d).transpose(0, 1)[None]
        qh = q.transpose(0, 1)[None]                                  # [1, nh, B, d]
        if use_sdpa:
            a = Fn.scaled_dot_product_attention(qh, K, V, attn_mask=mask, enable_gqa=True)
        else:
            Kr = K.repeat_interleave(nh // nkv, dim=1)
            Vr = V.repeat_interleave(nh // nkv, dim=1)
            s = (qh @ Kr.transpose(-1, -2)).float() / d ** 0.5 + mask.float()
            a = torch.softmax(s, -1).to(x.dtype) @ Vr
        a = a[0].transpose(0, 1).reshape(B, H)
        x = x + Fn.linear(a, wo)
        h = _rms(x, ffn_norm)
        return x + Fn.linear(Fn.silu(Fn.linear(h, w_gate)) * Fn.linear(h, w_up), w_down)

    return layer


def head(x, out_norm, w_out):
    """Final RMSNorm and LM head."""
    import torch.nn.functional as Fn

    return Fn.linear(_rms(x, out_norm), w_out)


def make_step(cfg, layers, top, inputs, device="cuda", use_sdpa=True, compile=None):
    """``step(x) -> logits`` and the step's input ``x``, in the weights' dtype. ``compile``: None (eager),
    or a function applied to the layer function and to ``head`` (e.g. ``torch.compile``): the final norm
    and LM head are compiled too, as a second artifact, so the compiled step has no eager op left."""
    import torch

    from .models import llama as L

    dt = top["w_out"].dtype
    d = L.dims(cfg)["d"]
    pos = torch.as_tensor(inputs["pos"], device=device).long()
    idx = torch.as_tensor(inputs["kv_idx"], device=device).long()
    mask = torch.as_tensor(inputs["mask"], device=device).to(dt)[None, None]  # [1,1,B,n_kv]
    inv = L.ROPE_BASE ** (-(2.0 * torch.arange(d // 2, device=device, dtype=torch.float32)) / d)
    th = pos.float()[:, None] * inv[None, :]
    cos, sin = torch.cos(th)[:, None, :], torch.sin(th)[:, None, :]   # [B,1,d/2]
    x_in = torch.as_tensor(inputs["inp"], device=device).to(dt)
    layer, top_fn = make_layer(cfg, use_sdpa), head
    if compile is not None:
        layer, top_fn = compile(layer), compile(head)

    def step(x):
        for lw in layers:
            x = layer(x, *(lw[k] for k in LAYER_TENSORS), idx, mask, cos, sin)
        return top_fn(x, top["out_norm"], top["w_out"])

    return step, x_in


def read_bandwidth(nbytes: int = READ_BYTES, reps: int = 10) -> dict:
    """PyTorch reading ``nbytes`` of random f16 on the GPU: bytes/s (median of ``reps``) of a full
    reduction (``sum`` to f32, and ``amax``); the better one is ``read_bandwidth_bytes_per_s``."""
    import torch

    by_op = _read_rates(torch, torch.empty(nbytes // 2, dtype=torch.float16, device="cuda").uniform_(-1, 1), reps)
    torch.cuda.empty_cache()
    return {"read_bandwidth_bytes_per_s": max(by_op.values()), "read_bandwidth_by_op": by_op, "read_bytes": nbytes}


def _read_rates(torch, t, reps: int) -> dict[str, float]:
    out = {}
    for name, fn in (("sum", lambda: t.sum(dtype=torch.float32)), ("amax", lambda: torch.amax(t))):
        event_ms(torch, fn, 2)
        ms = statistics.median(event_ms(torch, fn, 1) for _ in range(reps))
        out[name] = t.numel() * t.element_size() / (ms / 1e3)
    return out


def rel_l2(a, b) -> float:
    """||a - b|| / ||b|| in float64."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _capture(torch, step, x):
    """``step`` captured in a CUDA graph (warmed up on a side stream first, as torch.cuda.graphs asks):
    (graph, its output tensor)."""
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
    return g, y


def _compiled_step(torch, cfg, layers, top, inputs, sdpa):
    """(step, x, info): the layer (and head) torch.compiled (inductor), compiled by a first call whose
    wall seconds are ``info["compile_s"]``: ``fullgraph=True``, else (graph breaks) without it, else
    with the hand-written attention in place of SDPA. ``info["compile_graphs"]``: the graphs dynamo
    compiled, 2 (layer, head) when no layer recompiled. Raises the first attempt's error if all fail."""
    from torch._dynamo.utils import counters

    errors = []
    for fullgraph, use_sdpa in ((True, sdpa), (False, sdpa), *(((True, False),) if sdpa else ())):
        torch._dynamo.reset()
        graphs0, hits0 = counters["stats"]["unique_graphs"], counters["inductor"]["fxgraph_cache_hit"]
        c = functools.partial(torch.compile, fullgraph=fullgraph, dynamic=False)
        step, x = make_step(cfg, layers, top, inputs, use_sdpa=use_sdpa, compile=c)
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                step(x)
            torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 - reported in the JSON, the other modes still run
            errors.append(exc)
            continue
        return step, x, {"compile_s": round(time.perf_counter() - t0, 2), "compile_fullgraph": fullgraph,
                         "compile_sdpa": use_sdpa, "compile_graphs": counters["stats"]["unique_graphs"] - graphs0,
                         # graphs inductor found in its on-disk cache (a rerun's compile_s is mostly these)
                         "compile_cache_hits": counters["inductor"]["fxgraph_cache_hit"] - hits0,
                         "compile_attempts_failed": [f"{type(e).__name__}: {e}"[:300] for e in errors]}
    raise errors[0]


def run(name: str, batch: int, steps: int, rounds: int, *, compile: bool = True) -> dict:
    import torch

    from .models import llama as L

    cfg = L.config(name, batch=batch)
    layers, top = build(cfg)
    inputs = L.make_inputs(cfg, seed=1)
    step, x = make_step(cfg, layers, top, inputs)
    sdpa = True
    try:
        with torch.no_grad():
            step(x)
        torch.cuda.synchronize()
    except Exception:
        sdpa = False
        step, x = make_step(cfg, layers, top, inputs, use_sdpa=False)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        y_eager = step(x)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base

    g, y = _capture(torch, step, x)
    out = {"torch": torch.__version__, "sdpa": sdpa, "peak_activation_bytes": int(peak),
           "dtype": "f16 weights and activations"}

    def eager():
        with torch.no_grad():
            step(x)

    timers = {"eager": (eager, max(2, steps // 10)), "graph": (g.replay, steps)}
    if compile:
        try:
            stepc, xc, info = _compiled_step(torch, cfg, layers, top, inputs, sdpa)
            gc, yc = _capture(torch, stepc, xc)
            gc.replay()
            torch.cuda.synchronize()
            # every step writes the same cache rows with the same values, so the outputs are comparable
            err = rel_l2(yc, y_eager)
            out.update(info, compile_rel_err_vs_eager=err, compile_close_to_eager=err < 1e-2)
            timers["compile"] = (gc.replay, steps)
        except Exception as exc:  # noqa: BLE001
            out["compile"] = {"error": f"{type(exc).__name__}: {exc}"[-2000:]}

    samples: dict[str, list[float]] = {k: [] for k in timers}
    for fn, n in timers.values():
        event_ms(torch, fn, min(n, 3))
    for _ in range(rounds):
        for k, (fn, n) in timers.items():
            samples[k].append(event_ms(torch, fn, n))
    assert torch.isfinite(y.float()).all()
    for lab, ms in samples.items():
        m = statistics.median(ms)
        out[lab] = {"ms_per_step": round(m, 4), "ms_spread": [round(min(ms), 4), round(max(ms), 4)],
                    "tokens_per_s": round(batch / (m / 1e3), 1)}
    return out


def main(argv=None) -> int:
    from .models import llama as L
    from .tool_args import (
        MAX_REPEATS,
        ToolArgError,
        ToolParser,
        count_in,
        llama_graphs,
        need_torch_cuda,
        one_name,
        tool_error,
    )

    ap = ToolParser(prog="python -m runtime.torch_peer")
    ap.add_argument("--config", default="1b", help=f"one of {', '.join(L.CONFIGS)}")
    ap.add_argument("--batch", type=count_in(1), default=1)
    ap.add_argument("--steps", type=count_in(1, MAX_REPEATS), default=50)
    ap.add_argument("--rounds", type=count_in(1, MAX_REPEATS), default=5)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile + CUDA graph mode")
    ap.add_argument("--read-bandwidth-only", action="store_true",
                    help="only measure PyTorch's read of 4 GiB (bytes/s) and print that")
    a = ap.parse_args(argv)
    try:   # an unknown config, --batch 0 or a machine without a GPU were tracebacks (torch's, after the build)
        if a.read_bandwidth_only:   # (they were ignored: the read ran, as if it had been of that config)
            idle = [f"--{k.replace('_', '-')}" for k in ("config", "batch", "steps", "rounds", "no_compile")
                    if getattr(a, k) != ap.get_default(k)]
            if idle:
                raise ToolArgError(f"{', '.join(idle)} with --read-bandwidth-only: that measures PyTorch's read of "
                                   "4 GiB alone, no model (give one or the other)")
        else:
            llama_graphs([one_name(a.config, "--config", L.CONFIGS)], [a.batch])
        need_torch_cuda()
    except ToolArgError as exc:
        return tool_error("runtime.torch_peer", exc)
    if a.read_bandwidth_only:
        import torch

        print(json.dumps({"torch": torch.__version__, **read_bandwidth()}))
        return 0
    print(json.dumps(run(a.config, a.batch, a.steps, a.rounds, compile=not a.no_compile)))
    return 0


if __name__ == "__main__":
    from .tool_args import run_main

    raise SystemExit(run_main(main, "runtime.torch_peer"))
