"""The arena memory map: x = issue order (or simulated time), y = arena offset, one box per root tensor.

This is the picture PyTorch's memory visualiser and the minimalloc papers show: each rectangle is a
tensor's bytes held from its first to its last access, so gaps are fragmentation and the distance between
the top of the boxes and the lower-bound line is what a better plan could still save. Boxes are coloured
by the stream of their first access, so cross-stream reuse is visible.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch) and one
PolyCollection for all boxes, so 10k-tensor graphs draw in seconds; edges are dropped for large graphs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import os
import threading
import warnings
from collections.abc import Iterator

import numpy as np

from .._forklocks import OuterBlock, fork_safe
from .._interrupt import raise_if_interrupted
from .._warnblock import warnings_caught
from ..errors import MemplanError, check_option_names, counted
from ..errors import short_repr as _short
from ..files import is_stdout, output_path
from ..graph import Graph
from ..planfile import Plan
from ..show import human, printable
from . import atomic_write_bytes, check_pairing, root_spans

#: graphs with more boxes than this are drawn without box edges (edges would paint everything black)
EDGE_LIMIT = 1500
#: graphs with more boxes than this have them drawn as one image inside an SVG or PDF (axes, lines and text stay
#: vectors): the boxes are a pixel or less apiece by then, and as vectors the file grew by ~190 bytes a box (a
#: 50,000-tensor graph: a 9.5 MB SVG taking 6 s; 1M tensors would be ~190 MB that no viewer opens)
RASTER_LIMIT = 10_000
#: graphs with at most this many boxes get tensor names written into the larger boxes
LABEL_LIMIT = 200
#: the most characters of a tensor id written in its box (and of the graph's name in the default title): a box
#: is at most the picture's width, and matplotlib lays out every character it is given, clipped or not (twelve
#: boxes named by 50 KB ids took 48 s to draw, 200 would take minutes)
LABEL_CHARS, NAME_CHARS = 64, 200
#: the most characters of the title drawn (``title=``/``--title`` included): about 180 fit across the default
#: 11 inches, and laying out more only costs time (a 50,000-character title took 14 s to draw, one of a few MB
#: from code would take minutes, for text past the picture's edge)
TITLE_CHARS = 1000
#: a split plan of at most this many devices gets each band's arena and lower-bound lines and tick labels; more
#: get a tick at every few bands' start
BAND_LINES = 16
FORMATS = ("png", "svg", "pdf")
#: a picture's sides in inches (100 dots each): Agg draws at most 2**16 dots a side, and a side under an inch
#: leaves no room for the axes; the area cap keeps one picture's pixels under about 400 MB
MIN_INCHES, MAX_INCHES, MAX_AREA = 1.0, 600.0, 10_000.0
#: the keyword options of ``memory_map_figure`` that ``render_memory_map``/``save_memory_map`` pass on
FIGURE_OPTIONS = ("time", "title", "size")


def need_matplotlib() -> None:
    """Import matplotlib, or ``MemplanError``: missing, it names the ``plot`` extra; present but failing to
    import (``MPLBACKEND=nonsense`` is a ValueError from ``import matplotlib``), it says so and why, in one line
    (it was a traceback)."""
    try:
        import matplotlib  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except Exception as exc:   # (whatever a broken install or environment raises on import)
        raise_if_interrupted(exc)   # (a Ctrl-C in a C extension's init is an ImportError: the command's Ctrl-C)
        if isinstance(exc, ImportError):
            raise MemplanError("drawing needs matplotlib: pip install 'memplan[plot]'") from None
        raise MemplanError(f"drawing needs matplotlib, which fails to import: {type(exc).__name__}: {exc} (check the "
                           "MPLBACKEND environment variable and any matplotlibrc)") from None


#: the matplotlibrc settings a memory map keeps from the user's: which fonts draw the text (a font for CJK or
#: another script makes ids in it readable); they only choose glyphs, and no one runs them
FONT_KEYS = ("font.family", "font.serif", "font.sans-serif", "font.monospace", "font.cursive", "font.fantasy")


@contextlib.contextmanager
def _drawing_style() -> Iterator[None]:
    """matplotlib's own default settings while a memory map is built and saved, whatever the user's matplotlibrc,
    ``MATPLOTLIBRC`` or the calling program's rcParams say (their fonts, ``FONT_KEYS``, excepted), with fixed SVG
    ids and no glyph warnings. Why: the picture is of the plan alone. ``text.usetex: True`` handed every tensor id
    to LaTeX (``parse_math=False`` does not hold there): without LaTeX installed ``draw`` was a RuntimeError
    traceback, with it an id such as ``\\input{/etc/passwd}`` was TeX run on the user's machine;
    ``savefig.dpi: 2000`` made a PNG of 400 times the pixels ``size`` allows, ``svg.image_inline: False`` an SVG
    that cannot hold its boxes, and ``svg.fonttype`` and the like other bytes for the same plan."""
    import matplotlib
    import matplotlib.style

    with _STYLE_LOCK:
        fonts = {k: matplotlib.rcParams[k] for k in FONT_KEYS}
        found = dict(matplotlib.rcParams.copy())
        # (a child forked meanwhile puts back what the drawing found, as ``rc_context`` does: no validation again)
        with _STYLE_BLOCKS.outermost(lambda: dict.update(matplotlib.rcParams, found)), \
                matplotlib.style.context("default"), matplotlib.rc_context({**fonts, "svg.hashsalt": "memplan"}), \
                _no_glyph_warnings(), _font_warnings_once():
            yield


#: held while ``_drawing_style`` has rcParams, matplotlib's one global settings dict, set to its defaults: two
#: threads drawing at once each saved what the other had set, and the last to leave put matplotlib's defaults
#: back for good (the calling program's own rcParams lost) and drew with the other's settings half-restored
_STYLE_LOCK = fork_safe(threading.RLock())
#: the outermost running ``_drawing_style``: a worker forked while another thread drew kept matplotlib's defaults,
#: the program's own rcParams lost, for its whole life (round 76 review); its child puts back what the drawing found
_STYLE_BLOCKS = OuterBlock()


class _Once(logging.Filter):
    """Lets each distinct message through once in the process: a font a matplotlibrc names and this machine
    lacks was "findfont: Font family 'X' not found." on stderr for every text laid out, hundreds of lines a
    picture (``-q`` included), where one says it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


#: (memplan's draws only: the calling program's own figures get matplotlib's warnings as they come)
_FONT_WARNINGS = _Once()


@contextlib.contextmanager
def _font_warnings_once() -> Iterator[None]:
    """matplotlib's font-lookup warnings each said once while memory maps are drawn (see ``_Once``)."""
    logger = logging.getLogger("matplotlib.font_manager")
    logger.addFilter(_FONT_WARNINGS)
    try:
        yield
    finally:
        logger.removeFilter(_FONT_WARNINGS)


def _unit(nbytes: int) -> tuple[float, str]:
    for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if nbytes >= 4 * scale:
            return float(scale), name
    return 1.0, "B"


def memory_map_figure(graph: Graph, plan: Plan, *, time: bool = False, title: str | None = None,
                      size: tuple[float, float] = (11.0, 5.5)):
    """A matplotlib Figure of the plan's arena (not yet saved)."""
    check_pairing(graph, plan, "memory_map_figure")
    size = _check_figure_options(time, title, size)
    need_matplotlib()
    with _drawing_style():
        return _figure(graph, plan, time=time, title=title, size=size)


def _figure(graph: Graph, plan: Plan, *, time: bool, title: str | None, size: tuple[float, float]):
    """``memory_map_figure``'s drawing, its arguments checked, under ``_drawing_style``."""
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if time:
        from ..simulate import simulate

        tm = simulate(graph, plan)   # refuses a plan made for another graph (check_plan_for)
        x0, x1, x_end = tm.start_us, tm.end_us, tm.makespan_us
        xlabel = "simulated time (us, memplan.simulate)"
    else:
        check_pairing(graph, plan)
        pos = {nid: float(p) for p, (nid, _) in enumerate(plan.order)}
        x0, x1, x_end = pos, {k: v + 1.0 for k, v in pos.items()}, float(len(plan.order))
        xlabel = "issue order (node position)"
    spans = root_spans(graph, plan, x0, x1, 0.0, x_end)
    if time and x_end <= 0 and any(sp.size for sp in spans):
        # every box was 0 us wide: the picture showed the axes and no tensor at all, as if the arena were empty
        raise MemplanError(f"memory map of {_short(graph.name)} with time=True (--time): the "
                           "simulated makespan is 0 us (every node costs 0 us and no event waits), so no tensor has "
                           "a width on a time axis; draw it in issue order (without --time)")
    scale, unit = _unit(max(plan.arena_bytes, plan.lower_bound_bytes, 1))
    arenas, bounds, base = _device_bands(plan)

    fig = Figure(figsize=size, dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    streams = sorted({s.stream for s in spans} | {s for _, s in plan.order}) or [0]
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
               "#CCB974", "#64B5CD"]
    colour = {s: palette[i % len(palette)] for i, s in enumerate(streams)}
    verts = []
    colours = []
    for sp in spans:
        if sp.size == 0:
            continue
        y0, y1 = (base[sp.device] + sp.offset) / scale, (base[sp.device] + sp.offset + sp.size) / scale
        w0, w1 = sp.x0, max(sp.x1, sp.x0 + x_end * 1e-4)
        verts.append(((w0, y0), (w1, y0), (w1, y1), (w0, y1)))
        colours.append(colour[sp.stream])
    many = len(verts) > EDGE_LIMIT
    if len(verts) <= LABEL_LIMIT:  # small graphs: name the boxes big enough to hold a label
        top = max(base[-1] + max(arenas[-1], bounds[-1] or 0), 1) / scale
        for sp in spans:
            h, w = sp.size / scale, sp.x1 - sp.x0
            if h >= 0.045 * top and w >= 0.07 * max(x_end, 1e-9):
                ax.text((sp.x0 + sp.x1) / 2, (base[sp.device] + sp.offset + sp.size / 2) / scale,
                        _clip(printable(sp.tensor), LABEL_CHARS), ha="center", va="center", fontsize=6.5,
                        clip_on=True, parse_math=False)
    coll = PolyCollection(verts, facecolors=colours, edgecolors="none" if many else "#222222",
                          linewidths=0.0 if many else 0.4, alpha=0.85, rasterized=len(verts) > RASTER_LIMIT)
    ax.add_collection(coll)
    # one band per device (one band on one device); past BAND_LINES devices the lines would grey the picture out
    for b, a, lb in zip(base, arenas, bounds) if len(base) <= BAND_LINES else ():
        if lb is not None:
            ax.axhline((b + lb) / scale, color="black", linestyle="--", linewidth=1.2)
        ax.axhline((b + a) / scale, color="#B22222", linestyle=":", linewidth=1.0)
    ax.set_xlim(0, max(x_end, 1e-9))
    ax.set_ylim(0, max((base[-1] + max(arenas[-1], bounds[-1] or 0)) / scale, 1e-9) * 1.05)
    ax.set_xlabel(xlabel)
    if len(base) == 1:
        ax.set_ylabel(f"arena offset ({unit})")
    else:   # each device's own offsets, from 0 at the bottom of its band
        ax.set_ylabel(f"arena offset ({unit}) per device, device 0 at the bottom")
        if len(base) <= BAND_LINES:   # each band's 0 and its arena
            ticks = [y / scale for b, a in zip(base, arenas) for y in (b, b + a)]
            labels = [lab for d, a in enumerate(arenas) for lab in (f"dev {d}: 0", f"{a / scale:g}")]
            for b in base[1:]:
                ax.axhline(b / scale, color="#888888", linestyle="-", linewidth=0.8)
        else:   # where some of the bands begin, no more labels than fit
            step = -(-len(base) // BAND_LINES)
            ticks = [base[d] / scale for d in range(0, len(base), step)]
            labels = [f"dev {d}" for d in range(0, len(base), step)]
        ax.set_yticks(ticks, labels)
    ratio = f" (x{plan.ratio_text(3)})" if plan.lower_bound_bytes else ""
    name = _clip(plan.graph or graph.name, NAME_CHARS)
    # each distinct event once: an entry listed twice restates one happens-before edge (docs/format.md), as ``show``,
    # ``simulate`` and the trace count it; the title counted entries, "5 event(s)" where they say 4
    events = len(dict.fromkeys(map(tuple, plan.events)))
    # (``title=""``, ``--title ''``, asks for no title: it drew the default one)
    text = title if title is not None else (
        f"{name}: arena {human(plan.arena_bytes)} / lower bound {human(plan.lower_bound_bytes)}{ratio}, "
        f"{counted(len(spans), 'arena tensor')}, {plan.streams} stream(s), {events} event(s)")
    ax.set_title(_clip(printable(text), TITLE_CHARS), fontsize=10,
                 parse_math=False)  # names and titles are text: "$...$" is no TeX math here
    handles = [Patch(facecolor=colour[s], label=f"stream {s}") for s in streams[:len(palette)]]
    if len(streams) > len(palette):   # (the legend stopped at stream 9 without a word, colours reused unsaid)
        more = len(streams) - len(palette)
        handles.append(Patch(facecolor="none", edgecolor="none", label=f"+{more} more "
                             f"stream{'s' if more > 1 else ''} (colours repeat every {len(palette)})"))
    if len(base) <= BAND_LINES:
        handles += [Line2D([], [], color="black", linestyle="--", label="lower bound"),
                    Line2D([], [], color="#B22222", linestyle=":", label="arena")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _clip(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters, the last an ellipsis where it was longer."""
    return text if len(text) <= most else text[:most - 1] + "\u2026"


def _device_bands(plan: Plan) -> tuple[list[int], list[int | None], list[int]]:
    """Per device: its arena, its lower bound (None where the plan does not give it) and the byte at which its
    band starts. One device: the plan's arena and bound at 0. A split plan's devices each have an arena of their
    own, offsets from 0 in each: drawn on one axis, a tensor of device 1 sat on those of device 0 at the same
    offsets, as if the plan overlapped them; so each device gets a band of its own, stacked upwards."""
    if plan.devices <= 1 or len(plan.device_arena_bytes) != plan.devices:
        return [plan.arena_bytes], [plan.lower_bound_bytes], [0]
    arenas = list(plan.device_arena_bytes)
    per = plan.solver.get("per_device")
    found: dict[int, int] = {}
    for e in per if isinstance(per, list) else ():
        if isinstance(e, dict) and type(e.get("device")) is int and type(e.get("lower_bound_bytes")) is int:
            found[e["device"]] = e["lower_bound_bytes"]
    # (the solver block is free text to a reader: a bound above its own arena, which no plan has, is not drawn)
    bounds = [lb if lb is not None and 0 <= lb <= a else None for a, lb in zip(arenas, map(found.get, range(len(arenas))))]
    gap = max(max(arenas), 1) // 20 + 1
    base, at = [], 0
    for a in arenas:
        base.append(at)
        at += a + gap
    return arenas, bounds, base


def _check_figure_options(time: object, title: object, size: object) -> tuple[float, float]:
    """MemplanError naming the option: ``size=(0, 0)`` was numpy's LinAlgError, ``(1e9, 5)`` a pybind11
    TypeError from Agg, ``time="no"`` drew the simulated timeline, ``title=5`` was drawn as "5"."""
    if not isinstance(time, bool):
        raise MemplanError(f"memory map: time must be True or False, not {_short(time)}")
    if title is not None and not isinstance(title, str):
        raise MemplanError(f"memory map: title must be a string or None, not {type(title).__name__} {_short(title)}")
    # any two real numbers, numpy's too (``size=(np.int64(8), 4)``, an array: matplotlib takes them), as floats
    sides = list(size) if isinstance(size, (tuple, list)) or (isinstance(size, np.ndarray) and size.ndim == 1) else []
    inches = [float(v) for v in sides if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))]
    ok = len(sides) == len(inches) == 2 and all(math.isfinite(v) and MIN_INCHES <= v <= MAX_INCHES for v in inches)
    if not ok or inches[0] * inches[1] > MAX_AREA:
        raise MemplanError(f"memory map: size must be (width, height) in inches, each {MIN_INCHES:g}..{MAX_INCHES:g} "
                           f"and their product at most {MAX_AREA:g}, not {_short(size)}")
    return inches[0], inches[1]


@contextlib.contextmanager
def _no_glyph_warnings() -> Iterator[None]:
    """Silence matplotlib's "Glyph N missing from font(s)" warnings: ids, graph names and titles are the
    user's text in any script, the box then shows the font's placeholder, and the warning (two lines with a
    source line each, once per glyph and per layout pass) went to stderr even under ``memplan draw -q``."""
    with warnings_caught(ignore=False):
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        yield


def render_memory_map(graph: Graph, plan: Plan, fmt: str = "png", **kw) -> bytes:
    """The memory map as PNG/SVG/PDF bytes, deterministic in every format: no timestamps (a PDF carried its
    ``CreationDate``, so the same plan drawn a second later gave other bytes), and SVG ids from a fixed salt."""
    check_option_names("render_memory_map", kw, FIGURE_OPTIONS)
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise MemplanError(f"unknown picture format {fmt!r} (choose from {', '.join(FORMATS)})")
    fig = memory_map_figure(graph, plan, **kw)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    meta = {"Software": None} if fmt == "png" else {"Date": None} if fmt == "svg" else {"CreationDate": None}
    try:
        with _drawing_style():
            fig.savefig(buf, format=fmt, metadata=meta)
    except (RuntimeError, OverflowError, ValueError) as exc:  # e.g. FreeType's "raster overflow"
        raise MemplanError(f"matplotlib cannot draw this plan of {graph.name!r} ({type(exc).__name__}: {exc})") from None
    return buf.getvalue()


def picture_format(path: str) -> str:
    """The picture format ``path``'s extension names (png, svg or pdf), else ``MemplanError``: ``-``
    (stdout) names none, so a picture needs a file."""
    if is_stdout(path):
        raise MemplanError("-o -: a picture cannot go to stdout: its picture format comes from the file name "
                           "(give a .png, .svg or .pdf file)")
    base = os.path.basename(output_path(path))
    fmt = os.path.splitext(base)[1].lower().lstrip(".")
    if fmt in FORMATS:
        return fmt
    # a name with no extension was "unknown picture format ''"; ``-o .png`` is one too (a leading dot starts a
    # hidden file's name, as ``import`` reads ``.onnx`` and the OS lists it), so say what is missing
    if base.startswith(".") and base[1:].lower() in FORMATS:
        raise MemplanError(f"{path}: the file name {base!r} has no stem, only an extension (give a name such as "
                           f"plan{base})")
    if not fmt:
        raise MemplanError(f"{path}: the file name has no extension to give the picture format (end it in .png, "
                           ".svg or .pdf)")
    raise MemplanError(f"{path}: unknown picture format {fmt!r} (use .png, .svg or .pdf)")


def save_memory_map(graph: Graph, plan: Plan, path: str, **kw) -> None:
    """Draw to ``path`` (format from its extension: .png, .svg or .pdf), atomically."""
    check_option_names("save_memory_map", kw, FIGURE_OPTIONS)
    atomic_write_bytes(path, render_memory_map(graph, plan, picture_format(path), **kw))
