"""Small integer buffers that ``forward`` reads as Python numbers, exported as constants.

Why: transformers' EnCodec and Mimi keep their convolutions' ``stride``, ``kernel_size`` and ``padding_total`` as
0-dim int64 buffers (``register_buffer(..., persistent=False)``) and compute each call's padding from them. torch.export
lifts every buffer as an input whose values it does not know while it traces, so the padding became a data-dependent
size ("Could not guard on data-dependent expression", round 70's CPU sweep) and both paths refused the models, though
the values never change. A fixed program can hold them as constants, as it holds a plain ``int`` attribute.

Only after export failed on such an expression, and only for buffers that are integer, tiny (``_TINY`` elements at
most) and never written by their module's code (``_source_writes``: a step counter, ``num_batches_tracked.add_(1)``, is
written and stays a buffer), the export is tried once more with them out of ``_buffers``: each read of one makes a
new tensor of its value (``torch.tensor(v)`` inside the trace), which torch.export records as a constant whose value
it knows. ``from_torch`` plans the model as it is now; ``runtime.aten`` (``program._buffers_watched``) also watches
each such buffer at every call, in place (its version) and in its slot, and refuses a changed one, naming it.
(Not as plain tensor attributes: the runtime reads those for real, but refuses a branch on one, EnCodec's
``if length <= max_pad:``; torch.export itself fakes them as it does buffers.)

The module is put back as it was in every case (``finally``).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import textwrap
from collections.abc import Iterator
from typing import Any

from .data_reads import _NOT_CALLED

#: the most elements a buffer read as constants may have (a stride, a kernel size, a few per-dimension sizes)
_TINY = 16
#: in-place tensor methods that write a buffer without a trailing underscore
_WRITES = frozenset({"copy_", "fill_", "zero_", "add_", "sub_", "mul_", "div_", "clamp_", "index_put_",
                     "masked_fill_", "scatter_", "set_", "resize_"})


def _source_writes(cls: type) -> set[str]:
    """The ``self.NAME`` attributes ``cls``'s own functions (its bases' too, torch's aside; not ``__init__`` and the
    others that never run inside ``forward``, ``data_reads._NOT_CALLED``) assign, augment,
    subscript-assign or call an in-place method on (``self.n.add_(1)``, ``self.n += 1``, ``self.n[0] = 2``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("torch.") or klass is object:
            continue
        for key, v in vars(klass).items():
            f = getattr(v, "__func__", v)
            if not inspect.isfunction(f) or key in _NOT_CALLED:
                continue
            try:
                tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
            except (OSError, TypeError, SyntaxError, IndentationError):
                names.add("*")   # (no source to read: assume it writes)
                continue
            for node in ast.walk(tree):
                targets: list[Any] = []
                if isinstance(node, ast.Assign):
                    targets = node.targets
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                    targets = [node.target]
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                        node.func.attr.endswith("_") and not node.func.attr.startswith("_")
                        or node.func.attr in _WRITES):
                    targets = [node.func.value]
                for t in targets:
                    while isinstance(t, (ast.Subscript, ast.Attribute)) and not (
                            isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)):
                        t = t.value
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        names.add(t.attr)
    return names


def constant_buffers(torch: Any, module: Any) -> list[tuple[Any, str, str]]:
    """(owner module, buffer name, dotted path) of each buffer of ``module``'s tree that may be exported as a
    constant: an integer tensor (not bool) of at most ``_TINY`` elements, not requiring grad, not a tensor subclass,
    whose owner's code never writes it (``_source_writes``)."""
    if not isinstance(module, torch.nn.Module):
        return []
    out = []
    writes: dict[type, set[str]] = {}
    for path, owner in module.named_modules():
        for name, t in owner._buffers.items():
            if (t is None or type(t) is not torch.Tensor or t.is_floating_point() or t.is_complex()
                    or t.dtype is torch.bool or t.numel() > _TINY or t.device.type == "meta"):
                continue
            cls = type(owner)
            if cls not in writes:
                writes[cls] = _source_writes(cls)
            if name in writes[cls] or "*" in writes[cls]:
                continue
            out.append((owner, name, f"{path}.{name}" if path else name))
    return out


@contextlib.contextmanager
def buffers_as_constants(torch: Any, found: list[tuple[Any, str, str]]) -> Iterator[None]:
    """Run the block with the buffers ``found`` out of their owners' ``_buffers``, each read as a new tensor of its
    value (a property of a subclass made for the block, the instance's class swapped); each owner is put back as it
    was, its class and buffer order too, however the block ends."""
    saved = []
    try:
        by_owner: dict[int, tuple[Any, list[str]]] = {}
        for owner, name, _path in found:
            by_owner.setdefault(id(owner), (owner, []))[1].append(name)
        for owner, names in by_owner.values():
            order = list(owner._buffers)
            non_persistent = set(owner._non_persistent_buffers_set)
            tensors = {n: owner._buffers.pop(n) for n in names}
            cls = owner.__class__
            saved.append((owner, cls, order, non_persistent, tensors))

            def read(t: Any) -> property:
                value = t.tolist()
                return property(lambda _self: torch.tensor(value, dtype=t.dtype, device=t.device))
            owner.__class__ = type(cls.__name__, (cls,), {n: read(t) for n, t in tensors.items()}
                                   | {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        yield
    finally:
        for owner, cls, order, non_persistent, tensors in reversed(saved):
            owner.__class__ = cls
            rest = dict(owner._buffers)
            owner._buffers.clear()
            for n in order:
                if n in tensors or n in rest:
                    owner._buffers[n] = tensors[n] if n in tensors else rest.pop(n)
            owner._buffers.update(rest)
            owner._non_persistent_buffers_set.clear()
            owner._non_persistent_buffers_set.update(non_persistent)
