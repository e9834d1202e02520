"""ONNX importer, round 66: what round 65 left, checked against onnxruntime 1.32 and onnx's reference implementation.

* GRU / LSTM / RNN of an empty batch or sequence: onnxruntime aborts the process on a GRU of either and an LSTM of an
  empty batch, so the sizes are the specification's (its shape inference: ``Y`` ``[seq, dirs, batch, hidden]``,
  ``Y_h``/``Y_c`` ``[dirs, batch, hidden]``), checked against ``onnx.reference`` where it runs (an empty batch) and
  against onnxruntime where it runs (an RNN of either, an LSTM of an empty sequence), in a child process.
* LayerNormalization over dimensions of no element and Attention of empty inputs: planned where onnxruntime runs them
  (sizes equal to its and to the reference's), refused naming the node and the input where it does not.
* Op versions onnxruntime has no CPU kernel for (``tests/onnx_reference66.py``): sized as ``onnx.reference`` makes them.
* Hostile models: each a ``GraphError`` naming the initializer, node or value (CLI: one line, exit status 2).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _planned(model, names) -> dict[str, list[int]]:
    g = import_onnx(model)
    return {t.id: t.attrs["shape"] for t in g.tensors if t.id in names}


def _reference(model, feeds, names) -> dict[str, list[int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # (a mean of no element: NaN, as the reference computes it)
        out = ReferenceEvaluator(model).run(None, feeds)
    return {k: list(np.asarray(a).shape) for k, a in zip(names, out)}


def _ort(model, feeds) -> tuple[str, dict[str, list[int]]]:
    """("ok", every output's shape) or ("run"/"load", {}) where onnxruntime refuses the model."""
    import onnx_sweep_round65 as sweep

    status, real = sweep.ort_values(sweep.Case("c", model, feeds))
    return status, ({k: v[0] for k, v in real.items()} if status == "ok" else {})


# -- recurrent ops of an empty batch or sequence -----------------------------------------------------------------------

def _recurrent(op: str, seq: int, batch: int, dirs: int = 1, extras: bool = False, hidden: int = 4, inp: int = 3):
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    r = np.random.default_rng(0)
    inits = [numpy_helper.from_array(r.standard_normal((dirs, gates * hidden, inp)).astype(np.float32), "W"),
             numpy_helper.from_array(r.standard_normal((dirs, gates * hidden, hidden)).astype(np.float32), "R")]
    names = ["X", "W", "R"]
    feeds = {"X": r.standard_normal((seq, batch, inp)).astype(np.float32)}
    if extras:   # bias, sequence lengths and initial state(s), as exporters write them
        inits.append(numpy_helper.from_array(r.standard_normal((dirs, 2 * gates * hidden)).astype(np.float32), "B"))
        feeds["L"] = np.full((batch,), seq, np.int32)
        feeds["H0"] = r.standard_normal((dirs, batch, hidden)).astype(np.float32)
        names += ["B", "L", "H0"]
        if op == "LSTM":
            feeds["C0"] = r.standard_normal((dirs, batch, hidden)).astype(np.float32)
            names.append("C0")
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, name="rnn0", hidden_size=hidden,
                            direction="bidirectional" if dirs == 2 else "forward")
    ins = [V(k, T.INT32 if v.dtype == np.int32 else T.FLOAT, list(v.shape)) for k, v in feeds.items()]
    g = helper.make_graph([node], "g", ins, [V(o, T.FLOAT, None) for o in outs], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 22)]), feeds, outs


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("dirs", [1, 2])
@pytest.mark.parametrize("extras", [False, True])
@pytest.mark.parametrize("batch", [0, 2])
def test_recurrent_ops_of_an_empty_batch_are_sized_as_the_reference_makes_them(op, dirs, extras, batch):
    # (onnxruntime aborts the process on a GRU or LSTM of batch 0: the specification's reference decides)
    model, feeds, outs = _recurrent(op, 2, batch, dirs, extras)
    want = {"Y": [2, dirs, batch, 4], **{o: [dirs, batch, 4] for o in outs[1:]}}
    assert _reference(model, feeds, outs) == want
    assert _planned(model, outs) == want


_ORT_CHILD = """
import sys, numpy as np, onnx, onnxruntime as ort
m = onnx.load_from_string(sys.stdin.buffer.read())
s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
x = np.zeros([d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim], np.float32)
print(";".join(",".join(map(str, a.shape)) for a in s.run(None, {"X": x})))
"""


@pytest.mark.parametrize(("op", "seq", "batch", "runs"), [
    ("RNN", 0, 2, True), ("RNN", 2, 0, True), ("RNN", 0, 0, True), ("LSTM", 0, 2, True),
    ("LSTM", 2, 0, False), ("GRU", 0, 2, False), ("GRU", 2, 0, False),
])
def test_recurrent_ops_of_an_empty_sequence_or_batch_as_onnxruntime_runs_them(op, seq, batch, runs):
    # onnxruntime runs these in a child process: it aborts ("terminate called without an active exception") on the
    # ones marked not to run, which memplan still plans at the specification's sizes (the reference's, above)
    model, _, outs = _recurrent(op, seq, batch, 2)
    done = subprocess.run([sys.executable, "-c", _ORT_CHILD], input=model.SerializeToString(), capture_output=True,
                          timeout=120)
    assert (done.returncode == 0) == runs, done.stderr[-300:]
    want = {"Y": [seq, 2, batch, 4], **{o: [2, batch, 4] for o in outs[1:]}}
    if runs:
        shapes = [[int(v) for v in s.split(",") if v] for s in done.stdout.decode().strip().split(";")]
        assert dict(zip(outs, shapes)) == want
    assert _planned(model, outs) == want


# -- LayerNormalization over dimensions of no element ------------------------------------------------------------------

def _layer_norm(shape: list[int], axis: int, stats: bool):
    norm = shape[axis:]
    outs = ["Y", "M", "R"] if stats else ["Y"]
    node = helper.make_node("LayerNormalization", ["X", "S", "B"], outs, name="ln0", axis=axis)
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, shape), V("S", T.FLOAT, norm), V("B", T.FLOAT, norm)],
                          [V(o, T.FLOAT, None) for o in outs])
    feeds = {"X": np.ones(shape, np.float32), "S": np.ones(norm, np.float32), "B": np.zeros(norm, np.float32)}
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), feeds, outs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 2), min_size=1, max_size=4).flatmap(
    lambda s: st.tuples(st.just(s), st.integers(-len(s), len(s) - 1), st.booleans())))
def test_layer_normalization_is_planned_exactly_where_onnxruntime_runs_it(args):
    shape, axis, stats = args
    model, feeds, outs = _layer_norm(shape, axis, stats)
    status, real = _ort(model, feeds)
    if status == "ok":
        assert _planned(model, outs) == real == _reference(model, feeds, outs)
        return
    assert status == "run" and 0 in shape[axis:]
    with pytest.raises(GraphError, match=rf"node 'ln0' \(LayerNormalization\): it normalizes over its input 'X''s "
                                         rf"dimensions from axis {axis} .* hold no element.*onnxruntime refuses"):
        import_onnx(model)


def test_layer_normalization_of_an_empty_row_count_is_planned():
    # ([0, 3] over axis -1: no row, three elements a row; onnxruntime and the reference run it, empty)
    model, feeds, outs = _layer_norm([0, 3], -1, True)
    assert _planned(model, outs) == {"Y": [0, 3], "M": [0, 1], "R": [0, 1]} == _reference(model, feeds, outs)


# -- Attention of empty inputs ----------------------------------------------------------------------------------------

def _attention(q, k, v, opset: int, past: int | None = None, heads: int | None = None, stats: bool = False):
    r = np.random.default_rng(0)
    feeds = {"Q": r.random(q, dtype=np.float32), "K": r.random(k, dtype=np.float32),
             "V": r.random(v, dtype=np.float32)}
    names, outs = ["Q", "K", "V"], ["Y"]
    if past is not None:
        feeds["PK"] = r.random((k[0], k[1], past, k[3]), dtype=np.float32)
        feeds["PV"] = r.random((v[0], v[1], past, v[3]), dtype=np.float32)
        names += ["", "PK", "PV"]
        outs += ["K2", "V2"]
    elif stats:
        outs += ["K2", "V2", "QK"]
    node = helper.make_node("Attention", names, outs, name="att0")
    if heads is not None:
        node.attribute.extend([helper.make_attribute("q_num_heads", heads), helper.make_attribute("kv_num_heads", heads)])
    g = helper.make_graph([node], "g", [V(n, T.FLOAT, list(a.shape)) for n, a in feeds.items()],
                          [helper.ValueInfoProto(name=o) for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), feeds, outs


def _attention_cases():
    """(q, k, v, past, heads): each dimension of a 4-D Attention made 0 in turn, keys held by past_key or not, and
    3-D ones (``heads``: q_num_heads = kv_num_heads) of an empty batch, sequence or hidden size."""
    base = {"B": 2, "Hq": 2, "Hk": 2, "Sq": 3, "Sk": 3, "D": 4, "Dv": 4}
    for zero in [None, *base]:
        d = dict(base)
        if zero is not None:
            d[zero] = 0
            if zero == "Hq":
                d["Hk"] = 0   # (q heads a multiple of kv heads)
        q, k, v = ((d["B"], d["Hq"], d["Sq"], d["D"]), (d["B"], d["Hk"], d["Sk"], d["D"]),
                   (d["B"], d["Hk"], d["Sk"], d["Dv"]))
        yield q, k, v, None, None
        if zero in ("Sk", "B", None):
            yield q, k, v, 3, None
            yield q, k, v, 0, None
    for b, s, skv, hid in [(0, 3, 3, 8), (2, 0, 3, 8), (2, 3, 0, 8), (2, 3, 3, 0), (2, 3, 3, 8)]:
        yield (b, s, hid), (b, skv, hid), (b, skv, hid), None, 2


@pytest.mark.parametrize("opset", [23, 24, 25])
@pytest.mark.parametrize(("q", "k", "v", "past", "heads"), list(_attention_cases()))
def test_attention_of_empty_inputs_is_planned_exactly_where_onnxruntime_runs_it(opset, q, k, v, past, heads):
    model, feeds, outs = _attention(q, k, v, opset, past, heads)
    status, real = _ort(model, feeds)
    if status == "ok" and past and k[2] == 0 and k[0]:
        # (left: ONNX's inference gives the present key no shape when K holds no keys and past_key some, so this
        # model onnxruntime runs is refused, naming the value; not a wrong size)
        with pytest.raises(GraphError, match=r"value 'K2' has no shape: shape inference could not find its rank"):
            import_onnx(model)
        return
    if status == "ok":
        planned = _planned(model, outs)
        assert planned == real
        if 0 not in (*q, *k, *v):
            return
        assert planned == _reference(model, feeds, outs)
        return
    assert status in ("run", "load")
    with pytest.raises(GraphError, match=r"node 'att0' \(Attention\): its [QKV] '[QKV]' is \[[0-9, ]*\], empty.*"
                                         r"onnxruntime"):
        import_onnx(model)


@pytest.mark.parametrize("opset", [23, 24])
def test_attention_24_of_batch_0_is_refused_naming_the_kernel(opset):
    # (before: planned [0, 2, 3, 4] as the reference makes it; onnxruntime: "Batch size must be greater than 0")
    model, feeds, outs = _attention((0, 2, 3, 4), (0, 2, 3, 4), (0, 2, 3, 4), opset, stats=True)
    assert _reference(model, feeds, outs)["Y"] == [0, 2, 3, 4]
    with pytest.raises(GraphError, match=rf"its Q 'Q' is \[0, 2, 3, 4\], empty; onnxruntime's CPU kernel of "
                                         rf"Attention-{opset} requires every dimension"):
        import_onnx(model)
