"""The process state torch builds lazily, once a process, that an export must neither take for ``forward``'s change nor
leave built from the watches' wrappers: the SDP priority order torch's first CUDA attention sets, and Dynamo's table
of the torch functions it handles itself.

Why: both are made at their first use, which may fall inside a watched export; read across it, the first made the
module look like one that leaves a setting changed (an H200's first attention), and the second kept the watches'
wrappers as keys for good (every later strict export reading ``torch.is_grad_enabled()`` failed in Dynamo).
"""

from __future__ import annotations

from typing import Any

#: the modules whose once-a-process tables (``functools.cache`` functions) Dynamo builds from the torch functions and
#: Tensor methods as they are when first asked: ``tracing_state_functions`` (the tracing flags it folds, round 68's
#: wrapped ``is_compiling``), ``TorchInGraphFunctionVariable._get_handlers``, ``trace_rules``' rule maps
_DYNAMO_MODULES = ("torch._dynamo.variables.torch", "torch._dynamo.trace_rules")


def _dynamo_tables() -> list[Any]:
    """The cached table functions of ``_DYNAMO_MODULES`` (and their classes' static ones), where Dynamo is imported."""
    import sys

    def cached(obj: Any) -> bool:
        return callable(getattr(obj, "cache_info", None)) and callable(getattr(obj, "cache_clear", None))

    found = []
    for module_name in _DYNAMO_MODULES:
        module = sys.modules.get(module_name)
        for obj in list(vars(module).values()) if module is not None else ():
            if cached(obj):
                found.append(obj)
            elif isinstance(obj, type) and obj.__module__ == module_name:
                found.extend(v for v in vars(obj).values() if cached(getattr(v, "__func__", v)))
    return [getattr(f, "__func__", f) for f in found]


def dynamo_handlers_built() -> frozenset[int]:
    """The ids of Dynamo's tables built already (``forget_dynamo_handlers``)."""
    return frozenset(id(get) for get in _dynamo_tables() if get.cache_info().currsize > 0)


def forget_dynamo_handlers(built_before: frozenset[int]) -> None:
    """Drop each of Dynamo's once-a-process tables built during an export (``built_before``: ``dynamo_handlers_built()``
    before it), while the export's watches had ``torch.is_grad_enabled``, the tracing flags and ``torch.Tensor``'s value
    getters patched: Dynamo builds them again from torch's own functions at its next trace.

    Why: each is built once per process from the functions as they are then; a ``forward`` that ran Dynamo inside the
    watched export (``torch.cond`` traces its branches) built them from the watches' wrappers, for good, and every
    later strict export failed in Dynamo: "torch.* op returned non-Tensor" (round 54: ``_get_handlers`` after
    tests/test_aten_round51.py's ``torch.cond`` module; round 68: ``tracing_state_functions`` keyed by the wrapped
    ``torch.compiler.is_compiling``, so the real one was no longer folded: a tiny Mistral's strict export after a
    compiled ``torch.cond``). Importing Dynamo to build them before
    the watches would cost every compile seconds."""
    for get in _dynamo_tables():
        if id(get) not in built_before and get.cache_info().currsize > 0:
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
