"""The lists, dicts, sets and deques a module tree holds (and those inside them): snapshots before an export, what
``forward`` changed in them in place, and putting them back.

Why: ``forward`` may change one in place (a feature tap's ``self.feats.append(y)``, ``self.stats["n"] += 1``),
which no ``__setattr__`` shows; the compiled calls, which run no Python, never change it where eager's calls do,
and torch's export leaves the user's object holding the export's fake tensors.
"""

from __future__ import annotations

import collections
from typing import Any

from .module_writes import module_fields
from .settings import SCALARS, plain, same_value
from .tensor_attrs import tensor_value


def container_snapshots(torch: Any, module: Any) -> list[tuple[str, Any, str | None, Any, Any]]:
    """(name, module, attribute, object, shallow copy) of each public list, dict or deque attribute of ``module``'s
    tree (``Net.feats``), and of the containers inside them (``Net.cfg['steps']``: module and attribute None).

    Why: ``forward`` may change one in place (a feature tap's ``self.feats.append(y)``, ``self.stats["n"] += 1``),
    which no ``__setattr__`` shows. torch's export puts a copy of the old contents on the module, and leaves the
    user's own object changed (holding the export's fake tensors) and no longer the module's; the compiled calls,
    which run no Python, never changed it where eager's calls do. Private ones too (``self._steps.append(1)``, a
    ``self._cache["h"]`` filled once; session 39: they ran the export's call silently), torch's own fields aside. Subclasses (a ``defaultdict`` counter, an
    ``OrderedDict``) and nested containers (a list in a dict, whose shallow copy holds the very list) count too."""
    if not isinstance(module, torch.nn.Module):
        return []
    root = type(module).__name__
    out: list[tuple[str, Any, str | None, Any, Any]] = []
    seen: dict[int, tuple[int, int]] = {}
    internal = module_fields(torch)
    for path, m in module.named_modules():
        for key, v in vars(m).items():
            if key in internal or key.startswith("__"):
                continue
            name = f"{root}.{path}.{key}" if path else f"{root}.{key}"
            if _is_container(v):
                _snapshot(name, m, key, v, out, seen, 0)
            elif type(v) is tuple:   # (the containers a tuple holds: ``self.t = ([0],)``, session 41)
                for i, item in enumerate(v[:1024]):
                    if _is_container(item):
                        _snapshot(f"{name}[{i}]", None, None, item, out, seen, 1)
    return out


#: the containers watched (and the Python state a hook commonly changes, which ``hook_state`` and ``python_state``
#: keep copies of): the builtin ones and the standard library's counters and queues (not other subclasses:
#: transformers' ``ModelOutput`` or torch.fx's immutable lists have copies and ``clear``s of their own); a ``set``
#: and a ``Counter`` too (session 41: ``self.seen.add(n)``, ``self.stats["n"] += 1`` on a ``Counter`` compiled, and
#: the compiled calls never changed them)
CONTAINERS = (list, dict, collections.deque, collections.defaultdict, collections.OrderedDict, set, collections.Counter)


def _is_container(v: Any) -> bool:
    return type(v) in CONTAINERS


def _snapshot(name: str, owner: Any, key: str | None, obj: Any, out: list, seen: dict[int, tuple[int, int]],
              depth: int) -> None:
    """``obj``'s entry and, two levels down and for containers of at most 1024 items, its inner containers'.

    ``seen``: each container's (index in ``out``, shallowest depth walked). One met again shallower is walked again
    from there (round 61: a dict first met two levels inside another attribute, ``self.holder = {"h": {"h2": d}}``,
    then as ``self.x = d``, kept its inner list unwatched, so ``self.x["k"][0] += 1`` compiled and every compiled
    call ran the export's count), and one met again as a module's attribute takes that name and owner."""
    known = seen.get(id(obj))
    if known is not None and known[1] <= depth and (owner is None or out[known[0]][1] is not None):
        return
    if known is None:
        seen[id(obj)] = (len(out), depth)
        out.append((name, owner, key, obj, obj.copy()))
    else:
        index, walked = known
        seen[id(obj)] = (index, min(walked, depth))
        if owner is not None and out[index][1] is None:   # (the copy stays the one taken first: nothing ran between)
            out[index] = (name, owner, key, obj, out[index][4])
        if walked <= depth:
            return
    if depth >= 2 or len(obj) > 1024:
        return
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for k, v in items:
        if _is_container(v):
            _snapshot(f"{name}[{k!r}]", None, None, v, out, seen, depth + 1)
        elif type(v) is tuple:   # (the containers a tuple item holds, as a tuple attribute's: ``{"t": ([0],)}``,
            for i, item in enumerate(v[:1024]):   # round 61: unwatched, its count compiled silently)
                if _is_container(item):
                    _snapshot(f"{name}[{k!r}][{i}]", None, None, item, out, seen, depth + 1)


def same_item(a: Any, b: Any) -> bool:
    return a is b or (isinstance(a, SCALARS) and same_value(a, b))


def unchanged(now: Any, before: Any) -> bool:
    if isinstance(now, set):
        return {_set_key(x) for x in now} == {_set_key(x) for x in before}
    if not isinstance(now, dict):
        return len(now) == len(before) and all(map(same_item, now, before))
    return now.keys() == before.keys() and all(same_item(now[k], before[k]) for k in now)


def plain_change(before: Any, after: Any) -> bool:
    """Whether a plain value (a number, string, None, a tuple of them) is among the items a list's or dict's change
    added, removed or replaced: a count or setting the next eager call reads (``self.steps.append(1)``). Tensors alone
    (LeViT's ``attention_bias_cache`` of a weight's gather, a feature tap's ``self.feats.append(y)``) are a cache or
    a record the program's results do not follow."""
    if isinstance(after, set):
        return any(plain(x, depth=1) for x in after ^ before)
    if not isinstance(after, dict):
        items = [x for i, x in enumerate(after) if i >= len(before) or not same_item(x, before[i])]
        items += [x for i, x in enumerate(before) if i >= len(after) or not same_item(x, after[i])]
    else:
        items = [d[k] for d, o in ((after, before), (before, after)) for k in d
                 if k not in o or not same_item(d[k], o[k])]
    return any(plain(x, depth=1) for x in items)


def container_tensors(torch: Any, snapshots: list[tuple[str, Any, str | None, Any, Any]]
                      ) -> list[tuple[Any, Any, str, Any]]:
    """(container, key or index, name, value) of each tensor (or list, tuple or dict of tensors) the containers of
    ``snapshots`` hold now that they did not hold at the snapshot (added or replaced in place)."""
    out = []
    for name, _owner, _key, obj, before in snapshots:
        if isinstance(obj, set) or unchanged(obj, before):   # (a set's items have no key to return them by)
            continue
        if isinstance(obj, dict):
            items = [(k, v) for k, v in obj.items() if k not in before or not same_item(v, before[k])]
        else:
            items = [(i, v) for i, v in enumerate(obj) if i >= len(before) or not same_item(v, before[i])]
        out += [(obj, k, f"{name}[{k!r}]", v) for k, v in items if tensor_value(torch, v)]
    return out


def undo_container_changes(snapshots: list[tuple[str, Any, str | None, Any, Any]]
                           ) -> tuple[tuple[str, Any, Any, Any], ...]:
    """(name, contents before, contents after, the container itself) of each container of ``snapshots`` changed
    since, each put back as it was: its contents, in place, and the object itself on its module (compile runs no
    call)."""
    changed = []
    for name, owner, key, obj, before in snapshots:
        if not unchanged(obj, before):
            changed.append((name, before, obj.copy(), obj))
            obj.clear()
            (obj.update if isinstance(obj, (dict, set)) else obj.extend)(before)
        if owner is not None and vars(owner).get(key) is not obj:
            vars(owner)[key] = obj
    return tuple(changed)


def _set_key(v: Any) -> Any:
    return ("value", v) if isinstance(v, SCALARS) else ("id", id(v))
