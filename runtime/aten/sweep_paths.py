"""Run ``runtime.aten.sweep``'s torchvision and timm models through both torch paths, in several variants.

    python -m runtime.aten.sweep_paths [--family torchvision|timm|transformers|all] [--only NAME,..] [--variants f32,b3,bf16,dyn]
                                       [--paths importer,aten] [--budget S] [--out F.json]

Why: ``runtime.aten.sweep`` compiles each model once, float32, at its listed input; the importer
(``memplan.from_torch`` -> ``memplan.plan`` -> ``memplan.verify``) never met these models, nor did either path meet
them in bfloat16, at another batch, or as an ``ExportedProgram`` with a dynamic batch dimension (specialized to the
example inputs, as both paths take one). Variants:
    f32   the sweep's inputs, float32
    b3    batch 3 (every input's first dimension), float32
    bf16  the sweep's inputs, the model and the inputs in bfloat16
    dyn   ``torch.export.export`` at batch 2 with a dynamic batch dimension (1..8), given to both paths at batch 3
Per (model, variant, path) one verdict:
    importer: planned(arena=.., nodes=..) | REFUSED(memplan error) | EXPORT(torch.export's failure, wrapped) | CRASH
    aten:     bitwise | close(maxabs=..) | WRONG(..) | REFUSED(..) | EXPORT(..) | CRASH(..)
    split:    (given in --paths; detection entries only) the whole model, every score kept, through
              ``runtime.aten.detection.compile_detector``: bitwise(boxes=..) | WRONG(..) | REFUSED(..) | CRASH(..)
against eager (``torch.no_grad``) on the same fresh inputs. CRASH is any exception that is no ``memplan.errors``
error: a bug, as is WRONG. SKIP-BUILD / SKIP-EAGER: the model itself fails to build or run eagerly. --out is written
after every model (atomically), and merged into where it exists: a sweep in chunks under ``timeout`` keeps what ran.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import torch

from memplan.argtypes import OneLineParser, print_error
from memplan.errors import GraphError, MemplanError
from memplan.files import atomic_write_text
from runtime.aten.sweep import CASES, _budget, compare, mha_fastpath, short
from runtime.aten.sweep_kit import Case, Missing
from runtime.aten.sweep_models71 import MODELS71
from runtime.tool_args import ToolArgError, name_list, out_path, results_json

VARIANTS = ("f32", "b3", "bf16", "dyn")
PATHS = ("importer", "aten")
#: paths run only where given (``--paths``): "split", a detection model whole through
#: ``runtime.aten.detection.compile_detector`` (the sweep's ``DetHead`` entries only)
EXTRA_PATHS = ("split",)
TV_BUILDERS = ("tv.", "tvq.", "tv_det.", "tv_fpn.")
#: round 71's transformers models (``sweep_models71``): the family "transformers"
TRANSFORMERS = frozenset(name for name, _, _ in MODELS71)


def family(case: Case) -> str:
    """"timm", "torchvision", "transformers" (round 71's list) or "" (another package's model, a building block)
    by the case's builder."""
    if case.name.startswith("timm_"):
        return "timm"
    if case.name in TRANSFORMERS:
        return "transformers"
    make = case.make
    if make.__qualname__.startswith("missing_as.") and make.__closure__:
        make = make.__closure__[0].cell_contents
    # (a lambda around a builder, RAFT's ``lambda: Call(tv("raft_small")(), num_flow_updates=2)``: by the names it calls)
    called = set(getattr(getattr(make, "__code__", None), "co_names", ()))
    tv = make.__qualname__.startswith(TV_BUILDERS) or bool(called & {b.rstrip(".") for b in TV_BUILDERS})
    return "torchvision" if tv else ""


def rebatched(xs: tuple, batch: int, g: torch.Generator) -> tuple | None:
    """``xs`` with every tensor's first dimension ``batch`` (fresh random values); None where one is no float."""
    out = []
    for x in xs:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
            return None
        out.append(torch.randn((batch, *x.shape[1:]), generator=g).to(x.dtype))
    return tuple(out)


def _varargs_only(model: Any) -> bool:
    """Whether ``model.forward`` takes ``*args`` alone: torch.export then wants its dynamic shapes as one tuple."""
    import inspect

    kinds = [p.kind for p in inspect.signature(model.forward).parameters.values()]
    return kinds == [inspect.Parameter.VAR_POSITIONAL]


def verdict_of(exc: BaseException) -> str:
    """An exception's verdict: a memplan error is a refusal (torch.export's own failure, wrapped, is EXPORT); any
    other is a CRASH, a bug."""
    if isinstance(exc, GraphError) and str(exc).startswith(("torch.export failed", "decomposing")):
        return f"EXPORT({short(exc)})"
    if isinstance(exc, MemplanError):
        return f"REFUSED({short(exc)})"
    return f"CRASH({short(exc)})"


def importer_path(model: Any, x: tuple) -> dict:
    """``from_torch`` -> ``plan`` -> ``verify`` of ``model(*x)`` (``model`` may be an ``ExportedProgram``)."""
    import memplan

    graph = memplan.from_torch(model, x)
    plan = memplan.plan(graph)
    memplan.verify(graph, plan)
    return {"verdict": f"planned(arena={plan.arena_bytes}, nodes={len(graph.nodes)})", "maxabs": 0.0}


def aten_path(model: Any, x: tuple, call: tuple, ref: Any, case: Case, dtype: Any) -> dict:
    """``runtime.aten.compile`` of ``model(*x)`` (one stream, NaN-poisoned arena) called on ``call`` against
    eager's ``ref`` (with ``nn.MultiheadAttention``'s fast path off where the sweep's case says so)."""
    from runtime.aten import compile as aten_compile

    c = aten_compile(model, x, streams=1, cuda_graph=False, poison=True, device=torch.device("cpu"))
    with torch.no_grad(), mha_fastpath(not case.mha_slow_path):
        out = c(*[t.clone() for t in call])
    v, d = compare(out, ref, dtype)
    return {"verdict": f"close(maxabs={d:.3g})" if v == "close" else v, "maxabs": d}


def split_path(head: Any, x: tuple, call: tuple) -> dict | None:
    """A ``DetHead`` entry's whole detection model through ``compile_detector`` (one stream, poisoned arena), its
    detections on ``call``'s images against the model's own; None for any other entry. Every score is kept
    (thresholds 0) so that NMS and the second stage have boxes to work on, as random weights score few above
    torchvision's defaults."""
    from runtime.aten.detection import compile_detector
    from runtime.aten.sweep import DetHead

    if not isinstance(head, DetHead):
        return None
    m = head.m
    for owner in (m, getattr(m, "roi_heads", None)):
        if owner is not None and hasattr(owner, "score_thresh"):
            owner.score_thresh = 0.0
    split = compile_detector(m, x[0], streams=1, cuda_graph=False, poison=True, device=torch.device("cpu"))
    images = list(call[0].unbind(0))
    with torch.no_grad():
        got, want = split(images), m(images)
    same = len(got) == len(want) and all(a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
                                         for a, b in zip(got, want))
    boxes = sum(int(d["boxes"].shape[0]) for d in want)
    return {"verdict": f"bitwise(boxes={boxes})" if same else f"WRONG(detections differ from eager's, boxes={boxes})",
            "maxabs": 0.0 if same else None}


def run_model(case: Case, variants: list[str], paths: list[str], emit) -> None:
    """Every (variant, path) of one model; reports through ``emit(variant, path, verdict, seconds, maxabs)``."""
    t0 = time.time()
    torch.manual_seed(0)
    try:
        base = case.make().eval()
    except Missing as exc:
        return emit("-", "-", f"SKIP-MISSING({exc})", time.time() - t0, None)
    except Exception as exc:
        return emit("-", "-", f"SKIP-BUILD({short(exc)})", time.time() - t0, None)
    cpu = torch.device("cpu")
    for variant in variants:
        g = torch.Generator().manual_seed(1)
        dtype = torch.bfloat16 if variant == "bf16" else torch.float32
        model = base.to(dtype)
        x = case.inputs(g, cpu, dtype)
        call = case.inputs(g, cpu, dtype)
        given: Any = model
        if variant in ("b3", "dyn"):
            x, call = rebatched(x, 3, g), rebatched(call, 3, g)
            if x is None:
                emit(variant, "-", "SKIP-VARIANT(an input is no float tensor)", 0.0, None)
                continue
        t = time.time()
        try:
            with torch.no_grad(), mha_fastpath(not case.mha_slow_path):
                ref = model(*[c.clone() for c in call])
        except Exception as exc:
            emit(variant, "-", f"SKIP-EAGER({short(exc)})", time.time() - t, None)
            continue
        if variant == "dyn":
            t = time.time()
            try:
                batch = torch.export.Dim("batch", min=1, max=8)
                two = rebatched(x, 2, g)
                shapes: tuple = tuple({0: batch} for _ in two)
                if _varargs_only(model):   # (``forward(self, *xs)``, RAFT's ``Call``: one entry for ``xs``)
                    shapes = (shapes,)
                given = torch.export.export(model, two, dynamic_shapes=shapes)
            except Exception as exc:
                emit(variant, "-", f"SKIP-EXPORT({short(exc)})", time.time() - t, None)
                continue
        for path in paths:
            t = time.time()
            try:
                if path == "split":
                    r = split_path(model, x, call) if variant != "dyn" else None
                    if r is None:
                        continue
                else:
                    r = importer_path(given, x) if path == "importer" else aten_path(given, x, call, ref, case, dtype)
            except Exception as exc:
                r = {"verdict": verdict_of(exc), "maxabs": None}
            emit(variant, path, r["verdict"], time.time() - t, r["maxabs"])
    base.float()


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m runtime.aten.sweep_paths", description=__doc__.splitlines()[0],
                       who="runtime.aten.sweep_paths")
    ap.add_argument("--family", choices=("torchvision", "timm", "transformers", "all"), default="all",
                    help="which models of the sweep's list (default all)")
    ap.add_argument("--only", default=None, help="comma-separated model names of runtime.aten.sweep's list")
    ap.add_argument("--skip", default=None, help="comma-separated model names to leave out")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated (default {','.join(VARIANTS)})")
    ap.add_argument("--paths", default=",".join(PATHS),
                    help=f"comma-separated: {', '.join(PATHS + EXTRA_PATHS)} (default {','.join(PATHS)})")
    ap.add_argument("--budget", type=_budget, default=1e7, help="seconds; no model starts after that")
    ap.add_argument("--out", default="", help="results here as JSON (atomically); a chunk's results join its")
    ap.add_argument("--list", action="store_true", help="print the models (with --family) and exit")
    a = ap.parse_args(argv)
    # each list is a set of known names, as every runtime tool takes one (``tool_args.name_list``): an empty
    # ``--variants ''`` or ``--paths ,`` (the empty values dropped) built every model, ran none and exited 0 after
    # minutes; ``--variants f32,f32`` ran f32 twice; ``--skip`` took a misspelt name and skipped nothing
    try:
        variants, paths = name_list(a.variants, "--variants"), name_list(a.paths, "--paths")
        only = None if a.only is None else name_list(a.only, "--only")
        skip = set() if a.skip is None else set(name_list(a.skip, "--skip"))
    except ToolArgError as exc:
        print_error(str(exc), "runtime.aten.sweep_paths")
        return 2
    bad = sorted(set(variants) - set(VARIANTS)) + sorted(set(paths) - set(PATHS) - set(EXTRA_PATHS))
    if bad:
        print_error(f"unknown variant or path {', '.join(bad)}", "runtime.aten.sweep_paths")
        return 2
    cases = [c for c in CASES if not c.cuda_only and family(c) and (a.family == "all" or family(c) == a.family)]
    if only is not None:
        unknown = sorted(set(only) - {c.name for c in cases})
        if unknown:
            print_error(f"--only: unknown models {', '.join(unknown)} (see --list"
                        + ("" if a.family == "all" else f" --family {a.family}") + ")", "runtime.aten.sweep_paths")
            return 2
        cases = [c for c in cases if c.name in only]
    unknown = sorted(skip - {c.name for c in CASES})
    if unknown:
        print_error(f"--skip: unknown models {', '.join(unknown)} (see --list)", "runtime.aten.sweep_paths")
        return 2
    cases = [c for c in cases if c.name not in skip]
    if a.list:
        print("\n".join(f"{c.name}  ({family(c)})" for c in cases))
        return 0
    results: list[dict] = []
    if a.out:
        try:   # (before the models run: a missing directory lost every result at the end)
            out_path(a.out)
        except ToolArgError as exc:
            print_error(str(exc), "runtime.aten.sweep_paths")
            return 2
    if a.out and os.path.exists(a.out):   # (a chunk's results join the earlier chunks'; a (model, variant) run again
        try:                              # replaces its results)
            with open(a.out) as f:
                earlier = json.load(f)["results"]
            again = {c.name for c in cases}
            results = [r for r in earlier if r["model"] not in again or r["variant"] not in (*variants, "-")]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print_error(f"--out {a.out}: not an earlier sweep's results ({type(exc).__name__}: {exc})", "runtime.aten.sweep_paths")
            return 2
    import timm
    import torchvision
    head = {"device": "cpu", "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "threads": torch.get_num_threads()}
    if any(family(c) == "transformers" for c in cases):
        import transformers
        head["transformers"] = transformers.__version__
    print(", ".join(f"{k} {v}" for k, v in head.items()) + f"; {len(cases)} models", flush=True)
    start = time.time()
    for case in cases:
        if time.time() - start > a.budget:
            print(f"BUDGET spent: {case.name} and later not started", flush=True)
            break

        def emit(variant, path, verdict, secs, maxabs, name=case.name, fam=family(case)):
            results.append({"model": name, "family": fam, "variant": variant, "path": path,
                            "verdict": verdict, "maxabs": maxabs, "seconds": round(secs, 2)})
            print(f"{name:34s} {variant:5s} {path:8s} {verdict[:150]}  {secs:.1f}s", flush=True)

        run_model(case, variants, paths, emit)
        if a.out:
            counts: dict[str, int] = {}
            for r in results:
                k = r["verdict"].split("(")[0]
                counts[k] = counts.get(k, 0) + 1
            atomic_write_text(a.out, results_json({**head, "counts": counts, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.sweep_paths"))
