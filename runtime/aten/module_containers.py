"""The lists, dicts, sets and deques a module tree holds (and those inside them): snapshots before an export, what
``forward`` changed in them in place, and putting them back.

Why: ``forward`` may change one in place (a feature tap's ``self.feats.append(y)``, ``self.stats["n"] += 1``),
which no ``__setattr__`` shows; the compiled calls, which run no Python, never change it where eager's calls do,
and torch's export leaves the user's object holding the export's fake tensors.
"""

from __future__ import annotations

import collections
import sys
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
    seen: set[int] = set()
    internal = module_fields(torch)
    tops: list[tuple[str, Any]] = []
    for path, m in module.named_modules():
        for key, v in vars(m).items():
            if key in internal or key.startswith("__"):
                continue
            name = f"{root}.{path}.{key}" if path else f"{root}.{key}"
            if _is_container(v):
                if id(v) not in seen:   # (a list two modules hold: the first one's name)
                    seen.add(id(v))
                    out.append((name, m, key, v, v.copy()))
                    tops.append((name, v))
            elif type(v) is tuple:   # (the containers a tuple holds: ``self.t = ([0],)``, session 41)
                tops.append((name, v))
    # (every module attribute first: a container held by one and met again inside another keeps its module and
    # attribute, round 61's ``self.holder = {"h": {"h2": d}}`` with ``self.x = d``)
    budget = [INNER_LIMIT]
    for name, v in tops:
        suffix = key_suffixes()
        for keys, inner in inner_containers(v, seen, budget):
            out.append((name + suffix(keys), None, None, inner, inner.copy()))
    return out


def key_suffixes(form: str = "[{!r}]") -> Any:
    """A function giving the suffix ``"".join(form.format(k) for k in keys)`` of ``keys`` (a path of
    ``inner_containers``' answer for one walk), each built from its parent path's, kept (``form.format(k)``: each
    key's ``repr``, once per path). Why: a chain of 10,000 nested lists gave paths 1 to 10,000 keys long, each joined
    anew: 50 million ``repr``s, quadratic (round 72: 1.1 s of 309 compiles, a test's chain). Exact: a path is
    one container's own (keys unique within their container), so an equal path has the very keys."""
    known: dict[tuple[Any, ...], str] = {(): ""}

    def suffix(keys: tuple[Any, ...]) -> str:
        done = known.get(keys)
        if done is not None:
            return done
        i = len(keys) - 1
        while keys[:i] not in known:   # (the longest path already known: a tuple's, which is no answer, may not be)
            i -= 1
        text = known[keys[:i]]
        for j in range(i, len(keys)):
            text += form.format(keys[j])
            known[keys[:j + 1]] = text
        return text
    return suffix


#: the containers watched (and the Python state a hook commonly changes, which ``hook_state`` and ``python_state``
#: keep copies of): the builtin ones and the standard library's counters and queues (not other subclasses:
#: transformers' ``ModelOutput`` or torch.fx's immutable lists have copies and ``clear``s of their own); a ``set``
#: and a ``Counter`` too (session 41: ``self.seen.add(n)``, ``self.stats["n"] += 1`` on a ``Counter`` compiled, and
#: the compiled calls never changed them)
CONTAINERS = (list, dict, collections.deque, collections.defaultdict, collections.OrderedDict, set, collections.Counter)

#: how many items of one container are looked into for inner containers, and how many inner containers (and tuples)
#: one walk (a module tree's attributes, a Python place, a hook's state) takes at most: a bound by size, not depth
#: (round 62: ``self.a = {"x": [[[0]]]}``, three levels down, was watched nowhere, and ``self.a["x"][0][0][0] += 1``
#: compiled; every compiled call ran the export's count)
ITEM_LIMIT = 1024
INNER_LIMIT = 10_000


def _is_container(v: Any) -> bool:
    return type(v) in CONTAINERS


def inner_containers(obj: Any, seen: set[int], budget: list[int] | None = None,
                     cut: list[tuple[tuple[Any, ...], str]] | None = None) -> list[tuple[tuple[Any, ...], Any]]:
    """(keys from ``obj``, container) of each container reached from ``obj``'s items (``obj`` a container or a
    tuple), at any depth, through containers and tuples, breadth first (each at its shallowest path from ``obj``),
    each once: ``seen`` holds the ids of the containers already taken (``obj``'s own where the caller took it) and
    gains those found. Bounded by size (the first ``ITEM_LIMIT`` items of a tuple; no look into a container of more;
    ``budget[0]`` containers and tuples in all, decremented), never by depth, and safe on cycles (``a.append(a)``);
    walked with a queue, so a chain of 100,000 nested lists is no recursion.

    Why: a shallow copy of a container holds its very inner containers, so a change inside one
    (``self.a["x"][0][0] += 1``, a hook's ``state[0][0] += 1``) is no change of the outer one; two levels were looked
    into before round 62, and a count three levels down compiled silently.

    ``cut`` (``walk_bounds``, at compile) gains (keys, why) of each place where a bound left containers unwalked:
    a container of more than ``ITEM_LIMIT`` items (a tuple's items past it) that holds containers, or the budget
    spent."""
    if budget is None:
        budget = [INNER_LIMIT]
    out: list[tuple[tuple[Any, ...], Any]] = []
    tuples: set[int] = set()
    queue: collections.deque[tuple[tuple[Any, ...], Any]] = collections.deque([((), obj)])
    while queue:
        keys, v = queue.popleft()
        if type(v) is tuple:
            if id(v) in tuples:
                continue
            tuples.add(id(v))
            items: Any = enumerate(v[:ITEM_LIMIT])
            if cut is not None and len(v) > ITEM_LIMIT and _holds_containers(v[ITEM_LIMIT:]):
                cut.append((keys, f"a tuple of {len(v)} items (past the first {ITEM_LIMIT})"))
        elif len(v) > ITEM_LIMIT:
            if cut is not None and _holds_containers(v.values() if isinstance(v, dict) else v):
                cut.append((keys, f"a {type(v).__name__} of {len(v)} items (more than {ITEM_LIMIT})"))
            continue
        else:
            items = v.items() if isinstance(v, dict) else enumerate(v)
        for k, item in list(items):
            if budget[0] <= 0:
                if cut is not None:
                    cut.append((keys, f"the walk's bound of {INNER_LIMIT} containers (reached here)"))
                return out
            if _is_container(item) and id(item) not in seen:
                seen.add(id(item))
                budget[0] -= 1
                out.append(((*keys, k), item))
                queue.append(((*keys, k), item))
            elif type(item) is tuple and id(item) not in tuples:
                budget[0] -= 1
                queue.append(((*keys, k), item))
    return out


def _holds_containers(items: Any) -> bool:
    return any(_is_container(x) or type(x) is tuple for x in items)


def cyclic_attribute(torch: Any, module: Any) -> str | None:
    """The name of the first attribute of ``module``'s tree whose containers hold themselves (``a.append(a)``, a dict
    inside a list that holds the list), found depth first without recursion and within ``INNER_LIMIT`` containers;
    None where there is none.

    Why: torch's non-strict export walks every attribute of every module with its pytree (to tell attributes
    ``forward`` assigns), which recurses without end on such a cycle: compile failed after ~26 s with "torch.export
    failed for Net: maximum recursion depth exceeded", naming nothing (round 62). Refused at once, naming it."""
    if not isinstance(module, torch.nn.Module):
        return None
    internal = module_fields(torch)
    root = type(module).__name__
    budget = INNER_LIMIT
    done: set[int] = set()
    for path, m in module.named_modules():
        for key, v in vars(m).items():
            if key in internal or key.startswith("__") or (type(v) not in CONTAINERS and type(v) is not tuple):
                continue
            on_path: set[int] = {id(v)}
            stack = [(v, iter(list(v.values() if isinstance(v, dict) else v)[:ITEM_LIMIT]))]
            while stack:
                node, items = stack[-1]
                item = next(items, done)
                if item is done:
                    stack.pop()
                    on_path.discard(id(node))
                    done.add(id(node))
                    continue
                if type(item) not in CONTAINERS and type(item) is not tuple:
                    continue
                if id(item) in on_path:
                    return f"{root}.{path}.{key}" if path else f"{root}.{key}"
                budget -= 1
                if id(item) in done or budget <= 0:
                    continue
                on_path.add(id(item))
                stack.append((item, iter(list(item.values() if isinstance(item, dict) else item)[:ITEM_LIMIT])))
    return None


def same_item(a: Any, b: Any) -> bool:
    return a is b or (isinstance(a, SCALARS) and same_value(a, b))


def unchanged(now: Any, before: Any) -> bool:
    if isinstance(now, set):
        return {_set_key(x) for x in now} == {_set_key(x) for x in before}
    if not isinstance(now, dict):
        return len(now) == len(before) and all(map(same_item, now, before))
    return now.keys() == before.keys() and all(same_item(now[k], before[k]) for k in now)


def plain_change(before: Any, after: Any, objects: bool = False) -> bool:
    """Whether a plain value (a number, string, None, a tuple of them) is among the items a list's or dict's change
    added, removed or replaced: a count or setting the next eager call reads (``self.steps.append(1)``). Tensors alone
    (LeViT's ``attention_bias_cache`` of a weight's gather, a feature tap's ``self.feats.append(y)``) are a cache or
    a record the program's results do not follow. With ``objects``, any other object counts too (an ``nn.Linear``
    built lazily into a global dict, ``PROJ["p"] = nn.Linear(...)``: eager's next call uses the one it built, the
    program the export's; round 62), a tensor or a tuple, list or dict of tensors and plain values aside."""
    if isinstance(after, set):
        return any(_counts(x, objects) for x in after ^ before)
    if not isinstance(after, dict):
        items = [x for i, x in enumerate(after) if i >= len(before) or not same_item(x, before[i])]
        items += [x for i, x in enumerate(before) if i >= len(after) or not same_item(x, after[i])]
    else:
        items = [d[k] for d, o in ((after, before), (before, after)) for k in d
                 if k not in o or not same_item(d[k], o[k])]
    return any(_counts(x, objects) for x in items)


def _counts(x: Any, objects: bool, depth: int = 3) -> bool:
    """Whether item ``x`` of a change is state the next eager call reads (``plain_change``): a plain value, a
    container holding one (a ``defaultdict(list)``'s new ``STATS["k"] = [1]``: round 62, compiled silently as no plain
    value), with ``objects`` any object but a tensor."""
    if plain(x, depth=1) or (objects and not _inert(x)):
        return True
    if depth <= 0 or type(x) not in CONTAINERS or len(x) > ITEM_LIMIT:
        return False
    return any(_counts(v, objects, depth - 1) for v in (x.values() if isinstance(x, dict) else x))


def _inert(v: Any, depth: int = 3) -> bool:
    """A tensor, plain value, or tuple, list, deque or dict (``OrderedDict`` and ``defaultdict`` too) of them
    (``depth`` levels down): a record or cache of values, no object whose own state eager's next call would use.
    Why the dict kinds: timm's ``FeatureHooks`` (``features_only=True, feature_cls="hook"``) empties its per-device
    record with ``self._feature_outputs[device] = OrderedDict()`` in every call; that fresh empty record counted as an
    object eager's next call uses, and every such model was refused (round 69), where ``= {}`` compiled."""
    torch = sys.modules.get("torch")
    if plain(v) or (torch is not None and isinstance(v, torch.Tensor)):
        return True
    if depth <= 0:
        return False
    if type(v) in (tuple, list, collections.deque):
        return all(_inert(x, depth - 1) for x in v)
    return type(v) in (dict, collections.OrderedDict, collections.defaultdict) and all(
        _inert(x, depth - 1) for x in v.values())


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
