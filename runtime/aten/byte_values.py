"""The contents of the mutable byte buffers ``forward`` reads beside its tensors (a NumPy array, a ``bytearray``, an
``array.array``, a ``memoryview``), watched at every compiled call.

Why: a compiled call runs no Python, so export baked what ``forward`` made of such a value into the program
(``x * float(self.a[0])``, ``x * BYTES[0]``). The caller changing it in place (``m.a[0] = 3.0``) keeps the very
object, so the watches by identity (``guard.Settings``, ``python_reads``) saw nothing, and every compiled call ran
the export's value where eager's followed the change, silently (round 64's hole: module attributes, globals,
closure variables, items of containers). ``python_state`` already finds the globals and closure variables
``forward``'s code names; here each buffer there (and under a public module attribute, in a container at any of a
few levels, or in a field of a settings object the tree holds) is fingerprinted by its bytes, with its identity,
type and shape. A changed fingerprint is proven as any changed read value is (``CompiledModule._prove_reads``:
``forward`` exported again from the values now; compile's very program is taken, another one refused naming the
buffer).

Bounds: one buffer of more than ``CONTENT_LIMIT`` bytes, or past ``TOTAL_LIMIT`` bytes in all, is not compared at
each call (its bytes are copied and compared per call); compile warns (``walk_bounds.StateWalkWarning``) naming it.
"""

from __future__ import annotations

import array
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .module_containers import CONTAINERS, ITEM_LIMIT
from .module_writes import MISSING, module_fields
from .py310 import call
from .settings import SCALARS, value_text

#: the most bytes of one buffer compared at each call (64 KiB: a copy and a compare of a few microseconds)
CONTENT_LIMIT = 1 << 16
#: the most bytes of all the buffers one compiled module compares at each call
TOTAL_LIMIT = 1 << 20
#: how many containers (and settings objects) deep a buffer is looked for (``self.d["a"][0]``), and how many of their
#: items one walk looks at (a bound by size: a cycle or a wide tree ends there)
_DEPTH = 6
WALK_LIMIT = 10_000


def is_buffer(v: Any) -> bool:
    """A mutable object whose bytes a ``forward`` may read: a NumPy array (numpy imported: an array exists only so),
    a ``bytearray``, an ``array.array`` or a ``memoryview``; and a NumPy scalar that is no Python number
    (``np.float32(2.0)``: immutable, but no plain value either, so neither ``Settings`` nor the reads watched it, and
    ``m.s = np.float32(3.0)`` ran the export's value silently). (``bytes`` is immutable: identity watches it.)"""
    if isinstance(v, (bytearray, array.array, memoryview)):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(v, (np.ndarray, np.generic)) and not isinstance(v, SCALARS)


#: the most elements of a plain tensor watched by its version counter (``tensor_value``)
TENSOR_LIMIT = 64


def _tensor(v: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def tensor_value(v: Any) -> bool:
    """A small plain tensor (no parameter, at most ``TENSOR_LIMIT`` elements, one that keeps a version counter)
    whose value ``forward`` may have read as a Python number (``float(self.t)``, ``x * T.item()``): export ran that
    on the real tensor and baked the number into the program, so the caller's ``self.t.mul_(1.5)`` changed eager's
    result and silently not the program's (round 64). Watched only where the program does not read the very tensor
    (``find``'s ``live``): one it reads follows the write itself."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(v, torch.Tensor) or isinstance(v, torch.nn.Parameter):
        return False
    return plain_tensor(v) and v.numel() <= TENSOR_LIMIT


def plain_tensor(v: Any) -> bool:
    """A tensor of any size that keeps a version counter (no inference tensor, no fake or subclass that fails to
    say). Why any size: one ``forward`` read as Python numbers (``Program.value_reads``: ``T.tolist()`` of 100
    elements) is baked whatever its size, and a global one the program holds, replaced by the caller (``W = new``,
    same shape), kept the old one in the program, silently (round 64c); its identity and version cost the same at
    any size. ``find`` chooses which are watched."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(v, torch.Tensor):
        return False
    try:
        return not v.is_inference() and type(v._version) is int
    except Exception:  # noqa: BLE001 - a fake or subclassed tensor: not watched
        return False


#: the most elements of a CPU tensor whose values ``contents`` copies at each call (``tensor_values``)
VALUES_LIMIT = 64


def tensor_values(t: Any) -> Any:
    """The bytes of a CPU tensor of at most ``VALUES_LIMIT`` elements (its values, where NumPy cannot view its dtype:
    bfloat16), None for any other (a CUDA tensor: a copy to the host would synchronize each compiled call).

    Why: writes through another tensor sharing its memory move neither its version counter nor its data pointer
    (``t.data.add_(1)``, ``t.numpy()[0] = 5.0``, an alias made by ``t.detach()``), so a tensor ``forward`` read as
    Python numbers (``float(T)``, ``T.tolist()``: export baked the numbers) so changed ran the export's numbers,
    silently (round 65). Its bytes are read without a copy through NumPy (about 1 us a call on the CPU). A CUDA
    tensor, or one of more elements, so changed stays unseen: documented (docs/aten.md)."""
    try:
        if t.numel() > VALUES_LIMIT or not t.is_cpu:
            return None
        return (t.detach() if t.requires_grad else t).numpy().tobytes()
    except (TypeError, RuntimeError):   # (a dtype NumPy has not: bfloat16; a conjugate or negative view)
        try:
            return repr(t.tolist())   # (its text: NaN equals NaN)
        except Exception:  # noqa: BLE001 - a tensor whose values cannot be read: its version and pointer alone
            return None


def _pointer(t: Any) -> Any:
    """Tensor ``t``'s data pointer; a sparse COO one's indices' and values' (it has no storage of its own), None
    for another with none (a sparse CSR, a nested one). Why: a sparse tensor a module held as a plain attribute made
    compile fail with torch's raw ``RuntimeError`` ("Cannot access data pointer of Tensor that doesn't have
    storage", review of round 70); its version counter still moves at each write in place."""
    try:
        return t.data_ptr()
    except RuntimeError:
        try:
            return (t._indices().data_ptr(), t._values().data_ptr()) if t.is_sparse else None
        except RuntimeError:
            return None


def size(v: Any) -> int:
    """The bytes ``contents`` copies of buffer ``v`` (0 for a released ``memoryview``)."""
    try:
        return v.nbytes if hasattr(v, "nbytes") else len(v) * getattr(v, "itemsize", 1)
    except ValueError:   # (a released memoryview)
        return 0


def contents(v: Any) -> Any:
    """A comparable fingerprint of buffer ``v`` now: its identity, type, element format and shape, and its bytes.
    Why the identity: a program may hold the buffer's memory itself (``torch.from_numpy(self.a)``, a constant
    sharing it), so an equal one put in its place is no same value until an export says so."""
    if v is MISSING:
        return MISSING
    if _tensor(v):   # (its version counter: moved by every write in place, read without a copy; its data pointer:
        # ``t.data = other`` moves no version; a small CPU one's values: ``t.data.add_(1)`` moves neither, round 65)
        return (id(v), "tensor", v._version, _pointer(v), tensor_values(v))
    if not is_buffer(v):   # (another kind put in its place: ``m.b = [3.0]`` for a bytearray raised a raw
        return (id(v), "other", type(v).__name__)   # AttributeError out of the call, round 64d; proven as a change)
    try:
        if isinstance(v, memoryview):
            return (id(v), "memoryview", v.format, v.shape, v.tobytes())
        if isinstance(v, array.array):
            return (id(v), "array", v.typecode, v.tobytes())
        if isinstance(v, bytearray):
            return (id(v), "bytearray", bytes(v))
        return (id(v), type(v).__name__, v.dtype.str, v.shape, v.strides, v.tobytes())
    except ValueError:   # (a released memoryview: "operation forbidden on released memoryview object")
        return (id(v), "released")


def text(v: Any) -> str:
    """A buffer for a message: its ``repr``, and a ``memoryview``'s items (its ``repr`` is only its address)."""
    if isinstance(v, memoryview):
        try:
            return f"memoryview({value_text(v.tolist())})"
        except (ValueError, NotImplementedError, TypeError):   # (released; a format ``tolist`` cannot unpack)
            return value_text(v)
    return value_text(v)


class _Shown(str):
    """A value recorded as its text (a buffer's contents at compile): a refusal writes it as it is."""

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class BufferReads:
    """Each watched buffer's label, how to read it (``MISSING`` where gone; through the containers there now), the
    buffer itself then (kept: its id is in the fingerprint), its fingerprint and its text then. ``unchanged`` is the
    per-call check: each read and fingerprint compared in one ``==`` of two tuples (bytes compared by ``memcmp``)."""

    labels: tuple[str, ...]
    reads: tuple[Callable[[], Any], ...]
    objects: tuple[Any, ...]
    prints: tuple[Any, ...]
    shown: tuple[str, ...]

    def unchanged(self) -> bool:
        return tuple(map(contents, map(call, self.reads))) == self.prints

    def first_changed(self) -> tuple[str, Any, Any] | None:
        """(label, the buffer now, its text at compile) of the first buffer changed since (None: none)."""
        for label, read, was, shown in zip(self.labels, self.reads, self.prints, self.shown):
            now = read()
            if contents(now) != was:
                return label, now if now is MISSING else _Shown(text(now)), _Shown(shown)
        return None

    def refreshed(self) -> BufferReads:
        """The buffers there now as the new baseline (after a proof took them)."""
        objects = tuple(r() for r in self.reads)
        return replace(self, objects=objects, prints=tuple(map(contents, objects)),
                       shown=tuple(map(text, objects)))


def _item(read: Callable[[], Any], key: Any) -> Any:
    """``read()[key]``, ``MISSING`` where no longer there."""
    try:
        container = read()
        return container[key] if container is not MISSING else MISSING
    except (KeyError, IndexError, TypeError):
        return MISSING


def _field(read: Callable[[], Any], name: str) -> Any:
    """``read().name`` (a settings object's field, read from its ``__dict__``), ``MISSING`` where no longer there."""
    obj = read()
    d = getattr(obj, "__dict__", None) if obj is not MISSING else None
    return d.get(name, MISSING) if type(d) is dict else MISSING


def _settings(v: Any) -> bool:
    """A settings object of the user's (``settings.settings_object``) whose fields are walked for buffers."""
    from .settings import settings_object

    torch = sys.modules.get("torch")
    return torch is not None and not is_buffer(v) and settings_object(torch, v) and type(vars(v)) is dict


def _found(label: str, read: Callable[[], Any], value: Any, depth: int = _DEPTH,
           keyed: str = "[{!r}]", seen: set[int] | None = None, budget: list[int] | None = None
           ) -> Iterator[tuple[str, Callable[[], Any], Any]]:
    """(label, read, buffer) of ``value`` if a buffer, else of each buffer in it (a list, tuple, dict or deque, a
    settings object's public fields, up to ``depth`` levels, ``ITEM_LIMIT`` items each and ``WALK_LIMIT`` items in
    all), each read through the containers and objects there at each call. Why settings objects and six levels: a
    buffer in a settings object held in a dict (``self.v = {"a": Cfg(t=np.array(...))}``), in a settings object's
    settings object (``self.cfg.inner.t``) or four containers down ran the export's value silently (round 64d)."""
    if is_buffer(value) or plain_tensor(value):   # (any size: ``find`` chooses which are watched, round 64c)
        yield label, read, value
        return
    seen = set() if seen is None else seen
    budget = [WALK_LIMIT] if budget is None else budget
    if depth <= 0 or id(value) in seen:
        return
    if type(value) in CONTAINERS or type(value) is tuple:
        if isinstance(value, set) or len(value) > ITEM_LIMIT:
            return
        items = list(value.items() if isinstance(value, dict) else enumerate(value))
        field = False
    elif _settings(value):
        items = [(k, v) for k, v in vars(value).items() if not str(k).startswith("_")][:ITEM_LIMIT]
        field = True
    else:
        return
    seen.add(id(value))
    for key, v in items:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if is_buffer(v) or plain_tensor(v) or type(v) in CONTAINERS or type(v) is tuple or _settings(v):
            where = f"{label}.{key}" if field else label + keyed.format(key)
            get = functools.partial(_field if field else _item, read, key)
            yield from _found(where, get, v, depth - 1, keyed, seen, budget)


def _module_roots(torch: Any, module: Any) -> Iterator[tuple[str, Callable[[], Any], Any]]:
    """(label, read, value) of each attribute of each module of the tree (a private one too where it holds a buffer
    itself: ``self._scale = np.array(...)`` is no library's flag), and of each public field of the settings objects
    they hold (``self.cfg.table``), as ``python_reads`` labels module attributes."""
    from .settings import settings_object

    internal = module_fields(torch)
    for path, m in module.named_modules():
        where = f"{type(module).__name__}.{path}" if path else type(module).__name__
        for name, v in list(vars(m).items()):
            if name.startswith("__") or name in internal or (name.startswith("_") and not is_buffer(v)) or (
                    name.startswith("_") and plain_tensor(v)):
                continue
            yield f"the attribute {where}.{name}", functools.partial(vars(m).get, name, MISSING), v
            if settings_object(torch, v) and not is_buffer(v) and type(vars(v)) is dict:
                for field, f in list(vars(v).items())[:ITEM_LIMIT]:
                    if not field.startswith("_"):
                        yield (f"the attribute {where}.{name}.{field}",
                               functools.partial(vars(v).get, field, MISSING), f)


def find(torch: Any, module: Any, places: list[Any], live: frozenset[int] | None = frozenset(),
         numbers: frozenset[int] = frozenset(), held: tuple[tuple[str, Any], ...] = ()
         ) -> tuple[BufferReads | None, list[str]]:
    """(``BufferReads`` of the buffers ``module``'s tree and ``places`` (``python_state``'s places, already chosen
    for watching) hold now, or None where none; the labels of those left unwatched for their size). ``live``: the
    ids of the tensors the program reads itself (their small plain tensors are not watched); None: no tensors.
    ``numbers``: the ids of the tensors ``forward`` read as Python numbers at export (``Program.value_reads``):
    watched whatever their size, the program's own too (round 64c). ``held``: (where read, tensor) of those still
    alive: each one no root reaches is watched as itself (round 67: a global only a lambda hook names, one more than
    five objects deep in a settings object, ran the export's numbers silently after a change in place)."""
    found: list[tuple[str, Callable[[], Any], Any]] = []
    roots: list[tuple[str, Callable[[], Any], Any, str]] = []
    if isinstance(module, torch.nn.Module):
        roots += [(label, read, v, "[{!r}]") for label, read, v in _module_roots(torch, module)]
    for p in places:
        if p.source is None or p.source[0] != "const":   # (an inner container's place: its root walks it)
            roots.append((p.label, p.read, p.value, " at [{!r}]"))
    # (then the fixed objects' places, whose buffers no root reached: a ``functools.partial`` attribute's bound list
    # or array, ``self.f = partial(g, [np.array([2.0])])``, changed in place ran silently, round 64d)
    roots += [(p.label, p.read, p.value, " at [{!r}]") for p in places if p.source is not None
              and p.source[0] == "const"]
    roots += [(f"the tensor forward read as Python numbers at {where}", functools.partial(_itself, t), t, "[{!r}]")
              for where, t in held if id(t) in numbers]   # (last: one a place above reaches is named there)
    seen: set[int] = set()
    too_big: list[str] = []
    total = 0
    for label, read, value, keyed in roots:
        for where, get, buf in _found(label, read, value, keyed=keyed):
            if id(buf) in seen or (_tensor(buf) and _not_watched(buf, live, numbers)):
                continue
            seen.add(id(buf))
            n = 0 if _tensor(buf) else size(buf)
            if n > CONTENT_LIMIT or total + n > TOTAL_LIMIT:
                too_big.append(f"{where} ({n:,} bytes)")
                continue
            total += n
            found.append((where, get, buf))
    if not found:
        return None, too_big
    objects = tuple(b for _w, _g, b in found)
    return BufferReads(tuple(w for w, _g, _b in found), tuple(g for _w, g, _b in found), objects,
                       tuple(map(contents, objects)), tuple(map(text, objects))), too_big


def _itself(v: Any) -> Any:
    """``v`` (a tensor read as numbers that no place reaches, watched as itself: ``find``'s ``held``)."""
    return v


def _not_watched(t: Any, live: frozenset[int] | None, numbers: frozenset[int]) -> bool:
    """Whether tensor ``t`` found by ``find`` is left unwatched: every tensor where ``live`` is None; else one
    ``forward`` read as numbers never is; else one the program reads itself (it follows the writes) or one of more
    than ``TENSOR_LIMIT`` elements (no sign it was read as numbers: watched, a change would export again) is."""
    if live is None:
        return True
    return id(t) not in numbers and (id(t) in live or not tensor_value(t))


def put_back(buf: Any, raw: Any) -> bool:
    """``buf``'s contents set back to ``raw`` (``_raw``'s copy); whether they were unchanged."""
    try:
        same = raw is None or (buf.tobytes() == raw.tobytes() if hasattr(buf, "dtype")
                               else bytes(memoryview(buf).cast("B")) == raw)
    except (ValueError, TypeError):
        return True
    if not same:
        _put_back(buf, raw)
    return same


def _raw(buf: Any) -> Any:
    """A copy of ``buf``'s contents that ``_put_back`` writes back."""
    try:
        return buf.copy() if hasattr(buf, "dtype") else bytes(memoryview(buf).cast("B"))
    except (ValueError, TypeError):   # (released, or no C-contiguous bytes)
        return None


def _put_back(buf: Any, raw: Any) -> None:
    """``buf``'s contents as ``_raw`` copied them (best effort: a read-only one stays as it is)."""
    if raw is None:
        return
    try:
        if hasattr(buf, "dtype"):
            buf[...] = raw
        else:
            memoryview(buf).cast("B")[:] = raw
    except (ValueError, TypeError):
        pass
