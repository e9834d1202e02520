"""Round 28 review (rev28c) of the hostile28b / left28a merges: regressions found in them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from memplan import GraphError, MemplanError, PlanFormatError, examples, plan_devices
from memplan.io.minimalloc import parse_csv, solve_table
from memplan.viz.trace import trace_events


def test_llama_takes_numpy_bools_as_before():
    """``llama(fuse_norms=np.True_)`` (a flag read from a numpy config) built the graph before the argument checks
    of round 28, which refused every flag but a Python bool; numpy's bool is a bool, as numpy ints are ints."""
    tiny = examples.LLAMA_TINY
    assert examples.llama(tiny, fuse_norms=np.True_).to_dict() == examples.llama(tiny).to_dict()
    assert examples.llama(tiny, fuse_norms=np.False_).to_dict() == examples.llama(tiny, fuse_norms=False).to_dict()
    got = examples.llama(tiny, fuse="runtime", f16_acts=np.True_)
    assert got.to_dict() == examples.llama(tiny, fuse="runtime", f16_acts=True).to_dict()
    with pytest.raises(GraphError, match="fuse_norms"):
        examples.llama(tiny, fuse_norms=1)


def test_solve_table_takes_a_numpy_bool_minimize():
    """``solve_table(..., minimize=np.True_)`` solved before round 28's check refused it."""
    table = parse_csv("id,lower,upper,size\na,0,2,4\nb,1,3,4\nc,3,4,8\n")
    assert solve_table(table, 64, minimize=np.True_).offsets.tolist() == \
        solve_table(table, 64, minimize=True).offsets.tolist()
    with pytest.raises(MemplanError, match="minimize"):
        solve_table(table, 64, minimize="yes")


@pytest.fixture(scope="module")
def split():
    split, p = plan_devices(examples.llama(examples.LLAMA_TINY), 2, solver="greedy")
    return split.graph, p


@pytest.mark.parametrize("field, value, match", [
    ("device_arena_bytes", (), "device_arena_bytes"),
    ("device_arena_bytes", (4096,), "device_arena_bytes"),
    ("tensor_devices", (), "tensor_devices"),
])
def test_pictures_of_a_split_plan_without_its_device_fields_name_them(split, field, value, match):
    """A split plan from code without a device arena each was a raw IndexError from ``render_memory_map`` (the
    per-device bands of round 28); one without a device per tensor drew every tensor in device 0's band and
    summed every device in device 0's live-bytes counter. Both are a PlanFormatError naming the field."""
    pytest.importorskip("matplotlib")
    from memplan.viz.memmap import render_memory_map

    graph, p = split
    bad = dataclasses.replace(p, **{field: value})
    with pytest.raises(PlanFormatError, match=match):
        render_memory_map(graph, bad, "png")
    with pytest.raises(PlanFormatError, match=match):
        trace_events(graph, bad)
    render_memory_map(graph, p, "png")   # the plan as made is drawn
