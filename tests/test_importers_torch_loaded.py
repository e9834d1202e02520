"""A torch.export program saved to a .pt2 file and loaded back imports to the same graph as the program
it was saved from: views at storage offsets keep their offsets (deserialized fake tensors share no storage
and all lie at offset 0; such views were imported as covering their whole parent, and the ATen executor
refused torch's real view at compile)."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402


class SelectSlice(nn.Module):        # the reviewer's case: x[1][2:] of an intermediate, t[:, 3:] feeding an op
    def forward(self, x):
        y = x * 2
        return y[1][2:] * 3, y[:, 3:].sum(0)


class NarrowUnbind(nn.Module):
    def forward(self, x):
        y = x + 1
        a, b, c, d = y.unbind(0)
        return y.narrow(1, 2, 4) * 2, (c - d) * b, a.sum()


class SplitDiagonal(nn.Module):
    def forward(self, x):
        y = x.exp()
        p, q = y.split([3, 5], dim=1)
        return y.diagonal(offset=2) + 1, q.t() * 2, p.sum()


class AsStridedOffset(nn.Module):
    def forward(self, x):
        y = x * 3
        return y.as_strided((2, 3), (5, 2), 7) + 1, y.reshape(32)[5:20:3] * 2


class ViewsOfViews(nn.Module):
    def forward(self, x):
        y = x.tanh()
        z = y[1:, 2:][1:].select(1, 3)     # a select of a slice of a slice
        w = y.unsqueeze(0)[:, 2, 1:].permute(1, 0)[3:]
        return z * 2, w + 1, y[3][4:].unsqueeze(1).expand(4, 3) * 1


class InPlaceOnSlice(nn.Module):
    def forward(self, x):
        y = x * 2
        y[:, 3:].mul_(4)
        y[2].add_(1)
        return y * 1, y[1][5:] + 0


class ScattersOfViews(nn.Module):
    """A *_scatter result keeps its input's storage offset (and storage size): its views count from there;
    an as_strided_scatter of an expand is laid out again by the importer, and so are its views."""

    def forward(self, x):
        z = torch.slice_scatter((x * 2)[:, 2:], torch.ones(4, 3), 1, 0, 3)
        w = torch.as_strided_scatter(x[:, :1].expand(4, 8), torch.ones(2, 2), (2, 2), (1, 1), 1)
        return z[1:] * 1, w[1][2:] + 1


class DtypeViews(nn.Module):
    def forward(self, x):
        y = (x * 2)[:, 2:].contiguous()[1:]
        return torch.view_as_complex(y.reshape(3, 3, 2)) * 2, y.view(torch.int32)[1] + 1


MODULES = [SelectSlice, NarrowUnbind, SplitDiagonal, AsStridedOffset, ViewsOfViews, InPlaceOnSlice,
           ScattersOfViews, DtypeViews]


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_a_loaded_program_imports_to_the_graph_it_was_saved_from(cls):
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    ep = torch.export.export(cls(), (x,))
    loaded = _saved_and_loaded(ep)
    direct, back = memplan.from_torch(ep), memplan.from_torch(loaded)
    assert back.to_dict() == direct.to_dict()
    # a negative control: the modules do view their intermediates at nonzero offsets
    assert any(t.view_offset > 0 for t in direct.tensors)
    c = compile(loaded, (x,), streams=1, poison=True)
    assert c.graph.to_dict() == direct.to_dict()
    for xs in (x, torch.randn(4, 8)):
        ref = cls()(xs)
        out = c(xs)
        for o, r in zip(out if isinstance(out, tuple) else (out,), ref if isinstance(ref, tuple) else (ref,)):
            assert o.shape == r.shape and torch.equal(o, r)


def test_a_loaded_program_imports_like_its_source_through_the_cli(tmp_path):
    from memplan.cli import main

    ep = torch.export.export(ViewsOfViews(), (torch.randn(4, 8),))
    path = tmp_path / "views.pt2"
    torch.export.save(ep, str(path))
    out = tmp_path / "g.json"
    assert main(["import", str(path), "-o", str(out), "-q", "--name", "v"]) == 0
    assert memplan.load_graph(str(out)).to_dict() == memplan.from_torch(ep, name="v").to_dict()


def test_views_of_a_scatter_result_at_a_storage_offset_run_as_eager():
    """A root whose elements start at a storage offset (slice_scatter of a slice) owns its storage's bytes
    from 0: its views were placed counting from its first element, and the executor refused the program
    (in memory, too)."""
    x = torch.randn(4, 8)
    g = memplan.from_torch(ScattersOfViews(), (x,))
    assert (g.tensor("slice_scatter").size, g.tensor("slice_3").view_offset) == (128, 40)
    c = compile(ScattersOfViews(), (x,), streams=1, poison=True)
    assert all(torch.equal(o, r) for o, r in zip(c(x), ScattersOfViews()(x)))


class StateOutsideTheStateDict(nn.Module):
    """A non-persistent buffer (no state-dict entry: an export keeps it among its constants) and a lifted
    tensor constant (a plain tensor attribute), beside a persistent buffer and parameters."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.register_buffer("scale", torch.randn(8), persistent=False)
        self.register_buffer("shift", torch.randn(8))
        self.offset = torch.randn(8)

    def forward(self, x):
        return self.lin(x) * self.scale + self.offset - self.shift


def test_exported_programs_with_state_outside_the_state_dict_run_as_eager():
    """Was refused (``weight 'b_scale' (scale) is in neither the state dict nor the program's constants``):
    the executor looked a buffer up in the state dict only, and took the module's own non-persistent
    buffers only when given the module; an ExportedProgram, in memory or loaded from a .pt2, has them only
    among its constants."""
    torch.manual_seed(0)
    m, x = StateOutsideTheStateDict().eval(), torch.randn(4, 8)
    ep = torch.export.export(m, (x,))
    with torch.no_grad():
        ref = m(x)
    for program in (ep, _saved_and_loaded(ep)):
        assert torch.equal(compile(program, (x,), streams=1, poison=True)(x), ref)


def test_a_loaded_decoder_with_a_rotary_embedding_runs_as_eager():
    """A transformers Llama saved and loaded back: its rotary ``inv_freq`` is a non-persistent buffer
    (was refused as a missing weight); the executor's logits equal eager's and the in-memory program's."""
    need("transformers")
    from aten_models import tiny_lm

    lm, ids = tiny_lm("llama"), torch.randint(0, 128, (1, 8), generator=torch.Generator().manual_seed(1))
    ep = torch.export.export(lm, (ids,))
    loaded = _saved_and_loaded(ep)
    assert "lm.model.rotary_emb.inv_freq" not in loaded.state_dict    # the case: only among the constants
    assert "lm.model.rotary_emb.inv_freq" in loaded.constants
    with torch.no_grad():
        ref = lm(ids)
    assert memplan.from_torch(loaded).to_dict() == memplan.from_torch(ep).to_dict()
    outs = [compile(p, (ids,), streams=1, poison=True)(ids) for p in (ep, loaded)]
    assert torch.equal(outs[0], ref) and torch.equal(outs[1], ref)
