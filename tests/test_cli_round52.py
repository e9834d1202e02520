"""Round 52: ``bench`` JSON rows of one key, and a table of hostile command lines (``cli.py``, ``files``, ``io``).

Each hostile case runs ``memplan.cli.main`` in-process and must end as the CLI's contract says: exit 0 or one line
``memplan: error: ...`` and exit 2, no traceback, every file that was there before byte for byte the same (an input
never overwritten, an output never half written), and no temporary file left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

import memplan
from memplan import examples
from memplan.cli import main

# ---- bench planners: two problems of one name ---------------------------------------------------------------------

CSV = "id,lower,upper,size\nb1,0,3,4\nb2,3,9,4\n"


def _bench(capsys, *argv: str) -> tuple[int, list, str]:
    code = main(["bench", "planners", "--solvers", "greedy", "--json", "-", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else out), err


def test_two_minimalloc_problems_of_one_letter_are_refused_before_any_solve(tmp_path, capsys):
    """``--minimalloc D`` with ``A.1048576.csv`` and ``A.2097152.csv`` (or ``A.csv``): both problems are named ``A``,
    and the JSON held two rows ``{"problem": "A", "streams": 1, "solver": "greedy"}`` told apart by nothing (the row
    key is problem, streams, solver), ``--only A`` ran both. Now one line naming both files, exit 2, no row."""
    folder = tmp_path / "mm" / "challenging"
    folder.mkdir(parents=True)
    (folder / "A.1048576.csv").write_text(CSV)
    (folder / "A.2097152.csv").write_text(CSV)
    code, out, err = _bench(capsys, "--minimalloc", str(tmp_path / "mm"), "--corpus", "minimalloc")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "two problems named 'A'" in err and "A.1048576.csv" in err and "A.2097152.csv" in err
    (folder / "A.2097152.csv").rename(folder / "B.2097152.csv")   # (distinct names: one row each)
    code, rows, err = _bench(capsys, "--minimalloc", str(tmp_path / "mm"), "--corpus", "minimalloc")
    assert code == 0 and [r["problem"] for r in rows] == ["A", "B"], err


def test_a_graph_file_named_as_a_corpus_problem_is_refused(tmp_path, capsys):
    """``--corpus examples --graph mine/chain.json``: two problems ``chain`` (corpus ``examples`` and ``file``), whose
    rows repeated the key (problem, streams, solver) and which ``--only chain`` could not choose between; a ``--graph
    A.json`` beside minimalloc's ``A`` alike. Refused, naming the file; a selection that leaves one out runs."""
    mine = tmp_path / "chain.json"
    memplan.save_graph(examples.bundled()["chain"], str(mine))
    code, out, err = _bench(capsys, "--corpus", "examples", "--graph", str(mine))
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "two problems named 'chain'" in err and f"--graph {mine}" in err
    code, rows, err = _bench(capsys, "--corpus", "examples", "--graph", str(mine), "--only", "qkv")
    assert code == 0 and {r["problem"] for r in rows} == {"qkv"}, err


def test_bench_planners_json_rows_have_one_key_each(capsys):
    """Every row of a run is one (problem, streams, solver): the key the documentation gives."""
    code, rows, err = _bench(capsys, "--corpus", "examples,random", "--sizes", "40")
    assert code == 0, err
    keys = [(r["problem"], r["streams"], r["solver"]) for r in rows]
    assert len(keys) == len(set(keys)) and len(keys) > 10


# ---- hostile command lines -----------------------------------------------------------------------------------------

NONUTF = os.fsdecode(b"g\xff.json")   # (a file name that is not UTF-8: surrogates in argv)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder with a graph, its plan and hostile files; read-only for the tests (each case checks it)."""
    d = tmp_path_factory.mktemp("cli52")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        graph = examples.bundled()["qkv"]
        memplan.save_graph(graph, "g.json")
        memplan.plan(graph).save("p.json")
        text = open("g.json").read()
        plan = json.load(open("p.json"))
        files = {
            "empty.json": "", "nan.json": text.replace('"size": 4096', '"size": NaN', 1),
            "inf.json": text.replace('"size": 4096', '"size": Infinity', 1),
            "huge.json": text.replace('"size": 4096', '"size": ' + "9" * 5000, 1),
            "hugef.json": text.replace('"size": 4096', '"size": 1e400', 1),
            "deep.json": "[" * 100_000 + "]" * 100_000, "deepobj.json": '{"a":' * 50_000 + "1" + "}" * 50_000,
            "list.json": "[1, 2]", "null.json": "null", "types.json": json.dumps(dict(json.loads(text), tensors="x")),
            "dupkey.json": text.rstrip()[:-1] + ', "name": "other"}', "bom.json": "\ufeff" + text,
            "trail.json": text + " junk", "pnan.json": json.dumps(plan).replace('"arena_bytes": ', '"arena_bytes": NaN, "x": ', 1),
            "pneg.json": json.dumps(dict(plan, arena_bytes=-1)), "phuge.json": json.dumps(dict(plan, arena_bytes=10**30)),
            "pfloat.json": json.dumps(dict(plan, arena_bytes=1.5)), "pbool.json": json.dumps(dict(plan, streams=True)),
            "pwrong.json": json.dumps(dict(plan, order="x")), "c.csv": CSV,
            "cnan.csv": "id,lower,upper,size\nb1,0,3,NaN\n", "cneg.csv": "id,lower,upper,size\nb1,0,3,-4\n",
            "chuge.csv": "id,lower,upper,size\nb1,0,3," + "9" * 400 + "\n",
        }
        for name, body in files.items():
            with open(name, "w") as f:
                f.write(body)
        with open("junk.json", "wb") as f:
            f.write(bytes(range(256)) * 3)
        with open("utf16.json", "wb") as f:
            f.write(text.encode("utf-16"))
        os.mkdir("adir")
        os.mkdir("ro")
        os.chmod("ro", 0o555)
        os.symlink("g.json", "lg.json")
        os.symlink("p.json", "lp.json")
        os.symlink("nowhere", "dangling.json")
        os.link("g.json", "hg.json")
        shutil.copy("g.json", NONUTF)
        os.symlink(".", "ldir")   # (a directory link: ldir/g.json is g.json)
        with open("a.json", "w") as f:
            f.write("{}")
        os.link("a.json", "ha.json")
        os.symlink("a.json", "sa.json")
        os.mkfifo("fifo.json")   # (read, it would block: refused as no regular file)
    finally:
        os.chdir(cwd)
    return d


#: (command line, the words its one error line must hold; None: it must succeed)
BAD_FILES = [
    ("plan missing.json -o o.json", ["missing.json", "no such file"]),
    ("plan adir -o o.json", ["adir", "directory"]),
    ("plan dangling.json -o o.json", ["dangling.json"]),
    ("plan /proc/self/mem -o o.json", ["/proc/self/mem"]),   # (open succeeds, read fails: EIO)
    ("plan empty.json -o o.json", ["empty.json", "empty"]),
    ("plan junk.json -o o.json", ["junk.json"]),
    ("plan utf16.json -o o.json", ["utf16.json", "UTF-16"]),
    ("plan bom.json -o o.json", ["bom.json", "byte-order mark"]),
    ("plan nan.json -o o.json", ["nan.json", "NaN"]),
    ("plan inf.json -o o.json", ["inf.json", "Infinity"]),
    ("plan huge.json -o o.json", ["huge.json", "digits"]),
    ("plan hugef.json -o o.json", ["hugef.json", "1e400"]),
    ("plan deep.json -o o.json", ["deep.json", "nested"]),       # (not a RecursionError)
    ("plan deepobj.json -o o.json", ["deepobj.json", "nested"]),
    ("plan list.json -o o.json", ["list.json", "object"]),
    ("plan null.json -o o.json", ["null.json", "object"]),
    ("plan types.json -o o.json", ["types.json", "tensors"]),
    ("plan dupkey.json -o o.json", ["dupkey.json", "'name'", "twice"]),
    ("plan trail.json -o o.json", ["trail.json"]),
    ("plan fifo.json -o o.json", ["fifo.json", "regular file"]),
    ("plan /dev/zero -o o.json", ["/dev/zero", "regular file"]),
    ("plan - -o o.json", ["standard input"]),
    ("csv fifo.json -o o.csv", ["fifo.json"]),
    ("bench planners --solvers greedy --graph fifo.json", ["--graph fifo.json"]),
    ("verify g.json pnan.json", ["pnan.json", "NaN"]),
    ("verify g.json pneg.json", ["pneg.json", "arena_bytes"]),
    ("verify g.json phuge.json", ["phuge.json", "arena_bytes"]),
    ("verify g.json pfloat.json", ["pfloat.json", "integer"]),
    ("verify g.json pbool.json", ["pbool.json", "streams"]),
    ("verify g.json pwrong.json", ["pwrong.json", "order"]),
    ("verify g.json g.json", ["g.json", "graph"]),
    ("verify p.json p.json", ["p.json", "plan"]),
    ("show deep.json", ["deep.json", "nested"]),
    ("show adir", ["adir"]),
    ("simulate g.json deepobj.json", ["deepobj.json"]),
    ("trace g.json empty.json -o t.json", ["empty.json"]),
    ("draw g.json junk.json -o m.png", ["junk.json"]),
    ("csv missing.csv -o o.csv", ["missing.csv"]),
    ("csv junk.json -o o.csv", ["junk.json"]),
    ("csv cnan.csv -o o.csv", ["cnan.csv", "size"]),
    ("csv cneg.csv -o o.csv", ["cneg.csv", "negative"]),
    ("csv chuge.csv -o o.csv", ["chuge.csv", "size"]),
    ("import missing.onnx -o o.json", ["missing.onnx"]),
    ("import adir -o o.json", ["adir"]),
    ("import junk.json -o o.json", ["junk.json", "model format"]),
    ("bench planners --solvers greedy --graph deep.json", ["--graph deep.json", "nested"]),
    ("bench planners --solvers greedy --graph adir", ["--graph adir"]),
    ("bench planners --minimalloc g.json --corpus minimalloc --solvers greedy", ["--minimalloc g.json"]),
    ("bench planners --minimalloc adir --corpus minimalloc --solvers greedy", ["--minimalloc adir"]),
]

BAD_OUTPUTS = [
    ("plan g.json -o g.json", ["-o g.json", "input"]),
    ("plan g.json -o ./g.json", ["-o ./g.json", "input"]),
    ("plan g.json -o .//g.json", ["-o .//g.json", "input"]),
    ("plan g.json -o adir/../g.json", ["-o adir/../g.json", "input"]),
    ("plan g.json -o lg.json", ["-o lg.json", "input"]),        # (a symbolic link to the input)
    ("plan lg.json -o g.json", ["-o g.json", "input"]),
    ("plan g.json -o hg.json", ["-o hg.json", "input"]),        # (a hard link)
    ("plan g.json -o ldir/g.json", ["-o ldir/g.json", "input"]),          # (through a directory link)
    ("plan g.json -o ldir/ldir/./hg.json", ["input"]),
    ("plan g.json -o g.json/x.json", ["not a directory"]),
    ("plan g.json -o o.json/", ["slash"]),
    ("plan g.json -o /dev/null", ["regular file"]),
    ("plan g.json -o a.json --devices 2 --graph-out ha.json", ["same file"]),
    ("plan g.json -o a.json --devices 2 --graph-out sa.json", ["same file"]),
    ("plan g.json -o a.json --devices 2 --graph-out ./ldir/a.json", ["same file"]),
    ("csv c.csv -o ldir/c.csv", ["input"]),
    ("import g.json -o g.json", ["input"]),
    ("bench planners --solvers greedy --graph ldir/g.json --json hg.json", ["--json hg.json", "input"]),
    ("bench planners --solvers greedy --graph g.json --graph ldir/g.json", ["twice"]),
    ("example -o g.json/ex", ["g.json/ex"]),
    ("plan g.json -o nodir/o.json", ["nodir"]),
    ("plan g.json -o ro/o.json", ["ro/o.json", "read-only"]),
    ("plan g.json -o adir", ["-o adir", "directory"]),
    ("plan g.json -o o.json --devices 2 --graph-out ./o.json", ["same file"]),
    ("plan g.json -o o.json --devices 2 --graph-out lg.json", ["--graph-out lg.json", "input"]),
    ("plan g.json -o - --graph-out -", ["stdout"]),
    ("trace g.json p.json -o lp.json", ["-o lp.json", "plan"]),
    ("trace g.json p.json -o ./hg.json", ["input"]),
    ("draw g.json p.json -o adir/../p.json", ["input"]),
    ("draw g.json p.json -o -", ["-o -"]),
    ("csv c.csv -o ./c.csv", ["input"]),
    ("csv c.csv -o ro/o.csv", ["read-only"]),
    ("example -o g.json", ["example -o g.json", "not a directory"]),
    ("example -o ro/ex", ["ro/ex", "read-only"]),
    ("example -o -", ["example -o -"]),
    ("example -o NONUTF", ["not a directory"]),
    ("bench planners --solvers greedy --graph g.json --json ./g.json", ["--json ./g.json", "input"]),
    ("bench planners --solvers greedy --graph g.json --json lg.json", ["--json lg.json", "input"]),
    ("bench planners --corpus examples --solvers greedy --json nodir/x.json", ["--json nodir/x.json"]),
    ("bench planners --corpus examples --solvers greedy --json adir", ["--json adir"]),
    ("bench devices --models tiny --json ro/x.json", ["--json ro/x.json", "read-only"]),
    ("bench scale --nodes 10 --json ro/x.json", ["--json ro/x.json"]),
    ("bench schedule --quick --json ro/x.json", ["--json ro/x.json"]),
]

BAD_OPTIONS = [
    ("plan g.json -o o.json --streams -1", ["--streams"]),
    ("plan g.json -o o.json --streams 0", ["--streams"]),
    ("plan g.json -o o.json --streams 99999999999999999999999", ["--streams"]),
    ("plan g.json -o o.json --streams abc", ["--streams"]),
    ("plan g.json -o o.json --streams 2 --streams 3", ["--streams", "twice"]),
    ("plan g.json -o o.json --time-limit -1", ["--time-limit"]),
    ("plan g.json -o o.json --time-limit 0", ["--time-limit"]),
    ("plan g.json -o o.json --time-limit nan", ["--time-limit"]),
    ("plan g.json -o o.json --time-limit inf", ["--time-limit"]),
    ("plan g.json -o o.json --time-limit 1e400", ["--time-limit"]),
    ("plan g.json -o o.json --seed -1", ["--seed"]),
    ("plan g.json -o o.json --seed 99999999999999999999999999", ["--seed"]),
    ("plan g.json -o o.json --workers 0", ["--workers"]),
    ("plan g.json -o o.json --workers 100000", ["--workers"]),
    ("plan g.json -o o.json --memory-budget -5", ["--memory-budget"]),
    ("plan g.json -o o.json --memory-budget 1e30", ["--memory-budget"]),
    ("plan g.json -o o.json --memory-budget 5X", ["--memory-budget"]),
    ("plan g.json -o o.json --memory-budget 0", ["memory budget"]),
    ("plan g.json -o o.json --max-events -1 --streams 2", ["--max-events"]),
    ("plan g.json -o o.json --max-events 3", ["--max-events", "--streams"]),
    ("plan g.json -o o.json --event-us nan --streams 2", ["--event-us"]),
    ("plan g.json -o o.json --event-us -1 --streams 2", ["--event-us"]),
    ("plan g.json -o o.json --devices 0 --graph-out s.json", ["--devices"]),
    ("plan g.json -o o.json --devices 2", ["--graph-out"]),
    ("plan g.json -o o.json --devices 99999999999 --graph-out s.json", ["--devices"]),
    ("plan g.json -o o.json --devices 100 --graph-out s.json", ["--devices 100"]),
    ("plan g.json -o o.json --memory-budget 100 --devices 2 --graph-out s.json", ["--memory-budget"]),
    ("plan g.json -o o.json --device-capacity 1,2,3", ["--device-capacity"]),
    ("plan g.json -o o.json --device-capacity 1,-1", ["--device-capacity"]),
    ("plan g.json -o o.json --device-capacity ,", ["--device-capacity"]),
    ("plan g.json -o o.json --alignment 3", ["--alignment"]),
    ("plan g.json -o o.json --alignment 0", ["--alignment"]),
    ("plan g.json -o o.json --alignment 128", ["alignment 128"]),
    ("plan g.json -o o.json --solver nope", ["--solver"]),
    ("plan g.json -o o.json --solver greedy --solver size", ["--solver", "twice"]),
    ("plan g.json -o o.json -o o2.json", ["-o", "twice"]),
    ("plan g.json -o o.json --str 2", ["unrecognized"]),
    ("plan g.json", ["-o"]),
    ("plan '' -o o.json", ["empty path"]),
    ("plan g.json -o ''", ["empty path"]),
    ("show p.json --top -1", ["--top"]),
    ("show p.json --top x", ["--top"]),
    ("show p.json --top 99999999999999999999999", ["--top"]),
    ("show p.json --top 5 --top 6", ["--top", "twice"]),
    ("simulate g.json p.json --event-us 1e400", ["--event-us"]),
    ("csv c.csv -o o.csv --capacity -1", ["--capacity"]),
    ("csv c.csv -o o.csv --capacity 1e400", ["--capacity"]),
    ("csv c.csv -o o.csv --capacity 0", ["capacity 0"]),
    ("csv c.csv -o o.csv --capacity 4 --capacity 5", ["--capacity", "twice"]),
    ("bench planners --corpus nope", ["--corpus"]),
    ("bench planners --corpus examples --solvers ''", ["--solvers"]),
    ("bench planners --corpus examples --solvers greedy,greedy", ["--solvers"]),
    ("bench planners --corpus examples --solvers greedy --only nope", ["--only", "'nope'"]),
    ("bench planners --corpus random --sizes 0 --solvers greedy", ["--sizes"]),
    ("bench planners --corpus random --sizes 100,0100 --solvers greedy", ["--sizes"]),
    ("bench planners --corpus random --sizes 99999999999 --solvers greedy", ["--sizes"]),
    ("bench planners --corpus llama --layers -1 --solvers greedy", ["--layers"]),
    ("bench planners --corpus examples --sizes 10 --solvers greedy", ["--sizes"]),      # (a part not chosen)
    ("bench planners --corpus examples --solvers greedy --time-limit 5", ["--time-limit"]),
    ("bench planners --solvers greedy --graph g.json --graph ./g.json", ["--graph ./g.json", "twice"]),
    ("bench schedule --quick --budget 0.5", ["--budget"]),
    ("bench schedule --quick --budget nan", ["--budget"]),
    ("bench schedule --quick --streams 0", ["--streams"]),
    ("bench scale --nodes", ["nothing to measure"]),
    ("bench scale --nodes 10 10", ["--nodes"]),
    ("bench scale --nodes -5", ["--nodes"]),
    ("bench scale --mode natural --wide 10", ["nothing to measure"]),
    ("bench devices --models tiny tiny", ["--models"]),
    ("bench devices --models tiny --devices 0", ["--devices"]),
    ("bench devices --models tiny --devices 9999", ["--devices"]),
    ("bench", ["SUITE"]),
    ("bench nope", ["SUITE"]),
    ("nope", ["COMMAND"]),
]

GOOD = [
    ("plan NONUTF -o o.json -q", None),
    ("plan g.json -o NONUTF2 -q", None),
    ("verify lg.json lp.json", None),
    ("show lp.json --graph hg.json --top 0", None),
]


def _snapshot(root: str) -> dict[str, str]:
    found = {}
    for where, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(where, name)
            if not os.path.islink(path) and os.path.isfile(path):
                with open(path, "rb") as f:
                    found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.mark.parametrize(("line", "words"), BAD_FILES + BAD_OUTPUTS + BAD_OPTIONS + GOOD,
                         ids=[c[0] for c in BAD_FILES + BAD_OUTPUTS + BAD_OPTIONS + GOOD])
def test_hostile_command_line(folder, monkeypatch, capsys, line, words):
    import shlex

    if line == "draw g.json junk.json -o m.png":
        from needs import need

        need("matplotlib")   # (without it, draw says so before it reads the plan)
    monkeypatch.chdir(folder)
    argv = [NONUTF if a == "NONUTF" else os.fsdecode(b"o\xfe.json") if a == "NONUTF2" else a for a in shlex.split(line)]
    before = _snapshot(str(folder))
    try:
        code = main(argv)
    except SystemExit as exc:   # (argparse's usage errors and --help)
        code = exc.code
    out, err = capsys.readouterr()
    after = _snapshot(str(folder))
    assert "Traceback" not in err, err
    assert {k: v for k, v in after.items() if k in before} == before, "a file that was there changed"
    new = sorted(set(after) - set(before))
    assert not [n for n in new if ".memplan-" in n or n.endswith(".tmp")], new
    if words is None:
        assert code == 0, err
    else:
        assert (code, len(err.splitlines())) == (2, 1), err
        assert err.startswith("memplan: error: "), err
        assert all(w in err for w in words), (words, err)
        assert not new, f"a refused run wrote {new}"
    for name in new:   # (a good run's output: the next case starts from the same folder)
        os.remove(os.path.join(folder, name))


# ---- bench --json: documented, plain JSON -------------------------------------------------------------------------


def _documented_fields() -> dict[str, set[str]]:
    """docs/benchmarks.md's table of ``--json`` fields: suite -> the field names of its third column."""
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "benchmarks.md")) as f:
        text = f.read()
    section = text.split("## The `--json` rows", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = line.split(" | ")
        if len(cells) == 3 and cells[0].startswith("| `"):
            fields = re.sub(r"\([^()]*(\([^()]*\)[^()]*)*\)", "", cells[2])   # (the names inside parentheses are values)
            found[cells[0].strip("| `")] = set(re.findall(r"`([a-z_]+)`", fields))
    return found


def test_every_suites_json_fields_are_the_documented_ones(tmp_path, capsys, minimalloc_dir):
    """Each suite's rows hold exactly the fields docs/benchmarks.md lists for it (they were documented nowhere)."""
    documented = _documented_fields()
    runs = {"planners": [["--minimalloc", minimalloc_dir, "--corpus", "minimalloc,examples", "--only", "A,diamond",
                          "--solvers", "ggml,size"]],
            "schedule": [["--quick", "--layers", "1"]],
            "scale": [["--nodes", "30", "--mode", "serial", "auto"]],
            "devices": [["--models", "tiny", "--devices", "2"]]}
    assert set(documented) == set(runs)
    for suite, argvs in runs.items():
        keys: set[str] = set()
        for argv in argvs:
            out = tmp_path / f"{suite}.json"
            assert main(["bench", suite, *argv, "--json", str(out)]) == 0, capsys.readouterr().err
            keys |= {k for row in json.loads(out.read_text()) for k in row}
        assert keys == documented[suite], (suite, keys ^ documented[suite])
    capsys.readouterr()


def test_bench_json_with_a_nan_is_refused_not_written(tmp_path, capsys, monkeypatch):
    """A suite row holding a NaN was written as ``NaN``, which is no JSON (``jq``, a browser refuse the file); now one
    error line and no file (an old one stays as it was)."""
    from memplan.benchmarks import devices

    monkeypatch.setattr(devices, "run", lambda args: [{"model": "x", "balance": float("nan")}])
    out = tmp_path / "d.json"
    out.write_text("old")
    code = main(["bench", "devices", "--models", "tiny", "--json", str(out)])
    err = capsys.readouterr().err
    assert (code, len(err.splitlines())) == (2, 1) and "not finite" in err, err
    assert out.read_text() == "old"


def test_hidden_files_in_the_minimalloc_folder_are_no_problems(tmp_path, capsys):
    """``._A.1048576.csv`` (the AppleDouble file macOS writes beside a copied file: binary) failed the whole run as
    "holds a NUL byte", and ``.csv`` ran as a problem named '' that ``--only`` cannot name; hidden files are left out,
    as ``challenging/*.csv`` in a shell leaves them out."""
    folder = tmp_path / "mm" / "challenging"
    folder.mkdir(parents=True)
    (folder / "A.1048576.csv").write_text(CSV)
    (folder / "._A.1048576.csv").write_bytes(b"\x00\x05\x16\x07" * 20)
    (folder / ".csv").write_text(CSV)
    code, rows, err = _bench(capsys, "--minimalloc", str(tmp_path / "mm"), "--corpus", "minimalloc")
    assert code == 0 and [r["problem"] for r in rows] == ["A"], err


# ---- Ctrl-C while the command imports the package, run through a link of another name ------------------------------


def test_ctrl_c_while_importing_through_a_link_to_the_script_is_one_line(tmp_path):
    """``ln -s /venv/bin/memplan ~/bin/mp; mp plan ...``: the process was not taken for the command (its script's name
    is ``mp``), so a Ctrl-C while the package imported was Python's KeyboardInterrupt traceback; the link's target
    names the script now: one line, exit 130, as ``memplan`` itself."""
    import sys

    from test_cli_round51 import _SITE, INTERRUPTED, PKG, _run

    (tmp_path / "sitecustomize.py").write_text(_SITE)
    script = tmp_path / "memplan"   # (the console script pip writes, by its name)
    script.write_text("import sys\nfrom memplan.cli import main\nsys.exit(main())\n")
    link = tmp_path / "mp"
    link.symlink_to(script)
    r = _run(str(tmp_path), 9, os.path.join(PKG, "__init__.py"), [str(link), "--help"])
    assert (r.returncode, r.stderr.strip()) == (130, INTERRUPTED), r.stderr
    from memplan import _interrupt

    other = tmp_path / "other.py"   # (a link to a program of another name stays a program importing memplan)
    other.write_text("")
    (tmp_path / "prog").symlink_to(other)
    for argv0, command in ((str(link), True), (str(tmp_path / "prog"), False), ("-c", False)):
        saved = sys.argv
        sys.argv = [argv0]
        try:
            assert _interrupt.command_process() is command, argv0
        finally:
            sys.argv = saved


#: a ``sitecustomize`` that registers an ``atexit`` callback in a file of its own (``late.py``): Python calls it as the
#: process ends, after the command is over; with SIG_FILE that file, a SIGINT comes there
_LATE = "def late():\n    x = 1\n    return x\n"


@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["show", "missing.json"], 2)])
def test_ctrl_c_while_python_shuts_down_is_one_line_and_130(tmp_path, argv, code):
    """A Ctrl-C once the command is over, while Python shuts down (``threading._shutdown``, an ``atexit`` callback such
    as ``cpsat``'s wait of up to 30 s for a solve a second Ctrl-C left running): the handler's SystemExit cannot end
    the process there, and Python printed "Exception ignored in atexit callback", a traceback and "SystemExit: 130"
    after the line, exit status still the command's. Now the line once and exit 130 at once."""
    from test_cli_round51 import _SITE, INTERRUPTED, _run

    (tmp_path / "late.py").write_text(_LATE)
    (tmp_path / "sitecustomize.py").write_text(_SITE + "import atexit, late\natexit.register(late.late)\n")
    r = _run(str(tmp_path), 2, str(tmp_path / "late.py"), ["-m", "memplan", *argv], cwd=str(tmp_path))   # (1: the def)
    lines = r.stderr.strip().splitlines()
    assert (r.returncode, lines[-1:]) == (130, [INTERRUPTED]) and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == (1 if code == 0 else 2), r.stderr   # (a failing command's own line, then this one)


def test_json_over_a_minimalloc_problem_names_the_file_once(tmp_path, capsys):
    """``--json D/challenging/A.1048576.csv``: "is the minimalloc problem A.1048576.csv D/challenging/A.1048576.csv",
    the file's name twice; now the problem's name and its path."""
    folder = tmp_path / "mm" / "challenging"
    folder.mkdir(parents=True)
    (folder / "A.1048576.csv").write_text(CSV)
    target = str(folder / "A.1048576.csv")
    code = main(["bench", "planners", "--minimalloc", str(tmp_path / "mm"), "--corpus", "minimalloc", "--solvers",
                 "greedy", "--json", target])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"is the minimalloc problem A {target}:" in err and err.count("A.1048576.csv") == 2, err   # (--json's, its)
    assert (folder / "A.1048576.csv").read_text() == CSV
