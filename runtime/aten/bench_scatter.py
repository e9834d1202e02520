"""``python -m runtime.aten.bench_scatter``: what the ``*_scatter`` ops (``slice_scatter``, ``select_scatter``,
``diagonal_scatter``, ``as_strided_scatter``) cost per call in memplan's ATen executor, against eager.

Why a script of its own: torch's functional ``*_scatter`` clones the input's whole *storage*
(``clone_preserve_strides``) before scattering. In eager that is the input's own tensor; every arena view
shares the arena's storage, so an ``out=`` run of these ops in the arena copied the whole arena per call.
The model here keeps a large intermediate live (a large arena) while it scatters into small ones
(contiguous, a view with a storage offset, a transposed view): the time per call and the bytes every
``copy_`` kernel moves (torch's profiler, ``record_shapes``) show that cost, or its absence. CPU by default.
"""

from __future__ import annotations

import time
from typing import Any

from ..bits import same_tensor_bits


def build_module(torch, scatters: int, big_elems: int = 1024):
    """A module doing ``4 * scatters`` scatters on 64x64 intermediates beside a large live one (``4 *
    big_elems`` bytes, from a buffer: no input copy of it per call)."""

    class Scatters(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("big", torch.randn(big_elems, generator=torch.Generator().manual_seed(0)))

        def forward(self, x):
            keep = self.big * 2  # large and live to the end: the arena holds it during every scatter
            acc = x
            for i in range(scatters):
                y = x * (i + 1)
                y = torch.slice_scatter(y, x[:, :8] + i, 1, 0, 8)
                v = (y + 1)[2:, 1:]                       # a view with a storage offset
                y2 = torch.select_scatter(v, x[0, 1:] - i, 0, 3)
                t = (y2 * 2).t()                          # a transposed (non-contiguous) input
                y3 = torch.diagonal_scatter(t, x[0, :62], 0)
                y4 = torch.as_strided_scatter(y3 + 1, x[:4, :4] * 3, (4, 4), (62, 1), 2 * 62 + 3)
                acc = acc + y4.sum()
            return acc, keep[:4]
    return Scatters()


def copy_bytes(torch, fn) -> int:
    """Bytes the ``copy_`` kernels of one call of ``fn`` write: destination elements x 4 (the model is
    float32), from torch's profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    total = 0
    for e in prof.events():
        if e.name == "aten::copy_" and e.input_shapes and e.input_shapes[0]:
            n = 1
            for d in e.input_shapes[0]:
                n *= int(d)
            total += 4 * n
    return total


def ms_per_call(fn, reps: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) * 1e3 / reps


#: the largest --big-mib (1 TiB) and --scatters (each round is four scatters, exported and planned as one
#: graph): beyond them a run is no measurement (an allocation or an export that never ends), and --big-mib
#: 10**20 overflowed torch's size argument
MAX_BIG_MIB, MAX_SCATTERS, MAX_REPS = 1 << 20, 1024, 10 ** 6


def main(argv: list[str] | None = None) -> int:
    from memplan.planfile import MAX_STREAMS

    from ..tool_args import ToolArgError, ToolParser, count_in, doc_summary, tool_error

    ap = ToolParser(prog="python -m runtime.aten.bench_scatter", description=doc_summary(__doc__))
    ap.add_argument("--big-mib", type=count_in(0, MAX_BIG_MIB), default=64,
                    help="size of the large live intermediate (MiB)")
    ap.add_argument("--scatters", type=count_in(1, MAX_SCATTERS), default=4, help="rounds of four scatters each")
    ap.add_argument("--reps", type=count_in(1, MAX_REPS), default=10, help="timed calls per measurement (default 10)")
    ap.add_argument("--streams", type=count_in(1, MAX_STREAMS), default=1, help="streams of memplan's step (default 1)")
    a = ap.parse_args(argv)   # before torch is imported: --help and a usage error need none of it
    import torch

    from . import compile as aten_compile

    torch.manual_seed(0)
    x = torch.randn(64, 64)
    try:   # (the machine's memory: --big-mib 100000 was torch's allocator traceback)
        m = build_module(torch, a.scatters, a.big_mib * 1024 * 1024 // 4)
        step = aten_compile(m, (x,), streams=a.streams)
    except (MemoryError, RuntimeError) as exc:
        if not isinstance(exc, MemoryError) and "allocate" not in str(exc):
            raise
        return tool_error(ap.who, ToolArgError(f"--big-mib {a.big_mib}: cannot allocate the intermediate "
                                               f"({str(exc).splitlines()[0][:160]})"))
    rec: dict[str, Any] = {"arena_MiB": round(step.arena_bytes / 2**20, 1), "scatter_calls": 4 * a.scatters}
    got, ref = step(x), m(x)
    rec["bitwise"] = all(same_tensor_bits(p, q) for p, q in zip(got, ref))
    with torch.no_grad():
        rec["eager_ms"] = round(ms_per_call(lambda: m(x), a.reps), 3)
        rec["memplan_ms"] = round(ms_per_call(lambda: step(x), a.reps), 3)
    rec["eager_copy_MiB"] = round(copy_bytes(torch, lambda: m(x)) / 2**20, 3)
    rec["memplan_copy_MiB"] = round(copy_bytes(torch, lambda: step(x)) / 2**20, 3)
    scatters = [ln.run for ln in step.executor.launches.values() if "scatter" in ln.op and ln.run is not None]

    def scatter_launches():
        for run in scatters:
            run()
    rec["ms_per_scatter"] = round(ms_per_call(scatter_launches, a.reps) / len(scatters), 4)
    rec["bytes_copied_per_scatter"] = copy_bytes(torch, scatter_launches) // len(scatters)
    rec["copies_per_call"] = step.stats.copies_per_call
    rec["scratch_bytes"] = step.stats.scratch_bytes
    print(" ".join(f"{k}={v}" for k, v in rec.items()))
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.bench_scatter"))
