"""Review of the compiled call's binding to ``forward``'s signature (``runtime.aten.callform``, round 35).

Each case ran silently wrong or was refused where eager runs before the fix: a ``-0.0`` passed as a default ``0.0``
(``x / eps``: the program's inf where eager gives -inf); ``f(x, /, **kw)`` called ``(t, x=u)`` ran the program on
``u`` (kw's ``x`` merged over the positional one); a forward with its own ``delays`` parameter had it taken as the
executor's GPU delays (``delays={}`` ran the program traced with ``delays=None``; a tensor compile gave as
``delays`` was refused as no mapping). Compared with eager bitwise on 1 and 3 streams, arena poisoned.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

STREAMS = [1, 3]


def _x(k: int) -> torch.Tensor:
    return torch.randn(4, 8, generator=torch.Generator().manual_seed(k))


class _Lin(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(8, 8)


class Eps(_Lin):
    def forward(self, x, eps=0.0):
        return self.a(x) / eps


class PosOnly(_Lin):
    def forward(self, x, /, **kw):
        return self.a(x)


class Delays(_Lin):
    def forward(self, x, delays=None):
        return self.a(x) if delays is None else self.a(x) * 2 + delays


@pytest.mark.parametrize("streams", STREAMS)
def test_a_negative_zero_is_not_the_default_zero_the_program_was_traced_with(streams):
    m = Eps().eval()
    cm = compile(m, (_x(0),), streams=streams, poison=True)
    x = _x(1)
    assert torch.equal(cm(x, eps=0.0), m(x))   # (the very default, by value: still runs)
    with pytest.raises(AtenExecutorError, match=r"argument 'eps' is given, .* its default 0\.0"):
        cm(x, eps=-0.0)   # (ran the program's x / 0.0: inf where eager's x / -0.0 is -inf)


@pytest.mark.parametrize("streams", STREAMS)
def test_a_var_keyword_named_as_a_positional_only_parameter_does_not_replace_it(streams):
    m = PosOnly().eval()
    cm = compile(m, (_x(0),), streams=streams, poison=True)
    x, u = _x(1), _x(2)
    assert torch.equal(cm(x), m(x))
    with pytest.raises(AtenExecutorError, match=r"do not match the export's"):
        cm(x, x=u)   # (ran the program on u; eager's m(x, x=u) reads x, kw={'x': u} was never traced)


@pytest.mark.parametrize("streams", STREAMS)
def test_a_forward_with_its_own_delays_parameter_gets_it(streams):
    m = Delays().eval()
    x, d = _x(1), _x(3)
    cm = compile(m, (_x(0),), kwargs={"delays": _x(4)}, streams=streams, poison=True)
    want = m(x, delays=d)
    assert torch.equal(cm(x, delays=d), want)   # (was refused: 'delays must be a mapping of node -> GPU cycles')
    assert torch.equal(cm(x, d), want)
    plain = compile(m, (_x(0),), streams=streams, poison=True)
    assert torch.equal(plain(x), m(x))
    assert torch.equal(plain(x, delays=None), m(x))
    with pytest.raises(AtenExecutorError, match=r"argument 'delays' is given, but compile called forward without"):
        plain(x, delays={})   # (ran the program traced with delays=None, eager's m(x, delays={}) doubles)


def test_a_forward_without_delays_still_hands_them_to_the_executor():
    m = _Plain().eval()
    cm = compile(m, (_x(0),), streams=1)
    with pytest.raises(AtenExecutorError, match=r"delays: node 'nope' is not a node"):
        cm(_x(1), delays={"nope": 5})


class _Plain(_Lin):
    def forward(self, x):
        return self.a(x)
