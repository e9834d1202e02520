"""A call to a compiled module bound to ``forward``'s signature, as eager binds it.

Why: the export fixes one form of the call (the example's positional arguments and keywords) in its input spec,
while eager Python binds any form to ``forward``'s parameters. A module compiled as ``compile(m, (x,))`` and called
``cm(x=x)``, or ``cm(x, mask=None)`` (the default the export ran with), was refused as arguments that "do not match
the export's", though ``m(x=x)`` runs. The call is rearranged into compile's form; a parameter compile left to its
default may be given only that default (the program was traced with it).
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..bits import same_tensor_bits
from .errors import AtenExecutorError
from .program import _same_constant

_EMPTY = inspect.Parameter.empty
_PLAIN = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class CallForm:
    """``forward``'s signature and how compile called it: the parameters it gave positionally, then by keyword."""

    signature: inspect.Signature
    positional: tuple[str, ...]
    keywords: tuple[str, ...]


def call_form(forward: Any, args: tuple, kwargs: dict | None) -> CallForm | None:
    """The form of compile's call of ``forward``, or None where the call cannot be rearranged by name: a signature
    Python cannot read, ``*args`` (which values bind where is the function's own business), or an example call
    that does not bind (the export said why). ``**kwargs`` (transformers' forwards) is kept: its keywords are
    named ones too."""
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    try:
        bound = sig.bind(*args, **(kwargs or {}))
    except TypeError:
        return None
    names = tuple(bound.arguments)
    return CallForm(sig, names[:len(args)], tuple(kwargs or {}))


class ExtraArguments(AtenExecutorError):
    """Arguments compile left out, given other values than their defaults (``extra``: name -> value): the program
    was exported without them. ``CompiledModule`` may prove them inert (``proof_key``, ``same_export``)."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None):
        # ``extra`` optional: an exception is unpickled as ``cls(*args)``, its message alone (``extra`` comes back
        # with its ``__dict__``); required, the refusal of a compiled call made in a worker process failed to unpickle
        # (a TypeError in place of it: ``ProcessPoolExecutor`` broke, ``multiprocessing.Pool`` hung)
        super().__init__(message)
        self.extra = {} if extra is None else extra


def proof_key(extra: dict[str, Any]) -> frozenset | None:
    """What identifies ``extra`` for a proof that the program is the same with it: each name with its plain value's
    type and ``repr`` (``-0.0`` is not ``0.0``); None where a value is no plain one (a tensor is an input the
    program lacks: never proven)."""
    if not all(isinstance(v, _PLAIN) for v in extra.values()):
        return None
    return frozenset((name, type(v), repr(v)) for name, v in extra.items())


@dataclass
class Proofs:
    """The answers of ``CompiledModule._prove`` by ``proof_key``: None (proven: the program is compile's with those
    values) or why not; the ``size`` latest used kept, and a count of the refuted ones per set of names.

    Why bounded: each new value set costs a full export of ``forward``, and a keyword given a new float at every
    call (``scale=step * 0.1``) paid one per call and grew the answers without end. After ``tries`` refuted value
    sets for the same names, the next new one is refused at once (``exhausted``), without exporting."""

    size: int = 64
    tries: int = 8
    answers: OrderedDict = field(default_factory=OrderedDict)   # proof key -> None or why not
    failed: dict = field(default_factory=dict)   # frozenset of names -> how many value sets were refuted

    def __contains__(self, key: Any) -> bool:
        """Whether ``key`` is proven (``in_compile_form``'s test); a hit counts as a use."""
        if key not in self.answers or self.answers[key] is not None:
            return False
        self.answers.move_to_end(key)
        return True

    def refusal(self, key: Any) -> str | None:
        """Why ``key`` was refuted, or None where it is no refuted one kept."""
        why = self.answers.get(key)
        if why is not None:
            self.answers.move_to_end(key)
        return why

    def exhausted(self, names: frozenset) -> bool:
        """Whether ``tries`` value sets of these names were refuted already: no more exports for them."""
        return self.failed.get(names, 0) >= self.tries

    def record(self, key: Any, why: str | None) -> None:
        """Keep the answer for ``key`` (the least recently used one dropped beyond ``size``)."""
        if why is not None:
            names = frozenset(name for name, _t, _r in key)
            self.failed[names] = self.failed.get(names, 0) + 1
        self.answers[key] = why
        self.answers.move_to_end(key)
        while len(self.answers) > self.size:
            self.answers.popitem(last=False)

    @property
    def proven(self) -> list:
        """The proven keys kept."""
        return [k for k, why in self.answers.items() if why is None]

    @property
    def refuted(self) -> dict:
        """The refuted keys kept, with why."""
        return {k: why for k, why in self.answers.items() if why is not None}


def in_compile_form(form: CallForm | None, args: tuple, kwargs: dict,
                    proven: frozenset | set | Proofs = frozenset()) -> tuple[tuple, dict]:
    """``args`` and ``kwargs`` rearranged into compile's form; as given where they already are in it or do not
    bind to the signature (the executor's structure check then names what differs). Arguments compile left out
    are dropped where given their defaults, or values whose ``proof_key`` is in ``proven`` (exporting forward
    with them gave compile's program); any others raise ``ExtraArguments``."""
    if form is None or (len(args) == len(form.positional) and kwargs.keys() == set(form.keywords)):
        return args, kwargs
    try:
        given = dict(form.signature.bind(*args, **kwargs).arguments)
    except TypeError:
        return args, kwargs
    params = form.signature.parameters
    for name in [n for n, p in params.items() if p.kind is inspect.Parameter.VAR_KEYWORD and n in given]:
        extra = given.pop(name)
        if extra.keys() & given.keys():   # ``f(x, /, **kw)`` called ``(t, x=u)``: two values named x, one in kw;
            return args, kwargs           # merged, u replaced t (the structure check names the call instead)
        given.update(extra)   # ``**kwargs``' keywords, each by its name
    used = {*form.positional, *form.keywords}
    extra = {name: value for name, value in given.items()
             if name not in used and not _is_default(value, params[name].default if name in params else _EMPTY)}
    if extra and proof_key(extra) not in proven:
        name = next(iter(extra))
        default = params[name].default if name in params else _EMPTY
        said = "without a default" if default is _EMPTY else f"with its default {default!r}"
        raise ExtraArguments(
            f"argument {name!r} is given, but compile called forward without it, so the program was "
            f"exported {said}: compile with it (an example value) to call with it", extra)
    missing = [n for n in used if n not in given and (n not in params or params[n].default is _EMPTY)]
    if missing:   # (a keyword of ``**kwargs`` compile gave: the structure check names it)
        return args, kwargs

    def value(name: str) -> Any:
        # (a parameter compile gave and this call leaves to its default: the default, which the executor's checks
        # then compare with what the export saw)
        return given[name] if name in given else params[name].default

    return tuple(value(n) for n in form.positional), {n: value(n) for n in form.keywords}


def _is_default(value: Any, default: Any) -> bool:
    """Whether ``value`` is the default the export ran with: the very object, or the same plain value of its type
    (``scale=1.0`` given where ``1.0`` is the default), as the executor compares the constants export specialized:
    ``-0.0`` is not a default ``0.0`` (``x / eps`` gives -inf, not inf), NaN is NaN."""
    if value is default:
        return True
    return isinstance(default, _PLAIN) and _same_constant(value, default)


def takes(form: CallForm | None, name: str) -> bool:
    """Whether ``forward`` takes a keyword ``name`` itself: a parameter of that name, or a keyword compile gave it
    through ``**kwargs``. Why: ``CompiledModule`` reads ``delays=`` as the executor's; where forward has its own
    ``delays``, eager's meaning wins (taken as the executor's, ``cm(x, delays={})`` ran the program traced with
    ``delays=None``, and a tensor compile gave as ``delays`` was refused as no mapping of GPU cycles)."""
    if form is None:
        return False
    param = form.signature.parameters.get(name)
    named = param is not None and param.kind is not inspect.Parameter.VAR_KEYWORD
    return named or name in form.keywords


def same_export(compiled: Any, other: Any, extra: set[str], held: frozenset[int] | set[int] = frozenset(),
                generators: tuple[Any, Any] = ((), ())) -> bool:
    """Whether ``other`` (forward exported again with the arguments ``extra`` too) is ``compiled``'s program: the
    same nodes, in order, with the same targets and arguments; the same inputs but for ``extra``'s (constant
    inputs no node reads); the same outputs, output structure and lifted constants. Why: transformers 5 takes
    ``return_dict`` / ``output_attentions`` in ``**kwargs``, and ``cm(ids, return_dict=None)`` was refused after a
    compile without it, though ``None`` there means "as the config says", the very program; where exporting with
    the value gives the same program, the call is eager's. Anything else (another node, output or structure)
    keeps the refusal. ``held``: the ids of the module's own tensors (``guard.module_tensor_ids``), which a lifted
    constant matches only as the very object (``_same_tensor``). ``generators``: the two programs'
    ``Program.generators``, a lifted generator matching as the module generator it stands for (``same_program``)."""
    from torch.export.graph_signature import ConstantArgument, InputKind

    def inputs(ep: Any) -> list[str]:
        return [_spec_text(s) for s in ep.graph_signature.input_specs if not (
            s.kind == InputKind.USER_INPUT and isinstance(s.arg, ConstantArgument) and s.arg.name in extra)]

    constants = {s.arg.name for s in other.graph_signature.input_specs if s.kind == InputKind.USER_INPUT
                 and isinstance(s.arg, ConstantArgument) and s.arg.name in extra}
    if inputs(compiled) != inputs(other) or not _same_entries(_graph_entries(compiled.graph_module, set()),
                                                              _graph_entries(other.graph_module, constants), held):
        return False
    if (repr(compiled.graph_signature.output_specs) != repr(other.graph_signature.output_specs)
            or compiled.call_spec.out_spec != other.call_spec.out_spec):
        return False
    if compiled.constants.keys() != other.constants.keys():
        return False
    ours, theirs = (_stands_for(ep, gens) for ep, gens in zip((compiled, other), generators))
    return all(_same_generator(k, ours, theirs) if k in ours or k in theirs
               else _same_tensor(compiled.constants[k], other.constants[k], held) for k in compiled.constants)


def _spec_text(spec: Any) -> str:
    """An input spec as text, a custom object's (a lifted ``torch.Generator``) without its fake value. Why: the
    fake value is a new ``FakeScriptObject`` at each export, and its repr its address, so two exports of the very
    program had other texts and a keyword call proven by exporting again was refused (round 50b)."""
    from torch.export.graph_signature import CustomObjArgument

    arg = spec.arg
    if isinstance(arg, CustomObjArgument):
        return repr((spec.kind, arg.name, arg.class_fqn, spec.target, spec.persistent))
    return repr(spec)


def same_program(compiled: Any, other: Any, extra: set[str], held: frozenset[int] | set[int] = frozenset()) -> bool:
    """``same_export`` of two ``Program``s, their lifted generators matched by the module generator each stands for
    (``Program.generators``)."""
    return same_export(compiled.exported, other.exported, extra, held, (compiled.generators, other.generators))


def _stands_for(ep: Any, generators: Any) -> dict[str, Any]:
    """{constant key: the module's generator object} of each lifted ``torch.Generator`` of ``ep`` that
    ``generators`` (``Program.generators``: placeholder first, the module's generator last) matched."""
    by_placeholder = {g[0]: g[-1] for g in generators}
    return {s.target: by_placeholder[s.arg.name] for s in ep.graph_signature.input_specs
            if getattr(s.arg, "name", None) in by_placeholder and s.target is not None}


def _same_generator(key: str, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Whether constant ``key`` stands for the very module generator in both programs. Why: export lifts a *copy*
    of a generator, a new object at each export (in the state the module's is in then), so compared as objects a
    keyword call proven by exporting again (``step(x, extra=None)``) was refused though nothing differed."""
    return key in ours and key in theirs and ours[key] is theirs[key]


def _same_tensor(a: Any, b: Any, held: frozenset[int] | set[int] = frozenset()) -> bool:
    """The same lifted constant: the very object, or, where neither is a tensor the module holds (``held``: one
    ``forward`` made, ``torch.tensor([1., 2.])``, a new object in each export), one of the same dtype, shape and
    bits. Why not bits alone for the module's own: the program reads that object where it is, and eager the one
    ``forward`` picks (``self.tables[1]`` for ``self.tables[0]``, both zeros at the proof): equal then, a write to
    ``tables[1]`` later showed in eager's call only, the program's ran silently on ``tables[0]``."""
    import torch

    if a is b:
        return True
    if id(a) in held or id(b) in held:
        return False
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    return a.device == b.device and same_tensor_bits(a, b)   # (a 0-dim one too: viewing it as bytes raised)


def _nan_signs(args: Any) -> tuple[bool, ...]:
    """The sign bit of each NaN float among a node's arguments (nested in lists, tuples and dicts), in order. Why: a
    node's text writes ``nan`` for both signs, so a global or a setting changed from NaN to -NaN (``x * A``, whose
    result's NaNs carry that sign in eager) exported again the "same" program and was taken, the compiled call's NaNs
    of the export's sign (round 74); a complex one's parts likewise (``x * (nan+1j)`` in a complex model)."""
    if isinstance(args, float):
        return (math.copysign(1.0, args) < 0,) if math.isnan(args) else ()
    if isinstance(args, complex):   # (each part: ``repr`` writes ``(nan+1j)`` for a -NaN real part too)
        return _nan_signs((args.real, args.imag))
    if isinstance(args, (list, tuple)):
        return tuple(b for a in args for b in _nan_signs(a))
    if isinstance(args, dict):
        return tuple(b for a in args.values() for b in _nan_signs(a))
    return ()


def _graph_entries(owner: Any, skip: set[str], depth: int = 0) -> list[Any]:
    """``owner``'s nodes as text (``format_node``: target and arguments), leaving out the placeholders ``skip``
    names, each ``get_attr`` followed by what it fetches: a subgraph's own entries (a ``torch.cond`` branch, a
    ``map`` body, at any depth), a tensor as itself. Why: a higher-order op's node reads its branches by
    attribute name only (``cond(pred, true_graph_0, false_graph_0, ...)``), so a keyword that changed a scalar inside
    a branch (``t * 3.0`` for ``t * 2.0``) left the top graph's text as compile's: proven, and run silently wrong."""
    import torch

    out: list[Any] = []
    for n in owner.graph.nodes:
        if n.op == "placeholder" and n.name in skip:
            continue
        out.append(n.format_node())
        signs = _nan_signs((n.args, n.kwargs))
        if signs:   # (``format_node`` writes ``nan`` for -nan too)
            out.append(("nan signs", signs))
        if n.op != "get_attr":
            continue
        obj: Any = owner
        for part in str(n.target).split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.fx.GraphModule) and depth < 32:
            out.append(_graph_entries(obj, set(), depth + 1))
        else:
            out.append(obj if isinstance(obj, torch.Tensor) else repr(obj))
    return out


def _same_entries(a: list[Any], b: list[Any], held: frozenset[int] | set[int] = frozenset()) -> bool:
    """Whether two ``_graph_entries`` lists match: text equal, subgraphs alike, tensors ``_same_tensor``."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, list) or isinstance(y, list):
            if not (isinstance(x, list) and isinstance(y, list) and _same_entries(x, y, held)):
                return False
        elif isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif not _same_tensor(x, y, held):
            return False
    return True
