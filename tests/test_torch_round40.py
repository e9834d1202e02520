"""torch importer, round 40: what an op touches is planned, in a loaded program as in memory; torch's cache directory.

- An ``as_strided`` over a weight that is a slice of a larger storage (``arange(10.)[2:6].as_strided((2,), (1,), 4)``)
  counts its offset from the storage's start: in memory the weight kept its storage's 40 bytes and the view lay at
  byte 16; loaded from a ``.pt2`` (fake tensors at offset 0 of storages of their own) it was planned at 16 bytes
  and the view, which reads bytes 16..24 of the storage, as the whole 16. A loaded program's weights and inputs
  now take the layouts of the tensors saved with it (``state_dict``, ``constants``, ``example_inputs``), sharing
  and all; and a view past its root's bytes grows the root instead of claiming the root alone.
- A second ``load_exported`` (or ``from_torch``) after torch failed to create its cache directory blamed the file
  (torch was left half-imported): the directory is made before torch imports ``torch._dynamo``, so every call says
  the same, and the first after it is fixed works.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from cli_contract import run_memplan
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch_saved import rows as _rows  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _touched(t: torch.Tensor) -> int:
    """Bytes of its storage an op on ``t`` touches, from the storage's start."""
    return (t.storage_offset() + sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1) * t.element_size()


class StridedWeight(nn.Module):
    """``as_strided`` over a weight slice: its offset counts from the weight's storage."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.arange(10.0)[2:6])

    def forward(self, x):
        return x + self.p.as_strided((2,), (1,), 4)


def test_as_strided_over_a_weight_slice_is_planned_as_it_reads_when_loaded():
    m, x = StridedWeight(), torch.ones(2)
    ep = torch.export.export(m, (x,))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    t = {r.id: r for r in loaded.tensors}
    read = m.p.as_strided((2,), (1,), 4)
    assert (t["as_strided"].view_of, t["as_strided"].view_offset, t["as_strided"].size) == ("p_p", 16, 8)
    assert t["p_p"].size >= _touched(read) == 24


def test_a_loaded_strided_weight_runs_as_eager():
    m, x = StridedWeight(), torch.randn(2)
    c = compile(_saved_and_loaded(torch.export.export(m, (x,))), poison=True)
    for _ in range(2):
        x = torch.randn(2)
        assert torch.equal(c(x), m(x))


class SharedWeights(nn.Module):
    """Two buffers on one storage, read after a write to the first."""

    def __init__(self):
        super().__init__()
        base = torch.arange(8.0)
        self.register_buffer("a", base[:4])
        self.register_buffer("b", base[2:6])

    def forward(self, x):
        self.a.add_(x)
        return self.b * 2


def test_weights_sharing_a_storage_share_it_when_loaded():
    ep = torch.export.export(SharedWeights(), (torch.ones(4),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    b = next(t for t in loaded.tensors if t.id == "b_b")
    assert (b.view_of, b.view_offset, b.size) == ("b_a", 8, 16)
    # the read of b is ordered after the write to a, whose bytes it shares
    mul = next(n for n in loaded.nodes if n.op.startswith("mul"))
    assert any(i.startswith("add_") for i in mul.inputs), mul.inputs


class StridedInput(nn.Module):
    def forward(self, x):
        return x.as_strided((2,), (1,), 6) * 2


def test_as_strided_over_an_input_keeps_its_example_layout_when_loaded():
    x = torch.arange(20.0)[3:5]
    ep = torch.export.export(StridedInput(), (x,))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    t = {r.id: r for r in loaded.tensors}
    assert t["x"].size >= _touched(x.as_strided((2,), (1,), 6)) == 32
    assert (t["as_strided"].view_offset, t["as_strided"].size) == (24, 8)


def test_a_view_past_its_root_grows_the_root():
    # a loaded program without its example inputs: the input's layout is lost, the view's bytes are not
    ep = _saved_and_loaded(torch.export.export(StridedInput(), (torch.arange(20.0)[3:5],)))
    ep._example_inputs = None
    t = {r.id: r for r in memplan.from_torch(ep).tensors}
    assert (t["as_strided"].view_of, t["as_strided"].view_offset, t["as_strided"].size) == ("x", 24, 8)
    assert t["x"].size >= 32


_TWICE = textwrap.dedent("""
    import os, sys, torch
    import memplan
    from memplan.importers.torch import load_exported
    class D(torch.nn.Module):
        def forward(self, x):
            return x * 2
    call = (lambda: load_exported(sys.argv[1])) if sys.argv[2] == "load" else \\
        (lambda: memplan.from_torch(D(), (torch.ones(3),)))
    for k in range(3):
        try:
            call()
            print("ok")
        except memplan.errors.MemplanError as exc:
            print(type(exc).__name__, exc)
        if k == 1:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = sys.argv[3]
""")


@pytest.mark.parametrize("how", ["load", "export"])
def test_a_cache_directory_error_is_the_same_on_every_call(tmp_path, how):
    program = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(nn.Identity(), (torch.ones(4),)), str(program))
    blocker = tmp_path / "afile"
    blocker.write_text("")
    env = {**os.environ, "PYTHONPATH": ROOT, "TORCHINDUCTOR_CACHE_DIR": str(blocker / "sub")}
    r = subprocess.run([sys.executable, "-c", _TWICE, str(program), how, str(tmp_path / "cache")], env=env,
                       capture_output=True, text=True, timeout=180)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 3, r.stdout + r.stderr
    assert lines[0] == lines[1] and lines[0].startswith("MemplanError torch cannot create the cache directory")
    assert "TORCHINDUCTOR_CACHE_DIR" in lines[0] and "not a torch.export program" not in lines[1]
    assert lines[2] == "ok"


class OutIntoEmpty(nn.Module):
    def forward(self, x):
        y = torch.empty(0)
        torch.add(x, 1, out=y)
        return y * 2


class Resized(nn.Module):
    def forward(self, x):
        y = x * 2
        y.resize_(8)
        y.fill_(1)
        return y


@pytest.mark.parametrize("module", [OutIntoEmpty(), Resized()], ids=["out", "resize_"])
def test_a_tensor_written_in_place_is_planned_at_what_the_write_touches_when_loaded(module):
    ep = torch.export.export(module, (torch.ones(4),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    sizes = {t.id: t.size for t in loaded.tensors}
    for n in loaded.nodes:
        for out, written in n.inplace:
            assert sizes[written] >= sizes[out], (n.id, written, out)


class Rows4(nn.Module):
    def forward(self, x):
        return x.reshape(-1, 4) * 2


def _derived_program():
    from torch.export import Dim

    return torch.export.export(Rows4(), (torch.randn(8),), dynamic_shapes={"x": {0: 4 * Dim("k", min=1, max=16)}})


def test_a_dimension_that_is_an_expression_of_one_symbol_is_named_by_its_input():
    from memplan.errors import GraphError
    from memplan.importers.torch import sized_inputs

    loaded = _saved_and_loaded(_derived_program())
    args, _ = sized_inputs(loaded, None, {"x.0": 12})
    assert tuple(args[0].shape) == (12,)
    sizes = {t.id: t.size for t in memplan.from_torch(loaded, args).tensors}
    assert sizes == {"x": 48, "reshape": 48, "mul": 48}
    with pytest.raises(GraphError, match=r"--dim x\.0=13: input dimension x\.0 is 4\*s\d+, which no integer"):
        sized_inputs(loaded, None, {"x.0": 13})


def test_the_cli_takes_a_derived_dimension_by_its_input(tmp_path, capsys):
    """In-process (a subprocess spent seconds importing torch); ``memplan import`` through the real entry point is
    test_onnx_round31_constant_inits's and test_torch_round39's."""
    program = tmp_path / "m.pt2"
    torch.export.save(_derived_program(), str(program))
    out = tmp_path / "g.json"
    code, _out, err = run_memplan(capsys, ["import", program, "-o", out, "--dim", "x.0=12", "-q"])
    assert code == 0, err
    assert {t.id: t.size for t in memplan.load_graph(str(out)).tensors}["x"] == 48
