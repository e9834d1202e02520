"""Round 77 (contract77): CONTRACT.md read clause by clause against the loader, the verifier and the plan writer;
the defects it found, each pinned by a test that fails without its fix."""

from __future__ import annotations

import copy

import pytest

import memplan
from memplan import GraphBuilder
from memplan.errors import PlanFormatError
from memplan.show import solver_claim_warnings


def _graph() -> memplan.Graph:
    b = GraphBuilder("g")
    x = b.input("x", 256)
    a = b.intermediate("a", 256)
    y = b.output("y", 256)
    b.node("n0", "OP", [x], [a])
    b.node("n1", "OP", [a], [y])
    return b.build()


def _plan_doc() -> dict:
    return {"format": "memplan.plan/1", "graph": "g", "alignment": 256, "arena_bytes": 512, "lower_bound_bytes": 512,
            "streams": 1, "order": [{"node": "n0", "stream": 0}, {"node": "n1", "stream": 0}], "events": [],
            "tensors": [{"id": "x", "offset": 0, "size": 256}, {"id": "a", "offset": 256, "size": 256},
                        {"id": "y", "offset": 0, "size": 256}]}


def _edit(doc: dict, path: tuple, value) -> dict:
    doc = copy.deepcopy(doc)
    at = doc
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = value
    return doc


@pytest.mark.parametrize("path, value, quoted", [
    (("tensors", 0, "offset"), True, "'offset' is not an integer within ±2**63 (true)"),
    (("order", 0, "stream"), None, "'stream' is not an integer within ±2**63 (null)"),
    (("tensors", 1, "size"), False, "'size' is not an integer within ±2**63 (false)"),
    (("order", 0, "node"), None, "order[0]: 'node' is not a string (null)"),
    (("events",), [{"after": True, "before": "n1"}], "events[0]: 'after' is not a string (true)"),
    (("devices",), None, "field 'devices' is not an integer in 1..1024 (null)"),
    (("device_arena_bytes",), [True], "field 'device_arena_bytes' is [true] in a one-device plan"),
    (("order", 0, "device"), None, "order entry 'n0' is on device null in a one-device plan"),
])
def test_a_plan_entry_quotes_a_json_word_as_the_file_writes_it(path, value, quoted):
    """A plan file's top-level fields are quoted in JSON's words (``field 'streams' is true``), but a value inside an
    entry (``"offset": true``, ``"device": null``) or the device fields were quoted in Python's: "'offset' is not an
    integer within ±2**63 (True)", "on device None", "[True]", none of which the file holds. Now ``true``, ``false``
    and ``null`` throughout."""
    with pytest.raises(PlanFormatError) as e:
        memplan.plan_from_dict(_edit(_plan_doc(), path, value))
    assert quoted in str(e.value), str(e.value)
    assert "True" not in str(e.value) and "None" not in str(e.value) and "False" not in str(e.value)


@pytest.mark.parametrize("bound, shown", [(1e300, "bound 1e+300 is above"), (600.5, "bound 600.5 is above"),
                                          (600.0, "bound 600 is above"), (600, "bound 600 is above")])
def test_a_bound_above_the_arena_is_flagged_as_written(bound, shown):
    """A solver block's ``bound`` above ``arena_bytes`` is a claim no found arena supports (``memplan verify`` and
    ``show`` warn). A bound of ``1e300`` was quoted as the 301 digits of the float's integer value, and one of
    ``600.5`` over an arena of 512 went unsaid (only whole numbers were compared). Each is flagged now, as written."""
    doc = _plan_doc()
    doc["solver"] = {"status": "OPTIMAL", "bound": bound}
    plan = memplan.plan_from_dict(doc)
    memplan.verify(_graph(), plan)   # safe all the same: the block is free-form
    found = solver_claim_warnings(plan)
    assert any(shown in w for w in found), found
    assert all(len(w) < 200 for w in found), found


def test_a_bound_at_or_below_the_arena_or_no_number_is_not_flagged():
    for bound in (512, 512.0, 100.5, True, "600", None):
        doc = _plan_doc()
        doc["solver"] = {"status": "OPTIMAL", "bound": bound}
        assert not any("is above arena_bytes" in w for w in solver_claim_warnings(memplan.plan_from_dict(doc))), bound
