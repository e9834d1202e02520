"""The process-wide torch settings a ``forward`` may change and leave changed for its caller (the default dtype and
device, grad mode, deterministic algorithms, the float32 precisions, the backend flags, the CPU thread count, NNPACK,
``opt_einsum``), read before and after an export and put back after it.

Why: eager's call leaves such a change for the rest of the process; a compiled call runs no Python, so a program
whose ``forward`` makes one is refused (``sets.check_process_settings``), and compile, which is no call, must not
leave the export's change behind (a ``torch.set_default_dtype(torch.float64)`` in ``forward`` left the process in
float64 after compile).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .backend_flags import (
    FLAGS,
    FP32_LEGACY,
    FP32_PRECISION,
    LEGACY_TF32,
    MIXED,
    SDP_SETTERS,
    fp32_precisions,
    put_fp32_precisions,
    set_flag,
)

#: the backend flags ``_settings_table`` names in words (review 40c), by their ``torch._C`` getter (setter: ``_set...``)
_LABELLED_FLAGS = {
    "_get_cudnn_enabled": "cuDNN (torch.backends.cudnn.enabled)",
    "_get_cudnn_benchmark": "cuDNN benchmark mode (torch.backends.cudnn.benchmark)",
    "_get_cudnn_deterministic": "cuDNN determinism (torch.backends.cudnn.deterministic)",
    "_get_cudnn_allow_tf32": "TF32 in cuDNN (torch.backends.cudnn.allow_tf32)",
    "_get_cublas_allow_tf32": "TF32 in cuBLAS matmuls (torch.backends.cuda.matmul.allow_tf32)",
}


def _settings_table(torch: Any) -> list[tuple[str, Callable[[], Any], Callable[[Any], None]]]:
    """(what, get, set) of each process-wide torch setting ``process_settings`` watches: what eager's ``forward``
    leaves changed for the rest of the process (the dtype and device of later tensors, later calls' numerics,
    determinism). Read through torch's C getters: the Python ones are watched during an export
    (``watch_default_dtype_reads``, ``watch_mode_reads``), and this is no read of ``forward``'s. Review 40c: the
    deterministic-algorithms switch, the float32 matmul precision and the cuDNN / TF32 flags were unwatched (a
    ``forward`` calling ``torch.use_deterministic_algorithms(True)`` compiled, and compile left it on)."""
    c = torch._C
    table = [
        ("the default dtype (torch.set_default_dtype)", c.get_default_dtype, torch.set_default_dtype),
        ("grad mode (torch.set_grad_enabled)", c.is_grad_enabled, torch.set_grad_enabled),
        ("deterministic algorithms (torch.use_deterministic_algorithms)",
         lambda: (c._get_deterministic_algorithms(), c._get_deterministic_algorithms_warn_only()),
         lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1])),
    ]
    if hasattr(getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None), "__dict__") and callable(
            getattr(torch, "set_default_device", None)):
        table.append((DEFAULT_DEVICE, functools.partial(_default_device, torch), torch.set_default_device))
    if callable(getattr(c, "_get_fp32_precision_getter", None)):   # (torch 2.9's API: one state under both APIs)
        table.append((FP32_PRECISION, functools.partial(fp32_precisions, torch),
                      functools.partial(put_fp32_precisions, torch)))
        labelled = {g: label for g, label in _LABELLED_FLAGS.items() if g not in LEGACY_TF32}
        covered = {"_get_deterministic_algorithms", "_get_deterministic_algorithms_warn_only",
                   *(getter for getter, _name in FP32_LEGACY)}
    else:
        table.append(("the float32 matmul precision (torch.set_float32_matmul_precision)",
                      c._get_float32_matmul_precision, torch.set_float32_matmul_precision))
        labelled = dict(_LABELLED_FLAGS)
        covered = {"_get_deterministic_algorithms", "_get_deterministic_algorithms_warn_only",
                   "_get_float32_matmul_precision"}
    table += [(label, getattr(c, getter), getattr(c, "_set" + getter.removeprefix("_get")))
              for getter, label in labelled.items()]
    table += _cpu_rows(torch)
    covered |= set(_LABELLED_FLAGS)   # (the rows above)
    for getter, name in FLAGS.items():   # (session 40b: the other kernel switches, ``matmul.allow_fp16_...``)
        setter = SDP_SETTERS.get(getter, "_set" + getter.removeprefix("_get"))
        if getter not in covered and hasattr(c, getter) and hasattr(c, setter):
            table.append((name, getattr(c, getter), functools.partial(set_flag, torch, name)))
    return [(what, get, put) for what, get, put in table if callable(get) and callable(put)]


def _cpu_rows(torch: Any) -> list[tuple[str, Callable[[], Any], Callable[[Any], None]]]:
    """The settings that pick how eager's CPU kernels compute, beside ``FLAGS`` (read at compile and at a refusal
    only, not at every call): the intra-op thread count (a reduction's order), NNPACK (a convolution's kernel) and
    ``opt_einsum`` (an einsum's contraction order). Session 41: ``torch.set_num_threads(1)``,
    ``torch.backends.nnpack.set_flags(False)`` or ``torch.backends.opt_einsum.enabled = False`` in ``forward``
    compiled, and compile left the process so."""
    c, rows = torch._C, []
    if callable(getattr(torch, "get_num_threads", None)):
        rows.append(("the number of CPU threads (torch.set_num_threads)", torch.get_num_threads, torch.set_num_threads))
    if callable(getattr(c, "_get_nnpack_enabled", None)) and callable(getattr(c, "_set_nnpack_enabled", None)):
        rows.append(("torch.backends.nnpack.enabled", c._get_nnpack_enabled, c._set_nnpack_enabled))
    einsum = getattr(torch.backends, "opt_einsum", None)
    for name in ("enabled", "strategy"):
        if einsum is not None and hasattr(einsum, name):
            rows.append((f"torch.backends.opt_einsum.{name}", functools.partial(getattr, einsum, name),
                         functools.partial(setattr, einsum, name)))
    return rows


#: ``_settings_table``'s row of the default device
DEFAULT_DEVICE = "the default device (torch.set_default_device)"


def _default_device(torch: Any) -> Any:
    """The device ``torch.set_default_device`` set (None where none is: the CPU), read from torch's own record of it
    and not ``torch.get_default_device()``, which a ``with torch.device(...)`` block inside ``forward`` answers too.
    Why watched (session 41): a ``forward`` calling ``torch.set_default_device("meta")`` compiled, and compile left
    the process's later tensors on that device; eager's call leaves it so, a compiled call does not."""
    context = getattr(torch._GLOBAL_DEVICE_CONTEXT, "device_context", None)
    return getattr(context, "device", None)


def setting_change(what: str, before: Any, after: Any) -> str:
    """``what`` changed from ``before`` to ``after`` in words: of the float32 precisions only the entries that changed
    (``torch.backends.cuda.matmul.fp32_precision from 'none' to 'tf32'``), an unset default device as the CPU."""
    if what == FP32_PRECISION and isinstance(before, tuple) and isinstance(after, tuple):
        old = dict(before)
        def shown(v: Any) -> str:
            return v if v == MIXED else repr(v)
        return ", ".join(f"{name} from {shown(old.get(name, MIXED))} to {shown(value)}" for name, value in after
                         if old.get(name, MIXED) != value) or what
    if what == DEFAULT_DEVICE:
        before, after = (v if v is not None else "none set (the CPU)" for v in (before, after))
    return f"{what} from {before} to {after}"


def process_settings(torch: Any) -> list[tuple[str, Any]]:
    """The process-wide torch settings a ``forward`` may change and leave changed for the caller (``_settings_table``),
    as (what, value): eager's call leaves them so, a compiled call runs no Python (``sets.check_process_settings``)."""
    out = []
    for what, get, _put in _settings_table(torch):
        try:
            out.append((what, get()))
        except (AttributeError, RuntimeError):   # (a getter this torch build lacks)
            continue
    return out


def restore_process_settings(torch: Any, saved: list[tuple[str, Any]]) -> None:
    """Put back what ``process_settings`` saw before an export: compile runs no call (a ``forward`` calling
    ``torch.set_default_dtype(torch.float64)`` left the process in float64 after compile; one setting
    ``torch.backends.cudnn.benchmark = True`` left it on)."""
    now, puts = dict(process_settings(torch)), {what: put for what, _get, put in _settings_table(torch)}
    for what, value in saved:
        if what in now and now[what] != value:
            puts[what](value)
