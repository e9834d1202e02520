"""Round 78 (cli78): the ``memplan`` command under hostile use.

Why: the command's contract for a Ctrl-C is one line, ``memplan: error: interrupted``, and exit 130: no traceback,
whenever it comes (``memplan/_interrupt.py``). These tests pin the cases round 78 found broken."""

from __future__ import annotations

import datetime

from test_cli_round51 import _SITE, INTERRUPTED, _run


def test_ctrl_c_while_numpy_imports_datetime_is_one_line(tmp_path):
    """A Ctrl-C while ``import memplan`` runs numpy's C init, as it imports ``datetime`` (``PyCapsule_Import``): the
    handler's SystemExit became numpy's "ImportError: PyCapsule_Import could not import module "datetime"", with no
    trace of it, and the command printed the line and then that 40-line traceback ("IMPORTANT: PLEASE READ THIS ...
    bad install"), exit 130. Now the line alone (``_interrupt._silent_once_said``)."""
    (tmp_path / "sitecustomize.py").write_text(_SITE)
    r = _run(str(tmp_path), 1, datetime.__file__, ["-m", "memplan", "--version"], cwd=str(tmp_path))
    assert (r.returncode, r.stderr) == (130, INTERRUPTED + "\n"), r.stderr
