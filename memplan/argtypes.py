"""Command-line values: each parser turns one option's text into a checked number or says why not.

Every command (``cli.py`` and the subcommands registered from ``importers/`` and ``viz/``) parses its
options with these, so a value means the same and fails the same way everywhere: argparse turns an
``ArgumentTypeError`` into a one-line usage error, exit 2.
"""

from __future__ import annotations

import argparse
import decimal
import re
import sys
from collections.abc import Callable

from .errors import OptionSpelling
from .errors import UnusedOption as UnusedOption  # (held, as a FieldWarning is, for one ``memplan: warning:`` line)
from .errors import counted as counted  # (the summary lines' "1 node": the errors' messages count things too)
from .planfile import INT64, MAX_STREAMS
from .show import printable

#: bytes, counts and capacities are int64 everywhere
MAX_BYTES = INT64
#: a memory factor (``memplan bench schedule --budget``): beyond this is a typo, not a budget. (The bounds of the
#: options the library shares, ``--time-limit``, ``--event-us``, ``--workers``, ``--seed``, are the library's own:
#: ``seconds``, ``microseconds``, ``workers`` and ``seed`` read them, and their wording, where it defines them.)
MAX_FACTOR = 1e9
#: nodes of a generated benchmark graph (``memplan bench``: the scale suite's largest is 10**6)
#: (``examples.MAX_NODES``, the bound of ``examples.chain`` and ``moe``, is the same)
MAX_NODES = 10 ** 7
#: decoder layers of a generated Llama graph (real models have at most a few hundred): ``examples.MAX_LAYERS``,
#: repeated here so that parsing options loads no graph code
MAX_LAYERS = 1024
#: what every single-file output option's ``--help`` says of an existing file (``plan -o``, ``--graph-out``, ``csv -o``,
#: ``import -o``, ``draw -o``, ``trace -o``, ``bench --json``): one rule for all of them, said where it is used. Only
#: ``example -o DIR``, several files into a directory, refuses a file of its own name with other bytes.
REPLACES = "written atomically; an existing file there is replaced, never one of the command's inputs"


#: file name endings that say a file is no text document: a picture (``memplan draw``'s), a model (``memplan import``'s
#: input), and what each is
NOT_TEXT_SUFFIXES = ((".png", "a picture"), (".svg", "a picture"), (".pdf", "a picture"), (".jpg", "a picture"),
                     (".jpeg", "a picture"), (".gif", "a picture"), (".webp", "a picture"),
                     (".onnx", "an ONNX model"), (".pt2", "a torch.export program"))


def check_text_output(label: str, path: object, what: str, suffix: str = ".json", hint: str = "") -> None:
    """Refuse, before any work, a text output (``what``: "a plan is JSON", a file to end in ``suffix``) whose file name says
    it is a picture or a model (``hint``: what to add). Why: ``memplan import m.onnx -o m2.onnx`` wrote graph JSON into a
    file named an ONNX model (exit 0), which onnxruntime and ``memplan import`` then refuse as no model, and ``plan -o
    p.png``, ``csv -o o.pdf`` or ``bench --json r.png`` JSON or CSV into a file named a picture, where ``trace -o t.png``
    was refused (round 33) for that reason."""
    if not isinstance(path, str) or path == "-":
        return
    from .errors import MemplanError

    name = path.lower()
    kind = next((k for end, k in NOT_TEXT_SUFFIXES if name.endswith(end)), None)
    if kind is not None:
        raise MemplanError(f"{label} {path}: {what}, not {kind}: give the file a name that says so (such as "
                           f"*{suffix}){hint}")


def after_dashes(option: str) -> str:
    """What to say of one of a command's own options given after ``--``, which ends the options (argparse then reads it
    as a file name, or a required option as missing): the one wording of the parser's and ``cli._nearest_option``'s."""
    return f"{option} comes after '--', which ends the options: give it before the '--'"


def print_error(message: str, who: str = "memplan", stream=None) -> None:
    """``memplan: error: ...`` (``who``: the command) on stderr (or ``stream``) as one line, whatever the message (a
    library's exception text from deep inside, an id or a path from the input) contains: what is not printable is
    escaped, a newline or carriage return too (as ``\\n``, ``\\r``: ``repr``'s escapes). Why not lines joined with " / ", as
    before: a path with a newline (``-o $'x\\ny/p.json'``) then read "x / y/p.json", which names another path, and
    a path holding " / " could not be told from a joined line; the summary line (``print_note``) escaped it already."""
    line = _bounded(printable(str(message).strip()))
    print(f"{who}: error: {line}", file=sys.stderr if stream is None else stream)


#: the longest error line: its start names the file and the element, its end what is wrong
MAX_ERROR_CHARS = 2000


def _bounded(line: str) -> str:
    """``line`` with its middle cut out past ``MAX_ERROR_CHARS``, saying how much. Why: messages quote ids, names
    and paths from the input whole, and JSON allows them any length (a node id of 100,000 characters made the one
    error line 100 KB, a 1 GiB file's could make it a gigabyte)."""
    if len(line) <= MAX_ERROR_CHARS:
        return line
    head, tail = MAX_ERROR_CHARS * 2 // 3, MAX_ERROR_CHARS // 4
    return f"{line[:head]}...({len(line) - head - tail} characters cut)...{line[-tail:]}"


def print_note(text: str) -> None:
    """A command's summary line (``OUT: arena ...``) on stderr, ``printable``: it leads with an output path, which
    may hold an ANSI escape (the terminal obeyed it) or a newline (the one line became two), as an error
    message's path may (``print_error``) and ``memplan example``'s paths on stdout already were escaped."""
    print(printable(text), file=sys.stderr)




class StoreOnce(argparse._StoreAction):
    """argparse's ``store``, but an option given twice is refused (``-o a.json -o b.json`` kept the last and
    wrote one file where the user may have meant two; ``--seed 1 --seed 2`` ran one seed), and so is a value
    repeated in one list option (``--nodes 100 100`` ran the same case twice): every list option is a set.
    What the option was given is kept in a private set on the namespace, as argparse keeps its own state."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string is not None:
            given = namespace.__dict__.setdefault("_memplan_given", set())
            if self.dest in given:   # quoted as typed ('5', '2G'), not as parsed ('5.0', '2147483648')
                typed = parser.__dict__.get("_memplan_typed", values)
                # a list option given no values (nargs="*": ``--wide --wide``) read "as --wide ": no value shown
                second = f"{option_string} {_shown(typed)}" if typed != [] else f"{option_string} with no values"
                parser.error(f"argument {'/'.join(self.option_strings)}: given twice (the second time as "
                             f"{second}): give it once")
            given.add(self.dest)
        if isinstance(values, list):
            first: dict = {}
            for v in values:
                if v in first:
                    parser.error(f"argument {'/'.join(self.option_strings) or self.dest}: repeated value "
                                 f"{_shown(v)} (each value at most once)")
                first[v] = v
        super().__call__(parser, namespace, values, option_string)


def given(args: argparse.Namespace, dest: str) -> bool:
    """Whether option ``dest`` was on the command line, not left at its default: ``StoreOnce`` records each
    option it stores (so ``--seed 0`` is given, though 0 is the default), and a flag is given when it is set.
    Why: an option that the other options leave without effect is refused (``idle``) only when the user gave
    it; a default never asked for anything."""
    return dest in getattr(args, "_memplan_given", ()) or getattr(args, dest, None) is True


def idle(option: str, where: str, why: str) -> None:
    """Refuse ``option``, which has no effect ``where`` (``"with --solver greedy"``, ``"without --streams"``:
    the options as the user typed them), saying ``why``: an option accepted and then ignored reads as one that
    did its work (``--time-limit 60 --solver greedy`` ran greedy's one pass and said nothing)."""
    from .errors import MemplanError

    raise MemplanError(f"{option} has no effect {where}: {why}")




def unused(option: str, where: str, why: str) -> None:
    """Warn, on one stderr line, that ``option`` has no effect ``where``, and go on. Why a warning and not
    ``idle``'s refusal for the solver and scheduling options of ``plan`` and ``csv``: scripts sweep solvers with
    one shared ``--time-limit``/``--seed`` (the exact solvers read them, the heuristics do not), and a refusal
    would stop the sweep at its first heuristic; said once, the option no longer reads as one that did work.
    Said once the command is through (``UnusedOption``, held by ``cli.main``), and not where it fails: printed at
    once, it came before the error of a command that then failed on its input (``plan bad.json --seed 3``: two
    lines on stderr, where an error is one)."""
    import warnings

    warnings.warn(f"{option} has no effect {where}: {why}; ignored", UnusedOption, stacklevel=2)


def warning_line(message, category, filename, lineno, file=None, line=None, _default=None,
                 held: list[tuple[type[Warning], str]] | None = None) -> None:
    """``warnings.showwarning`` for the CLI: a library ``FieldWarning`` (its text names the file and field) or an
    ``UnusedOption`` is held in ``held``, with its category, for one ``memplan: warning:`` line each once the
    command is through (an error then stays one line), any other warning shown as Python shows it
    (``_default``)."""
    from .errors import FieldWarning

    if issubclass(category, (FieldWarning, UnusedOption)) and held is not None:
        text = message.spelled(FLAGS) if isinstance(message, UnusedOption) else str(message)
        if (category, text) not in held:   # (each said once, though read or warned of twice)
            held.append((category, text))
    elif _default is not None:
        _default(message, category, filename, lineno, file, line)


#: the library's keyword options that ``memplan plan`` takes as flags of the same meaning (``--max-events`` ...)
PLAN_FLAGS = frozenset(("streams", "max_events", "memory_budget", "devices", "device_capacity", "alignment",
                        "time_limit", "seed", "workers", "solver"))


def flag_spelling(name: str, text: str) -> str:
    """A library keyword option as the command line writes it (``UnusedOption.spelled``): ``max_events`` given 3 is
    ``--max-events 3``, ``streams`` of ``'auto'`` is ``--streams auto``; one the command has no flag for
    (``cost_model``) stays as the library spells it, rather than naming a flag that does not exist."""
    if name not in PLAN_FLAGS:
        return f"{name}={text}"
    return f"--{name.replace('_', '-')} {text.strip(chr(39))}"


def flag_word(name: str) -> str:
    """A library keyword option's name alone, as the command's prose says it (``memory_budget``: "memory budget"):
    the thing it sets, not a flag the user gave ("planned again with the 1000 B it leaves ... as a memory budget")."""
    return name.replace("_", " ") if name in PLAN_FLAGS else name


#: the library's options as the command line writes them (``errors.NamesOptions``): ``--devices 40`` for
#: ``devices=40``, ``--device-capacity 1024`` for "the device_capacity of 1024", "memory budget" for ``memory_budget``
FLAGS = OptionSpelling(flag_spelling, flag_spelling, flag_word)


def print_warning(text: str) -> None:
    """One ``memplan: warning:`` line on stderr, printable and bounded like an error line."""
    print(f"memplan: warning: {_bounded(printable(text))}", file=sys.stderr)


def _shown(values) -> str:
    """An option's value(s) as the user typed them, for a message."""
    return " ".join(map(str, values)) if isinstance(values, list) else str(values)


def _strips_option_dashes() -> bool:
    """Whether this Python's argparse drops a '--' from an option's own value: 3.11 does (and 3.12 before its
    fix), so ``--devices=--`` stored ``[]``, past the option's type check (a TypeError traceback from
    ``plan``; ``--solver=--`` "unknown solver []"; ``--graph-out=--`` ignored). Asked of argparse itself, so a
    Python that keeps the value gets nothing added."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--x")
    return probe.parse_known_args(["--x=--"])[0].x != "--"


_STRIPS_OPTION_DASHES = _strips_option_dashes()


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming it and where to find help (exit 2). ``who`` starts
    the line (the runtime's tools give their own name)."""

    #: whether options store with ``StoreOnce`` (``CommandParser``)
    once = False

    def __init__(self, *args, who: str = "memplan", **kwargs) -> None:
        # no prefix matching, for the ``memplan`` command and every tool alike (``runtime.aten.sweep``,
        # ``runtime.bench``, ``runtime.tools.*``): ``--dev cuda`` was taken as ``--device cuda`` by the tools
        # while the command refused it, and a script's abbreviation would change meaning the day an option
        # sharing its prefix is added; the docs promise none
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.who = who
        if self.once:
            self.register("action", None, StoreOnce)
            self.register("action", "store", StoreOnce)

    def error(self, message: str):
        print_error(f"{message}{self._dash_value_hint(message)}{self._unknown_hint(message)} (see '{self.prog} --help')",
                    self.who)
        raise SystemExit(2)

    def _unknown_hint(self, message: str) -> str:
        """What to add to argparse's "the following arguments are required" where the command line also holds an
        option this command does not know (the nearest one it knows named). Why: argparse checks what is missing
        before it lists what it did not recognise, so a misspelt option (``plan G --ouptut P``, ``memplan --bogus``)
        was "the following arguments are required: -o/--output" alone, naming neither the typo nor the fix."""
        argv = getattr(self, "_memplan_argv", None)
        if not message.startswith("the following arguments are required") or not argv:
            return ""
        import difflib

        known = list(self._option_string_actions)
        for k, token in enumerate(argv):
            if token == "--":   # (what follows is no option: a required one there is named as such; not another,
                # which may be a file so named, the reason to give '--': ``plan -- --streams`` plans a file '--streams')
                missing = {n for part in message.partition(": ")[2].split(", ") for n in part.split("/")}
                after = next((t.partition("=")[0] for t in argv[k + 1:]
                              if t.partition("=")[0] in known and t.partition("=")[0] in missing), None)
                return f"; {after_dashes(after)}" if after else ""
            name = token.partition("=")[0]
            if not name.startswith("-") or name == "-" or re.fullmatch(r"-[0-9.].*", name):
                continue
            if name in known or (self.allow_abbrev and any(k.startswith(name) for k in known)):   # (or an abbreviation
                continue
            dashed = "--" + name.lstrip("-").replace("_", "-")
            near = [dashed] if dashed in known else difflib.get_close_matches(name, known, n=1)
            return f"; unrecognized option {name!r}" + (f" (did you mean {near[0]}?)" if near else "")
        return ""

    def _dash_value_hint(self, message: str) -> str:
        """What to add to argparse's "expected one argument" where the option's value was there but starts with '-'
        (``-o -/x.json``, ``--time-limit -inf``): argparse takes such a token for an option, and the line read as if
        no value had been given. Not for a token that is one of the command's options (``-o -q``: a value left out)."""
        m = re.match(r"argument ([^:]+): expected (?:one|at least one) argument", message)
        argv = getattr(self, "_memplan_argv", None)
        if not m or not argv:
            return ""
        names = m.group(1).split("/")
        for option, value in zip(argv, argv[1:]):
            if (option in names and value.startswith("-") and value not in ("-", "--")
                    and value.partition("=")[0] not in self._option_string_actions):
                long = next((n for n in names if n.startswith("--")), option)
                return f" (it was followed by {value!r}, read as an option: give a value that starts with '-' as {long}={value})"
        return ""

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, with '--' as POSIX has it for each command (memplan's and the runtime tools'): the
        first '--' among a command's own arguments ends its options and is no argument; every later one is
        an argument (a positional, or one unrecognized). A command and its subcommand each have their own
        first '--' (``memplan -- plan G -o P --``): the subcommand's arguments are parsed by its own parser,
        as argparse does.

        Why here: Python 3.11 (and 3.12/3.13 before their fixes) drops that first '--' only when a positional
        follows it; with none (``plan G -o P --``) it came back as an unrecognized argument, and ``main``'s
        count of the '--'s in the whole command line missed it once a '--' also stood before the command
        (``memplan -- plan G -o P --`` was refused). Each parser sees only its own arguments: the first
        '--' was dropped when every '--' it was given is accounted for by the extras and the values parsed."""
        given = list(sys.argv[1:] if args is None else args)
        self._memplan_argv = given   # (for ``_dash_value_hint``)
        ns, extras = super().parse_known_args(given, namespace)
        dashes = given.count("--")
        if dashes and extras.count("--") + _dashes_in(ns, _positional_dests(self)) == dashes:
            extras.remove("--")   # the ending '--' is still there
        return ns, extras

    def _get_values(self, action, arg_strings):
        """argparse's, but an option's value '--' (``--devices=--``) is the text '--', as POSIX and later
        Pythons have it: it goes to the option's type and is named there (``_STRIPS_OPTION_DASHES``)."""
        if _STRIPS_OPTION_DASHES and action.option_strings and "--" in arg_strings:
            arg_strings = ["--", *arg_strings]   # the one '--' argparse removes
        # the text of the option being parsed, for ``StoreOnce``'s message (argparse calls the action next)
        self._memplan_typed = arg_strings[0] if len(arg_strings) == 1 and action.nargs is None else list(arg_strings)
        return super()._get_values(action, arg_strings)

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
            from .files import drop_output

            drop_output(file)   # (the help still buffered failed again at exit: "Exception ignored", exit 120)
            raise SystemExit(2) from None


class CommandParser(OneLineParser):
    """The ``memplan`` command's parser (and its subcommands', which argparse makes of the same class): also
    an option given twice, or a list option with a repeated value, is a usage mistake (``StoreOnce``)."""

    once = True

    def __init__(self, *args, **kwargs) -> None:
        # no prefix matching (``OneLineParser``'s default): ``--str 2`` was taken as ``--streams 2`` (and ``--time 5``
        # as ``--time-limit``); every subcommand's parser is of this class: argparse makes them with the parent's
        super().__init__(*args, **kwargs)

    def _get_values(self, action, arg_strings):
        """argparse's, but a '--' before a subcommand's name is dropped: Python 3.11 hands it to the
        subcommand choice (``memplan -- plan G -o P`` was "invalid choice: '--'"); later Pythons drop it."""
        if action.nargs == argparse.PARSER and arg_strings[:1] == ["--"]:
            arg_strings = arg_strings[1:]
        return super()._get_values(action, arg_strings)


def _dashes_in(namespace: argparse.Namespace, dests: set[str]) -> int:
    """How many '--' the positionals ``dests`` hold (``plan -o P -- --`` plans the file '--'). An option's
    value '--' (``--out=--``) came from no '--' argument of its own, so it is not counted: counted, it took the
    place of the ending '--' (``plan G --out=-- --`` was "unrecognized arguments: --")."""
    n = 0
    for k, v in vars(namespace).items():
        if k not in dests:
            continue
        if isinstance(v, str):
            n += v == "--"
        elif isinstance(v, list):
            n += sum(x == "--" for x in v if isinstance(x, str))
    return n


def _positional_dests(parser: argparse.ArgumentParser) -> set[str]:
    """The dests of ``parser``'s positionals and of its subcommands' (whose values its namespace receives)."""
    dests: set[str] = set()
    for action in parser._actions:
        if not action.option_strings:
            dests.add(action.dest)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                dests |= _positional_dests(sub)
    return dests


#: an integer as memplan reads one: ASCII digits, an optional '-' (so that '-1' is named a negative count).
#: ``int()`` also takes '1_000', other scripts' digits ('١٢') and surrounding whitespace, which no option
#: means (a pasted '\u0661' or ' 5' is a mistake to name, not a number to guess)
_INT = re.compile(r"-?[0-9]+")
#: a real number: the same digits, a fraction and an exponent; ``float()`` also takes 'nan', 'inf', 'infinity'
_REAL = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_FLOAT = re.compile(_REAL)
#: a byte count: a number with an optional binary suffix K, M, G or T (and an optional i, B: KiB, KB)
_SIZE = re.compile(rf"(?P<number>{_REAL})(?:(?P<unit>[KMGT])I?)?B?", re.IGNORECASE)
_DIGITS = "plain ASCII decimal digits"
#: a byte count's decimal exponent beyond which it is past 2**63 (above) or below one byte (below) whatever its unit
#: (2**63 < 1e19, a unit <= 2**40 < 1e13): decided before any arithmetic, whose exponent range Decimal caps
_SIZE_DIGITS = 40


def integer(text: str, what: str = "an integer") -> int:
    """``text`` as an int if it is one written in ASCII decimal (``_INT``), else ``ArgumentTypeError``
    naming ``what``; shared with ``--dim NAME=VALUE``."""
    if not _INT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not {what}: {text!r} ({_DIGITS})")
    try:
        return int(text)
    except ValueError:   # more digits than Python converts (4300)
        raise argparse.ArgumentTypeError(f"not {what}: {len(text)} digits are too many") from None


def real(text: str, what: str) -> float:
    """``text`` as a float if it is a number written in ASCII (``_FLOAT``: no 'nan', 'inf', '1_0')."""
    if not _FLOAT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not {what}: {text!r} ({_DIGITS}, an optional fraction and exponent)")
    return float(text)


def size(text: str) -> int:
    """Bytes with an optional binary suffix: 512, 64K, 1.5M, 2G (finite, below 2**63).

    An integer is read as one, exactly: a float holds integers exactly only up to 2**53, and a capacity
    or budget of 2**53 + 1 bytes read as 2**53 refuses a packing that fits. A fraction or an exponent
    (1.5M, 1e9, 9007199254740993.0) is read as a decimal, exactly too, and must come to whole bytes: ``1.5``,
    ``0.5`` or ``1.0001K`` is refused naming the value, as the library refuses a budget or capacity of 1.5 and a graph
    a size of 10.5 (a byte count is a whole number). Why: they were rounded down silently, so ``--memory-budget
    0.5`` planned against a budget of 0 B and ``--capacity 99.9`` packed into 99 B with nothing said.
    Digits are ASCII, as for counts."""
    m = _SIZE.fullmatch(text)
    if not m:   # the text as given: 'K' is no byte count ('' named nothing)
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r} ({_DIGITS}, an optional fraction and exponent, "
                                         "and an optional K, M, G or T)")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get((m["unit"] or "").upper(), 1)
    number = m["number"]
    v: int | decimal.Decimal
    if _INT.fullmatch(number):
        v = integer(number, "a byte count") * mult
    else:   # exact: enough digits for the number times the unit
        v = _decimal_bytes(number, mult, text)
        if v != v.to_integral_value(decimal.ROUND_FLOOR):
            raise argparse.ArgumentTypeError(f"not a whole number of bytes: {text!r} is {_bytes_text(v)} B (a byte "
                                             f"count is whole: give {_whole_bytes(v)})")
    if v < 0:
        raise argparse.ArgumentTypeError(f"negative byte count: {text!r}")
    if not v < MAX_BYTES:  # also inf and nan
        raise argparse.ArgumentTypeError(f"byte count {text!r} is not finite and below 2**63")
    return int(v)


def capacities(text: str) -> int | tuple[int, ...]:
    """``--device-capacity``: one byte count (each device's), or a comma list of one per device, device 0 first
    (two different GPUs: ``80G,40G``); a bad one is named by its device."""
    parts = text.split(",")
    if len(parts) == 1:
        return size(text)
    out = []
    for d, part in enumerate(parts):
        try:
            out.append(size(part))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"device {d}: {exc}") from None
    return tuple(out)


def _decimal_bytes(number: str, mult: int, text: str) -> decimal.Decimal:
    """``number`` (``_REAL``, with a fraction or an exponent) times ``mult``, exactly. Its exponent is read as a
    Python int and judged before any Decimal sees it: Decimal refuses exponents past about 10**18 with
    ``InvalidOperation`` (a traceback from ``--memory-budget 1e99999999999999999999``), so a number past 2**63
    or below one byte whatever its unit is decided from the exponent alone."""
    mantissa, _, exp = number.lower().partition("e")
    digits = exp.lstrip("+-").lstrip("0")
    if len(digits) > 18:   # (int() of thousands of digits raises; the sign is all that matters here)
        e = -(10 ** 19) if exp.startswith("-") else 10 ** 19
    else:
        e = int(exp or 0)
    m = decimal.Decimal(mantissa)   # (no exponent: exact, at most the text's digits)
    if m < 0:
        raise argparse.ArgumentTypeError(f"negative byte count: {text!r}")
    if not m:
        return m
    if m.adjusted() + e > _SIZE_DIGITS:
        raise argparse.ArgumentTypeError(f"byte count {text!r} is not finite and below 2**63")
    if m.adjusted() + e < -_SIZE_DIGITS:   # below one byte whatever the unit: no whole number of bytes
        raise argparse.ArgumentTypeError(f"not a whole number of bytes: {text!r} is above 0 and below one byte (a byte "
                                         "count is whole: give 0 or 1)")
    with decimal.localcontext(decimal.Context(prec=len(number) + 20, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)):
        return m.scaleb(e) * mult


def _bytes_text(v: decimal.Decimal) -> str:
    """A fractional byte count for a message: its digits as they are, or about 17 of them where there are more."""
    text = f"{v:f}"
    return text if len(text) <= 24 else f"about {v:.17g}"


def _whole_bytes(v: decimal.Decimal) -> str:
    """The two whole byte counts around the fractional ``v`` (>= 0), as the message suggests them."""
    low = int(v.to_integral_value(decimal.ROUND_FLOOR))
    return f"{low} or {low + 1}" if low + 1 < MAX_BYTES else str(low)


def count(text: str) -> int:
    n = integer(text, "a count")
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


def _above(text: str, top: int) -> str | None:
    """``text`` (a count's text) as a message shows a count above ``top``, or None where it is no integer or not above.
    Judged before ``positive``'s own bound of 2**63, which said "count '99999999999999999999' is not below 2**63" of
    ``--streams`` 99999999999999999999, a bound of no meaning for an option whose limit is 1024."""
    if not _INT.fullmatch(text):
        return None
    n = integer(text, "a count")
    if n <= top:
        return None
    digits = str(n)
    return digits if len(digits) <= 30 else f"{digits[:12]}...({len(digits)} digits)"


def at_most(top: int, what: str) -> Callable[[str], int]:
    """A count in 1..top (``what`` names the limit in the message)."""
    def parse(text: str) -> int:
        above = _above(text, top)
        if above is not None:
            raise argparse.ArgumentTypeError(f"{above} is more than {top} {what}")
        return positive(text)

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def at_most_nodes(per: int, unit: str) -> Callable[[str], int]:
    """A count of ``unit`` of ``per`` nodes each (a transformer's layers, a MoE's blocks), in 1..``MAX_NODES // per``.
    Why: these counts were held to ``MAX_NODES`` as if each were one node, so ``--transformer 9999999`` (200 million
    nodes) was taken and began building, and ``--transformer 100000000`` was refused as "more than 10000000 nodes"."""
    top = MAX_NODES // per

    def parse(text: str) -> int:
        above = _above(text, top)
        if above is not None:
            raise argparse.ArgumentTypeError(f"{above} {unit} is more than {top} {unit} ({per} nodes each: at most "
                                             f"{MAX_NODES} nodes)")
        return positive(text)

    parse.__name__ = "count"
    return parse


def streams(text: str) -> int | str:
    """A stream count (N >= 1) or 'auto'."""
    if text.lower() == "auto":
        return "auto"
    if not _INT.fullmatch(text):   # ("not a count" alone hid that 'auto' is the other value taken)
        raise argparse.ArgumentTypeError(f"not a count or 'auto': {text!r} (1..{MAX_STREAMS} in {_DIGITS}, or auto)")
    return at_most(MAX_STREAMS, "streams")(text)


def seed(text: str) -> int:
    """A solver seed by the library's rule (``SolveOptions.seed``, same bound and words)."""
    from .solvers.options import SEED_LIMIT, SEED_RULE

    n = integer(text)
    if not 0 <= n < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be {SEED_RULE}, not {text!r}")
    return n


def workers(text: str) -> int:
    """CP-SAT workers by the library's rule (``SolveOptions.workers``, same bound and words)."""
    from .solvers.options import MAX_WORKERS, WORKERS_RULE

    n = integer(text)
    if not 1 <= n <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be {WORKERS_RULE}, not {text!r}")
    return n


def dim(text: str) -> int:
    """A non-negative integer below 2**63 (ONNX dimensions are int64)."""
    n = integer(text)
    if not 0 <= n < MAX_BYTES:
        raise argparse.ArgumentTypeError(f"{text!r} is not in 0..2**63-1")
    return n


def alignment(text: str) -> int:
    """A graph alignment: a power of two up to 2**48 (``graph.check_alignment``), refused here naming the
    option, before an import that may take minutes (it was refused after, naming the model file)."""
    from .errors import GraphError
    from .graph import check_alignment

    n = integer(text)
    try:
        check_alignment(n)
    except GraphError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return n


def seconds(text: str) -> float:
    """A time limit by the library's rule (``SolveOptions.time_limit``, same bound and words)."""
    from .solvers.options import MAX_SECONDS, SECONDS_RULE

    v = real(text, "a number of seconds")
    if not 0 < v <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be {SECONDS_RULE}, not {text!r}")
    return v


def microseconds(text: str) -> float:
    """An event latency by the library's rule (a cost model's ``event_us``, same bound and words): the CLI
    refused ``--event-us`` above 1e9 where ``CostModel(event_us=...)`` takes up to 1e15."""
    from .optimize.cost import EVENT_US_RULE, is_event_us

    v = real(text, "a number of microseconds")
    if not is_event_us(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not {EVENT_US_RULE}")
    return v + 0.0   # -0 is 0 ('-0' printed "at -0 us")


def factor(text: str) -> float:
    """A finite multiple >= 1 of the serial arena, at most ``MAX_FACTOR``: below the serial plan's arena only a
    low-memory serial order may fit, and most graphs' plans would be refused after planning every candidate."""
    v = real(text, "a number")
    if not 1 <= v <= MAX_FACTOR:  # also nan and inf
        raise argparse.ArgumentTypeError(f"must be a multiple of the serial arena, a finite number >= 1 and at most "
                                         f"{MAX_FACTOR:g}: {text!r}")
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
    """Comma-separated values that ``item`` each accepts (at least one, each at most once: a list option is a
    set, and ``--solvers greedy,greedy`` ran every case twice); the text itself is returned. Values are taken
    as written between the commas, as every option's value is: ' 50' is no count and ' greedy' no solver."""
    def parse(text: str) -> str:
        parts = text.split(",")
        if not any(x.strip() for x in parts):
            raise argparse.ArgumentTypeError(f"no values in {text!r}")
        seen: dict[object, str] = {}
        for x in parts:
            if not x:
                raise argparse.ArgumentTypeError(f"an empty value in {text!r} (a stray comma?)")
            if x != x.strip():
                raise argparse.ArgumentTypeError(f"value {x!r} in {text!r} has spaces around it")
            v = item(x)
            if v in seen:
                same = f" (the same as {seen[v]!r})" if seen[v] != x else ""
                raise argparse.ArgumentTypeError(f"repeated value {x!r}{same} in {text!r} (each value at most once)")
            seen[v] = x
        return text

    parse.__name__ = "list"
    return parse


def path(text: str) -> str:
    """A file or directory path: any text but the empty one (which names no file)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    return text
