"""Sweep: every com.microsoft op the ONNX importer sizes (memplan's rules, ``ORT_RULES``, and the ones onnxruntime's
symbolic shape inference sizes) on a few random valid shapes and attributes, run by onnxruntime 1.32's CPU provider
and imported by memplan, printing each output planned SMALLER than onnxruntime writes (an overrun in every plan:
``UNDER``), planned larger (``over``), or refused by memplan where onnxruntime runs it (``refused``). Not a test: a
finder of cases for tests (round 56). Exit status 1 where any output is under-sized.

Run: ``python tests/onnx_sweep_round56.py [--declared] [--float16] [TRIALS] [OP ...]`` from the repository root
(``PYTHONPATH=$PWD``; default 6 trials an op, every op). ``--declared`` declares every output ``[1]`` first (of the
type onnxruntime gives it): an output sized by nothing but its declaration is then planned short (``UNDER``); a
refusal of the declaration is right there and not reported. ``--float16`` makes every float input float16 (the ops
whose CPU kernels take it). Each op has a generator below (``CASES``) that draws its shapes and attributes
from a seeded generator; a draw onnxruntime refuses is counted (``ort refused``), not compared: an op whose every draw
onnxruntime refuses is listed at the end, as are the ops of ``ORT_RULES`` with no generator (GPU-only kernels).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx_oracle import ort_sizes

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx

MS = "com.microsoft"
#: (input name, value, given as an initializer); "" and None: omitted; a TensorProto value (int4 data, which numpy
#: holds none of) is an initializer
Input = tuple[str, "np.ndarray | onnx.TensorProto | None", bool]
#: inputs, attributes, outputs (how many, or which are asked for: True, False, or an elem type to declare it of)
Case = tuple[list[Input], dict, "int | tuple"]


def f32(r, *shape):
    return r.random(shape, dtype=np.float32)


def f16(r, *shape):
    return r.random(shape).astype(np.float16)


def u8(r, *shape, hi=256):
    return r.integers(0, hi, shape, dtype=np.uint8)


def i32(*values):
    return np.array(values, np.int32)


def i64(*values):
    return np.array(values, np.int64)


def sc(v=0.1):
    return np.array(v, np.float32)


def zp(v=0, dt=np.uint8):
    return np.array(v, dt)


def pick(r, seq):
    return seq[int(r.integers(len(seq)))]


def n(r, lo=1, hi=5):
    return int(r.integers(lo, hi + 1))


def _none() -> Input:
    return ("", None, False)


# --- memplan's rules ----------------------------------------------------------------------------------------------

def c_fused_matmul(r) -> Case:
    m, k, nn = n(r), n(r), n(r)
    ta, tb = int(r.integers(2)), int(r.integers(2))
    batch_a = tuple(n(r, 1, 3) for _ in range(n(r, 0, 2)))
    batch_b = tuple(pick(r, [1, d]) for d in batch_a)[len(batch_a) - n(r, 0, len(batch_a)):]
    a = batch_a + ((k, m) if ta else (m, k))
    b = batch_b + ((nn, k) if tb else (k, nn))
    if r.random() < 0.2:
        a = (k,)
    return [("A", f32(r, *a), False), ("B", f32(r, *b), False)], {"transA": ta, "transB": tb, "alpha": 0.5}, 1


def c_skip_ln(simplified: bool):
    def case(r) -> Case:
        b, s, h = n(r), n(r), n(r, 2, 8)
        x = pick(r, [(b, s, h), (s, h)])
        skip = pick(r, [x, x[-2:], (1,) + x[-2:]])
        ins = [("x", f32(r, *x), False), ("skip", f32(r, *skip), False), ("gamma", f32(r, h), True)]
        if not simplified:
            ins.append(("beta", f32(r, h), True) if r.random() < 0.5 else _none())
        ins.append(("bias", f32(r, h), True) if r.random() < 0.5 else _none())
        return ins, {"epsilon": 1e-5}, 4
    return case


def c_mha(r) -> Case:
    b, s, heads, hk = n(r, 1, 2), n(r, 1, 4), n(r, 1, 3), pick(r, [1, 2, 4, 8])
    hv = pick(r, [hk, n(r, 1, 4)])
    length = pick(r, [s, n(r, 1, 4)])
    layout = pick(r, ["bsh", "bsh", "bnsh", "packed_kv", "packed_qkv"])
    if layout == "packed_qkv":
        ins = [("q", f32(r, b, s, heads, 3, hk), False)]
    elif layout == "packed_kv":
        ins = [("q", f32(r, b, s, heads * hk), False), ("kv", f32(r, b, length, heads, 2, hk), False)]
    elif layout == "bnsh":
        ins = [("q", f32(r, b, s, heads * hk), False), ("k", f32(r, b, heads, length, hk), False),
               ("v", f32(r, b, heads, length, hv), False)]
    else:
        ins = [("q", f32(r, b, s, heads * hk), False), ("k", f32(r, b, length, heads * hk), False),
               ("v", f32(r, b, length, heads * hv), False)]
    outs: int | tuple = 1
    if layout == "bsh" and r.random() < 0.5:
        p = n(r, 1, 3)
        ins += [_none(), _none(), _none(), ("pk", f32(r, b, heads, p, hk), False), ("pv", f32(r, b, heads, p, hv), False)]
        outs = 3
    elif r.random() < 0.5:
        outs = pick(r, [(True, True, True, 1), (True, False, False, 1), (True, True, True)])
    return ins, {"num_heads": heads, "unidirectional": int(r.integers(2))}, outs


def c_gqa(r) -> Case:
    b, s = n(r, 1, 2), n(r, 1, 3)
    kv = n(r, 1, 2)
    heads = kv * n(r, 1, 2)
    h = pick(r, [8, 16])
    p = pick(r, [0, n(r, 1, 4), n(r, 4, 8)])
    total = pick(r, [p + s, max(s, p)] if p else [s])
    if r.random() < 0.3:
        qkv = [("q", f32(r, b, s, (heads + 2 * kv) * h), False), _none(), _none()]
    else:
        qkv = [("q", f32(r, b, s, heads * h), False), ("k", f32(r, b, s, kv * h), False), ("v", f32(r, b, s, kv * h), False)]
    ins = qkv + [("pk", f32(r, b, kv, p, h), False), ("pv", f32(r, b, kv, p, h), False),
                 ("seqlens", np.full(b, total - 1, np.int32), True), ("total", np.array(total, np.int32), True)]
    attrs = {"num_heads": heads, "kv_num_heads": kv}
    if r.random() < 0.3:
        attrs["qk_output"] = pick(r, [1, 2])
        return ins, attrs, (True, True, True, 1)
    return ins, attrs, 3


def c_gather_block_quantized(r) -> Case:
    v, block = n(r, 2, 6), pick(r, [16, 32])
    k = block * n(r, 1, 3)
    idx = r.integers(0, v, (n(r, 1, 3), n(r, 1, 2))).astype(np.int64)
    if r.random() < 0.5:   # int4 / uint4 data, unpacked in its shape (any gather and quantize axes)
        elem = pick(r, [onnx.TensorProto.INT4, onnx.TensorProto.UINT4])
        data = helper.make_tensor("data", elem, [v, k], [int(x) for x in r.integers(0, 7, v * k)])
        gax = pick(r, [0, 1])
        qax = 1 - gax
        if gax == 1:
            idx = r.integers(0, k, idx.shape).astype(np.int64)
        scales = f32(r, v, k // block) if qax == 1 else f32(r, -(-v // block), k)
        return [("data", data, True), ("idx", idx, True), ("scales", scales, True)], \
            {"gather_axis": gax, "quantize_axis": qax, "block_size": block}, 1
    return [("data", u8(r, v, k // 2), True), ("idx", idx, True), ("scales", f32(r, v, k // block), True)], \
        {"gather_axis": 0, "quantize_axis": 1, "block_size": block, "bits": 4}, 1


def c_unfold(r) -> Case:
    x = tuple(n(r, 1, 6) for _ in range(n(r, 1, 3)))
    dim = int(r.integers(-len(x), len(x)))
    size = n(r, 1, x[dim])
    return [("x", f32(r, *x), False)], {"dim": dim, "size": size, "step": n(r, 1, 3)}, 1


def c_fused_conv(r) -> Case:
    group = pick(r, [1, 2])
    c, m = group * n(r, 1, 2), group * n(r, 1, 2)
    dims = n(r, 1, 3)
    ks = [n(r, 1, 3) for _ in range(dims)]
    x = (n(r, 1, 2), c) + tuple(n(r, k, 6) for k in ks)
    attrs = {"activation": pick(r, ["Relu", "Sigmoid", "Tanh", "LeakyRelu"]), "group": group,
             "strides": [n(r, 1, 2) for _ in ks]}
    if r.random() < 0.3:
        attrs["auto_pad"] = pick(r, ["SAME_UPPER", "SAME_LOWER", "VALID"])
    else:
        attrs["pads"] = [int(p) for p in r.integers(0, 2, 2 * dims)]
    ins = [("x", f32(r, *x), False), ("w", f32(r, m, c // group, *ks), True), ("b", f32(r, m), True)]
    return ins, attrs, 1


def c_fused_gemm(r) -> Case:
    m, k, nn = n(r), n(r), n(r)
    ta, tb = int(r.integers(2)), int(r.integers(2))
    ins = [("a", f32(r, *((k, m) if ta else (m, k))), False), ("b", f32(r, *((nn, k) if tb else (k, nn))), False)]
    if r.random() < 0.5:
        ins.append(("c", f32(r, *pick(r, [(nn,), (m, nn), (1, nn)])), False))
    return ins, {"transA": ta, "transB": tb, "activation": "Relu"}, 1


def c_qlinear_unary(op: str):
    def case(r) -> Case:
        x = tuple(n(r) for _ in range(n(r, 1, 4)))
        attrs = {"opset": 13, "axis": -1} if op == "QLinearSoftmax" else {}
        return [("x", u8(r, *x), False), ("xs", sc(), True), ("xz", zp(), True), ("ys", sc(), True),
                ("yz", zp(), True)], attrs, 1
    return case


def c_inverse(r) -> Case:
    k = n(r, 1, 4)
    lead = tuple(n(r, 1, 3) for _ in range(n(r, 0, 2)))
    return [("x", (np.eye(k, dtype=np.float32) * 2 + f32(r, *lead, k, k) * 0.1), False)], {}, 1


def c_trilu(r) -> Case:
    x = tuple(n(r) for _ in range(n(r, 2, 4)))
    ins = [("x", f32(r, *x), False)]
    if r.random() < 0.5:
        ins.append(("k", i64(int(r.integers(-2, 3))), True))
    return ins, {"upper": int(r.integers(2))}, 1


def c_dq_matmul(r) -> Case:
    m, k, nn = n(r), n(r), n(r)
    lead = tuple(n(r, 1, 2) for _ in range(n(r, 0, 2)))
    ins = [("a", f32(r, *lead, m, k), False), ("b", u8(r, *pick(r, [(k, nn), lead[-1:] + (k, nn)])), True),
           ("bs", pick(r, [sc(), f32(r, nn)]), True), ("bz", zp(), True)]
    return ins, {}, 1


def c_matmul_int_to_float(r) -> Case:
    m, k, nn = n(r), n(r), n(r)
    lead = tuple(n(r, 1, 2) for _ in range(n(r, 0, 2)))
    return [("a", u8(r, *lead, m, k), False), ("b", u8(r, k, nn), True), ("as", sc(), True), ("bs", sc(), True),
            ("az", zp(), True), ("bz", zp(), True)], {}, 1


def c_cdist(r) -> Case:
    k = n(r)
    return [("a", f32(r, n(r), k), False), ("b", f32(r, n(r), k), False)], \
        {"metric": pick(r, ["sqeuclidean", "euclidean"])}, 1


def c_expand_dims(r) -> Case:
    x = tuple(n(r) for _ in range(n(r, 0, 3)))
    return [("x", f32(r, *x), False), ("axis", np.array(int(r.integers(-len(x) - 1, len(x) + 1)), np.int32), True)], {}, 1


def c_qlinear_conv(r) -> Case:
    c, m, k = n(r, 1, 3), n(r, 1, 3), n(r, 1, 3)
    x = (n(r, 1, 2), c, n(r, k, 6), n(r, k, 6))
    last = int(r.integers(2))
    xv = u8(r, *x)
    if last:
        xv = np.ascontiguousarray(xv.transpose(0, 2, 3, 1))
    attrs = {"strides": [n(r, 1, 2)] * 2, "pads": [int(r.integers(2))] * 4}
    if last:
        attrs["channels_last"] = 1
    return [("x", xv, False), ("xs", sc(), True), ("xz", zp(), True), ("w", u8(r, m, c, k, k), True),
            ("ws", sc(), True), ("wz", zp(), True), ("ys", sc(), True), ("yz", zp(), True)], attrs, 1


def c_qgemm(r) -> Case:
    m, k, nn = n(r), n(r), n(r)
    ta, tb = int(r.integers(2)), int(r.integers(2))
    ins = [("a", u8(r, *((k, m) if ta else (m, k))), False), ("as", sc(), True), ("az", zp(), True),
           ("b", u8(r, *((nn, k) if tb else (k, nn))), True), ("bs", sc(), True), ("bz", zp(), True)]
    if r.random() < 0.5:
        ins += [_none(), ("ys", sc(), True), ("yz", zp(), True)]
    return ins, {"transA": ta, "transB": tb}, 1


def c_qlinear_avgpool(r) -> Case:
    k = n(r, 1, 3)
    x = (n(r, 1, 2), n(r, 1, 3), n(r, k, 6), n(r, k, 6))
    last = int(r.integers(2))
    xv = u8(r, *x)
    if last:
        xv = np.ascontiguousarray(xv.transpose(0, 2, 3, 1))
    attrs = {"kernel_shape": [k, k], "strides": [n(r, 1, 2)] * 2, "pads": [int(r.integers(2))] * 4,
             "ceil_mode": int(r.integers(2)), "channels_last": last}
    return [("x", xv, False), ("xs", sc(), True), ("xz", zp(), True), ("ys", sc(), True), ("yz", zp(), True)], attrs, 1


def c_qlinear_gap(r) -> Case:
    x = (n(r, 1, 2), n(r, 1, 3)) + tuple(n(r, 1, 4) for _ in range(n(r, 1, 2)))
    return [("x", u8(r, *x), False), ("xs", sc(), True), ("xz", zp(), True), ("ys", sc(), True), ("yz", zp(), True)], \
        {"channels_last": int(r.integers(2))}, 1


def c_qlinear_concat(r) -> Case:
    base = [n(r) for _ in range(n(r, 1, 3))]
    axis = int(r.integers(-len(base), len(base)))
    ins: list[Input] = [("ys", sc(), True), ("yz", zp(), True)]
    for j in range(n(r, 1, 3)):
        shape = list(base)
        shape[axis] = n(r)
        ins += [(f"x{j}", u8(r, *shape), False), (f"s{j}", sc(), True), (f"z{j}", zp(), True)]
    return ins, {"axis": axis}, 1


def c_qlinear_where(r) -> Case:
    shape = tuple(n(r) for _ in range(n(r, 1, 3)))
    sub = lambda: tuple(pick(r, [1, d]) for d in shape)   # noqa: E731
    return [("c", r.random(sub()) < 0.5, False), ("x", u8(r, *sub()), False), ("xs", sc(), True), ("xz", zp(), True),
            ("y", u8(r, *shape), False), ("ys", sc(), True), ("yz", zp(), True), ("zs", sc(), True),
            ("zz", zp(), True)], {}, 1


def c_nhwc_maxpool(r) -> Case:
    k = n(r, 1, 3)
    x = (n(r, 1, 2), n(r, k, 6), n(r, k, 6), n(r, 1, 3))
    return [("x", u8(r, *x), False)], {"kernel_shape": [k, k], "strides": [n(r, 1, 2)] * 2,
                                       "pads": [int(r.integers(2))] * 4, "ceil_mode": int(r.integers(2)),
                                       "dilations": [1, pick(r, [1, 2])] if k <= 2 else [1, 1]}, 1


def c_maxpool_mask(r) -> Case:
    k = n(r, 1, 3)
    x = (n(r, 1, 2), n(r, 1, 3), n(r, k, 6), n(r, k, 6))
    return [("x", f32(r, *x), False), ("m", np.ones(x, np.int32), False)], \
        {"kernel_shape": [k, k], "strides": [n(r, 1, 2)] * 2, "pads": [int(r.integers(2))] * 4}, 1


def c_grid_sample(r) -> Case:
    b = n(r, 1, 2)
    return [("x", f32(r, b, n(r, 1, 3), n(r, 2, 5), n(r, 2, 5)), False),
            ("g", f32(r, b, n(r), n(r), 2) * 2 - 1, False)], {"mode": pick(r, ["bilinear", "nearest"])}, 1


def c_crop_and_resize(r) -> Case:
    rois = n(r, 1, 3)
    box = np.tile(np.array([0.1, 0.1, 0.8, 0.9], np.float32), (rois, 1))
    return [("x", f32(r, n(r, 1, 2), n(r, 1, 3), n(r, 2, 6), n(r, 2, 6)), False), ("rois", box, False),
            ("bi", np.zeros(rois, np.int32), False), ("crop", i32(n(r), n(r)), True)], {}, 1


def c_qattention(r) -> Case:
    heads, head = n(r, 1, 2), n(r, 1, 3)
    hidden = heads * head
    b, s = n(r, 1, 2), n(r, 1, 3)
    hin = pick(r, [hidden, n(r, 1, 6)])
    ins = [("x", u8(r, b, s, hin), False), ("w", u8(r, hin, 3 * hidden), True), ("bias", f32(r, 3 * hidden), True),
           ("xs", sc(), True), ("ws", sc(), True), _none(), ("xz", zp(), True), ("wz", zp(), True)]
    outs = 1
    if r.random() < 0.5:
        ins.append(("past", f32(r, 2, b, heads, n(r, 1, 3), head), False))
        outs = 2
    return ins, {"num_heads": heads, "unidirectional": 1 if outs == 2 else 0}, outs


def c_unique(r) -> Case:
    return [("x", r.integers(0, 4, n(r, 1, 8)).astype(np.float32), False)], {}, 3


def c_gated(op: str):
    def case(r) -> Case:
        x = tuple(n(r) for _ in range(n(r, 2, 3)))
        if op == "GatedRMSNorm":
            return [("x", f32(r, *x), False), ("scale", f32(r, x[-1]), True), ("gate", f32(r, *x), False)], {}, 1
        if op == "GatedAdd":
            return [("x", f32(r, *x), False), ("y", f32(r, *x), False), ("gate", f32(r, *x[:-1], 1), False)], {}, 1
        return [("x", f32(r, *x), False)], {}, 1
    return case


def c_ngram_repeat(r) -> Case:
    b, s, v = n(r, 1, 2), n(r, 2, 5), n(r, 5, 9)
    return [("ids", r.integers(0, v, (b, s)).astype(np.int64), False), ("scores", f32(r, b, v), False)], \
        {"ngram_size": n(r, 1, 2)}, 1


def c_murmur(r) -> Case:
    x = tuple(n(r) for _ in range(n(r, 1, 3)))
    return [("x", r.integers(0, 100, x).astype(pick(r, [np.int32, np.int64, np.float32])), False)], \
        {"positive": int(r.integers(2))}, 1


def c_matmul_bnb4(r) -> Case:
    block = pick(r, [16, 32, 64])
    k, nn = n(r, 1, 3) * 16, n(r, 1, 4)
    total = k * nn
    lead = tuple(n(r, 1, 2) for _ in range(n(r, 0, 1)))
    return [("a", f32(r, *lead, n(r), k), False), ("b", u8(r, (total + 1) // 2), True),
            ("absmax", f32(r, -(-total // block)), True)], {"K": k, "N": nn, "block_size": block, "quant_type": 1}, 1


def c_dq_lstm(r) -> Case:
    s, b, i, h = n(r, 1, 3), n(r, 1, 2), n(r, 1, 4), n(r, 1, 3)
    dirs = pick(r, [1, 2])
    return [("x", f32(r, s, b, i), False), ("w", u8(r, dirs, i, 4 * h), True), ("rr", u8(r, dirs, h, 4 * h), True),
            _none(), _none(), _none(), _none(), _none(), ("ws", np.full(dirs, 0.1, np.float32), True),
            ("wz", np.zeros(dirs, np.uint8), True), ("rs", np.full(dirs, 0.1, np.float32), True),
            ("rz", np.zeros(dirs, np.uint8), True)], \
        {"hidden_size": h, "direction": "bidirectional" if dirs == 2 else pick(r, ["forward", "reverse"])}, 3


def c_linear_attention(r) -> Case:
    b, t, hkv, d_k, d_v = n(r, 1, 2), n(r, 1, 4), n(r, 1, 2), n(r, 1, 4), n(r, 1, 4)
    hq = hkv * pick(r, [1, 2])
    rule = pick(r, ["linear", "gated", "delta", "gated_delta"])
    ins = [("q", f32(r, b, t, hq * d_k), False), ("k", f32(r, b, t, hkv * d_k), False),
           ("v", f32(r, b, t, hkv * d_v), False), ("past", f32(r, b, hkv, d_k, d_v), False)]
    ins.append(("decay", f32(r, b, t, hkv), False) if "gated" in rule else _none())
    ins.append(("beta", f32(r, b, t, hkv), False) if "delta" in rule else _none())
    return ins, {"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule}, 2


def c_linear_attention_gate(r) -> Case:
    a = tuple(n(r) for _ in range(n(r, 1, 3)))
    ins = [("a", f32(r, *a), False), ("dt", f32(r, a[-1]), True), ("ds", f32(r, a[-1]), True)]
    outs = 1
    if r.random() < 0.5:
        ins.append(("b", f32(r, *a), False))
        outs = 2
    return ins, {}, outs


def c_engram(r) -> Case:
    b, s, m, h = n(r, 1, 2), n(r, 1, 3), n(r, 1, 3), n(r, 1, 4)
    ins = [("k", f32(r, b, s, m, h), False), ("q", f32(r, b, s, m, h), False), ("v", f32(r, b, s, h), False),
           ("ks", f32(r, m, h), True), ("qs", f32(r, m, h), True)]
    outs = 1
    if r.random() < 0.5:
        ins.append(("cs", f32(r, m, h), True))
        outs = 2
    return ins, {}, outs


def c_word_conv(r) -> Case:
    words, wl, filters, win, ce = n(r, 1, 4), n(r, 2, 6), n(r, 1, 5), n(r, 1, 2), n(r, 1, 4)
    return [("s", r.integers(0, 10, (words, wl)).astype(np.int32), False), ("w", f32(r, filters, 1, win, ce), True),
            ("b", f32(r, filters), True), ("c", f32(r, 10, ce), True)], {}, 1


def c_causal_conv(r) -> Case:
    b, c, length, k = n(r, 1, 2), n(r, 1, 4), n(r, 1, 5), n(r, 1, 4)
    dil = n(r, 1, 2)
    last = int(r.integers(2))
    x = (b, length, c) if last else (b, c, length)
    state = (b, (k - 1) * dil, c) if last else (b, c, (k - 1) * dil)
    ins = [("x", f32(r, *x), False), ("w", f32(r, c, 1, k), True)]
    if r.random() < 0.5:
        ins += [("bias", f32(r, c), True), ("past", f32(r, *state), False)]
    return ins, {"dilation": dil, "channels_last": last}, 2


def c_varlen_causal_conv(r) -> Case:
    lens = [n(r, 1, 3) for _ in range(n(r, 1, 3))]
    c, k, dil = n(r, 1, 4), n(r, 1, 3), n(r, 1, 2)
    cu = np.cumsum([0] + lens).astype(np.int32)
    return [("x", f32(r, int(cu[-1]), c), False), ("w", f32(r, c, 1, k), True), ("cu", cu, True), _none(),
            ("init", f32(r, len(lens), c, (k - 1) * dil), False)], {"dilation": dil}, 3


def c_moe_router(r) -> Case:
    groups = pick(r, [1, 2])
    experts = groups * n(r, 1, 4)
    logits = tuple(n(r, 1, 3) for _ in range(n(r, 1, 2))) + (experts,)
    return [("l", f32(r, *logits), False), ("b", f32(r, experts), True)], \
        {"top_k": n(r, 1, experts), "n_group": groups, "topk_group": n(r, 1, groups)}, 1


def c_gated_delta_net(r) -> Case:
    b, s, hq, dk, dv = n(r, 1, 2), n(r, 1, 3), n(r, 1, 2), n(r, 1, 3), n(r, 1, 3)
    hv = hq * pick(r, [1, 2])
    rule = pick(r, ["linear", "gated", "delta", "gated_delta"])
    ins = [("q", f32(r, b, s, hq, dk), False), ("k", f32(r, b, s, hq, dk), False), ("v", f32(r, b, s, hv, dv), False),
           _none()]
    ins.append(("decay", f32(r, b, s, hv), False) if "gated" in rule else _none())
    ins.append(("beta", f32(r, b, s, hv), False) if "delta" in rule else _none())
    ins.append(("state", f32(r, b, hv, dv, dk), False))
    return ins, {"update_rule": rule}, 2


def c_gather_packed(r) -> Case:
    ptype, values, nbytes = pick(r, [(2, 32, 18), (0, 1, 4), (8, 32, 34), (14, 256, 210), (42, 64, 18), (30, 1, 2)])
    k = values * n(r, 1, 3)
    idx = tuple(n(r, 1, 3) for _ in range(n(r, 0, 2)))
    return [("d", u8(r, 4, k // values * nbytes), True), ("i", np.zeros(idx, np.int64), False)], \
        {"packed_type": ptype, "K": k, "output_dtype": pick(r, [1, 10, 16])}, 1


def c_conv_transpose_pads(r) -> Case:
    c, m, k = n(r, 1, 2), n(r, 1, 2), n(r, 1, 3)
    pads = [int(p) for p in r.integers(0, k, 4)]
    return [("x", f32(r, 1, c, n(r, 2, 5), n(r, 2, 5)), False), ("w", f32(r, c, m, k, k), True),
            ("p", np.array(pads, np.int64), True)], {"strides": [n(r, 1, 2)] * 2}, 1


def c_matmul_fpq4(r) -> Case:
    k, nn, q = n(r, 1, 70), n(r, 1, 5), int(r.integers(2))
    lead = tuple(n(r, 1, 3) for _ in range(n(r, 0, 2)))
    return [("a", f32(r, *lead, k), False), ("b", u8(r, nn * -(-k // 32) * (20 if q == 0 else 21)), True),
            ("s", i64(k, nn), True)], {"blk_quant_type": q}, 1


def c_qmoe(r) -> Case:
    experts, hidden, inter, bits = n(r, 1, 4), pick(r, [16, 32]), pick(r, [16, 32]), pick(r, [4, 8])
    x = pick(r, [(n(r, 1, 5), hidden), (n(r, 1, 2), n(r, 1, 3), hidden)])
    rows = int(np.prod(x[:-1]))
    pack = 8 // bits
    return [("x", f32(r, *x), False), ("router", f32(r, rows, experts), False),
            ("w1", u8(r, experts, inter, hidden // pack), True), ("s1", f32(r, experts, inter), True), _none(),
            ("w2", u8(r, experts, hidden, inter // pack), True), ("s2", f32(r, experts, hidden), True)], \
        {"expert_weight_bits": bits, "k": n(r, 1, experts)}, 1


def c_attn_lstm(r) -> Case:
    s, b, i, h, a = n(r, 1, 3), n(r, 1, 2), n(r, 1, 4), n(r, 1, 3), n(r, 1, 3)
    steps, depth = n(r, 1, 4), n(r, 1, 4)
    dirs = pick(r, [1, 2])
    return [("x", f32(r, s, b, i), False), ("w", f32(r, dirs, 4 * h, i + depth), True),
            ("rr", f32(r, dirs, 4 * h, h), True), _none(), _none(), _none(), _none(), _none(),
            ("qw", f32(r, dirs, h, a), True), ("mw", f32(r, dirs, depth, a), True), ("v", f32(r, dirs, a), True),
            ("m", f32(r, b, steps, depth), False)], \
        {"hidden_size": h, "direction": "bidirectional" if dirs == 2 else "forward"}, 3


# --- ops onnxruntime's symbolic shape inference sizes ------------------------------------------------------------

def c_attention(r) -> Case:
    heads, head = n(r, 1, 3), n(r, 1, 3)
    hidden = heads * head
    b, s = n(r, 1, 2), n(r, 1, 3)
    vhead = pick(r, [head, n(r, 1, 3)])
    sizes = [hidden, hidden, heads * vhead]
    attrs = {"num_heads": heads}
    if vhead != head:
        attrs["qkv_hidden_sizes"] = sizes
    ins = [("x", f32(r, b, s, n(r, 1, 6)), False)]
    ins += [("w", f32(r, ins[0][1].shape[-1], sum(sizes)), True), ("bias", f32(r, sum(sizes)), True)]
    outs = 1
    if vhead == head and r.random() < 0.5:
        ins += [_none(), ("past", f32(r, 2, b, heads, n(r, 1, 3), head), False)]
        outs = 2
        attrs["unidirectional"] = 1
    elif r.random() < 0.3:
        ins += [("mask", np.ones((b, s), np.int32), False)]
    return ins, attrs, outs


def c_embed_ln(r) -> Case:
    b, s, h, v = n(r, 1, 2), n(r, 1, 4), n(r, 2, 6), n(r, 4, 9)
    ins = [("ids", r.integers(0, v, (b, s)).astype(np.int32), False), ("seg", np.zeros((b, s), np.int32), False),
           ("we", f32(r, v, h), True), ("pe", f32(r, s + n(r, 0, 3), h), True), ("se", f32(r, 2, h), True),
           ("g", f32(r, h), True), ("beta", f32(r, h), True)]
    outs: int | tuple = 2
    attrs = {"mask_index_type": int(r.integers(2))}
    if r.random() < 0.5:
        ins.append(("mask", np.ones((b, s), np.int32), False))
        if r.random() < 0.5:
            ins.append(("pos_ids", np.zeros(pick(r, [(b, s), (1, s)]), np.int32), False))
    if r.random() < 0.5:
        outs = pick(r, [(True, True, True), (True, False, True)])
    return ins, attrs, outs


def c_rotary(r) -> Case:
    b, s, heads, head = n(r, 1, 2), n(r, 1, 4), n(r, 1, 2), pick(r, [4, 8])
    rot = pick(r, [head, head // 2])
    x = pick(r, [(b, s, heads * head), (b, heads, s, head)])
    attrs = {"num_heads": heads, "interleaved": int(r.integers(2))}
    if rot != head:
        attrs["rotary_embedding_dim"] = rot
    return [("x", f32(r, *x), False), ("pos", np.zeros((b, s), np.int64), False),
            ("cos", f32(r, s + 2, rot // 2), True), ("sin", f32(r, s + 2, rot // 2), True)], attrs, 1


def c_matmul_nbits(r) -> Case:
    block = pick(r, [16, 32])
    k, nn, bits = block * n(r, 1, 3), n(r, 1, 5), pick(r, [4, 8])
    blocks = k // block
    lead = tuple(n(r, 1, 2) for _ in range(n(r, 0, 2)))
    a = pick(r, [lead + (n(r, 1, 3), k), (k,)])
    ins = [("a", f32(r, *a), False), ("b", u8(r, nn, blocks, block * bits // 8), True), ("s", f32(r, nn * blocks), True)]
    if r.random() < 0.5:
        ins += [_none(), _none(), ("bias", f32(r, nn), True)]
    return ins, {"K": k, "N": nn, "block_size": block, "bits": bits}, 1


def c_elementwise(op: str):
    def case(r) -> Case:
        x = tuple(n(r) for _ in range(n(r, 1, 3)))
        if op in ("BiasGelu", "FastGelu"):
            return [("x", f32(r, *x), False), ("b", f32(r, x[-1]), True)], {}, 1
        return [("x", f32(r, *x), False)], {}, 1
    return case


def c_qlinear_binary(r) -> Case:
    shape = tuple(n(r) for _ in range(n(r, 1, 3)))
    sub = tuple(pick(r, [1, d]) for d in shape)[n(r, 0, len(shape)):]
    return [("a", u8(r, *shape), False), ("as", sc(), True), ("az", zp(), True), ("b", u8(r, *sub), False),
            ("bs", sc(), True), ("bz", zp(), True), ("cs", sc(), True), ("cz", zp(), True)], {}, 1


def c_matmul_int16(r) -> Case:
    m, k, nn = n(r), n(r), n(r)
    return [("a", r.integers(0, 9, (m, k)).astype(np.int16), False),
            ("b", r.integers(0, 9, (k, nn)).astype(np.int16), False)], {}, 1


def c_mrotary(r) -> Case:
    b, s, heads = n(r, 1, 2), n(r, 1, 4), n(r, 1, 2)
    sec = [n(r, 1, 2) for _ in range(3)]
    head = 2 * sum(sec)
    return [("x", f32(r, b, s, heads * head), False), ("pos", np.zeros((3, b, s), np.int64), False),
            ("cos", f32(r, s + 2, head // 2), True), ("sin", f32(r, s + 2, head // 2), True)], \
        {"num_heads": heads, "mrope_section": sec}, 1


def c_qembed_ln(r) -> Case:
    b, s, h, v = n(r, 1, 2), n(r, 1, 4), n(r, 2, 6), n(r, 4, 9)
    ins = [("ids", r.integers(0, v, (b, s)).astype(np.int32), False), ("seg", np.zeros((b, s), np.int32), False),
           ("we", u8(r, v, h), True), ("pe", u8(r, s + n(r, 0, 3), h), True), ("se", u8(r, 2, h), True),
           ("g", u8(r, h), True), ("beta", u8(r, h), True), ("mask", np.ones((b, s), np.int32), False)]
    ins += [(f"s{j}", sc(), True) for j in range(5)] + [(f"z{j}", zp(), True) for j in range(5)]
    return ins, {}, 2


def c_hyper(op: str):
    def case(r) -> Case:
        lead, nb, h = tuple(n(r, 1, 3) for _ in range(n(r, 1, 2))), n(r, 1, 4), n(r, 1, 5)
        flat = r.random() < 0.5
        streams = f32(r, *lead, nb * h) if flat else f32(r, *lead, nb, h)
        attrs = {"num_branches": nb} if flat else {}
        if op == "HyperConnectionPreMix":
            return [("x", streams, False), ("m", f32(r, *lead, nb), False)], attrs, 1
        if op == "HyperConnectionPostMix":
            ins = [("x", streams, False), ("b", f32(r, *lead, h), False), ("m", f32(r, *lead, nb), False)]
            if r.random() < 0.5:
                ins.append(("sm", f32(r, *lead, nb, nb), False))
            return ins, attrs, 1
        if op == "BranchwiseRMSNorm":
            return [("x", streams, False), ("s", f32(r, h), True)], attrs, 1
        return [("x", f32(r, *lead, h), False), ("s", sc(0.5), True)], {}, 1
    return case


def c_dtw(r) -> Case:
    return [("x", f32(r, n(r, 2, 6), n(r, 2, 6)), False)], {}, 1


def c_moe(r) -> Case:
    experts, hidden, inter = n(r, 1, 4), n(r, 2, 6), n(r, 2, 6)
    x = pick(r, [(n(r, 1, 5), hidden), (n(r, 1, 2), n(r, 1, 3), hidden)])
    rows = int(np.prod(x[:-1]))
    swiglu = r.random() < 0.3
    return [("x", f32(r, *x), False), ("router", f32(r, rows, experts), False),
            ("w1", f32(r, experts, inter * (2 if swiglu else 1), hidden), True), _none(),
            ("w2", f32(r, experts, hidden, inter), True)], \
        {"k": n(r, 1, experts), **({"activation_type": "swiglu", "swiglu_fusion": 1} if swiglu else {})}, 1


def c_dequantize_linear(r) -> Case:
    x = tuple(n(r) for _ in range(n(r, 1, 3)))
    if r.random() < 0.4:
        elem = pick(r, [onnx.TensorProto.INT4, onnx.TensorProto.UINT4])
        data = helper.make_tensor("x", elem, list(x), [1] * int(np.prod(x)))
        return [("x", data, True), ("s", sc(), True), ("z", helper.make_tensor("z", elem, [], [0]), True)], {}, 1
    return [("x", u8(r, *x), False), ("s", sc(), True), ("z", zp(), True)], {}, 1


def c_quantize_linear(r) -> Case:
    x = tuple(n(r) for _ in range(n(r, 1, 3)))
    axis = int(r.integers(-len(x), len(x)))
    if r.random() < 0.4:
        z = helper.make_tensor("z", pick(r, [onnx.TensorProto.INT4, onnx.TensorProto.UINT4]), [], [0])
        return [("x", f32(r, *x), False), ("s", sc(), True), ("z", z, True)], {}, 1
    if r.random() < 0.5:
        return [("x", f32(r, *x), False), ("s", np.full(x[axis], 0.1, np.float32), True),
                ("z", np.zeros(x[axis], pick(r, [np.uint8, np.int8])), True)], {"axis": axis}, 1
    return [("x", f32(r, *x), False), ("s", sc(), True), ("z", zp(), True)], {}, 1


def c_range(r) -> Case:
    if r.random() < 0.5:
        start, delta = float(r.random() * 4 - 2), pick(r, [0.3, 0.1, 0.7, -0.3, 1 / 3])
        limit = start + delta * float(r.random() * 8)
        dt = pick(r, [np.float32, np.float64])
    else:
        start, delta = int(r.integers(-3, 3)), pick(r, [1, 2, 3, -1])
        limit = start + delta * n(r, 0, 6) + pick(r, [0, 1])
        dt = pick(r, [np.int64, np.int32])
    return [("a", np.array(start, dt), True), ("l", np.array(limit, dt), True), ("d", np.array(delta, dt), True)], {}, 1


def c_pad(r) -> Case:
    x = tuple(n(r) for _ in range(n(r, 1, 3)))
    pads = [int(p) for p in r.integers(-1, 3, 2 * len(x))]
    pads = [max(p, -(d - 1) // 2) for p, d in zip(pads, x + x)]
    mode = pick(r, ["constant", "reflect", "edge"])
    if mode == "reflect":
        pads = [min(max(p, 0), d - 1) for p, d in zip(pads, x + x)]
    return [("x", f32(r, *x), False), ("p", np.array(pads, np.int64).reshape(pick(r, [(-1,), (1, -1)])), True)], \
        {"mode": mode}, 1


def c_gathernd(r) -> Case:
    data = tuple(n(r, 2, 4) for _ in range(n(r, 2, 3)))
    last = n(r, 1, len(data))
    idx = tuple(n(r, 1, 3) for _ in range(n(r, 0, 2))) + (last,)
    return [("d", f32(r, *data), False), ("i", np.zeros(idx, np.int64), False)], {}, 1


CASES: dict[str, Callable] = {
    "FusedMatMul": c_fused_matmul, "TransposeMatMul": c_fused_matmul,
    "SkipLayerNormalization": c_skip_ln(False), "SkipSimplifiedLayerNormalization": c_skip_ln(True),
    "MultiHeadAttention": c_mha, "GroupQueryAttention": c_gqa, "GatherBlockQuantized": c_gather_block_quantized,
    "UnfoldTensor": c_unfold, "FusedConv": c_fused_conv, "FusedGemm": c_fused_gemm,
    **{op: c_qlinear_unary(op) for op in ("QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax")},
    "Inverse": c_inverse, "Trilu": c_trilu, "DynamicQuantizeMatMul": c_dq_matmul,
    "MatMulIntegerToFloat": c_matmul_int_to_float, "CDist": c_cdist, "ExpandDims": c_expand_dims,
    "QLinearConv": c_qlinear_conv, "QGemm": c_qgemm, "QLinearAveragePool": c_qlinear_avgpool,
    "QLinearGlobalAveragePool": c_qlinear_gap, "QLinearConcat": c_qlinear_concat, "QLinearWhere": c_qlinear_where,
    "NhwcMaxPool": c_nhwc_maxpool, "MaxpoolWithMask": c_maxpool_mask, "GridSample": c_grid_sample,
    "CropAndResize": c_crop_and_resize, "QAttention": c_qattention, "Unique": c_unique,
    **{op: c_gated(op) for op in ("GatedRMSNorm", "GatedAdd", "SampleOp")},
    "NGramRepeatBlock": c_ngram_repeat, "MurmurHash3": c_murmur, "MatMulBnb4": c_matmul_bnb4,
    "DynamicQuantizeLSTM": c_dq_lstm, "LinearAttention": c_linear_attention,
    "LinearAttentionGate": c_linear_attention_gate, "EngramGate": c_engram, "WordConvEmbedding": c_word_conv,
    "CausalConvWithState": c_causal_conv, "VarlenCausalConvWithState": c_varlen_causal_conv,
    "MoEGroupRouter": c_moe_router, "GatedDeltaNet": c_gated_delta_net, "GatherPacked": c_gather_packed,
    "ConvTransposeWithDynamicPads": c_conv_transpose_pads, "MatMulFpQ4": c_matmul_fpq4, "QMoE": c_qmoe,
    "AttnLSTM": c_attn_lstm,
    # (sized by onnxruntime's symbolic shape inference)
    "Attention": c_attention, "EmbedLayerNormalization": c_embed_ln, "RotaryEmbedding": c_rotary,
    "MatMulNBits": c_matmul_nbits, **{op: c_elementwise(op) for op in ("BiasGelu", "FastGelu", "Gelu", "QuickGelu")},
    "QLinearAdd": c_qlinear_binary, "QLinearMul": c_qlinear_binary, "MatMulInteger16": c_matmul_int16,
    "MRotaryEmbedding": c_mrotary, "QEmbedLayerNormalization": c_qembed_ln,
    "DynamicTimeWarping": c_dtw, "MoE": c_moe, "DequantizeLinear": c_dequantize_linear,
    "QuantizeLinear": c_quantize_linear, "Range": c_range, "Pad": c_pad, "GatherND": c_gathernd,
    **{op: c_hyper(op) for op in ("HyperConnectionPreMix", "HyperConnectionPostMix", "BranchwiseRMSNorm",
                                  "ScaledSiLU")},
}


def build(op: str, case: Case):
    """The model of one ``op`` node ``n`` (domain com.microsoft) of ``case``, and its feeds."""
    ins, attrs, outs = case
    asked = outs if isinstance(outs, tuple) else (True,) * outs
    names = [f"y{k}" if on else "" for k, on in enumerate(asked)]
    while names and not names[-1]:
        names.pop()
    typed = {f"y{k}": on for k, on in enumerate(asked) if not isinstance(on, bool) and on}
    graph_ins, inits, feeds = [], [], {}
    for name, value, const in ins:
        if not name:
            continue
        if isinstance(value, onnx.TensorProto):
            value.name = name
            inits.append(value)
        elif const:
            inits.append(numpy_helper.from_array(value, name))
        else:
            graph_ins.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                           list(value.shape)))
            feeds[name] = value
    node = helper.make_node(op, [i[0] for i in ins], names, domain=MS, name="n", **attrs)
    outs = [helper.make_tensor_value_info(o, typed[o], None) if o in typed else helper.ValueInfoProto(name=o)
            for o in names if o]
    g = helper.make_graph([node], "g", graph_ins, outs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)], ir_version=10)
    return m, feeds


#: onnxruntime's output type names -> ONNX elem types (for declaring an output of the type it has)
_ELEM = {"float": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9, "float16": 10,
         "double": 11, "uint32": 12, "uint64": 13, "bfloat16": 16, "int4": 22, "uint4": 21}


def declared_small(model, feeds) -> onnx.ModelProto | None:
    """A copy of ``model`` whose node outputs are each declared ``[1]`` of the type onnxruntime gives them: an
    output no rule or inference sizes is planned at its declaration, so a declaration smaller than the kernel's
    output finds it (``UNDER`` in declared mode). None where onnxruntime cannot run ``model``."""
    from onnx_oracle import _session

    try:
        types = {o.name: o.type for o in _session(model, None).get_outputs()}
    except Exception:  # noqa: BLE001 - onnxruntime refuses it: nothing to declare
        return None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for o in m.graph.output:
        t = types.get(o.name, "")[len("tensor("):-1]
        if t in _ELEM:
            o.CopyFrom(helper.make_tensor_value_info(o.name, _ELEM[t], [1]))
    return m


def as_float16(case: Case) -> Case:
    """``case`` with every float32 input float16 (a rule that takes the output's type from the wrong input, or
    writes float where the kernel writes its input's type, is found where onnxruntime has a float16 kernel)."""
    ins, attrs, outs = case
    return [(k, v.astype(np.float16) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v, c)
            for k, v, c in ins], attrs, outs


def sweep(op: str, trials: int, declared: bool = False, f16: bool = False) -> tuple[list[str], int, int, int]:
    """(one line per finding, draws onnxruntime ran, draws it refused, outputs compared) of ``trials`` draws of
    ``op``."""
    found, ran, refused, compared = [], 0, 0, 0
    for seed in range(trials):
        r = np.random.default_rng(seed)
        case = CASES[op](r)
        model, feeds = build(op, as_float16(case) if f16 else case)
        real = ort_sizes(model, feeds, strict=False)
        if declared and real is not None:
            model = declared_small(model, feeds) or model
        if real is None:
            refused += 1
            continue
        ran += 1
        shapes = {vi.name: list(vi.type.tensor_type.shape.dim) for vi in model.graph.input}
        given = {k: [d.dim_value for d in v] for k, v in shapes.items()}
        try:
            planned = {t.id: t.size for t in import_onnx(model).tensors}
        except MemplanError as exc:
            if "depends on values computed at run time" in str(exc) or declared:
                continue   # (a data-dependent output, refused as such; a declaration refused: right)
            found.append(f"{op} seed {seed}: refused where onnxruntime runs it: {str(exc)[:300]} (inputs {given})")
            continue
        for o in (o for o in model.graph.node[0].output if o):
            compared += o in real and o in planned
            if o in real and o in planned and planned[o] != real[o]:
                kind = "UNDER" if planned[o] < real[o] else "over"
                attrs = {a.name: helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
                found.append(f"{op} seed {seed}: {kind}: {o!r} planned {planned[o]} B, onnxruntime wrote {real[o]} B "
                             f"(inputs {given}, attrs {attrs})")
    return found, ran, refused, compared


def main(argv: list[str]) -> int:
    from memplan.importers.onnx import ort_ops

    declared, f16 = "--declared" in argv, "--float16" in argv
    argv = [a for a in argv if a not in ("--declared", "--float16")]
    trials = int(argv[0]) if argv and argv[0].isdigit() else 6
    ops = [a for a in argv if not a.isdigit()] or sorted(CASES)
    under, never = 0, []
    for op in ops:
        found, ran, refused, compared = sweep(op, trials, declared, f16)
        under += sum(" UNDER:" in line for line in found)
        for line in found:
            print(line)
        if not ran:
            never.append(op)
        print(f"# {op}: {ran} run ({compared} outputs compared), {refused} refused by onnxruntime, {len(found)} "
              "findings", flush=True)
    missing = sorted(set(ort_ops.ORT_RULES) - set(CASES) - set(ort_ops.ORT_GPU_RULES))
    print(f"under-sized outputs: {under}; ops onnxruntime ran no draw of: {', '.join(never) or 'none'}; "
          f"ruled CPU ops with no generator: {', '.join(missing) or 'none'}")
    return 1 if under else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
