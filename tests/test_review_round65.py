"""Round 65 review: silent-wrong results of round 65's merged changes, found adversarially (CPU).

``settings_copies`` (an equal copy of a settings object taken without exporting again) proved "equal" a copy that
ran apart from the program: a set iterated in another order (``{1, 9}`` and ``{9, 1}``), a NaN of the other sign
(``math.copysign``), a ``float`` subclass whose ``__repr__`` hides its value or which holds fields of its own. The
same ``settings.same_value`` let the guard take such a value changed in place (``m.cfg.t = -nan``). Each failed
before the fix: the compiled call returned the export's result where eager computed another, with no error.
"""

from __future__ import annotations

import copy
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.settings import same_value  # noqa: E402

NAN = float("nan")


def _compile(m, *args):
    return compile(m, args, streams=1, cuda_graph=False, poison=True, device="cpu")


class Cfg:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


class _Loops(nn.Module):
    """Runs its settings' set in iteration order; the sign of ``cfg.t`` chooses a branch."""

    def __init__(self, cfg: Cfg) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, x):
        for v in self.cfg.vals:
            x = x * 2 + v
        return x * (1 if math.copysign(1, self.cfg.t) > 0 else -1) * self.cfg.k


class F(float):
    """A float whose ``repr`` hides its value."""

    def __repr__(self) -> str:
        return "F"


class FA(float):
    """A float holding a field of its own."""


def _fa(scale: float) -> FA:
    f = FA(1.0)
    f.scale = scale
    return f


def _eager_or_refused(step, m, x) -> str:
    want = m(x)
    try:
        got = step(x)
    except AtenExecutorError:
        return "refused"
    assert torch.equal(got, want), (got, want)
    return "ran"


_BASE = {"vals": {1, 9}, "t": NAN, "k": 2.0}
_CHANGED = [("vals", {9, 1}), ("vals", {1.0, 9}), ("vals", {True, 9}), ("t", -NAN), ("k", F(2.0))]


@pytest.mark.parametrize("field,value", _CHANGED, ids=[f"{f}={v!r}" for f, v in _CHANGED])
def test_a_replaced_settings_object_that_runs_apart_is_never_taken_as_equal(field, value):
    """Failed before (each but {1.0, 9}, {True, 9}: those held by luck): the copy proven equal ran the export's
    numbers silently ({9, 1} gives 42 where eager gives 58; -nan flips the sign)."""
    m = _Loops(Cfg(**_BASE))
    x = torch.ones(3)
    step = _compile(m, x)
    m.cfg = Cfg(**{**_BASE, field: value})
    _eager_or_refused(step, m, x)


def test_an_equal_deep_copy_is_still_taken():
    """The fix refuses no true copy: a deep copy (its set in the same order, the same NaN) runs as eager."""
    m = _Loops(Cfg(**_BASE))
    x = torch.ones(3)
    step = _compile(m, x)
    for _ in range(2):
        m.cfg = copy.deepcopy(m.cfg)
        assert _eager_or_refused(step, m, x) == "ran"


class _Scales(nn.Module):
    def __init__(self, cfg: Cfg) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, x):
        return x * self.cfg.t * getattr(self.cfg.t, "scale", 1.0)


@pytest.mark.parametrize("old,new", [(F(2.0), F(3.0)), (_fa(2.0), _fa(3.0))], ids=["hidden-repr", "own-field"])
@pytest.mark.parametrize("how", ["copy", "in-place"])
def test_a_float_subclass_differing_behind_its_repr_is_refused(old, new, how):
    """Failed before: copy (round 65's proof) and in place (the guard's ``same_value``) ran 2.0 where eager ran 3.0."""
    m = _Scales(Cfg(t=old))
    x = torch.ones(3)
    step = _compile(m, x)
    if how == "copy":
        m.cfg = Cfg(t=new)
    else:
        m.cfg.t = new
    assert _eager_or_refused(step, m, x) == "refused"


def test_a_nan_of_the_other_sign_set_in_place_is_refused():
    """Failed before: ``m.cfg.t = -nan`` (repr "nan" as compile's) ran the export's sign silently."""
    m = _Loops(Cfg(**_BASE))
    x = torch.ones(3)
    step = _compile(m, x)
    m.cfg.t = -NAN
    assert _eager_or_refused(step, m, x) == "refused"


_TRICKY = [NAN, -NAN, struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0], 0.0, -0.0, 1, 1.0, True, 0,
           False, complex(NAN, 0.0), complex(-NAN, 0.0), F(2.0), F(3.0), F(NAN), F(-NAN)]
_SCALAR = st.one_of(st.sampled_from(_TRICKY), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.just(-NAN), st.complex_numbers(allow_nan=True), st.text(max_size=2), st.none())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_SCALAR, b=_SCALAR)
def test_same_value_means_the_same_bits(a, b):
    """``same_value`` holds only where the two values are one type and the same bits (no NaN sign or payload, no
    -0.0 / 0.0, no 1 / 1.0 / True told apart by it)."""
    def bits(v):
        if isinstance(v, complex):
            return (bits(v.real), bits(v.imag))
        if isinstance(v, float):
            return struct.pack("<d", v)
        return repr(v)
    if same_value(a, b):
        assert type(a) is type(b) and bits(a) == bits(b), (a, b)
    if type(a) is type(b) and bits(a) == bits(b):
        assert same_value(a, b), (a, b)


# --- the value-read watch and torch._C.DisableTorchFunction ----------------------------------------------------------

T = torch.tensor([2.0, 3.0])


class _ReadsDisabled(nn.Module):
    """Reads ``T`` as numbers where torch consults no mode, and uses it as a tensor too."""

    def forward(self, x):
        with torch._C.DisableTorchFunction():
            k = T.tolist()[0]
            y = x + 1   # (ops under it still trace)
        return y * k + T


def test_a_value_read_under_disable_torch_function_is_watched():
    """Failed before (round 65's mode, which torch skips there): after ``T.mul_(1.5)`` the compiled call returned
    [7.0, 8.5] where eager gives [9.0, 10.5], no error; now the read is seen and the change refused (or re-exported)."""
    global T
    T = torch.tensor([2.0, 3.0])
    original = torch._C.DisableTorchFunction
    m = _ReadsDisabled()
    x = torch.ones(2)
    step = _compile(m, x)
    assert torch._C.DisableTorchFunction is original   # (the stand-in is gone with the export)
    assert torch.equal(step(x), m(x))
    T.mul_(1.5)
    _eager_or_refused(step, m, x)


def test_disable_torch_function_in_another_thread_during_an_export_is_torch_s_own():
    """The stand-in does, outside the exporting thread, what torch's does: no mode of that thread consulted."""
    import threading

    from runtime.aten.value_reads import watch_value_reads

    seen: list[bool] = []

    class Spy(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(True)
            return func(*args, **(kwargs or {}))

    def other():
        with Spy():
            with torch._C.DisableTorchFunction():
                torch.ones(2).tolist()

    with watch_value_reads(torch) as reads:
        t = threading.Thread(target=other)
        t.start()
        t.join()
        with torch._C.DisableTorchFunction():
            T.tolist()
    assert seen == [] and id(T) in reads


# --- a settings object read wholesale (vars(cfg), cfg.__dict__, copy.copy(cfg)) --------------------------------------

class _Both:
    def __init__(self) -> None:
        self.t, self.k, self.step = 1.0, 2.0, 0


_WHOLE = {"vars": lambda c: vars(c)["k"], "__dict__": lambda c: c.__dict__["k"],
          "getstate": lambda c: c.__getstate__()["k"], "copy": lambda c: copy.copy(c).k}


class _ReadsWhole(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.cfg, self.how = _Both(), how

    def forward(self, x):
        return x * self.cfg.t + _WHOLE[self.how](self.cfg)


@pytest.mark.parametrize("change", ["copy", "in-place"])
@pytest.mark.parametrize("how", list(_WHOLE))
def test_a_field_read_through_the_object_s_dict_is_watched(how, change):
    """Failed before (each): the read of ``k`` recorded only ``__dict__`` (or ``__getstate__``, ``__reduce_ex__``), so
    ``k`` counted as unread: ``m.cfg.k = 3.0`` (in place: since round 61; an equal copy but ``k``: round 65) ran the
    export's 2.0 silently."""
    m = _ReadsWhole(how)
    x = torch.ones(2)
    step = _compile(m, x)
    if change == "copy":
        c = copy.deepcopy(m.cfg)
        c.k = 3.0
        m.cfg = c
    else:
        m.cfg.k = 3.0
    assert _eager_or_refused(step, m, x) == "refused"


def test_an_unread_counter_still_does_not_refuse_where_fields_are_read_by_name():
    """The fix keeps round 61's promise: a field forward did not read (``step``) changes freely."""
    class ByName(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = _Both()

        def forward(self, x):
            return x * self.cfg.t + self.cfg.k

    m = ByName()
    x = torch.ones(2)
    step = _compile(m, x)
    m.cfg.step += 1
    assert _eager_or_refused(step, m, x) == "ran"
    c = copy.deepcopy(m.cfg)
    c.step += 1
    m.cfg = c
    assert _eager_or_refused(step, m, x) == "ran"


# --- a tensor in a settings object's private field -------------------------------------------------------------------

class _Private(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = Cfg(_t=torch.full((2,), 2.0))

    def forward(self, x):
        return x * self.cfg._t


@pytest.mark.parametrize("change", ["replaced", "copy, then mul_"])
def test_a_tensor_in_a_settings_object_s_private_field_is_watched(change):
    """Failed before (each): round 65b walked public fields only, so ``m.cfg._t = t2`` (or a deep copy, its tensor
    then changed in place) ran the export's 2.0 where eager gives 3.0 or 4.0, no error."""
    m = _Private()
    x = torch.ones(2)
    step = _compile(m, x)
    if change == "replaced":
        m.cfg._t = torch.full((2,), 3.0)
    else:
        m.cfg = copy.deepcopy(m.cfg)
        m.cfg._t.mul_(2)
    assert _eager_or_refused(step, m, x) == "refused"


# --- a field read from the class, then set on the instance -----------------------------------------------------------

class _ClassT:
    t = 2.0

    def __init__(self) -> None:
        self.k = 1.0


class _ReadsClassT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = _ClassT()

    def forward(self, x):
        return x * self.cfg.t


def _shadowed() -> _ClassT:
    c = _ClassT()
    c.t = 3.0
    return c


@pytest.mark.parametrize("change", ["in-place", "replaced"])
def test_a_class_field_forward_read_then_set_on_the_instance_is_refused(change):
    """Failed before (each, since the guard watched instance fields only; the object, holding no read field, was not
    even held): ``m.cfg.t = 3.0`` over the class's 2.0 ran 2.0 where eager gives 3.0, no error."""
    m = _ReadsClassT()
    x = torch.ones(2)
    step = _compile(m, x)
    if change == "in-place":
        m.cfg.t = 3.0
    else:
        m.cfg = _shadowed()
    assert _eager_or_refused(step, m, x) == "refused"


def test_a_deep_copy_of_an_object_whose_class_field_was_read_is_taken():
    m = _ReadsClassT()
    x = torch.ones(2)
    step = _compile(m, x)
    m.cfg = copy.deepcopy(m.cfg)
    assert _eager_or_refused(step, m, x) == "ran"
    m.cfg.t = 3.0
    assert _eager_or_refused(step, m, x) == "refused"


# --- property: any replacement of a settings object runs as eager or is refused ---------------------------------------

class _Mixed(nn.Module):
    def __init__(self, cfg: Cfg) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, x):
        c = self.cfg
        for v in c.vals:
            x = x * 2 + v
        for v in c.seq:
            x = x * 3 + v
        return (x * c.a) * math.copysign(1, c.b)


_TRICKY_FLOATS = st.sampled_from([0.0, -0.0, 1.0, 2.0, NAN, -NAN, math.inf])
_CFG = st.fixed_dictionaries({
    "vals": st.lists(st.sampled_from([0.0, -0.0, 1, 1.0, True, 9, 17]), min_size=1, max_size=3),
    "seq": st.one_of(st.lists(st.sampled_from([1, 1.0, True, -0.0]), max_size=2),
                     st.lists(st.sampled_from([1, 1.0, True, -0.0]), max_size=2).map(tuple)),
    "a": _TRICKY_FLOATS, "b": _TRICKY_FLOATS})
#: how a step makes the next object from the one before: each keeps "==" with it, or nearly
_STEPS = st.sampled_from(["deepcopy", "set reversed", "b negated", "a negated", "seq retyped", "same values"])


def _cfg(d: dict) -> Cfg:
    return Cfg(vals=set(d["vals"]), seq=copy.copy(d["seq"]), a=d["a"], b=d["b"])


def _step(d: dict, how: str) -> dict:
    d = dict(d)
    if how == "set reversed":
        d["vals"] = list(reversed(d["vals"]))
    elif how == "b negated":
        d["b"] = -d["b"]
    elif how == "a negated":
        d["a"] = -d["a"]
    elif how == "seq retyped":
        d["seq"] = tuple(d["seq"]) if isinstance(d["seq"], list) else list(d["seq"])
    return d


def _same_result(got, want) -> bool:
    return got.dtype == want.dtype and torch.equal(got.isnan(), want.isnan()) and torch.equal(
        torch.nan_to_num(got), torch.nan_to_num(want)) and torch.equal(got.signbit(), want.signbit())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=_CFG, steps=st.lists(_STEPS, min_size=1, max_size=4))
def test_any_replacement_of_a_settings_object_runs_as_eager_or_is_refused(first, steps):
    """Every replacement (a deep copy, or a new object of the class whose values are "==" to the last one's or
    nearly) gives eager's result bit for bit (NaNs, their signs and signed zeros included) or our error, never
    the export's numbers where eager's differ. Failed before on set order ({1, 9} built as {9, 1}) and a NaN's
    sign."""
    m = _Mixed(_cfg(first))
    x = torch.ones(2)
    step = _compile(m, x)
    d = first
    for how in steps:
        d = _step(d, how)
        m.cfg = copy.deepcopy(m.cfg) if how == "deepcopy" else _cfg(d)
        want = m(x)
        try:
            got = step(x)
        except AtenExecutorError:
            continue
        assert _same_result(got, want), (first, steps, got, want)


# --- a copy where forward compares the object's identity -------------------------------------------------------------

class _Scale:
    def __init__(self, t: float) -> None:
        self.t = t


DEFAULT = _Scale(2.0)


class _ComparesIdentity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = DEFAULT

    def forward(self, x):
        return x * (1.0 if self.cfg is DEFAULT else 5.0) * self.cfg.t


def test_an_equal_copy_of_an_object_forward_compares_by_identity_is_refused():
    """Failed before (round 65's proof looks at fields only): ``m.cfg = deepcopy(m.cfg)`` of the global ``DEFAULT``
    ran the export's ``is DEFAULT`` branch, 2.0, where eager gives 10.0, no error."""
    m = _ComparesIdentity()
    x = torch.ones(2)
    step = _compile(m, x)
    m.cfg = copy.deepcopy(m.cfg)
    assert _eager_or_refused(step, m, x) == "refused"
    m.cfg = DEFAULT
    assert _eager_or_refused(step, m, x) == "ran"
