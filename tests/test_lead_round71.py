"""Lead, round 71: torch 2.11's export left its buffer registration hook installed when the trace raised.

Seen on the GPU machine (torch 2.11): after ``runtime.aten.compile`` of a module whose first export fails (an int
buffer read as a size, retried as a constant), the user's ``m.pad = torch.tensor(1)`` raised torch's
"AssertionError: expected FakeTensor" from ``_aot_autograd.utils``: the hook was never removed. memplan's traces now
take out the torch-made registration hooks a trace leaves behind (``translate._leaked_registration_hooks_removed``).
"""

from __future__ import annotations

import types

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from memplan.importers.torch.translate import _traced  # noqa: E402
from tests.test_models_round70b import IntPad, _x  # noqa: E402


def _hook_of(module_name: str):
    """A registration hook whose ``__module__`` is ``module_name`` (torch's own code, or a user's)."""
    code = compile("def hook(mod, name, value):\n    raise AssertionError('leaked hook ran')\n", module_name, "exec")
    scope: dict = {"__name__": module_name}
    exec(code, scope)
    return types.FunctionType(scope["hook"].__code__, scope, "hook")


def test_torch_hook_left_by_a_raising_trace_is_removed_and_users_kept() -> None:
    from torch.nn.modules import module as _module

    table = _module._global_buffer_registration_hooks
    before = dict(table)
    handles = []

    def trace():
        handles.append(nn.modules.module.register_module_buffer_registration_hook(_hook_of("torch._fake_export")))
        handles.append(nn.modules.module.register_module_buffer_registration_hook(_hook_of("users_code")))
        raise RuntimeError("data-dependent guard")

    try:
        with pytest.raises(RuntimeError, match="data-dependent guard"):
            _traced(torch, trace)
        added = {k: v for k, v in table.items() if k not in before}
        assert [v.__module__ for v in added.values()] == ["users_code"]   # torch's gone, the user's kept
    finally:
        for h in handles:
            h.remove()
    assert dict(table) == before


def test_buffer_assignable_after_compile_whose_first_export_failed() -> None:
    """The round-70b module: its first export fails (the int buffer is a data-dependent size) and is retried."""
    import memplan

    m = IntPad().eval()
    memplan.from_torch(m, (_x(),))
    m.pad = torch.tensor(1)          # (torch 2.11: AssertionError "expected FakeTensor" from the leaked hook)
    assert int(m.pad) == 1


def test_digest_of_a_storage_at_an_odd_address_reads_it_byte_by_byte() -> None:
    """``storage_saves._digest`` read storages as 8-byte words: one at an address no multiple of 8 (DLPack of
    external memory) faults on a GPU ("misaligned address"). Now read byte by byte there, a change still seen."""
    import numpy as np

    from runtime.aten.storage_saves import _digest

    buf = np.zeros(41, dtype=np.uint8)
    odd = torch.from_numpy(buf[1:])               # (data at an odd address)
    assert odd.untyped_storage().data_ptr() % 8 != 0
    seen = []
    real_view = torch.Tensor.view

    def spy(self, *args):
        if args and args[0] is torch.int64:
            seen.append(self.data_ptr() % 8)
        return real_view(self, *args)

    torch.Tensor.view = spy
    try:
        before = _digest(torch, odd.untyped_storage())
        odd[17] = 3
        after = _digest(torch, odd.untyped_storage())
    finally:
        torch.Tensor.view = real_view
    assert before != after
    assert all(r == 0 for r in seen), seen       # (no 8-byte view of a misaligned start)


def test_a_parameter_input_after_a_copy_of_one_is_not_taken_for_an_overriding_subclass() -> None:
    """copyreg caches ``Parameter.__slotnames__`` on the class at the first ``copy.copy`` / pickle of a Parameter
    (any test or user code before, in the process): an input Parameter was then refused as "a tensor subclass that
    overrides torch.Tensor.__slotnames__", instead of what the call really is (seen on the GPU machine's run of the
    CPU tests under xdist: `test_runtime_hostile20`, `test_aten_round43`)."""
    import copy

    from runtime.aten import subclass

    class Sub(torch.Tensor):
        pass

    import copyreg

    copy.copy(Sub(torch.zeros(2)))                   # (copyreg sets Sub.__slotnames__)
    copyreg._slotnames(torch.Tensor)                 # (as a copy of an object of torch.Tensor's own layout does)
    assert "__slotnames__" in Sub.__dict__ and hasattr(torch.Tensor, "__slotnames__")
    assert subclass.difference(torch, Sub) is None


def test_a_thread_blocked_in_its_loop_throughout_ran_nothing_one_that_ran_a_turn_did() -> None:
    """``module_state._ran_since``: a thread blocked at the same place in a loop counted as having run (round 71's
    review), so under pytest-xdist (execnet's reader blocked in its receive loop) every global compile's eager run
    added was kept: `test_aten_round70`'s and `test_aten71_round71`'s put-back tests failed in CI's `-n 2`. The
    thread's CPU clock now tells an idle wait from a turn of its loop."""
    import queue
    import threading
    import time

    from runtime.aten.module_state import _ran_since, _thread_frames

    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def worker():
        while True:
            job = jobs.get()
            if job is None:
                return
            job()

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    try:
        time.sleep(0.05)                       # (blocked in get)
        was = {k: v for k, v in _thread_frames().items() if k == t.ident}
        time.sleep(0.05)
        assert not _ran_since(was)             # waited throughout
        done = threading.Event()
        jobs.put(lambda: (sum(range(20000)), done.set()))
        done.wait(5)
        time.sleep(0.05)                       # (back in get, the same frame and place)
        assert _ran_since(was)                 # ran a turn of its loop
    finally:
        jobs.put(None)
        t.join(5)
