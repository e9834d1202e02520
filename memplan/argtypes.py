"""Command-line values: each parser turns one option's text into a checked number or says why not.

Every command (``cli.py`` and the subcommands registered from ``importers/`` and ``viz/``) parses its
options with these, so a value means the same and fails the same way everywhere: argparse turns an
``ArgumentTypeError`` into a one-line usage error, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .planfile import MAX_STREAMS
from .show import printable

#: bytes, counts and capacities are int64 everywhere
MAX_BYTES = 1 << 63
#: CP-SAT workers
MAX_WORKERS = 1024
#: seconds of work or microseconds of cost: beyond this is a typo, not a budget
MAX_TIME = 1e9
#: nodes of a generated benchmark graph (``memplan bench``: the scale suite's largest is 10**6)
MAX_NODES = 10 ** 7
#: decoder layers of a generated Llama graph (real models have at most a few hundred)
MAX_LAYERS = 1024


def print_error(message: str, who: str = "memplan") -> None:
    """``memplan: error: ...`` (``who``: the command) on stderr as one line, whatever the message (a library's
    exception text from deep inside, an id or a path from the input) contains: what is not printable is
    escaped."""
    line = printable(" / ".join(part.strip() for part in str(message).splitlines() if part.strip()))
    print(f"{who}: error: {line}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming it and where to find help (exit 2). ``who`` starts
    the line (the runtime's tools give their own name)."""

    def __init__(self, *args, who: str = "memplan", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.who = who

    def error(self, message: str):
        print_error(f"{message} (see '{self.prog} --help')", self.who)
        raise SystemExit(2)

    def _print_message(self, message: str, file=None) -> None:
        """argparse's, but a help that cannot be written (``--help > /dev/full``) is one error line and exit 2:
        argparse dropped every OSError, and the help was lost with exit 0. Flushed here, so a failure shows
        before the exit, not in Python's flush after it. A reader that left (``| head -1``) took what it wanted,
        and a stderr that fails has nowhere to report it: both stay silent, as argparse has them."""
        file = file or sys.stderr   # (stdout closed: argparse's choice, stderr)
        if not message or file is None:
            return
        try:
            file.write(message)
            file.flush()
        except BrokenPipeError:
            pass
        except OSError as exc:
            if file is sys.stderr:
                return
            print_error(f"cannot write to stdout: {exc.strerror or exc}", self.who)
            raise SystemExit(2) from None


def _parse(text: str, cast: Callable[[str], float], what: str):
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def size(text: str) -> int:
    """Bytes with an optional binary suffix: 512, 64K, 1.5M, 2G (finite, below 2**63).

    An integer is read as one, exactly: a float holds integers exactly only up to 2**53, and a capacity
    or budget of 2**53 + 1 bytes read as 2**53 refuses a packing that fits. Only a fraction or an exponent
    (1.5M, 1e9) goes through ``float``, rounded down to whole bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    number = t[:-1] if mult > 1 else t
    v: int | float
    try:
        v = int(number) * mult
    except ValueError:
        try:
            v = float(number) * mult
        except ValueError:   # the text as given: 'K' is no byte count ('' named nothing)
            raise argparse.ArgumentTypeError(f"not a byte count: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"negative byte count: {text!r}")
    if not v < MAX_BYTES:  # also inf and nan
        raise argparse.ArgumentTypeError(f"byte count {text!r} is not finite and below 2**63")
    return int(v)


def count(text: str) -> int:
    n = _parse(text, int, "a count")
    if n < 0:
        raise argparse.ArgumentTypeError(f"negative count: {text!r}")
    if n >= MAX_BYTES:
        raise argparse.ArgumentTypeError(f"count {text!r} is not below 2**63")
    return n


def positive(text: str) -> int:
    n = count(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def at_most(top: int, what: str) -> Callable[[str], int]:
    """A count in 1..top (``what`` names the limit in the message)."""
    def parse(text: str) -> int:
        n = positive(text)
        if n > top:
            raise argparse.ArgumentTypeError(f"{n} is more than {top} {what}")
        return n

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def streams(text: str) -> int | str:
    """A stream count (N >= 1) or 'auto'."""
    if text.strip().lower() == "auto":
        return "auto"
    return at_most(MAX_STREAMS, "streams")(text)


def seed(text: str) -> int:
    n = _parse(text, int, "an integer")
    if not 0 <= n < 1 << 31:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not in 0..2**31-1")
    return n


def dim(text: str) -> int:
    """A non-negative integer below 2**63 (ONNX dimensions are int64)."""
    n = _parse(text, int, "an integer")
    if not 0 <= n < MAX_BYTES:
        raise argparse.ArgumentTypeError(f"{text!r} is not in 0..2**63-1")
    return n


def alignment(text: str) -> int:
    """A graph alignment: a power of two up to 2**48 (``graph.check_alignment``), refused here naming the
    option, before an import that may take minutes (it was refused after, naming the model file)."""
    from .errors import GraphError
    from .graph import check_alignment

    n = _parse(text, int, "an integer")
    try:
        check_alignment(n)
    except GraphError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return n


def seconds(text: str) -> float:
    v = _parse(text, float, "a number of seconds")
    if not 0 < v <= MAX_TIME:  # also nan
        raise argparse.ArgumentTypeError(f"seconds must be a number above 0 and at most {MAX_TIME:g}: {text!r}")
    return v


def microseconds(text: str) -> float:
    v = _parse(text, float, "a number of microseconds")
    if not 0 <= v <= MAX_TIME:
        raise argparse.ArgumentTypeError(f"microseconds must be finite, >= 0 and at most {MAX_TIME:g}: {text!r}")
    return v + 0.0   # -0 is 0 ('-0' printed "at -0 us")


def factor(text: str) -> float:
    """A finite multiple >= 1 of the serial arena, at most ``MAX_TIME``: a budget below the serial plan's
    arena fits no schedule, which the benchmark would only find out after planning every graph."""
    v = _parse(text, float, "a number")
    if not 1 <= v <= MAX_TIME:  # also nan and inf
        raise argparse.ArgumentTypeError(f"must be a multiple of the serial arena, a finite number >= 1 and at most "
                                         f"{MAX_TIME:g}: {text!r}")
    return v


def choice(names: tuple[str, ...]) -> Callable[[str], str]:
    """One of ``names``, exactly."""
    def parse(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"unknown {text!r} (choose from {', '.join(names)})")
        return text

    parse.__name__ = "name"
    return parse


def comma_list(item: Callable[[str], object]) -> Callable[[str], str]:
    """Comma-separated values that ``item`` each accepts (at least one); the text itself is returned."""
    def parse(text: str) -> str:
        parts = [x for x in text.split(",") if x.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"no values in {text!r}")
        for x in parts:
            item(x.strip())
        return text

    parse.__name__ = "list"
    return parse


def path(text: str) -> str:
    """A file or directory path: any text but the empty one (which names no file)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    return text
