"""What the runtime uses of Python 3.11+'s standard library, for Python 3.10 (``setup.py``'s ``python_requires``).

Why a module of its own: ``operator.call`` (3.11) is the per-compiled-call check's way to read every watched place
in one C loop (``map(call, reads)``); importing it by name made ``import runtime.aten`` fail on 3.10 outright. Where
it is missing, ``methodcaller("__call__")`` does the same, also in C. (``memplan.errors.add_note`` is the same kind
of stand-in for ``BaseException.add_note``.)
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

#: ``call(f, *args, **kwargs)`` is ``f(*args, **kwargs)``
call: Callable[..., Any] = getattr(operator, "call", None) or operator.methodcaller("__call__")
