"""Round 51: the ``memplan`` command's hostile inputs and interrupts (``cli.py``, ``io``, ``files``, ``planfile``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "memplan")

# ---- Ctrl-C while the command imports the package ----------------------------------------------------------------

#: a ``sitecustomize`` that raises a real SIGINT at the SIG_K-th line run in file SIG_FILE (as ``sigint_lines``, but
#: from the interpreter's start: ``python -m memplan`` imports the package before any test code could run)
_SITE = """
import os, signal, sys
_k, _path, _seen = int(os.environ.get("SIG_K", "0")), os.environ.get("SIG_FILE", ""), [0]
def _trace(frame, event, arg):
    if frame.f_code.co_filename != _path:
        return None
    if event == "line":
        _seen[0] += 1
        if _seen[0] == _k:
            signal.raise_signal(signal.SIGINT)
    return _trace
if _path:
    sys.settrace(_trace)
"""

INTERRUPTED = "memplan: error: interrupted"

#: the first line of ``memplan/__init__.py`` a Ctrl-C is tried at. Why 2 on Python 3.10: there line 1's ``try:``
#: is an instruction (SETUP_FINALLY) after its "line" event, so this trace's SIGINT at line 1 is raised before the
#: ``try`` covers it; a real one is not: 3.10's eval loop runs no signal handler just before a SETUP_FINALLY. From
#: 3.11 the ``try`` costs no instruction, and line 1 is covered as it is.
_INIT_FIRST = 1 if sys.version_info >= (3, 11) else 2


@pytest.fixture(scope="module")
def site():
    folder = tempfile.mkdtemp(prefix="memplan-cli51-")
    with open(os.path.join(folder, "sitecustomize.py"), "w") as f:
        f.write(_SITE)
    with open(os.path.join(folder, "memplan"), "w") as f:   # (the console script pip writes, by its name)
        f.write("import sys\nfrom memplan.cli import main\nsys.exit(main())\n")
    yield folder
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _run(site: str, k: int, path: str, command: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, SIG_K=str(k), SIG_FILE=path, PYTHONPATH=os.pathsep.join([site, ROOT]))
    env.pop("PYTHONSTARTUP", None)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, *command], env=env, stdout=subprocess.PIPE, text=True, timeout=120,
                          **kw)


def _interrupted_everywhere(site: str, path: str, command: list[str], first: int = 1, every: int = 1,
                            start: int = 1) -> int:
    """Ctrl-C at each of lines 1 to ``first`` of ``path`` while ``command`` runs, then at every ``every``-th line,
    until a run ends without one; each must print the command's one line and exit 130 (no traceback, not killed by
    SIGINT), from line ``start``. The lines tried."""
    k = start
    while True:
        r = _run(site, k, path, command)
        if r.returncode == 0:
            return k
        assert (r.returncode, r.stderr.strip().splitlines()[-1:]) == (130, [INTERRUPTED]), (k, r.stderr)
        assert "Traceback" not in r.stderr, (k, r.stderr)
        k += 1 if k < first else every


def test_ctrl_c_at_any_line_of_the_packages_init_is_the_commands_one_line_and_130(site):
    """``python -m memplan`` imports the whole package first (numpy, ortools, the solvers: about a second); a
    Ctrl-C there was Python's KeyboardInterrupt traceback through importlib's frames, the process killed by SIGINT,
    where a Ctrl-C during the command is ``memplan: error: interrupted`` and exit 130."""
    assert _interrupted_everywhere(site, os.path.join(PKG, "__init__.py"), ["-m", "memplan", "--help"], 6, 3,
                                   _INIT_FIRST) > 15


def test_ctrl_c_in_the_modules_the_command_imports_and_in_its_script(site):
    """Deeper in the import (a module of the package, ``cli.py``'s own body and its unwinding of ``--help``'s
    SystemExit, ``__main__.py``) and through the ``memplan`` console script (``from memplan.cli import main``)."""
    for name, every in (("_interrupt.py", 17), ("cli.py", 97), ("__main__.py", 1)):
        _interrupted_everywhere(site, os.path.join(PKG, name), ["-m", "memplan", "--help"], 1, every)
    script = os.path.join(site, "memplan")
    for k in (_INIT_FIRST, 9):
        r = _run(site, k, os.path.join(PKG, "__init__.py"), [script, "--help"])
        assert (r.returncode, r.stderr.strip()) == (130, INTERRUPTED), r.stderr


def test_a_python_import_of_memplan_still_raises_keyboard_interrupt(site):
    """Only the command's process says one line and exits: a program's own ``import memplan`` keeps Python's
    KeyboardInterrupt (what it may catch), and a Ctrl-C after the import is Python's as before."""
    code = ("try:\n import memplan\nexcept KeyboardInterrupt:\n print('caught')\n"
            "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    r = _run(site, 9, os.path.join(PKG, "__init__.py"), ["-c", code])
    assert (r.returncode, r.stdout.split()) == (0, ["caught", "True"]), r.stderr
    r = _run(site, 0, "", ["-c", "import memplan, signal; print(signal.getsignal(signal.SIGINT) is "
                                "signal.default_int_handler)"])
    assert r.stdout.split() == ["True"], r.stderr


def test_ctrl_c_while_importing_keeps_the_line_out_of_an_input_stderr_is_appended_to(site):
    """``memplan plan G -o P 2>> G``: the command never writes its error line into its input; neither does a
    Ctrl-C that comes before the command runs."""
    folder = tempfile.mkdtemp(prefix="memplan-cli51-")
    graph = os.path.join(folder, "g.json")
    with open(graph, "w") as f:
        f.write("{}")
    with open(graph, "a") as err:
        r = _run(site, 9, os.path.join(PKG, "__init__.py"),
                 ["-m", "memplan", "plan", graph, "-o", os.path.join(folder, "p.json")], stderr=err)
    assert r.returncode == 130
    assert open(graph).read() == "{}"
    assert r.stdout.strip() == INTERRUPTED   # (a pipe here: the line goes there instead)


@pytest.mark.parametrize(("orig", "argv", "command"), [
    (["python", "-m", "memplan", "plan"], ["-m", "plan"], True),
    (["python", "-W", "ignore", "-X", "dev", "-m", "memplan"], ["-m"], True),
    (["python", "-Bmmemplan", "show", "p.json"], ["-m", "show", "p.json"], True),
    (["python", "-m", "memplan.cli", "-m"], ["-m", "-m"], True),
    (["python", "-m", "pytest", "-q"], ["-m", "-q"], False),
    (["python", "-m", "memplan.benchmarks.scale"], ["-m"], False),
    (["python", "-c", "import memplan"], ["-c"], False),
    (["python", "/venv/bin/memplan", "plan"], ["/venv/bin/memplan", "plan"], True),
    (["memplan.exe", "plan"], ["memplan.exe", "plan"], True),
    (["python", "x.py"], ["x.py"], False),
    (["python"], [], False),
])
def test_only_the_commands_process_takes_ctrl_c_over(monkeypatch, orig, argv, command):
    """Which processes ``_interrupt.hold`` sets its handler in: ``python -m memplan`` (any interpreter options before
    ``-m``, the module also in ``-m``'s cluster) or ``memplan.cli``, and the ``memplan`` script; not a program
    importing memplan (``pytest``, a benchmark module run with ``-m``, ``-c``)."""
    from memplan import _interrupt

    monkeypatch.setattr(sys, "orig_argv", orig)
    monkeypatch.setattr(sys, "argv", argv)
    assert _interrupt.command_process() is command


def test_main_called_from_python_leaves_sigint_alone(monkeypatch, capsys):
    """``cli.main`` from Python (a test, a notebook) never sets a SIGINT handler: ``rehold`` sets one only where
    ``hold`` did in this process."""
    import signal

    from memplan import cli

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert signal.getsignal(signal.SIGINT) is before
