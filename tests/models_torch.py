"""PyTorch models for the analysis tests: random stacks of layers (hypothesis), the classic networks
written out (a valid-padding U-Net, a DCGAN generator, a 1-d audio encoder), and the linear positive
copy whose input gradient's support is a receptive field.

A random model is a list of :class:`Step` s, each a spatial operation with its parameters drawn so
that the sizes stay valid; ``build(steps, linear=…)`` makes the module. With ``linear=True`` every
weight is positive, biases are 0, activations are gone and max pools are average pools over the
same windows: each output cell is then a positive sum over exactly the input cells it reads, so
its gradient's support is its receptive field.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from convarith import Layer

__all__ = ["AudioEncoder", "DCGANGenerator", "Step", "UNet", "build", "field_by_gradient", "overlap_by_ones", "steps"]


@dataclass(frozen=True)
class Step:
    """One operation of a random stack; ``branch``: a residual pair, this step beside a 1×1 path."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    branch: str | None = None  # None, "add" or "cat"


class _Op(nn.Module):
    def __init__(self, step: Step, ndim: int, channels: int, linear: bool) -> None:
        super().__init__()
        self.step, self.ndim, self.linear = step, ndim, linear
        a = step.args
        kind = step.kind
        self.body: nn.Module | None = None
        if kind == "conv":
            conv = getattr(nn, f"Conv{ndim}d")
            self.body = conv(channels, channels, a["k"], a["s"], a["p"], a["d"], groups=a["g"], padding_mode=a["mode"])
        elif kind == "tconv":
            tconv = getattr(nn, f"ConvTranspose{ndim}d")
            self.body = tconv(channels, channels, a["k"], a["s"], a["p"], a["op"], groups=a["g"], dilation=a["d"])
        elif kind == "pixel_shuffle":
            self.body = nn.Conv2d(channels, channels * 4, 1)
        self.side: nn.Module | None = None
        self.mix: nn.Module | None = None
        if step.branch is not None:
            self.side = getattr(nn, f"Conv{ndim}d")(channels, channels, 1)
        if step.branch == "cat":
            self.mix = getattr(nn, f"Conv{ndim}d")(2 * channels, channels, 1)
        if linear:
            for p in self.parameters():
                with torch.no_grad():
                    if p.dim() > 1:
                        p.uniform_(0.5, 1.5)
                    else:
                        p.zero_()

    def main(self, x: torch.Tensor) -> torch.Tensor:
        a, kind, n = self.step.args, self.step.kind, self.ndim
        if kind in ("conv", "tconv"):
            assert self.body is not None
            y = self.body(x)
        elif kind == "max_pool" and not self.linear:
            y = getattr(F, f"max_pool{n}d")(x, a["k"], a["s"], a["p"], ceil_mode=a["ceil"])
        elif kind in ("max_pool", "avg_pool"):
            y = getattr(F, f"avg_pool{n}d")(x, a["k"], a["s"], a["p"], ceil_mode=a["ceil"])
        elif kind == "upsample":
            y = F.interpolate(x, scale_factor=a["f"], mode=a["mode"] if n == 1 or a["mode"] != "linear" else "bilinear")
        elif kind == "pad":
            y = F.pad(x, a["pads"] * n, mode=a["mode"])
        elif kind == "slice":
            index = (slice(None), slice(None)) + (slice(a["start"], a["stop"], a["step"]),) * n
            y = x[index]
        elif kind == "adaptive":
            y = getattr(F, f"adaptive_avg_pool{n}d")(x, a["out"])
        elif kind == "pixel_shuffle":
            assert self.body is not None
            y = F.pixel_shuffle(self.body(x), 2)
        else:
            raise AssertionError(kind)
        return y if self.linear else torch.relu(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        if self.side is None:
            return y
        # the branch: a 1×1 convolution of the input resampled to y's size by a strided slice or repeat
        z = self.side(x)
        if self.step.branch == "add":
            return y + z[self._fit(z, y)]
        assert self.mix is not None
        return self.mix(torch.cat([y, z[self._fit(z, y)]], 1))

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> tuple[slice, ...]:
        return (slice(None), slice(None), *(slice(0, s) for s in y.shape[2:]))


def build(steps: Sequence[Step], ndim: int, channels: int = 2, *, linear: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(*[_Op(s, ndim, channels, linear) for s in steps])
    return model.double().eval()


def _size_after(step: Step, size: int) -> int | None:
    """The size after a step (one axis), ``None`` where PyTorch would refuse it."""
    a, kind = step.args, step.kind
    try:
        if kind == "conv":
            layer = Layer("conv1d", 2, 2, a["k"], stride=a["s"], padding=a["p"], dilation=a["d"], groups=a["g"],
                          padding_mode=a["mode"])  # fmt: skip
        elif kind == "tconv":
            layer = Layer("conv_transpose1d", 2, 2, a["k"], stride=a["s"], padding=a["p"], output_padding=a["op"],
                          dilation=a["d"], groups=a["g"])  # fmt: skip
        elif kind in ("max_pool", "avg_pool"):
            layer = Layer(f"{kind}1d", kernel_size=a["k"], stride=a["s"], padding=a["p"], ceil_mode=a["ceil"])
        else:
            layer = None
        if layer is not None:
            from convarith import check

            if any(f.severity == "error" for f in check(layer, (1, 2, size), framework="torch")):
                return None
            return layer.bind((1, 2, size)).output_spatial[0]
    except Exception:
        return None
    if kind == "upsample":
        return size * a["f"]
    if kind == "pad":
        before, after = a["pads"]
        if a["mode"] == "reflect" and max(before, after) >= size:
            return None
        out = size + before + after
        return out if out >= 1 else None
    if kind == "slice":
        out = len(range(size)[a["start"] : a["stop"] : a["step"]])
        return out if out >= 1 else None
    if kind == "adaptive":
        return a["out"]
    if kind == "pixel_shuffle":
        return size * 2
    raise AssertionError(kind)


@st.composite
def _step(
    draw: st.DrawFn,
    ndim: int,
    groups: tuple[int, ...] = (1, 2),
    branches: tuple[str | None, ...] = (None, None, "add", "cat"),
) -> Step:
    kind = draw(
        st.sampled_from(
            ["conv", "conv", "tconv", "max_pool", "avg_pool", "upsample", "pad", "slice", "adaptive"]
            + (["pixel_shuffle"] if ndim == 2 else [])
        )
    )
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    if kind == "conv":
        args = {"k": k, "s": s, "p": draw(st.integers(0, k)), "d": draw(st.integers(1, 2)),
                "g": draw(st.sampled_from(groups)),
                "mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))}  # fmt: skip
    elif kind == "tconv":
        d = draw(st.integers(1, 2))
        args = {"k": k, "s": s, "p": draw(st.integers(0, d * (k - 1))), "d": d, "g": draw(st.sampled_from(groups))}
        args["op"] = draw(st.integers(0, max(s, d) - 1))
    elif kind in ("max_pool", "avg_pool"):
        args = {"k": k, "s": s, "p": draw(st.integers(0, k // 2)), "ceil": draw(st.booleans())}
    elif kind == "upsample":
        args = {
            "f": draw(st.sampled_from([2, 3])),
            "mode": draw(st.sampled_from(["nearest", "nearest-exact", "linear"])),
        }
    elif kind == "pad":
        args = {"pads": (draw(st.integers(-1, 2)), draw(st.integers(-1, 2))),
                "mode": draw(st.sampled_from(["constant", "reflect", "replicate"]))}  # fmt: skip
    elif kind == "slice":
        args = {
            "start": draw(st.integers(0, 2)),
            "stop": draw(st.sampled_from([None, -1])),
            "step": draw(st.integers(1, 2)),
        }
    elif kind == "adaptive":
        args = {"out": draw(st.integers(1, 5))}
    else:
        args = {}
    branch = draw(st.sampled_from(branches)) if kind in ("conv", "max_pool", "avg_pool") else None
    return Step(kind, args, branch)


@st.composite
def steps(
    draw: st.DrawFn,
    ndim: int,
    max_steps: int = 5,
    max_size: int = 24,
    *,
    kinds: tuple[str, ...] | None = None,
    groups: tuple[int, ...] = (1, 2),
    branches: tuple[str | None, ...] = (None, None, "add", "cat"),
    zero_padding: bool = False,
) -> tuple[list[Step], int]:
    """Random steps and an input size (per axis) at which every step is valid (``kinds``: only these;
    ``zero_padding``: no padding modes, crops or slices)."""
    size = draw(st.integers(4, 16))
    sizes = size
    chosen: list[Step] = []
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(_step(ndim, groups, branches))
        if kinds is not None and step.kind not in kinds:
            continue
        if zero_padding and (
            step.args.get("mode", "zeros") not in ("zeros", "constant")
            or step.kind == "slice"
            or min(step.args.get("pads", (0, 0))) < 0
        ):
            continue
        after = _size_after(step, sizes)
        if after is None or after > max_size:
            continue
        if step.branch is not None and after > sizes:
            step = Step(step.kind, step.args, None)
        chosen.append(step)
        sizes = after
    return chosen, size


def field_by_gradient(model: nn.Module, input_shape: Sequence[int], cell: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The input cells, per spatial axis, whose gradient of one output cell (summed over channels) is not 0."""
    x = torch.ones(tuple(input_shape), dtype=torch.float64, requires_grad=True)
    y = model(x)
    index = (slice(None), slice(None), *cell)
    y[index].sum().backward()
    assert x.grad is not None
    support = x.grad != 0
    spatial = support.dim() - 2
    out = []
    for axis in range(spatial):
        others = tuple(d for d in range(support.dim()) if d != axis + 2)
        out.append(tuple(int(i) for i in torch.nonzero(support.any(dim=others)).ravel()))
    return tuple(out)


def overlap_by_ones(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """The model's output on an all-ones input (the linear copy with its weights set to one)."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0 if p.dim() > 1 else 0.0)
        return model(torch.ones(tuple(input_shape), dtype=torch.float64))


# -- the classic networks ----------------------------------------------------------------------------------


class UNet(nn.Module):
    """Ronneberger et al.'s U-Net (valid 3×3 convolutions, 2×2 max pools, 2×2 up-convolutions, centre
    crops of the skips), ``depth`` levels; ``crop=False`` concatenates uncropped (mismatching) skips."""

    def __init__(
        self, depth: int = 4, width: int = 4, crop: bool = True, channels: int = 1, linear: bool = False
    ) -> None:
        super().__init__()
        self.crop, self.linear = crop, linear
        self.down = nn.ModuleList()
        c = channels
        widths = [width * 2**i for i in range(depth + 1)]
        for w in widths[:-1]:
            self.down.append(self._double(c, w))
            c = w
        self.bottom = self._double(c, widths[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(w * 2, w, 2, stride=2))
            self.dec.append(self._double(w * 2, w))
        self.head = nn.Conv2d(widths[0], 2, 1)

    def _double(self, cin: int, cout: int) -> nn.Module:
        act = nn.Identity if self.linear else nn.ReLU
        return nn.Sequential(nn.Conv2d(cin, cout, 3), act(), nn.Conv2d(cout, cout, 3), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.avg_pool2d(x, 2) if self.linear else F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = up(x)
            if self.crop:
                dh = (skip.shape[2] - x.shape[2]) // 2
                dw = (skip.shape[3] - x.shape[3]) // 2
                skip = skip[:, :, dh : dh + x.shape[2], dw : dw + x.shape[3]]
            x = dec(torch.cat([skip, x], 1))
        return self.head(x)


class DCGANGenerator(nn.Module):
    """Radford et al.'s generator: a 1×1 latent to 64×64 through 4×4 transposed convolutions."""

    def __init__(self, latent: int = 16, width: int = 8, linear: bool = False) -> None:
        super().__init__()
        w = width
        widths = [latent, w * 8, w * 4, w * 2, w, 3]
        layers: list[nn.Module] = []
        for n, (cin, cout) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.ConvTranspose2d(cin, cout, 4, 1 if n == 0 else 2, 0 if n == 0 else 1, bias=False))
            if not linear:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(True)] if cout != 3 else [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class AudioEncoder(nn.Module):
    """A 1-d front end: strided convolutions with a residual block and a reflect-padded convolution."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv1d(1, width, 10, stride=5)
        self.res = nn.Conv1d(width, width, 3, padding=1, padding_mode="reflect")
        self.down = nn.Sequential(nn.Conv1d(width, width, 4, 2), nn.GELU(), nn.Conv1d(width, width, 4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.stem(x))
        x = x + self.res(x)
        return self.down(x)
