"""Round 51 of the torch.export importer: records no check looked at, custom ops, bounded data-dependent sizes.

- A higher-order op with no subgraph (``auto_functionalized_v2``, a decomposed custom op that mutates; ``with_effects``)
  and a ``while_loop`` (whose fake run needs a shape environment) had their records taken at their word: an edited
  ``.pt2`` was planned at the edited size. Every higher-order op is now run again as any ATen op is.
- An op with no fake (meta) kernel in the importing process (a ``torch.library`` op whose fake implementation was
  registered where the program was saved only; one in a ``cond`` branch too) was taken at its record's word; it is
  refused naming the node and the op.
"""

from __future__ import annotations

import io

import pytest
from needs import need

torch = need("torch")

from torch_saved import edited_program, rows, saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


def _load(path):
    from memplan.importers.torch import load_exported

    return load_exported(str(path))


def _sizes(g) -> dict[str, int]:
    return {t.id: t.size for t in g.tensors}


def _shrunk(tmp_path, ep, names: set[str], name: str = "p"):
    """``ep`` saved, with the records of ``names`` edited to ``[1, 3]``, loaded back."""
    src = tmp_path / f"{name}.pt2"
    torch.export.save(ep, src)

    def edit(program: dict) -> None:
        for k, v in program["graph_module"]["graph"]["tensor_values"].items():
            if k in names:
                v["sizes"] = [{"as_int": 1}, {"as_int": 3}]

    return _load(edited_program(src, tmp_path / f"{name}_edited.pt2", edit))


# ---------------------------------------------------------------------------------------------------------------
# higher-order ops with no subgraph, and while_loop: their records are checked


@torch.library.custom_op("memplan_r51::scale_", mutates_args=("y",))
def _scale_(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y.mul_(2)
    return x + 1


@_scale_.register_fake
def _(x, y):
    return torch.empty_like(x)


class _Mutating(torch.nn.Module):
    def forward(self, x, y):
        z = y * 1
        r = _scale_(x, z)
        return r * 2, z + 1


def _mutating_program():
    ep = torch.export.export(_Mutating(), (torch.randn(4, 3), torch.randn(5, 3))).run_decompositions()
    assert any("auto_functionalized" in str(n.target) for n in ep.graph.nodes)
    return ep


def test_an_edited_auto_functionalized_record_is_refused(tmp_path):
    # (before: getitem, getitem_1, mul_1 and add planned at 12 bytes each, where the op writes 48 and 60)
    ep = _mutating_program()
    loaded = _shrunk(tmp_path, ep, {"getitem", "getitem_1", "mul_1", "add"})
    with pytest.raises(GraphError, match=r"node 'auto_functionalized_v2' .*records its result 0 as float32 \[1, 3\]"):
        memplan.from_torch(loaded)


def test_an_unedited_auto_functionalized_program_plans_as_in_memory():
    ep = _mutating_program()
    assert rows(memplan.from_torch(saved_and_loaded(ep))) == rows(memplan.from_torch(ep))
    assert _sizes(memplan.from_torch(ep))["getitem_1"] == 60


class _Loop(torch.nn.Module):
    def forward(self, x):
        from torch._higher_order_ops.while_loop import while_loop

        i = torch.tensor(0)
        return while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2), (i, x))[1] * 3


def test_an_edited_while_loop_record_is_refused(tmp_path):
    # (before: the fake run of while_loop raised for want of a shape environment, and the record stood: 12 bytes)
    ep = torch.export.export(_Loop(), (torch.randn(4, 3),))
    loaded = _shrunk(tmp_path, ep, {"getitem_1", "mul"})
    with pytest.raises(GraphError, match=r"node 'while_loop' .*records its result 1 as float32 \[1, 3\].*\[4, 3\]"):
        memplan.from_torch(loaded)
    assert rows(memplan.from_torch(saved_and_loaded(ep))) == rows(memplan.from_torch(ep))


class _Effect(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        torch._print("r51")
        return y + 1


def test_with_effects_round_trips():
    ep = torch.export.export(_Effect(), (torch.randn(4, 3),)).run_decompositions()
    assert any("with_effects" in str(n.target) for n in ep.graph.nodes)
    assert rows(memplan.from_torch(saved_and_loaded(ep))) == rows(memplan.from_torch(ep))


# ---------------------------------------------------------------------------------------------------------------
# an op without a fake kernel where the program is imported


def _doubling_library(namespace: str):
    """``(library, meta library)``: ``NS::dbl(x) = cat([x, x])`` with a CPU kernel, and its Meta kernel registered in
    a library of its own, which the test destroys to stand for a process that lacks it."""
    lib = torch.library.Library(namespace, "DEF")
    lib.define("dbl(Tensor x) -> Tensor")
    lib.impl("dbl", lambda x: torch.cat([x, x]), "CPU")
    meta = torch.library.Library(namespace, "IMPL")
    meta.impl("dbl", lambda x: x.new_empty((2 * x.shape[0], *x.shape[1:])), "Meta")
    return lib, meta


def _saved_then_meta_dropped(module, example, meta) -> io.BytesIO:
    ep = torch.export.export(module, example)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    meta._destroy()   # (the importing process has the op's kernel, not its fake)
    buf.seek(0)
    return buf


def test_a_library_op_without_a_fake_kernel_is_refused_not_taken_at_its_record():
    lib, meta = _doubling_library("memplan_r51a")

    class M(torch.nn.Module):
        def forward(self, x):
            return torch.ops.memplan_r51a.dbl(x * 2) + 1

    m, x = M(), torch.randn(4, 3)
    assert m(x).shape == (8, 3)   # (eager writes 96 bytes)
    loaded = torch.export.load(_saved_then_meta_dropped(m, (x,), meta))
    with pytest.raises(GraphError, match=r"node 'dbl' \(memplan_r51a\.dbl\.default\): its op has no fake \(meta\) "
                                         r"kernel in this process.*register_fake"):
        memplan.from_torch(loaded)
    del lib


def test_a_cond_branch_op_without_a_fake_kernel_is_refused_naming_it():
    lib, meta = _doubling_library("memplan_r51b")

    class M(torch.nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda x: torch.ops.memplan_r51b.dbl(x),
                              lambda x: torch.cat([x, x]) + 1, (x,)) * 2

    loaded = torch.export.load(_saved_then_meta_dropped(M(), (torch.randn(4, 3),), meta))
    with pytest.raises(GraphError, match=r"node 'cond' \(cond\): op memplan_r51b\.dbl\.default in its subgraph has "
                                         r"no fake \(meta\) kernel"):
        memplan.from_torch(loaded)
    del lib
