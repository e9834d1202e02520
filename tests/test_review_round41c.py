"""Review of round 41 (aten41's Python-state watch, export41): real ``forward`` patterns that change Python state
once for good, harmlessly, were refused (CPU, ``cuda_graph=False``).

Bug fixed (each test marked "failed before" did): ``sets.check_python_state`` refused every plain change of a
global / closure / class attribute, so a warn-once set (``if msg not in _WARNED: _WARNED.add(msg)``), a first-call
logging flag (``global _LOGGED; _LOGGED = True``) and a kernel imported lazily into a global (``global _FN; if _FN is
None: _FN = load()``) lost a working compile. Now such a change is taken where, exported again from the values the
export's call left, ``forward`` changes nothing more and gives the very program; the state stays as at compile.
"""

from __future__ import annotations

import warnings

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

_WARNED: set = set()
_FN = None
_LOGGED = False
_FIRST = True
_CALLS = 0


def _warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, stacklevel=2)


def _load():
    global _FN
    if _FN is None:
        _FN = torch.nn.functional.gelu
    return _FN


class WarnsOnce(nn.Module):
    def forward(self, x):
        _warn_once("this path is deprecated")
        return x * 2


class LazyKernel(nn.Module):
    def forward(self, x):
        return _load()(x) + 1


class LogsOnce(nn.Module):
    def forward(self, x):
        global _LOGGED
        if not _LOGGED:
            _LOGGED = True
        return x - 3


class FirstCallDiffers(nn.Module):
    def forward(self, x):
        global _FIRST
        if _FIRST:
            _FIRST = False
            return x
        return x * 2


class Counts(nn.Module):
    def forward(self, x):
        global _CALLS
        _CALLS += 1
        return x * _CALLS


@pytest.fixture(autouse=True)
def fresh_globals():
    """Each test starts from the module's globals as imported (an eager call of one test changes them)."""
    global _FN, _LOGGED, _FIRST, _CALLS
    _WARNED.clear()
    _FN, _LOGGED, _FIRST, _CALLS = None, False, True, 0


@pytest.mark.parametrize("make", [WarnsOnce, LazyKernel, LogsOnce])
def test_a_change_made_once_for_good_compiles_bitwise(make):
    """Failed before: refused ("forward changes the global _WARNED ... in place", "_FN (None at compile, <built-in
    function gelu> ...)", "_LOGGED (False at compile, True ...)")."""
    x = torch.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = compile(make(), (x,), cuda_graph=False)
        assert (_WARNED, _FN, _LOGGED) == (set(), None, False)   # as at compile
        assert torch.equal(cm(x), make()(x))
        assert torch.equal(cm(x), make()(x))


@pytest.mark.parametrize("make, named", [
    (FirstCallDiffers, r"the global _FIRST .*\(True at compile, False after"),
    (Counts, r"the global _CALLS .*\(0 at compile, 1 after"),
])
def test_a_change_that_leads_elsewhere_stays_refused(make, named):
    """A first-call flag the program follows and a counter: refused as before, the global put back."""
    with pytest.raises(AtenExecutorError, match=named):
        compile(make(), (torch.randn(3),), cuda_graph=False)
    assert (_FIRST, _CALLS) == (True, 0)
