"""The module's own tensors kept as they were across a non-strict ``torch.export`` (``state_kept``).

Why: non-strict export runs forward's Python. It swaps the registered parameters and buffers for fake tensors, but a
real tensor the module holds elsewhere stays real: a buffer's alias in a plain list (``self.hold = [self.child.pad]``,
forward ``self.hold[0].add_(1)``), a tensor in a submodule's dict. Forward's in-place writes to those land on the
user's model: ``from_torch`` moved ``pad`` from 3 to 4 and nothing put it back (round 71). Importing a model for
planning must not change it, so such tensors are copied before the export (up to ``_BUDGET`` bytes in all) and put
back, bytes and version counters, after it; one written that no copy could restore is refused by name.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

from ...errors import GraphError

_BUDGET = 64 * 1024 * 1024   # (bytes of plain-attribute tensors copied up front: small next to any model's weights)
_DEPTH = 6                   # (containers nested this deep are walked: a bounded walk, not the whole heap)
_ITEMS = 100_000             # (container items visited at most)
_SKIP = frozenset({"_parameters", "_buffers", "_modules", "_forward_hooks", "_forward_pre_hooks",
                   "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
                   "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
                   "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                   "_forward_pre_hooks_with_kwargs", "_non_persistent_buffers_set"})
#: (objects whose attributes are code, not state: not walked)
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def _version_of(t: Any) -> int | None:
    """``t._version``; None where it has none (an inference tensor, which export cannot write in place anyway)."""
    try:
        return int(t._version)
    except Exception:  # noqa: BLE001 - (inference tensors raise on _version)
        return None


def _set_version(torch, t: Any, version: int) -> None:
    """Put ``t``'s version counter back to ``version`` (shared with its views and base: theirs move back too)."""
    try:
        torch._C._autograd._unsafe_set_version_counter((t,), (version,))
    except TypeError:   # (older torch: one tensor, one int)
        torch._C._autograd._unsafe_set_version_counter(t, version)


def reachable_tensors(torch, module: Any) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """``(registered, held)``: the module tree's parameters and buffers, and the real tensors its modules hold in
    plain attributes, in lists, tuples, dicts and sets of them or in plain objects' attributes (a bounded walk; a module found there is walked
    too, since export does not swap its weights), each ``(path, tensor)`` once, by identity, in a fixed order."""
    names: dict[int, str] = {}
    registered: list[tuple[str, Any]] = []
    for group in (module.named_parameters(), module.named_buffers()):
        for n, t in group:
            if isinstance(t, torch.Tensor) and id(t) not in names:
                names[id(t)] = n
                registered.append((n, t))
    seen: set[int] = set()
    held: list[tuple[str, Any]] = []
    modules: list[tuple[str, Any]] = [("", module)]
    done: set[int] = set()
    items = 0
    while modules:
        prefix, top = modules.pop(0)
        for mpath, sub in top.named_modules(prefix=prefix):
            if id(sub) in done:
                continue
            done.add(id(sub))
            dot = f"{mpath}." if mpath else ""
            if top is not module:   # (a module held in a plain attribute: export leaves its weights real)
                for group in (sub._parameters, sub._buffers):
                    for n, t in group.items():
                        if isinstance(t, torch.Tensor) and id(t) not in seen:
                            seen.add(id(t))
                            held.append((names.get(id(t), f"{dot}{n}"), t))
            stack = [(f"{dot}{k}", v, 0) for k, v in vars(sub).items() if k not in _SKIP]
            stack.reverse()
            while stack and items < _ITEMS:
                path, v, depth = stack.pop()
                items += 1
                if isinstance(v, torch.nn.Module):
                    if id(v) not in done:
                        modules.append((path, v))
                elif isinstance(v, torch.Tensor):
                    if id(v) not in seen:   # (an alias of a registered one: named as registered, copied as held)
                        seen.add(id(v))
                        held.append((names.get(id(v), path), v))
                elif depth < _DEPTH and isinstance(v, (list, tuple)):
                    stack.extend((f"{path}[{i}]", x, depth + 1) for i, x in reversed(list(enumerate(v))))
                elif depth < _DEPTH and isinstance(v, dict):
                    stack.extend((f"{path}[{k!r}]", x, depth + 1) for k, x in reversed(list(v.items())))
                elif depth < _DEPTH and isinstance(v, (set, frozenset)):
                    stack.extend((f"{path}{{}}", x, depth + 1) for x in v)
                elif depth < _DEPTH and not isinstance(v, _OPAQUE) and isinstance(getattr(v, "__dict__", None), dict):
                    # (a plain object's attributes: a cache or config object holding tensors)
                    stack.extend((f"{path}.{k}", x, depth + 1) for k, x in reversed(list(vars(v).items())))
    registered = [(n, t) for n, t in registered if id(t) not in seen]
    return registered, held


@contextlib.contextmanager
def state_kept(torch, module: Any):
    """Run the block (an export of ``module``) and leave every tensor ``reachable_tensors`` finds bitwise as it was,
    its version counter too: the plain-attribute ones are copied first while their bytes fit ``_BUDGET`` in all, and
    each whose version moved is copied back. A GraphError names one written that has no copy (over the budget, or a
    registered weight written through an alias the walk did not reach): it is left as forward wrote it."""
    if not isinstance(module, torch.nn.Module):   # (a given ExportedProgram: its module is made, not the user's)
        yield
        return
    registered, held = reachable_tensors(torch, module)
    budget = _BUDGET
    watched: list[tuple[str, Any, int, Any]] = []   # (path, tensor, version, copy or None)
    spent = 0
    for path, t in held:
        version = _version_of(t)
        if version is None or t.is_meta or type(t).__name__ == "FakeTensor":
            continue
        size = t.numel() * t.element_size() if t.layout == torch.strided else budget + 1
        copy = None
        if spent + size <= budget:
            spent += size
            with torch.no_grad():
                copy = t.detach().clone()
        watched.append((path, t, version, copy))
    watched += [(path, t, v, None) for path, t in registered if (v := _version_of(t)) is not None]
    try:
        yield
    finally:
        lost, swapped = [], {id(t) for _, t in registered}
        for path, t, version, copy in watched:
            if _version_of(t) == version:
                continue
            if copy is None:
                lost.append((path, id(t) in swapped))
                continue
            with torch.no_grad():
                t.detach().copy_(copy)
            _set_version(torch, t, version)
        if lost:
            (path, weight), name = lost[0], type(module).__name__
            what = ("a registered parameter or buffer, written through a reference from_torch did not find (export "
                    "swaps the module's own for a fake), so it holds no copy of it" if weight else
                    "a real tensor held outside the registered parameters and buffers (or an alias of one), which "
                    f"export does not swap for a fake, and over the {_BUDGET // 2**20} MiB from_torch copies up front")
            raise GraphError(f"{name}'s forward wrote tensor {path!r} in place during the export: {what}, to put "
                             "back: it may now hold what forward wrote (register it as a buffer, or keep forward from "
                             "writing it)")
