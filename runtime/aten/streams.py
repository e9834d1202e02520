"""Issuing a bound plan: torch streams and events, fork and join per call, CUDA graph capture.

Why its own module: the order and the waits come from ``runtime.binding.bind`` (the same steps every
memplan executor issues); this module only turns them into torch calls. Each plan stream is a
``torch.cuda.Stream``, each plan event a ``torch.cuda.Event`` recorded on ``after``'s stream right after
it and waited on by ``before``'s stream right before it. A call forks from the caller's stream (every
plan stream waits on it) and joins back (the caller waits on every plan stream), so the caller's stream
orders calls, input copies and output reads. The whole multi-stream call can be captured into one
``torch.cuda.CUDAGraph`` (on plan stream 0) and replayed. On a CPU there are no streams: steps run in
issue order, which happens-before respects, so any plan runs there too.

The plan's streams are private CUDA streams (``torch.cuda.ExternalStream`` over streams created for this
executor), not torch's stream pool. Why: torch keeps one cuBLAS/cuBLASLt workspace per (handle, stream),
so GEMMs on different streams never share one (they run concurrently, and share nothing); but a
destroyed ``CUDAGraph`` frees the workspaces of *its capture stream*, and torch's pool hands the same 32
streams out round-robin, so another graph captured on a pool stream that is also one of ours would free
the workspace our captured GEMMs still write (pytorch #193402). Private streams are never anyone's
capture stream but ours. They live as long as the process (a few per executor), and so do their workspaces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runtime.binding import Step

from .errors import AtenExecutorError
from .lower import Launch

#: ``cudaStreamCaptureStatus``: a stream not capturing, capturing, or part of a capture an operation invalidated
CAPTURE_NONE, CAPTURE_ACTIVE, CAPTURE_INVALIDATED = 0, 1, 2
#: what a failing kernel raises: torch's ``RuntimeError`` mostly, but ``IndexError`` for an index out of range
#: (``embedding``, ``index_select``: "index out of range in self"), ``ValueError`` / ``TypeError`` from ops and
#: custom ops; each is named (node and op), as a ``RuntimeError`` was
KERNEL_ERRORS = (RuntimeError, IndexError, ValueError, TypeError)


def used_streams(steps: Sequence[Step]) -> tuple[int, ...]:
    """The plan stream ids some step runs on, and 0 (the capture's stream, the one a plan without steps runs
    on), ascending. Why: a plan may declare more streams than its nodes use (``streams=64`` for a graph of three
    chains); a CUDA stream made for each declared id was forked and joined in every call (two events each, and
    in every captured graph) with nothing to run."""
    return tuple(sorted({0, *(s.stream for s in steps)}))


class Issuer:
    """Runs ``steps`` (with their launches) on the streams of ``device`` they name (of the plan's ``n_streams``)."""

    def __init__(self, steps: Sequence[Step], launches: Mapping[str, Launch], n_streams: int, device: Any,
                 n_events: int):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.steps = tuple(steps)
        self.runs: tuple[Callable[[], Any] | None, ...] = tuple(launches[s.node].run for s in self.steps)
        self.ops = tuple(launches[s.node].op for s in self.steps)
        self.capturing = False
        self.graph: Any = None
        #: the current stream's capture status (``CAPTURE_*``), or None where no CUDA binding answers: asked
        #: after each launch while capturing only, so that the node that invalidated a capture is the one named
        self.capture_status: Callable[[], int | None] = lambda: None
        if self.cuda:
            self.capture_status = functools.partial(stream_capture_status, torch, self.device)
            #: {plan stream id: its CUDA stream}, for the ids a step runs on (and 0, the capture's) only
            self.streams = {sid: private_stream(torch, self.device) for sid in used_streams(self.steps)}
            self.events = [torch.cuda.Event() for _ in range(n_events)]
            self.fork = torch.cuda.Event()
            self.joins = [torch.cuda.Event() for _ in self.streams]
        else:
            self.streams, self.events, self.fork, self.joins = {}, [], None, []

    def issue(self, delays: Mapping[str, int] | None = None) -> None:
        """Enqueue one call's steps after the caller's current stream, and make it wait for them.
        ``delays`` (CUDA only, for tests): node -> GPU cycles to sleep on its stream right before it.
        Under no_grad, as inference: the weights are the module's parameters, and an ``out=`` op refuses
        an argument that requires grad where autograd is on."""
        with self.torch.no_grad():
            self._issue(delays)

    def _issue(self, delays: Mapping[str, int] | None = None) -> None:
        if not self.cuda:
            for k, run in enumerate(self.runs):
                if run is not None:
                    self._run(k, run)
            return
        torch = self.torch
        caller = torch.cuda.current_stream(self.device)
        # (``set_stream`` makes its stream's device the current one: a program on cuda:1 called with cuda:0 current
        # left cuda:1 current after the call, so the caller's next ``torch.empty(n, device="cuda")`` landed there)
        device = torch.cuda.current_device()
        self.fork.record(caller)
        for s in self.streams.values():
            s.wait_event(self.fork)
        events, streams = self.events, self.streams
        current = -1
        failed = True
        try:
            for k, (step, run) in enumerate(zip(self.steps, self.runs)):
                if step.stream != current:
                    current = step.stream
                    torch.cuda.set_stream(streams[current])
                stream = streams[current]
                for e in step.waits:
                    stream.wait_event(events[e])
                if delays and step.node in delays:
                    torch.cuda._sleep(int(delays[step.node]))
                if run is not None:
                    self._run(k, run)
                for e in step.records:
                    events[e].record(stream)
            failed = False
        finally:
            torch.cuda.set_stream(caller)
            # every stream joins the caller even after a failed step: a capture whose forks are not joined
            # cannot end cleanly (torch then raises "unjoined work" in place of the failing node's error)
            try:
                for s, j in zip(self.streams.values(), self.joins):
                    j.record(s)
                    caller.wait_event(j)
            except RuntimeError:
                if not failed:
                    raise
            finally:
                if device != caller.device_index:
                    torch.cuda.set_device(device)

    def _run(self, k: int, run: Callable[[], Any]) -> None:
        """Run step ``k``'s launch; an op that fails is named (node and op), not a torch traceback."""
        if self.capturing and self.capture_status() == CAPTURE_INVALIDATED:   # after the last launch was asked
            raise AtenExecutorError(
                "cannot be captured into a CUDA graph: the capture was invalidated before this node ran, after "
                "the previous node's launch (by the event waits and records between them)", self.steps[k].node,
                self.ops[k])
        try:
            run()
        except KERNEL_ERRORS as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.capturing:
                raise AtenExecutorError(
                    f"cannot be captured into a CUDA graph ({first}); an op that synchronizes with the host "
                    "(data-dependent sizes, .item(), .tolist()) needs cuda_graph=False", self.steps[k].node,
                    self.ops[k]) from exc
            raise AtenExecutorError(f"failed: {first}", self.steps[k].node, self.ops[k]) from exc
        if self.capturing and self.capture_status() == CAPTURE_INVALIDATED:
            # Why ask after every launch: an op can do what CUDA forbids while a stream captures (a copy from
            # pageable host memory, a synchronization, work on the legacy stream) and not check the error it
            # got; the capture is then invalid, and the *next* node that checks raises "operation failed due
            # to a previous error during capture", blaming itself. Asked only while capturing (once per
            # compile): the eager path and replays pay nothing.
            raise AtenExecutorError(
                "cannot be captured into a CUDA graph (it invalidated the capture without raising: an operation "
                "CUDA forbids while a stream captures, such as a copy from pageable host memory or a "
                "synchronization); it needs cuda_graph=False", self.steps[k].node, self.ops[k])

    def capture(self) -> None:
        """Capture one whole call into a CUDA graph. The caller warms up first (a few eager calls, each
        after loading the inputs, so cuBLAS and cuDNN create their per-stream handles and workspaces
        outside the capture) and loads the inputs again before the first replay: a plan may reuse an
        input's bytes once it is read, so a call leaves no input behind."""
        torch = self.torch
        if not self.cuda:
            return
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        caller = torch.cuda.current_stream(self.device)
        device = torch.cuda.current_device()   # (the caller's, put back where a failed capture leaves another)
        failed: AtenExecutorError | None = None
        self.capturing = True
        try:
            # our own stream (the module docstring); ``thread_local``: only this thread's unsafe CUDA calls (a
            # synchronization, an allocation from the driver) are refused during the capture. Under torch's default,
            # ``global``, any other thread's were: a first (capturing) call made while another thread ran the GPU (a
            # call of another compiled program, a side stream's copies and event queries) made that thread's call
            # fail, or invalidated this capture ("CUDA graph capture failed"). Other threads' work on their own
            # streams is never part of this capture, whatever the mode: capture follows streams, not threads.
            with torch.cuda.graph(graph, stream=self.streams[0], capture_error_mode="thread_local"):
                try:
                    self.issue()
                except AtenExecutorError as exc:   # end the capture first, then name the node
                    failed = exc
        except RuntimeError as exc:   # ending the capture failed: the failing op invalidated it
            torch.cuda.set_stream(caller)   # torch.cuda.graph leaves its stream current when that happens
            if device != caller.device_index:
                torch.cuda.set_device(device)
            release_generator(torch, self.device)
            if failed is None:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise AtenExecutorError(f"CUDA graph capture failed ({first}); try cuda_graph=False") from exc
        finally:
            self.capturing = False
        if failed is not None:
            raise failed
        torch.cuda.synchronize(self.device)
        self.graph = graph

    def replay(self) -> None:
        self.graph.replay()


def release_generator(torch, device: Any) -> None:
    """Hand ``device``'s default CUDA generator back after a capture whose end failed. torch's ``capture_end``
    raises before it ends the generator's capture (``capture_epilogue``) when the capture was invalidated: the
    generator then believes it is still capturing, and every later random op on that device, the caller's
    own included, fails ("Offset increment outside graph capture encountered unexpectedly"; found by the CUDA
    fuzzer: one program that could not be captured broke every later example). A copy of its state (same seed
    and offset, not capturing) takes its place; where this torch has no such call the generator is left alone."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    gen = torch.cuda.default_generators[index]
    try:
        gen.graphsafe_set_state(gen.clone_state())
    except (AttributeError, RuntimeError):
        pass


def stream_capture_status(torch, device: Any) -> int | None:
    """``cudaStreamIsCapturing`` of ``device``'s current stream (``CAPTURE_*``), None where no binding
    answers. torch's own ``is_current_stream_capturing`` says True for an invalidated capture too."""
    query = _capture_query(torch)
    return None if query is None else query(int(torch.cuda.current_stream(device).cuda_stream))


@functools.cache
def _capture_query(torch) -> Callable[[int], int | None] | None:
    """``cudaStreamIsCapturing`` through ``cuda.bindings`` where it is installed, else through the CUDA runtime
    library torch loaded (ctypes); None where neither is found."""
    try:
        from cuda.bindings import runtime as cudart

        def query(handle: int) -> int | None:
            err, status = cudart.cudaStreamIsCapturing(handle)
            return int(status) if int(err) == 0 else None
        return query
    except ImportError:
        pass
    import ctypes

    major = str(getattr(torch.version, "cuda", None) or "").split(".")[0]
    try:
        fn = ctypes.CDLL(f"libcudart.so.{major}").cudaStreamIsCapturing
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)], ctypes.c_int

    def query_ctypes(handle: int) -> int | None:
        status = ctypes.c_int(-1)
        return status.value if fn(ctypes.c_void_p(handle), ctypes.byref(status)) == 0 else None
    return query_ctypes


#: ``cudaStreamNonBlocking``: the stream does not synchronize with the legacy default stream
STREAM_NON_BLOCKING = 1


@functools.cache
def _stream_create_with_flags(torch) -> Callable[[], int | None] | None:
    """A function making a non-blocking stream on the current device through ``cudaStreamCreateWithFlags`` of the CUDA
    runtime library torch loaded (its handle, None where the call fails), or None where that library is not found."""
    import ctypes

    major = str(getattr(torch.version, "cuda", None) or "").split(".")[0]
    try:
        fn = ctypes.CDLL(f"libcudart.so.{major}").cudaStreamCreateWithFlags
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint], ctypes.c_int

    def create() -> int | None:
        handle = ctypes.c_void_p()
        if fn(ctypes.byref(handle), STREAM_NON_BLOCKING) != 0 or not handle.value:
            return None
        return int(handle.value)
    return create


def private_stream(torch, device: Any) -> Any:
    """A CUDA stream no other code gets from torch's pool: non-blocking, through ``cuda.bindings`` where it is
    installed, else through the CUDA runtime library torch loaded (ctypes, as ``_capture_query``); a
    (legacy-stream-blocking) one through torch's ``cudart`` binding only where neither answers. Why non-blocking
    where it can: work on the legacy default stream (torch's default stream, any thread's) synchronizes with every
    blocking stream, so it serialised the plan's streams with it and, during a capture on plan stream 0, invalidated
    the capture (round 75: without ``cuda.bindings`` every plan stream was blocking)."""
    handle = None
    try:
        from cuda.bindings import runtime as cudart

        with torch.cuda.device(device):
            err, s = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
        if int(err) == 0:
            handle = int(s)
    except ImportError:
        create = _stream_create_with_flags(torch)
        if create is not None:
            with torch.cuda.device(device):
                handle = create()
    if handle is None:
        buf = torch.zeros(1, dtype=torch.int64)
        with torch.cuda.device(device):
            err = torch.cuda.cudart().cudaStreamCreate(buf.data_ptr())
        if int(err) != 0:
            raise RuntimeError(f"cudaStreamCreate failed with error {int(err)}")
        handle = int(buf.item())
    return torch.cuda.ExternalStream(handle, device=device)
