"""Process-wide output switches an import turns for its own time: a logger off, ``sys.stderr`` held.

Why a module of its own: a logger's ``disabled`` and ``sys.stderr`` are one per process, and an import (or a
``runtime.aten`` build) may run in several threads at once. Each switch used to save the value it found and put it
back after: two blocks overlapping in two threads put back each other's values, so the second to end left the
logger disabled for good, or ``sys.stderr`` a dead buffer of the first's (every later warning and traceback of the
process lost). Here each switch is counted under a lock: the first block to begin turns it, the last to end puts
back what the first found, and text held for one thread is that thread's alone (another thread's ``print`` to
``sys.stderr`` goes to the real stream meanwhile).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from .._forklocks import fork_safe

_LOCK = fork_safe(threading.Lock())


@contextlib.contextmanager
def _switching() -> Iterator[None]:
    """``_LOCK`` held, and a Ctrl-C (SIGINT) that comes meanwhile taken only after it is released, for a block that
    turns a switch or puts it back. Why: a ``KeyboardInterrupt`` raised between a block's count going up and its
    ``try`` (or halfway through putting a switch back) left the count up for good, so the logger stayed disabled, or
    ``sys.stderr`` held this thread's text, for the rest of the process (its traceback lost). A handler is swapped only
    in the main thread (the one a Python signal handler runs in) and only where it is Python's own or a callable."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            came: list[Any] = []
            signal.signal(signal.SIGINT, lambda signum, frame: came.append(frame))
            previous = handler
    try:
        with _LOCK:
            yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            if came:   # (the default handler raises KeyboardInterrupt: now, with every count consistent)
                previous(signal.SIGINT, came[0])
def _put_back(undo: Callable[[], None]) -> None:
    """Run ``undo`` once under ``_switching``, again if a Ctrl-C came before the switch was held (the lines that swap
    the handler are Python's, and the signal is taken between any two), then raise that Ctrl-C: ``undo`` never
    skipped for it."""
    done: list[bool] = []
    interrupted: BaseException | None = None
    while not done:
        try:
            with _switching():
                undo()
                done.append(True)
        except KeyboardInterrupt as e:
            interrupted = e
    if interrupted is not None:
        raise interrupted


#: logger name -> blocks in flight that turned it off, and the ``disabled`` the first of them found
_LOGGERS_OFF: Counter = Counter()
_LOGGERS_WAS: dict[str, bool] = {}
#: (logger name, thread) -> that thread's blocks in flight of it: what a forked child keeps (``_after_fork_in_child``)
_LOGGERS_BY: Counter = Counter()


@contextlib.contextmanager
def logger_off(name: str) -> Iterator[None]:
    """Silence logger ``name`` for the block (in every thread: a logger has one switch), as it was after the last
    overlapping block ends. Why: torch logs a whole traceback for failures its callers handle (``torch.export.load``
    before it raises on a file that is no archive, which our error says in one line; the fake-tensor mode for a kernel
    that fails on fake tensors, which ``runtime.aten``'s layout probe expects)."""
    logger = logging.getLogger(name)
    me = threading.get_ident()
    turned = False
    try:   # (turned inside the ``try``: a Ctrl-C right after it still puts it back)
        with _switching():
            if not _LOGGERS_OFF[name]:
                _LOGGERS_WAS[name] = logger.disabled
            _LOGGERS_OFF[name] += 1
            _LOGGERS_BY[name, me] += 1
            logger.disabled = True
            turned = True
        yield
    finally:
        if turned:
            _put_back(lambda: _logger_on(name, logger, me))


def _logger_on(name: str, logger: logging.Logger, me: int) -> None:
    """``logger_off``'s block (thread ``me``) has ended: the last to end puts back what the first found."""
    _LOGGERS_BY[name, me] -= 1
    if not _LOGGERS_BY[name, me]:
        del _LOGGERS_BY[name, me]
    _LOGGERS_OFF[name] -= 1
    if not _LOGGERS_OFF[name]:
        del _LOGGERS_OFF[name]
        logger.disabled = _LOGGERS_WAS.pop(name)


class HeldStderr:
    """``sys.stderr`` while some threads hold what they write: each such thread's text goes to its own innermost
    buffer, any other thread's to ``real``, the stream that stood there before (None: dropped, as ``print`` drops
    it with ``sys.stderr`` None). Anything else (``fileno``, ``encoding``, ``isatty``) is ``real``'s."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.held: dict[int, list[io.StringIO]] = {}
        self.blocks = 0

    def _target(self) -> Any:
        bufs = self.held.get(threading.get_ident())
        return bufs[-1] if bufs else self.real

    def write(self, text: str) -> int:
        target = self._target()
        return len(text) if target is None else target.write(text)

    def flush(self) -> None:
        target = self._target()
        if target is not None and hasattr(target, "flush"):
            target.flush()

    def __getattr__(self, name: str) -> Any:
        if name == "real":   # (not set yet: a half-built copy)
            raise AttributeError(name)
        return getattr(self.real, name)


_STDERR: list[HeldStderr | None] = [None]


@contextlib.contextmanager
def stderr_held() -> Iterator[tuple[io.StringIO, Any]]:
    """Hold what this thread writes to ``sys.stderr`` in the block; yields (the buffer, the stream it stood for),
    for the caller to pass on what it keeps. Other threads' text goes to that stream meanwhile, and ``sys.stderr``
    is that stream again once the last overlapping block ends (unless something else has replaced it since: then
    that is left in place)."""
    me = threading.get_ident()
    buf = io.StringIO()
    proxy = None
    try:   # (held inside the ``try``: a Ctrl-C right after it still puts ``sys.stderr`` back)
        with _switching():
            proxy = _STDERR[0]
            if proxy is None or sys.stderr is not proxy:   # the first block, or sys.stderr replaced since
                proxy = HeldStderr(sys.stderr)
                _STDERR[0] = proxy
                sys.stderr = proxy
            proxy.blocks += 1
            proxy.held.setdefault(me, []).append(buf)
            real = proxy.real
        yield buf, real
    finally:
        if proxy is not None and buf in proxy.held.get(me, ()):
            _put_back(lambda: _release(proxy, me, buf))


def _release(proxy: HeldStderr, me: int, buf: io.StringIO) -> None:
    """``stderr_held``'s block (thread ``me``, buffer ``buf``) has ended: the last to end puts ``sys.stderr`` back."""
    bufs = proxy.held[me]
    bufs.remove(buf)
    if not bufs:
        del proxy.held[me]
    proxy.blocks -= 1
    if not proxy.blocks:
        back = proxy.real
        while isinstance(back, HeldStderr) and not back.blocks:   # (an earlier one, wrapped, ended)
            back = back.real
        if sys.stderr is proxy:
            sys.stderr = back
        if _STDERR[0] is proxy:
            _STDERR[0] = back if isinstance(back, HeldStderr) else None


def _after_fork_in_child() -> None:
    """In a forked child: the blocks of threads other than the forking one ended (only it lives on here, so theirs
    never end): a logger they alone turned off is on again as the first found it, ``sys.stderr`` back where no
    block of the forking thread holds it. Why: a ``ProcessPoolExecutor``/``multiprocessing`` worker forked while
    another thread exported a model ran its whole life with torch's export and fake-tensor loggers off, and with
    ``sys.stderr`` a proxy counting a block that never ends (round 76 review). Its own lock is made free by
    ``_forklocks`` (registered first, so run first)."""
    with contextlib.suppress(Exception):   # (a handler that raised would print in every child)
        _others_ended(threading.get_ident())


def _others_ended(me: int) -> None:
    """``_after_fork_in_child``'s work: every block of a thread but ``me`` counted as ended."""
    for (name, owner), count in list(_LOGGERS_BY.items()):
        if owner == me:
            continue
        del _LOGGERS_BY[name, owner]
        _LOGGERS_OFF[name] -= count
        if _LOGGERS_OFF[name] <= 0:   # (no block of the forking thread: as the first block found it)
            del _LOGGERS_OFF[name]
            logging.getLogger(name).disabled = _LOGGERS_WAS.pop(name, False)
    proxy = _STDERR[0]
    while isinstance(proxy, HeldStderr):
        for owner, bufs in list(proxy.held.items()):
            if owner != me:
                del proxy.held[owner]
                proxy.blocks -= len(bufs)
        if proxy.blocks > 0:
            break
        back = proxy.real
        if sys.stderr is proxy:
            sys.stderr = back
        _STDERR[0] = back if isinstance(back, HeldStderr) else None
        proxy = _STDERR[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
