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

Only reads in the user's own code are compared. Reads in an installed package alone (transformers asks in every
model, to skip checks) compile as before, with no comparison: it would clone every weight and run the model twice at
each compile, and could refuse a model whose GPU numerics differ from eager's by rounding alone.

The comparison runs the compiled step and eager ``forward`` once each on deep copies of the example inputs, the RNG
state and the module's tensors and plain attributes as they were before each run and after both (a train-mode
BatchNorm, a counter ``forward`` keeps). A user module's global bound to a flag function before compile (``from
torch.compiler import is_compiling``) points at the wrapper while the export runs (review of round 68). Not seen: such a
name held deeper (a closure, a default, an attribute), and a strict export (Dynamo answers the flag itself).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
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
    """Wrap the flags (under ``value_reads``' lock, at the first watching block's start)."""
    import importlib

    dynamo = getattr(getattr(torch, "compiler", None), "is_dynamo_compiling", None)
    for mod_name, attr in FLAGS:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        real = getattr(mod, attr, None)
        if not callable(real) or (mod, attr) in _WRAPPED:
            continue
        _WRAPPED[(mod, attr)] = real
        wrapper = _flag(f"{mod_name}.{attr}", real, dynamo)
        setattr(mod, attr, wrapper)
        _BY_REAL.setdefault(id(real), (real, wrapper))
    _rebind_user_names()


def wrap_off() -> None:
    for d, key, real, wrapper in reversed(_REBOUND):
        if d.get(key) is wrapper:
            d[key] = real
    _REBOUND.clear()
    _BY_REAL.clear()
    for (mod, attr), real in list(_WRAPPED.items()):
        setattr(mod, attr, real)
        del _WRAPPED[(mod, attr)]


#: id(a flag function) -> (it, its wrapper), while wrapped
_BY_REAL: dict[int, tuple[Any, Any]] = {}
#: (a user module's globals, name, the flag, its wrapper) of each global pointed at the wrapper (``_rebind_user_names``)
_REBOUND: list[tuple[dict, str, Any, Any]] = []


def _rebind_user_names() -> None:
    """Point each user module's global bound to a flag function (``from torch.compiler import is_compiling`` at its
    top) at the flag's wrapper, for ``wrap_off`` to put back. Why: such a name holds the function itself, which the
    wrapper on ``torch.compiler`` never sees, so ``if is_compiling(): return x * 2`` compiled the export's branch
    silently (review of round 68: compiled 2.0 where eager gave 3.0). Module globals only: a name bound deeper (a
    closure, a default) stays unseen (docs/aten.md)."""
    from .disable_names import _NOT_USERS
    from .disable_names import _installed as _installed_module

    for name, mod in list(sys.modules.items()):
        if mod is None or name.partition(".")[0] in _NOT_USERS or _installed_module(mod):
            continue
        d = getattr(mod, "__dict__", None)
        if type(d) is not dict:
            continue
        for key, v in list(d.items()):
            hit = _BY_REAL.get(id(v))
            if hit is not None and hit[0] is v:
                d[key] = hit[1]
                _REBOUND.append((d, key, v, hit[1]))


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
    from .value_reads import _active

    active = _active()
    if not active:
        return
    f = sys._getframe(2)   # (the flag's caller: torch's own questions, asked inside a torch function ``forward``
    if f is None or _framework(f):   # called, and torch's generated code (``<eval_with_key>``) are none of forward's)
        return
    where = _place(f)
    installed = _installed(f)
    helper = f.f_code.co_name   # (transformers' ``is_torchdynamo_compiling()``: the line that called it too)
    if any(word in helper for word in ("compiling", "exporting", "tracing")) and f.f_back is not None:
        where += f" (in {helper}, called at {_place(f.f_back)})"
        # (an installed helper asked for the user's own code: the user's branch, compared; review of round 68: a
        # user's ``if is_torchdynamo_compiling():`` of transformers compiled the export's branch silently)
        installed = installed and _installed(f.f_back)
    flags = active[-1].reads.flags
    flags.setdefault((name, where), installed)


def _framework(f: Any) -> bool:
    module = str(f.f_globals.get("__name__", ""))
    # (torch's generated code is ``<eval_with_key>.N``; other ``<...>`` code is a user's: ``exec``'d, ``python -c``,
    # an ``<ipython-input-...>`` cell, which compiled the export's branch silently before the review of round 68)
    return (module.split(".")[0] in ("torch", "memplan", "runtime") or f.f_code.co_filename.startswith("<eval_with_key")
            or f.f_code.co_name == "memplan_tracing_flag")


def _place(f: Any) -> str:
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def _installed(f: Any) -> bool:
    from .installed import installed_file

    return installed_file(f.f_code.co_filename)


def check_branches(torch: Any, module: Any, step: Any, program: Any, example_inputs: tuple,
                   kwargs: dict | None) -> None:
    """Compare ``step`` with eager ``module`` on the example inputs where ``program.flag_reads`` holds a read (the
    module's doc): refuse where they differ, warn where the user's own code asked and they agree."""
    reads = getattr(program, "flag_reads", ())
    if not any(not pkg for _flag, _where, pkg in reads) or not isinstance(module, torch.nn.Module):
        # only installed packages asked (transformers skips its checks this way in every model): their paths are
        # kept equal by their authors and by the model sweep; comparing would clone every weight and run the model
        # twice at each compile, and refuse a model whose GPU numerics differ from eager's by rounding alone
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
    state = _ModuleState(torch, module)
    devices = [d for d in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        rng = torch.get_rng_state()
        cuda = [torch.cuda.get_rng_state(d) for d in devices]
        a, k = copy.deepcopy((args, kwargs))
        try:
            got = step(*a, **k)
        finally:
            state.restore()
        torch.set_rng_state(rng)
        for d, s in zip(devices, cuda):
            torch.cuda.set_rng_state(s, d)
        a, k = copy.deepcopy((args, kwargs))
        try:
            with torch.no_grad():
                want = module(*a, **k)
        finally:
            state.restore()
    return got, want


class _ModuleState:
    """The module tree's tensors' values and its modules' plain attributes, put back by ``restore``."""

    def __init__(self, torch: Any, module: Any) -> None:
        with torch.no_grad():
            self.tensors = [(t, t.detach().clone()) for t in {id(t): t for t in
                            [*module.parameters(), *module.buffers()]}.values()]
        self.attrs = [(m, dict(vars(m))) for m in module.modules()]

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for t, was in self.tensors:
                if t.shape == was.shape and t.dtype == was.dtype:
                    t.copy_(was)
        for m, was in self.attrs:
            d = vars(m)
            for key in [k for k in d if k not in was]:
                del d[key]
            for key, v in was.items():
                if d.get(key, _NONE) is not v:
                    d[key] = v


_NONE = object()


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
        elif type(x) is not type(y) or x != y:
            return False
    return verdict
