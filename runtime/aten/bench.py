"""``python -m runtime.aten.bench``: memplan's ATen executor against PyTorch on real-size models.

Why a script, not a test: it reports times on one machine (an H200 for docs/aten.md), it proves
nothing. Per model, in one process: torch eager (the module); torch eager captured in one CUDA graph (the
exported program's module, so the very ATen ops memplan runs, through torch's allocator); ``torch.compile``
(``reduce-overhead``: Inductor with CUDA graphs) where asked; memplan on 1 stream, on ``streams="auto"``,
and on ``auto`` with ``memory_budget`` = the 1-stream arena, all three captured in one CUDA graph. Times
are medians of CUDA-event-timed batches of graph replays (the captured step; memplan's also copies the
inputs into their arena slots first, since a plan may reuse an input's bytes: a few microseconds); memory is memplan's arena (plus the small scratch its exact lowerings keep) next to
torch's peak activation memory for the same eager step (``max_memory_allocated`` above what was allocated
before, plus the inputs); copies are result copies per call (ops without an ``out=`` form).

``--device cpu --quick`` runs tiny models on the CPU (a smoke run: no CUDA graphs, no torch.compile).
Results go to a JSON file, rewritten after every model, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import statistics
import sys
import time
import traceback
from typing import Any

from memplan.argtypes import OneLineParser
from runtime.bits import same_tensor_bits
from runtime.torch_timing import event_ms

from .bench_models import CNNS, LLM_SIZES, build

DEFAULT_MODELS = ("inception_v3-b1", "qwen2-moe-decode", "llama-1b-decode", "googlenet-b1", "inception_v3-b8",
                  "googlenet-b8", "llama-8b-decode")
DEFAULT_COMPILE = ("inception_v3-b1", "googlenet-b1", "qwen2-moe-decode", "llama-1b-decode")


def _timer(torch, device: str, fn, budget_s: float = 0.4, reps: int = 5) -> float:
    """Median milliseconds per call of ``fn`` (after warm-up), in batches timed with CUDA events."""
    for _ in range(3):
        fn()
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    one = max(time.perf_counter() - t0, 1e-6)
    iters = max(3, min(500, int(budget_s / reps / one)))
    out = []
    for _ in range(reps):
        if cuda:
            out.append(event_ms(torch, fn, iters))
        else:
            t = time.perf_counter()
            for _ in range(iters):
                fn()
            out.append((time.perf_counter() - t) * 1e3 / iters)
    return statistics.median(out)


def _peak_activation(torch, fn, input_bytes: int) -> int | None:
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before + input_bytes
    del out
    return int(peak)


def _capture(torch, fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    torch.cuda.synchronize()
    return g


def _err(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def bench_model(torch, name: str, device: str, quick: bool, do_compile: bool, log) -> dict[str, Any]:
    from . import compile as aten_compile
    from .program import load_program

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    bm = build(name, device, dtype, quick)
    rec: dict[str, Any] = {"model": name, "note": bm.note, "dtype": str(dtype).removeprefix("torch.")}
    module, args, kwargs = bm.module, bm.args, bm.kwargs
    cuda = device == "cuda"

    def eager():
        with torch.no_grad():
            return module(*args, **kwargs)
    ref = eager()
    inputs = [x for x in list(args) + list(kwargs.values()) if isinstance(x, torch.Tensor)]
    rec["torch_peak_activation_bytes"] = _peak_activation(torch, eager, sum(x.nbytes for x in inputs))
    rec["eager_ms"] = _timer(torch, device, eager)
    log(f"{name}: built in {time.perf_counter() - t0:.1f}s; eager {rec['eager_ms']:.3f} ms")
    t1 = time.perf_counter()
    program = load_program(module, args, kwargs, exported=bm.exported)
    rec["export_import_s"] = round(time.perf_counter() - t1, 2)
    rec["nodes"] = len(program.graph.nodes)
    g = None
    if cuda:  # the exported program's module: the same ATen ops memplan runs, through torch's allocator
        exported = program.exported.module()

        def exported_call():
            with torch.no_grad():
                return exported(*args, **kwargs)
        try:
            g = _capture(torch, exported_call)
        except Exception as exc:
            rec["eager_graph_error"] = _err(exc)
            log(f"{name}: eager graph failed: {_err(exc)}")
        if g is not None:
            _time_graph(torch, device, g, rec, name, log, after=False)
    arena1 = None
    out1 = None
    for mode, kw in (("memplan_1", {"streams": 1}), ("memplan_auto", {"streams": "auto"}),
                     ("memplan_budget", {"streams": "auto", "memory_budget": None})):
        try:
            if mode == "memplan_budget":
                if arena1 is None:   # (memory_budget=None is no budget: the row was a second auto run, mislabelled)
                    raise RuntimeError("no 1-stream arena to set the budget to: memplan_1 failed")
                kw = {"streams": "auto", "memory_budget": arena1}
            t2 = time.perf_counter()
            c = aten_compile(module, args, kwargs=kwargs, program=program, cuda_graph=cuda, device=device, **kw)
            build_s = time.perf_counter() - t2
            out = c(*args, **kwargs)
            from .program import flatten_inputs

            tensors = flatten_inputs(c.program, args, kwargs)

            def step(ex=c.executor, tensors=tensors):  # a plan may reuse an input's bytes: load, replay
                ex.load_inputs(tensors)
                ex.issuer.replay()
            run = step if cuda else (lambda c=c: c(*args, **kwargs))
            ms = _timer(torch, device, run)
            scratch = c.stats.scratch_bytes
            entry = {"ms": ms, "arena_bytes": c.arena_bytes, "scratch_bytes": scratch, "streams": c.plan.streams,
                     "events": len(c.plan.events), "copies_per_call": c.stats.copies_per_call,
                     "copy_ops": sorted({n.split(" ")[1] for n in c.stats.copy_nodes}),
                     "kinds": dict(c.stats.kinds), "plan_and_build_s": round(build_s, 2),
                     "lower_bound_bytes": c.plan.lower_bound_bytes,
                     "max_abs_err_vs_eager": float((out.float() - ref.float()).abs().max()),
                     "ref_abs_max": float(ref.float().abs().max())}
            if mode == "memplan_1":
                arena1, out1 = c.arena_bytes, out
            else:
                entry["bitwise_vs_1stream"] = same_tensor_bits(out, out1) if out1 is not None else None
            rec[mode] = entry
            log(f"{name}: {mode} {ms:.3f} ms, arena {c.arena_bytes}, {c.plan.streams} streams, "
                f"{len(c.plan.events)} events, copies {c.stats.copies_per_call}, built in {build_s:.1f}s")
            del c
        except Exception as exc:
            rec[mode] = {"error": _err(exc)}
            log(f"{name}: {mode} failed: {_err(exc)}")
            traceback.print_exc(file=sys.stderr)
        if cuda:
            torch.cuda.empty_cache()
    if g is not None:
        _time_graph(torch, device, g, rec, name, log, after=True)
        del g
    if do_compile and cuda:
        try:
            t3 = time.perf_counter()
            cm = torch.compile(module, mode="reduce-overhead")

            def compiled():
                with torch.no_grad():
                    return cm(*args, **kwargs)
            compiled()
            rec["compile_s"] = round(time.perf_counter() - t3, 1)
            rec["torch_compile_ms"] = _timer(torch, device, compiled)
            rec["torch_compile_mode"] = "reduce-overhead"
            log(f"{name}: torch.compile {rec['torch_compile_ms']:.3f} ms (compiled in {rec['compile_s']}s)")
        except Exception as exc:
            rec["torch_compile_error"] = _err(exc)
            log(f"{name}: torch.compile failed: {_err(exc)}")
    _derive(rec)
    return rec


def _time_graph(torch, device: str, g, rec: dict[str, Any], name: str, log, *, after: bool) -> None:
    """``rec["eager_graph_ms"]`` (``after``: ``"eager_graph_after_ms"``): torch's eager graph ``g`` timed, before
    memplan ran and again after it. Once kernels have run on a second stream, every later CUDA-graph replay in
    the process has longer gaps between its kernels (Inception-v3 b1 on an H200: 1.840 -> 2.075 ms for torch's
    own graph, captured before; docs/aten.md), so only the second reading compares like with like. A replay
    that fails is recorded as ``..._error``: raised after memplan ran, it lost the model's whole record, every
    memplan mode measured before it included."""
    key, what = ("eager_graph_after", "eager graph (after memplan)") if after else ("eager_graph", "eager graph")
    try:
        rec[f"{key}_ms"] = _timer(torch, device, g.replay)
    except Exception as exc:
        rec[f"{key}_error"] = _err(exc)
        log(f"{name}: {what} failed: {_err(exc)}")


def _derive(rec: dict[str, Any]) -> None:
    one = rec.get("memplan_1", {}).get("ms")
    base = rec.get("eager_graph_ms")
    for mode in ("memplan_1", "memplan_auto", "memplan_budget"):
        e = rec.get(mode, {})
        if "ms" not in e:
            continue
        if one:
            e["speedup_vs_1stream"] = round(one / e["ms"], 3)
        if base:
            e["speedup_vs_eager_graph"] = round(base / e["ms"], 3)
        if rec.get("eager_graph_after_ms"):
            e["speedup_vs_eager_graph_after"] = round(rec["eager_graph_after_ms"] / e["ms"], 3)
        if rec.get("memplan_1", {}).get("arena_bytes"):
            e["arena_vs_1stream"] = round(e["arena_bytes"] / rec["memplan_1"]["arena_bytes"], 3)
        if rec.get("torch_peak_activation_bytes"):
            e["arena_vs_torch_peak"] = round(e["arena_bytes"] / rec["torch_peak_activation_bytes"], 3)


def table(results: list[dict[str, Any]]) -> str:
    """The markdown results table of docs/aten.md."""
    rows = ["| model | eager ms | eager graph ms (before / after memplan) | torch.compile ms | memplan 1s ms | auto ms "
            "(streams) | budget ms (streams) | auto / 1s | budget / 1s | 1s vs eager graph (before / after) | arena 1s / auto / budget MiB | torch peak "
            "MiB | copies |", "|" + " --- |" * 13]

    def mib(v):   # (a size not measured, the CPU's torch peak or a mode that failed, is '–', not 0.0 MiB)
        return v / (1 << 20) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def f(v, fmt="{:.3f}"):
        return fmt.format(v) if isinstance(v, (int, float)) else "–"
    for r in results:
        m1, ma, mb = (r.get(k, {}) for k in ("memplan_1", "memplan_auto", "memplan_budget"))
        rows.append(
            f"| {r['model']} | {f(r.get('eager_ms'))} | {f(r.get('eager_graph_ms'))} / {f(r.get('eager_graph_after_ms'))} | "
            f"{f(r.get('torch_compile_ms'))} | "
            f"{f(m1.get('ms'))} | {f(ma.get('ms'))} ({ma.get('streams', '–')}) | {f(mb.get('ms'))} "
            f"({mb.get('streams', '–')}) | {f(ma.get('speedup_vs_1stream'), '{:.2f}x')} | "
            f"{f(mb.get('speedup_vs_1stream'), '{:.2f}x')} | {f(m1.get('speedup_vs_eager_graph'), '{:.3f}x')} / "
            f"{f(m1.get('speedup_vs_eager_graph_after'), '{:.3f}x')} | "
            f"{f(mib(m1.get('arena_bytes')), '{:.1f}')} / {f(mib(ma.get('arena_bytes')), '{:.1f}')} / "
            f"{f(mib(mb.get('arena_bytes')), '{:.1f}')} | "
            f"{f(mib(r.get('torch_peak_activation_bytes')), '{:.1f}')} | {m1.get('copies_per_call', '–')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m runtime.aten.bench", description=__doc__.splitlines()[0],
                      who="runtime.aten.bench")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="where the models run (default cuda; cpu: no CUDA graphs or torch.compile, with --quick a smoke run)")
    p.add_argument("--quick", action="store_true", help="tiny models (smoke run)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma list of {', '.join(list(CNNS) + list(LLM_SIZES))}")
    p.add_argument("--compile", default=None, help="models of --models to also torch.compile ('none'; default: "
                   f"those of {','.join(DEFAULT_COMPILE)} that run)")
    p.add_argument("--out", default="aten_bench.json",
                   help="results as JSON, rewritten after every model (default aten_bench.json)")
    p.add_argument("--stop-after", default=None, help="start no model after this many seconds")
    a = p.parse_args(argv)
    import torch

    from memplan.files import atomic_write_text

    from ..tool_args import ToolArgError, config_list, need_torch_cuda, out_path, results_json, tool_error
    from ..tool_args import real as real_option

    known = list(CNNS) + list(LLM_SIZES)
    try:   # before the models run: a missing directory lost every result at the first write, an unknown
        # model was a traceback per name and exit 0, --stop-after nan ran every model, a repeated model ran
        # twice (its rows twice in the table), and --stop-after '１' was read as 1
        out_path(a.out)
        models = config_list(a.models, "--models", known=known, what="model")
        if a.compile is None:
            compiled = [*DEFAULT_COMPILE]
        else:
            compiled = config_list(a.compile, "--compile", known=[*known, "none"], what="model")
            if "none" in compiled and len(compiled) > 1:
                raise ToolArgError(f"--compile {a.compile!r}: 'none' stands alone")
            idle = [m for m in compiled if m != "none" and m not in models]
            if idle:   # (torch.compile runs only beside a model's own run: it was ignored without a word)
                raise ToolArgError(f"--compile {a.compile!r}: {', '.join(idle)} not in --models {a.models!r}, so it "
                                   "would not run (add it to --models, or leave it out of --compile)")
            if a.device == "cpu" and set(compiled) - {"none"}:
                # (round 75: torch.compile runs on CUDA only, ``bench_model``'s ``do_compile and cuda``: named models
                # were not compiled, without a word, and the results had no compiled rows)
                raise ToolArgError(f"--compile {a.compile!r} with --device cpu: torch.compile runs with --device cuda "
                                   "only (leave --compile out, or give 'none')")
        if a.stop_after is not None:
            a.stop_after = real_option(a.stop_after, "--stop-after")
            if a.stop_after < 0:
                raise ToolArgError(f"--stop-after {a.stop_after}: expected a number of seconds >= 0")
        if a.device == "cuda":
            need_torch_cuda(" (use --device cpu --quick)")
    except ToolArgError as exc:
        return tool_error("runtime.aten.bench", exc)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
           "command": "python -m runtime.aten.bench " + " ".join(argv if argv is not None else sys.argv[1:])}
    try:
        import transformers
        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    results: list[dict[str, Any]] = []
    compile_set = set(compiled) - {"none"}
    for name in models:
        if a.stop_after is not None and time.perf_counter() - t0 > a.stop_after:
            log(f"{name}: skipped (past --stop-after)")
            continue
        try:
            results.append(bench_model(torch, name, a.device, a.quick, name in compile_set, log))
        except Exception as exc:
            results.append({"model": name, "error": _err(exc)})
            log(f"{name}: failed: {_err(exc)}")
            traceback.print_exc(file=sys.stderr)
        if a.device == "cuda":
            torch.cuda.empty_cache()
        atomic_write_text(a.out, results_json({"env": env, "results": results}, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.bench"))
