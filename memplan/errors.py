"""One error hierarchy for the whole library.

Every failure a user can cause is a ``MemplanError``; the CLI maps them to a one-line message and
exit code 2, so messages must name the offending node, tensor, field or file.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import operator
import reprlib
import sys
import unicodedata
from collections.abc import Callable, Iterable, KeysView, Mapping, Sequence, Set
from itertools import islice
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar


class NamesOptions:
    """A message that names the caller's options, in the caller's words: made with ``of(template, **values)``, its
    text names each option through the ``template``'s fields, spelt as Python keywords (``keyword_spelling``);
    ``spelled`` spells them otherwise, as the ``memplan`` command does (``argtypes.FLAGS``: ``--devices 40``). A
    field ``{devices}`` is the option given a value (``devices=40``), ``{streams:N}`` the option with the text after
    the colon (``streams=N``), ``{device_capacity!n}`` the option named as what it sets, with its value ("the
    device_capacity of 1024"), ``{memory_budget!w}`` the option's name alone. Text that is no field (a graph's name,
    a nested message) goes in through ``literal``. Why: ``memplan plan --devices 40`` rewrote the library's "devices=40
    ..." into "--devices 40 ..." by its text after the raise, which any rewording of the message broke silently, and
    which rewrote a graph named "the device_capacity of" as well; now the message carries its options, and each
    caller spells them (``UnusedOption``'s warnings and ``MemplanError``'s refusals alike)."""

    template: str = ""
    values: Mapping[str, Any] = MappingProxyType({})   # (none: each one made ``of`` a template holds its own)

    def __init__(self, *args: Any, template: str = "", values: dict[str, Any] | None = None) -> None:
        if template:
            self.template = template
            self.values = dict(values or {})
            args = (spell_options(template, self.values, KEYWORDS),)
        super().__init__(*args)

    @classmethod
    def of(cls, template: str, **values: Any):
        """The error or warning whose text is ``template`` with its option fields filled from ``values`` (see
        the class)."""
        return cls(template=template, values=values)

    def spelled(self, spell: OptionSpelling | Callable[[str, str], str]) -> str:
        """The text with each option field spelt by ``spell`` (an ``OptionSpelling``, or a function ``spell(name,
        value_text)`` for an option given a value); the text itself when made without a template."""
        return spell_options(self.template, self.values, spell) if self.template else str(self)

    def phrased(self) -> str:
        """The message as a template to build on (``literal``'s text where it was made without one): an error that
        wraps this one keeps its options to be spelt (``of(template + cls.phrased(inner), **inner.values)``)."""
        return self.template or literal(str(self))


class MemplanError(NamesOptions, Exception):
    """Base of every error memplan raises on purpose (one that names options: ``NamesOptions``)."""


class FieldWarning(UserWarning):
    """A graph document field that is no field of the format but close to one (``in_place``, ``viewof``,
    ``groups``): the contract has readers ignore unknown fields, so the plan is made without it, and a misspelt
    ``view_of`` or ``inplace`` silently plans the user's alias or in-place pair as memory of its own."""


class UnusedOption(NamesOptions, UserWarning):
    """An option the other options leave without effect: ``memplan.plan(g, streams=1, max_events=3)`` (one stream
    has no cross-stream event to cap) plans as without it and says so with this warning, as ``memplan plan`` says so on
    one ``memplan: warning:`` line (``argtypes.unused``). A warning, not a refusal: a sweep over ``streams`` 1, 2, 4
    with one ``max_events`` still runs its first case.

    One the library raises is made with ``of(template, **values)`` (``NamesOptions``): spelt as keywords
    (``max_events=3``), and by the ``memplan`` command as flags (``--max-events 3``). Why: the command warned of
    ``--streams 1 --max-events N`` itself and filtered out the library's warning of the same by its text, two sources
    of one warning that a reworded message would have printed twice; now the library's warning is the one source, in
    each caller's words."""


class WallClockStop(UnusedOption):
    """The wall-clock safety stop cut a solve short of its work budget (``time_limit``): the plan is the best found by
    then, still verified, but where the stop fell depends on the machine's speed and load, so the same input may give
    another plan another time. The plan's solver block says ``"stopped": "wall_clock"``; this warning says it to a
    caller who reads no block. An ``UnusedOption`` (the work budget given was not spent), so ``memplan`` prints it
    as one ``memplan: warning:`` line with the options spelt as flags."""


def keyword_spelling(name: str, text: str) -> str:
    """An option as a Python caller writes it: ``max_events=3``."""
    return f"{name}={text}"


class OptionSpelling(NamedTuple):
    """How a message names an option (``NamesOptions``), per field form: ``given`` an option with its value's text
    (``{devices}``: ``devices=40``), ``named`` the option named as what it sets (``{device_capacity!n}``: "the
    device_capacity of 1024"), ``word`` its name alone (``{memory_budget!w}``: "memory_budget"). (Not the ONNX
    importer's ``Spelling``, which names its ``dims`` and ``batch`` alone.)"""

    given: Callable[[str, str], str]
    named: Callable[[str, str], str]
    word: Callable[[str], str]


#: the options as a Python caller writes them: every message's own text
KEYWORDS = OptionSpelling(keyword_spelling, lambda name, text: f"the {name} of {text}", str)


def literal(text: str) -> str:
    """``text`` as a template's plain text (braces doubled): a graph's name or a nested message put into a
    template is never read as fields."""
    return text.replace("{", "{{").replace("}", "}}")


def spell_options(template: str, values: dict[str, Any], spell: OptionSpelling | Callable[[str, str], str]) -> str:
    """``template`` with each field ``{name}`` made ``spell.given(name, repr(values[name]))``, ``{name:text}``
    ``spell.given(name, text)``, ``{name!n}`` ``spell.named(...)`` and ``{name!w}`` ``spell.word(name)``
    (``NamesOptions``). A plain function ``spell`` spells ``given`` and ``named`` alike, and the name alone as
    Python does."""
    import string

    if not isinstance(spell, OptionSpelling):
        spell = OptionSpelling(spell, spell, KEYWORDS.word)
    forms = {None: spell.given, "n": spell.named}

    class Options(string.Formatter):
        def get_value(self, key, args, kwargs):   # (the name kept beside its value, for ``spell``)
            return key, kwargs.get(key)

        def convert_field(self, value, conversion):   # (the form kept for ``format_field``)
            return (*value, conversion)

        def format_field(self, value, format_spec):
            name, v, form = value
            if form == "w":
                return spell.word(name)
            return forms.get(form, spell.given)(name, format_spec or repr(v))   # (``!r``, ``!s``: given)

    return Options().vformat(template, (), values)


class GraphError(MemplanError, ValueError):
    """The graph JSON or builder input breaks the graph contract."""


class ScheduleError(MemplanError, ValueError):
    """A schedule (order, streams, events) is malformed for its graph."""


class PlanFormatError(MemplanError, ValueError):
    """A plan document is not a well-formed ``memplan.plan/1`` for its graph."""


class InputFormatError(MemplanError, ValueError):
    """A raw input file (e.g. a minimalloc CSV) is malformed."""


class ExecutorError(MemplanError, ValueError):
    """An argument the GPU runtime (``runtime/``: its executors, emulator, kernel registry and model builders)
    cannot run: an input array of another dtype or size, a plan split over devices given to the one-device
    executor, a bad option. memplan's own error, as the planner's are, so one ``except MemplanError`` catches
    what both say of the caller's input; still the ``ValueError`` the runtime raised before."""


class SolverError(MemplanError):
    """A solver was misconfigured or could not produce a plan."""


class BudgetError(MemplanError):
    """No plan fits the requested memory budget or capacity."""


class OptionError(MemplanError, TypeError):
    """A keyword option the function does not take (``memplan.plan(graph, alignmnet=...)``): memplan's own
    error naming the option and the valid ones, and still the ``TypeError`` Python would have raised."""


#: options the command line takes that the library takes elsewhere: ``{name: (the keyword that holds it, how)}``.
#: ``memplan plan --event-us 5`` as ``memplan.plan(g, event_us=5)`` was "unknown option 'event_us'" with no word
#: on the cost model that carries it (nor did ``simulate`` say so).
ELSEWHERE = {"event_us": ("cost_model", "cost_model=memplan.CostModel(event_us=...)")}
# the solver options that ``plan()`` takes as keywords and ``plan_devices``, ``solvers.solve`` and
# ``io.minimalloc.solve_table`` in their ``options`` (``solve_table(t, time_limit=5)`` named no ``SolveOptions``)
ELSEWHERE.update({key: ("options", f"options=memplan.solvers.SolveOptions({key}=...)")
                  for key in ("time_limit", "seed", "workers", "progress", "fused_groups")})


def check_option_names(what: str, given: Iterable[str], known: Sequence[str]) -> None:
    """OptionError for the first name in ``given`` that is not in ``known``, naming it, the nearest known
    option and the list: the one check of every public entry point's keywords (Python's TypeError names
    no alternative, and through ``plan(**options)`` it named a function the caller never called)."""
    for key in given:
        if key not in known:
            holder, how = ELSEWHERE.get(str(key), ("", ""))
            near = [repr(m) for m in difflib.get_close_matches(str(key), list(known), n=1)]
            if holder in known:
                near = [how]
            hint = f" (did you mean {near[0]}?)" if near else ""
            listed = f"options: {', '.join(known)}" if known else "it takes none"   # (``b.build(x=1)``, round 74)
            raise OptionError(f"{what}() got an unknown option {short_repr(key)}{hint}; {listed}")


def caller_stacklevel() -> int:
    """The ``stacklevel`` of the first caller outside memplan, for a warning raised by the function that calls this:
    an entry point reaches the warning through the option-checking wrappers above (``named_options``,
    ``positional_checked``) and its own helpers, so a fixed level pointed at one of those, not at the user's call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("memplan."):
        frame, level = frame.f_back, level + 1
    return level


_F = TypeVar("_F", bound=Callable[..., Any])


def named_options(func: _F) -> _F:
    """``func`` with its keyword arguments checked by ``check_option_names`` against its own parameters
    (a misspelt ``plan_graph(g, stream=2)`` is an OptionError suggesting ``streams``, not a TypeError).
    Every argument that is an integer to Python (``as_int``: a numpy integer) arrives as a plain int, so an
    entry point's checks and the JSON it writes see one kind of integer (``plan(g, streams=np.int64(2))``
    was refused naming ``streams``, while numpy stream ids in a Schedule were taken), and a numpy bool given for a
    flag (a parameter annotated ``bool``) as a plain bool (``plain_bool``)."""
    params = list(inspect.signature(func).parameters.values())
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    name = func.__name__
    # the flags (parameters annotated ``bool``): a numpy bool given for one arrives as a plain bool (``plain_bool``);
    # an integer option given one still names it as given
    flags = frozenset(p.name for p in params if p.annotation in ("bool", bool))
    flag_at = frozenset(i for i, p in enumerate(params) if p.name in flags and p.kind == p.POSITIONAL_OR_KEYWORD)

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_positional(name, args, params)
        check_option_names(name, kwargs, known)
        check_given(name, args, kwargs, params)
        args = tuple(plain_bool(v) if i in flag_at else plain_int(v) for i, v in enumerate(args))
        return func(*args, **{k: plain_bool(v) if k in flags else plain_int(v) for k, v in kwargs.items()})

    return checked  # type: ignore[return-value]


def check_positional(name: str, args: Sequence[Any], params: Iterable[inspect.Parameter],
                     keywords: Sequence[str] | None = None) -> None:
    """OptionError (a TypeError still) where ``args`` holds more positional arguments than ``params`` (a function's
    parameters) take, naming them, the first one too many, and the keyword options (``keywords``, by default the
    keyword-only parameters). Why: ``memplan.plan(g, None, "auto", 5)`` (an option given by position) was Python's
    "plan() takes from 1 to 3 positional arguments but 4 were given", naming neither the value nor what to do."""
    params = list(params)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(args) <= len(positional):
        return
    if keywords is None:
        keywords = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    if not positional and not keywords and not any(p.kind is p.VAR_KEYWORD for p in params):
        # (``GraphBuilder("g").build(1)``: "takes none positional arguments ... must be given by keyword" named a
        # way out that does not exist)
        raise OptionError(f"{name}() takes no arguments, not {len(args)}: {short_repr(args[0])}")
    took = f"{len(positional)} ({', '.join(positional)})" if positional else "none"
    raise OptionError(f"{name}() takes {'at most ' * bool(positional)}{took} positional argument"
                      f"{'s' * (len(positional) != 1)}, not {len(args)}: {short_repr(args[len(positional)])} and any "
                      "after it must be given by keyword" + (f"; options: {', '.join(keywords)}" if keywords else ""))


def check_given(name: str, args: Sequence[Any], kwargs: Mapping[str, Any], params: Sequence[inspect.Parameter]) -> None:
    """OptionError (a TypeError still) for a required argument left out, or one given both by position and by
    keyword, naming it. Why: ``memplan.verify(graph)`` and ``verify(graph, plan, plan=plan)`` were Python's own
    TypeErrors ("missing 1 required positional argument", "got multiple values"), no memplan error, while every
    other mistake in a call of a public entry point is an OptionError naming the argument (round 60)."""
    for i, p in enumerate(params):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        by_position = i < len(args) and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        if by_position and p.kind is not p.POSITIONAL_ONLY and p.name in kwargs:
            raise OptionError(f"{name}() got argument {p.name!r} twice: by position ({short_repr(args[i], 40)}) and "
                              f"by keyword ({short_repr(kwargs[p.name], 40)})")
        if not by_position and p.default is p.empty and p.name not in kwargs:
            raise OptionError(f"{name}() needs argument {p.name!r}: it has no default")


def positional_checked(keywords: Callable[[], Sequence[str]] | None = None) -> Callable[[_F], _F]:
    """A decorator: ``func`` with too many positional arguments refused by ``check_positional`` (its keyword options
    listed from ``keywords()``, for a function that takes ``**options``). ``inspect.signature`` and ``help`` still show
    ``func``'s own signature. A function without ``**options`` also has an unknown keyword refused by
    ``check_option_names``: ``memplan.importers.torch.from_torch(m, (x,), decompse=True)`` was Python's bare TypeError
    (round 79), naming no alternative, where ``memplan.from_torch`` named ``decompose``."""
    def wrap(func: _F) -> _F:
        params = list(inspect.signature(func).parameters.values())
        known = None if any(p.kind is p.VAR_KEYWORD for p in params) else [
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if known is not None:
                check_option_names(func.__name__, kwargs, known)
            check_positional(func.__name__, args, params, keywords() if keywords is not None else None)
            check_given(func.__name__, args, kwargs, params)
            return func(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap


def refuse_unbound(func: Callable[..., Any], name: str, self: Any, args: tuple, kwargs: Mapping[str, Any]) -> None:
    """OptionError naming the argument where ``func(self, *args, **kwargs)`` (a method) does not bind: an unknown
    keyword (the nearest one suggested), one too many by position, one left out or given twice. Called only once the
    call has raised a TypeError, so a call that binds pays nothing; one that binds returns and the caller re-raises."""
    sig = inspect.signature(func)
    try:
        sig.bind(self, *args, **kwargs)
    except TypeError:
        params = list(sig.parameters.values())[1:]   # without self
        check_option_names(name, kwargs, [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                                                p.KEYWORD_ONLY)])
        check_positional(name, args, params)
        check_given(name, args, kwargs, params)


def named_method(func: _F) -> _F:
    """``func`` (a method of a public class) whose call that does not bind is an OptionError naming the argument, as
    ``named_options`` makes it for a function. Why: ``plan.to_json(timing=True)``, ``plan.save()`` or
    ``index.after(tensr="x")`` were Python's bare TypeErrors, where every other mistake in a call of the API is an
    OptionError naming the option (README). Checked only after the call raised a TypeError: nothing on the way of one
    that binds (``Graph.tensor`` runs once per tensor in the binding of a large plan)."""
    name = func.__qualname__

    @functools.wraps(func)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except TypeError as exc:
            if not isinstance(exc, MemplanError):
                refuse_unbound(func, name, self, args, kwargs)
            raise

    return checked  # type: ignore[return-value]


def named_fields(cls: type) -> type:
    """``cls`` (a dataclass) whose constructor refuses an unknown keyword as ``check_option_names`` does:
    ``CostModel(even_us=3)`` was Python's TypeError, naming no alternative and no memplan error. A call that does
    not bind otherwise (an option by position, ``GraphBuilder("g", 256, 3)``; a required argument left out,
    ``ReuseIndex(graph)``) is named as ``check_positional`` and ``check_given`` name it for a function: it was
    Python's bare TypeError, where README promises an ``OptionError``. Every check runs only once ``__init__`` has
    raised a TypeError, so a call that binds (millions of ``Tensor``s in a large graph) pays one call frame and no
    more: that is why ``Tensor``, ``Node`` and ``Event`` can carry it too (round 79: ``Tensor("t", 8,
    view_offest=4)`` was Python's bare TypeError there, naming no alternative)."""
    init = cls.__init__   # type: ignore[misc]
    params = list(inspect.signature(init).parameters.values())[1:]   # without self
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except TypeError as exc:
            if isinstance(exc, MemplanError):
                raise   # (the constructor's own OptionError, or a GraphError that is a TypeError too)
            try:   # a TypeError raised inside a call that binds passes every check: it is re-raised as it is
                check_option_names(cls.__name__, kwargs, known)
                check_positional(cls.__name__, args, params)
                check_given(cls.__name__, args, kwargs, params)
            except OptionError as named:
                raise named from None
            raise

    cls.__init__ = checked   # type: ignore[misc]
    return cls


def as_int(value: Any) -> int | None:
    """``value`` as a plain ``int`` when Python takes it as an integer (``operator.index``: ints, numpy
    integer scalars and 0-d integer arrays, IntEnums) and it is not a bool; else None (a float, even 2.0,
    a string such as "10", None, anything else). The one test of every integer a Python caller gives the
    library: numpy integers were refused as sizes and options while they were taken as stream ids, and a
    numpy value stored as given would be written as no JSON (or wrap around in int64 arithmetic)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    try:
        if getattr(getattr(value, "dtype", None), "kind", None) == "b":
            return None   # (numpy's bools, ``np.True_``, ``np.array(True)``: NumPy before 2.3 indexes them as 1)
        return int(operator.index(value))
    except Exception:   # no __index__ (TypeError), or a hostile one that raises anything else
        return None


def plain_int(value: Any) -> Any:
    """``value`` as a plain ``int`` when ``as_int`` takes it, else ``value`` itself (for its own check to
    name): how an entry point's integer arguments arrive as the ints its checks and JSON expect."""
    if type(value) is int or isinstance(value, (bool, float, str)) or value is None:
        return value
    v = as_int(value)
    return value if v is None else v


def plain_str(value: Any) -> Any:
    """``value`` as a plain ``str`` when it is an instance of a ``str`` subclass (its characters, as ``json``
    writes them: ``str()`` would call an overriding ``__str__``), else ``value`` itself. An id that is a subclass
    may compare or hash unlike its characters (two equal-looking ids taken as distinct, a custom ``__lt__``), so a
    graph or schedule built from such ids meant something other than the JSON it saves."""
    return str.__str__(value) if isinstance(value, str) and type(value) is not str else value


def unordered(value: Any) -> str | None:
    """Why ``value`` is no sequence to take items from in order, or None: a set or frozenset (any ``Set`` but a
    dict's keys, which keep the dict's order), or a 0-d numpy array, which claims ``__iter__`` but cannot be
    iterated. Why: where memplan takes a sequence (an issue order, a node's operands) a set iterates in an order
    that depends on the process's string hash seed, so the same call gave another plan or graph JSON each run."""
    if isinstance(value, Set) and not isinstance(value, KeysView):
        return "it has no order of its own"
    if getattr(value, "ndim", None) == 0 and type(value).__module__ == "numpy":
        return "a 0-d array holds no sequence"
    return None


def swapped_hint(fmt: Any, expected: str, doc: Any = None) -> str:
    """Where a memplan ``expected`` document ("graph" or "plan") was read and ``fmt`` is the other one's format
    tag, the note for its error: the likeliest cause is two file arguments given the other way round
    (``memplan verify PLAN GRAPH``). Where the document ``doc`` has no format tag and is the Chrome/Perfetto trace
    ``memplan trace`` writes (its ``traceEvents``), a note that says so. Else ''. Why the trace: ``memplan verify G
    trace.json`` (the trace of the plan, given for the plan) was "no 'format' field (expected 'memplan.plan/1')" alone,
    where a graph given for a plan is named as one."""
    other = "plan" if expected == "graph" else "graph"
    if isinstance(fmt, str) and fmt.startswith(f"memplan.{other}/"):
        return f" (this is a {other}, where a {expected} is expected: are two file arguments swapped?)"
    if fmt is None and isinstance(doc, dict) and "format" not in doc and isinstance(doc.get("traceEvents"), list):
        return (f" (this is a Chrome/Perfetto trace, such as 'memplan trace' writes, where a {expected} is expected: "
                "a trace is for ui.perfetto.dev, and no memplan command reads one)")
    return ""


def array_hint(doc: Any, expected: str) -> str:
    """Where a memplan ``expected`` document ("graph" or "plan") was read and ``doc`` is a JSON array of objects, the note
    for its "top level must be a JSON object": the results ``memplan bench ... --json`` writes are such an array. Else ''.
    Why: ``memplan plan results.json`` (a bench run's results, given back for a graph) was "top level must be a JSON
    object" alone, where a trace, a picture or the other document given by mistake is named as what it is."""
    if isinstance(doc, list) and doc and all(isinstance(row, dict) for row in doc):
        return (f" (this is a JSON array of {len(doc)} object{'s' * (len(doc) != 1)}, such as the results 'memplan bench SUITE "
                f"--json' writes, where a {expected} is expected)")
    return ""


def plain_ints(values: tuple) -> tuple:
    """``plain_int`` of each of ``values``."""
    return tuple(plain_int(v) for v in values)


def plain_bool(value: Any) -> Any:
    """``value`` as the Python bool it equals when it is a numpy bool (``np.True_``, a 0-d bool array), else ``value``
    itself. Why: a flag computed with numpy (``fused_groups=cfg["fused"]`` read from an array, ``timings=a > b``) was
    refused ("must be True or False, not np.True_") by ``plan``, ``verify``, ``reuse_after``, ``save_plan`` and the
    other entry points, which take numpy integers as the ints they equal; ``examples.llama`` and ``solve_table``
    already took numpy bools."""
    if type(value) is bool or isinstance(value, (int, float, str)) or value is None:
        return value
    try:
        if getattr(getattr(value, "dtype", None), "kind", None) == "b" and getattr(value, "shape", None) == ():
            return bool(value)
    except Exception:   # (a hostile ``dtype`` or ``__bool__``: kept, for the option's own check to name)
        pass
    return value


class UnsafePlan(MemplanError):
    """The verifier found a plan that breaks the contract's safety rules.

    ``violations`` holds every finding as ``(rule, message)`` so tools can show all of them;
    ``str()`` shows five: the first finding of each rule broken, then the earliest others (``_shown``).
    ``total`` is how many findings the plan has (``violations`` keeps at most ``verify.MAX_REPORTED`` of each rule),
    a lower bound where ``total_exact`` is False (counting every one would cost the verifier more than the check).
    Why: "and N more" counted the kept findings alone, so a plan with 10,000 racy reads said "and 195 more".
    """

    def __init__(self, violations: list[tuple[int, str]] | str, where: str | None = None, total: int | None = None,
                 total_exact: bool = True, named: dict[int, int] | None = None):
        # a plain message (``raise UnsafePlan("...")``, as any exception is raised; a checker of one's own) is one
        # finding of no rule: it was read as findings, one per character, and the class raised a bare ValueError
        # ("not enough values to unpack") in place of itself
        self.violations = [(0, violations)] if isinstance(violations, str) else list(violations)
        self.where = where
        kept = len(self.violations)
        # ``named``: {index of a finding: how many findings its message counts itself} for a message that names one
        # and says "and N more" (N + 1); every other finding counts one. Why: "plan has no entry for graph node
        # 'norm' and 5 more; and 5 more" counted the same five twice, once in the finding and once here
        self.named = {i: n for i, n in (named or {}).items()
                      if type(i) is int and 0 <= i < kept and type(n) is int and n > 1}
        least = kept + sum(n - 1 for n in self.named.values())
        # (a total below the findings kept is no total: the kept ones are counted)
        self.total = least if not isinstance(total, int) or isinstance(total, bool) or total < least else total
        self.total_exact = bool(total_exact) or self.total == least
        picked = _shown(self.violations)
        shown = "; ".join(_finding(self.violations[i]) for i in picked)
        more = self.total - sum(self.named.get(i, 1) for i in picked)
        if more > 0:
            shown += f"; and {'' if self.total_exact else 'at least '}{more} more"
        super().__init__(f"{f'{where}: ' if where else ''}unsafe plan: {shown}")

    def __reduce__(self):
        """Pickled as its findings, not as its message: ``Exception`` pickles ``args`` (the one message) and calls
        the class with it, which ``__init__`` read as findings and failed. So a plan judged unsafe in a worker
        process broke a ``ProcessPoolExecutor`` (BrokenProcessPool, the finding lost) and hung a
        ``multiprocessing.Pool`` for good (its result thread died unpickling it). Notes ride along (``__dict__``)."""
        return type(self), (self.violations, self.where, self.total, self.total_exact, self.named), self.__dict__

    def at(self, where: str) -> UnsafePlan:
        """The same finding, its message led by ``where`` (the plan file a command read), same type."""
        return type(self)(self.violations, where, self.total, self.total_exact, self.named)


def _finding(v) -> str:
    """One finding as ``str(UnsafePlan)`` shows it: ``rule R: message``, the message alone for a finding of no rule
    (``0``), and any other value as its text (never an error while the error is being made)."""
    if isinstance(v, tuple) and len(v) == 2:
        r, m = v
        return f"rule {r}: {m}" if r else f"{m}"
    return str(v)


def _shown(violations: list, count: int = 5) -> list[int]:
    """The indices of the ``count`` findings a message shows, in order: the first of each rule broken, then the
    earliest others. Why: the first five alone showed one rule only where it came first five times (200 events inside
    one stream ahead of a racy read and a reuse too early: "rule 1: ...; rule 1: ...; and 201 more"), hiding the
    other rules broken."""
    first: dict = {}
    for i, v in enumerate(violations):
        first.setdefault(v[0] if isinstance(v, tuple) and v else None, i)
    keep = sorted(first.values())[:count]
    keep += islice((i for i in range(len(violations)) if i not in keep), count - len(keep))
    return sorted(keep)


class PlanMismatch(PlanFormatError, UnsafePlan):
    """The plan was made for another graph: another name, other nodes or tensors, other sizes.

    A format error for this graph and an unsafe plan at once (``violations`` lists the mismatches by
    rule), so every command that takes a graph and a plan refuses it the same way.
    """


#: how many ids a finding about a set of nodes or tensors names before it counts the rest ("and 3 more")
NAMED_IDS = 5


def some_of(ids: Sequence[str], noun: str, spell: Callable[[str], str] = repr, cap: int = NAMED_IDS) -> str:
    """``noun`` and the ids of ``ids`` a finding names: "node 'a'" for one, "3 nodes: 'a', 'b', 'c'" for a few, and
    past ``cap`` the first ``cap`` and a count of the rest ("8 nodes: 'a', 'b', 'c', 'd', 'e' and 3 more"), each id
    as ``spell`` writes it. Why: "plan has no entry for graph node 'a' and 7 more" named one node of eight, so a user
    who put it back was refused for the next one, seven runs to learn what one could have said; and the verifier
    listed missing tensors one finding each, missing nodes as one, for the same kind of mistake."""
    ids = list(ids)
    if len(ids) == 1:
        return f"{noun} {spell(ids[0])}"
    shown = ", ".join(spell(i) for i in ids[:cap])
    return f"{len(ids)} {noun}s: {shown}" + (f" and {len(ids) - cap} more" if len(ids) > cap else "")


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 (``counted(1, "node") == "1 node"``; ``noun`` ends in a
    consonant's "s" only: "byte count", "field"). Why: messages and summary lines said "1 nodes", "1 fields"
    (a minimalloc CSV row of one cell) and "lists 1 byte counts"."""
    return f"{n} {noun}{'s' * (n != 1)}"


def not_an_index(error: type[MemplanError], what: str, value: Any, count: int) -> MemplanError:
    """The error an index accessor raises for ``value``, no index of its ``count`` items (a non-integer, a negative or
    a past-the-end one), naming the argument. Why: the accessors on hot paths (``HappensBefore.hb``,
    ``Graph.in_arena``, ``BufferProblem.conflicts``, ...) index lists and arrays directly, so ``hb(-1, 0)`` wrapped
    around and answered for the last node, and ``hb(1.5, 0)`` raised numpy's raw IndexError. They test only the sign
    on the way in and catch what indexing raises, so an inner loop pays one comparison per index."""
    return error(f"{what} must be an integer index in 0..{count - 1}, not {type(value).__name__} "
                 f"{short_repr(value)}")


def short_repr(x, limit: int = 60) -> str:
    """``repr(x)`` cut to ``limit`` characters, for error messages about hostile values. A value whose
    ``repr`` fails (a list nested thousands deep from Python: RecursionError, where the message was to
    name it; an object whose ``__repr__`` raises) is shown by ``reprlib``, which stops at a few levels."""
    try:
        r = repr(x)
    except Exception:   # RecursionError included
        if isinstance(x, int):   # over Python's 4300-digit limit of int -> str
            return f"<an integer of {x.bit_length()} bits>"
        try:
            r = reprlib.repr(x)
        except Exception:
            r = f"<{type(x).__name__} object>"
    return r if len(r) <= limit else r[:limit - 3] + "..."


#: letters of other scripts that print as a Latin letter in most fonts (Cyrillic, Greek): the part of Unicode's
#: confusables that ids typed or pasted from other keyboards and documents meet; NFKC folds the rest that look alike
#: (fullwidth ``ｘ``, ligatures), and invisible format characters are dropped (``x\u200b``)
_LOOKALIKES = str.maketrans(
    "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0456\u0458\u0455\u04bb\u0501"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405"
    "\u03bf\u03b1\u03bd\u03c1\u03c4\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
    "aBeKMHopcTyxijshd"
    "ABEKMHOPCTXIJS"
    "oavptABEZHIKMNOPTYX")


def _skeleton(name: str) -> str:
    """What ``name`` looks like: NFKC, format characters (zero-width, bidi marks) dropped, look-alike letters of
    other scripts as the Latin ones (``_LOOKALIKES``)."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf").translate(_LOOKALIKES)


def unicode_twins(names: Iterable[str]) -> Callable[[Any], str]:
    """A note for an id that is not among ``names`` but prints as one of them: the same text in another Unicode
    normalization form (``"te\u0301"``, e and a combining accent, against the graph's ``"t\u00e9"``), or look-alike
    characters (a Cyrillic ``"\u0445"`` for the graph's Latin ``"x"``, a fullwidth ``"\uff58"``): both print alike, so
    "plan places tensor 'té', which graph 'g' does not have" beside "does not place tensor 'té'" read as a
    contradiction, and "node 'a' reads unknown tensor 'х'" named what the graph plainly has. The note spells both with
    escapes. The map of ``names`` is built on the first id asked about (errors only)."""
    twins: dict[str, str] | None = None
    alike: dict[str, str] | None = None

    def note(x: Any) -> str:
        nonlocal twins, alike
        if not isinstance(x, str):
            return ""
        if not x.isascii():
            if twins is None:
                twins = {unicodedata.normalize("NFC", n): n for n in names if isinstance(n, str) and not n.isascii()}
            twin = twins.get(unicodedata.normalize("NFC", x))
            if twin is not None and twin != x:
                return f" ({ascii(x)[:60]}: the graph's {ascii(twin)[:60]} in another Unicode normalization form)"
        if alike is None:   # (ascii ids look like themselves: only the others' skeletons, and an ascii x's own)
            alike = {}
            for n in names:
                if isinstance(n, str):
                    alike.setdefault(n if n.isascii() else _skeleton(n), n)
        twin = alike.get(x if x.isascii() else _skeleton(x))
        if twin is None or twin == x:
            return ""
        return f" ({ascii(x)[:60]} looks like the graph's {ascii(twin)[:60]}, but other characters)"

    return note


def twin_spelling(*id_sets: Iterable[str]) -> Callable[[Any], str]:
    """How a finding names an id of a graph: its ``repr``, but its ``ascii`` escapes where another id of ``id_sets``
    prints alike (the same text in another normalization form, look-alike letters of other scripts: ``_skeleton``).
    Why: such ids are distinct strings, so a graph may hold both, and the verifier said "tensors 'té' and 'té'
    overlap", naming neither; escaped they read 't\\xe9' and 'te\\u0301'. The ids that print alike are found on the
    first id asked about (findings only), once."""
    twins: set[str] | None = None

    def spell(x: Any) -> str:
        nonlocal twins
        if twins is None:
            twins = set()
            seen: dict[str, str] = {}
            for ids in id_sets:
                for n in ids:
                    if isinstance(n, str):
                        other = seen.setdefault(n if n.isascii() else _skeleton(n), n)
                        if other != n:
                            twins.update((other, n))
        return ascii(x) if isinstance(x, str) and x in twins else repr(x)

    return spell


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (Python 3.11+), or the same list where that method is missing (3.10)."""
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]   # type: ignore[attr-defined]


_ARGUMENTS = {1: "one argument", 2: "two arguments"}


def uncallable_with(fn: Any, n: int) -> str | None:
    """Why the callable ``fn`` cannot be called with ``n`` (1 or 2) positional arguments, as far as its signature
    tells, naming it; None where it can (a callable whose signature cannot be read, a builtin's or a C extension's,
    counts as able: it is called and answers itself). Why: a progress callback is first called deep inside a solve
    or an import, and ``progress=lambda: None`` failed there, seconds or minutes in, with a TypeError from the call."""
    try:
        inspect.signature(fn).bind(*([None] * n))
    except TypeError:   # the signature does not take n positional arguments
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        return f"{short_repr(name)} cannot be called with {_ARGUMENTS.get(n, f'{n} arguments')}"
    except Exception:   # (ValueError: no signature; anything a hostile __signature__ raises)
        return None
    return None


def report_progress(progress: Callable[..., Any], *args: Any, caller: str) -> None:
    """``progress(*args)``: a user's progress callback, called deep inside a solve or an import.

    What it raises propagates as itself, with a note naming the callback and ``caller`` (as a cost model's
    ``node_us`` error does): it came from the caller's own code, so it keeps its type and traceback and every
    ``except`` around ``plan()`` still catches it; bare, its traceback ran through solver internals and nothing
    said it was the progress callback. ``KeyboardInterrupt`` passes untouched: a solve keeps its best plan."""
    try:
        progress(*args)
    except Exception as exc:
        name = getattr(progress, "__qualname__", None) or type(progress).__name__
        add_note(exc, f"(raised by the progress callback {name} called by {caller} with "
                      f"{', '.join(map(short_repr, args))})")
        mark_callers(exc)
        raise


def mark_callers(exc: BaseException) -> None:
    """Mark ``exc`` as raised by the caller's own callback (``from_callback``), so that no memplan code that
    handles its own errors of that type takes it for one: ``auto`` gives up on an exact solver that raises a
    SolverError or BudgetError and keeps the heuristic plan, which swallowed a progress callback's."""
    try:
        exc.__memplan_callback__ = True   # type: ignore[attr-defined]
    except (AttributeError, TypeError):   # an exception type with __slots__: nothing to mark
        pass


def from_callback(exc: BaseException) -> bool:
    """Whether ``exc`` came out of a caller's callback (``mark_callers``): to re-raise, never to handle."""
    return getattr(exc, "__memplan_callback__", False) is True
