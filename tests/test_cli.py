"""The CLI: JSON agrees with the library, bad input exits 2 with one line, fuzzing finds no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convarith import output_shape, solve
from convarith.cli import app
from convarith.geometry.spec import OPS

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_shape_json_matches_the_library() -> None:
    code, out, _ = run(
        "shape",
        "conv2d",
        "--input",
        "1x3x32x32",
        "--out-channels",
        "16",
        "-k",
        "3",
        "--stride",
        "2",
        "--padding",
        "1",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["output_shape"] == list(
        output_shape("conv2d", (1, 3, 32, 32), out_channels=16, kernel_size=3, stride=2, padding=1)
    )
    assert data["axes"][0]["relationship"]["number"] == 6


def test_shape_accepts_per_axis_and_pairs() -> None:
    code, out, _ = run("shape", "conv2d", "-i", "1x1x7x9", "-k", "3x1", "--padding", "1:2,0", "--json")
    assert code == 0
    assert json.loads(out)["output_shape"] == [1, 1, 8, 9]


def test_transposed_report_has_the_equivalent_direct_conv() -> None:
    code, out, _ = run(
        "shape",
        "conv_transpose2d",
        "-i",
        "1x1x3x3",
        "-k",
        "3",
        "--stride",
        "2",
        "--padding",
        "1",
        "--output-padding",
        "1",
        "--json",
    )
    assert code == 0
    axis = json.loads(out)["axes"][0]
    assert axis["output"] == 6
    assert axis["equivalent_direct"] == {
        "zeros_between": 1,
        "stretched": 5,
        "padding": [1, 2],
        "kernel_size": 3,
        "dilation": 1,
        "stride": 1,
    }
    assert axis["phase_counts"] == [1, 2]  # even outputs get 1 tap, odd ones 2


def test_solve_json_lists_solutions_that_work() -> None:
    code, out, _ = run("solve", "conv_transpose2d", "-i", "16", "-o", "32", "--json", "--top", "5")
    assert code == 0
    rows = json.loads(out)["solutions"]
    assert len(rows) == 5
    assert rows[0]["kernel_size"] == [2, 2] and rows[0]["stride"] == [2, 2]
    assert [r["penalty"] for r in rows] == sorted(r["penalty"] for r in rows)
    assert len(solve("conv_transpose2d", 16, 32, limit=5)) == 5


@pytest.mark.parametrize(
    ("args", "param"),
    [
        (["shape", "conv2d", "-i", "1x3x2x2", "-k", "3"], "input_shape"),
        (["shape", "conv2d", "-i", "1x3x8x8", "-k", "3", "--stride", "0"], "stride"),
        (
            ["shape", "conv_transpose2d", "-i", "1x1x3x3", "-k", "3", "--stride", "2", "--output-padding", "2"],
            "output_padding",
        ),
        (["shape", "conv9x", "-i", "1x1x3", "-k", "3"], "op"),
        (["shape", "conv2d", "-i", "1xax3", "-k", "3"], "input"),
        (["shape", "conv2d", "-i", "1x1x3x3", "-k", "3", "--padding", "bogus"], "padding"),
        (["solve", "conv2d", "-i", "4", "-o", "40", "--max-kernel", "3"], "output_size"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], param: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {param}:")


def test_every_verb_has_help_with_an_example() -> None:
    for verb in ("shape", "solve", "tour"):
        code, out, _ = run(verb, "--help")
        assert code == 0 and "Example" in out and "convarith " + verb in out


_TOKENS = st.sampled_from(
    [
        "-i",
        "--input",
        "-k",
        "--kernel-size",
        "--stride",
        "--padding",
        "--dilation",
        "--groups",
        "--output-padding",
        "--padding-mode",
        "--ceil-mode",
        "--out-channels",
        "--json",
        "-o",
        "--output",
        "--top",
        "--max-kernel",
        "--help",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "1x3x8x8",
            "2x4x5",
            "1x1x3x3x3",
            "0",
            "-1",
            "3",
            "3,1",
            "2x2",
            "same",
            "same_tf",
            "valid",
            "full",
            "1:2,0",
            "reflect",
            "circular",
            "x",
            "",
            "9999999999",
            "1:2:3",
            "nan",
            "1e3",
            "  ",
            "∞",
        ]
    ),
    st.text(max_size=6),
    st.integers(-3, 40).map(str),
)


@settings(max_examples=400)
@given(
    verb=st.sampled_from(["shape", "solve", "tour-nope", "shape"]),
    op=st.one_of(st.sampled_from(OPS), st.text(max_size=8)),
    rest=st.lists(st.one_of(_TOKENS, _VALUES), max_size=12),
)
def test_fuzzed_arguments_exit_0_or_2_without_traceback(verb: str, op: str, rest: list[str]) -> None:
    result = runner.invoke(app, [verb, op, *rest], catch_exceptions=True)
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def test_the_installed_command_never_prints_a_traceback() -> None:
    cases = [
        ["shape", "conv2d", "-i", "1x3x2x2", "-k", "3"],
        ["shape", "conv2d", "-i", "1x3x8x8", "-k", "3", "--groups", "2"],
        ["solve", "avg_pool2d", "-i", "5", "-o", "100"],
        ["shape"],
    ]
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "convarith", *args], capture_output=True, text=True, env=os.environ
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout


def test_core_and_cli_import_no_framework() -> None:
    code = (
        "import sys, convarith, convarith.cli\n"
        "from convarith.cli import main\n"
        "sys.argv = ['convarith', 'shape', 'conv2d', '-i', '1x3x8x8', '-k', '3', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'jax', 'keras', 'onnx', 'onnxruntime', 'tensorflow', 'numpy', 'scipy', 'PIL')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in proc.stdout
