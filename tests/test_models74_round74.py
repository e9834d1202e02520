"""Round 74 (models74): real PyTorch models run through ``runtime.aten`` in ways the sweep does not (an eager call
between compiled ones, weights changed between calls), and what broke.

A transformers classifier compiled *with* labels reads ``config.problem_type`` (None) and its ``forward`` sets it once
for good; after one eager call (which sets it, as every first call does) each compiled call was refused ("...
problem_type is 'single_label_classification' now, None at compile"), though exporting again from the value now gives
the very program. Now the guard takes such a settings state where that export proves it (``_prove_settings``), and a
value that makes another program is still refused.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Options:
    def __init__(self):
        self.scale = 2.0
        self.label_kind = None   # set by forward at its first call with labels (transformers' config.problem_type)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.config = Options()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, labels):
        y = self.lin(x) * self.config.scale
        if self.config.label_kind is None:
            self.config.label_kind = "square"   # BertForSequenceClassification: config.problem_type = ...
        if self.config.label_kind == "square":
            return y, (y - labels).square().mean()
        return y, (y - labels).abs().mean()


def _eager(m, *args):
    with torch.no_grad():
        return m(*args)


def test_a_setting_forward_sets_once_for_good_is_taken_after_an_eager_call():
    m = Classifier().eval()
    x, lab = torch.randn(2, 4), torch.randn(2, 4)
    step = compile(m, (x, lab), streams=1, poison=True)
    assert m.config.label_kind is None   # (the export's change put back)
    want = _eager(m, x, lab)             # eager's first call sets it
    assert m.config.label_kind == "square"
    got = step(x, lab)                   # refused before: "Classifier.config.label_kind is 'square' now, None ..."
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    got = step(x * 2, lab)
    assert all(torch.equal(a, b) for a, b in zip(got, _eager(m, x * 2, lab)))


def test_a_setting_that_makes_another_program_is_still_refused_once_per_state():
    m = Classifier().eval()
    x, lab = torch.randn(2, 4), torch.randn(2, 4)
    step = compile(m, (x, lab), streams=3, poison=True)
    _eager(m, x, lab)
    step(x, lab)
    m.config.label_kind = "abs"   # another loss: the program holds the square one
    with pytest.raises(AtenExecutorError, match=r"Classifier\.config\.label_kind is 'abs' now, 'square' at compile"):
        step(x, lab)
    assert step.settings_refuted is not None
    exports = []
    again = step._export_again
    step._export_again = lambda *a, **k: exports.append(1) or again(*a, **k)
    with pytest.raises(AtenExecutorError, match=r"label_kind is 'abs' now"):
        step(x, lab)
    assert exports == []   # (the refuted state is answered without an export)
    m.config.label_kind = "square"
    assert all(torch.equal(a, b) for a, b in zip(step(x, lab), _eager(m, x, lab)))
    m.config.scale = 3.0   # baked into the program as a number
    with pytest.raises(AtenExecutorError, match=r"Classifier\.config\.scale is 3\.0 now, 2\.0 at compile"):
        step(x, lab)


def test_a_transformers_classifier_compiled_with_labels_runs_after_an_eager_call():
    transformers = need("transformers")
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    m = transformers.BertForSequenceClassification(cfg).eval()
    ids, labels = torch.randint(0, 64, (2, 6)), torch.tensor([0, 2])
    step = compile(m, (), kwargs={"input_ids": ids, "labels": labels}, streams=3, poison=True)
    assert m.config.problem_type is None
    with torch.no_grad():
        want = m(input_ids=ids, labels=labels)
    assert m.config.problem_type == "single_label_classification"
    got = step(input_ids=ids, labels=labels)
    assert torch.equal(got.loss, want.loss) and torch.equal(got.logits, want.logits)
