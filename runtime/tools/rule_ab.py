"""``python -m runtime.tools.rule_ab``: a decode step under variants of the registry's thresholds, side by
side in one process (a tuning aid, not a test).

Why: a rule that wins on one matrix alone (``runtime.tools.gemm_bench``) can lose in the step, where its
kernel shares the SMs with the side streams' (session 11: the wgmma build on the 8B q/o from 17 rows was
faster alone and on one stream, 1-2% slower multi-stream). Each ``--variant NAME:CONST=VALUE,...`` sets
numeric constants of ``runtime.kernels.ops`` for its runs and puts them back after; the variants take
turns round by round, so drift in the machine falls on all of them alike. Every run checks that the
step's logits are bitwise those of its own serial plan.

    python -m runtime.tools.rule_ab --configs 8b,1b --batches 24,32 \\
        --variant from33:WG_FILL_MIN_ROWS=33 --variant from17:WG_FILL_MIN_ROWS=17
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys

from memplan.argtypes import integer as strict
from memplan.argtypes import real as strict_real

from ..cuda_util import need_pycuda
from ..kernels import ops
from ..tool_args import (
    ToolParser,
    config_list,
    count_arg,
    doc_summary,
    int_list,
    llama_graphs,
    out_path,
    repeats,
    results_json,
)

#: constants that size compiled kernels or shared memory (llama.cu's AF_CL, AF_MAXCHUNK, AB_QB, AB_CL, AM_QB
#: among them), or that are CUDA's limits: changing them here would lie to the launches (ATTN_CLUSTER=1 gave
#: attn_fused a grid of an eighth of its blocks, and GRID_YZ_MAX=10**9 let past-limit launches through)
FIXED = frozenset({"WG_STAGES", "WG_XSTAGES", "ATTN_MMA_SMEM", "ATTN_MMA_SMEM_W8", "TC_SMEM_MAX",
                   "ATTN_CLUSTER", "ATTN_MAXCHUNK", "ATTN_BATCH_ROWS", "ATTN_BATCH_CLUSTER", "ATTN_MMA_ROWS",
                   "GRID_X_MAX", "GRID_YZ_MAX", "BLOCK_THREADS_MAX", "SMEM_MAX", "PORTABLE_CLUSTER"})

#: numeric constants of ``runtime.kernels.ops`` that are no kernel-choice rule, each with why: a variant of one
#: timed a step that computes something else (the op constants: ``runtime.kernels.fused`` holds its own binding of
#: them, so RMS_EPS=0.1 changed the lone norms' epsilon and left the fused add+norms', and each run was still
#: "bitwise" equal to its own serial plan), or the registry as it is under another name (a value no rule reads)
NOT_RULES = {
    "RMS_EPS": "is the RMS_NORM epsilon the kernels, the emulator and the reference share (what the step computes), "
               "not a rule",
    "ROPE_BASE": "is the ROPE base the kernels, the emulator and the reference share (what the step computes), "
                 "not a rule",
    "GEMV_NORM_OFF": "is the executors' gemv_norm_min default, read when an executor is made, not a rule the "
                     "registry reads (the variant would time the registry as it is)",
}


def parse_variant(text: str) -> tuple[str, dict[str, int | float]]:
    """``NAME:CONST=VALUE,...`` (``NAME:`` alone: the registry as it is) -> (name, {const: value}); a
    ValueError names what is wrong. Only existing numeric constants of ``runtime.kernels.ops`` that do not
    size a kernel; a value keeps the constant's type."""
    name, sep, body = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"--variant {text!r}: expected NAME:CONST=VALUE,... (or NAME: for the registry as is)")
    consts: dict[str, int | float] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, eq, val = item.partition("=")
        key = key.strip()
        if key in consts:   # the last value won, silently: a list option names each thing at most once
            raise ValueError(f"--variant {name}: {key} is set twice (each constant at most once)")
        cur = getattr(ops, key, None)
        if not eq or not key.isupper() or isinstance(cur, bool) or not isinstance(cur, (int, float)):
            raise ValueError(f"--variant {name}: {key!r} is not a numeric constant of runtime.kernels.ops")
        if key in FIXED:
            raise ValueError(f"--variant {name}: {key} sizes compiled kernels or is a CUDA limit; change it in llama.cu "
                             "and ops together")
        kind = "an integer" if isinstance(cur, int) else "a number"
        try:   # read as the memplan command reads numbers: int()/float() took '１６', 'nan' and 'inf'
            v = strict(val.strip()) if isinstance(cur, int) else strict_real(val.strip(), kind)
        except argparse.ArgumentTypeError:
            v = None
        if v is None or not math.isfinite(v):   # ('1e999': infinite)
            raise ValueError(f"--variant {name}: {key}={val.strip()!r} is not {kind} (plain ASCII decimal "
                             f"digits{'' if isinstance(cur, int) else ', finite'})")
        if key in NOT_RULES:   # (after its value: a value no constant takes is named as such first)
            raise ValueError(f"--variant {name}: {key} {NOT_RULES[key]}")
        consts[key] = v
    return name.strip(), consts


def check_variants(configs: list[str], batches: list[int], variants: list[tuple[str, dict]]) -> None:
    """ValueError naming the variant, config and batch where a variant's constants leave the registry unable to
    build the step (a 0 that it divides by, a negative size) or make it build a launch its kernel does not
    compute in full (``launch_problem`` with the constants as compiled: ATTN_MMA_MIN_ROWS or a split threshold
    may move freely, a launch past what the kernel takes may not). Built on the CPU over fake addresses, both
    plans ``bench_config`` times, for both builds (wgmma or not), before the kernels compile: the run reached
    these only on the GPU, as a traceback minutes in or a launch that computed part of its output."""
    from ..kernels.registry import launch_problem
    from ..models import llama as L
    from ..step import plan_step, program_at

    for name, consts in variants:
        for cfg_name in configs:
            for batch in batches:
                where = f"--variant {name}: config {cfg_name} at batch {batch}"
                g = L.build_graph(L.config(cfg_name, batch=batch))
                alloc = _fake_addresses()
                progs = []
                try:
                    with patched(consts):
                        for sched in (None, L.multi_stream_schedule(g)):
                            p = plan_step(g, sched, batch=batch)
                            progs += [program_at(g, p, alloc, wgmma=wg)[0] for wg in (False, True)]
                except Exception as exc:   # (ZeroDivisionError, KernelError, ...: whatever the rules raise)
                    raise ValueError(f"{where}: the registry cannot build the step ({type(exc).__name__}: {exc})") from None
                for prog in progs:
                    for nid, lns in prog.launches.items():
                        for ln in lns:
                            if (problem := launch_problem(ln)) is not None:
                                raise ValueError(f"{where}: node {nid!r} gets a launch of {ln.kernel} its kernel does "
                                                 f"not compute in full ({problem})")


def _fake_addresses():
    """``alloc(nbytes, label)`` over device-like addresses, every allocation apart (``runtime.step._kernels``)."""
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))
    return lambda nbytes, label: next(nxt)


@contextlib.contextmanager
def patched(consts: dict[str, int | float]):
    """``runtime.kernels.ops`` with ``consts`` set (the registry reads them at call time), restored after."""
    old = {k: getattr(ops, k) for k in consts}
    try:
        for k, v in consts.items():
            setattr(ops, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(ops, k, v)


def run(lib, configs: list[str], batches: list[int], variants: list[tuple[str, dict]], *, rounds: int = 2,
        steps: int = 40, bandwidth: float = 1.0, log=print) -> list[dict]:
    """A row per (config, batch, variant): the median over ``rounds`` of each graph mode's ms per step,
    the best multi-stream one, its ratio to the first variant's, and whether every run was bitwise equal
    to its serial plan."""
    from ..bench import bench_config

    rows = []
    for cfg in configs:
        for batch in batches:
            runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
            for _ in range(rounds):
                for name, consts in variants:
                    with patched(consts):
                        r = bench_config({"": lib}, cfg, batch, steps=steps, rounds=1, eager_steps=2,
                                         bandwidth=bandwidth, torch_peer=False, extra=False, log=lambda *a: None)
                    finite = r["logits_finite"]
                    finite = all(finite.values()) if isinstance(finite, dict) else bool(finite)
                    runs[name].append({"modes": {k: v["ms_per_step"] for k, v in r["modes"].items()
                                                 if k.endswith("graph")},
                                       "bitwise": all(r["same_logits_as_serial"].values()) and finite})
            first = None
            for name, consts in variants:
                modes = {k: statistics.median(x["modes"][k] for x in runs[name]) for k in runs[name][0]["modes"]}
                multi = min((v for k, v in modes.items() if not k.startswith("1 stream")), default=None)
                first = multi if first is None else first
                row = {"config": cfg, "batch": batch, "variant": name, "consts": consts, "modes": modes,
                       "multi_ms": multi, "vs_first": (multi / first) if multi and first else None,
                       "bitwise": all(x["bitwise"] for x in runs[name])}
                rows.append(row)
                log(f"{cfg} b{batch} {name:12s} 1 stream {modes.get('1 stream graph', float('nan')):8.4f} ms  "
                    f"multi {multi if multi is not None else float('nan'):8.4f} ms  "
                    f"x{row['vs_first'] or float('nan'):.4f}  {'bitwise' if row['bitwise'] else 'LOGITS DIFFER'}")
    return rows


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.rule_ab", description=doc_summary(__doc__))
    ap.add_argument("--configs", default="8b", help="comma-separated Llama configs (default 8b)")
    ap.add_argument("--batches", default="32", help="comma-separated rows per step (default 32)")
    ap.add_argument("--variant", action="append", default=[], help="NAME:CONST=VALUE,... (repeat; first = base)")
    ap.add_argument("--rounds", type=count_arg, default=2, help="timing rounds (default 2)")
    ap.add_argument("--steps", type=count_arg, default=40, help="timed steps per variant and round (default 40)")
    ap.add_argument("--out", default=None, help="also write the rows as JSON (atomically)")
    a = ap.parse_args(argv)
    try:
        configs = config_list(a.configs)
        variants = [parse_variant(v) for v in (a.variant or ["registry:"])]
        batches = int_list(a.batches, "--batches")
        repeats(a.rounds, "--rounds")
        repeats(a.steps, "--steps")
        if len({n for n, _ in variants}) != len(variants):
            raise ValueError("--variant: two variants share a name")
        llama_graphs(configs, batches)
        check_variants(configs, batches, variants)
        out_path(a.out)
        need_pycuda()
    except ValueError as exc:
        print(f"rule_ab: error: {exc}", file=sys.stderr)
        return 2
    from ..bench import READ_BYTES, measure_read_bandwidth
    from ..kernels import KernelLibrary
    from ..kernels.library import pdl_supported

    lib = KernelLibrary(pdl=pdl_supported())
    bw = measure_read_bandwidth(lib, READ_BYTES)["bytes_per_s"]
    rows = run(lib, configs, batches, variants, rounds=a.rounds, steps=a.steps, bandwidth=bw)
    if a.out:
        from memplan.files import atomic_write_text

        atomic_write_text(a.out, results_json({"read_bandwidth_bytes_per_s": bw, "rows": rows}, indent=1) + "\n")
    return 0 if all(r["bitwise"] for r in rows) else 1


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "rule_ab"))
