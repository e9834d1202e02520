"""torch importer, round 43: what a dynamic program is given, checked against what it takes.

- ``--dim y.0=1`` where ``y.0`` is ``b + 1`` (so ``b`` = 0, below its range [2, 64]) was refused as "input 'x'
  dimension 0 is 0, outside ...": an input and a dimension the user had not written. The option is named now.
- A dynamic program given example inputs of another dtype or rank was exported again with them and planned as
  another program (float64, rank 3), silently; a rank-1 tensor failed as torch's "tuple index out of range", a
  wrong structure as torch's bare "Trying to flatten user inputs with exported input tree spec:".
- A loaded program's recorded sizes were trusted: a ``.pt2`` whose ``model.json`` recorded ``x * 2`` smaller than
  the op makes (fewer rows, zero strides, a smaller dtype) was planned smaller than eager writes, silently.
"""

from __future__ import annotations

import json
import zipfile

import pytest
from needs import need

torch = need("torch")

from test_export_round42 import _cat_rows  # noqa: E402
from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import sized_inputs  # noqa: E402


@pytest.mark.parametrize("dims, named", [
    ({"y.0": 1}, r"--dim y\.0=1 \(s\d+=0\): makes the dynamic dimension \S+ \(torch's s\d+\) 0, outside"),
    ({"y.0": 200}, r"--dim y\.0=200 \(s\d+=199\): makes the dynamic dimension \S+ \(torch's s\d+\) 199, outside"),
    ({"x.0": 65}, r"--dim x\.0=65: makes the dynamic dimension x\.0 \(torch's s\d+\) 65, outside"),
], ids=["derived-low", "derived-high", "plain-high"])
def test_a_dim_out_of_range_names_the_option_given(dims, named):
    ep = _saved_and_loaded(_cat_rows())
    with pytest.raises(GraphError, match=named + r" the exported program's range \[2, 64\]"):
        sized_inputs(ep, None, dims)
    with pytest.raises(GraphError, match=r"^--batch 1: makes the dynamic dimension x\.0 .* 1, outside"):
        sized_inputs(ep, 1, {})
    args, _ = sized_inputs(ep, None, {"y.0": 65})
    assert [tuple(a.shape) for a in args] == [(64, 3), (65, 3)]


def test_the_cli_names_the_dim_option_out_of_range(tmp_path, capsys):
    """In process (``cli.main``, what ``python -m memplan`` runs): a subprocess spent 3-4 s of CI importing torch
    again for the same line and exit status (tests/test_cli.py keeps the real entry point's tests)."""
    program = tmp_path / "m.pt2"
    torch.export.save(_cat_rows(), str(program))
    code = main(["import", str(program), "-o", str(tmp_path / "g.json"), "--dim", "y.0=1", "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--dim y.0=1 (s" in lines[0] and "input 'x'" not in lines[0], err


class Double(nn.Module):
    def forward(self, x):
        return x * 2


@pytest.fixture(scope="module", params=[False, True], ids=["memory", "loaded"])
def double(request) -> torch.export.ExportedProgram:
    ep = torch.export.export(Double(), (torch.randn(4, 3),), dynamic_shapes=({0: Dim("n", max=100)},))
    return _saved_and_loaded(ep) if request.param else ep


@pytest.mark.parametrize("example, words", [
    ((torch.randn(5, 3, dtype=torch.float64),), r"example input 'x' is a float64 tensor of rank 2, but the exported "
                                                 r"program takes a float32 tensor of rank 2"),
    ((torch.randn(5, 3, 2),), r"example input 'x' is a float32 tensor of rank 3, but .* rank 2"),
    ((torch.randn(5),), r"example input 'x' is a float32 tensor of rank 1, but .* rank 2"),
    ((torch.zeros(5, 3, dtype=torch.int64),), r"example input 'x' is an int64 tensor"),
    ((torch.randn(5, 4),), r"example input 'x' dimension 1 is 4, but the exported program fixes it at 3"),
    ((3,), r"example input 'x' is 3 \(int\), but the exported program takes a float32 tensor of rank 2"),
    ((torch.randn(5, 3), torch.randn(2)), r"the example inputs are 2 positional inputs, but the exported program "
                                          r"takes 1 positional input"),
    (([torch.randn(5, 3)],), r"example positional input 0 is a list of 1, where the exported program takes a "
                             r"tensor or other single value"),   # (round 71: where, not both tree specs)
], ids=["dtype", "rank3", "rank1", "int64", "static-dim", "int", "count", "nested"])
def test_example_inputs_of_another_dtype_rank_or_structure_are_refused(double, example, words):
    with pytest.raises(GraphError, match=words) as err:
        memplan.from_torch(double, example)
    assert "\n" not in str(err.value)


def test_example_inputs_of_the_programs_types_still_size_it(double):
    g = memplan.from_torch(double, (torch.randn(5, 3),))
    assert {t.id: (t.size, t.attrs["dtype"]) for t in g.tensors}["x"] == (60, "float32")


class DoubleRelu(nn.Module):
    def forward(self, x):
        return (x * 2).relu()


class PlusBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.ones(4, 3))

    def forward(self, x):
        return x + self.b


def _edited(tmp_path, edit, module: nn.Module | None = None) -> str:
    """``module`` (``DoubleRelu``) saved, its ``model.json`` edited in place by ``edit(tensor_values)``: a corrupted
    program."""
    src, out = tmp_path / "ok.pt2", tmp_path / "edited.pt2"
    torch.export.save(torch.export.export(module or DoubleRelu(), (torch.randn(4, 3),)), str(src))
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name.endswith("models/model.json"):
                program = json.loads(data)
                edit(program["graph_module"]["graph"]["tensor_values"])
                data = json.dumps(program).encode()
            zout.writestr(name, data)
    return str(out)


def _sizes(*dims):
    return [{"as_int": d} for d in dims]


@pytest.mark.parametrize("edit, recorded", [
    (lambda tv: tv["mul"].update(sizes=_sizes(1, 3)), r"float32 \[1, 3\] strides \(3, 1\)"),
    (lambda tv: tv["mul"].update(strides=_sizes(0, 0)), r"float32 \[4, 3\] strides \(0, 0\)"),
    (lambda tv: tv["mul"].update(dtype=1), r"uint8 \[4, 3\]"),
    # (round 49: the input's record is checked against its saved example first, and named as the edited record)
    (lambda tv: tv["x"].update(sizes=_sizes(1, 3)), r"node 'x': the program records it as float32 \[1, 3\], but the "
                                                     r"tensor it holds or was exported with is float32 \[4, 3\]"),
], ids=["fewer-rows", "zero-strides", "smaller-dtype", "smaller-input"])
def test_a_loaded_result_recorded_smaller_than_its_op_makes_is_refused(tmp_path, edit, recorded):
    """Each edit made the plan smaller than what eager writes (``mul`` planned 12 or 4 bytes where ``x * 2`` writes 48;
    the input 12 bytes where the program's ops read 48), silently."""
    from memplan.importers.torch import load_exported

    path = _edited(tmp_path, edit)
    words = recorded if recorded.startswith("node") else (
        r"node 'mul' \(aten\.mul\.Tensor\): the program records its result as " + recorded)
    with pytest.raises(GraphError, match=words + r".* \(a corrupted or edited program"):
        memplan.from_torch(load_exported(path))


def test_the_cli_refuses_an_edited_record_in_one_line(tmp_path, capsys):
    path = _edited(tmp_path, lambda tv: tv["mul"].update(sizes=_sizes(1, 3)))
    code = main(["import", path, "-o", str(tmp_path / "g.json"), "-q"])   # (in process, as above)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "node 'mul'" in err and not (tmp_path / "g.json").exists()


def test_an_unedited_program_still_imports(tmp_path):
    from memplan.importers.torch import load_exported

    g = memplan.from_torch(load_exported(_edited(tmp_path, lambda tv: None)))
    assert {t.id: t.size for t in g.tensors} == {"x": 48, "mul": 48, "relu": 48}


@pytest.mark.parametrize("edit, recorded", [
    (lambda tv: tv["b_b"].update(sizes=_sizes(1, 3)), r"float32 \[1, 3\]"),
    (lambda tv: tv["b_b"].update(dtype=1), r"uint8 \[4, 3\]"),
], ids=["fewer-rows", "smaller-dtype"])
def test_a_loaded_weight_recorded_otherwise_than_its_tensor_is_refused(tmp_path, edit, recorded):
    """``x + b`` broadcasts a ``[1, 3]`` record as well as the ``[4, 3]`` tensor: the buffer was planned at 12 bytes
    where the program's tensor holds 48, silently."""
    from memplan.importers.torch import load_exported

    ep = load_exported(_edited(tmp_path, edit, PlusBuffer()))
    with pytest.raises(GraphError, match=r"node 'b_b': the program records weight 'b' as " + recorded +
                       r", but holds a float32 \[4, 3\] tensor for it"):
        memplan.from_torch(ep)


class Rows4(nn.Module):
    def forward(self, x):
        return x.reshape(-1, 4) * 2


@pytest.mark.parametrize("rows, why", [(2**56, "more than this machine can allocate"), (2**62, "past int64")])
def test_a_dim_too_large_to_allocate_is_refused_naming_the_option(rows, why):
    """torch.zeros of the sizes given: torch's raw "DefaultCPUAllocator: can't allocate memory" (or "Storage size
    calculation overflowed") out of ``memplan import``, and every byte written where it could allocate."""
    ep = torch.export.export(Rows4(), (torch.randn(8, 3),), dynamic_shapes={"x": {0: 4 * Dim("k")}})
    with pytest.raises(GraphError, match=rf"^input 'x' would be \[{rows}, 3\] \(\d+ bytes\) with --dim x\.0={rows} "
                                         rf"\(s\d+=\d+\): {why}"):
        sized_inputs(_saved_and_loaded(ep), None, {"x.0": rows})
    args, _ = sized_inputs(ep, None, {"x.0": 12})
    assert [tuple(a.shape) for a in args] == [(12, 3)]


def test_a_dim_naming_a_fixed_input_dimension_says_it_is_fixed():
    """``--dim x.1=4`` where the program fixed ``x``'s dimension 1 at 3 was "no such symbolic dimension", as for a
    name the program has not at all."""
    with pytest.raises(GraphError, match=r"^--dim x\.1=4: dimension 1 of input 'x' is fixed at 3 in the exported "
                                         r"program, not symbolic \(its symbolic input dimensions: x\.0, y\.0\)"):
        sized_inputs(_saved_and_loaded(_cat_rows()), None, {"x.1": 4})
    with pytest.raises(GraphError, match=r"^--dim x\.2: the program has no such symbolic dimension"):
        sized_inputs(_saved_and_loaded(_cat_rows()), None, {"x.2": 4})


class DefaultFloat64(nn.Module):
    def forward(self, x):
        torch.set_default_dtype(torch.float64)
        y = x * 1.5 + torch.ones(4, 3)
        torch.set_default_dtype(torch.float32)
        return y


def test_records_made_under_another_default_dtype_still_import():
    """The record check must not take torch's default dtype at trace time (float64 here: ``ones`` and ``int * 1.5``
    recorded float64) for a corrupted record."""
    ep = torch.export.export(DefaultFloat64(), (torch.ones(4, 3, dtype=torch.int64),))
    for program in (ep, _saved_and_loaded(ep)):
        g = memplan.from_torch(program)
        assert {t.id: (t.size, t.attrs["dtype"]) for t in g.tensors if t.id != "x"} == {
            "mul": (96, "float64"), "ones": (96, "float64"), "add": (96, "float64")}


@pytest.mark.parametrize("loaded", [False, True], ids=["memory", "loaded"])
def test_a_fixed_program_refuses_examples_that_are_not_its_inputs(loaded):
    """They were ignored: ``from_torch(ep, (torch.randn(8, 3),))`` for a program exported at ``[4, 3]`` gave the plan
    for 4 rows, silently."""
    ep = torch.export.export(DoubleRelu(), (torch.randn(4, 3),))
    ep = _saved_and_loaded(ep) if loaded else ep
    with pytest.raises(GraphError, match=r"example input 'x' dimension 0 is 8, but the exported program fixes it at 4"):
        memplan.from_torch(ep, (torch.randn(8, 3),))
    with pytest.raises(GraphError, match=r"example input 'x' is a float64 tensor of rank 2"):
        memplan.from_torch(ep, (torch.randn(4, 3, dtype=torch.float64),))
    assert {t.id: t.size for t in memplan.from_torch(ep, (torch.randn(4, 3),)).tensors}["relu"] == 48
