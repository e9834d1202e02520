"""Round 36b review: warm starts of numpy integers that numpy's promotion reads as floats, ``files.staged``'s
renames that fail midway."""
from __future__ import annotations

import re

import pytest

import memplan


def _two_buffers():
    import numpy as np

    from memplan.problem import BufferProblem

    return BufferProblem(sizes=np.array([16, 16]), lower=np.array([0, 0]), upper=np.array([1, 1]), alignment=16)


def _solve(offsets, arena, solver="search"):
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    return solve(_two_buffers(), solver, SolveOptions(warm_start=Solution(offsets, arena, "mine"), time_limit=0.1))


def _mixed():
    import numpy as np

    return [np.int64(0), np.uint64(16)]


def _uint_and_plain():
    import numpy as np

    return [np.uint64(0), 16]


@pytest.mark.parametrize("make", [_mixed, _uint_and_plain], ids=["int64+uint64", "uint64+int"])
@pytest.mark.parametrize("solver", ["search", "cpsat"])
def test_a_warm_start_list_of_numpy_integers_numpy_promotes_to_float_is_taken(make, solver):
    """numpy reads [np.int64(0), np.uint64(16)] (and [np.uint64(0), 16]) as float64: the integers were refused as
    "its offsets are float64 [0.0, 16.0], not integers"."""
    assert _solve(make(), 32, solver).arena == 32


@pytest.mark.parametrize("offsets", [[0, 2 ** 64], [0, 2 ** 63], "uint64"], ids=["2**64", "2**63", "uint64-2**63"])
def test_a_warm_start_offset_past_int64_is_refused_naming_it(offsets):
    """2**64 raised a raw OverflowError, 2**63 was called "float64 ... not integers", and a uint64 2**63 wrapped
    around to "placed '1' at negative offset -9223372036854775808"."""
    import numpy as np

    if offsets == "uint64":
        offsets = np.array([0, 2 ** 63], dtype=np.uint64)
    with pytest.raises(memplan.SolverError, match=r"^warm_start is no packing of this problem: its offset \d+ "
                                                  r"\(buffer #1\) is outside int64"):
        _solve(offsets, 32)


def _second_rename_fails(monkeypatch, target_name: str) -> None:
    """``os.replace`` of a temporary file onto ``target_name`` fails (EACCES), as a rename midway may (the folder's
    permissions changed, the target became a directory meanwhile); every other rename runs."""
    import errno
    import os

    real = os.replace

    def replace(src, dst, *a, **k):
        if os.path.basename(str(dst)) == target_name and ".memplan-" in os.path.basename(str(src)):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("existed", [True, False], ids=["over-old-files", "new-files"])
def test_a_staged_rename_that_fails_midway_leaves_every_output_as_it_was(tmp_path, monkeypatch, existed):
    """``staged``: a rename that failed after an earlier one had replaced its file left that file replaced (the new
    split graph beside the old plan), what staging was for; now the earlier ones are undone."""
    from memplan import files

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    if existed:
        a.write_text("old a")
        b.write_text("old b")
    _second_rename_fails(monkeypatch, "b.json")
    with pytest.raises(memplan.MemplanError, match=r"^cannot write .*b\.json: Permission denied"):
        with files.staged():
            files.atomic_write_bytes(str(a), b"new a")
            files.atomic_write_bytes(str(b), b"new b")
    if existed:
        assert (a.read_text(), b.read_text()) == ("old a", "old b")
    else:
        assert not a.exists() and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["a.json", "b.json"] if existed else [])


def test_a_staged_block_that_succeeds_leaves_no_backup(tmp_path):
    from memplan import files

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("old a")
    with files.staged():
        files.atomic_write_bytes(str(a), b"new a")
        files.atomic_write_bytes(str(b), b"new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_a_staged_rename_that_fails_without_hard_links_keeps_the_new_file(tmp_path, monkeypatch):
    """Where no link can be kept (a file system without hard links), the earlier output is left new, not removed."""
    import os

    from memplan import files

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("old a")
    _second_rename_fails(monkeypatch, "b.json")

    def no_link(*_a, **_k):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    with pytest.raises(memplan.MemplanError, match=rf"cannot write {re.escape(str(b))}"):
        with files.staged():
            files.atomic_write_bytes(str(a), b"new a")
            files.atomic_write_bytes(str(b), b"new b")
    assert a.read_text() == "new a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_nested_staged_block_that_fails_writes_none_of_its_files(tmp_path):
    """A nested block whose exception its caller catches: its files were renamed with the outer block's anyway
    (the inner block's "otherwise none is" broken), and the outer block's own writes must still land."""
    from memplan import files

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with files.staged():
        files.atomic_write_bytes(str(a), b"new a")
        with pytest.raises(KeyError):
            with files.staged():
                files.atomic_write_bytes(str(b), b"new b")
                raise KeyError("b")
    assert a.read_text() == "new a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("tail, said", [
    ("/x/", "plan.json is not a directory"),
    ("/x/y/", "no directory plan.json/x (plan.json is not a directory)"),
    ("/", "a file path may not end with a slash (plan.json is a file)"),
], ids=["file-then-missing-slash", "deeper", "file-slash"])
def test_an_input_path_through_a_file_ending_in_a_slash_names_the_file(tmp_path, monkeypatch, tail, said):
    """``plan.json/x/`` was refused as "a file path may not end with a slash (plan.json/x is a file)": there is no
    plan.json/x; plan.json is the file in the way."""
    from memplan import load_plan

    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(memplan.MemplanError, match="^" + re.escape(f"plan.json{tail}: {said}") + "$"):
        load_plan("plan.json" + tail)
