"""Round 48a: defects left by round 48's helpers, each pinned by a test that fails without its fix.

- ``copy.deepcopy(step)`` / ``pickle.dumps(step)`` of a compiled module failed with a raw ``TypeError: cannot pickle
  'module' object``: now an ``AtenExecutorError`` naming what cannot travel (``copy.copy`` stays a second name).
- An input interleaved with a weight the program writes (``base[:, ::2]`` beside a buffer ``base[:, 1::2]``) was
  refused by a byte-span test where eager runs it: now decided element by element (``layout.share_elements``).
- ``torch._assert_async`` was dropped by ``run_decompositions`` (a ``forward`` that also uses ``torch.vmap``,
  ``from_torch(..., decompose=True)``): a failing check ran on silently where eager raises.
- An edited ``.pt2`` whose record spans MORE elements than the op makes (a linear's strides edited to ``2**40``) was
  planned at terabytes; ``range_constraints`` with ``min_val > max_val`` was torch's bare "Invalid ranges [10:3]".
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from cli_contract import assert_bad_input, run_memplan
from needs import need
from torch_saved import edited_program as _edited
from torch_saved import small_module

torch = need("torch")

from memplan.errors import GraphError, InputFormatError, MemplanError  # noqa: E402
from memplan.importers import from_torch  # noqa: E402
from memplan.importers.torch import load_exported  # noqa: E402
from runtime.aten import compile as aten_compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

# ---- 1. deep copy / pickle of a compiled step ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_step():
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 3)
    return m, aten_compile(m, (torch.randn(2, 4),))


@pytest.mark.parametrize("how", [copy.deepcopy, pickle.dumps, lambda s: copy.deepcopy({"step": [s]})])
@pytest.mark.parametrize("part", [lambda s: s, lambda s: s.executor])
def test_a_deep_copy_or_pickle_of_a_step_is_a_named_refusal(linear_step, how, part):
    _m, step = linear_step
    with pytest.raises(AtenExecutorError, match=r"cannot be (deep-copied|pickled).*arena.*compile a copy of the module"):
        how(part(step))


def test_a_shallow_copy_is_the_same_step_and_a_compiled_module_copy_is_independent(linear_step):
    m, step = linear_step
    x = torch.randn(2, 4)
    same = copy.copy(step)
    assert same.executor is step.executor
    torch.testing.assert_close(same(x), m(x))
    m2 = copy.deepcopy(m)
    step2 = aten_compile(m2, (x,))
    with torch.no_grad():
        m2.weight.add_(1)
    torch.testing.assert_close(step2(x), m2(x))
    torch.testing.assert_close(step(x), m(x))   # the first step still reads the first module's weights


# ---- 2. an input interleaved with a weight the program writes --------------------------------------------------------


class _WritesOddColumns(torch.nn.Module):
    def __init__(self, base: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", base[:, 1::2])   # a view: its elements interleave with base[:, ::2]

    def forward(self, x):
        self.w.add_(1)
        return x * 2 + self.w.sum()


class _WritesItsInput(torch.nn.Module):
    def __init__(self, base: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", base[:, 1::2])

    def forward(self, x):
        x.mul_(3)
        return x + self.w


@pytest.mark.parametrize("cls", [_WritesOddColumns, _WritesItsInput])
def test_an_input_interleaved_with_a_weight_runs_as_eager(cls):
    base_e = torch.arange(32, dtype=torch.float32).reshape(4, 8)
    base_c = base_e.clone()
    eager, compiled = cls(base_e), cls(base_c)
    step = aten_compile(compiled, (torch.randn(4, 4),))
    want = eager(base_e[:, ::2])
    got = step(base_c[:, ::2])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(base_c, base_e)   # the write (to the weight or to the input) as eager's


@pytest.mark.parametrize("cls", [_WritesOddColumns, _WritesItsInput])
def test_an_input_sharing_a_weights_elements_is_still_refused(cls):
    base = torch.arange(32, dtype=torch.float32).reshape(4, 8)
    step = aten_compile(cls(base), (torch.randn(4, 4),))
    with pytest.raises(AtenExecutorError, match=r"input 'x' shares memory with weight"):
        step(base[:, 1::2])


# ---- 3. _assert_async through run_decompositions -----------------------------------------------------------------


class _CheckedVmap(torch.nn.Module):
    def forward(self, x):
        torch._assert_async((x > 0).all())
        return torch.vmap(torch.sin)(x) * 2


class _Checked(torch.nn.Module):
    def forward(self, x):
        torch._assert_async((x > 0).all())
        return torch.sin(x) * 2


def test_a_failing_assert_beside_a_vmap_raises():
    m = _CheckedVmap()
    step = aten_compile(m, (torch.rand(3, 4) + 1,))
    x = torch.rand(3, 4) + 1
    torch.testing.assert_close(step(x), m(x))
    with pytest.raises(RuntimeError):
        m(-torch.ones(3, 4))
    with pytest.raises(AtenExecutorError, match="_assert_async"):
        step(-torch.ones(3, 4))


def test_a_decomposed_import_keeps_the_assert():
    g = from_torch(_Checked(), (torch.rand(3, 4) + 1,), decompose=True)
    assert any("_assert_async" in n.op for n in g.nodes), [n.op for n in g.nodes]


_LOGGED: list = []


@torch.library.custom_op("left48a::log_sum", mutates_args=())
def _log_sum(x: torch.Tensor) -> None:
    _LOGGED.append(float(x.sum()))


@_log_sum.register_fake
def _(x):
    return None


class _LoggedVmap(torch.nn.Module):
    def forward(self, x):
        _log_sum(x)
        return torch.vmap(torch.sin)(x) * 2


def test_a_logging_custom_op_beside_a_vmap_runs_at_each_call():
    step = aten_compile(_LoggedVmap(), (torch.ones(3, 4),))
    _LOGGED.clear()
    step(torch.ones(3, 4))
    step(torch.full((3, 4), 2.0))
    assert _LOGGED == [12.0, 24.0]


# ---- 4. edited .pt2 records ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("s") / "small.pt2"
    torch.export.save(torch.export.export(small_module(), (torch.ones(2, 3),)), str(path))
    return path


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("d") / "dyn.pt2"
    ep = torch.export.export(small_module(), (torch.ones(4, 3),),
                             dynamic_shapes={"x": {0: torch.export.Dim("b", min=2, max=64)}})
    torch.export.save(ep, str(path))
    return path


@pytest.mark.parametrize("strides", [[2**40, 1], [8, 1], [4, 2], [7, 0]])
def test_a_record_spanning_more_than_the_op_writes_is_refused(tmp_path, saved, strides, capsys):
    def edit(program):
        values = program["graph_module"]["graph"]["tensor_values"]
        assert [s["as_int"] for s in values["linear"]["strides"]] == [4, 1], "torch records otherwise: update"
        values["linear"]["strides"] = [{"as_int": s} for s in strides]
    path = _edited(saved, tmp_path / "wide.pt2", edit)
    with pytest.raises(GraphError, match=r"node 'linear' .*records its result as float32 \[2, 4\] strides"):
        from_torch(load_exported(str(path)))
    out = tmp_path / "g.json"
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q"])
    assert_bad_input(code, err, "node 'linear'")
    assert not out.exists()


@pytest.mark.parametrize("name", ["x", "p_lin_weight", "p_lin_bias"])
def test_a_placeholder_record_spanning_other_elements_than_its_tensor_is_refused(tmp_path, saved, name, capsys):
    """A weight's (or the input's) strides edited to ``2**40``: planned at 13 TB where the tensor spans 12 elements."""
    def edit(program):
        values = program["graph_module"]["graph"]["tensor_values"]
        values[name]["strides"][0] = {"as_int": 2**40}
    path = _edited(saved, tmp_path / "wide.pt2", edit)
    with pytest.raises(GraphError, match=rf"node '{name}': the program records it as float32 .* strides \(1099511627776"):
        from_torch(load_exported(str(path)))
    code, _, err = run_memplan(capsys, ["import", path, "-o", tmp_path / "g.json", "-q"])
    assert_bad_input(code, err, f"node '{name}'")


class _Strided(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        base = torch.randn(4, 8)
        self.a = torch.nn.Parameter(torch.randn(3, 4).t())
        self.register_buffer("b", base[:, ::2])
        self.register_buffer("c", torch.randn(4, 1).expand(4, 3))

    def forward(self, x):
        return x @ self.a + self.b.sum() + self.c.sum()


def test_strided_weights_and_inputs_still_import(tmp_path):
    path = tmp_path / "strided.pt2"
    torch.export.save(torch.export.export(_Strided(), (torch.randn(4, 2).t(),)), str(path))
    g = from_torch(load_exported(str(path)))
    assert {t.id: t.size for t in g.tensors}["x"] == 8 * 4


def test_an_unedited_program_still_imports(saved):
    g = from_torch(load_exported(str(saved)))
    assert {t.id: t.size for t in g.tensors}["linear"] == 2 * 4 * 4


def test_an_inverted_range_names_its_symbol_and_input_dim(tmp_path, dynamic, capsys):
    def edit(program):
        (symbol, r), = program["range_constraints"].items()
        r["min_val"], r["max_val"] = 10, 3
    path = _edited(dynamic, tmp_path / "inverted.pt2", edit)
    with pytest.raises(InputFormatError, match=r"range_constraints gives symbol '\w+' \(input 'x' dimension 0\) "
                                               r"the range \[10, 3\]"):
        load_exported(str(path))
    code, _, err = run_memplan(capsys, ["import", path, "-o", tmp_path / "g.json", "-q"])
    assert_bad_input(code, err, str(path), "input 'x' dimension 0", "[10, 3]")
    assert not (tmp_path / "g.json").exists()


def test_errors_are_memplan_errors():
    assert issubclass(AtenExecutorError, MemplanError)


@pytest.mark.parametrize(("lo", "hi", "words"), [
    (10, 20, r"the range \[10, 20\], which leaves out the size 4 the program records for input 'x' dimension 0"),
    (0, 3, r"the range \[0, 3\], which leaves out the size 4 the program records for input 'x' dimension 0"),
    ("x", 3, r"\(input 'x' dimension 0\) the bound 'x', which is no integer"),
])
def test_a_range_torch_cannot_load_is_named(tmp_path, dynamic, lo, hi, words, capsys):
    """Were torch's "AssertionError: 4 not in VR[10, 20]" and "invalid literal for int()", naming no symbol."""
    def edit(program):
        (symbol, r), = program["range_constraints"].items()
        r["min_val"], r["max_val"] = lo, hi
    path = _edited(dynamic, tmp_path / "range.pt2", edit)
    with pytest.raises(InputFormatError, match=r"range_constraints gives symbol '\w+' .*" + words):
        load_exported(str(path))
    code, _, err = run_memplan(capsys, ["import", path, "-o", tmp_path / "g.json", "-q", "--batch", "4"])
    assert_bad_input(code, err, "input 'x' dimension 0")


def test_an_unbounded_range_still_loads(tmp_path):
    path = tmp_path / "open.pt2"
    ep = torch.export.export(small_module(), (torch.ones(4, 3),), dynamic_shapes={"x": {0: torch.export.Dim("b")}})
    torch.export.save(ep, str(path))
    load_exported(str(path))
