"""Round 62b: Python values ``forward`` reads (not writes), changed by the caller after compile.

A compiled call runs no Python: export baked what ``forward`` read into the program. Before this round a caller's
``SCALE = 3.0`` after compile changed eager's result and silently not the program's (``x * 2.0`` where eager gave
``x * 3.0``); the same for a closure cell, a class attribute, a container nested in a global or a module attribute,
and a field of a held object. Now the compiled call raises ``AtenExecutorError`` naming the value, where it lives and
both values; unchanged values (or ones set back, or set again to an equal value) run the program, bitwise eager's.
"""

from __future__ import annotations

import dataclasses

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

SCALE = 2.0
NESTED = {"s": [[2.0]]}
VERBOSE = False


@dataclasses.dataclass
class _Knob:
    s: float = 2.0


KNOB = _Knob()


def _compile(m, *inputs):
    return compile(m, inputs, streams=1, cuda_graph=False, poison=True, device="cpu")


class _Global(nn.Module):
    def forward(self, x):
        return x * SCALE


class _NestedGlobal(nn.Module):
    def forward(self, x):
        return x * NESTED["s"][0][0]


class _GlobalObject(nn.Module):
    def forward(self, x):
        return x * KNOB.s


class _ClassAttr(nn.Module):
    s = 2.0

    def forward(self, x):
        return x * type(self).s


class _NestedAttr(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = {"a": [[2.0]]}

    def forward(self, x):
        return x * self.cfg["a"][0][0]


class _Obj:
    def __init__(self):
        self.s = 2.0


class _ObjectInList(nn.Module):
    def __init__(self):
        super().__init__()
        self.objs = [_Obj()]

    def forward(self, x):
        return x * self.objs[0].s


class _Inert(nn.Module):
    def forward(self, x):
        if VERBOSE:   # (read, but the result is the same either way)
            pass
        return x * 2.0


def _closure():
    box = [2.0]

    class _Closure(nn.Module):
        def forward(self, x):
            return x * box[0]
    return _Closure(), box


def _set_global(v):
    global SCALE
    SCALE = v


def _set_verbose(v):
    global VERBOSE
    VERBOSE = v


@pytest.fixture(autouse=True)
def _restore():
    yield
    _set_global(2.0)
    _set_verbose(False)
    NESTED["s"][0][0] = 2.0
    KNOB.s = 2.0
    _ClassAttr.s = 2.0


def _cases():
    """(name, make -> (module, set(v)), the words the refusal names)"""
    def closure():
        m, box = _closure()
        return m, lambda v: box.__setitem__(0, v)

    def nested_attr():
        m = _NestedAttr()
        return m, lambda v: m.cfg["a"][0].__setitem__(0, v)

    def object_in_list():
        m = _ObjectInList()
        return m, lambda v: setattr(m.objs[0], "s", v)

    return [
        ("global", lambda: (_Global(), _set_global), "the global SCALE"),
        ("closure", closure, "the closure variable box"),
        ("class_attribute", lambda: (_ClassAttr(), lambda v: setattr(_ClassAttr, "s", v)),
         "the class attribute _ClassAttr.s"),
        ("nested_global", lambda: (_NestedGlobal(), lambda v: NESTED["s"][0].__setitem__(0, v)), "the global NESTED"),
        ("global_object", lambda: (_GlobalObject(), lambda v: setattr(KNOB, "s", v)), "the attribute s of the _Knob"),
        ("nested_module_attribute", nested_attr, "the attribute _NestedAttr.cfg['a'][0]"),
        ("object_in_list", object_in_list, "the attribute s of the _Obj object at _ObjectInList.objs[0]"),
    ]


@pytest.mark.parametrize("name,make,words", _cases(), ids=[c[0] for c in _cases()])
def test_a_value_forward_reads_changed_after_compile_is_refused_naming_it(name, make, words):
    m, set_value = make()
    x = torch.randn(4, 8)
    step = _compile(m, x)
    assert torch.equal(step(x), x * 2.0)
    set_value(3.0)
    assert torch.equal(m(x), x * 3.0)   # eager follows the new value
    with pytest.raises(AtenExecutorError) as err:
        step(x)
    text = str(err.value)
    assert words in text and "changed since compile" in text and "compile again" in text
    was, _, now = text.partition(" -> ")   # (both values: ``2.0 -> 3.0``, a list's ``[2.0] -> [3.0]``)
    assert was.endswith("2.0") or was.endswith("2.0]"), text
    assert now.startswith("3.0") or now.startswith("[3.0"), text
    set_value(2.0)   # set back (an equal value, another object): the program runs again, bitwise eager's
    assert torch.equal(step(x), m(x))


@pytest.mark.parametrize("name,make,words", _cases(), ids=[c[0] for c in _cases()])
def test_unchanged_values_run_the_program_bitwise_eagers(name, make, words):
    m, _set_value = make()
    x = torch.randn(4, 8)
    step = _compile(m, x)
    for _ in range(3):
        assert torch.equal(step(x), m(x))


def test_a_value_read_that_does_not_change_the_result_is_taken():
    """Refused in round 62b (the executor could not tell that a value ``forward`` read changed nothing); since round
    63 ``forward`` exported again from the values now gives compile's very program, so the change is taken, bitwise
    eager's, set back too."""
    m = _Inert()
    x = torch.randn(4, 8)
    step = _compile(m, x)
    _set_verbose(True)
    assert torch.equal(m(x), x * 2.0)
    assert torch.equal(step(x), m(x))
    _set_verbose(False)
    assert torch.equal(step(x), m(x))


def test_a_module_list_of_tensors_appended_by_the_caller_is_no_refusal():
    """A module attribute list changed by tensors alone is a record (a feature tap's ``self.feats.append(y)``), not a
    value the program baked: the call runs, bitwise eager's."""
    class Tap(nn.Module):
        def __init__(self):
            super().__init__()
            self.feats = []

        def forward(self, x):
            return x * 2.0

    m = Tap()
    x = torch.randn(4, 8)
    step = _compile(m, x)
    m.feats.append(torch.ones(2))
    assert torch.equal(step(x), m(x))
