"""Round 62's measure of ONNX import cost (not a test: run it by hand, the base and the new side by side):
CPU seconds of one ``import_onnx`` of an ``n``-node Relu chain (``test_hostile_round61._chain_model``), the part of it
spent in ``infer._propagates``, peak RSS, and a hash of the graph JSON (equal where the graph is).

    python tests/onnx_import_cost62.py /work/main 100000     # the code at that checkout
    python tests/onnx_import_cost62.py $PWD 100000
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import tempfile
import time


def main() -> None:
    root, n = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, root)
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__))))
    import onnx  # noqa: F401 - its import out of the timing
    from test_hostile_round61 import _chain_model

    from memplan.importers.onnx import import_onnx, infer

    path = os.path.join(tempfile.mkdtemp(), f"chain{n}.onnx")
    onnx.save(_chain_model(n), path)
    spent = [0.0]
    real = infer._propagates

    def timed(*a, **k):
        t = time.process_time()
        try:
            return real(*a, **k)
        finally:
            spent[0] += time.process_time() - t
    infer._propagates = timed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.process_time()
    g = import_onnx(path)
    cpu = time.process_time() - t
    digest = hashlib.sha256(json.dumps(g.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{root}: {n} nodes, import {cpu:.2f} s CPU, _propagates {spent[0]:.2f} s, peak RSS {peak / 1024:.0f} MB "
          f"(before the import {before / 1024:.0f} MB), graph {digest}")


if __name__ == "__main__":
    main()
