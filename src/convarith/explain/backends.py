"""Where the tour's numbers come from: PyTorch when it is installed, the NumPy reference otherwise.

Both backends offer the same three things on float64 NumPy arrays with batch and channel axes:
a convolution, a transposed convolution, and the gradient of ``sum(g · conv(x))`` with respect to
``x`` — PyTorch's autograd, or, for the reference, the exact finite difference of a linear map
(one unit step per input cell), which shares no code with the transposed convolution.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

__all__ = ["Backend", "NumpyBackend", "TorchBackend", "pick_backend"]


class Backend(Protocol):
    name: str

    def conv(self, x: Array, weight: Array, **kwargs: Any) -> Array: ...

    def conv_transpose(self, y: Array, weight: Array, **kwargs: Any) -> Array: ...

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: Any) -> Array: ...


class TorchBackend:
    """PyTorch's real ops and autograd, in float64."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.name = f"PyTorch {torch.__version__}"

    def _fn(self, kind: str, ndim: int) -> Any:
        return getattr(self.torch.nn.functional, f"{kind}{ndim}d")

    def conv(self, x: Array, weight: Array, **kwargs: Any) -> Array:
        t = self.torch
        return self._fn("conv", x.ndim - 2)(t.from_numpy(x), t.from_numpy(weight), **kwargs).numpy()  # type: ignore[no-any-return]

    def conv_transpose(self, y: Array, weight: Array, **kwargs: Any) -> Array:
        t = self.torch
        out = self._fn("conv_transpose", y.ndim - 2)(t.from_numpy(y), t.from_numpy(weight), **kwargs)
        return out.numpy()  # type: ignore[no-any-return]

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: Any) -> Array:
        t = self.torch
        xt = t.from_numpy(x.copy()).requires_grad_(True)
        y = self._fn("conv", x.ndim - 2)(xt, t.from_numpy(weight), **kwargs)
        y.backward(t.from_numpy(grad_output))
        assert xt.grad is not None
        return xt.grad.numpy()  # type: ignore[no-any-return]


class NumpyBackend:
    """convarith's NumPy reference ops; gradients by exact unit finite differences."""

    name = "the NumPy reference (PyTorch is not installed)"

    def conv(self, x: Array, weight: Array, **kwargs: Any) -> Array:
        from ..ops.reference import conv

        out: Array = conv(x, weight, **kwargs)
        return out

    def conv_transpose(self, y: Array, weight: Array, **kwargs: Any) -> Array:
        from ..ops.reference import conv_transpose

        out: Array = conv_transpose(y, weight, **kwargs)
        return out

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: Any) -> Array:
        # conv is linear, so d/dx_i sum(g · conv(x)) = sum(g · conv(e_i)) exactly.
        grad = np.zeros_like(x)
        unit = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            unit[index] = 1.0
            grad[index] = float(np.sum(grad_output * self.conv(unit, weight, **kwargs)))
            unit[index] = 0.0
        return grad


def pick_backend(name: str = "auto") -> Backend:
    """``"torch"``, ``"numpy"`` or ``"auto"`` (PyTorch when installed)."""
    if name == "numpy" or (name == "auto" and importlib.util.find_spec("torch") is None):
        return NumpyBackend()
    return TorchBackend()
