"""The tensors a source line names that torch.export refused to trace (a branch on a global tensor's value, ``if T >
1:``; a read through its memory, ``T.numpy()``): the globals and closure variables ``forward``'s code and its hooks
name, the module tree's plain tensor attributes and its registered buffers.

Why a module of its own: both refusals name them alike (``value_reads.branch_refused``,
``value_refusals.numpy_read_refusal``), and ``value_refusals`` took these from ``value_reads``, which calls it: a
circle of imports. Both now take them from here.
"""

from __future__ import annotations

import re
from typing import Any

#: the importer's note of the line torch.export refused (``common``) (a function's name: ``forward``, or ``<lambda>``,
#: ``<listcomp>``: round 65, a read in a lambda hook was torch's raw refusal, its line unmatched)
_AT_CODE = re.compile(r"\(at ([^():]+:\d+) in [\w<>.]+: `(.*)`\)")
_PLACE_NAME = re.compile(r"the (?:global|closure variable) (\w+)")


def _named_tensors(torch: Any, module: Any, code: str) -> list[str]:
    """The labels of the tensors in the globals and closure variables ``forward``'s code names, and the module tree's
    plain tensor attributes, that the source line ``code`` names (``T``, ``self.t``)."""
    from .python_state import python_state

    words = set(re.findall(r"[A-Za-z_]\w*", code))
    attrs = set(re.findall(r"\.([A-Za-z_]\w*)", code))
    out: list[str] = []
    try:
        places = python_state(torch, module)
    except Exception:  # noqa: BLE001 - naming is an extra: torch's own refusal stands where the walk fails
        places = []
    for p in places:
        name = _PLACE_NAME.match(p.label)
        if name is not None and name[1] in words and isinstance(p.value, torch.Tensor):
            out.append(p.label)
    out += _hook_tensors(torch, module, words)
    if isinstance(module, torch.nn.Module):
        for path, m in module.named_modules():
            for name, v in list(vars(m).items()):   # (plain ones: a buffer is the export's input, no constant)
                if name in attrs and isinstance(v, torch.Tensor):
                    where = f"{type(module).__name__}.{path}" if path else type(module).__name__
                    out.append(f"the tensor {where}.{name}")
    return list(dict.fromkeys(out))


def _hook_tensors(torch: Any, module: Any, words: set[str]) -> list[str]:
    """The labels of the tensors in the globals the tree's forward hooks name that ``words`` (a source line's) name.
    Why: a hook's branch on a global tensor (a lambda hook, ``out * 2 if T > 1 else out``) was torch's raw
    refusal: the names above are ``forward``'s alone (round 65)."""
    from .hook_state import hook_roots

    try:
        roots = hook_roots(torch, module) if isinstance(module, torch.nn.Module) else []
    except Exception:  # noqa: BLE001 - naming is an extra: torch's own refusal stands where the walk fails
        return []
    out = [label for label, v in roots if isinstance(v, torch.Tensor)
           and (name := _PLACE_NAME.match(label)) is not None and name[1] in words]
    from .hook_state import _filled, _forward_hooks

    for hook in _forward_hooks(torch, module) if isinstance(module, torch.nn.Module) else ():
        fn = getattr(hook, "__func__", hook)   # (its closure's variables by name: ``hook_roots`` names none)
        code = getattr(fn, "__code__", None)
        for var, cell in zip(code.co_freevars if code is not None else (), getattr(fn, "__closure__", None) or ()):
            if var in words and _filled(cell) and isinstance(cell.cell_contents, torch.Tensor):
                out.append(f"the closure variable {var} of hook {fn.__qualname__}")
    return list(dict.fromkeys(out))


def _named_buffers(torch: Any, module: Any, code: str) -> list[str]:
    """The labels of the module tree's registered buffers (``register_buffer``) that the source line ``code`` names as
    attributes (``self.t``)."""
    attrs = set(re.findall(r"\.([A-Za-z_]\w*)", code))
    out: list[str] = []
    if isinstance(module, torch.nn.Module):
        for path, m in module.named_modules():
            where = f"{type(module).__name__}.{path}" if path else type(module).__name__
            out += [f"the buffer {where}.{name}" for name, b in m._buffers.items() if name in attrs and b is not None]
    return out
