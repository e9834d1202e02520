"""Splitting a buffer problem into independent parts, so exact solvers stay tractable.

Buffers in different connected components of the conflict graph never constrain each other (time
cuts where nothing is live are a special case), so the arena is the largest component arena and each
component can be solved alone — and a component whose heuristic arena is already at or below the
global lower bound needs no work at all.
"""

from __future__ import annotations

import numpy as np

from ..problem import BufferProblem, HBOrder, aligned_interval_bound


def components(problem: BufferProblem, adj: list[list[int]] | None = None) -> list[np.ndarray]:
    """Index arrays of the conflict graph's connected components (zero-size buffers left out),
    ordered by their smallest index, each ascending. From ``adj`` where a caller has the lists already, else from
    the conflict pairs in bulk (``_labels``): a union-find in Python took 12 s of the 15.6M list entries of a
    20,000-buffer problem, before ``cpsat`` with a time limit of 1 s began its model."""
    n = len(problem)
    sizes = problem.sizes
    if adj is None:
        a, b = problem.conflict_pairs()
        label = _labels(n, a, b)
        keep = np.flatnonzero(sizes > 0)
        order = np.argsort(label[keep], kind="stable")   # by component (its smallest index), ascending within it
        members = keep[order]
        cuts = np.flatnonzero(np.diff(label[members])) + 1
        return [np.asarray(g, dtype=np.int64) for g in np.split(members, cuts)] if len(members) else []
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, nbrs in enumerate(adj):
        for j in nbrs:
            if j > i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        if sizes[i] > 0:
            groups.setdefault(find(i), []).append(i)
    return [np.asarray(g, dtype=np.int64) for _, g in sorted(groups.items())]


def _labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each of ``n`` nodes' component in the graph of edges ``(a[k], b[k])``, named by its smallest node: rounds of
    hooking every root onto the smallest root an edge of its tree reaches, then pointer jumping until each node points
    at its root (Shiloach-Vishkin), in numpy; a few dozen rounds on any graph (each at least halves the roots that
    can still hook, for a tree of roots)."""
    label = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return label
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while True:
        la, lb = label[a], label[b]
        moved = la != lb
        if not moved.any():
            return label
        la, lb = la[moved], lb[moved]
        a, b = a[moved], b[moved]   # edges inside one tree stay inside it: never looked at again
        low, high = np.minimum(la, lb), np.maximum(la, lb)
        np.minimum.at(label, high, low)   # the larger root hooks onto the smallest root it meets
        while True:
            up = label[label]
            if np.array_equal(up, label):
                break
            label = up


def subproblem(problem: BufferProblem, idx: np.ndarray) -> BufferProblem:
    """The buffers ``idx`` as a problem of their own (conflicts, HB order and in-place pairs kept).

    Its ``lower_bound`` is the interval bound (sharpened by alignment) for interval problems and 0 otherwise (the interval
    bound over-counts buffers that happen-before each other, so it is no bound there).
    """
    idx = np.asarray(idx, dtype=np.int64)
    pos = {int(g): k for k, g in enumerate(idx.tolist())}
    order = None
    if problem.order is not None:
        o = problem.order
        # ``last_time`` kept (sliced as ``lower`` is): the conflict relation reads it, and a component solved without
        # it let two buffers share bytes that the whole problem keeps apart (an InvalidPacking from ``cpsat``)
        order = HBOrder(o.first[idx], o.visible[idx], o.has_start[idx], o.has_end[idx],
                        o.last_time[idx] if o.last_time is not None else None, o.stream_time)
    compatible = frozenset((pos[a], pos[b]) for a, b in problem.compatible if a in pos and b in pos)
    inplace = tuple((pos[a], pos[b]) for a, b in problem.inplace if a in pos and b in pos)
    names = tuple(problem.names[i] for i in idx.tolist()) if problem.names is not None else None
    meta = dict(problem.meta)
    for name in ("inplace_inexact", "inplace_resized"):   # buffer indices, like inplace's
        if name in meta:
            meta[name] = frozenset((pos[a], pos[b]) for a, b in meta[name] if a in pos and b in pos)
    if "inplace_shift" in meta:
        meta["inplace_shift"] = {(pos[a], pos[b]): d for (a, b), d in meta["inplace_shift"].items()
                                 if a in pos and b in pos}
    sizes, lower, upper = problem.sizes[idx], problem.lower[idx], problem.upper[idx]
    lb = aligned_interval_bound(sizes, lower, upper, problem.alignment) if order is None and not compatible else 0
    return BufferProblem(sizes=sizes, lower=lower, upper=upper, alignment=problem.alignment, names=names,
                         order=order, compatible=frozenset((min(a, b), max(a, b)) for a, b in compatible),
                         inplace=inplace, lower_bound=lb, capacity=problem.capacity, meta=meta)
