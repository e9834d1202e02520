"""What ``forward``'s call did to its own arguments: their names as ``forward``'s signature gives them, the structure
and tensors of each as the call began, and the changes in place after it.

Why: the compiled call hands the program the arguments' tensors and never runs ``forward``'s Python on the caller's
objects, so a list it appends to, a dict it sets a key of or a tensor it resizes in place (``x.unsqueeze_(0)``)
would stay as the caller passed it, where eager changes it: such a change is refused naming the argument.
"""

from __future__ import annotations

from typing import Any

# (the importer's export watch names arguments and their layout changes the same way: one copy, there)
from memplan.importers.torch.argument_layouts import argument_names, tensor_meta_changes, tensor_metas  # noqa: F401


def same_leaf(torch: Any, a: Any, b: Any) -> bool:
    """Whether a pytree leaf of an argument is still the one the call was given: the same tensor object, or a value
    of the same type equal to it (an int in a list is its value, not its object)."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) or type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


def input_structure(torch: Any, value: Any) -> tuple[Any, list]:
    """(pytree spec, leaves) of one argument of the call: what ``input_changes`` compares after it."""
    from torch.utils import _pytree as pytree

    leaves, spec = pytree.tree_flatten(value)
    return spec, leaves


def input_changes(torch: Any, before: list[tuple[str, Any, Any, list]]) -> list[tuple[str, str]]:
    """(name, what) of each argument whose structure ``forward`` changed in place: ``before`` holds (name, value,
    spec, leaves) taken as the call began.

    Why: the compiled call hands the program the argument's tensors and never runs ``forward``'s Python on the
    caller's objects, so a list ``forward`` appends to, a dict it sets a key of, a tensor it puts in a list's slot
    or a KV-cache object (a registered pytree node: transformers' ``DynamicCache``) whose tensors it replaces with
    longer ones stayed as the caller passed them, where eager changes them: a silently other state after the
    call. An in-place write into one of the argument's tensors (``x.add_(1)``) keeps the same tensor: the program
    writes that back itself."""
    out = []
    for name, value, spec, leaves in before:
        spec_now, leaves_now = input_structure(torch, value)
        if spec_now != spec or len(leaves_now) != len(leaves):
            out.append((name, f"its structure changed ({_spec_text(spec)} before the call, {_spec_text(spec_now)} "
                              "after)"))
        elif not all(same_leaf(torch, a, b) for a, b in zip(leaves, leaves_now)):
            k = next(k for k, (a, b) in enumerate(zip(leaves, leaves_now)) if not same_leaf(torch, a, b))
            kind = "tensor" if isinstance(leaves[k], torch.Tensor) else type(leaves[k]).__name__
            out.append((name, f"its leaf {k} (a {kind}) was replaced by another object"))
    return out


def _spec_text(spec: Any, limit: int = 120) -> str:
    """A pytree spec in one short line."""
    text = " ".join(str(spec).split())
    return text if len(text) <= limit else text[:limit] + "..."
