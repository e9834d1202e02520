"""Round 64d: a fresh-eyes review of round 64's per-call checks of what ``forward`` and its hooks read (CPU).

A compiled call runs no Python: export baked what ``forward`` and its hooks made of a value into the program, so a
value changed after compile must either leave the program right or be refused (``AtenExecutorError``). On main
before this round these ran the export's value silently (the tests marked "failed before" did): a NumPy array,
``bytearray`` or tuple a ``functools.partial`` hook binds, changed in place; a buffer in a settings object held in a
dict, in a settings object's settings object, or four containers down a module attribute; a function in a hook's
closure or object replaced; a callable object of the user's in a hook's closure whose field changed; a global
function of a hook deleted and defined anew at the same address (its ``id`` reused).
"""

from __future__ import annotations

import array
import dataclasses
import functools
import types
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")
np = need("numpy")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


@dataclasses.dataclass
class _Cfg:
    t: object = None
    inner: object = None


class _Scale:
    """A callable object of the user's: a settings object, its field read by its ``__call__``."""

    def __init__(self, k):
        self.k = k

    def __call__(self, out):
        return out * self.k


def _compile(m, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(m, (x,), streams=1, cuda_graph=False, poison=True, device="cpu")


def _matches_eager_or_refused(m, change):
    """Compile ``m``, change a value, and check the compiled call against eager's: equal, or refused."""
    x = torch.ones(3)
    cm = _compile(m, x)
    assert torch.allclose(cm(x), m(x))
    change()
    try:
        want = m(x)
    except (ValueError, TypeError, IndexError) as exc:   # (a released memoryview: eager fails, so must the call)
        with pytest.raises((type(exc), AtenExecutorError)):
            cm(x)
        return
    try:
        got = cm(x)
    except AtenExecutorError:
        return
    assert torch.allclose(got, want), f"compiled {got.tolist()} where eager gave {want.tolist()}"


def _linear():
    torch.manual_seed(0)
    return nn.Linear(3, 3)


# ---- the holes found, one each ---------------------------------------------------------------------------------

def _partial(bound, read, change):
    lin = _linear()
    lin.register_forward_hook(functools.partial(lambda b, _m, _i, out: out * read(b), bound))
    return lin, lambda: change(bound)


class _Attr(nn.Module):
    def __init__(self, v, read):
        super().__init__()
        self.v = v
        self.read = read

    def forward(self, x):
        return x * float(self.read(self.v))


class _Direct(nn.Module):
    """``forward`` reading its settings object's field itself (a list's item where ``t`` is one)."""

    def __init__(self, t=2.0):
        super().__init__()
        self.cfg = _Cfg(t=t)

    def forward(self, x):
        t = self.cfg.t
        return x * (t[0] if isinstance(t, list) else t)


class _FnField:
    def __init__(self):
        self.f = lambda o: o * 2.0

    def __call__(self, _m, _i, out):
        return self.f(out)


def _closure_fn():
    lin = _linear()
    act = lambda o: o * 2.0  # noqa: E731
    def hook(_m, _i, out):
        return act(out)
    lin.register_forward_hook(hook)
    cell = hook.__closure__[hook.__code__.co_freevars.index("act")]
    return lin, lambda: setattr(cell, "cell_contents", lambda o: o * 3.0)


def _object_fn():
    lin, obj = _linear(), _FnField()
    lin.register_forward_hook(obj)
    return lin, lambda: setattr(obj, "f", lambda o: o * 3.0)


def _callable_object():
    lin, sc = _linear(), _Scale(2.0)
    lin.register_forward_hook(lambda _m, _i, out: sc(out))
    return lin, lambda: setattr(sc, "k", 3.0)


def _reused_global():
    g = {"np": np}
    exec("A = np.array([1.0])\ndef act(o):\n    return o * 2.0\n"   # (the array: the hook fingerprinted per call)
         "def hook(_m, _i, out):\n    return act(out) * float(A[0])\n", g)
    lin = _linear()
    lin.register_forward_hook(g["hook"])
    code = [c for c in compile_code("def act(o):\n    return o * 3.0\n").co_consts if isinstance(c, types.CodeType)][0]

    def change():
        del g["act"]   # (freed: the next function made takes its address, as CPython's allocator gives)
        g["act"] = types.FunctionType(code, g, "act")
    return lin, change


def compile_code(src):
    import builtins
    return builtins.compile(src, "<test>", "exec")


def _set0(v):
    return lambda o: o.__setitem__(0, v)


HOLES = {
    "numpy array a partial binds": lambda: _partial(np.array([2.0]), lambda b: float(b[0]), _set0(3.0)),
    "bytearray a partial binds by keyword": lambda: _partial(bytearray([2]), lambda b: b[0], _set0(3)),
    "list in a tuple a partial binds": lambda: _partial(([2.0],), lambda b: b[0][0], lambda b: b[0].__setitem__(0, 3.0)),
    "numpy four containers down an attribute": lambda: (
        m := _Attr({"a": [[[np.array([2.0])]]]}, lambda v: v["a"][0][0][0][0]),
        lambda: m.v["a"][0][0][0].__setitem__(0, 3.0)),
    "numpy in a settings object in a dict": lambda: (
        m := _Attr({"a": _Cfg(t=np.array([2.0]))}, lambda v: v["a"].t[0]), lambda: m.v["a"].t.__setitem__(0, 3.0)),
    "numpy in a settings object's settings object": lambda: (
        m := _Attr(_Cfg(inner=_Cfg(t=np.array([2.0]))), lambda v: v.inner.t[0]),
        lambda: m.v.inner.t.__setitem__(0, 3.0)),
    "settings object of a module replaced": lambda: (m := _Direct(), lambda: setattr(m, "cfg", _Cfg(t=3.0))),
    "settings object's __dict__ replaced": lambda: (
        m := _Direct(), lambda: setattr(m.cfg, "__dict__", {"t": 3.0, "inner": None})),
    "list in a settings object's field changed in place": lambda: (
        m := _Direct([2.0]), lambda: m.cfg.t.__setitem__(0, 3.0)),
    "field of a settings object two containers down an attribute": lambda: (
        m := _Attr({"a": [_Cfg(t=2.0)]}, lambda v: v["a"][0].t), lambda: setattr(m.v["a"][0], "t", 3.0)),
    "settings object in a global replaced": lambda: (
        (b := _build("global", _Cfg(t=2.0)))[0], lambda: b[2](_Cfg(t=3.0))),
    "settings object in a closure variable replaced": lambda: (
        (b := _build("closure", _Cfg(t=2.0)))[0], lambda: b[2](_Cfg(t=3.0))),
    "numpy array in a partial attribute's bound list": lambda: (
        (b := _build("attribute partial", np.array([2.0])))[0], lambda: b[1]().__setitem__(0, 3.0)),
    "function in a hook's closure replaced": _closure_fn,
    "function field of a hook's object replaced": _object_fn,
    "callable object in a hook's closure, field changed": _callable_object,
    "global function of a hook defined anew at the same address": _reused_global,
}


@pytest.mark.parametrize("case", list(HOLES))
def test_a_value_changed_after_compile_matches_eager_or_is_refused(case):
    # failed before (every case): the compiled call ran the export's value, silently
    m, change = HOLES[case]()
    _matches_eager_or_refused(m, change)


def test_a_settings_object_dict_replaced_by_an_equal_one_is_taken():
    # no refusal for an equal ``__dict__`` (the guard reads the fields there now, and takes them as the baseline)
    m, x = _Direct(), torch.ones(3)
    cm = _compile(m, x)
    m.cfg.__dict__ = {"t": 2.0, "inner": None}
    assert torch.equal(cm(x), m(x)) and cm.guard.unchanged()
    m.cfg.t = 3.0   # (the new dict is the one watched now)
    with pytest.raises(AtenExecutorError, match="cfg.t is 3.0 now"):
        cm(x)


class _Big:
    pass


def test_a_refused_hook_state_keeps_no_object_eager_freed():
    # failed before: the per-call watch (hook_watch) held the objects the hook's state held at the last fingerprint,
    # through every refused call after a change, so an object the caller dropped stayed alive with the compiled module
    import gc
    import weakref

    state = {"k": 2.0, "obj": _Big()}
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * state["k"])
    x = torch.ones(3)
    cm = _compile(lin, x)
    cm(x)
    ref = weakref.ref(state["obj"])
    state["obj"], state["k"] = None, 3.0
    said = r"the Python state a forward hook of Linear \(.*\) reads changed since compile"
    with pytest.raises(AtenExecutorError, match=said):
        cm(x)
    gc.collect()
    assert ref() is None


# ---- every (place, value, change) against eager -----------------------------------------------------------------

def _make(kind, v):
    return {"numpy": lambda: np.array([v]), "bytearray": lambda: bytearray([int(v)]),
            "array": lambda: array.array("d", [v]), "memoryview": lambda: memoryview(bytearray([int(v)])),
            "npscalar": lambda: np.float32(v), "list": lambda: [v], "dict": lambda: {"k": v},
            "settings": lambda: _Cfg(t=v)}[kind]()


def _read(o):
    """The value's number, whatever kind it is now (a change may change its kind)."""
    if isinstance(o, dict):
        return float(o["k"])
    if isinstance(o, (_Cfg, types.SimpleNamespace)):
        return float(o.t)
    if isinstance(o, np.generic):
        return float(o)
    return float(o[0])


def _changes(kind):
    """The changes that apply to a value of ``kind``: name -> (in place: fn(obj), or a new value: fn())."""
    out = {"replaced": ("new", lambda: _make(kind, 3.0)), "equal": ("new", lambda: _make(kind, 2.0)),
           "type": ("new", lambda: types.SimpleNamespace(t=3.0) if kind == "settings" else [3.0])}
    if kind in ("numpy", "bytearray", "array", "memoryview", "list"):
        out["in place"] = ("in", lambda o: o.__setitem__(0, type(o[0])(3)))
    if kind == "dict":
        out["in place"] = ("in", lambda o: o.__setitem__("k", 3.0))
    if kind == "settings":
        out["in place"] = ("in", lambda o: setattr(o, "t", 3.0))
        out["dict replaced"] = ("in", lambda o: setattr(o, "__dict__", {"t": 3.0, "inner": None}))
    if kind == "numpy":
        out["dtype"] = ("new", lambda: np.array([3.0], dtype=np.float32))
        out["shape"] = ("new", lambda: np.array([3.0, 1.0]))
        out["view dtype"] = ("in", lambda o: setattr(o, "dtype", np.int64))
    if kind == "bytearray":
        out["resized"] = ("in", lambda o: o.__setitem__(slice(None), bytearray([3, 1])))
    if kind == "memoryview":
        out["its bytearray"] = ("in", lambda o: o.obj.__setitem__(0, 3))
        out["released"] = ("in", lambda o: o.release())
    return out


class _Held:
    """A hook's object holding the value as a field."""

    def __init__(self, v):
        self.v = v

    def __call__(self, _m, _i, out):
        return out * _read(self.v)


def _nest(depth, leaf):
    """``leaf`` ``depth`` containers down (a dict, then lists), with the path to it."""
    box, path = leaf, []
    for i in range(depth):
        box, path = ({"a": box}, ["a", *path]) if i == depth - 1 else ([box], [0, *path])
    return box, path


def _build(place, value):
    """(module, get, set) of a value at ``place``: the module reads it in ``forward`` or in a forward hook."""
    lin = _linear()
    if place == "hook cell":
        v = value
        def hook(_m, _i, out):
            return out * _read(v)
        lin.register_forward_hook(hook)
        cell = hook.__closure__[hook.__code__.co_freevars.index("v")]
        return lin, lambda: cell.cell_contents, lambda new: setattr(cell, "cell_contents", new)
    if place == "hook global":
        g = {"_read": _read, "V": value}
        exec("def hook(_m, _i, out):\n    return out * _read(V)\n", g)
        lin.register_forward_hook(g["hook"])
        return lin, lambda: g["V"], lambda new: g.__setitem__("V", new)
    if place == "hook object":
        obj = _Held(value)
        lin.register_forward_hook(obj)
        return lin, lambda: obj.v, lambda new: setattr(obj, "v", new)
    if place == "hook settings field":
        cfg = _Cfg(t=value)
        lin.register_forward_hook(lambda _m, _i, out: out * _read(cfg.t))
        return lin, lambda: cfg.t, lambda new: setattr(cfg, "t", new)
    if place == "hook partial":
        bound = [value]
        lin.register_forward_hook(functools.partial(lambda b, _m, _i, out: out * _read(b[0]), bound))
        return lin, lambda: bound[0], lambda new: bound.__setitem__(0, new)
    if place.startswith("hook item"):
        box, path = _nest(int(place[-1]), value)
        def hook(_m, _i, out):
            c = box
            for k in path:
                c = c[k]
            return out * _read(c)
        lin.register_forward_hook(hook)
        return lin, lambda: functools.reduce(lambda c, k: c[k], path, box), \
            lambda new: functools.reduce(lambda c, k: c[k], path[:-1], box).__setitem__(path[-1], new)
    if place == "attribute":
        m = _Attr(value, _read)
        return m, lambda: m.v, lambda new: setattr(m, "v", new)
    if place == "attribute settings field":
        m = _Attr(_Cfg(t=value), lambda c: _read(c.t))
        return m, lambda: m.v.t, lambda new: setattr(m.v, "t", new)
    if place.startswith("attribute item"):
        box, path = _nest(int(place[-1]), value)
        m = _Attr(box, lambda c: _read(functools.reduce(lambda c, k: c[k], path, c)))
        return m, lambda: functools.reduce(lambda c, k: c[k], path, m.v), \
            lambda new: functools.reduce(lambda c, k: c[k], path[:-1], m.v).__setitem__(path[-1], new)
    if place == "global":
        g = {"__name__": "user_net", "nn": nn, "_read": _read, "V": value}
        exec("class Net(nn.Module):\n    def forward(self, x):\n        return x * _read(V)\n", g)
        return g["Net"](), lambda: g["V"], lambda new: g.__setitem__("V", new)
    if place == "closure":
        v = value

        class Net(nn.Module):
            def forward(self, x):
                return x * _read(v)
        cell = Net.forward.__closure__[Net.forward.__code__.co_freevars.index("v")]
        return Net(), lambda: cell.cell_contents, lambda new: setattr(cell, "cell_contents", new)
    if place == "attribute partial":
        bound = [value]
        m = _Attr(None, None)
        m.read = functools.partial(lambda b, _v: _read(b[0]), bound)
        return m, lambda: bound[0], lambda new: bound.__setitem__(0, new)
    raise AssertionError(place)


PLACES = ["hook cell", "hook global", "hook object", "hook settings field", "hook partial", "hook item 1",
          "hook item 2", "hook item 3", "attribute", "attribute settings field", "attribute item 1",
          "attribute item 2", "attribute item 3", "global", "closure", "attribute partial"]
KINDS = ["numpy", "bytearray", "array", "memoryview", "npscalar", "list", "dict", "settings"]


@st.composite
def _triples(draw):
    place, kind = draw(st.sampled_from(PLACES)), draw(st.sampled_from(KINDS))
    return place, kind, draw(st.sampled_from(sorted(_changes(kind))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_triples())
def test_every_place_value_and_change_matches_eager_or_is_refused(triple):
    place, kind, change = triple
    m, get, put = _build(place, _make(kind, 2.0))
    how, fn = _changes(kind)[change]
    _matches_eager_or_refused(m, (lambda: fn(get())) if how == "in" else (lambda: put(fn())))
