"""``runtime.aten.compile``: export a module, plan its arena, verify the plan, and build the executor.

Why a separate module: this is the one function users call, and the only place that knows the whole
path (export -> import -> plan -> verify -> layout -> lowering -> streams -> capture). Every plan it
runs has passed ``memplan.verify``; ``plan=`` lets tests run a plan of their own (a negative control)
with ``verify=False``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import operator
import os
import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import memplan
from memplan.errors import BudgetError, check_given, check_option_names, check_positional, plain_int
from memplan.graph import Graph
from memplan.optimize.candidates import check_options
from memplan.planfile import Plan, check_plan_fields, check_plan_for
from memplan.solvers import check_solver_name
from memplan.solvers.options import SolveOptions

from . import (
    backend_flags,
    byte_places,
    cache_adopt,
    cache_windows,
    call_args,
    fastpath,
    flag_reads,
    grad_refusals,
    held_modules,
    hook_state,
    hook_values,
    host_random,
    installed,
    lazy_modules,
    loose_reads,
    returned_args,
    subclass,
    value_reads,
    walk_bounds,
)
from . import guard as module_guard
from .cache_paths import argument_caches
from .callform import CallForm, ExtraArguments, Proofs, call_form, in_compile_form, proof_key, same_program, takes
from .copy_kinds import check_copyable
from .errors import NOT_COPIED, AtenExecutorError, add_source, release_frames
from .executor import Executor, Stats, caller_capturing, check_not_traced
from .executor import _check_generators as check_generators
from .layout import SharedArena
from .lower import check_lowerable
from .program import Program, call_leaves, flatten_inputs, load_program
from .python_reads import ReadProofs, reads_refusal, record_reads, without_sets
from .sets import _python_changes_settle as python_changes_settle
from .sets import (
    check_bypassing_writes,
    check_carried_state,
    check_container_caches,
    check_container_changes,
    check_fallback_computes_the_same,
    check_forward_sets,
    check_hook_results,
    check_host_random,
    check_private_sets,
    check_process_settings,
    check_python_state,
    check_registry_changes,
    fallback_caches,
    fixed_sets,
    settle_hook_installs,
    take_unread_draws,
)
from .settings_copies import adopt_copies


@dataclass
class CompiledModule:
    """A callable over a planned arena: ``.graph``, ``.plan``, ``.arena_bytes``, ``.stats``.

    ``guard`` (None for an ``ExportedProgram``) watches the module's tensors and submodules between calls
    (``runtime.aten.guard``); ``rebinds`` counts the executor rebuilds a replaced tensor caused and
    ``recaptures`` those of them that drop a captured CUDA graph; ``flag_rebuilds`` counts the rebuilds a changed
    backend flag caused (``runtime.aten.backend_flags``)."""

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
    #: where ``attrs`` is a part of ``program.attr_outputs`` (the fallback: the taps each call sets beside a cache it
    #: does not, ``sets.fallback_caches``), the index of each in ``Executor.attribute_values``; None: all, in order
    attr_slots: tuple[int, ...] | None = None
    #: the hooks and forwards (``_calls_state``) an export showed to give another program than compile's
    #: (``_prove_calls``): a call meeting them again is refused at once, without an export per call
    calls_refuted: tuple | None = None
    #: the values of the guard's plain settings (``guard.settings``) an export showed to give another program than
    #: compile's (``_prove_settings``): met again (the same objects), refused at once, without an export per call
    settings_refuted: list | None = None
    #: the modules' training flags (``guard.training_now``) an export showed to give another program than compile's
    #: (``_prove_training``): met again, refused at once, without an export per call
    training_refuted: tuple[bool, ...] | None = None
    #: the states of the Python values ``forward`` reads (``guard.reads``) an export showed to give compile's program,
    #: and those it showed not to (``_prove_reads``): each state met again is answered without an export
    read_proofs: ReadProofs = field(default_factory=ReadProofs)
    #: the module's parameters ``forward`` writes in place outside a ``no_grad`` block, where compile exported without
    #: grad mode: found at the first call under grad mode (``_grad_mode_writes``); None until then
    grad_writes: str | None = None
    #: per set of the caller's inputs requiring grad that reach a write (``Executor.replayed_inputs``), where compile
    #: exported without grad mode: eager's refusal of such a call under grad mode, "" where it runs
    #: (``_input_grad_writes``)
    input_grad_writes: dict = field(default_factory=dict)
    #: (layer, where its query, key and value come from) of the ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``
    #: layers compile's export called as eager's fused fast path takes them (``fastpath.record``): a call where eager
    #: would take it is refused (``fastpath.fused_layer``)
    fused: tuple = ()
    #: the Python values the tree's forward hooks read, as the program was made from them (``hook_values``): a call
    #: after they changed exports again, and is refused where that gives another program; None: no hooks
    hook_reads: hook_values.HookValues | None = None
    #: the modules (and containers) the tree holds in list, tuple or dict attributes (``held_modules``): a call after
    #: one changed lists them again, and is refused where they differ and that gives another program; None: none
    held_modules: held_modules.HeldModules | None = None
    #: held through a whole call, its checks and proof exports too (``_locked_call``)
    call_lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

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

            cls._hidden_call = staticmethod(torch.compiler.disable(cls._locked_call))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _dynamo_at_work():
            return self._hidden_call(self, *args, **kwargs)
        return self._locked_call(*args, **kwargs)

    def _locked_call(self, *args: Any, **kwargs: Any) -> Any:
        """``_call`` holding ``call_lock`` (re-entrant: a call from inside one gets the executor's refusal). Why: the
        executor's own lock covers its run alone, and a proof's export (``_prove_reads``, ``_follow_hook_reads``, ...)
        swaps the module's tensors for fake ones while it traces: another thread's compiled call then read them, a raw
        "Cannot access data pointer of Tensor (e.g. FakeTensor ...)" (round 63b: 2 in ~3,500 calls of 3 threads while
        a global ``forward`` reads toggled), or checked the state half-way through a proof's bookkeeping."""
        with self.call_lock:
            return self._call(*args, **kwargs)

    def __copy__(self) -> CompiledModule:
        """A shallow copy: the same executor, arena and module (a second name for this one, as before)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: dict) -> CompiledModule:
        """Refused, naming what cannot be copied. Why: the copy failed in ``copy`` with a raw "cannot pickle 'module'
        object" (round 48); and no copy could be the independent step a deep copy promises: the executor's arena,
        streams and (captured) CUDA graph are device state, its launches are bound to that arena's views, and the
        program reads and writes the module's own tensors by identity. Compile a copy of the module instead."""
        raise AtenExecutorError(NOT_COPIED.format(what="deep-copied", thing="compiled module"))

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refused like ``__deepcopy__`` (pickle, ``multiprocessing``): the same device state and ties cannot travel."""
        raise AtenExecutorError(NOT_COPIED.format(what="pickled", thing="compiled module"))

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        check_not_traced(torch, self.program, [])   # first: a trace's flags and fake mode must reach no rebuild
        if not self._state_unchanged(torch):
            from memplan.importers.torch import EXPORT_LOCK

            with EXPORT_LOCK:   # (``_state_unchanged``: what another thread's export changes meanwhile, put back)
                self._follow_state(torch)
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
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled() and self.export_mode != (True, False):
            self._check_grad_mode_writes(torch)
            if self.executor.replayed_inputs:
                self._check_input_grad_writes(torch, args, kwargs)
        if self.fused and self.guard is not None:
            # the call's own refusals first (another structure, constant, or two tensors for inputs the export
            # merged): the fast path's verdict reads the export's inputs, so a call that does not match them drew its
            # refusal, not the accurate one (round 53b: m(x, y, y) of a program compiled from m(x, x, x))
            flatten_inputs(self.program, args, kwargs)
            why = fastpath.fused_layer(torch, self.guard.root, self.fused,
                                      call_leaves(self.program, args, kwargs)[0])
            if why is not None:
                raise AtenExecutorError(why)
        caches = None   # (the call's arguments by name, where it passes a cache eager grows: read once)
        if (self.program.returned_caches or self.program.window_inputs) and self.guard is not None:
            caches = argument_caches(torch, call_args.argument_names(self.guard.root, args, kwargs))   # (by name, and
            # by path those inside containers: ``state['cache']``, as ``Program.returned_caches`` names them)
            for name, _path in self.program.returned_caches:
                cache_adopt.check_adoptable(torch, name, caches.get(name))
            # (the counts the export specialized on, of caches at any path: ``state['cache']``)
            why = cache_windows.window_refusal(torch, self.guard.root, args, kwargs, self.program.window_inputs)
            if why is not None:
                raise AtenExecutorError(why)
        drawn_from = None
        if self.program.host_draws:   # (before the call: eager's forward draws as it starts its layers, before a
            drawn_from = random.getstate()   # Python op of the program could draw)
            host_random.repeat_draws(self.program.host_draws)
        try:
            out = self.executor.call(args, kwargs, delays, flags=False)   # the flags were just read: once a call
        except BaseException:
            if drawn_from is not None:   # a refused call (an input of another shape) leaves ``random`` as it was
                random.setstate(drawn_from)   # (round 51: it had advanced it)
            raise
        if caches is not None and self.program.returned_caches:
            out = _adopt_caches(caches, self.program.returned_caches, out)
        if self.program.returned_arguments and self.guard is not None:   # (after the caches they hold are grown)
            out = returned_args.put_arguments(dict(call_args.argument_names(self.guard.root, args, kwargs)),
                                              self.program.returned_arguments, out)
        if self.program.cache_counts:   # (a returned sliding-window cache's token counts: the export's)
            cache_windows.put_window_counts(torch, out, self.program.cache_counts)
        values = self.executor.attribute_values
        if self.attr_slots is not None:
            values = tuple(values[i] for i in self.attr_slots)
        for (owner, name, _label), value in zip(self.attrs, values):
            setattr(owner, name, value)   # the tensors eager's forward leaves set (``self.last = y``): copies
        for owner, name, value in self.sets:   # what eager's forward leaves set (``self.mult = 2``)
            setattr(owner, name, value if type(value) not in (list, dict) else copy.deepcopy(value))   # (a new one)
        return out

    def _state_unchanged(self, torch: Any) -> bool:
        """Whether the module tree, the backend flags and the hooks' state are as the executor was built for (the
        per-call fast path; ``_follow_state`` follows what changed). Why the caller then waits for the importer's
        ``EXPORT_LOCK``: an export in another thread (a ``compile`` of this module for another shape, served beside
        this one) swaps the module's tensors for fake ones and turns oneDNN off while it traces, and a call meeting
        that took it for a change of the module: it exported again to prove it (round 74: a proof per call while
        the compile ran), and that proof's own swap of the tensors made the compile in the other thread refuse the
        module ("M.l.weight is a parameter of FakeTensor, a tensor subclass ...": 2 compiles in 3)."""
        return ((self.held_modules is None or self.held_modules.unchanged())
                and (self.guard is None or self.guard.unchanged())
                and backend_flags.changed_flag(torch, self.executor.ambient.flags,
                                               backend_flags.backend_flags(torch)) is None
                and (self.hook_reads is None or self.hook_reads.changed(torch) is None))

    def _follow_state(self, torch: Any) -> None:
        """Follow what ``_state_unchanged`` found changed: held modules, module tensors, backend flags, hooks' state
        (each proven, rebuilt for, or refused)."""
        # (the modules held in list or dict attributes first: a layer appended there is named as such, where the
        # reads check, which watches those containers too, could only say the container changed)
        if self.held_modules is not None and not self.held_modules.unchanged():
            self._follow_held_modules(torch)
        if self.guard is not None and not self.guard.unchanged():
            self._follow_module()
        self._follow_flags()
        if self.hook_reads is not None and (now := self.hook_reads.changed(torch)) is not None:
            self._follow_hook_reads(torch, now)

    def _check_grad_mode_writes(self, torch: Any) -> None:
        """Refuse a call under grad mode where ``forward`` writes a parameter in place outside a ``no_grad`` block and
        compile exported it under ``no_grad`` or ``inference_mode``: eager's in-place op refuses that write under grad
        mode ("a leaf Variable that requires grad is being used in an in-place operation"), the program (run under
        ``no_grad``) made it, silently changing the parameter (round 48). Which writes those are is found once, by
        exporting ``forward`` again under grad mode (it fails as eager does); a write inside ``with torch.no_grad():``
        (an EMA teacher's) exports, and its calls run as before. No export for a program that writes no parameter."""
        if self.grad_writes is None:
            self.grad_writes = self._grad_mode_writes(torch)
        if self.grad_writes:
            raise AtenExecutorError(self.grad_writes)

    def _grad_mode_writes(self, torch: Any) -> str:
        """The refusal of a call under grad mode where an export of ``forward`` under grad mode fails as eager's
        autograd refuses a write: of a parameter the program writes (``Executor.written_weights``) that requires grad
        (round 48), or of a value computed from one (``out=`` of a differentiable op, an in-place write to a view of a
        multi-output op: ``Executor.weight_write_refusal``, round 75); "" otherwise (any other outcome proves nothing:
        the calls run as before). Why an export, not the fake run of ``grad_refusals``: a module compiled under
        ``no_grad`` exports no trace of a ``with torch.no_grad():`` block around the write, which eager runs
        (round 75's fake-run check refused round 48's EMA-style write that way)."""
        if self.guard is None:
            return ""
        written = {id(t) for t in self.executor.written_weights()}
        names = tuple(name for name, p in self.guard.root.named_parameters(remove_duplicate=False)
                      if p.requires_grad and id(p) in written)
        reaching = self.executor.weight_write_refusal()
        if not names and not reaching:
            return ""
        error = self._grad_mode_export_error(torch)
        message = error.splitlines()[0] if error else ""
        if names and "leaf Variable that requires grad" in error:
            return (f"forward writes parameter {names[0]!r} in place outside a no_grad block, and this call runs "
                    "under grad mode, where eager refuses that write (a leaf tensor that requires grad); compile "
                    "exported it without grad mode: call inside torch.no_grad() or torch.inference_mode()")
        if reaching and grad_refusals.AUTOGRAD.search(message):
            return (f"weight {reaching} requires grad, and under grad mode eager's forward raises: {message} "
                    "(call under torch.no_grad() or torch.inference_mode(), as the module was compiled, or set "
                    "requires_grad_(False) on its parameters)")
        return ""

    def _check_input_grad_writes(self, torch: Any, args: tuple, kwargs: dict) -> None:
        """Refuse a call under grad mode whose inputs requiring grad reach a write eager's autograd refuses (``out=``
        of a differentiable op, a write to a view of a multi-output op...), where compile exported under ``no_grad``:
        that export holds no trace of a ``with torch.no_grad():`` block around the write, so the executor's fake run
        cannot tell a write eager refuses from one it runs (``Executor.grad_blocks_traced``). The verdict is an export
        of ``forward`` under grad mode with compile's example inputs flagged as the call's are, once per set of flags
        (as ``_grad_mode_writes``'s for the parameters); any other outcome than autograd's refusal refuses nothing."""
        replayed = self.executor.replayed_inputs
        try:
            tensors = flatten_inputs(self.program, args, kwargs)
        except AtenExecutorError:
            return   # (the executor refuses such a call, naming why)
        flagged = tuple(k for k in replayed if k < len(tensors) and getattr(tensors[k], "requires_grad", False))
        if not flagged or self.guard is None:
            return
        why = self.input_grad_writes.get(flagged)
        if why is None:
            why = self.input_grad_writes[flagged] = self._input_grad_refusal(torch, flagged)
        if why:
            raise AtenExecutorError(why)

    def _input_grad_refusal(self, torch: Any, flagged: tuple[int, ...]) -> str:
        """``_check_input_grad_writes``' verdict for the user inputs ``flagged`` requiring grad (found once per set)."""
        error = self._grad_mode_export_error(torch, flagged)
        message = error.splitlines()[0] if error else ""
        if not grad_refusals.AUTOGRAD.search(message):
            return ""
        names = ", ".join(repr(self.program.user_inputs[k][1]) for k in flagged)
        return (f"input {names} requires grad, and under grad mode eager's forward raises: {message} (call under "
                "torch.no_grad() or torch.inference_mode(), as the module was compiled, or with inputs that require "
                "no grad)")

    def _grad_mode_export_error(self, torch: Any, flagged: tuple[int, ...] = ()) -> str:
        """The text of the error an export of ``forward`` under grad mode raises (compile's default dtype, no
        autocast) with compile's example inputs, the user inputs ``flagged`` among them requiring grad; "" where it
        exports, or where such an input is no float tensor. Why one export: only eager's own autograd knows whether a
        write it makes is inside a ``no_grad`` block, which an export under ``no_grad`` does not record (the callers
        read autograd's refusal from this text; any other error proves nothing)."""
        from torch.utils import _pytree as pytree

        args, kwargs = _example_call(self.program, (), {})
        if flagged:
            leaves, spec = call_leaves(self.program, args, kwargs)
            leaves = list(leaves)
            for k in flagged:
                pos = self.program.user_inputs[k][0]
                leaf = leaves[pos] if isinstance(pos, int) and pos < len(leaves) else None
                if not isinstance(leaf, torch.Tensor) or not (leaf.is_floating_point() or leaf.is_complex()):
                    return ""
                leaves[pos] = leaf.detach().clone().requires_grad_(True)
            args, kwargs = pytree.tree_unflatten(leaves, spec)
        try:
            with (_as_at_compile(torch, self.executor.ambient.default_dtype, (True, False)),
                  hook_state.hook_state_kept(torch, self.guard.root)):
                load_program(self.guard.root, tuple(args), dict(kwargs))
        except Exception as exc:  # noqa: BLE001 - the callers take autograd's refusal alone from it
            return str(exc).strip()
        return ""

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
                  hook_state.hook_state_kept(torch, self.guard.root)):   # (a proof is no eager call of the hooks)
                other = load_program(self.guard.root, base_args, {**base_kwargs, **extra})
        except Exception as exc:  # noqa: BLE001 - an export that fails with the values proves nothing
            why = f"exporting forward again with {names} as given failed ({str(exc).splitlines()[0]})"
        else:
            why = None if same_program(self.program, other, set(extra),
                                      module_guard.module_tensor_ids(torch, self.guard)) else (
                f"exported again with {names} as given, forward gave another program than compile's")
        if why is None:
            self._watch_reads_of(other)
        self.proofs.record(key, why)
        return why

    def _watch_reads_of(self, other: Program) -> None:
        """Watch from now on what ``other``'s export (a proof's) read that compile's did not: a settings object's
        values (``guard.widened``), the default dtype (a call under another default is refused where a read of it
        is recorded), the grad, inference and autocast modes (``Program.mode_reads``) and the tensors' layouts
        (``Program.layout_reads``). That path of ``forward`` runs in eager with the proven arguments."""
        import torch

        self.guard = module_guard.widened(torch, self.guard, self.program, other)
        reads = tuple(dict.fromkeys(self.program.default_dtype_reads + other.default_dtype_reads))
        modes = tuple(dict.fromkeys(self.program.mode_reads + other.mode_reads))
        layouts = tuple(dict.fromkeys(self.program.layout_reads + other.layout_reads))
        strides = tuple(dict.fromkeys(self.program.module_stride_reads + other.module_stride_reads))
        if (reads != self.program.default_dtype_reads or modes != self.program.mode_reads
                or layouts != self.program.layout_reads or strides != self.program.module_stride_reads):
            told = (None if self.program.identity_inputs is None or other.identity_inputs is None
                    else self.program.identity_inputs | other.identity_inputs)
            self.program = self.executor.program = replace(self.program, default_dtype_reads=reads, mode_reads=modes,
                                                           layout_reads=layouts, identity_inputs=told,
                                                           module_stride_reads=strides)
            self.executor.ambient.dtype_nodes = None   # (found again at the next call under another default)

    def _prove_calls(self, torch: Any) -> bool:
        """Whether the hooks (or forwards) the module tree has now, other than compile's, leave compile's program as it
        is: ``forward`` exported again as compile exported it (its example call, default dtype and modes; the hooks'
        Python state put back after) gives the very program (``callform.same_export``), registers nothing and no hook
        changed its Python state (a hook appending to a list, counting calls: work eager's calls do, no compiled one's).
        Then
        the guard takes them as they are now, and watches what that export read.

        Why: an eager call of a transformers 5 model with ``output_hidden_states=True`` after compile installs
        inert capturing hooks on its layers (once, for good), and every compiled call after it was refused ("the
        forward hooks of ...layers.0 changed after compile: compile again"), though the program is the same. A hook
        that changes the result keeps the refusal; the answer for a state of the hooks is remembered
        (``calls_refuted``), so a refused one costs one export, not one per call."""
        guard = self.guard
        if guard is None or guard.calls is None or guard.calls.changed() is None:
            return False
        state = _calls_state(guard.calls)
        if state == self.calls_refuted:
            return False
        hooks_changed: list[str] = []
        other, why = self._export_again(torch, settle=False, hooks_changed=hooks_changed)
        if why is not None or hooks_changed:   # (no example kept, a failed export, another program: the refusal
            self.calls_refuted = state          # stays, remembered for this state of the hooks)
            return False
        owners = {"": guard.root, **{path: child for path, _p, _a, child, _c, _t in guard.modules}}
        self.guard = replace(guard, calls=module_guard.record_calls(torch, guard.root_cls.__name__, owners))
        self._watch_reads_of(other)
        self.hook_reads = hook_values.record(torch, guard.root)   # (the hooks now, proven as their state is now)
        self._forget_proofs(reads=True)
        return True

    def _prove_settings(self, torch: Any, refusal: str) -> bool:
        """Whether the plain settings the guard watches (``guard.settings``: a config field ``forward`` read), changed
        since compile where nothing else was (``refusal`` is their refusal), leave compile's program as it is:
        ``forward`` exported again from the values now, as compile exported it, gives the very program and settles
        (``_export_again``). Then the guard takes them as they are now, and watches what that export read.

        Why: a transformers classifier compiled with labels reads ``config.problem_type`` (None), and its ``forward``
        sets it once for good (``"single_label_classification"``); every compiled call after an eager call with
        labels, which sets it as each first eager call does, was refused ("problem_type is
        'single_label_classification' now, None at compile"), though the program is the same (round 74). A value
        that makes another program (``m.temperature = 0.5`` baked in as 0.7) keeps the refusal, remembered for the
        values now (``settings_refuted``), so a refused state costs one export, not one per call."""
        guard = self.guard
        if (guard is None or guard.settings is None
                or refusal != module_guard.settings_refusal(guard, self.program)):   # (not the settings' refusal)
            return False
        now = guard.settings.values_now()
        if self.settings_refuted is not None and len(now) == len(self.settings_refuted) and all(
                map(operator.is_, now, self.settings_refuted)):
            return False
        other, why = self._export_again(torch)
        if why is not None or other is None:
            self.settings_refuted = now
            return False
        self._forget_proofs(reads=True)
        self._watch_reads_of(other)   # (records the settings anew, at their values now)
        return True

    def _prove_training(self, torch: Any) -> bool:
        """Whether the modules' training flags, switched since compile (``model.train()``), leave compile's program as
        it is: ``forward`` exported again as compile exported it, in the modes now, gives the very program and settles
        (``_export_again``). Then the guard takes the flags as they are now.

        Why: every compiled call after a switch was refused ("M is in train mode now, ...: compile again"), where
        eager's result is the same for a model no mode reaches (no dropout, batch norm or ``self.training`` branch:
        an MLP, a model whose dropout has ``p=0`` in its config) (round 74). A model whose program the mode changes
        (a dropout drawn, batch statistics) keeps the refusal, remembered for the flags now (``training_refuted``), so
        a refused state costs one export, not one per call."""
        guard = self.guard
        if guard is None:
            return False
        now = module_guard.training_now(guard)
        if now == module_guard.training_then(guard) or now == self.training_refuted:
            return False
        other, why = self._export_again(torch)
        if why is not None or other is None:
            self.training_refuted = now
            return False
        self.guard = module_guard.with_training_now(guard)
        self._forget_proofs(reads=True)
        self._watch_reads_of(other)
        return True

    def _forget_proofs(self, reads: bool) -> None:
        """Drop the answers proven or refuted under the state just left: the argument proofs (``proofs``), the
        refused hooks, hook values and held modules, and (``reads``: where what moved is no read value) the states of
        the values ``forward`` reads (``read_proofs``). Why: each answer was an export from the whole state then; met
        again after another part of it moved (a hook's value, a global ``forward`` reads), it answered for a program
        never exported. A state of the reads proven under a hook's ``n[0] = 0`` was taken again, without an export,
        after ``n[0] = 1`` was proven under other reads (1.0 off, silently); an argument proven inert under
        ``S = 0`` (``flag and S``) ran the program without its branch after ``S = 1`` was proven (round 63b)."""
        self.proofs = Proofs()
        self.calls_refuted = None
        self.settings_refuted = None
        self.training_refuted = None
        if self.hook_reads is not None:
            self.hook_reads.refuted = None
        if self.held_modules is not None:
            self.held_modules.refuted = None
        if reads:
            self.read_proofs = ReadProofs()

    def _follow_hook_reads(self, torch: Any, now: tuple) -> None:
        """Take the hooks' Python state ``now`` (``hook_values``), changed since compile, where ``forward`` exported
        again as compile exported it gives the very program (a counting hook advanced by eager calls); else refuse,
        naming the hook (``out.mul_(n[0])`` after ``n[0] = 2.0``: every compiled call scaled by the export's 1.0,
        round 63). A refuted state is refused at once when met again, without an export."""
        reads = self.hook_reads
        if now != reads.refuted and self._exports_the_same(torch):
            self.hook_reads = replace(reads, seen=now)
            self._forget_proofs(reads=True)
            return
        reads.refuted = now
        raise AtenExecutorError(hook_values.refusal(reads.first_changed(now)))

    def _follow_held_modules(self, torch: Any) -> None:
        """Take the tree's container attributes as they are now (``held_modules``: one moved since compile) where they
        reach the same modules and tensors (a list ``forward`` builds anew from the same layers), or where
        ``forward`` exported again gives the very program; else refuse, naming the first difference
        (``m.layers.append(nn.Linear(4, 4))``: every compiled call ran the export's one layer, round 63)."""
        held = self.held_modules
        now = held_modules.listed(torch, self.guard.root)
        if now == held.listing:   # (the same modules and tensors in new containers: no other state)
            self.held_modules = held_modules.record(torch, self.guard.root)
            return
        if now != held.refuted and self._exports_the_same(torch):
            self.held_modules = held_modules.record(torch, self.guard.root)
            self.hook_reads = hook_values.record(torch, self.guard.root)   # (a held layer's hook added: watched)
            self._forget_proofs(reads=True)
            return
        held.refuted = now
        raise AtenExecutorError(held_modules.refusal(held_modules.first_difference(held.listing, now)))

    def _exports_the_same(self, torch: Any) -> bool:
        """Whether ``forward`` exported again as compile exported it (its example call, default dtype and modes; the
        hooks' Python state put back after) gives compile's very program and registers nothing (``_export_again``
        without its settling test: the hooks' and held modules' proofs)."""
        return self.guard is not None and self._export_again(torch, settle=False)[1] is None

    def _prove_reads(self, torch: Any) -> None:
        """Take or refuse the Python values ``forward`` reads beside its module (``python_reads``: a global, a closure
        cell, a class attribute, a container inside a global or a module attribute, an object's field) where one is
        no longer equal to its value at compile: taken where ``forward`` exported again from the values now, as
        compile exported it (as ``_prove_calls`` does for hooks), gives the very program and settles (its own Python
        changes made once for good: ``sets.check_python_state``'s rule); then they are the new baseline, and what
        that export read is watched. Otherwise refused, naming the value, where it lives and both values.

        Why: a compiled call runs no Python, so the program holds what the export read: ``x * SCALE`` after
        ``SCALE = 3.0`` ran ``x * 2.0`` silently. A change alone is no proof of harm: a warn-once set, a logged-once
        flag or a kernel bound lazily into a global, changed by an eager call of ``forward`` itself (round 41c), and a
        flag read that changes nothing (``if VERBOSE: ...``), give the same program (round 62b refused them all).
        A replaced ``torch.Generator`` in a module's list is left to the executor's refusal, which names it as such
        (round 50). Each state is proven once (``read_proofs``): the unchanged calls after pay the identity checks
        alone."""
        guard = self.guard
        if guard.reads is None:
            return
        why = reads_refusal(guard.reads)
        if why is None:   # (equal values, other objects; a container changed by tensors alone: recorded anew)
            if guard.reads.replaced():   # (``self.cfg = {...}`` equal to the old: its inner containers watched)
                self.guard = replace(guard, reads=record_reads(torch, guard.root, guard.reads.skip, guard.reads.live,
                                                                guard.reads.read, guard.reads.held))
            return
        if self.program.generators:
            check_generators(self.program)
        now = guard.reads.refreshed()
        seen, refusal = self.read_proofs.known()
        other = None
        if not seen:
            other, proof = self._export_again(torch)
            refusal = None if proof is None else reads_refusal(guard.reads, proof)
            self.read_proofs.record(now, refusal)
        if refusal is not None:
            raise AtenExecutorError(refusal)
        self._forget_proofs(reads=False)   # (the reads' own answers stay: a flag toggled between two proven values)
        self.guard = replace(guard, reads=record_reads(torch, guard.root, guard.reads.skip, guard.reads.live,
                                                guard.reads.read, guard.reads.held) if guard.reads.replaced()
                                   else now)
        if other is not None:
            self._watch_reads_of(other)

    def _export_again(self, torch: Any, settle: bool = True,
                      hooks_changed: list[str] | None = None) -> tuple[Program | None, str | None]:
        """(``forward`` exported again as compile exported it, from the Python state now, None where no program
        came; None where it is compile's very program and, with ``settle``, settles, else why not, for
        ``_prove_reads``, ``_exports_the_same`` and ``_prove_calls``). ``hooks_changed`` gains each place of a hook's
        Python state the export's run of the hooks changed (``hook_state.hook_state_kept``; put back after)."""
        guard = self.guard
        example = getattr(self.program.exported, "example_inputs", None)
        if not (isinstance(example, tuple) and len(example) == 2):
            return None, "compile's example inputs are not kept, so no export from the values now could prove it"
        args, kwargs = tuple(example[0]), dict(example[1] or {})

        def export() -> Program:
            with (_as_at_compile(torch, self.executor.ambient.default_dtype, self.export_mode),
                  hook_state.hook_state_kept(torch, guard.root) as changed):
                program = load_program(guard.root, args, kwargs)
            if hooks_changed is not None:   # (filled as the block above closed)
                hooks_changed.extend(changed)
            return program

        try:
            other = export()
        except Exception as exc:  # noqa: BLE001 - an export that fails proves nothing: refused
            return None, f"exporting forward again from the values now failed: {str(exc).splitlines()[0]}"
        if other.registry_changes or not same_program(self.program, other, set(),
                                                       module_guard.module_tensor_ids(torch, guard)):
            return other, "exported again from the values now, forward gives another program than compile's"
        if settle and not python_changes_settle(other, export):
            return other, ("exported again from the values now, forward changes Python state beside its module "
                           "at every call")
        return other, None

    def _follow_flags(self) -> None:
        """Build the executor again where a backend flag changed since it was built (``backend_flags.backend_flags``:
        TF32, cuDNN, deterministic algorithms, ...): eager's next call follows the flag, the executor's lowering
        and captured CUDA graph hold the kernels chosen under the old one. Counted in ``flag_rebuilds``."""
        import torch

        changed = backend_flags.changed_flag(torch, self.executor.ambient.flags, backend_flags.backend_flags(torch))
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

        self.guard = adopt_copies(torch, self.guard, self.program)   # (``m.cfg = deepcopy(m.cfg)``)
        try:
            new = module_guard.changes(torch, self.guard, self.program)
        except AtenExecutorError as exc:
            if not (self._prove_calls(torch) or self._prove_settings(torch, str(exc)) or self._prove_training(torch)):
                raise
            new = module_guard.changes(torch, self.guard, self.program)
        self._prove_reads(torch)   # (after the module's own checks: those name what changed first)
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
        # (``order``: its first call waits on the device for the old build's last one, whatever the streams: that one
        # may still write the module's buffers, and the old arena is let go here)
        executor = Executor(program, self.plan, ex.device, order=ex.order, **self.options)
        executor.ambient = replace(executor.ambient, default_dtype=ex.ambient.default_dtype,
                                   dtype_nodes=ex.ambient.dtype_nodes)
        executor.grad_blocks_traced = ex.grad_blocks_traced
        if module_guard.needs_recapture(ex.cuda_graph, ex._captured, True):
            self.recaptures += 1
        self.program, self.executor = program, executor


def _adopt_caches(given: dict[str, Any], caches: tuple, out: Any) -> Any:
    """``out`` with each of the call's ``DynamicCache`` (or ``EncoderDecoderCache``) arguments that eager's ``forward``
    grows and returns as itself (``Program.returned_caches``) grown as eager's: the program's cache's state put into
    the caller's object (``cache_adopt.adopt_cache``), which then stands in the output where eager's does. Why: a decode
    step's ``past_key_values`` was refused before (round 53b: eager's ``out.past_key_values is cache``, longer by the
    new tokens; a compiled call that left the caller's cache as passed would be a silently other state). ``given``: the
    call's arguments by name."""
    for name, path in caches:
        caller = given.get(name)
        if caller is None:
            continue   # (not passed in this call: nothing of the caller's to grow)
        cache_adopt.adopt_cache(caller, _at(out, path))
        out = returned_args.put_at(out, path, caller)
    return out


def _at(out: Any, path: tuple) -> Any:
    for k in path:
        out = out[k]
    return out


def _options_named(func: Any) -> Any:
    """``func`` with a misspelt keyword (``compile(m, x, stream=2)``), an option given by position or a missing
    module refused as memplan's entry points refuse them (``OptionError``, a TypeError still, naming the nearest
    option and the list): it was Python's bare TypeError. Unlike ``memplan.errors.named_options`` no argument is
    converted: the example inputs are the caller's (a 0-d integer tensor is no int)."""
    params = list(inspect.signature(func).parameters.values())
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_positional(func.__name__, args, params)
        check_option_names(func.__name__, kwargs, known)
        check_given(func.__name__, args, kwargs, params)
        return func(*args, **kwargs)

    return checked


@_options_named
def compile(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, streams: int | str = "auto",  # noqa: A001
            memory_budget: int | None = None, solver: str = "auto", cuda_graph: bool = True,
            device: Any = None, return_views: bool = False, poison: bool = False, plan: Plan | None = None,
            verify: bool = True, program: Program | None = None, time_limit: float | None = None,
            shared_arena: SharedArena | None = None) -> CompiledModule:
    """Plan and build ``module(*example_inputs, **kwargs)`` for repeated calls with same-shaped inputs.

    ``streams``: "auto" (memplan finds concurrency), an int, or 1 for the serial plan; on a CPU the plan's
    steps run in issue order whatever it is. ``memory_budget`` (bytes) caps the arena (``BudgetError`` if
    even serial does not fit). ``cuda_graph`` captures the whole multi-stream call once and replays it.
    ``device`` defaults to the device of the first example input. ``return_views`` returns the arena's
    output views (valid until the next call is made; on CUDA, work on them enqueued on the caller's stream before then
    comes first: docs/aten.md) instead of copies. ``poison`` fills the arena with NaN bytes
    before every call (for tests). ``plan`` runs a given plan instead of planning (``verify=False`` skips
    the check, for negative controls only); ``program`` reuses an earlier export; ``shared_arena`` (a
    ``layout.SharedArena``, ``compile_per_count``'s) builds the arena on that shared one (a larger one made first
    where it is shorter), whose lock every call of a program on it holds (each call takes it itself). With ``plan``, the planning
    options must agree with it or be left out: ``streams`` (a cap, as for ``memplan.plan``) at least the streams
    its nodes run on, ``memory_budget`` at least its arena, no ``solver`` or ``time_limit`` (``check_given_plan``).

    A refusal lets go of what the attempt allocated: the frames of its traceback are cleared (``release_frames``),
    so an exception a caller keeps (a notebook's last error) does not hold the arena.
    """
    loaded: list[Program] = []   # (the program once loaded: a refusal of one of its nodes names its source line)
    try:
        return _compile(module, example_inputs, kwargs=kwargs, streams=streams, memory_budget=memory_budget,
                        solver=solver, cuda_graph=cuda_graph, device=device, return_views=return_views,
                        poison=poison, plan=plan, verify=verify, program=program, time_limit=time_limit,
                        shared_arena=shared_arena, loaded=loaded)
    except BaseException as exc:
        if isinstance(exc, AtenExecutorError) and loaded:
            add_source(exc, loaded[0].exported)
        release_frames(exc)
        raise


def _compile(module: Any, example_inputs: Any, *, kwargs: dict | None, streams: int | str,
             memory_budget: int | None, solver: str, cuda_graph: bool, device: Any, return_views: bool,
             poison: bool, plan: Plan | None, verify: bool, program: Program | None,
             time_limit: float | None, shared_arena: SharedArena | None = None,
             loaded: list | None = None) -> CompiledModule:
    """``compile``'s work (its docstring); appends the program to ``loaded`` once it has one."""
    import torch

    # options first, named, before the export (seconds to minutes): a typo must not cost a model's export. An
    # integer to Python (``np.int64(2)``, a 0-d integer array) is the plain int it equals, as ``memplan.plan`` takes
    # it (``named_options``): compile refused ``streams=np.int64(2)`` and ``memory_budget=np.int64(1 << 30)``
    streams, memory_budget = plain_int(streams), plain_int(memory_budget)
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
    check_given_plan(plan, streams, memory_budget, solver, time_limit)
    if shared_arena is not None and not isinstance(shared_arena, SharedArena):
        raise AtenExecutorError(f"shared_arena must be a runtime.aten.layout.SharedArena, not "
                                f"{type(shared_arena).__name__}")
    if program is not None and not isinstance(program, Program):
        raise AtenExecutorError(f"program must be a Program from an earlier compile (.program), not "
                                f"{type(program).__name__}")
    if device is not None:
        device = check_device(torch, device)
    if not isinstance(example_inputs, tuple):
        example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
    check_no_autocast(torch)
    from memplan.importers.torch import EXPORT_LOCK

    # (the module's checks and its exports under the importer's export lock, as one: another thread's export of this
    # module, a compile for another shape, swaps its tensors for fake ones while it traces, and a compile starting
    # meanwhile refused the module as holding FakeTensor parameters, round 74; no arena is taken under it)
    with EXPORT_LOCK:
        check_no_script_modules(torch, module)
        check_no_nested_weights(torch, module)
        lazy_modules.check_materialised(torch, module)   # (torch's GraphError named no layer)
        walk_bounds.warn_cut_walks(torch, module)   # (before the export: its walks leave the same containers)
        if isinstance(module, torch.nn.Module):   # (the tree's classes' packages are the user's for every watch below,
            installed.user_packages(torch, module)   # wherever installed: ``installed.library_code``)
        if program is None:
            with byte_places.forward_writes_refused(torch, module), value_reads.branch_refused(torch, module):
                program = load_program(module, example_inputs, kwargs)   # (a NumPy array forward changes in place; a
                # branch on a global tensor's value, ``if T > 1:``, named)
        else:
            check_program(torch, program, module, example_inputs, kwargs)
        if loaded is not None:
            loaded.append(program)
        fused = program.fast_calls   # (the layers eager may run fused, ``fastpath.record``: kept past the exports below)
        if not program.fast_recorded and isinstance(module, torch.nn.Module):   # (a strict export's, an ExportedProgram's)
            fused = fastpath.from_program(torch, module, program.exported)
        if isinstance(module, torch.nn.Module):   # (a ``program=`` too: one whose export installed hooks once was
            # refused where compile's own export of the same module settled them, round 74)
            program = settle_hook_installs(torch, module, program, lambda: load_program(module, example_inputs, kwargs))
        check_registry_changes(torch, program)   # (before planning: named at once)
        if isinstance(module, torch.nn.Module):
            program = take_unread_draws(program, lambda: load_program(module, example_inputs, kwargs,
                                                                              plain_draws=True))
        if program.fast_calls != fused:   # (the exports again above record their own layers' calls: the first kept)
            program = replace(program, fast_calls=fused)
    check_host_random(program)
    check_process_settings(program)
    check_python_state(program, module, example_inputs, kwargs)
    check_hook_results(program, module, example_inputs, kwargs)
    check_lowerable(program)   # (before planning and the arena: refusals of the program alone)
    if device is None:
        first = next((x for x in list(example_inputs) + list((kwargs or {}).values())
                      if isinstance(x, torch.Tensor)), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    check_copyable(torch, program, device)   # (before planning: a dtype torch cannot copy, named)
    graph = program.graph
    if plan is None:
        n = 1 if device.type != "cuda" and streams == "auto" else streams
        plan = memplan.plan(graph, solver=solver, streams=None if n == 1 else n, memory_budget=memory_budget,
                            time_limit=time_limit)   # plan() verifies what it returns (check=True)
    elif verify:   # (the pairing first: verify's own findings on a plan of another module named no module)
        check_plan_for(graph, plan)
        memplan.verify(graph, plan)
    options = {"cuda_graph": cuda_graph, "return_views": return_views, "poison_arena": poison,
               "shared_arena": shared_arena}
    executor = Executor(program, plan, device, **options)
    executor.grad_blocks_traced = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    # (what compile records of the module, under the export lock again: a guard recorded while another thread's
    # export had swapped the module's tensors for fake ones held none of them, so a weight replaced after compile ran
    # the old one silently, round 74; the compiled step's own run, ``flag_reads``, outside it: it takes the arena)
    with EXPORT_LOCK:
        form = call_form(module.forward, example_inputs, kwargs) if isinstance(module, torch.nn.Module) else None
        check_container_changes(program)
        guard = module_guard.record(torch, module, program)
        if guard is not None:
            value_reads.warn_unwatched(program, guard)   # (a tensor read as numbers no watch holds: named)
            loose_reads.warn_loose(program)   # (one read by a thread compile does not watch: each change exports again)
        sets = module_guard.forward_sets(torch, module, program)
        held = (module_guard.module_tensor_ids(torch, guard) if guard is not None
                and (sets or program.attr_outputs or program.call_changes or program.forward_values)
                else frozenset())   # (for a second export)
        cached = check_bypassing_writes(torch, module, program, example_inputs, kwargs, held)
        sets += fixed_sets(torch, module, program)   # (``self.seen = x.shape``: checked and set as a plain value is)
        tensors = program.attr_outputs
        settable, again = True, None
        if sets or tensors:   # (a reused ``program=`` too: its export saw the same forward)
            settable, again = check_forward_sets(torch, module, program, sets, example_inputs, kwargs, held)
        sets += cached   # (after the check: exported again without them, forward computes them as at compile)
        slots: tuple[int, ...] | None = None
        if tensors and not settable:   # the fallback: refused where a tensor attribute carries state between calls,
            caches, slots = fallback_caches(torch, program, again)   # or where the state it leaves makes forward compute
            check_carried_state(torch, program, caches)   # other results; named: the caches, not a tap beside them
            check_fallback_computes_the_same(torch, program, again, held, caches)
        if guard is not None:   # (last: a property's public name, checked above, is named before its private value)
            sets += check_private_sets(torch, module, program, example_inputs, kwargs,
                                       lambda: held or module_guard.module_tensor_ids(torch, guard))
            check_container_caches(torch, module, program, example_inputs, kwargs,
                                   lambda: held or module_guard.module_tensor_ids(torch, guard))
        if guard is not None and settable and sets:   # (the lists and dicts each call sets anew: no caller's change)
            guard = replace(guard, reads=without_sets(torch, module, guard.reads, [(o, n, a) for _n, o, n, _b, a in sets]))
        step = CompiledModule(program, plan, executor, guard, options, form=form,
                              export_mode=(torch.is_grad_enabled(), torch.is_inference_mode_enabled()),
                              fused=program.fast_calls if guard is not None else (),
                              sets=tuple((owner, name, after) for _n, owner, name, _b, after in sets) if settable else (),
                              attrs=tensors if settable else tuple(tensors[i] for i in slots or ()),
                              attr_slots=None if settable else slots or (),
                              hook_reads=hook_values.record(torch, module) if guard is not None else None,
                              held_modules=held_modules.record(torch, module) if guard is not None else None)
    # (forward asked torch.compiler.is_compiling(): the program against eager on the examples, round 68)
    flag_reads.check_branches(torch, module, step, program, example_inputs, kwargs)
    return step



def _dynamo_at_work() -> bool:
    """Whether Dynamo is at work in this thread: tracing the calling frame (``torch.compiler.is_dynamo_compiling()``,
    False when run, which Dynamo folds to True: nothing after it is traced; not ``is_compiling()``, a process-wide flag
    that any thread's export sets) or set on the thread's eval frame (code it runs as it is inside a compiled region).
    Only then does a call go through ``_hidden_call`` (``torch.compiler.disable``).

    Why not always: torch's ``disable`` wrapper annotates each call while *any* thread exports
    (``torch.compiler.is_exporting()`` is process-wide) through the FX tracer's global ``current_meta``, which that
    export uses too: a compiled module called in one thread while another compiled (exported) anything failed now and
    then with a raw ``KeyError: 'custom'`` from torch, and wrote its annotation into the other's nodes (round 49)."""
    import torch

    if getattr(torch.compiler, "is_dynamo_compiling", torch.compiler.is_compiling)():
        return True
    getter = getattr(getattr(getattr(torch._C, "_dynamo", None), "eval_frame", None), "get_eval_frame_callback", None)
    return getter is None or getter() is not None   # (a torch without the getter: hidden, as before)


def _calls_state(calls: module_guard.Calls) -> tuple:
    """The hooks (handle ids per hook dict) and forwards (by identity) of a module tree now: what ``_prove_calls``
    remembers a refutation for."""
    return (tuple(map(tuple, calls.dicts)), tuple(id(own.get("forward")) for own in calls.own),
            tuple(id(getattr(cls, "forward", None)) for cls in calls.classes))


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


def check_given_plan(plan: Any, streams: Any, memory_budget: int | None, solver: str,
                     time_limit: float | None) -> None:
    """Refuse a ``plan=`` that is no ``Plan``, or planning options that disagree with it, naming both, before the
    export. Why refuse rather than take the plan's: the options choose the plan compile makes, and with a plan given
    compile makes none, so ``compile(m, x, streams=1, plan=p3)`` ran ``p3``'s 3 streams where the caller asked for
    one, and a ``memory_budget`` below the plan's arena was ignored, silently. ``streams`` is a cap, as for
    ``memplan.plan`` (``streams=3`` may plan 2): a plan on at most that many streams agrees, "auto" with any; a
    ``solver`` or ``time_limit`` has nothing to choose (leave them out)."""
    if plan is None:
        return
    if not isinstance(plan, Plan):
        hint = (" (load a plan file with memplan.load_plan(path))" if isinstance(plan, (str, os.PathLike))
                else "")
        raise AtenExecutorError(f"plan must be a memplan Plan, not {type(plan).__name__}{hint}")
    # its fields first, as a plan file's are (a Plan built in code may hold anything): an order entry of one value, a
    # list stream id or a string arena_bytes was a raw ValueError or TypeError from the comparisons below
    check_plan_fields(plan)
    used = len({s for _n, s in plan.order})
    cap = 1 if streams is None else streams
    if isinstance(cap, int) and used > cap:
        raise AtenExecutorError(f"streams={streams!r} asks for at most {cap} stream{'s' if cap > 1 else ''}, but the "
                                f"given plan (of graph {plan.graph!r}) runs its nodes on {used} streams: give "
                                f"streams={used} or 'auto' with it, or a plan on at most {cap}")
    if memory_budget is not None and plan.arena_bytes > memory_budget:
        raise BudgetError(f"memory_budget={memory_budget} bytes, but the given plan (of graph {plan.graph!r}) needs "
                          f"an arena of {plan.arena_bytes}: give a plan within the budget, or no memory_budget")
    for name, value, default in (("solver", solver, "auto"), ("time_limit", time_limit, None)):
        if value != default:
            raise AtenExecutorError(f"{name}={value!r} chooses how compile plans, but a plan is given (plan=), so "
                                    f"compile plans nothing: leave {name} out")


def check_no_autocast(torch: Any) -> None:
    """Refuse to compile inside a ``torch.autocast`` region: export records its ops without the ambient autocast
    but their fake results with it (``linear`` of float32 tensors into a bfloat16 result), so every call failed
    with torch's "Expected out tensor to have dtype float, but got c10::BFloat16"."""
    for device_type in ("cpu", "cuda"):
        if torch.is_autocast_enabled(device_type):
            raise AtenExecutorError(f"compile() called inside a torch.autocast region for {device_type}: torch.export "
                                    "does not record an autocast around the export (put it inside forward, where "
                                    "it is recorded, or compile outside it)")


def check_no_script_modules(torch: Any, module: Any) -> None:
    """Refuse a module tree holding a TorchScript module (``torch.jit.script`` / ``torch.jit.trace`` of a submodule),
    naming it, before the export. Why: torch.export cannot trace through one: a scripted submodule failed with "Sub.
    forward() takes 2 positional arguments but 3 were given" naming no submodule, a traced one with a raw
    ``AttributeError: 'OrderedDictWrapper' object has no attribute 'get'`` (session 40b). A ``torch.compile``d
    submodule is exported as the module it wraps."""
    if not isinstance(module, torch.nn.Module):
        return
    root = type(module).__name__
    for path, m in module.named_modules():
        if isinstance(m, torch.jit.ScriptModule):
            where = f"{root}.{path}" if path else root
            raise AtenExecutorError(f"{where} is a TorchScript module ({type(m).__name__}, from torch.jit.script or "
                                    "torch.jit.trace): torch.export cannot trace through it (use the nn.Module it was "
                                    "made from)")


def check_no_nested_weights(torch: Any, module: Any) -> None:
    """Refuse a nested tensor (``torch.nested``) held as a parameter or buffer, or one of a tensor subclass that may
    compute otherwise than the program (``subclass.difference``), naming it, before the export. Why:
    the export failed on it with torch's "Internal error: NestedTensorImpl doesn't support sizes" (``torch.strided``
    layout) or "'NestedIntNode' object has no attribute 'expr'" (``torch.jagged``), naming no buffer (round 71); a
    sparse one is named by the importer. As a plain attribute it compiles (and is put back after compile's eager
    comparison run, ``module_state``)."""
    if not isinstance(module, torch.nn.Module):
        return
    root = type(module).__name__
    for kind, named in (("parameter", module.named_parameters), ("buffer", module.named_buffers)):
        for path, t in named(remove_duplicate=False):
            if isinstance(t, torch.Tensor) and t.is_nested:
                raise AtenExecutorError(f"{root}.{path} is a nested tensor {kind} (torch.nested, layout "
                                        f"{str(t.layout).removeprefix('torch.')}): torch.export cannot trace one, "
                                        "and the executor runs dense, strided tensors only (hold it as a plain "
                                        "attribute forward does not compute with, or make it dense)")
            why = (subclass.difference(torch, type(t)) if isinstance(t, torch.Tensor)
                   and not isinstance(t, torch.nn.parameter.UninitializedTensorMixin) else None)   # (a lazy layer's:
            # ``lazy_modules.check_materialised`` names it)
            if why is not None:   # (round 73: a buffer of a subclass whose ``__torch_function__`` doubles ``add``,
                # or a ``__torch_dispatch__`` one, compiled and every call gave the plain program's values, 3.7 off
                # eager; the caller's inputs of such classes were refused since round 42)
                raise AtenExecutorError(f"{root}.{path} is a {kind} of {type(t).__name__}, a tensor subclass {why}: "
                                        "eager runs forward's ops through it, the program runs ATen's kernels on its "
                                        "data alone (hold a plain tensor, t.as_subclass(torch.Tensor), where that is "
                                        "what eager would compute)")


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
        if dev.index is None:
            # the device current now, where the arena is allocated: "cuda" as it stood named whichever device was
            # current at each call, whose stream the call then ordered itself on (its fork, join and call events)
            # while its input copies ran on the arena's device's stream; and a shared arena's "cuda:0" never equalled
            # it (each such program took an arena of its own)
            dev = torch.device("cuda", torch.cuda.current_device())
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
        mine = {id(m) for m in module.modules()}
        for _name, path, owner, *_rest in program.generators:   # (the launches draw from the owner's generator)
            if id(owner) not in mine:
                raise AtenExecutorError(f"program is not an export of this {type(module).__name__}: it draws from "
                                        f"the torch.Generator {path} of another module (compile it without program=)")
    if example_inputs or kwargs:
        tensors = flatten_inputs(program, example_inputs, kwargs)
        for (_pos, tid), x in zip(program.user_inputs, tensors):
            spec = program.specs[tid]
            if tuple(x.shape) != spec.shape or x.dtype != spec.dtype:
                raise AtenExecutorError(f"example input {tid!r} is {tuple(x.shape)} {x.dtype}, the program was "
                                        f"exported with {spec.shape} {spec.dtype} (compile it without program=)")
