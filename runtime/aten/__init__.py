"""An executor for ``torch.export`` programs and their memplan plans: ATen ops over one arena.

Why a second executor: the pycuda one runs our own kernels for hand-built graphs; real models come from
PyTorch. This one takes an ``ExportedProgram`` (through ``memplan.from_torch``'s importer), plans it with
``memplan.plan``, and runs every node's ATen op so that its result lands at the planned arena offset, on
the plan's streams with the plan's events, optionally captured into one CUDA graph.

Modules, one job each:
- ``program``: export + import + the trace that ties FX values to graph tensors; weights; inputs/outputs;
- ``layout``: the arena tensor and every graph tensor as a strided view at its planned place;
- ``lower``: one ``Launch`` per node (the ``out=`` overload, in place, a checked view, or a counted copy);
- ``streams``: torch streams and events, fork/join, CUDA graph capture and replay;
- ``executor``: a call: inputs in, launches, outputs out, stats;
- ``compile``: the public ``compile()`` API;
- ``per_count``: ``compile_per_count()``, a program per sliding-window cache count, compiled at its first call;
- ``bench``: ``python -m runtime.aten.bench``.

``from runtime.aten import compile`` is the entry point.
"""

from __future__ import annotations

from .compile import CompiledModule, compile  # noqa: A004
from .per_count import compile_per_count

__all__ = ["CompiledModule", "compile", "compile_per_count"]
