"""ONNX importer, round 74 (onnx74): whole models exported by today's tools, checked against onnxruntime 1.32.

A sweep of torchvision / timm / transformers models (tiny configs) exported by ``torch.onnx.export`` (TorchScript
at opsets 13-17, dynamo at 18-23, dynamic axes on and off), quantized (``quantize_dynamic``, ``quantize_static``
QDQ 8/16/4-bit and QOperator), converted to float16, fused by onnxruntime's optimizers, with external data, and with
If / Loop from ``torch.cond`` and scripted loops, every value exposed and compared with what onnxruntime makes:

* the dynamo exporter's Llama / Qwen2 / Mistral at opset 23 with a dynamic batch use the default-domain
  ``RotaryEmbedding`` without ``position_ids``, its ``cos_cache`` / ``sin_cache`` of batch 1 whatever the batch.
  onnxruntime's kernel requires them ``[batch, sequence_length, d / 2]`` of the input (no broadcast) and refuses
  every batch but 1; the importer, whose ONNX inference reads nothing of the caches, planned them at any ``--dim``.
  A random sweep of cache shapes, ``position_ids``, ``num_heads`` and ``rotary_embedding_dim`` against onnxruntime
  found the rest of what its kernel refuses (148 of 160 hand-picked cases were planned): each is refused now, naming
  the node and the cache.
* com.microsoft's ``RotaryEmbedding`` (onnxruntime-genai and optimum LLM exports) was planned with caches or
  attributes its contrib kernel refuses (183 of 300 random cases): refused naming the node too.
* a Loop's trip count or condition, or an If's condition, saved to external data (``size_threshold=0``; a scripted
  loop's outer Constant ``true`` with ``convert_attribute=True``) was refused as "defined nowhere" or as a condition
  the body computes; onnxruntime reads the file and runs the model, and the import now does too.
* a BERT fused by onnxruntime's transformer optimizer (com.microsoft ``EmbedLayerNormalization``) was planned at a
  sequence longer than its position embedding, and with inputs of shapes its kernel refuses: refused naming the node.
* a ``FusedMatMul`` with ``transBatchA`` / ``transBatchB`` (onnxruntime's optimizer folds a batch Transpose into the
  MatMul so) was refused as unsized where the saved model declares no shape for it (a symbolic batch).
* ``SkipLayerNormalization`` / ``SkipSimplifiedLayerNormalization`` / ``BiasGelu`` / ``FastGelu`` of inputs their
  kernels refuse (a ``gamma`` of another hidden size, a ``skip`` of another length) were planned: refused now.
* so was a fused com.microsoft ``Attention`` of ``weights``, ``bias``, ``num_heads``, ``mask_index`` or ``past``
  its CPU kernel refuses, and a ``MultiHeadAttention`` of a key, value, bias or ``key_padding_mask`` it refuses.
* and a fused dynamically quantized MatMul (``DynamicQuantizeMatMul`` / ``MatMulIntegerToFloat``) of scales, zero
  points or bias its kernel refuses, and a ``GroupQueryAttention`` of query, key, value, pasts or ``seqlens_k``
  its kernel refuses.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _ort_runs(model, feeds: dict) -> dict[str, int] | None:
    """``{output: bytes}`` onnxruntime makes running ``model`` on ``feeds``, or None where it refuses to."""
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            return {o.name: np.asarray(v).nbytes for o, v in zip(sess.get_outputs(), sess.run(None, feeds))}
    except Exception:  # noqa: BLE001 - onnxruntime's refusal (load or run) is what the case is about
        return None


# --- RotaryEmbedding (opset 23) caches onnxruntime's kernel refuses -----------------------------------------------


def _rope(x, cos, sin=None, ids=None, **attrs):
    """A RotaryEmbedding-23 model of input ``x``, caches ``cos`` / ``sin`` (shapes; a list holding a str is
    symbolic) and, given, ``position_ids`` of shape ``ids``."""
    sin = cos if sin is None else sin
    ins = [V("x", T.FLOAT, x), V("cos", T.FLOAT, cos), V("sin", T.FLOAT, sin)]
    if ids is not None:
        ins.append(V("ids", T.INT64, ids))
    node = helper.make_node("RotaryEmbedding", [v.name for v in ins], ["y"], name="rope", **attrs)
    g = helper.make_graph([node], "g", ins, [V("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)], ir_version=10)


def _feeds(model, dims: dict | None = None) -> dict[str, np.ndarray]:
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value if d.HasField("dim_value") else (dims or {})[d.dim_param]
                 for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = np.zeros(shape, np.int64) if vi.name == "ids" else np.ones(shape, np.float32)
    return out


def test_dynamo_llama_rotary_caches_of_batch_1_are_refused_at_other_batches():
    """The shape torch's dynamo exporter gives a Llama at opset 23 (``x`` ``[batch, heads, seq, head]``, caches
    ``[1, seq, head / 2]``, no position_ids): planned for batch 1, refused for batch 3, as onnxruntime runs it."""
    model = _rope(["b", 2, "s", 16], [1, "s", 8])
    for b, planned in ((1, True), (3, False)):
        dims = {"b": b, "s": 5}
        real = _ort_runs(model, _feeds(model, dims))
        assert (real is not None) == planned
        if planned:
            g = import_onnx(model, dims=dims)
            assert g.tensor("y").size == real["y"] == b * 2 * 5 * 16 * 4
            memplan.verify(g, memplan.plan(g))
        else:
            with pytest.raises(GraphError, match=r"node 'rope' \(RotaryEmbedding\): its cos_cache 'cos' is "
                                                 r"\[1, 5, 8\].*\[3, 5, 8\]; onnxruntime refuses to run it"):
                import_onnx(model, dims=dims)


#: (x, cos, sin, position_ids, attributes) onnxruntime 1.32 refuses to run, and the words the refusal names
_REFUSED = {
    "3-D caches with position_ids": ([2, 3, 16], [2, 3, 4], None, [2, 3], {"num_heads": 2}, "of rank 3"),
    "2-D caches without position_ids": ([2, 3, 16], [3, 4], None, None, {"num_heads": 2}, "of rank 2"),
    "caches of two shapes": ([2, 2, 3, 8], [2, 3, 4], [2, 3, 2], None, {}, "differ in shape"),
    "cache of another sequence length": ([2, 2, 3, 8], [2, 4, 4], None, None, {}, r"\[2, 4, 4\]"),
    "cache too narrow for the head": ([2, 2, 3, 8], [2, 3, 2], None, None, {}, r"\[2, 3, 2\]"),
    "cache too wide for rotary_embedding_dim": ([2, 2, 3, 8], [8, 4], None, [2, 3], {"rotary_embedding_dim": 4},
                                                r"\[8, 4\]"),
    "fewer positions than the sequence": ([2, 2, 3, 8], [2, 4], None, [2, 3], {}, r"\[2, 4\]"),
    "rotary_embedding_dim over the head": ([2, 2, 3, 8], [2, 3, 8], None, None, {"rotary_embedding_dim": 16},
                                           "exceeds the head size 8"),
    "num_heads 0 of a 3-D input": ([2, 3, 16], [2, 3, 4], None, None, {"num_heads": 0}, "num_heads is 0"),
    "num_heads not dividing the hidden size": ([2, 3, 10], [2, 3, 1], None, None, {"num_heads": 4},
                                               "num_heads is 4"),
}


@pytest.mark.parametrize("case", sorted(_REFUSED))
def test_rotary_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    x, cos, sin, ids, attrs, words = _REFUSED[case]
    model = _rope(x, cos, sin, ids, **attrs)
    assert _ort_runs(model, _feeds(model)) is None
    with pytest.raises(GraphError, match=rf"node 'rope' \(RotaryEmbedding\): .*{words}.*onnxruntime refuses to run"):
        import_onnx(model)


@pytest.mark.parametrize("x, cos, ids, attrs", [
    ([2, 3, 16], [2, 3, 4], None, {"num_heads": 2}),
    ([2, 3, 16], [8, 4], [2, 3], {"num_heads": 2}),
    ([2, 3, 16], [3, 2], [2, 3], {"num_heads": 2, "rotary_embedding_dim": 4}),
    ([2, 2, 3, 8], [2, 3, 2], None, {"rotary_embedding_dim": 4}),
    ([2, 2, 3, 8], [3, 4], [2, 3], {"interleaved": 1}),
])
def test_rotary_inputs_onnxruntime_runs_are_still_planned_at_its_size(x, cos, ids, attrs):
    model = _rope(x, cos, None, ids, **attrs)
    real = _ort_runs(model, _feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert g.tensor("y").size == real["y"]
    memplan.verify(g, memplan.plan(g))


# --- com.microsoft RotaryEmbedding (onnxruntime-genai / optimum LLM exports): the same, by its contrib kernel -------


def _ms_rope(x, cos, sin=None, ids=(1,), **attrs):
    sin = cos if sin is None else sin
    ins = [V("x", T.FLOAT, x), V("ids", T.INT64, list(ids)), V("cos", T.FLOAT, cos), V("sin", T.FLOAT, sin)]
    node = helper.make_node("RotaryEmbedding", [v.name for v in ins], ["y"], name="rope", domain="com.microsoft",
                            **attrs)
    g = helper.make_graph([node], "g", ins, [V("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


#: (x, cos, sin, position_ids, attributes) onnxruntime 1.32's contrib kernel refuses, and the words naming why
_MS_REFUSED = {
    "3-D caches": ([2, 3, 16], [2, 3, 4], None, (2, 3), {"num_heads": 2}, "not 2-D"),
    "caches of two shapes": ([2, 2, 3, 8], [8, 4], [8, 3], (1,), {}, "differ in shape"),
    "rotary_embedding_dim without num_heads": ([2, 2, 3, 8], [8, 2], None, (1,), {"rotary_embedding_dim": 4},
                                               "no num_heads"),
    "num_heads not dividing the hidden size": ([2, 3, 16], [8, 4], None, (1,), {"num_heads": 3}, "does not divide"),
    "cache width of no head size dividing the hidden size": ([1, 3, 16], [8, 3], None, (1,), {},
                                                             "heads are read as of size 6"),
    "cache wider than the head": ([2, 2, 3, 8], [8, 8], None, (1,), {}, "of width 8, not head_size / 2 = 4"),
    "rotary_embedding_dim over the head": ([2, 4, 16], [8, 8], None, (1,), {"num_heads": 2,
                                                                            "rotary_embedding_dim": 16},
                                           "exceeds the head size 8"),
    "fewer positions than the sequence": ([2, 3, 16], [2, 4], None, (2, 3), {"num_heads": 2}, "of 2 positions"),
}


@pytest.mark.parametrize("case", sorted(_MS_REFUSED))
def test_ms_rotary_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    x, cos, sin, ids, attrs, words = _MS_REFUSED[case]
    model = _ms_rope(x, cos, sin, ids, **attrs)
    assert _ort_runs(model, _feeds(model)) is None
    with pytest.raises(GraphError, match=rf"node 'rope' \(RotaryEmbedding\): .*{words}.*onnxruntime refuses to run"):
        import_onnx(model)


@pytest.mark.parametrize("x, cos, ids, attrs", [
    ([2, 3, 16], [8, 4], (1,), {"num_heads": 2}),
    ([2, 3, 16], [3, 4], (2, 3), {}),
    ([2, 3, 16], [8, 2], (1,), {"num_heads": 2, "rotary_embedding_dim": 4}),
    ([2, 2, 3, 8], [4, 4], (2, 3), {"interleaved": 1}),
])
def test_ms_rotary_inputs_onnxruntime_runs_are_still_planned_at_its_size(x, cos, ids, attrs):
    model = _ms_rope(x, cos, None, ids, **attrs)
    real = _ort_runs(model, _feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert g.tensor("y").size == real["y"]
    memplan.verify(g, memplan.plan(g))


# --- control flow whose condition or trip count is saved to external data -----------------------------------------


def _loop_or_if(kind: str, constants: str):
    """A Loop of trip count 3 summing ``x`` (its body passing on an outer ``true`` as torch's scripted loops do), or
    an If taking its Relu branch, whose trip count and condition are initializers or Constant nodes."""
    from onnx import numpy_helper as nh

    values = {"M": np.array(3, np.int64), "C": np.array(True), "z": np.zeros((2, 3), np.float32)}
    if constants == "initializers":
        inits, nodes = [nh.from_array(v, k) for k, v in values.items()], []
    else:
        inits = []
        nodes = [helper.make_node("Constant", [], [k], name=f"make_{k}", value=nh.from_array(v, k))
                 for k, v in values.items()]
    if kind == "loop":
        body = helper.make_graph([helper.make_node("Identity", ["C"], ["c_out"]),
                                  helper.make_node("Add", ["acc", "x"], ["acc_out"])], "body",
                                 [V("i", T.INT64, []), V("c", T.BOOL, []), V("acc", T.FLOAT, [2, 3])],
                                 [V("c_out", T.BOOL, []), V("acc_out", T.FLOAT, [2, 3])])
        nodes.append(helper.make_node("Loop", ["M", "C", "z"], ["y"], name="loop", body=body))
    else:
        then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "t", [], [V("t", T.FLOAT, [2, 3])])
        other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "e", [], [V("e", T.FLOAT, [2, 3])])
        nodes.append(helper.make_node("If", ["C"], ["y"], name="if", then_branch=then, else_branch=other))
        nodes.append(helper.make_node("Identity", ["M"], ["m"]))   # (M and z are read, as the Loop reads them)
        nodes.append(helper.make_node("Identity", ["z"], ["zz"]))
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, [2, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("constants", ["initializers", "Constant nodes"])
@pytest.mark.parametrize("kind", ["loop", "if"])
def test_control_flow_of_a_condition_or_trip_count_in_external_data_is_planned(tmp_path, kind, constants):
    """``onnx.save_model(..., save_as_external_data=True, size_threshold=0)`` (with ``convert_attribute=True`` for
    Constant nodes) puts even a 1-byte condition in the data file; onnxruntime reads it and runs the model, the import
    refused it ("its trip count 'M' is not a constant known at import (defined nowhere)")."""
    from onnx.external_data_helper import convert_model_to_external_data

    model = _loop_or_if(kind, constants)
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin", size_threshold=0,
                                   convert_attribute=True)
    path = tmp_path / "m.onnx"
    import onnx

    onnx.save_model(model, path)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    got = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(
        None, {"x": np.full((2, 3), -1.0, np.float32)})[0]
    assert got.tolist() == ([[-3.0] * 3] * 2 if kind == "loop" else [[0.0] * 3] * 2)
    g = import_onnx(str(path))
    assert g.tensor("y").size == got.nbytes == 24
    assert {n.op for n in g.nodes} >= ({"Add"} if kind == "loop" else {"Relu"})
    memplan.verify(g, memplan.plan(g))
    # a ModelProto loaded without its data, given no folder: refused saying so, not "defined nowhere"
    bare = onnx.load(str(path), load_external_data=False)
    if kind == "loop" or constants == "initializers":   # (an If on a Constant not read is planned both ways)
        with pytest.raises(GraphError, match=f"{'an initializer' if constants == 'initializers' else 'a Constant'} "
                                             "whose data lies in an external file that was not read"):
            import_onnx(bare)
    assert import_onnx(bare, external_data_dir=tmp_path).tensor("y").size == 24


# --- com.microsoft EmbedLayerNormalization (a BERT fused by onnxruntime's transformer optimizer) -------------------


def _embed_ln(ids=(2, 5), positions=8, seg=None, mask=None, pids=None, widths=None):
    """An EmbedLayerNormalization of ``input_ids`` ``ids`` over a position embedding of ``positions`` rows, with
    ``segment_ids`` / ``mask`` / ``position_ids`` of the shapes given (None: left out); ``widths``: the hidden size
    of each of word / position / segment embedding, gamma, beta (8 unless given)."""
    from onnx import numpy_helper as nh

    w = {"we": 8, "pe": 8, "se": 8, "gamma": 8, "beta": 8, **(widths or {})}
    rows = {"we": 16, "pe": positions, "se": 2}
    inits = [nh.from_array(np.full((rows[k], w[k]) if k in rows else (w[k],), 0.5, np.float32), k) for k in w]
    ins = [V("ids", T.INT32, list(ids))]
    names = ["ids", "", "we", "pe", "", "gamma", "beta"]
    if seg is not None:
        ins.append(V("seg", T.INT32, list(seg)))
        names[1], names[4] = "seg", "se"
    else:
        inits = [t for t in inits if t.name != "se"]
    if mask is not None or pids is not None:
        names.append("")
    if mask is not None:
        ins.append(V("mask", T.INT32, list(mask)))
        names[7] = "mask"
    if pids is not None:
        ins.append(V("pids", T.INT32, list(pids)))
        names.append("pids")
    node = helper.make_node("EmbedLayerNormalization", names, ["y", "mask_index"], name="eln", domain="com.microsoft",
                            epsilon=1e-5)
    g = helper.make_graph([node], "g", ins, [V("y", T.FLOAT, None), V("mask_index", T.INT32, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _int_feeds(model) -> dict[str, np.ndarray]:
    return {vi.name: np.zeros([d.dim_value for d in vi.type.tensor_type.shape.dim], np.int32)
            for vi in model.graph.input}


_ELN_REFUSED = {
    "more tokens than positions": (dict(ids=(2, 9), positions=8), "hold 9 tokens, and it has no position_ids"),
    "segment_ids of another shape": (dict(seg=(2, 6)), r"its segment_ids 'seg' is \[2, 6\]"),
    "mask of another shape": (dict(mask=(2,)), r"its mask 'mask' is \[2\]"),
    "position_ids of another length": (dict(pids=(2, 4)), r"its position_ids 'pids' is \[2, 4\]"),
    "position_ids of another batch": (dict(ids=(3, 5), pids=(2, 5)), r"requires \[1 or 3, 5\]"),
    "beta of another hidden size": (dict(widths={"beta": 6}), r"its beta 'beta' is \[6\]"),
    "segment embedding of another hidden size": (dict(seg=(2, 5), widths={"se": 4}), "its segment_embedding 'se'"),
}


@pytest.mark.parametrize("case", sorted(_ELN_REFUSED))
def test_embed_layer_norm_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    kwargs, words = _ELN_REFUSED[case]
    model = _embed_ln(**kwargs)
    assert _ort_runs(model, _int_feeds(model)) is None
    with pytest.raises(GraphError, match=rf"node 'eln' \(EmbedLayerNormalization\): .*{words}.*onnxruntime refuses"):
        import_onnx(model)


@pytest.mark.parametrize("kwargs", [dict(ids=(2, 8), positions=8), dict(seg=(2, 5), mask=(2, 5)),
                                    dict(ids=(2, 12), positions=8, pids=(1, 12)), dict(pids=(2, 5))])
def test_embed_layer_norm_inputs_onnxruntime_runs_are_still_planned_at_its_size(kwargs):
    model = _embed_ln(**kwargs)
    real = _ort_runs(model, _int_feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert g.tensor("y").size == real["y"] and g.tensor("mask_index").size == real["mask_index"]
    memplan.verify(g, memplan.plan(g))


# --- com.microsoft FusedMatMul with transBatchA / transBatchB (onnxruntime's optimizer: Transpose + MatMul) ---------


@pytest.mark.parametrize("perm_a, perm_b", [([1, 0, 2], None), (None, [1, 0, 2]), ([1, 0, 2], [1, 0, 2])])
def test_fused_matmul_of_a_batch_transpose_onnxruntime_fused_is_planned_at_its_size(tmp_path, perm_a, perm_b):
    """onnxruntime's ORT_ENABLE_EXTENDED folds a Transpose moving axis 0 behind the batch axes into the MatMul after
    it as a FusedMatMul with ``transBatchA`` / ``transBatchB``; of a symbolic batch (saved undeclared), the import
    refused the saved model at any ``--dim`` ("value 'y' has no type or shape (com.microsoft:FusedMatMul is
    onnxruntime's op, which neither onnx's nor onnxruntime's shape inference could size here ...)")."""
    import onnx

    a = [3, "b", 4] if perm_a else ["b", 3, 4]
    b = [4, "b", 5] if perm_b else ["b", 4, 5]
    nodes, names = [], []
    for name, perm in (("a", perm_a), ("b", perm_b)):
        if perm:
            nodes.append(helper.make_node("Transpose", [name], [f"{name}t"], perm=perm))
        names.append(f"{name}t" if perm else name)
    nodes += [helper.make_node("MatMul", names, ["y"]), helper.make_node("Relu", ["y"], ["z"])]
    g = helper.make_graph(nodes, "g", [V("a", T.FLOAT, a), V("b", T.FLOAT, b)], [V("z", T.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "fused.onnx")
    ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    fused = onnx.load(str(tmp_path / "fused.onnx"))
    made = next(n for n in fused.graph.node if n.output[0] == "y")
    assert made.op_type == "FusedMatMul" and any(x.i for x in made.attribute if x.name.startswith("transBatch"))
    shape = {k: [2 if d == "b" else d for d in v] for k, v in (("a", a), ("b", b))}
    real = _ort_runs(fused, {k: np.ones(v, np.float32) for k, v in shape.items()})
    g = import_onnx(fused, dims={"b": 2})
    assert g.tensor("y").size == g.tensor("z").size == real["z"] == 2 * 3 * 5 * 4
    memplan.verify(g, memplan.plan(g))


@pytest.mark.parametrize("a, b, attrs, shape", [
    ([3, 2, 4], [2, 4, 5], {"transBatchA": 1}, [2, 3, 5]),
    ([4, 2, 3], [2, 5, 4], {"transBatchA": 1, "transA": 1, "transB": 1}, [2, 3, 5]),
    ([3, 2, 4], [4, 2, 5], {"transBatchA": 1, "transBatchB": 1}, [2, 3, 5]),
    ([5, 2, 3, 4], [2, 3, 4, 6], {"transBatchA": 1}, [2, 3, 5, 6]),
    ([2, 3, 4], [4, 5], {"transBatchA": 1}, None),   # (ranks differ: onnxruntime refuses)
])
def test_fused_matmul_trans_batch_shapes_are_onnxruntime_s(a, b, attrs, shape):
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], name="fmm", domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "g", [V("a", T.FLOAT, a), V("b", T.FLOAT, b)], [V("y", T.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=8)
    real = _ort_runs(model, {"a": np.ones(a, np.float32), "b": np.ones(b, np.float32)})
    if shape is None:
        assert real is None
        with pytest.raises(GraphError, match="node 'fmm' .*value 'y' has no shape"):
            import_onnx(model)
        return
    g = import_onnx(model)
    assert g.tensor("y").attrs["shape"] == shape and g.tensor("y").size == real["y"]


# --- com.microsoft SkipLayerNormalization / SkipSimplifiedLayerNormalization / BiasGelu / FastGelu inputs ----------


def _contrib(op: str, shapes: list, nout: int = 1):
    """A com.microsoft ``op`` node named 'op0' of float inputs of ``shapes`` (None: left out)."""
    names = [f"i{k}" if s is not None else "" for k, s in enumerate(shapes)]
    node = helper.make_node(op, names, [f"o{k}" for k in range(nout)], name="op0", domain="com.microsoft")
    g = helper.make_graph([node], "g", [V(nm, T.FLOAT, s) for nm, s in zip(names, shapes) if nm],
                          [V(f"o{k}", T.FLOAT, None) for k in range(nout)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _float_feeds(model) -> dict[str, np.ndarray]:
    return {vi.name: np.ones([d.dim_value for d in vi.type.tensor_type.shape.dim], np.float32)
            for vi in model.graph.input}


_SKIP_REFUSED = {
    "skip of rank 1": ("SkipLayerNormalization", [[3, 8], [8], [8], [8]], "not of rank 2 or 3"),
    "skip of another length": ("SkipLayerNormalization", [[2, 3, 8], [2, 4, 8], [8]], r"requires \[\.\.\., 3, 8\]"),
    "gamma of another hidden size": ("SkipLayerNormalization", [[2, 3, 8], [2, 3, 8], [4]], "its gamma 'i2'"),
    "beta of another hidden size": ("SkipLayerNormalization", [[2, 3, 8], [2, 3, 8], [8], [3]], "its beta 'i3'"),
    "bias of another hidden size": ("SkipLayerNormalization", [[2, 3, 8], [2, 3, 8], [8], None, [16]],
                                    "its bias 'i4'"),
    "skip of a 2-D input of another batch": ("SkipSimplifiedLayerNormalization", [[1, 8], [2, 1, 8], [8]],
                                             "nor, the input 2-D"),
    "simplified gamma of another size": ("SkipSimplifiedLayerNormalization", [[1, 3, 4], [1, 3, 4], [8]],
                                         "its gamma 'i2'"),
    "BiasGelu bias of another size": ("BiasGelu", [[1, 3, 8], [16]], "its bias 'i1' is \\[16\\]"),
    "FastGelu bias of another size": ("FastGelu", [[3, 8], [1]], "its bias 'i1' is \\[1\\]"),
}


@pytest.mark.parametrize("case", sorted(_SKIP_REFUSED))
def test_fused_norm_and_gelu_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    op, shapes, words = _SKIP_REFUSED[case]
    model = _contrib(op, shapes)
    assert _ort_runs(model, _float_feeds(model)) is None
    with pytest.raises(GraphError, match=rf"node 'op0' \({op}\): .*{words}.*onnxruntime refuses to run"):
        import_onnx(model)


@pytest.mark.parametrize("op, shapes, nout", [
    ("SkipLayerNormalization", [[2, 3, 8], [2, 3, 8], [8], [8], [8]], 4),
    ("SkipLayerNormalization", [[2, 3, 8], [1, 3, 8], [8]], 1),    # (a skip of batch 1 or none: broadcast)
    ("SkipLayerNormalization", [[2, 3, 8], [3, 8], [8]], 1),
    ("SkipSimplifiedLayerNormalization", [[3, 8], [3, 8], [8], [8]], 4),
    ("BiasGelu", [[2, 3, 8], [8]], 1),
    ("FastGelu", [[3, 8]], 1),
])
def test_fused_norm_and_gelu_inputs_onnxruntime_runs_are_still_planned_at_its_size(op, shapes, nout):
    model = _contrib(op, shapes, nout)
    real = _ort_runs(model, _float_feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert all(g.tensor(o).size == real[o] for o in real)
    memplan.verify(g, memplan.plan(g))


# --- com.microsoft Attention (a BERT / GPT-2 self-attention fused by onnxruntime's transformer optimizer) ----------


def _ms_attention(x, w, bias, mask=None, past=None, outputs=1, **attrs):
    names = ["x", "w", "b" if bias is not None else "", "mask" if mask is not None else "", "past" if past else ""]
    while names and not names[-1]:
        names.pop()
    shapes = {"x": x, "w": w, "b": bias, "mask": mask, "past": past}
    ins = [V(nm, T.INT32 if nm == "mask" else T.FLOAT, shapes[nm]) for nm in names if nm]
    outs = ["y", "present"][:outputs]
    node = helper.make_node("Attention", names, outs, name="att", domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "g", ins, [V(o, T.FLOAT, None) for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _att_feeds(model) -> dict[str, np.ndarray]:
    return {vi.name: np.ones([d.dim_value for d in vi.type.tensor_type.shape.dim],
                             np.int32 if vi.name == "mask" else np.float32) for vi in model.graph.input}


_ATT_REFUSED = {
    "weights of another input width": (([1, 3, 8], [4, 24], [24]), {"num_heads": 2}, "requires \\[8, \\.\\.\\.\\]"),
    "bias of another width": (([1, 3, 8], [8, 24], [16]), {"num_heads": 2}, "its bias 'b' is \\[16\\]"),
    "weights of no three equal parts": (([1, 3, 8], [8, 25], [25]), {"num_heads": 1}, "no three equal"),
    "num_heads not dividing the hidden size": (([1, 3, 8], [8, 24], [24]), {"num_heads": 3}, "not multiples"),
    "2-D mask of another length": (([2, 3, 8], [8, 24], [24], [2, 4]), {"num_heads": 2}, "its mask_index 'mask'"),
    "4-D mask": (([1, 3, 8], [8, 24], [24], [1, 1, 3, 3]), {"num_heads": 2}, "takes no 4-D mask"),
    "past without present": (([2, 1, 8], [8, 24], [24], None, [2, 2, 2, 3, 4]), {"num_heads": 2}, "writes no present"),
    "past of other heads": (([2, 1, 8], [8, 24], [24], None, [2, 2, 1, 3, 8]), {"num_heads": 2}, "its past 'past'"),
}


@pytest.mark.parametrize("case", sorted(_ATT_REFUSED))
def test_ms_attention_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    args, attrs, words = _ATT_REFUSED[case]
    model = _ms_attention(*args, outputs=1, **attrs)
    assert _ort_runs(model, _att_feeds(model)) is None
    with pytest.raises(GraphError, match=rf"node 'att' \(Attention\): .*{words}.*onnxruntime refuses to run"):
        import_onnx(model)


@pytest.mark.parametrize("args, outputs, attrs", [
    (([2, 3, 8], [8, 24], [24]), 1, {"num_heads": 2}),
    (([2, 3, 8], [8, 24], [24], [2, 3]), 1, {"num_heads": 2}),
    (([2, 3, 8], [8, 24], [24], [8]), 1, {"num_heads": 2}),      # (3B + 2: start/end positions)
    (([2, 3, 8], [8, 24], [24], [1, 1]), 1, {"num_heads": 2}),
    (([2, 1, 8], [8, 24], [24], [2, 4], [2, 2, 2, 3, 4]), 2, {"num_heads": 2, "unidirectional": 1}),
    (([2, 3, 8], [8, 32], [32]), 1, {"num_heads": 2, "qkv_hidden_sizes": [8, 8, 16]}),
])
def test_ms_attention_inputs_onnxruntime_runs_are_still_planned_at_its_size(args, outputs, attrs):
    model = _ms_attention(*args, outputs=outputs, **attrs)
    real = _ort_runs(model, _att_feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert all(g.tensor(o).size == real[o] for o in real)
    memplan.verify(g, memplan.plan(g))


# --- com.microsoft MultiHeadAttention of a 3-D query: key, value, bias and key_padding_mask ------------------------


def _mha(q, k, v, bias=None, mask=None, past=None, heads=2):
    shapes = {"q": q, "k": k, "v": v, "b": bias, "m": mask, "pk": past, "pv": past}
    names = ["q", "k", "v", "b" if bias else "", "m" if mask else "", "", "pk" if past else "", "pv" if past else ""]
    while not names[-1]:
        names.pop()
    outs = ["y", "present_k", "present_v"] if past else ["y"]
    node = helper.make_node("MultiHeadAttention", names, outs, name="mha", domain="com.microsoft", num_heads=heads)
    g = helper.make_graph([node], "g", [V(nm, T.INT32 if nm == "m" else T.FLOAT, shapes[nm]) for nm in names if nm],
                          [V(o, T.FLOAT, None) for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _mha_feeds(model) -> dict[str, np.ndarray]:
    return {vi.name: np.ones([d.dim_value for d in vi.type.tensor_type.shape.dim],
                             np.int32 if vi.name == "m" else np.float32) for vi in model.graph.input}


_MHA_REFUSED = {
    "key of another batch": (dict(q=[1, 3, 8], k=[2, 2, 8], v=[1, 2, 8]), "differ in batch"),
    "key and value of two lengths": (dict(q=[2, 1, 8], k=[2, 2, 8], v=[2, 3, 8]), "differ in length"),
    "key of another hidden size": (dict(q=[2, 3, 8], k=[2, 2, 4], v=[2, 2, 8]), "differ in hidden size"),
    "bias of another length": (dict(q=[1, 3, 8], k=[1, 3, 8], v=[1, 3, 16], bias=[24]), r"not \[32\]"),
    "4-D key and value of two shapes": (dict(q=[2, 3, 8], k=[2, 2, 2, 4], v=[2, 2, 3, 4]), "differ in shape"),
    "4-D key of other heads": (dict(q=[1, 1, 8], k=[1, 1, 2, 4], v=[1, 1, 2, 4]), "not \\[batch, num_heads"),
    "mask of 2 x batch": (dict(q=[1, 3, 8], k=[1, 3, 8], v=[1, 3, 8], mask=[2]), "its key_padding_mask 'm'"),
    "mask of the new tokens alone with a past": (dict(q=[2, 1, 8], k=[2, 3, 8], v=[2, 3, 8], mask=[2, 3],
                                                      past=[2, 2, 2, 4]), r"\[2, 5\]"),
}


@pytest.mark.parametrize("case", sorted(_MHA_REFUSED))
def test_ms_multi_head_attention_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    kwargs, words = _MHA_REFUSED[case]
    model = _mha(**kwargs)
    assert _ort_runs(model, _mha_feeds(model)) is None
    with pytest.raises(GraphError, match=rf"node 'mha' \(MultiHeadAttention\): .*{words}.*onnxruntime refuses"):
        import_onnx(model)


@pytest.mark.parametrize("kwargs", [
    dict(q=[2, 3, 8], k=[2, 2, 8], v=[2, 2, 16], bias=[32]),
    dict(q=[2, 3, 8], k=[2, 2, 2, 4], v=[2, 2, 2, 4], mask=[2, 2]),
    dict(q=[2, 3, 8], k=[2, 3, 8], v=[2, 3, 8], mask=[8]),            # (3B + 2)
    dict(q=[2, 1, 8], k=[2, 3, 8], v=[2, 3, 8], mask=[2, 1, 5], past=[2, 2, 2, 4]),
    dict(q=[2, 1, 8], k=[2, 3, 8], v=[2, 3, 8], mask=[2], past=[2, 2, 2, 4]),
])
def test_ms_multi_head_attention_inputs_onnxruntime_runs_are_still_planned_at_its_size(kwargs):
    model = _mha(**kwargs)
    real = _ort_runs(model, _mha_feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert all(g.tensor(o).size == real[o] for o in real)
    memplan.verify(g, memplan.plan(g))


# --- com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat (a dynamically quantized MatMul, fused) ------------


def _int_matmul(op: str, spec: list):
    """``op`` of inputs ``spec`` (``(shape, elem)`` or None: left out), output 'y'."""
    names = [f"i{k}" if s is not None else "" for k, s in enumerate(spec)]
    node = helper.make_node(op, names, ["y"], name="qmm", domain="com.microsoft")
    g = helper.make_graph([node], "g", [V(nm, s[1], s[0]) for nm, s in zip(names, spec) if nm], [V("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _ones_feeds(model) -> dict[str, np.ndarray]:
    return {vi.name: np.ones([d.dim_value for d in vi.type.tensor_type.shape.dim],
                             helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)) for vi in model.graph.input}


_F, _U8, _I8 = T.FLOAT, T.UINT8, T.INT8
_QMM_REFUSED = {
    "bias of another length": ("DynamicQuantizeMatMul", [([3, 8], _F), ([8, 2], _I8), ([], _F), None, ([1], _F)],
                               "its bias 'i4' is \\[1\\]"),
    "b_scale of another length": ("DynamicQuantizeMatMul", [([1, 8], _F), ([8, 4], _I8), ([3], _F)],
                                  "do not broadcast into its output \\[1, 4\\]"),
    "b_zero_point of K elements": ("DynamicQuantizeMatMul", [([1, 8], _F), ([8, 4], _I8), ([4], _F), ([8], _I8)],
                                   "its b_zero_point 'i3' is \\[8\\]"),
    "a_scale per row": ("MatMulIntegerToFloat", [([3, 8], _U8), ([8, 2], _I8), ([3], _F), ([], _F)],
                        "do not broadcast"),
    "a_zero_point of two elements": ("MatMulIntegerToFloat", [([1, 8], _U8), ([8, 4], _I8), ([1], _F), ([1], _F),
                                                              ([2], _U8)], "its a_zero_point 'i4' is \\[2\\]"),
}


@pytest.mark.parametrize("case", sorted(_QMM_REFUSED))
def test_integer_to_float_matmul_inputs_onnxruntime_refuses_are_refused_naming_the_node(case):
    op, spec, words = _QMM_REFUSED[case]
    model = _int_matmul(op, spec)
    assert _ort_runs(model, _ones_feeds(model)) is None
    tail = ("outside the com.microsoft spec of .*onnxruntime's kernel is not defined for it" if "broadcast" in words
            else "onnxruntime refuses to run")
    with pytest.raises(GraphError, match=rf"node 'qmm' \({op}\): .*{words}.*{tail}"):
        import_onnx(model)


@pytest.mark.parametrize("op, spec", [
    ("DynamicQuantizeMatMul", [([3, 8], _F), ([8, 4], _I8), ([4], _F), ([4], _I8), ([4], _F)]),
    ("DynamicQuantizeMatMul", [([2, 3, 8], _F), ([2, 8, 4], _I8), ([2, 1, 4], _F), ([2, 1, 4], _I8)]),
    ("MatMulIntegerToFloat", [([3, 8], _U8), ([8, 4], _I8), ([], _F), ([1, 4], _F), ([1], _U8), ([4], _I8),
                              ([4], _F)]),
    ("MatMulIntegerToFloat", [([3, 8], _U8), ([8, 3], _I8), ([3], _F), ([], _F)]),   # ([M] = [N]: it broadcasts)
])
def test_integer_to_float_matmul_inputs_onnxruntime_runs_are_still_planned_at_its_size(op, spec):
    model = _int_matmul(op, spec)
    real = _ort_runs(model, _ones_feeds(model))
    assert real is not None
    g = import_onnx(model)
    assert g.tensor("y").size == real["y"]
    memplan.verify(g, memplan.plan(g))


# --- com.microsoft GroupQueryAttention (onnxruntime-genai LLM exports): query, key, value, past, seqlens_k ---------


def _gqa(q, k=None, v=None, past=None, lens=None, heads=4, kv_heads=2):
    """A GroupQueryAttention of a total sequence length fed at run time (a scalar int32)."""
    b = q[0]
    shapes = {"q": (q, T.FLOAT), "k": (k, T.FLOAT), "v": (v, T.FLOAT), "pk": (past, T.FLOAT), "pv": (past, T.FLOAT),
              "lens": (lens or [b], T.INT32), "total": ([], T.INT32)}
    names = ["q", "k" if k else "", "v" if v else "", "pk" if past else "", "pv" if past else "", "lens", "total"]
    node = helper.make_node("GroupQueryAttention", names, ["y", "present_k", "present_v"], name="gqa",
                            domain="com.microsoft", num_heads=heads, kv_num_heads=kv_heads)
    g = helper.make_graph([node], "g", [V(nm, *shapes[nm][::-1]) for nm in names if nm],
                          [V(o, T.FLOAT, None) for o in ("y", "present_k", "present_v")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _gqa_feeds(model, total: int) -> dict[str, np.ndarray]:
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = (np.array(total, np.int32) if vi.name == "total" else np.full(shape, total - 1, np.int32)
                        if vi.name == "lens" else np.ones(shape, np.float32))
    return out


_GQA_REFUSED = {
    "num_heads not a multiple of kv_num_heads": (dict(q=[1, 3, 48], k=[1, 3, 32], v=[1, 3, 32], heads=3),
                                                 "not a multiple of its kv_num_heads"),
    "heads of size 4": (dict(q=[1, 3, 16], k=[1, 3, 8], v=[1, 3, 8]), "a multiple of 8"),
    "key of another length": (dict(q=[1, 3, 32], k=[1, 2, 16], v=[1, 2, 16]), r"requires \[1, 3, 16\]"),
    "key of other kv heads": (dict(q=[1, 3, 32], k=[1, 3, 32], v=[1, 3, 32]), r"requires \[1, 3, 16\]"),
    "value of another size": (dict(q=[1, 3, 32], k=[1, 3, 16], v=[1, 3, 8]), "not of its key's shape"),
    "past of other heads": (dict(q=[2, 1, 32], k=[2, 1, 16], v=[2, 1, 16], past=[2, 4, 2, 8]), "are not both"),
    "seqlens_k of another batch": (dict(q=[2, 3, 32], k=[2, 3, 16], v=[2, 3, 16], lens=[4]), "not of 2 elements"),
}


@pytest.mark.parametrize("case", sorted(_GQA_REFUSED))
def test_gqa_operands_onnxruntime_refuses_are_refused_naming_the_node(case):
    kwargs, words = _GQA_REFUSED[case]
    model = _gqa(**kwargs)
    total = kwargs["q"][1] + (kwargs["past"][2] if kwargs.get("past") else 0)
    assert _ort_runs(model, _gqa_feeds(model, total)) is None
    with pytest.raises(GraphError, match=rf"node 'gqa' \(GroupQueryAttention\): .*{words}.*onnxruntime refuses"):
        import_onnx(model)


@pytest.mark.parametrize("kwargs", [
    dict(q=[2, 3, 32], k=[2, 3, 16], v=[2, 3, 16]),
    dict(q=[2, 1, 32], k=[2, 1, 16], v=[2, 1, 16], past=[2, 2, 2, 8]),
    dict(q=[2, 3, 64]),                                  # (packed QKV: 4 + 2 x 2 heads of 8)
])
def test_gqa_operands_onnxruntime_runs_are_still_planned_at_its_size(kwargs):
    model = _gqa(**kwargs)
    total = kwargs["q"][1] + (kwargs["past"][2] if kwargs.get("past") else 0)
    real = _ort_runs(model, _gqa_feeds(model, total))
    assert real is not None
    g = import_onnx(model)
    assert all(g.tensor(o).size == real[o] for o in real)
    memplan.verify(g, memplan.plan(g))
