"""Round 67: ``torch.unique``'s counts and inverse indices recorded with the wrong dtype are refused, not planned.

torch 2.11's fake ``aten._unique2`` (the GPU machine's torch) records the counts and inverse indices with the input's
dtype: a float32 ``x`` gave float32 counts where the kernel writes int64, and every later node's dtype was derived
from it. memplan planned 4 bytes an element where the kernel writes 8 (``tests/test_torch_round50.py``'s unique
case on 2.11). torch 2.14 records int64, so these tests plant 2.11's record on 2.14's program to hold the rule in CI.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch.unique_meta import check_unique_index_metas  # noqa: E402


class _Counts(torch.nn.Module):
    def forward(self, x):
        u, c = torch.unique(x, return_counts=True)
        torch._check(u.shape[0] == 3)
        return u * 1, c * 1


class _Inverse(torch.nn.Module):
    def forward(self, x):
        u, inv = torch.unique(x, return_inverse=True)
        return inv + 1


def _exported(m):
    return torch.export.export(m, (torch.tensor([1.0, 2, 2, 3]),))


def _plant(ep, k, dtype):
    """Result ``k`` of the unique op recorded as ``dtype`` (float32: 2.11's record; int64: 2.14's)."""
    node = next(n for n in ep.graph.nodes if n.op == "call_function" and "unique" in str(n.target))
    val = list(node.meta["val"])
    with val[k].fake_mode:
        val[k] = torch.empty_strided(tuple(val[k].shape), tuple(val[k].stride()), dtype=dtype)
    node.meta["val"] = tuple(val)
    return node


def _as_recorded_right(ep):
    """The program as a torch with a right fake unique records it (this one may be 2.11's)."""
    for k in (1, 2):
        _plant(ep, k, torch.int64)
    return ep


@pytest.mark.parametrize("module,k,what", [(_Counts, 2, "counts"), (_Inverse, 1, "inverse indices")])
def test_an_index_result_recorded_as_float_is_refused_naming_the_node(module, k, what):
    ep = _as_recorded_right(_exported(module()))
    check_unique_index_metas(torch, ep)
    node = _plant(ep, k, torch.float32)
    with pytest.raises(GraphError, match=rf"node '{node.name}' .*recorded its {what} \(result {k}\) as float32 "
                                         r"where the kernel writes int64.*torch\.unique on an int64 tensor"):
        check_unique_index_metas(torch, ep)
    with pytest.raises(GraphError, match="recorded its"):
        memplan.from_torch(ep)


def test_an_unread_empty_result_of_another_dtype_is_not_refused():
    """``return_counts`` alone: the inverse indices are an empty result no node reads; its dtype sizes nothing."""
    ep = _as_recorded_right(_exported(_Counts()))
    _plant(ep, 1, torch.float32)
    check_unique_index_metas(torch, ep)
    memplan.plan(memplan.from_torch(ep))
