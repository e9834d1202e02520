"""Round 49: hostile ``.pt2`` archives and exported programs through the torch.export importer; each test fails without
its fix.

- An edited record of an op's result in a dtype of more bytes (a float32 ``relu`` recorded float64 or complex128) was
  planned at 2x / 4x its bytes: the record check let any wider dtype through for the trace's default dtype, which it
  takes from the record already (now also a complex one: ``int_x * 1j`` under a float64 default).
- A user input recorded in another dtype or shape than the example it was exported with (its readers edited to
  match) was planned at the record's bytes.
- A saved guard multiplying what is not surely a number (``L['y'].shape * N``, ``size()[:]``, a ``str`` input
  ``L['s'] * N``, ``torch.sym_max(size(), ...)``) or formatting a string (``'%0999999999d' % 1``) passed the guard
  check and would build gigabytes when the program is specialized.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from cli_contract import assert_bad_input, run_memplan
from needs import need
from torch_saved import edited_program as _edited
from torch_saved import small_module

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError, InputFormatError  # noqa: E402
from memplan.importers import from_torch  # noqa: E402
from memplan.importers.torch import load_exported  # noqa: E402
from memplan.importers.torch.untrusted import _guard_text_refusal  # noqa: E402

#: torch.export's serialized ScalarType codes (torch._export.serde.schema.ScalarType)
FLOAT64, COMPLEX128, INT32 = 8, 11, 4


def _values(program: dict) -> dict:
    return program["graph_module"]["graph"]["tensor_values"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("s") / "small.pt2"
    torch.export.save(torch.export.export(small_module(), (torch.ones(2, 3),)), str(path))
    return path


def _refused(capsys, tmp_path: Path, path: Path, *words: str) -> None:
    out = tmp_path / "g.json"
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q"])
    assert_bad_input(code, err, *words)
    assert not out.exists()


# ---- 1. a result recorded in a dtype of more bytes ----------------------------------------------------------------


@pytest.mark.parametrize(("names", "code", "words"), [
    (["relu"], FLOAT64, "float64"), (["relu"], COMPLEX128, "complex128"), (["relu"], INT32, "int32"),
    (["linear", "relu"], FLOAT64, "float64")])
def test_a_result_recorded_in_another_dtype_is_refused(tmp_path, saved, capsys, names, code, words):
    """Was: ``relu`` recorded float64 planned at 64 bytes where the op writes 32 (complex128: 128), silently."""
    def edit(program):
        for name in names:
            assert _values(program)[name]["dtype"] == 7, "torch records otherwise: update"
            _values(program)[name]["dtype"] = code
    path = _edited(saved, tmp_path / "wide.pt2", edit)
    first = names[0]
    with pytest.raises(GraphError, match=rf"node '{first}' .*records its result as {words} \[2, 4\].*but the op "
                                         r"makes float32 \[2, 4\]"):
        from_torch(load_exported(str(path)))
    _refused(capsys, tmp_path, path, f"node '{first}'", words)


class _DefaultFloat64Complex(torch.nn.Module):
    def forward(self, x):
        torch.set_default_dtype(torch.float64)
        try:
            return x * 1j, x / 2, torch.ones(2, 3)
        finally:
            torch.set_default_dtype(torch.float32)


def test_results_promoted_under_the_traces_default_dtype_still_import():
    """``int_x * 1j`` traced under a float64 default is complex128 (this process makes complex64): the record's word."""
    ep = torch.export.export(_DefaultFloat64Complex(), (torch.ones(2, 3, dtype=torch.int64),))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    for program in (ep, torch.export.load(buf)):
        g = from_torch(program)
        got = {t.id: (t.size, t.attrs["dtype"]) for t in g.tensors if t.id != "x"}
        assert got == {"mul": (96, "complex128"), "div": (48, "float64"), "ones": (48, "float64")}


def test_an_unedited_program_plans_the_same(saved):
    g = from_torch(load_exported(str(saved)))
    assert {t.id: t.size for t in g.tensors} == {"p_lin_weight": 48, "p_lin_bias": 16, "x": 24, "linear": 32,
                                                 "relu": 32}
    memplan.plan(g)


# ---- 2. a user input recorded otherwise than its example --------------------------------------------------------


@pytest.mark.parametrize("field", ["dtype", "rows"])
def test_an_input_recorded_otherwise_than_its_example_is_refused(tmp_path, saved, capsys, field):
    """Was: ``x`` (and the records after it) edited to float64, or to 5 rows, planned at the record's bytes."""
    def edit(program):
        for name in ("x", "linear", "relu"):
            if field == "dtype":
                _values(program)[name]["dtype"] = FLOAT64
            else:
                _values(program)[name]["sizes"][0] = {"as_int": 5}
    path = _edited(saved, tmp_path / "input.pt2", edit)
    words = "float64 [2, 3]" if field == "dtype" else "float32 [5, 3]"
    with pytest.raises(GraphError, match=rf"node 'x': the program records it as {re.escape(words)}, but the tensor "
                                         r"it holds or was exported with is float32 \[2, 3\]"):
        from_torch(load_exported(str(path)))
    _refused(capsys, tmp_path, path, "node 'x'")


# ---- 3. saved guards that repeat a sequence or format a string ----------------------------------------------------


@pytest.mark.parametrize("guard", [
    "L['y'].shape * 4000000000 == 0", "L['y'].size()[:] * 4000000000 == 0", "L['y'].stride()[0:] * 3 == 0",
    "torch.sym_max(L['y'].size(), (1,)) * 3 == 0", "(L['y'].shape or 1) * 3 == 0",
    "(L['y'].shape + L['y'].shape) * 3 == 0", "('a', 'b')[0] * 3 == 0", "L['s'] * 4000000000 == 0",
    "L['s'][0] * 3 == 0", "'%0999999999d' % 1 == 0", "L['s'] % 1 == 0"])
def test_a_guard_multiplying_what_is_no_number_is_refused(guard):
    why = _guard_text_refusal(torch, guard, frozenset({"s"}))
    assert why is not None and ("repeats" in why or "formats" in why), (guard, why)


@pytest.mark.parametrize("guard", [
    "(L['x'].size()[0] % 4) == 0", "2*L['n'] <= L['x'].size()[0]", "L['x'].size()[0]*L['x'].size()[1] == 12",
    "((-2) + 2*L['xs'][0].size()[0]) == L['y'].size()[0]", "L['n'] % 2 == 0", "L['x'].numel() * 2 > 1",
    "torch.sym_max(L['y'].size()[0], 2) * 2 > 2", "L['x'].size(0) * 2 > 1", "-L['x'].shape[-1] * 2 < 0",
    "math.floor(L['f']) * 2 == 2", "(L['x'].size()[0] == 4) * 3 == 3", "L['s'] == 'abc'"])
def test_guards_of_numbers_are_still_taken(guard):
    assert _guard_text_refusal(torch, guard, frozenset({"s"})) is None, guard


class _StrInput(torch.nn.Module):
    def forward(self, y, s: str):
        return y * 2 if s == "a" else y * 3


@pytest.fixture(scope="module")
def str_dynamic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("g") / "strdyn.pt2"
    ep = torch.export.export(_StrInput(), (torch.ones(4, 8), "a"),
                             dynamic_shapes={"y": {0: torch.export.Dim("b", min=2, max=64)}, "s": None})
    torch.export.save(ep, str(path))
    return path


@pytest.mark.parametrize("guard", ["L['s'] * 3 == 'aaa'", "L['y'].shape * 3 == (4, 8, 4, 8, 4, 8)"])
def test_a_saved_guard_repeating_an_input_is_refused_before_it_runs(tmp_path, str_dynamic, capsys, guard):
    """Was: the guard passed the check and ran as the program was specialized (``--batch 4``): with a factor of 4e9,
    a 4 GB string or a 32 GB tuple."""
    path = _edited(str_dynamic, tmp_path / "guarded.pt2", lambda p: p["guards_code"].append(guard))
    with pytest.raises(InputFormatError, match=r"a guard in the program, .* is not one torch.export writes .*repeats"):
        load_exported(str(path))
    out = tmp_path / "g.json"
    code, _, err = run_memplan(capsys, ["import", path, "-o", out, "-q", "--batch", "4"])
    assert_bad_input(code, err, "a guard in the program")
    assert not out.exists()


def test_a_program_with_a_str_input_is_still_specialized(tmp_path, str_dynamic, capsys):
    out = tmp_path / "g.json"
    code, _, err = run_memplan(capsys, ["import", str_dynamic, "-o", out, "-q", "--batch", "4"])
    assert code == 0, err
    assert {t["id"]: t["size"] for t in json.loads(out.read_text())["tensors"]}["mul"] == 4 * 8 * 4


# ---- 4. weight layouts in the payload config ----------------------------------------------------------------------


def _rewritten(src: Path, dst: Path, rewrite) -> Path:
    """``src`` with each member's bytes passed through ``rewrite(name, data)`` (None drops the member)."""
    with zipfile.ZipFile(io.BytesIO(src.read_bytes())) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = rewrite(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _weight_meta(edit, empty: bool = False):
    """A ``_rewritten`` rewrite: ``edit(tensor_meta)`` on ``lin.weight``'s payload entry; ``empty``: its record emptied
    (what torch.export.save writes for a fake weight)."""
    def rewrite(name: str, data: bytes) -> bytes:
        if name.endswith("data/weights/model_weights_config.json"):
            config = json.loads(data)
            edit(config["config"]["lin.weight"]["tensor_meta"])
            return json.dumps(config).encode()
        return b"" if empty and name.endswith("data/weights/weight_0") else data
    return rewrite


@pytest.mark.parametrize(("field", "value", "words"), [
    ("sizes", [{"as_int": 8}, {"as_int": 3}], "reach byte 96 of a record holding 48"),
    ("dtype", FLOAT64, "in 8-byte elements, which reach byte 96 of a record holding 48"),
    ("storage_offset", {"as_int": 1}, "reach byte 52 of a record holding 48"),
    ("storage_offset", {"as_int": -5}, "a negative size, stride or storage offset")])
def test_a_weight_layout_its_record_cannot_hold_is_refused_naming_it(tmp_path, saved, capsys, field, value, words):
    """Was: "not a torch.export program (RuntimeError: setStorage: sizes [8, 3] ... out of bounds)", naming no weight."""
    path = _rewritten(saved, tmp_path / "w.pt2", _weight_meta(lambda tm: tm.__setitem__(field, value)))
    with pytest.raises(InputFormatError, match=rf"weight 'lin\.weight' \(record 'weight_0'\) .*{re.escape(words)}"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, "'lin.weight'", "model_weights_config.json")


def test_an_empty_record_declaring_more_than_memory_is_refused_before_torch_allocates(tmp_path, saved, capsys):
    """Was: torch's reader filled it with ``torch.zeros`` of the declared size (16 GiB for ``[2**17, 2**15]``; here a
    PiB, which failed to allocate as "not a torch.export program (RuntimeError: ...)", naming no weight)."""
    sizes = [{"as_int": 2**24}, {"as_int": 2**24}]
    path = _rewritten(saved, tmp_path / "zeros.pt2", _weight_meta(lambda tm: tm.__setitem__("sizes", sizes), True))
    with pytest.raises(InputFormatError, match=r"weight 'lin\.weight' \(record 'weight_0'\) an empty record of declared "
                                               r"size \[16777216, 16777216\], which torch's reader fills with zeros"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, "'lin.weight'", "fills with zeros")


def test_empty_records_count_against_the_memory_limit(tmp_path, saved):
    from memplan.importers.pt2_archive import check_archive

    path = _rewritten(saved, tmp_path / "zeros.pt2", _weight_meta(
        lambda tm: tm.__setitem__("sizes", [{"as_int": 100}, {"as_int": 100}]), True))
    with open(path, "rb") as f:
        check_archive(f, str(path), limit=10**6)
        with pytest.raises(InputFormatError, match=r"40000 bytes, bringing what it holds to \d+, more than this "
                                                   r"machine's 30000 bytes"):
            check_archive(f, str(path), limit=30000)


def test_a_fake_weight_saved_empty_still_loads_as_zeros(tmp_path, saved):
    path = _rewritten(saved, tmp_path / "fake.pt2", _weight_meta(lambda tm: None, True))
    ep = load_exported(str(path))
    assert ep.state_dict["lin.weight"].shape == (4, 3)
    assert {t.id: t.size for t in from_torch(ep).tensors}["p_lin_weight"] == 48


def test_an_integer_weight_requiring_gradients_is_refused_naming_it(tmp_path, saved, capsys):
    """Was: "not a torch.export program (RuntimeError: Only Tensors of floating point and complex dtype can require
    gradients)"."""
    def rewrite(name: str, data: bytes) -> bytes:
        if name.endswith("data/weights/model_weights_config.json"):
            config = json.loads(data)
            config["config"]["lin.bias"]["tensor_meta"]["dtype"] = INT32
            return json.dumps(config).encode()
        return data
    path = _rewritten(saved, tmp_path / "w.pt2", rewrite)
    with pytest.raises(InputFormatError, match=r"weight 'lin\.bias' \(record 'weight_1'\) requires_grad with a dtype"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, "'lin.bias'")


# ---- 5. a tensor record torch cannot make -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "field", "value", "words"), [
    ("relu", "sizes", [{"as_int": 2**62}, {"as_int": 4}], "sizes [4611686018427387904, 4], more elements than int64"),
    ("relu", "sizes", [{"as_int": -1}, {"as_int": 4}], "the negative size -1"),
    ("linear", "dtype", 99, "the dtype code 99, which is no torch dtype"),
    ("p_lin_bias", "dtype", INT32, "requires_grad with a dtype that is neither floating nor complex")])
def test_a_record_torch_cannot_make_is_named(tmp_path, saved, capsys, name, field, value, words):
    """Was: "not a torch.export program (RuntimeError: numel: integer multiplication overflow)" (or "negative
    dimension", "Only Tensors of floating point ..."): the file is one, and no tensor was named."""
    path = _edited(saved, tmp_path / "bad.pt2", lambda p: _values(p)[name].__setitem__(field, value))
    with pytest.raises(InputFormatError, match=rf"the program's record of .*'{name}' gives it {re.escape(words)}"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, f"'{name}'", words)


# ---- 6. a record of another layout than strided -------------------------------------------------------------------


class _ToDense(torch.nn.Module):
    def forward(self, x):
        return x.to_dense() * 2


def test_a_saved_sparse_input_is_refused_as_sparse(tmp_path, capsys):
    """Was: torch's deserializer drops the layout (a strided ``[3, 3]`` record of strides ``(0, 0)``), and the program
    was refused as "corrupted or edited" (``to_dense`` run again on the strided record makes strides (0, 0))."""
    path = tmp_path / "sparse.pt2"
    torch.export.save(torch.export.export(_ToDense(), (torch.eye(3).to_sparse(),)), str(path))
    with pytest.raises(InputFormatError, match=r"records tensor 'x' as a sparse_coo tensor \(only dense, strided"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, "'x'", "sparse_coo")


@pytest.mark.parametrize("layout", [1, 6, 0])
def test_an_edited_layout_is_refused_naming_the_tensor(tmp_path, saved, layout):
    path = _edited(saved, tmp_path / "layout.pt2", lambda p: _values(p)["linear"].__setitem__("layout", layout))
    with pytest.raises(InputFormatError, match=r"records tensor 'linear' as a \S+ tensor"):
        load_exported(str(path))


# ---- 7. an op that refuses the arguments its program records -----------------------------------------------------


def _node_args(target: str, edit):
    """An ``_edited`` edit: ``edit(inputs)`` on the serialized arguments of the node calling ``target``."""
    def run(program):
        node = next(n for n in program["graph_module"]["graph"]["nodes"] if target in n["target"])
        edit(node["inputs"])
    return run


class _AsStrided(torch.nn.Module):
    def forward(self, x):
        return x.as_strided((2,), (1,), 1) * 2


def test_an_op_refusing_its_recorded_arguments_is_refused(tmp_path, saved, capsys):
    """Was: ``linear`` given the ``[4]`` bias as its weight (eager: an error) was planned from its records, 32 bytes."""
    path = _edited(saved, tmp_path / "lw.pt2", _node_args(
        "linear", lambda args: args[1].__setitem__("arg", {"as_tensor": {"name": "p_lin_bias"}})))
    with pytest.raises(GraphError, match=r"node 'linear' \(aten\.linear\.default\): the op refuses the arguments the "
                                         r"program records \(RuntimeError: "):
        from_torch(load_exported(str(path)))
    _refused(capsys, tmp_path, path, "node 'linear'", "refuses the arguments")


def test_a_negative_as_strided_offset_is_refused(tmp_path):
    """Was: planned as a view of the whole input (48 bytes) where eager raises "invalid storage offset -1"."""
    src = tmp_path / "as.pt2"
    torch.export.save(torch.export.export(_AsStrided(), (torch.ones(3, 4),)), str(src))
    assert {t.id: t.size for t in from_torch(load_exported(str(src))).tensors}["as_strided"] == 8
    path = _edited(src, tmp_path / "neg.pt2", _node_args(
        "as_strided", lambda args: args[3].__setitem__("arg", {"as_int": -1})))
    with pytest.raises(GraphError, match=r"node 'as_strided' .*refuses the arguments .*invalid storage offset -1"):
        from_torch(load_exported(str(path)))


@pytest.mark.parametrize(("target", "reads"), [("linear", "relu"), ("relu", "nothere"), ("linear", "linear")])
def test_a_node_reading_a_tensor_made_after_it_is_named(tmp_path, saved, capsys, target, reads):
    """Was: "not a torch.export program (KeyError: 'relu')"."""
    path = _edited(saved, tmp_path / "dangling.pt2", _node_args(
        target, lambda args: args[0].__setitem__("arg", {"as_tensor": {"name": reads}})))
    with pytest.raises(InputFormatError, match=rf"node '{target}' \('torch\.ops\.aten\.{target}\.default'\) reads tensor "
                                               rf"'{reads}', which no input or earlier node makes"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, f"node '{target}'", f"'{reads}'")


def test_a_node_missing_an_argument_its_op_requires_is_named(tmp_path, saved, capsys):
    """Was: "not a torch.export program (KeyError: 'self')" for ``relu`` whose argument was renamed ``input``."""
    path = _edited(saved, tmp_path / "renamed.pt2", _node_args("relu", lambda args: args[0].__setitem__("name", "input")))
    with pytest.raises(InputFormatError, match=r"node 'relu' \(torch\.ops\.aten\.relu\.default\) gives the op no "
                                               r"argument 'self', which its schema requires \(it gives \['input'\]"):
        load_exported(str(path))
    _refused(capsys, tmp_path, path, "node 'relu'", "'self'")
