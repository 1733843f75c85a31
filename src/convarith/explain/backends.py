"""Where the tour's numbers come from: PyTorch when it is installed, the NumPy reference otherwise.

Both backends offer the same three things on float64 NumPy arrays with batch and channel axes:
a convolution, a transposed convolution, and the gradient of ``sum(g · conv(x))`` with respect to
``x`` — PyTorch's autograd (:class:`convarith.frameworks.torch.TorchBackend`, imported only when
picked), or, for the reference, the exact finite difference of a linear map (one unit step per
input cell), which shares no code with the transposed convolution.

Examples
--------
>>> pick_backend("numpy").name
'the NumPy reference'
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError

Array = npt.NDArray[np.float64]
ConvKwargs = int | tuple[int, ...] | list[int]
"""The keyword values the tour passes (stride, padding, output_padding, dilation, groups)."""

__all__ = ["BACKENDS", "Backend", "ConvKwargs", "NumpyBackend", "pick_backend"]

BACKENDS: tuple[str, ...] = ("auto", "torch", "numpy")


class Backend(Protocol):
    """What the tour needs of a framework."""

    name: str

    def conv(self, x: Array, weight: Array, **kwargs: ConvKwargs) -> Array: ...

    def conv_transpose(self, y: Array, weight: Array, **kwargs: ConvKwargs) -> Array: ...

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: ConvKwargs) -> Array: ...


class NumpyBackend:
    """convarith's NumPy reference ops; gradients by exact unit finite differences.

    >>> import numpy as np
    >>> NumpyBackend().input_grad(np.ones((1, 1, 3)), np.ones((1, 1, 2)), np.ones((1, 1, 2))).tolist()
    [[[1.0, 2.0, 1.0]]]
    """

    def __init__(self, name: str = "the NumPy reference") -> None:
        self.name = name

    def conv(self, x: Array, weight: Array, **kwargs: ConvKwargs) -> Array:
        from ..ops.reference import conv

        return np.asarray(conv(x, weight, **kwargs), dtype=np.float64)  # type: ignore[arg-type]

    def conv_transpose(self, y: Array, weight: Array, **kwargs: ConvKwargs) -> Array:
        from ..ops.reference import conv_transpose

        return np.asarray(conv_transpose(y, weight, **kwargs), dtype=np.float64)  # type: ignore[arg-type]

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: ConvKwargs) -> Array:
        # conv is linear, so d/dx_i sum(g · conv(x)) = sum(g · conv(e_i)) exactly.
        grad = np.zeros_like(x)
        unit = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            unit[index] = 1.0
            grad[index] = float(np.sum(grad_output * self.conv(unit, weight, **kwargs)))
            unit[index] = 0.0
        return grad


def pick_backend(name: str = "auto") -> Backend:
    """``"torch"``, ``"numpy"`` or ``"auto"`` (PyTorch when it is installed).

    The NumPy backend's name says why it was picked: ``"the NumPy reference"`` when asked for,
    ``"the NumPy reference (PyTorch is not installed)"`` when ``"auto"`` found no PyTorch.

    >>> pick_backend("numpy").name
    'the NumPy reference'
    >>> pick_backend("jax")
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: backend: must be one of auto, torch, numpy; got 'jax'
    """
    if name not in BACKENDS:
        raise ConvArithError("backend", f"must be one of {', '.join(BACKENDS)}", repr(name))
    if name == "numpy":
        return NumpyBackend()
    if importlib.util.find_spec("torch") is None:
        if name == "auto":
            return NumpyBackend("the NumPy reference (PyTorch is not installed)")
        raise ConvArithError("backend", "PyTorch is not installed; use 'numpy' or 'auto'", repr(name))
    from ..frameworks.torch import TorchBackend

    return TorchBackend()
