"""The pycuda runtime's host side on the CPU emulator and the fake driver, round 79: hostile arguments and plans
that were indexed or run as if they were sound (a wrong address, a misleading message, a silently wrong result);
each is now refused naming what is wrong, or runs as the serial numpy reference computes it."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan.errors import ExecutorError


def _add_graph() -> memplan.Graph:
    """x (arena) + w (a weight: its own root outside the arena) -> y."""
    b = memplan.GraphBuilder("add")
    b.input("x", 16, shape=[4], dtype="f32")
    b.weight("w", 16, shape=[4], dtype="f32")
    b.node("a", "ADD", ["x", "w"], b.output("y", 16, shape=[4], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("tid,arena_base,root_base,says", [
    ("x", 8192, {}, r"arena_base must be a mapping or list of each device's base, not int 8192 \(one device's "
                    r"base: \[8192\]\) \(tensor 'x'\)"),
    ("x", b"\x00", {}, r"arena_base must be .*, not bytes"),
    ("x", "8192", {}, r"arena_base must be .*, not str '8192'"),
    ("x", None, {}, r"arena_base must be .*, not NoneType"),
    ("w", [0], [4096], r"root_base must be a mapping of each own root's id to its base, not list \[4096\] "
                       r"\(tensor 'w'\)"),
    ("w", [0], 4096, r"root_base must be a mapping .*, not int 4096"),
])
def test_binding_address_names_a_base_container_of_the_wrong_kind(tid, arena_base, root_base, says):
    """``Binding.address(tid, arena_base, root_base)`` indexes ``arena_base`` by device and ``root_base`` by root id.
    One base where the container is expected (``arena_base=8192``) said "the arena of device 0, which arena_base gives
    no base" (as if a device were missing, round 78's leftover); bytes or a string were indexed regardless, so
    ``arena_base=b"\\x00"`` put the arena at address 0 and returned it silently, and ``"8192"`` complained about a
    str '8'; a list of root bases said the root was missing. Each now names the argument and what it must be."""
    from runtime.binding import bind

    g = _add_graph()
    b = bind(g, memplan.plan(g))
    with pytest.raises(ExecutorError, match=says):
        b.address(tid, arena_base, root_base)
    # the containers it takes still give the addresses
    off = b.places["x"].offset
    for bases in ([8192], (8192,), range(8192, 8193), {0: 8192}, np.array([8192])):
        assert b.address("x", bases, 5) == 8192 + off   # (root_base is not read for an arena tensor)
    assert b.address("w", 5, {"w": 4096}) == 4096


def _product_graph(w_shape: list[int], w_dtype: str) -> memplan.Graph:
    """x [1, K] f32 and a 32-byte weight 'W': a MUL_MAT where W is an f16 [N, K] matrix, else an elementwise MUL
    of x [1, 4] by it."""
    K = w_shape[-1] if w_dtype == "f16" else 4
    b = memplan.GraphBuilder("w-shared")
    b.input("x", 4 * K, shape=[1, K], dtype="f32")
    b.weight("W", 32, shape=w_shape, dtype=w_dtype)
    if w_dtype == "f16":
        b.node("m", "MUL_MAT", ["W", "x"], b.output("y", 4 * w_shape[0], shape=[1, w_shape[0]], dtype="f32"))
    else:
        b.node("m", "MUL", ["x", "W"], b.output("y", 32, shape=[2, 4], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("w_shape,w_dtype,says", [([8], "f32", r"'W' is f16 \(4, 4\) there, f32 \(8,\) here"),
                                                   ([2, 8], "f16", r"'W' is f16 \(4, 4\) there, f16 \(2, 8\) here")])
def test_weights_from_an_executor_whose_weight_has_another_dtype_or_shape_is_refused(monkeypatch, w_shape, w_dtype,
                                                                                       says):
    """``Executor(weights_from=other)`` runs on the other executor's weight allocations as they are; a root of
    another byte count was refused, but one of the same bytes in another dtype or shape was taken: a graph whose 'W'
    is an f32 [8] ran its MUL on the bytes of the other graph's f16 [4, 4] matrix read as floats (y = [0, 32.06,
    4104.5, ...] for x = [0, 1, 2, 3]), silently. It is now refused naming the weight and both layouts; an
    executor of the same graph still shares them."""
    import fake_cuda

    from runtime.executor import Executor

    fake_cuda.install(monkeypatch)
    g1 = _product_graph([4, 4], "f16")
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    W = np.arange(16, dtype=np.float16).reshape(4, 4)
    owner = Executor(g1, memplan.plan(g1), weights={"W": W}, inputs={"x": x})
    g2 = _product_graph(w_shape, w_dtype)
    x2 = np.ones(g2.tensor("x").attrs["shape"], dtype=np.float32)
    with pytest.raises(ExecutorError, match=says):
        Executor(g2, memplan.plan(g2), weights_from=owner, inputs={"x": x2})
    sharer = Executor(g1, memplan.plan(g1, streams=2), weights_from=owner, inputs={"x": x})
    sharer.run()
    np.testing.assert_allclose(sharer.read("y"), x @ W.astype(np.float32).T)
    sharer.free()
    owner.free()


@pytest.mark.parametrize("max_streams", [1, 2, 3])
def test_the_hand_schedule_keeps_to_max_streams(max_streams):
    """``runtime.models.llama.multi_stream_schedule(g, "hand", max_streams)`` ignored ``max_streams``: at 1 (or 2)
    it gave the 3-stream schedule with its 8 events (tiny config, batch 2) without a word, where "optimize" keeps to
    it. The hand schedule now folds its side streams onto the last one allowed (1: serial, no events), and the
    default of 3 is the schedule it was; a value no schedule may take is the ScheduleError "optimize" gives."""
    import runtime.models.llama as L

    g = L.build_graph(L.config("tiny", batch=2))
    s = L.multi_stream_schedule(g, "hand", max_streams)
    assert s.num_streams == max_streams
    assert (len(s.events) == 0) == (max_streams == 1)
    memplan.verify(g, memplan.plan(g, s))
    if max_streams == 3:
        assert s == L.multi_stream_schedule(g)
    with pytest.raises(memplan.ScheduleError, match=r"max_streams must be an integer in 1\.\.1024, not 0"):
        L.multi_stream_schedule(g, "hand", 0)


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_a_poison_range_over_an_f32_weight_is_f32_nan(monkeypatch, mode):
    """``Poison(ranges=...)`` fills weight bytes before a step so that a read which does not wait for their write
    shows NaN. Every range was filled with the f16 NaN pattern 0x7E00, which an f32 weight reads as 4.27e37, a
    finite value: y = x * w over a poisoned f32 w came out as 4.27e37 * x, not NaN, and the race it is there to show
    passed unseen. An f32 root's range is now f32 NaN (whole f32 elements), a cache's still f16 NaN."""
    import fake_cuda

    from runtime.executor import Executor, Poison
    from runtime.models.llama import PoisonRange

    fake_cuda.install(monkeypatch)
    b = memplan.GraphBuilder("poisoned-f32")
    b.input("x", 16, shape=[4], dtype="f32")
    b.weight("w", 16, shape=[4], dtype="f32")
    b.weight("c", 8, shape=[4], dtype="f16")
    b.node("m", "MUL", ["x", "w"], b.output("y", 16, shape=[4], dtype="f32"))
    g = b.build()
    ex = Executor(g, memplan.plan(g), weights={"w": np.full(4, 2.0, np.float32)},
                  inputs={"x": np.arange(1, 5, dtype=np.float32)})
    poison = Poison(arena=False, ranges=(PoisonRange("w", 4, 8), PoisonRange("c", 2, 4)))
    if mode == "eager":
        ex.run(poison=poison)
    else:
        ex.capture(poison=poison)
        ex.replay(1)
    y = ex.read("y")
    assert np.isnan(y[1:3]).all() and list(y[[0, 3]]) == [2.0, 8.0]
    assert (ex.read("c").view(np.uint16)[1:3] == 0x7E00).all()   # (an f16 cache: f16 NaN, as before)
    with pytest.raises(ExecutorError, match=r"poison range of 'w': bytes \[2, \+4\) are not whole f32 inside its 16"):
        ex.run(poison=Poison(arena=False, ranges=(PoisonRange("w", 2, 4),)))
    ex.free()


def _ops_after_last_launch(drv) -> list[str]:
    """The fake driver's operations after the step's last kernel launch, by name."""
    last = max(i for i, op in enumerate(drv.trace) if op[1] in ("launch", "launch_pdl", "graph_launch"))
    return [op[1] for op in drv.trace[last + 1:]]


@pytest.mark.parametrize("how", ["run", "replay"])
@pytest.mark.parametrize("call", ["read", "set_inputs", "write_weight"])
def test_a_host_copy_after_a_step_issued_without_sync_waits_for_it(monkeypatch, how, call):
    """The step's streams are non-blocking, which a plain host copy (``memcpy_dtoh``, ``memcpy_htod``: the legacy
    default stream) does not wait for. ``run(sync=False)`` (or ``replay(sync=False)``) then ``read("y")`` copied y
    back while the step's kernels could still be writing it, and ``set_inputs`` / ``write_weight`` overwrote an
    input's staging copy or a weight its kernels were reading: no synchronize came between the launches and the
    copy, so the result depended on timing, silently. Each now synchronizes first (once), and after a synced step
    copies at once, as before."""
    import fake_cuda

    from runtime.executor import Executor

    drv = fake_cuda.install(monkeypatch)
    g = _add_graph()
    x, w = np.arange(4, dtype=np.float32), np.full(4, 2.0, np.float32)
    ex = Executor(g, memplan.plan(g), weights={"w": w}, inputs={"x": x})
    if how == "replay":
        ex.capture()
        ex.replay(1, sync=False)
    else:
        ex.run(sync=False)
    copy = {"read": lambda: ex.read("y"), "set_inputs": lambda: ex.set_inputs({"x": x}),
            "write_weight": lambda: ex.write_weight("w", w)}[call]
    copy()
    after = _ops_after_last_launch(drv)
    assert "ctx_sync" in after and after.index("ctx_sync") < after.index("dtoh" if call == "read" else "htod")
    np.testing.assert_array_equal(ex.read("y"), x + w)
    ex.run()   # (synced: the copy after it issues no synchronize of its own)
    n = len(drv.trace)
    copy()
    assert "ctx_sync" not in [op[1] for op in drv.trace[n:]]
    ex.free()


def test_prefetches_after_two_members_of_one_fused_group_are_all_issued(monkeypatch):
    """``Executor(prefetch=[(after_node, weight, nbytes), ...])`` issues each L2 prefetch at the step that finishes
    ``after_node``: a fused group's last member for every member. The prefetches were re-keyed by that step in a
    dict, so those after 'l0.norm' (l0.wo, l1.wo) were overwritten by the one after 'l0.norm_w' (l0.wq), its group's
    last member: one l2_prefetch launch of three, the others dropped without a word. All three are issued now, after
    the group's fused kernel."""
    import fake_cuda

    import runtime.models.llama as L
    from runtime.executor import Executor

    drv = fake_cuda.install(monkeypatch)
    cfg = L.config("tiny")
    g = L.build_graph(cfg)
    assert [g.nodes[m].id for m in g.groups()["l0.attn_norm_f"]] == ["l0.norm", "l0.norm_w"]   # (premise: one group)
    ex = Executor(g, memplan.plan(g), weights=L.make_weights(g, cfg), inputs=L.make_inputs(cfg),
                  prefetch=[("l0.norm", "l0.wo", 64), ("l0.norm_w", "l0.wq", 64), ("l0.norm", "l1.wo", 64)])
    ex.run()
    fetched = [op[6][0] for op in drv.trace if op[1] == "launch" and op[3] == "l2_prefetch"]
    assert fetched == [ex.weight_ptr[w] for w in ("l0.wo", "l1.wo", "l0.wq")]
    ex.free()


def _move_within_one_buffer(op: str, n: int, src: int, dst: int, in_place: bool = False) -> memplan.Graph:
    """R = CONT(x), an f16 [10] buffer; ``op`` moves its n elements from element ``src`` on to element ``dst`` (two
    views of R; the destination view is a graph output)."""
    b = memplan.GraphBuilder(f"move-{op}", alignment=2)
    b.input("x", 20, shape=[10], dtype="f16")
    b.node("c0", "CONT", ["x"], b.intermediate("R", 20, shape=[10], dtype="f16"))
    b.view("a", "R", 2 * n, 2 * src, shape=[n], dtype="f16")
    if in_place:   # (an in-place CONT of the view: the plan puts its output at the view's address)
        b.node("m", op, ["a"], b.intermediate("y", 2 * n, shape=[n], dtype="f16"), inplace={"y": "a"})
        b.node("o", "CONT", ["y"], b.output("moved", 2 * n, shape=[n], dtype="f16"))
    else:
        b.view("moved", "R", 2 * n, 2 * dst, kind="output", shape=[n], dtype="f16")
        b.node("m", op, ["a"], "moved")
    return b.build()


@pytest.mark.parametrize("op,n,src,dst,in_place", [
    ("RESHAPE", 5, 3, 1, False), ("VIEW", 3, 0, 2, False),                           # not whole words, overlapping
    ("CONT", 2, 0, 1, False), ("COPY", 2, 1, 0, False), ("RESHAPE", 2, 2, 1, False),  # whole words off a word
    ("CONT", 2, 1, 1, True),                                                          # in place, off a word
])
def test_moving_f16_elements_within_one_buffer_off_whole_words_runs(monkeypatch, op, n, src, dst, in_place):
    """Verified plans of valid graphs that move f16 elements within one buffer were refused: by a RESHAPE or VIEW
    of bytes that are not whole words (5 f16 from element 3 on to element 1: KernelError "RESHAPE copies 10 bytes,
    not whole aligned words, with its output 'moved' over its input 'a'"; round 78 staged only a CONT or COPY),
    and by any of them for 2 f16 moved one element along, 4 bytes on byte 2 of a word ("copy_u32 kernel needs
    4-byte alignment"), as by an in-place CONT of such a view. The input is now copied to scratch first and moved
    as a byte copy (in place: nothing to move), on the emulator and the executor (fake driver); the launches of
    the Llama steps are unchanged."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    g = _move_within_one_buffer(op, n, src, dst, in_place)
    plan = memplan.plan(g)
    x = np.arange(1, 11).astype(np.float16)
    want = x[src:src + n]
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, inputs={"x": x})
    ex.run()
    for got in (emulate(g, plan, {}, {"x": x}, check=True)[0]["moved"], ex.read("moved")):
        np.testing.assert_array_equal(np.asarray(got, np.float16), want)
    ex.free()


def test_reading_an_input_no_node_reads_is_refused_not_another_tensors_bytes(monkeypatch):
    """A step copies only the inputs some node reads into the arena; an unread input is live at no node, so the plan
    gives its bytes to other tensors (here 'u' and the output 'y' both at offset 256). ``read("u")`` then returned
    y's values ([0, 0.73, 1.76, 2.86]) as the input given ([100, 100, 100, 100]), silently. It is now refused naming
    the input; a read input and the outputs read as before."""
    import fake_cuda

    from runtime.executor import Executor

    fake_cuda.install(monkeypatch)
    b = memplan.GraphBuilder("unread-input")
    b.input("x", 16, shape=[1, 4], dtype="f32")
    b.input("u", 16, shape=[1, 4], dtype="f32")
    b.node("s", "SILU", ["x"], b.output("y", 16, shape=[1, 4], dtype="f32"))
    g = b.build()
    plan = memplan.plan(g)
    assert plan.offsets()["u"] == plan.offsets()["y"]   # (premise: the plan reuses the unread input's bytes)
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    ex = Executor(g, plan, inputs={"x": x, "u": np.full((1, 4), 100, np.float32)})
    ex.run()
    with pytest.raises(ExecutorError, match=r"read 'u': input that no node reads and no output views, so no step "
                                            r"copies it into the arena"):
        ex.read("u")
    np.testing.assert_array_equal(ex.read("x"), x)
    np.testing.assert_allclose(ex.read("y"), x / (1 + np.exp(-x)), rtol=1e-6)
    ex.free()
