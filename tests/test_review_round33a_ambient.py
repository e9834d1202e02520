"""Review round 33a: ``runtime.aten.backend_flags``' per-call flag check and its watch on ``torch.get_default_dtype``.

- A compiled call read the ~23 backend flags twice (``CompiledModule._follow_flags``, then the executor's own
  ``_check_ambient``), each read building (name, value) pairs and comparing them in a Python loop: ~15 us a call
  (a small Linear module: 271 us before round 33, 296 us after, measured side by side in one process).
- ``watch_default_dtype_reads`` swapped ``torch.get_default_dtype`` process-wide and put back the function it found:
  two exports overlapping in time (two threads compiling) left torch's getter wrapped for good (every later call
  recording into a dead list), and one thread's reads landed in the other's export (a false refusal later).
"""

from __future__ import annotations

import threading

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import backend_flags, compile, default_dtype  # noqa: E402


class _Lin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.lin(x))


def test_a_compiled_call_reads_each_backend_flag_once(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(2, 4)
    step = compile(_Lin().eval(), (x,), streams=1)
    step(x)
    getter = next(g for g in ("_get_cudnn_enabled", "_get_deterministic_algorithms") if hasattr(torch._C, g))
    real = getattr(torch._C, getter)
    calls = []
    monkeypatch.setattr(torch._C, getter, lambda: calls.append(1) or real())
    backend_flags._getters.cache_clear()
    try:
        step(x)
        step(x)
    finally:
        monkeypatch.undo()
        backend_flags._getters.cache_clear()
    assert len(calls) == 2   # once per call (it was twice)


def test_a_flag_change_is_still_followed_and_a_bare_executor_still_refuses():
    torch.manual_seed(0)
    x = torch.randn(2, 4)
    step = compile(_Lin().eval(), (x,), streams=1)
    old = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(not old)
        step(x)
        assert step.flag_rebuilds == 1
        ex = step.executor
        torch.use_deterministic_algorithms(old)
        with pytest.raises(Exception, match="torch.use_deterministic_algorithms was"):
            ex(x)
    finally:
        torch.use_deterministic_algorithms(old)


def _read_default_dtype():
    return torch.get_default_dtype()   # from this module: a read "outside torch"


def test_overlapping_watches_put_torch_getter_back():
    real = torch.get_default_dtype
    a = default_dtype.watch_default_dtype_reads(torch)
    b = default_dtype.watch_default_dtype_reads(torch)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)   # the first export ends while the second still runs (another thread's)
    b.__exit__(None, None, None)
    try:
        assert torch.get_default_dtype is real
    finally:
        torch.get_default_dtype = real


def test_another_threads_reads_are_not_this_exports():
    with default_dtype.watch_default_dtype_reads(torch) as reads:
        t = threading.Thread(target=_read_default_dtype)
        t.start()
        t.join()
        assert reads == []
        _read_default_dtype()
        assert len(reads) == 1 and reads[0].startswith("test_review_round33a_ambient.py:")
    assert torch.get_default_dtype() == torch.float32
