"""The module tree's tensors saved copy-on-write while compile runs ``forward`` eagerly (``module_state``): a storage
is copied once, just before the first op that writes into it, and only the copied ones are put back.

Why: ``module_state`` cloned every parameter and buffer before the comparison run of ``flag_reads`` (round 69), so
compiling a model whose ``forward`` asks ``torch.compiler.is_compiling()`` held its weights twice (a 7B model's 14
GB more GPU memory at compile), where eager's branch writes a BatchNorm's running stats or a counter at most.

How a write is seen: a ``TorchDispatchMode`` for the eager run sees each ATen op; one whose schema marks an argument
written (``alias_info.is_write``: in-place ops, ``out=`` arguments, ``set_``, ``resize_``, a custom op's
``mutates_args``) into memory overlapping a watched tensor's storage saves that storage first. By memory range, not
by the tensor: a view of a parameter, ``self.w.data.add_(1)`` (a new tensor, the same storage), an alias held as
another attribute, ``torch.from_numpy(self.w.numpy())`` (another storage object, the same bytes) each write there.
A tensor rebound to other memory (``self.w.data = t``, ``set_``, ``resize_``) is set back to its own storage, offset,
shape and strides. An op outside torch's own namespaces (``aten``, ``prims``: a user's ``torch.library`` op, registered
without ``mutates_args``) may write an argument its schema does not mark: each watched storage it takes as an argument
is saved before it, and its body (its kernel, below the ``Python`` key) runs under the mode again, so a weight it
reaches by a closure or a global is saved before the body's op that writes it (round 71: it stayed written). A
higher-order op (``torch.cond``...) runs its body past the mode: every watched storage is saved before it.

Not seen by the mode, and refused after the run (``unsaved``, ``unseen``; ``flag_reads``), as no copy of the values
was made: a write through torch from another thread (a mode is its thread's alone) moves the tensor's version counter;
a write outside torch's dispatcher (through ``numpy()``, ``__dlpack__``, a ``data_ptr`` handed to ctypes or to a
kernel) moves nothing, so each watched storage's bytes are checksummed before and after the run (``_digest``: two
reads, no copy; round 71: ``self.buf.numpy()[:] = 7`` stayed after compile, silently). The compiled step is not run
under the mode (a CUDA graph's replay writes past any mode, and a copy made inside a capture would only be recorded):
the tensors its program writes (``Executor.written_weights``) are saved before it runs instead.
"""

from __future__ import annotations

import bisect
from typing import Any


class StorageSaves:
    """The storages of ``tensors`` (dense, no tensor subclass of its own dispatch), each copied at its first write
    under ``watching`` or ``save``; ``restore`` puts back the copied ones and each tensor's own storage and layout."""

    def __init__(self, torch: Any, tensors: list) -> None:
        self.torch = torch
        #: (tensor, its storage, offset, shape, strides, dtype) as they were
        self.layouts = [(t, t.untyped_storage(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
                        for t in tensors]
        spans: dict[tuple[str, int], tuple[int, int, Any]] = {}
        for _t, s, *_rest in self.layouts:
            if s.nbytes() and s.data_ptr():
                spans.setdefault((str(s.device), s.data_ptr()), (s.data_ptr(), s.data_ptr() + s.nbytes(), s))
        #: device -> (starts, ends' running maximum, (start, end, storage)) of the watched storages, by start
        self._spans: dict[str, tuple[list[int], list[int], list[tuple[int, int, Any]]]] = {}
        for (device, _ptr), span in sorted(spans.items(), key=lambda kv: (kv[0][0], kv[1][0])):
            starts, reach, rows = self._spans.setdefault(device, ([], [], []))
            starts.append(span[0])
            reach.append(max(span[1], reach[-1] if reach else 0))
            rows.append(span)
        #: id(storage) -> (storage, its size in bytes, its copy), each watched storage copied before a write
        self.saved: dict[int, tuple[Any, int, Any]] = {}
        #: each tensor's version counter as ``watching`` began (None: no run watched yet, or no counter)
        self._versions: list[Any] = []
        #: the tensors written under the last ``watching`` whose storage no save took (``restore`` fills it)
        self.unsaved: list[Any] = []
        #: id(storage) -> its ``_digest`` as the last ``watching`` began
        self._digests: dict[int, Any] = {}
        #: the tensors whose storage's bytes changed under the last ``watching`` though no op wrote it there and its
        #: version counter did not move: a write outside torch's dispatcher (``restore`` fills it)
        self.unseen: list[Any] = []

    @property
    def saved_bytes(self) -> int:
        return sum(copy.nbytes() for _s, _n, copy in self.saved.values())

    def save(self, t: Any) -> None:
        """Copy each watched storage that tensor ``t``'s memory overlaps, once (the first write's values)."""
        try:
            s = t.untyped_storage()
            lo, device = s.data_ptr(), str(s.device)
            hi = lo + s.nbytes()
        except (RuntimeError, NotImplementedError, TypeError, AttributeError):
            return   # (a fake or meta tensor, a wrapper subclass: no memory of its own; its inner ops come here)
        index = self._spans.get(device)
        if index is None or hi <= lo:
            return
        starts, reach, rows = index
        i = bisect.bisect_left(starts, hi) - 1
        while i >= 0 and reach[i] > lo:
            start, end, storage = rows[i]
            if end > lo and id(storage) not in self.saved:
                self.saved[id(storage)] = (storage, storage.nbytes(), storage.clone())
            i -= 1

    def save_all(self) -> None:
        """Copy every watched storage not copied yet."""
        for _starts, _reach, rows in self._spans.values():
            for _start, _end, storage in rows:
                if id(storage) not in self.saved:
                    self.saved[id(storage)] = (storage, storage.nbytes(), storage.clone())

    def watching(self) -> Any:
        """A ``TorchDispatchMode`` saving what each op is about to write (the module's doc)."""
        from torch.utils._python_dispatch import TorchDispatchMode

        saves = self
        self._versions = [_version(t) for t, *_rest in self.layouts]
        self._digests = {id(storage): _digest(self.torch, storage) for storage in self._storages()}

        class _SaveBeforeWrite(TorchDispatchMode):
            #: a higher-order op (``torch.cond``, ``while_loop``, ``flex_attention``) comes here too: torch refused
            #: it under a mode that does not take them ("no rule registered for HigherOrderOperator cond")
            supports_higher_order_operators = True

            def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
                kwargs = kwargs or {}
                if isinstance(func, saves.torch._ops.HigherOrderOperator):
                    # (its body runs past this mode, and reaches tensors its arguments do not name, a branch's
                    # closure: every watched storage saved, as round 69 copied all)
                    saves.save_all()
                    return func(*args, **kwargs)
                for target in _written(saves.torch, func, args, kwargs):
                    saves.save(target)
                if getattr(func, "namespace", "aten") not in _SCHEMA_TRUSTED:
                    # (a user's op, ``torch.library.custom_op(..., mutates_args=())``, whose body writes its
                    # argument: its schema marks nothing; a weight it took stayed written after compile)
                    tensors = [v for v in saves.torch.utils._pytree.tree_leaves((args, kwargs))
                               if isinstance(v, saves.torch.Tensor)]
                    for v in tensors:
                        saves.save(v)
                    keys = _below_python(saves.torch, tensors)
                    if keys is not None and not _modes_below():
                        # its body run under this mode again: a weight it reaches by a closure or a global, not
                        # an argument, is saved before the body's op writing it (round 71: it stayed written)
                        with self:
                            return func.redispatch(keys, *args, **kwargs)
                return func(*args, **kwargs)

        return _SaveBeforeWrite()

    def restore(self) -> None:
        """Each saved storage's bytes back (its size too, where ``resize_`` grew it), then each tensor's own storage,
        offset, shape, strides and dtype where it was pointed elsewhere; the copies are dropped."""
        torch = self.torch
        self.unsaved = self._unsaved()
        self.unseen = self._unseen()
        with torch.no_grad():
            for storage, nbytes, copy in self.saved.values():
                if storage.nbytes() != nbytes:
                    storage.resize_(nbytes)
                storage.copy_(copy)
            self.saved.clear()
            for t, storage, offset, shape, stride, dtype in self.layouts:
                if (t.dtype != dtype or t.untyped_storage()._cdata != storage._cdata
                        or t.storage_offset() != offset or tuple(t.shape) != shape or t.stride() != stride):
                    own = torch.empty(0, dtype=dtype, device=storage.device).set_(storage, offset, shape, stride)
                    t.data = own

    def _unsaved(self) -> list[Any]:
        """The tensors whose version counter moved under the last ``watching`` though no save took their storage:
        a write the mode did not see (another thread's: a mode is its thread's alone), whose values cannot be put
        back. Why: a ``threading.Thread`` in eager's branch writing a buffer left it written after compile,
        silently (review of round 70). A write below autograd (a user's op's body, past no mode) moves no counter:
        ``_unseen`` compares the bytes."""
        out = []
        for (t, storage, *_rest), was in zip(self.layouts, self._versions):
            if was is not None and id(storage) not in self.saved and _version(t) != was and not any(
                    self._overlaps_saved(storage)) and t.untyped_storage()._cdata == storage._cdata:
                # (one rebound, ``t.data = other``, moves its counter by its writes to the other memory, which
                # ``restore`` leaves: its own storage is pointed back, unwritten)
                out.append(t)
        self._versions = []
        return out

    def _storages(self) -> list[Any]:
        """The watched storages, each once."""
        return [storage for _starts, _reach, rows in self._spans.values() for _start, _end, storage in rows]

    def _unseen(self) -> list[Any]:
        """The tensors whose storage no save took, its bytes changed under the last ``watching`` (``_digest``) and its
        version counter still: a write outside torch's dispatcher, ``self.buf.numpy()[:] = 7``, ``np.from_dlpack``,
        ``ctypes.memmove`` to its ``data_ptr()``, a kernel (Triton, a C extension) launched on its pointer, the body of
        a C++ op writing through a raw pointer, or ``untyped_storage().resize_(0)`` (a storage's own method: no op). Why: round 70's watch saw none of them, and the buffer stayed 7 after
        compile, silently; no copy of it was made (copy-on-write), so its values are lost and compile refuses.
        Cost: two reads of the watched storages (a checksum, no copy: no memory beyond one chunk)."""
        if not self._digests:
            return []
        out = []
        seen: set[int] = set()
        moved = {id(t) for t in self.unsaved}
        for storage in self._storages():
            was = self._digests.get(id(storage))
            if (was is None or id(storage) in self.saved or any(self._overlaps_saved(storage))
                    or _digest(self.torch, storage) == was):
                continue
            for t, own, *_rest in self.layouts:
                if own is storage and id(t) not in moved and id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
        self._digests = {}
        return out

    def _overlaps_saved(self, storage: Any) -> list[bool]:
        """Whether ``storage``'s memory is a saved storage's (another storage object over the same bytes)."""
        lo, hi = storage.data_ptr(), storage.data_ptr() + storage.nbytes()
        return [s.device == storage.device and s.data_ptr() < hi and lo < s.data_ptr() + n
                for s, n, _copy in self.saved.values()]


#: the namespaces whose ops' schemas are torch's own, kept right by its tests (an op of another namespace, a user's
#: ``torch.library`` op, may write an argument its schema does not mark: each tensor argument is saved)
_SCHEMA_TRUSTED = frozenset({"aten", "prims"})


def _below_python(torch: Any, tensors: list) -> Any:
    """The dispatch keys to run an op over ``tensors`` at, below the ``Python`` key this mode is called at (its
    backend kernel: the body of a ``torch.library`` op); None where there is no tensor, or one is a subclass of its
    own dispatch (its ``__torch_dispatch__`` is the op's meaning there)."""
    if not tensors:
        return None
    C = torch._C
    keys = None
    for t in tensors:
        k = C._dispatch_keys(t)
        if k.has(C.DispatchKey.Python):
            return None
        keys = k if keys is None else keys | k
    return keys & C._dispatch_keyset_full_after(C.DispatchKey.Python)


#: how many 8-byte words of a storage ``_digest`` reads at a time (8 MiB: the only memory it takes)
_CHUNK = 1 << 20


def _digest(torch: Any, storage: Any) -> Any:
    """A checksum of ``storage``'s bytes: the sum of its 8-byte words each weighted by a fixed pseudo-random odd word
    (integer arithmetic, wrapping: exact and the same in any order, on any device; a changed word changes it unless
    the change is 0 modulo 2**64), and its last bytes as they are. No copy of the storage is made; one device sync at
    the end. On the CPU a ``dot`` per chunk (one read, no temporary: 8x faster than ``mul`` and ``sum``, about one
    eager forward's weight reads)."""
    n = storage.nbytes()
    if not n or not storage.data_ptr():
        return None
    with torch.no_grad():
        raw = torch.empty(0, dtype=torch.uint8, device=storage.device).set_(storage, 0, (n,), (1,))
        # (a storage at an address no multiple of 8, one from DLPack say, is read byte by byte: 8-byte loads from
        # it fault on a GPU, "misaligned address", and leave the CUDA context unusable)
        aligned = storage.data_ptr() % 8 == 0
        whole = n - n % 8 if aligned else n
        words = raw[:whole].view(torch.int64) if aligned else raw
        weights = _weights(torch, storage.device)
        cpu = storage.device.type == "cpu"
        total = torch.zeros((), dtype=torch.int64, device=storage.device)
        for i in range(0, words.numel(), _CHUNK):
            part = words[i:i + _CHUNK] if aligned else words[i:i + _CHUNK].to(torch.int64)
            w = weights[: part.numel()]
            total += torch.dot(part, w) if cpu else (part * w).sum()
        return (int(total), *raw[whole:].tolist())


#: device -> the ``_CHUNK`` weights ``_digest`` multiplies by (made once per device and process: a digest is compared
#: with one of the same storage made with the same weights)
_WEIGHTS: dict[str, Any] = {}


def _weights(torch: Any, device: Any) -> Any:
    w = _WEIGHTS.get(str(device))
    if w is None:
        g = torch.Generator().manual_seed(71)
        w = torch.randint(-(2 ** 62), 2 ** 62, (_CHUNK,), generator=g, dtype=torch.int64).mul_(2).add_(1)
        w = _WEIGHTS[str(device)] = w.to(device)
    return w


def _modes_below() -> bool:
    """Whether another dispatch mode is on this thread's stack below this one (a caller's ``FlopCounterMode``): the
    op is then called as it is, for that mode to see it (a redispatch below ``Python`` would skip it)."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return bool(_get_current_dispatch_mode_stack())


def _version(t: Any) -> Any:
    """``t._version``, None where it has none (an inference tensor)."""
    try:
        return t._version
    except RuntimeError:
        return None


def _written(torch: Any, func: Any, args: tuple, kwargs: dict) -> list:
    """The tensors ATen op ``func`` writes into by its schema (``Tensor(a!)`` arguments, lists of them included), and
    any ``running_*`` argument: the batch-norm family (``native_batch_norm``, ``cudnn_batch_norm``,
    ``miopen_batch_norm``, ``_batch_norm_impl_index``...) updates its running stats in training with no write in its
    schema (a train-mode BatchNorm's stats stayed moved after compile, a test showed)."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return []
    out = []
    for i, arg in enumerate(schema.arguments):
        info = arg.alias_info
        if (info is None or not info.is_write) and not arg.name.startswith("running_"):
            continue
        value = args[i] if i < len(args) and not arg.kwarg_only else kwargs.get(arg.name)
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(v, torch.Tensor):
                out.append(v)
    return out
