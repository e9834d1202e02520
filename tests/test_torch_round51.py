"""Round 51 of the torch.export importer: records no check looked at, custom ops, bounded data-dependent sizes.

- A higher-order op with no subgraph (``auto_functionalized_v2``, a decomposed custom op that mutates; ``with_effects``)
  and a ``while_loop`` (whose fake run needs a shape environment) had their records taken at their word: an edited
  ``.pt2`` was planned at the edited size. Every higher-order op is now run again as any ATen op is.
- An op with no fake (meta) kernel in the importing process (a ``torch.library`` op whose fake implementation was
  registered where the program was saved only; one in a ``cond`` branch too) was taken at its record's word; it is
  refused naming the node and the op.
- Bounded data-dependent sizes are planned at their bounds (they were refused).
- ``memplan import --dim`` of a program whose ``as_strided`` reads past the input the options make: the refusal said
  to export again with another example input; it names the options.
"""

from __future__ import annotations

import functools
import io
import json

import pytest
from cli_contract import assert_bad_input, run_memplan
from needs import need

torch = need("torch")

from test_aten_round30 import RoutesByWhere  # noqa: E402  (top-2 expert routing by torch.where)
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


# ---------------------------------------------------------------------------------------------------------------
# data-dependent sizes the program bounds: planned at the bound


class _Bounded(torch.nn.Module):
    """``nonzero`` of ``x`` asserted at most ``bound`` rows, a row count read from values and asserted in ``[0, 3]``
    (``x[n:]``, a view at a data-dependent offset; ``zeros(n, 2)``; ``new_ones(10 - n)``, largest at the lower end),
    and a boolean mask's selection (bounded by its element count alone)."""

    def __init__(self, bound: int) -> None:
        super().__init__()
        self.bound = bound

    def forward(self, x):
        y = x.nonzero()
        torch._check(y.shape[0] <= self.bound)
        n = (x != 0).sum().clamp(max=3).item()
        torch._check(n >= 0)
        torch._check(n <= 3)
        return y * 2, torch.cat([y, y]), x[n:] * 2, torch.zeros(n, 2) + 1, x.new_ones(10 - n), x[x > 0] + 1


def _eager_bytes(module, x, gm=None) -> dict[str, int]:
    """Every FX value's bytes in an eager run of ``module``'s exported program (``gm``, else exported on ``x``) on
    ``x``, by node name."""
    gm = torch.export.export(module, (x,)).module() if gm is None else gm
    seen: dict[str, int] = {}

    class Watch(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                seen[n.name] = out.untyped_storage().nbytes()
            return out

    Watch(gm).run(x)
    return seen


def test_bounded_data_dependent_sizes_are_planned_at_their_bounds():
    # (before: refused, "data-dependent size u0"; torch._check's bound is the program's runtime assert)
    m = _Bounded(5)
    x = torch.tensor([[1., 0, 2], [0, 3, 0], [0, 0, 0], [4, 0, 0]])
    g = memplan.from_torch(m, (x,))
    sizes = _sizes(g)
    assert sizes["nonzero"] == 5 * 2 * 8 and sizes["cat"] == 2 * 5 * 2 * 8
    assert sizes["zeros"] == 3 * 2 * 4 and sizes["new_ones"] == 10 * 4   # (10 - n is largest at n = 0)
    assert sizes["index"] == 12 * 4   # (a mask of 12 elements selects at most 12)
    shapes = {t.id: dict(t.attrs) for t in g.tensors}
    assert shapes["nonzero"]["shape"] == [5, 2] and shapes["nonzero"]["bound_of"] == "[u0, 2]"
    x_view = next(t for t in g.tensors if t.view_of == "x")   # (x[n:]: at no one offset, the whole of x)
    assert (x_view.view_offset, x_view.size) == (0, 48)


@functools.cache
def _bounded_planned_and_exported():
    """``_Bounded(5)``'s planned sizes and its exported program (one export, the seeds' runs below only read them)."""
    m = _Bounded(5)
    example = torch.tensor([[1., 0, 2], [0, 3, 0], [0, 0, 0], [4, 0, 0]])
    return m, _sizes(memplan.from_torch(m, (example,))), torch.export.export(m, (example,)).module()


@pytest.mark.parametrize("seed", range(6))
def test_no_planned_size_is_below_what_eager_writes(seed):
    m, sizes, gm = _bounded_planned_and_exported()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, generator=gen)
    keep = torch.randperm(12, generator=gen)[: int(torch.randint(0, 6, (1,), generator=gen))]
    x = torch.zeros(12).index_put((keep,), x.flatten()[keep]).reshape(4, 3)   # (at most 5 nonzeros: the asserts hold)
    for name, nbytes in _eager_bytes(m, x, gm).items():
        if name in sizes:
            assert sizes[name] >= nbytes, (name, sizes[name], nbytes)


def test_a_saved_program_is_bounded_by_its_asserts_not_its_file_ranges(tmp_path):
    # (the range a .pt2 records for u0 is its file's word: edited to [0, 1] it would plan one row of five; the program
    # is exported again here, its ranges torch's own from its asserts)
    ep = torch.export.export(_Bounded(5), (torch.tensor([[1., 0, 2], [0, 3, 0], [0, 0, 0], [4, 0, 0]]),))
    src = tmp_path / "b.pt2"
    torch.export.save(ep, src)

    def edit(program: dict) -> None:
        for rc in program["range_constraints"].values():
            rc["max_val"] = min(rc["max_val"], 1)

    loaded = _load(edited_program(src, tmp_path / "b_edited.pt2", edit))
    want = _sizes(memplan.from_torch(_Bounded(5), (torch.zeros(4, 3),)))
    assert _sizes(memplan.from_torch(loaded)) == want
    assert _sizes(memplan.from_torch(saved_and_loaded(ep))) == want
    assert want["nonzero"] == 80


def test_an_unbounded_data_dependent_size_is_still_refused_and_the_executor_trace_too():
    from memplan.importers.torch import trace_torch

    class Unbounded(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.sum().long().item()) + 1

    with pytest.raises(GraphError, match=r"node 'zeros' .*data-dependent size u0.*torch._check"):
        memplan.from_torch(Unbounded(), (torch.ones(3),))
    with pytest.raises(GraphError, match=r"data-dependent size"):   # (an executor needs each exact size)
        trace_torch(_Bounded(5), (torch.ones(4, 3),))


# ---------------------------------------------------------------------------------------------------------------
# memplan import --dim: an as_strided past the input the options make


class _StridedAt6(torch.nn.Module):
    def forward(self, x):
        return torch.ops.aten.as_strided(x, (2,), (1,), 6) * 3


def test_import_dim_names_the_options_where_as_strided_reads_past_the_made_input(tmp_path, capsys):
    ep = torch.export.export(_StridedAt6(), (torch.randn(10),),
                             dynamic_shapes={"x": {0: torch.export.Dim("n", min=2, max=64)}})
    path = tmp_path / "strided.pt2"
    torch.export.save(ep, path)
    out = tmp_path / "g.json"
    with pytest.raises(RuntimeError, match="out of bounds for storage"):
        _StridedAt6()(torch.randn(3))   # (eager refuses a dense input of 3 elements too)
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q", "--dim", "x.0=3"])
    # (before: "...the example input the program was exported with lies in that storage: export with an example in
    # the storage the program reads": no example was given, the input was made from --dim)
    assert_bad_input(code, err, "node 'as_strided'", "up to 32", "holds 12 bytes", "made for --dim x.0=3",
                     "give sizes")
    assert "exported with" not in err and not out.exists()
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q", "--batch", "7"])
    assert_bad_input(code, err, "holds 28 bytes", "made for --batch 7")
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q", "--dim", "x.0=9"])
    assert code == 0, err
    sizes = {t["id"]: t["size"] for t in json.loads(out.read_text())["tensors"]}
    assert sizes["x"] == 36 and sizes["as_strided"] == 8


def test_import_dim_bounds_a_data_dependent_size_at_the_sizes_given(tmp_path, capsys):
    # (the dynamic program's own range for nonzero's rows is [0, 192], 64 x 3; specialized to x.0=5 it is 15)
    class NonzeroRows(torch.nn.Module):
        def forward(self, x):
            return x.nonzero() * 2, x[x > 0] + 1

    ep = torch.export.export(NonzeroRows(), (torch.randn(6, 3),),
                             dynamic_shapes={"x": {0: torch.export.Dim("n", min=2, max=64)}})
    path, out = tmp_path / "nz.pt2", tmp_path / "g.json"
    torch.export.save(ep, path)
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q", "--dim", "x.0=5"])
    assert code == 0, err
    tensors = {t["id"]: t for t in json.loads(out.read_text())["tensors"]}
    assert tensors["nonzero"]["size"] == 15 * 2 * 8 and tensors["nonzero"]["attrs"]["shape"] == [15, 2]
    assert tensors["index"]["size"] == 15 * 4
    x = torch.ones(5, 3)
    assert NonzeroRows()(x)[0].nbytes == tensors["nonzero"]["size"]   # (all nonzero: eager writes the bound)


def test_an_edited_bounded_size_recorded_as_a_plain_number_is_refused(tmp_path):
    # (the program asserts u0 <= 5; the .pt2 edited to record nonzero (and its reader) as [1, 2] was planned at 16 bytes,
    # where eager's nonzero of this x writes 4 rows, 64 bytes: any assert reaching the size was taken for a pin)
    class AtMostFive(torch.nn.Module):
        def forward(self, x):
            y = x.nonzero()
            torch._check(y.shape[0] <= 5)
            return y * 2

    x = torch.tensor([[1., 0, 2], [0, 3, 0], [0, 0, 0], [4, 0, 0]])
    src = tmp_path / "five.pt2"
    torch.export.save(torch.export.export(AtMostFive(), (x,)), src)

    def edit(program: dict) -> None:
        graph = program["graph_module"]["graph"]
        for k in ("nonzero", "mul"):
            graph["tensor_values"][k]["sizes"] = [{"as_int": 1}, {"as_int": 2}]
            graph["tensor_values"][k]["strides"] = [{"as_int": 2}, {"as_int": 1}]
        program["range_constraints"] = {}
        for k in graph.get("sym_int_values", {}):
            graph["sym_int_values"][k] = {"as_int": 1}
        for k in graph.get("sym_bool_values", {}):
            graph["sym_bool_values"][k] = {"as_bool": True}

    loaded = _load(edited_program(src, tmp_path / "five_edited.pt2", edit))
    assert AtMostFive()(x).nbytes == 64
    with pytest.raises(GraphError, match=r"node 'nonzero' .*dimension 0 as 1, .*asserts do not fix it at 1 "
                                         r"\(they allow \[0, 5\]\)"):
        memplan.from_torch(loaded)


@pytest.mark.parametrize("pin", ["eq", "two_sided", "derived"])
def test_a_size_the_program_pins_still_imports_loaded(pin):
    class Pinned(torch.nn.Module):
        def forward(self, x):
            y = x.nonzero()
            if pin == "eq":
                torch._check(y.shape[0] == 2)
            elif pin == "two_sided":
                torch._check(y.shape[0] <= 2)
                torch._check(y.shape[0] >= 2)
            else:
                torch._check(y.shape[0] * 2 == x.shape[0])
            return y * 2

    x = torch.tensor([[1., 0, 2], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    ep = torch.export.export(Pinned(), (x,))
    assert _sizes(memplan.from_torch(saved_and_loaded(ep)))["nonzero"] == 32


def test_a_cond_whose_branches_differ_in_size_is_planned_at_the_larger():
    # (torch gives the result an unbacked size in [2, 8]; it was refused as data-dependent)
    class Branches(torch.nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda x: x[:2] * 2, lambda x: torch.cat([x, x]) + 1, (x,)) * 3

    x = torch.randn(4, 3)
    eager = max(Branches()(torch.ones(4, 3)).nbytes, Branches()(-torch.ones(4, 3)).nbytes)
    ep = torch.export.export(Branches(), (x,))
    for program, args in ((Branches(), (x,)), (ep, ()), (saved_and_loaded(ep), ())):
        sizes = _sizes(memplan.from_torch(program, args))
        assert sizes["getitem_1"] == sizes["mul"] == eager == 96


def test_expert_routing_by_where_plans_above_what_eager_writes():
    # (refused before: "node 'where' ...: data-dependent size")
    torch.manual_seed(0)
    m = RoutesByWhere(8, 4).eval()   # top-2 of 4 experts: each expert's token count is data-dependent
    x = torch.randn(5, 8)
    g = memplan.from_torch(m, (x,))
    sizes = _sizes(g)
    gm = torch.export.export(m, (x,)).module()   # (one program, run on each seed's tokens)
    for seed in range(4):
        xs = torch.randn(5, 8, generator=torch.Generator().manual_seed(seed))
        for name, nbytes in _eager_bytes(m, xs, gm).items():
            if name in sizes:
                assert sizes[name] >= nbytes, (name, sizes[name], nbytes)
    planned = memplan.plan_graph(g, streams="auto")
    memplan.verify(planned.graph, planned.plan)
