"""Differential sweep (round 78): small random one-op models over attribute corners the earlier sweeps did not draw,
against onnxruntime.

Why: rounds 65-70 held onnx's own node cases (and fixed variations of them) against onnxruntime; a rule of the
importer that is right at those attributes may still be wrong at another rounding mode, a negative pad, a clamped
slice step or a block-wise quantization. Each case here is drawn by a seeded generator (``random.Random``), so the
sweep is deterministic; every planned value is held against the bytes onnxruntime's CPU provider writes.

Families: Resize (modes, coordinate transforms, ``keep_aspect_ratio_policy``, ``axes``), Pad (modes, negative pads,
``axes``), Slice (negative / clamped steps), Gather / GatherElements / GatherND (``batch_dims``), TopK, Compress,
Einsum, ConvTranspose (``output_padding`` / ``output_shape`` / ``auto_pad``), pooling (``ceil_mode`` /
``dilations``), Reduce* (axes as an input, ``noop_with_empty_axes``), Split (``num_outputs``), DepthToSpace /
SpaceToDepth, OneHot, Range of floats, Expand / Tile, the quantization ops (block-wise Quantize/DequantizeLinear,
MatMulInteger, QLinearConv, DynamicQuantizeLinear), LayerNormalization / GroupNormalization, symbolic dims bound
at import, the signal and sampling ops (DFT, STFT, the windows, MelWeightMatrix, GridSample, AffineGrid, RoiAlign,
MaxUnpool), and sequences (SplitToSequence, SequenceInsert / Erase / At, ConcatFromSequence, SequenceLength).

Classes: ``agree``, ``MISMATCH`` (a value planned at another shape, type or size), ``over-refusal`` (memplan refuses
what onnxruntime runs, where the case's sizes are known at import), ``data-dependent refusal`` (refused, and the
case's sizes follow a fed value: right), ``planned, onnxruntime refuses`` (onnxruntime refuses to load the model),
``run refused`` (onnxruntime refuses only as it runs: may follow the values fed), ``no CPU kernel``, ``both refuse``,
``known refusal`` (``KNOWN_REFUSALS``), ``RAW`` (memplan raised something else than its own errors).

Shape computations (``chains``): ``Shape(x)`` of an input of symbolic dims through a few random integer and float
ops (arithmetic, Gather, Slice, Concat, reductions, Where, CumSum, TopK, Range, Pow, Einsum, BitShift) to the sizes of
a ConstantOfShape, Expand, Range, Reshape or Tile: what the importer folds must be onnxruntime's value.

Run: ``python tests/onnx_sweep_round78.py [--count N] [--show N] [NAME_SUBSTRING ...]`` from the repository root
(``PYTHONPATH=$PWD:$PWD/tests``). Exit status 1 on any failing class (``FAILING``).
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Callable

import numpy as np
import onnx
import onnx_sweep_driver as driver
import onnx_sweep_round68 as sweep68
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx

V = helper.make_tensor_value_info
U = helper.ValueInfoProto

ELEM = {np.dtype(np.float32): T.FLOAT, np.dtype(np.float16): T.FLOAT16, np.dtype(np.int64): T.INT64,
        np.dtype(np.int32): T.INT32, np.dtype(np.uint8): T.UINT8, np.dtype(np.int8): T.INT8,
        np.dtype(np.bool_): T.BOOL, np.dtype(np.float64): T.DOUBLE, np.dtype(np.uint32): T.UINT32,
        np.dtype(np.uint64): T.UINT64, np.dtype(np.int16): T.INT16, np.dtype(np.uint16): T.UINT16}


class Case(sweep68.Case):
    """A case, with the symbolic dims the import binds (``dims``) and whether its sizes follow a fed value
    (``dynamic``: a refusal is then right)."""

    def __init__(self, label: str, model, feeds: dict, dims: dict | None = None, dynamic: bool = False) -> None:
        super().__init__(label, model, feeds)
        self.dims, self.dynamic = dims, dynamic


def _arr(r: random.Random, shape, dtype=np.float32, lo: int = -3, hi: int = 4) -> np.ndarray:
    g = np.random.default_rng(r.randrange(1 << 30))
    if np.dtype(dtype).kind in "iu":
        return np.asarray(g.integers(lo, hi, shape), dtype)
    if np.dtype(dtype).kind == "b":
        return np.asarray(g.random(shape) < 0.5)
    return np.asarray(g.random(shape) - 0.5, dtype)


def one_op(label: str, op: str, ins: dict, outs: list[str], consts=(), opset: int = 21, symbolic: dict | None = None,
           dims: dict | None = None, domain: str = "", **attrs) -> Case:
    """A one-node model of ``op`` over ``ins`` (name -> array in the op's input order; None: an optional input left
    out); those named in ``consts`` are initializers, the rest fed. ``symbolic``: input -> its dims' names (None: a
    fixed one), the case's ``dims`` binding them at import. A case is ``dynamic`` where a non-float input is fed."""
    node = helper.make_node(op, [k if v is not None else "" for k, v in ins.items()], outs, domain=domain, **attrs)
    while node.input and not node.input[-1]:
        node.input.pop()
    feeds = {k: v for k, v in ins.items() if v is not None and k not in consts}
    inputs = []
    for k, v in feeds.items():
        names = (symbolic or {}).get(k)
        shape = [n if n is not None else d for n, d in zip(names, v.shape)] if names else list(v.shape)
        inputs.append(V(k, ELEM[v.dtype], shape))
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in ins.items() if v is not None and k in consts]
    g = helper.make_graph([node], "g", inputs, [U(name=o) for o in outs if o], initializer=inits)
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(g, opset_imports=ops)
    dynamic = any(v.dtype.kind in "iub" and k not in consts for k, v in ins.items() if v is not None and k != first(ins))
    return Case(label, model, feeds, dims=dims, dynamic=dynamic)


def first(ins: dict) -> str:
    return next(iter(ins))


# -- the families -------------------------------------------------------------------------------------------------------

def resize(r: random.Random, k: int) -> Case:
    rank = r.choice([3, 4])
    shape = [r.randint(1, 3), r.randint(1, 3)] + [r.randint(1, 7) for _ in range(rank - 2)]
    mode = r.choice(["nearest", "linear", "cubic"])
    opset = r.choice([13, 18, 19])
    attrs = {"mode": mode, "coordinate_transformation_mode": r.choice(
        ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]
        + (["half_pixel_symmetric"] if opset >= 19 else []) + (["tf_crop_and_resize"] if r.random() < .1 else []))}
    if mode == "nearest":
        attrs["nearest_mode"] = r.choice(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
    axes = None
    if opset >= 18 and r.random() < 0.4:
        axes = sorted(r.sample(range(-rank, 0) if r.random() < .5 else range(rank), r.randint(1, rank)))
        attrs["axes"] = axes
    n = len(axes) if axes else rank
    spatial = [a % rank for a in axes] if axes else list(range(rank))
    use_sizes = r.random() < 0.5
    ins = {"x": _arr(r, shape)}
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
        ins["roi"] = np.array([0.1] * n + [0.9] * n, np.float32)
    else:
        ins["roi"] = None if opset >= 13 else np.array([], np.float32)
    if use_sizes:
        ins["scales"] = None if r.random() < .7 else np.array([], np.float32)
        ins["sizes"] = np.array([shape[a] if a < 2 and r.random() < .7 else r.randint(1, 9) for a in spatial],
                                np.int64)
        if opset >= 18 and r.random() < 0.5:
            attrs["keep_aspect_ratio_policy"] = r.choice(["not_larger", "not_smaller"])
    else:
        ins["scales"] = np.array([1.0 if a < 2 and r.random() < .7 else r.choice([0.5, 0.6, 0.33, 1.5, 1.7, 2.0,
                                                                                  2.5, 3.0, 0.75, 1.25])
                                  for a in spatial], np.float32)
    if opset >= 18 and r.random() < .2:
        attrs["antialias"] = 1
    if mode == "cubic" and r.random() < .3:
        attrs["cubic_coeff_a"] = -0.5
    if r.random() < .15:
        attrs["exclude_outside"] = 1
    consts = ("roi", "scales", "sizes") if r.random() < 0.85 else ("roi",)
    return _fed_sizes(consts == ("roi",), one_op(f"resize{k}_o{opset}_{mode}_{'sizes' if use_sizes else 'scales'}", "Resize", ins, ["y"], consts,
                  opset=opset, **attrs))


def _fed_sizes(dynamic: bool, case: Case) -> Case:
    """``case``, ``dynamic`` where a fed float input sizes its output (Resize's scales)."""
    case.dynamic = case.dynamic or dynamic
    return case


def upsample(r: random.Random, k: int) -> Case:
    shape = [1, r.randint(1, 3), r.randint(1, 5), r.randint(1, 5)]
    scales = np.array([1.0, 1.0, r.choice([1.0, 1.5, 2.0, 0.5, 3.0, 2.5]), r.choice([1.0, 1.5, 2.0, 0.6, 3.0])],
                      np.float32)
    opset = r.choice([7, 9])
    mode = r.choice(["nearest", "linear"])
    if opset == 7:
        return one_op(f"upsample{k}_o7_{mode}", "Upsample", {"x": _arr(r, shape)}, ["y"], opset=7, mode=mode,
                      scales=[float(s) for s in scales])
    return one_op(f"upsample{k}_o9_{mode}", "Upsample", {"x": _arr(r, shape), "scales": scales}, ["y"], ("scales",),
                  opset=9, mode=mode)


def pad(r: random.Random, k: int) -> Case:
    rank = r.randint(1, 4)
    shape = [r.randint(1, 5) for _ in range(rank)]
    opset = r.choice([13, 18, 19, 21])
    mode = r.choice(["constant", "reflect", "edge"] + (["wrap"] if opset >= 19 else []))
    axes = None
    if opset >= 18 and r.random() < .4:
        axes = sorted({a % rank: a for a in r.sample(range(-rank, rank), r.randint(1, rank))}.values())
    n = len(axes) if axes else rank
    pads = [r.randint(-2, 3) for _ in range(2 * n)]
    dtype = r.choice([np.float32, np.int64, np.uint8])
    ins = {"x": _arr(r, shape, dtype), "pads": np.array(pads, np.int64),
           "value": (np.array(1, dtype) if mode == "constant" and r.random() < .5 else None),
           "axes": np.array(axes, np.int64 if r.random() < .7 else np.int32) if axes else None}
    consts = ("pads", "value", "axes") if r.random() < .85 else ("value", "axes")
    return one_op(f"pad{k}_o{opset}_{mode}", "Pad", ins, ["y"], consts, opset=opset, mode=mode)


def slice_(r: random.Random, k: int) -> Case:
    rank = r.randint(1, 4)
    shape = [r.randint(0 if r.random() < .1 else 1, 6) for _ in range(rank)]
    n = r.randint(1, rank)
    axes = r.sample(range(rank), n)
    big = [2**63 - 1, -(2**63), 2**31 - 1, -(2**31), 100, -100]
    starts, ends, steps = [], [], []
    for _ in axes:
        steps.append(r.choice([1, 1, 2, 3, -1, -2, -3, 2**62, -(2**62)]))
        starts.append(r.choice([0, 1, -1, -2, 3, r.choice(big)]))
        ends.append(r.choice([0, 2, -1, -3, 5, r.choice(big)]))
    ins = {"x": _arr(r, shape), "starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64),
           "axes": np.array([a - rank if r.random() < .5 else a for a in axes], np.int64) if r.random() < .8 else None,
           "steps": np.array(steps, np.int64)}
    if ins["axes"] is None:
        ins["starts"], ins["ends"], ins["steps"] = (np.resize(ins["starts"], rank), np.resize(ins["ends"], rank),
                                                    np.resize(ins["steps"], rank))
    if r.random() < .3:
        for key in ("starts", "ends", "axes", "steps"):
            if ins[key] is not None:
                ins[key] = ins[key].astype(np.int64) if key == "axes" else \
                    np.clip(ins[key], -(2**31), 2**31 - 1).astype(np.int32)
        if ins["axes"] is not None:
            ins["axes"] = ins["axes"].astype(np.int32)
    return one_op(f"slice{k}", "Slice", ins, ["y"], ("starts", "ends", "axes", "steps"), opset=r.choice([13, 21]))


def gathers(r: random.Random, k: int) -> Case:
    kind = r.choice(["Gather", "GatherElements", "GatherND", "ScatterND", "ScatterElements"])
    rank = r.randint(1, 4)
    shape = [r.randint(1, 4) for _ in range(rank)]
    x = _arr(r, shape)
    const = r.random() < .5
    if kind == "Gather":
        axis = r.randrange(-rank, rank)
        idx = _arr(r, [r.randint(0, 3) for _ in range(r.randint(0, 3))], r.choice([np.int64, np.int32]),
                   -shape[axis], shape[axis])
        return one_op(f"gather{k}_a{axis}", "Gather", {"x": x, "i": idx}, ["y"], ("i",) if const else (), axis=axis)
    if kind in ("GatherElements", "ScatterElements"):
        axis = r.randrange(-rank, rank)
        ishape = [r.randint(1, d) for d in shape]
        ishape[axis] = r.randint(1, 5)
        idx = _arr(r, ishape, np.int64, -shape[axis], shape[axis])
        if kind == "GatherElements":
            return one_op(f"gatherel{k}_a{axis}", kind, {"x": x, "i": idx}, ["y"], ("i",) if const else (), axis=axis)
        ishape[axis] = min(ishape[axis], shape[axis])
        idx = _arr(r, ishape, np.int64, -shape[axis], shape[axis])
        red = r.choice(["none", "add", "mul", "max", "min"])
        return one_op(f"scatterel{k}_{red}", kind, {"x": x, "i": idx, "u": _arr(r, ishape)}, ["y"],
                      ("i",) if const else (), opset=18, axis=axis, reduction=red)
    b = r.randint(0, rank - 1)
    q = r.randint(1, 3)
    last = r.randint(1, rank - b)
    ishape = shape[:b] + [r.randint(1, 3) for _ in range(q - 1)] + [last]
    idx = np.stack([_arr(r, ishape[:-1], np.int64, 0, shape[b + j]) for j in range(last)], -1).astype(np.int64)
    if kind == "GatherND":
        return one_op(f"gathernd{k}_b{b}", kind, {"x": x, "i": idx}, ["y"], ("i",) if const else (), batch_dims=b)
    ishape = [r.randint(1, 3) for _ in range(q - 1)] + [last]
    idx = np.stack([_arr(r, ishape[:-1], np.int64, 0, shape[j]) for j in range(last)], -1).astype(np.int64)
    upd = _arr(r, ishape[:-1] + shape[last:])
    return one_op(f"scatternd{k}", kind, {"x": x, "i": idx, "u": upd}, ["y"], ("i",) if const else ())


def topk(r: random.Random, k: int) -> Case:
    rank = r.randint(1, 3)
    shape = [r.randint(1, 5) for _ in range(rank)]
    axis = r.randrange(-rank, rank)
    kk = r.randint(0, shape[axis])
    const = r.random() < .8
    return one_op(f"topk{k}_k{kk}{'' if const else '_fed'}", "TopK",
                  {"x": _arr(r, shape), "k": np.array([kk], np.int64)}, ["v", "i"], ("k",) if const else (),
                  axis=axis, largest=r.randint(0, 1), sorted=r.randint(0, 1))


def compress(r: random.Random, k: int) -> Case:
    rank = r.randint(1, 3)
    shape = [r.randint(1, 4) for _ in range(rank)]
    axis = r.choice([None] + list(range(-rank, rank)))
    n = int(np.prod(shape)) if axis is None else shape[axis]
    cond = _arr(r, [r.randint(0, n)], np.bool_)
    const = r.random() < .5
    attrs = {} if axis is None else {"axis": axis}
    if r.random() < .3:
        return _fed_sizes(True, one_op(f"nonzero{k}", "NonZero", {"x": _arr(r, shape, np.int64, 0, 2)}, ["y"]))
    return one_op(f"compress{k}{'_const' if const else ''}", "Compress", {"x": _arr(r, shape), "c": cond}, ["y"],
                  ("c",) if const else (), **attrs)


def einsum(r: random.Random, k: int) -> Case:
    eqs = ["ij,jk->ik", "ij,jk", "ii->i", "ii", "bij,bjk->bik", "...ij,...jk->...ik", "ij->ji", "ij->", "i,i->",
           "i,j->ij", "...i->...", "bii->bi", "ab,cd->abcd", "iij->ji", "ij,ij->ij", "ijk->kji", "...,...->...",
           "b...i,b...i->b...", "ij...,jk...->ik...", "Ab,bC->AC", "i,i", "iji->j", "ij,kj->ik"]
    eq = r.choice(eqs)
    sizes = {c: r.randint(1, 4) for c in "ijkabcdbCA"}
    ell = [r.randint(1, 3) for _ in range(r.randint(0, 2))]
    ins = {}
    lhs = eq.split("->")[0].split(",")
    for n, term in enumerate(lhs):
        pre, dots, post = term.partition("...")
        e = list(ell)
        if dots and n == 1 and e and r.random() < .4:
            e[0] = 1   # (a broadcast ellipsis dim)
        shape = [sizes[c] for c in pre] + (e if dots else []) + [sizes[c] for c in post]
        ins[f"x{n}"] = _arr(r, shape)
    safe = eq.replace("...", "E")
    return one_op(f"einsum{k}_{safe.replace(',', '_').replace('->', '_to_')}", "Einsum", ins, ["y"], (),
                  opset=r.choice([12, 13]), equation=eq)


def conv_transpose(r: random.Random, k: int) -> Case:
    nd = r.choice([1, 2])
    b, cin, group = r.randint(1, 2), r.choice([1, 2, 4]), 1
    if cin > 1 and r.random() < .4:
        group = cin
    cout_g = r.randint(1, 2)
    kern = [r.randint(1, 3) for _ in range(nd)]
    strides = [r.randint(1, 3) for _ in range(nd)]
    dil = [r.randint(1, 2) for _ in range(nd)]
    xs = [r.randint(1, 5) for _ in range(nd)]
    attrs = {"kernel_shape": kern, "strides": strides, "group": group}
    if r.random() < .5:
        attrs["dilations"] = dil
    else:
        dil = [1] * nd
    choice = r.choice(["pads", "auto", "output_shape", "output_padding"])
    if choice == "pads":
        attrs["pads"] = [r.randint(0, kern[i] - 1) for i in range(nd)] * 2
    elif choice == "auto":
        attrs["auto_pad"] = r.choice(["SAME_UPPER", "SAME_LOWER", "VALID"])
    elif choice == "output_shape":
        attrs["output_shape"] = [strides[i] * (xs[i] - 1) + 1 + (kern[i] - 1) * dil[i] + r.randint(0, strides[i] - 1)
                                 for i in range(nd)]
        if r.random() < .5:
            attrs["auto_pad"] = r.choice(["SAME_UPPER", "SAME_LOWER"])
    else:
        attrs["output_padding"] = [r.randint(0, max(strides[i], dil[i]) - 1) for i in range(nd)]
        if r.random() < .5:
            attrs["pads"] = [r.randint(0, kern[i] - 1) for i in range(nd)] * 2
    ins = {"x": _arr(r, [b, cin] + xs), "w": _arr(r, [cin, cout_g] + kern),
           "bias": _arr(r, [cout_g * group]) if r.random() < .5 else None}
    return one_op(f"convT{k}_{choice}", "ConvTranspose", ins, ["y"], ("w", "bias"), opset=r.choice([11, 21]), **attrs)


def pool(r: random.Random, k: int) -> Case:
    op = r.choice(["MaxPool", "AveragePool", "LpPool", "MaxPool"])
    nd = r.choice([1, 2, 3])
    xs = [r.randint(1, 7) for _ in range(nd)]
    kern = [r.randint(1, 3) for _ in range(nd)]
    attrs = {"kernel_shape": kern}
    opset = r.choice([18, 19, 21]) if op != "LpPool" else 18
    if r.random() < .6:
        attrs["strides"] = [r.randint(1, 3) for _ in range(nd)]
    if r.random() < .5 and op != "LpPool" or op == "LpPool" and r.random() < .3:
        attrs["dilations"] = [r.randint(1, 2) for _ in range(nd)]
    if r.random() < .5 and op != "LpPool":
        attrs["ceil_mode"] = 1
    if r.random() < .5:
        attrs["auto_pad"] = r.choice(["SAME_UPPER", "SAME_LOWER", "VALID"])
    elif r.random() < .6:
        attrs["pads"] = [r.randint(0, kern[i] - 1) for i in range(nd)] + [r.randint(0, kern[i] - 1) for i in range(nd)]
    if op == "AveragePool" and r.random() < .5:
        attrs["count_include_pad"] = 1
    outs = ["y", "idx"] if op == "MaxPool" and r.random() < .4 else ["y"]
    dtype = np.float32 if op != "MaxPool" or r.random() < .7 else r.choice([np.uint8, np.int8, np.float16])
    if len(outs) == 2:
        dtype = np.float32
    return one_op(f"{op.lower()}{k}_{nd}d", op, {"x": _arr(r, [1, 2] + xs, dtype)}, outs, (), opset=opset, **attrs)


def reduce(r: random.Random, k: int) -> Case:
    op = r.choice(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                   "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum", "ArgMax", "ArgMin"])
    rank = r.randint(0, 4)
    shape = [r.randint(0 if r.random() < .1 else 1, 4) for _ in range(rank)]
    opset = r.choice([13, 18, 21])
    attrs = {"keepdims": r.randint(0, 1)} if r.random() < .8 else {}
    if op.startswith("Arg"):
        if rank == 0:
            rank, shape = 1, [3]
        attrs["axis"] = r.randrange(-rank, rank)
        if r.random() < .3:
            attrs["select_last_index"] = 1
        return one_op(f"{op.lower()}{k}", op, {"x": _arr(r, shape)}, ["y"], (), opset=opset, **attrs)
    axes = sorted(r.sample(range(-rank, rank), r.randint(0, rank))) if rank else []
    axes = list({a % rank: a for a in axes}.values()) if rank else []
    as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    ins = {"x": _arr(r, shape)}
    if r.random() < .4:
        attrs["noop_with_empty_axes"] = 1 if as_input else 0
        if not as_input:
            attrs.pop("noop_with_empty_axes")
    if as_input:
        ins["axes"] = np.array(axes, np.int64) if axes or r.random() < .5 else None
    elif axes:
        attrs["axes"] = axes
    const = r.random() < .85
    return one_op(f"{op.lower()}{k}_o{opset}", op, ins, ["y"], ("axes",) if const else (), opset=opset, **attrs)


def split(r: random.Random, k: int) -> Case:
    rank = r.randint(1, 3)
    shape = [r.randint(1, 7) for _ in range(rank)]
    axis = r.randrange(-rank, rank)
    opset = r.choice([13, 18])
    if opset == 18 and r.random() < .6:
        n = r.randint(1, shape[axis] + 1)
        return one_op(f"split{k}_num{n}", "Split", {"x": _arr(r, shape)}, [f"y{i}" for i in range(n)], (),
                      opset=18, axis=axis, num_outputs=n)
    n = r.randint(1, 3)
    cuts = sorted(r.choices(range(shape[axis] + 1), k=n - 1))
    parts = np.diff([0] + cuts + [shape[axis]]).astype(np.int64)
    if r.random() < .3:
        return one_op(f"split{k}_even{n}", "Split", {"x": _arr(r, shape)}, [f"y{i}" for i in range(n)], (),
                      opset=opset, axis=axis)
    return one_op(f"split{k}_parts", "Split", {"x": _arr(r, shape), "s": parts}, [f"y{i}" for i in range(n)], ("s",),
                  opset=opset, axis=axis)


def space(r: random.Random, k: int) -> Case:
    bs = r.randint(1, 3)
    if r.random() < .5:
        x = _arr(r, [r.randint(1, 2), bs * bs * r.randint(1, 2), r.randint(1, 3), r.randint(1, 3)])
        return one_op(f"d2s{k}", "DepthToSpace", {"x": x}, ["y"], (), blocksize=bs, mode=r.choice(["DCR", "CRD"]))
    x = _arr(r, [r.randint(1, 2), r.randint(1, 3), bs * r.randint(1, 3), bs * r.randint(1, 3)])
    return one_op(f"s2d{k}", "SpaceToDepth", {"x": x}, ["y"], (), blocksize=bs)


def misc(r: random.Random, k: int) -> Case:
    op = r.choice(["OneHot", "Range", "Expand", "Tile", "Trilu", "CumSum", "EyeLike", "CenterCropPad",
                   "ReverseSequence", "Shape", "Size", "Col2Im", "Unsqueeze", "Squeeze", "Flatten"])
    if op == "OneHot":
        rank = r.randint(0, 2)
        idx = _arr(r, [r.randint(1, 3) for _ in range(rank)], r.choice([np.int64, np.float32, np.int32]), -3, 4)
        depth = np.array(r.choice([3, 4, 5.7, 2]), r.choice([np.int64, np.float32]))
        if depth.ndim == 0 and r.random() < .3:
            depth = depth.reshape(1)
        axis = r.randrange(-rank - 1, rank + 1)
        return one_op(f"onehot{k}_d{depth.item()}", "OneHot", {"i": idx, "depth": depth,
                      "v": np.array([0, 1], np.float32)}, ["y"], ("depth", "v"), axis=axis)
    if op == "Range":
        dtype = r.choice([np.float32, np.float64, np.int64, np.int32])
        start, limit, delta = (r.choice([0, 1.5, -2, 3.3, 10]), r.choice([5, 7.2, -1, 0.1, 10, 2]),
                               r.choice([1, 0.3, -0.7, 2, -1, 1.5]))
        if dtype in (np.int64, np.int32):
            start, limit, delta = int(start), int(limit), int(delta) or 1
        ins = {"s": np.array(start, dtype), "l": np.array(limit, dtype), "d": np.array(delta, dtype)}
        return one_op(f"range{k}_{np.dtype(dtype).name}_{start}_{limit}_{delta}", "Range", ins, ["y"],
                      ("s", "l", "d"))
    if op == "Expand":
        rank = r.randint(0, 3)
        xs = [r.choice([1, 1, 2, 3]) for _ in range(rank)]
        target = [r.choice([1, d, 3]) if d == 1 else r.choice([d, 1]) for d in xs]
        target = [r.randint(1, 3) for _ in range(r.randint(0, 2))] + target
        if r.random() < .3 and target:
            target = target[r.randint(0, len(target)):]
        return one_op(f"expand{k}", "Expand", {"x": _arr(r, xs), "s": np.array(target, np.int64)}, ["y"], ("s",))
    if op == "Tile":
        rank = r.randint(1, 3)
        return one_op(f"tile{k}", "Tile", {"x": _arr(r, [r.randint(0, 3) for _ in range(rank)]),
                      "s": np.array([r.randint(0, 3) for _ in range(rank)], np.int64)}, ["y"], ("s",))
    if op == "Trilu":
        shape = [r.randint(1, 3) for _ in range(r.randint(2, 3))]
        return one_op(f"trilu{k}", "Trilu", {"x": _arr(r, shape), "k": np.array(r.randint(-3, 3), np.int64)}, ["y"],
                      ("k",), upper=r.randint(0, 1))
    if op == "CumSum":
        shape = [r.randint(1, 4) for _ in range(r.randint(1, 3))]
        return one_op(f"cumsum{k}", "CumSum", {"x": _arr(r, shape), "a": np.array(r.randrange(-len(shape),
                      len(shape)), r.choice([np.int64, np.int32]))}, ["y"], ("a",), exclusive=r.randint(0, 1),
                      reverse=r.randint(0, 1))
    if op == "EyeLike":
        dtype = r.choice([None, T.INT32, T.DOUBLE, T.BOOL, T.UINT8])
        attrs = {"k": r.randint(-3, 3)}
        if dtype is not None:
            attrs["dtype"] = dtype
        return one_op(f"eyelike{k}", "EyeLike", {"x": _arr(r, [r.randint(1, 4), r.randint(1, 4)])}, ["y"], (),
                      **attrs)
    if op == "CenterCropPad":
        rank = r.randint(1, 3)
        xs = [r.randint(1, 5) for _ in range(rank)]
        axes = sorted(r.sample(range(rank), r.randint(1, rank)))
        attrs = {"axes": axes} if r.random() < .6 else {}
        n = len(axes) if attrs else rank
        return one_op(f"ccp{k}", "CenterCropPad", {"x": _arr(r, xs), "s": np.array([r.randint(1, 6)
                      for _ in range(n)], np.int64)}, ["y"], ("s",), opset=18, **attrs)
    if op == "ReverseSequence":
        b, t = r.randint(1, 3), r.randint(1, 4)
        ba = r.randint(0, 1)
        shape = [t, b, 2] if ba == 1 else [b, t, 2]
        return one_op(f"revseq{k}", "ReverseSequence", {"x": _arr(r, shape), "l": np.array(
            [r.randint(1, t) for _ in range(b)], np.int64)}, ["y"], (), batch_axis=ba, time_axis=1 - ba)
    if op in ("Shape", "Size"):
        shape = [r.randint(0, 4) for _ in range(r.randint(0, 4))]
        attrs = {}
        if op == "Shape" and r.random() < .7:
            attrs = {"start": r.randint(-6, 6)}
            if r.random() < .6:
                attrs["end"] = r.randint(-6, 6)
        return one_op(f"{op.lower()}{k}", op, {"x": _arr(r, shape)}, ["y"], (), opset=r.choice([13, 15, 21]),
                      **attrs)
    if op == "Col2Im":
        bs = [r.randint(1, 2), r.randint(1, 2)]
        img = [r.randint(bs[0], 4), r.randint(bs[1], 4)]
        strides = [r.randint(1, 2), r.randint(1, 2)]
        nl = ((img[0] - bs[0]) // strides[0] + 1) * ((img[1] - bs[1]) // strides[1] + 1)
        c = r.randint(1, 2)
        return one_op(f"col2im{k}", "Col2Im", {"x": _arr(r, [1, c * bs[0] * bs[1], nl]),
                      "i": np.array(img, np.int64), "b": np.array(bs, np.int64)}, ["y"], ("i", "b"), opset=18,
                      strides=strides)
    if op in ("Unsqueeze", "Squeeze"):
        shape = [r.choice([1, 2, 1]) for _ in range(r.randint(0, 3))]
        if op == "Unsqueeze":
            n = r.randint(1, 2)
            out_rank = len(shape) + n
            axes = r.sample(range(-out_rank, out_rank), n)
            axes = list({a % out_rank: a for a in axes}.values())
        else:
            ones = [i for i, d in enumerate(shape) if d == 1]
            axes = [a - len(shape) if r.random() < .5 else a for a in r.sample(ones, r.randint(0, len(ones)))]
        ins = {"x": _arr(r, shape), "a": np.array(axes, np.int64) if axes or op == "Unsqueeze" else None}
        return one_op(f"{op.lower()}{k}", op, ins, ["y"], ("a",))
    shape = [r.randint(0, 3) for _ in range(r.randint(0, 4))]
    return one_op(f"flatten{k}", "Flatten", {"x": _arr(r, shape)}, ["y"], (),
                  axis=r.randint(-len(shape), len(shape)))


def quant(r: random.Random, k: int) -> Case:
    op = r.choice(["QuantizeLinear", "DequantizeLinear", "MatMulInteger", "QLinearConv", "DynamicQuantizeLinear",
                   "QLinearMatMul", "ConvInteger"])
    if op in ("QuantizeLinear", "DequantizeLinear"):
        rank = r.randint(1, 3)
        shape = [r.randint(1, 6) for _ in range(rank)]
        opset = r.choice([19, 21, 23])
        qt = r.choice([np.uint8, np.int8])
        axis = r.randrange(-rank, rank)
        mode = r.choice(["tensor", "axis", "block"] if opset >= 21 else ["tensor", "axis"])
        attrs = {}
        if mode == "tensor":
            sshape = []
        elif mode == "axis":
            sshape = [shape[axis]]
            attrs["axis"] = axis
        else:
            bsz = r.randint(1, 4)
            sshape = list(shape)
            sshape[axis] = -(-shape[axis] // bsz)
            attrs["axis"], attrs["block_size"] = axis, bsz
        scale = (np.random.default_rng(k).random(sshape) + 0.5).astype(np.float32)
        zp = np.zeros(sshape, qt) if r.random() < .6 else None
        if op == "QuantizeLinear":
            if opset >= 21 and zp is None and r.random() < .4:
                attrs["output_dtype"] = r.choice([T.UINT8, T.INT8, T.UINT16, T.INT16])
            return one_op(f"quant{k}_{mode}_o{opset}", op, {"x": _arr(r, shape), "s": scale, "z": zp}, ["y"],
                          ("s", "z"), opset=opset, **attrs)
        return one_op(f"dequant{k}_{mode}_o{opset}", op, {"x": _arr(r, shape, qt, 0, 100), "s": scale, "z": zp},
                      ["y"], ("s", "z"), opset=opset, **attrs)
    if op == "DynamicQuantizeLinear":
        return one_op(f"dynq{k}", op, {"x": _arr(r, [r.randint(0, 3) for _ in range(r.randint(0, 3))])},
                      ["y", "s", "z"], ())
    if op in ("MatMulInteger", "QLinearMatMul"):
        a_shape = [r.randint(1, 3) for _ in range(r.randint(0, 2))] + [r.randint(1, 3), r.randint(1, 4)]
        b_shape = ([r.randint(1, 3)] if r.random() < .3 else []) + [a_shape[-1], r.randint(1, 4)]
        if len(b_shape) == 3 and len(a_shape) >= 3:
            b_shape[0] = r.choice([1, a_shape[-3]])
        at, bt = r.choice([np.uint8, np.int8]), r.choice([np.uint8, np.int8])
        if op == "MatMulInteger":
            return one_op(f"mmi{k}", op, {"a": _arr(r, a_shape, at, 0, 5), "b": _arr(r, b_shape, bt, 0, 5),
                          "az": np.array(1, at) if r.random() < .5 else None}, ["y"], ("b", "az"))
        f = np.array(0.1, np.float32)
        return one_op(f"qlmm{k}", op, {"a": _arr(r, a_shape, np.uint8, 0, 5), "as": f, "az": np.array(1, np.uint8),
                      "b": _arr(r, b_shape, np.uint8, 0, 5), "bs": f, "bz": np.array(1, np.uint8), "ys": f,
                      "yz": np.array(1, np.uint8)}, ["y"], ("as", "az", "b", "bs", "bz", "ys", "yz"))
    b, c, m = r.randint(1, 2), r.choice([1, 2]), r.randint(1, 3)
    xs = [r.randint(2, 5), r.randint(2, 5)]
    kern = [r.randint(1, 2), r.randint(1, 2)]
    attrs = {"kernel_shape": kern, "strides": [r.randint(1, 2), r.randint(1, 2)]}
    if r.random() < .5:
        attrs["pads"] = [r.randint(0, 1) for _ in range(4)]
    if op == "ConvInteger":
        return one_op(f"convint{k}", op, {"x": _arr(r, [b, c] + xs, np.uint8, 0, 5), "w": _arr(r, [m, c] + kern,
                      np.uint8, 0, 5)}, ["y"], ("w",), **attrs)
    f = np.array(0.1, np.float32)
    return one_op(f"qlconv{k}", op, {"x": _arr(r, [b, c] + xs, np.uint8, 0, 5), "xs": f, "xz": np.array(1, np.uint8),
                  "w": _arr(r, [m, c] + kern, np.uint8, 0, 5), "ws": f, "wz": np.array(1, np.uint8), "ys": f,
                  "yz": np.array(1, np.uint8)}, ["y"], ("xs", "xz", "w", "ws", "wz", "ys", "yz"), **attrs)


def norms(r: random.Random, k: int) -> Case:
    op = r.choice(["LayerNormalization", "GroupNormalization", "InstanceNormalization", "MeanVarianceNormalization",
                   "LpNormalization", "Softmax", "LogSoftmax", "Hardmax"])
    rank = r.randint(2, 4)
    shape = [r.randint(1, 4) for _ in range(rank)]
    if op == "LayerNormalization":
        axis = r.randrange(-rank, rank)
        norm = shape[axis:]
        outs = r.choice([["y"], ["y", "m"], ["y", "m", "inv"], ["y", "", "inv"]])
        return one_op(f"ln{k}_a{axis}_{len(outs)}", op, {"x": _arr(r, shape), "g": _arr(r, norm),
                      "b": _arr(r, norm) if r.random() < .5 else None}, outs, ("g", "b"), opset=r.choice([17, 21]),
                      axis=axis, stash_type=1)
    if op == "GroupNormalization":
        groups = r.choice([1, 2])
        shape[1] = groups * r.randint(1, 2)
        opset = r.choice([18, 21])
        n = shape[1] if opset >= 21 else groups
        return one_op(f"gn{k}_o{opset}", op, {"x": _arr(r, shape), "g": _arr(r, [n]), "b": _arr(r, [n])}, ["y"],
                      ("g", "b"), opset=opset, num_groups=groups)
    if op == "InstanceNormalization":
        return one_op(f"in{k}", op, {"x": _arr(r, shape), "g": _arr(r, [shape[1]]), "b": _arr(r, [shape[1]])}, ["y"],
                      ("g", "b"))
    if op == "MeanVarianceNormalization":
        return one_op(f"mvn{k}", op, {"x": _arr(r, [2, 2, 3, 3])}, ["y"], ())
    return one_op(f"{op.lower()}{k}", op, {"x": _arr(r, shape)}, ["y"], (), opset=r.choice([11, 13]),
                  axis=r.randrange(-rank, rank))


def symbolic(r: random.Random, k: int) -> Case:
    """A model whose input has symbolic dims, the import binding them (``dims``), through an op whose output size
    follows them."""
    n, s = r.randint(1, 3), r.randint(1, 5)
    x = _arr(r, [n, s, 4])
    sym = {"x": ["N", "S", None]}
    dims = {"N": n, "S": s}
    op = r.choice(["Resize", "Slice", "Pad", "Reshape", "Tile", "Expand", "Split", "Flatten", "Transpose"])
    if op == "Resize":
        return one_op(f"sym_resize{k}", op, {"x": x, "roi": None, "scales": np.array([1, 1.5, 2], np.float32)},
                      ["y"], ("scales",), symbolic=sym, dims=dims, opset=19, mode="nearest")
    if op == "Slice":
        return one_op(f"sym_slice{k}", op, {"x": x, "st": np.array([r.choice([-1, 1, 0])], np.int64),
                      "en": np.array([r.choice([2**63 - 1, -1, 2])], np.int64), "ax": np.array([1], np.int64),
                      "sp": np.array([r.choice([1, -1, 2])], np.int64)}, ["y"], ("st", "en", "ax", "sp"),
                      symbolic=sym, dims=dims)
    if op == "Pad":
        return one_op(f"sym_pad{k}", op, {"x": x, "p": np.array([0, -1 if s > 1 else 0, 1, 0, 2, 0], np.int64)},
                      ["y"], ("p",), symbolic=sym, dims=dims, mode=r.choice(["constant", "edge"]))
    if op == "Reshape":
        return one_op(f"sym_reshape{k}", op, {"x": x, "sh": np.array(r.choice([[0, -1], [-1, 4], [0, 0, 2, 2]]),
                      np.int64)}, ["y"], ("sh",), symbolic=sym, dims=dims)
    if op == "Tile":
        return one_op(f"sym_tile{k}", op, {"x": x, "r": np.array([2, 1, 3], np.int64)}, ["y"], ("r",), symbolic=sym,
                      dims=dims)
    if op == "Expand":
        return one_op(f"sym_expand{k}", op, {"x": x, "sh": np.array([2, 1, 1, 1], np.int64)}, ["y"], ("sh",),
                      symbolic=sym, dims=dims)
    if op == "Split":
        return one_op(f"sym_split{k}", op, {"x": x}, ["a", "b"], (), symbolic=sym, dims=dims, opset=18, axis=2,
                      num_outputs=2)
    if op == "Flatten":
        return one_op(f"sym_flatten{k}", op, {"x": x}, ["y"], (), symbolic=sym, dims=dims, axis=2)
    return one_op(f"sym_transpose{k}", op, {"x": x}, ["y"], (), symbolic=sym, dims=dims, perm=[2, 0, 1])


class _Chain:
    """A graph under construction: nodes, initializers, fresh names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def const(self, v) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name

    def op(self, op: str, ins: list[str], outs: int = 1, **attrs) -> list[str]:
        names = [self.name(op.lower()) for _ in range(outs)]
        self.nodes.append(helper.make_node(op, ins, names, **attrs))
        return names


#: further kinds of ``_step`` (none in the sweep the tests run; ``--extra`` adds them)
EXTRA_KINDS: list[str] = []


def _step(r: random.Random, c: _Chain, v: str, length: int) -> tuple[str, int]:
    """One random op over the 1-D int64 value ``v`` of ``length`` entries: ``(its output, the output's length)``."""
    kind = r.choice(["arith", "arith", "float", "gather", "slice", "concat", "reduce", "minmax", "where", "cumsum",
                     "unary", "clip", "topk", "range", "pow", "einsum", "bitshift", "squeeze"] + EXTRA_KINDS)
    small = [-3, -2, -1, 1, 2, 3, 5, 7]
    if kind == "arith":
        op = r.choice(["Add", "Sub", "Mul", "Div", "Mod", "Div", "Mod"])
        other = np.array([r.choice(small) for _ in range(length)] if r.random() < .5 else r.choice(small), np.int64)
        attrs = {"fmod": r.randint(0, 1)} if op == "Mod" else {}
        ins = [v, c.const(other)] if r.random() < .8 else [c.const(other), v]
        return c.op(op, ins, **attrs)[0], length
    if kind == "float":
        to = r.choice([T.FLOAT, T.DOUBLE, T.FLOAT16])
        f = c.op("Cast", [v], to=to)[0]
        dt = {T.FLOAT: np.float32, T.DOUBLE: np.float64, T.FLOAT16: np.float16}[to]
        for _ in range(r.randint(1, 2)):
            fop = r.choice(["Mul", "Div", "Add", "Sqrt", "Floor", "Ceil", "Round", "Abs", "Neg", "Reciprocal", "Pow"])
            if fop in ("Mul", "Div", "Add", "Pow"):
                f = c.op(fop, [f, c.const(np.array(r.choice([0.5, 1.5, 0.1, 3, -0.7, 2.5, 0.3, 2]), dt))])[0]
            else:
                f = c.op(fop, [f])[0]
        f = c.op(r.choice(["Floor", "Ceil", "Round", "Identity", "Identity"]), [f])[0]
        return c.op("Cast", [f], to=T.INT64)[0], length
    if kind == "gather":
        n = r.randint(1, 4)
        idx = np.array([r.randrange(-length, length) for _ in range(n)], r.choice([np.int64, np.int32]))
        return c.op("Gather", [v, c.const(idx)], axis=0)[0], n
    if kind == "slice":
        start, end = r.choice([0, 1, -1, -2, -9]), r.choice([2**63 - 1, -1, 1, 2, 9, -(2**63)])
        step = r.choice([1, 1, -1, 2, -2])
        sl = c.op("Slice", [v, c.const(np.array([start], np.int64)), c.const(np.array([end], np.int64)),
                            c.const(np.array([0], np.int64)), c.const(np.array([step], np.int64))])[0]
        n = len(range(length)[slice(*_py_slice(start, end, step, length))])
        return sl, n
    if kind == "concat":
        extra = np.array([r.randint(0, 4) for _ in range(r.randint(1, 2))], np.int64)
        ins = [v, c.const(extra)] if r.random() < .5 else [c.const(extra), v]
        return c.op("Concat", ins, axis=0)[0], length + len(extra)
    if kind == "reduce":
        op = r.choice(["ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean", "ReduceL1",
                       "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"])
        return c.op(op, [v, c.const(np.array([0], np.int64))], keepdims=1)[0], 1
    if kind == "minmax":
        other = c.const(np.array(r.choice(small), np.int64))
        return c.op(r.choice(["Max", "Min", "Mean", "Sum"]), [v, other])[0], length
    if kind == "where":
        cond = c.op(r.choice(["Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual"]),
                    [v, c.const(np.array(r.choice(small), np.int64))])[0]
        return c.op("Where", [cond, v, c.const(np.array(r.choice(small), np.int64))])[0], length
    if kind == "cumsum":
        return c.op("CumSum", [v, c.const(np.array(0, np.int64))], exclusive=r.randint(0, 1),
                    reverse=r.randint(0, 1))[0], length
    if kind == "unary":
        return c.op(r.choice(["Abs", "Neg", "Sign", "Relu", "Identity"]), [v])[0], length
    if kind == "clip":
        lo, hi = sorted([r.choice(small), r.choice(small)])
        return c.op("Clip", [v, c.const(np.array(lo, np.int64)), c.const(np.array(hi, np.int64))])[0], length
    if kind == "topk":
        k = r.randint(0, length)
        return c.op("TopK", [v, c.const(np.array([k], np.int64))], 2, largest=r.randint(0, 1))[r.randint(0, 1)], k
    if kind == "range":
        s = c.op("ReduceMax", [v, c.const(np.array([0], np.int64))], keepdims=0)[0]
        s = c.op("Clip", [s, c.const(np.array(0, np.int64)), c.const(np.array(6, np.int64))])[0]
        rg = c.op("Range", [c.const(np.array(r.choice([0, 1, -2]), np.int64)), s,
                            c.const(np.array(r.choice([1, 2, 3]), np.int64))])[0]
        return c.op("Shape", [rg])[0], 1
    if kind == "pow":
        return c.op("Pow", [v, c.const(np.array(r.choice([0, 1, 2]), r.choice([np.int64, np.int32])))])[0], length
    if kind == "einsum":
        return c.op("Einsum", [v, c.const(np.array([r.choice(small) for _ in range(length)], np.int64))],
                    equation=r.choice(["i,i->i", "i,i->"]))[0], length
    if kind == "bitshift":
        u = c.op("Cast", [v], to=T.UINT64)[0]
        u = c.op("BitShift", [u, c.const(np.array(r.choice([0, 1, 2]), np.uint64))],
                 direction=r.choice(["LEFT", "RIGHT"]))[0]
        return c.op("Cast", [u], to=T.INT64)[0], length
    if kind == "narrow":
        to = r.choice([T.INT32, T.UINT8, T.INT8, T.BOOL, T.UINT32, T.INT16])
        return c.op("Cast", [c.op("Cast", [v], to=to)[0]], to=T.INT64)[0], length
    if kind == "argmax":
        return c.op(r.choice(["ArgMax", "ArgMin"]), [v], keepdims=1, select_last_index=r.randint(0, 1))[0], 1
    if kind == "unique":
        outs = c.op("Unique", [v], 4, sorted=r.randint(0, 1))
        k = r.randint(0, 3)
        return outs[k], None if k != 2 else length
    if kind == "nonzero":
        nz = c.op("NonZero", [v])[0]
        return c.op("Reshape", [nz, c.const(np.array([-1], np.int64))])[0], None
    if kind == "compress":
        cond = c.op("Greater", [v, c.const(np.array(r.choice([1, 2, 3]), np.int64))])[0]
        return c.op("Compress", [v, cond], axis=0)[0], None
    if kind == "floatred":
        f = c.op("Cast", [v], to=T.FLOAT)[0]
        f = c.op("Mul", [f, c.const(np.array(r.choice([0.1, 0.3, 1.7, 0.7]), np.float32))])[0]
        op = r.choice(["ReduceSum", "ReduceMean", "CumSum", "ReduceMax"])
        if op == "CumSum":
            f = c.op(op, [f, c.const(np.array(0, np.int64))])[0]
        else:
            f = c.op(op, [f, c.const(np.array([0], np.int64))], keepdims=1)[0]
            length = 1
        return c.op("Cast", [c.op(r.choice(["Ceil", "Floor", "Round"]), [f])[0]], to=T.INT64)[0], length
    if kind == "scatter":
        idx = np.array([r.randrange(-length, length)], np.int64)
        return c.op("ScatterElements", [v, c.const(idx), c.const(np.array([r.randint(0, 5)], np.int64))], axis=0,
                    reduction=r.choice(["none", "add", "mul", "max", "min"]))[0], length
    if kind == "onehot":
        oh = c.op("OneHot", [c.op("Clip", [v, c.const(np.array(0, np.int64)), c.const(np.array(3, np.int64))])[0],
                             c.const(np.array(4, np.int64)), c.const(np.array([0, 1], np.int64))], axis=-1)[0]
        return c.op("ReduceSum", [oh, c.const(np.array([0], np.int64))], keepdims=0)[0], 4
    sq = c.op("ReduceMin", [v, c.const(np.array([0], np.int64))], keepdims=0)[0]
    return c.op("Unsqueeze", [sq, c.const(np.array([0], np.int64))])[0], 1


def _py_slice(start: int, end: int, step: int, length: int) -> tuple[int | None, int | None, int]:
    """ONNX's Slice of one axis as Python slice arguments (what its output's length is)."""
    start = min(max(start + length if start < 0 else start, 0), length - 1 if step < 0 else length)
    if end >= 2**62 and step > 0 or end <= -(2**62) and step < 0:
        return start, None, step
    end = end + length if end < 0 else end
    end = min(max(end, -1 if step < 0 else 0), length)
    return start, (None if end < 0 else end), step


def chains(r: random.Random, k: int) -> Case:
    """A shape computation: ``Shape(x)`` of an input of symbolic dims (bound at import) through a few random integer
    and float ops to the sizes of a ConstantOfShape, an Expand or a Range, every value exposed."""
    c = _Chain()
    rank = r.randint(1, 4)
    shape = [r.randint(0 if r.random() < .05 else 1, 5) for _ in range(rank)]
    names = [f"d{i}" if r.random() < .5 else None for i in range(rank)]
    x = _arr(r, shape)
    v = c.op("Shape", ["x"])[0]
    length = rank
    for _ in range(r.randint(1, 4)):
        if not length:   # (none, or known only from the values: no further step)
            break
        v, length = _step(r, c, v, length)
    # the size: non-negative entries at most 6 (the model a valid one), then a consumer
    v = c.op("Clip", [v, c.const(np.array(0, np.int64)), c.const(np.array(r.choice([4, 6]), np.int64))])[0] \
        if r.random() < .85 else v
    end = r.choice(["ConstantOfShape", "Expand", "Range", "Reshape", "Tile"])
    if end == "ConstantOfShape":
        out = c.op(end, [v], value=numpy_helper.from_array(np.array([1], r.choice([np.float32, np.int8, np.int64]))))
    elif end == "Expand":
        out = c.op(end, [c.const(np.ones([1] * r.randint(0, 2), np.float32)), v])
    elif end == "Range":
        s = c.op("ReduceSum", [v], keepdims=0)[0]
        out = c.op(end, [c.const(np.array(0, np.int64)), s, c.const(np.array(r.choice([1, 2]), np.int64))])
    elif end == "Reshape":
        numel = c.op("ReduceProd", [v], keepdims=1)[0]
        flat = c.op("ConstantOfShape", [numel], value=numpy_helper.from_array(np.array([2.0], np.float32)))[0]
        out = c.op(end, [flat, v])
    else:
        ones = c.op("ConstantOfShape", [c.op("Shape", [v])[0]], value=numpy_helper.from_array(
            np.array([1.0], np.float32)))[0]
        out = c.op(end, [ones, v])
    g = helper.make_graph(c.nodes, "g", [V("x", T.FLOAT, [n or d for n, d in zip(names, shape)])],
                          [U(name=out[0])], initializer=c.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", r.choice([18, 21]))])
    dims = {n: d for n, d in zip(names, shape) if n}
    return Case(f"chain{k}_{end}", model, {"x": x}, dims=dims or None)


def signal(r: random.Random, k: int) -> Case:
    """The signal and sampling ops whose output sizes follow attributes and small inputs: DFT, STFT, the windows,
    MelWeightMatrix, GridSample, AffineGrid, RoiAlign, MaxUnpool."""
    op = r.choice(["DFT", "STFT", "Window", "MelWeightMatrix", "GridSample", "AffineGrid", "RoiAlign", "MaxUnpool"])
    if op == "DFT":
        opset = r.choice([17, 20])
        n = r.randint(1, 8)
        x = _arr(r, [2, n, r.choice([1, 2])])
        attrs = {"onesided": r.randint(0, 1), "inverse": r.randint(0, 1)}
        length = np.array(r.randint(1, 10), np.int64) if r.random() < .5 else None
        if opset == 17:
            attrs["axis"] = 1
            return one_op(f"dft{k}_o17", op, {"x": x, "n": length}, ["y"], ("n",), opset=17, **attrs)
        axis = np.array(r.choice([1, -2]), np.int64)
        return one_op(f"dft{k}_o20", op, {"x": x, "n": length, "a": axis}, ["y"], ("n", "a"), opset=20, **attrs)
    if op == "STFT":
        n = r.randint(4, 16)
        frame = r.randint(2, n)
        ins = {"x": _arr(r, [1, n, 1]), "step": np.array(r.randint(1, 4), np.int64),
               "window": _arr(r, [frame]) if r.random() < .6 else None,
               "len": np.array(frame, np.int64) if r.random() < .7 else None}
        if ins["window"] is None and ins["len"] is None:
            ins["len"] = np.array(frame, np.int64)
        return one_op(f"stft{k}", op, ins, ["y"], ("step", "window", "len"), opset=17, onesided=r.randint(0, 1))
    if op == "Window":
        w = r.choice(["HannWindow", "HammingWindow", "BlackmanWindow"])
        return one_op(f"{w.lower()}{k}", w, {"n": np.array(r.randint(1, 9), r.choice([np.int64, np.int32]))}, ["y"],
                      ("n",), opset=17, periodic=r.randint(0, 1), output_datatype=r.choice([1, 11, 10]))
    if op == "MelWeightMatrix":
        dft = r.choice([8, 16, 15])
        ins = {"bins": np.array(r.randint(1, 6), np.int64), "dft": np.array(dft, np.int64),
               "rate": np.array(16000, np.int64), "lo": np.array(0.0, np.float32), "hi": np.array(8000.0, np.float32)}
        return one_op(f"mel{k}", op, ins, ["y"], tuple(ins), opset=17)
    if op == "GridSample":
        opset = r.choice([16, 20, 22])
        nd = 3 if opset >= 20 and r.random() < .3 else 2
        out = [r.randint(1, 4) for _ in range(nd)]
        x = _arr(r, [1, 2] + [r.randint(1, 4) for _ in range(nd)])
        grid = _arr(r, [1] + out + [nd])
        attrs = {"align_corners": r.randint(0, 1)}
        if opset >= 20:
            attrs["mode"] = r.choice(["linear", "nearest", "cubic"] if nd == 2 else ["linear", "nearest"])
        return one_op(f"gridsample{k}_o{opset}_{nd}d", op, {"x": x, "g": grid}, ["y"], (), opset=opset, **attrs)
    if op == "AffineGrid":
        nd = r.choice([2, 3])
        size = [1, 1] + [r.randint(1, 4) for _ in range(nd)]
        theta = _arr(r, [1, nd, nd + 1])
        return one_op(f"affinegrid{k}_{nd}d", op, {"t": theta, "s": np.array(size, np.int64)}, ["y"], ("s",),
                      opset=20, align_corners=r.randint(0, 1))
    if op == "RoiAlign":
        rois = np.array([[0, 0, 3, 3], [1, 1, 2, 2], [0, 1, 2, 3]][:r.randint(1, 3)], np.float32)
        ins = {"x": _arr(r, [2, 3, 5, 5]), "rois": rois, "b": np.zeros(len(rois), np.int64)}
        return one_op(f"roialign{k}", op, ins, ["y"], ("rois", "b"), opset=r.choice([16, 22]),
                      output_height=r.randint(1, 4), output_width=r.randint(1, 4), sampling_ratio=r.randint(0, 2))
    xs = [r.randint(1, 3), r.randint(1, 3)]
    kern, strides = [2, 2], [r.randint(1, 2), r.randint(1, 2)]
    ins = {"x": _arr(r, [1, 1] + xs), "i": np.zeros([1, 1] + xs, np.int64)}
    if r.random() < .4:
        full = [(xs[d] - 1) * strides[d] + kern[d] for d in range(2)]
        ins["shape"] = np.array([1, 1] + [f + r.randint(0, strides[d] - 1) for d, f in enumerate(full)], np.int64)
    return one_op(f"maxunpool{k}", op, ins, ["y"], ("i", "shape"), kernel_shape=kern, strides=strides)


def sequences(r: random.Random, k: int) -> Case:
    """A sequence made by SplitToSequence (a scalar or 1-D split, keepdims) or SequenceConstruct, changed by
    SequenceInsert / SequenceErase at random positions, read by SequenceAt, ConcatFromSequence (``new_axis``) and
    SequenceLength (sizing a ConstantOfShape)."""
    c = _Chain()
    rank = r.randint(1, 3)
    shape = [r.randint(1, 5) for _ in range(rank)]
    axis = r.randrange(-rank, rank)
    if r.random() < .6:
        attrs = {"axis": axis}
        ins = ["x"]
        d = shape[axis]
        pick = r.random()
        if pick < .4:
            ins.append(c.const(np.array(r.randint(1, d), np.int64)))
        elif pick < .8:
            cuts = sorted(r.choices(range(d + 1), k=r.randint(0, 2)))
            ins.append(c.const(np.diff([0] + cuts + [d]).astype(np.int64)))
        else:
            attrs["keepdims"] = r.randint(0, 1)
        seq = c.op("SplitToSequence", ins, **attrs)[0]
    else:
        seq = c.op("SequenceConstruct", ["x", c.op("Relu", ["x"])[0]])[0]
    for _ in range(r.randint(0, 2)):
        if r.random() < .5:
            pos = [c.const(np.array(r.randint(-2, 1), np.int64))] if r.random() < .6 else []
            seq = c.op("SequenceInsert", [seq, c.op("Neg", [c.op("SequenceAt", [seq, c.const(
                np.array(0, np.int64))])[0]])[0]] + pos)[0]
        else:
            pos = [c.const(np.array(r.randint(-1, 0), np.int64))] if r.random() < .6 else []
            seq = c.op("SequenceErase", [seq] + pos)[0]
    end = r.choice(["at", "concat", "length"])
    if end == "at":
        out = c.op("SequenceAt", [seq, c.const(np.array(r.randint(-1, 0), r.choice([np.int64, np.int32])))])
    elif end == "concat":
        out = c.op("ConcatFromSequence", [seq], axis=r.randrange(-rank, rank), new_axis=0)
        if r.random() < .5:
            out = c.op("ConcatFromSequence", [seq], axis=r.randrange(-rank - 1, rank + 1), new_axis=1)
    else:
        n = c.op("SequenceLength", [seq])[0]
        out = c.op("ConstantOfShape", [c.op("Unsqueeze", [n, c.const(np.array([0], np.int64))])[0]])
    g = helper.make_graph(c.nodes, "g", [V("x", T.FLOAT, shape)], [U(name=out[0])], initializer=c.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", r.choice([13, 18, 21]))])
    return Case(f"seq{k}_{end}", model, {"x": _arr(r, shape)})


FAMILIES: dict[str, Callable[[random.Random, int], Case]] = {
    "resize": resize, "upsample": upsample, "pad": pad, "slice": slice_, "gathers": gathers, "topk": topk,
    "compress": compress, "einsum": einsum, "convT": conv_transpose, "pool": pool, "reduce": reduce, "split": split,
    "space": space, "misc": misc, "quant": quant, "norms": norms, "symbolic": symbolic,
    "chains": chains, "signal": signal, "sequences": sequences}


def _graph_model(nodes: list, n: int, opset: int = 18, inits=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [n])], [U(name=nodes[-1].output[0])],
                          initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def reduction_model(op: str, data: np.ndarray) -> onnx.ModelProto:
    """``ConstantOfShape(Reshape(Clip(op(data), 0, 4), [1]))`` of an integer initializer ``data``: onnxruntime's
    kernel accumulates it in float64 and saturates (ReduceProd of int64 [2**62, 4]: 9223372036854775807, 4 floats),
    where onnx's evaluator wraps (0: no float)."""
    nodes = [helper.make_node(op, ["d"], ["r"], keepdims=1),
             helper.make_node("Clip", ["r", "lo", "hi"], ["c"]),
             helper.make_node("ConstantOfShape", ["c"], ["y"])]
    inits = [numpy_helper.from_array(data, "d"), numpy_helper.from_array(np.array(0, data.dtype), "lo"),
             numpy_helper.from_array(np.array(4, data.dtype), "hi")]
    if data.dtype != np.int64:
        nodes.insert(2, helper.make_node("Cast", ["c"], ["c64"], to=T.INT64))
        nodes[-1].input[0] = "c64"
    g = helper.make_graph(nodes, "g", [], [U(name="y")], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def float_rows_model(n: int, ops: list[tuple[str, float | None]], rounding: str = "Ceil") -> onnx.ModelProto:
    """``ConstantOfShape(Cast(rounding(ops(Cast(Shape(x), FLOAT)))))`` of an ``n``-long input ``x``: each op of
    ``ops`` a unary one (None) or a binary one with that float32 constant."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["f0"], to=T.FLOAT)]
    inits = []
    for k, (op, const) in enumerate(ops):
        ins = [f"f{k}"] + ([f"k{k}"] if const is not None else [])
        if const is not None:
            inits.append(numpy_helper.from_array(np.array(const, np.float32), f"k{k}"))
        nodes.append(helper.make_node(op, ins, [f"f{k + 1}"]))
    nodes += [helper.make_node(rounding, [f"f{len(ops)}"], ["w"]), helper.make_node("Cast", ["w"], ["i"], to=T.INT64),
              helper.make_node("ConstantOfShape", ["i"], ["y"])]
    return _graph_model(nodes, n, inits=inits)


def regression_cases() -> list[Case]:
    """The round's defects, as sweep cases: an integer reduction past 2**53 (or its type) and a whole number
    rounded from Exp(Log(n)) (onnxruntime's value its build's own: refused), and their neighbours that fold."""
    feeds = {}
    return [Case("reg_reduceprod_int64_past_2_53", reduction_model("ReduceProd", np.array([2**62, 4], np.int64)),
                 feeds),
            Case("reg_reducesum_int32_past_its_range", reduction_model("ReduceSum", np.array([2**31 - 1, 2],
                                                                                          np.int32)), feeds),
            Case("reg_reducesum_small", reduction_model("ReduceSum", np.array([1, 2], np.int64)), feeds),
            Case("reg_ceil_exp_log_14", float_rows_model(14, [("Log", None), ("Exp", None)]),
                 {"x": np.zeros(14, np.float32)}),
            Case("reg_ceil_log_times_3_14", float_rows_model(14, [("Log", None), ("Mul", 3.0)]),
                 {"x": np.zeros(14, np.float32)}),
            Case("reg_floor_pow_2_5", float_rows_model(5, [("Pow", 2.0)], "Floor"), {"x": np.zeros(5, np.float32)})]


def all_cases(count: int = 40, seed: int = 78) -> list[Case]:
    """The regression cases and ``count`` cases of each family, drawn from ``seed``."""
    out = regression_cases()
    for name, make in FAMILIES.items():
        r = random.Random(f"{seed}-{name}")
        out.extend(make(r, k) for k in range(count))
    return out


# -- the comparison -----------------------------------------------------------------------------------------------------

FAILING = ("MISMATCH", "over-refusal", "planned, onnxruntime refuses", "RAW")
#: refusals of what onnxruntime runs that are right: a Resize keeping the aspect ratio over negative axes (runtimes
#: disagree), a value whose fold is onnxruntime's build's own (an unsure Cast, an integer reduction past 2**53, a whole
#: number rounded from Exp or Log near where the rounding changes: ``fold._unsure_reduction``,
#: ``fold._inexact_rounding``), a float16 computation onnxruntime runs in float32 (round 66)
KNOWN_REFUSALS = ("keeps the aspect ratio", "which the importer does not know", "from float16 values")


def imported(case: Case):
    """``(graph, None, [])``, ``(None, refusal, [])`` or ``(None, None, [the RAW line])``."""
    try:
        return import_onnx(case.model, dims=case.dims), None, []
    except MemplanError as exc:
        return None, str(exc).split("\n")[0], []
    except Exception as exc:  # noqa: BLE001 - a raw exception is a bug: counted and shown
        return None, None, [f"{case.label}: RAW {type(exc).__name__}: {str(exc)[:300]}"]


def compare(case: Case) -> tuple[str, list[str]]:
    """The case's class (see the module's docstring) and its lines to print."""
    g, refusal, raw = imported(case)
    if raw:
        return "RAW", raw
    status, real = sweep68._ort_values(case)
    if status != "ok":
        if g is None:
            return "both refuse", []
        if status == "kernel":
            return "no CPU kernel", []
        if status == "run":
            return "run refused", [f"{case.label}: {real[''][:220]}"]
        return "planned, onnxruntime refuses", [f"{case.label}: {real[''][:220]}"]
    if g is None:
        if case.dynamic:
            return "data-dependent refusal", [f"{case.label}: {refusal[:220]}"]
        if any(w in refusal for w in KNOWN_REFUSALS):
            return "known refusal", [f"{case.label}: {refusal[:220]}"]
        return "over-refusal", [f"{case.label}: memplan refuses what onnxruntime runs: {refusal[:260]}"]
    bad = sweep68._differences(case, g, real, "onnxruntime")
    return ("MISMATCH", bad) if bad else ("agree", [])


def run(cases: list[Case], show: int = 20, out=sys.stdout) -> Counter:
    return driver.run(cases, compare, show, out)


def main(argv: list[str]) -> int:
    show, words = driver.options(argv, ("--show", "--count"))
    count = int(argv[argv.index("--count") + 1]) if "--count" in argv else 40
    return driver.status(run(driver.chosen(all_cases(count), words), show), FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
