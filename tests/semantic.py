"""A small interpreter that runs a plan and checks it computes what the graph computes serially.

The library's other checks (``memplan.verify``, ``tests/oracle.py``) test the contract's rules. This module
tests the product claim end to end: running a plan -- any interleaving its streams and events allow, in one
arena per device at the plan's offsets -- gives every node the same input bytes as running the graph in its
listed order with every root tensor in its own buffer.

Execution model
    * Memory: one byte array of ``arena_bytes`` per device (``device_arena_bytes`` for multi-device plans),
      filled with junk; every weight root in its own buffer. The host writes every ``input`` before the run.
    * A node runs in two steps, so that two unordered nodes really overlap: *start* reads every input (the
      root's bytes at the tensor's own plan offset; views included), *finish* writes every output, view
      outputs too, with a fingerprint (pseudo-random bytes seeded by a hash of the node id, the output id
      and everything the node read) over the whole byte range, then reads its inputs again. The second read
      catches a node clobbering its own input; it is skipped for an input whose root is the root of one the
      node names in ``inplace`` (rule 3's exception lets the output cover any bytes of that root). Finishing is what a stream's next node and an event wait on.
    * Interleavings: each stream runs its nodes in issue order; a node starts when its stream is idle and
      every event it waits on was recorded (``after`` finished). A wait on an event recorded later in
      issue order is a no-op, as in CUDA. Policies: seeded random choices, atomic or overlapping; a fixed
      stream priority (every permutation for up to 3 streams), run atomically or with every startable node
      started before anything finishes; the stream furthest behind / furthest ahead.
    * Reference: the listed order, one buffer per root, atomic nodes.
    * ``fused_groups=True`` (for plans made with that option): a group may run as one kernel, so the last
      member also re-reads every member's inputs, which must have lasted to the group's end; and an event
      recorded after a member is recorded after the kernel, so its waiter starts once the last member is done
      (it started mid-group, and a view it wrote into a root the group still read was taken for the plan's race).

Known gap, left open as a contract question: rule 3's in-place exception is root-wide, so a node with
``inplace {out: in}`` may get ``out`` over bytes of ``in``'s root that it reads through *another* input (the
root itself, or a sibling view); the model reads before it writes, and the re-read skips that root.

What is compared: every node's reads (before and after its writes) and the final bytes of every ``output``
tensor. **Excluded** are the bytes whose value the contract leaves open, which the run may legally see
differently from the serial order: a byte is compared only when every other node that writes it is ordered
with the reader by the orders *every* valid plan has -- the data dependencies along view chains (rule 2)
and fusion groups (rule 1) -- and the writers before the reader are ordered among themselves. So a node
reading a root, or a sibling view, of bytes that another node writes through its own view is not compared at
those bytes, nor is a byte that two unordered writers both write (a view writer that does not read the tensor
it writes into races with that tensor's producer): "A write through one view does not order readers of
another", docs/format.md. The graphs are not restricted; ``Analysis.masked_fraction`` reports how much
is excluded, so a test can make sure the check is not vacuous. Reads of weights nobody writes are compared
by name (they cannot change and are never in the arena).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from memplan import Graph, Plan
from memplan.planfile import plan_from_dict

HOST = -1   # the virtual writer of inputs and weights, before every node


def _digest(*parts: bytes | str | np.ndarray) -> bytes:
    """A fingerprint of ``parts``, each length-prefixed. A part may be a contiguous 1-D uint8 array (a tensor's
    bytes in place): it is hashed as its bytes are, without the two copies (``copy``, ``tobytes``) of every read."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update((b.nbytes if isinstance(b, np.ndarray) else len(b)).to_bytes(8, "little"))
        h.update(b)
    return h.digest()


def _masked(data: np.ndarray, mask: list[tuple[int, int]]) -> np.ndarray:
    """``data`` (a view of a buffer) with the ``mask`` ranges zeroed, in a copy only where there is a mask."""
    if not mask:
        return data
    data = data.copy()
    for lo, hi in mask:
        data[lo:hi] = 0
    return data


def _generate(seed: bytes, size: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "little")))
    return np.frombuffer(rng.bytes(size), dtype=np.uint8)


#: (seed, size) -> pattern for patterns up to 256 KiB: at most 1024 of them (256 MiB at worst; one check of the
#: bundled moe graph, 49 tensors, holds a few MiB), more than one check of any graph the tests plan writes
_cached = functools.lru_cache(maxsize=1024)(_generate)
#: (seed, size) -> pattern for patterns over 256 KiB up to 1 MiB: at most 128 of them (128 MiB), emptied at the end of
#: each ``check``; one check of llama-1b-decode writes 100 such (36 host roots, 64 outputs of 513 KiB) in every run,
#: where making them again in each of its 21 runs was 40% of test_semantic's llama-1b time
_cached_mid = functools.lru_cache(maxsize=128)(_generate)


def _pattern(seed: bytes, size: int) -> np.ndarray:
    """``size`` pseudo-random bytes determined by ``seed`` (a fingerprint that fills a whole range, so a
    misplaced or partial write shows at any byte). Small ones are cached: ``check`` replays one plan under
    many interleavings, and every correct one writes the same (seed, size) patterns again (building the
    generator was a third of test_semantic's time); the array is read-only, so no caller can change a cached
    one. Up to 1 MiB they are cached until the check ends; larger ones (llama-1b's 131 MB tensors) are made
    each time, to keep the cache's memory small."""
    if size <= 262144:
        return _cached(seed, size)
    return _cached_mid(seed, size) if size <= 1 << 20 else _generate(seed, size)


@dataclass
class Analysis:
    """What the contract fixes about a graph's serial run: per read and per output, the byte segments
    (relative to the tensor) that are excluded from the comparison; see the module docstring."""

    graph: Graph
    #: node index -> bitset of the nodes every valid plan orders before it
    before: list[int] = field(default_factory=list)
    #: root tensor index -> [(writer node or HOST, lo, hi)] in root coordinates
    writes: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    #: (node index, input position) -> masked [(lo, hi)] relative to the input tensor
    read_mask: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)
    #: output tensor index -> masked [(lo, hi)] relative to the tensor
    out_mask: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: weight roots no node writes: their reads are compared by name
    constant: set[int] = field(default_factory=set)
    compared_bytes: int = 0
    masked_bytes: int = 0

    @property
    def masked_fraction(self) -> float:
        total = self.compared_bytes + self.masked_bytes
        return self.masked_bytes / total if total else 0.0


def analyse(graph: Graph) -> Analysis:
    g = graph
    a = Analysis(g)
    preds: list[set[int]] = [set() for _ in g.nodes]
    for n in range(len(g.nodes)):
        for t in g.node_inputs[n]:
            preds[n].update(w for w in g.writers(t) if w != n)
    for members in g.groups().values():
        for x, y in itertools.pairwise(members):
            preds[y].add(x)
    for n in range(len(g.nodes)):
        bits = 0
        for p in preds[n]:
            bits |= a.before[p] | (1 << p)
        a.before.append(bits)
    for r, t in enumerate(g.tensors):
        if g.is_root(r) and t.kind in ("input", "weight"):
            a.writes.setdefault(r, []).append((HOST, 0, t.size))
    for n in range(len(g.nodes)):
        for o in g.node_outputs[n]:
            lo = g.root_offset[o]
            a.writes.setdefault(g.root[o], []).append((n, lo, lo + g.tensors[o].size))
    for r, t in enumerate(g.tensors):
        if g.is_root(r) and t.kind == "weight" and all(w == HOST for w, _, _ in a.writes[r]):
            a.constant.add(r)

    def ordered(x: int, y: int) -> bool:   # x before y in every valid plan
        return x == HOST or (y != HOST and (a.before[y] >> x) & 1 == 1)

    def masked(t: int, ok: Callable[[list[int]], bool]) -> list[tuple[int, int]]:
        """The segments of ``t`` whose set of writers ``ok`` rejects."""
        base, size = g.root_offset[t], g.tensors[t].size
        ws = [(w, max(lo, base), min(hi, base + size)) for w, lo, hi in a.writes.get(g.root[t], [])]
        ws = [x for x in ws if x[1] < x[2]]
        cuts = sorted({base, base + size, *(lo for _, lo, _ in ws), *(hi for _, _, hi in ws)})
        out: list[tuple[int, int]] = []
        for lo, hi in itertools.pairwise(cuts):
            if not ok([w for w, wlo, whi in ws if wlo <= lo and hi <= whi]):
                if out and out[-1][1] == lo - base:
                    out[-1] = (out[-1][0], hi - base)
                else:
                    out.append((lo - base, hi - base))
        return out

    def count(t: int, mask: list[tuple[int, int]]) -> None:
        m = sum(hi - lo for lo, hi in mask)
        a.masked_bytes += m
        a.compared_bytes += g.tensors[t].size - m

    def chain(ws: list[int]) -> bool:   # totally ordered by ``ordered``
        return all(ordered(x, y) or ordered(y, x) for x, y in itertools.combinations(ws, 2))

    for n in range(len(g.nodes)):
        for i, t in enumerate(g.node_inputs[n]):
            if g.root[t] in a.constant:
                continue

            def read_ok(ws: list[int], n: int = n) -> bool:
                others = [w for w in ws if w != n]
                seen = [w for w in others if ordered(w, n)]
                return bool(seen) and chain(seen) and all(w in seen or ordered(n, w) for w in others)
            a.read_mask[n, i] = masked(t, read_ok)
            count(t, a.read_mask[n, i])
    for t, tensor in enumerate(g.tensors):
        if tensor.kind == "output" and g.root[t] not in a.constant:
            a.out_mask[t] = masked(t, lambda ws: bool(ws) and chain(ws))
            count(t, a.out_mask[t])
    return a


@dataclass
class Outcome:
    """What a run observed: digests of every read and of every output's final bytes."""

    reads: dict[tuple[str, str, str], bytes]   # (node, input, "before"/"after") -> digest
    outputs: dict[str, bytes]


class Machine:
    """Memory and node execution for one run: ``place(t)`` gives tensor ``t``'s buffer and offset."""

    def __init__(self, an: Analysis, place: Callable[[int], tuple[np.ndarray, int]], fused: bool = False):
        self.an, self.g, self.place = an, an.graph, place
        #: with ``fused`` (plans made with ``fused_groups=True``), the last member of a fusion group
        #: re-reads every member's inputs: the group may run as one kernel reading any of them until its end
        self.group_end: dict[int, list[int]] = {}
        if fused:
            for members in an.graph.groups().values():
                self.group_end[members[-1]] = list(members)
        self.reads: dict[tuple[str, str, str], bytes] = {}
        self.seen: dict[int, list[bytes]] = {}

    def host_inputs(self) -> None:
        for t, tensor in enumerate(self.g.tensors):
            if self.g.is_root(t) and tensor.kind in ("input", "weight") and t not in self.an.constant:
                buf, off = self.place(t)
                buf[off:off + tensor.size] = _pattern(_digest("host", tensor.id), tensor.size)

    def read(self, n: int, i: int) -> bytes:
        t = self.g.node_inputs[n][i]
        tensor = self.g.tensors[t]
        if self.g.root[t] in self.an.constant:
            return _digest("weight", self.g.tensors[self.g.root[t]].id, str(self.g.root_offset[t]), str(tensor.size))
        buf, off = self.place(t)
        return _digest(_masked(buf[off:off + tensor.size], self.an.read_mask[n, i]))

    def start(self, n: int) -> None:
        self.seen[n] = [self.read(n, i) for i in range(len(self.g.node_inputs[n]))]

    def finish(self, n: int) -> None:
        node = self.g.nodes[n]
        got = self.seen.pop(n)
        for i, t in enumerate(node.inputs):
            self.reads[node.id, t + f"#{i}", "before"] = got[i]
        for o, oi in zip(node.outputs, self.g.node_outputs[n], strict=True):
            size = self.g.tensors[oi].size
            buf, off = self.place(oi)
            buf[off:off + size] = _pattern(_digest(node.id, o, *got), size)
        # the in-place exception is root-wide (rule 3): the output may cover any bytes of the named input's
        # root, so reads of that root through the node's other inputs are not re-checked either
        for m in [n] + self.group_end.get(n, []):
            member = self.g.nodes[m]
            overwritten = {self.g.root[self.g.tensor_index[i]] for _, i in member.inplace}
            for i, t in enumerate(member.inputs):
                if self.g.root[self.g.node_inputs[m][i]] not in overwritten:
                    self.reads[member.id, t + f"#{i}", "after" if m == n else "at its group's end"] = self.read(m, i)

    def outcome(self) -> Outcome:
        outs = {}
        for t, mask in self.an.out_mask.items():
            tensor = self.g.tensors[t]
            buf, off = self.place(t)
            outs[tensor.id] = _digest(_masked(buf[off:off + tensor.size], mask))
        return Outcome(self.reads, outs)


def reference(an: Analysis, fused: bool = False) -> Outcome:
    """The serial run: listed order, every root in its own buffer."""
    g = an.graph
    bufs = {r: np.frombuffer(_pattern(_digest("junk", t.id), t.size), dtype=np.uint8).copy()
            for r, t in enumerate(g.tensors) if g.is_root(r) and r not in an.constant}

    def place(t: int) -> tuple[np.ndarray, int]:
        return bufs[g.root[t]], g.root_offset[t]
    m = Machine(an, place, fused)
    m.host_inputs()
    for n in range(len(g.nodes)):
        m.start(n)
        m.finish(n)
    return m.outcome()


# -- interleavings -----------------------------------------------------------------------------------------

@dataclass
class State:
    """A run in progress: per stream its nodes (issue order), how many started, and the one running."""

    queues: list[list[int]]
    started: list[int]
    running: list[int | None]
    finished: set[int]
    waits: dict[int, list[int]]

    def can_start(self, s: int) -> bool:
        q, k = self.queues[s], self.started[s]
        return self.running[s] is None and k < len(q) and all(a in self.finished for a in self.waits.get(q[k], ()))

    def startable(self) -> list[int]:
        return [s for s in range(len(self.queues)) if self.can_start(s)]

    def busy(self) -> list[int]:
        return [s for s in range(len(self.queues)) if self.running[s] is not None]


#: a policy picks the next step: ("start", stream), ("finish", stream) or ("run", stream) (start + finish)
Policy = Callable[[State, random.Random], tuple[str, int]]


def random_policy(atomic: bool) -> Policy:
    def pick(st: State, rnd: random.Random) -> tuple[str, int]:
        steps = [("run" if atomic else "start", s) for s in st.startable()] + [("finish", s) for s in st.busy()]
        return rnd.choice(steps)
    return pick


def priority_policy(prio: list[int], overlap: bool) -> Policy:
    """Always serve the first stream of ``prio`` that can move; with ``overlap`` start everything that can
    start before finishing anything (the most concurrency the plan allows)."""
    def pick(st: State, rnd: random.Random) -> tuple[str, int]:
        can = set(st.startable())
        for s in prio:
            if s in can:
                return ("start" if overlap else "run", s)
        busy = set(st.busy())
        return ("finish", next(s for s in prio if s in busy))
    return pick


def progress_policy(ahead: bool) -> Policy:
    """Run the stream that has run the fewest (``ahead=False``: furthest behind) or the most nodes."""
    def pick(st: State, rnd: random.Random) -> tuple[str, int]:
        can = st.startable()
        key = (lambda s: (-st.started[s], s)) if ahead else (lambda s: (st.started[s], s))
        return ("run", min(can, key=key))
    return pick


def hold_policy(s: int, k: int, running: bool) -> Policy:
    """Run stream ``s`` up to its ``k``-th node (``running``: with that node started, its reads done, but
    not finished), then every other stream as far as it can go, then the rest: the window in which a
    node of another stream that is not ordered after ``s``'s first ``k`` nodes, nor before the next one,
    can clobber bytes that ``s`` has written and still reads (or read and still writes)."""
    released = [False]

    def pick(st: State, rnd: random.Random) -> tuple[str, int]:
        if not released[0]:
            can = st.startable()
            if st.started[s] < k + running and s in can:
                return ("start" if running and st.started[s] == k else "run", s)
            others = [x for x in can if x != s]
            if others:
                return ("run", others[0])
            released[0] = True
        busy = st.busy()
        if busy:
            return ("finish", busy[0])
        return ("run", st.startable()[0])
    return pick


def policies(plan: Plan, randoms: int = 4, holds: int | None = None, seed: int = 0) -> list[tuple[str, Policy]]:
    """The interleavings ``check`` tries: progress and priority orders, every hold point (or ``holds`` of
    them, drawn with ``seed``) and ``randoms`` seeded random runs."""
    streams = plan.streams
    out: list[tuple[str, Policy]] = [("behind", progress_policy(False)), ("ahead", progress_policy(True))]
    # (every permutation only for up to 3 streams: listing them first took 20 GB at 12 streams)
    perms = list(itertools.permutations(range(streams))) if streams <= 3 else []
    if streams > 3:
        rnd = random.Random(streams)
        perms = [tuple(range(streams)), tuple(reversed(range(streams)))] + [
            tuple(rnd.sample(range(streams), streams)) for _ in range(4)]
    for p in perms:
        out.append((f"prio{list(p)}", priority_policy(list(p), False)))
        out.append((f"prio{list(p)}-overlap", priority_policy(list(p), True)))
    per_stream = [0] * streams
    for _, st in plan.order:
        per_stream[st] += 1
    points = [(st, k, running) for st in range(streams) if per_stream[st] for k in range(per_stream[st] + 1)
              for running in (False, True) if not (running and k == per_stream[st])]
    if holds is not None and len(points) > holds:
        points = random.Random(seed).sample(points, holds)
    for st, k, running in points:
        out.append((f"hold(stream {st} at node {k}{', running' if running else ''})", hold_policy(st, k, running)))
    for k in range(randoms):
        out.append((f"random{k}", random_policy(atomic=k % 2 == 0)))
    return out


def plan_memory(plan: Plan, junk: str = "") -> tuple[dict[str, int], dict[str, int], list[np.ndarray]]:
    """A run's arena memory: (offset by tensor id, device by tensor id, one junk-filled arena per device);
    ``junk`` salts the fill, so runs with other salts start from other bytes."""
    device = dict(zip((t for t, _, _ in plan.tensors), plan.tensor_devices, strict=True)) if plan.devices > 1 else {}
    sizes = list(plan.device_arena_bytes) if plan.devices > 1 else [plan.arena_bytes]
    arenas = [np.frombuffer(_pattern(_digest("arena", str(d), junk), s), dtype=np.uint8).copy()
              for d, s in enumerate(sizes)]
    return plan.offsets(), device, arenas


def run_plan(an: Analysis, plan: Plan, policy: Policy, seed: int = 0, fused: bool = False, junk: str = "") -> Outcome:
    """One run of ``plan`` in the interleaving ``policy`` picks, from arenas filled with ``junk``'s bytes."""
    g = an.graph
    offsets, device, arenas = plan_memory(plan, junk)
    weights = {r: np.zeros(t.size, dtype=np.uint8) for r, t in enumerate(g.tensors)
               if g.is_root(r) and t.kind == "weight" and r not in an.constant}

    def place(t: int) -> tuple[np.ndarray, int]:
        r = g.root[t]
        if g.tensors[r].kind == "weight":
            return weights[r], g.root_offset[t]
        tid = g.tensors[t].id
        return arenas[device.get(tid, 0)], offsets[tid]
    m = Machine(an, place, fused)
    # fused: a group runs as one kernel, so an event recorded after any member is recorded after the kernel,
    # when its last member is done (a reader on another stream never sees the group half run)
    kernel_end = {m: ms[-1] for ms in g.groups().values() for m in ms} if fused else {}
    return drive(g, plan, m, policy, seed, kernel_end)


def drive(g: Graph, plan: Plan, m, policy: Policy, seed: int = 0, kernel_end: dict[int, int] | None = None) -> Outcome:
    """Run machine ``m`` (``host_inputs``, ``start``, ``finish``, ``outcome`` by node index of ``g``) through
    ``plan``'s streams and events in the interleaving ``policy`` picks; ``kernel_end``: an event recorded after
    a node is recorded after that node instead (a fused group's last member)."""
    kernel_end = kernel_end or {}
    m.host_inputs()
    pos = {nid: k for k, (nid, _) in enumerate(plan.order)}
    queues: list[list[int]] = [[] for _ in range(plan.streams)]
    for nid, s in plan.order:
        queues[s].append(g.node_index[nid])
    waits: dict[int, list[int]] = {}
    for a, b in plan.events:
        if pos[a] < pos[b]:   # a wait on an event recorded later is a no-op
            ai = g.node_index[a]
            waits.setdefault(g.node_index[b], []).append(kernel_end.get(ai, ai))
    st = State(queues, [0] * plan.streams, [None] * plan.streams, set(), waits)
    rnd = random.Random(seed)
    total = len(plan.order)
    while len(st.finished) < total:
        if not st.startable() and not st.busy():
            raise Deadlock(f"plan deadlocks after {len(st.finished)} of {total} nodes")
        kind, s = policy(st, rnd)
        if kind in ("start", "run"):
            n = st.queues[s][st.started[s]]
            st.started[s] += 1
            st.running[s] = n
            m.start(n)
        if kind in ("finish", "run"):
            n = st.running[s]
            assert n is not None
            m.finish(n)
            st.running[s] = None
            st.finished.add(n)
    return m.outcome()


class Deadlock(Exception):
    pass


def differences(ref: Outcome, got: Outcome, limit: int = 5) -> list[str]:
    out = []
    for key, d in ref.reads.items():
        if got.reads.get(key) != d:
            out.append(f"node {key[0]!r} read {key[1]!r} ({key[2]} its writes) differently")
    for tid, d in ref.outputs.items():
        if got.outputs.get(tid) != d:
            out.append(f"output {tid!r} ends with different bytes")
    return out[:limit]


def check(graph: Graph, plan: Plan | dict, *, randoms: int = 4, holds: int | None = None, seed: int = 0,
          analysis: Analysis | None = None, fused_groups: bool = False) -> list[str]:
    """Run ``plan`` under many interleavings and return the discrepancies with the serial run (empty: the
    plan computed what the graph computes, in every interleaving tried). ``fused_groups``: the plan was made
    for fused groups (each may run as one kernel), so every member's inputs must last to the group's end."""
    if isinstance(plan, dict):
        plan = plan_from_dict(plan)
    an = analysis or analyse(graph)
    try:
        ref = reference(an, fused_groups)
        found: list[str] = []
        for name, pol in policies(plan, randoms, holds, seed):
            try:   # each interleaving from other junk: a read before its write of a 1-byte tensor matched the one
                got = run_plan(an, plan, pol, seed, fused_groups, junk=name)   # fill in every run 1 time in 256
            except Deadlock as exc:
                return [f"{name}: {exc}"]
            found += [f"{name}: {d}" for d in differences(ref, got)]
            if found:
                break
        return found
    finally:
        _cached_mid.cache_clear()


def iter_plans(graph: Graph, options: Iterable[dict]) -> Iterable[tuple[dict, Plan]]:
    import memplan
    for opts in options:
        yield opts, memplan.plan(graph, **opts)
