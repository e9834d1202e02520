"""The real tensors a failing line of ``forward``'s code held in its own frame's variables, named from the failure.

Why: torch.export's refusal of a branch on a tensor's value (``if u > 1``) or of ``T.numpy()`` is turned into our
``AtenExecutorError`` only where the line names a global, closure variable or module tensor (``value_reads``,
``value_refusals``). A tensor reached through a local name (``u = self.t`` then a local lambda ``f = lambda v: v * 2
if u > 1 else v``; a lambda's argument, ``read = lambda t: t.numpy()[0]``) named none of them, and torch's raw
``GraphError`` stood (round 65's leftover). The frame that raised still holds the value: the importer's
``GraphError`` keeps torch's exception as its ``__context__`` (``raise ... from None`` hides it, keeps it), whose
traceback reaches that frame.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

#: how many exceptions down the ``__context__``/``__cause__`` chain, and frames down each traceback, are looked at
_CHAIN, _FRAMES = 4, 512


def frame_tensors(torch: Any, exc: BaseException, where: str, code: str) -> list[str]:
    """Labels of the real tensors (no export stand-in: ``value_modes._real``) that the variables named by the source
    line ``code`` hold in the frame that raised at ``where`` ("file.py:12"), found in ``exc``'s chained exceptions'
    tracebacks (the innermost such frame)."""
    from .value_modes import _real

    words = set(re.findall(r"[A-Za-z_]\w*", code))
    file, _, line = where.rpartition(":")
    frame = _raising_frame(exc, file, int(line) if line.isdigit() else -1)
    if frame is None:
        return []
    out: list[str] = []
    try:
        variables = dict(frame.f_locals)
    except Exception:  # noqa: BLE001 - naming is an extra: torch's own refusal stands where a frame refuses
        return []
    code_obj = frame.f_code
    kinds = {**{v: "closure variable" for v in code_obj.co_freevars},
             **{v: "argument" for v in code_obj.co_varnames[:code_obj.co_argcount + code_obj.co_kwonlyargcount]}}
    for name in sorted(words & variables.keys()):
        value = variables[name]
        if isinstance(value, torch.Tensor) and _real(torch, value):
            out.append(f"the tensor in the {kinds.get(name, 'local variable')} {name} of "
                       f"{getattr(code_obj, 'co_qualname', code_obj.co_name)}")
    return out


def _raising_frame(exc: BaseException, file: str, line: int) -> Any:
    """The innermost frame of ``exc``'s chain whose file's base name is ``file`` at line ``line`` (None: none)."""
    for e in _chain(exc):
        found = None
        tb, steps = e.__traceback__, 0
        while tb is not None and steps < _FRAMES:
            f = tb.tb_frame
            if tb.tb_lineno == line and os.path.basename(f.f_code.co_filename) == file:
                found = f
            tb, steps = tb.tb_next, steps + 1
        if found is not None:
            return found
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes and contexts, each once, at most ``_CHAIN`` of them (a cycle of contexts ends)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < _CHAIN:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def frame_buffers(torch: Any, module: Any, exc: BaseException) -> tuple[list[str], str, str, Any] | None:
    """``(labels, "file.py:12", code, module)`` of the registered buffers and parameters of ``module``'s tree that the
    innermost frame of ``exc``'s chain running a method of one of the tree's modules names on its own module (``self.t``,
    whatever the method calls its first argument) at the line it raised at, else None.

    Why: a buffer read as a Python number inside a submodule (``BatchNorm2d(momentum=None)`` in train mode:
    ``1.0 / float(self.num_batches_tracked)``) is reported by torch.export at the model's own line that called the
    submodule (``out = self.bn2(out)`` in a torchvision ResNet), which names no buffer: the refusal was torch's generic
    advice, naming neither the buffer nor the module (round 75); and where torch's line was the submodule's own, every
    buffer of that name in the tree was named (each BatchNorm's ``num_batches_tracked``), not the one that was read. A
    parameter so read (``if self.gate > 0:``, a learnable threshold) was refused with torch's words wherever it was."""
    if not isinstance(module, torch.nn.Module):
        return None
    paths = {id(m): p for p, m in module.named_modules()}
    root = type(module).__name__
    for e in _chain(exc):
        tb, steps, last = e.__traceback__, 0, None
        while tb is not None and steps < _FRAMES:   # (the innermost frame of code not torch's or Python's own)
            if not _internal(tb.tb_frame.f_code.co_filename):
                last = tb
            tb, steps = tb.tb_next, steps + 1
        found = None if last is None else _own_reads(torch, last, paths, root)
        if found is not None:
            return found
    return None


def _internal(file: str) -> bool:
    """Whether ``file`` is torch's machinery (not its ``nn`` modules, whose methods read their own buffers), Python's
    standard library or this package's own watches of the export (``loose_reads``, ``value_reads``): frames a
    failure passes through below the line that read a value."""
    file = file.replace(os.sep, "/")
    if "/torch/" in file and "/torch/nn/" not in file:
        return True
    if file.startswith(_OWN):
        return True
    return file.startswith(_STDLIB) and "-packages/" not in file


#: the standard library's directory, "/"-separated
_STDLIB = os.path.dirname(os.__file__).replace(os.sep, "/") + "/"
#: this package's directory (``runtime/aten/``), "/"-separated
_OWN = os.path.dirname(os.path.abspath(__file__)).replace(os.sep, "/") + "/"


def _own_reads(torch: Any, tb: Any, paths: dict[int, str], root: str) -> tuple[list[str], str, str, Any] | None:
    """``frame_buffers``' answer for the frame of ``tb``: the buffers and parameters its module's line names."""
    import linecache

    code_obj = tb.tb_frame.f_code
    me = code_obj.co_varnames[0] if code_obj.co_argcount else "self"   # (a method's first argument: ``s``)
    try:
        owner = tb.tb_frame.f_locals.get(me)
    except Exception:  # noqa: BLE001 - naming is an extra: a frame that refuses its locals is passed by
        return None
    if not isinstance(owner, torch.nn.Module) or id(owner) not in paths:
        return None
    file = code_obj.co_filename
    code = linecache.getline(file, tb.tb_lineno).strip()
    attrs = set(re.findall(rf"\b{re.escape(me)}\.([A-Za-z_]\w*)", code))
    own = [f"the buffer {{}}.{n}" for n, b in owner._buffers.items() if n in attrs and b is not None]
    own += [f"the parameter {{}}.{n}" for n, p in owner._parameters.items() if n in attrs and p is not None]
    if not own:
        return None
    path = paths[id(owner)]
    where = f"{root}.{path}" if path else root
    return [label.format(where) for label in own], f"{os.path.basename(file)}:{tb.tb_lineno}", code, owner
