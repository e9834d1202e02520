"""The program ``test_sanitizer_gpu`` runs under compute-sanitizer: Llama steps whose kernels span the
library's families (GEMV, every register build of the tensor-core product and its clusters of up to 16,
the wgmma build, decode attention on CUDA cores and tensor cores, the fused norms and cache writers),
serial and 3-stream plans, PDL launches, each checked against the float64 reference.

Arguments: nvcc options for the kernel library (a negative control compiles a known hazard back in).
"""

from __future__ import annotations

import sys

from runtime.executor import Executor, Poison
from runtime.kernels import KernelLibrary
from runtime.models import llama as L
from runtime.step import plan_step

#: (shape, batches): an odd head size on the generic kernels, a d = 64 model with grouped queries, one 1B
#: layer (its down projection splits K over 16 blocks at 2-16 rows, the wgmma build from 33), one 8B layer
#: (d = 128 attention kernels, the 8B's product splits and the wgmma build at 64 rows)
CASES = [(dict(hidden=80, heads=5, kv_heads=1, ffn=203, vocab=1003, ctx=7, layers=1), (1, 5, 33)),
         (dict(hidden=768, heads=12, kv_heads=4, ffn=1048, vocab=131, ctx=64, layers=1), (1, 16)),
         (dict(hidden=2048, heads=32, kv_heads=8, ffn=8192, vocab=100, ctx=9, layers=1), (1, 5, 33)),
         (dict(hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=512, ctx=40, layers=1), (1, 16, 64))]


def main(options: list[str]) -> int:
    lib = KernelLibrary(pdl=True, options=options)
    for shape, batches in CASES:
        for batch in batches:
            cfg = L.config("tiny", batch=batch, **shape)
            g = L.build_graph(cfg, "runtime")
            w, inp = L.make_weights(g, cfg, seed=1), L.make_inputs(cfg, seed=2)
            ref = L.reference_forward(cfg, w, inp)[0]
            for sched in (None, L.multi_stream_schedule(g)):
                ex = Executor(g, plan_step(g, sched, batch=batch), weights=w, inputs=inp, library=lib)
                try:
                    ex.run(poison=Poison(ranges=L.kv_poison_ranges(g, cfg)))
                    err = L.rel_err(ex.read("logits"), ref)
                finally:
                    ex.free()
                if not err < (1e-4 if batch == 1 else 5e-3):
                    print(f"WRONG: {shape} batch {batch}: rel err {err:.3g}", flush=True)
                    return 1
    print("sanitize_target: every step matched the reference", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
