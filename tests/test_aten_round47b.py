"""Round 47b: the ATen executor against eager PyTorch on CPU with poison=True (coverage, no bug found)."""
from tests.needs import need

torch = need("torch")
import pytest  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class _Two(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.lin(x)) * 2, self.lin(x).transpose(0, 1)


def test_outputs_survive_a_second_call_and_other_shapes_are_refused_naming_the_input() -> None:
    torch.manual_seed(0)
    m = _Two().eval()
    x1, x2 = torch.randn(3, 8), torch.randn(3, 8)
    c = compile(m, (x1,), poison=True)
    first = c(x1)
    kept = [t.clone() for t in first]
    c(x2)
    for a, b, e in zip(first, kept, m(x1)):
        assert torch.equal(a, b)   # the first call's outputs are not arena memory reused by the second
        assert torch.allclose(a, e)
    with pytest.raises(AtenExecutorError, match="'x'"):
        c(torch.randn(5, 8))


def test_zero_size_batch() -> None:
    m = _Two().eval()
    c = compile(m, (torch.randn(0, 8),), poison=True)
    assert [tuple(t.shape) for t in c(torch.randn(0, 8))] == [(0, 8), (8, 0)]


class _InPlace(nn.Module):
    def forward(self, x):
        x.add_(1)
        return x * 2


def test_in_place_on_input_matches_eager() -> None:
    x = torch.randn(4)
    xe = x.clone()
    expected = _InPlace()(xe)
    c = compile(_InPlace(), (x.clone(),), poison=True)
    xa = x.clone()
    assert torch.allclose(c(xa), expected)
    assert torch.allclose(xa, xe)


def test_channels_last_conv_and_sdpa_with_mask() -> None:
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    xc = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    assert torch.allclose(compile(conv, (xc,), poison=True)(xc), conv(xc), atol=1e-5)

    class Attn(nn.Module):
        def forward(self, q, k, v, m):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)

    q, k, v = (torch.randn(2, 2, 5, 4) for _ in range(3))
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    c = compile(Attn(), (q, k, v, mask), poison=True)
    assert torch.allclose(c(q, k, v, mask), Attn()(q, k, v, mask), atol=1e-5)


def test_tiny_llama_use_cache_with_left_padded_mask() -> None:
    need("transformers")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    model = LlamaForCausalLM(cfg).eval()

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, ids, mask):
            return self.m(input_ids=ids, attention_mask=mask, use_cache=True).logits

    ids = torch.randint(0, 64, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[0, :2] = 0
    w = Logits()
    c = compile(w, (ids, mask), poison=True)
    with torch.no_grad():
        assert torch.allclose(c(ids, mask), w(ids, mask), atol=1e-4)
