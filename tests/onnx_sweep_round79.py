"""Differential sweep (round 79): small random models over op families and corners round 78's sweep did not draw,
against onnxruntime.

Why: round 78's sweep (``onnx_sweep_round78``) drew one-op models of resizing, padding, slicing, gathers, pooling,
quantization and signal ops; the recurrent ops, grouped and dilated convolutions, the losses, the data-dependent ops
(NonMaxSuppression, Unique, TopK of a fed k), and the small ops that size a value by an attribute (EyeLike's ``k``,
Shape's ``start`` / ``end``, CenterCropPad, Col2Im, ReverseSequence, LpPool) were reached only at onnx's own node cases.
Each case is drawn by a seeded generator, so the sweep is deterministic; every planned value is held against the
bytes onnxruntime's CPU provider writes, by round 78's comparison (``onnx_sweep_round78.compare``).

Run: ``python tests/onnx_sweep_round79.py [--count N] [--show N] [NAME_SUBSTRING ...]`` from the repository root
(``PYTHONPATH=$PWD:$PWD/tests``). Exit status 1 on any failing class (``onnx_sweep_round78.FAILING``).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import numpy as np
import onnx_sweep_driver as driver
import onnx_sweep_round78 as sweep78
from onnx import TensorProto as T
from onnx import helper, numpy_helper

Case, one_op, _arr = sweep78.Case, sweep78.one_op, sweep78._arr
V, U = sweep78.V, sweep78.U


def rnn(r: random.Random, k: int) -> Case:
    op = r.choice(["LSTM", "GRU", "RNN"])
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    direction = r.choice(["forward", "reverse", "bidirectional"])
    nd = 2 if direction == "bidirectional" else 1
    seq, batch, inp, hid = r.randint(1, 4), r.randint(1, 3), r.randint(1, 4), r.randint(1, 4)
    layout = r.randint(0, 1) if r.random() < .5 else 0
    opset = r.choice([14, 21]) if layout or r.random() < .5 else r.choice([7, 14, 21])
    xs = [seq, batch, inp] if layout == 0 else [batch, seq, inp]
    ins = {"x": _arr(r, xs), "w": _arr(r, [nd, gates * hid, inp]), "r": _arr(r, [nd, gates * hid, hid])}
    ins["b"] = _arr(r, [nd, 2 * gates * hid]) if r.random() < .6 else None
    ins["sl"] = np.array([r.randint(1, seq) for _ in range(batch)], np.int32) if r.random() < .4 else None
    hs = [nd, batch, hid] if layout == 0 else [batch, nd, hid]
    ins["h0"] = _arr(r, hs) if r.random() < .4 else None
    if op == "LSTM":
        ins["c0"] = _arr(r, hs) if r.random() < .3 else None
        ins["p"] = _arr(r, [nd, 3 * hid]) if r.random() < .2 else None
    outs = [o if r.random() < .7 else "" for o in (["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"])]
    if not any(outs):
        outs[0] = "y"
    while not outs[-1]:
        outs.pop()
    attrs = {"hidden_size": hid, "direction": direction}
    if layout:
        attrs["layout"] = 1
    if op == "GRU" and r.random() < .5:
        attrs["linear_before_reset"] = 1
    consts = ("w", "r", "b", "p", "sl") if r.random() < .7 else ("w", "r", "b", "p")
    c = one_op(f"rnn{k}_o{opset}_{op}_{direction}_l{layout}", op, ins, outs, consts, opset=opset, **attrs)
    c.dynamic = False   # (sequence_lens never sizes an output)
    return c


def conv(r: random.Random, k: int) -> Case:
    rank = r.choice([1, 2, 2, 3])
    g = r.randint(1, 3)
    cin, cout = g * r.randint(1, 2), g * r.randint(1, 2)
    ks = [r.randint(1, 3) for _ in range(rank)]
    dil = [r.randint(1, 3) for _ in range(rank)]
    st = [r.randint(1, 3) for _ in range(rank)]
    transpose = r.random() < .4
    sp = [r.randint(max(1, (kk - 1) * d + 1 - 2), 9) for kk, d in zip(ks, dil)]
    x = _arr(r, [r.randint(1, 2), cin] + sp)
    w = _arr(r, ([cin, cout // g] if transpose else [cout, cin // g]) + ks)
    attrs = {"group": g, "dilations": dil, "strides": st}
    if r.random() < .5:
        attrs["kernel_shape"] = ks
    mode = r.choice(["pads", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
    if mode == "pads":
        attrs["pads"] = [r.randint(0, 2) for _ in range(2 * rank)]
    elif mode != "NOTSET":
        attrs["auto_pad"] = mode
    if transpose and r.random() < .4:
        attrs["output_padding"] = [r.randint(0, max(s, d) - 1) for s, d in zip(st, dil)]
    ins = {"x": x, "w": w, "b": _arr(r, [cout]) if r.random() < .5 else None}
    op = "ConvTranspose" if transpose else "Conv"
    return one_op(f"conv{k}_{op}_g{g}_{mode}", op, ins, ["y"], ("w", "b"), opset=r.choice([11, 18, 21]), **attrs)


def data_dependent(r: random.Random, k: int) -> Case:
    kind = r.choice(["nms", "unique", "topk", "nonzero"])
    if kind == "nms":
        b, c, n = r.randint(1, 2), r.randint(1, 3), r.randint(0, 5)
        ins = {"boxes": _arr(r, [b, n, 4]), "scores": _arr(r, [b, c, n]),
               "m": np.array([r.randint(0, 3)], np.int64) if r.random() < .8 else None,
               "iou": np.array([r.choice([0.0, 0.5])], np.float32) if r.random() < .7 else None,
               "sth": np.array([0.0], np.float32) if r.random() < .5 else None}
        case = one_op(f"dd{k}_nms", "NonMaxSuppression", ins, ["y"], ("m", "iou", "sth"),
                      center_point_box=r.randint(0, 1), opset=r.choice([11, 21]))
    elif kind == "unique":
        # (no empty input: onnxruntime's Unique of one aborts the process)
        x = _arr(r, [r.randint(1, 5) for _ in range(r.randint(1, 2))], r.choice([np.float32, np.int64]), 0, 3)
        attrs = {"sorted": r.randint(0, 1)}
        if r.random() < .5:
            attrs["axis"] = r.randrange(-x.ndim, x.ndim)
        outs = ["y", "idx", "inv", "cnt"][: r.randint(1, 4)]
        case = one_op(f"dd{k}_unique", "Unique", {"x": x}, outs, opset=r.choice([11, 21]), **attrs)
    elif kind == "topk":
        x = _arr(r, [r.randint(1, 5) for _ in range(r.randint(1, 3))])
        ax = r.randrange(-x.ndim, x.ndim)
        kk = np.array([r.randint(0, x.shape[ax])], np.int64)
        case = one_op(f"dd{k}_topk", "TopK", {"x": x, "k": kk}, ["v", "i"], () if r.random() < .5 else ("k",),
                      axis=ax, largest=r.randint(0, 1), sorted=r.randint(0, 1))
    else:
        x = _arr(r, [r.randint(0, 4) for _ in range(r.randint(0, 3))], r.choice([np.float32, np.int64, np.bool_]))
        case = one_op(f"dd{k}_nonzero", "NonZero", {"x": x}, ["y"])
    case.dynamic = case.dynamic or kind != "topk"   # (a TopK of a constant k is sized at import)
    return case


def small(r: random.Random, k: int) -> Case:
    """The small ops that size a value by an attribute or a constant input."""
    kind = r.choice(["eyelike", "shape", "ccp", "col2im", "revseq", "lppool", "castlike", "bitshift", "mod",
                     "where0", "expand0", "random", "trilu", "loss", "hardmax", "lpnorm", "deform"])
    if kind == "eyelike":
        x = _arr(r, [r.randint(0, 4), r.randint(0, 4)], r.choice([np.float32, np.int64]))
        attrs = {"k": r.randint(-5, 5)}
        if r.random() < .5:
            attrs["dtype"] = r.choice([T.FLOAT, T.INT32, T.DOUBLE, T.BOOL, T.UINT8])
        return one_op(f"small{k}_eyelike", "EyeLike", {"x": x}, ["y"], opset=r.choice([9, 21]), **attrs)
    if kind == "shape":
        x = _arr(r, [r.randint(0, 3) for _ in range(r.randint(0, 4))])
        attrs = {}
        for a in ("start", "end"):
            if r.random() < .6:
                attrs[a] = r.randint(-6, 6)
        return one_op(f"small{k}_shape", "Shape", {"x": x}, ["y"], opset=r.choice([15, 19, 21]), **attrs)
    if kind == "ccp":
        rank = r.randint(1, 3)
        x = _arr(r, [r.randint(1, 5) for _ in range(rank)])
        axes = sorted(r.sample(range(rank), r.randint(1, rank))) if r.random() < .5 else None
        n = len(axes) if axes else rank
        ins = {"x": x, "s": np.array([r.randint(0, 7) for _ in range(n)], np.int64)}
        attrs = {"axes": [a - rank if r.random() < .5 else a for a in axes]} if axes else {}
        return one_op(f"small{k}_ccp", "CenterCropPad", ins, ["y"], ("s",), opset=18, **attrs)
    if kind == "col2im":
        nd = r.choice([1, 2, 3]) if r.random() < .3 else 2
        img = [r.randint(2, 6) for _ in range(nd)]
        blk = [r.randint(1, 3) for _ in range(nd)]
        dil = [r.randint(1, 2) for _ in range(nd)]
        st = [r.randint(1, 2) for _ in range(nd)]
        pads = [r.randint(0, 1) for _ in range(2 * nd)]
        L = 1
        for i in range(nd):
            eff = (blk[i] - 1) * dil[i] + 1
            L *= max(0, (img[i] + pads[i] + pads[i + nd] - eff) // st[i] + 1)
        c = r.randint(1, 2)
        ins = {"x": _arr(r, [r.randint(1, 2), c * int(np.prod(blk)), L]), "img": np.array(img, np.int64),
               "blk": np.array(blk, np.int64)}
        return one_op(f"small{k}_col2im{nd}", "Col2Im", ins, ["y"], ("img", "blk"), opset=18, dilations=dil,
                      strides=st, pads=pads)
    if kind == "revseq":
        t, b = r.randint(1, 4), r.randint(1, 4)
        ba = r.randint(0, 1)
        x = _arr(r, [b, t, 2] if ba == 0 else [t, b, 2])
        ins = {"x": x, "sl": np.array([r.randint(0, t) for _ in range(b)], np.int64)}
        return one_op(f"small{k}_revseq", "ReverseSequence", ins, ["y"], ("sl",) if r.random() < .5 else (),
                      batch_axis=ba, time_axis=1 - ba)
    if kind == "lppool":
        rank = r.choice([1, 2])
        x = _arr(r, [1, 2] + [r.randint(1, 7) for _ in range(rank)])
        attrs = {"kernel_shape": [r.randint(1, 3) for _ in range(rank)], "p": r.choice([1, 2, 3])}
        opset = r.choice([11, 18])
        if r.random() < .5:
            attrs["strides"] = [r.randint(1, 3) for _ in range(rank)]
        if r.random() < .4:
            attrs["pads"] = [r.randint(0, 1) for _ in range(2 * rank)]
        elif r.random() < .4:
            attrs["auto_pad"] = r.choice(["SAME_UPPER", "SAME_LOWER", "VALID"])
        if opset >= 18 and r.random() < .5:
            attrs["dilations"] = [r.randint(1, 2) for _ in range(rank)]
        if opset >= 18 and r.random() < .5:
            attrs["ceil_mode"] = 1
        return one_op(f"small{k}_lppool", "LpPool", {"x": x}, ["y"], opset=opset, **attrs)
    if kind == "castlike":
        x = _arr(r, [r.randint(0, 3), 2])
        like = np.zeros([r.randint(0, 2)], r.choice([np.float16, np.int8, np.float64, np.bool_, np.int32]))
        return one_op(f"small{k}_castlike", "CastLike", {"x": x, "like": like}, ["y"], ("like",), opset=21)
    if kind == "bitshift":
        dt = r.choice([np.uint8, np.uint32, np.uint64])
        a = _arr(r, [r.randint(0, 3), r.randint(1, 3)], dt, 0, 9)
        b = _arr(r, [r.choice([1, a.shape[1]])], dt, 0, 4)
        return one_op(f"small{k}_bitshift", "BitShift", {"a": a, "b": b}, ["y"], ("b",),
                      direction=r.choice(["LEFT", "RIGHT"]))
    if kind == "mod":
        dt = r.choice([np.float32, np.int32, np.int64, np.float64])
        a = _arr(r, [r.randint(0, 3), 1, r.randint(1, 3)], dt, 1, 9)
        b = _arr(r, [r.randint(1, 3), 1], dt, 1, 4)
        return one_op(f"small{k}_mod", "Mod", {"a": a, "b": b}, ["y"], ("b",),
                      fmod=1 if dt in (np.float32, np.float64) or r.random() < .5 else 0)
    if kind == "where0":
        shapes = [[r.choice([0, 1, 3]) for _ in range(r.randint(0, 3))] for _ in range(3)]
        ins = {"x": _arr(r, shapes[1]), "c": _arr(r, shapes[0], np.bool_), "y": _arr(r, shapes[2])}
        ins = {"x": ins["x"], "c": ins["c"], "y2": ins["y"]}
        node = one_op(f"small{k}_where0", "Where", ins, ["z"], ("c", "y2"))
        node.model.graph.node[0].input[:] = ["c", "x", "y2"]
        return node
    if kind == "expand0":
        x = _arr(r, [r.choice([0, 1, 2]) for _ in range(r.randint(0, 3))])
        shape = [r.choice([0, 1, 2]) for _ in range(r.randint(0, 4))]
        return one_op(f"small{k}_expand0", "Expand", {"x": x, "s": np.array(shape, np.int64)}, ["y"], ("s",))
    if kind == "random":
        op = r.choice(["Bernoulli", "RandomNormalLike", "RandomUniformLike"])
        x = _arr(r, [r.randint(0, 3), r.randint(1, 3)], r.choice([np.float32, np.float64]))
        attrs = {"seed": 1.0}
        if r.random() < .5:
            attrs["dtype"] = r.choice([T.FLOAT, T.DOUBLE] + ([T.INT32, T.BOOL] if op == "Bernoulli" else []))
        if op == "Bernoulli":
            x = np.clip(x + .5, 0, 1).astype(x.dtype)
        return one_op(f"small{k}_{op}", op, {"x": x}, ["y"], opset=r.choice([15, 21]), **attrs)
    if kind == "trilu":
        x = _arr(r, [r.randint(0, 2)] + [r.randint(0, 4), r.randint(0, 4)])
        ins = {"x": x, "kk": np.array(r.randint(-4, 4), np.int64) if r.random() < .6 else None}
        return one_op(f"small{k}_trilu", "Trilu", ins, ["y"], ("kk",), upper=r.randint(0, 1))
    if kind == "loss":
        op = r.choice(["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
        n, c = r.randint(1, 3), r.randint(2, 4)
        extra = [r.randint(1, 3) for _ in range(r.randint(0, 2))]
        ins = {"x": _arr(r, [n, c] + extra), "t": np.asarray(_arr(r, [n] + extra, np.int64, 0, c)),
               "w": _arr(r, [c]) + 1 if r.random() < .4 else None}
        attrs = {"reduction": r.choice(["none", "mean", "sum"])}
        if r.random() < .3:
            attrs["ignore_index"] = 0
        outs = ["y"] + (["lp"] if op == "SoftmaxCrossEntropyLoss" and r.random() < .5 else [])
        c = one_op(f"small{k}_{op[:3]}_{attrs['reduction']}", op, ins, outs, ("w",), opset=r.choice([13, 21]),
                   **attrs)
        c.dynamic = False
        return c
    if kind == "hardmax":
        x = _arr(r, [r.randint(0, 3) for _ in range(r.randint(1, 3))])
        return one_op(f"small{k}_hardmax", "Hardmax", {"x": x}, ["y"], opset=r.choice([11, 13]),
                      axis=r.randrange(-x.ndim, x.ndim))
    if kind == "lpnorm":
        x = _arr(r, [r.randint(1, 3) for _ in range(r.randint(1, 3))])
        return one_op(f"small{k}_lpnorm", "LpNormalization", {"x": x}, ["y"], axis=r.randrange(-x.ndim, x.ndim),
                      p=r.choice([1, 2]))
    # DeformConv
    g = r.randint(1, 2)
    og = r.randint(1, 2)
    cin = g * og * r.randint(1, 2)
    ks = [r.randint(1, 3), r.randint(1, 3)]
    sp = [r.randint(3, 6), r.randint(3, 6)]
    st = [r.randint(1, 2), r.randint(1, 2)]
    dil = [r.randint(1, 2), r.randint(1, 2)]
    pads = [r.randint(0, 1) for _ in range(4)]
    out = [(sp[i] + pads[i] + pads[i + 2] - (ks[i] - 1) * dil[i] - 1) // st[i] + 1 for i in range(2)]
    ins = {"x": _arr(r, [1, cin] + sp), "w": _arr(r, [2 * g, cin // g] + ks),
           "off": _arr(r, [1, og * 2 * ks[0] * ks[1]] + out)}
    return one_op(f"small{k}_deform", "DeformConv", ins, ["y"], ("w",), opset=19, group=g, offset_group=og,
                  strides=st, dilations=dil, pads=pads)


def empty_concat(r: random.Random, k: int) -> Case:
    """A Concat of inputs of symbolic dimensions fixed at import (``dims``), some of them empty, whose other
    dimensions may differ from the rest (onnxruntime, loading the model with them symbolic, runs it)."""
    rank, n = r.randint(1, 3), r.randint(2, 4)
    axis = r.randrange(-rank, rank)
    base = [r.randint(1, 3) for _ in range(rank)]
    ins, symbolic, dims = {}, {}, {}
    for j in range(n):
        shape = [d if r.random() < .6 else r.randint(1, 4) for d in base]
        shape[axis] = r.randint(0, 3)
        if r.random() < .5:
            shape[r.randrange(rank)] = 0
        names = [f"d{j}_{a}" if r.random() < .7 else None for a in range(rank)]
        dims.update((nm, d) for nm, d in zip(names, shape) if nm)
        ins[f"x{j}"], symbolic[f"x{j}"] = _arr(r, shape), names
    case = one_op(f"ecat{k}_r{rank}_a{axis}", "Concat", ins, ["y"], symbolic=symbolic, dims=dims, axis=axis,
                  opset=r.choice([11, 13, 18]))
    return case


def old_opsets(r: random.Random, k: int) -> Case:
    """Ops at the opsets where an input was an attribute or a kernel was other (Split-2/11, Slice-1, TopK-1,
    Pad-2/11, Clip-6, ReduceSum-11, Squeeze-1/Unsqueeze-1, Dropout with its mask, BatchNormalization-9/14 training
    outputs, Upsample-7, Resize-10)."""
    kind = r.choice(["split", "slice", "topk", "pad", "clip", "reduce", "squeeze", "dropout", "bn", "resize10",
                     "flatten", "argmax", "gather", "tile", "cumsum"])
    x = _arr(r, [r.randint(1, 4) for _ in range(r.randint(1, 4))])
    rank = x.ndim
    if kind == "split":
        ax = r.randrange(-rank, rank)
        d = x.shape[ax]
        opset = r.choice([2, 11, 13, 18])
        cuts = sorted(r.choices(range(d + 1), k=r.randint(0, 2)))
        parts = [int(v) for v in np.diff([0] + cuts + [d])]
        n = len(parts) if r.random() < .6 else r.randint(1, max(1, d))
        attrs = {"axis": ax}
        ins = {"x": x}
        if r.random() < .6:
            if opset < 13:
                attrs["split"] = parts
            else:
                ins["sp"] = np.array(parts, np.int64)
            n = len(parts)
        elif opset >= 18:
            attrs["num_outputs"] = n
        outs = [f"y{j}" for j in range(n)]
        return one_op(f"old{k}_split_o{opset}", "Split", ins, outs, ("sp",), opset=opset, **attrs)
    if kind == "slice":
        axes = r.sample(range(rank), r.randint(1, rank))
        return one_op(f"old{k}_slice1", "Slice", {"x": x}, ["y"], opset=r.choice([1, 9]), axes=axes,
                      starts=[r.choice([0, 1, -1, -100, 2**62]) for _ in axes],
                      ends=[r.choice([0, 2, -1, 100, 2**62, -(2**62)]) for _ in axes])
    if kind == "topk":
        ax = r.randrange(-rank, rank) if r.random() < .7 else -1
        return one_op(f"old{k}_topk1", "TopK", {"x": x}, ["v", "i"], opset=r.choice([1, 9]), axis=ax,
                      k=r.randint(0, x.shape[ax]))
    if kind == "pad":
        opset = r.choice([2, 11])
        pads = [r.randint(-1, 2) for _ in range(2 * rank)]
        mode = r.choice(["constant", "reflect", "edge"])
        if opset == 2:
            return one_op(f"old{k}_pad2_{mode}", "Pad", {"x": x}, ["y"], opset=2, pads=pads, mode=mode, value=1.5)
        return one_op(f"old{k}_pad11_{mode}", "Pad", {"x": x, "p": np.array(pads, np.int64)}, ["y"], ("p",),
                      opset=11, mode=mode)
    if kind == "clip":
        return one_op(f"old{k}_clip6", "Clip", {"x": x}, ["y"], opset=6, min=-0.1, max=0.2)
    if kind == "reduce":
        op = r.choice(["ReduceSum", "ReduceMax", "ReduceMean", "ReduceL2", "ArgMax"])
        attrs = {"keepdims": r.randint(0, 1)}
        if op == "ArgMax":
            attrs["axis"] = r.randrange(-rank, rank)
        elif r.random() < .7:
            attrs["axes"] = sorted(r.sample(range(rank), r.randint(1, rank)))
        return one_op(f"old{k}_{op}_o11", op, {"x": x}, ["y"], opset=r.choice([1, 11]), **attrs)
    if kind == "squeeze":
        x = _arr(r, [r.choice([1, 1, 2]) for _ in range(r.randint(1, 4))])
        ones = [a for a in range(x.ndim) if x.shape[a] == 1]
        if r.random() < .5 and ones:
            return one_op(f"old{k}_squeeze1", "Squeeze", {"x": x}, ["y"], opset=r.choice([1, 11]),
                          **({"axes": r.sample(ones, r.randint(1, len(ones)))} if r.random() < .7 else {}))
        axes = sorted(r.sample(range(x.ndim + 2), r.randint(1, 2)))
        return one_op(f"old{k}_unsqueeze1", "Unsqueeze", {"x": x}, ["y"], opset=r.choice([1, 11]), axes=axes)
    if kind == "dropout":
        opset = r.choice([7, 10, 12, 13])
        outs = ["y", "mask"] if r.random() < .6 else ["y"]
        if opset >= 12:
            ins = {"x": x, "ratio": np.array(0.3, np.float32) if r.random() < .5 else None,
                   "train": np.array(False) if r.random() < .5 else None}
            return one_op(f"old{k}_dropout{opset}", "Dropout", ins, outs, ("ratio", "train"), opset=opset)
        return one_op(f"old{k}_dropout{opset}", "Dropout", {"x": x}, outs, opset=opset, ratio=0.3)
    if kind == "bn":
        c = r.randint(1, 3)
        x = _arr(r, [r.randint(1, 2), c] + [r.randint(1, 3) for _ in range(r.randint(0, 2))])
        opset = r.choice([9, 14, 15])
        ins = {"x": x, "s": _arr(r, [c]), "b": _arr(r, [c]), "m": _arr(r, [c]), "v": np.abs(_arr(r, [c])) + 1}
        training = r.random() < .4 and opset >= 14
        outs = ["y", "rm", "rv"] if training else ["y"]
        attrs = {"training_mode": 1} if training else {}
        return one_op(f"old{k}_bn{opset}{'_train' if training else ''}", "BatchNormalization", ins, outs,
                      ("s", "b", "m", "v"), opset=opset, **attrs)
    if kind == "resize10":
        x = _arr(r, [1, 1, r.randint(1, 5), r.randint(1, 5)])
        sc = np.array([1, 1, r.choice([0.5, 1.5, 2.0, 0.7]), r.choice([0.6, 1.0, 2.5])], np.float32)
        return one_op(f"old{k}_resize10", "Resize", {"x": x, "sc": sc}, ["y"], ("sc",), opset=10,
                      mode=r.choice(["nearest", "linear"]))
    if kind == "flatten":
        return one_op(f"old{k}_flatten", "Flatten", {"x": x}, ["y"], opset=r.choice([1, 9, 11, 13]),
                      axis=r.randint(0, rank) if r.random() < .5 else r.randint(-rank, rank))
    if kind == "argmax":
        return one_op(f"old{k}_argmax12", "ArgMin", {"x": x}, ["y"], opset=12, axis=r.randrange(-rank, rank),
                      keepdims=r.randint(0, 1), select_last_index=r.randint(0, 1))
    if kind == "gather":
        ax = r.randrange(-rank, rank)
        cols = r.randint(0, 3)
        rows = r.randint(1, 2)
        idx = np.array([r.randrange(-x.shape[ax], x.shape[ax]) for _ in range(rows * cols)],
                       np.int64).reshape(rows, cols)
        return one_op(f"old{k}_gather", "Gather", {"x": x, "i": idx}, ["y"], ("i",), opset=r.choice([1, 11]),
                      axis=ax)
    if kind == "tile":
        reps = np.array([r.randint(0, 3) for _ in range(rank)], np.int64)
        return one_op(f"old{k}_tile6", "Tile", {"x": x, "r": reps}, ["y"], ("r",), opset=6)
    return one_op(f"old{k}_cumsum", "CumSum", {"x": x, "a": np.array(r.randrange(-rank, rank), np.int32)}, ["y"],
                  ("a",), opset=11, exclusive=r.randint(0, 1), reverse=r.randint(0, 1))


def quantized(r: random.Random, k: int) -> Case:
    """QLinearMatMul, MatMulInteger and ConvInteger over broadcast batch dimensions and zero points."""
    kind = r.choice(["qmm", "mmi", "convi"])
    dt = r.choice([np.uint8, np.int8])
    if kind in ("qmm", "mmi"):
        m, kk, n = r.randint(1, 3), r.randint(1, 4), r.randint(1, 3)
        ba = [r.randint(1, 3) for _ in range(r.randint(0, 2))]
        bb = [r.choice([1, d]) for d in ba][len(ba) - r.randint(0, len(ba)):]
        a = _arr(r, ba + [m, kk] if r.random() < .9 else [kk], dt, 0, 5)
        b = _arr(r, bb + [kk, n] if r.random() < .9 else [kk], dt, 0, 5)
        if kind == "mmi":
            ins = {"a": a, "b": b, "az": np.array(1, dt) if r.random() < .5 else None,
                   "bz": np.array(2, dt) if r.random() < .5 else None}
            return one_op(f"q{k}_mmi", "MatMulInteger", ins, ["y"], ("b", "az", "bz"), opset=10)
        ins = {"a": a, "as": np.array(0.1, np.float32), "az": np.array(1, dt), "b": b, "bs": np.array(0.2, np.float32),
               "bz": np.array(0, dt), "ys": np.array(0.3, np.float32), "yz": np.array(3, dt)}
        return one_op(f"q{k}_qmm", "QLinearMatMul", ins, ["y"], tuple(ins)[1:], opset=r.choice([10, 21]))
    g = r.randint(1, 2)
    cin, cout = g * r.randint(1, 2), g * r.randint(1, 2)
    ks = [r.randint(1, 3), r.randint(1, 3)]
    x = _arr(r, [1, cin, r.randint(3, 6), r.randint(3, 6)], np.uint8, 0, 5)
    w = _arr(r, [cout, cin // g] + ks, np.uint8, 0, 5)
    attrs = {"group": g, "strides": [r.randint(1, 2), r.randint(1, 2)], "dilations": [r.randint(1, 2), 1]}
    if r.random() < .5:
        attrs["pads"] = [r.randint(0, 1) for _ in range(4)]
    ins = {"x": x, "w": w, "xz": np.array(1, np.uint8) if r.random() < .5 else None}
    return one_op(f"q{k}_convi", "ConvInteger", ins, ["y"], ("w", "xz"), opset=10, **attrs)


def _body(nodes: list, ins: list, outs: list, name: str = "body"):
    return helper.make_graph(nodes, name, ins, outs)


def flow(r: random.Random, k: int) -> Case:
    """If, Loop and Scan whose bodies read values of the outer scope (nested one level at times), with constant trip
    counts and conditions (sized at import) or fed ones (a refusal is then right where the sizes follow them)."""
    kind = r.choice(["if", "loop", "scan"])
    shape = [r.randint(1, 3), r.randint(1, 3)]
    x = _arr(r, shape)
    nodes = [helper.make_node("Relu", ["x"], ["o"])]
    inits, inputs, feeds, dynamic = [], [V("x", T.FLOAT, shape)], {"x": x}, False
    opset = r.choice([13, 16, 18, 21])
    if kind == "if":
        if r.random() < .6:
            inits.append(numpy_helper.from_array(np.array(r.random() < .5), "c"))
        else:
            inputs.append(V("c", T.BOOL, []))
            feeds["c"] = np.array(r.random() < .5)
            dynamic = True
        then_ops = r.choice([["Relu"], ["Transpose"], ["Flatten"], ["Neg", "Relu"]])
        else_ops = r.choice([["Sigmoid"], ["Transpose"], ["Identity"]])

        def branch(ops: list[str], tag: str):
            v, ns = "o", []
            for j, op in enumerate(ops):
                ns.append(helper.make_node(op, [v], [f"{tag}{j}"]))
                v = f"{tag}{j}"
            return _body(ns, [], [U(name=v)], tag)
        nodes.append(helper.make_node("If", ["c"], ["y"], then_branch=branch(then_ops, "t"),
                                      else_branch=branch(else_ops, "e")))
        out = "y"
    elif kind == "loop":
        trip = r.randint(0, 3)
        inits += [numpy_helper.from_array(np.array(trip, np.int64), "M"), numpy_helper.from_array(np.array(True), "t")]
        if r.random() < .3:
            inputs.append(V("Mf", T.INT64, []))
            feeds["Mf"] = np.array(trip, np.int64)
            m, dynamic = "Mf", True
        else:
            m = "M"
        grow = r.random() < .4
        body_nodes = [helper.make_node("Identity", ["cin"], ["cout"])]
        if grow:   # (a carried value growing by the outer value each iteration: onnxruntime sizes each anew)
            body_nodes.append(helper.make_node("Concat", ["v", "o"], ["vo"], axis=0))
        else:
            body_nodes.append(helper.make_node("Add", ["v", "o"], ["vo"]))
        body_nodes.append(helper.make_node(r.choice(["Mul", "Sub"]), ["v", "o"], ["sc"]) if not grow else
                          helper.make_node("ReduceSum", ["o"], ["sc"], keepdims=0))
        if r.random() < .3:   # (a nested If on the iteration number)
            inner_c = helper.make_node("Less", ["i", "two"], ["ic"])
            two = helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2, np.int64)))
            nodes_t = _body([helper.make_node("Neg", ["sc"], ["ti"])], [], [U(name="ti")], "it")
            nodes_e = _body([helper.make_node("Abs", ["sc"], ["ei"])], [], [U(name="ei")], "ie")
            body_nodes += [two, inner_c, helper.make_node("If", ["ic"], ["sc2"], then_branch=nodes_t,
                                                          else_branch=nodes_e)]
            scan_out = "sc2"
        else:
            scan_out = "sc"
        body = _body(body_nodes, [V("i", T.INT64, []), V("cin", T.BOOL, []), U(name="v")],
                     [U(name="cout"), U(name="vo"), U(name=scan_out)])
        nodes.append(helper.make_node("Loop", [m, "t", "x"], ["y", "ys"], body=body))
        out = "ys" if r.random() < .5 else "y"
        dynamic = dynamic or grow
    else:
        axis = r.randint(0, 1)
        oaxis = r.randint(0, 1)
        body = _body([helper.make_node("Add", ["s", "xi"], ["s2"]), helper.make_node("Mul", ["xi", "w"], ["yi"])],
                     [U(name="s"), U(name="xi")], [U(name="s2"), U(name="yi")])
        other = shape[1 - axis]
        inits.append(numpy_helper.from_array(np.zeros([other], np.float32), "s0"))
        nodes.append(helper.make_node("Relu", ["s0"], ["w"]))
        nodes.append(helper.make_node("Scan", ["s0", "o"], ["sf", "y"], body=body, num_scan_inputs=1,
                                      scan_input_axes=[axis], scan_output_axes=[oaxis],
                                      scan_input_directions=[r.randint(0, 1)],
                                      scan_output_directions=[r.randint(0, 1)]))
        out = r.choice(["sf", "y"])
    g = helper.make_graph(nodes, "g", inputs, [U(name=out)], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return Case(f"flow{k}_{kind}_o{opset}", model, feeds, dynamic=dynamic)


def recent(r: random.Random, k: int) -> Case:
    """The ops of opsets 20-24: Attention (3-D and 4-D, a past cache, masks, grouped heads, the QK output),
    RotaryEmbedding, RMSNormalization, TensorScatter, Swish, CumProd, BitCast, Det, TfIdfVectorizer."""
    kind = r.choice(["attention", "attention", "rotary", "rms", "scatter", "swish", "cumprod", "bitcast", "det",
                     "tfidf"])
    if kind == "attention":
        b, hkv = r.randint(1, 2), r.randint(1, 2)
        hq = hkv * r.randint(1, 2)
        sq, skv, p, d, dv = r.randint(1, 3), r.randint(1, 3), r.randint(0, 3), r.choice([2, 4]), r.choice([2, 4])
        four = r.random() < .5
        if four:
            ins = {"q": _arr(r, [b, hq, sq, d]), "k": _arr(r, [b, hkv, skv, d]), "v": _arr(r, [b, hkv, skv, dv])}
            attrs = {}
        else:
            ins = {"q": _arr(r, [b, sq, hq * d]), "k": _arr(r, [b, skv, hkv * d]), "v": _arr(r, [b, skv, hkv * dv])}
            attrs = {"q_num_heads": hq, "kv_num_heads": hkv}
        total = p + skv if r.random() < .5 else skv
        past = total > skv
        mask = r.choice([None, [sq, total], [1, 1, sq, total], [b, 1, sq, total], [hq, sq, total]])
        ins["mask"] = (_arr(r, mask, np.bool_) if r.random() < .5 else _arr(r, mask)) if mask else None
        ins["pk"] = _arr(r, [b, hkv, p, d]) if past else None
        ins["pv"] = _arr(r, [b, hkv, p, dv]) if past else None
        if r.random() < .3:
            attrs["is_causal"] = 1
        if r.random() < .3:
            attrs["qk_matmul_output_mode"] = r.randint(0, 3)
        if r.random() < .3:
            attrs["softcap"] = 2.0
        outs = ["y"] + (["pk_out", "pv_out"] if past or r.random() < .5 else [])
        if r.random() < .4:
            outs = (outs + ["", ""])[:3] + ["qk"]
        c = one_op(f"rec{k}_attn{4 if four else 3}d", "Attention", ins, outs, ("mask",), opset=r.choice([23, 24]),
                   **attrs)
        c.dynamic = False
        return c
    if kind == "rotary":
        b, s_, h, d = r.randint(1, 2), r.randint(1, 3), r.randint(1, 2), r.choice([4, 8])
        rot = r.choice([0, d // 2]) if r.random() < .5 else 0
        half = (rot or d) // 2
        four = r.random() < .5
        x = _arr(r, [b, h, s_, d] if four else [b, s_, h * d])
        pos = r.random() < .6
        ins = {"x": x, "cos": _arr(r, [64, half] if pos else [b, s_, half]),
               "sin": _arr(r, [64, half] if pos else [b, s_, half]),
               "pos": np.array([[r.randint(0, 63) for _ in range(s_)] for _ in range(b)], np.int64) if pos else None}
        attrs = {"interleaved": r.randint(0, 1)}
        if rot:
            attrs["rotary_embedding_dim"] = rot
        if not four:
            attrs["num_heads"] = h
        c = one_op(f"rec{k}_rotary", "RotaryEmbedding", ins, ["y"], ("cos", "sin", "pos"), opset=23, **attrs)
        return c
    if kind == "rms":
        x = _arr(r, [r.randint(1, 3) for _ in range(r.randint(1, 3))])
        ax = r.randrange(-x.ndim, x.ndim)
        scale = _arr(r, list(x.shape[ax % x.ndim:]))
        return one_op(f"rec{k}_rms", "RMSNormalization", {"x": x, "s": scale}, ["y"], ("s",), opset=23, axis=ax)
    if kind == "scatter":
        b, s_, d, maxs = r.randint(1, 2), r.randint(1, 2), r.randint(1, 3), r.randint(3, 5)
        ax = r.choice([1, -2])
        cache = _arr(r, [b, maxs, d])
        upd = _arr(r, [b, s_, d])
        ins = {"c": cache, "u": upd, "wi": np.array([r.randint(0, maxs - s_) for _ in range(b)], np.int64)
               if r.random() < .6 else None}
        return one_op(f"rec{k}_tscatter", "TensorScatter", ins, ["y"], ("wi",), opset=24, axis=ax,
                      mode=r.choice(["linear", "circular"]))
    if kind == "swish":
        return one_op(f"rec{k}_swish", "Swish", {"x": _arr(r, [r.randint(0, 3), 2])}, ["y"], opset=24, alpha=1.5)
    if kind == "cumprod":
        x = _arr(r, [r.randint(1, 3), r.randint(1, 3)], r.choice([np.float32, np.int64]))
        return one_op(f"rec{k}_cumprod", "CumProd", {"x": x, "a": np.array(r.randint(-2, 1), np.int64)}, ["y"],
                      ("a",), opset=26, exclusive=r.randint(0, 1), reverse=r.randint(0, 1))
    if kind == "bitcast":
        x = _arr(r, [r.randint(1, 3), 4], r.choice([np.float32, np.int32, np.int64, np.uint8]))
        to = r.choice([T.FLOAT, T.INT32, T.UINT8, T.INT64, T.FLOAT16, T.INT16])
        return one_op(f"rec{k}_bitcast", "BitCast", {"x": x}, ["y"], opset=26, to=to)
    if kind == "det":
        n = r.randint(1, 3)
        x = _arr(r, [r.randint(0, 2) for _ in range(r.randint(0, 2))] + [n, n])
        return one_op(f"rec{k}_det", "Det", {"x": x}, ["y"], opset=r.choice([11, 22]))
    x = _arr(r, [r.randint(1, 2), r.randint(1, 6)] if r.random() < .6 else [r.randint(1, 6)], np.int64, 0, 4)
    attrs = {"mode": r.choice(["TF", "IDF", "TFIDF"]), "min_gram_length": 1, "max_gram_length": r.randint(1, 2),
             "max_skip_count": r.randint(0, 1), "ngram_counts": [0, 3], "ngram_indexes": [0, 1, 2, 3, 4],
             "pool_int64s": [0, 1, 2, 0, 1, 1, 2]}
    if attrs["max_gram_length"] == 1:
        attrs["ngram_counts"], attrs["ngram_indexes"], attrs["pool_int64s"] = [0], [0, 1, 2], [0, 1, 2]
    return one_op(f"rec{k}_tfidf", "TfIdfVectorizer", {"x": x}, ["y"], opset=9, **attrs)


def sub_byte(r: random.Random, k: int) -> Case:
    """Values of the sub-byte and 8-bit float types at odd element counts: QuantizeLinear to int4 / uint4 / float8
    / float4 (``output_dtype``), Cast and CastLike to them and back, a Reshape or Transpose of them, and sampling ops
    whose ``dtype`` names the output type (Multinomial, RandomNormal, RandomUniform)."""
    kind = r.choice(["quant", "cast", "random"])
    shape = [r.randint(1, 3), r.randint(1, 5)] if r.random() < .7 else [r.randint(1, 7)]
    x = _arr(r, shape)
    small = [T.INT4, T.UINT4, T.FLOAT8E4M3FN, T.FLOAT8E5M2, T.FLOAT4E2M1, T.UINT8, T.INT8, T.INT16]
    if kind == "quant":
        to = r.choice(small)
        zp = np.zeros([], np.float32)
        nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["q"], output_dtype=to)]
        inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s")]
        del zp
        if r.random() < .6:
            nodes.append(helper.make_node(r.choice(["Transpose", "Identity", "Flatten"]), ["q"], ["q2"]))
            last = "q2"
        else:
            last = "q"
        if r.random() < .6:
            nodes.append(helper.make_node("DequantizeLinear", [last, "s"], ["y"]))
            last = "y"
        opset = r.choice([21, 23])
    elif kind == "cast":
        to = r.choice(small)
        op = r.choice(["Cast", "CastLike"])
        inits = []
        if op == "Cast":
            nodes = [helper.make_node("Cast", ["x"], ["c"], to=to)]
        else:
            like = helper.make_tensor("like", to, [1], [0])
            inits = [like]
            nodes = [helper.make_node("CastLike", ["x", "like"], ["c"])]
        nodes.append(helper.make_node(r.choice(["Reshape", "Identity"]) if False else "Identity", ["c"], ["c2"]))
        nodes.append(helper.make_node("Cast", ["c2"], ["y"], to=T.FLOAT))
        last = "y" if r.random() < .7 else "c2"
        opset = r.choice([21, 23])
    else:
        op = r.choice(["Multinomial", "RandomNormal", "RandomUniform"])
        inits = []
        if op == "Multinomial":
            nodes = [helper.make_node("Log", ["x"], ["lx"]),
                     helper.make_node("Multinomial", ["lx"], ["y"], sample_size=r.randint(1, 4),
                                      dtype=r.choice([T.INT32, T.INT64]), seed=1.0)]
            x = np.abs(_arr(r, [r.randint(1, 3), r.randint(1, 4)])) + .1
        else:
            nodes = [helper.make_node(op, [], ["r"], shape=[r.randint(0, 3), r.randint(1, 3)], seed=1.0,
                                      dtype=r.choice([T.FLOAT, T.DOUBLE, T.FLOAT16])),
                     helper.make_node("Relu", ["x"], ["y0"]), helper.make_node("Identity", ["r"], ["y"])]
        last = "y"
        opset = r.choice([15, 21])
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, list(x.shape))], [U(name=last)], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return Case(f"sub{k}_{kind}_o{opset}", model, {"x": x})


FAMILIES: dict[str, Callable[[random.Random, int], Case]] = {
    "sub": sub_byte,
    "recent": recent,
    "flow": flow,
    "old": old_opsets, "quant": quantized,
    "rnn": rnn, "conv": conv, "dd": data_dependent, "small": small, "ecat": empty_concat}


def all_cases(count: int = 40, seed: int = 79) -> list[Case]:
    """``count`` cases of each family, drawn from ``seed``."""
    out = []
    for name, make in FAMILIES.items():
        r = random.Random(f"{seed}-{name}")
        out.extend(make(r, k) for k in range(count))
    return out


#: refusals of what onnxruntime runs that are right, past round 78's (``onnx_sweep_round78.KNOWN_REFUSALS``): a Loop
#: that runs no iteration whose body declares no scan output shape (onnxruntime's shape then follows its optimization
#: level: [0, 2, 3] or [0], round 78)
KNOWN_REFUSALS = ("it runs no iteration",)


def compare(case: Case) -> tuple[str, list[str]]:
    """``onnx_sweep_round78.compare``, a refusal of ``KNOWN_REFUSALS`` counted as ``known refusal``."""
    kind, lines = sweep78.compare(case)
    if kind == "over-refusal" and any(w in line for line in lines for w in KNOWN_REFUSALS):
        return "known refusal", lines
    return kind, lines


def run(cases: list[Case], show: int = 20, out=sys.stdout):
    return driver.run(cases, compare, show, out)


def main(argv: list[str]) -> int:
    show, words = driver.options(argv, ("--show", "--count"))
    count = int(argv[argv.index("--count") + 1]) if "--count" in argv else 40
    return driver.status(run(driver.chosen(all_cases(count), words), show), sweep78.FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
