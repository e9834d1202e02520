"""Scale: plan time per pipeline phase and peak memory, on 10k..1M-node graphs and very wide nodes.

Graph families (one case per size, each in a process of its own):

- ``--nodes N ...``: ``memplan.generators.fanout_join`` DAGs of N nodes (about N tensors);
- ``--wide K ...``: one node with K outputs, each read by its own node, whose K results one node
  joins (2K + 2 tensors, K of them live at once at the split and K again at the join);
- ``--chain K ...``: a chain of K view ops, each producing a view of the view before it and reading it
  (an ONNX Reshape/Identity chain imported as views), every 4th view read by a node of its own;
- ``--chains C ...``: C independent chains of ten nodes each from one input (10 C nodes): with
  ``--streams 1024`` every chain may take a stream of its own, the shape that made many-stream planning
  cost every stream per buffer pair and per unit (docs/benchmarks.md, "Many streams").
- ``--random N ...``: random DAGs of N nodes, each reading 2-8 of the 64 tensors made last (1% of reads reach
  back up to 1,024), the shape of a network with local skip connections (``random_dag``);
- ``--layered N ...``: layered random DAGs of N nodes, layers of ``LAYER_WIDTH`` (fewer below 20 layers' worth),
  each node reading 1-3 outputs of the layer before (``layered_graph``): with ``--streams 1024`` nearly every unit
  is a fork of its own and every clock knows hundreds of streams (``events.Replay``'s dense clocks);
- ``--experts E ...``: a router fanning out to E independent three-node experts whose results are summed one
  by one (``memplan.examples.moe``, 4 E nodes): many small branches, every expert's result live until its sum;
- ``--io N ...``: N nodes, each reading a graph input of its own and writing a graph output of its own (2 N
  tensors, every input live from the start and every output to the end);
- ``--transformer L ...``: decoders of L layers of 20 nodes (``transformer_graph``: residual chain, five in-place
  pairs and two views a layer), the shape of a long unrolled decode;
- ``--moe-blocks B ...``: B mixture-of-experts blocks of 256 experts (``moe_graph``): fan-out and fan-in of 256;
- ``--inplace K ...``: K in-place pairs (``inplace_graph``): one node overwriting K inputs in place
  (``--inplace-shape one``), four such nodes of K/4 pairs (``spread``) or one node overwriting K views of
  one root (``views``), the shapes whose size planner and in-place checks were quadratic in K.

Each graph is planned under each ``--mode``: ``serial`` (``memplan plan``), ``auto``
(``memplan plan --streams auto``: ``graph_optimize`` on up to 8 streams, or ``--streams N``, then, as ``plan()`` does,
the serial plan too for the report's serial arena) and ``natural`` (the generator's own 4-stream
schedule; fan-out/join only). Phases: ``optimize`` (graph_optimize), ``hb`` (vector clocks),
``life`` (lifetimes), ``bound`` (the buffer problem with its lower bounds), ``solve`` (the solver,
default ``auto``: greedy and size), ``verify`` (the independent verifier), ``serial`` (auto mode:
the whole serial plan ``plan()`` adds); ``total`` is their sum. Each case runs in a fresh
subprocess so its peak RSS (``ru_maxrss``) is its own. Times are one core, wall clock.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

PHASES = ("optimize", "hb", "life", "bound", "solve", "verify", "serial")
#: ``--nodes`` when no graph family is named: a selection (``--inplace 8000``) runs only what it names
DEFAULT_NODES = (10_000, 100_000, 1_000_000)
#: the graph families besides ``--nodes``, by their options' dests
#: nodes per unit of the families counted in units (``argtypes.at_most_nodes`` caps them at ``MAX_NODES`` nodes):
#: a ten-node chain, an expert of ``examples.moe`` (with its share of the router and sum), a transformer layer, a MoE block
CHAIN_NODES, EXPERT_NODES, LAYER_NODES, MOE_BLOCK_NODES = 10, 4, 20, 770
FAMILIES = ("wide", "chain", "chains", "random", "layered", "experts", "io", "inplace", "transformer", "moe_blocks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .. import argtypes
    from ..solvers import SOLVER_NAMES

    nodes = argtypes.at_most(argtypes.MAX_NODES, "nodes")
    p.add_argument("--nodes", type=nodes, nargs="*", default=None,
                   help="fan-out/join graphs of these many nodes (each size at most once; default "
                        f"{' '.join(map(str, DEFAULT_NODES))} when no other graph family is given)")
    p.add_argument("--wide", type=argtypes.at_most(argtypes.MAX_NODES, "outputs (a node each)"), nargs="*", default=[],
                   help="graphs with one node of this many outputs (e.g. --wide 5000 40000; each at most once)")
    p.add_argument("--chain", type=nodes, nargs="*", default=[],
                   help="chains of this many view ops, each view read (e.g. --chain 10000 100000; each at most once)")
    p.add_argument("--chains", type=argtypes.at_most_nodes(CHAIN_NODES, "chains"), nargs="*", default=[],
                   help="graphs of this many independent ten-node chains (e.g. --chains 1000 "
                        "--mode auto --streams 1024; each at most once)")
    p.add_argument("--random", type=nodes, nargs="*", default=[],
                   help="random DAGs of this many nodes, 2-8 inputs each (e.g. --random 10000 100000; each at most once)")
    p.add_argument("--layered", type=nodes, nargs="*", default=[],
                   help="layered random DAGs of this many nodes, 1-3 reads of the layer before each (e.g. --layered "
                        "20000 --mode auto --streams 1024; each at most once)")
    p.add_argument("--experts", type=argtypes.at_most_nodes(EXPERT_NODES, "experts"), nargs="*", default=[],
                   help="MoE graphs of this many three-node experts (e.g. --experts 2500 25000; each at most once)")
    p.add_argument("--io", type=argtypes.at_most(argtypes.MAX_NODES, "triples (a node each)"), nargs="*", default=[],
                   help="graphs of this many input -> node -> output triples (e.g. --io 10000; each at most once)")
    p.add_argument("--inplace", type=argtypes.at_most(argtypes.MAX_NODES, "in-place pairs"), nargs="*", default=[],
                   help="graphs with this many in-place pairs (e.g. --inplace 8000 50000 --mode serial "
                        "--solver size; each at most once)")
    p.add_argument("--transformer", type=argtypes.at_most_nodes(LAYER_NODES, "layers"), nargs="*", default=[],
                   help="transformer decoders of this many 20-node layers (e.g. --transformer 500 2500 10000: 10k, "
                        "50k and 200k nodes; each at most once)")
    p.add_argument("--moe-blocks", type=argtypes.at_most_nodes(MOE_BLOCK_NODES, "blocks"), nargs="*", default=[],
                   help="MoE graphs of this many blocks of 256 experts, 770 nodes a block (e.g. --moe-blocks 13 65 "
                        "260; each at most once)")
    p.add_argument("--inplace-shape", nargs="+", default=["one"], choices=INPLACE_SHAPES,
                   help="shapes of --inplace, each at most once: one node (default), four nodes (spread), "
                        "one node over views of one root (views)")
    p.add_argument("--streams", type=argtypes.streams, default="auto",
                   help="the stream cap of --mode auto (default: auto, as memplan plan: up to 8)")
    p.add_argument("--mode", nargs="+", default=["serial", "auto"], choices=("serial", "auto", "natural"),
                   help="schedules, each at most once: serial, graph_optimize --streams auto, the generator's own 4 streams "
                        "(default serial auto)")
    p.add_argument("--solver", default="auto", choices=SOLVER_NAMES,
                   help="offset solver (default: auto, as memplan plan)")


def wide_graph(k: int, *, seed: int = 0):
    """One SPLIT node with ``k`` outputs, one OP node per output, one CONCAT of all ``k`` results."""
    from ..generators import SIZES
    from ..graph import GraphBuilder

    rng = random.Random(seed)
    b = GraphBuilder(f"wide-{k}")
    b.input("x", 4096)
    outs = [b.intermediate(f"o{i}", rng.choice(SIZES)) for i in range(k)]
    b.node("split", "SPLIT", ["x"], outs, cost=10.0)
    res = []
    for i in range(k):
        res.append(b.intermediate(f"p{i}", rng.choice(SIZES)))
        b.node(f"c{i}", "OP", [outs[i]], res[-1], cost=float(rng.randint(2, 40)))
    b.node("join", "CONCAT", res, b.output("y", 4096), cost=10.0)
    return b.build()


def chain_graph(k: int):
    """``k`` RESHAPE nodes, each producing a view of the view before it (of ``r`` for the first) and
    reading it; a UNARY reader of every 4th view and of the last: every reader depends on every view
    op above it (contract rule 2), the shape whose dependencies were quadratic to list."""
    from ..graph import GraphBuilder

    b = GraphBuilder(f"chain-{k}")
    b.input("x", 4096)
    b.node("p", "UNARY", ["x"], b.intermediate("r", 1 << 20), cost=10.0)
    prev = "r"
    for i in range(k):
        v = b.view(f"v{i}", prev, 1 << 20)
        b.node(f"n{i}", "RESHAPE", [prev], v, cost=1.0)
        if i % 4 == 0:
            b.node(f"c{i}", "UNARY", [v], b.output(f"y{i}", 256), cost=5.0)
        prev = v
    b.node("c", "UNARY", [prev], b.output("y", 4096), cost=10.0)
    return b.build()


INPLACE_SHAPES = ("one", "spread", "views")


def inplace_graph(k: int, shape: str = "one", *, seed: int = 0):
    """``k`` in-place pairs: a SPLIT node makes ``k`` tensors, UPDATE nodes write output ``o{i}`` in place
    over input ``a{i}`` (a ``_foreach_add_``), a CONCAT joins the outputs. ``shape``: ``one`` (one UPDATE
    node with all ``k`` pairs), ``spread`` (four UPDATE nodes of ``k / 4`` pairs each, one after another),
    ``views`` (one UPDATE node over ``k`` views of one big SPLIT result: every pair shares that root). The
    shape whose in-place placement in the size planner was quadratic (docs/benchmarks.md)."""
    from ..generators import SIZES
    from ..graph import GraphBuilder

    if shape not in INPLACE_SHAPES:
        raise ValueError(f"inplace_graph: shape must be one of {INPLACE_SHAPES}, not {shape!r}")
    rng = random.Random(seed)
    b = GraphBuilder(f"inplace-{shape}-{k}")
    b.input("x", 4096)
    sizes = [rng.choice(SIZES) for _ in range(k)]
    if shape == "views":
        root = b.intermediate("a", sum(sizes))
        ins, at = [], 0
        for i, size in enumerate(sizes):
            ins.append(b.view(f"a{i}", root, size, at))
            at += size
        b.node("split", "SPLIT", ["x"], [root], cost=10.0)
    else:
        ins = [b.intermediate(f"a{i}", size) for i, size in enumerate(sizes)]
        b.node("split", "SPLIT", ["x"], ins, cost=10.0)
    outs = [b.intermediate(f"o{i}", size) for i, size in enumerate(sizes)]
    parts = 4 if shape == "spread" else 1
    for p in range(parts):
        lo, hi = k * p // parts, k * (p + 1) // parts
        b.node(f"update{p}", "UPDATE", ins[lo:hi], outs[lo:hi], cost=float(hi - lo),
               inplace={outs[i]: ins[i] for i in range(lo, hi)})
    b.node("join", "CONCAT", outs, b.output("y", 4096), cost=10.0)
    return b.build()


def chains_graph(c: int):
    """``c`` chains ``x -> n{i}_0 -> ... -> n{i}_9`` of 4 KiB tensors, the last of each an output."""
    from ..graph import GraphBuilder

    b = GraphBuilder(f"chains-{c}")
    b.input("x", 1024)
    for i in range(c):
        prev = "x"
        for j in range(10):
            t = b.output(f"c{i}_{j}", 4096) if j == 9 else b.intermediate(f"c{i}_{j}", 4096)
            b.node(f"n{i}_{j}", "ADD", [prev], t, cost=1.0)
            prev = t
    return b.build()


def random_dag(n: int, *, window: int = 64, seed: int = 0):
    """``n`` nodes (four inputs), node ``i`` reading 2-8 distinct tensors among the ``window`` made last, 1% of
    reads among the last 1,024 (local skip connections: few tensors live at once, as in a real network)."""
    from ..generators import SIZES
    from ..graph import GraphBuilder

    rng = random.Random(seed)
    b = GraphBuilder(f"random-{n}")
    made = [b.input(f"x{i}", 4096) for i in range(4)]
    for i in range(n - 1):
        ins = set()
        for _ in range(rng.randint(2, 8)):
            lo = max(0, len(made) - (1024 if rng.random() < 0.01 else window))
            ins.add(made[rng.randrange(lo, len(made))])
        made.append(b.intermediate(f"t{i}", rng.choice(SIZES)))
        b.node(f"n{i}", "OP", sorted(ins), made[-1], cost=float(rng.randint(2, 40)))
    b.node("out", "OUT", [made[-1]], b.output("y", 4096), cost=2.0)
    return b.build()


#: ``layered_graph``'s layer width (narrower where ``n`` makes fewer than 20 layers of it)
LAYER_WIDTH = 1000


def layered_graph(n: int, *, seed: int = 0):
    """``n`` nodes in layers of ``min(LAYER_WIDTH, ceil(n / 20))`` (the first reading graph inputs), each node reading
    1-3 random outputs of the layer before; the last layer's outputs are graph outputs."""
    from ..generators import SIZES
    from ..graph import GraphBuilder

    rng = random.Random(seed)
    width = max(1, min(LAYER_WIDTH, -(-n // 20)))
    b = GraphBuilder(f"layered-{n}")
    prev = [b.input(f"x{i}", rng.choice(SIZES)) for i in range(min(width, n))]
    made = 0
    while made < n:
        cur = []
        last = made + width >= n
        for _ in range(min(width, n - made)):
            ins = sorted({rng.choice(prev) for _ in range(rng.randint(1, 3))})
            t = (b.output if last else b.intermediate)(f"t{made}", rng.choice(SIZES))
            b.node(f"n{made}", "OP", ins, t, cost=float(rng.randint(2, 40)))
            cur.append(t)
            made += 1
        prev = cur
    return b.build()


def io_graph(n: int, *, seed: int = 0):
    """``n`` nodes ``x{i} -> n{i} -> y{i}``, each input and output a graph input and output of its own."""
    from ..generators import SIZES
    from ..graph import GraphBuilder

    rng = random.Random(seed)
    b = GraphBuilder(f"io-{n}")
    for i in range(n):
        x = b.input(f"x{i}", rng.choice(SIZES))
        b.node(f"n{i}", "OP", [x], b.output(f"y{i}", rng.choice(SIZES)), cost=float(rng.randint(2, 40)))
    return b.build()


def transformer_graph(layers: int, *, seed: int = 0):
    """``layers`` decoder layers of 20 nodes each (20 ``layers`` + 1 nodes): norm, q/k/v projections, reshape views
    of q and k, rope and softmax in place, attention, the output projection and its residual add in place, norm,
    gate/up, SiLU and the gate's product in place, down and its residual add in place; weights outside the arena.
    The shape of a long unrolled decode (a 70B model's 80 layers and more): a long chain with residuals, five
    in-place pairs and two views a layer."""
    from ..graph import GraphBuilder

    rng = random.Random(seed)
    b = GraphBuilder(f"transformer-{layers}")
    h = 4096 * rng.choice((1, 2))
    x = b.input("x", h)
    k = 0

    def t(size: int) -> str:
        nonlocal k
        k += 1
        return b.intermediate(f"t{k}", size)

    def n(op: str, ins: list[str], out: str, **kw) -> None:
        nonlocal k
        k += 1
        b.node(f"n{k}", op, ins, out, cost=float(rng.randint(2, 40)), **kw)

    for layer in range(layers):
        wq, wk, wv, wo, wg, wu, wd = (b.weight(f"w{layer}_{w}", h * 64) for w in "qkvogud")
        nrm = t(h)
        n("RMS_NORM", [x], nrm)
        q, kk, v = t(h), t(h // 4), t(h // 4)
        n("MUL_MAT", [wq, nrm], q)
        n("MUL_MAT", [wk, nrm], kk)
        n("MUL_MAT", [wv, nrm], v)
        q3, k3 = b.view(f"v{layer}q", q, h), b.view(f"v{layer}k", kk, h // 4)
        n("RESHAPE", [q], q3)
        n("RESHAPE", [kk], k3)
        qr, kr = t(h), t(h // 4)
        n("ROPE", [q3], qr, inplace={qr: q3})
        n("ROPE", [k3], kr, inplace={kr: k3})
        scores = rng.choice((4096, 16384, 65536, 262144))
        sc, sm = t(scores), t(scores)
        n("MUL_MAT", [kr, qr], sc)
        n("SOFT_MAX", [sc], sm, inplace={sm: sc})
        at, o, r1 = t(h), t(h), t(h)
        n("MUL_MAT", [v, sm], at)
        n("MUL_MAT", [wo, at], o)
        n("ADD", [o, x], r1, inplace={r1: o})
        nrm2, g, u, si, m, d, x2 = t(h), t(4 * h), t(4 * h), t(4 * h), t(4 * h), t(h), t(h)
        n("RMS_NORM", [r1], nrm2)
        n("MUL_MAT", [wg, nrm2], g)
        n("MUL_MAT", [wu, nrm2], u)
        n("SILU", [g], si, inplace={si: g})
        n("MUL", [si, u], m, inplace={m: si})
        n("MUL_MAT", [wd, m], d)
        n("ADD", [d, r1], x2, inplace={x2: d})
        x = x2
    n("OUT", [x], b.output("y", h))
    return b.build()


def moe_graph(blocks: int, experts: int = 256, *, seed: int = 0):
    """``blocks`` mixture-of-experts layers of ``experts`` experts each (3 ``experts`` + 2 nodes a block): a router,
    per expert up / SiLU in place / down, one node summing all the experts' results (fan-out and fan-in of
    ``experts``)."""
    from ..generators import SIZES
    from ..graph import GraphBuilder

    rng = random.Random(seed)
    b = GraphBuilder(f"moe-{blocks}x{experts}")
    x = b.input("x", 4096)
    for blk in range(blocks):
        h = b.intermediate(f"h{blk}", 4096)
        b.node(f"r{blk}", "MUL_MAT", [x], h, cost=5.0)
        outs = []
        for e in range(experts):
            size = rng.choice(SIZES)
            u, a = b.intermediate(f"u{blk}_{e}", size), b.intermediate(f"a{blk}_{e}", size)
            d = b.intermediate(f"d{blk}_{e}", 4096)
            b.node(f"up{blk}_{e}", "MUL_MAT", [h], u, cost=20.0)
            b.node(f"act{blk}_{e}", "SILU", [u], a, cost=3.0, inplace={a: u})
            b.node(f"dn{blk}_{e}", "MUL_MAT", [a], d, cost=20.0)
            outs.append(d)
        x = b.intermediate(f"s{blk}", 4096) if blk < blocks - 1 else b.output("y", 4096)
        b.node(f"sum{blk}", "SUM", outs, x, cost=10.0)
    return b.build()


def _plan_phases(graph, schedule, solver: str, row: dict, check: bool = True) -> None:
    """``plan.solve_schedule`` (the one pipeline ``plan()`` runs) with its phases, then the verifier."""
    from ..plan import solve_schedule
    from ..verify import verify

    phases: dict[str, float] = {}
    plan = solve_schedule(graph, schedule, solver, phases=phases)
    for name, key in (("hb", "happens_before"), ("life", "lifetimes"), ("bound", "problem"),
                      ("solve", "solve"), ("solve", "assemble")):
        row[f"{name}_s"] = row.get(f"{name}_s", 0.0) + phases.get(key, 0.0)
    row.setdefault("buffers", sum(1 for _, off, _ in plan.tensors if off is not None))
    row.setdefault("arena", plan.arena_bytes)
    row.setdefault("lower_bound", plan.lower_bound_bytes)
    row.setdefault("streams", schedule.num_streams)
    row.setdefault("events", len(schedule.events))
    if check:
        t = time.perf_counter()
        verify(graph, plan)
        row["verify_s"] = time.perf_counter() - t


def measure(kind: str, n: int, mode: str, solver: str = "auto", streams: int | str = "auto") -> dict:
    """Build one graph and plan it phase by phase, in this process (``streams``: the cap of mode auto)."""
    from ..generators import fanout_join
    from ..optimize.candidates import AUTO_MAX_STREAMS
    from ..optimize.streams import optimize
    from ..schedule import serial_schedule

    row: dict = {"graph": kind, "n": n, "mode": mode}
    t = time.perf_counter()
    if kind == "wide":
        graph, natural = wide_graph(n), None
    elif kind == "chain":
        graph, natural = chain_graph(n), None
    elif kind == "chains":
        graph, natural = chains_graph(n), None
    elif kind == "random":
        graph, natural = random_dag(n), None
    elif kind == "layered":
        graph, natural = layered_graph(n), None
    elif kind == "experts":
        from ..examples import moe

        graph, natural = moe(n, 1024), None
    elif kind == "io":
        graph, natural = io_graph(n), None
    elif kind == "transformer":
        graph, natural = transformer_graph(n), None
    elif kind == "moe256":
        graph, natural = moe_graph(n), None
    elif kind.startswith("inplace-"):
        graph, natural = inplace_graph(n, kind[len("inplace-"):]), None
    else:
        graph, natural = fanout_join(n, streams=4)
    row["tensors"] = len(graph.tensors)
    row["build_s"] = time.perf_counter() - t
    if mode == "serial":
        _plan_phases(graph, serial_schedule(graph), solver, row)
    elif mode == "natural":
        if natural is None:
            raise SystemExit("--mode natural needs a generated schedule (fan-out/join graphs only)")
        _plan_phases(graph, natural, solver, row)
    else:
        t = time.perf_counter()
        sched = optimize(graph, AUTO_MAX_STREAMS if streams == "auto" else int(streams)).schedule
        row["optimize_s"] = time.perf_counter() - t
        _plan_phases(graph, sched, solver, row)
        t = time.perf_counter()  # plan() plans the serial schedule too, for the report's serial arena
        part: dict = {}
        _plan_phases(graph, serial_schedule(graph), solver, part, check=False)
        row["serial_s"] = time.perf_counter() - t
        row["serial_arena"] = part["arena"]
    row["total_s"] = sum(row.get(f"{p}_s", 0.0) for p in PHASES)
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


def _nodes(args: argparse.Namespace) -> list[int]:
    """The fan-out/join sizes to run: ``--nodes``, else the defaults when no other family was given (``--inplace
    8000`` also ran the three default fan-out/join graphs, the largest of a million nodes, before its own). A family
    given without sizes (``--io``) is given too: it ran the defaults, up to a million nodes, where ``--nodes`` without
    sizes is "nothing to measure"."""
    from .. import argtypes

    if args.nodes is not None:
        return list(args.nodes)
    return [] if any(getattr(args, f) or argtypes.given(args, f) for f in FAMILIES) else list(DEFAULT_NODES)


def _check_options(args: argparse.Namespace, has_fanout: bool) -> None:
    """Refuse an option the others leave without effect (``argtypes.idle``): ``--streams`` caps mode auto only,
    ``--inplace-shape`` shapes the ``--inplace`` graphs only, mode natural runs fan-out/join graphs only."""
    from .. import argtypes

    if argtypes.given(args, "streams") and "auto" not in args.mode:
        argtypes.idle(f"--streams {args.streams}", f"with --mode {' '.join(args.mode)}", "it is the stream cap of "
                      "mode auto (add auto to --mode)")
    if argtypes.given(args, "inplace_shape") and not args.inplace:
        argtypes.idle(f"--inplace-shape {' '.join(args.inplace_shape)}", "without --inplace sizes", "it shapes the "
                      "--inplace graphs (give --inplace K ...)")
    if "natural" in args.mode and not has_fanout:
        argtypes.idle("--mode natural", "without --nodes sizes", "it runs the fan-out/join generator's own "
                      "schedule, and the other families have none (give --nodes N ..., or drop natural)")


def run(args: argparse.Namespace) -> list[dict]:
    nodes = _nodes(args)
    cases = ([("fanout", n) for n in nodes] + [("wide", k) for k in args.wide]
             + [("chain", k) for k in args.chain] + [("chains", c) for c in args.chains]
             + [("random", k) for k in args.random] + [("layered", k) for k in args.layered]
             + [("experts", k) for k in args.experts]
             + [("io", k) for k in args.io] + [("transformer", k) for k in args.transformer]
             + [("moe256", k) for k in args.moe_blocks]
             + [(f"inplace-{shape}", k) for k in args.inplace for shape in args.inplace_shape])
    runs = [(kind, n, mode) for kind, n in cases for mode in args.mode if mode != "natural" or kind == "fanout"]
    if not runs:  # an empty table and exit 0 read as a run that passed
        from ..errors import MemplanError

        raise MemplanError("bench scale: nothing to measure: give --nodes, --wide, --chain, --chains, --random, --layered, --experts, "
                           "--io, --inplace, --transformer or --moe-blocks some sizes "
                           "(--mode natural measures only --nodes)")
    _check_options(args, bool(nodes))
    rows = []
    cols = " ".join(f"{p + ' s':>9}" for p in PHASES)
    print(f"{'graph':>14} {'n':>9} {'mode':>7} {'tensors':>9} {'streams':>7} {cols} {'total s':>8} "
          f"{'arena/LB':>9} {'peak MiB':>9}")
    for kind, n, mode in runs:
        cmd = [sys.executable, "-m", "memplan.benchmarks.scale", kind, str(n), mode, args.solver,
               *([str(args.streams)] if mode == "auto" else [])]   # the case refuses a cap its mode never reads
        row = json.loads(_run_case(cmd, f"{kind} {n} {mode}"))
        rows.append(row)
        ratio = row["arena"] / row["lower_bound"] if row["lower_bound"] else 1.0
        times = " ".join(f"{row.get(p + '_s', 0.0):>9.2f}" for p in PHASES)
        print(f"{kind:>14} {n:>9} {mode:>7} {row['tensors']:>9} {row['streams']:>7} {times} "
              f"{row['total_s']:>8.2f} {ratio:>9.4f} {row['peak_rss_mib']:>9.0f}", flush=True)
    return rows


def _run_case(cmd: list[str], case: str) -> str:
    """The last stdout line of one case's child process, or an error naming the case and how it ended
    (a case past the machine's memory dies with MemoryError, or is killed)."""
    from ..errors import MemplanError

    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:  # no process could be started (out of memory, no executable)
        raise MemplanError(f"bench scale: case {case} could not start: {exc.strerror or exc}") from None
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines:
        return lines[-1]
    why = r.stderr.strip().splitlines()
    how = (f"killed by signal {-r.returncode}" if r.returncode < 0 else f"exit status {r.returncode}")
    raise MemplanError(f"bench scale: case {case} failed ({how}{': ' + why[-1] if why else ''})")


CASE_KINDS = ("fanout", "wide", "chain", "chains", "random", "layered", "experts", "io", "transformer", "moe256",
              *(f"inplace-{shape}" for shape in INPLACE_SHAPES))


def child_main(argv: list[str] | None = None) -> int:
    """One case, in the child process ``run`` starts: ``KIND N MODE [SOLVER [STREAMS]]``, its row as one JSON
    line. Parsed like every memplan command line: a wrong or missing argument (a user running the module by
    hand) was an IndexError or ValueError traceback, and an unknown kind silently measured a fan-out graph."""
    from .. import argtypes
    from ..errors import MemplanError
    from ..solvers import SOLVER_NAMES

    p = argtypes.OneLineParser(prog="python -m memplan.benchmarks.scale", who="memplan.benchmarks.scale",
                               description="One case of 'memplan bench scale' (run that command for the suite).")
    p.add_argument("kind", choices=CASE_KINDS, help="graph family: bench scale's --KIND (fanout: --nodes, moe256: --moe-blocks, "
                   "inplace-SHAPE: --inplace with --inplace-shape SHAPE)")
    p.add_argument("n", type=argtypes.at_most(argtypes.MAX_NODES, "nodes"),
                   help="its size (nodes, outputs, chains, layers, ... as the bench option counts them)")
    p.add_argument("mode", choices=("serial", "auto", "natural"),
                   help="serial, graph_optimize (auto), or the fan-out generator's own 4 streams (natural)")
    p.add_argument("solver", nargs="?", default="auto", choices=SOLVER_NAMES, help="offset solver (default auto)")
    p.add_argument("streams", nargs="?", default=None, type=argtypes.streams,
                   help="the stream cap of mode auto: N or auto (default auto; only with mode auto)")
    args = p.parse_args(argv)
    if args.mode == "natural" and args.kind != "fanout":
        p.error("argument mode: natural needs a generated schedule (kind fanout only)")
    if args.streams is not None and args.mode != "auto":
        # as 'bench scale --streams N --mode serial' is refused: a cap the run never reads is no measurement of it
        p.error(f"argument streams: {args.streams} has no effect with mode {args.mode}: it is the stream cap of "
                "mode auto (drop it, or give mode auto)")
    try:
        row = measure(args.kind, args.n, args.mode, args.solver, "auto" if args.streams is None else args.streams)
    except MemplanError as exc:
        argtypes.print_error(str(exc), p.who)
        return 2
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
