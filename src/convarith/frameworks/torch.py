"""PyTorch: its real ops and autograd, in float64, behind the tour's backend interface.

Imported only when PyTorch is asked for (:func:`convarith.explain.backends.pick_backend`); this is
the one place of convarith besides the other ``frameworks`` modules that imports ``torch``.

Examples
--------
>>> import numpy as np
>>> backend = TorchBackend()
>>> backend.conv(np.ones((1, 1, 4)), np.ones((1, 1, 3))).tolist()
[[[3.0, 3.0]]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ..explain.backends import ConvKwargs

Array = npt.NDArray[np.float64]

__all__ = ["TorchBackend"]


class TorchBackend:
    """PyTorch's ``conv``/``conv_transpose`` functions and autograd on float64 NumPy arrays."""

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self.name = f"PyTorch {torch.__version__}"

    def _fn(self, kind: str, ndim: int) -> Callable[..., object]:
        fn: Callable[..., object] = getattr(self._torch.nn.functional, f"{kind}{ndim}d")
        return fn

    def conv(self, x: Array, weight: Array, **kwargs: ConvKwargs) -> Array:
        """``F.convNd(x, weight, **kwargs)``.

        >>> import numpy as np
        >>> TorchBackend().conv(np.ones((1, 1, 3)), np.ones((1, 1, 1)), padding=1).shape
        (1, 1, 5)
        """
        t = self._torch
        out = self._fn("conv", x.ndim - 2)(t.from_numpy(x), t.from_numpy(weight), **kwargs)
        return np.asarray(out.numpy(), dtype=np.float64)  # type: ignore[attr-defined]

    def conv_transpose(self, y: Array, weight: Array, **kwargs: ConvKwargs) -> Array:
        """``F.conv_transposeNd(y, weight, **kwargs)``.

        >>> import numpy as np
        >>> TorchBackend().conv_transpose(np.ones((1, 1, 2)), np.ones((1, 1, 3)), stride=2).tolist()
        [[[1.0, 1.0, 2.0, 1.0, 1.0]]]
        """
        t = self._torch
        out = self._fn("conv_transpose", y.ndim - 2)(t.from_numpy(y), t.from_numpy(weight), **kwargs)
        return np.asarray(out.numpy(), dtype=np.float64)  # type: ignore[attr-defined]

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: ConvKwargs) -> Array:
        """``x.grad`` after ``F.convNd(x, weight, **kwargs).backward(grad_output)``.

        >>> import numpy as np
        >>> TorchBackend().input_grad(np.ones((1, 1, 3)), np.ones((1, 1, 2)), np.ones((1, 1, 2))).tolist()
        [[[1.0, 2.0, 1.0]]]
        """
        t = self._torch
        xt = t.from_numpy(x.copy()).requires_grad_(True)
        y = self._fn("conv", x.ndim - 2)(xt, t.from_numpy(weight), **kwargs)
        y.backward(t.from_numpy(grad_output))  # type: ignore[attr-defined]
        if xt.grad is None:  # pragma: no cover - autograd always fills it for a leaf
            raise RuntimeError("autograd gave no gradient")
        return np.asarray(xt.grad.numpy(), dtype=np.float64)
