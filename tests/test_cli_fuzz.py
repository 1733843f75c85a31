"""Fuzz every verb and every option: exit 0, or exit 2 with exactly one line on stderr — never a traceback.

Random values of every kind (numbers, negative, NaN, infinity, 10**30, empty, unicode, paths under
a temporary folder of every kind) go into every option of every verb, in-process (Typer's
CliRunner) for speed. Each run must finish within a time bound, and a refused run must leave the
folder as it was.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cli_support import inside, run, snapshot
from convarith.layer import OPS

SECONDS = 10.0

NUMBERS = ["0", "1", "2", "3", "-1", "-5", "nan", "inf", "-inf", "1e-9", "1.5", str(10**30), "", " ", "٣", "x", "∞"]
SIZES = ["4", "5x5", "1x4x4", "2x3x3", "1x1x5x5", "3x6", "0x4", "4x0", "-3", "1e3", str(10**30), "2x2x2x2x2x2", ""]
PER_AXIS = ["1", "2", "3", "2,1", "3x1", "1x1x1", "0", "-2", str(10**30), "", "a"]
PADDINGS = [
    "0",
    "1",
    "1:2,0",
    "-1",
    "2:-1",
    "same",
    "same_tf",
    "valid",
    "full",
    "causal",
    "same_upper",
    "bogus",
    "1:2:3",
]
TEXT = st.text(max_size=6)
VALUE_FILES = [
    "good.csv",
    "plane.npy",
    "kernel.npy",
    "ragged.csv",
    "complex.npy",
    "empty.csv",
    "missing.npy",
    "adir",
    "/",
    "",
]
OUT_PATHS = [
    "out.gif",
    "out.png",
    "out.svg",
    "out.npz",
    "out.mtx",
    "out.md",
    "out.html",
    "frames",
    "newdir",
    "",
    "/",
    ".",
    "adir",
    "afile.txt",
    "afile.txt/x.png",
    "missing/x.png",
    "/proc/convarith.png",
    "ünï.svg",
    "out.jpeg",
    "x" * 300 + ".png",
]


def _value(kind: str) -> st.SearchStrategy[str]:
    base = {
        "num": st.sampled_from(NUMBERS),
        "size": st.sampled_from(SIZES),
        "axis": st.sampled_from(PER_AXIS),
        "pad": st.sampled_from(PADDINGS),
        "mode": st.sampled_from(["zeros", "reflect", "replicate", "circular", "mirror", ""]),
        "framework": st.sampled_from(["torch", "none", "jax", ""]),
        "view": st.sampled_from(["direct", "scatter", "up"]),
        "style": st.sampled_from(["guide", "flat", "x"]),
        "frames": st.sampled_from(["png", "svg", "gif"]),
        "backend": st.sampled_from(["auto", "torch", "numpy", "caffe"]),
        "only": st.sampled_from(["no_padding_no_strides", "padding_strides", "nope"]),
        "in-file": st.sampled_from(VALUE_FILES),
        # random text stays relative ("r" + text): never a path outside the temporary folder
        "out-path": st.one_of(st.sampled_from(OUT_PATHS), TEXT.map(lambda t: "r" + t.replace("/", "_"))),
    }[kind]
    if kind in ("out-path", "in-file"):
        return base
    # mostly meaningful values, so that a run gets past its first option; random text a quarter of the time
    extra = [st.integers(-3, 40).map(str)] if kind == "num" else []
    return st.one_of(base, base, base, TEXT, *extra)


LAYER = {
    "--input": "size",
    "-i": "size",
    "--kernel-size": "axis",
    "-k": "axis",
    "--out-channels": "num",
    "--stride": "axis",
    "--padding": "pad",
    "--dilation": "axis",
    "--groups": "num",
    "--output-padding": "axis",
    "--padding-mode": "mode",
    "--ceil-mode": "",
    "--no-ceil-mode": "",
    "--count-include-pad": "",
    "--no-count-include-pad": "",
    "--divisor-override": "num",
    "--framework": "framework",
}
VERBS: dict[str, dict[str, str]] = {
    "shape": {**LAYER, "--bias": "", "--no-bias": "", "--json": ""},
    "solve": {
        "--input": "size",
        "-i": "size",
        "--output": "size",
        "-o": "size",
        "--kernel-size": "axis",
        "-k": "axis",
        "--stride": "axis",
        "--padding": "pad",
        "--dilation": "axis",
        "--output-padding": "axis",
        "--ceil-mode": "",
        "--max-kernel": "num",
        "--max-stride": "num",
        "--max-dilation": "num",
        "--top": "num",
        "--json": "",
    },
    "explain": {
        **LAYER,
        "--symbolic": "",
        "--no-symbolic": "",
        "--markdown": "out-path",
        "--html": "out-path",
        "--json": "",
    },
    "matrix": {
        **LAYER,
        "--weights": "in-file",
        "--seed": "num",
        "--output": "out-path",
        "-o": "out-path",
        "--memory-budget": "num",
        "--json": "",
    },
    "animate": {
        **LAYER,
        "--output": "out-path",
        "-o": "out-path",
        "--view": "view",
        "--numeric": "",
        "--seed": "num",
        "--input-values": "in-file",
        "--kernel-values": "in-file",
        "--style": "style",
        "--fps": "num",
        "--frames": "frames",
    },
    "draw-matrix": {**LAYER, "--output": "out-path", "-o": "out-path", "--transpose": "", "--seed": "num"},
    # the expensive verbs run on a leash: gallery with one small item, tour without pictures
    "gallery": {"--out": "out-path", "--style": "style", "--fps": "num", "--only": "only"},
    "tour": {"--out": "out-path", "--backend": "backend", "--no-pictures": "", "--style": "style"},
}
LEASH = {"gallery": ["--only", "no_padding_no_strides"], "tour": ["--no-pictures", "--backend", "numpy"]}
SMALL_OPS = [op for op in OPS if op.endswith(("1d", "2d"))]


GOOD = {
    "num": ["1", "2", "3"],
    "size": ["4", "5x5", "1x4x4"],
    "axis": ["1", "2"],
    "pad": ["0", "1", "same_tf", "valid"],
    "mode": ["zeros", "replicate"],
    "framework": ["torch", "none"],
    "view": ["direct"],
    "style": ["guide", "flat"],
    "frames": ["png", "svg"],
    "backend": ["numpy"],
    "only": ["no_padding_no_strides"],
    "in-file": ["good.csv"],
    "out-path": ["out.svg", "newdir"],
}
"""Values that usually work: a clean run goes deep (numbers drawn, files written) instead of stopping early."""


@st.composite
def command(draw: st.DrawFn, verb: str) -> list[str]:
    options = VERBS[verb]
    args = [verb]
    if verb not in ("gallery", "tour"):
        args.append(draw(st.one_of(st.sampled_from(SMALL_OPS), st.sampled_from(OPS), TEXT)))
        # usually a runnable core, so that the other options are reached
        if draw(st.integers(0, 5)):
            args += ["-i", draw(st.sampled_from(["4x4", "5", "2x5x5", "6"])), "-k", draw(st.sampled_from(["2", "3"]))]
            if verb == "solve":
                args[-2:] = ["-o", draw(st.sampled_from(["2", "3", "4x4"]))]
            if verb in ("animate", "draw-matrix"):
                args += ["-o", draw(st.sampled_from(["out.svg", "out.png", "out.gif", "frames"]))]
    args += LEASH.get(verb, [])
    clean = draw(st.integers(0, 3)) == 0
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)):
        kind = options[flag]
        args.append(flag)
        if kind:
            args.append(draw(st.sampled_from(GOOD[kind]) if clean else _value(kind)))
    return args


def _prepare(root: Path) -> None:
    (root / "afile.txt").write_text("user data\n")
    (root / "adir").mkdir()
    (root / "adir" / "keep.txt").write_text("user data\n")
    (root / "good.csv").write_text("1,2,3,4\n5,6,7,8\n9,10,11,12\n13,14,15,16\n")
    (root / "ragged.csv").write_text("1,2\n3\n")
    (root / "empty.csv").write_text("")
    np.save(root / "plane.npy", np.ones((4, 4)))
    np.save(root / "kernel.npy", np.ones((1, 1, 3, 3)))
    np.save(root / "complex.npy", np.ones((2, 2), dtype=complex))


def _check(args: list[str]) -> None:
    top = sorted(os.listdir("/"))
    with tempfile.TemporaryDirectory() as folder, inside(Path(folder)) as root:
        _prepare(root)
        before = snapshot(root)
        start = time.perf_counter()
        result = run(*args)  # re-raises any exception but SystemExit: a traceback is a failure
        elapsed = time.perf_counter() - start
        event(f"exit {result.code}")
        assert result.code in (0, 2), (args, result.code, result.out[-500:], result.err)
        assert "Traceback" not in result.out + result.err, args
        assert elapsed < SECONDS, (args, elapsed)
        if result.code == 2:
            assert result.err.count("\n") == 1 and result.err.startswith("error: "), (args, result.err)
            assert snapshot(root) == before, args
        else:
            assert result.err == "", (args, result.err)
    assert sorted(os.listdir("/")) == top, args


@settings(max_examples=120)
@given(args=st.sampled_from(["shape", "solve", "explain", "matrix"]).flatmap(command))
def test_fuzz_number_verbs(args: list[str]) -> None:
    _check(args)


@settings(max_examples=100)
@given(args=st.sampled_from(["animate", "draw-matrix"]).flatmap(command))
def test_fuzz_picture_verbs(args: list[str]) -> None:
    _check(args)


@settings(max_examples=25)
@given(args=st.sampled_from(["gallery", "tour"]).flatmap(command))
def test_fuzz_gallery_and_tour(args: list[str]) -> None:
    _check(args)


@settings(max_examples=40)
@given(
    args=st.lists(
        st.one_of(
            TEXT, st.sampled_from([*(v for v in VERBS if v not in LEASH), "--help", "--version", "-i", "-k", "-o"])
        ),
        max_size=6,
    )
)
def test_fuzz_anything(args: list[str]) -> None:
    _check(args)
