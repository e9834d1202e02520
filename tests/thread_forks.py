"""Forking a child while another thread is inside a block: what a ``ProcessPoolExecutor``/``multiprocessing`` worker
(fork start) sees of state that thread had changed or locked (round 76: api76's locks, review76b's undone blocks)."""

from __future__ import annotations

import os
import signal
import threading
import time


def child_status(pid: int) -> int:
    """The forked child's exit code, killing it after a bounded wait (a hang is the defect, not a time)."""
    for _ in range(300):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -2


def forked_beside(hold, child) -> int:
    """Fork while another thread runs ``hold(started, release)`` (it sets ``started`` and waits for ``release``);
    the child runs ``child()`` (its exit code: 0 for success) and leaves at once (no pytest teardown there)."""
    started, release = threading.Event(), threading.Event()
    t = threading.Thread(target=hold, args=(started, release), daemon=True)
    t.start()
    try:
        assert started.wait(10)
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(child())
            except BaseException:
                os._exit(3)
        return child_status(pid)
    finally:
        release.set()
        t.join(10)
