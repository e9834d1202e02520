"""Files in and out: atomic writes, bounded reads of regular files, and "is this output an input?".

Why a module of its own: the plan document (planfile.py), the graph/plan/CSV readers (io/) and the
pictures (viz/) all write files, and the CLI must refuse an output that would overwrite one of its
inputs. Keeping these few functions below everything else (they import only ``errors``, and numpy) lets
every writer share one code path without import cycles. The JSON nesting limit (``MAX_JSON_DEPTH``,
``json_depth``) lives here too: the readers refuse deeper files and the writers never write one.

Guarantees: an output is written to a temporary file beside it, fsynced and renamed over it, so a
failed or interrupted run never leaves a half-written file; an output that is a symlink has its target
rewritten that way (the link stays, as with a shell redirection; a SIGTERM, SIGHUP or Ctrl-C during the write
takes effect right after it: ``signals_held``), and an output that is a FIFO, a device
or an existing read-only file is refused,
never replaced by a file (the path ``-`` is standard output, as in
``memplan plan GRAPH -o -``: the whole document in one write once it is complete; ``./-`` names a file);
a reader accepts only regular files of at most ``MAX_FILE_BYTES`` (a FIFO, ``/dev/zero`` or a 100 GB file is refused, never read forever),
and reads them without blocking (``/proc/kmsg`` is a "regular" file whose read waits).

A write killed where no signal can be held (SIGKILL, a power cut) leaves its temporary file,
``.memplan-PID-XXXXXXXX.tmp``; the next write into that folder removes it once its writer's process is
gone and the file was last written and read over an hour ago, and it is no input of the running command
(``remove_stale_temporaries``); it touches nothing else.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

import numpy as np

from .errors import MemplanError, short_repr

#: the largest input file memplan reads (graph or plan JSON, minimalloc CSV): 1 GiB
MAX_FILE_BYTES = 1 << 30
#: arrays and objects nested deeper than this are refused in a JSON input (graph and plan documents need
#: about 5), and never written (a file memplan wrote must load back)
MAX_JSON_DEPTH = 64


def atomic_write_text(path: str, text: str) -> None:
    """``text`` as UTF-8 (``atomic_write_bytes``); a lone surrogate, which no UTF-8 holds (``"\\ud800"`` from
    code), is a MemplanError naming the path, before anything is written (a raw UnicodeEncodeError before)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = "to stdout" if is_stdout(path) else output_path(path)
        raise MemplanError(f"cannot write {where}: the text holds {short_repr(text[exc.start:exc.end])} at character "
                           f"{exc.start}, which UTF-8 cannot encode (a lone surrogate)") from None
    atomic_write_bytes(path, data)


#: the output path that means standard output
STDOUT = "-"


def is_stdout(path) -> bool:
    """Whether an output ``path`` is standard output: the string ``-`` only (a ``Path("-")`` names a file)."""
    return isinstance(path, str) and path == STDOUT


#: the signals that end the process by default and that a write holds back while a temporary file of ours exists:
#: ``kill``/``timeout`` (SIGTERM), a terminal or ssh session that closed (SIGHUP), Ctrl-\\ (SIGQUIT)
HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


class Held:
    """What ``signals_held`` yields: ``deliver`` takes a Ctrl-C that came meanwhile now (where a block wants it before
    a point of no return: a rename), and ``let_through`` runs a part of the block in which a Ctrl-C acts at once."""

    def __init__(self) -> None:
        self.sigint = None   # the SIGINT handler put aside while Ctrl-C is deferred (None: it is not)
        self.came_int: list = []   # the frames deferred Ctrl-Cs came in
        self.came: list[int] = []   # the terminating signals held back, in the order they came

    def _defer(self, signum, frame) -> None:
        self.came_int.append(frame)

    def _hold(self, signum, frame) -> None:
        self.came.append(signum)

    def deliver(self) -> None:
        """A deferred Ctrl-C, now: its handler run (Python's raises KeyboardInterrupt); nothing where none came."""
        if self.came_int and self.sigint is not None:
            frame = self.came_int[0]
            self.came_int.clear()
            self.sigint(signal.SIGINT, frame)

    @contextlib.contextmanager
    def let_through(self) -> Iterator[None]:
        """Ctrl-C as it was before the block (one that came while it was deferred taken first), for this part:
        ``staged``'s writes, which an interrupted block discards whole. Deferred again after."""
        if self.sigint is None:
            yield
            return
        try:
            signal.signal(signal.SIGINT, self.sigint)
            self.deliver()
            yield
        finally:
            signal.signal(signal.SIGINT, self._defer)


@contextlib.contextmanager
def signals_held() -> Iterator[Held]:
    """The block runs to its end whatever signal comes, and the signal takes effect the moment it is over: a write's
    temporary file is renamed or removed first, and the bookkeeping of ``staged`` is never left halfway.

    - SIGTERM, SIGHUP and SIGQUIT (``HELD_SIGNALS``) where they have their default disposition: held, and once the
      block is over the process dies of them as before (``timeout``/``kill``, a closed terminal, Ctrl-\\ during a write
      left ``.memplan-*.tmp`` beside the output: SIGHUP and SIGQUIT were not held, only SIGTERM). One that is ignored
      (``nohup``) or handled by a caller stays theirs.
    - Ctrl-C (SIGINT, where its handler is a Python callable: Python's own raises KeyboardInterrupt) deferred, and its
      handler run at the block's end (``Held.deliver`` runs it earlier). Why: a KeyboardInterrupt is raised between any
      two lines, and one right after ``mkstemp`` left its file behind, one at the line that resets ``staged``'s stage
      left the stage in place, so that every later write of the process (``Plan.save`` in a notebook) was appended to
      a dead stage, never renamed, and returned as if written.

    Only in the main thread (the only one a Python signal handler runs in), and only for these few system calls and
    their bookkeeping: at any other time (a long C++ solve included, where a Python handler would wait for the solve
    to return) a signal acts at once."""
    held = Held()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):   # (first: once it is deferred, no KeyboardInterrupt stops what follows midway)
        held.sigint = handler
        signal.signal(signal.SIGINT, held._defer)
    terms = [s for s in HELD_SIGNALS if signal.getsignal(s) is signal.SIG_DFL]
    try:
        for s in terms:
            signal.signal(s, held._hold)
        yield held
    finally:
        _checkpoint()   # a signal caught during the last system call is handled here, before the default returns
        for s in terms:
            signal.signal(s, signal.SIG_DFL)
        for s in dict.fromkeys(held.came):
            os.kill(os.getpid(), s)
        if held.sigint is not None:
            signal.signal(signal.SIGINT, held.sigint)
            held.deliver()


def _checkpoint() -> None:
    """A Python call: the interpreter runs pending signal handlers on entering one."""


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over ``path`` (over the
    file it links to, when ``path`` is a symlink); ``-``: write it to standard output."""
    if is_stdout(path):
        _write_stdout(data)
        return
    path = output_path(path)
    why = cwd_trouble(path)
    if why:
        raise MemplanError(f"cannot write {path}: {why}")
    target = _target(path)
    why = _no_file_path(path) or _unwritable(target) or _through_descriptor(path, target)
    if why:
        raise MemplanError(f"cannot write {path}: {why}")
    directory = directory_of(target)
    why = read_only_directory(directory)
    if why:
        raise MemplanError(f"cannot write {path}: {why} (in {directory})")
    remove_stale_temporaries(directory)
    with signals_held() as held:
        try:
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=".tmp", dir=directory)
        except OSError as exc:
            raise MemplanError(f"cannot write {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _mode_for(target))  # mkstemp makes 0600; give the file the mode a plain open would
            held.deliver()   # (a Ctrl-C during the write: the file there stays as it was)
            stage = _STAGE.get()
            if stage is None:
                os.replace(tmp, target)
            else:   # (``staged``: renamed once every output of the block is written)
                stage.append((tmp, target, path))
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise MemplanError(f"cannot write {path}: {exc.strerror}") from None
            raise


#: a temporary file of ours that ``remove_stale_temporaries`` may take away: ``.memplan-PID-`` (the writer's process
#: id), mkstemp's 8 characters (a probe's padded with ``x``: ``_cannot_create_in``), ``.tmp``. Nothing else is ever
#: touched: not a ``.memplan-XXXXXXXX.tmp`` of a memplan before round 71 (it names no writer), not ``_keep``'s links
_OUR_TEMPORARY = re.compile(r"\.memplan-([1-9][0-9]{0,9})-[A-Za-z0-9_]{8,}\.tmp")
#: how old (by its last write) a temporary file of a dead writer must be before a later write takes it away: far
#: longer than any write of ours takes, mkstemp to rename (a 1 GiB file on a slow disk), so that a writer this
#: process cannot see (another PID namespace, a container or host sharing the folder) is never raced
STALE_TEMPORARY_SECONDS = 3600


def _temp_prefix() -> str:
    """The name prefix of this process's temporary files, naming its process id (``_OUR_TEMPORARY``)."""
    return f".memplan-{os.getpid()}-"


def _writer_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (``kill(pid, 0)`` finds none). This process, one of another
    user (EPERM) or any doubt counts as running."""
    if pid == os.getpid():   # (our own: a ``staged`` block's files, renamed when it ends)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return False


#: (st_dev, st_ino) of the files the running command reads (``inputs_kept``): never removed as stale temporaries
_KEPT: contextvars.ContextVar[frozenset[tuple[int, int]]] = contextvars.ContextVar("memplan_kept", default=frozenset())


@contextlib.contextmanager
def inputs_kept(paths) -> Iterator[None]:
    """While the block runs, ``remove_stale_temporaries`` leaves the files ``paths`` name alone, whatever their name.
    Why: a user salvaging the plan a killed write left (``memplan draw G .memplan-4242-abcd1234.tmp -o map.png``) had
    that very input removed by the write of the picture beside it."""
    ids = set()
    for path in paths:
        with contextlib.suppress(OSError, ValueError, TypeError):
            st = os.stat(path)
            ids.add((st.st_dev, st.st_ino))
    token = _KEPT.set(_KEPT.get() | frozenset(ids))
    try:
        yield
    finally:
        _KEPT.reset(token)


def remove_stale_temporaries(directory: str, now: float | None = None) -> list[str]:
    """Remove from ``directory`` the temporary files an earlier write left there when it was killed where no signal
    can be held (SIGKILL: the OOM killer, ``kill -9``, a CI job's timeout, a power cut) between creating its file and
    renaming it; return their names. Why: ``memplan plan G -o out.json`` killed mid-write left
    ``.memplan-*.tmp`` beside the output for good, a hidden file as large as the plan, and each such kill one more.

    Only a file of our naming (``_OUR_TEMPORARY``: ``.memplan-PID-XXXXXXXX.tmp``) is removed, and only when all of
    these hold: it is a regular file (not a link or a folder), it belongs to this user, its writer's process ``PID``
    is gone (``_writer_gone``: never one that runs, this process included), it was last written and last read more
    than ``STALE_TEMPORARY_SECONDS`` ago (read since: someone salvages it), and it is none of the running command's
    inputs (``inputs_kept``). A live writer's file is never taken: its process runs, and a writer this process
    cannot see (another PID namespace) finishes within the hour. Two writers cleaning at once may both try one file:
    the second finds it gone. Any error (the folder unreadable, the file gone or not ours to remove) leaves the file
    and never fails the write that cleans. POSIX only (``kill(pid, 0)`` asks without sending a signal; elsewhere
    nothing is removed)."""
    if os.name != "posix":
        return []
    import time

    removed: list[str] = []
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(directory))
    except (OSError, ValueError):
        return removed
    kept = _KEPT.get()
    for entry in entries:
        m = _OUR_TEMPORARY.fullmatch(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                    or now - max(st.st_mtime, st.st_atime) <= STALE_TEMPORARY_SECONDS
                    or (st.st_dev, st.st_ino) in kept or not _writer_gone(int(m.group(1)))):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    return removed


#: the temporary files of a ``staged`` block, (temporary, target, path as given) each; None outside one
_STAGE: contextvars.ContextVar[list[tuple[str, str, str]] | None] = contextvars.ContextVar("memplan_stage",
                                                                                        default=None)


@contextlib.contextmanager
def staged() -> Iterator[None]:
    """Files written by ``atomic_write_bytes`` inside the block are renamed into place only when the block ends
    without an exception, all of them then; otherwise none is, and their temporary files are removed. Why: a command
    with several outputs (``plan -o P --graph-out G``, ``example -o DIR``) checks them all before writing, but a disk
    that fills up meanwhile failed the second write after the first had replaced its file: the failed run left the
    new split graph beside the old plan (or half the examples). Held against SIGTERM throughout (``signals_held``):
    the block holds only the writes, and a kill between two of them left temporary files behind."""
    outer = _STAGE.get()
    if outer is not None:   # (nested: the outer block renames; an exception here drops this block's files only)
        mark = len(outer)
        try:
            yield
        except BaseException:
            _discard(outer[mark:])
            del outer[mark:]
            raise
        return
    stage: list[tuple[str, str, str]] = []
    with signals_held() as held:   # (Ctrl-C deferred in the bookkeeping: ``signals_held``)
        _STAGE.set(stage)
        try:
            with held.let_through():   # (in the writes a Ctrl-C stops the block at once, and nothing is renamed)
                yield
            held.deliver()   # (one that came since: nothing renamed either)
        except BaseException:
            _discard(stage)
            raise
        finally:
            _STAGE.set(None)   # (what it was: ``outer`` is None)
        _rename_all(stage)


def _rename_all(stage: list[tuple[str, str, str]]) -> None:
    """Rename each of ``staged``'s temporary files over its target, all or none: a rename that fails (a rename in
    the file's own directory: not for want of space, but the folder's permissions or the target may have changed
    since the check) undoes the ones before it, from a hard link each kept to the file it replaced (``_keep``), and
    removes the new files where there was none. Why: the earlier renames stayed, so the failed run still left the
    new split graph beside the old plan, which staging is there to prevent."""
    done: list[tuple[str, str | None]] = []   # (target, the link to the file it replaced; None: it had none)
    try:
        for tmp, target, path in stage:
            kept = _keep(target)
            try:
                os.replace(tmp, target)
            except OSError as exc:
                if kept:
                    with contextlib.suppress(OSError):
                        os.unlink(kept)
                raise MemplanError(f"cannot write {path}: {exc.strerror}") from None
            done.append((target, kept))
    except BaseException:
        _discard(stage[len(done):])
        for target, kept in reversed(done):   # (reversed: a target staged twice gets its first file back)
            _put_back(target, kept)
        raise
    for _, kept in done:
        if kept:
            with contextlib.suppress(OSError):
                os.unlink(kept)


def _discard(stage: list[tuple[str, str, str]]) -> None:
    """Remove the temporary files of ``stage`` (renamed into place by no one)."""
    for tmp, _, _ in stage:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _put_back(target: str, kept: str | None) -> None:
    """Undo one of ``_rename_all``'s renames: the kept file back over ``target``, or ``target`` removed where there
    was no file before (None); nothing where none could be kept (``""``: the new file is all there is)."""
    with contextlib.suppress(OSError):
        if kept is None:
            os.unlink(target)
        elif kept:
            os.replace(kept, target)


def _keep(target: str) -> str | None:
    """A hard link beside ``target`` to the file there, which ``_rename_all`` can put back; None where there is no
    file there. ``""`` where the link cannot be made (a file system without hard links): that one is not put back."""
    if not os.path.lexists(target):
        return None
    for _ in range(8):   # (a name taken meanwhile: another)
        kept = os.path.join(os.path.dirname(target), f".memplan-{os.urandom(6).hex()}.kept")
        try:
            os.link(target, kept)
            return kept
        except FileExistsError:
            continue
        except OSError:
            break
    return ""


def _write_stdout(data: bytes) -> None:
    """``data`` on stdout: as bytes through its buffer, or as text where stdout has none (a StringIO under
    ``contextlib.redirect_stdout``, a notebook's stream); the documents memplan writes are UTF-8."""
    why = stdout_closed()
    if why:
        raise MemplanError(f"cannot write to stdout: {why}")
    out = getattr(sys.stdout, "buffer", None)
    try:
        if out is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise MemplanError("cannot write binary data to stdout: it takes only text here") from None
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        _flushed(sys.stdout, out)   # text printed before goes first
        # the document to the file under the buffer, which is empty now: a failing write (``>/dev/full``) left the
        # bytes the buffer had taken to fail again in Python's flush at exit ("Exception ignored", exit 120)
        write_whole(getattr(out, "raw", None) or out, data)
    except (OSError, ValueError) as exc:   # (ValueError: a stream already closed)
        raise MemplanError(f"cannot write to stdout: {getattr(exc, 'strerror', None) or exc}") from None


def write_whole(out, data: bytes) -> None:
    """Every byte of ``data`` to stdout's binary layer ``out``, then flushed. Why not one ``out.write(data)``: under
    ``python -u`` or ``PYTHONUNBUFFERED`` that layer is the raw file, whose ``write`` may take part of the data and
    return the count (a pipe's write that a signal cut short) or, on a stdout in non-blocking mode (O_NONBLOCK, set
    on a shared pipe or terminal by another program), take what the pipe holds and then nothing (None): ``plan -o -``
    wrote 4,096 of a plan's 59,150 bytes and exited 0. The buffered layer raised BlockingIOError instead, and the
    bytes it still held failed again at exit ("Exception ignored", exit 120). A stream that takes nothing now is
    waited on until it takes more (``_wait_writable``), as a blocking write waits. ``out`` is the raw file under a
    buffered stdout (``_write_stdout``): its ``write`` returns the count, or None where it would block."""
    view = memoryview(data)
    while view:
        try:
            n = out.write(view)
        except BlockingIOError as exc:   # (the buffered layer: it took characters_written of them)
            n = exc.characters_written
        view = view[n or 0:]
        if view and not n:
            _wait_writable(out)
    _flushed(out, out)


def write_text(stream, text: str) -> int:
    """``stream.write(text)``, but where ``stream`` (stdout or stderr while the CLI runs: ``cli._ReaderGone``) is a
    text layer over a file: what it holds flushed, then ``text`` encoded as the stream would encode it and written
    whole (``write_whole``), waiting while a non-blocking file is full. Why: to a stdout in non-blocking mode (set on a
    shared pipe or terminal by another program) whose reader lags, a buffered ``print`` raised BlockingIOError
    (``memplan show`` said "cannot write to stdout: write could not complete without blocking", exit 2, its report
    cut), and under PYTHONUNBUFFERED each ``print`` was one raw write whose count Python drops (``bench``'s table
    lost its rows past the pipe's 4 KB, exit 0). Elsewhere (no file under the stream: a StringIO, pytest's capture;
    Windows, whose text layer translates newlines; an encoding that writes a mark first, ``_marked``) the stream's own
    ``write``."""
    buffer = getattr(stream, "buffer", None)
    raw = getattr(buffer, "raw", buffer)   # (under PYTHONUNBUFFERED the buffer is the raw file itself)
    encoding = getattr(stream, "encoding", None) or "utf-8"
    if os.name != "posix" or not isinstance(raw, io.FileIO) or _marked(encoding):
        return stream.write(text)
    data = text.encode(encoding, getattr(stream, "errors", None) or "strict")
    _flushed(stream, buffer)   # text written before goes first
    write_whole(raw, data)
    return len(text)


def _marked(encoding: str) -> bool:
    """Whether ``encoding`` opens what it encodes with a byte-order mark (UTF-16, UTF-32, UTF-8-SIG), or is unknown
    here. Why: ``write_text`` encoded each write on its own, so under ``PYTHONIOENCODING=utf-16`` (or ``utf-8-sig``)
    every line memplan printed began with a mark of its own: ``memplan show``'s report and every error line held a
    U+FEFF in the middle of the text after the first (Python's text layer writes the mark once, at most)."""
    try:
        return bool("".encode(encoding))
    except (LookupError, ValueError):
        return True


def _flushed(stream, out) -> None:
    """``stream.flush()``, waiting while ``out`` (stdout's binary layer) is non-blocking and full."""
    while True:
        try:
            stream.flush()
            return
        except BlockingIOError:
            _wait_writable(out)


def _wait_writable(out) -> None:
    """Wait until the file under stream ``out`` takes more bytes (a reader that left makes it writable too: the
    next write then fails with EPIPE, named as such), or MemplanError where it has no file to wait on."""
    import select

    try:
        fd = out.fileno()
    except (OSError, ValueError, AttributeError):
        raise MemplanError("cannot write to stdout: it takes no more bytes and has no file to wait on") from None
    if not hasattr(select, "poll"):   # (Windows: select alone)
        select.select([], [fd], [])
        return
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll()


def drop_output(stream) -> None:
    """Point ``stream``'s file descriptor at /dev/null, so that Python's flush at exit does not fail again with
    a traceback (or "Exception ignored", exit 120) on text still buffered for it, once its failure was reported."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured in-process): nothing to drop
        pass


def stdout_closed() -> str | None:
    """Why standard output can take nothing, where that shows before a write, or None: started with it closed
    (``>&-``: ``sys.stdout`` is None), or a stream closed in the process. Why: an output ``-`` is checked with
    the files (``check_writable``), before a plan, an import or a benchmark that may take hours, and before
    another output is written (``plan -o - --graph-out S >&-`` wrote ``S`` and then failed on the plan)."""
    if sys.stdout is None:
        return "it is closed"
    if getattr(sys.stdout, "closed", False) is True:
        return "it is closed"
    return None


def path_text(path) -> str | bytes | None:
    """``os.fspath(path)`` for a str or an ``os.PathLike`` (a str, or bytes where its ``__fspath__`` gives bytes), None
    for anything else: a bool, an int (which ``open`` would take for a file descriptor), or a PathLike whose
    ``__fspath__`` returns neither (``os.fspath`` raised a bare TypeError there, past every reader's and writer's
    check: ``load_graph``, ``save_plan``, ``read_csv`` of such an object)."""
    if isinstance(path, str):
        return path
    if not isinstance(path, os.PathLike):
        return None
    try:
        return os.fspath(path)
    except TypeError:   # ("expected P.__fspath__() to return str or bytes, not int")
        return None


def output_path(path) -> str:
    """``path`` as a str when it is a file path (a str or ``os.PathLike``), else ``MemplanError``: a plain
    ``open`` would take an int for a file descriptor, and ``os.path`` raises ``TypeError`` on the rest."""
    if isinstance(path, (str, os.PathLike)):
        p = path_text(path)
        if isinstance(p, str):
            check_no_nul(p, MemplanError, "cannot write ")
            if not p:   # (it was "cannot write : No such file or directory")
                raise MemplanError("cannot write to an empty path: it names no file")
            return p
    raise MemplanError(f"cannot write to {type(path).__name__} {short_repr(path, 40)}: expected a file path "
                       "(a str or os.PathLike)")


def check_no_nul(path: str, error: type[MemplanError], lead: str = "") -> None:
    """``error`` naming ``path`` when it holds a NUL character, which no file name can: every ``os`` call
    raised a bare ``ValueError`` ("embedded null byte") that named neither the path nor memplan."""
    if "\x00" in path:
        raise error(f"{lead}{path!r}: a file path cannot contain a NUL character")
    try:   # a lone surrogate from Python ('\ud800'): every os call raised UnicodeEncodeError
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        raise error(f"{lead}{short_repr(path)}: a file path cannot hold {short_repr(path[exc.start:exc.end])} "
                    f"(not encodable as a file name)") from None


#: why a relative path names nothing: the process's current directory was removed (``cd d; rmdir ../d``)
CWD_GONE = ("the current directory no longer exists (it was removed), so a relative path cannot be resolved: cd to "
            "a directory that exists, or give an absolute path")


def cwd_trouble(path: str) -> str | None:
    """``CWD_GONE`` where ``path`` is relative and the current directory no longer exists, else None. Why: every
    check that resolves a path (``os.path.realpath``: ``directory_of``, ``same_file``) asks the OS for the current
    directory, which then raises FileNotFoundError naming no file: the CLI said "cannot write to stdout: No such file
    or directory" of ``plan G -o p.json`` (its one OSError handler is stdout's), and ``Plan.save("p.json")`` raised a
    raw FileNotFoundError. An absolute path needs no current directory and is taken as before."""
    if os.path.isabs(path):
        return None
    try:
        os.getcwd()
    except OSError:
        return CWD_GONE
    return None


def check_writable(path: str, label: str) -> None:
    """Refuse, before a long run, an output ``path`` that ``atomic_write_bytes`` could not write: one that
    names a directory, a FIFO, a device or a read-only file, or lies in a directory that does not exist, or
    ``-`` while stdout is closed (``label`` names the option)."""
    if is_stdout(path):
        why = stdout_closed()
        if why:
            raise MemplanError(f"{label} {path}: cannot write to stdout: {why}")
        return
    check_no_nul(os.fspath(path), MemplanError, f"{label} ")
    why = cwd_trouble(path) or _no_file_path(path)
    if why:
        raise MemplanError(f"{label} {path}: cannot write: {why}")
    target = _target(path)
    why = _unwritable(target) or _through_descriptor(path, target)
    if why:
        raise MemplanError(f"{label} {path}: cannot write: {why}")
    directory = directory_of(target)
    if not os.path.isdir(directory):
        raise MemplanError(f"{label} {path}: cannot write: {_no_directory(directory)}")
    why = _cannot_create_in(directory, len(os.fsencode(os.path.basename(target))))
    if why:
        raise MemplanError(f"{label} {path}: cannot write: {why} (in {directory})")


def _no_file_path(path: str) -> str | None:
    """Why ``path`` names no file an output can be: a directory (``.``, ``out/``, a link to one), or a path ending
    in a slash (``out.json/``: a directory that is not there). Why here, for ``atomic_write_bytes`` as for the CLI's
    checks: the library's ``save_plan(plan, "out/")`` said "cannot write out/: Not a directory" of a directory (the
    rename's error), and ``save_plan(plan, ".")`` "Device or resource busy"."""
    if os.path.isdir(path):
        return "is a directory"
    if str(path).endswith(("/", os.sep)):
        return "a file path may not end with a slash"
    return None


def directory_of(path: str) -> str:
    """The directory the kernel puts ``path`` in, as an absolute path: its parent resolved through symlinks. Why not
    ``os.path.abspath``: it drops a '..' lexically, and ``LINK/../out.json`` (``LINK`` a symlink to a directory
    elsewhere) lies beside ``LINK``'s target, not beside ``LINK``; the temporary file made there was renamed across
    file systems ("Invalid cross-device link"), and the check probed a directory the output is not in."""
    return os.path.realpath(os.path.dirname(path) or os.curdir)


def _no_directory(directory: str) -> str:
    """Why ``directory`` (which is no directory) cannot hold a file: missing, or it or the nearest of its parents
    that exists is something else. Why: ``-o out.json/x`` beside an existing file ``out.json`` was refused as
    "no directory out.json", while a file of that name is there; the message names what is in the way."""
    p = directory
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    if os.path.lexists(p) and not os.path.isdir(p):
        # (``directory_of`` resolved every link it could: one left is a loop, which "is not a directory" hid)
        what = "is a loop of symbolic links" if os.path.islink(p) else "is not a directory"
        return f"{p} {what}" if p == directory else f"no directory {directory} ({p} {what})"
    return f"no directory {directory}"


def _cannot_create_in(directory: str, name_bytes: int = 0) -> str | None:
    """Why ``atomic_write_bytes`` could not create its temporary file in ``directory``, or None: found by
    creating one and removing it. Permission bits do not tell (root passes ``os.access`` where sysfs or a
    read-only mount refuses), and a command with two outputs (``plan -o P --graph-out G``) wrote the one
    and then failed on the other, leaving half its result. The probe is removed whatever stops the check
    (an exception, or a signal held back until it is gone: ``signals_held``), as ``atomic_write_bytes``
    removes its temporary file. The probe's name is as long as the output's (``name_bytes``), so that a name
    over the file system's limit is refused here too (``-o`` of 300 characters failed only at the write,
    after ``--graph-out`` had been written)."""
    why = read_only_directory(directory)
    if why:
        return why
    prefix = _temp_prefix()
    suffix = ".tmp".rjust(max(4, name_bytes - len(prefix) - 8), "x")   # (mkstemp adds 8 characters)
    with signals_held():
        try:
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
        except OSError as exc:
            return exc.strerror or str(exc)
        try:
            os.close(fd)
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return None


def read_only_directory(directory: str) -> str | None:
    """Why no output may be made in ``directory``: it has no write bit at all (``chmod a-w``), or None. Why, though
    root may create files there: an existing output file without a write bit is refused for root too (``READ_ONLY``),
    and a folder made read-only to keep its files as they are is the same wish; ``memplan plan G -o ro/p.json`` (``ro``
    mode 0555) wrote ``p.json`` into it as root, and failed only for other users."""
    try:
        st = os.stat(directory)
    except OSError:   # (missing: named by the caller; unreadable: the write names it)
        return None
    if stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o222:
        return "the directory is read-only (no write permission for anyone: memplan does not write where it may not)"
    return None


def _target(path: str) -> str:
    """The file a write to ``path`` replaces: ``path`` itself, or where its chain of symlinks ends. As with a
    shell redirection, a write through a link rewrites the file it points to (a dangling link's target is
    created) and leaves the link a link: a rename over the link would replace the link itself."""
    if not os.path.islink(path):
        return path
    real = os.path.realpath(path)
    if not os.path.lexists(real) and os.path.exists(path):
        # a link the kernel follows to something no path names: ``/dev/stdout`` on a pipe reads back as
        # ``/proc/PID/fd/pipe:[N]`` (refused for a missing directory before), a deleted file's fd link
        return path
    return real


def _unwritable(target: str) -> str | None:
    """Why an atomic write cannot replace ``target`` (see ``_target``), or None. A FIFO or a device such as
    ``/dev/null`` (or the link ``/dev/stdout``): the rename would replace the node itself by a regular file,
    where a plain open would write into it. A file without write permission (no write bit at all, which holds
    for root too, or none for this user): the rename needs only the directory's, and ``cp`` or a shell
    redirection refuses it. A link still: ``realpath`` stops where links loop."""
    if os.path.islink(target):   # a loop, or a link to what no path names (``_target``)
        try:
            st = os.stat(target)
        except OSError:
            return "a loop of symbolic links"
        if stat.S_ISREG(st.st_mode):
            return "a link to a file that no path names (deleted, or open only as a file descriptor)"
        return NOT_REGULAR
    try:
        st = os.stat(target)
    except OSError:  # a new file, or one the write itself will name the trouble with
        return None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return NOT_REGULAR
    if stat.S_ISREG(st.st_mode) and not st.st_mode & 0o222:
        return READ_ONLY
    stream = _standard_stream_of(st)
    if stream == "standard input":   # (``-o f < f``: nothing was written to it; the file being read is replaced)
        return "it is this process's standard input (a shell redirection's file: the rename would replace the " \
               "file being read); write the output elsewhere"
    if stream:
        return f"it is this process's {stream} (a shell redirection's file: the rename would replace it, and what " \
               "was written to it is lost); '-' writes to stdout"
    if stat.S_ISREG(st.st_mode) and not os.access(target, os.W_OK):
        # write bits, but no write: a read-only mount (root included), or bits for another user; "the file is
        # read-only" said the first of a file whose mode allows writing
        return READ_ONLY_FS if _read_only_fs(target) else NO_WRITE_PERMISSION
    return None


def _through_descriptor(path: str, target: str) -> str | None:
    """Why an output ``path`` that reaches a regular file through a file descriptor of this process (``/dev/fd/3``,
    ``/proc/self/fd/3``, a link to either) cannot be written, or None. Why: a write there means the open file
    description (``-o /dev/fd/3 3>>log.txt`` appends to the log), but the atomic write renamed a new file over the
    file it names: the log's earlier lines were lost. The standard streams are named by ``_unwritable``; a pipe or
    a terminal is no regular file (``NOT_REGULAR``). A descriptor that is not open is named so."""
    fd = _descriptor_of(path)
    if fd is None:
        return None
    try:
        regular = stat.S_ISREG(os.stat(target).st_mode)
    except OSError:   # (``/dev/fd/9`` of a closed descriptor: "No such file or directory (in /proc/PID/fd)")
        return f"file descriptor {fd} is not open in this process"
    if not regular:
        return None
    return (f"it is this process's file descriptor {fd}, open on a regular file (a shell redirection such as "
            f"{fd}>>FILE, or a file the program holds open): the rename would replace that file, and what was "
            "written to it is lost; give the file's own path")


def _descriptor_of(path: str) -> int | None:
    """The file descriptor of this process that ``path`` names through its chain of links (``/dev/fd/N``,
    ``/proc/self/fd/N``, ``/proc/PID/fd/N`` with this process's id, a link to one of these), or None."""
    own = {os.path.realpath(d) for d in ("/dev/fd", "/proc/self/fd", "/proc/thread-self/fd") if os.path.isdir(d)}
    p = path
    for _ in range(40):   # (the kernel's own limit on links followed)
        name = os.path.basename(p)
        if cwd_trouble(p):   # (realpath below needs the current directory; a /dev/fd path is absolute)
            return None
        if name.isdigit() and os.path.realpath(os.path.dirname(p) or os.curdir) in own:
            return int(name)
        if not os.path.islink(p):
            return None
        try:
            p = os.path.join(os.path.dirname(p), os.readlink(p))
        except OSError:
            return None
    return None


#: the standard streams by file descriptor, as ``_standard_stream_of`` names them
_STREAMS = ((0, "standard input"), (1, "standard output"), (2, "standard error"))


def _standard_stream_of(st: os.stat_result) -> str | None:
    """Which standard stream of this process is the regular file ``st`` is, or None. Why: ``-o /dev/stdout`` (or
    ``/proc/self/fd/1``) with stdout redirected to a file (``>> log.txt``) resolves to that file, and the atomic
    write renamed a new file over it: the log's earlier lines were lost, and later writes to the stream went to
    the replaced file, which no name holds. A pipe or a terminal is already refused as no regular file."""
    for fd, name in _STREAMS:
        try:
            own = os.fstat(fd)
        except OSError:   # closed
            continue
        if stat.S_ISREG(own.st_mode) and (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino):
            return name
    return None


def _read_only_fs(path: str) -> bool:
    """Whether ``path`` lies on a file system mounted read-only (False where the OS cannot tell)."""
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 0))
    except (OSError, AttributeError):
        return False


#: why an output that is a FIFO or a device is refused
NOT_REGULAR = "not a regular file (memplan writes outputs as regular files, atomically; '-' writes to stdout)"
#: why an existing output file without write permission is refused
READ_ONLY = "the file is read-only (memplan does not replace a file it may not write)"
#: why an existing output file on a read-only mount is refused (its mode may allow writing)
READ_ONLY_FS = "the file is on a read-only file system"
#: why an existing output file with write bits for others only is refused
NO_WRITE_PERMISSION = "no permission to write the file (memplan does not replace a file it may not write)"


def _mode_for(path: str) -> int:
    """The replaced file's permission bits, or 0666 less the umask for a new file. Never its set-user-ID, set-group-ID
    or sticky bit: the new file is another file, owned by whoever runs memplan (root, often, on a GPU box), and a
    JSON document replacing ``-rwsr-xr-x user prog`` came out ``-rwsr-xr-x root prog`` (as ``cp`` without ``-p``, and
    ``open(..., "w")`` on a file another user owns, drop them)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux); otherwise set and
    restored at once (a brief process-wide change other threads could see)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_readable(path: str, error: type[MemplanError], limit: int = MAX_FILE_BYTES) -> int:
    """Raise ``error`` unless ``path`` is a regular file of at most ``limit`` bytes; return its size.

    Checked before opening, so a FIFO (whose open would block) or a device is never opened. A ``path`` that is no
    str or ``os.PathLike`` of a str is ``error`` too: ``load_exported(None)`` (or 3, b"m.pt2", a list) was a raw
    TypeError from the NUL check ("argument of type 'NoneType' is not iterable").
    """
    if not isinstance(path, str):
        if not isinstance(path_text(path), str):
            raise error(f"expected an input file's path (a str or os.PathLike), not {type(path).__name__} "
                        f"{short_repr(path, 40)}")
        path = path_text(path)
    check_no_nul(path, error)
    if not path:   # (its message began with nothing: ": no such file")
        raise error("an empty path names no file: give the input file's path")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if is_stdout(path):   # '-' is stdout for an output; an input is always a file
            raise error(f"{path}: memplan reads inputs from files, not from standard input (give the file's path; "
                        "./- names a file called '-')") from None
        raise error(f"{path}: {cwd_trouble(path) or _dangling_link(path) or 'no such file'}") from None
    except NotADirectoryError:
        raise error(f"{path}: {_through_a_file(path)}") from None
    except OSError as exc:
        raise error(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (memplan reads only regular files)")
    if st.st_size > limit:
        raise error(f"{path}: {st.st_size} bytes, over the {limit}-byte limit on input files")
    return st.st_size


def _dangling_link(path: str) -> str | None:
    """What to say of an input ``path`` that is a symbolic link to nothing, or None. Why: it was "no such file", which
    ``ls`` contradicts (it lists the link), and ``memplan example -o`` already names such a link with its target."""
    try:
        if not os.path.islink(path):
            return None
        return f"a dangling symbolic link {link_target_text(path)}"
    except (OSError, ValueError):
        return None


def link_target_text(path: str) -> str:
    """Where the symbolic link ``path``, which leads to no file, points, in words: ``(to 'x', which does not exist)``,
    or, where its target is itself a link (a chain ending nowhere), ``(to 'x', itself a link to nothing)``: "which does
    not exist" said of a link that ``ls`` lists was false."""
    target = os.readlink(path)
    there = os.path.lexists(os.path.join(os.path.dirname(path), target))
    return f"(to {target!r}, {'itself a link to nothing' if there else 'which does not exist'})"


def _through_a_file(path: str) -> str:
    """Why input ``path`` names nothing when the OS says "Not a directory": it ends in a slash after a file's name
    (``plan.json/``), or goes through a file as if it were a directory (``plan.json/x``). Why: the OS's words named
    no file and read as if a directory had been asked for; a write to such a path says so (``_no_file_path``)."""
    stripped = str(path).rstrip("/" + os.sep) or str(path)
    if stripped != str(path) and os.path.lexists(stripped) and not os.path.isdir(stripped):
        return f"a file path may not end with a slash ({stripped} is a file)"
    # (``plan.json/x/``: the file in the way is plan.json; "plan.json/x is a file" named one that is not there)
    return _no_directory(os.path.dirname(stripped) or os.curdir)


def read_limited(f, path: str, error: type[MemplanError], limit: int = MAX_FILE_BYTES) -> bytes:
    """Read an open binary file to its end, refusing more than ``limit`` bytes (a file that grew); on a
    file opened without blocking, one whose read would wait is refused too."""
    data = f.read(limit + 1)
    if data is None:  # non-blocking, and nothing to read yet
        raise error(f"{path}: reading it would wait for data (not a file's contents: memplan reads only regular "
                    "files)")
    if len(data) > limit:
        raise error(f"{path}: over the {limit}-byte limit on input files")
    return data


def _open_nonblocking(path: str, flags: int) -> int:
    """``open``'s opener for inputs: the file descriptor opened with ``O_NONBLOCK`` where the OS has it."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def open_input(path: str):
    """Input file ``path`` opened for binary reading with ``O_NONBLOCK`` (``_open_nonblocking``): for a reader
    that takes a file object (torch.export's), so that a FIFO put in the place of the checked file after
    ``check_readable`` is no wait."""
    return open(path, "rb", opener=_open_nonblocking)


def read_input(path: str, error: type[MemplanError], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of input file ``path``: a regular file of at most ``limit`` bytes, or ``error`` naming it.

    Opened with ``O_NONBLOCK``, which a regular file's data ignores: a "regular" file whose read waits (a
    kernel interface such as ``/proc/kmsg``), or a FIFO put in the file's place after ``check_readable``,
    gives an error, never a hang."""
    with checked_input(path, error, limit) as f:
        return read_limited(f, path, error, limit)


@contextlib.contextmanager
def checked_input(path: str, error: type[MemplanError], limit: int = MAX_FILE_BYTES):
    """Input file ``path`` as every reader here opens it: checked (``check_readable``), opened without blocking
    (``open_input``), checked again on the open descriptor (``check_opened``), the OS's errors while it is open
    ``error`` naming it (``input_errors``). One place, so that no reader skips a step (round 60 added the last)."""
    check_readable(path, error, limit)
    with input_errors(path, error), open_input(path) as f:
        check_opened(f, path, error, limit)
        yield f


def check_opened(f, path: str, error: type[MemplanError], limit: int = MAX_FILE_BYTES) -> None:
    """Raise ``error`` unless the file ``f`` opened for ``path`` is what ``check_readable`` found there: a regular
    file of at most ``limit`` bytes (checked on the open descriptor, ``fstat``). Why: ``check_readable`` stats the
    path and the open comes after, so a path swapped between the two (a symlink turned to ``/dev/zero``, a file
    replaced by a FIFO or a device) was read as it was: ``/dev/zero`` for a whole gigabyte (1 GiB of memory, then
    "over the 1073741824-byte limit"), a FIFO or ``/dev/null`` as an empty file ("not valid JSON"), ``/dev/urandom``
    as garbage. (A file object without a descriptor, a stand-in of a test, is taken as it is.)"""
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):
        return
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file once opened (it was replaced while being opened; memplan reads "
                    "only regular files)")
    if st.st_size > limit:
        raise error(f"{path}: {st.st_size} bytes, over the {limit}-byte limit on input files")


#: how much of a text input is looked at (``text_trouble``) before the whole file is read
TEXT_HEAD_BYTES = 1 << 16


def read_text_input(path: str, error: type[MemplanError], limit: int = MAX_FILE_BYTES,
                    explain: Callable[[str, bytes], str | None] | None = None) -> bytes:
    """The bytes of text input ``path`` (graph or plan JSON, minimalloc CSV), as ``read_input`` reads them, but
    with its first ``TEXT_HEAD_BYTES`` judged by ``text_trouble`` before the rest is read. Why: a file of a
    gigabyte that is no text (a sparse file of zeros, a disk image named ``.json``) was read whole, 1,012 MB of
    memory and 5-7 s, to be refused for the NUL byte at byte 0. The verdict is the one the whole file would
    get: ``text_trouble`` judges the first bytes and the first NUL, and a NUL in the head is the file's first.
    ``explain(path, head)``, where given, may say better what a file that is no text is (a model for another
    command), its words then taking the place of ``text_trouble``'s."""
    with checked_input(path, error, limit) as f:
        head = f.read(min(TEXT_HEAD_BYTES, limit + 1))
        if head is None:
            raise error(f"{path}: reading it would wait for data (not a file's contents: memplan reads only "
                        "regular files)")
        if len(head) > limit:
            raise error(f"{path}: over the {limit}-byte limit on input files")
        why = text_trouble(head)
        if why:
            raise error(f"{path}: {(explain and explain(path, head)) or why}")
        # (the rest within the whole limit, then the sum: a refusal names the file's limit, not what the head left
        # of it, "over the 1073676288-byte limit" for a file that grew past the 1 GiB one after its checks)
        rest = read_limited(f, path, error, limit)
        if len(head) + len(rest) > limit:
            raise error(f"{path}: over the {limit}-byte limit on input files")
        return head + rest if rest else head


@contextlib.contextmanager
def input_errors(path: str, error: type[MemplanError]):
    """Opening or reading input file ``path``: the OS's errors as ``error`` naming the path (memplan's own
    errors pass through)."""
    try:
        yield
    except MemplanError:
        raise
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory") from None
    except OSError as exc:
        raise error(f"{path}: {exc.strerror}") from None


def read_head(path: str, n: int, error: type[MemplanError], limit: int = MAX_FILE_BYTES) -> bytes:
    """The first ``n`` bytes (fewer in a shorter file) of input file ``path``, checked and opened as
    ``read_input`` does (a regular file of at most ``limit`` bytes, never a blocking open or read): enough to
    recognise a format by its content without reading a model of gigabytes."""
    with checked_input(path, error, limit) as f:
        head = f.read(n)
    if head is None:
        raise error(f"{path}: reading it would wait for data (not a file's contents: memplan reads only regular "
                    "files)")
    return head


#: the first bytes of compressed data, and what to do about it: a reader of text or of a model sees only noise
COMPRESSED = ((b"\x1f\x8b", "gzip-compressed: decompress it first (gunzip)"),
              (b"\xfd7zXZ\x00", "xz-compressed: decompress it first (unxz)"),
              (b"\x28\xb5\x2f\xfd", "zstd-compressed: decompress it first (unzstd)"),
              (b"BZh", "bzip2-compressed: decompress it first (bunzip2)"))
#: the first bytes of the pictures a text input may be given by mistake (``memplan draw``'s own PNG or PDF given to
#: ``memplan show``), and what each is
PICTURES = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"%PDF-", "a PDF document"), (b"\xff\xd8\xff", "a JPEG image"),
            (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"))
#: a tar archive's mark at byte 257 of its first header: POSIX's "ustar\0", GNU's "ustar  \0". With its NUL byte, which
#: no text holds: "ustar" alone there is also text (a valid graph whose name put "mustard" there was refused as a tar
#: archive, round 73 review)
_TAR_MARKS = (b"ustar\x00", b"ustar  \x00")
#: byte-order marks of the wide encodings, longest first (UTF-32's little-endian mark starts with UTF-16's)
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
              (b"\xfe\xff", "UTF-16"))


def compressed(head: bytes) -> str | None:
    """What compression ``head`` (a file's first bytes) shows, and what to do, or None. bzip2's "BZh" is
    taken only with its block-size digit and block mark, since a text file may start with those letters."""
    for magic, why in COMPRESSED:
        if head.startswith(magic) and (magic != b"BZh" or head[3:10].startswith(tuple(
                b"%d1AY&SY" % d for d in range(1, 10)))):
            return why
    return None


def text_trouble(data: bytes) -> str | None:
    """Why ``data``, a text input's bytes (graph or plan JSON, minimalloc CSV), is no UTF-8 text where its first
    bytes or a NUL byte tell, or None (the decoder and the parser judge the rest): compressed data, a zip or tar
    archive, a picture (``PICTURES``), UTF-16 or UTF-32 text (by its byte-order mark), or a NUL byte, which no text holds (UTF-16 text
    without a mark has one in every ASCII character). Why: these were "not UTF-8 text", a nesting depth found in
    binary data, or a parser's complaint about the first bytes (a UTF-16 CSV was "missing column 'id'"), naming
    neither what the file is nor what to do."""
    why = compressed(data[:10])
    if why:
        return why
    if data.startswith(b"PK\x03\x04"):
        return "a zip archive, not text (extract the file from it first)"
    # (a picture or a tar archive was "holds a NUL byte ...: binary data, or UTF-16/UTF-32 text without a byte-order
    # mark (save it as UTF-8)", and a PDF, whose first NUL may come late, "not UTF-8 text: byte 0xe2 ... (Latin-1 or
    # Windows-1252 text? save it as UTF-8)": advice that leads nowhere, where a zip archive is named as one)
    for magic, kind in PICTURES:
        if data.startswith(magic):
            return (f"{kind}, not text (a picture, such as 'memplan draw' writes: memplan reads graph and plan JSON and "
                    "minimalloc CSV, never a picture)")
    if data[257:265].startswith(_TAR_MARKS):
        return "a tar archive, not text (extract the file from it first)"
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return f"{name} text (it starts with a {name} byte-order mark): save it as UTF-8"
    nul = data.find(b"\x00")
    if nul >= 0:
        return (f"holds a NUL byte (at byte {nul}), which no text file does: binary data, or UTF-16/UTF-32 text "
                "without a byte-order mark (save it as UTF-8)")
    return None


#: what a JSON document that memplan writes says of itself near its start: the ``format`` tag of a graph or a plan, and
#: the key of a Chrome/Perfetto trace (``memplan trace``)
_JSON_KINDS = ((re.compile(rb'"format"\s*:\s*"memplan\.graph/1"'), "a memplan graph (memplan.graph/1, which "
                "'memplan plan' plans as it is)"),
               (re.compile(rb'"format"\s*:\s*"memplan\.plan/1"'), "a memplan plan (memplan.plan/1)"),
               (re.compile(rb'"traceEvents"\s*:'), "a Chrome/Perfetto trace (such as 'memplan trace' writes)"))


def json_model_hint(head: bytes) -> str:
    """What to add to the error of a model file (an ONNX protobuf, a torch.export zip archive) that is no model but whose
    first bytes (``head``) are JSON text: what the document is where it says (a memplan graph or plan, a trace), else
    JSON; "" for anything else. Why: ``memplan import m.onnx -o g.onnx`` writes graph JSON under a model's name, and
    ``memplan import g.onnx`` then said "not a readable ONNX model (at byte 0: field 15 has wire type 3, which no ONNX
    message uses)" (a ``.pt2``: "not a torch.export program (BadZipFile: File is not a zip file)"), protobuf's or
    zipfile's view of the first byte, where a graph or plan given for the other is named as one."""
    if not head.lstrip(b" \t\r\n").startswith((b"{", b"[")):
        return ""
    kind = next((f": {what}," for pattern, what in _JSON_KINDS if pattern.search(head)), ",")
    return f"; this is JSON text{kind} not a model (memplan import reads ONNX protobuf files and torch.export programs)"


def markup_hint(text: str, expected: str) -> str:
    """What to add to the error of a text input that is no ``expected`` ("JSON", "CSV") but markup, where its start shows
    which: an SVG picture (``memplan draw``'s own, given for the plan it drew), an HTML page (a web page saved in place
    of the file it shows: a repository's page of a graph, not its raw file), or other XML; else "". Why: each was "not
    valid JSON (Expecting value at line 1 column 1)" (or "missing column 'id'") alone, naming neither what the file is
    nor what to give instead, where a picture in binary or a minimalloc CSV given for JSON is named as one."""
    head = text[:4096].lstrip().lower()
    xml = head.startswith("<?xml")   # (a CSV header that merely starts with '<' is none of these)
    if (xml or head.startswith(("<svg", "<!doctype svg"))) and "<svg" in head:
        kind = "an SVG picture (such as 'memplan draw' writes)"
    elif head.startswith(("<!doctype html", "<html")) or (xml and "<html" in head):
        kind = "an HTML page (a web page saved in place of the file it shows? download the raw file)"
    elif xml:
        kind = "XML"
    else:
        return ""
    return f"; this is {kind}, not {expected}"


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """What to say of text input ``data`` that ``exc`` found not UTF-8: where (line and column of the first bad
    byte) and which byte, and what to do. Why: "not UTF-8 text" alone left the user of a graph saved as Latin-1
    or Windows-1252 (one ``é`` in a name, byte 0xe9) to search a file of megabytes for it."""
    start = exc.start
    line = data.count(b"\n", 0, start) + 1
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1   # (in bytes: the line before it may be no text either)
    return (f"not UTF-8 text: byte 0x{data[start]:02x} at line {line}, byte {column} of the line (Latin-1 or "
            "Windows-1252 text? save it as UTF-8)")


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file: the same real path (through symlinks), or the
    same device and inode (hard links, bind mounts)."""
    if "\x00" in a or "\x00" in b:   # names no file (and os raises ValueError on it)
        return False
    if not (cwd_trouble(a) or cwd_trouble(b)) and os.path.realpath(a) == os.path.realpath(b):
        return True   # (a relative path in a removed current directory names no file: the stats below say so)
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def first_same_file(paths: list[str]) -> tuple[str, str] | None:
    """The first two of ``paths`` that name one file (``same_file``: a symlink or a hard link between them), or
    None: outputs written one after the other would leave only the last."""
    for i, a in enumerate(paths):
        for b in paths[i + 1:]:
            if same_file(a, b):
                return a, b
    return None


def check_outputs(inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Refuse to write any output over an input, or two outputs to one file.

    ``inputs`` and ``outputs`` map a label for messages (``"graph"``, ``"-o"``) to a path; raises
    ``MemplanError`` naming both, before anything is computed or written. Each output must also be writable
    (``check_writable``): a missing directory found only after a long import or solve wastes it.
    """
    outs = [(k, v) for k, v in outputs.items() if v]
    for label, out in outs:
        check_writable(out, label)
    for label, out in outs:
        for ilabel, inp in inputs.items():
            if inp and is_stdout(out) and is_stdout_file(inp):
                raise MemplanError(f"{label} -: stdout is redirected to the {ilabel} {inp}: {_redirected_input(inp)}")
            if inp and not is_stdout(out) and same_file(out, inp):
                raise MemplanError(f"{label} {out} is the {ilabel} {inp}: refusing to overwrite an input "
                                   "(choose another output path)")
    for i, (la, a) in enumerate(outs):
        for lb, b in outs[i + 1:]:
            if is_stdout(a) and is_stdout(b):
                raise MemplanError(f"{la} and {lb} both write to stdout (-): one output would be lost")
            if is_stdout(a) or is_stdout(b):
                same, why = is_stdout_file(b if is_stdout(a) else a), " (stdout is redirected to it)"
            else:
                same, why = same_file(a, b), ""
            if same:
                raise MemplanError(f"{la} {a} and {lb} {b} name the same file{why}: one output would be lost")


def stdout_input(inputs: dict[str, str]) -> str | None:
    """Why a report printed on stdout would land in one of the command's ``inputs`` (label -> path), or None: stdout
    is redirected to that file (``memplan show P >> P``). Why: a document for ``-o -`` was refused there
    (``check_outputs``), but ``show``, ``verify``, ``simulate`` and ``bench``'s tables printed their report into the
    input (``>>`` appends: the plan file no longer parsed, exit 0), where ``cat f >> f`` refuses. One the shell
    emptied (``> P``) is left to its reader, which names it empty and says why (``read_json``)."""
    for label, path in inputs.items():
        if path and is_stdout_file(path) and _size(path):
            return f"stdout is redirected to the {label} {path}: {_redirected_input(path)}"
    return None


def _size(path: str) -> int:
    """The size of file ``path``, 0 where it cannot be read (gone since: its reader names it)."""
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):
        return 0


def _redirected_input(path: str) -> str:
    """What to say of an input ``path`` stdout is redirected to. Why: ``> FILE`` truncates it before memplan runs,
    so "refusing to write over an input" told the user of ``plan G -o - > G`` that ``G`` was safe when it was
    already empty; ``>> FILE`` leaves it whole."""
    try:
        emptied = os.stat(path).st_size == 0
    except OSError:
        emptied = False
    if emptied:
        return "the shell emptied it before memplan ran ('>' truncates): restore it, and redirect stdout elsewhere"
    return "refusing to write over an input (redirect stdout elsewhere)"


def is_stdout_file(path: str) -> bool:
    """Whether ``path`` names the file stdout is redirected to (``> FILE``, ``>> FILE``): a '-' output is then that
    file, and an input emptied by ``> FILE`` is named so (``read_json``). Why: ``plan G -o - --graph-out S > S`` wrote the plan to stdout and renamed the graph over it (the plan
    lost, exit 0), and ``plan G -o - >> G`` appended the plan to the input graph."""
    return _is_stream_file(sys.stdout, path)


def _is_stream_file(stream, path: str) -> bool:
    """Whether ``stream`` (stdout or stderr) writes to a regular file and ``path`` names that file."""
    try:
        out = os.fstat(stream.fileno())
        st = os.stat(path)
    except (AttributeError, OSError, ValueError):   # (no file descriptor: a StringIO, pytest's capture; closed)
        return False
    return stat.S_ISREG(out.st_mode) and (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino)


def is_stderr_file(path: str) -> bool:
    """Whether ``path`` names the regular file stderr is redirected to (``2> FILE``, ``2>> FILE``)."""
    return _is_stream_file(sys.stderr, path)


def stderr_shares_stdout() -> bool:
    """Whether stderr writes into the very file or pipe stdout does (one device and inode: ``> F 2>&1``,
    ``2>&1 | jq``, ``> F 2>> F``), and not a terminal. Why: a document written to stdout (``plan G -o - > P 2>&1``)
    was followed there by the summary line (and any warning) written to stderr: P, or what the pipe fed, was no
    longer JSON, exit 0 (``cli`` then keeps stderr's notes out of it)."""
    try:
        out = os.fstat(sys.stdout.fileno())
        err = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):   # (closed, or no file descriptor: a StringIO, pytest's capture)
        return False
    if not (stat.S_ISREG(out.st_mode) or stat.S_ISFIFO(out.st_mode) or stat.S_ISSOCK(out.st_mode)):
        return False
    return (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)


def stdin_is_stderr_file() -> bool:
    """Whether standard input is read from the regular file stderr is redirected to (one device and inode:
    ``memplan plan - -o P < G 2>> G``, also through a link or another spelling of the path). Why: an input ``-``
    names standard input, which memplan refuses to read, and that refusal's error line was appended to ``G``, the
    file the user meant as the input (no argument names it, so ``is_stderr_file`` never saw it)."""
    if sys.stdin is None:   # (started with it closed, ``<&-``: descriptor 0 may since hold another file)
        return False
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):   # (a StringIO, pytest's capture: the process's own descriptor 0)
        fd = 0
    try:
        st = os.fstat(fd)
    except OSError:   # closed
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        err = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISREG(err.st_mode) and (err.st_dev, err.st_ino) == (st.st_dev, st.st_ino)


def stderr_input(inputs: dict[str, str]) -> str | None:
    """Why a line memplan writes on stderr (a summary, a warning, an error) would land in one of the command's
    ``inputs`` (label -> path), or None: stderr is redirected to that file (``memplan plan G -o P 2>> G``). Why:
    the plan was written and its summary line appended to the graph, which no longer parsed (exit 0); with ``2> G``
    the shell had emptied it, and the error that said so went into it. Unlike stdout's (``stdout_input``), an
    emptied input is refused too: its reader's error would be written into it."""
    for label, path in inputs.items():
        if path and is_stdout(path) and stdin_is_stderr_file():   # ('-': standard input, which the reader refuses)
            return (f"stderr is redirected to the file standard input is read from, and the {label} is '-' (standard "
                    "input): the error would be appended to that file ('< FILE 2>> FILE'); give the file's path, and "
                    "redirect stderr elsewhere")
        if path and is_stderr_file(path):
            if _size(path):
                return (f"stderr is redirected to the {label} {path}: its summary, warnings and errors would be "
                        "appended to it (redirect stderr elsewhere)")
            return (f"stderr is redirected to the {label} {path}, which is empty: the shell made or emptied it for the "
                    "redirection before memplan ran ('2>' truncates: restore it if it held your data); redirect stderr "
                    "elsewhere")
    return None


def regular_file_stream(stream) -> bool:
    """Whether ``stream`` writes to a regular file (not a terminal, a pipe or a device; False where it has no
    file descriptor or is closed)."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


#: every byte except the ones that open or close a string, array or object
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth(data: bytes, stop: int | None = None) -> int:
    """The deepest nesting of arrays and objects in JSON ``data``, without parsing it (and without
    recursion). Brackets inside strings do not count. Scans in chunks with numpy; stops early once
    the depth passes ``stop``. Malformed JSON gives some number: the parser judges it afterwards."""
    if b"\\" in data:  # drop escaped backslashes, then escaped quotes: what is left delimits strings
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    a = np.frombuffer(data.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    depth = best = 0
    in_string = 0
    chunk = 1 << 22
    for k in range(0, len(a), chunk):
        c = a[k:k + chunk]
        parity = (np.cumsum(c == 34, dtype=np.int64) + in_string) & 1  # 1: inside a string
        outside = parity == 0
        step = ((c == 91) | (c == 123)) & outside
        step = step.astype(np.int64) - (((c == 93) | (c == 125)) & outside)
        level = np.cumsum(step) + depth
        best = max(best, int(level.max()))
        depth, in_string = int(level[-1]), int(parity[-1])
        if stop is not None and best > stop:
            break
    return best
