"""Round 70 (models70): the 17 transformers models the sweep refuses, read again, and the refusals made right.

- OpenAI's privacy filter (a mixture of experts whose class transformers decorates with
  ``use_experts_implementation``) defaults to the "eager" experts implementation, a loop over the experts the tokens
  picked: a data-dependent trip count, refused at export with the generic advice (compute the value before the
  call...), which no caller of a library model can follow. The same class runs "grouped_mm" (every expert over
  fixed shapes), which export and the executor take, bitwise. The refusal now names the experts class and the
  switch (``model.set_experts_implementation("grouped_mm")``).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402
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
