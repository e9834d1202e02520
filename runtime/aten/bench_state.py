"""``python -m runtime.aten.bench_state``: what putting the module's state back around compile's eager comparison run
(``flag_reads._both``) costs, side by side: round 69's ``ModuleState`` (every parameter and buffer cloned up front,
copied back after) and round 70's (each storage saved at its first write, ``storage_saves``). Models: a tiny
transformers Llama and torchvision's resnet18 (eval, and train: its BatchNorms write their running stats), on the CPU
or, with ``--device cuda``, on the GPU (where the save's checksums and copies run as kernels, timed synchronized).

Why a script: the saving is memory at compile (bytes of tensor storage held extra, counted exactly), its price is the
dispatch mode's per-op cost in the eager run. Times are medians of alternating rounds (the machine may be loaded):
read ratios.
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def _models(torch: Any) -> list[tuple[str, Any, tuple]]:
    out = []
    try:
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
        torch.manual_seed(0)
        out.append(("llama-tiny", LlamaForCausalLM(cfg).eval(), (torch.randint(0, 32000, (1, 16)),)))
    except ImportError:
        pass
    try:
        import torchvision

        x = torch.randn(2, 3, 64, 64)
        out.append(("resnet18-eval", torchvision.models.resnet18(weights=None).eval(), (x,)))
        out.append(("resnet18-train", torchvision.models.resnet18(weights=None).train(), (x,)))
    except ImportError:
        pass
    return out


def _old(torch: Any, module: Any, args: tuple) -> int:
    """Round 69: every dense parameter and buffer cloned, eager run, each copied back; the bytes held extra."""
    with torch.no_grad():
        tensors = {id(t): t for t in [*module.parameters(), *module.buffers()]}
        saved = [(t, t.detach().clone()) for t in tensors.values()]
        module(*args)
        for t, was in saved:
            t.copy_(was)
    return sum(was.untyped_storage().nbytes() for _t, was in saved)


def _new(torch: Any, module: Any, args: tuple) -> int:
    """Round 70: ``ModuleState`` and its save before write; the bytes held extra at the run's end (its peak)."""
    from .module_state import ModuleState

    state = ModuleState(torch, module)
    with torch.no_grad(), state.watching():
        module(*args)
    held = state.saves.saved_bytes + sum(c.untyped_storage().nbytes() for _t, c in state.tensors)
    state.restore()
    return held


def main(argv: list[str] | None = None) -> int:
    from ..tool_args import ToolParser, doc_summary

    ap = ToolParser(prog="python -m runtime.aten.bench_state", description=doc_summary(__doc__))
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="where the models run (default cpu; cuda: the first GPU torch sees)")
    ns = ap.parse_args(argv)   # before torch is imported: --help and a usage error need none of it
    import torch

    if ns.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device")
    dev = torch.device(ns.device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    rounds = 7
    print(f"device: {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}")
    print(f"{'model':16} {'weights MB':>10} {'extra MB old':>12} {'extra MB new':>12} {'ms old':>8} {'ms new':>8} "
          f"{'ms eager':>8}")
    for name, module, args in _models(torch):
        module = module.to(dev)
        args = tuple(a.to(dev) for a in args)
        times: dict[str, list[float]] = {"old": [], "new": [], "eager": []}
        held = {}
        with torch.no_grad():
            before = [t.clone() for t in module.state_dict().values()]
        for _ in range(rounds):
            for kind in ("old", "new", "eager"):
                sync()
                start = time.perf_counter()
                if kind == "eager":
                    with torch.no_grad():
                        module(*args)
                else:
                    held[kind] = (_old if kind == "old" else _new)(torch, module, args)
                sync()
                times[kind].append(time.perf_counter() - start)
            if module.training:   # (the eager lap's writes undone before the next round)
                with torch.no_grad():
                    for t, b in zip(module.state_dict().values(), before):
                        t.copy_(b)
        weights = sum(t.untyped_storage().nbytes() for t in {id(t): t for t in module.state_dict().values()}.values())
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"{name:16} {weights / 1e6:10.2f} {held['old'] / 1e6:12.2f} {held['new'] / 1e6:12.4f} "
              f"{med['old']:8.1f} {med['new']:8.1f} {med['eager']:8.1f}")
    return 0


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.bench_state"))
