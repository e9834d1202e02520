"""Round 79, the Python API under hostile use: every mistake in a call of a public name is a ``memplan.errors``
exception naming what was wrong (README: ``OptionError`` for an unknown keyword, an option by position, or a
required argument left out or given twice), never Python's bare ``TypeError``.

Why these tests: ``Tensor``, ``Node`` and ``Event`` (the parts of every graph and schedule built in code) and the
result classes of ``memplan.__all__`` took a misspelt keyword (``Tensor("t", 8, view_offest=4)``) as a bare
TypeError naming no alternative, while ``Graph`` and ``Schedule`` named the field meant; and the torch importer's own
entry points (``memplan.importers.torch.from_torch``, ``trace_torch``) did the same for ``decompse=True``, where
``memplan.from_torch`` named ``decompose``; ``CostModel.node_us`` and ``HappensBefore.hb`` did the same for an
argument left out. And two silent ones: ``reuse_table`` of a set answered in the set's hash-seed order (another
table each run), and ``GraphBuilder``'s ``attrs={...}`` became one attribute named "attrs" that nothing reads.
"""

from __future__ import annotations

from collections.abc import Set

import handgraphs as H
import pytest
from needs import need

import memplan
from memplan.errors import OptionError


@pytest.mark.parametrize("make,typo,meant", [
    (lambda: memplan.Tensor("t", 8, view_offest=4), "view_offest", "view_offset"),
    (lambda: memplan.Tensor("t", 8, knd="input"), "knd", "kind"),
    (lambda: memplan.Node("a", "ADD", input=("x",)), "input", "inputs"),
    (lambda: memplan.Node("a", "ADD", in_place=()), "in_place", "inplace"),
    (lambda: memplan.Event("a", befor="b"), "befor", "before"),
])
def test_graph_and_schedule_parts_name_a_misspelt_keyword(make, typo, meant):
    t = memplan.Tensor("t", 8, kind="input", view_of=None, view_offset=0)   # (calls that bind: built as before)
    n = memplan.Node("a", "ADD", inputs=("t",), outputs=("y",))
    assert memplan.plan(memplan.Graph("g", (t, memplan.Tensor("y", 8, "output")), (n,))).arena_bytes == 264
    assert memplan.Event("a", "b") == memplan.Event(after="a", before="b")
    with pytest.raises(OptionError, match=f"unknown option '{typo}' \\(did you mean '{meant}'\\?\\)"):
        make()


@pytest.mark.parametrize("cls", [memplan.Tensor, memplan.Node, memplan.Event, memplan.HappensBefore,
                                 memplan.Simulation, memplan.DeviceSplit, memplan.Planned, memplan.Reuse])
def test_every_public_class_names_a_call_that_does_not_bind(cls):
    with pytest.raises(OptionError, match=f"{cls.__name__}\\(\\) got an unknown option 'zzbogus'"):
        cls(zzbogus=1)
    with pytest.raises(OptionError, match=f"{cls.__name__}\\(\\) needs argument"):
        cls()


@pytest.mark.parametrize("entry,typo,meant", [("from_torch", "decompse", "decompose"),
                                              ("trace_torch", "nme", "name")])
def test_torch_importer_entry_points_name_a_misspelt_keyword(entry, typo, meant):
    torch = need("torch")
    from memplan.importers import torch as importer

    with pytest.raises(OptionError, match=f"{entry}\\(\\) got an unknown option '{typo}' \\(did you mean '{meant}'"):
        getattr(importer, entry)(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), **{typo: True})


class _BackwardSet(Set):
    """A set that iterates its ids in the reverse of the order given: what a ``set`` of strings does, in some order
    that depends on the string hash seed, made the same in every run so the test is deterministic."""

    def __init__(self, ids):
        self._ids = list(dict.fromkeys(ids))

    def __contains__(self, x):
        return x in self._ids

    def __iter__(self):
        return iter(reversed(self._ids))

    def __len__(self):
        return len(self._ids)


def test_reuse_table_of_a_set_answers_in_the_graph_tensor_order():
    """A set has no order of its own: ``reuse_table(g, p, {"x", "q"})`` listed its answers in the set's iteration
    order, which changes with PYTHONHASHSEED, so the same call gave another table (and its JSON) in each run."""
    g = H.qkv()
    p = memplan.plan(g)
    ids = ["x", "q", "k", "v", "a"]   # (graph order)
    assert list(memplan.reuse_table(g, p, _BackwardSet(ids))) == ids
    assert list(memplan.ReuseIndex(g, p).table(_BackwardSet(ids))) == ids
    assert list(memplan.reuse_table(g, p, frozenset(ids))) == ids
    assert list(memplan.reuse_table(g, p, ids[::-1])) == ids[::-1]   # (a list keeps the caller's order)
    with pytest.raises(memplan.ScheduleError, match="no tensor 'nope1'"):
        memplan.reuse_table(g, p, _BackwardSet(["x", "nope1", "nope2"]))


@pytest.mark.parametrize("call", [
    lambda b: b.input("x", 8, attrs={"dtype": "f16"}),
    lambda b: b.weight("w", 8, attrs={"shape": [2, 2]}),
    lambda b: b.intermediate("t", 8, attrs={}),
    lambda b: b.output("y", 8, attrs={"dtype": "f32"}),
    lambda b: b.tensor("t", 8, "intermediate", attrs={"shape": [2]}),
    lambda b: b.view("v", "x", 8, attrs={"shape": [2]}),
    lambda b: b.node("mm", "MUL_MAT", ["x"], "y", attrs={"k": 1}),
])
def test_builder_refuses_attrs_given_as_one_keyword(call):
    """``Tensor(..., attrs={...})`` takes a mapping, the builder takes keywords: ``b.weight("w", n,
    attrs={"shape": [4096, 4096]})`` kept one attribute named "attrs", so the cost model read no shape (a 4096^3
    MUL_MAT simulated at 33.6 us of bytes instead of 343.6 us of flops) and an executor no dtype, silently."""
    b = memplan.GraphBuilder("b")
    b.input("x", 8)
    with pytest.raises(memplan.GraphError, match="attrs= is no keyword of the builder"):
        call(b)


def test_builder_attributes_reach_the_cost_model_only_as_keywords():
    size = 4096 * 4096 * 2
    b = memplan.GraphBuilder("mm")
    b.input("x", size)
    b.weight("w", size, shape=[4096, 4096])
    b.node("mm", "MUL_MAT", ["w", "x"], b.output("y", size, shape=[4096, 4096]))
    g = b.build()
    assert dict(g.tensors[1].attrs) == {"shape": [4096, 4096]}
    assert memplan.simulate(g, memplan.plan(g)).makespan_us == pytest.approx(2 * 4096 ** 3 / 4e8)   # (flops)
    with pytest.raises(memplan.GraphError, match="tensor 'w2': attrs= is no keyword"):
        b.weight("w2", size, attrs={"shape": [4096, 4096]})


@pytest.mark.parametrize("call,words", [
    (lambda hb, g: hb.hb(0), "HappensBefore.hb\\(\\) needs argument 'b'"),
    (lambda hb, g: hb.hb(0, 1, 2), "HappensBefore.hb\\(\\) takes at most 2"),
    (lambda hb, g: hb.hb(0, c=1), "HappensBefore.hb\\(\\) got an unknown option 'c'"),
    (lambda hb, g: hb.first_at_least(0, 0), "HappensBefore.first_at_least\\(\\) needs argument 'counts'"),
    (lambda hb, g: memplan.CostModel().node_us(g), "CostModel.node_us\\(\\) needs argument 'n'"),
    (lambda hb, g: memplan.CostModel().node_us(graph=g, node=0), "CostModel.node_us\\(\\) got an unknown option 'node'"),
])
def test_documented_methods_name_a_call_that_does_not_bind(call, words):
    """``CostModel.node_us(graph, n)`` (docs/scheduling.md: what a cost model plugs in) and ``HappensBefore.hb``
    named a bad index (``ScheduleError``) but took an argument left out or one too many as Python's bare
    TypeError, where the methods of ``Plan``, ``Graph`` and ``ReuseIndex`` name it (README: ``OptionError``)."""
    g = H.qkv()
    hb = memplan.build_happens_before(g, memplan.serial_schedule(g))
    assert hb.hb(0, 1) and not hb.hb(1, 0)   # (calls that bind: answered as before)
    assert memplan.CostModel().node_us(g, 0) == memplan.CostModel().node_us(graph=g, n=0) > 0
    with pytest.raises(OptionError, match=words):
        call(hb, g)
