"""Lifetimes of root tensors under a schedule, and the buffer problem they define.

The accesses of a root tensor are its producer, every reader of it or of a view of it, every
producer of a view of it, plus a virtual start (inputs) or end (outputs) access. Two roots may share
bytes only when every access of one happens-before every access of the other (contract rule 3).

Visibility is monotone along each stream, so everything here reduces to per-stream thresholds:
``visible[r, s]`` is the first position on stream ``s`` from which all of ``r``'s accesses have
happened-before, and ``live_from[r, s]`` the first from which one has. A root is live on stream
``s`` exactly over ``[live_from, visible)`` — which gives both the exact conflict test and the
contract's lower bound (largest total live at one node) in O(streams x (nodes + accesses) log n).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ._gc import paused
from .graph import Graph
from .problem import BufferProblem, HBOrder, align_up, clique_lower_bound
from .schedule import HappensBefore

#: the per-stream tables (buffers x streams: the largest arrays of a plan at many streams) hold positions
#: within a stream, so 32 bits: 50,000 buffers on 1024 streams took 1.7 GB in int64
SEQ = np.int32
NEVER = SEQ(np.iinfo(SEQ).max)


@dataclass(frozen=True)
class Lifetimes:
    """Per planned root: accesses and happens-before thresholds (arrays indexed by buffer)."""

    roots: np.ndarray          # buffer -> graph tensor index
    acc_ptr: np.ndarray        # CSR over accessing nodes (graph node indices)
    acc_nodes: np.ndarray
    has_start: np.ndarray
    has_end: np.ndarray
    first: np.ndarray          # (B, S) first access seq per stream, NEVER if none
    last: np.ndarray           # (B, S) last access seq + 1 per stream, 0 if none
    visible: np.ndarray        # (B, S)
    live_from: np.ndarray      # (B, S)
    lower: np.ndarray          # time of first access (START = 0, node at position p = p + 1)
    upper: np.ndarray          # exclusive time after which every stream sees all accesses
    compatible: tuple[tuple[int, int, int], ...]  # (in_buffer, out_buffer, node) legal in-place pairs

    def accesses(self, b: int) -> np.ndarray:
        return self.acc_nodes[self.acc_ptr[b]:self.acc_ptr[b + 1]]


@paused
def compute_lifetimes(graph: Graph, hb: HappensBefore, *, fused_groups: bool = False) -> Lifetimes:
    """``fused_groups``: every access by a member of a fusion group counts as an access by the group's first
    and last members too, so every root a group touches is live across the whole group: a backend that runs
    the group as one kernel may then read any of its inputs while it writes any of its outputs (which the
    contract, node by node, does not promise). In-place pairs inside a group of several nodes then never
    share bytes."""
    n_nodes = len(graph.nodes)
    S = hb.num_streams
    root = graph.root
    arena_roots = [t for t in range(len(graph.tensors))
                   if root[t] == t and graph.tensors[t].kind != "weight"]
    buf_of = np.full(len(graph.tensors), -1, dtype=np.int64)
    buf_of[arena_roots] = np.arange(len(arena_roots))
    B = len(arena_roots)

    # every (node, buffer) access once, in bulk: the tensors each node reads and writes, mapped to
    # their root's buffer; duplicates (a node touching one root twice) and weights dropped
    counts = np.fromiter((len(i) + len(o) for i, o in zip(graph.node_inputs, graph.node_outputs)),
                         dtype=np.int64, count=n_nodes)
    touched = np.fromiter(chain.from_iterable(chain(i, o) for i, o in zip(graph.node_inputs, graph.node_outputs)),
                          dtype=np.int64, count=int(counts.sum()))
    acc_b_a = buf_of[np.asarray(root, dtype=np.int64)[touched]] if len(touched) else touched
    acc_n_a = np.repeat(np.arange(n_nodes, dtype=np.int64), counts)
    if fused_groups:
        acc_n_a, acc_b_a = _span_groups(graph, acc_n_a, acc_b_a)
    keep = acc_b_a >= 0
    key = np.sort(acc_n_a[keep] * max(B, 1) + acc_b_a[keep])
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    acc_n_a, acc_b_a = key // max(B, 1), key % max(B, 1)
    o = np.lexsort((hb.pos[acc_n_a] if len(acc_n_a) else acc_n_a, acc_b_a))
    acc_b_a, acc_n_a = acc_b_a[o], acc_n_a[o]
    acc_ptr = np.zeros(B + 1, dtype=np.int64)
    np.add.at(acc_ptr, acc_b_a + 1, 1)
    acc_ptr = np.cumsum(acc_ptr)

    kinds = [graph.tensors[t].kind for t in arena_roots]
    has_start = np.array([k == "input" for k in kinds], dtype=bool)
    has_end = np.array([k == "output" for k in kinds], dtype=bool)
    for t, tensor in enumerate(graph.tensors):  # an output view keeps its root to the end
        if tensor.view_of is not None and tensor.kind == "output" and buf_of[root[t]] >= 0:
            has_end[buf_of[root[t]]] = True

    a_stream = hb.stream[acc_n_a]
    a_seq = hb.seq[acc_n_a]
    assert n_nodes < NEVER // 2, "positions must fit the per-stream tables"
    first = np.full((B, S), NEVER, dtype=SEQ)
    last = np.zeros((B, S), dtype=SEQ)
    np.minimum.at(first, (acc_b_a, a_stream), a_seq.astype(SEQ))
    np.maximum.at(last, (acc_b_a, a_stream), (a_seq + 1).astype(SEQ))

    visible, live_from = _thresholds(hb, first, last, n_nodes)
    live_from[has_start] = 0
    visible[has_end] = NEVER

    # time intervals: lower = first access time; upper = when the last stream sees everything
    pos1 = hb.pos + 1
    lower = np.full(B, n_nodes + 1, dtype=np.int64)
    np.minimum.at(lower, acc_b_a, pos1[acc_n_a])
    lower[has_start] = 0
    upper = np.zeros(B, dtype=np.int64)
    for s0 in range(S):
        nodes_s0 = hb.stream_nodes[s0]
        if len(nodes_s0) == 0:
            continue
        times = np.append(pos1[nodes_s0], n_nodes + 1)
        v = np.minimum(visible[:, s0], len(nodes_s0))
        np.maximum(upper, times[v], out=upper)
    np.maximum(upper, lower + 1, out=upper)
    upper[has_end] = n_nodes + 2

    compatible = []
    for n, node in enumerate(graph.nodes):
        for o_id, i_id in node.inplace:
            a = int(buf_of[root[graph.tensor_index[i_id]]])
            b = int(buf_of[root[graph.tensor_index[o_id]]])
            if a < 0 or b < 0 or a == b or has_end[a] or has_start[b]:
                continue
            if graph.producer[int(arena_roots[b])] != n:  # contract: n produces out's root
                continue
            # accesses are in issue order: a's latest first and b's earliest first, so a node that is
            # not a's last access fails at once (many in-place readers of one root's views were
            # quadratic); only the one that is scans them all
            acc_a = acc_nodes_of(acc_ptr, acc_n_a, a)[::-1]
            acc_bb = acc_nodes_of(acc_ptr, acc_n_a, b)
            if all(x == n or hb.hb(int(x), n) for x in acc_a) and all(
                    x == n or hb.hb(n, int(x)) for x in acc_bb):
                compatible.append((a, b, n))

    return Lifetimes(
        roots=np.asarray(arena_roots, dtype=np.int64), acc_ptr=acc_ptr, acc_nodes=acc_n_a,
        has_start=has_start, has_end=has_end, first=first, last=last, visible=visible,
        live_from=live_from, lower=lower, upper=upper, compatible=tuple(compatible),
    )


def _span_groups(graph: Graph, acc_n: np.ndarray, acc_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The accesses plus, for each one by a member of a group of several nodes, the same buffer accessed by
    the group's first and last members (listed order; a valid schedule runs a group consecutively on one
    stream, so these two bracket every member)."""
    ends = np.arange(len(graph.nodes), dtype=np.int64)
    first, last = ends.copy(), ends.copy()
    for members in graph.groups().values():
        if len(members) > 1:
            first[list(members)] = members[0]
            last[list(members)] = members[-1]
    grouped = first[acc_n] != last[acc_n]
    return (np.concatenate([acc_n, first[acc_n[grouped]], last[acc_n[grouped]]]),
            np.concatenate([acc_b, acc_b[grouped], acc_b[grouped]]))


def _thresholds(hb: HappensBefore, first: np.ndarray, last: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``visible`` and ``live_from`` (B x S) from each buffer's first and last access on each stream.

    On stream ``s0``, ``visible[b, s0]`` is the first position from which every access of ``b`` has
    happened-before: the largest, over the streams ``s`` that access ``b``, of the first position whose
    clock on ``s`` has reached ``b``'s last access there (``last[b, s0]`` itself when ``s == s0``);
    ``live_from[b, s0]`` likewise the smallest first position that has seen one access of ``b``, capped
    at the stream's length. A stream that does not access ``b`` adds nothing (0 and the length), so
    only the accessing (buffer, stream) pairs are searched, and of those only the ones ``s0`` ever counts
    that far: all at once per ``s0``, in the clock columns of their streams laid end to end, which costs
    streams x (accesses + the reached nodes' columns), not streams^2 x buffers (a 2000-branch fan-out on
    1024 streams took minutes)."""
    B, S = first.shape
    visible = np.zeros((B, S), dtype=SEQ)
    live_from = np.empty((B, S), dtype=SEQ)
    pb, ps = np.nonzero(last > 0)  # the (buffer, stream) pairs with an access, by buffer (row-major)
    lasts, firsts = last[pb, ps].astype(np.int64), first[pb, ps].astype(np.int64)
    big = n_nodes + 2  # above every clock value and every count searched for
    starts = np.flatnonzero(np.r_[True, pb[1:] != pb[:-1]]) if len(pb) else pb
    ub = pb[starts]  # each accessed buffer once; its pairs are pb[starts[k]:starts[k + 1]]
    for s0 in range(S):
        nodes_s0 = hb.stream_nodes[s0]
        n_s0 = len(nodes_s0)
        live_from[:, s0] = n_s0
        if not len(pb) or not n_s0:   # (an empty stream: every threshold 0, as the search below gave)
            continue
        own = ps == s0
        # a pair on a stream s0 never counts that far (its last node's clock on s) is visible nowhere on s0:
        # n_s0, as the search would say; only the others are searched, in the columns of their streams
        # only (every pair, every column took 4 of 4.5 s of lifetimes at 50,000 nodes on 1024 streams)
        reach = hb.clock[nodes_s0[-1]].astype(np.int64)[ps]
        sv = np.flatnonzero(~own & (lasts <= reach))
        sl = np.flatnonzero(~own & (firsts < reach))
        vis = np.full(len(pb), n_s0, dtype=np.int64)
        lf = np.full(len(pb), n_s0, dtype=np.int64)
        if len(sv) or len(sl):
            used = np.unique(np.concatenate([ps[sv], ps[sl]]))
            # column s of this stream's clocks (for the streams searched), shifted by its rank * big: one
            # sorted array for all of them
            cols = (hb.clock[nodes_s0][:, used].T + (np.arange(len(used), dtype=np.int64) * big)[:, None]).ravel()
            kv, kl = np.searchsorted(used, ps[sv]), np.searchsorted(used, ps[sl])
            vis[sv] = np.searchsorted(cols, kv * big + lasts[sv], side="left") - kv * n_s0
            lf[sl] = np.searchsorted(cols, kl * big + firsts[sl] + 1, side="left") - kl * n_s0
        vis[own] = lasts[own]
        lf[own] = np.minimum(firsts[own], n_s0)
        # per buffer, the largest / smallest over its pairs (a segmented reduction: ufunc.at was most of it)
        visible[ub, s0] = np.maximum.reduceat(vis, starts)
        live_from[ub, s0] = np.minimum(np.minimum.reduceat(lf, starts), n_s0)
    return visible, live_from


def acc_nodes_of(ptr: np.ndarray, nodes: np.ndarray, b: int) -> np.ndarray:
    return nodes[ptr[b]:ptr[b + 1]]


def lower_bound(graph: Graph, hb: HappensBefore, lt: Lifetimes, sizes: np.ndarray | None = None) -> int:
    """The contract's bound: the largest total size of roots live at one node (``sizes`` overrides)."""
    if sizes is None:
        sizes = np.array([graph.tensors[t].size for t in lt.roots], dtype=np.int64)
    best = 0
    for s0 in range(hb.num_streams):
        n_s0 = len(hb.stream_nodes[s0])
        if n_s0 == 0:
            continue
        lo = np.minimum(lt.live_from[:, s0], n_s0)
        hi = np.minimum(lt.visible[:, s0], n_s0)
        keep = lo < hi
        diff = np.zeros(n_s0 + 1, dtype=np.int64)
        np.add.at(diff, lo[keep], sizes[keep])
        np.add.at(diff, hi[keep], -sizes[keep])
        # an input overwritten in place at n is not live at n; left out once, however many of
        # n's outputs overwrite it (one node may list several in-place outputs over one input root)
        for a, n in sorted({(a, n) for a, _b, n in lt.compatible}):
            if hb.stream[n] == s0:
                q = int(hb.seq[n])
                diff[q] -= sizes[a]
                diff[q + 1] += sizes[a]
        best = max(best, int(np.cumsum(diff)[:-1].max()))
    return best


def aligned_lower_bound(graph: Graph, hb: HappensBefore, lt: Lifetimes, sizes: np.ndarray) -> int:
    """The contract's bound, sharpened by alignment.

    Tensors live at one node are pairwise disjoint and start at aligned offsets, so all but the
    highest of them occupy their size rounded up to the alignment: the arena is at least the sum
    of rounded sizes less the largest rounding of any one tensor. For graphs of small tensors
    (256-byte alignment, a few hundred bytes each) this is far above the raw-size bound.
    """
    bound = lower_bound(graph, hb, lt, sizes)
    a = graph.alignment
    if a > 1 and len(sizes):
        rounded = align_up(sizes, a)
        pad = int((rounded - sizes).max())
        if pad:
            bound = max(bound, lower_bound(graph, hb, lt, rounded) - pad)
    return bound


def last_access_time(hb: HappensBefore, lt: Lifetimes) -> np.ndarray:
    """Issue time (position + 1) of each buffer's last real access; 0 if it has none."""
    out = np.zeros(len(lt.roots), dtype=np.int64)
    counts = np.diff(lt.acc_ptr)
    owners = np.repeat(np.arange(len(lt.roots)), counts)
    np.maximum.at(out, owners, hb.pos[lt.acc_nodes] + 1)
    return out


def restrict_lifetimes(lt: Lifetimes, keep: np.ndarray, hb: HappensBefore | None = None,
                       streams=None) -> Lifetimes:
    """Only the buffers where ``keep`` (a bool per buffer) holds, renumbered in their order.

    Multi-device plans (devices.py) solve one arena per device from one happens-before relation:
    each device's problem is the lifetimes of its own roots. ``streams`` (with ``hb``): the device's
    own streams. Another device's streams never wait for this one, so they would keep every
    buffer's ``upper`` at the end of the run and make every pair of intervals overlap (a quadratic
    conflict sweep); ``upper`` is then bounded by these streams alone. That stays a valid filter when
    each kept buffer's accesses on other streams are issued before every node of these streams
    (COPY nodes of earlier devices): an access issued later falls back to all streams.
    """
    keep = np.asarray(keep, dtype=bool)
    sel = np.flatnonzero(keep)
    new = np.full(len(lt.roots), -1, dtype=np.int64)
    new[sel] = np.arange(len(sel))
    counts = np.diff(lt.acc_ptr)
    owners = np.repeat(np.arange(len(lt.roots)), counts)
    acc_ptr = np.concatenate([[0], np.cumsum(counts[sel])]).astype(np.int64)
    acc_nodes = lt.acc_nodes[keep[owners]]
    upper = lt.upper[sel]
    if hb is not None and streams is not None:
        own = np.zeros(hb.num_streams, dtype=bool)
        own[[s for s in streams if 0 <= s < hb.num_streams]] = True
        own_nodes = np.flatnonzero(own[hb.stream])
        foreign = acc_nodes[~own[hb.stream[acc_nodes]]]
        if len(own_nodes) and (len(foreign) == 0 or hb.pos[foreign].max() < hb.pos[own_nodes].min()):
            n_nodes = len(hb.pos)
            upper = np.maximum(lt.lower[sel] + 1, 0)
            for s0 in np.flatnonzero(own):
                nodes_s0 = hb.stream_nodes[s0]
                if len(nodes_s0):
                    times = np.append(hb.pos[nodes_s0] + 1, n_nodes + 1)
                    np.maximum(upper, times[np.minimum(lt.visible[sel, s0], len(nodes_s0))], out=upper)
            upper[lt.has_end[sel]] = n_nodes + 2
    return Lifetimes(
        roots=lt.roots[sel], acc_ptr=acc_ptr, acc_nodes=acc_nodes,
        has_start=lt.has_start[sel], has_end=lt.has_end[sel], first=lt.first[sel], last=lt.last[sel],
        visible=lt.visible[sel], live_from=lt.live_from[sel], lower=lt.lower[sel], upper=upper,
        compatible=tuple((int(new[a]), int(new[b]), n) for a, b, n in lt.compatible if keep[a] and keep[b]),
    )


def buffer_problem(graph: Graph, hb: HappensBefore, lt: Lifetimes | None = None,
                   roots=None, streams=None) -> BufferProblem:
    """The graph's planning problem: one buffer per arena root, HB conflicts, in-place pairs.

    ``roots`` (graph tensor indices), when given, keeps only those roots' buffers (one device's arena),
    and ``streams`` names that device's streams (see ``restrict_lifetimes``).
    """
    if lt is None:
        lt = compute_lifetimes(graph, hb)
    if roots is not None:
        lt = restrict_lifetimes(lt, np.isin(lt.roots, np.fromiter(roots, dtype=np.int64)), hb, streams)
    sizes = np.array([graph.tensors[t].size for t in lt.roots], dtype=np.int64)
    serial = hb.num_streams == 1
    order = None if serial else HBOrder(lt.first, lt.visible, lt.has_start, lt.has_end, last_access_time(hb, lt),
                                        tuple(hb.pos[nodes] + 1 for nodes in hb.stream_nodes))
    compatible = frozenset((min(a, b), max(a, b)) for a, b, _ in lt.compatible)
    inplace = tuple((b, a) for a, b, _ in lt.compatible)
    problem = BufferProblem(
        sizes=sizes, lower=lt.lower, upper=lt.upper, alignment=graph.alignment,
        names=tuple(graph.tensors[t].id for t in lt.roots), order=order, compatible=compatible,
        inplace=inplace, lower_bound=aligned_lower_bound(graph, hb, lt, sizes),
    )
    if not serial:  # concurrent branches: a conflict clique may prove more than the per-node bound
        clique = clique_lower_bound(problem)
        if clique > (problem.lower_bound or 0):
            problem = dataclasses.replace(problem, lower_bound=clique)
    return problem
