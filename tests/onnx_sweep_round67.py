"""Differential sweep (round 67): corners of ops rounds 65-66 did not vary, against onnxruntime or ``onnx.reference``.

Why: rounds 65 and 66 compared onnx's own node test cases (and their variations) with onnxruntime; the attribute and
value corners those cases do not reach were planned unchecked. Each case here is a one-op model whose integer inputs
(shapes, pads, axes, indices, sizes) are initializers, as exporters write them, so the importer sizes every value:

* **Resize**: every ``mode`` x ``coordinate_transformation_mode`` (``tf_crop_and_resize`` of a ``roi``), ``antialias``,
  ``keep_aspect_ratio_policy``, ``axes`` (positive, reordered, one), by ``scales`` and by ``sizes``, down and up;
* **Pad**: every mode (``wrap`` from 19), negative pads, ``axes`` (negative ones), a ``constant_value``, empty inputs;
* **Slice** / **Split**: starts and ends past the int64 range's ends, negative steps, empty results; splits of 0,
  ``num_outputs`` that do not divide the axis;
* **Einsum**: transposes, traces, reductions, batched products, ellipses (broadcasting a 1), implicit outputs;
* **GatherND** / **ScatterND**: ``batch_dims`` 0-2, index tuples of every length, ``reduction``;
* **Reshape**: ``allowzero`` 0/1 with zeros and -1 in the shape, empty inputs;
* **newer ops**: TopK-24, Swish-24, TensorScatter-24, SplitToSequence-24, Pad/Reshape/Flatten-25;
* a symbolic dimension no ``--dim`` fixes (``unsized_cases``): refused naming the value.

Each case is run by onnxruntime (every value exposed); where it refuses to *run* it (or has no CPU kernel), by onnx's
reference implementation. Classes: ``agree (judge)``, ``MISMATCH`` (a value planned of another shape, dtype or bytes),
``ort refuses to load, memplan plans`` (a model no runtime loads: memplan must refuse it), ``over-refusal``
(memplan refuses what a runtime runs), ``known refusal`` (deliberate: ``KNOWN_REFUSALS``), ``both refuse``,
``planned, neither runs`` (printed, not judged), ``RAW``.

Also (``run_refused``): round 65's sweep cases onnxruntime refuses only as it runs, each matched to its reason in
``RUN_REFUSED`` (valid by the ONNX specification, and only onnxruntime's CPU kernel lacks it, or its inputs' values
are out of range, which the plan cannot see): one that matches none is printed, as ``unexplained run refusal``.

Run: ``python tests/onnx_sweep_round67.py [--show N] [NAME_SUBSTRING ...]`` from the repository root
(``PYTHONPATH=$PWD:$PWD/tests``). Exit status 1 on any failing class (``FAILING``).
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_sweep_driver as driver
import onnx_sweep_round65 as sweep65
import onnx_sweep_round66 as sweep66
from onnx import TensorProto as T
from onnx import helper, numpy_helper

Case = sweep65.Case
I64 = np.iinfo(np.int64)


def _case(label: str, op: str, opset: int, inputs: list[tuple[str, np.ndarray | None, bool]], outs: int = 1,
          **attrs) -> Case:
    """A one-node model ``op`` at default opset ``opset``: ``inputs`` are ``(name, value, constant)`` in the node's
    order (a ``None`` value: an input left out, ``""``); a constant one is an initializer, the others graph inputs
    fed ``value``. Its outputs are declared by name alone (inference sizes them)."""
    names, ins, inits, feeds = [], [], [], {}
    for name, v, const in inputs:
        if v is None:
            names.append("")
            continue
        names.append(name)
        if const:
            inits.append(numpy_helper.from_array(v, name))
        else:
            ins.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
            feeds[name] = v
    while names and not names[-1]:
        names.pop()
    out_names = [f"y{k}" for k in range(outs)]
    node = helper.make_node(op, names, out_names, name=f"{op.lower()}0", **attrs)
    g = helper.make_graph([node], "g", ins, [helper.ValueInfoProto(name=o) for o in out_names], initializer=inits)
    return Case(label, helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), feeds)


def _x(shape, dtype=np.float32, seed: int = 67) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(dtype)


def _i(v) -> np.ndarray:
    return np.array(v, np.int64)


# -- the cases ---------------------------------------------------------------------------------------------------------

def resize_cases() -> Iterator[Case]:
    """Resize of a ``[1, 2, 4, 5]`` input over modes, coordinate modes, antialias, aspect-ratio policies and axes."""
    x = _x((1, 2, 4, 5))
    coords = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_crop_and_resize"]
    for mode, coord, anti, (how, v) in itertools.product(
            ["nearest", "linear", "cubic"], coords, [0, 1],
            [("scales", [1, 1, 0.6, 1.7]), ("scales", [1, 1, 2.0, 0.5]), ("sizes", [1, 2, 3, 9]),
             ("sizes", [1, 2, 1, 1])]):
        if anti and mode == "nearest":
            continue
        roi = np.array([0, 0, 0.1, 0.2, 1, 1, 0.9, 0.7], np.float32) if coord == "tf_crop_and_resize" else None
        vals = (np.array(v, np.float32), None) if how == "scales" else (None, _i(v))
        yield _case(f"resize_{mode}_{coord}_aa{anti}_{how}{v}", "Resize", 19,
                    [("x", x, False), ("roi", roi, True), ("scales", vals[0], True), ("sizes", vals[1], True)],
                    mode=mode, coordinate_transformation_mode=coord, antialias=anti)
    for policy, axes, sizes in itertools.product(["stretch", "not_larger", "not_smaller"],
                                                 [None, [2, 3], [3, 2], [3], [1, 3]],
                                                 [[7, 4], [2, 9], [3, 3], [1, 1]]):
        n = 4 if axes is None else len(axes)
        full = [1, 2, *sizes] if axes is None else sizes[:n]
        extra = {} if axes is None else {"axes": axes}
        yield _case(f"resize_policy_{policy}_axes{axes}_sizes{full}", "Resize", 18,
                    [("x", x, False), ("roi", None, True), ("scales", None, True), ("sizes", _i(full), True)],
                    keep_aspect_ratio_policy=policy, **extra)
    for axes, scales in (([2, 3], [0.5, 2.5]), ([3, 2], [0.5, 2.5]), ([3], [1.5]), ([0, 2], [1.0, 0.75])):
        yield _case(f"resize_axes{axes}_scales{scales}", "Resize", 18,
                    [("x", x, False), ("roi", None, True), ("scales", np.array(scales, np.float32), True)], axes=axes)
    for opset in (11, 13):
        for coord in coords:
            roi = np.array([0, 0, 0.25, 0, 1, 1, 0.75, 1], np.float32) if coord == "tf_crop_and_resize" else \
                np.zeros(0, np.float32)
            yield _case(f"resize{opset}_{coord}", "Resize", opset,
                        [("x", x, False), ("roi", roi, True), ("scales", np.array([1, 1, 1.5, 0.8], np.float32),
                                                                   True)],
                        coordinate_transformation_mode=coord, mode="linear") if coord != "half_pixel_symmetric" \
                else None
    for opset, sizes in itertools.product([11, 13, 18, 19], [[0, 2, 7, 3], [0, 2, 4, 5], [2, 2, 7, 3], [0, 2, 0, 3]]):
        empty = np.zeros(0, np.float32) if opset < 13 else None
        yield _case(f"resize{opset}_empty_batch_to_{sizes}", "Resize", opset,
                    [("x", _x((0, 2, 4, 5)), False), ("roi", empty, True), ("scales", empty, True),
                     ("sizes", _i(sizes), True)])
        yield _case(f"resize{opset}_linear_empty_batch_to_{sizes}", "Resize", opset,
                    [("x", _x((0, 2, 4, 5)), False), ("roi", empty, True), ("scales", empty, True),
                     ("sizes", _i(sizes), True)], mode="linear")
        yield _case(f"resize{opset}_to_{sizes}", "Resize", opset, [("x", x, False), ("roi", empty, True),
                                                                   ("scales", empty, True), ("sizes", _i(sizes), True)])
    for policy, axes, sizes in itertools.product(["not_larger", "not_smaller"], [[3], [2, 3], [1, 3]],
                                                 [[0, 0], [2, 0], [6, 0]]):
        yield _case(f"resize_{policy}_over_empty_axes{axes}_to_{sizes[-len(axes):]}", "Resize", 19,
                    [("x", _x((6, 3, 1, 0)), False), ("roi", None, True), ("scales", None, True),
                     ("sizes", _i(sizes[-len(axes):]), True)], axes=axes, keep_aspect_ratio_policy=policy)
    for mode in ("nearest", "linear", "cubic"):
        yield _case(f"resize_antialias_{mode}", "Resize", 18,
                    [("x", x, False), ("roi", None, True), ("scales", np.array([1, 1, 0.5, 0.5], np.float32), True)],
                    mode=mode, antialias=1)
    yield _case("resize_empty_batch", "Resize", 19, [("x", _x((0, 2, 4, 5)), False), ("roi", None, True),
                                                      ("scales", np.array([1, 1, 2, 2], np.float32), True)])


def resize_rounding_cases() -> Iterator[Case]:
    """Resize by float32 scales whose product with the input's length lies next to an integer (10 by 0.7: 6.9999998
    in double, 7.0 in float32), by ``scales`` at opsets 10, 11 and 19 and by ``sizes`` kept in their aspect ratio."""
    for d, sc in itertools.product([3, 10, 20, 29, 113, 1000], [0.1, 0.29, 1 / 3, 0.35, 0.7, 0.9, 1.15, 1.3, 2.3, 2.55]):
        x = _x((1, 1, 1, d))
        scales = np.array([1, 1, 1, sc], np.float32)
        yield _case(f"resize10_{d}_by_{sc:.4f}", "Resize", 10, [("x", x, False), ("scales", scales, True)])
        yield _case(f"resize11_{d}_by_{sc:.4f}", "Resize", 11, [("x", x, False), ("roi", np.zeros(0, np.float32), True),
                                                                ("scales", scales, True)], mode="linear")
        yield _case(f"resize19_{d}_by_{sc:.4f}", "Resize", 19, [("x", x, False), ("roi", None, True),
                                                                ("scales", scales, True)])
    for d, target, policy in itertools.product([3, 10, 29, 113], [1, 2, 5, 7, 33], ["not_larger", "not_smaller"]):
        yield _case(f"resize18_{d}_to_{target}_{policy}", "Resize", 18,
                    [("x", _x((1, 1, 3, d)), False), ("roi", None, True), ("scales", None, True),
                     ("sizes", _i([target, target]), True)], axes=[2, 3], keep_aspect_ratio_policy=policy)


def pad_cases() -> Iterator[Case]:
    """Pad over modes, negative pads, axes and constant values, at opsets 13, 18, 19 and 25."""
    x = _x((2, 3, 4))
    pads_list = [[0, 1, 2, 1, 0, 3], [0, -1, 1, 0, -2, 1], [1, 0, 0, -1, 0, 0], [0, 0, -4, 0, 0, 0],
                 [0, 2, 3, 0, 2, 3], [0, 0, 0, 0, 0, 0]]
    for opset, mode, pads in itertools.product([13, 18, 19, 25], ["constant", "reflect", "edge", "wrap"], pads_list):
        if mode == "wrap" and opset < 19:
            continue
        yield _case(f"pad{opset}_{mode}_{pads}", "Pad", opset,
                    [("x", x, False), ("pads", _i(pads), True), ("value", np.array(1.5, np.float32), True)], mode=mode)
    for opset, axes, pads, mode in itertools.product([18, 25], [[1], [-1], [0, 2], [-3, -1], [2, 0]],
                                                     [[1, 2], [-1, 3]], ["constant", "edge", "reflect"]):
        full = pads * len(axes) if len(axes) == 1 else [pads[0], pads[1], pads[1], pads[0]]
        full = full[: 2 * len(axes)]
        yield _case(f"pad{opset}_axes{axes}_{full}_{mode}", "Pad", opset,
                    [("x", x, False), ("pads", _i(full), True), ("value", None, True), ("axes", _i(axes), True)],
                    mode=mode)
    for mode in ("constant", "edge", "reflect", "wrap"):
        yield _case(f"pad_empty_{mode}", "Pad", 19, [("x", _x((0, 3)), False), ("pads", _i([1, 1, 0, 2]), True)],
                    mode=mode)
        yield _case(f"pad_empty_inner_{mode}", "Pad", 19, [("x", _x((2, 0)), False),
                                                           ("pads", _i([0, 1, 0, 2]), True)], mode=mode)


def slice_cases() -> Iterator[Case]:
    """Slice with starts/ends past int64's ends, negative steps and axes, empty results; Split of zeros and uneven
    ``num_outputs``."""
    x = _x((5, 6))
    big, small = int(I64.max), int(I64.min)
    for starts, ends, steps, axes in [
        ([0], [big], [1], [0]), ([small], [big], [1], [1]), ([big], [small], [-1], [0]), ([-1], [small], [-1], [1]),
        ([2], [big], [2**62], [0]), ([0, 1], [big, -1], [2, 3], [0, 1]), ([4], [1], [1], [0]),
        ([-100], [100], [1], [-1]), ([3], [-100], [-2], [-2]), ([5], [0], [-1], [0]), ([1], [1], [1], [1]),
        ([small], [small], [1], [0]), ([big], [big], [-1], [1]), ([-2], [big], [-1], [0]),
        ([1, 0], [4, big], [-1, 1], [1, 0]),
    ]:
        yield _case(f"slice_{starts}_{ends}_{steps}_{axes}", "Slice", 13,
                    [("x", x, False), ("starts", _i(starts), True), ("ends", _i(ends), True),
                     ("axes", _i(axes), True), ("steps", _i(steps), True)])
    yield _case("slice_empty_input", "Slice", 13, [("x", _x((0, 6)), False), ("starts", _i([1]), True),
                                                   ("ends", _i([big]), True), ("axes", _i([1]), True)])
    for split, axis in [([0, 6], 1), ([2, 0, 3], 0), ([0, 0, 5], -2), ([6], -1), ([1, 1, 1, 1, 1, 1], 1)]:
        yield _case(f"split_{split}_axis{axis}", "Split", 13, [("x", x, False), ("split", _i(split), True)],
                    outs=len(split), axis=axis)
    for n, axis, opset in [(4, 1, 18), (3, 0, 18), (2, 0, 18), (5, 0, 18), (4, -1, 18), (6, 1, 18), (4, 1, 25)]:
        yield _case(f"split{opset}_num{n}_axis{axis}", "Split", opset, [("x", x, False)], outs=n, axis=axis,
                    num_outputs=n)


def einsum_cases() -> Iterator[Case]:
    """Einsum over transposes, traces, reductions, batched products, ellipses and implicit outputs."""
    for eq, shapes in [
        ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij->ji", [(2, 3)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
        ("ij->", [(2, 3)]), ("i,i", [(4,), (4,)]), ("i,j->ij", [(2,), (3,)]), ("ij,jk", [(2, 3), (3, 4)]),
        ("ba,ca", [(2, 3), (4, 3)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("...ij,...jk->...ik",
                                                                                [(2, 1, 3, 4), (5, 4, 2)]),
        ("b...d,b...d->b...", [(2, 3, 4), (2, 1, 4)]), ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
        ("...,...->...", [(3, 1), (1, 4)]), ("i...->...", [(2, 3, 4)]), ("ij,ij->i", [(3, 1), (3, 4)]),
        ("Ab,bC->AC", [(2, 3), (3, 4)]), ("iij->j", [(2, 2, 3)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 1)]),
        ("ij->ij", [(0, 3)]), ("ij,jk->ik", [(2, 0), (0, 4)]), ("...", [(2, 3)]), ("i->", [(0,)]),
        ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)]),
    ]:
        yield _case(f"einsum_{eq}_{shapes}", "Einsum", 12,
                    [(f"x{k}", _x(s, seed=k), False) for k, s in enumerate(shapes)], equation=eq)


def gather_scatter_nd_cases() -> Iterator[Case]:
    """GatherND and ScatterND of ``batch_dims`` 0-2 and index tuples of every length; ScatterND's reductions."""
    data = _x((2, 3, 4))
    for b, q in itertools.product([0, 1, 2], [0, 1, 2, 3]):
        if q > 3 - b:
            continue
        lead = [2, 3][:b]
        idx = np.zeros((*lead, 2, q), np.int64)
        for k in range(q):
            idx[..., k] = (k + 1) % [2, 3, 4][b + k]
        yield _case(f"gathernd_b{b}_q{q}", "GatherND", 13, [("x", data, False), ("i", idx, True)], batch_dims=b)
    for q, red in itertools.product([1, 2, 3], ["none", "add", "mul", "max", "min"]):
        idx = np.zeros((2, q), np.int64)
        idx[1, 0] = 1
        upd = _x((2, *data.shape[q:]), seed=1)
        yield _case(f"scatternd_q{q}_{red}", "ScatterND", 18, [("x", data, False), ("i", idx, True),
                                                              ("u", upd, False)], reduction=red)
    yield _case("scatternd_empty_updates", "ScatterND", 18, [("x", data, False),
                                                             ("i", np.zeros((0, 1), np.int64), True),
                                                             ("u", _x((0, 3, 4)), False)])


def reshape_cases() -> Iterator[Case]:
    """Reshape with ``allowzero`` 0 and 1, zeros and -1 in the shape, of empty and non-empty inputs."""
    for shape_in, target in [((2, 3, 4), [0, -1]), ((2, 3, 4), [0, 0, 4]), ((2, 0, 4), [0, -1]), ((2, 0, 4), [0, 8]),
                             ((2, 0, 4), [-1, 4]), ((0, 3), [3, 0]), ((2, 3, 4), [-1]), ((2, 3, 4), [4, 0, 2]),
                             ((0, 4), [0, 4]), ((2, 3, 4), [0, 2, -1]), ((6, 0), [0, 0])]:
        for allowzero in (0, 1):
            yield _case(f"reshape_{shape_in}_{target}_az{allowzero}", "Reshape", 14,
                        [("x", _x(shape_in), False), ("s", _i(target), True)], allowzero=allowzero)


def newer_cases() -> Iterator[Case]:
    """Op versions of opsets 23-25 the importer takes: TopK-24, Swish-24, TensorScatter-24, SplitToSequence-24,
    Pad/Reshape/Flatten/Squeeze-25."""
    x = _x((3, 5))
    for k, axis, opset in [(2, 1, 24), (0, 1, 24), (3, 0, 24), (5, -1, 24), (1, -2, 11)]:
        yield _case(f"topk{opset}_k{k}_axis{axis}", "TopK", opset, [("x", x, False), ("k", _i([k]), True)], outs=2,
                    axis=axis)
    yield _case("swish24", "Swish", 24, [("x", x, False)], alpha=0.5)
    for mode, (cache, upd, idx) in itertools.product(
            ["linear", "circular"], [((2, 6, 4), (2, 1, 4), [3, 5]), ((2, 2, 6, 4), (2, 2, 3, 4), [0, 3]),
                                     ((2, 6, 4), (2, 0, 4), [1, 2])]):
        axis = -2
        yield _case(f"tensorscatter_{mode}_{cache}_{upd}", "TensorScatter", 24,
                    [("c", _x(cache), False), ("u", _x(upd, seed=2), False),
                     ("w", np.array(idx, np.int64), True)], mode=mode, axis=axis)
    yield _case("split_to_sequence24", "SplitToSequence", 24, [("x", x, False), ("s", _i([2, 3]), True)], axis=1)
    yield _case("split_to_sequence24_keep", "SplitToSequence", 24, [("x", x, False)], axis=0, keepdims=0)
    yield _case("pad25_edge", "Pad", 25, [("x", x, False), ("pads", _i([1, 0, 0, 2]), True)], mode="edge")
    yield _case("reshape25", "Reshape", 25, [("x", x, False), ("s", _i([5, -1]), True)])
    yield _case("flatten25", "Flatten", 25, [("x", _x((2, 3, 0, 4)), False)], axis=2)
    yield _case("squeeze25", "Squeeze", 25, [("x", _x((1, 3, 1)), False), ("a", _i([-1]), True)])


def invalid_cases() -> Iterator[Case]:
    """Models the ONNX specification does not define (duplicate or out-of-range axes, pads of the wrong length,
    Split sums, GatherND batch dimensions, ScatterND updates, Reshape targets, Einsum ranks, TensorScatter extents,
    a Resize roi of the wrong length, a Pad value of two elements...) and a few valid neighbours: each must be
    refused by memplan wherever no runtime runs it (``planned, neither runs`` is what a missing check looks like)."""
    x = _x((2, 3, 4))
    yield from [
        _case(
            "pad_axes_dup",
            "Pad",
            18,
            [("x", x, False), ("p", _i([1, 1, 1, 1]), True), ("v", None, True), ("a", _i([1, 1]), True)],
        ),
        _case(
            "pad_axes_oob",
            "Pad",
            18,
            [("x", x, False), ("p", _i([1, 1]), True), ("v", None, True), ("a", _i([3]), True)],
        ),
        _case(
            "pad_axes_len",
            "Pad",
            18,
            [("x", x, False), ("p", _i([1, 1, 1]), True), ("v", None, True), ("a", _i([1]), True)],
        ),
        _case("pad_pads_len", "Pad", 13, [("x", x, False), ("p", _i([1, 1, 1, 1]), True)]),
        _case(
            "pad_value_vec",
            "Pad",
            13,
            [("x", x, False), ("p", _i([0] * 6), True), ("v", np.array([1, 2], np.float32), True)],
        ),
        _case(
            "slice_axes_dup",
            "Slice",
            13,
            [("x", x, False), ("s", _i([0, 1]), True), ("e", _i([1, 2]), True), ("a", _i([1, 1]), True)],
        ),
        _case(
            "slice_axes_oob",
            "Slice",
            13,
            [("x", x, False), ("s", _i([0]), True), ("e", _i([1]), True), ("a", _i([3]), True)],
        ),
        _case(
            "slice_step0",
            "Slice",
            13,
            [("x", x, False), ("s", _i([0]), True), ("e", _i([1]), True), ("a", _i([1]), True), ("st", _i([0]), True)],
        ),
        _case("slice_len", "Slice", 13, [("x", x, False), ("s", _i([0, 0]), True), ("e", _i([1]), True)]),
        _case("split_num_gt", "Split", 18, [("x", x, False)], outs=5, axis=2, num_outputs=5),
        _case("split_num_mismatch_outs", "Split", 18, [("x", x, False)], outs=2, axis=2, num_outputs=3),
        _case("split_sum", "Split", 13, [("x", x, False), ("s", _i([1, 1]), True)], outs=2, axis=2),
        _case("split_neg", "Split", 13, [("x", x, False), ("s", _i([5, -1]), True)], outs=2, axis=2),
        _case("split_both", "Split", 18, [("x", x, False), ("s", _i([2, 2]), True)], outs=2, axis=2, num_outputs=2),
        _case(
            "gathernd_b_gt", "GatherND", 13, [("x", x, False), ("i", np.zeros((2, 3, 1), np.int64), True)], batch_dims=3
        ),
        _case(
            "gathernd_q_gt", "GatherND", 13, [("x", x, False), ("i", np.zeros((2, 3), np.int64), True)], batch_dims=1
        ),
        _case(
            "gathernd_lead", "GatherND", 13, [("x", x, False), ("i", np.zeros((3, 1), np.int64), True)], batch_dims=1
        ),
        _case("gathernd_oob", "GatherND", 13, [("x", x, False), ("i", np.full((1, 1), 5, np.int64), True)]),
        _case(
            "scatternd_upd_shape",
            "ScatterND",
            18,
            [("x", x, False), ("i", np.zeros((2, 1), np.int64), True), ("u", _x((2, 3, 5)), False)],
        ),
        _case(
            "scatternd_oob",
            "ScatterND",
            18,
            [("x", x, False), ("i", np.full((1, 1), 7, np.int64), True), ("u", _x((1, 3, 4)), False)],
        ),
        _case("reshape_two_neg", "Reshape", 14, [("x", x, False), ("s", _i([-1, -1]), True)]),
        _case("reshape_bad", "Reshape", 14, [("x", x, False), ("s", _i([5, -1]), True)]),
        _case("reshape_neg2", "Reshape", 14, [("x", x, False), ("s", _i([-2, 12]), True)]),
        _case("reshape_0_oob", "Reshape", 14, [("x", _x((2, 12)), False), ("s", _i([2, 3, 0, 4]), True)]),
        _case("topk_neg", "TopK", 24, [("x", x, False), ("k", _i([-1]), True)], outs=2),
        _case("topk_2d_k", "TopK", 24, [("x", x, False), ("k", _i([[1]]), True)], outs=2),
        _case("flatten_oob", "Flatten", 25, [("x", x, False)], axis=4),
        _case("flatten_neg", "Flatten", 25, [("x", x, False)], axis=-4),
        _case("einsum_ell_rank", "Einsum", 12, [("x0", _x((2,)), False)], equation="ij...->i"),
        _case(
            "einsum_mismatch",
            "Einsum",
            12,
            [("x0", _x((2, 3)), False), ("x1", _x((4, 5)), False)],
            equation="ij,jk->ik",
        ),
        _case("einsum_arity", "Einsum", 12, [("x0", _x((2, 3)), False)], equation="ij,jk->ik"),
        _case("einsum_rank", "Einsum", 12, [("x0", _x((2, 3)), False)], equation="ijk->i"),
        _case("einsum_trace_diff", "Einsum", 12, [("x0", _x((2, 3)), False)], equation="ii->i"),
        _case(
            "tensorscatter_idx_len",
            "TensorScatter",
            24,
            [("c", _x((2, 6, 4)), False), ("u", _x((2, 1, 4)), False), ("w", _i([1, 2, 3]), True)],
        ),
        _case("tensorscatter_upd_big", "TensorScatter", 24, [("c", _x((2, 6, 4)), False), ("u", _x((2, 7, 4)), False)]),
        _case(
            "tensorscatter_linear_over",
            "TensorScatter",
            24,
            [("c", _x((2, 6, 4)), False), ("u", _x((2, 3, 4)), False), ("w", _i([5, 5]), True)],
            mode="linear",
        ),
        _case(
            "resize_sizes_and_scales",
            "Resize",
            13,
            [
                ("x", _x((1, 1, 2, 2)), False),
                ("r", None, True),
                ("sc", np.array([1, 1, 2, 2], np.float32), True),
                ("sz", _i([1, 1, 4, 4]), True),
            ],
        ),
        _case(
            "resize_sizes_len",
            "Resize",
            13,
            [("x", _x((1, 1, 2, 2)), False), ("r", None, True), ("sc", None, True), ("sz", _i([4, 4]), True)],
        ),
        _case(
            "resize_axes_dup",
            "Resize",
            18,
            [("x", _x((1, 1, 2, 2)), False), ("r", None, True), ("sc", None, True), ("sz", _i([4, 4]), True)],
            axes=[2, 2],
        ),
        _case(
            "resize_axes_oob",
            "Resize",
            18,
            [("x", _x((1, 1, 2, 2)), False), ("r", None, True), ("sc", None, True), ("sz", _i([4]), True)],
            axes=[4],
        ),
        _case(
            "resize_neg_size",
            "Resize",
            18,
            [("x", _x((1, 1, 2, 2)), False), ("r", None, True), ("sc", None, True), ("sz", _i([1, 1, -4, 4]), True)],
        ),
        _case(
            "resize_roi_len",
            "Resize",
            18,
            [
                ("x", _x((1, 1, 2, 2)), False),
                ("r", np.array([0, 1], np.float32), True),
                ("sc", np.array([1, 1, 2, 2], np.float32), True),
            ],
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        _case(
            "resize_roi_inverted",
            "Resize",
            18,
            [
                ("x", _x((1, 1, 4, 4)), False),
                ("r", np.array([0, 0, 0.8, 0, 1, 1, 0.2, 1], np.float32), True),
                ("sc", np.array([1, 1, 2, 2], np.float32), True),
            ],
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
    ]


def _chain(label: str, nodes: list, feeds: dict[str, np.ndarray], outs: list[str], opset: int = 18) -> Case:
    """A model of ``nodes`` (integer constants as ``Constant`` nodes, as exporters write them) over graph inputs
    ``feeds``, its values ``outs`` declared by name alone."""
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype),
                                                                     list(v.shape)) for k, v in feeds.items()],
                          [helper.ValueInfoProto(name=o) for o in outs])
    return Case(label, helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), feeds)


def _const(name: str, v) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(v), name))


def chain_cases() -> Iterator[Case]:
    """The shape arithmetic exporters write before a Resize, Reshape, Pad, Slice, Expand or Split (``Shape`` ->
    ``Slice``/``Gather`` -> ``Concat``/``Sub``/``Mul``): sizes the importer folds from the input's shape."""
    for shape in ((2, 3, 4, 5), (0, 3, 4, 5), (1, 1, 1, 1)):
        x = _x(shape)
        lead = [helper.make_node("Shape", ["x"], ["s"]), _const("a", _i([0])), _const("b", _i([2])),
                helper.make_node("Slice", ["s", "a", "b"], ["nc"])]
        yield _chain(f"chain_resize_sizes_{shape}", [*lead, _const("hw", _i([7, 3])),
                                                     helper.make_node("Concat", ["nc", "hw"], ["sz"], axis=0),
                                                     helper.make_node("Resize", ["x", "", "", "sz"], ["y"])],
                     {"x": x}, ["y"])
        yield _chain(f"chain_resize_double_{shape}", [
            helper.make_node("Shape", ["x"], ["s"]), _const("two", _i([1, 1, 2, 2])),
            helper.make_node("Mul", ["s", "two"], ["sz"]), helper.make_node("Resize", ["x", "", "", "sz"], ["y"],
                                                                            mode="nearest")], {"x": x}, ["y"])
        for allowzero in (0, 1):
            yield _chain(f"chain_reshape_flat_{shape}_az{allowzero}", [
                *lead[:1], _const("z", _i(0)), helper.make_node("Gather", ["s", "z"], ["n"]),
                helper.make_node("Unsqueeze", ["n", "a"], ["n1"]), _const("m1", _i([-1])),
                helper.make_node("Concat", ["n1", "m1"], ["t"], axis=0),
                helper.make_node("Reshape", ["x", "t"], ["y"], allowzero=allowzero)], {"x": x}, ["y"])
        yield _chain(f"chain_pad_to_8_{shape}", [
            helper.make_node("Shape", ["x"], ["s"]), _const("e", _i([8, 8, 8, 8])),
            helper.make_node("Sub", ["e", "s"], ["d"]), _const("zz", _i([0, 0, 0, 0])),
            helper.make_node("Concat", ["zz", "d"], ["p"], axis=0), helper.make_node("Pad", ["x", "p"], ["y"])],
            {"x": x}, ["y"])
        yield _chain(f"chain_slice_half_{shape}", [
            helper.make_node("Shape", ["x"], ["s"]), _const("h", _i([2])), helper.make_node("Div", ["s", "h"], ["e"]),
            _const("st", _i([0, 0, 0, 0])), helper.make_node("Slice", ["x", "st", "e"], ["y"])], {"x": x}, ["y"])
        yield _chain(f"chain_expand_{shape}", [
            helper.make_node("Shape", ["x"], ["s"]), _const("o", _i([1])), helper.make_node("Max", ["s", "o"], ["m"]),
            helper.make_node("Expand", ["x", "m"], ["y"])], {"x": x}, ["y"])
        yield _chain(f"chain_split_{shape}", [
            helper.make_node("Shape", ["x"], ["s"]), _const("k", _i(3)), helper.make_node("Gather", ["s", "k"], ["w"]),
            _const("one", _i(1)), helper.make_node("Sub", ["w", "one"], ["w1"]),
            helper.make_node("Concat", ["w1u", "oneu"], ["sp"], axis=0) if False else
            helper.make_node("Unsqueeze", ["w1", "a0"], ["w1u"]), _const("a0", _i([0])),
            helper.make_node("Unsqueeze", ["one", "a0"], ["oneu"]),
            helper.make_node("Concat", ["w1u", "oneu"], ["sp"], axis=0),
            helper.make_node("Split", ["x", "sp"], ["y", "y2"], axis=3)] if shape[3] > 0 else [
            helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["x"], ["y2"])], {"x": x},
            ["y", "y2"])


def newest_cases() -> Iterator[Case]:
    """Op versions of opsets 26-28: BitCast-26 (same-width types, empty, bool), CumProd-26 (exclusive, reverse, empty,
    integer), CausalConvWithState-27 (with and without bias and past state, empty batch and length, a kernel of 1 and
    operands that do not fit) and SwiGLU-28 (equal shapes; broadcasting, which the spec does not apply)."""
    for to in (T.INT32, T.UINT32, T.FLOAT16, T.INT64, T.FLOAT):
        yield _case(f"bitcast_float_to_{T.DataType.Name(to)}", "BitCast", 26, [("x", _x((2, 3)), False)], to=to)
    yield _case("bitcast_float16_to_int16", "BitCast", 26, [("x", _x((2, 3), np.float16), False)], to=T.INT16)
    yield _case("bitcast_empty", "BitCast", 26, [("x", _x((0, 3)), False)], to=T.INT32)
    yield _case("bitcast_bool_to_uint8", "BitCast", 26, [("x", np.ones((2,), bool), False)], to=T.UINT8)
    for exclusive, reverse in itertools.product([0, 1], [0, 1]):
        yield _case(f"cumprod_ex{exclusive}_rev{reverse}", "CumProd", 26, [("x", _x((2, 3)), False), ("a", _i(1), True)],
                    exclusive=exclusive, reverse=reverse)
    yield _case("cumprod_empty", "CumProd", 26, [("x", _x((0, 3)), False), ("a", _i(0), True)])
    yield _case("cumprod_int32", "CumProd", 26, [("x", np.ones((2, 3), np.int32), False), ("a", _i(-1), True)])
    for b, c, length, k, past, bias in [(1, 4, 5, 3, True, True), (2, 3, 1, 4, True, False), (1, 2, 6, 1, False, False),
                                        (0, 2, 3, 3, True, True), (1, 2, 0, 3, True, False), (2, 3, 4, 3, False, True),
                                        (1, 2, 5, 3, "bad", False), (1, 2, 5, 3, "wide", False)]:
        w = _x((3 if past == "wide" else c, 1, k), seed=1)
        p = _x((b, c, k if past == "bad" else k - 1), seed=3) if past else None
        yield _case(f"causalconv_b{b}_c{c}_l{length}_k{k}_past{past}_bias{bias}", "CausalConvWithState", 27,
                    [("x", _x((b, c, length)), False), ("w", w, True), ("b", _x((c,), seed=2) if bias else None, True),
                     ("p", p, False)], outs=2)
    for a, b in [((2, 3), (2, 3)), ((0, 3), (0, 3)), ((2, 3), (1, 3)), ((2, 1), (2, 3)), ((3,), (2, 3))]:
        yield _case(f"swiglu_{a}_{b}", "SwiGLU", 28, [("a", _x(a), False), ("b", _x(b, seed=1), False)], alpha=1.5)


def all_cases() -> Iterator[Case]:
    for make in (resize_cases, resize_rounding_cases, chain_cases, invalid_cases, pad_cases, slice_cases, einsum_cases, gather_scatter_nd_cases, reshape_cases,
                 newer_cases, newest_cases):
        yield from (c for c in make() if c is not None)


# -- the comparison ----------------------------------------------------------------------------------------------------

def _differences(case: Case, g, real: dict, judge: str) -> list[str]:
    bad = []
    for t in g.tensors:
        if t.id not in real or t.kind == "input" or "container" in t.attrs:
            continue
        shape, dtype, size = real[t.id]
        got = (list(t.attrs.get("shape", [])), f"tensor({t.attrs.get('dtype')})", t.size)
        if got != (shape, dtype, size):
            under = " UNDER" if t.size < size else ""
            bad.append(f"{case.label}: {t.id!r} planned {got}, {judge} made {(shape, dtype, size)}{under}")
    return bad


def compare(case: Case) -> tuple[str, list[str]]:
    """The case's class (see the module's docstring) and its lines to print."""
    status, real = sweep65.ort_values(case)
    g, refusal, raw = sweep65.imported(case)
    if raw:
        return "RAW", raw
    judge = "onnxruntime"
    if status == "load":
        if g is None:
            return "both refuse", []
        return "ort refuses to load, memplan plans", [f"{case.label}: {real[''][:240]}"]
    if status == "run" and g is None:
        return "both refuse", []   # (memplan refuses what onnxruntime's kernel refuses, where it can see it)
    if status != "ok":
        why = real[""]
        status, real = sweep66.reference_values(case)
        judge = "onnx.reference"
        if status != "ok":
            return ("both refuse", []) if g is None else ("planned, neither runs", [f"{case.label}: {why[:200]}"])
    if g is None:
        if any(w in refusal for w in KNOWN_REFUSALS):
            return "known refusal", [f"{case.label}: {refusal[:220]}"]
        return "over-refusal", [f"{case.label}: memplan refuses what {judge} runs: {refusal[:220]}"]
    bad = _differences(case, g, real, judge)
    return ("MISMATCH", bad) if bad else (f"agree ({judge})", [])


#: memplan's deliberate refusals of what a runtime runs (the words of the refusal -> why)
KNOWN_REFUSALS: dict[str, str] = {
    "runtimes disagree on": "a Resize keeping the aspect ratio over an empty axis (its ratio 0 / 0) or negative axes: "
    "ONNX's rule and onnxruntime size the other axes apart",
    "which size a runtime writes is unknown": "a Resize whose ONNX-rule size (floor of the double product) and "
    "onnxruntime's (of the float32 product) differ: 10 by 0.7 is 6 by ONNX's rule, 7 by onnxruntime's",
    "onnxruntime runs it as its own extension": "a GatherND whose indices hold a multiple of the data's batches "
    "(round 68): the spec requires the batch dimensions equal and onnx's reference fails on it",
}

#: round 65's sweep cases onnxruntime 1.32 refuses only as it runs, and why memplan plans them (label substring and
#: the words of onnxruntime's refusal -> the reason). Each was checked against the ONNX specification: the model is
#: valid, so a plan is right for a runtime that has the kernel (or for the inputs a deployment feeds)
RUN_REFUSED: list[tuple[str, str, str]] = [
    ("test_convinteger_with_padding", "Non per-tensor quantization is not supported",
     "valid: ConvInteger-10's w_zero_point may be 1-D of the output channels' length (per-channel); onnxruntime's CPU "
     "kernel takes only a scalar one (one of another length, or of rank 2, is invalid: memplan refuses it)"),
    ("test_gru_", "GRU operator does not support double", "valid: GRU's T includes double; no CPU kernel of it"),
    ("test_lstm_", "LSTM operator does not support double", "valid: LSTM's T includes double; no CPU kernel of it"),
    ("test_reduce_max_empty_set_bool", "ReduceMax is not defined for empty set with bool type",
     "valid: ReduceMax-20 takes bool and defines the empty set's result (false); onnxruntime's kernel does not"),
    ("test_scatter", "MLFloat16 data type is not supported",
     "valid: ScatterElements/ScatterND of float16 with a reduction; onnxruntime's CPU kernel lacks that type"),
    ("@empty", "out of data bounds", "inputs: the emptied data no longer holds the indices fed (their values)"),
    ("@empty", "invalid index found", "inputs: the emptied data no longer holds the indices fed (their values)"),
    ("@empty", "indices must be empty when an indexed data dimension has size 0",
     "inputs: the emptied data no longer holds the indices fed (their values)"),
    ("@empty", "gather_elements.cc", "inputs: the emptied data no longer holds the indices fed (their values)"),
    ("test_reversesequence_time@empty", "Invalid sequence length",
     "inputs: the sequence lengths fed exceed the emptied batch's time axis (their values)"),
    ("test_split_to_sequence_2@empty", "split_size_sum (3) != split_dim_size (0)",
     "inputs: the split fed (a graph input) does not sum to the emptied axis (its values)"),
]


def run_refused_reason(label: str, why: str) -> str | None:
    """The reason ``RUN_REFUSED`` records for a case onnxruntime refuses to run, or None."""
    return next((r for part, words, r in RUN_REFUSED if part in label and words in why), None)


def run_refused(cases: Iterator[Case], out=sys.stdout) -> Counter:
    """Each of ``cases`` that memplan plans and onnxruntime refuses only as it runs, matched to its reason; print
    the unmatched ones. Returns the counts by reason (``unexplained run refusal``: none matched)."""
    counts: Counter = Counter()
    for c in cases:
        status, real = sweep65.ort_values(c)
        if status != "run":
            continue
        g, _, raw = sweep65.imported(c)
        if g is None and not raw:
            continue
        reason = run_refused_reason(c.label, real[""])
        counts[reason or "unexplained run refusal"] += 1
        if reason is None:
            print(f"[unexplained run refusal] {c.label}: {real[''][:240]}", file=out)
    return counts


def run(cases: list[Case], show: int = 20, out=sys.stdout) -> Counter:
    return driver.run(cases, compare, show, out)


FAILING = ("MISMATCH", "over-refusal", "ort refuses to load, memplan plans", "RAW", "unexplained run refusal")


def main(argv: list[str]) -> int:
    show, words = driver.options(argv)
    counts = run(driver.chosen(all_cases(), words), show)
    if "--run-refused" in argv:
        counts.update(run_refused(sweep65.all_cases()))
        print(", ".join(f"{v}: {k}" for k, v in counts.items() if k in {r for *_, r in RUN_REFUSED}))
    return driver.status(counts, FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
