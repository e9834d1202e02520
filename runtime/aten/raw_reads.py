"""Whether ``forward``'s code reads attributes past the class's ``__getattribute__`` (``object.__getattribute__(cfg,
"k")``), which the export's watch of a settings object's reads (``object_reads``) does not see.

Why: the guard watches only the fields of a settings object that the export saw ``forward`` read by name
(``Program.read_watched``). ``object.__getattribute__(cfg, "k")`` goes past the class's (patched)
``__getattribute__``: ``k`` was no recorded read, so unwatched, and ``cfg.k = 3.0`` after compile ran the export's
2.0 silently (round 66). Where the code of the module tree (its classes' methods, the functions they name as globals,
one level, the functions held as attributes and the forward hooks) names ``__getattribute__``, no settings object is taken as read by
name: all their plain fields are watched, as for one read wholesale (``vars(cfg)``).
"""

from __future__ import annotations

import inspect
from typing import Any

#: the names by which code reads an attribute past its class's ``__getattribute__``
_RAW = frozenset({"__getattribute__"})


def reads_past_getattribute(torch: Any, module: Any) -> bool:
    """Whether the code ``forward`` may run (see the module's docstring) names ``__getattribute__``."""
    from .code_names import _code_names, _functions, _installed
    from .settings import user_class

    if not isinstance(module, torch.nn.Module):
        return False
    functions: list[Any] = []
    classes: list[type] = []
    for m in module.modules():
        for cls in type(m).__mro__:
            if cls not in classes and user_class(cls) and not _installed(cls):
                classes.append(cls)
        functions += [v for v in vars(m).values() if inspect.isfunction(v)]
    for cls in classes:
        functions += _functions(cls)
    from .hook_state import _forward_hooks

    for hook in _forward_hooks(torch, module):   # (a hook's ``object.__getattribute__(cfg, "k")``)
        fn = getattr(hook, "__func__", hook)
        if inspect.isfunction(fn):
            functions.append(fn)
    seen: set[int] = set()
    for fn in functions:
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        names = _code_names(fn.__code__)
        if names & _RAW:
            return True
        g = fn.__globals__
        for name in names:   # (a helper of the module's file: ``def read(cfg): return object.__getattribute__...``)
            h = g.get(name)
            if inspect.isfunction(h) and id(h) not in seen and user_class(h) and _code_names(h.__code__) & _RAW:
                return True
    return False
