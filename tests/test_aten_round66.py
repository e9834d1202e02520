"""Round 66: the remaining holes in the watch of the values ``forward`` (and what it calls) reads (CPU).

A compiled call runs no Python: a value changed after compile must leave the program right, or be refused with an
``AtenExecutorError`` saying what changed (at the call) or what compile cannot watch (at compile), never run the
export's value silently. Each test marked "failed before" failed on main before this round (its symptom beside it).
"""

from __future__ import annotations

import math
import re

import pytest
from needs import need

torch = need("torch")

from aten_changes import compile_cpu as _compile  # noqa: E402
from aten_changes import seeded_linear as _linear  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten.errors import AtenExecutorError  # noqa: E402

NAN = float("nan")


def _runs_as_eager_or_refused(m, change, x=None) -> str:
    """Compile ``m``, check two calls against eager, ``change()``, and compare the next call with eager's:
    "ran" (equal) or "refused" (our error); a silently different result fails."""
    x = torch.ones(3) if x is None else x
    step = _compile(m, x)
    for _ in range(2):
        assert torch.equal(step(x), m(x))
    change()
    want = m(x)
    try:
        got = step(x)
    except AtenExecutorError:
        return "refused"
    assert torch.equal(got, want), f"compiled {got.tolist()} where eager gave {want.tolist()}"
    return "ran"


class _Cfg:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


# ---- 4b. a NaN-sign change names each sign --------------------------------------------------------------------------

class _Signs(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.lin, self.cfg = _linear(), cfg

    def forward(self, x):
        return self.lin(x) * (1 if math.copysign(1, self.cfg.t) > 0 else -1)


def test_a_nan_sign_change_says_which_sign_each_had():   # failed before: "cfg.t is nan now, nan at compile"
    m = _Signs(_Cfg(t=NAN))
    step = _compile(m, torch.ones(3))
    m.cfg.t = -NAN
    with pytest.raises(AtenExecutorError, match=re.escape("cfg.t is -nan now, +nan at compile")):
        step(torch.ones(3))


def test_value_text_writes_each_nan_with_its_sign_and_odd_payloads():
    import struct

    from runtime.aten.settings import value_text

    odd = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
    assert [value_text(v) for v in (NAN, -NAN, odd, complex(NAN, -NAN), (NAN, 1.0, (-NAN,)), 1.5, "nan")] == [
        "+nan", "-nan", "+nan(0x7ff8000000000001)", "complex(+nan, -nan)", "(+nan, 1.0, (-nan,))", "1.5", "'nan'"]


# ---- 2a. a tensor's values read through its memory: DLPack, NumPy, memoryview, bytes --------------------------------

class _Memory(nn.Module):
    """``lin(x) * read(self.t) + self.t``: ``self.t`` read as numbers (by ``read``) and held by the program."""

    def __init__(self, read) -> None:
        super().__init__()
        self.lin, self.t, self.read = _linear(), torch.tensor([2.0]), read

    def forward(self, x):
        return self.lin(x) * float(self.read(self.t)) + self.t


def test_a_tensor_read_through_dlpack_is_watched():   # failed before: the export's 2.0 (compiled 2.97, eager 2.95)
    import numpy as np

    m = _Memory(lambda t: np.from_dlpack(t)[0])
    _runs_as_eager_or_refused(m, lambda: m.t.mul_(1.5))


@pytest.mark.parametrize("how", ["numpy", "asarray", "memoryview", "bytes"])
def test_a_tensor_read_through_numpy_memory_is_refused_at_compile_naming_it(how):
    """Failed before: torch's raw GraphError ("Cannot access data pointer ... custom kernel"): the line names the
    lambda's argument, no global or attribute; now the frame's variable is named."""
    import numpy as np

    read = {"numpy": lambda t: t.numpy()[0], "asarray": lambda t: np.asarray(t)[0],
            "memoryview": lambda t: np.frombuffer(memoryview(t.numpy()), dtype=np.float32)[0],
            "bytes": lambda t: np.frombuffer(bytes(t.numpy()), dtype=np.float32)[0]}[how]
    with pytest.raises(AtenExecutorError, match=r"reads the values of the tensor in the argument t of .*<lambda> through its memory .*"
                       r"at test_aten_round66\.py:\d+"):
        _compile(_Memory(read), torch.ones(3))


# ---- 4a. a branch in a local lambda on a tensor reached through a local name ---------------------------------------

_T = torch.tensor([2.0])


class _LocalLambda(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = _linear()

    def forward(self, x):
        u = _T
        f = lambda v: v * 2 if u > 1 else v  # noqa: E731
        return f(self.lin(x))


class _InputBranch(nn.Module):
    def forward(self, x):
        f = lambda v: v * 2 if v.sum() > 1 else v  # noqa: E731
        return f(x)


def test_a_local_lambda_branch_on_a_local_tensor_names_it_and_the_line():   # failed before: torch's raw GraphError
    with pytest.raises(AtenExecutorError, match=r"the tensor in the closure variable u of "
                                                r"_LocalLambda\.forward\.<locals>\.<lambda> at test_aten_round66\.py:\d+ "
                                                r"\(`f = lambda v: v \* 2 if u > 1 else v"):
        _compile(_LocalLambda(), torch.ones(3))


def test_a_local_lambda_branch_on_an_input_stays_torchs_refusal():
    """An input's values (export's stand-in) are no tensor a program holds: torch's own words stand."""
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match="data-dependent"):
        _compile(_InputBranch(), torch.ones(3))
