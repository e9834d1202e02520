"""Round 37 (hostile): a plan entry's misspelt key, and a misspelt ``format`` key, are named in the refusal.

Round 36 named a plan document's misspelt top-level fields (``"evnets"``); a misspelt key inside an ``order``,
``events`` or ``tensors`` entry (``"nod"``, ``"ofset"``, a split plan's ``"deivce"``) and a ``"Format"`` key in
either document were refused with no word of the key that was there."""

from __future__ import annotations

import copy

import pytest

import memplan
from memplan.errors import GraphError, PlanFormatError
from memplan.examples import diamond, moe
from memplan.graph import graph_from_dict
from memplan.planfile import plan_from_dict


def _plan_doc(**kw) -> dict:
    g = moe() if kw else diamond()
    return memplan.plan(g, **kw).to_dict()


@pytest.mark.parametrize("key, field, typo", [("order", "node", "nod"), ("order", "stream", "steam"),
                                              ("events", "after", "afetr"), ("events", "before", "befor"),
                                              ("tensors", "id", "Id"), ("tensors", "offset", "ofset"),
                                              ("tensors", "size", "szie")])
def test_a_misspelt_key_of_a_plan_entry_is_named(key, field, typo):
    doc = copy.deepcopy(_plan_doc(streams=2))
    entry = doc[key][-1]
    entry[typo] = entry.pop(field)
    with pytest.raises(PlanFormatError, match=f"{key}\\[{len(doc[key]) - 1}\\] has no '{field}'; note: the entry has "
                                              f"'{typo}' \\(did you mean '{field}'\\?\\)"):
        plan_from_dict(doc)


@pytest.mark.parametrize("key, name", [("order", "node"), ("tensors", "id")])
def test_a_split_plan_entry_without_its_device_is_named(key, name):
    """It said "... in every order and tensor entry (missing 'device')", naming no entry."""
    doc = copy.deepcopy(_plan_doc(devices=2))
    entry = doc[key][-1]
    entry["deivce"] = entry.pop("device")
    with pytest.raises(PlanFormatError, match=f"{key}\\[{len(doc[key]) - 1}\\] \\({name} '{entry[name]}'\\) has none; "
                                              "note: the entry has 'deivce'"):
        plan_from_dict(doc)


@pytest.mark.parametrize("read, doc", [(graph_from_dict, lambda: diamond().to_dict()), (plan_from_dict, _plan_doc)])
def test_a_misspelt_format_key_is_named(read, doc):
    d = doc()
    d["Format"] = d.pop("format")
    with pytest.raises((GraphError, PlanFormatError), match="note: the document has 'Format' \\(did you mean 'format'"):
        read(d)


def test_an_entry_with_its_field_and_an_extra_key_has_no_note():
    doc = _plan_doc()
    doc["tensors"][0]["nod"] = 1   # (an unknown key beside every field: ignored, as the contract says)
    assert plan_from_dict(doc).tensors == plan_from_dict(_plan_doc()).tensors
