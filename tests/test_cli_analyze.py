"""``convarith analyze``: the table, JSON, reports and pictures; bad input is one line, exit 2,
nothing written; fuzzed over every option."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from hypothesis import given, settings
from hypothesis import strategies as st

from cli_support import inside, run, snapshot

MODELS = """
import torch
from torch import nn


def unet(depth=2, crop=True):
    import sys
    sys.path.insert(0, {tests!r})
    from models_torch import UNet
    return UNet(depth=depth, width=1, crop=crop)


def decoder(stride=2):
    return nn.Sequential(nn.ConvTranspose1d(1, 1, 3, stride, 1), nn.ReLU(), nn.ConvTranspose1d(1, 1, 3, stride, 1))


def broken():
    raise RuntimeError("no model today")
"""


@pytest.fixture()
def folder(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "small_models.py").write_text(MODELS.format(tests=str(Path(__file__).parent)))
    with inside(tmp_path):
        yield tmp_path
    sys.modules.pop("small_models", None)


def test_the_table_and_the_model_findings(folder: Path) -> None:
    result = run("analyze", "small_models:unet", "--arg", "crop=False", "-i", "1x1x44x44")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:4] == ["node", "operation", "parameters", "input"]
    assert any(line.startswith("up.0 ") and "conv_transpose2d" in line for line in lines)
    assert "skip-mismatch" in result.out and "responsible: bottom.0, bottom.2" in result.out
    assert "input 1×1×44×44;" in result.out


def test_json_reports_and_pictures(folder: Path) -> None:
    result = run(
        "analyze", "small_models:decoder", "-i", "1x1x16", "--json", "--sizes", "8..20", "--markdown", "r.md",
        "--html", "r.html", "--field", "f.svg", "--depth", "d.png", "--cell", "10",
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["outputs"] == ["2"] and data["nodes"][-1]["fields"][0]["stride"] == "1/4"
    assert data["sizes"]["rule"] == "every size" and data["sizes"]["accepted"] == list(range(8, 21))
    assert any(f["code"] == "stacked-overlap" for f in data["findings"])
    page = (folder / "r.html").read_text()
    assert page.count("<svg") == 2 and "stacked-overlap" in page
    assert "| node |" in (folder / "r.md").read_text()
    picture = (folder / "f.svg").read_text()
    assert picture.startswith("<svg") and "receptive field of 2 at cell (10)" in picture
    assert (folder / "d.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["small_models:nothing", "-i", "1x1x8"], "MODEL"),
        (["small_models:broken", "-i", "1x1x8"], "MODEL"),
        (["no_such_module:x", "-i", "1x1x8"], "MODEL"),
        (["model.onnx", "-i", "1x1x8"], "MODEL"),
        (["small_models:decoder", "-i", "1x1x0"], "-i"),
        (["small_models:decoder", "-i", "1xx1"], "-i"),
        (["small_models:decoder", "-i", "1x1x8", "--arg", "stride"], "--arg"),
        (["small_models:decoder", "-i", "1x1x8", "--arg", "kernel=3"], "--arg"),
        (["small_models:decoder", "-i", "1x1x8", "--sizes", "5"], "--sizes"),
        (["small_models:decoder", "-i", "1x1x8", "--sizes", "0..4"], "--sizes"),
        (["small_models:decoder", "-i", "1x1x8", "--sizes", "2..9", "--axis", "3"], "--axis"),
        (["small_models:decoder", "-i", "1x1x8", "--node", "nope", "--field", "f.svg"], "--node"),
        (["small_models:decoder", "-i", "1x1x8", "--cell", "99", "--field", "f.svg"], "--cell"),
        (["small_models:decoder", "-i", "1x1x8", "--html", "out.txt"], "--html"),
        (["small_models:decoder", "-i", "1x1x8", "--field", "adir"], "--field"),
        (["small_models:decoder", "-i", "1x1x8", "--markdown", "same.md", "--html", "same.md"], "--html"),
        (["small_models:unet", "-i", "1x1x6x6"], "-i"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(folder: Path, args: list[str], flag: str) -> None:
    (folder / "adir").mkdir(exist_ok=True)
    before = snapshot(folder)
    result = run("analyze", *args)
    assert result.code == 2 and result.out == "", (args, result.out)
    assert result.err.count("\n") == 1 and result.err.startswith(f"error: {flag}"), (args, result.err)
    assert {k: v for k, v in snapshot(folder).items() if "__pycache__" not in k} == {
        k: v for k, v in before.items() if "__pycache__" not in k
    }


VALUES = ["", "x", "0", "-1", "1x1x8", "1x1x16", "3..9", "9..3", "1e9..2e9", "nan", "stride=2", "a=b=c", "f.svg",
          "f.png", "r.html", "r.md", "adir", "/", "out.txt", "٣", "1x1x" + "9" * 12]  # fmt: skip
FLAGS = ["-i", "--arg", "--sizes", "--axis", "--node", "--cell", "--field", "--depth", "--markdown", "--html", "--all",
         "--json"]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(["small_models:decoder", "small_models:unet", "small_models:", ":x", "x.onnx", "", "adir"]),
    options=st.lists(st.tuples(st.sampled_from(FLAGS), st.sampled_from(VALUES)), max_size=5),
)
def test_fuzz_every_option(model: str, options: list[tuple[str, str]]) -> None:
    """Exit 0, or exit 2 with one line on stderr and nothing written — never a traceback, within 20 s."""
    args = ["analyze", model]
    for flag, value in options:
        args += [flag] if flag in ("--all", "--json") else [flag, value]
    with tempfile.TemporaryDirectory() as tmp, inside(Path(tmp)) as root:
        (root / "small_models.py").write_text(MODELS.format(tests=str(Path(__file__).parent)))
        (root / "adir").mkdir()
        before = snapshot(root)
        start = time.perf_counter()
        result = run(*args)
        sys.modules.pop("small_models", None)
        assert time.perf_counter() - start < 20, args
        assert result.code in (0, 2), (args, result.code, result.err)
        assert "Traceback" not in result.out + result.err
        if result.code == 2:
            assert result.err.count("\n") == 1 and result.err.startswith("error: "), (args, result.err)
            after = {k: v for k, v in snapshot(root).items() if "__pycache__" not in k}
            assert after == {k: v for k, v in before.items() if "__pycache__" not in k}, args
        assert os.path.isdir(root / "adir")
