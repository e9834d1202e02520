"""What onnxruntime's CPU kernels refuse although ONNX's shape inference sizes the node (round 49).

Why: the importer plans what ONNX's inference sizes, but a plan is only useful for a model some runtime runs. Each
check here names a node whose known attributes or constant inputs onnxruntime's kernel refuses when it loads or runs
the model, so memplan refuses it too, naming the node, instead of planning a model nothing can execute (or planning
a size no kernel writes). Pure functions of one node, its inputs' static shapes (``shapes``: value -> ``(elem, dims)``)
and the values the importer knows (``values``: value -> numpy array); no onnx import here.
"""

from __future__ import annotations

import math
import re

from ...errors import GraphError


def _default_domain(n) -> bool:
    return (n.domain or "") in ("", "ai.onnx")


def _attr(n, name: str):
    return next((a for a in n.attribute if a.name == name), None)


def check_constant_of_shape_value(n, where: str) -> None:
    """A ConstantOfShape whose ``value`` attribute is not a 1-D tensor of exactly one element is refused.

    Why: ONNX's inference reads only the element type of ``value`` (and that it is 1-D), so ``value`` of
    ``[2]`` elements was planned as a fill of the first; onnxruntime refuses to load the model ("Must have a
    single value" in constant_of_shape_base.h), as it does an empty ``value``."""
    if n.op_type != "ConstantOfShape" or not _default_domain(n):
        return
    a = _attr(n, "value")
    if a is None or not a.HasField("t"):
        return
    dims = list(a.t.dims)
    if dims != [1]:
        raise GraphError(f"{where}: its value attribute is a tensor of shape {dims}, not one element of shape [1]; "
                         "onnxruntime refuses to load the model")


#: optional inputs the specification lets a model list as ``""`` (omitted), as ONNX's inference reads them, but that
#: onnxruntime 1.32's kernel, given the input, does not take (round 77): op -> (the first opset where the input is
#: optional, its index and name, what the kernel does, how to omit it instead)
_KERNEL_TAKES_NO_EMPTY = {
    "Squeeze": (13, 1, "axes", 'requires it and refuses to run the node ("Axes input is null")',
                "list the data input alone to squeeze every dimension of length 1"),
    "DFT": (20, 2, "axis", "reads it and crashes the process",
            "list the inputs before it alone to take the default axis (-2)"),
}


def check_input_named_empty(n, where: str, opset: int) -> None:
    """A node of ``_KERNEL_TAKES_NO_EMPTY`` whose optional input there is listed as ``""`` (a Squeeze ``["x", ""]``, a
    DFT ``["x", "", ""]`` or ``["x", "n", ""]``) is refused naming the node.

    Why: the specification reads an empty name as the input omitted (a Squeeze's every dimension of length 1, a DFT's
    axis -2), and so does ONNX's inference, so it was planned; onnxruntime's kernel, given the input, requires it or
    reads it (round 77). Omitted by listing fewer inputs (``["x"]``, ``["x", "n"]``), it runs."""
    rule = _KERNEL_TAKES_NO_EMPTY.get(n.op_type)
    if rule is None or not _default_domain(n):
        return
    since, k, name, does, instead = rule
    if opset < since or len(n.input) <= k or n.input[k]:
        return
    raise GraphError(f"{where}: its {name} input is listed as '' (omitted); onnxruntime's {n.op_type} kernel, given "
                     f"{('a second', 'a third')[k - 1]} input, {does}: {instead}")


def _scales(n, x: tuple, values: dict, opset: int, resize_scales) -> list[float] | None:
    """The scale per dimension onnxruntime validates for a Resize or Upsample ``n`` (``resize_scales`` is the
    importer's ``_ort_resize_scales``; a Resize of opset 10 reads ``scales`` as input 1, which it does not)."""
    import numpy as np

    if n.op_type == "Resize" and opset < 11:
        v = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        if v is None or v.dtype.kind != "f":
            return None
        return [float(np.float32(e)) for e in np.asarray(v).reshape(-1)]
    return resize_scales(n, x, values, opset)


def _check_resize_from_empty(n, where: str, x: tuple, values: dict, opset: int) -> None:
    """A Resize (11 and later) whose known ``sizes`` ask elements of an axis where its input has none is refused
    naming the node, the axis and the size.

    Why: ONNX's inference takes the sizes as the output's shape, so a ``[0, 2, 4, 5]`` Resized to ``sizes=[2, 2, 7,
    3]`` was planned ``[2, 2, 7, 3]``, while onnxruntime refuses to run it ("Input dim is zero but required output
    dim is non-zero. Cannot scale 0 by any factor"), as onnx's reference fails to. (An empty axis to 0 runs.)
    Also one that keeps the aspect ratio over an empty axis: its ratio there is 0 / 0, and ONNX's rule sized the
    other axes otherwise than onnxruntime (``[6, 3, 1, 0]`` to ``sizes=[6, 0]`` over axes ``[1, 3]``,
    ``not_larger``: planned ``[6, 6, 1, 0]``, onnxruntime writes ``[6, 3, 1, 0]``)."""
    import numpy as np

    if n.op_type != "Resize" or opset < 11 or len(n.input) < 4 or not n.input[3]:
        return
    v = values.get(n.input[3])
    if v is None or v.dtype.kind not in "iu":
        return
    sizes = np.asarray(v).reshape(-1)
    ax = _attr(n, "axes")
    axes = list(ax.ints) if opset >= 18 and ax is not None else list(range(len(x)))
    axes = [a + len(x) if a < 0 else a for a in axes]
    if len(sizes) != len(axes) or any(not 0 <= a < len(x) for a in axes):
        return
    policy = _attr(n, "keep_aspect_ratio_policy")
    kept = policy.s.decode(errors="replace") if opset >= 18 and policy is not None else "stretch"
    empty = [a for a in axes if x[a] == 0]
    if kept != "stretch" and empty:
        # (the one scale is min or max over sizes / dims, one of them 0 / 0: ONNX's rule gave [6, 6, 1, 0] where
        # onnxruntime wrote [6, 3, 1, 0], or refused to run it)
        raise GraphError(f"{where}: it keeps the aspect ratio ({kept!r}) over axis {empty[0]} of its input "
                         f"{n.input[0]!r} ({list(x)}), which is empty: the ratio of that axis is 0 / 0, and the size "
                         "it gives the other axes is one runtimes disagree on; give the sizes stretched "
                         "(keep_aspect_ratio_policy='stretch') or leave the empty axis out of axes")
    for a, s in zip(axes, sizes):
        if x[a] == 0 and int(s) != 0:
            raise GraphError(f"{where}: its sizes {n.input[3]!r} ask {int(s)} elements along axis {a}, where its input "
                             f"{n.input[0]!r} ({list(x)}) has none; onnxruntime refuses to run it (\"Input dim is zero "
                             "but required output dim is non-zero\")")


def check_resize_scale_range(n, where: str, shapes: dict, values: dict, opset: int, resize_scales) -> None:
    """A Resize of a known scale that is not positive (0, or a ``sizes`` of 0 along an axis of elements), or an
    Upsample of a known scale below 1, is refused naming the node and the scales.

    Why: ONNX's inference sizes ``floor(dim * scale)`` for any scale, so a Resize by ``[1, 1, 0, 1]`` was planned
    with an empty output and an Upsample by ``0.5`` at half its input, while onnxruntime's kernels refuse both
    (upsamplebase.h's ScalesValidation: "Scale value should be greater than 0" for Resize, "greater than or equal
    to 1" for Upsample, whatever the mode)."""
    if n.op_type not in ("Resize", "Upsample") or not _default_domain(n) or not n.input:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None or not all(isinstance(d, int) for d in x):
        return
    _check_resize_from_empty(n, where, x, values, opset)
    sc = _scales(n, x, values, opset, resize_scales)
    if sc is None:
        return
    if n.op_type == "Upsample":
        bad = [s for s in sc if not s >= 1]
        rule = "at least 1 (an Upsample never shrinks)"
    else:
        bad = [s for s in sc if not s > 0]
        rule = "greater than 0"
    if bad:
        raise GraphError(f"{where}: its scales {sc} (as onnxruntime reads them) hold {bad[0]}, where onnxruntime "
                         f"requires every scale to be {rule}; onnxruntime refuses to run it")


def check_topk_k(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A TopK whose known ``k`` (the attribute before opset 10, the input from 10) is negative or exceeds the
    static length of its axis is refused naming the node, ``k`` and the axis.

    Why: ONNX's inference of TopK-1 takes the attribute as the output length unchecked (``k=7`` of an axis of 5:
    planned 7 elements along it), and from opset 10 checks only a ``k`` it can read as a constant; onnxruntime
    refuses to run either ("k argument [7] should not be greater than specified axis dim value [5]")."""
    if n.op_type != "TopK" or not _default_domain(n) or not n.input:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None:
        return
    if opset < 10:
        a = _attr(n, "k")
        k = a.i if a is not None else None
    else:
        v = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        k = int(v.reshape(-1)[0]) if v is not None and v.dtype.kind in "iu" and v.size == 1 else None
    ax = _attr(n, "axis")
    axis = ax.i if ax is not None else -1
    if k is None or not -len(x) <= axis < len(x):
        return
    d = x[axis]
    if k < 0 or (isinstance(d, int) and k > d):
        raise GraphError(f"{where}: its k {k} is {'negative' if k < 0 else f'more than the {d} elements'} along axis "
                         f"{axis} of {n.input[0]!r} ({list(x)}); onnxruntime refuses to run it")




def check_expand_shape(n, where: str, shapes: dict, values: dict) -> None:
    """An Expand whose known target shape onnxruntime's kernel refuses is refused naming the node and the shape: an
    entry that is negative, or that neither is 1 nor equals the input's static dimension it meets (aligned from the
    right) where that is not 1.

    Why: ONNX's inference broadcasts a negative target entry as if it fitted (a ``[5, 3]`` expanded to a computed
    ``[-10, -6]`` was planned ``[5, 3]``), while onnxruntime refuses to run it ("invalid expand shape")."""
    if n.op_type != "Expand" or not _default_domain(n) or len(n.input) < 2 or not n.input[1]:
        return
    v = values.get(n.input[1])
    if v is None or v.dtype.kind not in "iu" or v.ndim != 1:
        return
    target = [int(e) for e in v]
    x = shapes.get(n.input[0], (0, None))[1]
    dims = list(x) if x is not None and all(isinstance(d, int) for d in x) else None
    bad = any(e < 0 for e in target)
    if not bad and dims is not None:
        bad = any(d != e and d != 1 and e != 1 for d, e in zip(reversed(dims), reversed(target)))
    if bad:
        shown = f" {n.input[0]!r} ({dims})" if dims is not None else ""
        raise GraphError(f"{where}: its shape {n.input[1]!r} is {target}, to which its input{shown} does not expand "
                         "(a negative entry, or one neither 1 nor the input's dimension); onnxruntime refuses to run "
                         "it (\"invalid expand shape\")")


def check_onehot_depth(n, where: str, values: dict) -> None:
    """A OneHot whose known depth, as onnxruntime reads it (cast to an integer, a float truncated), is not positive
    is refused naming the node: onnxruntime refuses to run it ("Depth is negative", also for 0 and 0.5), where ONNX's
    inference sized it ``[..., 0]`` (or a depth computed from shapes as it took it) and the model was planned."""
    if n.op_type != "OneHot" or not _default_domain(n) or len(n.input) < 2 or not n.input[1]:
        return
    v = values.get(n.input[1])
    if v is None or v.size != 1 or v.dtype.kind not in "iuf":
        return
    depth = v.reshape(-1)[0]
    if not depth >= 1:   # (NaN too)
        raise GraphError(f"{where}: its depth {n.input[1]!r} is {depth}, not a positive length; onnxruntime refuses to "
                         "run it (\"Depth is negative\")")


def check_mel_weight_edges(n, where: str, values: dict) -> None:
    """A MelWeightMatrix whose known edges fall outside its spectrogram's bins as onnxruntime's kernel computes them
    (``floor((dft_length + 1) * edge_hertz / sample_rate)`` in float32, each edge's bin below ``dft_length // 2 + 1``)
    is refused naming the node and the edge: onnxruntime refuses to run it ("upper_edge_hertz produces a mel triangle
    filter bank that is out of range"), where ONNX's inference sized it ``[dft_length // 2 + 1, num_mel_bins]`` and
    the model was planned (a dft_length of 15 at 16 kHz up to 8 kHz: its upper edge's bin 8 of 8)."""
    import numpy as np

    if n.op_type != "MelWeightMatrix" or not _default_domain(n) or len(n.input) < 5:
        return
    known = [values.get(v) for v in n.input[1:5]]
    if any(v is None or v.size != 1 for v in known):
        return
    dft, rate = (int(v.reshape(-1)[0]) for v in known[:2])
    if rate == 0:
        return
    bins = dft // 2 + 1
    for k, name in ((3, "lower_edge_hertz"), (4, "upper_edge_hertz")):
        hertz = np.float32(known[k - 1].reshape(-1)[0])
        with np.errstate(all="ignore"):
            index = np.floor(np.float32(dft + 1) * hertz / np.float32(rate))
        if not 0 <= index < bins:   # (NaN too)
            raise GraphError(f"{where}: its {name} {n.input[k]!r} ({float(hertz)} Hz) falls in bin {float(index):g} "
                             f"of a spectrogram of {bins} (dft_length {dft}, sample_rate {rate}); onnxruntime refuses "
                             f"to run it (\"{name} produces a mel triangle filter bank that is out of range\")")


def check_integer_divisor(n, where: str, values: dict) -> None:
    """An integer Div or Mod whose known divisor (a constant, or one folded from shapes) holds a 0 is refused naming
    the node: onnxruntime refuses the model when that divisor is a constant ("Integer division by zero", at session
    start) and the run otherwise, where ONNX's inference sized it (numpy's fold made the quotient 0) and the model
    was planned."""
    if n.op_type not in ("Div", "Mod") or not _default_domain(n) or len(n.input) < 2 or not n.input[1]:
        return
    v = values.get(n.input[1])
    if v is not None and v.dtype.kind in "iu" and v.size and not v.all():
        raise GraphError(f"{where}: its divisor {n.input[1]!r} holds 0 (integers); onnxruntime refuses to run it "
                         "(\"Integer division by zero\")")


#: gates per recurrent op: the rows of ``W`` and ``R`` are ``gates * hidden_size`` per direction
RECURRENT_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _recurrent_expected(op: str, d: int, h: int, x: tuple) -> list[tuple[int, str, tuple]]:
    """``(input index, name, shape)`` onnxruntime's kernel requires of each operand of a recurrent op of ``d``
    directions and hidden size ``h`` over a ``[seq, batch, input]`` input ``x`` (None where a length is unknown)."""
    g = RECURRENT_GATES[op]
    seq_batch_input = [v if isinstance(v, int) else None for v in x]
    batch, inp = seq_batch_input[1], seq_batch_input[2]
    out = [(1, "W", (d, g * h, inp)), (2, "R", (d, g * h, h)), (3, "B", (d, 2 * g * h)), (4, "sequence_lens", (batch,)),
           (5, "initial_h", (d, batch, h))]
    if op == "LSTM":
        out += [(6, "initial_c", (d, batch, h)), (7, "P", (d, 3 * h))]
    return out


def check_recurrent_operands(n, where: str, shapes: dict) -> None:
    """An RNN, GRU or LSTM whose weight, bias, sequence lengths, initial state or peepholes are not of the shape
    its ``hidden_size``, ``direction`` and input fix (``W`` ``[dirs, gates * hidden, input]``, ``R`` ``[dirs,
    gates * hidden, hidden]``, ``B`` ``[dirs, 2 * gates * hidden]``, ``sequence_lens`` ``[batch]``, ``initial_h``/
    ``initial_c`` ``[dirs, batch, hidden]``, ``P`` ``[dirs, 3 * hidden]``) is refused naming the node, the operand and
    both shapes. Checked where the shapes are static (the batch-major ``layout=1`` is refused elsewhere).

    Why: ONNX's inference sizes the outputs from ``hidden_size``, the input and ``direction`` alone and checks none
    of the operands (an LSTM of ``hidden_size=5`` with a ``W`` for 4 was planned at hidden 5, a bidirectional one with
    weights for one direction at two), while onnxruntime refuses to run each ("Input W must have shape {1,20,3}.
    Actual:{1,16,3}")."""
    if n.op_type not in RECURRENT_GATES or not _default_domain(n) or len(n.input) < 3:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    h_attr = _attr(n, "hidden_size")
    layout = _attr(n, "layout")
    if x is None or len(x) != 3 or h_attr is None or h_attr.i <= 0 or (layout is not None and layout.i != 0):
        return
    direction = _attr(n, "direction")
    d = 2 if direction is not None and direction.s == b"bidirectional" else 1
    for k, name, want in _recurrent_expected(n.op_type, d, h_attr.i, x):
        if k >= len(n.input) or not n.input[k]:
            continue
        got = shapes.get(n.input[k], (0, None))[1]
        if got is None or not all(isinstance(v, int) for v in got):
            continue
        if len(got) != len(want) or any(w is not None and w != v for w, v in zip(want, got)):
            shown = [w if w is not None else "?" for w in want]
            raise GraphError(f"{where}: its {name} {n.input[k]!r} is {list(got)}, where its hidden_size {h_attr.i}, "
                             f"{d} direction(s) and input {n.input[0]!r} ({list(x)}) require {shown}; onnxruntime "
                             "refuses to run it")



def _static_dims(shapes: dict, name: str) -> list[int] | None:
    got = shapes.get(name, (0, None))[1] if name else None
    return list(got) if got is not None and all(isinstance(v, int) for v in got) else None


def check_zero_point_shapes(n, where: str, shapes: dict) -> None:
    """A ConvInteger or MatMulInteger whose zero point is of a shape its ONNX schema does not define is refused,
    naming the node, the zero point and both shapes: ConvInteger's ``x_zero_point`` is a scalar (onnxruntime also
    takes one element of ``[1]``) and its ``w_zero_point`` a scalar or ``[M]`` (the output channels);
    MatMulInteger's ``a_zero_point`` a scalar, ``[M]`` (a 2-D ``A`` of ``[M, K]``) or ``[D..., M, 1]``, its
    ``b_zero_point`` a scalar, ``[N]`` or ``[D..., 1, N]``. Checked where the shapes are static; a zero point of one
    element is taken as a scalar (ConvInteger's only of rank 0 or 1), as onnxruntime takes it.

    Why: ONNX's inference sizes the output from ``x``/``w`` or ``A``/``B`` alone, so a ConvInteger of 2 output
    channels with a ``w_zero_point`` of 3 was planned, though the model is invalid by the op's definition and
    onnxruntime refuses to run it. A per-channel zero point of the right length is valid and still planned (for
    runtimes that quantize per channel), although onnxruntime 1.32's CPU kernels refuse it ("Non per-tensor
    quantization is not supported now")."""
    if n.op_type not in ("ConvInteger", "MatMulInteger") or not _default_domain(n) or len(n.input) < 3:
        return

    a, b = (_static_dims(shapes, n.input[k]) for k in (0, 1))
    for k in (2, 3):
        zp = _static_dims(shapes, n.input[k]) if k < len(n.input) else None
        rank = 1 if n.op_type == "ConvInteger" else len((a if k == 2 else b) or ())
        if zp is None or (math.prod(zp) <= 1 and len(zp) <= rank):
            # (one element: taken as a scalar, except of rank 2 or more by ConvInteger, and of a rank above its
            # operand's by MatMulInteger: a [1, 1, 1] of a 2-D A, which onnxruntime and onnx's reference refuse)
            continue
        other = a if k == 2 else b
        if n.op_type == "ConvInteger":
            name = "x_zero_point" if k == 2 else "w_zero_point"
            allowed = [] if k == 2 else ([[b[0]]] if b else None)
            rule = "a scalar (per-tensor)" if k == 2 else "a scalar or 1-D of its output channels"
        else:
            name = "a_zero_point" if k == 2 else "b_zero_point"
            if other is None or len(other) < 2:
                continue
            m_or_n = other[-2] if k == 2 else other[-1]
            tail = [m_or_n, 1] if k == 2 else [1, m_or_n]
            allowed = [[*other[:-2], *tail]] + ([[m_or_n]] if len(other) == 2 else [])
            rule = ("a scalar, [M] (a 2-D A) or [D..., M, 1] (per row)" if k == 2 else
                    "a scalar, [N] (a 2-D B) or [D..., 1, N] (per column)")
        if allowed is None or zp in allowed:
            continue
        shown = f"{n.input[0 if k == 2 else 1]!r} ({other})" if other is not None else repr(n.input[k - 2])
        raise GraphError(f"{where}: its {name} {n.input[k]!r} is {zp}, where ONNX defines it as {rule} for {shown}; "
                         "onnxruntime refuses to run it")


def check_gather_nd_batch(n, where: str, shapes: dict) -> None:
    """A GatherND whose indices' first ``batch_dims`` dimensions hold a number of batches its data's do not divide
    is refused naming the node and both shapes (static shapes).

    Why: ONNX's inference sizes the output from the indices' leading dimensions unchecked (data ``[2, 3, 4]`` by
    indices ``[3, 1]``, ``batch_dims=1``: planned ``[3, 4]``), while the spec requires the first ``batch_dims``
    dimensions of both equal, and onnxruntime refuses to run it ("indices batch size (3) is not divisible by input
    batch size (2)"); onnx's reference fails. A multiple (``[4, 1]``, or data ``[4, 2, 3]`` by indices ``[2, 2, 1]``:
    onnxruntime counts the indices' slices over all their leading dimensions and runs it, writing what ONNX's
    inference sizes) is refused too, since round 68: the spec does not define it (the first ``batch_dims``
    dimensions "must be equal") and onnx's reference fails on it ("cannot reshape array of size 24 into shape
    (4,3,4)"), so which rows a runtime gathers, and whether it runs the model at all, is onnxruntime's own extension,
    not ONNX. An empty output (zero bytes, whatever a runtime does) stays planned."""

    if n.op_type != "GatherND" or not _default_domain(n) or len(n.input) < 2:
        return
    a = _attr(n, "batch_dims")
    b = a.i if a is not None else 0
    data, idx = _static_dims(shapes, n.input[0]), _static_dims(shapes, n.input[1])
    if b <= 0 or data is None or idx is None or len(data) < b or len(idx) < b + 1 or data[:b] == idx[:b]:
        return
    if 0 in (*idx[:-1], *data[b + idx[-1]:]):
        return   # (an empty output: onnxruntime checks nothing of it, and runs it)
    have, want = math.prod(data[:b]), math.prod(idx[:-1])   # (onnxruntime's batches and slices)
    runtime = (f"onnxruntime refuses to run it ({want} slices of indices over {have} batches of data)"
               if have == 0 or want % have else
               f"onnxruntime runs it as its own extension ({want} slices of indices over {have} batches of data), "
               "onnx's reference implementation fails on it")
    raise GraphError(f"{where}: its indices {n.input[1]!r} ({idx}) begin with batch dimensions {idx[:b]}, where its "
                     f"data {n.input[0]!r} ({data}) has {data[:b]} (batch_dims={b}: ONNX requires them equal); "
                     f"{runtime}")


def check_resize_roi_length(n, where: str, shapes: dict, opset: int) -> None:
    """A Resize of ``coordinate_transformation_mode`` ``tf_crop_and_resize`` whose ``roi`` is not ``2 * rank`` long
    (nor, from opset 18, ``2 * len(axes)``) is refused naming the node and the length (static shapes).

    Why: ONNX's inference sizes the output from the scales or sizes alone, so a roi of 2 values for a 4-D input was
    planned, while the spec defines it as ``[start1, ..., startN, end1, ..., endN]`` over the axes and onnxruntime
    refuses to run it ("size of roi array should be 2 * N"); onnx's reference fails. Other modes read no roi."""
    if n.op_type != "Resize" or not _default_domain(n) or opset < 11 or len(n.input) < 2 or not n.input[1]:
        return
    mode = _attr(n, "coordinate_transformation_mode")
    if mode is None or mode.s != b"tf_crop_and_resize":
        return
    x, roi = _static_dims(shapes, n.input[0]), _static_dims(shapes, n.input[1])
    if x is None or roi is None or len(roi) != 1:
        return
    axes = _attr(n, "axes") if opset >= 18 else None
    allowed = {2 * len(x)} | ({2 * len(axes.ints)} if axes is not None else set())
    if roi[0] not in allowed:
        raise GraphError(f"{where}: its roi {n.input[1]!r} holds {roi[0]} values, where tf_crop_and_resize of its "
                         f"{len(x)}-D input {n.input[0]!r} reads a start and an end per axis "
                         f"({' or '.join(str(v) for v in sorted(allowed))}); onnxruntime refuses to run it")


def check_tensor_scatter_extent(n, where: str, shapes: dict, values: dict) -> None:
    """A TensorScatter whose update is longer along the sequence axis than its cache, or, in ``linear`` mode, whose
    known ``write_indices`` start it past the end (``index + sequence_length > max_sequence_length``, or a negative
    index) is refused naming the node and the lengths.

    Why: ONNX's inference sizes the present cache as the past one and checks neither, so both were planned, while the
    spec requires ``sequence_length <= max_sequence_length`` and, in linear mode, ``write_indices + sequence_length
    <= max_sequence_length``; onnxruntime refuses to run both, and onnx's reference fails."""
    if n.op_type != "TensorScatter" or not _default_domain(n) or len(n.input) < 2:
        return
    cache, upd = _static_dims(shapes, n.input[0]), _static_dims(shapes, n.input[1])
    if cache is None or upd is None or len(cache) != len(upd) or len(cache) < 2:
        return
    a = _attr(n, "axis")
    axis = a.i if a is not None else -2
    axis = axis + len(cache) if axis < 0 else axis
    if not 0 < axis < len(cache):
        return
    most, seq = cache[axis], upd[axis]
    if seq > most:
        raise GraphError(f"{where}: its update {n.input[1]!r} ({upd}) is {seq} long along axis {axis}, longer than its "
                         f"cache {n.input[0]!r} ({cache}, {most}); onnxruntime refuses to run it")
    mode = _attr(n, "mode")
    w = values.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
    if mode is not None and mode.s == b"circular" or w is None or w.dtype.kind not in "iu":
        return
    for v in w.reshape(-1).tolist():
        if v < 0 or v + seq > most:
            raise GraphError(f"{where}: its write_indices {n.input[2]!r} hold {v}, from which its update's {seq} steps "
                             f"along axis {axis} pass the cache's {most} (linear mode: ONNX requires write_indices + "
                             "sequence_length <= max_sequence_length); onnxruntime refuses to run it")


def check_pad_constant_value(n, where: str, shapes: dict, opset: int) -> None:
    """A Pad (11 and later) whose ``constant_value`` input holds other than one element is refused naming the node.

    Why: ONNX's inference reads only its type, so a ``[2]`` value was planned, while the spec defines it as a scalar
    and onnxruntime refuses to run it ("Value tensor should be a 1D tensor of size 1")."""
    if n.op_type != "Pad" or not _default_domain(n) or opset < 11 or len(n.input) < 3 or not n.input[2]:
        return
    v = _static_dims(shapes, n.input[2])
    if v is not None and math.prod(v) != 1:
        raise GraphError(f"{where}: its constant_value {n.input[2]!r} is {v}, not one value (ONNX defines it as a "
                         "scalar); onnxruntime refuses to run it")


def check_softmax_cross_entropy_operands(n, where: str, shapes: dict) -> None:
    """A SoftmaxCrossEntropyLoss whose ``labels`` are not of the shape of its ``scores`` less their class dimension
    (``[N, C, D1..Dk]`` -> ``[N, D1..Dk]``), or whose scores are empty in ``N`` or ``C``, is refused naming the node
    and the shapes. Checked where both shapes are static.

    Why: ONNX's inference of the op sizes its outputs from the scores alone (labels ``[4, 2]`` against scores
    ``[3, 5, 2]`` were planned ``[3, 2]``), and from empty scores as it does any; onnxruntime infers the op through its
    function body as it loads the model and refuses both ("[ShapeInferenceError] ... NegativeLogLikelihoodLoss",
    and "Reshape: Invalid Target shape product of 0" for ``N`` or ``C`` 0; an empty ``D1`` loads and runs, an empty ``D2`` or
    later is "Reshape: Invalid position of 0", checked by ``tests/test_onnx_round65.py``'s hypothesis test)."""
    if n.op_type != "SoftmaxCrossEntropyLoss" or not _default_domain(n) or len(n.input) < 2:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    y = shapes.get(n.input[1], (0, None))[1]
    static = [s is not None and all(isinstance(v, int) for v in s) for s in (x, y)]
    if static[0] and len(x) >= 2 and 0 in x[:2]:
        raise GraphError(f"{where}: its scores {n.input[0]!r} are {list(x)}, empty in the batch or class dimension; "
                         "onnxruntime refuses to load the model (its function body reshapes them to [N, C, -1], which "
                         "a product of 0 leaves undefined)")
    if static[0] and 0 in x[3:]:
        raise GraphError(f"{where}: its scores {n.input[0]!r} are {list(x)}, empty in a spatial dimension after the "
                         "first; onnxruntime refuses to load the model (its function body reshapes the [N, C, -1] "
                         "result back by a shape whose 0 past the third place it cannot read)")
    if all(static) and len(x) >= 2 and list(y) != [x[0], *x[2:]]:
        raise GraphError(f"{where}: its labels {n.input[1]!r} are {list(y)}, where its scores {n.input[0]!r} "
                         f"({list(x)}) require {[x[0], *x[2:]]}; onnxruntime refuses to load the model")


def check_attention_kv_lengths(n, where: str, shapes: dict, opset: int) -> None:
    """An Attention (opset 24 on) whose ``nonpad_kv_seqlen`` (input 6, one length per batch entry: ``[batch]``) is of
    another length than its ``Q``'s batch is refused naming the node and both shapes (at opset 25 on, a length of 1
    is let through: it broadcasts, as planned). Checked where both are static.

    Why: ONNX's inference sizes the output from ``Q`` alone. onnxruntime 1.32 runs Attention-24 by its CPU kernel,
    which refuses any other length as it runs; from opset 25 it runs the op through its function body, which
    broadcasts the lengths against the batch: ``Q`` of batch 1 with lengths ``[2]`` made an output of batch 2, twice
    the size planned (an overrun in every plan), and other lengths it refuses as it loads the model
    ("Incompatible dimensions")."""
    if n.op_type != "Attention" or not _default_domain(n) or len(n.input) < 7 or not n.input[6]:
        return
    q = shapes.get(n.input[0], (0, None))[1]
    lengths = shapes.get(n.input[6], (0, None))[1]
    if q is None or lengths is None or len(lengths) != 1 or not q or not all(isinstance(v, int) for v in
                                                                            (q[0], lengths[0])):
        return
    kernel = _attention_by_kernel(n, shapes, opset)   # (round 66: of double, Attention-24 runs the function body)
    if lengths[0] != q[0] and (kernel or lengths[0] != 1):
        what = ("'s CPU kernel of Attention-24 refuses to run it" if kernel
                else f" runs it with an output of batch {lengths[0]} (not the {q[0]} planned)" if q[0] == 1
                else " refuses to load the model")
        raise GraphError(f"{where}: its nonpad_kv_seqlen {n.input[6]!r} holds {lengths[0]} lengths, where its Q "
                         f"{n.input[0]!r} ({list(q)}) has a batch of {q[0]} (one length per batch entry); "
                         f"onnxruntime{what}")


def _static(shape) -> bool:
    return shape is not None and all(isinstance(v, int) for v in shape)


def _attention_by_kernel(n, shapes: dict, opset: int) -> bool:
    """Whether onnxruntime 1.32 runs Attention ``n`` by its CPU kernel: at opsets 23 and 24, for a ``Q`` of float or
    float16 (the types it registers); otherwise it expands the op's function body."""
    return opset in (23, 24) and shapes.get(n.input[0], (0, None))[0] in (1, 10)


def check_attention_empty(n, where: str, shapes: dict, opset: int) -> None:
    """An Attention (default domain) whose ``Q``, ``K`` or ``V`` is empty where onnxruntime cannot run it is refused
    naming the node, the input and its shape. Checked where the shapes are static.

    Which (round 66, each case run by onnxruntime 1.32 and onnx's reference, ``tests/test_onnx_round66.py``):
    at opsets 23 and 24 onnxruntime runs the op of float or float16 by its CPU kernel, which requires every dimension
    of ``Q``, ``K`` and ``V`` (batch, heads, sequence lengths, head sizes) to be at least 1 ("Batch size must be
    greater than 0"). From opset 25 (and of other types) it runs the function body, which runs a ``Q`` of 4
    dimensions empty in its batch or sequence (the output is empty, as planned) and a ``K`` of no keys where
    ``past_key`` holds some, and refuses the rest: no heads (a modulo by zero), head sizes of 0 (it refuses to load
    the model), no keys at all (a softmax over nothing, which onnx's reference cannot compute either), and any empty
    ``Q``, ``K`` or ``V`` of 3 dimensions (the reshape to heads cannot infer its ``-1``).

    Why: ONNX's inference sizes the outputs as onnx's reference makes them, so these were planned, Attention-24 of
    batch 0 among them, for a model onnxruntime does not run."""
    if n.op_type != "Attention" or not _default_domain(n) or len(n.input) < 3 or opset < 23:
        return
    got = [(name, v, shapes.get(v, (0, None))[1]) for name, v in zip(("Q", "K", "V"), n.input[:3])]
    if not all(_static(s) for _, _, s in got):
        return
    empty = next(((name, v, s) for name, v, s in got if 0 in s), None)
    if empty is None:
        return
    name, v, s = empty
    if _attention_by_kernel(n, shapes, opset):
        raise GraphError(f"{where}: its {name} {v!r} is {list(s)}, empty; onnxruntime's CPU kernel of Attention-"
                         f"{24 if opset >= 24 else 23} requires every dimension of Q, K and V (batch, heads, sequence "
                         "lengths, head sizes) to be at least 1 and refuses to run it")
    past = n.input[4] if len(n.input) > 4 else ""
    past_shape = shapes.get(past, (0, None))[1] if past else None
    keys_past = past_shape[2] if past_shape is not None and len(past_shape) == 4 else 0
    for name, v, s in got:
        why = _attention_body_refusal(name, s, keys_past)
        if why is not None:
            raise GraphError(f"{where}: its {name} {v!r} is {list(s)}, empty: {why}")


def check_attention_heads(n, where: str, shapes: dict, opset: int) -> None:
    """An Attention (default domain, opset 23 on) whose heads do not divide as onnxruntime requires is refused naming
    the node, the input and the numbers: ``Q``'s heads not a multiple of ``K``'s (grouped-query attention repeats
    each key head over a whole group), ``K`` and ``V`` of different head counts (of 4 dimensions), or a 3-D ``Q``,
    ``K`` or ``V`` whose hidden size is not a multiple of its ``q_num_heads`` / ``kv_num_heads``. Checked where the
    shapes are static.

    Why: ONNX's inference sizes the output from ``Q`` (and ``V``) alone, so such a model was planned, while onnxruntime
    1.32 refuses every case as it runs, in its CPU kernel ("q_num_heads must be a multiple of kv_num_heads",
    "inconsistent q_hidden_size, it should be a multiple of q_num_heads", "kv_num_heads different from V.shape[1]")
    and in the function body alike (its reshape to heads or its expand of the key heads fails)."""
    if n.op_type != "Attention" or not _default_domain(n) or len(n.input) < 3 or opset < 23:
        return
    got = [(name, v, shapes.get(v, (0, None))[1]) for name, v in zip(("Q", "K", "V"), n.input[:3])]
    if not all(_static(s) and len(s) in (3, 4) for _, _, s in got) or len({len(s) for _, _, s in got}) != 1:
        return
    (_, q_name, q), (_, k_name, k), (_, v_name, v) = got
    if len(q) == 4:
        qh, kh, vh = q[1], k[1], v[1]
        if kh > 0 and qh % kh:
            raise GraphError(f"{where}: its Q {q_name!r} ({list(q)}) has {qh} heads, not a multiple of the {kh} of "
                             f"its K {k_name!r} ({list(k)}); onnxruntime refuses to run it (\"q_num_heads must be a "
                             "multiple of kv_num_heads\")")
        if kh != vh:
            raise GraphError(f"{where}: its K {k_name!r} ({list(k)}) has {kh} heads and its V {v_name!r} "
                             f"({list(v)}) {vh}; onnxruntime refuses to run it (\"kv_num_heads different from "
                             "V.shape[1]\")")
        return
    qa, ka = _attr(n, "q_num_heads"), _attr(n, "kv_num_heads")
    if qa is None or ka is None or qa.i <= 0 or ka.i <= 0:
        return
    for name, value, shape, heads, attr in (("Q", q_name, q, qa.i, "q_num_heads"),
                                            ("K", k_name, k, ka.i, "kv_num_heads"),
                                            ("V", v_name, v, ka.i, "kv_num_heads")):
        if shape[2] % heads:
            raise GraphError(f"{where}: its {name} {value!r} ({list(shape)}) has a hidden size of {shape[2]}, not a "
                             f"multiple of its {attr} {heads}; onnxruntime refuses to run it (\"inconsistent "
                             f"{name.lower()}_hidden_size, it should be a multiple of {attr}\")")
    if qa.i % ka.i:
        raise GraphError(f"{where}: its q_num_heads {qa.i} is not a multiple of its kv_num_heads {ka.i}; onnxruntime "
                         "refuses to run it (\"q_num_heads must be a multiple of kv_num_heads\")")


def check_attention_mask_shape(n, where: str, shapes: dict, opset: int) -> None:
    """An Attention whose ``attn_mask`` (input 3) does not broadcast to ``[batch, q_heads, q_sequence, keys]`` as
    onnxruntime reads it is refused naming the node, the mask and the shape it must fit. Checked where the shapes
    are static (the last dimension, the keys, is ``check_attention_mask_length``'s).

    Which (round 66, each case run by onnxruntime 1.32): its CPU kernel (opsets 23-24, float or float16) takes a mask
    of rank 2 (``[q_sequence, keys]``), 3 (``[1 or q_heads, ...]``) or 4 (``[1 or batch, 1 or q_heads, ...]``), its
    ``q_sequence`` exactly; the function body (from opset 25, or of other types) broadcasts it as numpy does, so each
    dimension is 1 or the one it meets; a mask of more than 4 dimensions the kernel refuses, and the function body
    broadcasts the *output* by it.

    Why: ONNX's inference sizes the output from ``Q`` alone, so a mask of ``[3, 1, 3, 4, 6]`` was planned ``[2, 3, 4,
    8]`` at opset 25, where onnxruntime writes ``[3, 2, 3, 4, 8]``, three times the bytes (an overrun in every plan);
    and a mask of another batch, heads or query length was planned for a model onnxruntime refuses to run."""
    if n.op_type != "Attention" or not _default_domain(n) or len(n.input) < 4 or not n.input[3] or opset < 23:
        return
    q, mask = shapes.get(n.input[0], (0, None))[1], shapes.get(n.input[3], (0, None))[1]
    if not (_static(q) and _static(mask)) or len(q) not in (3, 4) or not mask:
        return
    heads = q[1] if len(q) == 4 else next((a.i for a in n.attribute if a.name == "q_num_heads"), 0)
    if heads <= 0:
        return
    target = [q[0], heads, q[2] if len(q) == 4 else q[1], mask[-1]]
    kernel = _attention_by_kernel(n, shapes, opset)
    if len(mask) > 4:
        how = ("'s CPU kernel refuses to run it" if kernel else " broadcasts its output by the mask to more "
               "dimensions than planned")
        raise GraphError(f"{where}: its attn_mask {n.input[3]!r} ({list(mask)}) has {len(mask)} dimensions, more than "
                         f"the 4 of [batch, q_heads, q_sequence, keys] ({target}); onnxruntime{how}")
    if kernel:
        ok = len(mask) >= 2 and mask[-2] == target[2] and (
            len(mask) == 2 or (len(mask) == 3 and mask[0] in (1, heads))
            or (len(mask) == 4 and mask[0] in (1, target[0]) and mask[1] in (1, heads)))
    else:
        ok = all(m in (1, t) for m, t in zip(mask[-2::-1], target[-2::-1]))
    if not ok:
        runs = "its CPU kernel of Attention-" + str(opset) if kernel else "its function body"
        raise GraphError(f"{where}: its attn_mask {n.input[3]!r} ({list(mask)}) does not fit [batch, q_heads, "
                         f"q_sequence, keys] = {target} as {runs} reads it; onnxruntime refuses to run it")


def check_rms_norm_extent(n, where: str, shapes: dict) -> None:
    """An RMSNormalization (opset 23) whose normalized dimensions (``X.shape[axis:]``) hold no element is refused
    naming the node, as ``_check_layer_norm_params`` refuses such a LayerNormalization.

    Why: ONNX's inference sizes the output as ``X``, so ``[2, 0]`` over axis -1 was planned, while the mean square of
    no element is undefined and onnxruntime refuses to run it ("Size of X.shape[axis:] must be at least 1"); an
    empty dimension before ``axis`` (no row) is planned, as onnxruntime runs it (round 66)."""
    if n.op_type != "RMSNormalization" or not _default_domain(n) or not n.input:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    axis = next((a.i for a in n.attribute if a.name == "axis"), -1)
    if not _static(x) or not -len(x) <= axis < len(x) or 0 not in x[axis:]:
        return
    raise GraphError(f"{where}: it normalizes over its input {n.input[0]!r}'s dimensions from axis {axis} "
                     f"({list(x[axis:])} of {list(x)}), which hold no element: the mean square of none is undefined; "
                     "onnxruntime refuses to run it (\"Size of X.shape[axis:] must be at least 1, got 0\")")


def check_group_norm_empty(n, where: str, shapes: dict) -> None:
    """A GroupNormalization (opset 18 on) whose input is empty in any dimension is refused naming the node and the
    input. Checked where its shape is static.

    Why: ONNX's inference sizes the output as the input, so the sweep's empty variations of onnx's node tests were
    planned, while onnxruntime runs the op's function body, whose reshapes to groups (``[N, groups, -1]``, and back
    by the scale's shape) no empty tensor fits, and refuses to run it ("The input tensor cannot be reshaped to the
    requested shape"), for an empty batch, channel or spatial dimension alike (round 66)."""
    if n.op_type != "GroupNormalization" or not _default_domain(n) or not n.input:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if _static(x) and 0 in x:
        raise GraphError(f"{where}: its input {n.input[0]!r} is {list(x)}, empty: its function body reshapes it to "
                         "[N, groups, -1], which no empty tensor fits; onnxruntime refuses to run it")


def check_linear_attention_empty(n, where: str, shapes: dict) -> None:
    """A LinearAttention (opset 27) whose ``query``, ``key`` or ``value`` (``[batch, tokens, heads * size]``) is empty
    in its batch or tokens is refused naming the node, the input and its shape. Checked where the shapes are static.

    Why: ONNX's inference sizes the outputs (an empty output, a ``present_state`` of the batch), so the sweep's empty
    variations of onnx's node tests were planned, while onnxruntime runs the op's function body, whose reshape of
    each input to ``[batch, tokens, heads, -1]`` cannot infer its ``-1`` from no element and refuses to run it (round
    66). An empty head size (``[2, 4, 0]``) it runs, as planned."""
    if n.op_type != "LinearAttention" or not _default_domain(n) or len(n.input) < 3:
        return
    for name, v in zip(("query", "key", "value"), n.input[:3]):
        s = shapes.get(v, (0, None))[1]
        if _static(s) and len(s) == 3 and 0 in s[:2]:
            raise GraphError(f"{where}: its {name} {v!r} is {list(s)}, empty in its batch or tokens: its function "
                             "body reshapes it to [batch, tokens, heads, -1], whose -1 no empty tensor defines; "
                             "onnxruntime refuses to run it")


def check_attention_mask_length(n, where: str, shapes: dict, opset: int) -> None:
    """An Attention of opset 23 or 24 whose ``attn_mask`` (input 3) is not as long in its last dimension as the
    total key sequence (``past_key``'s sequence plus ``K``'s) is refused naming the node, the mask and both lengths.
    Checked where the shapes are static.

    Why: ONNX's inference sizes the output from ``Q`` alone, and the specification lets a shorter mask be padded; so
    onnx's own node test ``test_attention_4d_diff_heads_mask4d_padded_kv`` (a mask of 4 over 6 keys) was planned, while
    onnxruntime's CPU kernel of Attention-23/24 refuses to run it ("inconsistent total_sequence_length (between
    attn_mask and past_key and past_value)"). From opset 25 its function body runs such a mask (round 66)."""
    if n.op_type != "Attention" or not _default_domain(n) or len(n.input) < 4 or not n.input[3]:
        return
    if not _attention_by_kernel(n, shapes, opset):
        return
    k, mask = shapes.get(n.input[1], (0, None))[1], shapes.get(n.input[3], (0, None))[1]
    past = n.input[4] if len(n.input) > 4 else ""
    p = shapes.get(past, (0, None))[1] if past else (0, 0, 0, 0)
    if not (_static(k) and _static(mask) and _static(p)) or len(k) not in (3, 4) or not mask or len(p) != 4:
        return
    total = p[2] + (k[2] if len(k) == 4 else k[1])
    if mask[-1] != total:
        raise GraphError(f"{where}: its attn_mask {n.input[3]!r} ({list(mask)}) is {mask[-1]} long in its last "
                         f"dimension, where the keys total {total} ({'past_key and ' if past else ''}K); onnxruntime's "
                         f"CPU kernel of Attention-{opset} refuses to run it (\"inconsistent total_sequence_length\")")


def check_attention_presents(n, where: str, shapes: dict, opset: int) -> None:
    """An Attention of opset 23 or 24 that onnxruntime runs by its CPU kernel (a ``Q`` of float or float16), given a
    ``past_key`` (input 4) but no ``present_key`` output (output 1, omitted as ``""`` or not listed), or a
    ``past_value`` (input 5) but no ``present_value`` (output 2), is refused naming the node, the past and the present.

    Why: the specification makes every output optional and ONNX's inference sizes the output from ``Q`` and ``V``, so
    such a model was planned, while onnxruntime 1.32's CPU kernel refuses to run it ("The implementation does not
    support past_key provided and present_key being null"; round 77). From opset 25 (and of other types) its
    function body runs it, as planned."""
    if n.op_type != "Attention" or not _default_domain(n) or not _attention_by_kernel(n, shapes, opset):
        return
    for k, (past, present) in enumerate((("past_key", "present_key"), ("past_value", "present_value"))):
        given = n.input[4 + k] if len(n.input) > 4 + k else ""
        if given and not (len(n.output) > 1 + k and n.output[1 + k]):
            raise GraphError(f"{where}: it is given a {past} {given!r} but makes no {present} (output #{1 + k}); "
                             f"onnxruntime's CPU kernel of Attention-{opset} refuses to run it (\"The implementation "
                             f"does not support {past} provided and {present} being null\"): name its {present}")


def _attention_body_refusal(name: str, s: list, keys_past) -> str | None:
    """Why onnxruntime's function body of Attention (opset 25 on) refuses an input ``name`` of static shape ``s``, or
    None where it runs it (``keys_past``: the sequence length of ``past_key``, 0 where there is none)."""
    if 0 not in s:
        return None
    if len(s) != 4:
        return ("its function body reshapes it to heads, whose -1 no empty tensor defines; onnxruntime refuses to run "
                "it")
    if s[1] == 0:
        return "it has no heads (the function body takes a modulo by them); onnxruntime refuses to run it"
    if s[3] == 0:
        return "its head size is 0; onnxruntime refuses " + ("to load the model" if name != "V" else "to run it")
    if name != "Q" and s[2] == 0 and not (isinstance(keys_past, int) and keys_past > 0):
        return ("it holds no keys and no past_key holds any (a softmax over nothing is undefined); onnxruntime "
                "refuses to run it")
    return None   # (an empty batch or query sequence, or keys held by past_key: onnxruntime runs it)


def check_gqa_subsequent_prompt(n, where: str, shapes: dict, values: dict) -> None:
    """A com.microsoft GroupQueryAttention of a batch over 1 and more than one new token whose known
    ``total_sequence_length`` (input 6) is not that token count (a prompt after a past: chunked prefill) is refused
    naming the node, the batch, the tokens and the total.

    Why: its sizes are derivable and were planned, while onnxruntime 1.32's kernel refuses to run it ("batch_size
    must be 1 when sequence_length > 1 and past context is given"; round 70's sweep: batch 2, 3 tokens, a total of
    7 or 4). Where the total is fed at run time, the plan stands (a first prompt, total = tokens, runs)."""
    if n.op_type != "GroupQueryAttention" or n.domain != "com.microsoft" or len(n.input) < 7 or not n.input[6]:
        return
    fed = _static_dims(shapes, n.input[6])
    if fed is not None and math.prod(fed) != 1:   # (round 71: planned at a past + tokens it never runs)
        raise GraphError(f"{where}: its total_sequence_length {n.input[6]!r} is of shape {fed}, not one element; "
                         "onnxruntime refuses to run it (\"total_sequence_length tensor must be of one element\")")
    q = _static_dims(shapes, n.input[0])
    total = values.get(n.input[6])
    if q is None or len(q) != 3 or total is None or total.size != 1 or total.dtype.kind not in "iu":
        return
    t = int(total.reshape(-1)[0])
    if q[0] > 1 and q[1] > 1 and t != q[1]:
        raise GraphError(f"{where}: its query {n.input[0]!r} ({q}) is a batch of {q[0]} of {q[1]} new tokens, and "
                         f"its total_sequence_length {n.input[6]!r} is {t}, not {q[1]} (a prompt after a past); "
                         "onnxruntime refuses to run it (\"batch_size must be 1 when sequence_length > 1 and past "
                         "context is given\")")


def _block_size_refusal(n) -> str | None:
    """Why onnxruntime refuses the ``block_size`` of com.microsoft's MatMulNBits or GatherBlockQuantized, or None."""
    a = _attr(n, "block_size")
    block = a.i if a is not None else 128   # (GatherBlockQuantized's default; MatMulNBits requires it)
    if block >= 16 and block & (block - 1) == 0:
        return None
    if n.op_type == "GatherBlockQuantized" and block == 0:
        return None   # (0: FP8/FP4 data, which its schema takes; judged by its kernel)
    words = ("Only power-of-two block sizes >= 16 are supported" if n.op_type == "MatMulNBits" else
             "block_size must be a power of 2 and not smaller than 16")
    return f"its block_size is {block}: onnxruntime takes only a power of two of 16 or more (\"{words}\") and " \
           "refuses the model"


def check_llm_kernel_limits(n, where: str, shapes: dict) -> None:
    """com.microsoft ops of LLM exports whose attributes or shapes onnxruntime 1.32 refuses, though their output sizes
    are derivable (and were planned): MatMulNBits and GatherBlockQuantized of a ``block_size`` not a power of two of
    at least 16 (it refuses to load the model), and GroupQueryAttention with ``do_rotary`` of a head size not a
    multiple of 16 (it refuses to run it: "head_size shall be a multiple of 16"). Found by round 70's sweep."""
    if n.domain != "com.microsoft":
        return
    if n.op_type in ("MatMulNBits", "GatherBlockQuantized"):
        why = _block_size_refusal(n)
        if why is not None:
            raise GraphError(f"{where}: {why}")
        return
    if n.op_type != "GroupQueryAttention" or not n.input:
        return
    rotary, heads, kv = _attr(n, "do_rotary"), _attr(n, "num_heads"), _attr(n, "kv_num_heads")
    if rotary is None or not rotary.i or heads is None or kv is None or heads.i <= 0 or kv.i <= 0:
        return
    q = _static_dims(shapes, n.input[0])
    k = _static_dims(shapes, n.input[1]) if len(n.input) > 1 and n.input[1] else None
    if k is not None and len(k) == 3 and k[2] % kv.i == 0:
        head = k[2] // kv.i
    elif k is None and q is not None and len(q) == 3 and q[2] % (heads.i + 2 * kv.i) == 0:
        head = q[2] // (heads.i + 2 * kv.i)
    else:
        return
    if head % 16:
        raise GraphError(f"{where}: it applies rotary embedding (do_rotary=1) to heads of size {head}, not a multiple "
                         "of 16; onnxruntime refuses to run it (\"head_size shall be a multiple of 16\")")


def check_rotary_position_ids(n, where: str, shapes: dict) -> None:
    """A RotaryEmbedding (default domain, opset 23 on; or com.microsoft's, whose ``position_ids`` is input 1 and may
    be ``[1]``) whose ``position_ids`` (input 3) is not ``[batch, sequence_length]`` of its input (``[batch, heads,
    seq, head]`` or ``[batch, seq, hidden]``) is refused naming the node and both shapes. Checked where the shapes
    are static. (Round 70: com.microsoft's of a 4-D input ``[batch, seq, heads, head]``, ``position_ids`` ``[batch,
    seq]``, was planned; onnxruntime refuses to run it, reading the input as ``[batch, heads, seq, head]``.)

    Why: ONNX's inference sizes the output as the input and checks nothing of ``position_ids``, so a model of
    ``position_ids`` ``[1, 3]`` for a batch of 2 was planned; onnxruntime refuses to run it ("Input 'position_ids'
    dimension 0 should be of size batch_size"; of another rank: "is expected to have 2 dimensions")."""
    ms = n.domain == "com.microsoft"   # (its position_ids is input 1, and may be [1]: one offset for all)
    k = 1 if ms else 3
    if n.op_type != "RotaryEmbedding" or not (ms or _default_domain(n)) or len(n.input) <= k or not n.input[k]:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    ids = shapes.get(n.input[k], (0, None))[1]
    if x is None or ids is None or len(x) not in (3, 4) or ms and list(ids) == [1]:
        return
    want = [x[0], x[2] if len(x) == 4 else x[1]]
    if len(ids) != 2 or any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(ids, want)):
        raise GraphError(f"{where}: its position_ids {n.input[k]!r} is {list(ids)}, where its input {n.input[0]!r} "
                         f"({list(x)}) requires [batch, sequence_length] = {want}"
                         f"{' (or [1])' if ms else ''}; onnxruntime refuses to run it")



def _input_dims(n, shapes: dict, k: int) -> list[int] | None:
    """The static shape of node ``n``'s input ``k``, or None where it is absent (an optional input left out or
    empty) or not static: the contrib-kernel checks below read each operand so."""
    return _static_dims(shapes, n.input[k]) if k < len(n.input) and n.input[k] else None


def check_rotary_caches(n, where: str, shapes: dict) -> None:
    """A default-domain RotaryEmbedding (opset 23 on) whose ``cos_cache`` / ``sin_cache`` (inputs 1 and 2) are not of
    the shape onnxruntime's kernel requires is refused naming the node, the cache and both shapes: without
    ``position_ids`` each is ``[batch, sequence_length, d / 2]`` of its input (the batch and length of ``x``, not 1:
    no broadcast), with them ``[max_position, d / 2]`` of at least ``sequence_length`` rows; the two of one shape;
    ``d`` the ``rotary_embedding_dim`` (at most the head size) or, where it is 0, the head size; a 3-D input's
    ``num_heads`` above 0 and dividing its hidden size. Checked where the shapes are static.

    Why: ONNX's inference sizes the output as the input and reads nothing of the caches, so such a model was planned
    though onnxruntime refuses to run it ("Inputs 'cos_cache' and 'sin_cache' are expected to have the same shape as
    input 'x', got 1 and 5"). torch's dynamo export of a transformers Llama / Qwen2 / Mistral at opset 23 with a
    dynamic batch makes caches of batch 1 (round 74): every batch but 1 was planned, and only batch 1 runs."""
    if n.op_type != "RotaryEmbedding" or not _default_domain(n) or len(n.input) < 3:
        return
    x = _static_dims(shapes, n.input[0])
    cos, sin = _static_dims(shapes, n.input[1]), _static_dims(shapes, n.input[2])
    if x is None or len(x) not in (3, 4) or cos is None or sin is None:
        return
    heads = _attr(n, "num_heads")
    if len(x) == 3 and heads is not None and (heads.i <= 0 or x[2] % heads.i):
        raise GraphError(f"{where}: its input {n.input[0]!r} ({x}) is 3-D and its num_heads is {heads.i}: a 3-D input "
                         "is cut into num_heads > 0 heads of one size, dividing its hidden size; onnxruntime refuses "
                         "to run it")
    if len(x) == 4:
        head = x[3]
    elif heads is not None:
        head = x[2] // heads.i
    else:
        return   # (a 3-D input of no num_heads: ONNX's inference refuses it)
    rot = _attr(n, "rotary_embedding_dim")
    rot = rot.i if rot is not None else 0
    d = rot if rot > 0 else head
    batch, seq = x[0], x[2] if len(x) == 4 else x[1]
    ids = len(n.input) > 3 and bool(n.input[3])
    want: list = [seq, d // 2] if ids else [batch, seq, d // 2]
    how = ("[max_position, d / 2] of at least its input's sequence_length rows (it has position_ids)" if ids else
           "[batch, sequence_length, d / 2] of its input (it has no position_ids)")
    why = None
    if rot > head:
        why = f"its rotary_embedding_dim {rot} exceeds the head size {head} of its input {n.input[0]!r} ({x})"
    elif len(cos) != len(want):
        why = f"its cos_cache {n.input[1]!r} is {cos}, of rank {len(cos)}, where it must be {how}"
    elif cos != sin:
        why = f"its cos_cache {n.input[1]!r} ({cos}) and sin_cache {n.input[2]!r} ({sin}) differ in shape"
    elif cos[-1] != d // 2 or (cos[0] < seq if ids else cos[:2] != want[:2]):
        why = (f"its cos_cache {n.input[1]!r} is {cos}, where its input {n.input[0]!r} ({x}, heads of size {head}, "
               f"rotary_embedding_dim {rot}) requires {how}: {want if not ids else ['>= ' + str(seq), d // 2]}")
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")



def check_ms_rotary_caches(n, where: str, shapes: dict) -> None:
    """A com.microsoft RotaryEmbedding whose ``cos_cache`` / ``sin_cache`` (inputs 2 and 3) or attributes
    onnxruntime's kernel refuses is refused naming the node: the caches are one shape ``[max_position, head_size /
    2]`` (or ``rotary_embedding_dim / 2``) of at least the input's ``sequence_length`` rows (a 4-D input is read
    ``[batch, heads, seq, head]``), ``rotary_embedding_dim`` needs ``num_heads`` and is at most the head size, a 3-D
    input's ``num_heads`` (without one: the head size read from the caches) divides its hidden size. Checked where
    the shapes are static.

    Why: onnxruntime's symbolic inference sizes the output as the input and reads nothing of the caches (round 74:
    a sweep of 300 random cache shapes and attributes planned 183 models onnxruntime refuses to run: "Input
    'cos_cache' is expected to have 2 dimensions", "dimension 1 should be same as head_size / 2", "Updating cos_cache
    and sin_cache in RotaryEmbedding is not currently supported")."""
    if n.op_type != "RotaryEmbedding" or n.domain != "com.microsoft" or len(n.input) < 4:
        return
    x = _static_dims(shapes, n.input[0])
    cos, sin = _static_dims(shapes, n.input[2]), _static_dims(shapes, n.input[3])
    heads = _attr(n, "num_heads")
    heads = heads.i if heads is not None else 0
    rot = _attr(n, "rotary_embedding_dim")
    rot = rot.i if rot is not None else 0
    # (checked before the shapes: the kernel's constructor refuses these attributes whatever the shapes, and a
    # 2-D or 5-D input was planned: its symbolic inference sizes the output as the input, of any rank)
    if rot > 0 and heads <= 0:
        raise GraphError(f"{where}: its rotary_embedding_dim is {rot} and it has no num_heads, which onnxruntime "
                         "needs with it; onnxruntime refuses to run it")
    if x is not None and len(x) not in (3, 4):
        raise GraphError(f"{where}: its input {n.input[0]!r} is {x}, of rank {len(x)}, not 3-D [batch, "
                         "sequence_length, hidden] or 4-D [batch, num_heads, sequence_length, head_size]; onnxruntime "
                         "refuses to run it")
    if x is None or cos is None or sin is None:
        return
    seq = x[2] if len(x) == 4 else x[1]
    why = None
    if len(cos) != 2 or len(sin) != 2:
        bad, shape = (n.input[2], cos) if len(cos) != 2 else (n.input[3], sin)
        why = f"its cache {bad!r} is {shape}, not 2-D [max_position, head_size / 2]"
    elif cos != sin:
        why = f"its cos_cache {n.input[2]!r} ({cos}) and sin_cache {n.input[3]!r} ({sin}) differ in shape"
    elif len(x) == 3 and heads > 0 and x[2] % heads:
        why = f"its num_heads {heads} does not divide the hidden size of its input {n.input[0]!r} ({x})"
    elif len(x) == 3 and heads <= 0 and (cos[1] * 2 > x[2] or cos[1] and x[2] % (cos[1] * 2)):
        why = (f"it has no num_heads, so its heads are read as of size {cos[1] * 2} (twice its cos_cache "
               f"{n.input[2]!r}'s width, {cos}), which does not divide the hidden size of its input {n.input[0]!r} "
               f"({x})")
    if why is None:
        head = x[3] if len(x) == 4 else x[2] // heads if heads > 0 else cos[1] * 2
        if rot > head:
            why = f"its rotary_embedding_dim {rot} exceeds the head size {head} of its input {n.input[0]!r} ({x})"
        elif cos[1] != head // 2 and (rot <= 0 or cos[1] != rot // 2):
            why = (f"its cos_cache {n.input[2]!r} is {cos}, of width {cos[1]}, not head_size / 2 = {head // 2}"
                   + (f" nor rotary_embedding_dim / 2 = {rot // 2}" if rot > 0 else "") + f" of its input "
                   f"{n.input[0]!r} ({x})")
        elif cos[0] < seq:
            why = (f"its cos_cache {n.input[2]!r} is {cos}, of {cos[0]} positions for its input {n.input[0]!r} ({x}) "
                   f"of sequence length {seq}")
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")



def check_embed_layer_norm(n, where: str, shapes: dict) -> None:
    """A com.microsoft EmbedLayerNormalization (the embeddings of a BERT onnxruntime's transformer optimizer fused)
    whose inputs onnxruntime's kernel refuses is refused naming the node and the input: ``input_ids`` 2-D, the
    ``segment_ids`` and ``mask`` of its shape, ``position_ids`` of its sequence length and a batch of 1 or its own,
    the embeddings 2-D of one hidden size (the word embedding's width), ``gamma`` / ``beta`` 1-D of it; and without
    ``position_ids`` a sequence no longer than the position embedding's rows (it reads row ``i`` for token ``i``).
    Checked where the shapes are static.

    Why: onnxruntime's symbolic inference sizes the outputs from ``input_ids`` and the word embedding alone, so such
    a model was planned though onnxruntime refuses it (round 74: a fused tiny BERT of 64 positions planned at ``--dim
    s=65``, "input index out of range", where the model before fusion is refused by ONNX's inference; a random
    sweep of 200 input shapes planned 144 models onnxruntime refuses to load or run)."""
    if n.op_type != "EmbedLayerNormalization" or n.domain != "com.microsoft" or len(n.input) < 7:
        return
    ids, word, pos = (_input_dims(n, shapes, i) for i in (0, 2, 3))
    why = None
    if ids is not None and len(ids) != 2:
        why = f"its input_ids {n.input[0]!r} is {ids}, not 2-D [batch, sequence_length]"
    elif word is not None and len(word) != 2 or pos is not None and len(pos) != 2:
        k, got = (2, word) if word is not None and len(word) != 2 else (3, pos)
        why = f"its {('word', 'position')[k - 2]}_embedding {n.input[k]!r} is {got}, not 2-D"
    if why is None and ids is not None:
        for k, name in ((1, "segment_ids"), (7, "mask")):
            got = _input_dims(n, shapes, k)
            if got is not None and got != ids:
                why = f"its {name} {n.input[k]!r} is {got}, not of its input_ids' shape {ids}"
                break
        got = _input_dims(n, shapes, 8)
        if why is None and got is not None and len(got) == 2 and (got[1] != ids[1] or got[0] not in (1, ids[0])):
            why = (f"its position_ids {n.input[8]!r} is {got}, where its input_ids {n.input[0]!r} ({ids}) requires "
                   f"[1 or {ids[0]}, {ids[1]}]")
        if why is None and got is None and not (len(n.input) > 8 and n.input[8]) and pos is not None \
                and ids[1] > pos[0]:
            why = (f"its input_ids {n.input[0]!r} ({ids}) hold {ids[1]} tokens, and it has no position_ids: token i "
                   f"reads row i of its position_embedding {n.input[3]!r} ({pos}), which has {pos[0]}")
    if why is None and word is not None:
        for k, name, rank in ((3, "position_embedding", 2), (4, "segment_embedding", 2), (5, "gamma", 1),
                              (6, "beta", 1)):
            got = _input_dims(n, shapes, k)
            if got is not None and (len(got) != rank or got[-1] != word[1]):
                why = (f"its {name} {n.input[k]!r} is {got}, where its word_embedding {n.input[2]!r} ({word}) "
                       f"requires {'[N, ' if rank == 2 else '['}{word[1]}] (one hidden size)")
                break
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses it")



def check_skip_layer_norm(n, where: str, shapes: dict) -> None:
    """A com.microsoft SkipLayerNormalization / SkipSimplifiedLayerNormalization (what onnxruntime's optimizer makes
    of a residual Add and a LayerNormalization) whose inputs its kernel refuses is refused naming the node and the
    input, as onnxruntime 1.32's ``skip_layer_norm_helper`` checks them: ``input`` and ``skip`` of rank 2 or 3, of
    one shape (or, for a 3-D input, a ``skip`` of its last two dimensions; for a 2-D one, ``[1, hidden]``), their last
    two dimensions equal, and ``gamma``, ``beta`` and ``bias`` 1-D of the input's hidden size. Checked where the
    shapes are static; BiasGelu's and FastGelu's ``bias`` (1-D of the input's last dimension) likewise.

    Why: onnxruntime's symbolic inference sizes the outputs from the input alone, so a ``gamma`` of another hidden
    size or a ``skip`` of another length was planned though onnxruntime refuses to run the node (round 74: a random
    sweep of 900 such nodes planned 397 that onnxruntime refuses: "Last dimension of gamma and input does not
    match", "last two dimensions of skip needs to be same as input", "Input 1 dimension 0 should have same length as
    the last dimension of input 0")."""
    if n.domain != "com.microsoft":
        return
    x = _input_dims(n, shapes, 0)
    why = None
    if n.op_type in ("BiasGelu", "FastGelu"):
        bias = _input_dims(n, shapes, 1)
        if x and bias is not None and (len(bias) != 1 or bias[0] != x[-1]):
            why = f"its bias {n.input[1]!r} is {bias}, not 1-D of its input {n.input[0]!r}'s last dimension ({x})"
    elif n.op_type in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"):
        skip = _input_dims(n, shapes, 1)
        if x is None or skip is None:
            return
        if len(skip) not in (2, 3):
            why = f"its skip {n.input[1]!r} is {skip}, not of rank 2 or 3"
        elif skip != x and len(x) != 3 and not (len(skip) == 2 and skip[0] == 1):
            why = (f"its skip {n.input[1]!r} is {skip}, not its input {n.input[0]!r}'s shape {x} (nor, the input 2-D, "
                   "[1, hidden])")
        elif len(x) not in (2, 3):
            why = f"its input {n.input[0]!r} is {x}, not of rank 2 or 3"
        elif skip[-2:] != x[-2:]:
            why = f"its skip {n.input[1]!r} is {skip}, where its input {n.input[0]!r} ({x}) requires [..., {x[-2]}, {x[-1]}]"
        else:
            roles = ((2, "gamma"), (3, "beta"), (4, "bias")) if n.op_type == "SkipLayerNormalization" else \
                ((2, "gamma"), (3, "bias"))
            for k, role in roles:
                got = _input_dims(n, shapes, k)
                if got is not None and got != [x[-1]]:
                    why = (f"its {role} {n.input[k]!r} is {got}, where its input {n.input[0]!r} ({x}) requires "
                           f"[{x[-1]}] (its hidden size)")
                    break
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")



def check_ms_attention(n, where: str, shapes: dict) -> None:
    """A com.microsoft Attention (a BERT / GPT-2 self-attention fused by onnxruntime's transformer optimizer) whose
    inputs or attributes onnxruntime's CPU kernel refuses is refused naming the node, as onnxruntime 1.32's
    ``AttentionBase::CheckInputs`` checks them: ``input`` 3-D ``[B, S, D_in]``; ``weights`` ``[D_in, D_q + D_k +
    D_v]`` (three equal parts without ``qkv_hidden_sizes``), each part a multiple of ``num_heads`` (above 0), ``D_q
    = D_k``; ``bias`` ``[D_q + D_k + D_v]``; ``past`` ``[2, B, num_heads, P, D_k / num_heads]`` with a present output;
    ``mask_index`` ``[B]``, ``[2B]`` or ``[3B + 2]``, ``[B, T]`` (or ``[B or 1, 1]``), or ``[B, S, T]`` (T = P + S;
    the CPU kernel takes no 4-D mask).
    Checked where the shapes are static.

    Why: onnxruntime's symbolic inference sizes the output from ``input`` and ``bias`` alone, so a ``weights`` of
    another input width, a ``num_heads`` not dividing the hidden size or a mask of another length was planned
    though onnxruntime refuses to run it (round 74: a random sweep of 200 such nodes planned 108)."""
    if n.op_type != "Attention" or n.domain != "com.microsoft" or len(n.input) < 2:
        return
    x, w, bias, mask, past = (_input_dims(n, shapes, i) for i in range(5))
    heads = _attr(n, "num_heads")
    heads = heads.i if heads is not None else 0
    qkv = _attr(n, "qkv_hidden_sizes")
    qkv = list(qkv.ints) if qkv is not None else []
    why = None
    if x is not None and len(x) != 3:
        why = f"its input {n.input[0]!r} is {x}, not 3-D [batch, sequence_length, input_hidden_size]"
    elif w is not None and len(w) != 2:
        why = f"its weights {n.input[1]!r} is {w}, not 2-D"
    elif x is not None and w is not None and w[0] != x[2]:
        why = f"its weights {n.input[1]!r} is {w}, where its input {n.input[0]!r} ({x}) requires [{x[2]}, ...]"
    elif bias is not None and (len(bias) != 1 or w is not None and bias[0] != w[1]):
        why = f"its bias {n.input[2]!r} is {bias}, not [{w[1] if w is not None else 'weights dimension 1'}]"
    elif heads <= 0:
        why = f"its num_heads is {heads}, not above 0"
    if why is None and w is not None:
        if qkv and (len(qkv) != 3 or min(qkv) <= 0):
            why = f"its qkv_hidden_sizes {qkv} are not 3 positive sizes"
        elif not qkv and w[1] % 3:
            why = f"its weights {n.input[1]!r} is {w}: {w[1]} is no three equal Q/K/V hidden sizes"
        else:
            sizes = qkv or [w[1] // 3] * 3
            if any(v % heads for v in sizes) or sizes[0] != sizes[1] or sum(sizes) != w[1]:
                why = (f"its Q/K/V hidden sizes {sizes} (weights {n.input[1]!r} {w}) are not multiples of its "
                       f"num_heads {heads} summing to {w[1]}, the first two equal")
            elif past is not None and (len(past) != 5 or past[0] != 2 or past[2] != heads
                                       or past[4] != sizes[1] // heads or sizes[1] != sizes[2]
                                       or x is not None and past[1] != x[0]):
                why = (f"its past {n.input[4]!r} is {past}, not [2, batch, num_heads = {heads}, past_length, "
                       f"{sizes[1] // heads}] of its input {n.input[0]!r} ({x}) and equal K/V hidden sizes")
    if why is None and len(n.input) > 4 and n.input[4] and (len(n.output) < 2 or not n.output[1]):
        why = f"it reads a past {n.input[4]!r} and writes no present (output 1), which onnxruntime's kernel expects"
    if why is None and x is not None and mask is not None and len(x) == 3:
        total = x[1] + (past[3] if past is not None and len(past) == 5 else 0)
        b, seq = x[0], x[1]
        ok = (len(mask) == 1 and mask[0] in (b, 2 * b, 3 * b + 2) or len(mask) == 2 and (mask == [b, total] or mask[1] == 1
              and mask[0] in (b, 1)) or len(mask) == 3 and mask == [b, seq, total])
        if not ok:
            why = (f"its mask_index {n.input[3]!r} is {mask}, where its input {n.input[0]!r} ({x}) and a total "
                   f"sequence length of {total} require [{b}], [{2 * b}] or [{3 * b + 2}], [{b}, {total}], or "
                   f"[{b}, {seq}, {total}]"
                   + (" (onnxruntime's CPU kernel takes no 4-D mask)" if len(mask) == 4 else ""))
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")



def check_ms_multi_head_attention(n, where: str, shapes: dict) -> None:
    """A com.microsoft MultiHeadAttention of a 3-D query whose key and value onnxruntime's kernel refuses is refused
    naming the node: 3-D ``[B, L, D]`` / ``[B, L, D_v]`` key and value of the query's batch ``B`` and hidden size
    ``D``, of one length ``L``, and a ``bias`` of ``2 D + D_v``; 4-D ones ``[B, num_heads, L, D / num_heads]`` of one
    shape; a ``key_padding_mask`` ``[B]`` or ``[3B + 2]``, ``[B, T]`` or ``[B, S, T]`` (T: L plus the past's
    length). Checked where the shapes are static (packed QKV / KV forms are not checked here).

    Why: the output is sized from the query and the value alone, so a key of another batch, length or width was
    planned though onnxruntime refuses to run it (round 74: a random sweep of 300 nodes planned 91: "Input 'query',
    'key' and 'value' shall have same dim 0 (batch_size)", "Input 'key' and 'value' shall have same dim 1")."""
    if n.op_type != "MultiHeadAttention" or n.domain != "com.microsoft" or len(n.input) < 3:
        return
    q, k, v, bias = (_input_dims(n, shapes, i) for i in range(4))
    if q is None or k is None or v is None or len(q) != 3:
        return
    why = None
    if len(k) == 3 and len(v) == 3:
        if not q[0] == k[0] == v[0]:
            why = f"its query ({q}), key ({k}) and value ({v}) differ in batch (dimension 0)"
        elif k[1] != v[1]:
            why = f"its key ({k}) and value ({v}) differ in length (dimension 1)"
        elif q[2] != k[2]:
            why = f"its query ({q}) and key ({k}) differ in hidden size (dimension 2)"
        elif bias is not None and bias != [2 * q[2] + v[2]]:
            why = f"its bias {n.input[3]!r} is {bias}, not [{2 * q[2] + v[2]}] (2 x {q[2]} + {v[2]})"
    elif len(k) == 4 and len(v) == 4:
        heads = _attr(n, "num_heads")
        heads = heads.i if heads is not None else 0
        if k != v:
            why = f"its 4-D key ({k}) and value ({v}) differ in shape"
        elif k[0] != q[0] or k[1] != heads or k[1] * k[3] != q[2]:
            why = (f"its 4-D key and value ({k}) are not [batch, num_heads, length, head] = [{q[0]}, {heads}, ..., "
                   f"{q[2] // heads if heads > 0 else '?'}] of its query ({q})")
    mask = _input_dims(n, shapes, 4)
    if why is None and mask is not None and len(k) in (3, 4):
        b, seq, length = q[0], q[1], k[1] if len(k) == 3 else k[2]
        past = _input_dims(n, shapes, 6)
        if len(n.input) > 6 and n.input[6] and (past is None or len(past) != 4):
            return   # (a past not known here: its length unknown)
        total = length + (past[2] if past is not None else 0)
        if mask not in ([b], [3 * b + 2], [b, total], [b, seq, total]):
            why = (f"its key_padding_mask {n.input[4]!r} is {mask}, where its query ({q}) and key ({k}) require "
                   f"[{b}], [{3 * b + 2}], [{b}, {total}] or [{b}, {seq}, {total}]")
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")



def _b_quant_param_ok(param: list[int], b: list[int]) -> bool:
    """Whether a zero point of shape ``param`` fits weights ``b`` as onnxruntime's ``IsBQuantParamSupported`` takes
    it: one element, ``[N]`` of a 2-D ``b``, or ``b``'s shape with its ``K`` axis 1."""
    if len(param) == 0 or len(param) == 1 and param[0] == 1:
        return True
    if len(param) == 1 and len(b) == 2 and param[0] == b[1]:
        return True
    return len(param) == len(b) > 1 and param[-2] == 1 and all(
        p == q for k, (p, q) in enumerate(zip(param, b)) if k != len(param) - 2)


def check_integer_to_float_matmul(n, where: str, shapes: dict) -> None:
    """A com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat (what onnxruntime's optimizer makes of a
    dynamically quantized MatMul) whose scales, zero point or bias onnxruntime's kernel refuses is refused naming the
    node (scales as outside the contrib spec, which onnxruntime's kernel is not defined for: onnxruntime 1.32
    refuses some such scales and runs others): the scales' product (``b_scale``, and ``a_scale`` for
    MatMulIntegerToFloat) must broadcast into the output ``[..., M, N]`` without growing it, ``a_zero_point`` be one element, ``b_zero_point`` one element, ``[N]`` or
    ``B``'s shape with ``K`` 1, and ``bias`` hold ``N`` elements. Checked where the shapes are static.

    Why: the output is sized as the MatMul of A and B alone, so a per-column scale of another length or a bias of
    another length was planned though onnxruntime refuses to run it (round 74: a random sweep of 400 nodes planned
    57: "bias tensor's element count must equal B's last dim", "b zero point is not valid", "Attempting to
    broadcast an axis by a dimension other than 1")."""
    ops = {"DynamicQuantizeMatMul": ((2,), 3, 4), "MatMulIntegerToFloat": ((2, 3), 5, 6)}
    if n.op_type not in ops or n.domain != "com.microsoft" or len(n.input) < 3:
        return
    import numpy as np

    scales, zp_k, bias_k = ops[n.op_type]
    a, b = _input_dims(n, shapes, 0), _input_dims(n, shapes, 1)
    if a is None or b is None or len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        return   # (1-D operands, or a K mismatch: the MatMul's own checks)
    try:
        out = list(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))) + [a[-2], b[-1]]
    except ValueError:
        return
    why = None
    got = [_input_dims(n, shapes, k) for k in scales]
    if all(g is not None for g in got):
        try:
            product = np.broadcast_shapes(*(tuple(g) for g in got))
            grown = list(np.broadcast_shapes(tuple(out), product)) != out
        except ValueError:
            grown = True
        if grown:
            why = (f"its scales ({', '.join(f'{n.input[k]!r} {g}' for k, g in zip(scales, got))}) do not broadcast "
                   f"into its output {out}")
    zp, bias = _input_dims(n, shapes, zp_k), _input_dims(n, shapes, bias_k)
    a_zp = _input_dims(n, shapes, 4) if n.op_type == "MatMulIntegerToFloat" else None
    if why is not None:   # (onnxruntime 1.32 runs some such scales: no claim that it refuses them)
        raise GraphError(f"{where}: {why}, which is outside the com.microsoft spec of {n.op_type}; onnxruntime's "
                         "kernel is not defined for it")
    if a_zp is not None and math.prod(a_zp) != 1:
        why = f"its a_zero_point {n.input[4]!r} is {a_zp}, not one element (onnxruntime quantizes A per tensor)"
    if why is None and zp is not None and not _b_quant_param_ok(zp, b):
        why = f"its b_zero_point {n.input[zp_k]!r} is {zp}, not one element, [{b[-1]}] or B's shape {b} with K 1"
    if why is None and bias is not None and math.prod(bias) != b[-1]:
        why = f"its bias {n.input[bias_k]!r} is {bias}, not of {b[-1]} elements (B's last dimension)"
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")



def check_gqa_operands(n, where: str, shapes: dict) -> None:
    """A com.microsoft GroupQueryAttention (onnxruntime-genai's LLM exports) whose query, key, value, past or
    ``seqlens_k`` shapes onnxruntime's kernel refuses is refused naming the node, as its
    ``group_query_attention_helper`` checks them: ``num_heads`` a multiple of ``kv_num_heads``; heads of a size that
    is a multiple of 8 (the query's hidden size over ``num_heads``, or, packed, over ``num_heads + 2 kv_num_heads``);
    a 3-D key and value of the query's batch and length, of one hidden size ``kv_num_heads`` heads of that size;
    4-D pasts ``[B, kv_num_heads, P, head]`` of one length; ``seqlens_k`` of ``B`` elements. Checked where the shapes
    are static.

    Why: the outputs are sized from the query and the pasts alone, so such a model was planned though onnxruntime
    refuses to run it (round 74: a random sweep of 200 nodes planned 101: "num_heads must be a multiple of
    kv_num_heads", "head_size must be a multiple of 8", "Input 'query' and 'key' shall have same dim 1")."""
    if n.op_type != "GroupQueryAttention" or n.domain != "com.microsoft" or not n.input:
        return
    heads, kv = _attr(n, "num_heads"), _attr(n, "kv_num_heads")
    q = _input_dims(n, shapes, 0)
    if heads is None or kv is None or heads.i <= 0 or kv.i <= 0 or q is None or len(q) != 3:
        return
    packed = not (len(n.input) > 1 and n.input[1])
    k, v, pk, pv, lens = (_input_dims(n, shapes, i) for i in range(1, 6))
    head = q[2] // (heads.i + 2 * kv.i if packed else heads.i)
    why = None
    if heads.i % kv.i:
        why = f"its num_heads {heads.i} is not a multiple of its kv_num_heads {kv.i}"
    elif head % 8 or q[2] % (heads.i + 2 * kv.i if packed else heads.i):
        why = (f"its query {n.input[0]!r} ({q}) is not cut into {heads.i}{' + 2 x ' + str(kv.i) if packed else ''} "
               "heads of one size, a multiple of 8")
    elif not packed and k is not None and (len(k) != 3 or k[:2] != q[:2] or k[2] != head * kv.i):
        why = (f"its key {n.input[1]!r} is {k}, where its query ({q}) requires [{q[0]}, {q[1]}, {head * kv.i}] "
               f"({kv.i} kv heads of size {head})")
    elif not packed and k is not None and v is not None and v != k:
        why = f"its value {n.input[2]!r} ({v}) is not of its key's shape ({k})"
    elif pk is not None and pv is not None and (len(pk) != 4 or len(pv) != 4 or pk[0] != q[0] or pv[0] != q[0]
                                                or pk[1] != kv.i or pv[1] != kv.i or pk[2] != pv[2]
                                                or pk[3] != head or pv[3] != head):
        why = (f"its past_key ({pk}) and past_value ({pv}) are not both [{q[0]}, {kv.i}, past_length, {head}] "
               f"(batch, kv_num_heads, length, head size)")
    elif lens is not None and math.prod(lens) != q[0]:
        why = f"its seqlens_k {n.input[5]!r} is {lens}, not of {q[0]} elements (one a batch row)"
    if why is not None:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


#: variadic element-wise ops that broadcast only from opset 8 (their opsets 1-7 require one shape for all inputs)
UNBROADCAST_VARIADIC = frozenset({"Sum", "Mean", "Max", "Min"})


def check_unbroadcast_variadic(n, where: str, shapes: dict, opset: int) -> None:
    """A Sum, Mean, Max or Min of opset 7 or older whose inputs' static shapes differ is refused naming the node
    and the two shapes.

    Why: these ops broadcast from opset 8 only; before, every input has the first one's shape. ONNX's inference of
    the old ops takes the first input's shape (a Sum-6 of ``[2, 3]`` and ``[3]`` was planned ``[2, 3]``; of ``[3]``
    and ``[2, 3]``, ``[3]``: half of what a broadcasting kernel writes), while onnxruntime refuses to run it."""
    if n.op_type not in UNBROADCAST_VARIADIC or not _default_domain(n) or opset >= 8:
        return
    ins = [v for v in n.input if v]
    static = [(v, shapes.get(v, (0, None))[1]) for v in ins]
    static = [(v, s) for v, s in static if s is not None and all(isinstance(d, int) for d in s)]
    for v, s in static[1:]:
        if s != static[0][1]:
            raise GraphError(f"{where}: its inputs {static[0][0]!r} ({list(static[0][1])}) and {v!r} ({list(s)}) differ "
                             f"in shape, which {n.op_type} broadcasts only from opset 8 (the model's is {opset}); "
                             "onnxruntime refuses to run it")



_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
           "ReduceLogSumExp", "ReduceSumSquare")
#: op -> ((input index, its name, the ranks onnxruntime's kernel takes), ...): the inputs it reads as a list of
#: integers, which it refuses in another rank (a 0-D ``axes`` of a Squeeze: "An axes tensor must be a vector tensor")
VECTOR_INPUTS = {
    "Reshape": ((1, "shape", (1,)),),
    "Squeeze": ((1, "axes", (1,)),),
    "Unsqueeze": ((1, "axes", (0, 1)),),
    "Split": ((1, "split", (1,)),),
    "Pad": ((3, "axes", (1,)),),
    "Slice": ((1, "starts", (1,)), (2, "ends", (1,)), (3, "axes", (1,)), (4, "steps", (1,))),
    **{op: ((1, "axes", (1,)),) for op in _REDUCE},
}


def check_vector_operands(n, where: str, shapes: dict) -> None:
    """A node whose list-of-integers input (a Reshape's ``shape``, a Slice's ``starts``/``ends``/``axes``/``steps``,
    a Squeeze's, Reduce's or Pad's ``axes``, a Split's ``split``; ``VECTOR_INPUTS``) is not 1-D (an Unsqueeze's axes:
    0-D or 1-D), or a ConstantOfShape whose shape input is 0-D, is refused naming the node, the input and its shape.

    Why: ONNX's inference reads such an input's values whatever its rank (a Slice of ``ends`` ``5``, a Squeeze of
    ``axes`` ``0``, a Reshape of ``shape`` ``[[10]]`` were planned), while onnxruntime's kernels refuse to run them
    ("Ends must be a 1-D array", "An axes tensor must be a vector tensor", "A shape tensor must be a vector tensor")."""
    if not _default_domain(n):
        return
    wanted = VECTOR_INPUTS.get(n.op_type, ())
    if n.op_type == "ConstantOfShape":
        wanted = ((0, "shape", None),)
    if n.op_type == "Slice" and len(n.input) == 1:   # (Slice-1: attributes)
        return
    for k, name, ranks in wanted:
        if k >= len(n.input) or not n.input[k]:
            continue
        shape = shapes.get(n.input[k], (0, None))[1]
        if shape is None:
            continue
        if (ranks is None and len(shape) == 0) or (ranks is not None and len(shape) not in ranks):
            need = "a tensor of at least one dimension" if ranks is None else "a 0-D or 1-D tensor" if 0 in ranks \
                else "a 1-D tensor"
            raise GraphError(f"{where}: its {name} {n.input[k]!r} has shape {list(shape)}, where onnxruntime takes "
                             f"only {need} and refuses to run it")



def check_split_outputs(n, where: str) -> None:
    """A Split (opset 18 on) whose ``num_outputs`` is not its count of outputs is refused naming the node and both
    counts, before any shape inference runs.

    Why: with fewer ``num_outputs`` than outputs (``num_outputs=1`` and outputs ``a, b``), ONNX's shape inference fails
    an internal check and aborts the whole process (SIGABRT: the import killed its caller, the CLI died without a
    message), and so does onnxruntime loading the model; with more, ONNX's inference sizes the first chunks and the
    import planned them, while onnxruntime refuses to run it ("Number of outputs (2) does not match num_outputs")."""
    if n.op_type != "Split" or not _default_domain(n):
        return
    a = _attr(n, "num_outputs")
    if a is not None and a.type == a.INT and a.i != len(n.output):
        raise GraphError(f"{where}: its num_outputs is {a.i} but it has {len(n.output)} output(s); onnxruntime "
                         "refuses to run it (and ONNX's shape inference aborts the process on fewer num_outputs than "
                         "outputs)")



def check_gather_nd_batch_dims(n, where: str) -> None:
    """A GatherND of a negative ``batch_dims`` is refused naming the node, before any shape inference runs.

    Why: ``batch_dims`` counts leading batch dimensions (the spec's "integer indicating the number of batch
    dimensions"); ONNX's shape inference indexes with a negative one unchecked, sizing nonsense (``[2, 2, 3]`` for
    ``batch_dims=-1`` of a ``[2, 3]`` by ``[2, 1]``) or crashing the process (a segmentation fault on an empty input),
    as onnxruntime's loader does."""
    if n.op_type != "GatherND" or not _default_domain(n):
        return
    a = _attr(n, "batch_dims")
    if a is not None and a.type == a.INT and a.i < 0:
        raise GraphError(f"{where}: its batch_dims is {a.i}, a negative count of batch dimensions (ONNX's shape "
                         "inference and onnxruntime crash the process on it)")


_EINSUM_TERM = re.compile(r"[A-Za-z]*(\.\.\.)?[A-Za-z]*")


def _einsum_problem(equation: str) -> str | None:
    """Why an Einsum ``equation`` is not one onnxruntime runs, or None: spaces aside, input terms of letters with at
    most one ``...`` each, separated by ``,``; at most one ``->``, followed by one such term of no repeated letter."""
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        return "it has more than one '->'"
    lhs, arrow, rhs = eq.partition("->")
    for term in lhs.split(","):
        if not _EINSUM_TERM.fullmatch(term):
            return f"its input term {term!r} is not letters with at most one '...'"
    if arrow:
        if not _EINSUM_TERM.fullmatch(rhs):
            return f"its output term {rhs!r} is not letters with at most one '...'"
        letters = rhs.replace("...", "")
        if len(set(letters)) != len(letters):
            return f"its output term {rhs!r} repeats a label"
    return None


def check_einsum_equation(n, where: str) -> None:
    """An Einsum whose ``equation`` is malformed (``_einsum_problem``: a ``.`` outside ``...``, a ``-`` without ``>``, two
    arrows, a ``,`` or a repeated label in the output) is refused naming the node, before any shape inference runs.

    Why: on ``i.j->i`` or ``ij-`` ONNX's shape inference never returns (the import hung, as does onnxruntime loading
    the model); ``ij->jj``, ``ij->i->j`` and ``ij->ij,`` it sizes, and the import planned them, while onnxruntime
    refuses to run them."""
    if n.op_type != "Einsum" or not _default_domain(n):
        return
    a = _attr(n, "equation")
    if a is None or a.type != a.STRING:
        return
    equation = a.s.decode("utf-8", "replace")
    why = _einsum_problem(equation)
    if why is not None:
        raise GraphError(f"{where}: its equation {equation!r} is malformed ({why}); onnxruntime refuses it, and ONNX's "
                         "shape inference may never return on such an equation")


def check_lrn_rank(n, where: str, shapes: dict) -> None:
    """An LRN whose input is not 4-D is refused naming the node: onnxruntime's only LRN kernel takes ``[N, C, H, W]``
    ("X_shape.NumDimensions() == 4 was false"), where ONNX allows ``[N, C, D1, ..., Dk]`` and its inference sized
    the output as the input (round 73: a 3-D or 5-D LRN was planned)."""
    if n.op_type != "LRN" or not _default_domain(n) or not n.input or not n.input[0]:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is not None and len(x) != 4:
        raise GraphError(f"{where}: its input {n.input[0]!r} is {len(x)}-D ({list(x)}); onnxruntime's LRN kernel takes "
                         "only 4-D input [N, C, H, W] and refuses to run it")


def check_unpool_extent(n, where: str, shapes: dict) -> None:
    """A MaxUnpool whose computed output, ``(in - 1) * stride + kernel - pads``, is not positive along a spatial axis
    is refused naming the node: onnxruntime's kernel computes it whatever ``output_shape`` says and refuses to run it
    ("Computed output dimension is not positive"), where ONNX's inference planned an empty output (round 73)."""
    if n.op_type != "MaxUnpool" or not _default_domain(n) or not n.input or not n.input[0]:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    kernel, strides, pads = (_attr(n, k) for k in ("kernel_shape", "strides", "pads"))
    if x is None or not all(isinstance(d, int) for d in x) or len(x) < 3 or kernel is None:
        return
    spatial = len(x) - 2
    k = list(kernel.ints)
    s = list(strides.ints) if strides is not None else [1] * spatial
    p = list(pads.ints) if pads is not None else [0] * 2 * spatial
    if not len(k) == len(s) == spatial or len(p) != 2 * spatial:
        return   # (ONNX's inference refuses it)
    for i in range(spatial):
        out = (x[2 + i] - 1) * s[i] + k[i] - p[i] - p[i + spatial]
        if out <= 0:
            raise GraphError(f"{where}: along dimension {2 + i} its input {n.input[0]!r} ({list(x)}), kernel {k[i]}, "
                             f"stride {s[i]} and pads {p[i]} + {p[i + spatial]} make an output of {out}; onnxruntime "
                             "refuses to run it (\"Computed output dimension is not positive\")")


def check_grid_sample_extent(n, where: str, shapes: dict) -> None:
    """A GridSample whose input is empty along a spatial axis is refused naming the node: onnxruntime's kernel refuses
    to sample from it ("Input spatial dimensions must be non-empty for sampling"), whatever the grid, where ONNX's
    inference sized the output by the grid (round 73: planned)."""
    if n.op_type != "GridSample" or not _default_domain(n) or not n.input or not n.input[0]:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None or len(x) < 3 or 0 not in x[2:]:
        return
    i = list(x[2:]).index(0) + 2
    raise GraphError(f"{where}: its input {n.input[0]!r} ({list(x)}) is empty along spatial dimension {i}; onnxruntime "
                     "refuses to run it (\"Input spatial dimensions must be non-empty for sampling\")")


def check_before_inference(n, where: str) -> None:
    """The checks of node ``n`` that must run before ONNX's shape inference sees the model, because inference (and
    onnxruntime loading the model) kills the process or never returns on what they refuse, instead of raising."""
    check_split_outputs(n, where)
    check_gather_nd_batch_dims(n, where)
    check_einsum_equation(n, where)



def check_empty_optional(n, where: str, empty: set[str]) -> None:
    """An OptionalGetElement of an optional that is known to hold nothing (made by an ``Optional`` node of no input,
    or passed on from one by ``Identity``) is refused naming the node; ``empty`` collects those optionals, node by
    node in graph order.

    Why: ONNX's inference types the element from the Optional's ``type`` attribute, and the node was planned, while
    onnxruntime refuses to run it ("Trying to use OptionalGetElement on an optional type OrtValue which contains no
    data")."""
    if not _default_domain(n):
        return
    ins = [v for v in n.input if v]
    if n.op_type == "Optional" and not ins and n.output and n.output[0]:
        empty.add(n.output[0])
    elif n.op_type == "Identity" and ins and ins[0] in empty and n.output and n.output[0]:
        empty.add(n.output[0])
    elif n.op_type == "OptionalGetElement" and ins and ins[0] in empty:
        raise GraphError(f"{where}: it takes the element of optional {ins[0]!r}, which holds none (an Optional of no "
                         "input); onnxruntime refuses to run it")


__all__ = ["check_attention_heads", "check_attention_kv_lengths", "check_gqa_operands", "check_gqa_subsequent_prompt", "check_integer_to_float_matmul", "check_llm_kernel_limits", "check_before_inference", "check_lrn_rank", "check_unpool_extent", "check_grid_sample_extent", "check_constant_of_shape_value", "check_input_named_empty", "check_empty_optional", "check_recurrent_operands", "check_zero_point_shapes", "check_gather_nd_batch", "check_resize_roi_length", "check_tensor_scatter_extent", "check_pad_constant_value", "check_resize_scale_range", "check_embed_layer_norm", "check_ms_attention", "check_ms_multi_head_attention", "check_ms_rotary_caches", "check_rotary_caches", "check_skip_layer_norm", "check_rotary_position_ids", "check_topk_k",
           "check_softmax_cross_entropy_operands", "check_split_outputs", "check_unbroadcast_variadic",
           "check_vector_operands"]
