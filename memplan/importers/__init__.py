"""Importers: real models (ONNX files, ``torch.export`` programs) into memplan graphs.

Each importer loads its framework lazily, so ``import memplan`` never pulls in onnx or torch; a missing
framework is a ``MemplanError`` telling the user which extra to install. Importers only translate: the
Graph they build is validated by ``memplan.graph`` like any hand-written one, so an importer bug shows up
as a ``GraphError`` naming the node instead of as a silently wrong plan.

Shared here: a roofline cost (so imported nodes carry ``cost`` for the scheduler) and a progress ticker
that prints a periodic line on a terminal and stays silent otherwise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import GraphError, positional_checked, uncallable_with
from ..graph import MAX_COST_US, Graph
from ..ops import roofline_us

#: ``progress(done, total)``: called once per imported node; cheap when throttled by ``tty_progress``.
Progress = Callable[[int, int], None]


def first_line(exc: BaseException) -> str:
    """The first line of a framework's exception (their messages run to pages), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_progress(progress: object, who: str) -> None:
    """GraphError unless ``progress`` is None or callable: checked on entry, since it is first called
    after the model is loaded and exported (a ``TypeError`` from deep inside, minutes later)."""
    if progress is not None and not callable(progress):
        raise GraphError(f"{who}: progress must be a callable (done, total) or None, not {type(progress).__name__}")
    why = uncallable_with(progress, 2) if progress is not None else None
    if why:   # (a one-argument one: a TypeError after the load)
        raise GraphError(f"{who}: progress must be a callable (done, total) or None: {why}")

__all__ = ["Progress", "node_cost", "tty_progress", "import_onnx", "from_torch"]


def node_cost(flops: float, nbytes: float) -> float:
    """Estimated microseconds of one kernel: the roofline of ``memplan.examples`` (H100-class), at most
    ``MAX_COST_US``. The estimate is ours, not the user's: a legal but enormous node (a convolution whose
    kernel spans its whole input) must import with the largest cost a graph may carry, not fail on a
    ``cost`` field the model never had."""
    return min(roofline_us(flops, nbytes), MAX_COST_US)


def tty_progress(label: str, *, quiet: bool = False, stream: TextIO | None = None,
                 interval: float = 1.0) -> Progress | None:
    """A progress callback printing ``label: done/total`` at most every ``interval`` seconds.

    Returns None (no progress at all) when ``quiet`` or when ``stream`` (default stderr) is not a
    terminal, so piped and CI output stays clean. The state lives in the closure, not in a global.
    """
    out = stream if stream is not None else sys.stderr
    if quiet or not getattr(out, "isatty", lambda: False)():
        return None
    last = [time.monotonic()]

    def tick(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < interval:
            return
        last[0] = now
        out.write(f"\r{label}: {done}/{total} nodes" + ("\n" if done >= total else ""))
        out.flush()

    return tick


def import_onnx(*args, **kwargs):
    """``memplan.importers.onnx.import_onnx`` (loaded on call: needs the ``onnx`` extra)."""
    from .onnx import import_onnx as impl

    return impl(*args, **kwargs)


def _torch_options() -> list[str]:
    """``from_torch``'s keyword options: those of ``memplan.importers.torch.from_torch`` (loaded here: needs torch)."""
    import inspect

    from .torch import from_torch as impl

    return [p.name for p in inspect.signature(impl).parameters.values() if p.kind == p.KEYWORD_ONLY]


# an option by position (``from_torch(m, (x,), None)``) or the module left out (``from_torch()``) was Python's bare
# TypeError, where README promises an OptionError naming the argument, as every other entry point gives
@positional_checked(_torch_options)
def from_torch(module: Any, example_inputs: Any = (), **kwargs: Any) -> Graph:
    """A torch module's forward pass as a Graph, via ``torch.export`` (``module`` may be an
    ``ExportedProgram``). The keyword options (``kwargs``, ``name``, ``alignment``, ``strict``,
    ``decompose``, ``progress``, ``check_custom_ops``) are ``memplan.importers.torch.from_torch``'s, which is loaded only on
    call so that ``import memplan`` needs no torch (the ``torch`` extra)."""
    from ..errors import check_option_names
    from .torch import from_torch as impl

    # a misspelt option (``alignmnet=``) was Python's TypeError: named here, with the nearest option, as every
    # entry point does (not ``named_options``: a bare 0-d integer tensor as the example input must stay one)
    check_option_names("from_torch", kwargs, _torch_options())
    return impl(module, example_inputs, **kwargs)
