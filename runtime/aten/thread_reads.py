"""The value reads of the threads ``forward`` hands work to while it is exported: a ``threading.Thread`` it starts,
a ``concurrent.futures.ThreadPoolExecutor`` it submits to (one it made or one made before).

Why: ``value_reads`` watches ``T.item()``, ``bool(T)``... with a ``TorchFunctionMode`` of the exporting thread, and
torch's mode stack is per thread: ``forward`` reading ``T.item()`` in a thread it started and joined was no read
the watch saw, so ``T.mul_(1.5)`` after compile ran the export's numbers silently (round 66). While any export
watches (``value_reads._disable_seen``), ``Thread.start`` and ``ThreadPoolExecutor.submit`` are wrapped: called
from a watching thread, the new thread's ``run`` (the submitted function) runs under a mode of its own that records
into the same reads; called from any other thread they do what torch's and Python's do, one check more.

Not seen (docs/aten.md): work handed to a thread that already runs and was not started by ``forward`` through
another channel than ``submit`` (a queue, ``multiprocessing.pool.ThreadPool`` made before compile,
``_thread.start_new_thread``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: the functions wrapped while any export watches: (owner, name) -> the original
_ORIGINALS: dict[tuple[type, str], Any] = {}


def carry_on(torch: Any) -> None:
    """Wrap ``Thread.start`` and ``ThreadPoolExecutor.submit`` (called under ``value_reads``' lock, at the first
    watching block's start)."""
    from concurrent.futures import ThreadPoolExecutor

    for owner, name, wrap in ((threading.Thread, "start", _start), (ThreadPoolExecutor, "submit", _submit)):
        if (owner, name) not in _ORIGINALS:
            real = owner.__dict__[name]
            _ORIGINALS[(owner, name)] = real
            setattr(owner, name, functools.wraps(real)(wrap(torch, real)))


def carry_off() -> None:
    """Put back what ``carry_on`` wrapped (under ``value_reads``' lock, at the last watching block's end)."""
    for (owner, name), real in list(_ORIGINALS.items()):
        setattr(owner, name, real)
        del _ORIGINALS[(owner, name)]


def _watching() -> Any:
    """The innermost value-read mode of the calling thread (None: it watches nothing)."""
    from .value_reads import _active

    active = _active()
    return active[-1] if active else None


def _start(torch: Any, real: Callable) -> Callable:
    def start(self: threading.Thread) -> Any:
        mode = _watching()
        if mode is not None and not _pool_worker(self):   # (a pool's worker: its submitted functions carry it)
            run = self.run
            self.run = lambda: _under(torch, mode, run)   # type: ignore[method-assign]
        return real(self)
    return start


def _submit(torch: Any, real: Callable) -> Callable:
    def submit(self: Any, fn: Callable, /, *args: Any, **kwargs: Any) -> Any:
        mode = _watching()
        if mode is not None:
            inner = fn
            fn = functools.wraps(inner)(lambda *a, **k: _under(torch, mode, lambda: inner(*a, **k)))
        return real(self, fn, *args, **kwargs)
    return submit


def _pool_worker(thread: threading.Thread) -> bool:
    """Whether ``thread`` is a ``ThreadPoolExecutor``'s worker (it outlives the export; its calls are carried)."""
    from concurrent.futures import thread as futures_thread

    return getattr(thread, "_target", None) is getattr(futures_thread, "_worker", ())


def _under(torch: Any, mode: Any, call: Callable[[], Any]) -> Any:
    """``call()`` in this (another) thread under a value-read mode recording into ``mode``'s reads."""
    with _carried(torch, mode):
        return call()


@contextlib.contextmanager
def _carried(torch: Any, mode: Any) -> Iterator[None]:
    from .value_reads import _active, _take_off

    child = _child_class(torch)(torch, mode.reads)
    active = _active()
    try:
        active.append(child)
        torch._C._push_on_torch_function_stack(child)
        yield
    finally:
        _take_off(torch, child)
        while child in active:
            active.remove(child)


#: how many tensors a carried thread's mode follows back to the tensors they were computed from
_DERIVED = 4096
_CHILD_CLASS: Any = None


def _child_class(torch: Any) -> type:
    """The value-read mode of a thread ``forward`` started: it also follows each tensor the thread computes back to
    the real tensors it was computed from (``bool(T > 1)`` reads ``T``'s values). Why: in the exporting thread such
    an op is traced (a stand-in: torch's refusal of the branch, ``value_reads.branch_refused``); in another thread
    it runs on the real values, and the read of its result named only a temporary no watch holds."""
    global _CHILD_CLASS
    if _CHILD_CLASS is None:
        import weakref

        from .value_reads import _compiling, _mode_class, _real

        base = _mode_class(torch)
        compiling = _compiling(torch)

        class CarriedReads(base):  # type: ignore[misc, valid-type]
            def __init__(self, torch: Any, reads: dict[int, str]) -> None:
                super().__init__(torch, reads)
                self.derived: dict[int, tuple[Any, list[Any]]] = {}   # id -> (weak ref, the real tensors it is of)

            def roots(self, t: Any) -> list[Any] | None:
                entry = self.derived.get(id(t))
                return entry[1] if entry is not None and entry[0]() is t else None

            def record(self, t: Any) -> None:
                roots = self.roots(t)
                for r in [t] if roots is None else roots:
                    base.record(self, r)

            def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
                if compiling():   # (``value_reads._compiling``: Dynamo tracing a higher-order op's body)
                    return func(*args, **(kwargs or {}))
                out = super().__torch_function__(func, types, args, kwargs)
                if isinstance(out, torch.Tensor) and len(self.derived) < _DERIVED and out is not (
                        args[0] if args else None):
                    found: list[Any] = []
                    for a in (*args, *(kwargs or {}).values()):
                        for x in a if isinstance(a, (list, tuple)) else (a,):
                            if isinstance(x, torch.Tensor) and _real(torch, x):
                                roots = self.roots(x)
                                found += [x] if roots is None else roots
                    with contextlib.suppress(TypeError):   # (a tensor subclass refusing weak references)
                        self.derived[id(out)] = (weakref.ref(out), list({id(r): r for r in found}.values()))
                return out

        _CHILD_CLASS = CarriedReads
    return _CHILD_CLASS
