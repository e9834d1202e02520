"""The pycuda runtime's host side on the CPU emulator and the fake driver, round 79: hostile arguments and plans
that were indexed or run as if they were sound (a wrong address, a misleading message, a silently wrong result);
each is now refused naming what is wrong, or runs as the serial numpy reference computes it."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan.errors import ExecutorError


def _add_graph() -> memplan.Graph:
    """x (arena) + w (a weight: its own root outside the arena) -> y."""
    b = memplan.GraphBuilder("add")
    b.input("x", 16, shape=[4], dtype="f32")
    b.weight("w", 16, shape=[4], dtype="f32")
    b.node("a", "ADD", ["x", "w"], b.output("y", 16, shape=[4], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("tid,arena_base,root_base,says", [
    ("x", 8192, {}, r"arena_base must be a mapping or list of each device's base, not int 8192 \(one device's "
                    r"base: \[8192\]\) \(tensor 'x'\)"),
    ("x", b"\x00", {}, r"arena_base must be .*, not bytes"),
    ("x", "8192", {}, r"arena_base must be .*, not str '8192'"),
    ("x", None, {}, r"arena_base must be .*, not NoneType"),
    ("w", [0], [4096], r"root_base must be a mapping of each own root's id to its base, not list \[4096\] "
                       r"\(tensor 'w'\)"),
    ("w", [0], 4096, r"root_base must be a mapping .*, not int 4096"),
])
def test_binding_address_names_a_base_container_of_the_wrong_kind(tid, arena_base, root_base, says):
    """``Binding.address(tid, arena_base, root_base)`` indexes ``arena_base`` by device and ``root_base`` by root id.
    One base where the container is expected (``arena_base=8192``) said "the arena of device 0, which arena_base gives
    no base" (as if a device were missing, round 78's leftover); bytes or a string were indexed regardless, so
    ``arena_base=b"\\x00"`` put the arena at address 0 and returned it silently, and ``"8192"`` complained about a
    str '8'; a list of root bases said the root was missing. Each now names the argument and what it must be."""
    from runtime.binding import bind

    g = _add_graph()
    b = bind(g, memplan.plan(g))
    with pytest.raises(ExecutorError, match=says):
        b.address(tid, arena_base, root_base)
    # the containers it takes still give the addresses
    off = b.places["x"].offset
    for bases in ([8192], (8192,), {0: 8192}, np.array([8192])):
        assert b.address("x", bases, 5) == 8192 + off   # (root_base is not read for an arena tensor)
    assert b.address("w", 5, {"w": 4096}) == 4096
