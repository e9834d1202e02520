"""Round 78 (hf78): real ``transformers`` families, tiny, on a padded batch through both torch paths.

Why: the sweep runs these families' ids alone through ``runtime.aten.compile`` (``runtime.aten.sweep``), and the
importer met only round 71's list of them (``sweep_paths``). Here each is given a padded ``attention_mask`` (the
serving form: a row padded at the front, one at the back, so every mask builder's padding and causal/sliding/ALiBi
paths run), then

* ``from_torch`` -> ``plan`` on 1 and 3 streams -> ``verify``, and every planned tensor is checked against the
  bytes the exported program's own value spans when run node by node (``_uncovered``: a plan whose sizes are
  smaller than what an op writes, or a view placed elsewhere in its root than the op puts it, is silently wrong);
* ``compile`` on 3 streams (NaN-poisoned arena; the sweep runs one stream), called on the example and on another
  mask, equal to eager bit for bit.

(A CPU probe of the round, not kept as tests for their cost: the same families and Qwen3-MoE, GraniteMoE,
Mixtral, Jamba with router logits and losses, ConvNeXt, Swin, SegFormer, DETR, RT-DETR, Deformable DETR, D-FINE,
Mask2Former, Mamba2, RWKV (decomposed) and torchvision's MobileNetV3, EfficientNet, RegNet, ShuffleNet, DenseNet,
DeepLabV3, Swin-T, ViT-B/16 in float32, bfloat16, train mode and channels-last: no uncovered size, all bitwise.)
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

import memplan  # noqa: E402

_K = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
          max_position_embeddings=64)

#: model type -> (config, causal LM / masked LM class name, config fields beyond ``_K``'s)
FAMILIES = {
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(_K, num_key_value_heads=2, head_dim=8)),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM",
                    dict(_K, num_key_value_heads=2, head_dim=8, sliding_window=3, pad_token_id=0)),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", dict(_K, num_key_value_heads=2, pad_token_id=0)),
    "cohere": ("CohereConfig", "CohereForCausalLM", dict(_K, num_key_value_heads=2, pad_token_id=0)),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", dict(_K, num_key_value_heads=2)),
    "granite": ("GraniteConfig", "GraniteForCausalLM", dict(_K, num_key_value_heads=2)),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(_K, num_key_value_heads=2, pad_token_id=0)),
    "falcon_alibi": ("FalconConfig", "FalconForCausalLM",
                     dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, alibi=True)),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(_K)),
    "bloom": ("BloomConfig", "BloomForCausalLM", dict(vocab_size=64, hidden_size=32, n_layer=2, n_head=4)),
    "mpt": ("MptConfig", "MptForCausalLM", dict(vocab_size=64, d_model=32, n_layers=2, n_heads=4, max_seq_len=64)),
    "deberta_v2": ("DebertaV2Config", "DebertaV2ForMaskedLM",
                   dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, relative_attention=True, pos_att_type=["p2c", "c2p"],
                        max_relative_positions=16)),
    "roformer": ("RoFormerConfig", "RoFormerForMaskedLM",
                 dict(vocab_size=64, embedding_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64)),
    "electra": ("ElectraConfig", "ElectraForMaskedLM",
                dict(vocab_size=64, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64)),
}


class Masked(torch.nn.Module):
    """``(ids, attention_mask) -> logits``: the model called as a server calls it on a padded batch."""

    def __init__(self, m) -> None:
        super().__init__()
        self.m = m

    def forward(self, ids, mask):
        return self.m(input_ids=ids, attention_mask=mask).logits


def _model(name: str) -> Masked:
    cfg_cls, model_cls, fields = FAMILIES[name]
    torch.manual_seed(0)
    cfg = getattr(transformers, cfg_cls)(**fields)
    return Masked(getattr(transformers, model_cls)(cfg).eval())


def _batch(seed: int, pads: tuple) -> tuple:
    """Three rows of 7 ids; ``pads``: (row, start, stop) of mask zeros (front and back padding)."""
    ids = torch.randint(1, 64, (3, 7), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones(3, 7, dtype=torch.long)
    for row, start, stop in pads:
        mask[row, start:stop] = 0
    return ids, mask


def _extent(t) -> int:
    """The bytes a strided tensor spans from its first element: what its planned bytes must hold."""
    if t.numel() == 0:
        return 0
    return t.element_size() * (1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride())))


def _uncovered(graph, ep, x: tuple) -> tuple:
    """(tensors checked, views checked, faults): the exported program run node by node on ``x``; each planned
    tensor named after a node must hold its value's extent, and a view must lie in its root where the op put it.

    An oracle independent of the importer's size rules: the real values, not their fake tensors' records."""
    tensors = {t.id: t for t in graph.tensors}
    values: dict = {}

    class Recording(torch.fx.Interpreter):
        def run_node(self, n):
            values[n.name] = out = super().run_node(n)
            return out

    with torch.no_grad():
        Recording(ep.module()).run(*x)
    checked = views = 0
    faults = []
    for name, v in values.items():
        t = tensors.get(name)
        if t is None or t.kind == "weight" or not isinstance(v, torch.Tensor) or v.numel() == 0:
            continue
        checked += 1
        if t.view_of is None:
            if _extent(v) > t.size:
                faults.append((name, "planned", t.size, "spans", _extent(v)))
            continue
        offset, root = t.view_offset, tensors[t.view_of]
        while root.view_of is not None:
            offset, root = offset + root.view_offset, tensors[root.view_of]
        base = values.get(root.id)
        if isinstance(base, torch.Tensor) and base.numel():
            views += 1
            real = v.data_ptr() - base.data_ptr()
            if real != offset or offset + _extent(v) > root.size:
                faults.append((name, "view at", offset, "really at", real, "root", root.id, root.size))
    return checked, views, faults


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_padded_batch_imports_plans_covering_sizes_and_runs_bitwise(name: str) -> None:
    m = _model(name)
    x = _batch(1, ((1, 0, 3), (2, 5, 7)))
    other = _batch(2, ((0, 0, 2),))
    ep = torch.export.export(m, x)
    graph = memplan.from_torch(ep, x)
    for streams in (1, 3):
        memplan.verify(graph, memplan.plan(graph, streams=streams))
    checked, views, faults = _uncovered(graph, ep, x)
    assert checked > 20 and views > 0 and not faults, (checked, views, faults[:5])

    from runtime.aten import compile as aten_compile

    c = aten_compile(m, x, streams=3, cuda_graph=False, poison=True, device=torch.device("cpu"))
    for call in (x, other):
        with torch.no_grad():
            got, want = c(*call), m(*call)
        assert torch.equal(got, want), (name, float((got - want).abs().max()))
