"""The kernel library: ``kernels/llama.cu`` compiled once per process for the device's arch, and launched.

Only this module touches pycuda (when a ``KernelLibrary`` is created); ``Launch`` records come from the
registry (``runtime.kernels.registry``).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from pathlib import Path

from ..cuda_util import GRAPH_INSTALL, check, has_driver_bindings, import_pycuda
from .ops import (
    ATTN_FUSED_NAMES,
    ATTN_MMA_H_NAMES,
    ATTN_MMA_NAMES,
    GEMM_TC,
    GEMM_TC_SWIGLU,
    GEMM_WG_NAMES,
    NONPORTABLE_CLUSTER_NAMES,
    SMEM_LIMITS,
    TC_MAX_ROWS,
    TC_WARP_ROWS,
    WS_BUILDS,
    WS_NAMES,
    KernelError,
    Launch,
    dynamic_smem,
    tc_smem_bytes,
)

KERNEL_SOURCE = Path(__file__).with_name("llama.cu")

#: pycuda ``prepare`` signatures: P pointer, i int32, q int64, Q uint64, f float32
SIGNATURES = {
    "rms_norm_f32": "PPPiif",
    "rms_norm4_f32": "PPPiif",
    "binary_f32": "PPPqqi",
    "silu_f32": "PPq",
    "copy_u32": "PPq",
    "rope_f32": "PPPiiif",
    "set_rows_f32_f16": "PPPii",
    "attn_kq_f16": "PPPiiiif",
    "softmax_mask_f32": "PPPii",
    "attn_kqv_f16": "PPPiiii",
    "attn_kqv_cl_f16": "PPPiiii",
    "add_rms_norm4_f32": "PPPPPiif",
    "swiglu_f32": "PPPq",
    "rope_set_rows_f16": "PPPPiiiif",
    **{name: "PPPPPPiiiiff" for name in sorted(ATTN_FUSED_NAMES)},
    "attn_batch_f16": "PPPPPPiiiiiff",
    "attn_batch1_f16": "PPPPPPiiiiiff",
    **{name: "PPPPPPiiiiiff" for name in sorted(ATTN_MMA_NAMES)},
    "gemv_f16_f32": "PPPiii",
    "gemv_add_rms_f16_f32": "PPPPPPPiiiiif",
    "gemv_swiglu_f16_f32": "PPPPiii",
    "gemm_wmma_f16_f32": "PPPiii",
    "gemm_naive_f16_f32": "PPPiii",
    # (the wgmma build takes tensor maps by value: launched through cuda.bindings, ``_launch_ex``)
    **{name: "PPPiii" for name in GEMM_TC.values() if name not in GEMM_WG_NAMES},
    **{name: "PPPPiii" for name in GEMM_TC_SWIGLU.values() if name not in GEMM_WG_NAMES},
    "spin": "q",
    "l2_prefetch": "PqP",
    "weight_stream": "PqPqPi",
    "fill_uniform_f16": "PQQf",
    # the f16-activation kernels last (llama.cu keeps them last too): loading a function places its code in
    # device memory, and with 20 of these loaded among the others the 1B batch-1 3-stream step measured
    # 0.785 ms against 0.763 (same launches, same code; H200, alternating processes, session 22)
    "binary_f32_f16": "PPPqqi",
    "rms_norm4_f32_f16": "PPPiif",
    "add_rms_norm4_f32_f16": "PPPPPiif",
    "swiglu_f32_f16": "PPPq",
    "cast_f32_f16": "PPq",
    "gemm_naive_f16x": "PPPiii",
    "gemm_naive_swiglu_f16x": "PPPPiii",
    **{name: "PPPPPPiiiiiff" for name in sorted(ATTN_MMA_H_NAMES)},
    # (gemm_ws takes tensor maps by value and a cluster size at launch: ``_launch_ex``)
}


_CTYPES = {"P": "c_void_p", "i": "c_int", "q": "c_longlong", "Q": "c_ulonglong", "f": "c_float"}

#: the f16-activation kernels (17-64 token steps): loaded at their first launch, not with the library. Why:
#: each function the library loads places its code in device memory, and with these 31 loaded as well the
#: 1B batch-1 3-stream step measured 0.785 ms against 0.763 (the same launches and the same code for every
#: kernel it runs; H200, alternating processes, session 22; not profiled further)
ON_DEMAND = frozenset({"binary_f32_f16", "rms_norm4_f32_f16", "add_rms_norm4_f32_f16", "swiglu_f32_f16", "cast_f32_f16",
                       "gemm_naive_f16x", "gemm_naive_swiglu_f16x", *ATTN_MMA_H_NAMES, *WS_NAMES})


#: the most launch configurations (and tensor maps) a library keeps: the 8B step issues 354 launches, so a dozen
#: executors sharing one library (``runtime.bench``) stay cached; past it the least recently used go. Why a bound:
#: the caches were keyed by every (launch, stream, PDL) and (matrix, shape) ever launched, so they grew with every
#: executor a long benchmark made (other arena addresses) and with every jittered step (a spin's random cycle count
#: is a new launch), and kept each executor's parameter memory after it was freed. Dropping one is safe: the driver
#: copies a launch's parameters (tensor maps included) when it is issued or captured.
LAUNCH_CACHE_MAX = 4096


class _Recent(OrderedDict):
    """A mapping that keeps its ``limit`` most recently used entries (``get`` and stores count as use)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def get(self, key, default=None):
        value = super().get(key, default)
        if key in self:
            self.move_to_end(key)
        return value

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class _OnDemand(dict):
    """Loaded functions by name; a name in ``lazy`` is loaded (``load(name)``) at its first lookup."""

    def __init__(self, load, lazy) -> None:
        super().__init__()
        self._load, self._lazy = load, frozenset(lazy)

    def __missing__(self, name: str):
        if name not in self._lazy:
            raise KeyError(name)
        value = self[name] = self._load(name)
        return value


def pdl_supported() -> bool:
    """Whether PDL launches are possible here: they go through ``cuda.bindings`` (pycuda has no
    ``cuLaunchKernelEx``), which the ``cuda`` extra does not require."""
    return has_driver_bindings()


class KernelLibrary:
    """The compiled kernels (one cubin for this device's arch) and how to launch them.

    ``pdl=False``: pycuda prepared calls. ``pdl=True``: ``cuLaunchKernelEx`` (cuda.bindings) with
    programmatic stream serialization, so on Hopper each kernel's launch overlaps its predecessor's tail
    (the kernels wait for their predecessor with ``griddepcontrol.wait``; see llama.cu); CUDA graph
    capture keeps these as programmatic edges. Which launches use it is the executor's choice
    (``Executor(pdl_policy=...)``); the cubin is the same either way. A launch that asks an L1/shared-memory
    split (``Launch.carveout``) goes through ``cuLaunchKernelEx`` too, plain or not, where cuda.bindings is
    installed (pycuda's calls cannot carry it; without cuda.bindings the hint is dropped). ``options``:
    extra nvcc options (the GPU tests' negative control compiles ``-DPDL_NO_WAIT``).
    """

    def __init__(self, arch: str | None = None, source: Path = KERNEL_SOURCE, *, pdl: bool = False,
                 options: tuple[str, ...] = ()):
        if pdl and not pdl_supported():
            raise KernelError("KernelLibrary(pdl=True) launches through cuda.bindings, which is not installed "
                              f"({GRAPH_INSTALL}, or pdl=False)")
        # (pycuda.autoprimaryctx retains and pushes the primary context once)
        cuda = import_pycuda("runtime: KernelLibrary", context=True)
        from pycuda.compiler import compile as nvcc_compile

        dev = cuda.Context.get_device()
        if arch is None:
            major, minor = dev.compute_capability()
            # Hopper: the arch-specific target, so the wgmma build ("g") is compiled in; the cubin then runs
            # on sm_90 devices only, which is the device this library is built for
            arch = "sm_90a" if (major, minor) == (9, 0) else f"sm_{major}{minor}"
        self.arch = arch
        #: whether the registry may use Hopper's cluster features (``ops.tc_choice(..., wgmma=)``): the wgmma
        #: gemm_tc build (compiled for sm_90a, launched with tensor maps through cuda.bindings) and register
        #: builds in clusters of 16 (a non-portable size: checked below that the device holds one)
        self.wgmma = arch == "sm_90a" and pdl_supported()
        self.pdl = pdl
        self.num_sms = dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)
        self.options = tuple(options)
        fixed = [o for o in self.options if o.split("=")[0] in ("-DWG_WT", "-DWG_STAGES", "-DWG_XSTAGES")]
        if fixed:   # ops.tc_smem_bytes and the tensor maps' boxes are sized for llama.cu's own values
            raise KernelError(f"KernelLibrary(options=...): {fixed[0]} changes the wgmma build's shape, which "
                              "runtime.kernels.ops (WG_STAGES, WG_XSTAGES, TC_WARP_ROWS['g']) fixes; change those")
        self.cubin = nvcc_compile(source.read_text(), arch=arch, no_extern_c=True, options=["-O3", *self.options])
        self.module = cuda.module_from_buffer(self.cubin)
        def load_py(name: str):
            f = self.module.get_function(name)
            f.prepare(SIGNATURES[name])
            if name in SMEM_LIMITS:   # over the 48 KB a block gets without asking
                f.set_attribute(cuda.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, SMEM_LIMITS[name])
            return f

        self.funcs = _OnDemand(load_py, ON_DEMAND & set(SIGNATURES))
        for name in SIGNATURES:
            if name not in ON_DEMAND:
                self.funcs[name] = load_py(name)
        self._cu_funcs: dict = {}
        self._configs = _Recent(LAUNCH_CACHE_MAX)
        self._tmaps = _Recent(LAUNCH_CACHE_MAX)
        #: the launch attribute that carries ``Launch.carveout`` (None: cuda.bindings is missing or too old,
        #: and the hint is dropped; it changes when kernels may share an SM, never a result)
        self._carveout_attr = None
        self._cu = None   # cuda.bindings' driver module, where installed: the cuLaunchKernelEx path
        if pdl_supported():
            from cuda.bindings import driver as cu

            self._cu = cu
            self._carveout_attr = getattr(cu.CUlaunchAttributeID, "CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT",
                                          None)
            self._cu_module = check(cu.cuModuleLoadData(self.cubin), "cuModuleLoadData")
            names = {**SIGNATURES, **{n: "" for n in ((GEMM_WG_NAMES | WS_NAMES) if self.wgmma else ())}}

            def load_cu(name: str):
                sig = names.get(name, "")
                func = check(cu.cuModuleGetFunction(self._cu_module, name.encode()), f"cuModuleGetFunction({name})")
                if name in SMEM_LIMITS:
                    check(cu.cuFuncSetAttribute(
                        func, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, SMEM_LIMITS[name]),
                        f"cuFuncSetAttribute({name})")
                if name in NONPORTABLE_CLUSTER_NAMES:   # compiled with a cluster of more than 8 blocks
                    check(cu.cuFuncSetAttribute(
                        func, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
                        f"cuFuncSetAttribute({name})")
                return func, tuple(getattr(ctypes, _CTYPES[c]) for c in sig)

            self._cu_funcs = _OnDemand(load_cu, ON_DEMAND & set(names))
            for name in names:
                if name not in ON_DEMAND:
                    self._cu_funcs[name] = load_cu(name)
            if self.wgmma:
                self.wgmma = self._holds_cluster_of_16()

    def _holds_cluster_of_16(self) -> bool:
        """Whether the device can run one cluster of 16 blocks of the register build the registry splits that
        way (``ops.TC_SPLIT16_MIN_K``): a non-portable size, which a Hopper part or partition need not
        schedule. If not, the registry is told no Hopper cluster features at all (``wgmma`` False): slower,
        never a launch that fails."""
        cu = self._cu
        c = cu.CUlaunchConfig()
        c.gridDimX, c.gridDimY, c.gridDimZ = 16, 1, 1
        c.blockDimX, c.blockDimY, c.blockDimZ = 128, 1, 1
        c.sharedMemBytes = tc_smem_bytes(TC_MAX_ROWS["m"], "m")
        try:
            return check(cu.cuOccupancyMaxActiveClusters(self._cu_funcs[GEMM_TC[16, "m"]][0], c),
                         "cuOccupancyMaxActiveClusters") >= 1
        except Exception:  # noqa: BLE001 - a driver without the query, or one that refuses the size
            return False

    def preload(self, names) -> None:
        """Loads the on-demand functions (``ON_DEMAND``) among ``names`` now, through both launch paths: the
        executor calls it while it builds a step, so no function is first loaded inside a stream capture."""
        for name in set(names) & ON_DEMAND:
            if name in SIGNATURES:
                self.funcs[name]
            if self._cu is not None and (name in SIGNATURES or (self.wgmma and name in WS_NAMES)):
                self._cu_funcs[name]

    def with_pdl(self, pdl: bool) -> KernelLibrary:
        """The same kernels launched the other way (compiles again; cheap with pycuda's cache)."""
        return KernelLibrary(self.arch, pdl=pdl, options=self.options)

    def launch(self, ln: Launch, stream, pdl: bool = False) -> None:
        """Launch on ``stream``; with PDL only if this library uses it and ``pdl`` (the caller says
        whether the previous operation on the stream was a kernel and the policy allows it: see
        ``Executor``; plain by default, so a new caller never gets a programmatic edge by accident)."""
        smem = dynamic_smem(ln)
        if ln.kernel in GEMM_WG_NAMES or ln.kernel in WS_NAMES:
            if not self.wgmma:
                raise KernelError(f"{ln.kernel} needs sm_90a and cuda.bindings (KernelLibrary.wgmma is False here)")
            self._launch_ex(ln, stream, smem, self.pdl and pdl)
            return
        pdl = self.pdl and pdl
        if ln.kernel in NONPORTABLE_CLUSTER_NAMES:   # its attribute is set on cuda.bindings' function only
            if self._cu is None:
                raise KernelError(f"{ln.kernel} (a cluster of more than 8 blocks) launches through cuda.bindings, "
                                  "which is not installed (the registry picks it only with KernelLibrary.wgmma)")
            self._launch_ex(ln, stream, smem, pdl)
            return
        if not pdl and (ln.carveout < 0 or self._carveout_attr is None):
            kw = {"shared_size": smem} if smem else {}
            self.funcs[ln.kernel].prepared_async_call(ln.grid, ln.block, stream, *ln.args, **kw)
            return
        self._launch_ex(ln, stream, smem, pdl)

    def _launch_ex(self, ln: Launch, stream, smem: int, pdl: bool) -> None:
        """``cuLaunchKernelEx``: the PDL launches, the launches that ask a split (``Launch.carveout``), and every
        launch of the wgmma build (its tensor maps go by value): what pycuda's prepared calls cannot pass. The
        configuration is built once per (launch,
        stream, pdl) and kept, with the parameter memory it points to, among the ``LAUNCH_CACHE_MAX`` last used."""
        cu = self._cu
        key = (ln, stream.handle, pdl)
        cfg = self._configs.get(key)
        if cfg is None:
            c = cu.CUlaunchConfig()
            c.gridDimX, c.gridDimY, c.gridDimZ = ln.grid
            c.blockDimX, c.blockDimY, c.blockDimZ = ln.block
            c.sharedMemBytes = smem
            c.hStream = cu.CUstream(int(stream.handle))
            attrs = []
            if pdl:
                attr = cu.CUlaunchAttribute()
                attr.id = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
                attr.value.programmaticStreamSerializationAllowed = 1
                attrs.append(attr)
            if ln.kernel in WS_NAMES:   # gemm_ws: its K split is the launch's cluster (its last argument)
                attr = cu.CUlaunchAttribute()
                attr.id = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
                attr.value.clusterDim.x, attr.value.clusterDim.y, attr.value.clusterDim.z = ln.args[-1], 1, 1
                attrs.append(attr)
            if ln.carveout >= 0 and self._carveout_attr is not None:
                attr = cu.CUlaunchAttribute()
                attr.id = self._carveout_attr
                attr.value.sharedMemCarveout = ln.carveout
                attrs.append(attr)
            if attrs:
                c.attrs = attrs
                c.numAttrs = len(attrs)
            func, types = self._cu_funcs[ln.kernel]
            if ln.kernel in GEMM_WG_NAMES or ln.kernel in WS_NAMES:   # a void* array's address (kept in the config)
                keep = self._ws_params(ln) if ln.kernel in WS_NAMES else self._wg_params(ln)
                params = ctypes.addressof(keep[0])
            else:
                keep, params = None, (ln.args, types)
            cfg = self._configs[key] = (c, func, params, keep)
        c, func, params, _keep = cfg
        err = cu.cuLaunchKernelEx(c, func, params, 0)[0]
        if err != cu.CUresult.CUDA_SUCCESS:
            check((err,), f"cuLaunchKernelEx({ln.kernel})")

    def _wg_params(self, ln: Launch) -> tuple:
        """The wgmma build's kernel parameters as a ``void*`` array (with the objects it points into): a
        tensor map per weight matrix ([N, K] f16, boxes of 64 k x a block's rows, 128-byte swizzle: the layout
        wgmma reads) and one for x ([M, K] f32, boxes of 64 x 64, rows past M read as zero), then y, M, N, K
        (llama.cu GEMM_WG_KERNELS)."""
        *weights, x, y, M, N, K = ln.args
        rows = 8 * TC_WARP_ROWS["g"]   # a block's weight rows (SwiGLU: half from the gate, half from the up matrix)
        box = rows // 2 if len(weights) == 2 else rows
        maps = [self._tmap(w, N, K, box) for w in weights] + [self._tmap(x, M, K, None)]
        scalars = [ctypes.c_void_p(y), ctypes.c_int(M), ctypes.c_int(N), ctypes.c_int(K)]
        ptrs = (ctypes.c_void_p * (len(maps) + 4))(*[int(m.getPtr()) for m in maps],
                                                    *[ctypes.addressof(v) for v in scalars])
        return ptrs, maps, scalars

    def _ws_params(self, ln: Launch) -> tuple:
        """gemm_ws's kernel parameters as a ``void*`` array: a tensor map per weight matrix ([N, K] f16, boxes
        of 64 k x the block's rows, SwiGLU half of them, 128-byte swizzle), one for the f16 x ([M, K], boxes of
        64 x 64, swizzled: wgmma reads it where TMA puts it), then y, M, N, K and the cluster size."""
        *weights, x, y, M, N, K, cl = ln.args
        nc, wt, _st = WS_BUILDS[ln.kernel]
        rows = 64 * wt * nc
        box = rows // 2 if len(weights) == 2 else rows
        maps = [self._tmap(w, N, K, box) for w in weights] + [self._tmap(x, M, K, 64)]
        scalars = [ctypes.c_void_p(y), ctypes.c_int(M), ctypes.c_int(N), ctypes.c_int(K), ctypes.c_int(cl)]
        ptrs = (ctypes.c_void_p * (len(maps) + 5))(*[int(m.getPtr()) for m in maps],
                                                    *[ctypes.addressof(v) for v in scalars])
        return ptrs, maps, scalars

    def _tmap(self, ptr: int, rows: int, K: int, box_rows: int | None):
        """One tensor map (``cuTensorMapEncodeTiled``, host only: safe inside a stream capture) of a [rows, K]
        matrix, kept per (matrix, shape) among the ``LAUNCH_CACHE_MAX`` last used: f16 weights in swizzled boxes of 64 k x
        ``box_rows``, or (``box_rows`` None) f32 x in plain boxes of 64 x 64."""
        key = (box_rows, ptr, rows, K)
        m = self._tmaps.get(key)
        if m is None:
            cu = self._cu
            T = cu.CUtensorMapDataType
            dt, elem, box = (T.CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, (64, box_rows)) if box_rows is not None else \
                (T.CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, (64, 64))
            swz = cu.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_128B if box_rows is not None else cu.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_NONE
            m = check(cu.cuTensorMapEncodeTiled(
                dt, 2, ptr, [cu.cuuint64_t(K), cu.cuuint64_t(rows)], [cu.cuuint64_t(K * elem)],
                [cu.cuuint32_t(b) for b in box], [cu.cuuint32_t(1), cu.cuuint32_t(1)],
                cu.CUtensorMapInterleave.CU_TENSOR_MAP_INTERLEAVE_NONE, swz,
                cu.CUtensorMapL2promotion.CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                cu.CUtensorMapFloatOOBfill.CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE), "cuTensorMapEncodeTiled")
            self._tmaps[key] = m
        return m
