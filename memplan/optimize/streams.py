"""Stream assignment and issue order for any DAG: critical-path list scheduling with chain covers.

Why this shape: llama.cpp's concurrency pass recognises one pattern (the Q/K/V fork); a general
scheduler must find overlap in any DAG — nested fan-outs, joins of uneven depth, MoE-wide fan-outs —
without paying more in synchronisation than it wins. The method:

1. *Units.* A fusion group is one super-node (its members run consecutively, in listed order, on one
   stream); every other node is its own unit. Groups are contiguous in the listed (topological)
   order, so the unit graph stays acyclic. A view a node produces is a (costless) node of it too,
   standing for every writer along its chain, so that chains of view ops stay linear (``Units``).
2. *Priority.* Each unit's bottom level (its cost plus the longest path of costs after it) — the
   classic critical-path priority. Ready units are taken highest-priority first (ties: listed order).
   A second family takes ready units in listed order instead: depth-first like the author's order,
   which keeps fewer branches half-done and so needs less memory (the budget search wants those).
3. *Placement.* A unit goes to the stream where it would finish earliest ("eft") or start earliest
   ("est"), given each stream's tail and each dependency's end time plus the event latency for the
   dependencies that stream does not already know about. That knowledge is a vector clock per stream,
   exactly the transitive reduction that decides events later, so the scheduler charges only for
   events that will really exist. Ties prefer fewer new events, then the stream free soonest, then
   the lower stream: a chain stays on its stream.
4. *Chains.* A minimum chain cover along direct dependencies (maximum bipartite matching, as Nimble
   does over the closure; here critical successors are matched first) gives a second family of
   candidates in which every chain is pinned to one stream: a chain never pays an event inside.
5. *Choice.* Every candidate (the serial order; each strategy for 2..max_streams streams) gets the
   fewest events happens-before allows (``schedule_with_events``) and is simulated under the cost model;
   the shortest simulated makespan wins (ties: fewer events, fewer streams). The serial order is always
   a candidate, so the result is never slower than serial under the model.

Everything is deterministic: no randomness, ties broken by indices.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .._gc import paused
from ..errors import named_options
from ..errors import short_repr as _short
from ..graph import Graph, check_graph
from ..planfile import MAX_STREAMS
from ..schedule import Event, Schedule
from .cost import CostModelLike, check_cost_model, event_latency, node_costs, total_us
from .events import Replay, wait_pairs
from .timeline import simulate_indices

#: above this many candidate streams, ``list_schedule`` tries only those a unit's start can differ on
#: (``indexed_candidates``), not every one: the same choice, at the cost of the streams a unit's inputs
#: involve rather than every stream in use (1024 streams)
INDEXED_CANDIDATES = 16
#: above that, where the index would list more than ``SCAN_ABOVE`` streams, ``scanned_candidates`` tries the streams
#: free-est first instead, at most ``SCAN_CANDIDATES`` of them before it gives up for the index (the same choice).
#: (16 while the index's size was bounded from above by every knower of the inputs' streams; counted exactly since
#: round 42, a random DAG at 1,024 streams lists about 30, where the scan gave up on nearly every unit)
SCAN_ABOVE = 64
SCAN_CANDIDATES = 16
#: the scan is tried first, too, where the index would list every used stream (each one knows the unit's inputs:
#: a wide fork's branches at 24 .. 48 streams, where the free-est stream wins at once and the index tried them all)
SCAN_COVERED = True

#: ``list_schedule_twin`` keeps dense clocks (an int32 numpy row per clock) once more than this many streams are in use
#: (fewer: dict clocks, which hold only the streams a clock knows), whatever the number of units: a dense row is made
#: only where a unit takes an event, and a stream's clock row is shared by its units up to the next one, where dict
#: clocks copy a dict for every unit, each holding every stream its clock knows. Why: past a cap of 2**26 cells
#: counting a row for every unit, the dict clocks that stayed took 3.8 GB and 85 s of CPU for a 100,000-node MoE-like
#: graph on 1,024 streams, whose clocks know hundreds of streams each; dense rows: 0.32 GB and 6.7 s, the same schedule
DENSE_STREAMS = 32
#: with dense clocks, ``related`` finds the streams that know an input through the most that each block of this many
#: streams knows of the input's stream (``_block_max``): the blocks holding a knower, then their rows only. Why: a
#: whole column of the clock matrix per input was O(streams) per unit (a 20,000-branch fork on 1,024 streams: every
#: branch read 1,024 strided cells to learn that more than 62 streams know the fork's source; now 32 cells and 64)
KNOW_BLOCK = 32

#: with dense clocks, a unit reading more than this many writers on distinct streams (a reader of a view whose chain
#: of writers spans hundreds of streams) has its start on each candidate stream computed by numpy over the whole
#: clock matrix at once: the same comparisons and float maxima, so the same schedules. Why: the loop over its
#: writers for each candidate stream was streams x writers Python steps per unit (a 2,000-node chain of view ops,
#: each view read, on 1,024 streams: over an hour; ``related`` one column read per writer on top)
WIDE_READS = 64

#: above this many units the candidate set shrinks to keep graph_optimize near-linear
LARGE_UNITS = 20_000
#: the chain cover is skipped above this many units
CHAIN_COVER_UNITS = 5_000
#: ``chain_cover`` keeps Kuhn's matching (augmenting paths, O(units x edges): on a dense layer its searches walk
#: ever longer paths, 10 s for 450k edges) while it takes at most this many steps plus ``CHAIN_COVER_EDGE_WORK`` per
#: unit and edge; past that, the units not yet tried take their first free successor and Hopcroft-Karp phases
#: (O(units + edges) each) finish the matching within as many steps again
CHAIN_COVER_WORK = 2_000_000
CHAIN_COVER_EDGE_WORK = 1
#: the chain cover's edges from every writer of a view to its readers while listing them takes at most
#: this many times (nodes + edges of the unit graph) steps; past that, from the view's producer only
CHAIN_COVER_STEPS = 4


@dataclass(frozen=True)
class Units:
    """The unit (super-node) graph: fusion groups collapsed, in listed order, with its written views.

    Units are ``0 .. len(members) - 1``. After them come the *written views*, one node each: the views
    that have a producer, standing for every writer along their chain (``Graph.writers``). A unit
    reading a view depends on the view's node, and the node on the unit producing the view and on
    the written tensor above it (the next view's node, or the unit producing the root). So a chain of
    k views, each produced by its own node and each read, is O(k) edges, where listing every writer
    for every reader is k^2 / 2 (an ONNX Reshape/Identity chain imported as views, ggml VIEW nodes).
    A unit becomes ready exactly when every unit it reads from is done, as if they were all listed.
    ``deps``/``succs``/``rank`` cover both kinds (a view node costs nothing); ``view_unit[v]`` is the
    unit producing view node ``len(members) + v``.
    """

    members: tuple[tuple[int, ...], ...]
    unit_of: tuple[int, ...]
    deps: tuple[tuple[int, ...], ...]
    succs: tuple[tuple[int, ...], ...]
    cost: tuple[float, ...]
    rank: tuple[float, ...]
    view_unit: tuple[int, ...] = ()

    @cached_property
    def fixed_order(self) -> tuple[int, ...]:
        """``fixed_order(self)``, made once (not a field: equality and hashing ignore it)."""
        return tuple(fixed_order(self))


def build_units(graph: Graph, cost: Sequence[float]) -> Units:
    members = graph.units()
    n = len(members)
    unit_of = [0] * len(graph.nodes)
    for u, ms in enumerate(members):
        for m in ms:
            unit_of[m] = u
    tensors, producer, inputs, written, tindex = (graph.tensors, graph.producer, graph.node_inputs, graph.written,
                                                  graph.tensor_index)
    view_node: dict[int, int] = {}  # written view (tensor) -> its node
    view_deps: list[tuple[int, ...]] = []
    view_unit: list[int] = []

    def node_of(j: int) -> int:
        """The node standing for tensor ``j``'s writers (``j`` has a producer): the root's unit, or the
        view's node, made (with those above it) on first use."""
        if tensors[j].view_of is None:
            return unit_of[producer[j]]
        chain = []
        while j not in view_node and tensors[j].view_of is not None:
            chain.append(j)
            j = written[tindex[tensors[j].view_of]]
            if j < 0:
                break
        for c in reversed(chain):  # from the top down: the one above is known
            above = written[tindex[tensors[c].view_of]]
            deps = {unit_of[producer[c]]} | ({node_of(above)} if above >= 0 else set())
            view_node[c] = n + len(view_deps)
            view_deps.append(tuple(sorted(deps)))
            view_unit.append(unit_of[producer[c]])
        return view_node[chain[0]] if chain else view_node[j]

    latest_writer = graph.fold_writers(lambda w: w, max)  # the last-listed writer of a tensor's chain
    deps: list[tuple[int, ...]] = []
    for u, ms in enumerate(members):
        if len(ms) == 1 and all(tensors[t].view_of is None for t in inputs[ms[0]]):
            # the common case: one node reading no views depends on its inputs' producers
            found = {unit_of[p] for p in map(producer.__getitem__, inputs[ms[0]]) if p >= 0}
        else:
            found = set()
            for m in ms:
                for t in inputs[m]:
                    j = written[t]
                    if j < 0:
                        continue
                    if latest_writer.of(t) >= ms[0]:  # a member writes on the chain: list the writers
                        found.update(unit_of[w] for w in graph.writers(t))  # (the unit is not its own)
                    else:
                        found.add(node_of(j))
        found.discard(u)
        deps.append(tuple(sorted(found)))
    deps += view_deps
    succs: list[list[int]] = [[] for _ in deps]
    for v, ds in enumerate(deps):
        for d in ds:
            succs[d].append(v)
    ucost = [total_us(cost[m] for m in ms) for ms in members]
    # bottom levels, successors first (views, made as they are read, need not follow their readers)
    rank = [0.0] * len(deps)
    waiting = [len(x) for x in succs]
    ready = [v for v in range(len(deps)) if not waiting[v]]
    while ready:
        v = ready.pop()
        rank[v] = (ucost[v] if v < n else 0.0) + max(map(rank.__getitem__, succs[v]), default=0.0)
        for d in deps[v]:
            waiting[d] -= 1
            if not waiting[d]:
                ready.append(d)
    return Units(tuple(tuple(m) for m in members), tuple(unit_of), tuple(deps),
                 tuple(tuple(x) for x in succs), tuple(ucost), tuple(rank), tuple(view_unit))


def list_schedule(U: Units, k: int, event_us: float, *, mode: str = "eft",
                  fixed: Sequence[int] | None = None, chain_pred: Sequence[int] | None = None,
                  listed: bool = False) -> tuple[list[int], list[int]]:
    """Critical-path list scheduling of units onto ``k`` streams.

    ``fixed[u]`` pins unit ``u`` to a stream; ``chain_pred[u]`` (a unit or -1) pins ``u`` to the
    stream of its chain predecessor; ``listed`` takes ready units in listed order instead of by
    priority (depth-first like the author's order: frugal with memory). Returns (units in issue
    order, stream per unit).
    """
    order, stream, _ = list_schedule_twin(U, k, event_us, mode=mode, fixed=fixed, chain_pred=chain_pred,
                                          listed=listed, twin=False)
    return order, stream


def _dense_clocks(know: list, clock: list, stream: list[int], width: int) -> tuple[np.ndarray, list, np.ndarray]:
    """``list_schedule_twin``'s dict clocks as dense rows: (the matrix of every stream's clock, the streams'
    clocks, their ``_block_max``), each unit's ``clock`` entry replaced in place. A dict clock holds its own stream's
    count, a dense row 0 there (a unit's own count is its ``seq``); dicts shared by several units stay one shared row.
    The matrix has a row for every stream and zero rows up to a whole number of ``KNOW_BLOCK`` blocks."""
    rows: dict[int, np.ndarray] = {}

    def row(d: dict, own: int) -> np.ndarray:
        r = rows.get(id(d))
        if r is None:
            r = np.zeros(width, dtype=np.int32)
            for x, v in d.items():
                if x != own:
                    r[x] = v
            rows[id(d)] = r
        return r

    for u, c in enumerate(clock):
        if c is not None:
            clock[u] = row(c, stream[u])
    blocks = -(-width // KNOW_BLOCK)
    matrix = np.zeros((blocks * KNOW_BLOCK, width), dtype=np.int32)
    dense_know = []
    for s in range(width):
        matrix[s] = row(know[s], s)
        dense_know.append(matrix[s].copy())
    return matrix, dense_know, _block_max(matrix)


def _block_max(matrix: np.ndarray) -> np.ndarray:
    """``most[x, b]``: the highest count of stream x that a stream of block b (streams ``b * KNOW_BLOCK`` ..) knows,
    for ``matrix`` of whole blocks of rows. A clock row only ever grows entry by entry (a new row is the old one's
    entry-wise max with others), so ``list_schedule_twin`` keeps this exact with one ``np.maximum`` per new row, and
    a block whose entry passes a count holds a stream whose own entry does."""
    width = matrix.shape[1]
    return np.ascontiguousarray(matrix.reshape(-1, KNOW_BLOCK, width).max(axis=1).T)


def list_schedule_twin(U: Units, k: int, event_us: float, *, mode: str = "eft",
                       fixed: Sequence[int] | None = None, chain_pred: Sequence[int] | None = None,
                       listed: bool = False, twin: bool = True, stats: dict[str, int] | None = None
                       ) -> tuple[list[int], list[int], tuple[bool, bool, bool]]:
    """``list_schedule`` and which other runs are this run (``twin``, mode "eft"; else all False): the same
    call in mode "est", in mode "eft" with free events (``event_us`` 0), in mode "est" with free events.

    "eft" and "est" rank a unit's streams by its finish and its start; the finish is the start plus the
    unit's cost, the same on every stream, so the two orders differ only where adding the cost rounds two
    different starts to one finish. Free events change a stream's start only where a new event would
    bound it. Each other run's choice is kept beside this one's while it agrees: the same stream and (with
    free events) the same start, so the same end time and clocks. If they agree on every unit, the runs
    are the same run, and ``optimize`` does not repeat it.

    ``stats`` (for tests: operation counts, not times): "scored" is increased by the streams tried, each
    one a unit's start computed on it; "looked" by the steps ``indexed_candidates`` took to find the streams that
    know an input (a stream or a count looked at; with dense clocks, each stream found and one per input: a column
    given up on, or answered by ``over``, is one); "merged" by
    the Python steps of the clock merges (an entry of a dict clock, a row of a dense one); "wide" by the units whose
    starts numpy found on every candidate stream at once (``WIDE_READS``).

    Dense clocks (``DENSE_STREAMS``): above 32 possible streams a clock is an int32 numpy row indexed by stream
    (its own stream's entry left 0: a unit's own count is its ``seq``), and the streams that know an input are one
    column of the matrix of every stream's clock. Why: with dict clocks an event merged the writer's clock entry by
    entry and filed each raised entry in the ``knowing`` index, and on a layered DAG at 1,024 streams a clock knows
    hundreds of streams (20,000 nodes: 12.6M merge steps and 3.6M index updates per run, 4.4 s where 64 streams
    take 0.5 s). The same comparisons on the same numbers: the same schedules.
    """
    n = len(U.members)
    eft = mode == "eft"
    twin = twin and eft
    twin_free = twin_free_est = twin   # (while False, start times with free events are not kept)
    indeg = [len(d) for d in U.deps]
    prio = [float(u) for u in range(n)] if listed else [-r for r in U.rank[:n]]
    heap = [(prio[u], u) for u in range(n) if indeg[u] == 0]
    heapq.heapify(heap)
    free = [0.0] * k
    width = min(k, n)   # (stream ids lie below both: no more streams are used than units)
    # dense clocks once more than DENSE_STREAMS streams are in use (a chain at 1,024 streams keeps dict clocks: a
    # width x width matrix for the one stream it uses was 4 MB per 1,000 units); the same schedules either way
    dense = False
    matrix = block_most = np.zeros((0, 0), dtype=np.int32)
    block_rows = np.arange(-(-width // KNOW_BLOCK) * KNOW_BLOCK).reshape(-1, KNOW_BLOCK)   # a block's streams
    over = [-1] * k   # with dense clocks: the highest count of stream x that more than SCAN_ABOVE - 2 streams knew
    # know[s][x]: how many of stream x's units s has synchronised with (absent: none); sparse, so a unit's
    # clock costs the streams it knows, not k; with ``dense``, a row (never changed in place) and ``matrix[s]`` a copy
    know: list = [{} for _ in range(k)]
    knowers: list[list[int]] = [[] for _ in range(k)]   # x -> the other streams s with know[s][x] > 0
    # knowing[x][v]: the other streams s with know[s][x] == v (as a dict: a set in insertion order), so that those
    # with know[s][x] > q are found in count[x] - q lookups, not by scanning every knower of x (up to k: most of
    # ``list_schedule``'s time on a random DAG at 1,024 streams); each (s, x) of ``know`` once
    knowing: list[dict[int, dict[int, None]]] = [{} for _ in range(k)]
    by_free: list[tuple[float, int]] = []   # (free[s], s) of used streams; entries behind free[s] are stale
    count = [0] * k
    end = [0.0] * n
    stream = [-1] * n
    seq = [0] * n
    clock: list[dict[int, int] | None] = [None] * n
    order: list[int] = []
    # a written view's node, once done: {stream: its latest-placed unit} over the view's writers
    last_on: dict[int, dict[int, int]] = {}
    # streams 0 .. used - 1 have units; the others are all alike (free at 0, knowing nothing), so only
    # the lowest of them, which wins their tie, is tried
    used = 0

    def latest_per_stream(ds: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for d in ds:
            for sd, w in ({stream[d]: d} if d < n else last_on[d]).items():
                if sd not in out or seq[w] > seq[out[sd]]:
                    out[sd] = w
        return out

    wide_of: list = [None, None]   # [ds, its (streams, counts, ends) arrays] of the unit being placed

    def wide(ds: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """With dense clocks, where ``ds`` holds more than ``WIDE_READS`` writers, each on its own stream (as
        ``latest_per_stream`` leaves them; else None: the loops), ``ds`` as rows across every stream: (which streams
        hold a writer, the writer's sequence number there (int32 max elsewhere: no clock passes it), its end and its
        end plus the event latency there (-inf elsewhere))."""
        if not dense or len(ds) <= WIDE_READS:
            return None
        if wide_of[0] is None:
            sd = np.fromiter(map(stream.__getitem__, ds), dtype=np.int64, count=len(ds))
            arrays = None
            if len(np.unique(sd)) == len(ds):
                w = matrix.shape[1]
                held = np.zeros(w, dtype=bool)
                held[sd] = True
                thr = np.full(w, np.iinfo(np.int32).max, dtype=np.int32)
                thr[sd] = np.fromiter(map(seq.__getitem__, ds), dtype=np.int64, count=len(ds))
                e = np.full(w, -math.inf)
                e[sd] = np.fromiter(map(end.__getitem__, ds), dtype=np.float64, count=len(ds))
                arrays = (held, thr, e, e + event_us)
            wide_of[:] = [True, arrays]
        return wide_of[1]

    def wide_starts(cs: Sequence[int], arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
                    ) -> tuple[list[float], list[float], list[int]]:
        """(starts, starts with free events, events) on the streams ``cs`` of a unit whose writers are ``arrays``
        (``wide``): ``start_on``'s values by numpy, one row per stream (a maximum of the same float sums is the
        same float; each writer on its own stream is one event where the stream does not know it)."""
        held, thr, e, e_ev = arrays
        c = np.asarray(cs, dtype=np.int64)
        known = matrix[c] > thr
        known[np.arange(len(c)), c] = True   # (a writer on the stream itself needs no event)
        f = np.fromiter(map(free.__getitem__, cs), dtype=np.float64, count=len(cs))
        t = np.maximum(f, np.where(known, e, e_ev).max(axis=1))
        t0 = np.maximum(f, e.max())
        return t.tolist(), t0.tolist(), (held & ~known).sum(axis=1).tolist()

    def related(ds: Sequence[int], most: float = math.inf) -> set[int] | None:
        """The streams whose start time for a unit reading ``ds`` can differ from a stream's that knows none of
        them: the inputs' streams, and those that synchronised with an input's writer or a later unit of its
        stream (``indexed_candidates``); None once more than ``most`` are found (then the scan is tried first)."""
        rel: set[int] = set()
        looked = 0
        arrays = wide(ds)
        try:
            if arrays is not None:   # every writer's stream, and every stream whose clock passes one of them
                rel.update(stream[d] for d in ds)
                looked += len(ds)
                if len(rel) > most:
                    return None
                hit = (matrix > arrays[1]).any(axis=1).nonzero()[0].tolist()
                rel.update(hit)
                looked += len(hit)
                return None if len(rel) > most else rel
            for d in ds:
                sd, sq = stream[d], seq[d]
                if dense:   # the streams whose clock passes its sequence number, in the blocks where one does
                    found = knowing_dense(sd, sq, most)
                    looked += 1 + (0 if found is None else len(found))
                    if found is None:   # (before the set is made: every stream of a wide fork knows its source)
                        return None
                    if len(found) + 1 < used:
                        rel.add(sd)
                        rel.update(found)
                        if len(rel) > most:
                            return None
                    # else every used stream knows d (its own too): no event and the same end on each, so d ranks no
                    # used stream apart, and the free-est of those that ``rel`` leaves out still stands for them all.
                    # Why: a unit reading a tensor that every stream has waited for (a KV cache or positions made
                    # first, a fork's source) beside a fresh one listed every used stream, ~1,000 starts computed per
                    # unit on 1,024 streams
                    continue
                rel.add(sd)
                if count[sd] - sq < len(knowers[sd]):   # (the cheaper of the two ways to the same streams)
                    at = knowing[sd]
                    looked += count[sd] - sq
                    for v in range(sq + 1, count[sd] + 1):
                        if v in at:
                            if len(at[v]) > most:   # (too many, whatever rel holds: not copied in)
                                return None
                            rel.update(at[v])
                            looked += len(at[v])
                            if len(rel) > most:
                                return None
                else:
                    rel.update(s for s in knowers[sd] if know[s][sd] > sq)
                    looked += len(knowers[sd])
                if len(rel) > most:
                    return None
            return rel
        finally:
            if stats is not None:
                stats["looked"] = stats.get("looked", 0) + looked

    def knowing_dense(x: int, q: int, most: float) -> list[int] | None:
        """The streams whose dense clock passes ``q`` at stream ``x`` (unused streams know nothing), or None if more
        than ``most`` do: the rows of the blocks whose ``block_most`` passes it (the whole column if it is two blocks
        at most), and no row at all where more than ``SCAN_ABOVE - 2`` streams were once found past ``q`` or a later
        count of ``x`` (``over[x]``: clocks only grow, so they still are; each branch of a wide fork reads its
        source, which every stream knows)."""
        if most <= SCAN_ABOVE - 2 and q <= over[x]:
            return None
        if len(block_rows) <= 2:
            found = (matrix[:used, x] > q).nonzero()[0]
        else:
            hit = (block_most[x] > q).nonzero()[0]
            if len(hit) > most:   # (each block hit holds a stream that knows it)
                found = hit
            elif len(hit) == 1:
                at = int(hit[0]) * KNOW_BLOCK
                found = (matrix[at:at + KNOW_BLOCK, x] > q).nonzero()[0] + at
            else:
                rows = block_rows[hit].reshape(-1)
                found = rows[matrix[rows, x] > q]
        if len(found) <= most:
            return found.tolist()
        if q > over[x] and most >= SCAN_ABOVE - 2:
            over[x] = q
        return None

    def indexed_candidates(rel: set[int]) -> list[int]:
        """The streams ``related`` found (``rel``, added to), the free-est of the others (ties: the lowest) and the
        lowest unused stream. On a stream that knows none of the inputs the unit waits for every one of them by
        an event: start max(free, T), the same events, so the free-est such stream is the best of them, and the
        rest need not be tried."""
        skipped = []
        while by_free and len(rel) < used:   # (rel holds used streams only: all of them, no other to find)
            f, s = by_free[0]
            if f < free[s]:
                heapq.heappop(by_free)
            elif s in rel:
                skipped.append(heapq.heappop(by_free))
            else:
                rel.add(s)
                break
        for e in skipped:
            heapq.heappush(by_free, e)
        if used < k:
            rel.add(used)
        return sorted(rel)

    def start_on(s: int, ds: Sequence[int]) -> tuple[float, float, int]:
        """(start, start with free events, events) of a unit reading ``ds`` on stream ``s``: the placement
        loop's own arithmetic (the same float operations, so the same values), for ``scanned_candidates``."""
        arrays = wide(ds)
        if arrays is not None:
            (t,), (t0,), (nev,) = wide_starts((s,), arrays)
            return t, t0, nev
        t = t0 = free[s]
        ks = know[s]
        waits: set[int] = set()
        for d in ds:
            sd, e = stream[d], end[d]
            if e > t0:
                t0 = e
            if sd == s or (ks[sd] if dense else ks.get(sd, 0)) > seq[d]:
                if e > t:
                    t = e
                continue
            if e + event_us > t:
                t = e + event_us
            waits.add(sd)
        return t, t0, len(waits)

    def scanned_candidates(ds: Sequence[int], cu: float, keys: tuple[bool, bool, bool, bool]) -> list[int] | None:
        """Streams among which each ranking the placement loop keeps (``keys``: finish, start, finish and start
        with free events) has its best, found by trying the used streams free-est first (ties: the lower), and
        the lowest unused one; None past ``SCAN_CANDIDATES`` tries.

        Why it may stop early: on stream s a unit starts no earlier than ``free[s]`` nor than any input's end
        (a start with free events is that maximum exactly), so every key of s is at least (that bound [plus its
        cost], 0 events, ``free[s]``, s), which grows along the free-est-first order. Once the next stream's
        bound exceeds every best so far, no stream after it can win. Why it is needed: when every stream knows
        a unit's inputs (a 5,000-way fork on 1,024 streams: each branch reads the fork's source, which every
        stream has waited for), ``indexed_candidates`` lists every stream, and the free-est one, which knows
        them too, already wins: k streams tried per unit, where this tries two."""
        top = max(map(end.__getitem__, ds), default=0.0)
        best: list[tuple | None] = [None] * 4
        tried: list[int] = []
        held: list[tuple[float, int]] = []

        def better(lows: tuple) -> bool:
            return any(on and (b is None or low < b) for on, b, low in zip(keys, best, lows))

        def rank(s: int, t: float, t0: float, nev: int) -> None:
            f = free[s]
            for i, key in enumerate(((t + cu, nev, f, s), (t, nev, f, s), (t0 + cu, nev, f, s), (t0, nev, f, s))):
                if keys[i] and (best[i] is None or key < best[i]):   # type: ignore[operator]
                    best[i] = key
            tried.append(s)

        if used < k:
            rank(used, *start_on(used, ds))
        found: list[int] | None = tried
        while by_free:
            f, s = by_free[0]
            if f < free[s]:   # stale
                heapq.heappop(by_free)
                continue
            low = f if f > top else top
            if not better(((low + cu, 0, f, s), (low, 0, f, s), (low + cu, 0, f, s), (low, 0, f, s))):
                break
            if len(tried) >= SCAN_CANDIDATES:
                found = None
                break
            held.append(heapq.heappop(by_free))
            rank(s, *start_on(s, ds))
        for e in held:
            heapq.heappush(by_free, e)
        return found

    while heap:
        _, u = heapq.heappop(heap)
        wide_of[0] = None   # (its writers' arrays are made for this unit's reads alone)
        # Reading views, u waits for all their writers, but only each stream's latest one matters:
        # an earlier one on that stream ends no later and is known wherever the latest is, so the
        # start time, the streams to wait for and the clock are the same as over all of them.
        ds = U.deps[u]
        if ds and ds[-1] >= n:
            ds = tuple(latest_per_stream(ds).values())
        if fixed is not None:
            cands: Sequence[int] = (fixed[u],)
        elif chain_pred is not None and chain_pred[u] >= 0:
            cands = (stream[chain_pred[u]],)
        elif min(k, used + 1) <= INDEXED_CANDIDATES:
            cands = range(min(k, used + 1))
        else:
            if len(ds) > SCAN_CANDIDATES:   # a wide join: only each stream's latest input decides (as for views)
                ds = tuple(latest_per_stream(ds).values())
            rel = related(ds, SCAN_ABOVE - 2)   # (the index lists these and two more, at most)
            found = None
            if rel is None or (SCAN_COVERED and len(rel) >= used):   # (rel holds used streams only: all of them)
                found = scanned_candidates(ds, U.cost[u], (True, twin, twin_free, twin_free_est) if eft
                                           else (False, True, False, False))
                if stats is not None:
                    stats["scored"] = stats.get("scored", 0) + (SCAN_CANDIDATES if found is None else len(found))
                if found is None and rel is None:
                    rel = related(ds)
            cands = indexed_candidates(rel) if found is None else found   # type: ignore[arg-type]
        if stats is not None:
            stats["scored"] = stats.get("scored", 0) + len(cands)
        best = None
        best_est = best_free = best_free_est = None
        track_free = twin_free or twin_free_est
        cu = U.cost[u]
        arrays = wide(ds)
        starts = {} if arrays is None else dict(zip(cands, zip(*wide_starts(cands, arrays))))
        if stats is not None and arrays is not None:
            stats["wide"] = stats.get("wide", 0) + 1
        for s in cands:
            latest: dict[int, int] = {}
            if arrays is not None:   # (``latest`` is made below, for the chosen stream only)
                t, t0, nev = starts[s]
            else:
                t = t0 = free[s]
                ks = know[s]
                for d in ds:
                    sd = stream[d]
                    if track_free and end[d] > t0:
                        t0 = end[d]
                    if sd == s or (ks[sd] if dense else ks.get(sd, 0)) > seq[d]:
                        if end[d] > t:
                            t = end[d]
                        continue
                    if end[d] + event_us > t:
                        t = end[d] + event_us
                    if sd not in latest or seq[d] > seq[latest[sd]]:
                        latest[sd] = d
                nev = len(latest)
            key = (t + cu if eft else t, nev, free[s], s)
            if best is None or key < best[0]:
                best = (key, s, t, latest, t0)
            if twin:
                kt = (t, key[1], key[2], s)
                if best_est is None or kt < best_est:
                    best_est = kt
            if twin_free:
                kt = (t0 + cu, key[1], key[2], s)
                if best_free is None or kt < best_free:
                    best_free = kt
            if twin_free_est:
                kt = (t0, key[1], key[2], s)
                if best_free_est is None or kt < best_free_est:
                    best_free_est = kt
        assert best is not None
        _, s, t, latest, t0 = best
        if arrays is not None:   # the writers the chosen stream waits for (each on its own stream)
            ks = know[s]
            latest = {stream[d]: d for d in ds if stream[d] != s and ks[stream[d]] <= seq[d]}
        if twin and best_est[3] != s:  # type: ignore[index]
            twin = False
        if twin_free and (best_free[3] != s or t0 != t):  # type: ignore[index]
            twin_free = False
        if twin_free_est and (best_free_est[3] != s or t0 != t):  # type: ignore[index]
            twin_free_est = False
        if dense:
            if latest:   # a new row: the entry-wise max, then each writer's own count (its seq + 1)
                newk = know[s].copy()
                for d in latest.values():
                    np.maximum(newk, clock[d], out=newk)
                    sd = stream[d]
                    if newk[sd] <= seq[d]:
                        newk[sd] = seq[d] + 1
                newk[s] = 0
                know[s] = matrix[s] = newk
                b = s // KNOW_BLOCK
                np.maximum(block_most[:, b], newk, out=block_most[:, b])
                if stats is not None:
                    stats["merged"] = stats.get("merged", 0) + len(latest)
            count[s] += 1
            clock[u] = know[s]
        else:
            old = know[s]
            newk = dict(old)
            raised: dict[int, int] = {}   # the streams whose count s's clock raises, with their count before
            for d in latest.values():
                cd = clock[d]
                assert cd is not None
                for x, v in cd.items():
                    w = newk.get(x, 0)
                    if v > w:
                        newk[x] = v
                        if x not in raised:
                            raised[x] = w
            count[s] += 1
            newk[s] = count[s]
            raised.pop(s, None)
            if stats is not None:
                stats["merged"] = stats.get("merged", 0) + sum(len(clock[d]) for d in latest.values())
            for x, w in raised.items():
                at = knowing[x]
                if not w:
                    knowers[x].append(s)
                elif len(at[w]) == 1:
                    del at[w]
                else:
                    del at[w][s]
                v = newk[x]
                if v in at:
                    at[v][s] = None
                else:
                    at[v] = {s: None}
            know[s] = clock[u] = newk   # never changed in place: the next unit on s copies it
        used = max(used, s + 1)
        stream[u], seq[u] = s, count[s] - 1
        if not dense and used > DENSE_STREAMS:   # (``used`` <= ``width``: stream ids lie below it)
            matrix, know, block_most = _dense_clocks(know, clock, stream, width)
            dense = True
        end[u] = t + U.cost[u]
        if end[u] > free[s] or count[s] == 1:   # an unchanged free[s] keeps its live entry: no duplicates
            heapq.heappush(by_free, (end[u], s))
        free[s] = end[u]
        order.append(u)
        done = [u]
        while done:  # a view is done once its writers are: on to its readers and the views below
            for v in U.succs[done.pop()]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    if v < n:
                        heapq.heappush(heap, (prio[v], v))
                    else:
                        last_on[v] = latest_per_stream(U.deps[v])
                        done.append(v)
    return order, stream, (twin, twin_free, twin_free_est)


def fixed_order(U: Units) -> list[int]:
    """The issue order ``list_schedule(U, k, e, fixed=...)`` returns, whatever the fixed streams: with every
    unit pinned, placement only decides start times, and which units are ready (and so the order, highest
    bottom level first) depends on the dependencies alone. ``budget.give_back`` moves each fork with it, so
    the order is made once per unit graph (``Units.fixed_order``), not once per fork."""
    n = len(U.members)
    indeg = [len(d) for d in U.deps]
    rank, succs = U.rank, U.succs
    heap = [(-rank[u], u) for u in range(n) if indeg[u] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        u = heapq.heappop(heap)[1]
        order.append(u)
        done = [u]
        while done:
            for v in succs[done.pop()]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    if v < n:
                        heapq.heappush(heap, (-rank[v], v))
                    else:
                        done.append(v)
    return order


def unit_succs(U: Units, limit: int) -> list[list[int]]:
    """Each unit's successor units: those that read what it writes, directly or through views.

    Listing a view's writers for each reader is k^2 / 2 steps on a chain of k written views, each
    read; past ``limit`` steps, a reader of a view counts only as a successor of the view's own
    producer (its nearest writer: on a chain of view ops, the one it waits for the others through).
    """
    n = len(U.members)
    preds: list[set[int]] | None = []
    steps = 0
    for u in range(n):
        have = {d for d in U.deps[u] if d < n}
        todo = [d for d in U.deps[u] if d >= n]
        seen = set(todo)
        while todo:  # up through the view nodes, to every writer
            for d in U.deps[todo.pop()]:
                steps += 1
                if d < n:
                    have.add(d)
                elif d not in seen:
                    seen.add(d)
                    todo.append(d)
        if steps > limit:
            preds = None
            break
        have.discard(u)
        preds.append(have)
    if preds is None:
        preds = [{d if d < n else U.view_unit[d - n] for d in U.deps[u]} - {u} for u in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for u in range(n):
        for d in sorted(preds[u]):
            succs[d].append(u)
    return succs


def chain_cover(U: Units, succs: Sequence[Sequence[int]]) -> list[int]:
    """A minimum path cover along direct dependencies (``succs``: each unit's successor units):
    ``pred[u]`` is u's chain predecessor or -1.

    Maximum bipartite matching (Kuhn's augmenting paths, iterative); each unit tries its successors
    in decreasing priority first, so the critical path tends to be one chain. Kuhn's search is O(units x edges)
    (on a dense layer its paths grow with the matching: 450k edges took 10 s, a complete 2 x 2,500 layer hours), so
    past ``CHAIN_COVER_WORK`` steps the units not yet tried take their first free successor, in the same order, and
    Hopcroft-Karp phases (O(edges) each) complete the matching, within ``CHAIN_COVER_WORK`` steps again; a graph
    whose search fits keeps the matching it had. Past that second bound the cover stays maximal (no chain can be
    extended by a free successor), not minimal.
    """
    n = len(U.members)
    match_succ = [-1] * n   # u -> v matched (u's chain successor)
    match_pred = [-1] * n   # v -> u
    rank = U.rank
    roots = sorted(range(n), key=lambda u: (-rank[u], u))
    # each unit's successors by decreasing priority: listed in priority order, not sorted per unit (the same lists)
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, vs in enumerate(succs):
        for v in vs:
            preds[v].append(u)
    adj: list[list[int]] = [[] for _ in range(n)]
    for v in roots:
        for u in preds[v]:
            adj[u].append(v)
    budget = CHAIN_COVER_WORK + CHAIN_COVER_EDGE_WORK * (n + sum(map(len, adj)))
    steps = 0
    tried = 0   # roots[:tried] had their search
    while tried < len(roots) and steps <= budget:
        root = roots[tried]
        tried += 1
        if not adj[root]:
            continue
        seen: set[int] = set()
        # iterative DFS for an augmenting path from root
        stack = [(root, 0)]
        path: list[tuple[int, int]] = []
        found = False
        while stack:
            steps += 1
            u, i = stack[-1]
            if i >= len(adj[u]):
                stack.pop()
                if path:
                    path.pop()
                continue
            stack[-1] = (u, i + 1)
            v = adj[u][i]
            if v in seen:
                continue
            seen.add(v)
            path.append((u, v))
            if match_pred[v] == -1:
                found = True
                break
            stack.append((match_pred[v], 0))
        if found:
            for u, v in path:
                match_succ[u] = v
                match_pred[v] = u
        # (path entries of abandoned branches were popped with their frames)
    if tried == len(roots):
        return match_pred
    for root in roots[tried:]:
        if match_succ[root] == -1:
            for v in adj[root]:
                if match_pred[v] == -1:
                    match_succ[root], match_pred[v] = v, root
                    break
    _hopcroft_karp(adj, roots, match_succ, match_pred, budget)
    return match_pred


def _hopcroft_karp(adj: list[list[int]], roots: list[int], match_succ: list[int], match_pred: list[int],
                   budget: int) -> None:
    """Grow the matching (``match_succ``/``match_pred``, in place) to a maximum one by Hopcroft-Karp phases: a
    breadth-first search from the free units (in ``roots`` order) layers the alternating paths, and depth-first
    searches along the layers (each unit's successors in ``adj`` order, from where it left off) augment along
    shortest paths. Each phase is O(units + edges); stops, the matching as it is, past ``budget`` steps."""
    n = len(adj)
    far = n + 1
    steps = 0
    while steps <= budget:
        dist = [far] * n
        queue = [u for u in roots if match_succ[u] == -1 and adj[u]]
        for u in queue:
            dist[u] = 0
        shortest = far   # the length of the shortest augmenting paths (in units): free successors lie past it
        for u in queue:   # (grows as it goes)
            du = dist[u] + 1
            if du >= shortest:
                break
            for v in adj[u]:
                w = match_pred[v]
                if w == -1:
                    shortest = du
                elif dist[w] == far:
                    dist[w] = du
                    queue.append(w)
            steps += len(adj[u]) + 1
        if shortest == far:
            return
        at = [0] * n
        for root in queue:
            if dist[root] or match_succ[root] != -1:
                continue
            stack = [root]
            path: list[int] = []   # path[j]: the successor stack[j] takes
            while stack:
                u = stack[-1]
                a, i, du = adj[u], at[u], dist[u] + 1
                while i < len(a):
                    v = a[i]
                    i += 1
                    w = match_pred[v]
                    if w == -1 if du == shortest else w >= 0 and dist[w] == du:
                        break
                else:
                    v = -1
                steps += i - at[u] + 1
                at[u] = i
                if v < 0:   # a dead end for this phase
                    dist[u] = far
                    stack.pop()
                    if path:
                        path.pop()
                    continue
                path.append(v)
                if match_pred[v] == -1:
                    for x, y in zip(stack, path):
                        match_succ[x] = y
                        match_pred[y] = x
                    break
                stack.append(match_pred[v])
            if steps > budget:
                return


def expand(U: Units, order: Sequence[int], ustream: Sequence[int]) -> tuple[list[int], list[int]]:
    """Units to node indices in issue order, with their streams renumbered by first use."""
    renum: dict[int, int] = {}
    node_order: list[int] = []
    node_streams: list[int] = []
    members = U.members
    for u in order:
        s = renum.setdefault(ustream[u], len(renum))
        ms = members[u]
        node_order.extend(ms)
        node_streams.extend([s] * len(ms))
    return node_order, node_streams


def scored_schedule(graph: Graph, U: Units, order: Sequence[int], ustream: Sequence[int],
                    cost: Sequence[float] | None = None, event_us: float = 0.0,
                    event_cache: dict[tuple[int, int], Event] | None = None) -> tuple[Schedule, float]:
    """``to_schedule`` and, given ``cost``, its ``schedule_makespan`` (else NaN), both on node indices:
    the events from ``events.wait_pairs`` (the same as ``schedule_with_events``, whose checks a schedule
    built from units in a list scheduler's order needs not), simulated without looking ids up again.
    ``event_cache``: ``Event`` objects by node-index pair, shared by schedules built one after another (a fork
    give-back has most of its 30,000 events in common with the others, and making an ``Event`` costs a
    microsecond; they are immutable, so sharing them changes nothing)."""
    node_order, node_streams = expand(U, order, ustream)
    ids = [nd.id for nd in graph.nodes]
    sched_order = tuple(ids[m] for m in node_order)
    if not node_streams or max(node_streams) == 0:
        # one stream: nothing to synchronise (the unit order is topological)
        sched, waits = Schedule(sched_order, (0,) * len(node_order), ()), []
    elif cost is not None:
        # the events and the makespan from one pass (``Replay`` times nodes as ``simulate_indices`` does, the same
        # float operations on the same waits: the same makespan, bit for bit), not a second pass to simulate
        replay = Replay(graph, node_order, node_streams, cost, event_us, record=True)
        waits = replay.pairs
        if event_cache is None:
            evs = tuple(Event(ids[a], ids[b]) for a, b in waits)
        else:
            made = []
            for ab in waits:
                e = event_cache.get(ab)
                if e is None:
                    e = event_cache[ab] = Event(ids[ab[0]], ids[ab[1]])
                made.append(e)
            evs = tuple(made)
        return Schedule(sched_order, tuple(node_streams), evs), replay.makespan
    else:
        waits = wait_pairs(graph, node_order, node_streams)
        sched = Schedule(sched_order, tuple(node_streams), tuple(Event(ids[a], ids[b]) for a, b in waits))
    if cost is None:
        return sched, math.nan
    _, end = simulate_indices(node_order, node_streams, waits, cost, event_us)
    return sched, max(end, default=0.0)


def to_schedule(graph: Graph, U: Units, order: Sequence[int], ustream: Sequence[int]) -> Schedule:
    """Expand units to nodes, renumber streams by first use, and add the fewest events."""
    return scored_schedule(graph, U, order, ustream)[0]


def schedule_makespan(graph: Graph, schedule: Schedule, cost: Sequence[float], event_us: float) -> float:
    idx = graph.node_index
    order = [idx[n] for n in schedule.order]
    waits = [(idx[e.after], idx[e.before]) for e in schedule.events]
    _, end = simulate_indices(order, schedule.streams, waits, cost, event_us)
    return max(end, default=0.0)


@dataclass(frozen=True)
class Candidate:
    name: str
    schedule: Schedule
    makespan_us: float


@dataclass(frozen=True)
class Optimized:
    """The chosen schedule with its simulated makespan and every candidate considered."""

    schedule: Schedule
    makespan_us: float
    serial_us: float
    chosen: str
    candidates: tuple[tuple[str, int, int, float], ...]  # (name, streams, events, makespan)
    pool: tuple[Candidate, ...]  # every distinct candidate schedule, best first
    units: Units
    cost: tuple[float, ...]
    event_us: float
    #: the most streams a candidate could use: ``max_streams``, at most the units (0: not known)
    max_streams: int = 0
    #: whether the candidates are the shrunk set of more than ``LARGE_UNITS`` units (``max_streams`` alone)
    large: bool = False


def check_max_streams(max_streams: Any) -> int:
    """``max_streams`` (the streams a schedule may use), or ScheduleError: an integer in 1..``MAX_STREAMS``, the bound
    of plan(streams=...) and of a plan file: a wider graph on more streams got stream ids a Schedule may not hold
    (plan(graph, schedule=graph_optimize(graph, 2000)) refused a node's stream)."""
    from ..errors import ScheduleError

    if isinstance(max_streams, bool) or not isinstance(max_streams, int) or not 1 <= max_streams <= MAX_STREAMS:
        raise ScheduleError(f"max_streams must be an integer in 1..{MAX_STREAMS}, not {_short(max_streams)}")
    return max_streams


@named_options
@paused
def optimize(graph: Graph, max_streams: int = 4, *, cost_model: CostModelLike | None = None) -> Optimized:
    """Every candidate schedule for ``graph`` on at most ``max_streams`` streams (1 .. ``MAX_STREAMS``,
    1024, as ``plan(streams=...)``); the best kept."""
    check_graph(graph, "graph_optimize")
    check_max_streams(max_streams)
    model = check_cost_model(cost_model)
    event_us = event_latency(model)
    cost = node_costs(graph, model)
    U = build_units(graph, cost)
    n = len(U.members)
    serial_order = list(range(n))
    cands: list[tuple[str, list[int], list[int]]] = [("serial", serial_order, [0] * n)]
    if max_streams > 1 and n > 1:
        large = n > LARGE_UNITS
        top = min(max_streams, n)  # more streams than units cannot help
        ks = [top] if large else sorted({k for k in range(2, min(top, 8) + 1)}
                                        | {k for k in (12, 16, 24, 32, 48, 64) if k < top} | {top})
        modes = ("eft",) if large else ("eft", "est")
        escale = (1.0,) if large else (1.0, 0.0)
        # A run on k streams that left one unused is the run on any more streams too: it never had all k
        # in use, so every unit chose among the same streams (``min(k, used + 1)`` of them, or the same
        # index) as with more. Its repeats are duplicates, which the scoring below drops, so they are not run.
        unsaturated: dict[str, tuple[list[int], list[int], tuple[bool, bool, bool]]] = {}

        def run(family: str, k: int, **kw) -> tuple[list[int], list[int], tuple[bool, bool, bool]]:
            if family in unsaturated:
                return unsaturated[family]
            o, s, same = list_schedule_twin(U, k, **kw)
            if max(s, default=0) < k - 1:
                unsaturated[family] = (o, s, same)
            return o, s, same

        for k in ks:
            repeats: dict[str, tuple[list[int], list[int]]] = {}  # family -> the run that is its run at k
            for mode in modes:
                for f in escale:
                    name = f"list-{mode}{'' if f else '-free'}"
                    if name in repeats:
                        o, s = repeats[name]
                    else:
                        o, s, (est, free_eft, free_est) = run(name, k, event_us=event_us * f, mode=mode,
                                                              twin=len(modes) > 1)
                        if mode == "eft":
                            twins = [(est, "list-est" if f else "list-est-free")]
                            if f:
                                twins += [(free_eft, "list-eft-free"), (free_est, "list-est-free")]
                            for same, family in twins:
                                if same:
                                    repeats.setdefault(family, (o, s))
                    cands.append((f"{name}-k{k}", o, s))
            o, s, _ = run("listed", k, event_us=event_us, listed=True, twin=False)
            cands.append((f"listed-k{k}", o, s))
        if n <= CHAIN_COVER_UNITS:
            pred = chain_cover(U, unit_succs(U, CHAIN_COVER_STEPS * (len(U.deps) + sum(map(len, U.deps)))))
            for k in ks:
                o, s, _ = run("chains", k, event_us=event_us, mode="eft", chain_pred=pred, twin=False)
                cands.append((f"chains-k{k}", o, s))
    seen: set[tuple] = set()
    scored: list[tuple[tuple, Candidate]] = []
    for i, (name, o, s) in enumerate(cands):
        # the schedule's (order, streams) follow from the units' order and streams renumbered by first
        # use, one to one: duplicates are dropped before their events are found
        renum: dict[int, int] = {}
        key = (tuple(o), tuple([renum.setdefault(s[u], len(renum)) for u in o]))
        if key in seen:
            continue
        seen.add(key)
        sched, ms = scored_schedule(graph, U, o, s, cost, event_us)
        rank_key = (round(ms, 6), len(sched.events), sched.num_streams, i)
        scored.append((rank_key, Candidate(name, sched, ms)))
    scored.sort(key=lambda x: x[0])
    best = scored[0][1]
    return Optimized(
        schedule=best.schedule, makespan_us=best.makespan_us, serial_us=total_us(cost), chosen=best.name,
        candidates=tuple((c.name, c.schedule.num_streams, len(c.schedule.events), round(c.makespan_us, 3))
                         for _, c in scored),
        pool=tuple(c for _, c in scored), units=U, cost=tuple(cost), event_us=event_us,
        max_streams=min(max_streams, max(n, 1)), large=n > LARGE_UNITS,
    )
