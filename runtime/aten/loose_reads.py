"""The value reads no value-read mode sees: a thread that already runs reading a tensor ``forward`` hands it by a
channel ``thread_reads`` does not wrap, and a read under torch's own ``DisableTorchFunction`` held where
``disable_names`` does not reach.

Why: ``value_reads`` watches ``T.item()``, ``bool(T)``... with a ``TorchFunctionMode``, which is per thread and which
``DisableTorchFunction`` switches off. Round 68's probes ran the export's numbers silently after ``S.mul_(0.25)``
(compiled 0.466 where eager gave 0.455) for a tensor handed to a thread that ran before compile by a
``queue.SimpleQueue`` (a C type: its ``put`` cannot be wrapped), a ``collections.deque`` and a ``threading.Event``,
``asyncio``'s ``call_soon_threadsafe`` and ``run_coroutine_threadsafe``, a ``_thread.start_new_thread`` bound to
another name before compile; and for ``T.tolist()`` under ``torch._C.DisableTorchFunction`` held in a list, a dict,
a tuple, a ``functools.partial`` or an object four levels down (``[5.0]`` where eager gave ``[6.0]``).

The backstop: while any export watches (``value_reads._disable_seen``) the value getters are set on ``torch.Tensor``
itself (``item``, ``tolist``, ``__float__``, ``__int__``, ``__bool__``, ``__index__``, ``__complex__``; torch defines
them on ``TensorBase``, so deleting them afterwards leaves ``torch.Tensor`` exactly as it was). Each one records a
real tensor's read where no mode of the export's sees it: in a thread that watches nothing (into every running
watch: which export the thread serves cannot be told, and a read recorded needlessly costs at most a proof by an
export again after a change), or in a watching thread under torch's ``DisableTorchFunction`` (into its innermost
mode's reads). Elsewhere it only calls torch's method. The cost, while an export runs only: one Python call per
value read in every thread (``bench_reads``' loose-read line). A tensor such a thread computes and then reads
(``bool(S > 1)``) is a temporary: gone by compile's end, warned (``value_reads.warn_unwatched``), not watched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from memplan._forklocks import fork_safe

from . import value_modes as _modes
from .value_modes import GETTER_IDS, VALUE_GETTERS, _mode_class

#: the getters set on ``torch.Tensor`` while any export watches: name -> what ``torch.Tensor`` held (``_INHERITED``:
#: nothing of its own, deleted again)
_PATCHED: dict[str, Any] = {}
_INHERITED = object()
#: name -> the getter set (its id is in ``value_modes.GETTER_IDS`` while set)
_OURS: dict[str, Any] = {}
#: the ``value_reads.NumberReads`` of every watching block running (all threads), for the reads of threads that
#: watch nothing
_BLOCKS: list[Any] = []
_LOCK = fork_safe(threading.Lock())


def add_block(reads: Any) -> None:
    with _LOCK:
        _BLOCKS.append(reads)


def drop_block(reads: Any) -> None:
    with _LOCK:
        while any(r is reads for r in _BLOCKS):
            _BLOCKS.remove(next(r for r in _BLOCKS if r is reads))


def patch_on(torch: Any) -> None:
    """Set the recording getters on ``torch.Tensor`` (under ``value_reads``' lock, at the first watching block)."""
    _mode_class(torch)   # (its ids of torch's getters first)
    _not_user_code(torch)
    for name in VALUE_GETTERS:
        if name in _PATCHED or not hasattr(torch._C.TensorBase, name):
            continue
        _PATCHED[name] = vars(torch.Tensor).get(name, _INHERITED)
        real = getattr(torch.Tensor, name)
        getter = functools.wraps(real)(_getter(torch, real))
        GETTER_IDS.add(id(getter))   # (torch hands a mode the method ``torch.Tensor`` has by that name: this one)
        _OURS[name] = getter
        setattr(torch.Tensor, name, getter)


def _not_user_code(torch: Any) -> None:
    """This file among the ones torch's symbolic shapes never name as the user's line (its cached sets). Why: a
    refused branch's "data-dependent expression" names the innermost frame out of torch's files, which would be the
    getter's here, and ``value_reads.branch_refused`` reads ``forward``'s line from it (round 66's refusals)."""
    import importlib

    for name in ("torch.fx.experimental.symbolic_shapes", "torch._dynamo.guards"):
        with contextlib.suppress(Exception):   # (another torch's layout: its messages then name this line)
            files = importlib.import_module(name).uninteresting_files()
            if isinstance(files, set):
                files.add(__file__)


def patch_off(torch: Any) -> None:
    """Put ``torch.Tensor``'s getters back (under ``value_reads``' lock, at the last watching block's end)."""
    for name, was in list(_PATCHED.items()):
        ours = _OURS.pop(name, None)
        GETTER_IDS.discard(id(ours))
        if vars(torch.Tensor).get(name) is not ours:   # (set again while the export ran, by ``forward`` or another
            del _PATCHED[name]   # thread, a library imported lazily: theirs is kept; review of round 68: deleted)
            continue
        if was is _INHERITED:
            with contextlib.suppress(AttributeError):
                delattr(torch.Tensor, name)
        else:
            setattr(torch.Tensor, name, was)
        del _PATCHED[name]


def _getter(torch: Any, real: Callable) -> Callable:
    """``real`` (torch's getter), recording the read where no mode sees it (the module's doc)."""
    dynamo = getattr(getattr(torch, "compiler", None), "is_dynamo_compiling", None)
    all_off = getattr(torch._C, "_is_torch_function_all_disabled", None)
    enabled = torch._C._is_torch_function_enabled

    def disabled() -> bool:
        return bool(all_off()) if all_off is not None else not enabled()

    def memplan_value_getter(self: Any, *args: Any, **kwargs: Any) -> Any:
        if dynamo is None or not dynamo():   # (Dynamo tracing it: stand-ins, no values; folded to the call alone)
            _seen(torch, self, disabled)
        return real(self, *args, **kwargs)

    return memplan_value_getter


#: how the place of a read by a thread that watches nothing ends (``_seen``)
UNWATCHED_THREAD = "which compile does not watch)"


class LooseReadWarning(UserWarning):
    """A thread compile does not watch read a tensor's values while forward was exported (``warn_loose``)."""


def warn_loose(program: Any) -> list[str]:
    """Warn (``LooseReadWarning``) naming each read of a thread that watches nothing that ``program`` recorded; the
    places (for tests).

    Why: such a read is recorded for every export running (``_seen``: which export the thread serves cannot be told),
    and the tensor is then watched, so a thread of the user's that has nothing to do with ``forward`` (a metrics or
    logging thread: ``m.add_(1); m.item()`` in a loop) made every compiled call export ``forward`` again to prove its
    change harmless, silently (review of round 68: a compiled ``nn.Linear`` call took ~140 ms where eager took
    ~0.1 ms, one export per call). Refusing or dropping the read would reopen round 68's silent numbers."""
    places = [where for _i, where in getattr(program, "value_reads", ()) if where.endswith(UNWATCHED_THREAD)]
    if places:
        warnings.warn(LooseReadWarning(
            f"while forward was exported, a thread compile does not watch read a tensor's values as Python numbers "
            f"({'; '.join(places[:3])}{' ...' if len(places) > 3 else ''}): compile cannot tell whether forward's "
            "numbers came from it, so it watches that tensor, and each change of it makes the next compiled call "
            "export forward again (seconds for a large model). If forward does not depend on that thread, pause it "
            "while compile runs, or compile again after it stopped"), stacklevel=3)
    return places


def _seen(torch: Any, t: Any, disabled: Callable[[], bool]) -> None:
    local = _modes._LOCAL.__dict__   # (``value_modes._active()`` and ``_waiting()``, inlined: this runs at
    active = local.get("modes")   # every read, and ``getattr`` of a thread's missing name raises inside: 3 us)
    if active:
        if not disabled():   # (the mode is consulted: it records)
            return
        targets = [active[-1].reads]
    elif local.get("waiting"):   # (the export's machinery around the module's call, exporting thread)
        return
    else:
        targets = _BLOCKS   # (read without the lock: a list's iteration holds the GIL; copied below to record)
    key = id(t)
    for reads in targets:
        if key not in reads:
            break
    else:
        return   # (recorded already, in every block: the common case of a loop reading one tensor, first)
    if not isinstance(t, torch.Tensor) or not _modes._real(torch, t):
        return
    targets = list(targets)
    frame = sys._getframe(2)   # (the getter's caller: past ``_seen``, ``memplan_value_getter``)
    module = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    if module.split(".")[0] in ("memplan", "runtime") or (
            module.startswith("torch._") and not module.startswith(_modes._TORCH_PUBLIC)):
        return
    where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}" if frame is not None else "?"
    if not active:
        where += f" (in thread {threading.current_thread().name!r}, {UNWATCHED_THREAD}"
    for reads in targets:
        if id(t) not in reads:
            reads[id(t)] = where
            with contextlib.suppress(TypeError, AttributeError):   # (a subclass refusing weak references)
                reads.objects[id(t)] = weakref.ref(t)
