"""The multi-GPU layout's transfers: only COPY nodes between two devices are traffic between GPUs.

Why: ``Layout.copy_bytes`` (and ``bench_multi_gpu``'s ``copy_bytes_per_step`` / ``copies``) counted every COPY
node, so a graph's own same-device copy was reported as bytes moved between GPUs (simulate already leaves such
copies in the serial work, session 32)."""

from __future__ import annotations

import memplan
from memplan.plan import plan_devices


def _graph_with_its_own_copy() -> memplan.Graph:
    b = memplan.GraphBuilder("own_copy")
    b.input("x", 4096)
    prev = "x"
    for i in range(8):   # a chain long enough for two stages, the graph's own COPY early in it
        out = b.tensor(f"t{i}", 4096) if i < 7 else b.output("y", 4096)
        b.node(f"n{i}", "COPY" if i == 1 else "UNARY", [prev], [out], cost=10.0)
        prev = out
    return b.build()


def test_a_graphs_own_copy_is_not_a_transfer():
    from runtime.layout import layout

    split, p = plan_devices(_graph_with_its_own_copy(), 2)
    lay = layout(split.graph, p)
    own = [c for c in lay.copies if c.node == "n1"]
    assert len(own) == 1 and own[0].src_device == own[0].dst_device
    assert own[0] not in lay.transfers and all(c.src_device != c.dst_device for c in lay.transfers)
    assert lay.transfers, "the split's own transfer between the two stages"
    assert lay.copy_bytes == split.copy_bytes == sum(c.nbytes for c in lay.transfers)
    assert len(lay.copies) == len(lay.transfers) + 1
