"""In-place pairs a plan may overlap only exactly: an output over its input at the same offset, or apart.

Why: the contract (rule 3) lets an in-place output share any byte of its input's root, and a problem's
``compatible`` pairs say just that, so the solvers took a partner's bytes as free anywhere: ``memplan.plan`` put a
node's output ``y`` (``inplace {y: xa}``) over ``xb``, another view of ``xa``'s root the node still reads, or an
output shifted a few bytes over its own input. A kernel writes an in-place output over its input element by element;
written anywhere else over bytes the node reads it races (or a runtime stages the inputs with a copy per call, or
refuses the op). So the solve step keeps the pairs a runtime can run in place and nothing else:

- ``strict_pairs``: the pairs ``meta["inplace_inexact"]`` lists (``lifetimes.inexact_inplace``: roots joined would
  not put the output exactly over the input alone) are conflicts, not partners;
- ``shifted_pairs``: the partners a packing overlaps at different offsets; ``solvers._solve`` solves again with those
  as conflicts until none is left (each round removes at least one pair, so it ends). The exact pairs are joined at one
  offset or disjoint in every plan.

The problem's ``lower_bound`` stays the contract's (a bound on every safe plan: fewer partners only raise the
arena); the verifier keeps the contract's rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from ..problem import BufferProblem


def strict_pairs(problem: BufferProblem) -> BufferProblem:
    """``problem`` with its inexact in-place pairs (``meta["inplace_inexact"]``) as conflicts; ``problem`` itself
    where it lists none."""
    shifted = problem.meta.get("inplace_inexact")
    if not shifted:
        return problem
    return without_pairs(problem, shifted)


def without_pairs(problem: BufferProblem, pairs: Iterable[tuple[int, int]]) -> BufferProblem:
    """``problem`` where the buffers of each of ``pairs`` conflict as any two others do: gone from ``compatible``,
    ``inplace`` and ``meta["inplace_inexact"]`` (every in-place entry between the two roots: one node's several
    pairs over one root pair share one answer)."""
    drop = {(min(a, b), max(a, b)) for a, b in pairs}
    if not drop:
        return problem
    meta = dict(problem.meta)
    if "inplace_inexact" in meta:
        meta["inplace_inexact"] = frozenset(p for p in meta["inplace_inexact"]
                                            if (min(p), max(p)) not in drop)
    return replace(problem, compatible=frozenset(problem.compatible - drop),
                   inplace=tuple(p for p in problem.inplace if (min(p), max(p)) not in drop), meta=meta)


def shifted_pairs(problem: BufferProblem, offsets) -> list[tuple[int, int]]:
    """The ``compatible`` pairs that ``offsets`` overlaps (a byte in common) at different offsets, sorted."""
    if not problem.compatible:
        return []
    off = np.asarray(offsets, dtype=np.int64)
    sizes = np.asarray(problem.sizes, dtype=np.int64)
    a, b = np.array(sorted(problem.compatible), dtype=np.int64).reshape(-1, 2).T
    bad = (off[a] != off[b]) & (off[a] < off[b] + sizes[b]) & (off[b] < off[a] + sizes[a]) & (sizes[a] > 0) & (
        sizes[b] > 0)
    return [(int(x), int(y)) for x, y in zip(a[bad], b[bad])]
