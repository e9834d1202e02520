"""ONNX importer, round 56: GatherPacked's table rows are held to ``K`` (a table of narrower rows was planned);
MatMulFpQ4, QMoE and AttnLSTM, refused by name before (``ORT_UNSIZED``), are sized by rules of memplan's, checked
here against the bytes onnxruntime 1.32's CPU kernels write (``tests/onnx_oracle.py``); inputs the kernels refuse
are refused naming the node. The sweep of every rule against onnxruntime is ``tests/onnx_sweep_round56.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import feeds_for, ort_refuses, ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS = "com.microsoft"
F = T.FLOAT


def _model(op: str, inputs: list, outputs: int | tuple = 1, inits: dict | None = None, **attrs):
    """One ``op`` node ``n`` of domain com.microsoft on graph inputs ``inputs`` ((name, type, shape); an empty name
    an omitted optional input) and initializers ``inits`` (name -> array, in the order given after the inputs), its
    outputs ``y<k>`` the graph's outputs (``outputs``: how many, or a tuple of which are asked for)."""
    asked = outputs if isinstance(outputs, tuple) else (True,) * outputs
    outs = [f"y{k}" if on else "" for k, on in enumerate(asked)]
    names = [i[0] for i in inputs] + list(inits or {})
    node = helper.make_node(op, names, outs, domain=MS, name="n", **attrs)
    g = helper.make_graph([node], "g", [V(n, t, s) for n, t, s in inputs if n],
                          [helper.ValueInfoProto(name=o) for o in outs if o],
                          initializer=[numpy_helper.from_array(a, k) for k, a in (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)], ir_version=10)


def _check_against_ort(model, feeds: dict | None = None) -> None:
    """memplan's sizes of every output equal what onnxruntime's CPU kernel writes."""
    real = ort_sizes(model, feeds if feeds is not None else feeds_for(model), strict=True)
    compared, bad = size_mismatches(import_onnx(model), real)
    assert compared == len([o for o in model.graph.node[0].output if o]) and not bad, bad


def _refused(model, match: str, feeds: dict | None = None) -> None:
    """onnxruntime refuses ``model`` (fed ``feeds``) and memplan refuses it naming node 'n' and ``match``."""
    assert ort_refuses(model, feeds if feeds is not None else feeds_for(model))
    op = model.graph.node[0].op_type
    with pytest.raises(GraphError, match=rf"node 'n' \(com.microsoft:{op}\): .*{match}"):
        import_onnx(model)


# --- GatherPacked: the table's row width is K's -------------------------------------------------------------------

def _packed(row: int, ptype: int, k: int, idx=(2, 3)):
    model = _model("GatherPacked", [("d", T.UINT8, [10, row]), ("i", T.INT64, list(idx))], packed_type=ptype, K=k,
                   output_dtype=1)
    feeds = feeds_for(model)
    feeds["i"] = np.zeros_like(feeds["i"])
    return model, feeds


@pytest.mark.parametrize("row, ptype, k", [
    (144, 2, 256), (36, 2, 64), (4, 0, 1), (176, 13, 256), (72, 42, 256), (18, 42, 64), (136, 23, 256),
    (544, 8, 512), (164, 22, 512), (1024, 30, 512),
])
def test_gather_packed_of_the_row_width_k_takes_is_sized_as_onnxruntime_writes_it(row, ptype, k):
    _check_against_ort(*_packed(row, ptype, k))


@pytest.mark.parametrize("row, ptype, k, why", [
    (72, 2, 256, "rows of 72 bytes, but K=256 values of packed_type 2 .* take 144"),   # half a Q4_0 row
    (145, 2, 256, "rows of 145 bytes"),
    (1000, 0, 256, "rows of 1000 bytes, but K=256 .* take 1024"),
    (18, 2, 16, "K=16 is no whole number of packed_type 2's blocks of 32 values"),
    (176, 13, 128, "K=128 is no whole number of packed_type 13's blocks of 256"),
])
def test_gather_packed_whose_rows_do_not_fit_k_is_refused_naming_the_node(row, ptype, k, why):
    """Before: planned ``[2, 3, 256]`` float (6144 bytes) from a Q4_0 table of 72-byte rows, half of what ``K`` 256
    takes; onnxruntime refuses the model."""
    model, feeds = _packed(row, ptype, k)
    _refused(model, "cannot size its output 'y0' from these inputs \\(.*" + why, feeds)


# --- MatMulFpQ4 -------------------------------------------------------------------------------------------------

def _fpq4(a=(3, 64), k=64, n=8, blob=None, q=0):
    blob = n * -(-k // 32) * (20 if q == 0 else 21) if blob is None else blob
    return _model("MatMulFpQ4", [("a", F, list(a))], inits={"b": np.zeros(blob, np.uint8),
                                                             "s": np.array([k, n], np.int64)}, blk_quant_type=q)


@pytest.mark.parametrize("kw", [
    {}, {"q": 1}, {"q": 2},                                        # 2 packs as 1 does (21 bytes a block)
    {"a": (2, 5, 100), "k": 100, "n": 3},                         # K no multiple of 32: 4 blocks a column
    {"a": (64,)}, {"a": (4, 1, 2, 64)},
])
def test_matmul_fpq4_is_sized_as_onnxruntime_writes_it(kw):
    """Before: refused by name. ``[3, 64]`` times a ``[64, 8]`` 4-bit B: ``[3, 8]`` float, 96 bytes."""
    model = _fpq4(**kw)
    try:
        real = ort_sizes(model, feeds_for(model), strict=True)
    except AssertionError as exc:
        if "not yet supported on this hardware platform" not in str(exc):
            raise
        # (onnxruntime's 4-bit kernel needs CPU features some CI machines lack, an AMD EPYC VM without AVX-512
        # among them: there the size it writes elsewhere, A's rows times N float32s, is checked instead)
        a, n = kw.get("a", (3, 64)), kw.get("n", 8)
        real = {"y0": math.prod(a[:-1]) * n * 4}
    compared, bad = size_mismatches(import_onnx(model), real)
    assert compared == 1 and not bad, bad


@pytest.mark.parametrize("kw, why", [
    ({"blob": 159}, "packed B has 159 bytes, but B_shape \\[64, 8\\] of blk_quant_type 0 takes 320"),
    ({"blob": 320, "q": 1}, "packed B has 320 bytes, but .* takes 336"),
    ({"a": (3, 63)}, "one of unknown shape"),                      # A's last axis is not K
    ({"k": 0, "blob": 0, "a": (3, 0)}, "one of unknown shape"),
])
def test_matmul_fpq4_that_onnxruntime_refuses_is_refused_naming_the_node(kw, why):
    _refused(_fpq4(**kw), "cannot size its output 'y0' from these inputs \\(.*" + why)


def test_matmul_fpq4_of_a_b_shape_given_at_run_time_is_refused_as_data_dependent():
    """Its B_shape fed at run time: the output's size follows its values. Undeclared, the refusal said only that
    no shape inference "could size" the op's output (as if a rule were missing), not that it depends on a value."""
    model = _model("MatMulFpQ4", [("a", F, [3, 64]), ("s", T.INT64, [2])], inits={"b": np.zeros(160, np.uint8)})
    model.graph.node[0].input[:] = ["a", "b", "s"]
    with pytest.raises(GraphError, match="value 'y0' has no type or shape \\(it depends on values computed at run time"):
        import_onnx(model)


# --- QMoE -----------------------------------------------------------------------------------------------------

def _qmoe(x=(6, 64), experts=4, hidden=64, inter=64, bits=4, router=None, t=F, fc1_experts=None, **attrs):
    dt = np.float16 if t == T.FLOAT16 else np.float32
    pack = 8 // bits
    rows = int(np.prod(x[:-1]))
    inits = {"w1": np.zeros((fc1_experts or experts, inter, hidden // pack), np.uint8), "s1": np.ones((experts, inter), dt),
             "": None, "w2": np.zeros((experts, hidden, inter // pack), np.uint8), "s2": np.ones((experts, hidden), dt)}
    model = _model("QMoE", [("x", t, list(x)), ("r", t, list(router or (rows, experts)))],
                   inits={k: v for k, v in inits.items() if k}, expert_weight_bits=bits, **attrs)
    model.graph.node[0].input[:] = ["x", "r", "w1", "s1", "", "w2", "s2"]
    return model


@pytest.mark.parametrize("kw", [
    {}, {"x": (2, 3, 64)}, {"bits": 8}, {"t": T.FLOAT16}, {"k": 2}, {"x": (5, 32), "hidden": 32, "inter": 16},
])
def test_qmoe_is_sized_as_onnxruntime_writes_it(kw):
    """Before: refused by name. 6 tokens of 64 floats: ``[6, 64]``, 1536 bytes."""
    _check_against_ort(_qmoe(**kw))


@pytest.mark.parametrize("kw", [
    {"router": (5, 4)},                  # a router row per token: 6
    {"router": (6, 4, 1)},
    {"x": (1, 2, 3, 64), "router": (6, 4)},
    {"fc1_experts": 3},
])
def test_qmoe_that_onnxruntime_refuses_is_refused_naming_the_node(kw):
    _refused(_qmoe(**kw), "cannot size its output 'y0'")


# --- AttnLSTM -------------------------------------------------------------------------------------------------

def _attn(seq=3, batch=2, inp=5, hidden=4, dirs=1, mem=(2, 6, 7), attn=3, aw=None, outputs=3, extra=(), **attrs):
    shapes = {"X": (seq, batch, inp), "W": (dirs, 4 * hidden, inp + (aw or mem[2])), "R": (dirs, 4 * hidden, hidden),
              "QW": (dirs, hidden, attn), "MW": (dirs, mem[2], attn), "V": (dirs, attn), "M": mem}
    if aw:
        shapes["AW"] = (dirs, mem[2] + hidden, aw)
    shapes.update(dict(extra))
    order = ["X", "W", "R", "B", "L", "H0", "C0", "P", "QW", "MW", "V", "M", "ML", "AW"]
    names = [v if v in shapes else "" for v in order]
    while not names[-1]:
        names.pop()
    types = {"L": T.INT32, "ML": T.INT32}
    model = _model("AttnLSTM", [(v, types.get(v, F), list(shapes[v])) for v in names if v], outputs,
                   hidden_size=hidden, **attrs)
    model.graph.node[0].input[:] = names
    return model


def _attn_feeds(model):
    feeds = feeds_for(model)
    for k in ("L", "ML"):   # (sequence lengths: in [1, steps])
        if k in feeds:
            feeds[k] = np.ones_like(feeds[k])
    return feeds


@pytest.mark.parametrize("kw", [
    {}, {"aw": 6}, {"dirs": 2, "direction": "bidirectional"}, {"direction": "reverse"}, {"outputs": (False, True)},
    {"extra": {"B": (1, 32), "L": (2,), "H0": (1, 2, 4), "C0": (1, 2, 4), "P": (1, 12), "ML": (2,)}},
])
def test_attn_lstm_is_sized_as_onnxruntime_writes_it(kw):
    """Before: refused by name. 3 steps, batch 2, hidden 4: ``Y [3, 1, 2, 4]`` float (96 bytes), ``Y_h``, ``Y_c``
    ``[1, 2, 4]`` (32 bytes each); bidirectional: twice that."""
    model = _attn(**kw)
    _check_against_ort(model, _attn_feeds(model))


@pytest.mark.parametrize("kw", [
    {"mem": (3, 6, 7)},                                # memory of another batch
    {"extra": {"W": (1, 16, 11)}},                     # W not [dirs, 4 * hidden, input + depth]
    {"extra": {"QW": (1, 4, 2)}},
    {"extra": {"V": (1, 4)}},
    {"extra": {"H0": (1, 3, 4)}},
    {"dirs": 2},                                       # weights of two directions, direction forward
    {"aw": 6, "extra": {"AW": (1, 10, 6)}},
    {"hidden": 4, "activations": ["sigmoid", "tanh"]},
])
def test_attn_lstm_that_onnxruntime_refuses_is_refused_naming_the_node(kw):
    model = _attn(**kw)
    _refused(model, "cannot size its output 'y0'", _attn_feeds(model))


def test_the_three_ops_are_ruled_not_refused_by_name():
    from memplan.importers.onnx.ort_ops import ORT_RULED_ONLY, ORT_UNSIZED

    ruled = {"MatMulFpQ4", "QMoE", "AttnLSTM"}
    assert ruled <= ORT_RULED_ONLY and not ruled & ORT_UNSIZED


# --- a --dim hint where no symbolic dimension is the cause ----------------------------------------------------------

def _expand_of_unread_shape(declared):
    """``Expand(x [1, 4], Concat(ReduceSum(big), [4]))``: ``big``, 100,000 int64 ones, is past what the importer
    evaluates, so the Expand's shape is unknown here; the output declared ``declared`` (an exporter's name)."""
    big = numpy_helper.from_array(np.ones(100000, np.int64), "big")
    four = numpy_helper.from_array(np.array([4], np.int64), "four")
    nodes = [helper.make_node("ReduceSum", ["big"], ["s"], name="sum", keepdims=1),
             helper.make_node("Concat", ["s", "four"], ["shp"], name="cat", axis=0),
             helper.make_node("Expand", ["x", "shp"], ["y"], name="expand")]
    g = helper.make_graph(nodes, "g", [V("x", F, [1, 4])], [V("y", F, declared)], initializer=[big, four])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def test_an_output_sized_by_an_unknown_value_is_not_blamed_on_a_symbolic_dimension():
    """Before: "dimension 0 is unknown after shape inference (symbolic 'Expand_dim_0': pass dims={'Expand_dim_0':
    VALUE})", and given ``Expand_dim_0=10`` the output was planned ``[10, 4]``, 160 bytes, where onnxruntime writes
    ``[100000, 4]``, 1.6 MB: the exporter's name is no free dimension, the Expand's shape input is what is missing."""
    with pytest.raises(GraphError, match=r"node 'expand' \(Expand\): value 'y' dimension 0 is unknown after shape "
                                         r"inference: its input 'shp' sizes it by its values, which the importer "
                                         r"does not know") as err:
        import_onnx(_expand_of_unread_shape(["Expand_dim_0", 4]))
    assert "Expand_dim_0" not in str(err.value) and "dims=" not in str(err.value)


def test_a_name_declared_for_a_custom_ops_output_is_still_offered():
    """The declaration of an op no inference sizes is its only size: its name is still the dimension to fix."""
    node = helper.make_node("MyOp", ["x"], ["y"], name="custom", domain="my.domain")
    g = helper.make_graph([node], "g", [V("x", F, [4])], [V("y", F, [1, "count"])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("my.domain", 1)],
                          ir_version=10)
    with pytest.raises(GraphError, match=r"symbolic 'count': pass dims=\{'count': VALUE\}"):
        import_onnx(m)


# --- found by tests/onnx_sweep_round56.py --------------------------------------------------------------------------

def _gqa(total=10, past=8, qk_output=1, declared=None):
    """GroupQueryAttention of 2 query heads, 1 key/value head of 8, 2 new tokens after ``past`` cached ones, its
    ``total_sequence_length`` an initializer, ``output_qk`` asked for."""
    rng = np.random.default_rng(0)
    ins = [("q", F, [1, 2, 16]), ("k", F, [1, 2, 8]), ("v", F, [1, 2, 8]), ("pk", F, [1, 1, past, 8]),
           ("pv", F, [1, 1, past, 8])]
    inits = {"seqlens": np.full(1, total - 1, np.int32), "total": np.array(total, np.int32)}
    model = _model("GroupQueryAttention", ins, 4, inits=inits, num_heads=2, kv_num_heads=1, qk_output=qk_output)
    if declared is not None:
        model.graph.value_info.append(V("y3", F, declared))
    return model, {v[0]: rng.random(v[2], dtype=np.float32) for v in ins}


@pytest.mark.parametrize("total, past", [(10, 8), (8, 8), (5, 8), (2, 0)])
def test_group_query_attention_output_qk_is_sized_as_onnxruntime_writes_it(total, past):
    """Before: refused (no rule sized ``output_qk``). ``[1, 2, 2, total]`` float: 160 bytes for 8 cached tokens and
    2 new ones; 40 for a fixed cache of 8 holding 5 (the kernel's last axis is ``total_sequence_length``)."""
    _check_against_ort(*_gqa(total, past))


def test_group_query_attention_output_qk_declared_too_small_is_planned_at_the_kernels_size():
    """Before: a declared ``[1, 2, 2, 1]`` (16 bytes) was planned where the kernel writes ``[1, 2, 2, 10]``, 160."""
    model, _ = _gqa(declared=[1, 2, 2, 1])
    assert {t.id: t.size for t in import_onnx(model).tensors}["y3"] == 160


def test_com_microsoft_pad_of_pads_shaped_one_by_twice_the_rank_is_sized_as_onnxruntime_writes_it():
    """Before: refused as unsized (onnxruntime's inference sizes a 1-D ``pads`` only); ``[3, 4]`` padded by ``[[2,
    -1, -1, 2]]``: ``[4, 5]`` float, 80 bytes."""
    model = _model("Pad", [("x", F, [3, 4])], inits={"p": np.array([[2, -1, -1, 2]], np.int64)}, mode="edge")
    _check_against_ort(model)


def test_group_query_attention_output_qk_of_a_total_given_at_run_time_is_planned_at_the_most_it_takes():
    """``total_sequence_length`` a graph input: onnxruntime takes ``P + L`` (10) or at most ``P`` (8); ``[1, 2, 2,
    10]`` is planned, a declared ``P`` accepted."""
    model, _ = _gqa(declared=[1, 2, 2, 8])
    model.graph.initializer.pop()   # (total, an initializer) -> a graph input
    model.graph.input.append(V("total", T.INT32, []))
    assert {t.id: t.size for t in import_onnx(model).tensors}["y3"] == 160


def test_com_microsoft_pad_of_2d_pads_declared_too_small_is_planned_at_the_kernels_size():
    """Before: declared ``[1]`` (4 bytes), it was planned at that where onnxruntime writes ``[4, 5]``, 80 bytes."""
    model = _model("Pad", [("x", F, [3, 4])], inits={"p": np.array([[2, -1, -1, 2]], np.int64)}, mode="edge")
    model.graph.output[0].CopyFrom(V("y0", F, [1]))
    assert {t.id: t.size for t in import_onnx(model).tensors}["y0"] == 80


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared-[1]"])
def test_the_sweep_plans_no_output_short_of_what_onnxruntime_writes(declared):
    """Two random draws of each of the sweep's 75 ops (``tests/onnx_sweep_round56.py``; run it for more): no output
    planned smaller than onnxruntime writes, whether undeclared or declared ``[1]``. Before: com.microsoft's Pad
    of a ``[1, 2 * rank]`` ``pads`` declared ``[1]`` was planned 4 bytes where onnxruntime writes more (and GroupQueryAttention's ``output_qk``)."""
    from onnx_sweep_round56 import CASES, sweep

    under = [line for op in sorted(CASES) for line in sweep(op, 2, declared)[0] if " UNDER:" in line]
    assert not under, under


def _ms_pad_of_unread_pads(declared):
    """com.microsoft Pad of ``[3, 4]`` by ``ReduceMin(100,000 int64 ones) * [1, 1, 1, 1]``: pads the importer does
    not evaluate (past its bound), onnxruntime does: ``[5, 6]`` float, 120 bytes."""
    big = numpy_helper.from_array(np.ones(100000, np.int64), "big")
    ones = numpy_helper.from_array(np.ones(4, np.int64), "ones4")
    nodes = [helper.make_node("ReduceMin", ["big"], ["mn"], name="min", keepdims=1),
             helper.make_node("Mul", ["mn", "ones4"], ["pads"], name="mul"),
             helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", domain=MS)]
    g = helper.make_graph(nodes, "g", [V("x", F, [3, 4])], [V("y", F, declared)], initializer=[big, ones])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)], ir_version=10)


@pytest.mark.parametrize("declared", [[1], None])
def test_an_onnxruntime_op_sized_by_values_the_importer_does_not_know_is_refused(declared):
    """Before: declared ``[1]``, planned 4 bytes where onnxruntime writes ``[5, 6]`` float, 120 (its declaration
    was all that sized it); undeclared, refused as if no inference had a rule for it."""
    model = _ms_pad_of_unread_pads(declared)
    assert ort_sizes(model, {"x": np.ones((3, 4), np.float32)}, strict=True)["y"] == 120
    with pytest.raises(GraphError, match=r"node 'pad' \(Pad\): its output 'y' is sized by the values of its input "
                                         r"'pads', which the importer does not know"):
        import_onnx(model)


@pytest.mark.parametrize("declared, dims", [([10, 4], None), (["Expand_dim_0", 4], {"Expand_dim_0": 10})])
def test_a_declared_size_that_follows_a_value_the_importer_does_not_know_is_refused(declared, dims):
    """Before: planned ``[10, 4]``, 160 bytes (declared, or its exporter's name fixed at 10), where onnxruntime writes
    the ``[100000, 4]`` of the Expand's shape, 1.6 MB: the declaration alone sized it, unchecked."""
    model = _expand_of_unread_shape(declared)
    assert ort_sizes(model, {"x": np.ones((1, 4), np.float32)}, strict=True)["y"] == 1_600_000
    with pytest.raises(GraphError, match=r"node 'expand' \(Expand\): value 'y' is declared \[10, 4\], but its size "
                                         r"follows the values of its input 'shp', which the importer does not know"):
        import_onnx(model, dims=dims)
