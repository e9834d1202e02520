"""A module tree's state as it was, put back in place after compile ran ``forward`` eagerly (``flag_reads``' comparison
of the compiled program with eager).

Why: the comparison runs eager ``forward`` on the module itself, and the branch eager takes is the one the export did
not (``if not torch.compiler.is_compiling(): self.log["calls"].append(n)``), so no export watch saw what it changes.
Round 68 put back the module's tensors and its modules' own attributes only, by identity: a list in a dict attribute,
a nested dict, a counter on a plain object the module holds, a tensor in a container, each kept eager's change after
compile (round 69: ``self.log["calls"]`` held one call more, ``self.stats.count`` was 1, silently). Now every list,
dict, set, deque and bytearray and every settings object (a ``__dict__`` or ``__slots__`` of a user's class) reachable
from the modules' attributes is snapshot shallowly, ``DEPTH`` levels and ``BUDGET`` values at most, and each one that
changed gets its items back in place (its identity kept: other places hold it); tensors held there get their values
back. Copy-on-write (round 70): no tensor is copied up front (every weight cloned held a model's weights twice at
compile); each dense tensor's storage is saved at the first op that writes it (``storage_saves``: eager's run under
``watching``, the compiled step's written weights by ``save_written``), and only those are put back. Where the
bounds cut the walk, a ``StateWalkWarning`` names the place. The user's classes' attributes and the globals of the
user's modules (``installed.user_packages``) are snapshot and put back too (round 70: ``type(self).counter += 1``
and ``CALLS.append(...)`` in eager's branch stayed after compile). Round 71: sparse compressed (CSR, CSC, BSR, BSC)
and nested tensors are copied up front and put back (``_put_tensor``), each leaf's ``requires_grad`` and ``grad``
too, and a name added to a module's globals is deleted only where it can be the run's alone (``_put_space``).
"""

from __future__ import annotations

import collections
import contextlib
import warnings
from typing import Any

from .object_fields import object_field_dict, slot_names

#: how many levels below a module's attributes, and how many values in all, the snapshot walks
DEPTH, BUDGET = 32, 100_000
#: how many of the user's functions ``ModuleState._functions`` walks the defaults and closures of at most
_FUNCTIONS = 10_000
#: a module's own dicts whose items are put back but not walked (the tree's tensors and modules are their own)
_OWN = ("_parameters", "_buffers", "_modules")


class ModuleState:
    """The module tree's tensors' values, its modules' attributes and what they hold, put back by ``restore``."""

    def __init__(self, torch: Any, module: Any) -> None:
        self.torch = torch
        tensors = {id(t): t for t in [*module.parameters(), *module.buffers()]}
        #: (a tensor of its own dispatch, a copy of it): the dense tensors a save before write cannot watch
        self.tensors: list[tuple[Any, Any]] = []
        #: the other dense tensors met, for ``StorageSaves`` (made once the walk is done)
        self._plain: list[Any] = []
        #: (a leaf tensor met, its ``requires_grad``, its ``grad``) as they were: round 71
        self.flags: list[tuple[Any, bool, Any]] = []
        for t in tensors.values():
            self._tensor(t)
        self.attrs = [(m, dict(vars(m))) for m in module.modules()]
        #: (the object, its snapshot) of each container or settings object met, in the order met
        self.inner: list[tuple[Any, Any]] = []
        #: (a dict or list subclass instance met, its own attributes): put back beside its items
        self.mirrors: list[tuple[Any, dict]] = []
        self._seen = set(tensors) | {id(m) for m in module.modules()}
        self._budget = BUDGET
        self._cut: list[str] = []
        for m, was in self.attrs:
            for key, v in was.items():
                label = f"{type(m).__name__}.{key}"
                if key in _OWN and type(v) is dict:
                    self._take(v, label, walk=False)
                else:
                    self._walk(v, label, DEPTH)
        #: (a user's class of the tree, or a user module's globals, its items as they were): round 70
        self.spaces = _user_spaces(torch, module)
        #: each other thread's running frame and its place in it as the snapshot is taken (``_put_space``)
        self.others = _thread_frames()
        #: (a closure cell of a user's function, its contents as they were): round 71
        self.cells: list[tuple[Any, Any]] = []
        self._functions()
        for owner, was in self.spaces:
            where = owner.__name__ if isinstance(owner, type) else owner.get("__name__", "?")
            for key, v in was.items():
                # (a dunder name is the interpreter's, not state forward changes: each test module's ``__loader__``
                # is pytest's hook, which holds the whole session, and walking it spent the budget before a module's
                # own lists were taken: CI, round 70)
                if key.startswith("__") and key.endswith("__"):
                    continue
                if not (isinstance(v, type) or callable(v) and not isinstance(v, (dict, list, set))):
                    self._walk(v, f"{where}.{key}", DEPTH)
        from .storage_saves import StorageSaves

        #: the plain tensors' storages, saved at their first write (``watching``, ``save_written``): no copy of every
        #: weight up front (round 70)
        self.saves = StorageSaves(torch, self._plain)
        del self._plain
        if self._cut:
            from .walk_bounds import StateWalkWarning

            warnings.warn(StateWalkWarning(
                f"{', '.join(self._cut[:3])}{' ...' if len(self._cut) > 3 else ''}: held deeper or in more values "
                f"than compile snapshots ({DEPTH} levels, {BUDGET} values) before it runs forward eagerly to compare "
                "it with the program (forward asks whether torch is tracing it): a change eager's branch makes there "
                "stays after compile"), stacklevel=4)

    def _functions(self) -> None:
        """Walk the default values (``__defaults__``, ``__kwdefaults__``) and closure cells of the user's functions:
        the methods of the user's classes of the tree, the functions of the user's modules, and the user's functions
        those cells hold (a helper ``forward`` calls). Why: ``def forward(self, x, acc=torch.zeros(2), *, log=[])``
        or a helper's ``nonlocal``/closure list, written in eager's branch (``acc.add_(1)``, ``log.append(1)``,
        ``hist.append(x)``), stayed after compile: none is a module attribute, a class attribute or a global
        (round 71). Each cell's contents are put back too (``nonlocal n; n += 1``)."""
        import types

        tops: set[str] = set()
        queue: list[tuple[Any, str]] = []
        for owner, was in self.spaces:
            if isinstance(owner, type):
                tops.add(str(owner.__module__).partition(".")[0])
                queue += [(getattr(v, "__func__", v), f"{owner.__name__}.{k}") for k, v in was.items()]
            else:
                name = str(owner.get("__name__", "?"))
                tops.add(name.partition(".")[0])
                queue += [(v, f"{name}.{k}") for k, v in was.items()
                          if isinstance(v, types.FunctionType) and v.__module__ == name]
        done: set[int] = set()
        while queue and len(done) < _FUNCTIONS:
            fn, where = queue.pop()
            if not isinstance(fn, types.FunctionType) or id(fn) in done:
                continue
            done.add(id(fn))
            for i, v in enumerate(fn.__defaults__ or ()):
                self._walk(v, f"{where}.__defaults__[{i}]", DEPTH)
            if fn.__kwdefaults__:
                self._walk(fn.__kwdefaults__, f"{where}.__kwdefaults__", DEPTH)
            for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
                try:
                    v = cell.cell_contents
                except ValueError:   # (an empty cell)
                    continue
                self.cells.append((cell, v))
                if isinstance(v, types.FunctionType):
                    if str(getattr(v, "__module__", "") or "").partition(".")[0] in tops:
                        queue.append((v, f"{where}.<{name}>"))
                elif not isinstance(v, type) and not isinstance(v, types.ModuleType):
                    self._walk(v, f"{where}.<{name}>", DEPTH)

    def _take(self, v: Any, label: str, walk: bool = True) -> list[tuple[str, Any]]:
        """Snapshot ``v`` (a container or settings object); the (label, value) of what it holds, to walk."""
        torch = self.torch
        if isinstance(v, torch.Tensor):
            self._tensor(v)
            return []
        if isinstance(v, (dict, list)) and type(v) not in (dict, list) and type(getattr(v, "__dict__", None)) is dict:
            # (a dict subclass's own attributes: a transformers ``ModelOutput`` mirrors each item as an attribute,
            # and only its items came back, ``out.logits`` kept eager's value: round 70)
            self.mirrors.append((v, dict(vars(v))))
        if isinstance(v, dict):
            self.inner.append((v, _dict_copy(v)))
            return [(f"{label}[{k!r}]", x) for k, x in dict.items(v)] if walk else []
        if isinstance(v, list):
            self.inner.append((v, list.copy(v)))
            return [(f"{label}[{i}]", x) for i, x in enumerate(list.copy(v))]
        if isinstance(v, collections.deque):
            self.inner.append((v, list(v)))
            return [(f"{label}[{i}]", x) for i, x in enumerate(list(v))]
        if isinstance(v, (set, bytearray)):
            self.inner.append((v, v.copy()))
            return []
        if isinstance(v, tuple):
            return [(f"{label}[{i}]", x) for i, x in enumerate(v)]
        fields = _fields(torch, v)
        if fields is None:
            return []
        self.inner.append((v, fields))
        return [(f"{label}.{k}", x) for k, x in fields.items()]

    def _tensor(self, t: Any) -> None:
        """Watch dense tensor ``t`` for a save before write, or copy it now where it has a dispatch of its own (a
        tensor subclass: its writes reach the mode as its inner tensors', not its own). A leaf's ``requires_grad``
        and ``grad`` are recorded (``flags``), and its ``grad``'s storage watched too. Why: ``requires_grad_(False)``
        (freezing a layer), ``self.w.grad = g`` or ``self.w.grad.zero_()`` in eager's branch stayed after compile,
        silently: neither is a value of the tensor's storage (round 71)."""
        if t.is_leaf:
            grad = t.grad
            self.flags.append((t, t.requires_grad, grad))
            if isinstance(grad, self.torch.Tensor) and grad is not t:
                self._tensor(grad)
        if (t.layout != self.torch.strided or t.is_nested) and t.device.type != "meta":
            # (no storage of its own to watch; copied now: a sparse tensor the module holds, ``add_``-ed in eager's
            # branch, stayed doubled after compile, review of round 70; a CSR, CSC, BSR or BSC one, or a nested one,
            # ``mul_``-ed there stayed tripled, round 71. Such attributes are masks and ragged batches, not the
            # weights copy-on-write spares)
            with self.torch.no_grad():
                self.tensors.append((t, t.detach().clone()))
            return
        if not _restorable(self.torch, t):
            return
        if self.torch._C._dispatch_keys(t).has(self.torch._C.DispatchKey.Python):
            with self.torch.no_grad():
                self.tensors.append((t, t.detach().clone()))
        else:
            self._plain.append(t)

    def watching(self) -> Any:
        """The mode to run eager ``forward`` under: each watched storage is saved before an op writes it."""
        return self.saves.watching()

    def save_written(self, tensors: Any) -> None:
        """Save now the storages of ``tensors`` (the compiled step's written weights: it runs under no mode)."""
        for t in tensors:
            self.saves.save(t)

    def _walk(self, v: Any, label: str, left: int) -> None:
        stack = [(v, label, left)]
        while stack:
            v, label, left = stack.pop()
            if v is None or isinstance(v, (bool, int, float, complex, str, bytes)) or id(v) in self._seen:
                continue
            self._budget -= 1
            if left <= 0 or self._budget <= 0:
                if _holder(self.torch, v):
                    self._cut.append(label)
                continue
            self._seen.add(id(v))
            stack.extend((x, name, left - 1) for name, x in reversed(self._take(v, label)))

    def restore(self) -> None:
        torch = self.torch
        self.saves.restore()
        with torch.no_grad():
            for t, was in self.tensors:
                _put_tensor(torch, t, was)
        for t, needs, grad in self.flags:
            if t.grad is not grad:
                t.grad = grad
            if t.requires_grad != needs:
                t.requires_grad_(needs)
        for m, was in self.attrs:
            _put_dict(vars(m), was)
        others = _ran_since(self.others)
        kept: list[str] = []
        for owner, was in self.spaces:
            kept += _put_space(owner, was, others)
        if kept:
            from .walk_bounds import StateWalkWarning

            warnings.warn(StateWalkWarning(
                f"{', '.join(kept[:3])}{' ...' if len(kept) > 3 else ''}: added while compile ran forward eagerly to "
                "compare it with the program (forward asks whether torch is tracing it), with other threads running: "
                "left in place, as another thread may have added it (delete it if forward's eager branch did)"),
                stacklevel=3)
        for cell, was in self.cells:
            if cell_contents(cell) is not was:   # (emptied, ``del`` of a ``nonlocal``, or rebound)
                cell.cell_contents = was
        with torch.no_grad():
            for v, was in self.inner:
                _put(torch, v, was)
        for v, was in self.mirrors:
            _put_dict(vars(v), was)


def _user_spaces(torch: Any, module: Any) -> list[tuple[Any, dict]]:
    """(owner, its items) of each class of the user's code the tree's modules are (their bases of the user's too), and
    of the globals of each imported module of the user's packages (``installed.user_packages``; the script's
    main module where a class comes from it).

    Why: eager's branch of ``forward`` (``if not torch.compiler.is_compiling():``) ran at compile as no eager call of
    the user's did, and ``type(self).counter += 1``, ``REGISTRY.append(...)`` or ``global COUNT; COUNT += 1`` there
    stayed after compile (round 70: one call counted that never happened). Library classes and modules (torch,
    transformers...) are not the user's: their state is left alone."""
    import sys

    from .installed import user_packages

    users = user_packages(torch, module) - {"memplan", "runtime"}   # (this runtime's own state is its own: a
    out: list[tuple[Any, dict]] = []   # ``runtime.aten.tiny_cnn`` model must not put back its watches' tables)
    seen: set[int] = set()
    for m in module.modules():
        for cls in type(m).__mro__:
            top = str(getattr(cls, "__module__", "") or "").partition(".")[0]
            if top in users and id(cls) not in seen:
                seen.add(id(cls))
                out.append((cls, dict(cls.__dict__)))
    for name, mod in list(sys.modules.items()):
        space = getattr(mod, "__dict__", None)
        if name.partition(".")[0] in users and type(space) is dict and id(space) not in seen:
            seen.add(id(space))
            out.append((space, dict(space)))
    return out


def _thread_frames() -> dict[int, tuple[Any, int, int | None]]:
    """{ident: (its running frame, the frame's ``f_lasti``, its CPU time in ns or None)} of each Python thread but
    the calling one."""
    import sys
    import threading

    me = threading.get_ident()
    return {ident: (f, f.f_lasti, _cpu_ns(ident)) for ident, f in sys._current_frames().items() if ident != me}


def _cpu_ns(ident: int) -> int | None:
    """The CPU time thread ``ident`` has used, in ns (None where the platform cannot say: not POSIX, or the thread
    gone). Why: a thread blocked at the same place in a loop may have run a turn of it or none (``_in_loop``); its
    CPU clock tells them apart, so a thread that only waited (pytest-xdist's execnet reader blocked in its receive
    loop throughout, a server's idle poller) no longer counts as a writer."""
    import time

    try:
        return time.clock_gettime_ns(time.pthread_getcpuclockid(ident))
    except (AttributeError, OSError, OverflowError, ValueError):
        return None


def _ran_since(was: dict[int, tuple[Any, int, int | None]]) -> bool:
    """Whether a thread other than the calling one, alive at snapshot ``was`` (``_thread_frames``), may have run
    Python code since: it ended, or its running frame or its place in it moved. One blocked throughout (an idle
    pool's worker, a thread waiting on an event, a notebook's heartbeat) ran none, so wrote no global: it does not
    count. A thread started since is the run's (``forward``'s own)."""
    now = _thread_frames()

    def ran(ident: int, f: Any, lasti: int, cpu: int | None) -> bool:
        if ident not in now or now[ident][0] is not f or f.f_lasti != lasti:
            return True
        cpu_now = now[ident][2]
        if cpu is not None and cpu_now is not None:
            return cpu_now != cpu            # (blocked at the same place: ran a turn only if it used the CPU)
        return _in_loop(f.f_code, lasti)

    return any(ran(ident, f, lasti, cpu) for ident, (f, lasti, cpu) in was.items())


def _in_loop(code: Any, lasti: int) -> bool:
    """Whether instruction ``lasti`` of ``code`` lies inside a loop (between a backward jump and its target): a frame
    blocked there in a C call (``SimpleQueue.get``, ``time.sleep``, a socket's ``recv``) may have run a whole turn of
    its loop, Python code, and be blocked at the very place again, the same frame. Why: an idle
    ``ThreadPoolExecutor`` worker (``_worker``'s ``while True: work_queue.get(...)``) ran a job binding a new global
    during the run and was back in ``get``, so ``_ran_since`` said it ran nothing and the job's global was deleted
    under it (review of round 71)."""
    import dis

    try:
        for ins in dis.get_instructions(code):
            target = ins.argval
            if (ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs) and isinstance(target, int) \
                    and target <= lasti <= ins.offset:
                return True
    except Exception:  # noqa: BLE001 - (unsure: counted as having run)
        return True
    return False


def _put_space(owner: Any, was: dict, others: bool = False) -> list[str]:
    """A class's attributes or a module's globals back as ``was`` holds them, key by key (no clear: a module's
    globals are read by other threads at any time), where they differ by identity; returns the names of those added
    since that are left in place.

    Which names added since are deleted: compile's run is one of the writers of a module's globals; a name it binds
    (``global SEEN; SEEN = ...`` in eager's branch) must go, one another thread binds meanwhile must stay, and nothing
    tells them apart (no dict of Python 3.11 says who wrote it). So:

    - a module bound as a name (a package's ``pkg.sub`` that an ``import pkg.sub`` binds, in eager's branch or any
      thread) stays: ``sys.modules`` keeps the import, and a later ``import pkg.sub`` does not bind it again, so the
      deleted name made ``pkg.sub`` raise ``AttributeError`` for good (round 71);
    - another name is deleted where no thread alive at the snapshot but compile's ran Python code since (``others``
      False, ``_ran_since``: idle threads, a thread the run started and joined, are no other writer), and left,
      named (``StateWalkWarning``), where one did and may have bound it (round 71: a worker thread's new global was
      deleted under it, a ``NameError`` there). Deleting turns that race into a crash of the other thread, leaving
      it into one name more, said.

    A name that was there is set back whoever rebound it: the old value is one the user's code had, where a deletion
    would leave none (another thread's rebinding in the run's window is lost, as in any race)."""
    now = dict(owner.__dict__) if isinstance(owner, type) else dict(owner)
    kept: list[str] = []
    where = owner.__name__ if isinstance(owner, type) else str(owner.get("__name__", "?"))
    for key in [k for k in now if k not in was]:
        if _import_binding(now[key]):
            continue
        if others:
            kept.append(f"{where}.{key}")
            continue
        if isinstance(owner, type):
            with contextlib.suppress(AttributeError, TypeError):
                delattr(owner, key)
        else:
            owner.pop(key, None)
    for key, x in was.items():
        if now.get(key, _NONE) is not x:
            if isinstance(owner, type):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(owner, key, x)
            else:
                owner[key] = x
    return kept


def _import_binding(v: Any) -> bool:
    """Whether ``v``, a name added to a module's globals, is a module (an import's binding: kept, ``_put_space``)."""
    import types

    return isinstance(v, types.ModuleType)


def cell_contents(cell: Any) -> Any:
    """A closure cell's contents, ``_NONE`` where it is empty."""
    try:
        return cell.cell_contents
    except ValueError:
        return _NONE


def _put_tensor(torch: Any, t: Any, was: Any) -> None:
    """Tensor ``t``'s values back from its copy ``was`` in place: a sparse compressed one (CSR, CSC, BSR, BSC) resized
    to ``was``'s count of elements first (its ``copy_`` takes the same count only: an ``add_`` that filled it, 4 to 16
    elements, was torch's raw "only sparse compressed tensors with the same number of specified elements"); a
    nested one by its own ``copy_`` (its ``shape`` raises). Refused, naming the tensor, where torch cannot."""
    try:
        if t.is_nested:
            t.copy_(was)
        elif t.layout not in (torch.strided, torch.sparse_coo):
            if t._nnz() != was._nnz():
                t.resize_as_sparse_(was)
            t.copy_(was)
        elif t.shape == was.shape and t.dtype == was.dtype:
            t.copy_(was)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        from .errors import AtenExecutorError

        kind = "nested" if t.is_nested else str(t.layout).replace("torch.", "")
        raise AtenExecutorError(
            f"compile ran forward eagerly to compare it with the program (forward asks whether torch is tracing it), "
            f"and that run changed a {kind} {str(t.dtype).replace('torch.', '')} tensor the module holds, which "
            f"compile cannot put back in place ({str(exc).splitlines()[0][:200]}): it stays as that run left it. Change "
            "the tensor outside forward's eager branch, or take the flag out of forward") from None


def _restorable(torch: Any, t: Any) -> bool:
    """Whether tensor ``t``'s values can be compared and put back (``torch.equal``, ``copy_``): a dense tensor
    with data. Why: a meta, sparse or nested tensor the module holds (a placeholder, a mask; not one ``forward``
    uses) made compile fail with torch's raw ``NotImplementedError`` ("aten::equal ... Meta tensors", "SparseCPU")
    or ``RuntimeError`` ("NestedTensorImpl doesn't support sizes") as it put the state back (review of round 69).
    A meta tensor has no values to put back; sparse and nested ones are copied up front instead (``_tensor``)."""
    return t.layout == torch.strided and not t.is_nested and t.device.type != "meta"


def _holder(torch: Any, v: Any) -> bool:
    """Whether ``v`` holds state the snapshot would have walked (a container, a tensor or a settings object)."""
    return (isinstance(v, (dict, list, tuple, set, bytearray, collections.deque, torch.Tensor))
            or _fields(torch, v) is not None)


def _fields(torch: Any, v: Any) -> dict[str, Any] | None:
    """A settings object's fields (its ``__dict__`` or filled ``__slots__``, ``object_fields.object_field_dict``), None for
    anything else (a module, a function, torch's or the standard library's objects)."""

    return object_field_dict(torch, v)


def _dict_copy(d: dict) -> dict:
    """``d``'s items in ``d``'s own order: an ``OrderedDict``'s order is its linked list's (``move_to_end``), not
    its underlying dict's."""
    if isinstance(d, collections.OrderedDict):
        return dict(collections.OrderedDict.items(d))
    return dict.copy(d)


def _put_dict(d: dict, was: dict) -> None:
    """``d``'s items back as ``was`` holds them, in place. Why an ``OrderedDict`` through its own methods:
    ``dict.clear``/``dict.update`` on one bypass its linked list, so an ``OrderedDict`` attribute eager's branch
    added to (an LRU cache) was left broken after compile: ``list(d)`` named a key it no longer held, ``repr(d)``
    raised ``KeyError`` (review of round 69). Not its ``__setitem__``: a subclass's (an LRU cache that evicts) runs
    no user code here."""
    if isinstance(d, collections.OrderedDict):
        if list(collections.OrderedDict.keys(d)) == list(was) and all(
                dict.get(d, k, _NONE) is x for k, x in was.items()):
            return
        collections.OrderedDict.clear(d)
        for k, x in was.items():
            collections.OrderedDict.__setitem__(d, k, x)
        return
    if len(d) == len(was) and all(dict.get(d, k, _NONE) is x for k, x in was.items()):
        return
    dict.clear(d)
    dict.update(d, was)


def _put(torch: Any, v: Any, was: Any) -> None:
    """Put ``v``'s items (or fields, or values) back as ``was`` holds them, where they differ."""
    if isinstance(v, torch.Tensor):
        if v.shape == was.shape and v.dtype == was.dtype and not torch.equal(v, was):
            v.copy_(was)
    elif isinstance(v, dict):
        _put_dict(v, was)
    elif isinstance(v, list):
        if len(v) != len(was) or any(a is not b for a, b in zip(list.copy(v), was)):
            list.__setitem__(v, slice(None), was)
    elif isinstance(v, collections.deque):
        if len(v) != len(was) or any(a is not b for a, b in zip(list(v), was)):
            v.clear()
            v.extend(was)
    elif isinstance(v, set):
        if v != was:
            v.clear()
            v.update(was)
    elif isinstance(v, bytearray):
        if v != was:
            v[:] = was
    elif hasattr(v, "__dict__") and type(vars(v)) is dict:
        _put_dict(vars(v), was)
    else:   # (a slotted object's filled slots)
        for key in [k for k in _slots(v) if k not in was]:
            try:
                delattr(v, key)
            except AttributeError:
                pass
        for key, x in was.items():
            if getattr(v, key, _NONE) is not x:
                setattr(v, key, x)


def _slots(v: Any) -> list[str]:

    return [k for k in slot_names(type(v)) if hasattr(v, k)]


_NONE = object()
