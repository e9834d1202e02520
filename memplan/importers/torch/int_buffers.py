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

One decision for both paths (``retry_buffers``: ``trace._export_buffers_constant`` and ``runtime.aten.program``), and
two checks that the static one (``_source_writes``, the owner's own code) cannot make (round 71): a write from
elsewhere (a parent's ``self.child.stride.add_(1)``, a free function, torch's own ``BatchNorm`` counting
``num_batches_tracked`` in training) is seen at run time, on the version counter of every tensor a read made
(``WrittenBuffer``: refused, naming the buffer, where the write had been traced onto a throwaway constant and the plan
silently dropped it); and a buffer held under a second name (another module's buffer, parameter or attribute) is
never made a constant, since writes through that name would not reach the constant.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import re
import textwrap
from collections.abc import Iterator
from typing import Any

from ...errors import GraphError
from .. import first_line
from .common import _DATA_DEPENDENT
from .data_reads import _NOT_CALLED

#: the most elements a buffer read as constants may have (a stride, a kernel size, a few per-dimension sizes)
_TINY = 16
#: in-place tensor methods that write a buffer without a trailing underscore
_WRITES = frozenset({"copy_", "fill_", "zero_", "add_", "sub_", "mul_", "div_", "clamp_", "index_put_",
                     "masked_fill_", "scatter_", "set_", "resize_"})


def _source_writes(cls: type) -> set[str]:
    """The ``self.NAME`` attributes ``cls``'s own functions (its bases' too, ``nn.Module``'s aside; not ``__init__`` and the
    others that never run inside ``forward``, ``data_reads._NOT_CALLED``) assign, augment,
    subscript-assign or call an in-place method on (``self.n.add_(1)``, ``self.n += 1``, ``self.n[0] = 2``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "torch.nn.modules.module" or (
                klass.__module__.startswith("torch.") and not klass.__module__.startswith("torch.nn.modules.")):
            continue   # (torch's layers are read: BatchNorm counts ``num_batches_tracked`` in training)
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
    slots: dict[int, int] = {}   # (id of a tensor: how many names of the tree hold it)
    # (each module once: one module reached at two places of the tree, ``nn.Sequential(c, c)``, holds its buffer
    # under one name, which its class swap covers at both; counted twice, its buffer was never retried: review of
    # round 71, a refusal round 70 planned)
    for owner in module.modules():
        for store in (owner._parameters, owner._buffers, vars(owner)):
            for t in store.values():
                if isinstance(t, torch.Tensor):
                    slots[id(t)] = slots.get(id(t), 0) + 1
    for path, owner in module.named_modules():
        for name, t in owner._buffers.items():
            if (t is None or type(t) is not torch.Tensor or t.is_floating_point() or t.is_complex()
                    or t.dtype is torch.bool or t.numel() > _TINY or t.device.type == "meta"):
                continue
            cls = type(owner)
            if cls not in writes:
                writes[cls] = _source_writes(cls)
            if name in writes[cls] or "*" in writes[cls] or slots.get(id(t), 0) > 1:
                continue   # (held under another name too: a write through it would not reach the constant)
            out.append((owner, name, f"{path}.{name}" if path else name))
    return out


class _ConstantRead:
    """The class attribute that stands for one buffer in ``buffers_as_constants``: each read makes a new tensor of its
    value, kept (``made``) for the check of writes after the block. Why a slotted descriptor holding a tuple: the
    runtime puts back, after its export, the Python containers ``forward``'s code reaches (a closure's list, a class
    attribute's dict: ``runtime.aten.python_state``), which emptied a list of the reads before it was checked."""

    __slots__ = ("torch", "value", "dtype", "device", "path", "made", "source", "version")

    def __init__(self, torch: Any, t: Any, path: str) -> None:
        self.torch, self.value, self.dtype, self.device, self.path = torch, t.tolist(), t.dtype, t.device, path
        self.made: tuple = ()
        #: the buffer itself and its version counter as the block began: a write through another reference to it (a
        #: list or a view a parent holds, which neither ``_source_writes`` nor ``constant_buffers``' count of names
        #: sees) reaches the buffer, not the tensors the reads made (review of round 71: planned with the constant,
        #: while each eager call padded by one more)
        self.source, self.version = t, _version_of(t)

    def moved(self) -> bool:
        """Whether the buffer itself was written since the block began (its version counter moved)."""
        return self.version is not None and _version_of(self.source) != self.version

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        # (made outside inference mode: an inference tensor has no version counter, so each read under a caller's
        # ``torch.inference_mode()`` counted as written, and a buffer forward only reads was refused as written in
        # place: review of round 71)
        with self.torch.inference_mode(False):
            new = self.torch.tensor(self.value, dtype=self.dtype, device=self.device)
        self.made = (*self.made, new)
        return new


class WrittenBuffer(GraphError):
    """The block of ``buffers_as_constants`` wrote a buffer it read as a constant (``paths``, dotted)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        super().__init__(f"buffer {paths[0]!r} is written in place while forward runs")

    def __reduce__(self):
        """Pickled (and copied) as its ``paths``: ``Exception`` rebuilds one from ``args``, its message, which
        ``__init__`` read as the paths, so a copy named the message's first character as the buffer (round 76)."""
        return type(self), (list(self.paths),), self.__dict__

    def refusal(self, message: str) -> str:
        """``message`` (the first export's refusal) with why the retry cannot stand: one line."""
        names = ", ".join(repr(p) for p in self.paths)
        return (f"{message} (the small integer buffer{'s' if len(self.paths) > 1 else ''} {names} cannot be "
                "exported as a constant of its value instead: forward writes "
                f"{'them' if len(self.paths) > 1 else 'it'} in place, an in-place op, out= or item assignment, "
                "which a constant would silently drop)")


def retry_buffers(torch: Any, module: Any, failure: BaseException) -> list[tuple[Any, str, str]]:
    """The buffers (``constant_buffers``) to export ``module`` again with as constants after its export failed with
    ``failure``, else [] (the failure stands). The one decision of ``from_torch`` and ``runtime.aten``.

    ``failure``: torch's exception, or the importer's GraphError for it ("torch.export failed for NAME: ...", torch's
    as its context). Only a data-dependent guard (``_DATA_DEPENDENT``) whose symbols come, in the partial graph torch
    attaches, from a placeholder that may be such a buffer (its dtype and shape: ``_could_explain``). Why: a model
    failing on ``if mask.any():`` over its input, with a ``BatchNorm`` (a 0-dim int64 ``num_batches_tracked``) in it,
    was exported a second time, in vain, before the refusal."""
    raw = _data_dependent(module, failure)
    if raw is None:
        return []
    found = constant_buffers(torch, module)
    if not found or not _could_explain(torch, raw, found):
        return []
    return found


def _data_dependent(module: Any, failure: BaseException) -> BaseException | None:
    """torch's data-dependent guard failure that ``failure`` is or wraps (the first of its context chain that is),
    ``failure`` itself where it is the importer's refusal of one without it, else None."""
    name = type(module).__name__
    if isinstance(failure, GraphError):
        if not any(f"torch.export failed for {name}: {d}" in str(failure) for d in _DATA_DEPENDENT):
            return None
        seen: set[int] = set()
        e: BaseException | None = failure.__cause__ or failure.__context__
        while e is not None and id(e) not in seen:
            seen.add(id(e))
            if first_line(e).startswith(_DATA_DEPENDENT):
                return e
            e = e.__cause__ or e.__context__
        return failure
    return failure if first_line(failure).startswith(_DATA_DEPENDENT) else None


#: a placeholder of the partial graph's signature (``arg2_1: "i64[]"``) and a node's line (``item: "Sym(u0)" = ...``)
_PARAM = re.compile(r'(\w+): "([^"]*)"')
_LINE = re.compile(r'^\s*(\w+)(?:: "([^"]*)")? = (.*)$')
_UNBACKED = re.compile(r"\bu\d+\b")
_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")   # (not an attribute: ``torch.ops.aten.item`` names no node ``item``)


def _could_explain(torch: Any, raw: BaseException, found: list[tuple[Any, str, str]]) -> bool:
    """Whether the data-dependent symbols of torch's failure ``raw`` (its ``cond``) come, through the nodes of the
    partial graph it carries (``partial_fx_graph``: arguments, and the nodes that made each symbol a node's type
    names), from a placeholder of a ``found`` buffer's dtype and shape (``i64[]``); True where torch gave neither
    (unsure: the retry runs, as before)."""
    text, cond = getattr(raw, "partial_fx_graph", None), getattr(raw, "cond", None)
    symbols = set(_UNBACKED.findall(str(cond))) if cond is not None else set()
    head = next((line for line in text.splitlines() if line.startswith("def forward(")), None) \
        if isinstance(text, str) else None
    if head is None or not symbols:
        return True
    abbrs = getattr(getattr(torch.fx, "graph", None), "dtype_abbrs", None)
    if not isinstance(abbrs, dict):
        return True
    kinds = {f"{abbrs.get(t.dtype, '?')}[{', '.join(map(str, t.shape))}]"
             for owner, name, _p in found for t in [owner._buffers[name]]}
    placeholders = dict(_PARAM.findall(head))
    refs: dict[str, set[str]] = {}
    made: dict[str, str] = {}   # (unbacked symbol: the node whose type first names it)
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None or m[1] in placeholders:
            continue
        name, kind, rhs = m[1], m[2] or "", m[3].split(";")[0].partition("(")[2]   # (the call's arguments)
        for u in _UNBACKED.findall(kind):
            made.setdefault(u, name)
        known = set(placeholders) | set(refs)
        refs[name] = {r for r in _NAME.findall(rhs) if r in known} | {made[u] for u in _UNBACKED.findall(kind)
                                                                        if made[u] != name}
    todo = [made[u] for u in symbols if u in made]
    if len(todo) < len(symbols):
        return True   # (a symbol the graph does not show made: unsure)
    seen: set[str] = set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in placeholders:
            if placeholders[n] in kinds:
                return True
            continue
        todo += refs.get(n, ())
    return False


@contextlib.contextmanager
def buffers_as_constants(torch: Any, found: list[tuple[Any, str, str]]) -> Iterator[None]:
    """Run the block with the buffers ``found`` out of their owners' ``_buffers``, each read as a new tensor of its
    value (``_ConstantRead``, on a subclass made for the block, the instance's class swapped); each owner is put back as it
    was, its class and buffer order too, however the block ends. Where the block ends normally and a tensor a read
    made was written meanwhile (its version counter: ``add_``, ``out=``, ``t[...] =``, through a view or ``detach()``
    too, by whatever code), ``WrittenBuffer`` names the buffers: what the block made of them is not eager's."""
    saved = []
    reads: list[_ConstantRead] = []
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

            paths = {name: path for o, name, path in found if o is owner}
            made = {n: _ConstantRead(torch, t, paths[n]) for n, t in tensors.items()}
            reads += made.values()
            owner.__class__ = type(cls.__name__, (cls,), made
                                   | {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        yield
        written = sorted({r.path for r in reads if r.moved() or any(map(_written, r.made))})
        if written:
            raise WrittenBuffer(written)
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


def _version_of(t: Any) -> Any:
    """``t._version``, None where it has none (an inference tensor)."""
    try:
        return t._version
    except Exception:  # noqa: BLE001 - (inference tensors raise on _version)
        return None


def _written(t: Any) -> bool:
    """Whether tensor ``t`` was written since it was made (its version counter moved); True where it has none
    (an inference-mode tensor: unsure)."""
    try:
        return t._version != 0
    except Exception:  # noqa: BLE001 - (inference tensors raise on _version)
        return True
