"""Human-readable summaries of plans (``memplan show``), and ``printable``: text from the input made safe
for a terminal or a font (the CLI's output and error lines, the memory map's labels)."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from .errors import MemplanError, OptionError, PlanFormatError, as_int
from .errors import short_repr as _short
from .planfile import Plan, check_plan_fields, json_trouble, refuse_self_contradiction


def check_plan_arg(plan: object, what: str) -> Plan:
    """``plan`` if it is a well-formed ``Plan`` (``check_plan_fields``), else ``PlanFormatError`` naming ``what``
    (the function): a graph, a dict or None handed to ``describe`` was an AttributeError from deep inside."""
    if not isinstance(plan, Plan):
        raise PlanFormatError(f"{what} needs a memplan Plan (memplan.load_plan or memplan.plan_from_dict reads "
                              f"one), not {type(plan).__name__}")
    check_plan_fields(plan)
    return plan


def human(n: int) -> str:
    """``n`` bytes in the largest binary unit under 1024 of it (``human(3072) == '3.00 KiB'``)."""
    if not (isinstance(n, float) and math.isfinite(n)):
        if as_int(n) is None:   # None, a string: Python's "bad operand type for abs()"
            raise MemplanError(f"human: n must be a number of bytes, not {type(n).__name__} {_short(n)}")
        n = as_int(n)
        if abs(n) >= 1 << 1000:   # no float holds it: Python's OverflowError at the first division
            raise MemplanError(f"human: n is too large to show in TiB ({_short(n)})")
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def printable(text) -> str:
    """``text`` with every character that is not printable escaped as ``ascii`` writes it (``\\x1b``,
    ``\\ud800``): ids and names come from the input, where JSON allows an ANSI escape, a control character
    (no glyph, and a terminal obeys it) or a lone surrogate (a FreeType ``TypeError``, and no encoding writes
    it). Printable text, non-ASCII letters and CJK included, is returned unchanged, and so are spaces
    (``str.isprintable`` refuses every space but ASCII's: U+3000, U+00A0)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or unicodedata.category(c) == "Zs" else ascii(c)[1:-1] for c in text)


def display_width(text: str) -> int:
    """The terminal cells ``text`` (``printable`` already) takes: two for a wide or fullwidth character (CJK, most
    emoji), none for a combining mark, one for the rest. Why: ``show``'s table padded ids by their count of
    characters, so a row whose id held CJK or emoji took more cells than its neighbours and pushed its offset and
    size out from under their headings."""
    if text.isascii():
        return len(text)
    return sum(_cell_width(c) for c in text)


def _cell_width(c: str) -> int:
    """The cells one character takes on a terminal (``display_width``)."""
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def _ljust(text: str, cells: int) -> str:
    """``text`` padded with spaces on the right to ``cells`` terminal cells (``display_width``)."""
    return text + " " * max(0, cells - display_width(text))


def describe(plan: Plan, top: int = 10, *, encoding: str | None = None, source: str = "describe") -> str:
    """The summary ``memplan show`` prints, line by line ``printable`` (ids and names from the plan file),
    with the ``top`` largest arena tensors (an integer >= 0: None, a float or a string was a TypeError from a
    comparison deep inside, and a negative count listed nothing, silently). ``encoding``: that of the stream it is
    for; what it cannot encode is escaped here (``\u5f20`` on an ASCII or Latin-1 stdout), before the table's
    columns are measured (escaped later, by the printer, an id of CJK grew and its row no longer lined up).
    A plan that contradicts itself (``planfile.check_plan_alone``: a node on stream 3 of 3, a tensor past the arena)
    is a ``PlanFormatError`` naming ``source`` and the fault, as ``memplan show`` refuses it: summarised here (only
    the CLI checked), the same plan read as sound from Python (round 54 review)."""
    check_plan_arg(plan, "describe")
    refuse_self_contradiction(plan, source)
    _check_solver_block(plan, source)
    shown = _shown_in(encoding)
    count = as_int(top)
    if count is None or count < 0:
        raise MemplanError(f"describe: top must be an integer >= 0 (how many of the largest tensors to list), "
                           f"not {type(top).__name__} {_short(top)}")
    top = count
    per_stream: dict[int, int] = {}
    for _, s in plan.order:
        per_stream[s] = per_stream.get(s, 0) + 1
    lines = [
        f"graph        {plan.graph}",
        f"arena        {plan.arena_bytes} B ({human(plan.arena_bytes)})",
        f"lower bound  {plan.lower_bound_bytes} B ({human(plan.lower_bound_bytes)})",
        f"ratio        {plan.ratio_text(4)}",
        f"streams      {plan.streams}  ({_per_stream_text(per_stream)})",
        f"events       {_events_text(plan.events)}",
        *_device_lines(plan),
        "solver       " + ", ".join(f"{k}={_text(v)}" for k, v in _in_order(plan.solver) if not isinstance(v, (dict, list))),
    ]
    lines.extend(f"warning      {w}" for w in solver_claim_warnings(plan))
    for k, v in _in_order(plan.solver):
        if isinstance(v, dict) and k != "schedule":
            lines.append(f"  {k}: " + ", ".join(f"{a}={_text(b)}" for a, b in _in_order(v)))
    lines.extend(_schedule_lines(plan.solver.get("schedule")))
    lines.extend(_stream_table(plan))
    devices = _tensor_devices(plan)
    placed = sorted((t + (d,) for t, d in zip(plan.tensors, devices) if t[1] is not None),
                    key=lambda t: (-t[2], t[0]))
    if placed and top > 0:
        spell = _twins_escaped(t[0] for t in plan.tensors)
        rows = [(spell(tid), *rest) for tid, *rest in placed[:top]]
        lines.extend(_largest_table(rows, len(placed), plan.devices > 1, shown))
    return "\n".join(map(shown, lines))


def _check_solver_block(plan: Plan, source: str) -> None:
    """PlanFormatError naming ``source`` where the plan's solver block (from code: a plan file's is JSON already) is
    no JSON ``load_plan`` reads back, as ``to_json`` refuses it. Why: ``describe`` prints its values, and one nested
    100,000 deep was a raw RecursionError from ``str``, an integer of 5,000 digits a raw ValueError (Python's limit
    on integer text), where ``save_plan`` of the same plan names the field."""
    why = json_trouble(plan.solver, depth=1)
    if why:
        raise PlanFormatError(f"{source}: plan field 'solver' is not JSON that load_plan reads back ({why})")


def _shown_in(encoding: str | None):
    """``printable``, and then (``encoding`` given) what that encoding cannot write escaped as ``\\u5f20``; plain
    ``printable`` where the encoding is unknown to Python, or is one that cannot escape (``idna``, ``undefined``:
    their encoder refuses the ``backslashreplace`` handler or every character, and ``describe`` raised a raw
    UnicodeError). Not a string: an OptionError naming it (``encoding=True`` was a TypeError from ``str.encode``,
    ``"a\\x00b"`` a ValueError, ``"\\ud800"`` a UnicodeEncodeError)."""
    if encoding is None:
        return printable
    if not isinstance(encoding, str):
        raise OptionError(f"describe: encoding must be the name of an encoding (a string) or None, not "
                          f"{type(encoding).__name__} {_short(encoding)}")
    try:
        "\u5f20\x1b".encode(encoding, "backslashreplace")   # (a character it may not hold: the handler is asked for)
    except (LookupError, ValueError):   # (UnicodeError is a ValueError)
        return printable
    return lambda text: printable(text).encode(encoding, "backslashreplace").decode(encoding)


def solver_claim_warnings(plan: Plan) -> list[str]:
    """What in ``plan``'s solver block contradicts its own numbers: ``status`` OPTIMAL with ``arena_bytes`` other than
    ``lower_bound_bytes`` and no proven ``bound`` (or ``fused_groups``' stricter lower bound) equal to the arena;
    a proven ``bound`` above the arena; a ``lower_bound_bytes`` above the arena. Warnings, not refusals: the solver
    block is free-form (CONTRACT.md: it says how the plan was made, not whether it is safe), so the plan is still
    shown and verified; but a hand-edited "OPTIMAL" on an arena above its bound was shown as a proof, without a word.
    (The library's own plans meet their bound or carry the proven one: an exact solver's optimum above the live
    bytes is recorded as ``bound``.)

    A split plan's claims are each device's (docs/format.md, "Multi-device plans"): every ``per_device`` entry is
    checked as a one-device block is, against its own ``arena_bytes`` (which must be the plan's
    ``device_arena_bytes`` of that device), ``lower_bound_bytes`` and ``bound``; and the block's ``status`` may be no
    stronger than its weakest device's, its ``gap`` no smaller than a device's. Why: these went unchecked, so a split
    plan edited to say OPTIMAL (or a device's entry edited so) was shown and verified as a proof."""
    block = plan.solver if isinstance(plan.solver, dict) else {}
    arena, low = plan.arena_bytes, plan.lower_bound_bytes
    out = []
    if isinstance(low, int) and isinstance(arena, int) and low > arena:
        out.append(f"lower_bound_bytes {low} is above arena_bytes {arena}: no packing is smaller than its lower bound")
    if plan.devices > 1:
        # (the block's own bound is checked against the arena; its status is each device's, checked there)
        top = _above(_bounds(block), arena)
        if top:
            out.append(f"the solver block's bound {top[0]} is above arena_bytes {arena}: a proven bound cannot exceed "
                       "an arena that was found")
        return out + _split_claim_warnings(plan, block)
    return out + _claim_warnings("the solver block", block, arena, low)


def _claim_warnings(where: str, block: dict, arena: Any, low: Any) -> list[str]:
    """``solver_claim_warnings``' checks of one claim: ``block``'s status and proven bounds against ``arena`` (one
    device's, or the plan's) and its lower bound ``low``; ``where`` names the block in the warnings."""
    out = []
    bounds = [b for b in map(_whole, _bounds(block)) if b is not None]
    above = _above(_bounds(block), arena)
    if above:
        out.append(f"{where}'s bound {above[0]} is above arena_bytes {arena}: a proven bound cannot exceed "
                   "an arena that was found")
    status, gap = block.get("status"), block.get("gap")
    proofs = bounds + [b for b in map(_whole, _nested_lower_bounds(block)) if b is not None]
    unsupported = arena != low and arena not in proofs
    if isinstance(status, str) and status.upper() == "OPTIMAL" and unsupported:
        out.append(f"{where} claims status {status} but arena_bytes {arena} is not lower_bound_bytes {low} and no "
                   "proven bound equals it (an edited plan?): the optimality claim is unsupported")
    elif isinstance(gap, (int, float)) and not isinstance(gap, bool) and gap == 0 and unsupported:
        # (docs/format.md: the gap is 0.0 only where the arena meets the bound; a FEASIBLE block edited to gap 0.0
        # read, to a tool taking the gap, as an arena at its bound, without a word)
        out.append(f"{where} claims gap {gap} but arena_bytes {arena} is not lower_bound_bytes {low} and no proven "
                   "bound equals it (an edited plan?): a gap of 0 says the arena meets its bound, unsupported")
    return out


def _split_claim_warnings(plan: Plan, block: dict) -> list[str]:
    """``solver_claim_warnings`` of a split plan: each ``per_device`` entry's claim, and the block's status and gap
    against theirs."""
    entries = block.get("per_device")
    status = block.get("status")
    optimal = isinstance(status, str) and status.upper() == "OPTIMAL"
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return [f"the solver block claims status {status} of a plan split over {plan.devices} devices but has no "
                "per_device entries to support it"] if optimal else []
    out = []
    rank = {"HEURISTIC": 0, "FEASIBLE": 1, "OPTIMAL": 2}
    weakest: tuple[int, str] | None = None
    gaps = []
    for k, entry in enumerate(entries):
        d = entry.get("device", k)
        where = f"per_device[{k}] (device {_short(d)})"
        own = entry.get("arena_bytes")
        if isinstance(d, int) and not isinstance(d, bool) and 0 <= d < len(plan.device_arena_bytes) and \
                own != plan.device_arena_bytes[d]:
            out.append(f"{where} has arena_bytes {_short(own)} but the plan's device_arena_bytes of device {d} is "
                       f"{plan.device_arena_bytes[d]}: its claims are about another arena")
        dlow = entry.get("lower_bound_bytes")
        if isinstance(dlow, int) and isinstance(own, int) and dlow > own:
            out.append(f"{where}'s lower_bound_bytes {dlow} is above its arena_bytes {own}: no packing is smaller "
                       "than its lower bound")
        elif isinstance(dlow, int) and not isinstance(dlow, bool) and dlow > plan.lower_bound_bytes:
            # (round 79: device 1's entry raised to its arena of 14,336 B "proved" its OPTIMAL, while the plan's own
            # lower_bound_bytes, the largest device's bound, said 10,240 B and show printed ratio 1.4000 beside it)
            out.append(f"{where}'s lower_bound_bytes {dlow} is above the plan's lower_bound_bytes "
                       f"{plan.lower_bound_bytes}, the largest device's bound: the two contradict each other, and its "
                       "claims rest on the larger")
        out.extend(_claim_warnings(where, entry, own, dlow))
        s = entry.get("status")
        r = rank.get(s.upper(), -1) if isinstance(s, str) else -1
        if weakest is None or r < weakest[0]:
            weakest = (r, f"{where} says {_short(s)}")
        g = entry.get("gap")
        if isinstance(g, (int, float)) and not isinstance(g, bool) and math.isfinite(g):
            gaps.append((g, where))
    if weakest is None:
        if optimal:
            out.append(f"the solver block claims status {status} of a plan split over {plan.devices} devices but its "
                       "per_device list is empty")
        return out
    out.extend(_undescribed_claims(plan, block, entries))
    r = rank.get(status.upper(), -1) if isinstance(status, str) else -1
    if r > weakest[0]:
        out.append(f"the solver block claims status {status} but {weakest[1]}: a split plan's status is its weakest "
                   "device's")
    gap = block.get("gap")
    if gaps and isinstance(gap, (int, float)) and not isinstance(gap, bool):
        g, where = max(gaps)
        if gap < g:
            out.append(f"the solver block's gap {gap} is below {where}'s gap {g}: a split plan's gap is its largest "
                       "device's")
    return out


def _undescribed_claims(plan: Plan, block: dict, entries: list[dict]) -> list[str]:
    """The block's OPTIMAL (or gap 0) claim for each device no ``per_device`` entry describes (by its ``device``, else
    its place in the list): a split plan's status and gap hold for every device, and only a device's entry can
    support them there. Why (round 79): the entries were checked one by one and the block against them, so a plan
    whose device 1 entry was dropped (or replaced by a second device 0 entry) said OPTIMAL, gap 0.0, with device 1's
    arena of 14,336 B above every bound it states (10,240 B), where a one-device block saying so is warned of."""
    status, gap = block.get("status"), block.get("gap")
    if isinstance(status, str) and status.upper() == "OPTIMAL":
        claim = f"status {status}"
    elif isinstance(gap, (int, float)) and not isinstance(gap, bool) and gap == 0:
        claim = f"gap {gap}"
    else:
        return []
    described = set()
    for k, entry in enumerate(entries):
        d = entry.get("device", k)
        if isinstance(d, int) and not isinstance(d, bool):
            described.add(d)
    missing = [d for d in range(plan.devices) if d not in described]
    if not missing:
        return []
    arenas = plan.device_arena_bytes
    which = ", ".join(f"{d} (arena {arenas[d]} B)" if d < len(arenas) else str(d) for d in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return [f"the solver block claims {claim} of a plan split over {plan.devices} devices but no per_device entry "
            f"describes device{'s' if len(missing) > 1 else ''} {which}{more}: the claim is unsupported there"]


def _above(bounds: list, arena: Any) -> list[str]:
    """The ``bounds`` (values of a free-form block) that are numbers above ``arena``, each as the file writes it.
    Why (round 77): a bound of ``1e300`` was quoted as the 301 digits of the float's integer value, which no file
    holds, and one of ``600.5`` above an arena of 512 went unsaid (only whole numbers were compared), though no
    proven bound, whole or not, can exceed an arena that was found."""
    if not isinstance(arena, int) or isinstance(arena, bool):
        return []
    out = []
    for b in bounds:
        if isinstance(b, float) and math.isfinite(b) and b > arena:
            out.append(repr(b) if not b.is_integer() or abs(b) >= 1e16 else str(int(b)))
        elif not isinstance(b, float) and as_int(b) is not None and as_int(b) > arena:
            out.append(str(as_int(b)))
    return out


def _whole(value) -> int | None:
    """A bound of the free-form block as an integer: an int, or a float of a whole number (``3072.0``, as a tool that
    rewrites JSON numbers may write it); None for anything else (a string, a bool, NaN), which proves nothing."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return as_int(value)


def _bounds(block: dict) -> list:
    """The solver block's proven ``bound``, if any."""
    return [block["bound"]] if "bound" in block else []


def _nested_lower_bounds(block: dict) -> list:
    """The ``lower_bound_bytes`` of the blocks nested in a solver block: ``fused_groups``' bound of the stricter
    problem the solvers were given (an arena OPTIMAL against it is above the plan's ``lower_bound_bytes``)."""
    return [v["lower_bound_bytes"] for v in block.values() if isinstance(v, dict) and "lower_bound_bytes" in v]


def _twins_escaped(ids):
    """How a table names an id of ``ids``: as it is, but escaped and quoted as ``ascii`` writes it (``'t\\xe9'``,
    ``'te\\u0301'``) where another id prints alike (the same text in another Unicode normalization form, look-alike
    letters of other scripts: ``errors.twin_spelling``, as ``verify``'s findings name them), and quoted as ``repr``
    writes it (``'x '``, ``'x\\xa0'``) where it begins or ends in white space. Why: such ids are distinct tensors, and
    the largest-tensors table printed both as ``té``, two rows no reader could tell apart; the tables pad their
    columns with spaces, so ``x``, ``x `` and ``x\\xa0`` were three rows reading ``x`` (round 76)."""
    from .errors import twin_spelling

    spell = twin_spelling(list(ids))

    def name(x):
        said = spell(x)
        if said != repr(x):
            return said
        # (an ASCII twin, ``x`` beside a Cyrillic one, is itself; white space at an end is quoted to be seen)
        return repr(x) if isinstance(x, str) and x != x.strip() else x

    return name


def _events_text(events) -> str:
    """The ``events`` line: the distinct events (``(after, before)`` pairs), and how many more entries repeat one. Why
    distinct: a repeated event orders nothing more (the contract's happens-before is the same), ``simulate`` and the
    schedule count it once, and a plan listing 2 events three times each read "events 6" beside "2 event(s)"."""
    distinct = len(dict.fromkeys(map(tuple, events)))   # (a Plan built in code may hold lists)
    extra = len(events) - distinct
    return f"{distinct}" + (f"  ({extra} duplicate entr{'ies' if extra != 1 else 'y'} listed)" if extra else "")


def _per_stream_text(per_stream: dict[int, int]) -> str:
    """The ``streams`` line's parenthesis: nodes per stream, or that there are none. Why: a plan of a graph without
    nodes read "(nodes per stream: )", as if the list had been cut off."""
    if not per_stream:
        return "no nodes"
    return "nodes per stream: " + ", ".join(f"{s}:{c}" for s, c in sorted(per_stream.items()))


def _largest_table(rows: list[tuple], of: int, where: bool, shown=printable) -> list[str]:
    """The largest tensors' table: ``rows`` of (id, offset, size, device), ``of`` placed tensors in all, with a
    device column where the plan spans several (each has its own arena, so an offset means nothing without it).
    Each column is as wide as its widest entry in terminal cells (``display_width``: a CJK id takes two a
    character), at least the widths a plan of everyday sizes gets (ids 32, offsets and sizes 14; ids at most 64).
    Why: an offset or size past 14 digits (a plan near 2**63 bytes) or an id past 32 characters pushed the columns
    after it right on its row alone, and the table no longer lined up under its heading."""
    ids = min(64, max([32, *(display_width(shown(r[0])) for r in rows)]))   # (a thousand characters: its row alone)
    num = max([14, *(len(str(r[k])) for r in rows for k in (1, 2))])
    out = [f"largest tensors (of {of} in the {'arenas' if where else 'arena'}):",
           f"  {'tensor':<{ids}} {'offset':>{num}} {'size':>{num}}" + (f" {'device':>6}" if where else "")]
    for tid, off, size, dev in rows:
        out.append(f"  {_ljust(shown(tid), ids)} {off:>{num}} {size:>{num}}" + (f" {dev:>6}" if where else ""))
    return out


#: the solver block's keys ``show`` prints first, in this order: which solver ran and what it reached
HEADLINE = ("name", "status", "gap", "bound")


def _in_order(block: dict) -> list[tuple[Any, Any]]:
    """``block``'s items in one order whatever the order of its keys in the plan file: the ``HEADLINE`` keys,
    then the others sorted. Why: JSON objects are unordered, and tools rewrite them in other orders (``jq -S``,
    ``json.dump(sort_keys=True)``); printed in the file's order, an equal plan document showed another text."""
    rest = sorted((k for k in block if k not in HEADLINE), key=str)   # (a block from code may have other keys)
    return [(k, block[k]) for k in (*(k for k in HEADLINE if k in block), *rest)]


def _tensor_devices(plan: Plan) -> tuple[int, ...]:
    """Each ``tensors`` entry's device (all 0 on one device, where the plan lists none)."""
    if plan.devices > 1 and len(plan.tensor_devices) == len(plan.tensors):
        return plan.tensor_devices
    return (0,) * len(plan.tensors)


def _device_lines(plan: Plan) -> list[str]:
    """A multi-device plan's arena per device (``arena`` above is the largest): one line, none on one device."""
    if plan.devices <= 1:
        return []
    arenas = ", ".join(f"{d}:{a} B" for d, a in enumerate(plan.device_arena_bytes))
    return [f"devices      {plan.devices}  (arena per device: {arenas})"]


def _schedule_lines(block) -> list[str]:
    """Simulated makespans and serial vs concurrent arenas, when the plan's solver block has them."""
    if not isinstance(block, dict) or "makespan_us" not in block:
        return []
    v = {k: _text(x) for k, x in block.items()}   # (the block is free-form: each value as the file spells it)
    v.setdefault("forks_given_back", "0")
    for key in ("makespan_us", "serial_makespan_us", "event_us", "concurrent_makespan_us"):
        if key in block:
            v[key] = _duration(block[key], v[key])
    out = [f"makespan     {v['makespan_us']} simulated (serial {v.get('serial_makespan_us', 'null us')}, "
           f"x{v.get('speedup', 'null')}; event {v.get('event_us', 'null us')})"]
    if "serial_arena_bytes" in block:
        out.append(f"arenas       serial {v['serial_arena_bytes']} B, concurrent "
                   f"{v.get('concurrent_arena_bytes', 'null')} B at {v.get('concurrent_makespan_us', 'null us')}"
                   + _budget_text(block))
    out.append(f"scheduler    {v.get('method', 'null')} ({v.get('candidate', 'null')}), "
               f"{v['forks_given_back']} fork(s) given back")
    return out


#: the units ``_duration`` writes a time of a million microseconds or more in: (name, microseconds), largest first
TIME_UNITS = (("years", 365.25 * 86_400e6), ("days", 86_400e6), ("h", 3_600e6), ("min", 60e6), ("s", 1e6))


def _duration(value: Any, text: str) -> str:
    """A time of the solver block in microseconds (``text``: ``value`` as ``_text`` spells it) with its unit: below a
    second as the file spells it, in ``us`` (every plan memplan makes of a real graph, byte for byte as before); a
    second or more in the largest unit of ``TIME_UNITS`` it fills, to four significant digits. Why: the block is
    free-form (CONTRACT.md fixes nothing in it, so nothing is refused), and a hand-edited ``event_us`` of 1e15 was
    printed ``event 1000000000000000.0 us``, a number no reader takes in at a glance (31.69 years)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) < 1e6 \
            or (isinstance(value, float) and not math.isfinite(value)):
        return f"{text} us"
    for unit, us in TIME_UNITS:
        if abs(value) >= us:
            try:
                return f"{value / us:.4g} {unit}"
            except OverflowError:   # (an integer past a double's range: a block from code, or 400 digits in a file)
                break
    return f"{text} us"


#: the most characters ``show`` prints of one value of the free-form solver block (``_text``)
MAX_VALUE_CHARS = 120


def _text(value: Any) -> str:
    """A value of the plan's free-form solver block as the plan file spells it, cut at ``MAX_VALUE_CHARS``: a string
    as itself, a number as Python writes it (as before), ``null``/``true``/``false``, lists and objects as JSON. Why:
    a hand-edited block was shown in Python's words (``event None us``, ``speedup xTrue``, ``scheduler {'a': None}``),
    not the file's, and a list of 200,000 numbers for ``makespan_us`` printed a line of 1.5 MB."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, list, tuple, dict)):
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):   # (a block from code: ``_check_solver_block`` refused what json cannot write)
            text = str(value)
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = f"{text[:MAX_VALUE_CHARS]}... ({len(text)} characters)"
    return text


def _budget_text(block: dict) -> str:
    """The arenas line's memory budget, and where it came from when not the caller's own (``device_capacity``:
    the room the capacity leaves after the weights), so a budget nobody passed is not read as one given."""
    if block.get("memory_budget") is None:
        return ""
    source = block.get("memory_budget_from")
    return f", budget {_text(block['memory_budget'])} B" + (f" (from {_text(source)})" if source is not None else "")


def _stream_table(plan: Plan) -> list[str]:
    """Per stream: nodes, events it records and waits on, and its first and last node (multi-stream only)."""
    if plan.streams <= 1:
        return []
    stream_of = dict(plan.order)
    rows: dict[int, list] = {}
    for nid, s in plan.order:
        r = rows.setdefault(s, [0, 0, 0, nid, nid])
        r[0] += 1
        r[4] = nid
    for a, b in plan.events:  # an event naming a node not in order is verify's finding, not a crash here (each entry
        # listed is counted: a repeated one is said on the events line)
        if a in stream_of and b in stream_of:
            rows[stream_of[a]][1] += 1
            rows[stream_of[b]][2] += 1
    where = plan.devices > 1 and len(plan.node_devices) == len(plan.order)
    device_of = {nid: d for (nid, _), d in zip(plan.order, plan.node_devices)} if where else {}
    # each count column as wide as its widest count (a stream of ten million nodes, a million waits), at least as
    # wide as before: a count past the width pushed the rest of its row out of line, as in the largest-tensors table
    w = [max([least, *(len(str(r[k])) for r in rows.values())]) for k, least in ((0, 7), (1, 8), (2, 6))]
    # (a list: a plan of several streams and no nodes has no row, and ``max(7)`` was a raw TypeError)
    out = ["per stream:", f"  {'stream':>6}" + (f" {'device':>6}" if where else "")
           + f" {'nodes':>{w[0]}} {'records':>{w[1]}} {'waits':>{w[2]}}  first .. last"]
    spell = _twins_escaped(nid for nid, _ in plan.order)   # (node ids that print alike: escaped, as tensor ids)
    for s in sorted(rows):
        n, rec, wait, first, last = rows[s]
        out.append(f"  {s:>6}" + (f" {device_of[first]:>6}" if where else "")
                   + f" {n:>{w[0]}} {rec:>{w[1]}} {wait:>{w[2]}}  {spell(first)} .. {spell(last)}")
    return out
