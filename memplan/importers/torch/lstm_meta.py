"""The recorded hidden-state results of ``aten.lstm.input``, made what its kernel returns: ``h0``'s and ``c0``'s shapes.

Why: torch 2.11's lstm decomposition, which is the fake kernel a non-strict export records ``lstm``'s results with,
ends each layer with ``hx.squeeze(1)`` where it means ``squeeze(0)`` (torch 2.14 fixed it): ``h_n`` and ``c_n`` of a
bidirectional ``nn.LSTM`` on a batch of 2 were recorded as ``(2, 1, 2, 6)`` where the kernel returns ``(2, 2, 6)``.
The executor refused every such module ("the op's fake implementation disagrees with its kernel") on the GPU
machine's torch. ``lstm``'s ``h_n`` and ``c_n`` always have the shapes of the ``hx`` it is given (``proj_size``
included: ``h0`` is then the narrower one), so a recorded result of another shape with as many elements is replaced
by a contiguous stand-in of ``hx``'s shape; anything else is left for the executor's check to refuse.
"""

from __future__ import annotations

from typing import Any


def fix_lstm_hidden_metas(torch: Any, ep: Any) -> None:
    """Rewrite, in place, the ``val`` of each ``aten.lstm.input`` node of ``ep`` and of its ``getitem`` users where
    result 1 or 2 disagrees with ``hx[0]`` / ``hx[1]`` only in shape (same dtype, device and element count)."""
    target = getattr(getattr(getattr(torch.ops, "aten", None), "lstm", None), "input", None)
    if target is None:
        return
    for gm in _graph_modules(ep.graph_module):
        for node in gm.graph.nodes:
            if node.op == "call_function" and node.target is target:
                _fix_node(torch, node)


def _graph_modules(gm: Any) -> list[Any]:
    """``gm`` and the graph modules under it (a ``cond`` / ``while_loop`` body holds its own ``lstm``)."""
    return [m for m in gm.modules() if hasattr(m, "graph")]


def _fix_node(torch: Any, node: Any) -> None:
    val = node.meta.get("val")
    hx = node.args[1] if len(node.args) > 1 else None
    if not isinstance(val, (tuple, list)) or len(val) != 3 or not isinstance(hx, (tuple, list)) or len(hx) != 2:
        return
    fixed, changed = list(val), False
    for k, h in ((1, hx[0]), (2, hx[1])):
        want = h.meta.get("val") if isinstance(h, torch.fx.Node) else None
        got = fixed[k]
        if not (isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor)) or got.shape == want.shape:
            continue
        if got.numel() != want.numel() or got.dtype != want.dtype or got.device != want.device:
            continue
        with got.fake_mode if hasattr(got, "fake_mode") else _nothing():
            fixed[k] = torch.empty(tuple(want.shape), dtype=got.dtype, device=got.device)
        changed = True
    if not changed:
        return
    node.meta["val"] = type(val)(fixed)
    for user in node.users:
        if user.op == "call_function" and len(user.args) == 2 and user.args[0] is node and user.args[1] in (1, 2):
            user.meta["val"] = fixed[user.args[1]]
            if "tensor_meta" in user.meta:
                from torch.fx.passes.shape_prop import _extract_tensor_metadata

                user.meta["tensor_meta"] = _extract_tensor_metadata(fixed[user.args[1]])


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()


def decomposing(torch: Any, ep: Any) -> Any:
    """``ep.run_decompositions`` for ``decompose=True``: with torch's table where its ``lstm`` decomposition returns
    ``h_n``/``c_n`` of ``hx``'s shapes (2.14), else with that one entry wrapped to reshape them to ``hx``'s.

    Why: torch 2.11's decomposition (the same ``squeeze(1)`` as above) is not only its fake kernel: run by
    ``run_decompositions`` it is the program, so a decomposed ``nn.LSTM`` on a batch of 3 returned ``h_n`` of
    ``(1, 1, 3, 7)`` where eager's is ``(1, 3, 7)``, and an op of the model over it (``h_n.sum(1)``, ``h_n[:, 0]``)
    was planned for other shapes than eager's, silently. The elements are right and in order (each layer's
    ``(1, B, H)`` stacked): a reshape (a view) gives eager's result."""
    table = _fixed_table(torch)
    return ep.run_decompositions if table is None else (lambda: ep.run_decompositions(table))


def _fixed_table(torch: Any) -> Any:
    """torch's default decomposition table with ``aten.lstm.input``'s entry reshaping ``h_n``/``c_n`` to ``hx``'s
    shapes; None where torch's entry already returns them (or there is none)."""
    target = getattr(getattr(getattr(torch.ops, "aten", None), "lstm", None), "input", None)
    table = torch.export.default_decompositions()
    if target is None or target not in table:
        return None
    # (the table holds None for a composite op it leaves to torch's registered decomposition: that one)
    own = table[target] or _registered(torch).get(target)
    if own is None or _lstm_decomposition_right(torch, own):
        return None

    def lstm(input: Any, hx: Any, *args: Any, **kwargs: Any) -> Any:
        out, h, c = own(input, hx, *args, **kwargs)
        return out, h.reshape(hx[0].shape), c.reshape(hx[1].shape)

    table[target] = lstm
    return table


def _registered(torch: Any) -> dict:
    """torch's registered Python decompositions (``torch._decomp.decomposition_table``), by op."""
    import torch._decomp

    return torch._decomp.decomposition_table


def _lstm_decomposition_right(torch: Any, decomposition: Any) -> bool:
    """Whether ``decomposition`` (torch's for ``aten.lstm.input``) returns ``hx``'s shapes on a batch of 2, run on
    meta tensors (no data, a few dozen small ops)."""
    meta = {"device": "meta"}
    x, h = torch.empty(3, 2, 4, **meta), torch.empty(1, 2, 5, **meta)
    params = [torch.empty(20, 4, **meta), torch.empty(20, 5, **meta), torch.empty(20, **meta), torch.empty(20, **meta)]
    try:
        _out, h_n, c_n = decomposition(x, [h, h], params, True, 1, 0.0, False, False, False)
    except Exception:  # noqa: BLE001 - a decomposition this check cannot run is left as torch's
        return True
    return tuple(h_n.shape) == tuple(h.shape) and tuple(c_n.shape) == tuple(h.shape)
