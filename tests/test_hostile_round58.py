"""Round 58 (hostile58): defects found by docs/experiments/hostile_s58.py, each pinned by a test that failed before."""
from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import memplan
from memplan.examples import qkv_attention
from memplan.problem import BufferProblem
from memplan.solvers import solve


@pytest.fixture(scope="module")
def objects():
    """One good instance of every public frozen dataclass memplan exports (and the solver types under them)."""
    g = qkv_attention()
    p = memplan.plan(g, streams=2)
    s = memplan.serial_schedule(g)
    bp = BufferProblem(np.array([256, 512]), np.array([0, 1]), np.array([1, 3]), 256)
    return {
        "Event": memplan.Event("a", "b"), "Schedule": s, "HappensBefore": memplan.build_happens_before(g, s),
        "Tensor": g.tensors[0], "Node": g.nodes[0], "Plan": p, "Simulation": memplan.simulate(g, p),
        "CostModel": memplan.CostModel(), "DeviceSplit": memplan.split_devices(g, 2),
        "Reuse": next(iter(memplan.reuse_table(g, p).values())), "BufferProblem": bp, "Solution": solve(bp, "greedy"),
        "Planned": memplan.plan_graph(g),
    }


NAMES = ["Event", "Schedule", "HappensBefore", "Tensor", "Node", "Plan", "Simulation", "CostModel", "DeviceSplit",
         "Reuse", "BufferProblem", "Solution", "Planned"]


@pytest.mark.parametrize("name", NAMES)
def test_every_public_dataclass_hashes_and_equals_a_deep_copy(objects, name):
    """Failed before: hash raised "unhashable type: 'numpy.ndarray'" / "'dict'" for HappensBefore, Simulation, Reuse,
    BufferProblem and Solution as plan() makes them, and ``==`` with a deep copy (or a pickled copy) raised "The truth
    value of an array with more than one element is ambiguous" for HappensBefore, BufferProblem and Solution."""
    obj = objects[name]
    for other in (copy.deepcopy(obj), pickle.loads(pickle.dumps(obj)), copy.copy(obj)):
        assert other == obj and hash(other) == hash(obj)
    assert obj != 5 and repr(obj)


HOSTILE = [None, {}, [], {"a": [1]}, "x", -1, float("nan"), np.zeros((2, 2)), [[1]], {1, 2}, 2**70]


@pytest.mark.parametrize("name", NAMES)
def test_a_dataclass_built_with_wrong_field_types_hashes_or_is_refused(objects, name):
    """Failed before: ``hash(Schedule(order={}))`` was a raw TypeError "unhashable type: 'dict'" (known from round 57),
    as were Event, Tensor, Node, CostModel, DeviceSplit, Planned and Plan with a dict, list or array in a field. Now each
    either refuses the value at construction (a memplan.errors exception) or hashes, consistently with ``==``."""
    obj = objects[name]
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        for value in HOSTILE:
            try:
                bad = dataclasses.replace(obj, **{f.name: value})
            except memplan.MemplanError:
                continue
            twin = copy.deepcopy(bad)
            assert hash(bad) == hash(bad)
            if bad == twin:
                assert hash(bad) == hash(twin), (name, f.name, value)
            repr(bad)
            assert pickle.loads(pickle.dumps(bad)) is not None


def test_schedule_of_a_dict_hashes():
    """The case round 57 left: ``hash(Schedule(order={}))`` was TypeError "unhashable type: 'dict'"."""
    assert hash(memplan.Schedule(order={}, streams=())) == hash(memplan.Schedule(order={}, streams=()))
    assert memplan.Schedule(order={}, streams=()) == memplan.Schedule(order={}, streams=())


def test_equal_values_hash_equal_across_arrays_and_tuples():
    """An array field and the equal tuple field compare equal by value and hash alike (``a == b`` implies equal
    hashes: a set of them must not hold both)."""
    a = memplan.Schedule(order=("a", "b"), streams=(0, 1))
    b = memplan.Schedule(order=np.array(["a", "b"]), streams=np.array([0, 1]))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_nan_in_an_array_field_hashes_the_same_twice(objects):
    """A NaN of an array hashes by identity after ``tolist`` (a new float each time): the hash must not change."""
    sim = dataclasses.replace(objects["Simulation"], start_us=np.array([np.nan, 1.0]))
    assert hash(sim) == hash(sim) and sim == copy.deepcopy(sim)


def test_a_sparse_non_zip_pt2_is_refused_before_torch_is_imported(tmp_path):
    """Failed before: ``memplan import big.pt2`` of a 50 GB sparse file of zeros imported torch (peak RSS 664 MB,
    9 s) before the archive check refused it; now the archive is checked first (peak 39 MB, torch never imported)."""
    pytest.importorskip("torch")
    big = tmp_path / "big.pt2"
    with open(big, "wb") as f:
        f.truncate(50 << 30)
    code = textwrap.dedent(f"""
        import sys
        from memplan.importers.torch.load import load_exported
        from memplan.errors import InputFormatError
        try:
            load_exported({str(big)!r})
        except InputFormatError as exc:
            print("refused:", exc)
        print("torch imported:", "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused:" in out.stdout and "not a torch.export program" in out.stdout, out.stderr
    assert "torch imported: False" in out.stdout


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "t", [x], [y])
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


@pytest.mark.parametrize("outputs", [True, -1, 1.5, "x", [1], {"a": [1]}, {"N": 2**62}, {1: "g.json"},
                                     {"-o": "g\x00.json"}, np.zeros((2, 2)), object()])
def test_import_onnx_names_a_bad_outputs_option(onnx_path, outputs):
    """Failed before: ``import_onnx(path, outputs=...)`` went unchecked to ``dict(outputs)`` and the file checks:
    ``outputs="x"`` a raw ValueError ("dictionary update sequence element #0 has length 1; 2 is required"),
    ``[1]``/``True`` a raw TypeError, ``{"a": [1]}`` "expected str, bytes or os.PathLike object, not list", an array
    "The truth value of an array ... is ambiguous". Now an OptionError naming ``outputs``."""
    from memplan.importers import import_onnx
    with pytest.raises(memplan.errors.OptionError, match="outputs"):
        import_onnx(onnx_path, outputs=outputs)


def test_import_onnx_takes_path_like_outputs(onnx_path, tmp_path):
    from memplan.importers import import_onnx
    assert import_onnx(onnx_path, outputs={"-o": tmp_path / "g.json"}).nodes
    assert import_onnx(onnx_path, outputs={}).nodes


def _zip_of(members, compression):
    import io
    import zipfile
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    bio.seek(0)
    return bio


def test_a_deflated_zip_bomb_member_is_refused_before_torch_reads_it():
    """Failed before: a 264 KB .pt2 with a deflated 256 MiB member of zeros passed the archive check (its declared
    size is under the machine's memory) and torch's reader inflated it whole: peak RSS 1,180 MB (796 MB for the plain
    program; 2,716 MB for a 1 MB file holding 1 GiB). Now refused, naming the member, before torch is imported."""
    import zipfile

    from memplan.importers.pt2_archive import check_archive
    bomb = _zip_of({"m/extra/bomb.bin": b"\0" * (80 << 20), "m/version": b"1"}, zipfile.ZIP_DEFLATED)
    with pytest.raises(memplan.errors.InputFormatError, match="'m/extra/bomb.bin' inflates .* zip bomb"):
        check_archive(bomb, "b.pt2", limit=1 << 40)


def test_a_compressed_member_under_the_bomb_bounds_passes():
    """Real archives re-zipped with deflate still pass: a member that shrinks less than 100:1, or a small one."""
    import random
    import zipfile

    from memplan.importers.pt2_archive import check_archive
    rng = random.Random(58)
    ok = _zip_of({"m/w.bin": rng.randbytes(1 << 20), "m/zeros.bin": b"\0" * (1 << 20)}, zipfile.ZIP_DEFLATED)
    check_archive(ok, "ok.pt2", limit=1 << 40)


@pytest.mark.parametrize("path", [None, 3, b"m.pt2", ["m.pt2"], 1.5])
def test_load_exported_names_a_path_of_the_wrong_type(path):
    """Failed before: a raw TypeError from the NUL check ("argument of type 'NoneType' is not iterable", "a
    bytes-like object is required, not 'str'") or from os.stat ("expected str, bytes or os.PathLike object, not
    list"). Now an InputFormatError saying what a path is."""
    pytest.importorskip("torch")
    from memplan.importers.torch.load import load_exported
    with pytest.raises(memplan.errors.InputFormatError, match="expected an input file's path"):
        load_exported(path)


def test_load_exported_takes_a_pathlib_path(tmp_path):
    """Failed before: ``load_exported(Path(...))`` was TypeError "argument of type 'PosixPath' is not iterable"."""
    torch = pytest.importorskip("torch")
    from memplan.importers.torch.load import load_exported
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(torch.nn.ReLU(), (torch.ones(2),)), str(path))
    assert load_exported(path) is not None


@pytest.mark.parametrize("name, field, value, call", [
    ("Schedule", "order", None, lambda o: o.stream_of()),
    ("Schedule", "streams", "x", lambda o: o.num_streams),
    ("HappensBefore", "clock", None, lambda o: o.num_streams),
    ("Plan", "arena_bytes", None, lambda o: o.ratio),
    ("Plan", "lower_bound_bytes", np.zeros((2, 2)), lambda o: o.ratio),
    ("Plan", "arena_bytes", "x", lambda o: o.ratio_text()),
    ("Simulation", "makespan_us", None, lambda o: o.speedup),
    ("Solution", "arena", None, lambda o: o.gap),
    ("DeviceSplit", "stage_cost_us", None, lambda o: o.balance),
    ("DeviceSplit", "node_device", [], lambda o: o.cross_events),
    ("DeviceSplit", "graph", None, lambda o: o.cross_events),
])
def test_a_derived_value_of_wrong_field_types_is_a_memplan_error_naming_the_field(objects, name, field, value, call):
    """Failed before: raw TypeError / ValueError / AttributeError / IndexError from inside the arithmetic
    (``Schedule(order=None, ...).stream_of()``: "'NoneType' object is not iterable"; ``Plan(arena_bytes=None).ratio``:
    "unsupported operand type(s) for /"; ``Solution(arena=None).gap``: "'<=' not supported")."""
    bad = dataclasses.replace(objects[name], **{field: value})
    with pytest.raises(memplan.MemplanError, match=field):
        call(bad)


@pytest.mark.parametrize("decimals", [None, "x", -1, True, 1.5, 2**40])
def test_ratio_text_names_bad_decimals(objects, decimals):
    """Failed before: ``plan.ratio_text(None)`` a raw TypeError, ``("x")`` a ValueError, and ``(2**40)`` hung
    computing ``10**decimals``; now an OptionError naming ``decimals`` at once."""
    import signal

    def hung(*_):
        raise AssertionError("ratio_text hung (a guard against the old hang, not a timing)")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        with pytest.raises(memplan.errors.OptionError, match="decimals"):
            objects["Plan"].ratio_text(decimals)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_ratio_text_of_an_infinite_arena_is_named(objects):
    """Found by the driver: ``Plan(arena_bytes=inf).ratio_text()`` was a raw OverflowError ("cannot convert float
    infinity to integer")."""
    with pytest.raises(memplan.errors.PlanFormatError, match="arena_bytes"):
        dataclasses.replace(objects["Plan"], arena_bytes=float("inf")).ratio_text()
