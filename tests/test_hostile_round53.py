"""Round 53's hostile review of the public API and the CLI: inputs earlier rounds left untried."""

from __future__ import annotations

import os
import shutil

import pytest
from cli_contract import assert_bad_input, run_memplan


def _problem_folder(tmp_path, minimalloc_dir, link) -> str:
    """A minimalloc folder holding problem A and a second name for the same file (``link``: symlink or hard)."""
    chal = tmp_path / "mm" / "challenging"
    chal.mkdir(parents=True)
    shutil.copy(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv"), chal / "A.1048576.csv")
    if link == "symlink":
        os.symlink("A.1048576.csv", chal / "Z.1048576.csv")
    else:
        os.link(chal / "A.1048576.csv", chal / "Z.1048576.csv")
    return str(tmp_path / "mm")


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_bench_refuses_a_minimalloc_problem_linked_under_two_names(tmp_path, capsys, minimalloc_dir, link):
    # Z.1048576.csv -> A.1048576.csv ran the one problem twice, as rows A and Z (each a full solve), exit 0
    folder = _problem_folder(tmp_path, minimalloc_dir, link)
    code, out, err = run_memplan(capsys, ["bench", "planners", "--minimalloc", folder, "--corpus", "minimalloc",
                                          "--solvers", "greedy"])
    assert_bad_input(code, err, "A.1048576.csv", "Z.1048576.csv", "one file", "--only")
    assert out == ""   # refused before the table begins


def test_bench_runs_one_name_of_a_linked_problem_picked_with_only(tmp_path, capsys, minimalloc_dir):
    folder = _problem_folder(tmp_path, minimalloc_dir, "symlink")
    code, out, err = run_memplan(capsys, ["bench", "planners", "--minimalloc", folder, "--corpus", "minimalloc",
                                          "--solvers", "greedy", "--only", "Z"])
    assert code == 0, err
    rows = [line.split()[1] for line in out.splitlines() if line.startswith("minimalloc ")]
    assert rows == ["Z"]
