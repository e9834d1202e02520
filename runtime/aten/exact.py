"""Kernel-for-kernel lowerings: ops whose ``out=`` form is missing, or is torch's functional + copy,
written as the very kernels the functional op runs, into the planned view.

Why: an executor that copies each such result costs a kernel and a pass over the result per node; on a
CNN that is every convolution. Each lowering here calls what eager PyTorch calls for that op (so results
match eager bit for bit where the kernels are deterministic), or refuses (None) when its preconditions
do not hold, and the generic path (``out=`` overload, else a counted copy) takes over:

- copies and casts (``clone``, ``_to_copy``, ``to``, ``contiguous``, a copying ``reshape``) -> ``copy_``;
- factories (``new_ones``, ``zeros``, ``full``...) -> ``fill_`` (``empty``: nothing);
- ``linear`` -> ``addmm``/``mm`` out on the folded input (what ``linear`` runs for contiguous inputs);
- ``embedding`` -> ``index_select`` out; ``relu`` -> ``clamp_min`` out; ``__and__`` etc. -> ``bitwise_*``;
- CUDA ``conv2d``/``convolution`` on the cuDNN backend -> ``cudnn_convolution`` out (+ bias ``add_``);
- ``slice_scatter``, ``select_scatter``, ``diagonal_scatter``, ``as_strided_scatter`` -> the input copied into
  the result, then ``src`` into the result's view (their functional kernels clone the input's whole
  *storage* first, and every arena view's storage is the arena: their ``out=`` forms copied the whole
  arena per call);
- ``adaptive_avg_pool2d`` to 1x1 and ``adaptive_avg_pool3d`` to 1x1x1 -> ``mean`` out over the pooled
  dimensions (what they run; their ``out=`` overloads run the pooling kernel, other rounding);
- eval ``batch_norm`` -> ``native_batch_norm`` out; ``max_pool2d`` -> ``max_pool2d_with_indices`` out. These
  two also write side results nobody reads (saved statistics, indices). The torch importer gives them
  graph tensors of their own (``Program.side``), so they land in the arena like any result, for the one
  node that writes them. Where the plan has none for one (a graph built without them, a layout that
  differs), it goes to scratch outside the arena: the pool indices share one buffer per stream
  (``Scratch``), the statistics are per launch; that memory is reported as ``scratch_bytes``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from memplan.importers.torch_ops import same_layout

#: ops that copy their input unchanged (maybe cast, maybe to another layout): ``out.copy_(x)``. ``_lazy_clone``
#: is a clone whose copy torch defers (copy-on-write): run as it is on an arena view it turned the arena's own
#: storage copy-on-write, and the next write to the arena moved it (the call refused, "the arena's storage moved")
COPIES = {"clone", "_lazy_clone", "_to_copy", "to", "contiguous", "lift_fresh_copy", "type_as", "reshape", "flatten",
          "_reshape_alias", "view_as", "reshape_as"}
#: factories: result filled with one value (None: left as it is, like ``empty``)
FILLS: dict[str, int | None] = {"new_ones": 1, "ones": 1, "ones_like": 1, "new_zeros": 0, "zeros": 0, "zeros_like": 0,
                                "new_empty": None, "empty": None, "empty_like": None, "new_empty_strided": None,
                                "empty_strided": None}
FULL = {"new_full", "full", "full_like"}
#: ops whose functional kernel clones its input's whole storage (``clone_preserve_strides``) and copies
#: ``src`` into a view of the clone: the view op (``torch.ops.aten`` overload) and its arguments after ``self``
SCATTERS: dict[str, tuple[str, str, tuple[tuple[str, Any], ...]]] = {
    "slice_scatter": ("slice", "Tensor", (("dim", 0), ("start", None), ("end", None), ("step", 1))),
    "select_scatter": ("select", "int", (("dim", None), ("index", None))),
    "diagonal_scatter": ("diagonal", "default", (("offset", 0), ("dim1", 0), ("dim2", 1))),
}

#: (kind, run, scratch bytes); kind "copy": the lowering copies its result once more (through a temporary)
Exact = tuple[str, Callable[[], Any] | None, int]


class Scratch:
    """Buffers for side results nobody reads (pool indices, saved batch-norm statistics): one growing
    buffer per (stream, dtype), shared by the launches of that stream, which run one after another;
    launches on different streams never share one. ``nbytes`` is what all of them hold."""

    def __init__(self, torch, device: Any):
        self.torch, self.device = torch, device
        self._bufs: dict[tuple[int, Any], Any] = {}
        self.nbytes = 0
        #: every buffer made (one a larger take replaced too: launches still hold views of it) and every tensor a
        #: launch keeps of its own (``keep``): the device memory calls write outside the arena, which the executor
        #: records as used on each caller stream (``Executor._record_streams``)
        self._held: list[Any] = []

    def keep(self, t: Any) -> None:
        """Hold ``t``, a side result or temporary a launch allocated for itself, among ``tensors()``."""
        self._held.append(t)

    def tensors(self) -> list[Any]:
        """The buffers and kept tensors (``_held``). Why (round 75, review75): only the current buffer of each
        (stream, dtype) was recorded on the caller's streams, so a smaller one a later take replaced, and a launch's
        own tensors (an eval BatchNorm's saved statistics), were handed back to the caching allocator's build stream
        at a rebuild or release while the last call's kernels on another stream still wrote them."""
        return list(self._held)

    def take(self, stream: int, shape: tuple[int, ...], dtype: Any) -> Any:
        """A contiguous tensor of ``shape`` for a launch on ``stream`` (its bytes may be another's)."""
        n = 1
        for d in shape:
            n *= int(d)
        buf = self._bufs.get((stream, dtype))
        if buf is None or buf.numel() < n:
            buf = self.torch.empty(max(n, 1), dtype=dtype, device=self.device)
            self._bufs[(stream, dtype)] = buf
            self._held.append(buf)
            self.nbytes += buf.nbytes
        return buf[:n].view(tuple(shape))


def _same_layout(a: Any, b: Any) -> bool:
    """One dtype and ``same_layout``'s rule: a stride of a size-1 dimension addresses nothing, so it does not count."""
    return a.dtype == b.dtype and same_layout(a, b)


def _as_kernel_lays(t: Any, meta: Any) -> Any:
    """``t`` (laid out as ``meta`` by ``same_layout``) viewed with ``meta``'s very strides: the same elements at the
    same addresses. Why: a structured ``.out`` kernel compares its ``out``'s strides exactly and writes a proxy of its
    own (then copies it back) where they differ, even in a size-1 dimension; the exact lowerings compared them
    exactly too, so a batch of one whose record gave the batch dimension another stride ran max_pool2d on the
    generic path and left its planned ``indices`` bytes unused (round 50b)."""
    if t.numel() == 0 or tuple(t.stride()) == tuple(meta.stride()):
        return t
    return t.as_strided(tuple(meta.shape), tuple(meta.stride()), t.storage_offset())


def _spanned(t: Any) -> Any:
    """The elements ``t`` spans, from its first to its last, as one dense row of its dtype (strides >= 0)."""
    n = sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1 if t.numel() else 0
    return t.as_strided((n,), (1,), t.storage_offset())


def exact_lowering(torch, base: str, named: Mapping[str, Any], out_views: list, device_type: str,
                   scratch: Scratch | None = None, stream: int = 0, side: Mapping[str, Any] | None = None
                   ) -> Exact | None:
    """An exact lowering of op ``base`` with schema-named arguments ``named`` into ``out_views``, or None.
    ``side``: planned views (by role) for side results the kernel writes; ``scratch`` holds the others."""
    if len(out_views) != 1:
        return None
    out = out_views[0]
    x = named.get("self", named.get("input"))
    if base == "lift_fresh_copy" and isinstance(x, torch.Tensor) and x.device != out.device:
        # a constant made in forward (torch.tensor(0.5)) stays on the CPU, where eager uses it as a scalar;
        # moved once here, its copy into the arena is device to device (capturable), the same values
        x = x.to(out.device)
    if base in COPIES and isinstance(x, torch.Tensor) and x.device == out.device:
        if base == "_lazy_clone" and _same_layout(x, out) and torch._debug_has_internal_overlap(out) != 0:
            # eager's lazy clone keeps its input's strides, an expand's zeros too (``x.expand(3, 4)``: (0, 1)); copy_
            # refuses a destination whose elements share memory: the bytes the input spans, copied over the result's
            return "exact", functools.partial(_spanned(out).copy_, _spanned(x)), 0
        if tuple(x.shape) == tuple(out.shape):
            return "exact", functools.partial(out.copy_, x), 0
        if out.is_contiguous():
            return "exact", functools.partial(out.view(tuple(x.shape)).copy_, x), 0
        return None
    if base in FILLS:
        v = FILLS[base]
        if v is None:
            return _deterministic_empty(torch, out)
        return "fill", functools.partial(out.fill_, v), 0
    if base in FULL:
        v = named.get("fill_value")
        return ("fill", functools.partial(out.fill_, v), 0) if isinstance(v, (bool, int, float)) else None
    if base == "relu" and isinstance(x, torch.Tensor) and x.dtype != torch.bool:
        # relu.out is functional + copy; relu runs this. Not for bool, which eager's relu refuses by name
        # ("Boolean inputs not supported for relu") where clamp_min's said "Found dtype Bool but expected Long"
        return "exact", functools.partial(torch.ops.aten.clamp_min.out, x, 0, out=out), 0
    if base in SCATTERS or base == "as_strided_scatter":
        return _scatter(torch, base, named, out, scratch, stream)
    if base == "linear":
        return _linear(torch, named, out)
    if base == "matmul":
        return _vector_matrix(torch, x, named.get("other"), out)
    if base == "embedding":
        w, idx = named["weight"], named["indices"]
        if not (out.is_contiguous() and idx.is_contiguous()):
            return None
        # the rows counted, not inferred (-1): a weight with rows of width 0 leaves -1 ambiguous
        return "exact", functools.partial(torch.ops.aten.index_select.out, w, 0, idx.view(-1),
                                          out=out.view(idx.numel(), w.shape[-1])), 0
    if base in ("conv2d", "convolution") and device_type == "cuda":
        return _cudnn_conv(torch, named, out)
    if base == "batch_norm":
        return _batch_norm(torch, named, out, scratch, stream, side)
    if base == "max_pool2d":
        return _max_pool2d(torch, named, out, scratch, stream, side)
    if base == "adaptive_avg_pool2d" and list(named["output_size"]) == [1, 1] and isinstance(x, torch.Tensor):
        return "exact", functools.partial(torch.ops.aten.mean.out, x, [-1, -2], True, out=out), 0  # what it runs
    if base == "adaptive_avg_pool3d" and list(named["output_size"]) == [1, 1, 1] and isinstance(x, torch.Tensor):
        return "exact", functools.partial(torch.ops.aten.mean.out, x, [-1, -2, -3], True, out=out), 0  # the same
    return None


def matmul_out_differs(torch, a, b) -> bool:
    """Whether ``matmul(a, b)`` runs other kernels than ``matmul.out``: torch's ``should_fold`` folds a
    3-D-or-more operand into one ``mm`` when the other (a matrix or vector) requires grad, even under
    no_grad, but not with ``out=`` (then it folds only when that needs no copy; else ``bmm``, other
    rounding). A parameter used directly in a product (``self.w @ x``) takes that path in eager."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    big, small = (a, b) if a.dim() >= b.dim() else (b.mT, a)
    if not (big.dim() >= 3 and small.dim() <= 2) or not small.requires_grad:
        return False
    if a.dim() == 2:  # 2-D @ N-D: matmul.out never folds this one
        return True
    if big.numel() == 0:
        return False
    shape, stride = big.shape, big.stride()
    return any(stride[i] != stride[i + 1] * shape[i + 1] for i in range(big.dim() - 2))


def _vector_matrix(torch, a, b, out, bias=None) -> Exact | None:
    """``vector @ matrix`` as eager's ``matmul`` runs it: ``mm`` of the vector as one row, into the result as
    one row (then ``add_`` of ``linear``'s bias). ``matmul.out`` runs that ``mm`` into its ``out`` itself,
    resizing the planned 1-D view to 2-D and back every call: torch's deprecation warning on stderr each
    call, and an error once torch stops resizing outputs that have elements."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() == 1 and b.dim() == 2):
        return None
    return _then_bias(functools.partial(torch.ops.aten.mm.out, a.unsqueeze(0), b, out=out.unsqueeze(0)), out, bias)


def _then_bias(product: Callable[[], Any], out, bias) -> Exact:
    """``product`` into ``out``, then ``out.add_(bias)`` where there is one: eager's ``matmul`` path of a
    vector operand (``mm`` or ``mv``) followed by ``linear``'s separate bias add."""
    if bias is None:
        return "exact", product, 0

    def run() -> None:
        product()
        out.add_(bias)
    return "exact", run, 0


def _linear(torch, named, out) -> Exact | None:
    x, w, b = named["input"], named["weight"], named.get("bias")
    if isinstance(x, torch.Tensor) and x.dim() == 1:
        if out.dim() != 1:
            # a bias of more dimensions (``[1, N]`` of a strided vector, ``[M, N]``) broadcast the export's fake result,
            # where eager's ``add_`` into its vector (or its ``addmm``) refuses: the generic path runs eager's
            # ``linear``, which fails as eager does (round 76: the lowering resized the planned view every call,
            # torch's deprecation warning on stderr, and returned a result where eager raises)
            return None
        if (isinstance(b, torch.Tensor) and isinstance(w, torch.Tensor) and w.dim() == 2 and x.is_contiguous()
                and _eager_addmm(torch, x, b)):
            # eager's ``_flatten_nd_linear`` of the vector as one row: addmm, the bias fused (round 76: mm then
            # add_ was an ulp off eager's in f16/bf16)
            return "exact", functools.partial(torch.ops.aten.addmm.out, b, x.unsqueeze(0), w.t(),
                                              out=out.unsqueeze(0)), 0
        return _vector_matrix(torch, x, w.t(), out, b)  # linear of a vector: matmul(x, w.t()) (+ add_(bias))
    if not (out.is_contiguous() and x.is_contiguous() and x.dim() >= 2):
        return None
    # the folded sizes spelled out: ``view(-1, 0)`` of an input with no features (0 elements) is ambiguous
    # and raised, where eager's linear runs (the bias alone)
    rows = math.prod(x.shape[:-1])
    if isinstance(w, torch.Tensor) and w.dim() == 1:
        return _linear_vector_weight(torch, x, w, b, out, rows)
    if not (isinstance(w, torch.Tensor) and w.dim() == 2):
        return None
    x2, o2 = x.view(rows, x.shape[-1]), out.view(rows, out.shape[-1])
    if b is None:  # linear without bias: matmul(x, w.t()), which folds to mm
        return "exact", functools.partial(torch.ops.aten.mm.out, x2, w.t(), out=o2), 0
    if _eager_addmm(torch, x, b):  # with bias: addmm on the folded input, where eager's ``linear`` runs it
        return "exact", functools.partial(torch.ops.aten.addmm.out, b, x2, w.t(), out=o2), 0
    return None


def _eager_addmm(torch, x, b) -> bool:
    """Whether eager's ``linear`` of the contiguous input ``x`` and bias ``b`` runs ``addmm`` on the folded input
    (``_flatten_nd_linear``; a 1-D input as one row), not ``matmul`` then ``add_`` (the generic ``linear.out``'s path).

    Why: the two differ by an ulp in f16/bf16 once the product's sum is blocked, so the lowering must take eager's.
    A 2-D input: always addmm. From torch 2.10 (pytorch#166071), a contiguous input of more dimensions with a bias
    "likely fusable": contiguous, of one dimension once squeezed (``[N]``, ``[1, N]``); before, any bias of a
    contiguous 3-D input and a 1-D one of more dimensions. Round 67 took the older rule for the 3-D input and a
    contiguous 1-D bias alone beyond: on torch 2.11 and 2.14 a 3-D input with a strided (``B[::2]``), stride-0 or 0-D
    bias, and a 4-D one with a ``[1, N]`` bias, were computed otherwise than eager (review of round 67)."""
    if x.dim() == 2:
        return True
    if not isinstance(b, torch.Tensor):
        return False
    try:
        fusable_rule = torch.__version__ >= (2, 10)   # (``TorchVersion`` compares with a tuple)
    except TypeError:
        fusable_rule = True
    if fusable_rule:
        return b.is_contiguous() and 1 in (b.dim(), b.squeeze().dim())
    return x.dim() == 3 or b.dim() == 1


def _linear_vector_weight(torch, x, w, b, out, rows: int) -> Exact | None:
    """``linear`` with a 1-D weight (D-FINE's box-distribution integral, ``F.linear(probs, project)``): the
    result has the input's leading dimensions alone, one number per row. Eager runs ``matmul(x, w.t())``, ``w.t()``
    being ``w``, and ``matmul`` of a 2-D-or-more input with a vector is ``mv`` of the folded input (``add_``
    of a bias after it); so does this, into the result as one vector. With a bias and a 2-D (or contiguous
    3-D) input eager runs ``addmm``, which refuses a vector: the generic path gives eager's error."""
    if b is not None and x.dim() <= 3:
        return None
    return _then_bias(functools.partial(torch.ops.aten.mv.out, x.view(rows, x.shape[-1]), w, out=out.view(rows)),
                      out, b)


def _scatter(torch, base: str, named, out, scratch: Scratch | None, stream: int) -> Exact | None:
    """``*_scatter(self, src, ...)`` into ``out``: ``self``'s elements, then ``src`` into the view of them
    the op names, each element copied once, as eager's kernel copies it (the same ``copy_``: bitwise).

    Why: eager's functional kernel runs ``clone_preserve_strides(self)``, a clone of ``self``'s whole
    storage (so that ``as_strided_scatter``'s storage offset keeps its meaning), then ``view.copy_(src)``.
    In eager that storage is ``self``'s own tensor; here every arena view's storage is the arena, and the
    ``out=`` forms (torch's functional + copy) cloned the whole arena per call (64 MiB per scatter of a
    64x64 tensor in a 64 MiB arena). Only ``self``'s own elements reach the result, so only those
    are copied. The result is written directly where it overlaps neither ``self`` (unless it is ``self``'s
    very view: nothing to move then) nor ``src`` (else ``src`` would be overwritten before it is read);
    otherwise through a temporary from ``scratch`` (one more copy, counted: kind ``copy``).
    ``as_strided_scatter``'s window is in storage coordinates: it is written directly only when ``self``
    is dense, the result has ``self``'s strides and the window lies inside ``self``'s bytes (then a
    storage position maps to the same position in the result); otherwise the temporary spans ``self`` and
    the window, positions outside ``self`` are written there and dropped, as eager drops them. None where
    eager does something else (an input with internal overlap: it clones that contiguously; a window or
    ``src`` shape that eager refuses; ``as_strided_scatter`` of a non-contiguous input that requires grad, a
    parameter's transpose, which eager's kernel asserts against, or of a conjugate or negative view, which
    eager resolves into a new tensor first, the window's storage offset counting from that one): the
    generic path, eager's own kernel, runs then."""
    x, src = named.get("self"), named.get("src")
    if not (isinstance(x, torch.Tensor) and isinstance(src, torch.Tensor)) or x.dtype != out.dtype:
        return None
    if x.device != out.device or src.device != out.device or tuple(x.shape) != tuple(out.shape):
        return None
    if not (distinct(x) and distinct(out)):
        return None
    if base == "as_strided_scatter":
        return _as_strided_scatter(torch, named, x, src, out, scratch, stream)
    vname, overload, params = SCATTERS[base]
    vop = getattr(getattr(torch.ops.aten, vname), overload)
    rest = tuple(named.get(k, default) for k, default in params)

    def window(t):
        return vop(t, *rest)
    try:
        if tuple(window(x).shape) != tuple(src.shape):
            return None   # eager refuses it: its error, from the generic path
    except Exception:
        return None
    if not _overlap(out, src) and (_same_place(out, x) or not _overlap(out, x)):
        dst = window(out)
        if _same_place(out, x):   # the result over its input, element for element: it is there already
            return "exact", functools.partial(dst.copy_, src), 0
        return "exact", functools.partial(_copy_then_scatter, out, x, dst, src), 0
    tmp, own = _temp(torch, tuple(x.shape), x.dtype, out.device, scratch, stream)
    return "copy", functools.partial(_copy_then_scatter, tmp, x, window(tmp), src, out), own


def _as_strided_scatter(torch, named, x, src, out, scratch: Scratch | None, stream: int) -> Exact | None:
    if x.requires_grad and not x.is_contiguous():
        return None   # eager refuses it (an assert, grad mode or not): its error, from the generic path
    if x.is_conj() or x.is_neg():
        return None   # eager scatters into a resolved copy of x, the offset counting from its start (lower.py)
    size, stride = [int(v) for v in named["size"]], [int(v) for v in named["stride"]]
    off = named.get("storage_offset")
    off = x.storage_offset() if off is None else int(off)
    try:
        w = x.as_strided(size, stride, off)   # a view only: where the window lies in x's storage
    except Exception:
        return None
    if tuple(w.shape) != tuple(src.shape) or not distinct(w):
        return None   # a window whose elements share memory: eager's copy_ into it refuses (its error)
    if w.numel() == 0:
        # nothing scattered: the result is the input's elements wherever the window lies (eager's clone of
        # the storage, read back at the input's place); the window's reach no longer decides the path
        if _same_place(out, x):
            return "exact", _nothing, 0
        if not _overlap(out, x):
            return "exact", functools.partial(out.copy_, x), 0
        tmp, own = _temp(torch, tuple(x.shape), x.dtype, out.device, scratch, stream)
        return "copy", functools.partial(_copy_then_scatter, tmp, x, tmp.as_strided(size, stride, 0), src, out), own
    x0 = x.storage_offset()
    x1 = x0 + _extent(x)
    w0 = off
    w1 = w0 + _extent(w)
    if (_dense_strided(x) and not _overlap(out, src) and w0 >= x0 and w1 <= x1
            and all(a == b for n, a, b in zip(x.shape, x.stride(), out.stride()) if n != 1)):
        same = _same_place(out, x)
        if same or not _overlap(out, x):
            dst = out.as_strided(size, stride, out.storage_offset() + off - x0)
            if same:
                return "exact", functools.partial(dst.copy_, src), 0
            return "exact", functools.partial(_copy_then_scatter, out, x, dst, src), 0
    lo, hi = min(x0, w0), max(x1, w1)
    flat, own = _temp(torch, (hi - lo,), x.dtype, out.device, scratch, stream)
    base = flat.storage_offset() - lo
    tx = flat.as_strided(tuple(x.shape), tuple(x.stride()), base + x0)
    tw = flat.as_strided(size, stride, base + off)
    return "copy", functools.partial(_copy_then_scatter, tx, x, tw, src, out), own


def _copy_then_scatter(dst, x, window, src, out=None) -> None:
    """``dst`` = ``x``, ``window`` (a view of ``dst``) = ``src``; then ``out`` = ``dst`` where ``dst`` is a
    temporary."""
    dst.copy_(x)
    window.copy_(src)
    if out is not None:
        out.copy_(dst)


def _temp(torch, shape: tuple[int, ...], dtype, device, scratch: Scratch | None, stream: int):
    """A contiguous temporary for one launch: shared scratch of its stream where there is one."""
    if scratch is not None:
        return scratch.take(stream, shape, dtype), 0
    t = torch.empty(shape, dtype=dtype, device=device)
    return t, t.nbytes


def _extent(t) -> int:
    """Elements from a tensor's first element to one past its last (strides >= 0; 0 when empty)."""
    if t.numel() == 0:
        return 0
    return sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1


def _apart(t) -> bool:
    """No two elements share memory, by a sufficient test: each dimension (by increasing stride) steps
    past everything the smaller ones reach. Other layouts (interleaved, expanded) count as overlapping."""
    reach = 0
    for size, stride in sorted((d for d in zip(t.shape, t.stride()) if d[0] > 1), key=lambda d: d[1]):
        if stride <= reach:
            return False
        reach += (size - 1) * stride
    return True


#: most elements whose positions ``distinct`` lists to decide a layout ``_apart`` cannot (build time only)
_LIST_AT_MOST = 1 << 22


def distinct(t) -> bool:
    """No two elements share memory, exactly where ``_apart``'s sufficient test cannot tell: an interleaved
    layout (``(2, 3)`` with strides ``(3, 2)``: positions 0 2 4 3 5 7, all distinct; torch's own test says
    "too hard" and eager's kernels take it as apart) is decided by listing its elements' positions, once
    at build time. Such an input or window went to eager's kernel, which cloned the whole arena per call."""
    n = t.numel()
    if n == 0 or _apart(t):
        return True   # no elements, none shared (a zero-size window with a zero stride: eager takes it)
    if n > _LIST_AT_MOST or any(st == 0 for size, st in zip(t.shape, t.stride()) if size > 1):
        return False
    import torch

    pos = torch.zeros((), dtype=torch.int64)
    for d, (size, st) in enumerate(zip(t.shape, t.stride())):
        shape = [1] * t.dim()
        shape[d] = size
        pos = pos + torch.arange(size, dtype=torch.int64).mul_(st).reshape(shape)
    return int(pos.flatten().unique().numel()) == n


def _deterministic_empty(torch: Any, out: Any) -> Exact:
    """An ``empty`` (``new_empty``, ``empty_like``, ``empty_strided``...) into ``out``: nothing to run, except under
    ``torch.use_deterministic_algorithms(True)`` with ``torch.utils.deterministic.fill_uninitialized_memory`` (its
    default), where eager's factory fills the new tensor (NaN for floating and complex dtypes, the largest value for
    integer and bool ones): then the same fill, its value taken from torch's own ``empty`` of that dtype so the bits
    are eager's. Why: the program left the arena's bytes there (0xFF under ``poison``: -1 where eager's int64 is
    2**63 - 1, NaN of other bits), so ``o = torch.empty(4, 3); o[:2] = x; return o`` differed from eager's bit for
    bit (round 48). The flags are read at build time; a change rebuilds the executor (``backend_flags.backend_flags``)."""
    if not (torch.are_deterministic_algorithms_enabled()
            and getattr(getattr(torch.utils, "deterministic", None), "fill_uninitialized_memory", False)):
        return "fill", None, 0
    value = torch.empty((), dtype=out.dtype, device=out.device)   # (filled by torch, as eager's)
    if out.numel() == 0:
        return "fill", None, 0
    if torch._debug_has_internal_overlap(out) != 0:   # (copy_ refuses a destination whose elements share memory)
        return "fill", functools.partial(out.fill_, value), 0
    return "fill", functools.partial(out.copy_, value), 0


def _nothing() -> None:
    """A launch with nothing to do that still is one (a zero-size window scattered over its input in place)."""


def _dense_strided(t) -> bool:
    """Every position from its first element to its last is one of its elements (no gaps, no overlap)."""
    return t.numel() == _extent(t)


def _overlap(a, b) -> bool:
    """Whether the byte ranges of two tensors' elements (first to last) intersect."""
    if a.numel() == 0 or b.numel() == 0:
        return False
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + _extent(b) * b.element_size() and b0 < a0 + _extent(a) * a.element_size()


def _same_place(a, b) -> bool:
    """The same elements at the same addresses (a stride of a size-1 dimension does not matter), read the
    same way: a conjugate or negative view (``conj()``, ``_neg_view``) of the bytes has other elements
    than the bytes (its bit is resolved by a copy), so a result over one is not "there already"."""
    return (a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and a.data_ptr() == b.data_ptr()
            and a.is_conj() == b.is_conj() and a.is_neg() == b.is_neg()
            and all(p == q for n, p, q in zip(a.shape, a.stride(), b.stride()) if n != 1))


def _conv_tf32(torch) -> bool:
    """Whether eager's convolution lets cuDNN use TF32: what ``at::convolution`` passes to ``cudnn_convolution``,
    ``allowTF32CuDNN(Float32Op::CONV)``, the convolutions' own float32 precision where torch has that API (2.9+).

    Why not ``torch.backends.cudnn.allow_tf32``: that legacy getter asks for cuDNN's one flag without naming an op and
    raises where convolutions and RNNs were given different precisions (``torch.backends.cudnn.conv.fp32_precision =
    "ieee"`` beside RNNs' "tf32"), so lowering any CUDA convolution under that state was a raw RuntimeError; where it
    does not raise it reads the same as the convolutions' own."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    precision = getattr(conv, "fp32_precision", None)
    if isinstance(precision, str):
        return precision == "tf32"
    return bool(torch.backends.cudnn.allow_tf32)


def _cudnn_conv(torch, named, out) -> Exact | None:
    x, w, b = named["input"], named["weight"], named.get("bias")
    if named.get("transposed", False) or isinstance(named.get("padding"), str) or x.dim() != 4:
        return None
    k = w.dim() - 2

    def full(v, default):
        v = list(v) if v is not None else [default]
        return v * k if len(v) == 1 else v
    stride, padding = full(named.get("stride"), 1), full(named.get("padding"), 0)
    dilation, groups = full(named.get("dilation"), 1), int(named.get("groups", 1))
    backend = torch._C._select_conv_backend(x, w, b, stride, padding, dilation, False, [0] * k, groups, None)
    if backend != torch._C._ConvBackend.Cudnn:
        return None
    for fmt in (torch.contiguous_format, torch.channels_last):
        if x.is_contiguous(memory_format=fmt) and out.is_contiguous(memory_format=fmt):
            break
    else:
        return None
    cudnn = torch.backends.cudnn
    conv = functools.partial(torch.ops.aten.cudnn_convolution.out, x, w, padding, stride, dilation, groups,
                             bool(cudnn.benchmark), bool(cudnn.deterministic), _conv_tf32(torch), out=out)
    if b is None:
        return "exact", conv, 0
    bias = b.reshape(1, -1, *([1] * k))

    def run(conv=conv, out=out, bias=bias):
        conv()
        out.add_(bias)
    return "exact", run, 0


def _meta(torch, v):
    return v.to("meta") if isinstance(v, torch.Tensor) else v


def _side(torch, meta, out, scratch: Scratch | None, stream: int, planned: Any = None):
    """Where a side result goes: ``(tensor, bytes outside the arena)``. Its planned view when it has one
    laid out as the kernel writes it (same dtype, shape, strides); else shared scratch when its layout is
    plain; else a tensor of its own."""
    if planned is not None and _same_layout(planned, meta) and planned.device == out.device:
        return _as_kernel_lays(planned, meta), 0
    if scratch is not None and meta.is_contiguous():
        return scratch.take(stream, tuple(meta.shape), meta.dtype), 0
    t = torch.empty_strided(meta.shape, meta.stride(), dtype=meta.dtype, device=out.device)
    if scratch is not None:
        scratch.keep(t)
    return t, t.nbytes


def _batch_norm(torch, named, out, scratch: Scratch | None = None, stream: int = 0,
                side: Mapping[str, Any] | None = None) -> Exact | None:
    x, rm, rv = named["input"], named.get("running_mean"), named.get("running_var")
    if named.get("training", True) or rm is None or rv is None:
        return None
    if x.numel() == 0:
        # CUDA's native_batch_norm.out views an empty input as [N, C, -1] (an error when C is 0) or divides
        # by zero on the host (SIGFPE, the process dies); eager's batch_norm returns the empty result early
        return None
    side = side or {}
    args = (x, named.get("weight"), named.get("bias"), rm, rv, False, float(named["momentum"]), float(named["eps"]))
    _o, m, s = torch.ops.aten.native_batch_norm.default(*(_meta(torch, a) for a in args))
    if out.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
        # the meta kernel gives f32 statistics (CUDA's); the CPU kernel keeps them in the running statistics'
        # dtype (the input's, or f32 for a mixed-type f16/bf16 input with f32 statistics, which eager runs) and
        # refuses others, so they cannot take the planned f32 slots there unless f32 (round 76: a mixed-type
        # eval batch norm failed "expected scalar type Float but found Half", the statistics made in the input's)
        m, s = m.to(rm.dtype), s.to(rm.dtype)
    # both at once: one shared buffer cannot hold two
    save_mean, b1 = _side(torch, m, out, None, stream, side.get("save_mean"))
    save_invstd, b2 = _side(torch, s, out, None, stream, side.get("save_invstd"))
    if scratch is not None:   # (its own, not the shared buffer: held for ``Executor._record_streams``)
        for t, own in ((save_mean, b1), (save_invstd, b2)):
            if own:
                scratch.keep(t)
    run = functools.partial(torch.ops.aten.native_batch_norm.out, *args, out=out, save_mean=save_mean,
                            save_invstd=save_invstd)
    return "exact", run, b1 + b2


def _max_pool2d(torch, named, out, scratch: Scratch | None = None, stream: int = 0,
                side: Mapping[str, Any] | None = None) -> Exact | None:
    x = named["self"]
    args = (x, list(named["kernel_size"]), list(named.get("stride") or []), list(named.get("padding", [0])),
            list(named.get("dilation", [1])), bool(named.get("ceil_mode", False)))
    _o, idx = torch.ops.aten.max_pool2d_with_indices.default(*(_meta(torch, a) for a in args))
    if not same_layout(_o, out):
        return None
    out = _as_kernel_lays(out, _o)
    indices, own = _side(torch, idx, out, scratch, stream, (side or {}).get("indices"))
    run = functools.partial(torch.ops.aten.max_pool2d_with_indices.out, *args, out=out, indices=indices)
    return "exact", run, own
