"""The kernel library: ``kernels/llama.cu`` compiled once per process for the device's arch, and launched.

Only this module touches pycuda (when a ``KernelLibrary`` is created); ``Launch`` records come from the
registry (``runtime.kernels.registry``).
"""

from __future__ import annotations

from pathlib import Path

from ..cuda_util import check
from .ops import ATTN_MMA, GEMM_TC, GEMM_TC_SWIGLU, SMEM_LIMITS, KernelError, Launch, dynamic_smem

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
    "attn_fused_f16": "PPPPPPiiiiff",
    "attn_batch_f16": "PPPPPPiiiiiff",
    "attn_batch1_f16": "PPPPPPiiiiiff",
    **{name: "PPPPPPiiiiiff" for name in ATTN_MMA.values()},
    "gemv_f16_f32": "PPPiii",
    "gemv_add_rms_f16_f32": "PPPPPPPiiiiif",
    "gemv_swiglu_f16_f32": "PPPPiii",
    "gemm_wmma_f16_f32": "PPPiii",
    "gemm_naive_f16_f32": "PPPiii",
    **{name: "PPPiii" for name in GEMM_TC.values()},
    **{name: "PPPPiii" for name in GEMM_TC_SWIGLU.values()},
    "spin": "q",
    "l2_prefetch": "PqP",
    "fill_uniform_f16": "PQQf",
}


_CTYPES = {"P": "c_void_p", "i": "c_int", "q": "c_longlong", "Q": "c_ulonglong", "f": "c_float"}


def pdl_supported() -> bool:
    """Whether PDL launches are possible here: they go through ``cuda.bindings`` (pycuda has no
    ``cuLaunchKernelEx``), which the ``cuda`` extra does not require."""
    try:
        import cuda.bindings.driver  # noqa: F401
    except ImportError:
        return False
    return True


class KernelLibrary:
    """The compiled kernels (one cubin for this device's arch) and how to launch them.

    ``pdl=False``: pycuda prepared calls. ``pdl=True``: ``cuLaunchKernelEx`` (cuda.bindings) with
    programmatic stream serialization, so on Hopper each kernel's launch overlaps its predecessor's tail
    (the kernels wait for their predecessor with ``griddepcontrol.wait``; see llama.cu); CUDA graph
    capture keeps these as programmatic edges. Which launches use it is the executor's choice
    (``Executor(pdl_policy=...)``); the cubin is the same either way. ``options``: extra nvcc options
    (the GPU tests' negative control compiles ``-DPDL_NO_WAIT``).
    """

    def __init__(self, arch: str | None = None, source: Path = KERNEL_SOURCE, *, pdl: bool = False,
                 options: tuple[str, ...] = ()):
        if pdl and not pdl_supported():
            raise KernelError("KernelLibrary(pdl=True) launches through cuda.bindings, which is not installed "
                              "(pip install cuda-python, or pdl=False)")
        import pycuda.autoprimaryctx  # noqa: F401  (retains and pushes the primary context once)
        import pycuda.driver as cuda
        from pycuda.compiler import compile as nvcc_compile

        dev = cuda.Context.get_device()
        if arch is None:
            major, minor = dev.compute_capability()
            arch = f"sm_{major}{minor}"
        self.arch = arch
        self.pdl = pdl
        self.num_sms = dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)
        self.options = tuple(options)
        self.cubin = nvcc_compile(source.read_text(), arch=arch, no_extern_c=True, options=["-O3", *self.options])
        self.module = cuda.module_from_buffer(self.cubin)
        self.funcs = {}
        for name, sig in SIGNATURES.items():
            f = self.module.get_function(name)
            f.prepare(sig)
            if name in SMEM_LIMITS:   # over the 48 KB a block gets without asking
                f.set_attribute(cuda.function_attribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, SMEM_LIMITS[name])
            self.funcs[name] = f
        self._cu_funcs: dict = {}
        self._configs: dict = {}
        if pdl:
            import ctypes

            from cuda.bindings import driver as cu

            self._cu = cu
            self._cu_module = check(cu.cuModuleLoadData(self.cubin), "cuModuleLoadData")
            for name, sig in SIGNATURES.items():
                func = check(cu.cuModuleGetFunction(self._cu_module, name.encode()), f"cuModuleGetFunction({name})")
                if name in SMEM_LIMITS:
                    check(cu.cuFuncSetAttribute(
                        func, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, SMEM_LIMITS[name]),
                        f"cuFuncSetAttribute({name})")
                self._cu_funcs[name] = (func, tuple(getattr(ctypes, _CTYPES[c]) for c in sig))

    def with_pdl(self, pdl: bool) -> KernelLibrary:
        """The same kernels launched the other way (compiles again; cheap with pycuda's cache)."""
        return KernelLibrary(self.arch, pdl=pdl, options=self.options)

    def launch(self, ln: Launch, stream, pdl: bool = False) -> None:
        """Launch on ``stream``; with PDL only if this library uses it and ``pdl`` (the caller says
        whether the previous operation on the stream was a kernel and the policy allows it: see
        ``Executor``; plain by default, so a new caller never gets a programmatic edge by accident)."""
        smem = dynamic_smem(ln)
        if not (self.pdl and pdl):
            kw = {"shared_size": smem} if smem else {}
            self.funcs[ln.kernel].prepared_async_call(ln.grid, ln.block, stream, *ln.args, **kw)
            return
        cu = self._cu
        key = (ln, stream.handle)
        cfg = self._configs.get(key)
        if cfg is None:
            c = cu.CUlaunchConfig()
            c.gridDimX, c.gridDimY, c.gridDimZ = ln.grid
            c.blockDimX, c.blockDimY, c.blockDimZ = ln.block
            c.sharedMemBytes = smem
            c.hStream = cu.CUstream(int(stream.handle))
            attr = cu.CUlaunchAttribute()
            attr.id = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
            attr.value.programmaticStreamSerializationAllowed = 1
            c.attrs = [attr]
            c.numAttrs = 1
            func, types = self._cu_funcs[ln.kernel]
            cfg = self._configs[key] = (c, func, (ln.args, types))
        c, func, params = cfg
        err = cu.cuLaunchKernelEx(c, func, params, 0)[0]
        if err != cu.CUresult.CUDA_SUCCESS:
            check((err,), f"cuLaunchKernelEx({ln.kernel})")
