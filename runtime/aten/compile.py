"""``runtime.aten.compile``: export a module, plan its arena, verify the plan, and build the executor.

Why a separate module: this is the one function users call, and the only place that knows the whole
path (export -> import -> plan -> verify -> layout -> lowering -> streams -> capture). Every plan it
runs has passed ``memplan.verify``; ``plan=`` lets tests run a plan of their own (a negative control)
with ``verify=False``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import memplan
from memplan.graph import Graph
from memplan.optimize.candidates import check_options
from memplan.planfile import Plan
from memplan.solvers import check_solver_name
from memplan.solvers.options import SolveOptions

from . import ambient
from . import guard as module_guard
from .callform import CallForm, ExtraArguments, Proofs, call_form, in_compile_form, proof_key, same_export, takes
from .errors import AtenExecutorError
from .executor import Executor, Stats, caller_capturing, check_not_traced
from .program import Program, flatten_inputs, load_program
from .settings import SCALARS, plain, same_value


@dataclass
class CompiledModule:
    """A callable over a planned arena: ``.graph``, ``.plan``, ``.arena_bytes``, ``.stats``.

    ``guard`` (None for an ``ExportedProgram``) watches the module's tensors and submodules between calls
    (``runtime.aten.guard``); ``rebinds`` counts the executor rebuilds a replaced tensor caused and
    ``recaptures`` those of them that drop a captured CUDA graph; ``flag_rebuilds`` counts the rebuilds a changed
    backend flag caused (``runtime.aten.ambient``)."""

    program: Program
    plan: Plan
    executor: Executor
    guard: module_guard.ModuleGuard | None = None
    options: dict = field(default_factory=dict)   # the executor's keyword arguments, for a rebuild
    rebinds: int = 0
    recaptures: int = 0
    flag_rebuilds: int = 0
    form: CallForm | None = None   # how compile called forward: a call in another form is bound by name
    #: the answers of ``_prove`` for arguments compile left out (``callform.Proofs``: bounded, recently used kept)
    proofs: Proofs = field(default_factory=Proofs)
    #: (grad mode, inference mode) compile exported under: a proof's export runs under them (``_prove``)
    export_mode: tuple[bool, bool] = (True, False)
    #: (module, attribute, value) of each plain attribute ``forward`` sets to another value (``guard.forward_sets``):
    #: set after each call, as an eager call leaves it (shown to be a fixed point of ``forward`` at compile), and the
    #: fixed values it sets (``fixed_sets``: ``self.seen = x.shape``); none where ``forward`` sets a tensor attribute too
    #: that the calls cannot set (the fallback of ``check_forward_sets``: a cache's key without its value)
    sets: tuple[tuple[Any, str, Any], ...] = ()
    #: (module, attribute, name) of each tensor attribute ``forward`` sets (``self.last = y``: ``Program.attr_outputs``)
    #: that each call sets, to a copy of the call's value, as an eager call leaves it; none where the state it leaves
    #: makes ``forward`` another program (a cache the next eager call reads: then the module stays as at compile)
    attrs: tuple[tuple[Any, str, str], ...] = ()

    @property
    def proven(self) -> list:
        """The ``callform.proof_key``s of arguments compile left out, shown inert (the latest kept)."""
        return self.proofs.proven

    @property
    def refuted(self) -> dict:
        """Those shown not to be, with why (the latest kept)."""
        return self.proofs.refuted

    @property
    def graph(self) -> Graph:
        return self.program.graph

    @property
    def arena_bytes(self) -> int:
        return self.executor.arena_bytes

    @property
    def stats(self) -> Stats:
        return self.executor.stats

    def __post_init__(self) -> None:
        """Hide ``_call`` from Dynamo, once for the class: a ``torch.compile`` of code calling this module breaks its
        graph there and runs the call as it is (the program's kernels on real memory). Traced into, the executor's
        views and ``out=`` kernels over the arena failed in the backend (inductor, aot_eager: "as_strided_scatter:
        ... out of bounds for storage"), a raw BackendCompilerFailed, where an eager module in its place compiles.
        (On the class, not the instance: a copy of the instance must not call the original's.)"""
        cls = type(self)
        if "_hidden_call" not in cls.__dict__:
            import torch

            cls._hidden_call = staticmethod(torch.compiler.disable(cls._call))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._hidden_call(self, *args, **kwargs)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        check_not_traced(torch, self.program, [])   # first: a trace's flags and fake mode must reach no rebuild
        if self.guard is not None and not self.guard.unchanged():
            self._follow_module()
        self._follow_flags()
        delays = None if takes(self.form, "delays") else kwargs.pop("delays", None)   # forward's own, if it has one
        try:
            args, kwargs = in_compile_form(self.form, args, kwargs, self.proofs)
        except ExtraArguments as exc:
            why = self._prove(exc.extra, args, kwargs)
            if why == "":
                raise
            if why is not None:
                raise ExtraArguments(f"{exc}; {why}", exc.extra) from None
            args, kwargs = in_compile_form(self.form, args, kwargs, self.proofs)
        out = self.executor.call(args, kwargs, delays, flags=False)   # the flags were just read: once a call
        for (owner, name, _label), value in zip(self.attrs, self.executor.attribute_values):
            setattr(owner, name, value)   # the tensors eager's forward leaves set (``self.last = y``): copies
        for owner, name, value in self.sets:   # what eager's forward leaves set (``self.mult = 2``)
            setattr(owner, name, value if type(value) not in (list, dict) else copy.deepcopy(value))   # (a new one)
        return out

    def _prove(self, extra: dict[str, Any], args: tuple, kwargs: dict) -> str | None:
        """None where forward exported again with the arguments ``extra`` too gives compile's program
        (``callform.same_export``): then a call with them is the program's call without them, and is taken (recorded
        in ``proofs``); else why not ("" where no export was tried). Once per set of values while ``proofs`` keeps the
        answer (its latest 64): a refuted one is refused at once after, for the reason found then; after 8 refuted
        value sets of the same names, every new one is refused without an export (a keyword given a new float at
        every call paid a full export per call, and the answers grew without end). As the answer is remembered for the values
        alone, the export is compile's own but for them: its example inputs, its default dtype, grad and inference
        mode, no autocast (``_example_call``, ``_as_at_compile``)."""
        import torch

        key = proof_key(extra)
        if key is None or self.guard is None or self.form is None:
            return ""
        known = self.proofs.refusal(key)
        if known is not None:
            return known
        names = ", ".join(sorted(extra))
        if self.proofs.exhausted(frozenset(extra)):
            return (f"{self.proofs.tries} other value sets of {names} were refuted already (each exported: another "
                    "program than compile's, or a failed export), so no more exports are tried for these arguments "
                    "(compile with them, as example values)")
        try:   # (an argument compile left out given positionally cannot be left out here: refused as it was)
            base_args, base_kwargs = in_compile_form(self.form, args, {k: v for k, v in kwargs.items()
                                                                       if k not in extra})
        except ExtraArguments:
            return ""
        base_args, base_kwargs = _example_call(self.program, base_args, base_kwargs)
        try:
            with (_as_at_compile(torch, self.executor.ambient.default_dtype, self.export_mode),
                  ambient.hook_state_kept(torch, self.guard.root)):   # (a proof is no eager call of the hooks)
                other = load_program(self.guard.root, base_args, {**base_kwargs, **extra})
        except Exception as exc:  # noqa: BLE001 - an export that fails with the values proves nothing
            why = f"exporting forward again with {names} as given failed ({str(exc).splitlines()[0]})"
        else:
            why = None if same_export(self.program.exported, other.exported, set(extra),
                                      module_guard.module_tensor_ids(torch, self.guard)) else (
                f"exported again with {names} as given, forward gave another program than compile's")
        if why is None:
            self._watch_reads_of(other)
        self.proofs.record(key, why)
        return why

    def _watch_reads_of(self, other: Program) -> None:
        """Watch from now on what ``other``'s export (a proof's) read that compile's did not: a settings object's
        values (``guard.widened``), the default dtype (a call under another default is refused where a read of it
        is recorded) and the grad, inference and autocast modes (``Program.mode_reads``). That path of ``forward`` runs in eager with the proven arguments."""
        import torch

        self.guard = module_guard.widened(torch, self.guard, self.program, other)
        reads = tuple(dict.fromkeys(self.program.default_dtype_reads + other.default_dtype_reads))
        modes = tuple(dict.fromkeys(self.program.mode_reads + other.mode_reads))
        if reads != self.program.default_dtype_reads or modes != self.program.mode_reads:
            self.program = self.executor.program = replace(self.program, default_dtype_reads=reads, mode_reads=modes)
            self.executor.ambient.dtype_nodes = None   # (found again at the next call under another default)

    def _follow_flags(self) -> None:
        """Build the executor again where a backend flag changed since it was built (``ambient.backend_flags``:
        TF32, cuDNN, deterministic algorithms, ...): eager's next call follows the flag, the executor's lowering
        and captured CUDA graph hold the kernels chosen under the old one. Counted in ``flag_rebuilds``."""
        import torch

        changed = ambient.changed_flag(torch, self.executor.ambient.flags, ambient.backend_flags(torch))
        if changed is None:
            return
        self._check_rebuild(torch, changed)
        self._rebuild(self.program)
        self.flag_rebuilds += 1

    def _follow_module(self) -> None:
        """Rebuild the executor over the module's replaced tensors (an error for a change it cannot follow).

        Why a rebuild: launches, arena-planned views of weights, moved CPU constants and host folds all hold the
        old tensors; building them again from the same plan is what compile did, minus export and planning."""
        import torch

        new = module_guard.changes(torch, self.guard, self.program)
        if new:
            self._check_rebuild(torch, "module tensors were replaced since the last call")
        else:   # nothing replaced (a tensor moved between its owner's dicts): record where it is now, so
            self.guard = module_guard.rebound_guard(self.guard, new)   # the next call takes the fast path again
            return
        self._rebuild(module_guard.rebound_program(self.program, new))
        self.guard = module_guard.rebound_guard(self.guard, new)
        self.rebinds += 1

    def _check_rebuild(self, torch: Any, why: str) -> None:
        """Refuse a rebuild (for ``why``) the executor cannot do now: under autocast or a default dtype a node of the
        program follows (the rebuild's probes would run under it), or inside the caller's CUDA-graph capture."""
        ex = self.executor
        ex._check_ambient(flags=False)
        if ex.device.type == "cuda" and caller_capturing(torch, ex.device):
            raise AtenExecutorError(f"{why}, and this call is inside the caller's CUDA-graph capture, where the "
                                    "executor cannot be built again: call it once outside the capture first")

    def _rebuild(self, program: Program) -> None:
        """The executor built again over ``program`` from the same plan under the current backend flags; it keeps
        the compile's default dtype (and the nodes found to follow it), not the one of this call."""
        ex = self.executor
        executor = Executor(program, self.plan, ex.device, **self.options)
        executor.ambient = replace(executor.ambient, default_dtype=ex.ambient.default_dtype,
                                   dtype_nodes=ex.ambient.dtype_nodes)
        if module_guard.needs_recapture(ex.cuda_graph, ex._captured, True):
            self.recaptures += 1
        self.program, self.executor = program, executor


def compile(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, streams: int | str = "auto",  # noqa: A001
            memory_budget: int | None = None, solver: str = "auto", cuda_graph: bool = True,
            device: Any = None, return_views: bool = False, poison: bool = False, plan: Plan | None = None,
            verify: bool = True, program: Program | None = None, time_limit: float | None = None
            ) -> CompiledModule:
    """Plan and build ``module(*example_inputs, **kwargs)`` for repeated calls with same-shaped inputs.

    ``streams``: "auto" (memplan finds concurrency), an int, or 1 for the serial plan; on a CPU the plan's
    steps run in issue order whatever it is. ``memory_budget`` (bytes) caps the arena (``BudgetError`` if
    even serial does not fit). ``cuda_graph`` captures the whole multi-stream call once and replays it.
    ``device`` defaults to the device of the first example input. ``return_views`` returns the arena's
    output views (valid until the next call) instead of copies. ``poison`` fills the arena with NaN bytes
    before every call (for tests). ``plan`` runs a given plan instead of planning (``verify=False`` skips
    the check, for negative controls only); ``program`` reuses an earlier export.
    """
    import torch

    # options first, named, before the export (seconds to minutes): a typo must not cost a model's export
    check_options(streams, memory_budget, None)   # memplan's own rules (a bool is no stream count)
    check_solver_name(solver)
    SolveOptions(time_limit=time_limit)   # its rule for time_limit (a SolverError naming it)
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise AtenExecutorError(f"kwargs must be a mapping of keyword arguments, not {type(kwargs).__name__}")
    if kwargs is not None and type(kwargs) is not dict:   # a transformers BatchEncoding (a UserDict): torch.export
        kwargs = dict(kwargs)   # failed on it with "KeyPath exhausted before reaching Source"; eager's m(**be) runs
    for flag, value in (("cuda_graph", cuda_graph), ("return_views", return_views), ("poison", poison),
                        ("verify", verify)):
        if not isinstance(value, bool):  # verify=None skipped the verifier of a given plan by accident
            raise AtenExecutorError(f"{flag} must be True or False, not {value!r}")
    if plan is not None and not isinstance(plan, Plan):
        raise AtenExecutorError(f"plan must be a memplan Plan, not {type(plan).__name__}")
    if program is not None and not isinstance(program, Program):
        raise AtenExecutorError(f"program must be a Program from an earlier compile (.program), not "
                                f"{type(program).__name__}")
    if device is not None:
        device = check_device(torch, device)
    if not isinstance(example_inputs, tuple):
        example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
    check_no_autocast(torch)
    if program is None:
        program = load_program(module, example_inputs, kwargs)
    else:
        check_program(torch, program, module, example_inputs, kwargs)
    if device is None:
        first = next((x for x in list(example_inputs) + list((kwargs or {}).values())
                      if isinstance(x, torch.Tensor)), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    graph = program.graph
    if plan is None:
        n = 1 if device.type != "cuda" and streams == "auto" else streams
        plan = memplan.plan(graph, solver=solver, streams=None if n == 1 else n, memory_budget=memory_budget,
                            time_limit=time_limit)   # plan() verifies what it returns (check=True)
    elif verify:
        memplan.verify(graph, plan)
    options = {"cuda_graph": cuda_graph, "return_views": return_views, "poison_arena": poison}
    executor = Executor(program, plan, device, **options)
    form = call_form(module.forward, example_inputs, kwargs) if isinstance(module, torch.nn.Module) else None
    check_container_changes(program)
    guard = module_guard.record(torch, module, program)
    sets = module_guard.forward_sets(torch, module, program)
    held = (module_guard.module_tensor_ids(torch, guard) if guard is not None
            and (sets or program.attr_outputs or program.call_changes or program.forward_values)
            else frozenset())   # (for a second export)
    cached = check_bypassing_writes(torch, module, program, example_inputs, kwargs, held)
    sets += fixed_sets(torch, module, program)   # (``self.seen = x.shape``: checked and set as a plain value is)
    tensors = program.attr_outputs
    settable = True
    if sets or tensors:   # (a reused ``program=`` too: its export saw the same forward)
        settable = check_forward_sets(torch, module, program, sets, example_inputs, kwargs, held)
    sets += cached   # (after the check: exported again without them, forward computes them as at compile)
    if tensors and not settable:   # the fallback: refused where a tensor attribute carries state between calls
        check_carried_state(torch, program)
    return CompiledModule(program, plan, executor, guard, options, form=form,
                          export_mode=(torch.is_grad_enabled(), torch.is_inference_mode_enabled()),
                          sets=tuple((owner, name, after) for _n, owner, name, _b, after in sets) if settable else (),
                          attrs=tensors if settable else ())


def check_bypassing_writes(torch: Any, module: Any, program: Program, args: tuple, kwargs: dict | None,
                           held: frozenset[int]) -> tuple[tuple[str, Any, str, Any, Any], ...]:
    """Refuse a ``forward`` that changes a plain attribute of its module tree without ``nn.Module.__setattr__``
    (``object.__setattr__(self, "n", self.n + 1)``, ``self.__dict__["n"] = ...``) or deletes one (``del
    self.scale``). Why: the program holds the values of the export's one call and runs no Python; torch's export
    put the old values back, so compile saw no change and every compiled call ran compile's values, silently, where
    eager's calls followed them (``x * 1`` for ``x * 2``, ``x * 3``). The error names the attribute and its values. A
    tensor so set is returned by the program and set by each call as any tensor attribute (``Program.attr_outputs``).

    Plain values so set where exporting ``forward`` again from them sets nothing more and gives this very program
    are taken, and returned (in ``guard.forward_sets``' form) for each call to set: a ``functools.cached_property``
    stores its value in ``__dict__`` at the first call, and every later call reads that value."""
    from .ambient import MISSING

    returned = {(id(owner), key) for owner, key, _label in program.attr_outputs}
    kept = []
    for owner, key, name, before, after in _bypassing(program):
        if (id(owner), key) in returned:
            continue
        if after is not MISSING and plain(after) and (before is MISSING or plain(before)):
            kept.append((name, owner, key, before, after))
            continue
        raise _bypass_error(name, key, before, after)
    if not kept:
        return ()
    try:
        other = _exported_from(module, args, kwargs, [(owner, key, after) for _n, owner, key, _b, after in kept])
    except Exception:  # noqa: BLE001 - no proof: refused as before
        other = None
    if other is None or _bypassing(other) or not same_export(program.exported, other.exported, set(), held):
        name, _o, key, before, after = kept[0]
        raise _bypass_error(name, key, before, after)
    return tuple(kept)


def _bypassing(program: Program) -> list[tuple[Any, str, str, Any, Any]]:
    """The ``call_changes`` of ``program`` that ``nn.Module.__setattr__`` did not make, a plain value set to an equal
    one left out."""
    return [(owner, key, name, before, after) for owner, key, name, before, after in program.call_changes
            if (id(owner), key) not in program.forward_writes
            and not (plain(before) and plain(after)
                     and same_value(before, after))]


def _bypass_error(name: str, key: str, before: Any, after: Any) -> AtenExecutorError:
    from .ambient import MISSING

    if after is MISSING:
        what = f"deletes {name} ({_shown(before)} at compile)"
    else:
        what = f"sets {name} without nn.Module.__setattr__ (object.__setattr__ or __dict__: {_shown(before)} at " \
               f"compile, {after!r} after the export's call)"
    return AtenExecutorError(f"forward {what}: a compiled call runs no Python and holds the export's values, so it "
                             "would neither change it nor follow it as eager's calls do (set it with "
                             f"self.{key} = ..., keep such state in a buffer, or change it outside forward)")


def check_container_changes(program: Program) -> None:
    """Refuse a ``forward`` that changes plain values of a list or dict of its module in place
    (``self.steps.append(1)``, ``self.stats["n"] += 1``): eager's every call changes it, and reads it changed next
    time; the program runs no Python, so its calls never did, silently (``len(self.steps)`` read as compile's 1 where
    eager's second call read 2). The error names the attribute and what the export's call did to it. A change of
    tensors alone (LeViT's cache of a weight's gather, a feature tap) is left to eager (``ambient.plain_change``)."""
    changes = [c for c in program.container_changes if ambient.plain_change(c[1], c[2])]
    if not changes:
        return
    name, before, after = changes[0]
    if not isinstance(after, dict):
        what = f"from {len(before)} to {len(after)} items" if len(after) != len(before) else "its items"
    else:
        keys = sorted(map(repr, set(after) ^ set(before))) or sorted(
            repr(k) for k in after if k in before and after[k] is not before[k])
        what = f"key {', '.join(keys[:3])}"
    raise AtenExecutorError(f"forward changes {name} in place ({what} in the export's call): a compiled call runs no "
                            "Python, so it would not, where every eager call does (keep such state in a buffer, or "
                            "change it outside forward)")


def check_forward_sets(torch: Any, module: Any, program: Program, sets: tuple, args: tuple, kwargs: dict | None,
                       held: frozenset[int]) -> bool:
    """Refuse a ``forward`` that changes one of its plain attributes so that eager's next call differs: exported again
    from the values it leaves (``sets``: ``guard.forward_sets``), it must set them again to the same values and give
    this very program (``callform.same_export``). Why: the program holds one call's values and runs no Python, so a
    counter (``self.n += 1``) or a first-call flag (``self.first = False``) ran compile's call again and again, and
    left the attribute as it was, where eager's calls followed it; ``self.mult = 2`` from None (Funnel) passes, and
    each call sets it as eager does. The error names the attribute, its values, and says to compile again.

    The tensor attributes ``forward`` sets (``Program.attr_outputs``: ``self.last = y``) are put as zero-filled
    stand-ins of their layout (their values are the call's): True where that export gives this very program (no
    later call reads them: a tap, the last result), and the compiled calls set them; False where it gives another
    (a cache the next eager call reads, wav2vec2-conformer's rotary embedding: then no call sets anything, and the
    module stays as at compile, each call the export's call), unless the plain values alone already lead elsewhere
    (refused as above)."""
    tensors = [(owner, key, _stand_in(torch, after)) for owner, key, _name, _b, after in program.call_changes
               if (id(owner), key) in {(id(o), k) for o, k, _l in program.attr_outputs}]
    plain = [(owner, name, after) for _n, owner, name, _b, after in sets]
    if tensors:
        try:
            other = _exported_from(module, args, kwargs, plain + tensors)
        except Exception as exc:  # noqa: BLE001 - no proof: tensors alone are set by no call (as before), and with
            if sets:              # plain values the question stays open, refused as for those
                raise AtenExecutorError(f"forward sets {sets[0][0]} (and the program holds one call's values); "
                                        "exporting it again from the values it leaves failed "
                                        f"({str(exc).splitlines()[0]})") from None
            other = None
        if (other is not None and not module_guard.forward_sets(torch, module, other)
                and same_export(program.exported, other.exported, set(), held)):
            return True
        if not sets:
            return False
    _check_plain_sets(torch, module, program, sets, args, kwargs, held)
    return not tensors


def fixed_sets(torch: Any, module: Any, program: Program) -> tuple[tuple[str, Any, str, Any, Any], ...]:
    """(name, module, attribute, value before, value after) of each public attribute of ``module``'s tree that
    ``forward`` set (through ``nn.Module.__setattr__``) to a value that is neither plain (``settings.plain``) nor a
    tensor the program returns (``Program.attr_outputs``), but fixed for the program (``_fixed``: a ``torch.Size``, a
    dtype, a device, a list, tuple or dict of such values and scalars: ``self.lin.seen = x.shape``); any other such
    value is refused, naming it. Why: one of them beside a tensor attribute (``self.taps = {...}``) made no attribute
    be set at all, and alone it was never set, where eager's calls set it. The fixed ones are
    checked as plain values are (``check_forward_sets``: exported again from them, the same program) and set by each
    call (a list or dict as a copy of its own, as eager makes a new one)."""
    if not isinstance(module, torch.nn.Module):
        return ()
    paths = {id(m): path for path, m in module.named_modules(remove_duplicate=False)}
    returned = {(id(owner), key) for owner, key, _label in program.attr_outputs}
    root = type(module).__name__
    out = []
    for owner, key, before, after in program.forward_values:
        if (id(owner) not in paths or key.startswith("_") or plain(after) or after is before
                or (id(owner), key) in returned):
            continue
        name = f"{root}.{paths[id(owner)]}.{key}" if paths[id(owner)] else f"{root}.{key}"
        if not _fixed(torch, after):
            raise AtenExecutorError(
                f"forward sets {name} to a {type(after).__name__} (neither a plain value, a torch.Size, dtype or "
                "device, nor a tensor or a list, tuple or dict of tensors): a compiled call runs no Python, so it "
                "could not set it as eager's call does (keep such state out of forward, or set a tensor or a plain "
                "value)")
        if before is ambient.MISSING or not same_value(before, after):   # (an equal one set again: nothing)
            out.append((name, owner, key, before, after))
    return tuple(out)


def _fixed(torch: Any, value: Any, depth: int = 3) -> bool:
    """A value the program fixes whole and no call can change: a scalar, ``torch.Size`` of ints, dtype, device, or a
    list, tuple or dict of such values (``depth`` levels down). No tensor, no symbolic size, no other object."""
    if isinstance(value, SCALARS) or isinstance(value, (torch.dtype, torch.device)):
        return True
    if isinstance(value, torch.Size):
        return all(type(d) is int for d in value)
    if depth == 0 or type(value) not in (list, tuple, dict):
        return False
    items = value.values() if type(value) is dict else value
    return all(_fixed(torch, v, depth - 1) for v in items) and (
        type(value) is not dict or all(isinstance(k, SCALARS) for k in value))


def check_carried_state(torch: Any, program: Program) -> None:
    """Refuse, where the compiled calls set no attribute (the fallback of ``check_forward_sets``: exported again from
    the state the call leaves, ``forward`` gives another program), a tensor attribute ``forward`` sets to a value that
    carries state from one call to the next: one its export's call computed (``Program.attr_outputs``: the program
    returns it) from the call's inputs, from what a tensor attribute ``forward`` sets held before (``self.c = x +
    self.c``), from a buffer the program writes, or through a random op. Why: in the fallback each compiled call is
    the export's call from the module as at compile, where eager's next call reads what this one left: an
    accumulator returned ``x + c_at_compile`` at every call where eager's sum grew, and ``if self.h is None:
    self.h = x * 2`` returned ``x`` at every call where eager's second returned ``x + h``, silently.

    The rule, and why not compare the value before and after the call: the export's value is a fake tensor (no bits
    to compare), and a cache filled at the first call (None before, a tensor after) is no state where its value is
    computed from the module's weights, constants and the inputs' shapes alone (wav2vec2-conformer's rotary
    embedding: ``arange`` of the sequence length against a buffer): every call computes the very value eager's later
    calls read from the cache, so each compiled call gives eager's result (the module stays as at compile, as
    before). A value that depends on a call's data, or on itself, differs between calls where the program's does
    not: refused. Not told apart: a ``forward`` that fills such a constant cache and then, reading it, computes
    another result than the call that filled it (``if self.h is None: self.h = self.w * 2; return x``)."""
    from torch.export.graph_signature import InputKind, OutputKind

    ep = program.exported
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    flat = list(out_node.args[0]) if isinstance(out_node.args[0], (list, tuple)) else [out_node.args[0]]
    user = [a for s, a in zip(ep.graph_signature.output_specs, flat) if s.kind == OutputKind.USER_OUTPUT]
    attr_spec = _children(ep.call_spec.out_spec)[1]
    counts = [c.num_leaves for c in _children(attr_spec)]
    leaves = user[len(user) - sum(counts):]
    written = {s.target for s in ep.graph_signature.output_specs if s.kind == OutputKind.BUFFER_MUTATION}
    befores = {id(t) for _o, key, _n, before, _a in program.call_changes
               for t in _tensor_leaves(torch, before)
               if (id(_o), key) in {(id(o), k) for o, k, _l in program.attr_outputs}}
    why_of = {}
    for s in ep.graph_signature.input_specs:
        arg = getattr(s.arg, "name", None)
        if s.kind == InputKind.USER_INPUT:
            why_of[arg] = "the call's inputs"
        elif s.kind == InputKind.BUFFER and s.target in written:
            why_of[arg] = f"buffer {s.target!r}, which the program writes"
        elif s.kind == InputKind.CONSTANT_TENSOR and id(ep.constants.get(s.target)) in befores:
            why_of[arg] = f"its own value before the call ({s.target!r})"
    held_by = {s.arg.name: ep.constants.get(s.target) for s in ep.graph_signature.input_specs
               if s.kind == InputKind.CONSTANT_TENSOR}
    before_of = {(id(o), key): _tensor_leaves(torch, before) for o, key, _n, before, _a in program.call_changes}
    start = 0
    for (owner, key, name), count in zip(program.attr_outputs, counts):
        own = before_of.get((id(owner), key), [])
        mine = leaves[start:start + count]
        start += count
        changed = [a for i, a in enumerate(mine) if not (
            i < len(own) and len(own) == len(mine) and held_by.get(_through_identities(torch, a)) is own[i])]
        why = _carried(torch, changed, why_of)
        if why is not None:
            raise AtenExecutorError(
                f"forward sets {name} to a tensor computed from {why}, and exported again from the state it leaves, "
                "forward gives another program: forward carries a tensor between calls through it, which the "
                "program (one call's, run from the module as at compile at every call) cannot follow (register it as "
                "a buffer and update it in place, or pass the state in and out of forward)")


def _children(spec: Any) -> list[Any]:
    """A ``TreeSpec``'s children (``children()`` in newer torch, ``children_specs`` before)."""
    children = getattr(spec, "children", None)
    return list(children()) if callable(children) else list(spec.children_specs)


def _tensor_leaves(torch: Any, value: Any) -> list[Any]:
    from torch.utils import _pytree as pytree

    return [t for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


#: of ops that read some arguments for their layout alone (dtype, device, shape): those arguments' positions. Why:
#: wav2vec2-conformer's rotary cache is ``emb.type_as(hidden_states)``, a function of no value of the call's inputs
_LAYOUT_ARGS = {"aten.type_as.default": (1,), "aten.to.other": (1,), "aten.zeros_like.default": (0,),
                "aten.ones_like.default": (0,), "aten.empty_like.default": (0,), "aten.full_like.default": (0,),
                "aten.new_zeros.default": (0,), "aten.new_ones.default": (0,), "aten.new_empty.default": (0,),
                "aten.new_full.default": (0,), "aten.new_empty_strided.default": (0,), "aten.sym_size.int": (0,),
                "aten.sym_stride.int": (0,), "aten.sym_numel.default": (0,)}


def _carried(torch: Any, outputs: list[Any], why_of: dict[str, str]) -> str | None:
    """What of ``why_of`` (placeholder name -> why) the nodes ``outputs`` are computed from, or "a random op (...)"
    for one drawn through a random op; None where neither. An argument an op reads for its layout alone
    (``_LAYOUT_ARGS``) is no source of the value, nor is an eval-mode dropout (``train=False``) a random op."""
    seen: set[Any] = set()
    todo = [a for a in outputs if isinstance(a, torch.fx.Node)]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "placeholder" and n.name in why_of:
            return why_of[n.name]
        if n.op == "call_function" and _random(torch, n):
            return f"a random op ({n.target})"
        skip = _LAYOUT_ARGS.get(str(n.target), ()) if n.op == "call_function" else ()
        args = [a for i, a in enumerate(n.args) if i not in skip]
        todo.extend(x for x in _nodes(torch, (args, dict(n.kwargs))))
    return None


def _through_identities(torch: Any, a: Any) -> Any:
    """The placeholder's name that node ``a`` is through ops returning their input itself (a ``.to`` of its own dtype and
    device, ``alias``, ``detach``: torchvision's ``AnchorGenerator`` builds its list again every call, ``[t.to(x.dtype)
    for t in self.tables]``, holding the very tensors), else None."""
    while isinstance(a, torch.fx.Node) and a.op == "call_function" and a.args and isinstance(a.args[0], torch.fx.Node):
        name = str(a.target)
        src, val = a.args[0].meta.get("val"), a.meta.get("val")
        same = (isinstance(src, torch.Tensor) and isinstance(val, torch.Tensor) and src.dtype == val.dtype
                and src.device == val.device and _arg(a, "copy") is not True)
        if not (name in ("aten.alias.default", "aten.detach.default") or (name.startswith("aten.to.") and same)):
            break
        a = a.args[0]
    return a.name if isinstance(a, torch.fx.Node) and a.op == "placeholder" else None


def _nodes(torch: Any, value: Any) -> list[Any]:
    """The fx nodes in ``value`` (an fx node's arguments)."""
    found: list[Any] = []
    torch.fx.node.map_arg(value, found.append)
    return found


def _random(torch: Any, n: Any) -> bool:
    """Whether call ``n`` draws random numbers: an op tagged ``nondeterministic_seeded`` but for one given
    ``train=False`` (an eval-mode ``dropout``, which returns its input)."""
    if torch.Tag.nondeterministic_seeded not in getattr(n.target, "tags", ()):
        return False
    schema = getattr(n.target, "_schema", None)
    if any(a.name == "train" for a in (schema.arguments if schema is not None else ())):
        return _arg(n, "train") is not False
    return True


def _arg(n: Any, name: str) -> Any:
    """Call ``n``'s argument ``name`` (positional or keyword; its schema's default where not given), None where its op
    has no such argument."""
    schema = getattr(n.target, "_schema", None)
    for i, a in enumerate(schema.arguments if schema is not None else ()):
        if a.name == name:
            return n.args[i] if i < len(n.args) else n.kwargs.get(name, a.default_value)
    return None


def _check_plain_sets(torch: Any, module: Any, program: Program, sets: tuple, args: tuple, kwargs: dict | None,
                      held: frozenset[int]) -> None:
    """``check_forward_sets`` for the plain values alone: refused where they change again or lead elsewhere."""
    first = sets[0][0]
    try:
        other = _exported_from(module, args, kwargs, [(owner, name, after) for _n, owner, name, _b, after in sets])
    except Exception as exc:  # noqa: BLE001 - any failure of the second export leaves the question open
        raise AtenExecutorError(f"forward sets {first} (and the program holds one call's values); exporting it again "
                                f"from the value it leaves failed ({str(exc).splitlines()[0]})") from None
    again = module_guard.forward_sets(torch, module, other)
    if again:
        name, _o, _a, before, after = again[0]
        was = {n: b for n, _o, _a, b, _x in sets}.get(name, before)
        raise AtenExecutorError(f"forward changes {name} at every call ({_shown(was)} at compile, {_shown(before)} "
                                f"after one call, {after!r} after the next): the program holds one call's values and "
                                "cannot follow it (keep such state in a buffer the program updates, or compile for "
                                "each value)")
    if not same_export(program.exported, other.exported, set(), held):
        name, _o, _a, before, after = sets[0]
        raise AtenExecutorError(f"forward sets {name} from {_shown(before)} to {after!r}, and from {after!r} it runs "
                                "another program: every call after the first would differ from eager (set it to "
                                f"{after!r} before compile, or keep such state in a buffer)")


def _exported_from(module: Any, args: tuple, kwargs: dict | None, values: list[tuple[Any, str, Any]]) -> Program:
    """``module`` exported again with each (module, attribute, value) of ``values`` set; the attributes put back
    after, as they were (``MISSING``: none), and what its hooks changed (``ambient.hook_state_kept``)."""
    import torch

    from .ambient import MISSING, held_before

    def put(items: list[tuple[Any, str, Any]]) -> None:
        for owner, name, value in items:
            if value is MISSING:
                vars(owner).pop(name, None)
            else:
                setattr(owner, name, value)

    now = [(owner, name, held_before(owner, name)) for owner, name, _v in values]
    put(values)
    try:
        with ambient.hook_state_kept(torch, module):   # (no eager call: a hook's counter is not one up)
            return load_program(module, args, kwargs)
    finally:
        put(now)


def _stand_in(torch: Any, value: Any) -> Any:
    """A real tensor of each (fake) tensor of ``value``'s layout, zero-filled: what a call's ``self.last = y`` leaves,
    for an export (the export's own fake tensors belong to its finished fake mode)."""
    from torch.utils import _pytree as pytree

    return pytree.tree_map(lambda t: torch.empty_strided(tuple(t.shape), tuple(t.stride()), dtype=t.dtype,
                                                         device=t.device).zero_()
                           if isinstance(t, torch.Tensor) else t, value)


def _shown(value: Any) -> str:
    """An attribute's value for a message: ``repr``, or "unset" where ``forward`` made the attribute."""
    from .ambient import MISSING

    return "unset" if value is MISSING else repr(value)


def _example_call(program: Program, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Compile's example call (the export keeps it), else ``args`` and ``kwargs``. Why: a proof exported with the
    call's own tensors, and one of another shape (refused by the executor after) could give another program: the
    values were then refused "another program" for good, calls of the right shape too."""
    example = getattr(program.exported, "example_inputs", None)
    if isinstance(example, tuple) and len(example) == 2:
        return tuple(example[0]), dict(example[1] or {})
    return args, kwargs


@contextlib.contextmanager
def _as_at_compile(torch: Any, default_dtype: Any, mode: tuple[bool, bool]) -> Iterator[None]:
    """The torch state compile exported under, for a proof's export: its default dtype, grad and inference mode, and
    no autocast. Why: a proof made inside ``torch.autocast``, under another default dtype or under ``no_grad`` (where
    ``forward`` may branch on ``torch.is_grad_enabled()``) gave another program, and the values were refused for
    good, outside it too; the executor's own checks refuse the call under such a state where it must."""
    grad, inference = mode
    old = torch.get_default_dtype()
    torch.set_default_dtype(default_dtype)
    try:
        with contextlib.ExitStack() as stack:
            for device_type in ("cpu", "cuda"):
                if torch.is_autocast_enabled(device_type):
                    stack.enter_context(torch.autocast(device_type, enabled=False))
            stack.enter_context(torch.inference_mode(inference))
            stack.enter_context(torch.set_grad_enabled(grad))
            yield
    finally:
        torch.set_default_dtype(old)


def check_no_autocast(torch: Any) -> None:
    """Refuse to compile inside a ``torch.autocast`` region: export records its ops without the ambient autocast
    but their fake results with it (``linear`` of float32 tensors into a bfloat16 result), so every call failed
    with torch's "Expected out tensor to have dtype float, but got c10::BFloat16"."""
    for device_type in ("cpu", "cuda"):
        if torch.is_autocast_enabled(device_type):
            raise AtenExecutorError(f"compile() called inside a torch.autocast region for {device_type}: torch.export "
                                    "does not record an autocast around the export (put it inside forward, where "
                                    "it is recorded, or compile outside it)")


def check_device(torch: Any, device: Any) -> Any:
    """``device`` as a ``torch.device`` the executor can run on, or an error naming it (torch's own would
    be a driver message or an assert from deep inside the first allocation)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AtenExecutorError(f"device {device!r} is not a torch device ({exc})") from None
    if dev.type not in ("cpu", "cuda"):
        raise AtenExecutorError(f"device {device!r}: the executor runs on 'cpu' or 'cuda'")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise AtenExecutorError(f"device {device!r}: torch sees no CUDA device here")
        if dev.index is not None and dev.index >= count:
            raise AtenExecutorError(f"device {device!r}: torch sees {count} CUDA device(s)")
    return dev


def check_program(torch: Any, program: Program, module: Any, example_inputs: tuple, kwargs: dict | None) -> None:
    """A reused ``program`` must be this module's export for these inputs: one of another module ran that
    module's weights, and example inputs of other shapes compiled a program every call then refused."""
    if isinstance(module, torch.nn.Module):
        own = {id(t) for _n, t in module.named_parameters(remove_duplicate=False)}
        other = [wid for wid, w in program.weights.items() if isinstance(w, torch.nn.Parameter) and id(w) not in own]
        if other:
            raise AtenExecutorError(f"program is not an export of this {type(module).__name__}: its weight "
                                    f"{other[0]!r} is no parameter of the module (compile it without program=)")
    if example_inputs or kwargs:
        tensors = flatten_inputs(program, example_inputs, kwargs)
        for (_pos, tid), x in zip(program.user_inputs, tensors):
            spec = program.specs[tid]
            if tuple(x.shape) != spec.shape or x.dtype != spec.dtype:
                raise AtenExecutorError(f"example input {tid!r} is {tuple(x.shape)} {x.dtype}, the program was "
                                        f"exported with {spec.shape} {spec.dtype} (compile it without program=)")
