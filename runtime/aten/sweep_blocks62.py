"""Round 62's plain-PyTorch modules for ``runtime.aten.sweep``: hostile Python around ``forward`` that compile must
take and replay as eager does, call after call: state read (never changed) deep inside containers, tuples and
cycles of the module's attributes; a forward hook that counts its calls and returns its output as given (the
documented one call at export); a hook object reading nested settings; bounded ``functools.lru_cache`` helpers of
plain values that eager filled before compile (keyed by the module, returning a list); a layer built lazily by
eager's first call (``if self.proj is None``, ``nn.LazyLinear``); a function held as an attribute whose closure holds
a setting; generators and ``itertools`` used inside ``forward``.

Why: round 62 made each of these watches stricter (containers at any depth, hooks' state, globals' objects and
iterators, classes swapped): the sweep checks that what must compile still does, bitwise, on models nobody changed
for it. The stateful ones that must be refused are tests (``tests/test_aten_round62.py``): the sweep calls eager
before compiling and compares with those calls. Each entry is ``(name, make, inputs)`` as ``sweep_blocks.BLOCKS``'.
"""

from __future__ import annotations

import functools
import itertools

import torch
from torch import nn

from .sweep_blocks import rnd, tup


class DeepConfigRead(nn.Module):
    """Settings read from containers five levels down, through a tuple, a ring of lists shared twice and a chain of
    200 nested lists: all read, none changed. (A list holding itself is refused at compile: torch's export recurses
    on it.)"""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.cfg = {"scale": [[[[0.5]]]], "shift": ({"b": [1.5]},)}
        inner = [2.0]
        ring: list = [inner, [inner]]
        chain: list = [0.25]
        for _ in range(200):
            chain = [chain]
        self.ring = ring
        self.chain = chain

    def forward(self, x):
        c = self.chain
        while isinstance(c[0], list):
            c = c[0]
        y = self.lin(x) * self.cfg["scale"][0][0][0][0] + self.cfg["shift"][0]["b"][0]
        return y * self.ring[1][0][0] + c[0]


def _passes_through(counts: list):
    def hook(mod, args, out):
        counts[0][0] += 1   # (a count the program does not follow: the documented one call at export)
        return out
    return hook


class CountingHookAsGiven(nn.Module):
    """A forward hook counting its calls in a list of lists and returning the very output it was given."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self._counts = [[0]]
        self.lin.register_forward_hook(_passes_through(self._counts))

    def forward(self, x):
        return self.lin(x).relu() * 2


class _Steer:
    """A hook object reading nested settings (never changing them): a steering vector's scale per layer."""

    def __init__(self):
        self.cfg = {"layers": {"lin": {"scale": [0.5, 0.25]}}}

    def __call__(self, mod, args, out):
        s = self.cfg["layers"]["lin"]["scale"]
        return out * s[0] + s[1]


class SteeringHookObject(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.lin.register_forward_hook(_Steer())

    def forward(self, x):
        return self.lin(x).tanh()


class CachedSplitMethod(nn.Module):
    """A bounded ``lru_cache`` on a method (keyed by the module) returning split sizes; eager's first call fills it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - the pattern under test
    def split(self, n):
        return (n // 4, n - n // 4)

    def forward(self, x):
        y = self.lin(x)
        a, b = y.split(self.split(y.shape[-1]), -1)
        return torch.cat([a.sigmoid(), b * 2], -1)


@functools.lru_cache(maxsize=8)
def _bands(n: int) -> list:
    return [n // 2, n // 4, n - n // 2 - n // 4]


class CachedBandList(nn.Module):
    """A bounded ``lru_cache`` helper returning a list of ints, filled by eager's first call."""

    def forward(self, x):
        parts = x.split(_bands(x.shape[-1]), -1)
        return torch.cat([p * (i + 1) for i, p in enumerate(parts)], -1)


class LazyProjection(nn.Module):
    """``if self.proj is None: self.proj = nn.Linear(...)``: built by eager's first call (the sweep's), then
    compiled as the module it left. Built on the input's device and in its dtype: the sweep moves the block before
    that call, and a layer built on the CPU failed eager's call on the GPU (SKIP-EAGER, round 64)."""

    def __init__(self):
        super().__init__()
        self.proj = None

    def forward(self, x):
        if self.proj is None:
            self.proj = nn.Linear(x.shape[-1], 6, device=x.device, dtype=x.dtype)
        return self.proj(x).relu()


class LazyLinearBuilt(nn.Module):
    """``nn.LazyLinear`` materialized by eager's first call."""

    def __init__(self):
        super().__init__()
        self.a = nn.LazyLinear(6)
        self.b = nn.Linear(6, 4)

    def forward(self, x):
        return self.b(torch.nn.functional.gelu(self.a(x)))


def _scaler(k: float):
    table = {"k": [k]}

    def scale(t):
        return t * table["k"][0]
    return scale


class HeldClosure(nn.Module):
    """A function held as an attribute whose closure holds a setting in a nested container (read only)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.scale = _scaler(0.75)

    def forward(self, x):
        return self.scale(self.lin(x))


class GeneratorsInForward(nn.Module):
    """A generator function and ``itertools`` used inside ``forward`` (made and used up within the call)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        def stages(h):
            for layer in self.layers:
                h = layer(h).relu()
                yield h

        outs = list(stages(x))
        acc = list(itertools.accumulate(outs, lambda a, b: a + b))
        pairs = [a * b for a, b in itertools.pairwise(outs)]
        return acc[-1], sum(pairs)


BLOCKS62 = [
    ("deep_config_read", DeepConfigRead, tup(rnd(2, 8))),
    ("counting_hook_as_given", CountingHookAsGiven, tup(rnd(2, 8))),
    ("steering_hook_object", SteeringHookObject, tup(rnd(2, 8))),
    ("cached_split_method", CachedSplitMethod, tup(rnd(2, 8))),
    ("cached_band_list", CachedBandList, tup(rnd(2, 8))),
    ("lazy_projection", LazyProjection, tup(rnd(2, 8))),
    ("lazy_linear_built", LazyLinearBuilt, tup(rnd(2, 8))),
    ("held_closure", HeldClosure, tup(rnd(2, 8))),
    ("generators_in_forward", GeneratorsInForward, tup(rnd(2, 8))),
]
