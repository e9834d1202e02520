"""Round 63b: the ATen executor's refusals of hooks, container attributes and lazy modules that were torch's or none
(CPU, tiny, torch only).

Bugs fixed (each test marked "failed before" did):
- a forward hook reading Python state the caller changes after compile (a closure's ``n = [1.0]`` with
  ``out.mul_(n[0])`` or ``return out * n[0]``, a global, a callable object's field) ran every compiled call with the
  export's value, silently (1.07 off at the first call); now the hooks' state is watched per call
  (``hook_values``), exported again where it moved, refused where that gives another program;
- a hook changing its own state and writing its output (or a pre-hook its argument) in place from it
  (``n[0] += 1; out.mul_(n[0])``, returning None) compiled silently; now refused at compile;
- a layer appended to (or swapped in) a list or dict attribute after compile, or a weight of such a layer replaced,
  ran the export's layers silently; now refused naming it (``held_modules``);
- ``nn.LazyLinear`` compiled before any eager call failed with torch's GraphError naming no layer; now refused
  naming it, saying to call the module once first;
- a change inside containers past the walks' size bounds compiled with no word; now a ``StateWalkWarning``.
"""

from __future__ import annotations

import functools
import sys
import warnings

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.walk_bounds import StateWalkWarning  # noqa: E402


def _compile(m, *inputs):
    return compile(m, inputs, streams=1, cuda_graph=False, poison=True, device="cpu")


# --- hooks reading state that changes ----------------------------------------------------------------------------

SCALE = [1.0]


class _Scale:
    def __init__(self):
        self.s = 1.0

    def __call__(self, mod, args, out):
        out.mul_(self.s)


def _closure_in_place():
    m, n = nn.Linear(4, 4), [1.0]

    def hook(mod, args, out):
        out.mul_(n[0])

    m.register_forward_hook(hook)
    return m, lambda: n.__setitem__(0, n[0] + 1.0)


def _closure_returned():
    m, n = nn.Linear(4, 4), [1.0]
    m.register_forward_hook(lambda mod, args, out: out * n[0])
    return m, lambda: n.__setitem__(0, n[0] + 1.0)


def _global_in_place():
    m = nn.Linear(4, 4)
    SCALE[0] = 1.0

    def hook(mod, args, out):
        out.mul_(SCALE[0])

    m.register_forward_hook(hook)
    return m, lambda: SCALE.__setitem__(0, SCALE[0] + 1.0)


def _object_in_place():
    m, h = nn.Linear(4, 4), _Scale()
    m.register_forward_hook(h)
    return m, lambda: setattr(h, "s", h.s + 1.0)


def _partial_pre_hook():
    def scale(box, mod, args):
        args[0].mul_(box["s"])

    m, box = nn.Linear(4, 4), {"s": 1.0}
    m.register_forward_pre_hook(functools.partial(scale, box))
    return m, lambda: box.__setitem__("s", box["s"] + 1.0)


@pytest.mark.parametrize("make", [_closure_in_place, _closure_returned, _global_in_place, _object_in_place,
                                  _partial_pre_hook])
def test_a_hook_reading_state_the_caller_changes_is_refused_after_the_change(make):
    """Failed before: every compiled call after the change returned the export's ``out * 1`` (eager ``out * 2``)."""
    m, change = make()
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert torch.allclose(step(x.clone()), m(x.clone()))   # (unchanged: the program's call)
    change()
    for _ in range(2):   # (the second refusal remembered, without an export)
        with pytest.raises(AtenExecutorError, match=r"the Python state a forward (pre-)?hook of Linear .* reads "
                                                    r"changed since compile .* gives another program"):
            step(x.clone())


def test_a_counting_hook_advanced_by_eager_calls_still_compiles():
    """A hook that counts (returns None, writes nothing) and whose count eager calls advance between compiled calls
    gives the same program: taken, call after call."""
    m, n = nn.Linear(4, 4), [0]

    def hook(mod, args, out):
        n[0] += 1

    m.register_forward_hook(hook)
    x = torch.randn(2, 4)
    step = _compile(m, x)
    for _ in range(3):
        m(x)
        assert torch.equal(step(x), m(x))


def test_a_feature_tap_cleared_by_the_caller_costs_no_export_per_call(monkeypatch):
    """A hook appending its output to a list the caller clears: a record of tensors, not a value the program reads."""
    m, feats = nn.Linear(4, 4), []
    m.register_forward_hook(lambda mod, args, out: feats.append(out) and None)
    x = torch.randn(2, 4)
    step = _compile(m, x)
    compile_module = sys.modules["runtime.aten.compile"]
    calls = []
    monkeypatch.setattr(compile_module, "load_program", lambda *a, **k: calls.append(a) or 1 / 0)
    for _ in range(3):
        m(x)
        feats.clear()
        assert torch.equal(step(x), m(x))
        feats.clear()
    assert not calls


@pytest.mark.parametrize("pre", [False, True])
def test_a_hook_writing_in_place_from_state_it_changes_is_refused_at_compile(pre):
    """Failed before: compiled, every compiled call scaled by the export's 1 (eager's second call by 2)."""
    m, n = nn.Linear(4, 4), [0]

    def hook(mod, args, out=None):
        n[0] += 1
        (args[0] if pre else out).mul_(n[0])

    (m.register_forward_pre_hook if pre else m.register_forward_hook)(hook)
    with pytest.raises(AtenExecutorError, match=r"a forward (pre-)?hook of Linear .*, writing what it was given in "
                                                r"place, changes its own Python state"):
        _compile(m, torch.randn(2, 4))
    assert n[0] == 1   # (the export's one call of the hook)


# --- modules held in list and dict attributes ----------------------------------------------------------------------


class _InList(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(4, 4)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class _InDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = {"a": nn.Linear(4, 4)}
        self.unused = {"b": []}

    def forward(self, x):
        for layer in self.layers.values():
            x = layer(x)
        return x


@pytest.mark.parametrize("change, message", [
    (lambda m: m.layers.append(nn.Linear(4, 4)), r"_InList.layers\[1\] holds an object it did not hold"),
    (lambda m: m.layers.__setitem__(0, nn.Linear(4, 4)), r"_InList.layers\[0\] holds another object"),
    (lambda m: setattr(m.layers[0], "weight", nn.Parameter(torch.randn(4, 4))),
     r"_InList.layers\[0\].weight holds another object"),
    (lambda m: setattr(m, "layers", [m.layers[0], nn.Linear(4, 4)]), r"_InList.layers\[1\]"),
])
def test_a_layer_added_to_a_list_attribute_after_compile_is_refused(change, message):
    """Failed before: every compiled call ran the export's one layer (eager two, or the new weight)."""
    m = _InList()
    x = torch.randn(2, 4)
    step = _compile(m, x)
    change(m)
    with pytest.raises(AtenExecutorError, match=message + r".*nn.ModuleList"):
        step(x)


def test_a_layer_added_to_a_dict_attribute_is_refused_and_an_unread_one_taken():
    m = _InDict()
    x = torch.randn(2, 4)
    step = _compile(m, x)
    m.unused["b"].append(nn.Linear(4, 4))   # (held, never called by forward: exported again, the same program)
    assert torch.equal(step(x), m(x))
    m.layers["b"] = nn.Linear(4, 4)
    with pytest.raises(AtenExecutorError, match=r"_InDict.layers\['b'\] holds an object it did not hold"):
        step(x)


def test_a_held_layer_put_in_eval_mode_or_given_a_hook_is_refused():
    """Failed before: the held layer's dropout (or its new hook) ran in eager only; the program ran the export's."""
    for change, message in ((lambda m: m.layers[0].eval(), r"_InList.layers\[0\] was put in eval mode"),
                            (lambda m: m.layers[0].register_forward_hook(lambda mod, a, out: out * 2),
                             r"the forward hooks of _InList.layers\[0\] changed")):
        m = _InList()
        m.layers = [nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))]
        x = torch.randn(2, 4)
        step = _compile(m, x)
        change(m)
        with pytest.raises(AtenExecutorError, match=message):
            step(x)


class _Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = {"enc": [nn.Linear(4, 4)]}
        self.table = [[i] for i in range(1000)]   # (plain values inside: one length per call, no walk)

    def forward(self, x):
        for layer in self.blocks["enc"]:
            x = layer(x)
        return x


def test_a_layer_appended_to_a_nested_list_is_refused():
    m = _Nested()
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert torch.equal(step(x), m(x))
    m.blocks["enc"].append(nn.Linear(4, 4))
    with pytest.raises(AtenExecutorError, match=r"_Nested.blocks\['enc'\]\[1\] holds an object it did not hold"):
        step(x)


def test_a_list_rebuilt_from_the_same_layers_is_taken():
    """A list built anew from the very layers (torchvision's ``cell_anchors`` pattern) is no change."""
    m = _InList()
    x = torch.randn(2, 4)
    step = _compile(m, x)
    m.layers = list(m.layers)
    assert torch.equal(step(x), m(x))


# --- lazy modules -------------------------------------------------------------------------------------------------


def test_a_lazy_module_before_its_first_call_is_refused_naming_it():
    """Failed before: torch's GraphError ("Attempted to use an uninitialized parameter ...") naming no layer."""
    m = nn.Sequential(nn.ReLU(), nn.LazyLinear(4))
    x = torch.randn(2, 4)
    with pytest.raises(AtenExecutorError, match=r"Sequential.1 \(LazyLinear\) has an uninitialised 'weight' .* call "
                                                r"the module once eagerly before compile"):
        _compile(m, x)
    m(x)   # (eager's first call materialises it)
    step = _compile(m, x)
    assert torch.equal(step(x), m(x))


# --- the walks' size bounds ---------------------------------------------------------------------------------------


class _Big(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.table = table

    def forward(self, x):
        return self.lin(x)


@pytest.mark.parametrize("table, where", [
    ([[0] for _ in range(2000)], r"_Big.table \(a list of 2000 items"),
    ([[[0] for _ in range(1000)] for _ in range(12)], r"_Big.table\[9\] \(the walk's bound of 10000 containers"),
])
def test_a_container_past_the_walks_bounds_is_named_at_compile(table, where):
    """Failed before: no word (a change inside compiled silently)."""
    with pytest.warns(StateWalkWarning, match=r"compile does not watch the containers inside " + where):
        _compile(_Big(table), torch.randn(2, 4))


def test_a_big_container_of_plain_values_draws_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", StateWalkWarning)
        _compile(_Big({str(i): i for i in range(5000)}), torch.randn(2, 4))
