"""Shape inference over the whole model: ONNX's, onnxruntime's for its own ops, and the folding rounds.

Why: a plan is only as good as its sizes. Inference runs on a copy of the graph whose large initializers are typed
inputs (memory proportional to structure, not weights), then every value it leaves unsized is either sized by the
folding or refused, naming the value and why (data-dependent, a dimension left symbolic, a declaration contradicted).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection
from dataclasses import dataclass

from ...errors import GraphError
from .. import first_line
from .common import (
    _BITS,
    ORT_DOMAIN,
    PYTHON,
    SHAPE_ONLY,
    SMALL_INITIALIZER,
    Spelling,
    _declared_type,
    _default_opset,
    _dtype_name,
    _nbytes,
    _node_ids,
    _show_type,
    _type_text,
    cli_dim_names,
)
from .files import _data_path, _data_root, _outside_folder
from .fold import (
    MAX_FOLD_ELEMENTS,
    MAX_FOLD_ROUNDS,
    _all_static,
    _einsum_broadcasts,
    _exact_range,
    _fold_round,
    _fresh_name,
    _initializer_or_constant_values,
    _known_values,
    _negative_squeeze_axes,
    _negative_squeeze_axes_ahead,
    _ort_slice_ends,
    _ort_smaller_outputs,
    _prelu_broadcasts,
    _replace_nodes,
    _squeeze_all_of_empty_axes,
    _squeezed_split_pieces,
    _static_shapes,
    _to_array,
    _value_names,
)
from .model_checks import _flat, _name_by_ids
from .node_checks import _dims_hint
from .ort_ops import _is_ort_op, _size_ort_ops

#: what an error about a graph input no node reads (and the model does not return) adds: why it still needs a size
UNREAD_INPUT = (" (no node reads this input and the model does not return it, but the plan still holds the buffer "
                "the caller feeds it into, as onnxruntime requires the feed)")
#: standard ops whose output length depends on the values of their input, not its shape: a size the model
#: declares for such an output (a traced example's, or a ``--dim`` the user gives its name) holds for one
#: input only, so it is never planned (a longer result at run time would overrun its slot)
#: (NonZero and Unique are sized by their input's values, ``SHAPE_INPUTS``: of a constant, ``_spec_shapes`` counts)
DATA_DEPENDENT_OPS = frozenset({"NonMaxSuppression",
                                "ImageDecoder"})  # (its height and width are the encoded image's)
#: onnxruntime's (``com.microsoft``) ops with outputs of data-dependent length: op -> those outputs' indices (its
#: Unique's ``y`` and ``counts`` have one entry per distinct value; its ``idx`` one per input element; the path
#: DynamicTimeWarping finds is ``[2, x]`` with ``max(M, N) <= x < M + N`` by the costs; RemovePadding's output has
#: one row per token the counts it is given keep)
ORT_DATA_DEPENDENT = {"Unique": (0, 2), "DynamicTimeWarping": (0,), "RemovePadding": (0,)}
#: onnxruntime's (``com.microsoft``) ops whose output shape follows the *values* of these inputs, as
#: ``SHAPE_INPUTS`` for the standard ops: its Range's start/limit/delta, its Pad's pads, CropAndResize's crop_size,
#: ExpandDims's axis, RelativePositionBias's query and key lengths, ConvTransposeWithDynamicPads's pads. Why: one
#: of them computed from a graph input's values left the output sized by the model's declaration (a traced
#: example's): a CropAndResize declared ``[2, 3, 4, 4]`` was planned 384 bytes, and onnxruntime wrote 600 into it
#: for a crop_size of ``[5, 5]``
ORT_SHAPE_INPUTS = {"Range": (0, 1, 2), "Pad": (1,), "CropAndResize": (3,), "ExpandDims": (1,),
                    "RelativePositionBias": (1, 2), "ConvTransposeWithDynamicPads": (2,), "MatMulFpQ4": (2,)}
#: standard ops whose output shape follows the *values* of these inputs (a Reshape's target shape, a Range's
#: limit, a Slice's ends...): when such an input is computed from the values a graph input carries at run
#: time (not from shapes alone, as ``Shape`` / ``Size`` give them), the output's size is data-dependent too
SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2), "ConstantOfShape": (0,),
    "Slice": (1, 2, 3, 4), "TopK": (1,), "OneHot": (1,), "Resize": (2, 3), "Upsample": (1,), "Pad": (1, 3),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,), "Col2Im": (1, 2),
    "MaxUnpool": (2,), "DFT": (1, 2),  # (dft_length; axis since opset 20)
    "Compress": (1,),   # (its condition: a constant one keeps a known count of slices, ``_compress_shape``)
    "NonZero": (0,), "Unique": (0,),   # (their one input: a constant one has a known count, ``_nonzero_unique``)
    "STFT": (1, 3), "AffineGrid": (1,), "MelWeightMatrix": (0, 1),
    # (which tensor of a sequence, and so its shape: the pieces of a split, the element taken, the order)
    "SplitToSequence": (1,), "SequenceAt": (1,), "SequenceInsert": (2,), "SequenceErase": (1,),
    **{op: (0,) for op in ("BlackmanWindow", "HannWindow", "HammingWindow")},   # (the window's length)
    **{op: (1,) for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                            "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                            "ReduceSumSquare")},
}
#: ops whose shape inputs moved between opsets: (first opset of the layout, its SHAPE_INPUTS), newest first
#: (Resize-10's scales are input 1, where Resize-11 put the roi, which sizes nothing)
SHAPE_INPUTS_BEFORE = {"Resize": ((11, (2, 3)), (10, (1,)))}
#: ops whose output values depend only on their input's shape (a SequenceLength: on how many tensors its sequence
#: holds, which only a data-dependent ``split`` or position changes, and those mark the sequence sized)
SHAPE_OF_OPS = frozenset({"Shape", "Size", "SequenceLength"})
#: elements above which a ``Constant`` node's tensor is left out of the copy given to shape inference, typed by its
#: dims (``_large_constants``): far above any shape tensor; where a size does follow its data anyway (a Slice of it
#: as a Reshape's shape), ``_infer`` infers again with the data
LARGE_CONSTANT = 1 << 16

def _ort_resize_dims(n, x: tuple, values: dict, opset: int) -> tuple[dict[int, int], str] | None:
    """({axis: size} onnxruntime's kernel gives the output of Resize or Upsample ``n`` of an ``x``-shaped input,
    how it computes them), for the dimensions it computes in float32 arithmetic: ``int64(scale * dim)`` for
    ``scales`` (an attribute before Upsample-9), ``round(min or max(size / dim) * dim)`` for ``sizes`` kept in
    their aspect ratio (``keep_aspect_ratio_policy``, Resize-18). None where neither applies or is known."""
    import numpy as np

    attrs = {a.name: a for a in n.attribute}
    axes = list(attrs["axes"].ints) if opset >= 18 and "axes" in attrs else list(range(len(x)))
    axes = [a + len(x) if a < 0 else a for a in axes]
    if any(not 0 <= a < len(x) or not isinstance(x[a], int) for a in axes):
        return None
    sized = n.op_type == "Resize" and opset >= 11 and len(n.input) > 3 and n.input[3]
    with np.errstate(all="ignore"):
        if sized:
            policy = attrs["keep_aspect_ratio_policy"].s if "keep_aspect_ratio_policy" in attrs else b"stretch"
            sizes = _flat(values.get(n.input[3]))
            if opset < 18 or policy not in (b"not_larger", b"not_smaller") or sizes is None or len(sizes) != len(axes):
                return None
            pick = min if policy == b"not_larger" else max
            scale = pick(np.float32(s) / np.float32(x[a]) for a, s in zip(axes, sizes.astype(np.float32)))
            dims = [np.floor(np.float32(scale * np.float32(x[a])) + np.float32(0.5)) for a in axes]
            how = f"{policy.decode()} sizes {[int(v) for v in sizes]}"
        else:
            if n.op_type == "Upsample" and opset < 9:
                scales = np.asarray(list(attrs["scales"].floats) if "scales" in attrs else [], np.float32)
            else:
                k = 2 if n.op_type == "Resize" and opset >= 11 else 1
                scales = _flat(values.get(n.input[k])) if k < len(n.input) and n.input[k] else None
                if scales is None or scales.dtype.kind != "f":
                    return None
            if len(scales) != len(axes):
                return None
            dims = [np.float32(scale) * np.float32(x[a]) for a, scale in zip(axes, scales.astype(np.float32))]
            how = f"scales {[float(v) for v in scales.astype(np.float32)]}"
    if not all(np.isfinite(d) for d in dims):
        return None
    return {a: int(d) for a, d in zip(axes, dims)}, how


def _ort_resize_scales(n, x: tuple, values: dict, opset: int) -> list[float] | None:
    """The scale of every dimension onnxruntime's Resize kernel validates for node ``n`` of an ``x``-shaped input:
    its ``scales`` (1 for an axis ``axes`` leaves out), ``size / dim`` of its ``sizes``, or the one scale
    ``keep_aspect_ratio_policy`` picks for the axes it names. None where they are unknown."""
    import numpy as np

    if not all(isinstance(d, int) for d in x):
        return None
    attrs = {a.name: a for a in n.attribute}
    if n.op_type == "Upsample":   # (scales an attribute before opset 9, an input from 9)
        if opset < 9:
            scales = list(attrs["scales"].floats) if "scales" in attrs else None
        else:
            v = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
            scales = None if v is None or v.dtype.kind != "f" else [float(np.float32(e)) for e in v.reshape(-1)]
        return scales if scales is not None and len(scales) == len(x) else None
    if n.op_type != "Resize" or opset < 11:
        return None
    axes = list(attrs["axes"].ints) if opset >= 18 and "axes" in attrs else list(range(len(x)))
    axes = [a + len(x) if a < 0 else a for a in axes]
    if any(not 0 <= a < len(x) for a in axes) or len(set(axes)) != len(axes):
        return None
    given = None
    if len(n.input) > 3 and n.input[3]:
        sizes = _flat(values.get(n.input[3]))
        if sizes is None or sizes.dtype.kind not in "iu" or len(sizes) != len(axes):
            return None
        policy = attrs["keep_aspect_ratio_policy"].s if opset >= 18 and "keep_aspect_ratio_policy" in attrs else b"stretch"
        if any(x[a] == 0 and (s != 0 or policy in (b"not_larger", b"not_smaller")) for a, s in zip(axes, sizes)):
            return None   # (an empty axis to elements: check_resize_scale_range refuses it; kept ratios: unknown)
        # (an empty axis to 0: onnxruntime takes it as scale 1, as it runs [0, 2, 4, 5] to [0, 2, 8, 10] linearly)
        given = [float(np.float32(s) / np.float32(x[a])) if x[a] else 1.0 for a, s in zip(axes, sizes)]
        if policy in (b"not_larger", b"not_smaller"):
            given = [(min if policy == b"not_larger" else max)(given)] * len(axes)
    elif len(n.input) > 2 and n.input[2]:
        scales = _flat(values.get(n.input[2]))
        if scales is None or scales.dtype.kind != "f" or len(scales) != len(axes):
            return None
        given = [float(np.float32(v)) for v in scales]
    if given is None:
        return None
    full = [1.0] * len(x)
    for a, v in zip(axes, given):
        full[a] = v
    return full


def _check_resize_mode(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A Resize or Upsample of a mode it does not have (Resize: ``nearest``, ``linear``, ``cubic``; Upsample from opset
    7: ``nearest``, ``linear``), or a ``linear`` or ``cubic`` one whose scales onnxruntime's kernel does not interpolate,
    is refused naming the node: ``linear`` of 2-D and 3-D inputs, 4-D ones of outermost two scales 1 (or outermost and innermost: NHWC),
    5-D ones of outermost two 1; ``cubic`` of 2-D inputs, 4-D ones of outermost two scales 1, or of outermost and
    innermost 1 with ``antialias`` or with every other scale at least 1. (``nearest`` takes any.)

    Why: ONNX's inference sizes any such Resize and memplan planned it (a linear Resize of ``[1, 2, 6, 8]`` to
    ``sizes`` ``[1, 2, 2, 7]`` kept in aspect ratio scales every axis by 1/3: planned ``[0, 1, 2, 3]``), while
    onnxruntime refuses to run it ("'Linear' mode only supports: ... 4-D inputs with the corresponding outermost 2
    scale values being 1")."""
    if n.op_type not in ("Resize", "Upsample") or n.domain not in ("", "ai.onnx") or not n.input:
        return
    mode = next((a.s for a in n.attribute if a.name == "mode"), b"nearest")
    known = (b"nearest", b"linear") if n.op_type == "Upsample" else (b"nearest", b"linear", b"cubic")
    if (n.op_type == "Resize" or opset >= 7) and mode not in known:
        raise GraphError(f"{where}: its mode {mode.decode(errors='replace')!r} is none of {n.op_type}'s "
                         f"({', '.join(repr(k.decode()) for k in known)}); onnxruntime refuses to run it")
    if mode not in (b"linear", b"cubic"):
        return
    x = shapes.get(n.input[0], (0, None))[1]
    sc = _ort_resize_scales(n, x, values, opset) if x is not None else None
    if sc is None:
        return
    r = len(sc)
    antialias = next((a.i for a in n.attribute if a.name == "antialias"), 0) if opset >= 18 else 0
    outer = r >= 2 and sc[0] == 1 and sc[1] == 1
    nhwc = r == 4 and sc[0] == 1 and sc[3] == 1
    if mode == b"linear":
        ok = r in (2, 3) or (r == 4 and (outer or nhwc)) or (r == 5 and outer)
    else:
        ok = r == 2 or (r == 4 and (outer or (nhwc and (antialias or (sc[1] >= 1 and sc[2] >= 1)))))
    if not ok:
        raise GraphError(f"{where}: its {mode.decode()} mode over a {r}-D input {n.input[0]!r} ({list(x)}) at "
                         f"scales {sc} is not one onnxruntime's kernel interpolates (its outermost scales must be 1); "
                         "onnxruntime refuses to run it")


def _check_resize_scales(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A Resize or Upsample whose output size onnxruntime computes otherwise than ONNX's inference is refused,
    naming the node and the dimension. onnxruntime's kernels compute it in float32 arithmetic
    (``_ort_resize_dims``), ONNX's inference (and the spec) exactly: where ``dim * scale`` falls just below an
    integer (or, kept in aspect ratio, just below a half), float32 rounds it up (``10 * 1.6999999``: ONNX 16,
    onnxruntime 17; ``50 * 23 / 20``: 57 and 58), and a Resize of ``[1, 1, 10, 13]`` planned 1,664 bytes was
    written 1,768 by onnxruntime, an overrun that also gives everything after it the wrong shape."""
    if n.op_type not in ("Resize", "Upsample") or n.domain not in ("", "ai.onnx") or not n.input or not n.output:
        return
    x, y = shapes.get(n.input[0], (0, None))[1], shapes.get(n.output[0], (0, None))[1]
    found = _ort_resize_dims(n, x, values, opset) if x is not None and y is not None and len(x) == len(y) else None
    for a, ort in (found[0] if found else {}).items():
        if isinstance(y[a], int) and ort != y[a]:
            raise GraphError(f"{where}: dimension {a} of its output {n.output[0]!r} ({x[a]} by {found[1]}) is {y[a]} "
                             f"by ONNX's rule and {ort} as onnxruntime computes it (in float32): which size a runtime "
                             "writes is unknown; give the output's size exactly (Resize's 'sizes', stretched)")


# -- shape inference --------------------------------------------------------------------------------

def _check_batch_applies(source: str, batch: int, static: list[tuple[str, int]], applied: bool,
                         spelling: Spelling, unranked: bool = False) -> None:
    """``batch`` must set some input's leading dimension or agree with the model's: on a model whose every
    leading dimension is fixed, a batch it cannot take would be ignored, and the user would get a graph of
    another batch than the one asked for, silently. One input whose leading dimension equals ``batch`` is
    agreement: other inputs' leading dimensions need not be a batch (``Expand``'s shape, a ``[3]`` scale).

    A model with no input that has a leading dimension (its inputs all scalars, or none but initializers) cannot
    take a batch either. Why: ``memplan import m.onnx --batch 3`` of a model whose one input is a scalar wrote the
    graph as if no batch had been asked for, exit 0, where a model of fixed leading dimensions is refused (and a
    ``.pt2`` without symbolic dimensions too). (``unranked``: an input of unknown rank, refused later as having no
    shape, which is the error to give.)"""
    if not applied and not static and not unranked:
        raise GraphError(f"{source}: {spelling.batch(batch)}: no graph input has a leading dimension (the model's "
                         f"inputs are scalars, or it has none), so the batch cannot be set (leave "
                         f"{spelling.batch_option} out)")
    if not applied and static and all(v != batch for _name, v in static):
        name, v = static[0]
        raise GraphError(f"{source}: {spelling.batch(batch)}: graph input {name!r} has a fixed leading dimension "
                         f"{v} and no input's is symbolic or unknown, so the batch cannot be set (leave "
                         f"{spelling.batch_option} out)")


def _shape_inputs(op: str, opset: int) -> tuple[int, ...]:
    """The inputs of standard op ``op`` whose values size its outputs, at the model's ``opset``."""
    for since, controls in SHAPE_INPUTS_BEFORE.get(op, ()):
        if opset >= since:
            return controls
    return SHAPE_INPUTS.get(op, ())


def check_declared_by_value(n, where: str, facts: dict) -> None:
    """Refuse an output of onnxruntime's op ``n`` whose size follows the values of one of its inputs
    (``ORT_SHAPE_INPUTS``: com.microsoft's Pad, Range, ExpandDims, CropAndResize...) where those values are not
    known here and nothing but the model's declaration sized it, naming the node, the value and the input.

    Why: such a declaration was planned unchecked: a com.microsoft Pad of ``[3, 4]`` whose ``pads`` follow a
    100,000-entry initializer (past what the importer evaluates), declared ``[1]``, was planned 4 bytes where
    onnxruntime writes 120. A value computed at run time is the data-dependent refusal's; without onnxruntime the
    declarations are the only sizes there are (``facts["ort"]`` false) and are taken, as before."""
    if n.domain != ORT_DOMAIN or n.op_type not in ORT_SHAPE_INPUTS or not facts.get("ort"):
        return
    sized, values = facts.get("ort_sized", set()), facts.get("values", {})
    dependent = facts["data_dependent"].sized
    unknown = [n.input[k] for k in ORT_SHAPE_INPUTS[n.op_type]
               if k < len(n.input) and n.input[k] and values.get(n.input[k]) is None]
    for o in (o for o in n.output if o):
        if unknown and o not in sized and o not in dependent:
            raise GraphError(f"{where}: its output {o!r} is sized by the values of its input {unknown[0]!r}, which "
                             "the importer does not know (a large initializer, or one computed by an op it does not "
                             "evaluate or from such an initializer), so its size is not known here (a declaration "
                             "of it is not checked: unsupported)")


@dataclass(frozen=True)
class DataDependent:
    """The values whose size depends on run-time data (``sized``), and those of them only the unread small
    tensors make so (``by_unread``: computed from ``hidden`` values, not from a graph input's values or a
    data-dependent op), which the errors blame on the unread data rather than on run time."""

    sized: frozenset[str]
    by_unread: frozenset[str]


def _data_dependent_outputs(g, opset: int, hidden: Collection[str] = (),
                            overridable: Collection[str] = ()) -> DataDependent:
    """The values whose size depends on what the graph inputs hold at run time, not only on their shapes: no
    declared size of theirs is planned (it is a traced example's: a longer result would overrun its slot).

    One pass in node order (ONNX lists nodes topologically) with two marks: *valued* (computed from the
    values of a graph input, or from a data-dependent shape) and *sized* (the shape itself is data-dependent).
    An output is sized when its op is in ``DATA_DEPENDENT_OPS`` (or it is one ``ORT_DATA_DEPENDENT`` names), when one of its ``SHAPE_INPUTS`` (``ORT_SHAPE_INPUTS``) is valued,
    or when any input is sized (a shape carried on); valued when any input is valued or sized, except that
    ``Shape`` / ``Size`` of a tensor whose size is fixed give fixed values. Initializers and constants are
    neither: a Reshape to ``Concat(Shape(x)[0], 64)`` stays planned, a Range to ``ReduceMax(x)`` does not.
    ``hidden`` values (small tensors whose external data was not read) are valued too: a shape computed from
    one is as unknown to the importer as one computed from an input, and the model's declaration of it is
    no more checked (an Expand to an unread shape constant declared half its size was planned at that).
    ``overridable`` initializers (``_overridable``) are graph inputs, valued like the others.

    The same pass carries both marks twice, with and without ``hidden`` (the second only where there are
    hidden values), so the graph is walked once per import: it was walked three times, each a fifth of the
    import of a 5,000-node chain."""
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    base = {v.name for v in g.input if v.name not in inits} | set(overridable)
    tracks = [(base | set(hidden), set())] + ([(set(base), set())] if hidden else [])
    for n in g.node:
        ins = [i for i in n.input if i]
        standard = n.domain in ("", "ai.onnx")
        shape_of = standard and n.op_type in SHAPE_OF_OPS
        controls = (() if shape_of else _shape_inputs(n.op_type, opset) if standard
                    else ORT_SHAPE_INPUTS.get(n.op_type, ()) if n.domain == ORT_DOMAIN else ())
        by_op = standard and n.op_type in DATA_DEPENDENT_OPS and not shape_of
        ort_sized = ORT_DATA_DEPENDENT.get(n.op_type, ()) if n.domain == "com.microsoft" else ()
        for valued, sized in tracks:
            any_sized = any(i in sized for i in ins)
            if shape_of:
                out_valued, out_sized = any_sized, False
            else:
                out_sized = any_sized or by_op or any(k < len(n.input) and n.input[k] in valued for k in controls)
                out_valued = any_sized or any(i in valued for i in ins)
            for k, o in enumerate(n.output):
                if o:
                    if out_valued:
                        valued.add(o)
                    if out_sized or k in ort_sized:
                        sized.add(o)
    sized = tracks[0][1]
    return DataDependent(frozenset(sized), frozenset(sized - tracks[1][1]) if hidden else frozenset())


#: why a string tensor cannot be planned (its refusal says so)
STRING_BYTES = ("its bytes depend on the strings it holds, known only at run time, so no plan can size it: "
                "unsupported")
#: why a graph input of a container type cannot be planned, by the kind of its type
RUN_TIME_CONTAINERS = {"sequence_type": ": how many tensors a sequence holds is known only at run time",
                       "optional_type": ": whether an optional holds a value is known only at run time"}


def _first_reader(g, value: str) -> str:
    """``", read by node 'id' (Op)"`` for the first node of ``g`` that reads ``value``, or ``""`` where none does."""
    from .common import _node_ids

    k = next((k for k, n in enumerate(g.node) if value in n.input), None)
    return "" if k is None else f", read by node {_node_ids(g)[k]!r} ({g.node[k].op_type})"


def run_time_inputs(g, opset: int, vname: str, overridable: Collection[str] = ()) -> list[str]:
    """The graph inputs whose values the size of ``vname`` depends on, by the marks of ``_data_dependent_outputs``
    carried as the sets of graph inputs they come from (sorted; empty where it depends on no input's values: a
    NonZero of a constant). Run only where an import is refused for that value.

    Why: the refusal said the size "depends on values computed at run time from what the graph inputs hold" and
    left the user to find which: a Resize whose ``scales`` is a graph input, a Reshape whose shape is computed from
    one, a TopK's ``K``; naming the input tells what to make a constant (an initializer) to have it planned."""
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    valued: dict[str, frozenset[str]] = {v.name: frozenset({v.name}) for v in g.input if v.name not in inits}
    valued.update((v, frozenset({v})) for v in overridable)
    sized: dict[str, frozenset[str]] = {}
    empty: frozenset[str] = frozenset()
    for n in g.node:
        ins = [i for i in n.input if i]
        standard = n.domain in ("", "ai.onnx")
        shape_of = standard and n.op_type in SHAPE_OF_OPS
        controls = (() if shape_of else _shape_inputs(n.op_type, opset) if standard
                    else ORT_SHAPE_INPUTS.get(n.op_type, ()) if n.domain == ORT_DOMAIN else ())
        by_op = (standard and n.op_type in DATA_DEPENDENT_OPS and not shape_of) or (
            n.domain == "com.microsoft" and bool(ORT_DATA_DEPENDENT.get(n.op_type)))
        in_sized = empty.union(*(sized.get(i, empty) for i in ins))
        in_valued = empty.union(*(valued.get(i, empty) for i in ins))
        if shape_of:
            out_valued, out_sized = in_sized, empty
        else:
            out_valued = in_sized | in_valued
            out_sized = in_sized.union(*(valued.get(n.input[k], empty) for k in controls if k < len(n.input)))
            if by_op:
                out_sized |= in_valued
        for o in n.output:
            if o:
                if out_valued:
                    valued[o] = out_valued
                if out_sized:
                    sized[o] = out_sized
        if vname in n.output:
            break
    return sorted(sized.get(vname, empty))


def _computed_from(g, vname: str) -> list[str]:
    """Every value ``vname`` is computed from (itself included), back through the nodes of ``g`` that make them."""
    producer = {o: n for n in g.node for o in n.output if o}
    seen, todo = {vname}, [vname]
    while todo:
        v = todo.pop()
        for i in producer[v].input if v in producer else ():
            if i and i not in seen:
                seen.add(i)
                todo.append(i)
    return list(seen)


def _check_declared_as_initializer(onnx, vi, elem: int, dims, source: str) -> None:
    """Refuse graph input ``vi`` whose declared dtype or fixed dimensions contradict its initializer's (``elem``,
    ``dims``): onnxruntime refuses such a model at load ("Can't merge shape info"), whatever the IR version."""
    tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if tt is not None and tt.elem_type and tt.elem_type != elem:
        raise GraphError(f"{source}: graph input {vi.name!r} is declared {_dtype_name(onnx, tt.elem_type)} but "
                         f"its initializer is {_dtype_name(onnx, elem)}")
    if tt is not None and tt.HasField("shape"):   # (a negative dimension is an open one: ``_clear_negative_declarations``)
        declared = [d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else d.dim_param or "?"
                    for d in tt.shape.dim]
        if len(declared) != len(dims) or any(isinstance(d, int) and d != k for d, k in zip(declared, dims)):
            raise GraphError(f"{source}: graph input {vi.name!r} is declared with shape {declared} but its "
                             f"initializer has dims {list(dims)}")


def _initializers_not_inputs(onnx, model, source: str):
    """``model`` without the graph inputs that are also initializers (a copy; the caller's model is never changed):
    each is then the constant it holds, as IR version 3 read it (``import_onnx(constant_initializers=True)``).

    Why the declarations are checked first: dropping them also dropped their check against the initializer, so
    an input declared ``[1, 4]`` (or double) over a float ``[2, 4]`` initializer, which onnxruntime refuses to
    load, was planned at the initializer's size."""
    inits = {t.name: (t.data_type, tuple(t.dims)) for t in model.graph.initializer}
    inits.update((st.values.name, (st.values.data_type, tuple(st.dims))) for st in model.graph.sparse_initializer)
    if not any(v.name in inits for v in model.graph.input):
        return model
    for v in model.graph.input:
        if v.name in inits:
            _check_declared_as_initializer(onnx, v, *inits[v.name], source)
    keep = [v for v in model.graph.input if v.name not in inits]
    copy = type(model)()
    copy.CopyFrom(model)
    del copy.graph.input[:]
    copy.graph.input.extend(keep)
    return copy


def _overridable(model) -> frozenset[str]:
    """The graph inputs of ``model`` that are also initializers where its IR version (4 and later) makes such an
    initializer a default value the caller may override (IR 3 listed every initializer as an input, a constant).

    Why: onnxruntime runs such an input with whatever the caller feeds (and never folds it as a constant), so a
    Reshape, Expand or Range sized by its value sizes what the caller feeds, not the default: an ``Expand`` to an
    overridable ``[2, 3, 4]`` was planned 96 bytes, and fed ``[5, 2, 3, 4]`` onnxruntime wrote 480."""
    if model.ir_version < 4:
        return frozenset()
    inits = {t.name for t in model.graph.initializer} | {t.values.name for t in model.graph.sparse_initializer}
    return frozenset(v.name for v in model.graph.input if v.name in inits)


def _overridden_note(g, vname: str, overridable: Collection[str]) -> str:
    """The note on a data-dependent ``vname`` computed from overridable initializers (``_overridable``), naming
    the first: the value is data-dependent only because the model lists a constant among its inputs."""
    found = sorted(v for v in _computed_from(g, vname) if v in overridable)
    if not found:
        return ""
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return (f"; note: it follows graph input {found[0]!r}{more}, whose initializer is only a default the caller may "
            "override (ONNX IR version 4 and later), so its value is not known before the run; if it is a constant, "
            "remove it from the graph inputs, or import with constant_initializers=True (memplan import "
            "--constant-initializers)")


def _unread_why(g, vname: str, hidden: dict[str, str], unread: dict[str, str]) -> str:
    """Why ``vname``, sized by small tensors whose external data was not read, has no size: the first of those
    it is computed from, and why it was not read (``hidden``: value -> which tensor; ``unread``: which -> why,
    as ``_infer`` records them)."""
    found = list(dict.fromkeys(hidden[v] for v in _computed_from(g, vname) if v in hidden))
    k = min(found) if found else next(iter(unread))
    why = unread[k]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return (f"its size follows values held in external data: {k}{more}, not read ({why}), so no size can be "
            "planned (the model's declared one cannot be checked against them)")


def _infer(onnx, model, batch: int | None, fixed: dict[str, int], inits: set[str], source: str,
           base_dir: str | None = None, unread: dict[str, str] | None = None, spelling: Spelling = PYTHON,
           facts: dict | None = None, seq_bytes: dict | None = None, hidden: dict[str, str] | None = None,
           stand_in: bool = True):
    """Shape-infer a light copy of the model with symbolic dims fixed; returns the inferred graph.

    Initializers of at most ``SMALL_INITIALIZER`` elements keep their data (Reshape shapes, axes), read from
    their external data file when they have one (``base_dir``: the model's folder); one that cannot be read
    is recorded in ``unread``, for the error about the dimension it leaves unknown. The outputs of
    onnxruntime's own ops are sized by its inference where it is installed (``_size_ort_ops``; whether it is:
    ``facts["ort"]``); ``facts["data_dependent"]`` receives the model's data-dependent values
    (``_data_dependent_outputs``, computed once per import, here), ``facts["values"]`` the values folding
    knows (``_known_values``); ``seq_bytes`` receives the byte sizes of
    the tensors each sequence holds, where all of them are known (``_fold_round``); ``hidden`` receives the values whose data was not read
    (each unread initializer, and the outputs of a node with an unread tensor attribute), each with its key in
    ``unread``; ``facts["overridable"]`` the initializers the caller may override (``_overridable``), whose data
    inference is not given."""
    hidden = {} if hidden is None else hidden
    g = model.graph
    m2 = onnx.ModelProto()
    m2.ir_version = model.ir_version
    m2.functions.extend(model.functions)
    g2 = m2.graph
    g2.name = g.name
    stood_in = _large_constants(onnx, g, {(f.domain, f.name) for f in model.functions}) if stand_in else {}
    g2.node.extend(n for k, n in enumerate(g.node) if k not in stood_in)
    _name_by_ids(g2, [nid for k, nid in enumerate(_node_ids(g)) if k not in stood_in])
    _default_domain_as_empty(onnx, model, m2)
    _read_small_attribute_tensors(onnx, g2, base_dir, unread, hidden, g, (facts or {}).get("real_dir"))
    _explicit_defaults(onnx, g2, {("" if o.domain == "ai.onnx" else o.domain): o.version for o in m2.opset_import})
    _spaced_empty_equations(g2)
    g2.input.extend(_typed_by_initializers(onnx, g, source, _overridable(model)))
    g2.input.extend(stood_in.values())
    g2.output.extend(g.output)
    g2.value_info.extend(g.value_info)
    declared = {v.name for v in g.input}
    facts = {} if facts is None else facts
    overridable = facts["overridable"] = _overridable(model)
    sizing = _sizing_initializers(g, {(f.domain, f.name) for f in model.functions})
    for t in g.initializer:
        if t.name in overridable:   # typed by its dims as a graph input (_typed_by_initializers), its value unknown
            continue
        external = t.data_location == onnx.TensorProto.EXTERNAL
        small = math.prod(t.dims) <= SMALL_INITIALIZER or t.name in sizing
        if small and external:
            loaded = _read_small_external(onnx, t, base_dir, facts.get("real_dir"))
            if isinstance(loaded, str):
                if unread is not None:
                    unread[f"initializer {t.name!r}"] = loaded
                hidden[t.name] = f"initializer {t.name!r}"
            else:
                t, external = loaded, False
        if small and not external:
            g2.initializer.append(t)
        elif t.name not in declared:
            g2.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:  # a declared input too (IR < 4): drop its data, keep its declaration (typed by its dims)
            pass
    for st in g.sparse_initializer:
        if st.values.name in declared:
            continue
        small = math.prod(st.dims) <= SMALL_INITIALIZER
        if small and onnx.TensorProto.EXTERNAL in (st.values.data_location, st.indices.data_location):
            st, why = _read_sparse_external(onnx, st, base_dir, facts.get("real_dir"))
            if why is not None:
                if unread is not None:
                    unread[f"sparse initializer {st.values.name!r}"] = why
                hidden[st.values.name] = f"sparse initializer {st.values.name!r}"
        dense = _dense_of_sparse(onnx, st) if small else None
        if dense is not None:
            g2.initializer.append(dense)
        else:
            g2.input.append(onnx.helper.make_tensor_value_info(st.values.name, st.values.data_type, list(st.dims)))
    _densify_sparse_constants(onnx, g2)
    _tensor_constants(onnx, g2)
    if m2.ir_version < 4:
        # IR 3 required every initializer among the graph inputs, and ONNX's inference of such a model types an
        # initializer only through its input: one the model does not list (onnxruntime runs the model all the same)
        # left every value it feeds unsized ("shape inference could not find its rank", "Input 0 expected to have
        # type but instead is null"). Typed here by its own dims, as onnxruntime takes it.
        listed = {vi.name for vi in g2.input}
        g2.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                        for t in g2.initializer if t.name not in listed)

    _standard_ort_ranges(onnx, g2, _default_opset(model))
    _exact_float_ranges(onnx, g2)
    _conv_transpose_output_shapes(onnx, g2, _default_opset(model))
    _mvn_as_identity(onnx, g2)
    if any(n.op_type == "Squeeze" for n in g2.node):
        _squeeze_all_of_empty_axes(g2, _initializer_or_constant_values(
            onnx, g2, {n.input[1] for n in g2.node if n.op_type == "Squeeze" and len(n.input) > 1}))
    _standard_slice_ends(onnx, m2)
    if any(n.op_type in ("Squeeze", "Unsqueeze") for n in g2.node):
        _negative_squeeze_axes_ahead(onnx, m2)   # (before opset 11: ONNX passes over them, onnxruntime does not)

    # which names exist, to catch typos in --dim
    params: set[str] = set()
    for vi in list(g.input) + list(g2.output) + list(g2.value_info):
        if vi.type.HasField("tensor_type"):
            params.update(d.dim_param for d in vi.type.tensor_type.shape.dim if d.dim_param)
    constants = {vi.name for vi in stood_in.values()}
    real_inputs = [vi for vi in g2.input if vi.name not in inits and vi.name not in constants]
    named = params | _expression_names(params)   # (``batch`` of an input named only ``2*batch`` too)
    if spelling.cli:
        fixed = cli_dim_names(fixed, named)
    for k in fixed:
        if k not in named:
            raise GraphError(f"{source}: {spelling.dim_key(k)}: the model has no symbolic dimension {k!r} "
                             f"({_dims_hint(real_inputs, params)})")
    mapping = dict(fixed)
    deferred: list[str] = []   # leading dimensions --batch fixes only where their expression does not derive them
    if batch is not None:
        static: list[tuple[str, int]] = []   # inputs whose leading dimension the model fixes
        applied = unranked = False
        for vi in real_inputs:
            shape = vi.type.tensor_type.shape if vi.type.HasField("tensor_type") else None
            unranked = unranked or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape")
            if shape is None or not shape.dim:
                continue
            d0 = shape.dim[0]
            if d0.dim_param and d0.dim_param not in fixed and _dim_expression(d0.dim_param) is not None:
                deferred.append(d0.dim_param)
                applied = True
            elif d0.dim_param:
                if fixed.get(d0.dim_param, batch) != batch:   # both options fix it: which one was meant?
                    raise GraphError(f"{source}: graph input {vi.name!r} dimension 0 ({d0.dim_param!r}) is fixed "
                                     f"twice: {spelling.batch(batch)} and "
                                     f"{spelling.dim(d0.dim_param, fixed[d0.dim_param])}; "
                                     "give one")
                mapping.setdefault(d0.dim_param, batch)
                applied = True
            elif not d0.HasField("dim_value"):
                d0.dim_value = batch
                applied = True
            else:
                static.append((vi.name, d0.dim_value))
        _check_batch_applies(source, batch, static, applied, spelling, unranked)
    _derive_input_dims(source, real_inputs, mapping)
    for p in deferred:
        mapping.setdefault(p, batch)
    facts["data_dependent"] = _data_dependent_outputs(g, _default_opset(model), hidden, overridable)
    data_dependent = facts["data_dependent"].sized
    # a NonZero's or Unique's size is its input's count alone (``_nonzero_unique``), whatever the model declares: a
    # traced example's count, which a Shape-made input of other dimensions changes (a declared [2, 6] was planned
    # for the 15 entries onnxruntime counts at n=5)
    counted = {o for n in g.node if n.op_type in ("NonZero", "Unique") and n.domain in ("", "ai.onnx")
               for o in n.output if o}
    for vi in list(g2.input) + list(g2.output) + list(g2.value_info):
        if not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if vi.name in data_dependent or vi.name in counted:
                d.Clear()  # only inference may size it: the declared size held for the traced input only
            elif d.dim_param:
                if d.dim_param in mapping:
                    d.dim_value = mapping[d.dim_param]
                elif vi.name not in declared:
                    d.Clear()  # let inference derive it from the fixed inputs
    read = {v for n in g.node for v in n.input if v} | {o.name for o in g.output}
    for vi in real_inputs:
        if not vi.type.HasField("tensor_type"):
            has = f"has type {_type_text(onnx, vi.type)}" if vi.type.WhichOneof("value") else "has no type"
            raise GraphError(f"{source}: graph input {vi.name!r} {has}, not a tensor (only tensors are supported"
                             f"{RUN_TIME_CONTAINERS.get(vi.type.WhichOneof('value'), '')}){_first_reader(g, vi.name)}")
        tt = vi.type.tensor_type
        if tt.elem_type not in _BITS:
            raise GraphError(f"{source}: graph input {vi.name!r} has dtype {_dtype_name(onnx, tt.elem_type)}, "
                             "which has no fixed byte size ("
                             f"{STRING_BYTES if tt.elem_type == onnx.TensorProto.STRING else 'unsupported'})"
                             f"{_first_reader(g, vi.name)}")
        unread = vi.name not in read
        if not tt.HasField("shape"):
            raise GraphError(f"{source}: graph input {vi.name!r} has no shape"
                             + (f"{UNREAD_INPUT}: declare its shape in the model, or remove the input" if unread else ""))
        for i, d in enumerate(tt.shape.dim):
            if not d.HasField("dim_value"):
                if d.dim_param:
                    how = f"pass {spelling.dim(d.dim_param)}" + (f" or {spelling.batch()}" if i == 0 else "")
                    raise GraphError(f"{source}: graph input {vi.name!r} dimension {i} is symbolic "
                                     f"({d.dim_param!r}) and not fixed: {how}"
                                     + (f"{UNREAD_INPUT}; any value plans every other tensor alike" if unread else ""))
                how = (f"pass {spelling.batch()}{UNREAD_INPUT if unread else ''}" if i == 0 else
                       f"the model gives it neither a size nor a name{UNREAD_INPUT}; declare one (a name can then be "
                       f"fixed with {spelling.dim('NAME')}), or remove the input" if unread else "the model must give it")
                raise GraphError(f"{source}: graph input {vi.name!r} dimension {i} is unknown: {how}")
    if mapping:
        _empty_concat_stand_ins(onnx, g2, {vi.name: vi for vi in g.input}, source)
    allowed = _propagates(onnx, m2)
    # (ONNX's data propagation carries a Cast's value on unconverted: not followed while such a Cast is unfolded)
    held = allowed and _lossy_known_casts(onnx, m2)
    propagate = allowed and not held
    _check_slice_data(onnx, m2, g, source, propagate)
    ort_sized = facts.setdefault("ort_sized", set())   # (outputs of onnxruntime's ops a rule or its inference sized)
    ort = facts["ort"] = _size_ort_ops(onnx, m2, source, data_dependent, fixed=mapping, sized=ort_sized)
    try:
        # (not where --dim/--batch fixed a dimension: a declaration that contradicts them most likely marks a model
        # exported at its example's size, whose own shapes hold at that size only; _contradicted_hint says so)
        inferred = _run_inference(onnx, m2, source, propagate=propagate, lenient=not mapping)
    except GraphError as exc:
        raise GraphError(f"{exc}{_contradicted_hint(g2, str(exc), mapping)}"
                         f"{_contradicted_value(onnx, m2, g, str(exc), propagate)}"
                         f"{_incompatible_hint(str(exc), mapping)}") from None

    def infer_folded(propagate: bool):
        if _slices_unsized(m2, inferred):   # (a fold may have made a negative dimension known: a Pad's pads)
            _check_slice_data(onnx, m2, g, source, propagate)
        try:
            return _run_inference(onnx, m2, source, folded=True, propagate=propagate, lenient=not mapping)
        except GraphError as exc:   # (folded shape values may meet where the dimensions fixed disagree, or
            #                         contradict a declaration that looked static before: _declarations_fill_gaps)
            raise GraphError(f"{exc}{_contradicted_hint(g2, str(exc), mapping)}"
                             f"{_contradicted_value(onnx, m2, g, str(exc), propagate)}"
                             f"{_incompatible_hint(str(exc), mapping)}") from None

    unconfirmed = None   # whether declarations alone make the shapes static (_declarations_fill_gaps), asked once
    for _ in range(MAX_FOLD_ROUNDS):
        pooled = _ort_smaller_outputs(onnx, m2, inferred)   # (before any fold reads the shapes it corrects)
        pooled = _standard_slice_ends(onnx, m2) or pooled   # (likewise: before a fold runs the Slice)
        pooled = _kept_resize_shapes(onnx, m2, inferred) or pooled   # (ONNX leaves a 0 it computes unknown)
        pooled = _zero_hidden_rnn_shapes(m2, inferred) or pooled   # (likewise a hidden_size of 0)
        pooled = _einsum_broadcasts(onnx, m2, inferred) or pooled   # (ONNX does not broadcast a label of length 1)
        pooled = _prelu_broadcasts(onnx, m2, inferred) or pooled   # (ONNX does not broadcast X to the slope's shape)
        pooled = _squeezed_split_pieces(onnx, m2, inferred) or pooled   # (onnxruntime drops the axis, ONNX keeps it)
        pooled = _negative_squeeze_axes(onnx, m2, inferred) or pooled   # (ONNX passes over them before opset 11)
        if any(n.op_type == "Squeeze" and len(n.input) > 1 for n in m2.graph.node):   # (axes folded only now)
            pooled = _squeeze_all_of_empty_axes(m2.graph, _known_values(onnx, m2)) or pooled
        static = _all_static(inferred)
        if static and not pooled and unconfirmed is None:
            unconfirmed = _declarations_fill_gaps(onnx, m2, propagate)
        if not pooled and ((static and not unconfirmed) or not _fold_round(onnx, m2, inferred, seq_bytes)):
            break
        if ort and _ort_outputs_unsized(onnx, m2, inferred):
            # an input only the fold sized (a Reshape to Sqrt of a shape): onnxruntime's inference follows it now
            _check_slice_data(onnx, m2, g, source, propagate)   # (onnxruntime's inference runs onnx's on it too)
            _size_ort_ops(onnx, m2, source, data_dependent, fixed=mapping, sized=ort_sized)
        allowed = allowed and _long_vector(inferred) is None   # (a long 1-D value sized by the last round)
        allowed = allowed and not _wide_slice_steps(onnx, m2)   # (a step the last round folded)
        held = held and _lossy_known_casts(onnx, m2)   # (each such Cast folded: the rest is followed again)
        propagate = allowed and not held
        inferred = infer_folded(propagate)
    if ort and _ort_outputs_unsized(onnx, m2, inferred):
        # onnxruntime's pass stopped at a standard op its rules fail on (an Expand whose shape it cannot follow):
        # once more, the standard ops onnx sized given to it as sized
        _size_ort_ops(onnx, m2, source, data_dependent, _static_infos(inferred), fixed=mapping, sized=ort_sized)
        inferred = infer_folded(propagate and _long_vector(inferred) is None)
    if stood_in and not _all_static(inferred):
        # a size left unknown may follow a large Constant's data (a Slice or Gather of it as a Reshape's shape):
        # infer again with every Constant copied in, as before the stand-ins (a model that sizes all its values
        # without that data, the usual one, never pays for this)
        return _infer(onnx, model, batch, fixed, inits, source, base_dir, unread, spelling, facts, seq_bytes,
                      hidden, stand_in=False)
    facts["values"] = _values_checked(onnx, m2, inferred, _known_values(onnx, m2), facts["data_dependent"].sized)
    facts["folded"] = m2   # (the inference copy as folded: ``control_flow`` folds on where it stopped)
    _refuse_declared_by_unknown_values(onnx, m2, inferred, facts, source, propagate)
    return inferred


def _refuse_declared_by_unknown_values(onnx, m2, inferred, facts: dict, source: str, propagate: bool) -> None:
    """Refuse an output of a standard op that its declaration alone sizes where its size follows the values of an
    input (``SHAPE_INPUTS``: an Expand's shape, a Tile's repeats...) that the importer does not know and that no
    graph input's values decide, naming the node, the output and that input.

    Why: a declaration fills a gap ONNX's inference leaves, and where the fold cannot compute the value the op
    reads (past the bound of what it evaluates), nothing checked it: an Expand of ``[1, 4]`` to
    ``Concat(ReduceSum(100,000 ones), [4])`` declared ``[10, 4]`` was planned 160 bytes where onnxruntime writes
    ``[100000, 4]``, 1.6 MB. A data-dependent value is that refusal's; a shape inference without the declarations
    finds (ONNX's data propagation) stands. Costs one inference, only where such an input exists."""
    values, dependent = facts["values"], facts["data_dependent"].sized
    static = _static_infos(inferred)
    opset = _default_opset(m2)
    found = []
    for n in m2.graph.node:
        if n.domain not in ("", "ai.onnx"):
            continue
        if n.op_type == "Compress" and n.input and _has_static_shape(inferred, n.input[0]):
            continue   # (the fold's own refusal names it: one slice of the data per true entry of the condition)
        for k in _shape_inputs(n.op_type, opset):
            v = n.input[k] if k < len(n.input) else ""
            if v and values.get(v) is None and v not in dependent:
                found.extend((n, o, v) for o in n.output if o and o in static and o not in dependent)
    if not found:
        return
    made = _inferred_undeclared(onnx, m2, propagate)
    if made is None:   # (inconsistent without the declarations: other checks judge that)
        return
    sized = _static_infos(made)
    for n, o, v in found:
        if o not in sized:
            dims = [d.dim_value for d in static[o].type.tensor_type.shape.dim]
            raise GraphError(f"{source}: node {n.name!r} ({n.op_type}): value {o!r} is declared {dims}, but its size "
                             f"follows the values of its input {v!r}, which the importer does not know, although "
                             "it does not depend on values the graph inputs carry at run time (a large initializer, "
                             "or one computed by an op it does not evaluate or from such an initializer): the "
                             "declaration is not checked (unsupported)")


#: ops whose second input (a shape, indices, a count) a check of the import reads by value (``check_expand_shape``,
#: ``_check_known_indices``, ``check_topk_k``, ``check_onehot_depth``)
VALUE_CHECKED = frozenset({"Expand", "Gather", "GatherElements", "GatherND", "Scatter", "ScatterElements", "ScatterND",
                           "TopK", "OneHot"})


def _values_checked(onnx, m2, inferred, values: dict, data_dependent) -> dict:
    """``values`` (what the folded ``m2`` knows), with the values of the second inputs of ``VALUE_CHECKED`` nodes where
    those are computed and not yet known: ONNX's data propagation followed them, so no fold round ran, and the checks
    that read them (an Expand's shape, a Gather's indices, a OneHot's depth) saw nothing. One fold round of a copy of ``m2`` computes them (``m2`` is
    left as it is); where it cannot, ``values`` as given.

    Why: a ``[5, 3]`` expanded to ``Mul(Neg(Shape(x)), 2)``, ``[-10, -6]``, was planned at ``[5, 3]`` (ONNX's
    inference broadcasts a negative entry as if it fitted), a Gather by indices ``Shape(x)`` past its data, and a
    OneHot of a negative computed depth, while onnxruntime refuses to run each."""
    produced = {o for n in m2.graph.node for o in n.output if o}
    wanted = [n.input[1] for n in m2.graph.node if n.op_type in VALUE_CHECKED and n.domain in ("", "ai.onnx")
              and len(n.input) > 1 and n.input[1] in produced and n.input[1] not in values
              and n.input[1] not in data_dependent]
    if not wanted:
        return values
    copy = onnx.ModelProto()
    copy.CopyFrom(m2)
    try:
        _fold_round(onnx, copy, inferred)
    except GraphError:   # (what a fold refuses is refused, or not, by the checks of the import itself)
        return values
    return {**_known_values(onnx, copy), **values}


def _read_sparse_external(onnx, st, base_dir: str | None, real_dir: str | None = None):
    """(a copy of the small sparse initializer ``st`` with the external data of its values and indices read in, None),
    or (``st``, why one part cannot be read), as ``_read_small_external`` reads a dense one.

    Why: a sparse initializer whose data lies in an external file was never read, so one used as a Reshape's shape
    was refused as a dimension "ONNX's shape inference could not derive ... although it does not depend on values
    the graph inputs carry", naming neither the tensor nor its unread file."""
    copy = onnx.SparseTensorProto()
    copy.CopyFrom(st)
    for part in (copy.values, copy.indices):
        if part.data_location == onnx.TensorProto.EXTERNAL:
            loaded = _read_small_external(onnx, part, base_dir, real_dir)
            if isinstance(loaded, str):
                return st, loaded
            part.CopyFrom(loaded)
    return copy, None


def _dense_of_sparse(onnx, st):
    """The dense TensorProto (named as the values) that the sparse tensor ``st`` stands for, or None where its data
    lies in an external file or onnx cannot read it.

    Why: onnx's shape inference reads no sparse tensor's data, so a small sparse initializer or a ``Constant``'s
    ``sparse_value`` used as a Reshape's shape (``[0, -1]`` stored as the one value -1 at index 1) left the
    Reshape's output unknown, refused as a dimension "ONNX's shape inference could not derive", where onnxruntime
    reads it as the dense tensor it is (zeros where no index is). The indices are linear (``[NNZ]``) or
    coordinates (``[NNZ, rank]``); ``_check_sparse`` has already checked them against the dims."""
    import numpy as np
    from onnx import numpy_helper

    if onnx.TensorProto.EXTERNAL in (st.values.data_location, st.indices.data_location):
        return None
    try:
        values = np.asarray(numpy_helper.to_array(st.values)).reshape(-1)
        idx = np.asarray(numpy_helper.to_array(st.indices)).astype(np.int64)
        dims = tuple(int(d) for d in st.dims)
        dense = np.zeros(math.prod(dims), dtype=values.dtype)
        if idx.ndim == 2:
            idx = np.ravel_multi_index(tuple(idx.T), dims) if idx.size else idx.reshape(-1)
        dense[idx.reshape(-1)] = values
        t = numpy_helper.from_array(dense.reshape(dims), st.values.name)
    except Exception:  # noqa: BLE001 - data onnx cannot read: left unknown to shape inference, as before
        return None
    if t.data_type != st.values.data_type:
        return None
    return t


def _densify_sparse_constants(onnx, g2) -> None:
    """Give each ``Constant`` of ``g2`` (the copy shape inference reads) holding a small ``sparse_value`` the
    dense ``value`` it stands for (``_dense_of_sparse``: onnx's inference reads no sparse data)."""
    for n in g2.node:
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(n.attribute) != 1:
            continue
        a = n.attribute[0]
        if a.name != "sparse_value" or math.prod(a.sparse_tensor.dims) > SMALL_INITIALIZER:
            continue
        dense = _dense_of_sparse(onnx, a.sparse_tensor)
        if dense is not None:
            del n.attribute[:]
            n.attribute.extend([onnx.helper.make_attribute("value", dense)])


#: a Constant's numeric shorthand attributes -> (the tensor's element type, whether it is a list (1-D) or a scalar)
_SHORTHAND = {"value_float": (1, False), "value_floats": (1, True), "value_int": (7, False), "value_ints": (7, True)}


def _tensor_constants(onnx, g2) -> None:
    """Give each ``Constant`` of ``g2`` (the copy shape inference and folding read) holding a numeric shorthand
    (``value_float``, ``value_floats``, ``value_int``, ``value_ints``) the ``value`` tensor it stands for: a float32
    or int64 scalar or 1-D tensor, as the spec defines it. Why: the importer's own readers of known values (the
    Range corrections ``_exact_range`` and ``_check_range``, folding) read a Constant's ``value`` only, so a Range of
    ``value_float`` Constants was sized by ONNX's inference alone: ``Range(0.3, 5.3, 0.2)`` planned 100 bytes where
    onnxruntime writes 104 (an overrun), and ``Range(0, 1e30, 1e-30)``, a delta of 0 or an infinite limit planned 0
    bytes where onnxruntime refuses to run (as they already were for Constants holding a ``value`` tensor)."""
    for n in g2.node:
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(n.attribute) != 1 or not n.output:
            continue
        a = n.attribute[0]
        kind = _SHORTHAND.get(a.name)
        if kind is None:
            continue
        elem, many = kind
        vals = list(a.floats if elem == 1 else a.ints) if many else [a.f if elem == 1 else a.i]
        if len(vals) > SMALL_INITIALIZER:
            continue
        t = onnx.helper.make_tensor(n.output[0], elem, [len(vals)] if many else [], vals)
        del n.attribute[:]
        n.attribute.extend([onnx.helper.make_attribute("value", t)])


def _has_static_shape(g, name: str) -> bool:
    """Whether value ``name`` has a dtype and static shape in graph ``g`` (an inferred one), a graph input's too."""
    return name in _static_infos(g) or any(
        vi.name == name and vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")
        and all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim) for vi in g.input)


def _static_infos(g) -> dict:
    """``{value: ValueInfoProto}`` of the values graph ``g`` (an inferred one) gives a dtype and static shape."""
    return {vi.name: vi for vi in list(g.value_info) + list(g.output)
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type
            and vi.type.tensor_type.HasField("shape")
            and all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)}


def _ort_outputs_unsized(onnx, m2, inferred) -> bool:
    """Whether some output of onnxruntime's own ops in ``m2`` has no static shape in ``inferred``."""
    static = _static_shapes(inferred)
    return any(o and o not in static for n in m2.graph.node if _is_ort_op(onnx, n) for o in n.output)


#: input positions of standard ops whose *data* sizes an output (a shape, axes, pads, sizes, k, a range's bounds)
_SIZE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Slice": (1, 2, 3, 4),
                "Pad": (1, 2, 3), "Resize": (1, 2, 3), "Upsample": (1,), "TopK": (1,), "Range": (0, 1, 2),
                "OneHot": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,),
                "Col2Im": (1, 2), "MaxUnpool": (2,), "DFT": (1, 2), "STFT": (1, 2, 3), "Compress": (1,), "NonZero": (0,), "Unique": (0,), "NonMaxSuppression": (2,)}


def _feeds_sizes(g, functions: set) -> set[str]:
    """The values of ``g`` whose data some output's size may follow: those at a sizing input (``_SIZE_INPUTS``,
    the axes of a Reduce op, any input of a model-local function) and, back through every node but ``Shape`` and
    ``Size`` (which read only dims), the values they are computed from."""
    need: set[str] = set()
    for n in g.node:
        if (n.domain, n.op_type) in functions:
            need.update(n.input)
        elif n.domain in ("", "ai.onnx"):
            at = (1,) if n.op_type.startswith("Reduce") else _SIZE_INPUTS.get(n.op_type, ())
            need.update(n.input[i] for i in at if i < len(n.input))
    for n in reversed(g.node):   # topological: a value's consumers come after its producer
        if n.op_type not in ("Shape", "Size") and any(o in need for o in n.output):
            need.update(n.input)
    need.discard("")
    return need


def _sizing_initializers(g, functions: set) -> set[str]:
    """The initializers of ``g`` of more than ``SMALL_INITIALIZER`` and at most ``MAX_FOLD_ELEMENTS`` elements whose
    data some output's size may follow (``_feeds_sizes``): these keep their data for shape inference too.

    Why: only initializers of up to 64 elements did, so a Compress by a constant mask of 100 entries (or a
    Reshape to a shape gathered from a table of 100) was refused as a size "ONNX's shape inference could not
    derive"; such a table is at most 32 KB. The walk is paid only by a model holding such an initializer."""
    if not any(SMALL_INITIALIZER < math.prod(t.dims) <= MAX_FOLD_ELEMENTS for t in g.initializer):
        return set()
    return _feeds_sizes(g, functions) & {t.name for t in g.initializer
                                         if SMALL_INITIALIZER < math.prod(t.dims) <= MAX_FOLD_ELEMENTS}


def _large_constants(onnx, g, functions: set = frozenset()) -> dict:
    """Node index -> a typed graph input standing in for it, for each ``Constant`` node of ``g`` whose ``value``
    holds more than ``LARGE_CONSTANT`` elements: in the copy given to shape inference its output is typed by the
    tensor's dtype and dims, and its data is left out, as a large initializer's is.

    Why: the copy took every constant's data along (and inference serialized and parsed it again, in each
    folding round): a model of 20 Constant weights of 16 MB imported with 2 GB of memory at its peak, one with its
    weights as initializers with 0.7 GB. Shape tensors, axes and pads are small, but a Slice or Gather of a large
    table can be one: a constant whose data may reach a size (``_feeds_sizes``) keeps its data, or a wrong size
    the model declares would stand unchecked (a ConstantOfShape declared [1, 8] where the data says [2, 8])."""
    out = {}
    sizing = None
    for k, n in enumerate(g.node):
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(n.output) != 1 or not n.output[0]:
            continue
        value = [a for a in n.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR]
        if len(n.attribute) != 1 or not value or math.prod(value[0].t.dims) <= LARGE_CONSTANT:
            continue
        sizing = _feeds_sizes(g, functions) if sizing is None else sizing   # (only for a model with a large one)
        if n.output[0] in sizing:
            continue
        t = value[0].t
        if t.data_type not in _BITS:
            continue
        out[k] = onnx.helper.make_tensor_value_info(n.output[0], t.data_type, list(t.dims))
    return out


def _typed_by_initializers(onnx, g, source: str, overridable: Collection[str] = ()) -> list:
    """The graph inputs of ``g`` for shape inference, each that is also an initializer (an input with a default
    value: IR < 4 lists every initializer so) typed by the initializer's own dtype and dims.

    Why: runtimes run such an input with the initializer's data unless the caller feeds another, and
    onnxruntime takes its shape from the initializer, not from the declaration. A declaration with a symbolic
    dimension (``["N"]``) left every value after it unknown, or, with ``N`` fixed by ``--dim`` for the other
    inputs, planned them at that size while the runtime made them the initializer's (``--dim N=1`` on a
    100-element initializer: 4 bytes planned for a 400-byte result). A declared fixed dimension or dtype the
    initializer contradicts is refused, as onnxruntime refuses it. So is one that leaves a dimension open (or
    declares no shape) where the initializer is ``overridable``: onnxruntime takes a value fed in its place at
    any size the declaration allows, and what follows is sized by it (a MatMul by an overridable ``["a", "b"]``
    weight of dims [3, 4] was planned 32 bytes; fed a [3, 10] one, onnxruntime wrote 80)."""
    inits = {t.name: (t.data_type, tuple(t.dims)) for t in g.initializer}
    inits.update((st.values.name, (st.values.data_type, tuple(st.dims))) for st in g.sparse_initializer)
    out = []
    for vi in g.input:
        if vi.name not in inits:
            out.append(vi)
            continue
        elem, dims = inits[vi.name]
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        _check_declared_as_initializer(onnx, vi, elem, dims, source)
        if vi.name in overridable and (tt is None or not tt.HasField("shape") or
                                       not all(d.HasField("dim_value") for d in tt.shape.dim)):
            what = (f"shape {[d.dim_value if d.HasField('dim_value') else d.dim_param or '?' for d in tt.shape.dim]}"
                    if tt is not None and tt.HasField("shape") else "no shape")
            raise GraphError(f"{source}: graph input {vi.name!r} is declared with {what}, "
                             f"which a value fed in place of its initializer (dims {list(dims)}, only a default the caller "
                             "may override: ONNX IR version 4 and later) may fill at other sizes, and onnxruntime then "
                             "sizes what follows by the value fed; if it is a constant, remove it from the graph inputs, "
                             "or import with constant_initializers=True (memplan import --constant-initializers)")
        out.append(onnx.helper.make_tensor_value_info(vi.name, elem, list(dims)))
    return out


def _incompatible_hint(msg: str, mapping: dict[str, int]) -> str:
    """Why shape inference found two sizes a node needs alike different, where two or more dimensions were fixed
    (``mapping``): the values given may disagree. ``torch.onnx.export(dynamo=False)`` names each input's dynamic
    axes apart unless told otherwise (``input_ids`` ``[d0_0, d0_1]``, its ``attention_mask`` ``[d1_0, d1_1]``), so a
    ``--dim`` per name can give one sequence two lengths; onnx's message ("Incompatible dimensions") names the node
    alone, not the dimensions fixed."""
    if len(mapping) < 2 or "Incompatible dimensions" not in msg:
        return ""
    fixed = ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))
    return (f"; the dimensions fixed ({fixed}) may give one size of the model two values (an exporter may name it "
            "apart in each input, as torch.onnx.export(dynamo=False) names each input's dynamic axes): give such "
            "dimensions the same value")


def _contradicted_hint(g2, msg: str, mapping: dict[str, int]) -> str:
    """Why shape inference found a declared shape contradicted, where dimensions were fixed (``mapping``): the
    outputs the model declares for the node ONNX names, and the likely cause. torch.export specializes a
    dimension whose example size is 1 to 1 inside the graph while the exported input keeps it symbolic: at
    any other size the model's own shapes (and its Reshape targets) are wrong, and onnxruntime fails too."""
    found = re.search(r"node name: ([^)]*)\)", msg)
    if not mapping or "differ in dimension" not in msg or not found:
        return ""
    declared = {vi.name: [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                          for d in vi.type.tensor_type.shape.dim]
                for vi in list(g2.value_info) + list(g2.output) if vi.type.tensor_type.HasField("shape")}
    node = next((n for n in g2.node if n.name == found.group(1)), None)
    outs = [f"{o!r} is declared {declared[o]}" for o in (node.output if node is not None else ()) if o in declared]
    if not outs:
        return ""
    fixed = ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))
    return (f"; its output {', '.join(outs)}, which the dimensions fixed ({fixed}) contradict: the model was "
            "likely exported with that dimension fixed at its example's size (torch.export does so for a "
            "size of 1) and runs at that size only: import it at that size, or export it from a larger example")


def _disagree(declared: tuple[int, list | None], inferred: tuple[int, list | None]) -> bool:
    """Whether a declared (elem type, dims) and an inferred one contradict: both types known and different, or
    both ranks known and different, or a dimension both know at different values."""
    (de, dd), (ie, idims) = declared, inferred
    if de and ie and de != ie:
        return True
    if dd is None or idims is None:
        return False
    return len(dd) != len(idims) or any(a is not None and b is not None and a != b for a, b in zip(dd, idims))


def _contradicted_value(onnx, m2, g, msg: str, propagate: bool = True) -> str:
    """Which declared value (``value_info`` or graph output) shape inference found contradicted, and the node
    of the model's graph ``g`` that makes it (named as every error names it), found by inferring once more without the declarations: onnx's message names the op type
    alone ("(op_type:Relu): Inferred shape and existing shape differ in dimension 0: (2) vs (5)") where the
    node has no name, which left the user to search the model for the value. Empty where that finds none."""
    if "existing" not in msg and "merge shape" not in msg:
        return ""
    bare = onnx.ModelProto()
    bare.CopyFrom(m2)
    declared = {vi.name: t for vi in list(m2.graph.value_info) + list(m2.graph.output)
                if (t := _declared_type(vi)) is not None}
    del bare.graph.value_info[:]
    for vi in bare.graph.output:
        vi.ClearField("type")
    try:
        g = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=propagate).graph
    except Exception:  # noqa: BLE001 - inconsistent without the declarations too: onnx's message is all there is
        return ""
    inferred = {vi.name: t for vi in list(g.value_info) + list(g.output) if (t := _declared_type(vi)) is not None}
    for nid, n in zip(_node_ids(g), g.node):
        for o in n.output:
            if o in declared and o in inferred and _disagree(declared[o], inferred[o]):
                return (f"; value {o!r}, which node {nid!r} ({n.op_type}) makes, is declared "
                        f"{_show_type(*declared[o])}, but the node's inputs make it {_show_type(*inferred[o])}")
    return ""


def _explicit_defaults(onnx, g2, opsets: dict[str, int]) -> None:
    """Write out, on the nodes of ``g2`` (the copy given to shape inference), every attribute a node omits
    whose schema has a default.

    Why: ONNX's shape inference functions read an omitted attribute with a default of their own, which is
    not always the schema's. STFT's ``onesided`` defaults to 1 (onnxruntime and the reference evaluator
    return ``frame_length // 2 + 1`` frequency bins) but its inference function takes 0 and infers
    ``frame_length`` bins: a size no runtime allocates, and the refusal of a model that declares the right
    one. Written out, the attribute is read at the spec's value by every inference function."""
    defaults: dict[tuple[str, str], list] = {}
    for n in g2.node:
        domain = "" if n.domain == "ai.onnx" else n.domain
        key = (domain, n.op_type)
        if key not in defaults:
            defaults[key] = []
            if domain in opsets:
                try:
                    schema = onnx.defs.get_schema(n.op_type, opsets[domain], domain)
                except Exception:  # noqa: BLE001 - no schema (a custom op): nothing to write
                    pass
                else:
                    defaults[key] = [a.default_value for a in schema.attributes.values()
                                     if a.default_value.type != onnx.AttributeProto.UNDEFINED]
        have = {a.name for a in n.attribute}
        n.attribute.extend(d for d in defaults[key] if d.name not in have)


def _spaced_empty_equations(g2) -> None:
    """Give each Einsum of ``g2`` (the copy given to shape inference) whose ``equation`` is the empty string the
    equation ``" "``, which means the same (spaces are dropped: no input term has a label, the implicit output none).

    Why: ONNX's Einsum inference returns at once on an empty equation, leaving the output without a rank, and an
    Einsum ``""`` of a 0-D input (a scalar's copy, which onnxruntime runs: 4 bytes of float) was refused as a value
    "shape inference could not find" a rank of; of ``" "`` it infers the 0-D output, and of an input of rank 1 or more
    refuses the rank, as onnxruntime refuses to run it."""
    for n in g2.node:
        if n.op_type == "Einsum" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "equation" and a.type == a.STRING and a.s == b"":
                    a.s = b" "


def _read_small_external(onnx, t, base_dir: str | None, real_dir: str | None = None):
    """A copy of the small initializer ``t`` with its external data read in, or why it cannot be: its file
    must be in (or below) the model's folder and hold exactly the tensor's bytes at its offset."""
    from onnx import external_data_helper as edh

    bits = _BITS.get(t.data_type)
    if base_dir is None:
        return ("the model was passed as a ModelProto, so its folder is unknown: pass the model's path, "
                "external_data_dir=its folder, or a ModelProto loaded with its external data")
    if bits is None:
        return f"dtype {_dtype_name(onnx, t.data_type)}"
    want = _nbytes(bits, tuple(t.dims))
    try:
        info = edh.ExternalDataInfo(t)
        bad = _outside_folder(base_dir, info.location, real_dir)
        if bad is not None:
            return str(bad)
        path = _data_path(base_dir, info.location)   # a link is followed (onnx's loader refuses links)
        size, offset = os.path.getsize(path), info.offset or 0
        length = size - offset if info.length is None else info.length   # (none: the rest of the file)
        if info.length is None and offset > size:   # (no length: "length -4080" said nothing)
            return f"its data file {info.location!r} ends at byte {size}, before its offset {offset}"
        if offset + max(length, 0) > size:
            return (f"its data file {info.location!r} ends at byte {size}, before its data does (offset {offset}, "
                    f"length {length})")
        if length != want:
            return f"its data file {info.location!r} holds {length} bytes for it, not {want}"
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        folder = _data_root(base_dir, real_dir, path) or base_dir
        resolved = os.path.relpath(os.path.realpath(path), folder)
        for e in copy.external_data:
            if e.key == "location":
                e.value = resolved
        edh.load_external_data_for_tensor(copy, folder)
    except Exception as exc:  # noqa: BLE001 - a missing or short file, a location outside the folder
        return f"its data could not be read: {first_line(exc)}"
    if len(copy.raw_data) != want:
        return f"its data file holds {len(copy.raw_data)} bytes for it, not {want}"
    return copy


def _default_domain_as_empty(onnx, model, m2) -> None:
    """Give ``m2`` (the copy for shape inference, its nodes copied) the model's opset imports, and name the
    default domain "" in them and on its nodes, where the model spells it ``ai.onnx``.

    Why: ``ai.onnx`` is the default domain's name (onnxruntime runs a ``Relu`` of domain ``ai.onnx`` under an
    import of ``""``, and the reverse), but onnx's shape inference knows the default domain only as "": such a
    node failed inference ("No opset import for domain ai.onnx") or was left without a shape, and the model
    was refused. ``_check_opset`` made sure the two spellings name one version."""
    seen = set()
    for o in model.opset_import:
        domain = "" if o.domain == "ai.onnx" else o.domain
        if domain not in seen:
            seen.add(domain)
            m2.opset_import.append(onnx.helper.make_opsetid(domain, o.version))
    for n in m2.graph.node:
        if n.domain == "ai.onnx":
            n.domain = ""


def _read_small_attribute_tensors(onnx, g2, base_dir: str | None, unread: dict[str, str] | None,
                                  hidden: dict[str, str], g, real_dir: str | None = None) -> None:
    """Read in, on the nodes of ``g2`` (the copy given to shape inference), the external data of every small
    tensor attribute (a ``Constant``'s value, a ``ConstantOfShape``'s fill), as ``_read_small_external`` reads
    small initializers: only from a file in the model's folder. Folding such a node evaluated its tensor with
    onnx's loader, which read the data file relative to the working directory, not the model's folder: any
    file there (or a named pipe, which blocks) decided a Reshape's shape. One that cannot be read stays
    external, so that its node is never folded (``_external_attribute``), and is recorded in ``unread`` (its
    node's outputs in ``hidden``). ``g``: the model's graph, whose value names the new inputs stay clear of."""
    taken: set[str] | None = None   # every value name, gathered once (per unread Constant it was quadratic)
    for n in g2.node:
        for a in n.attribute:
            for t in [a.t] if a.HasField("t") else list(a.tensors):
                if t.data_location != onnx.TensorProto.EXTERNAL or math.prod(t.dims) > SMALL_INITIALIZER:
                    continue
                loaded = _read_small_external(onnx, t, base_dir, real_dir)
                if isinstance(loaded, str):
                    which = f"the {a.name!r} tensor of node {n.name or n.op_type!r}"
                    if unread is not None:
                        unread[which] = loaded
                    hidden.update((o, which) for o in n.output if o)
                    if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and a.name == "value":
                        taken = _value_names(g) if taken is None else taken
                        _as_unknown_value(onnx, g2, n, t, taken)
                        break
                else:
                    t.CopyFrom(loaded)
                    t.data_location = onnx.TensorProto.DEFAULT
                    del t.external_data[:]


def _elem_types(g2) -> dict[str, int]:
    """``{value: elem type}`` of the values graph ``g2`` types without inference: its initializers, Constants'
    tensors, inputs and declarations."""
    elems = {vi.name: vi.type.tensor_type.elem_type for vi in (*g2.input, *g2.value_info, *g2.output)
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type}
    elems.update((t.name, t.data_type) for t in g2.initializer)
    elems.update((n.output[0], n.attribute[0].t.data_type) for n in g2.node
                 if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and len(n.attribute) == 1
                 and n.attribute[0].name == "value")
    return elems


#: the element types of Range's kernels (the standard Range-11 and ``com.microsoft:Range``): float, int32, int64,
#: double, int16
RANGE_TYPES = frozenset({1, 6, 7, 11, 5})


def _standard_ort_ranges(onnx, g2, opset: int) -> None:
    """Each ``com.microsoft:Range`` of the inference copy ``g2`` replaced by the standard Range it computes (its
    omitted ``delta`` given as a Constant 1 of the start's type), where the default domain's ``opset`` has Range
    (11 and later), so that onnx's inference, the importer's folding and ``_exact_float_ranges`` size it as they
    size the standard one. onnxruntime runs the two with one kernel (``ceil((limit - start) / delta)`` elements,
    ``delta`` 1 where omitted; float, double, int16, int32 and int64 both).

    Why: a ``com.microsoft:Range`` of constants was refused ("value 'y' has no type or shape") where it has no
    ``delta`` (``Range(0, 9)``: onnxruntime's inference reads all three inputs or sizes nothing) or is of floats
    (``Range(0.3, 5.3, 0.2)``, 26 elements). One whose inputs follow what the graph inputs hold stays refused as
    data-dependent (``ORT_SHAPE_INPUTS``), as the standard one is."""
    if opset < 11 or not any(n.op_type == "Range" and n.domain == ORT_DOMAIN for n in g2.node):
        return
    elems = _elem_types(g2)
    taken = _value_names(g2)
    nodes = []
    for n in g2.node:
        ins = list(n.input)
        if n.op_type != "Range" or n.domain != ORT_DOMAIN or not 2 <= len(ins) <= 3 or not all(ins[:2]):
            nodes.append(n)
            continue
        before = []
        if len(ins) == 2 or not ins[2]:
            elem = elems.get(ins[0]) or elems.get(ins[1])
            if elem is None and opset < 15:
                nodes.append(n)   # (a type not known before inference, and no CastLike to take it then)
                continue
            if elem is not None and elem not in RANGE_TYPES:
                nodes.append(n)   # (a type onnxruntime's Range has no kernel for: left to its inference)
                continue
            one = _fresh_name(f"{n.output[0]}::delta", taken)
            before.append(onnx.helper.make_node("Constant", [], [one], value=onnx.helper.make_tensor(
                one, elem or onnx.TensorProto.INT64, [], [1])))
            if elem is None:   # the start's type, whatever inference finds it to be
                like = _fresh_name(f"{n.output[0]}::delta", taken)
                before.append(onnx.helper.make_node("CastLike", [one, ins[0]], [like]))
                one = like
            ins = [*ins[:2], one]
        standard = onnx.NodeProto()
        standard.CopyFrom(n)
        standard.domain = ""
        del standard.input[:]
        standard.input.extend(ins)
        nodes.extend([*before, standard])
    del g2.node[:]
    g2.node.extend(nodes)


def _exact_float_ranges(onnx, g2) -> None:
    """Each float32 Range of the inference copy ``g2`` whose inputs are initializers or Constants, and whose length
    ONNX's inference gets wrong, replaced as ``_exact_range`` says (a Range of computed inputs: ``_fold_round``).
    Only scalars are read, and only where there is a Range: every Constant was converted to numpy, whatever its
    size, in every import (a thirtieth of a 20,000-node chain's)."""
    if not any(n.op_type == "Range" for n in g2.node):
        return
    values = {v: a[0] for v, a in ((t.name, _to_array(t)) for t in g2.initializer if math.prod(t.dims) == 1) if a}
    values.update((n.output[0], a[0]) for n, a in ((n, _to_array(n.attribute[0].t)) for n in g2.node
                  if n.op_type == "Constant" and n.output and len(n.attribute) == 1 and n.attribute[0].name == "value"
                  and math.prod(n.attribute[0].t.dims) == 1) if a)
    nodes, changed, taken = [], False, _value_names(g2)
    for n in g2.node:
        exact = _exact_range(onnx, n, values, g2, taken)
        nodes.extend([n] if exact is None else exact[0])
        changed = changed or exact is not None
    if changed:
        del g2.node[:]
        g2.node.extend(nodes)


def _empty_concat_stand_ins(onnx, g2, declared: dict, source: str) -> None:
    """Each input of a Concat of the inference copy ``g2`` (default domain) that is a graph input empty once
    ``--dim`` fixed its dimensions read through a stand-in input of its type and rank whose dimensions off the
    Concat's ``axis`` are unknown: ONNX's inference then sizes the Concat as onnxruntime's kernel does, which holds
    only the inputs holding elements to each other (the first such one gives the dimensions off the axis) and adds
    every input's ``axis`` dimension, an empty one's too. Where every input is such an empty one, the first keeps
    its declaration (onnxruntime's reference then).

    Why: ONNX's inference holds every input to the others off the axis, so a Concat of an input [N, K] with
    [2, 3] along axis 0, fixed at N=0, K=7, was refused ("ONNX shape inference failed: ... Inferred=3 Declared=7"),
    where onnxruntime, which loads the model with N and K symbolic, writes [2, 3]. What onnxruntime's inference
    refuses at load, the graph inputs' dimensions the model itself fixes (``declared``: before ``--dim``) differing
    off the axis, is refused here naming the node (``_check_fixed_concat_dims``)."""
    inputs = {vi.name: vi for vi in g2.input if vi.type.HasField("tensor_type")}
    taken = _value_names(g2)

    def empty(v: str) -> bool:
        dims = inputs[v].type.tensor_type.shape.dim if v in inputs and v in declared else None
        return bool(dims) and all(d.HasField("dim_value") for d in dims) and math.prod(d.dim_value
                                                                                      for d in dims) == 0

    for n in g2.node:
        if n.op_type != "Concat" or n.domain not in ("", "ai.onnx") or not any(empty(v) for v in n.input):
            continue
        axis = next((a.i for a in n.attribute if a.name == "axis"), None)
        _check_fixed_concat_dims(n, [declared.get(v) for v in n.input], axis, source)
        for k in range(1 if all(empty(v) for v in n.input) else 0, len(n.input)):
            v = n.input[k]
            if not empty(v):
                continue
            dims = inputs[v].type.tensor_type.shape.dim
            at = None if axis is None or not -len(dims) <= axis < len(dims) else axis % len(dims)
            stand_in = _fresh_name(f"{v}::empty", taken)
            shape = [d.dim_value if j == at else None for j, d in enumerate(dims)]
            g2.input.append(onnx.helper.make_tensor_value_info(stand_in, inputs[v].type.tensor_type.elem_type, shape))
            n.input[k] = stand_in


def _check_fixed_concat_dims(n, declared: list, axis: int | None, source: str) -> None:
    """GraphError naming Concat ``n`` where two of its graph inputs' declarations (``declared``, None for an input
    of another kind) fix one dimension off ``axis`` at two sizes: onnxruntime's inference refuses the model at load,
    whatever ``--dim`` makes empty (``_empty_concat_stand_ins`` lets ONNX's inference pass over those inputs)."""
    shapes = [(v.name, [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim])
              for v in declared if v is not None and v.type.HasField("tensor_type")]
    rank = len(shapes[0][1]) if shapes else 0
    at = None if axis is None or not -rank <= axis < rank else axis % rank
    for name, dims in shapes:
        if len(dims) != rank:
            return   # (ONNX's inference refuses other ranks itself, naming them)
        for j, d in enumerate(dims):
            first = next(((m, e[j]) for m, e in shapes if e[j] is not None), None)
            if j != at and d is not None and first is not None and d != first[1]:
                raise GraphError(f"{source}: node {n.name or n.op_type!r} (Concat): its inputs {first[0]!r} and "
                                 f"{name!r} declare their dimension {j} (off its axis {axis}) {first[1]} and {d}: "
                                 "onnxruntime refuses to load the model")


def _mvn_as_identity(onnx, g2) -> None:
    """Each MeanVarianceNormalization of the inference copy ``g2`` (default domain, opset 9 on) replaced by an
    Identity of its input: its output has its input's shape and type whatever its axes and type.

    Why: ONNX infers the op through its function body, which fails where onnxruntime runs the node: its ReduceMean
    refuses an axis outside the input's rank ("axes=[0, 9]" on a rank-4 input), while onnxruntime's kernel normalizes
    over the axes in range; and its Add of a float32 epsilon refuses a float16 input ("(op_type:Add): B has
    inconsistent type tensor(float)") at every opset, while onnxruntime 1.32 runs float16 at each opset where it
    does not expand that body (casting it to its float kernel: opsets 11, 12, 14-17, 19 on). The rules onnxruntime
    does apply are checked by name after inference: no axis in range (``_check_mvn_axes``), a type it has no kernel
    for or whose function body it expands and cannot type (``check_mvn_type``)."""
    for n in g2.node:
        if n.op_type != "MeanVarianceNormalization" or n.domain not in ("", "ai.onnx") or any(
                a.name != "axes" for a in n.attribute) or not n.input or not n.input[0] or not n.output:
            continue
        n.op_type = "Identity"
        n.domain = ""
        n.doc_string = SHAPE_ONLY   # (its shape, not its value: the fold leaves the normalized value unknown)
        del n.attribute[:]
        del n.input[1:]
        del n.output[1:]


def _conv_transpose_output_shapes(onnx, g2, opset: int) -> None:
    """Each ConvTranspose of the inference copy ``g2`` with an ``output_shape`` attribute (default domain) replaced
    by one without it, no ``pads`` or ``auto_pad`` and ``output_padding`` grown by ``stride - 1``,
    whose output a Slice cuts to ``output_shape`` along the last ``len(output_shape)`` axes: the size onnxruntime's
    kernel writes (``output_shape`` itself, the padding computed from it), wherever onnxruntime runs the node at all
    (an ``output_shape`` at most ``stride - 1`` past the unpadded size; ``_check_conv_transpose`` refuses the rest).

    Why: ONNX's inference, meeting an ``output_shape`` smaller than the input's spatial size, gives up half-way and
    leaves a shape of the batch and channel dimensions alone: a ConvTranspose of ``[1, 1, 5]`` to ``output_shape=[3]``
    was planned ``[1, 1]`` (4 bytes) and onnxruntime writes ``[1, 1, 3]`` (12) into it; where the model declared
    ``[1, 1, 3]`` (or a Concat of it with a skip connection followed) the import failed in shape inference."""
    import numpy as np
    from onnx import numpy_helper

    targets = {k for k, n in enumerate(g2.node) if n.op_type == "ConvTranspose" and n.domain in ("", "ai.onnx")
               and n.output and n.output[0] and any(a.name == "output_shape" and a.ints for a in n.attribute)}
    if not targets:
        return
    taken = _value_names(g2)
    nodes = []
    for i, n in enumerate(g2.node):
        attrs = {a.name: a for a in n.attribute}
        if i not in targets or ("pads" in attrs and attrs["auto_pad"].s not in (b"", b"NOTSET") if "auto_pad" in attrs
                                else False):   # (ONNX's inference refuses the pair)
            nodes.append(n)
            continue
        out = list(attrs["output_shape"].ints)
        k = len(out)
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * k
        adj = list(attrs["output_padding"].ints) if "output_padding" in attrs else [0] * k
        if len(strides) != k or len(adj) != k or min(strides) < 1 or min(out) < 1:
            nodes.append(n)   # (left to ONNX's inference and _check_conv_transpose, which refuse them)
            continue
        y = n.output[0]
        full = _fresh_name(f"{y}::full", taken)
        wide = onnx.NodeProto()
        wide.CopyFrom(n)
        wide.output[0] = full
        del wide.attribute[:]
        wide.attribute.extend(a for a in n.attribute if a.name not in ("output_shape", "pads", "auto_pad",
                                                                          "output_padding"))
        wide.attribute.append(onnx.helper.make_attribute("output_padding", [a + s - 1 for a, s in zip(adj, strides)]))
        nodes.append(wide)
        if opset < 10:   # (Slice-1 takes attributes; its negative axes are sized by _slice1_shape)
            nodes.append(onnx.helper.make_node("Slice", [full], [y], name=n.name, starts=[0] * k, ends=out,
                                               axes=list(range(-k, 0))))
            continue
        cut = [_fresh_name(f"{y}::{what}", taken) for what in ("starts", "ends", "axes")]
        for name, value in zip(cut, ([0] * k, out, list(range(-k, 0)))):
            nodes.append(onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
                np.array(value, np.int64), name)))
        nodes.append(onnx.helper.make_node("Slice", [full, *cut], [y], name=n.name))
    del g2.node[:]
    g2.node.extend(nodes)


def _standard_slice_ends(onnx, m2) -> bool:
    """Give each Slice of the inference copy ``m2`` whose known ends onnxruntime reads otherwise than ONNX's rule
    (``_ort_slice_ends``) the ends ONNX's rule reads as onnxruntime does, as a Constant of their own; True when any
    was. The declared shapes of what follows are dropped (``_forget_declared_after``): ONNX's count made them."""
    from onnx import numpy_helper

    opset = _default_opset(m2)
    slices = [n for n in m2.graph.node if n.op_type == "Slice" and len(n.input) >= 3]
    if opset < 10 or not slices:
        return False
    # (only the ends and steps read: every Constant to numpy in each fold round would cost a large model dearly)
    wanted = {v for n in slices for v in n.input[2::2] if v}
    values = {t.name: r[0] for t in m2.graph.initializer if t.name in wanted and math.prod(t.dims) <= MAX_FOLD_ELEMENTS
              for r in [_to_array(t)] if r is not None}
    values.update((n.output[0], r[0]) for n in m2.graph.node
                  if n.op_type == "Constant" and n.output and n.output[0] in wanted and len(n.attribute) == 1
                  and n.attribute[0].name == "value" for r in [_to_array(n.attribute[0].t)] if r is not None)
    nodes, taken, changed = [], None, set()
    for n in m2.graph.node:
        fixed = _ort_slice_ends(n, values, opset)
        if fixed is not None:
            taken = _value_names(m2.graph) if taken is None else taken
            name = _fresh_name(f"{n.input[2]}::ends", taken)
            nodes.append(onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(fixed, name)))
            n.input[2] = name
            changed.update(o for o in n.output if o)
        nodes.append(n)
    return _replace_nodes(m2.graph, nodes, changed)


def _stretched_sizes(n, x: tuple, values: dict, opset: int) -> tuple[dict[int, int], str] | None:
    """({axis: size}, how) of Resize ``n`` (11 and later) of an ``x``-shaped input to known ``sizes`` that are not
    kept in their aspect ratio: the sizes themselves on the axes they name (all, before ``axes`` in 18). None where
    they are unknown, of another length than the axes, or negative (refused elsewhere)."""
    attrs = {a.name: a for a in n.attribute}
    policy = attrs["keep_aspect_ratio_policy"].s if opset >= 18 and "keep_aspect_ratio_policy" in attrs else b"stretch"
    if policy != b"stretch" or len(n.input) < 4 or not n.input[3]:
        return None
    sizes = _flat(values.get(n.input[3]))
    axes = list(attrs["axes"].ints) if opset >= 18 and "axes" in attrs else list(range(len(x)))
    axes = [a + len(x) if a < 0 else a for a in axes]
    if (sizes is None or sizes.dtype.kind not in "iu" or len(sizes) != len(axes) or len(set(axes)) != len(axes)
            or any(not 0 <= a < len(x) for a in axes) or any(int(v) < 0 for v in sizes)):
        return None
    return {a: int(v) for a, v in zip(axes, sizes)}, f"sizes {[int(v) for v in sizes]}"


def _kept_resize_shapes(onnx, m2, inferred) -> bool:
    """Declare, in the inference copy ``m2``, the output shape of each Resize (11 and later) whose ``sizes`` are
    known and whose input is sized but output is not, as onnxruntime makes it (``_ort_resize_dims`` where they are
    kept in their aspect ratio, ``sizes`` themselves where stretched); True when any was.

    Why: ONNX's inference leaves a dimension its rule computes as 0 unknown, so a ``[1, 7, 2, 6]`` Resized to
    ``sizes=[1, 1]`` over axes ``[2, 3]``, ``not_larger`` (scale 1/6: ``[1, 7, 0, 1]``, which onnxruntime writes)
    was refused as a dimension ONNX "could not derive", although nothing of it depends on what the inputs hold; so
    was a Resize of an empty batch to ``sizes=[0, 3, 7, 3]`` (round 67: the sizes an exporter computes from the
    input's ``Shape``)."""

    opset = _default_opset(m2)
    resizes = [n for n in m2.graph.node if n.op_type == "Resize" and n.domain in ("", "ai.onnx") and len(n.input) > 3
               and n.input[3] and n.output and n.output[0]]
    if opset < 11 or not resizes:
        return False
    shapes = _static_shapes(inferred)
    wanted = {n.input[3] for n in resizes}
    values = {t.name: r[0] for t in m2.graph.initializer if t.name in wanted and math.prod(t.dims) <= MAX_FOLD_ELEMENTS
              for r in [_to_array(t)] if r is not None}
    values.update((n.output[0], r[0]) for n in m2.graph.node
                  if n.op_type == "Constant" and n.output and n.output[0] in wanted and len(n.attribute) == 1
                  and n.attribute[0].name == "value" for r in [_to_array(n.attribute[0].t)] if r is not None)
    elems = _elem_types(inferred)
    changed = False
    for n in resizes:
        x, out = shapes.get(n.input[0]), n.output[0]
        found = _ort_resize_dims(n, x, values, opset) if x is not None and out not in shapes else None
        found = found or (_stretched_sizes(n, x, values, opset) if x is not None and out not in shapes else None)
        if not found or n.input[0] not in elems or any(d < 0 for d in found[0].values()):
            continue
        _declare(m2, out, elems[n.input[0]], [found[0].get(a, d) for a, d in enumerate(x)])
        changed = True
    return changed


def _declare(m2, out: str, elem: int, dims: list[int]) -> None:
    """Type ``out`` in the inference copy ``m2`` as ``elem`` of ``dims``: its graph output's or value info's entry
    replaced where it has one, else a value info added."""
    from onnx import helper

    typed = helper.make_tensor_value_info(out, elem, dims)
    held = next((vi for vi in (*m2.graph.output, *m2.graph.value_info) if vi.name == out), None)
    if held is None:
        m2.graph.value_info.append(typed)
    else:
        held.type.CopyFrom(typed.type)


def _zero_hidden_rnn_shapes(m2, inferred) -> bool:
    """Declare, in the inference copy ``m2``, the outputs of each RNN of ``hidden_size=0`` whose input ``X`` is
    sized and outputs are not: ``Y`` ``[seq, dirs, batch, 0]``, ``Y_h`` ``[dirs, batch, 0]``, as onnxruntime and
    onnx's reference make them; True when any was.

    Why: ONNX's inference sizes the hidden dimension only from a positive ``hidden_size``, so an RNN of 0 (which
    onnxruntime runs, writing no byte) was refused as a dimension ONNX "could not derive". A GRU or LSTM of 0, and
    ``layout=1``, are refused before inference (``model_checks``)."""

    rnns = [n for n in m2.graph.node if n.op_type == "RNN" and n.domain in ("", "ai.onnx") and n.input
            and any(a.name == "hidden_size" and a.i == 0 for a in n.attribute)]
    if not rnns:
        return False
    shapes, elems = _static_shapes(inferred), _elem_types(inferred)
    changed = False
    for n in rnns:
        x = shapes.get(n.input[0])
        if x is None or len(x) != 3 or n.input[0] not in elems:
            continue
        dirs = 2 if any(a.name == "direction" and a.s == b"bidirectional" for a in n.attribute) else 1
        for out, dims in zip(n.output, ([x[0], dirs, x[1], 0], [dirs, x[1], 0])):
            if not out or out in shapes:
                continue
            _declare(m2, out, elems[n.input[0]], dims)
            changed = True
    return changed


def _as_unknown_value(onnx, g2, n, t, taken: set[str]) -> None:
    """Make the ``Constant`` node ``n`` of ``g2`` an ``Identity`` of a new graph input typed as its tensor ``t``:
    a value of known type and shape whose data inference does not know. ``taken``: the value names in use
    (``_value_names``), the new input's added.

    Why: ``t``'s data could not be read; left external, onnx's data propagation failed on it ("Cannot parse
    data from external tensors. Please load external data into raw data") where it sizes a Reshape or Expand,
    and the import stopped with that advice instead of naming the tensor and why it was not read. The node
    stays (as an Identity) so that ``g2``'s nodes keep the model's positions."""
    name = f"{n.output[0]}::unread"
    while name in taken:
        name += "_"
    taken.add(name)
    g2.input.append(onnx.helper.make_tensor_value_info(name, t.data_type, list(t.dims)))
    n.op_type = "Identity"
    del n.attribute[:]
    n.input.append(name)


def _slices_unsized(m2, inferred) -> bool:
    """Whether a Slice of ``m2`` reads a value ``inferred`` leaves without a static shape: only then can a fold make a
    negative dimension it reads known (``_check_slice_data``, a whole inference, is not paid in every fold round)."""
    data = {n.input[0] for n in m2.graph.node if n.op_type == "Slice" and n.input and n.input[0]}
    if not data:
        return False
    static = _static_shapes(inferred)
    return any(v not in static for v in data)


def _check_slice_data(onnx, m2, g, source: str, propagate: bool = True) -> None:
    """Refuse a value of a negative dimension that a Slice of the inference copy ``m2`` slices, naming the node
    that makes it (``g``: the model's graph, for the node's id), before ONNX's inference of the whole model meets
    it: the Slices left out, the model is inferred leniently, and each Slice's data checked.

    Why: onnx's Slice inference clamps a start into ``[0, dim - 1]`` under a C++ assertion, which aborts the process
    where ``dim`` is negative: a Pad by negative pads (``[2, 3]`` padded by -2 on each side of axis 1 is ``[2, -1]``),
    a Conv or pool of a kernel larger than its input, an Expand, a TopK or a Resize of negative sizes, followed by
    a Slice, killed ``memplan import`` with SIGABRT, where the same value followed by a Relu is refused. Slices are
    put back a round at a time, those whose data no left-out Slice feeds, so that a negative dimension made after
    another Slice (a Pad by negative pads of a Slice's output) is seen too."""
    slices = [k for k, n in enumerate(m2.graph.node) if n.op_type == "Slice" and n.domain in ("", "ai.onnx")
              and n.input and n.input[0]]
    left_out = set(slices)
    while left_out:
        dims = _lenient_dims(onnx, m2, left_out, propagate)
        if dims is None:
            return
        def negative(v: str, dims=dims):
            return next(((i, d.dim_value) for i, d in enumerate(dims.get(v, ())) if d.HasField("dim_value")
                         and d.dim_value < 0), None)

        sliced = next((m2.graph.node[k].input[0] for k in sorted(left_out) if negative(m2.graph.node[k].input[0])),
                      None)
        if sliced is not None:
            # the node that first makes a negative dimension (the Slice's data may carry it on: a Transpose of it)
            feeds = _feeding(g.node, sliced)   # (another node's negative value, not read by the Slice, is not it)
            at, v = next(((j, o) for j, n in enumerate(g.node) for o in n.output if o in feeds and negative(o)),
                         (None, sliced))
            i, d = negative(v)
            who = f"node {_node_ids(g)[at]!r} ({g.node[at].op_type}): " if at is not None else ""
            raise GraphError(f"{source}: {who}value {v!r} dimension {i} is negative ({d}), which no tensor has")
        after = _computed_after(m2.graph.node, left_out)
        clean = _clean_after(m2.graph.node, left_out, after, lambda v: negative(v) is None)
        safe = {k for k in left_out if m2.graph.node[k].input[0] not in after or m2.graph.node[k].input[0] in clean}
        if not safe:
            return
        left_out -= safe   # (their data checked: inferred with them, what they feed is known in the next round)


def _lenient_dims(onnx, m2, left_out: set[int], propagate: bool = True) -> dict | None:
    """Each value's inferred dims in ``m2`` without its nodes ``left_out`` (inferred leniently), or None where even
    that inference fails (the whole model's inference then says what is wrong)."""
    m3 = onnx.ModelProto()
    m3.CopyFrom(m2)
    del m3.graph.node[:]
    m3.graph.node.extend(n for k, n in enumerate(m2.graph.node) if k not in left_out)
    try:
        inferred = onnx.shape_inference.infer_shapes(m3, check_type=False, strict_mode=False,
                                                     data_prop=propagate).graph
    except Exception:  # noqa: BLE001 - the whole model's inference says what is wrong
        return None
    return {vi.name: vi.type.tensor_type.shape.dim for vi in (*inferred.value_info, *inferred.output, *inferred.input)
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}


def _feeding(nodes, value: str) -> set[str]:
    """``value`` and every value it is computed from in the topologically ordered ``nodes``: where a negative
    dimension a Slice reads can have been made."""
    feeds = {value}
    for n in reversed(nodes):
        if any(o in feeds for o in n.output if o):
            feeds.update(i for i in n.input if i)
    return feeds


#: standard ops whose output dimensions onnx infers from their inputs' dimensions alone (equal, broadcast, summed,
#: permuted, kept or dropped), so none is negative unless an input's is; a Reshape's target with a negative entry
#: other than -1 leaves its shape unknown, never negative
NO_NEGATIVE_DIM_OPS = frozenset({
    "Abs", "Add", "And", "Cast", "Ceil", "Concat", "Cos", "Div", "Equal", "Erf", "Exp", "Floor", "Gather", "Gelu",
    "Greater", "GreaterOrEqual", "Identity", "LayerNormalization", "Less", "LessOrEqual", "Log", "LogSoftmax",
    "MatMul", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Reciprocal", "Relu", "Reshape", "Round",
    "Shape", "Sigmoid", "Sign", "Sin", "Softmax", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
})


def _clean_after(nodes, left_out: set[int], after: set[str], known_clean) -> set[str]:
    """The values of ``after`` (computed from a left-out Slice) that cannot hold a negative dimension once every
    Slice is back: each made by a Slice of a clean value or by an op of ``NO_NEGATIVE_DIM_OPS`` of clean inputs,
    a value not in ``after`` being clean where ``known_clean`` says its inferred dims are. Why: without it a chain
    of Slices put back one per round cost a whole inference per link (a language model's rotary Slices, layer after
    layer); with it only the links through an op that can make a negative dimension (a Pad, a Conv) wait."""
    clean: set[str] = set()
    def ok(v: str) -> bool:
        return not v or (v in clean if v in after else known_clean(v))
    for k, n in enumerate(nodes):
        outs = [o for o in n.output if o]
        if not outs or not any(o in after for o in outs):
            continue
        standard = n.domain in ("", "ai.onnx")
        if k in left_out and ok(n.input[0]) or standard and n.op_type in NO_NEGATIVE_DIM_OPS and all(map(ok, n.input)):
            clean.update(outs)
    return clean


def _computed_after(nodes, left_out: set[int]) -> set[str]:
    """The values computed, in the topologically ordered ``nodes``, from an output of a node of ``left_out``: a
    Slice reading one is checked only once the Slices before it are back in the inference (what it reads is
    unknown while they are left out, and may be negative: a Pad by negative pads of a Slice's output)."""
    after = {o for k in left_out for o in nodes[k].output if o}
    for n in nodes:
        if any(i in after for i in n.input):
            after.update(o for o in n.output if o)
    return after


#: elements of a 1-D value above which ONNX's data propagation is not run on the model (``_propagates``): onnx makes
#: one dimension object per element of every 1-D value an Add, Sub, Mul, Cast, Concat, Gather or Slice reads (about a
#: microsecond and 200 bytes each), where a shape tensor has a handful; memplan's fold rounds size shape computations
#: without it
LONG_VECTOR = 1 << 18


def _is_long(dims) -> bool:
    """Whether ``dims`` (a TensorShapeProto's) are those of a 1-D value longer than ``LONG_VECTOR``."""
    return len(dims) == 1 and dims[0].HasField("dim_value") and dims[0].dim_value > LONG_VECTOR


def _long_vector(g) -> str | None:
    """The first value of the (inferred) graph ``g`` that a node reads and that is 1-D of a static length over
    ``LONG_VECTOR``, or None."""
    read = {v for n in g.node for v in n.input if v}
    for vi in (*g.input, *g.value_info, *g.output):
        if vi.name in read and vi.type.HasField("tensor_type") and _is_long(vi.type.tensor_type.shape.dim):
            return vi.name
    return next((t.name for t in g.initializer if t.name in read and len(t.dims) == 1 and t.dims[0] > LONG_VECTOR),
                None)


#: the element types a Cast to which ONNX's data propagation, passing the value on as it is, follows right: int64
#: alone (float rounds from 2**24, double from 2**53, the narrower integers wrap, bool is 0 or 1)
_EXACT_CAST_TYPES = frozenset({7})   # INT64


def _lossy_known_casts(onnx, m2) -> bool:
    """Whether a ``Cast`` (or ``CastLike``) of the inference copy ``m2`` to another element type than int64 reads a
    value known before run time (computed from shapes and constants alone), so that ONNX's data propagation may
    have carried it on unconverted.

    Why: onnx's propagator of a Cast passes the value it reads on as it is, whatever ``to`` says, and where every
    shape was static so no fold round ran: ``Cast(Cast(Shape(x[4097]), FLOAT16), INT64)`` was taken as 4097 where
    onnxruntime makes 4096 (float16 holds no 4097), and ``4100 - `` it, the length of a ConstantOfShape, planned
    3 floats where onnxruntime writes 4 (an overrun); likewise a Cast to int8 or int32 (wrapped), bool or bfloat16.
    Where this holds inference runs without data propagation until the fold rounds have computed each such Cast, as
    onnxruntime converts (``_fold_round``; a float it cannot tell, ``fold._unsure_cast``, is left unknown)."""
    g = m2.graph
    opset = _default_opset(m2)
    # (what ONNX's propagation starts from: an int32/int64 initializer or Constant of rank 0 or 1, a Shape, a Size)
    known = {t.name for t in g.initializer if t.data_type in (6, 7) and len(t.dims) <= 1}
    follows: dict[str, bool] = {}   # op -> whether ONNX's inference propagates its data
    for n in g.node:
        if n.domain not in ("", "ai.onnx") or not n.output:
            continue
        if n.op_type == "Constant":
            if any(a.name in ("value_int", "value_ints") or (a.name == "value" and a.t.data_type in (6, 7)
                                                              and len(a.t.dims) <= 1) for a in n.attribute):
                known.update(o for o in n.output if o)
            continue
        if n.op_type in ("Shape", "Size") or (n.input and all(not v or v in known for v in n.input)):
            if n.op_type == "CastLike" or (n.op_type == "Cast" and next(
                    (a.i for a in n.attribute if a.name == "to"), None) not in _EXACT_CAST_TYPES):
                return True
            if n.op_type not in follows:
                follows[n.op_type] = _may_propagate(onnx, "", n.op_type, opset)
            if follows[n.op_type]:
                known.update(o for o in n.output if o)
    return False


def _propagates(onnx, m2) -> bool:
    """Whether shape inference of the inference copy ``m2`` may run ONNX's data propagation: not where a node
    reads a long 1-D value (``_is_long``), as a lenient inference without it (cheap; its Slices left out, as
    ``_check_slice_data`` leaves them, since onnx's Slice inference aborts on a negative dimension) finds them.

    Why: onnx's data propagation costs time and memory in proportion to the length of every 1-D value an Add, Sub,
    Mul, Cast, Concat, Gather or Slice reads, shape or not: ten Adds of 1-D float tensors of 4M elements (a 168 MB
    model) took 72 s and 6.4 GB to import, forty of 16M elements ran past ten minutes and 22 GB."""
    if _wide_slice_steps(onnx, m2):   # (onnx's data propagation never returns on them, or exhausts memory)
        return False
    if _propagation_free(onnx, m2):   # (data propagation changes no inference of it: no need to ask)
        return True
    slices = {k for k, n in enumerate(m2.graph.node) if n.op_type == "Slice" and n.domain in ("", "ai.onnx")}
    dims = _lenient_dims(onnx, m2, slices, propagate=False)
    read = {v for n in m2.graph.node for v in n.input if v}
    return dims is None or not any(v in read and _is_long(d) for v, d in dims.items())


#: the ops whose data propagation carries a Slice step's values on unchanged: how many of their inputs carry them
#: (``_wide_slice_steps``; Concat: all, the others: the data input alone)
_STEP_CARRIERS = {"Identity": 1, "Cast": 1, "Concat": 2**31, "Unsqueeze": 1, "Squeeze": 1, "Reshape": 1,
                  "Flatten": 1, "CastLike": 1}


def _wide_slice_steps(onnx, m2) -> bool:
    """Whether a Slice of the inference copy ``m2`` has a known step outside int32's range (``2**31``, ``2**62``).

    Why: onnx's data propagation of a Slice of a 1-D value (which it runs on any 1-D value, shape or not) takes the
    step as an int32: ``2**32`` or ``2**62`` (0 as int32) grew a list until the process held all memory and the
    kernel killed it, ``2**31`` never returned; onnxruntime runs such a Slice (taking one element). Inference without
    data propagation sizes it (``_propagates``).

    A step is followed back through the ops whose data propagation passes a constant's values on unchanged
    (``_STEP_CARRIERS``: an ``Identity``, ``Cast``, ``Concat``, ``Unsqueeze``...) to the constants it is made of.
    Why: a ``Concat``, ``Cast`` or ``Unsqueeze`` of a constant ``2**32`` step took the process to all its memory
    as the constant itself did (review of round 67)."""
    steps = {n.input[4] for n in m2.graph.node if n.op_type == "Slice" and n.domain in ("", "ai.onnx")
             and len(n.input) > 4 and n.input[4]}
    if not steps:
        return False
    makers = {o: n for n in m2.graph.node if n.op_type in _STEP_CARRIERS and n.domain in ("", "ai.onnx")
              for o in n.output[:1] if o}
    wanted, todo = set(steps), list(steps)
    while todo:   # (the values the steps are carried from: each value once, so a long chain costs its length)
        maker = makers.get(todo.pop())
        for i in maker.input[:_STEP_CARRIERS[maker.op_type]] if maker is not None else ():
            if i and i not in wanted:
                wanted.add(i)
                todo.append(i)
    values = _initializer_or_constant_values(onnx, m2.graph, wanted)
    return any(v.dtype.kind in "iu" and v.size and (int(v.max()) > 2**31 - 1 or int(v.min()) < -2**31)
               for v in values.values())


def _propagation_free(onnx, m2) -> bool:
    """Whether no node of the inference copy ``m2`` (its subgraphs' too) is of an op whose schema at the model's
    opset has a data propagation function (``Shape``, ``Gather``, ``Concat``, ``Add``...) or might
    run one inside a function body (an op without its own inference function but with a body; a model-local
    function), so that ONNX's inference of ``m2`` is the same with data propagation or without: ``_propagates``'s
    answer then changes nothing, and ``True`` stands for it. The importer's rewrites of ``m2`` (folds) put only
    ``Constant`` nodes and initializers in, so the answer holds for them too.

    Why: ``_propagates`` asked a whole extra lenient shape inference of every model (0.74 of 10.2 s CPU and
    a copy of the model for a 100,000-node Relu chain) only to decide a setting that, on a model of element-wise,
    matrix, convolution and pooling ops alone, has no effect."""
    if len(m2.functions):
        return False
    versions = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in m2.opset_import}
    ops: set[tuple[str, str]] = set()
    graphs = [m2.graph]
    while graphs:
        g = graphs.pop()
        for n in g.node:
            ops.add((n.domain, n.op_type))
            if len(n.attribute):
                for a in n.attribute:
                    if a.type == a.GRAPH:
                        graphs.append(a.g)
                    elif a.type == a.GRAPHS:
                        graphs.extend(a.graphs)
    return not any(_may_propagate(onnx, "" if d == "ai.onnx" else d, op, versions.get("" if d == "ai.onnx" else d))
                   for d, op in ops)


def _may_propagate(onnx, domain: str, op: str, version: int | None) -> bool:
    """Whether ONNX's inference of a node of ``op`` in ``domain`` at opset ``version`` may run data propagation:
    its schema has a propagation function, or it has no inference function of its own but a function body
    (inferred node by node, with propagation). An op onnx has no schema for is not inferred at all (False); a
    domain the model imports no opset for is not judged (True)."""
    if version is None:
        return True
    try:
        s = onnx.defs.get_schema(op, version, domain)
    except Exception:  # noqa: BLE001 - SchemaError: onnx defines no such op at that version, and infers none
        return False
    return bool(s.has_data_propagation_function or (not s.has_type_and_shape_inference_function
                                                    and (s.has_function or s.has_context_dependent_function)))


def _inferred_undeclared(onnx, m2, propagate: bool):
    """The graph ONNX's strict inference makes of ``m2`` with its ``value_info`` and output types dropped (what the
    nodes alone give), or None where that fails: how the declarations are judged against the nodes, by
    ``_merge_contradicted_shapes`` and ``_declarations_fill_gaps``."""
    bare = onnx.ModelProto()
    bare.CopyFrom(m2)
    del bare.graph.value_info[:]
    for vi in bare.graph.output:
        vi.ClearField("type")
    try:
        return onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=propagate).graph
    except Exception:  # noqa: BLE001 - ONNX's inference raises many kinds; every one means "no answer" here
        return None


def _merge_contradicted_shapes(onnx, m2, propagate: bool) -> bool:
    """Where the shapes ``m2`` declares (``value_info``, graph outputs) contradict what its nodes make, and only
    their shapes (no element type), rewrite each such declaration to the made shape (a dimension the nodes leave
    open: unknown), as onnxruntime merges them
    ("Error merging shape info ... Falling back to lenient merge": its kernels then write the sizes the nodes
    make); whether any was rewritten. A declaration whose element type is contradicted is left: onnxruntime
    refuses that model ("Type Error").

    Why: ONNX's strict inference refuses the model ("Inferred shape and existing shape differ in dimension 0:
    (2) vs (3)") and the import failed, for a model onnxruntime loads and runs at every opset; the sizes its
    kernels write are those of the nodes' inputs, which inference without the declarations finds."""
    made = _inferred_undeclared(onnx, m2, propagate)
    if made is None:   # inconsistent without the declarations too: not a contradicted declaration
        return False
    inferred = {vi.name: t for vi in list(made.value_info) + list(made.output) if (t := _declared_type(vi)) is not None}
    fixes = []
    for vi in list(m2.graph.value_info) + list(m2.graph.output):
        declared = _declared_type(vi)
        if declared is None or vi.name not in inferred or not _disagree(declared, inferred[vi.name]):
            continue
        (de, dd), (ie, idims) = declared, inferred[vi.name]
        if de and ie and de != ie:
            return False
        fixes.append((vi, dd, idims))
    for vi, dd, idims in fixes:
        shape = vi.type.tensor_type.shape
        if len(dd) != len(idims):
            vi.type.tensor_type.ClearField("shape")
            continue
        for d, made_dim in zip(shape.dim, idims):   # (a dimension the nodes leave open is not taken from a
            d.Clear()                                # declaration known wrong: onnxruntime's merge drops it too)
            if made_dim is not None:
                d.dim_value = made_dim
    return bool(fixes)


def _declarations_fill_gaps(onnx, m2, propagate: bool) -> bool:
    """Whether a shape the model declares (``value_info``, a graph output) for a value a standard op makes is static
    where the nodes alone leave it open: inference of ``m2`` without its declarations sizes it otherwise than fully.

    Why: ONNX's inference merges such a declaration in where the op's own inference leaves the dimensions unknown,
    so every shape looked static and no fold ran; the value the op's shape follows was never computed, and the
    declaration was planned unchecked. An ``Expand`` to a shape passed through an ``Identity`` or a ``Cast`` and
    declared ``[2, 3]`` was planned at 24 bytes where onnxruntime, which folds the Cast, writes its ``[4, 3]``: 48.
    Where this holds the fold rounds run, and a declaration the folded values contradict is merged as onnxruntime
    merges it (``_merge_contradicted_shapes``) or refused."""
    g = m2.graph
    opset = _default_opset(m2)
    consts = {t.name for t in g.initializer} | {n.output[0] for n in g.node if n.op_type == "Constant" and n.output}
    gaps = False   # (cheap first: a gap needs a size that follows a computed value, or an op without inference)
    standard: set[str] = set()
    inferring: dict[tuple[str, str], bool | None] = {}   # (domain, op) -> whether its schema infers shapes (None: no op)
    for n in g.node:
        key = (n.domain or "", n.op_type)
        if key not in inferring:
            inferring[key] = (onnx.defs.get_schema(n.op_type, key[0]).has_type_and_shape_inference_function
                              if key[0] in ("", "ai.onnx.ml") and onnx.defs.has(n.op_type, key[0]) else None)
        if inferring[key] is None:
            continue
        standard.update(o for o in n.output if o)
        gaps = gaps or not inferring[key] or any(i < len(n.input) and n.input[i] and n.input[i] not in consts
                                                 for i in _shape_inputs(n.op_type, opset))
    declared = [vi.name for vi in list(g.value_info) + list(g.output) if vi.name in standard
                and (t := _declared_type(vi)) is not None and t[1] is not None and None not in t[1]]
    if not gaps or not declared:
        return False
    made = _inferred_undeclared(onnx, m2, propagate)
    if made is None:   # inconsistent without the declarations: nothing to learn here
        return False
    sized = {vi.name for vi in list(made.value_info) + list(made.output)
             if (t := _declared_type(vi)) is not None and t[1] is not None and None not in t[1]}
    return any(v not in sized for v in declared)


def _run_inference(onnx, m2, source: str, folded: bool = False, propagate: bool = True, lenient: bool = False):
    """The inferred graph of ``m2``. After folding, a failure of ONNX's data propagation is retried
    without it: its Add/Sub/Mul propagators take every known value for a 1-D shape and refuse two
    folded values of other ranks that broadcast ((1, 1, 4, 1) + (2, 1, 1, 1): "Invalid rank").
    ``propagate``: whether to run data propagation at all (``_propagates``). ``lenient``: a declared shape the
    nodes contradict is merged into what they make (``_merge_contradicted_shapes``), as onnxruntime does, and
    inference reruns (``m2`` is rewritten so)."""
    try:
        out = onnx.shape_inference.infer_shapes(m2, check_type=True, strict_mode=True, data_prop=propagate)
    except Exception as exc:  # InferenceError, ValidationError: the model is inconsistent
        msg = first_line(exc)
        if lenient and _merge_contradicted_shapes(onnx, m2, propagate):
            return _run_inference(onnx, m2, source, folded, propagate)
        if propagate and (folded or "during data propagation" in msg):
            try:   # (onnx's propagators refuse an int64 product or sum that overflows, which onnxruntime wraps)
                return onnx.shape_inference.infer_shapes(m2, check_type=True, strict_mode=True).graph
            except Exception:  # noqa: BLE001 - the first error is the one to show
                pass
        raise GraphError(f"{source}: ONNX shape inference failed: {msg}") from None
    return out.graph


#: the words of onnx's ``ParseData`` where a shape inference function reads a tensor whose data lies in an external
#: file (onnxruntime's loader runs the same function on its initializers and fails the load with them)
EXTERNAL_PARSE = "Cannot parse data from external tensors"


#: ops onnxruntime's basic graph rewrites remove where they change nothing, so their reader reads their input itself:
#: ``Identity`` (EliminateIdentity) and a ``Cast`` to its input's own dtype (CastElimination)
_ELIDED = frozenset({"Identity", "Cast"})


def _eliminated_aliases(g, node_ids: list[str], consts: dict) -> dict[str, tuple[str, str]]:
    """``{value: (the constant it is, ' (through ...)' naming the nodes between)}`` for each value an ``Identity``,
    or a ``Cast`` to the dtype it reads, makes of a constant (or of such a value), its output no graph output.

    Why: onnxruntime's default optimization level removes those nodes before it resolves the graph again, so a
    ``Reshape(x, Identity(s))`` reads ``s`` itself and its inference parses ``s``'s data; ``s`` in an external file,
    onnxruntime refuses the model ("Cannot parse data from external tensors") while the importer, checking direct
    readers only, planned it. An ``Identity`` writing a graph output is kept (its input is a constant), and so is
    a ``Cast`` that changes the dtype (its output is a new tensor): neither is followed."""
    outputs = {v.name for v in g.output}
    same: dict[str, tuple[str, str]] = {}
    dtype = {v: t.data_type for v, (t, _) in consts.items()}
    for k, n in enumerate(g.node):
        if n.op_type not in _ELIDED or n.domain not in ("", "ai.onnx") or len(n.input) != 1 or len(n.output) != 1:
            continue
        src, out = n.input[0], n.output[0]
        root, via = same.get(src, (src, ""))
        if root not in consts or not out or out in outputs:
            continue
        if n.op_type == "Cast" and next((a.i for a in n.attribute if a.name == "to"), None) != dtype[root]:
            continue
        step = f"{n.op_type} {node_ids[k]!r}"
        same[out] = (root, f" (through {step})" if not via else via[:-1] + f", {step})")
    return same


def _check_external_parsed(onnx, model, node_ids: list[str], inferred, overridable: Collection[str]) -> None:
    """Refuse a model onnxruntime cannot load because a node's shape inference reads the data of a tensor that
    lies in an external file: a ``Reshape`` whose shape, a ``Slice`` whose starts, an ``Expand``, ``Tile``, ``Pad``,
    ``Resize``, ``TopK``, ``Squeeze``/``Unsqueeze``/Reduce ``axes``, ``Split``... is an initializer (or a ``Constant``'s
    ``value``) saved to external data (``onnx.save(..., size_threshold=0)``). Names the node, the tensor and its file.

    Why: onnxruntime hands every constant initializer (not one the caller may override, ``overridable``) to the
    op's ONNX inference function as its data, and onnx's ``ParseData`` refuses external data ("Cannot parse data from
    external tensors"), whether the file is there or not: onnxruntime refuses to load the model, while the importer
    read the small file itself and planned it. Each such node's inference runs here as onnxruntime runs it (its
    schema at the model's opset, its inputs' inferred types, the data of the constants it reads), so only the ops
    that parse that input are refused (a ``MatMul`` or ``Gather`` of an external weight is not: its inference reads
    no data)."""
    from onnx import shape_inference

    g = model.graph
    ext = onnx.TensorProto.EXTERNAL
    consts: dict[str, tuple[object, str]] = {}   # value -> (its TensorProto as onnxruntime holds it, what it is)
    for t in g.initializer:
        if t.name not in overridable and (t.data_location == ext or math.prod(t.dims) <= SMALL_INITIALIZER):
            consts[t.name] = (t, f"initializer {t.name!r}")
    for k, n in enumerate(g.node):   # (onnxruntime makes each Constant an initializer before inference)
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and n.attribute:
            a, what = n.attribute[0], f"the 'value' tensor of Constant {node_ids[k]!r}"
            if a.name == "value" and a.HasField("t") and (a.t.data_location == ext
                                                           or math.prod(a.t.dims) <= SMALL_INITIALIZER):
                consts[n.output[0]] = (a.t, what)
            elif a.name in ("value_int", "value_ints") and len(a.ints) <= SMALL_INITIALIZER:
                # (a Slice parses its starts only where its ends are known too: they are, to onnxruntime)
                consts[n.output[0]] = (onnx.helper.make_tensor(n.output[0], onnx.TensorProto.INT64,
                                                               [] if a.name == "value_int" else [len(a.ints)],
                                                               [a.i] if a.name == "value_int" else list(a.ints)), what)
    external = {v for v, (t, _) in consts.items() if t.data_location == ext}
    if not external:
        return
    same = _eliminated_aliases(g, node_ids, consts)
    types = {vi.name: vi.type for vi in [*inferred.input, *inferred.value_info, *inferred.output]}
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    imports = [onnx.helper.make_opsetid(d, v) for d, v in opsets.items()]
    for k, n in enumerate(g.node):
        source = {v: same.get(v, (v, ""))[0] for v in n.input}   # each input, or the constant it is once ORT elides
        read = [v for v in n.input if source[v] in external]
        domain = "" if n.domain == "ai.onnx" else n.domain
        if not read or domain not in ("", "ai.onnx.ml") or domain not in opsets:
            continue
        try:
            schema = onnx.defs.get_schema(n.op_type, opsets[domain], domain)
        except Exception:   # noqa: BLE001 - an op onnx has no schema for: nothing of onnx's parses its inputs
            continue
        data = {v: consts[source[v]][0] for v in n.input if source[v] in consts}
        given = {v: types[v] for v in n.input if v in types}
        given.update((v, onnx.helper.make_tensor_type_proto(t.data_type, list(t.dims)))
                     for v, t in data.items() if v not in given)
        try:
            shape_inference.infer_node_outputs(schema, n, given, data, {}, imports, model.ir_version)
        except Exception as exc:  # noqa: BLE001 - any other failure is inference's own, reported where it runs
            if EXTERNAL_PARSE not in str(exc):
                continue
            said = re.search(r"for tensor: (.*)$", first_line(exc))
            named = said.group(1).strip() if said else ""
            v = next((r for r in read if named in (r, source[r])), read[0])
            t, what = consts[source[v]]
            what += same.get(v, ("", ""))[1]
            location = next((e.value for e in t.external_data if e.key == "location"), "")
            raise GraphError(f"node {node_ids[k]!r} ({n.op_type}) reads {what} as data its shape follows, but that "
                             f"tensor's data lies in external file {location!r}: onnxruntime's shape inference cannot "
                             f"parse it (\"{EXTERNAL_PARSE}\") and refuses to load the model, whether the file is there "
                             "or not; keep such small tensors inside the model (save it with onnx.save(..., "
                             "save_as_external_data=True, size_threshold=1024), the default)") from None


#: the longest symbolic dimension name read as arithmetic (torch writes ``2*s77 + 1``); a longer one is a plain name
MAX_DIM_EXPRESSION = 200


def _dim_expression(param: str):
    """The parsed form of a symbolic dimension's name that is arithmetic over other names (``2*batch``,
    ``batch + 1``, ``batch*seq``, ``(seq - 1)//2``: what torch's dynamo exporter writes for a graph input of a
    derived ``Dim``, ``dynamic_shapes={"y": {0: 2 * batch}}``), or None for a plain name or anything else.

    Why: ONNX reads every name as its own symbol, so ``--dim batch=3`` left ``y``'s ``2*batch`` unfixed (refused:
    "pass --dim 2*batch=VALUE") and ``--batch 3`` fixed it at 3, where the exported program takes 6 rows."""
    import ast

    if len(param) > MAX_DIM_EXPRESSION:   # (a hostile name: Python's parser recurses, or runs out of memory, on
        return None                       # 100 000 operators)
    try:
        tree = ast.parse(param.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.USub,
               ast.UAdd, ast.Name, ast.Load, ast.Constant)
    nodes = list(ast.walk(tree))
    if isinstance(tree.body, ast.Name) or not any(isinstance(n, ast.Name) for n in nodes):
        return None
    if not all(isinstance(n, allowed) for n in nodes):
        return None
    if not all(type(n.value) is int for n in nodes if isinstance(n, ast.Constant)):
        return None
    return tree.body


def _expression_names(params) -> set[str]:
    """The names ``_dim_expression`` reads in ``params`` (``batch`` of ``2*batch + 1``): each may be fixed by
    ``--dim`` though no dimension is named by it alone (torch names an input of ``{0: 2 * batch}`` ``2*batch``)."""
    import ast

    names: set[str] = set()
    for p in params:
        tree = _dim_expression(p)
        if tree is not None:
            names.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return names


def _eval_dim(node, values) -> int | None:
    """``_dim_expression``'s tree evaluated over ``values`` (None: a name not among them, or a division by 0)."""
    import ast

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, ast.UnaryOp):
        v = _eval_dim(node.operand, values)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    a, b = _eval_dim(node.left, values), _eval_dim(node.right, values)
    if a is None or b is None:
        return None
    if isinstance(node.op, ast.Add):
        return a + b
    if isinstance(node.op, ast.Sub):
        return a - b
    if isinstance(node.op, ast.Mult):
        return a * b
    return None if b == 0 else a // b


def _derive_input_dims(source: str, real_inputs, mapping: dict) -> None:
    """Fix, in ``mapping``, each graph input dimension named by arithmetic over names already fixed (``2*batch``
    once ``batch`` is; see ``_dim_expression``) at the value it computes, unless the caller fixed that name
    itself. A negative value is refused naming the input and the expression."""
    for vi in real_inputs:
        if not vi.type.HasField("tensor_type"):
            continue
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.dim_param or d.dim_param in mapping:
                continue
            tree = _dim_expression(d.dim_param)
            value = None if tree is None else _eval_dim(tree, mapping)
            if value is None:
                continue
            if value < 0:
                raise GraphError(f"{source}: graph input {vi.name!r} dimension {i} ({d.dim_param!r}) is {value} "
                                 "with the dimensions fixed, not a size: fix them larger")
            mapping[d.dim_param] = value
