"""Where transformers' ``DynamicCache``s sit in a call's arguments or output, at any container path torch's pytree
flattening accepts, named as a caller reads them (``state['cache']``, ``caches[0]``, ``cache.self_attention_cache``).

Why a module of its own: the program takes every container torch's pytree flattens (dicts, lists, tuples,
namedtuples, a transformers ``ModelOutput``, an ``EncoderDecoderCache``, any registered node), and a sliding-window
cache anywhere in them carries a token count its flattening drops (``cache_windows.window_inputs``). Round 55 looked at
the arguments themselves alone: a cache inside a dict, a list or an ``EncoderDecoderCache`` was neither given its
count at the export nor checked at each call, so a call whose nested cache counted otherwise ran at the export's
positions, silently. One walker, used by every check, sees what the flattening sees.
"""

from __future__ import annotations

import sys
from typing import Any


def is_dynamic_cache_class(value: Any) -> bool:
    """transformers' ``DynamicCache`` class itself (its layers unchecked): where the walk stops."""
    cls = type(value)
    return cls.__name__ == "DynamicCache" and cls.__module__ == "transformers.cache_utils"


def is_encoder_decoder_cache(value: Any) -> bool:
    """transformers' ``EncoderDecoderCache`` class itself: a self-attention and a cross-attention cache."""
    cls = type(value)
    return cls.__name__ == "EncoderDecoderCache" and cls.__module__ == "transformers.cache_utils"


def nested_caches(torch: Any, name: str, value: Any) -> list[tuple[str, Any]]:
    """(path, cache) of each ``DynamicCache`` in ``value`` (the argument or output ``name``), in the flattening's
    order: ``name`` itself where ``value`` is one, ``name`` followed by torch's key path (``pytree.keystr``) where it
    sits in containers. A node type registered without keys is walked by the flattening alone and its caches named
    by their place among the caches found (``name`` (cache k))."""
    from memplan.importers.torch.common import transformers_cache_registered

    if is_dynamic_cache_class(value):
        return [(name, value)]
    if "transformers" not in sys.modules:
        return []   # (no module of this process can hold a cache)
    transformers_cache_registered(torch)   # (an EncoderDecoderCache is a node of two caches: walked into)
    pytree = torch.utils._pytree
    try:
        pairs, _spec = pytree.tree_flatten_with_path(value, is_leaf=is_dynamic_cache_class)
        return [(name + pytree.keystr(path), leaf) for path, leaf in pairs if is_dynamic_cache_class(leaf)]
    except (ValueError, TypeError, RuntimeError):   # (a node without ``flatten_with_keys_fn``)
        leaves = [x for x in pytree.tree_leaves(value, is_leaf=is_dynamic_cache_class) if is_dynamic_cache_class(x)]
        return [(f"{name} (cache {k})", x) for k, x in enumerate(leaves)]


def output_caches(torch: Any, out: Any) -> list[tuple[tuple, Any]]:
    """(key path, cache) of each ``DynamicCache`` in a call's output ``out``: the path as torch's key entries,
    which ``at_path`` follows in the output the compiled call rebuilds from the same structure."""
    if is_dynamic_cache_class(out):
        return [((), out)]
    if "transformers" not in sys.modules:
        return []
    from memplan.importers.torch.common import transformers_cache_registered

    transformers_cache_registered(torch)
    pytree = torch.utils._pytree
    try:
        pairs, _spec = pytree.tree_flatten_with_path(out, is_leaf=is_dynamic_cache_class)
    except (ValueError, TypeError, RuntimeError):   # (a node without keys: dicts, lists, tuples walked by hand)
        return _walk(pytree, out, (), 0)
    return [(tuple(path), leaf) for path, leaf in pairs if is_dynamic_cache_class(leaf)]


def _walk(pytree: Any, out: Any, path: tuple, depth: int) -> list[tuple[tuple, Any]]:
    """``output_caches`` through dicts (a ``ModelOutput`` among them), lists, tuples and ``EncoderDecoderCache``s
    alone, for an output holding a node torch cannot name the children of."""
    if is_dynamic_cache_class(out):
        return [(path, out)]
    if depth > 8:
        return []
    if isinstance(out, dict):
        items = [(pytree.MappingKey(k), v) for k, v in out.items()]
    elif isinstance(out, (list, tuple)):
        items = [(pytree.SequenceKey(k), v) for k, v in enumerate(out)]
    elif is_encoder_decoder_cache(out):
        items = [(pytree.GetAttrKey(a), getattr(out, a)) for a in ("self_attention_cache", "cross_attention_cache")]
    else:
        return []
    return [c for key, v in items for c in _walk(pytree, v, (*path, key), depth + 1)]


def at_path(out: Any, path: tuple) -> Any:
    """The object at key path ``path`` (torch's ``MappingKey``, ``SequenceKey``, ``GetAttrKey``) in ``out``."""
    for key in path:
        out = key.get(out)
    return out


def is_cache_object(value: Any) -> bool:
    """A ``DynamicCache`` or an ``EncoderDecoderCache``: a cache the compiled call can grow as eager's (its layers
    checked by ``cache_adopt.is_adoptable``); where ``cache_shell`` stops."""
    return is_dynamic_cache_class(value) or is_encoder_decoder_cache(value)


def cache_shell(torch: Any, name: str, value: Any) -> tuple[Any, list, list[tuple[str, Any]]]:
    """(pytree spec, leaves, (path, cache) of each cache) of the argument ``name``, its ``DynamicCache``s and
    ``EncoderDecoderCache``s taken as leaves (``is_cache_object``): the containers around the caches, compared
    before and after ``forward``'s call to tell a change inside a nested cache (a decode step's ``update``, which
    ``cache_growth.nested_growth`` adopts) from one of the containers (a key set, a cache replaced), which stays
    refused. Paths are named as ``nested_caches`` names them (``state['cache']``); a node registered without keys
    names its caches by their place (``name`` (cache k))."""
    if is_cache_object(value):
        return None, [value], [(name, value)]
    if "transformers" not in sys.modules:
        return None, [value], []
    from memplan.importers.torch.common import transformers_cache_registered

    transformers_cache_registered(torch)
    pytree = torch.utils._pytree
    leaves, spec = pytree.tree_flatten(value, is_leaf=is_cache_object)
    try:
        pairs, _spec = pytree.tree_flatten_with_path(value, is_leaf=is_cache_object)
        caches = [(name + pytree.keystr(path), leaf) for path, leaf in pairs if is_cache_object(leaf)]
    except (ValueError, TypeError, RuntimeError):   # (a node without ``flatten_with_keys_fn``)
        caches = [(f"{name} (cache {k})", x) for k, x in enumerate(x for x in leaves if is_cache_object(x))]
    return spec, leaves, caches


def argument_caches(torch: Any, named: list[tuple[str, Any]]) -> dict[str, Any]:
    """{path: cache} of each ``DynamicCache`` or ``EncoderDecoderCache`` among a call's arguments ``named`` ((name,
    value) pairs), an argument itself (its name) or inside one (its path: ``cache_shell``), and every argument by its
    name: where a compiled call finds the caller's caches it grows (``Program.returned_caches``)."""
    out = {path: cache for name, value in named for path, cache in cache_shell(torch, name, value)[2]}
    out.update(named)
    return out
