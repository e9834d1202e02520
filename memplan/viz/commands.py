"""The ``memplan draw`` and ``memplan trace`` subcommands: a graph and its plan in, a picture or trace out.

Kept out of cli.py so the CLI stays a list of registrations; matplotlib loads only when ``draw`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import argtypes

if TYPE_CHECKING:
    from ..planfile import Plan


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("draw", help="draw the arena memory map of a plan (PNG, SVG or PDF; needs matplotlib)")
    sp.add_argument("graph", type=argtypes.path, help="graph JSON")
    sp.add_argument("plan", type=argtypes.path, help="plan JSON of that graph")
    sp.add_argument("-o", "--output", type=argtypes.path, required=True, help=f"picture to write: .png, .svg or .pdf; {argtypes.REPLACES}")
    sp.add_argument("--time", action="store_true", help="x axis: simulated time instead of issue order")
    sp.add_argument("--title", default=None,
                    help="title above the picture (default: the graph's name, arena, lower bound, streams and events; "
                         "'' for none)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    sp.set_defaults(func=cmd_draw)

    sp = sub.add_parser("trace", help="write a Chrome/Perfetto trace of the plan's simulated schedule")
    sp.add_argument("graph", type=argtypes.path, help="graph JSON")
    sp.add_argument("plan", type=argtypes.path, help="plan JSON of that graph")
    sp.add_argument("-o", "--output", type=argtypes.path, required=True,
                    help=f"trace JSON to write (open in ui.perfetto.dev; '-': stdout); {argtypes.REPLACES}")
    sp.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    sp.set_defaults(func=cmd_trace)


def _inputs(args: argparse.Namespace, *, picture: bool = False, notes: list[str] | None = None):
    """The graph and a safe plan made for it, after refusing an output that would overwrite either input
    and (``picture``) an output name that gives no picture format or a matplotlib that does not import: all
    before what may be a large graph is loaded and verified (a missing matplotlib was named only after that,
    minutes into a large graph). ``notes`` receives what matplotlib logged while it was imported
    (``_import_notes``)."""
    from ..files import check_outputs
    from ..io import load_safe_pair

    check_outputs({"graph": args.graph, "plan": args.plan}, {"-o": args.output})
    if picture:
        from .memmap import need_matplotlib, picture_format

        picture_format(args.output)
        with _import_notes("matplotlib", [] if notes is None else notes):
            need_matplotlib()
    return load_safe_pair(args.graph, args.plan)


def _check_latency(plan: Plan, source: str, command: str, instead: str = "") -> None:
    """PlanFormatError naming the plan file ``source`` where ``plan`` records an event latency that is none (a
    hand-edited ``solver.schedule.event_us`` of -1): ``command`` simulates the plan at the latency it records and
    takes none of its own (no ``--event-us``), so the way round is to correct the field (``instead``: another)."""
    from ..simulate import check_recorded_event_us

    check_recorded_event_us(plan, source, f"{command} simulates a plan at the latency it records: correct that field"
                            f"{instead}; `memplan simulate --event-us US` simulates it at a latency you give")


class _Lines(logging.Handler):
    """Each distinct message logged to it, once, as its first line (``lines``)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip().split("\n")[0]
        if text and text not in self.lines:
            self.lines.append(text)


@contextlib.contextmanager
def _import_notes(name: str, lines: list[str]) -> Iterator[None]:
    """For the block, logger ``name``'s warnings go to ``lines`` alone, not to stderr. Why: matplotlib logs two
    multi-line-long warnings on stderr when its config directory cannot be made (``HOME`` unset or read-only, the
    ``nobody`` user's ``/nonexistent``: "mkdir -p failed ...", "Matplotlib created a temporary cache directory
    ..."), so a ``draw`` that then failed on its input printed three lines where the error is one, and ``-q``
    printed two. ``cmd_draw`` says them once the picture is written, each as one warning line (none with ``-q``)."""
    logger = logging.getLogger(name)
    saved = (logger.propagate, logger.handlers[:])
    logger.propagate, logger.handlers[:] = False, [_Lines(lines)]
    try:
        yield
    finally:
        logger.propagate, logger.handlers[:] = saved


def _drawn(graph, listed: int) -> str:
    """What ``draw``'s summary says it drew: one box per arena root (``Graph.arena_roots``), of the ``listed`` tensors
    of the plan. Why: it said "memory map of 85 tensors" for llama-tiny, every tensor the plan lists, where the picture
    holds 49 boxes: its 24 weights are outside the arena and its 12 views lie within their roots' boxes."""
    drawn = len(graph.arena_roots())
    text = f"memory map of {argtypes.counted(drawn, 'tensor')}"
    if drawn == listed:
        return text
    return text + f" (of the plan's {listed}: views lie within their root's box, weights outside the arena)"


def cmd_draw(args: argparse.Namespace) -> int:
    from .memmap import save_memory_map

    notes: list[str] = []
    graph, plan = _inputs(args, picture=True, notes=notes)
    if args.time:
        _check_latency(plan, args.plan, "draw --time", ", or draw it in issue order (without --time)")
    save_memory_map(graph, plan, args.output, time=args.time, title=args.title)
    if not args.quiet:
        argtypes.print_note(f"{args.output}: {_drawn(graph, len(plan.tensors))}")
        for text in notes:   # (after the picture: an error before it stays one line)
            argtypes.print_warning(f"matplotlib: {text}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from .trace import save_trace

    argtypes.check_text_output("-o", args.output, "a trace is JSON (open it in ui.perfetto.dev)",
                               hint="; `memplan draw` draws the memory map as a picture")
    graph, plan = _inputs(args)
    _check_latency(plan, args.plan, "trace")
    save_trace(graph, plan, args.output)
    if not args.quiet:
        argtypes.print_note(f"{args.output}: trace of {argtypes.counted(len(plan.order), 'node')} on {plan.streams} stream(s); "
                            "open it in https://ui.perfetto.dev")
    return 0
