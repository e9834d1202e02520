"""Tuning aids and diagnostics run by hand on a GPU, not by the tests: ``python -m runtime.tools.X``.

``profile`` (per-kernel times of a step), ``attn_tune`` (compile-time variants of the decode-attention
kernel), ``pdl_check`` (does a PDL launch policy keep the serial bits?). They time kernels the same way
(``runtime.cuda_util.graph_us``: back-to-back launches in one CUDA graph). ``compare_launches`` needs no
GPU: the launches of a one-GPU plan and of a split plan of the same graph, diffed (the CPU tests use it).
"""
