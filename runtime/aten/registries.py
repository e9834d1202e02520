"""The registries of each module of a tree (parameters, buffers, submodules, forward hooks, the parameters' and
buffers' ``requires_grad``): snapshots before an export, the entries ``forward`` added, deleted or replaced, and
putting them back.

Why: they are torch's own fields, left out of the call-state watch, so ``del self.sub`` or a
``self.register_buffer("b", x * 2)`` in ``forward`` compiled and ran the export's call silently, and left the module
without its submodule or holding the export's fake tensor.
"""

from __future__ import annotations

from typing import Any

from .module_writes import MISSING

#: the registries of an ``nn.Module`` that ``registry_changes`` watches, and what each holds
REGISTRIES = (("_parameters", "parameter"), ("_buffers", "buffer"), ("_modules", "submodule"),
              ("_forward_pre_hooks", "forward pre-hook"), ("_forward_hooks", "forward hook"))
#: the dicts torch keeps beside the hook dicts (keyed by the same handle ids): snapshot and put back with them, never
#: named (a hook registered ``with_kwargs=True`` puts its id in both)
HOOK_FLAGS = ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs", "_forward_hooks_always_called")


#: ``registry_snapshots``' entries for the ``requires_grad`` of each parameter and of each buffer (no stores of a
#: module's own), and the store each reads. Review 40c: a buffer's ``requires_grad_(True)`` was unwatched
_GRADS = {"requires_grad": "_parameters", "requires_grad of buffer": "_buffers"}
GRAD_FLAGS = frozenset(_GRADS)


def _grads(m: Any, store: str = "_parameters") -> dict[str, tuple[int, bool]]:
    """{name: (id of the tensor, its requires_grad)} of ``m``'s parameters or buffers (``store``): a flag is compared
    on the same tensor only (one replaced is ``registry_changes``' or ``sets.fixed_sets``' business)."""
    held = vars(m).get(store)
    return {k: (id(p), bool(p.requires_grad)) for k, p in held.items() if p is not None} \
        if isinstance(held, dict) else {}


def registry_snapshots(torch: Any, module: Any) -> list[tuple[Any, str, dict, set]]:
    """(module, its name as the guard spells it, {store: shallow copy of it}, its non-persistent buffer names) of each
    module of ``module``'s tree (none for an object that is no ``nn.Module``)."""
    if not isinstance(module, torch.nn.Module):
        return []
    root = type(module).__name__
    out, seen = [], set()
    for path, m in module.named_modules():
        if id(m) in seen:
            continue
        seen.add(id(m))
        stores = {store: dict(held) for store in (*dict(REGISTRIES), *HOOK_FLAGS)
                  if isinstance(held := vars(m).get(store), dict)}
        stores.update({flag: _grads(m, store) for flag, store in _GRADS.items()})
        out.append((m, f"{root}.{path}" if path else root, stores, set(vars(m).get("_non_persistent_buffers_set", ()))))
    return out


def registry_changes(snapshots: list[tuple[Any, str, dict, set]]) -> list[tuple[Any, str, str, str, Any, Any]]:
    """(module, store, key, name, before, after; ``MISSING`` where none) of each entry of the snapshot's registries
    that is another object now: a parameter, buffer, submodule or forward (pre-)hook ``forward`` deleted, registered
    or replaced (a hook keyed by its handle's id: ``register_forward_hook`` in ``forward``, session 40b).
    Why: ``_parameters``, ``_buffers`` and ``_modules`` are torch's own fields, left out of the call-state watch, so
    ``del self.sub`` (every later eager call takes another path), ``self.register_buffer("b", x * 2)`` behind ``if
    not hasattr(self, "b")`` compiled and ran the export's call silently, and left the module without its submodule
    or holding the export's ``FakeTensor`` as a buffer."""
    out = []
    for m, label, stores, _np in snapshots:
        for store, before in stores.items():
            now = vars(m).get(store) if store not in _GRADS else _grads(m, _GRADS[store])
            now = now if isinstance(now, dict) else {}
            if store in _GRADS:   # (a parameter's or buffer's flag, on the same tensor: ``self.w.requires_grad_(False)``)
                out += [(m, store, k, f"{label}.{k}", v[1], now[k][1]) for k, v in before.items()
                        if k in now and now[k][0] == v[0] and now[k][1] != v[1]]
                continue
            for key in list(before) + [k for k in now if k not in before]:
                old, new = before.get(key, MISSING), now.get(key, MISSING)
                if old is not new:
                    out.append((m, store, key, f"{label}.{key}", old, new))
    return out


def restore_registries(snapshots: list[tuple[Any, str, dict, set]],
                       changes: Any) -> None:
    """Put back each registry entry ``changes`` (``registry_changes``, seen inside the export's call) names as
    ``snapshots`` (taken before the export: the module's real tensors) hold it. Compile runs no call: torch's export
    put back what it swapped for its tracing, not what ``forward`` registered or deleted."""
    taken = {id(m): (stores, non_persistent) for m, _label, stores, non_persistent in snapshots}
    for m, store, key, _name, _old, _new in changes:
        if id(m) not in taken or not isinstance(vars(m).get(_GRADS.get(store, store)), dict):
            continue
        stores, non_persistent = taken[id(m)]
        if store in _GRADS:
            p = vars(m)[_GRADS[store]].get(key)
            if p is not None and key in stores[store] and p.requires_grad != stores[store][key][1]:
                p.requires_grad_(stores[store][key][1])
            continue
        held = vars(m)[store]
        if key in stores.get(store, {}):
            held[key] = stores[store][key]
        else:
            held.pop(key, None)
        if store == "_buffers" and isinstance(vars(m).get("_non_persistent_buffers_set"), set):
            (vars(m)["_non_persistent_buffers_set"].add if key in non_persistent
             else vars(m)["_non_persistent_buffers_set"].discard)(key)
