"""``compile_per_count``: compiled programs of one module kept by the token counts of its sliding-window caches, one
compiled at the first call with a new count.

Why: a transformers ``DynamicSlidingWindowLayer`` counts the tokens it has seen in a Python int that torch.export
specializes (the step's positions, its mask's window offset: ``cache_windows.window_inputs``), so one program steps one
count and a call counting otherwise is refused (``cache_windows.window_mismatch``). Where the counts repeat (many prompts
of one length decoded step by step, a benchmark's loop, beam branches at one step), compiling a program per count by
hand is what each caller did. Each program here is a plain ``compile`` of the module with the call's own arguments
as its example, so each runs, checks and refuses as any compiled module; this only chooses among them.

What it is not: a dynamic count. Within one generation the count grows by one each step, so every step meets a new
count and compiles (seconds); keep ``limit`` small, and use a static cache's tensors written in place where one
program must serve every position.

Threads (round 57): the programs are found, compiled and let go under a lock, and a new count is compiled by one
thread while the others asking for it wait on that count's own lock (two threads meeting a new count compiled it
twice, and one's ``move_to_end`` could meet the other's eviction: a ``KeyError``). A compile excludes every call of
these programs and every other compile (``_ExportGate``): torch.export patches the module's hooks while it traces, so
two threads compiling counts 5 and 6 at once failed in torch.export ("expected an instance of Token"), and a call of
count 3 during count 4's compile was refused ("the forward pre-hooks ... changed after compile"; session 57).
Calls of counts already compiled run side by side between compiles. The programs share one arena
(``share_arena=True``, the default:
``layout.SharedArena``), as large as the largest program's: ``limit`` programs hold one arena, not ``limit``, at the
cost of one call at a time across every count (each program's calls were one at a time already), an output of a
``return_views`` call valid only until the next call of any count, and, where a new count's arena is larger, every
kept program built again on the new arena (its executor: no export, no planning; a CUDA graph captured again at its
next call). ``share_arena=False``: an arena per program, calls of two counts overlapping.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memplan.errors import plain_int

from .errors import AtenExecutorError
from .layout import SharedArena


class _ExportGate:
    """Many calls or one compile at a time: a compile waits for the calls under way and holds the next ones back."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls = 0
        self._compiling = False

    @contextmanager
    def call(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._compiling)
            self._calls += 1
        try:
            yield
        finally:
            with self._cond:
                self._calls -= 1
                self._cond.notify_all()

    @contextmanager
    def compile(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._compiling and self._calls == 0)
            self._compiling = True
        try:
            yield
        finally:
            with self._cond:
                self._compiling = False
                self._cond.notify_all()


class PerCountPrograms:
    """Compiled modules of ``module`` by the window counts of the calls' caches (``cache_windows.window_inputs``: (path,
    ((layer, tokens seen, tokens kept), ...)) for each cache at any container path), at most ``limit`` kept, the
    least recently used let go first. A call whose caches have no sliding layer has the key ``()``."""

    def __init__(self, module: Any, example_inputs: tuple, kwargs: dict | None, limit: int, options: dict,
                 share_arena: bool = True) -> None:
        from .compile import compile as compile_one

        self.module, self.limit, self.options = module, limit, options
        self.programs: OrderedDict[tuple, Any] = OrderedDict()
        self.compiles = 0
        self._compile = compile_one
        #: the one arena every program builds on (None: an arena each), and the lock every call holds on it
        self.arena = SharedArena() if share_arena else None
        self._lock = threading.Lock()   # (``programs``, ``compiles``, ``_compiling``: held for dict work alone)
        self._compiling: dict[tuple, threading.Lock] = {}   # (one lock per count being compiled)
        self._gate = _ExportGate()   # (a compile alone: torch.export patches the module while it traces)
        self._add(self.key(example_inputs, kwargs), example_inputs, kwargs)

    def key(self, args: tuple, kwargs: dict | None) -> tuple:
        """The window counts of a call's caches: which program steps it."""
        import torch

        from .cache_windows import window_inputs

        return window_inputs(torch, self.module, tuple(args), dict(kwargs or {}))

    @property
    def arena_bytes(self) -> int:
        """The arena bytes the kept programs hold: the shared storage's (the largest program's arena), or the sum of
        their own arenas."""
        with self._lock:
            programs = list(self.programs.values())
        if self.arena is not None:
            return self.arena.nbytes
        return sum(p.arena_bytes for p in programs)

    def _add(self, key: tuple, args: tuple, kwargs: dict | None) -> Any:
        """The program of ``key``, compiled with this call's arguments unless another thread did meanwhile: one
        thread compiles a count, the others asking for it wait on its lock, and calls of other counts go on."""
        with self._lock:
            lock = self._compiling.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                compiled = self.programs.get(key)
                if compiled is not None:   # (compiled by the thread this one waited for)
                    self.programs.move_to_end(key)
                    return compiled
            try:
                options = dict(self.options) if self.arena is None else {**self.options, "shared_arena": self.arena}
                with self._gate.compile():
                    compiled = self._compile(self.module, tuple(args), kwargs=dict(kwargs or {}), **options)
                with self._lock:
                    self.compiles += 1
                    self.programs[key] = compiled
                    while len(self.programs) > self.limit:
                        self.programs.popitem(last=False)
            finally:
                with self._lock:
                    if self._compiling.get(key) is lock:
                        del self._compiling[key]
        self._settle()
        return compiled

    def _settle(self) -> None:
        """Build again on the shared arena every kept program still on an older, smaller one (a larger count came):
        the older arena, which each such program holds, is then freed. A program the executor cannot build again now
        (``CompiledModule._check_rebuild``: under a default dtype one of its nodes follows) keeps its older arena,
        which stays valid, until the next count's compile settles it."""
        import torch

        if self.arena is None:
            return
        with self._lock:
            kept = list(self.programs.values())
        for compiled in kept:
            # (its ``call_lock`` first, then the arena's, as a call takes them: no call of it runs meanwhile, and a
            # rebuild inside one, of a module tensor replaced, cannot interleave with this one)
            with compiled.call_lock, self.arena.lock:
                generation = self.arena.generation_of(compiled.executor.layout.arena)
                if generation is None or generation == self.arena.generation:
                    continue
                try:
                    compiled._check_rebuild(torch, "a larger count's program outgrew the shared arena")
                except AtenExecutorError:
                    continue
                compiled._rebuild(compiled.program)

    def program(self, args: tuple, kwargs: dict | None) -> Any:
        """The compiled program that steps a call with these arguments (compiled now where its count is new)."""
        key = self.key(args, kwargs)
        with self._lock:
            compiled = self.programs.get(key)
            if compiled is not None:
                self.programs.move_to_end(key)
        if compiled is None:
            compiled = self._add(key, args, kwargs)   # (compile leaves the call's caches as passed)
        return compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self.program(args, kwargs)
        with self._gate.call():
            return self._run(compiled, args, kwargs)

    def _run(self, compiled: Any, args: tuple, kwargs: dict) -> Any:
        """One call of ``compiled``. Not under the shared arena's lock: each call of a program on it takes that lock
        itself, inside the program's own ``call_lock`` (``Executor.call``), and on CUDA the arena's ``CallOrder``
        orders the calls of every count on the device. Why: taking the arena's lock first here and the program's
        ``call_lock`` second, where a direct call of the same program (``steps.program(args)(...)``, or a program
        rebuilt inside its call) takes them the other way round, deadlocked both threads (round 75: within a second
        of two threads calling, one through ``steps(x)``, the other the program ``steps.program`` returned)."""
        return compiled(*args, **kwargs)


def compile_per_count(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, limit: int = 4,
                      share_arena: bool = True, **options: Any) -> PerCountPrograms:
    """``compile(module, example_inputs, kwargs=kwargs, **options)``, and again with a call's own arguments at the
    first call whose sliding-window caches count otherwise (``PerCountPrograms``); ``limit`` programs kept at most,
    on one arena (``share_arena``: the module's docstring says what it costs). Safe to call from several threads.
    ``options``: ``compile``'s (``streams``, ``cuda_graph``, ...), the same for every program."""
    if not isinstance(share_arena, bool):
        raise AtenExecutorError(f"compile_per_count: share_arena must be True or False, not {share_arena!r}")
    limit = plain_int(limit)   # (a numpy integer, as ``memplan.plan`` takes one: ``np.int64(2)`` was refused)
    if type(limit) is not int or limit < 1:
        raise AtenExecutorError(f"compile_per_count: limit must be an int of at least 1 (the programs kept), got "
                                f"{limit!r}")
    if options.get("shared_arena") is not None:
        raise AtenExecutorError("compile_per_count: option 'shared_arena' is compile_per_count's own choice "
                                "(share_arena=True or False), so leave it out")
    for name in ("plan", "program"):
        if options.get(name) is not None:
            raise AtenExecutorError(f"compile_per_count: option {name!r} is one count's; each count is exported and "
                                    "planned anew, so leave it out")
    if not isinstance(example_inputs, tuple):   # (as ``compile`` takes it)
        example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
    return PerCountPrograms(module, example_inputs, kwargs, limit, options, share_arena)
