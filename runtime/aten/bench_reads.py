"""``python -m runtime.aten.bench_reads``: what the per-call check of the Python values ``forward`` reads
(``python_reads``, ``ModuleGuard.reads``) costs a compiled call whose values did not change, side by side with the
same compiled module without it (``reads=None``: main before round 63), and what the first call after a change costs
(one export of ``forward``: ``CompiledModule._prove_reads``); and, for modules with forward hooks, the per-call check
of the hooks' state (``hook_values``) as round 63 made it (the full fingerprint) and as round 64 does (identities
first). CPU, ``cuda_graph=False``.

Why a script: the check runs at every call, on the fast path; its price is a few identity checks per watched place,
and must stay microseconds. Ratios, not absolute times: the machine may be loaded, so each variant is timed in
alternating rounds and the median taken.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

SCALE = 2.0
CFG = {"eps": [1e-5], "act": "gelu"}


def small_model(torch: Any) -> Any:
    """A 3-layer MLP reading a global, a nested global container and a class attribute."""

    class MLP(torch.nn.Module):
        bias = 0.5

        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(64, 64) for _ in range(3))
            self.cfg = {"depth": [3]}

        def forward(self, x: Any) -> Any:
            for layer in self.layers:
                x = torch.nn.functional.gelu(layer(x)) * SCALE + type(self).bias
            return x + CFG["eps"][0]
    return MLP().eval()


def numpy_model(torch: Any) -> Any:
    """The small MLP reading three NumPy arrays (a 4 KiB table, two scales: ``byte_values`` compares their bytes at
    each call), or None without numpy."""
    try:
        import numpy as np
    except ImportError:
        return None

    class TableMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(64, 64) for _ in range(3))
            self.table = np.linspace(0.0, 1.0, 512)
            self.scales = [np.array([2.0]), np.array([0.5], dtype=np.float32)]

        def forward(self, x: Any) -> Any:
            for layer in self.layers:
                x = torch.nn.functional.gelu(layer(x)) * float(self.scales[0][0]) + float(self.table[3])
            return x * float(self.scales[1][0])
    return TableMLP().eval()


def tiny_llama(torch: Any) -> Any:
    """A small transformers Llama (2 layers, hidden 64), or None without transformers."""
    try:
        import transformers as tf
    except ImportError:
        return None
    cfg = tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=128, max_position_embeddings=64)
    return tf.LlamaForCausalLM(cfg).eval()


def _time(fn: Any, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def bench(torch: Any, name: str, module: Any, example: tuple, rounds: int = 7, n: int = 200) -> None:
    from runtime.aten import compile

    with torch.no_grad():
        step = compile(module, example, streams=1, cuda_graph=False, device="cpu")
        step(*example)
        with_reads = step.guard
        without = replace(with_reads, reads=None)
        places = len(with_reads.reads.labels) if with_reads.reads is not None else 0
        call = {True: [], False: []}
        check = {True: [], False: []}
        for _ in range(rounds):
            for on in (False, True):
                step.guard = with_reads if on else without
                call[on].append(_time(lambda: step(*example), n))
                check[on].append(_time(step.guard.unchanged, n * 10))
        step.guard = with_reads
        us = {k: statistics.median(v) * 1e6 for k, v in call.items()}
        cus = {k: statistics.median(v) * 1e6 for k, v in check.items()}
        ex = step.executor
        now, before = type(ex), type("SpecPerCall", (type(ex),), {"_out_spec": property(_spec_per_call)})
        spec: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for per_call in (True, False):
                ex.__class__ = before if per_call else now
                spec[per_call].append(_time(lambda: step(*example), n))
        ex.__class__ = now
        sus = {k: statistics.median(v) * 1e6 for k, v in spec.items()}
        print(f"{name}: {places} places watched; call {us[False]:.1f} us without the reads check, {us[True]:.1f} us "
              f"with it (x{us[True] / us[False]:.3f}); guard.unchanged() {cus[False]:.2f} -> {cus[True]:.2f} us; "
              f"call {sus[True]:.1f} us reading ExportedProgram.call_spec per call (before round 64), {sus[False]:.1f} "
              f"us reading it once (x{sus[False] / sus[True]:.3f})")


def _spec_per_call(executor: Any) -> Any:
    """The executor's output structure read from the export at each call, as ``Executor.collect`` did before round
    64 (torch's ``call_spec`` getter defines a ``NamedTuple`` class at each read)."""
    return getattr(getattr(executor.program.exported, "call_spec", None), "out_spec", None)


class _Fingerprinted:
    """Round 63's per-call check of the hooks' state (``hook_values``): the full fingerprint at every call, for the
    side-by-side comparison with round 64's identities first (``HookValues.changed``)."""

    def __init__(self, reads: Any) -> None:
        self.reads = reads

    def changed(self, torch: Any) -> tuple | None:
        now = self.reads.now(torch)
        return None if now == self.reads.seen else now


def hooked(torch: Any, module: Any, layers: list[Any]) -> Any:
    """``module`` with, on each of ``layers``, a steering hook reading a closure's nested config, a callable tap
    object and a pre-hook: the same three hooks on every layer, as a model's hooks usually are."""
    cfg = {"scale": [1.0], "mode": "add", "steps": (1, 2)}

    class Tap:
        def __init__(self) -> None:
            self.k = 1.0
            self.enabled = True

        def __call__(self, mod: Any, args: Any, out: Any) -> None:
            return None

    def steer(mod: Any, args: Any, out: Any) -> Any:
        return out * cfg["scale"][0] if isinstance(out, torch.Tensor) else out

    tap = Tap()
    for layer in layers:
        layer.register_forward_hook(steer)
        layer.register_forward_hook(tap)
        layer.register_forward_pre_hook(lambda mod, args: None)
    return module


def bench_hooks(torch: Any, name: str, module: Any, example: tuple, rounds: int = 7, n: int = 200,
                after_compile: Any = None) -> None:
    """A compiled call of a module with forward hooks, with round 63's check of their state (the fingerprint per
    call) and round 64's (identities first), alternating; and each check alone. ``after_compile(module)`` adds hooks
    after compile (an eager call that installs them), which the next call proves (``_prove_calls``)."""
    from runtime.aten import compile

    with torch.no_grad():
        step = compile(module, example, streams=1, cuda_graph=False, device="cpu")
        step(*example)
        if after_compile is not None:
            after_compile(module)
            step(*example)
        reads = step.hook_reads
        full = _Fingerprinted(reads)
        call = {False: [], True: []}
        check = {False: [], True: []}
        for _ in range(rounds):
            for new in (False, True):
                step.hook_reads = reads if new else full
                call[new].append(_time(lambda: step(*example), n))
                check[new].append(_time(lambda: step.hook_reads.changed(torch), n * 10))
        step.hook_reads = reads
        us = {k: statistics.median(v) * 1e6 for k, v in call.items()}
        cus = {k: statistics.median(v) * 1e6 for k, v in check.items()}
        print(f"{name} with hooks: {len(reads.labels)} hooks; call {us[False]:.1f} us with the fingerprint per call, "
              f"{us[True]:.1f} us identities first (x{us[True] / us[False]:.3f}); the check {cus[False]:.2f} -> "
              f"{cus[True]:.2f} us (x{cus[True] / cus[False]:.3f})")


def bench_proof(torch: Any) -> None:
    """The first call after a change (one export), then the calls after (the new baseline: fast path again)."""
    from runtime.aten import compile

    global SCALE
    m = small_model(torch)
    x = torch.randn(8, 64)
    with torch.no_grad():
        step = compile(m, (x,), streams=1, cuda_graph=False, device="cpu")
        step(x)
        fast = _time(lambda: step(x), 200)
        CFG["act"] = "relu"   # (read by no forward path: the very program again)
        t = time.perf_counter()
        step(x)
        first = time.perf_counter() - t
        after = _time(lambda: step(x), 200)
        CFG["act"] = "gelu"
        SCALE = 3.0
        t = time.perf_counter()
        try:
            step(x)
        except Exception as exc:  # noqa: BLE001 - the refusal is the point
            refused = f"refused ({type(exc).__name__})"
        else:
            refused = "taken"
        first_refused = time.perf_counter() - t
        t = time.perf_counter()
        try:
            step(x)
        except Exception:  # noqa: BLE001 - remembered: no export
            pass
        again = time.perf_counter() - t
        SCALE = 2.0
    print(f"proof: unchanged call {fast * 1e6:.1f} us; first call after an inert change {first * 1e3:.1f} ms (one "
          f"export), calls after {after * 1e6:.1f} us; SCALE 2.0 -> 3.0 {refused} in {first_refused * 1e3:.1f} ms, "
          f"again {again * 1e3:.2f} ms (remembered)")


def main(argv: list[str] | None = None) -> int:
    from ..tool_args import ToolParser, doc_summary

    ap = ToolParser(prog="python -m runtime.aten.bench_reads", description=doc_summary(__doc__))
    ap.parse_args(argv)   # before torch is imported: --help and a usage error need none of it
    import torch

    torch.manual_seed(0)
    bench(torch, "small MLP", small_model(torch), (torch.randn(8, 64),))
    table = numpy_model(torch)
    if table is not None:
        bench(torch, "small MLP + NumPy arrays", table, (torch.randn(8, 64),))
    llama = tiny_llama(torch)
    if llama is not None:
        bench(torch, "tiny Llama", llama, (torch.randint(0, 128, (1, 16)),), n=50)
    small = small_model(torch)
    bench_hooks(torch, "small MLP", hooked(torch, small, list(small.layers)), (torch.randn(8, 64),))
    llama = tiny_llama(torch)
    if llama is not None:
        bench_hooks(torch, "tiny Llama", hooked(torch, llama, list(llama.model.layers)),
                    (torch.randint(0, 128, (1, 16)),), n=50)
        ids = torch.randint(0, 128, (1, 16))   # (transformers 5's capturing hooks, installed by an eager call)
        bench_hooks(torch, "tiny Llama (output_hidden_states=True once)", tiny_llama(torch), (ids,), n=50,
                    after_compile=lambda m: m(ids, output_hidden_states=True))
    bench_proof(torch)
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.bench_reads"))
