"""Round 66 (models66): the CPU sweep of real models on round 65's tree, and what it found.

Refusal made clearer:
- torch.export's refusal of a Python value made of a tensor's values ("Could not extract specialized integer from
  data-dependent expression u1", Qwen3-ASR's encoder; "Could not guard on data-dependent expression", a branch on
  ``mask.any()``) named the model's line but said nothing of what a caller can do: it now ends with the ways out.
- torch.export's "_apply(): Couldn't swap Linear.weight" (NLLB-MoE's router casting its classifier in ``forward``)
  said neither what the model did nor what to do: it now names the conversion and the way out.
"""

from __future__ import annotations

import re

import pytest
from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402

#: the end of every such refusal now (``memplan.importers.torch.common._data_dependent_advice``)
ADVICE = ("forward makes a Python number or branch of a tensor's values there", "pass it in as an argument",
          "torch.where", "compile only the part of the model after that line")


class CountsFromValues(torch.nn.Module):
    """A window count read from the mask's values, as Qwen3-ASR's ``get_audio_cu_seqlens`` does."""

    def forward(self, x, mask):
        n = int(mask.sum())
        chunks = [2] * (n // 2)
        return x * len(chunks)


class BranchOnValues(torch.nn.Module):
    """A branch on a tensor's values, as FSMT's ``if not padding_mask.any():``."""

    def forward(self, x):
        if not (x > 0).any():
            return x - 1
        return x + 1


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("make, args, first", [
    (CountsFromValues, lambda: (torch.randn(3), torch.ones(4, dtype=torch.long)),
     "Could not extract specialized integer from data-dependent expression"),
    (BranchOnValues, lambda: (torch.randn(3),), "Could not guard on data-dependent expression"),
])
def test_a_value_made_of_a_tensors_values_is_refused_naming_the_line_and_what_to_do(make, args, first):
    """Before: torch's first line and the model's line, and no word of what to do."""
    with pytest.raises(GraphError) as info:
        compile(make(), args(), cuda_graph=False)
    text = str(info.value)
    assert text.startswith(f"torch.export failed for {make.__name__}: {first}"), text
    assert re.search(r"\(at test_models_round66\.py:\d+ in forward: `", text), text
    assert all(part in text for part in ADVICE), text
    assert "\n" not in text


@pytest.mark.filterwarnings("ignore")
def test_qwen3_asr_encoders_refusal_says_what_to_do():
    """The sweep's Qwen3-ASR encoder (a tiny config from the type's default one, its feature mask as an input): torch
    refuses its window counts from the mask's values; the refusal names transformers' line and the ways out."""
    transformers = need("transformers")
    from runtime.aten import sweep
    from runtime.aten.sweep_kit import Missing

    case = next(c for c in sweep.CASES if c.name == "qwen3_asr_encoder")
    try:
        model = case.make().eval()
    except Missing as exc:
        pytest.skip(f"transformers {transformers.__version__}: {exc}")
    args = case.inputs(torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32)
    with pytest.raises(GraphError) as info:
        compile(model, args, cuda_graph=False)
    text = str(info.value)
    assert "data-dependent expression" in text and "(at modeling_qwen3_asr.py:" in text, text
    assert all(part in text for part in ADVICE), text


class CastsInForward(torch.nn.Module):
    """A submodule converted at every call, to another dtype (round 70: one to the dtype it has, as NLLB-MoE's
    router's ``_cast_classifier``, is taken as the no-op it is: ``tests/test_models_round70.py``)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        self.lin = self.lin.to(torch.float64)
        return self.lin(x.double())


@pytest.mark.filterwarnings("ignore")
def test_a_conversion_of_parameters_in_forward_is_refused_naming_it_and_what_to_do():
    with pytest.raises(GraphError) as info:
        compile(CastsInForward(), (torch.randn(2, 4),), cuda_graph=False)
    text = str(info.value)
    assert text.startswith("torch.export failed for CastsInForward: _apply(): Couldn't swap Linear.weight"), text
    assert re.search(r"\(at test_models_round66\.py:\d+ in forward: `self\.lin = self\.lin\.to\(torch\.float64\)`\)", text), text
    assert "forward converts a submodule's parameters during the call" in text, text
    assert "convert the model before compile and take the conversion out of forward" in text, text
    assert "\n" not in text
