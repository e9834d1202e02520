"""ONNX importer, round 66: what round 65 left, checked against onnxruntime 1.32 and onnx's reference implementation.

* GRU / LSTM / RNN of an empty batch or sequence: onnxruntime aborts the process on a GRU of either and an LSTM of an
  empty batch, so the sizes are the specification's (its shape inference: ``Y`` ``[seq, dirs, batch, hidden]``,
  ``Y_h``/``Y_c`` ``[dirs, batch, hidden]``), checked against ``onnx.reference`` where it runs (an empty batch) and
  against onnxruntime where it runs (an RNN of either, an LSTM of an empty sequence), in a child process.
* LayerNormalization / RMSNormalization over dimensions of no element, Attention of empty inputs or of a mask that
  does not fit (one of rank 5 made onnxruntime write 3x the planned output), LinearAttention of an empty batch or
  sequence, Attention-24 of double (run by the function body, not the kernel): planned exactly where onnxruntime runs
  them (sizes equal to its and to the reference's), refused naming the node and the input where it does not.
* Op versions onnxruntime has no CPU kernel for, and inputs round 65's sweep skipped (``tests/onnx_sweep_round66.py``):
  sized as ``onnx.reference`` (or onnxruntime) makes them; an op version past the checked opset is refused.
* Hostile models: each a ``GraphError`` naming the initializer, node or value (CLI: one line, exit status 2).
"""

from __future__ import annotations

import io
import re
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

def _recurrent(op: str, seq: int, batch: int, dirs: int = 1, extras: bool = False, hidden: int = 4,
               opset: int = 22, inp: int = 3,
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
import os, sys, numpy as np, onnx, onnxruntime as ort
for line in sys.stdin.read().split():   # one model a line (hex): each run in a fork of this one onnxruntime import
    m = onnx.load_from_string(bytes.fromhex(line))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.zeros([d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim], np.float32)
        os.write(w, ";".join(",".join(map(str, a.shape)) for a in s.run(None, {"X": x})).encode())
        os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 1 << 16):
        out += chunk
    os.close(r)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out.decode() or "-")
"""

_EMPTY_RECURRENT = [("RNN", 0, 2, True), ("RNN", 2, 0, True), ("RNN", 0, 0, True), ("LSTM", 0, 2, True),
                    ("LSTM", 2, 0, False), ("GRU", 0, 2, False), ("GRU", 2, 0, False)]


@pytest.fixture(scope="module")
def ort_empty_recurrent() -> dict[tuple, tuple[int, str]]:
    """(op, seq, batch) -> (exit code, output shapes) of onnxruntime running each case of the test below, every
    one in a process of its own (a fork: onnxruntime aborts the process on some), all forked from one child that
    imported onnxruntime once (seven ``python -c`` launches, each importing it, took most of the test's time)."""
    cases = [c[:3] for c in _EMPTY_RECURRENT]
    models = "\n".join(_recurrent(op, seq, batch, 2)[0].SerializeToString().hex() for op, seq, batch in cases)
    done = subprocess.run([sys.executable, "-c", _ORT_CHILD], input=models.encode(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-300:]
    lines = done.stdout.decode().split()
    assert len(lines) == 2 * len(cases), done.stdout[-300:]
    return {c: (int(code), "" if out == "-" else out) for c, code, out in zip(cases, lines[::2], lines[1::2])}


@pytest.mark.parametrize(("op", "seq", "batch", "runs"), _EMPTY_RECURRENT)
def test_recurrent_ops_of_an_empty_sequence_or_batch_as_onnxruntime_runs_them(ort_empty_recurrent, op, seq, batch,
                                                                              runs):
    # onnxruntime runs these in a process of their own: it aborts ("terminate called without an active exception")
    # on the ones marked not to run, which memplan still plans at the specification's sizes (the reference's, above)
    model, _, outs = _recurrent(op, seq, batch, 2)
    code, out = ort_empty_recurrent[(op, seq, batch)]
    assert code == 0 or not runs, code   # (1.32 aborts on the others; a later one may not)
    want = {"Y": [seq, 2, batch, 4], **{o: [2, batch, 4] for o in outs[1:]}}
    if code == 0:
        shapes = [[int(v) for v in s.split(",") if v] for s in out.split(";")]
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

def _feed_mask(model, feeds: dict, mask: tuple, dtype) -> None:
    """A zero mask of shape ``mask`` as the graph input ``M`` (the node's ``attn_mask`` once its input names it)."""
    feeds["M"] = np.zeros(mask, dtype)
    model.graph.input.append(V("M", helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(mask)))


def _attention(q, k, v, opset: int, past: int | None = None, heads: int | None = None, stats: bool = False,
               dtype=np.float32):
    r = np.random.default_rng(0)
    feeds = {"Q": r.random(q).astype(dtype), "K": r.random(k).astype(dtype), "V": r.random(v).astype(dtype)}
    names, outs = ["Q", "K", "V"], ["Y"]
    if past is not None:
        feeds["PK"] = r.random((k[0], k[1], past, k[3])).astype(dtype)
        feeds["PV"] = r.random((v[0], v[1], past, v[3])).astype(dtype)
        names += ["", "PK", "PV"]
        outs += ["K2", "V2"]
    elif stats:
        outs += ["K2", "V2", "QK"]
    node = helper.make_node("Attention", names, outs, name="att0")
    if heads is not None:
        node.attribute.extend([helper.make_attribute("q_num_heads", heads), helper.make_attribute("kv_num_heads", heads)])
    g = helper.make_graph([node], "g", [V(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
                                        for n, a in feeds.items()], [helper.ValueInfoProto(name=o) for o in outs])
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


@pytest.mark.parametrize(("opset", "dtype"), [(23, np.float32), (24, np.float32), (25, np.float32), (24, np.float16),
                                              (24, np.float64), (25, np.float64)])
@pytest.mark.parametrize(("q", "k", "v", "past", "heads"), list(_attention_cases()))
def test_attention_of_empty_inputs_is_planned_exactly_where_onnxruntime_runs_it(opset, dtype, q, k, v, past, heads):
    # (of double, onnxruntime has no CPU kernel of Attention-23/24 and runs its function body, as from opset 25)
    model, feeds, outs = _attention(q, k, v, opset, past, heads, dtype=dtype)
    status, real = _ort(model, feeds)
    if status == "ok":
        # (K of no keys after a past_key of 3: ONNX's inference gives the presents no shape; the importer's rule
        # sizes them, where they were refused as of no known rank)
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


# -- what onnxruntime cannot judge: other input types, op versions without a CPU kernel ---------------------------------

def test_the_round66_sweep_agrees_with_onnxruntime_or_the_reference():
    # sequences, optionals, strings, bfloat16 / float8 / int4 inputs, and the op versions onnxruntime has no CPU kernel
    # for (RoiAlign-22, the random ops of opset 22, QuantizeLinear-28 ...): every planned value as a runtime makes it
    import onnx_sweep_round66 as sweep

    out = io.StringIO()
    counts = sweep.run(list(sweep.all_cases(bfloat16=150)), show=50, out=out)
    failing = {k: counts[k] for k in sweep.FAILING if counts[k]}
    assert not failing, out.getvalue()
    assert counts["agree (onnxruntime)"] >= 100 and counts["agree (onnx.reference)"] >= 140, out.getvalue()
    assert counts["planned, neither runs"] <= 6, out.getvalue()   # (GlobalLpPool/MaxRoiPool/Multinomial-22 of double)


def test_every_op_version_without_a_cpu_kernel_is_judged():
    # each version onnxruntime 1.32 has no CPU kernel for is compared at least once (ImageDecoder-20 refused: its size
    # is the image's, known at run time)
    import onnx_sweep_round66 as sweep

    judged = set()
    for c in [*sweep.no_kernel_cases(), *sweep.made_cases()]:
        kind, _ = sweep.compare(c)
        if kind.startswith("agree"):
            judged |= sweep._versions(c.model) & sweep.no_kernel_versions()
    assert sweep.no_kernel_versions() - judged == {("ImageDecoder", 20)}


@pytest.mark.parametrize("label", ["made_randomnormal_float16", "test_roialign_aligned_false",
                                   "test_quantizelinear_int4"])
def test_the_round66_sweep_catches_an_under_sized_value(monkeypatch, label):
    # the comparison can fail, against the reference and against onnxruntime: a value planned a byte short
    import onnx_sweep_round66 as sweep

    case = next(c for c in sweep.all_cases() if c.label == label)
    assert sweep.compare(case)[0].startswith("agree")
    real = sweep.sweep65.import_onnx   # (both sweeps import through sweep65.imported)

    def short(model, **kw):
        g = real(model, **kw)
        for t in g.tensors:
            if t.kind == "output":
                object.__setattr__(t, "size", t.size - 1)
        return g

    monkeypatch.setattr(sweep.sweep65, "import_onnx", short)
    kind, lines = sweep.compare(case)
    assert kind == "MISMATCH" and "UNDER" in lines[0]


def _relu_and(op_node, opset: int):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="relu0"), op_node], "g",
                          [V("x", T.FLOAT, [2, 3]), V("d", T.FLOAT, [2, 3])], [V("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_an_op_version_newer_than_the_importer_was_checked_against_is_refused(monkeypatch):
    # (a newer onnx installed beside memplan defines versions none of its rules were checked against: simulated by
    # lowering the checked opset to 27; Mod-28 is then such a version, Relu-14 is not)
    from memplan.importers.onnx import model_checks

    model = _relu_and(helper.make_node("Mod", ["r", "d"], ["y"], name="mod0", fmod=1), 28)
    import_onnx(model)
    monkeypatch.setattr(model_checks, "CHECKED_OPSET", 27)
    with pytest.raises(GraphError, match=r"node 'mod0' \(Mod\) is Mod-28 at the model's opset 28: memplan's importer "
                                         r"is checked against the op versions up to opset 27"):
        import_onnx(model)
    import_onnx(_relu_and(helper.make_node("Add", ["r", "d"], ["y"], name="add0"), 28))   # (Relu-14, Add-14)


def test_the_installed_onnx_defines_no_opset_past_the_checked_one():
    # (when onnx is upgraded past opset 28, its new op versions must be swept before CHECKED_OPSET moves: this test
    # fails first, and the importer refuses their nodes meanwhile)
    import onnx

    from memplan.importers.onnx import model_checks

    assert onnx.defs.onnx_opset_version() <= model_checks.CHECKED_OPSET


# -- hostile models ---------------------------------------------------------------------------------------------------

def _hostile(nodes, inits=(), inputs=None, outputs=None):
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])] if inputs is None else inputs,
                          [V("y", T.FLOAT, None)] if outputs is None else outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _short_raw():
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    w.raw_data = w.raw_data[:-4]
    return _hostile([helper.make_node("Add", ["x", "w"], ["y"], name="add0")], [w])


def _long_raw_shape():
    s = numpy_helper.from_array(np.array([3, 2], np.int64), "s")
    s.raw_data += b"\0" * 8
    return _hostile([helper.make_node("Reshape", ["x", "s"], ["y"], name="r0")], [s])


def _short_floats():
    w = helper.make_tensor("w", T.FLOAT, [2, 3], [1.0] * 6)
    del w.float_data[-1]
    return _hostile([helper.make_node("Add", ["x", "w"], ["y"], name="add0")], [w])


def _cycle():
    return _hostile([helper.make_node("Add", ["x", "b"], ["a"], name="n0"), helper.make_node("Relu", ["a"], ["b"], name="n1"),
                     helper.make_node("Relu", ["a"], ["y"], name="n2")])


def _constant_of_shape(dims):
    s = numpy_helper.from_array(np.array(dims, np.int64), "s")
    return _hostile([helper.make_node("ConstantOfShape", ["s"], ["y"], name="c0")], [s], inputs=[])


HOSTILE = {
    "raw_data short": (_short_raw, r"initializer 'w': its raw_data holds 20 bytes, but its dims \[2, 3\] and dtype "
                                   r"float make 24"),
    "raw_data long, a shape": (_long_raw_shape, r"initializer 's': its raw_data holds 24 bytes, but its dims \[2\] "
                                                r"and dtype int64 make 16"),
    "float_data short": (_short_floats, r"initializer 'w': its float_data holds 5 values, but its dims \[2, 3\]"),
    "a cycle": (_cycle, r"node 'n0' \(Add\) reads 'b' before its producer 'n1' runs \(a cycle"),
    "a node reading its own output": (lambda: _hostile([helper.make_node("Add", ["x", "y"], ["y"], name="n0")]),
                                      r"node 'n0' \(Add\) reads 'y' before its producer 'n0' runs"),
    "an output made by two nodes": (lambda: _hostile([helper.make_node("Relu", ["x"], ["y"], name="n0"),
                                                      helper.make_node("Relu", ["x"], ["y"], name="n1")]),
                                    r"value 'y' is produced twice \(by nodes 'n0' and 'n1'\)"),
    "two outputs of one node of one name": (
        lambda: _hostile([helper.make_node("Split", ["x"], ["y", "y"], name="s0", axis=1, num_outputs=2)]),
        r"value 'y' is produced twice \(by nodes 's0' and 's0'\)"),
    "a graph input twice": (lambda: _hostile([helper.make_node("Relu", ["x"], ["y"], name="n0")],
                                             inputs=[V("x", T.FLOAT, [2, 3]), V("x", T.FLOAT, [2, 3])]),
                            r"graph input 'x' is declared twice"),
    "an empty op_type": (lambda: _hostile([helper.make_node("", ["x"], ["y"], name="n0")]),
                         r"node 'n0': its op '' is not an op of the default ONNX domain"),
    "dims past 2**63 bytes": (lambda: _hostile([helper.make_node("Relu", ["x"], ["y"], name="n0")],
                                               inputs=[V("x", T.FLOAT, [2**31, 2**31, 2**31])]),
                              r"graph input 'x': tensor 'x': size \d+ is absurd"),
    "an inferred product past int64": (lambda: _constant_of_shape([2**32, 2**32, 2**32, 2]),
                                       r"node 'c0' \(ConstantOfShape\): tensor 'y': size \d+ is absurd"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_model_is_refused_naming_what_is_wrong(name, tmp_path, capsys):
    from memplan.cli import main

    make, match = HOSTILE[name]
    model = make()
    with pytest.raises(GraphError, match=match):
        import_onnx(model)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    capsys.readouterr()
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and err, err
    assert not (tmp_path / "g.json").exists()


def test_external_data_outside_the_model_folder_is_refused_naming_the_initializer(tmp_path, capsys):
    from memplan.cli import main

    outside = tmp_path / "secret.bin"
    outside.write_bytes(np.ones(6, np.float32).tobytes())
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    model = _hostile([helper.make_node("Add", ["x", "w"], ["y"], name="add0")], [w])
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "24")):
        t.external_data.add(key=k, value=v)
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(GraphError, match=r"'w'.*its data file '../secret.bin' is outside the model's folder"):
        import_onnx(str(path))
    capsys.readouterr()
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    assert "outside the model's folder" in capsys.readouterr().err


def test_a_graph_output_listed_twice_is_planned_once_as_onnxruntime_runs_it():
    # (not hostile: onnxruntime runs it and returns the one value twice; the checker takes it; one buffer is right)
    model = _hostile([helper.make_node("Relu", ["x"], ["y"], name="n0")],
                     outputs=[V("y", T.FLOAT, None), V("y", T.FLOAT, None)])
    status, real = _ort(model, {"x": np.ones((2, 3), np.float32)})
    assert status == "ok" and real == {"y": [2, 3]}
    g = import_onnx(model)
    assert [(t.id, t.kind, t.size) for t in g.tensors if t.kind == "output"] == [("y", "output", 24)]


@pytest.mark.parametrize(("dims", "size"), [([65536, 32768], 2**33), ([2**31 + 1], 4 * (2**31 + 1)),
                                            ([3, 1431655766], 4 * 3 * 1431655766)])
def test_a_product_past_two_to_the_31_is_planned_at_its_exact_size(dims, size):
    # (no 32-bit wrap: 65536 * 32768 elements is 2**31, which an int32 product makes negative, and 3 * 1431655766
    # wraps it to 2; both planned at their real bytes)
    g = import_onnx(_constant_of_shape(dims))
    assert next(t.size for t in g.tensors if t.id == "y") == size


def test_a_product_wrapping_int64_to_zero_is_refused_not_planned_empty():
    # (2**32 * 2**32 is 0 in int64 arithmetic: a plan of 0 bytes would be an overrun of every byte written)
    with pytest.raises(GraphError, match=r"node 'c0' \(ConstantOfShape\): tensor 'y': size \d+ is absurd"):
        import_onnx(_constant_of_shape([2**32, 2**32]))


@pytest.mark.parametrize(("opset", "dtype"), [(23, np.float32), (24, np.float32), (24, np.float16), (24, np.float64),
                                              (25, np.float32)])
@pytest.mark.parametrize(("mask", "past"), [((2, 3, 4, 6), None), ((2, 3, 4, 4), None), ((2, 3, 4, 8), None),
                                            ((2, 3, 4, 9), 3), ((2, 3, 4, 6), 3), ((4, 4), None), ((4, 6), None),
                                            ((2, 3, 4, 1), None)])
def test_attention_mask_length_is_planned_exactly_where_onnxruntime_runs_it(opset, dtype, mask, past):
    # onnx's own test_attention_4d_diff_heads_mask4d_padded_kv (a mask of 4 over 6 keys) was planned at opset 24;
    # onnxruntime's kernel (float, float16) refuses a mask not as long as the keys, its function body pads it
    model, feeds, outs = _attention((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), opset, past, dtype=dtype)
    m = model.graph.node[0]
    names = list(m.input)
    names[3:4] = ["M"] if len(names) > 3 else []
    if len(names) == 3:
        names.append("M")
    del m.input[:]
    m.input.extend(names)
    _feed_mask(model, feeds, mask, dtype)
    status, real = _ort(model, feeds)
    if status == "ok":
        assert _planned(model, outs) == real
        return
    assert status == "run"
    with pytest.raises(GraphError, match=rf"node 'att0' \(Attention\): its attn_mask 'M' \({re.escape(str(list(mask)))}"
                                         rf"\) is {mask[-1]} long.*CPU kernel of Attention-{opset} refuses"):
        import_onnx(model)


def _linear_attention(b: int, s: int, hq: int, hk: int, hv: int, past: tuple | None = None):
    r = np.random.default_rng(0)
    feeds = {"q": r.random((b, s, hq), dtype=np.float32), "k": r.random((b, s, hk), dtype=np.float32),
             "v": r.random((b, s, hv), dtype=np.float32)}
    if past is not None:
        feeds["p"] = r.random(past, dtype=np.float32)
    node = helper.make_node("LinearAttention", list(feeds), ["o", "st"], name="la0", q_num_heads=4, kv_num_heads=4,
                            update_rule="linear")
    g = helper.make_graph([node], "g", [V(k, T.FLOAT, list(a.shape)) for k, a in feeds.items()],
                          [helper.ValueInfoProto(name="o"), helper.ValueInfoProto(name="st")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 27)]), feeds


@pytest.mark.parametrize("args", [(2, 4, 32, 32, 32), (0, 4, 32, 32, 32), (2, 0, 32, 32, 32), (2, 4, 0, 0, 0),
                                  (2, 4, 32, 32, 0), (0, 4, 32, 32, 32, (0, 4, 8, 8)), (2, 0, 32, 32, 32, (2, 4, 8, 8))])
def test_linear_attention_of_empty_inputs_is_planned_exactly_where_onnxruntime_runs_it(args):
    # (the sweep's empty variations of onnx's LinearAttention tests were planned; onnxruntime's function body
    # cannot reshape an input empty in its batch or tokens to [batch, tokens, heads, -1])
    model, feeds = _linear_attention(*args)
    status, real = _ort(model, feeds)
    if status == "ok":
        assert _planned(model, ["o", "st"]) == real
        return
    assert status == "run"
    with pytest.raises(GraphError, match=r"node 'la0' \(LinearAttention\): its query 'q' is \[\d+, \d+, 32\], empty "
                                         r"in its batch or tokens.*onnxruntime refuses to run it"):
        import_onnx(model)


MASKS = [(2, 3, 4, 6), (3, 3, 4, 6), (1, 3, 4, 6), (2, 2, 4, 6), (2, 1, 4, 6), (2, 3, 5, 6), (2, 3, 1, 6), (3, 4, 6),
         (5, 4, 6), (1, 4, 6), (4, 6), (5, 6), (1, 6), (6,), (1, 2, 3, 4, 6), (3, 1, 3, 4, 6), (1, 1, 4, 6)]


@pytest.mark.parametrize(("opset", "dtype"), [(23, np.float32), (24, np.float32), (24, np.float64), (25, np.float32)])
@pytest.mark.parametrize("mask", MASKS)
def test_attention_mask_shape_is_planned_exactly_where_onnxruntime_runs_it(opset, dtype, mask):
    # (before: every mask planned; at opset 25 a mask of [3, 1, 3, 4, 6] made onnxruntime write Y [3, 2, 3, 4, 8],
    # three times the [2, 3, 4, 8] planned: an overrun)
    model, feeds, outs = _attention((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8), opset, stats=True, dtype=dtype)
    model.graph.node[0].input.append("M")
    _feed_mask(model, feeds, mask, dtype)
    status, real = _ort(model, feeds)
    if status == "ok" and len(mask) <= 4:
        assert _planned(model, outs) == real
        return
    assert status == "run" or real["Y"] != [2, 3, 4, 8]
    with pytest.raises(GraphError, match=r"node 'att0' \(Attention\): its attn_mask 'M' .*(does not fit|has 5 dim)"):
        import_onnx(model)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 2), min_size=1, max_size=4).flatmap(
    lambda s: st.tuples(st.just(s), st.integers(-len(s), len(s) - 1))))
def test_rms_normalization_is_planned_exactly_where_onnxruntime_runs_it(args):
    # (as LayerNormalization: [2, 0] over axis -1 was planned; onnxruntime refuses a mean square of no element)
    shape, axis = args
    norm = shape[axis:]
    node = helper.make_node("RMSNormalization", ["X", "S"], ["Y"], name="rms0", axis=axis)
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, shape), V("S", T.FLOAT, norm)], [V("Y", T.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])
    status, real = _ort(model, {"X": np.ones(shape, np.float32), "S": np.ones(norm, np.float32)})
    if status == "ok":
        assert _planned(model, ["Y"]) == real
        return
    assert status == "run" and 0 in norm
    with pytest.raises(GraphError, match=r"node 'rms0' \(RMSNormalization\): it normalizes over .* hold no element"):
        import_onnx(model)


@pytest.mark.parametrize(("opset", "dtype"), [(23, np.float32), (24, np.float32), (24, np.float64), (25, np.float32)])
@pytest.mark.parametrize("mask", [(2, 3, 4, 6), (3, 3, 4, 6), (2, 1, 4, 6), (2, 3, 1, 6), (3, 4, 6), (5, 4, 6),
                                  (2, 4, 6), (4, 6), (1, 6), (6,)])
def test_attention_mask_shape_of_a_3d_query_as_onnxruntime_runs_it(opset, dtype, mask):
    # (Q [2, 4, 24] of 3 heads: the mask fits [2, 3, 4, keys] as for a 4-D one)
    model, feeds, outs = _attention((2, 4, 24), (2, 6, 24), (2, 6, 24), opset, heads=3, dtype=dtype)
    model.graph.node[0].input.append("M")
    _feed_mask(model, feeds, mask, dtype)
    status, real = _ort(model, feeds)
    if status == "ok":
        assert _planned(model, outs) == real
        return
    with pytest.raises(GraphError, match=r"node 'att0' \(Attention\): its attn_mask 'M' "):
        import_onnx(model)


@pytest.mark.parametrize(("batch", "lengths"), [(2, 2), (2, 1), (1, 2), (2, 3), (3, 1), (0, 0), (0, 2)])
def test_attention_24_of_double_nonpad_lengths_as_its_function_body_runs_them(batch, lengths):
    # (round 65 held every Attention-24 to its CPU kernel's rule, one length per batch entry; of double onnxruntime has
    # no kernel and runs the function body, which broadcasts one length: [2, 1] was refused, and ran)
    import test_onnx_round65 as r65

    case = r65._attention(batch, lengths, 24)
    for vi in case.model.graph.input:
        if vi.name in ("Q", "K", "V"):
            vi.type.tensor_type.elem_type = T.DOUBLE
    feeds = {k: v.astype(np.float64) if k in ("Q", "K", "V") else v for k, v in case.feeds.items()}
    status, real = _ort(case.model, feeds)
    if status == "ok" and real["Y"][0] == batch:
        assert _planned(case.model, ["Y"]) == real
        return
    with pytest.raises(GraphError, match=r"node 'att0' \(Attention\): its nonpad_kv_seqlen 'n' holds"):
        import_onnx(case.model)


@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("shape", [(2, 4, 3, 3), (0, 4, 3, 3), (2, 4, 0, 3), (2, 0, 3, 3), (2, 4, 3), (0, 4, 3),
                                   (2, 4, 0)])
def test_group_normalization_of_an_empty_input_as_onnxruntime_runs_it(opset, shape):
    # (the sweep's @empty GroupNormalization cases were planned; onnxruntime's function body cannot reshape them)
    groups = 2 if shape[1] else 1
    scale = (groups,) if opset < 21 else (shape[1],)
    node = helper.make_node("GroupNormalization", ["X", "S", "B"], ["Y"], name="gn0", num_groups=groups)
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, list(shape)), V("S", T.FLOAT, list(scale)),
                                        V("B", T.FLOAT, list(scale))], [V("Y", T.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    feeds = {"X": np.ones(shape, np.float32), "S": np.ones(scale, np.float32), "B": np.zeros(scale, np.float32)}
    status, real = _ort(model, feeds)
    if status == "ok":
        assert _planned(model, ["Y"]) == real
        return
    assert status == "run" and 0 in shape
    with pytest.raises(GraphError, match=r"node 'gn0' \(GroupNormalization\): its input 'X' is .*, empty"):
        import_onnx(model)
