"""The CLI: its numbers agree with PyTorch, `--input` means one thing everywhere, errors name the typed flag."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
import torch.nn.functional as F

import convarith
from cli_support import assert_refused, run
from convarith import Layer

# -- shape and solve against PyTorch --------------------------------------------------------------

_SHAPES = [
    (
        ["conv2d", "-i", "1x3x32x32", "--out-channels", "16", "-k", "3", "--stride", "2", "--padding", "1"],
        lambda: torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
        (1, 3, 32, 32),
    ),
    (
        [
            "conv_transpose2d",
            "-i",
            "2x4x5x7",
            "--out-channels",
            "6",
            "-k",
            "3x2",
            "--stride",
            "2,3",
            "--padding",
            "1",
            "--output-padding",
            "1,2",
            "--groups",
            "2",
        ],
        lambda: torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=1, output_padding=(1, 2), groups=2),
        (2, 4, 5, 7),
    ),
    (
        ["max_pool2d", "-i", "1x2x7x7", "-k", "2", "--ceil-mode"],
        lambda: torch.nn.MaxPool2d(2, ceil_mode=True),
        (1, 2, 7, 7),
    ),
    (
        ["avg_pool1d", "-i", "3x11", "-k", "3", "--stride", "2", "--padding", "1", "--no-count-include-pad"],
        lambda: torch.nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
        (3, 11),
    ),
    (
        ["conv3d", "-i", "1x1x6x5x4", "-k", "2", "--dilation", "2", "--padding", "same"],
        lambda: torch.nn.Conv3d(1, 1, 2, dilation=2, padding="same"),
        (1, 1, 6, 5, 4),
    ),
    (
        ["conv1d", "-i", "2x9", "--out-channels", "4", "-k", "3", "--padding", "2", "--padding-mode", "circular"],
        lambda: torch.nn.Conv1d(2, 4, 3, padding=2, padding_mode="circular"),
        (2, 9),
    ),
]


@pytest.mark.parametrize(("args", "module", "shape"), _SHAPES)
def test_shape_json_matches_pytorch(args: list[str], module, shape: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    result = run("shape", *args, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    with torch.no_grad():
        expected = module()(torch.zeros(shape)).shape
    assert data["output_shape"] == list(expected)
    assert data["input_shape"] == list(shape)


def test_shape_text_shows_the_library_findings() -> None:
    result = run("shape", "conv1d", "-i", "8", "-k", "3", "--stride", "2")
    assert result.code == 0
    assert "8  →  3" in result.out
    for found in Layer("conv1d", kernel_size=3, stride=2).bind((8,)).findings("torch"):
        assert found.message in " ".join(result.out.split())


def test_shape_refuses_what_pytorch_refuses_unless_framework_none() -> None:
    args = ["shape", "max_pool1d", "-i", "8", "-k", "2", "--padding", "2"]
    with pytest.raises(RuntimeError):
        F.max_pool1d(torch.zeros(1, 1, 8), 2, padding=2)
    assert "half the kernel" in assert_refused(run(*args), "--padding")
    result = run(*args, "--framework", "none", "--json")
    assert result.code == 0 and json.loads(result.out)["output_shape"] == [6]


@pytest.mark.parametrize("text", ["8x8", "3x8x8", "2x3x8x8", "8"])
def test_input_means_the_shape_in_every_verb(text: str, tmp_path: Path) -> None:
    """Spatial, C + spatial or N + C + spatial — the same layer, the same spatial output everywhere."""
    channels = int(text.split("x")[-3]) if text.count("x") >= 2 else 1
    shape = json.loads(run("shape", "conv2d", "-i", text, "-k", "3", "--stride", "2", "--json").out)
    assert shape["output_shape"][-2:] == [3, 3]
    matrix = json.loads(run("matrix", "conv2d", "-i", text, "-k", "3", "--stride", "2", "--json").out)
    assert matrix["shape"] == [channels * 9, channels * 64]
    solve = json.loads(run("solve", "conv2d", "-i", text, "-o", "3", "-k", "3", "--json").out)
    assert solve["solutions"] and all(row["kernel_size"] == [3, 3] for row in solve["solutions"])
    for row in solve["solutions"]:
        layer = Layer.from_dict(row["layer"])
        assert layer.bind((8, 8)).output_spatial == (3, 3)
    out = tmp_path / "c.svg"
    drawn = run("draw-matrix", "conv2d", "-i", text, "-k", "3", "--stride", "2", "-o", str(out))
    assert drawn.code == 0, drawn.err
    assert out.is_file()


def test_channels_come_from_input_only() -> None:
    result = run("animate", "conv2d", "-i", "4x4", "-k", "3", "--in-channels", "2", "-o", "x.gif")
    assert result.code == 2 and "--in-channels" in result.err and result.err.count("\n") == 1


def test_solve_solutions_reach_the_output_in_pytorch() -> None:
    result = run("solve", "conv_transpose2d", "-i", "1x8x16x16", "-o", "32", "--json", "--top", "5")
    assert result.code == 0, result.err
    rows = json.loads(result.out)["solutions"]
    assert len(rows) == 5
    assert [r["penalty"] for r in rows] == sorted(r["penalty"] for r in rows)
    for row in rows:
        layer = Layer.from_dict(row["layer"])
        (pb, pa), (qb, qa) = layer.pads
        assert pb == pa and qb == qa  # what nn.ConvTranspose2d can express
        module = torch.nn.ConvTranspose2d(
            1,
            1,
            layer.kernel_size,
            stride=layer.stride,
            padding=(pb, qb),
            dilation=layer.dilation,
            output_padding=layer.output_padding,
        )
        with torch.no_grad():
            assert module(torch.zeros(1, 1, 16, 16)).shape[-2:] == (32, 32)


# -- matrix against PyTorch ------------------------------------------------------------------------


def _saved(path: Path) -> np.ndarray:
    return scipy.sparse.load_npz(path).toarray()


@pytest.mark.parametrize("give_k", [True, False])
def test_matrix_with_weights_is_pytorchs_conv(tmp_path: Path, give_k: bool) -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 1, 3, 2))  # 4 out, 2 in, groups 2
    x = rng.standard_normal((1, 2, 6, 5))
    np.save(tmp_path / "w.npy", w)
    args = [
        "matrix",
        "conv2d",
        "-i",
        "2x6x5",
        "--groups",
        "2",
        "--stride",
        "2",
        "--padding",
        "1",
        "--weights",
        str(tmp_path / "w.npy"),
        "-o",
        str(tmp_path / "C.npz"),
    ]
    result = run(*args, *(["-k", "3x2", "--out-channels", "4"] if give_k else []))
    assert result.code == 0, result.err
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1, groups=2).numpy()
    np.testing.assert_allclose(_saved(tmp_path / "C.npz") @ x.ravel(), expected.ravel(), atol=1e-12)


def test_matrix_of_a_transposed_conv_is_pytorchs(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 3, 3, 3))
    y = rng.standard_normal((1, 2, 3, 4))
    np.save(tmp_path / "w.npy", w)
    result = run(
        "matrix",
        "conv_transpose2d",
        "-i",
        "2x3x4",
        "--stride",
        "2",
        "--padding",
        "1",
        "--output-padding",
        "1",
        "--weights",
        str(tmp_path / "w.npy"),
        "-o",
        str(tmp_path / "C.npz"),
    )
    assert result.code == 0, result.err
    expected = F.conv_transpose2d(torch.from_numpy(y), torch.from_numpy(w), stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(_saved(tmp_path / "C.npz") @ y.ravel(), expected.numpy().ravel(), atol=1e-12)


def test_matrix_builds_pooling_matrices(tmp_path: Path) -> None:
    x = np.random.default_rng(3).standard_normal((2, 5, 5))
    assert (
        run(
            "matrix",
            "avg_pool2d",
            "-i",
            "2x5x5",
            "-k",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--no-count-include-pad",
            "-o",
            str(tmp_path / "A.npz"),
        ).code
        == 0
    )
    expected = F.avg_pool2d(torch.from_numpy(x), 3, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_allclose(_saved(tmp_path / "A.npz") @ x.ravel(), expected.numpy().ravel(), atol=1e-12)
    # max pooling: a selection matrix, taken at a seeded input; it must pick each window's maximum there
    assert (
        run(
            "matrix",
            "max_pool2d",
            "-i",
            "1x5x5",
            "-k",
            "2",
            "--ceil-mode",
            "--seed",
            "7",
            "-o",
            str(tmp_path / "M.npz"),
        ).code
        == 0
    )
    M = _saved(tmp_path / "M.npz")
    assert M.shape == (9, 25) and set(np.unique(M)) <= {0.0, 1.0} and (M.sum(axis=1) == 1).all()
    at = np.random.default_rng(7).integers(0, 4, size=(1, 5, 5)).astype(np.float64)
    np.testing.assert_array_equal(M @ at.ravel(), F.max_pool2d(torch.from_numpy(at), 2, ceil_mode=True).numpy().ravel())


def test_matrix_small_case_is_symbolic() -> None:
    result = run("matrix", "conv1d", "-i", "4", "-k", "2", "--padding", "1", "--padding-mode", "reflect")
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()[1:]]
    # reflect padding: the first window reads x1 through the pad (w0) and x0 (w1)... per PyTorch's index map
    x = torch.eye(4, dtype=torch.float64).reshape(4, 1, 4)
    for t, name in enumerate(("w0", "w1")):
        w = torch.zeros(1, 1, 2, dtype=torch.float64)
        w[0, 0, t] = 1
        reads = F.conv1d(F.pad(x, (1, 1), mode="reflect"), w)[:, 0, :].T  # reads[o, i]
        for o, row in enumerate(rows):
            for i, cell in enumerate(row):
                assert (name in cell.split("+")) == bool(reads[o, i]), (o, i, cell)


def test_matrix_help_lists_pooling_ops() -> None:
    result = run("matrix", "--help")
    assert result.code == 0
    for op in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
        assert op in result.out


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["-k", "5"], "-k"),
        (["--kernel-size", "3x1"], "--kernel-size"),
        (["--out-channels", "4"], "--out-channels"),
    ],
)
def test_matrix_weights_never_silently_override(tmp_path: Path, extra: list[str], flag: str) -> None:
    np.save(tmp_path / "w.npy", np.ones((2, 1, 3, 3)))
    result = run("matrix", "conv2d", "-i", "6x6", "--weights", str(tmp_path / "w.npy"), *extra)
    assert "--weights" in assert_refused(result, flag)


def test_matrix_weights_must_fit_the_input_channels(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.ones((2, 1, 3, 3)))
    assert_refused(run("matrix", "conv2d", "-i", "3x6x6", "--weights", str(tmp_path / "w.npy")), "--weights")
    assert_refused(run("matrix", "max_pool2d", "-i", "6x6", "--weights", str(tmp_path / "w.npy")), "--weights")


# -- explain, version, help ------------------------------------------------------------------------


def test_explain_json_is_the_documents_data() -> None:
    from convarith.explain.derivation import explain_layer

    result = run(
        "explain",
        "conv_transpose2d",
        "-i",
        "3x3",
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
    assert result.code == 0, result.err
    layer = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
    assert json.loads(result.out) == json.loads(json.dumps(explain_layer(layer.bind((3, 3))).to_dict()))


def test_explain_text_is_the_same_for_every_form_of_input() -> None:
    texts = [run("explain", "conv2d", "-i", text, "-k", "3").out.splitlines() for text in ("4x4", "1x4x4")]
    assert texts[0][0] == "conv2d: 4 × 4 → 2 × 2" and texts[1][0] == "conv2d: 1 × 4 × 4 → 1 × 2 × 2"
    assert texts[0][2:] == texts[1][2:]  # the title keeps the form of the input; the derivation is one


def test_version() -> None:
    result = run("--version")
    assert result.code == 0 and result.out == f"convarith {convarith.__version__}\n"


@pytest.mark.parametrize(
    "verb", ["shape", "solve", "explain", "matrix", "animate", "draw-matrix", "gallery", "tour", "analyze"]
)
def test_every_verb_has_help_with_an_example(verb: str) -> None:
    result = run(verb, "--help")
    assert result.code == 0 and "Example" in result.out and f"convarith {verb} " in result.out


def test_tour_names_the_backend_it_uses(tmp_path: Path) -> None:
    result = run("tour", "--backend", "numpy", "--no-pictures", "--out", str(tmp_path / "t"))
    assert result.code == 0, result.err
    assert "not installed" not in result.out + result.err
    assert "numpy" in result.out.lower()
    assert (tmp_path / "t" / "tour.md").is_file() and (tmp_path / "t" / "tour.html").is_file()


# -- errors name the flag the user typed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["shape", "conv2d", "-i", "1x3x2x2", "-k", "3"], "-i"),
        (["shape", "conv2d", "--input", "1x3x2x2", "-k", "3"], "--input"),
        (["shape", "conv2d", "--input=1x3x2x2", "-k", "3"], "--input"),
        (["shape", "conv2d", "-i", "8x8", "-k", "0"], "-k"),
        (["shape", "conv2d", "-i", "8x8", "--kernel-size", "0"], "--kernel-size"),
        (["shape", "conv2d", "-i", "8x8", "--kernel-size=2,2,2"], "--kernel-size"),
        (["shape", "conv2d", "-i", "1x3x8x8", "-k", "3", "--stride", "0"], "--stride"),
        (
            ["shape", "conv_transpose2d", "-i", "3x3", "-k", "3", "--stride", "2", "--output-padding", "2"],
            "--output-padding",
        ),
        (["shape", "conv9x", "-i", "3", "-k", "3"], "OP"),
        (["shape", "conv2d", "-i", "1xax3", "-k", "3"], "-i"),
        (["shape", "conv2d", "-i", "3x3", "-k", "3", "--padding", "bogus"], "--padding"),
        (["shape", "conv2d", "-i", "3x8x8", "-k", "3", "--groups", "2"], "--groups"),
        (["shape", "conv2d", "-i", "8x8", "-k", "3", "--dilation", "0"], "--dilation"),
        (["shape", "conv2d", "-i", "8x8", "-k", "3", "--out-channels", "0"], "--out-channels"),
        (["shape", "conv2d", "-i", "8x8", "-k", "3", "--padding-mode", "mirror"], "--padding-mode"),
        (["shape", "conv2d", "-i", "8x8", "-k", "3", "--ceil-mode"], "--ceil-mode"),
        (["shape", "conv2d", "-i", "8x8", "-k", "3", "--divisor-override", "2"], "--divisor-override"),
        (["shape", "conv2d", "-i", "8x8", "-k", "3", "--framework", "caffe"], "--framework"),
        (["solve", "conv2d", "-i", "4", "-o", "40", "--max-kernel", "3"], ("-o", "--max-kernel")),
        (["solve", "conv2d", "--input", "4x4x4x4x4", "-o", "4"], "--input"),
        (["solve", "conv2d", "-i", "8", "--output", "0"], "--output"),
        (["matrix", "conv2d", "-i", "8x8", "-k", "3", "--memory-budget", "0"], "--memory-budget"),
        (["animate", "conv2d", "-i", "5x5", "-k", "3", "--view", "sideways", "-o", "a.gif"], "--view"),
        (["animate", "conv2d", "-i", "5x5", "-k", "3", "--style", "cubist", "-o", "a.gif"], "--style"),
        (["animate", "conv2d", "-i", "5x5", "-k", "3", "--frames", "jpg", "-o", "f"], "--frames"),
        (["tour", "--backend", "caffe"], "--backend"),
        (["gallery", "--only", "nope", "--out", "g"], "--only"),
    ],
)
def test_errors_name_the_flag_as_typed(
    args: list[str], flag: str | tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    err = assert_refused(run(*args), flag)
    for library_name in ("input_shape", "kernel_size", "output_padding", "padding_mode", "out_channels"):
        assert not err.startswith(f"error: {library_name}")
    assert sorted(tmp_path.iterdir()) == before


def test_usage_errors_are_one_line() -> None:
    for args in (
        ["shape", "conv2d", "-i", "8x8", "-k", "3", "--groups", "x"],
        ["shape", "conv2d"],
        ["nope"],
        ["matrix", "conv2d", "-i", "8", "-k", "3", "--seed", "1.5"],
    ):
        result = run(*args)
        assert result.code == 2 and result.err.count("\n") == 1 and result.err.startswith("error: "), result.err


# -- the installed command ----------------------------------------------------------------------


def test_the_installed_command_never_prints_a_traceback(tmp_path: Path) -> None:
    cases = [
        ["shape", "conv2d", "-i", "1x3x2x2", "-k", "3"],
        ["shape", "conv2d", "-i", "1x3x8x8", "-k", "3", "--groups", "2"],
        ["solve", "avg_pool2d", "-i", "5", "-o", "100"],
        ["animate", "conv2d", "-i", "4x4", "-k", "3", "-o", str(tmp_path / "missing" / "a.gif")],
        ["matrix", "conv2d", "-i", "4x4", "-k", "3", "--memory-budget", "nan"],
        ["shape"],
        [],
    ]
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "convarith", *args], capture_output=True, text=True, env=os.environ, timeout=60
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), (args, proc.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["shape", "conv2d", "-i", "1x3x8x8", "-k", "3", "--json"],
        ["solve", "conv2d", "-i", "32", "-o", "16"],
        ["--help"],
        ["--version"],
        ["shape", "--help"],
    ],
)
def test_fast_verbs_import_no_numpy_and_no_framework(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from convarith.cli import main\n"
        f"sys.argv = ['convarith', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'jax', 'keras', 'onnx', 'onnxruntime', 'tensorflow', 'numpy', 'scipy', 'PIL')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "HEAVY []" in proc.stdout


def _help_examples() -> list[list[str]]:
    from convarith.cli import verbs_frameworks, verbs_geometry, verbs_pictures

    lines = []
    for module in (verbs_geometry, verbs_pictures, verbs_frameworks):
        for name in module.__all__:
            doc = getattr(module, name).__doc__ or ""
            lines += [shlex.split(line)[1:] for line in doc.splitlines() if line.strip().startswith("convarith ")]
    # the whole gallery takes a minute (its examples run with --only); the 37-million-nonzero C of the
    # 16-channel 128×128 example takes seconds (the matrix benchmarks time it)
    return [args for args in lines if (args[0] != "gallery" or "--only" in args) and "16x128x128" not in args]


@pytest.mark.parametrize("args", _help_examples(), ids=" ".join)
def test_every_help_example_runs(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "k.npy", np.ones((2, 3, 3, 3)))
    result = run(*args)
    assert result.code == 0, (args, result.err)
