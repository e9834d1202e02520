"""The caller's grad, inference and autocast modes that ``forward`` read while it was exported, and the check of each
call against them.

Why: a call runs under ``no_grad`` whatever the caller's mode (inference only), and its outputs are made in the
caller's mode, as eager's. Where ``forward`` read the mode itself while it was exported (``torch.is_grad_enabled()``,
``torch.is_inference_mode_enabled()``, ``torch.is_autocast_enabled()``: the branch it took is fixed in the program),
a call under which the read gives another value is refused, naming it (``mode_reads_changed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .torch_reads import SharedPatch, recording

#: the caller's modes ``forward`` may branch on, each watched while it is exported (``watch_mode_reads``)
MODE_GETTERS = ("is_grad_enabled", "is_inference_mode_enabled", "is_autocast_enabled")
_MODE_READS = {name: SharedPatch() for name in MODE_GETTERS}


@contextlib.contextmanager
def watch_mode_reads(torch: Any) -> Iterator[list[tuple[str, tuple, Any, str]]]:
    """(getter, its arguments (positional, keyword items), the value it gave, "file.py:123") for each call of ``torch.is_grad_enabled()``,
    ``torch.is_inference_mode_enabled()`` or ``torch.is_autocast_enabled(...)`` by code outside torch inside the
    block (an export: ``forward``'s reads), in this thread.

    Why: export runs ``forward``'s Python once, so ``if torch.is_grad_enabled(): y = y * 2`` fixes the branch of
    the compile's mode in the program, where eager takes the branch of each call's; the executor refuses a call
    under which such a read gives another value (``mode_reads_changed``). A mode no read was recorded of is not
    watched: a module that does not branch on it runs under any. Each getter is patched as
    ``watch_default_dtype_reads`` patches ``torch.get_default_dtype`` (``SharedPatch``)."""
    reads: list[tuple[str, tuple, Any, str]] = []   # (one list for the three getters' blocks)
    with contextlib.ExitStack() as stack:
        for name in MODE_GETTERS:
            if hasattr(torch, name):
                stack.enter_context(_MODE_READS[name].block(torch, name, _mode_watched(torch, name), reads))
        yield reads


def _mode_watched(torch: Any, name: str) -> Callable[[Any], Any]:
    """The wrapper ``watch_mode_reads`` puts in place of ``torch.<name>``: each read as (getter, its arguments, the
    value it gave, where)."""
    return lambda real: recording(torch, _MODE_READS[name], real,
                                   lambda args, kwargs, value, where: (name, (args, tuple(kwargs.items())), value, where))


def mode_reads_changed(torch: Any, reads: tuple[tuple[str, tuple, Any, str], ...]) -> str | None:
    """Why a call now meets another mode than a read of ``reads`` (``Program.mode_reads``) gave at the export
    ("forward read torch.is_grad_enabled() at m.py:12 while it was exported (True), it is False now"), or None where
    every one gives its value again (nothing to do for a program without such reads: the common case)."""
    for name, (args, kwargs), value, where in reads:
        now = getattr(torch, name)(*args, **dict(kwargs))
        if now != value:
            shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs)])
            return (f"forward read torch.{name}({shown}) at {where} while it was exported ({value!r}), it is "
                    f"{now!r} now")
    return None
