"""The tensor arguments whose shape or strides ``forward`` changes in place while it is exported (``x.unsqueeze_(0)``,
``x.t_()``, ``x.resize_(...)``, ``x.as_strided_(...)``).

Why: torch.export cannot trace such a change of an argument: one that changes the argument's number of dimensions
failed deep in torch with "list index out of range" (its guards are made for the dimensions the argument had), and
``decompose=True`` of one that keeps it (``x.t_()``) failed with "len(mutations) (0) != num_mutated_inp_runtime_indices
(1)"; ``from_torch``'s refusal said only that (round 73), where the ATen runtime's own watch named the argument since
round 58 (``runtime.aten.call_state``). Read by hooks on the root module around the export's call alone: names for a
refusal, never a reason to refuse a program that exported and imported.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any


def _argument_names(module: Any, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """(name, value) of each argument of the call: ``forward``'s parameter names where they bind, else
    ``argument K`` / the keyword."""
    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return [*((f"argument {k}", a) for k, a in enumerate(args)), *kwargs.items()]
    out = []
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            out += [(f"{name}[{k}]", v) for k, v in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            out += list(value.items())
        else:
            out.append((name, value))
    return out


@contextlib.contextmanager
def argument_layouts_watched(torch: Any, module: Any, changed: list[str]) -> Iterator[None]:
    """Fill ``changed``, as the block's calls of ``module`` (an ``nn.Module``; anything else: nothing watched) return,
    with one text per tensor argument whose shape or strides the call changed in place: ``'x' (it went from shape
    [3, 4] strides [4, 1] to shape [1, 3, 4] strides [12, 4, 1])``. The hooks are removed after the block."""
    if not isinstance(module, torch.nn.Module):
        yield
        return
    from torch.utils import _pytree as pytree

    metas: list[tuple[str, Any, tuple, tuple]] = []

    def before(_m: Any, args: tuple, kwargs: dict) -> None:
        metas.clear()
        for name, value in _argument_names(module, args, kwargs):
            leaves = pytree.tree_leaves(value)
            for k, leaf in enumerate(leaves):
                if isinstance(leaf, torch.Tensor):
                    where = f"leaf {k} of {name!r}" if len(leaves) > 1 else repr(name)
                    with contextlib.suppress(Exception):   # (a tensor with no strides: sparse, nested)
                        metas.append((where, leaf, tuple(leaf.shape), tuple(leaf.stride())))

    def after(_m: Any, _args: tuple, _kwargs: dict, _out: Any) -> None:
        for where, leaf, shape, strides in metas:
            try:
                now = (tuple(leaf.shape), tuple(leaf.stride()))
            except Exception:  # noqa: BLE001 - a fake tensor the export let go: nothing to compare
                continue
            if now != (shape, strides):
                changed.append(f"{where} (it went from shape {list(shape)} strides {list(strides)} to shape "
                               f"{list(now[0])} strides {list(now[1])})")
        metas.clear()

    hooks: list[Any] = []
    try:
        hooks.append(module.register_forward_pre_hook(before, with_kwargs=True, prepend=True))
        hooks.append(module.register_forward_hook(after, with_kwargs=True, always_call=True))
    except Exception:  # noqa: BLE001 - a module taking no hooks is not watched (a scripted one: "register_forward_
        for hook in hooks:   # pre_hook is not supported on ScriptModules" was the refusal, not torch's own, round 73)
            hook.remove()
        hooks = []
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def argument_layout_refusal(changed: list[str]) -> str:
    """The refusal's reason for ``argument_layouts_watched``'s findings (the first), else ""."""
    if not changed:
        return ""
    return (f"forward changes the shape or strides of its tensor argument {changed[0]} in place (an in-place view "
            "op: unsqueeze_, t_, resize_, as_strided_), which torch.export and its decomposition cannot take: eager changes the caller's "
            "tensor itself; return the new view instead (x = x.unsqueeze(0))")


def _byte_span(leaf: Any) -> tuple[int, int, int] | None:
    """(storage address, first byte, past the last byte) ``leaf`` spans in its storage, or None (no storage)."""
    try:
        if leaf.numel() == 0 or leaf.is_meta:   # (a meta tensor's storage is at address 0, all of them: no bytes
            return None                          # shared, and "share memory" blamed a failure on two of them)
        size = leaf.element_size()
        last = sum((n - 1) * s for n, s in zip(leaf.shape, leaf.stride()) if s > 0)
        start = leaf.storage_offset() * size
        return leaf.untyped_storage().data_ptr(), start, start + (last + 1) * size
    except Exception:  # noqa: BLE001 - a tensor with no storage (sparse, nested, a subclass): not compared
        return None


def overlapping_arguments(torch: Any, module: Any, args: tuple, kwargs: dict | None) -> str:
    """The first two tensor arguments of the example call whose bytes overlap (``'a' and 'b'``), else "". Why:
    ``decompose=True`` of a program that writes one of two such arguments (``a, b = base[:8], base[2:]``, ``a.add_(1)``;
    or one tensor passed twice) failed in torch with "Expected !size_bytes_is_heap_allocated_ to be true", which named
    neither (round 73)."""
    from torch.utils import _pytree as pytree

    if not isinstance(module, torch.nn.Module):
        return ""
    spans: list[tuple[str, tuple[int, int, int]]] = []
    for name, value in _argument_names(module, tuple(args), dict(kwargs or {})):
        leaves = pytree.tree_leaves(value)
        for k, leaf in enumerate(leaves):
            span = _byte_span(leaf) if isinstance(leaf, torch.Tensor) else None
            if span is None:
                continue
            where = f"leaf {k} of {name!r}" if len(leaves) > 1 else repr(name)
            for other, (ptr, lo, hi) in spans:
                if ptr == span[0] and lo < span[2] and span[1] < hi:
                    return f"{other} and {where}"
            spans.append((where, span))
    return ""
