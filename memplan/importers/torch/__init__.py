"""PyTorch modules into memplan graphs through ``torch.export``: ``from_torch(module, example_inputs)``.

Why torch.export: it records every ATen op of one forward pass with a fake tensor per value
(``node.meta["val"]``: shape, strides, dtype, storage offset, and which storage it shares), which is
exactly what an arena plan needs, without running the model. torch is imported only when called.

Mapping:
- parameters, buffers and lifted constants -> ``weight``; user inputs -> ``input``; user outputs -> ``output``;
- an op whose result shares storage with an input (``view``, ``reshape`` of a contiguous tensor,
  ``permute``, ``transpose``, ``slice``, ``expand``, ``t``, ``unsqueeze``, ``squeeze``, ``split``...) ->
  a view of that input at the byte offset the fake tensor reports; aliasing is read off the fake
  tensors' storages, not guessed from op names, so ``reshape`` is a view exactly when torch made one;
- an in-place op (its schema writes an argument: ``relu_``, ``add_``...) on an intermediate that nothing
  else views -> a new tensor with ``inplace {out: in}``, and later readers of the mutated value read
  ``out``; on anything else (an input, a weight, a tensor with live views) the node writes a view of the
  mutated tensor, so the write is an access of its memory and no plan can move it;
- side results the op's kernel writes and nobody reads (``max_pool2d``'s int64 indices, eval
  ``batch_norm``'s saved statistics) -> extra outputs ``<node>.indices``, ``<node>.save_mean``,
  ``<node>.save_invstd`` that no node reads: their bytes are planned, live for that one node, and are
  reused right away (torch's own allocator holds them for the same instant);
- ``cost``: roofline microseconds from a FLOP estimate (2*M*N*K for matmuls and convolutions).
Dynamic (symbolic) shapes are refused with a GraphError: export with concrete example inputs; an ExportedProgram
with dynamic dimensions is specialized to the example inputs given with it, which must be its inputs (structure,
dtypes, ranks, fixed sizes) with other sizes. A data-dependent size (``nonzero``, ``.item()``) is planned at the bound
the program asserts (``torch._check(n <= 5)``, ``nonzero``'s element count), as torch derives it in this process (a
given program of such sizes is exported again), and refused where there is none. A given program's every ATen op's (and higher-order op's) recorded result
is checked against the op run on fake tensors of its recorded arguments, and every weight's record against its tensor:
a ``.pt2`` is its JSON's word, and a plan sized from an edited record would be smaller than what the op writes.
A program's custom ops (``torch.library``) are the user's fake kernels' word: ``from_torch`` runs the program once on CPU
example inputs where it holds one (in a ``cond``/``map``/``while_loop`` body too; a given program on its saved examples
where none are given) and refuses a fake that is not its kernel's result (``check_custom_ops``). transformers'
``DynamicCache`` and ``EncoderDecoderCache`` are flattened to their tensors (``common.transformers_cache_registered``). A ``.pt2``
naming transformers' ops or classes (its MoE op, a ``ModelOutput``) has the installed transformers' module imported
first, as ``import transformers`` in Python would (``load._known_libraries``).

The package, bottom up (each module imports only those before it): ``common`` (torch on call, op names), ``untrusted``
(code an archive must not run), ``load`` (``.pt2`` files), ``dims`` (dynamic sizes), ``checks`` (per-op checks),
``layouts`` (storages, weights, recorded results), ``translate`` (the graph) and ``trace`` (the entry points).
"""

from .checks import subgraphs, written_args
from .common import EXPORT_LOCK
from .dims import is_dynamic, sized_inputs
from .layouts import body_reach
from .load import load_exported
from .trace import from_torch, lower_vmapped, trace_torch

__all__ = ['EXPORT_LOCK', 'body_reach', 'from_torch', 'is_dynamic', 'load_exported', 'lower_vmapped', 'sized_inputs', 'subgraphs', 'trace_torch', 'written_args']
