"""ONNX importer, round 54: onnxruntime's contrib ops (com.microsoft).

1. Contrib ops with kernels for GPU providers only that no shape inference sizes (BiasSoftmax, BiasDropout,
   BitmaskDropout, ComplexMul, MulInteger, TorchEmbedding, ...) were planned at whatever the model declared: a
   BiasSoftmax of ``[2, 3, 4]`` float declared ``[1]`` was planned 4 bytes, its CUDA kernel writes 96. Each is now
   sized by a rule taken from the op's documentation (onnxruntime's CPU build has no kernel to check it against),
   and the ones without a rule (SwiGLU, Rfft, EPContext, ...) are refused naming the node and op, declared or not.
2. The ops onnxruntime's transformer optimizer emits that have a CPU kernel (Attention, MultiHeadAttention,
   SkipLayerNormalization, BiasGelu, FastGelu, QuickGelu, RotaryEmbedding, MatMulNBits, ...) are held to the
   sizes onnxruntime's CPU kernels write.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import ort_refuses, ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS = "com.microsoft"
F, H, B = T.FLOAT, T.FLOAT16, T.BOOL
ort.set_default_logger_severity(4)


def _model(op: str, inputs: list, outputs: int = 1, declared: dict | None = None, **attrs):
    """One ``op`` node ``n`` (com.microsoft) on graph inputs ``inputs`` ((name, type, shape); an empty name an
    omitted optional input), its outputs ``y<k>`` the graph's; ``declared``: value_info by output name."""
    outs = [f"y{k}" for k in range(outputs)]
    node = helper.make_node(op, [i[0] for i in inputs], outs, domain=MS, name="n", **attrs)
    vis = [V(o, t, s) for o, (t, s) in (declared or {}).items()]
    g = helper.make_graph([node], "g", [V(n, t, s) for n, t, s, *_ in inputs if n],
                          [helper.ValueInfoProto(name=o) for o in outs], value_info=vis)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)


def _sizes(model) -> dict[str, int]:
    return {t.id: t.size for t in import_onnx(model).tensors if t.id.startswith("y")}


# --- 1. GPU-only contrib ops: sized by their documented shapes, or refused by name -----------------------------------

#: op -> (inputs, outputs, attributes, bytes of each output as the op's documentation makes them)
GPU_CASES = {
    # softmax(data + bias): data's shape
    "BiasSoftmax": ([("x", F, [2, 3, 4]), ("b", F, [2, 3, 4])], 1, {"axis": -1, "is_inner_broadcast": 0}, [96]),
    # Dropout(data + bias) + residual, and its bool mask of data's shape
    "BiasDropout": ([("x", H, [2, 3, 8]), ("b", H, [8])], 2, {}, [96, 48]),
    # the mask packed: one uint32 per 32 elements (48 -> 2 words)
    "BitmaskDropout": ([("x", F, [2, 3, 8])], 2, {}, [192, 8]),
    "BitmaskBiasDropout": ([("x", F, [5, 7]), ("b", F, [7])], 2, {}, [140, 8]),
    # complex products, the last axis (re, im), broadcast
    "ComplexMul": ([("a", F, [2, 1, 2]), ("b", F, [3, 2])], 1, {}, [48]),
    "ComplexMulConj": ([("a", H, [4, 2]), ("b", H, [2, 4, 2])], 1, {}, [32]),
    # (A - A_zp) * (B - B_zp) in int32, broadcast
    "MulInteger": ([("a", T.INT8, [2, 3]), ("", 0, None), ("b", T.INT8, [3])], 1, {}, [24]),
    "QOrderedGelu": ([("x", T.INT8, [2, 16]), ("sx", F, []), ("sy", F, [])], 1, {}, [32]),
    "QuantizeWithOrder": ([("x", H, [4, 32]), ("s", F, [])], 1, {"order_input": 1, "order_output": 1}, [128]),
    "DequantizeWithOrder": ([("x", T.INT8, [4, 32]), ("s", F, [])], 1,
                            {"to": T.FLOAT16, "order_input": 1, "order_output": 1}, [256]),
    # weight [V, D] looked up by indices [...]: [..., D]
    "TorchEmbedding": ([("w", F, [10, 6]), ("i", T.INT64, [2, 3])], 1, {}, [144]),
    # (its inputs are one type V: a float with a float16 is refused by onnxruntime, and since round 63 by memplan)
    "IsAllFinite": ([("a", F, [2, 3]), ("b", F, [5])], 1, {}, [1]),
    # Conv of x [N, H, W, C] by w [M, kH, kW, C] (channels last, as onnxruntime's NhwcConv fusion transposes them):
    # (8 + 2 - 3) // 2 + 1 = 4 -> [1, 4, 4, 4] float16 (onnxruntime's rule took a declaration's spatial sizes)
    "NhwcConv": ([("x", H, [1, 8, 8, 3]), ("w", H, [4, 3, 3, 3])], 1, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, [128]),
    # Gemm (transB=1, which its float8 kernels require) in its dtype: [4, 5] float16 (onnxruntime's: float8, MatMul's)
    "GemmFloat8": ([("a", T.FLOAT8E4M3FN, [4, 8]), ("b", T.FLOAT8E4M3FN, [5, 8])], 1,
                   {"transB": 1, "dtype": T.FLOAT16}, [40]),
    # A times B as MatMul sizes them, int8 (the orders are layouts)
    "QOrderedMatMul": ([("a", T.INT8, [4, 32]), ("sa", F, []), ("b", T.INT8, [32, 8]), ("sb", F, []), ("sy", F, [])],
                       1, {"order_A": 1, "order_B": 0, "order_Y": 1}, [32]),
    "FusedMatMulActivation": ([("a", F, [2, 3, 4]), ("b", F, [5, 4])], 1, {"activation": "Relu", "transB": 1}, [120]),
    "GemmaRotaryEmbedding": ([("emb", F, [1, 3, 8]), ("q", H, [1, 2, 3, 8]), ("qr", H, [1, 2, 3, 8]),
                              ("k", H, [1, 1, 3, 8]), ("kr", H, [1, 1, 3, 8])], 2, {}, [96, 48]),
}


@pytest.mark.parametrize("op", sorted(GPU_CASES))
def test_a_gpu_only_op_is_sized_by_its_documented_shape_whatever_it_declares(op):
    """Was: planned at the declaration (``[1]``: 4 bytes each), or refused as unsized where none."""
    inputs, outputs, attrs, want = GPU_CASES[op]
    expect = {f"y{k}": b for k, b in enumerate(want)}
    assert _sizes(_model(op, inputs, outputs, **attrs)) == expect
    elem = {"MulInteger": T.INT32, "IsAllFinite": B, "GemmaRotaryEmbedding": H, "DequantizeWithOrder": H,
            "QuantizeWithOrder": T.INT8, "GemmFloat8": H}.get(op, inputs[0][1])
    declared = {"y0": (elem, [1])}
    assert _sizes(_model(op, inputs, outputs, declared, **attrs)) == expect


def test_gemm_float8_of_no_dtype_writes_float():
    """dtype defaults to float (1): [4, 5] float is 80 bytes; onnxruntime's rule made it float8, 20."""
    m = _model("GemmFloat8", [("a", T.FLOAT8E4M3FN, [4, 8]), ("b", T.FLOAT8E4M3FN, [8, 5])])
    assert _sizes(m) == {"y0": 80}


def test_nhwc_conv_declared_smaller_is_planned_at_what_its_kernel_writes():
    """onnxruntime's rule took the declaration's spatial sizes: [1, 1, 1, 4] planned 8 bytes of the 288 written."""
    m = _model("NhwcConv", [("x", H, [1, 8, 8, 3]), ("w", H, [4, 3, 3, 3])], 1, {"y0": (H, [1, 1, 1, 4])})
    assert _sizes(m) == {"y0": 288}


def test_a_rule_that_cannot_size_its_output_refuses_rather_than_take_the_declaration():
    # TorchEmbedding of a 3-D weight: no documented shape; the declaration [1] was planned (4 bytes)
    m = _model("TorchEmbedding", [("w", F, [10, 6, 2]), ("i", T.INT64, [2, 3])], 1, {"y0": (F, [1])})
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:TorchEmbedding\): memplan's rule for "
                                         r"TorchEmbedding .* cannot size its output 'y0'"):
        import_onnx(m)


@pytest.mark.parametrize("op,inputs", [
    ("SwiGLU", [("x", F, [2, 3, 8])]),
    ("Rfft", [("x", F, [2, 16])]),
    ("RMSNormRotary", [("x", H, [1, 2, 2, 8]), ("s", F, [8]), ("p", T.INT64, [1, 2]), ("c", F, [4, 2]),
                       ("si", F, [4, 2])]),
    ("EPContext", [("x", F, [2, 3])]),
])
def test_a_gpu_only_op_without_a_rule_is_refused_by_name_even_when_declared(op, inputs):
    """Was: planned at the declaration (``[1]``: 4 bytes), whatever its kernel writes."""
    m = _model(op, inputs, 1, {"y0": (F, [1])})
    with pytest.raises(GraphError, match=rf"^model: node 'n' \(com.microsoft:{op}\): neither onnx's nor "
                                         rf"onnxruntime's shape inference sizes onnxruntime's {op}.*'y0'"):
        import_onnx(m)


def test_the_cli_refuses_it_in_one_line(tmp_path, capsys):
    from memplan.cli import main

    path = tmp_path / "m.onnx"
    onnx.save(_model("SwiGLU", [("x", F, [2, 3, 8])], 1, {"y0": (F, [2, 3, 4])}), path)
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"memplan: error: {path}: node 'n' (com.microsoft:SwiGLU)")
    assert not (tmp_path / "g.json").exists()


# --- 2. the transformer optimizer's ops with a CPU kernel: held to what the kernel writes ---------------------------

D = 8
ZEROS = np.zeros((2, 3), np.int64)
#: name -> (op, inputs (name, type, shape[, fed value]), outputs, attributes): a call onnxruntime's CPU kernel runs
CPU_CASES = {
    "Attention": ("Attention", [("x", F, [2, 3, D]), ("w", F, [D, 3 * D]), ("b", F, [3 * D])], 1, {"num_heads": 2}),
    "Attention+past": ("Attention", [("x", F, [2, 3, D]), ("w", F, [D, 3 * D]), ("b", F, [3 * D]), ("", 0, None),
                                     ("past", F, [2, 2, 2, 4, 4])], 2, {"num_heads": 2, "unidirectional": 1}),
    "MultiHeadAttention": ("MultiHeadAttention", [("q", F, [2, 3, D]), ("k", F, [2, 5, D]), ("v", F, [2, 5, D])], 1,
                           {"num_heads": 2}),
    "SkipLayerNormalization": ("SkipLayerNormalization", [("x", F, [2, 3, D]), ("s", F, [2, 3, D]), ("g", F, [D]),
                                                          ("b", F, [D])], 4, {}),
    "SkipSimplifiedLayerNormalization": ("SkipSimplifiedLayerNormalization",
                                         [("x", F, [2, 3, D]), ("s", F, [2, 3, D]), ("g", F, [D])], 4, {}),
    "BiasGelu": ("BiasGelu", [("x", F, [2, 3, D]), ("b", F, [D])], 1, {}),
    "FastGelu": ("FastGelu", [("x", F, [2, 3, D]), ("b", F, [D])], 1, {}),
    "QuickGelu": ("QuickGelu", [("x", F, [2, 3, D])], 1, {"alpha": 1.702}),
    "RotaryEmbedding": ("RotaryEmbedding", [("x", F, [2, 3, D]), ("pos", T.INT64, [2, 3], ZEROS), ("cos", F, [16, 2]),
                                            ("sin", F, [16, 2])], 1, {"num_heads": 2}),
    "MatMulNBits": ("MatMulNBits", [("a", F, [2, 3, 32]), ("bq", T.UINT8, [5, 1, 16]), ("sc", F, [5])], 1,
                    {"K": 32, "N": 5, "bits": 4, "block_size": 32}),
    "DecoderMaskedMultiHeadAttention": (
        "DecoderMaskedMultiHeadAttention",
        [("q", F, [2, 1, D]), ("k", F, [2, 1, D]), ("v", F, [2, 1, D]), ("", 0, None), ("", 0, None),
         ("pk", F, [2, 2, 6, 4]), ("pv", F, [2, 2, 6, 4]), ("psl", T.INT32, [1], np.array([2], np.int32))], 3,
        {"num_heads": 2, "past_present_share_buffer": 1}),
}


def _feeds(inputs) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for name, t, shape, *given in inputs:
        if name:
            dtype = helper.tensor_dtype_to_np_dtype(t)
            out[name] = given[0] if given else (rng.random(shape).astype(dtype) if t in (F, H) else np.ones(shape, dtype))
    return out


@pytest.mark.parametrize("name", sorted(CPU_CASES))
def test_an_optimizer_op_is_sized_as_its_cpu_kernel_writes(name):
    op, inputs, outputs, attrs = CPU_CASES[name]
    m = _model(op, inputs, outputs, **attrs)
    real = ort_sizes(m, _feeds(inputs), strict=True)
    compared, bad = size_mismatches(import_onnx(m), real, f"{name}: ")
    assert compared == outputs and not bad, bad


# --- 3. LinearAttention and ConvTransposeWithDynamicPads: sized as their CPU kernels write ----------------------------

def _la(q, k, v, past=None, decl=None, **attrs):
    ins = [("q", F, q), ("k", F, k), ("v", F, v)] + ([("ps", F, past)] if past else [])
    return ins, _model("LinearAttention", ins, 2, decl, **attrs)


@pytest.mark.parametrize("q,k,v,past,heads", [
    ([2, 3, 8], [2, 3, 8], [2, 3, 12], None, (2, 2)),
    ([2, 3, 16], [2, 3, 8], [2, 3, 12], None, (4, 2)),        # grouped: 4 query heads over 2
    ([2, 3, 8], [2, 3, 8], [2, 3, 24], None, (2, 4)),         # inverse: output widened to 4 * d_v
    ([2, 3, 8], [2, 3, 4], [2, 3, 12], None, (2, 2)),         # one key head for both
    ([1, 1, 8], [1, 1, 8], [1, 1, 12], [1, 2, 4, 6], (2, 2)),  # a decode step on a past state
])
def test_linear_attention_is_sized_as_its_kernel_writes(q, k, v, past, heads):
    """Was: refused by name whatever its inputs ("memplan has no rule for it")."""
    ins, m = _la(q, k, v, past, q_num_heads=heads[0], kv_num_heads=heads[1], update_rule="linear")
    real = ort_sizes(m, _feeds(ins), strict=True)
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared == 2 and not bad, bad
    # a declaration of half the state is not planned
    _, m = _la(q, k, v, past, {"y1": (F, [1, 1])}, q_num_heads=heads[0], kv_num_heads=heads[1], update_rule="linear")
    assert _sizes(m)["y1"] == real["y1"]


@pytest.mark.parametrize("q,v,past,attrs", [
    ([2, 3, 12], [2, 3, 12], None, {"q_num_heads": 5, "kv_num_heads": 2}),     # 12 no multiple of 5 heads
    ([2, 3, 8], [2, 3, 12], [2, 2, 4, 5], {"q_num_heads": 2, "kv_num_heads": 2}),  # past state of another shape
    ([2, 3, 8], [2, 3, 12], None, {"q_num_heads": 2, "kv_num_heads": 2, "state_window": 2}),
    ([2, 3, 8], [2, 3, 12], None, {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "bogus"}),
])
def test_linear_attention_its_kernel_refuses_is_refused_naming_the_node(q, v, past, attrs):
    _, m = _la(q, [2, 3, 8], v, past, {"y0": (F, [2, 3, 12]), "y1": (F, [2, 2, 4, 6])}, **attrs)
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:LinearAttention\): memplan's rule .* cannot size"):
        import_onnx(m)


def _ctdp(pads, pads_input: bool = False, decl=None, **attrs):
    """ConvTransposeWithDynamicPads of x [1, 2, 5, 5] by a [2, 3, 3, 3] weight, its Pads an initializer (or
    ``pads_input``: a graph input)."""
    inits = [helper.make_tensor("w", F, [2, 3, 3, 3], np.ones(54, np.float32))]
    ins = [V("x", F, [1, 2, 5, 5])]
    if pads is not None and pads_input:
        ins.append(V("p", T.INT64, [len(pads)]))
    elif pads is not None:
        inits.append(helper.make_tensor("p", T.INT64, [len(pads)], pads))
    node = helper.make_node("ConvTransposeWithDynamicPads", ["x", "w"] + (["p"] if pads is not None else []), ["y0"],
                            domain=MS, name="n", **attrs)
    vis = [V(o, t, s) for o, (t, s) in (decl or {}).items()]
    g = helper.make_graph([node], "g", ins, [helper.ValueInfoProto(name="y0")], inits, value_info=vis)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)


@pytest.mark.parametrize("pads,attrs", [
    ([1, 1, 1, 1], {}),
    ([1, 0, 2, 1], {"strides": [2, 2]}),
    ([1, 0, 2, 1], {"strides": [2, 2], "output_padding": [1, 1]}),
    ([0, 0, 0, 0], {"strides": [2, 2], "dilations": [2, 2]}),
    ([3, 3, 3, 3], {}),
])
def test_conv_transpose_with_dynamic_pads_of_constant_pads_is_sized_as_its_kernel_writes(pads, attrs):
    """Was: refused by name whatever its pads; now ConvTranspose's shape with those pads, declared or not."""
    m = _ctdp(pads, **attrs)
    real = ort_sizes(m, {"x": np.ones((1, 2, 5, 5), np.float32)}, strict=True)
    assert size_mismatches(import_onnx(m), real) == (1, [])
    assert _sizes(_ctdp(pads, decl={"y0": (F, [1, 3, 2, 2])}, **attrs)) == {"y0": real["y0"]}


def test_conv_transpose_with_dynamic_pads_from_a_graph_input_or_none_is_refused():
    # pads fed at run time: the output's size follows their values
    with pytest.raises(GraphError, match=r"node 'n' \(ConvTransposeWithDynamicPads\): value 'y0' .* depends on values "
                                         r"computed at run time"):
        import_onnx(_ctdp([1, 1, 1, 1], pads_input=True, decl={"y0": (F, [1, 3, 5, 5])}))
    # no Pads: the kernel refuses to run ("Dynamic pads tensor is required")
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:ConvTransposeWithDynamicPads\): memplan's rule"):
        import_onnx(_ctdp(None, decl={"y0": (F, [1, 3, 7, 7])}))


# --- 4. a com.microsoft op onnxruntime does not have -----------------------------------------------------------------

@pytest.mark.parametrize("declared", [None, {"y0": (F, [1])}])
def test_a_com_microsoft_op_onnxruntime_lacks_is_refused_by_name(declared):
    """Was: planned at its declaration (``[1]``: 4 bytes), unchecked, where onnxruntime refuses to load the model
    ("is not a registered function/op"); refused as unsized where undeclared."""
    m = _model("GemmFastGelu2d", [("x", F, [2, 3])], 1, declared)
    assert ort_refuses(m)
    with pytest.raises(GraphError, match=rf"^model: node 'n' \(com.microsoft:GemmFastGelu2d\): onnxruntime "
                                         rf"{ort.__version__} has no op GemmFastGelu2d in domain com.microsoft"):
        import_onnx(m)


def test_a_local_function_of_that_domain_is_still_inlined():
    f = helper.make_function(MS, "MyFn", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                             [helper.make_opsetid("", 17)])
    g = helper.make_graph([helper.make_node("MyFn", ["x"], ["y"], domain=MS, name="f")], "g", [V("x", F, [2, 3])],
                          [V("y", F, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8,
                          functions=[f])
    assert import_onnx(m).tensor("y").size == 24


# --- 5. LinearAttentionGate and EngramGate: sized as their CPU kernels write ------------------------------------------

#: name -> (op, inputs, outputs): calls onnxruntime's CPU kernel runs
GATE_CASES = {
    "LinearAttentionGate": ("LinearAttentionGate", [("a", F, [2, 3, 4]), ("dt", F, [4]), ("ds", F, [4]),
                                                    ("b", F, [2, 3, 4])], 2),
    "LinearAttentionGate-2d-no-b": ("LinearAttentionGate", [("a", F, [6, 4]), ("dt", F, [4]), ("ds", F, [4])], 1),
    "EngramGate": ("EngramGate", [("k", F, [2, 3, 2, 8]), ("q", F, [2, 3, 2, 8]), ("v", F, [2, 3, 8]), ("ks", F, [2, 8]),
                                  ("qs", F, [2, 8]), ("cs", F, [2, 8])], 2),
    "EngramGate-one-output": ("EngramGate", [("k", F, [2, 3, 3, 8]), ("q", F, [2, 3, 3, 8]), ("v", F, [2, 3, 8]),
                                             ("ks", F, [3, 8]), ("qs", F, [3, 8])], 1),
}


@pytest.mark.parametrize("name", sorted(GATE_CASES))
def test_a_gate_op_is_sized_as_its_kernel_writes_whatever_it_declares(name):
    """Was: refused by name whatever its inputs ("memplan has no rule for it")."""
    op, inputs, outputs = GATE_CASES[name]
    real = ort_sizes(_model(op, inputs, outputs), _feeds(inputs), strict=True)
    m = _model(op, inputs, outputs, {f"y{k}": (F, [1]) for k in range(outputs)})
    assert size_mismatches(import_onnx(m), real) == (outputs, [])


@pytest.mark.parametrize("op,inputs,outputs", [
    ("LinearAttentionGate", [("a", F, [2, 3, 4]), ("dt", F, [5]), ("ds", F, [4])], 1),   # dt_bias of 5 heads, not 4
    ("LinearAttentionGate", [("a", F, [2, 3, 4]), ("dt", F, [4]), ("ds", F, [4]), ("b", F, [2, 3, 2])], 2),
    ("EngramGate", [("k", F, [2, 3, 2, 8]), ("q", F, [2, 3, 2, 8]), ("v", F, [2, 3, 8]), ("ks", F, [8]),
                    ("qs", F, [8])], 1),                                                    # scales not [hc, H]
    ("EngramGate", [("k", F, [2, 3, 2, 8]), ("q", F, [2, 3, 2, 8]), ("v", F, [2, 3, 8]), ("ks", F, [2, 8]),
                    ("qs", F, [2, 8])], 2),                                                 # no conv_norm_scale
])
def test_a_gate_op_its_kernel_refuses_is_refused_naming_the_node(op, inputs, outputs):
    m = _model(op, inputs, outputs, {f"y{k}": (F, [1]) for k in range(outputs)})
    assert ort_refuses(m, _feeds(inputs))
    with pytest.raises(GraphError, match=rf"node 'n' \(com.microsoft:{op}\): memplan's rule .* cannot size"):
        import_onnx(m)
