"""The real tensors whose values ``forward`` read as Python numbers while it was exported (``T.tolist()``,
``T.item()``, ``float(T)``, ``int(T)``, ``bool(T)``), and the refusal of a branch on a global tensor's value.

Why: a compiled call runs no Python, so what ``forward`` made of such a number is baked into the program. A global
tensor (or a module's plain tensor attribute) read so is a real tensor during a non-strict export, and when the
program also reads it as a tensor (``x * T.tolist()[0] + T``; ``T.tolist()`` alone makes it one of the program's
constants), ``byte_values`` left it unwatched ("the program follows its writes itself"): ``T.mul_(1.5)`` after
compile changed eager's result and silently not the program's (round 64). The ids recorded here
(``Program.value_reads``) are watched by their version counter whatever their size or use (``byte_values.find``).

A branch on such a tensor (``if T > 1:``) is a comparison torch.export traces on a stand-in whose value it does not
know: torch's raw "Could not guard on data-dependent expression" (a ``GraphError``) said nothing of what to do;
``branch_refused`` names the tensor and the ways out.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from .errors import AtenExecutorError
from .loose_reads import add_block, drop_block
from .read_names import _AT_CODE, _named_buffers, _named_tensors
from .value_modes import _DISABLE, _active, _mode_class, _take_off, _waiting


@contextlib.contextmanager
def watch_value_reads(torch: Any, *, forward_only: bool = False) -> Iterator[dict[int, str]]:
    """{id: "file.py:123" of the first read} of the real (not fake) tensors whose values code outside memplan, this
    runtime and torch's private machinery read as Python numbers inside the block (an export: ``forward``'s reads,
    torch's public Python it called too), in this thread; the innermost block records (a compile inside one).

    A ``TorchFunctionMode`` of this thread's, not a patch of ``torch.Tensor``'s methods: torch's mode stack is per
    thread, and the value getters (``Tensor.item``, ``__bool__``...) consult it. Why: the seven methods patched on
    the class for the export's length were the wrappers of every thread: an eager loop reading values in another
    thread ran some 3x slower while a compile exported, and a traceback through one showed a frame
    ``watched_by_memplan_value_reads`` at an unrelated line of ``torch/__init__.py`` (round 65). The mode is taken off
    the stack in ``finally`` wherever it sits (a mode ``forward`` left above it stays), so an exception, a
    ``KeyboardInterrupt`` or a nested compile leaves the stack as it was.

    ``forward_only``: the mode is on torch's stack only inside ``forward_watched`` blocks (the module's call, which
    ``call_state.watch_call_state`` wraps), not for the whole block. Why: a mode on the stack is called for every
    torch function of the export's own machinery and memplan's import of its graph too, about 97% of its calls
    (8,711 of 8,996 for a tiny Llama; round 66), some 5% of the compile; none of those is ``forward``'s code, whose
    reads alone are recorded. Without a ``forward_watched`` block inside it (no module call watched: a given
    ``ExportedProgram``'s module), leave it False: the mode is then on the stack for the whole block. A
    ``forward_only`` block whose mode was never armed raises ``UNARMED`` at its (successful) end. Why: were the
    module's call made past ``_call_impl`` (a torch calling ``.forward`` directly), nothing would be recorded and
    nothing would say so (round 67)."""
    reads = NumberReads()
    mode = _mode_class(torch)(torch, reads)
    waiting = _waiting()
    try:
        _disable_seen(torch, +1)
        add_block(reads)   # (the reads of threads that watch nothing: ``loose_reads``, round 68)
        if forward_only:
            waiting.append(mode)
            yield reads
            if not mode.armed:
                raise AtenExecutorError(UNARMED)
        else:
            with _armed(torch, mode):
                yield reads
    finally:
        while mode in waiting:
            waiting.remove(mode)
        drop_block(reads)
        _disable_seen(torch, -1)


#: the refusal of an export whose module call never armed the value-read mode (``watch_value_reads``)
UNARMED = ("the export ran the module without calling it (this torch version calls its forward directly): compile's "
           "watch of what forward reads and writes (T.item(), float(T), its attribute writes) is armed in the "
           "module's call and saw nothing, so a value read then changed would run the export's numbers silently; "
           "compile with a torch whose export calls the module (as 2.1 to 2.14 do)")


@contextlib.contextmanager
def forward_watched(torch: Any) -> Iterator[None]:
    """Inside a ``watch_value_reads(forward_only=True)`` block of this thread: its mode on torch's stack for this
    block (the module's call during the export, ``call_state``), which the block's end checks ran (``UNARMED``).
    Elsewhere nothing."""
    waiting = _waiting()
    mode = waiting[-1] if waiting else None
    if mode is not None:
        mode.armed = True
    if mode is None or mode in _active():   # (none waiting, or a call of the module inside its own call: armed)
        yield
        return
    with _armed(torch, mode):
        yield


@contextlib.contextmanager
def _armed(torch: Any, mode: Any) -> Iterator[None]:
    """``mode`` at the bottom of this thread's torch function mode stack and innermost of ``_active`` for the block;
    taken off wherever it sits in ``finally``. Why the bottom: the modes above it (torch.export's handler, once the
    module's call starts) pass calls down to it, so a refused branch's call comes from torch's frames, not this
    mode's, and torch's "data-dependent expression" names ``forward``'s line, which ``branch_refused`` reads."""
    active = _active()
    above: list[Any] = []
    try:
        active.append(mode)
        while torch._C._len_torch_function_stack() > 0:
            above.append(torch._C._pop_torch_function_stack())
        while above and _is_device_context(above[-1]):   # (the default device's mode keeps the bottom)
            torch._C._push_on_torch_function_stack(above.pop())
        torch._C._push_on_torch_function_stack(mode)
        while above:
            torch._C._push_on_torch_function_stack(above.pop())
        yield
    finally:
        while above:   # (an interrupt while the others were off the stack: back, in order)
            torch._C._push_on_torch_function_stack(above.pop())
        _take_off(torch, mode)
        while mode in active:
            active.remove(mode)


def _is_device_context(mode: Any) -> bool:
    """Whether ``mode`` is torch's default-device mode (``torch.set_default_device``), which must stay at the
    bottom of the stack: ``set_default_device`` inside ``forward`` exits the one below every other mode and
    asserts it is a ``DeviceContext`` (with this mode beneath it, the export failed with "trying to pop from empty
    mode stack": round 66's call-only watch, tests/test_aten_round41.py)."""
    from torch.utils._device import DeviceContext

    return isinstance(mode, DeviceContext)


_DISABLE_LOCK = threading.Lock()


def _disable_seen(torch: Any, step: int) -> None:
    """Put ``torch._C.DisableTorchFunction`` (``_VisibleDisable``) in place while any block runs (``step`` +1 at a
    block's start, -1 at its end). Why: torch consults no mode inside ``with torch._C.DisableTorchFunction():``,
    so ``T.tolist()`` there was no read this mode saw, and ``T.mul_(1.5)`` after compile ran the export's numbers
    silently (round 65 review; the patched methods of round 64 saw it). The name is replaced for the blocks' length,
    and so are the user's modules' globals holding torch's class (``from torch._C import DisableTorchFunction``:
    ``disable_names``, round 66)."""
    from .disable_names import swap_back, swap_in
    from .flag_reads import wrap_off, wrap_on
    from .loose_reads import patch_off, patch_on
    from .thread_reads import carry_off, carry_on

    with _DISABLE_LOCK:
        # (counted before the swaps: the block's ``finally`` takes its step off whether the swaps finished or not.
        # Counted after, an interrupt mid-swap (Ctrl-C in a notebook, an error in one swap) left the count at -1
        # after that ``finally``, so the next block saw -1, swapped nothing in, and every later export of the
        # process ran unwatched, the flags and getters of the interrupted one left swapped: review of round 69)
        _DISABLE["count"] += step
        if step > 0 and _DISABLE["count"] == 1:
            _DISABLE["torch"] = torch._C.DisableTorchFunction
            torch._C.DisableTorchFunction = _visible_disable(torch, _DISABLE["torch"])
            _DISABLE["names"] = swap_in(_DISABLE["torch"], torch._C.DisableTorchFunction)   # (round 66)
            carry_on(torch)   # (the threads forward starts read under a mode too: round 66)
            patch_on(torch)   # (and the reads no mode sees are recorded by torch.Tensor's getters: round 68)
            wrap_on(torch)   # (forward asking is_compiling(): ``flag_reads``, round 68)
        if step < 0 and _DISABLE["count"] == 0:
            swap_back(_DISABLE.pop("names", []), _DISABLE["torch"], torch._C.DisableTorchFunction)
            torch._C.DisableTorchFunction = _DISABLE["torch"]
            carry_off()
            patch_off(torch)
            wrap_off()


def _visible_disable(torch: Any, original: Any) -> type:
    """The stand-in of ``torch._C.DisableTorchFunction``: outside a watching thread it is torch's own; in one, what
    it does for ``forward``'s code (no tensor subclass's ``__torch_function__``, no mode: export's handler and
    ``forward``'s own are taken off the stack) except that this thread's value-read mode stays on it alone."""

    class DisableTorchFunction:
        def __init__(self) -> None:
            self._inner: Any = None
            self._below: list[Any] | None = None

        def __enter__(self) -> None:
            active = _active()
            mode = active[-1] if active else None
            if mode is None:
                self._inner = original()
                return self._inner.__enter__()
            below: list[Any] = []
            while torch._C._len_torch_function_stack() > 0:
                below.append(torch._C._pop_torch_function_stack())
            self._below = below
            torch._C._push_on_torch_function_stack(mode)
            self._inner = torch._C.DisableTorchFunctionSubclass()
            return self._inner.__enter__()

        def __exit__(self, *exc: Any) -> Any:
            out = self._inner.__exit__(*exc)
            below, self._below = self._below, None
            if below is not None:
                while torch._C._len_torch_function_stack() > 0:
                    torch._C._pop_torch_function_stack()
                for m in reversed(below):
                    torch._C._push_on_torch_function_stack(m)
            return out

    return DisableTorchFunction


class NumberReads(dict):
    """{id: "file.py:123"} of the tensors read as Python numbers (``watch_value_reads``), and ``objects``: {id: weak
    reference} of each. Why the tensors themselves: a tensor no per-call watch reaches (a global a lambda hook reads,
    ``float(H)``; one more than five objects deep in a settings object; one in a dict a class's own ``__call__``
    reads) was only warned of, and ``T.mul_(1.5)`` after compile ran the export's numbers silently (round 67):
    ``byte_values.find`` watches each one still alive by its version and values, wherever it is held."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[int, Any] = {}
        #: {(flag, "file.py:12"): the installed package it is in, "" for the user's code} of each tracing flag forward
        #: asked (``flag_reads``)
        self.flags: dict[tuple[str, str], str] = {}


#: torch.export's refusal of a Python branch on a tensor's value
_DATA_GUARD = "data-dependent expression"


@contextlib.contextmanager
def branch_refused(torch: Any, module: Any) -> Iterator[None]:
    """Runs the block (compile's export) and turns torch.export's "Could not guard on data-dependent expression"
    (a ``GraphError``) into an ``AtenExecutorError`` naming the global, closure variable or module tensor that the
    failing line reads (``if T > 1:``, ``float(T.sum())``), and what to write instead. Any other failure, and one on
    a line naming no such tensor (a branch on an input's values), passes as it is."""
    from memplan.errors import GraphError

    try:
        yield
    except GraphError as exc:
        from .value_refusals import numpy_read_refusal

        refusal = numpy_read_refusal(torch, module, str(exc), exc)
        if refusal is not None:
            raise refusal from None
        found = _AT_CODE.search(str(exc)) if _DATA_GUARD in str(exc) else None
        named = _named_tensors(torch, module, found[2]) if found else []
        if found and not named:   # (a function the line calls read it: ``if self.f():``, ``f = lambda: T > 1``)
            from .value_refusals import called_tensors

            named = called_tensors(torch, module, found[2])
        if found and not named:   # (a local name's: ``u = T``; ``f = lambda v: v * 2 if u > 1 else v``, round 66)
            from .frame_reads import frame_tensors

            named = frame_tensors(torch, exc, found[1], found[2])
        if not named and _DATA_GUARD in str(exc):   # (the buffer a submodule's own line read, that module's alone)
            from .frame_reads import frame_buffers

            read = frame_buffers(torch, module, exc)
            if read is not None:
                labels, where, code, owner = read
                params = any(label.startswith("the parameter") for label in labels)
                text = (param_branch_text if params else buffer_branch_text)(labels, where, code)
                if isinstance(owner, torch.nn.modules.batchnorm._BatchNorm) and owner.momentum is None:
                    text += (f" ({type(owner).__name__}(momentum=None) in train mode averages its running statistics "
                             "over the count of batches it has seen, a Python number each call: give it a momentum, "
                             "or compile the model in eval mode)")
                raise AtenExecutorError(text) from None
        buffers = _named_buffers(torch, module, found[2]) if found else []
        if buffers and not named:
            raise AtenExecutorError(buffer_branch_text(buffers, found[1], found[2])) from None
        if not named:
            raise
        raise AtenExecutorError(
            f"forward computes a Python value from the values of {', '.join(named)} at {found[1]} (`{found[2]}`), "
            "which torch.export cannot trace: the program holds that tensor as a constant whose value it does not "
            "know at export, and a compiled call runs no Python to take the branch each call's value chooses. "
            "Compute both sides on tensors (torch.where(cond, a, b)), or read the value as Python numbers directly "
            "on the tensor (T.tolist(), T.item(): compile watches the tensor and proves a changed one by exporting "
            "again), or pass it in as an argument") from None


def buffer_branch_text(buffers: list[str], where: str, code: str) -> str:
    """The refusal of a Python value computed from a registered buffer's values (``if self.t > 1:``).

    Why a refusal and not a watch as for a global tensor read as numbers (``Program.value_reads``): a buffer is an
    input of the exported program (torch.export lifts it; a stand-in without values during the trace), not a
    constant, and the buffers a model branches on are the ones it updates (a step counter, a running statistic):
    a program specialized on the buffer's value at compile would have to be exported again at each call where the
    value moves, a compile per call. torch's own refusal ("Could not guard on data-dependent expression") named
    neither the buffer nor a way out (round 58's ``GraphError``)."""
    return (f"forward computes a Python value from the values of {', '.join(buffers)} at {where} (`{code}`): a "
            "registered buffer is an input of the exported program, whose values torch.export does not know while "
            "it traces, and a compiled call runs no Python to take the branch each call's value chooses. Compute "
            "both sides on tensors (torch.where(cond, a, b)), or keep the value as a plain tensor attribute "
            "(self.t = torch.tensor(...), not register_buffer) read as Python numbers (self.t.item(): compile "
            "watches it and exports again when it changes), or pass it in as an argument")


def param_branch_text(labels: list[str], where: str, code: str) -> str:
    """The refusal of a Python value computed from a parameter's values (``if self.gate > 0:``, a learnable threshold;
    ``labels`` may name buffers beside it). Why not ``buffer_branch_text``: its way out, a plain tensor attribute, is
    no way to keep a parameter that trains."""
    return (f"forward computes a Python value from the values of {', '.join(labels)} at {where} (`{code}`): a "
            "module's parameters and buffers are inputs of the exported program, whose values torch.export does not "
            "know while it traces, and a compiled call runs no Python to take the branch each call's value chooses. "
            "Compute both sides on tensors (torch.where(cond, a, b)), or pass the value in as an argument")


def warn_unwatched(program: Any, guard: Any) -> list[str]:
    """Warn (``walk_bounds.StateWalkWarning``) naming the place of each read of a tensor's values as Python numbers
    (``Program.value_reads``) whose tensor no per-call watch holds: since round 67 each one alive at compile's end
    is watched as itself (``guard.read_tensors``), so these are the ones gone by then or taking no weak reference (a
    tensor subclass's): a change of it in place runs the export's numbers, silently (round 64c: compile said nothing
    of it). Returns the places (for tests)."""
    from .walk_bounds import StateWalkWarning

    buffers = getattr(getattr(guard, "reads", None), "buffers", None)
    watched = {id(o) for o in (buffers.objects if buffers is not None else ())}
    places = [where for i, where in program.value_reads if i not in watched]
    if places:
        warnings.warn(StateWalkWarning(
            f"forward reads the values of a tensor as Python numbers (T.tolist(), T.item(), float(T)) at "
            f"{', '.join(places[:3])}{' ...' if len(places) > 3 else ''} that compile cannot watch (no longer "
            "alive at the end of compile, or a tensor that takes no weak reference): the program keeps the numbers "
            "of the export, so change it only by compiling again, or pass the value in as an argument"),
            stacklevel=3)
    return places
