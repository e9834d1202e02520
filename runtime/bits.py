"""Bit-for-bit equality of arrays and tensors: what the runtime's "bitwise" checks mean.

Why: ``np.array_equal`` and ``torch.equal`` compare float *values*. A NaN never equals itself, so two runs
that wrote the same NaN bits were reported "not bitwise equal" (``compare_launches --emulate`` of a step whose
outputs hold a NaN, a poisoned byte read through); and -0.0 equals 0.0, so other bits passed as equal.
Deterministic kernels give the same bits, NaN payloads and signed zeros included: these compare the bits,
each element viewed as an unsigned integer of its own width. Pure numpy; torch only when handed tensors.
"""

from __future__ import annotations

import numpy as np


def same_bits(a, b) -> bool:
    """Whether ``a`` and ``b`` (numpy arrays or anything ``np.asarray`` takes) have the same shape, dtype and
    bytes, element for element."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    width = np.dtype(f"u{a.itemsize}") if a.itemsize in (1, 2, 4, 8) else np.dtype(np.uint8)
    return bool(np.array_equal(np.ascontiguousarray(a).reshape(-1).view(width),
                               np.ascontiguousarray(b).reshape(-1).view(width)))


def same_tensor_bits(a, b) -> bool:
    """``same_bits`` for two torch tensors (on any one device): same shape, dtype and bits."""
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_quantized or b.is_quantized:   # viewing one's storage as uint8 crashed the process (a segfault)
        return (a.is_quantized and b.is_quantized and _qparams(torch, a) == _qparams(torch, b)
                and same_tensor_bits(a.int_repr(), b.int_repr()))
    if a.layout != torch.strided or b.layout != torch.strided:   # sparse: its elements, as a dense tensor's
        return a.layout == b.layout and same_tensor_bits(a.to_dense(), b.to_dense())
    if a.dtype == torch.bool:
        return bool(torch.equal(a, b))
    a, b = a.resolve_conj().resolve_neg(), b.resolve_conj().resolve_neg()   # (viewing a conj view's bytes raised)
    width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}.get(a.element_size(), torch.uint8)
    return bool(torch.equal(a.contiguous().reshape(-1).view(width), b.contiguous().reshape(-1).view(width)))


def _qparams(torch, t) -> tuple:
    """A quantized tensor's scheme and parameters, compared by their bits (a scale is a float)."""
    scheme = t.qscheme()
    if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return scheme, float(t.q_scale()).hex(), int(t.q_zero_point())
    return (scheme, t.q_per_channel_axis(), t.q_per_channel_scales().double().numpy().tobytes(),
            t.q_per_channel_zero_points().numpy().tobytes())
