"""The kernels: ``llama.cu``, the registry that maps nodes to launches, and the library that runs them.

``ops`` (one node's kernels per op family), ``fused`` (fusion groups as one kernel), ``registry``
(``plan_launches``: every node of a graph), ``library`` (``KernelLibrary``: compile and launch; the only
part that imports pycuda, and only when created).
"""

from .library import KERNEL_SOURCE, SIGNATURES, KernelLibrary
from .ops import (
                  ATTN_CLUSTER,
                  ATTN_FUSED,
                  ATTN_FUSED_NAMES,
                  ATTN_MAXCHUNK,
                  ATTN_MMA,
                  ATTN_MMA_NAMES,
                  GEMM_TC,
                  GEMM_TC_NAMES,
                  GEMM_TC_SWIGLU,
                  GEMV_NORM_OFF,
                  MEMCPY,
                  RMS_EPS,
                  ROPE_BASE,
                  KernelError,
                  Launch,
                  dynamic_smem,
                  gemm_tc_launch,
                  gemm_tc_shape,
                  gemv_rows_per_block,
                  mul_mat_launch,
                  node_launches,
)
from .registry import counter_bytes, launches_for, plan_launches

__all__ = ["ATTN_CLUSTER", "ATTN_FUSED", "ATTN_FUSED_NAMES", "ATTN_MAXCHUNK", "ATTN_MMA", "ATTN_MMA_NAMES", "GEMM_TC", "GEMM_TC_NAMES", "GEMM_TC_SWIGLU", "GEMV_NORM_OFF", "KERNEL_SOURCE", "MEMCPY", "RMS_EPS", "ROPE_BASE",
           "SIGNATURES", "KernelError", "KernelLibrary", "Launch", "counter_bytes", "dynamic_smem", "gemm_tc_launch", "gemm_tc_shape", "gemv_rows_per_block",
           "launches_for", "mul_mat_launch", "node_launches", "plan_launches"]
