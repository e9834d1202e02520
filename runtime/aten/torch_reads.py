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
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import memplan as memplan_pkg


class _Stacks(threading.local):
    """Each thread's block stack (None in a thread that never entered one). Why the class default: a
    ``getattr(local, "stack", None)`` of a thread without one raises and catches an ``AttributeError`` inside, some
    1 us, on every call of every other thread through a wrapper (4x ``Tensor.stride`` itself, round 65c)."""

    stack: list | None = None


#: what ``SharedPatch`` found for an attribute the owner did not hold itself (an inherited method)
_INHERITED = object()


class SharedPatch:
    """One attribute of a process-wide object (``torch.get_default_dtype``, ``nn.Module.__setattr__``,
    ``torch.Tensor.stride``) replaced by a recording wrapper while any block runs, in any thread, and put back exactly
    as it was (the owner's own value, or none where it inherited the attribute) when the last block ends; each
    thread's calls record into its own innermost block. Why one for the process: swapping it per block and putting
    back the function found left it wrapped for good when two exports overlapped (two threads compiling), and one
    thread's records landed in the other's export.

    Why blocks are tokens in a set and the install is judged by what the owner holds, not a count: round 65 found two
    threads' overlapping blocks of a method (``Tensor.stride``) leaving the real method set on ``torch.Tensor`` itself
    for good (the second block took the first's wrapper for the class's own attribute, read outside the lock), and
    an interrupt between the install and the count (``KeyboardInterrupt``) could leave the wrapper with no block to
    take it away. Entering and leaving are each idempotent and redone where interrupted, so any interleaving of
    threads, any exception and a nested compile leave the attribute exactly as found."""

    def __init__(self) -> None:
        self._lock = threading.RLock()   # (an RLock: ``redone`` lets go of a hold an interrupt left)
        self._local = _Stacks()
        self._blocks: weakref.WeakSet[Any] = weakref.WeakSet()   # (a block cut short before it left: gone with it)
        self._wrapper: Any = None
        self._found: Any = _INHERITED   # the owner's own value before the install (``_INHERITED``: none)

    def innermost(self) -> Any:
        """This thread's innermost block's record, or None outside every block (every other thread: the wrappers
        pass their calls straight on)."""
        stack = self._local.stack
        while stack and stack[-1][0] not in self._blocks:   # (a block whose exit an interrupt cut short)
            stack.pop()
        return stack[-1][1] if stack else None

    def installed(self, owner: Any, name: str) -> bool:
        """Whether ``owner.name`` is this patch's wrapper now (tests; the install's own check)."""
        return self._wrapper is not None and vars(owner).get(name) is self._wrapper

    @contextlib.contextmanager
    def block(self, owner: Any, name: str, wrap: Callable[[Any], Any], record: Any) -> Iterator[Any]:
        """``owner.name`` wrapped (``wrap(real)``) while any block runs; ``record`` is this block's."""
        token = _Token()
        pushed = False
        try:
            redone(lambda: self._enter(token, owner, name, wrap), self._lock)
            stack = getattr(self._local, "stack", None)
            if stack is None:
                stack = self._local.stack = []
            pushed = True   # (before the append: ``_pop`` looks for it)
            stack.append((token, record))
            yield record
        finally:
            if pushed:
                redone(lambda: self._pop(token))
            redone(lambda: self._leave(token, owner, name), self._lock)

    def _enter(self, token: object, owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        with self._lock:
            self._blocks.add(token)
            if not self.installed(owner, name):
                self._found = vars(owner).get(name, _INHERITED)
                self._wrapper = wrap(getattr(owner, name))
                setattr(owner, name, self._wrapper)

    def _pop(self, token: Any) -> None:
        stack = self._local.stack
        if stack and stack[-1][0] is token:
            stack.pop()
        else:   # (a block left out of order: an interrupt between two blocks' exits)
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] is token:
                    del stack[k]
                    break

    def _leave(self, token: object, owner: Any, name: str) -> None:
        with self._lock:
            self._blocks.discard(token)
            if not self._blocks and self.installed(owner, name):
                if self._found is _INHERITED:
                    delattr(owner, name)
                else:
                    setattr(owner, name, self._found)
                # (another library's patch put over ours meanwhile: left in place, ours below it passes calls on)


class _Token:
    """One block's entry in a patch's blocks (a ``WeakSet``): a block whose exit an interrupt cut short before it took
    its token out drops it when its frame goes, so the next block to end still puts the attribute back."""

    __slots__ = ("__weakref__",)


def redone(step: Callable[[], None], lock: Any = None) -> None:
    """Run ``step`` (idempotent) to its end even where an interrupt (``KeyboardInterrupt``, ``SystemExit``) cuts it
    short, then raise the first such interrupt; every hold of ``lock`` (an ``RLock``) the interrupt left (between its
    acquire and the ``with``'s exit) is let go first. Why: a patch half put in place or half taken away is a patch
    left for good, and a lock left held hangs every later compile. (An interrupt at each try: given up after 100.)"""
    pending: BaseException | None = None
    for _ in range(100):
        try:
            step()
            break
        except (KeyboardInterrupt, SystemExit) as exc:
            while lock is not None and lock._is_owned():
                lock.release()
            if pending is None:
                pending = exc
    if pending is not None:
        raise pending


def passed_on(exc: BaseException) -> BaseException:
    """``exc`` without the wrapper's own frame at the head of its traceback, to be raised again with a bare
    ``raise``: another thread's failing call (``t.stride(5)``) shows the traceback it shows without the patch."""
    tb = exc.__traceback__
    if tb is not None:
        exc.__traceback__ = tb.tb_next
    return exc


def recording(torch: Any, patch: SharedPatch, real: Any, entry: Callable[[tuple, dict, Any, str], Any]) -> Any:
    """``real`` (a torch getter) that also appends ``entry(args, kwargs, value, "file.py:123")`` to this thread's
    innermost ``patch`` block where code outside torch called it (``reader``): the default dtype's watch and the
    modes' are one wrapper."""
    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            value = real(*args, **kwargs)
        except BaseException as exc:
            passed_on(exc)
            raise   # (bare: no frame of this wrapper added to the traceback)
        reads = patch.innermost()
        if reads is not None:
            where = reader(torch, sys._getframe(1))
            if where is not None:
                reads.append(entry(args, kwargs, value, where))
        return value

    return watched


class MethodPatch(SharedPatch):
    """A ``SharedPatch`` of a method that ``owner`` inherits (``torch.Tensor.stride``, from ``torch._C.TensorBase``):
    ``SharedPatch`` itself puts back what the owner held (nothing, here), so this is the same; kept as a name."""


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
