"""The address binding and issue order every executor shares (``runtime.binding``, ``runtime.step``).

- places: an arena tensor and each of its views sit at the plan's offset in their device's arena; a
  weight, a KV cache and views of them (through a view of a view) sit inside the root's own allocation
  at ``Graph.offset_in_root``; ``Binding.address`` adds the bases;
- steps: one per plan order entry, on its stream, waiting and recording the plan's event indices;
- multi-device plans: places, steps and arenas per device, a COPY's two ends on two devices;
- a malformed plan is named (an arena tensor without offset, an order entry naming no node);
- the program: a fused group's earlier members record nothing, its last member records their events
  after the one kernel, and in every host order those events allow the emulated step is right;
- hazards show up: the emulated step of a plan missing a required event (or with serial offsets on
  several streams) gives wrong bits in some host order, while the safe plan gives the same bits in all.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from plan_mutators import plan_with_offsets_of, plan_without_event

import memplan
from memplan import plan_devices
from memplan.ops import COPY_OP
from runtime.binding import Place, bind
from runtime.emulate import emulate
from runtime.models import llama as L
from runtime.step import host_order, program


def _tiny(batch=1, fuse=L.DEFAULT_FUSE):
    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg, fuse)
    return cfg, g, L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)


def test_places_of_arena_tensors_views_and_weights():
    cfg, g, _, _ = _tiny()
    plan = memplan.plan(g, L.multi_stream_schedule(g))
    b = bind(g, plan)
    offs = plan.offsets()
    assert b.places["l0.q3"] == Place("l0.q", True, 0, offs["l0.q3"])       # a view of an arena tensor
    assert b.places["l0.q"] == Place("l0.q", True, 0, offs["l0.q"])
    assert b.places["l0.q3"].offset == b.places["l0.q"].offset
    ti = g.tensor_index["l0.kview"]                                         # a view of a view of the cache
    assert b.places["l0.kview"] == Place("l0.k_cache", False, 0, g.offset_in_root(ti))
    assert b.places["l0.wq"] == Place("l0.wq", False, 0, 0)
    own = dict(b.own_roots)
    assert own["l0.k_cache"] == g.tensor("l0.k_cache").size and "l0.kview" not in own and "l0.q" not in own
    assert set(own) == {t.id for t in g.tensors if t.kind == "weight" and t.view_of is None}
    assert b.inputs == tuple(t.id for t in g.tensors if t.kind == "input" and t.view_of is None)
    assert b.outputs == ("logits",)
    assert b.arena_bytes == (plan.arena_bytes,)
    roots = {rid: (1 << 40) + 4096 * k for k, (rid, _) in enumerate(b.own_roots)}
    assert b.address("l0.q3", [1 << 20], roots) == (1 << 20) + offs["l0.q3"]
    assert b.address("l0.kview", [1 << 20], roots) == roots["l0.k_cache"] + g.offset_in_root(ti)


def test_steps_carry_the_plan_event_indices():
    _, g, _, _ = _tiny()
    plan = memplan.plan(g, L.multi_stream_schedule(g))
    b = bind(g, plan)
    assert [(s.node, s.stream) for s in b.steps] == [(n, s) for n, s in plan.order]
    by_node = {s.node: s for s in b.steps}
    for i, (a, c) in enumerate(plan.events):
        assert i in by_node[a].records and i in by_node[c].waits
    assert sum(len(s.records) for s in b.steps) == sum(len(s.waits) for s in b.steps) == len(plan.events)
    assert {s.device for s in b.steps} == {0}


@pytest.mark.parametrize("n,streams", [(2, 2), (3, None)])
def test_multi_device_binding(n, streams):
    _, g, _, _ = _tiny()
    split, p = plan_devices(g, n, streams=streams)
    b = bind(split.graph, p)
    sg = split.graph
    assert b.arena_bytes == tuple(max(int(x), 1) for x in p.device_arena_bytes)
    assert [s.device for s in b.steps] == list(p.node_devices)
    tdev = dict(zip((t for t, _o, _s in p.tensors), p.tensor_devices))
    for t in sg.tensors:
        root = sg.tensors[sg.root[sg.tensor_index[t.id]]].id
        assert b.places[t.id].root == root and b.places[t.id].device == tdev[root]
    copies = [nd for nd in sg.nodes if nd.op == COPY_OP]
    assert copies
    for nd in copies:
        assert b.places[nd.inputs[0]].device != b.places[nd.outputs[0]].device
    arenas = [(1 << 36) * (d + 1) for d in range(n)]
    t = next(t for t in sg.tensors if b.places[t.id].in_arena and b.places[t.id].device == n - 1)
    assert b.address(t.id, arenas, {}) == arenas[n - 1] + p.offsets()[t.id]


def test_malformed_plans_are_named():
    _, g, _, _ = _tiny()
    plan = memplan.plan(g)
    with pytest.raises(memplan.PlanFormatError, match="'l0.q'"):
        bind(g, replace(plan, tensors=tuple(x for x in plan.tensors if x[0] != "l0.q")))
    with pytest.raises(memplan.PlanFormatError, match="'ghost'"):
        bind(g, replace(plan, order=plan.order + (("ghost", 0),)))


def _group_graph():
    """``add``, ``norm`` and ``mul`` form a fusion group (ADD+RMS_NORM+MUL: one kernel writing ``h`` and
    ``y``); ``side`` on stream 1 reads ``h``, so an event leaves the group's first member."""
    b = memplan.GraphBuilder("g")
    for t in ("x", "r"):
        b.input(t, 64, shape=[16], dtype="f32")
    b.weight("w", 64, shape=[16], dtype="f32")
    b.node("add", "ADD", ["x", "r"], b.intermediate("h", 64, shape=[16], dtype="f32"), group="G")
    b.node("norm", "RMS_NORM", ["h"], b.intermediate("n", 64, shape=[16], dtype="f32"), group="G")
    b.node("mul", "MUL", ["n", "w"], b.intermediate("y", 64, shape=[16], dtype="f32"), group="G")
    b.node("side", "SILU", ["h"], b.intermediate("u", 64, shape=[16], dtype="f32"))
    b.node("j", "ADD", ["u", "y"], b.output("out", 64, shape=[16], dtype="f32"))
    return b.build()


def test_fused_group_records_after_its_one_kernel():
    g = _group_graph()
    order = ["add", "norm", "mul", "side", "j"]
    plan = memplan.plan(g, memplan.schedule_with_events(g, order, {n: int(n == "side") for n in order}))
    i = plan.events.index(("add", "side"))
    b = bind(g, plan)
    prog = program(g, plan, b, {t.id: 4096 * k for k, t in enumerate(g.tensors)}.__getitem__)
    steps = {s.node: s for s in prog.steps}
    assert prog.fused_groups == 1 and prog.launches["add"] == prog.launches["norm"] == ()
    assert [ln.kernel for ln in prog.launches["mul"]] == ["add_rms_norm4_f32"]
    assert steps["add"].records == () and i in steps["mul"].records and i in steps["side"].waits
    assert prog.finished_by == {"add": "mul", "norm": "mul", "mul": "mul", "side": "side", "j": "j"}
    # side runs after the one kernel in every host order (before it, it would read h as NaN poison)
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    w = rng.standard_normal(16).astype(np.float32)
    h = x + r
    want = h / (1 + np.exp(-h)) + h / np.sqrt(np.mean(h * h) + 1e-5) * w
    for seed in (None, *range(8)):
        assert [s.node for s in host_order(prog.steps, seed)].index("side") > 2
        out = emulate(g, plan, {"w": w}, {"x": x, "r": r}, seed=seed)[0]["out"]
        assert np.allclose(out, want, rtol=1e-5), seed


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
def test_hazard_planted_in_a_plan_gives_wrong_emulated_bits(fuse):
    """A safe multi-stream plan computes the serial bits in every host order its events allow; with one
    required event removed (K's cache write -> KQ), or with serial offsets on its streams, some order
    that the remaining events allow gives other bits."""
    cfg, g, w, inp = _tiny(1, fuse)
    serial, multi = memplan.plan(g), memplan.plan(g, L.multi_stream_schedule(g))
    want = emulate(g, serial, w, inp)[0]["logits"]
    for seed in (None, 0, 1, 2):
        assert np.array_equal(emulate(g, multi, w, inp, seed=seed)[0]["logits"], want)
    ev = next(e for e in multi.events if e[1] == "l0.kq")
    broken = [(plan_without_event(multi, ev),
               rf"rule 2: node 'l0\.kq' reads '[^']+' but its writer '{re.escape(ev[0])}' does not happen-before")]
    if fuse == "norms":
        broken.append((plan_with_offsets_of(multi, serial),
                       r"rule 3: tensors '[^']+' and '[^']+' overlap in the arena"))
    for bad, said in broken:
        with pytest.raises(memplan.UnsafePlan, match=said):
            memplan.verify(g, bad)
        outs = [emulate(g, bad, w, inp, seed=s)[0]["logits"] for s in range(12)]
        assert any(not np.array_equal(o, want) for o in outs)
