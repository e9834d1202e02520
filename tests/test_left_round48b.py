"""Round 48b: defects the round-48 helpers left.

- ``memplan.plan(g, streams=1, max_events=3)`` was taken silently where ``max_events`` alone is refused: it warns now
  (``memplan.errors.UnusedOption``), as ``memplan plan --streams 1 --max-events 3`` does, once.
- ``runtime.emulate.OutOfBounds`` could not be unpickled (``addr`` required).
- ``memplan example -o LINK``, LINK a dangling symbolic link, said "File exists" alone: it names the link now.
- A plan's ``alignment`` field is read as CONTRACT.md's rule 4 says, no stricter: every root offset a multiple of it and
  of the graph's.
- ONNX nodes onnxruntime refuses that memplan planned at 0 bytes, and empty inputs onnxruntime runs.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings

import pytest
from cli_contract import run_captured

import memplan
from memplan.errors import ScheduleError, UnusedOption
from memplan.examples import bundled

_run = run_captured


def _diamond():
    return bundled()["diamond"]


# ---- 1. max_events with one stream ---------------------------------------------------------------------------------

def test_max_events_with_one_stream_warns_naming_both_options_and_plans_the_serial_plan():
    g = _diamond()
    with pytest.raises(ScheduleError, match="max_events=3"):
        memplan.plan(g, max_events=3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        p = memplan.plan(g, streams=1, max_events=3)
    ours = [x for x in w if issubclass(x.category, UnusedOption)]
    assert len(ours) == 1 and "max_events=3" in str(ours[0].message) and "streams=1" in str(ours[0].message)
    assert ours[0].filename == __file__   # pointed at the caller, not at memplan
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        q = memplan.plan(g, streams=1)
        memplan.plan(g, streams=2, max_events=3)
    assert not [x for x in w if issubclass(x.category, UnusedOption)]
    assert p.tensors == q.tensors and p.order == q.order and p.arena_bytes == q.arena_bytes


def test_the_cli_says_it_once(tmp_path):
    g = tmp_path / "g.json"
    memplan.save_graph(_diamond(), str(g))
    code, _, err = _run("plan", g, "--streams", "1", "--max-events", "3", "-o", tmp_path / "p.json")
    assert code == 0 and err.count("warning") == 1 and "--max-events 3" in err, err


# ---- 5. OutOfBounds pickles ----------------------------------------------------------------------------------------

def test_out_of_bounds_unpickles_as_itself():
    from runtime.emulate import OutOfBounds

    e = OutOfBounds(0x1000, "access [0x1000, +4) outside every allocation")
    e.note = "x"
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is OutOfBounds and back.addr == 0x1000 and str(back) == str(e) and back.note == "x"


# ---- 3. a dangling link as example's directory -----------------------------------------------------------------------

def test_example_into_a_dangling_link_names_the_link():
    d = tempfile.mkdtemp()
    link = os.path.join(d, "link")
    os.symlink(os.path.join(d, "nowhere"), link)
    code, _, err = _run("example", "-o", link)
    assert code == 2 and "dangling symbolic link" in err and link in err, err
    os.mkdir(os.path.join(d, "x"))
    inner = os.path.join(d, "x", "l2")
    os.symlink(os.path.join(d, "nowhere2"), inner)
    code, _, err = _run("example", "-o", os.path.join(inner, "sub"))
    assert code == 2 and "dangling symbolic link" in err and inner in err, err
    assert sorted(os.listdir(d)) == ["link", "x"] and os.listdir(os.path.join(d, "x")) == ["l2"]


# ---- 2. the plan's alignment field ---------------------------------------------------------------------------------

def _plan_doc():
    g = _diamond()
    return g, memplan.plan(g).to_dict()


def test_a_plan_alignment_is_read_as_rule_4_says_no_stricter():
    """Rule 4: every root offset a multiple of the plan's ``alignment`` (and of the graph's). A field below the graph's,
    or no power of two, breaks no rule where every offset is a multiple of both; an offset that is not is a finding."""
    g, doc = _plan_doc()
    offsets = [e["offset"] for e in doc["tensors"] if e["offset"] is not None]
    assert all(o % 256 == 0 for o in offsets) and any(offsets)
    big = 512
    while all(o % big == 0 for o in offsets):
        big *= 2
    for align in (128, 1, 256, 128 * 3):
        doc["alignment"] = align
        if all(o % align == 0 for o in offsets):
            memplan.verify(g, doc)
        else:
            with pytest.raises(memplan.errors.UnsafePlan, match="rule 4"):
                memplan.verify(g, doc)
    doc["alignment"] = big   # a plan that raises the alignment must keep every offset on it
    with pytest.raises(memplan.errors.UnsafePlan, match="rule 4"):
        memplan.verify(g, doc)


# ---- 4. ONNX nodes onnxruntime refuses, and empty inputs it runs ---------------------------------------------------

def _onnx_cases():
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper

    V = helper.make_tensor_value_info

    def model(nodes, ins, outs, inits=(), opset=18):
        g = helper.make_graph(nodes, "g", ins, [helper.ValueInfoProto(name=o) for o in outs], list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)

    def c(name, a):
        return numpy_helper.from_array(np.array(a, np.int64), name)

    f = np.float32
    refused = {
        "maxunpool": (model([helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
                            [V("x", TP.FLOAT, [1, 1, 2, 2]), V("i", TP.INT64, [1, 1, 2, 2])], ["y"],
                            [c("s", [1, 1, 0, 4])]),
                      {"x": np.ones((1, 1, 2, 2), f), "i": np.zeros((1, 1, 2, 2), np.int64)}, "output_shape"),
        "maxunpool_nc": (model([helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], kernel_shape=[2, 2],
                                                 strides=[2, 2])],
                               [V("x", TP.FLOAT, [1, 1, 2, 2]), V("i", TP.INT64, [1, 1, 2, 2])], ["y"],
                               [c("s", [2, 1, 4, 4])]),
                         {"x": np.ones((1, 1, 2, 2), f), "i": np.zeros((1, 1, 2, 2), np.int64)}, "batch and channels"),
        "stft": (model([helper.make_node("STFT", ["x", "st", "", "fl"], ["y"])], [V("x", TP.FLOAT, [1, 8, 1])], ["y"],
                       [c("st", 2), c("fl", 9)], opset=17), {"x": np.ones((1, 8, 1), f)}, "longer than its signal"),
        "col2im": (model([helper.make_node("Col2Im", ["x", "im", "bs"], ["y"])], [V("x", TP.FLOAT, [1, 4, 1])], ["y"],
                         [c("im", [1, 1]), c("bs", [2, 2])]), {"x": np.ones((1, 4, 1), f)}, "padded image"),
        "gap0": (model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], [V("x", TP.FLOAT, [1, 0, 3, 3])], ["y"]),
                 {"x": np.ones((1, 0, 3, 3), f)}, "empty along an axis"),
        "gmp0": (model([helper.make_node("GlobalMaxPool", ["x"], ["y"])], [V("x", TP.FLOAT, [1, 0, 3])], ["y"]),
                 {"x": np.ones((1, 0, 3), f)}, "empty along an axis"),
        "pad0": (model([helper.make_node("Pad", ["x", "p"], ["y"])], [V("x", TP.FLOAT, [])], ["y"], [c("p", [])]),
                 {"x": np.array(1, f)}, "scalar"),
    }
    run = {
        "pad18": (model([helper.make_node("Pad", ["x", "p", "", "ax"], ["y"])], [V("x", TP.FLOAT, [2, 3])], ["y"],
                        [c("p", []), c("ax", [])]), {"x": np.ones((2, 3), f)}),
        "nonzero": (model([helper.make_node("NonZero", ["x"], ["y"])], [V("x", TP.FLOAT, [0, 3])], ["y"]),
                    {"x": np.ones((0, 3), f)}),
        "unique": (model([helper.make_node("Unique", ["x"], ["y", "i", "inv", "c"])], [V("x", TP.FLOAT, [0])],
                         ["y", "i", "inv", "c"]), {"x": np.ones((0,), f)}),
        "unique_axis": (model([helper.make_node("Unique", ["x"], ["y", "i", "inv", "c"], axis=0)],
                              [V("x", TP.FLOAT, [0, 2])], ["y", "i", "inv", "c"]), {"x": np.ones((0, 2), f)}),
    }
    del onnx
    return refused, run


def _ort(model, feeds):
    import numpy as np

    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return {o.name: np.asarray(v).nbytes for o, v in zip(s.get_outputs(), s.run(None, feeds))}
    except Exception:  # noqa: BLE001 - onnxruntime's refusal, whatever its type
        return None


@pytest.mark.parametrize("case", ["maxunpool", "maxunpool_nc", "stft", "col2im", "gap0", "gmp0", "pad0"])
def test_onnx_nodes_onnxruntime_refuses_are_refused_naming_the_node(case):
    from memplan.importers.onnx import import_onnx

    model, feeds, says = _onnx_cases()[0][case]
    assert _ort(model, feeds) is None   # onnxruntime refuses it too
    with pytest.raises(memplan.errors.GraphError, match=f"node '.*_0' .*{says}"):
        import_onnx(model)


@pytest.mark.parametrize("case", ["pad18", "nonzero", "unique", "unique_axis"])
def test_onnx_nodes_onnxruntime_runs_are_planned_at_its_sizes(case):
    from memplan.importers.onnx import import_onnx

    model, feeds = _onnx_cases()[1][case]
    real = _ort(model, feeds)
    assert real is not None
    g = import_onnx(model)
    assert {t.id: t.size for t in g.tensors if t.id in real} == real


def test_every_runtime_error_class_unpickles_as_itself():
    """Each exception class of ``runtime`` (the modules that import here) survives a trip to another process, as
    ``memplan.errors``' do: made with a message (and ``OutOfBounds``' address), pickled, unpickled, same type,
    message and attributes."""
    import importlib
    import inspect
    import pkgutil

    import runtime

    classes = set()
    for info in pkgutil.walk_packages(runtime.__path__, "runtime."):
        try:
            mod = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - a GPU or optional stack this machine lacks
            continue
        classes |= {c for c in vars(mod).values() if isinstance(c, type) and issubclass(c, BaseException)
                    and c.__module__ == mod.__name__}
    from runtime.emulate import OutOfBounds

    assert OutOfBounds in classes
    for cls in classes:
        params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                  if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        args = [0x40 if p.name == "addr" else "some message" for p in params] or ["some message"]
        made = cls(*args)
        back = pickle.loads(pickle.dumps(made))
        assert type(back) is cls and str(back) == str(made) and vars(back) == vars(made), cls


def test_the_device_entries_warn_of_max_events_with_one_stream_too():
    g = _diamond()
    for call in (lambda: memplan.plan_devices(g, 2, streams=1, max_events=3),
                 lambda: memplan.split_devices(g, 2, streams=1, max_events=3),
                 lambda: memplan.plan(g, devices=2, streams=1, max_events=3)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            call()
        ours = [x for x in w if issubclass(x.category, UnusedOption)]
        assert len(ours) == 1 and ours[0].filename == __file__, [str(x.message) for x in w]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool", "GlobalLpPool", "GlobalMaxPool"])
def test_a_pool_of_an_input_empty_off_the_batch_axis_is_refused_as_onnxruntime_refuses_it(op, tmp_path):
    """Was (session 48, lead): MaxPool/AveragePool/LpPool/GlobalLpPool of ``[1, 0, 3, 3]`` or ``[1, 2, 0, 3]`` were
    planned at 0 bytes where onnxruntime refuses to run them ("Only N can be zero"); an empty batch still runs."""
    from needs import need

    np, onnx, ort = need("numpy"), need("onnx"), need("onnxruntime")
    from onnx import TensorProto, helper

    from memplan.importers.onnx import import_onnx

    ort.set_default_logger_severity(4)
    attrs = {} if op.startswith("Global") else {"kernel_shape": [1, 1]}
    for shape in ([1, 0, 3, 3], [1, 2, 0, 3], [0, 2, 3, 3], [1, 2, 3, 3]):
        graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        path = str(tmp_path / "m.onnx")
        onnx.save(model, path)
        try:
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            session.run(None, {"x": np.zeros(shape, np.float32)})
            ort_runs = True
        except Exception as exc:   # onnxruntime's own error classes differ by build: the message says which
            assert "Only N can be zero" in str(exc) or "invalid channel count" in str(exc).lower(), exc
            ort_runs = False
        if ort_runs:
            import_onnx(path)
        else:
            with pytest.raises(memplan.errors.GraphError, match="onnxruntime refuses to run it"):
                import_onnx(path)
