# ruff: noqa: B023, E402, E731  (lambdas run inside their loop, under ``guarded``)
"""Session 60 (hostile60): files every command writes or reads, ONNX structure, API option types, runtime mismatches.

Why: rounds 57-59 fuzzed the CLI paths of plan/trace/csv/example/import/bench, JSON text through load_graph/load_plan,
public dataclasses, the importers and the verifier. This round feeds what they left: every reading command (verify,
show, simulate, trace, draw, csv, bench --graph, import) given hostile files (FIFO, device, /dev/full, a sparse 2 GB
file, a file that grows or vanishes while read, non-UTF-8 / UTF-16 / BOM, NaN / Infinity / 1e400 / huge ints,
duplicate keys), every writing command given hostile outputs (an input, its symlink / hard link / ./ spelling, a
directory, a FIFO, /dev/full, a missing parent, a read-only directory as user nobody), and after every case the
working folder is listed for stray temporary files; ONNX models with subgraphs, duplicate names, bad initializers,
opset oddities, a large graph; memplan.plan / graph_optimize / verify with wrong-typed options; runtime.binding /
emulate / layout given a plan that disagrees with the graph.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/hostile_s60.py [--quick] [--only files,onnx,api,runtime]``.
Everything is written under one TemporaryDirectory, removed at the end. Reuses round 57's Recorder / guarded /
cli_case (a library call returns or raises a memplan.errors exception; a CLI run exits 0 or 2 with one error line,
no traceback, every input byte-identical). Results: hostile_s60.txt.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_s57 import Recorder, cli_case, guarded  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def listing(folder):
    out = set()
    for d, _dirs, files in os.walk(folder):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), folder))
    return out


def stray(rec, family, case, folder, before, allowed=()):
    new = listing(folder) - before - set(allowed)
    if new:
        rec.defect(family + "-stray", case, f"left behind: {sorted(new)[:5]}")


# ---------------------------------------------------------------- files

def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def text_variants(doc_text: str):
    """(label, bytes) of hostile encodings and values of one JSON document."""
    b = doc_text.encode()
    yield "utf8-bom", b"\xef\xbb\xbf" + b
    yield "utf16-le-bom", doc_text.encode("utf-16")
    yield "utf16-be", doc_text.encode("utf-16-be")
    yield "utf32", doc_text.encode("utf-32")
    yield "latin1-byte", b.replace(b'"', b'"\xe9', 1)
    yield "lone-surrogate-escape", b.replace(b'{', b'{"\\ud800": 1, ', 1)
    yield "nan", b.replace(b'{', b'{"zz": NaN, ', 1)
    yield "infinity", b.replace(b'{', b'{"zz": -Infinity, ', 1)
    yield "1e400", b.replace(b'{', b'{"zz": 1e400, ', 1)
    yield "hugeint", b.replace(b'{', b'{"zz": ' + b"9" * 5000 + b', ', 1)
    yield "dupkey-format", b.replace(b'{', b'{"format": "x", ', 1)
    yield "empty", b""
    yield "nul", b + b"\x00"
    yield "two-docs", b + b + b
    yield "crlf-ws", b.replace(b",", b",\r\n\t")
    yield "gzip", __import__("gzip").compress(b)


def dupkey_in_first_tensor(doc_text: str, key: str, value: str):
    i = doc_text.find('"tensors"')
    j = doc_text.find("{", i)
    return (doc_text[:j + 1] + f'"{key}": {value}, ' + doc_text[j + 1:]).encode()


def fam_files(rec, tmp, quick):
    import memplan
    from memplan import examples

    work = os.path.join(tmp, "files")
    os.makedirs(work)
    os.chdir(work)
    g = examples.qkv_attention()
    p = memplan.plan(g, streams=2)
    gpath = os.path.join(work, "g.json")
    ppath = os.path.join(work, "p.json")
    memplan.save_graph(g, gpath)
    p.save(ppath)
    gtext = open(gpath).read()
    ptext = open(ppath).read()
    csvp = os.path.join(work, "p.csv")
    csvtext = "id,lower,upper,size\n0,0,2,4\n1,1,3,4\n2,2,4,8\n"
    write(csvp, csvtext.encode())
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "m", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnxp = os.path.join(work, "m.onnx")
    write(onnxp, model.SerializeToString())

    def restore():
        for path_, data in ((gpath, gtext.encode()), (ppath, ptext.encode()), (csvp, csvtext.encode()),
                            (onnxp, model.SerializeToString())):
            if os.path.islink(path_) or os.path.isdir(path_):
                subprocess.run(["rm", "-rf", path_])
            write(path_, data)

    base = listing(work)

    # writing commands x hostile outputs
    def writers(t):
        return [("plan -o", ["plan", gpath, "-o", t, "-q"], [gpath]),
                ("plan --graph-out", ["plan", gpath, "-o", os.path.join(work, "o1.json"), "--devices", "2",
                                      "--graph-out", t, "-q"], [gpath]),
                ("trace -o", ["trace", gpath, ppath, "-o", t, "-q"], [gpath, ppath]),
                ("draw -o", ["draw", gpath, ppath, "-o", t, "-q"], [gpath, ppath]),
                ("csv -o", ["csv", csvp, "-o", t, "-q"], [csvp]),
                ("import -o", ["import", onnxp, "-o", t, "-q"], [onnxp]),
                ("bench --json", ["bench", "devices", "--json", t], [])]

    links = {}
    for name, target in (("lg.json", gpath), ("lp.json", ppath), ("lc.csv", csvp), ("lo.onnx", onnxp)):
        links[name] = os.path.join(work, name)
        os.symlink(target, links[name])
    hard = {}
    for name, target in (("hg.json", gpath), ("hp.json", ppath), ("hc.csv", csvp), ("ho.onnx", onnxp)):
        hard[name] = os.path.join(work, name)
        os.link(target, hard[name])
    fifo = os.path.join(work, "fifo")
    os.mkfifo(fifo)
    adir = os.path.join(work, "adir")
    os.mkdir(adir)
    dir_link = os.path.join(work, "dirlink")
    os.symlink(work, dir_link)
    base = listing(work)
    targets = ["g.json", "./g.json", "p.json", "./p.json", "p.csv", "m.onnx", "./m.onnx", "adir/../m.onnx",
               "dirlink/g.json", "dirlink/p.json", "dirlink/m.onnx", "dirlink/p.csv",
               *links.values(), *hard.values(), "G.JSON", fifo, adir, adir + "/", "/dev/full", "missing/x.json",
               "g.json/x", "/proc/self/fd/0", os.path.join(work, "out.png"), os.path.join(work, "out.json")]
    for t in targets:
        for label, argv, ins in writers(t):
            if label == "draw -o" and not t.endswith((".png", ".svg", ".pdf")):
                argv = argv[:-2] + [t, "-q"]
            restore()
            before = listing(work)
            names_input = any(os.path.exists(t) and os.path.samefile(t, i) for i in ins)
            r = cli_case(rec, f"{label} {t!r}", argv, ins, seconds=120, family="files-out")
            allowed = {t, os.path.relpath(os.path.join(work, t), work), "o1.json"} if r and r[0] == 0 else set()
            stray(rec, "files-out", f"{label} {t!r}", work, before, allowed)
            if r and r[0] == 0 and names_input:
                rec.defect("files-out", f"{label} {t!r}", "accepted an output naming its input")
            for extra in ("out.json", "out.png", "G.JSON", "o1.json"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(work, extra))
    # example -o
    for t in (fifo, gpath, "/dev/full", links["lg.json"]):   # ("missing/sub" is made: mkdir -p, on purpose)
        restore()
        before = listing(work)
        cli_case(rec, f"example -o {t!r}", ["example", "-o", t], [gpath], family="files-out")
        stray(rec, "files-out", f"example -o {t}", work, before)

    # reading commands x hostile inputs
    big = os.path.join(work, "sparse2g.json")
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    big1 = os.path.join(work, "sparse1g.json")   # just under the 1 GiB limit: the reader must not read it whole?
    with open(big1, "wb") as f:
        f.write(b"{")
        f.truncate((1 << 30) - 1)
    readers = lambda gi, pi, ci, oi: [
        ("verify", ["verify", gi, pi]), ("show", ["show", pi]), ("show --graph", ["show", pi, "--graph", gi]),
        ("simulate", ["simulate", gi, pi]), ("trace", ["trace", gi, pi, "-o", os.path.join(work, "out.json"), "-q"]),
        ("draw", ["draw", gi, pi, "-o", os.path.join(work, "out.png"), "-q"]),
        ("plan", ["plan", gi, "-o", os.path.join(work, "out.json"), "-q"]),
        ("csv", ["csv", ci, "-o", os.path.join(work, "out.json"), "-q"]),
        ("import", ["import", oi, "-o", os.path.join(work, "out.json"), "-q"]),
        ("bench --graph", ["bench", "planners", "--graph", gi]),
    ]
    hostile_in = [fifo, "/dev/full", "/dev/zero", "/dev/null", big, adir, dir_link, "/proc/self/status"]
    if quick:
        hostile_in.remove(big)
    for h in hostile_in:
        for which in range(4):
            args = [gpath, ppath, csvp, onnxp]
            args[which] = h
            for label, argv in readers(*args):
                if h not in argv:
                    continue
                before = listing(work)
                cli_case(rec, f"{label} in={h}", argv, [gpath, ppath, csvp, onnxp], seconds=60, expect=2,
                         family="files-in")
                stray(rec, "files-in", f"{label} in={h}", work, before)
                for extra in ("out.json", "out.png"):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(work, extra))
    # text variants of each document
    gbad = os.path.join(work, "gbad.json")
    pbad = os.path.join(work, "pbad.json")
    cbad = os.path.join(work, "cbad.csv")
    variants = []
    for label, data in text_variants(gtext):
        variants.append(("graph " + label, data, None, None))
    for label, data in text_variants(ptext):
        variants.append(("plan " + label, None, data, None))
    for key, val in (("size", "1e400"), ("size", "NaN"), ("size", "9" * 400), ("size", "1.0"), ("id", '"x"'),
                     ("size", "-0"), ("size", "1E2")):
        variants.append((f"graph dup {key}={val[:8]}", dupkey_in_first_tensor(gtext, key, val), None, None))
        variants.append((f"plan dup {key}={val[:8]}", None, dupkey_in_first_tensor(ptext, key if key != "size"
                         else "offset", val), None))
    for label, data in (("bom", b"\xef\xbb\xbf" + csvtext.encode()), ("utf16", csvtext.encode("utf-16")),
                        ("latin1", csvtext.replace("id", "\xe9d").encode("latin-1")),
                        ("nan", csvtext.replace("8\n", "nan\n").encode()),
                        ("inf", csvtext.replace("8\n", "inf\n").encode()),
                        ("1e400", csvtext.replace("8\n", "1e400\n").encode()),
                        ("huge", csvtext.replace("8\n", "9" * 5000 + "\n").encode()),
                        ("dup-col", csvtext.replace("id,lower", "id,id,lower").encode()),
                        ("nul", csvtext.encode() + b"\x00"), ("cr", csvtext.replace("\n", "\r").encode())):
        variants.append(("csv " + label, None, None, data))
    for label, gd, pd, cd in variants:
        write(gbad, gd if gd is not None else gtext.encode())
        write(pbad, pd if pd is not None else ptext.encode())
        write(cbad, cd if cd is not None else csvtext.encode())
        for rl, argv in readers(gbad, pbad, cbad, onnxp):
            if rl == "import" or (cd is None and rl == "csv") or (cd is not None and rl != "csv"):
                continue
            if gd is None and pd is not None and rl in ("plan", "bench --graph"):
                continue
            before = listing(work)
            r = cli_case(rec, f"{rl} {label}", argv, [gbad, pbad, cbad], seconds=60, family="files-text")
            stray(rec, "files-text", f"{rl} {label}", work, before, {"out.json", "out.png"} if r and r[0] == 0 else ())
            for extra in ("out.json", "out.png"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(work, extra))
    # library loaders on the same texts
    for label, gd, pd, _cd in variants:
        if gd is not None:
            write(gbad, gd)
            guarded(rec, "files-lib", f"load_graph {label}", lambda: memplan.load_graph(gbad))
        if pd is not None:
            write(pbad, pd)
            guarded(rec, "files-lib", f"load_plan {label}", lambda: memplan.load_plan(pbad))

    # a file that grows / shrinks / vanishes while read (a writer thread racing the reader)
    def racer(path, mode, stop):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if mode == "grow":
                    with open(path, "ab") as f:
                        f.write(b" " * 4096 + b"x")
                elif mode == "shrink":
                    with open(path, "r+b") as f:
                        f.truncate(max(0, os.path.getsize(path) // 2))
                    write(path, gtext.encode())
                elif mode == "vanish":
                    os.unlink(path)
                    write(path, gtext.encode())
                elif mode == "replace":
                    tmpn = path + ".r"
                    write(tmpn, (gtext if i % 2 else ptext).encode())
                    os.replace(tmpn, path)
            except OSError:
                pass

    gr = os.path.join(work, "race.json")
    for mode in ("grow", "shrink", "vanish", "replace"):
        for k in range(3 if quick else 15):
            write(gr, gtext.encode())
            stop = threading.Event()
            t = threading.Thread(target=racer, args=(gr, mode, stop))
            t.start()
            try:
                for rl, argv in (("plan", ["plan", gr, "-o", os.path.join(work, "out.json"), "-q"]),
                                 ("verify", ["verify", gr, ppath]), ("show --graph", ["show", ppath, "--graph", gr])):
                    cli_case(rec, f"{rl} racing {mode} #{k}", argv, [ppath], seconds=60, family="files-race")
                    guarded(rec, "files-race", f"load_graph racing {mode}", lambda: memplan.load_graph(gr))
            finally:
                stop.set()
                t.join()
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(work, "out.json"))
            with contextlib.suppress(OSError):
                os.unlink(gr + ".r")
    restore()
    stray(rec, "files", "end of family", work, base | {"sparse2g.json", "sparse1g.json", "gbad.json", "pbad.json",
                                                        "cbad.csv", "race.json"})

    # as user nobody: a read-only folder, an unwritable existing output, a folder it cannot enter
    ro = os.path.join(tmp, "ro")
    os.makedirs(ro)
    os.chmod(tmp, 0o755)
    for f_ in (gpath, ppath, csvp, onnxp):
        os.chmod(f_, 0o644)
    os.chmod(work, 0o755)
    ro_out = os.path.join(ro, "x.json")
    ro_existing = os.path.join(ro, "exists.json")
    write(ro_existing, b"{}")
    os.chmod(ro_existing, 0o644)
    os.chmod(ro, 0o555)
    for t in (ro_out, ro_existing, os.path.join(ro, "x.png")):
        for label, argv, _ins in writers(t):
            if label == "draw -o" and not t.endswith(".png"):
                continue
            before = listing(ro)
            rec.count("files-nobody")
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                                "memplan", *argv], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": ROOT, "HOME": "/tmp", "MPLCONFIGDIR": "/tmp"},
                               cwd="/tmp")
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            if r.returncode != 2 or len(lines) != 1 or "Traceback" in r.stderr:
                rec.defect("files-nobody", f"{label} {t}", f"exit {r.returncode}: {r.stderr[-300:]!r}")
            stray(rec, "files-nobody", f"{label} {t}", ro, before)
            if open(ro_existing, "rb").read() != b"{}":
                rec.defect("files-nobody", f"{label} {t}", "existing file changed")
    os.chmod(ro, 0o755)


# ---------------------------------------------------------------- sparse (peak memory of a refusal, in a child)

def child_peak(argv, cwd):
    """(exit code, stderr, peak RSS in MB, seconds) of ``python -m memplan ARGV`` in a child process, measured by
    /usr/bin/time (a child forked from this grown driver counted the driver's own pages in its peak)."""
    t0 = time.time()
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, sys.executable, "-m", "memplan", *argv],
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": ROOT}, timeout=600)
        peak = int(rss.read().strip().splitlines()[-1]) / 1024
    return proc.returncode, proc.stderr, peak, time.time() - t0


def fam_sparse(rec, tmp, quick):
    """Sparse files just under each reader's size limit, that are no document of theirs: refused with one line,
    and without reading them whole (peak RSS under 300 MB)."""
    work = os.path.join(tmp, "sparse")
    os.makedirs(work)
    cases = [("g.json", b"", 1_000_000_000, ["plan", "g.json", "-o", "o.json", "-q"]),
             ("h.json", b'{"format": "memplan.graph/1",', 1_000_000_000, ["show", "h.json"]),
             ("c.csv", b"id,lower,upper,size\n", 1_000_000_000, ["csv", "c.csv", "-o", "o.csv", "-q"]),
             ("m.onnx", b"", 1_900_000_000, ["import", "m.onnx", "-o", "o.json", "-q"]),
             ("n.onnx", b"\x08\x07", 1_900_000_000, ["import", "n.onnx", "-o", "o.json", "-q"]),
             ("t.onnx", b"\x3a\xff\xff\xff\x07", 1_900_000_000, ["import", "t.onnx", "-o", "o.json", "-q"])]
    for name, head, size, argv in cases[:2] if quick else cases:
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size)
        rec.count("sparse")
        code, err, peak, secs = child_peak(argv, work)
        print(f"  sparse {name} ({size} B): exit {code}, {peak:.0f} MB, {secs:.1f} s: {err.strip()[:110]}", flush=True)
        if code != 2 or len(err.strip().splitlines()) != 1:
            rec.defect("sparse", name, f"exit {code}: {err[-200:]!r}")
        if peak > 300:
            rec.defect("sparse", name, f"peak RSS {peak:.0f} MB to refuse a {size}-byte file")
        os.unlink(path)
        stray(rec, "sparse", name, work, set())


# ---------------------------------------------------------------- onnx

def fam_onnx(rec, tmp, quick):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from memplan.importers.onnx import import_onnx

    work = os.path.join(tmp, "onnx")
    os.makedirs(work)
    F = TensorProto.FLOAT

    def vi(name, shape, dtype=F):
        return helper.make_tensor_value_info(name, dtype, shape)

    def model(nodes, inputs, outputs, inits=(), opsets=(("", 17),), ir=None, value_info=()):
        gr = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(inits), value_info=list(value_info))
        m = helper.make_model(gr, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
        if ir is not None:
            m.ir_version = ir
        return m

    relu = lambda i, o, n="r": helper.make_node("Relu", [i], [o], name=n)
    cases = []
    # subgraphs
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"], name="ti")], "then", [], [vi("t", [2, 4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"], name="en")], "else", [], [vi("e", [2, 4])])
    cases.append(("If", model([helper.make_node("Greater", ["c0", "c1"], ["c"], name="gt"),
                               helper.make_node("If", ["c"], ["y"], name="if0", then_branch=then_g, else_branch=else_g)],
                              [vi("x", [2, 4]), vi("c0", []), vi("c1", [])], [vi("y", [2, 4])])))
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"], name="bi"),
                              helper.make_node("Add", ["v_in", "v_in"], ["v_out"], name="ba")], "body",
                             [vi("iter", [], TensorProto.INT64), vi("cond_in", [], TensorProto.BOOL), vi("v_in", [2])],
                             [vi("cond_out", [], TensorProto.BOOL), vi("v_out", [2])])
    cases.append(("Loop", model([helper.make_node("Loop", ["n", "cond", "v0"], ["y"], name="loop0", body=body)],
                                [vi("n", [], TensorProto.INT64), vi("cond", [], TensorProto.BOOL), vi("v0", [2])],
                                [vi("y", [2])])))
    sbody = helper.make_graph([helper.make_node("Add", ["s_in", "x_in"], ["s_out"], name="sa"),
                               helper.make_node("Identity", ["s_out"], ["y_out"], name="si")], "sb",
                              [vi("s_in", [4]), vi("x_in", [4])], [vi("s_out", [4]), vi("y_out", [4])])
    cases.append(("Scan", model([helper.make_node("Scan", ["s0", "xs"], ["sN", "ys"], name="scan0", body=sbody,
                                                  num_scan_inputs=1)],
                                [vi("s0", [4]), vi("xs", [3, 4])], [vi("sN", [4]), vi("ys", [3, 4])])))
    # cycles, duplicate names, missing inputs
    cases.append(("cycle2", model([relu("b", "a", "n1"), relu("a", "b", "n2")], [vi("x", [2])], [vi("b", [2])])))
    cases.append(("selfloop", model([relu("a", "a", "n1")], [vi("x", [2])], [vi("a", [2])])))
    cases.append(("dup-output-name", model([relu("x", "y", "n1"), relu("x", "y", "n2")], [vi("x", [2])],
                                           [vi("y", [2])])))
    cases.append(("dup-node-name", model([relu("x", "t", "n"), relu("t", "y", "n")], [vi("x", [2])], [vi("y", [2])])))
    cases.append(("node-writes-input", model([relu("x", "x", "n")], [vi("x", [2])], [vi("x", [2])])))
    cases.append(("missing-input", model([relu("nothere", "y")], [vi("x", [2])], [vi("y", [2])])))
    cases.append(("missing-output", model([relu("x", "t")], [vi("x", [2])], [vi("y", [2])])))
    cases.append(("input-is-init", model([relu("x", "y")], [vi("x", [2])], [vi("y", [2])],
                                         inits=[numpy_helper.from_array(np.zeros(3, np.float32), "x")])))
    cases.append(("dup-init", model([helper.make_node("Add", ["x", "w"], ["y"], name="a")], [vi("x", [2])],
                                    [vi("y", [2])], inits=[numpy_helper.from_array(np.zeros(2, np.float32), "w"),
                                                           numpy_helper.from_array(np.zeros(5, np.float32), "w")])))
    cases.append(("empty-input-name", model([helper.make_node("Add", ["x", ""], ["y"], name="a")], [vi("x", [2])],
                                            [vi("y", [2])])))
    cases.append(("dup-graph-input", model([relu("x", "y")], [vi("x", [2]), vi("x", [3])], [vi("y", [2])])))
    cases.append(("value_info-conflict", model([relu("x", "t"), relu("t", "y", "r2")], [vi("x", [2])], [vi("y", [2])],
                                               value_info=[vi("t", [7, 7]), vi("t", [1])])))
    # dims
    for label, shape in (("neg", [-3, 4]), ("zero", [0, 4]), ("sym", ["N", 4]), ("sym-empty", ["", 4]),
                         ("huge", [2**62, 2**62]), ("i64max", [2**63 - 1]), ("nodims", None), ("scalar", []),
                         ("many", [2] * 80), ("neg-i64", [-(2**63)])):
        cases.append((f"dim-{label}", model([relu("x", "y")], [vi("x", shape)], [vi("y", shape)])))
    # initializers whose size disagrees with dims
    t = numpy_helper.from_array(np.zeros(6, np.float32), "w")
    t.dims[:] = [2, 4]
    cases.append(("init-short", model([helper.make_node("Add", ["x", "w"], ["y"], name="a")], [vi("x", [2, 4])],
                                      [vi("y", [2, 4])], inits=[t])))
    t2 = numpy_helper.from_array(np.zeros(8, np.float32), "w")
    t2.dims[:] = [2**40, 2**40]
    cases.append(("init-huge-dims", model([helper.make_node("Add", ["x", "w"], ["y"], name="a")], [vi("x", [2, 4])],
                                          [vi("y", [2, 4])], inits=[t2])))
    t3 = helper.make_tensor("w", F, [3], [0.0] * 3)
    t3.dims[:] = [2, 4]
    cases.append(("init-float_data-short", model([helper.make_node("Add", ["x", "w"], ["y"], name="a")],
                                                 [vi("x", [2, 4])], [vi("y", [2, 4])], inits=[t3])))
    t4 = numpy_helper.from_array(np.zeros(8, np.float32), "w")
    t4.dims[:] = [-2, -4]
    cases.append(("init-neg-dims", model([helper.make_node("Add", ["x", "w"], ["y"], name="a")], [vi("x", [2, 4])],
                                         [vi("y", [2, 4])], inits=[t4])))
    shp = numpy_helper.from_array(np.array([4, 2], np.int64), "s")
    shp.dims[:] = [3]
    cases.append(("reshape-shape-short", model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                                               [vi("x", [2, 4])], [vi("y", [4, 2])], inits=[shp])))
    # opsets
    for label, ops, ir in (("opset0", (("", 0),), None), ("opset1", (("", 1),), None), ("opset99", (("", 99),), None),
                           ("no-opset", (), None), ("dup-opset", (("", 17), ("", 9)), None),
                           ("ml-only", (("ai.onnx.ml", 3),), None), ("neg-opset", (("", -1),), None),
                           ("opset-2^62", (("", 2**62),), None), ("ir0", (("", 17),), 0), ("ir999", (("", 17),), 999)):
        cases.append((label, model([relu("x", "y")], [vi("x", [2])], [vi("y", [2])], opsets=ops, ir=ir)))
    cases.append(("unknown-domain", model([helper.make_node("Relu", ["x"], ["y"], name="r", domain="com.evil")],
                                          [vi("x", [2])], [vi("y", [2])], opsets=(("", 17), ("com.evil", 1)))))
    cases.append(("unknown-op", model([helper.make_node("Frobnicate", ["x"], ["y"], name="f")], [vi("x", [2])],
                                      [vi("y", [2])])))
    cases.append(("function-op", model([helper.make_node("Relu", ["x"], ["y"], name="r", domain="local")],
                                       [vi("x", [2])], [vi("y", [2])], opsets=(("", 17), ("local", 1)))))
    # external data escaping the folder
    sub = os.path.join(work, "m")
    os.makedirs(sub)
    outside = os.path.join(work, "outside.bin")
    write(outside, b"\0" * 64)
    os.symlink(outside, os.path.join(sub, "link.bin"))
    os.symlink(work, os.path.join(sub, "updir"))
    os.makedirs(os.path.join(sub, "real"))
    write(os.path.join(sub, "real", "w.bin"), b"\0" * 64)
    os.symlink(os.path.join(sub, "real"), os.path.join(sub, "linkdir"))
    ext_locs = ["../outside.bin", "../../etc/passwd", "/etc/passwd", outside, "link.bin", "updir/outside.bin",
                "real/../../outside.bin", "real/w.bin", "linkdir/w.bin", "./real/w.bin", "real//w.bin",
                "real/./w.bin", ".", "..", "real", "", "\\..\\outside.bin", "C:\\x", "file:///etc/passwd",
                "real/w.bin\x00x", "%2e%2e/outside.bin", "~/x", "/proc/self/environ", "/dev/zero"]
    ext_cases = []
    for loc in ext_locs:
        w = helper.make_tensor("w", F, [2, 4], [0.0] * 8)
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", loc), ("offset", "0"), ("length", "32")):
            e = w.external_data.add()
            e.key, e.value = k, v
        ext_cases.append((f"ext {loc!r}", model([helper.make_node("Add", ["x", "w"], ["y"], name="a")],
                                                [vi("x", [2, 4])], [vi("y", [2, 4])], inits=[w])))
    for label, m in cases + ext_cases:
        path = os.path.join(sub, "model.onnx")
        write(path, m.SerializeToString())
        r = guarded(rec, "onnx-lib", label, lambda: import_onnx(path))
        if label.startswith("ext") and r is not None and label not in ("ext 'file:///etc/passwd'",
                                                                        "ext '%2e%2e/outside.bin'", "ext '~/x'") and not any(s in label for s in ("'real/w.bin'", "'./real/w.bin'",
                                                                                   "'real//w.bin'", "'real/./w.bin'",
                                                                                   "'linkdir/w.bin'")):
            rec.defect("onnx-escape", label, "external data outside the model folder accepted")
        cli_case(rec, label, ["import", path, "-o", os.path.join(work, "out.json"), "-q"], [path], family="onnx-cli")
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(work, "out.json"))
    # Ranges of Constants in each spelling, sized against onnxruntime (the plan must hold what it writes)
    with contextlib.suppress(ImportError):
        import onnxruntime as ort
        for attr in ("value", "value_float", "value_int"):
            for a, b, d in ((0.3, 5.3, 0.2), (0.0, 1e30, 1e-30), (0.0, 10.0, 0.0), (0.0, math.inf, 1.0), (1.0, 0.0, -0.1),
                            (0, 10, 3), (-2**31, 2**31 - 1, 2**31 - 1)):
                if attr == "value_int" and not all(isinstance(v, int) for v in (a, b, d)):
                    continue
                if attr != "value_int" and all(isinstance(v, int) for v in (a, b, d)):
                    continue
                elem = TensorProto.INT64 if attr == "value_int" else F
                consts = [helper.make_node("Constant", [], [nm], name=f"k{nm}", **(
                    {attr: v} if attr != "value" else {"value": numpy_helper.from_array(np.array(v, np.float32), nm)}))
                    for nm, v in (("a", a), ("b", b), ("d", d))]
                m = model(consts + [helper.make_node("Range", ["a", "b", "d"], ["y"], name="r")], [vi("x", [2])],
                          [vi("y", None, elem)])
                path = os.path.join(work, "range.onnx")
                write(path, m.SerializeToString())
                label = f"Range({a}, {b}, {d}) of {attr} Constants"
                g = guarded(rec, "onnx-range", label, lambda: import_onnx(path))
                try:
                    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                    wrote = sess.run(None, {"x": np.zeros(2, np.float32)})[0].nbytes
                except Exception:  # noqa: BLE001 - onnxruntime refuses to run it
                    wrote = None
                planned = next((t.size for t in g.tensors if t.id == "y"), None) if g is not None else None
                if planned != wrote:
                    rec.defect("onnx-range", label, f"planned {planned} bytes, onnxruntime writes {wrote}")
    # a large graph (100k nodes; 1M with --big)
    n = 20_000 if quick else 100_000
    nodes = [relu(f"t{i}" if i else "x", f"t{i + 1}" if i + 1 < n else "y", f"n{i}") for i in range(n)]
    m = model(nodes, [vi("x", [2])], [vi("y", [2])])
    path = os.path.join(work, "big.onnx")
    write(path, m.SerializeToString())
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "memplan", "import", path, "-o", os.path.join(work, "big.json"), "-q"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    rec.count("onnx-big")
    print(f"  {n}-node ONNX chain: exit {r.returncode} in {time.time() - t0:.0f}s {r.stderr[-200:]!r}", flush=True)
    if r.returncode not in (0, 2):
        rec.defect("onnx-big", f"{n}-node chain", f"exit {r.returncode}: {r.stderr[-300:]}")


# ---------------------------------------------------------------- api

BAD = [("str", "2"), ("str-auto", "auto"), ("np.int64", None), ("np.float64", None), ("np.bool_", None),
       ("True", True), ("False", False), ("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("neg", -1),
       ("zero", 0), ("float", 2.5), ("intfloat", 2.0), ("huge", 2**70), ("None", None), ("list", [2]),
       ("bytes", b"2"), ("complex", 2j), ("Fraction", None), ("Decimal", None), ("np.int8-1", None),
       ("np.uint64-max", None), ("np.array0d", None), ("np.array1", None)]


def bad_values():
    import decimal
    import fractions

    import numpy as np
    for label, v in BAD:
        if label == "np.int64":
            v = np.int64(2)
        elif label == "np.float64":
            v = np.float64(2.0)
        elif label == "np.bool_":
            v = np.bool_(True)
        elif label == "Fraction":
            v = fractions.Fraction(2)
        elif label == "Decimal":
            v = decimal.Decimal("2")
        elif label == "np.int8-1":
            v = np.int8(-1)
        elif label == "np.uint64-max":
            v = np.uint64(2**64 - 1)
        elif label == "np.array0d":
            v = np.array(2)
        elif label == "np.array1":
            v = np.array([2])
        yield label, v


def fam_api(rec, quick):
    import inspect

    import numpy as np

    import memplan
    from memplan import examples

    g = examples.qkv_attention()
    p = memplan.plan(g, streams=2)
    plan_kw = [k for k, prm in inspect.signature(memplan.plan_graph).parameters.items()
               if prm.kind is inspect.Parameter.KEYWORD_ONLY]
    accepted = []
    for kw in plan_kw + ["bogus_option", "time_limit_s", "timelimit"]:
        for label, v in bad_values():
            extra = {}
            if kw in ("max_events", "memory_budget", "event_us"):
                extra = {"streams": 2}
            if kw == "device_capacity":
                extra = {"devices": 2}
            r = guarded(rec, "api-plan", f"plan({kw}={label})", lambda: memplan.plan(g, **extra, **{kw: v}), seconds=60)
            if r is not None:
                accepted.append(f"plan {kw}={label}")
                with contextlib.suppress(Exception):
                    memplan.verify(g, r)
    for kw in ("max_streams", "max_events", "cost_model", "bogus"):
        for label, v in bad_values():
            r = guarded(rec, "api-opt", f"graph_optimize({kw}={label})",
                        lambda: memplan.graph_optimize(g, **{kw: v}), seconds=60)
            if r is not None:
                accepted.append(f"graph_optimize {kw}={label}")
    for label, v in bad_values():
        r = guarded(rec, "api-opt", f"graph_optimize(g, {label})", lambda: memplan.graph_optimize(g, v), seconds=60)
        if r is not None:
            accepted.append(f"graph_optimize pos={label}")
    for kw in ("fused_groups", "bogus"):
        for label, v in bad_values():
            r = guarded(rec, "api-verify", f"verify({kw}={label})", lambda: memplan.verify(g, p, **{kw: v}) or "ok")
            if r is not None:
                accepted.append(f"verify {kw}={label}")
    for args in ((g,), (g, p, True), (None, p), (g, None), ("g.json", "p.json"), (p, g), (g, p.to_dict()),
                 (g, {**p.to_dict(), "arena_bytes": np.int64(p.arena_bytes)})):
        guarded(rec, "api-verify", f"verify{tuple(type(a).__name__ for a in args)}", lambda: memplan.verify(*args))
    print("  accepted:", ", ".join(accepted), flush=True)
    return accepted


# ---------------------------------------------------------------- runtime

def runtime_mutants(g, p):
    """(label, Plan) built with dataclasses.replace (no plan_from_dict in between: an executor takes a Plan object)."""
    import dataclasses

    import numpy as np
    rep = dataclasses.replace
    out = [("as is", p)]
    A = p.arena_bytes
    for lab, v in (("arena-1", A - 1), ("arena-256", A - 256), ("arena0", 0), ("arena-huge", 2**62), ("arena+1", A + 1),
                   ("arena-neg", -1), ("arena-np", np.int64(A)), ("arena-float", float(A)), ("arena-bool", True),
                   ("arena-str", str(A))):
        out.append((lab, rep(p, arena_bytes=v)))
    for lab, v in (("streams+5", p.streams + 5), ("streams1", 1), ("streams0", 0), ("streams-1", -1),
                   ("streams-huge", 2**40), ("streams-np", np.int64(p.streams)), ("streams-float", float(p.streams)),
                   ("streams-True", True)):
        out.append((lab, rep(p, streams=v)))
    arena_ts = [i for i, t in enumerate(p.tensors) if t[1] is not None]
    for i in arena_ts[:3] + arena_ts[-2:]:
        tid, off, size = p.tensors[i]
        for lab, v in (("neg", -256), ("past", A), ("end-1", A - size + 1), ("huge", 2**62), ("odd", off + 1),
                       ("np", np.int64(off)), ("float", float(off)), ("None", None), ("str", str(off))):
            ts = list(p.tensors)
            ts[i] = (tid, v, size)
            out.append((f"offset {tid} {lab}", rep(p, tensors=tuple(ts))))
        for lab, v in (("size0", 0), ("size*2", size * 2 + 256), ("size-neg", -1)):
            ts = list(p.tensors)
            ts[i] = (tid, off, v)
            out.append((f"{lab} {tid}", rep(p, tensors=tuple(ts))))
    out.append(("tensors-short", rep(p, tensors=p.tensors[1:])))
    out.append(("tensors-dup", rep(p, tensors=p.tensors + p.tensors[:1])))
    out.append(("order-short", rep(p, order=p.order[1:])))
    out.append(("order-dup", rep(p, order=p.order + p.order[-1:])))
    out.append(("order-stream-past", rep(p, order=tuple((n, p.streams + 2) for n, _s in p.order))))
    out.append(("order-stream-neg", rep(p, order=tuple((n, -1) for n, _s in p.order))))
    out.append(("order-stream-np", rep(p, order=tuple((n, np.int64(s)) for n, s in p.order))))
    out.append(("order-stream-float", rep(p, order=tuple((n, float(s)) for n, s in p.order))))
    if p.events:
        a, b = p.events[0]
        out.append(("event-unknown", rep(p, events=p.events + (("nope", b),))))
        out.append(("event-reversed", rep(p, events=((b, a),) + p.events[1:])))
        out.append(("event-self", rep(p, events=((a, a),) + p.events[1:])))
    out.append(("devices2", rep(p, devices=2)))
    out.append(("devices0", rep(p, devices=0)))
    out.append(("alignment-huge", rep(p, alignment=2**40)))
    out.append(("alignment-3", rep(p, alignment=3)))
    out.append(("alignment-0", rep(p, alignment=0)))
    out.append(("graph-name", rep(p, graph="other")))
    return out


def fam_runtime(rec, quick):
    import memplan

    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from runtime import binding, layout, step
    from runtime.emulate import emulate
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=0), L.make_inputs(cfg, seed=1)
    import fake_cuda

    class MP:   # a minimal monkeypatch for fake_cuda.install
        def __init__(self):
            self.undo = []

        def setitem(self, d, k, v):
            self.undo.append((d, k, d.get(k, MP)))
            d[k] = v

        def setattr(self, obj, name, v, raising=True):
            self.undo.append((obj, name, getattr(obj, name, MP)))
            setattr(obj, name, v)

        def delitem(self, d, k, raising=True):
            if k in d:
                self.undo.append((d, k, d[k]))
                del d[k]

        def restore(self):
            for o, k, v in reversed(self.undo):
                if isinstance(o, dict):
                    if v is MP:
                        o.pop(k, None)
                    else:
                        o[k] = v
                elif v is MP:
                    delattr(o, k)
                else:
                    setattr(o, k, v)

    for sched_label, p in (("serial", memplan.plan(g)), ("ms", step.plan_step(g, L.multi_stream_schedule(g), batch=1))):
        ref = None
        for label, mp in runtime_mutants(g, p):
            case = f"{sched_label} {label}"
            try:
                memplan.verify(g, mp)
                safe = True
            except memplan.MemplanError:
                safe = False
            b = guarded(rec, "runtime-bind", f"bind {case}", lambda: binding.bind(g, mp))
            guarded(rec, "runtime-layout", f"layout {case}", lambda: layout.layout(g, mp))
            guarded(rec, "runtime-program", f"program {case}", lambda: step.program_at(g, mp, lambda n, _t: 1 << 20))
            r = guarded(rec, "runtime-emulate", f"emulate {case}", lambda: emulate(g, mp, w, inp, poison=True)[0],
                        seconds=120)
            if label == "as is":
                ref = r
            elif r is not None and ref is not None and not safe:
                same = all((r[k] == ref[k]).all() or (r[k] != r[k]).all() for k in ref)
                print(f"  emulate ran an unsafe plan ({case}): outputs {'same' if same else 'DIFFER'}", flush=True)
            if b is not None and not safe and label not in ("odd",) and "odd" not in label:
                print(f"  bind accepted a plan verify refuses: {case}", flush=True)
            m = MP()
            try:
                fake_cuda.install(m)
                from runtime.executor import Executor

                def run_exec():
                    ex = Executor(g, mp, weights=w, inputs=inp, check_plan=False)
                    ex.run()
                    return ex.read("logits")
                guarded(rec, "runtime-executor", f"Executor {case}", run_exec, seconds=120)
                guarded(rec, "runtime-executor", f"Executor(check) {case}",
                        lambda: Executor(g, mp, weights=w, inputs=inp), seconds=120)
            finally:
                m.restore()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="files,sparse,onnx,api,runtime")
    args = ap.parse_args()
    rec = Recorder()
    t0 = time.time()
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="hostile60_") as tmp:
        try:
            for fam in args.only.split(","):
                {"files": lambda: fam_files(rec, tmp, args.quick), "sparse": lambda: fam_sparse(rec, tmp, args.quick),
                 "onnx": lambda: fam_onnx(rec, tmp, args.quick),
                 "api": lambda: fam_api(rec, args.quick), "runtime": lambda: fam_runtime(rec, args.quick)}[fam]()
                print(f"[{time.time() - t0:.0f}s] after {fam}: tried " + ", ".join(
                    f"{k} {v}" for k, v in sorted(rec.tried.items())) + f"; defects {len(rec.defects)}", flush=True)
        finally:
            os.chdir(here)
            subprocess.run(["chmod", "-R", "u+rwx", tmp])
    print(f"total {sum(rec.tried.values())} inputs, {len(rec.defects)} distinct defects, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
