"""A fake pycuda + cuda.bindings driver for CPU tests: the GPU executors' own code, run on numpy.

Why: the pycuda executors (``runtime.executor``, ``runtime.multi_gpu``) can only run where a GPU is, and
CI has none. This module stands in for ``pycuda.driver``, ``pycuda.compiler``, ``pycuda.autoprimaryctx``
and ``cuda.bindings.driver`` with just the calls the runtime makes: allocations are byte buffers of the
emulator (``runtime.emulate.Memory``), every kernel launch runs ``runtime.emulate.run_launch`` at once,
copies and memsets act on the buffers, and a stream capture records the operations that a graph launch
replays. Everything runs in host issue order, so it checks addresses, launches, contexts and the issue
sequence, not races (the GPU jitter tests and the emulator's random host orders do that).

``install(monkeypatch, devices=N)`` puts the fake modules in ``sys.modules``; ``Driver.trace`` lists every
operation as a tuple (the device current when it was issued first).
"""

from __future__ import annotations

import ctypes
import sys
import types

import numpy as np

from runtime.emulate import Memory, run_launch
from runtime.kernels import Launch
from runtime.kernels.ops import NONPORTABLE_CLUSTER_NAMES, WS_BUILDS, WS_NAMES

SUCCESS = "CUDA_SUCCESS"
#: trace operations issued on a stream -> the position of the stream handle in the trace tuple
STREAM_OPS = {"launch": 2, "launch_pdl": 2, "dtod": 2, "memset_d32": 2, "memset_d16": 2, "wait": 2, "record": 3}
#: launches that stand for no node: a jitter's spin (one before each node at probability 1), an L2 prefetch
MARKERS = ("spin", "l2_prefetch")


class Driver:
    def __init__(self, devices: int = 1, num_sms: int = 132):
        self.mem = Memory()
        self.trace: list[tuple] = []
        self.ndev = devices
        self.num_sms = num_sms
        self.ctx_stack: list[int] = []
        self.capturing: list | None = None
        self.capture_stream = None
        #: device pointers freed (a pycuda allocation's ``free`` or its garbage collection) inside a capture,
        #: which CUDA's capture modes forbid: as there, the capture is invalidated (its end fails)
        self.freed_in_capture: list[int] = []
        self.frees_before_capture = 0
        self.streams: list = []
        self.events = 0
        #: (kernel, carveout percent or -1) of every cuLaunchKernelEx, in issue order
        self.carveouts: list[tuple[str, int]] = []

    @property
    def dev(self) -> int:
        return self.ctx_stack[-1] if self.ctx_stack else 0

    def op(self, *what, fn=None) -> None:
        """Trace ``what``; run ``fn`` now, or keep it for the graph being captured."""
        self.trace.append((self.dev, *what))
        if fn is None:
            return
        if self.capturing is not None:
            self.capturing.append(fn)
        else:
            fn()

    def run(self, ln: Launch) -> None:
        if ln.kernel == "fill_uniform_f16":
            ptr, n, seed, scale = ln.args
            i = np.arange(n, dtype=np.int64)
            v = ((i * 2654435761 + seed % 2001) % 2001) / 1000.0 - 1.0   # (the same values; any 64-bit seed)
            self.mem.view(ptr, n, np.float16)[:] = (v * scale).astype(np.float16)
        elif ln.kernel == "l2_prefetch":
            pass
        else:
            run_launch(self.mem, ln)


def _modules(drv: Driver) -> dict[str, types.ModuleType]:
    cuda = types.ModuleType("pycuda.driver")

    class Error(Exception):
        pass

    class Alloc:
        def __init__(self, nbytes):
            self.ptr = drv.mem.alloc(nbytes)
            drv.op("alloc", nbytes)

        def __int__(self):
            return self.ptr

        def free(self):
            if self.ptr is None:
                return
            if drv.capturing is not None:
                drv.freed_in_capture.append(self.ptr)
            drv.op("free", self.ptr)
            self.ptr = None

        def __del__(self):   # pycuda frees a collected allocation
            try:
                self.free()
            except Exception:   # (at interpreter exit)
                pass

    class Stream:
        def __init__(self, flags=0):
            self.device = drv.dev
            self.handle = len(drv.streams) + 1
            drv.streams.append(self)

        def wait_for_event(self, ev):
            drv.op("wait", self.handle, ev.id)

        def synchronize(self):
            drv.op("stream_sync", self.handle)

    class Event:
        def __init__(self, flags=0):
            drv.events += 1
            self.id = drv.events
            self.device = drv.dev

        def record(self, stream=None):
            # as CUDA: an event is recorded only on a stream of its own device (another's: an invalid handle)
            assert stream is None or stream.device == self.device, \
                f"event of device {self.device} recorded on a stream of device {stream.device}"
            drv.op("record", self.id, stream.handle if stream is not None else 0)

        def synchronize(self):
            drv.op("event_sync", self.id)

        def time_till(self, other):
            return 1.0

    class Function:
        def __init__(self, name):
            self.name = name

        def prepare(self, sig):
            self.sig = sig

        def set_attribute(self, attr, value):
            self.attrs = {**getattr(self, "attrs", {}), attr: value}

        def prepared_call(self, grid, block, *args):
            ln = Launch(self.name, tuple(grid), tuple(block), tuple(args))
            drv.op("call", self.name, ln.grid, ln.block, ln.args, fn=lambda: drv.run(ln))

        def prepared_async_call(self, grid, block, stream, *args, shared_size=0):
            ln = Launch(self.name, tuple(grid), tuple(block), tuple(args))
            assert stream.device == drv.dev, f"launch of {self.name} on a stream of device {stream.device}"
            # the real driver refuses a cluster of more than 8 blocks unless this very function handle allows it
            assert self.name not in NONPORTABLE_CLUSTER_NAMES, f"{self.name}: cluster too large for a pycuda launch"
            drv.op("launch", stream.handle, self.name, ln.grid, ln.block, ln.args, fn=lambda: drv.run(ln))

    class Module:
        def get_function(self, name):
            # a function first loaded inside a stream capture may load its module's code there (CUDA's lazy
            # loading): the library loads its on-demand kernels before (``KernelLibrary.preload``)
            assert drv.capturing is None, f"function {name} loaded inside a stream capture"
            return Function(name)

    class Context:
        def __init__(self, d):
            self.d = d

        @staticmethod
        def synchronize():
            drv.op("ctx_sync")

        @staticmethod
        def get_device():
            return Device(drv.dev)

        @staticmethod
        def pop():
            drv.ctx_stack.pop()

        def push(self):
            drv.ctx_stack.append(self.d)

        def enable_peer_access(self, other):
            drv.op("peer", other.d)

    class Device:
        def __init__(self, d):
            self.d = d

        @staticmethod
        def count():
            return drv.ndev

        def compute_capability(self):
            return (9, 0)

        def get_attribute(self, attr):
            return drv.num_sms

        def retain_primary_context(self):
            return Context(self.d)

        def can_access_peer(self, other):
            return True

    def _bytes(a):
        return np.ascontiguousarray(a).view(np.uint8).reshape(-1)

    def memcpy_htod(ptr, arr):
        data = _bytes(arr).copy()
        drv.op("htod", int(ptr), data.nbytes)
        drv.mem.view(int(ptr), data.nbytes, np.uint8)[:] = data

    def memcpy_dtoh(out, ptr):
        drv.op("dtoh", int(ptr), out.nbytes)
        _bytes(out)[:] = drv.mem.view(int(ptr), out.nbytes, np.uint8)

    def memcpy_dtod_async(dst, src, n, stream):
        def fn():
            drv.mem.view(int(dst), n, np.uint8)[:] = drv.mem.view(int(src), n, np.uint8).copy()
        drv.op("dtod", stream.handle, int(dst), int(src), n, fn=fn)

    def _memset(kind, dtype, ptr, value, n, stream=None):
        def fn():
            drv.mem.view(int(ptr), n, dtype)[:] = value
        drv.op(kind, stream.handle if stream is not None else 0, int(ptr), value, n, fn=fn)

    cuda.Error = Error
    cuda.Stream, cuda.Event, cuda.Context, cuda.Device = Stream, Event, Context, Device
    cuda.init = lambda: None
    cuda.mem_alloc = Alloc

    def to_device(arr):
        a = Alloc(np.asarray(arr).nbytes)
        memcpy_htod(a, arr)
        return a
    cuda.to_device = to_device
    cuda.memcpy_htod, cuda.memcpy_dtoh, cuda.memcpy_dtod_async = memcpy_htod, memcpy_dtoh, memcpy_dtod_async
    cuda.memset_d8 = lambda p, v, n: _memset("memset_d8", np.uint8, p, v, n)
    cuda.memset_d32 = lambda p, v, n: _memset("memset_d32", np.uint32, p, v, n)
    cuda.memset_d32_async = lambda p, v, n, s: _memset("memset_d32", np.uint32, p, v, n, s)
    cuda.memset_d16_async = lambda p, v, n, s: _memset("memset_d16", np.uint16, p, v, n, s)
    cuda.module_from_buffer = lambda cubin: Module()
    cuda.device_attribute = types.SimpleNamespace(MULTIPROCESSOR_COUNT="sms")
    cuda.function_attribute = types.SimpleNamespace(MAX_DYNAMIC_SHARED_SIZE_BYTES="max_dynamic_smem")

    compiler = types.ModuleType("pycuda.compiler")
    compiler.compile = lambda src, **kw: b"cubin"

    cu = types.ModuleType("cuda.bindings.driver")
    cu.CUresult = types.SimpleNamespace(CUDA_SUCCESS=SUCCESS)
    cu.CUstreamCaptureMode = types.SimpleNamespace(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL="thread_local")
    cu.CUstream = int
    cu.cuGetErrorString = lambda err: (SUCCESS, str(err).encode())

    def begin(h, mode):
        assert drv.capturing is None, "nested capture"
        drv.op("begin_capture", int(h))
        drv.capturing, drv.capture_stream = [], int(h)
        drv.frees_before_capture = len(drv.freed_in_capture)
        return (SUCCESS,)

    def end(h):
        assert drv.capture_stream == int(h), "capture ended on another stream"
        ops, drv.capturing, drv.capture_stream = drv.capturing, None, None
        drv.op("end_capture", int(h), len(ops))
        if len(drv.freed_in_capture) > drv.frees_before_capture:   # as CUDA: a free invalidates the capture
            return ("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", None)
        return (SUCCESS, ("graph", ops))

    def launch(exe, h):
        drv.op("graph_launch", int(h), len(exe[1]))
        assert drv.capturing is None
        for fn in exe[1]:
            fn()
        return (SUCCESS,)

    # the PDL launch path (KernelLibrary(pdl=True)): cuLaunchKernelEx with the programmatic attribute, traced
    # as a "launch_pdl" of the same kernel; streams are pycuda's, named by handle
    cu.CUfunction_attribute = types.SimpleNamespace(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES="max_dyn_smem",
                                                    CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED="non_portable")
    cu.CUlaunchAttributeID = types.SimpleNamespace(
        CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION="programmatic",
        CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT="carveout",
        CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION="cluster")
    cu.CUlaunchConfig = lambda: types.SimpleNamespace()
    cu.CUlaunchAttribute = lambda: types.SimpleNamespace(value=types.SimpleNamespace(clusterDim=types.SimpleNamespace()))
    cu.cuModuleLoadData = lambda cubin: (SUCCESS, ("module", cubin))

    def get_function(mod, name):
        assert drv.capturing is None, f"function {name.decode()} loaded inside a stream capture"
        return (SUCCESS, name.decode())
    cu.cuModuleGetFunction = get_function
    drv.func_attrs = {}   # (kernel, attribute) -> value, as the library set them

    def set_attr(func, attr, value):
        drv.func_attrs[func, attr] = value
        return (SUCCESS,)

    cu.cuFuncSetAttribute = set_attr
    drv.max_clusters = 7   # what the H200 reports for a cluster of 16 (one per GPC)

    def max_active_clusters(func, cfg):
        assert func in NONPORTABLE_CLUSTER_NAMES and drv.func_attrs.get((func, "non_portable")) == 1, func
        return (SUCCESS, drv.max_clusters)

    cu.cuOccupancyMaxActiveClusters = max_active_clusters

    # the wgmma build's tensor maps: the encoded fields, readable back through getPtr() (a kernel parameter)
    cu.cuuint64_t = cu.cuuint32_t = int
    cu.CUtensorMapDataType = types.SimpleNamespace(CU_TENSOR_MAP_DATA_TYPE_FLOAT16=2, CU_TENSOR_MAP_DATA_TYPE_FLOAT32=4)
    cu.CUtensorMapSwizzle = types.SimpleNamespace(CU_TENSOR_MAP_SWIZZLE_NONE=0, CU_TENSOR_MAP_SWIZZLE_128B=128)
    cu.CUtensorMapInterleave = types.SimpleNamespace(CU_TENSOR_MAP_INTERLEAVE_NONE=0)
    cu.CUtensorMapL2promotion = types.SimpleNamespace(CU_TENSOR_MAP_L2_PROMOTION_L2_256B=256)
    cu.CUtensorMapFloatOOBfill = types.SimpleNamespace(CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE=0)

    class TensorMap:
        """fields: address, K, rows, box k, box rows, element bytes, swizzle"""
        def __init__(self, fields):
            self.buf = (ctypes.c_uint64 * 16)(*fields)

        def getPtr(self):
            return ctypes.addressof(self.buf)

    def encode(dt, rank, ptr, dims, strides, box, estrides, interleave, swizzle, l2, oob):
        assert rank == 2 and int(ptr) % 16 == 0 and strides == [dims[0] * dt] and estrides == [1, 1]
        assert box[0] * dt == 128 if swizzle else box[0] * dt % 16 == 0
        assert 1 <= box[1] <= 256, box
        return (SUCCESS, TensorMap([int(ptr), dims[0], dims[1], box[0], box[1], dt, swizzle]))
    cu.cuTensorMapEncodeTiled = encode

    def wg_args(func, params):
        """(W..., x, y, M, N, K) back from a wgmma launch's void* array, checking its tensor maps' shapes."""
        n = 3 if "swiglu" in func else 2
        slots = (ctypes.c_void_p * (n + 4)).from_address(params)
        maps = [list((ctypes.c_uint64 * 16).from_address(slots[i])) for i in range(n)]
        y = ctypes.c_void_p.from_address(slots[n]).value
        M, N, K = (ctypes.c_int.from_address(slots[n + 1 + i]).value for i in range(3))
        # weights [N, K] f16, 128-byte swizzle, boxes of 64 k x the block's 256 rows (SwiGLU: 128 of each
        # matrix); x [M, K] f32 in boxes of 64 x 64 (llama.cu gemm_wg_body)
        for mp in maps[:-1]:
            assert mp[1:7] == [K, N, 64, 128 if n == 3 else 256, 2, 128], (func, mp)
        assert maps[-1][1:7] == [K, M, 64, 64, 4, 0], (func, maps[-1])
        return (*[mp[0] for mp in maps], y, M, N, K)

    def ws_args(func, params):
        """(W..., x, y, M, N, K, CL) back from a gemm_ws launch's void* array, checking its tensor maps: weights
        [N, K] f16 swizzled in boxes of 64 k x the block's rows (SwiGLU: half of them from each matrix), x
        [M, K] f16 swizzled in boxes of 64 x 64 (llama.cu gemm_ws_body)."""
        n = 3 if "swiglu" in func else 2
        slots = (ctypes.c_void_p * (n + 5)).from_address(params)
        maps = [list((ctypes.c_uint64 * 16).from_address(slots[i])) for i in range(n)]
        y = ctypes.c_void_p.from_address(slots[n]).value
        M, N, K, cl = (ctypes.c_int.from_address(slots[n + 1 + i]).value for i in range(4))
        nc, wt, _st = WS_BUILDS[func]
        for mp in maps[:-1]:
            assert mp[1:7] == [K, N, 64, 64 * wt * nc // (2 if n == 3 else 1), 2, 128], (func, mp)
        assert maps[-1][1:7] == [K, M, 64, 64, 2, 128], (func, maps[-1])
        return (*[mp[0] for mp in maps], y, M, N, K, cl)

    def launch_ex(c, func, params, extra):
        attrs = {a.id: a.value for a in getattr(c, "attrs", [])}
        assert len(attrs) == len(getattr(c, "attrs", [])) == getattr(c, "numAttrs", 0)
        assert set(attrs) <= {"programmatic", "carveout", "cluster"}
        assert ("cluster" in attrs) == (func in WS_NAMES), func   # gemm_ws alone takes its cluster at launch
        pdl = "programmatic" in attrs
        assert not pdl or attrs["programmatic"].programmaticStreamSerializationAllowed
        carveout = attrs["carveout"].sharedMemCarveout if "carveout" in attrs else -1
        assert carveout == -1 or 0 <= carveout <= 100
        if isinstance(params, int) and func in WS_NAMES:   # a void* array (gemm_ws)
            args = ws_args(func, params)
            cd = attrs["cluster"].clusterDim
            assert (cd.x, cd.y, cd.z) == (args[-1], 1, 1) and c.gridDimX % args[-1] == 0, (func, cd)
        elif isinstance(params, int):   # a void* array (the wgmma build)
            args = wg_args(func, params)
        else:
            args, types_ = params
            assert len(args) == len(types_), f"{func}: {len(args)} arguments for {len(types_)} parameter types"
        ln = Launch(func, (c.gridDimX, c.gridDimY, c.gridDimZ), (c.blockDimX, c.blockDimY, c.blockDimZ), tuple(args))
        assert func not in NONPORTABLE_CLUSTER_NAMES or drv.func_attrs.get((func, "non_portable")) == 1, \
            f"{func}: a cluster of more than 8 blocks without the non-portable attribute"
        drv.carveouts.append((func, carveout))
        drv.op("launch_pdl" if pdl else "launch", int(c.hStream), func, ln.grid, ln.block, ln.args, fn=lambda: drv.run(ln))
        return (SUCCESS,)

    cu.cuLaunchKernelEx = launch_ex
    cu.cuStreamBeginCapture, cu.cuStreamEndCapture = begin, end
    cu.cuGraphInstantiateWithFlags = lambda graph, flags: (SUCCESS, ("exec", graph[1]))
    cu.cuGraphLaunch = launch
    cu.cuGraphExecDestroy = lambda exe: (SUCCESS,)
    cu.cuGraphDestroy = lambda graph: (SUCCESS,)

    pycuda = types.ModuleType("pycuda")
    auto = types.ModuleType("pycuda.autoprimaryctx")
    pycuda.driver, pycuda.compiler, pycuda.autoprimaryctx = cuda, compiler, auto
    cuda_pkg = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    cuda_pkg.bindings, bindings.driver = bindings, cu
    return {"pycuda": pycuda, "pycuda.driver": cuda, "pycuda.compiler": compiler, "pycuda.autoprimaryctx": auto,
            "cuda": cuda_pkg, "cuda.bindings": bindings, "cuda.bindings.driver": cu}


def install(monkeypatch, devices: int = 1) -> Driver:
    """Replace pycuda and cuda.bindings by a fake driver for this test; returns it."""
    drv = Driver(devices)
    for name, mod in _modules(drv).items():
        monkeypatch.setitem(sys.modules, name, mod)
    return drv


def node_segments(trace, steps) -> dict[str, tuple[int, list[int]]]:
    """Per node of ``steps`` (issued with a jitter of probability 1: one spin launch marks each node's start): its
    spin's index and the indices of the work issued for it (launches, copies, records; waits belong to the next)."""
    spins = [i for i, t in enumerate(trace) if t[1] in ("launch", "launch_pdl") and t[3] == "spin"]
    assert len(spins) == len(steps)
    out = {}
    for k, (i, s) in enumerate(zip(spins, steps)):
        end = spins[k + 1] if k + 1 < len(spins) else len(trace)
        out[s.node] = (i, [j for j in range(i + 1, end) if trace[j][1] in STREAM_OPS and trace[j][1] != "wait"
                           and not (trace[j][1].startswith("launch") and trace[j][3] in MARKERS)])
    return out
