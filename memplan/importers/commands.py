"""The ``memplan import`` subcommand: a model file in, graph JSON out (atomically).

Kept out of cli.py so the CLI stays a list of registrations; onnx is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os

from .. import argtypes

#: the formats ``memplan import`` reads, by the file's extension in any case (``.ONNX`` too)
EXTENSIONS = {".onnx": "onnx", ".pt2": "pt2"}
#: the first bytes of a zip archive: every ``torch.export.save`` file is one, and no ONNX file starts so (its
#: first byte is a field of ModelProto, which has no field 10, the field 'P' would start)
ZIP_MAGIC = b"PK\x03\x04"


def model_format(path: str) -> str:
    """``"onnx"`` or ``"pt2"``: which loader reads the model at ``path``.

    A zip archive is a torch.export program whatever its name (a ``.PT2``, a ``.bin``, no extension): its
    first bytes say so, cheaply and reliably. An ONNX protobuf has no such mark (protobuf reads most bytes
    as some message), so only its extension, ``.onnx`` in any case, makes a file an ONNX model; any other
    name is refused naming the extensions understood, not parsed as a protobuf on a guess (a graph JSON
    given to ``import`` by mistake was "not a readable ONNX model (DecodeError ...)")."""
    from ..errors import InputFormatError
    from ..files import compressed, read_head

    head = read_head(path, 10, InputFormatError, 1 << 62)   # (size: each loader's own limit)
    ext = os.path.splitext(path)[1]
    if not ext and os.path.basename(path).lower() in EXTENSIONS:
        # (a file named ``.onnx`` alone, which ``splitext`` reads as a stem: it was refused as having "no extension",
        # with the advice to "rename an ONNX model to end in .onnx", which it does)
        ext = os.path.basename(path)
    if head.startswith(ZIP_MAGIC):
        return "pt2"
    packed = compressed(head)
    if packed:   # (protobuf read it as noise: "not a readable ONNX model (DecodeError ...)")
        raise InputFormatError(f"{path}: {packed}")
    if ext.lower() in EXTENSIONS:
        return EXTENSIONS[ext.lower()]
    raise InputFormatError(f"{path}: unknown model format ({f'extension {ext!r}' if ext else 'no extension'} and "
                           "not a zip archive): memplan import reads ONNX models named *.onnx and torch.export "
                           "programs (*.pt2, or any file torch.export.save wrote); rename an ONNX model to end "
                           "in .onnx")


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("import", help="import an ONNX model (or a torch.export .pt2 file) as graph JSON")
    sp.add_argument("model", type=argtypes.path,
                    help="model file: .onnx (ONNX), or .pt2 (torch.export.save; also recognised by its content, "
                         "a zip archive); extensions in any case")
    sp.add_argument("-o", "--output", type=argtypes.path, required=True, help=f"graph JSON to write ('-': stdout); {argtypes.REPLACES}")
    sp.add_argument("--batch", type=argtypes.dim, default=None, metavar="N",
                    help="fix the leading dimension of every graph input that is symbolic (ONNX: or unknown; a "
                         "model with neither takes only a batch equal to a fixed one)")
    sp.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                    help="fix a symbolic dimension by name: VALUE plain ASCII digits, spaces around '=' "
                         "ignored (repeatable, each NAME at most once)")
    sp.add_argument("--name", default=None, help="graph name (default: the file's stem)")
    sp.add_argument("--alignment", type=argtypes.alignment, default=256, metavar="BYTES",
                    help="the graph's arena alignment in bytes: a power of two, at most 2^48 (default 256)")
    sp.add_argument("--constant-initializers", action="store_true",
                    help="ONNX: take an initializer the model also lists as a graph input as the constant it holds "
                         "(exports with keep_initializers_as_inputs); without it, a size that follows one is refused")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    sp.set_defaults(func=cmd_import, more_inputs=external_inputs)


def external_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The files an ONNX model's external data lives in (label -> path), which the model reads as it reads its own
    file: for the CLI's check that stderr is redirected into none of them (``cli._stderr_into_input``). Why: ``memplan
    import m.onnx -o g.json 2>> weights.bin`` appended the summary line to the model's weights, where ``2>> m.onnx``
    is refused. A torch.export program keeps its data inside its own file (none here)."""
    if model_format(args.model) != "onnx":
        return {}
    from .onnx import external_data_files, load_model

    return {f"file holding the external data of {args.model} (tensor {name!r})": path
            for path, name in external_data_files(load_model(args.model), os.path.dirname(args.model)).items()}


def _default_name(args: argparse.Namespace) -> str:
    """``--name``, else the model file's stem, whichever importer reads it: ``--help`` promises the stem, and
    the plan's ``graph`` field then says which model it is (a program alone only knows "exported")."""
    return args.name if args.name is not None else os.path.splitext(os.path.basename(args.model))[0]


def cmd_import(args: argparse.Namespace) -> int:
    from ..errors import GraphError
    from ..files import check_outputs
    from ..io import save_graph
    from ..show import human
    from . import from_torch, tty_progress
    from .onnx import CLI, import_spelled, parse_dims

    dims = parse_dims(args.dim)   # a usage mistake first, before the files are looked at
    check_outputs({"model": args.model}, {"-o": args.output})
    argtypes.check_text_output("-o", args.output, "memplan import writes graph JSON (memplan.graph/1)")
    fmt = model_format(args.model)   # (which checks the model is a regular file, as the loaders do again)
    progress = tty_progress("import", quiet=args.quiet)
    if fmt == "pt2":
        from ..errors import InputFormatError

        if args.constant_initializers:
            argtypes.unused("--constant-initializers", "on a torch.export program", "it has no ONNX initializers")
        from .torch import is_dynamic, load_exported, sized_inputs

        try:
            program = load_exported(args.model)
        except InputFormatError as exc:   # a zip archive by another name (a zipped ONNX model?): say why torch
            if args.model.lower().endswith(".pt2"):   # was asked
                raise
            raise InputFormatError(f"{exc}; it was read as one because it is a zip archive (memplan import "
                                   "reads an ONNX model only from its protobuf file, *.onnx)") from None
        example: tuple = ()
        kwargs = None
        # a dynamic program's symbolic sizes fixed (a fixed one has none); with no option given, what sized_inputs
        # says names the options that fix it: the API's refusal showed ``x``'s size ``2*s6`` (``{0: 2 * Dim("k")}``)
        # and advised "export with concrete example inputs", as the CLI's rewrite of it looked for "size s" only
        if args.batch is not None or dims or is_dynamic(program):
            try:
                example, kwargs = sized_inputs(program, args.batch, dims)
            except GraphError as exc:
                raise GraphError(f"{args.model}: {exc}") from None
        try:
            graph = from_torch(program, example, kwargs=kwargs or None, name=_default_name(args),
                               alignment=args.alignment, progress=progress)
        except GraphError as exc:  # it names the program's node or tensor; the file is named here (the
            msg = str(exc)         # program does not know it), as the ONNX importer names its model
            # (no rewrite of the API's advice on a symbolic size: a dynamic program was sized above, or refused naming
            # the --dims it takes, and a program of fixed inputs whose record is symbolic is refused as inconsistent
            # by from_torch, which no --batch or --dim fixes; "fix its sizes with --batch N or --dim" was wrong there)
            raise GraphError(msg if msg.startswith(f"{args.model}: ") else f"{args.model}: {msg}") from None
    else:
        graph = import_spelled(args.model, batch=args.batch, dims=dims, name=args.name,
                               alignment=args.alignment, progress=progress, outputs={"-o": args.output},
                               spelling=CLI,   # its messages name --dim and --batch, the options given
                               constant_initializers=args.constant_initializers)
    save_graph(graph, args.output)
    if not args.quiet:
        views = sum(t.view_of is not None for t in graph.tensors)
        weights = sum(t.size for t in graph.tensors if t.kind == "weight" and t.view_of is None)
        arena = sum(t.size for i, t in enumerate(graph.tensors) if graph.is_root(i) and t.kind != "weight")
        argtypes.print_note(f"{args.output}: {argtypes.counted(len(graph.nodes), 'node')}, "
                            f"{argtypes.counted(len(graph.tensors), 'tensor')} ({argtypes.counted(views, 'view')}), "
                            f"weights {human(weights)}, arena tensors {human(arena)} in total")
    return 0
