"""Session 59: plan quality on graph families the tests and earlier experiments do not use.

    python docs/experiments/quality_s59.py run > docs/experiments/quality_s59.txt
    python docs/experiments/quality_s59.py hashes SEED      # sha256 of every default plan, for PYTHONHASHSEED runs
    python docs/experiments/quality_s59.py csv              # the public minimalloc problems through the solvers
    PYTHONPATH=OLD python docs/experiments/quality_s59.py corpus > old.txt   # default and 2-stream plans of the
    python docs/experiments/quality_s59.py corpus > new.txt                  # families, scale.random_dag /
                                                                             # layered_graph, fanout_join and the
                                                                             # bundled examples, before and after

Families (all built here, seeded): MoE layers (8-64 experts and a shared expert), Inception / NASNet-like cells (a
NASNet cell reads the two previous cells' outputs), U-Nets (skips live across the whole decoder), transformer blocks
(Q/K/V, attention, residuals), size disparity (1 B and 1 GB tensors in one graph), many tiny tensors (10k+), deep
chains with long-lived skips. Each graph is planned with ``memplan.plan``'s defaults and each documented option set
(``ONLY=fam,fam`` limits the families, ``SETS=a,b`` the option sets); every row gives arena, lower bound, gap,
events, streams, wall seconds and whether ``memplan.verify`` passes again on the returned plan; ``same`` says the
plan JSON was byte-identical across two runs in this process.
"""
import hashlib
import os
import random
import sys
import time

import memplan
from memplan import GraphBuilder

MB = 1 << 20


# ---------------------------------------------------------------- families

def moe_layer(experts: int, tokens: int = 16, hidden: int = 2048, ffn: int = 1408, shared: bool = True):
    """Norm, router, top-k gather per expert, expert FFNs (gate/up/act/mul/down), a shared expert, weighted sum,
    residual. Expert token counts vary (seeded), as real routing does."""
    rng = random.Random(experts)
    b = GraphBuilder(f"moe-{experts}{'-shared' if shared else ''}")
    x = b.input("x", tokens * hidden * 2)
    b.node("norm", "RMS_NORM", [x], b.intermediate("xn", tokens * hidden * 2), cost=3.0)
    b.weight("w_router", hidden * experts * 2)
    b.node("router", "MUL_MAT", ["w_router", "xn"], b.intermediate("logits", tokens * experts * 4), cost=4.0)
    b.node("topk", "TOPK", ["logits"], b.intermediate("sel", tokens * 2 * 8), cost=2.0)
    outs = []
    for e in range(experts):
        n = max(1, rng.randint(0, 2 * tokens * 2 // experts + 1))
        b.node(f"e{e}.gather", "GET_ROWS", ["xn", "sel"], b.intermediate(f"g{e}", n * hidden * 2), cost=1.0)
        for w in ("gate", "up", "down"):
            b.weight(f"w{e}.{w}", hidden * ffn * 2)
        b.node(f"e{e}.gate", "MUL_MAT", [f"w{e}.gate", f"g{e}"], b.intermediate(f"ga{e}", n * ffn * 2), cost=8.0)
        b.node(f"e{e}.up", "MUL_MAT", [f"w{e}.up", f"g{e}"], b.intermediate(f"up{e}", n * ffn * 2), cost=8.0)
        b.node(f"e{e}.act", "SILU", [f"ga{e}"], b.intermediate(f"ac{e}", n * ffn * 2), cost=1.0,
               inplace={f"ac{e}": f"ga{e}"})
        b.node(f"e{e}.mul", "MUL", [f"ac{e}", f"up{e}"], b.intermediate(f"m{e}", n * ffn * 2), cost=1.0)
        b.node(f"e{e}.down", "MUL_MAT", [f"w{e}.down", f"m{e}"], b.intermediate(f"d{e}", n * hidden * 2), cost=8.0)
        outs.append(f"d{e}")
    if shared:
        sf = ffn * 4
        for w in ("gate", "up", "down"):
            b.weight(f"ws.{w}", hidden * sf * 2)
        b.node("s.gate", "MUL_MAT", ["ws.gate", "xn"], b.intermediate("sga", tokens * sf * 2), cost=20.0)
        b.node("s.up", "MUL_MAT", ["ws.up", "xn"], b.intermediate("sup", tokens * sf * 2), cost=20.0)
        b.node("s.act", "SILU", ["sga"], b.intermediate("sac", tokens * sf * 2), cost=2.0)
        b.node("s.mul", "MUL", ["sac", "sup"], b.intermediate("sm", tokens * sf * 2), cost=2.0)
        b.node("s.down", "MUL_MAT", ["ws.down", "sm"], b.intermediate("sd", tokens * hidden * 2), cost=20.0)
        outs.append("sd")
    b.node("combine", "MOE_SUM", outs + ["sel"], b.intermediate("moe", tokens * hidden * 2), cost=4.0)
    b.node("residual", "ADD", ["moe", x], b.output("y", tokens * hidden * 2), cost=1.0)
    return b.build()


def inception(cells: int = 6, hw: int = 35, ch: int = 288, nasnet: bool = False):
    """Inception-v3-like cells (1x1, 1x1->3x3, 1x1->3x3->3x3, pool->1x1, concat) or, ``nasnet``, NASNet-like cells
    of five two-input blocks over the two previous cells' outputs (so every cell output lives two cells)."""
    b = GraphBuilder(f"{'nasnet' if nasnet else 'inception'}-{cells}")
    act = hw * hw * ch * 2
    prev2 = prev = b.input("x", act)
    rng = random.Random(cells)
    for c in range(cells):
        p = f"c{c}"
        if not nasnet:
            br = []
            b.node(f"{p}.b0", "CONV", [prev], b.intermediate(f"{p}.o0", act // 4), cost=5.0)
            br.append(f"{p}.o0")
            b.node(f"{p}.b1a", "CONV", [prev], b.intermediate(f"{p}.t1", act // 6), cost=4.0)
            b.node(f"{p}.b1b", "CONV", [f"{p}.t1"], b.intermediate(f"{p}.o1", act // 4), cost=9.0)
            br.append(f"{p}.o1")
            b.node(f"{p}.b2a", "CONV", [prev], b.intermediate(f"{p}.t2", act // 8), cost=3.0)
            b.node(f"{p}.b2b", "CONV", [f"{p}.t2"], b.intermediate(f"{p}.t3", act // 6), cost=7.0)
            b.node(f"{p}.b2c", "CONV", [f"{p}.t3"], b.intermediate(f"{p}.o2", act // 4), cost=9.0)
            br.append(f"{p}.o2")
            b.node(f"{p}.b3a", "POOL", [prev], b.intermediate(f"{p}.t4", act), cost=2.0)
            b.node(f"{p}.b3b", "CONV", [f"{p}.t4"], b.intermediate(f"{p}.o3", act // 4), cost=3.0)
            br.append(f"{p}.o3")
            out = b.output(f"{p}.y", act) if c == cells - 1 else b.intermediate(f"{p}.y", act)
            b.node(f"{p}.cat", "CONCAT", br, out, cost=2.0)
        else:
            b.node(f"{p}.adj0", "CONV", [prev2], b.intermediate(f"{p}.h0", act), cost=3.0)
            b.node(f"{p}.adj1", "CONV", [prev], b.intermediate(f"{p}.h1", act), cost=3.0)
            hs = [f"{p}.h0", f"{p}.h1"]
            used = set()
            for k in range(5):
                i, j = rng.randrange(len(hs)), rng.randrange(len(hs))
                used.update((i, j))
                b.node(f"{p}.k{k}l", "SEPCONV", [hs[i]], b.intermediate(f"{p}.l{k}", act), cost=6.0)
                b.node(f"{p}.k{k}r", "POOL", [hs[j]], b.intermediate(f"{p}.r{k}", act), cost=2.0)
                b.node(f"{p}.k{k}", "ADD", [f"{p}.l{k}", f"{p}.r{k}"], b.intermediate(f"{p}.s{k}", act), cost=1.0)
                hs.append(f"{p}.s{k}")
            loose = [h for n, h in enumerate(hs) if n >= 2 and n not in used] or [hs[-1]]
            size = act * len(loose)
            out = b.output(f"{p}.y", size) if c == cells - 1 else b.intermediate(f"{p}.y", size)
            b.node(f"{p}.cat", "CONCAT", loose, out, cost=2.0)
            act = act if c == cells - 1 else act  # (channels grow through concat; kept flat for size)
            b.node(f"{p}.proj", "CONV", [out], b.intermediate(f"{p}.z", hw * hw * ch * 2), cost=3.0) \
                if c < cells - 1 else None
            out = f"{p}.z" if c < cells - 1 else out
        prev2, prev = prev, out
    return b.build()


def unet(depth: int = 5, hw: int = 256, ch: int = 32):
    """A U-Net: two convs per level, skip saved, downsample; the decoder upsamples and concatenates the skip, so the
    level-0 skip lives from the second node to the last few."""
    b = GraphBuilder(f"unet-{depth}")
    x = b.input("x", hw * hw * 3 * 2)
    skips = []
    cur, c, s = x, ch, hw
    for d in range(depth):
        sz = s * s * c * 2
        b.node(f"e{d}.c1", "CONV", [cur], b.intermediate(f"e{d}.a", sz), cost=sz / 1e5)
        b.node(f"e{d}.c2", "CONV", [f"e{d}.a"], b.intermediate(f"e{d}.b", sz), cost=sz / 1e5)
        skips.append((f"e{d}.b", sz))
        s //= 2
        c *= 2
        b.node(f"e{d}.down", "POOL", [f"e{d}.b"], b.intermediate(f"e{d}.p", s * s * (c // 2) * 2), cost=1.0)
        cur = f"e{d}.p"
    sz = s * s * c * 2
    b.node("mid.c1", "CONV", [cur], b.intermediate("mid.a", sz), cost=3.0)
    b.node("mid.c2", "CONV", ["mid.a"], b.intermediate("mid.b", sz), cost=3.0)
    cur = "mid.b"
    for d in reversed(range(depth)):
        s *= 2
        c //= 2
        skip, ssz = skips[d]
        b.node(f"d{d}.up", "UPSAMPLE", [cur], b.intermediate(f"d{d}.u", ssz), cost=1.0)
        b.node(f"d{d}.cat", "CONCAT", [f"d{d}.u", skip], b.intermediate(f"d{d}.k", 2 * ssz), cost=1.0)
        b.node(f"d{d}.c1", "CONV", [f"d{d}.k"], b.intermediate(f"d{d}.a", ssz), cost=ssz / 1e5)
        last = b.output("y", ssz) if d == 0 else b.intermediate(f"d{d}.b", ssz)
        b.node(f"d{d}.c2", "CONV", [f"d{d}.a"], last, cost=ssz / 1e5)
        cur = last
    return b.build()


def transformer(layers: int = 4, tokens: int = 64, hidden: int = 2048, heads: int = 16, kv_heads: int = 4,
                ffn: int = 5632):
    """Pre-norm transformer blocks: Q/K/V projections, RoPE on Q and K, scores, softmax, A@V, output projection,
    residual; norm, gate/up, SiLU*up, down, residual (prefill of ``tokens``)."""
    b = GraphBuilder(f"transformer-{layers}x{tokens}")
    act = tokens * hidden * 2
    hd = hidden // heads
    cur = b.input("x", act)
    for i in range(layers):
        p = f"l{i}"
        for w, sz in (("wq", hidden * hidden), ("wk", hidden * kv_heads * hd), ("wv", hidden * kv_heads * hd),
                      ("wo", hidden * hidden), ("wg", hidden * ffn), ("wu", hidden * ffn), ("wd", hidden * ffn)):
            b.weight(f"{p}.{w}", sz * 2)
        b.node(f"{p}.n1", "RMS_NORM", [cur], b.intermediate(f"{p}.xn", act), cost=2.0)
        b.node(f"{p}.q", "MUL_MAT", [f"{p}.wq", f"{p}.xn"], b.intermediate(f"{p}.q", act), cost=10.0)
        b.node(f"{p}.k", "MUL_MAT", [f"{p}.wk", f"{p}.xn"], b.intermediate(f"{p}.k", tokens * kv_heads * hd * 2),
               cost=4.0)
        b.node(f"{p}.v", "MUL_MAT", [f"{p}.wv", f"{p}.xn"], b.intermediate(f"{p}.v", tokens * kv_heads * hd * 2),
               cost=4.0)
        b.node(f"{p}.rq", "ROPE", [f"{p}.q"], b.intermediate(f"{p}.qr", act), cost=1.0)
        b.node(f"{p}.rk", "ROPE", [f"{p}.k"], b.intermediate(f"{p}.kr", tokens * kv_heads * hd * 2), cost=1.0)
        b.node(f"{p}.s", "MUL_MAT", [f"{p}.kr", f"{p}.qr"], b.intermediate(f"{p}.sc", heads * tokens * tokens * 4),
               cost=4.0)
        b.node(f"{p}.sm", "SOFT_MAX", [f"{p}.sc"], b.intermediate(f"{p}.pr", heads * tokens * tokens * 4), cost=2.0,
               inplace={f"{p}.pr": f"{p}.sc"})
        b.node(f"{p}.av", "MUL_MAT", [f"{p}.v", f"{p}.pr"], b.intermediate(f"{p}.at", act), cost=4.0)
        b.node(f"{p}.o", "MUL_MAT", [f"{p}.wo", f"{p}.at"], b.intermediate(f"{p}.ao", act), cost=10.0)
        b.node(f"{p}.r1", "ADD", [f"{p}.ao", cur], b.intermediate(f"{p}.h", act), cost=1.0)
        b.node(f"{p}.n2", "RMS_NORM", [f"{p}.h"], b.intermediate(f"{p}.hn", act), cost=2.0)
        b.node(f"{p}.g", "MUL_MAT", [f"{p}.wg", f"{p}.hn"], b.intermediate(f"{p}.gt", tokens * ffn * 2), cost=25.0)
        b.node(f"{p}.u", "MUL_MAT", [f"{p}.wu", f"{p}.hn"], b.intermediate(f"{p}.up", tokens * ffn * 2), cost=25.0)
        b.node(f"{p}.a", "SILU", [f"{p}.gt"], b.intermediate(f"{p}.ac", tokens * ffn * 2), cost=1.0,
               inplace={f"{p}.ac": f"{p}.gt"})
        b.node(f"{p}.m", "MUL", [f"{p}.ac", f"{p}.up"], b.intermediate(f"{p}.mm", tokens * ffn * 2), cost=1.0)
        b.node(f"{p}.d", "MUL_MAT", [f"{p}.wd", f"{p}.mm"], b.intermediate(f"{p}.dn", act), cost=25.0)
        out = b.output("y", act) if i == layers - 1 else b.intermediate(f"{p}.y", act)
        b.node(f"{p}.r2", "ADD", [f"{p}.dn", f"{p}.h"], out, cost=1.0)
        cur = out
    return b.build()


def disparity(n: int = 200, seed: int = 0):
    """A random DAG (each node reads one or two recent tensors) whose tensors are 1 B or 1 GB, mixed."""
    rng = random.Random(seed)
    b = GraphBuilder(f"disparity-{n}")
    live = [b.input("x", 1)]
    for i in range(n):
        size = (1 << 30) if rng.random() < 0.3 else 1
        ins = rng.sample(live[-6:], min(len(live[-6:]), rng.randint(1, 2)))
        out = b.output("y", 1) if i == n - 1 else b.intermediate(f"t{i}", size)
        b.node(f"n{i}", "OP", ins, out, cost=float(rng.randint(1, 20)))
        live.append(out)
    return b.build()


def tiny(n: int = 10000, seed: int = 0):
    """``n`` tensors of 1-64 bytes: groups of four parallel tiny ops joined, with a residual every 50 joins."""
    rng = random.Random(seed)
    b = GraphBuilder(f"tiny-{n}")
    cur = b.input("x", 16)
    skip = cur
    k = 0
    while k < n - 6:
        ends = []
        for _j in range(4):
            t = b.intermediate(f"t{k}", rng.randint(1, 64))
            b.node(f"n{k}", "OP", [cur], t, cost=1.0)
            ends.append(t)
            k += 1
        ins = ends + ([skip] if (k // 5) % 50 == 0 else [])
        t = b.intermediate(f"t{k}", rng.randint(1, 64))
        b.node(f"n{k}", "ADD", ins, t, cost=1.0)
        k += 1
        if (k // 5) % 50 == 0:
            skip = t
        cur = t
    b.node(f"n{k}", "OUT", [cur], b.output("y", 16), cost=1.0)
    return b.build()


def deep_skips(n: int = 2000, every: int = 25, span: int = 400, seed: int = 0):
    """A chain of ``n`` nodes whose every ``every``-th tensor is read again ``span`` nodes later (DenseNet-/ResNet-
    like long skips), sizes varying 4x along the chain."""
    rng = random.Random(seed)
    b = GraphBuilder(f"deep-skips-{n}")
    cur = b.input("x", 65536)
    back: dict[int, str] = {}
    for i in range(n):
        ins = [cur] + ([back.pop(i)] if i in back else [])
        out = b.output("y", 65536) if i == n - 1 else b.intermediate(f"t{i}", rng.choice((1, 2, 4)) * 65536)
        b.node(f"n{i}", "OP", ins, out, cost=float(rng.randint(1, 10)))
        if i % every == 0 and i + span < n - 1:
            back[i + span] = out
        cur = out
    return b.build()


def families():
    return {
        "moe8": lambda: moe_layer(8), "moe16": lambda: moe_layer(16), "moe64": lambda: moe_layer(64),
        "moe32-noshared": lambda: moe_layer(32, shared=False),
        "inception6": lambda: inception(6), "nasnet6": lambda: inception(6, nasnet=True),
        "unet5": lambda: unet(5), "unet7": lambda: unet(7, hw=512, ch=16),
        "transformer2": lambda: transformer(2), "transformer4": lambda: transformer(4, tokens=256),
        "disparity200": lambda: disparity(200), "disparity60": lambda: disparity(60, seed=3),
        "tiny10k": lambda: tiny(10000), "deepskips2k": lambda: deep_skips(2000),
    }


# ---------------------------------------------------------------- option sets

SETS = {
    "default": {},
    "greedy": {"solver": "greedy"},
    "size": {"solver": "size"},
    "search1": {"solver": "search", "time_limit": 1.0},
    "cpsat1": {"solver": "cpsat", "time_limit": 1.0},
    "auto-t1": {"time_limit": 1.0},
    "s1": {"streams": 1},
    "s2": {"streams": 2},
    "s4": {"streams": 4},
    "s8": {"streams": 8},
    "sauto": {"streams": "auto"},
    "sauto-greedy": {"streams": "auto", "solver": "greedy"},
    "sauto-t1": {"streams": "auto", "time_limit": 1.0},
    "sauto-budget": {"streams": "auto", "memory_budget": "serial"},
    "sauto-budget-t1": {"streams": "auto", "memory_budget": "serial", "time_limit": 1.0},
    "serial-budget": {"memory_budget": "serial"},
}
#: option sets skipped on the largest graphs (minutes each on a shared 2-core machine)
HEAVY = {"cpsat1", "sauto-budget-t1"}
BIG = {"tiny10k", "deepskips2k"}


def plan_row(g, opts: dict, serial_arena: int | None):
    opts = dict(opts)
    if opts.get("memory_budget") == "serial":
        opts["memory_budget"] = serial_arena
    t = time.perf_counter()
    try:
        p = memplan.plan(g, **opts)
    except Exception as e:  # noqa: BLE001 (a row of the table)
        return None, time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:120]}"
    return p, time.perf_counter() - t, None


def run() -> None:
    only = [s for s in os.environ.get("ONLY", "").split(",") if s]
    sets = [s for s in os.environ.get("SETS", "").split(",") if s] or list(SETS)
    print(f"{'graph':16} {'options':16} {'arena':>12} {'bound':>12} {'gap%':>7} {'str':>3} {'ev':>4} "
          f"{'sec':>6} ver same solver")
    for name, make in families().items():
        if only and name not in only:
            continue
        g = make()
        serial = memplan.plan(g, solver="greedy").arena_bytes
        for sname in sets:
            if name in BIG and sname in HEAVY:
                continue
            p, sec, err = plan_row(g, SETS[sname], serial)
            if err:
                print(f"{name:16} {sname:16} ERROR {err}  ({sec:.2f}s)", flush=True)
                continue
            ok = "ok"
            try:
                memplan.verify(g, p)
            except Exception as e:  # noqa: BLE001
                ok = f"UNSAFE {e}"[:60]
            same = "-"
            if "time_limit" not in SETS[sname] or sname in ("search1", "auto-t1"):
                p2, _, _ = plan_row(g, SETS[sname], serial)
                same = "yes" if p2 is not None and p2.to_json() == p.to_json() else "NO"
            gap = 100.0 * (p.arena_bytes - p.lower_bound_bytes) / max(1, p.lower_bound_bytes)
            print(f"{name:16} {sname:16} {p.arena_bytes:>12} {p.lower_bound_bytes:>12} {gap:>7.2f} {p.streams:>3} "
                  f"{len(p.events):>4} {sec:>6.2f} {ok} {same} {p.solver.get('name')}", flush=True)


def hashes() -> None:
    """One sha256 per (family, option set without a time limit): compare across PYTHONHASHSEED values."""
    for name, make in families().items():
        g = make()
        serial = memplan.plan(g, solver="greedy").arena_bytes
        for sname in ("default", "s2", "sauto", "sauto-budget"):
            p, _, err = plan_row(g, SETS[sname], serial)
            h = err or hashlib.sha256(p.to_json().encode()).hexdigest()[:16]
            print(name, sname, h, flush=True)


def csv() -> None:
    from memplan.io.minimalloc import read_csv
    from memplan.solvers import solve
    from memplan.solvers.options import SolveOptions
    data = "/work/shared/data/minimalloc"
    files = [f"{data}/challenging/{c}.1048576.csv" for c in "ABCDEFGHIJK"] + [f"{data}/examples/input.12.csv"]
    for f in files:
        prob = read_csv(f).problem()
        for solver, tl in (("auto", None), ("greedy", None), ("search", 1.0)):
            t = time.perf_counter()
            sol = solve(prob, solver, SolveOptions(time_limit=tl))
            sec = time.perf_counter() - t
            print(f"{os.path.basename(f):22} {solver:7} {sol.arena:>9} bound {sol.lower_bound:>9} "
                  f"{sec:6.2f}s {sol.status}", flush=True)


def corpus() -> None:
    """Default (serial) and ``streams=2`` plans of a wider corpus: arena, bound, seconds (one run each)."""
    from memplan.benchmarks import scale
    from memplan.examples import bundled
    from memplan.generators import fanout_join
    gs = {k: v for k, v in families().items() if k not in BIG}
    for n in (80, 120, 200, 300):
        for s in range(3):
            gs[f"rdag{n}s{s}"] = (lambda n=n, s=s: scale.random_dag(n, seed=s))
            gs[f"fj{n}s{s}"] = (lambda n=n, s=s: fanout_join(n, seed=s)[0])
        gs[f"layered{n}"] = (lambda n=n: scale.layered_graph(n))
    for c in (3, 4, 5, 6, 8):
        gs[f"nasnet{c}"] = (lambda c=c: inception(c, nasnet=True))
    for k, g in bundled().items():
        gs["ex:" + k] = (lambda g=g: g)
    for name, make in gs.items():
        g = make()
        for st in (None, 2):
            t = time.perf_counter()
            p = memplan.plan(g, streams=st)
            sec = time.perf_counter() - t
            print(f"{name:18} s={st or 1} {p.arena_bytes:>12} {p.lower_bound_bytes:>12} {sec:6.3f} {p.solver['name']}",
                  flush=True)


if __name__ == "__main__":
    {"run": run, "hashes": hashes, "csv": csv, "corpus": corpus}[sys.argv[1]]()
