"""Round 71 (models71): mixtures of experts whose experts loop is data dependent, the CPU refused list read again,
and transformers 5.25's model types no sweep list named (``runtime.aten.sweep_models71``).

- A mixture of experts' loop over the experts the tokens picked (NLLB-MoE's, Switch Transformers', DBRX's experts;
  transformers 5.25 has no other implementation for them: ``set_experts_implementation`` raises "does not support
  setting experts implementation") was refused with advice to run every expert on every row and weight the
  results, said as if it were the same model: it is not, in floats (a product over every row need not equal one
  over the rows picked bit for bit; a zero weight times an expert's inf is NaN), so no importer-side rewrite is
  sound. The refusal now names the experts class, says transformers offers no other implementation (only for a
  transformers class not decorated with ``use_experts_implementation``), puts compiling the parts apart first
  and says that the dense way rounds differently; the executor's data-dependent size refusal (JetMoE's split by
  expert counts) says so too.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402


def _tiny_dbrx():
    """The sweep's DBRX, one layer (enough to reach its experts)."""
    need("transformers")
    from runtime.aten.sweep_models71 import DBRX, causal71

    torch.manual_seed(0)
    return causal71("dbrx", **{**DBRX, "n_layers": 1})()


@pytest.mark.filterwarnings("ignore")
def test_dbrx_experts_loop_refusal_names_the_class_and_says_no_other_implementation():
    model = _tiny_dbrx()
    with pytest.raises(ValueError, match="does not support setting experts implementation"):
        model.m.set_experts_implementation("grouped_mm")
    with pytest.raises(GraphError) as info:
        compile(model, (torch.randint(3, 128, (1, 6)),), cuda_graph=False)
    text = str(info.value)
    assert "for expert_idx in expert_hit" in text and "(DbrxExperts)" in text, text
    assert "transformers offers none: model.set_experts_implementation refuses it" in text, text
    assert "compile the parts before and after the experts apart" in text, text
    assert "which rounds differently from the loop" in text, text


class _Experts(torch.nn.Module):
    """A user's mixture of experts, top-1, looping over the experts hit (as NLLB-MoE's)."""

    def __init__(self):
        super().__init__()
        self.router = torch.nn.Linear(8, 3)
        self.experts = torch.nn.ModuleList(torch.nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        pick = self.router(x).argmax(-1)
        out = torch.zeros_like(x)
        for expert_idx in pick.unique():
            rows = (pick == expert_idx).nonzero().squeeze(-1)
            out.index_add_(0, rows, self.experts[expert_idx](x[rows]))
        return out


def test_a_users_experts_loop_is_named_without_claiming_transformers():
    torch.manual_seed(0)
    with pytest.raises(GraphError) as info:
        compile(_Experts().eval(), (torch.randn(5, 8),), cuda_graph=False)
    text = str(info.value)
    assert "mixture of experts' loop over the experts the tokens picked (_Experts)" in text, text
    assert "set_experts_implementation" not in text and "which rounds differently from the loop" in text, text


class _SplitByCounts(torch.nn.Module):
    """JetMoE's experts: rows sorted by expert, split by the counts of each (``.tolist()``)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3, 8, 8))

    def forward(self, x, pick):
        counts = torch.nn.functional.one_hot(pick, 3).sum(0).tolist()
        _, order = pick.sort(0)
        parts = x[order].split(counts, dim=0)
        return torch.cat([torch.nn.functional.linear(p, self.weight[i]) for i, p in enumerate(parts)])


def test_data_dependent_size_refusal_says_the_dense_way_rounds_differently():
    torch.manual_seed(0)
    with pytest.raises(GraphError) as info:
        compile(_SplitByCounts().eval(), (torch.randn(6, 8), torch.tensor([0, 2, 1, 0, 2, 2])), cuda_graph=False)
    text = str(info.value)
    assert "data-dependent size" in text and "run every expert on every row and weight the results" in text, text
    assert "which may round differently from the rows selected" in text, text


def test_sweep_names_are_unique_and_round_71s_are_the_transformers_family():
    """Every sweep name once (``--only`` picks by name: a second entry of a name ran unasked and its results
    replaced the first's in ``sweep_paths``' --out), and round 71's list is ``sweep_paths``' "transformers"."""
    from collections import Counter

    from runtime.aten import sweep_paths as sp
    from runtime.aten.sweep_models71 import MODELS71

    twice = [name for name, n in Counter(c.name for c in sp.CASES).items() if n > 1]
    assert twice == [], twice
    fams = {c.name: sp.family(c) for c in sp.CASES}
    assert {fams[name] for name, _, _ in MODELS71} == {"transformers"}
    assert fams["llama"] == "" and fams["timm_vit_tiny"] == "timm" and fams["resnet18"] == "torchvision"


@pytest.mark.filterwarnings("ignore")
def test_tiny71_derives_a_backbones_stage_names_again():
    """A ViT backbone's default config names its last stage "stage12"; made 2 layers deep it was refused by its own
    config ("out_features must be a subset of stage_names"): ``tiny71`` drops the derived names."""
    need("transformers")
    from runtime.aten.sweep_models71 import MODELS71, PIX, tiny71

    make, inputs = {name: (m, x) for name, m, x in MODELS71}["tipsv2_vision"]
    model = make()
    assert model.m.config.num_hidden_layers == 2 and model.m.config.out_features == ["stage2"]
    given = tiny71("tipsv2_vision_model", "Tipsv2VisionModel", names=PIX, image_size=32, patch_size=8,
                   out_features=["stage1"])()   # (one the caller gives is kept)
    assert given.m.config.out_features == ["stage1"]
    with torch.no_grad():
        assert model(*inputs(torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32)).shape[1] == 18
