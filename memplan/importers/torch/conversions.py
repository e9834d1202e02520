"""Module conversions that change nothing (``Module.to`` a module's own dtype and device), kept from failing
torch.export.

Why a module of its own: ``nn.Module._apply`` (behind ``.to()``, ``.float()``, ``.half()``, ``.cpu()``...) swaps each
parameter for its converted self with ``torch.utils.swap_tensors`` when the parameter is a fake tensor, as every
parameter is while torch.export traces; swapping a parameter with itself fails ("_apply(): Couldn't swap
Linear.weight"). A ``forward`` that converts a submodule to the dtype it has at every call (NLLB-MoE's router:
``self.classifier = self.classifier.to(self.dtype)``, float32 to float32) was refused for a call that eager runs as
a no-op. Only a conversion under which every tensor of the module comes back as itself is skipped; any other is
torch's, and refused as before (the program cannot hold a conversion of the weights).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from ..._forklocks import fork_safe

_LOCK = fork_safe(threading.Lock())
_STATE: dict[str, Any] = {"depth": 0, "original": None, "threads": {}}


def _changes_nothing(torch: Any, module: Any, fn: Any, recurse: bool) -> bool:
    """Whether ``fn`` returns every parameter, gradient and buffer of ``module`` (its tree's, if ``recurse``) as that
    very tensor: then ``_apply(fn)`` leaves the module as it was (eager's own ``_apply`` sets ``param.data`` to the
    parameter itself). Why the very object and not an equal one: a copy is a conversion the program would have to
    hold, which it cannot."""
    with torch.no_grad():
        for p in module.parameters(recurse=recurse):
            if fn(p) is not p or (p.grad is not None and fn(p.grad) is not p.grad):
                return False
        return all(fn(b) is b for b in module.buffers(recurse=recurse))


@contextlib.contextmanager
def unchanged_conversions_kept(torch: Any) -> Iterator[None]:
    """Within: ``nn.Module._apply(fn)`` returns the module untouched where ``fn`` changes none of its tensors
    (``_changes_nothing``), else runs as torch's. Meant around ``torch.export.export``; nested and concurrent uses
    share one patch, put back when the last one leaves. Only the threads inside take the check: another thread's
    eager conversion meanwhile (``model.to("cuda")``) runs torch's own, converting no tensor twice."""
    module_cls = torch.nn.Module
    me = threading.get_ident()
    with _LOCK:
        if _STATE["depth"] == 0:
            original = module_cls._apply

            def _apply(self: Any, fn: Any, recurse: bool = True) -> Any:
                if threading.get_ident() in _STATE["threads"] and _changes_nothing(torch, self, fn, recurse):
                    return self
                return original(self, fn, recurse)

            _STATE["original"] = original
            _STATE["cls"] = module_cls   # (while patched: what a forked child puts back)
            module_cls._apply = _apply
        _STATE["depth"] += 1
        _STATE["threads"][me] = _STATE["threads"].get(me, 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["threads"][me] -= 1
            if not _STATE["threads"][me]:
                del _STATE["threads"][me]
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                module_cls._apply = _STATE["original"]
                _STATE["original"] = None
                _STATE.pop("cls", None)


def _after_fork_in_child() -> None:
    """In a forked child: the uses of threads other than the forking one ended (only it lives on there, so theirs
    never leave), and ``nn.Module._apply`` torch's own again where none of its own is left. Why: a worker forked
    while another thread exported kept the patch for good, that thread's id among those that take the check, and a
    thread the child starts later may get that very id (round 76 review)."""
    me = threading.get_ident()
    threads = _STATE["threads"]
    for owner in [t for t in threads if t != me]:
        _STATE["depth"] -= threads.pop(owner)
    if _STATE["depth"] <= 0 and _STATE["original"] is not None:
        _STATE["depth"] = 0
        with contextlib.suppress(Exception):   # (a handler that raised would print in every child)
            _STATE["cls"]._apply = _STATE["original"]
        _STATE["original"] = None
        _STATE.pop("cls", None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
