"""Matrix-free convolution operators with exact adjoints, and the dot test that checks an adjoint.

:class:`ConvOperator` is one layer, for one sample, as a SciPy
:class:`~scipy.sparse.linalg.LinearOperator`: ``matvec`` is the layer (the GEMM kernels of
:mod:`convarith.ops.kernels`), ``rmatvec`` its exact adjoint, ``matmat``/``rmatmat`` run a batch
at once. The adjoint is the layer's :meth:`~convarith.BoundLayer.adjoint` (the layer whose matrix
is exactly ``Cᵀ``): for a convolution the transposed convolution, for a transposed convolution
the direct one. With ``reflect``, ``replicate`` or ``circular`` padding the input is first
gathered through the padding's index map, so the adjoint is the ``zeros`` layer's adjoint over the
padded input followed by the scatter-add through the same map.

Examples
--------
>>> import numpy as np
>>> from convarith import Layer
>>> layer = Layer("conv2d", kernel_size=3, stride=2, padding=1, padding_mode="circular")
>>> A = conv_operator(layer, np.ones((2, 1, 3, 3)), (1, 5, 5))
>>> A.shape, A.input_shape, A.output_shape
((18, 25), (1, 5, 5), (2, 3, 3))
>>> A.matvec(np.ones((1, 5, 5))).shape  # N-d in, N-d out
(2, 3, 3)
>>> dot_test(A, rng=0) < 1e-12
True
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from ..errors import ConvArithError
from ..geometry.bound import BoundLayer
from ..layer import IntOrSeq, Layer, PaddingArg
from . import kernels, routes
from .binding import bind_call, bind_weighted
from .reference import FloatArray

__all__ = ["OPERATOR_METHODS", "ConvOperator", "conv_operator", "dot_test"]

Batch = Callable[[kernels.Array], kernels.Array]


OPERATOR_METHODS: tuple[str, ...] = ("auto", "gemm", "fft")
"""The routes an operator runs both ways: the cost model's pick per direction, the GEMM kernels, the FFT."""


def _adjoint_of(bound: BoundLayer, weight: kernels.Array, method: str) -> Batch:
    """The batch function of ``Cᵀ``: the adjoint layer, and for a folding padding the fold after it."""
    if bound.transposed or bound.layer.padding_mode == "zeros":
        return routes.runner(bound.adjoint(), weight, method)
    mode = bound.layer.padding_mode
    padded = tuple(ax.padded for ax in bound.axes)
    valid = bound.resolved.replace(padding=0, padding_mode="zeros").bind((bound.in_channels, *padded)).adjoint()
    spatial, pads = bound.input_spatial, bound.pads
    transpose = routes.runner(valid, weight, method)
    return lambda ys: kernels.pad_adjoint(transpose(ys), spatial, pads, mode)


class ConvOperator(LinearOperator):  # type: ignore[misc]
    """A (transposed) convolution of one sample as a SciPy linear operator with its exact adjoint.

    Vectors are the row-major unrolling of ``(C, *spatial)``, as in
    :func:`~convarith.ops.matrix.conv_matrix`. ``matvec``/``rmatvec`` also take an N-d array of
    :attr:`input_shape` / :attr:`output_shape` and then return N-d; ``matmat``/``rmatmat`` take
    columns ``(size, k)`` or a batch ``(k, *input_shape)`` (PyTorch's order; N-d out then).
    A complex vector is applied to its real and imaginary parts.

    Parameters
    ----------
    layer
        The bound (transposed) convolution.
    weight
        Its weight, PyTorch's layout, float32 or float64 (the operator's dtype). It is read
        when a route first runs (the FFT keeps the kernel's spectrum): change it and build a new
        operator.
    method
        ``"auto"`` (per direction, the route :func:`convarith.ops.routes.choose` expects to be
        fastest for one sample), ``"gemm"`` (the GEMM kernels) or ``"fft"`` (products of spectra,
        the kernel transformed once).

    Attributes
    ----------
    layer : BoundLayer
        The bound layer (as given; its padding policy kept).
    input_shape, output_shape : tuple of int
        ``(C_in, *in)`` and ``(C_out, *out)`` of one sample.
    method : str
        The ``method`` asked for.

    Examples
    --------
    >>> import numpy as np
    >>> from convarith import Layer
    >>> A = ConvOperator(Layer("conv_transpose1d", 1, 1, kernel_size=2, stride=2).bind((3,)), np.array([[[1.0, 2.0]]]))
    >>> A.matvec(np.array([1.0, 10.0, 100.0]))
    array([  1.,   2.,  10.,  20., 100., 200.])
    >>> A.rmatvec(np.arange(6.0).reshape(1, 6))
    array([[ 2.,  8., 14.]])
    """

    def __init__(self, layer: BoundLayer, weight: npt.ArrayLike, method: str = "auto") -> None:
        if not isinstance(method, str) or method not in OPERATOR_METHODS:
            raise ConvArithError("method", f"must be one of {', '.join(OPERATOR_METHODS)}", repr(method))
        if not isinstance(layer, BoundLayer):
            raise ConvArithError("layer", "must be a bound (transposed) convolution (Layer.bind)", type(layer).__name__)
        w = kernels.float_array("weight", weight)
        bind_weighted(layer, None, w.shape)  # checks the kind and the weight's shape
        self.layer = layer
        self.weight = w
        self.input_shape: tuple[int, ...] = layer.sample_input_shape
        self.output_shape: tuple[int, ...] = layer.sample_output_shape
        self.method = method
        self._forward: Batch = routes.runner(layer, w, method)
        self._backward = _adjoint_of(layer, w, method)
        super().__init__(w.dtype, (math.prod(self.output_shape), math.prod(self.input_shape)))

    # -- SciPy's hooks (flat columns) ------------------------------------------------------------------

    def _apply(self, batch: Batch, v: npt.NDArray[np.generic], shape: tuple[int, ...], size: int) -> kernels.Array:
        if np.iscomplexobj(v):  # a real operator acts on both parts
            return self._apply(batch, v.real, shape, size) + 1j * self._apply(batch, v.imag, shape, size)
        k = v.shape[1]
        samples = np.ascontiguousarray(v.T, dtype=self.dtype).reshape(k, *shape)
        return batch(samples).reshape(k, size).T

    def _matmat(self, v: npt.NDArray[np.generic]) -> kernels.Array:
        return self._apply(self._forward, v, self.input_shape, self.shape[0])

    def _rmatmat(self, v: npt.NDArray[np.generic]) -> kernels.Array:
        return self._apply(self._backward, v, self.output_shape, self.shape[1])

    def _matvec(self, v: npt.NDArray[np.generic]) -> kernels.Array:
        return self._matmat(np.asarray(v).reshape(-1, 1))[:, 0]

    def _rmatvec(self, v: npt.NDArray[np.generic]) -> kernels.Array:
        return self._rmatmat(np.asarray(v).reshape(-1, 1))[:, 0]

    # -- the public methods, N-d aware ------------------------------------------------------------------

    def _vector(
        self, v: object, shape: tuple[int, ...], apply: Callable[[kernels.Array], kernels.Array], out: tuple[int, ...]
    ) -> kernels.Array:
        a = kernels.numeric_array("x", v)
        size = math.prod(shape)
        if a.shape == shape:
            return apply(a.reshape(size, 1))[:, 0].reshape(out)
        if a.shape in ((size,), (size, 1)):
            result = apply(a.reshape(size, 1))
            return result[:, 0] if a.ndim == 1 else result
        raise ConvArithError("x", f"must be a vector of {size} values or an array of shape {shape}", a.shape)

    def _columns(
        self, v: object, shape: tuple[int, ...], apply: Callable[[kernels.Array], kernels.Array], out: tuple[int, ...]
    ) -> kernels.Array:
        a = kernels.numeric_array("x", v)
        size = math.prod(shape)
        if a.ndim == 2 and a.shape[0] == size:
            return apply(a)
        if a.ndim == len(shape) + 1 and a.shape[1:] == shape:
            k = a.shape[0]
            return apply(a.reshape(k, size).T).T.reshape(k, *out)
        raise ConvArithError("x", f"must be columns ({size}, k) or a batch (k, *{shape})", a.shape)

    def matvec(self, x: npt.ArrayLike) -> FloatArray:
        """The layer applied to one sample: a vector of ``∏input_shape`` values, or an array of :attr:`input_shape`."""
        return self._vector(x, self.input_shape, self._matmat, self.output_shape)

    def rmatvec(self, x: npt.ArrayLike) -> FloatArray:
        """The adjoint (the input gradient of an output gradient), flat or of :attr:`output_shape`."""
        return self._vector(x, self.output_shape, self._rmatmat, self.input_shape)

    def matmat(self, X: npt.ArrayLike) -> FloatArray:
        """The layer on columns ``(∏input_shape, k)`` or on a batch ``(k, *input_shape)``."""
        return self._columns(X, self.input_shape, self._matmat, self.output_shape)

    def rmatmat(self, X: npt.ArrayLike) -> FloatArray:
        """The adjoint on columns ``(∏output_shape, k)`` or on a batch ``(k, *output_shape)``."""
        return self._columns(X, self.output_shape, self._rmatmat, self.input_shape)

    def dot(self, x: object) -> object:
        """``A @ x``: an N-d array of :attr:`input_shape` (or a batch of them) as in :meth:`matvec`, else SciPy's."""
        if isinstance(x, np.ndarray) and x.ndim >= 2 and x.shape[-len(self.input_shape) :] == self.input_shape:
            if x.shape == self.input_shape:
                return self.matvec(x)
            return self.matmat(x)
        return super().dot(x)

    def to_pylops(self) -> Any:
        """This operator as a PyLops linear operator, for PyLops' solvers, stacks and products.

        PyLops is imported here only (``pip install 'convarith[pylops]'``); the rest of convarith
        does not need it. The returned operator runs this operator's own kernels: its forward is
        :meth:`matvec`, its adjoint :meth:`rmatvec` (exact), and a matrix of columns is applied as
        one batch. ``dims`` and ``dimsd`` are :attr:`input_shape` and :attr:`output_shape`, so
        ``Op @ x`` takes an array of ``input_shape`` and returns one of ``output_shape``, and
        ``Op.H @ y`` the other way; flat vectors stay flat.

        Returns
        -------
        pylops.LinearOperator
            Shape :attr:`shape`, dtype :attr:`dtype` (float32 or float64), ``explicit=False``,
            ``clinear=True`` (a complex vector is applied to its real and imaginary parts); the
            convarith operator is its ``conv`` attribute.

        Raises
        ------
        ConvArithError
            When PyLops is not installed.

        Examples
        --------
        With PyLops installed (not run as a doctest, PyLops being optional)::

            import numpy as np
            from pylops.optimization.basic import cgls
            A = conv_operator("conv2d", np.ones((1, 1, 3, 3)) / 9, (1, 32, 32), padding=1)
            Op = A.to_pylops()            # dims (1, 32, 32), dimsd (1, 32, 32)
            y = Op @ np.ones((1, 32, 32))  # N-d in, N-d out
            x = cgls(Op, y.ravel(), niter=50)[0].reshape(Op.dims)
        """
        try:
            base: Any = importlib.import_module("pylops").LinearOperator  # optional, untyped
        except ImportError:
            raise ConvArithError("pylops", "is not installed: pip install 'convarith[pylops]'") from None
        conv = self

        class PyLopsConvOperator(base):  # type: ignore[misc]
            """A :class:`ConvOperator` seen by PyLops: convarith's forward and exact adjoint."""

            def __init__(self) -> None:
                super().__init__(
                    dtype=conv.dtype,
                    shape=conv.shape,
                    dims=conv.input_shape,
                    dimsd=conv.output_shape,
                    clinear=True,
                    explicit=False,
                    name="C",
                )
                self.conv = conv

            def _matvec(self, x: npt.NDArray[np.generic]) -> kernels.Array:
                return conv._matvec(x)

            def _rmatvec(self, x: npt.NDArray[np.generic]) -> kernels.Array:
                return conv._rmatvec(x)

            def _matmat(self, X: npt.NDArray[np.generic]) -> kernels.Array:
                return conv._matmat(np.asarray(X))

            def _rmatmat(self, X: npt.NDArray[np.generic]) -> kernels.Array:
                return conv._rmatmat(np.asarray(X))

        return PyLopsConvOperator()

    def __repr__(self) -> str:
        return f"<ConvOperator {self.layer.caption()} {self.output_shape}×{self.input_shape} {self.dtype}>"


def conv_operator(
    layer: Layer | BoundLayer | str,
    weight: npt.ArrayLike,
    input_shape: tuple[int, ...] | list[int] | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> ConvOperator:
    """A convolution or transposed convolution of one sample as a matrix-free linear operator.

    Parameters
    ----------
    layer
        A :class:`~convarith.BoundLayer` (then no ``input_shape``), a :class:`~convarith.Layer`
        (then ``input_shape``; channels it leaves open come from the weight; only the layer's own
        rules apply, so crops and ONNX's negative transposed pads are computed), or an op name
        (``conv1d`` …, ``conv_transpose1d`` …) with PyTorch's keywords and rules.
    weight
        PyTorch's layout: ``(C_out, C_in/groups, *k)`` for ``conv``, ``(C_in, C_out/groups, *k)``
        for ``conv_transpose``; float32 or float64 (the operator's dtype).
    input_shape
        One sample: the spatial sizes or ``(C_in, *spatial)`` (an op name needs ``C_in``);
        ``(1, C_in, *spatial)`` is accepted.
    stride, padding, dilation, groups, output_padding, padding_mode
        PyTorch's keywords, with an op name only. No bias: an operator is linear.
    method
        The route of both directions: ``"auto"``, ``"gemm"`` or ``"fft"`` (:class:`ConvOperator`).

    Returns
    -------
    ConvOperator
        Shape ``(C_out·∏out, C_in·∏in)`` with ``matvec``, ``rmatvec`` (exact adjoint), ``matmat``
        and ``rmatmat``, carrying ``layer``, ``input_shape`` and ``output_shape``.

    Raises
    ------
    ConvArithError
        For a pooling layer, a weight that does not fit, a keyword set next to a layer, or what
        the layer (or PyTorch, with an op name) refuses.

    Examples
    --------
    >>> import numpy as np
    >>> A = conv_operator("conv_transpose1d", np.array([[[1.0, 2.0]]]), (1, 3), stride=2)
    >>> A.matvec(np.array([1.0, 10.0, 100.0]))
    array([  1.,   2.,  10.,  20., 100., 200.])
    >>> A.rmatvec(np.arange(6.0))
    array([ 2.,  8., 14.])
    """
    w = kernels.float_array("weight", weight)
    keywords = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "output_padding": output_padding,
        "padding_mode": padding_mode,
    }
    bound = bind_call(layer, input_shape, w.shape, keywords, caller="conv_operator")
    return ConvOperator(bound, w, method)


def dot_test(
    operator: LinearOperator | npt.ArrayLike,
    *,
    rng: int | np.random.Generator | None = None,
    dtype: npt.DTypeLike = np.float64,
    power_iterations: int = 3,
) -> float:
    """The normalised dot-test error ``|⟨Ax, y⟩ − ⟨x, Aᵀy⟩| / (‖A‖·‖x‖·‖y‖)`` for random x, y.

    A correct adjoint gives rounding error only (about 1e-16 in float64, 1e-7 in float32); a wrong
    one gives an error of order 1/√size or more.

    ``‖A‖`` (the spectral norm) is estimated *from below*: the largest of ``‖Ax‖/‖x‖``,
    ``‖Aᵀy‖/‖y‖`` and ``‖Av‖`` for the unit vectors v of a few power iterations on ``AᵀA``
    started at x. A smaller denominator can only make the reported error larger, so the number is
    an upper bound of the error normalised by the true norm (when the adjoint is correct).

    Parameters
    ----------
    operator
        A :class:`~scipy.sparse.linalg.LinearOperator` (a :class:`ConvOperator`, say), or
        anything :func:`~scipy.sparse.linalg.aslinearoperator` accepts (a dense or sparse matrix).
    rng
        Seed or generator of the random vectors.
    dtype
        dtype of x and y; the inner products are taken in float64.
    power_iterations
        Power iterations for the norm estimate (each costs one ``matvec`` and one ``rmatvec``).

    Returns
    -------
    float
        The normalised error (0.0 for a zero operator with a zero adjoint).

    Raises
    ------
    ConvArithError
        For something that is not an operator or a matrix.

    Examples
    --------
    >>> import numpy as np
    >>> dot_test(np.arange(6.0).reshape(2, 3), rng=0)
    0.0
    >>> from scipy.sparse.linalg import LinearOperator
    >>> wrong = LinearOperator((2, 2), matvec=lambda v: v, rmatvec=lambda v: 2 * v, dtype=float)
    >>> dot_test(wrong, rng=0) > 0.1
    True
    """
    if not isinstance(operator, LinearOperator):
        import scipy.sparse as sp

        matrix: Any = operator if sp.issparse(operator) else kernels.numeric_array("operator", operator, "biuf")
        if matrix.ndim != 2:
            raise ConvArithError("operator", "must be a LinearOperator or a real 2-d matrix", type(operator).__name__)
        operator = matrix
    linear = aslinearoperator(operator)
    if np.dtype(linear.dtype).kind not in "biuf":
        raise ConvArithError("operator", "must be real (the dot test compares real inner products)", str(linear.dtype))
    try:
        value_dtype = np.dtype(dtype)
    except TypeError:
        raise ConvArithError("dtype", "must be float32 or float64", repr(dtype)) from None
    if value_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConvArithError("dtype", "must be float32 or float64", repr(dtype))
    dtype = value_dtype
    if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) or power_iterations < 0:
        raise ConvArithError("power_iterations", "must be an integer, at least 0", repr(power_iterations))
    if not (
        rng is None
        or isinstance(rng, np.random.Generator)
        or (isinstance(rng, int) and not isinstance(rng, bool) and rng >= 0)
    ):
        raise ConvArithError("rng", "must be None, a non-negative int seed or a numpy Generator", repr(rng))
    generator = np.random.default_rng(rng)
    m, n = linear.shape
    x = generator.standard_normal(n).astype(dtype)
    y = generator.standard_normal(m).astype(dtype)
    ax = np.asarray(linear.matvec(x), dtype=np.float64).ravel()
    aty = np.asarray(linear.rmatvec(y), dtype=np.float64).ravel()
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    forward, backward = float(np.dot(ax, y64)), float(np.dot(x64, aty))
    norm_x, norm_y = float(np.linalg.norm(x64)), float(np.linalg.norm(y64))
    if norm_x == 0.0 or norm_y == 0.0:
        return 0.0
    norm_a = max(float(np.linalg.norm(ax)) / norm_x, float(np.linalg.norm(aty)) / norm_y)
    v = x64 / norm_x
    for _ in range(power_iterations):
        av = np.asarray(linear.matvec(v.astype(dtype)), dtype=np.float64).ravel()
        norm_a = max(norm_a, float(np.linalg.norm(av)) / float(np.linalg.norm(v)))
        w = np.asarray(linear.rmatvec(av.astype(dtype)), dtype=np.float64).ravel()
        norm_w = float(np.linalg.norm(w))
        if not np.isfinite(norm_w) or norm_w == 0.0:
            break
        v = w / norm_w
    denominator = norm_a * norm_x * norm_y
    if denominator == 0.0:
        return 0.0 if forward == backward else math.inf
    return abs(forward - backward) / denominator
