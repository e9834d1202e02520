"""Round 68 (models68): the CPU sweep over the 65 models rounds 66-67 did not reach, a sample on torch 2.11, and
what they found.

Refusals made to say what to do:
- Nystromformer (landmark attention, fewer landmarks than tokens) was refused with torch's "Attempting to broadcast
  a dimension of length 8 at -2!" and its line, ``attention_scores = attention_scores + attention_mask``, though
  eager runs the same inputs: transformers drops an all-ones mask in eager and builds it in full under torch.export,
  and the model cannot add a (tokens, tokens) mask to its (landmarks, tokens) scores. The refusal now names the mask
  and its shape, says eager's path differs, and what part to compile; a shape mismatch with no mask in the line
  says that eager's path may differ and what to compile.
- torch 2.11 cannot export ``quantile`` (its kernel calls ``aten.equal`` while traced; torch 2.14 exports it): the
  sweep's ``nn_misc_ops`` on 2.11 was refused as "aten.equal.default: its output depends on its input's values"
  and nothing more. That refusal (a model's own ``torch.equal`` too, on every torch) now names the line and the way
  out; 2.11's quantile is simulated here by a ``Tensor.quantile`` that calls ``torch.equal`` first.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402


def full_mask(q, k):
    """transformers' mask functions in small: an all-ones mask is dropped in eager, built in full under export."""
    return torch.zeros(q.shape[0], q.shape[1], k.shape[1]) if torch.compiler.is_compiling() else None


class LandmarkAttention(nn.Module):
    """Nystromformer's landmark attention in small: (landmarks, tokens) scores plus the (tokens, tokens) mask."""

    def forward(self, q, k, attention_mask=None):
        landmarks = q.reshape(q.shape[0], 2, q.shape[1] // 2, q.shape[2]).mean(dim=2)
        scores = landmarks @ k.transpose(-1, -2)
        if attention_mask is not None:
            scores = scores + attention_mask
        return scores.softmax(-1)


class LandmarkScores(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = LandmarkAttention()

    def forward(self, q, k):
        return self.attention(q, k, full_mask(q, k))


class Mismatch(nn.Module):
    """Two tensors whose shapes do not broadcast, and no mask among them."""

    def forward(self, x, y):
        return x + y[:, :2]


@pytest.mark.filterwarnings("ignore")
def test_a_mask_that_does_not_fit_is_named_with_the_part_to_compile():
    """Before: torch's "Attempting to broadcast ..." and the line, nothing of the mask eager never builds."""
    q, k = torch.randn(1, 8, 4), torch.randn(1, 8, 4)
    LandmarkScores()(q, k)   # (eager runs these inputs)
    with pytest.raises(GraphError) as info:
        compile(LandmarkScores(), (q, k), cuda_graph=False)
    text = str(info.value)
    assert "scores = scores + attention_mask" in text, text
    assert "the mask there (attention_mask, shape [1, 8, 8])" in text, text
    assert "compile only the part of the model after the mask is made" in text and "\n" not in text, text


@pytest.mark.filterwarnings("ignore")
def test_a_shape_mismatch_without_a_mask_says_eagers_path_may_differ():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    with pytest.raises(GraphError) as info:
        compile(Mismatch(), (x, y), cuda_graph=False)
    text = str(info.value)
    assert "x + y[:, :2]" in text and "the mask there" not in text, text
    assert "shapes that do not broadcast for these inputs under torch.export" in text, text


@pytest.mark.filterwarnings("ignore")
def test_nystromformer_refusal_names_its_mask_and_its_encoder_compiles_bitwise():
    """The sweep's Nystromformer (4 landmarks, 8 tokens): refused with the mask's shape and the way out, and the way
    out (its encoder on the embeddings' output, without a mask, as eager runs an all-ones mask) is eager's bitwise."""
    tf = need("transformers")
    from runtime.aten.sweep_kit import Out

    cfg = tf.NystromformerConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, num_landmarks=4, segment_means_seq_len=8,
                                 max_position_embeddings=64)
    torch.manual_seed(0)
    model = tf.NystromformerModel(cfg).eval()
    ids = torch.randint(3, 64, (1, 8))
    with pytest.raises(GraphError) as info:
        compile(Out(model, ("input_ids",), ("last_hidden_state",)), (ids,), cuda_graph=False)
    text = str(info.value)
    assert "attention_scores + attention_mask" in text, text
    assert "(attention_mask, shape [1, 1, 8, 8])" in text and "model.encoder on the embeddings' output" in text, text

    class Encoder(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, hidden):
            return self.m.encoder(hidden).last_hidden_state

    with torch.no_grad():
        c = compile(Encoder(model), (model.embeddings(input_ids=ids),), cuda_graph=False)
        other = torch.randint(3, 64, (1, 8))
        assert torch.equal(c(model.embeddings(input_ids=other)), model(input_ids=other).last_hidden_state)


class Equal(nn.Module):
    def forward(self, x):
        return x * 2 if torch.equal(x, x.flip(0)) else x


class Quantile(nn.Module):
    def forward(self, x):
        return x.quantile(0.3, dim=-1)


@pytest.mark.filterwarnings("ignore")
def test_torch_equal_in_forward_is_refused_with_its_line_and_the_way_out():
    """Before: "aten.equal.default: its output depends on its input's values (...) (DataDependentOutputException)"."""
    with pytest.raises(GraphError) as info:
        compile(Equal(), (torch.randn(3, 5),), cuda_graph=False)
    text = str(info.value)
    assert "(DataDependentOutputException) (at test_models_round68.py:" in text, text
    assert "torch.equal(x, x.flip(0))" in text and "compare on tensors ((a == b).all()" in text, text


@pytest.mark.filterwarnings("ignore")
def test_torch_211s_quantile_is_refused_with_a_way_out(monkeypatch):
    """torch 2.11's quantile, simulated: it compares tensors with ``torch.equal`` before the quantile."""
    x = torch.randn(2, 4, 7)
    real = torch.Tensor.quantile
    try:
        assert torch.equal(compile(Quantile(), (x,), cuda_graph=False)(x), Quantile()(x))   # (this torch exports it)
    except GraphError as exc:   # (torch 2.11 itself: the refusal checked below, unsimulated)
        assert "aten.equal.default" in str(exc), exc

    def quantile_211(self, *args, **kwargs):
        torch.equal(self, self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "quantile", quantile_211)
    with pytest.raises(GraphError) as info:
        compile(Quantile(), (x,), cuda_graph=False)
    text = str(info.value)
    assert "aten.equal.default" in text and "'s quantile compares tensors with torch.equal" in text, text
    assert "torch.sort and an interpolation between the two nearest ranks" in text and "\n" not in text, text
