"""What every step of the ONNX import shares: the op families, dtype sizes, value and node naming, the
error spelling (Python or CLI) and the limits.

Why a module of its own: the checks, the onnxruntime rules, the folding and the inference all name ops, dtypes and
nodes the same way; defining that once keeps their messages and their idea of an op family identical.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..._interrupt import raise_if_interrupted
from ...errors import MemplanError

#: initializers up to this many elements keep their data for shape inference (Reshape shapes, axes)
SMALL_INITIALIZER = 64
# bits per element of each ONNX TensorProto data type with a fixed size (STRING/UNDEFINED are absent)
_BITS = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64,
    14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
    27: 6, 28: 6,
}


def _need_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise_if_interrupted(exc)   # (a Ctrl-C in onnx's C extension's init is an ImportError: the command's Ctrl-C)
        raise MemplanError("the ONNX importer needs the 'onnx' package: pip install 'memplan[onnx]'") from None
    return onnx


def _dtype_name(onnx, elem: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem).lower()
    except ValueError:
        return f"type#{elem}"


def _type_text(onnx, tp, depth: int = 0) -> str:
    """An ONNX type as the spec writes it (``optional(tensor(float))``, ``seq(tensor(int64))``,
    ``map(int64, tensor(float))``). Why: every graph input that was no tensor was refused as "sequences/maps are
    unsupported", for an optional or a sparse tensor too, naming neither the kind nor what it holds."""
    kind = tp.WhichOneof("value")
    if kind is None or depth > 8:   # (protobuf allows any nesting; the words stop well before)
        return "?" if kind is None else "..."
    if kind in ("tensor_type", "sparse_tensor_type"):
        return f"{kind.removesuffix('_type')}({_dtype_name(onnx, getattr(tp, kind).elem_type)})"
    if kind == "sequence_type":
        return f"seq({_type_text(onnx, tp.sequence_type.elem_type, depth + 1)})"
    if kind == "optional_type":
        return f"optional({_type_text(onnx, tp.optional_type.elem_type, depth + 1)})"
    if kind == "map_type":
        m = tp.map_type
        return f"map({_dtype_name(onnx, m.key_type)}, {_type_text(onnx, m.value_type, depth + 1)})"
    return kind.removesuffix("_type")


def _nbytes(bits: int, dims: tuple[int, ...]) -> int:
    return (math.prod(dims) * bits + 7) // 8


#: dimensions (``--batch``, ``--dim``) are int64 in ONNX
MAX_DIM = (1 << 63) - 1
#: a ``--dim`` value as written: ASCII digits (a "-" only to name a negative value out of range)
_DECIMAL = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Spelling:
    """How the import's messages name its two size options: as the Python arguments of ``import_onnx``
    (``dims={'N': VALUE}``, ``batch=N``), or as ``memplan import``'s options (``--dim N=VALUE``, ``--batch N``).
    A library caller told to "pass --dim N=VALUE" was told about an option its call does not have."""

    cli: bool = False

    def dim(self, name: str, value: object = "VALUE") -> str:
        """``--dim NAME=VALUE`` as a shell takes it: NAME without the white space at its ends (``--dim`` drops it, its
        own syntax, and ``cli_dim_names`` finds the name so ended: ``--dim n=VALUE`` for ``'n\\t'``), quoted where a shell
        would split or expand it (``--dim 'batch size'=VALUE``). Why: round 77 quoted such a NAME as Python writes it,
        ``--dim 'n\\t'=VALUE``, which a shell passes as a backslash and a ``t`` ("the model has no symbolic dimension
        'n\\\\t'"), and a NAME holding a space was split by the shell into two arguments."""
        if not self.cli:
            return f"dims={{{name!r}: {value}}}"
        import shlex

        return f"--dim {shlex.quote(name.strip() or name)}={value}"

    def dim_key(self, name: str) -> str:
        return f"--dim {name}" if self.cli else f"dims[{name!r}]"

    def batch(self, value: object = "N") -> str:
        return f"--batch {value}" if self.cli else f"batch={value}"

    @property
    def batch_option(self) -> str:
        return "--batch" if self.cli else "batch"


def cli_dim_names(fixed: dict[str, int], named: set[str]) -> dict[str, int]:
    """``fixed`` (the ``--dim`` values, each NAME without the white space around it) with a NAME the model lacks taken
    for the one dimension name it declares that is NAME once its edges' white space is dropped (``'n '`` for ``n``),
    where there is exactly one. Why: a dimension named ``'n '`` could not be fixed from the command line at all (``--dim
    'n '=3`` is ``n``, the spaces being ``--dim``'s syntax), while the refusal told the user to "pass --dim n =VALUE"."""
    out: dict[str, int] = {}
    for k, v in fixed.items():
        near = [p for p in named if p.strip() == k] if k not in named else []
        out[near[0] if len(near) == 1 else k] = v   # (two keys never meet: parse_dims refuses a NAME given twice)
    return out


PYTHON = Spelling(cli=False)
CLI = Spelling(cli=True)


def _function_name(f) -> str:
    """A model-local function as messages name it: ``domain:name``, and its overload where it has one."""
    name = f"{f.domain}:{f.name}" if f.domain else f.name
    return f"{name} (overload {f.overload!r})" if getattr(f, "overload", "") else name


def _default_opset(model) -> int:
    """The model's opset of the default ONNX domain (``_check_opset`` made sure there is at most one)."""
    return next((o.version for o in model.opset_import if (o.domain or "") in ("", "ai.onnx")), 1)


def _is_constant(n) -> bool:
    """Whether ``n`` is ONNX's ``Constant``, which runtimes fold into an initializer when they load the model (it
    is no node there: its name may repeat another node's, and the importer plans its output as a weight)."""
    return n.op_type == "Constant" and (getattr(n, "domain", "") or "") in ("", "ai.onnx")


def _node_ids(g) -> list[str]:
    """ONNX node names, kept as they are; an unnamed node is ``<op>_<index>``.

    Two named nodes other than ``Constant``s never share a name here (``_check_node_names``); the first other
    node of a name gets it. A generated name that is taken, and a ``Constant`` (folded away, never a node of the
    graph) whose name another node has, get the first free suffix ``_1``, ``_2``...; the search resumes where the
    last repeat of that name stopped (a suffix once refused stays refused), so 100k nodes of one name cost
    100k tries, not 5 billion (the checks before ``_check_node_names`` name nodes by these ids too).
    Where every node has a name of its own (as most exporters write them) the ids are the names, read once: the walk
    below read each node's fields five times, and an import asks for the ids several times (a 100,000-node chain:
    0.18-0.33 s a call, 0.03-0.06 s read once)."""
    names = [n.name for n in g.node]
    taken = set(names)
    taken.discard("")
    if len(taken) == len(names):   # (each named, no two alike: no suffix, no owner to settle)
        return names
    owner: dict[str, int] = {}   # a name -> the first node not a Constant that has it: that node's id is its name
    for i, n in enumerate(g.node):
        if n.name and not _is_constant(n):
            owner.setdefault(n.name, i)
    seen: set[str] = set()
    next_k: dict[str, int] = {}
    ids = []
    for i, n in enumerate(g.node):
        base = n.name or f"{n.op_type}_{i}"
        nid = base
        if nid in seen or owner.get(nid, i) != i or (nid != n.name and nid in taken):
            k = next_k.get(base, 1)
            nid = f"{base}_{k}"
            while nid in seen or nid in taken:  # never n.name itself: that is base
                k += 1
                nid = f"{base}_{k}"
            next_k[base] = k + 1
        seen.add(nid)
        ids.append(nid)
    return ids


def _declared_type(vi) -> tuple[int, list | None] | None:
    """``(elem type, dims)`` a value_info declares (dims: ints, or None for a symbolic or unknown one; the
    list None when no shape is given), or None when it declares no tensor type."""
    if not vi.type.HasField("tensor_type"):
        return None
    tt = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else None
    return tt.elem_type, dims


def _show_type(elem: int, dims: list | None) -> str:
    shape = "of unknown rank" if dims is None else ["?" if d is None else d for d in dims]
    return f"{_dtype_name(_need_onnx(), elem)} {shape}"


# -- onnxruntime's own ops ------------------------------------------------------------------------------
#
# Models optimized by onnxruntime or optimum hold its fused ops (com.microsoft's Attention, SkipLayerNormalization,
# MatMulNBits, RotaryEmbedding...; SimplifiedLayerNormalization in the default domain). onnx defines none of
# them, so its inference leaves their outputs to what the model declares: a wrong declaration planned a slot of
# the wrong size (too small: the kernel overruns it), a missing one was refused. onnxruntime ships a shape
# inference that knows them; where onnxruntime is installed, it sizes them, and a declaration that disagrees
# is refused by name.

#: onnxruntime's ops: those of its domain, and the ones it defines in the default domain. Only these are sized
#: by its inference, whose rules go by op name alone (another domain's "Attention" is no concern of theirs)
ORT_DOMAIN = "com.microsoft"
#: the ``doc_string`` of the Identity standing for a fed If's optional output where one branch's optional is empty
#: (``fed_optionals.select_optionals``: planned as the holding branch's bytes): whether it holds a value is known only
#: at run time, so ``fold``'s ``OptionalHasElement`` must not take it from the Identity's input (round 75, review75)
EITHER_OPTIONAL = "memplan: the optional of whichever branch runs"
#: the ``doc_string`` of a node the inference copy stands for another of the same output shape and type but another
#: value (an Identity for a MeanVarianceNormalization, ``infer._mvn_as_identity``): ``fold`` never takes its value
#: (round 79: the normalized value was folded as the input itself)
SHAPE_ONLY = "memplan: a stand-in of the node's shape alone, not its value"
def _broadcast(shapes: list) -> tuple[int, ...] | None:
    """The numpy broadcast of ``shapes``, None where they do not broadcast."""
    import numpy as np

    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        return None
