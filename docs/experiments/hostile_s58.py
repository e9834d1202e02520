# ruff: noqa: B023  (every lambda here runs inside the loop that made it, under ``guarded``)
"""Session 58 (hostile58): hostile inputs in the areas round 57's driver (``hostile_s57.py``) did not reach.

Why: memplan is checked after the session on hostile inputs nobody shows us. Round 57 fuzzed the CLI and JSON
loaders; this driver feeds the public dataclasses, the torch.export (.pt2) and ONNX importers, every ``memplan.plan``
keyword, and the output paths of the writing commands. Every case must end in a ``memplan.errors`` exception
(library) or one line and exit 2 (CLI): never a raw traceback, a hang, an input changed, a partial or stray output,
or memory that grows with a size the file only declares.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/hostile_s58.py [--quick] [--only objects,pt2,...]``.
Everything is written under one temporary directory, removed at the end (a sparse 50 GB file takes no disk).
It reuses round 57's recorder and CLI runner (``guarded``: a MemplanError is a refusal, anything else a defect;
``cli_case``: ``cli.main`` in process, exit 0 or 2, one error line, inputs byte-identical). Peak memory of a case is
measured in a child process (``resource.getrusage(RUSAGE_CHILDREN)``, one child per case). Results:
``hostile_s58.txt``.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import importlib.util
import io
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("hostile_s57", os.path.join(HERE, "hostile_s57.py"))
s57 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(s57)
Recorder, guarded, cli_case, sha = s57.Recorder, s57.guarded, s57.cli_case, s57.sha

import numpy as np  # noqa: E402

HOSTILE = [None, True, 0, -1, -(2**63), 2**70, 1.5, float("nan"), float("inf"), "", "x", "\x00", [], [1], [[1]],
           {}, {"a": [1]}, {1, 2}, (), np.zeros((2, 2)), np.int64(3), np.array(["a"]), b"x", object()]


# ---------------------------------------------------------------- objects: public dataclasses

def fam_objects(rec, quick):
    """Each public dataclass memplan exports, one field at a time set to each hostile value, then hash, ==, !=,
    repr, pickle, copy and deepcopy; equal values must hash equal."""
    import memplan
    from memplan.examples import qkv_attention
    from memplan.problem import BufferProblem
    from memplan.solvers import solve

    g = qkv_attention()
    p = memplan.plan(g, streams=2)
    s = memplan.serial_schedule(g)
    bp = BufferProblem(np.array([256, 512]), np.array([0, 1]), np.array([1, 3]), 256)
    good = {"Event": memplan.Event("a", "b"), "Schedule": s, "HappensBefore": memplan.build_happens_before(g, s),
            "Tensor": g.tensors[0], "Node": g.nodes[0], "Graph": g, "Plan": p, "Simulation": memplan.simulate(g, p),
            "CostModel": memplan.CostModel(), "DeviceSplit": memplan.split_devices(g, 2),
            "Reuse": next(iter(memplan.reuse_table(g, p).values())), "BufferProblem": bp,
            "Solution": solve(bp, "greedy"), "Planned": memplan.plan_graph(g)}
    ops = {"hash": hash, "eq-copy": lambda o: o == copy.copy(o), "eq-deepcopy": lambda o: o == copy.deepcopy(o),
           "ne": lambda o: o != 5, "repr": repr, "pickle": lambda o: o == pickle.loads(pickle.dumps(o)),
           "set": lambda o: len({o, copy.deepcopy(o)})}

    def consistent(o):
        twin = copy.deepcopy(o)
        if o == twin and hash(o) != hash(twin):
            raise AssertionError("equal values hash differently")
        if hash(o) != hash(o):
            raise AssertionError("hash changes between calls")

    for cname, obj in good.items():
        variants = [("as made", obj)]
        for f in dataclasses.fields(obj):
            if f.init:
                for v in (HOSTILE[::3] if quick else HOSTILE):
                    variants.append((f"{f.name}={v!r:.20}", (f.name, v)))
        for label, what in variants:
            if isinstance(what, tuple):
                made = guarded(rec, "objects", f"{cname}({label})", lambda: dataclasses.replace(obj, **{what[0]: what[1]}))
                if made is None:
                    continue
            else:
                made = what
            for oname, op in ops.items():
                guarded(rec, "objects", f"{oname} {cname}({label})", lambda: op(made), seconds=20)
            guarded(rec, "objects", f"hash/eq consistency {cname}({label})", lambda: consistent(made), seconds=20)
            for m in derived_members(type(made)):   # every property and method that needs no argument
                guarded(rec, "objects", f"{cname}({label}).{m}", lambda: call_member(made, m), seconds=20)
        if cname == "Plan":
            for dec in HOSTILE + [0, 4, 100, 101, 2**40]:
                guarded(rec, "objects", f"Plan.ratio_text({dec!r:.20})", lambda: obj.ratio_text(dec), seconds=20)


def derived_members(cls):
    """Public properties, and methods callable with no argument, of ``cls``, but those that write files."""
    import inspect
    names = []
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") or name in ("save", "replace"):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, property):
            names.append(name)
        elif callable(value) and not isinstance(static, (staticmethod, classmethod)):
            try:
                params = list(inspect.signature(value).parameters.values())[1:]
            except (TypeError, ValueError):
                continue
            if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
                names.append(name)
    return names


def call_member(obj, name):
    value = getattr(obj, name)
    return value() if callable(value) and not isinstance(getattr(type(obj), name, None), property) else value


# ---------------------------------------------------------------- pt2

def peak_child(argv, seconds=120, cwd=None):
    """Run ``python -m memplan ARGV`` in a child; (exit code, stderr, peak RSS MB of that child, seconds)."""
    code = ("import resource, subprocess, sys, time; t = time.time(); "
            "r = subprocess.run([sys.executable, '-m', 'memplan'] + sys.argv[1:], capture_output=True, text=True); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, "
            "round(time.time() - t, 1)); sys.stderr.write(r.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=seconds, cwd=cwd)
    rc, mb, secs = r.stdout.split()
    return int(rc), r.stderr, int(mb), float(secs)


def sparse(path, size, head=b"", tail=b""):
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size - len(tail))
        f.seek(size - len(tail))
        f.write(tail)


def rezip(members, path, compression=zipfile.ZIP_STORED, raw_names=None):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    if raw_names:   # names zipfile will not write as given: patched in the bytes (same length)
        with open(path, "rb") as f:
            b = f.read()
        for old, new in raw_names.items():
            b = b.replace(old.encode(), new.encode())
        with open(path, "wb") as f:
            f.write(b)


def fam_pt2(rec, tmp, rng, quick, rss):
    import torch

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return torch.relu(self.lin(x)) + 1

    good = os.path.join(tmp, "m.pt2")
    torch.export.save(torch.export.export(M(), (torch.zeros(2, 4),)), good)
    with open(good, "rb") as f:
        b = f.read()
    with zipfile.ZipFile(good) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    top = next(iter(members)).split("/")[0]
    out = os.path.join(tmp, "pt2.json")
    mp = os.path.join(tmp, "mut.pt2")
    # sizes and headers: peak memory in a child per case
    big = os.path.join(tmp, "big.pt2")
    for label, head, tail in [("zeros", b"", b""), ("zip magic then zeros", s57_zip_magic(), b""),
                              ("a real .pt2 then zeros", b, b""), ("zeros then a real .pt2", b"", b),
                              ("garbage head", os.urandom(4096), b"")]:
        sparse(big, 50 << 30, head, tail)
        rec.count("pt2-size")
        try:
            rc, err, mb, secs = peak_child(["import", big, "-o", out, "-q"], seconds=600)
        except subprocess.TimeoutExpired:
            rec.defect("pt2-size", label, "hang > 600 s")
            continue
        rss.append(f"pt2 50 GB sparse, {label}: exit {rc}, peak RSS {mb} MB, {secs} s: {err.strip()[:110]}")
        if rc != 2 or len(err.strip().splitlines()) != 1:
            rec.defect("pt2-size", label, f"exit {rc}: {err[-200:]}")
        if mb > 300:
            rec.defect("pt2-size", label, f"peak RSS {mb} MB before refusing a 50 GB sparse file ({secs} s)")
    os.unlink(big)
    # truncations and flips
    muts = [("good", b)]
    for cut in sorted({0, 1, 4, 30, 100, len(b) // 3, len(b) // 2, len(b) - 100, len(b) - 22, len(b) - 1}):
        muts.append((f"truncate {cut}", b[:cut]))
    for _ in range(15 if quick else 60):
        i = rng.randrange(len(b))
        muts.append((f"flip {i}", b[:i] + bytes([b[i] ^ (1 << rng.randrange(8))]) + b[i + 1:]))
    muts.append(("garbage 1 MB", bytes(rng.getrandbits(8) for _ in range(1 << 16)) * 16))
    for label, data in muts:
        with open(mp, "wb") as f:
            f.write(data)
        cli_case(rec, f"pt2 {label}", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")
    # member names: path traversal, absolute, drive, backslashes, NUL, AOTInductor, duplicates, very long
    names = ["../evil", "/abs/evil", "C:evil", f"{top}/../../evil", f"{top}\\..\\..\\evil", f"{top}/data/aotinductor/x.so",
             f"{top}/./data/x", f"{top}//data/x", "a" * 60000, f"{top}/\u202eevil", f"{top}/.." , "..", "."]
    for name in names:
        case_members = dict(members)
        case_members[name] = b"x"
        rezip(case_members, mp)
        cli_case(rec, f"pt2 member {name[:40]!r}", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")
    for old in list(members)[:3]:   # a member given twice (zipfile warns, writes both)
        with contextlib.suppress(Exception), open(mp, "wb") as f, zipfile.ZipFile(f, "w") as z:
            import warnings as _w
            with _w.catch_warnings():
                _w.simplefilter("ignore")
                for n, d in members.items():
                    z.writestr(n, d)
                z.writestr(old, b"{}")
        cli_case(rec, f"pt2 duplicate {old}", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")
    # NUL in a member name, patched in place
    case_members = dict(members)
    case_members[f"{top}/evilXname"] = b"x"
    rezip(case_members, mp, raw_names={f"{top}/evilXname": f"{top}/evil\x00name"})
    cli_case(rec, "pt2 member with NUL", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")
    # tensor metadata of the program (model.json) and the weights' config: absurd sizes, strides, offsets, dtypes
    model_json = f"{top}/models/model.json"
    doc = json.loads(members[model_json])
    absurd = [2**31, 2**62, 2**63 - 1, -1, -(2**63), 0, 2**64, 2**40]
    for tname in list(doc["graph_module"]["graph"]["tensor_values"])[:4 if quick else 8]:
        for key in ("sizes", "strides", "storage_offset", "dtype"):
            for v in absurd[:4] if quick else absurd:
                d = json.loads(members[model_json])
                meta = d["graph_module"]["graph"]["tensor_values"][tname]
                if key in ("sizes", "strides"):
                    meta[key] = [{"as_int": v}] + meta[key][1:] if meta[key] else [{"as_int": v}]
                elif key == "storage_offset":
                    meta[key] = {"as_int": v}
                else:
                    meta[key] = v
                rezip({**members, model_json: json.dumps(d).encode()}, mp)
                cli_case(rec, f"pt2 {tname}.{key}={v}", ["import", mp, "-o", out, "-q"], [mp], seconds=120,
                         family="pt2")
        d = json.loads(members[model_json])   # every dimension of a tensor at 2^32: its element count overflows int64
        d["graph_module"]["graph"]["tensor_values"][tname]["sizes"] = [{"as_int": 2**32}] * 3
        rezip({**members, model_json: json.dumps(d).encode()}, mp)
        cli_case(rec, f"pt2 {tname} sizes 3 x 2^32", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")
    # members that are symlinks (unix mode in external_attr), to /etc/passwd and to another member
    for label, target in [("symlink member to /etc/passwd", b"/etc/passwd"), ("symlink member to ../x", b"../x")]:
        with open(mp, "wb") as f, zipfile.ZipFile(f, "w") as z:
            for n, d in members.items():
                z.writestr(n, d)
            info = zipfile.ZipInfo(f"{top}/extra/link")
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
        cli_case(rec, f"pt2 {label}", ["import", mp, "-o", out, "-q"], [mp], seconds=120, family="pt2")
    # zip bombs: deflated members of zeros (a weight, one torch never uses, one nested in the sample inputs);
    # peak memory may grow with the file's own size, not with what a member only declares
    rec.count("pt2-bomb")
    _, _, base_mb, _ = peak_child(["import", good, "-o", out, "-q"], seconds=300)
    rss.append(f"pt2 the plain program ({len(b)} bytes): peak RSS {base_mb} MB (torch imported)")
    bomb_data = b"\0" * (256 << 20)
    for label, extra in [("deflated 256 MB member", {f"{top}/extra/bomb.bin": bomb_data}),
                         ("deflated 1 GB member", {f"{top}/extra/bomb.bin": bomb_data * 4}),
                         ("deflated 256 MB weight", None), ("nested zip of 256 MB", "nested"),
                         ("stored 256 MB member", "stored")]:
        case_members = dict(members)
        if extra == "nested":
            bio = io.BytesIO()
            with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("inner/bomb", bomb_data)
            case_members[f"{top}/data/sample_inputs/model.pt"] = bio.getvalue()
        elif extra == "stored":
            case_members[f"{top}/extra/bomb.bin"] = bomb_data
        elif extra is None:
            weight = next((n for n in members if "/data/weights/" in n and not n.endswith(".json")), None)
            if weight is None:
                continue
            case_members[weight] = bomb_data
        else:
            case_members.update(extra)
        rezip(case_members, mp, zipfile.ZIP_STORED if extra == "stored" else zipfile.ZIP_DEFLATED)
        rec.count("pt2-bomb")
        try:
            rc, err, mb, secs = peak_child(["import", mp, "-o", out, "-q"], seconds=300)
        except subprocess.TimeoutExpired:
            rec.defect("pt2-bomb", label, "hang > 300 s")
            continue
        rss.append(f"pt2 {label} ({os.path.getsize(mp)} bytes on disk): exit {rc}, peak RSS {mb} MB, {secs} s: "
                   f"{err.strip()[:100]}")
        if rc not in (0, 2) or (rc == 2 and len(err.strip().splitlines()) != 1):
            rec.defect("pt2-bomb", label, f"exit {rc}: {err[-200:]}")
        if mb > base_mb + 2 * (os.path.getsize(mp) >> 20) + 100:
            rec.defect("pt2-bomb", label, f"peak RSS {mb} MB from a {os.path.getsize(mp)}-byte file (the plain program: "
                       f"{base_mb} MB)")
    # symlinks and special files as the model
    link = os.path.join(tmp, "link.pt2")
    for label, target in [("symlink to the good .pt2", good), ("symlink to /dev/zero", "/dev/zero"),
                          ("dangling symlink", os.path.join(tmp, "nowhere.pt2")), ("symlink loop", link),
                          ("symlink to a directory", tmp), ("symlink to /proc/self/mem", "/proc/self/mem")]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink(target, link)
        cli_case(rec, f"pt2 {label}", ["import", link, "-o", out, "-q"], [good], seconds=120, family="pt2")
    os.unlink(link)
    fifo = os.path.join(tmp, "fifo.pt2")
    os.mkfifo(fifo)
    cli_case(rec, "pt2 FIFO", ["import", fifo, "-o", out, "-q"], [], seconds=30, family="pt2")
    os.unlink(fifo)
    # the output over the input, through a symlink and a hard link
    shutil.copy(good, mp)
    os.symlink(mp, link)
    hard = os.path.join(tmp, "hard.pt2")
    os.link(mp, hard)
    for o in (mp, link, hard, os.path.join(tmp, ".", "mut.pt2")):
        cli_case(rec, f"pt2 -o {os.path.basename(o)} (the input)", ["import", mp, "-o", o, "-q"], [mp], seconds=120,
                 family="pt2")
    for p_ in (link, hard):
        os.unlink(p_)
    # library: from a path given as bytes, Path, int, None
    from memplan.importers.torch.load import load_exported
    for arg in (None, 3, b"m.pt2", [good], good + "\x00", "", "/", os.path.join(tmp, "missing.pt2")):
        guarded(rec, "pt2-lib", f"load_exported({arg!r:.40})", lambda: load_exported(arg), seconds=60)


def s57_zip_magic():
    return b"PK\x03\x04"


# ---------------------------------------------------------------- onnx

def fam_onnx(rec, tmp, rng, quick):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from memplan.importers import import_onnx

    def model(nodes, inputs, outputs, inits=(), name="h"):
        g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    def vi(name, dims, dtype=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, dtype, dims)

    base = model([helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                  helper.make_node("Relu", ["h"], ["y"], name="relu")],
                 [vi("x", [1, 4])], [vi("y", [1, 4])], [numpy_helper.from_array(np.zeros((4, 4), np.float32), "w")])
    b = base.SerializeToString()
    cases = [("good", b)]
    for cut in sorted({1, 2, 3, 7, 15, 31, len(b) // 4, len(b) // 2, 3 * len(b) // 4, len(b) - 2, len(b) - 1}):
        cases.append((f"truncate {cut}", b[:cut]))
    cases += [("huge length varint", b"\x3a\xff\xff\xff\xff\x0f" + b[:20]),   # field 7 (graph) of 4 GiB
              ("nested 100k deep", b"\x3a\x80\x80\x04" * 1000), ("zeros", b"\0" * 4096)]
    for _ in range(20 if quick else 60):
        i = rng.randrange(len(b))
        cases.append((f"flip {i}", b[:i] + bytes([b[i] ^ (1 << rng.randrange(8))]) + b[i + 1:]))

    def mutant(label, fn, m=base):
        mm = copy.deepcopy(m)
        fn(mm)
        cases.append((label, mm.SerializeToString()))

    dim = lambda mm, i: mm.graph.input[0].type.tensor_type.shape.dim[i]  # noqa: E731
    for v in (2**31, 2**32, 2**62, 2**63 - 1, -1, -(2**63), 0):
        mutant(f"input dim {v}", lambda mm: dim(mm, 1).__setattr__("dim_value", v))
    mutant("product overflows int64", lambda mm: mm.graph.input[0].type.tensor_type.shape.dim.extend(
        [helper.make_tensor_value_info("_", 1, [2**32]).type.tensor_type.shape.dim[0]] * 3))
    for v in (2**62, 2**63 - 1, -5):
        mutant(f"initializer dim {v}", lambda mm: mm.graph.initializer[0].dims.__setitem__(0, v))
    mutant("initializer dims overflow", lambda mm: mm.graph.initializer[0].dims.extend([2**40, 2**40]))
    mutant("output dim 2^62", lambda mm: mm.graph.output[0].type.tensor_type.shape.dim[1].__setattr__("dim_value", 2**62))
    mutant("cycle mm<->relu", lambda mm: mm.graph.node[0].input.__setitem__(0, "y"))
    mutant("self loop", lambda mm: mm.graph.node[1].input.__setitem__(0, "y"))
    mutant("two nodes write h", lambda mm: mm.graph.node[1].output.__setitem__(0, "h"))
    mutant("node writes the graph input", lambda mm: mm.graph.node[1].output.__setitem__(0, "x"))
    mutant("node writes the initializer", lambda mm: mm.graph.node[1].output.__setitem__(0, "w"))
    mutant("graph output listed twice", lambda mm: mm.graph.output.append(copy.deepcopy(mm.graph.output[0])))
    mutant("graph output is an input", lambda mm: mm.graph.output.append(vi("x", [1, 4])))
    mutant("graph output is the initializer", lambda mm: mm.graph.output.append(vi("w", [4, 4])))
    mutant("graph input listed twice", lambda mm: mm.graph.input.append(copy.deepcopy(mm.graph.input[0])))
    mutant("initializer listed twice", lambda mm: mm.graph.initializer.append(copy.deepcopy(mm.graph.initializer[0])))
    mutant("input shadows initializer", lambda mm: mm.graph.input.append(vi("w", [4, 4])))
    mutant("empty output name", lambda mm: mm.graph.node[1].output.__setitem__(0, ""))
    mutant("duplicate node outputs", lambda mm: mm.graph.node[0].output.extend(["h"]))
    mutant("graph output nobody writes", lambda mm: mm.graph.output.append(vi("ghost", [1])))
    mutant("elem type string", lambda mm: mm.graph.input[0].type.tensor_type.__setattr__("elem_type", 8))
    mutant("elem type 0", lambda mm: mm.graph.input[0].type.tensor_type.__setattr__("elem_type", 0))
    mutant("no shape", lambda mm: mm.graph.input[0].type.tensor_type.ClearField("shape"))
    mutant("sequence type", lambda mm: mm.graph.input[0].type.ClearField("tensor_type") or
           mm.graph.input[0].type.sequence_type.elem_type.tensor_type.__setattr__("elem_type", 1))
    mutant("reversed order (topologically sortable)", lambda mm: mm.graph.node.reverse())
    mutant("node name NUL", lambda mm: setattr(mm.graph.node[0], "name", "a\x00b"))
    mutant("10k-char names", lambda mm: setattr(mm.graph.node[0], "name", "n" * 10000))
    # a long chain of Relus and a 3-cycle through three nodes
    chain = model([helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"r{i}") for i in range(2000)],
                  [vi("t0", [1, 4])], [vi("t2000", [1, 4])])
    cases.append(("chain of 2000", chain.SerializeToString()))
    cyc = model([helper.make_node("Relu", ["c"], ["a"], name="ra"), helper.make_node("Relu", ["a"], ["b"], name="rb"),
                 helper.make_node("Add", ["b", "x"], ["c"], name="rc")], [vi("x", [1, 4])], [vi("c", [1, 4])])
    cases.append(("3-cycle", cyc.SerializeToString()))
    wide = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [2**20] * 5)], [vi("y", [2**20] * 5)])
    cases.append(("5 dims of 2^20", wide.SerializeToString()))
    path = os.path.join(tmp, "m.onnx")
    out = os.path.join(tmp, "m.json")
    for label, data in cases:
        with open(path, "wb") as f:
            f.write(data)
        got = guarded(rec, "onnx-lib", label, lambda: import_onnx(path), seconds=60)
        if os.environ.get("H58_SHOW") and got is not None:
            print(f"  accepted {label}: {len(got.nodes)} nodes, sizes {[t.size for t in got.tensors][:6]}")
        cli_case(rec, f"onnx {label}", ["import", path, "-o", out, "-q"], [path], seconds=60, family="onnx-cli")
    # every keyword of import_onnx, and the model given as other than a path
    with open(path, "wb") as f:
        f.write(b)
    kw_values = HOSTILE + [1, 2**31, 2**63, "N", {"N": 2**62}, {"N": -1}, {"": 1}, {1: 1}, {"y": "x"}, {"nope": "y"},
                           tmp, os.path.join(tmp, "missing"), "/etc", 255, 3]
    for kw in ("batch", "dims", "name", "alignment", "progress", "outputs", "external_data_dir", "constant_initializers"):
        for v in (kw_values[::2] if quick else kw_values):
            guarded(rec, "onnx-lib", f"import_onnx({kw}={v!r:.30})", lambda: import_onnx(path, **{kw: v}), seconds=60)
    for m_arg in (None, 3, b, bytearray(b), base, [path], path.encode(), path + "\x00", "", tmp, "/dev/zero"):
        guarded(rec, "onnx-lib", f"import_onnx({m_arg!r:.30})", lambda: import_onnx(m_arg), seconds=60)
    # memplan import's own options
    for flag in ("--batch", "--dim", "--name", "--alignment"):
        for v in ("0", "-1", "1", "2", "x", "", "9" * 40, "2.5", "nan", "inf", "N=2", "N=-1", "N=x", "=3", "N=" + "9" * 30,
                  "x=1=2", "\u202e", "-", "--q", "1e3", "0x10", "256", "255", "N=2,M=3"):
            cli_case(rec, f"import {flag} {v!r}", ["import", path, "-o", out, "-q", flag, v], [path], seconds=60,
                     family="onnx-cli")
    # external data: locations escaping the folder, through symlinks, special files, offsets and lengths
    import onnx.external_data_helper as edh
    folder = os.path.join(tmp, "model")
    os.makedirs(folder, exist_ok=True)
    outside = os.path.join(tmp, "outside.bin")
    with open(outside, "wb") as f:
        f.write(b"\0" * 64)
    os.symlink(outside, os.path.join(folder, "link.bin"))
    os.symlink(tmp, os.path.join(folder, "updir"))
    os.symlink("/dev/zero", os.path.join(folder, "zero.bin"))
    os.mkfifo(os.path.join(folder, "fifo.bin"))
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    with open(os.path.join(folder, "w.bin"), "wb") as f:
        f.write(b"\0" * 64)
    locs = ["w.bin", "../outside.bin", outside, "link.bin", "updir/outside.bin", "zero.bin", "fifo.bin", "sub",
            "m.onnx", "m.json", "", ".", "./w.bin", "sub/../w.bin", "sub/../../outside.bin", "w.bin\x00x", "~/x",
            "\\..\\outside.bin", "C:\\x", "w.bin/", "a" * 5000, "/proc/self/environ", "/dev/stdin", "%2e%2e/outside.bin"]
    extra_keys = [{}, {"offset": "-1"}, {"offset": str(2**63)}, {"length": str(2**62)}, {"length": "-5"},
                  {"offset": "x"}, {"length": "64", "offset": "60"}, {"checksum": "zz"}]
    mp = os.path.join(folder, "m.onnx")
    for loc in locs:
        for keys in (extra_keys if loc == "w.bin" else [{}]):
            mm = copy.deepcopy(base)
            edh.convert_model_to_external_data(mm, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
            t = mm.graph.initializer[0]
            for e in t.external_data:
                if e.key == "location":
                    e.value = loc
            for k, v in keys.items():
                t.external_data.add(key=k, value=v)
            with open(mp, "wb") as f:
                f.write(mm.SerializeToString())
            with open(os.path.join(folder, "m.json"), "w") as f:
                f.write("{}")
            guarded(rec, "onnx-lib", f"location {loc[:30]!r} {keys}", lambda: import_onnx(mp), seconds=30)
            cli_case(rec, f"onnx location {loc[:30]!r} {keys}",
                     ["import", mp, "-o", os.path.join(folder, "m.json"), "-q"], [mp, outside], seconds=30,
                     family="onnx-cli")
    # the model itself through a symlink, and -o over it
    link = os.path.join(tmp, "link.onnx")
    with open(path, "wb") as f:
        f.write(b)
    os.symlink(path, link)
    for o in (path, link):
        cli_case(rec, f"onnx -o {os.path.basename(o)} (the input)", ["import", link, "-o", o, "-q"], [path],
                 family="onnx-cli", expect=2)
    _ = onnx


# ---------------------------------------------------------------- plan keywords

def fam_options(rec, quick):
    """``memplan.plan(graph, **{keyword: value})`` for every keyword ``plan_graph`` takes, each hostile value; the
    plan returned must verify."""
    import inspect

    import memplan
    from memplan.examples import qkv_attention

    g = qkv_attention()
    kws = [k for k, p in inspect.signature(memplan.plan_graph).parameters.items() if p.kind is p.KEYWORD_ONLY]
    values = HOSTILE + [2, 3, "auto", "greedy", "cpsat", 10**12, 1e-9, -0.0, 256, 255, lambda *a: None, print, "2",
                        np.float64("nan"), np.int8(2), True]
    for kw in kws + ["solver", "schedule", "unknown_option"]:
        for v in (values[::2] if quick else values):
            def run():
                p = memplan.plan(g, **{kw: v})
                memplan.verify(g, p)
                return p
            guarded(rec, "options", f"plan({kw}={v!r:.30})", run, seconds=60)
    for args in [(g, None, "greedy", 5), (None,), ("g",), (g.to_dict(),), (g, memplan.serial_schedule(g), None)]:
        guarded(rec, "options", f"plan(*{args!r:.50})", lambda: memplan.plan(*args), seconds=60)
    # hostile schedules given to plan
    from memplan.schedule import Event
    order = tuple(n.id for n in g.nodes)
    for label, sched in [("order dict", lambda: memplan.Schedule(order={}, streams=())),
                         ("streams None", lambda: memplan.Schedule(order, None)),
                         ("streams too short", lambda: memplan.Schedule(order, (0,))),
                         ("streams negative", lambda: memplan.Schedule(order, (-1,) * len(order))),
                         ("streams 2^40", lambda: memplan.Schedule(order, (2**40,) * len(order))),
                         ("streams floats", lambda: memplan.Schedule(order, (0.5,) * len(order))),
                         ("order reversed", lambda: memplan.Schedule(order[::-1], (0,) * len(order))),
                         ("order repeated", lambda: memplan.Schedule(order[:1] * len(order), (0,) * len(order))),
                         ("event unknown", lambda: memplan.Schedule(order, (0,) * len(order), (Event("a", "zz"),))),
                         ("event backwards", lambda: memplan.Schedule(order, tuple(i % 2 for i in range(len(order))),
                                                                      (Event(order[-1], order[0]),))),
                         ("events of tuples", lambda: memplan.Schedule(order, (0,) * len(order), (("a", "b"),))),
                         ("events None", lambda: memplan.Schedule(order, (0,) * len(order), None)),
                         ("numpy order", lambda: memplan.Schedule(np.array(order), np.zeros(len(order), int))),
                         ("a Plan as schedule", lambda: memplan.plan(g)), ("a graph as schedule", lambda: g)]:
        def run():
            p = memplan.plan(g, sched())
            memplan.verify(g, p)
            memplan.simulate(g, sched())
        guarded(rec, "options", f"plan(g, schedule {label})", run, seconds=60)
    # combinations that interact
    combos = [dict(streams=2, max_events=0), dict(streams="auto", memory_budget=0), dict(streams=1, devices=2),
              dict(devices=2, device_capacity=[1, 2, 3]), dict(devices=2, device_capacity=0),
              dict(devices=2, alignment=3), dict(alignment=2**40), dict(streams=2**31), dict(devices=2**20),
              dict(time_limit=0, solver="cpsat"), dict(workers=0, solver="cpsat"), dict(workers=-1, solver="cpsat"),
              dict(seed=-1, solver="cpsat"), dict(seed=2**70, solver="cpsat"), dict(check=False, streams=3),
              dict(fused_groups=True, streams=3), dict(memory_budget=1, streams="auto"),
              dict(cost_model=lambda: memplan.CostModel(event_us=-1), streams="auto"),
              dict(cost_model=lambda: memplan.CostModel(event_us=float("nan")), streams="auto"),
              dict(cost_model=lambda: memplan.CostModel(hbm_bytes_per_us=0), streams="auto"),
              dict(cost_model=lambda: memplan.CostModel(event_us={}), streams="auto"),
              dict(progress=lambda: None), dict(progress=lambda *a: 1 / 0)]
    for kw in combos:
        def run():
            made = {k: (v() if k == "cost_model" else v) for k, v in kw.items()}   # (a CostModel may refuse itself)
            p = memplan.plan(g, **made)
            memplan.verify(g, p)
        guarded(rec, "options", f"plan({kw})", run, seconds=60)


# ---------------------------------------------------------------- outputs of draw / trace / plan / import / show

def fam_outputs(rec, tmp, quick):
    """Each writing command's output path: the input, links to it, missing folders, a directory, /dev/full, '',
    '-'; an existing output must be unchanged when the command fails, and no temporary file may be left beside it."""
    import memplan
    import memplan.examples
    from memplan.examples import qkv_attention

    d = os.path.join(tmp, "out")
    os.makedirs(d, exist_ok=True)
    gpath, ppath = os.path.join(d, "g.json"), os.path.join(d, "p.json")
    memplan.save_graph(qkv_attention(), gpath)
    plan0 = memplan.plan(qkv_attention())
    plan0.save(ppath)
    os.symlink(gpath, os.path.join(d, "glink.json"))
    os.link(ppath, os.path.join(d, "phard.json"))
    targets = [gpath, ppath, os.path.join(d, "glink.json"), os.path.join(d, "phard.json"), os.path.join(d, ".", "g.json"),
               os.path.join(d, "missing", "x.out"), d, "/dev/full", "", "-", os.path.join(d, "x\udcff.out"),
               os.path.join(gpath, "x.out"), "/proc/self/mem", os.path.join(d, "ok.out")]
    commands = [["trace", gpath, ppath, "-o"], ["plan", gpath, "-o"], ["plan", gpath, "--devices", "2", "--graph-out",
                os.path.join(d, "split.json"), "-o"], ["draw", gpath, ppath, "-o"], ["example", "-o"]]
    for cmd in commands:
        for t in targets:
            suffix = {"draw": ".png"}.get(cmd[0], ".json")
            tt = t[:-4] + suffix if t.endswith(".out") else t
            before = set(os.listdir(d))
            r = cli_case(rec, f"{cmd[0]} -o {tt!r}", cmd + [tt], [x for x in (gpath, ppath) if x in cmd], seconds=120,
                         family="outputs")
            if memplan.load_plan(ppath) != plan0:   # (plan -o p.json: p.json is no input of plan; put it back)
                plan0.save(ppath)
            after = set(os.listdir(d))
            stray = sorted(after - before - {os.path.basename(tt), "split.json"})
            if stray and cmd[0] != "example":
                rec.defect("outputs", f"{cmd[0]} -o {tt!r}", f"left {stray} beside the output (exit {r and r[0]})")
            for x in stray:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(d, x)) if os.path.isfile(os.path.join(d, x)) else shutil.rmtree(os.path.join(d, x))
    # --graph-out the same as -o, or the input
    for go, o in [("same.json", "same.json"), (gpath, "x.json"), ("x2.json", gpath)]:
        cli_case(rec, f"plan --graph-out {go} -o {o}", ["plan", gpath, "--devices", "2", "--graph-out",
                 os.path.join(d, go), "-o", os.path.join(d, o)], [gpath], family="outputs", expect=2)
    # an existing output kept whole when the command fails
    keep = os.path.join(d, "keep.json")
    with open(keep, "w") as f:
        f.write("precious")
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        f.write("{")
    for cmd in (["plan", bad, "-o", keep], ["trace", gpath, bad, "-o", keep], ["draw", gpath, bad, "-o", keep],
                ["import", bad, "-o", keep]):
        cli_case(rec, " ".join(cmd[:1]) + " failing over an existing output", cmd, [keep], family="outputs", expect=2)
    # library writers: path types
    from memplan.viz.trace import save_trace
    g, p = memplan.load_graph(gpath), memplan.load_plan(ppath)
    for arg in (None, 3, b"x.json", gpath, ppath, d, "", os.path.join(d, "missing", "x.json"), "/dev/full"):
        guarded(rec, "outputs-lib", f"save_trace({arg!r:.40})", lambda: save_trace(g, p, arg))
        guarded(rec, "outputs-lib", f"save_plan({arg!r:.40})", lambda: memplan.save_plan(p, arg))
        guarded(rec, "outputs-lib", f"save_graph({arg!r:.40})", lambda: memplan.save_graph(g, arg))
    # the memory map and the trace from the library: every figure option, format and path
    from memplan.viz.memmap import render_memory_map, save_memory_map
    from memplan.viz.trace import trace_json
    for kw in ("time", "title", "size", "fmt", "nope"):
        for v in HOSTILE + ["svg", "pdf", "PNG", (1e9, 1e9), (0, 0), (-1, 2), (float("nan"), 1), ("a", "b"), (1,),
                            "\u202e" * 1000, "$\\frac{", "$x^{", "a" * 100000]:
            guarded(rec, "outputs-lib", f"render_memory_map({kw}={v!r:.30})",
                    lambda: render_memory_map(g, p, **{kw: v}), seconds=60)
    for arg in (None, 3, b"x.png", os.path.join(d, "x.png"), os.path.join(d, "x.gif"), gpath[:-5] + ".png", d,
                os.path.join(d, "missing", "x.png"), "/dev/full", ".png", "-", os.path.join(d, "x.PNG")):
        guarded(rec, "outputs-lib", f"save_memory_map({arg!r:.40})", lambda: save_memory_map(g, p, arg), seconds=60)
    for gg, pp in [(g, p), (g, memplan.plan(memplan.examples.diamond())), (memplan.examples.diamond(), p), (None, p),
                   (g, None), (g, dataclasses.replace(p, order=()))]:
        guarded(rec, "outputs-lib", "trace_json of a mismatched pair", lambda: trace_json(gg, pp))
        guarded(rec, "outputs-lib", "render of a mismatched pair", lambda: render_memory_map(gg, pp), seconds=60)
    if sha(gpath) is None or memplan.load_graph(gpath) != g:
        rec.defect("outputs-lib", "input graph", "the input graph was overwritten by a library writer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="objects,options,outputs,onnx,pt2")
    ap.add_argument("--seed", type=int, default=58)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rec = Recorder()
    rss: list[str] = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="hostile58_") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)   # (relative outputs land here)
        try:
            for fam in args.only.split(","):
                if fam == "objects":
                    fam_objects(rec, args.quick)
                elif fam == "options":
                    fam_options(rec, args.quick)
                elif fam == "outputs":
                    fam_outputs(rec, tmp, args.quick)
                elif fam == "onnx":
                    fam_onnx(rec, tmp, rng, args.quick)
                elif fam == "pt2":
                    fam_pt2(rec, tmp, rng, args.quick, rss)
                print(f"[{time.time() - t0:.0f}s] after {fam}: " + ", ".join(f"{k} {v}" for k, v in sorted(rec.tried.items()))
                      + f"; defects {len(rec.defects)}", flush=True)
        finally:
            os.chdir(cwd)
    for line in rss:
        print(line)
    print(f"tried {sum(rec.tried.values())} inputs in {time.time() - t0:.0f}s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(rec.tried.items())))
    print("accepted (ran through): " + ", ".join(f"{k} {v}" for k, v in sorted(rec.accepted.items())))
    print(f"defects (distinct): {len(rec.defects)}")


if __name__ == "__main__":
    main()
