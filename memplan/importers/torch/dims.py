"""Dynamic sizes: which inputs are symbolic, their ranges, and the sizes a plan is made for (``sized_inputs``).

Why: an arena plan needs every size. A dynamic program is specialized to example inputs; those must agree with the
program's structure, dtypes, ranks, fixed sizes, ranges and derived dimensions, or the plan would be for another
program. Each disagreement names the input and dimension.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ...errors import GraphError
from ...errors import short_repr as _short
from .. import first_line
from .common import _export_failure, _need_torch


def is_dynamic(ep: Any) -> bool:
    """Whether the ExportedProgram ``ep`` has a user input of symbolic size (``_has_dynamic_inputs``): what
    ``memplan import`` asks before it plans a ``.pt2``, to name the ``--dim``s that fix it."""
    return _has_dynamic_inputs(_need_torch(), ep)


def _has_dynamic_inputs(torch, ep) -> bool:
    """Whether a placeholder of ``ep`` (a user input) has a symbolic size, stride or storage offset, or is a
    symbolic int itself (``forward(x, n: int)`` exported with ``n`` dynamic: the program was refused naming a
    symbolic size, "give ... example inputs", though the example inputs had been given)."""
    for n in ep.graph.nodes:
        val = n.meta.get("val") if n.op == "placeholder" else None
        if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return True
        if isinstance(val, torch.Tensor) and any(
                not isinstance(d, int) for d in (*val.shape, *val.stride(), val.storage_offset())):
            return True
    return False


#: example values compared with an exported constant input by value (``_check_example_types``)
_PLAIN_TYPES = (int, float, bool, str, type(None), complex)


def _user_leaves(ep: Any, leaves: list) -> list[tuple[Any, Any]]:
    """``(placeholder, example leaf)`` for each user input of ``ep`` that is a placeholder, paired by the
    signature's order of user inputs (a constant one, ``f: float`` fixed at 2.0, takes its leaf and has none).

    Why: pairing the placeholders with the leaves by position shifted every input after a constant one
    (``forward(f, x)``): ``x``'s range went unchecked, its size read off another leaf."""
    from torch.export.graph_signature import InputKind

    specs = [s.arg for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    return [(nodes[arg.name], x) for arg, x in zip(specs, leaves)
            if type(arg).__name__ != "ConstantArgument" and getattr(arg, "name", None) in nodes]


def _check_ranges(torch, ep: Any, example_inputs: tuple, kwargs: dict | None) -> list[str]:
    """Refuse example inputs whose sizes lie outside a dynamic program's range constraints, naming the input,
    the dimension and the range. Why: re-exporting ``ep.module()`` checks some bounds (a size above ``max``
    failed as torch's "Guard failed: x.size()[0] <= 64") but not a ``Dim`` whose ``min`` is 2, torch's
    default, which then accepted a size of 1 and planned a program whose ops were traced for sizes >= 2
    (export may specialize on that: a broadcast, a squeeze). A binding is read off each dimension that is
    one symbol, or an expression of one (``4*s6``: ``_bind_derived``); every constraint whose symbols are all bound is
    then checked. Returns each bound symbol's value in words (``k (torch's s6) = 1 (from ...)``), for
    ``_guard_context``."""
    from torch.utils import _pytree as pytree

    leaves = pytree.tree_leaves((tuple(example_inputs), dict(kwargs or {})))
    users = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in set(ep.graph_signature.user_inputs)]
    bound: dict[Any, tuple[int, str]] = {}   # symbol -> (size, where it was read)
    derived: list[tuple[Any, int, str]] = []   # (size expression of one symbol, size, where)
    for n, x in _user_leaves(ep, leaves):
        val = n.meta.get("val")
        expr = getattr(getattr(val, "node", None), "expr", None)
        if isinstance(val, torch.SymInt) and isinstance(x, int) and expr is not None and expr.is_Symbol:
            bound.setdefault(expr, (int(x), f"input '{n.name}'"))   # (a symbolic int: its range and guards)
            continue
        if not (isinstance(val, torch.Tensor) and isinstance(x, torch.Tensor)) or val.dim() != x.dim():
            continue   # (the export that specializes the program names a wrong structure or rank)
        for k, (d, size) in enumerate(zip(val.shape, x.shape)):
            expr = getattr(getattr(d, "node", None), "expr", None)
            if expr is not None and expr.is_Symbol:
                bound.setdefault(expr, (int(size), f"input '{n.name}' dimension {k}"))
            elif expr is not None and len(expr.free_symbols) == 1:
                derived.append((expr, int(size), f"input '{n.name}' dimension {k}"))
    names = _dim_names(torch, users)[0]
    for expr, size, where in derived:
        _bind_derived(bound, expr, size, where, names)
    dims = {expr: where for expr, _, where in derived}   # (a derived dimension out of range: named as itself)
    for expr, vr in (getattr(ep, "range_constraints", None) or {}).items():
        if not expr.free_symbols or not all(s in bound for s in expr.free_symbols):
            continue
        value = expr.subs({s: bound[s][0] for s in expr.free_symbols})
        if bool(value < vr.lower) or bool(value > vr.upper):
            where = bound[expr][1] if expr in bound else dims[expr] if expr in dims else \
                f"{expr} (from {bound[next(iter(expr.free_symbols))][1]})"
            what = _symbol_named(str(expr), names) if expr.is_Symbol else str(expr)
            raise GraphError(f"{where} is {value}, outside the exported program's range "
                             f"[{_bound(vr.lower)}, {_bound(vr.upper)}] "
                             f"for its dynamic dimension {what}: give an example size inside it (or export again "
                             "with that Dim's min/max)")
    return [f"{_symbol_named(str(sym), names)} = {value} ({where.removeprefix(_symbol_named(str(sym), names) + ' (').removesuffix(')')})"
            if not where.startswith("input ") else f"{_symbol_named(str(sym), names)} = {value} ({where})"
            for sym, (value, where) in sorted(bound.items(), key=lambda kv: str(kv[0]))]


def _check_example_types(torch, ep: Any, example_inputs: tuple, kwargs: dict | None) -> None:
    """Refuse example inputs that are not the dynamic program's inputs with other sizes: another structure (count,
    keywords, nesting), a non-tensor for a tensor input, a tensor of another dtype or rank, or a non-integer for a
    symbolic int input; a GraphError naming the input, what it takes and what was given.

    Why: example inputs only size a dynamic program's dimensions, but the specializing export traced whatever it
    was given: ``x`` exported as a float32 matrix and given a float64 one (or a rank-3 tensor) was planned as
    another program, in float64 (or rank 3), silently; a rank-1 tensor failed as torch's "tuple index out of
    range", and a wrong structure as torch's "Trying to flatten user inputs with exported input tree spec:"."""
    from torch.utils import _pytree as pytree

    expected = getattr(getattr(ep, "call_spec", None), "in_spec", None)
    leaves, spec = pytree.tree_flatten((tuple(example_inputs), dict(kwargs or {})))
    if expected is not None and spec != expected:
        given, takes = _structure(spec), _structure(expected)
        if given == takes:   # (the counts and keywords agree: a nested structure differs)
            where = _nested_difference(spec, expected)
            if where:
                raise GraphError(f"example {where}: give one example per input, structured as when it was exported")
            given, takes = f"{given} ({' '.join(str(spec).split())})", f"{takes} ({' '.join(str(expected).split())})"
        raise GraphError(f"the example inputs are {given}, but the exported program takes {takes}: give one "
                         "example per input, structured as when it was exported")
    from torch.export.graph_signature import InputKind

    # (every user input in order, a constant one too: ``forward(x, n: int, f: float)`` exported with ``f``
    # specialized lists ``x, n, 2.0``; matching placeholders by name alone dropped the whole check, and an
    # ``n`` given as a tensor was traced as another program, its ``n + 1`` a planned tensor)
    specs = [s.arg for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    if len(specs) != len(leaves):
        return   # (a structure torch flattens otherwise: the export names any mismatch)
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    for arg, x in zip(specs, leaves):
        n = nodes.get(getattr(arg, "name", None))
        if n is None:
            continue
        val = n.meta.get("val")
        if type(arg).__name__ == "ConstantArgument":   # (an input export fixed at its example's value)
            # (2 for 2.0 passes: the program holds its own constant; True for 1 does not, nor a tensor for a number)
            if isinstance(x, bool) != isinstance(arg.value, bool) or type(x) not in _PLAIN_TYPES or x != arg.value:
                raise GraphError(f"example input '{n.name}' is {_short(x)} ({type(x).__name__}), but the exported "
                                 f"program fixed it at {arg.value!r} (only its dynamic dimensions and symbolic "
                                 "ints take other values: export again with it)")
            continue
        if isinstance(val, torch.Tensor):
            want = _tensor_words(val)
            if not isinstance(x, torch.Tensor):
                raise GraphError(f"example input '{n.name}' is {_short(x)} ({type(x).__name__}), but the exported "
                                 f"program takes {want} there")
            if x.dtype != val.dtype or x.dim() != val.dim():
                raise GraphError(f"example input '{n.name}' is {_tensor_words(x)}, but the exported program takes "
                                 f"{want}: example inputs only give a dynamic program its sizes (export again for "
                                 "another dtype or rank)")
            fixed = next((k for k, (d, s) in enumerate(zip(val.shape, x.shape))
                          if _fixed_size(d) is not None and _fixed_size(d) != s), None)
            if fixed is not None:
                raise GraphError(f"example input '{n.name}' dimension {fixed} is {x.shape[fixed]}, but the exported "
                                 f"program fixes it at {_fixed_size(val.shape[fixed])} (only its dynamic dimensions "
                                 "take other sizes)")
        elif isinstance(val, torch.SymInt) and (not isinstance(x, int) or isinstance(x, bool)):
            raise GraphError(f"example input '{n.name}' is {_short(x)} ({type(x).__name__}), but the exported program "
                             "takes an int there (a symbolic int input)")


def _fixed_size(d: Any) -> int | None:
    """A recorded input dimension's size where the program fixes it, else None: an int, or a SymInt whose expression
    is a number (a ``Dim.AUTO`` dimension export specialized: ``x`` of ``[s77, 3]`` after ``x.reshape(-1, 3)``).

    Why: only the int was taken as fixed, so an example of 4 columns for that ``Dim.AUTO`` dimension was exported
    again and refused by whatever guard torch derived ("Guard failed: x.size()[1] * x.size()[0] % 3 == 0"), naming
    neither the dimension nor the size the program takes (round 75)."""
    if isinstance(d, int):
        return d
    expr = getattr(getattr(d, "node", None), "expr", None)
    return int(expr) if expr is not None and getattr(expr, "is_number", False) and getattr(expr, "is_integer", False) \
        else None


def _tensor_words(t: Any) -> str:
    """``a float32 tensor of rank 2`` (``an int64 ...``), for ``_check_example_types``."""
    dtype = str(t.dtype).removeprefix("torch.")
    return f"{'an' if dtype[0] in 'aeiou' else 'a'} {dtype} tensor of rank {t.dim()}"


def _structure(spec: Any) -> str:
    """A call's ``(args, kwargs)`` tree spec in words: ``2 positional inputs and keyword inputs y, z``."""
    try:
        args, kw = spec.child(0), spec.child(1)
        words = f"{args.num_children} positional input{'s' * (args.num_children != 1)}"
        keys = list(kw.context or [])
    except (AttributeError, IndexError, TypeError, ValueError):
        return str(spec)
    if keys:
        words += f" and keyword input{'s' * (len(keys) != 1)} {', '.join(map(str, keys))}"
    return words


def _nested_difference(given: Any, takes: Any) -> str:
    """Where two call tree specs (``(args, kwargs)``) whose top levels agree first differ, in words (``input 'd'['b'] is
    a tensor or other single value, where the exported program takes a list of 1``), else "" (a spec this cannot walk).
    Why: the refusal printed both specs whole (``TreeSpec(tuple, None, [TreeSpec(tuple, None, [TreeSpec(dict, ...``),
    two long lines to compare by eye for one wrong key."""
    def words(spec: Any) -> str:
        if spec.is_leaf():
            return "a tensor or other single value"
        kind = spec.type.__name__ if isinstance(spec.type, type) else str(spec.type)
        if spec.type is dict or (isinstance(spec.context, list) and spec.type is not list and spec.type is not tuple):
            return f"a {kind} of keys {', '.join(map(repr, spec.context or []))}"
        return f"a {kind} of {spec.num_children}"

    def walk(a: Any, b: Any, where: str) -> str:
        if a == b:
            return ""
        if a.is_leaf() or b.is_leaf() or a.type is not b.type or a.num_children != b.num_children \
                or a.context != b.context:
            return f"{where} is {words(a)}, where the exported program takes {words(b)}"
        keys = b.context if isinstance(b.context, list) and len(b.context) == b.num_children else range(b.num_children)
        return next((d for i, key in enumerate(keys) if (d := walk(a.child(i), b.child(i), f"{where}[{key!r}]"))), "")

    try:
        for i, key in enumerate(takes.child(1).context or []):   # (kwargs, by name: the top levels agree)
            d = walk(given.child(1).child(i), takes.child(1).child(i), f"keyword input {key!r}")
            if d:
                return d
        return next((d for i in range(takes.child(0).num_children)
                     if (d := walk(given.child(0).child(i), takes.child(0).child(i), f"positional input {i}"))), "")
    except (AttributeError, IndexError, TypeError, ValueError):
        return ""


def _guard_context(exc: BaseException, given: list[str]) -> str:
    """What the example inputs made of the program's dynamic dimensions (``given``, from ``_check_ranges``), to follow
    torch's "Guard failed: ..." where the specializing export failed on one of its guards; "" otherwise.

    Why: a guard's text names a Python expression of the inputs' sizes (``(y.size()[0] // 4) != 1``), not the dynamic
    dimension it refuses nor its value: ``y`` exported with ``{0: 4 * Dim("k")}`` and given 4 (``k`` = 1, which torch
    traced as at least 2) was refused so, with no word of ``k``."""
    if not given or not first_line(exc).startswith("Guard failed"):
        return ""
    small = "; torch traces a dynamic size as at least 2, so 0 or 1 may fail its guards" \
        if any(g.split(" = ")[1].split(" ")[0] in ("0", "1") for g in given) else ""
    return f" (the example inputs make {', '.join(given)}{small})"


def _bind_derived(bound: dict, expr: Any, size: int, where: str, names: dict[str, str]) -> None:
    """Bind the one symbol of input dimension ``where``'s size expression ``expr`` (``4*s6``) to the value that
    makes it ``size``, in ``bound`` (``_check_ranges``); a GraphError naming the dimension where no integer does or
    where an earlier dimension bound the symbol to another value.

    Why: only dimensions that are one symbol were read, so ``x`` exported with ``{0: 4 * Dim("k")}`` and given a
    size of 4 (``k`` = 1, below torch's lower bound of 2) or 13 (no ``k``) bound nothing, and was refused only by
    torch's guard text ("Guard failed: x.size()[0] // 4 != 1"), which named neither the ``Dim`` nor its value."""
    sym = next(iter(expr.free_symbols))
    what = _symbol_named(str(sym), names)
    value = _integer_root(expr, size)
    if value is None:
        raise GraphError(f"{where} is {size}, which its size {expr} is for no integer {what}: give an example "
                         "size it takes")
    if sym in bound and bound[sym][0] != value:
        raise GraphError(f"{where} is {size} = {expr} with {what} = {value}, but {bound[sym][1]} makes it "
                         f"{bound[sym][0]}: give example sizes of one {what}")
    bound.setdefault(sym, (value, f"{what} (from {where} = {expr} = {size})"))


def _symbol_named(symbol: str, names: dict[str, str]) -> str:
    """torch's ``symbol`` as a message names it: by the user's name for it where there is one (``k (torch's s6)``)."""
    named = _name_of(symbol, names)
    return f"{named} (torch's {symbol})" if named not in (None, symbol) else symbol


def _integer_root(expr: Any, value: int) -> int | None:
    """The one integer the one symbol of ``expr`` takes for ``expr`` to be ``value``, else None. Solved for a plain
    symbol: torch's symbols are declared positive, so a size of 0 (``4*s6`` = 0) had no solution though 0 is one,
    and was refused as "no integer" where the range check says why (below the lower bound)."""
    import sympy

    sym = next(iter(expr.free_symbols))
    plain = sympy.Symbol("_memplan_root")
    found = [r for r in sympy.solve(sympy.Eq(expr.subs(sym, plain), value), plain) if r.is_integer]
    return int(found[0]) if len(found) == 1 else None


def _in_spec_order(ep: Any, kwargs: dict | None) -> dict:
    """``kwargs`` in the order the program's placeholders take them (its ``in_spec``). Why: read in the caller's
    order, ``kwargs={"z": .., "y": ..}`` for ``forward(x, *, y, z)`` bound ``y``'s placeholder to ``z``'s sizes
    (``_check_ranges`` refused a valid size as outside ``y``'s range), and ``ep.module()``'s guards did the same
    (the export again failed "Guard failed: y.size()[1] >= 5"). Left as given where the keys differ (the export
    that follows names the mismatch)."""
    given = dict(kwargs or {})
    try:
        keys = list(ep.call_spec.in_spec.child(1).context)
    except (AttributeError, IndexError, TypeError, ValueError):
        return given
    return {k: given[k] for k in keys} if set(keys) == set(given) else given


def _bound(b: Any) -> str:
    """A range bound as a number, or ``inf`` (torch's ``int_oo``, which ``int()`` cannot take though it says it is
    finite)."""
    text = str(b)
    return text.replace("int_oo", "inf").replace("oo", "inf") if "oo" in text else str(int(b))


def sized_inputs(ep: Any, batch: int | None, dims: dict[str, int]) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of zero tensors sized as a dynamic ``ExportedProgram``'s user inputs with its symbolic
    dimensions fixed: ``batch`` for the leading one of every input whose first dimension is symbolic,
    ``dims`` by name (``_dim_names``: torch's symbol ``s31``, the input dimension ``x.1``, or the ``Dim``'s own
    name where the program still knows it). Why: ``memplan import x.pt2`` has no example inputs to specialize a
    dynamic program with (``from_torch(ep, inputs)`` does), so ``--batch`` / ``--dim`` make them, as they fix
    an ONNX model's symbolic dimensions. Values do not matter: the export that specializes the program runs
    on fake tensors, and the dynamic export already ran without data-dependent branches."""
    torch = _need_torch()
    from torch.utils import _pytree as pytree

    if not _has_dynamic_inputs(torch, ep):
        raise GraphError("--batch/--dim fix symbolic dimensions; this program has none (it was exported with fixed "
                         "sizes)")
    users = [n for n in ep.graph.nodes if n.op == "placeholder"
             and n.name in set(ep.graph_signature.user_inputs)]
    names, sourced = _dim_names(torch, users)
    derived = _derived_dims(torch, users, names)
    known = _dims_by_symbol(dims, names, sourced, derived, _fixed_dims(torch, users))
    if batch is not None:   # the leading symbol of each input names the batch: bind it first
        for n in users:
            val = n.meta.get("val")
            if isinstance(val, torch.Tensor) and val.dim() and not isinstance(val.shape[0], int):
                expr = val.shape[0].node.expr
                if expr.is_Symbol:
                    if known.setdefault(str(expr), (batch, "--batch"))[0] != batch:
                        given = _option(*known[str(expr)][::-1])
                        raise GraphError(f"--batch {batch} and {given} disagree: "
                                         f"{expr} is input '{n.name}'s leading dimension")
    _check_given_ranges(ep, known, names)

    def size(d: Any, where: str, what: str = "symbolic size") -> int:
        if isinstance(d, int):
            return d
        expr = d.node.expr
        missing = sorted(str(s) for s in expr.free_symbols if str(s) not in known)
        if missing:
            name = _name_of(missing[0], names)
            if name is None:
                raise GraphError(f"input '{where}': {what} {d}: torch's symbol {missing[0]} has no name a --dim "
                                 f"can give (a torch.export.Dim named {missing[0]!r} is another dimension, "
                                 f"{names[missing[0]]}): rename that Dim, or name this one")
            spelled = _spellings(missing[0], names, derived)
            raise GraphError(f"input '{where}': {what} {d} (fix it with "
                             f"{' or '.join(f'--dim {k}=N' for k in spelled)}"
                             f"{_batch_hint(torch, users, missing[0])})")
        value = int(expr.subs({s: known[str(s)][0] for s in expr.free_symbols}))
        if value < 0:   # (torch.zeros raised its own RuntimeError: a raw traceback out of `memplan import`)
            given = ", ".join(f"{s} = {known[str(s)][0]} ({known[str(s)][1]})"
                              for s in sorted(expr.free_symbols, key=str))
            raise GraphError(f"input '{where}': {what} {d} is {value} with {given}: a size is never negative")
        return value

    from torch.export.graph_signature import InputKind

    # (every user input in order, a constant one by its value: ``forward(x, n: int, f: float)`` exported with
    # ``f`` fixed at 2.0 has no placeholder ``f`` among ``users``, and two leaves for a spec of three were
    # torch's ValueError "treespec.unflatten(leaves)", a raw traceback out of ``memplan import``)
    by_name = {n.name: n for n in users}
    leaves = []
    for arg in (s.arg for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT):
        n = by_name.get(getattr(arg, "name", None))
        if n is None or type(arg).__name__ == "ConstantArgument":
            leaves.append(getattr(arg, "value", None))
            continue
        val = n.meta.get("val")
        if isinstance(val, torch.Tensor):
            t = _unread_tensor(torch, n.name, [size(d, n.name) for d in val.shape], val.dtype, known)
            # (the options it was made for, which the importer's refusals name: ``MADE_BY``)
            setattr(t, MADE_BY, ", ".join(_option(k, v) for v, k in known.values()) or "the sizes given")
            leaves.append(t)
        elif isinstance(val, torch.SymInt):
            leaves.append(size(val, n.name, "symbolic int"))
        else:
            leaves.append(val)
    try:
        args, kwargs = pytree.tree_unflatten(leaves, ep.call_spec.in_spec)
    except Exception as exc:   # (inputs this program's signature and its input spec disagree on: an edited program)
        raise GraphError(f"the program's {len(leaves)} user inputs do not fit its input structure "
                         f"({_export_failure(exc)}): a corrupted or edited program, export and save it again") from None
    return tuple(args), dict(kwargs)


#: the attribute ``sized_inputs`` sets on each tensor it makes: the ``--batch`` / ``--dim`` options it was made for.
#: Why: a refusal about such an input's storage (an ``as_strided`` reading past it) named "the example input the
#: program was exported with", and advised exporting again with another one, where ``memplan import`` made the input
#: from the options (dense, at offset 0) and the user had given no example: the options are what to change
MADE_BY = "_memplan_made_by"


def _batch_hint(torch, users: list, symbol: str) -> str:
    """", or with --batch N ..." where ``symbol`` is the leading dimension of one of the user inputs ``users`` (what
    ``--batch`` binds), else "". Why: the hint was given for every open symbol, so a program exported with
    ``{0: 2 * Dim("k")}`` (its ``x.0`` is ``2*s6``, which ``--batch`` does not bind) said "or with --batch N", and
    ``--batch 4`` got the same line back; ``--dim x.0=N`` (which does bind it) went unsaid."""
    for n in users:
        val = n.meta.get("val")
        if isinstance(val, torch.Tensor) and val.dim() and str(getattr(getattr(val.shape[0], "node", None), "expr",
                                                                       val.shape[0])) == symbol:
            return ", or with --batch N where it is an input's leading dimension"
    return ""


def _unread_tensor(torch, name: str, shape: list[int], dtype: Any, known: dict[str, tuple[int, str]]) -> Any:
    """An uninitialized tensor of ``shape`` for input ``name`` of ``sized_inputs``; a GraphError naming the input, its
    size and the options given (``known``) where it cannot be made.

    Why ``empty``, not ``zeros``: the specializing export reads no value (it traces on fake tensors), and zeros wrote
    every byte: ``--dim x.0=400000000000`` on a program with no upper bound asked the machine for 4.8 TB, and failed
    with torch's raw "DefaultCPUAllocator: can't allocate memory" traceback (a size past int64, "Storage size
    calculation overflowed"); a size the machine could just hold was written through, page by page."""
    try:
        return torch.empty(shape, dtype=dtype)
    except (RuntimeError, MemoryError, OverflowError) as exc:
        given = ", ".join(_option(k, v) for v, k in known.values()) or "the sizes given"
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        why = "past int64" if "overflow" in first_line(exc).lower() else "more than this machine can allocate"
        raise GraphError(f"input '{name}' would be {list(shape)} ({nbytes} bytes) with {given}: {why} for the "
                         "example input the program is exported again with (give smaller sizes)") from None


def _option(name: str, value: int) -> str:
    """The option that gave a symbol its value, as the user wrote it: ``--batch 8``, ``--dim x.0=8``, or for an input
    dimension that is an expression of the symbol (``_dims_by_symbol`` records it as ``y.0=1 (s77``), the option
    and the symbol's value it made: ``--dim y.0=1 (s77=0)``."""
    if name == "--batch":
        return f"--batch {value}"
    return f"--dim {name}={value}{')' * ('(' in name)}"


def _check_given_ranges(ep: Any, known: dict[str, tuple[int, str]], names: dict[str, str]) -> None:
    """Refuse a ``--dim`` / ``--batch`` value (``known``: ``{symbol: (value, name given)}``, ``_dims_by_symbol``) that
    puts one of the program's dynamic dimensions outside its range constraints, naming the option given.

    Why: the range was checked only once the zero inputs were made (``_check_ranges``), which names an input's
    dimension: ``--dim y.0=1`` where ``y.0`` is ``b + 1`` (so ``b`` = 0, below its range [2, 64]) was refused as
    "input 'x' dimension 0 is 0", an input and a dimension the user had not written."""
    for expr, vr in (getattr(ep, "range_constraints", None) or {}).items():
        syms = sorted(expr.free_symbols, key=str)
        if not syms or not all(str(s) in known for s in syms):
            continue
        value = expr.subs({s: known[str(s)][0] for s in syms})
        if bool(value < vr.lower) or bool(value > vr.upper):
            given = " and ".join(_option(known[str(s)][1], known[str(s)][0]) for s in syms)
            what = _symbol_named(str(expr), names) if expr.is_Symbol else str(expr)
            raise GraphError(f"{given}: makes the dynamic dimension {what} {value}, outside the exported program's "
                             f"range [{_bound(vr.lower)}, {_bound(vr.upper)}] for it: give a value inside it (or "
                             "export again with that Dim's min/max)")


def _dim_names(torch, users: list) -> tuple[dict[str, str], bool]:
    """``(names, sourced)``: every name a ``--dim`` may give a symbolic dimension of the user inputs ``users``, and
    the symbol it names; and whether the program still knows where its symbols came from (a program in memory:
    ``sourced``; one loaded from a ``.pt2``: not).

    The names, the user's first: the ``torch.export.Dim``'s own name (``batch``) where the program still knows
    it; a symbolic int input's name (``forward(x, n: int)`` exported with ``n`` dynamic: ``n``); ``INPUT.K``,
    dimension ``K`` of user input ``INPUT`` where that dimension is one symbol (``x.0``); and torch's symbol
    itself (``s77``), unless a name of the user's above spells it for another symbol (a ``Dim("s17")`` on the
    symbol ``s77`` while torch's ``s17`` is another dimension: ``--dim s17=N`` is the ``Dim``, as written).

    Why: the symbols are all a saved program had, and torch numbers them by a hash of where they were made
    (``s77``, ``s17``): a user had to import once to learn them, and they change with the export. torch's
    ``export.save`` keeps no ``Dim`` names (its archive holds none: only symbols and their ranges), so a loaded
    program is named by its inputs' dimensions, which the user wrote and which do not change; a program still
    in memory (``sized_inputs`` from Python) also by its ``Dim`` names, read off its shape environment. A
    symbolic int input was nameable by its symbol alone (``--dim n=2``: "no such symbolic dimension")."""
    symbols: dict[str, str] = {}   # torch's symbol names
    inputs: dict[str, str] = {}    # INPUT.K and symbolic int inputs
    env = None
    for n in users:
        val = n.meta.get("val")
        for k, d in enumerate(_sizes_of(torch, val)):
            expr = getattr(getattr(d, "node", None), "expr", None)
            if expr is None:
                continue
            env = env or getattr(d.node, "shape_env", None)
            for s in expr.free_symbols:
                symbols.setdefault(str(s), str(s))
            if expr.is_Symbol:
                inputs.setdefault(f"{n.name}.{k}" if isinstance(val, torch.Tensor) else n.name, str(expr))
    debug = getattr(env, "source_name_to_debug_name", None) or {}
    replaced = getattr(env, "replacements", None) or {}
    sources = getattr(env, "var_to_sources", None) or {}
    names: dict[str, str] = {}
    for sym, where in sources.items():
        now = replaced.get(sym, sym)   # (a Dim's symbol torch found equal to another: `k` of x and of y)
        for src in where:
            try:
                text = src.name() if callable(src.name) else src.name   # (a property in torch 2.14)
            except Exception:   # (a source torch cannot name: no Dim name from it)
                continue
            # (the root ``k`` of a Dim used only derived, ``{0: 2 * Dim("k")}``, has no input dimension of its own: its
            # source is the Dim's name itself, a ConstantSource, which ``source_name_to_debug_name`` does not hold)
            dim_name = debug.get(text) or (text if type(src).__name__ == "ConstantSource" else None)
            if isinstance(dim_name, str) and dim_name.isidentifier() and str(now) in symbols:
                names.setdefault(dim_name, str(now))
    for table in (inputs, symbols):
        for name, sym in table.items():
            names.setdefault(name, sym)
    return names, bool(sources)


def _derived_dims(torch, users: list, names: dict[str, str]) -> dict[str, tuple[str, Any]]:
    """``INPUT.K`` -> ``(symbol, size expression)`` for each dimension of the user inputs ``users`` whose size is an
    expression of one symbol other than the symbol itself (``x`` exported with ``{0: 2 * Dim("n")}``: ``x.0`` is
    ``2*s17``), unless ``names`` already has that name.

    Why: such a dimension had no name a ``--dim`` could give; a loaded program (which keeps no ``Dim`` names) was
    refused with "name a dimension by its input, INPUT.K", which named none there: ``--dim s17=N``, torch's hashed
    symbol, was the only way in. Its size now gives the symbol's value (``_solved``)."""
    out: dict[str, tuple[str, Any]] = {}
    for n in users:
        val = n.meta.get("val")
        if not isinstance(val, torch.Tensor):
            continue
        for k, d in enumerate(val.shape):
            expr = getattr(getattr(d, "node", None), "expr", None)
            if expr is not None and not expr.is_Symbol and len(expr.free_symbols) == 1:
                name = f"{n.name}.{k}"
                if name not in names:
                    out.setdefault(name, (str(next(iter(expr.free_symbols))), expr))
    return out


def _solved(name: str, value: int, symbol: str, expr: Any, names: dict[str, str] | None = None) -> int:
    """The value of ``symbol`` for which the size ``expr`` (of input dimension ``name``) is ``value``; a GraphError
    naming the dimension and its expression where no integer gives it (``--dim x.0=13`` for ``4*s6``), and the
    ``--dim`` that sets the symbol by the name the user gave it where the program knows one (the ``Dim``'s)."""
    option = _name_of(symbol, names or {}) or symbol
    found = _integer_root(expr, value)
    if found is not None and found < 0:   # (a negative symbol made another input's dimension negative: a raw error)
        raise GraphError(f"--dim {name}={value}: input dimension {name} is {expr}, which makes {symbol} {found}: "
                         f"a size is never negative (give a larger {name})")
    if found is None:
        raise GraphError(f"--dim {name}={value}: input dimension {name} is {expr}, which no integer {symbol} makes "
                         f"{value} (give --dim {option}=N, or a size it takes)")
    return found


def _spellings(symbol: str, names: dict[str, str], derived: dict[str, tuple[str, Any]]) -> list[str]:
    """Every name a ``--dim`` gives ``symbol`` by: torch's symbol itself where it still names it, then the user's names
    (the ``Dim``'s, ``INPUT.K``), then the input dimensions that are an expression of it (``x.0`` = ``2*s6``).

    Why all of them: the refusal listed torch's symbol and one other name, so ``x`` exported with ``{0: 2 * Dim("k")}``
    and ``y`` with ``{0: Dim("k")}`` named ``k`` and ``x.0`` but not ``y.0``, and a program whose ``Dim`` is only used
    derived did not name the ``Dim`` at all."""
    own = [symbol] if names.get(symbol) == symbol else []
    return own + [k for k, s in names.items() if s == symbol and k != symbol] + \
        [k for k, (s, _) in derived.items() if s == symbol]


def _name_of(symbol: str, names: dict[str, str]) -> str | None:
    """The name a ``--dim`` gives ``symbol`` by (``_dim_names``), the user's first (a ``Dim``'s, then an input's),
    torch's own symbol last; None where every name it had spells another symbol (a ``Dim`` named like it)."""
    spelled = [k for k, s in names.items() if s == symbol]
    return next((k for k in spelled if k != symbol), symbol if symbol in spelled else None)


def _fixed_dims(torch, users: list) -> dict[str, int]:
    """``INPUT.K`` -> size, for each dimension of the user inputs ``users`` the program fixed (a plain number)."""
    return {f"{n.name}.{k}": d for n in users if isinstance(n.meta.get("val"), torch.Tensor)
            for k, d in enumerate(n.meta["val"].shape) if isinstance(d, int)}


def _dims_by_symbol(dims: dict[str, int], names: dict[str, str], sourced: bool = True,
                    derived: dict[str, tuple[str, Any]] | None = None,
                    fixed: dict[str, int] | None = None) -> dict[str, tuple[int, str]]:
    """``dims`` (by any of the ``names`` of ``_dim_names``) as ``{symbol: (value, the name given)}``; a name the
    program has not is a GraphError listing those it has, and so are two names of one symbol given two values
    (``--dim x.0=4 --dim s77=5``: which one a plan took would be the order of the options). ``sourced``: whether
    the program knows where its symbols came from (``_dim_names``): only where it does not (a program loaded
    from a ``.pt2``) does the error say that a saved program keeps no ``Dim`` names; one in memory exported
    without named ``Dim``s (``Dim.AUTO``, ``Dim.DYNAMIC``) was told so too, which was not why."""
    known: dict[str, tuple[int, str]] = {}
    derived = derived or {}
    for name, value in dims.items():
        sym = names.get(name)
        if sym is None and name in derived:   # (an input dimension that is an expression of one symbol: x.0 = 2*s17)
            sym = derived[name][0]
            value, name = _solved(name, value, *derived[name], names), f"{name}={value} ({sym}"
        if sym is None and name in (fixed or {}):   # (``x.1`` of a program that fixed it: "no such" named no cause)
            listed = sorted(k for k in [*names, *derived] if "." in k)
            raise GraphError(f"--dim {name}={value}: dimension {name.rpartition('.')[2]} of input "
                             f"'{name.rpartition('.')[0]}' is fixed at {fixed[name]} in the exported program, not "
                             f"symbolic (its symbolic input dimensions: {', '.join(listed) or 'none'})")
        if sym is None and not name.replace(".", "").isidentifier():
            raise GraphError(_expression_named(name, value, names, derived))
        if sym is None:
            listed = sorted([*names, *derived], key=lambda k: (k != names.get(k), k))   # (torch's symbols first)
            lost = "" if sourced else \
                "; a saved program keeps no torch.export.Dim names: name a dimension by its input, INPUT.K"
            raise GraphError(f"--dim {name}: the program has no such symbolic dimension "
                             f"(it has: {', '.join(listed) or 'none'}{lost})")
        if sym in known and known[sym][0] != value:
            raise GraphError(f"--dim {known[sym][1]}={known[sym][0]}{')' * ('(' in known[sym][1])} and --dim "
                             f"{name}={value}{')' * ('(' in name)} disagree: both name the symbolic dimension {sym}")
        known.setdefault(sym, (value, name))
    return known


def _expression_named(name: str, value: int, names: dict[str, str], derived: dict[str, tuple[str, Any]]) -> str:
    """Why ``--dim NAME=VALUE`` with an expression for a name (``2*s6``, ``2*k``: the size a refusal shows for ``x``
    exported with ``{0: 2 * Dim("k")}``) names no dimension, and the option that does.

    Why: a ``--dim`` sets one free symbol, and the refusal showed the input's size ``2*s6``; given back as a name it
    was "no such symbolic dimension" with a list that did not say which entry it was. Where the expression (its
    names read as the symbols they give: ``2*k`` is ``2*s6``) is an input dimension's size, that input dimension is
    named, with the value that gives it."""
    spelled = re.sub(r"[A-Za-z_][A-Za-z_0-9]*", lambda m: names.get(m.group(0), m.group(0)), name).replace(" ", "")
    for dim, (symbol, expr) in derived.items():
        if str(expr).replace(" ", "") == spelled:
            return (f"--dim {name}={value}: {name} is not a free symbol but the size of input dimension {dim} "
                    f"({expr}, an expression of {_symbol_named(symbol, names)}): give --dim {dim}={value}")
    free = sorted({_symbol_named(s, names) for s in names.values()})
    return (f"--dim {name}={value}: a --dim names one free symbol of the program, not an expression (its free "
            f"symbols: {', '.join(free) or 'none'}; or name an input dimension, INPUT.K)")


def _sizes_of(torch, val: Any) -> list:
    return list(val.shape) if isinstance(val, torch.Tensor) else [val] if isinstance(val, torch.SymInt) else []
