"""Round 65: the remaining holes in what compile watches of the values ``forward`` and its hooks read (CPU).

A compiled call runs no Python: a value changed after compile must leave the program right or be refused
(``AtenExecutorError``). Each test marked "failed before" failed on main before this round: a class attribute found
in a base class, past a class's 64th field, or read through a method, property, class or static method; a branch on
a registered buffer and ``T.numpy()`` of a global tensor (torch's raw ``GraphError``); writes that move neither a
tensor's version nor its data pointer (``t.data.add_(1)``, through ``t.numpy()``); a hook's branch in a lambda.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")

from aten_changes import assert_hook_counts_as_eager  # noqa: E402
from aten_changes import compile_cpu as _compile  # noqa: E402
from aten_changes import matches_eager_or_refused as _matches_eager_or_refused  # noqa: E402
from aten_changes import seeded_linear as _linear  # noqa: E402
from torch import nn  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.walk_bounds import StateWalkWarning  # noqa: E402


class _Reads(nn.Module):
    """``forward`` = ``lin(x) * read(self)``."""

    def __init__(self, read, **attrs):
        super().__init__()
        self.lin = _linear()
        self.read = read
        for k, v in attrs.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.lin(x) * self.read(self)


def _hooked(read):
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * read())
    return lin


# ---- 1. class attributes: a base's, past the 64th, through a method ------------------------------------------------

class _Base:
    s = 2.0


class _Derived(_Base):
    pass


G = 2.0


class _Methods:
    k = 2.0

    @classmethod
    def by_class(cls):
        return cls.k

    @staticmethod
    def by_static():
        return G

    def by_method(self):
        return G

    @property
    def by_property(self):
        return G


_OBJ = _Methods()
_Big = type("_Big", (), {**{f"f{i}": 1.0 for i in range(70)}, "s": 2.0})


class _CfgBase:
    t = 2.0


class _Cfg(_CfgBase):
    def __init__(self):
        self.u = 1.0


@pytest.fixture(autouse=True)
def _values_back():
    yield
    global G
    G, _Base.s, _Methods.k, _Big.s, _CfgBase.t = 2.0, 2.0, 2.0, 2.0, 2.0
    for cls, name in ((_Derived, "s"),):
        if name in vars(cls):
            delattr(cls, name)


def _set_g(v):
    global G
    G = v


#: (reader of forward, reader of a hook, the change): each failed before in forward, in a hook or both
CASES = {
    "base class attribute": (lambda m: _Derived.s, lambda: _Derived.s, lambda: setattr(_Base, "s", 3.0)),
    "attribute shadowing a base's": (lambda m: _Derived.s, lambda: _Derived.s, lambda: setattr(_Derived, "s", 3.0)),
    "71st class attribute": (lambda m: _Big.s, lambda: _Big.s, lambda: setattr(_Big, "s", 3.0)),
    "static method reading a global": (lambda m: _Methods.by_static(), lambda: _Methods.by_static(),
                                       lambda: _set_g(3.0)),
    "class method": (lambda m: _Methods.by_class(), lambda: _Methods.by_class(), lambda: setattr(_Methods, "k", 3.0)),
    "property of a global object": (lambda m: _OBJ.by_property, lambda: _OBJ.by_property, lambda: _set_g(3.0)),
    "method of a global object": (lambda m: _OBJ.by_method(), lambda: _OBJ.by_method(), lambda: _set_g(3.0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_class_reads_match_eager_or_are_refused(case):   # failed before: base, static, property, method
    read, _hook_read, change = CASES[case]
    _matches_eager_or_refused(_Reads(read), change)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hook_class_reads_match_eager_or_are_refused(case):   # failed before: base, 71st, static, property, method
    _read, hook_read, change = CASES[case]
    _matches_eager_or_refused(_hooked(hook_read), change)


def test_held_settings_object_class_attribute_and_property():   # failed before: both ran the export's 2.0
    m = _Reads(lambda m: m.cfg.t, cfg=_Cfg())
    _matches_eager_or_refused(m, lambda: setattr(_CfgBase, "t", 3.0))
    m = _Reads(lambda m: m.cfg.by_property, cfg=_Methods())
    _matches_eager_or_refused(m, lambda: _set_g(3.0))


def test_base_class_change_is_refused_naming_the_base():   # failed before: ran silently
    m = _Reads(lambda m: _Derived.s)
    x = torch.ones(3)
    cm = _compile(m, x)
    _Base.s = 3.0
    with pytest.raises(AtenExecutorError, match=r"the class attribute _Base\.s"):
        cm(x)


def test_unrelated_class_change_is_taken():
    m = _Reads(lambda m: _Derived.s)
    x = torch.ones(3)
    cm = _compile(m, x)
    _Big.s = 5.0   # (no class forward reads)
    _Base.s = 2.0   # (an equal value)
    assert torch.allclose(cm(x), m(x))


class _Counts:
    n = 0

    @classmethod
    def bump(cls):
        cls.__base__.n += 1   # (the base's count, reached through the class: no global names it)


class _SubCounts(_Counts):
    pass


def _bumping_hook(_m, _i, _out):
    _SubCounts.bump()


def test_hook_counting_in_a_base_class_counts_as_eager():   # (fails without ``hook_state_kept`` putting a base's
    # own attributes back: with the base watched, each proof's export counted one more)
    assert_hook_counts_as_eager(_bumping_hook, lambda: setattr(_Counts, "n", 0), lambda: _Counts.n)


def test_class_past_the_field_bound_warns_naming_it():   # failed before: no word
    from runtime.aten.hook_state import CLASS_FIELDS
    huge = type("_Huge", (), {f"f{i:05d}": 1.0 for i in range(CLASS_FIELDS + 5)})
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * huge.f00000)
    with pytest.warns(StateWalkWarning, match=r"the class _Huge's attributes past its 1,024th, f01024 on"):
        compile(lin, (torch.ones(3),), streams=1, cuda_graph=False, poison=True, device="cpu")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(CASES)), st.booleans(), st.floats(-4, 4, allow_nan=False))
def test_class_reads_hypothesis(case, hooked, value):
    read, hook_read, _change = CASES[case]
    change = {"base class attribute": lambda: setattr(_Base, "s", value),
              "attribute shadowing a base's": lambda: setattr(_Derived, "s", value),
              "71st class attribute": lambda: setattr(_Big, "s", value),
              "class method": lambda: setattr(_Methods, "k", value)}.get(case, lambda: _set_g(value))
    _values_back_now()
    _matches_eager_or_refused(_hooked(hook_read) if hooked else _Reads(read), change)


def _values_back_now():
    global G
    G, _Base.s, _Methods.k, _Big.s = 2.0, 2.0, 2.0, 2.0
    if "s" in vars(_Derived):
        delattr(_Derived, "s")


# ---- 2. a branch on a registered buffer --------------------------------------------------------------------------

class _BufferBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _linear()
        self.register_buffer("t", torch.tensor(2.0))

    def forward(self, x):
        if self.t > 1:
            return self.lin(x) * 2
        return self.lin(x)


def test_branch_on_a_buffer_is_refused_naming_it_and_the_line():   # failed before: torch's raw GraphError
    with pytest.raises(AtenExecutorError, match=r"the buffer _BufferBranch\.t at test_aten_round65\.py:\d+ "
                                                r"\(`if self\.t > 1:`\).*register_buffer"):
        _compile(_BufferBranch(), torch.ones(3))


class _InputBranch(nn.Module):
    def forward(self, x):
        if x.sum() > 1:
            return x * 2
        return x


def test_branch_on_an_input_stays_torchs_refusal():
    said = r"torch\.export failed for _InputBranch: .*in forward: `if x\.sum\(\) > 1:`"
    with pytest.raises(GraphError, match=said) as info:
        _compile(_InputBranch(), torch.ones(3))
    assert not isinstance(info.value, AtenExecutorError)


# ---- 3. T.numpy() of a global tensor ------------------------------------------------------------------------------

T = torch.tensor([2.0, 1.0])


class _NumpyRead(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _linear()

    def forward(self, x):
        return self.lin(x) * float(T.numpy()[0])


def test_numpy_read_of_a_global_tensor_is_refused_naming_it():   # failed before: "Cannot access data pointer"
    with pytest.raises(AtenExecutorError, match=r"the global T .* through its memory \(T\.numpy\(\), a data "
                                                r"pointer\) at test_aten_round65\.py:\d+ .*T\.tolist\(\)"):
        _compile(_NumpyRead(), torch.ones(3))


# ---- 4. writes that move neither version nor data pointer ---------------------------------------------------------

class _ReadsNumbers(nn.Module):
    def __init__(self, tensor, by):
        super().__init__()
        self.lin = _linear()
        self.t, self.by = tensor, by

    def forward(self, x):
        return self.lin(x) * (self.t.tolist()[0] if self.by == "tolist" else self.t.item() if self.by == "item"
                              else float(self.t[0]))


def _data_add(t):
    t.data.add_(1.0)


def _numpy_write(t):
    t.numpy()[0] = 5.0


def _detached(t):
    t.detach()[0] = 7.0


@pytest.mark.parametrize("write", [_data_add, _numpy_write, _detached])   # (_detached passed before: one version)
@pytest.mark.parametrize("by", ["tolist", "item"])
def test_writes_moving_no_version_are_seen(write, by):   # failed before: compiled the export's 2.0, eager 3.0/5.0/7.0
    t = torch.tensor([2.0])
    version, pointer = t._version, t.data_ptr()
    m = _ReadsNumbers(t, by)
    _matches_eager_or_refused(m, lambda: write(t))
    assert (t._version, t.data_ptr()) == (version, pointer) or write is _detached


def test_global_tensor_data_write_seen():   # failed before
    global T
    T = torch.tensor([2.0, 1.0])

    class Reads(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = _linear()

        def forward(self, x):
            return self.lin(x) * T.tolist()[0] + T[1]

    try:
        _matches_eager_or_refused(Reads(), lambda: T.data.mul_(1.5))
    finally:
        T = torch.tensor([2.0, 1.0])


def test_unchanged_small_tensor_with_nan_is_no_change():
    from runtime.aten.byte_values import contents
    t = torch.tensor([float("nan"), 1.0])
    assert contents(t) == contents(t)
    b = torch.tensor([float("nan")], dtype=torch.bfloat16)
    assert contents(b) == contents(b)


def test_values_bound_is_documented_size():
    from runtime.aten.byte_values import VALUES_LIMIT, tensor_values
    assert tensor_values(torch.zeros(VALUES_LIMIT)) is not None
    assert tensor_values(torch.zeros(VALUES_LIMIT + 1)) is None


# ---- 5. a read inside a lambda --------------------------------------------------------------------------------------

def test_hook_lambda_branch_names_the_tensor_and_the_line():   # failed before: torch's raw GraphError
    global T
    T = torch.tensor(2.0)
    try:
        lin = _linear()
        lin.register_forward_hook(lambda _m, _i, out: out * 2 if T > 1 else out)
        with pytest.raises(AtenExecutorError, match=r"the global T of hook .*<lambda> at test_aten_round65\.py:\d+"):
            _compile(lin, torch.ones(3))
    finally:
        T = torch.tensor([2.0, 1.0])


def test_lambda_numpy_read_names_the_lambda_line():   # failed before: torch's raw GraphError
    class Lam(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = _linear()

        def forward(self, x):
            f = lambda: T.numpy()[0]  # noqa: E731
            return self.lin(x) * float(f())

    with pytest.raises(AtenExecutorError, match=re.escape("(`f = lambda: T.numpy()[0] # noqa: E731`)")):
        _compile(Lam(), torch.ones(3))


def test_importer_names_a_lambda_frame():   # failed before: no line where the raising frame is a lambda
    from memplan.importers.torch.common import _raising_call
    text = ("The following call raised this error:\n  File \"/x/model.py\", line 12, in <lambda>\n"
            "    f = lambda v: 2 if v.sum() > 0 else 1\n")
    assert _raising_call(text) == " (at model.py:12 in <lambda>: `f = lambda v: 2 if v.sum() > 0 else 1`)"
    assert _raising_call("Caused by: (model.py:3 in <lambda>)") == " (at model.py:3 in <lambda>)"


def test_hook_lambda_branch_on_its_closure_tensor_names_it():   # failed before: torch's raw GraphError
    def make():
        limit = torch.tensor(2.0)
        return lambda _m, _i, out: out * 2 if limit > 1 else out
    lin = _linear()
    lin.register_forward_hook(make())
    with pytest.raises(AtenExecutorError, match=r"the closure variable limit of hook .*make\.<locals>\.<lambda> at "
                                                r"test_aten_round65\.py:\d+"):
        _compile(lin, torch.ones(3))


class _LambdaBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _linear()
        self.big = lambda: T[0] > 1

    def forward(self, x):
        return self.lin(x) * (2 if self.big() else 1)


def test_branch_through_a_held_lambda_names_the_tensor_it_reads():   # failed before: torch's raw GraphError
    with pytest.raises(AtenExecutorError, match=r"the global T \(module test_aten_round65\) read by "
                                                r"_LambdaBranch\.__init__\.<locals>\.<lambda> at test_aten_round65\.py"):
        _compile(_LambdaBranch(), torch.ones(3))
