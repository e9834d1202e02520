"""Reading and writing files: graph and plan JSON, atomically.

Outputs are written to a temporary file in the destination directory and renamed over the target,
so a failed or interrupted run never leaves a half-written or stale-looking file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ..errors import GraphError, MemplanError, PlanFormatError
from ..graph import Graph, graph_from_dict
from ..planfile import Plan, plan_from_dict


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".memplan-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise MemplanError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; give the file the mode a plain open would
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise MemplanError(f"cannot write {path}: {exc.strerror}") from None
        raise


def _mode_for(path: str) -> int:
    """The replaced file's mode, or 0666 less the umask for a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def read_json(path: str, error: type[MemplanError]) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise error(f"{path}: {exc.strerror}") from None


def load_graph(path: str) -> Graph:
    doc = read_json(path, GraphError)
    try:
        return graph_from_dict(doc, source=path)
    except GraphError as exc:
        msg = str(exc)
        raise GraphError(msg if msg.startswith(path) else f"{path}: {msg}") from None


def save_graph(graph: Graph, path: str) -> None:
    atomic_write_text(path, json.dumps(graph.to_dict(), indent=1) + "\n")


def load_plan(path: str) -> Plan:
    return plan_from_dict(read_json(path, PlanFormatError), source=path)


def save_plan(plan: Plan, path: str, *, timings: bool = False) -> None:
    atomic_write_text(path, plan.to_json(timings=timings))
