"""Round 35 review (runtime side): an output viewing an input no node reads, and an in-place node whose copied
input another of its inputs runs past (the other side: test_review_round35a_memplan.py).

- ``o`` ``view_of`` input ``x`` with no node reading ``x``: the executors now copy only the inputs some node
  reads into the arena, and ``x`` was left out: ``o`` read back the arena's poison (zeros under the fake
  driver) where the emulator, which writes every input, gave ``x``;
- ``MUL(a, b)`` with ``inplace {y: b}``, ``b`` = r[0, 1024) and ``a`` = r[256, 1280) of one root, ``y`` planned
  over ``a``'s bytes (a verified plan): ``b`` is copied to scratch and every read pointer into it sent to the
  copy, ``a``'s too, which then read 256 bytes past the copy's end (the emulator refused the launch; a GPU
  reads whatever lies there).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import memplan
from runtime.emulate import emulate


def _output_view_of_unread_input():
    return memplan.graph_from_dict({"format": "memplan.graph/1", "name": "ov", "tensors": [
        {"id": "x", "size": 16, "kind": "input", "attrs": {"dtype": "f32", "shape": [4]}},
        {"id": "b", "size": 16, "kind": "input", "attrs": {"dtype": "f32", "shape": [4]}},
        {"id": "o", "size": 16, "kind": "output", "view_of": "x", "view_offset": 0,
         "attrs": {"dtype": "f32", "shape": [4]}},
        {"id": "y", "size": 16, "kind": "output", "attrs": {"dtype": "f32", "shape": [4]}}],
        "nodes": [{"id": "add", "op": "ADD", "inputs": ["b", "b"], "outputs": ["y"]}]})


def test_an_output_viewing_an_input_no_node_reads_reads_back_the_input(monkeypatch):
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g = _output_view_of_unread_input()
    p = memplan.plan(g)
    x, b = np.arange(4, dtype=np.float32) + 1, np.ones(4, dtype=np.float32)
    ex = Executor(g, p, inputs={"x": x, "b": b})
    ex.run()
    assert np.array_equal(ex.read("o"), x)
    assert np.array_equal(emulate(g, p, {}, {"x": x, "b": b})[0]["o"], x)
    ex.free()


def test_an_input_an_output_views_is_needed_given():
    from runtime.binding import bind, read_inputs

    g = _output_view_of_unread_input()
    assert read_inputs(g, bind(g, memplan.plan(g))) == {"x", "b"}


def _overlapping_halves():
    return memplan.graph_from_dict({"format": "memplan.graph/1", "name": "halves", "tensors": [
        {"id": "r", "size": 1280, "kind": "input", "attrs": {"dtype": "f32", "shape": [320]}},
        {"id": "a", "size": 1024, "kind": "intermediate", "view_of": "r", "view_offset": 256,
         "attrs": {"dtype": "f32", "shape": [256]}},
        {"id": "b", "size": 1024, "kind": "intermediate", "view_of": "r", "view_offset": 0,
         "attrs": {"dtype": "f32", "shape": [256]}},
        {"id": "y", "size": 1024, "kind": "output", "attrs": {"dtype": "f32", "shape": [256]}}],
        "nodes": [{"id": "mul", "op": "MUL", "inputs": ["a", "b"], "outputs": ["y"], "inplace": {"y": "b"}}]})


def test_an_input_running_past_the_copied_in_place_partner_is_read_from_a_copy_too():
    g = _overlapping_halves()
    p = memplan.plan(g)
    over_a = replace(p, tensors=tuple((t, 256 if t == "y" else o, s) for t, o, s in p.tensors),
                     arena_bytes=max(p.arena_bytes, 1280))
    memplan.verify(g, over_a)   # the contract allows it: mul is r's last access and y's producer
    r = np.arange(320, dtype=np.float32) + 1
    for plan in (p, over_a):
        for seed in (None, 1):
            got = emulate(g, plan, {}, {"r": r}, seed=seed)[0]["y"]
            assert np.array_equal(got, r[64:] * r[:256])


def test_the_copies_of_one_node_are_disjoint_and_cover_every_overlapping_input():
    from runtime.kernels.registry import _staged_spans

    assert _staged_spans([(0, 1024)], [(256, 1280), (0, 1024)]) == [(0, 1280)]
    assert _staged_spans([(0, 8), (100, 108)], [(0, 8), (4, 104), (100, 108)]) == [(0, 108)]
    assert _staged_spans([(0, 8), (100, 108)], [(0, 8), (100, 108), (200, 300)]) == [(0, 8), (100, 108)]
