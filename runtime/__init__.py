"""memplan's GPU runtime: runs a verified memplan Plan on real GPUs with pycuda, and on the CPU in numpy.

One arena per device (tensors are offsets into a single allocation), the plan's streams and events, eager
issue or CUDA graphs captured from the whole multi-stream schedule, and ggml-granularity kernels for a
Llama-style step. It exists to show, on the device, that the plans are safe (jitter tests with a
poisoned arena) and what running independent nodes concurrently buys.

The flow: ``binding`` (where each tensor lives, the issue order) -> ``step`` (what runs at each step:
``kernels``' launches, fused groups, copies) -> ``emulate`` (numpy) or ``cuda_core`` (pycuda, over
``device_memory``) -> ``executor`` (one GPU) and ``multi_gpu`` (several). ``aten`` runs torch.export
graphs on the same binding. ``bench``, ``bench_multi_gpu`` and ``tools`` are measurements.

Importing ``runtime`` (or any module above) needs neither pycuda nor a GPU: pycuda is imported when an
executor or a kernel library is created, so the CPU parts (graph building, schedules, binding, the
emulator, the numpy reference) run anywhere, including CI.
"""

from __future__ import annotations

__all__ = ["binding", "emulate", "executor", "kernels", "models", "multi_gpu", "step"]
