"""Round 71 (cli71): ``memplan verify``'s findings about missing nodes and tensors, and the temporary files of writes
killed where no signal can be held.

* "plan has no entry for graph node 'l1.mm_up' and 7 more" named one node of eight (the user put it back and was
  refused for the next); the verifier listed a missing node set as one finding and missing tensors one finding each.
  Now both name up to five ids and count the rest: "plan has no entry for 8 graph nodes: 'a', ..., 'e' and 3 more".
* A plan without an entry for an arena tensor had two findings for that one cause: "plan does not place tensor 'tl'"
  and "tensor 'tl' lives in the arena but has no offset". Now the first alone; an independent hazard (a root placed
  with ``offset: null``, an overlap of two live tensors) is still its own finding.
* ``memplan plan G -o out.json`` killed by SIGKILL between creating its temporary file and renaming it left
  ``.memplan-*.tmp`` beside the output for good. Temporary files now name their writer's pid
  (``.memplan-PID-XXXXXXXX.tmp``) and the next write into that folder removes those of dead writers that are over an
  hour old (``files.remove_stale_temporaries``), touching nothing else.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_contract import assert_bad_input, run_captured

import memplan
from memplan import examples, files
from memplan.errors import UnsafePlan, some_of
from memplan.verify import check

# ---------------------------------------------------------------------------------------------------------------------
# 1. missing nodes and tensors: named (up to five), the rest counted
# ---------------------------------------------------------------------------------------------------------------------


def _pair(tmp_path, graph, doc):
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(graph, str(gp))
    pp.write_text(json.dumps(doc))
    return str(gp), str(pp)


@pytest.fixture(scope="module")
def tiny():
    g = examples.bundled()["llama-tiny"]
    return g, memplan.plan(g).to_dict()


def test_some_of_names_five_and_counts_the_rest():
    assert some_of(["a"], "node") == "node 'a'"
    assert some_of(["a", "b"], "node") == "2 nodes: 'a', 'b'"
    assert some_of(list("abcdefgh"), "graph tensor") == "8 graph tensors: 'a', 'b', 'c', 'd', 'e' and 3 more"


def test_cli_names_the_missing_nodes(tmp_path, tiny):
    g, doc = tiny
    dropped = copy.deepcopy(doc)
    gone = [e["node"] for e in dropped["order"][-8:]]
    dropped["order"] = dropped["order"][:-8]
    code, _out, err = run_captured("verify", *_pair(tmp_path, g, dropped))
    # (it named the first and "and 7 more")
    assert_bad_input(code, err, "rule 1: plan has no entry for 8 graph nodes: "
                     + ", ".join(repr(n) for n in gone[:5]) + " and 3 more")
    assert err.count("more") == 1, err   # (counted once: no "; and 3 more" after it)
    # the library says the same, in its words, and counts each node
    dropped["graph"] = ""
    with pytest.raises(UnsafePlan, match=r"order is missing 8 nodes: .* and 3 more$") as info:
        memplan.verify(g, dropped)
    assert info.value.total == 8


def test_cli_names_the_missing_tensors(tmp_path, tiny):
    g, doc = tiny
    dropped = copy.deepcopy(doc)
    gone = [t["id"] for t in dropped["tensors"][:3]]
    dropped["tensors"] = dropped["tensors"][3:]
    code, _out, err = run_captured("verify", *_pair(tmp_path, g, dropped))
    assert_bad_input(code, err, "rule 4: plan does not place 3 graph tensors: " + ", ".join(map(repr, gone)))
    assert "more" not in err, err


# ---------------------------------------------------------------------------------------------------------------------
# 2. one cause, one finding; independent hazards kept
# ---------------------------------------------------------------------------------------------------------------------


def _diamond():
    g = examples.diamond()
    return g, memplan.plan(g).to_dict()


def test_an_unplaced_tensor_is_one_finding():
    g, doc = _diamond()
    doc["tensors"] = [t for t in doc["tensors"] if t["id"] != "tl"]
    found = check(g, doc)
    # (it was also "tensor 'tl' lives in the arena but has no offset": two findings, one cause)
    assert found == [(4, "plan does not place tensor 'tl'")] and found.total == 1


def test_many_unplaced_tensors_are_one_finding_counting_each():
    g, doc = _diamond()
    doc["tensors"] = [t for t in doc["tensors"] if t["id"] not in ("ta", "tl", "tr")]
    found = check(g, doc)
    assert found == [(4, "plan does not place 3 tensors: 'ta', 'tl', 'tr'")] and found.total == 3


def test_an_independent_hazard_beside_an_unplaced_tensor_is_still_reported():
    g, doc = _diamond()
    tensors = {t["id"]: t for t in doc["tensors"]}
    del tensors["tl"]
    tensors["tr"]["offset"] = None   # placed, with no offset: a finding of its own
    tensors["ta"]["offset"] = tensors["x"]["offset"]   # x and ta both live at node a: a rule-3 overlap
    doc["tensors"] = list(tensors.values())
    found = check(g, doc)
    assert (4, "plan does not place tensor 'tl'") in found
    assert (4, "tensor 'tr' lives in the arena but has no offset") in found
    assert any(r == 3 and "'x'" in m and "'ta'" in m for r, m in found), found
    assert not any("'tl' lives in the arena" in m for _, m in found), found


# ---------------------------------------------------------------------------------------------------------------------
# 3. temporary files of killed writers
# ---------------------------------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _old(path, seconds=2 * files.STALE_TEMPORARY_SECONDS):
    then = time.time() - seconds
    os.utime(path, (then, then))


def _killed_write(folder) -> str:
    """The temporary file a ``memplan plan -o`` left in ``folder`` when SIGKILL came between its write and rename."""
    g = folder / "g.json"
    memplan.save_graph(examples.diamond(), str(g))
    code = ("import os, signal, sys\n"
            "from memplan.cli import main\n"
            "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", code, "plan", str(g), "-o", str(folder / "p.json"), "-q"],
                       env=env, capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r
    left = [f for f in os.listdir(folder) if f.startswith(".memplan-")]
    assert len(left) == 1 and not (folder / "p.json").exists(), left
    return left[0]


def test_a_write_removes_the_temporary_file_a_killed_writer_left(tmp_path):
    left = _killed_write(tmp_path)
    assert files._OUR_TEMPORARY.fullmatch(left), left
    files.atomic_write_text(str(tmp_path / "other.json"), "{}")
    assert (tmp_path / left).exists()   # young: a writer this process cannot see may still be at work
    _old(tmp_path / left)
    code, _out, err = run_captured("plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "-q")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["g.json", "other.json", "p.json"]


def test_only_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = _dead_pid()
    stale = f".memplan-{dead}-abc_1234.tmp"
    keep = {
        f".memplan-{os.getpid()}-abcd1234.tmp": "this process's own (a staged block's file)",
        f".memplan-{os.getppid()}-abcd1234.tmp": "a live writer",
        ".memplan-abcd1234.tmp": "no pid: an older memplan's",
        f".memplan-{dead}-abcd1234.kept": "_keep's link",
        f".memplan-{dead}-abcd1234.tmp.bak": "another name",
        f"memplan-{dead}-abcd1234.tmp": "another name",
        f".memplan-{dead}-abc.tmp": "another name",
        "plan.json": "a user's file",
    }
    for name in [stale, *keep]:
        (tmp_path / name).write_text("x")
        _old(tmp_path / name)
    young = f".memplan-{dead}-young123.tmp"
    (tmp_path / young).write_text("x")
    link = f".memplan-{dead}-link1234.tmp"
    os.symlink("plan.json", tmp_path / link)
    os.utime(tmp_path / link, (0, 0), follow_symlinks=False)
    folder = f".memplan-{dead}-fold1234.tmp"
    (tmp_path / folder).mkdir()
    _old(tmp_path / folder)
    assert files.remove_stale_temporaries(str(tmp_path)) == [stale]
    assert sorted(os.listdir(tmp_path)) == sorted([*keep, young, link, folder])


def test_a_staged_blocks_own_temporaries_survive_a_cleaning_meanwhile(tmp_path):
    """A ``staged`` block holds its temporary files until it ends: a write inside it (or anyone) cleaning the folder
    never takes them, however old they look."""
    with files.staged():
        files.atomic_write_text(str(tmp_path / "a.json"), "{}")
        pending = [f for f in os.listdir(tmp_path) if f.startswith(".memplan-")]
        assert len(pending) == 1
        far = time.time() + 10 * files.STALE_TEMPORARY_SECONDS
        assert files.remove_stale_temporaries(str(tmp_path), now=far) == []
        files.atomic_write_text(str(tmp_path / "b.json"), "{}")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]


def test_cleaning_never_fails_a_write(tmp_path, monkeypatch):
    """An unreadable folder listing, a file gone meanwhile: the write goes on."""
    dead = _dead_pid()
    (tmp_path / f".memplan-{dead}-abcd1234.tmp").write_text("x")
    _old(tmp_path / f".memplan-{dead}-abcd1234.tmp")
    real_unlink = os.unlink

    def gone(path, *a, **k):   # (another cleaner took it first)
        if ".memplan-" in os.fspath(path) and f"-{dead}-" in os.fspath(path):
            real_unlink(path)
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "unlink", gone)
    files.atomic_write_text(str(tmp_path / "p.json"), "{}")
    assert sorted(os.listdir(tmp_path)) == ["p.json"]
    monkeypatch.setattr(os, "scandir", lambda d: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    files.atomic_write_text(str(tmp_path / "p.json"), "[]")
    assert (tmp_path / "p.json").read_text() == "[]"


# ---------------------------------------------------------------------------------------------------------------------
# 4. a document without a format field
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "show"])
def test_a_document_without_a_format_field_says_so(tmp_path, command):
    """``{"name": "x", "version": "1.0"}`` (a package.json given by mistake) was "unknown format None", as if the
    document had named a format called None."""
    doc = tmp_path / "package.json"
    doc.write_text('{"name": "x", "version": "1.0"}')
    argv = ["plan", str(doc), "-o", str(tmp_path / "p.json")] if command == "plan" else ["show", str(doc)]
    code, _out, err = run_captured(*argv)
    kind = "graph" if command == "plan" else "plan"
    assert_bad_input(code, err, f"package.json: no 'format' field (expected 'memplan.{kind}/1')")
    assert "None" not in err, err
    with pytest.raises(memplan.GraphError, match=r"^g: no 'format' field .*did you mean 'format'"):
        memplan.graph_from_dict({"Format": "memplan.graph/1", "tensors": [], "nodes": []}, source="g")


def test_a_leftover_given_as_an_input_is_not_removed(tmp_path):
    """Salvaging the plan a killed write left: ``memplan draw G .memplan-PID-XXXXXXXX.tmp -o map.svg`` (or any command
    writing beside it) must not remove the very file it reads, nor one read within the hour."""
    pytest.importorskip("matplotlib")
    g = examples.diamond()
    gp = tmp_path / "g.json"
    memplan.save_graph(g, str(gp))
    salvaged = tmp_path / f".memplan-{_dead_pid()}-abcd1234.tmp"
    salvaged.write_text(json.dumps(memplan.plan(g).to_dict()))
    _old(salvaged)
    code, _out, err = run_captured("draw", str(gp), str(salvaged), "-o", str(tmp_path / "map.svg"), "-q")
    assert code == 0, err
    assert salvaged.exists()   # (an input of the command, read just now)
    _old(salvaged)
    with files.inputs_kept([str(salvaged)]):   # (the command's inputs, whatever their times say)
        files.atomic_write_text(str(tmp_path / "x.json"), "{}")
    assert salvaged.exists()
    now = time.time()
    os.utime(salvaged, (now, now - 2 * files.STALE_TEMPORARY_SECONDS))   # (read just now, written long ago)
    files.atomic_write_text(str(tmp_path / "x.json"), "{}")
    assert salvaged.exists()   # (read within the hour: someone is at it)
    _old(salvaged)
    files.atomic_write_text(str(tmp_path / "x.json"), "{}")
    assert not salvaged.exists()
