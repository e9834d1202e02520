"""A transformers cache argument that ``forward`` grows and returns as itself (a decode step's ``past_key_values``):
found at the export, checked before each call, and grown in the caller's very object after it.

Why: such a change is no silent loss where the compiled call writes it back: the program's output holds the grown
cache's tensors, so the call puts them into the caller's cache, each layer object kept, and returns that object, as
eager's ``update`` leaves it. Every other changed argument stays refused (``call_args.input_changes``).
"""

from __future__ import annotations

from typing import Any

from .cache_args import cache_refusal, is_dynamic_cache
from .cache_paths import is_encoder_decoder_cache, nested_caches


def path_of(out: Any, target: Any, path: tuple = (), depth: int = 0) -> tuple | None:
    """The path (keys and indices) of ``target`` itself in ``out`` (through dicts, a transformers ``ModelOutput``
    among them, lists and tuples), or None."""
    if out is target:
        return path
    if depth > 8:
        return None
    items = (out.items() if isinstance(out, dict) else enumerate(out) if type(out) in (list, tuple) else ())
    for k, v in items:
        found = path_of(v, target, (*path, k), depth + 1)
        if found is not None:
            return found
    return None


def is_adoptable(value: Any) -> bool:
    """A cache the compiled call can grow as eager's: a ``DynamicCache`` of plain layers (``is_dynamic_cache``), or
    transformers' ``EncoderDecoderCache`` of two such (T5's, BART's, T5Gemma's decode step: its self-attention cache
    grows, its cross-attention cache is filled at the first step)."""

    if is_encoder_decoder_cache(value):
        return (is_dynamic_cache(getattr(value, "self_attention_cache", None))
                and is_dynamic_cache(getattr(value, "cross_attention_cache", None)))
    return is_dynamic_cache(value)


def returned_caches(given: dict[str, Any], changed: list[tuple[str, str]], out: Any) -> list[tuple[str, tuple]]:
    """(name, path in ``out``) of each changed argument that is a transformers ``DynamicCache`` (or an
    ``EncoderDecoderCache`` of two: ``is_adoptable``) and that ``forward`` returns as itself: a decode step's
    ``past_key_values``, grown by ``DynamicLayer.update`` (its tensors replaced with longer ones) and returned as the
    output's ``past_key_values``.

    Why: such a change is no silent loss where the compiled call writes it back: the program's output holds the
    grown cache's tensors (the importer flattens ``DynamicCache``), so the call puts them into the caller's object
    as eager's update left them, and returns that object (``adopt_cache``). Every other changed argument stays
    refused (``input_changes``)."""
    out_paths = []
    for name, _what in changed:
        value = given.get(name)
        if is_adoptable(value):
            path = path_of(out, value)
            if path is not None:
                out_paths.append((name, path))
    return out_paths


#: the refusal of a cache argument the compiled call cannot grow as eager's ``update`` does
CACHE_NOT_ADOPTED = ("the cache passed in is not a DynamicCache of plain DynamicLayers (or an EncoderDecoderCache of "
                     "two) laid out as the export's (its class, its layers' kinds or their count differ): the "
                     "compiled call cannot grow it as eager's forward would; compile with a cache of this structure")


def check_adoptable(torch: Any, name: str, caller: Any) -> None:
    """Refuse, before the program runs, a call whose cache argument ``adopt_cache`` could not grow
    (``cache_refusal``, of each ``DynamicCache`` an ``EncoderDecoderCache`` holds too, named by its path): nothing of
    the call's (the caller's cache, the module's state) is changed then."""
    from .errors import AtenExecutorError

    if caller is None:
        return
    if not is_adoptable(caller):
        raise AtenExecutorError(CACHE_NOT_ADOPTED)
    for path, cache in nested_caches(torch, name, caller):
        why = cache_refusal(torch, path, cache)
        if why is not None:
            raise AtenExecutorError(why)
    why = cross_flags_refusal(name, caller)
    if why is not None:
        raise AtenExecutorError(why)


def cross_flags_refusal(name: str, cache: Any) -> str | None:
    """Why an ``EncoderDecoderCache`` argument ``name`` cannot be stepped by the program (None where it can): its
    ``is_updated`` flags are not the ones its unflattening rebuilds (a layer flagged exactly where its
    cross-attention cache holds keys), named with the layer.

    Why: the flags are no part of the cache's flattening; the export's ``forward`` was given the rebuilt ones, so
    the program took each cross-attention layer's branch from them (reuse the cached encoder keys, or compute and
    append them). Eager takes it from the caller's flags: a cache flagged otherwise (a layer holding keys flagged
    False) would have eager append the encoder's keys again where the program reuses them."""

    if not is_encoder_decoder_cache(cache):
        return None
    cross = cache.cross_attention_cache
    rebuilt = {k: bool(cross.get_seq_length(k) > 0) for k in range(len(cross))}
    if dict(cache.is_updated) == rebuilt:
        return None
    k = next((k for k in sorted(set(rebuilt) | set(cache.is_updated), key=str)
              if cache.is_updated.get(k) != rebuilt.get(k)), None)
    return (f"argument {name!r} is an EncoderDecoderCache whose is_updated flag of layer {k} is "
            f"{cache.is_updated.get(k)!r} where its cross-attention cache {'holds' if rebuilt.get(k) else 'lacks'} "
            "keys: the flags are no part of the cache's flattening, so the program took each cross-attention layer's "
            "branch from flags rebuilt from the keys (set exactly where a layer holds some), and eager's would take "
            "another; pass a cache whose flags are its keys' (as transformers' steps leave them)")


def _pairs(caller: Any, new: Any) -> list[tuple[Any, Any]] | None:
    """(caller's, program's) ``DynamicCache`` pairs ``adopt_cache`` grows, or None where the two are not one cache
    structure (another class, another layer kind, fewer layers in the program's)."""

    if not is_adoptable(caller) or type(caller) is not type(new) or not is_adoptable(new):
        return None
    pairs = ([(caller.self_attention_cache, new.self_attention_cache),
              (caller.cross_attention_cache, new.cross_attention_cache)] if is_encoder_decoder_cache(caller)
             else [(caller, new)])
    for mine, theirs in pairs:
        if len(theirs.layers) < len(mine.layers) or any(type(a) is not type(b)
                                                        for a, b in zip(mine.layers, theirs.layers)):
            return None
    return pairs


def adopt_cache(caller: Any, new: Any) -> None:
    """Put the program's grown ``DynamicCache`` ``new`` into the caller's ``caller`` as eager's ``update`` leaves it:
    each layer object keeps its identity and takes ``new``'s layer's state (its tensors, its initialized flag); layers
    ``new`` has beyond the caller's (an empty cache passed in) are appended. An ``EncoderDecoderCache``: both of its
    caches so, and its ``is_updated`` flags (which cross-attention layers hold the encoder's keys) as the program's
    rebuilt cache counts them, each flag set on the caller's dict, as eager's layers set theirs. Refused where the
    layers' kinds differ (not one cache structure: nothing is changed then)."""
    from .errors import AtenExecutorError

    pairs = _pairs(caller, new)
    if pairs is None:
        raise AtenExecutorError(CACHE_NOT_ADOPTED)
    for mine, theirs in pairs:
        for a, b in zip(mine.layers, theirs.layers):
            vars(a).update(vars(b))
        mine.layers.extend(theirs.layers[len(mine.layers):])
    if len(pairs) == 2:
        caller.is_updated.update(new.is_updated)
