"""memplan's arena vs PyTorch's caching allocator on the same forward pass (one JSON line).

    python -m memplan.importers.torch_compare transformer [--batch 8] [--device cuda]

Why: the plan's arena is a claim about memory; the honest check is the peak PyTorch itself allocates for
the same forward pass. The model (built here in code, no torchvision) is exported, imported and planned
with memplan; then, where CUDA is available, it runs once to warm up (cuBLAS/cuDNN workspaces), the peak
counter is reset, and ``torch.cuda.max_memory_allocated()`` is read over one more forward pass.

Fields: ``memplan_arena_bytes`` (inputs and outputs included, as the contract plans them),
``torch_activation_bytes`` = peak allocated minus what was allocated before the pass (parameters, the
input, workspaces), plus the input bytes, so both numbers count the same tensors; parameter bytes are
reported separately and excluded from both. ``torch_activation_bytes`` is the eager module, whose Python
locals keep tensors alive to the end of ``forward``; ``torch_graph_activation_bytes`` runs the exported
graph (``ExportedProgram.module()``), whose generated code drops every value after its last use, the
same op sequence memplan planned. Without CUDA the torch fields are null.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

MODELS = ("transformer", "resnet18", "mlp")


def build(name: str, batch: int):
    """(module, example inputs) for a model name; sizes are small enough for a CPU export."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "transformer":
        d, heads, seq = 512, 8, 256

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
                self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
                self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

            def forward(self, x):
                b, s, _ = x.shape
                q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
                q = q.view(b, s, heads, d // heads).transpose(1, 2)
                k = k.view(b, s, heads, d // heads).transpose(1, 2)
                v = v.view(b, s, heads, d // heads).transpose(1, 2)
                att = (q @ k.transpose(-2, -1)) * (d // heads) ** -0.5
                att = att.softmax(dim=-1)
                y = (att @ v).transpose(1, 2).reshape(b, s, d)
                x = x + self.proj(y)
                return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))

        return Block().eval(), (torch.randn(batch, seq, d),)
    if name == "resnet18":

        class Basic(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.b1 = nn.BatchNorm2d(cout)
                self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.b2 = nn.BatchNorm2d(cout)
                self.down = None
                if stride != 1 or cin != cout:
                    self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

            def forward(self, x):
                idt = x if self.down is None else self.down(x)
                y = torch.relu(self.b1(self.c1(x)))
                return torch.relu(self.b2(self.c2(y)) + idt)

        class ResNet18(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                          nn.MaxPool2d(3, 2, 1))
                layers, cin = [], 64
                for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                    layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
                    cin = cout
                self.layers = nn.Sequential(*layers)
                self.fc = nn.Linear(512, 1000)

            def forward(self, x):
                x = self.layers(self.stem(x))
                return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

        return ResNet18().eval(), (torch.randn(batch, 3, 224, 224),)
    if name == "mlp":
        return nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                             nn.Linear(4096, 1024)).eval(), (torch.randn(batch, 1024),)
    raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")


def compare(name: str, batch: int = 8, device: str | None = None) -> dict[str, Any]:
    import torch

    import memplan

    from .torch import from_torch

    module, inputs = build(name, batch)
    t0 = time.perf_counter()
    graph = from_torch(module, inputs, name=f"{name}-b{batch}")
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = memplan.plan(graph)
    t_plan = time.perf_counter() - t0
    param_bytes = sum(p.numel() * p.element_size() for p in module.parameters()) + \
        sum(b.numel() * b.element_size() for b in module.buffers())
    input_bytes = sum(x.numel() * x.element_size() for x in inputs)
    row: dict[str, Any] = {
        "model": name, "batch": batch, "nodes": len(graph.nodes), "tensors": len(graph.tensors),
        "param_bytes": int(param_bytes), "input_bytes": int(input_bytes),
        "memplan_arena_bytes": plan.arena_bytes, "memplan_lower_bound_bytes": plan.lower_bound_bytes,
        "memplan_solver": plan.solver.get("name"), "import_s": round(t_import, 3), "plan_s": round(t_plan, 3),
        "device": None, "torch_max_allocated_bytes": None, "torch_activation_bytes": None,
        "torch_over_memplan": None, "torch_graph_activation_bytes": None, "torch_graph_over_memplan": None,
    }
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda") and torch.cuda.is_available():
        module = module.to(dev)
        xs = tuple(x.to(dev) for x in inputs)
        peak, act = _measure(torch, module, xs, input_bytes)
        # the exported graph itself: FX code drops each value after its last use, as memplan's lifetimes do
        graph_module = torch.export.export(module, xs).module()
        _, graph_act = _measure(torch, graph_module, xs, input_bytes)
        arena = plan.arena_bytes or 1
        row.update(device=torch.cuda.get_device_name(), torch_max_allocated_bytes=int(peak),
                   torch_activation_bytes=int(act), torch_over_memplan=round(act / arena, 4),
                   torch_graph_activation_bytes=int(graph_act),
                   torch_graph_over_memplan=round(graph_act / arena, 4))
    return row


def _measure(torch, fn, xs: tuple, input_bytes: int) -> tuple[int, int]:
    """(peak allocated, activation bytes) of one no-grad call after a warm-up call."""
    with torch.no_grad():
        fn(*xs)  # warm-up: kernels, cuBLAS/cuDNN workspaces
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.no_grad():
        out = fn(*xs)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del out
    return int(peak), int(peak - base + input_bytes)


#: the largest --batch: example inputs are built on the CPU (resnet18: 0.6 MB per sample)
MAX_BATCH = 1024


def _device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``."""
    index = text.removeprefix("cuda:")
    if text in ("cpu", "cuda") or (index != text and index.isascii() and index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"unknown device {text!r} (cpu, cuda or cuda:N)")


def main(argv: list[str] | None = None) -> int:
    from .. import argtypes

    ap = argtypes.CommandParser(prog="python -m memplan.importers.torch_compare",
                                description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=MODELS + ("all",),
                    help="a transformer block, a ResNet-18-like network, an MLP, or all three (a JSON line each)")
    ap.add_argument("--batch", type=argtypes.at_most(MAX_BATCH, "batch"), default=8,
                    help=f"batch size of the example input (default 8, at most {MAX_BATCH})")
    ap.add_argument("--device", type=_device, default=None,
                    help="cuda (default when available) or cpu (no measurement)")
    args = ap.parse_args(argv)
    from ..errors import MemplanError

    try:
        if args.device is not None and args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise MemplanError(f"--device {args.device}: CUDA is not available (use --device cpu, "
                                   "which plans without measuring)")
            count = torch.cuda.device_count()
            if args.device != "cuda" and int(args.device.partition(":")[2]) >= count:
                raise MemplanError(f"--device {args.device}: this machine has {count} CUDA device(s)")
        for name in (MODELS if args.model == "all" else (args.model,)):
            print(json.dumps(compare(name, args.batch, args.device), sort_keys=True), flush=True)
    except MemplanError as exc:
        print(f"memplan: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
