"""Property-based fuzzing of the ATen executor: random small torch programs equal eager bit for bit (CPU),
and every plan's bits equal the 1-stream plan's (CUDA).

Why: the hand-written models of ``test_aten.py`` cover the lowerings someone thought of; the bugs live in the
combinations nobody wrote down (an in-place write through a transposed slice of a cast intermediate, a view of
an input returned beside a reduction...). Each example is an ``nn.Module`` whose ``forward`` replays 3-12 random
steps drawn from a menu of views, in-place ops on intermediates (and on views of them), elementwise and integer
ops with broadcasting, reductions, ``cat``/``stack``/``split``/``chunk``/``unbind``, products (``matmul``,
``linear``, ``bmm``, ``baddbmm``, ``einsum``), convolutions, norms, attention, embeddings, scatters, ``cumsum``,
``topk``/``sort``, padding, resampling, copies and dtype casts, composite ops that return their input or views
of it (eval dropouts, ``broadcast_tensors``, ``type_as``), ``torch.cond``, on f32/f64/f16/bf16 inputs (contiguous,
reversed, at an offset, channels-last). It is exported,
compiled with ``streams=1`` and ``streams=3`` and a poisoned arena, and called twice with fresh inputs; every
output must equal eager's (dtype, shape, every element; NaN where eager has NaN) and the caller's inputs must be
left as eager leaves them.

Steps are drawn while running them eagerly on the example inputs, so a step eager itself refuses (shapes that
do not broadcast, an in-place write into an expanded view) is dropped at draw time rather than wasting an
example. Programs ``torch.export`` rejects are skipped; an executor refusal (``AtenExecutorError`` or
``GraphError``) passes only if it names a node (``REFUSALS`` collects them; run with ``-s`` to see them).

``MEMPLAN_FUZZ_EXAMPLES=400 python -m pytest tests/test_aten_fuzz.py -s --hypothesis-show-statistics`` runs a
longer CPU campaign; ``MEMPLAN_FUZZ_GPU_EXAMPLES=400 python -m pytest tests/test_aten_fuzz.py -m gpu -s`` a CUDA
one (``check_modes``, below).
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.streams import CAPTURE_NONE, stream_capture_status  # noqa: E402

EXAMPLES = int(os.environ.get("MEMPLAN_FUZZ_EXAMPLES", "6"))
REFUSALS: Counter = Counter()

F = torch.nn.functional
DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}
CASTS = {**DTYPES, "i64": torch.int64, "i32": torch.int32, "bool": torch.bool}
LAYOUTS = ["contiguous", "reversed", "offset", "channels_last"]   # of the caller's inputs (``_fresh``)
MAX_LIST = 64       # the longest constant (indices, a mask) a step draws element by element
MAX_NUMEL = 4096    # the largest value a step may make (repeat, outer products and padding compound)
INT_OPS = ("floor_divide", "remainder", "bitwise_and", "bitwise_or", "bitwise_xor")
EINSUMS = {   # equations by (t.dim(), other.dim()); None: one operand
    (1, 1): ["i,i->", "i,j->ij"], (2, 2): ["ij,jk->ik", "ij,ij->i", "ij,kj->ik", "ij,ij->"],
    (2, 1): ["ij,j->i"], (3, 3): ["bij,bjk->bik", "bij,bkj->bik", "bij,bij->b"],
    (4, 4): ["bhld,bhmd->bhlm", "bhlm,bhmd->bhld"],
}
EINSUMS_1 = {1: ["i->", "i...->..."], 2: ["ij->ji", "ii->i", "ij->", "...ij->...ji"], 3: ["bij->bji", "bii->bi", "...ij->...j"],
             4: ["...ij->...ji", "bhld->bld"]}
UNARY = {
    "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "sin": torch.sin, "relu": torch.relu,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "sqrt": torch.sqrt, "log": torch.log,
    "reciprocal": torch.reciprocal, "floor": torch.floor, "scale": lambda t: t * 2.5, "shift": lambda t: t + 1,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum,
    "minimum": torch.minimum,
}


def _weight(shape: tuple, seed: int, dtype: str = "f32", role: str = "param") -> torch.Tensor:
    """A weight (linear/conv weight, norm scale: ``role`` "param") or running statistic (a buffer: "mean",
    or "var", positive; "state": an f32 buffer ``forward`` updates) made from its step's parameters, so the
    eager draw and the module share it."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    return (w.abs() + 0.5 if role == "var" else w).to(DTYPES[dtype] if role != "state" else torch.float32)


def _const(values: list, shape: tuple, like: torch.Tensor, dtype=None) -> torch.Tensor:
    """A constant (indices, a mask) made in ``forward`` on the device of the value it indexes: the same
    program runs on the CPU and on CUDA."""
    return torch.tensor(values, dtype=dtype, device=like.device).reshape(shape)


def apply_step(env: list, step: tuple, weights: dict) -> None:
    """Run one step on the value pool ``env`` (list of tensors): append its result, or write in place.

    The one interpreter both the drawing (eager, on the example inputs) and ``Fuzzed.forward`` (traced by
    ``torch.export``) run, so the module replays exactly the steps that worked eagerly."""
    kind, a, *p = step
    t = env[a]
    if kind == "unary":
        env.append(UNARY[p[0]](t))
    elif kind == "binary":
        env.append(BINARY[p[0]](t, env[p[1]]))
    elif kind == "binary_reduced":   # broadcasting against a keepdim reduction of another value
        env.append(BINARY[p[0]](t, env[p[1]].sum(p[2], keepdim=True)))
    elif kind == "view_flat":
        env.append(t.view(-1))
    elif kind == "view_split":
        env.append(t.view(p[0], -1))
    elif kind == "reshape":
        env.append(t.reshape(p[0], -1))
    elif kind == "transpose":
        env.append(t.transpose(p[0], p[1]))
    elif kind == "permute":
        env.append(t.permute(*p[0]))
    elif kind == "slice":
        dim, start, end, stride = p
        env.append(t.narrow(dim, start, end - start)[(slice(None),) * dim + (slice(None, None, stride),)])
    elif kind == "select":
        env.append(t.select(p[0], p[1]))
    elif kind == "expand":
        env.append(t.unsqueeze(0).expand(p[0], *t.shape))
    elif kind == "unsqueeze":
        env.append(t.unsqueeze(p[0]))
    elif kind == "add_":
        t.add_(env[p[0]]) if p[0] is not None else t.add_(1.5)
    elif kind == "unary_":
        getattr(t, p[0])()
    elif kind == "fill_":
        t.fill_(p[0])
    elif kind == "div_":
        t.div_(env[p[0]])
    elif kind == "meta_":   # in-place metadata ops: the value itself changes shape/strides
        if p[0] == "transpose_":
            t.transpose_(p[1], p[2])
        elif p[0] == "unsqueeze_":
            t.unsqueeze_(p[1])
        else:
            t.squeeze_(p[1])
    elif kind == "select_copy_":
        t.select(p[0], p[1]).copy_(env[p[2]].reshape(-1)[:1].reshape(()))
    elif kind == "diagonal":
        env.append(t.diagonal(0, p[0], p[1]))
    elif kind == "flip":
        env.append(t.flip(p[0]))
    elif kind == "squeeze":
        env.append(t.squeeze(p[0]))
    elif kind == "as_strided":
        env.append(t.as_strided(p[0], p[1], p[2]))
    elif kind == "channels_last":
        env.append(t.contiguous(memory_format=torch.channels_last))
    elif kind == "mul_":
        t.mul_(p[0])
    elif kind == "clamp_":
        t.clamp_(p[0], p[1])
    elif kind == "copy_slice_":
        dim, start, length, src = p
        win = t.narrow(dim, start, length)
        u = env[src]
        win.copy_(u.reshape(-1)[: win.numel()].view(win.shape) if u.numel() >= win.numel() else u.sum())
    elif kind == "masked_fill_":
        t.masked_fill_(env[p[0]] > 0, p[1])
    elif kind == "index_put_":
        idx = _const(p[0], (len(p[0]),), t, torch.int64)
        t.index_put_((idx,), env[p[1]].sum().to(t.dtype), accumulate=p[2])
    elif kind == "cat":
        env.append(torch.cat([t, env[p[1]]], p[0]))
    elif kind == "stack":
        env.append(torch.stack([t, env[p[1]]], p[0]))
    elif kind == "split":
        env.append(t.split(p[0], p[1])[p[2]])
    elif kind == "matmul":
        env.append(t @ env[p[0]])
    elif kind == "matmul_t":
        env.append(t @ t.transpose(-1, -2))
    elif kind == "linear":
        env.append(F.linear(t, weights[p[0]]))
    elif kind == "reduce":
        env.append(getattr(t, p[0])(p[1], keepdim=p[2]))
    elif kind == "softmax":
        env.append(torch.softmax(t, p[0]))
    elif kind == "where":
        env.append(torch.where(t > 0, t, env[p[0]]))
    elif kind == "index_select":
        env.append(torch.index_select(t, p[0], _const(p[1], (len(p[1]),), t, torch.int64)))
    elif kind == "gather":
        env.append(torch.gather(t, p[0], _const(p[1], p[2], t, torch.int64)))
    elif kind == "conv":    # conv1d / conv2d: weight, bias, stride, padding, dilation, groups
        w = weights[p[0]]   # conv1d of (C, L) or (N, C, L), conv2d of (C, H, W) or (N, C, H, W)
        conv = F.conv1d if w.dim() == 3 else F.conv2d
        env.append(conv(t, w, weights.get(p[1]), p[2], p[3], p[4], p[5]))
    elif kind == "layer_norm":
        env.append(F.layer_norm(t, t.shape[t.dim() - p[0]:], weights.get(p[1]), weights.get(p[2])))
    elif kind == "group_norm":
        env.append(F.group_norm(t, p[0], weights.get(p[1]), weights.get(p[2])))
    elif kind == "batch_norm":   # eval: running statistics read, not written
        env.append(F.batch_norm(t, weights[p[0]], weights[p[1]], weights.get(p[2]), weights.get(p[3]),
                                training=False, eps=p[4]))
    elif kind == "log_softmax":
        env.append(F.log_softmax(t, p[0]))
    elif kind == "sdpa":
        kv = env[p[0]] if p[0] is not None else t
        mask_kind, m, is_causal, scale = p[1:]
        mask = None
        if mask_kind == "value":        # another value as an additive float mask (broadcast)
            mask = env[m]
        elif mask_kind == "value_bool":
            mask = env[m] > 0
        elif mask_kind == "const_bool":
            mask = _const(m, (t.shape[-2], kv.shape[-2]), t, torch.bool)
        env.append(F.scaled_dot_product_attention(t, kv, kv, attn_mask=mask, is_causal=is_causal, scale=scale))
    elif kind == "embedding":    # rows of the value itself, by constant indices
        env.append(F.embedding(_const(p[0], p[1], t, torch.int64), t))
    elif kind == "embedding_ids":  # indices computed from the value (data-dependent rows): integers modulo
        w = weights[p[0]]         # the rows, floats' ranks along their last dimension
        ids = torch.argsort(t, dim=-1, stable=True) if t.is_floating_point() else t.abs() % w.shape[0]
        env.append(F.embedding(ids, w))
    elif kind in ("scatter_", "scatter_add_"):
        dim, idx, ishape, o = p
        index = _const(idx, ishape, t, torch.int64)
        u = env[o]
        fits = u.dim() == t.dim() and all(i <= s for i, s in zip(ishape, u.shape))
        src = u.to(t.dtype) if fits else t * 0.5
        if kind == "scatter_":
            t.scatter_(dim, index, src if fits else -2.0)
        else:
            t.scatter_add_(dim, index, src)
    elif kind == "index_add_":
        dim, idx, o, alpha = p
        index = _const(idx, (len(idx),), t, torch.int64)
        u, want = env[o], t.shape[:dim] + (len(idx),) + t.shape[dim + 1:]
        t.index_add_(dim, index, u.to(t.dtype) if u.shape == want else t.index_select(dim, index) * 0.5,
                     alpha=alpha)
    elif kind == "cumsum":
        env.append(torch.cumsum(t, p[0], dtype=CASTS[p[1]] if p[1] else None))
    elif kind == "topk":
        values, indices = torch.topk(t, p[0], p[1], largest=p[2])
        env.extend([values, indices] if p[3] else [values])
    elif kind == "sort":
        values, indices = torch.sort(t, dim=p[0], descending=p[1], stable=True)
        env.extend([values, indices])
    elif kind == "pad":
        env.append(F.pad(t, p[0], mode=p[1], value=p[2] if p[1] == "constant" else None))
    elif kind == "interpolate":
        mode, size, align = p   # a (C, L) value as a batch of one
        env.append(F.interpolate(t if t.dim() > 2 else t[None], size=size, mode=mode, align_corners=align))
    elif kind in ("bmm", "baddbmm"):   # t (a batch of matrices) times another value, or times its own transpose
        u = env[p[0]]
        if not (u.dim() == 3 and u.shape[:2] == (t.shape[0], t.shape[2])):
            u = t.transpose(1, 2)
        if kind == "bmm":
            env.append(torch.bmm(t, u))
        else:
            bias = env[p[1]]
            want = (t.shape[0], t.shape[1], u.shape[2])
            env.append(torch.baddbmm(bias if bias.shape == want else t[..., :1], t, u, beta=p[2], alpha=p[3]))
    elif kind == "einsum":
        env.append(torch.einsum(p[1], t) if p[0] is None else torch.einsum(p[1], t, env[p[0]]))
    elif kind == "clamp":      # bounds: numbers or other values (broadcast)
        if p[0] is None:
            env.append(torch.clamp(t, min=p[1], max=p[2]))
        else:   # a tensor bound takes a tensor other bound
            hi = None if p[2] is None else _const(p[2], (), t, t.dtype)
            env.append(torch.clamp(t, min=env[p[0]], max=hi))
    elif kind == "pow":
        env.append(torch.pow(t, env[p[0]] if p[1] else p[0]))
    elif kind == "int_op":   # floor_divide, remainder, bitwise ops; integer divisors kept nonzero
        op, o, scalar = p
        u = env[o] if scalar is None else scalar
        if op in ("floor_divide", "remainder") and isinstance(u, torch.Tensor) and not u.is_floating_point():
            u = u.abs() + 1
        env.append(getattr(torch, op)(t, u))
    elif kind == "bitwise_not":
        env.append(torch.bitwise_not(t))
    elif kind == "compare":    # booleans for the integer ops (and a mask)
        env.append(getattr(torch, p[0])(t, env[p[1]] if p[1] is not None else 0))
    elif kind == "chunk":
        env.append(t.chunk(p[0], p[1])[p[2]])
    elif kind == "unbind":
        env.append(t.unbind(p[0])[p[1]])
    elif kind == "roll":
        env.append(torch.roll(t, p[0], p[1]))
    elif kind == "repeat":
        env.append(t.repeat(*p[0]))
    elif kind == "tile":
        env.append(torch.tile(t, p[0]))
    elif kind == "narrow":
        env.append(t.narrow(p[0], p[1], p[2]))
    elif kind == "contiguous":
        env.append(t.contiguous())
    elif kind == "clone":
        env.append(t.clone())
    elif kind == "cast":
        env.append(t.to(CASTS[p[0]]))
    elif kind == "dropout_eval":   # eval dropout and its kin return their input itself (no alias in their schema)
        env.append(getattr(F, p[0])(t, 0.25, training=False))
    elif kind == "broadcast":      # expands of both, another composite op returning views
        env.extend(torch.broadcast_tensors(t, env[p[0]]))
    elif kind == "type_as":        # the input itself where the dtypes agree, else a cast
        env.append(t.type_as(env[p[0]]))
    elif kind == "cond":           # a data-dependent branch; the other value read inside both branches
        u = env[p[2]]
        env.append(torch.cond(t.sum() > 0, lambda a, b: UNARY[p[0]](a) + b.float().sum().to(a.dtype),
                              lambda a, b: UNARY[p[1]](a) - b.float().mean().to(a.dtype), (t, u)))
    elif kind == "state_":         # a buffer updated in forward (a running statistic, a counter) and read
        buf = weights[p[0]]
        buf.mul_(0.5).add_(t.float().sum().to(buf.dtype))
        env.append(buf * 1)
    else:  # pragma: no cover - a typo in the menu
        raise AssertionError(kind)


class Fuzzed(torch.nn.Module):
    """``forward`` replays ``steps`` over its inputs and returns the values ``outputs`` names (with the
    last view named in ``out_views`` applied: a view of an intermediate or of an input)."""

    def __init__(self, n_inputs: int, steps: list, outputs: list, linears: dict):
        super().__init__()
        self.n_inputs, self.steps, self.outputs = n_inputs, steps, outputs
        self.ws = torch.nn.ParameterDict({str(k): torch.nn.Parameter(_weight(*v)) for k, v in linears.items()
                                          if v[3] == "param"})
        for k, v in linears.items():   # running statistics are buffers, as in batch norm
            if v[3] != "param":
                self.register_buffer(f"stat{k}", _weight(*v))

    def forward(self, *xs):
        env = list(xs)
        weights = {int(k): w for k, w in self.ws.items()}
        weights.update({int(k[4:]): b for k, b in self.named_buffers() if k.startswith("stat")})
        for step in self.steps:
            apply_step(env, step, weights)
        outs = []
        for i, view in self.outputs:
            o = env[i]
            if view == "t" and o.dim() >= 2:
                o = o.transpose(0, 1)
            elif view == "row" and o.dim() >= 1 and o.shape[0] > 1:
                o = o[1:]
            elif view == "expand":
                o = o.unsqueeze(0).expand(2, *o.shape)
            elif view == "flat":
                o = o.reshape(-1)
            outs.append(o)
        return tuple(outs)


NEW_KINDS = [
    "conv", "layer_norm", "group_norm", "batch_norm", "log_softmax", "sdpa", "embedding", "embedding_ids",
    "scatter_", "scatter_add_", "index_add_", "cumsum", "topk", "sort", "pad", "interpolate", "bmm", "baddbmm",
    "einsum", "clamp", "pow", "int_op", "bitwise_not", "compare", "chunk", "unbind", "roll", "repeat", "tile", "narrow",
    "dropout_eval", "broadcast", "type_as", "cond"]
WRITES = ("add_", "mul_", "clamp_", "copy_slice_", "masked_fill_", "index_put_", "unary_", "fill_", "div_",
          "meta_", "select_copy_", "scatter_", "scatter_add_", "index_add_")


def _distinct_index(draw, shape: tuple, dim: int, gpu: bool) -> tuple[list, tuple] | None:
    """A scatter index (values along ``dim``, the shape of at most ``shape``) and its shape. Distinct along
    ``dim`` where ``gpu``: CUDA's scatter of two values to one place keeps either, and atomics add
    duplicates in any order, so 1 and 3 streams could differ by more than the plan (the CPU adds in order).
    None where the index would be too long to draw quickly."""
    ishape = tuple(draw(st.integers(1, s)) if s else 0 for s in shape)
    n = 1
    for s in ishape:
        n *= s
    if n > MAX_LIST:
        return None
    if not gpu:
        return draw(st.lists(st.integers(0, shape[dim] - 1), min_size=n, max_size=n)), ishape
    off = draw(st.integers(0, shape[dim] - 1))
    inner = 1
    for s in ishape[dim + 1:]:
        inner *= s
    return [(off + (k // inner) % ishape[dim]) % shape[dim] for k in range(n)], ishape


def _draw_step(draw, env: list, roots: list, linears: dict, gpu: bool = False, stateful: bool = False
               ) -> tuple | None:
    """One step's parameters, chosen from the shapes of the pool's current values (None: nothing fits).
    ``gpu``: only steps whose result CUDA computes the same way every time (no duplicate scatter indices,
    no tie order of ``topk``'s indices). ``stateful``: buffers updated in ``forward`` too (``state_``), for
    harnesses that give eager and each compiled program a module of their own."""
    n = len(env)
    a = draw(st.integers(0, n - 1))
    t = env[a]
    nd, shape = t.dim(), tuple(t.shape)
    other = draw(st.integers(0, n - 1))
    dt = next((k for k, v in DTYPES.items() if v == t.dtype), "f32")

    def param(pshape: tuple, role: str = "param") -> int:
        k = len(linears)
        linears[k] = (tuple(pshape), draw(st.integers(0, 1000)), dt, role)
        return k

    kind = draw(st.sampled_from([
        "unary", "binary", "binary_reduced", "view_flat", "view_split", "reshape", "transpose", "permute",
        "slice", "select", "expand", "unsqueeze", "add_", "mul_", "clamp_", "copy_slice_", "masked_fill_",
        "index_put_", "cat", "stack", "split", "matmul", "matmul_t", "linear", "reduce", "softmax", "where",
        "index_select", "gather", "contiguous", "clone", "cast", "unary_", "fill_", "div_", "meta_",
        "select_copy_", "diagonal", "flip", "squeeze", "as_strided", "channels_last"] + NEW_KINDS
        + (["state_"] if stateful else [])))
    if kind in WRITES and roots[a] == "input" and (kind == "meta_" or not draw(st.booleans())):
        # writes mostly go to intermediates and views of them; sometimes to the caller's inputs. Never a
        # metadata write (``x.transpose_``) to an input: torch.export fails on it, or (zero-size inputs)
        # exports a program that leaves the caller's tensor as it was
        return None
    if kind == "state_":
        return (kind, a, param((draw(st.integers(1, 3)),), "state"))
    if kind in NEW_KINDS:
        return _draw_new_step(draw, kind, a, t, other, env, param, gpu)
    if kind == "unary":
        return (kind, a, draw(st.sampled_from(sorted(UNARY))))
    if kind == "binary":
        return (kind, a, draw(st.sampled_from(sorted(BINARY))), other)
    if kind == "binary_reduced":
        o = env[other]
        if o.dim() == 0:
            return None
        return (kind, a, draw(st.sampled_from(sorted(BINARY))), other, draw(st.integers(0, o.dim() - 1)))
    if kind == "view_flat":
        return (kind, a)
    if kind in ("view_split", "reshape"):
        divs = [d for d in range(1, t.numel() + 1) if t.numel() % d == 0] or [1]
        return (kind, a, draw(st.sampled_from(divs)))
    if nd == 0 and kind in ("transpose", "permute", "slice", "select", "split", "reduce", "softmax",
                            "index_select", "gather", "copy_slice_", "index_put_", "cat", "stack", "matmul_t"):
        return None
    if kind == "transpose":
        return (kind, a, draw(st.integers(0, nd - 1)), draw(st.integers(0, nd - 1)))
    if kind == "permute":
        return (kind, a, tuple(draw(st.permutations(range(nd)))))
    if kind == "slice":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        start = draw(st.integers(0, shape[dim] - 1))
        end = draw(st.integers(start + 1, shape[dim]))
        return (kind, a, dim, start, end, draw(st.integers(1, 2)))
    if kind == "select":
        dim = draw(st.integers(0, nd - 1))
        return (kind, a, dim, draw(st.integers(0, max(shape[dim] - 1, 0))))
    if kind == "expand":
        return (kind, a, draw(st.integers(1, 3)))
    if kind == "unsqueeze":
        return (kind, a, draw(st.integers(0, nd)))
    if kind == "add_":
        return (kind, a, draw(st.sampled_from([None, other])))
    if kind == "unary_":
        return (kind, a, draw(st.sampled_from(["relu_", "sigmoid_", "neg_", "exp_", "zero_", "abs_"])))
    if kind == "fill_":
        return (kind, a, draw(st.sampled_from([0.0, 2.5, -1.0])))
    if kind == "div_":
        return (kind, a, other)
    if kind == "meta_":
        op = draw(st.sampled_from(["transpose_", "unsqueeze_", "squeeze_"]))
        if op == "unsqueeze_":
            return (kind, a, op, draw(st.integers(0, nd)))
        if nd == 0:
            return None
        return (kind, a, op, draw(st.integers(0, nd - 1)), draw(st.integers(0, nd - 1)))
    if kind in ("select_copy_", "diagonal", "flip", "squeeze") and nd == 0:
        return None
    if kind == "select_copy_":
        dim = draw(st.integers(0, nd - 1))
        return (kind, a, dim, draw(st.integers(0, max(shape[dim] - 1, 0))), other)
    if kind == "diagonal":
        if nd < 2:
            return None
        d0, d1 = draw(st.permutations(range(nd)))[:2]
        return (kind, a, d0, d1)
    if kind == "flip":
        return (kind, a, tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=2))))))
    if kind == "squeeze":
        return (kind, a, draw(st.integers(0, nd - 1)))
    if kind == "as_strided":
        if not t.is_contiguous() or t._base is not None or t.numel() < 2:
            return None
        size = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
        stride = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        off = draw(st.integers(0, 1))
        if off + (size[0] - 1) * stride[0] + (size[1] - 1) * stride[1] >= t.numel():
            return None
        return (kind, a, size, stride, off)
    if kind == "channels_last":
        return (kind, a) if nd == 4 else None
    if kind == "mul_":
        return (kind, a, draw(st.sampled_from([0.5, -2.0, 3.0])))
    if kind == "clamp_":
        return (kind, a, draw(st.sampled_from([-1.0, -0.25, None])), draw(st.sampled_from([0.5, 2.0])))
    if kind == "copy_slice_":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        start = draw(st.integers(0, shape[dim] - 1))
        return (kind, a, dim, start, draw(st.integers(1, shape[dim] - start)), other)
    if kind == "masked_fill_":
        return (kind, a, draw(st.sampled_from([a, other])), draw(st.sampled_from([0.0, -7.5, float("nan")])))
    if kind == "index_put_":
        if shape[0] == 0:
            return None
        idx = draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=3))
        return (kind, a, idx, other, draw(st.booleans()))
    if kind in ("cat", "stack"):
        hi = nd - 1 if kind == "cat" else nd
        return (kind, a, draw(st.integers(0, hi)), draw(st.sampled_from([a, other])))
    if kind == "split":
        dim = draw(st.integers(0, nd - 1))
        size = draw(st.integers(1, max(shape[dim], 1)))
        pieces = -(-shape[dim] // size)
        return (kind, a, size, dim, draw(st.integers(0, max(pieces - 1, 0))))
    if kind == "matmul":
        return (kind, a, other)
    if kind == "matmul_t":
        return (kind, a) if nd >= 2 else None
    if kind == "linear":
        if nd == 0:
            return None
        return (kind, a, param((draw(st.integers(1, 5)), shape[-1])))
    if kind == "reduce":
        return (kind, a, draw(st.sampled_from(["sum", "mean", "amax"])), draw(st.integers(0, nd - 1)),
                draw(st.booleans()))
    if kind == "softmax":
        return (kind, a, draw(st.integers(0, nd - 1)))
    if kind == "where":
        return (kind, a, other)
    if kind == "index_select":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        return (kind, a, dim, draw(st.lists(st.integers(0, shape[dim] - 1), min_size=1, max_size=4)))
    if kind == "gather":
        dim = draw(st.integers(0, nd - 1))
        if shape[dim] == 0:
            return None
        ishape = list(shape)
        ishape[dim] = draw(st.integers(1, 3))
        numel = 1
        for s in ishape:
            numel *= s
        if numel > MAX_LIST:
            return None
        return (kind, a, dim, draw(st.lists(st.integers(0, shape[dim] - 1), min_size=numel, max_size=numel)),
                tuple(ishape))
    if kind in ("contiguous", "clone"):
        return (kind, a)
    return ("cast", a, draw(st.sampled_from(sorted(CASTS))))


def _draw_new_step(draw, kind: str, a: int, t: torch.Tensor, other: int, env: list, param, gpu: bool
                   ) -> tuple | None:
    """The parameters of the steps real models use beyond the first menu (convolutions, norms, attention,
    scatters, sorting, padding, resampling, batched products, integer arithmetic, chunking), or None."""
    nd, shape = t.dim(), tuple(t.shape)
    if kind == "bitwise_not":
        return None if t.is_floating_point() else (kind, a)
    if kind == "dropout_eval":
        return (kind, a, draw(st.sampled_from(["dropout", "alpha_dropout", "feature_alpha_dropout"])))
    if kind in ("broadcast", "type_as"):
        return (kind, a, other)
    if kind == "cond":
        if not t.is_floating_point():
            return None
        ops = sorted(UNARY)
        return (kind, a, draw(st.sampled_from(ops)), draw(st.sampled_from(ops)), other)
    if kind == "compare":
        return (kind, a, draw(st.sampled_from(["gt", "le", "eq", "ne"])), draw(st.sampled_from([other, None])))
    if kind == "int_op":
        ops = INT_OPS[:2] if t.is_floating_point() else INT_OPS
        scalar = draw(st.sampled_from([None, None, 3, 5, True] if t.dtype == torch.bool else [None, None, 3, -2]))
        return (kind, a, draw(st.sampled_from(ops)), other, scalar)
    if kind == "pow":
        if draw(st.booleans()):
            return (kind, a, other, True)
        return (kind, a, draw(st.sampled_from([2, 3, 0.5, -1, 2.0])), False)
    if kind == "clamp":
        lo = draw(st.sampled_from([None, other]))
        return (kind, a, lo, draw(st.sampled_from([-0.5, 0.0])), draw(st.sampled_from([None, 1.0])))
    if kind == "einsum":
        o = env[other]
        unary = draw(st.booleans())
        eqs = EINSUMS_1.get(nd) if unary else EINSUMS.get((nd, o.dim()))
        if not eqs:
            return None
        return (kind, a, None if unary else other, draw(st.sampled_from(eqs)))
    if kind in ("bmm", "baddbmm") and nd != 3:
        return None
    if kind == "bmm":
        return (kind, a, other)
    if kind == "baddbmm":
        return (kind, a, other, draw(st.integers(0, len(env) - 1)), draw(st.sampled_from([0.0, 1.0, 0.5])),
                draw(st.sampled_from([1.0, -2.0])))
    if kind == "embedding":
        if nd != 2 or shape[0] == 0:
            return None
        ishape = tuple(draw(st.lists(st.integers(0, 3), min_size=1, max_size=2)))
        numel = 1
        for s in ishape:
            numel *= s
        if numel > MAX_LIST:
            return None
        return (kind, a, draw(st.lists(st.integers(0, shape[0] - 1), min_size=numel, max_size=numel)), ishape)
    if kind == "embedding_ids":
        if t.is_floating_point():
            if nd == 0 or shape[-1] == 0:
                return None
            rows = shape[-1]
        else:
            rows = draw(st.integers(1, 6))
        return (kind, a, param((rows, draw(st.integers(1, 4)))))
    if nd == 0 or (kind in ("conv", "layer_norm", "group_norm", "batch_norm", "sdpa", "interpolate")
                   and not t.is_floating_point()):
        return None
    dim = draw(st.integers(0, nd - 1))
    if kind == "conv":
        if nd not in (2, 3, 4):
            return None
        spatial = draw(st.sampled_from([s for s in (1, 2) if nd - s in (1, 2)]))
        c = shape[nd - spatial - 1]
        if c == 0:
            return None
        groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
        k = draw(st.integers(1, 3))
        stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        padding = draw(st.sampled_from([0, 1, "same"])) if stride == 1 else draw(st.integers(0, 1))
        out = groups * draw(st.integers(1, 2))
        w = param((out, c // groups) + (k,) * spatial)
        return (kind, a, w, param((out,)) if draw(st.booleans()) else None, stride, padding, dilation, groups)
    if kind == "layer_norm":
        k = draw(st.integers(1, min(nd, 2)))
        norm = shape[nd - k:]
        affine = draw(st.booleans())
        return (kind, a, k, param(norm) if affine else None, param(norm) if affine and draw(st.booleans()) else None)
    if kind == "group_norm":
        if nd < 2 or shape[1] == 0:
            return None
        c = shape[1]
        g = draw(st.sampled_from([d for d in range(1, c + 1) if c % d == 0]))
        affine = draw(st.booleans())
        return (kind, a, g, param((c,)) if affine else None, param((c,)) if affine else None)
    if kind == "batch_norm":
        if nd < 2:
            return None
        c = shape[1]
        affine = draw(st.booleans())
        return (kind, a, param((c,), "mean"), param((c,), "var"), param((c,)) if affine else None,
                param((c,)) if affine else None, draw(st.sampled_from([1e-5, 1e-3])))
    if kind == "log_softmax":
        return (kind, a, dim)
    if kind == "sdpa":
        if nd < 2:
            return None
        kv = draw(st.sampled_from([None, other]))
        s_len = env[kv].shape[-2] if kv is not None and env[kv].dim() >= 2 else shape[-2]
        mask_kind = draw(st.sampled_from([None, None, "value", "value_bool", "const_bool"]))
        m = draw(st.integers(0, len(env) - 1))
        if mask_kind == "const_bool":
            if shape[-2] * s_len > MAX_LIST:
                return None
            m = draw(st.lists(st.booleans(), min_size=shape[-2] * s_len, max_size=shape[-2] * s_len))
        is_causal = mask_kind is None and draw(st.booleans())
        return (kind, a, kv, mask_kind, m, is_causal, draw(st.sampled_from([None, 0.5])))
    if kind in ("scatter_", "scatter_add_"):
        if 0 in shape:
            return None
        index = _distinct_index(draw, shape, dim, gpu or kind == "scatter_")
        return None if index is None else (kind, a, dim, *index, other)
    if kind == "index_add_":
        if shape[dim] == 0:
            return None
        if gpu:
            idx = draw(st.lists(st.integers(0, shape[dim] - 1), min_size=1, max_size=shape[dim], unique=True))
        else:
            idx = draw(st.lists(st.integers(0, shape[dim] - 1), min_size=1, max_size=4))
        return (kind, a, dim, idx, other, draw(st.sampled_from([1, 2])))
    if kind == "cumsum":
        return (kind, a, dim, draw(st.sampled_from([None, None, "f64", "i64"])))
    if kind == "topk":
        return (kind, a, draw(st.integers(0, shape[dim])), dim, draw(st.booleans()), not gpu)
    if kind == "sort":
        return (kind, a, dim, draw(st.booleans()))
    if kind == "pad":
        mode = draw(st.sampled_from(["constant", "constant"] + (["reflect", "replicate", "circular"] if nd > 1 else [])))
        k = draw(st.integers(1, min(nd if mode == "constant" else nd - 1, 2)))   # reflect...: a batch dim
        pads = tuple(draw(st.lists(st.integers(-1 if mode == "constant" else 0, 2), min_size=2 * k, max_size=2 * k)))
        return (kind, a, pads, mode, draw(st.sampled_from([0.0, -3.5])))
    if kind == "interpolate":
        if nd not in (2, 3, 4):
            return None
        mode = draw(st.sampled_from(["nearest", "nearest-exact"] + (["bilinear"] if nd == 4 else ["linear"])))
        size = tuple(draw(st.integers(1, 6)) for _ in range(max(nd, 3) - 2))
        align = draw(st.booleans()) if "linear" in mode else None
        return (kind, a, mode, size, align)
    if kind == "chunk":
        chunks = draw(st.integers(1, 3))
        got = len(t.chunk(chunks, dim))
        return (kind, a, chunks, dim, draw(st.integers(0, got - 1))) if got else None
    if kind == "unbind":
        return (kind, a, dim, draw(st.integers(0, shape[dim] - 1))) if shape[dim] else None
    if kind == "roll":
        return (kind, a, draw(st.integers(-3, 3)), dim)
    if kind in ("repeat", "tile"):
        lo = nd if kind == "repeat" else 1
        return (kind, a, tuple(draw(st.lists(st.integers(1, 2), min_size=lo, max_size=nd + 1))))
    # narrow
    start = draw(st.integers(0, shape[dim]))
    return (kind, a, dim, start, draw(st.integers(0, shape[dim] - start)))


def _aliases_input(t: torch.Tensor, inputs: tuple) -> bool:
    base = t._base if t._base is not None else t
    return any(base.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for x in inputs)


@st.composite
def programs(draw, gpu: bool = False, stateful: bool = False):
    """(module, input shapes) of a random program that runs eagerly on its example inputs; the inputs'
    dtypes are ``module.dtypes``. ``gpu``: steps CUDA computes the same way on every run; ``stateful``:
    buffers updated in ``forward`` (``_draw_step``)."""
    n_inputs = draw(st.integers(1, 2))
    sizes = st.integers(1, 5) | st.just(0) if draw(st.integers(0, 7)) == 0 else st.integers(1, 5)
    shapes = [tuple(draw(st.lists(sizes, min_size=1, max_size=4))) for _ in range(n_inputs)]
    dtypes = [draw(st.sampled_from(["f32"] * 5 + ["f64", "f16", "bf16"])) for _ in range(n_inputs)]
    xs = tuple(torch.randn(s, dtype=DTYPES[d]) for s, d in zip(shapes, dtypes))
    env, steps, linears = [x.clone() for x in xs], [], {}
    inputs = tuple(env)
    roots = ["input"] * n_inputs
    target = draw(st.integers(3, 12))
    tries = 0
    while len(steps) < target and tries < 80:
        tries += 1
        trial_linears = dict(linears)
        step = _draw_step(draw, env, roots, trial_linears, gpu, stateful)
        if step is None:
            continue
        weights = {k: _weight(*v) for k, v in trial_linears.items()}
        try:
            snapshot = [e.clone() for e in env]
            apply_step(env, step, weights)
        except (RuntimeError, IndexError, ValueError, TypeError, NotImplementedError):
            for e, s in zip(env, snapshot):   # undo a partial write before the error (rare)
                if e.dtype == s.dtype and e.shape == s.shape:
                    try:
                        e.copy_(s)
                    except RuntimeError:
                        pass
            del env[len(roots):]
            continue
        if any(e.numel() > MAX_NUMEL for e in env[len(roots):]):
            del env[len(roots):]
            continue
        while len(env) > len(roots):   # topk and sort add two values
            roots.append("input" if _aliases_input(env[len(roots)], inputs) else "intermediate")
        linears = trial_linears
        steps.append(step)
    assume(steps)
    # the last value always (else export drops most steps as dead code), and up to two others
    picks = [len(env) - 1] + [draw(st.integers(0, len(env) - 1)) for _ in range(draw(st.integers(0, 2)))]
    outputs = [(i, draw(st.sampled_from(["", "", "t", "row", "expand", "flat"]))) for i in picks]
    module = Fuzzed(n_inputs, steps, outputs, linears)
    module.dtypes = dtypes
    return module, shapes


def _same(out: torch.Tensor, ref: torch.Tensor) -> bool:
    """Bitwise equal as ``torch.equal`` sees it, NaN where eager has NaN."""
    if out.dtype != ref.dtype or out.shape != ref.shape:
        return False
    if ref.is_floating_point():
        nan = ref.isnan()
        if not torch.equal(nan, out.isnan()):
            return False
        return torch.equal(out[~nan], ref[~nan])
    return torch.equal(out, ref)


def _fresh(shape: tuple, layout: str, dtype: str = "f32", device: str = "cpu") -> torch.Tensor:
    """A fresh input of ``shape``: contiguous, with its dimensions reversed in memory, at an offset into a
    larger buffer (a caller's slice), or channels-last (4-D; others contiguous): the executor copies inputs
    in, and must write back the ones the program mutates into the caller's own layout."""
    kw = {"dtype": DTYPES[dtype], "device": device}
    if layout == "reversed":
        return torch.randn(shape[::-1], **kw).permute(*range(len(shape) - 1, -1, -1))
    if layout == "offset":
        return torch.randn((3,) + tuple(shape), **kw)[1]
    if layout == "channels_last" and len(shape) == 4:
        return torch.randn(shape, **kw).contiguous(memory_format=torch.channels_last)
    return torch.randn(shape, **kw)


def _fresh_like(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` with its strides and storage offset (``clone`` would keep strides, not the offset)."""
    buf = torch.empty(x.untyped_storage().nbytes() // x.element_size(), dtype=x.dtype, device=x.device)
    y = buf.as_strided(x.shape, x.stride(), x.storage_offset())
    y.copy_(x)
    return y


def _eager_fails_on(module, xs: tuple) -> bool:
    """Whether eager's call on copies of ``xs`` in their own layouts raises (a ``view`` of a transposed input)."""
    try:
        with torch.no_grad():
            module(*(_fresh_like(x) for x in xs))
    except RuntimeError:
        return True
    return False


def _refused(exc: Exception) -> None:
    """A compile or capture refusal: a program ``torch.export`` rejects is no example; any other refusal
    must name a node (collected in ``REFUSALS``)."""
    msg = str(exc)
    if msg.startswith("torch.export failed"):
        event(f"export rejects: {msg.split(': ', 1)[-1][:60]}")
    assume(not msg.startswith("torch.export failed"))
    assert "node " in msg, f"a refusal that names no node: {msg}"
    REFUSALS[msg.split(":")[0]] += 1
    print("REFUSAL:", msg)
    event("refused")


def _compile_modes(module, example: tuple, modes: tuple, device: str = "cpu") -> dict | None:
    """``{(streams, cuda_graph): compiled}`` on one export with a poisoned arena, or None after a refusal."""
    compiled: dict = {}
    program = None
    for streams, graph in modes:
        try:
            c = compile(module, example, streams=streams, cuda_graph=graph, device=device, poison=True,
                        program=program)
        except (AtenExecutorError, GraphError) as exc:
            _refused(exc)
            return None
        program = c.program
        compiled[(streams, graph)] = c
    return compiled


def _fresh_inputs(module, shapes: list, layouts: list, device: str) -> tuple[tuple, tuple]:
    """(the executor's inputs in ``layouts``, eager's contiguous copies of them). Eager runs on contiguous
    copies: the layout the export traced (on another layout a ``reshape`` of an input copies instead of
    aliasing it, and eager's in-place writes reach the input or not); the executor takes inputs as values,
    so whatever their layout it must give these results."""
    xs = tuple(_fresh(s, layout, d, device) for s, layout, d in zip(shapes, layouts, module.dtypes))
    return xs, tuple(x.clone(memory_format=torch.contiguous_format) for x in xs)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 20,
          suppress_health_check=list(HealthCheck))
@given(programs(), st.lists(st.sampled_from(LAYOUTS), min_size=2, max_size=2))
def test_random_programs_equal_eager_bitwise(capfd, prog, layouts):
    module, shapes = prog
    note(f"steps={module.steps} outputs={module.outputs} shapes={shapes} dtypes={module.dtypes}")
    event(f"{len(module.steps)} steps")
    for kind in sorted({k for k, *_ in module.steps}):
        event(f"step {kind}")
    if any(k.endswith("_") for k, *_ in module.steps):
        event("writes in place")
    example = tuple(torch.randn(s, dtype=DTYPES[d]) for s, d in zip(shapes, module.dtypes))
    compiled = _compile_modes(module, example, ((1, False), (3, False)))
    if compiled is None:
        return
    for _ in range(2):
        xs, eager_in = _fresh_inputs(module, shapes, layouts, "cpu")
        with torch.no_grad():
            ref = module(*eager_in)
        fails = _eager_fails_on(module, xs)
        for c in compiled.values():
            run_in = tuple(_fresh_like(x) for x in xs)
            capfd.readouterr()
            try:
                out = c(*run_in)
            except AtenExecutorError as exc:
                # eager fails on the caller's layout (a view of a transposed input): so may the call (round 50,
                # ``eager_views``), naming the node; where the program cannot tell (a contiguous() it recorded
                # nothing for) it gives eager's results on the export's layout, as below
                assert fails and exc.node is not None, exc
                event("refused as eager fails on the caller's layout")
                continue
            # an out= kernel resizing a planned view warns (C++, on fd 2) and will be an error in torch
            assert "resized" not in capfd.readouterr().err, "a launch resized its planned result"
            assert len(out) == len(ref)
            for i, (o, r) in enumerate(zip(out, ref)):
                assert _same(o, r), f"output {i} ({c.plan.streams} streams) differs from eager"
            for i, (x, e) in enumerate(zip(run_in, eager_in)):
                assert _same(x, e), f"input {i} ({c.plan.streams} streams) left otherwise than eager leaves it"


# --- CUDA mode -------------------------------------------------------------------------------------------
# The same programs on ``device="cuda"``: 1 and 3 streams, each with and without a CUDA graph, and the
# 3-stream plan issued eagerly again with random delays before random nodes. Every mode must give the
# 1-stream bits (the plan may change where values live and when kernels run, never what they compute);
# against eager only as close as the executor promises on CUDA (docs/aten.md, Correctness: f32 results whose
# eager path takes other kernels than the executor's ``out=`` calls, cuBLAS's choice among them included,
# are within rounding, bitwise across plans). ``check_modes`` is the whole check; on the CPU (graphs and
# delays accepted, then ignored) CI runs it on a few programs, so only the device and the tolerance differ.

GPU_EXAMPLES = int(os.environ.get("MEMPLAN_FUZZ_GPU_EXAMPLES", "40"))
MODES = ((1, False), (3, False), (1, True), (3, True))


def _event(msg: str) -> None:
    """``hypothesis.event``, a no-op outside a Hypothesis test (the unit test of ``_close_to_eager``)."""
    try:
        event(msg)
    except InvalidArgument:
        pass


def _close_to_eager(out: torch.Tensor, ref: torch.Tensor, what: str, exact: bool) -> None:
    """``out`` equals eager's ``ref``: bitwise where ``exact`` (the CPU runs eager's kernels), else to
    rounding. Integers and booleans on CUDA come from floats too (``x > 0``, ranks, casts), and a float one
    rounding off eager's flips one now and then: at most 1% of them (at least one) may differ. Every result
    that is only close is an event."""
    if _same(out, ref):
        return
    assert not exact, f"{what} differs from eager"
    assert out.dtype == ref.dtype and out.shape == ref.shape, f"{what}: {out.dtype}{tuple(out.shape)} from eager's " \
                                                             f"{ref.dtype}{tuple(ref.shape)}"
    if not ref.is_floating_point():
        _event("integer result off eager")
        wrong = int((out != ref).sum())
        assert wrong <= max(1, ref.numel() // 100), f"{what}: {wrong} of {ref.numel()} differ from eager"
        return
    _event("close to eager, not bitwise")
    tol = {"rtol": 1e-4, "atol": 1e-4} if ref.dtype in (torch.float32, torch.float64) else {}
    torch.testing.assert_close(out, ref, equal_nan=True, msg=lambda m: f"{what} not close to eager: {m}", **tol)


def check_modes(module, shapes: list, layouts: list, device: str, rng, capfd=None) -> None:
    """Every mode of ``MODES`` on ``device`` (plus the 3-stream plan with delays) equals the 1-stream plan
    bitwise, outputs and written-back inputs, on two calls with fresh inputs, and eager as ``_close_to_eager``
    says; refusals pass only when they name a node."""
    exact = device == "cpu"
    example = tuple(_fresh(s, "contiguous", d, device) for s, d in zip(shapes, module.dtypes))
    compiled = _compile_modes(module, example, MODES, device)
    if compiled is None:
        return
    if compiled[(3, False)].plan.streams > 1 and compiled[(3, False)].plan.events:
        event("3 streams with events")
    nodes = [n for n, _s in compiled[(3, False)].plan.order]
    for call in range(2):
        xs, eager_in = _fresh_inputs(module, shapes, layouts, device)
        with torch.no_grad():
            ref = module(*eager_in)
        runs = [(k, None) for k in compiled]
        if nodes:   # ~0.01-0.2 ms of GPU sleep before a quarter of the nodes, on whatever stream each runs
            runs.append(((3, False), {n: rng.randrange(10_000, 400_000)
                                      for n in rng.sample(nodes, max(1, len(nodes) // 4))}))
        base = None
        for key, delays in runs:
            c = compiled.get(key)
            if c is None:   # a graph mode refused at capture
                continue
            what = f"call {call}, {c.plan.streams} streams, graph={key[1]}, delays={bool(delays)}"
            run_in = tuple(_fresh_like(x) for x in xs)
            if capfd is not None:
                capfd.readouterr()
            try:
                out = c(*run_in, delays=delays)
            except AtenExecutorError as exc:
                if not key[1] or "captured" not in str(exc):
                    raise
                _refused(exc)   # a graph this device cannot capture: named; the eager-issue modes go on
                compiled.pop(key)
                continue
            if device != "cpu":
                torch.cuda.synchronize()
            if capfd is not None:
                assert "resized" not in capfd.readouterr().err, f"{what}: a launch resized its planned result"
            got = tuple(out) + run_in
            if base is None:   # the 1-stream plan issued eagerly: the bits every other mode must give
                base = got
                for i, (o, r) in enumerate(zip(got, tuple(ref) + eager_in)):
                    _close_to_eager(o, r, f"{what}: {'output' if i < len(ref) else 'input'} {i}", exact)
                continue
            for i, (o, b) in enumerate(zip(got, base)):
                assert _same(o, b), f"{what}: {'output' if i < len(ref) else 'input'} {i} differs from 1 stream"


def test_the_cuda_comparison_with_eager_is_as_strict_as_documented():
    """``_close_to_eager``'s CUDA branch, which only the GPU test reaches otherwise: rounding passes on CUDA
    and fails on the CPU; a wrong value, a wrong shape, or many flipped integers fail everywhere."""
    t = torch.tensor
    _close_to_eager(t([1.0, 2.0]), t([1.0, 2.00001]), "rounding", exact=False)
    _close_to_eager(t([True] * 99 + [False]), t([True] * 100), "one flip in 100", exact=False)
    _close_to_eager(t([1.0, float("nan")]), t([1.0, float("nan")]), "nan", exact=True)
    for out, ref, exact in [(t([1.0, 2.0]), t([1.0, 2.00001]), True), (t([1.0]), t([1.1]), False),
                            (t([1.0]), t([1.0, 1.0]), False), (t([3] * 10), t([2] * 10), False),
                            (t([1.0], dtype=torch.float16), t([1.0]), False)]:
        with pytest.raises(AssertionError):
            _close_to_eager(out, ref, "wrong", exact)


@settings(max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(programs(gpu=True), st.lists(st.sampled_from(LAYOUTS), min_size=2, max_size=2),
       st.randoms(use_true_random=False))
def test_the_cuda_mode_check_on_the_cpu(capfd, prog, layouts, rng):
    """``check_modes`` (graphs and delays accepted, then ignored) run on the CPU: the CUDA test's code path
    is CI's too."""
    module, shapes = prog
    note(f"steps={module.steps} outputs={module.outputs} shapes={shapes} dtypes={module.dtypes}")
    check_modes(module, shapes, layouts, "cpu", rng, capfd)


@pytest.mark.gpu(backend="torch")
@settings(max_examples=GPU_EXAMPLES, deadline=None, derandomize=GPU_EXAMPLES <= 40,
          suppress_health_check=list(HealthCheck))
@given(programs(gpu=True), st.lists(st.sampled_from(LAYOUTS), min_size=2, max_size=2),
       st.randoms(use_true_random=False))
def test_random_programs_on_cuda_equal_one_stream_bitwise(capfd, prog, layouts, rng):
    module, shapes = prog
    note(f"steps={module.steps} outputs={module.outputs} shapes={shapes} dtypes={module.dtypes}")
    _deterministic_cuda()
    gc.collect()   # the last example's executors (their graphs and arenas) go before this one's come
    module.to("cuda")
    try:   # a step the CPU ran that CUDA has no kernel for (rare) is no example
        with torch.no_grad():
            module(*(_fresh(s, "contiguous", d, "cuda") for s, d in zip(shapes, module.dtypes)))
    except (RuntimeError, NotImplementedError) as exc:
        event(f"eager CUDA refuses: {str(exc)[:60]}")
        assume(False)
    try:
        check_modes(module, shapes, layouts, "cuda", rng, capfd)
    finally:
        _no_cuda_state_left()


def _no_cuda_state_left() -> None:
    """After an example, the caller's CUDA state is as it was: the default stream current, no capture open on
    it. A capture left open made every later CUDA op of the process fail (``torch.randn``: "Offset increment
    outside graph capture encountered unexpectedly", every later example): the example that left it must fail."""
    current = torch.cuda.current_stream()
    assert current == torch.cuda.default_stream(), f"the example left stream {current} current"
    status = stream_capture_status(torch, "cuda")
    assert status in (None, CAPTURE_NONE), f"the example left a CUDA stream capture open (status {status})"
    try:   # the default generator handed back (a failed capture's end left it capturing: see streams.py)
        torch.randn(1, device="cuda")
    except RuntimeError as exc:
        raise AssertionError(f"the example left CUDA's random ops failing: {exc}") from exc


def _deterministic_cuda() -> None:
    """The settings under which one kernel gives one result (``tests/test_aten_gpu.py``'s): deterministic
    cuDNN picked without benchmarking, no TF32."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


class _VectorMatrix(torch.nn.Module):
    """``vector @ matrix`` and ``linear`` of a vector, with and without bias (found by the fuzzer)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3, bias=False)

    def forward(self, v, m):
        return v @ m, self.a(v), self.b(v)


def test_vector_matrix_products_run_eagers_mm_without_resizing_the_planned_result(capfd):
    """``matmul.out`` of a vector and a matrix resized the planned 1-D result to 2-D and back each call
    (torch's deprecation warning on stderr every call; an error once torch stops resizing): it runs as
    eager's ``matmul`` does, ``mm`` of the vector as one row into the result as one row."""
    m = _VectorMatrix()
    v, w = torch.randn(4), torch.randn(4, 5)
    for streams in (1, 3):
        c = compile(m, (v, w), streams=streams, poison=True)
        assert c.stats.kinds.get("out", 0) == 0, c.stats.kinds
        for _ in range(2):
            v, w = torch.randn(4), torch.randn(4, 5)
            with torch.no_grad():
                ref = m(v, w)
            assert all(_same(o, r) for o, r in zip(c(v, w), ref))
    assert "resized" not in capfd.readouterr().err


class _ZeroWidthEmbedding(torch.nn.Module):
    """Rows of width 0 (a weight of shape ``(n, 0)``), looked up by constant and by computed indices."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(4, 0))

    def forward(self, x):
        return F.embedding(torch.tensor([[0, 3], [1, 1]]), x), F.embedding(x.sum(-1).abs().long() % 4, self.w)


def test_an_embedding_with_rows_of_width_zero_runs_as_eager():
    """``embedding`` of a weight whose rows have width 0 was refused at build time ("cannot reshape tensor
    of 0 elements into shape [-1, 0]"): its ``index_select`` out= view inferred the row count (found by the
    fuzzer)."""
    m = _ZeroWidthEmbedding()
    x = torch.randn(5, 0)
    for streams in (1, 3):
        c = compile(m, (x,), streams=streams, poison=True)
        with torch.no_grad():
            ref = m(x)
        out = c(x)
        assert [tuple(o.shape) for o in out] == [(2, 2, 0), (5, 0)]
        assert all(_same(o, r) for o, r in zip(out, ref))


def _collapsed(plan):
    """The plan with every planned tensor at offset 0: unsafe wherever two values are live at once."""
    tensors = tuple((tid, 0 if off is not None else None, size) for tid, off, size in plan.tensors)
    arena = max([size for _t, off, size in tensors if off is not None] + [1])
    return replace(plan, arena_bytes=arena, tensors=tensors)


def _unsafe_plan_noticed(device: str, streams: int, examples: int) -> list:
    """Run ``examples`` programs on their plan with every tensor at offset 0 (verifier off; a collapsed plan
    ``memplan.verify`` passes must not change a bit): per program, True where an output differs from the
    honest plan's, False where none does, or why it did not run."""
    import memplan

    caught: list = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs(gpu=device != "cpu"))
    def run(prog):
        if any(c is True for c in caught):   # the control has seen what it looks for: the rest adds only time
            return
        module, shapes = prog
        module.to(device)
        example = tuple(_fresh(s, "contiguous", d, device) for s, d in zip(shapes, module.dtypes))
        try:
            good = compile(module, example, streams=streams, poison=True, cuda_graph=False)
            unsafe = _collapsed(good.plan)
            try:
                memplan.verify(good.graph, unsafe)
                rejected = False   # nothing planned is live beside another (one value, zero sizes)
            except memplan.UnsafePlan:
                rejected = True
            bad = compile(module, example, plan=unsafe, verify=False, poison=True, program=good.program,
                          cuda_graph=False)
            ref, out = good(*(x.clone() for x in example)), bad(*(x.clone() for x in example))
        except (AtenExecutorError, GraphError, RuntimeError) as exc:
            caught.append(f"refused: {str(exc)[:80]}")
            return
        differs = not all(_same(o, r) for o, r in zip(out, ref))
        assert rejected or not differs, "the verifier passed a plan that changed the bits"
        caught.append(differs)

    run()
    return caught


def test_the_fuzzer_sees_an_unsafe_plan():
    """Negative control: the same programs run on a plan that puts every tensor at offset 0 (verifier off)
    must differ from the honest plan somewhere, else the property above could not fail."""
    caught = _unsafe_plan_noticed("cpu", 1, 40)
    assert any(c is True for c in caught), f"{caught}: no program noticed every tensor planned at offset 0"


@pytest.mark.gpu(backend="torch")
def test_the_cuda_fuzzer_sees_an_unsafe_plan():
    """The CUDA mode's negative control: 3-stream plans with every tensor at offset 0, refused by the
    verifier, forced through, must change the bits of some program."""
    _deterministic_cuda()
    caught = _unsafe_plan_noticed("cuda", 3, 40)
    assert any(c is True for c in caught), f"{caught}: no program noticed every tensor planned at offset 0"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])


class _EmptyBatchNorm(torch.nn.Module):
    """Eval batch norm of an input with no elements (no channels, or no rows), as the CUDA fuzzer drew it."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))

    def forward(self, x):
        return torch.nn.functional.batch_norm(x, self.mean, self.var, training=False) + 1


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu(backend="torch"))])
@pytest.mark.parametrize("shape", [(5, 0, 4), (0, 3, 4), (0, 3), (2, 3, 0)])
def test_eval_batch_norm_of_an_empty_input_runs_as_eager(device, shape):
    """CUDA's ``native_batch_norm.out`` (the exact lowering of eval ``batch_norm``) failed on an empty input:
    "cannot reshape tensor of 0 elements into shape [5, 0, -1]" with no channels, and a floating point
    exception that killed the process with none of the rows. Eager's batch norm returns early there."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    m = _EmptyBatchNorm(shape[1]).to(device)
    x = torch.randn(shape, device=device)
    for streams in (1, 3):
        c = compile(m, (x,), streams=streams, poison=True)
        with torch.no_grad():
            ref = m(x)
        out = c(x)
        assert out.shape == ref.shape and out.dtype == ref.dtype
