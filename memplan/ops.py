"""The op vocabulary and hardware constants that several steps must read the same way.

A view op must mean "no kernel, no bytes" to the cost model, the device split and every runtime alike,
and a ``COPY`` node must mean "a transfer between devices" to the split, the verifier and the multi-GPU
runtime; when each kept its own list they drifted. The roofline below is the one every estimate uses
(examples, importers, the cost model), so simulated makespans compare like with like.
"""

from __future__ import annotations

#: the op of a node that moves one tensor to another device (``memplan.devices`` inserts them)
COPY_OP = "COPY"
#: ops that produce a view of their input: no kernel runs and no bytes move
VIEW_OPS = frozenset({"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE", "NONE", "NOP"})

#: roofline of an H100 SXM: HBM bytes/us, f16 tensor FLOP/us, and a per-kernel floor in us
HBM_BYTES_PER_US = 3.0e6
FLOP_PER_US = 4.0e8
KERNEL_FLOOR_US = 2.0


def roofline_us(flops: float, nbytes: float) -> float:
    """Microseconds of one kernel doing ``flops`` over ``nbytes`` on the roofline above."""
    return round(max(flops / FLOP_PER_US, nbytes / HBM_BYTES_PER_US, KERNEL_FLOOR_US), 3)
