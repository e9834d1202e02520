"""Round 50 review: what a caller of the public API gets on bad input (a memplan error naming the culprit, not a
bare KeyError from inside) and the type hints of the public entry points."""

from __future__ import annotations

import inspect

import pytest

import memplan
from memplan.errors import ExecutorError, MemplanError
from memplan.examples import qkv_attention
from runtime.binding import bind


@pytest.fixture(scope="module")
def bound():
    graph = qkv_attention()
    plan = memplan.plan(graph, streams=3)
    return graph, bind(graph, plan)


def test_address_of_an_unknown_tensor_names_it(bound):
    """``Binding.address`` (README, "Driving your own executor") raised a bare ``KeyError('nope')``."""
    _graph, b = bound
    with pytest.raises(ExecutorError, match=r"address: .*no tensor 'nope'"):
        b.address("nope", [0], {})


def test_address_of_a_root_without_a_base_names_the_root_and_the_tensor(bound):
    """A weight (a root outside the arena) whose base the caller left out was a bare ``KeyError('wq')``: it did not
    say that the missing key was a root base, nor which tensor asked for it."""
    graph, b = bound
    own = next(t.id for t in graph.tensors if not b.places[t.id].in_arena)
    root = b.places[own].root
    with pytest.raises(ExecutorError, match=rf"address: tensor '{own}'.*root '{root}'.*root_base"):
        b.address(own, [0], {})


def test_address_of_a_device_without_an_arena_base_names_the_device(bound):
    """An arena tensor with no base for its device: a bare ``IndexError``/``KeyError`` before."""
    graph, b = bound
    inside = next(t.id for t in graph.tensors if b.places[t.id].in_arena)
    for bases in ([], {}):
        with pytest.raises(ExecutorError, match=rf"address: tensor '{inside}'.*device 0.*arena_base"):
            b.address(inside, bases, {})


def test_address_still_adds_the_offset_to_the_base(bound):
    graph, b = bound
    roots = {b.places[t.id].root: 1 << 30 for t in graph.tensors if not b.places[t.id].in_arena}
    for t in graph.tensors:
        p = b.places[t.id]
        want = ((1 << 20) if p.in_arena else (1 << 30)) + p.offset
        assert b.address(t.id, [1 << 20], roots) == want
        assert b.address(t.id, {0: 1 << 20}, roots) == want


def test_every_public_function_is_fully_annotated():
    """Each callable ``memplan.__all__`` exports says what it takes and returns (``cost_model``, ``progress`` and
    ``plan_devices``' result were untyped)."""
    unannotated = []
    for name in memplan.__all__:
        obj = getattr(memplan, name)
        if inspect.isclass(obj) or not callable(obj):
            continue
        sig = inspect.signature(obj)
        unannotated += [f"{name}({p.name})" for p in sig.parameters.values() if p.annotation is p.empty]
        if sig.return_annotation is sig.empty:
            unannotated.append(f"{name} -> ?")
    assert unannotated == []


def test_executor_error_is_a_memplan_error():
    assert issubclass(ExecutorError, MemplanError)
