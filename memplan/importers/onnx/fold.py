"""Constant folding and the specification's own shape rules, for what ONNX shape inference leaves unknown.

Why: sizes often depend on small values computed in the graph (a Shape -> Gather -> Concat -> Reshape chain, a Range's
length, a Slice's ends). Folding those few values exactly, capped by ``MAX_FOLD_ELEMENTS`` and ``MAX_FOLD_ROUNDS``,
gives the sizes onnxruntime will allocate; where onnxruntime differs from the specification (ends past the end,
pools of an empty axis) its behaviour is followed, because it is the runtime the plan must hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..._warnblock import warnings_caught
from ...errors import GraphError
from .common import _BITS, EITHER_OPTIONAL, ORT_DOMAIN, SHAPE_ONLY, _broadcast, _declared_type, _default_opset, _nbytes
from .node_checks import (
    _einsum_labels,
    _einsum_terms,
    _ml_shapes,
    _pad_amounts,
    _slice1_shape,
    ort_pool_extent,
    pool_attributes,
)


def _range_lengths(start, limit, delta) -> tuple[int, int] | None:
    """(onnxruntime's, ONNX's inference's) length of a float Range of these scalar values, or None where either is
    not finite. onnxruntime (and onnx's reference evaluator) compute ``ceil((limit - start) / delta)`` in float64;
    ONNX's inference subtracts in the values' own type first (float32: ``5.3 - 0.3`` rounds to 4.9999995, 25
    elements where onnxruntime makes 26)."""
    import numpy as np

    with np.errstate(all="ignore"):
        ort = np.ceil((np.float64(limit) - np.float64(start)) / np.float64(delta))
        onnx_n = np.ceil(np.float64(limit - start) / np.float64(delta))
    if not (np.isfinite(ort) and np.isfinite(onnx_n)):
        return None
    return max(int(ort), 0), max(int(onnx_n), 0)


def _integer_range_lengths(start: int, limit: int, delta: int, bits: int) -> tuple[int, int] | None:
    """(onnxruntime's, ONNX's inference's) length of an int32 (``bits`` 32) or int64 Range of these values, or None
    where ``delta`` is 0 (onnxruntime refuses it). onnxruntime's kernel counts ``ceil((limit - start) / delta)`` of
    the exact integers; ONNX's inference subtracts in the values' own type (wrapping past its range) and divides
    in float64 (rounding a difference past 2**53)."""
    if not delta:
        return None
    exact = max(-((start - limit) // delta), 0)
    wrapped = (limit - start + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
    onnx_n = math.ceil(float(wrapped) / float(delta))
    return exact, max(onnx_n, 0)


def _exact_range(onnx, n, values: dict, g2, taken: set[str]) -> tuple[list, int, Any, int] | None:
    """(the nodes to stand, in the inference copy ``g2``, for a float32, int32 or int64 Range ``n`` of known scalar
    ``values`` whose length ONNX's inference computes otherwise than onnxruntime (``_range_lengths``,
    ``_integer_range_lengths``), its length, its value or None, its element type): its value as a Constant (up to
    ``MAX_FOLD_ELEMENTS``) or a ConstantOfShape of its length; None where ``n`` is no such Range. A static shape the
    model declares for it that onnxruntime's length contradicts is refused, naming the node. ``taken``: the value
    names in use, for the length's (updated).

    Why: ``Range(0.3, 5.3, 0.2)`` was planned 25 elements where onnxruntime writes 26, an overrun (one in six random
    float32 Ranges differed, either way); folding did not correct it, as a value that disagrees with ONNX's
    inference is never folded, and what followed was sized by ONNX's length. An integer Range whose difference
    wraps in its type or passes 2**53 was so too: ``Range(-2**31, 2**31 - 1, 2**31 - 1)`` (int32) planned empty,
    where onnxruntime writes 3 elements."""
    import numpy as np
    from onnx import numpy_helper

    ins = list(n.input)
    if n.op_type != "Range" or n.domain not in ("", "ai.onnx") or len(ins) != 3 or not n.output or not n.output[0]:
        return None
    args = [values.get(v) for v in ins]
    if any(a is None or a.size != 1 for a in args) or len({a.dtype for a in args}) != 1:
        return None
    dtype = args[0].dtype
    if dtype == np.float32:
        start, limit, delta = (a.reshape(()) for a in args)
        lengths = _range_lengths(start, limit, delta)
        how = f"ceil(({float(limit)!r} - {float(start)!r}) / {float(delta)!r}) in float64; ONNX's inference subtracts in float32"
    elif dtype in (np.int32, np.int64):
        start, limit, delta = (int(a.reshape(-1)[0]) for a in args)
        lengths = _integer_range_lengths(start, limit, delta, dtype.itemsize * 8)
        how = (f"ceil(({limit} - {start}) / {delta}) of the exact integers; ONNX's inference subtracts in "
               f"{dtype.name}, wrapping, and divides in float64")
    else:
        return None
    if lengths is None or lengths[0] == lengths[1]:
        return None
    length, out = lengths[0], n.output[0]
    if length >= 2**63:   # (its length is no int64: a raw OverflowError making the ConstantOfShape's shape)
        raise GraphError(f"{f'node {n.name!r}' if n.name else 'a node'} (Range): its count of elements "
                         f"ceil(({limit} - {start}) / {delta}) is {length}, which exceeds int64's range: onnxruntime "
                         "refuses to run it (\"the computed number of elements exceeds the supported range\")")
    for vi in (*g2.value_info, *g2.output):
        declared = _declared_type(vi) if vi.name == out else None
        if declared and declared[1] is not None and None not in declared[1] and declared[1] != [length]:
            raise GraphError(f"{f'node {n.name!r}' if n.name else 'a node'} (Range): value {out!r} is declared {declared[1]} in the model, "
                             f"but onnxruntime's Range makes it [{length}] ({how} and gets "
                             f"{lengths[1]}): correct or remove the declaration")
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    if length <= MAX_FOLD_ELEMENTS:
        if dtype == np.float32:
            value = (np.float64(start) + np.arange(length) * np.float64(delta)).astype(np.float32)
        else:   # (exact: every element lies between start and limit, though k * delta may pass the type's range)
            value = np.array([start + k * delta for k in range(length)], dtype)
        return [onnx.helper.make_node("Constant", [], [out], value=numpy_helper.from_array(value, out))], length, value, elem
    shape = next(f"{out}::length{k or ''}" for k in range(len(taken) + 1) if f"{out}::length{k or ''}" not in taken)
    taken.add(shape)
    return [onnx.helper.make_node("Constant", [], [shape], value=numpy_helper.from_array(np.array([length], np.int64),
                                                                                           shape)),
            onnx.helper.make_node("ConstantOfShape", [shape], [out], value=numpy_helper.from_array(
                np.zeros(1, dtype)))], length, None, elem


def _fresh_name(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem`` and a number, whichever is first not in ``taken`` (which receives it)."""
    name = next(f"{stem}{k or ''}" for k in range(len(taken) + 1) if f"{stem}{k or ''}" not in taken)
    taken.add(name)
    return name


#: the ends onnxruntime's Slice (10 and later) reads as "to the end of the dimension" whatever their step's sign
SLICE_END_ALL = (2**31 - 1, 2**63 - 1)


def _ort_slice_ends(n, values: dict, opset: int):
    """The ends that, read by ONNX's rule, make of Slice ``n`` what onnxruntime makes of its own, where they differ
    (an end of ``SLICE_END_ALL`` with a negative step taken as the dimension's start, an end before it); None where
    ``n`` is no Slice of such known ends and steps (``values``: ``_known_values``'s).

    Why: onnxruntime's kernel reads an end of INT32_MAX or INT64_MAX as "none" (numpy's ``x[s::-1]``) whatever the
    step, and a negative step then runs down to index 0, where ONNX's rule clamps the end to ``dim - 1``: a
    ``Slice(x[7, 5], starts=[0], ends=[INT64_MAX], steps=[-1])`` was planned empty where onnxruntime writes row 0
    (20 bytes), and ``starts=[4]``, 5 rows."""
    import numpy as np

    if n.op_type != "Slice" or n.domain not in ("", "ai.onnx") or opset < 10 or len(n.input) < 3 or not n.input[2]:
        return None
    ends = values.get(n.input[2])
    if ends is None or ends.ndim != 1 or ends.dtype not in (np.int32, np.int64):
        return None
    steps = values.get(n.input[4]) if len(n.input) > 4 and n.input[4] else np.ones_like(ends)
    if steps is None or steps.shape != ends.shape or steps.dtype.kind not in "iu":
        return None
    hit = np.isin(ends, SLICE_END_ALL) & (steps < 0)
    if not hit.any():
        return None
    fixed = ends.copy()
    fixed[hit] = np.iinfo(ends.dtype).min   # (before any dimension's start: clamped to -1, past index 0)
    return fixed


def _value_names(g) -> set[str]:
    """Every value name graph ``g`` uses: its nodes' inputs and outputs, its inputs, outputs, initializers and
    declarations."""
    names = {v for n in g.node for v in (*n.input, *n.output)}
    names.update(v.name for v in (*g.input, *g.output, *g.value_info))
    names.update(t.name for t in g.initializer)
    names.update(t.values.name for t in g.sparse_initializer)
    return names


def _external_attribute(onnx, n) -> bool:
    """Whether a tensor attribute of node ``n`` still has its data in an external file (see above)."""
    return any(t.data_location == onnx.TensorProto.EXTERNAL
               for a in n.attribute for t in ([a.t] if a.HasField("t") else list(a.tensors)))


# -- folding of shape computations --------------------------------------------------------------------
#
# ONNX's data propagation follows Shape -> Gather -> Concat -> Reshape, but not Div, Cast, Equal, Where,
# ConstantOfShape, Range...: exporters (torch.onnx for torchvision's ViT, Swin, ShuffleNet) compute
# shapes with them, so the tensors behind such a Reshape, Expand, Pad or Slice had unknown dimensions. As
# the runtimes' constant folding does, nodes whose inputs are all known small values (constants, the
# shape of a tensor whose shape is known) are evaluated (onnx's reference evaluator) and replaced by
# Constants in the copy given to shape inference, and inference runs again, until nothing new folds.

#: most rounds of fold-and-infer (each resolves shapes that depend on the shapes found by the last)
MAX_FOLD_ROUNDS = 32
#: values up to this many elements are folded (shape computations are tiny; masks and weights are not)
MAX_FOLD_ELEMENTS = 4096
#: ops never folded: random, or not a pure function of their inputs; or whose work no size of theirs
#: bounds (a window or a sampling ratio is an attribute: the reference evaluator's MaxPool of an 8x8 constant
#: with a 3000x3000 window ran 80 s, its RoiAlign with sampling_ratio 64 a minute), which compute no shapes
_NO_FOLD = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                      "Bernoulli", "Dropout",
                      "MaxPool", "AveragePool", "LpPool", "MaxRoiPool", "RoiAlign", "Conv", "ConvTranspose",
                      "ConvInteger", "QLinearConv", "DeformConv", "GridSample", "Col2Im", "MaxUnpool", "LRN",
                      "RNN", "LSTM", "GRU", "NonMaxSuppression", "STFT", "DFT"})


#: ops that move or cast their float16 inputs' values without arithmetic: in float32 they give the same values
_EXACT_MOVES = frozenset({"Cast", "CastLike", "Concat", "Expand", "Flatten", "Gather", "GatherElements", "GatherND",
                          "Identity", "Reshape", "Slice", "Split", "Squeeze", "Tile", "Transpose", "Unsqueeze"})
#: doc_string of a Constant ``_fold_round`` made of a float16 value that onnxruntime holds unrounded: the numpy dtype
#: (``<f4``, ``cast<f4`` where a model's own Cast to float16 made it) and the hex of that value follow, so that a later
#: round's fold starts from it (``_float16_wide``)
_WIDE_MARK = "memplan:float32-value:"
#: doc_string prefix of a Constant ``_fold_round`` made of a float value an inexact op computed (``_inexact_rounding``),
#: so that a later round still knows it
_INEXACT_MARK = "memplan:inexact:"
#: the float ops that sum (or multiply) many values, in an order onnxruntime's vectorized kernel and numpy choose apart
#: (float32 [0.3333] * 3 + ... summed to 12.0 there, 12.000002 here): exact only of whole numbers whose partial results
#: the type holds exactly (``_whole_sum``)
_ORDERED_SUMS = frozenset({"Einsum", "MatMul", "ReduceL1", "ReduceMean", "ReduceProd", "ReduceSum", "ReduceSumSquare",
                           "Sum"})
#: the float ops whose results onnxruntime's CPU kernels and onnx's evaluator (numpy) round differently: elementwise
#: functions no library rounds correctly (onnxruntime's vectorized ones differ from the C library's by an ulp, and
#: from one element of a tensor to the next), those built of them, and the ordered sums
_INEXACT_OPS = frozenset({
    "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Celu", "Cos", "Cosh", "Elu", "Erf", "Exp", "Gelu", "Gemm",
    "HardSigmoid", "HardSwish", "LogSoftmax", "Log", "LpNormalization", "Mish", "Pow", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "Selu", "Sigmoid", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Tan", "Tanh",
    # (round 79: a window's cosines, and a determinant's LU factorization, which onnxruntime's Eigen and numpy's LAPACK
    # round apart: Floor(4 * HannWindow(3)) [0, 2, 2] here and [0, 3, 3] there, Det([[1, -1], [-3, 4]]) 1.0 and
    # 1.0000001)
    "BlackmanWindow", "HammingWindow", "HannWindow", "Det"}) | _ORDERED_SUMS
#: the ops that round a float to a whole number (Round: to the nearest, halves to even)
_ROUNDINGS = frozenset({"Ceil", "Floor", "Round", "Cast", "CastLike"})


def _float16_wide(n, result: list, branch: str, values: dict, wide: dict, opsets: dict[str, int],
                  narrow: set) -> None:
    """Follow, beside ``values``, what onnxruntime computes for the float16 values of a fold: in ``wide``, the float32
    value of each float16 (or float32/float64) output it holds unrounded; refuse an integer or bool output (a size, a
    condition) whose value differs between the two.

    Why: onnxruntime's CPU provider has no float16 kernel for most arithmetic (``Div``, ``Add``, ``Neg``, ``Floor``,
    ``Ceil``, ``ReduceSum``...): it runs each such node in float32 between casts, and then drops the casts between two
    such nodes (a model's own ``Cast`` to float16 included), so a chain of them computes in float32 without rounding
    between nodes. A shape computed in float16 (``Cast(Shape(x), FLOAT16) -> Div(0.1) -> Ceil -> Cast(INT64)``) was
    folded by ONNX's float16 arithmetic, rounding at each node: 4 / 0.1 rounds to 40.0 in float16 and its Ceil is 40,
    where onnxruntime computes 40.0098 and allocates 41 rows, writing past the 40 planned. Where the two
    arithmetics give one value, it is folded as before; where they differ, which one a run takes depends on which
    of the model's ops onnxruntime's build has float16 kernels for, and the import is refused naming the node."""
    import numpy as np

    if branch not in ("evaluate", "slice", "unique") or not n.input:
        return
    if n.op_type == "Identity" and n.input[0] in wide and n.output and n.output[0]:
        # (passed on as it is, a model's Cast too: onnxruntime's optimizer removes an Identity, so what follows decides)
        wide[n.output[0]] = wide[n.input[0]]
        if n.input[0] in narrow:
            narrow.add(n.output[0])
        return
    ins = [values[v] if v else None for v in n.input]
    # (of an integer too: Cast(Shape(x), FLOAT16) of a dimension of 4097 is 4096, but onnxruntime casts 4097 to
    # float32 for its island)
    narrowed = n.op_type in ("Cast", "CastLike") and result[0].dtype == np.float16 and ins[0].dtype.kind in "fiu"
    moved = n.op_type in _EXACT_MOVES and not narrowed
    # (the wide values onnxruntime holds here: a model's Cast to float16 (``narrow``) that a move or a Cast reads
    # stays, as onnxruntime runs those in float16, so its rounding holds: Cast(Cast(q, FLOAT16), INT64) is q rounded)
    held = {v for v in n.input if v in wide and not (moved and v in narrow)}
    if not narrowed and not any(v and (v in held or ins[k].dtype == np.float16) for k, v in enumerate(n.input)):
        return
    if moved and not held:
        return   # (moving or casting exact float16 values rounds nothing)
    alt_in = [None if not v else wide[v] if v in held else ins[k].astype(np.float32) if ins[k].dtype == np.float16
              else ins[k] for k, v in enumerate(n.input)]
    if narrowed:   # (a Cast to float16 before a float32 island is dropped: its input flows on unrounded)
        alt = [alt_in[0].astype(np.float32)]
    elif branch == "slice":
        alt = _ort_slice(alt_in)
    elif branch == "unique":
        alt = _ort_unique(n, alt_in[0])
    else:
        alt = _evaluate(n, alt_in, opsets)
    if alt is None or len(alt) != len(result):
        return
    for o, r, a in zip(n.output, result, alt):
        a = np.asarray(a)
        if not o or a.shape != r.shape:
            continue
        if r.dtype.kind == "f":
            if a.dtype.kind == "f" and not np.array_equal(a.astype(np.float64), r.astype(np.float64), equal_nan=True):
                wide[o] = a.astype(np.float64 if r.dtype == np.float64 else np.float32)
                if narrowed:
                    narrow.add(o)
        elif r.dtype.kind in "biu" and a.dtype.kind in "biuf" and not np.array_equal(a.astype(r.dtype), r):
            raise _float16_unsure(n, o, f"computes {o!r} from float16 values: by ONNX's float16 arithmetic (rounding "
                                  f"at each node) it is {r.reshape(-1)[:8].tolist()}, but onnxruntime's CPU provider "
                                  "computes float16 arithmetic in float32 without rounding between nodes, which gives "
                                  f"{a.astype(r.dtype).reshape(-1)[:8].tolist()}", "what it sizes is")


def _refuse_wide_sizes(onnx, n, shapes: dict, elems: dict, values: dict, wide: dict, opset: int) -> None:
    """Refuse node ``n`` where a float32 or float64 input it reads is one onnxruntime holds unrounded (``wide``,
    ``_float16_wide``) and the sizes ONNX's inference gives its outputs differ between that value and the float16
    one folded: a ``Range`` whose limit is ``Cast(Div(Cast(Shape(x), FLOAT16), 0.1), FLOAT)`` is 40 long by ONNX's
    float16 arithmetic, 41 by onnxruntime's (it drops the casts around its float32 island), and so a ``Resize`` of
    such scales."""
    alt = {v: wide[v].astype(values[v].dtype) for v in n.input
           if v in wide and v in values and values[v].dtype.kind == "f" and values[v].dtype.itemsize >= 4}
    if not alt:
        return
    mine, theirs = (_infer_node(onnx, n, shapes, elems, vals, opset) for vals in (values, {**values, **alt}))
    for o, (shape, _) in mine.items():
        if o in theirs and theirs[o][0] != shape:
            raise _float16_unsure(n, o, f"makes {o!r} of shape {list(shape)} from {', '.join(map(repr, alt))} as "
                                  "ONNX's float16 arithmetic computes it (rounding at each node), but of "
                                  f"{list(theirs[o][0])} as onnxruntime's CPU provider computes it (float16 arithmetic "
                                  "in float32, without rounding between nodes)", "its size is")


def _float16_unsure(n, o: str, differs: str, unknown: str) -> GraphError:
    """The refusal of node ``n`` (named, or by its op and output ``o``) whose value or size ``differs`` between ONNX's
    float16 arithmetic and onnxruntime's (``_float16_wide``, ``_refuse_wide_sizes``): which one a run takes depends
    on onnxruntime's build, so what depends on it (``unknown``: "its size is") is not known at import."""
    what = f"node {n.name!r} ({n.op_type})" if n.name else f"the {n.op_type} node making {o!r}"
    return GraphError(f"{what} {differs}: which one a run takes depends on the float16 kernels of onnxruntime's build, "
                      f"so {unknown} not known at import (compute the shape in float32 or int64)")


def _inference_dropout(n, values: dict, opsets: dict[str, int]) -> bool:
    """Whether ``n`` is a default-domain ``Dropout`` (opset 7 on) that runs in inference mode: no ``training_mode``
    input, or one folded to false. Such a Dropout passes its data through, and onnxruntime removes it (its default
    level) and folds what follows: a Reshape to a ``Cast(Dropout(Cast(shape)))`` runs there, and the importer refused
    it unsized (Dropout is never folded otherwise: in training mode it is random)."""
    if n.op_type != "Dropout" or n.domain not in ("", "ai.onnx") or opsets.get("", 0) < 7 or not n.input:
        return False
    if len(n.input) < 3 or not n.input[2]:
        return True
    mode = values.get(n.input[2])
    return mode is not None and mode.size == 1 and not bool(mode.reshape(-1)[0])


def _all_static(g) -> bool:
    """Every value a node makes has a static shape: a value inference left out of ``value_info`` (an op
    without an inference function: GroupNormalization-21) is not static, and is left to a fold round."""
    typed = set()
    for vi in list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None or not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim):
            return False
        typed.add(vi.name)
    return all(not o or o in typed for n in g.node if n.op_type != "Constant" for o in n.output)


def _static_shapes(g) -> dict[str, tuple[int, ...]]:
    out = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                out[vi.name] = tuple(d.dim_value for d in dims)
    for t in g.initializer:
        out[t.name] = tuple(t.dims)
    return out


#: ops onnxruntime may make smaller outputs of than ONNX's inference sizes (``_ort_fewer``), and the first opset at
#: which they do (pooling's ``ceil_mode``; ConvTranspose's ``output_padding`` beside ``SAME_*``)
ORT_SMALLER = {"MaxPool": 10, "AveragePool": 10, "LpPool": 18, "ConvTranspose": 1}


def _pool_windows(n, x: tuple[int, ...], y: tuple[int, ...]) -> dict[int, int]:
    """``{axis: windows}`` onnxruntime's kernel makes along each spatial axis of pooling node ``n`` of an
    ``x``-shaped input where it makes fewer than ONNX's inference (``y``). onnxruntime counts
    ``(in + pads - dilation * (kernel - 1) - 1) / stride + 1`` windows, rounded down (up in ``ceil_mode``, less a
    last window that would start at or past the end of the input and its leading padding, as PyTorch does), its
    ``SAME_*`` pads being those of an undilated kernel."""
    spatial = len(x) - 2
    parsed = pool_attributes(n, spatial)
    if parsed is None or len(y) != len(x):
        return {}
    auto_pad, kernel, strides, dilations, pads, ceil = parsed
    out = {}
    for i in range(spatial):
        size, stride, windows = x[2 + i], strides[i], y[2 + i]
        ort, _head, _needed = ort_pool_extent(auto_pad, size, stride, kernel[i], dilations[i],
                                              (pads[i], pads[i + spatial]), ceil)
        # (a kernel past a short input, a SAME_* one dilated or any in ceil_mode from opset 22: 1 window or 0
        # where ONNX's rule counts more (round 73); a negative count is refused by ``_check_pool``)
        if 0 <= ort < windows:
            out[2 + i] = ort
    return out


def _conv_transpose_size(n, x: tuple[int, ...], y: tuple[int, ...]) -> dict[int, int]:
    """``{axis: size}`` of the output of ConvTranspose ``n`` of an ``x``-shaped input along each spatial axis where
    onnxruntime makes it smaller than ONNX's inference (``y``): with ``SAME_*`` and no ``output_shape``, onnxruntime
    makes ``in * stride`` and ignores ``output_padding``, which ONNX's inference adds."""
    attrs = {a.name: a for a in n.attribute}
    if (attrs["auto_pad"].s if "auto_pad" in attrs else b"") not in (b"SAME_UPPER", b"SAME_LOWER") or "output_shape" in attrs:
        return {}
    spatial = len(x) - 2
    strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * spatial
    if spatial < 1 or len(y) != len(x) or len(strides) != spatial:
        return {}
    return {2 + i: x[2 + i] * strides[i] for i in range(spatial) if x[2 + i] * strides[i] < y[2 + i]}


def _ort_fewer(n, x: tuple[int, ...], y: tuple[int, ...]) -> dict[int, int]:
    """``{axis: size}`` onnxruntime makes of the output of ``n`` (one of ``ORT_SMALLER``) where ONNX's is larger."""
    return _conv_transpose_size(n, x, y) if n.op_type == "ConvTranspose" else _pool_windows(n, x, y)


def _ort_smaller_outputs(onnx, m2, inferred) -> bool:
    """Make each node of the inference copy ``m2`` (``ORT_SMALLER``) whose output onnxruntime makes smaller than
    ONNX's inference sizes it (``_ort_fewer``) write into a value of its own, sliced down to onnxruntime's size
    into the values the model names; True when any was.

    Why: ONNX's inference counts ``ceil((in + pads - kernel) / stride) + 1`` windows in ``ceil_mode``, and
    onnxruntime (with PyTorch) drops a last window that would start in the trailing padding:
    ``MaxPool2d(2, 2, padding=1, ceil_mode=True)`` of a 5x5 was planned 4x4 (192 bytes of 3 channels), onnxruntime
    writes 3x3 (108); a ``SAME_*`` pool of a dilated kernel makes fewer windows than ONNX's ``ceil(in / stride)``;
    a ConvTranspose ``SAME_*`` with ``output_padding`` makes ``in * stride``, without the padding ONNX adds; what
    followed was sized by ONNX's count too (waste, never an overrun)."""
    import numpy as np
    from onnx import numpy_helper

    opset = next((o.version for o in m2.opset_import if (o.domain or "") in ("", "ai.onnx")), 1)
    if not any(n.op_type in ORT_SMALLER and opset >= ORT_SMALLER[n.op_type] for n in m2.graph.node):
        return False
    shapes = _static_shapes(inferred)
    nodes, taken, sliced = [], None, set()
    for n in m2.graph.node:
        nodes.append(n)
        x = shapes.get(n.input[0]) if n.input else None
        y = shapes.get(n.output[0]) if n.output and n.output[0] else None
        if (n.op_type not in ORT_SMALLER or n.domain not in ("", "ai.onnx") or opset < ORT_SMALLER[n.op_type] or x is None
                or y is None):
            continue
        fewer = _ort_fewer(n, x, y)
        if not fewer:
            continue
        taken = _value_names(m2.graph) if taken is None else taken
        axes = sorted(fewer)
        for k, o in enumerate(n.output):
            if not o:
                continue
            full = next(f"{o}::windows{j or ''}" for j in range(len(taken) + 1) if f"{o}::windows{j or ''}" not in taken)
            n.output[k] = full
            if opset < 10:   # (Slice-1 takes attributes: a ConvTranspose's of opset 1-9, which inference refused)
                taken.add(full)
                nodes.append(onnx.helper.make_node("Slice", [full], [o], starts=[0] * len(axes),
                                                   ends=[fewer[a] for a in axes], axes=axes))
                sliced.add(o)
                continue
            names = [f"{full}::{w}" for w in ("starts", "ends", "axes")]
            taken.update([full, *names])
            for name, value in zip(names, ([0] * len(axes), [fewer[a] for a in axes], axes)):
                nodes.append(onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
                    np.array(value, np.int64), name)))
            nodes.append(onnx.helper.make_node("Slice", [full, *names], [o]))
            sliced.add(o)
    return _replace_nodes(m2.graph, nodes, sliced)


def _einsum_expanded(n, shapes: dict) -> dict[int, tuple[int, ...]]:
    """``{input index: the shape onnxruntime broadcasts it to}`` for Einsum node ``n`` whose inputs ``shapes`` knows:
    an output label of length 1 in that input and N in another (numpy and onnxruntime broadcast it to N)."""
    attrs = {a.name: a.s for a in n.attribute}
    parsed = _einsum_terms(attrs.get("equation", b"").decode("utf-8", "replace"))
    if parsed is None or len(parsed[0]) != len(n.input) or not all(v in shapes for v in n.input):
        return {}
    terms, out = parsed
    labels = [_einsum_labels(t, len(shapes[v])) for t, v in zip(terms, n.input)]
    if None in labels:
        return {}
    longest: dict[str | None, int] = {}
    for ls, v in zip(labels, n.input):
        for c, d in zip(ls, shapes[v]):
            longest[c] = max(longest.get(c, d), d)
    found = {}
    for k, (ls, v) in enumerate(zip(labels, n.input)):
        wide = tuple(longest[c] if d == 1 and c is not None and c in out else d for c, d in zip(ls, shapes[v]))
        if wide != shapes[v]:
            found[k] = wide
    return found


def _einsum_broadcasts(onnx, m2, inferred) -> bool:
    """Make each Einsum of the inference copy ``m2`` that broadcasts an output label of length 1 (``_einsum_expanded``)
    read its inputs Expanded to the lengths onnxruntime broadcasts them to; True when any was.

    Why: ONNX's Einsum inference takes a label's first length and does not broadcast: ``bij,bjk->bik`` of a
    ``[1, 3, 4]`` and a ``[5, 4, 6]`` was planned ``[1, 3, 6]`` (72 bytes), and onnxruntime (as numpy) writes
    ``[5, 3, 6]`` (360 bytes) into it."""
    import numpy as np
    from onnx import numpy_helper

    if not any(n.op_type == "Einsum" and n.domain in ("", "ai.onnx") for n in m2.graph.node):
        return False
    shapes = _static_shapes(inferred)
    nodes, taken, changed = [], None, set()
    for n in m2.graph.node:
        wide = _einsum_expanded(n, shapes) if n.op_type == "Einsum" and n.domain in ("", "ai.onnx") else {}
        for k, shape in sorted(wide.items()):
            taken = _value_names(m2.graph) if taken is None else taken
            name = _fresh_name(f"{n.input[k]}::broadcast", taken)
            target = _fresh_name(f"{name}::shape", taken)
            nodes.append(onnx.helper.make_node("Constant", [], [target], value=numpy_helper.from_array(
                np.array(shape, np.int64), target)))
            nodes.append(onnx.helper.make_node("Expand", [n.input[k], target], [name]))
            n.input[k] = name
            changed.update(o for o in n.output if o)
        nodes.append(n)
    return _replace_nodes(m2.graph, nodes, changed)


def _prelu_broadcasts(onnx, m2, inferred) -> bool:
    """Make each PRelu of the inference copy ``m2`` whose slope broadcasts its input ``X`` to a larger shape read
    ``X`` Expanded to that shape; True when any did.

    Why: ONNX's PRelu broadcasts the slope to ``X`` alone (unidirectionally) and sizes the output as ``X``;
    onnxruntime's kernel broadcasts both ways, as ``Add`` does: a PRelu of ``X`` ``[2, 1]`` by a slope of ``[3]``
    was planned 8 bytes, and onnxruntime writes ``[2, 3]`` (24 bytes) into it. (Shapes that do not broadcast at all
    are refused by ``_check_prelu_slope``.)"""
    import numpy as np
    from onnx import numpy_helper

    if _default_opset(m2) < 7 or not any(n.op_type == "PRelu" and n.domain in ("", "ai.onnx") for n in m2.graph.node):
        return False   # (PRelu-1 and -6 apply a slope per channel: sized as X, and onnxruntime runs neither)
    shapes = _static_shapes(inferred)
    nodes, taken, changed = [], None, set()
    for n in m2.graph.node:
        if (n.op_type == "PRelu" and n.domain in ("", "ai.onnx") and len(n.input) == 2
                and all(v in shapes for v in n.input)):
            wide = _broadcast([shapes[n.input[0]], shapes[n.input[1]]])
            if wide is not None and wide != shapes[n.input[0]]:
                taken = _value_names(m2.graph) if taken is None else taken
                name = _fresh_name(f"{n.input[0]}::broadcast", taken)
                target = _fresh_name(f"{name}::shape", taken)
                if _default_opset(m2) < 9:   # (no Expand before opset 8, no int64 Constant before 9: X plus the
                    #   slope's zeros, broadcast both ways by Add since opset 7, is X at the wide shape)
                    nodes.append(onnx.helper.make_node("Sub", [n.input[1], n.input[1]], [target]))
                    nodes.append(onnx.helper.make_node("Add", [n.input[0], target], [name]))
                else:
                    nodes.append(onnx.helper.make_node("Constant", [], [target], value=numpy_helper.from_array(
                        np.array(wide, np.int64), target)))
                    nodes.append(onnx.helper.make_node("Expand", [n.input[0], target], [name]))
                n.input[0] = name
                changed.update(o for o in n.output if o)
        nodes.append(n)
    return _replace_nodes(m2.graph, nodes, changed)


def _scalar_split_keepdims0(n, values: dict):
    """The known scalar ``split`` of SplitToSequence ``n`` with ``keepdims=0``, as an int; None where ``n`` is none such.
    onnxruntime honours ``keepdims=0`` with a scalar ``split`` (the spec ignores ``keepdims`` wherever ``split`` is
    given, as onnxruntime does for a 1-D one)."""
    if (n.op_type != "SplitToSequence" or n.domain not in ("", "ai.onnx") or len(n.input) < 2 or not n.input[1]
            or not any(a.name == "keepdims" and a.i == 0 for a in n.attribute)):
        return None
    v = values.get(n.input[1])
    return int(v) if v is not None and v.ndim == 0 and v.dtype.kind in "iu" else None


def _squeeze_all_of_empty_axes(g2, values: dict) -> bool:
    """Make each Squeeze of the inference copy ``g2`` whose ``axes`` are known and empty (an attribute of no value up
    to opset 12, an input of no element from 13; ``values``: the known ones) one without ``axes``, which squeezes every
    dimension of length 1, as onnxruntime's kernel does with them; True when any was. The declared shapes of what
    follows are dropped (``_forget_declared_after``).

    Why: ONNX's inference reads empty ``axes`` as "squeeze nothing" and kept ``[1, 3, 1]``, while onnxruntime makes
    ``[3]``: what followed was sized for the wrong rank (plus a ``[3, 1]``: planned ``[1, 3, 1]``, 12 bytes, and
    onnxruntime writes ``[3, 3]``, 36)."""
    changed: set[str] = set()
    for n in g2.node:
        if n.op_type != "Squeeze" or n.domain not in ("", "ai.onnx") or not n.output or not n.output[0]:
            continue
        empty_attr = [k for k, a in enumerate(n.attribute) if a.name == "axes" and not a.ints]
        if empty_attr:
            del n.attribute[empty_attr[0]]
            changed.add(n.output[0])
        elif len(n.input) > 1 and n.input[1] and n.input[1] in values and values[n.input[1]].size == 0:
            del n.input[1:]
            changed.add(n.output[0])
    if changed:
        _forget_declared_after(g2, changed)
    return bool(changed)


def _negative_squeeze_axes_of(n):
    """The ``axes`` attribute of node ``n`` where it is a Squeeze or Unsqueeze of the default domain that names an
    axis from the end (a negative one) and makes a named output; None otherwise."""
    if n.op_type not in ("Squeeze", "Unsqueeze") or n.domain not in ("", "ai.onnx") or not n.input \
            or not n.input[0] or not n.output or not n.output[0]:
        return None
    axes = next((a for a in n.attribute if a.name == "axes"), None)
    return axes if axes is not None and any(a < 0 for a in axes.ints) else None


def _negative_squeeze_axes(onnx, m2, inferred) -> bool:
    """Make each Squeeze and Unsqueeze of the inference copy ``m2`` whose ``axes`` attribute (opsets 1-10, before the
    spec allowed negative axes) names an axis from the end name it from the start, counted as onnxruntime's kernels
    count it (a Squeeze's in its input's rank, an Unsqueeze's in its output's: the input's plus one per axis), once
    the input's rank is known (``inferred``); True when any was. The declared shapes of what follows are dropped
    (``_forget_declared_after``). An axis out of range is left as it is (``_check_reduce_axes`` refuses it), and so
    is a node computed from another such node not yet counted (``m2``'s nodes are in topological order): the rank
    ``inferred`` gives it is ONNX's, wrong, until that one is counted and inference reruns.

    Why: ONNX's inference of Squeeze-1 and Unsqueeze-1 passes over a negative axis and gives the input's shape, while
    onnxruntime (every version of both) squeezes or inserts it: an Unsqueeze of a ``[3, 4]`` by ``axes=[-1]`` was
    planned ``[3, 4]``, and an ``Add`` of it and a ``[1, 1, 4]`` 48 bytes, where onnxruntime makes ``[3, 4, 1]`` and
    writes ``[3, 4, 4]``, 192 (a Scan's output stacked on a negative axis at those opsets was refused so)."""
    if _default_opset(m2) >= 11 or not any(n.op_type in ("Squeeze", "Unsqueeze") for n in m2.graph.node):
        return False
    shapes = None
    changed: set[str] = set()
    pending: set[str] = set()   # (values computed from such a node, counted in this pass or not: ranks are ONNX's)
    for n in m2.graph.node:
        axes = _negative_squeeze_axes_of(n)
        if axes is None:
            if any(v in pending for v in n.input):
                pending.update(o for o in n.output if o)
            continue
        shapes = _shapes(m2.graph, inferred) if shapes is None else shapes
        dims = shapes.get(n.input[0], (0, None))[1]
        rank = len(dims) + (len(axes.ints) if n.op_type == "Unsqueeze" else 0) if isinstance(dims, tuple) else 0
        if n.input[0] in pending or not isinstance(dims, tuple) or not all(-rank <= a < rank for a in axes.ints):
            pending.update(o for o in n.output if o)
            continue
        counted = [a + rank if a < 0 else a for a in axes.ints]
        del axes.ints[:]
        axes.ints.extend(counted)
        changed.add(n.output[0])
        pending.update(o for o in n.output if o)   # (``inferred`` has its output's old shape until inference reruns)
    if changed:
        _forget_declared_after(m2.graph, changed)
    return bool(changed)


def _negative_squeeze_axes_ahead(onnx, m2) -> None:
    """``_negative_squeeze_axes`` of the inference copy ``m2`` before its first strict inference, on ranks from
    ONNX's lenient inference (rerun until no such node is left that it can count). Why: a node after such a Squeeze
    or Unsqueeze may fail ONNX's strict inference of the shape ONNX gives it (a Squeeze of the last axis of an
    ``Unsqueeze(x [n, 3], axes=[-1])``: "Dimension of input 1 must be 1 instead of 3"), and the model, which
    onnxruntime runs, was refused before any fold round could count the axes."""
    if _default_opset(m2) >= 11:
        return
    for _ in range(len(m2.graph.node)):
        if not any(_negative_squeeze_axes_of(n) is not None for n in m2.graph.node):
            return
        try:
            inferred = onnx.shape_inference.infer_shapes(m2, strict_mode=False).graph
        except Exception:  # noqa: BLE001 - what it cannot infer, the strict inference names
            return
        if not _negative_squeeze_axes(onnx, m2, inferred):
            return


def _initializer_or_constant_values(onnx, g2, wanted: set[str]) -> dict:
    """``{name: numpy value}`` of the initializers and Constant outputs of ``g2`` named in ``wanted`` (small ones)."""
    values = {t.name: r[0] for t in g2.initializer if t.name in wanted and math.prod(t.dims) <= MAX_FOLD_ELEMENTS
              for r in [_to_array(t)] if r is not None}
    values.update((n.output[0], r[0]) for n in g2.node
                  if n.op_type == "Constant" and n.output and n.output[0] in wanted and len(n.attribute) == 1
                  and n.attribute[0].name == "value" for r in [_to_array(n.attribute[0].t)] if r is not None)
    return values


def _check_split_keepdims(n, where: str, shapes: dict, values: dict) -> None:
    """Refuse a SplitToSequence with ``keepdims=0`` and a scalar ``split`` whose value is not known, naming the node:
    onnxruntime drops the axis of its pieces, or refuses to run it, as the value decides (``_squeezed_split_pieces``
    sizes a known one), while ONNX's inference keeps the axis; what follows would be sized for another rank."""
    if (n.op_type != "SplitToSequence" or n.domain not in ("", "ai.onnx") or len(n.input) < 2 or not n.input[1]
            or not any(a.name == "keepdims" and a.i == 0 for a in n.attribute) or n.input[1] in values):
        return
    if shapes.get(n.input[1], (0, None))[1] == ():
        raise GraphError(f"{where}: its scalar split {n.input[1]!r} with keepdims=0 is not a value the importer knows: "
                         "onnxruntime drops the axis of pieces of length 1 (the spec ignores keepdims where a split is "
                         "given) and refuses longer ones, so neither the rank nor the size of its pieces can be "
                         "planned; give keepdims=1 or a 1-D split")


def _squeezed_split_pieces(onnx, m2, inferred) -> bool:
    """Make each SplitToSequence of the inference copy ``m2`` with ``keepdims=0`` and a known scalar ``split`` that
    cuts its input into pieces of length 1 read no ``split`` (pieces of length 1, the axis dropped: what onnxruntime
    makes of it); True when any did. Refuse, naming the node, one whose pieces are longer: onnxruntime drops the axis
    of every piece by a reshape, which fails for them.

    Why: ONNX's inference ignores ``keepdims`` where ``split`` is given and keeps the axis (``[3, 1]`` pieces of a
    ``[3, 4]`` split by 1 on axis 1), onnxruntime's kernel makes ``[3]``: what follows was sized for the wrong rank
    (an ``Add`` of a ``SequenceAt`` piece and a ``[3, 1]`` was planned ``[3, 1]``, 12 bytes, and onnxruntime writes
    ``[3, 3]``, 36); a split of 2 was planned, and onnxruntime refuses to run it."""
    if not any(n.op_type == "SplitToSequence" and len(n.input) > 1 and n.input[1] for n in m2.graph.node):
        return False
    values = _known_values(onnx, m2)
    shapes = _static_shapes(inferred)
    changed: set[str] = set()
    for n in m2.graph.node:
        step = _scalar_split_keepdims0(n, values)
        x = shapes.get(n.input[0]) if step is not None else None
        if x is None:
            continue
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        if not -len(x) <= axis < len(x) or step <= 0:
            continue   # (left to the inference and the checks, which refuse them)
        length = x[axis + len(x) if axis < 0 else axis]
        if length > 1 and step != 1:
            raise GraphError(f"node {n.name or n.op_type!r} (SplitToSequence): its scalar split {n.input[1]!r} of "
                             f"{step} with keepdims=0 cuts axis {axis} of its input {n.input[0]!r} ({list(x)}) into "
                             "pieces longer than 1, whose axis onnxruntime drops (the spec ignores keepdims where a "
                             "split is given): onnxruntime refuses to run it; give keepdims=1")
        del n.input[1:]
        changed.update(o for o in n.output if o)
    if changed:
        _forget_declared_after(m2.graph, changed)
    return bool(changed)


def _replace_nodes(g2, nodes: list, changed: set[str]) -> bool:
    """Put ``nodes`` in place of the nodes of inference copy ``g2`` where a rewrite changed values (``changed``), and
    forget what was declared of those values and of every value computed from them. Returns whether it did."""
    if changed:
        del g2.node[:]
        g2.node.extend(nodes)
        _forget_declared_after(g2, changed)
    return bool(changed)


def _forget_declared_after(g2, changed: set[str]) -> None:
    """Drop, in the inference copy ``g2``, the declared shapes of ``changed`` values and of every value computed
    from them: a declaration made by ONNX's count (torch.onnx declares what ONNX's inference gives) would contradict
    the corrected shapes, and inference derives them again."""
    after = set(changed)
    for n in g2.node:
        if any(v in after for v in n.input):
            after.update(o for o in n.output if o)
    for vi in (*g2.value_info, *g2.output):
        if vi.name in after and vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")


def _initializer_values(onnx, g2) -> dict[str, Any]:
    """``{name: numpy value}`` of the initializers of ``g2`` small enough to fold (their data in the model)."""
    values: dict[str, Any] = {}
    for t in g2.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL and math.prod(t.dims) <= MAX_FOLD_ELEMENTS:
            r = _to_array(t)
            if r is not None:
                values[t.name] = r[0]
    return values


def _known_values(onnx, m2) -> dict[str, Any]:
    """``{name: numpy value}`` of what the folded ``m2`` knows: its small initializers and Constant outputs (the
    values folding computed stand as Constants in place of their nodes)."""
    values = _initializer_values(onnx, m2.graph)
    for n in m2.graph.node:
        if (n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and n.output[0]
                and len(n.attribute) == 1 and n.attribute[0].name == "value"):
            r = _to_array(n.attribute[0].t)
            if r is not None and r[0].size <= MAX_FOLD_ELEMENTS:
                values[n.output[0]] = r[0]
    return values


def _check_spec_shape(n, where: str, shapes: dict, values: dict, seqs: dict) -> None:
    """A static shape the model declares for an output of standard node ``n`` that the spec's rule for its op
    (``_spec_shapes``) contradicts is refused, naming the node and the value; ``seqs`` follows the sequences
    (``_track_sequence``) from node to node. ``shapes``: ``_shapes``'s, ``values``: ``_known_values``'s.

    Why: where ONNX's inference is silent (GroupNormalization-21, MaxUnpool with ``output_shape``, a Concat-4 of a
    negative axis, SequenceAt and ConcatFromSequence of a sequence of unlike tensors), a declared shape was taken
    unchecked: a ``[2, 3, 8, 1]`` declared for a GroupNormalization of a ``[2, 3, 8, 8]`` was planned 192 bytes,
    and onnxruntime writes 1,536. (Slice-1 is ``_check_slice1``'s.)"""
    if (n.domain not in ("", "ai.onnx") or (n.op_type == "Slice" and len(n.input) == 1)
            or n.op_type not in SPEC_SHAPE_OPS):   # (nothing to check or track: it was a tenth of a 20,000-node chain's import)
        return
    static, elems = {}, {}
    for v in (*n.input, *n.output):
        elem, dims = shapes.get(v, (0, None))
        if v and elem > 0 and dims is not None and all(isinstance(d, int) for d in dims):
            static[v], elems[v] = tuple(dims), elem
    for o, (shape, _elem) in _spec_shapes(n, static, elems, values, seqs).items():
        if o in static and static[o] != shape:
            raise GraphError(f"{where}: value {o!r} is declared {list(static[o])} in the model, but {n.op_type} makes "
                             f"it {list(shape)} from its inputs (as onnxruntime writes it): a plan of the declared "
                             "size would not hold it; correct or remove the declaration")
    _track_sequence(n, static, elems, values, seqs, as_run=True)


def _check_range(n, where: str, values: dict) -> None:
    """Refuse a Range (standard or ``com.microsoft``) of known scalar inputs that onnxruntime refuses to run: a
    ``delta`` of 0, a float count ``ceil((limit - start) / delta)`` that is not finite (an infinite or NaN limit)
    or past int64's range (``Range(0, 1e30, 1e-30)``). ``values``: ``_known_values``'s.

    Why: ONNX's inference makes each of them an empty tensor, which was planned (0 bytes), while onnxruntime
    stops the run ("delta in Range operator can not be zero", "the computed number of elements is not a finite
    value", "... exceeds the supported range")."""
    import numpy as np

    if n.op_type != "Range" or n.domain not in ("", "ai.onnx", ORT_DOMAIN) or len(n.input) < 2:
        return
    names = list(n.input[:3])
    args = [values.get(v) if v else None for v in names]
    if len(args) < 3 or args[2] is None and not names[2] and n.domain == ORT_DOMAIN:
        args[2:] = [np.ones(1, args[0].dtype if args[0] is not None else np.int64)]   # (onnxruntime's default)
    if any(a is None or a.size != 1 or a.dtype.kind not in "iuf" for a in args):
        return
    start, limit, delta = (a.reshape(-1)[0] for a in args)
    if delta == 0:
        raise GraphError(f"{where}: its delta {names[2]!r} is 0: onnxruntime refuses to run it (\"delta in Range "
                         "operator can not be zero\")")
    if args[0].dtype.kind == "f":
        with np.errstate(all="ignore"):
            count = np.ceil((np.float64(limit) - np.float64(start)) / np.float64(delta))
        if not np.isfinite(count) or count >= 2.0**63:
            what = "is not finite" if not np.isfinite(count) else f"({count:.4g}) exceeds int64's range"
            raise GraphError(f"{where}: its count of elements ceil(({float(limit)!r} - {float(start)!r}) / "
                             f"{float(delta)!r}) {what}: onnxruntime refuses to run it")


def _check_seq_position(n, where: str, values: dict, seqs: dict) -> None:
    """Refuse a SequenceInsert or SequenceErase whose known position lies outside its known sequence (an insert
    may name one past the end), naming the node and the position.

    Why: SequenceInsert at 5 into a sequence of 1 tensor was planned (its tensors all alike, the insert was taken
    as an append), and a later SequenceAt was blamed where tensors differed; onnxruntime refuses to run the insert
    itself ("Invalid sequence index (5) specified for sequence of size (1)")."""
    k = 2 if n.op_type == "SequenceInsert" else 1
    if len(n.input) <= k or not n.input[k] or not n.input[0]:
        return
    held, known = seqs.get(n.input[0]), values.get(n.input[k])
    if held is None or known is None or known.dtype.kind not in "iu" or known.size != 1:
        return
    extra = 1 if n.op_type == "SequenceInsert" else 0
    if _position(known, len(held), extra) is None:
        raise GraphError(f"{where}: its position {n.input[k]!r} is {int(known.reshape(-1)[0])}, outside sequence "
                         f"{n.input[0]!r} of {len(held)} tensors (positions {-len(held)} to {len(held) - 1 + extra}): "
                         "onnxruntime refuses to run it (\"Invalid sequence index\")")


def _check_taken(n, where: str, shapes: dict, values: dict, seqs: dict, unknown_why: Callable[[str], str]) -> None:
    """Refuse a SequenceAt whose known position lies outside its known sequence, and a SequenceAt, Compress, NonZero
    or Unique whose output is left unsized, naming the node, the input that decides its size and why that input is not known
    (``unknown_why(output)``: computed at run time, held in external data not read, or beyond what is evaluated).

    Why: a SequenceAt at 7 of a 4-tensor sequence of like tensors was planned (onnxruntime refuses to run it:
    "Invalid sequence index"), one of unlike tensors was refused as a dimension "ONNX's shape inference could not
    derive"; a run-time position or condition got the general run-time note, naming neither input."""
    op = n.op_type
    if n.domain in ("", "ai.onnx") and op in ("NonZero", "Unique") and n.input and n.input[0]:
        what, counted = n.input[0], "non-zero entry" if op == "NonZero" else "distinct value (or slice)"
        for out in (o for o in n.output if o):
            dims = shapes.get(out, (0, None))[1]
            if dims is not None and all(isinstance(d, int) for d in dims):
                continue
            known, source = values.get(what), unknown_why(out)
            if known is None and source.startswith("is computed at run time"):
                return   # (the general message says so, as for every data-dependent size)
            why = (f"that input {source}" if known is None
                   else f"onnxruntime counts the scalar {what!r} otherwise than ONNX's inference ([1, n], not [0, n])"
                   if op == "NonZero" else f"{what!r} holds NaN, which onnxruntime's ordering merges with other values "
                   "(its count is not numpy's)")
            raise GraphError(f"{where}: value {out!r} has no size: {op} makes one entry per {counted} of its "
                             f"input {what!r}, and {why}")
        return
    if n.domain in ("", "ai.onnx") and op in ("SequenceInsert", "SequenceErase"):
        _check_seq_position(n, where, values, seqs)
        return
    if n.domain not in ("", "ai.onnx") or op not in ("SequenceAt", "Compress") or len(n.input) < 2:
        return
    out, what = (n.output[0] if n.output else ""), n.input[1]
    if not out or not what:
        return
    known = values.get(what)
    if op == "SequenceAt":
        held = seqs.get(n.input[0])
        if held is not None and known is not None and known.dtype.kind in "iu" and known.size == 1 \
                and _position(known, len(held), 0) is None:
            raise GraphError(f"{where}: its position {what!r} is {int(known.reshape(-1)[0])}, outside sequence "
                             f"{n.input[0]!r} of {len(held)} tensors (positions {-len(held)} to {len(held) - 1}): "
                             "onnxruntime refuses to run it (\"Invalid sequence index\")")
    dims = shapes.get(out, (0, None))[1]
    if known is not None or op != "Compress" and dims is not None and all(isinstance(d, int) for d in dims):
        return   # (sized, or unsized for another reason than this input: the general message)
    # (a Compress's size is its condition's count of true entries alone: a size the model declares for it, which
    # onnx's inference merely repeats, is a traced example's, and with the condition unread it is not checked)
    source = unknown_why(out)
    if op == "Compress":
        data = shapes.get(n.input[0], (0, None))[1]
        if data is None or not all(isinstance(d, int) for d in data):
            return   # (the data's own size is unknown: the general message names why)
        raise GraphError(f"{where}: value {out!r} has no size: Compress keeps one slice of {n.input[0]!r} per true "
                         f"entry of its condition {what!r}, and the condition {source}")
    held = seqs.get(n.input[0])
    if held is None or len({s for s, _ in held}) < 2:
        return   # (tensors not all known, or all alike: not the position's doing)
    shapes_held = f" ({', '.join(str(list(s)) for s, _ in held)})" if len(held) <= 8 else ""
    kind = "tensors of unlike shapes"
    raise GraphError(f"{where}: value {out!r} has no size: sequence {n.input[0]!r} holds {kind}{shapes_held}, "
                     f"so the size of the one SequenceAt takes follows its position {what!r}, and the position "
                     f"{source}")


def _fold_round(onnx, m2, inferred, seq_bytes: dict | None = None) -> bool:
    """Replace, in ``m2``, every foldable node by a Constant of its value; True when any was replaced.
    ``seq_bytes`` (cleared first) receives the bytes of each tensor of every sequence whose tensors are known."""
    import numpy as np
    from onnx import numpy_helper

    g2 = m2.graph
    shapes = _static_shapes(inferred)
    elems = {vi.name: vi.type.tensor_type.elem_type for vi in list(inferred.input) + list(inferred.value_info)
             + list(inferred.output) if vi.type.HasField("tensor_type")}
    elems.update((t.name, t.data_type) for t in g2.initializer)
    values = _initializer_values(onnx, g2)
    opsets = {o.domain or "": o.version for o in m2.opset_import}
    opsets.setdefault("", opsets.get("ai.onnx", 1))
    changed = False
    nodes = []
    wide: dict[str, Any] = {}   # float16 value -> the float32 value onnxruntime holds unrounded (_float16_wide)
    narrow: set[str] = set()   # those of ``wide`` a model's own Cast to float16 made (_float16_wide)
    inexact: set[str] = set()   # float values an inexact op computed (_inexact_rounding)
    seqs: dict[str, list] = {}   # sequence value -> [(shape, elem)] of the tensors it holds, in order
    present: dict[str, bool] = {}   # optional value -> whether it holds one (made by Optional, passed on by Identity)
    filled: dict[str, tuple[tuple[int, ...], int]] = {}   # shapes the spec gave where ONNX's inference gave none
    taken = _value_names(g2) if any(n.op_type == "Range" for n in g2.node) else set()   # (for _exact_range)
    for n in g2.node:
        nodes.append(n)
        if n.domain == "ai.onnx.ml":   # sized by the spec's rule where ONNX's inference gives no shape
            for o, found in _ml_shapes(n, shapes, elems).items():
                if o not in shapes:
                    filled[o] = found
                    shapes[o], elems[o] = found
            continue
        if n.domain not in ("", "ai.onnx") or any(a.type in (5, 10) for a in n.attribute) or _external_attribute(onnx, n):
            continue   # (a tensor attribute whose data was not read: evaluating it would read it from the CWD)
        if wide and any(v in wide for v in n.input):   # (a float value onnxruntime holds unrounded)
            _refuse_wide_sizes(onnx, n, shapes, elems, values, wide, opsets[""])
        if n.op_type == "Slice" and _ort_slice_ends(n, values, opsets[""]) is not None:
            for o in n.output:   # (ends known only now: the next round gives it onnxruntime's, before it runs)
                shapes.pop(o, None)
            changed = True
            continue
        exact = _exact_range(onnx, n, values, g2, taken) if n.op_type == "Range" else None
        if exact is not None:   # (ONNX's inference would size it otherwise than onnxruntime)
            nodes[-1:] = exact[0]
            shapes[n.output[0]], elems[n.output[0]] = (exact[1],), exact[3]
            if exact[2] is not None:
                values[n.output[0]] = exact[2]
            changed = True
            continue
        own = None   # the outputs' shapes from this node's inputs alone (and their values, where folded)
        evaluated = n.op_type not in ("Constant", "Shape", "Size") and all(not v or v in values for v in n.input)
        if evaluated or any(o and o not in shapes for o in n.output):  # sized by the values folded this round
            own = _infer_node(onnx, n, shapes, elems, values, opsets[""])
            for o, found in _spec_shapes(n, shapes, elems, values, seqs, opsets[""]).items():
                if o not in own:   # where ONNX's inference gives none, the spec's rule for this op
                    own[o] = found
                    if o not in shapes:
                        filled[o] = found
            for o, (shape, elem) in own.items():
                if o in shapes and shapes[o] != shape:   # a declared shape the values contradict
                    raise GraphError(f"value {o!r} has shape {shapes[o]} in the model, but its {n.op_type} "
                                     f"node makes it {shape} from its inputs")
                shapes[o], elems[o] = shape, elem
        _track_sequence(n, shapes, elems, values, seqs)
        if n.op_type == "Optional" and n.output and n.output[0]:
            present[n.output[0]] = bool(n.input and n.input[0])
        elif n.op_type == "Identity" and n.input and n.input[0] in present and n.output and n.output[0] \
                and n.doc_string != EITHER_OPTIONAL:   # (a fed If's selection: known at run time alone)
            present[n.output[0]] = present[n.input[0]]
        dropout = _inference_dropout(n, values, opsets)
        if (n.op_type in _NO_FOLD or n.doc_string == SHAPE_ONLY) and not dropout:
            continue
        if evaluated and not all(not o or o in own for o in n.output):
            continue  # run only once sized from its inputs: a declared [1, 1] must not run a folded [10**6] * 2
        # only values inference has sized, small: a ConstantOfShape of a folded [10**6, 10**6] is never run
        if not any(n.output) or not all(not o or o in shapes and math.prod(shapes[o]) <= MAX_FOLD_ELEMENTS
                                        for o in n.output):
            continue
        result = None
        branch = ""
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            result = _to_array(n.attribute[0].t)  # cheap, and every round meets them again
            doc = n.doc_string
            if doc.startswith(_INEXACT_MARK) and n.output and n.output[0]:
                inexact.add(n.output[0])
                doc = doc[len(_INEXACT_MARK):]
            if doc.startswith(_WIDE_MARK) and n.output and n.output[0]:
                kind, _, data = doc[len(_WIDE_MARK):].partition(":")
                try:   # (only ever a refusal's evidence: a model's own doc_string so spelt can make no size)
                    if result is not None and kind.removeprefix("cast") in ("<f4", "<f8"):
                        wide[n.output[0]] = np.frombuffer(bytes.fromhex(data), kind.removeprefix("cast")).reshape(
                            result[0].shape)
                        if kind.startswith("cast"):
                            narrow.add(n.output[0])
                except ValueError:
                    pass
        elif dropout:
            if n.input[0] in values:   # (the data itself, and a mask that keeps all of it)
                data = values[n.input[0]]   # (a mask of bool from opset 10, of the data's type before)
                result = [data, np.ones(data.shape, bool if opsets[""] >= 10 else data.dtype)][:len(n.output)]
        elif n.op_type in ("Shape", "Size"):
            if n.input and n.input[0] in shapes:
                result = _shape_of(n, shapes[n.input[0]])
        elif n.op_type == "OptionalHasElement":
            # whether the optional holds a value: an Optional of an input (or none), passed on by Identity, or a
            # tensor (opset 18 on); nothing given, none. Why: torch's ``if x is None`` branches on it, and the If was
            # planned both branches, or refused where they make two shapes, though which runs is known at import
            v = n.input[0] if n.input else ""
            held = present.get(v, True if elems.get(v) else None) if v else False
            if held is not None:
                result = [np.array(held)]
        elif n.op_type == "SequenceLength" and n.domain in ("", "ai.onnx"):
            if n.input and n.input[0] in seqs:   # (a sequence whose tensors are followed: how many it holds)
                result = [np.array(len(seqs[n.input[0]]), dtype=np.int64)]
        elif n.op_type == "Slice" and n.domain in ("", "ai.onnx") and opsets[""] >= 10 and len(n.input) >= 3:
            if all(not v or v in values for v in n.input):   # (not onnx's evaluator: numpy's clamping, ``_ort_slice``)
                result, branch = _ort_slice([values[v] if v else None for v in n.input]), "slice"
        elif n.op_type == "Unique" and n.domain in ("", "ai.onnx"):
            if n.input and n.input[0] in values:   # (not onnx's evaluator: its sorted=0 is sorted, ``_ort_unique``)
                result, branch = _ort_unique(n, values[n.input[0]]), "unique"
        elif n.op_type == "Pow" and n.domain in ("", "ai.onnx") and len(n.input) == 2 and \
                getattr(values.get(n.input[0]), "dtype", np.dtype(np.float32)).kind in "iu":
            if all(v in values for v in n.input):   # (not onnx's evaluator: it raises integers exactly)
                result, branch = _ort_integer_pow(values[n.input[0]], values[n.input[1]]), "pow"
        elif n.op_type == "Mean" and n.domain in ("", "ai.onnx") and n.input:
            if all(v in values for v in n.input):   # (not onnx's evaluator: it adds in place, never broadcasting up)
                result, branch = _broadcast_mean([values[v] for v in n.input]), "evaluate"
        elif n.op_type in _LOG_REDUCTIONS and n.domain in ("", "ai.onnx") and n.input and \
                getattr(values.get(n.input[0]), "dtype", np.dtype(np.float32)).kind in "iu":
            if all(not v or v in values for v in n.input):   # (not onnx's evaluator: it takes no integers)
                result = _integer_log_reduction(n, [values[v] if v else None for v in n.input], opsets)
        elif all(not v or v in values for v in n.input):
            result, branch = _evaluate(n, [values[v] if v else None for v in n.input], opsets), "evaluate"
            if result and (n.op_type in ("Cast", "CastLike") and _unsure_cast(values[n.input[0]], result[0])
                           or _unsure_reduction(n, values[n.input[0]] if n.input else None)
                           or _nan_decided(n, [values[v] if v else None for v in n.input])):
                result = None   # (its value is onnxruntime's build's own: what it sizes is refused as unknown)
        if result and branch and _inexact_rounding(n, [values.get(v) if v else None for v in n.input], result,
                                                   inexact):
            result = None   # (a Slice or Unique of an inexact value too: what it sizes is refused as unknown)
        if result is None or len(result) != len(n.output):
            continue
        if any(not isinstance(r, np.ndarray) or r.size > MAX_FOLD_ELEMENTS for r in result):
            continue
        if evaluated and any(o and r.shape != own[o][0] for o, r in zip(n.output, result)):
            continue  # the evaluator disagrees with ONNX's inference: its value would size what follows
        _float16_wide(n, result, branch, values, wide, opsets, narrow)   # (onnxruntime computes float16 in float32)
        for o, r in zip(n.output, result):
            if o:
                values[o] = r
                shapes[o] = r.shape
        if n.op_type != "Constant":
            nodes.pop()  # the node's values, one Constant each, in its place
            if opsets[""] < 9 and any(r.dtype.kind not in "f" for o, r in zip(n.output, result) if o):
                # (a Constant holds floats only before opset 9, and onnx's inference refused the int64 one made of a
                # folded Shape: "output has unsupported type tensor(int64)"; an initializer holds any type)
                for o, r in zip(n.output, result):
                    if o:   # (declared too: inference types no initializer, and the value's size is read from it)
                        g2.initializer.append(numpy_helper.from_array(r, o))
                        g2.value_info.append(onnx.helper.make_tensor_value_info(
                            o, onnx.helper.np_dtype_to_tensor_dtype(r.dtype), list(r.shape)))
            else:
                nodes.extend(onnx.helper.make_node("Constant", [], [o], value=numpy_helper.from_array(r, o),
                                                   doc_string=(_INEXACT_MARK if o in inexact else "") + (
                                                       f"{_WIDE_MARK}{'cast' if o in narrow else ''}{wide[o].dtype.str}:"
                                                       f"{wide[o].tobytes().hex()}" if o in wide else "") or None)
                             for o, r in zip(n.output, result) if o)
            changed = True
    if seq_bytes is not None:
        seq_bytes.clear()
        seq_bytes.update((v, [_nbytes(_BITS[e], shape) for shape, e in held]) for v, held in seqs.items()
                         if all(e in _BITS for _, e in held))
    if changed:
        del g2.node[:]
        g2.node.extend(nodes)
    if filled:   # declared to the next inference, which sizes what follows from them
        declared = {vi.name: vi for vi in list(g2.output) + list(g2.value_info)}
        for o, (shape, elem) in filled.items():
            tp = onnx.helper.make_tensor_type_proto(elem, shape)
            if o in declared:
                declared[o].type.CopyFrom(tp)
            else:
                g2.value_info.append(onnx.helper.make_value_info(o, tp))
    return changed or bool(filled)


#: standard ops whose first output has the shape and dtype of their first input, in every opset: where ONNX
#: gives it no shape (GroupNormalization-21, a context-dependent function without an inference function; the
#: opset-1..5 versions of the activations, which had none), the input's is the output's, as the spec says
SAME_SHAPE_OPS = frozenset({
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BatchNormalization", "BitwiseNot", "Ceil", "Celu",
    "Clip", "Cos", "Cosh", "CumSum", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "GroupNormalization",
    "Hardmax", "HardSigmoid", "HardSwish", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log",
    "LogSoftmax", "LpNormalization", "LRN", "MeanVarianceNormalization", "Mish", "Neg", "Not", "PRelu",
    "Reciprocal", "Relu", "ReverseSequence", "RMSNormalization", "Round", "Scatter", "ScatterElements", "ScatterND",
    "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh",
    "ThresholdedRelu", "Trilu"})
#: the ops ``_check_spec_shape`` has anything to do for: those ``_spec_shapes`` sizes, and the sequence ops
#: ``_track_sequence`` follows (SequenceAt and ConcatFromSequence read what they hold)
SPEC_SHAPE_OPS = SAME_SHAPE_OPS | {"Slice", "Reshape", "Concat", "MaxUnpool", "Pad", "Range", "Compress", "NonZero", "Unique", "SequenceAt", "ConcatFromSequence",
                                   "GatherND", "Attention",
                                   "SequenceEmpty", "SequenceConstruct", "Identity", "Optional", "OptionalGetElement",
                                   "SequenceInsert", "SequenceErase", "SplitToSequence"}


def _spec_shapes(n, shapes: dict, elems: dict, values: dict, seqs: dict, opset: int | None = None) -> dict:
    """``{output: (static shape, elem type)}`` of standard node ``n`` by the spec's own rule, for the ops whose
    outputs ONNX's inference leaves unsized although what sizes them is known: ``SAME_SHAPE_OPS``; MaxUnpool
    with an ``output_shape`` input of known value (its inference checks that input and returns); a
    float16/bfloat16 or int16 Range of known values (onnx computes lengths for the other types only); a Slice-1
    (``_slice1_shape``: ONNX's inference gives up on negative axes and clamped bounds); a Reshape-1
    (``_reshape1_shape``: ONNX has no inference for it); SequenceAt and
    ConcatFromSequence over a sequence whose tensors are known (``seqs``: ONNX merges its elements into one
    shape, so a dimension they differ in, and the count of them, is lost); a Dropout's mask (the data's shape, of
    the data's type before opset 10 and bool from it: ONNX's inference of Dropout-7..9 leaves it untyped, and a node
    reading it was refused unsized; ``opset``, the model's default one, tells which; None: bool). Empty when nothing
    applies."""
    import numpy as np

    op, ins = n.op_type, list(n.input)
    first = ins[0] if ins and ins[0] in shapes and elems.get(ins[0]) else None
    out = n.output[0] if n.output else ""
    if not out:
        return {}

    def value(k: int):
        v = values.get(ins[k]) if k < len(ins) and ins[k] else None
        return None if v is None or v.dtype.kind not in "iu" else v

    if op == "PRelu" and first and len(ins) == 2 and ins[1] in shapes and _broadcast(
            [shapes[first], shapes[ins[1]]]) != shapes[first]:
        return {}   # (a slope that grows X, from opset 7 on: _prelu_broadcasts sizes it as onnxruntime does)
    if op == "BatchNormalization" and first and len(shapes[first]) >= 2 and len(n.output) > 1 \
            and all(n.output[1:]) and next((a.i for a in n.attribute if a.name == "spatial"), 1) == 1:
        # Y as its input; every other output (running or saved mean and variance, opsets 7-13's five outputs
        # included, which ONNX's inference leaves unsized) one value per channel, of the mean's type. (Not where
        # an output in between is omitted: onnxruntime 1.32 exits the process running such a node.)
        stats = elems.get(ins[3]) if len(ins) > 3 and ins[3] else None
        found = {out: (shapes[first], elems[first])}
        found.update((o, ((shapes[first][1],), stats or elems[first])) for o in n.output[1:5] if o)
        return found
    if op == "Dropout" and first and len(n.output) > 1 and n.output[1]:
        mask = elems[first] if opset is not None and opset < 10 else 9   # (T before opset 10; T1/T2, bool, from it)
        return {out: (shapes[first], elems[first]), n.output[1]: (shapes[first], mask)}
    if op in SAME_SHAPE_OPS and first:
        return {out: (shapes[first], elems[first])}
    if op == "Slice" and first and len(ins) == 1:
        return _slice1_shape(n, out, shapes[first], elems[first])
    if op == "Reshape" and first and len(ins) == 1:
        return _reshape1_shape(n, out, shapes[first], elems[first])
    if op == "Concat" and ins and all(v in shapes and elems.get(v) for v in ins):
        return _concat_shape(n, out, [shapes[v] for v in ins], elems[ins[0]])
    if op == "MaxUnpool" and first:
        target = value(2)
        if target is not None and target.ndim == 1 and len(target) == len(shapes[first]) and (target >= 0).all():
            return {out: (tuple(int(d) for d in target), elems[first])}
    if op == "Range" and (len(ins) != 3 or any(v in values and np.asarray(values[v]).size != 1 for v in ins)):
        return {}   # (a start, limit or delta of other than one element: onnxruntime refuses it, "should be scalar
        #            like tensor"; the rules below took its first element, or failed in numpy broadcasting)
    if op == "Range" and len(ins) == 3 and all(v in values for v in ins) and elems.get(ins[0]) in (10, 16):
        # Range-27's function body: the length in float32 arithmetic, max(ceil((limit - start) / delta), 0)
        start, limit, delta = (np.float32(np.asarray(values[v]).astype(np.float32).reshape(-1)[0]) for v in ins)
        with np.errstate(all="ignore"):
            count = np.ceil((limit - start) / delta)
        if np.isfinite(count):
            return {out: ((max(int(count), 0),), elems[ins[0]])}
    if op == "Range" and len(ins) == 3 and elems.get(ins[0]) == 5 and all(value(k) is not None for k in range(3)):
        # int16: onnxruntime's kernel, ceil((limit - start) / delta) of exact (promoted) integers; onnx's inference
        # computes no length for this type (an int16 Range of constants was refused as unsized)
        start, limit, delta = (int(np.asarray(value(k)).reshape(-1)[0]) for k in range(3))
        if delta:
            return {out: ((max(-((start - limit) // delta), 0),), 5)}
    if op == "GatherND" and first and len(ins) > 1 and ins[1] in shapes:
        # ``indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:]``: ONNX's inference sets no shape where
        # that is a scalar (indices ``[2]`` into a ``[2, 3]``), and the output was refused as of no known rank
        data, idx = shapes[first], shapes[ins[1]]
        b = next((a.i for a in n.attribute if a.name == "batch_dims"), 0)
        if idx and 0 <= b < len(idx) and b + idx[-1] <= len(data):
            return {out: (tuple(idx[:-1]) + tuple(data[b + idx[-1]:]), elems[first])}
    if op == "Attention" and len(ins) > 2 and len(n.output) > 2:
        return _attention_presents(n, shapes, elems)
    if op == "Compress" and first and len(ins) > 1 and ins[1] in values:
        return _compress_shape(n, out, shapes[first], elems[first], values[ins[1]])
    if op in ("NonZero", "Unique") and first and ins[0] in values:
        return _nonzero_unique(n, shapes[first], elems[first], values[ins[0]])
    if op in ("NonZero", "Unique") and first and 0 in shapes[first]:
        # an empty input holds no value, so its count (0) is known whatever feeds it: onnxruntime runs it (NonZero
        # ``[rank, 0]``, Unique's four outputs of no entry), and it was refused as depending on run-time values
        return _nonzero_unique(n, shapes[first], elems[first], np.zeros(shapes[first], np.float32))
    if op == "Pad" and first and shapes[first]:
        amounts = _pad_amounts(n, len(shapes[first]), values, 11 if len(ins) > 1 else 1)
        if amounts is not None and all(d + b + a >= 0 for d, (b, a) in zip(shapes[first], amounts)):
            # each axis ``dim + before + after`` where ONNX's inference gives up (Pad-18 of empty ``pads`` and
            # ``axes``: onnxruntime returns the input's shape; it was refused as "could not derive")
            return {out: (tuple(d + b + a for d, (b, a) in zip(shapes[first], amounts)), elems[first])}
    held = seqs.get(ins[0]) if ins else None
    if held is None:
        return {}
    if op == "SequenceAt":
        at = _position(value(1), len(held), 0)
        if at is not None:
            return {out: held[at]}
    if op == "ConcatFromSequence" and held and len({e for _, e in held}) == 1:
        attrs = {a.name: a.i for a in n.attribute}
        shape = _ort_concat([s for s, _ in held], attrs.get("axis", 0), attrs.get("new_axis", 0))
        if shape is not None:
            return {out: (shape, held[0][1])}
        _refuse_unlike_concat(n, [s for s, _ in held], attrs.get("axis", 0), attrs.get("new_axis", 0))
    return {}


def _attention_presents(n, shapes: dict, elems: dict) -> dict:
    """``{present_key / present_value: (shape, elem)}`` of an Attention (opset 23 on) ``n``: its K and V as ``[batch,
    kv_heads, kv_sequence, head_size]`` (a 3-D ``[batch, kv_sequence, kv_heads * head_size]`` one split by
    ``kv_num_heads``), after its past cache's sequence where it has one (``past_key``/``past_value``: inputs 4 and 5,
    ``[batch, kv_heads, past_sequence, head_size]``), as onnxruntime writes them. ONNX's inference sizes the presents
    only from a past, and not where K holds no keys (round 66: ``K`` ``[2, 2, 0, 4]`` after a ``past_key`` of 3, which
    onnxruntime runs); a model returning them so was refused as of no known rank."""
    kv = next((a.i for a in n.attribute if a.name == "kv_num_heads"), 0)
    found = {}
    for k in (1, 2):
        o, s = n.output[k], shapes.get(n.input[k])
        past = n.input[k + 3] if len(n.input) > k + 3 else ""
        p = shapes.get(past) if past else ()
        if not o or s is None or not elems.get(n.input[k]) or p is None or (past and len(p) != 4):
            continue
        if len(s) == 4:
            shape = tuple(s)
        elif len(s) == 3 and kv > 0 and s[2] % kv == 0:
            shape = (s[0], kv, s[1], s[2] // kv)
        else:
            continue
        if past and not all(isinstance(d, int) for d in (*shape, *p)):
            continue
        if past:
            shape = shape[:2] + (p[2] + shape[2],) + shape[3:]
        found[o] = (shape, elems[n.input[k]])
    return found


def _reshape1_shape(n, out: str, dims: tuple[int, ...], elem: int) -> dict:
    """``{out: (shape, elem)}`` of a Reshape-1 (opsets 1-4: the target is the ``shape`` attribute) of an input of
    ``dims``, as onnxruntime's Reshape-1 kernel makes it: a 0 copies the input's dimension there, one -1 takes what is
    left; empty where onnxruntime refuses it (another count of elements, two -1s, a 0 past the input's rank, another
    negative entry), which then stays unsized. ONNX has no inference for Reshape-1, and the model (which onnxruntime
    runs) was refused ("could not find its rank")."""
    target = next((list(a.ints) for a in n.attribute if a.name == "shape"), None)
    if target is None or sum(d == -1 for d in target) > 1:
        return {}
    shape = []
    for i, d in enumerate(target):
        if d == 0:
            if i >= len(dims):
                return {}
            d = dims[i]
        elif d < -1:
            return {}
        shape.append(d)
    total, known = math.prod(dims), math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or total % known:
            return {}
        shape[shape.index(-1)] = total // known
    return {out: (tuple(shape), elem)} if math.prod(shape) == total else {}


def _ort_concat(shapes: list[tuple[int, ...]], axis: int, new_axis: int = 0) -> tuple[int, ...] | None:
    """The shape onnxruntime's Concat or ConcatFromSequence (one kernel base) makes of tensors of ``shapes`` (None
    where it refuses them).

    onnxruntime holds every tensor holding elements to the first such one (the first tensor where none holds any):
    alike off ``axis``, or alike whole with ``new_axis`` (stacked); an empty tensor is skipped, whatever its other
    dimensions. The output is that tensor's shape, ``axis`` the sum of every tensor's (empty ones too), or with a new
    axis of the count inserted. Why: a sequence of [1, 0] and [1, 1] (a SplitToSequence with a piece of 0) was
    refused as one "onnxruntime refuses to concatenate", where onnxruntime runs it and writes [2, 1] along axis 0."""
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes) or not (-rank - 1 <= axis <= rank if new_axis else -rank <= axis < rank):
        return None
    axis += (rank + 1 if new_axis else rank) if axis < 0 else 0
    ref = next((s for s in shapes if math.prod(s)), shapes[0])
    for s in shapes:
        if math.prod(s) and any(d != r for k, (d, r) in enumerate(zip(s, ref)) if new_axis or k != axis):
            return None
    if new_axis:
        return ref[:axis] + (len(shapes),) + ref[axis:]
    return ref[:axis] + (sum(s[axis] for s in shapes),) + ref[axis + 1:]


def _refuse_unlike_concat(n, shapes: list[tuple[int, ...]], axis: int, new_axis: int) -> None:
    """GraphError naming a ConcatFromSequence whose sequence's known tensors cannot be joined at ``axis`` (shapes
    that differ off it, or at all with ``new_axis``; ranks that differ; an axis out of range), as onnxruntime refuses
    to run it. Why: the value was left unsized and refused as a dimension "ONNX's inference could not derive",
    which blamed onnx's inference for a model no runtime runs (``SplitToSequence`` of 5 by 2, then concatenated on
    the other axis)."""
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        why = "of different ranks"
    elif not (-rank - 1 <= axis <= rank if new_axis else -rank <= axis < rank):
        why = f"of rank {rank}, out of range of axis {axis}"
    else:
        why = "that differ" + ("" if new_axis else f" off axis {axis}")
    raise GraphError(f"node {n.name or n.op_type!r} (ConcatFromSequence): its sequence holds tensors of shapes "
                     f"{[list(s) for s in shapes]}, {why} (new_axis={new_axis}): onnxruntime refuses to concatenate "
                     "them")


def _concat_shape(n, out: str, shapes: list[tuple[int, ...]], elem: int) -> dict:
    """``{out: (shape, elem)}`` of a Concat of inputs of ``shapes``, a negative ``axis`` counted from the end, as
    onnxruntime runs every version of it. ONNX's inference of Concat-4 (opsets 4-10) gives up on a negative axis
    (allowed from Concat-11), which torch.onnx writes at those opsets too (``torch.roll``, ``unfold``, ``split``
    then ``cat`` on dim -1): every value after it was refused as unknown. Empty where the inputs do not agree
    off the axis or the axis is out of range (onnxruntime refuses those). An empty input's dimensions off the axis
    are not held to the rest, as onnxruntime's kernel skips it (``_ort_concat``; round 79: ``[2, 0]`` and ``[3, 4]``
    along axis -1 were refused, where onnxruntime writes [3, 4])."""
    axis = next((a.i for a in n.attribute if a.name == "axis"), None)
    made = _ort_concat(shapes, axis) if axis is not None and shapes else None
    return {out: (made, elem)} if made is not None else {}


def _position(v, length: int, extra: int) -> int | None:
    """The place in a sequence of ``length`` tensors that the integer position value ``v`` names (``extra``: 1
    where one past the end is allowed, as SequenceInsert allows), counted from 0, or None where ``v`` is unknown,
    not one number, or outside. Why: a position of shape ``[1]``, which onnxruntime takes as the number it holds,
    was read by ``int()`` of a 1-d array, which numpy refuses (a TypeError out of the import)."""
    if v is None or v.size != 1:
        return None
    k = int(v.reshape(-1)[0])
    return k + (length if k < 0 else 0) if -length <= k < length + extra else None


def _nonzero_unique(n, shape: tuple[int, ...], elem: int, value) -> dict:
    """``{output: (shape, elem)}`` of a NonZero or Unique of the known ``value`` (of ``shape``), as onnxruntime makes
    them: NonZero ``[rank, count of non-zero entries]`` int64; Unique's ``Y`` of one entry (or, along ``axis``, one
    slice) per distinct value, ``indices`` and ``counts`` as many, ``inverse_indices`` one per entry (per slice).
    Empty where onnxruntime's count is not numpy's: a scalar NonZero (onnxruntime makes it ``[1, n]``, ONNX's
    inference ``[0, n]``), a Unique of a NaN (onnxruntime's ordering merges NaNs with other values).

    Why: both were taken as data-dependent whatever their input, so one of a constant (an initializer, a folded
    ``Shape``) was refused as depending on "values computed at run time from what the graph inputs hold", which
    none of it does; onnxruntime writes the same size on every run."""
    import numpy as np

    a = np.asarray(value)
    if a.shape != tuple(shape):
        return {}
    outs = list(n.output)
    if n.op_type == "NonZero":
        return {outs[0]: ((a.ndim, int(np.count_nonzero(a))), 7)} if a.ndim and outs[0] else {}
    if a.dtype.kind == "f" and np.isnan(a).any() or a.dtype.kind in "OSUV":
        return {}
    axis = next((at.i for at in n.attribute if at.name == "axis"), None)
    if axis is None:
        distinct, per = len(set(a.reshape(-1).tolist())), a.size
        y = (distinct,)
    else:
        if not -a.ndim <= axis < a.ndim:
            return {}
        axis += a.ndim if axis < 0 else 0
        # (the slice's length spelled out: ``-1`` cannot be inferred where ``a`` is empty, a ValueError out of import)
        slices = np.moveaxis(a, axis, 0).reshape(a.shape[axis], a.size // a.shape[axis] if a.shape[axis] else 0)
        distinct, per = len({tuple(row) for row in slices.tolist()}), a.shape[axis]
        y = a.shape[:axis] + (distinct,) + a.shape[axis + 1:]
    found = [(y, elem), ((distinct,), 7), ((per,), 7), ((distinct,), 7)]
    return {o: f for o, f in zip(outs, found) if o}


def _compress_shape(n, out: str, shape: tuple[int, ...], elem: int, condition) -> dict:
    """``{out: (shape, elem)}`` of a Compress of a ``shape`` input by the known ``condition``, as onnxruntime makes
    it: along ``axis``, or over the flattened input without one, it keeps a slice for each true entry among the
    condition's first ``shape[axis]`` (it reads the condition flattened, and no further than the input goes).
    Empty where the axis is outside the input's rank (left to the checks that refuse it).

    Why: Compress was taken as data-dependent whatever its condition, so one of a constant mask (an initializer
    or a Constant ``[True, False, True, True]``) was refused as depending on "values computed at run time from
    what the graph inputs hold", which none of it does; onnxruntime writes the same size on every run."""
    import numpy as np

    axis = next((a.i for a in n.attribute if a.name == "axis"), None)
    keep = np.asarray(condition).reshape(-1).astype(bool)
    if axis is None:
        return {out: ((int(np.count_nonzero(keep[:math.prod(shape)])),), elem)}
    if not -len(shape) <= axis < len(shape):
        return {}
    axis += len(shape) if axis < 0 else 0
    kept = int(np.count_nonzero(keep[:shape[axis]]))
    return {out: (shape[:axis] + (kept,) + shape[axis + 1:], elem)}


def _track_sequence(n, shapes: dict, elems: dict, values: dict, seqs: dict, as_run: bool = False) -> None:
    """Record in ``seqs`` the tensors (shape, elem type) the sequence node ``n`` makes, in order, where all of
    them are known: so that SequenceAt and ConcatFromSequence of it are sized (``_spec_shapes``). ``as_run``: ``n`` is
    the model's own node, not the inference copy's (where ``_squeezed_split_pieces`` rewrites a SplitToSequence of a
    scalar split and keepdims=0, which ONNX sizes otherwise until it has)."""
    op, ins = n.op_type, [v for v in n.input]
    out = n.output[0] if n.output else ""
    if not out:
        return

    def tensor(v: str):
        return (shapes[v], elems[v]) if v in shapes and elems.get(v) else None

    def position(k: int, length: int, extra: int):
        if k >= len(ins) or not ins[k]:
            return length - 1 + extra
        v = values.get(ins[k])
        return _position(None if v is None or v.dtype.kind not in "iu" else v, length, extra)

    held = None
    if op == "SequenceEmpty":
        held = []
    elif op == "SequenceConstruct":
        items = [tensor(v) for v in ins]
        held = None if None in items else items
    elif op in ("Identity", "Optional", "OptionalGetElement") and ins and ins[0] in seqs:
        held = list(seqs[ins[0]])
    elif op == "SequenceInsert" and len(ins) >= 2 and ins[0] in seqs and tensor(ins[1]):
        at = position(2, len(seqs[ins[0]]), 1)
        if at is None and all(t == tensor(ins[1]) for t in seqs[ins[0]]):
            at = len(seqs[ins[0]])   # (a position not known, where every tensor is alike, changes nothing)
        if at is not None:
            held = list(seqs[ins[0]])
            held.insert(at, tensor(ins[1]))
    elif op == "SequenceErase" and ins and ins[0] in seqs and seqs[ins[0]]:
        at = position(1, len(seqs[ins[0]]), 0)
        if at is None and len(set(seqs[ins[0]])) == 1:
            at = 0
        if at is not None:
            held = list(seqs[ins[0]])
            del held[at]
    elif op == "SplitToSequence" and ins and tensor(ins[0]):
        held = _split_pieces(n, *tensor(ins[0]), values.get(ins[1]) if len(ins) > 1 and ins[1] else None,
                             len(ins) > 1 and bool(ins[1]), as_run)
    if held is not None:
        seqs[out] = held


def _split_pieces(n, shape: tuple[int, ...], elem: int, split, given: bool, as_run: bool = False):
    """The tensors SplitToSequence makes of a ``shape`` tensor: ``split`` (its value; None when ``given``
    but unknown) a scalar chunk length (the last chunk shorter) or 1-D lengths; absent, pieces of length 1,
    the axis dropped unless ``keepdims``. None when unknown or invalid."""
    attrs = {a.name: a.i for a in n.attribute}
    axis, keepdims, rank = attrs.get("axis", 0), attrs.get("keepdims", 1), len(shape)
    if not -rank <= axis < rank or (given and (split is None or split.dtype.kind not in "iu")):
        return None
    axis += rank if axis < 0 else 0
    length = shape[axis]
    if not given:
        piece = shape[:axis] + ((1,) if keepdims else ()) + shape[axis + 1:]
        return [(piece, elem)] * length
    if split.ndim == 0:
        step = int(split)
        if step <= 0:
            return None
        lengths = [min(step, length - i) for i in range(0, length, step)]
        if not keepdims:   # (onnxruntime drops the axis of pieces of length 1 and refuses longer ones, where ONNX
            # keeps it: _squeezed_split_pieces makes the inference copy's node one of no split; until it has, unknown)
            if not as_run or any(d != 1 for d in lengths):
                return None
            return [(shape[:axis] + shape[axis + 1:], elem)] * len(lengths)
    elif split.ndim == 1 and (split >= 0).all() and int(split.sum()) == length:
        lengths = [int(d) for d in split]
    else:
        return None
    return [(shape[:axis] + (d,) + shape[axis + 1:], elem) for d in lengths]


def _infer_node(onnx, n, shapes: dict, elems: dict, values: dict, opset: int) -> dict:
    """``{output: (static shape, elem type)}`` as ONNX infers them for node ``n`` alone, from its inputs'
    shapes and folded values: so a round sizes the values after a folded Reshape shape, and folds the
    Shape of them, instead of leaving each to the next round (a round per block of Swin: 27 for swin_b);
    and a node is run only at the size its inputs give it. Empty when an input is not sized or the op has
    no schema; the next full inference checks."""
    from onnx import numpy_helper

    ins = [v for v in n.input if v]
    found: dict[str, tuple[tuple[int, ...], int]] = {}
    if not all(v in shapes and v in elems for v in ins):
        return found
    try:
        schema = onnx.defs.get_schema(n.op_type, opset, "")
        types = {v: onnx.helper.make_tensor_type_proto(elems[v], shapes[v]) for v in ins}
        data = {v: numpy_helper.from_array(values[v], v) for v in ins if v in values}
        out = onnx.shape_inference.infer_node_outputs(schema, n, types, data)
    except Exception:  # noqa: BLE001 - no schema, an exotic dtype, an inconsistent node: left to inference
        return found
    for o, tp in out.items():
        if o and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape"):
            dims = tp.tensor_type.shape.dim
            if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
                found[o] = (tuple(d.dim_value for d in dims), tp.tensor_type.elem_type)
    return found


def _to_array(t):
    """``[numpy value]`` of a TensorProto, or None when numpy cannot hold it (bad data, exotic dtype) or its data
    is in an external file (onnx's loader would read it relative to the working directory)."""
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL:
        return None
    try:
        return [numpy_helper.to_array(t)]
    except Exception:  # noqa: BLE001 - not folded: left to shape inference
        return None


def _shape_of(n, shape: tuple[int, ...]):
    """The value of a Shape (with opset 15's ``start``/``end``) or Size node, from the static shape."""
    import numpy as np

    if n.op_type == "Size":
        return [np.array(math.prod(shape), dtype=np.int64)]
    attrs = {a.name: a.i for a in n.attribute}
    r = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", r)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    return [np.array(shape[start:end], dtype=np.int64)]


def _ort_slice(inputs: list) -> list | None:
    """The output of a Slice (10 and later) of the known ``inputs`` (data, starts, ends, axes, steps; None for one
    omitted) as onnxruntime computes it, or None where onnxruntime refuses it (a step of 0, an axis twice or out of
    range) or an input is not what the op takes.

    Why: onnx's reference evaluator slices with numpy, which clamps a start before the first index to "nothing"
    for a negative step (``x[-9::-2]`` of 4 entries is empty) where ONNX's rule and onnxruntime clamp it to index 0
    (one entry); the evaluator's value then disagreed with inference, was not folded, and a ``ConstantOfShape`` of
    ``Slice(Shape(x), [-9], [INT_MAX], steps=[-2])`` was refused as a dimension ONNX "could not derive"."""
    import numpy as np

    data, starts, ends = (np.asarray(v) if v is not None else None for v in inputs[:3])
    axes = inputs[3] if len(inputs) > 3 else None
    steps = inputs[4] if len(inputs) > 4 else None
    if data is None or starts is None or ends is None or starts.ndim != 1 or starts.shape != ends.shape:
        return None
    k = len(starts)
    axes = np.arange(k) if axes is None else np.asarray(axes)
    steps = np.ones(k, np.int64) if steps is None else np.asarray(steps)
    if axes.shape != (k,) or steps.shape != (k,) or any(a.dtype.kind not in "iu" for a in (starts, ends, axes, steps)):
        return None
    index = [slice(None)] * data.ndim
    seen = set()
    for start, end, axis, step in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        axis += data.ndim if axis < 0 else 0
        if not 0 <= axis < data.ndim or axis in seen or step == 0:
            return None
        seen.add(axis)
        dim = data.shape[axis]
        start += dim if start < 0 else 0
        if end in SLICE_END_ALL:   # ("to the end of the dimension", whatever the step's sign: _ort_slice_ends)
            end = dim if step > 0 else -1
        else:
            end += dim if end < 0 else 0
            end = min(max(end, -1 if step < 0 else 0), dim)
        start = min(max(start, 0), dim - 1 if step < 0 else dim)
        index[axis] = slice(start, None if end < 0 else end, step)
    return [data[tuple(index)]]


def _ort_unique(n, x) -> list | None:
    """The outputs of the Unique node ``n`` of the known ``x`` as onnxruntime writes them (``Y``, ``indices``,
    ``inverse_indices``, ``counts``, as many as ``n`` names), or None where onnxruntime's order is not numpy's
    (a NaN: ``_nonzero_unique``) or ``x`` is no numeric tensor.

    Why: onnx's reference evaluator ignores ``sorted=0`` for a Unique of one output (it returns numpy's sorted
    values, where onnxruntime keeps the order of first occurrence) and takes the slices of its other outputs along
    axis 0 whatever ``axis`` is: ``Gather(Unique(c, sorted=0), 0)`` of ``[5, 1, 5, 3]`` folded to 1 where
    onnxruntime makes 5, so a ``ConstantOfShape`` of it was planned 4 bytes and written 20."""
    import numpy as np

    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.dtype.kind == "f" and bool(np.isnan(x).any()):
        return None
    attrs = {a.name: a.i for a in n.attribute if a.name in ("axis", "sorted")}
    axis = attrs.get("axis")
    if axis is not None and not -x.ndim <= axis < x.ndim:
        return None
    ax = 0 if axis is None else axis % x.ndim
    try:
        y, idx, inv, cnt = np.unique(x.reshape(-1) if axis is None else x, return_index=True, return_inverse=True,
                                     return_counts=True, axis=None if axis is None else ax)
    except (ValueError, TypeError):  # (numpy refuses some empty inputs along an axis: left unfolded)
        return None
    inv = inv.reshape(-1)
    if not attrs.get("sorted", 1):   # (onnxruntime's order: each value where it first occurs)
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        y, idx, cnt, inv = np.take(y, order, axis=ax), idx[order], cnt[order], rank[inv]
    found = [y, idx.astype(np.int64), inv.astype(np.int64), cnt.astype(np.int64)]
    return found[:len(n.output)]


def _unsure_cast(x, r) -> bool:
    """Whether a Cast of ``x`` to ``r``'s integer type has no one value: a float (float16, bfloat16, float8 too)
    that is NaN, infinite or, truncated, outside the type's range. C++ leaves such a conversion undefined, and
    onnxruntime's CPU kernel makes what the machine makes: Cast(bfloat16 300, UINT8) is 44 there (wrapped), 0 in
    onnx's evaluator, and Cast(FLOAT8E4M3FN 448, INT8) -64 there, 0 in the evaluator. An integer to a narrower
    integer wraps in both (two's complement), and is sure."""
    import numpy as np

    if not isinstance(x, np.ndarray) or not isinstance(r, np.ndarray) or r.dtype.kind not in "iu" \
            or x.dtype.kind in "biu":
        return False
    try:
        t = np.trunc(x.astype(np.float64))
    except (TypeError, ValueError):
        return True
    info = np.iinfo(r.dtype)
    return bool(np.any(~np.isfinite(t) | (t < float(info.min)) | (t >= float(info.max + 1))))


#: the reductions onnxruntime's CPU kernel accumulates an integer tensor in float64 (``_unsure_reduction``)
_FLOAT_ACCUMULATED = frozenset({"ReduceSum", "ReduceProd", "ReduceMean", "ReduceL1", "ReduceL2", "ReduceSumSquare",
                                "ReduceLogSum", "ReduceLogSumExp"})


def _unsure_reduction(n, x) -> bool:
    """Whether an integer reduction of ``x`` has no one value: onnxruntime's CPU kernel accumulates an integer
    ReduceSum, ReduceProd, ReduceMean, ReduceL1, ReduceSumSquare (...) in float64 and converts back saturating, where
    onnx's evaluator works in the integer type and wraps. Past 2**53 the two part: ReduceProd of int64 [2**62, 4]
    is 9223372036854775807 there and 0 in the evaluator (a ``Clip(.., 0, 4)`` of it tiled 4 floats onnxruntime
    wrote into 0 planned bytes), ReduceSum of [2**53 + 1, 2] 9007199254740994 there and 9007199254740995 here; the
    mean of nothing is 0 there and INT64_MIN here. So a reduction whose partial values may pass 2**53 or the type's
    range (bounded by the sum of the magnitudes, of their squares, or their product, over the whole input) or a mean
    of an empty input is left unknown, as an unsure Cast is."""
    import numpy as np

    if n.op_type not in _FLOAT_ACCUMULATED or n.domain not in ("", "ai.onnx") or not isinstance(x, np.ndarray) \
            or x.dtype.kind not in "iu":
        return False
    if x.size == 0:
        return n.op_type == "ReduceMean"
    exact = min(2**53, int(np.iinfo(x.dtype).max))   # (and the type's range: an int32 sum saturates at 2**31 - 1)
    mags = [abs(int(v)) for v in x.reshape(-1).tolist()]
    if n.op_type == "ReduceProd":
        bound = 1
        for m in mags:
            bound *= max(m, 1)
            if bound > exact:
                return True
        return False
    return (sum(m * m for m in mags) if n.op_type in ("ReduceSumSquare", "ReduceL2") else sum(mags)) > exact


#: the ops whose result onnxruntime's CPU kernel decides otherwise than onnx's evaluator (numpy) where an input holds
#: a NaN, by which inputs: op -> the positions of those inputs (``_nan_decided``)
_NAN_DECIDED = {"ArgMax": (0,), "ArgMin": (0,), "ReduceMax": (0,), "ReduceMin": (0,), "TopK": (0,), "Hardmax": (0,),
                "Clip": (1, 2)}


def _nan_decided(n, ins: list) -> bool:
    """Whether node ``n`` (``_NAN_DECIDED``) decides its value on a NaN one of those inputs holds: numpy's argmax,
    max and clip take a NaN as the extreme (or pass it on), where onnxruntime's kernels compare it away, each in its
    own way. ``ArgMax([1, NaN, 3])`` is 1 in the evaluator and 2 in onnxruntime (a ``ConstantOfShape`` of it plus
    one planned 2 rows where 3 are written), ``ReduceMax([1, NaN, 3])`` NaN and 3, ``Clip(x, NaN, 2)`` NaN and x
    clipped. Such a value is left unknown, and what it sizes is refused naming it."""
    import numpy as np

    if n.domain not in ("", "ai.onnx"):
        return False
    for k in _NAN_DECIDED.get(n.op_type, ()):
        v = ins[k] if k < len(ins) else None
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and bool(np.any(np.isnan(v))):
            return True
    return False


def _near_whole(x, op: str) -> bool:
    """Whether a float of ``x`` lies within a few ulps of where ``op`` (Ceil, Floor, a Cast's truncation: a whole
    number; Round: a half) rounds to another whole number."""
    import numpy as np

    x64 = x.astype(np.float64)
    at = x64 - 0.5 if op == "Round" else x64
    tol = 16 * float(np.finfo(x.dtype).eps) * np.maximum(1.0, np.abs(x64))
    with np.errstate(invalid="ignore"):
        return bool(np.any(~np.isfinite(at) | (np.abs(at - np.round(at)) <= tol)))


#: the reductions through a logarithm that onnx's evaluator refuses for integers (onnx dropped them from opset 28's
#: schemas) and onnxruntime computes for them at the opsets that take them (``_integer_log_reduction``)
_LOG_REDUCTIONS = frozenset({"ReduceLogSum", "ReduceLogSumExp"})


def _integer_log_reduction(n, ins: list, opsets: dict[str, int]) -> list | None:
    """The output of an integer ReduceLogSum or ReduceLogSumExp ``n`` of ``ins`` as onnxruntime makes it; None
    (unknown) where onnxruntime's builds make it otherwise or its value is not sure.

    ReduceLogSum: the float64 reduction truncated to the integer type; unknown where that lands within a few ulps of
    a whole number (onnxruntime's Log rounds apart from numpy's: ``_inexact_rounding``) or is not finite (the log of
    a sum of 0 or less). ReduceLogSumExp: ``_integer_log_sum_exp``.

    Why: onnx's evaluator refuses an integer input (its schemas of opset 28 take floats alone), so
    ``ReduceLogSum(Shape(x))`` was never folded and what it sized was refused, though opsets 13-21 take int32 and
    int64 and onnxruntime runs it: of a shape [4, 2, 3], log(9) = 2.197, truncated to 2."""
    import numpy as np

    x = ins[0]
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        return None
    if n.op_type == "ReduceLogSumExp":
        return _integer_log_sum_exp(n, ins, opsets)
    found = _evaluate(n, [x.astype(np.float64)] + list(ins[1:]), opsets)
    if not found or not isinstance(found[0], np.ndarray) or _near_whole(found[0], "Cast"):
        return None
    # (an array whatever its rank: numpy's trunc of a 0-d array, ``keepdims=0``'s scalar, is a numpy scalar, which
    # the fold drops as no value: ``ReduceLogSum(Shape(x), keepdims=0)`` stayed unknown)
    return [np.asarray(np.trunc(found[0])).astype(x.dtype)]


def _integer_log_sum_exp(n, ins: list, opsets: dict[str, int]) -> list | None:
    """The output of an integer ReduceLogSumExp ``n`` of ``ins`` as onnxruntime's CPU kernel makes it: in the
    integer type, ``max + log(sum(exp(v - max)))`` with each exp truncated, so 1 for each value equal to its slice's
    maximum and 0 for the rest: the maximum plus the log of how many values equal it ([5, 5, 5, 1]: 5 + log 3,
    truncated to 6; the float64 value, 5.0001, truncates to 5). None (unknown) where onnxruntime's builds part:
    an empty input (log(0): INT_MIN in one build, a cast of -inf in another), values whose difference ``v - max``
    leaves the type (older builds compute it, wrapping; newer ones count the maxima), a negative maximum held more
    than once (older builds truncate the log first: -2 + 0 for [-2, -2]; newer ones the sum in float64: -1), a
    maximum past 2**53 (the newer builds' float64 sum rounds it), and a sum past the type's range (saturated in one
    build, wrapped in another).

    The slices' maxima and counts are the node's own reduction (its axes, ``keepdims``, ``noop_with_empty_axes``)
    run by onnx's evaluator: a ReduceMax of the same node (keeping the reduced dimensions, to compare each value with
    its maximum), then the node itself over float64 zeros where a value is its maximum and -inf elsewhere, which is
    the log of the count."""
    import numpy as np
    from onnx import helper

    x = ins[0]
    if x.size == 0:
        return None
    info = np.iinfo(x.dtype)
    if int(x.max()) - int(x.min()) > (info.max if x.dtype.kind == "i" else 0):
        return None
    top = type(n)()
    top.CopyFrom(n)
    top.op_type = "ReduceMax"
    del top.attribute[:]
    top.attribute.extend([a for a in n.attribute if a.name != "keepdims"] + [helper.make_attribute("keepdims", 1)])
    found = _evaluate(top, list(ins), opsets)
    if not found or not isinstance(found[0], np.ndarray) or found[0].dtype != x.dtype:
        return None
    maxima = found[0]
    marks = np.where(x == maxima, 0.0, -np.inf)
    logs = _evaluate(n, [marks] + list(ins[1:]), opsets)
    if not logs or not isinstance(logs[0], np.ndarray) or logs[0].size != maxima.size:
        return None
    counted = logs[0].astype(np.float64)
    if not np.all(np.isfinite(counted)) or _near_whole(counted[counted > 0.5], "Cast"):
        return None   # (log(1) is 0 in every build; a log of 2 or more near a whole number is the build's own)
    maxima, whole = maxima.reshape(counted.shape).astype(np.int64), np.trunc(counted).astype(np.int64)
    if np.any(np.abs(maxima) > 2**53) or np.any((maxima < 0) & (counted > 0.5)) or np.any(maxima > info.max - whole):
        return None   # (as int64 both: a uint64 maximum here is its slice's every value)
    return [(maxima + whole).astype(x.dtype)]


def _whole_sum(n, ins: list, result: list) -> bool:
    """Whether a sum or product (``_ORDERED_SUMS``) of these inputs adds or multiplies whole numbers whose partial
    results its float type holds exactly, bounded by the sum of the magnitudes (of their squares, their product; of
    a MatMul or Einsum the product of its operands' sums): in any order it is then the one exact value
    (``ReduceSum(Cast(Shape(x), FLOAT))``). A ReduceMean, where that mean is a whole number too: the one division
    of an exact sum (or its product by the count's reciprocal) rounds to it."""
    import numpy as np

    if not result or result[0].dtype.kind != "f":
        return True   # (an integer sum: ``_unsure_reduction``)
    data = ins[:1] if n.op_type.startswith("Reduce") else ins
    if not data or not all(isinstance(v, np.ndarray) and v.dtype.kind in "fiub" for v in data):
        return False
    mags = [np.abs(v.astype(np.float64)).reshape(-1) for v in data]
    if not all(np.all(np.isfinite(m)) and np.all(m == np.round(m)) for m in mags):
        return False
    if n.op_type == "ReduceMean" and not np.all(result[0] == np.round(result[0])):
        return False
    if n.op_type == "ReduceProd":
        bound = float(np.prod(np.maximum(mags[0], 1.0)))
    elif n.op_type == "ReduceSumSquare":
        bound = float(np.sum(mags[0] ** 2))
    elif n.op_type in ("MatMul", "Einsum"):
        bound = float(np.prod([np.sum(m) + 1.0 for m in mags]))
    else:
        bound = float(sum(np.sum(m) for m in mags))
    return bound <= 2.0 ** (np.finfo(result[0].dtype).nmant + 1)


def _broadcast_mean(ins: list) -> list | None:
    """The Mean of ``ins`` broadcast together (opset 8 on), as onnx's evaluator computes it (the sum in input order,
    divided by the count) but into a new array: the evaluator adds each input into a copy of the first in place, so
    a first input smaller than the result (``Mean([1, 3], [[3], [5]])``) raised and the value was never folded, every
    size computed from it refused though onnxruntime runs the model. None where the shapes do not broadcast."""
    import numpy as np

    try:
        total = ins[0]
        for x in ins[1:]:
            total = total + x
    except ValueError:
        return None   # (not broadcastable: ONNX's inference names it)
    return [np.asarray(total / len(ins)).astype(ins[0].dtype)]


def _ort_integer_pow(base, power) -> list | None:
    """An integer Pow of ``base`` to ``power`` as onnxruntime's CPU kernel makes it: ``std::pow`` in float64, then
    truncated to the base's type; None (unknown) where that is not sure: a value past 2**53 (float64 rounds it), not
    finite (0 to a negative power) or outside the type's range (a C++ cast leaves it undefined), or a float power
    whose value lies near a whole number (``_near_whole``: the C library's pow rounds apart from numpy's).

    Why: onnx's evaluator raises integers exactly, so ``Pow(int64 3, 39)`` folded to 4052555153018976267 where
    onnxruntime makes 4052555153018976256 (a size computed from the difference: 3 floats planned, 6 written), and
    refuses a negative integer power (``Pow(2, -1)``, 0 in onnxruntime: the value it sized was refused)."""
    import numpy as np

    if not isinstance(base, np.ndarray) or not isinstance(power, np.ndarray) or power.dtype.kind not in "iuf":
        return None
    try:
        with np.errstate(all="ignore"):
            made = np.power(base.astype(np.float64), power.astype(np.float64))
    except ValueError:   # (shapes that do not broadcast: onnx's inference refuses them)
        return None
    info = np.iinfo(base.dtype)
    if not np.all(np.isfinite(made)) or np.any(np.abs(made) > 2.0**53) or np.any(made < float(info.min)) \
            or np.any(made >= float(info.max) + 1.0):
        return None
    if power.dtype.kind == "f" and not np.all(power == np.round(power)) and _near_whole(made, "Cast"):
        return None
    return [np.trunc(made).astype(base.dtype)]


def _whole_pow(ins: list, result: list) -> bool:
    """Whether a Pow of these inputs raises whole numbers to whole non-negative powers whose results its float type
    holds exactly (``Pow(Cast(Shape(x), FLOAT), 2.0)``): onnxruntime and numpy then make the one exact value, where
    a root (``0.5``) or a power past 2**24 in float32 (257 ** 3) they round apart."""
    import numpy as np

    if len(ins) != 2 or not all(isinstance(v, np.ndarray) and v.dtype.kind in "fiu" for v in ins) \
            or result[0].dtype.kind != "f":
        return False
    base, power = (v.astype(np.float64) for v in ins)
    limit = 2.0 ** (np.finfo(result[0].dtype).nmant + 1)
    with np.errstate(all="ignore"):
        exact = np.power(np.abs(base), power) if base.size and power.size else np.zeros(0)
    return bool(np.all(np.isfinite(base)) and np.all(base == np.round(base)) and np.all(power == np.round(power))
                and np.all(power >= 0) and np.all(exact <= limit))


def _inexact_rounding(n, ins: list, result: list, inexact: set[str]) -> bool:
    """Follow, in ``inexact``, the float values an inexact op computed (``_INEXACT_OPS``, and every float computed
    from one), and tell whether node ``n`` makes a whole number or a decision of one that onnxruntime may make
    otherwise (True: its value is left unknown).

    Why: onnxruntime's vectorized Exp, Log, Sin... differ from numpy's by an ulp, and from one element to the next
    of one tensor; a whole number rounded from such a value may differ by one. ``ConstantOfShape(Cast(Ceil(Exp(Log(
    Cast(Shape(x), FLOAT))))))`` of a 14-long x: numpy's Exp(Log(14)) is 14.0, 14 rows planned (56 bytes), and
    onnxruntime's an ulp above it, 15 rows written (60 bytes); of a 5-long x the other way round (numpy's 5.0000005:
    6 rows planned, 5 written). A Ceil, Floor, Round or Cast to an integer of such a value folds
    where every element lies clear of where the rounding changes (its result then exact); near it, and any integer
    or bool computed otherwise from one (a comparison, an ArgMax), the value is left unknown, and what it sizes is
    refused as unknown."""
    import numpy as np

    held = any(v in inexact for v in n.input if v)
    if not held and (n.op_type not in _INEXACT_OPS or n.op_type == "Pow" and _whole_pow(ins, result)
                     or n.op_type in _ORDERED_SUMS and _whole_sum(n, ins, result)):
        return False
    if held and n.op_type in _ROUNDINGS and ins and isinstance(ins[0], np.ndarray) and ins[0].dtype.kind == "f" \
            and n.input[0] in inexact:
        whole = n.op_type in ("Ceil", "Floor", "Round") or result[0].dtype.kind in "biu"
        if whole:
            return _near_whole(ins[0], n.op_type)
    outs = [(o, r) for o, r in zip(n.output, result) if o]
    if held and any(r.dtype.kind != "f" for _, r in outs):
        return True
    inexact.update(o for o, r in outs if r.dtype.kind == "f")
    return False


def _evaluate(n, inputs: list, opsets: dict[str, int]):
    """The outputs of node ``n`` on ``inputs`` (None for an omitted optional input), or None when the
    reference evaluator cannot run it.

    The node is run inside a one-node model that imports the model's ``opsets``: onnx's evaluator ignores
    ``opsets`` for a bare NodeProto and runs every op at the newest opset, so an old model's Unsqueeze-11
    (``axes`` an attribute) failed as Unsqueeze-13 and its shape computation was never folded (every
    tensor after it refused as unknown), and an op whose meaning changed would have been run by the wrong
    version's rules."""

    import numpy as np
    from onnx import TypeProto, helper
    from onnx.reference import ReferenceEvaluator

    try:
        with warnings_caught(), np.errstate(all="ignore"):  # a division by zero is its value's business
            ins = [v for v in dict.fromkeys(n.input) if v]
            graph = helper.make_graph([n], "fold", [helper.make_value_info(v, TypeProto()) for v in ins],
                                      [helper.make_value_info(o, TypeProto()) for o in n.output if o])
            imports = {**opsets, "ai.onnx": opsets[""]}   # (a node may name the default domain either way)
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in imports.items()])
            ev = ReferenceEvaluator(model)
            feeds = {v: x for v, x in zip(n.input, inputs) if v}
            return list(ev.run(None, feeds))
    except Exception:  # noqa: BLE001 - an op the evaluator lacks or refuses: left to shape inference
        return None


def _shapes(g, inferred) -> dict[str, tuple[int, tuple | None]]:
    """value name -> (elem_type, dims) where dims hold ints, or dim_param strings / "" when unknown."""
    out: dict[str, tuple[int, tuple | None]] = {}
    for vi in list(inferred.value_info) + list(inferred.output) + list(inferred.input):
        if not vi.type.HasField("tensor_type"):
            kind = vi.type.WhichOneof("value")
            if kind:
                out[vi.name] = (-1, kind.removesuffix("_type"))  # a sequence, map or optional
            continue
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in tt.shape.dim)
        elem, had = out.get(vi.name, (0, None))
        if isinstance(had, tuple) and (shape is None or len(shape) == len(had)):
            # declared twice (a graph output typed without a shape, value_info with one): what the two say
            # together, not the last one alone (``_check_declarations`` refused two that disagree)
            shape = had if shape is None else tuple(a if isinstance(a, int) else b for a, b in zip(shape, had))
        out[vi.name] = (tt.elem_type or elem, shape)
    for t in g.initializer:
        out[t.name] = (t.data_type, tuple(t.dims))
    for st in g.sparse_initializer:
        out[st.values.name] = (st.values.data_type, tuple(st.dims))
    for n in g.node:  # Dropout's optional mask has the data's shape (old opsets: no inferred shape)
        if n.op_type == "Dropout" and len(n.output) > 1 and n.output[1] and n.input and n.input[0] in out:
            elem, shape = out.get(n.output[1], (0, None))
            if shape is None or not all(isinstance(d, int) for d in shape):
                out[n.output[1]] = (elem or 9, out[n.input[0]][1])  # bool unless typed otherwise
    for n in g.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    out[n.output[0]] = (a.t.data_type, tuple(a.t.dims))
    return out


# -- cost ---------------------------------------------------------------------------------------------

def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _flops(n, in_shapes: list[tuple], out_shapes: list[tuple]) -> float:
    """A FLOP estimate: 2*M*N*K for matrix products and convolutions, one per element otherwise."""
    op = n.op_type
    out = _numel(out_shapes[0]) if out_shapes else 0
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul") and in_shapes and in_shapes[0]:
        return 2.0 * out * in_shapes[0][-1]
    if op == "Gemm" and in_shapes and len(in_shapes[0]) == 2:
        trans_a = any(x.name == "transA" and x.i for x in n.attribute)
        return 2.0 * out * in_shapes[0][0 if trans_a else 1]
    if op in ("Conv", "ConvInteger", "QLinearConv") and len(in_shapes) >= 2:
        w = in_shapes[1] if op != "QLinearConv" else in_shapes[3] if len(in_shapes) > 3 else in_shapes[1]
        return 2.0 * out * _numel(w[1:])
    if op == "ConvTranspose" and len(in_shapes) >= 2:
        return 2.0 * _numel(in_shapes[0]) * _numel(in_shapes[1][1:])
    return float(max([out] + [_numel(s) for s in in_shapes]))
