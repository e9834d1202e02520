"""torch importer, round 41: what a dynamic program's example sizes make of its dimensions; bodies of control flow.

- ``x`` exported with ``{0: 4 * Dim("k")}`` and given a size of 4 (``k`` = 1, below torch's range of 2..16 for it)
  or 13 (no ``k``) was refused only by torch's guard text ("Guard failed: x.size()[0] // 4 != 1"), which named
  neither the dimension nor what the size made of it: a dimension that is an expression of one symbol now binds
  that symbol, whose range is checked; a guard torch still refuses names the values the inputs gave.
- An ``as_strided`` inside a ``cond`` / ``map`` / ``while_loop`` body reads from its operand's storage start, past
  the operand's own elements; the top level kept a user input's example layout for it, and grew a root to what
  the view touches, but a body's was not looked at: the operand was planned at its own elements' bytes.
"""

from __future__ import annotations

import pytest
from cli_contract import run_memplan
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402
from torch_saved import rows as _rows  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


class Rows4(nn.Module):
    def forward(self, x):
        return x.reshape(-1, 4) * 2


def _rows4() -> torch.export.ExportedProgram:
    return torch.export.export(Rows4(), (torch.randn(8),), dynamic_shapes={"x": {0: 4 * Dim("k", max=16)}})


@pytest.mark.parametrize("loaded", [False, True], ids=["memory", "loaded"])
def test_a_derived_dimension_below_its_symbols_range_is_named(loaded):
    ep = _rows4()
    ep = _saved_and_loaded(ep) if loaded else ep
    with pytest.raises(GraphError, match=r"from input 'x' dimension 0 = 4\*s\d+ = 4\) is 1, outside the exported "
                                         r"program's range \[2, 16\]") as err:
        memplan.from_torch(ep, (torch.randn(4),))
    assert "Guard failed" not in str(err.value)
    with pytest.raises(GraphError, match=r"input 'x' dimension 0 is 13, which its size 4\*s\d+ is for no integer"):
        memplan.from_torch(ep, (torch.randn(13),))
    with pytest.raises(GraphError, match=r"input 'x' dimension 0 is 80, outside the exported program's range "
                                         r"\[0, 64\] for its dynamic dimension 4\*s\d+"):
        memplan.from_torch(ep, (torch.randn(80),))
    assert {t.id: t.size for t in memplan.from_torch(ep, (torch.randn(12),)).tensors}["x"] == 48


def test_a_size_of_zero_solves_a_derived_dimension():
    # torch's symbols are positive: solved as they were, 0 = 4*s6 had "no integer" s6, where 0 is one (out of range)
    from memplan.importers.torch import sized_inputs

    with pytest.raises(GraphError, match=r"--dim x\.0=0 \(s\d+=0\): makes the dynamic dimension \S+( \(torch's s\d+\))? 0, outside the "
                                         r"exported program's range \[2, 16\]"):
        memplan.from_torch(_rows4(), sized_inputs(_rows4(), None, {"x.0": 0})[0])


class TwoInputs(nn.Module):
    def forward(self, x, y):
        return x.sum() + y.reshape(-1, 4).sum()


def test_two_dimensions_of_one_symbol_that_disagree_or_fail_a_guard_are_named():
    k = Dim("k", max=16)
    ep = torch.export.export(TwoInputs(), (torch.randn(3), torch.randn(12)),
                             dynamic_shapes={"x": {0: k}, "y": {0: 4 * k}})
    with pytest.raises(GraphError, match=r"input 'y' dimension 0 is 16 = 4\*s\d+ with k \(torch's s\d+\) = 4, but "
                                         r"input 'x' dimension 0 makes it 3"):
        memplan.from_torch(ep, (torch.randn(3), torch.randn(16)))
    # k's range is 0..16 here, but the program's guards refuse k = 1: the error says what the inputs made of k
    with pytest.raises(GraphError, match=r"Guard failed: .*\(the example inputs make k \(torch's s\d+\) = 1 "
                                         r"\(input 'x' dimension 0\); torch traces a dynamic size as at least 2"):
        memplan.from_torch(ep, (torch.randn(1), torch.randn(4)))
    assert memplan.from_torch(ep, (torch.randn(2), torch.randn(8))).tensors


def test_the_cli_names_a_derived_dimension_out_of_range(tmp_path, capsys):
    """In-process (a subprocess spent seconds importing torch); ``memplan import`` of a ``.pt2`` refused through the
    real entry point (exit 2, one line) is test_torch_round39's cache-directory test."""
    program = tmp_path / "m.pt2"
    torch.export.save(_rows4(), str(program))
    code, _out, err = run_memplan(capsys, ["import", program, "-o", tmp_path / "g.json", "--dim", "x.0=4", "-q"])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--dim x.0=4 (s" in lines[0] and " 1, outside" in lines[0], err
    assert not (tmp_path / "g.json").exists()


def _touched(t: torch.Tensor) -> int:
    """Bytes of its storage an op on ``t`` touches, from the storage's start."""
    return (t.storage_offset() + sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1) * t.element_size()


class StridedInCond(nn.Module):
    def forward(self, x):
        def t(x):
            return x.as_strided((2,), (1,), 6) * 2

        def f(x):
            return x * 3

        return torch.cond(x.sum() > 0, t, f, (x,))


class StridedInNestedCond(nn.Module):
    def forward(self, x):
        def inner_t(x):
            return x.as_strided((2,), (1,), 6) * 2

        def t(x):
            return torch.cond(x.sum() > 1, inner_t, lambda x: x * 5, (x,))

        return torch.cond(x.sum() > 0, t, lambda x: x * 3, (x,))


class StridedInWhile(nn.Module):
    def forward(self, x):
        def c(i, x):
            return i < 2

        def b(i, x):
            return i + 1, x.as_strided((2,), (1,), 6) * 2

        return torch._higher_order_ops.while_loop(c, b, (torch.tensor(0), x))[1]


class StridedInMap(nn.Module):
    def forward(self, xs):
        from functorch.experimental.control_flow import map as control_map

        return control_map(lambda x: x.as_strided((3,), (1,)) * 2, xs)


class StridedWeightInCond(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.arange(10.0)[2:6])

    def forward(self, x):
        def t(x, p):
            return x + p.as_strided((2,), (1,), 4)

        def f(x, p):
            return x * 3

        return torch.cond(x.sum() > 0, t, f, (x, self.p))


#: (module, example, input, bytes of the example's storage the body reads, the same with the input at offset 0)
_BODIES = [(StridedInCond, lambda: torch.arange(20.0)[3:5], "x", 32, 32),
           (StridedInNestedCond, lambda: torch.arange(20.0)[3:5], "x", 32, 32),
           (StridedInWhile, lambda: torch.arange(20.0)[3:5], "x", 32, 32),
           # (no offset given: each slice's own; the last slice, xs[1], starts at element 4 (2 at offset 0), reads 3)
           (StridedInMap, lambda: torch.arange(20.0).reshape(10, 2)[1:3], "xs", 28, 20)]


@pytest.mark.parametrize("module,example,name,reach,_", _BODIES, ids=[b[0].__name__ for b in _BODIES])
def test_an_as_strided_in_a_body_keeps_the_input_layout_it_reads(module, example, name, reach, _):
    x = example()
    ep = torch.export.export(module(), (x,))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    # the example's storage, as a top-level as_strided keeps it (its elements alone were 8 / 16 bytes)
    assert {t.id: t.size for t in here.tensors}[name] == x.untyped_storage().nbytes() >= reach


@pytest.mark.parametrize("module,example,name,_,reach", _BODIES, ids=[b[0].__name__ for b in _BODIES])
def test_an_as_strided_in_a_body_grows_its_root_when_the_layout_is_lost(module, example, name, _, reach):
    ep = _saved_and_loaded(torch.export.export(module(), (example(),)))
    ep._example_inputs = None   # the input's layout is lost (its elements at offset 0), the body's reach is not
    assert {t.id: t.size for t in memplan.from_torch(ep).tensors}[name] == reach


def test_an_as_strided_in_a_body_keeps_the_weight_layout_it_reads():
    m = StridedWeightInCond()
    ep = torch.export.export(m, (torch.ones(2),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    assert {t.id: t.size for t in here.tensors}["p_p"] >= _touched(m.p.as_strided((2,), (1,), 4)) == 24


class StridedIntermediateInCond(nn.Module):
    def forward(self, x):
        y = x * 1

        def t(y):
            return y.as_strided((2,), (1,), 6) * 2

        def f(y):
            return y[:2] * 3

        return torch.cond(x.sum() > 0, t, f, (y,))


def test_the_executor_refuses_a_body_offset_over_an_arena_tensor():
    # run by torch on the arena's views, the branch's offset counted from the arena's start: [0, 0] where eager
    # gives [12, 14], silently
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    with pytest.raises(AtenExecutorError, match=r"node 'cond'.*as_strided storage offset over operand 'mul'"):
        compile(torch.export.export(StridedIntermediateInCond(), (torch.arange(20.0),)))


def test_a_body_offset_over_a_weight_runs_as_eager():
    from runtime.aten import compile

    m = StridedWeightInCond()
    c = compile(torch.export.export(m, (torch.ones(2),)), poison=True)
    for _ in range(2):
        x = torch.randn(2) + 1
        assert torch.equal(c(x), m(x).detach())


class Conjugates(nn.Module):
    def forward(self, x):
        z = torch.complex(x, x * 2)
        c = z.conj()
        return c.resolve_conj(), z._neg_view().resolve_neg(), c.imag * 1, z * 1


class ConjugateInput(nn.Module):
    def forward(self, x):
        return x.resolve_conj() * 1, x.resolve_conj(), x.imag * 1


_CONJUGATES = [(Conjugates, lambda: torch.randn(3)),
               (ConjugateInput, lambda: torch.complex(torch.randn(3), torch.randn(3)).conj()),
               (ConjugateInput, lambda: torch.complex(torch.randn(4), torch.randn(4))[1:].conj())]


@pytest.mark.parametrize("module,example", _CONJUGATES, ids=["views", "input", "input-slice"])
def test_a_loaded_program_keeps_the_conjugate_bits_of_its_views(module, example):
    # a loaded program's fake tensors carry no conjugate / negative bit: resolve_conj of a conj view (a new tensor in
    # eager) was planned as a view over z's bytes, and an output at that; c.imag as the whole of c at offset 0
    ep = torch.export.export(module(), (example(),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    assert _rows(loaded) == _rows(here)
    t = {r.id: r for r in loaded.tensors}
    assert t["resolve_conj"].view_of is None and t["resolve_conj"].size == 24
    assert (t["imag"].view_offset, t["imag"].size) == (4, 20)


class ToSparse(nn.Module):
    def forward(self, x):
        return (x * 2).to_sparse()


class SparseInput(nn.Module):
    def forward(self, x):
        return torch.sparse.mm(x, torch.ones(3, 2))


def test_a_loaded_sparse_result_is_refused_naming_its_node():
    # a loaded program's fake tensors are all strided: to_sparse was planned as a dense 36-byte tensor
    loaded = _saved_and_loaded(torch.export.export(ToSparse(), (torch.randn(3, 3),)))
    with pytest.raises(GraphError, match=r"node 'to_sparse' .*another layout than strided \(to_sparse"):
        memplan.from_torch(loaded)


def test_a_sparse_input_is_refused_naming_it():
    # in memory: torch's raw NotImplementedError ("Cannot access storage of SparseTensorImpl"); loaded: planned dense
    ep = torch.export.export(SparseInput(), (torch.randn(2, 3).to_sparse(),))
    for program in (ep, _saved_and_loaded(ep)):
        with pytest.raises(GraphError, match=r"node 'x'.*sparse_coo tensor \(only dense"):
            memplan.from_torch(program)
    lost = _saved_and_loaded(ep)
    lost._example_inputs = None   # (the input's layout is lost with its example: its op still says it)
    with pytest.raises(GraphError, match=r"node '_sparse_mm' .*another layout than strided"):
        memplan.from_torch(lost)
    ep._example_inputs = None
    with pytest.raises(GraphError, match=r"node 'x'.*sparse_coo tensor \(only dense"):
        memplan.from_torch(ep)
