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


def argument_names(module: Any, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """(name, value) of each argument of a call of ``module``: positional ones named by ``forward``'s signature
    where it names them (``argument k`` past them, a ``*args``), keyword ones by their keys."""
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    named = [(params[k].name if k < len(params) else f"argument {k}", a) for k, a in enumerate(args)]
    return named + [(str(k), v) for k, v in kwargs.items()]


def tensor_metas(torch: Any, given: list[tuple]) -> list[tuple[str, int, Any, tuple, tuple]]:
    """(argument's name, leaf index, the tensor, its shape, its strides) of each tensor leaf of the call's arguments
    (``given``: (name, value, spec, leaves)), as the call begins: what ``tensor_meta_changes`` compares after it."""
    return [(name, k, leaf, tuple(leaf.shape), tuple(leaf.stride())) for name, _value, _spec, leaves in given
            for k, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor) and leaf.layout == torch.strided]


def tensor_meta_changes(torch: Any, metas: list[tuple[str, int, Any, tuple, tuple]]) -> list[tuple[str, str]]:
    """(name, what) of each tensor argument whose shape or strides the call changed in place
    (``x.unsqueeze_(0)``, ``x.t_()``). Why: eager changes the caller's tensor itself, which a compiled call cannot;
    an export that sees such a change of a dimension's count fails deep in torch ("list index out of range"), and
    ``argument_layouts_watched`` (and the ATen runtime's ``load_program``) name the argument instead."""
    out = []
    for name, k, leaf, shape, strides in metas:
        try:
            now = (tuple(leaf.shape), tuple(leaf.stride()))
        except Exception:   # (a fake tensor the export let go: nothing to compare)
            continue
        if now != (shape, strides):
            what = f"leaf {k} of it" if k else "it"
            out.append((name, f"{what} went from shape {list(shape)} strides {list(strides)} to shape "
                              f"{list(now[0])} strides {list(now[1])}"))
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

    metas: list[tuple[str, int, Any, tuple, tuple]] = []

    def before(_m: Any, args: tuple, kwargs: dict) -> None:
        given = [(name, value, None, pytree.tree_leaves(value)) for name, value in argument_names(module, args, kwargs)]
        metas[:] = tensor_metas(torch, given)

    def after(_m: Any, _args: tuple, _kwargs: dict, _out: Any) -> None:
        changed.extend(f"{name!r} ({what})" for name, what in tensor_meta_changes(torch, metas))
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
    for name, value in argument_names(module, tuple(args), dict(kwargs or {})):
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
