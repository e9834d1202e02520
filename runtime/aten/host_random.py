"""The host random numbers ``forward`` draws in Python (``random``'s, NumPy's global generators and the generator
objects a module holds): their states before an export and put back after it, and ``random``'s draws that nothing
read, repeated at every compiled call.

Why: a number drawn in Python is a constant of the trace, so every compiled call gave the export's one draw where
each eager call draws anew, silently; a draw nothing looks at (layerdrop's ``p`` outside training) changes nothing
the program computes, and only advances the generator as each eager call does.
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


def host_random_states(torch: Any = None, module: Any = None) -> list[tuple[str, Any, Any]]:
    """(name, (get state, set state), state) of the host random generators a ``forward`` may draw from in Python:
    ``random``'s and, where imported, NumPy's global ones, and each generator object an attribute of a module of
    ``module``'s tree holds (``self.rng = random.Random(0)``, ``np.random.default_rng(0)``, a ``RandomState``; a
    private name too, or inside a list, tuple or dict there). Why the held ones: drawn in ``forward``, their number
    was a constant of the export as a global draw's is, and went unseen (review 40c)."""
    import random

    out: list[tuple[str, Any, Any]] = [("random", (random.getstate, random.setstate), random.getstate())]
    np = sys.modules.get("numpy")
    if np is not None:
        out.append(("numpy.random", (np.random.get_state, np.random.set_state), np.random.get_state()))
    if torch is None or not isinstance(module, torch.nn.Module):
        return out
    root, seen = type(module).__name__, set()
    for path, m in module.named_modules():
        for key, value in vars(m).items():
            for label, obj in _held_values(f"{root}.{path}.{key}" if path else f"{root}.{key}", value):
                access = _generator_access(obj)
                if access is not None and id(obj) not in seen:
                    seen.add(id(obj))
                    out.append((f"{label} ({type(obj).__module__}.{type(obj).__qualname__})", access, access[0]()))
    return out


#: the module-level functions of ``random`` that draw (each a bound method of ``random``'s hidden instance)
_DRAWS = ("random", "uniform", "randint", "randrange", "choice", "choices", "sample", "shuffle", "gauss",
          "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate", "gammavariate", "betavariate",
          "paretovariate", "weibullvariate", "triangular", "getrandbits", "randbytes", "binomialvariate")
#: arguments a draw can be repeated with at every compiled call
_REPEATABLE = (int, float, str, bool, type(None))


@dataclass
class HostDraws:
    """The draws ``forward`` made from ``random``'s module-level functions while exported: ``calls`` (function name,
    args, kwargs) in order, and ``read``, whether any value drawn was looked at in Python (compared, computed with,
    converted, formatted) or a draw cannot be repeated (a sequence argument, a list result)."""

    calls: list = field(default_factory=list)
    read: bool = False
    #: weak references to the marked values handed out: one still alive after the export was kept (``self.p =
    #: random.random()``, a global list) and is read later, where no mark can see it (``kept_draws``)
    values: list = field(default_factory=list)


#: what the stand-in of a draw answers without counting a read: its own construction and storage
_STAND_IN_OWN = frozenset({"__new__", "__init__", "__getattribute__", "__setattr__", "__delattr__", "__init_subclass__",
                           "__subclasshook__", "__class_getitem__", "__doc__", "__module__", "__weakref__"})


def _stand_in_type() -> type:
    """A stand-in for a drawn float, no float itself, whose every operation marks its ``HostDraws`` read and then acts
    on the number. Why: MusicGen's and VITS' layerdrop draws ``p = random.uniform(0, 1)`` at every layer and reads it
    only in training (``if self.training and p < layerdrop``); such a draw changes nothing the program computes, and
    is told apart from one that does by whether anything looked at it. Why no float subclass (the first version,
    review 40d): C reads a float subclass's number without calling any of its methods (``math.exp(p) > 1.6``,
    ``"%.0f" % p``), unseen, and a second export under other draws took the same branch often enough to compile
    silently wrong; C reads a stand-in only through its ``__float__``, ``__index__``, comparisons or attributes, all
    marked (``isinstance`` too, through ``__class__``). Where torch itself takes the stand-in (``x * p``), the export
    fails with the draw marked, and that is the refusal (``program.load_program``)."""
    def marks(name: str) -> Callable[..., Any]:
        def op(self: Any, *args: Any, **kwargs: Any) -> Any:
            object.__getattribute__(self, "_draws").read = True
            args = tuple(object.__getattribute__(a, "_value") if type(a) is type(self) else a for a in args)
            return getattr(float, name)(object.__getattribute__(self, "_value"), *args, **kwargs)
        return op

    def getattribute(self: Any, name: str) -> Any:
        if name in ("_draws", "_value"):
            return object.__getattribute__(self, name)
        object.__getattribute__(self, "_draws").read = True
        return getattr(object.__getattribute__(self, "_value"), name)

    ns: dict[str, Any] = {n: marks(n) for n in dir(float)
                          if n.startswith("__") and n.endswith("__") and n not in _STAND_IN_OWN
                          and n != "__class__" and callable(getattr(float, n))}
    ns["__getattribute__"] = getattribute
    ns["__slots__"] = ("_value", "_draws", "__weakref__")
    return type("UnreadDraw", (), ns)


_STAND_IN = _stand_in_type()


def _stand_in(value: float, draws: HostDraws) -> Any:
    marked = _STAND_IN.__new__(_STAND_IN)
    object.__setattr__(marked, "_value", value)
    object.__setattr__(marked, "_draws", draws)
    return marked


#: float draws only: an int one is read unseen wherever C takes it as an index (``PyNumber_Index`` hands an int
#: subclass on as it is, calling none of its methods: ``self.ops[random.randint(0, 1)]``, ``range(k)``, a slice),
#: and a second export under other draws picks the same index often (one time in two for two paths)
_UNREAD = {float: _stand_in}


@contextlib.contextmanager
def watch_host_draws(mark: bool = True) -> Iterator[HostDraws]:
    """``random``'s module-level draws recorded while the block runs, each value handed back unread-marked
    (``_stand_in``; ``mark`` False: as drawn, a plain float, for ``sets.take_unread_draws``' second export); the
    functions put back after."""
    import random

    draws, saved = HostDraws(), {}

    def wrap(name: str, draw: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            value = draw(*args, **kwargs)
            draws.calls.append((name, args, dict(kwargs)))
            if not all(type(a) in _REPEATABLE for a in (*args, *kwargs.values())) or type(value) not in _UNREAD:
                draws.read = True
                return value
            if not mark:
                return value
            marked = _UNREAD[type(value)](value, draws)
            draws.values.append(weakref.ref(marked))
            return marked
        return recorded

    for name in _DRAWS:
        if callable(getattr(random, name, None)):
            saved[name] = getattr(random, name)
            setattr(random, name, wrap(name, saved[name]))
    try:
        yield draws
    finally:
        for name, draw in saved.items():
            setattr(random, name, draw)


def kept_draws(draws: HostDraws) -> bool:
    """Whether a value ``watch_host_draws`` handed out outlived the export's call: stored on the module (``self.p =
    random.random()``, read by the next call) or anywhere else, it is read after the export, unseen by the marks."""
    import gc

    if not any(ref() is not None for ref in draws.values):
        return False
    gc.collect()   # (a value only a dead frame's reference cycle holds is not kept)
    return any(ref() is not None for ref in draws.values)


def draws_account_for(calls: list, before: Any, after: Any) -> bool:
    """Whether repeating ``calls`` from ``random``'s state ``before`` leaves it at ``after``: every draw went through
    the recorded functions (none through a name imported before, ``from random import random``, or the generator's
    methods)."""
    import random

    r = random.Random()
    r.setstate(before)
    for name, args, kwargs in calls:
        getattr(r, name)(*args, **kwargs)
    return _same_random_state(r.getstate(), after)


def repeat_draws(calls: tuple) -> None:
    """Draw from ``random`` what the export's call drew and nobody read, so that a compiled call leaves ``random``'s
    state where eager's call leaves it."""
    import random

    for name, args, kwargs in calls:
        getattr(random, name)(*args, **kwargs)


def _held_values(label: str, value: Any) -> list[tuple[str, Any]]:
    """``value`` and, for a list, tuple or dict, its items (one level), each with the name it is reached by."""
    if isinstance(value, (list, tuple)):
        return [(label, value)] + [(f"{label}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [(label, value)] + [(f"{label}[{k!r}]", v) for k, v in value.items()]
    return [(label, value)]


def _generator_access(obj: Any) -> tuple[Callable[[], Any], Callable[[Any], None]] | None:
    """(get state, set state) of a host random generator object, None for anything else (and for a
    ``random.SystemRandom``, which has no state: it reads the OS's entropy)."""
    import random

    if isinstance(obj, random.Random) and not isinstance(obj, random.SystemRandom):
        return obj.getstate, obj.setstate
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if isinstance(obj, np.random.Generator):
        bits = obj.bit_generator
        return (lambda: bits.state), (lambda state: setattr(bits, "state", state))
    if isinstance(obj, np.random.RandomState):
        return obj.get_state, obj.set_state
    return None


def restore_host_random(states: list[tuple[str, Any, Any]]) -> tuple[str, ...]:
    """The names of ``states``' generators whose state changed since (``forward`` drew from them while exported),
    each put back as it was: compile runs no call. Why: a number drawn in Python (``x * random.random()``, ``if
    np.random.rand() < p``) is a constant of the trace, so every compiled call gave the export's one draw where each
    eager call draws anew, silently."""
    drawn = []
    for name, (get, put), state in states:
        if not _same_random_state(state, get()):
            drawn.append(name)
            put(state)
    return tuple(drawn)


def _same_random_state(a: Any, b: Any) -> bool:
    """Whether two generator states are equal: ``random``'s (tuples), NumPy's ``RandomState`` (a tuple holding an
    array) or a NumPy ``BitGenerator``'s (a dict, an array in it for MT19937)."""
    if hasattr(a, "shape") and hasattr(b, "shape"):
        return a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_random_state(a[k], b[k]) for k in a)
    if type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(_same_random_state(x, y) for x, y in zip(a, b))
    return bool(a == b)
