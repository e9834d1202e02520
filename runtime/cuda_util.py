"""CUDA driver helpers shared by the pycuda executors, the kernel library and the tuning tools.

pycuda has no CUDA-graph API, so graphs go through ``cuda.bindings.driver`` on pycuda's stream handles;
every driver result is checked here (``CudaError`` names the call). One capture, one launch and one timing
loop serve every caller, so an executor's graph and a tool's timing graph are made the same way.

Nothing here imports pycuda or cuda.bindings at module import: only when a helper is called.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator

#: flags of pycuda events and streams the executors create
EVENT_DISABLE_TIMING = 0x2
STREAM_NON_BLOCKING = 0x1
#: poison patterns: f32 and f16 quiet NaN
F32_NAN = 0x7FC00000
F16_NAN = 0x7E00


class _GcHold:
    """Python's cyclic collector held off while any capture runs, in any thread: the first hold turns it off
    (if it was on), the last release turns it back on. The collector is process-wide, so the count is too
    (two threads capturing at once: the first to finish must not turn it back on under the other)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds = 0
        self._was_on = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holds == 0:
                self._was_on = gc.isenabled()
                gc.disable()
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                if self._holds == 0 and self._was_on:
                    gc.enable()


_gc_held = _GcHold()


class CudaError(RuntimeError):
    """A CUDA driver call (through cuda.bindings) failed; the message names the call."""


#: what to install for CUDA graphs: pycuda has no graph API, and the ``cuda`` extra brings pycuda only. The ``graphs``
#: extra adds ``cuda-bindings`` 12.x, which runs on every CUDA 12 driver (13.x, an unpinned install's pick, needs
#: R580); torch's CUDA wheels bring their own. Why the extra's name: "pip install cuda-python" gave 13.x
GRAPH_INSTALL = "pip install -e '.[graphs]'"
GRAPH_STACK = f"cuda.bindings for CUDA graphs ({GRAPH_INSTALL})"


def _driver():
    """``cuda.bindings.driver``, or GpuStackMissing naming what to install. Why: a pycuda executor's ``capture``
    (and the tools' timing graphs) on a machine with pycuda but no cuda-python was a bare "No module named
    'cuda'" from inside this module."""
    try:
        from cuda.bindings import driver
    except ImportError as exc:
        raise GpuStackMissing(f"capturing a CUDA graph needs {GRAPH_STACK}: {exc}") from None
    return driver


def check(result, what: str):
    """Unpack a cuda.bindings result tuple, raising CudaError unless it is CUDA_SUCCESS."""
    cu = _driver()
    err = result[0]
    if err != cu.CUresult.CUDA_SUCCESS:
        _, msg = cu.cuGetErrorString(err)
        raise CudaError(f"{what} failed: {err!r} ({msg.decode() if msg else '?'})")
    return result[1] if len(result) == 2 else result[1:]


def capture_graph(stream, issue: Callable[[], None]) -> tuple:
    """Record what ``issue()`` puts on ``stream`` (and on the streams it forks from it) into a CUDA graph;
    returns ``(graph, graph_exec)``, instantiated. Python's cyclic garbage collector is held off meanwhile:
    a collection inside the capture that reaches an unreachable cycle holding device memory (an earlier
    executor's, a tool's buffers) frees it there, a call the capture mode forbids, and the capture is
    invalidated (H200, ``runtime.bench`` over 8B batches 1, 16, 32 then 64: the batch-64 capture failed with
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED at a later launch; the same batch alone ran)."""
    cu = _driver()
    h = cu.CUstream(int(stream.handle))
    with _gc_held():
        check(cu.cuStreamBeginCapture(h, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
              "cuStreamBeginCapture")
        try:
            issue()
        except BaseException:
            cu.cuStreamEndCapture(h)
            raise
        graph = check(cu.cuStreamEndCapture(h), "cuStreamEndCapture")
    instantiate = getattr(cu, "cuGraphInstantiateWithFlags", None) or cu.cuGraphInstantiate  # 12.x | 13.x
    return graph, check(instantiate(graph, 0), "cuGraphInstantiate")


def launch_graph(graph_exec, stream) -> None:
    cu = _driver()
    check(cu.cuGraphLaunch(graph_exec, cu.CUstream(int(stream.handle))), "cuGraphLaunch")


def destroy_graph(graph, graph_exec) -> None:
    cu = _driver()
    check(cu.cuGraphExecDestroy(graph_exec), "cuGraphExecDestroy")
    check(cu.cuGraphDestroy(graph), "cuGraphDestroy")


def event_seconds(stream, issue: Callable[[], None], reps: int) -> list[float]:
    """Seconds of each of ``reps`` calls of ``issue()`` on ``stream``, each bracketed by CUDA events and
    waited for: the one event-timing loop of the runtime's measurements."""
    import pycuda.driver as cuda

    out = []
    for _ in range(reps):
        e0, e1 = cuda.Event(), cuda.Event()
        e0.record(stream)
        issue()
        e1.record(stream)
        e1.synchronize()
        out.append(e0.time_till(e1) / 1e3)
    return out


def graph_us(stream, issue_once: Callable[[], None], *, reps: int = 50, trials: int = 5) -> list[float]:
    """Microseconds per ``issue_once()`` inside a CUDA graph: ``reps`` of them captured back to back on
    ``stream``, the graph launched ``trials`` times (one sample each). The number includes the in-graph
    launch gap — what a kernel costs inside a step's graph (``runtime.tools``)."""

    def issue() -> None:
        for _ in range(reps):
            issue_once()

    graph, exe = capture_graph(stream, issue)
    try:
        return [t * 1e6 / reps for t in event_seconds(stream, lambda: launch_graph(exe, stream), trials)]
    finally:
        destroy_graph(graph, exe)


class GpuStackMissing(ImportError):
    """pycuda, or a CUDA device it can open, is missing where a pycuda executor or a ``KernelLibrary`` is
    created. An ImportError (what a missing module is), so ``except ImportError`` still catches it; its
    message names what needs it and what to install, where Python's said only "No module named 'pycuda'"
    from inside ``runtime.cuda_core``."""


#: what to install for the pycuda executors and the tools
GPU_STACK = "pycuda and an NVIDIA GPU (pip install -e '.[cuda]')"
#: what the tools need where cuda.bindings is missing too: they all time CUDA graphs
TOOL_STACK = f"pycuda, cuda.bindings for CUDA graphs and an NVIDIA GPU ({GRAPH_INSTALL})"


def has_driver_bindings() -> bool:
    """Whether ``cuda.bindings.driver`` imports (the ``graphs`` extra, or torch's CUDA wheels, bring it): what the
    tools' CUDA graphs and PDL launches (``kernels.library.pdl_supported``) go through."""
    try:
        import cuda.bindings.driver  # noqa: F401
    except ImportError:
        return False
    return True


def import_pycuda(who: str, context: bool = False):
    """``pycuda.driver``, or GpuStackMissing naming ``who`` needs it and what to install. ``context``: also
    ``pycuda.autoprimaryctx`` (retains and pushes the device's primary context), whose import fails with
    pycuda's own error where the driver finds no device ("cuInit failed: no CUDA-capable device")."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise GpuStackMissing(f"{who} needs {GPU_STACK}: {exc}") from None
    if context:
        try:
            import pycuda.autoprimaryctx  # noqa: F401
        except ImportError as exc:
            raise GpuStackMissing(f"{who} needs {GPU_STACK}: {exc}") from None
        except Exception as exc:   # pycuda's LogicError / RuntimeError from cuInit or the context
            raise GpuStackMissing(f"{who} found no usable CUDA device ({type(exc).__name__}: {exc})") from None
    return cuda


def need_pycuda() -> None:
    """The GPU stack the runtime's tools run on (the ``cuda`` extra: pycuda and a CUDA driver; cuda.bindings for
    their CUDA graphs), as a
    ``runtime.tool_args.ToolArgError`` (one line, exit 2). Here, not in ``tool_args``: ``runtime.aten``'s tools
    share that module, and ``runtime.aten`` never imports pycuda (tests/test_walls.py)."""
    from .tool_args import ToolArgError

    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        # every tool also needs cuda.bindings (below): where that is missing too, the ``cuda`` extra alone ran into
        # a second refusal ("needs cuda.bindings ... '.[graphs]'") once installed; the ``graphs`` extra brings both
        stack = GPU_STACK if has_driver_bindings() else TOOL_STACK
        raise ToolArgError(f"needs {stack}: {exc}") from None
    # pycuda imports on a machine whose driver finds no device (``CUDA_VISIBLE_DEVICES=``, a host without a GPU
    # or its driver loaded): the tools' first context then raised pycuda's "cuInit failed: no CUDA-capable device"
    # (or ``GpuStackMissing``) as a traceback, after the options were checked; ``cuInit`` may be called again
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:   # pycuda's LogicError / RuntimeError
        raise ToolArgError(f"needs an NVIDIA GPU: pycuda finds no usable CUDA device "
                           f"({type(exc).__name__}: {exc})") from None
    if count < 1:
        raise ToolArgError("needs an NVIDIA GPU: pycuda finds no CUDA device here")
    # every tool that calls this times CUDA graphs (``graph_us``, ``time_steps("graph")``), which go through
    # cuda.bindings: without it (the ``cuda`` extra alone) the first capture raised GpuStackMissing as a traceback,
    # after the kernels were compiled and the bandwidths measured (round 75)
    try:
        from cuda.bindings import driver  # noqa: F401
    except ImportError as exc:
        raise ToolArgError(f"needs {GRAPH_STACK}: {exc}") from None
