"""Session 52 (verify52): the verifier on concurrent writers of one long view chain, before and after side by side.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/verify_chain_s52.py [--base main] [--views 20000]
[--streams 1024]``. "Before" is the ``memplan`` package of commit ``--base`` (``git archive`` into a temporary
folder), "after" this checkout; each runs in a child process of its own (one core). Per side it prints the seconds of
``memplan.verify.check``, the peak of Python allocations during it (``tracemalloc``, so the seconds printed are
slower than untraced; a second untraced run gives the plain seconds), and the first 16 hex digits of the SHA-1 of the
findings (``repr`` of the list and its ``total``/``exact``): equal digests are identical findings.

The case: ``v0`` produced by ``p`` on stream 0, then views ``v1 .. v{k-1}``, each of the one above, each written by
its own node ``n{i}`` (no inputs: a SET_ROWS-like write) dealt round-robin over the streams with no event between
them, so the writers of the chain are concurrent and the chain's latest writers are one per stream (up to 1,024);
then a reader ``r`` of the last view on stream 0 waiting for the last writer of every stream (safe), and, for the
unsafe variant (``--unsafe``), the same without its wait on stream 1's last writer.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile

CHILD = r'''
import hashlib, sys, time, tracemalloc
from memplan import GraphBuilder
from memplan.verify import check
k, streams, unsafe = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
b = GraphBuilder("concurrent", alignment=1)
b.input("x", 8)
b.node("p", "OP", ["x"], b.intermediate("v0", 8))
for i in range(1, k):
    b.node(f"n{i}", "SET", [], b.view(f"v{i}", f"v{i - 1}", 8, 0))
b.node("r", "OP", [f"v{k - 1}"], b.output("o", 8))
g = b.build()
order = ([{"node": "p", "stream": 0}] + [{"node": f"n{i}", "stream": i % streams} for i in range(1, k)]
         + [{"node": "r", "stream": 0}])
last = {}
for e in order[:-1]:
    last[e["stream"]] = e["node"]
events = [{"after": n, "before": "r"} for s, n in sorted(last.items()) if s != 0 and not (unsafe and s == 1)]
offsets = {t.id: 8 for t in g.tensors} | {"x": 0, "o": 16}
pd = {"format": "memplan.plan/1", "graph": "concurrent", "alignment": 1, "arena_bytes": 24, "lower_bound_bytes": 0,
      "streams": streams, "order": order, "events": events,
      "tensors": [{"id": t.id, "offset": offsets[t.id], "size": t.size} for t in g.tensors]}
t = time.perf_counter()
found = check(g, pd)
plain = time.perf_counter() - t
tracemalloc.start()
t = time.perf_counter()
again = check(g, pd)
traced = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
assert again == found and again.total == found.total
digest = hashlib.sha1(repr((list(found), found.total, found.exact)).encode()).hexdigest()[:16]
print(f"{plain:7.2f} s  {peak / 2**20:7.1f} MB peak (traced {traced:.2f} s)  findings {len(found)} total "
      f"{found.total}  {digest}")
'''


def run(root: str, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=root, PYTHONHASHSEED="0")
    r = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "FAILED: " + r.stderr.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="main")
    ap.add_argument("--views", type=int, default=20000)
    ap.add_argument("--streams", type=int, default=1024)
    a = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as tmp:
        tar = os.path.join(tmp, "base.tar")
        subprocess.run(["git", "-C", here, "archive", "-o", tar, a.base, "memplan"], check=True)
        with tarfile.open(tar) as f:
            f.extractall(tmp)
        for unsafe in ("0", "1"):
            args = [str(a.views), str(a.streams), unsafe]
            print(f"{'unsafe' if unsafe == '1' else 'safe'}, {a.views} views on {a.streams} streams")
            print(f"  before ({a.base}): {run(tmp, args)}")
            print(f"  after  (here):  {run(here, args)}")


if __name__ == "__main__":
    main()
