"""``compile_per_count``: compiled programs of one module kept by the token counts of its sliding-window caches, one
compiled at the first call with a new count.

Why: a transformers ``DynamicSlidingWindowLayer`` counts the tokens it has seen in a Python int that torch.export
specializes (the step's positions, its mask's window offset: ``ambient.window_inputs``), so one program steps one
count and a call counting otherwise is refused (``ambient.window_mismatch``). Where the counts repeat (many prompts
of one length decoded step by step, a benchmark's loop, beam branches at one step), compiling a program per count by
hand is what each caller did. Each program here is a plain ``compile`` of the module with the call's own arguments
as its example, so each runs, checks and refuses as any compiled module; this only chooses among them.

What it is not: a dynamic count. Within one generation the count grows by one each step, so every step meets a new
count and compiles (seconds); keep ``limit`` small (each program holds its own arena), and use a static cache's
tensors written in place where one program must serve every position.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .errors import AtenExecutorError


class PerCountPrograms:
    """Compiled modules of ``module`` by the window counts of the calls' caches (``ambient.window_inputs``: (path,
    ((layer, tokens seen, tokens kept), ...)) for each cache at any container path), at most ``limit`` kept, the
    least recently used let go first. A call whose caches have no sliding layer has the key ``()``."""

    def __init__(self, module: Any, example_inputs: tuple, kwargs: dict | None, limit: int, options: dict) -> None:
        from .compile import compile as compile_one

        self.module, self.limit, self.options = module, limit, options
        self.programs: OrderedDict[tuple, Any] = OrderedDict()
        self.compiles = 0
        self._compile = compile_one
        self._add(self.key(example_inputs, kwargs), example_inputs, kwargs)

    def key(self, args: tuple, kwargs: dict | None) -> tuple:
        """The window counts of a call's caches: which program steps it."""
        import torch

        from .ambient import window_inputs

        return window_inputs(torch, self.module, tuple(args), dict(kwargs or {}))

    def _add(self, key: tuple, args: tuple, kwargs: dict | None) -> Any:
        compiled = self._compile(self.module, tuple(args), kwargs=dict(kwargs or {}), **self.options)
        self.compiles += 1
        self.programs[key] = compiled
        while len(self.programs) > self.limit:
            self.programs.popitem(last=False)
        return compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = self.key(args, kwargs)
        compiled = self.programs.get(key)
        if compiled is None:
            compiled = self._add(key, args, kwargs)   # (compile leaves the call's caches as passed)
        self.programs.move_to_end(key)
        return compiled(*args, **kwargs)


def compile_per_count(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, limit: int = 4,
                      **options: Any) -> PerCountPrograms:
    """``compile(module, example_inputs, kwargs=kwargs, **options)``, and again with a call's own arguments at the
    first call whose sliding-window caches count otherwise (``PerCountPrograms``); ``limit`` programs kept at most.
    ``options``: ``compile``'s (``streams``, ``cuda_graph``, ...), the same for every program."""
    if type(limit) is not int or limit < 1:
        raise AtenExecutorError(f"compile_per_count: limit must be an int of at least 1 (the programs kept), got "
                                f"{limit!r}")
    for name in ("plan", "program"):
        if options.get(name) is not None:
            raise AtenExecutorError(f"compile_per_count: option {name!r} is one count's; each count is exported and "
                                    "planned anew, so leave it out")
    if not isinstance(example_inputs, tuple):   # (as ``compile`` takes it)
        example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
    return PerCountPrograms(module, example_inputs, kwargs, limit, options)
