"""Who called a process-wide torch getter or method while ``forward`` was exported: the shared patch the read watches
put in place of it, and the place ("file.py:123") of a read by code outside torch, memplan and this runtime.

Why a module of its own: the default dtype's, the modes' and the layouts' watches (``default_dtype``,
``mode_reads``, ``layout_reads``) and the ``nn.Module.__setattr__`` watch (``module_writes``) patch one process-wide
object each, and must agree on two things: one wrapper for the process while any block runs in any thread (two
overlapping exports put back the real function, never each other's wrapper), and which frames are ``forward``'s
(not torch's decompositions, not Dynamo's generated guards, not the importer's own checks).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import memplan as memplan_pkg


class SharedPatch:
    """One attribute of a process-wide object (``torch.get_default_dtype``, ``nn.Module.__setattr__``) replaced by a
    recording wrapper while any block runs, in any thread, and put back by the last block to end; each thread's
    calls record into its own innermost block. Why one for the process: swapping it per block and putting back the
    function found left it wrapped for good when two exports overlapped (two threads compiling), and one thread's
    records landed in the other's export."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._users = 0
        self._real: Any = None

    def innermost(self) -> Any:
        """This thread's innermost block's record, or None outside every block."""
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else None

    @contextlib.contextmanager
    def block(self, owner: Any, name: str, wrap: Callable[[Any], Any], record: Any) -> Iterator[Any]:
        """``owner.name`` wrapped (``wrap(real)``) while any block runs; ``record`` is this block's."""
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        with self._lock:
            if self._users == 0:
                self._real = real = getattr(owner, name)
                setattr(owner, name, wrap(real))
            self._users += 1
        stack.append(record)
        try:
            yield record
        finally:
            stack.pop()
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    setattr(owner, name, self._real)


def recording(torch: Any, patch: SharedPatch, real: Any, entry: Callable[[tuple, dict, Any, str], Any]) -> Any:
    """``real`` (a torch getter) that also appends ``entry(args, kwargs, value, "file.py:123")`` to this thread's
    innermost ``patch`` block where code outside torch called it (``reader``): the default dtype's watch and the
    modes' are one wrapper."""
    def watched(*args: Any, **kwargs: Any) -> Any:
        value = real(*args, **kwargs)
        reads = patch.innermost()
        if reads is not None:
            where = reader(torch, sys._getframe(1))
            if where is not None:
                reads.append(entry(args, kwargs, value, where))
        return value

    return watched


class MethodPatch(SharedPatch):
    """A ``SharedPatch`` of a method that ``owner`` inherits (``torch.Tensor.stride``, from ``torch._C.TensorBase``):
    the last block takes its wrapper away again rather than setting the inherited method on ``owner`` itself."""

    @contextlib.contextmanager
    def block(self, owner: Any, name: str, wrap: Callable[[Any], Any], record: Any) -> Iterator[Any]:
        own = name in vars(owner)
        try:
            with super().block(owner, name, wrap, record) as out:
                yield out
        finally:
            with self._lock:
                if self._users == 0 and not own and name in vars(owner):
                    delattr(owner, name)


#: memplan's and the runtime's own source folders: their reads of the default dtype (the torch importer checks each
#: recorded result under the trace's default) happen while ``forward`` is exported, but are not ``forward``'s
_OWN_CODE = tuple(os.path.join(d, "") for d in (os.path.dirname(os.path.abspath(memplan_pkg.__file__)),
                                                 os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _dynamo_generated(frame: Any) -> bool:
    """Whether ``frame`` runs code Dynamo generated and called itself (its guards, compiled from a string: file
    ``<string>``, no module name), which reads every guarded tensor's ``stride()``. Why: ``torch.cond`` in ``forward``
    runs Dynamo over its branches during the export, and those reads were taken for ``forward``'s at ``<string>:9``,
    so a call whose input differed from the export's in any stride was refused though ``forward`` read none (round
    51: found by the fuzzer once a ``stride()`` read counted size-1 dimensions too)."""
    caller = frame.f_back
    return (frame.f_code.co_filename.startswith("<") and caller is not None
            and str(caller.f_globals.get("__name__", "")).startswith("torch._dynamo"))


def reader(torch: Any, frame: Any) -> str | None:
    """"file.py:123" of the code outside torch that called ``torch.get_default_dtype()`` from ``frame`` (None for
    torch's own calls). Under strict export Dynamo calls it for the code it traces (``assume_constant_result``): that
    code's place is its instruction translator's (``tx``), or unknown ("forward, traced by Dynamo")."""
    module = str(frame.f_globals.get("__name__", ""))
    if module != "torch" and not module.startswith("torch."):
        if os.path.abspath(frame.f_code.co_filename).startswith(_OWN_CODE):
            return None   # (the importer's own record check reads it, beside forward, not in it)
        if _dynamo_generated(frame):
            return None
        return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
    if frame.f_code.co_name != "invoke_and_store_as_constant":
        return None
    code = getattr(frame.f_locals.get("tx"), "f_code", None)
    filename = getattr(code, "co_filename", None)
    if filename is None:
        return "forward, traced by Dynamo"
    if filename.startswith(os.path.dirname(torch.__file__)):
        return None
    return f"{os.path.basename(filename)}:{getattr(frame.f_locals.get('tx'), 'lineno', '?')}"
