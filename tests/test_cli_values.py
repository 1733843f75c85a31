"""Bad numbers and bad value files: one line naming the flag, exit 2, no NumPy warning, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cli_support import assert_refused, inside, run, snapshot

ANIMATE = ["animate", "conv2d", "-i", "4x4", "-k", "3", "-o", "a.gif"]
MATRIX = ["matrix", "conv2d", "-i", "4x4", "-k", "3"]
DRAW = ["draw-matrix", "max_pool2d", "-i", "4x4", "-k", "2", "-o", "c.png"]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        *[([*MATRIX, "--memory-budget", v], "--memory-budget") for v in ("nan", "inf", "-inf", "-1", "0")],
        *[([*args, "--seed", "-5"], "--seed") for args in (MATRIX, ANIMATE, DRAW)],
        *[([*ANIMATE, "--fps", v], "--fps") for v in ("1e-9", "inf", "nan", "-2", "0", "1e9")],
        *[(["gallery", "--only", "no_padding_no_strides", "--out", "g", "--fps", v], "--fps") for v in ("inf", "nan")],
    ],
)
def test_bad_numbers_are_refused_before_any_work(args: list[str], flag: str, tmp_path: Path) -> None:
    with inside(tmp_path):
        assert_refused(run(*args), flag)
    assert list(tmp_path.iterdir()) == []


def test_memory_budget_refuses_a_matrix_too_large() -> None:
    err = assert_refused(
        run(*MATRIX[:3], "1x64x256x256", "-k", "3", "--out-channels", "64", "--memory-budget", "0.001"),
        ("--memory-budget", "--input", "-i", "-k"),
    )
    assert "GiB" in err or "budget" in err


def _files(root: Path) -> dict[str, Path]:
    """Value files of every broken kind (and a good one)."""
    files = {
        "non-numeric.csv": "1,2,3\n4,five,6\n",
        "complex.csv": "1,2\n3,1+2j\n",
        "empty.csv": "",
        "blank.csv": "\n\n  \n",
        "ragged.csv": "1,2,3\n4,5\n",
        "nan.csv": "1,nan\n2,3\n",
        "inf.csv": "1,2\n1e999,3\n",
        "binary.csv": None,
        "trailing-comma.csv": "1,2,\n3,4,\n",
    }
    out = {}
    for name, text in files.items():
        path = root / name
        if text is None:
            path.write_bytes(b"\xff\xfe\x00garbage")
        else:
            path.write_text(text)
        out[name] = path
    np.save(root / "complex.npy", np.ones((3, 3), dtype=complex))
    np.save(root / "empty.npy", np.zeros((0,)))
    np.save(root / "strings.npy", np.array([["a", "b"]]))
    np.save(root / "object.npy", np.array([1, "x"], dtype=object), allow_pickle=True)
    np.save(root / "nan.npy", np.full((3, 3), np.nan))
    (root / "truncated.npy").write_bytes((root / "nan.npy").read_bytes()[:90])
    np.savez(root / "archive.npy.npz", a=np.ones(3))
    (root / "archive.npy").write_bytes((root / "archive.npy.npz").read_bytes())
    (root / "a-folder.npy").mkdir()
    for name in (
        "complex.npy",
        "empty.npy",
        "strings.npy",
        "object.npy",
        "nan.npy",
        "truncated.npy",
        "archive.npy",
        "a-folder.npy",
    ):
        out[name] = root / name
    out["missing.npy"] = root / "missing.npy"
    return out


_BROKEN = [
    "non-numeric.csv",
    "complex.csv",
    "empty.csv",
    "blank.csv",
    "ragged.csv",
    "nan.csv",
    "inf.csv",
    "binary.csv",
    "trailing-comma.csv",
    "complex.npy",
    "empty.npy",
    "strings.npy",
    "object.npy",
    "nan.npy",
    "truncated.npy",
    "archive.npy",
    "a-folder.npy",
    "missing.npy",
]


@pytest.mark.parametrize("name", _BROKEN)
@pytest.mark.parametrize(
    ("args", "flag"),
    [(ANIMATE, "--input-values"), (ANIMATE, "--kernel-values"), (["matrix", "conv2d", "-i", "4x4"], "--weights")],
)
def test_broken_value_files_are_one_line(name: str, args: list[str], flag: str, tmp_path: Path) -> None:
    path = _files(tmp_path)[name]
    before = snapshot(tmp_path)
    with inside(tmp_path):
        assert_refused(run(*args, flag, str(path)), flag)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("flag", "shape"),
    [
        ("--input-values", (5, 5)),
        ("--input-values", (2, 4, 4)),
        ("--kernel-values", (2, 2)),
        ("--kernel-values", (1, 2, 3, 3)),
    ],
)
def test_values_of_the_wrong_shape_are_one_line(flag: str, shape: tuple[int, ...], tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones(shape))
    before = snapshot(tmp_path)
    with inside(tmp_path):
        assert_refused(run(*ANIMATE, flag, "v.npy"), flag)
    assert snapshot(tmp_path) == before


def test_a_csv_plane_animates_like_pytorch_computes(tmp_path: Path) -> None:
    """Good values are used: the numeric frames' caption is not checked here, the files are (they exist)."""
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    (tmp_path / "x.csv").write_text("\n".join(",".join(f"{v:g}" for v in row) for row in x) + "\n")
    np.save(tmp_path / "w.npy", np.eye(3))
    with inside(tmp_path):
        result = run(*ANIMATE[:-2], "-o", "a.svg", "--input-values", "x.csv", "--kernel-values", "w.npy")
    assert result.code == 0, result.err
    svg = (tmp_path / "a.svg").read_text()
    expected = F.conv2d(torch.from_numpy(x)[None, None], torch.eye(3, dtype=torch.float64)[None, None])
    for value in expected.flatten().tolist():
        assert f">{value:g}<" in svg


def test_no_numpy_warning_reaches_the_terminal(tmp_path: Path) -> None:
    _files(tmp_path)
    for name in ("empty.csv", "nan.csv", "complex.csv"):
        proc = subprocess.run(
            [
                sys.executable,
                "-W",
                "always",
                "-m",
                "convarith",
                *ANIMATE[:-1],
                str(tmp_path / "a.gif"),
                "--input-values",
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --input-values: "), proc.stderr
    assert not (tmp_path / "a.gif").exists()
