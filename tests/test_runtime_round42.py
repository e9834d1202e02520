"""Round 42 (runtime): what the pycuda runtime and its emulator reported, read and took from hand-made graphs and plans.

- ``bind`` reported an arena of 0 bytes as 1 (``Binding.arena_bytes``, and so a compiled module's ``arena_bytes``),
  and checked each arena tensor against that 1: a plan of a 0-byte arena holding a 1-byte tensor bound unrefused.
- The emulator read every output as f32: an i32 output's values ``[1, 2, 3, 4]`` came back as their bits read as
  float (``[1e-45, ...]``), silently; an output of 6 bytes without a dtype as one float (its last 2 bytes dropped);
  a ``u8`` output of 4 bytes was numpy's "cannot reshape". Outputs are now read as the executors' ``read`` reads
  them (``runtime.binding.read_spec``), refused by name before any launch where they cannot be.
- ``write_weight`` on a multi-GPU executor wrote a weight's original only: its replicas (the split's copies of a weight
  read on several devices) kept their old values, and the step computed with both, silently. An array given under
  a replica's id (``weights={"w@dev1": ...}``) was dropped without a word. Now every replica is written, and a
  replica's id is refused naming its original.
- A free-form ``shape`` attr (``"abc"``, ``[2, "x"]``) made ``Executor.read`` a raw numpy error, and a list or dict
  ``dtype`` attr every input and weight check a raw "unhashable type" TypeError.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import memplan
from memplan.errors import ExecutorError, PlanFormatError
from runtime.binding import bind
from runtime.emulate import emulate


def _copy_graph(size: int, attrs: dict | None = None, in_attrs: dict | None = None):
    """``a`` (input) -COPY-> ``b`` (output), both of ``size`` bytes."""
    attrs = attrs or {}
    doc = {"format": "memplan.graph/1", "name": "copy",
           "tensors": [{"id": "a", "size": size, "kind": "input", "attrs": in_attrs if in_attrs is not None else attrs},
                       {"id": "b", "size": size, "kind": "output", "attrs": attrs}],
           "nodes": [{"id": "n", "op": "COPY", "inputs": ["a"], "outputs": ["b"]}]}
    return memplan.graph_from_dict(doc)


def test_a_zero_byte_arena_is_bound_as_zero_and_holds_no_tensor():
    """Failed before: the edited plan (arena 0, both 1-byte tensors at offset 0) bound, checked against an arena of 1
    byte; an empty arena was reported as 1 byte."""
    g = _copy_graph(1)
    plan = memplan.plan(g)
    edited = replace(plan, arena_bytes=0, tensors=tuple((t, 0, s) for t, _o, s in plan.tensors))
    with pytest.raises(PlanFormatError, match=r"puts tensor 'a' at \[0, 1\), outside the arena of 0 bytes"):
        bind(g, edited)
    empty = _copy_graph(0)
    plan0 = memplan.plan(empty)
    assert plan0.arena_bytes == 0 and bind(empty, plan0).arena_bytes == (0,)
    out = emulate(empty, plan0, {}, {"a": np.zeros(0, np.float32)})[0]
    assert out["b"].size == 0


def test_the_emulator_returns_an_i32_output_as_its_values():
    """Failed before: ``[1e-45, 3e-45, 4e-45, 6e-45]`` (the int32 bits read as float32)."""
    g = _copy_graph(16, {"dtype": "i32", "shape": [2, 2]})
    x = np.arange(1, 5, dtype=np.int32).reshape(2, 2)
    out = emulate(g, memplan.plan(g), {}, {"a": x})[0]["b"]
    assert out.dtype == np.int32 and np.array_equal(out, x)
    f16 = _copy_graph(8, {"dtype": "f16", "shape": [4]})   # (f16 outputs: their values as f32, as before)
    out16 = emulate(f16, memplan.plan(f16), {}, {"a": np.arange(4, dtype=np.float16)})[0]["b"]
    assert out16.dtype == np.float32 and np.array_equal(out16, np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("size, attrs, words", [
    (6, {}, r"read 'b': its 6 bytes are not whole float32 elements"),
    (4, {"dtype": "u8", "shape": [4]}, r"read 'b': its dtype 'u8' is none of f32, f16, i32 \(the emulator returns"),
    (16, {"dtype": "f32", "shape": [3]}, r"read 'b' as float32: 4 elements, its shape \[3\] holds 3"),
])
def test_an_output_the_emulator_cannot_read_is_refused_by_name_before_any_launch(monkeypatch, size, attrs, words):
    """Failed before: the 6 bytes came back as one float (2 bytes dropped), the others were numpy's reshape error
    after the step ran."""
    import runtime.emulate as E

    g = _copy_graph(size, attrs, in_attrs={})
    ran = []
    monkeypatch.setattr(E, "run_launch", lambda mem, ln: ran.append(ln))
    with pytest.raises(ExecutorError, match=words):
        emulate(g, memplan.plan(g), {}, {"a": np.zeros(size, np.uint8)})
    assert not ran


@pytest.mark.parametrize("shape", ["abc", [2, "x"], [True, 4]])
def test_a_free_form_shape_attr_reads_flat(monkeypatch, shape):
    """Failed before: ``Executor.read`` raised numpy's UFuncTypeError (or "an integer is required") from the shape
    check; a shape attr that is no list of sizes is no shape, as for the input checks (``graph_shape``)."""
    import fake_cuda

    g = _copy_graph(16, {"dtype": "f32", "shape": shape}, in_attrs={"dtype": "f32"})
    x = np.arange(4, dtype=np.float32)
    assert np.array_equal(emulate(g, memplan.plan(g), {}, {"a": x})[0]["b"], x)
    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    ex = Executor(g, memplan.plan(g), inputs={"a": x})
    ex.run()
    ex.synchronize()
    assert np.array_equal(ex.read("b"), x)


@pytest.mark.parametrize("dtype", [["f32"], {"f": 32}])
def test_an_unhashable_dtype_attr_is_no_raw_type_error(dtype):
    """Failed before: ``TypeError: unhashable type`` from the input check. A dtype attr the runtime does not know is
    not checked (as "bf16" is not): the array's bytes are taken."""
    g = _copy_graph(16, {"dtype": "f32"}, in_attrs={"dtype": dtype})
    x = np.arange(4, dtype=np.float32)
    assert np.array_equal(emulate(g, memplan.plan(g), {}, {"a": x})[0]["b"], x)



def _tied(first: str = "w"):
    """``z = (x * first) * w`` split over 2 devices, ``first`` ``w`` or its view ``wv`` (all of its bytes): ``w`` is
    read on both devices, so device 1 holds its replica ``w@dev1``."""
    f, w = {"dtype": "f32", "shape": [1, 64]}, {"dtype": "f32", "shape": [64]}
    doc = {"format": "memplan.graph/1", "name": "tied",
           "tensors": [{"id": "x", "size": 256, "kind": "input", "attrs": f},
                       {"id": "w", "size": 256, "kind": "weight", "attrs": w},
                       {"id": "wv", "size": 256, "kind": "intermediate", "view_of": "w", "attrs": w},
                       {"id": "y", "size": 256, "kind": "intermediate", "attrs": f},
                       {"id": "z", "size": 256, "kind": "output", "attrs": f}],
           "nodes": [{"id": "m0", "op": "MUL", "inputs": ["x", first], "outputs": ["y"]},
                     {"id": "m1", "op": "MUL", "inputs": ["y", "w"], "outputs": ["z"]}]}
    split, plan = memplan.plan_devices(memplan.graph_from_dict(doc), 2)
    assert split.graph.tensor("w@dev1").attrs["replica_of"] == "w" and plan.node_devices == (0, 0, 1)   # (premise)
    return split.graph, plan


@pytest.mark.parametrize("first, written", [("w", "w"), ("wv", "wv"), ("wv", "w")])
def test_write_weight_on_several_gpus_writes_every_replica(monkeypatch, first, written):
    """Failed before: after ``w`` (or its view ``wv``) was written from 2 to 3, ``z`` was 1 * 3 * 2 (device 1's
    replica kept 2); the one-GPU step and the emulator give 9."""
    import fake_cuda

    g, plan = _tied(first)
    fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    x = np.ones((1, 64), np.float32)
    ex = MultiGpuExecutor(g, plan, weights={"w": np.full(64, 2.0, np.float32)}, inputs={"x": x})
    ex.write_weight(written, np.full(64, 3.0, np.float32))
    ex.run()
    ex.synchronize()
    want = emulate(g, plan, {"w": np.full(64, 3.0, np.float32)}, {"x": x})[0]["z"]
    assert np.array_equal(ex.read("z"), want) and want[0, 0] == 9.0
    with pytest.raises(ExecutorError, match=r"write_weight 'w@dev1': a replica of 'w' \(its copy on device 1\): "
                                            r"write the original, which writes every replica"):
        ex.write_weight("w@dev1", np.full(64, 5.0, np.float32))


def test_a_weight_given_under_a_replicas_id_is_refused_naming_its_original(monkeypatch):
    """Failed before: ``weights={"w@dev1": ...}`` was taken as a known name and dropped: both devices ran on zeros."""
    import fake_cuda

    g, plan = _tied()
    given = ({"w@dev1": np.full(64, 2.0, np.float32)}, {"x": np.ones((1, 64), np.float32)})
    words = r"weights 'w@dev1': a replica of 'w' \(its copy on device 1\): give 'w'"
    with pytest.raises(ExecutorError, match=words):
        emulate(g, plan, *given)
    fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    with pytest.raises(ExecutorError, match=words):
        MultiGpuExecutor(g, plan, weights=given[0], inputs=given[1])


def test_an_array_given_for_a_view_of_an_input_names_the_input_to_give():
    """Was "input 'av': not an input tensor of graph 'v'" of a tensor of kind input (a view of input ``a``)."""
    f = {"dtype": "f32", "shape": [4]}
    doc = {"format": "memplan.graph/1", "name": "v",
           "tensors": [{"id": "a", "size": 32, "kind": "input", "attrs": {"dtype": "f32", "shape": [8]}},
                       {"id": "av", "size": 16, "kind": "input", "view_of": "a", "view_offset": 16, "attrs": f},
                       {"id": "b", "size": 16, "kind": "output", "attrs": f}],
           "nodes": [{"id": "n", "op": "COPY", "inputs": ["av"], "outputs": ["b"]}]}
    g = memplan.graph_from_dict(doc)
    with pytest.raises(ExecutorError, match=r"input 'av': a view of input 'a' \(16 bytes at byte 16 of it\): give 'a'"):
        emulate(g, memplan.plan(g), {}, {"av": np.zeros(4, np.float32)})
    out = emulate(g, memplan.plan(g), {}, {"a": np.arange(8, dtype=np.float32)})[0]["b"]
    assert np.array_equal(out, np.arange(4, 8, dtype=np.float32))


def test_an_unhashable_config_name_is_named():
    """Was a raw ``TypeError: unhashable type: 'list'``."""
    from runtime.models import llama as L

    with pytest.raises(ExecutorError, match=r"unknown llama config \['tiny'\] \(choose from tiny, 1b, 8b\)"):
        L.config(["tiny"])


def test_read_as_a_text_dtype_is_refused(monkeypatch):
    """Was ``SystemError: invalid maximum character passed to PyUnicode_New``: the device bytes copied into a
    ``<U1`` array as code points."""
    import fake_cuda

    g = _copy_graph(16, {"dtype": "f32", "shape": [4]})
    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    ex = Executor(g, memplan.plan(g), inputs={"a": np.full(4, -1.5, np.float32)})
    ex.run()
    ex.synchronize()
    with pytest.raises(ExecutorError, match=r"read 'b': dtype <U1 holds text"):
        ex.read("b", "U1")
    assert ex.read("b", "S4").tobytes() == np.full(4, -1.5, np.float32).tobytes()   # (bytes: taken as before)


def test_an_array_given_for_a_view_of_a_weight_names_the_weight_to_give():
    """Was "weights 'l0.kview': not a weight or cache tensor" of a view of the cache ``l0.k_cache``."""
    from runtime.models import llama as L

    cfg = L.config("tiny")
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg), L.make_inputs(cfg)
    view = g.tensor("l0.kview")
    with pytest.raises(ExecutorError, match=r"weights 'l0.kview': a view of 'l0.k_cache' \(\d+ bytes at byte \d+ of "
                                            r"it\): give 'l0.k_cache'"):
        emulate(g, memplan.plan(g), {**w, "l0.kview": np.zeros(view.size // 2, np.float16)}, inp)
