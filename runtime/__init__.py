"""memplan's GPU runtime: runs a verified memplan Plan on a real GPU with pycuda.

One arena (tensors are offsets into a single allocation), the plan's streams and events, eager issue
or a CUDA graph captured from the whole multi-stream schedule, and ggml-granularity kernels for a
Llama-style step. It exists to show, on the device, that the plans are safe (jitter tests with a
poisoned arena) and what running independent nodes concurrently buys.

Importing ``runtime`` (or ``runtime.models``) needs neither pycuda nor a GPU: the executor, kernel
registry and benchmark import pycuda lazily, so the CPU-only parts (graph building, schedules, the
numpy reference) run anywhere, including CI.
"""

from __future__ import annotations

__all__ = ["executor", "kernels", "models"]
