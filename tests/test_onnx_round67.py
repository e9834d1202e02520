"""ONNX importer, round 67: recurrent ops at their edges, what onnxruntime refuses to run, and new corners.

* RNN / GRU / LSTM over every output (``Y``, ``Y_h``, ``Y_c``), one or two directions, with and without bias,
  ``sequence_lens`` and initial states, of an empty sequence, batch or hidden size: planned as ``onnx.reference``
  makes them (where it runs: it fails on an empty sequence, where the sizes are the specification's and
  onnxruntime's, round 66), an RNN of ``hidden_size=0`` included (it was refused as a dimension ONNX "could not
  derive"); a GRU or LSTM of ``hidden_size`` 0, one without it and one of a negative one refused naming the
  attribute, as onnxruntime refuses them.
* The differential sweep of new corners (``tests/onnx_sweep_round67.py``): Resize, Pad, Slice, Split, Einsum,
  GatherND / ScatterND ``batch_dims``, Reshape ``allowzero`` and the cases onnxruntime refuses only as it runs.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _recurrent(op: str, seq: int, batch: int, dirs: int, extras: bool, hidden: int, opset: int = 22, inp: int = 3,
               hidden_attr: int | str | None = "hidden"):
    """A one-node RNN/GRU/LSTM named ``rnn0`` (``hidden_attr``: the attribute written, default ``hidden``; None:
    none), its feeds and its output names."""
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
    kw = {"direction": "bidirectional" if dirs == 2 else "forward"}
    if hidden_attr is not None:
        kw["hidden_size"] = hidden if hidden_attr == "hidden" else hidden_attr
    node = helper.make_node(op, names, outs, name="rnn0", **kw)
    ins = [V(k, T.INT32 if v.dtype == np.int32 else T.FLOAT, list(v.shape)) for k, v in feeds.items()]
    g = helper.make_graph([node], "g", ins, [V(o, T.FLOAT, None) for o in outs], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), feeds, outs


def _planned(model, names) -> dict[str, tuple[list[int], int]]:
    g = import_onnx(model)
    return {t.id: (t.attrs["shape"], t.size) for t in g.tensors if t.id in names}


def _reference(model, feeds, names) -> dict[str, tuple[list[int], int]] | None:
    """Each output's (shape, bytes) as onnx's reference makes it; None where it fails (an empty sequence: it
    stacks no step)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = ReferenceEvaluator(model).run(None, feeds)
    except ValueError:
        return None
    return {k: (list(np.asarray(a).shape), np.asarray(a, np.float32).nbytes) for k, a in zip(names, out)}


def _spec(op, seq, batch, dirs, hidden) -> dict[str, tuple[list[int], int]]:
    y = [seq, dirs, batch, hidden]
    want = {"Y": (y, 4 * int(np.prod(y))), "Y_h": ([dirs, batch, hidden], 4 * dirs * batch * hidden)}
    if op == "LSTM":
        want["Y_c"] = want["Y_h"]
    return want


@pytest.mark.parametrize(("op", "seq", "batch", "dirs", "extras", "hidden", "opset"), [
    (op, seq, batch, dirs, extras, hidden, opset)
    for op, seq, batch, dirs, extras, hidden in itertools.product(["RNN", "GRU", "LSTM"], [0, 2], [0, 2], [1, 2],
                                                                  [False, True], [0, 4])
    for opset in ([14, 22] if (seq, batch, extras) == (2, 2, True) else [22])])
def test_recurrent_outputs_are_sized_as_the_reference_makes_them(op, seq, batch, dirs, extras, hidden, opset):
    model, feeds, outs = _recurrent(op, seq, batch, dirs, extras, hidden, opset)
    want = _spec(op, seq, batch, dirs, hidden)
    ref = _reference(model, feeds, outs)
    assert ref is None if seq == 0 else ref == want   # (the reference stacks no step of an empty sequence)
    if hidden == 0 and op != "RNN":
        with pytest.raises(GraphError, match=rf"node 'rnn0' \({op}\) has hidden_size=0: onnxruntime refuses the "
                                             r"model \(its kernel needs hidden_size > 0\)"):
            import_onnx(model)
        return
    assert _planned(model, outs) == want


@pytest.mark.parametrize(("seq", "batch", "dirs"), [(2, 2, 1), (2, 0, 2), (0, 2, 2), (3, 1, 2)])
def test_an_rnn_of_hidden_size_zero_is_planned_as_onnxruntime_runs_it(seq, batch, dirs):
    # (before: refused, "value 'Y' dimension 3 is unknown after shape inference": ONNX sizes only a positive one)
    import onnx_sweep_round65 as sweep

    model, feeds, outs = _recurrent("RNN", seq, batch, dirs, True, 0)
    status, real = sweep.ort_values(sweep.Case("rnn", model, feeds))
    assert status == "ok"
    assert _planned(model, outs) == {k: (real[k][0], real[k][2]) for k in outs} == _spec("RNN", seq, batch, dirs, 0)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("attr", [None, -1, -4])
def test_a_recurrent_op_without_a_hidden_size_or_of_a_negative_one_is_refused_naming_it(op, attr):
    import onnx_sweep_round65 as sweep

    model, feeds, _ = _recurrent(op, 2, 2, 1, False, 4, hidden_attr=attr)
    assert sweep.ort_values(sweep.Case("rnn", model, feeds))[0] in ("load", "run")
    want = "has no hidden_size attribute" if attr is None else rf"has hidden_size={attr}: onnxruntime refuses"
    with pytest.raises(GraphError, match=rf"^model: node 'rnn0' \({op}\) {want}"):
        import_onnx(model)
