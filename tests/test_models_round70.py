"""Round 70 (models70): the 17 transformers models the sweep refuses, read again, and the refusals made right.

- OpenAI's privacy filter (a mixture of experts whose class transformers decorates with
  ``use_experts_implementation``) defaults to the "eager" experts implementation, a loop over the experts the tokens
  picked: a data-dependent trip count, refused at export with the generic advice (compute the value before the
  call...), which no caller of a library model can follow. The same class runs "grouped_mm" (every expert over
  fixed shapes), which export and the executor take, bitwise. The refusal now names the experts class and the
  switch (``model.set_experts_implementation("grouped_mm")``).
- NLLB-MoE's router converts its classifier at every call to the dtype it has
  (``self.classifier = self.classifier.to(self.dtype)``, float32 to float32): a no-op in eager, refused by
  torch.export ("_apply(): Couldn't swap Linear.weight": ``nn.Module._apply`` swaps a fake parameter with itself).
  A conversion under which every tensor comes back as itself is now taken during the export
  (``memplan.importers.torch.conversions``); NLLB-MoE is then refused where it is truly data-dependent, its loop over
  the experts hit, with advice for a mixture of experts.
- torchvision's detection models whole were refused at ``batched_nms`` (a data-dependent number of boxes) with
  the generic advice, "compile only the part of the model after that line", the wrong way round. The refusal now
  names the detection post-processing and the new split, ``runtime.aten.detection.compile_detector``: the backbone
  and heads compiled (their shapes fixed by the input's), the rest torchvision's own code run eagerly; its
  detections equal eager's bitwise (tiny RetinaNet and Faster R-CNN here; the six sweep models in docs/aten.md).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from memplan.errors import GraphError, MemplanError  # noqa: E402
from runtime.aten import compile  # noqa: E402


def _privacy_filter():
    """The sweep's tiny OpenAI privacy filter (1 layer is enough to reach its experts)."""
    need("transformers")
    from runtime.aten.sweep_models60 import tiny60

    torch.manual_seed(0)
    return tiny60("openai_privacy_filter", num_hidden_layers=1)()


@pytest.mark.filterwarnings("ignore")
def test_eager_experts_loop_is_refused_naming_the_experts_implementation_switch_which_compiles_bitwise():
    model = _privacy_filter()
    if model.m.config._experts_implementation != "eager":
        pytest.skip("this transformers defaults the privacy filter to another experts implementation")
    ids = torch.randint(3, 128, (1, 6))
    with pytest.raises(GraphError) as info:
        compile(model, (ids,), cuda_graph=False)
    text = str(info.value)
    assert "for expert_idx in expert_hit" in text, text
    assert "OpenAIPrivacyFilterExperts's loop" in text and 'set_experts_implementation("grouped_mm")' in text, text

    model.m.set_experts_implementation("grouped_mm")
    with torch.no_grad():
        c = compile(model, (ids,), cuda_graph=False, poison=True)
        other = torch.randint(3, 128, (1, 6))
        assert torch.equal(c(other), model(other))


class _Loop(torch.nn.Module):
    """A data-dependent loop of the user's own, not transformers' experts dispatch: no experts advice."""

    def forward(self, x):
        for k in (x > 0).nonzero():
            x = x + k[0]
        return x


def test_a_data_dependent_loop_elsewhere_gets_no_experts_advice():
    with pytest.raises(GraphError) as info:
        compile(_Loop(), (torch.randn(4),), cuda_graph=False)
    text = str(info.value)
    assert "compute it on tensors" in text and "experts" not in text, text


class CastsToItsOwnDtype(torch.nn.Module):
    """NLLB-MoE's router in small: a submodule converted at every call to the dtype it has."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.register_buffer("scale", torch.full((4,), 2.0))

    def forward(self, x):
        self.lin = self.lin.to(torch.float32)
        return self.lin(x) * self.scale


@pytest.mark.filterwarnings("ignore")
def test_a_conversion_to_the_dtype_a_module_has_is_taken_on_both_paths_bitwise():
    import memplan

    torch.manual_seed(0)
    model = CastsToItsOwnDtype().eval()
    x = torch.randn(2, 4)
    graph = memplan.from_torch(model, (x,))
    memplan.verify(graph, memplan.plan(graph))
    with torch.no_grad():
        c = compile(model, (x,), cuda_graph=False, poison=True)
        other = torch.randn(2, 4)
        assert torch.equal(c(other), model(other))
    assert model.lin.weight.dtype == torch.float32 and torch.nn.Module._apply.__module__ == "torch.nn.modules.module"


@pytest.mark.filterwarnings("ignore")
def test_nllb_moe_is_refused_at_its_experts_loop_with_the_mixture_of_experts_advice():
    """The sweep's NLLB-MoE, 1+1 layers (both sparse): past its router's conversion, to its experts loop."""
    tf = need("transformers")
    from runtime.aten.sweep_kit import Out

    cfg = tf.NllbMoeConfig(vocab_size=128, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                           decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_experts=4,
                           expert_capacity=4, encoder_sparse_step=1, decoder_sparse_step=1, max_position_embeddings=64,
                           decoder_start_token_id=1, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = Out(tf.NllbMoeForConditionalGeneration(cfg).eval(), ("input_ids", "decoder_input_ids"), ("logits",),
                use_cache=False)
    with pytest.raises(GraphError) as info:
        compile(model, (torch.randint(3, 128, (1, 6)), torch.randint(3, 128, (1, 4))), cuda_graph=False)
    text = str(info.value)
    assert "Couldn't swap" not in text and "for expert_idx in expert_hit" in text, text
    assert "run every expert on every row and weight the results" in text, text


def _tiny_detectors():
    """A tiny RetinaNet and Faster R-CNN (a two-convolution backbone, one feature level, 64-pixel images), every
    score kept (threshold 0) so that NMS and the second stage have boxes to work on."""
    tv = need("torchvision")
    from torchvision.models import detection
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    def backbone():
        b = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, stride=2, padding=1))
        b.out_channels = 8
        return b

    def anchors():
        return AnchorGenerator(((16,),), ((0.5, 1.0),))

    torch.manual_seed(0)
    retina = detection.RetinaNet(backbone(), num_classes=3, anchor_generator=anchors(), min_size=64, max_size=64,
                                 score_thresh=0.0)
    rcnn = detection.FasterRCNN(backbone(), num_classes=3, rpn_anchor_generator=anchors(),
                                box_roi_pool=tv.ops.MultiScaleRoIAlign(["0"], 7, 2), min_size=64, max_size=64,
                                box_score_thresh=0.0)
    return retina.eval(), rcnn.eval()


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


@pytest.mark.filterwarnings("ignore")
def test_compile_detector_equals_eager_and_leaves_the_model_as_it_was():
    from runtime.aten.detection import CompiledPart, compile_detector

    for model in _tiny_detectors():
        backbone = model.backbone
        split = compile_detector(model, torch.rand(2, 3, 64, 64), cuda_graph=False, poison=True)
        assert isinstance(split.backbone, CompiledPart) and model.backbone is backbone
        assert isinstance(split.rpn.head if hasattr(model, "rpn") else split.head, CompiledPart)
        assert not isinstance(getattr(model, "rpn", model).head, CompiledPart)
        other = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
        with torch.no_grad():
            got, want = split(other), model(other)
        assert _same(got, want) and got[0]["boxes"].shape[0] > 0, (type(model).__name__, got[0]["boxes"].shape)


@pytest.mark.filterwarnings("ignore")
def test_compile_detector_refuses_what_it_cannot_split():
    from runtime.aten.detection import compile_detector
    from runtime.aten.errors import AtenExecutorError

    retina, _rcnn = _tiny_detectors()
    with pytest.raises(AtenExecutorError, match="has none: compile it whole"):
        compile_detector(torch.nn.Linear(2, 2), [torch.rand(3, 8, 8)])
    with pytest.raises(AtenExecutorError, match=r"call model.eval\(\) first"):
        compile_detector(retina.train(), [torch.rand(3, 64, 64)])
    retina.eval()
    split = compile_detector(retina, [torch.rand(3, 64, 64)], cuda_graph=False)
    with pytest.raises(MemplanError, match=r"is \(2, 3, 64, 64\).*exported with \(1, 3, 64, 64\)"):   # (another batch)
        split([torch.rand(3, 64, 64), torch.rand(3, 64, 64)])


class _Whole(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(d["boxes"] for d in self.model(list(x.unbind(0))))


@pytest.mark.filterwarnings("ignore")
def test_a_whole_detection_model_is_refused_naming_compile_detector():
    import memplan

    retina, _rcnn = _tiny_detectors()
    x = torch.rand(2, 3, 64, 64)
    for attempt in (lambda: compile(_Whole(retina), (x,), cuda_graph=False), lambda: memplan.from_torch(_Whole(retina), (x,))):
        with pytest.raises(GraphError) as info:
            attempt()
        text = str(info.value)
        assert "boxes.py" in text and "runtime.aten.detection.compile_detector(model, images)" in text, text
        assert "compile only the part of the model after that line" not in text, text


@pytest.mark.filterwarnings("ignore")
def test_sweep_paths_split_path_runs_detection_entries_only(capsys):
    from runtime.aten import sweep_paths as sp
    from runtime.aten.sweep import DetHead

    retina, _rcnn = _tiny_detectors()
    g = torch.Generator().manual_seed(0)
    x, call = (torch.rand(2, 3, 64, 64, generator=g),), (torch.rand(2, 3, 64, 64, generator=g),)
    r = sp.split_path(DetHead(retina), x, call)
    assert r is not None and r["verdict"].startswith("bitwise(boxes=") and r["verdict"] != "bitwise(boxes=0)", r
    assert sp.split_path(torch.nn.Conv2d(3, 3, 1), x, call) is None
    assert sp.main(["--paths", "split,bogus", "--only", "resnet18"]) == 2
    assert "unknown variant or path bogus" in capsys.readouterr().err


def test_the_conversion_patch_is_the_exporting_threads_alone_and_put_back():
    """Inside ``unchanged_conversions_kept`` another thread's conversion runs torch's own ``_apply`` (a no-op one
    swapped nothing, a real one converts each tensor once); after it, ``nn.Module._apply`` is torch's again."""
    import threading

    from memplan.importers.torch.conversions import _STATE, unchanged_conversions_kept

    original = torch.nn.Module._apply
    calls = []
    lin = torch.nn.Linear(2, 2)
    with unchanged_conversions_kept(torch), unchanged_conversions_kept(torch):
        assert torch.nn.Module._apply is not original
        assert lin.to(torch.float32) is lin   # (this thread: checked, nothing to do)

        def converted(t):   # (a real conversion: a new tensor; counted per call)
            calls.append(threading.get_ident())
            return t.double()

        def other():
            lin._apply(converted)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    # (weight and bias converted once each: the check, in this thread alone, would have converted the weight twice)
    assert len(calls) == 2 and lin.weight.dtype == torch.float64
    assert torch.nn.Module._apply is original and _STATE == {"depth": 0, "original": None, "threads": {}}


def test_a_conversion_under_the_patch_leaves_every_module_as_torchs_own_does():
    """Property: for a module tree (linears, a batch norm's buffers, a gradient or none) converted to a dtype it has or
    another, ``_apply`` inside ``unchanged_conversions_kept`` leaves each tensor of the tree with the dtype, values
    and identity (the very ``Parameter`` object; a buffer replaced or not) that torch's own ``_apply`` leaves."""
    need("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from memplan.importers.torch.conversions import unchanged_conversions_kept

    dtypes = st.sampled_from([torch.float32, torch.float64])

    def build(layers, dtype, grad):
        torch.manual_seed(0)
        mods = [torch.nn.Linear(3, 3) if kind == "lin" else torch.nn.BatchNorm1d(3) for kind in layers]
        m = torch.nn.Sequential(*mods).to(dtype)
        if grad:
            for p in m.parameters():
                p.grad = torch.ones_like(p)
        return m

    def state(m, before):
        ids = {id(t): k for k, t in before.items()}
        return [(k, t.dtype, t.tolist(), ids.get(id(t)), None if getattr(t, "grad", None) is None else t.grad.dtype)
                for k, t in [*m.named_parameters(), *m.named_buffers()]]

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.sampled_from(["lin", "bn"]), min_size=1, max_size=3), dtypes, dtypes, st.booleans())
    def check(layers, have, to, grad):
        ours, theirs = build(layers, have, grad), build(layers, have, grad)
        ours_before = {k: t for k, t in [*ours.named_parameters(), *ours.named_buffers()]}
        theirs_before = {k: t for k, t in [*theirs.named_parameters(), *theirs.named_buffers()]}
        with unchanged_conversions_kept(torch):
            assert ours.to(to) is ours
        assert theirs.to(to) is theirs
        assert state(ours, ours_before) == state(theirs, theirs_before)

    check()
