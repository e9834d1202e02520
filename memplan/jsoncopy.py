"""Copies of free-form JSON blocks (node ``attrs``, a plan's solver block and extra fields).

Why a module of its own: the graph (``graph.py``) and the plan document (``planfile.py``) both keep blocks a
caller hands them, and neither may share a nested dict or list with the caller, or a later edit on one side
would reach the other. Below both of them, it lets each import it without either importing the other.
"""

from __future__ import annotations

from typing import Any


def own_json(value: Any) -> Any:
    """``value`` with each of its JSON objects and arrays (dicts and lists, nested) copied, its other values
    shared: what a Plan keeps of, or hands out as, a free-form block, so that neither side's later edits reach
    the other. Iterative, and each container copied once (a list twice inside stays one list, a cycle a
    cycle): a block from code may nest past the recursion limit, and is refused only when saved."""
    if not isinstance(value, (dict, list)):
        return value
    copies: dict[int, Any] = {}
    todo: list[tuple[Any, Any]] = []

    def shell(v: Any) -> Any:
        new: Any = {} if isinstance(v, dict) else []
        copies[id(v)] = new
        todo.append((v, new))
        return new

    top = shell(value)
    while todo:
        src, dst = todo.pop()
        for k, v in (src.items() if isinstance(src, dict) else enumerate(src)):
            if isinstance(v, (dict, list)):
                v = copies[id(v)] if id(v) in copies else shell(v)
            if isinstance(dst, dict):
                dst[k] = v
            else:
                dst.append(v)
    return top
