"""Round 35 (hostile): the library's own writes and messages, where the CLI's checks do not run first."""

from __future__ import annotations

import os

import pytest

import memplan
from memplan.errors import MemplanError
from memplan.examples import diamond


@pytest.mark.parametrize("name", ["out/", ".", "out/.", "link", "link/"])
def test_saving_over_a_directory_says_it_is_one(tmp_path, monkeypatch, name):
    """``save_plan(plan, "out/")`` of a directory said "cannot write out/: Not a directory" (the rename's error), and
    ``save_plan(plan, ".")`` "Device or resource busy"; the CLI's own check says "is a directory"."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("out")
    os.symlink("out", "link")
    g = diamond()
    p = memplan.plan(g)
    for save in (lambda path: memplan.save_plan(p, path), lambda path: memplan.save_graph(g, path)):
        with pytest.raises(MemplanError, match=r"^cannot write .*: is a directory$"):
            save(name)
    assert sorted(os.listdir(".")) == ["link", "out"] and os.listdir("out") == []


@pytest.mark.parametrize("name", ["new/", "plan.json/"])
def test_saving_to_a_path_ending_in_a_slash_says_so(tmp_path, monkeypatch, name):
    """``plan.json/`` beside a file ``plan.json`` said "Not a directory", ``new/`` "No such file or directory"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(MemplanError, match="a file path may not end with a slash"):
        memplan.save_plan(memplan.plan(diamond()), name)
    assert sorted(os.listdir(".")) == ["plan.json"] and (tmp_path / "plan.json").read_text() == "{}"


NFC, NFD = "t\u00e9", "te\u0301"   # 'té' composed, and as e with a combining accent: they print alike


def _accented() -> tuple[memplan.Graph, dict]:
    """A graph whose tensor 'ta' and node 'l' are named 'té' (composed), and its plan's document."""
    import json

    doc = json.loads(json.dumps(diamond().to_dict()).replace('"ta"', f'"{NFC}"').replace('"l"', f'"{NFC}"'))
    g = memplan.graph_from_dict(doc)
    return g, json.loads(memplan.plan(g).to_json())


def _renamed(doc, old: str, new: str) -> dict:
    import json

    return json.loads(json.dumps(doc, ensure_ascii=False).replace(f'"{old}"', f'"{new}"'))


@pytest.mark.parametrize("what", ["tensors", "order", "events"])
def test_an_id_in_another_unicode_form_is_told_apart(what):
    """A plan edited by a tool that normalises text to NFD named 'té' (decomposed): "plan places tensor 'té', which
    graph does not have" beside "does not place tensor 'té'" read as a contradiction; the note spells both."""
    g, doc = _accented()
    if what == "events":
        doc["streams"] = 2
        doc["order"] = [{"node": e["node"], "stream": int(e["node"] == NFC)} for e in doc["order"]]
        doc["events"] = [{"after": NFC, "before": "j"}, {"after": "a", "before": NFC}]
    part = _renamed(doc[what], NFC, NFD)
    plan = memplan.plan_from_dict({**doc, what: part})
    with pytest.raises(memplan.UnsafePlan) as e:
        memplan.verify(g, plan)
    assert "'te\\u0301': the graph's 't\\xe9' in another Unicode normalization form" in str(e.value)
    from memplan.planfile import plan_mismatches

    assert any("another Unicode normalization form" in m for _, m in plan_mismatches(g, plan))


def test_a_graph_reading_a_tensor_in_another_unicode_form_says_so():
    g, _ = _accented()
    doc = g.to_dict()
    doc["nodes"][2]["inputs"] = [NFD]   # (node 'r' reads 'té')
    with pytest.raises(memplan.GraphError, match="in another Unicode normalization form"):
        memplan.graph_from_dict(doc)
    doc["nodes"][2]["inputs"] = ["t\u00e8"]   # (another id: no note)
    with pytest.raises(memplan.GraphError) as e:
        memplan.graph_from_dict(doc)
    assert "Unicode" not in str(e.value)


def test_an_alignment_option_past_the_total_limit_names_itself():
    """``plan(g, alignment=2**48)`` of 2**15 one-byte roots at the graph's alignment 1 comes to 2**63 bytes: the
    refusal said "the tensors' sizes add up to ... (rounded up to the alignment)", naming neither the graph nor the
    alignment, which was the option's, not the graph's (the CLI's line named no file either)."""
    b = memplan.GraphBuilder("ones", alignment=1)
    for k in range(1 << 15):
        b.input(f"x{k}", 1)
    b.tensor("y", 1, kind="output")
    b.node("n", "OP", ["x0"], ["y"])
    g = b.build()
    with pytest.raises(memplan.GraphError, match=r"^graph 'ones' at alignment 281474976710656 \(its own is 1\): the "
                       r"tensors' sizes add up to \d+ bytes \(each rounded up to the alignment 281474976710656\)"):
        memplan.plan(g, alignment=1 << 48)


@pytest.mark.parametrize("edit,field", [
    (lambda d: d.update(device_arena_bytes=[5]), "'device_arena_bytes' is [5]"),
    (lambda d: d.update(devices=1, device_arena_bytes=[d["arena_bytes"], 0]), "'device_arena_bytes' is ["),
    (lambda d: [e.update(device=1) for e in d["order"]], "order entry 'a' is on device 1"),
    (lambda d: d["tensors"][-1].update(device=2), "tensors entry 'y' is on device 2"),
])
def test_a_one_device_plan_with_contradicting_device_fields_is_refused(edit, field):
    """A plan file without ``devices`` (one device) whose entries say device 1, or whose ``device_arena_bytes`` says
    an arena of 5 bytes, was read as if they were not there: verify said "safe" of a file that tells an executor
    reading them another device or a 5-byte arena, and a load and save dropped them unsaid."""
    import json

    doc = json.loads(memplan.plan(diamond()).to_json())
    edit(doc)
    with pytest.raises(memplan.PlanFormatError, match="one-device plan"):
        memplan.plan_from_dict(doc)
    assert field in str(pytest.raises(memplan.PlanFormatError, memplan.plan_from_dict, doc).value)


def test_a_one_device_plan_with_agreeing_device_fields_is_read():
    """A tool that writes the device fields for every plan (device 0, one arena) is read as the one device."""
    import json

    p = memplan.plan(diamond())
    doc = json.loads(p.to_json())
    doc.update(devices=1, device_arena_bytes=[p.arena_bytes])
    for e in doc["order"] + doc["tensors"]:
        e["device"] = 0
    assert memplan.plan_from_dict(doc) == p
