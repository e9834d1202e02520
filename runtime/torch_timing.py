"""Timing a torch callable on the GPU with CUDA events: the one loop both torch benchmarks use.

``runtime.torch_peer`` (PyTorch beside our own kernels) and ``runtime.aten.bench`` (the ATen executor
beside PyTorch) must time the same way, or their ratios compare two clocks. torch is passed in, so this
module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def event_ms(torch: Any, fn: Callable[[], Any], n: int) -> float:
    """Milliseconds per call of ``fn`` over ``n`` back-to-back calls, timed by CUDA events on the
    current stream (the host only enqueues; the events measure the GPU)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / n
