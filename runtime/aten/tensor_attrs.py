"""The plain tensor attributes of a module tree (no parameter or buffer) that an export's ``forward`` wrote, put back
after it; and which values the program can return for the compiled call to set (``tensor_value``).

Why: a non-strict export runs ``forward`` on the module's own constants, so ``self.c.add_(1)`` wrote the user's
tensor and compile counted as one eager call (every compiled call then one step ahead, silently).
"""

from __future__ import annotations

from typing import Any


def tensor_attribute_values(torch: Any, module: Any) -> list[tuple[Any, int, Any]]:
    """(tensor, its version, a copy of its values) of each plain tensor attribute of the module tree (in a module's
    ``__dict__``, no parameter or buffer), once each; for ``restore_tensor_attributes`` after an export.

    Why: a non-strict export runs ``forward`` on the module's own constants (``self.c.add_(1)`` on a plain tensor
    attribute wrote the user's tensor), so compile counted as one eager call: the first compiled call returned
    ``x + 2`` where eager's first returned ``x + 1``, and each later one was one step ahead, silently."""
    if not isinstance(module, torch.nn.Module):
        return []
    out, seen = [], set()
    for m in module.modules():
        for v in vars(m).values():
            if isinstance(v, torch.Tensor) and id(v) not in seen and not isinstance(v, torch.nn.Parameter):
                seen.add(id(v))
                version = _version(v)
                if version is not None:
                    out.append((v, version, v.detach().clone()))
    return out


def _version(t: Any) -> int | None:
    """``t``'s version counter, or None for a tensor without one (an inference tensor, a fake one)."""
    try:
        return t._version
    except (RuntimeError, AttributeError, NotImplementedError):
        return None


def restore_tensor_attributes(torch: Any, saved: list[tuple[Any, int, Any]]) -> None:
    """Put back the values of the tensors ``tensor_attribute_values`` saved that were written since (their version
    moved), in place: the very tensors, as they were."""
    with torch.no_grad():
        for t, version, copy in saved:
            if _version(t) != version:
                t.copy_(copy)


def tensor_value(torch: Any, v: Any) -> bool:
    """A tensor, or a non-empty list, tuple or dict of tensors (``self.taps = [y]``): a value the program can
    return (a pytree of tensors) for the compiled call to set. Other objects holding tensors are not."""
    if isinstance(v, torch.Tensor):
        return True
    if type(v) in (list, tuple):
        return bool(v) and all(isinstance(x, torch.Tensor) for x in v)
    if type(v) is dict:
        return bool(v) and all(isinstance(x, torch.Tensor) for x in v.values())
    return False
