"""One general N-d description of a convolution, transposed convolution or pooling layer.

A :class:`ConvSpec` holds the per-axis hyper-parameters in PyTorch's naming and checks the rules
that do not depend on the input (PyTorch's rules, so that a spec is valid exactly when PyTorch
would accept it). Channels are not part of it: they are checked by :func:`check_channels`.

Examples
--------
>>> spec = ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1)
>>> spec.op, spec.kernel_size, spec.padding
('conv2d', (3, 3), ((1, 1), (1, 1)))
>>> spec.output_spatial((32, 32))
(16, 16)
>>> ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, output_padding=2)
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
convarith.errors.ConvArithError: output_padding: must be smaller than stride or dilation on every axis ...
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, cast, get_args

from ..errors import ConvArithError
from .arithmetic import Pad, conv_output_size, conv_transpose_output_size, effective_kernel, pool_output_size
from .padding import POLICIES, PaddingPolicy, resolve_policy, tf_same_transpose

Kind = Literal["conv", "conv_transpose", "max_pool", "avg_pool"]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
KINDS: tuple[str, ...] = get_args(Kind)
PADDING_MODES: tuple[str, ...] = get_args(PaddingMode)

IntOrSeq = int | Sequence[int]
PaddingArg = int | str | Sequence[int | Sequence[int]]

_OP_PATTERN = re.compile(r"^(conv|conv_transpose|max_pool|avg_pool)([1-9])d$")
OPS: tuple[str, ...] = tuple(f"{kind}{n}d" for kind in KINDS for n in (1, 2, 3))

__all__ = [
    "KINDS",
    "OPS",
    "PADDING_MODES",
    "ConvSpec",
    "Kind",
    "PaddingMode",
    "check_channels",
    "parse_op",
]


def parse_op(op: str) -> tuple[Kind, int]:
    """Split an op name such as ``"conv_transpose2d"`` into its kind and number of spatial axes."""
    match = _OP_PATTERN.match(op) if isinstance(op, str) else None
    if match is None:
        raise ConvArithError(
            "op", "must be conv, conv_transpose, max_pool or avg_pool followed by 1d, 2d or 3d", repr(op)
        )
    return cast(Kind, match.group(1)), int(match.group(2))


def _as_int(param: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConvArithError(param, "must be an integer, not a boolean", value)
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConvArithError(param, "must be an integer", repr(value)) from None


def _per_axis(param: str, value: object, ndim: int) -> tuple[int, ...]:
    """An int for every axis, or one value per axis."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(_as_int(param, v) for v in value)
        if len(values) == 1:
            return values * ndim
        if len(values) != ndim:
            raise ConvArithError(param, f"needs 1 or {ndim} values for {ndim} spatial axes", values)
        return values
    return (_as_int(param, value),) * ndim


def _padding(value: object, ndim: int) -> tuple[Pad, ...] | PaddingPolicy:
    """An int, per-axis ints, per-axis ``(before, after)`` pairs (mixed freely), or a policy."""
    if isinstance(value, str):
        policy = value.lower()
        if policy not in POLICIES:
            raise ConvArithError("padding", f"a padding policy must be one of {', '.join(POLICIES)}", repr(value))
        return cast(PaddingPolicy, policy)
    items: Sequence[object] = value if isinstance(value, Sequence) else (value,)
    if len(items) == 1:
        items = tuple(items) * ndim
    if len(items) != ndim:
        raise ConvArithError("padding", f"needs 1 or {ndim} entries for {ndim} spatial axes", tuple(items))
    pairs = []
    for item in items:
        if isinstance(item, Sequence) and not isinstance(item, str):
            if len(item) != 2:
                raise ConvArithError("padding", "an asymmetric padding is a (before, after) pair", tuple(item))
            pairs.append((_as_int("padding", item[0]), _as_int("padding", item[1])))
        else:
            p = _as_int("padding", item)
            pairs.append((p, p))
    return tuple(pairs)


@dataclass(frozen=True)
class ConvSpec:
    """Hyper-parameters of one layer, one value per spatial axis, in PyTorch's naming.

    ``padding`` is either explicit ``(before, after)`` pairs or a policy that needs the input size
    (:meth:`resolve` turns it into pairs). Build it with :meth:`create`, which accepts the same
    loose forms as PyTorch (an int for every axis, a tuple per axis) and more (pairs, policies).
    """

    kind: Kind
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pad, ...] | PaddingPolicy
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int = 1
    padding_mode: PaddingMode = "zeros"
    ceil_mode: bool = False
    count_include_pad: bool = True

    @classmethod
    def create(
        cls,
        op: str,
        *,
        kernel_size: IntOrSeq,
        stride: IntOrSeq | None = None,
        padding: PaddingArg = 0,
        dilation: IntOrSeq = 1,
        groups: int = 1,
        output_padding: IntOrSeq = 0,
        padding_mode: str = "zeros",
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> ConvSpec:
        """Build and check a spec from PyTorch-style arguments.

        ``stride=None`` means PyTorch's default: 1 for convolutions, the kernel size for pooling.
        """
        kind, ndim = parse_op(op)
        kernel = _per_axis("kernel_size", kernel_size, ndim)
        pooling = kind in ("max_pool", "avg_pool")
        strides = kernel if stride is None and pooling else _per_axis("stride", 1 if stride is None else stride, ndim)
        if padding_mode not in PADDING_MODES:
            raise ConvArithError("padding_mode", f"must be one of {', '.join(PADDING_MODES)}", repr(padding_mode))
        return cls(
            kind=kind,
            kernel_size=kernel,
            stride=strides,
            padding=_padding(padding, ndim),
            dilation=_per_axis("dilation", dilation, ndim),
            output_padding=_per_axis("output_padding", output_padding, ndim),
            groups=_as_int("groups", groups),
            padding_mode=cast(PaddingMode, padding_mode),
            ceil_mode=bool(ceil_mode),
            count_include_pad=bool(count_include_pad),
        )

    def __post_init__(self) -> None:
        self._check()

    # -- properties ---------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.kernel_size)

    @property
    def op(self) -> str:
        """The functional name, e.g. ``"conv_transpose2d"``."""
        return f"{self.kind}{self.ndim}d"

    @property
    def transposed(self) -> bool:
        return self.kind == "conv_transpose"

    @property
    def pooling(self) -> bool:
        return self.kind in ("max_pool", "avg_pool")

    @property
    def effective_kernel(self) -> tuple[int, ...]:
        """Extent of the dilated kernel on each axis, ``d·(k−1) + 1``."""
        return tuple(effective_kernel(k, d) for k, d in zip(self.kernel_size, self.dilation, strict=True))

    @property
    def is_resolved(self) -> bool:
        return not isinstance(self.padding, str)

    @property
    def pads(self) -> tuple[Pad, ...]:
        """The explicit ``(before, after)`` pairs of a resolved spec."""
        if isinstance(self.padding, str):
            raise ConvArithError("padding", f"the policy {self.padding!r} needs the input size; call resolve() first")
        return self.padding

    # -- rules that do not depend on the input --------------------------------------------------

    def _check(self) -> None:
        n = self.ndim
        for name in ("stride", "dilation", "output_padding"):
            if len(getattr(self, name)) != n:
                raise ConvArithError(name, f"needs {n} values like kernel_size", getattr(self, name))
        if not isinstance(self.padding, str) and len(self.padding) != n:
            raise ConvArithError("padding", f"needs {n} (before, after) pairs like kernel_size", self.padding)
        if n < 1:
            raise ConvArithError("kernel_size", "needs at least one spatial axis", self.kernel_size)
        if min(self.kernel_size) < 1:
            raise ConvArithError("kernel_size", "must be at least 1 on every axis", self.kernel_size)
        if min(self.stride) < 1:
            raise ConvArithError("stride", "must be at least 1 on every axis", self.stride)
        if min(self.dilation) < 1:
            raise ConvArithError("dilation", "must be at least 1 on every axis", self.dilation)
        if self.groups < 1:
            raise ConvArithError("groups", "must be at least 1", self.groups)
        if self.kind != "conv" and self.padding_mode != "zeros":
            raise ConvArithError("padding_mode", f"{self.kind} supports only 'zeros'", repr(self.padding_mode))
        if self.ceil_mode and not self.pooling:
            raise ConvArithError("ceil_mode", "applies to pooling only", self.ceil_mode)
        if self.pooling and self.groups != 1:
            raise ConvArithError("groups", "pooling has no groups; it must be 1", self.groups)
        if self.kind == "avg_pool" and self.dilation != (1,) * n:
            raise ConvArithError("dilation", "avg_pool has no dilation; it must be 1", self.dilation)
        self._check_output_padding()
        self._check_padding()

    def _check_output_padding(self) -> None:
        if min(self.output_padding) < 0:
            raise ConvArithError("output_padding", "must not be negative", self.output_padding)
        if not self.transposed:
            if max(self.output_padding) != 0:
                raise ConvArithError(
                    "output_padding", f"only transposed convolutions have one, not {self.kind}", self.output_padding
                )
            return
        if any(a >= max(s, d) for a, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)):
            raise ConvArithError(
                "output_padding",
                "must be smaller than stride or dilation on every axis "
                f"(stride {self.stride}, dilation {self.dilation})",
                self.output_padding,
            )
        if isinstance(self.padding, str) and max(self.output_padding) != 0:
            raise ConvArithError(
                "output_padding", f"is implied by padding {self.padding!r}; leave it at 0", self.output_padding
            )

    def _check_padding(self) -> None:
        if isinstance(self.padding, str):
            policy = self.padding
            if self.transposed and policy not in ("valid", "same_tf", "same_upper"):
                raise ConvArithError(
                    "padding", "a transposed convolution takes explicit padding, 'valid' or 'same_tf'", repr(policy)
                )
            if policy == "same" and self.stride != (1,) * self.ndim:
                raise ConvArithError(
                    "padding",
                    f"'same' (PyTorch) needs stride 1 on every axis, stride is {self.stride}; "
                    "use 'same_tf' for TensorFlow's strided same",
                    repr(policy),
                )
            return
        flat = [p for pair in self.padding for p in pair]
        # PyTorch pads non-zero modes with F.pad, which crops where the padding is negative.
        if min(flat) < 0 and self.padding_mode == "zeros":
            raise ConvArithError("padding", "must not be negative (with padding_mode 'zeros')", self.padding)
        if self.pooling:
            for (before, after), k in zip(self.padding, self.kernel_size, strict=True):
                if 2 * max(before, after) > k:
                    raise ConvArithError(
                        "padding",
                        f"a pooling pad must be at most half the kernel size {self.kernel_size}",
                        self.padding,
                    )

    # -- input-dependent arithmetic -------------------------------------------------------------

    def axis(self, n: int) -> ConvSpec:
        """The 1-d layer that axis ``n`` of this one is (same kind, groups and modes)."""
        padding = self.padding if isinstance(self.padding, str) else (self.padding[n],)
        return replace(
            self,
            kernel_size=(self.kernel_size[n],),
            stride=(self.stride[n],),
            padding=padding,
            dilation=(self.dilation[n],),
            output_padding=(self.output_padding[n],),
        )

    def resolve(self, spatial: Sequence[int]) -> ConvSpec:
        """The same layer with its padding policy turned into explicit pairs for this input size."""
        if isinstance(self.padding, str):
            sizes = self._check_spatial(spatial)
            policy = self.padding
            if self.transposed:
                if policy == "valid":
                    return replace(self, padding=((0, 0),) * self.ndim)
                resolved = [
                    tf_same_transpose(k, s, d)
                    for k, s, d in zip(self.kernel_size, self.stride, self.dilation, strict=True)
                ]
                return replace(
                    self, padding=tuple(p for p, _ in resolved), output_padding=tuple(a for _, a in resolved)
                )
            pads = tuple(
                resolve_policy(policy, i, k, s, d)
                for i, k, s, d in zip(sizes, self.kernel_size, self.stride, self.dilation, strict=True)
            )
            return replace(self, padding=pads)
        return self

    def _check_spatial(self, spatial: Sequence[int]) -> tuple[int, ...]:
        sizes = tuple(_as_int("input_shape", i) for i in spatial)
        if len(sizes) != self.ndim:
            raise ConvArithError("input_shape", f"{self.op} needs {self.ndim} spatial sizes", sizes)
        if min(sizes) < 1:
            raise ConvArithError("input_shape", "spatial sizes must be at least 1", sizes)
        return sizes

    def output_spatial(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """Output spatial sizes for these input spatial sizes; raises when PyTorch would refuse."""
        sizes = self._check_spatial(spatial)
        spec = self.resolve(sizes)
        spec._check_padding_mode(sizes)
        if (
            spec.kind == "avg_pool"
            and spec.ndim == 3
            and any(i < k for i, k in zip(sizes, spec.kernel_size, strict=True))
        ):
            # PyTorch's 3-d average pooling alone checks the unpadded input against the kernel.
            raise ConvArithError(
                "input_shape", f"avg_pool3d needs every input size at least the kernel {spec.kernel_size}", sizes
            )
        if spec.kind == "conv":
            out = tuple(
                conv_output_size(i, k, s, p, d)
                for i, k, s, p, d in zip(sizes, spec.kernel_size, spec.stride, spec.pads, spec.dilation, strict=True)
            )
            if min(out) < 1:
                padded = tuple(i + b + a for i, (b, a) in zip(sizes, spec.pads, strict=True))
                raise ConvArithError(
                    "input_shape",
                    f"the padded input {padded} must be at least the dilated kernel "
                    f"{spec.effective_kernel} on every axis",
                    sizes,
                )
            return out
        if spec.transposed:
            out = tuple(
                conv_transpose_output_size(i, k, s, p, d, a)
                for i, k, s, p, d, a in zip(
                    sizes, spec.kernel_size, spec.stride, spec.pads, spec.dilation, spec.output_padding, strict=True
                )
            )
        else:
            out = tuple(
                pool_output_size(i, k, s, p, d, spec.ceil_mode)
                for i, k, s, p, d in zip(sizes, spec.kernel_size, spec.stride, spec.pads, spec.dilation, strict=True)
            )
        if min(out) < 1:
            raise ConvArithError(
                "input_shape", f"{spec.op} would give an output of size {out}; every size must be at least 1", sizes
            )
        return out

    def _check_padding_mode(self, sizes: tuple[int, ...]) -> None:
        # F.pad's circular mode crops first and wraps what is left; reflect indexes the whole input.
        kept = tuple(i + min(b, 0) + min(a, 0) for i, (b, a) in zip(sizes, self.pads, strict=True))
        if self.padding_mode == "reflect" and any(max(p) >= i for p, i in zip(self.pads, sizes, strict=True)):
            raise ConvArithError("padding", f"reflect padding must be smaller than the input size {sizes}", self.pads)
        if self.padding_mode == "circular" and any(max(p) > i for p, i in zip(self.pads, kept, strict=True)):
            raise ConvArithError(
                "padding", f"circular padding must be at most the input size {sizes} (it wraps once)", self.pads
            )


def check_channels(spec: ConvSpec, in_channels: int, out_channels: int | None) -> int:
    """Check the channel counts against ``groups``; return the output channel count.

    ``out_channels=None`` keeps the input channel count (and pooling always does).
    """
    if in_channels < 1:
        raise ConvArithError("input_shape", "the channel count must be at least 1", in_channels)
    if spec.pooling:
        if out_channels is not None and out_channels != in_channels:
            raise ConvArithError("out_channels", f"pooling keeps the {in_channels} input channels", out_channels)
        return in_channels
    out = in_channels if out_channels is None else _as_int("out_channels", out_channels)
    if out < 1:
        raise ConvArithError("out_channels", "must be at least 1", out)
    if in_channels % spec.groups:
        raise ConvArithError("groups", f"must divide the {in_channels} input channels", spec.groups)
    if out % spec.groups:
        raise ConvArithError("groups", f"must divide the {out} output channels", spec.groups)
    return out
