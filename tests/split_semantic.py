"""Runs a split plan (several devices, COPY nodes, weight replicas) and compares it with the ONE-device run.

``tests/semantic.py`` checks that a plan computes what *its own* graph computes serially. For a device split
that graph is the split graph, which already has the COPY nodes: a copy taken from the wrong tensor, a reader
renamed to the wrong copy or a replica of the wrong weight would compute the same wrong thing in both runs.
This module compares against the *original* graph instead: every original node must read, in every
interleaving the split plan's streams and events allow, the bytes it reads when the original graph runs in
its listed order with every root in its own buffer (``semantic.reference``), and every output must end with
the same bytes. A ``COPY`` node copies its input's bytes to its output; a node's fingerprint is made from its
original id, its output ids and the digests of what it read, so the split run computes the one-device bits
exactly when every read sees the one-device bytes. The bytes ``semantic.analyse`` excludes (writes the
contract leaves unordered) are excluded here too, by the original node's input.
"""

from __future__ import annotations

import numpy as np
from semantic import (
    Analysis,
    Deadlock,
    Outcome,
    _digest,
    _pattern,
    analyse,
    differences,
    drive,
    plan_memory,
    policies,
    reference,
)

from memplan import Graph, Plan
from memplan.ops import COPY_OP


def _original(split: Graph, t: int) -> str:
    """The original graph's id of split tensor ``t``: a copy's (``copy_of``) or a replica's (``replica_of``)."""
    attrs = split.tensors[t].attrs
    return attrs.get("copy_of", attrs.get("replica_of", split.tensors[t].id))


def _transfer(node) -> bool:
    """A COPY the split made (between two devices): it moves bytes. A COPY within one device (the graph's own,
    or an earlier split's in a split graph split again) is one of the original graph's nodes, computed as such."""
    a = node.attrs
    return node.op == COPY_OP and "dst_device" in a and a.get("src_device") != a["dst_device"]


class _SplitMachine:
    """Memory of one split run (one arena per device at the plan's offsets, a buffer per written weight)."""

    def __init__(self, an: Analysis, split: Graph, plan: Plan):
        self.an, self.g, self.s = an, an.graph, split
        self.offsets, self.device, self.arenas = plan_memory(plan)
        self.weights = {r: np.zeros(t.size, dtype=np.uint8) for r, t in enumerate(split.tensors)
                        if split.is_root(r) and t.kind == "weight"}
        self.reads: dict[tuple[str, str, str], bytes] = {}
        self.seen: dict[int, list] = {}

    def place(self, t: int) -> tuple[np.ndarray, int]:
        s = self.s
        r = s.root[t]
        if s.tensors[r].kind == "weight":
            return self.weights[r], s.root_offset[t]
        tid = s.tensors[t].id
        return self.arenas[self.device.get(tid, 0)], self.offsets[tid]

    def host_inputs(self) -> None:
        """The host writes every input and every weight (a replica gets its original's bytes)."""
        s = self.s
        for t, tensor in enumerate(s.tensors):
            if s.is_root(t) and tensor.kind in ("input", "weight"):
                buf, off = self.place(t)
                buf[off:off + tensor.size] = _pattern(_digest("host", _original(s, t)), tensor.size)

    def _raw(self, t: int) -> np.ndarray:
        buf, off = self.place(t)
        return buf[off:off + self.s.tensors[t].size].copy()

    def read(self, n: int, i: int) -> bytes:
        """What split node ``n`` reads as its input ``i``, as the original node's digest of that read."""
        g, s = self.g, self.s
        n0 = g.node_index[s.nodes[n].id]
        t0 = g.node_inputs[n0][i]
        if g.root[t0] in self.an.constant:
            return _digest("weight", g.tensors[g.root[t0]].id, str(g.root_offset[t0]), str(g.tensors[t0].size))
        data = self._raw(s.node_inputs[n][i])
        for lo, hi in self.an.read_mask[n0, i]:
            data[lo:hi] = 0
        return _digest(data.tobytes())

    def start(self, n: int) -> None:
        node = self.s.nodes[n]
        if _transfer(node):
            self.seen[n] = [self._raw(self.s.node_inputs[n][0])]
        else:
            self.seen[n] = [self.read(n, i) for i in range(len(node.inputs))]

    def finish(self, n: int) -> None:
        s, node = self.s, self.s.nodes[n]
        got = self.seen.pop(n)
        if _transfer(node):
            buf, off = self.place(s.node_outputs[n][0])
            buf[off:off + len(got[0])] = got[0]
            return
        n0 = self.g.node_index[node.id]
        names = self.g.nodes[n0].inputs
        for i in range(len(node.inputs)):
            self.reads[node.id, names[i] + f"#{i}", "before"] = got[i]
        for o, oi in zip(node.outputs, s.node_outputs[n], strict=True):
            buf, off = self.place(oi)
            size = s.tensors[oi].size
            buf[off:off + size] = _pattern(_digest(node.id, o, *got), size)
        g = self.g   # which reads are re-read after the writes: the original node's (``semantic.Machine``)
        overwritten = {g.root[g.tensor_index[i]] for _, i in g.nodes[n0].inplace}
        for i in range(len(node.inputs)):
            if g.root[g.node_inputs[n0][i]] not in overwritten:
                self.reads[node.id, names[i] + f"#{i}", "after"] = self.read(n, i)

    def outcome(self) -> Outcome:
        outs = {}
        for t, mask in self.an.out_mask.items():
            tid = self.g.tensors[t].id
            data = self._raw(self.s.tensor_index[tid])
            for lo, hi in mask:
                data[lo:hi] = 0
            outs[tid] = _digest(data.tobytes())
        return Outcome(self.reads, outs)


def run_split(an: Analysis, split: Graph, plan: Plan, policy, seed: int = 0) -> Outcome:
    """One run of the split ``plan`` in the interleaving ``policy`` picks (``semantic.run_plan``'s model)."""
    return drive(split, plan, _SplitMachine(an, split, plan), policy, seed)


def check_split(graph: Graph, split: Graph, plan: Plan, *, randoms: int = 4, holds: int | None = 12,
                seed: int = 0) -> list[str]:
    """The discrepancies between the split ``plan`` (of ``split``, made from ``graph``) in many interleavings
    and ``graph`` run serially on one device; empty when every interleaving computes the one-device bits."""
    an = analyse(graph)
    ref = reference(an)
    for name, pol in policies(plan, randoms, holds, seed):
        try:
            got = run_split(an, split, plan, pol, seed)
        except Deadlock as exc:
            return [f"{name}: {exc}"]
        found = differences(ref, got)
        if set(got.reads) != set(ref.reads):
            found.append(f"reads recorded differ: {sorted(set(ref.reads) ^ set(got.reads))[:3]}")
        if found:
            return [f"{name}: {d}" for d in found]
    return []
