"""Explanations and the tour: the derivations cite the right numbers and every claim of the tour is checked."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from convarith import ConvSpec
from convarith.cli import app
from convarith.explain import tour as tour_module
from convarith.explain.backends import NumpyBackend, TorchBackend
from convarith.explain.derivation import explain_layer, stretched_grid, symbolic_matrix
from convarith.explain.document import to_html, to_markdown, to_text

runner = CliRunner()


def test_symbolic_matrix_is_the_guides_4x16_matrix() -> None:
    rows = symbolic_matrix(ConvSpec.create("conv2d", kernel_size=3), (4, 4))
    k = [["w00", "w01", "w02"], ["w10", "w11", "w12"], ["w20", "w21", "w22"]]
    expected = []
    for i, j in np.ndindex(2, 2):
        row = ["0"] * 16
        for r in range(3):
            for c in range(3):
                row[(i + r) * 4 + j + c] = k[r][c]
        expected.append(row)
    assert rows == expected


def test_symbolic_matrix_of_a_transposed_conv_is_the_transpose() -> None:
    direct = symbolic_matrix(ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1), (5, 5))
    transposed = symbolic_matrix(ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, padding=1), (3, 3))
    assert transposed == [list(col) for col in zip(*direct, strict=True)]


def test_folded_taps_are_summed_symbolically() -> None:
    rows = symbolic_matrix(ConvSpec.create("conv1d", kernel_size=3, padding=1, padding_mode="replicate"), (3,))
    assert rows[0] == ["w0+w1", "w2", "0"]


def test_stretched_grid_of_figure_4_7_puts_the_extra_cells_last() -> None:
    grid = stretched_grid(
        ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1), (3, 3)
    )
    assert len(grid) == len(grid[0]) == 8  # 1 pad + 5 stretched + 1 pad + 1 extra
    assert grid[1][1:6] == ["y00", "0", "y01", "0", "y02"]
    assert grid[2][1:6] == ["0"] * 5
    assert set(grid[7]) == {"a"} and {row[7] for row in grid} == {"a"}
    assert set(grid[0][:7]) == {"·"} and grid[6][3] == "·"


def test_stretched_grid_crops_when_padding_exceeds_the_reach() -> None:
    grid = stretched_grid(ConvSpec.create("conv_transpose1d", kernel_size=2, stride=2, padding=2), (3,))
    # p′ = 1 − 2 = −1 on both sides: the first and last stretched cells are cropped
    assert grid == [["0", "y1", "0"]]


@pytest.mark.parametrize(
    ("op", "kwargs", "spatial", "number"),
    [
        ("conv2d", {"kernel_size": 3}, (4, 4), 1),
        ("conv2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (6, 6), 6),
        ("conv_transpose2d", {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}, (3, 3), 14),
        ("conv2d", {"kernel_size": 3, "dilation": 2}, (7, 7), 15),
        ("max_pool2d", {"kernel_size": 3, "stride": 1}, (5, 5), 7),
    ],
)
def test_explanations_cite_the_relationship_with_numbers(op: str, kwargs: dict, spatial: tuple, number: int) -> None:
    spec = ConvSpec.create(op, **kwargs)
    doc = explain_layer(spec, (1, 1, *spatial))
    text = to_text(doc)
    assert f"relationship {number} " in text
    out = spec.output_spatial(spatial)[0]
    assert f"= {out}" in text
    HTMLParser().feed(to_html(doc))
    assert to_markdown(doc).startswith("# ")


@pytest.fixture(scope="module")
def torch_tour():  # type: ignore[no-untyped-def]
    return tour_module.build_tour("torch")


def test_every_claim_of_the_tour_holds_with_pytorch(torch_tour) -> None:  # type: ignore[no-untyped-def]
    checks = torch_tour.checks
    assert len(checks) >= 14
    assert all(c.passed for c in checks), [str(c) for c in checks if not c.passed]
    text = to_text(torch_tour)
    assert "PyTorch 2.13.0" in text and "could not broadcast" in text


def test_the_tour_agrees_with_the_numpy_reference(torch_tour) -> None:  # type: ignore[no-untyped-def]
    numpy_tour = tour_module.build_tour("numpy")
    assert all(c.passed for c in numpy_tour.checks), [str(c) for c in numpy_tour.checks if not c.passed]
    assert "NumPy reference" in to_text(numpy_tour)
    assert len(numpy_tour.checks) == len(torch_tour.checks)


def test_the_tour_checks_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong transposed convolution must turn the tour's checks red."""
    broken = TorchBackend()
    original = broken.conv_transpose
    monkeypatch.setattr(broken, "conv_transpose", lambda y, w, **kw: original(y, w, **kw) + 1e-6)
    monkeypatch.setattr(tour_module, "pick_backend", lambda name: broken)
    doc = tour_module.build_tour("torch")
    assert sum(not c.passed for c in doc.checks) >= 5


def test_numpy_backend_gradient_is_exact_without_autograd() -> None:
    rng = np.random.default_rng(1)
    x, w, g = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal((1, 3, 3, 2))
    kwargs = {"stride": (2, 2), "padding": (1, 0)}
    assert np.allclose(
        NumpyBackend().input_grad(x, w, g, **kwargs), TorchBackend().input_grad(x, w, g, **kwargs), rtol=0, atol=1e-12
    )


def test_tour_command_writes_markdown_and_html(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tour", "--out", str(tmp_path / "t"), "--no-pictures"])
    assert result.exit_code == 0, result.output
    assert "checks passed" in result.output
    md = (tmp_path / "t" / "tour.md").read_text()
    assert "## 2. The backward pass" in md and "❌" not in md
    HTMLParser().feed((tmp_path / "t" / "tour.html").read_text())


def test_explain_and_matrix_commands(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["explain", "conv_transpose2d", "-i", "1x1x2x2", "-k", "3", "--html", str(tmp_path / "e.html")]
    )
    assert result.exit_code == 0, result.output
    assert "relationship 8" in result.output and (tmp_path / "e.html").exists()
    result = runner.invoke(app, ["matrix", "conv2d", "-i", "1x4x4", "-k", "3", "--json", "-o", str(tmp_path / "c.npz")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shape"] == [4, 16] and data["nnz"] == 36
    result = runner.invoke(app, ["matrix", "conv2d", "-i", "1x4x4", "-k", "3"])
    assert "w00 w01 w02" in " ".join(result.output.split())
    result = runner.invoke(
        app, ["matrix", "conv2d", "-i", "64x512x512", "--out-channels", "64", "-k", "3", "--memory-budget", "0.5"]
    )
    assert result.exit_code == 2 and "memory_budget" in result.stderr


def test_tour_embeds_its_pictures(tmp_path: Path) -> None:
    from PIL import Image

    doc = tour_module.write_tour(tmp_path, "torch", pictures=True)
    images = [b for b in doc.blocks if type(b).__name__ == "Image"]
    assert len(images) == len(tour_module.TOUR_PICTURES)
    html = (tmp_path / "tour.html").read_text()
    for image in images:
        path = tmp_path / image.path  # type: ignore[attr-defined]
        assert f'src="{image.path}"' in html  # type: ignore[attr-defined]
        with Image.open(path) as picture:
            assert picture.size[0] > 100
