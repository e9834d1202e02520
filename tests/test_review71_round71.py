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


def _child_and_x():
    import pytest

    pytest.importorskip("torch")
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from test_importer71_round71 import Child, _x

    return Child, _x


def test_a_module_shared_at_two_places_is_retried_with_its_buffer_as_a_constant():
    """``nn.Sequential(c, c)``: one module, one buffer name; counted once per place it was "held twice" and never
    made a constant, so the model round 70 planned was refused as data-dependent."""
    import torch

    import memplan
    from memplan.importers.torch import int_buffers

    Child, _x = _child_and_x()
    c = Child()
    m = torch.nn.Sequential(c, c).eval()
    assert [p for *_rest, p in int_buffers.constant_buffers(torch, m)] == ["0.pad"]
    graph = memplan.from_torch(m, (_x(),))
    assert graph.nodes and type(c) is Child and int(c.pad) == 3


def _via(kind: str):
    import torch

    Child, _x = _child_and_x()

    class ViaAlias(torch.nn.Module):
        """Writes its child's buffer through a list holding it, or a view of it, before the child reads it."""

        def __init__(self) -> None:
            super().__init__()
            self.child = Child()
            self.hold = [self.child.pad] if kind == "list" else [self.child.pad.view(1)]

        def forward(self, x):
            self.hold[0].add_(1)
            return self.child(x)

    return ViaAlias().eval(), _x


def test_a_buffer_written_through_a_list_or_a_view_is_no_constant():
    """Before: planned with the buffer as a constant, while each eager call padded by one more (the write reached
    the buffer, not the tensors the reads made, and no name of the tree held it twice)."""
    import pytest

    import memplan
    from memplan.errors import GraphError

    for kind in ("list", "view"):
        m, _x = _via(kind)
        with pytest.raises(GraphError, match=r"'child\.pad' cannot be exported as a constant.*writes it in place"):
            memplan.from_torch(m, (_x(),))
        assert list(m.child._buffers) == ["pad"]


def test_a_buffer_only_read_is_retried_under_inference_mode():
    """Under ``torch.inference_mode()`` each read made an inference tensor, which has no version counter and so
    counted as written: a model that only reads its buffer was refused "forward writes it in place"; a real write
    is still refused there."""
    import pytest
    import torch

    import memplan
    from memplan.errors import GraphError

    Child, _x = _child_and_x()
    from test_importer71_round71 import Parent

    with torch.inference_mode():
        assert memplan.from_torch(Child().eval(), (_x(),)).nodes
        with pytest.raises(GraphError, match=r"'child\.pad' cannot be exported as a constant.*writes it in place"):
            memplan.from_torch(Parent("method").eval(), (_x(),))
