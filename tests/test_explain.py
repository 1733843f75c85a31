"""Explanations and the tour: the derivations' numbers are PyTorch's, the notes are the findings, and
every claim of the tour is checked with both backends."""

from __future__ import annotations

import ast
import html
import json
import operator
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from convarith import ConvArithError, Layer
from convarith.explain import backends
from convarith.explain import tour as tour_module
from convarith.explain.backends import NumpyBackend, pick_backend
from convarith.explain.derivation import explain_layer, stretched_grid, substitute, symbolic_matrix
from convarith.explain.document import Document, Image, Paragraph, to_html, to_markdown, to_text
from convarith.frameworks.torch import TorchBackend
from convarith.geometry.guide import RELATIONSHIPS
from strategies import examples

torch.set_num_threads(1)

# -- a tiny evaluator for the substituted formulas ------------------------------------------------------

_BINARY: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}


def _eval(node: ast.AST) -> int:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left), _eval(node.right))
    raise AssertionError(f"unexpected syntax in a substituted formula: {ast.dump(node)}")


def evaluate(expression: str) -> int:
    """``⌊(32 + 2·1 − 3) / 2⌋ + 1`` → 16; digits glued to a symbol's value (``21``) would give 26."""
    assert re.fullmatch(r"[\d\s+−·()/⌊⌋⌈⌉]+", expression), expression
    text = re.sub(r"⌊(.*?) / (\d+)⌋", r"((\1) // \2)", expression)
    text = re.sub(r"⌈(.*?) / (\d+)⌉", r"(-((-(\1)) // \2))", text)
    assert not set(text) & set("⌊⌋⌈⌉") and " / " not in text, text
    return _eval(ast.parse(text.replace("−", "-").replace("·", "*"), mode="eval"))


def test_the_evaluator_can_fail() -> None:
    assert evaluate("⌊(32 + 2·1 − 3) / 2⌋ + 1") == 16
    assert evaluate("⌊(32 + 21 − 3) / 2⌋ + 1") == 26  # the old glued digits: not 16
    assert evaluate("⌈(5 − 2) / 2⌉ + 1") == 3
    with pytest.raises(AssertionError):
        evaluate("2p")


def torch_output(layer: Layer, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """PyTorch's output spatial sizes for a layer with symmetric explicit pads."""
    n = layer.ndim
    bound = layer.bind(spatial)
    padding = tuple(b for b, _ in bound.pads)
    x = torch.zeros((1, 1, *spatial))
    with torch.no_grad():
        if layer.kind == "conv":
            module = getattr(torch.nn, f"Conv{n}d")(1, 1, layer.kernel_size, layer.stride, padding, layer.dilation)
        elif layer.transposed:
            module = getattr(torch.nn, f"ConvTranspose{n}d")(
                1, 1, layer.kernel_size, layer.stride, padding, bound.output_padding, dilation=layer.dilation
            )
        elif layer.kind == "max_pool":
            module = getattr(torch.nn, f"MaxPool{n}d")(
                layer.kernel_size, layer.stride, padding, layer.dilation, ceil_mode=layer.ceil_mode
            )
        else:
            module = getattr(torch.nn, f"AvgPool{n}d")(layer.kernel_size, layer.stride, padding, layer.ceil_mode)
        return tuple(module(x).shape[2:])


# -- the relationships, with numbers -------------------------------------------------------------------

# One case per relationship of the guide (op, layer keywords, spatial input).
RELATIONSHIP_CASES: dict[int, tuple[str, dict[str, object], tuple[int, ...]]] = {
    1: ("conv2d", {"kernel_size": 3}, (4, 4)),
    2: ("conv2d", {"kernel_size": 4, "padding": 2}, (5, 5)),
    3: ("conv2d", {"kernel_size": 3, "padding": 1}, (5, 5)),
    4: ("conv2d", {"kernel_size": 3, "padding": 2}, (5, 5)),
    5: ("conv2d", {"kernel_size": 3, "stride": 2}, (5, 5)),
    6: ("conv2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (32, 32)),
    7: ("max_pool2d", {"kernel_size": 3, "stride": 1}, (5, 5)),
    8: ("conv_transpose2d", {"kernel_size": 3}, (2, 2)),
    9: ("conv_transpose2d", {"kernel_size": 4, "padding": 2}, (6, 6)),
    10: ("conv_transpose2d", {"kernel_size": 3, "padding": 1}, (5, 5)),
    11: ("conv_transpose2d", {"kernel_size": 3, "padding": 2}, (7, 7)),
    12: ("conv_transpose2d", {"kernel_size": 3, "stride": 2}, (2, 2)),
    13: ("conv_transpose2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (3, 3)),
    14: ("conv_transpose2d", {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}, (3, 3)),
    15: ("conv2d", {"kernel_size": 3, "dilation": 2, "padding": 1, "stride": 2}, (7, 7)),
}


def test_every_relationship_has_a_case() -> None:
    assert sorted(RELATIONSHIP_CASES) == sorted(RELATIONSHIPS)


@pytest.mark.parametrize("number", sorted(RELATIONSHIP_CASES))
def test_substituted_relationships_evaluate_to_pytorchs_output(number: int) -> None:
    op, kwargs, spatial = RELATIONSHIP_CASES[number]
    layer = Layer(op, **kwargs)  # type: ignore[arg-type]
    doc = explain_layer(layer, (1, 1, *spatial))
    wanted = torch_output(layer, spatial)
    axes = doc.data["axes"]
    assert isinstance(axes, list)
    text, markdown, page = to_text(doc), to_markdown(doc), to_html(doc)
    for n, entry in enumerate(axes):
        rel = entry["relationship"]
        assert rel is not None and rel["number"] == number
        expression, _, claimed = rel["substituted"].rpartition(" = ")
        assert evaluate(expression) == int(claimed) == wanted[n]
        general, _, claimed = entry["substituted"].rpartition(" = ")
        assert evaluate(general) == int(claimed) == wanted[n]
        for written in (text, markdown, page):
            assert rel["substituted"] in written and entry["substituted"] in written
        assert f"`{rel['substituted']}`" in markdown and f"<code>{html.escape(rel['substituted'])}</code>" in page


def test_the_glued_digits_of_2p_are_gone() -> None:
    doc = explain_layer(Layer("conv2d", kernel_size=3, stride=2, padding=1), (1, 1, 32, 32))
    text = to_text(doc)
    assert "⌊(32 + 2·1 − 3) / 2⌋ + 1 = 16" in text and "21" not in text.split("Output size")[1].split("Findings")[0]
    assert substitute("s(i′ − 1) + k − 2p", {"s": 2, "i′": 3, "k": 3, "p": 1}) == "2·(3 − 1) + 3 − 2·1"
    assert substitute("⌊(i + 2p − k − (k − 1)(d − 1)) / s⌋ + 1", {"i": 7, "p": 1, "k": 3, "d": 2, "s": 2}) == (
        "⌊(7 + 2·1 − 3 − (3 − 1)·(2 − 1)) / 2⌋ + 1"
    )


layer_kinds = st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool"])


@examples(200)
@given(
    kind=layer_kinds,
    i=st.integers(1, 30),
    k=st.integers(1, 6),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
    a=st.integers(0, 3),
    ceil_mode=st.booleans(),
)
def test_the_general_formula_evaluates_to_pytorchs_output(
    kind: str, i: int, k: int, s: int, p: int, d: int, a: int, ceil_mode: bool
) -> None:
    pooling = kind.endswith("pool")
    options: dict[str, object] = {"kernel_size": k, "stride": s, "padding": p, "dilation": d}
    if kind == "avg_pool":
        options["dilation"] = 1
    if pooling:
        options["ceil_mode"] = ceil_mode
        assume(2 * p <= k)
    if kind == "conv_transpose":
        assume(a < max(s, d))
        options["output_padding"] = a
    layer = Layer(f"{kind}1d", **options)  # type: ignore[arg-type]
    try:
        wanted = torch_output(layer, (i,))
    except (RuntimeError, ConvArithError):
        wanted = None
    assume(wanted is not None and min(wanted) >= 1)
    doc = explain_layer(layer, (i,), symbolic=False)
    (entry,) = doc.data["axes"]  # type: ignore[misc]
    expression, _, claimed = entry["substituted"].rpartition(" = ")
    assert evaluate(expression) == int(claimed) == wanted[0]
    rel = entry["relationship"]
    if rel is not None:
        expression, _, claimed = rel["substituted"].rpartition(" = ")
        assert evaluate(expression) == int(claimed) == wanted[0]


# -- notes are findings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "spatial", "codes"),
    [
        (Layer("conv_transpose1d", kernel_size=3, stride=2), (4,), {"uneven-overlap", "output-padding-choice"}),
        (Layer("conv1d", kernel_size=3, stride=2), (8,), {"dropped-input"}),
        (Layer("conv_transpose1d", kernel_size=2, stride=2, dilation=2), (3,), {"empty-phase", "dilated-kernel"}),
        (Layer("conv2d", kernel_size=3, padding=[(0, 1), (1, 1)]), (5, 5), {"inexpressible-padding"}),
    ],
)
def test_the_notes_are_the_findings(layer: Layer, spatial: tuple[int, ...], codes: set[str]) -> None:
    bound = layer.bind(spatial)
    doc = explain_layer(bound)
    found = bound.findings(framework="torch")
    assert codes <= {f.code for f in found}
    notes = [
        "".join(p if isinstance(p, str) else p.text for p in block.parts)
        for block in doc.blocks
        if isinstance(block, Paragraph) and block.style == "note"
    ]
    expected = [f"{f.severity} ({f.code}): {f.message}" for f in found]
    assert [n for n in notes if n.split(" ", 1)[0] in ("error", "warning", "info")] == expected
    assert [f["code"] for f in doc.data["findings"]] == [f.code for f in found]  # type: ignore[union-attr]


def test_to_dict_is_json_and_holds_the_facts() -> None:
    layer = Layer("conv_transpose2d", 2, 4, kernel_size=3, stride=2, padding=1, output_padding=1)
    doc = explain_layer(layer, (1, 2, 3, 3))
    data = json.loads(json.dumps(doc.to_dict()))
    assert data["title"] == doc.title
    assert (
        data["output_shape"]
        == [1, 4, 6, 6]
        == list(torch.nn.ConvTranspose2d(2, 4, 3, 2, 1, 1)(torch.zeros(1, 2, 3, 3)).shape)
    )
    assert Layer.from_dict(data["layer"]) == layer
    assert [b["type"] for b in data["blocks"]].count("heading") == sum(
        type(b).__name__ == "Heading" for b in doc.blocks
    )
    assert data["axes"][0]["relationship"]["number"] == 14


def test_explain_refuses_what_it_cannot_take() -> None:
    with pytest.raises(ConvArithError) as err:
        explain_layer(Layer("conv2d", kernel_size=3))
    assert err.value.param == "input_shape"
    with pytest.raises(ConvArithError) as err:
        explain_layer(Layer("conv2d", kernel_size=3).bind((4, 4)), (4, 4))
    assert err.value.param == "input_shape"
    with pytest.raises(ConvArithError) as err:
        explain_layer("conv2d", (4, 4))  # type: ignore[arg-type]
    assert err.value.param == "layer"


# -- C and the stretched grid -----------------------------------------------------------------------------


def test_symbolic_matrix_is_the_guides_4x16_matrix() -> None:
    rows = symbolic_matrix(Layer("conv2d", kernel_size=3), (4, 4))
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
    direct = symbolic_matrix(Layer("conv2d", kernel_size=3, stride=2, padding=1), (5, 5))
    transposed = symbolic_matrix(Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1), (3, 3))
    assert transposed == [list(col) for col in zip(*direct, strict=True)]


def test_folded_taps_are_summed_symbolically() -> None:
    rows = symbolic_matrix(Layer("conv1d", kernel_size=3, padding=1, padding_mode="replicate"), (3,))
    assert rows[0] == ["w0+w1", "w2", "0"]


def test_stretched_grid_of_figure_4_7_puts_the_extra_cells_last() -> None:
    grid = stretched_grid(Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1), (3, 3))
    assert len(grid) == len(grid[0]) == 8  # 1 pad + 5 stretched + 1 pad + 1 extra
    assert grid[1][1:6] == ["y00", "0", "y01", "0", "y02"]
    assert grid[2][1:6] == ["0"] * 5
    assert set(grid[7]) == {"a"} and {row[7] for row in grid} == {"a"}
    assert set(grid[0][:7]) == {"·"} and grid[6][3] == "·"


def test_stretched_grid_crops_when_padding_exceeds_the_reach() -> None:
    grid = stretched_grid(Layer("conv_transpose1d", kernel_size=2, stride=2, padding=2), (3,))
    # p′ = 1 − 2 = −1 on both sides: the first and last stretched cells are cropped
    assert grid == [["0", "y1", "0"]]


@examples(60)
@given(i=st.integers(1, 6), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 3), a=st.integers(0, 2))
def test_the_stretched_grid_is_the_direct_convolutions_input(i: int, k: int, s: int, p: int, a: int) -> None:
    """Correlating the grid (y values, 0 elsewhere) with the rotated kernel gives PyTorch's conv_transpose."""
    assume(a < s)
    layer = Layer("conv_transpose1d", kernel_size=k, stride=s, padding=p, output_padding=a)
    try:
        bound = layer.bind((i,))
    except ConvArithError:
        bound = None
    assume(bound is not None)
    assert bound is not None
    y = torch.arange(1.0, i + 1, dtype=torch.float64).reshape(1, 1, i)
    w = torch.arange(1.0, k + 1, dtype=torch.float64).reshape(1, 1, k) * 10
    (row,) = stretched_grid(bound)
    values = torch.tensor([[[float(y[0, 0, int(c[1:])]) if c.startswith("y") else 0.0 for c in row]]])
    direct = torch.nn.functional.conv1d(values.double(), w.flip(-1))
    assert torch.equal(direct, torch.nn.functional.conv_transpose1d(y, w, stride=s, padding=p, output_padding=a))


# -- the tour ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_tour() -> Document:
    return tour_module.build_tour("torch")


def test_every_claim_of_the_tour_holds_with_pytorch(torch_tour: Document) -> None:
    checks = torch_tour.checks
    assert len(checks) >= 14
    assert all(c.passed for c in checks), [str(c) for c in checks if not c.passed]
    text = to_text(torch_tour)
    assert f"PyTorch {torch.__version__}" in text and "could not broadcast" in text


def test_the_tour_agrees_with_the_numpy_reference(torch_tour: Document) -> None:
    numpy_tour = tour_module.build_tour("numpy")
    assert all(c.passed for c in numpy_tour.checks), [str(c) for c in numpy_tour.checks if not c.passed]
    assert len(numpy_tour.checks) == len(torch_tour.checks)
    assert [c.what for c in numpy_tour.checks] == [c.what for c in torch_tour.checks]


def test_the_numpy_backend_does_not_claim_pytorch_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = pick_backend("numpy")
    assert chosen.name == "the NumPy reference" and "not installed" not in to_text(tour_module.build_tour("numpy"))
    assert isinstance(pick_backend("auto"), TorchBackend)
    real = backends.importlib.util.find_spec
    monkeypatch.setattr(
        backends.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert "PyTorch is not installed" in pick_backend("auto").name
    with pytest.raises(ConvArithError) as err:
        pick_backend("torch")
    assert err.value.param == "backend"


@pytest.mark.parametrize("name", ["torch", "numpy"])
def test_the_tour_checks_can_fail(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A wrong transposed convolution must turn the tour's checks red, with either backend."""
    broken = pick_backend(name)
    original = broken.conv_transpose
    monkeypatch.setattr(broken, "conv_transpose", lambda y, w, **kw: original(y, w, **kw) + 1e-6)
    monkeypatch.setattr(tour_module, "pick_backend", lambda _: broken)
    doc = tour_module.build_tour(name)
    assert sum(not c.passed for c in doc.checks) >= 5


def test_numpy_backend_gradient_is_exact_without_autograd() -> None:
    rng = np.random.default_rng(1)
    x, w, g = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal((1, 3, 3, 2))
    kwargs = {"stride": (2, 2), "padding": (1, 0)}
    assert np.allclose(
        NumpyBackend().input_grad(x, w, g, **kwargs), TorchBackend().input_grad(x, w, g, **kwargs), rtol=0, atol=1e-12
    )


def test_the_tour_embeds_the_pictures_it_is_given(tmp_path: Path) -> None:
    pictures = [("pictures/a.png", "first picture"), ("pictures/b.gif", "second & last")]
    doc = tour_module.write_tour(tmp_path, "numpy", pictures=pictures)
    images = [b for b in doc.blocks if isinstance(b, Image)]
    assert [(b.path, b.caption) for b in images] == pictures
    page = (tmp_path / "tour.html").read_text()
    markdown = (tmp_path / "tour.md").read_text()
    for path, caption in pictures:
        assert f'src="{path}"' in page and html.escape(caption) in page
        assert f"![{caption}]({path})" in markdown
    assert "## 2. The backward pass" in markdown and "❌" not in markdown
    assert not hasattr(tour_module, "TOUR_PICTURES")


def test_write_tour_refuses_a_file_where_the_folder_goes(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConvArithError) as err:
        tour_module.write_tour(target, "numpy")
    assert err.value.param == "output" and target.read_text() == "x"


def test_the_tour_and_frameworks_import_no_framework_until_asked() -> None:
    code = (
        "import sys, convarith.frameworks, convarith.explain.tour as t\n"
        "doc = t.build_tour('numpy')\n"
        "assert all(c.passed for c in doc.checks)\n"
        "bad = [m for m in ('torch', 'jax', 'keras', 'onnx', 'typer', 'rich') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "import convarith.render.gallery_items\n"  # the tour never needed it
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
