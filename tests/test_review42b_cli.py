"""Review of round 42 (CLI): text reports to a stdout in non-blocking mode, buffered, and printed line by line.

Round 42 wrote ``show``'s report whole under PYTHONUNBUFFERED only (``cli._out``); the normal, buffered stdout and
every ``print`` outside ``_out`` (``bench``'s table rows) still failed or lost text. Each test names the input, what
the command did with it, and what it does now.
"""

from __future__ import annotations

import io
import os
import sys

import pytest
from cli_contract import run_memplan
from test_hostile_round42_cli import _pending

import memplan

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="F_SETPIPE_SZ is Linux's")


class _LatePipe:
    """A pipe in non-blocking mode (O_NONBLOCK, as another program sharing it sets it) that holds 4 KB, as stdout
    (``sys.stdout`` a text layer over its write end, ``buffered`` or as under PYTHONUNBUFFERED), and a reader that
    starts only once the pipe is full (to within a row), then reads ``want`` bytes (or until nothing comes for a second)."""

    def __init__(self, monkeypatch, buffered: bool, want: int) -> None:
        import fcntl
        import threading

        self.r, self.w = os.pipe()
        fcntl.fcntl(self.w, 1031, 4096)   # F_SETPIPE_SZ: the pipe holds 4 KB (one page)
        fcntl.fcntl(self.w, fcntl.F_SETFL, fcntl.fcntl(self.w, fcntl.F_GETFL) | os.O_NONBLOCK)
        raw = io.FileIO(self.w, "w", closefd=False)
        layer = io.BufferedWriter(raw) if buffered else raw
        self.stdout = io.TextIOWrapper(layer, encoding="utf-8", write_through=not buffered)
        monkeypatch.setattr("sys.stdout", self.stdout)
        self.want, self.got = want, bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        import select
        import time

        deadline = time.monotonic() + 5
        while _pending(self.r) < 4096 - 128 and time.monotonic() < deadline:   # (full, but for a row)
            time.sleep(0.005)
        time.sleep(0.05)
        while len(self.got) < self.want and select.select([self.r], [], [], 1)[0]:
            chunk = os.read(self.r, 65536)
            if not chunk:
                return
            self.got.extend(chunk)

    def close(self) -> bytes:
        self.reader.join(10)
        os.close(self.w)
        os.close(self.r)
        return bytes(self.got)


@pytest.mark.parametrize("buffered", [True, False])
def test_a_report_to_a_non_blocking_stdout_is_whole(tmp_path, monkeypatch, capsys, buffered):
    """``memplan show PLAN --top 100`` (a 14 KB report) to a stdout in non-blocking mode holding 4 KB, its reader a
    moment late, *without* PYTHONUNBUFFERED (the default): "cannot write to stdout: write could not complete without
    blocking", exit 2, the report cut at 4 KB (round 42 made it whole under PYTHONUNBUFFERED only). Now the command
    waits for the reader in both modes, as a blocking stdout does: the whole report, exit 0."""
    from memplan.examples import bundled

    plan_file = tmp_path / "p.json"
    memplan.plan(bundled()["llama-1b-decode"], solver="greedy").save(str(plan_file))
    code, want, _ = run_memplan(capsys, ["show", plan_file, "--top", "100"])
    assert code == 0 and len(want.encode()) > 4096
    pipe = _LatePipe(monkeypatch, buffered, len(want.encode()))
    try:
        code, _, err = run_memplan(capsys, ["show", plan_file, "--top", "100"])
    finally:
        got = pipe.close()
    assert code == 0, err
    assert got.decode() == want


@pytest.mark.parametrize("buffered", [True, False])
def test_rows_printed_one_by_one_to_a_non_blocking_stdout_all_arrive(monkeypatch, buffered):
    """``memplan bench``'s table: one ``print(row, flush=True)`` per row while the command runs (stdout is then
    ``cli._ReaderGone``), to a stdout in non-blocking mode holding 4 KB whose reader lags. Under PYTHONUNBUFFERED
    each print was one raw write whose count Python drops: the rows past the first 4 KB were lost, exit 0 (60 rows
    of ``bench planners --graph ...`` arrived as 4,096 of 5,376 bytes); buffered, a BlockingIOError ended the run
    ("cannot write to stdout", exit 2). Now every row arrives, in order."""
    from memplan.cli import _ReaderGone

    rows = [f"row {i:03d} " + "x" * 90 for i in range(100)]   # 10 KB, 100 bytes a row
    want = "".join(r + "\n" for r in rows).encode()
    pipe = _LatePipe(monkeypatch, buffered, len(want))
    try:
        out = _ReaderGone(pipe.stdout)
        for r in rows:
            print(r, file=out, flush=True)
        assert not out.gone
    finally:
        got = pipe.close()
    assert got == want
