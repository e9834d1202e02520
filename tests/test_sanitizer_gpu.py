"""compute-sanitizer over real steps (marker ``gpu``; skipped where the tool is not installed).

memcheck (out-of-bounds and misaligned accesses), racecheck (shared-memory hazards, distributed shared
memory included) and synccheck (barriers) over ``sanitize_target.py``'s steps: every kernel family of the
library at batches 1 to 33, serial and 3-stream plans, PDL. The negative control compiles back the hazard
racecheck found in session 18 (``attn_fused``'s blocks storing into block 0's shared memory before knowing it
had started, ``-DAF_START_SYNC=0``) and expects racecheck to name it, so the clean run is not a tool that
never reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

TARGET = Path(__file__).with_name("sanitize_target.py")
SANITIZER = shutil.which("compute-sanitizer")


def _sanitize(tool: str, *options: str) -> subprocess.CompletedProcess:
    if SANITIZER is None:
        pytest.skip("compute-sanitizer is not on PATH")
    cmd = [SANITIZER, "--tool", tool, "--report-api-errors", "no", "--error-exitcode", "9", "--print-limit", "20",
           sys.executable, str(TARGET), *options]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("tool", ["memcheck", "racecheck", "synccheck"])
def test_steps_are_clean_under_compute_sanitizer(tool):
    r = _sanitize(tool)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "every step matched the reference" in out, out[-4000:]


def test_racecheck_sees_a_remote_store_into_a_block_not_known_to_have_started():
    r = _sanitize("racecheck", "-DAF_START_SYNC=0")
    out = r.stdout + r.stderr
    assert r.returncode == 9, out[-4000:]
    assert "attn_fused" in out and "might not have entered" in out, out[-4000:]
