"""Round 53b: graph fields that were silently ignored or normalised where CONTRACT.md gives them no meaning.

Each case is refused with a ``GraphError`` naming the tensor or node and the field; the cases the contract does give a
meaning (a ``view_offset`` of 0 or null beside no ``view_of``: no offset, tests/test_hostile_round18.py) still load.
"""

from __future__ import annotations

import pytest

import memplan


def test_builder_view_with_no_parent_is_refused():
    # view("v", None, ...) built a root tensor of its own (view_of None, offset 0), without a word: the node writing
    # "v" then wrote a buffer apart from the tensor the caller meant it to alias (a KV-cache slot never updated)
    b = memplan.GraphBuilder("g")
    b.input("x", 256)
    with pytest.raises(memplan.GraphError, match=r"view 'v': parent \(view_of\) is None"):
        b.view("v", None, 256, 0)


def test_builder_view_with_a_parent_still_builds():
    b = memplan.GraphBuilder("g")
    b.input("x", 256)
    b.view("v", "x", 128, 128, kind="input")
    b.node("m", "OP", ["v"], b.output("y", 256))
    g = b.build()
    assert (g.tensor("v").view_of, g.tensor("v").view_offset) == ("x", 128)
