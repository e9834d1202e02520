"""The CLI's contract for bad input, checked the same way by every CLI test: exit code 2, exactly one
``memplan: error: ...`` line naming what was wrong, no traceback, and no temporary file left behind."""

from __future__ import annotations

import os


def assert_bad_input(code, err, *words):
    """``code``/``err`` of one run refused bad input with one error line that contains every word."""
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("memplan: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, err)


def exit_code(main, argv):
    """Run a CLI ``main`` in-process on ``argv`` (each item made a string): the code it returns, or the
    code of the ``SystemExit`` argparse raises for a usage error."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def run_memplan(capsys, argv):
    """``memplan argv`` in-process: (exit code, stdout, stderr)."""
    from memplan.cli import main

    code = exit_code(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_captured(*argv):
    """``memplan argv`` in-process with its output captured here, not by pytest's ``capsys`` (which a hypothesis test,
    run many times in one test function, cannot read per example): (exit code, stdout, stderr)."""
    import contextlib
    import io

    from memplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = exit_code(main, argv)
    return code, out.getvalue(), err.getvalue()


def run_tool(capsys, tool, argv):
    """``python -m tool argv`` (a runtime tool) in-process: (exit code, stderr)."""
    import importlib

    code = exit_code(importlib.import_module(tool).main, argv)
    return code, capsys.readouterr().err


def assert_tool_refused(code, err, *words):
    """A runtime tool refused bad input: exit code 2, one error line containing every word, no traceback."""
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


def leftovers(directory):
    """Temporary files an interrupted atomic write would leave in ``directory``."""
    return [f for f in os.listdir(directory) if f.startswith(".memplan-")]
