"""Where a module's code reads a tensor's ``.data``, for torch.export's refusal of the constant that read makes.

Why: a ``forward`` that reads ``self.w.data`` (or writes through it, ``self.b.data.copy_(x)``) fails in torch.export
after the trace with "We found a fake tensor in the exported program constant's list ... model attribute:
lifted_tensor_0. Please file an issue on github": no line of the model, no word of ``.data``, and advice to report
a bug. The trace has ended when torch raises, so no frame of the model is on the traceback; the model's own source
is read instead (the functions of its modules' classes, torch's own left out), only after that failure.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from typing import Any

#: torch.export's message for a tensor of the trace that is neither a parameter, buffer, constant nor input
LIFTED_FAKE = "We found a fake tensor in the exported program constant's list"
#: the attribute torch names in it (``lifted_tensor_0``)
_ATTRIBUTE = re.compile(r"model attribute: ([\w.]+?)\.? ")


def _functions(cls: type) -> list[Any]:
    """The plain functions of ``cls``'s own namespace (methods, static and class methods' functions)."""
    out = []
    for v in vars(cls).values():
        f = getattr(v, "__func__", v)
        if inspect.isfunction(f) and f not in out:
            out.append(f)
    return out


def _first_line(fn: Any, found: Any) -> str:
    """``FILE:LINE in FN: `CODE``` of the first AST node of ``fn``'s source that ``found`` accepts, else "" (no
    source, or none found)."""
    try:
        lines, start = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return ""
    hits = sorted(n.lineno for n in ast.walk(tree) if found(n))
    if not hits:
        return ""
    k = hits[0] - 1
    code = " ".join(lines[k].split())[:120]
    where = f"{inspect.getsourcefile(fn) or '?'}".rsplit("/", 1)[-1]
    return f"{where}:{start + k} in {fn.__name__}: `{code}`"


def _data_read(fn: Any) -> str:
    """``FILE:LINE in FN: `CODE``` of the first ``X.data`` read in ``fn``'s source, else ""."""
    return _first_line(fn, lambda n: isinstance(n, ast.Attribute) and n.attr == "data" and isinstance(n.ctx, ast.Load)
                       and isinstance(n.value, (ast.Attribute, ast.Name, ast.Subscript)))


#: methods that run before or beside a call, never inside ``forward`` (``reset_parameters``' ``self.weight.data.
#: uniform_(...)`` is the common ``.data`` of a custom layer): never named as the read
_NOT_CALLED = frozenset({"__init__", "reset_parameters", "_reset_parameters", "init_weights", "_init_weights",
                         "extra_repr", "__repr__", "__setstate__", "__getstate__", "_load_from_state_dict",
                         "load_state_dict", "state_dict", "_apply", "to", "cuda", "cpu", "train", "eval"})


def data_read_advice(module: Any, message: str) -> str:
    """What to write instead, with the first ``.data`` read of ``module``'s tree's code for torch.export's
    ``LIFTED_FAKE`` refusal ``message``: a ``forward``'s first (root module first), else another method's that may run
    inside it (a helper), never one of ``_NOT_CALLED``; "" where it is another refusal or no such read is found
    (torch's message stands alone). Why this order: a custom layer's ``reset_parameters`` reads ``.data`` too, and
    naming it would point at a line no call runs."""
    if LIFTED_FAKE not in message:
        return ""
    named = _ATTRIBUTE.search(message + " ")
    constant = f" {named[1]!r}" if named else ""
    classes: list[type] = []
    for m in (module.modules() if hasattr(module, "modules") else [module]):
        classes += [c for c in type(m).__mro__ if c not in classes
                    and (c.__module__ or "").partition(".")[0] not in ("torch", "builtins")]
    functions = [f for c in classes for f in _functions(c) if f.__name__ not in _NOT_CALLED]
    for fn in sorted(functions, key=lambda f: f.__name__ != "forward"):   # (stable: forwards first, in tree order)
        where = _data_read(fn)
        if where:
            who = "forward reads" if fn.__name__ == "forward" else f"forward may read (through {fn.__qualname__})"
            return (f"{who} a tensor's `.data` (at {where}), a new tensor torch.export cannot trace back to the "
                    f"parameter or buffer (it became the program's constant{constant}): use the tensor itself "
                    "(`.detach()` for its value without grad; write a buffer in place under torch.no_grad())")
    for fn in sorted(functions, key=lambda f: f.__name__ != "forward"):
        where = _vmap_call(fn)
        if where:   # (round 73: ``torch.vmap(lambda r: self.w @ r)(x)``, ``torch.mv`` of an unbatched matrix)
            return (f"{LIFTED_FAKE}{constant}: forward calls torch.vmap (at {where}), and torch's batching of an op "
                    "inside it made a tensor torch.export cannot trace (seen with mv/matmul of a matrix the vmap does "
                    "not batch, a weight among them): write that batch without torch.vmap (x @ self.w.T), or compile "
                    "only the parts of the model around it")
    return ""


def _vmap_call(fn: Any) -> str:
    """``FILE:LINE in FN: `CODE``` of the first call of ``vmap`` (``torch.vmap``, ``torch.func.vmap``, a bare
    ``vmap``) in ``fn``'s source, else ""."""
    return _first_line(fn, lambda n: isinstance(n, ast.Call) and (
        (isinstance(n.func, ast.Attribute) and n.func.attr == "vmap")
        or (isinstance(n.func, ast.Name) and n.func.id == "vmap")))
