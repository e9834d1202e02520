"""A Ctrl-C before the ``memplan`` command's ``main`` runs: one line and exit 130, as a Ctrl-C during the command.

Why: ``python -m memplan`` and the ``memplan`` script import the whole package (its eager imports: numpy, ortools,
the solvers; a second or more on a loaded machine) before ``cli.main`` is running to catch a KeyboardInterrupt, and a
Ctrl-C there printed Python's traceback (through importlib's frames) and killed the process by SIGINT, where one
during the command prints ``memplan: error: interrupted`` and exits 130. The package's ``__init__`` calls ``hold``
first, which, in the command's process only, sets a SIGINT handler that says so and exits 130; ``cli.main`` puts
Python's own handler back (``release``) once it can catch the KeyboardInterrupt itself. A Python caller's
``import memplan`` keeps Python's handler: a KeyboardInterrupt is what a program importing a library expects.

Standard library only, and imported first: nothing of memplan may run before the handler is in place.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import stat
import sys
from collections.abc import Callable

#: the exit code of a command stopped by Ctrl-C (``cli.main``'s, the shell's 128 + SIGINT)
EXIT_INTERRUPTED = 130
#: the line ``cli.main`` prints for a Ctrl-C (``argtypes.print_error("interrupted")``)
LINE = "memplan: error: interrupted\n"
#: the modules ``python -m`` runs as the command (``memplan/__main__.py``, ``cli.py``'s own ``__main__`` block)
COMMAND_MODULES = ("memplan", "memplan.__main__", "memplan.cli")


def command_process() -> bool:
    """Whether this process runs the ``memplan`` command: the ``memplan`` script (``sys.argv[0]``, or a link to it), or ``python -m
    memplan`` while Python locates the module (``sys.argv[0]`` is then ``-m``; the module named is the argument of
    the interpreter's command line, ``sys.orig_argv``, just before the command's own ``sys.argv[1:]``)."""
    argv = sys.argv
    if not argv:
        return False
    if _script_name(str(argv[0])) == "memplan":
        return True
    orig = getattr(sys, "orig_argv", None) or []
    if argv[0] != "-m" or len(orig) < len(argv):
        return False
    token = str(orig[len(orig) - len(argv)])
    if token.startswith("-"):   # (``-mmemplan``, ``-Bmmemplan``: the module written in the option's cluster)
        token = token[1:].partition("m")[2]
    return token in COMMAND_MODULES


def _script_name(path: str) -> str:
    """The name of the script ``path`` runs, less the suffixes of the script's names on Windows: its own name, else
    (a symbolic link of another name: ``ln -s /venv/bin/memplan ~/bin/mp``) the name of the file it links to. Why
    the link's target: run as ``mp``, the command's process was taken for a program importing memplan, and a Ctrl-C
    while the package imported was Python's traceback."""
    names = [os.path.basename(path)]
    if path not in ("-c", "-m", "") and os.path.islink(path):
        with contextlib.suppress(OSError, ValueError):
            names.append(os.path.basename(os.path.realpath(path)))
    for name in names:
        for suffix in (".exe", "-script.py"):   # (the script's names on Windows)
            name = name.removesuffix(suffix)
        if name == "memplan":
            return name
    return names[0]


#: whether ``hold`` set the handler in this process (``rehold`` sets it again only then)
_held: list[bool] = []


def hold() -> None:
    """In the command's process, where SIGINT still has Python's own handler (not ignored, as in a background job,
    nor one of a program's own), set ``_interrupted`` in its place until ``release``."""
    if command_process():
        _set(signal.default_int_handler, _interrupted)
        catch_unraisable()
        if not getattr(sys.excepthook, "_memplan", False):
            sys.excepthook = _silent_once_said(sys.excepthook)
        # atexit calls the callbacks last-registered first: ours runs last unless one was registered before memplan
        # was imported (a sitecustomize's, a wrapper script's own), which ``_end_at_exit`` must then not cut off
        if not _first:   # (once a process: a second ``cli.main`` in it registered again, and the copy run first
            _first.append(not atexit._ncallbacks())   # took memplan's own earlier callback for a user's one)
            atexit.register(_end_at_exit)


def _silent_once_said(previous: Callable) -> Callable:
    """``sys.excepthook`` for the command's process: ``previous``, except where ``_say_and_exit`` has said the line
    (the process is ending with 130 from there), where the exception is what became of its SystemExit and is not
    printed. Why: a C extension's init turns the SystemExit raised in it into an exception of its own, with no trace
    of it: a Ctrl-C while numpy's ``_multiarray_umath`` imported ``datetime`` (``import memplan``, under ``hold``)
    became "ImportError: PyCapsule_Import could not import module "datetime"", and the command printed the line and
    then numpy's 40-line traceback ("IMPORTANT: PLEASE READ THIS ... bad install"), for a Ctrl-C."""

    def hook(exc_type, exc, tb) -> None:
        if not _said:
            previous(exc_type, exc, tb)

    hook._memplan = True   # type: ignore[attr-defined]
    return hook


#: whether ``_say_and_exit`` said the line in this process (nothing the process prints after it is the command's)
_said: list[bool] = []


#: whether ``_end_at_exit`` was the first ``atexit`` callback registered (so the last called), once ``hold`` registered it
_first: list[bool] = []


def _end_at_exit() -> None:
    """The process's end once every ``atexit`` callback has run (this one, registered first, runs last): stdout and
    stderr flushed and ``os._exit`` with the command's code; where callbacks registered before it follow, a guard
    they all run before (``_LastFlush``). Why: after the callbacks Python's finalization puts
    SIGINT's default action back (``_PySignal_Fini``) and then collects garbage and tears the modules down (numpy's,
    tens of ms on a loaded machine); a Ctrl-C landing there killed the process by SIGINT (status -2, the shell's 130
    without the line). Up to here ``_interrupted`` handles one (the line and 130); nothing after this is the
    command's work: every output was renamed into place before ``cli.main`` returned. Only where the command's code
    is known (``ended``) and the std streams flush: else Python ends the process as it would (a traceback's 1, a
    failed flush's 120)."""
    if not _ended:
        return
    if take_pending():   # (a Ctrl-C in a callback after ``cli.main`` returned: the line and 130, as ``_exit_now``)
        _exit_now()
    if not (_first and _first[-1]):
        # callbacks registered before memplan's run after this one: ending here skipped them (the user's handler of a
        # wrapper script that calls ``cli.main``), and registering none left the teardown unguarded (a SIGINT there
        # killed the process, status -2); the guard waits for Python's flush of the std streams, after every callback
        name = "stdout" if sys.stdout is not None else "stderr"
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _LastFlush):
            setattr(sys, name, _LastFlush(stream))
        return
    for out in (sys.stdout, sys.stderr):
        if out is not None:
            try:
                out.flush()
            except Exception:   # (Python's own flush reports it as it does: not ours to hide)
                return
    os._exit(_ended[-1])


class _LastFlush:
    """``sys.stdout`` (or ``sys.stderr`` where there is no stdout) from ``_end_at_exit`` on, where ``atexit`` callbacks
    registered before memplan's run after it: the stream itself to every reader and writer (attributes passed
    through), whose ``flush``, called once Python is finalizing (``flush_std_files``: after the last callback and
    before ``_PySignal_Fini`` puts SIGINT's default action back), makes SIGINT ignored, which ``_PySignal_Fini`` leaves
    as it is. So the teardown cannot be killed by a Ctrl-C, and the process ends as Python ends it, with the status
    the program gave (a wrapper may map ``cli.main``'s code), after every callback; during those, ``_interrupted``
    still holds SIGINT (the line and 130). A failing flush raises, as the stream's own does (Python's exit 120)."""

    def __init__(self, stream) -> None:
        object.__setattr__(self, "_stream", stream)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._stream, name, value)

    def flush(self) -> None:
        self._stream.flush()
        if sys.is_finalizing():
            with contextlib.suppress(ValueError):   # (finalizing runs on the main thread: never raised there)
                signal.signal(signal.SIGINT, signal.SIG_IGN)


def catch_unraisable() -> Callable[[], None]:
    """Route a Ctrl-C that lands in code Python cannot raise from (a weakref callback, a ``__del__``, a garbage
    collection) to the command, instead of Python's "Exception ignored in: ..." traceback that swallows it. Why: a
    SIGINT while ``planfile``'s weakref callback (``_mark_checked.<locals>.forget``) ran, as ``memplan plan`` wrote a
    10 MB plan, printed that traceback and the command went on and exited 0: the Ctrl-C lost, a raw traceback shown.
    Now the interrupt is delivered again to the main thread (``_thread.interrupt_main``) as soon as the callback
    returns: a KeyboardInterrupt the command catches (``memplan: error: interrupted``, 130, nothing half-written
    left), or ``_interrupted``'s line and 130 outside the command. The SystemExit ``_say_and_exit`` raises inside
    such a callback (the line said) ends the process with 130 at once, as ``_exit_now`` does. Set once; other
    unraisable exceptions go to the hook that was there.

    Returns what puts that hook back (``cli.main`` calls it as it returns; a no-op where nothing was set here). Why:
    ``cli.main`` called in-process (a wrapper script, a notebook, the test suite) left the hook set for the rest of
    the process, so a KeyboardInterrupt in one of the *program's* own ``__del__`` long after the command was over was
    re-sent as a SIGINT 10 ms later into whatever code ran then (Python reports and ignores it), and a later
    ``__del__`` raising SystemExit(130) after a command that ended with 130 killed the process (``os._exit``). In the
    command's own process ``hold`` sets it for good (``_end_at_exit`` takes a Ctrl-C after ``cli.main`` returned).
    Only from the main thread: a Ctrl-C is handled there, so one in a callback is another thread's command's only if
    that command runs on the main thread (a ``cli.main`` on a worker thread made the main thread's Ctrl-Cs its own)."""
    import threading

    if getattr(sys.unraisablehook, "_memplan", False) or threading.current_thread() is not threading.main_thread():
        return _keep
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, KeyboardInterrupt):
            try:
                _redeliver()
            except KeyboardInterrupt:   # (a second Ctrl-C while here: the one delivery covers both)
                pass
            return
        if isinstance(exc, SystemExit) and exc.code == EXIT_INTERRUPTED and _ended and _ended[-1] == EXIT_INTERRUPTED:
            _exit_now()
        previous(unraisable)

    hook._memplan = True   # type: ignore[attr-defined]
    sys.unraisablehook = hook

    def put_back() -> None:
        if sys.unraisablehook is hook:   # (not a hook someone set over ours since: theirs stays)
            sys.unraisablehook = previous

    return put_back


def _keep() -> None:
    """``catch_unraisable``'s undoing where it set nothing."""


#: a Ctrl-C the unraisable hook took that ``_redeliver``'s thread has not delivered yet
_pending: list[bool] = []


def take_pending() -> bool:
    """Whether a Ctrl-C the unraisable hook took is still to be delivered; it is then the caller's (one taker only:
    ``list.pop`` is atomic). Why: a command that returns within the redelivery's 10 ms (the Ctrl-C landed in a
    callback at its very end) would end with 0 and say nothing; ``cli.main`` and ``_end_at_exit`` take it there."""
    try:
        return _pending.pop()
    except IndexError:
        return False


def _redeliver() -> None:
    """SIGINT again for the main thread, from a helper thread once the unraisable hook has returned: a signal tripped
    from the hook itself is handled inside the hook (Python checks for pending signals after each builtin call), where
    the KeyboardInterrupt would be swallowed once more. Where no thread can start (Python finalizing), nothing: the
    command is over, and its outputs were renamed into place before it returned."""
    import _thread
    import threading
    import time

    def later() -> None:
        time.sleep(0.01)   # (the main thread is out of the hook long before: it holds the GIL till then)
        if take_pending():   # (not where the command's end took it first)
            with contextlib.suppress(Exception):
                _thread.interrupt_main(signal.SIGINT)

    _pending.append(True)

    with contextlib.suppress(RuntimeError):
        threading.Thread(target=later, name="memplan-sigint", daemon=True).start()


def release() -> None:
    """Python's own SIGINT handler back where ``hold`` set ``_interrupted`` (``cli.main``, as its command starts: from
    there a Ctrl-C is a KeyboardInterrupt, which stops a solve at its best plan so far and removes what a half-done
    command made)."""
    _set(_interrupted, signal.default_int_handler)


def rehold() -> None:
    """``_interrupted`` again once the command is over (``cli.main``; only where ``hold`` set it before): a Ctrl-C
    while ``main`` returns, or unwinds the SystemExit of ``--help`` or a usage error, is one line too."""
    if _held:
        _set(signal.default_int_handler, _interrupted)


def _set(was, handler) -> None:
    """SIGINT's handler to ``handler`` where it is ``was``."""
    with contextlib.suppress(ValueError):   # (not the main thread: signals are not ours to set)
        if signal.getsignal(signal.SIGINT) is was:
            signal.signal(signal.SIGINT, handler)
            if handler is _interrupted:
                _held.append(True)


def interrupted_before_hold() -> None:
    """A KeyboardInterrupt that came before ``hold`` set the handler (the first lines of ``memplan/__init__.py``):
    in the command's process, the line and exit 130 as ``_interrupted`` does; elsewhere nothing (it is re-raised)."""
    if command_process():
        _say_and_exit()


#: the codes ``cli.main`` returned in this process (``ended``): the last one is the command's exit code
_ended: list[int] = []


def ended(code: int) -> None:
    """``cli.main`` is returning ``code``: a Ctrl-C from here to the process's end that comes while Python shuts down
    says the line only where the command has not said it already (``_exit_now``)."""
    _ended.append(code)


def _interrupted(signum: int, frame: object) -> None:
    """The SIGINT handler while the command's modules are imported, and once the command is over."""
    if _shutting_down(frame):
        _exit_now()
    _say_and_exit()


def _shutting_down(frame) -> bool:
    """Whether the signal came while Python shuts down, the program's own code over: the outermost frame is not the
    program's (the ``__main__`` module's code, or ``runpy``'s for ``python -m``) but one Python calls on its way out
    (``threading._shutdown``, an ``atexit`` callback: ``cpsat``'s waits up to 30 s for a solve a second Ctrl-C left
    running), or there is none. Why: the SystemExit ``_say_and_exit`` raises there cannot end the process; Python
    printed "Exception ignored in: <module 'threading'>" and its traceback after the line, and exited 0."""
    outer = frame
    while outer is not None and getattr(outer, "f_back", None) is not None:
        outer = outer.f_back
    return outer is None or getattr(outer, "f_globals", {}).get("__name__") not in ("__main__", "runpy")


def _exit_now() -> None:
    """The process's end for a Ctrl-C while Python shuts down: the line (unless the command ended by saying it: exit
    130 already), what stdout and stderr hold flushed, and exit 130 at once (``os._exit``: what Python had left to do
    on its way out is cleanup; every output was renamed into place before the command returned)."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    stream = _error_stream()
    for out in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if out is not None:
                out.flush()
    if stream is not None and not (_ended and _ended[-1] == EXIT_INTERRUPTED):
        with contextlib.suppress(OSError, ValueError):
            stream.write(LINE)
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def _say_and_exit() -> None:
    """``memplan: error: interrupted`` (where ``cli.main`` would put it) and SystemExit 130: no traceback (Python
    prints none for a SystemExit), and the importing stops where it was."""
    with contextlib.suppress(ValueError):   # a second Ctrl-C while the line is written is not a traceback either
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    stream = _error_stream()
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(LINE)
            stream.flush()
    _said.append(True)
    ended(EXIT_INTERRUPTED)   # (the process's code: ``_end_at_exit`` ends with it, the line said)
    raise SystemExit(EXIT_INTERRUPTED)


def _error_stream():
    """stderr, unless it is redirected to a regular file the command line names (``plan G -o P 2>> G``), or standard
    input's (``< G 2>> G``): then stdout where that is no regular file, else nowhere; as ``cli._error_not_on_stderr``
    does, which keeps the error line out of the input it would be appended to."""
    err = sys.stderr
    if err is None:
        return None
    own = _regular_file(err)
    if own is None or not _names_file(own):
        return err
    out = sys.stdout
    return out if out is not None and _regular_file(out) is None else None


def _regular_file(stream) -> tuple[int, int] | None:
    """(device, inode) of the regular file ``stream`` writes to, or None (a terminal, a pipe, no descriptor)."""
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _names_file(file: tuple[int, int]) -> bool:
    """Whether an argument of the command line (or an option's ``=VALUE``), or standard input, is the file ``file``."""
    if sys.stdin is not None and _regular_file(sys.stdin) == file:
        return True
    for token in sys.argv[1:]:
        token = str(token)
        for path in (token, token.partition("=")[2] if token.startswith("-") else ""):
            if not path or path == "-":
                continue
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            if (st.st_dev, st.st_ino) == file:
                return True
    return False


def raise_if_interrupted(exc: BaseException) -> None:
    """Raise KeyboardInterrupt where ``exc``, an import's failure, came of a Ctrl-C: a C extension whose module init
    runs Python code hands a KeyboardInterrupt raised there on as an ImportError (pybind11's "initialization failed",
    OR-Tools' ``cp_model_helper``, onnx's and onnxruntime's bindings; numpy's "IMPORTANT: PLEASE READ THIS ..."), the
    KeyboardInterrupt its ``__cause__`` or ``__context__``. Why: memplan imports those lazily inside a command, and
    takes an import that fails for a missing (or broken) package: a Ctrl-C in the window of ``cp_model_helper``'s init
    was ``memplan plan --solver cpsat``'s "needs OR-Tools, which does not import (ImportError: initialization
    failed)", exit 2, and ``auto`` with ``--time-limit`` went on with ``search`` as if no Ctrl-C had come."""
    pending, seen = [exc], set()
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        seen.add(id(e))
        pending += [e.__cause__, e.__context__]
