"""The minimalloc CSV format: buffer problems without a graph, for benchmarks and other tools.

google/minimalloc and TelaMalloc publish their benchmarks as ``id,lower,upper,size`` rows (a
buffer lives over time steps ``[lower, upper)`` and needs ``size`` bytes) with the memory capacity
given separately; a solution is the same table plus an ``offset`` column. Reading them here lets
every memplan solver run on those benchmarks, and lets other tools read memplan's answers. The columns are read as
minimalloc's own reader (``converter.cc``) reads them: its other names for the required ones (``ALIASES``), an optional
``alignment`` (one for every buffer) and ``gaps`` (spans where a buffer holds none of its bytes).

Guarantees: a malformed file raises ``InputFormatError`` naming the file, line and column; output
is written atomically; a packing is only returned after the solvers' one check found no overlap; no
packing within the capacity raises ``BudgetError`` with both numbers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from .._forklocks import fork_safe
from ..errors import (
    BudgetError,
    InputFormatError,
    SolverError,
    caller_stacklevel,
    counted,
    from_callback,
    named_options,
)
from ..errors import short_repr as _short
from ..files import atomic_write_text, markup_hint, not_utf8, path_text, read_text_input, text_trouble
from ..problem import MAX_ALIGNMENT, BufferProblem, Solution, align_up, aligned_interval_bound
from ..solvers import Objective, OverCapacity, SolveOptions, check_options
from ..solvers import solve_marked as solve  # (its workers and stop are warned of here, once: ``solve_table``)
from ..solvers.check import InvalidPacking, interval_collision
from ..solvers.unread import warn_stopped, warn_unread, warn_workers_alignment
from ..values import by_value

REQUIRED = ("id", "lower", "upper", "size")
#: other names minimalloc's reader (``converter.cc``) takes for the required columns: ``start`` / ``begin`` for
#: ``lower``, ``buffer`` / ``buffer_id`` for ``id``, and ``end`` for ``upper`` *inclusive* (the old format: a buffer
#: ending at ``end`` lives over ``[start, end + 1)``, and so do its gaps' ends)
ALIASES = {"start": "lower", "begin": "lower", "end": "upper", "buffer": "id", "buffer_id": "id"}
#: minimalloc's optional ``alignment`` column: each buffer's offsets are a multiple of it (``Buffer.alignment``)
ALIGNMENT = "alignment"
#: minimalloc's optional ``gaps`` column: time spans ``a-b`` (space-separated) within a buffer's lifetime where it is
#: inactive, holding none of its bytes (``Buffer.gaps``; a gap ``a-b@x:y``, holding bytes ``x..y`` of it, is refused)
GAPS = "gaps"
#: a cell's integer as C's ``strtoll`` (minimalloc) reads it whole: ASCII decimal digits, one optional sign
_DECIMAL = re.compile(r"[+-]?[0-9]+")
#: every bound and size, and the sizes' sum, lies below this (offsets and arenas are int64)
MAX_VALUE = 1 << 63


@by_value   # (its bounded repr: a 20,000-row table printed 0.8 MB)
@dataclass(frozen=True)
class CsvTable:
    """The rows of a minimalloc CSV, kept as text so the output repeats the input columns. ``==`` and ``hash`` by
    value (``values.by_value``): the generated ones compared the arrays with ``==``, so ``parse_csv(t) ==
    parse_csv(t)`` raised numpy's "truth value of an array is ambiguous" ValueError (round 76)."""

    path: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    ids: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    sizes: np.ndarray
    #: every buffer's alignment: the ``alignment`` column's one value (1 where the table has none)
    alignment: int = 1
    #: each buffer's gaps (``gaps`` column: ``(a, b)`` spans of its lifetime where it holds no bytes, in time order,
    #: apart), or None where no row has any
    gaps: tuple[tuple[tuple[int, int], ...], ...] | None = None

    def problem(self, capacity: int | None = None) -> BufferProblem:
        """The table's buffer problem. Buffers whose lifetimes overlap only where one of them is in a gap may share
        bytes (``compatible``: minimalloc's validator lets them); the lower bound is then the most bytes live (out of
        every gap) at one time step. Where the gaps let no pair share, the problem is the interval problem, its bound
        the interval problem's (the heaviest conflict clique's, which may pass that count)."""
        _check_gaps(self)
        pairs = _gap_pairs(self) if self.gaps is not None else frozenset()
        return BufferProblem(sizes=self.sizes, lower=self.lower, upper=self.upper, alignment=self.alignment,
                             names=self.ids, capacity=capacity, meta={"source": self.path}, compatible=pairs,
                             lower_bound=_gap_bound(self) if pairs else None)


def _check_gaps(table: CsvTable) -> None:
    """SolverError naming the table and buffer where ``table.gaps`` is not what ``parse_csv`` makes of a ``gaps``
    column: None, or one sequence per buffer of ``(a, b)`` integer spans in time order, apart, within its lifetime.
    Why: a table built or ``dataclasses.replace``d with other gaps (one per buffer short, a span past the lifetime)
    raised a raw IndexError, or counted a buffer live after its lifetime, a bound above the optimum (refused as a
    solver's bug)."""
    gaps, n = table.gaps, len(table.lower)
    if gaps is None:
        return
    if not isinstance(gaps, (tuple, list)) or len(gaps) != n:
        raise SolverError(f"{table.path}: gaps must be None or one sequence of (lower, upper) spans for each of the "
                          f"{n} buffers, not {_short(gaps)}")
    for i, spans in enumerate(gaps):
        lower, upper, at = int(table.lower[i]), int(table.upper[i]), int(table.lower[i])
        ok = isinstance(spans, (tuple, list))
        for span in spans if ok else ():
            ok = (isinstance(span, (tuple, list)) and len(span) == 2
                  and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in span)
                  and at <= span[0] < span[1] <= upper)
            if not ok:
                break
            at = int(span[1])
        if not ok:
            name = table.ids[i] if i < len(table.ids) else f"#{i}"
            raise SolverError(f"{table.path}: buffer {name!r}: gaps {_short(spans)} are not (lower, upper) spans of "
                              f"integers in time order, apart, within its lifetime {lower}-{upper}")


def _live(table: CsvTable, i: int) -> list[tuple[int, int]]:
    """Buffer ``i``'s lifetime less its gaps: the spans ``[a, b)`` where it holds its bytes, in time order."""
    spans, at = [], int(table.lower[i])
    for a, b in (table.gaps[i] if table.gaps is not None else ()):
        if a > at:
            spans.append((at, a))
        at = max(at, b)
    if int(table.upper[i]) > at:
        spans.append((at, int(table.upper[i])))
    return spans


#: the most pairs of buffers a minimalloc CSV's gaps may let share bytes (``BufferProblem.compatible`` keeps each)
MAX_GAP_PAIRS = 1 << 20


def _gap_pairs(table: CsvTable) -> frozenset[tuple[int, int]]:
    """The pairs of buffers whose lifetimes overlap, one of them with gaps, that are never both live out of a gap;
    InputFormatError naming the file past ``MAX_GAP_PAIRS`` of them. For each buffer with gaps, one vectorised pass
    over the live spans near its own (a window of them sorted by start): those that meet one of its own live spans
    conflict with it, the others whose lifetimes overlap its lifetime may share its bytes. Why not a sweep of every
    pair of overlapping lifetimes: on a table whose lifetimes all overlap, one gap made that O(n^2) in memory (6,000
    rows: 10 s and 700 MB to read a problem the interval sweep plans in 0.1 s), where the pairs a gap frees are few."""
    n = len(table.lower)
    owner, seg_a, seg_b = _segments(table)
    # (sorted by start, each search a window: a span or lifetime meeting [a, b) starts before b and after a less the
    # longest one)
    o = np.argsort(seg_a, kind="stable")
    seg_a, seg_b, owner = seg_a[o], seg_b[o], owner[o]
    seg_len = int((seg_b - seg_a).max()) if len(o) else 0
    by_lower = np.argsort(table.lower, kind="stable")
    lows, ups = table.lower[by_lower], table.upper[by_lower]
    life_len = int((table.upper - table.lower).max()) if n else 0
    gapped = [i for i, g in enumerate(table.gaps) if g]
    later = np.zeros(n, dtype=bool)   # (a pair of two gapped buffers is found from its first one alone)
    live = np.zeros(n, dtype=bool)
    firsts, seconds, count = [], [], 0
    for i in gapped:
        hit = []
        for a, b in _live(table, i):
            lo, hi = np.searchsorted(seg_a, a - seg_len, "right"), np.searchsorted(seg_a, b, "left")
            hit.append(owner[lo:hi][seg_b[lo:hi] > a])
        hit = np.concatenate(hit) if hit else owner[:0]
        live[hit] = True
        later[i] = True
        lo_i, up_i = int(table.lower[i]), int(table.upper[i])
        lo, hi = np.searchsorted(lows, lo_i - life_len, "right"), np.searchsorted(lows, up_i, "left")
        near = by_lower[lo:hi][ups[lo:hi] > lo_i]
        js = np.sort(near[~live[near] & ~later[near]])
        live[hit] = False
        firsts.append(np.minimum(js, i))
        seconds.append(np.maximum(js, i))
        count += len(js)
        if count > MAX_GAP_PAIRS:
            raise InputFormatError(f"{table.path}: column {GAPS!r}: the gaps let more than {MAX_GAP_PAIRS} pairs of "
                                   "buffers whose lifetimes overlap share bytes, the most memplan keeps")
    if not count:
        return frozenset()
    return frozenset(zip(np.concatenate(firsts).tolist(), np.concatenate(seconds).tolist()))


def _gap_bound(table: CsvTable) -> int:
    """The most bytes live out of every gap at one time step, each but the highest rounded up to the alignment
    (``aligned_interval_bound``): buffers live together there conflict pairwise."""
    owner, a, b = _segments(table)
    return aligned_interval_bound(table.sizes[owner], a, b, table.alignment)


def _segments(table: CsvTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every live span of every buffer (``_live``) as int64 arrays: its buffer, its start and its end."""
    spans = [_live(table, i) for i in range(len(table.lower))]
    owner = np.array([i for i, sp in enumerate(spans) for _ in sp], dtype=np.int64)
    return (owner, np.array([a for sp in spans for a, _ in sp], dtype=np.int64),
            np.array([b for sp in spans for _, b in sp], dtype=np.int64))


def _clash(table: CsvTable, off: np.ndarray) -> tuple[int, int] | None:
    """Two buffers of ``table`` live at one time step (out of their gaps) whose bytes at ``off`` overlap, or None: the
    interval sweep of the live spans (``_segments``), each at its buffer's offset. Why not ``check.overlap`` of the
    table's problem: gaps make it a problem of compatible pairs, checked pairwise up to ``PAIRWISE_LIMIT`` buffers and
    not at all past it, so a table of 5,001 rows, one with a gap, was written (and its solver's packing taken) with
    buffers live at one time at one offset."""
    owner, a, b = _segments(table)
    clash = interval_collision(table.sizes[owner], a, b, off[owner])
    return None if clash is None else (int(owner[clash[0]]), int(owner[clash[1]]))


@named_options
def parse_csv(text: str, path: str = "<csv>") -> CsvTable:
    """Parse minimalloc CSV text; ``path`` names the source in error messages."""
    if not isinstance(text, str):   # (None: an AttributeError; bytes: a TypeError about startswith)
        raise InputFormatError(f"parse_csv needs the CSV as text (a str; read_csv reads a file), not "
                               f"{type(text).__name__}")
    if isinstance(path, os.PathLike) and isinstance(path_text(path), str):   # (read_csv's path as the caller gave it)
        path = path_text(path)
    if not isinstance(path, str):
        raise InputFormatError(f"parse_csv: path must be a string naming the source, not {type(path).__name__}")
    if text.startswith("\ufeff"):  # else the header's first name is "\ufeffid" and 'id' looks missing
        raise InputFormatError(f"{path}: line 1: starts with a byte-order mark (U+FEFF); save it as UTF-8 "
                               "without one")
    _check_text(text, path)
    with _fields_up_to(len(text)):
        return _table(text, path)


#: held while ``_fields_up_to`` has raised ``csv.field_size_limit``, one setting for the whole process
_FIELD_LIMIT_LOCK = fork_safe(threading.Lock())


@contextlib.contextmanager
def _fields_up_to(chars: int) -> Iterator[None]:
    """``csv``'s field size limit at least ``chars`` for the block, then as it was. Why: ``csv`` refuses a field over
    131,072 characters (its default limit), so a valid minimalloc CSV whose id is longer (a graph's id may be any length)
    was "field larger than field limit (131072)", Python's words naming neither column nor buffer. Its text's length
    bounds every field; a quote left open still reads to the end of the file and is named as such (``_runs_on``)."""
    with _FIELD_LIMIT_LOCK:
        before = csv.field_size_limit()
        csv.field_size_limit(max(before, chars))
        try:
            yield
        finally:
            csv.field_size_limit(before)


def _table(text: str, path: str) -> CsvTable:
    """``parse_csv``'s rows of ``text`` (checked as text already) as a table, within ``_fields_up_to``."""
    reader = csv.reader(io.StringIO(text, newline=""))   # \n, \r\n and old-Mac \r line ends, as csv wants
    header, at = _header(reader, path)
    _check_reserved_case(header, f"{path}: line {at}")
    col = {}
    label = {}   # (each required column's name in the header: its own, or minimalloc's other name for it)
    for name in REQUIRED:
        given = [h for h in (name, *(a for a, n in ALIASES.items() if n == name)) if h in header]
        if not given:
            raise InputFormatError(f"{path}: line {at}: missing column {name!r} "
                                   f"(the header must name {','.join(REQUIRED)}){_json_hint(text)}"
                                   f"{markup_hint(text, 'CSV')}{_delimiter_hint(header)}")
        if len(given) > 1:
            raise InputFormatError(f"{path}: line {at}: columns {given[0]!r} and {given[1]!r} both name the buffers' "
                                   f"{name!r} (minimalloc reads {' and '.join(repr(a) for a, n in ALIASES.items() if n == name)} "
                                   f"as {name!r}): keep one")
        col[name], label[name] = header.index(given[0]), given[0]
    inclusive = label["upper"] == "end"   # (minimalloc's old format: ``end`` is the last time step, not past it)
    for name in (ALIGNMENT, GAPS):
        if name in header:
            col[name] = header.index(name)
    gaps: list[tuple[tuple[int, int], ...]] = []
    names: set[str] = set()
    for h in header:  # (a set: ``header.index`` per column was quadratic, a 100,000-column header hung)
        if h in names:
            raise InputFormatError(f"{path}: line {at}: column {h[:40]!r} appears twice")
        names.add(h)
    rows: list[tuple[str, ...]] = []
    ids: list[str] = []
    nums: dict[str, list[int]] = {"lower": [], "upper": [], "size": []}
    seen: dict[str, int] = {}
    total = 0
    aligned: tuple[int, str, int] | None = None   # (the first row's alignment, its buffer and line)
    end = reader.line_num   # the last line read: a row starts on the next (a quoted field may run over several)
    try:
        for row in reader:
            line, end = end + 1, reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise InputFormatError(f"{path}: line {line}: {counted(len(row), 'field')}, expected {len(header)}"
                                       f"{_runs_on(line, end) or _quoted_commas(row)}")
            bid = row[col["id"]].strip()
            if not bid:
                raise InputFormatError(f"{path}: line {line}, column {label['id']!r}: empty buffer id")
            if bid in seen:
                raise InputFormatError(f"{path}: line {line}, column {label['id']!r}: buffer {bid!r} "
                                       f"already defined on line {seen[bid]}")
            seen[bid] = line
            vals = {}
            for name in ("lower", "upper", "size") + ((ALIGNMENT,) if ALIGNMENT in col else ()):
                cell, shown = row[col[name]].strip(), label.get(name, name)
                try:
                    if not _DECIMAL.fullmatch(cell):  # int() also takes "1_000" and non-ASCII digits
                        raise ValueError
                    v = int(cell)
                except ValueError:
                    raise InputFormatError(f"{path}: line {line}, column {shown!r}: {cell[:40]!r} "
                                           f"is not an integer (buffer {bid!r}){_runs_on(line, end)}") from None
                if v < 0:
                    raise InputFormatError(f"{path}: line {line}, column {shown!r}: negative value {v} "
                                           f"(buffer {bid!r})")
                if name == "upper" and inclusive:
                    v += 1
                if v >= MAX_VALUE:
                    raise InputFormatError(f"{path}: line {line}, column {shown!r}: {cell[:40]} is not below "
                                           f"{'2**63 - 1 (the last time step: it ends after it)' if name == 'upper' and inclusive else '2**63'} "
                                           f"(buffer {bid!r})")
                vals[name] = v
            if vals["lower"] >= vals["upper"]:
                raise InputFormatError(f"{path}: line {line}, column {label['upper']!r}: buffer {bid!r} ends "
                                       + (f"with time step {vals['upper'] - 1}, before its {label['lower']} "
                                          if inclusive else f"at {vals['upper']}, not after its {label['lower']} ")
                                       + f"{vals['lower']}")
            if ALIGNMENT in vals:
                _check_alignment(vals[ALIGNMENT], aligned, bid, f"{path}: line {line}, column {ALIGNMENT!r}")
                aligned = aligned or (vals[ALIGNMENT], bid, line)
            if GAPS in col:
                gaps.append(_gaps(row[col[GAPS]], vals["lower"], vals["upper"], bid,
                                  f"{path}: line {line}, column {GAPS!r}", int(inclusive)))
            total += vals["size"]
            if total >= MAX_VALUE:
                raise InputFormatError(f"{path}: line {line}, column 'size': the sizes add up to {total}, "
                                       "over the 2**63 limit")
            ids.append(bid)
            rows.append(tuple(row))
            for name in nums:
                nums[name].append(vals[name])
    except csv.Error as exc:   # ("field larger than field limit": a quote left open on the row's first line)
        raise InputFormatError(f"{path}: line {end + 1}: {exc}{_runs_on(end + 1, reader.line_num)}") from None
    alignment = aligned[0] if aligned else 1
    if alignment > 1 and sum(align_up(v, alignment) for v in nums["size"]) >= MAX_VALUE:
        raise InputFormatError(f"{path}: column {ALIGNMENT!r}: the sizes rounded up to the alignment {alignment} add "
                               "up to 2**63 or more, over the limit of every offset")
    return CsvTable(path=path, header=tuple(header), rows=tuple(rows), ids=tuple(ids),
                    lower=np.asarray(nums["lower"], dtype=np.int64),
                    upper=np.asarray(nums["upper"], dtype=np.int64),
                    sizes=np.asarray(nums["size"], dtype=np.int64), alignment=alignment,
                    gaps=tuple(gaps) if any(gaps) else None)


_GAP = re.compile(r"([+-]?[0-9]+)-([+-]?[0-9]+)")


def _gaps(cell: str, lower: int, upper: int, bid: str, where: str, addend: int = 0) -> tuple[tuple[int, int], ...]:
    """Buffer ``bid``'s ``gaps`` cell as ``(a, b)`` spans in time order, or InputFormatError at ``where`` naming the
    gap: not ``a-b`` of integers, a gap with a window (``a-b@x:y``), empty (``b <= a``), outside ``[lower, upper]``, or
    overlapping another gap of the buffer. ``addend``: 1 where the table's ``end`` column is inclusive (a gap's end too).

    Why: minimalloc's ``gaps`` column (``Buffer.gaps``: spans of its lifetime where a buffer is inactive) was kept as
    text and ignored, so a buffer in a gap still conflicted with every buffer live there: the arena was larger than
    needed, and its lower bound, the bytes live at one time counting buffers in their gaps, above minimalloc's
    optimum, so that arena was called OPTIMAL."""
    spans = []
    for gap in cell.split():
        if "@" in gap:
            raise InputFormatError(f"{where}: buffer {bid!r}: gap {gap[:40]!r} has a window (holds part of the buffer "
                                   "in the gap): memplan plans a buffer whole or not at all at each time")
        m = _GAP.fullmatch(gap)
        if m is None:
            raise InputFormatError(f"{where}: buffer {bid!r}: gap {gap[:40]!r} is not 'lower-upper' (integers; gaps "
                                   "are separated by spaces)")
        a, b = int(m.group(1)), int(m.group(2)) + addend
        if not lower <= a < b <= upper:
            raise InputFormatError(f"{where}: buffer {bid!r}: gap {gap[:40]!r} is not a span within its lifetime "
                                   f"{lower}-{upper - addend}")
        spans.append((a, b))
    spans.sort()
    for (a, b), (c, d) in zip(spans, spans[1:]):
        if c < b:
            raise InputFormatError(f"{where}: buffer {bid!r}: gaps {a}-{b - addend} and {c}-{d - addend} overlap")
    return tuple(spans)


def _check_alignment(value: int, first: tuple[int, str, int] | None, bid: str, where: str) -> None:
    """InputFormatError, at ``where``, naming buffer ``bid``'s ``alignment`` cell ``value`` where memplan cannot plan
    it: 0, not a power of two, above 2**48, or other than the first row's (``first``: its value, buffer and line).

    Why: minimalloc's ``alignment`` column (``Buffer.alignment``: every offset of the buffer a multiple of it) was kept
    as text and ignored, so ``memplan csv`` wrote a buffer of alignment 4 at offset 3 and called the arena OPTIMAL: a
    solution minimalloc's validator refuses. One alignment for every buffer is the problem's own (``BufferProblem
    .alignment``); the solvers plan no other."""
    if not 0 < value <= MAX_ALIGNMENT or value & (value - 1):
        raise InputFormatError(f"{where}: buffer {bid!r} has alignment {value}: memplan plans an alignment that is a "
                               "power of two in 1..2**48")
    if first is not None and value != first[0]:
        raise InputFormatError(f"{where}: buffer {bid!r} has alignment {value}, buffer {first[1]!r} (line {first[2]}) "
                               f"{first[0]}: memplan plans one alignment for every buffer of a problem")


def _header(reader, path: str) -> tuple[list[str], int]:
    """The CSV's header, its names stripped, and the line it is on: the first row that is not blank. Why: blank lines
    are skipped between rows, but one before the header (an export that starts with an empty line) was taken for
    the header, and the file refused as "line 1: missing column 'id'" with the header right there on line 2."""
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                return [h.strip() for h in row], reader.line_num
    except csv.Error as exc:
        raise InputFormatError(f"{path}: line {reader.line_num or 1}: {exc}") from None
    raise InputFormatError(f"{path}: {'empty file' if not reader.line_num else 'no header, only blank lines'} "
                           f"(expected a header {','.join(REQUIRED)})")


#: the column names the format gives a meaning to: the problem's (its optional ``alignment`` and ``gaps`` too) and
#: the solution's ``offset``
RESERVED = (*REQUIRED, ALIGNMENT, GAPS, "offset")


def _check_reserved_case(header, where: str) -> None:
    """InputFormatError naming a column spelt as one of the format's names in other letter case (``Offset``, ``ID``).
    Column names are case-sensitive, as minimalloc's reader has them (``id,lower,upper,size``, ``offset``, all
    lowercase), so such a column is none of them. Why refused, not kept: an input with ``Offset`` was written back
    with both ``Offset`` and the solution's ``offset``, two columns that read as one; ``ID`` was "missing column 'id'"
    with the column plainly there. Checked on reading (``parse_csv``) and writing (``format_csv``) alike."""
    for h in header:
        if isinstance(h, str) and h not in RESERVED and h.lower() in RESERVED:
            raise InputFormatError(f"{where}: column {h[:40]!r} is the format's {h.lower()!r} in other letter case: "
                                   f"column names are case-sensitive (minimalloc's are lowercase): rename it "
                                   f"{h.lower()!r}, or to another name to keep it as a column of its own")


def _delimiter_hint(header: list[str]) -> str:
    """What to add where a header that lacks a column is one field holding all of them separated by another
    character (``id;lower;upper;size``, a spreadsheet's export in a locale whose decimal mark is a comma, or a
    tab-separated file): minimalloc CSV separates them by commas."""
    if len(header) != 1:
        return ""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if all(n in [h.strip() for h in header[0].split(sep)] for n in REQUIRED):
            return f"; its header separates them by {name}: minimalloc CSV separates fields by commas"
    return ""


def _json_hint(text: str) -> str:
    """What to add where a CSV without the required header is JSON (a graph or plan given to ``memplan csv`` by
    mistake, which was "missing column 'id'" alone): which command reads it."""
    if text.lstrip()[:1] not in ("{", "["):
        return ""
    return "; this is JSON, not CSV: a memplan graph is planned by 'memplan plan', a plan read by 'memplan show'"


def _runs_on(line: int, end: int) -> str:
    """What to add to an error in a row that starts on ``line`` and ends on ``end``: a quote left open makes the
    row run on to the end of the file (its errors named the last line, which holds nothing wrong)."""
    return "" if end <= line else f" (the row runs on to line {end} inside quotes: a quote left open?)"


def _quoted_commas(row: list[str]) -> str:
    """What to add to an error in a row whose last field holds a comma or a line break: a quote
    left open on the file's last line took the rest of it as one field (``"a,0,3,4`` was "1 field, expected 4"
    alone, where a quote left open on an earlier line is named as such: ``_runs_on``)."""
    last = row[-1] if row else ""   # (an open quote takes the rest of the line into the last field)
    if any(c in last for c in ",\n\r"):
        return " (its last field holds the rest of the line: a quote left open?)"
    return ""


def _check_text(text: str, path: str) -> None:
    """InputFormatError naming the line of a NUL or a lone surrogate (``"\\ud800"``) in CSV ``text``: no UTF-8 file
    holds either (``read_csv`` refuses them in the bytes), and ``parse_csv`` of a str took them, so that ``write_csv``
    raised a raw UnicodeEncodeError on the surrogate, or wrote a solution file ``read_csv`` refuses (the NUL)."""
    nul = text.find("\x00")
    try:
        text.encode("utf-8")
        surrogate = -1
    except UnicodeEncodeError as exc:
        surrogate = exc.start
    found = [i for i in (nul, surrogate) if i >= 0]
    if not found:
        return
    at = min(found)
    line = 1 + sum(text.count(end, 0, at) for end in ("\n", "\r")) - text.count("\r\n", 0, at)
    what = "a NUL character" if at == nul else f"a lone surrogate {text[at]!r} (not encodable as UTF-8)"
    raise InputFormatError(f"{path}: line {line}: holds {what}, which no UTF-8 text file does")


@named_options
def read_csv(path: str) -> CsvTable:
    """Parse a minimalloc CSV file: a regular file of at most ``MAX_FILE_BYTES`` (docs/format.md "Limits")."""
    from . import _path

    path = _path(path, InputFormatError)   # a PathLike as its text (a TypeError from the file checks before)
    data = read_text_input(path, InputFormatError)
    why = text_trouble(data)
    if why:
        raise InputFormatError(f"{path}: {why}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{path}: {not_utf8(data, exc)}") from None
    return parse_csv(text, path)


@named_options
def format_csv(table: CsvTable, offsets: np.ndarray) -> str:
    """The input columns plus ``offset`` (replacing an ``offset`` column the input already had).

    ``offsets`` must be a packing of the table: one non-negative integer per row, no two buffers live at one
    time overlapping (SolverError naming them). Fewer offsets than rows wrote a table cut short and more
    were dropped, both silently, and an overlapping packing was written as a solution."""
    if not isinstance(table, CsvTable):
        raise InputFormatError(f"format_csv needs a CsvTable (parse_csv or read_csv reads one), not "
                               f"{type(table).__name__}")
    _check_reserved_case(table.header, table.path)   # (a table built by hand: parse_csv refuses these already)
    off = _offsets(table, offsets)
    table.problem()   # (its checks of a table built by hand: arrays of one length, its gaps)
    clash = _clash(table, off)
    if clash is not None:
        a, b = clash
        raise SolverError(f"{table.path}: offsets overlap buffers {table.ids[a]!r} and {table.ids[b]!r}, "
                          "which are live at the same time: no packing")
    if table.alignment > 1 and (off % table.alignment).any():
        i = int(np.flatnonzero(off % table.alignment)[0])
        raise SolverError(f"{table.path}: buffer {table.ids[i]!r}: offset {int(off[i])} is not a multiple of its "
                          f"alignment {table.alignment}")
    keep = [k for k, h in enumerate(table.header) if h != "offset"]
    out = io.StringIO()
    plain = csv.writer(out, lineterminator="\n")
    # ``csv`` quotes a cell holding the delimiter, a quote or a character of the line terminator ("\n"), not one
    # holding a lone "\r", which its reader (and ``parse_csv``) takes for a line end: an id "a\rb" (quoted in the
    # input) was written bare and the solution file split its row in two. Such a row is quoted as for a "\r\n"
    # terminator (the cells holding "\r" or "\n" too) and ended by "\n", as every row.
    row_buf = io.StringIO()
    crlf = csv.writer(row_buf, lineterminator="\r\n")

    def put(cells: list) -> None:
        if not any("\r" in c for c in cells if isinstance(c, str)):
            plain.writerow(cells)
            return
        row_buf.seek(0)
        row_buf.truncate()
        crlf.writerow(cells)
        out.write(row_buf.getvalue()[:-2] + "\n")

    put([table.header[k] for k in keep] + ["offset"])
    for row, o in zip(table.rows, off.tolist()):
        put([row[k].strip() for k in keep] + [o])
    return out.getvalue()


def _offsets(table: CsvTable, offsets) -> np.ndarray:
    """``offsets`` as int64, one per row, each in ``0 .. 2**63 - 1`` with its buffer's end (SolverError); no bools."""
    try:
        arr = np.asarray(offsets)
    except Exception:   # (a ragged nesting: numpy's ValueError)
        arr = np.asarray(None)
    n = len(table.rows)
    # a bool among ints: numpy makes [True, 8] the ints [1, 8], and True was written as offset 1
    flags = arr.ndim == 1 and not isinstance(offsets, np.ndarray) and any(
        isinstance(v, (bool, np.bool_)) for v in offsets)
    if arr.ndim != 1 or len(arr) != n or (n and arr.dtype.kind not in "iu") or flags:
        raise SolverError(f"{table.path}: offsets must be {counted(n, 'integer')}, one per row, not {_short(offsets)}")
    big = arr.astype(object) + table.sizes.astype(object) if n else arr
    if n and ((arr < 0).any() or max(big) >= MAX_VALUE):
        i = int(np.flatnonzero((arr < 0) | (big >= MAX_VALUE))[0])
        raise SolverError(f"{table.path}: buffer {table.ids[i]!r}: offset {int(arr[i])} is not in 0..2**63-1 "
                          "with its size")
    return arr.astype(np.int64)


@named_options
def write_csv(path: str, table: CsvTable, offsets: np.ndarray) -> None:
    atomic_write_text(path, format_csv(table, offsets))


@named_options   # (a misspelt option, ``time_limit=`` for ``options=SolveOptions(time_limit=...)``: an OptionError)
def solve_table(table: CsvTable, capacity: int | None = None, solver: str = "search",
                options: SolveOptions | None = None, *, minimize: bool | None = None) -> Solution:
    """Offsets for a CSV problem: within ``capacity`` (first packing found), or the smallest arena
    when there is no capacity (or ``minimize=True``). Raises ``BudgetError`` if nothing fits.

    ``options`` None is ``SolveOptions()``; anything else but a SolveOptions, a ``minimize`` other than
    True/False/None, or a ``table`` that is no CsvTable is a SolverError naming it (``options=None`` was a raw
    TypeError from ``dataclasses.replace``, ``minimize="no"`` minimised, a str table an AttributeError)."""
    if not isinstance(table, CsvTable):
        raise SolverError(f"solve_table needs a CsvTable (parse_csv or read_csv reads one), not "
                          f"{type(table).__name__} {_short(table)}")
    options = SolveOptions() if options is None else check_options(options)
    warn_unread(solver, options)   # (greedy's one pass ignores time_limit, seed and workers: said, not silent)
    if minimize is not None and not isinstance(minimize, (bool, np.bool_)):
        raise SolverError(f"{table.path}: minimize must be True, False or None (None: minimise when there is "
                          f"no capacity), not {_short(minimize)}")
    if minimize is not None:   # (numpy's bool too: ``minimize=np.True_`` was taken before the check above)
        minimize = bool(minimize)
    if minimize is None:
        minimize = capacity is None
    problem = table.problem(capacity)
    warn_workers_alignment(solver, options, problem.alignment, False, "CSV problem")
    objective = Objective.MINIMIZE if minimize else Objective.FIT
    try:
        sol = solve(problem, solver, replace(options, objective=objective))
    except (SolverError, BudgetError) as exc:   # named by the file, as every other CSV error is
        if from_callback(exc):   # the caller's progress callback raised it: passed on as it is
            raise
        if isinstance(exc, OverCapacity):   # (its best packing kept: a caller may still report it)
            check_packing(table, exc.best)
            raise OverCapacity(f"{table.path}: {exc}", exc.best) from None
        raise type(exc)(f"{table.path}: {exc}") from None
    warn_stopped(sol.info.get("stopped"), solver, options, stacklevel=caller_stacklevel())
    check_packing(table, sol)
    return sol   # (within the capacity: ``solve`` refuses a packing above it, whatever the objective)


def check_packing(table: CsvTable, sol: Solution) -> None:
    """InvalidPacking naming two buffers of ``table`` live at one time that ``sol``, a solver's packing of
    ``table.problem()``, puts over each other: what ``check_solution`` leaves unchecked of a table with gaps past
    ``PAIRWISE_LIMIT`` buffers (its problem is one of compatible pairs, checked pairwise up to that many)."""
    clash = _clash(table, np.asarray(sol.offsets, dtype=np.int64)) if table.gaps is not None else None
    if clash is not None:
        raise InvalidPacking(f"{table.path}: solver {sol.solver!r} overlapped buffers {table.ids[clash[0]]!r} and "
                             f"{table.ids[clash[1]]!r}, which are live at the same time (a solver bug)")
