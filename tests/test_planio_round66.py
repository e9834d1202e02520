"""Round 66 (planio): plan files, ``verify`` and the CLI against hostile inputs.

- A node of a multi-device plan on a device out of range (7 of 2, -1) is rule 1's finding alone: it was also read
  as on device 0, so every tensor of its own device it touched drew a false rule-4 finding ("node 'l1.norm' on
  device 0 accesses 'l1.xn' on device 1"), which the oracle (tests/oracle65.py) does not make.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from cli_contract import assert_bad_input, run_memplan
from oracle65 import findings

from memplan import plan_devices
from memplan.examples import LLAMA_TINY, llama
from memplan.verify import check


@pytest.fixture(scope="module")
def two_devices():
    return plan_devices(llama(LLAMA_TINY), 2)


@pytest.mark.parametrize("device", [7, 2, -1, -(2**62)])
def test_a_node_on_a_device_out_of_range_is_rule_1_alone(two_devices, device):
    """Each node of device 1 moved in turn to ``device``: one finding, rule 1, naming the node and the device; no
    rule-4 finding of a node on device 0 (it was one per tensor the node touches). The oracle's rules agree."""
    split, p = two_devices
    graph_doc = split.graph.to_dict()
    for k, d in enumerate(p.node_devices):
        if d != 1:
            continue
        nid = p.order[k][0]
        bad = dataclasses.replace(p, node_devices=p.node_devices[:k] + (device,) + p.node_devices[k + 1:])
        found = check(split.graph, bad)
        assert found == [(1, f"node {nid!r} runs on device {device}, outside 0..1")], found
        assert {r for r, _ in findings(graph_doc, bad.to_dict())} == {1}


def test_cli_names_the_node_of_an_out_of_range_device_in_one_line(tmp_path, capsys, two_devices):
    """``memplan verify`` of the file: exit 2, one line naming the node and its device, no word of device 0."""
    split, p = two_devices
    doc = p.to_dict()
    k = p.node_devices.index(1)
    doc["order"][k]["device"] = 7
    (tmp_path / "g.json").write_text(json.dumps(split.graph.to_dict()))
    (tmp_path / "p.json").write_text(json.dumps(doc))
    code, _out, err = run_memplan(capsys, ["verify", tmp_path / "g.json", tmp_path / "p.json"])
    assert_bad_input(code, err, f"node {p.order[k][0]!r} runs on device 7, outside 0..1")
    assert "device 0" not in err and "rule 4" not in err, err
