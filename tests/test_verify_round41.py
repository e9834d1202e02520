"""Round 41: the verifier against hostile split plans, and against an independent oracle
(tests/verify41_oracle.py, written from CONTRACT.md and docs/format.md alone) on library plans and
mutations of them."""

from __future__ import annotations

import json

import pytest

import memplan
from memplan import UnsafePlan, examples
from memplan.cli import main
from memplan.io import save_graph


def _chain_split() -> memplan.Planned:
    return memplan.plan_graph(examples.chain(4), devices=2)


def _copy_pulled(planned: memplan.Planned) -> dict:
    """chain4's split plan with its COPY (t1 on device 0 -> t1@dev1) issued on device 1's stream, after an event
    from t1's producer: every happens-before the contract asks for holds, but the COPY runs on the destination,
    not on its source's device as docs/format.md says memplan issues it (a push)."""
    doc = planned.plan.to_dict()
    k = next(i for i, e in enumerate(doc["order"]) if e["node"] == "copy:t1@dev1")
    assert doc["order"][k] == {"node": "copy:t1@dev1", "stream": 0, "device": 0}
    doc["order"][k] = {"node": "copy:t1@dev1", "stream": 1, "device": 1}
    doc["events"] = [{"after": "op1", "before": "copy:t1@dev1"}]
    return doc


def test_a_copy_on_another_device_than_its_source_is_refused():
    planned = _chain_split()
    with pytest.raises(UnsafePlan) as e:
        memplan.verify(planned.graph, memplan.plan_from_dict(_copy_pulled(planned)))
    msg = str(e.value)
    assert "'copy:t1@dev1'" in msg and "device 1" in msg and "'t1'" in msg and "device 0" in msg


def test_a_copy_on_another_device_is_refused_by_the_cli(tmp_cwd, capsys):
    planned = _chain_split()
    save_graph(planned.graph, "s.json")
    with open("p.json", "w") as f:
        json.dump(_copy_pulled(planned), f)
    assert main(["verify", "s.json", "p.json"]) == 2
    err = capsys.readouterr().err
    assert "copy:t1@dev1" in err and "Traceback" not in err


def test_the_library_split_plan_still_passes():
    planned = _chain_split()
    memplan.verify(planned.graph, planned.plan)
