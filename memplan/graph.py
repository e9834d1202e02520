"""The graph IR: immutable tensors and nodes, validated once, indexed by integers.

Everything downstream (schedules, lifetimes, solvers, the verifier) works on the integer indices
built here, so that 100k-node graphs stay cheap; the string ids exist for users and error messages.
A ``Graph`` that exists is valid: the constructor runs every check of the graph contract and raises
``GraphError`` naming the first offending node or tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import chain
from operator import attrgetter, eq
from types import MappingProxyType
from typing import Any

from ._gc import paused
from .errors import (
    GraphError,
    array_hint,
    as_int,
    named_fields,
    named_method,
    named_options,
    not_an_index,
    plain_str,
    swapped_hint,
    unicode_twins,
    unordered,
)
from .errors import short_repr as _short
from .jsoncopy import plain_json
from .values import bounded_repr, by_value

GRAPH_FORMAT = "memplan.graph/1"
KINDS = ("input", "weight", "intermediate", "output")
_KIND_SET = frozenset(KINDS)
_flatten = chain.from_iterable   # (``_validate`` has a local ``chain``)
DEFAULT_ALIGNMENT = 256
#: Sizes above this (256 TiB) are taken to be a unit or overflow mistake, not a tensor.
MAX_TENSOR_BYTES = 1 << 48
#: The root tensors' sizes (each rounded up to the alignment) must add up to less than this: every
#: offset and arena size then fits an int64, so no planner can overflow (or search forever).
MAX_TOTAL_BYTES = 1 << 63
#: Node costs above this many microseconds (about 31 years) are a unit mistake; it keeps every sum
#: of costs finite.
MAX_COST_US = 1e15


class _NoAttrs(Mapping):
    """The type of ``NO_ATTRS``: an empty, read-only mapping that pickles and copies as that one object. It was
    a ``MappingProxyType``, which neither ``pickle`` nor ``copy.deepcopy`` takes, so no Graph, Tensor or Node
    without attrs could be sent to a worker process or deep-copied (a TypeError about a mappingproxy)."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        raise KeyError(key)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"

    # what a MappingProxyType (and a dict) also answer, so code written against either keeps working
    def copy(self) -> dict:
        return {}

    def __or__(self, other: Any) -> Any:
        return dict(other) if isinstance(other, Mapping) else NotImplemented

    def __ror__(self, other: Any) -> Any:
        return dict(other) if isinstance(other, Mapping) else NotImplemented

    def __reduce__(self) -> str:
        return "NO_ATTRS"   # pickle and copy: this module's NO_ATTRS itself


#: One shared empty attrs mapping: a dict per tensor would cost ~64 bytes x millions of tensors.
NO_ATTRS: Mapping[str, Any] = _NoAttrs()


@by_value
@named_fields
@dataclass(frozen=True, slots=True)
class Tensor:
    """A named byte range: a root buffer, or a view into another tensor (``view_of``)."""

    id: str
    size: int
    kind: str = "intermediate"
    view_of: str | None = None
    view_offset: int = 0
    attrs: Mapping[str, Any] = field(default_factory=lambda: NO_ATTRS, compare=False)


@by_value
@named_fields
@dataclass(frozen=True, slots=True)
class Node:
    """One operation; ``inplace`` pairs are ``(output_id, input_id)``."""

    id: str
    op: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    cost: float | None = None
    inplace: tuple[tuple[str, str], ...] = ()
    group: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=lambda: NO_ATTRS, compare=False)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@bounded_repr
@named_fields
@dataclass(frozen=True)
class Graph:
    """A validated graph; nodes are in a valid serial (topological) order.

    Integer indices (positions in ``tensors`` / ``nodes``) are what the pipeline uses:
    ``producer[t]`` is the producing node or -1, ``root[t]`` the root tensor of a view chain,
    ``root_offset[t]`` the byte offset of ``t`` inside that root (views of views add up theirs),
    ``written[t]`` the nearest tensor on ``t``'s view chain (``t`` itself, its parent, ... its root)
    that has a producer, or -1, ``node_inputs[n]`` / ``node_outputs[n]`` tensor indices.

    Identity: the graph keeps each ``Tensor`` and ``Node`` it is given as that very object when it is already
    in plain form (tuples, plain ints and floats, plain ``str`` ids, a mapping or ``NO_ATTRS`` for attrs). One
    that is not (lists for tuples, a numpy size or cost, ``attrs=None``, an id of a ``str`` subclass) is
    replaced by its plain equivalent, since a frozen object cannot be fixed in place and keeping the caller's
    list or subclass let the graph change, or mean other than its JSON, after validation. So ``graph.nodes[i] is
    node`` (and ``==``: a list is not equal to a tuple) holds only for plain objects: find a node or tensor by its
    id (``graph.node(nid)``, ``graph.tensor(tid)``, ``node_index``), as the rest of memplan does, never by the
    object handed in. ``attrs`` are the graph's own: each non-empty one is copied down to its last nested list, in
    plain JSON types (``jsoncopy.plain_json``: a tuple as a list, an ``IntEnum`` or numpy number as its Python value,
    a str subclass as its characters), so a Tensor or Node with attrs is always replaced. The caller's later edits
    of what it passed cannot change the graph, and the graph equals the one read back from its own JSON (both
    plan to the same bytes). ``to_dict`` hands out copies in turn.
    """

    name: str
    tensors: tuple[Tensor, ...]
    nodes: tuple[Node, ...]
    alignment: int = DEFAULT_ALIGNMENT
    #: id -> index, read-only views (``MappingProxyType``): as plain dicts, a caller's ``g.tensor_index["x"] = 5``
    #: (or ``del``, ``clear``) broke an immutable, validated graph under every later plan and check.
    tensor_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    node_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    producer: tuple[int, ...] = field(init=False, repr=False, compare=False)
    root: tuple[int, ...] = field(init=False, repr=False, compare=False)
    root_offset: tuple[int, ...] = field(init=False, repr=False, compare=False)
    written: tuple[int, ...] = field(init=False, repr=False, compare=False)
    node_inputs: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    node_outputs: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, cls in (("tensors", Tensor), ("nodes", Node)):
            _no_unordered_or_keyed(name, cls.__name__, getattr(self, name))
            try:
                items = tuple(getattr(self, name))
            except TypeError:
                raise GraphError(f"graph {name} must be a sequence of {cls.__name__}s, not "
                                 f"{type(getattr(self, name)).__name__}") from None
            for i, x in enumerate(items):
                if not isinstance(x, cls):
                    raise GraphError(f"{cls.__name__.lower()} #{i} is not a memplan {cls.__name__} "
                                     f"({type(x).__name__} {_short(x)})")
            object.__setattr__(self, name, items)
        _validate(self, attrs_owned=False)

    @classmethod
    def _of_owned_attrs(cls, name: Any, tensors: tuple, nodes: tuple, alignment: Any) -> Graph:
        """A Graph whose Tensors' and Nodes' ``attrs`` are already plain JSON objects nobody else holds (a document
        ``load_graph`` parsed, or ``graph_from_dict``'s copies): the same checks, without copying them again."""
        g = cls.__new__(cls)
        for key, value in (("name", name), ("tensors", tensors), ("nodes", nodes), ("alignment", alignment)):
            object.__setattr__(g, key, value)
        _validate(g, attrs_owned=True)
        return g

    def __eq__(self, other: object) -> bool:
        """The fields compared as the dataclass does (name, tensors, nodes, alignment), and each tensor's and node's
        ``attrs`` too. Why: ``Tensor`` and ``Node`` leave their free-form ``attrs`` out of their own ``==`` and hash,
        but the cost model reads a MUL_MAT's ``shape`` attrs, so two graphs that compared equal (and hashed alike)
        were given different ``streams="auto"`` schedules and plans (3 streams and 2, for one MUL_MAT's shape):
        equal graphs now have equal documents (``to_dict``, attrs' key order aside) and plan to the same bytes. The
        hash stays that of the other fields (equal graphs still hash alike)."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        if self is other:
            return True
        if (self.name, self.tensors, self.nodes, self.alignment) != (other.name, other.tensors, other.nodes,
                                                                     other.alignment):
            return False
        attrs = attrgetter("attrs")
        return (all(map(eq, map(attrs, self.tensors), map(attrs, other.tensors)))
                and all(map(eq, map(attrs, self.nodes), map(attrs, other.nodes))))

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and ``copy`` state: the indexes as dicts (a ``MappingProxyType`` pickles and deep-copies as
        neither), made read-only views again by ``__setstate__``."""
        state = dict(self.__dict__)
        for key in ("tensor_index", "node_index"):
            if key in state:
                state[key] = dict(state[key])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key in ("tensor_index", "node_index"):
            if key in state:
                state[key] = MappingProxyType(dict(state[key]))
        self.__dict__.update(state)

    # -- convenience -------------------------------------------------------------------------
    @named_method
    def tensor(self, tid: str) -> Tensor:
        """The tensor of id ``tid``, by its characters (``plain_str``: a str subclass whose ``==`` and ``hash`` differ
        from its characters, a case-blind one, found the graph's ``"xn"`` for ``"XN"``)."""
        try:
            return self.tensors[self.tensor_index[plain_str(tid)]]
        except (KeyError, TypeError):   # (an unhashable id, a list: a raw "unhashable type" from read, write_weight)
            raise GraphError(f"unknown tensor {_short(tid, 200)}") from None   # (a 1 MB id: a 1 MB message)

    @named_method
    def node(self, nid: str) -> Node:
        """The node of id ``nid``, by its characters (as ``tensor``)."""
        try:
            return self.nodes[self.node_index[plain_str(nid)]]
        except (KeyError, TypeError):
            raise GraphError(f"unknown node {_short(nid, 200)}") from None

    def is_root(self, t: int) -> bool:
        try:
            if t >= 0:   # (a negative index would wrap around to another tensor: ``not_an_index``)
                return self.root[t] == t
        except (TypeError, IndexError, ValueError):
            pass
        raise not_an_index(GraphError, "Graph.is_root: tensor", t, len(self.tensors))

    def writers(self, t: int) -> list[int]:
        """The producers along ``t``'s view chain, ``t``'s own first and its root's last: the nodes
        whose writes a reader of ``t`` depends on. Follows ``written``, so it costs one step per
        producer, not one per view (walking a 100k-deep chain for each of 100k readers is quadratic)."""
        out = []
        written, tensors, tindex = self.written, self.tensors, self.tensor_index
        try:
            if t < 0:
                raise IndexError
            j = written[t]
        except (TypeError, IndexError, ValueError):
            raise not_an_index(GraphError, "Graph.writers: tensor", t, len(tensors)) from None
        while j >= 0:
            out.append(self.producer[j])
            parent = tensors[j].view_of
            j = -1 if parent is None else written[tindex[parent]]
        return out

    @cached_property
    def input_writers(self) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
        """Per node, (the producers of its inputs written at their root, its inputs written through a view): the
        writers a node depends on split by how they are found (``producer`` of ``written``, or ``fold_writers``
        along the chain), made once per graph. Why: the optimizer replays the issue order of every candidate
        schedule (``optimize.events.Replay``), and looking each input's writer up again on every replay was most
        of a 50,000-node ``memory_budget`` plan's time."""
        written, producer, tensors = self.written, self.producer, self.tensors
        out = []
        for ins in self.node_inputs:
            direct: list[int] = []
            viewed: list[int] = []
            for t in ins:
                j = written[t]
                if j < 0:
                    continue
                if tensors[j].view_of is None:
                    direct.append(producer[j])
                else:
                    viewed.append(t)
            out.append((tuple(dict.fromkeys(direct)), tuple(viewed)))   # (each producer once, in order)
        return tuple(out)

    def fold_writers(self, leaf: Callable[[int], Any], join: Callable[[Any, Any], Any]) -> WriterFold:
        """``leaf(w)`` of every writer ``w`` along a tensor's view chain (``writers``), combined by
        ``join``, memoized per view: see ``WriterFold``."""
        return WriterFold(self, leaf, join)

    def offset_in_root(self, t: int) -> int:
        """Byte offset of tensor ``t`` inside its root: views of views add up their offsets (computed
        once per tensor with the roots: walking the chain for every tensor of a 100k-deep view chain
        took minutes)."""
        try:
            if t >= 0:
                return self.root_offset[t]
        except (TypeError, IndexError, ValueError):
            pass
        raise not_an_index(GraphError, "Graph.offset_in_root: tensor", t, len(self.tensors))

    def units(self) -> list[list[int]]:
        """Node indices in listed order, a fusion group as one unit (it runs as one kernel, on one
        stream, on one device), every other node alone. Scheduling and the device split both cut the
        graph only between units."""
        units: list[list[int]] = []
        last: str | None = None
        for i, node in enumerate(self.nodes):
            if node.group is not None and node.group == last:
                units[-1].append(i)
            else:
                units.append([i])
            last = node.group
        return units

    def arena_roots(self) -> list[int]:
        """The indices of the tensors that have bytes of their own in the arena, in the graph's order: its roots but
        the weights (a view lies within its root's bytes, a weight outside the arena). The buffers a plan places: the
        lifetimes' buffers, the boxes of a memory map, the spans of a trace."""
        root = self.root
        return [t for t, tensor in enumerate(self.tensors) if root[t] == t and tensor.kind != "weight"]

    def in_arena(self, t: int) -> bool:
        """Whether tensor ``t``'s bytes live in the arena (its root is not a weight)."""
        try:
            if t >= 0:
                return self.tensors[self.root[t]].kind != "weight"
        except (TypeError, IndexError, ValueError):
            pass
        raise not_an_index(GraphError, "Graph.in_arena: tensor", t, len(self.tensors))

    def groups(self) -> dict[str, tuple[int, ...]]:
        """Fusion groups: group name -> node indices in listed order."""
        out: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            if n.group is not None:
                out.setdefault(n.group, []).append(i)
        return {g: tuple(v) for g, v in out.items()}

    @named_method
    def to_dict(self) -> dict[str, Any]:
        """The ``memplan.graph/1`` document of this graph, sharing no object and no array with it: each ``attrs``
        is copied down to its last nested list (``_plain_attrs``; a shallow copy let a caller editing the document, to write a
        variant, edit the graph's shapes, and so its cost model and its later documents)."""
        tensors = []
        for t in self.tensors:
            d: dict[str, Any] = {"id": t.id, "size": t.size, "kind": t.kind}
            if t.view_of is not None:
                d["view_of"] = t.view_of
                d["view_offset"] = t.view_offset
            if t.attrs:
                d["attrs"] = _plain_attrs(t.attrs)
            tensors.append(d)
        nodes = []
        for n in self.nodes:
            d = {"id": n.id, "op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs)}
            if n.cost is not None:
                d["cost"] = n.cost
            if n.inplace:
                d["inplace"] = {o: i for o, i in in_output_order(n.inplace, n.outputs)}
            if n.group is not None:
                d["group"] = n.group
            if n.attrs:
                d["attrs"] = _plain_attrs(n.attrs)
            nodes.append(d)
        return {
            "format": GRAPH_FORMAT,
            "name": self.name,
            "alignment": self.alignment,
            "tensors": tensors,
            "nodes": nodes,
        }


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` as a dict of its own in plain JSON types (``jsoncopy.plain_json``): what a Graph keeps. The common
    attrs (string keys, plain scalars and flat lists of them: a shape, a dtype) are copied in C loops; anything else
    (a tuple, a numpy number, a str subclass, a nested object) goes through ``plain_json``."""
    if type(attrs) is dict and set(map(type, attrs)) <= _STR:
        d = attrs.copy()
        for k, v in d.items():
            if type(v) in _SCALARS:
                continue
            if type(v) is not list or not set(map(type, v)) <= _SCALARS:
                return plain_json(attrs)
            d[k] = v.copy()   # (a value replaced, no key added: the iteration stays valid)
        return d
    return plain_json(attrs)


_STR = frozenset({str})


def _read_attrs(what: str, eid: Any, attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``_plain_attrs`` of one Tensor's or Node's ``attrs`` (an empty one as ``NO_ATTRS``), a failure to read them
    named by the tensor or node. Why: ``plain_json`` asks every mapping for its ``items()`` and walks every list,
    and a caller's object may raise there (a ``Mapping`` whose ``items`` or ``__getitem__`` fails, a dict
    subclass whose ``items()`` is no iterable): a raw ``RuntimeError``/``TypeError`` from ``build()`` named nothing."""
    try:
        return _plain_attrs(attrs) or NO_ATTRS
    except Exception as exc:   # (the caller's own code: any exception; KeyboardInterrupt passes)
        raise GraphError(f"{what} {_short(eid)}: attrs cannot be read as JSON ({_short(exc)})") from None


def check_graph(graph: Any, what: str) -> Graph:
    """``graph`` if it is a ``Graph``, else GraphError saying that ``what`` (a function name) needs one."""
    if not isinstance(graph, Graph):
        raise GraphError(f"{what} needs a memplan Graph (memplan.GraphBuilder, load_graph, graph_from_dict), "
                         f"not {type(graph).__name__}")
    return graph


class WriterFold:
    """``of(t)``: ``leaf(w)`` of every writer ``w`` of tensor ``t`` (``Graph.writers``: the producers
    along its view chain), combined by ``join`` (associative and commutative, such as ``max``);
    None when ``t`` has no writer. Each view's value is made once, from the one above it, so the
    reads of a chain of k views that each have a producer cost O(k) joins in all, where listing
    every writer for every read costs O(k^2). Valid while ``leaf`` of those writers does not change.
    """

    def __init__(self, graph: Graph, leaf: Callable[[int], Any], join: Callable[[Any, Any], Any],
                 known: Callable[[int], Any] | None = None):
        self.graph, self.leaf, self.join = graph, leaf, join
        self.memo: dict[int, Any] = {}
        #: ``known(j)``: the value of written tensor ``j`` when another fold already holds it (None: not known).
        #: Why: a replay of a short window of positions (``optimize.events.Replay.rerun_window``) reads views at
        #: the end of long chains; walking each chain up to its root again in every window was O(chain) per window
        self.known = known

    def of(self, t: int) -> Any:
        g, memo, known = self.graph, self.memo, self.known
        tensors, written, tindex = g.tensors, g.written, g.tensor_index
        j = written[t]
        if j < 0:
            return None
        if tensors[j].view_of is None:  # written at its root only: one writer, nothing to keep
            return self.leaf(g.producer[j])
        chain = []
        while j >= 0 and j not in memo:  # up to a view already known, or past the root
            if known is not None:
                v = known(j)
                if v is not None:
                    memo[j] = v
                    break
            chain.append(j)
            parent = tensors[j].view_of
            j = -1 if parent is None else written[tindex[parent]]
        acc = memo[j] if j >= 0 else None
        for c in reversed(chain):  # down again, each from the one above
            v = self.leaf(g.producer[c])
            acc = v if acc is None else self.join(acc, v)
            memo[c] = acc
        return acc


def check_alignment(alignment: object) -> None:
    """``GraphError`` unless ``alignment`` is a graph's alignment: a power of two of at most
    ``MAX_TENSOR_BYTES``. Shared by the graph check and by the importers and ``--alignment``, which check it
    before a long import rather than after it (and name the option, not the model)."""
    a = as_int(alignment)   # a numpy integer too (``Graph`` stores it as a plain int)
    if a is None and not isinstance(alignment, (str, bytes, bool)):   # 256.0: a number, just not an integer
        raise GraphError(f"alignment {_short(alignment)} is not an integer (a power of two of bytes, such as 256)")
    if a is None or a <= 0 or a & (a - 1):
        raise GraphError(f"alignment {_short(alignment)} is not a positive power of two")
    if a > MAX_TENSOR_BYTES:  # offsets are int64: 2**70 would overflow, not plan
        raise GraphError(f"alignment {_short(a)} is absurd (over {MAX_TENSOR_BYTES} bytes)")


def _plain_numbers(g: Graph) -> None:
    """``g``'s integers as plain ints: the alignment, each tensor's size and view offset, and a node cost
    that is an integer to Python (``errors.as_int``: numpy integers from shape arithmetic), and a float
    subclass cost (``np.float64``) as a float. Values that are no integer stay, for ``_validate`` to name.
    Stored plain, the graph's and its plans' JSON are the bytes plain ints give, and no int64 arithmetic on
    them can wrap around. Tensors and nodes that need it are replaced (one type test each otherwise)."""
    if type(g.alignment) is not int and as_int(g.alignment) is not None:
        object.__setattr__(g, "alignment", as_int(g.alignment))
    odd = [i for i, t in enumerate(g.tensors) if type(t.size) is not int or type(t.view_offset) is not int]
    if odd:
        tensors = list(g.tensors)
        for i in odd:
            t = tensors[i]
            size, off = as_int(t.size), as_int(t.view_offset)
            tensors[i] = replace(t, size=t.size if size is None else size,
                                 view_offset=t.view_offset if off is None else off)
        object.__setattr__(g, "tensors", tuple(tensors))
    odd = [i for i, n in enumerate(g.nodes) if n.cost is not None and type(n.cost) is not int
           and type(n.cost) is not float]
    if odd:
        nodes = list(g.nodes)
        for i in odd:
            c = nodes[i].cost
            cost = float(c) if isinstance(c, float) else as_int(c)
            if cost is not None:
                nodes[i] = replace(nodes[i], cost=cost)
        object.__setattr__(g, "nodes", tuple(nodes))


def _types(items: tuple, attr: str) -> set[type]:
    """The types of ``attr`` over ``items``, in C loops (a million nodes in ~0.05 s, a Python loop took 0.4 s)."""
    return set(map(type, map(attrgetter(attr), items)))


def _own_containers(g: Graph) -> None:
    """Each node's ``inputs``, ``outputs`` and ``inplace`` given as lists (a Node built in code) as plain tuples, and
    ``attrs=None`` as no attrs. A list stayed the caller's own: appending to it after ``build()`` changed the
    validated graph under its indices (``node.inputs`` named a tensor ``node_inputs`` did not, ``to_dict`` wrote
    another graph) and made the frozen Graph unhashable; ``attrs=None`` passed the check and then failed as an
    AttributeError wherever the cost model read a shape (``plan(streams="auto")`` of a MUL_MAT). Only nodes and
    tensors that need it are replaced (the rest cost a few C-level passes)."""
    if type(None) in _types(g.tensors, "attrs"):
        odd = [i for i, t in enumerate(g.tensors) if t.attrs is None]
        tensors = list(g.tensors)
        for i in odd:
            tensors[i] = replace(tensors[i], attrs=NO_ATTRS)
        object.__setattr__(g, "tensors", tuple(tensors))
    if type(None) in _types(g.nodes, "attrs") or any(_types(g.nodes, k) - {tuple} for k in ("inputs", "outputs", "inplace")):
        odd = [i for i, n in enumerate(g.nodes) if n.attrs is None or type(n.inputs) is not tuple
               or type(n.outputs) is not tuple or type(n.inplace) is not tuple]
        nodes = list(g.nodes)
        for i in odd:
            n = nodes[i]
            # (a list or a tuple subclass; what is neither stays, for ``_validate`` to name)
            nodes[i] = replace(n, attrs=NO_ATTRS if n.attrs is None else n.attrs,
                               **{k: tuple(getattr(n, k)) for k in ("inputs", "outputs", "inplace")
                                  if isinstance(getattr(n, k), (tuple, list)) and type(getattr(n, k)) is not tuple})
        object.__setattr__(g, "nodes", tuple(nodes))


def _plain_attrs_of(g: Graph) -> None:
    """Each Tensor's and Node's ``attrs`` as the graph's own plain copy (``_plain_attrs``; an empty one as
    ``NO_ATTRS``), the Tensor or Node replaced. The graph kept the caller's objects: appending to a shape list
    after ``build()`` changed the validated graph (its cost model, its JSON), and a tuple, an ``IntEnum`` or a numpy
    number in attrs made a graph unequal to the one read back from its own JSON. What is no mapping stays, for
    ``_validate`` to name. Tensors and nodes without attrs are kept (one C-level pass finds them)."""
    for name, what, make in (("tensors", "tensor", _with_tensor_attrs), ("nodes", "node", _with_node_attrs)):
        items = getattr(g, name)
        odd = [i for i, a in enumerate(map(attrgetter("attrs"), items))
               if a is not NO_ATTRS and (type(a) is dict or isinstance(a, Mapping))]
        if odd:
            items = list(items)
            for i in odd:
                items[i] = make(items[i], _read_attrs(what, items[i].id, items[i].attrs))
            object.__setattr__(g, name, tuple(items))


def _with_tensor_attrs(t: Tensor, attrs: Mapping[str, Any]) -> Tensor:
    return Tensor(t.id, t.size, t.kind, t.view_of, t.view_offset, attrs)


def _with_node_attrs(n: Node, attrs: Mapping[str, Any]) -> Node:
    return Node(n.id, n.op, n.inputs, n.outputs, n.cost, n.inplace, n.group, attrs)


def _str_subclass(types: set[type]) -> bool:
    """Whether ``types`` holds a subclass of ``str`` (not ``str`` itself)."""
    return any(t is not str and issubclass(t, str) for t in types)


def _plain_strings(g: Graph) -> None:
    """Every id, kind, op and group name of ``g`` that is an instance of a ``str`` subclass as the plain ``str``
    of its characters (``errors.plain_str``), and the graph's name. Such an id (from code) may hash or compare
    unlike its characters: two tensors ``"x"`` whose class compares by identity passed as distinct, were saved as
    a file repeating the id ``"x"`` and refused by ``load_graph``; a class that compares case-blind read tensor
    ``"x"`` for an input ``"X"``. Made plain, the graph means what its JSON says (and such a graph is refused here,
    naming the id), so save, load and plan give the same bytes. Only entries holding one are replaced (the rest
    cost a few C-level passes over the types)."""
    if _str_subclass({type(g.name)}):
        object.__setattr__(g, "name", plain_str(g.name))
    if any(_str_subclass(_types(g.tensors, k)) for k in ("id", "kind", "view_of")):
        tensors = list(g.tensors)
        for i, t in enumerate(tensors):
            if _str_subclass({type(t.id), type(t.kind), type(t.view_of)}):
                tensors[i] = replace(t, id=plain_str(t.id), kind=plain_str(t.kind), view_of=plain_str(t.view_of))
        object.__setattr__(g, "tensors", tuple(tensors))

    def listed(key: str) -> set[type]:   # the types of the ids in each node's tuple ``key`` (what is no tuple: later)
        try:   # in C; an entry that is no iterable (``_validate`` names it) sends it through the filtered loop
            return set(map(type, chain.from_iterable(map(attrgetter(key), g.nodes))))
        except TypeError:
            return set(map(type, chain.from_iterable(v for v in map(attrgetter(key), g.nodes) if type(v) is tuple)))

    try:
        pairs = _str_subclass(set(map(type, chain.from_iterable(chain.from_iterable(map(attrgetter("inplace"), g.nodes))))))
    except TypeError:
        pairs = _str_subclass(set(map(type, chain.from_iterable(
            p for ip in map(attrgetter("inplace"), g.nodes) if type(ip) is tuple for p in ip if type(p) is tuple))))
    if pairs or any(_str_subclass(_types(g.nodes, k)) for k in ("id", "op", "group")) \
            or _str_subclass(listed("inputs")) or _str_subclass(listed("outputs")):
        nodes = list(g.nodes)
        for i, n in enumerate(nodes):
            ids = {type(n.id), type(n.op), type(n.group)}
            for key in ("inputs", "outputs"):
                v = getattr(n, key)
                ids |= set(map(type, v)) if type(v) is tuple else set()
            if pairs and type(n.inplace) is tuple:
                ids |= set(map(type, chain.from_iterable(p for p in n.inplace if type(p) is tuple)))
            if _str_subclass(ids):
                ip = n.inplace
                if type(ip) is tuple:
                    ip = tuple(tuple(map(plain_str, p)) if type(p) is tuple else p for p in ip)
                nodes[i] = replace(n, id=plain_str(n.id), op=plain_str(n.op), group=plain_str(n.group), inplace=ip,
                                   **{k: tuple(map(plain_str, getattr(n, k))) for k in ("inputs", "outputs")
                                      if type(getattr(n, k)) is tuple})
        object.__setattr__(g, "nodes", tuple(nodes))


@paused
def _validate(g: Graph, *, attrs_owned: bool) -> None:
    if not isinstance(g.name, str):
        raise GraphError("graph 'name' must be a string")
    check_alignment(g.alignment)
    _plain_numbers(g)
    _own_containers(g)
    if not attrs_owned:
        _plain_attrs_of(g)
    _plain_strings(g)

    tindex: dict[str, int] = {}
    total = 0  # root bytes, each rounded up to the alignment
    align = g.alignment
    # each check has a fast path for the common plain value (an exact type test, no ABC ``isinstance``, no call),
    # else the full check and its message: with the GC paused, half the CPU time of ``load_graph`` of a 200,000-node
    # chain (4.2 -> 2.0 s; docs/experiments/planio_s66.py)
    for i, t in enumerate(g.tensors):
        eid = t.id
        if type(eid) is str and eid and eid not in tindex:
            tindex[eid] = i
        else:
            _register_id(tindex, "tensor", i, eid)
        a = t.attrs
        if a is not NO_ATTRS and a is not None and type(a) is not dict and not isinstance(a, Mapping):
            # (save_graph raised TypeError on a list)
            raise GraphError(f"tensor {t.id!r}: attrs must be a mapping, not {type(t.attrs).__name__} {_short(t.attrs)}")
        if not (type(t.kind) is str and t.kind in _KIND_SET) and (not isinstance(t.kind, str) or t.kind not in KINDS):
            raise GraphError(f"tensor {t.id!r}: unknown kind {_short(t.kind)} (expected one of {', '.join(KINDS)})")
        if type(t.size) is not int and not _is_int(t.size):   # (a bool is an int to Python, never a byte count)
            kind = " (a bool)" if isinstance(t.size, bool) else ""
            raise GraphError(f"tensor {t.id!r}: size {_short(t.size)}{kind} is not an integer (field 'size': a "
                             "whole number of bytes)")
        if t.size < 0:
            raise GraphError(f"tensor {t.id!r}: negative size {_short(t.size)}")
        if t.size > MAX_TENSOR_BYTES:
            raise GraphError(f"tensor {t.id!r}: size {_short(t.size)} is absurd (over {MAX_TENSOR_BYTES} bytes)")
        if t.view_of is None:
            total += -(-t.size // align) * align
            if not _is_int(t.view_offset) or t.view_offset != 0:  # a dropped or misspelt view_of: not a root
                raise GraphError(f"tensor {t.id!r}: view_offset {_short(t.view_offset)} but no view_of (only a "
                                 "view has an offset, in the parent view_of names)")
        elif not isinstance(t.view_of, str):
            raise GraphError(f"view {t.id!r}: view_of {_short(t.view_of)} is not a tensor id (a string)")
        elif not _is_int(t.view_offset) or not 0 <= t.view_offset <= MAX_TENSOR_BYTES:
            raise GraphError(f"view {t.id!r}: view_offset {_short(t.view_offset)} is not a non-negative integer "
                             f"(at most {MAX_TENSOR_BYTES})")
    if total >= MAX_TOTAL_BYTES:
        raise GraphError(f"the tensors' sizes add up to {total} bytes (each rounded up to the alignment {align}), "
                         f"over the 2**63-byte limit")

    # views: parents exist, no cycles, inside parent; compute roots and offsets in them
    root = list(range(len(g.tensors)))
    root_offset = [0] * len(g.tensors)
    state = [0] * len(g.tensors)  # 0 new, 1 visiting, 2 done
    for i, t in enumerate(g.tensors):
        if t.view_of is None or state[i] == 2:
            continue
        chain = []
        j = i
        while True:
            tj = g.tensors[j]
            if tj.view_of is None or state[j] == 2:
                break
            if state[j] == 1:   # (it said "view cycle through tensor 'c1'" alone: which field, and which tensors)
                loop = [g.tensors[c].id for c in chain[chain.index(j):]] + [tj.id]
                how = ("its view_of names itself" if len(loop) == 2 else
                       "view_of " + " -> ".join(_short(x) for x in loop[:8]) + (" -> ..." if len(loop) > 8 else ""))
                raise GraphError(f"view cycle through tensor {tj.id!r}: {how} (a view lies in another tensor, "
                                 "and the chain must end at a root)")
            state[j] = 1
            chain.append(j)
            p = tindex.get(tj.view_of)
            if p is None:
                raise GraphError(f"view {tj.id!r}: view_of names unknown tensor {tj.view_of!r}"
                                 f"{unicode_twins(tindex)(tj.view_of)}")
            parent = g.tensors[p]
            if tj.view_offset + tj.size > parent.size:
                raise GraphError(
                    f"view {tj.id!r} [{tj.view_offset}, {tj.view_offset + tj.size}) lies outside "
                    f"its parent {parent.id!r} of size {parent.size}"
                )
            j = p
        r, off = root[j], root_offset[j]
        for c in reversed(chain):   # from the view next to j down to i: each adds its own offset
            off += g.tensors[c].view_offset
            root[c], root_offset[c], state[c] = r, off, 2
            _check_view_kind(g.tensors[c], g.tensors[r])

    nindex: dict[str, int] = {}
    producer = [-1] * len(g.tensors)
    try:   # every id a node reads or writes a plain str (a C pass): its index looked up at once, no test an id
        plain_ids = set(map(type, _flatten(_flatten((n.inputs, n.outputs) for n in g.nodes)))) <= _STR
    except TypeError:   # (an inputs that is no iterable: named below)
        plain_ids = False
    node_inputs: list[tuple[int, ...]] = []
    node_outputs: list[tuple[int, ...]] = []
    for ni, n in enumerate(g.nodes):
        eid = n.id
        if type(eid) is str and eid and eid not in nindex:
            nindex[eid] = ni
        else:
            _register_id(nindex, "node", ni, eid)
        if not isinstance(n.op, str):
            raise GraphError(f"node {n.id!r}: op must be a string")
        if type(n.inputs) is not tuple or type(n.outputs) is not tuple or type(n.inplace) is not tuple:
            for what, ids in (("inputs", n.inputs), ("outputs", n.outputs), ("inplace", n.inplace)):
                if isinstance(ids, str):  # its characters would be taken for tensor ids
                    raise GraphError(f"node {n.id!r}: {what} must be a tuple of tensor ids, not the string "
                                     f"{_short(ids)}")
                if not isinstance(ids, (tuple, list)):   # a Node built in code: None was a TypeError, a set unordered
                    raise GraphError(f"node {n.id!r}: {what} must be a tuple"
                                     f"{' of (output, input) pairs' if what == 'inplace' else ' of tensor ids'}, not "
                                     f"{type(ids).__name__} {_short(ids)}")
        a = n.attrs
        if a is not NO_ATTRS and a is not None and type(a) is not dict and not isinstance(a, Mapping):
            raise GraphError(f"node {n.id!r}: attrs must be a mapping, not {type(n.attrs).__name__} {_short(n.attrs)}")
        c = n.cost
        if c is not None and not ((type(c) is float or type(c) is int) and 0 <= c <= MAX_COST_US) and (
            isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= MAX_COST_US
        ):
            kind = "" if isinstance(n.cost, (int, float)) and not isinstance(n.cost, bool) else \
                f" ({type(n.cost).__name__}: give a Python int or float)"
            raise GraphError(f"node {n.id!r}: cost {_short(n.cost)}{kind} is not a finite non-negative number of "
                             f"microseconds (at most {MAX_COST_US:g})")
        ins = list(map(tindex.get, n.inputs)) if plain_ids else [None] if n.inputs else []
        if None in ins:
            ins = []
            for tid in n.inputs:
                t = tindex.get(tid) if isinstance(tid, str) else None
                if t is None:
                    raise GraphError(f"node {n.id!r} reads unknown tensor {_short(tid)}{unicode_twins(tindex)(tid)}")
                ins.append(t)
        outs = []
        for tid in n.outputs:
            t = tindex.get(tid) if isinstance(tid, str) else None
            if t is None:
                raise GraphError(f"node {n.id!r} writes unknown tensor {_short(tid)}{unicode_twins(tindex)(tid)}")
            if producer[t] == ni:   # (it said "produced twice (by 'r' and 'r')", as if two nodes were at fault)
                raise GraphError(f"node {n.id!r} lists output {tid!r} twice (a node writes each of its outputs once)")
            if producer[t] != -1:
                raise GraphError(
                    f"tensor {tid!r} is produced twice (by {g.nodes[producer[t]].id!r} and {n.id!r})"
                )
            kind = g.tensors[t].kind
            if kind in ("input", "weight"):
                raise GraphError(f"tensor {tid!r} is {'an' if kind == 'input' else 'a'} {kind} but node {n.id!r} produces it")
            producer[t] = ni
            outs.append(t)
        node_inputs.append(tuple(ins))
        node_outputs.append(tuple(outs))
        if not n.inplace:
            continue
        outset = set(n.outputs)
        inset = set(n.inputs)
        paired: set[str] = set()
        for pair in n.inplace:
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise GraphError(f"node {n.id!r}: malformed inplace entry {_short(pair)} (expected output: input ids)")
            o, i = pair
            if o in paired:   # a Node built in code: the JSON map (save_graph) keeps one of them, another graph
                raise GraphError(f"node {n.id!r}: inplace output {o!r} is paired twice (inplace maps each output "
                                 "to one input)")
            paired.add(o)
            if o not in outset:
                raise GraphError(f"node {n.id!r}: inplace output {o!r} is not an output of the node")
            if i not in inset:
                raise GraphError(f"node {n.id!r}: inplace input {i!r} is not an input of the node")

    # producers must come earlier than readers (second pass: producer[] now complete). Each tensor's
    # latest producer along its view chain is computed once, so many readers of a deep chain cost
    # one step each; the chain is walked only to name the offender.
    written, latest = _chain_producers(g.tensors, tindex, producer)
    for ni, n in enumerate(g.nodes):
        for t in node_inputs[ni]:
            if latest[t] < ni:
                continue
            j = t
            while True:
                p = producer[j]
                if p >= ni:
                    what = "cycle" if p == ni else _order_or_cycle(g, tindex, producer, node_inputs, ni)
                    # name the tensor whose writer comes late: for a view that is a tensor up its chain,
                    # never the writing node alone (it read "whose view parent 'a'", 'a' being a node)
                    via = "" if j == t else f", a view of {g.tensors[j].id!r},"
                    # a node reading what it writes itself: its own id "comes later" than itself read as nonsense
                    late = "is the node itself" if p == ni else "comes later"
                    raise GraphError(
                        f"node {n.id!r} reads tensor {g.tensors[t].id!r}{via} whose producer "
                        f"{g.nodes[p].id!r} {late} ({what})"
                    )
                j = tindex[g.tensors[j].view_of]

    for i, t in enumerate(g.tensors):
        if t.view_of is None and t.kind in ("intermediate", "output") and producer[i] == -1:
            raise GraphError(f"{t.kind} tensor {t.id!r} has no producing node")

    seen_groups: dict[str, int] = {}
    for ni, n in enumerate(g.nodes):
        if n.group is None:
            continue
        if not isinstance(n.group, str):
            raise GraphError(f"node {n.id!r}: group must be a string")
        last = seen_groups.get(n.group)
        if last is not None and last != ni - 1:
            raise GraphError(
                f"fusion group {n.group!r} is not contiguous: node {n.id!r} is separated from "
                f"{g.nodes[last].id!r}"
            )
        seen_groups[n.group] = ni

    object.__setattr__(g, "tensor_index", MappingProxyType(tindex))
    object.__setattr__(g, "node_index", MappingProxyType(nindex))
    object.__setattr__(g, "producer", tuple(producer))
    object.__setattr__(g, "root", tuple(root))
    object.__setattr__(g, "root_offset", tuple(root_offset))
    object.__setattr__(g, "written", tuple(written))
    object.__setattr__(g, "node_inputs", tuple(node_inputs))
    object.__setattr__(g, "node_outputs", tuple(node_outputs))


def _check_view_kind(view: Tensor, root: Tensor) -> None:
    """A view of kind input or weight lies in a root of its own kind: an input's bytes are written by the
    host before the run and a weight's live outside the arena, so in another root they were planned (a
    weight given an arena offset) or overwritten by the root's producer without a word. Views of kind
    intermediate or output may lie in any root: an output view of a weight (a KV-cache slot a step
    returns) is never planned, and a weight lives the whole run, as an output must."""
    if view.kind in ("input", "weight") and root.kind != view.kind:
        raise GraphError(f"view {view.id!r} is {_an(view.kind)} but its root {root.id!r} is {_an(root.kind)}: a view "
                         f"of kind {view.kind!r} must lie in a root of that kind (or be an 'intermediate' or 'output' view)")


def _an(kind: str) -> str:
    """A tensor kind with its article: "an input", "a weight"."""
    return f"{'an' if kind[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {kind}"


def _chain_producers(tensors, tindex: dict[str, int], producer: list[int]) -> tuple[list[int], list[int]]:
    """For each tensor, in one pass over all view chains (each view computed once, from its parent):
    the nearest tensor at or above it on its chain that has a producer (``Graph.written``), and the
    latest producing node along the chain (-1 when none). The chains must be acyclic."""
    T = len(tensors)
    written = [-1] * T
    latest = [-1] * T
    done = [False] * T
    for t in range(T):
        if done[t]:
            continue
        chain = []
        j = t
        w = lp = -1
        while True:  # up to the root, or to a view already done
            chain.append(j)
            parent = tensors[j].view_of
            if parent is None:
                break
            j = tindex[parent]
            if done[j]:
                w, lp = written[j], latest[j]
                break
        for c in reversed(chain):  # down again: each from its parent's facts
            p = producer[c]
            if p >= 0:
                w = c
                if p > lp:
                    lp = p
            written[c], latest[c] = w, lp
            done[c] = True
    return written, latest


def _register_id(index: dict[str, int], what: str, i: int, eid: Any) -> None:
    if not isinstance(eid, str):   # (the field is missing, null, a number, ...)
        raise GraphError(f"{what} #{i}: field 'id' must be a non-empty string, not "
                         f"{'missing' if eid is None else _short(eid)}")
    if not eid:   # (it said "has no string id" of the string "", which reads as a missing or wrong-typed field)
        raise GraphError(f"{what} #{i}: field 'id' is the empty string '' (an id must be a non-empty string)")
    if eid in index:
        raise GraphError(f"duplicate {what} id {eid!r}")
    index[eid] = i


def _entries(doc: dict, key: str, what: str, source: str, owned: bool):
    """(entry, id, attrs) of each object in ``doc[key]``, naming a malformed one by list and index; each attrs a
    plain copy of its own (``_plain_attrs``) unless the document is ``owned`` (parsed for this call alone)."""
    entries = doc.get(key)
    if not isinstance(entries, list):
        # a field left out is named as missing (it said "'nodes' must be a list" of a graph with no 'nodes' key,
        # as if one were there of another type), as the plan reader names its own missing fields
        if key not in doc:
            raise GraphError(f"{source}: no {key!r} field (a list of the graph's {what}s; [] for none)")
        raise GraphError(f"{source}: {key!r} must be a list")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise GraphError(f"{source}: {key}[{i}] is not an object")
        eid = e.get("id")
        if not isinstance(eid, str):
            raise GraphError(f"{source}: {key}[{i}] has no string 'id'")
        attrs = e.get("attrs")  # absent or null: none; 0, false, [] or "" is a mistake, not "none"
        if attrs is None:
            attrs = NO_ATTRS
        elif not isinstance(attrs, (dict, MappingProxyType)):
            raise GraphError(f"{what} {eid!r}: 'attrs' must be an object, not {_short(attrs)}")
        out.append((e, eid, NO_ATTRS if not attrs else attrs if owned and type(attrs) is dict else
                    _read_attrs(what, eid, attrs)))
    return out


#: the fields of ``memplan.graph/1`` (../shared/CONTRACT.md) per object; ``attrs`` holds the free-form ones
DOC_FIELDS = frozenset(("format", "name", "alignment", "tensors", "nodes"))
TENSOR_FIELDS = frozenset(("id", "size", "kind", "view_of", "view_offset", "attrs"))
NODE_FIELDS = frozenset(("id", "op", "inputs", "outputs", "cost", "inplace", "group", "attrs"))


_NOT_A_FIELD = f" is not a field of {GRAPH_FORMAT}"   # (left out where one warning names several fields)


def _misspelt(entries: Iterable[dict], fields: frozenset[str], what: str, hints: list[str]) -> None:
    """Append to ``hints`` a note for each distinct unknown key of ``entries`` that is close to one of ``fields`` in
    an entry without that field. Unknown keys are ignored, as the contract says; close ones are far more often a
    typo than an extension (``in_place`` planned a user's in-place pair as two buffers without a word). Beside the
    field it is close to, a key is no typo of it but a free-form field of its own (a top-level ``notes`` by
    ``nodes``, a tensor's ``uid`` by its ``id``), and "did you mean 'nodes'?" was a false alarm on a legit
    document. Each distinct key is matched once, so a million entries cost a set difference each."""
    near_of: dict[Any, str | None] = {}   # unknown key -> the field it is close to (None: none)
    misspelt: dict[Any, str] = {}          # in the order first met
    for e in entries:
        if e.keys() <= fields:
            continue
        for key in e:
            if key in fields or key in misspelt:
                continue
            if key not in near_of:
                near_of[key] = _near_field(key, fields)
            near = near_of[key]
            if near is not None and near not in e:
                misspelt[key] = near
    for key, near in misspelt.items():
        hints.append(f"{what} field {_short(key)}{_NOT_A_FIELD} (did you mean {near!r}?)")


def _near_field(key: Any, fields: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The field of ``fields`` that ``key`` (case and ``-`` folded) is close to, or None: the one matcher of a graph
    document's fields and the builder's keywords."""
    # str's own methods: a str subclass's ``lower`` is the caller's code (one that raised was a raw traceback)
    folded = str.lower(key).replace("-", "_") if isinstance(key, str) else ""
    return _close_match(folded, tuple(sorted(fields)), cutoff)


@lru_cache(maxsize=4096)
def _close_match(folded: str, fields: tuple[str, ...], cutoff: float) -> str | None:
    """``_near_field``'s match, memoised: the builder asks it for every attr key of every tensor and node (a shape,
    a dtype), and difflib per key was most of building a graph (2,450 matches of a few distinct keys for the 8B
    Llama's 1,225 tensors). ``folded`` is a plain str, so the cache never calls the caller's ``__hash__``."""
    import difflib

    near = difflib.get_close_matches(folded, fields, n=1, cutoff=cutoff)
    return near[0] if near else None


def missing_field_note(doc: dict, key: str, fields: Iterable[str], where: str = "the document") -> str:
    """``"; note: ..."`` naming a key of ``doc`` (``where``: "the document", "the entry") that is not one of
    ``fields`` but close to the missing field ``key`` (a typo), else ``""``: for the errors that a missing field
    raises before the graph's own field hints are gathered (a ``"Format"`` key: "unknown format None" alone), and
    for the plan reader's."""
    if key in doc:
        return ""
    near = next((k for k in doc if k not in fields and _near_field(k, (key,)) == key), None)
    return f"; note: {where} has {_short(near)} (did you mean {key!r}?)" if near is not None else ""


@named_options
def graph_from_dict(doc: Any, *, source: str | None = None) -> Graph:
    """Build a Graph from a parsed ``memplan.graph/1`` document, naming bad fields in a ``GraphError``.
    ``source`` names the document (its file name, say): every message then starts with ``source: ``, as
    ``plan_from_dict``'s do with its ``source``. Why every one: only the document-level messages (``'tensors'
    must be a list``) started with it, and an entry's (a tensor's size, a duplicate id, a node reading an unknown
    tensor: most of them) named the entry alone, so a caller reading several documents could not tell which was
    wrong. Left out, the document-level messages say ``graph:`` and an entry's name the entry alone. The graph keeps
    copies of the ``attrs`` objects (nested lists included): the caller's later edits of ``doc`` do not reach it."""
    if source is None:
        return graph_from_doc(doc, source="graph", owned=False, name_all=False)
    return graph_from_doc(doc, source=source, owned=False)


def in_output_order(pairs: tuple, outputs: Sequence[object]) -> tuple:
    """A node's ``inplace`` pairs ``(output, input)`` in the order of its ``outputs`` (an output that is none of them
    last, in its place among such: the graph check names it). Why: an object's key order is no part of a graph
    document (docs/format.md), but the pairs kept it and it came back out wherever the graph is written
    (``--graph-out``, a device split's graph, ``save_graph``): the same document with its keys sorted wrote
    ``{"p": "a", "q": "c"}`` where the original wrote ``{"q": "c", "p": "a"}``. Read, built and written so, every
    order of the same pairs is one graph and one document."""
    if len(pairs) < 2:
        return pairs
    at = {o: k for k, o in enumerate(outputs) if type(o) is str}
    return tuple(sorted(pairs, key=lambda p: at.get(p[0], len(at)) if isinstance(p, tuple) and p else len(at)))


@paused
def graph_from_doc(doc: Any, *, source: str, owned: bool, name_all: bool = True) -> Graph:
    """``graph_from_dict``; ``owned``: ``doc`` was parsed for this call and nobody else holds it (``load_graph``),
    so its ``attrs`` are kept as they are, not copied (a microsecond per tensor of a million-tensor file).
    ``name_all``: every GraphError's message starts with ``source: `` (``graph_from_dict``'s docstring)."""
    if not isinstance(source, str):   # the label every message starts with
        raise GraphError(f"source must be a string naming the document, not {type(source).__name__}")
    try:
        return _graph_of_checked_doc(doc, source, owned)
    except GraphError as exc:
        if not name_all or str(exc).startswith(f"{source}: "):
            raise
        raise GraphError(f"{source}: {exc}") from None


def _graph_of_checked_doc(doc: Any, source: str, owned: bool) -> Graph:
    """``graph_from_doc`` once ``source`` is known to be a string: the messages of the document as a whole start
    with it, an entry's name the entry."""
    if not isinstance(doc, dict):
        raise GraphError(f"{source}: top level must be a JSON object" + array_hint(doc, "graph"))
    fmt = doc.get("format")
    if not isinstance(fmt, str) or fmt != GRAPH_FORMAT:   # a numpy array compared elementwise
        what = f"unknown format {_short(fmt)}" if "format" in doc else "no 'format' field"   # (not "format None")
        raise GraphError(f"{source}: {what} (expected {GRAPH_FORMAT!r})"
                         + swapped_hint(fmt, "graph", doc) + missing_field_note(doc, "format", DOC_FIELDS))
    # fields close to the format's: warned about once the graph is read, or (one line) beside the error they caused
    hints: list[str] = []
    try:
        graph = _graph_of_doc(doc, source, owned, hints)
    except GraphError as exc:
        if hints:
            raise GraphError(f"{exc}; note: {hints[0]}") from None
        raise
    import warnings

    from .errors import FieldWarning, caller_stacklevel

    if hints:
        warnings.warn(FieldWarning(f"{source}: {_hints_text(hints)}; ignored"), stacklevel=caller_stacklevel())
    return graph


#: the misspelt fields one warning names; the rest are counted
HINTS_NAMED = 3


def _hints_text(hints: list[str]) -> str:
    """The one warning's text for ``hints`` (``_misspelt``'s notes): a single note as it is, several as their count,
    the first ``HINTS_NAMED`` (each "tensor field 'x' (did you mean 'y'?)") and how many more. Why one: a document
    with 1,000 distinct misspelt keys gave 1,000 warnings (1,000 ``memplan: warning:`` lines in the CLI)."""
    if len(hints) == 1:
        return hints[0]
    named = ", ".join(h.replace(_NOT_A_FIELD, "") for h in hints[:HINTS_NAMED])
    more = f" and {len(hints) - HINTS_NAMED} more" if len(hints) > HINTS_NAMED else ""
    return f"{len(hints)} fields are not fields of {GRAPH_FORMAT}: {named}{more}"


def _graph_of_doc(doc: dict, source: str, owned: bool, hints: list[str]) -> Graph:
    _misspelt([doc], DOC_FIELDS, "top-level", hints)
    tensor_entries = _entries(doc, "tensors", "tensor", source, owned)
    _misspelt((e for e, _, _ in tensor_entries), TENSOR_FIELDS, "tensor", hints)
    tensors = []
    for td, tid, attrs in tensor_entries:
        if "size" not in td:
            raise GraphError(f"tensor {tid!r} has no 'size'")
        if "kind" not in td:   # not optional in the contract: a default read a misspelt "kind" key's output as an
            # intermediate, whose bytes the plan then reused after its producer (a silently wrong plan)
            raise GraphError(f"tensor {tid!r} has no 'kind' (one of {', '.join(KINDS)})")
        view_offset = td.get("view_offset", 0)
        if view_offset is None and td.get("view_of") is None:  # null beside no view_of: no offset, as if absent
            view_offset = 0
        tensors.append(Tensor(tid, td["size"], td["kind"], td.get("view_of"), view_offset, attrs))   # (positional:
        # keywords cost a third more, a second in a million-tensor file)
    nodes = []
    node_entries = _entries(doc, "nodes", "node", source, owned)
    _misspelt((e for e, _, _ in node_entries), NODE_FIELDS, "node", hints)
    for nd, nid, attrs in node_entries:
        for key in ("inputs", "outputs"):   # not optional in the contract: a default [] read a misspelt "input" key
            if key not in nd:                 # as a node reading nothing, whose inputs' bytes the plan then reused
                raise GraphError(f"node {nid!r} has no {key!r} (a list of tensor ids, [] for none)")
        ins = nd["inputs"]
        outs = nd["outputs"]
        if not isinstance(ins, list) or not isinstance(outs, list):
            raise GraphError(f"node {nid!r}: 'inputs' and 'outputs' must be lists")
        inplace = nd.get("inplace")  # absent or null: none; 0, false, [] or "" is a mistake, not "none"
        if inplace is None:
            pairs: tuple = ()
        elif not isinstance(inplace, dict):
            raise GraphError(f"node {nid!r}: 'inplace' must be an object {{output: input}}, not {_short(inplace)}")
        else:
            # the keys as they are (JSON's are strings): ``str()`` of a key from code made ``{5: "x"}`` the pair of
            # tensor "5", where ``"outputs": [5]`` is refused as no tensor id; the graph check names a key no string
            pairs = in_output_order(tuple(inplace.items()), outs)
        cost = nd.get("cost")
        if isinstance(cost, (bool, str, list, dict)):
            # in the file's words (``jsoncopy.json_shown``): the graph check's "cost True (bool: give a Python int or float)"
            # speaks to a caller in Python, and named a value the file does not hold (``true``)
            from .jsoncopy import json_shown

            raise GraphError(f"node {nid!r}: cost {json_shown(cost)} is not a finite non-negative number of "
                             f"microseconds (at most {MAX_COST_US:g}): give a JSON number, or leave 'cost' out")
        nodes.append(Node(nid, nd.get("op", ""), tuple(ins), tuple(outs), cost, pairs, nd.get("group"), attrs))
    alignment = doc.get("alignment", DEFAULT_ALIGNMENT)
    return Graph._of_owned_attrs(doc.get("name", ""), tuple(tensors), tuple(nodes), alignment)


def _no_unordered_or_keyed(name: str, cls: str, given: Any) -> None:
    """GraphError where ``Graph``'s ``tensors`` or ``nodes`` is a mapping, a set or a string, naming what it is.
    Why: iterating one gave its keys, characters or an order of its own, so ``Graph("g", {"x": tensor}, ())`` was
    refused as "tensor #0 is not a memplan Tensor (str 'x')", naming the key rather than the dict (round 74), and a
    set of Tensors or Nodes listed them in an order that changes from process to process (str hashes are salted):
    another plan, or a node "out of order", for the same graph. A generator or ``dict.values()`` is still taken, and
    an empty one of these (nothing to misread or reorder: ``nodes={}``)."""
    if isinstance(given, (Mapping, set, frozenset, str, bytes, bytearray)) and len(given) == 0:
        return
    if isinstance(given, Mapping):
        why = f"pass list(d.values()) if its values are the {cls}s"
    elif isinstance(given, (set, frozenset)):
        why = "a set lists them in an order that changes from run to run, and the plan with it"
    elif isinstance(given, (str, bytes, bytearray)):
        why = f"{cls}s made with memplan.{cls}(...)"
    else:
        return
    raise GraphError(f"graph {name} must be a list or tuple of {cls}s, not {type(given).__name__} "
                     f"{_short(given)}: {why}")


@named_fields
class GraphBuilder:
    """Build a Graph from code; ``build()`` validates it.

    >>> b = GraphBuilder("tiny")
    >>> x = b.input("x", 1024)
    >>> y = b.node("relu", "RELU", [x], b.output("y", 1024))
    >>> g = b.build()
    """

    def __init__(self, name: str = "graph", alignment: int = DEFAULT_ALIGNMENT):
        self.name = name
        self.alignment = alignment
        self._tensors: list[Tensor] = []
        self._nodes: list[Node] = []

    @named_method
    def tensor(self, id: str, size: int, kind: str = "intermediate", *, view_of: str | None = None,
               view_offset: int = 0, **attrs: Any) -> str:
        _no_misspelt_keyword(f"tensor {id!r}", attrs, ("view_of", "view_offset"))
        self._tensors.append(Tensor(id, size, kind, view_of, view_offset, attrs or NO_ATTRS))
        return id

    @named_method
    def input(self, id: str, size: int, **attrs: Any) -> str:
        return self._of_kind("input", id, size, attrs)

    @named_method
    def weight(self, id: str, size: int, **attrs: Any) -> str:
        return self._of_kind("weight", id, size, attrs)

    @named_method
    def intermediate(self, id: str, size: int, **attrs: Any) -> str:
        return self._of_kind("intermediate", id, size, attrs)

    @named_method
    def output(self, id: str, size: int, **attrs: Any) -> str:
        return self._of_kind("output", id, size, attrs)

    def _of_kind(self, kind: str, id: str, size: int, attrs: dict[str, Any]) -> str:
        if "kind" in attrs:   # b.input("x", n, kind="weight"): Python's TypeError about tensor() before
            raise GraphError(f"tensor {id!r}: {kind}() makes {_an(kind)} tensor; kind={_short(attrs['kind'])} "
                             "contradicts it (GraphBuilder.tensor takes a kind)")
        return self.tensor(id, size, kind, **attrs)

    @named_method
    def view(self, id: str, parent: str, size: int, offset: int = 0, kind: str = "intermediate",
             **attrs: Any) -> str:
        for key, name in (("view_of", "parent"), ("view_offset", "offset")):   # tensor()'s and the JSON's names:
            if key in attrs:   # Python's "got multiple values for keyword argument 'view_offset'" before
                raise GraphError(f"view {id!r}: view() takes the {key} as {name}= (tensor() takes {key}=)")
        if parent is None:   # (``parent=ids.get(name)`` missing its entry): it built a root of its own, silently,
            # whose bytes the plan kept apart from the parent the caller meant the view to alias
            raise GraphError(f"view {id!r}: parent (view_of) is None: a view lies in the tensor it names "
                             "(GraphBuilder.tensor makes a root)")
        return self.tensor(id, size, kind, view_of=parent, view_offset=offset, **attrs)

    @named_method
    def node(self, id: str, op: str, inputs: Iterable[str], outputs: Iterable[str] | str, *,
             cost: float | None = None, inplace: Mapping[str, str] | None = None,
             group: str | None = None, **attrs: Any) -> str:
        ins, outs = _id_tuple(id, "inputs", inputs), _id_tuple(id, "outputs", outputs)
        _no_misspelt_keyword(f"node {id!r}", attrs, ("cost", "inplace", "group"))
        if inplace is not None and not isinstance(inplace, Mapping):  # [] is not "none", [(o, i)] not a map
            raise GraphError(f"node {id!r}: inplace must be a mapping {{output: input}}, not {_short(inplace)}")
        self._nodes.append(
            Node(id, op, ins, outs, cost, in_output_order(tuple((inplace or {}).items()), outs), group, attrs or NO_ATTRS)
        )
        return outs[0] if len(outs) == 1 else id

    @named_method   # (``b.build(1)``, ``b.build(validate=False)``: Python's bare TypeError before round 74)
    def build(self) -> Graph:
        return Graph(self.name, tuple(self._tensors), tuple(self._nodes), self.alignment)


def _order_or_cycle(g: Graph, tindex: Mapping[str, int], producer: list[int],
                    node_inputs: list[tuple[int, ...]], reader: int) -> str:
    """Which of the two a read before its writer is: the nodes of a cycle ("a cycle: a -> b -> a"), or, where the
    data dependencies have none, that only the listing is wrong. Why: "out of topological order or a cycle" left
    the author of a hand-written graph to find out which, and a listing is fixed by moving nodes, a cycle not.
    Only on this error path: a depth-first walk over the writers of every read (along view chains), from the
    ``reader`` the error names first, so that a cycle through it is the one named, starting at it."""
    def writers(ni: int) -> list[int]:
        out = []
        for t in node_inputs[ni]:
            j: int | None = t
            while j is not None:
                if producer[j] >= 0 and producer[j] != ni:
                    out.append(producer[j])
                parent = g.tensors[j].view_of
                j = tindex[parent] if parent is not None else None
        return out

    state = [0] * len(g.nodes)   # 0 unseen, 1 on the current path, 2 done
    for start in (reader, *range(len(g.nodes))):
        if state[start]:
            continue
        path, stack = [start], [iter(writers(start))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[nxt] == 1:   # walked reader -> writer: print the cycle in data order, writer first
                loop = path[path.index(nxt):][::-1]
                if reader in loop:
                    loop = loop[loop.index(reader):] + loop[:loop.index(reader)]
                return _cycle_text([g.nodes[i].id for i in [*loop, loop[0]]])
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(writers(nxt)))
    return "nodes out of topological order: no cycle, list each node after the writers of what it reads"


CYCLE_SHOWN = 8   # nodes of a cycle an error names at each end; the rest is counted, not listed


def _cycle_text(loop: list[str]) -> str:
    """"a cycle: 'a' -> 'b' -> 'a'" for ``loop`` (its first node repeated at its end), every id cut short, and past
    ``2 * CYCLE_SHOWN`` nodes its ends only with the count between. Why: a cycle through a 10^5-node chain was
    one 1.2 MB error line naming every node (the CLI's one line, a log's record), where the view-cycle error beside
    it already stopped at 8."""
    shown = [_short(x) for x in loop]
    if len(shown) > 2 * CYCLE_SHOWN + 1:
        cut = len(shown) - 2 * CYCLE_SHOWN
        shown = [*shown[:CYCLE_SHOWN], f"... ({cut} more) ...", *shown[-CYCLE_SHOWN:]]
    head = "a cycle: " if len(loop) <= 2 * CYCLE_SHOWN + 1 else f"a cycle of {len(loop) - 1} nodes: "
    return head + " -> ".join(shown)


def _no_misspelt_keyword(what: str, attrs: Mapping[str, Any], keywords: tuple[str, ...]) -> None:
    """GraphError for a free-form attribute whose name is a near miss of one of the builder's ``keywords``.
    Why: every other keyword is kept as an attribute, which the planner never reads, so ``in_place={"y": "x"}``
    or ``costs=5`` built a graph without the in-place pair or the cost and planned it silently otherwise. Nor is
    ``attrs=`` one, though ``Tensor`` and ``Node`` take it: ``b.intermediate("t", 8, attrs={"shape": [2, 4]})`` kept
    one attribute named "attrs" holding the mapping, so the cost model (which reads ``attrs["shape"]``) and an
    executor (``attrs["dtype"]``) found none of them and the graph was planned as if they had not been given."""
    if "attrs" in attrs:
        raise GraphError(f"{what}: attrs= is no keyword of the builder: its free-form attributes are its other "
                         f"keywords (shape=..., dtype=..., or **{_short(attrs['attrs'], 60)}), not one named 'attrs'")
    for key in attrs:
        near = _near_field(key, keywords, cutoff=0.8)
        if near:
            raise GraphError(f"{what}: {key}= is no keyword of the builder (did you mean {near}=?); other "
                             "keywords are kept as free-form attrs, which the planner ignores")


def _id_tuple(nid: Any, what: str, ids: Any) -> tuple:
    """A builder's ``inputs``/``outputs``: one id as a string (not its characters), or an iterable of ids."""
    if isinstance(ids, str):
        return (ids,)
    why = unordered(ids)   # a set: its order (the op's operand order, the graph's JSON) changed with the hash seed
    if why:
        raise GraphError(f"node {nid!r}: {what} must be a tensor id or a list of them, not {type(ids).__name__} "
                         f"{_short(ids)} ({why})")
    try:
        return tuple(ids)
    except TypeError:
        raise GraphError(f"node {nid!r}: {what} must be a tensor id or a list of them, not {_short(ids)}") from None
