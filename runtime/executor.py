"""Run a memplan Plan on one GPU: one arena, the plan's streams and events, eager or as a CUDA graph.

Why it is built this way: the plan is the contract. Every arena tensor is ``arena + plan offset``
(views included), weights and the KV cache live outside the arena, each node is issued on its plan
stream in plan order, waiting on exactly the plan's events and recording them after. If the plan is
unsafe, the GPU result shows it — which is what the jitter tests rely on.

The step, its CUDA graph (``cuStreamBeginCapture`` on stream 0 through ``cuda.bindings.driver``; side
streams join the capture through the fork event and leave it through the join events, so eager and
graph runs execute the same dependency DAG) and the memory are ``runtime.cuda_core``'s, shared with the
multi-GPU executor; what runs at each node is ``runtime.step``'s program, shared with the CPU emulator.
This module adds what only one GPU has: one kernel library, optionally launched with programmatic
dependent launch (PDL), and L2 prefetches of weights on a side stream.

pycuda is imported when an Executor is created, never at module import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from memplan import Graph, Plan
from memplan.errors import ExecutorError, named_fields

from .cuda_core import CudaCore, ExecutorStateError, Jitter, Poison, check_graph_and_plan
from .kernels import GEMV_NORM_OFF, KernelLibrary
from .kernels.library import pdl_supported

__all__ = ["Executor", "ExecutorStateError", "Jitter", "Poison"]


@named_fields   # (``Executor(g, p, pdl=False)``, a misspelt option, was Python's bare TypeError: an OptionError now)
class Executor(CudaCore):
    """Holds the arena, weights, streams, events and per-node kernels of one (graph, plan) on one GPU."""

    def __init__(self, graph: Graph, plan: Plan, *, weights: Mapping[str, np.ndarray] | None = None,
                 inputs: Mapping[str, np.ndarray] | None = None, random_weights_seed: int | None = None,
                 library: KernelLibrary | None = None, check_plan: bool = True,
                 weights_from: Executor | None = None, pdl_policy: str = "auto",
                 prefetch: Iterable[tuple[str, str, int]] = (), gemv_norm_min: int = GEMV_NORM_OFF):
        """``weights``: host arrays per weight tensor (others get random f16 / 1.0 f32 values on the
        device when ``random_weights_seed``, a non-negative integer, is given, else zeros). ``check_plan=False`` runs a plan that
        ``memplan.verify`` rejects (the negative controls do exactly that). ``weights_from`` shares
        another executor's weights and cache (same graph) instead of allocating them again (with neither
        ``weights`` nor ``random_weights_seed``, which it would ignore: refused).
        ``library``: the kernels (default: compiled here, launched with PDL where ``cuda.bindings`` is
        installed). ``pdl_policy`` (kernels of a PDL library, ``KernelLibrary(pdl=True)``, only): "chain"
        launches a kernel with programmatic serialization only when the previous operation on its stream
        was a kernel launch (not a copy, memset or event wait); "always" uses it for every kernel (kept for
        ``runtime.tools.pdl_check``); "off" never; "auto" is "chain" unless the graph's weight products
        have a number of rows of x in ``ops.PDL_OFF_ROWS`` (17 to 32, where it measured slower on the 8B) and
        none reads an f16 x (the f16-activation graphs: gemm_ws gains from PDL there), then "off".
        ``prefetch``: ``(after_node, weight, nbytes)`` triples; after ``after_node`` is issued, an extra
        stream (forked from it by an event) pulls the first ``nbytes`` of ``weight`` into L2. Weights
        are never written by a step, so this adds no hazard; it only moves HBM traffic into phases
        where latency-bound kernels leave the memory idle. ``gemv_norm_min``: fused MUL_MAT+ADD+RMS_NORM+MUL
        groups whose weight has at least this many elements run as one GEMV+add+norm kernel, the others as
        a GEMV then the add+norm kernel (the same bits; default: never, which measured faster)."""
        check_graph_and_plan(graph, plan)   # before plan.devices below
        if plan.devices > 1:
            raise ExecutorError(f"plan {plan.graph!r} spans {plan.devices} devices: run it with runtime.multi_gpu")
        if library is not None and not isinstance(library, KernelLibrary):   # else an AttributeError mid-build
            raise ExecutorError(f"library {library!r}: expected a runtime.kernels.KernelLibrary or None")
        def make_library(_device: int) -> KernelLibrary:   # after CudaCore has verified the plan
            return library or KernelLibrary(pdl=pdl_supported())

        super().__init__(graph, plan, libraries=make_library, weights=weights, inputs=inputs,
                         random_weights_seed=random_weights_seed, weights_from=weights_from, check_plan=check_plan,
                         prefetch=prefetch, gemv_norm_min=gemv_norm_min, pdl_policy=pdl_policy)
        self.lib = self.libs[0]
