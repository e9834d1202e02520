"""``python -m runtime.aten.bench_compile [TREE ...]``: what ``compile(m, x)`` costs (the export and its watches,
planning, building) and what a compiled call costs afterwards, on the CPU (``cuda_graph=False``), for a 3-layer MLP,
a tiny transformers Llama and a module reading a settings object and class attributes.

With no argument it measures this tree once; ``--value-mode`` compares, in this process, the value-read mode on
torch's stack for the whole export (round 65) with the module's call alone (round 66). Given source trees (``/work/wt/base64 .``), it runs one subprocess
per tree with ``PYTHONPATH`` set to that tree, alternating the trees for ``--rounds`` rounds, and prints the medians
side by side with their ratio to the first tree. Why subprocesses: two trees of this package cannot be imported in
one process; why alternating rounds: the machine may be loaded, so the trees see the same load and only ratios are
compared (a benchmark, not a timed test).

The worker part uses ``runtime.aten.compile`` alone, so it runs on older trees that lack this file (the driver runs
this file by its path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any


def _models(torch: Any) -> list[tuple[str, Any, tuple]]:
    """(name, module, example inputs) of the three models measured."""
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(3)]).eval()
    out = [("mlp3", mlp, (torch.randn(8, 64),))]
    try:
        import transformers as tf
    except ImportError:
        tf = None
    if tf is not None:
        cfg = tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=128, max_position_embeddings=64)
        out.append(("tiny_llama", tf.LlamaForCausalLM(cfg).eval(), (torch.randint(0, 128, (1, 8)),)))

    class Cfg:
        """A settings object: plain fields forward reads."""

        def __init__(self) -> None:
            self.scale = 2.0
            self.act = "gelu"
            self.eps = 1e-5
            self.depth = 3

    class Base(torch.nn.Module):
        shift = 0.25

    class Settled(Base):
        bias = 0.5
        gain = 1.5

        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(64, 64) for _ in range(3))
            self.cfg = Cfg()

        @property
        def width(self) -> int:
            return 64

        def forward(self, x: Any) -> Any:
            for layer in self.layers[: self.cfg.depth]:
                y = layer(x)
                y = torch.nn.functional.gelu(y) if self.cfg.act == "gelu" else torch.relu(y)
                x = y * self.cfg.scale + type(self).bias + self.shift
            return x * self.gain + self.cfg.eps + self.width

    out.append(("settings", Settled().eval(), (torch.randn(8, 64),)))
    return out


def worker(calls: int = 200, reps: int = 5, compiles: int = 3) -> dict[str, dict[str, float]]:
    """{model: {"compile_s": median CPU seconds of a compile of a fresh instance, "call_us": median per-call
    microseconds}} in this process. The first compile of each model warms torch's caches and is not timed.

    Why CPU time after ``gc.collect()``: a compile allocates enough for the collector's oldest generation to run in
    some compiles and not others (some 0.3 s of a tiny Llama's 0.5 s), which made wall times bimodal on a loaded
    machine; the collection is the process's, not the compile's."""
    import gc

    import torch

    from runtime.aten import compile

    torch.set_num_threads(1)   # (a loaded machine: torch's intra-op threads made an 8x64 matmul take ms)
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        sets = [_models(torch) for _ in range(compiles + 1)]
        for i, (name, _, x) in enumerate(sets[0]):
            compile(sets[0][i][1], x, streams=1, cuda_graph=False, device="cpu")   # (another instance: nothing reused)
            took = []
            for models in sets[1:]:
                gc.collect()
                t = time.process_time()
                step = compile(models[i][1], x, streams=1, cuda_graph=False, device="cpu")
                took.append(time.process_time() - t)
            for _ in range(20):
                step(*x)
            ts = []
            for _ in range(reps):
                t = time.process_time()
                for _ in range(calls):
                    step(*x)
                ts.append((time.process_time() - t) / calls * 1e6)
            out[name] = {"compile_s": statistics.median(took), "call_us": statistics.median(ts)}
    return out


def value_mode(rounds: int = 7) -> None:
    """In this process, alternating: compile CPU time with the value-read mode on torch's stack for the whole export
    and import (round 65) and for the module's call alone (``forward_only``, round 66), each a fresh instance after
    ``gc.collect()``; medians. Only this tree (it needs ``forward_only``)."""
    import contextlib
    import gc

    import torch

    from runtime.aten import compile, value_reads

    real = value_reads.watch_value_reads

    @contextlib.contextmanager
    def whole(torch: Any, *, forward_only: bool = False) -> Any:
        with real(torch, forward_only=False) as reads:
            yield reads

    torch.set_num_threads(1)
    names = [name for name, _m, _x in _models(torch)]
    took: dict[tuple[str, str], list[float]] = {}
    try:
        with torch.no_grad():
            for r in range(rounds + 1):
                for variant in (("whole", "forward") if r % 2 else ("forward", "whole")):
                    value_reads.watch_value_reads = whole if variant == "whole" else real
                    for name, m, x in _models(torch):
                        gc.collect()
                        t = time.process_time()
                        compile(m, x, streams=1, cuda_graph=False, device="cpu")
                        if r:   # (round 0 warms torch)
                            took.setdefault((name, variant), []).append(time.process_time() - t)
    finally:
        value_reads.watch_value_reads = real
    for name in names:
        w, f = (statistics.median(took[name, v]) for v in ("whole", "forward"))
        print(f"{name}: compile {w * 1e3:.1f} ms CPU with the value-read mode over the whole export, {f * 1e3:.1f} ms "
              f"over the module's call alone (x{f / w:.3f}; median of {rounds})", flush=True)


def drive(trees: list[str], rounds: int) -> None:
    """Alternate one worker subprocess per tree for ``rounds`` rounds; print medians and ratios to ``trees[0]``."""
    got: dict[str, list[dict[str, dict[str, float]]]] = {t: [] for t in trees}
    for r in range(rounds):
        for tree in (trees if r % 2 == 0 else trees[::-1]):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
            res = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker"], env=env,
                                 capture_output=True, text=True, check=True)
            got[tree].append(json.loads(res.stdout.strip().splitlines()[-1]))
    first = trees[0]
    for name in got[first][0]:
        for key, unit in (("compile_s", "CPU s per compile"), ("call_us", "CPU us per call")):
            meds = {t: statistics.median(g[name][key] for g in got[t]) for t in trees}
            cells = [f"{t}: {meds[t]:.3f}" + ("" if t == first else f" (x{meds[t] / meds[first]:.2f})")
                     for t in trees]
            print(f"{name} {unit}: " + "; ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> int:
    from runtime.tool_args import ToolParser, count_in  # (absolute: also run by its path)

    p = ToolParser(prog="python -m runtime.aten.bench_compile", description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs="*", help="source trees to compare (PYTHONPATH each); none: this process")
    p.add_argument("--rounds", type=count_in(1, 1000), default=3, help="alternating rounds (medians over them)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--value-mode", action="store_true",
                   help="this tree: the value-read mode over the whole export vs the module's call alone")
    a = p.parse_args(argv)   # (before torch is imported: --help and a usage error need none of it)
    for t in a.trees:
        if not os.path.isdir(os.path.join(t, "runtime", "aten")):
            p.error(f"tree {t!r} holds no runtime/aten/ folder: give a source tree of this project")
    if a.value_mode and a.trees:   # (the trees were ignored: this tree's value-read mode ran, seconds, as if compared)
        p.error(f"--value-mode measures this tree alone: give no source trees with it (got {' '.join(a.trees)})")
    if a.value_mode:
        value_mode(a.rounds)
    elif a.worker or not a.trees:
        print(json.dumps(worker()), flush=True)
    else:
        drive(a.trees, a.rounds)
    return 0


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)   # (run by path: this folder's modules, ``settings.py``..., must not shadow others)
    from runtime.tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.bench_compile"))
