"""Session 41's lead fixes, found by the H200 GPU suite: torch's lazily set SDP priority order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from runtime.aten import lazy_defaults  # noqa: E402

_ROOT = Path(__file__).resolve().parents[1]


class _FakeCuda:
    """``torch.cuda`` as a process with CUDA initialized (or not) sees it."""

    def __init__(self, initialized):
        self.initialized = initialized

    def is_available(self):
        return True

    def is_initialized(self):
        return self.initialized


def test_settle_makes_torchs_first_kernel_choice_only_where_cuda_is_up(monkeypatch):
    """The first CUDA SDPA kernel choice of a process sets the priority order (cuDNN first on Hopper): settled
    before the export's settings are read, once CUDA is initialized; a CPU-only process is not made to start CUDA."""
    calls, made = [], []
    real_zeros = torch.zeros

    def zeros(*shape, device=None, **kw):
        made.append(device)
        return real_zeros(*shape, **kw)

    monkeypatch.setattr(torch, "zeros", zeros)
    monkeypatch.setattr(torch, "_fused_sdp_choice", lambda q, k, v: calls.append(tuple(q.shape)) or 1)
    monkeypatch.setattr(torch, "cuda", _FakeCuda(False))
    lazy_defaults.settle_lazy_defaults(torch)
    assert calls == [] and made == []
    monkeypatch.setattr(torch, "cuda", _FakeCuda(True))
    lazy_defaults.settle_lazy_defaults(torch)
    assert calls == [(1, 1, 1, 8)] and made == ["cuda"]

    def no_kernel(q, k, v):
        raise RuntimeError("No available kernel. Aborting execution.")
    monkeypatch.setattr(torch, "_fused_sdp_choice", no_kernel)
    lazy_defaults.settle_lazy_defaults(torch)   # every SDP kernel turned off by the user: nothing to settle, no error


def test_program_settles_before_it_reads_the_settings(monkeypatch):
    """A stand-in for torch's lazy change (the priority order moved by the first settle, as on an H200), made on
    the CPU: settled before the export it is no change of forward's; the same change made inside the export
    (settle left out) is refused as one, so the order of the two steps is what this checks."""
    from runtime.aten import compile as aten_compile
    from runtime.aten.errors import AtenExecutorError

    order = list(torch._C._get_sdp_priority_order())
    moved = [order[-1], *order[:-1]]

    def lazily(torch_):   # (torch's flag is its own C++ static; the order itself stands for it here)
        if list(torch._C._get_sdp_priority_order()) == order:
            torch._C._set_sdp_priority_order(moved)

    class Attn(torch.nn.Module):
        def forward(self, q):
            lazily(torch)   # (where torch's first CUDA kernel choice happens: inside the export)
            return torch.nn.functional.scaled_dot_product_attention(q, q, q)

    q = torch.randn(1, 2, 4, 8)
    try:
        with pytest.raises(AtenExecutorError, match="set_sdp_priority_order"):
            aten_compile(Attn(), (q,), cuda_graph=False)
        torch._C._set_sdp_priority_order(order)
        monkeypatch.setattr(lazy_defaults, "settle_lazy_defaults", lazily)
        c = aten_compile(Attn(), (q,), cuda_graph=False)
        assert torch.equal(c(q), torch.nn.functional.scaled_dot_product_attention(q, q, q))
    finally:
        torch._C._set_sdp_priority_order(order)


@pytest.mark.gpu(backend="torch")
def test_the_first_cuda_attention_of_a_process_compiles():
    """In a fresh process (no SDPA ran on CUDA yet), compile a module whose forward is the first CUDA attention:
    on an H200 torch then moves the SDP priority order to cuDNN first, inside the export, and compile refused
    the module as leaving ``set_sdp_priority_order`` changed (session 41: f32 Mixtral, the GPU suite's first)."""
    code = (
        "import torch\n"
        "from runtime.aten import compile\n"
        "class A(torch.nn.Module):\n"
        "    def forward(self, q):\n"
        "        return torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)\n"
        "q = torch.randn(1, 2, 4, 16, device='cuda', dtype=torch.float16)\n"
        "c = compile(A(), (q,), streams=1, cuda_graph=True)\n"
        "got = c(q); torch.cuda.synchronize()\n"
        "assert torch.equal(got, A()(q)), 'differs'\n"
        "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", code], cwd=_ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-2000:]
