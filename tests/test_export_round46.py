"""torch importer, round 46: dimensions of a derived ``torch.export.Dim`` (``2 * k``, ``k + 1``) named by every
name a ``--dim`` takes, the CLI's refusal of a dynamic ``.pt2`` given no option, and a dynamic program whose weight
records disagree with the tensors it holds (refused before the export that specializes it), plus hostile
``.pt2`` / ExportedProgram inputs.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402
from torch_saved import saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import sized_inputs  # noqa: E402


class Two(nn.Module):
    def forward(self, x, y):
        return x.sum(0), y * 2


def _two(x_dim, y_dim, x_rows=4, y_rows=6):
    return torch.export.export(Two(), (torch.randn(x_rows, 3), torch.randn(y_rows, 3)),
                               dynamic_shapes={"x": x_dim and {0: x_dim}, "y": y_dim and {0: y_dim}})


def test_a_dim_used_only_derived_is_named_by_its_own_name():
    """``x`` exported with ``{0: 2 * Dim("k")}`` (``k`` on no input of its own): ``--dim k=3`` was "no such symbolic
    dimension (it has: s6, x.0)", and the refusal did not offer ``k``; it fixes ``x`` at 6 rows now."""
    k = Dim("k", min=1, max=64)
    for ep in (_two(2 * k, None), _two(k + 1, None, x_rows=4, y_rows=6)):
        with pytest.raises(GraphError, match=r"--dim k=N"):
            sized_inputs(ep, None, {})
    args, _ = sized_inputs(_two(2 * k, None), None, {"k": 3})
    assert args[0].shape == (6, 3) and args[1].shape == (6, 3)
    args, _ = sized_inputs(_two(k + 1, None), None, {"k": 3})
    assert args[0].shape == (4, 3)


@pytest.mark.parametrize("loaded", [False, True], ids=["in_memory", "loaded"])
def test_the_refusal_names_every_input_dimension_of_the_symbol(loaded):
    """``x`` is ``2 * k`` and ``y`` is ``k``: the refusal listed ``x.0`` and one other name, not ``y.0`` (which
    fixes it too); it lists every name now, and each one given fixes both inputs."""
    k = Dim("k", min=1, max=64)
    ep = _two(2 * k, k, y_rows=2)
    program = saved_and_loaded(ep) if loaded else ep
    with pytest.raises(GraphError) as err:
        sized_inputs(program, None, {})
    msg = str(err.value)
    for name in ("x.0", "y.0") + (() if loaded else ("k",)):
        assert f"--dim {name}=N" in msg, msg
    for given in ({"x.0": 6}, {"y.0": 3}):
        args, _ = sized_inputs(program, None, given)
        assert (args[0].shape[0], args[1].shape[0]) == (6, 3)


def test_an_expression_given_as_a_dim_name_names_the_input_dimension():
    """``--dim 2*k=6`` (the size the refusal shows, spelled by the Dim's name) was "--dim 2*k: the program has no
    such symbolic dimension"; it names ``x.0``, whose size that expression is, and the value to give."""
    k = Dim("k", min=1, max=64)
    ep = _two(2 * k, None)
    with pytest.raises(GraphError, match=r"--dim 2\*k=6: 2\*k is not a free symbol but the size of input "
                                         r"dimension x\.0 .*give --dim x\.0=6$"):
        sized_inputs(ep, None, {"2*k": 6})
    with pytest.raises(GraphError, match=r"--dim k\+1=3: a --dim names one free symbol of the program, not an "
                                         r"expression \(its free symbols: k"):
        sized_inputs(ep, None, {"k+1": 3})


def test_an_unreachable_derived_size_names_the_dims_own_name():
    """``--dim x.0=7`` for ``x.0 = 2*k``: the refusal advised ``--dim s6=N`` (torch's symbol), not ``k``."""
    ep = _two(2 * Dim("k", min=1, max=64), None)
    with pytest.raises(GraphError, match=r"--dim x\.0=7: input dimension x\.0 is 2\*s\d+, which no integer s\d+ "
                                         r"makes 7 \(give --dim k=N, or a size it takes\)"):
        sized_inputs(ep, None, {"x.0": 7})


def test_cli_refuses_a_derived_dynamic_pt2_naming_its_dims(tmp_path, capsys):
    """``memplan import d.pt2`` with no option for a program whose ``x`` is ``2*s6``: the line was the API's advice
    "dynamic shapes are not supported: export with concrete example inputs ...", which the CLI cannot follow; it
    names the ``--dim``s that fix it, and ``--dim x.0=6`` imports it."""
    from memplan.cli import main

    path, out = tmp_path / "d.pt2", tmp_path / "g.json"
    torch.export.save(_two(2 * Dim("k", min=1, max=64), None), str(path))
    assert main(["import", str(path), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dim x.0=N" in err and "concrete example" not in err, err
    assert not out.exists()
    assert main(["import", str(path), "-o", str(out), "-q", "--dim", "x.0=6"]) == 0
    assert memplan.load_graph(str(out)).tensor("x").size == 6 * 3 * 4


class Buffered(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.ones(1, 3))
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x) + self.buf


@pytest.mark.parametrize("held", [(5, 3), (4, 3), (3,)], ids=["batch_sized", "other_rows", "other_rank"])
def test_a_dynamic_program_holding_another_weight_than_it_records_is_refused(held):
    """A dynamic program whose ``[1, 3]`` buffer is held as a ``[5, 3]`` tensor (an edited ``.pt2``): specialized
    with 5 rows, it was planned with the buffer at 60 bytes, silently (the re-export reads the held tensors); with
    4 rows torch's "Attempting to broadcast a dimension of length 4", naming no buffer. It names ``b_buf`` now."""
    ep = torch.export.export(Buffered(), (torch.randn(4, 3),), dynamic_shapes={"x": {0: Dim("b", max=64)}})
    ep.state_dict["buf"] = torch.ones(*held)
    with pytest.raises(GraphError, match=r"node 'b_buf': the program records weight 'buf' as float32 \[1, 3\], but "
                                         r"holds a float32 \[" + ", ".join(map(str, held)) + r"\] tensor"):
        memplan.from_torch(ep, (torch.randn(5, 3),))


class Mixed(nn.Module):
    def forward(self, x, n: int, f: float):
        return x * n * f, n + 1, x.sum()


def _mixed():
    return torch.export.export(Mixed(), (torch.randn(2, 3), 3, 2.0),
                               dynamic_shapes={"x": {0: Dim("b", max=9)}, "n": Dim.DYNAMIC, "f": None})


def test_a_tensor_for_a_symbolic_int_is_refused_beside_a_constant_input():
    """``f`` exported as the constant 2.0 made the example check skip every input (its user inputs ``x, n, 2.0``
    matched no placeholder by name): ``n`` given as ``tensor(5)`` was traced as another program, its ``n + 1`` a
    planned 8-byte tensor, silently; ``f`` given 3.0 was torch's "Guard failed: f == 2.0"."""
    ep = _mixed()
    with pytest.raises(GraphError, match=r"example input 'n' is tensor\(5\) \(Tensor\), but the exported program "
                                         r"takes an int there"):
        memplan.from_torch(ep, (torch.randn(4, 3), torch.tensor(5), 2.0))
    with pytest.raises(GraphError, match=r"example input 'f' is 3\.0 \(float\), but the exported program fixed it "
                                         r"at 2\.0"):
        memplan.from_torch(ep, (torch.randn(4, 3), 5, 3.0))
    with pytest.raises(GraphError, match=r"example input 'f' is True \(bool\), but the exported program fixed it"):
        memplan.from_torch(ep, (torch.randn(4, 3), 5, True))
    assert memplan.from_torch(ep, (torch.randn(4, 3), 5, 2)).tensor("x").size == 48   # (2 is the constant 2.0)
    graph = memplan.from_torch(ep, (torch.randn(4, 3), 5, 2.0))
    assert [(t.id, t.size) for t in graph.tensors if t.kind != "intermediate"] == \
        [("x", 48), ("mul_1", 48), ("sum_1", 4)]


class Held(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.ones(1, 3)   # a lifted tensor constant
        self.register_buffer("b", torch.ones(1, 3))
        self.register_buffer("nb", torch.ones(1, 3), persistent=False)

    def forward(self, x):
        return x + self.c + self.b + self.nb


@pytest.mark.parametrize("table,key,node,what", [("constants", "c", "c_c", "tensor constant"),
                                                 ("state_dict", "b", "b_b", "buffer"),
                                                 ("constants", "nb", "b_nb", "buffer")])
def test_a_dynamic_program_missing_a_held_tensor_names_it(table, key, node, what):
    """A dynamic program whose ``constants`` / ``state_dict`` lost a tensor: specializing it failed as "... failed:
    'c'" (a bare KeyError); it names the placeholder, the weight and the table."""
    ep = torch.export.export(Held(), (torch.randn(4, 3),), dynamic_shapes={"x": {0: Dim("b", max=9)}})
    del getattr(ep, table)[key]
    with pytest.raises(GraphError, match=rf"node '{node}': the program holds no tensor for its {what} '{key}' "
                                         rf"\(not in its {table}\)"):
        memplan.from_torch(ep, (torch.randn(5, 3),))


def test_cli_sizes_a_dynamic_pt2_with_a_constant_input(tmp_path, capsys):
    """``Mixed`` saved with ``f`` fixed at 2.0: ``memplan import m.pt2 --batch 3 --dim n=4`` was a raw traceback
    (torch's "treespec.unflatten(leaves): `leaves` has length 2 but the spec refers to a pytree that holds 3
    items": the constant input had no example); it is imported, with ``x`` at 3 rows."""
    from memplan.cli import main

    path, out = tmp_path / "m.pt2", tmp_path / "g.json"
    torch.export.save(_mixed(), str(path))
    assert main(["import", str(path), "-o", str(out), "-q", "--batch", "3", "--dim", "n=4"]) == 0
    got = memplan.load_graph(str(out))
    assert [(t.id, t.size) for t in got.tensors if t.kind != "intermediate"] == [("x", 36), ("mul_1", 36),
                                                                                  ("sum_1", 4)]
    args, kwargs = sized_inputs(_mixed(), 3, {"n": 4})
    assert args[0].shape == (3, 3) and args[1:] == (4, 2.0) and kwargs == {}


class ConstantFirst(nn.Module):
    def forward(self, f: float, x):
        return x * f


class Reshaped(nn.Module):
    def forward(self, x, n: int):
        return x.reshape(n, -1) * 2


def test_ranges_are_read_past_a_constant_input_and_off_symbolic_ints():
    """``forward(f, x)`` with ``f`` fixed: ``x`` was paired with the leaf of ``f``, so its range went unchecked
    ("Guard failed: x.size()[0] >= 3", naming no Dim); and a symbolic int's value was left out of what a failed
    guard is explained by ("Guard failed: n != 1 (the example inputs make b ... = 4)", no word of ``n``)."""
    ep = torch.export.export(ConstantFirst(), (2.0, torch.randn(4, 3)),
                             dynamic_shapes={"f": None, "x": {0: Dim("b", min=3, max=8)}})
    for rows in (2, 9):
        with pytest.raises(GraphError, match=rf"input 'x' dimension 0 is {rows}, outside the exported program's "
                                             r"range \[3, 8\] for its dynamic dimension b"):
            memplan.from_torch(ep, (2.0, torch.randn(rows, 3)))
    assert memplan.from_torch(ep, (2.0, torch.randn(5, 3))).tensor("x").size == 60
    ep = torch.export.export(Reshaped(), (torch.randn(4, 6), 2),
                             dynamic_shapes={"x": {0: Dim("b", min=2, max=16)}, "n": Dim.DYNAMIC})
    with pytest.raises(GraphError, match=r"Guard failed: .*n \(torch's s\d+\) = 3 \(input 'n'\)"):
        memplan.from_torch(ep, (torch.randn(4, 6), 3))


def test_an_archive_of_programs_not_named_model_says_so(tmp_path, capsys):
    """A ``.pt2`` that ``package_pt2`` wrote with programs ``first`` and ``second``: "not a torch.export program
    (KeyError: 'model')"; it names the programs it holds and the one torch.export.load reads."""
    package = pytest.importorskip("torch.export.pt2_archive._package")
    from memplan.cli import main

    path = tmp_path / "multi.pt2"
    ep = torch.export.export(Two(), (torch.randn(4, 3), torch.randn(6, 3)))
    package.package_pt2(str(path), exported_programs={"first": ep, "second": ep})
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exported program(s) 'first', 'second', none named 'model'" in err, err


@pytest.mark.parametrize("kind", ["state_dict", "jit"])
def test_another_torch_file_named_pt2_says_what_it_is(tmp_path, capsys, kind):
    """A ``torch.save`` checkpoint or a TorchScript module saved as ``m.pt2``: "not a torch.export program
    (RuntimeError: PytorchStreamReader failed locating file archive_format: file not found.)"; it says which file
    it is and how to make a ``.pt2``."""
    from memplan.cli import main

    path, linear = tmp_path / "m.pt2", nn.Linear(3, 3)
    if kind == "jit":
        import warnings

        with warnings.catch_warnings():   # (torch 2.10+ says torch.jit.save is deprecated)
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.script(linear), str(path))
    else:
        torch.save(linear.state_dict(), str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err
    what = "a TorchScript module" if kind == "jit" else "a torch.save file"
    assert err.count("\n") == 1 and f"m.pt2: {what}" in err and "torch.export.save" in err, err
