"""Trace a PyTorch module into an analysis graph, on shapes only.

The module runs once on a ``meta`` input (no data, no memory at the input's size) with its
parameters and buffers swapped for ``meta`` copies for the length of the trace (tied weights stay
tied; everything is put back, also when the model refuses the input). A dispatch mode sees every
ATen operation, in the order it runs: each one that reads data derived from the input becomes a
node (:mod:`convarith.analysis.graph`), named after the module that ran it. ATen is PyTorch's
normal form — ``nn.Conv2d``, ``F.conv2d`` and a ``padding="same"`` all arrive as
``aten.convolution`` with explicit numbers — so a small table covers what modules express in many
ways. A merge whose inputs' shapes do not match (a U-Net's skip connection at the wrong size) is
recorded and the trace goes on with every input padded with zeros to the largest, so the whole
table is still there.

Speed: common leaf modules (convolutions, pools, batch norms, activations, ``Linear``) are
answered from convarith's own arithmetic, and residual adds and global means get their shapes
without PyTorch's meta kernels (on ``meta`` tensors those are slow Python references); the module
paths come from wrappers on the modules' ``forward`` rather than hooks, which keep PyTorch's fast
call path.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU())
>>> g = trace(net, (1, 3, 32, 32))
>>> [(n.name, n.op, n.shape) for n in g.nodes]
[('input', 'input', (1, 3, 32, 32)), ('0', 'layer', (1, 8, 16, 16)), ('1', 'elementwise', (1, 8, 16, 16))]
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..analysis.graph import Graph, Op
from ..analysis.maps import Resize
from ..errors import ConvArithError
from ..layer import Layer

__all__ = ["trace"]

_META = torch.device("meta")

_ELEMENTWISE = {
    # activations, casts, copies, normalisations (statistics as constants), arithmetic with constants
    "relu", "relu_", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh",
    "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "leaky_relu", "leaky_relu_", "elu",
    "elu_", "selu", "selu_", "celu", "celu_", "mish", "mish_", "softplus", "prelu", "_prelu_kernel", "glu",
    "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "clone", "_to_copy", "detach",
    "alias", "lift_fresh", "contiguous", "exp", "exp_", "log", "log_", "sqrt", "sqrt_", "rsqrt", "rsqrt_",
    "pow", "pow_", "neg", "neg_", "abs", "abs_", "sin", "cos", "erf", "reciprocal", "square", "sign",
    "native_dropout", "dropout", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional", "native_group_norm",
    "native_layer_norm", "rms_norm", "_fused_rms_norm", "add", "add_", "sub", "sub_", "mul", "mul_", "div",
    "div_", "rsub", "maximum", "minimum", "where", "lerp", "lerp_", "addcmul", "addcdiv", "masked_fill",
    "masked_fill_", "fill_", "threshold", "threshold_", "logit", "fmod", "remainder", "floor", "ceil", "round",
    "trunc", "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "bitwise_not", "isnan", "nan_to_num",
    "_log_softmax_backward_data", "copy_",
}  # fmt: skip
_MERGES = {
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "rsub", "maximum", "minimum", "where", "lerp",
    "lerp_", "addcmul", "addcdiv", "masked_fill", "masked_fill_", "prelu", "_prelu_kernel", "fmod", "remainder",
    "eq", "ne", "lt", "le", "gt", "ge",
}  # fmt: skip
_FITTED = _MERGES | {"cat"}
_REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean", "norm",
           "linalg_vector_norm", "logsumexp", "prod", "nansum", "nanmean", "argmax", "argmin"}  # fmt: skip
_RESHAPE = {"view", "_unsafe_view", "reshape", "flatten", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_",
            "_reshape_alias", "view_as", "unflatten"}  # fmt: skip
_SOFTMAX = {"_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax", "cumsum", "cumprod"}
_PAD_MODE = {"constant_pad_nd": "zeros", "reflection_pad": "reflect", "replication_pad": "replicate"}
_UPSAMPLE = {
    "upsample_nearest": ("nearest", "asymmetric", "floor"),
    "_upsample_nearest_exact": ("nearest", "tf_half_pixel_for_nn", "floor"),
    "upsample_linear": ("linear", "half_pixel", "floor"),
    "upsample_bilinear": ("linear", "half_pixel", "floor"),
    "upsample_trilinear": ("linear", "half_pixel", "floor"),
    "upsample_bicubic": ("cubic", "half_pixel", "floor"),
}


@functools.cache
def _base(name: str) -> str:
    """``upsample_bilinear2d`` → ``upsample_bilinear``; ``max_pool1d_with_indices`` → ``max_pool_with_indices``."""
    for n in "123":
        name = name.replace(f"{n}d", "")
    return name


class _Naming:
    """The module running now: nodes are named after it — a leaf module's first operation by its path,
    the others (and operations written in a parent's ``forward``) by the path and the operation (the
    graph adds ``_2``, ``_3`` … to a name used again). :class:`_Modules` keeps the stack."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.stack: list[list[object]] = []  # [path, operations recorded in this call]
        self.modules = list(model.named_modules())
        self.leaves = {name for name, m in self.modules if all(c is None for c in m._modules.values())}

    def name(self, op: str) -> str:
        if not self.stack:
            return op
        frame = self.stack[-1]
        where = str(frame[0])
        seen = int(frame[1])  # type: ignore[call-overload]
        frame[1] = seen + 1
        if not where:
            return op
        if where in self.leaves and seen == 0:
            return where
        return f"{where}.{op}" if where else op


class _Recorder(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """No ``torch._dynamo.disable`` wrapper round :meth:`__torch_dispatch__`: nothing here is
        compiled, and the wrapper's first call imports Dynamo (2 s)."""
        return False

    def __init__(self, graph: Graph, naming: _Naming, parameters: dict[int, int]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.graph = graph
        self.naming = naming
        self.parameters = parameters  # id(meta parameter) → numel, counted at first use
        self.producer: dict[int, str] = {}
        self.keep: list[torch.Tensor] = []  # the tensors whose id is a key: kept alive so ids are not reused
        self.assembled = False  # a tensor made inside the model was filled with data (a retrace sees F.pad whole)
        self.layers: dict[tuple[object, ...], Layer] = {}

    def data(self, value: object) -> str | None:
        return self.producer.get(id(value)) if isinstance(value, torch.Tensor) else None

    def mark(self, tensor: torch.Tensor, name: str) -> None:
        self.producer[id(tensor)] = name
        self.keep.append(tensor)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        flat = _tensors(args, kwargs)
        inputs = [t for t in flat if id(t) in self.producer]
        name = func.overloadpacket.__name__
        if name in _CONSTRUCTORS:  # a new tensor of the input's shape or type holds no input data
            return func(*args, **kwargs)
        if name in _IN_PLACE_COPIES and inputs and id(args[0]) not in self.producer:
            # data copied into a tensor made inside the model (F.pad's circular decomposition, a slice
            # assignment): cells assembled piece by piece, which this trace does not follow
            out = func(*args, **kwargs)
            node = self.graph.add(
                self.naming.name(name), "unknown", [self.producer[id(t)] for t in inputs[:1]], tuple(args[0].shape),
                source=f"aten.{name}", what=f"aten.{name} of input-dependent data into a new tensor",
            )  # fmt: skip
            self.mark(args[0], node)
            self.assembled = True
            return out
        if not inputs:
            out = func(*args, **kwargs)
            # a view or copy of a parameter (the transposed weight of a Linear) carries its count along
            carried = sum(self.parameters.pop(id(t), 0) for t in flat if isinstance(t, torch.Tensor))
            if carried and isinstance(out, torch.Tensor):
                self.parameters[id(out)] = carried
                self.keep.append(out)
            return out
        mismatch = None
        if _base(name) in _FITTED:
            args, mismatch = self.fit(name, args)
        out = None if kwargs else _shortcut(func, name, args)
        if out is None:
            out = func(*args, **kwargs)
        self.record(func, name, args, kwargs, out, mismatch)
        return out

    def fit(self, name: str, args: Sequence[Any]) -> tuple[Any, list[tuple[int, ...]] | None]:
        """Inputs of a merge whose shapes disagree (other than broadcasting) padded with zeros at the end
        to the largest, so that the trace goes on past the mismatch."""
        if name == "cat":
            ts = [t for t in args[0] if isinstance(t, torch.Tensor) and t.dim() > 0]
            if len({t.dim() for t in ts}) != 1:
                return args, None
            rank = ts[0].dim()
            dim = (args[1] if len(args) > 1 else 0) % rank
            others = [d for d in range(rank) if d != dim]
        else:
            ts = [a for a in args if isinstance(a, torch.Tensor) and self.data(a) is not None]
            if len(ts) < 2 or all(t.shape == ts[0].shape for t in ts):
                return args, None
            rank = max(t.dim() for t in ts)
            others = list(range(rank))
        shapes = [tuple(t.shape) for t in ts]
        large: dict[int, int] = {}
        for d in others:
            sizes = {s[d - (rank - len(s))] for s in shapes if d - (rank - len(s)) >= 0} - {1}
            if len(sizes) > 1:
                large[d] = max(sizes)
        if not large:
            return args, None

        def grow(t: Any) -> Any:
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                return t
            offset = rank - t.dim()
            flat: list[int] = []
            for d in reversed(range(t.dim())):
                want = large.get(d + offset)
                flat += [0, want - t.shape[d] if want is not None and t.shape[d] != 1 else 0]
            grown = torch.nn.functional.pad(t, flat)
            source = self.data(t)
            if source is not None:
                self.mark(grown, source)
            return grown

        if name == "cat":
            return (list(map(grow, args[0])), *args[1:]), shapes
        return tuple(grow(a) for a in args), shapes

    # -- one operation -------------------------------------------------------------------------------

    def record(
        self, func: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any, mismatch: Any
    ) -> None:
        base = _base(name)
        x = next((a for a in args if isinstance(a, torch.Tensor) and self.data(a) is not None), None)
        if name == "cat":
            x = next((t for t in args[0] if self.data(t) is not None), None)
        outputs = [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(t, torch.Tensor)]
        if not outputs or x is None:
            return
        y = outputs[0]
        params = sum(self.parameters.pop(id(a), 0) for a in args if isinstance(a, torch.Tensor))
        data = [self.data(a) for a in (args[0] if name == "cat" else args)]
        data_inputs = [d for d in data if d is not None]
        source = f"aten.{name}"

        def add(op: str, tensor: torch.Tensor, inputs: Sequence[str] | None = None, **p: Any) -> None:
            node = self.graph.add(
                self.naming.name(name),
                op,  # type: ignore[arg-type]
                inputs if inputs is not None else data_inputs[:1],
                tuple(tensor.shape),
                source=source,
                parameters=params,
                mismatch=mismatch,
                **p,
            )
            self.mark(tensor, node)

        if name == "convolution":
            add("layer", y, layer=self.layer(_conv_layer, x, args))
        elif base in ("max_pool_with_indices", "max_pool"):
            add("layer", y, layer=self.layer(_max_pool_layer, x, args))
        elif base == "avg_pool":
            add("layer", y, layer=self.layer(_avg_pool_layer, x, args))
        elif base in ("_adaptive_avg_pool", "adaptive_max_pool", "adaptive_avg_pool"):
            rank = x.dim()
            n = len(args[1]) if isinstance(args[1], (list, tuple)) else 1
            add("adaptive_pool", y, dims=tuple(range(rank - n, rank)), reduce="max" if "max" in base else "avg")
        elif base in _PAD_MODE or base.startswith(("reflection_pad", "replication_pad")):
            mode = next(m for key, m in _PAD_MODE.items() if base.startswith(key))
            add("pad", y, pads=_pairs(args[1], x.dim()), mode=mode)
        elif base in _UPSAMPLE:
            add("resize", y, **_resize(base, x, y, args))
        elif name == "pixel_shuffle":
            add("pixel_shuffle", y, factor=int(args[1]))
        elif name == "pixel_unshuffle":
            add("pixel_unshuffle", y, factor=int(args[1]))
        elif name in ("slice", "narrow"):
            dim = int(args[1]) % x.dim() if len(args) > 1 else 0
            size = x.shape[dim]
            if name == "narrow":
                start, stop, step = int(args[2]) % size, int(args[2]) % size + int(args[3]), 1
            else:
                start, stop, step = slice(
                    args[2] if len(args) > 2 else None,
                    args[3] if len(args) > 3 else None,
                    args[4] if len(args) > 4 else 1,
                ).indices(size)
                stop = max(stop, start)
            add("slice", y, dim=dim, start=start, stop=stop, step=step)
        elif name == "select":
            add("select", y, dim=int(args[1]) % x.dim(), index=int(args[2]) % x.shape[int(args[1])])
        elif name in ("split", "split_with_sizes", "chunk", "unsafe_split", "tensor_split", "unbind"):
            self._pieces(name, x, args, outputs, data_inputs, params, source)
        elif base in _REDUCE:
            dims = _reduce_dims(args, kwargs, x.dim())
            keep = bool(args[2] if len(args) > 2 and isinstance(args[2], bool) else kwargs.get("keepdim", False))
            add("reduce", y, dims=dims, keepdim=keep or y.dim() == x.dim(), what=name)
        elif name in _SOFTMAX:
            dim = int(args[1]) % x.dim()
            add("reduce", y, dims=(dim,), keepdim=True, what=name) if x.shape[dim] > 1 else add(
                "elementwise", y, what=name
            )
        elif name in ("squeeze", "squeeze_"):
            rank = x.dim()
            dims = _reduce_dims(args, kwargs, rank) if len(args) > 1 else tuple(range(rank))
            add("reshape", y, removed=tuple(d for d in dims if x.shape[d] == 1))
        elif name in ("unsqueeze", "unsqueeze_"):
            add("reshape", y, inserted=(int(args[1]) % y.dim(),))
        elif name in _RESHAPE:
            add("reshape", y)
        elif name == "expand":
            add("expand", y)
        elif name in ("permute", "transpose", "t", "swapaxes", "movedim", "numpy_T"):
            add("permute", y, order=_order(name, x, args))
        elif name in ("mm", "addmm", "matmul", "bmm", "linear", "baddbmm"):
            self._dense(name, x, args, y, data_inputs, params, source, mismatch)
        elif name == "cat":
            dim = int(args[1]) if len(args) > 1 else 0
            add("concat", y, data_inputs, dim=dim % y.dim())
        elif name in _ELEMENTWISE:
            if len(data_inputs) > 1:
                add("merge", y, data_inputs, what=name)
            elif tuple(y.shape) != tuple(x.shape) and name not in ("native_layer_norm",):
                add("merge" if y.dim() >= x.dim() else "unknown", y, what=name)
            else:
                add("elementwise", y, what=name)
        else:
            add("unknown", y, what=f"aten.{name}")

    def layer(self, make: Any, x: torch.Tensor, args: Sequence[Any]) -> Layer:
        """A layer from ATen's arguments, made once per distinct set of them (networks repeat theirs)."""
        key = (make, x.shape[1] if x.dim() > 1 else 0, *(_key(a) for a in args[1:]))
        found = self.layers.get(key)
        if found is None:
            found = self.layers[key] = make(x, args)
        return found

    def _pieces(
        self,
        name: str,
        x: torch.Tensor,
        args: Sequence[Any],
        outputs: Sequence[torch.Tensor],
        data_inputs: Sequence[str],
        params: int,
        source: str,
    ) -> None:
        """A split into pieces: one slice (or select) node per piece."""
        if name == "unbind":
            dim = int(args[1]) % x.dim() if len(args) > 1 else 0
        elif name == "chunk":
            dim = int(args[2]) % x.dim() if len(args) > 2 else 0
        else:
            dim = int(args[2]) % x.dim() if len(args) > 2 else 0
        start = 0
        for k, piece in enumerate(outputs):
            label = self.naming.name(name)
            if name == "unbind":
                node = self.graph.add(
                    label, "select", data_inputs[:1], tuple(piece.shape), source=source, dim=dim, index=k
                )
            else:
                size = piece.shape[dim]
                node = self.graph.add(
                    label, "slice", data_inputs[:1], tuple(piece.shape), source=source, dim=dim, start=start,
                    stop=start + size, step=1, parameters=params,
                )  # fmt: skip
                start += size
            self.mark(piece, node)

    def _dense(
        self,
        name: str,
        x: torch.Tensor,
        args: Sequence[Any],
        y: torch.Tensor,
        data_inputs: Sequence[str],
        params: int,
        source: str,
        mismatch: Any,
    ) -> None:
        """A matrix product: a dense map over the data's last axis when the other factor is constant."""
        operands = list(args[1:3]) if name in ("addmm", "baddbmm") else list(args[:2])
        first, second = operands
        label = self.naming.name(name)
        if self.data(first) is not None and self.data(second) is None:
            features = int(first.shape[-1])
            node = self.graph.add(
                label, "linear", data_inputs[:1], tuple(y.shape), source=source, parameters=params, dim=first.dim() - 1,
                in_features=features,
            )  # fmt: skip
        elif self.data(second) is not None and self.data(first) is None and second.dim() == 2:
            node = self.graph.add(
                label, "linear", data_inputs[:1], tuple(y.shape), source=source, parameters=params, dim=0,
                in_features=int(second.shape[0]),
            )  # fmt: skip
        else:
            node = self.graph.add(
                label, "unknown", data_inputs, tuple(y.shape), source=source, parameters=params,
                what=f"aten.{name} of two tensors that depend on the input (attention)",
            )  # fmt: skip
        self.mark(y, node)


class _Modules:
    """Every module's calls, seen from a wrapper on the instance's ``forward`` for the length of the
    trace (no hooks: a module without hooks runs PyTorch's fast call path). The wrapper keeps
    :class:`_Naming`'s stack; a module with forward hooks of its own gets naming hooks instead, so that
    the operations in its hooks are named after it as PyTorch runs them.

    Common leaf modules are answered from convarith's own arithmetic: the output's shape from the
    layer (refused exactly where PyTorch's rules refuse; checked once per layer and input shape), no
    meta kernel and no dispatch. A module whose settings this does not cover (a padding mode, a
    subclass) runs as it is."""

    _ACTIVATIONS = ("ReLU", "ReLU6", "GELU", "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "LeakyReLU",
                    "ELU", "Mish", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "BatchNorm1d",
                    "BatchNorm2d", "BatchNorm3d")  # fmt: skip

    def __init__(self, naming: _Naming, recorder: _Recorder) -> None:
        self.recorder = recorder
        self.patched: list[tuple[torch.nn.Module, object]] = []  # (module, its own instance forward or None)
        self.handles: list[Any] = []
        self.checked: dict[tuple[int, tuple[int, ...]], tuple[int, ...] | None] = {}
        hooked = bool(torch.nn.modules.module._global_forward_hooks)
        try:
            self._patch(naming, hooked)
        except BaseException:
            self.close()
            raise

    def _patch(self, naming: _Naming, hooked: bool) -> None:
        for path, module in naming.modules:
            kind = type(module).__name__
            fast = type(module).__module__.startswith("torch.nn.modules") and self._covers(module, kind)
            named = not (hooked or module._forward_hooks)
            if not named:
                self.handles.append(module.register_forward_pre_hook(self._enter(naming, path)))
                self.handles.append(module.register_forward_hook(self._leave(naming, path), always_call=True))
            if fast or named:  # an instance attribute, set as Module.__setattr__ would set it (faster)
                own = module.__dict__.get("forward")
                wrapper = self._forward(module, kind if fast else None, naming.stack, path if named else None)
                module.__dict__["forward"] = wrapper
                self.patched.append((module, own))

    @staticmethod
    def _enter(naming: _Naming, path: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            naming.stack.append([path, 0])

        return hook

    @staticmethod
    def _leave(naming: _Naming, path: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            if naming.stack and naming.stack[-1][0] == path:
                naming.stack.pop()

        return hook

    @staticmethod
    def _covers(module: torch.nn.Module, kind: str) -> bool:
        if kind in ("Conv1d", "Conv2d", "Conv3d"):
            return module.padding_mode == "zeros" and not isinstance(module.padding, str)
        if kind in ("MaxPool1d", "MaxPool2d", "MaxPool3d"):
            return not module.return_indices
        return kind in ("AvgPool2d", "AvgPool3d", "Linear") or kind in _Modules._ACTIVATIONS

    def _forward(
        self, module: torch.nn.Module, kind: str | None, stack: list[list[object]], path: str | None
    ) -> Callable[..., Any]:
        original = module.forward
        recorder = self.recorder
        leaf = None if kind is None else _Leaf(module, kind)

        def forward(*args: Any, **kwargs: Any) -> Any:
            if path is not None:
                stack.append([path, 0])
            try:
                if leaf is not None and len(args) == 1 and not kwargs:
                    x = args[0]
                    source = recorder.data(x)
                    if source is not None and x.is_meta:
                        out = self._answer(leaf, x, source)
                        if out is not None:
                            return out
                return original(*args, **kwargs)
            finally:
                if path is not None:
                    stack.pop()

        return forward

    def _answer(self, leaf: _Leaf, x: torch.Tensor, source: str) -> torch.Tensor | None:
        recorder = self.recorder
        kind = leaf.kind
        name = recorder.naming.name(kind)  # taken even when PyTorch takes over: its operations are then called path.op
        if leaf.op == "layer":
            shape = tuple(x.shape)
            layer = leaf.layer
            if layer is None:
                key = ("module", kind, *_settings(leaf.module))
                try:
                    layer = recorder.layers.get(key)
                except TypeError:  # a setting in a list
                    key = tuple(map(_key, key))
                    layer = recorder.layers.get(key)
                if layer is None:
                    layer = recorder.layers[key] = _module_layer(leaf.module, kind)
                leaf.layer = layer
            check = (id(layer), shape)  # (the layers stay in recorder.layers: their ids are theirs)
            if check in self.checked:
                after = self.checked[check]
            else:
                after = self.checked[check] = _module_output(layer, shape)
            if after is None:
                return None  # unbatched, or refused: PyTorch says so in its own words
            out = _empty(after, x.dtype)
            params: dict[str, Any] = {"layer": layer}
        elif leaf.op == "linear":
            shape = tuple(x.shape)
            features = leaf.module.in_features
            if shape[-1] != features:
                return None  # PyTorch's own error
            out = _empty((*shape[:-1], int(getattr(leaf.module, "out_features"))), x.dtype)  # noqa: B009
            params = {"dim": len(shape) - 1, "in_features": features}
        else:
            out = x if leaf.inplace else _empty_like(x)
            params = {"what": kind}
        count = 0  # (counted here, not before: a refused module's are PyTorch's operations' to count)
        for p in leaf.parameters:
            count += recorder.parameters.pop(id(p), 0)
        node = recorder.graph.add(name, leaf.op, (source,), out.shape, source=leaf.source, parameters=count, **params)
        recorder.mark(out, node)
        return out

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        for module, own in self.patched:
            if own is None:
                del module.__dict__["forward"]
            else:
                module.__dict__["forward"] = own


class _Leaf:
    """A common leaf module, as its calls need it (worked out once per trace)."""

    __slots__ = ("inplace", "kind", "layer", "module", "op", "parameters", "source")

    def __init__(self, module: torch.nn.Module, kind: str) -> None:
        self.module, self.kind, self.source = module, kind, f"nn.{kind}"
        self.op: Op = "elementwise" if kind in _Modules._ACTIVATIONS else "linear" if kind == "Linear" else "layer"
        self.inplace = bool(module.__dict__.get("inplace", False))  # (set by the module's __init__)
        self.parameters = [p for p in module._parameters.values() if p is not None]  # the meta copies
        self.layer: Layer | None = None  # made at the first call


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A new contiguous ``meta`` tensor, made without going through the dispatch mode."""
    with torch._C._DisableTorchDispatch():
        return torch.empty(shape, device=_META, dtype=dtype)


def _empty_like(x: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(x)`` for a ``meta`` tensor (whose own is a slow Python reference): the same
    shape, type and strides."""
    if not _plain(x):
        return torch.empty_like(x)
    return _empty(tuple(x.shape), x.dtype)  # (a tuple: faster than a torch.Size)


def _plain(x: torch.Tensor) -> bool:
    """Whether ``x`` has exactly the strides of a new contiguous tensor (``is_contiguous`` ignores those
    of size-1 axes, which a channels-last tensor sets otherwise, and PyTorch carries on)."""
    expected = 1
    for size, stride in zip(reversed(x.shape), reversed(x.stride()), strict=True):
        if stride != expected:
            return False
        expected *= max(size, 1)
    return True


def _module_output(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The output shape of a module's layer at ``shape``; ``None`` where PyTorch takes over (an unbatched
    input, or one its rules refuse)."""
    from ..analysis.fields import bound_layer
    from ..rules.torch import torch_rules

    if len(shape) != layer.ndim + 2 or any(f.severity == "error" for f in torch_rules(layer, shape)):
        return None
    return tuple(bound_layer(layer, shape).output_shape)


_SETTINGS = ("kernel_size", "stride", "padding", "dilation", "groups", "ceil_mode", "count_include_pad",
             "divisor_override")  # fmt: skip


def _settings(module: torch.nn.Module) -> tuple[object, ...]:
    """What a convolution's or a pool's layer is made from (a weight by its shape)."""
    weight, bias = module._parameters.get("weight"), module._parameters.get("bias")
    found = module.__dict__
    return (
        None if weight is None else tuple(weight.shape),
        *(found.get(n) for n in _SETTINGS),
        bias is not None,
    )


def _module_layer(module: Any, kind: str) -> Layer:
    n = int(kind[-2])
    if kind.startswith("Conv"):
        weight = module.weight
        return Layer(
            f"conv{n}d", int(weight.shape[1]) * module.groups, int(weight.shape[0]),
            kernel_size=tuple(weight.shape[2:]), stride=module.stride, padding=module.padding,
            dilation=module.dilation, groups=module.groups, bias=module.bias is not None,
        )  # fmt: skip
    if kind.startswith("MaxPool"):
        stride = module.stride if module.stride is not None else module.kernel_size
        return Layer(f"max_pool{n}d", kernel_size=module.kernel_size, stride=stride, padding=module.padding,
                     dilation=module.dilation, ceil_mode=module.ceil_mode)  # fmt: skip
    stride = module.stride if module.stride is not None else module.kernel_size
    return Layer(f"avg_pool{n}d", kernel_size=module.kernel_size, stride=stride, padding=module.padding,
                 ceil_mode=module.ceil_mode, count_include_pad=module.count_include_pad,
                 divisor_override=module.divisor_override)  # fmt: skip


class _WholePad(TorchFunctionMode):
    """``F.pad(mode="circular")`` decomposes into copies into a new tensor: record it whole instead."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        if getattr(func, "__name__", "") == "pad" and mode == "circular":
            x = args[0]
            source = self.recorder.data(x)
            recorder = self.recorder
            saved, recorder.producer = recorder.producer, {}
            try:
                out = func(*args, **kwargs)
            finally:
                recorder.producer = saved
            if source is not None:
                pad = kwargs.get("pad", args[1] if len(args) > 1 else None)
                node = recorder.graph.add(
                    recorder.naming.name("pad"), "pad", (source,), tuple(out.shape), source="F.pad",
                    pads=_pairs(pad, x.dim()), mode="circular",
                )  # fmt: skip
                recorder.mark(out, node)
            return out
        return func(*args, **kwargs)


_SAME_SHAPE = {"relu", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid", "leaky_relu", "elu",
               "mish"}  # fmt: skip
_BATCH_NORM = {"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
               "_native_batch_norm_legit_functional"}  # fmt: skip


_ARITHMETIC = {"add", "sub", "mul", "div"}
_CONSTRUCTORS = {"new_empty", "new_zeros", "new_ones", "new_full", "empty_like", "zeros_like", "ones_like", "full_like",
                 "rand_like", "randn_like", "randint_like", "new_empty_strided", "empty_strided", "_local_scalar_dense",
                 "sym_size", "sym_stride", "sym_numel", "is_nonzero"}  # fmt: skip
_IN_PLACE_COPIES = {"copy_", "index_put_", "slice_scatter", "select_scatter", "masked_scatter_"}


def _tensors(args: Sequence[Any], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors among an operation's arguments (one level of lists: ``cat``'s)."""
    out = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            out.append(value)
        elif isinstance(value, (list, tuple)):
            out += [v for v in value if isinstance(v, torch.Tensor)]
    return out


def _shortcut(func: Any, name: str, args: Sequence[Any]) -> Any:
    """The meta result of an operation whose shapes are plain, without running PyTorch's meta kernel
    (batch normalisation's is a slow Python decomposition); ``None``: run the real one."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or not x.is_meta:
        return None
    if name in _SAME_SHAPE or (name.endswith("_") and name[:-1] in _SAME_SHAPE):
        return x if name.endswith("_") else _empty_like(x)
    if name in _BATCH_NORM:
        channels = x.shape[1] if x.dim() > 1 else 0
        training = (
            bool(args[5])
            if name == "native_batch_norm" and len(args) > 5
            else name != "_native_batch_norm_legit_no_training"
        )
        stats = (channels,) if training else (0,)
        extra = len(func._schema.returns) - 1
        return (_empty_like(x), *(torch.empty(stats, device="meta", dtype=x.dtype) for _ in range(extra)))
    if name in ("mean", "sum", "amax", "amin") and len(args) in (2, 3) and x.is_floating_point() and _plain(x):
        # a global pool written as a mean (PyTorch's meta kernel for it takes a millisecond)
        rank = x.dim()
        dims = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        if not dims or not all(isinstance(d, int) and -rank <= d < rank for d in dims):
            return None
        chosen = {d % rank for d in dims}
        if len(chosen) != len(dims):
            return None  # PyTorch's own error
        keep = bool(args[2]) if len(args) > 2 else False
        kept = [1 if d in chosen else n for d, n in enumerate(x.shape) if keep or d not in chosen]
        return torch.empty(kept, device=_META, dtype=x.dtype)
    if (name[:-1] if name.endswith("_") else name) in _ARITHMETIC and len(args) == 2:
        # a residual add of two contiguous tensors of one floating type (PyTorch's meta kernel for it
        # is its Python reference: type promotion, strides)
        y = args[1]
        if (
            not isinstance(y, torch.Tensor)
            or not y.is_meta
            or y.dtype != x.dtype
            or not x.is_floating_point()
            or not (_plain(x) and _plain(y))
        ):
            return None
        try:
            shape = x.shape if x.shape == y.shape else torch.broadcast_shapes(x.shape, y.shape)  # type: ignore[no-untyped-call]
        except RuntimeError:
            return None  # PyTorch's own error
        if name.endswith("_"):
            return x if shape == x.shape else None
        return torch.empty(shape, device=_META, dtype=x.dtype)
    return None


# -- ATen arguments to convarith terms -------------------------------------------------------------------


def _key(value: object) -> object:
    """An argument as a hashable key (a tensor by its shape: a weight's shape is all a layer takes from it)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape))
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    return value


def _ints(value: object, n: int) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        values = tuple(int(v) for v in value)
        return values * n if len(values) == 1 else values
    return (int(value),) * n  # type: ignore[call-overload]


def _conv_layer(x: torch.Tensor, args: Sequence[Any]) -> Layer:
    _, weight, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    n = weight.dim() - 2
    groups = int(groups)
    if transposed:
        in_c, out_c = int(weight.shape[0]), int(weight.shape[1]) * groups
    else:
        out_c, in_c = int(weight.shape[0]), int(weight.shape[1]) * groups
    kind = "conv_transpose" if transposed else "conv"
    return Layer(
        f"{kind}{n}d",
        in_c,
        out_c,
        kernel_size=tuple(int(k) for k in weight.shape[2:]),
        stride=_ints(stride, n),
        padding=_ints(padding, n),
        dilation=_ints(dilation, n),
        groups=groups,
        output_padding=_ints(output_padding, n) if transposed else 0,
        bias=bias is not None,
    )


def _max_pool_layer(x: torch.Tensor, args: Sequence[Any]) -> Layer:
    kernel = tuple(int(k) for k in args[1])
    n = len(kernel)
    stride = args[2] if len(args) > 2 and args[2] else kernel
    return Layer(
        f"max_pool{n}d",
        kernel_size=kernel,
        stride=_ints(stride, n),
        padding=_ints(args[3] if len(args) > 3 else 0, n),
        dilation=_ints(args[4] if len(args) > 4 else 1, n),
        ceil_mode=bool(args[5]) if len(args) > 5 else False,
    )


def _avg_pool_layer(x: torch.Tensor, args: Sequence[Any]) -> Layer:
    kernel = tuple(int(k) for k in args[1])
    n = len(kernel)
    stride = args[2] if len(args) > 2 and args[2] else kernel
    divisor = args[6] if len(args) > 6 else None
    return Layer(
        f"avg_pool{n}d",
        kernel_size=kernel,
        stride=_ints(stride, n),
        padding=_ints(args[3] if len(args) > 3 else 0, n),
        ceil_mode=bool(args[4]) if len(args) > 4 else False,
        count_include_pad=bool(args[5]) if len(args) > 5 else True,
        divisor_override=None if divisor is None else int(divisor),
    )


def _pairs(flat: object, rank: int) -> tuple[tuple[int, int], ...]:
    """``F.pad``'s flat list (last axis first) as one ``(before, after)`` per axis."""
    values = [int(v) for v in flat]  # type: ignore[attr-defined]
    pairs = [(0, 0)] * rank
    for k in range(len(values) // 2):
        pairs[rank - 1 - k] = (values[2 * k], values[2 * k + 1])
    return tuple(pairs)


def _resize(base: str, x: torch.Tensor, y: torch.Tensor, args: Sequence[Any]) -> dict[str, Any]:
    mode, coordinate, nearest = _UPSAMPLE[base]
    rank = x.dim()
    n = rank - 2
    align = bool(args[2]) if mode != "nearest" and len(args) > 2 and isinstance(args[2], bool) else False
    # the scales PyTorch applies: given ones (a list, or one per axis after the sizes), else size ratios
    rest = [a for a in args[2:] if not isinstance(a, bool)]
    scales: list[float | None] = [None] * n
    if rest and isinstance(rest[-1], (list, tuple)):
        scales = [float(s) for s in rest[-1]]
    elif len(rest) >= n:
        scales = [None if s is None else float(s) for s in rest[-n:]]
    rules = tuple(
        Resize(
            mode,  # type: ignore[arg-type]
            "align_corners" if align else coordinate,  # type: ignore[arg-type]
            nearest,  # type: ignore[arg-type]
            scale=scales[k] if scales[k] else None,
            clamp=True,
            cubic_a=-0.75,
        )
        for k in range(n)
    )
    return {"rules": rules, "dims": tuple(range(2, rank))}


def _reduce_dims(args: Sequence[Any], kwargs: dict[str, Any], rank: int) -> tuple[int, ...]:
    dims = args[1] if len(args) > 1 and not isinstance(args[1], bool) else kwargs.get("dim")
    if isinstance(dims, int):
        return (dims % rank,)
    if not dims:
        return tuple(range(rank))
    return tuple(int(d) % rank for d in dims)


def _order(name: str, x: torch.Tensor, args: Sequence[Any]) -> tuple[int, ...]:
    rank = x.dim()
    if name == "permute":
        return tuple(int(d) % rank for d in args[1])
    order = list(range(rank))
    if name in ("t", "numpy_T"):
        order.reverse()
        return tuple(order)
    if name == "movedim":
        src, dst = int(args[1]) % rank, int(args[2]) % rank
        order.pop(src)
        order.insert(dst, src)
        return tuple(order)
    a, b = int(args[1]) % rank, int(args[2]) % rank
    order[a], order[b] = order[b], order[a]
    return tuple(order)


def _to_meta(naming: _Naming, numel: dict[int, int]) -> list[tuple[dict[str, Any], str, torch.Tensor]]:
    """Swap every parameter and buffer of the model for a ``meta`` copy (one per tensor: tied weights stay
    tied), in place; returns what to put back. ``numel``: each meta parameter's size."""
    metas: dict[int, torch.Tensor] = {}
    swapped: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    try:
        for _, module in naming.modules:
            for store in (module._parameters, module._buffers):
                for key, tensor in store.items():
                    if tensor is None:
                        continue
                    meta = metas.get(id(tensor))
                    if meta is None:
                        meta = metas[id(tensor)] = torch.empty_like(tensor, device=_META)
                        if type(tensor) is torch.nn.Parameter or (
                            type(tensor) is not torch.Tensor and isinstance(tensor, torch.nn.Parameter)
                        ):  # (a plain buffer skips the slow check)
                            numel[id(meta)] = tensor.numel()
                    swapped.append((store, key, tensor))
                    store[key] = meta
    except BaseException:
        for store, key, tensor in swapped:
            store[key] = tensor
        raise
    return swapped


def trace(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    *,
    extra_args: Sequence[object] = (),
    dtype: torch.dtype | None = None,
) -> Graph:
    """The graph of ``model(x, *extra_args)`` for an ``x`` of ``input_shape``, traced on ``meta`` tensors
    (``dtype``: the input's, by default the first floating parameter's)."""
    if not isinstance(model, torch.nn.Module):
        raise ConvArithError("model", "must be a torch.nn.Module", type(model).__name__)
    shape = tuple(int(s) for s in input_shape)
    naming = _Naming(model)
    if dtype is None:  # (model.parameters(), without walking the modules again)
        found = (p for _, m in naming.modules for p in m._parameters.values() if p is not None)
        dtype = next((p.dtype for p in found if p.is_floating_point()), torch.float32)
    extra = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in extra_args]
    numel: dict[int, int] = {}
    swapped = _to_meta(naming, numel)
    try:
        for whole_pads in (False, True):
            graph = Graph()
            x = torch.empty(shape, device="meta", dtype=dtype)
            recorder = _Recorder(graph, naming, dict(numel))
            recorder.mark(x, graph.add("input", "input", (), shape, source="input"))
            modules = _Modules(naming, recorder)
            try:
                with torch.no_grad(), recorder, _WholePad(recorder) if whole_pads else contextlib.nullcontext():
                    out = model(x, *extra)
            except ConvArithError:
                raise
            except Exception as err:  # the model's own refusal of this input (a kernel larger than its input, …)
                lines = str(err).strip().splitlines()
                what = lines[0][:300] if lines else type(err).__name__
                raise ConvArithError(
                    "input_shape", f"the model refuses it ({type(err).__name__}: {what})", shape
                ) from None
            finally:
                modules.close()
                naming.stack.clear()
            if not recorder.assembled:
                break  # else once more, seeing F.pad whole (its circular mode assembles a new tensor)
    finally:
        for store, key, tensor in swapped:
            store[key] = tensor
    leaves, _ = tree_flatten(out)
    names = [recorder.data(t) for t in leaves if isinstance(t, torch.Tensor)]
    graph.output_names = [n for n in dict.fromkeys(names) if n is not None]
    return graph
