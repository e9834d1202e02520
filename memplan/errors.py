"""One error hierarchy for the whole library.

Every failure a user can cause is a ``MemplanError``; the CLI maps them to a one-line message and
exit code 2, so messages must name the offending node, tensor, field or file.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar


class MemplanError(Exception):
    """Base of every error memplan raises on purpose."""


class GraphError(MemplanError, ValueError):
    """The graph JSON or builder input breaks the graph contract."""


class ScheduleError(MemplanError, ValueError):
    """A schedule (order, streams, events) is malformed for its graph."""


class PlanFormatError(MemplanError, ValueError):
    """A plan document is not a well-formed ``memplan.plan/1`` for its graph."""


class InputFormatError(MemplanError, ValueError):
    """A raw input file (e.g. a minimalloc CSV) is malformed."""


class SolverError(MemplanError):
    """A solver was misconfigured or could not produce a plan."""


class BudgetError(MemplanError):
    """No plan fits the requested memory budget or capacity."""


class OptionError(MemplanError, TypeError):
    """A keyword option the function does not take (``memplan.plan(graph, alignmnet=...)``): memplan's own
    error naming the option and the valid ones, and still the ``TypeError`` Python would have raised."""


def check_option_names(what: str, given: Iterable[str], known: Sequence[str]) -> None:
    """OptionError for the first name in ``given`` that is not in ``known``, naming it, the nearest known
    option and the list: the one check of every public entry point's keywords (Python's TypeError names
    no alternative, and through ``plan(**options)`` it named a function the caller never called)."""
    for key in given:
        if key not in known:
            near = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise OptionError(f"{what}() got an unknown option {short_repr(key)}{hint}; options: {', '.join(known)}")


_F = TypeVar("_F", bound=Callable[..., Any])


def named_options(func: _F) -> _F:
    """``func`` with its keyword arguments checked by ``check_option_names`` against its own parameters
    (a misspelt ``plan_graph(g, stream=2)`` is an OptionError suggesting ``streams``, not a TypeError)."""
    params = inspect.signature(func).parameters.values()
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    name = func.__name__

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_option_names(name, kwargs, known)
        return func(*args, **kwargs)

    return checked  # type: ignore[return-value]


class UnsafePlan(MemplanError):
    """The verifier found a plan that breaks the contract's safety rules.

    ``violations`` holds every finding as ``(rule, message)`` so tools can show all of them;
    ``str()`` shows the first few.
    """

    def __init__(self, violations: list[tuple[int, str]], where: str | None = None):
        self.violations = list(violations)
        self.where = where
        shown = "; ".join(f"rule {r}: {m}" for r, m in self.violations[:5])
        more = len(self.violations) - 5
        if more > 0:
            shown += f"; and {more} more"
        super().__init__(f"{where + ': ' if where else ''}unsafe plan: {shown}")

    def at(self, where: str) -> UnsafePlan:
        """The same finding, its message led by ``where`` (the plan file a command read), same type."""
        return type(self)(self.violations, where)


class PlanMismatch(PlanFormatError, UnsafePlan):
    """The plan was made for another graph: another name, other nodes or tensors, other sizes.

    A format error for this graph and an unsafe plan at once (``violations`` lists the mismatches by
    rule), so every command that takes a graph and a plan refuses it the same way.
    """


def short_repr(x, limit: int = 60) -> str:
    """``repr(x)`` cut to ``limit`` characters, for error messages about hostile values."""
    r = repr(x)
    return r if len(r) <= limit else r[:limit - 3] + "..."
