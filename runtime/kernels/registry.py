"""The kernel registry: per node of a graph, the launches that compute it, fusion groups included.

Why a separate step: the executors only know streams, events and addresses; this package knows ops.
``plan_launches(graph, addr)`` maps every node to zero or more ``Launch`` records (``runtime.kernels.ops``)
and runs each fusion group whose op sequence a fused kernel implements as one launch on its *last* member
(so the waits of every member precede it; ``runtime.kernels.fused``); the other members get no launch, and
the caller records their events after the fused launch (``runtime.step``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection
from dataclasses import replace

from memplan import Graph
from memplan.errors import ExecutorError
from memplan.ops import COPY_OP, VIEW_OPS

from . import ops
from .fused import fused_launch
from .library import SIGNATURES
from .ops import (
    EARLY_READS,
    GEMM_TC_NAMES,
    MEMCPY,
    WRITES,
    KernelError,
    Launch,
    _dtype,
    _overlaps,
    copy_launch,
    node_launches,
    over_inputs,
    scratch_copy,
)


def launches_for(graph: Graph, addr: Callable[[str], int], *, num_sms: int = 132, wgmma: bool = False,
                 fuse_groups: bool = True, no_fuse: frozenset[str] = frozenset(), counters: int = 0,
                 scratch: Callable[[int], int] | None = None) -> list[list[Launch]]:
    """Per node (graph order): the kernels that compute it. ``addr(tensor_id)`` gives device pointers;
    ``num_sms`` and ``wgmma`` describe the device (``KernelLibrary.num_sms``, ``.wgmma``)."""
    return plan_launches(graph, addr, num_sms=num_sms, wgmma=wgmma, fuse_groups=fuse_groups, no_fuse=no_fuse,
                         counters=counters, scratch=scratch)[0]


def counter_bytes(graph: Graph) -> int:
    """Bytes of the zeroed uint32 counters ``plan_launches(counters=...)`` may use (one per group)."""
    return 4 * max(1, len(graph.groups()))


def plan_launches(graph: Graph, addr: Callable[[str], int], *, num_sms: int = 132, wgmma: bool = False,
                  fuse_groups: bool = True,
                  no_fuse: frozenset[str] = frozenset(), counters: int = 0, gemv_norm_min: int = 0,
                  scratch: Callable[[int], int] | None = None, nodes: Collection[int] | None = None
                  ) -> tuple[list[list[Launch]], dict[int, tuple[int, ...]]]:
    """``launches_for`` plus the fused groups: last member index -> all member indices (listed order).
    Groups named in ``no_fuse`` run node by node. ``counters``: device address of ``counter_bytes(graph)``
    zeroed bytes (group k may use the uint32 at ``counters + 4 k``); 0 disables the kernels that need one
    (MUL_MAT+ADD+RMS_NORM+MUL then runs as a GEMV and the add+norm kernel: the same bits), and so does
    ``gemv_norm_min`` for weight matrices of fewer elements. ``scratch(nbytes)`` returns a fresh device
    buffer: a node whose in-place output starts *inside* its input at another address (the contract lets
    the planner do that; an element-wise kernel would then overwrite elements other threads have not read
    yet) first copies that input there and reads the copy; likewise an add+norm group over several rows whose
    outputs overlap its inputs reads scratch copies and still fuses (``runtime.kernels.fused``). Without
    ``scratch`` such nodes run as planned and such groups node by node.
    ``nodes``: plan only these node indices (one device's part of a split graph); the others get no
    launch, and a group fuses only when all its members are among them. Every launch's pointers are
    aligned as its kernel needs (``ops.ALIGN``), else KernelError names the node and tensor; and every launch
    is one its kernel computes in full within CUDA's limits (``check_launch``), else KernelError names the node."""
    if isinstance(num_sms, bool) or not isinstance(num_sms, numbers.Integral) or num_sms < 1:
        # (a string was a TypeError deep in a launch rule; 0 or a fraction sized the launches silently)
        raise ExecutorError(f"num_sms {num_sms!r}: expected a positive integer (the device's SM count)")
    if not isinstance(wgmma, bool):
        raise ExecutorError(f"wgmma {wgmma!r}: expected True or False")
    for ni in range(len(graph.nodes)) if nodes is None else sorted(nodes):
        ops.check_node(graph, ni)   # before fusion too: a fused kernel trusts the same attrs
    out: list[list[Launch]] = [[] for _ in graph.nodes]
    fused: dict[int, tuple[int, ...]] = {}
    absorbed: set[int] = set()
    if fuse_groups:
        read_by = _readers_of_roots(graph)
        for k, (name, members) in enumerate(graph.groups().items()):
            if len(members) < 2 or name in no_fuse or (nodes is not None and not set(members) <= set(nodes)):
                continue
            try:
                lns = fused_launch(graph, addr, members, num_sms=num_sms, wgmma=wgmma, counter=counters + 4 * k if counters else 0,
                                   gemv_norm_min=gemv_norm_min, scratch=scratch)
            except (KeyError, IndexError, ValueError):
                lns = None
            if lns and _materialises_what_others_read(graph, addr, members, lns, read_by):
                out[members[-1]] = lns
                fused[members[-1]] = tuple(members)
                absorbed.update(members)
    for ni, node in enumerate(graph.nodes):
        if ni in absorbed or (nodes is not None and ni not in nodes):
            continue
        try:
            if scratch is not None and _stages_what_it_overwrites(graph, addr, node):
                out[ni] = _stage_product_input(graph, addr, ni, scratch, num_sms, wgmma)
            else:
                out[ni] = node_launches(graph, addr, ni, num_sms, wgmma)
                if scratch is not None and out[ni]:
                    out[ni] = _stage_shifted_inplace(graph, addr, node, out[ni], scratch)
        except KernelError:
            raise
        except (KeyError, IndexError, ValueError) as exc:
            raise KernelError(f"node {node.id!r} ({node.op}): cannot build its kernel ({exc})") from None
    _aligned_as_the_kernels_need(graph, addr, out, fused)
    for ni, lns in enumerate(out):
        for ln in lns:
            problem = launch_problem(ln)
            if problem is not None:
                node = graph.nodes[ni]
                raise KernelError(f"node {node.id!r} ({node.op}): no launch of {ln.kernel} computes it: {problem}")
    _no_early_reads_of_written_tensors(graph, addr, out, fused)
    _one_carveout_beside_tensor_cores(out)
    return out, fused


def launch_problem(ln: Launch) -> str | None:
    """``ops.launch_problem`` with the kernel's parameter types (``library.SIGNATURES``): why ``ln`` is not a
    launch its kernel computes in full, or None."""
    return ops.launch_problem(ln, SIGNATURES.get(ln.kernel))


def _aligned_as_the_kernels_need(graph: Graph, addr, out: list[list[Launch]], fused: dict[int, tuple[int, ...]]) -> None:
    """KernelError naming the node and tensor where a launch's pointer is not aligned as its kernel needs
    (``ops.ALIGN``): a misaligned access faults on the GPU (a crash of the whole process). The kernel choices
    before took a slower kernel where one needs less (the scalar norm, the naive products, a group node by
    node); what is left has none: an element off its own alignment (an f32 at an odd offset), or a KV cache
    that the attention kernels read 16 bytes at a time."""
    for ni, lns in enumerate(out):
        for ln in lns:
            bad = ops.misaligned(ln)
            if bad is None:
                continue
            pos, need = bad
            a = ln.args[pos]
            node = graph.nodes[ni]
            tids = [t for m in fused.get(ni, (ni,)) for t in (*graph.node_inputs[m], *graph.node_outputs[m])]
            ti = next((t for t in tids if addr(graph.tensors[t].id) == a), None)
            if ti is None:   # (a scratch copy: allocations are aligned, so this is defensive)
                what = f"argument {pos} of {ln.kernel}"
            else:
                r = graph.root[ti]
                # (a root's offset on the graph's alignment, were that enough, is the plan's doing: it read "a root in
                # a graph of 256-byte alignment", for an f32 a hand-edited plan put 2 bytes past it)
                where = (f"a view at byte offset {graph.root_offset[ti]} of {graph.tensors[r].id!r}" if r != ti
                         else f"a root the plan puts off the graph's {graph.alignment}-byte alignment"
                         if graph.alignment % need == 0 else f"a root in a graph of {graph.alignment}-byte alignment")
                what = f"tensor {graph.tensors[ti].id!r} ({where})"
            raise KernelError(f"node {node.id!r} ({node.op}): {what} is at byte offset {a % need} from a "
                              f"{need}-byte boundary; the {ln.kernel} kernel needs {need}-byte alignment")


def _one_carveout_beside_tensor_cores(out: list[list[Launch]]) -> None:
    """Asks one L1/shared-memory split (``ops.TC_STEP_CARVEOUT``) for every launch of a step whose products
    include a tensor-core GEMM, GEMVs and copies aside, so that its kernels may start early or side by side
    on an SM (the split changes only on an empty SM). Read at call time, so a tuning run may change it
    (-1: the driver's choice everywhere)."""
    pct = ops.TC_STEP_CARVEOUT
    if pct < 0 or not any(ln.kernel in GEMM_TC_NAMES for lns in out for ln in lns):
        return
    for ni, lns in enumerate(out):
        out[ni] = [ln if ln.kernel == MEMCPY or ln.kernel.startswith("gemv") else replace(ln, carveout=pct)
                   for ln in lns]


def _no_early_reads_of_written_tensors(graph: Graph, addr, out: list[list[Launch]],
                                       fused: dict[int, tuple[int, ...]]) -> None:
    """Marks ``early=False`` every launch that would read, before its PDL wait, a tensor that a node of the
    step writes (``ops.EARLY_READS``: meant for weights; a weight-kind cache that SET_ROWS writes, or an f16
    intermediate, is one too): under PDL it may start while that writer still runs. (Inputs are copied in
    before the step's first kernel starts, so reading them early is safe.) So is a buffer an earlier launch of
    the same node writes: a staged copy (``_stage_product_input``: a product over its own weight view reads the
    copy that the ``copy_u32`` just before it makes, and started reading it before that copy ran)."""
    written = {graph.root[t] for outs in graph.node_outputs for t in outs}
    for ni, lns in enumerate(out):
        if not lns:
            continue
        members = fused.get(ni, (ni,))
        hot = {addr(graph.tensors[t].id) for m in members for t in graph.node_inputs[m] if graph.root[t] in written}
        marked = []
        for ln in lns:
            if ln.early and any(ln.args[i] in hot for i in EARLY_READS.get(ln.kernel, ())):
                ln = replace(ln, early=False)
            marked.append(ln)
            hot |= {ln.args[i] for i in WRITES.get(ln.kernel, ())}
        out[ni] = marked


def _readers_of_roots(graph: Graph) -> dict[int, set[int]]:
    """Root tensor index -> the nodes that read it (through any view), and -1 (the end of the step, where the
    host reads it back) for the root of every output, a view of kind ``output`` included: an output view of a
    fused group's internal tensor (``o`` ``view_of`` a norm's output) was taken as read by nobody, the group fused
    and the output read the bytes no kernel wrote (NaN poison in the emulator, old bytes on the GPU)."""
    out: dict[int, set[int]] = {}
    for ni, ins in enumerate(graph.node_inputs):
        for ti in ins:
            out.setdefault(graph.root[ti], set()).add(ni)
    for ti, t in enumerate(graph.tensors):
        if t.kind == "output":
            out.setdefault(graph.root[ti], set()).add(-1)
    return out


#: the ops whose outputs no fused kernel stores (``runtime.kernels.fused``): a group computes them in registers (a
#: norm's scale, SiLU's gate, ROPE's rotated rows, attention's probabilities) and stores what comes after them
UNSTORED_OPS = frozenset({"RMS_NORM", "SILU", "ROPE", "SOFT_MAX"})


def _materialises_what_others_read(graph: Graph, addr, members, lns: list[Launch], read_by) -> bool:
    """A fused kernel writes only some of its group's tensors (``WRITES``): every member output that a node
    outside the group reads, or that the graph outputs, must be among them, else the group runs node by
    node. An output of an ``UNSTORED_OPS`` member never is, whatever its address: planned in place over an earlier
    member's output that the kernels do store (a SILU's output over its gate product, a norm's over the ADD's h),
    it sat at a written address, so a group whose SILU output was a graph output fused, and that output held the
    gate product, silently."""
    written = {ln.args[i] for ln in lns for i in WRITES.get(ln.kernel, ())}
    inside = set(members)
    for m in members:
        for ti in graph.node_outputs[m]:
            r = graph.root[ti]
            needed = bool(read_by.get(r, set()) - inside)   # (-1, the host's read of an output, is outside)
            if needed and (graph.nodes[m].op in UNSTORED_OPS or addr(graph.tensors[ti].id) not in written):
                return False
    return _reads_each_member_output_once(graph, members)


def _reads_each_member_output_once(graph: Graph, members) -> bool:
    """Whether the group's members read each member output only as its fused kernel does: by that tensor itself,
    in one operand of one member. A fused kernel hands an intermediate value in registers to the one operand its
    op sequence consumes it as (SiLU's output to the MUL, the scores to the softmax, the GEMV's product to the ADD),
    and stores some of them or none; the pattern matchers check that chain operand, not the members' other
    operands, so a second read (``MUL(s, s)`` after ``SILU -> s``, a softmax masked by its own scores, ``ADD(p, p)``
    over the GEMV+add+norm's product) or a read through another view of its root read bytes no kernel wrote: NaN
    in the emulator, old bytes on the GPU, from a verified plan. Decided on the graph, not on which addresses the
    launches write: a plan may put the attention output at the scores' address, which then looks stored. Such a
    group runs node by node; every fused pattern reads each value it passes on once."""
    outs = {ti for m in members for ti in graph.node_outputs[m]}
    roots = {graph.root[ti] for ti in outs}
    seen: set[int] = set()
    for m in members:
        for ti in graph.node_inputs[m]:
            if graph.root[ti] in roots:
                if ti not in outs or ti in seen:
                    return False
                seen.add(ti)
    return True


def _stages_what_it_overwrites(graph: Graph, addr, node) -> bool:
    """Whether no kernel of ``node`` may write its output over an input it reads, not even at the same address, so
    that each input its output overlaps is copied to scratch first (``_stage_product_input``): a product (blocks
    write rows of y while others still read x); an ADD, MUL or CONT writing f16 from f32 (``binary_f32_f16``,
    ``cast_f32_f16``: element i lands on the bytes of the input's element i / 2, which another thread may not have
    read yet); and a node copying bytes (a CONT, a COPY, a view op whose output lies apart from its input's bytes:
    ``ops.view_op_outputs_apart``) that ``copy_u32`` cannot copy, as they are not whole words or not on 4-byte
    boundaries: a byte copy, which must not overlap what it reads. Moving 5 f16 within one buffer through two views
    of it was refused (round 78: now for a CONT or COPY); so were, until round 79, the same move by a RESHAPE or
    VIEW, and moving 2 f16 one element along it (4 bytes, whole words, at byte 2 of a word: "copy_u32 needs 4-byte
    alignment") by any of them, verified plans of valid graphs."""
    if node.op == "MUL_MAT" or not node.outputs:
        return node.op == "MUL_MAT"
    out = node.outputs[0]
    if node.op in ("ADD", "MUL", "CONT") and _dtype(graph, out) == "f16" and any(
            _dtype(graph, t) == "f32" for t in node.inputs):
        return True
    copies = node.op in ("CONT", COPY_OP) or (node.op in VIEW_OPS and out in ops.view_op_outputs_apart(graph, node))
    if not copies or len(node.inputs) != 1:
        return False
    x = node.inputs[0]
    return graph.tensor(out).size % 4 != 0 or (addr(x) != addr(out) and (addr(x) % 4 != 0 or addr(out) % 4 != 0))


def _stage_product_input(graph: Graph, addr, ni: int, scratch, num_sms: int, wgmma: bool) -> list[Launch]:
    """A MUL_MAT whose output the plan puts over an input (an in-place pair, at the same address too, or a view of the
    input's root: ``ops.over_inputs``): every
    product kernel writes rows of y while other blocks still read x (or the cache), so each such input is
    copied to scratch first and the product reads the copy (built again over the copy's address: y may start
    where x does, so no argument can be swapped by value). Every input y overlaps, not only its in-place partner:
    another view of the partner's root dies here too, so the plan may put y over it. Likewise the other nodes
    ``_stages_what_it_overwrites`` names: an f32 ADD, MUL or CONT into f16 planned in place over its f32 input, or
    a byte copy over its source, as the contract lets the planner, was refused (KernelError, "its f16 output
    overlaps an f32 input", "not whole words"), a verified plan of a valid graph."""
    node = graph.nodes[ni]
    y = node.outputs[0]
    over = y in over_inputs(graph, node)
    staged = [i for i in node.inputs if over and _overlaps(graph, addr, y, i)]
    if not staged:
        return node_launches(graph, addr, ni, num_sms, wgmma)
    bufs, copies = {}, []
    for i in dict.fromkeys(staged):
        si = graph.tensor(i).size
        bufs[i] = scratch(si)
        copies.append(scratch_copy(addr(i), bufs[i], si))
    return copies + node_launches(graph, lambda t: bufs.get(t) or addr(t), ni, num_sms, wgmma)


def _stage_shifted_inplace(graph: Graph, addr, node, lns: list[Launch], scratch) -> list[Launch]:
    """An in-place output the plan shifted off its input (overlapping, not at the same address) would let
    one thread overwrite an element another has yet to read: the input is copied to scratch first and the
    node's kernels read the copy. So is an input smaller than the output it is overwritten by, even at the
    same address: an ADD/MUL's repeated operand (``y[i] = x[i] + b[i % nb]`` with y over b), whose element j
    thread j overwrites while threads j + nb, j + 2 nb ... still read it. Any input of the node, not only the
    in-place partner: the contract lets the output overlap the partner's whole root, which dies here, so another
    view of that root the node reads (``MUL(a, b)`` over the two halves of one tensor, ``inplace {y: b}``, y
    planned 4 bytes into a) was read where threads were writing y, and only b was copied."""
    outs = over_inputs(graph, node)
    spans: dict[str, tuple[int, int]] = {}
    hot: list[str] = []
    for i in dict.fromkeys(node.inputs):
        ai, si = addr(i), graph.tensor(i).size
        spans[i] = (ai, ai + si)
        if any((addr(o) != ai or si < graph.tensor(o).size) and _overlaps(graph, addr, o, i) for o in outs):
            if si % 4:
                raise KernelError(f"node {node.id!r}: input {i!r} of {si} bytes, which its in-place output overlaps, "
                                  "is not whole words (it is copied first)")
            hot.append(i)
    copies = []
    for lo, hi in _staged_spans([spans[i] for i in hot], list(spans.values())):
        buf = scratch(hi - lo)
        for i, (a, b) in _outermost(spans, lo, hi):   # input by input: each copy reads one tensor's bytes
            if (a - lo) % 4 or (b - a) % 4:
                raise KernelError(f"node {node.id!r}: input {i!r} of {b - a} bytes, which overlaps an input its "
                                  "in-place output overlaps, is not whole words (it is copied first)")
            copies.append(copy_launch(a, buf + (a - lo), b - a))
        lns = [_read_from(ln, lo, hi - lo, buf) for ln in lns]
    return copies + lns


def _staged_spans(hot: list[tuple[int, int]], inputs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The disjoint byte ranges to copy for the ``hot`` inputs' ranges: each merged with every input range that
    overlaps it, until none is left partly outside. Why: ``_read_from`` sends every read pointer that starts in
    a copied range into the copy, so another input starting inside it but ending past it (``MUL(a, b)`` with
    ``b`` = r[0, 1024) copied, ``a`` = r[256, 1280)) read past the end of the scratch copy, and a second copy
    made after the first was itself sent into the first's (the copies of one node are now disjoint)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(hot):
        grown = True
        while grown:
            grown = False
            for a, b in inputs + merged:
                if a < hi and lo < b and (a < lo or b > hi):
                    lo, hi, grown = min(lo, a), max(hi, b), True
        merged = [(a, b) for a, b in merged if not (a < hi and lo < b)] + [(lo, hi)]
    return sorted(merged)


def _outermost(spans: dict[str, tuple[int, int]], lo: int, hi: int) -> list[tuple[str, tuple[int, int]]]:
    """The inputs (id, byte range) inside ``[lo, hi)`` that lie in no other one (the first of equal ranges):
    copying them copies the whole range (``_staged_spans`` made it a union of input ranges)."""
    inside = [(i, (a, b)) for i, (a, b) in spans.items() if lo <= a and b <= hi and b > a]
    return [(i, (a, b)) for k, (i, (a, b)) in enumerate(inside)
            if not any(c <= a and b <= d and ((c, d) != (a, b) or j < k) for j, (_, (c, d)) in enumerate(inside))]


def _read_from(ln: Launch, at: int, nbytes: int, buf: int) -> Launch:
    """``ln`` reading the ``nbytes`` at ``at`` from their copy at ``buf``: every pointer argument it reads
    through (the leading ``ops.ALIGN`` arguments, less those in ``WRITES``) that points into them, not only one
    equal to ``at``: a node split over several launches (``ops._chunks``) points inside its input."""
    reads = [p for p in range(len(ops.ALIGN.get(ln.kernel, ()))) if p not in WRITES.get(ln.kernel, ())]
    return replace(ln, args=tuple(buf + (a - at) if p in reads and at <= a < at + nbytes else a
                                  for p, a in enumerate(ln.args)))
