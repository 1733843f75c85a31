"""The tour: the motivating question answered with numbers computed on the spot.

A reader of Dumoulin & Visin tried to check two statements in PyTorch and failed (see
``shared/motivating-question.md``): that the backward pass multiplies by Cᵀ, and that a transposed
convolution equals a direct convolution over a zero-padded input. Both are true; the tour shows
exactly why the reader's checks failed and then goes on to the general case. Every step states a
claim, shows the numbers and checks them (max abs error), with PyTorch when it is installed and the
NumPy reference otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..geometry.bound import BoundLayer
from ..geometry.relations import input_sizes_for_output
from ..layer import Layer
from .backends import Backend, ConvKwargs, pick_backend
from .derivation import stretched_grid, symbolic_matrix
from .document import Code, Document, to_html, to_markdown

Array = npt.NDArray[np.float64]

__all__ = ["build_tour", "direct_route", "write_tour"]

TOL = 1e-12


def _grid(values: Array, decimals: int = 2) -> list[list[str]]:
    rows = np.atleast_2d(values)
    return [[f"{v:.{decimals}f}" for v in row] for row in rows]


def _err(a: Array, b: Array) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def direct_route(
    backend: Backend, y: Array, weight: Array, bound: BoundLayer, *, rotate: bool = True, swap: bool = True
) -> Array:
    """A transposed convolution computed the guide's §4.3 way: zero insertion, padding, rotated kernel.

    The input and kernel are prepared by the reference ops (:func:`convarith.ops.reference.stretched_input`
    over :meth:`~convarith.BoundLayer.direct`, and :func:`~convarith.ops.reference.direct_kernel`);
    the stride-1 convolution is the backend's own. ``rotate`` and ``swap`` can be switched off to
    show what goes wrong without them.

    >>> import numpy as np
    >>> from convarith import Layer
    >>> from convarith.explain.backends import pick_backend
    >>> bound = Layer("conv_transpose1d", 1, 1, kernel_size=3, stride=2).bind((1, 1, 2))
    >>> direct_route(pick_backend("numpy"), np.ones((1, 1, 2)), np.array([[[1.0, 2.0, 3.0]]]), bound).tolist()
    [[[1.0, 2.0, 4.0, 2.0, 3.0]]]
    """
    from ..ops.reference import direct_kernel, stretched_input

    if not bound.transposed:
        raise ConvArithError("layer", "the direct route is of a transposed convolution", bound.op)
    layer = bound.layer
    kernel = np.asarray(direct_kernel(weight, layer.groups, rotate=rotate, swap=swap), dtype=np.float64)
    stretched = np.asarray(stretched_input(y, bound), dtype=np.float64)
    return backend.conv(stretched, kernel, dilation=layer.dilation, groups=layer.groups)


def build_tour(backend: str = "auto", pictures: Sequence[tuple[str, str]] = ()) -> Document:
    """All steps of the tour as one :class:`Document` (its checks say whether every claim held).

    Parameters
    ----------
    backend
        ``"auto"`` (PyTorch when installed), ``"torch"`` or ``"numpy"``.
    pictures
        ``(path, caption)`` pairs of pictures already drawn (the CLI draws them with
        ``convarith.render.gallery_items.tour_pictures``), shown in a last section.

    Examples
    --------
    >>> doc = build_tour("numpy")
    >>> all(check.passed for check in doc.checks), len(doc.checks) >= 14
    (True, True)
    """
    chosen = pick_backend(backend)
    doc = Document("convarith tour: the motivating question, answered with numbers")
    doc.para("Numbers computed on the spot with ", Code(chosen.name), ", in float64.")
    rng = np.random.default_rng(0)
    x = np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.round(rng.random((1, 1, 3, 3)), 2)
    for step in (_step_matrix, _step_gradient, _step_rotation, _step_general):
        step(doc, chosen, x, w, rng)
    if pictures:
        doc.heading("Pictures")
        doc.para(
            "The steps above, drawn by convarith (", Code("convarith gallery"), " draws the guide's whole gallery)."
        )
        for path, caption in pictures:
            doc.image(path, caption)
    passed = sum(c.passed for c in doc.checks)
    doc.heading("Summary")
    doc.para(f"{passed} of {len(doc.checks)} checks passed.")
    doc.data["backend"] = chosen.name
    return doc


def write_tour(out: Path, backend: str = "auto", pictures: Sequence[tuple[str, str]] = ()) -> Document:
    """Build the tour and write ``tour.md`` and ``tour.html`` into the folder ``out``.

    ``pictures`` are ``(path relative to out, caption)`` pairs, already drawn by the caller.

    Raises
    ------
    ConvArithError
        ``output``: the folder cannot be made or written (an existing file, no permission).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     doc = write_tour(Path(folder), "numpy")
    ...     sorted(p.name for p in Path(folder).iterdir())
    ['tour.html', 'tour.md']
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConvArithError("output", "must be a folder, not an existing file", str(out))
    doc = build_tour(backend, pictures)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "tour.md").write_text(to_markdown(doc), encoding="utf-8")
        (out / "tour.html").write_text(to_html(doc), encoding="utf-8")
    except OSError as err:
        raise ConvArithError("output", f"cannot write the tour there ({err.strerror or err})", str(out)) from None
    return doc


def _matrix(layer: Layer, weight: Array, input_shape: tuple[int, ...]) -> Array:
    from ..ops.matrix import conv_matrix

    return np.asarray(conv_matrix(layer, weight, input_shape, format="dense"), dtype=np.float64)


def _step_matrix(doc: Document, backend: Backend, x: Array, w: Array, rng: np.random.Generator) -> None:
    doc.heading("1. The matrix C of a 4×4 input and a 3×3 kernel")
    layer = Layer("conv2d", kernel_size=3)
    doc.para(
        "The guide (§4.1) unrolls the 4×4 input into a 16-vector and the 2×2 output into a 4-vector; the "
        "convolution is then y = C·x with C of shape 4×16. Kernel row r of the window at output (i, j) starts at "
        "column (i + r)·W + j with W = 4: the three kernel rows sit at strided positions, not in one slice."
    )
    doc.grid(symbolic_matrix(layer, (4, 4)), "C, symbolically (the guide's layout)")
    C = _matrix(layer, w, (1, 4, 4))
    doc.grid(_grid(w[0, 0]), "the kernel w used below")
    doc.grid(_grid(C), "C with those numbers")
    y = backend.conv(x, w)
    doc.check("C @ x.ravel() equals conv2d(x, w)", _err(C @ x.ravel(), y.ravel()), TOL)
    doc.para("Why the question's construction fails:", style="claim")
    doc.para(
        "It writes ",
        Code("C[0, :3] = w"),
        ", putting a whole 3×3 kernel into a 3-wide slice. That is not a "
        "valid assignment at all (a (3, 3) array does not fit a (3,) slice), and no reading of it gives C: each "
        "3-wide slice takes one kernel row — ",
        Code("C[0, 0:3] = w[0]; C[0, 4:7] = w[1]; C[0, 8:11] = w[2]"),
        " — and the offsets 0, 4, 8 are r·W.",
    )
    question_c = np.zeros((4, 16))
    try:
        question_c[0, :3] = w[0, 0]  # the question's line, with its 3×3 kernel
    except ValueError as err:
        doc.para("Running the question's first assignment fails: ", Code(str(err)))
    C_rows = np.zeros((4, 16))
    for row, (i, j) in enumerate(np.ndindex(2, 2)):
        for r in range(3):
            C_rows[row, (i + r) * 4 + j : (i + r) * 4 + j + 3] = w[0, 0, r]
    doc.check("C built row by row at columns (i + r)·W + j equals convarith's C", _err(C_rows, C), 0.0)


def _step_gradient(doc: Document, backend: Backend, x: Array, w: Array, rng: np.random.Generator) -> None:
    doc.heading("2. The backward pass multiplies the upstream gradient by Cᵀ")
    C = _matrix(Layer("conv2d", kernel_size=3), w, (1, 4, 4))
    y = backend.conv(x, w)
    ones = np.ones_like(y)
    grad = backend.input_grad(x, w, ones)
    doc.para(
        Code("y.backward(torch.ones_like(y))"),
        " back-propagates the upstream gradient ∂L/∂y = 1 (the loss is "
        "L = sum(y)), so the input gradient is x.grad = Cᵀ·1 — not Cᵀ·y.",
        style="claim",
    )
    doc.grid(_grid(grad[0, 0]), "x.grad from " + backend.name)
    doc.grid(_grid((C.T @ ones.ravel()).reshape(4, 4)), "Cᵀ · ones")
    doc.check("x.grad equals Cᵀ · grad_output (grad_output = ones)", _err(C.T @ ones.ravel(), grad.ravel()), TOL)
    g = np.round(rng.standard_normal(y.shape), 2)
    grad_g = backend.input_grad(x, w, g)
    doc.check(
        "…and for a random upstream gradient g too: x.grad equals Cᵀ · g", _err(C.T @ g.ravel(), grad_g.ravel()), TOL
    )
    cty = (C.T @ y.ravel()).reshape(4, 4)
    doc.grid(_grid(cty), "Cᵀ · y — what the question computed")
    doc.para(
        f"Cᵀ·y differs from x.grad by up to {_err(cty, grad[0, 0]):.4g}: it multiplies Cᵀ by the output y, which "
        "is not the gradient. Cᵀ·y is something else — the transposed convolution of y:"
    )
    doc.check("Cᵀ · y equals conv_transpose2d(y, w)", _err(cty.ravel(), backend.conv_transpose(y, w).ravel()), TOL)


def _step_rotation(doc: Document, backend: Backend, x: Array, w: Array, rng: np.random.Generator) -> None:
    doc.heading("3. A transposed convolution is a direct one over the padded input — with the kernel rotated")
    bound = Layer("conv_transpose2d", 1, 1, kernel_size=3).bind((1, 1, 2, 2))
    y = backend.conv(x, w)
    expected = backend.conv_transpose(y, w)
    doc.para(
        "conv_transpose2d(y, w) equals conv2d(pad(y, k − 1), rot180(w)): the 2×2 input padded by a border of "
        "k − 1 = 2 zeros (i′ = 2, k′ = 3, s′ = 1, p′ = 2, the guide's relationship 8).",
        style="claim",
    )
    doc.grid(stretched_grid(bound), "the padded input of the equivalent direct convolution")
    doc.grid(_grid(expected[0, 0]), "conv_transpose2d(y, w)")
    rotated = direct_route(backend, y, w, bound)
    unrotated = direct_route(backend, y, w, bound, rotate=False)
    doc.check("conv2d(pad(y, 2), rot180(w)) equals conv_transpose2d(y, w)", _err(rotated, expected), TOL)
    off = _err(unrotated, expected)
    doc.grid(_grid(unrotated[0, 0]), "conv2d(pad(y, 2), w) — without the rotation")
    doc.para(
        f"Without the rotation the result is off by up to {off:.4g}. Frameworks compute cross-correlation (they "
        "slide the kernel without flipping it), so the direct convolution that equals the transposed one must use "
        "the kernel rotated by 180°. The guide's statement is written for convolution in the mathematical sense; "
        "its repository's errata (issue #4) says so."
    )
    doc.check("conv2d(pad(y, 2), w) without the rotation does not reproduce it", off, 1e-3, expect="beyond")


def _step_general(doc: Document, backend: Backend, x: Array, w: Array, rng: np.random.Generator) -> None:
    doc.heading("4. The general case: stride, padding, output_padding, dilation, groups")

    def verify(title: str, layer: Layer, c_in: int, c_out: int, spatial: tuple[int, ...]) -> None:
        doc.heading(title, 3)
        bound = layer.replace(in_channels=c_in, out_channels=c_out).bind((1, c_in, *spatial))
        weight = rng.standard_normal(bound.weight_shape)
        y = rng.standard_normal(bound.input_shape)
        kwargs: dict[str, ConvKwargs] = {
            "stride": layer.stride,
            "padding": tuple(before for before, _ in bound.pads),
            "dilation": layer.dilation,
            "groups": layer.groups,
        }
        expected = backend.conv_transpose(y, weight, output_padding=bound.output_padding, **kwargs)
        doc.para("The direct convolution: ", Code(bound.direct().conv.caption()), ".")
        doc.table(
            ["axis", "i′", "zeros between", "ĩ′", "k", "d", "p′ before", "p′ after", "a", "o′"],
            [
                [
                    str(n),
                    str(e.input),
                    str(e.zeros_between),
                    str(e.stretched),
                    str(e.kernel),
                    str(e.dilation),
                    str(e.pad[0]),
                    str(e.pad[1]),
                    str(e.output_padding),
                    str(e.output),
                ]
                for n, e in enumerate(bound.direct().axes)
            ],
        )
        doc.check(
            f"{title}: the equivalent direct convolution equals conv_transpose",
            _err(direct_route(backend, y, weight, bound), expected),
            TOL * max(1.0, float(np.abs(expected).max())),
        )
        # The direct convolution this one transposes: its input gradient is Cᵀ · g.
        adjoint = bound.adjoint()
        xin = rng.standard_normal(adjoint.input_shape)
        g = rng.standard_normal(y.shape)
        grad = backend.input_grad(xin, weight, g, **kwargs)
        C = _matrix(adjoint.layer.replace(in_channels=None, out_channels=None), weight, adjoint.sample_input_shape)
        doc.check(
            f"{title}: x.grad of the direct convolution equals Cᵀ · g",
            _err(C.T @ g.ravel(), grad.ravel()),
            TOL * max(1.0, float(np.abs(grad).max())),
        )

    conv = Layer("conv2d", kernel_size=3, stride=2, padding=1)
    sizes = input_sizes_for_output(conv, (3, 3))[0]
    doc.para(
        f"A stride-2 convolution with k = 3, p = 1 maps every input size in {list(sizes)} to 3: the floor in "
        "o = ⌊(i + 2p − k)/s⌋ + 1 forgets which. Its transpose must be told — that is output_padding a, the "
        "guide's relationship 14: o′ = s(i′ − 1) + a + k − 2p.",
        style="claim",
    )
    odd = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
    doc.table(
        ["output_padding a", "o′"],
        [[str(a), str(odd.replace(output_padding=a).bind((3, 3)).output_spatial[0])] for a in (0, 1)],
    )
    doc.grid(
        stretched_grid(odd, (3, 3)),
        "i′ = 3, s = 2, p = 1, a = 1: one zero between inputs, p′ = 1 before and "
        "p′ + a = 2 after (the guide's Figure 4.7)",
    )
    verify("stride 2, padding 1, output_padding 1", odd, 1, 1, (3, 3))
    verify("dilation 2 (p′ = d(k − 1) − p = 4)", Layer("conv_transpose2d", kernel_size=3, dilation=2), 1, 1, (3, 3))
    verify(
        "asymmetric sizes: stride (2, 3), dilation (1, 2), padding (2, 1)",
        Layer(
            "conv_transpose2d",
            kernel_size=(3, 2),
            stride=(2, 3),
            dilation=(1, 2),
            padding=(2, 1),
            output_padding=(1, 2),
        ),
        2,
        2,
        (4, 3),
    )
    groups = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, groups=2)
    verify("groups 2, 4 → 6 channels", groups, 4, 6, (3, 3))
    doc.para(
        "With several channels the kernel's in/out axes must also be swapped, per group: a transposed weight is "
        "(C_in, C_out/g, k…) while a direct one is (C_out, C_in/g, k…). Without the swap a 4 → 6 channel layer is "
        "refused outright; a 4 → 4 one runs and is wrong:"
    )
    weight = rng.standard_normal((4, 2, 3, 3))
    y = rng.standard_normal((1, 4, 3, 3))
    wrong = direct_route(backend, y, weight, groups.bind(y.shape), swap=False)
    off = _err(wrong, backend.conv_transpose(y, weight, stride=2, padding=1, groups=2))
    doc.check("without the per-group channel swap the route does not reproduce it", off, 1e-3, expect="beyond")
