"""``forward`` asking whether torch is tracing it (``torch.compiler.is_compiling()``, ``is_exporting()``,
``torch._dynamo.is_compiling()``, ``torch._utils.is_compiling()``, ``torch.fx._symbolic_trace.is_fx_tracing()``):
each answer the export got that eager does not (True), recorded with its line; at compile, the compiled program is
compared with eager on the example inputs.

Why: a non-strict export sets these flags for its trace of ``forward``, so ``if torch.compiler.is_compiling():``
took the export's branch into the program, and every compiled call ran it where eager runs the other one, silently
(round 67's review: ``x * 2`` under the flag, ``x * 3`` without, compiled 2.0 where eager gave 3.0). Refusing every
such read would refuse most transformers models, which skip checks this way (a tiny Llama of transformers 5.25
asks 5 times: ``masking_utils``, ``output_capturing``, ``utils/generic``). So:

- the outputs differ (not within ``RTOL``/``ATOL``): refused, naming the flag and the line;
- they agree: a ``TracingFlagWarning`` naming them, once per flag and line per process (the example inputs agreeing
  proves nothing of others).

Only reads in the user's own code are compared: not installed, or of an installed package that defines a class of the
tree compiled (``installed.user_packages``: a user's package installed with ``pip install .``, round 69), or of an
installed package, no model library (``installed.LIBRARIES``), that the user's code calls (round 70: a helper
``scale(x)`` of the user's ``pip install``-ed utilities, no class of the tree from it, compiled [2, 2, 2, 2] where
eager gives [3, 3, 3, 3], silently). Reads in another installed package alone (transformers asks in every model, to
skip checks; ``kernels``, which transformers calls, too) compile as before, with no comparison: it would run the model
twice at each compile, and could refuse a model whose GPU numerics differ from eager's by rounding alone.

The comparison runs the compiled step and eager ``forward`` once each on deep copies of the example inputs, the RNG
state and the module's tensors and plain attributes (and the containers and objects they hold, ``module_state``) as
they were before each run and after both (a train-mode BatchNorm, a counter ``forward`` keeps). Each flag function
records through its own object (its code swapped for the export's length, round 69), so a flag bound anywhere (a
closure, a default, a class attribute, a ``functools.partial``, another name) is seen. Not seen: a strict export
(Dynamo answers the flag itself).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import os
import sys
import types
import warnings
from typing import Any

#: (module, attribute) of the flags watched
FLAGS = (("torch.compiler", "is_compiling"), ("torch.compiler", "is_exporting"), ("torch._dynamo", "is_compiling"),
         ("torch._dynamo.external_utils", "is_compiling"), ("torch._utils", "is_compiling"),
         ("torch.fx._symbolic_trace", "is_fx_tracing"), ("torch.fx", "is_fx_tracing"))
#: how near the compiled outputs must be to eager's to count as agreeing
RTOL, ATOL = 1e-5, 1e-6


class TracingFlagWarning(UserWarning):
    """A ``forward`` that asks whether torch is tracing it compiled, its outputs agreeing with eager's on the example
    inputs (``flag_reads``)."""


#: (module object, attribute) -> the original, while wrapped
_WRAPPED: dict[tuple[Any, str], Any] = {}
#: the (flag, line) pairs warned of already (once per process)
_WARNED: set[tuple[str, str]] = set()


def wrap_on(torch: Any) -> None:
    """Make each flag function record its True answers (under ``value_reads``' lock, at the first watching block's
    start): a Python function's code is swapped in place (``_swap_code``), so the very function object records
    wherever it is bound; anything else (no such function in some torch) is wrapped where its module names it."""
    import importlib

    dynamo = getattr(getattr(torch, "compiler", None), "is_dynamo_compiling", None)
    for mod_name, attr in FLAGS:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        real = getattr(mod, attr, None)
        if not callable(real) or (mod, attr) in _WRAPPED or id(real) in _SWAPPED:
            continue
        if _swappable(real):
            _swap_code(f"{mod_name}.{attr}", real, dynamo)
            continue
        _WRAPPED[(mod, attr)] = real
        setattr(mod, attr, _flag(f"{mod_name}.{attr}", real, dynamo))


def wrap_off() -> None:
    """Each flag's own code back. Its recorder's name stays in the flag's globals, bound to the flag's plain copy:
    a call another thread started in the swapped code before this (torch's flags are asked in every thread, at
    any time) looks the name up after, and popping it raised ``NameError`` out of ``torch.compiler.is_compiling()``
    there (review of round 69)."""
    for fn, code, key in reversed(list(_SWAPPED.values())):
        fn.__code__ = code
        recorder = fn.__globals__.get(key)
        fn.__globals__[key] = getattr(recorder, "__wrapped__", fn)
    _SWAPPED.clear()
    for (mod, attr), real in list(_WRAPPED.items()):
        setattr(mod, attr, real)
        del _WRAPPED[(mod, attr)]


#: id(a flag function whose code is swapped) -> (it, its own code, the name of its recorder in its globals)
_SWAPPED: dict[int, tuple[Any, Any, str]] = {}


def _swappable(fn: Any) -> bool:
    """A plain Python function of no closure (each flag of torch 2.10-2.14): its ``__code__`` may be swapped."""
    return isinstance(fn, types.FunctionType) and not fn.__closure__ and fn.__code__.co_name != "memplan_tracing_flag"


def _swap_code(name: str, real: Any, dynamo: Any) -> None:
    """Give the flag function ``real`` a code that calls its recorder (``_flag`` of a copy of ``real``), kept under
    a private name in ``real``'s globals; ``wrap_off`` puts its own code back.

    Why the function object itself, not the names: forward may hold the flag anywhere, a closure cell
    (``f = torch.compiler.is_compiling``), a default argument, a class attribute, a ``functools.partial``, a dict,
    another module's global; round 68 replaced it on ``torch.compiler`` and in user modules' globals alone, and each
    of those compiled the export's branch silently (round 69: compiled [2, 2, 2] where eager gave [3, 3, 3]). The
    object keeps its identity, so Dynamo's tables keyed by it (``tracing_state_functions``) still fold it."""
    original = types.FunctionType(real.__code__, real.__globals__, real.__name__, real.__defaults__,
                                  real.__closure__)
    original.__kwdefaults__ = real.__kwdefaults__
    key = f"_memplan_tracing_flag_{id(real)}"
    code = _TRAMPOLINES.get((key, real.__code__.co_filename))
    if code is None:   # (compiled once per flag and process: each export's start pays no compile)
        source = f"def memplan_tracing_flag(*args, **kwargs):\n    return {key}(*args, **kwargs)\n"
        space: dict[str, Any] = {}
        exec(builtins.compile(source, real.__code__.co_filename, "exec"), space)   # noqa: S102 (a fixed text)
        code = _TRAMPOLINES[(key, real.__code__.co_filename)] = space["memplan_tracing_flag"].__code__
    real.__globals__[key] = _flag(name, original, dynamo)
    _SWAPPED[id(real)] = (real, real.__code__, key)
    real.__code__ = code


#: (the recorder's name, the flag's file) -> the trampoline's code
_TRAMPOLINES: dict[tuple[str, str], Any] = {}


def _flag(name: str, real: Any, dynamo: Any) -> Any:
    def memplan_tracing_flag(*args: Any, **kwargs: Any) -> Any:
        value = real(*args, **kwargs)
        if value is True and (dynamo is None or not dynamo()):   # (eager's answer is False)
            _seen(name)
        return value

    memplan_tracing_flag.__wrapped__ = real   # type: ignore[attr-defined]
    memplan_tracing_flag.__doc__ = getattr(real, "__doc__", None)
    return memplan_tracing_flag


def _seen(name: str) -> None:
    """Record ``name`` asked at the first frame of no torch's, memplan's or this runtime's, where a value-read mode
    of this thread is active (``forward``'s call; not the export's machinery)."""
    from .value_modes import _active

    active = _active()
    if not active:
        return
    f = sys._getframe(2)   # (the flag's caller, past the swapped code's frame: torch's own questions, asked inside a
    while f is not None and f.f_code.co_name == "memplan_tracing_flag":   # torch function ``forward`` called, and
        f = f.f_back   # torch's generated code (``<eval_with_key>``) are none of forward's)
    if f is None or _framework(f):
        return
    where = _place(f)
    package = _package(f)
    helper = f.f_code.co_name   # (transformers' ``is_torchdynamo_compiling()``: the line that called it too)
    if any(word in helper for word in ("compiling", "exporting", "tracing")) and f.f_back is not None:
        where += f" (in {helper}, called at {_place(f.f_back)})"
        # (an installed helper asked for the user's own code: the user's branch, compared; review of round 68: a
        # user's ``if is_torchdynamo_compiling():`` of transformers compiled the export's branch silently)
        package = package and _package(f.f_back)
    if package and _called_by_users_code(f, package):
        package = ""
    flags = active[-1].reads.flags
    flags.setdefault((name, where), package)


def _called_by_users_code(f: Any, package: str) -> bool:
    """Whether the first frame below ``f`` outside installed package ``package`` is the user's code, and ``package``
    no model library (``installed.LIBRARIES``): a helper of an installed package the user's ``forward`` calls (round
    70: ``scale(x)`` of the user's ``pip install``-ed utilities, no class of the tree from it, compiled [2, 2, 2, 2]
    where eager gives [3, 3, 3, 3], silently). One a library calls (``kernels``' layers under transformers'), or
    torch (the package's own module's ``forward``, called by ``nn.Module.__call__``: a module of the tree is compared
    by ``user_packages`` where its class is the package's), is left to that package, not compared. Helper packages
    between (the user's code calls ``utils.run``, which calls ``kernels.scale``) are walked past: the first frame
    outside them decides (review of round 70: the second helper's read was never compared, whoever called the first,
    and the export's branch compiled silently)."""
    from .installed import LIBRARIES

    if package in LIBRARIES:
        return False
    g = f.f_back
    for _ in range(256):
        if g is None or _framework(g):
            return False
        caller = _package(g)
        if not caller:
            return True
        if caller in LIBRARIES:
            return False
        g = g.f_back   # (another installed helper package: the user's too where the user's code calls it)
    return False


def _framework(f: Any) -> bool:
    module = str(f.f_globals.get("__name__", ""))
    # (torch's generated code is ``<eval_with_key>.N``; other ``<...>`` code is a user's: ``exec``'d, ``python -c``,
    # an ``<ipython-input-...>`` cell, which compiled the export's branch silently before the review of round 68)
    return (module.split(".")[0] in ("torch", "memplan", "runtime") or f.f_code.co_filename.startswith("<eval_with_key")
            or f.f_code.co_name == "memplan_tracing_flag")


def _place(f: Any) -> str:
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def _package(f: Any) -> str:
    """The top-level package of frame ``f``'s code where it is an installed package's, "" where it is the user's
    (``check_branches`` takes an installed package defining a class of the compiled tree for the user's too)."""
    from .installed import library_code

    if not library_code(f.f_globals.get("__name__"), f.f_code.co_filename):
        return ""
    return str(f.f_globals.get("__name__") or "").partition(".")[0] or f.f_code.co_filename


def check_branches(torch: Any, module: Any, step: Any, program: Any, example_inputs: tuple,
                   kwargs: dict | None) -> None:
    """Compare ``step`` with eager ``module`` on the example inputs where ``program.flag_reads`` holds a read (the
    module's doc): refuse where they differ, warn where the user's own code asked and they agree."""
    from .installed import user_packages

    reads = getattr(program, "flag_reads", ())
    if reads and isinstance(module, torch.nn.Module):   # (an installed package of the tree's classes: the user's)
        users = user_packages(torch, module)
        reads = tuple((flag, where, "" if pkg in users else pkg) for flag, where, pkg in reads)
    if not any(not pkg for _flag, _where, pkg in reads) or not isinstance(module, torch.nn.Module):
        # only installed packages asked (transformers skips its checks this way in every model): their paths are
        # kept equal by their authors and by the model sweep; comparing would run the model twice at each compile,
        # and refuse a model whose GPU numerics differ from eager's by rounding alone
        return
    got, want = _both(torch, module, step, example_inputs, kwargs or {})
    verdict = _agree(torch, got, want)
    named = ", ".join(f"{flag}() at {where}" for flag, where, _pkg in reads[:3]) + (" ..." if len(reads) > 3 else "")
    if verdict is False:
        from .errors import AtenExecutorError

        raise AtenExecutorError(
            f"forward asks whether torch is tracing it ({named}), which torch.export answers True and eager False, "
            "and the compiled program's outputs on the example inputs differ from eager's: the program holds the "
            "path forward takes under the export, and every compiled call would run it where eager runs the other. "
            "Make both paths compute the same values, or take the flag out of forward (compile the part of the "
            "model that does not ask)")
    user = [(flag, where) for flag, where, pkg in reads if not pkg or verdict != "equal"]
    new = [pair for pair in user if pair not in _WARNED]
    if new:
        _WARNED.update(new)
        how = "bitwise" if verdict == "equal" else f"within rtol={RTOL}, atol={ATOL}"
        warnings.warn(TracingFlagWarning(
            f"forward asks whether torch is tracing it ({', '.join(f'{f}() at {w}' for f, w in new[:3])}), which "
            f"torch.export answers True and eager False: the program holds the export's path; its outputs on the "
            f"example inputs agree with eager's ({how}), which proves nothing of other inputs. Make sure both paths "
            "compute the same values (a check skipped is fine)"), stacklevel=4)


def _both(torch: Any, module: Any, step: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """(the compiled step's outputs, eager's) on deep copies of the inputs, under one RNG state, the module's state
    put back after each run."""
    from .module_state import ModuleState

    state = ModuleState(torch, module)
    devices = [d for d in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    hosts = _HostRandom()
    with torch.random.fork_rng(devices=devices):
        rng = torch.get_rng_state()
        cuda = [torch.cuda.get_rng_state(d) for d in devices]
        a, k = copy.deepcopy((args, kwargs))
        written = getattr(getattr(step, "executor", None), "written_weights", None)
        state.save_written(written() if written is not None else [])   # (past any mode: a CUDA graph's replay)
        try:
            got = step(*a, **k)
        finally:
            state.restore()
            hosts.restore()
        torch.set_rng_state(rng)
        for d, s in zip(devices, cuda):
            torch.cuda.set_rng_state(s, d)
        a, k = copy.deepcopy((args, kwargs))
        try:
            with torch.no_grad(), state.watching():   # (each storage eager's branch writes, saved before)
                want = module(*a, **k)
        finally:
            state.restore()
            hosts.restore()
    if state.saves.unsaved or state.saves.unseen:
        from .errors import AtenExecutorError

        names = {id(t): n for n, t in [*module.named_parameters(), *module.named_buffers()]}
        thread = bool(state.saves.unsaved)
        named = ", ".join(f"{type(module).__name__}.{names[id(t)]}" if id(t) in names else
                          f"a {tuple(t.shape)} {str(t.dtype).replace('torch.', '')} tensor the module holds"
                          for t in (state.saves.unsaved or state.saves.unseen)[:3])
        how = ("from another thread: the watch is forward's thread's alone); its values stay as that run left them. "
               "Write the module's tensors from forward's own thread" if thread else
               "outside torch's dispatcher: through .numpy(), DLPack, ctypes or a kernel given its data_ptr(), or its "
               "untyped_storage().resize_(), which no torch op or version counter records); its values stay as that run left them. Write the module's "
               "tensors there with torch ops")
        raise AtenExecutorError(
            f"compile ran forward eagerly to compare it with the program (forward asks whether torch is tracing it), "
            f"and that run wrote {named} where compile's watch of the module's tensors did not see it ({how}, or "
            "take the flag out of forward")
    return got, want


class _HostRandom:
    """Python's ``random`` and NumPy's global generator as they were, put back by ``restore``. Why: the comparison's
    two runs each drew from them (``random.random()`` in eager's branch; the compiled step repeats ``forward``'s
    draws, ``host_random``), so the user's next draws after compile were others than without it (round 71: seeded
    1, ``random.random()`` gave 0.847 for 0.134), and eager's run drew after the step's, not from the same state.
    NumPy's only where it is imported already (not imported here)."""

    def __init__(self) -> None:
        import random

        self.random = random.getstate()
        np = sys.modules.get("numpy")
        self.numpy = np.random.get_state() if np is not None else None

    def restore(self) -> None:
        import random

        random.setstate(self.random)
        np = sys.modules.get("numpy")
        if self.numpy is not None and np is not None:
            np.random.set_state(self.numpy)


def _agree(torch: Any, got: Any, want: Any) -> Any:
    """"equal" (bitwise), "close" (within ``RTOL``/``ATOL``) or False, leaf by leaf."""
    from torch.utils._pytree import tree_leaves

    a, b = tree_leaves(got), tree_leaves(want)
    if len(a) != len(b):
        return False
    verdict: Any = "equal"
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or x.dtype != y.dtype:
                return False
            x, y = x.detach().cpu(), y.detach().cpu()
            if torch.equal(x, y) or bool(((x == y) | (x.isnan() & y.isnan())).all() if x.is_floating_point()
                                          else False):
                continue
            if not x.is_floating_point() and not x.is_complex():
                return False
            with contextlib.suppress(RuntimeError):
                if torch.allclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True):
                    verdict = "close"
                    continue
            return False
        elif type(x) is not type(y) or (x != y and not (isinstance(x, float) and x != x and y != y)):
            return False   # (a float NaN both sides returned is agreement: NaN != NaN refused such a forward)
    return verdict
