"""Checks of one node's attributes and operand shapes, before any shape is inferred.

Why: ONNX shape inference accepts attributes onnxruntime refuses (or sizes them differently): a pool window larger
than its input, a Transpose ``perm`` that is not a permutation, an Einsum whose labels disagree. Each check refuses the
node by name, as onnxruntime would, instead of letting a wrong size reach the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ...errors import GraphError, as_int
from ...errors import short_repr as _short
from .common import _DECIMAL, MAX_DIM, ORT_DOMAIN, _broadcast

#: ops whose output is a sequence or optional made of whole tensors (or containers) the node reads, so that
#: its bytes are exactly theirs: op -> how many of its first inputs it holds (None: all of them). Others
#: (SequenceErase) hold the tensors the importer followed into them where it knows them all
#: (``_track_sequence``); a custom op's container, or one of unknown tensors, is refused by name
CONTAINER_OPS = {"SplitToSequence": 1, "SequenceConstruct": None, "SequenceEmpty": 0, "SequenceInsert": 2,
                 "Optional": 1, "OptionalGetElement": 1, "Identity": 1}
#: ops onnxruntime builds with its ``ConvAttributes`` (which refuse ``auto_pad`` with ``pads``), by domain
CONV_ATTRIBUTE_OPS = {"": {"Conv", "ConvInteger", "QLinearConv"}, "ai.onnx": {"Conv", "ConvInteger", "QLinearConv"},
                      "com.microsoft": {"FusedConv"}}
#: pooling ops onnxruntime builds with its ``PoolAttributes`` (which refuse a pad not smaller than the kernel)
POOL_ATTRIBUTE_OPS = frozenset({"MaxPool", "AveragePool", "LpPool", "MaxUnpool"})
#: the ``auto_pad`` values onnxruntime's ``StringToAutoPadType`` reads (empty: ``NOTSET``); any other it refuses
AUTO_PADS = (b"NOTSET", b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"")


REDUCE_OPS = frozenset({"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})


def _check_reduce_axes(n, where: str, shapes: dict) -> None:
    """Refuse, naming the node, a Reduce op, Squeeze or Unsqueeze whose ``axes`` attribute (before it became an input)
    names an axis outside the rank it counts in (its input's; an Unsqueeze's output's): ONNX's inference of those
    opsets does not check it for all of them and sized the output by the axes in range, while onnxruntime refuses to run
    it ("IsAxisInRange(axis, tensor_rank) was false")."""
    if n.op_type not in REDUCE_OPS | {"Squeeze", "Unsqueeze"} or n.domain not in ("", "ai.onnx") or not n.input:
        return
    axes = next((list(a.ints) for a in n.attribute if a.name == "axes"), None)
    x = shapes.get(n.input[0], (0, None))[1]
    if not axes or x is None or (not x and n.op_type in REDUCE_OPS):
        return   # (onnxruntime reduces a scalar to itself, whatever axes it is given)
    rank = len(x) + (len(axes) if n.op_type == "Unsqueeze" else 0)
    bad = next((a for a in axes if not -rank <= a < rank), None)
    if bad is not None:
        counted = f"the {rank} dimensions of its output" if n.op_type == "Unsqueeze" else f"the {rank} dimensions of its input"
        raise GraphError(f"{where}: its axes {axes} name axis {bad}, outside {counted} ({n.input[0]!r}: "
                         f"{list(x)}); onnxruntime refuses to run it")
    if n.op_type == "Unsqueeze" and len({a % rank for a in axes}) < len(axes):
        # (round 75, review75: ONNX's inference of Unsqueeze-1 gave ``[3, 4]`` its input's shape for ``axes=[-1, 3]``
        # or ``[3, 3]``, and the model was planned so; a Squeeze's repeated axis onnxruntime takes once)
        raise GraphError(f"{where}: its axes {axes} name one axis of the {rank} dimensions of its output twice "
                         f"({n.input[0]!r}: {list(x)}); onnxruntime refuses to run it (\"'axes' has a duplicate axis\")")


def _check_transpose_perm(n, where: str, shapes: dict) -> None:
    """Refuse, naming the node, a Transpose whose ``perm`` attribute does not name each of its input's dimensions
    (empty, or of another length than the input's rank): onnxruntime refuses to run it ("perm size: 3 does not match
    input rank: 4"), while ONNX's inference reads an empty perm as absent (reverse the dimensions) and sizes a short
    one by the dimensions it names (a ``[2, 1, 1, 1]`` by ``perm=[2, 0, 1]`` was planned ``[1, 2, 1]``)."""
    if n.op_type != "Transpose" or n.domain not in ("", "ai.onnx") or not n.input:
        return
    perm = next((a for a in n.attribute if a.name == "perm"), None)
    x = shapes.get(n.input[0], (0, None))[1]
    if perm is None or x is None or len(perm.ints) == len(x):
        return
    raise GraphError(f"{where}: its perm {list(perm.ints)} does not name each of the {len(x)} dimensions of its input "
                     f"{n.input[0]!r}; onnxruntime refuses to run it (\"perm size: {len(perm.ints)} does not match "
                     f"input rank: {len(x)}\"): give a permutation of all of them, or no perm to reverse them")


def _check_window_attributes(n, where: str) -> None:
    """Refuse, naming the node, what onnxruntime refuses in a convolution's or pool's attributes alone when it builds
    the kernel: a Conv (ConvInteger, QLinearConv, ``com.microsoft:FusedConv``) with both ``auto_pad`` (other than
    ``NOTSET``) and ``pads``, even all zero ("A Conv/ConvTranspose node has both 'auto_pad' and 'pads' attributes");
    a MaxPool, AveragePool, LpPool or MaxUnpool with a pad not smaller than its kernel along that axis ("Pad should be smaller
    than kernel"), whatever its ``auto_pad``; any of them, or a ConvTranspose, with an ``auto_pad`` none of ``AUTO_PADS``
    (``same_upper``, ``SAME``: "Unknown AutoPadType String"), which ONNX's inference read as ``NOTSET``.

    Why: ONNX's inference allows both (Conv takes ``auto_pad`` and ignores ``pads``; a pool pads by them), so they were
    planned, and onnxruntime refuses to load the model."""
    attrs = {a.name: a for a in n.attribute}
    windowed = (n.op_type in CONV_ATTRIBUTE_OPS.get(n.domain, ()) or n.domain in ("", "ai.onnx")
                and n.op_type in POOL_ATTRIBUTE_OPS | {"ConvTranspose"})
    if windowed and "auto_pad" in attrs and attrs["auto_pad"].s not in AUTO_PADS:
        raise GraphError(f"{where}: its auto_pad {attrs['auto_pad'].s.decode(errors='replace')!r} is none of "
                         f"{', '.join(p.decode() for p in AUTO_PADS if p)}; onnxruntime refuses to load it (\"Unknown "
                         "AutoPadType String\")")
    if "pads" not in attrs:
        return
    pads = list(attrs["pads"].ints)
    if n.op_type in CONV_ATTRIBUTE_OPS.get(n.domain, ()):
        auto_pad = attrs["auto_pad"].s.decode(errors="replace") if "auto_pad" in attrs else "NOTSET"
        if auto_pad not in ("NOTSET", ""):
            raise GraphError(f"{where}: it has both auto_pad {auto_pad} and pads {pads}; onnxruntime refuses to load "
                             "it (\"A Conv/ConvTranspose node has both 'auto_pad' and 'pads' attributes\"): drop one")
    elif n.op_type in POOL_ATTRIBUTE_OPS and n.domain in ("", "ai.onnx") and "kernel_shape" in attrs:
        kernel = list(attrs["kernel_shape"].ints)
        k = len(kernel)
        if len(pads) != 2 * k:
            return   # (ONNX's inference refuses it)
        big = next((i for i in range(2 * k) if pads[i] >= kernel[i % k]), None)
        if big is not None:
            raise GraphError(f"{where}: its pad {pads[big]} (pads {pads}) is not smaller than its kernel's "
                             f"{kernel[big % k]} along spatial axis {big % k}; onnxruntime refuses to load it (\"Pad "
                             "should be smaller than kernel\")")


#: attributes onnxruntime's kernels (default domain) read as one of a few values, refusing any other as they are built
#: (checked with onnxruntime 1.32): op -> {attribute: the values taken}. A union over the opsets (GridSample's
#: ``bilinear`` became ``linear`` at 20) and case-folded where onnxruntime folds it (RoiAlign's ``AVG``), so that no
#: model onnxruntime runs is refused; an empty string is left to the kernel's default
ENUM_ATTRIBUTES: dict[str, dict[str, frozenset]] = {
    "Resize": {"coordinate_transformation_mode": frozenset({
        b"half_pixel", b"half_pixel_symmetric", b"pytorch_half_pixel", b"align_corners", b"asymmetric",
        b"tf_half_pixel_for_nearest", b"tf_crop_and_resize"}),
        "nearest_mode": frozenset({b"round_prefer_floor", b"round_prefer_ceil", b"floor", b"ceil"})},
    "Pad": {"mode": frozenset({b"constant", b"reflect", b"edge", b"wrap"})},
    "DepthToSpace": {"mode": frozenset({b"DCR", b"CRD"})},
    "Gelu": {"approximate": frozenset({b"none", b"tanh"})},
    "GridSample": {"mode": frozenset({b"bilinear", b"nearest", b"bicubic", b"linear", b"cubic"}),
                   "padding_mode": frozenset({b"zeros", b"border", b"reflection"})},
    "RoiAlign": {"mode": frozenset({b"avg", b"max"})},
    "CumSum": {"exclusive": frozenset({0, 1}), "reverse": frozenset({0, 1})},
    "MaxPool": {"storage_order": frozenset({0, 1})},
    "Mod": {"fmod": frozenset({0, 1})},
    "LpNormalization": {"p": frozenset({1, 2})},
    "BitShift": {"direction": frozenset({b"RIGHT", b"LEFT"})},
    "RNN": {"activations": frozenset({b"Relu", b"Tanh", b"Sigmoid", b"Affine", b"LeakyRelu", b"ThresholdedRelu",
                                      b"ScaledTanh", b"HardSigmoid", b"Elu", b"Softsign", b"Softplus"})},
}
#: GRU's and LSTM's ``activations`` are RNN's, compared case-folded (RNN's are not: ``tanh`` is refused there)
ENUM_ATTRIBUTES["GRU"] = ENUM_ATTRIBUTES["LSTM"] = {
    "activations": frozenset(v.lower() for v in ENUM_ATTRIBUTES["RNN"]["activations"])}
#: the ``ENUM_ATTRIBUTES`` onnxruntime compares case-folded
_FOLDED = frozenset({("RoiAlign", "mode"), ("GRU", "activations"), ("LSTM", "activations")})


def _check_enum_attributes(n, where: str) -> None:
    """Refuse, naming the node, the attribute and its value, an attribute of ``ENUM_ATTRIBUTES`` that is none of the
    values onnxruntime takes: a Pad of ``mode='bogus'``, a Resize of ``nearest_mode='FLOOR'``, a CumSum of
    ``exclusive=2``, a Mod of ``fmod=3``, an LSTM activation ``Bogus``...

    Why: ONNX's inference does not read them (the output has the input's shape, or the one its sizes give, whatever
    the mode), so they were planned, while onnxruntime refuses to load the model ("Invalid mode", "fmod must have
    value either 0 or 1"; Gelu's ``approximate`` when it runs)."""
    table = ENUM_ATTRIBUTES.get(n.op_type)
    if table is None or n.domain not in ("", "ai.onnx"):
        return
    for a in n.attribute:
        allowed = table.get(a.name)
        if allowed is None:
            continue
        if a.type == a.STRING:
            value = a.s.lower() if (n.op_type, a.name) in _FOLDED else a.s
            if not value or value in allowed:
                continue
            shown = repr(a.s.decode(errors="replace"))
            choices = ", ".join(sorted(v.decode() for v in allowed))
        elif a.type == a.INT:
            if a.i in allowed:
                continue
            shown, choices = str(a.i), ", ".join(str(v) for v in sorted(allowed))
        elif a.type == a.STRINGS:   # (each one of them: an RNN's activation functions)
            folded = (n.op_type, a.name) in _FOLDED
            bad = next((v for v in a.strings if (v.lower() if folded else v) not in allowed), None)
            if bad is None:
                continue
            shown = f"{[v.decode(errors='replace') for v in a.strings]}: {bad.decode(errors='replace')!r}"
            choices = ", ".join(sorted(v.decode() for v in allowed)) + (" (in any case)" if folded else "")
        else:
            continue   # (of another type: onnx's checker refuses it)
        raise GraphError(f"{where}: its {a.name} {shown} is none of {choices}; onnxruntime refuses to load it")


def _check_ort_ranges(n, where: str, shapes: dict, values: dict) -> None:
    """Refuse, naming the node, what onnxruntime's kernels refuse in a default-domain op's attributes (or a known
    input) that ONNX's inference never reads: a RoiAlign of ``sampling_ratio`` below 0 (refused at load: "Sampling
    ratio should be >=0"); a Resize of ``exclude_outside`` other than 0 in a mode other than ``cubic`` or an
    antialiased ``linear`` (at load: onnxruntime reads any non-zero value as 1, which it takes only with ``cubic``, or
    with ``linear`` when ``antialias`` is set); a Dropout (opset 12 on) whose
    ``ratio`` input is known and outside [0, 1) (at run, whatever its ``training_mode``: "ratio must be in the range
    [0, 1)"); a Multinomial of ``sample_size`` below 1 (at run: "num_samples is < 1"); an Einsum whose explicit output
    has no ellipsis while an input's ellipsis stands for at least one dimension (at run: "Inputs have ellipses in them
    but the provided output subscript does not contain an ellipsis").

    Why: the output has a size whatever the value (the input's shape; ``[N, 0]`` samples; a scalar), so each was
    planned, while onnxruntime refuses the model."""
    import numpy as np

    if n.domain not in ("", "ai.onnx"):
        return
    op = n.op_type
    attrs = {a.name: a for a in n.attribute}
    if op == "RoiAlign" and "sampling_ratio" in attrs and attrs["sampling_ratio"].i < 0:
        raise GraphError(f"{where}: its sampling_ratio {attrs['sampling_ratio'].i} is negative; onnxruntime refuses to "
                         "load it (\"Sampling ratio should be >=0\"): give 0 (adaptive) or a positive count")
    if op == "Resize" and "exclude_outside" in attrs and attrs["exclude_outside"].i != 0:
        mode = attrs["mode"].s if "mode" in attrs else b"nearest"
        # (an antialiased linear Resize takes it: torch's dynamo exporter writes one for interpolate(antialias=True))
        antialias = "antialias" in attrs and attrs["antialias"].i != 0
        if mode == b"nearest" or (mode == b"linear" and not antialias):
            raise GraphError(f"{where}: its exclude_outside {attrs['exclude_outside'].i} is taken only with mode "
                             f"'cubic', not {mode.decode()!r}{' without antialias' if mode == b'linear' else ''} (or "
                             "'linear' with antialias 1); onnxruntime refuses to load it (\"exclude_outside can be "
                             "set to 1 when (1) mode is CUBIC, or (2) mode is LINEAR when anti-aliasing is enabled\"): give "
                             "exclude_outside 0")
    if op == "Multinomial":
        size = attrs["sample_size"].i if "sample_size" in attrs else 1
        if size < 1:
            raise GraphError(f"{where}: its sample_size {size} is not a positive count; onnxruntime refuses to run it "
                             "(\"num_samples is < 1\")")
    if op == "Dropout" and len(n.input) > 1 and n.input[1] and n.input[1] in values:
        v = np.asarray(values[n.input[1]])
        if v.size == 1 and v.dtype.kind == "f":
            r = float(v.reshape(-1)[0])
            if not 0.0 <= r < 1.0:
                raise GraphError(f"{where}: its ratio {r:g} ({n.input[1]!r}) is outside [0, 1); onnxruntime refuses to "
                                 "run it, in training mode or not (\"ratio must be in the range [0, 1)\")")
    if op == "Einsum":
        equation = attrs["equation"].s.decode("utf-8", "replace") if "equation" in attrs else ""
        ins, arrow, out = equation.replace(" ", "").partition("->")
        if not arrow or "..." in out:
            return
        for term, v in zip(ins.split(","), n.input):
            x = shapes.get(v, (0, None))[1]
            if "..." in term and x is not None and len(x) > len(term.replace("...", "", 1)):
                raise GraphError(f"{where}: its equation {equation!r} gives an output with no ellipsis, while the "
                                 f"ellipsis of {term!r} stands for {len(x) - len(term.replace('...', '', 1))} of the "
                                 f"dimensions of {v!r} ({list(x)}); onnxruntime refuses to run it (\"Inputs have "
                                 "ellipses in them but the provided output subscript does not contain an ellipsis\"): "
                                 "end the output with '...' or name those dimensions")


def _check_mvn_axes(n, where: str, shapes: dict) -> None:
    """Refuse, naming the node, a MeanVarianceNormalization (default domain) none of whose ``axes`` (default
    ``[0, 2, 3]``) is in range for its input's rank: onnxruntime's kernel normalizes over the axes in range (and
    skips the others), and with none refuses to run it ("No valid axes are specified"). Those with some in range are
    planned (the output has the input's shape): ``_mvn_axes_any_rank`` lets ONNX's inference size them."""
    if n.op_type != "MeanVarianceNormalization" or n.domain not in ("", "ai.onnx") or not n.input:
        return
    if any(a.name != "axes" for a in n.attribute):
        return   # (opset 1's attributes: another op)
    axes = next((list(a.ints) for a in n.attribute if a.name == "axes"), [0, 2, 3])
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None or any(-len(x) <= a < len(x) for a in axes):
        return
    raise GraphError(f"{where}: none of its axes {axes} is one of the {len(x)} dimensions of its input "
                     f"{n.input[0]!r} ({list(x)}); onnxruntime refuses to run it (\"No valid axes are specified\")")


#: the convolutions onnxruntime's kernels check by ``ConvAttributes`` (``_check_conv``): (domain, op) -> the positions
#: of their input, weight and bias (None: it has none)
CONV_INPUTS = {("", "Conv"): (0, 1, 2), ("", "ConvInteger"): (0, 1, None), ("", "QLinearConv"): (0, 3, 8),
               (ORT_DOMAIN, "FusedConv"): (0, 1, 2)}


def _check_conv(n, where: str, shapes: dict) -> None:
    """A Conv, ConvInteger or QLinearConv (or onnxruntime's FusedConv, sized as one) whose input, weight and
    attributes onnxruntime's kernel refuses (``ConvAttributes``: ``ValidateInputShape``, ``ComputeKernelShape``,
    ``InferPadsAndOutputShape``; a bias not 1-D of the output channels) is refused as it is, naming the node: ONNX's
    inference checks none of these and sized an output onnxruntime never writes (a weight of the wrong channel count
    or ``kernel_shape``, a dilated ``SAME_*`` padding, an input smaller than the dilated kernel or, with ``SAME_*``,
    empty along a spatial axis: a zero-sized output). Checked only where the shapes are static. (Round 79: a
    ConvInteger or QLinearConv, whose kernels make the same checks, was planned unchecked: a ConvInteger of a weight
    of 2 channels over an input of 3 at [1, 1, 2, 2], onnxruntime refusing to run it.)"""
    at = CONV_INPUTS.get(("" if n.domain == "ai.onnx" else n.domain, n.op_type))
    if at is None or len(n.input) <= at[1] or not n.input[at[0]] or not n.input[at[1]]:
        return
    xi, wi, bi = at
    x, w = (shapes.get(n.input[k], (0, None))[1] for k in (xi, wi))
    if not isinstance(x, tuple) or not isinstance(w, tuple) or not all(isinstance(d, int) for d in (*x, *w)):
        return
    attrs = {a.name: a for a in n.attribute}
    ints = (lambda k, default: list(attrs[k].ints) if k in attrs else default)   # noqa: E731
    group = attrs["group"].i if "group" in attrs else 1
    auto_pad = attrs["auto_pad"].s.decode(errors="replace") if "auto_pad" in attrs else "NOTSET"
    why = ""
    if len(x) != len(w):
        why = f"its input {n.input[xi]!r} ({list(x)}) and weight {n.input[wi]!r} ({list(w)}) differ in rank"
    elif len(x) < 3:
        return   # (ONNX's inference refuses it)
    elif group < 1 or x[1] != w[1] * group:
        why = (f"its input {n.input[xi]!r} has {x[1]} channels, not its weight {n.input[wi]!r}'s {w[1]} per group "
               f"times group {group}")
    elif w[0] % group:
        why = f"its weight {n.input[wi]!r} has {w[0]} output channels, not divisible by group {group}"
    elif bi is not None and _bias_shape(n, shapes, bi) not in (None, (w[0],)):
        why = (f"its bias {n.input[bi]!r} ({list(_bias_shape(n, shapes, bi))}) is not 1-D of its {w[0]} output channels "
               f"(weight {n.input[wi]!r}: {list(w)})")
    elif "kernel_shape" in attrs and ints("kernel_shape", []) != list(w[2:]):
        why = f"its kernel_shape {ints('kernel_shape', [])} is not its weight's {list(w[2:])}"
    else:
        spatial = len(x) - 2
        dil, pads = ints("dilations", [1] * spatial), ints("pads", [0] * 2 * spatial)
        if len(dil) != spatial or len(pads) != 2 * spatial:
            return   # (ONNX's inference refuses it)
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and any(d != 1 for d in dil):
            why = f"its auto_pad {auto_pad} with dilations {dil} (onnxruntime supports only dilation 1 there)"
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER") and 0 in x[2:]:
            # (round 73: ONNX's ceil(0 / stride) is an empty output, planned; onnxruntime's ConvAttributes refuses an
            # output dimension of 0, "Invalid input shape")
            i = x[2:].index(0)
            why = (f"its input {n.input[xi]!r} ({list(x)}) is empty along dimension {2 + i}, which its auto_pad "
                   f"{auto_pad} makes an empty output dimension")
        elif auto_pad in ("NOTSET", "VALID"):
            total = [0] * spatial if auto_pad == "VALID" else [pads[i] + pads[i + spatial] for i in range(spatial)]
            small = [i for i in range(spatial) if x[2 + i] + total[i] < dil[i] * (w[2 + i] - 1) + 1]
            if small:
                i = small[0]
                why = (f"its input {n.input[xi]!r} ({list(x)}) is, padded, {x[2 + i] + total[i]} along dimension "
                       f"{2 + i}, smaller than its kernel's {dil[i] * (w[2 + i] - 1) + 1} (dilated): an empty output")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _trunc_div(a: int, b: int) -> int:
    """``a / b`` rounded toward zero, as C++ divides int64s (Python's ``//`` rounds down: -1 // 2 is -1, C++ 0)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ort_pool_extent(auto_pad: bytes, size: int, stride: int, kernel: int, dilation: int, pads: tuple[int, int],
                    ceil: bool) -> tuple[int, int, int]:
    """``(windows, pad_head, pad_needed)`` of onnxruntime 1.32's ``PoolAttributes`` along one spatial axis of a
    pooling node: its ``SAME_*`` pads are those of an *undilated* kernel (``pad_needed`` = ``(ceil(size / stride) - 1)
    * stride + kernel - size``, which may be negative), split in C++ integer division; its count of windows is
    ``numerator / stride + 1`` where ``numerator`` = ``size + pads - dilation * (kernel - 1) - 1``, divided toward zero
    (in ``ceil_mode`` rounded up, less a last window that would start at or past the end of the input and its leading
    padding). Why exactly its arithmetic: a negative ``numerator`` (a dilated kernel past a short input) makes 1 window
    or 0 where ONNX's rule counts more, and a negative count is refused ("Calculated output dimension is negative")."""
    head, total = pads[0], pads[0] + pads[1]
    if auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
        total = (_trunc_div(size + stride - 1, stride) - 1) * stride + kernel - size
        head = _trunc_div(total, 2) if auto_pad == b"SAME_UPPER" else _trunc_div(total + 1, 2)
    elif auto_pad == b"VALID":
        head, total = 0, 0
    numerator = size + total - dilation * (kernel - 1) - 1
    if not ceil:
        return _trunc_div(numerator, stride) + 1, head, total
    windows = -(-numerator // stride) + 1
    if (windows - 1) * stride >= size + head:
        windows -= 1
    return windows, head, total


def pool_attributes(n, spatial: int) -> tuple[bytes, list[int], list[int], list[int], list[int], bool] | None:
    """``(auto_pad, kernel, strides, dilations, pads, ceil_mode)`` of pooling node ``n`` over ``spatial`` axes, each
    at its default where absent (``pads`` zero but where ``auto_pad`` is NOTSET), or None where they do not fit the
    axes or a stride or dilation is below 1 (ONNX's inference or onnxruntime's attribute checks refuse those)."""
    attrs = {a.name: a for a in n.attribute}
    auto_pad = attrs["auto_pad"].s if "auto_pad" in attrs else b"NOTSET"
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else []
    strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * spatial
    dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * spatial
    ceil = bool(attrs["ceil_mode"].i) if "ceil_mode" in attrs else False
    pads = list(attrs["pads"].ints) if "pads" in attrs and auto_pad in (b"NOTSET", b"") else [0] * 2 * spatial
    if (spatial < 1 or not len(kernel) == len(strides) == len(dilations) == spatial or len(pads) != 2 * spatial
            or min(strides + dilations) < 1):
        return None
    return auto_pad, kernel, strides, dilations, pads, ceil


#: the pooling ops whose ``auto_pad`` ``SAME_*`` onnxruntime computes with ``ort_pool_extent``
SAME_POOLS = frozenset({"MaxPool", "AveragePool", "LpPool"})


#: the global pools: one window over every spatial axis
GLOBAL_POOLS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})


def _check_pool(n, where: str, shapes: dict, opset: int) -> None:
    """A MaxPool, AveragePool or LpPool that onnxruntime refuses to run is refused naming the node: one whose count of
    windows along an axis comes out negative (``ort_pool_extent``: a kernel, dilated, much longer than a short input,
    "Calculated output dimension is negative"; ONNX's inference of opset 22 on counts 1 in ``ceil_mode``), and, with
    ``auto_pad`` ``SAME_UPPER`` / ``SAME_LOWER``, a MaxPool (one output, no dilation) or an AveragePool before opset 19 (not both in ``ceil_mode``
    and ``count_include_pad``) of float or float16 whose stride is longer than its kernel so that the ``SAME_*``
    padding it needs is negative (MLAS's pooling: "padding values must be non-negative"; its other kernels, those
    of double or 8-bit data, with an ``Indices`` output or a dilation, and AveragePool-19's run it). Why: ONNX's inference sizes every such output ``ceil(in / stride)``, and
    the node was planned though onnxruntime never runs it (round 73). Checked only where the input's shape is
    static. A GlobalAveragePool, GlobalMaxPool or GlobalLpPool of a rank-2 input (no spatial axis) is refused too:
    ONNX's inference gives it its input's shape, onnxruntime's kernels refuse it ("Input dimension cannot be less than
    3") whatever its dtype (round 76)."""
    if n.op_type in GLOBAL_POOLS and n.domain in ("", "ai.onnx") and n.input and n.input[0]:
        x = shapes.get(n.input[0], (0, None))[1]
        if x is not None and len(x) < 3:
            raise GraphError(f"{where}: its input {n.input[0]!r} is of rank {len(x)} ({list(x)}), with no spatial "
                             "axis to pool (a global pool takes [N, C, D1, ...]); onnxruntime refuses to run it "
                             "(\"Input dimension cannot be less than 3\")")
    if n.op_type not in SAME_POOLS or n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    attrs = {a.name: a for a in n.attribute}
    elem, x = shapes.get(n.input[0], (0, None))
    if x is None or not all(isinstance(d, int) for d in x) or len(x) < 3:
        return
    spatial = len(x) - 2
    parsed = pool_attributes(n, spatial)
    if parsed is None:
        return   # (ONNX's inference or onnxruntime's attribute checks refuse it)
    auto_pad, kernel, strides, dilations, pads, ceil = parsed
    mlas = elem in (1, 10) and (
        (n.op_type == "MaxPool" and len([o for o in n.output if o]) == 1 and all(d == 1 for d in dilations))
        or (n.op_type == "AveragePool" and opset < 19 and not (
            ceil and "count_include_pad" in attrs and attrs["count_include_pad"].i)))
    for i in range(spatial):
        size = x[2 + i]
        windows, _head, needed = ort_pool_extent(auto_pad, size, strides[i], kernel[i], dilations[i],
                                                 (pads[i], pads[i + spatial]), ceil)
        if windows < 0:
            raise GraphError(f"{where}: along dimension {2 + i} of its input {n.input[0]!r} ({list(x)}) its kernel "
                             f"{kernel[i]} (dilation {dilations[i]}, stride {strides[i]}, auto_pad "
                             f"{(auto_pad or b'NOTSET').decode()}, pads {pads[i]} + {pads[i + spatial]}) makes "
                             f"{windows} windows as onnxruntime counts them; onnxruntime refuses to run it "
                             "(\"Calculated output dimension is negative\")")
        if mlas and needed < 0 and auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
            raise GraphError(f"{where}: its auto_pad {auto_pad.decode()} pads dimension {2 + i} of its input "
                             f"{n.input[0]!r} ({list(x)}) by {needed} (stride {strides[i]} longer than kernel "
                             f"{kernel[i]}); onnxruntime refuses to run it (\"padding values must be non-negative\")")


def _bias_shape(n, shapes: dict, at: int = 2) -> tuple | None:
    """The static shape of a Conv's or ConvTranspose's bias (input ``at``: 2; a QLinearConv's 8), None where it has
    none or it is not static."""
    b = shapes.get(n.input[at], (0, None))[1] if len(n.input) > at and n.input[at] else None
    return tuple(b) if b is not None and all(isinstance(d, int) for d in b) else None


def _check_conv_transpose(n, where: str, shapes: dict) -> None:
    """A ConvTranspose whose input's channels are not its weight's first dimension, whose ``kernel_shape`` is not its
    weight's, or whose bias is not 1-D of its output channels (weight's second dimension times ``group``), is
    refused naming the node, where the shapes are static. Why: ONNX's inference checks none of these (it sizes the
    output by the weight and attributes) and memplan planned them; onnxruntime refuses to run them ("filter number
    not equal to input channel number", "kernel_shape is not compatible with W shape", "Bias shape is not
    compatible with number of output channels")."""
    if n.op_type != "ConvTranspose" or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
        return
    x, w = (shapes.get(v, (0, None))[1] for v in n.input[:2])
    if x is None or w is None or not all(isinstance(d, int) for d in (*x, *w)) or len(x) != len(w) or len(x) < 3:
        return
    attrs = {a.name: a for a in n.attribute}
    group = attrs["group"].i if "group" in attrs else 1
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else list(w[2:])
    why = ""
    if x[1] != w[0]:
        why = f"its input {n.input[0]!r} ({list(x)}) has {x[1]} channels, not its weight {n.input[1]!r}'s {w[0]}"
    elif kernel != list(w[2:]):
        why = f"its kernel_shape {kernel} is not its weight's {list(w[2:])}"
    elif _bias_shape(n, shapes) not in (None, (w[1] * group,)):
        why = (f"its bias {n.input[2]!r} ({list(_bias_shape(n, shapes))}) is not 1-D of its {w[1] * group} output "
               f"channels (weight {n.input[1]!r}: {list(w)}, group {group})")
    else:
        why = _conv_transpose_refused(attrs, list(x[2:]), kernel)
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")
    y = shapes.get(n.output[0], (0, None))[1] if n.output and n.output[0] else None
    ort = [x[0], w[1] * group, *_conv_transpose_dims(attrs, list(x[2:]), kernel)]
    if y is not None and all(isinstance(d, int) for d in y) and (len(y) != len(ort) or math.prod(y) < math.prod(ort)):
        raise GraphError(f"{where}: its output {n.output[0]!r} is sized {list(y)}, but onnxruntime writes {ort}: a "
                         "plan of that size would not hold it")


def _conv_transpose_attrs(attrs: dict, spatial: int) -> tuple[list[int], list[int], list[int], list[int], str]:
    """(strides, dilations, output_padding, pads, auto_pad) of a ConvTranspose's ``attrs``, with their defaults."""
    ints = (lambda k, default: list(attrs[k].ints) if k in attrs else default)   # noqa: E731
    auto_pad = attrs["auto_pad"].s.decode(errors="replace") if "auto_pad" in attrs else "NOTSET"
    return (ints("strides", [1] * spatial), ints("dilations", [1] * spatial), ints("output_padding", [0] * spatial),
            ints("pads", [0] * 2 * spatial), auto_pad or "NOTSET")


def _conv_transpose_dims(attrs: dict, x: list[int], kernel: list[int]) -> list[int]:
    """The spatial dimensions onnxruntime's ConvTranspose kernel makes of spatial input dimensions ``x`` (its
    ``ComputeTransposePadAndOutputShape``): ``output_shape`` where given (its padding computed from it, at least 0);
    with ``SAME_*`` the smaller of ``in * stride`` and the unpadded size; with ``VALID`` the unpadded size; else the
    unpadded size less ``pads``. The unpadded size is ``(in - 1) * stride + (kernel - 1) * dilation + 1 +
    output_padding``. Checked against onnxruntime 1.32 on 3,000 random 1-D cases."""
    spatial = len(x)
    strides, dilations, adj, pads, auto_pad = _conv_transpose_attrs(attrs, spatial)
    out = list(attrs["output_shape"].ints) if "output_shape" in attrs else []
    if len(out) == spatial + 2:
        out = out[2:]
    dims = []
    for i in range(spatial):
        full = (x[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 + adj[i]
        if out:
            dims.append(out[i])
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            dims.append(min(x[i] * strides[i], full))
        elif auto_pad == "VALID":
            dims.append(full)
        else:
            dims.append(full - pads[i] - pads[i + spatial])
    return dims


def _conv_transpose_refused(attrs: dict, x: list[int], kernel: list[int]) -> str:
    """Why onnxruntime's kernel refuses to run a ConvTranspose of ``attrs`` on spatial input dimensions ``x`` (an
    ``output_padding`` not below the stride, or the dilation; an output dimension not positive; an ``output_shape`` or
    ``output_padding`` from which its check computes back another input size); empty where it runs it. ONNX's
    inference checks none of them, and sizes the output from the attributes alone."""
    spatial = len(x)
    strides, dilations, adj, pads, auto_pad = _conv_transpose_attrs(attrs, spatial)
    out = list(attrs["output_shape"].ints) if "output_shape" in attrs else []
    if not len(strides) == len(dilations) == len(adj) == len(kernel) == spatial or len(pads) != 2 * spatial \
            or min(strides, default=1) < 1 or min(dilations, default=1) < 1:
        return ""   # (ONNX's inference refuses them)
    if out and len(out) != spatial:
        return (f"its output_shape {out} does not give one size per spatial dimension ({spatial}) (onnxruntime's "
                "shape inference: \"Attribute output_shape has incorrect size\")")
    dims = _conv_transpose_dims(attrs, x, kernel)
    for i in range(spatial):
        if adj[i] >= max(strides[i], dilations[i]):
            return (f"its output_padding {adj[i]} along spatial dimension {i} is not less than max(stride, dilation) "
                    f"({max(strides[i], dilations[i])})")
        reach = (kernel[i] - 1) * dilations[i] + 1
        full = (x[i] - 1) * strides[i] + reach + adj[i]
        if dims[i] <= 0:
            return f"its output would be {dims[i]} long along spatial dimension {i} (input {x[i]})"
        if out and x[i] <= 0:   # (round 73: onnxruntime, "Input spatial dimension must be positive")
            return f"its input is empty along spatial dimension {i}, which its output_shape {out} cannot be made from"
        padding = max(0, full - dims[i]) if out or auto_pad != "NOTSET" else pads[i] + pads[i + spatial]
        # (divided toward zero, as onnxruntime's C++ does: of an empty input, -1 // 2 + 1 is 0, its check's 1)
        if _trunc_div(dims[i] + padding - reach, strides[i]) + 1 != x[i]:
            given = f"output_shape {out}" if out else f"output_padding {adj}"
            return (f"its {given} makes a spatial dimension {i} of {dims[i]}, from which onnxruntime computes back an "
                    f"input of {_trunc_div(dims[i] + padding - reach, strides[i]) + 1}, not its input's {x[i]}")
    return ""


def _check_op_attributes(n, where: str, shapes: dict, values: dict) -> None:
    """An ``axis`` outside its input's rank for LpNormalization, GatherElements, ScatterElements (attribute) and
    CumSum (known input), an LRN whose
    ``size`` is not odd and positive, and an ArgMax/ArgMin along an axis of no element (the others holding some)
    are refused naming the node.

    Why: ONNX's inference checks none of these (it gives the output the input's shape, or drops the axis) and memplan
    planned them; onnxruntime refuses to run them ("axis must be in [-r, r-1]", LRN's "size > 0" and "size % 2 ==
    1", an arg-reduction of an empty axis)."""
    import numpy as np

    if n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    op = n.op_type
    if op not in ("LpNormalization", "CumSum", "LRN", "ArgMax", "ArgMin", "GatherElements", "ScatterElements"):
        return
    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    if op == "LRN":
        size = attrs.get("size")
        if size is not None and (size <= 0 or size % 2 == 0):
            raise GraphError(f"{where}: its size {size} is not an odd positive count; onnxruntime refuses to run it")
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None:
        return
    if op == "CumSum":
        v = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        if v is None or np.asarray(v).size != 1 or np.asarray(v).dtype.kind not in "iu":
            return
        axis = int(np.asarray(v).reshape(-1)[0])
    else:
        axis = attrs.get("axis", -1 if op == "LpNormalization" else 0)
    if not -len(x) <= axis < len(x):
        raise GraphError(f"{where}: its axis {axis} is outside its input {n.input[0]!r}'s {len(x)} dimensions "
                         f"({list(x)}); onnxruntime refuses to run it")
    if op in ("ArgMax", "ArgMin") and x[axis] == 0 and all(isinstance(d, int) for d in x) and math.prod(
            d for k, d in enumerate(x) if k != axis % len(x)) > 0:   # (an output of no element is written)
        raise GraphError(f"{where}: it reduces axis {axis} of its input {n.input[0]!r} ({list(x)}), which holds no "
                         "element, to an index per position of the others; onnxruntime refuses to run it")


def _check_unique_axis(n, where: str, shapes: dict) -> None:
    """A Unique along an ``axis`` whose length is not 0 while the dimensions after it multiply to 0 (``[3, 0]`` or
    ``[2, 0, 2]`` along axis 0) is refused, naming the node.

    Why: onnxruntime's kernel does not refuse such a Unique, it kills the whole process running it (a failed
    internal check, SIGABRT); memplan planned the model silently, a plan no runtime can use."""
    if n.op_type != "Unique" or n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    axis = next((a.i for a in n.attribute if a.name == "axis"), None)
    shape = shapes.get(n.input[0], (0, None))[1]
    if axis is None or shape is None or not all(isinstance(d, int) for d in shape) or not -len(shape) <= axis < len(shape):
        return
    at = axis + (len(shape) if axis < 0 else 0)
    if shape[at] > 0 and math.prod(shape[at + 1:]) == 0:
        raise GraphError(f"{where}: a Unique along axis {axis} of {n.input[0]!r} ({list(shape)}), whose "
                         f"dimensions after the axis hold no element while the axis has {shape[at]}: onnxruntime "
                         "cannot run it (it aborts the process)")


def _check_block_rearrange(n, where: str, shapes: dict) -> None:
    """A DepthToSpace whose channels are no multiple of ``blocksize`` squared, or a SpaceToDepth whose height or width is no
    multiple of ``blocksize``, is refused naming the node. Checked where the input's shape is static.

    Why: ONNX's inference divides and rounds down (a DepthToSpace of ``[1, 6, 2, 2]`` by 2 was planned ``[1, 1, 4, 4]``,
    64 bytes of the input's 96), while onnxruntime refuses to run it ("DepthToSpace requires input depth to be a
    multiple of (block_size * block_size)", "SpaceToDepth requires input height to be a multiple of block_size")."""
    if n.op_type not in ("DepthToSpace", "SpaceToDepth") or n.domain not in ("", "ai.onnx") or not n.input:
        return
    bs = next((a.i for a in n.attribute if a.name == "blocksize"), None)
    x = shapes.get(n.input[0], (0, None))[1]
    if not bs or bs < 1 or x is None or len(x) != 4 or not all(isinstance(d, int) for d in x):
        return   # (ONNX's inference refuses a missing or non-positive blocksize and another rank)
    if n.op_type == "DepthToSpace" and x[1] % (bs * bs):
        why = f"its input {n.input[0]!r} ({list(x)}) has {x[1]} channels, no multiple of blocksize {bs} squared"
    elif n.op_type == "SpaceToDepth" and (x[2] % bs or x[3] % bs):
        why = f"its input {n.input[0]!r} ({list(x)}) has height {x[2]} and width {x[3]}, not both multiples of blocksize {bs}"
    else:
        return
    raise GraphError(f"{where}: {why}; onnxruntime refuses to run it (ONNX's inference rounds the output down)")


def _check_operand_shapes(n, where: str, shapes: dict, opset: int) -> None:
    """A Gemm whose bias ``C`` does not broadcast to its ``[M, N]`` product (one way: ``[2]`` for ``[2, 4]``, a rank
    over 2), or an InstanceNormalization whose input has fewer than 3 dimensions or whose ``scale`` or ``B`` is not
    1-D of the input's channel count, is refused naming the node, where the shapes are static.

    Why: ONNX's inference sizes both by their first input(s) and checks nothing of these operands; memplan planned
    them, and onnxruntime refuses to run them ("Gemm: Invalid bias shape for broadcast", "Mismatch between input
    data and scale: size of scale != input channel count")."""
    if n.domain not in ("", "ai.onnx") or n.op_type not in ("Gemm", "InstanceNormalization") or len(n.input) < 3:
        return
    got = [shapes.get(v, (0, None))[1] if v else None for v in n.input[:3]]
    if any(d is None or not all(isinstance(k, int) for k in d) for d in got):
        return
    why = ""
    if n.op_type == "Gemm" and opset >= 7 and len(got[0]) == 2 and len(got[1]) == 2:
        attrs = {a.name: a.i for a in n.attribute if a.name in ("transA", "transB")}
        mn = (got[0][1] if attrs.get("transA") else got[0][0], got[1][0] if attrs.get("transB") else got[1][1])
        c = got[2]
        if len(c) > 2 or any(d not in (1, t) for d, t in zip(reversed(c), reversed(mn))):
            why = f"its bias {n.input[2]!r} ({list(c)}) does not broadcast to its product's shape {list(mn)}"
    elif n.op_type == "InstanceNormalization":
        x = got[0]
        if len(x) < 3:
            why = f"its input {n.input[0]!r} ({list(x)}) has fewer than 3 dimensions"
        else:
            bad = next((k for k in (1, 2) if len(got[k]) != 1 or got[k][0] != x[1]), None)
            if bad is not None:
                why = (f"its {('scale', 'B')[bad - 1]} {n.input[bad]!r} ({list(got[bad])}) is not 1-D of the {x[1]} "
                       f"channels of its input {n.input[0]!r} ({list(x)})")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_einsum_lengths(n, where: str, shapes: dict) -> None:
    """An Einsum whose inputs give one label two lengths neither of which is 1 (``ij,jk`` of ``[2, 3]`` and
    ``[4, 5]``), whose term repeats a label over two lengths (``ii`` of ``[2, 1]``), or whose ellipses stand for
    dimensions that do not broadcast (``...ij,...jk`` of ``[2, 1, 3]`` and ``[4, 3, 5]``: ``[2]`` and ``[4]``; ONNX's
    inference took the first, round 76), is refused naming the node and the label, where the shapes are static.

    Why: ONNX's inference takes each label's first length and checks nothing; memplan planned such an Einsum, and
    onnxruntime refuses to run it ("Einsum operands could not be broadcast together")."""
    if n.op_type != "Einsum" or n.domain not in ("", "ai.onnx") or not n.input:
        return
    equation = next((a.s for a in n.attribute if a.name == "equation"), b"").decode("utf-8", "replace")
    parsed = _einsum_terms(equation)
    got = [shapes.get(v, (0, None))[1] for v in n.input]
    if parsed is None or len(parsed[0]) != len(n.input) or any(
            d is None or not all(isinstance(k, int) for k in d) for d in got):
        return
    seen: dict[str, tuple[int, str]] = {}
    dotted: list[tuple[list[int], str]] = []   # (what each input's ellipsis stands for, the input)
    for term, v, shape in zip(parsed[0], n.input, got):
        labels = _einsum_labels(term, len(shape))
        if labels is None:
            return   # (ONNX's inference refuses it)
        dotted.append(([d for c, d in zip(labels, shape) if c is None], v))
        own: dict[str, int] = {}
        for c, d in zip(labels, shape):
            if c is not None and own.setdefault(c, d) != d:   # (a diagonal: its lengths must be equal, 1 or not)
                raise GraphError(f"{where}: its label {c!r} appears twice in the term of {v!r} ({list(shape)}) with "
                                 f"lengths {own[c]} and {d}; onnxruntime refuses to run it")
            if c is None or d == 1:
                continue
            if c in seen and seen[c][0] != d:
                raise GraphError(f"{where}: its label {c!r} has length {seen[c][0]} in {seen[c][1]!r} and {d} in {v!r}; "
                                 "onnxruntime refuses to run it")
            seen.setdefault(c, (d, v))
    for k, (dims, v) in enumerate(dotted):   # (the dimensions ellipses stand for broadcast, aligned at the right)
        for other, w in dotted[:k]:
            if any(a != b and 1 not in (a, b) for a, b in zip(reversed(dims), reversed(other))):
                raise GraphError(f"{where}: its ellipsis stands for {other} in {w!r} and {dims} in {v!r}, which do "
                                 "not broadcast; onnxruntime refuses to run it (\"The broadcasted dimensions of the "
                                 "inputs are incompatible\")")


def _check_reverse_sequence(n, where: str, shapes: dict, values: dict) -> None:
    """A ReverseSequence whose ``sequence_lens`` is not 1-D of its input's batch length (static shapes), or holds a
    known length outside ``0..time`` (the input's length along ``time_axis``), or whose ``batch_axis`` and
    ``time_axis`` are one axis, is refused naming the node.

    Why: ONNX's inference gives the output the input's shape and checks neither; memplan planned such nodes, and
    onnxruntime refuses to run them ("sequence_lens shape must be {batch_size}", "Invalid sequence length")."""
    import numpy as np

    if n.op_type != "ReverseSequence" or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
        return
    x, lens = (shapes.get(v, (0, None))[1] if v else None for v in n.input[:2])
    if x is None or len(x) < 2 or not all(isinstance(d, int) for d in x):
        return
    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    batch, time = attrs.get("batch_axis", 1), attrs.get("time_axis", 0)
    if batch == time and batch in (0, 1):   # (ONNX's inference lets it through)
        raise GraphError(f"{where}: its batch_axis and time_axis are both {batch}; onnxruntime refuses to load it "
                         "(\"time_axis and batch_axis must have different values\")")
    if {batch, time} - {0, 1}:
        return   # (ONNX's inference refuses them)
    why = ""
    if lens is not None and all(isinstance(d, int) for d in lens) and tuple(lens) != (x[batch],):
        why = (f"its sequence_lens {n.input[1]!r} is {list(lens)}, not [{x[batch]}], the batch length of its input "
               f"{n.input[0]!r} ({list(x)})")
    elif n.input[1] in values:
        v = np.asarray(values[n.input[1]]).reshape(-1)
        out = v[(v < 0) | (v > x[time])] if v.dtype.kind in "iu" else v[:0]
        if out.size:
            why = (f"its sequence_lens {n.input[1]!r} hold {int(out[0])}, outside 0..{x[time]}, the length of its "
                   f"input {n.input[0]!r} ({list(x)}) along time axis {time}")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_element_operands(n, where: str, shapes: dict, opset: int) -> None:
    """Operand shapes onnxruntime's kernels refuse and ONNX's inference does not check, refused naming the node where
    the shapes are static: a Clip (opset 11 on) whose ``min`` or ``max`` is neither a scalar nor of shape ``[1]``; a
    GatherElements or ScatterElements whose indices differ in rank from the data or exceed it in a dimension other
    than ``axis``, a ScatterElements whose updates are not the indices' shape; a ScatterND whose updates are not
    ``indices.shape[:-1] + data.shape[k:]``; a floating Mod without ``fmod=1`` before opset 28 (Mod-28 takes the floored
    remainder of floats, and onnxruntime 1.32 runs it).

    Why: ONNX's inference sizes each by its first input and memplan planned them, while onnxruntime refuses to run
    them ("min should be a scalar", "'indices' shape should have values within bounds of 'data' shape", "Indices vs
    updates dimensions differs", "fmod attribute must be true for float, float16 and double types")."""
    op = n.op_type
    if n.domain not in ("", "ai.onnx") or op not in ("Clip", "GatherElements", "ScatterElements", "ScatterND", "Mod"):
        return

    def static(k: int):
        v = n.input[k] if k < len(n.input) else ""
        d = shapes.get(v, (0, None))[1] if v else None
        return tuple(d) if d is not None and all(isinstance(e, int) for e in d) else None

    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    why = ""
    if op == "Clip" and opset >= 11:
        for k, what in ((1, "min"), (2, "max")):
            d = static(k)
            if d is not None and d not in ((), (1,)):
                why = f"its {what} {n.input[k]!r} ({list(d)}) is neither a scalar nor of shape [1]"
                break
    elif op == "Mod":
        elem = shapes.get(n.input[0], (0, None))[0] if n.input and n.input[0] else 0
        if elem in (1, 10, 11, 16) and not attrs.get("fmod", 0) and opset < 28:   # (Mod-28 floors floats too)
            why = "it takes the remainder of floating values without fmod=1 (before opset 28)"
    elif op in ("GatherElements", "ScatterElements"):
        data, idx = static(0), static(1)
        if data is None or idx is None:
            return
        axis = attrs.get("axis", 0)
        axis += len(data) if axis < 0 else 0
        if len(idx) != len(data):
            why = f"its indices {n.input[1]!r} ({list(idx)}) differ in rank from its data {n.input[0]!r} ({list(data)})"
        elif any(i > d for k, (i, d) in enumerate(zip(idx, data)) if k != axis):
            why = (f"its indices {n.input[1]!r} ({list(idx)}) exceed its data {n.input[0]!r} ({list(data)}) in a "
                   f"dimension other than axis {axis}")
        elif op == "ScatterElements" and static(2) is not None and static(2) != idx:
            why = f"its updates {n.input[2]!r} ({list(static(2))}) are not its indices' shape {list(idx)}"
    else:   # ScatterND
        data, idx, upd = static(0), static(1), static(2)
        if data is None or idx is None or upd is None or not idx or idx[-1] > len(data):
            return   # (ONNX's inference refuses an index longer than the data's rank)
        want = idx[:-1] + data[idx[-1]:]
        if upd != want:
            why = (f"its updates {n.input[2]!r} ({list(upd)}) are not {list(want)} (its indices' {list(idx[:-1])} and "
                   f"its data's dimensions after the first {idx[-1]})")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_group_norm(n, where: str, shapes: dict, opset: int) -> None:
    """A GroupNormalization whose ``num_groups`` does not divide its input's channels (or is not positive), or whose
    ``scale`` or ``bias`` holds neither one value per group (opsets 18-20) or per channel (21 on) nor one for all, is
    refused naming the node, where the shapes are static.

    Why: ONNX's inference (and memplan's rule, ``SAME_SHAPE_OPS``) give the output the input's shape and check
    nothing of these; onnxruntime, which runs the op's function body, refuses to run them (its Reshape to the groups
    fails)."""
    if n.op_type != "GroupNormalization" or n.domain not in ("", "ai.onnx") or len(n.input) < 3:
        return
    x, scale, bias = (shapes.get(v, (0, None))[1] if v else None for v in n.input[:3])
    if x is None or len(x) < 2 or not all(isinstance(d, int) for d in x):
        return
    groups = next((a.i for a in n.attribute if a.name == "num_groups"), None)
    if groups is None:
        return   # (the checker refuses a missing required attribute)
    why = ""
    if groups <= 0 or x[1] % groups:
        why = f"its num_groups {groups} does not divide the {x[1]} channels of its input {n.input[0]!r} ({list(x)})"
    else:
        want, per = (x[1], "channel") if opset >= 21 else (groups, "group")
        for v, shape, what in ((n.input[1], scale, "scale"), (n.input[2], bias, "bias")):
            if shape is not None and all(isinstance(d, int) for d in shape) and math.prod(shape) not in (want, 1):
                why = f"its {what} {v!r} ({list(shape)}) holds neither one value per {per} ({want}) nor one for all"
                break
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_layer_norm_params(n, where: str, shapes: dict) -> None:
    """A LayerNormalization whose ``Scale`` or ``B`` does not broadcast (one way) to its input ``X`` (``[5]`` or
    ``[2, 4]`` for a ``[2, 3, 4]``, a rank over X's) is refused naming the node, where the shapes are static.

    Why: ONNX's inference gives the output X's shape and checks nothing of the others; memplan planned such nodes,
    and onnxruntime refuses to run them ("Scale and (optional) bias must match X.shape[axis:] or be
    NumPy-broadcastable to it"). Likewise one whose normalized dimensions (``X.shape[axis:]``) hold no element
    (``[2, 0]`` over axis -1): the same sizes as onnx's reference makes, but its mean and variance are of no element
    (NaN), and onnxruntime refuses to run it; an empty dimension before ``axis`` (no row to normalize) is planned, as
    both run it. An RMSNormalization (opset 23) likewise (round 76): onnxruntime 1.32 runs it by the same kernel, which
    refuses its axis outside X's rank ("axis 3 is not in valid range [-3,2]") and a scale that does not broadcast, both
    planned before (ONNX's inference checks neither)."""
    if n.op_type not in ("LayerNormalization", "RMSNormalization") or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    axis = next((a.i for a in n.attribute if a.name == "axis"), -1)
    if x is not None and not -len(x) <= axis < len(x):
        # (ONNX's function-body inference sizes Y as X whatever the axis; onnxruntime: "Unexpected axis value")
        raise GraphError(f"{where}: its axis {axis} is outside its input {n.input[0]!r}'s {len(x)} dimensions "
                         f"({list(x)}); onnxruntime refuses to run it")
    if x is None or not all(isinstance(d, int) for d in x):
        return
    normalized = x[axis:]
    if 0 in normalized:
        # (round 66: planned; onnx's reference computes a mean of no elements, NaN, and onnxruntime refuses it)
        raise GraphError(f"{where}: it normalizes over its input {n.input[0]!r}'s dimensions from axis {axis} "
                         f"({list(normalized)} of {list(x)}), which hold no element: the mean of none is undefined; "
                         "onnxruntime refuses to run it (\"Size of X.shape[axis:] must be at least 1, got 0\")")
    for k, what in ((1, "scale"), (2, "bias")):
        v = n.input[k] if k < len(n.input) else ""
        s = shapes.get(v, (0, None))[1] if v else None
        if s is None or not all(isinstance(d, int) for d in s):
            continue
        if len(s) > len(x) or any(d not in (1, t) for d, t in zip(reversed(s), reversed(x))):
            raise GraphError(f"{where}: its {what} {v!r} ({list(s)}) does not broadcast to its input {n.input[0]!r} "
                             f"({list(x)}); onnxruntime refuses to run it")


def _check_quantize_params(n, where: str, shapes: dict, opset: int) -> None:
    """A QuantizeLinear or DequantizeLinear (opset 13 on) whose ``scale`` or zero point does not fit its input as
    onnxruntime's kernel reads them is refused naming the node, where the shapes are static: per tensor (a scale of
    one element), the zero point of one element too; per axis, a 1-D scale (and zero point) of the input's length
    along ``axis``; blocked (``block_size`` > 0, opset 21 on), a scale of the input's rank, ``ceil(dim / block_size)``
    along ``axis`` and the input's dimensions elsewhere, and a zero point of the scale's shape.

    Why: ONNX's inference sizes the output by the input alone and memplan planned such nodes (a per-axis scale of
    ``[3]`` for ``[2, 4]`` along axis 1, a blocked scale with a scalar zero point), while onnxruntime refuses to run
    them ("scale must be 1D tensor with size 4", "x_zero_point must be null or 1D tensor with size 4"); likewise a
    per-axis or blocked one along an ``axis`` outside the input's rank ("IsAxisInRange"), which ONNX's inference does
    not refuse either; and a blocked one whose scale is one value (``[1]``, of an input ``[1]`` by blocks of 1 or
    ``[3]`` by 4), which onnxruntime reads as per tensor and refuses ("block_size must be 0 for per-tensor
    quantization")."""
    if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or n.domain not in ("", "ai.onnx") or opset < 13:
        return
    if len(n.input) < 2 or not n.input[0] or not n.input[1]:
        return
    got = [shapes.get(v, (0, None))[1] if v else () for v in (list(n.input[:3]) + [""] * 3)[:3]]
    if any(d is None or not all(isinstance(k, int) for k in d) for d in got):
        return
    x, scale, zp = got
    zero = n.input[2] if len(n.input) > 2 and n.input[2] else None
    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    axis, block = attrs.get("axis", 1), attrs.get("block_size", 0) if opset >= 21 else 0
    one = (lambda d: len(d) == 0 or (len(d) == 1 and d[0] == 1))   # noqa: E731 - a scalar or one-element vector
    why = ""
    if block > 0 and one(scale):   # (onnxruntime reads a one-element scale as per tensor, whatever block_size says)
        why = (f"its scale {n.input[1]!r} is one value ({list(scale)}), which onnxruntime reads as per tensor, where "
               f"its block_size is {block} (\"block_size must be 0 for per-tensor quantization\")")
    elif block > 0 or not one(scale):
        if not -len(x) <= axis < len(x):   # (ONNX's inference lets it through)
            raise GraphError(f"{where}: its axis {axis} is outside its input {n.input[0]!r}'s {len(x)} dimensions "
                             f"({list(x)}), where its scale {n.input[1]!r} ({list(scale)}) is "
                             f"{'blocked' if block > 0 else 'per axis'}; onnxruntime refuses to run it")
        axis += len(x) if axis < 0 else 0
        want = (tuple(-(-d // block) if k == axis else d for k, d in enumerate(x)) if block > 0 else (x[axis],))
        how = f"blocked by {block} along axis {axis}" if block > 0 else f"per axis {axis}"
        if tuple(scale) != want:
            why = f"its scale {n.input[1]!r} is {list(scale)}, where {how} of its input {n.input[0]!r} ({list(x)}) takes {list(want)}"
        elif zero is not None and tuple(zp) != want:
            why = (f"its zero point {zero!r} is {list(zp)}, where {how} of its input {n.input[0]!r} ({list(x)}) takes "
                   f"{list(want)}, its scale's shape")
    elif zero is not None and not one(zp):
        why = f"its zero point {zero!r} is {list(zp)}, where its scale {n.input[1]!r} ({list(scale)}) is one value"
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


#: ops that index their data input (0) by an indices input (1) along one ``axis`` (attribute, default 0)
AXIS_INDEXED_OPS = frozenset({"Gather", "GatherElements", "Scatter", "ScatterElements"})


def _check_known_indices(n, where: str, shapes: dict, values: dict) -> None:
    """A Gather, GatherElements, Scatter, ScatterElements, GatherND or ScatterND whose indices are known (a constant,
    an initializer, a value folded from shapes) and address an element outside its data's static dimension (an
    index ``i`` of a dimension of ``d`` not in ``-d..d-1``) is refused naming the node, the index and the dimension.

    Why: ONNX's inference sizes these by shapes alone and memplan planned them, while onnxruntime refuses to run
    them ("indices element out of data bounds, idx=3 must be within the inclusive range [-3,2]", "invalid index
    found"): a model whose every run fails."""
    import numpy as np

    op = n.op_type
    if n.domain not in ("", "ai.onnx") or len(n.input) < 2 or not n.input[0] or n.input[1] not in values:
        return
    if op not in AXIS_INDEXED_OPS and op not in ("GatherND", "ScatterND"):
        return
    data = shapes.get(n.input[0], (0, None))[1]
    idx = np.asarray(values[n.input[1]])
    if data is None or not all(isinstance(d, int) for d in data) or idx.dtype.kind not in "iu" or idx.size == 0:
        return
    attrs = {a.name: a.i for a in n.attribute if a.name in ("axis", "batch_dims")}
    if op in AXIS_INDEXED_OPS:
        axis = attrs.get("axis", 0)
        if not -len(data) <= axis < len(data):
            return   # (ONNX's inference refuses it)
        axis += len(data) if axis < 0 else 0
        columns = [(axis, idx.reshape(-1))]
    else:
        if idx.ndim < 1:
            return
        first = attrs.get("batch_dims", 0) if op == "GatherND" else 0
        k = idx.shape[-1]
        if first < 0 or first + k > len(data):
            return   # (ONNX's inference refuses it)
        if op == "GatherND" and 0 in (*idx.shape[:-1], *data[first + k:]):
            return   # (an empty output: onnxruntime reads no index, and runs it; round 67)
        flat = idx.reshape(-1, k)
        columns = [(first + j, flat[:, j]) for j in range(k)]
    for dim, col in columns:
        d = data[dim]
        out = col[(col < -d) | (col >= d)]
        if out.size:
            raise GraphError(f"{where}: its indices {n.input[1]!r} hold {int(out[0])}, outside dimension {dim} of its "
                             f"data {n.input[0]!r} ({list(data)}: -{d}..{d - 1}); onnxruntime refuses to run it")


def _check_prelu_slope(n, where: str, shapes: dict, opset: int) -> None:
    """A PRelu (opset 7 on) whose input and slope do not broadcast (``[2, 3]`` by ``[2]``) is refused naming the node,
    where both shapes are static. Why: ONNX's inference checks nothing of the slope and planned ``X``'s shape;
    onnxruntime's kernel broadcasts the two and refuses to run it ("axis == 1 || axis == largest"). (PRelu-1 and -6
    apply a slope per channel, ``[3]`` to ``[2, 3, 4]``.)"""
    if n.op_type != "PRelu" or n.domain not in ("", "ai.onnx") or len(n.input) != 2 or opset < 7:
        return
    x, slope = (shapes.get(v, (0, None))[1] for v in n.input)
    if (x is None or slope is None or not all(isinstance(d, int) for d in (*x, *slope))
            or _broadcast([x, slope]) is not None):
        return
    raise GraphError(f"{where}: its input {n.input[0]!r} ({list(x)}) and slope {n.input[1]!r} ({list(slope)}) do not "
                     "broadcast; onnxruntime refuses to run it")


def _pad_amounts(n, rank: int, values: dict, opset: int) -> list[tuple[int, int]] | None:
    """``[(before, after)]`` per axis of a Pad of known pads (an attribute before opset 11; inputs ``pads`` and
    ``axes`` from 11 on), or None where they are unknown or malformed (ONNX's inference judges those)."""
    import numpy as np

    if opset < 11:
        pads = next((list(a.ints) for a in n.attribute if a.name == "pads"), None)
        axes = None
    else:
        pads = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        axes = values.get(n.input[3]) if len(n.input) > 3 and n.input[3] else None
        if pads is None or (len(n.input) > 3 and n.input[3] and axes is None):
            return None
    try:
        pads = [int(v) for v in np.asarray(pads).reshape(-1)]
        axes = list(range(rank)) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
    except (TypeError, ValueError):
        return None
    axes = [a + rank if a < 0 else a for a in axes]
    if len(pads) != 2 * len(axes) or not all(0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
        return None
    amounts = [(0, 0)] * rank
    for k, a in enumerate(axes):
        amounts[a] = (pads[k], pads[k + len(axes)])
    return amounts


def _check_pad_mode(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A Pad in ``edge``, ``reflect`` or ``wrap`` mode that onnxruntime's kernel refuses for its (static) input
    shape and (known) pads is refused naming the node and the axis: an empty input padded to a non-empty axis
    (``edge``, ``reflect``), any empty input (``wrap``), an axis that negative pads crop to nothing, and a
    ``reflect`` pad of ``p`` on an axis of ``n <= p`` elements (after cropping).

    Why: ONNX's inference sizes these by ``dim + before + after`` alone, and memplan planned them (a ``reflect`` Pad
    of ``[2, 3]`` by 5 on each side of axis 1, an ``edge`` Pad of ``[2, 0]`` by 1), while onnxruntime refuses to run
    them ("Pad reflect: pre-pad (5) exceeds maximum allowed (2)", "Cannot use 'edge' mode to pad dimension with a
    value of 0"), as numpy's ``np.pad`` refuses the same. Measured on onnxruntime 1.32's CPU kernel for every
    axis length 0..3 and pads -2..4 on each side (``tests/test_onnx_round46.py``)."""
    if n.op_type != "Pad" or n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    mode = next((a.s.decode(errors="replace") for a in n.attribute if a.name == "mode"), "constant")
    if mode not in ("edge", "reflect", "wrap"):
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None or not all(isinstance(d, int) for d in x) or not x:
        return
    amounts = _pad_amounts(n, len(x), values, opset)
    if amounts is None or any(d + b + a < 0 for d, (b, a) in zip(x, amounts)):
        return   # (a negative output dimension is refused as such)
    why = ""
    if math.prod(x) == 0:
        grown = [i for i, (d, (b, a)) in enumerate(zip(x, amounts)) if d == 0 and b + a > 0]
        if mode == "wrap":
            why = f"its input {n.input[0]!r} ({list(x)}) is empty, which the 'wrap' mode cannot pad"
        elif grown:
            why = (f"it pads axis {grown[0]} of its input {n.input[0]!r} ({list(x)}), of 0 elements, to "
                   f"{sum(amounts[grown[0]])} in {mode!r} mode, which has no element to repeat")
    else:
        for i, (d, (b, a)) in enumerate(zip(x, amounts)):
            kept = d + min(b, 0) + min(a, 0)
            if kept <= 0:
                why = (f"its pads {[b, a]} crop axis {i} of its input {n.input[0]!r} ({list(x)}) to nothing, which "
                       f"the {mode!r} mode cannot pad")
            elif mode == "reflect" and max(b, a) >= kept:
                why = (f"it reflects {max(b, a)} elements on axis {i} of its input {n.input[0]!r} ({list(x)}), which "
                       f"has {kept} (at most {kept - 1} can be reflected)")
            if why:
                break
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


#: the pools onnxruntime's ``PoolAttributes::SetOutputSize`` checks: only the batch axis of their input may be empty
_POOLS = ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "MaxPool", "AveragePool", "LpPool")


def _check_kernel_extents(n, where: str, shapes: dict, values: dict) -> None:
    """Refuse, naming the node, what onnxruntime's CPU kernel refuses to run although ONNX's inference sizes it (at
    0 bytes, or at the input's): a Pad of a rank-0 input ("data_rank > 0 was false"); a MaxUnpool whose known
    ``output_shape`` is smaller than the unpooled shape along some axis ("output_shape is smaller than minimum
    required": a 0 there planned 0 bytes, or batch and channels not its input's); a Col2Im whose padded image is smaller than its dilated block along some
    axis ("Padded image extent is smaller than the dilated kernel"); an STFT whose frame is longer than its signal
    ("Ensure that the dft size is smaller than the signal"); a pool (``_POOLS``: global or not) of an input empty
    along an axis other than its batch (0 channels: "input_shape.Size() > 0 || input_shape[0] == 0"). Round 48b: each
    was planned (MaxPool/AveragePool/LpPool since session 48's lead fix)."""
    import numpy as np

    if n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    op = n.op_type
    x = shapes.get(n.input[0], (0, None))[1]
    static = x is not None and all(isinstance(d, int) for d in x)
    ints = {a.name: list(a.ints) for a in n.attribute if a.ints}

    def known(k: int):
        v = values.get(n.input[k]) if k < len(n.input) and n.input[k] else None
        return None if v is None or np.asarray(v).dtype.kind not in "iu" else [int(d) for d in np.asarray(v).reshape(-1)]

    why = ""
    if op == "Pad" and x is not None and len(x) == 0:
        why = f"its input {n.input[0]!r} is a scalar (rank 0), which onnxruntime cannot pad"
    elif op == "MaxUnpool" and static and len(x) >= 3 and known(2) is not None and len(known(2)) == len(x):
        target, r = known(2), len(x) - 2
        kernel = ints.get("kernel_shape", [])
        strides, pads = ints.get("strides", [1] * r), ints.get("pads", [0] * 2 * r)
        if len(kernel) == r and len(strides) == r and len(pads) == 2 * r:
            least = list(x[:2]) + [(x[i + 2] - 1) * strides[i] - pads[i] - pads[i + r] + kernel[i] for i in range(r)]
            small = [i for i in range(len(x)) if target[i] < least[i]]
            if target[:2] != least[:2]:
                why = (f"its output_shape {target} has batch and channels {target[:2]}, not its input's {least[:2]} "
                       "(onnxruntime: \"output_shape batch and channel dimensions must match input\")")
            elif small:
                why = (f"its output_shape {target} is smaller than the unpooled shape {least} along axis {small[0]} "
                       "(onnxruntime: \"output_shape is smaller than minimum required\")")
    elif op == "Col2Im" and known(1) is not None and known(2) is not None and len(known(1)) == len(known(2)):
        image, block, r = known(1), known(2), len(known(1))
        dil, pads = ints.get("dilations", [1] * r), ints.get("pads", [0] * 2 * r)
        strides = ints.get("strides", [1] * r)
        if len(dil) == r and len(pads) == 2 * r and len(strides) == r:
            for i in range(r):
                if image[i] + pads[i] + pads[i + r] < (block[i] - 1) * dil[i] + 1:
                    why = (f"its padded image ({image[i]} + pads {pads[i]} + {pads[i + r]}) is smaller than its "
                           f"dilated block ({(block[i] - 1) * dil[i] + 1}) along spatial axis {i}")
                    break
            why = why or _col2im_operand(n, x if static else None, image, block, dil, pads, strides)
    elif op == "STFT" and static and len(x) >= 2:
        frame = known(3)
        window = shapes.get(n.input[2], (0, None))[1] if len(n.input) > 2 and n.input[2] else None
        length = frame[0] if frame and len(frame) == 1 else (window[0] if window and isinstance(window[0], int) else None)
        if length is not None and length > x[1]:
            why = f"its frame of {length} samples is longer than its signal {n.input[0]!r} of {x[1]}"
    elif op in _POOLS and static and x and x[0] != 0 and 0 in x:
        why = (f"its input {n.input[0]!r} ({list(x)}) is empty along an axis other than the batch (onnxruntime: "
               "\"input_shape.Size() > 0 || input_shape[0] == 0\", or \"invalid channel count\")")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _col2im_operand(n, x: tuple | None, image: list[int], block: list[int], dil: list[int], pads: list[int],
                    strides: list[int]) -> str:
    """Why onnxruntime's Col2Im kernel refuses a node of known ``image_shape``, ``block_shape`` and attributes on an
    input of static shape ``x`` (None: only the attributes are checked), or "".

    Why: ONNX's inference sizes the output ``[N, C // prod(block), *image]`` from the input's batch and channels
    alone, so an input ``[1, 5, 5]`` by blocks ``[2, 2]`` (5 is no multiple of 4) was planned 100 bytes, and an
    input whose column count is not the number of sliding blocks the attributes give (``[2, 12, 6]`` where 12 blocks
    fit) was planned too; onnxruntime refuses to run both ("must be a positive multiple of prod(block_shape)", "does
    not match the number of sliding blocks"), as it refuses a stride or dilation below 1 when it loads the model."""
    r = len(image)
    for name, vals in (("strides", strides), ("dilations", dil)):
        if any(v < 1 for v in vals):
            return f"its {name} {vals} are not all positive"
    if any(b < 1 for b in block):
        return f"its block_shape {block} is not all positive"
    if x is None or len(x) != 3:
        return ""
    per = math.prod(block)
    if x[1] <= 0 or x[1] % per:
        return (f"its input {n.input[0]!r} has {x[1]} channels x block elements (dimension 1 of {list(x)}), not a "
                f"positive multiple of prod(block_shape {block}) = {per}")
    count = math.prod((image[i] + pads[i] + pads[i + r] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
                      for i in range(r))
    if x[2] != count:
        return (f"its input {n.input[0]!r} has {x[2]} columns (dimension 2 of {list(x)}), but image_shape {image}, "
                f"block_shape {block}, pads {pads}, strides {strides} and dilations {dil} make {count} sliding blocks")
    return ""


def _check_slice1(n, where: str, shapes: dict) -> None:
    """A Slice-1 (``starts`` / ``ends`` / ``axes`` attributes) is sized by the rule onnxruntime runs it with
    (``_slice1_shape``): attributes it refuses (an axis out of range or repeated, lengths that differ) are refused
    here too, where ONNX's inference planned the input's shape for them (``axes=[2]`` of a matrix), and an
    inferred shape that differs from the rule's is refused rather than planned."""
    if n.op_type != "Slice" or n.domain not in ("", "ai.onnx") or len(n.input) != 1 or not n.output:
        return
    elem, shape = shapes.get(n.input[0], (0, None))
    if not n.output[0] or shape is None or not all(isinstance(d, int) for d in shape):
        return
    found = _slice1_shape(n, n.output[0], shape, elem)
    attrs = {a.name: list(a.ints) for a in n.attribute if a.name in ("starts", "ends", "axes")}
    if not found:
        raise GraphError(f"{where}: its attributes {attrs} are not valid for an input of shape {list(shape)} (an axis "
                         "out of range or repeated, or lists of different lengths): onnxruntime refuses it")
    inferred = shapes.get(n.output[0], (0, None))[1]
    if inferred is not None and all(isinstance(d, int) for d in inferred) and tuple(inferred) != found[n.output[0]][0]:
        raise GraphError(f"{where}: value {n.output[0]!r} is inferred {list(inferred)}, but a slice {attrs} of "
                         f"{list(shape)} is {list(found[n.output[0]][0])}")


#: ``ai.onnx.ml`` ops onnxruntime runs only on inputs of some ranks: op -> (lowest, highest or None), why
_ML_RANKS = {"Normalizer": (1, 2, "[C] or [N, C]"), "LinearRegressor": (1, 2, "[C] or [N, C]"),
             "SVMRegressor": (1, 2, "[C] or [N, C]"), "SVMClassifier": (1, 2, "[C] or [N, C]"),
             "Scaler": (1, None, "at least one dimension"), "Imputer": (1, None, "at least one dimension"),
             "TreeEnsembleRegressor": (1, 2, "[C] or [N, C]")}


def _check_ml_node(n, where: str, shapes: dict) -> None:
    """An ``ai.onnx.ml`` node onnxruntime refuses is refused here by its rule, naming the node.

    Why: these ops have no ONNX shape inference (or one that checks less than the runtime): a Normalizer of a
    3-D input was refused only as "shape inference could not find its rank", a Scaler of a scalar was planned
    as a scalar, and a LinearClassifier with no ``intercepts`` was planned with a ``[N, 0]`` score, though
    onnxruntime refuses each (the classifier's rules below are those its kernel checks when loading). A linear
    model with fewer coefficients than its classes (targets) times the input's features is refused as its kernel
    refuses it when run (``_check_linear_coefficients``): planned, it failed only at run time."""
    if n.domain != "ai.onnx.ml":
        return
    op = n.op_type
    attrs = {a.name: a for a in n.attribute}
    if op in _ML_RANKS and n.input and n.input[0]:
        shape = shapes.get(n.input[0], (0, None))[1]
        low, high, takes = _ML_RANKS[op]
        if shape is not None and (len(shape) < low or high is not None and len(shape) > high):
            raise GraphError(f"{where}: its input {n.input[0]!r} has rank {len(shape)} ({list(shape)}), but {op} "
                             f"takes {takes} (onnxruntime refuses it too)")
    elem = shapes.get(n.input[0], (0, None))[0] if n.input and n.input[0] else 0
    if op in _ML_FLOAT_ONLY and elem and elem != 1:
        raise GraphError(f"{where}: its input {n.input[0]!r} is {_ML_TYPE_NAMES.get(elem, f'type {elem}')}, but "
                         f"onnxruntime runs {op} on float only (no kernel for another type, on any provider: "
                         "onnxruntime's ai.onnx.ml ops are CPU ones); Cast it to float first")
    if op == "LinearRegressor" and "targets" in attrs and attrs["targets"].i < 1:
        raise GraphError(f"{where}: its attribute targets is {attrs['targets'].i}, but it must be at least 1 (one "
                         "column of output per target); onnxruntime refuses the model")
    if op == "TreeEnsembleRegressor" and "n_targets" in attrs and attrs["n_targets"].i < 1:
        raise GraphError(f"{where}: its attribute n_targets is {attrs['n_targets'].i}, but it must be at least 1 (one "
                         "column of output per target); onnxruntime refuses the model")
    if op in ("SVMClassifier", "SVMRegressor") and "kernel_params" not in attrs:
        # (round 73: onnxruntime's SVMCommon reads it with GetAttrs, which fails where it is absent, though ONNX's
        # schema makes it optional; planned before)
        raise GraphError(f"{where}: it has no kernel_params attribute, which onnxruntime's {op} kernel requires (it "
                         "refuses to load the model: \"No attribute with this name is defined\"); give it "
                         "kernel_params (gamma, coef0, degree), as converters write it")
    if op == "SVMClassifier":
        strings = len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0
        classes = strings or (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0)
        per_class = list(attrs["vectors_per_class"].ints) if "vectors_per_class" in attrs else []
        floats = (lambda k: len(attrs[k].floats) if k in attrs else 0)   # noqa: E731
        why = ("it has no class labels (classlabels_ints or classlabels_strings)" if classes == 0 else
               f"its vectors_per_class has {len(per_class)} entries, not one per class ({classes})"
               if sum(per_class) > 0 and len(per_class) != classes else
               f"its prob_a has {floats('prob_a')} entries and its prob_b {floats('prob_b')}"
               if floats("prob_a") != floats("prob_b") else "")
        if why:
            raise GraphError(f"{where}: {why}; onnxruntime refuses the model")
    _check_ml_declared(n, where, shapes)
    if op == "LinearClassifier":
        count = len(attrs["intercepts"].floats) if "intercepts" in attrs else 0
        # the kernel takes the string labels where there are any, else the integer ones
        strings = len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0
        n_labels = strings or (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0)
        labels = f"{n_labels} ({'classlabels_strings' if strings else 'classlabels_ints'})"
        coefficients = len(attrs["coefficients"].floats) if "coefficients" in attrs else 0
        why = ("it has no intercepts (one per class: its score would have no column)" if count == 0 else
               f"it has one intercept (binary) but {labels} class labels, not 2" if count == 1 and n_labels not in (0, 2)
               else f"its {count} intercepts define {count} classes but it has {labels if n_labels else 'no'} class labels"
               if count > 1 and n_labels < count else
               f"its {coefficients} coefficients are no multiple of its {count} classes (intercepts)"
               if coefficients % count else "")
        if why:
            raise GraphError(f"{where}: {why}; onnxruntime refuses the model")
        _check_linear_coefficients(n, where, shapes, coefficients, count, "classes (intercepts)")
    if op == "LinearRegressor":
        targets = attrs["targets"].i if "targets" in attrs else 1
        coefficients = len(attrs["coefficients"].floats) if "coefficients" in attrs else 0
        _check_linear_coefficients(n, where, shapes, coefficients, targets, "targets")
    if op in ("SVMRegressor", "SVMClassifier"):
        _check_svm_features(n, where, shapes)


def _check_ml_declared(n, where: str, shapes: dict) -> None:
    """An ``ai.onnx.ml`` output the spec's rule sizes (``_ml_shapes``) that the model declares of another shape is
    refused, naming the node: ONNX's inference has no rule for these ops, so the declaration was planned as given,
    and onnxruntime writes the rule's shape whatever the model declares (a LinearRegressor of 2 targets declared
    ``[2, 1]`` was planned 8 bytes; onnxruntime writes ``[2, 2]``, 16, past the slot)."""
    static = {v: tuple(info[1]) for v, info in shapes.items()
              if isinstance(info[1], tuple) and all(isinstance(d, int) for d in info[1])}
    elems = {v: info[0] for v, info in shapes.items() if info[0] and info[0] != -1}
    for o, (dims, _elem) in _ml_shapes(n, static, elems).items():
        have = shapes.get(o, (0, None))[1]
        if isinstance(have, tuple) and (len(have) != len(dims) or any(isinstance(a, int) and a != b
                                                                       for a, b in zip(have, dims))):
            raise GraphError(f"{where}: value {o!r} is declared {list(have)}, but onnxruntime's {n.op_type} writes "
                             f"it {list(dims)} for its input {n.input[0]!r} ({list(static.get(n.input[0], ()))}) "
                             "and attributes: a plan of the declared size would not hold it; correct or remove "
                             "the declaration")


#: ``ai.onnx.ml`` ops onnxruntime has a kernel for only of float input (its CPU registry; its other providers
#: register none of that domain), though the spec allows double, int32 and int64
_ML_FLOAT_ONLY = frozenset({"LinearRegressor", "SVMRegressor"})
_ML_TYPE_NAMES = {10: "float16", 11: "double", 6: "int32", 7: "int64", 16: "bfloat16"}


def _check_svm_features(n, where: str, shapes: dict) -> None:
    """SVMRegressor / SVMClassifier: onnxruntime's kernel takes exactly the features its support vectors have
    (``support_vectors`` over their count: ``n_supports``, or the sum of ``vectors_per_class``), or, with none
    (a linear SVM), its ``coefficients`` over its classes (one for the regressor; ``classlabels_*``, at least one,
    for the classifier), and fails at run time on an input whose last dimension differs ("Invalid input for
    SVMRegressor: expected feature_count=3, actual num_features=4"); planned, such a model failed only when run."""
    shape = shapes.get(n.input[0], (0, None))[1] if n.input and n.input[0] else None
    if shape is None or len(shape) not in (1, 2) or not isinstance(shape[-1], int):
        return
    attrs = {a.name: a for a in n.attribute}
    floats = (lambda k: len(attrs[k].floats) if k in attrs else 0)   # noqa: E731
    if n.op_type == "SVMRegressor":
        vectors, classes = (attrs["n_supports"].i if "n_supports" in attrs else 0), 1
    else:
        vectors = sum(attrs["vectors_per_class"].ints) if "vectors_per_class" in attrs else 0
        classes = (len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0) or \
            (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0) or 1
    if vectors > 0:
        features, whence = floats("support_vectors") // vectors, f"its {vectors} support vectors have"
    else:
        features, whence = floats("coefficients") // classes, "its coefficients (a linear SVM) take"
    if shape[-1] != features:
        raise GraphError(f"{where}: {whence} {features} features, but its input {n.input[0]!r} ({list(shape)}) has "
                         f"{shape[-1]}; onnxruntime refuses to run it")


def _check_linear_coefficients(n, where: str, shapes: dict, coefficients: int, rows: int, what: str) -> None:
    """LinearClassifier / LinearRegressor: onnxruntime's kernel reads ``rows`` x features coefficients (features:
    the last dimension of a ``[C]`` or ``[N, C]`` input) and fails at run time when there are fewer ("coefficients
    size (4) is less than class_count (2) * num_features (3)"); more are accepted (the rest unread)."""
    shape = shapes.get(n.input[0], (0, None))[1] if n.input and n.input[0] else None
    if shape is None or len(shape) not in (1, 2) or not isinstance(shape[-1], int):
        return
    if coefficients < rows * shape[-1]:
        raise GraphError(f"{where}: it has {coefficients} coefficients, fewer than its {rows} {what} times the "
                         f"{shape[-1]} features of its input {n.input[0]!r} ({list(shape)}); onnxruntime refuses to "
                         "run it")


def _container_bytes(n, where: str, out: str, kind: str, in_bytes: list[int], held_bytes: list[int] | None) -> int:
    """The bytes of the sequence or optional ``out`` of node ``n``: those of the tensors it holds, which
    are the node's inputs (``CONTAINER_OPS``), so that its size is exact and never estimated. The dynamo
    exporter writes ``torch.split`` as SplitToSequence -> SequenceAt when it does not optimize; runtimes
    keep the pieces, one tensor each, until the last SequenceAt (which copies one out). (No sequence holds a
    sub-byte type, whose pieces would each round up: ONNX's type check refuses them.) Another op's sequence
    (SequenceErase's) holds ``held_bytes``, the bytes of the tensors the importer followed into it, where known."""
    held = CONTAINER_OPS.get(n.op_type, -1) if n.domain in ("", "ai.onnx") else -1
    if held == -1 and held_bytes is not None and n.domain in ("", "ai.onnx"):
        return sum(held_bytes)
    if held == -1:
        article = "an" if kind[:1] in "aeiou" else "a"
        raise GraphError(f"{where}: value {out!r} is {article} {kind} whose elements' sizes no shape tells (only "
                         f"tensors, and sequences or optionals made by {', '.join(sorted(CONTAINER_OPS))}, are supported)")
    return sum(in_bytes if held is None else in_bytes[:held])


def _dims(info: tuple) -> tuple:
    """A value's dims for the cost estimate: a sequence or optional has none (its elements' are unknown)."""
    return () if info[0] == -1 else info[1]


def parse_dims(items: list[str] | None) -> dict[str, int]:
    """``["batch=4", "seq=128"]`` -> ``{"batch": 4, "seq": 128}`` (the CLI's ``--dim`` values). A GraphError for
    anything but a list or tuple of str (or None). Why: it is public (``memplan.importers.onnx.parse_dims``), and
    ``parse_dims("batch=4")`` iterated the string's characters ("--dim 'b': expected NAME=VALUE"), ``parse_dims(5)``
    and ``parse_dims([b"n=1"])`` raised a raw TypeError/AttributeError."""
    out: dict[str, int] = {}
    if items is not None and not isinstance(items, (list, tuple)):
        hint = f" (one NAME=VALUE: give [{_short(items)}])" if isinstance(items, str) else ""
        raise GraphError(f"dims: expected a list of 'NAME=VALUE' strings, not {type(items).__name__} "
                         f"{_short(items)}{hint}")
    for item in items or ():
        if not isinstance(item, str):
            raise GraphError(f"dims: {_short(item)} is not a 'NAME=VALUE' string ({type(item).__name__})")
        # (split at the last '=': the value is digits, while an exporter's dimension name may hold '=' itself, as
        # ``N=2``, which the first '=' made unnameable: "--dim 'N=2=3': value '2=3' is not an integer")
        key, sep, val = item.rpartition("=")
        key, val = key.strip(), val.strip(" ")   # (spaces around '=' are the syntax's, documented; the digits ASCII)
        if not sep or not key:
            raise GraphError(f"--dim {item!r}: expected NAME=VALUE")
        if not _DECIMAL.fullmatch(val):   # int() also takes ' 4', '1_0' and other scripts' digits ('٤')
            raise GraphError(f"--dim {item!r}: value {val!r} is not an integer (plain ASCII decimal digits)")
        # (past int()'s 4300 digits, out of range all the same)
        n = int(val) if len(val) < 100 else (-1 if val[0] == "-" else MAX_DIM + 1)
        if not 0 <= n <= MAX_DIM:   # named by the option, not by the model the check would be made on later
            raise GraphError(f"--dim {item!r}: value {n} is not in 0..2**63-1")
        if key in out:   # a typo'd repeat must not silently override the first value, and a repeat is refused
            raise GraphError(f"--dim {item!r}: {key!r} is already {out[key]} (each dimension at most once, as "
                             "every option and list value of memplan's: give it once)")   # (argtypes.StoreOnce)
        out[key] = n
    return out


# -- checks before inference --------------------------------------------------------------------------

def _dims_hint(inputs, params: set[str]) -> str:
    """The symbolic dimensions a ``--dim`` may name, the graph inputs' first: exporters also name inner
    dimensions by formula (torch.onnx's ``seq + 1``), which fixing the inputs' dimensions already decides."""
    own = sorted({d.dim_param for vi in inputs if vi.type.HasField("tensor_type")
                  for d in vi.type.tensor_type.shape.dim if d.dim_param})
    inner = sorted(params - set(own))
    if not params:
        return "it has none"
    return "; ".join(part for part in (own and f"its inputs have: {', '.join(own)}",
                                       inner and f"inside it: {', '.join(inner)}") if part)


def _check_dims_option(batch: int | None, dims: Mapping[str, int] | None) -> dict[str, int]:
    """The ``dims`` a Python caller gave, checked and named as the arguments they are (the CLI's ``--dim`` and
    ``--batch`` were checked by its parser): a key that is no string (``{1: 4}``) was taken as the name "1"."""
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or not 0 <= batch <= MAX_DIM):
        raise GraphError(f"batch={_short(batch)} is not a non-negative integer below 2**63")
    if dims is not None and not isinstance(dims, Mapping):
        raise GraphError(f"dims must be a mapping of dimension names to sizes, not {type(dims).__name__}")
    fixed = {}
    for k, v in (dims or {}).items():
        if not isinstance(k, str) or not k:
            raise GraphError(f"dims: key {_short(k)} is not a dimension name (a non-empty string)")
        n = as_int(v)   # a numpy integer as the int it equals, as every other integer option takes it
        if n is None or not 0 <= n <= MAX_DIM:
            raise GraphError(f"dims[{k!r}]: value {_short(v)} is not a non-negative integer below 2**63")
        fixed[k] = n
    return fixed


def _einsum_terms(equation: str) -> tuple[list[str], str] | None:
    """The input terms and the output labels of an Einsum ``equation`` (implicit: the labels used once), spaces
    dropped; None where a term holds anything but letters and one ellipsis."""
    eq = equation.replace(" ", "")
    ins, arrow, out = eq.partition("->")
    terms = ins.split(",")

    def plain(t: str) -> bool:
        rest = t.replace("...", "", 1)
        return rest == "" or rest.isascii() and rest.isalpha()

    if not all(plain(t) for t in [*terms, out]):
        return None
    if not arrow:
        out = "".join(c for c in set(ins) if c.isalpha() and ins.count(c) == 1)
    return terms, out.replace("...", "")


def _einsum_labels(term: str, rank: int) -> list[str | None] | None:
    """The label of each of the ``rank`` dimensions an Einsum ``term`` names (None: one its ellipsis stands for), or
    None where the term does not fit the rank."""
    head, dots, tail = term.partition("...")
    if not dots:
        return list(head) if len(head) == rank else None
    if len(head) + len(tail) > rank:
        return None
    return [*head, *[None] * (rank - len(head) - len(tail)), *tail]


def _slice1_shape(n, out: str, shape: tuple[int, ...], elem: int) -> dict:
    """``{out: (shape, elem)}`` of a Slice-1 (``starts``/``ends``/``axes`` attributes) of a ``shape`` input, by
    the rule onnxruntime runs it with: a negative axis counts from the end, a negative start or end from the end
    of its dimension, and both are then clamped to the dimension. ONNX's inference of Slice-1 gives up on a
    negative axis, and on a start or end it has to clamp (``starts=[-100]``), although nothing of either depends
    on what the inputs hold. Empty where the attributes are invalid (different lengths, an axis out of range or
    repeated): left unsized, as onnxruntime refuses them."""
    attrs = {a.name: list(a.ints) for a in n.attribute}
    starts, ends = attrs.get("starts"), attrs.get("ends")
    rank = len(shape)
    axes = attrs.get("axes", list(range(len(starts or ()))))
    if starts is None or ends is None or not len(starts) == len(ends) == len(axes):
        return {}
    axes = [a + rank if a < 0 else a for a in axes]
    if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
        return {}
    dims = list(shape)
    for a, start, end in zip(axes, starts, ends):
        d = shape[a]
        start, end = (min(max(v + d if v < 0 else v, 0), d) for v in (start, end))
        dims[a] = max(end - start, 0)
    return {out: (tuple(dims), elem)}


#: ``ai.onnx.ml`` ops whose output has its input's shape, where ONNX's inference gives none: op -> the output's
#: elem type (None: the input's), the input ranks the runtime takes (None: any). Normalizer and Scaler always
#: return float (their spec's ``tensor(float)``), whatever they read; Normalizer takes [C] or [N, C] only
_ML_SAME_SHAPE = {"Normalizer": (1, (1, 2)), "Scaler": (1, None), "Imputer": (None, None)}


def _ml_shapes(n, shapes: dict, elems: dict) -> dict:
    """``{output: (static shape, elem type)}`` of ``ai.onnx.ml`` node ``n`` by its spec's rule, for the ops
    ONNX's shape inference leaves unsized (Normalizer, Scaler, Imputer, LinearRegressor, SVMRegressor,
    SVMClassifier, FeatureVectorizer, TreeEnsembleRegressor-1: none of them has an inference function; ArrayFeatureExtractor of a vector or with a
    scalar index). Each rule was checked against onnxruntime's outputs: a regressor or feature vector of a
    1-D input ``[C]`` is one row, ``[1, ...]``, as is ArrayFeatureExtractor's of a vector. Empty where no rule
    applies (the value is then refused as unsized)."""
    ins = list(n.input)
    out = n.output[0] if n.output else ""
    if not out or not ins or ins[0] not in shapes or not elems.get(ins[0]):
        return {}
    shape, elem = shapes[ins[0]], elems[ins[0]]
    attrs = {a.name: a for a in n.attribute}
    rows = (1,) if len(shape) == 1 else shape[:1]   # a regressor's examples: [C] is one, [N, C] N
    op = n.op_type
    if op in _ML_SAME_SHAPE:
        out_elem, ranks = _ML_SAME_SHAPE[op]
        if ranks is None or len(shape) in ranks:
            return {out: (shape, out_elem or elem)}
    elif op in ("LinearRegressor", "SVMRegressor", "TreeEnsembleRegressor") and len(shape) in (1, 2):
        targets = attrs["targets"].i if op == "LinearRegressor" and "targets" in attrs else 1
        if op == "TreeEnsembleRegressor":   # (float whatever its input's type; n_targets wide, no default)
            targets = attrs["n_targets"].i if "n_targets" in attrs else 0
        if targets >= 1:
            return {out: (rows + (targets,), 1)}
    elif op == "SVMClassifier" and len(shape) in (1, 2) and len(n.output) >= 2 and n.output[1]:
        # onnxruntime's kernel: labels [N] (strings where it has string labels, else int64); scores [N, classes],
        # except an SVM of support vectors without probabilities (prob_a), which writes one score per pair of
        # classes (classes * (classes - 1) / 2), or 2 for two classes or one: its post_transform changes no size
        strings = len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0
        classes = strings or (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0)
        vectors = sum(attrs["vectors_per_class"].ints) if "vectors_per_class" in attrs else 0
        probabilities = "prob_a" in attrs and len(attrs["prob_a"].floats) > 0
        if classes >= 1:
            width = classes if vectors <= 0 or probabilities else max(classes * (classes - 1) // 2, 2)
            return {out: (rows, 8 if strings else 7), n.output[1]: (rows + (width,), 1)}
    elif op == "FeatureVectorizer":
        widths = list(attrs["inputdimensions"].ints) if "inputdimensions" in attrs else []
        sized = [shapes.get(v) for v in ins]
        if (len(widths) == len(ins) and all(w >= 0 for w in widths) and None not in sized
                and all(len(s) >= 1 for s in sized)
                and len({(1,) if len(s) == 1 else s[:1] for s in sized}) == 1):
            return {out: (rows + (sum(widths),), 1)}
    elif op == "ArrayFeatureExtractor" and len(shape) >= 1 and len(ins) > 1 and ins[1] in shapes:
        return {out: (((1,) if len(shape) == 1 else shape[:-1]) + (math.prod(shapes[ins[1]]),), elem)}
    return {}
