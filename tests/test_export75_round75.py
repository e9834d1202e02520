"""Round 75 (export75): torch.export programs that stress the importer.

- A dynamic program holding a tensor literal (``torch.tensor([0, 0])``: an index list, traced as ``lift_fresh_copy``
  then ``detach_``), saved and loaded, could not be specialized: ``torch.export.load`` gives tensor constants as views
  of the storage it read them into, and exporting ``ep.module()`` again refused ``detach_`` of a view ("Can't detach
  views in-place"), so ``from_torch(loaded, inputs)``, ``memplan import --dim`` and ``runtime.aten.compile(loaded,
  inputs)`` all failed where the program in memory planned; so did importing a loaded fixed-size program whose
  ``nonzero`` is bounded by ``torch._check``, which is exported again to take its bounds.
- An example input for a ``Dim.AUTO`` dimension that export fixed (recorded as a SymInt of constant value) was not
  refused as other fixed dimensions are ("fixes it at 3"), but by torch's derived guard, naming neither.
- A guard failure of a program exported again was placed "(at module.py:1794 in _call_impl: ...)", nn.Module's call.
- A tensor literal inside a ``torch.no_grad()`` block was refused as the block writing its operand in place; once
  not, a literal the block returned was planned as a view of its lifted constant (a weight), written by a later
  in-place op: the compiled module's next call read the written constant; and a literal and its view returned by
  the block were planned apart (a write to the one missed the other).
"""

from __future__ import annotations

import json

import pytest
from needs import need
from torch_saved import saved_and_loaded

torch = need("torch")

from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import from_torch  # noqa: E402


class _IndexLiteral(torch.nn.Module):
    """``x * 1`` with ones added at row 0 twice through an index-list literal (a lifted tensor constant)."""

    def forward(self, x):
        v = x * 1
        v.index_add_(0, torch.tensor([0, 0]), torch.ones(2, x.shape[1]))
        return v


def _dynamic_index_literal():
    return torch.export.export(_IndexLiteral(), (torch.randn(4, 3),), dynamic_shapes=({0: torch.export.Dim.AUTO},))


def test_a_loaded_dynamic_program_with_a_tensor_literal_is_specialized_as_in_memory():
    ep = _dynamic_index_literal()
    loaded = saved_and_loaded(ep)
    args = (torch.randn(6, 3),)
    in_memory = json.dumps(from_torch(ep, args).to_dict(), sort_keys=True)
    assert json.dumps(from_torch(loaded, args).to_dict(), sort_keys=True) == in_memory
    assert loaded.constants["lifted_tensor_0"]._base is not None   # (still the loaded program's own tensor)


def test_memplan_import_of_a_dynamic_pt2_with_a_tensor_literal_takes_dim(tmp_path, capsys):
    path = tmp_path / "literal.pt2"
    torch.export.save(_dynamic_index_literal(), str(path))
    out = tmp_path / "literal.json"
    assert main(["import", str(path), "-o", str(out), "--dim", "x.0=6", "-q"]) in (0, None)
    assert capsys.readouterr().err == ""
    sizes = {t["id"]: t["size"] for t in json.loads(out.read_text())["tensors"]}
    assert sizes["x"] == sizes["index_add_"] == 6 * 3 * 4


class _BoundedLiteral(torch.nn.Module):
    """A ``nonzero`` bounded by an assert (a data-dependent size) next to tensor literals."""

    def forward(self, x):
        y = x.nonzero()
        torch._check(y.shape[0] <= 3)
        return y + torch.tensor([1]), x[torch.tensor([0, 1])] * 2


def test_a_loaded_program_of_a_bounded_size_with_a_tensor_literal_is_exported_again():
    # (the loaded program is exported again to take its bounds from its own asserts: it failed the same way)
    ep = torch.export.export(_BoundedLiteral(), (torch.tensor([1.0, 0.0, 2.0, 0.0]),))
    sizes = [t.size for t in from_torch(ep).tensors]
    assert [t.size for t in from_torch(saved_and_loaded(ep)).tensors] == sizes


class _Rows3(torch.nn.Module):
    def forward(self, x):
        return x.reshape(-1, 3) * 2


def test_an_example_for_a_dim_auto_dimension_export_fixed_names_the_fixed_size():
    # (x exported with both dimensions Dim.AUTO: export fixes dimension 1 at 3, recorded as a SymInt of value 3; an
    # example of 4 columns was refused by torch's derived guard, "x.size()[1] * x.size()[0] % 3 == 0")
    auto = torch.export.Dim.AUTO
    ep = torch.export.export(_Rows3(), (torch.randn(4, 3),), dynamic_shapes=({0: auto, 1: auto},))
    with pytest.raises(GraphError, match=r"example input 'x' dimension 1 is 4, but the exported program fixes it "
                                         r"at 3 \(only its dynamic dimensions take other sizes\)$"):
        from_torch(ep, (torch.randn(5, 4),))
    assert [t.size for t in from_torch(ep, (torch.randn(6, 3),)).tensors] == [72, 72, 72]


class _EvenRows(torch.nn.Module):
    def forward(self, x):
        if x.shape[0] % 2 == 0:
            return x.reshape(-1, 2, x.shape[1]).sum(1)
        return x * 3


def test_a_failed_guard_of_a_program_exported_again_is_placed_nowhere_in_torch():
    # (its guard runs in a forward pre-hook: the refusal ended "(at module.py:1794 in _call_impl: `return
    # forward_call(*args, **kwargs)`)", a line of nn.Module.__call__, no place of the model)
    ep = torch.export.export(_EvenRows(), (torch.randn(4, 3),), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    with pytest.raises(GraphError, match=r"Guard failed: x\.size\(\)\[0\] % 2 == 0 \(the example inputs make") as info:
        from_torch(ep, (torch.randn(5, 3),))
    assert "module.py" not in str(info.value) and "_call_impl" not in str(info.value)


class _LiteralInNoGrad(torch.nn.Module):
    def forward(self, x):
        with torch.no_grad():
            y = (x * 2)[:, torch.tensor([2, 0])]
        return y + torch.tensor([1.0, 2.0])


class _DetachOperandInNoGrad(torch.nn.Module):
    def forward(self, x):
        with torch.no_grad():
            x.detach_()
            y = x * 2
        return y


def test_a_tensor_literal_in_a_no_grad_block_is_no_write_of_its_operand():
    # (the literal's ``detach_`` of its ``lift_fresh_copy``, whose fake tensor shares the lifted constant's storage,
    # was taken for the block writing its operand: refused, in memory and loaded alike)
    x = torch.randn(4, 3)
    ep = torch.export.export(_LiteralInNoGrad(), (x,))
    sizes = [(t.kind, t.size) for t in from_torch(ep).tensors]
    assert ("output", 4 * 2 * 4) in sizes
    assert [(t.kind, t.size) for t in from_torch(saved_and_loaded(ep)).tensors] == sizes
    with pytest.raises(GraphError, match=r"writes its operand in place inside a torch\.no_grad\(\)/autocast block "
                                         r"\(subgraph node 'detach_'\)"):
        from_torch(_DetachOperandInNoGrad(), (x,))   # (an operand's own detach_ still is one)


class _LiteralOutOfNoGrad(torch.nn.Module):
    """Tensor literals made in a ``torch.no_grad()`` block and written in place after it."""

    def forward(self, x):
        with torch.no_grad():
            idx = torch.tensor([0, 1])
            w = torch.tensor([1.0, 2.0, 3.0])
        idx.add_(1)
        w.mul_(x.sum())
        return x[:, idx] * 1, w


def test_a_tensor_literal_a_no_grad_block_returns_is_new_memory_at_every_call():
    # (planned as a view of its lifted constant, a weight: ``idx.add_(1)`` wrote the constant, and the compiled
    # module's second call indexed with [2, 3], "index 3 is out of bounds")
    from runtime.aten import compile as aten_compile

    x = torch.randn(4, 3)
    ep = torch.export.export(_LiteralOutOfNoGrad(), (x,))
    graph = from_torch(ep)
    assert all(t.view_of is None for t in graph.tensors if t.id.startswith("detach_"))
    assert [(t.kind, t.size, t.view_of) for t in from_torch(saved_and_loaded(ep)).tensors] == \
        [(t.kind, t.size, t.view_of) for t in graph.tensors]
    compiled = aten_compile(_LiteralOutOfNoGrad(), (x,))
    for _ in range(3):
        got, want = compiled(x), _LiteralOutOfNoGrad()(x)
        assert all(torch.equal(a, b) for a, b in zip(got, want))


class _LiteralAndItsViewOutOfNoGrad(torch.nn.Module):
    """A tensor literal and a view of it, both made in a ``torch.no_grad()`` block; the literal scaled after it."""

    def forward(self, x):
        with torch.no_grad():
            w = torch.tensor([1.0, 2.0, 3.0])
            v = w[1:]
        w.mul_(x.sum())
        return v * 1, w


def test_a_literal_and_its_view_a_no_grad_block_returns_share_memory_as_loaded():
    # (each planned as a tensor of its own, ``v`` never saw ``w.mul_``: the compiled call returned it unscaled)
    from runtime.aten import compile as aten_compile

    x = torch.randn(3)
    ep = torch.export.export(_LiteralAndItsViewOutOfNoGrad(), (x,))
    rows = [(t.kind, t.size, t.view_of, t.view_offset) for t in from_torch(ep).tensors]
    assert ("intermediate", 8, "detach_", 4) in rows
    assert [(t.kind, t.size, t.view_of, t.view_offset) for t in from_torch(saved_and_loaded(ep)).tensors] == rows
    compiled = aten_compile(_LiteralAndItsViewOutOfNoGrad(), (x,))
    for _ in range(2):
        assert all(torch.equal(a, b) for a, b in zip(compiled(x), _LiteralAndItsViewOutOfNoGrad()(x)))
