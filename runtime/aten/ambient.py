"""The caller's process-global torch state that a call of a compiled program meets, and what the executor does
with it.

Why a module of its own: eager's ``forward`` reads this state at every call, the program was built under the state
of its compile. Each piece is either followed or refused, never run silently under the old one:

- the default dtype (``torch.set_default_dtype``): export pins no dtype a node takes from it (``torch.zeros(3)``
  is ``aten.zeros.default([3], device=cpu)``; ``int_tensor * 0.5``, ``int_tensor / 2``, ``torch.sqrt(int_tensor)``
  promote to it; a ``torch.tensor(1.5)`` made in ``forward`` is a float32 constant of the program; what
  ``forward`` computes from ``torch.get_default_dtype()`` is a plain dtype in it). Such a node makes float32 where
  eager under float64 makes float64, so a program holding one is refused under another default
  (``default_dtype_nodes`` names them, found at the first such call); every other program runs, its dtypes
  being its inputs' and weights' alone, as eager's are.
- the backend flags (``backend_flags``: TF32, cuDNN, reduced-precision reductions, deterministic algorithms,
  attention backends): the executor's kernels read them at every run as eager's do, but lowering reads some once
  (``exact._cudnn_conv`` passes cuDNN's ``benchmark`` / ``deterministic`` / ``allow_tf32``; layout probes run
  kernels) and a captured CUDA graph replays the kernels chosen at capture. A change since the build is followed
  by building the executor again (``CompiledModule``); a bare ``Executor`` refuses the call.
- grad mode and inference mode: a call runs under ``no_grad`` whatever the caller's mode (inference only), and its
  outputs are made in the caller's mode, as eager's. Where ``forward`` read the mode itself while it was exported
  (``torch.is_grad_enabled()``, ``torch.is_inference_mode_enabled()``, ``torch.is_autocast_enabled()``: the branch
  it took is fixed in the program), a call under which the read gives another value is refused, naming it
  (``mode_reads_changed``).
"""

from __future__ import annotations

from .backend_flags import (  # noqa: F401
    _FLAGS,
    _FP32_LEGACY,
    _FP32_PRECISIONS,
    _LEGACY_TF32,
    _SDP_SETTERS,
    FP32_PRECISION,
    MIXED,
    _getters,
    _put_fp32_precisions,
    _set_flag,
    _tolerant,
    backend_flags,
    changed_flag,
    flag_names,
    fp32_precisions,
)
from .cache_adopt import (  # noqa: F401
    CACHE_NOT_ADOPTED,
    _is_adoptable,
    _pairs,
    _path_of,
    adopt_cache,
    check_adoptable,
    cross_flags_refusal,
    returned_caches,
)
from .cache_args import (  # noqa: F401
    _held,
    _is_dynamic_cache,
    cache_refusal,
    call_caches,
    check_cache_layers,
    check_unwatched_caches,
    dense_cache_examples,
)
from .cache_windows import (  # noqa: F401
    put_window_counts,
    set_window_counts,
    unwatched_window_refusal,
    window_counts,
    window_inputs,
    window_mismatch,
    window_refusal,
)
from .call_args import (  # noqa: F401
    _argument_names,
    _same_leaf,
    _spec_text,
    input_changes,
    input_structure,
    tensor_meta_changes,
    tensor_metas,
)
from .call_state import CallState, _own, _public_state, _state_changes, watch_call_state  # noqa: F401
from .default_dtype import (  # noqa: F401
    _DEFAULTS,
    _DTYPE_READS,
    _MADE_IN_FORWARD,
    Ambient,
    _call_nodes,
    _fake_mode,
    _follows_default,
    _made_in_forward,
    _result_dtypes,
    _writes,
    default_dtype_nodes,
    record,
    watch_default_dtype_reads,
)
from .held_iterators import (  # noqa: F401
    _ITERATORS_PER_CONTAINER,
    _position_part,
    advanced_iterators,
    held_iterators,
    iterator_position,
)
from .hook_state import _KEPT_CONTAINERS, _filled, _forward_hooks, _has_state, _hook_places, _kept, hook_state_kept  # noqa: F401
from .host_random import (  # noqa: F401
    _DRAWS,
    _REPEATABLE,
    _STAND_IN,
    _STAND_IN_OWN,
    _UNREAD,
    HostDraws,
    _generator_access,
    _held_values,
    _same_random_state,
    _stand_in,
    _stand_in_type,
    draws_account_for,
    host_random_states,
    kept_draws,
    repeat_draws,
    restore_host_random,
    watch_host_draws,
)
from .layout_reads import (  # noqa: F401
    _LAYOUT_READS,
    _OWN_PACKAGES,
    _TORCH_PUBLIC,
    LAYOUT_GETTERS,
    LAYOUT_IDENTITIES,
    _identity_reader,
    _kept_by_layout,
    _layout_watched,
    _LayoutReads,
    _leaves_hook,
    _module_tensor,
    _note_identity,
    watch_layout_reads,
)
from .lazy_defaults import _dynamo_handlers, dynamo_handlers_built, forget_dynamo_handlers, settle_lazy_defaults  # noqa: F401
from .mode_reads import _MODE_READS, MODE_GETTERS, _mode_watched, mode_reads_changed, watch_mode_reads  # noqa: F401
from .module_containers import (  # noqa: F401
    _CONTAINERS,
    _is_container,
    _same_item,
    _set_key,
    _snapshot,
    _unchanged,
    container_snapshots,
    container_tensors,
    plain_change,
    undo_container_changes,
)
from .module_writes import _MODULE_WRITES, MISSING, ModuleWrites, held_before, module_fields, watch_module_writes  # noqa: F401
from .object_reads import _patched_classes, _read_watch, _reading, _writes_lock, watch_object_reads  # noqa: F401
from .process_settings import (  # noqa: F401
    _LABELLED_FLAGS,
    DEFAULT_DEVICE,
    _cpu_rows,
    _default_device,
    _settings_table,
    process_settings,
    restore_process_settings,
    setting_change,
)
from .python_state import (  # noqa: F401
    _NOT_USERS,
    PythonPlace,
    _code_names,
    _functions,
    _missing_ok,
    _users,
    _watched_value,
    put_python_values,
    python_state,
    undo_python_changes,
)
from .registries import (  # noqa: F401
    _GRADS,
    GRAD_FLAGS,
    HOOK_FLAGS,
    REGISTRIES,
    _grads,
    registry_changes,
    registry_snapshots,
    restore_registries,
)
from .tensor_attrs import _version, restore_tensor_attributes, tensor_attribute_values, tensor_value  # noqa: F401
from .torch_reads import _OWN_CODE, _dynamo_generated, _MethodPatch, _reader, _recording, _SharedPatch  # noqa: F401
