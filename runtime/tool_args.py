"""Option checks shared by the runtime's GPU tools (``runtime.bench``, ``runtime.tools.*``): every option is
checked, and the GPU stack looked for, before a kernel library is built, so a bad value or a machine
without pycuda gets one line and exit status 2, as the ``memplan`` command gives, instead of a traceback
minutes into a run. Imports nothing that needs a GPU."""

from __future__ import annotations

import argparse
import math
import re

from memplan.argtypes import OneLineParser, print_error
from memplan.argtypes import integer as strict
from memplan.argtypes import real as strict_real

from .models import llama as L


class ToolParser(OneLineParser):
    """memplan's one-line usage errors (an unknown option, a value its ``type`` refuses: ``NAME: error: ...``
    as the tools' own checks print, exit status 2), named after the tool (``prog`` without ``python -m`` and
    ``runtime.tools.``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.who = self.prog.removeprefix("python -m ").removeprefix("runtime.tools.")


def doc_summary(doc: str) -> str:
    """The first sentence of a module's docstring, its lines joined: the ``--help`` description. Why: four tools
    took the docstring's first line, a sentence cut where it wraps ("what the per-call check of the Python values
    ``forward`` reads", "side by")."""
    text = " ".join(doc.split("\n\n", 1)[0].split())
    end = re.search(r"\.(?=\s|$)", text)
    return text[:end.end()] if end else text


class ToolArgError(ValueError):
    """A tool option that cannot run; the message names it."""


def _values(text: str, option: str, read) -> list:
    """The comma-separated values of ``text``, each ``read(part)``, as the ``memplan`` command takes a list
    (``memplan.argtypes.comma_list``): a list option is a set, so a repeated value (``--configs tiny,tiny``,
    ``--batches 16,016``) is refused naming it (each ran twice, its rows reported twice); so are an empty value
    (``1,,4``: a stray comma) and spaces around one (``1b, 8b``, stripped before for names only)."""
    text = str(text)
    seen: dict = {}
    for part in text.split(","):
        if not part:
            raise ToolArgError(f"{option} {text!r}: an empty value (a stray comma?)")
        if part != part.strip():
            raise ToolArgError(f"{option} {text!r}: value {part!r} has spaces around it")
        v = read(part)
        if v in seen:
            same = f" (the same as {seen[v]!r})" if seen[v] != part else ""
            raise ToolArgError(f"{option} {text!r}: repeated value {part!r}{same} (each value at most once)")
        seen[v] = part
    return list(seen)


def int_list(text: str, option: str, *, lo: int = 1, hi: int | None = None) -> list[int]:
    """``"1,4,16"`` -> ``[1, 4, 16]``; every value an integer in ``lo .. hi``, read as the ``memplan`` command
    reads one (``memplan.argtypes.integer``: ASCII decimal digits, no spaces around them), each at most once.
    Python's ``int()`` also took '１６', '٣', '1_6' and ' 16', which no one means and the command refuses."""
    def read(part: str) -> int:
        try:
            v = strict(part)
        except argparse.ArgumentTypeError as exc:
            why = "plain ASCII decimal digits" if "digits are too many" not in str(exc) else str(exc)
            raise ToolArgError(f"{option} {text!r}: {part!r} is not an integer ({why})") from None
        if v < lo or (hi is not None and v > hi):
            want = f"at least {lo}" if hi is None else f"{lo}..{hi}"
            raise ToolArgError(f"{option} {text!r}: {v} is not {want}")
        return v

    return _values(text, option, read)


def count_arg(text: str) -> int:
    """An argparse ``type`` for a tool's single integer option (``--rounds``, ``--ctx``, ``--devices``), read as
    ``int_list`` reads each value (``type=int`` took '１６'); argparse makes a refusal its one line, exit 2."""
    v = strict(text)
    if abs(v) >= 1 << 63:
        raise argparse.ArgumentTypeError(f"{text!r} is not below 2**63 in size")
    return v


count_arg.__name__ = "integer"


def count_in(lo: int, hi: int | None = None):
    """An argparse ``type`` for a single integer option that has a range (``--batch``, ``--iters``): read as
    ``count_arg`` reads one, and a value outside ``lo .. hi`` refused by argparse as one line, exit 2, before
    anything runs. Plain ``type=int`` let ``--reps 0`` reach a division by zero, ``--scatters 10**20`` loop
    for ever and ``--batch -1`` end in a library traceback minutes later."""
    def read(text: str) -> int:
        v = count_arg(text)
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is not " + (f"at least {lo}" if hi is None else f"in {lo}..{hi}"))
        return v

    read.__name__ = "integer"
    return read


def real(text: str, option: str) -> float:
    """``text`` as a finite float written as the ``memplan`` command reads one (``memplan.argtypes.real``:
    ASCII digits, an optional fraction and exponent; ``float()`` also took 'nan', 'inf' and '１.５')."""
    try:
        v = strict_real(str(text), "a number")
    except argparse.ArgumentTypeError as exc:
        raise ToolArgError(f"{option} {text}: {exc}") from None
    if not math.isfinite(v):   # '1e999' is written as a number, and is infinite
        raise ToolArgError(f"{option} {text}: not a finite number")
    return v


def config_list(text: str, option: str = "--configs", known=None, what: str = "config") -> list[str]:
    """Comma-separated names of ``known`` (default: ``runtime.models.llama.CONFIGS``), each at most once."""
    known = L.CONFIGS if known is None else known

    def read(name: str) -> str:
        if name not in known:
            raise ToolArgError(f"{option} {text!r}: unknown {what} {name!r} (choose from {', '.join(known)})")
        return name

    return _values(text, option, read)


def one_name(text: str, option: str, known=None, what: str = "config") -> str:
    """One name of ``known`` (``--config 8b``): a list where the option takes one name (``8b,1b``) is named
    as such, not reported as an unknown name or run on the first only."""
    if "," in str(text):
        raise ToolArgError(f"{option} {text!r}: one {what}, not a list")
    (name,) = config_list(text, option, known=known, what=what)
    return name


def name_list(text: str, option: str) -> list[str]:
    """Comma-separated names, each at most once, with no empty value and no spaces around one (``_values``); which
    names exist is the caller's to say (its own message: ``runtime.aten.sweep_paths``' lists are hundreds long)."""
    return _values(text, option, str)


def fuse_list(text: str, option: str = "--fuse") -> list[str]:
    """Comma-separated fusion modes of ``runtime.models.llama.FUSE_MODES``."""
    return config_list(text, option, known=L.FUSE_MODES, what="mode")


def at_least(value: int | float, option: str, lo: int | float) -> None:
    if not value >= lo:   # (NaN too)
        raise ToolArgError(f"{option} {value}: expected at least {lo}")


#: the most timing rounds, replays or steps a tool runs per measurement: more is no measurement anyone
#: waits for (10**18 rounds ran until killed, an apparent hang), and a typo's extra digits are caught
MAX_REPEATS = 100_000


def repeats(value: int, option: str) -> None:
    """A repeat count (``--rounds``, ``--steps``, ``--replays``): 1 .. ``MAX_REPEATS``."""
    at_least(value, option, 1)
    at_most(value, option, MAX_REPEATS)


def at_most(value: int | float, option: str, hi: int | float) -> None:
    """The upper end of a range (``--devices`` at most ``MAX_STREAMS``, as memplan plans)."""
    if not value <= hi:
        raise ToolArgError(f"{option} {value}: expected at most {hi}")


def llama_graphs(configs, batches, fuses=(L.DEFAULT_FUSE,), **overrides) -> None:
    """Build each (config, batch, fusion) step graph the run would build, before anything needs a GPU: what
    memplan refuses there (a batch whose tensors are absurdly large, ``--layers`` over ``MAX_LAYERS``) is one
    line naming the options, not a traceback after the kernels compiled or the GPU was filled. Graphs are
    cheap (an 8B step builds in ~15 ms); nothing is kept."""
    from memplan.errors import MemplanError

    for name in configs:
        for batch in batches:
            for fuse in fuses:
                try:
                    L.build_graph(L.config(name, batch=batch, **overrides), fuse=fuse)
                except MemplanError as exc:
                    over = "".join(f" --{k} {v}" for k, v in overrides.items())
                    raise ToolArgError(f"config {name} at batch {batch}{over}: {exc}") from None


def out_path(path: str | None, option: str = "--out") -> None:
    """Refuse, before a run of minutes, an output the run could not write at its end (a missing directory,
    a directory, a read-only file): the results were lost after the whole run. '-' (standard output, to
    ``memplan``) is refused too: these tools print their progress there, and some rewrite the file after every
    row, so the JSON came out as several documents between progress lines. An empty path is refused as the
    memplan command refuses one ("empty path"): it passed this check (taken as no ``--out``), then the tools with a
    default file raised a traceback from the write after the whole run, and bound/rule_ab wrote nothing, silently."""
    if path is None:
        return
    if path == "":
        raise ToolArgError(f"{option} '': empty path (it names no file)")
    from memplan.errors import MemplanError
    from memplan.files import check_writable, is_stdout

    if is_stdout(path):
        raise ToolArgError(f"{option} -: the progress goes to standard output; give a file name")
    try:
        check_writable(path, option)
    except MemplanError as exc:
        raise ToolArgError(str(exc)) from None


def results_json(doc, indent: int | None = None) -> str:
    """``json.dumps(doc, indent=indent)`` with every non-finite float written as ``null`` (as JavaScript's
    ``JSON.stringify`` writes one), so the file is JSON a strict reader takes. Why: the tools' results hold such
    numbers exactly where a run went wrong (``logits_rel_diff_vs_*`` is inf where a mode's logits are not finite,
    ``compare_launches --emulate``'s ``max_abs_diff`` NaN), and Python's default wrote them as ``Infinity`` and
    ``NaN``, which jq, a browser's ``JSON.parse`` and most languages' parsers refuse: the one result that mattered
    made the whole file unreadable (the ``memplan bench --json`` writer refuses them for the same reason; a run of
    minutes on a GPU is kept here instead, its ``logits_finite`` / ``finite`` fields telling what ``null`` hides)."""
    import json

    def finite(v):
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        return v

    return json.dumps(finite(doc), indent=indent, allow_nan=False)


def need_torch_cuda(hint: str = "") -> None:
    """A CUDA device that torch sees (the tools that run PyTorch on the GPU): without one, torch's own
    error was a traceback from its first allocation ("Found no NVIDIA driver"), after the models were built."""
    import torch

    if not torch.cuda.is_available():
        raise ToolArgError(f"needs an NVIDIA GPU: torch sees no CUDA device here{hint}")


def tool_error(prog: str, exc: Exception) -> int:
    """Print ``prog: error: ...`` (one line) and give the exit status, 2."""
    print_error(str(exc), prog)
    return 2


def run_main(main, prog: str, argv=None) -> int:
    """``main(argv)``, with a GPU (or host) running out of memory mid-run as one line and exit status 2 (what
    to lower is the tool's own sizes: ``--batches``, ``--ctx``, ``--layers``), as a bad option is, instead of
    a traceback from the allocation after minutes of setup; a Ctrl-C as ``PROG: error: interrupted`` and exit
    status 130, as the memplan command gives it. Any other failure still raises: it is a bug."""
    import sys

    from .oom import is_out_of_memory

    try:
        return main(argv)
    except KeyboardInterrupt:   # (a Ctrl-C was Python's traceback through the tool's frames: as the memplan command
        print_error("interrupted", prog)   # says it, one line and 130, the shell's status for SIGINT; every --out
        return 130                         # is written atomically, so none is left half written)
    except BrokenPipeError:   # (``--list | head``: the reader is gone, as the memplan command takes it: exit 0,
        _drop_stdout()        # no traceback, and none from the interpreter's last flush either)
        return 0
    except ImportError as exc:
        # a GpuStackMissing (its message names what needs it and what to install; a traceback before round 75), by
        # its module as loaded: importing runtime.cuda_util here would be an import of pycuda's by runtime.aten's
        # tools as the import walls read them (it imports pycuda in its helpers)
        cuda_util = sys.modules.get(f"{__package__}.cuda_util")
        if cuda_util is not None and isinstance(exc, cuda_util.GpuStackMissing):
            return tool_error(prog, ToolArgError(str(exc)))
        missing = _missing_extra(exc)
        if missing is None:
            raise
        return tool_error(prog, ToolArgError(missing))
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        return tool_error(prog, ToolArgError(f"out of memory: {exc} (try fewer or smaller --batches / --ctx / "
                                             "--layers)"))


#: the optional packages a tool may need, and how to install each (setup.py's extras)
_EXTRAS = {"torch": "pip install -e '.[torch]'", "transformers": "pip install -e '.[torch]'",
           "pycuda": "pip install -e '.[cuda]'", "cuda": "pip install -e '.[graphs]' (CUDA graphs: docs/runtime.md)",
           "onnx": "pip install -e '.[onnx]'", "onnxruntime": "pip install -e '.[onnx]'",
           "matplotlib": "pip install -e '.[plot]'"}


def exit_if_missing(prog: str, exc: ImportError, as_command: bool) -> None:
    """For a tool whose module imports an optional package at its top: run as a command, end with one line and
    exit status 2 naming what to install; imported (``as_command`` false), let ``exc`` raise."""
    missing = _missing_extra(exc)
    if as_command and missing is not None:
        raise SystemExit(tool_error(prog, ToolArgError(missing)))


def _missing_extra(exc: ImportError) -> str | None:
    """One line naming the optional package a tool's import did not find and the extra that installs it, or None
    where ``exc`` is not such a package's absence (then it is a bug, and raises). Why: without the torch extra
    ``python -m runtime.aten.bench`` ended in a 13-line ``ModuleNotFoundError`` traceback (round 67)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name not in _EXTRAS:
        return None
    if _installed(name):   # (round 75: an installed package whose import failed, one of its submodules missing or
        # a version mismatch, was called "not installed here", and the line advised the install it already had)
        return f"needs {name}, which is installed but failed to import ({' '.join(str(exc).split())}): reinstall it " \
               f"or a matching version ({_EXTRAS[name]})"
    return f"needs {name}, which is not installed here: {_EXTRAS[name]}"


def _installed(name: str) -> bool:
    """Whether the top-level package ``name`` is there to import (a finder locates it): false where it is absent or
    hidden (``sys.modules[name] = None``, as the tests hide torch)."""
    import importlib.util
    import sys

    if name in sys.modules and sys.modules[name] is None:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _drop_stdout() -> None:
    """Point stdout at the null device: its reader is gone, and the interpreter's flush at exit would print
    "Exception ignored ... BrokenPipeError" (Python's own advice for SIGPIPE-free programs)."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
