"""The process state torch builds lazily, once a process, that an export must neither take for ``forward``'s change nor
leave built from the watches' wrappers: the SDP priority order torch's first CUDA attention sets, and Dynamo's table
of the torch functions it handles itself.

Why: both are made at their first use, which may fall inside a watched export; read across it, the first made the
module look like one that leaves a setting changed (an H200's first attention), and the second kept the watches'
wrappers as keys for good (every later strict export reading ``torch.is_grad_enabled()`` failed in Dynamo).
"""

from __future__ import annotations

from typing import Any


def _dynamo_handlers() -> Any:
    """Dynamo's table of the torch functions it handles itself (``TorchInGraphFunctionVariable._get_handlers``, a
    ``functools.cache``), or None where Dynamo is not imported or has none."""
    import sys

    module = sys.modules.get("torch._dynamo.variables.torch")
    get = getattr(getattr(module, "TorchInGraphFunctionVariable", None), "_get_handlers", None)
    return get if callable(getattr(get, "cache_info", None)) and callable(getattr(get, "cache_clear", None)) else None


def dynamo_handlers_built() -> bool:
    """Whether Dynamo has built its table of torch functions yet (``forget_dynamo_handlers``)."""
    get = _dynamo_handlers()
    return get is not None and get.cache_info().currsize > 0


def forget_dynamo_handlers(built_before: bool) -> None:
    """Drop Dynamo's table of the torch functions it handles itself where it was built during an export
    (``built_before``: ``dynamo_handlers_built()`` before it), while the export's watches had ``torch.is_grad_enabled``
    and the other getters patched (``watch_mode_reads``, ``watch_default_dtype_reads``): Dynamo builds it again from
    torch's own functions at its next trace.

    Why: the table is built once per process and keyed by the functions themselves; a ``forward`` that ran Dynamo
    inside the watched export (``torch.cond`` traces its branches) built it with the watches' wrappers as keys, for
    good, and every later strict export of a layer reading ``torch.is_grad_enabled()`` (``nn.MultiheadAttention``'s
    fast-path check) failed in Dynamo: "torch.* op returned non-Tensor" (round 54: after tests/test_aten_round51.py's
    ``torch.cond`` module). Importing Dynamo to build it before the watches would cost every compile seconds."""
    get = _dynamo_handlers()
    if get is not None and not built_before and get.cache_info().currsize > 0:
        get.cache_clear()


def settle_lazy_defaults(torch: Any) -> None:
    """Let torch make the process-setting changes it makes once, lazily, before they are read and compared.

    Why: on a GPU that prefers cuDNN attention (Hopper and later), torch's first choice of an SDPA kernel on
    CUDA sets the SDP priority order to cuDNN-first (``sdp_utils.cpp``'s ``priority_order``), once per process.
    An export whose ``forward`` was the process's first CUDA attention saw ``set_sdp_priority_order`` change
    across it and refused the module as one that leaves a setting changed (session 41: f32 Mixtral on an H200,
    first test of the GPU suite); an executor built before the first one would see the flag change at its next
    call. One kernel choice over tiny tensors on the current device (nothing runs) settles it. CUDA that is not
    initialized is left so: a program on the CPU does not start it."""
    cuda = getattr(torch, "cuda", None)
    choose = getattr(torch, "_fused_sdp_choice", None)
    if cuda is None or choose is None or not cuda.is_available() or not cuda.is_initialized():
        return
    try:
        q = torch.zeros((1, 1, 1, 8), dtype=torch.float16, device="cuda")
        choose(q, q, q)
    except RuntimeError:   # (every SDP kernel turned off: torch's choice raises, and sets nothing)
        return
