"""Review of round 69's merged changes: silent-wrong results and lost output they brought (CPU).

1. ``lower._resize_warnings_off`` (the out= probe's stderr redirect): two threads probing at once left the process's
   stderr on a deleted temporary file for good (every later warning and traceback lost).
2. ``flag_reads.wrap_off`` popped the recorder's name from torch's globals: a call of ``is_compiling()`` another
   thread had started in the swapped code raised ``NameError``.
3. ``module_state``: an ``OrderedDict`` attribute eager's branch changed was put back through ``dict.clear`` /
   ``dict.update``, which bypass its linked list: ``list(d)`` named a key it did not hold, ``repr(d)`` raised.
"""

from __future__ import annotations

import collections
import os
import threading
import types

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import flag_reads  # noqa: E402
from runtime.aten.lower import _resize_warnings_off  # noqa: E402
from runtime.aten.module_state import ModuleState  # noqa: E402


def test_two_threads_probing_at_once_leave_stderr_where_it_was():
    """Failed before: fd 2 pointed at "/tmp/#... (deleted)" after both probes, and the line written after was lost."""
    where = os.readlink(f"/proc/self/fd/{2}") if os.path.exists("/proc/self/fd/2") else None
    stat = os.fstat(2)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with _resize_warnings_off(torch):
            a_in.set()
            b_in.wait(timeout=2)   # (with the lock the second waits outside: this times out)
        a_out.set()

    def second():
        a_in.wait()
        with _resize_warnings_off(torch):
            b_in.set()
            a_out.wait(timeout=5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (stat.st_dev, stat.st_ino), os.readlink("/proc/self/fd/2")
    if where is not None:
        assert os.readlink("/proc/self/fd/2") == where


def test_a_probe_with_no_temporary_file_leaves_stderr_and_no_descriptor(monkeypatch):
    """A temporary directory that cannot be written: the probe runs with stderr as it is and no fd leaked."""
    import tempfile

    def refuse(*_a, **_k):
        raise PermissionError("no writable temporary directory")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    before = sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    stat = os.fstat(2)
    with _resize_warnings_off(torch):
        pass
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (stat.st_dev, stat.st_ino)
    if before is not None:
        assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_flag_call_in_flight_when_the_swap_ends_still_answers():
    """Failed before: ``NameError: name '_memplan_tracing_flag_...' is not defined`` (a call that entered the swapped
    code in another thread looks its recorder up after ``wrap_off``)."""
    flag_reads.wrap_on(torch)
    try:
        fn = torch.compiler.is_compiling
        in_flight = types.FunctionType(fn.__code__, fn.__globals__)   # (the swapped code, as a call entered it)
    finally:
        flag_reads.wrap_off()
    assert in_flight() is False
    assert torch.compiler.is_compiling() is False and not flag_reads._SWAPPED


class _Cached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.cache = collections.OrderedDict(a=1, b=2)


def test_an_ordered_dict_eager_changed_is_put_back_whole_and_in_its_order():
    """Failed before: ``list(m.cache) == ['b', 'c', 'a']`` of a dict holding a and b, and ``repr`` raised KeyError."""
    m = _Cached()
    m.cache.move_to_end("a")   # (its order: b, a; its underlying dict's: a, b)
    state = ModuleState(torch, m)
    m.cache["c"] = 3
    m.cache.move_to_end("b")
    del m.cache["a"]
    state.restore()
    assert list(m.cache.items()) == [("b", 2), ("a", 1)]
    assert repr(m.cache) == "OrderedDict({'b': 2, 'a': 1})" or repr(m.cache) == "OrderedDict([('b', 2), ('a', 1)])"
    m.cache["z"] = 0   # (its linked list whole: a later insert works)
    assert list(m.cache) == ["b", "a", "z"]


def test_an_ordered_dict_only_reordered_is_put_back_in_its_order():
    """An LRU cache's hit moves a key to the end and changes no value: put back too."""
    m = _Cached()
    state = ModuleState(torch, m)
    m.cache.move_to_end("a")
    state.restore()
    assert list(m.cache) == ["a", "b"]


def _with(make):
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.held = make()   # (a plain attribute forward does not use)

        def forward(self, x):
            return x * 2 if torch.compiler.is_compiling() else x + x
    return M()


_ODD = {"meta": lambda: torch.ones(3, device="meta"), "sparse": lambda: torch.eye(3).to_sparse(),
        "nested": lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)], layout=torch.jagged)}


@pytest.mark.parametrize("kind", sorted(_ODD))
def test_a_meta_sparse_or_nested_tensor_held_is_left_as_it_is(kind):
    """Failed before: ``NotImplementedError: aten::equal ... Meta tensors`` / ``... 'SparseCPU' backend`` /
    ``RuntimeError: NestedTensorImpl doesn't support sizes`` out of ``ModuleState.restore``."""
    m = _with(_ODD[kind])
    held = m.held
    state = ModuleState(torch, m)
    m.held = None
    state.restore()
    assert m.held is held


def test_compile_of_a_flag_reading_module_holding_a_meta_tensor_compiles():
    """Through compile's comparison with eager (``flag_reads``): failed before with torch's raw error."""
    from runtime.aten import compile

    m = _with(_ODD["meta"])
    with pytest.warns(flag_reads.TracingFlagWarning):
        step = compile(m, (torch.ones(3),), streams=1, cuda_graph=False, poison=True, device="cpu")
    assert step(torch.ones(3)).tolist() == [2.0, 2.0, 2.0] and m.held.is_meta


@pytest.mark.parametrize("where", ["wrap_on", "patch_on"])
def test_an_interrupt_while_a_watch_swaps_in_leaves_the_next_watch_working(monkeypatch, where):
    """Failed before: the count ended at -1, ``torch._C.DisableTorchFunction`` stayed memplan's stand-in, and the
    next block swapped nothing in (every later export of the process unwatched: ``is_compiling`` not recorded)."""
    from runtime.aten import loose_reads, value_reads

    original = torch._C.DisableTorchFunction
    owner = flag_reads if where == "wrap_on" else loose_reads
    real = getattr(owner, where)

    def interrupted(*args):
        real(*args)   # (what it swaps is swapped; then Ctrl-C)
        raise KeyboardInterrupt

    monkeypatch.setattr(owner, where, interrupted)
    with pytest.raises(KeyboardInterrupt), value_reads.watch_value_reads(torch):
        pass
    monkeypatch.setattr(owner, where, real)
    assert value_reads._DISABLE["count"] == 0
    assert torch._C.DisableTorchFunction is original and not flag_reads._SWAPPED and not loose_reads._PATCHED
    with value_reads.watch_value_reads(torch):
        assert torch._C.DisableTorchFunction is not original and flag_reads._SWAPPED
    assert torch._C.DisableTorchFunction is original and value_reads._DISABLE["count"] == 0
