"""The recorded index results of ``torch.unique``'s ATen ops, checked to be the ``int64`` their kernels return.

Why: torch 2.11's fake kernel of ``aten._unique2`` (the one a non-strict export records ``torch.unique``'s results
with) gives the inverse indices and the counts the input's dtype: ``torch.unique(x, return_counts=True)`` of a
float32 ``x`` recorded its counts as float32 where the kernel writes int64 (torch 2.14 fixed it). memplan planned 4
bytes an element where the kernel writes 8: an arena slot half the size of what runs into it, silently, on the GPU
machine's torch (the ATen executor's own out-dtype check refused the call, naming the node). The ATen schemas of
these ops' kernels always make inverse indices and counts ``long``. A recorded result of another dtype is refused,
not replaced: the export derived every later node's dtype from it (``counts * 1`` was recorded float32 as well), so
no stand-in at the unique op alone makes the program what eager runs.
"""

from __future__ import annotations

from typing import Any

from memplan.errors import GraphError

#: the unique ops and the positions of their index results (inverse, counts); result 0 is the values
_INDEX_RESULTS = {"_unique2": (1, 2), "unique_dim": (1, 2), "unique_consecutive": (1, 2), "_unique": (1,),
                  "unique_dim_consecutive": (1, 2)}


def check_unique_index_metas(torch: Any, ep: Any) -> None:
    """Refuse ``ep`` where a unique op's index result (inverse indices, counts) that the program reads is recorded
    with a dtype other than int64, naming the node, the result and both dtypes. (One not asked for is an empty
    tensor no node reads: its dtype sizes nothing.)"""
    targets = {}
    for name, positions in _INDEX_RESULTS.items():
        overload = getattr(getattr(getattr(torch.ops, "aten", None), name, None), "default", None)
        if overload is not None:
            targets[overload] = positions
    if not targets:
        return
    for gm in (m for m in ep.graph_module.modules() if hasattr(m, "graph")):
        for node in gm.graph.nodes:
            if node.op != "call_function" or node.target not in targets:
                continue
            val = node.meta.get("val")
            if not isinstance(val, (tuple, list)):
                continue
            read = {u.args[1] for u in node.users if u.op == "call_function" and len(u.args) == 2 and u.users}
            for k in targets[node.target]:
                got = val[k] if k < len(val) else None
                if k in read and isinstance(got, torch.Tensor) and got.dtype != torch.int64:
                    what = "inverse indices" if k == 1 else "counts"
                    raise GraphError(
                        f"node {node.name!r} ({node.target}): torch's fake kernel recorded its {what} (result {k}) "
                        f"as {str(got.dtype).removeprefix('torch.')} where the kernel writes int64 (torch "
                        f"{torch.__version__}'s fake unique; torch 2.14 records it right), and every later size was "
                        "derived from that dtype: use a newer torch, or call torch.unique on an int64 tensor "
                        "(x.long() where the values are whole numbers)")
