"""Whether an export's ``forward`` set torch's random state itself, told apart from other threads' draws.

Why: a non-strict export runs ``forward``'s Python for real (on fake tensors), so a ``torch.manual_seed(0)`` there
reseeds the process's generator at import time and is no op of the program: the program would draw from the caller's
generator where eager reseeds it every call. The importer refuses such a ``forward`` and puts the state back. It used
to tell by the state alone (moved across the export: reseeded), and the generators are process-wide: another thread
drawing meanwhile (building a model, whose layers draw their initial weights; a train step's dropout) had the compile
refused ("forward sets torch's random state itself") and its own draws rewound, so it drew the same numbers again.
Now a move counts as ``forward``'s only where this thread called a seeding function that changed a state during the
export, or the move is one no draw makes: a generator's initial seed changed, or its state is the fresh state of its seed again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: torch's functions that set a generator's state (in ``torch``, ``torch.random``, ``torch.cuda``, ``torch.cuda.random``)
_SEEDING = ("manual_seed", "seed", "set_rng_state", "manual_seed_all", "seed_all", "set_rng_state_all")


def _generators(torch: Any) -> list[Any]:
    """The default CPU generator, and each CUDA device's where CUDA is initialized (a state read would initialize it)."""
    gens = [torch.default_generator]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gens += list(torch.cuda.default_generators)
    return gens


def _state(gen: Any) -> tuple[Any, int]:
    return gen.get_state(), gen.initial_seed()


def _reseeded(torch: Any, gen: Any, before: tuple[Any, int], after: tuple[Any, int]) -> bool:
    """Whether ``gen`` moved from ``before`` to ``after`` in a way no draw moves it: its initial seed changed, or its
    state is the fresh state of its seed (a ``manual_seed`` of the seed it had)."""
    if torch.equal(before[0], after[0]):
        return False
    if before[1] != after[1]:
        return True
    fresh = torch.Generator(device=gen.device).manual_seed(after[1]).get_state()
    return torch.equal(fresh, after[0])


def _recording(torch: Any, fn: Callable, me: int, calls: list[str], name: str, cuda: bool = False) -> Callable:
    """``fn`` recording, in ``calls``, each call of it by thread ``me`` that changed a generator's state: torch's own
    code puts a state back as it found it (``torch.random.fork_rng`` around a ``torch.cond``'s trace), which is no
    reseeding. A ``cuda`` one called while CUDA is not initialized changes nothing yet: torch queues it for CUDA's
    first use (which an export's Dynamo may bring about), so it counts as it is called."""
    def seeding(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != me:
            return fn(*args, **kwargs)
        gens = _generators(torch)
        before = [g.get_state() for g in gens]
        queued = cuda and torch.cuda.is_available() and not torch.cuda.is_initialized()
        try:
            return fn(*args, **kwargs)
        finally:
            if queued or any(not torch.equal(b, g.get_state()) for g, b in zip(gens, before)):
                calls.append(name)
    seeding.__wrapped__ = fn   # type: ignore[attr-defined]
    return seeding


def _forks_recorded(fn: Callable, me: int, forks: list[str]) -> Callable:
    """``torch.random.fork_rng`` recording, in ``forks``, each call of it by thread ``me`` from code outside torch
    (``forward``'s own: torch's ``checkpoint`` and random prims fork too, around draws of their own)."""
    import sys

    def fork_rng(*args: Any, **kwargs: Any) -> Any:
        enabled = kwargs.get("enabled", args[1] if len(args) > 1 else True)
        if threading.get_ident() == me and enabled:
            caller = sys._getframe(1)
            name = caller.f_globals.get("__name__", "")
            if name != "torch" and not name.startswith("torch."):
                forks.append(f"{caller.f_code.co_filename}:{caller.f_lineno}")
        return fn(*args, **kwargs)
    fork_rng.__wrapped__ = fn   # type: ignore[attr-defined]
    return fork_rng


@contextlib.contextmanager
def rng_kept(torch: Any, watch: bool = True, forks: list[str] | None = None) -> Iterator[list[bool]]:
    """The block (an export) with torch's random states put back where it set them itself; yields a list that holds
    True afterwards where it did (a seeding function called in this thread, ``watch``; or a move no draw makes). A move
    by other threads' draws is theirs: left as it is. ``watch=False`` for a strict export (Dynamo would trace the
    recording wrappers): told by the states alone. Callers hold the importer's export lock, so that no two blocks
    swap the functions at once. ``forks`` (with ``watch``): where ``forward``'s own code entered
    ``torch.random.fork_rng()`` is appended to it (eager puts the state back after the block: draws inside it are the
    same numbers at every call, where the program draws on; the caller refuses a program that draws)."""
    gens = _generators(torch)
    before = [_state(g) for g in gens]
    calls: list[str] = []
    swaps: list[tuple[Any, str, Callable]] = []
    changed: list[bool] = []
    try:   # (the swaps inside: an exception or a Ctrl-C midway left torch's seeding functions wrapped for good)
        if watch:
            me = threading.get_ident()
            modules = [torch, getattr(torch, "random", None), getattr(torch, "cuda", None),
                       getattr(getattr(torch, "cuda", None), "random", None)]
            for module in dict.fromkeys(m for m in modules if m is not None):
                for name in _SEEDING:
                    fn = getattr(module, name, None)
                    if callable(fn):
                        swaps.append((module, name, fn))
                        setattr(module, name, _recording(torch, fn, me, calls, f"{module.__name__}.{name}",
                                                         cuda=module.__name__.startswith("torch.cuda")))
            fork = getattr(getattr(torch, "random", None), "fork_rng", None)
            if forks is not None and callable(fork):
                swaps.append((torch.random, "fork_rng", fork))
                torch.random.fork_rng = _forks_recorded(fork, me, forks)
        yield changed
    finally:
        for module, name, fn in reversed(swaps):
            setattr(module, name, fn)
        now = _generators(torch)
        after = [_state(g) for g in now[:len(gens)]]
        # (a generator that appeared meanwhile is CUDA's, initialized by the block: Dynamo reads CUDA's random state
        # before it traces, so a strict export or a torch.cond on CPU tensors initializes CUDA on a GPU machine. That
        # is no reseeding; a seeding call queued for it is in ``calls``)
        reseeded = bool(calls) or any(
            _reseeded(torch, g, b, a) for g, b, a in zip(gens, before, after))
        if reseeded:
            for g, (state, _seed) in zip(gens, before):
                g.set_state(state)
        changed.append(reseeded)
