"""Round 29: the runtime's tools (CPU-side)."""

import pytest


@pytest.mark.parametrize("name, batch", [("8b", 1), ("1b", 16)])
def test_launch_comparison_names_a_dying_output_under_a_live_one_the_same(name, batch):
    """Split over 5 devices, the final add+norm group's plan puts the residual it writes (read by nobody
    outside the group) at the address of ``fa``, the normed output the same launch writes after it; the
    one-GPU plan puts them apart. The launches are the same (the later operand is what readers see), but
    the tool named the dying write ``fa`` in one table and ``(unread)`` in the other and reported a
    difference that was none."""
    from runtime.tools.compare_launches import compare_plans, one_and_split

    _cfg, g, single, split, multi = one_and_split(name, batch, 5, "runtime")
    c = compare_plans(g, single, split.graph, multi)
    assert c.same, c.differing[:2]
    last = [r for r in c.b.rows if r.node == "out_norm_w"][-1]
    assert [w[0] for w in last.writes] == ["(unread)", "fa"]
