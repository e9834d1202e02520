"""Lazy layers (``nn.LazyLinear``, ``nn.LazyConv2d``, any ``nn.LazyModuleMixin``) not yet materialised, refused at
compile before the export.

Why: their parameters are ``UninitializedParameter``s until the first eager call infers their shapes from its input
(a forward pre-hook that then removes itself); torch.export cannot trace that, and compile failed with torch's
"Attempted to use an uninitialized parameter in <method '_is_view' ...>" inside a GraphError naming no layer (round
62). Not materialised here by a call of ours: an eager call runs all of ``forward`` (its hooks, its random draws,
its Python side effects), which is more than compile may do for the user; the first eager call is the user's.
"""

from __future__ import annotations

from typing import Any

from .errors import AtenExecutorError


def check_materialised(torch: Any, module: Any) -> None:
    """Refuse ``module``'s tree where a module of it still holds an uninitialised parameter or buffer, naming the first
    (a lazy layer: ``Sequential.0 (LazyLinear)``) and what to do."""
    if not isinstance(module, torch.nn.Module):
        return
    lazy = (torch.nn.parameter.UninitializedParameter, torch.nn.parameter.UninitializedBuffer)
    root = type(module).__name__
    for path, m in module.named_modules():
        name = next((n for n, t in [*m._parameters.items(), *m._buffers.items()] if isinstance(t, lazy)), None)
        if name is None:
            continue
        where = f"{root}.{path}" if path else root
        raise AtenExecutorError(
            f"{where} ({type(m).__name__}) has an uninitialised {name!r} (a lazy module: its shapes come from its "
            "first call's input, which torch.export cannot trace): call the module once eagerly before compile "
            "(module(*example_inputs)), which materialises it as eager's first call does, then compile")
