"""Review of round 71: failing tests for the problems found in its changes (each fixed alongside)."""

from __future__ import annotations

import time
import types
from concurrent.futures import ThreadPoolExecutor


def test_a_pool_workers_global_added_during_the_run_is_kept():
    """An idle ``ThreadPoolExecutor`` worker blocks in ``SimpleQueue.get`` inside ``_worker``'s loop: a job it ran
    during compile's eager run (binding a new global) brought it back to the same frame at the same instruction, so
    ``_ran_since`` said no other thread ran and ``_put_space`` deleted the job's global under it."""
    from runtime.aten.module_state import _put_space, _ran_since, _thread_frames

    g = vars(types.ModuleType("review71_user_mod"))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: None).result()   # (its worker started, now idle)
        time.sleep(0.02)
        snap, was = _thread_frames(), dict(g)
        pool.submit(g.__setitem__, "FROM_WORKER", 1).result()
        time.sleep(0.02)   # (back in get)
        others = _ran_since(snap)
    assert others
    assert _put_space(g, was, others) == ["review71_user_mod.FROM_WORKER"]
    assert g["FROM_WORKER"] == 1


def test_threads_blocked_outside_a_loop_still_count_as_idle():
    """The fix keeps round 71's point: a thread blocked in ``Event.wait`` or ``join`` throughout ran no code."""
    import threading

    from runtime.aten.module_state import _ran_since, _thread_frames

    ev = threading.Event()
    t1 = threading.Thread(target=ev.wait, args=(10,), daemon=True)
    t1.start()
    t2 = threading.Thread(target=t1.join, daemon=True)
    t2.start()
    time.sleep(0.05)
    try:
        snap = _thread_frames()
        time.sleep(0.02)
        mine = {i: v for i, v in snap.items() if i in (t1.ident, t2.ident)}
        assert len(mine) == 2 and not _ran_since(mine)
    finally:
        ev.set()
