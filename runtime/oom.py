"""Whether an exception is an allocation failing for lack of memory, whoever raised it (Python, pycuda, torch,
a ``cuda.bindings`` driver call). Its own module, importing nothing: the tools' entry points
(``tool_args.run_main``) ask it for pycuda's and torch's executors alike, and the ATen side must not import
pycuda's modules even by a lazy path (tests/test_walls.py)."""

from __future__ import annotations


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device (or host) allocation failing for lack of memory: Python's ``MemoryError``,
    pycuda's ``MemoryError`` (not a subclass of it), torch's ``OutOfMemoryError``, or a driver call's
    ``CUDA_ERROR_OUT_OF_MEMORY`` (``runtime.cuda_util.CudaError``), or torch's plain RuntimeError from a library
    that could not allocate (cuBLAS, cuDNN: "CUDA error: out of memory", ``*_STATUS_ALLOC_FAILED``; the CPU allocator:
    "DefaultCPUAllocator: can't allocate memory", which the ATen executor's CPU arena raised raw)."""
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"MemoryError", "OutOfMemoryError"}:
        return True
    text = str(exc)   # torch raises cuBLAS / cuDNN / NCCL exhaustion as a plain RuntimeError
    return any(s in text for s in ("CUDA_ERROR_OUT_OF_MEMORY", "CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED",
                                   "CUDNN_STATUS_ALLOC_FAILED", "NCCL error: unhandled cuda error",
                                   "DefaultCPUAllocator: can't allocate memory"))
