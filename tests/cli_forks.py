"""``python -m memplan ARGV`` with its real standard streams, without a fresh interpreter per command.

Why: most CLI tests look at what the command does with its stdin, stdout and stderr as files, pipes and links
(``2>> G``, ``> P 2>&1``, ``< G``) and at its exit status, not at the interpreter starting; a subprocess per
command spent most of its CPU importing the package again (numpy, ortools, the solvers). Here one interpreter
per test process imports memplan once (``server``); each command then runs in a process forked from it, which
receives the caller's file descriptors (``socket.send_fds``) on 0, 1 and 2, runs ``cli.main`` as
``memplan/__main__.py`` does (``sys.argv`` as ``python -m`` sets it), flushes its streams and exits with the
command's status. So each command still has its own process, its own fds and its own exit status (a signal's
negative one as ``subprocess``'s), and nothing of one command is left in the next.

Not for what the interpreter itself is the point of: a Ctrl-C or hang-up (this process never ran ``hold``), a
failing flush at exit (this one reports 1 with the traceback, not Python's 120), import side effects, an
environment other than ``ENV`` (``PYTHONIOENCODING``, a locale): those tests keep ``subprocess``.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import selectors
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}

_SERVER = r"""
import json, os, socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
import memplan.cli  # noqa: the one import every command shares
main_path = os.path.join(os.path.dirname(memplan.cli.__file__), "__main__.py")
while True:
    try:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 3)
    except OSError:
        break
    if not msg:
        break
    req = json.loads(msg)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sock.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            os.environ.update(req["env"])
            os.chdir(req["cwd"])   # (the caller's, as a subprocess started now would have)
            sys.argv = [main_path, *req["argv"]]
            try:
                code = memplan.cli.main()
            except SystemExit as exc:
                code = exc.code
            code = 0 if code is None else code if isinstance(code, int) else 1
            for out in (sys.stdout, sys.stderr):
                out.flush()
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    sock.sendall(json.dumps(os.waitstatus_to_exitcode(status)).encode() + b"\n")
"""


class _Server:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(theirs.fileno())], env=ENV,
                                     pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.reply = ours.makefile("rb")

    def close(self) -> None:
        self.reply.close()
        self.sock.close()
        self.proc.wait(timeout=30)


@functools.cache
def server() -> _Server:
    s = _Server()
    atexit.register(s.close)
    return s


def _fd(spec, default: int, write: bool, opened: list[int], pipes: dict, name: str) -> int:
    """The descriptor a stream spec gives the command (``subprocess``'s specs: DEVNULL, PIPE, None, a file, an int)."""
    if spec is None:
        return default
    if spec == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR)
        opened.append(fd)
        return fd
    if spec == subprocess.PIPE:
        r, w = os.pipe()
        pipes[name] = r if write else w
        opened.append(w if write else r)
        return w if write else r
    return spec if isinstance(spec, int) else spec.fileno()


def memplan_cli(argv, *, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                cwd=None, input: bytes | None = None, text: bool = False,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m memplan argv`` as ``subprocess.run`` would run it (bytes, or ``text`` as its ``text=True`` decodes
    them; the same stream specs, ``stderr`` also ``subprocess.STDOUT``): the CompletedProcess. ``env``: variables
    set in ``ENV`` for this command, only such as are read once the command runs (``MPLCONFIGDIR``: matplotlib is
    imported by the command), never the interpreter's own (``PYTHON*``: read at its start, which is shared)."""
    assert not any(k.startswith("PYTHON") for k in env or {}), "an interpreter's variable: use subprocess"
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv]
    opened: list[int] = []
    pipes: dict[str, int] = {}
    try:
        fds = [_fd(subprocess.PIPE if input is not None else stdin, 0, False, opened, pipes, "stdin"),
               _fd(stdout, 1, True, opened, pipes, "stdout")]
        fds.append(fds[1] if stderr == subprocess.STDOUT else _fd(stderr, 2, True, opened, pipes, "stderr"))
        s = server()
        socket.send_fds(s.sock, [json.dumps({"argv": argv, "cwd": os.getcwd() if cwd is None else os.fspath(cwd),
                                                    "env": dict(env or {})}).encode()],
                        fds)
    finally:
        for fd in opened:
            os.close(fd)
    got = {"stdout": b"", "stderr": b""}
    if "stdin" in pipes:
        with open(pipes.pop("stdin"), "wb") as w:
            try:
                w.write(input)
            except BrokenPipeError:
                pass
    with selectors.DefaultSelector() as sel:
        for name, fd in pipes.items():
            sel.register(fd, selectors.EVENT_READ, name)
        while sel.get_map():
            events = sel.select(timeout)
            if not events:
                raise subprocess.TimeoutExpired(argv, timeout)
            for key, _ in events:
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    got[key.data] += chunk
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
    s.sock.settimeout(timeout)
    line = s.reply.readline()
    if not line:
        raise RuntimeError("the memplan fork server ended")
    out = {name: (_text(data) if text else data) for name, data in got.items()}
    return subprocess.CompletedProcess(argv, json.loads(line), out["stdout"] if stdout == subprocess.PIPE else None,
                                       out["stderr"] if stderr == subprocess.PIPE else None)


def _text(data: bytes) -> str:
    """``data`` as ``subprocess.run(..., text=True)`` reads it: the locale's encoding, universal newlines."""
    import io
    import locale

    return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False)).read()
