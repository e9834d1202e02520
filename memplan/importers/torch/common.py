"""What every step of the torch import shares: loading torch on call, op names, export failures' advice.

Why a module of its own: tracing, loading, checking and translating all name ops and explain export failures; one
spelling keeps their messages the same.
"""

from __future__ import annotations

import re
import threading

from ...errors import MemplanError
from .. import first_line


def _need_torch():
    try:
        import torch
    except ImportError:
        raise MemplanError("the torch importer needs PyTorch: pip install 'memplan[torch]'") from None
    return torch


#: fake-tensor exceptions whose message is the op's name alone, and what they mean
_FAKE_FAILURES = {
    "DynamicOutputShapeException": "its output shape depends on its input's values (no fake kernel can size it)",
    "DataDependentOutputException": "its output depends on its input's values (no fake kernel can compute it)",
    "UnsupportedOperatorException": "no fake kernel (meta implementation) for it",
}


def _export_failure(exc: BaseException) -> str:
    """An export failure in one line. Why not ``first_line`` alone: torch's fake-tensor exceptions carry only
    the op's name (``linalg_lstsq``: "torch.export failed for M: aten.linalg_lstsq.default"), which said
    neither what failed nor why."""
    first = first_line(exc)
    why = _FAKE_FAILURES.get(type(exc).__name__)
    if why is not None and " " not in first:
        return f"{first}: {why} ({type(exc).__name__})"
    unknown = _UNKNOWN_OUTPUT.search(first)
    if unknown:   # (torch's advice, registering a pytree, is not what a caller of a library model does)
        return f"{first.split('. ')[0]}: {_output_advice(unknown[1])}"
    return first


#: torch.export's message for a forward returning an object it cannot flatten (transformers' ``DynamicCache``)
_UNKNOWN_OUTPUT = re.compile(r"Found <class '([^']+)'> in output, which is not a known type")


def _output_advice(type_name: str) -> str:
    """What to pass for a forward that returns a ``type_name`` torch.export cannot flatten. Why: a tiny GPT-2
    built from a config (``from_torch(model, (ids,))``) failed with torch's advice to register a pytree for
    ``DynamicCache``, where the KV cache is merely an option of the model's forward."""
    if type_name.rsplit(".", 1)[-1].endswith("Cache"):
        return "the forward returns its KV cache; pass kwargs={'use_cache': False} (or a cache the export takes)"
    return "make the forward return tensors, tuples, lists or dicts"


#: non-view ops whose result keeps its input's storage offset, in a storage like the input's (torch's
#: ``clone_preserve_strides``): results torch's fake-tensor cache rebuilds otherwise (``_traced``)
_KEEPS_STORAGE = frozenset({"slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter"})


#: one export (or decomposition) at a time in the process (``_traced``; ``runtime.aten.program.load_program`` holds it
#: around its whole export, state snapshots included). Why: torch's export is not thread-safe (its module-hierarchy
#: global, the proxy mode's slot), so two threads exporting at once (``runtime.aten.compile`` of two modules) failed in
#: torch ("ProxyTorchDispatchMode slot already occupied", "_EXPORT_MODULE_HIERARCHY must not be None", "Trying to pop
#: empty mode stack"), each naming its module as the failure. Reentrant: held by a caller around its own exports
EXPORT_LOCK = threading.RLock()


def _target_name(target) -> str:
    """An FX target as messages name it: an ATen op as torch prints it (``aten.add.Tensor``), a Python function
    by its qualified name (its repr carries a memory address: messages differed from run to run)."""
    if callable(target) and not hasattr(target, "_schema") and hasattr(target, "__qualname__"):
        return f"{getattr(target, '__module__', None) or '?'}.{target.__qualname__}"
    return str(target)


def _op_name(target) -> str:
    s = str(target)
    s = s[len("aten."):] if s.startswith("aten.") else s
    return s.removesuffix(".default")
