"""``python -m runtime.tools.pdl_check``: does a PDL launch policy keep the plain serial bits? (diagnostic)

Runs ``--layers`` layers of the 8B-like config at each batch, poisoned, as plain serial eager (the
reference) and as PDL CUDA graphs on 1 and 3 streams under the "chain" and "always" launch policies (at
any batch: "auto" would turn PDL off above 16 rows), and prints how many replays differ bitwise; exit status 1
if any does (0: every replay gave the plain bits), as ``runtime.tools.rule_ab`` and ``gemm_bench`` say a failed
check. The GPU tests run the same check with fewer replays; this is the long run.
"""

from __future__ import annotations

from ..bits import same_bits
from ..cuda_util import need_pycuda
from ..executor import Executor, Poison
from ..kernels import KernelLibrary
from ..models import llama as L
from ..step import plan_step
from ..tool_args import ToolParser, count_arg


def main(argv=None) -> int:
    ap = ToolParser(prog="python -m runtime.tools.pdl_check")
    ap.add_argument("--batches", default="1,16", help="comma-separated rows per step (default 1,16)")
    ap.add_argument("--replays", type=count_arg, default=5, help="graph replays compared per case (default 5)")
    ap.add_argument("--layers", type=count_arg, default=2, help="layers of the 8B-like config (default 2)")
    a = ap.parse_args(argv)
    from ..tool_args import ToolArgError, at_least, int_list, llama_graphs, repeats, tool_error

    try:
        batches = int_list(a.batches, "--batches")
        repeats(a.replays, "--replays")
        at_least(a.layers, "--layers", 1)
        llama_graphs(["8b"], batches, layers=a.layers)
        need_pycuda()
    except ToolArgError as exc:
        return tool_error("pdl_check", exc)
    plain, pdl = KernelLibrary(), KernelLibrary(pdl=True)
    differ = 0   # replays whose bits differ from the plain serial step's, over every batch, policy and plan
    for batch in batches:
        cfg = L.config("8b", batch=batch, layers=a.layers)
        g = L.build_graph(cfg)
        inp = L.make_inputs(cfg, seed=3)
        plans = {"serial": plan_step(g, batch=cfg.batch), "multi": plan_step(g, L.multi_stream_schedule(g), batch=cfg.batch)}
        poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
        base_ex = Executor(g, plans["serial"], inputs=inp, random_weights_seed=3, library=plain)
        base_ex.run(poison=poison)
        base = base_ex.read("logits")
        for policy in ("chain", "always"):
            for pname, plan in plans.items():
                ex = Executor(g, plan, inputs=inp, library=pdl, weights_from=base_ex, pdl_policy=policy)
                ex.capture(poison=poison)
                bad = 0
                for _ in range(a.replays):
                    ex.replay(1)
                    bad += not same_bits(ex.read("logits"), base)
                print(f"batch {batch} policy {policy:6s} {pname:6s}: {bad}/{a.replays} replays differ", flush=True)
                differ += bad
                ex.free()
        base_ex.free()
    # (the exit status was 0 whatever the replays gave: a script or CI job running the check could not see a race)
    return 1 if differ else 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "pdl_check"))
