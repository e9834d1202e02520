"""The backend flags a call meets (TF32, cuDNN, reduced-precision reductions, deterministic algorithms, attention
backends, the float32 precisions of torch 2.9's API), read at every call and compared with the build's.

Why: the executor's kernels read them at every run as eager's do, but lowering reads some once
(``exact._cudnn_conv`` passes cuDNN's ``benchmark`` / ``deterministic`` / ``allow_tf32``; layout probes run kernels)
and a captured CUDA graph replays the kernels chosen at capture. A change since the build is followed by building the
executor again (``CompiledModule``); a bare ``Executor`` refuses the call (``changed_flag``). The reading is one
comparison of a tuple of C getters' values: it runs at every call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

#: torch's getters of the global switches that pick the kernels eager's ops run (or their precision), and the
#: setting a user changes for each; a getter this torch lacks is left out
FLAGS = {
    "_get_cublas_allow_tf32": "torch.backends.cuda.matmul.allow_tf32",
    "_get_float32_matmul_precision": "torch.set_float32_matmul_precision",
    "_get_cublas_allow_fp16_reduced_precision_reduction":
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction",
    "_get_cublas_allow_bf16_reduced_precision_reduction":
        "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction",
    "_get_cublas_allow_fp16_accumulation": "torch.backends.cuda.matmul.allow_fp16_accumulation",
    "_get_cpu_allow_fp16_reduced_precision_reduction": "torch.backends.cpu.allow_fp16_reduced_precision_reduction",
    "_get_cudnn_enabled": "torch.backends.cudnn.enabled",
    "_get_cudnn_benchmark": "torch.backends.cudnn.benchmark",
    "_get_cudnn_deterministic": "torch.backends.cudnn.deterministic",
    "_get_cudnn_allow_tf32": "torch.backends.cudnn.allow_tf32",
    "_get_onednn_allow_tf32": "torch.backends.mkldnn.allow_tf32",
    "_get_mkldnn_enabled": "torch.backends.mkldnn.enabled",
    "_get_mkldnn_deterministic": "torch.backends.mkldnn.deterministic",
    "_get_deterministic_algorithms": "torch.use_deterministic_algorithms",
    "_get_deterministic_algorithms_warn_only": "torch.use_deterministic_algorithms(warn_only=)",
    "_get_deterministic_fill_uninitialized_memory": "torch.utils.deterministic.fill_uninitialized_memory",
    "_get_flash_sdp_enabled": "torch.backends.cuda.enable_flash_sdp",
    "_get_mem_efficient_sdp_enabled": "torch.backends.cuda.enable_mem_efficient_sdp",
    "_get_math_sdp_enabled": "torch.backends.cuda.enable_math_sdp",
    "_get_cudnn_sdp_enabled": "torch.backends.cuda.enable_cudnn_sdp",
    "_get_fa3_sdp_enabled": "torch.backends.cuda.enable_fa3_sdp",
    "_get_math_sdp_allow_fp16_bf16_reduction": "torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp",
    "_get_sdp_priority_order": "torch.backends.cuda.set_sdp_priority_order",
}


def backend_flags(torch: Any) -> tuple[Any, ...]:
    """The value of every global switch in ``FLAGS`` this torch has (``flag_names`` says which), read through
    ``torch._C``'s getters: a list comprehension of C calls, ~2 us for all (``torch.backends``' properties took
    ~35 us, (name, value) pairs ~6 us): this runs at every call. Values compare by value (the SDP priority order
    is a list, equal to an equal list)."""
    return tuple([get() for get in _getters(torch)[1]])


def flag_names(torch: Any) -> tuple[str, ...]:
    """The settings ``backend_flags``' values are, in its order."""
    return _getters(torch)[0]


#: the legacy TF32 getters that raise once ``fp32_precision`` (torch 2.9's API) is set apart from them
LEGACY_TF32 = frozenset({"_get_cublas_allow_tf32", "_get_float32_matmul_precision", "_get_cudnn_allow_tf32",
                          "_get_onednn_allow_tf32"})


def _tolerant(torch: Any, get: Callable[[], Any]) -> Callable[[], Any]:
    """``get``, or where it raises (a user set ``torch.backends.cuda.matmul.fp32_precision = "tf32"``, torch's
    recommended API: the legacy getters then raise "mix of the legacy and new APIs", and every compile raised a
    raw RuntimeError) the new API's precisions: still a value that changes when the setting does."""
    def read() -> Any:
        try:
            return get()
        except RuntimeError:
            return ("fp32_precision", fp32_precisions(torch))   # (the settings watch's one reading of them)
    return read


@functools.cache
def _getters(torch: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    pairs = [(name, getattr(torch._C, getter) if getter not in LEGACY_TF32 else _tolerant(torch, getattr(torch._C, getter)))
             for getter, name in FLAGS.items() if hasattr(torch._C, getter)]
    return tuple(n for n, _ in pairs), tuple(g for _, g in pairs)


def changed_flag(torch: Any, built: tuple[Any, ...], now: tuple[Any, ...]) -> str | None:
    """The first flag whose value differs, as "name was X at the build, is Y now"; None where none does (one tuple
    comparison: the common case, at every call)."""
    if built == now:
        return None
    for name, old, new in zip(flag_names(torch), built, now):
        if old != new:
            return f"{name} was {old!r} when the executor was built and is {new!r} now"
    return None


#: ``_settings_table``'s row of the float32 precisions (TF32, oneDNN's bf16), old API and new
FP32_PRECISION = ("the float32 precision (torch.backends.*.fp32_precision, torch.backends.cuda.matmul.allow_tf32, "
                  "torch.backends.cudnn.allow_tf32, torch.set_float32_matmul_precision)")
#: (backend, op) of each ``fp32_precision`` of torch 2.9's API and the setting a user writes for it, the backends'
#: "all" first: ``put_fp32_precisions`` sets them in this order, an op's own after the one it inherits
_FP32_PRECISIONS = (
    (("generic", "all"), "torch.backends.fp32_precision"),
    (("cuda", "all"), "torch.backends.cudnn.fp32_precision"),
    (("mkldnn", "all"), "torch.backends.mkldnn.fp32_precision"),
    (("cuda", "matmul"), "torch.backends.cuda.matmul.fp32_precision"),
    (("cuda", "conv"), "torch.backends.cudnn.conv.fp32_precision"),
    (("cuda", "rnn"), "torch.backends.cudnn.rnn.fp32_precision"),
    (("mkldnn", "matmul"), "torch.backends.mkldnn.matmul.fp32_precision"),
    (("mkldnn", "conv"), "torch.backends.mkldnn.conv.fp32_precision"),
    (("mkldnn", "rnn"), "torch.backends.mkldnn.rnn.fp32_precision"),
)
#: the legacy getters over the same state (first in ``fp32_precisions``: what a legacy write is named by); the last
#: two also read a value of their own (``allow_tf32_cudnn``, the ``float32_matmul_precision`` enum), which only
#: their setters write
FP32_LEGACY = (("_get_cublas_allow_tf32", "torch.backends.cuda.matmul.allow_tf32"),
                ("_get_cudnn_allow_tf32", "torch.backends.cudnn.allow_tf32"),
                ("_get_float32_matmul_precision", "torch.get_float32_matmul_precision"))
#: what ``fp32_precisions`` reads of a legacy getter that raises (a mix of the two APIs)
MIXED = "mixed (the legacy getter raises)"


def fp32_precisions(torch: Any) -> tuple[tuple[str, Any], ...]:
    """(setting, value) of every float32 precision, new API and legacy, the legacy one ``MIXED`` where its getter
    raises. Why one value: torch keeps one state under both APIs (``allow_tf32 = True`` sets ``matmul.fp32_precision``
    to "tf32"; ``matmul.fp32_precision = "tf32"`` makes the legacy getters raise), so a row per getter skipped every
    raising one: ``torch.backends.cuda.matmul.fp32_precision = "tf32"`` in ``forward`` compiled and stayed set, and a
    legacy write under a new-API setting was not put back (session 41)."""
    c = torch._C
    out: list[tuple[str, Any]] = []
    for getter, name in FP32_LEGACY:
        try:
            out.append((name, getattr(c, getter)()))
        except RuntimeError:
            out.append((name, MIXED))
    return (*out, *((name, c._get_fp32_precision_getter(*key)) for key, name in _FP32_PRECISIONS))


def put_fp32_precisions(torch: Any, saved: tuple[tuple[str, Any], ...]) -> None:
    """Make ``fp32_precisions`` read ``saved`` again. torch's own values behind the legacy getters (the matmul
    precision enum, cuDNN's ``allow_tf32``) are set first through their setters, which write some precisions too,
    then every precision of the new API is set as it read. Where a legacy getter read ``MIXED`` its own value is
    unknown: each value it may hold is tried until every getter reads as saved (at most six tries, at a refusal
    only)."""
    import itertools

    c, values = torch._C, dict(saved)
    matmul = values.get("torch.get_float32_matmul_precision", MIXED)
    cudnn = values.get("torch.backends.cudnn.allow_tf32", MIXED)
    for mm, dnn in itertools.product([matmul] if matmul != MIXED else ["highest", "high", "medium"],
                                     [cudnn] if cudnn != MIXED else [True, False]):
        c._set_float32_matmul_precision(mm)
        c._set_cudnn_allow_tf32(dnn)
        for key, name in _FP32_PRECISIONS:
            if name in values:
                c._set_fp32_precision_setter(*key, values[name])
        if fp32_precisions(torch) == tuple(saved):
            return


def set_flag(torch: Any, name: str, value: Any) -> None:
    """Set backend flag ``name`` (a ``flag_names`` entry) to ``value`` through torch's C setter of its getter."""
    getter = next(g for g, n in FLAGS.items() if n == name)
    if getter == "_get_deterministic_algorithms":
        torch._C._set_deterministic_algorithms(value, warn_only=torch._C._get_deterministic_algorithms_warn_only())
    elif getter == "_get_deterministic_algorithms_warn_only":
        torch._C._set_deterministic_algorithms(torch._C._get_deterministic_algorithms(), warn_only=value)
    elif getter in SDP_SETTERS:
        getattr(torch._C, SDP_SETTERS[getter])(value)
    elif isinstance(value, tuple):   # (cuBLAS' fp16 / bf16 reduced-precision reductions: (allowed, split-K),
        getattr(torch._C, "_set" + getter.removeprefix("_get"))(*value)   # its setter takes them apart: session 41)
    elif value is not None:   # (oneDNN's TF32 reads None until set; its setter takes a bool alone)
        getattr(torch._C, "_set" + getter.removeprefix("_get"))(value)


#: the setters of the flags whose name is not their getter's with ``_set``
SDP_SETTERS = {"_get_flash_sdp_enabled": "_set_sdp_use_flash", "_get_mem_efficient_sdp_enabled":
                "_set_sdp_use_mem_efficient", "_get_math_sdp_enabled": "_set_sdp_use_math",
                "_get_cudnn_sdp_enabled": "_set_sdp_use_cudnn", "_get_fa3_sdp_enabled": "_set_sdp_use_fa3"}
