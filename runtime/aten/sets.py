"""What ``forward`` sets on its module, checked at compile: which writes each compiled call repeats as eager's call
makes them, and which are refused.

Why a module of its own: a compiled call runs no Python, so every attribute ``forward`` sets, every container it
changes in place and every write that bypasses ``nn.Module.__setattr__`` is either repeated by the executor
(plain values set to one value each call, tensor attributes as owned copies, fixed values such as a
``torch.Size``) or refused naming it; these rules, and the second export that proves them, are one job apart from
``compile``'s path (export -> plan -> verify -> build), which calls them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import guard as module_guard
from . import hook_state, module_containers, module_writes, process_settings, python_state, registries, tensor_attrs
from .callform import same_program
from .errors import AtenExecutorError
from .program import Program, load_program
from .settings import SCALARS, plain, same_value, value_text


def check_bypassing_writes(torch: Any, module: Any, program: Program, args: tuple, kwargs: dict | None,
                           held: frozenset[int]) -> tuple[tuple[str, Any, str, Any, Any], ...]:
    """Refuse a ``forward`` that changes a plain attribute of its module tree without ``nn.Module.__setattr__``
    (``object.__setattr__(self, "n", self.n + 1)``, ``self.__dict__["n"] = ...``) or deletes one (``del
    self.scale``). Why: the program holds the values of the export's one call and runs no Python; torch's export
    put the old values back, so compile saw no change and every compiled call ran compile's values, silently, where
    eager's calls followed them (``x * 1`` for ``x * 2``, ``x * 3``). The error names the attribute and its values. A
    tensor so set is returned by the program and set by each call as any tensor attribute (``Program.attr_outputs``).

    Plain values (and fixed ones, ``_fixed``: ``self.__dict__["cfg"] = {"b": 2, "a": 1}``, a dict rebuilt in
    another key order, was refused) so set where exporting ``forward`` again from them sets nothing more and gives
    this very program are taken, and returned (in ``guard.forward_sets``' form) for each call to set: a ``functools.cached_property``
    stores its value in ``__dict__`` at the first call, and every later call reads that value."""
    from .module_writes import MISSING

    returned = {(id(owner), key) for owner, key, _label in program.attr_outputs}
    kept = []
    for owner, key, name, before, after in _bypassing(torch, program):
        if (id(owner), key) in returned:
            continue
        if after is not MISSING and _fixed(torch, after) and (before is MISSING or _fixed(torch, before)):
            kept.append((name, owner, key, before, after))
            continue
        raise _bypass_error(name, key, before, after)
    if not kept:
        return ()
    try:
        other = _exported_from(module, args, kwargs, [(owner, key, after) for _n, owner, key, _b, after in kept])
    except Exception:  # noqa: BLE001 - no proof: refused as before
        other = None
    if other is None or _bypassing(torch, other) or not same_program(program, other, set(), held):
        name, _o, key, before, after = kept[0]
        raise _bypass_error(name, key, before, after)
    return tuple(kept)


def check_private_sets(torch: Any, module: Any, program: Program, args: tuple, kwargs: dict | None,
                       held: Callable[[], frozenset[int]]) -> tuple[tuple[str, Any, str, Any, Any], ...]:
    """Refuse a ``forward`` that sets a private attribute of its module tree (``self._h = self.w * 2`` behind ``if
    self._h is None``, ``self._n += 1``, ``self._c = x + self._c``) where, exported again from the value it leaves
    (a tensor as a zero-filled stand-in of its layout), it gives another program or sets it again to another plain
    value. Why: private names are no settings the guard watches nor attributes the compiled calls set (a library's
    ``_has_warned``), so each compiled call ran the export's call from the module as at compile, where eager's next
    call read the value this one left: a first-call cache returned ``x`` at every call where eager's second returned
    ``x + h``, a private counter multiplied by 1 for ever, silently. One from which ``forward`` runs the very program
    (a flag set once, a private tap no later call reads) is taken.
    ``held``: the module's tensor ids, computed only where ``forward`` set a private attribute (most modules: none).

    Returns, in ``fixed_sets``' form, the taken plain and fixed values (``self._seen = True``, ``self._shape =
    x.shape``) for each call to set as eager's leaves them (session 39b: the module kept compile's value where eager's
    first call changed it); a tensor so taken is not set (the program does not return it: docs/aten.md)."""
    from .module_writes import MISSING

    internal = module_writes.module_fields(torch)
    changed = []
    for owner, name, before, after in program.forward_values:
        if not name.startswith("_") or name.startswith("__") or name in internal or after is before or after is MISSING:
            continue
        if name == "_flat_weights" and isinstance(owner, torch.nn.RNNBase):   # (torch's own list of the weights,
            continue   # rebuilt by forward when export swapped them: a second export for every RNN, for nothing)
        if _fixed(torch, after) and (before is MISSING or _fixed(torch, before)):
            if before is not MISSING and same_value(before, after):
                continue
            changed.append((owner, name, after))
        elif _holds_tensor(torch, after):
            changed.append((owner, name, _stand_in(torch, after)))
    if not changed:
        return ()
    paths = {id(m): path for path, m in module.named_modules(remove_duplicate=False)}
    root = type(module).__name__

    def label(owner: Any, name: str) -> str:
        return f"{root}.{paths[id(owner)]}.{name}" if paths.get(id(owner)) else f"{root}.{name}"

    names = ", ".join(label(o, n) for o, n, _v in changed)
    try:
        other = _exported_from(module, args, kwargs, changed)
    except Exception as exc:  # noqa: BLE001 - no proof: refused
        raise AtenExecutorError(f"forward sets the private attribute(s) {names}, which a compiled call neither sets "
                                "nor follows; exporting it again from the values it leaves failed "
                                f"({str(exc).splitlines()[0]})") from None
    ids = {(id(o), n) for o, n, _v in changed}
    again = [(o, n, b, a) for o, n, b, a in other.forward_values if (id(o), n) in ids and a is not b
             and not (_fixed(torch, a) and _fixed(torch, b) and same_value(a, b)) and not _holds_tensor(torch, a)]
    if again:
        o, n, b, a = again[0]
        raise AtenExecutorError(f"forward changes the private attribute {label(o, n)} at every call ({_shown(b)} after "
                                f"one call, {value_text(a)} after the next): the program holds one call's values and a compiled "
                                "call sets no private attribute (keep such state in a buffer the program updates)")
    if not same_program(program, other, set(), held()):
        raise AtenExecutorError(f"forward sets the private attribute(s) {names}, and exported again from the values it "
                                "leaves, forward gives another program: a compiled call neither sets a private "
                                "attribute nor follows it, so every call after the first would differ from eager "
                                "(fill it before compile with one eager call, keep such state in a buffer, or give it "
                                "a public name, whose tensors and values the compiled calls set)")
    befores = {(id(o), n): b for o, n, b, _a in program.forward_values}
    return tuple((label(o, n), o, n, befores.get((id(o), n), MISSING), v) for o, n, v in changed
                 if not _holds_tensor(torch, v))   # (a tensor's stand-in, or a container of one: not set per call)


def _holds_tensor(torch: Any, value: Any) -> bool:
    """Whether ``value`` is a tensor or a list, tuple or dict holding one (``self._h = (n, t)``, ``[self.w * 2]``):
    what ``check_private_sets`` exports again from as a zero-filled stand-in. Why not ``tensor_value`` alone (tensors
    only): a private ``(x.shape[-1], torch.ones(4))`` cache was neither it nor a plain value, so never checked, and
    each compiled call ran the export's first-call path silently."""
    from torch.utils import _pytree as pytree

    return any(isinstance(t, torch.Tensor) for t in pytree.tree_leaves(value))


def _bypassing(torch: Any, program: Program) -> list[tuple[Any, str, str, Any, Any]]:
    """The ``call_changes`` of ``program`` that ``nn.Module.__setattr__`` did not make, a plain or fixed value
    (``_fixed``: a dict of numbers too) set to an equal one left out."""
    return [(owner, key, name, before, after) for owner, key, name, before, after in program.call_changes
            if (id(owner), key) not in program.forward_writes
            and not (_fixed(torch, before) and _fixed(torch, after)
                     and same_value(before, after))]


def _bypass_error(name: str, key: str, before: Any, after: Any) -> AtenExecutorError:
    from .module_writes import MISSING

    if after is MISSING:
        what = f"deletes {name} ({_shown(before)} at compile)"
    else:
        what = f"sets {name} without nn.Module.__setattr__ (object.__setattr__ or __dict__: {_shown(before)} at " \
               f"compile, {value_text(after)} after the export's call)"
    return AtenExecutorError(f"forward {what}: a compiled call runs no Python and holds the export's values, so it "
                             "would neither change it nor follow it as eager's calls do (set it with "
                             f"self.{key} = ..., keep such state in a buffer, or change it outside forward)")


def check_container_changes(program: Program) -> None:
    """Refuse a ``forward`` that changes plain values of a list or dict of its module in place
    (``self.steps.append(1)``, ``self.stats["n"] += 1``): eager's every call changes it, and reads it changed next
    time; the program runs no Python, so its calls never did, silently (``len(self.steps)`` read as compile's 1 where
    eager's second call read 2). The error names the attribute and what the export's call did to it. A change of
    tensors alone (LeViT's cache of a weight's gather, a feature tap) is left to eager (``module_containers.plain_change``) where
    the results do not follow it (``check_container_caches``)."""
    changes = [c for c in program.container_changes if module_containers.plain_change(c[1], c[2])]
    if not changes:
        return
    name, before, after, _obj = changes[0]
    if not isinstance(after, dict):
        what = f"from {len(before)} to {len(after)} items" if len(after) != len(before) else "its items"
    else:
        keys = sorted(map(repr, set(after) ^ set(before))) or sorted(
            repr(k) for k in after if k in before and after[k] is not before[k])
        what = f"key {', '.join(keys[:3])}"
    raise AtenExecutorError(f"forward changes {name} in place ({what} in the export's call): a compiled call runs no "
                            "Python, so it would not, where every eager call does (keep such state in a buffer, or "
                            "change it outside forward)")


def check_registry_changes(torch: Any, program: Program) -> None:
    """Refuse a ``forward`` that deletes, registers or replaces a parameter, buffer or submodule of its module tree
    (``del self.sub``, ``del self.b``, ``self.register_buffer("b", ...)``, ``self.p = nn.Parameter(...)``,
    ``self.sub = nn.Linear(...)``), naming it. Why: a compiled call runs no Python, so it would neither delete nor
    register it, where eager's next call reads the module as this one left it (``if hasattr(self, "sub")``: another
    path from then on); before, ``del self.sub`` compiled and computed the deleted submodule at every call, a buffer
    registered in ``forward`` compiled and ran the export's call, silently, and the module was left without the
    submodule or holding the export's ``FakeTensor``. A buffer replaced with ``self.t = value`` is ``fixed_sets``'
    business (taken where the program writes the new value into it). Likewise a forward hook or pre-hook it registers
    or removes on a module of the tree and leaves so (session 40b: ``self.sub.register_forward_hook(...)`` in
    ``forward`` compiled, left the export's hook on the module, and the first compiled call differed from eager's,
    which ran two)."""
    from .module_writes import MISSING

    kinds = dict(registries.REGISTRIES)
    for _m, store, _key, name, before, after in program.registry_changes:
        what = kinds.get(store, store)
        if store in registries.GRAD_FLAGS:
            of = "parameter" if store == "requires_grad" else "buffer"
            raise AtenExecutorError(f"forward sets requires_grad of {of} {name} from {before} to {after} while it "
                                    "runs: a compiled call runs no Python, so it would not, where eager's call leaves "
                                    "it so (set it outside forward)")
        if store == "_buffers" and before is not MISSING and after is not MISSING:
            continue   # (``self.t = value`` over a registered buffer: ``fixed_sets``)
        if store in registries.HOOK_FLAGS:
            continue   # (beside a hook dict's own change, named there)
        if "hook" in what:   # (keyed by the handle's id: the module is the name)
            owner = name.rpartition(".")[0]
            hook = getattr(after if after is not MISSING else before, "__qualname__", type(before).__name__)
            done = "removes" if after is MISSING else "registers" if before is MISSING else "replaces"
            raise AtenExecutorError(f"forward {done} a {what} of {owner} ({hook}) while it runs: export traced the "
                                    "hooks there during its call, where eager's next call runs the hooks this one "
                                    "left (one more, or one fewer, at every call); a compiled call runs no Python, so "
                                    "it would not; the module is left as it was at compile (register hooks outside "
                                    "forward, or remove them before it returns)")
        if after is MISSING:
            done = f"deletes {what} {name}"
        elif before is MISSING:
            done = f"registers a new {what} {name}"
        else:
            done = f"replaces {what} {name} with another {type(after).__name__}"
        raise AtenExecutorError(f"forward {done} while it runs: a compiled call runs no Python, so it would not, where "
                                "eager's next call reads the module as this one left it (another path, another "
                                "value); the module is left as it was at compile (register it in __init__, or "
                                "change it outside forward)")


#: the hook dicts of an ``nn.Module`` whose entries ``settle_hook_installs`` may keep (and the flags torch keeps beside)
_HOOK_STORES = frozenset({"_forward_pre_hooks", "_forward_hooks", *registries.HOOK_FLAGS})


def settle_hook_installs(torch: Any, module: Any, program: Program, again: Callable[[], Program]) -> Program:
    """``program``, or, where ``forward`` registers forward hooks once and for all (lazily, at its first call, marking
    the module so that later calls register none: transformers 5's output capturing for ``output_hidden_states=True`` /
    ``output_attentions=True``), the program exported again from the state that first call leaves (``again()``),
    with the hooks and the plain values it set kept on the module, as eager's first call leaves them.

    Why: ``check_registry_changes`` refused every hook ``forward`` registers, so any transformers model asked for
    its hidden states or attentions was refused at compile, though its hooks are installed once and then only read a
    context variable. Taken only where the second export registers no hook (or anything else) and is the very first
    program (``same_export``: the hooks ran in the export's call as they run in every later one); otherwise the
    module is put back and the first program's changes are refused as before."""
    from .module_writes import MISSING

    regs = program.registry_changes
    if not regs or any(store not in _HOOK_STORES or before is not MISSING for _m, store, _k, _n, before, _a in regs):
        return program
    plain = (bool, int, float, str, type(None))
    for owner, attribute, _label, before, after in program.call_changes:
        now = vars(owner).get(attribute, MISSING) if isinstance(owner, torch.nn.Module) else before
        if isinstance(after, plain) and now is not before and not (isinstance(now, plain) and now == before):
            return program   # (the module is no longer as that export found it: a ``program=`` exported before
            #                   an eager call installed the hooks; its own would be installed twice)
    put: list[tuple[Any, str, Any, Any]] = []   # (owner, attribute, value before; MISSING where none)
    done: list[tuple[dict, Any]] = []
    for m, store, key, _name, _before, after in regs:
        held = vars(m).get(store)
        if isinstance(held, dict) and key not in held:
            held[key] = after
            done.append((held, key))
    for owner, attribute, _label, before, after in program.call_changes:
        if isinstance(after, plain) and isinstance(owner, torch.nn.Module):
            put.append((owner, attribute, before, after))
            vars(owner)[attribute] = after
    try:
        other = again()
    except Exception:  # noqa: BLE001 - the second export failing leaves the first program's refusal
        other = None
    held_ids = {id(t) for t in module.parameters()} | {id(t) for t in module.buffers()}
    if other is not None and not other.registry_changes and same_program(program, other, set(),
                                                                         frozenset(held_ids)):
        return other
    for store_dict, key in done:
        store_dict.pop(key, None)
    for owner, attribute, before, _after in put:
        if before is MISSING:
            vars(owner).pop(attribute, None)
        else:
            vars(owner)[attribute] = before
    return program


#: ``random``'s state for the second export of ``take_unread_draws``: other numbers than any seed a test would pick
_OTHER_DRAWS_SEED = 0x6D656D706C616E


def take_unread_draws(program: Program, load: Callable[[], Program]) -> Program:
    """``program`` with its draws from ``random`` taken (``host_random`` emptied; each compiled call repeats them:
    ``Program.host_draws``) where Python never read them and exporting again under other draws (``load``, from
    ``random`` seeded elsewhere) gives the same program; else ``program`` as it is, for ``check_host_random`` to refuse.
    Why the second export: a tensor op reads a number in C (``x * random.random()``), unseen by the unread marks,
    and the number is then a constant of the program, other under other draws. Why take them at all: MusicGen's and
    VITS' layerdrop draw at every layer in eval too, and read the number only in training.

    ``load`` hands ``forward`` plain floats (``load_program(plain_draws=True)``), and the call's other effects
    (attributes set, containers changed, settings left) must match too: ``type(p) is float`` reads the stand-in's
    type with no method of its called, so ``if type(p) is float: return x * 2`` exported ``x`` twice under stand-ins
    and every compiled call returned ``x`` where eager's returned ``x * 2`` (session 41); under plain floats it takes
    eager's branch, another program, and is refused as a read."""
    import random

    if program.host_random != ("random",) or not program.host_draws:
        return program
    saved = random.getstate()
    try:
        random.seed(_OTHER_DRAWS_SEED)
        again = load()
    finally:
        random.setstate(saved)
    if (again.host_random != ("random",) or [c[:2] for c in again.host_draws] != [c[:2] for c in program.host_draws]
            or not same_program(program, again, set()) or _call_effects(program) != _call_effects(again)):
        return program
    from dataclasses import replace

    return replace(program, host_random=())


def _call_effects(program: Program) -> tuple[Any, ...]:
    """What the export's call did beside its program, by name: the attributes of the module tree it changed (any
    way) or set (``nn.Module.__setattr__``), the containers it changed in place, the registries and process settings
    it changed."""
    return (sorted(name for _o, _k, name, _b, _a in program.call_changes),
            sorted((id(owner), name) for owner, name, _b, _a in program.forward_values),
            sorted(name for name, _b, _a, _o in program.container_changes),
            sorted(name for _m, _s, _k, name, _b, _a in program.registry_changes),
            sorted(what for what, _b, _a in program.settings_left))


def check_host_random(program: Program) -> None:
    """Refuse a ``forward`` that draws from a host random generator in Python (``random.random()``, ``np.random``, a
    generator object the module holds, ``self.rng.random()``):
    the number drawn at the export is a constant of the program, every compiled call gave it again where each eager
    call draws a new one, silently (a branch on it took the export's side for ever). torch's own random ops
    (``torch.rand``, a train-mode dropout) are nodes of the program and draw at every call."""
    if program.host_random:
        raise AtenExecutorError(f"forward draws from {' and '.join(program.host_random)} in Python while it runs: "
                                "torch.export keeps the number drawn at the export as a constant, so every compiled "
                                "call would reuse it where each eager call draws anew (draw with torch's random ops, "
                                "torch.rand / torch.bernoulli, which the program runs at every call, or pass the "
                                "number in as an input)")


def check_process_settings(program: Program) -> None:
    """Refuse a ``forward`` that changes a process-wide torch setting and leaves it changed (``torch.set_default_dtype
    (torch.float64)``, ``torch.set_grad_enabled(False)`` outside a ``with``, a backend flag: ``torch.backends.cudnn.
    benchmark = True``, session 40b): eager's call leaves the caller's process
    so, a compiled call runs no Python and would not (and compile left the default dtype changed)."""
    if program.settings_left:   # (all of them: torch ties some together, TF32 in cuBLAS to the matmul precision)
        what = ", ".join(process_settings.setting_change(what, before, after) for what, before, after in program.settings_left)
        raise AtenExecutorError(f"forward changes {what} and leaves it so: eager's call leaves "
                                "the caller's process that way, a compiled call runs no Python and would not (use a "
                                "with block inside forward, torch.no_grad() / an explicit dtype, or set it outside "
                                "forward)")


def check_python_state(program: Program, module: Any = None, args: tuple = (), kwargs: dict | None = None) -> None:
    """Refuse a ``forward`` that changes Python state beside its module and leaves it so: a global (``global COUNTER;
    COUNTER += 1``, ``LOG.append(n)``), a closure's variable, a class attribute (``type(self).calls += 1``), a
    function's attribute or a field of a settings object the module holds (``self.st.n += 1``), where a plain value
    is among the change (``python_state.python_state``). Why: a compiled call runs no Python, so it would neither change it
    nor follow it, where each eager call does: every compiled call computed the export's value (``x * 1`` where eager's
    calls gave ``x * 2``, ``x * 3``), silently (session 41). The export's change is put back either way; a change of
    tensors alone in a container (a cache the program does not read) is not refused.

    Taken (given ``module`` and its example ``args`` / ``kwargs``): a change made once for good, where exported again from the values
    the export's call left, ``forward`` changes nothing more and gives this very program (``callform.same_export``): a
    warn-once set (``if msg not in _WARNED: _WARNED.add(msg); warnings.warn(msg)``), a first-call flag, a kernel
    imported lazily into a global (``global _fn; if _fn is None: _fn = load()``), memoised numbers. These were refused
    (round 41c), though every eager call after the first computes what the first did; the compiled calls compute it
    too, and the state stays as at compile."""
    if module is not None and _python_changes_settle(program, lambda: _exported_from(module, args, kwargs, [])):
        return
    for label, before, after, plain_one, _place in program.python_changes:
        if not plain_one:
            continue
        if type(before) is type(after) and type(before) is not tuple and hasattr(before, "clear"):   # (a container)
            shown = (value_text(before), value_text(after))
            what = (f"in place ({shown[0]} at compile, {shown[1]} after the export's call)"
                    if len(shown[0]) + len(shown[1]) < 120 else f"in place ({len(before)} items at compile, "
                    f"{len(after)} after the export's call)")
        elif label.startswith(python_state.ITERATOR_LABEL):   # (a position cannot be put back: round 62)
            raise AtenExecutorError(f"forward advances the iterator in{label.removeprefix(python_state.ITERATOR_LABEL)} "
                                    "(next() on it): torch.export ran forward once and keeps the value it took then, "
                                    "so every compiled call would reuse it where each eager call takes the next (and "
                                    "compile consumed one; an iterator cannot be put back): take the values outside "
                                    "forward and pass them in")
        elif label.endswith("(attributes made anew)"):
            made, gone = sorted(set(after) - set(before)), sorted(set(before) - set(after))
            label = label.removesuffix(" (attributes made anew)")
            what = "(" + "; ".join(f"{how}: {', '.join(names)}" for how, names in (("made", made), ("deleted", gone))
                                   if names) + ")"
        else:
            what = f"({_shown(before)} at compile, {_shown(after)} after the export's call)"
        raise AtenExecutorError(f"forward changes {label} {what}: a compiled call runs no Python, so it would neither "
                                "change it nor follow it as eager's calls do; it is left as it was at compile (keep "
                                "such state in a buffer of the module, pass it in as an input, or change it outside "
                                "forward)")


def check_hook_results(program: Program, module: Any = None, args: tuple = (), kwargs: dict | None = None) -> None:
    """Refuse a forward hook that changes a plain value of its own state and returns a value computed from it
    (``Program.hook_results``), where exporting ``forward`` again from the state the export's hook call left gives
    another program. Why: a compiled call runs no hook's Python, so the program holds what the hook returned at the
    export: ``n[0] += 1; return out * n[0]`` compiled with ``out * 1`` at every call where eager's second gave
    ``out * 2``, silently (round 62). Taken: the very program again (a hook counting its calls and returning
    ``out + 1``: the count is the documented one call at export, the result no function of it)."""
    if not program.hook_results:
        return
    if module is not None:
        import torch

        try:
            with hook_state.hook_state_kept(torch, module):   # (no eager call: the hook's count is not one up)
                other = load_program(module, args, kwargs)
            if same_program(program, other, set()):
                return
        except Exception:  # noqa: BLE001 - no proof: refused
            pass
    raise AtenExecutorError(hook_state.hook_refusal(program.hook_results[0]))


def _python_changes_settle(program: Program, again: Callable[[], Program]) -> bool:
    """Whether ``program``'s plain Python changes (``check_python_state``) are made once for good: with the values
    the export's call left put back, ``again()`` (the module exported anew) changes no more Python state and gives
    this very program. Not tried where a change made or deleted an attribute (its values are gone) or holds a
    tensor (the export's fake ones belong to its finished mode); the values before are put back either way."""
    import torch
    from torch.utils import _pytree as pytree

    changes = program.python_changes
    if not any(plain_one for _l, _b, _a, plain_one, _p in changes):
        return True
    for label, _before, after, _plain, _place in changes:
        if label.endswith("(attributes made anew)") or label.startswith(python_state.ITERATOR_LABEL) or any(isinstance(leaf, torch.Tensor)
                                                             for leaf in pytree.tree_leaves(after)):
            return False
    python_state.put_python_values(changes, after=True)
    try:
        other = again()
    except Exception:  # noqa: BLE001 - no proof: refused as before
        return False
    finally:
        python_state.put_python_values(changes, after=False)
    return (not any(plain_one for _l, _b, _a, plain_one, _p in other.python_changes)
            and same_program(program, other, set()))


def check_container_caches(torch: Any, module: Any, program: Program, args: tuple, kwargs: dict | None,
                           held: Callable[[], frozenset[int]]) -> None:
    """Refuse a ``forward`` that puts tensors into a list or dict of its module in place (``self.cache["h"] =
    self.w * 2``, public or private) where, exported again from what its call leaves there (each new tensor a
    zero-filled stand-in of its layout), ``forward`` computes other results than the export's call. Why: no compiled
    call changes the container (the program runs no Python; it stays as at compile), so each one is the export's
    call, where eager's next call reads the cache: ``if "h" not in self.cache: self.cache["h"] = self.w * 2; return
    x``, then ``x + self.cache["h"]``, returned ``x`` at every call where eager's second returned ``x + h``, silently.

    Taken: the very program again (a feature tap's ``self.feats.append(y)`` no call reads), or one that computes the
    same results (``check_fallback_computes_the_same``, on the export returning the tensors it put, against the
    second export whose stand-ins are keyed as the nodes that computed them): LeViT's ``attention_bias_cache``, a
    weight's gather read where the first call used the gather it computed. Runs only where ``forward`` changed a
    container in place (its plain changes refused before by ``check_container_changes``)."""
    from .hook_state import hook_state_kept

    changes = program.container_changes
    if not changes:
        return
    names = ", ".join(name for name, _b, _a, _o in changes)
    stand_ins = []
    contents = []
    for _name, before, after, obj in changes:
        if isinstance(after, set):   # (a set's tensors have no key to put back: a record no call reads back)
            continue
        now = dict(after) if isinstance(after, dict) else list(after)
        keys = now if isinstance(now, dict) else range(len(now))
        for k in keys:
            new = (k not in before) if isinstance(now, dict) else k >= len(before)
            if (new or not module_containers.same_item(now[k], before[k])) and tensor_attrs.tensor_value(torch, now[k]):
                now[k] = _stand_in(torch, now[k])
                stand_ins.append((obj, k, now[k]))
        contents.append((obj, now))
    try:
        other = _exported_with_contents(torch, module, args, kwargs, contents)
        if same_program(program, other, set(), held()):
            return
        with hook_state_kept(torch, module):   # (no eager call: a hook's counter is not one up)
            returning = load_program(module, args, kwargs, container_outputs=True)
    except Exception as exc:  # noqa: BLE001 - no proof: refused
        raise AtenExecutorError(f"forward changes {names} in place (tensors), which a compiled call does not; "
                                "exporting it again from what it leaves failed "
                                f"({str(exc).splitlines()[0]})") from None
    read = {id(t) for t in getattr(other.exported, "constants", {}).values()}   # (what the second export reads:
    only = {(id(obj), k) for obj, k, v in stand_ins if any(id(t) in read for t in _tensor_leaves(torch, v))}
    check_carried_state(torch, returning, only)   # ``cache["h"] = x * 2`` read; a tap beside it, not read, is no state)
    check_fallback_computes_the_same(torch, returning, (other, stand_ins), held())


def _exported_with_contents(torch: Any, module: Any, args: tuple, kwargs: dict | None,
                            contents: list[tuple[Any, Any]]) -> Program:
    """``module`` exported again with each container of ``contents`` holding the given items, each put back after
    (in place: the very objects), and what its hooks changed (``hook_state.hook_state_kept``)."""
    def put(obj: Any, items: Any) -> None:
        obj.clear()
        (obj.update if isinstance(obj, dict) else obj.extend)(items)

    kept = [(obj, obj.copy()) for obj, _items in contents]
    for obj, items in contents:
        put(obj, items)
    try:
        with hook_state.hook_state_kept(torch, module):
            return load_program(module, args, kwargs)
    finally:
        for obj, items in kept:
            put(obj, items)


def check_forward_sets(torch: Any, module: Any, program: Program, sets: tuple, args: tuple, kwargs: dict | None,
                       held: frozenset[int]) -> tuple[bool, tuple[Program, list[tuple[Any, str, Any]]] | None]:
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
    (refused as above).

    Returns (whether the calls set them, the fallback's second export and its stand-ins ``[(module, attribute,
    stand-in)]``, for ``check_fallback_computes_the_same``; None where there is no fallback or that export failed)."""
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
                and same_program(program, other, set(), held)):
            return True, None
        again = (other, tensors) if other is not None else None
        if not sets:
            return False, again
        _check_plain_sets(torch, module, program, sets, args, kwargs, held)
        return False, again
    _check_plain_sets(torch, module, program, sets, args, kwargs, held)
    return True, None


def fixed_sets(torch: Any, module: Any, program: Program) -> tuple[tuple[str, Any, str, Any, Any], ...]:
    """(name, module, attribute, value before, value after) of each public attribute of ``module``'s tree that
    ``forward`` set (through ``nn.Module.__setattr__``) to a value that is neither plain (``settings.plain``) nor a
    tensor the program returns (``Program.attr_outputs``), but fixed for the program (``_fixed``: a ``torch.Size``, a
    dtype, a device, a list, tuple or dict of such values and scalars: ``self.lin.seen = x.shape``); any other such
    value is refused, naming it. Why: one of them beside a tensor attribute (``self.taps = {...}``) made no attribute
    be set at all, and alone it was never set, where eager's calls set it. The fixed ones are
    checked as plain values are (``check_forward_sets``: exported again from them, the same program) and set by each
    call (a list or dict as a copy of its own, as eager makes a new one)."""
    returned = {(id(owner), key) for owner, key, _label in program.attr_outputs}
    out = []
    for name, owner, key, before, after in module_guard.public_forward_values(torch, module, program):
        if plain(after) or after is before or (id(owner), key) in returned:
            continue
        if isinstance(after, torch.Tensor):   # (a registered buffer)
            target = name.partition(".")[2]   # (the module's buffer now: ``before`` is the export's fake one)
            why = (_buffer_shared(torch, module, owner._buffers.get(key), target)
                   or _buffer_not_written(torch, program, target, after))
            if why is None:   # (the program writes the new value into the buffer: each call leaves eager's value)
                continue
            raise AtenExecutorError(f"forward replaces buffer {name} with a new tensor (self.{key} = ...): {why} "
                                    f"(update it in place: self.{key}.copy_(...), or make it a plain attribute)")
        if not _fixed(torch, after):
            raise AtenExecutorError(
                f"forward sets {name} to a {type(after).__name__} (neither a plain value, a torch.Size, dtype or "
                "device, nor a tensor or a list, tuple or dict of tensors): a compiled call runs no Python, so it "
                "could not set it as eager's call does (keep such state out of forward, or set a tensor or a plain "
                "value)")
        if before is module_writes.MISSING or not same_value(before, after):   # (an equal one set again: nothing)
            out.append((name, owner, key, before, after))
    return tuple(out)


def _buffer_shared(torch: Any, module: Any, buffer: Any, target: str) -> str | None:
    """Why the program's write into ``buffer`` (``_buffer_not_written``: a ``copy_`` into the module's very tensor)
    would change bytes eager's ``self.t = value`` leaves alone, or None: where another parameter or buffer of the tree
    shares its storage (``register_buffer("t", self.w.detach())``, one tensor under two names, a view of another
    buffer) or the buffer does not fill its storage alone (a view of a tensor the caller may hold, an ``expand``ed
    one, whose ``copy_`` writes one element several times). Why: eager rebinds ``t`` to a new tensor and the others
    keep their values; the ``copy_`` wrote into them too (``x + self.w`` doubled ``w`` at every call, silently)."""
    if not isinstance(buffer, torch.Tensor):
        return "it is no tensor before the call"
    storage = buffer.untyped_storage()
    if buffer.storage_offset() or storage.nbytes() != buffer.numel() * buffer.element_size():
        return ("it does not fill its storage alone (a view or an expanded tensor), and the program's copy into it "
                "would write bytes eager's new tensor leaves alone")
    ptr, names = storage.data_ptr(), []
    for other_name, t in [*module.named_parameters(remove_duplicate=False),
                          *module.named_buffers(remove_duplicate=False)]:
        if other_name != target and (t is buffer or (ptr and t.untyped_storage().data_ptr() == ptr)):
            names.append(f"{type(module).__name__}.{other_name}")
    if names:
        return (f"its bytes are also {', '.join(names)}'s (one tensor under several "
                "names, or views of one storage), which eager's new tensor leaves as they were and the program's copy "
                "into the buffer would change")
    return None


def _buffer_not_written(torch: Any, program: Program, target: str, after: Any) -> str | None:
    """Why the program does not leave buffer ``target`` (its name in the state dict) as eager's call that replaced it
    (``self.t = value``) leaves it, or None where it does: torch's export writes such a value into the buffer
    (``copy_`` into its placeholder) for the root module's buffers, and drops it for a submodule's. Taken where the
    last such write's value has the buffer's dtype and shape (``copy_`` would cast or broadcast it), requires no grad,
    and is a constant of the step: computed from no input of the call, no buffer the program writes (its own value
    included: the state would be carried in the buffer's bytes, not in a new tensor) and through no random op.
    Why: ``self.t = self.w.detach() * 2`` gives eager's every result, and was refused since session 38. The buffer
    stays the module's very tensor, its values eager's new one's."""
    from torch.export.graph_signature import InputKind

    ep = program.exported
    spec = next((s for s in ep.graph_signature.input_specs if s.kind == InputKind.BUFFER and s.target == target), None)
    placeholder = getattr(getattr(spec, "arg", None), "name", None)
    writes = [n for n in ep.graph.nodes if n.op == "call_function" and getattr(n.target, "_schema", None) is not None
              and n.target._schema.is_mutable and n.args and getattr(n.args[0], "name", None) == placeholder]
    write = writes[-1] if writes else None
    if write is None or str(write.target) != "aten.copy_.default":
        return ("the program neither writes the buffer back nor sets it, so each compiled call would run from its "
                "value at compile where eager's next call reads the new one")
    buffer, value = write.args[0].meta.get("val"), write.args[1].meta.get("val")
    if not isinstance(value, torch.Tensor) or not isinstance(buffer, torch.Tensor) or (
            value.dtype, tuple(value.shape)) != (buffer.dtype, tuple(buffer.shape)) or after.requires_grad:
        return ("the program writes it into the buffer's own tensor, which the new one's dtype, shape or "
                "requires_grad does not match")
    written = {getattr(n.args[0], "name", None) for n in ep.graph.nodes if n.op == "call_function"
               and getattr(n.target, "_schema", None) is not None and n.target._schema.is_mutable and n.args}
    why_of = {s.arg.name: "the call's inputs" for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT}
    why_of.update({s.arg.name: f"buffer {s.target!r}, which the program writes" for s in ep.graph_signature.input_specs
                   if s.kind == InputKind.BUFFER and s.arg.name in written})
    source = _carried(torch, [write.args[1]], why_of)
    if source is not None:
        return (f"its new value is computed from {source}: state carried between calls in a new tensor each call, "
                "which the program would keep in the buffer's own one")
    return None


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


def check_carried_state(torch: Any, program: Program, only: set[tuple[int, Any]] | None = None) -> None:
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
    another result than the call that filled it (``if self.h is None: self.h = self.w * 2; return x``).
    ``only``: the (id of the owner, key) of the ``attr_outputs`` checked (``check_container_caches``: its own)."""
    from torch.export.graph_signature import InputKind, OutputKind

    ep = program.exported
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    flat = list(out_node.args[0]) if isinstance(out_node.args[0], (list, tuple)) else [out_node.args[0]]
    user = [a for s, a in zip(ep.graph_signature.output_specs, flat) if s.kind == OutputKind.USER_OUTPUT]
    attr_spec = _children(ep.call_spec.out_spec)[1]
    counts = [c.num_leaves for c in _children(attr_spec)]
    leaves = user[len(user) - sum(counts):]
    written = {s.target for s in ep.graph_signature.output_specs if s.kind == OutputKind.BUFFER_MUTATION}
    labels = {(id(o), k): label for o, k, label in program.attr_outputs}
    befores = {id(t): labels[(id(_o), key)] for _o, key, _n, before, _a in program.call_changes
               for t in _tensor_leaves(torch, before) if (id(_o), key) in labels}
    why_of = {}
    for s in ep.graph_signature.input_specs:
        arg = getattr(s.arg, "name", None)
        if s.kind == InputKind.USER_INPUT:
            why_of[arg] = "the call's inputs"
        elif s.kind == InputKind.BUFFER and s.target in written:
            why_of[arg] = f"buffer {s.target!r}, which the program writes"
        elif s.kind == InputKind.CONSTANT_TENSOR and id(ep.constants.get(s.target)) in befores:
            why_of[arg] = f"{_HELD}{befores[id(ep.constants.get(s.target))]} before the call ({s.target!r})"
    held_by = {s.arg.name: ep.constants.get(s.target) for s in ep.graph_signature.input_specs
               if s.kind == InputKind.CONSTANT_TENSOR}
    before_of = {(id(o), key): _tensor_leaves(torch, before) for o, key, _n, before, _a in program.call_changes}
    start = 0
    for (owner, key, name), count in zip(program.attr_outputs, counts):
        own = before_of.get((id(owner), key), [])
        mine = leaves[start:start + count]
        start += count
        if only is not None and (id(owner), key) not in only:
            continue
        changed = [a for i, a in enumerate(mine) if not (
            i < len(own) and len(own) == len(mine) and held_by.get(_through_identities(torch, a)) is own[i])]
        why = _carried(torch, changed, why_of)
        if why is not None:
            why = why.replace(f"{_HELD}{name} ", "its own value ").replace(_HELD, "the value of ")
            raise AtenExecutorError(
                f"forward sets {name} to a tensor computed from {why}, and exported again from the state it leaves, "
                "forward gives another program: forward carries a tensor between calls through it, which the "
                "program (one call's, run from the module as at compile at every call) cannot follow (register it as "
                "a buffer and update it in place, or pass the state in and out of forward)")


def fallback_caches(torch: Any, program: Program, again: tuple[Program, list[tuple[Any, str, Any]]] | None
                    ) -> tuple[set[tuple[int, Any]] | None, tuple[int, ...]]:
    """Of the tensor attributes ``forward`` sets (``program.attr_outputs``) where the fallback is taken (``again``: the
    second export, from the state the call leaves, gave another program): the (id of the owner, attribute) of the
    caches (``only`` for ``check_carried_state`` and ``check_fallback_computes_the_same``), and the indices of the taps
    beside them, which each compiled call sets (``CompiledModule.attr_slots``). A cache is one the second export's
    call does not set again (filled once: ``if self.h is None``) or reads (a lifted constant of it: its stand-in); a
    tap is set again by every call and read by none (``self.tap = y``). Why: a tap beside a first-call cache was
    named by the refusal (as carrying state from the call's inputs, which it does not) where the cache is the reason,
    and beside a cache that computes the same it was never set (eager's ``m.tap`` is the call's value). Where the
    second export failed (``again`` None), or no attribute is a cache (another program for another reason): all are
    checked, none set (as before)."""
    if again is None:
        return None, ()
    other, stand_ins = again
    read = {id(t) for t in getattr(other.exported, "constants", {}).values()}
    values = {(id(o), k): v for o, k, v in stand_ins}
    set_again = {(id(o), k) for o, k, _label in other.attr_outputs}
    caches, taps = set(), []
    for i, (owner, key, _label) in enumerate(program.attr_outputs):
        mine = (id(owner), key)
        if mine not in set_again or any(id(t) in read for t in _tensor_leaves(torch, values.get(mine))):
            caches.add(mine)
        else:
            taps.append(i)
    if not caches:
        return None, ()
    return caches, tuple(taps)


def check_fallback_computes_the_same(torch: Any, program: Program,
                                     again: tuple[Program, list[tuple[Any, str, Any]]] | None,
                                     held: frozenset[int], only: set[tuple[int, Any]] | None = None) -> None:
    """Refuse the fallback (no call sets the tensor attributes ``forward`` sets: exported again from the state a call
    leaves, ``again``, ``forward`` gives another program) where that other program computes other results than the
    export's once it reads the values the export's call left: ``if self.h is None: self.h = self.w * 2; return x``,
    then ``return x + self.h``. Why: in the fallback each compiled call is the export's call from the module as at
    compile (``x``), where eager's second call reads the cache (``x + h``): wrong from the second call, silently, though
    ``h`` carries no state (``check_carried_state`` takes it: a value of the weights alone).

    The proof, on the two graphs as expressions: each node's key is its op and its arguments' keys, a placeholder's
    the input it names (a user input by position, a parameter or buffer by name, a constant as the module's very
    tensor or, made in ``forward``, by its bits), and the constant that holds a stand-in of a value the export's call
    set is keyed as the export's node that computed that value. The fallback is eager's where the forward outputs
    (and their structure), the state writes and the values the other program sets again all have equal keys:
    wav2vec2-conformer's rotary cache, read where the export's call used the table it computed. A program with an
    in-place op is not compared (the order of writes and reads is not in the keys): refused. ``again`` None (the
    second export failed): nothing to compare, the fallback as before. ``only``: the caches the error names
    (``fallback_caches``), all where None."""
    if again is None:
        return
    other, stand_ins = again
    leaves1 = _attribute_leaves(torch, program)
    intern: dict[Any, int] = {}
    keys1 = _expression_keys(torch, program.exported, {}, intern, held)
    values = {(id(owner), key): value for owner, key, value in stand_ins}
    subst = {}
    for (owner, key, _label), nodes in zip(program.attr_outputs, leaves1[1]):
        for t, node in zip(_tensor_leaves(torch, values.get((id(owner), key))), nodes):
            subst[id(t)] = keys1.get(node, -1)
    keys2 = _expression_keys(torch, other.exported, subst, intern, held)
    names = ", ".join(label for o, k, label in program.attr_outputs if only is None or (id(o), k) in only)
    why = None
    if keys1.get(_MUTATES) or keys2.get(_MUTATES):
        why = "it writes a tensor in place (the comparison does not follow the order of writes and reads)"
    else:
        leaves2 = _attribute_leaves(torch, other)
        mine = {(id(o), k): ns for (o, k, _l), ns in zip(program.attr_outputs, leaves1[1])}

        def keyed(keys: dict, leaf: Any) -> Any:
            return keys.get(leaf, -1) if isinstance(leaf, torch.fx.Node) else ("value", repr(leaf))

        if leaves1[0] != leaves2[0] or [keyed(keys1, a) for a in leaves1[2]] != [keyed(keys2, a) for a in leaves2[2]]:
            why = "its output differs"
        elif leaves1[3] != leaves2[3] or [keyed(keys1, a) for a in leaves1[4]] != [keyed(keys2, a) for a in leaves2[4]]:
            why = "its state updates differ"
        else:
            for (o, k, label), nodes in zip(other.attr_outputs, leaves2[1]):
                if [keyed(keys2, a) for a in nodes] != [keyed(keys1, a) for a in mine.get((id(o), k), ())]:
                    why = f"it sets {label} to another value"
                    break
    if why is not None:
        raise AtenExecutorError(
            f"forward sets {names} at the export's call, and exported again from the state it leaves (reading it), "
            f"forward computes other results than the export's call: {why}. The program is the export's call from the "
            "module as at compile, where eager's next call reads what this one left (a cache filled at the first call "
            "and read by a later path): compile after one eager call (the cache filled), or compute it in every call")


#: the key under which ``_expression_keys`` counts the in-place ops of a graph
_MUTATES = "\0mutates"


def _attribute_leaves(torch: Any, program: Program) -> tuple[Any, list[list[Any]], list[Any], list[str], list[Any]]:
    """Of ``program``'s export: the structure of ``forward``'s own output, the output nodes of each value of
    ``program.attr_outputs`` (in its order), ``forward``'s output leaves, and the kinds and targets of its other outputs
    (state updates) with their nodes."""
    from torch.export.graph_signature import OutputKind

    ep = program.exported
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    flat = list(out_node.args[0]) if isinstance(out_node.args[0], (list, tuple)) else [out_node.args[0]]
    specs = ep.graph_signature.output_specs
    user = [a for s, a in zip(specs, flat) if s.kind == OutputKind.USER_OUTPUT]
    state = [f"{s.kind}:{s.target}" for s in specs if s.kind != OutputKind.USER_OUTPUT]
    state_nodes = [a for s, a in zip(specs, flat) if s.kind != OutputKind.USER_OUTPUT]
    spec = ep.call_spec.out_spec
    if not program.attr_outputs:
        return spec, [], user, state, state_nodes
    own, attr_spec = _children(spec)
    counts = [c.num_leaves for c in _children(attr_spec)]
    start = len(user) - sum(counts)
    per = []
    for count in counts:
        per.append(user[start:start + count])
        start += count
    return own, per, user[:len(user) - sum(counts)], state, state_nodes


def _expression_keys(torch: Any, ep: Any, subst: dict[int, int], intern: dict[Any, int],
                     held: frozenset[int]) -> dict[Any, Any]:
    """{node: its key} of ``ep``'s graph (``check_fallback_computes_the_same``), keys interned in ``intern`` (shared by
    the two graphs compared, so equal expressions get one int); ``subst``: {id of a constant tensor: the key it
    stands for}. Under ``_MUTATES``, whether some node writes an argument in place."""
    from torch.export.graph_signature import InputKind

    from .callform import _graph_entries

    specs = {getattr(s.arg, "name", None): s for s in ep.graph_signature.input_specs}
    users = [s.arg.name for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    keys: dict[Any, Any] = {}
    # in-place writes, in graph order: each node's storage root (a view's, an in-place op's result: its argument's)
    # and the interned chain of the writes each root has seen so far, which every later read of it carries
    root: dict[Any, Any] = {}
    writes: dict[Any, int] = {}

    def seen(node: Any) -> int:
        return writes.get(root.get(node, node), 0)

    def frozen(value: Any) -> Any:
        if isinstance(value, torch.fx.Node):
            return ("node", keys.get(value, -1), seen(value))
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, *map(frozen, value))
        if isinstance(value, dict):
            return ("dict", *((k, frozen(v)) for k, v in value.items()))
        if isinstance(value, torch.Tensor):
            return ("tensor", id(value))
        return (type(value).__name__, repr(value))

    def constant(t: Any) -> Any:
        if id(t) in subst:
            return subst[id(t)]
        if not isinstance(t, torch.Tensor) or id(t) in held:
            return ("held", id(t))
        c = t.detach().cpu().contiguous()
        return ("bits", str(c.dtype), tuple(c.shape), c.view(-1).view(torch.uint8).numpy().tobytes()
                if c.numel() and not c.is_complex() else repr(c.tolist()))

    for n in ep.graph.nodes:
        if n.op == "placeholder":
            s = specs.get(n.name)
            kind = getattr(s, "kind", None)
            if kind == InputKind.USER_INPUT:
                key = ("input", users.index(n.name))
            elif kind == InputKind.CONSTANT_TENSOR:
                key = constant(ep.constants.get(s.target))
            else:
                key = ("state", str(kind), getattr(s, "target", n.name))
        elif n.op == "get_attr":
            obj: Any = ep.graph_module
            for part in str(n.target).split("."):
                obj = getattr(obj, part, None)
            key = ("attr", frozen(_graph_entries(obj, set(), 1)) if isinstance(obj, torch.fx.GraphModule)
                   else constant(obj))
        elif _identity(torch, n):   # (``t.to(x.dtype)`` of a constant: torchvision's ``AnchorGenerator``)
            key = keys.get(n.args[0], -1)
            root[n] = root.get(n.args[0], n.args[0])
        elif n.op in ("call_function", "call_method", "call_module"):
            key = (n.op, str(n.target), frozen(tuple(n.args)), frozen(dict(n.kwargs)))
            _track_writes(torch, n, intern.setdefault(key, len(intern)), root, writes, intern, keys)
        else:
            continue
        keys[n] = key if isinstance(key, int) else intern.setdefault(key, len(intern))
    for n in [n for n in keys if isinstance(n, torch.fx.Node) and seen(n)]:   # (a value as the last write left it)
        keys[n] = intern.setdefault(("final", keys[n], seen(n)), len(intern))
    return keys


def _track_writes(torch: Any, n: Any, key: int, root: dict, writes: dict, intern: dict, keys: dict) -> None:
    """Record call ``n`` (interned ``key``) in ``_expression_keys``' write chains: its result's storage root (an
    argument's, where its schema returns an alias: a view, an in-place op's ``self``; a ``getitem``'s tuple's) and,
    where it writes arguments in place (``clamp_``, ``copy_``, an ``out=``), a new link in their roots' chains. Why:
    the comparison refused every program with an in-place op, so torchvision's RetinaNet head (box decoding writes in
    place), whose anchor cache computes the same, was refused from session 39 on; an in-place op whose writes the
    schema does not name is still counted under ``_MUTATES`` (refused)."""
    import operator

    args = [a for a in n.args if isinstance(a, torch.fx.Node)]
    schema = getattr(n.target, "_schema", None)
    if n.target is operator.getitem and args:
        root[n] = root.get(args[0], args[0])
    if schema is None:
        return
    if any(r.alias_info is not None for r in schema.returns) and n.args and isinstance(n.args[0], torch.fx.Node):
        root[n] = root.get(n.args[0], n.args[0])
    if not schema.is_mutable:
        return
    written = []
    for i, a in enumerate(schema.arguments):
        if a.alias_info is not None and a.alias_info.is_write:
            value = n.args[i] if i < len(n.args) and not a.kwarg_only else n.kwargs.get(a.name)
            written += _nodes(torch, value)
    if not written:
        keys[_MUTATES] = True
    for w in dict.fromkeys(root.get(w, w) for w in written):
        writes[w] = intern.setdefault(("written", writes.get(w, 0), key), len(intern))


#: the start of ``check_carried_state``'s reason for an attribute's value before the call, the attribute's name after
#: it: "its own value" where that attribute is the one refused, else "the value of" the other one (``self.a, self.b =
#: self.b, self.a``: ``a`` carries ``b``'s value, and naming ``a``'s own was wrong)
_HELD = "\0held:"


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
    while _identity(torch, a):
        a = a.args[0]
    return a.name if isinstance(a, torch.fx.Node) and a.op == "placeholder" else None


def _identity(torch: Any, a: Any) -> bool:
    """Whether node ``a`` returns its first argument itself (``alias``, ``detach``, a ``.to`` of its own dtype and
    device without ``copy=True``)."""
    if not (isinstance(a, torch.fx.Node) and a.op == "call_function" and a.args and isinstance(a.args[0], torch.fx.Node)):
        return False
    name = str(a.target)
    src, val = a.args[0].meta.get("val"), a.meta.get("val")
    same = (isinstance(src, torch.Tensor) and isinstance(val, torch.Tensor) and src.dtype == val.dtype
            and src.device == val.device and _arg(a, "copy") is not True)
    return name in ("aten.alias.default", "aten.detach.default") or (name.startswith("aten.to.") and same)


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
                                f"after one call, {value_text(after)} after the next): the program holds one call's values and "
                                "cannot follow it (keep such state in a buffer the program updates, or compile for "
                                "each value)")
    if not same_program(program, other, set(), held):
        name, _o, _a, before, after = sets[0]
        raise AtenExecutorError(f"forward sets {name} from {_shown(before)} to {value_text(after)}, and from {value_text(after)} it runs "
                                "another program: every call after the first would differ from eager (set it to "
                                f"{value_text(after)} before compile, or keep such state in a buffer)")


def _exported_from(module: Any, args: tuple, kwargs: dict | None, values: list[tuple[Any, str, Any]]) -> Program:
    """``module`` exported again with each (module, attribute, value) of ``values`` set; the attributes put back
    after, as they were (``MISSING``: none), and what its hooks changed (``hook_state.hook_state_kept``)."""
    import torch

    from .module_writes import MISSING, held_before

    def put(items: list[tuple[Any, str, Any]]) -> None:
        for owner, name, value in items:
            if value is MISSING:
                vars(owner).pop(name, None)
            else:
                setattr(owner, name, value)

    now = [(owner, name, held_before(owner, name)) for owner, name, _v in values]
    put(values)
    try:
        with hook_state.hook_state_kept(torch, module):   # (no eager call: a hook's counter is not one up)
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
    from .module_writes import MISSING

    return "unset" if value is MISSING else value_text(value)
