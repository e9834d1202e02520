"""``python -m runtime.tools.compare_launches``: a one-GPU plan and a split plan of one graph, launch by launch.

Why (issue 16): on two GPUs the split 8B step gave the one-GPU logits bit for bit at batch 1 but not at
batch 32. Every kernel here is deterministic (no float atomics; every reduction in a fixed order), so a
launch computes the same bits from the same input bytes whatever its addresses: the two runs can only
differ where the two programs (``runtime.step.program``, what the executors issue) launch different
kernels, launch configurations or scalar arguments for a node — a fusion group that fuses in one plan
and runs node by node in the other, a different GEMM path, a variant picked from a size or an overlap.
This tool lists every launch of both programs with what it reads and writes, by tensor, and diffs them.

Both programs are built on the CPU over fake addresses laid out as the executors lay them out (one arena
per device, one allocation per weight root, scratch buffers and group counters), with the same
``num_sms`` for every device. To compare the launches of two plans it puts them in a canonical form:

- pointer arguments become the tensors the node (or its fusion group) names at that address, split-graph
  names mapped back to the original's (a ``COPY`` output, ``attrs.copy_of``, and a weight replica,
  ``attrs.replica_of``, are their original);
- ``COPY`` nodes (device-to-device copies) are left out, and so are staging copies (``copy_u32``, or a byte copy
  where words do not fit, into a scratch buffer: a bit-for-bit copy read instead of the planned bytes), their readers reading the
  original tensor instead;
- a buffer that one launch of a node writes and only later launches of the same node read (a GEMM's
  product inside a fused group: the planned tensor or a scratch buffer) is named by its position.

``--emulate`` also runs both plans in the CPU emulator (``runtime.emulate``, NaN-poisoned arenas) and
compares the outputs bit for bit; use a reduced config for that (``--layers``, ``--vocab``). Exit status 1
where the launches or (with ``--emulate``) the outputs differ. The
emulator models each kernel's arithmetic, not the GPU's summation order, so only the launch diff tells
whether the GPUs will agree bit for bit. Pure CPU: no pycuda.
"""

from __future__ import annotations

from dataclasses import dataclass

import memplan
from memplan import Graph, Plan

from ..kernels import Launch
from ..kernels.ops import MEMCPY, WRITES
from ..step import Program, program_at, unfusable_groups
from ..tool_args import ToolParser, count_arg, results_json

_BASE = 1 << 32


@dataclass(frozen=True)
class LaunchRow:
    """One launch of a program: at ``node``'s step, on ``device``/``stream``; ``reads``/``writes``: (name,
    bytes) per pointer argument (a tensor id of the original graph, ``scratch`` or ``tmpK``)."""

    node: str
    device: int
    stream: int
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    scalars: tuple
    reads: tuple[tuple[str, int], ...]
    writes: tuple[tuple[str, int], ...]

    def key(self) -> tuple:
        """What decides the bits it computes: kernel, launch shape, scalars, operands (not addresses)."""
        return (self.kernel, self.grid, self.block, self.scalars, self.reads, self.writes)

    def text(self) -> str:
        rd = ", ".join(f"{t}[{n}]" for t, n in self.reads)
        wr = ", ".join(f"{t}[{n}]" for t, n in self.writes)
        return f"{self.kernel} grid={self.grid} block={self.block} scalars={self.scalars} reads {rd} -> writes {wr}"


class _Space:
    """Fake device addresses, allocated as the executors allocate (page-aligned, a gap between)."""

    def __init__(self) -> None:
        self.next = _BASE
        self.allocs: list[tuple[int, int, str]] = []

    def alloc(self, nbytes: int, label: str) -> int:
        a = self.next
        self.allocs.append((a, max(nbytes, 1), label))
        self.next += (max(nbytes, 1) + 4095) // 4096 * 4096 + 4096
        return a

    def find(self, addr: int) -> tuple[int, int, str] | None:
        for a in self.allocs:
            if a[0] <= addr < a[0] + a[1]:
                return a
        return None


def _original(graph: Graph, tid: str) -> str:
    """A split graph's copy or replica of a tensor -> the original tensor's id."""
    seen = set()
    while tid not in seen:
        seen.add(tid)
        attrs = graph.tensor(tid).attrs
        nxt = attrs.get("copy_of") or attrs.get("replica_of")
        if not nxt:
            break
        tid = nxt
    return tid


def build_program(graph: Graph, plan: Plan, *, num_sms: int = 132,
                  wgmma: bool = False) -> tuple[Program, _Space, dict[str, int]]:
    """The program the executors issue for (graph, plan), over fake addresses (``_Space``), on devices of
    ``num_sms`` SMs that run the wgmma build or not (``KernelLibrary.wgmma``: Hopper)."""
    space = _Space()
    prog, addr = program_at(graph, plan, space.alloc, num_sms=num_sms, wgmma=wgmma)
    return prog, space, addr


@dataclass(frozen=True)
class Table:
    """The launches of one program in the comparable form, and what the form left out."""

    rows: tuple[LaunchRow, ...]
    copies: int        # COPY nodes' device-to-device copies
    staging: int       # copies into a scratch buffer (read instead of the planned bytes)
    fused_groups: int
    unfusable: tuple[str, ...]


def launch_table(graph: Graph, plan: Plan, *, num_sms: int = 132, wgmma: bool = False) -> Table:
    """Every launch of the program of (graph, plan), in plan order, its operands named as the module doc
    says. Operand names, per node (a fusion group: all its members): a value read before the node wrote
    that address is named by the group's input tensors at that address (the original graph's names); a
    value the node writes and a later launch of the node reads is ``tmpK`` (K: its order in the node);
    any other written value is named by the group's outputs at that address that something outside the
    group reads (or the graph outputs), or ``(unread)`` if there are none. A staging copy passes its source's name on to the scratch buffer."""
    from memplan.ops import COPY_OP

    prog, space, addr = build_program(graph, plan, num_sms=num_sms, wgmma=wgmma)
    at: dict[int, list[str]] = {}
    for tid, a in addr.items():
        at.setdefault(a, []).append(tid)
    members: dict[str, list[str]] = {}
    for m, last in prog.finished_by.items():
        members.setdefault(last, []).append(m)
    readers: dict[int, set[str]] = {}
    for ni, ins in enumerate(graph.node_inputs):
        for ti in ins:
            readers.setdefault(graph.root[ti], set()).add(graph.nodes[ni].id)
    rows: list[LaunchRow] = []
    copies = staging = 0
    for s in prog.steps:
        lns = prog.launches.get(s.node, ())
        if graph.node(s.node).op == COPY_OP:
            copies += len(lns)
            continue
        if not lns:
            continue
        group = set(members.get(s.node, [s.node]))
        nodes = [graph.node(n) for n in group]
        produced = {t for n in nodes for t in n.outputs}
        ext_in = {t for n in nodes for t in n.inputs if t not in produced}
        needed = {t for t in produced
                  if graph.tensor(t).kind == "output"
                  or readers.get(graph.root[graph.tensor_index[t]], set()) - group}

        def names(a: int, pool: set[str]) -> tuple[str, int] | None:
            ts = [t for t in at.get(a, ()) if t in pool]
            if ts:
                return "|".join(sorted({_original(graph, t) for t in ts})), max(graph.tensor(t).size for t in ts)
            # a pointer inside a tensor (a node split over several launches, ``ops._chunks``): the tensor and the
            # offset, not the arena offset, which differs between the plans and made equal launches differ
            inside = sorted((t, a - addr[t]) for t in pool if addr[t] < a < addr[t] + graph.tensor(t).size)
            if not inside:
                return None
            return ("|".join(sorted({f"{_original(graph, t)}+{off}" for t, off in inside})),
                    max(graph.tensor(t).size - off for t, off in inside))

        vals: dict[int, object] = {}       # address -> the value there, as this node left it so far
        pending: list[tuple[list, list, Launch]] = []
        for ln in lns:
            wpos = set(WRITES.get(ln.kernel, ()))
            reads, writes, scalars = [], [], []
            for i, a in enumerate(ln.args):
                hit = space.find(a) if isinstance(a, int) and a >= _BASE else None
                if hit is None:
                    scalars.append(a if not isinstance(a, int) or a < _BASE else "?")
                elif hit[2].startswith("counters"):
                    scalars.append(f"counter+{a - hit[0]}")
                elif i in wpos:
                    writes.append(a)
                else:
                    reads.append(vals.get(a) or names(a, ext_in) or names(a, produced | ext_in)
                                 or (f"{hit[2]}+{a - hit[0]}", hit[1]))
            if ln.kernel in ("copy_u32", MEMCPY) and writes and space.find(writes[0])[2].startswith("scratch"):
                vals[writes[0]] = reads[0]
                staging += 1
                continue
            wvals = []
            for a in writes:
                v = ["w", a, None]                 # resolved below: a temporary, or where it lands
                vals[a] = v
                wvals.append(v)
            pending.append((reads, wvals, ln, tuple(scalars)))
        tmp = 0
        for reads, _w, _ln, _sc in pending:
            for k, r in enumerate(reads):
                if isinstance(r, list):
                    if r[2] is None:
                        r[2], tmp = f"tmp{tmp}", tmp + 1
                    reads[k] = (r[2], 0)
        for reads, wvals, ln, scalars in pending:
            wr = []
            for k, v in enumerate(wvals):
                if v[2] is None and any(u[1] == v[1] for u in wvals[k + 1:]):
                    wr.append(("(unread)", 0))   # a later operand of the launch writes the same address: that one
                    continue                     # is what readers see (a dying output planned under a live one)
                if v[2] is None:
                    v[2], size = names(v[1], needed) or ("(unread)", 0)   # nothing reads it: no effect
                    wr.append((v[2], size))
                else:
                    wr.append((v[2], 0))
            rows.append(LaunchRow(s.node, s.device, s.stream, ln.kernel, tuple(ln.grid), tuple(ln.block), scalars,
                                  tuple(reads), tuple(wr)))
    return Table(tuple(rows), copies, staging, prog.fused_groups, tuple(sorted(unfusable_groups(graph, plan))))


@dataclass(frozen=True)
class Comparison:
    """Two programs of one graph compared: the nodes whose canonical launches differ (id, a's, b's)."""

    a: Table
    b: Table
    differing: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]

    @property
    def same(self) -> bool:
        return not self.differing


def compare_plans(graph_a: Graph, plan_a: Plan, graph_b: Graph, plan_b: Plan, *, num_sms: int = 132,
                  wgmma: bool = False) -> Comparison:
    """Diff the canonical launches of two plans (``graph_b`` may be ``graph_a``'s device split)."""
    ta = launch_table(graph_a, plan_a, num_sms=num_sms, wgmma=wgmma)
    tb = launch_table(graph_b, plan_b, num_sms=num_sms, wgmma=wgmma)
    per_a: dict[str, list[LaunchRow]] = {}
    per_b: dict[str, list[LaunchRow]] = {}
    for r in ta.rows:
        per_a.setdefault(r.node, []).append(r)
    for r in tb.rows:
        per_b.setdefault(r.node, []).append(r)
    differing = []
    for n in graph_a.nodes:
        la, lb = per_a.get(n.id, []), per_b.get(n.id, [])
        if [r.key() for r in la] != [r.key() for r in lb]:
            differing.append((n.id, tuple(r.text() for r in la), tuple(r.text() for r in lb)))
    return Comparison(ta, tb, tuple(differing))


def one_and_split(name: str, batch: int, devices: int, fuse: str, *, streams=None, f16_acts: bool | None = None,
                  **overrides):
    """The graph of a config (``f16_acts`` as ``build_graph`` takes it), its one-GPU serial plan (as
    ``runtime.bench_multi_gpu`` plans it) and its split over ``devices`` (``memplan.plan_devices``):
    (graph, single plan, split, split plan)."""
    from ..models import llama as L

    cfg = L.config(name, batch=batch, **overrides)
    g = L.build_graph(cfg, fuse, f16_acts)
    split, multi = memplan.plan_devices(g, devices, streams=streams)
    return cfg, g, memplan.plan(g), split, multi


def emulate_pair(cfg, g: Graph, single: Plan, split, multi: Plan, *, seed: int = 1, order_seed: int | None = None):
    """Both plans in the CPU emulator (NaN-poisoned arenas, same weights and inputs): outputs bit for bit."""
    import numpy as np

    from ..bits import same_bits
    from ..emulate import emulate
    from ..models import llama as L

    w, inp = L.make_weights(g, cfg, seed=seed), L.make_inputs(cfg, seed=seed)
    a = emulate(g, single, w, inp)[0]
    b = emulate(split.graph, multi, w, inp, seed=order_seed)[0]
    out = {}
    for t in a:
        x, y = a[t], b[t]
        out[t] = {"bitwise_equal": same_bits(x, y), "finite": bool(np.isfinite(x).all()),
                  "max_abs_diff": float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0}
    return out


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.compare_launches",
                                 description="the launches of a one-GPU plan and of its split over N devices, diffed")
    ap.add_argument("--config", default="8b", help="Llama config: tiny, 1b or 8b (default 8b)")
    ap.add_argument("--batches", default="1,16,32", help="comma-separated rows per step (default 1,16,32)")
    ap.add_argument("--devices", type=count_arg, default=2, help="devices the split plan runs on (default 2)")
    ap.add_argument("--fuse", default="runtime,norms",
                    help="comma-separated fusion modes, each compared: runtime, norms (default runtime,norms)")
    ap.add_argument("--streams", default=None, help="per-device streams of the split plan (default: serial)")
    ap.add_argument("--layers", type=count_arg, default=None, help="override the config's layers")
    ap.add_argument("--vocab", type=count_arg, default=None, help="override the config's vocabulary")
    ap.add_argument("--emulate", action="store_true", help="also emulate both plans on the CPU and compare outputs")
    ap.add_argument("--list", action="store_true", help="print every differing node's launches")
    args = ap.parse_args(argv)
    over = {k: v for k, v in (("layers", args.layers), ("vocab", args.vocab)) if v is not None}
    from memplan.planfile import MAX_STREAMS

    from ..tool_args import ToolArgError, at_least, at_most, fuse_list, int_list, llama_graphs, one_name, tool_error

    try:   # every option checked first: a bad one is one line and exit 2, not a traceback or a silent run
        streams = args.streams
        if streams not in (None, "auto"):
            if "," in streams:
                raise ToolArgError(f"--streams {streams!r}: one number, or auto")
            (streams,) = int_list(streams, "--streams", hi=MAX_STREAMS)
        one_name(args.config, "--config")
        batches, fuses = int_list(args.batches, "--batches"), fuse_list(args.fuse)
        at_least(args.devices, "--devices", 1)
        at_most(args.devices, "--devices", MAX_STREAMS)
        for k, v in over.items():
            at_least(v, f"--{k}", 1)
        llama_graphs([args.config], batches, fuses, **over)   # (--layers 10**12, --vocab 10**15: memplan's refusals)
    except ToolArgError as exc:
        return tool_error("compare_launches", exc)
    report = []
    for fuse in fuses:
        for batch in batches:
            # what only the split can tell (--devices 1000: more stages than the graph has) is one line, and so is
            # what only the launches can (--vocab 10**11: a product whose grid is past CUDA's limits, a raw
            # KernelError traceback from compare_plans, as from the emulator)
            try:
                cfg, g, single, split, multi = one_and_split(args.config, batch, args.devices, fuse, streams=streams,
                                                             **over)
                c = compare_plans(g, single, split.graph, multi)
                emulated = emulate_pair(cfg, g, single, split, multi) if args.emulate else None
            except memplan.MemplanError as exc:
                return tool_error("compare_launches", exc)
            r = {"config": args.config, **over, "batch": batch, "fuse": fuse, "devices": args.devices,
                 "same_launches": c.same, "differing_nodes": [d[0] for d in c.differing],
                 "launches": [len(c.a.rows), len(c.b.rows)], "fused_groups": [c.a.fused_groups, c.b.fused_groups],
                 "unfusable_groups": [list(c.a.unfusable), list(c.b.unfusable)],
                 "staging_copies": [c.a.staging, c.b.staging], "device_copies": [c.a.copies, c.b.copies]}
            if emulated is not None:
                r["emulated"] = emulated
            print(results_json(r), flush=True)
            if args.list:
                for nid, la, lb in c.differing:
                    print(f"  {nid}:")
                    for x in la:
                        print(f"    1 GPU : {x}")
                    for x in lb:
                        print(f"    split : {x}")
            report.append(r)
    return 0 if all(_agree(r) for r in report) else 1


def _agree(row: dict) -> bool:
    """Whether a report row found the two plans alike: the same launches and, with ``--emulate``, every output
    bit for bit (outputs that differ were printed as ``bitwise_equal: false`` with exit status 0 when the
    launches were the same: a split step computing other bits than its launch diff says passed unseen)."""
    return row["same_launches"] and all(o["bitwise_equal"] for o in row.get("emulated", {}).values())


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "compare_launches"))
