"""A compiled module called in another form than compile's, bound to ``forward``'s signature as eager binds it
(``runtime.aten.callform``).

Before: ``compile(m, (x,))`` then ``cm(x=x)`` or ``cm(x, mask=None)`` was refused ("call arguments ... do not match
the export's"), though eager's ``m(x=x)`` runs; aten35's note. Now the call is rearranged into compile's form and
runs bitwise as eager on 1 and 3 streams with the arena poisoned; a parameter compile left to its default may be
given only that default (the program was traced with it), anything else is refused naming it.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

STREAMS = [1, 3]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x, mask=None, scale=1.0):
        y = torch.relu(self.a(x)) + torch.tanh(self.b(x)) * scale
        return y if mask is None else y * mask


def _x(k: int) -> torch.Tensor:
    return torch.randn(4, 8, generator=torch.Generator().manual_seed(k))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize("streams", STREAMS)
def test_a_positional_compile_takes_keywords_and_the_defaults_it_ran_with(net, streams):
    cm = compile(net, (_x(0),), streams=streams, poison=True)
    x = _x(1)
    want = net(x)
    for call in (lambda: cm(x=x), lambda: cm(x, mask=None), lambda: cm(x, None, 1.0), lambda: cm(x=x, scale=1.0)):
        assert torch.equal(call(), want)


@pytest.mark.parametrize("streams", STREAMS)
def test_a_keyword_compile_takes_the_same_arguments_positionally(net, streams):
    m = _x(2)
    cm = compile(net, (_x(0),), kwargs={"mask": m}, streams=streams, poison=True)
    x, mask = _x(3), _x(4)
    want = net(x, mask=mask)
    assert torch.equal(cm(x, mask), want)
    assert torch.equal(cm(mask=mask, x=x), want)


def test_a_parameter_compile_left_to_its_default_is_refused_with_another_value(net):
    cm = compile(net, (_x(0),), streams=1)
    with pytest.raises(AtenExecutorError, match=r"argument 'mask' is given, but compile called forward without it"):
        cm(_x(1), mask=_x(2))
    with pytest.raises(AtenExecutorError, match=r"argument 'scale' is given, .* its default 1\.0"):
        cm(_x(1), scale=2.0)
    with pytest.raises(AtenExecutorError, match=r"argument 'scale' is given"):
        cm(_x(1), scale=1)   # (an int where the export ran with the float 1.0: another program)


def test_a_call_that_does_not_bind_is_left_to_the_structure_check(net):
    cm = compile(net, (_x(0),), streams=1)
    with pytest.raises(AtenExecutorError, match=r"do not match the export's"):
        cm(_x(1), nope=_x(2))


class Star(nn.Module):
    def forward(self, *xs):
        return sum(xs)


def test_a_variadic_forward_keeps_compiles_form_only():
    cm = compile(Star(), (_x(0), _x(1)), streams=1)
    assert cm.form is None
    assert torch.equal(cm(_x(2), _x(3)), _x(2) + _x(3))


class Kw(nn.Module):
    """A forward with ``**kwargs``, as transformers' are."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x, bias=None, **kwargs):
        y = self.a(x)
        if bias is not None:
            y = y + bias
        return y * kwargs["gain"] if "gain" in kwargs else y


@pytest.mark.parametrize("streams", STREAMS)
def test_a_forward_with_var_keywords_binds_its_named_and_extra_keywords(streams):
    torch.manual_seed(0)
    m = Kw().eval()
    cm = compile(m, (_x(0),), kwargs={"gain": _x(5)}, streams=streams, poison=True)
    x, g = _x(6), _x(7)
    want = m(x, gain=g)
    assert torch.equal(cm(x=x, gain=g), want)
    assert torch.equal(cm(x, None, gain=g), want)
    with pytest.raises(AtenExecutorError, match=r"argument 'other' is given, .* exported without a default"):
        cm(x, gain=g, other=g)
    with pytest.raises(AtenExecutorError, match=r"argument 'bias' is given"):
        cm(x, bias=g, gain=g)
    with pytest.raises(AtenExecutorError, match=r"do not match the export's"):
        cm(x=x)   # (gain missing: no default to take, the structure check names what differs)


def test_a_tiny_transformers_model_compiled_by_keyword_runs_called_positionally():
    transformers = need("transformers")
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    torch.manual_seed(0)
    m = transformers.LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 64, (1, 8), generator=torch.Generator().manual_seed(1))
    cm = compile(m, (), kwargs={"input_ids": ids, "use_cache": False}, streams=3, poison=True)
    want = m(input_ids=ids, use_cache=False).logits
    assert torch.equal(cm(ids, use_cache=False).logits, want)
