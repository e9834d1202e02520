"""The pieces the watch of value reads shares with the patches it sets while an export watches: the per-thread stack
of value-read modes (``_active``, ``_waiting``), the mode's class (``_mode_class``) and the ids of the getters it
records (``GETTER_IDS``), the test of a user's real tensor (``_real``), and the count of watching blocks with torch's
``DisableTorchFunction`` they replace (``_DISABLE``).

Why a module of its own: ``value_reads`` sets ``disable_names``', ``flag_reads``', ``loose_reads``' and
``thread_reads``' patches on and off and asks ``frame_reads`` and ``value_refusals`` to name a refused read, and each
of those read this state back from ``value_reads``: a circle of imports. Here it sits below all of them and imports
none (torch is handed in by the callers), so the flow runs one way.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from typing import Any

#: the tensor methods that hand ``forward`` its values as Python numbers (``__format__`` and ``numpy`` go through
#: ``item`` or fail on export's stand-ins)
VALUE_GETTERS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "__complex__")

#: the packages whose reads are no ``forward``'s: the export and import around it
_OWN_PACKAGES = ("memplan", "runtime")

#: torch's private modules whose reads are ``forward``'s own (``Tensor.__format__`` calls ``item()``)
_TORCH_PUBLIC = ("torch._tensor", "torch._jit_internal")

#: the module of the getters set on ``torch.Tensor`` while an export watches (``_reader`` looks past them)
_LOOSE = __package__ + ".loose_reads" if __package__ else "runtime.aten.loose_reads"

#: the name of every getter ``loose_reads._getter`` makes (``_reader`` looks past its frame to the reader's)
GETTER_NAME = "memplan_value_getter"

#: how many blocks of ``watch_value_reads`` run (all threads), and torch's ``DisableTorchFunction`` they replace
_DISABLE: dict[str, Any] = {"count": 0, "torch": None}

#: per thread, the value-read modes active (innermost last): only the innermost records
_LOCAL = threading.local()


def _active() -> list[Any]:
    stack = getattr(_LOCAL, "modes", None)
    if stack is None:
        stack = _LOCAL.modes = []
    return stack


def _waiting() -> list[Any]:
    """This thread's modes of ``forward_only`` blocks (innermost last), armed by ``forward_watched``."""
    stack = getattr(_LOCAL, "waiting", None)
    if stack is None:
        stack = _LOCAL.waiting = []
    return stack


def _take_off(torch: Any, mode: Any) -> None:
    """Remove ``mode`` from this thread's torch function mode stack wherever it is, keeping the others in order."""
    above: list[Any] = []
    while torch._C._len_torch_function_stack() > 0:
        top = torch._C._pop_torch_function_stack()
        if top is mode:
            break
        above.append(top)   # (not found at all: an interrupt before the push; all go back)
    for m in reversed(above):
        torch._C._push_on_torch_function_stack(m)


_MODE_CLASS: Any = None

#: the ids of the getters the mode records (``_mode_class``; ``loose_reads.patch_on`` adds its own while set)
GETTER_IDS: set[int] = set()


def _mode_class(torch: Any) -> type:
    """The ``TorchFunctionMode`` subclass recording value reads, made once (torch is imported lazily)."""
    global _MODE_CLASS
    if _MODE_CLASS is None:
        getters = GETTER_IDS   # (torch's own, and ``loose_reads``' on ``torch.Tensor`` while set: torch hands
        # a mode the method it finds on ``torch.Tensor`` by name)
        getters.update(id(getattr(torch._C.TensorBase, name)) for name in VALUE_GETTERS
                       if hasattr(torch._C.TensorBase, name))
        getters.update(_memory_getters(torch))
        compiling = _compiling(torch)

        class ValueReads(torch.overrides.TorchFunctionMode):
            """Records ``reads`` (``watch_value_reads``); passes every call on unchanged."""

            def __init__(self, torch: Any, reads: dict[int, str]) -> None:
                super().__init__()
                self.torch, self.reads = torch, reads
                self.armed = False   # (the module's call ran under it: ``forward_watched``)

            def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
                if compiling():   # (Dynamo tracing a higher-order op's body through this mode: ``_compiling``)
                    return func(*args, **(kwargs or {}))
                if id(func) in getters and args:
                    self.record(args[0])
                return func(*args, **(kwargs or {}))

            def record(self, t: Any) -> None:
                if id(t) in self.reads or not _real(self.torch, t):
                    return
                active = _active()
                if not active or active[-1] is not self:
                    return
                frame = _reader(self.torch, sys._getframe(2))
                if frame is None:
                    return
                module = str(frame.f_globals.get("__name__", ""))
                if module.split(".")[0] not in _OWN_PACKAGES and (
                        not module.startswith("torch._") or module.startswith(_TORCH_PUBLIC)):
                    self.reads[id(t)] = f"{_basename(frame.f_code.co_filename)}:{frame.f_lineno}"
                    with contextlib.suppress(TypeError, AttributeError):   # (a subclass refusing weak references)
                        self.reads.objects[id(t)] = weakref.ref(t)

        _MODE_CLASS = ValueReads
    return _MODE_CLASS


def _compiling(torch: Any) -> Any:
    """torch's "is Dynamo tracing this?" (``is_dynamo_compiling``: False when run, which Dynamo folds to True inside
    a trace), or a constant False.

    Why: a non-strict export traces ``while_loop``'s, ``cond``'s and ``scan``'s bodies with Dynamo, which on torch
    2.11 traces the active torch function modes' ``__torch_function__`` too, and stopped at this mode's ``id(func)``
    of the higher-order op ("Dynamo doesn't know how to trace id() call with args (WhileLoopHigherOrderVariable(),)"):
    every module with a ``while_loop`` failed to export (the session-67 GPU suite on the device's torch 2.11; torch
    2.14 passed). Inside a Dynamo trace every tensor is a stand-in with no values to read, so the mode passes the call
    on. Not ``is_compiling()``: export sets that process-wide flag around the whole non-strict trace of ``forward``
    (torch 2.11 and 2.14 alike), so asking it turned the watch off exactly where it must record: every value read in
    ``forward`` went unrecorded and a compiled call silently ran the export's numbers after the tensor changed."""
    compiler = getattr(torch, "compiler", None)
    if not callable(getattr(compiler, "is_dynamo_compiling", None)):   # (a torch before 2.3: no Dynamo in an export)
        return lambda: False
    return lambda: compiler.is_dynamo_compiling()   # (looked up per call: Dynamo folds this very call to True)


def _memory_getters(torch: Any) -> frozenset[int]:
    """The ids of the tensor methods that hand ``forward`` a tensor's memory for another library to read its values
    from (``Tensor.__dlpack__``: ``np.from_dlpack(T)``, ``cupy.from_dlpack(T)``). Why: NumPy's array then reads the
    numbers at export; a change of ``T`` in place after compile ran the export's numbers silently (round 66).
    (``T.numpy()``, ``np.asarray(T)``, ``memoryview(T.numpy())`` fail during the export: ``numpy_read_refusal``.)"""
    return frozenset(id(f) for f in (getattr(torch.Tensor, "__dlpack__", None),) if f is not None)


def _basename(path: str) -> str:
    import os

    return os.path.basename(path)


def _reader(torch: Any, frame: Any) -> Any:
    """The frame that called the value getter, given the first frame out from this mode's ``__torch_function__``:
    past the modes above this one that passed the call on (torch.export's handler of a non-strict export calls
    ``func`` from its ``__torch_function__``; a mode ``forward`` entered), or ``frame`` itself."""
    f = frame
    while f is not None and (
            (f.f_code.co_name == "__torch_function__"
             and isinstance(f.f_locals.get("self"), torch.overrides.TorchFunctionMode))
            or (f.f_code.co_name == GETTER_NAME and f.f_globals.get("__name__") == _LOOSE)):
        f = f.f_back   # (and ``loose_reads``' getter on ``torch.Tensor``, which a mode above calls again: round 68)
    return f


def _real(torch: Any, t: Any) -> bool:
    """Whether ``t`` is a user's real tensor (export's stand-ins are fake or functional: their values are none)."""
    global _STAND_INS
    if _STAND_INS is None:
        try:
            from torch._subclasses.fake_tensor import FakeTensor
            from torch._subclasses.functional_tensor import FunctionalTensor
            _STAND_INS = (FakeTensor, FunctionalTensor)
        except ImportError:   # (an older torch: every tensor not on the meta device counts)
            _STAND_INS = ()
    return not isinstance(t, _STAND_INS) and not t.is_meta


#: export's stand-in tensor classes (``_real``), looked up once
_STAND_INS: tuple[type, ...] | None = None
