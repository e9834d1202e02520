"""A ``.pt2`` never runs code on import: pickles, saved guards and sympy sizes are checked first.

Why: ``torch.export.load`` unpickles members and evaluates a saved guard's Python text and sympy expressions. A hostile
archive can name a function to call, an ``__import__`` in a guard, or a size (``Pow(10, 10**8)``, a repeated list)
that hangs the loader. Each is refused naming what it found before torch reads it; the allowed forms are short lists.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import logging
import os
import pickle
import re
from typing import Any

from ..._warnblock import warnings_caught
from ...errors import InputFormatError
from ...errors import short_repr as _short
from .. import first_line

#: the environment variables by which ``torch.load`` takes ``weights_only`` whatever its caller passes
_FORCE_WEIGHTS_ONLY, _FORCE_NO_WEIGHTS_ONLY = "TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


class _PickledCode(Exception):
    """A pickled Python object in a ``.pt2`` archive that loading would have run (``_no_code_from``)."""


def _pickled_code(path: str, what: str) -> str:
    return (f"{path}: the archive holds {what} (a pickle, which can run any code when loaded): memplan import "
            "reads only tensors and the program from a .pt2; if you trust the file, load it in Python "
            "(torch.export.load) and import the program with memplan.from_torch")


class _RefusingPickle:
    """Stands in for the ``pickle`` module of torch's archive reader while ``memplan import`` loads a file:
    its ``loads`` (an opaque object constant's) refuses instead of unpickling."""

    def __init__(self, path: str) -> None:
        self.path = path

    def loads(self, *args: Any, **kwargs: Any) -> Any:
        raise _PickledCode(_pickled_code(self.path, "an opaque Python object constant"))

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)


#: the sympy classes whose first argument ``sympy.srepr`` writes as a string (a symbol's name, a float's digits), and
#: that read it as that (no ``sympify``): the only places a string may stand (``_sympy_text_refusal``)
_NAMED_BY_STRING = frozenset({"Symbol", "Dummy", "Float"})


def _sympy_text_refusal(text: Any) -> str | None:
    """Why ``text`` is not an expression ``sympy.srepr`` writes (how torch.export saves a symbolic size), or
    None: only calls of sympy classes (``Symbol``, ``Integer``, ``Add``, torch's ``FloorDiv``...) on numbers,
    sympy constants, such calls and constant keyword arguments, with a string only as the name of a ``Symbol`` or
    ``Dummy`` or the digits of a ``Float``. Why so narrow: ``sympy.sympify`` of a string is Python's ``eval``,
    with the builtins in reach (``open``, ``__import__``), an f-string's or an attribute's code runs too; and
    a sympy class given a string elsewhere sympifies it in turn (``Max("__import__('os')...", 1)`` and ``Poly``
    ran it: the token filter before took any plain string anywhere). A sympy class built so runs nothing."""
    if not isinstance(text, str):
        return None   # (sympify of a non-string evaluates nothing)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        return f"it does not parse ({exc})"
    return _srepr_refusal(tree.body)


#: the sympy classes a saved size may call: arithmetic, comparisons and logic, the ones torch's symbolic sizes are made
#: of (with torch's own functions, ``_sympy_class``). Any other sympy class evaluates as it is built, some for ever:
#: ``factorial(Integer(10**8))`` in a size ran for minutes inside torch's deserializer
_SYMPY_SIZE_CLASSES = frozenset({
    "Symbol", "Dummy", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max", "Min", "floor", "ceiling",
    "Abs", "sign", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Eq",
    "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Xor", "Piecewise", "ExprCondPair", "BooleanTrue",
    "BooleanFalse", "Tuple"})
#: torch's sympy classes that are bases, not functions a size calls
_SYMPY_BASES = frozenset({"Application", "Expr", "LatticeOp", "MinMaxBase", "Basic", "Function"})
#: calls that raise their first argument to the power of their second (``LShift``: times 2 to it)
_POWERS = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift"})
#: the largest power a saved size may take, nested powers multiplied (torch writes ``s0**2``; ``Pow(Integer(10),
#: Integer(10**8))`` is a number of 10**8 digits, which sympy computed as the text was read: a hang)
MAX_EXPONENT = 64
#: the largest precision (bits or digits) a saved ``Float`` may ask for
_MAX_PRECISION = 1024


def _small_number(x: ast.AST) -> float | None:
    """The value of ``x`` where it is a number literal, ``-`` one, or ``Integer(n)`` / ``Float(...)`` / ``Rational(p,
    q)`` of such; else None."""
    if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
        v = _small_number(x.operand)
        return None if v is None else -v
    if isinstance(x, ast.Constant) and type(x.value) in (int, float):
        return float(x.value)
    if isinstance(x, ast.Constant) and type(x.value) is str:
        try:
            return float(x.value)
        except ValueError:
            return None
    if isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id in ("Integer", "Float", "Rational") \
            and x.args and not x.keywords:
        parts = [_small_number(a) for a in x.args]
        if any(p is None for p in parts):
            return None
        return parts[0] / parts[1] if len(parts) == 2 and parts[1] else parts[0]
    return None


def _srepr_refusal(node: ast.AST) -> str | None:
    """``_sympy_text_refusal`` of one parsed (sub)expression. Iterative: a deep text is no recursion error.
    Each node is walked with the product of the exponents of the powers around it (``MAX_EXPONENT``)."""
    import sympy

    stack: list[tuple[ast.AST, float]] = [(node, 1.0)]
    while stack:
        x, scale = stack.pop()
        if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
            x = x.operand   # (a negative number: srepr writes Integer(-2))
        if isinstance(x, ast.Constant) and type(x.value) in (int, float, bool) or (
                isinstance(x, ast.Constant) and x.value is None):
            continue
        if isinstance(x, ast.Tuple):
            stack.extend((e, scale) for e in x.elts)
            continue
        if isinstance(x, ast.Name) and not x.id.startswith("_") and isinstance(getattr(sympy, x.id, None), sympy.Basic):
            continue   # (a constant: oo, true, pi)
        if isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and _sympy_class(sympy, x.func.id):
            name = x.func.id
            named = name in _NAMED_BY_STRING and x.args and isinstance(x.args[0], ast.Constant) and \
                type(x.args[0].value) is str
            args = x.args[1:] if named else x.args
            if name in _POWERS and len(args) == 2:
                power = _small_number(args[1])
                if power is None or abs(power) * scale > MAX_EXPONENT:
                    return (f"{_short(ast.unparse(x))} raises to a power other than a constant of at most "
                            f"{MAX_EXPONENT}")
                stack.append((args[0], scale * max(1.0, abs(power))))
                continue
            stack.extend((a, scale) for a in args)
            for kw in x.keywords:
                if kw.arg is None or not isinstance(kw.value, ast.Constant) or type(kw.value.value) is str:
                    return f"keyword {kw.arg or '**'} of {name} is no constant"
                if kw.arg in ("precision", "dps", "prec") and not (
                        type(kw.value.value) is int and 0 < kw.value.value <= _MAX_PRECISION):
                    return f"keyword {kw.arg} of {name} asks for a precision over {_MAX_PRECISION}"
            continue
        return f"{_short(ast.unparse(x))} is no part of a sympy expression"
    return None


#: what a saved guard (``ExportedProgram._guards_code``) may name: the inputs (``L``), ``math`` and what torch's guard
#: namespace holds (``torch.fx.experimental.symbolic_shapes.SYMPY_INTERP``: ``torch``'s ``sym_*`` functions and dtypes,
#: two helper functions)
_GUARD_NAMES = frozenset({"L", "math", "inf", "torch", "IsNonOverlappingAndDenseIndicator",
                          "cast_symbool_to_symint_guardless"})
#: the builtins a guard may call, on two or more plain values only (torch 2.11 writes ``max(1, 6*(s0 // n))``, and
#: ``ExportedProgram.module()`` runs guards with the builtins in reach; one iterable argument is refused, so no
#: ``max(range(10**18))``)
_GUARD_PAIR_BUILTINS = frozenset({"max", "min"})
#: what of ``math`` a guard may use (``math.factorial(10**8)`` would run for minutes as the guard is checked)
_GUARD_MATH = frozenset({"isnan", "isinf", "isfinite", "inf", "nan", "floor", "ceil", "trunc", "sqrt", "log", "log2", "pow", "fmod",
                         "log10", "exp", "pi", "e", "fabs", "copysign", "cos", "sin", "tan", "acos", "asin", "atan",
                         "cosh", "sinh", "tanh", "asinh", "acosh", "atanh"})
#: the methods and attributes of an input a guard may use
_GUARD_TENSOR_ATTRS = frozenset({"size", "stride", "storage_offset", "dim", "numel", "shape", "dtype", "device"})
#: the expression nodes a guard is made of (besides names, attributes, calls and subscripts, checked one by one)
_GUARD_NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Tuple, ast.Load,
                ast.boolop, ast.operator, ast.unaryop, ast.cmpop, ast.keyword)


#: the largest constant a saved guard may multiply by (torch writes small coefficients: ``2*L['n']``)
MAX_GUARD_FACTOR = 1 << 32


#: the methods of an input whose result is a number (``size(0)`` and ``stride(0)`` too, given an index)
_GUARD_NUMBER_METHODS = frozenset({"numel", "dim", "storage_offset"})
#: the ``math`` names that are numbers, not functions
_GUARD_MATH_NUMBERS = frozenset({"inf", "nan", "pi", "e"})


def _repeats(side: ast.AST, sequence_inputs: frozenset[str] = frozenset()) -> bool:
    """Whether ``side``, an operand of a guard's ``*`` (or the left one of its ``%``), could make Python repeat a
    sequence (or format a string) or build a huge number: anything not surely a number (``_surely_number``), or a
    constant above ``MAX_GUARD_FACTOR``. ``sequence_inputs``: the placeholder names of the program's user inputs
    that are no tensor or number (a ``str`` one: ``_sequence_inputs``).

    Why: ``'a' * 10**11 == 0`` or ``L['x'].size() * 10**10 == 0`` passes every name rule and, run by ``ep.module()``,
    builds 100 GB before the comparison (a MemoryError or an out-of-memory kill, not a refusal). The forms that did so
    were listed one by one before, and ``L['x'].shape * 4000000000``, ``L['x'].size()[:] * 4000000000`` (tuples,
    under the factor bound), ``torch.sym_max(L['x'].size(), (1,)) * ...``, a ``str`` input ``L['s'] * 4000000000``
    and ``'%0999999999d' % 1`` (a 1 GB string, no ``*`` at all) still passed (round 49): now only what is surely a
    number is taken."""
    if isinstance(side, ast.Constant) and type(side.value) is int and abs(side.value) > MAX_GUARD_FACTOR:
        return True
    return not _surely_number(side, sequence_inputs)


def _surely_number(x: ast.AST, sequence_inputs: frozenset[str]) -> bool:
    """Whether guard expression ``x`` is a number (or a tensor, or an error) whatever the inputs: a number constant, a
    comparison, an indexed ``size()``/``stride()``/``shape``, ``numel()``/``dim()``/``storage_offset()``, a ``math``
    function or constant, torch's ``sym_*`` functions and guard helpers of numbers, arithmetic and logic of numbers,
    and an input (``L['n']``) that is a tensor or a number: not one in ``sequence_inputs``. A sequence or string
    repeated by ``*`` (or formatted by ``%``) is what ``_repeats`` refuses. Iterative: a deep text is no recursion
    error."""
    stack = [x]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Constant):
            if type(x.value) not in (int, float, bool, complex):
                return False
        elif isinstance(x, ast.Compare):
            continue   # (a bool, whatever it compares)
        elif isinstance(x, ast.Name):
            if x.id != "inf":
                return False
        elif isinstance(x, ast.Attribute):
            if not (isinstance(x.value, ast.Name) and x.value.id == "math" and x.attr in _GUARD_MATH_NUMBERS):
                return False
        elif isinstance(x, (ast.UnaryOp, ast.BinOp, ast.BoolOp)):
            stack.extend(c for c in ast.iter_child_nodes(x) if isinstance(c, ast.expr))
        elif isinstance(x, ast.Subscript):
            if _input_key(x) is not None:
                if _input_key(x) in sequence_inputs or any(n.startswith(_input_key(x) + "_") for n in sequence_inputs) \
                        or sequence_inputs and _input_key(x) == "flat_args":
                    return False
                continue
            index = x.slice.operand if isinstance(x.slice, ast.UnaryOp) else x.slice
            indexed = isinstance(index, ast.Constant) and type(index.value) is int
            of_sizes = isinstance(x.value, ast.Attribute) and x.value.attr == "shape" or (
                isinstance(x.value, ast.Call) and isinstance(x.value.func, ast.Attribute)
                and x.value.func.attr in ("size", "stride") and not x.value.args)
            if not (indexed and of_sizes):
                return False
        elif isinstance(x, ast.Call) and isinstance(x.func, ast.Attribute):
            owner = x.func.value.id if isinstance(x.func.value, ast.Name) else None
            if owner == "math":
                continue   # (a float, or math's own error)
            if owner == "torch" and x.func.attr.startswith("sym_"):
                stack.extend(x.args)   # (sym_max, sym_ite... return an argument: each must be a number)
                stack.extend(k.value for k in x.keywords)
                continue
            method = x.func.attr in _GUARD_NUMBER_METHODS or (x.func.attr in ("size", "stride") and x.args)
            if owner is not None or not method:
                return False
        elif isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id in _GUARD_NAMES:
            continue   # (IsNonOverlappingAndDenseIndicator, cast_symbool_to_symint_guardless: ints)
        elif isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id in _GUARD_PAIR_BUILTINS \
                and len(x.args) >= 2 and not x.keywords:
            stack.extend(x.args)   # (max / min of numbers: one of them)
        else:
            return False
    return True


def _input_key(x: ast.Subscript) -> str | None:
    """The first key of ``L['xs'][0]...`` (``'xs'``), the input a guard names; None where ``x`` is no such chain."""
    while isinstance(x, ast.Subscript) and isinstance(x.value, ast.Subscript):
        x = x.value
    if isinstance(x, ast.Subscript) and isinstance(x.value, ast.Name) and x.value.id == "L" and \
            isinstance(x.slice, ast.Constant) and isinstance(x.slice.value, str):
        return x.slice.value
    return None


def _sequence_inputs(ep: Any) -> frozenset[str]:
    """The placeholder names of ``ep``'s user inputs that are neither a tensor nor a number (a ``str`` constant input,
    a script object), which a guard may not multiply (``_repeats``)."""
    numeric = {"TensorArgument", "SymIntArgument", "SymFloatArgument", "SymBoolArgument"}
    names = set()
    for spec in getattr(getattr(ep, "graph_signature", None), "input_specs", ()):
        if str(getattr(spec.kind, "name", spec.kind)) != "USER_INPUT":
            continue
        arg = spec.arg
        kind = type(arg).__name__
        if kind in numeric:
            continue
        if kind == "ConstantArgument" and (getattr(arg, "value", None) is None or
                                           type(arg.value) in (int, float, bool, complex)):
            continue
        names.add(str(getattr(arg, "name", "")))
    return frozenset(names)


def _guard_text_refusal(torch, text: Any, sequence_inputs: frozenset[str] = frozenset()) -> str | None:
    """Why ``text`` is not a guard torch.export writes (``(L['x'].size()[0] % 2) == 0``), or None: an expression of
    the inputs' sizes, strides and values, numbers and strings, ``math``'s functions and torch's ``sym_*`` ones.

    Why: ``ExportedProgram.module()`` pastes each saved guard into Python source as ``torch._assert(GUARD, "Guard
    failed: GUARD")`` and ``exec``s it, with the builtins and all of ``torch`` in reach; ``memplan import x.pt2 --dim
    s77=8`` specializes a dynamic program through it, and a guard ``__import__('os').system(...) == 0`` in a
    ``.pt2`` ran. A newline, a double quote or a backslash would leave the call or its message's string literal."""
    if not isinstance(text, str):
        return f"a {type(text).__name__}, not text"
    bad = next((c for c in ("\n", "\r", '"', "\\") if c in text), None)
    if bad is not None:
        return f"it holds {bad!r}"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return f"it does not parse ({type(exc).__name__})"
    stack: list[ast.AST] = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Constant):
            if type(x.value) not in (int, float, bool, str, type(None)):
                return f"{_short(ast.unparse(x))} is no number or string"
            continue
        if isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id in _GUARD_PAIR_BUILTINS:
            if len(x.args) < 2 or x.keywords or any(isinstance(a, ast.Starred) for a in x.args):
                return f"{_short(ast.unparse(x))} calls {x.func.id} other than on two or more plain values"
            stack.extend(x.args)   # (the name itself is no guard name: only this call of it)
            continue
        if isinstance(x, ast.Name):
            if x.id not in _GUARD_NAMES:
                return f"it names {x.id!r}"
            continue
        if isinstance(x, ast.Attribute):
            owner = x.value.id if isinstance(x.value, ast.Name) else None
            fine = not x.attr.startswith("_") and (
                owner == "math" and x.attr in _GUARD_MATH or x.attr in _GUARD_TENSOR_ATTRS and owner is None or
                owner == "torch" and (
                    x.attr.startswith("sym_") or isinstance(getattr(torch, x.attr, None), torch.dtype)))
            if not fine:
                return f"it uses {_short(ast.unparse(x))}"
            stack.append(x.value)
            continue
        if isinstance(x, ast.BinOp) and isinstance(x.op, (ast.Pow, ast.LShift)):
            power = x.right.value if isinstance(x.right, ast.Constant) else None
            nested = any(isinstance(y, ast.BinOp) and isinstance(y.op, (ast.Pow, ast.LShift)) for y in ast.walk(x.left))
            if type(power) is not int or abs(power) > MAX_EXPONENT or nested:
                return f"{_short(ast.unparse(x))} raises to a power other than a constant of at most {MAX_EXPONENT}"
        if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult) and any(
                _repeats(side, sequence_inputs) for side in (x.left, x.right)):
            return (f"{_short(ast.unparse(x))} repeats a string, tuple or size list (multiplies what is not surely a "
                    f"number), or multiplies by more than {MAX_GUARD_FACTOR}")
        if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mod) and not _surely_number(x.left, sequence_inputs):
            return f"{_short(ast.unparse(x))} formats a string (the % of what is not surely a number)"
        if isinstance(x, (ast.Call, ast.Subscript)) or isinstance(x, _GUARD_NODES):
            stack.extend(ast.iter_child_nodes(x))
            continue
        return f"{_short(ast.unparse(x))} is no part of a guard"
    return None


def _check_guards_code(torch, ep: Any, path: str | None, error: type[Exception] = InputFormatError) -> None:
    """Refuse a loaded program any saved guard of which is not one torch writes (``_guard_text_refusal``), naming the
    file (``path``; None: a program given in memory) and the guard, before anything builds ``ep.module()``, which
    would run it; ``error``: the exception raised.

    Why also for a program given in memory (``from_torch(ep, (x,))``, ``path`` None): ``torch.export.load`` itself
    runs no guard, so a ``.pt2`` a caller loaded so, its guard ``__import__('os').system(...) == 0``, ran that code
    when ``from_torch`` specialized it to the example inputs (round 50)."""
    sequences = _sequence_inputs(ep)
    for text in getattr(ep, "_guards_code", None) or ():
        why = _guard_text_refusal(torch, text, sequences)
        if why is not None:
            where, who = (f"{path}: ", "memplan import") if path is not None else ("", "memplan")
            raise error(f"{where}a guard in the program, {_short(text)}, is not one torch.export writes "
                        f"({why}): {who} does not run it (torch would run it as Python code "
                        "when the program is specialized to a size)")


def _sympy_class(sympy: Any, name: str) -> bool:
    """Whether ``name`` is a sympy class a saved size may call (``_SYMPY_SIZE_CLASSES``) or one of torch's sympy
    functions (not a base class of theirs), as srepr calls them."""
    if name.startswith("_") or name in _SYMPY_BASES:
        return False
    found = getattr(sympy, name, None) if name in _SYMPY_SIZE_CLASSES else getattr(_sympy_functions(), name, None)
    return isinstance(found, type) and issubclass(found, sympy.Basic)


def _sympy_functions():
    """torch's sympy functions (``FloorDiv``, ``ModularIndexing``...), which its saved sizes call."""
    import torch.utils._sympy.functions as functions

    return functions


class _CheckedSympy:
    """Stands in for the ``sympy`` module of torch's program deserializer while ``memplan import`` loads a
    file: ``sympify`` takes only text ``sympy.srepr`` could have written (``_sympy_text_refusal``)."""

    def __init__(self, sympy: Any, path: str) -> None:
        self.sympy, self.path = sympy, path

    def sympify(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        why = _sympy_text_refusal(text)
        if why is not None:
            raise _PickledCode(f"{self.path}: a symbolic size in the program, {_short(text)}, is not an "
                               f"expression torch.export.save writes ({why}): memplan import does not evaluate it "
                               "(sympy would run it as Python code)")
        return self.sympy.sympify(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sympy, name)


def _torch_module(name: str) -> Any:
    """The torch module ``name``, or None where this torch release has none of that name."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@contextlib.contextmanager
def _no_code_from(path: str):
    """While a ``.pt2`` file is loaded: every ``torch.load`` is weights-only (tensors and plain containers,
    torch's own safe unpickler), ``pickle.loads`` of an opaque object refuses, and torch's warnings stay off
    stderr. Why: ``torch.export.load`` unpickles with ``weights_only=False`` a weight or constant marked
    ``use_pickle``, falls back to it for sample inputs the safe unpickler refuses, and unpickles opaque
    objects with ``pickle.loads``: a hostile file ran any code it liked on ``memplan import``. Its symbolic
    sizes (``expr_str``, which torch gives to ``sympy.sympify``, an ``eval``) must be what ``sympy.srepr``
    writes (``_sympy_text_refusal``): ``__import__('os').system(...)`` in one ran too. What stays trusted is
    torch's own: its weights-only unpickler, the rest of its JSON program deserializer, and TorchScript's
    unpickler for TorchBind objects (which builds registered C++ classes only, no Python callables)."""
    # (torch's module layout moves between releases: a stand-in goes where its module and name are found;
    # the weights-only switch is torch.load's documented environment variable and holds in every release)
    swaps = [(module, name, make) for module, name, make in (
        (_torch_module("torch.export.pt2_archive._package"), "pickle", lambda old: _RefusingPickle(path)),
        (_torch_module("torch._export.serde.serialize"), "sympy", lambda old: _CheckedSympy(old, path)))
        if module is not None and hasattr(module, name)]
    saved = {k: os.environ.get(k) for k in (_FORCE_WEIGHTS_ONLY, _FORCE_NO_WEIGHTS_ONLY)}
    saved_attrs = [getattr(module, name) for module, name, _ in swaps]
    os.environ[_FORCE_WEIGHTS_ONLY] = "1"
    os.environ.pop(_FORCE_NO_WEIGHTS_ONLY, None)   # (both set: torch.load refuses every file)
    for (module, name, make), old in zip(swaps, saved_attrs):
        setattr(module, name, make(old))
    try:
        with warnings_caught():   # (the weights-only unpickler's "pickle protocol 4" note...)
            yield
    finally:
        for (module, name, _), old in zip(swaps, saved_attrs):
            setattr(module, name, old)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: torch.export.load's message for a program whose inputs or outputs are a Python class torch's pytree cannot
#: rebuild (transformers' ``ModelOutput`` classes, even with transformers imported)
_UNREGISTERED = re.compile(r"Deserializing (\S+) in pytree is not registered")


def _unloadable_type(path: str, type_name: str) -> str:
    """The error for a saved program torch cannot load back because of a Python class in its signature. Why
    not "not a torch.export program": it is one (a GPT-2 saved from ``torch.export.export(model, (ids,))``),
    and the way out is in the export: plain tensors, tuples, lists and dicts load without any class."""
    return (f"{path}: a torch.export program whose inputs or outputs are a {type_name}, which torch cannot load "
            "back (its pytree type is not registered for serialization): export with plain tensor, tuple or dict "
            "inputs and outputs (transformers: kwargs={'return_dict': False}) and save again, or call "
            "memplan.from_torch on the ExportedProgram before saving it")


class _HeldErrors(logging.Handler):
    """The last exception a logger logged, as one line (``last``).

    Why: ``torch.export.load`` logs the error that made it give up on an archive (``file in archive is not
    in a subdirectory``, ``failed locating file archive_format``: a ``torch.save`` checkpoint) and raises
    "Please check the warnings above", which the importer keeps off stderr; the one line names the cause."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last: str | None = None
        self.exc: BaseException | None = None   # (the exception itself)

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        self.exc = exc
        while exc.__cause__ is not None:   # the innermost cause says what failed ("failed deserializing node
            exc = exc.__cause__            # Node(...)" wraps "failed to resolve torch.ops.lib.op")
        text = first_line(exc)
        if len(text) > 200 and ". " in text[:200]:   # its first sentence: the rest dumps the serialized node
            text = text[:text.index(". ") + 1]
        self.last = f"{type(exc).__name__}: {text}"
        if "failed to resolve" in text:
            self.last += (" (an op this process does not have, a custom op: load the program in Python after "
                          "importing the library that registers it, and import it with memplan.from_torch)")


@contextlib.contextmanager
def _held_by(logger: logging.Logger, handler: logging.Handler, level: int = logging.DEBUG):
    """For the block, ``logger``'s records (``level`` and up: all by default) go to ``handler`` alone: none
    reaches stderr. A chatty logger is held from ``WARNING`` up: at ``DEBUG`` the deserializer logs every
    node it reads, work for nothing."""
    saved = (logger.disabled, logger.propagate, logger.handlers[:], logger.level)
    logger.disabled, logger.propagate, logger.handlers[:] = False, False, [handler]
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.disabled, logger.propagate, logger.handlers[:] = saved[0], saved[1], saved[2]
        logger.setLevel(saved[3])
