"""ONNX importer, round 55: onnxruntime 1.32's WordConvEmbedding and CausalConvWithState, refused by name before
(``ORT_UNSIZED``), are sized by rules of memplan's, checked here against the bytes onnxruntime's CPU kernel
writes (``tests/onnx_oracle.py``); inputs or attributes the kernel refuses are refused naming the node."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import feeds_for, ort_refuses, ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS = "com.microsoft"
F, H = T.FLOAT, T.FLOAT16


def _model(op: str, inputs: list, outputs: int | tuple = 1, declared: dict | None = None, **attrs):
    """One ``op`` node ``n`` of domain com.microsoft on graph inputs ``inputs`` ((name, type, shape); an empty name
    an omitted optional input), its outputs ``y<k>`` the graph's outputs (``outputs``: how many, or a tuple of
    which are asked for); ``declared``: value_info by output name."""
    asked = outputs if isinstance(outputs, tuple) else (True,) * outputs
    outs = [f"y{k}" if on else "" for k, on in enumerate(asked)]
    node = helper.make_node(op, [i[0] for i in inputs], outs, domain=MS, name="n", **attrs)
    vis = [V(o, t, s) for o, (t, s) in (declared or {}).items()]
    g = helper.make_graph([node], "g", [V(n, t, s) for n, t, s in inputs if n],
                          [helper.ValueInfoProto(name=o) for o in outs if o], value_info=vis)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)], ir_version=10)


def _check_against_ort(model, dims: dict | None = None) -> None:
    """memplan's sizes of every output equal what onnxruntime's CPU kernel writes (symbolic dims fixed by ``dims``)."""
    named = {d.dim_param for vi in model.graph.input for d in vi.type.tensor_type.shape.dim}
    dims = {k: v for k, v in (dims or {}).items() if k in named} or None
    real = ort_sizes(model, feeds_for(model, dims), strict=True)
    graph = import_onnx(model, dims=dims)
    compared, bad = size_mismatches(graph, real)
    assert compared == len([o for o in model.graph.node[0].output if o]) and not bad, bad


def _word(seq=(4, 7), w=(8, 1, 3, 4), b=(8,), c=(30, 4), types=(T.INT32, F, F, F)):
    return [("S", types[0], list(seq)), ("W", types[1], list(w)), ("B", types[2], list(b)), ("C", types[3], list(c))]


@pytest.mark.parametrize("inputs, attrs", [
    (_word(), {}),
    (_word(seq=(2, 5, 6), w=(8, 1, 2, 4), c=(30, 4)), {}),   # (rank 3: words are the first axis)
    (_word(), {"embedding_size": 8, "conv_window_size": 3, "char_embedding_size": 4}),
    (_word(seq=("words", 7)), {}),
])
def test_word_conv_embedding_is_sized_as_onnxruntime_writes_it(inputs, attrs):
    """Before: refused by name. ``[4, 7]`` words of chars, 8 filters: ``[4, 8]`` float, 128 bytes."""
    _check_against_ort(_model("WordConvEmbedding", inputs, **attrs), dims={"words": 5})


def test_word_conv_embedding_declared_too_small_is_planned_at_the_kernels_size():
    """Declared ``[2, 4]`` (32 bytes) where the kernel writes ``[2, 8]`` (64): planned 64."""
    model = _model("WordConvEmbedding", _word(seq=(2, 5, 6), w=(8, 1, 2, 4)), declared={"y0": (F, [2, 4])})
    assert {t.id: t.size for t in import_onnx(model).tensors}["y0"] == 64


@pytest.mark.parametrize("inputs, attrs", [
    (_word(), {"embedding_size": 5}),
    (_word(), {"conv_window_size": 2}),
    (_word(), {"char_embedding_size": 3}),
    (_word(c=(30, 5)), {}),                       # char table of another width than W's
    (_word(b=(5,)), {}),                          # bias not [filters]
    (_word(seq=(4, 2)), {}),                      # window wider than a word
    (_word(seq=(7,)), {}),                        # rank 1 sequence
    (_word(w=(8, 3, 4)), {}),                     # rank 3 weight
    (_word(types=(T.INT64, F, F, F)), {}),        # ids not int32
    (_word(types=(T.INT32, H, H, H)), {}),        # float16 weights
])
def test_word_conv_embedding_that_onnxruntime_refuses_is_refused_naming_the_node(inputs, attrs):
    model = _model("WordConvEmbedding", inputs, **attrs)
    assert ort_refuses(model, feeds_for(model))
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:WordConvEmbedding\): memplan's rule for "
                                         r"WordConvEmbedding .*cannot size its output 'y0'"):
        import_onnx(model)


def _conv(x=(2, 6, 5), w=(6, 1, 3), bias=None, past=None, t=F):
    ins = [("x", t, list(x)), ("w", t, list(w))]
    if bias is not None or past is not None:
        ins.append(("b", t, list(bias)) if bias is not None else ("", 0, None))
    if past is not None:
        ins.append(("p", t, list(past)))
    return ins


@pytest.mark.parametrize("inputs, attrs", [
    (_conv(), {}),
    (_conv(bias=(6,), past=(2, 6, 2)), {"activation": "silu"}),
    (_conv(), {"dilation": 2}),                                          # state [2, 6, 4]
    (_conv(x=(2, 5, 6)), {"channels_last": 1}),
    (_conv(x=(2, 5, 2, 3), past=(2, 2, 2, 3)), {"channels_last": 1}),   # two trailing channel axes
    (_conv(t=H), {}),
    (_conv(w=(6, 1, 1)), {}),                                            # kernel 1: an empty state
    (_conv(x=("B", 6, "L"), past=("B", 6, 2)), {}),
])
def test_causal_conv_with_state_is_sized_as_onnxruntime_writes_it(inputs, attrs):
    """Before: refused by name. ``[2, 6, 5]`` by a ``[6, 1, 3]`` kernel, dilation 2: output 240 bytes, state
    ``[2, 6, 4]`` 192."""
    _check_against_ort(_model("CausalConvWithState", inputs, 2, **attrs), dims={"B": 2, "L": 3})


def test_causal_conv_with_state_declared_state_too_small_is_planned_at_the_kernels_size():
    """A present state declared ``[2, 6, 2]`` (96 bytes) of a dilation-2 conv, whose kernel writes ``[2, 6, 4]``
    (192): planned 192."""
    model = _model("CausalConvWithState", _conv(), 2, declared={"y1": (F, [2, 6, 2])}, dilation=2)
    assert {t.id: t.size for t in import_onnx(model).tensors}["y1"] == 192


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_conv(x=(2, 6)), 2, {}),                          # input rank 2
    (_conv(w=(6, 3)), 2, {}),                          # weight rank 2
    (_conv(w=(5, 1, 3)), 2, {}),                       # weight channels != input channels
    (_conv(w=(6, 2, 3)), 2, {}),                       # not depthwise
    (_conv(bias=(5,)), 2, {}),
    (_conv(past=(2, 6, 3)), 2, {}),                    # past of another length than (k - 1) * dilation
    (_conv(), 2, {"dilation": 0}),
    (_conv(), 2, {"activation": "gelu"}),
    (_conv(), 2, {"channels_last": 2}),
    (_conv(x=(2, 6, 4, 5), w=(6, 1, 3, 3)), 2, {"ndim": 2}),
    (_conv(), 2, {"state_window": 2}),
    (_conv(x=(2, 5, 6)), 2, {"channels_last": 1, "state_length": 4}),
    (_conv(x=(2, 5, 6)), 3, {"channels_last": 1, "state_update_capacity": 2}),
    (_conv(x=(2, 5, 6)), 3, {"channels_last": 1}),     # state_update output without its capacity
    (_conv(t=T.DOUBLE), 2, {}),
    ([("x", F, [2, 6, 5]), ("w", H, [6, 1, 3])], 2, {}),   # mixed types
])
def test_causal_conv_with_state_that_onnxruntime_refuses_is_refused_naming_the_node(inputs, outputs, attrs):
    model = _model("CausalConvWithState", inputs, outputs, **attrs)
    if all(t in (F, H) for _, t, _ in inputs if _):
        assert ort_refuses(model, feeds_for(model))
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:CausalConvWithState\): memplan's rule for "
                                         r"CausalConvWithState .*cannot size its output 'y\d'"):
        import_onnx(model)


LEGACY, FULL = (True,), (False, True, True)


def _router(logits=(3, 8), bias=(8,), proj=None, t=F):
    ins = [("l", t, list(logits)), ("b", F, list(bias))]
    return ins + ([("pw", t, list(proj))] if proj is not None else [])


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_router(), LEGACY, {"top_k": 2}),
    (_router(logits=(2, 3, 8)), LEGACY, {"top_k": 2}),                      # rows 6
    (_router(), LEGACY, {"top_k": 5, "n_group": 2, "topk_group": 1, "router_sentinel": 1.0}),
    (_router(t=H), LEGACY, {"top_k": 2}),                                   # router_probs in the logits' type
    (_router(), FULL, {"top_k": 2}),
    (_router(logits=(2, 3, 8), t=H), FULL, {"top_k": 2}),                   # full scores float, whatever T
    (_router(logits=(3, 256), proj=(8, 256)), FULL, {"top_k": 2}),          # projected: experts from the weight
    (_router(logits=("T", 8)), LEGACY, {"top_k": 2}),
])
def test_moe_group_router_is_sized_as_onnxruntime_writes_it(inputs, outputs, attrs):
    """Before: refused by name. ``[3, 256]`` activations projected by ``[8, 256]``: selection scores and router
    weights ``[3, 8]`` float, 96 bytes each."""
    _check_against_ort(_model("MoEGroupRouter", inputs, outputs, **attrs), dims={"T": 4})


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_router(), LEGACY, {}),                                                # top_k is required
    (_router(), LEGACY, {"top_k": 0}),
    (_router(), LEGACY, {"top_k": 9}),
    (_router(), LEGACY, {"top_k": 2, "n_group": 3}),                        # 8 experts in 3 groups
    (_router(), LEGACY, {"top_k": 2, "n_group": 2, "topk_group": 3}),
    (_router(), LEGACY, {"top_k": 2, "group_topk": 0}),
    (_router(logits=(8,)), LEGACY, {"top_k": 2}),                           # rank 1 logits
    (_router(bias=(7,)), LEGACY, {"top_k": 2}),
    (_router(), (True, True, True), {"top_k": 2}),                          # full scores with router_probs
    (_router(), (False, True), {"top_k": 2}),                               # one of the pair
    (_router(), (False, False, True), {"top_k": 2}),
    (_router(), FULL, {"top_k": 2, "n_group": 2}),
    (_router(logits=(3, 600), bias=(600,)), FULL, {"top_k": 2}),            # more than 512 experts
    (_router(logits=(3, 256), proj=(8, 256)), LEGACY, {"top_k": 2}),        # projection without full scores
    (_router(logits=(3, 255), proj=(8, 255)), FULL, {"top_k": 2}),
    (_router(logits=(3, 256), proj=(8, 512)), FULL, {"top_k": 2}),
    (_router(logits=(1, 3, 256), proj=(8, 256)), FULL, {"top_k": 2}),
    ([("l", F, [3, 8]), ("b", H, [8])], LEGACY, {"top_k": 2}),             # a float16 bias
])
def test_moe_group_router_that_onnxruntime_refuses_is_refused_naming_the_node(inputs, outputs, attrs):
    model = _model("MoEGroupRouter", inputs, outputs, **attrs)
    assert ort_refuses(model, feeds_for(model))
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:MoEGroupRouter\): memplan's rule for "
                                         r"MoEGroupRouter .*cannot size its output 'y\d'"):
        import_onnx(model)


E = ("", 0, None)


def _gdn(q=(6, 2, 4), k=(6, 2, 4), v=(6, 2, 3), cu=None, decay=(6, 2), beta=(6, 2), state=(2, 2, 3, 4), capture=None,
         t=F):
    """GatedDeltaNet's inputs (None: omitted)."""
    ins = [("q", t, q), ("k", t, k), ("v", t, v), ("cu", T.INT32, cu), ("d", t, decay), ("b", t, beta),
           ("s", F, state), E, E, ("cc", T.INT32, capture)]
    ins = [(n, ty, list(s)) if s is not None else E for n, ty, s in ins]
    while ins and not ins[-1][0]:
        ins.pop()
    return ins


def _gdn_feeds(model, dims=None):
    """``feeds_for``, with a ``cu_seqlens`` that starts at 0 and ends at the token count, as the kernel requires."""
    feeds = feeds_for(model, dims)
    if "cu" in feeds:
        b, tokens = feeds["cu"].size - 1, feeds["q"].shape[0]
        feeds["cu"] = np.linspace(0, tokens, b + 1).astype(np.int32)
    return feeds


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_gdn(), 2, {}),
    (_gdn(v=(6, 4, 3), decay=(6, 4), beta=(6, 4), state=(2, 4, 3, 4)), 2, {}),     # inverse GQA
    (_gdn(q=(2, 3, 2, 4), k=(2, 3, 2, 4), v=(2, 3, 2, 3), decay=(2, 3, 2), beta=(2, 3, 2), state=None), 2, {}),
    (_gdn(q=(6, 22), k=None, v=None), 2, {}),                                        # packed QKV
    (_gdn(cu=(3,), state=None), 2, {}),                                              # batch from cu_seqlens
    (_gdn(state=(3, 2, 3, 4)), 2, {}),
    (_gdn(decay=None, beta=None), 1, {"update_rule": "linear"}),
    (_gdn(decay=None), 1, {"update_rule": "delta"}),
    (_gdn(beta=None), 1, {"update_rule": "gated"}),
    (_gdn(capture=(2,)), 3, {"state_update_capacity": 2}),                          # [2, 2 * (2 + 8 + 6)]
    (_gdn(decay=(6, 2, 4), capture=(2,)), 3, {"state_update_capacity": 2}),         # per-key decay: [2, 44]
    (_gdn(decay=None, capture=(2,)), 3, {"state_update_capacity": 2, "update_rule": "delta"}),
    (_gdn(q=(2, 3, 2, 4), k=(2, 3, 2, 4), v=(2, 3, 2, 3), decay=(2, 3, 2), beta=(2, 3, 2), capture=(2,)), 3,
     {"state_update_capacity": 3}),
    (_gdn(t=H), 2, {}),                                                              # output float16, state float
    (_gdn(q=("T", 2, 4), k=("T", 2, 4), v=("T", 2, 3), decay=("T", 2), beta=("T", 2)), 2, {}),
])
def test_gated_delta_net_is_sized_as_onnxruntime_writes_it(inputs, outputs, attrs):
    """Before: refused by name. 6 tokens of 2 heads (``Dk`` 4, ``Dv`` 3), batch 2, capacity 2: output ``[6, 2, 3]``
    (72 bytes), final state ``[2, 2, 3, 4]`` (192), state update ``[2, 32]`` (256)."""
    model = _model("GatedDeltaNet", inputs, outputs, **attrs)
    dims = {"T": 6} if any(i[2] and "T" in i[2] for i in inputs) else None
    real = ort_sizes(model, _gdn_feeds(model, dims), strict=True)
    compared, bad = size_mismatches(import_onnx(model, dims=dims), real)
    assert compared == outputs and not bad, bad


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_gdn(state=None), 2, {}),                                     # no batch: neither cu_seqlens nor a state
    (_gdn(), 1, {"update_rule": "linear"}),                        # decay and beta where the rule forbids them
    (_gdn(beta=None), 1, {}),                                      # gated_delta without beta
    (_gdn(), 3, {"state_update_capacity": 2}),                     # capacity without capture_count
    (_gdn(capture=(2,)), 2, {}),                                   # capture_count without capacity
    (_gdn(capture=(2,)), 3, {"state_update_capacity": 9}),
    (_gdn(state=(2, 2, 4, 3)), 2, {}),                             # state not V-major
    (_gdn(q=(6, 4, 4), k=(6, 4, 4)), 2, {}),                       # Hv 2 no multiple of Hq 4
    (_gdn(k=(6, 1, 4)), 2, {}),                                    # Hk != Hq
    (_gdn(q=(6, 22), k=None, v=None, state=None), 2, {}),         # packed QKV without a state
    (_gdn(v=None), 2, {}),                                         # key without value
    (_gdn(), 2, {"update_rule": "other"}),
])
def test_gated_delta_net_that_onnxruntime_refuses_is_refused_naming_the_node(inputs, outputs, attrs):
    model = _model("GatedDeltaNet", inputs, outputs, **attrs)
    assert ort_refuses(model, _gdn_feeds(model))
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:GatedDeltaNet\): memplan's rule for "
                                         r"GatedDeltaNet .*cannot size its output 'y\d'"):
        import_onnx(model)


def _varlen(x=(6, 4), w=(4, 1, 3), cu=(3,), bias=None, init=(2, 4, 2), capture=None, t=F, extra=()):
    """VarlenCausalConvWithState's inputs (None: omitted); ``extra``: kernel_delta / previous_mask."""
    ins = [("x", t, x), ("w", t, w), ("cu", T.INT32, cu), ("b", t, bias), ("s", t, init), ("cc", T.INT32, capture)]
    ins += [(f"e{k}", t, e) for k, e in enumerate(extra)]
    ins = [(n, ty, list(s)) if s is not None else E for n, ty, s in ins]
    while ins and not ins[-1][0]:
        ins.pop()
    return ins


def _varlen_feeds(model, dims=None):
    feeds = feeds_for(model, dims)
    feeds["cu"] = np.linspace(0, feeds["x"].shape[0], feeds["cu"].size).astype(np.int32)
    return feeds


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_varlen(), 2, {}),
    (_varlen(init=(2, 4, 4)), 2, {"dilation": 2, "activation": "silu"}),
    (_varlen(bias=(4,), capture=(2,)), 3, {"state_update_capacity": 3}),     # state_update [2, 3, 4]
    (_varlen(), 3, {}),                                                       # state_update [2, 0, 4]: 0 bytes
    (_varlen(t=H, init=(2, 4, 2)), 2, {}),
    (_varlen(x=("T", 4)), 2, {}),
])
def test_varlen_causal_conv_with_state_is_sized_as_onnxruntime_writes_it(inputs, outputs, attrs):
    """Before: refused by name. 6 tokens of 4 channels in 2 sequences, kernel 3 at dilation 2: output 96 bytes,
    final state ``[2, 4, 4]`` 128."""
    model = _model("VarlenCausalConvWithState", inputs, outputs, **attrs)
    dims = {"T": 6} if any(i[2] and "T" in i[2] for i in inputs) else None
    real = ort_sizes(model, _varlen_feeds(model, dims), strict=True)
    compared, bad = size_mismatches(import_onnx(model, dims=dims), real)
    assert compared == outputs and not bad, bad


@pytest.mark.parametrize("inputs, outputs, attrs", [
    (_varlen(), 2, {"dilation": 2}),                              # initial state [2, 4, 2], needs [2, 4, 4]
    (_varlen(init=(3, 4, 2)), 2, {}),                             # batch 3, cu_seqlens says 2
    (_varlen(x=(2, 3, 4)), 2, {}),
    (_varlen(capture=(2,)), 3, {"state_update_capacity": 9}),
    (_varlen(), 2, {"activation": "gelu"}),
    (_varlen(), 2, {"group_size": 2}),                            # dynamic-delta mode without kernel_delta
    (_varlen(extra=(None, (6, 2))), 2, {}),                       # previous_mask alone
])
def test_varlen_causal_conv_with_state_that_onnxruntime_refuses_is_refused_naming_the_node(inputs, outputs, attrs):
    model = _model("VarlenCausalConvWithState", inputs, outputs, **attrs)
    assert ort_refuses(model, _varlen_feeds(model))
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:VarlenCausalConvWithState\): memplan's rule for "
                                         r"VarlenCausalConvWithState .*cannot size its output 'y\d'"):
        import_onnx(model)


def _packed(rows=(10, 144), idx=(2, 3), it=T.INT64):
    return [("d", T.UINT8, list(rows)), ("i", it, list(idx))]


@pytest.mark.parametrize("inputs, attrs", [
    (_packed(), {"packed_type": 2, "K": 256, "output_dtype": 1}),                 # Q4_0: [2, 3, 256] float
    (_packed(rows=(10, 64)), {"packed_type": 1, "K": 32, "output_dtype": 10}),
    (_packed(rows=(10, 64), idx=(5,), it=T.INT32), {"packed_type": 1, "K": 32}),  # bfloat16 by default
    (_packed(rows=(10, 1024), idx=()), {"packed_type": 0, "K": 256, "output_dtype": 1}),
    (_packed(rows=(10, 210), idx=("n", 2)), {"packed_type": 14, "K": 256, "output_dtype": 1}),
])
def test_gather_packed_is_sized_as_onnxruntime_writes_it(inputs, attrs):
    """Before: refused by name. 6 indices of a Q4_0 table of ``K`` 256: ``[2, 3, 256]`` float, 6144 bytes."""
    model = _model("GatherPacked", inputs, **attrs)
    dims = {"n": 3} if any(i[2] and "n" in i[2] for i in inputs) else None
    feeds = feeds_for(model, dims)
    feeds["i"] = np.zeros_like(feeds["i"])
    compared, bad = size_mismatches(import_onnx(model, dims=dims), ort_sizes(model, feeds, strict=True))
    assert compared == 1 and not bad, bad


@pytest.mark.parametrize("inputs, attrs", [
    (_packed(), {"packed_type": 2}),                                       # K is required
    (_packed(), {"packed_type": 2, "K": 0}),
    (_packed(), {"packed_type": 2, "K": 256, "output_dtype": 7}),
    (_packed(), {"packed_type": 3, "K": 256}),                             # a packed type the kernel lacks
    (_packed(rows=(1440,)), {"packed_type": 2, "K": 256}),                 # table not 2-D
    (_packed()[:1] + [("i", T.FLOAT, [2, 3])], {"packed_type": 2, "K": 256}),
])
def test_gather_packed_that_onnxruntime_refuses_is_refused_naming_the_node(inputs, attrs):
    model = _model("GatherPacked", inputs, **attrs)
    if inputs[1][1] != T.FLOAT:
        feeds = feeds_for(model)
        feeds["i"] = np.zeros_like(feeds["i"])
        assert ort_refuses(model, feeds)
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:GatherPacked\): memplan's rule for "
                                         r"GatherPacked .*cannot size its output 'y0'"):
        import_onnx(model)


def test_the_six_ops_are_ruled_not_refused_by_name():
    """tests/test_onnx_round30_contrib.py held the name refusal; the op is now ruled, not refused by name."""
    from memplan.importers.onnx.ort_ops import ORT_RULED_ONLY, ORT_UNSIZED

    ruled = {"WordConvEmbedding", "CausalConvWithState", "MoEGroupRouter", "GatedDeltaNet", "VarlenCausalConvWithState",
             "GatherPacked"}
    assert ruled <= ORT_RULED_ONLY and not ruled & ORT_UNSIZED
