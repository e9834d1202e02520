"""The value reads of the threads ``forward`` hands work to while it is exported: a ``threading.Thread`` it starts,
a ``concurrent.futures.ThreadPoolExecutor`` it submits to (one it made or one made before), a
``multiprocessing.pool.ThreadPool`` (made before or not), ``_thread.start_new_thread``, and a ``queue.Queue`` served
by a thread that already runs.

Why: ``value_reads`` watches ``T.item()``, ``bool(T)``... with a ``TorchFunctionMode`` of the exporting thread, and
torch's mode stack is per thread: ``forward`` reading ``T.item()`` in a thread it started and joined was no read
the watch saw, so ``T.mul_(1.5)`` after compile ran the export's numbers silently (round 66; round 67 for the pool,
``_thread`` and the queue). While any export watches (``value_reads._disable_seen``), ``Thread.start``,
``ThreadPoolExecutor.submit``, ``ThreadPool``'s ``apply_async``/``map``/``imap``... (its callbacks too),
``_thread.start_new_thread`` and ``queue.Queue.put`` are wrapped: called from a watching thread, the function handed
over (a thread's ``run``, a task, a callable put into a queue, bare or first in a tuple) runs under a mode of its
own that records into the same reads, and a real tensor put into a queue (bare, in a tuple, list or dict, or the
owner of a bound method) counts as read (watched by its version: a thread that reads it reads it after the put).
Called from any other thread they do what torch's and Python's do, one check more.

Not seen (docs/aten.md): a thread that already runs reading a tensor forward did not hand it (a global it reads
when a plain value arrives), and the channels not wrapped: ``queue.SimpleQueue`` (a C type), a ``deque`` or a list
and an ``Event``, ``asyncio``'s ``call_soon_threadsafe``, a ``start_new_thread`` bound to another name before
compile: their reads are recorded by ``loose_reads``' getters on ``torch.Tensor`` instead (round 68).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

#: the functions wrapped while any export watches: (owner, name) -> the original
_ORIGINALS: dict[tuple[type, str], Any] = {}


#: ``multiprocessing.pool.Pool``'s methods taking the function its workers run first (``apply``, ``map``,
#: ``starmap`` and their ``_async`` forms go through ``apply_async`` and ``_map_async``)
_POOL_METHODS = ("apply_async", "_map_async", "imap", "imap_unordered")


def carry_on(torch: Any) -> None:
    """Wrap the channels the module doc names (called under ``value_reads``' lock, at the first watching block's
    start). ``ThreadPool``'s methods are set on ``ThreadPool`` itself (a process ``Pool`` pickles its tasks: left
    alone) and deleted again by ``carry_off``."""
    import _thread
    import queue
    from concurrent.futures import ThreadPoolExecutor
    from multiprocessing.pool import ThreadPool

    wraps: list[tuple[Any, str, Callable]] = [(threading.Thread, "start", _start), (ThreadPoolExecutor, "submit", _submit),
                                              (_thread, "start_new_thread", _new_thread), (queue.Queue, "put", _put)]
    wraps += [(_thread, "start_new", _new_thread)] if hasattr(_thread, "start_new") else []
    wraps += [(ThreadPool, name, _pool_task) for name in _POOL_METHODS if hasattr(ThreadPool, name)]
    for owner, name, wrap in wraps:
        if (owner, name) not in _ORIGINALS:
            own = owner.__dict__.get(name, _INHERITED)
            real = getattr(owner, name)
            _ORIGINALS[(owner, name)] = own
            setattr(owner, name, functools.wraps(real)(wrap(torch, real)))


def carry_off() -> None:
    """Put back what ``carry_on`` wrapped (under ``value_reads``' lock, at the last watching block's end)."""
    for (owner, name), real in list(_ORIGINALS.items()):
        if real is _INHERITED:
            delattr(owner, name)
        else:
            setattr(owner, name, real)
        del _ORIGINALS[(owner, name)]


#: ``_ORIGINALS``' mark of a method the class inherited (deleted again, not set)
_INHERITED = object()


def _watching() -> Any:
    """The innermost value-read mode of the calling thread (None: it watches nothing)."""
    from .value_modes import _active

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


def _carrying(torch: Any, mode: Any, fn: Callable) -> Callable:
    """``fn`` run under a mode recording into ``mode``'s reads in whichever thread calls it."""
    return functools.wraps(fn)(lambda *a, **k: _under(torch, mode, lambda: fn(*a, **k)))


def _new_thread(torch: Any, real: Callable) -> Callable:
    def start_new_thread(function: Callable, args: tuple, kwargs: Any = None, /) -> Any:
        mode = _watching()
        if mode is not None and callable(function):
            function = _carrying(torch, mode, function)
        return real(function, args) if kwargs is None else real(function, args, kwargs)
    return start_new_thread


def _pool_task(torch: Any, real: Callable) -> Callable:
    def method(self: Any, func: Callable, *args: Any, **kwargs: Any) -> Any:
        mode = _watching()
        if mode is not None:
            func = _carrying(torch, mode, func) if callable(func) else func
            for key in ("callback", "error_callback"):   # (run in the pool's result thread)
                if callable(kwargs.get(key)):
                    kwargs[key] = _carrying(torch, mode, kwargs[key])
        return real(self, func, *args, **kwargs)
    return method


def _put(torch: Any, real: Callable) -> Callable:
    def put(self: Any, item: Any, block: bool = True, timeout: Any = None) -> Any:
        mode = _watching()
        if mode is not None:
            item = _handed(torch, mode, item)
        return real(self, item, block, timeout)
    return put


#: the kinds of callable a queue's item is wrapped as (a class, a tensor's bound method are not: see ``_handed``)
_FUNCTIONS = (types.FunctionType, types.MethodType, functools.partial)


def _handed(torch: Any, mode: Any, item: Any) -> Any:
    """``item`` put into a queue by a watching thread, its function (bare, or first in a tuple) carrying ``mode``;
    each real tensor in it (bare, in a tuple, list or dict, or the owner of a bound method: ``q.put(T.item)``)
    recorded as read where ``forward`` put it. Why read: the thread serving the queue reads it there, after the put,
    under no mode of the export's; a tensor it only computes with is proven by an export again, not refused."""
    if isinstance(item, _FUNCTIONS):
        wrapped: Any = _carrying(torch, mode, item)
    elif type(item) is tuple and item and isinstance(item[0], _FUNCTIONS):
        wrapped = (_carrying(torch, mode, item[0]), *item[1:])
    else:
        wrapped = item
    values = (item.values() if type(item) is dict else item if type(item) in (tuple, list)
              else (getattr(item, "__self__", None), item))
    for v in values:
        if isinstance(v, torch.Tensor):
            _record_handed(torch, mode, v)
    return wrapped


def _record_handed(torch: Any, mode: Any, t: Any) -> None:
    """Record ``t`` in ``mode``'s reads at the first frame out of this module and the standard library's queue."""
    from .value_modes import _real

    if id(t) in mode.reads or not _real(torch, t):
        return
    f = sys._getframe(1)
    while f is not None and f.f_globals.get("__name__") in (__name__, "queue"):
        f = f.f_back
    where = f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}" if f is not None else "?"
    mode.reads[id(t)] = f"{where} (put into a queue)"
    with contextlib.suppress(TypeError, AttributeError):
        mode.reads.objects[id(t)] = weakref.ref(t)


def _pool_worker(thread: threading.Thread) -> bool:
    """Whether ``thread`` is a ``ThreadPoolExecutor``'s or a ``multiprocessing.pool.ThreadPool``'s worker or handler
    (it outlives the export; the functions handed to the pool carry the mode)."""
    from concurrent.futures import thread as futures_thread
    from multiprocessing import pool as mp_pool

    target = getattr(thread, "_target", None)
    return target is getattr(futures_thread, "_worker", ()) or target is getattr(mp_pool, "worker", ()) or (
        getattr(target, "__qualname__", "").startswith("Pool._handle_"))


def _under(torch: Any, mode: Any, call: Callable[[], Any]) -> Any:
    """``call()`` in this (another) thread under a value-read mode recording into ``mode``'s reads."""
    with _carried(torch, mode):
        return call()


@contextlib.contextmanager
def _carried(torch: Any, mode: Any) -> Iterator[None]:
    from .value_modes import _active, _take_off

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

        from .value_modes import _compiling, _mode_class, _real

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
                if compiling():   # (``value_modes._compiling``: Dynamo tracing a higher-order op's body)
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
