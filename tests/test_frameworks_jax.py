"""The JAX adapter against JAX: emitted ``lax`` code computes convarith's reference values, the rules
refuse exactly what ``lax`` refuses, ``lax`` calls written as text parse to the layer that ``lax``
computes (run on arrays of the written shapes), and JAX's traps are asserted as they are today."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from convarith import BoundLayer, ConvArithError, Layer, check  # noqa: E402
from convarith.frameworks import jax as adapter  # noqa: E402
from convarith.frameworks.base import build, explicit, random_arrays, run  # noqa: E402
from convarith.ops.reference import apply  # noqa: E402
from convarith.rules.jax import ceil_changes_windows  # noqa: E402
from strategies import bound_layers, examples, layers  # noqa: E402

jax.config.update("jax_enable_x64", True)  # as the adapter's code does: float64 on CPU

INT64_MAX = 2**63 - 1


def _errors(layer: Layer, shape: Any = None) -> list[str]:
    return [f.message for f in check(layer, shape, framework="jax") if f.severity == "error"]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    # an average over a window of padding alone is 0/0 in both
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)


def _parse(text: str) -> tuple[Layer, tuple[int, ...] | None]:
    return adapter.parse_call(ast.parse(text, mode="eval").body, text)  # type: ignore[arg-type]


any_bound = st.one_of(bound_layers(forms=(2,)), bound_layers(layers(torch_like=False), forms=(2,)))


@examples(110)
@given(any_bound, st.integers(0, 2**32 - 1))
def test_emitted_code_computes_the_reference(bound: BoundLayer, seed: int) -> None:
    """Every layer convarith accepts with small numbers, JAX computes (no refusal), and exactly."""
    assert not _errors(bound.layer, bound.input_shape)
    x, w, b = random_arrays(bound, seed)
    got = run(adapter, bound, x, w, b)
    _close(got, apply(bound, x, w, b))


# -- refusals: the only ones are numbers XLA cannot hold ----------------------------------------------------


def _native_conv(x: np.ndarray, stride: int, pads: tuple[int, int], dilation: int) -> Any:
    """The direct lax call as the layer's numbers say it (not the adapter's code)."""
    return lax.conv_general_dilated(
        jnp.asarray(x), jnp.ones((1, 1, 2)), (stride,), ((pads[0], pads[1]),), rhs_dilation=(dilation,)
    )


BIG = st.sampled_from([1, 2, 2**62, INT64_MAX - 1, INT64_MAX, INT64_MAX + 1, 2**64])


@examples(60)
@given(BIG, st.sampled_from([1, 2, 2**62, INT64_MAX - 5, INT64_MAX - 4, INT64_MAX - 3, INT64_MAX]), st.integers(0, 3))
def test_rules_refuse_exactly_what_lax_refuses(stride: int, dilation: int, extra: int) -> None:
    """A 1-d convolution of kernel 2 whose stride, dilation and padding are near 2⁶³ (a padding after as long
    as the dilated kernel keeps the output small): the rules refuse exactly when lax raises (a number, or the
    padded input, past 2⁶³ − 1)."""
    pads = (0, dilation + extra)  # the dilated kernel reaches d(k − 1) = d cells past the input's first
    layer = Layer("conv1d", 1, 1, kernel_size=2, stride=stride, dilation=dilation, padding=[pads], bias=False)
    try:
        bound = layer.bind((1, 1, 4))
    except ConvArithError:
        assume(False)
        raise
    refused = bool(_errors(layer, bound.input_shape))
    x = np.arange(4.0).reshape(1, 1, 4)
    try:
        got = np.asarray(_native_conv(x, stride, pads, dilation))
    except (OverflowError, TypeError, ValueError):
        assert refused
        with pytest.raises(ConvArithError, match="64-bit"):
            adapter.emit(layer, bound.input_shape)
        return
    assert not refused
    assert got.shape == bound.output_shape
    # the second tap is in the padding after when d ≥ 4: each output is the input cell its window starts at
    starts = np.arange(bound.output_shape[-1], dtype=object) * stride
    want = (
        [x.ravel()[int(t)] if t < 4 else 0.0 for t in starts] if dilation >= 4 else apply(bound, x, np.ones((1, 1, 2)))
    )
    np.testing.assert_allclose(got.ravel(), np.ravel(want))


def test_huge_pool_strides_are_refused_as_lax_refuses() -> None:
    layer = Layer("max_pool1d", kernel_size=2, stride=INT64_MAX + 1)
    assert _errors(layer, (1, 1, 5))
    with pytest.raises(TypeError):
        lax.reduce_window(jnp.ones((1, 1, 5)), -jnp.inf, lax.max, (1, 1, 2), (1, 1, INT64_MAX + 1), "VALID")
    assert not _errors(layer.replace(stride=INT64_MAX), (1, 1, 5))
    _close(run(adapter, layer.replace(stride=INT64_MAX).bind((1, 1, 5)), np.ones((1, 1, 5))), np.ones((1, 1, 1)))


# -- the emitted steps, and the lax.conv_transpose form shown beside them ------------------------------------


def _with_shapes(step: str, bound: BoundLayer) -> str:
    """A step's text with the arrays written as their shapes (as a user writes a call for convarith)."""
    text = step.split("  #")[0].removeprefix("# = ")
    x = str(tuple(bound.input_shape))
    if bound.layer.weighted:
        assert bound.weight_shape is not None
        w = tuple(bound.weight_shape)
        if "conv_general_dilated" in text and bound.transposed:  # the direct kernel: (out, in/groups, *k)
            g = bound.layer.groups
            w = (bound.out_channels, bound.in_channels // g, *w[2:])
        text = text.replace("(x, kernel,", f"({x}, {w},").replace("(x, w,", f"({x}, {w},")
    return text.replace("(x,", f"({x},")


@examples(150)
@given(any_bound)
def test_steps_read_back_as_the_same_layer(bound: BoundLayer) -> None:
    layer = bound.layer
    emitted = adapter.emit(layer, bound.input_shape)
    calls = [s for s in emitted.steps if s.startswith("lax.")]
    assume(len(calls) == 1 and not any(s.startswith("jnp.pad") for s in emitted.steps))
    assume(layer.kind != "avg_pool")  # a window sum is not a layer by itself (parse_call refuses it)
    back, shape = _parse(_with_shapes(calls[0], bound))
    assert shape == bound.input_shape
    if layer.kind == "max_pool":
        layer = layer.replace(ceil_mode=False)  # written out as padding
    if layer.kind == "conv":
        layer = layer.replace(padding_mode="zeros")  # no padded cell is read (else a jnp.pad step)
    want = explicit(layer.replace(bias=False), bound.input_shape)
    assert back.bind(bound.input_shape).output_shape == bound.output_shape
    if layer.transposed and back.kind == "conv":
        # at stride 1 the step is the direct convolution itself (no lhs_dilation): a conv of the direct kernel
        assert layer.stride == (1,) * layer.ndim
        assert explicit(back, bound.input_shape).padding == tuple(ax.direct_pad for ax in bound.axes)
        assert (back.in_channels, back.out_channels, back.groups) == (
            bound.in_channels,
            bound.out_channels,
            layer.groups,
        )
        return
    if layer.transposed:
        # output_padding and the padding after trade cells: the same computation
        want_pads = [(b, a - op) for (b, a), op in zip(want.padding, want.output_padding, strict=True)]  # type: ignore[misc]
        got = explicit(back, bound.input_shape)
        got_pads = [(b, a - op) for (b, a), op in zip(got.padding, got.output_padding, strict=True)]  # type: ignore[misc]
        assert got_pads == want_pads
        assert got.replace(padding=0, output_padding=0) == want.replace(
            padding=0, output_padding=0, in_channels=bound.in_channels, out_channels=bound.out_channels
        )
        return
    if layer.pooling:  # a pool's channels are the input's; ceil_mode is written out as padding after
        x, _, _ = random_arrays(bound)
        _close(apply(back.bind(bound.input_shape), x), apply(bound, x))
        if not ceil_changes_windows(bound.layer, bound.input_shape):
            assert explicit(back, bound.input_shape).replace(in_channels=None, out_channels=None) == want.replace(
                in_channels=None, out_channels=None
            )
        return
    assert explicit(back, bound.input_shape) == want.replace(
        in_channels=bound.in_channels, out_channels=bound.out_channels
    )


@examples(30)
@given(bound_layers(layers(kinds=("conv_transpose",)), forms=(2,)), st.integers(0, 2**32 - 1))
def test_the_conv_transpose_form_computes_the_layer(bound: BoundLayer, seed: int) -> None:
    """The ``lax.conv_transpose(x, w, …, transpose_kernel=True)`` shown beside the code: run as written on
    ``w`` in PyTorch's layout, it computes the layer (no groups: it has none)."""
    form = adapter.conv_transpose_form(bound.layer)
    if bound.layer.groups > 1:
        assert form is None
        return
    assert form is not None
    x, w, _ = random_arrays(bound, seed)
    call = ast.parse(form, mode="eval").body
    assert isinstance(call, ast.Call)
    args = [ast.literal_eval(a) for a in call.args[2:]]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    got = lax.conv_transpose(jnp.asarray(x), jnp.asarray(w), *args, **kwargs)
    _close(np.asarray(got), apply(bound.layer.replace(bias=False), x, w))
    # and parse_call reads it back as the layer
    back, shape = _parse(_with_shapes(form, bound))
    assert shape == bound.input_shape
    assert back.bind(bound.input_shape).output_shape == bound.output_shape


# -- lax calls written as text, against lax itself ------------------------------------------------------------

SPATIAL_LETTERS = "HWD"


def _spec(draw: st.DrawFn, pair: str, spatial: str) -> str:
    return "".join(draw(st.permutations(list(pair + spatial))))


def _to(spec: str, order: str, array: np.ndarray) -> np.ndarray:
    """``array`` laid out as ``order`` (a spec string) rearranged to ``spec``."""
    return np.transpose(array, [order.index(c) for c in spec])


@st.composite
def conv_general_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A ``lax.conv_general_dilated`` call text with shapes for arrays, and the facts to run it."""
    n = draw(st.integers(1, 3))
    spatial = SPATIAL_LETTERS[:n]
    g = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k = [draw(st.integers(1, 3)) for _ in range(n)]
    size = [draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n)]
    dilated = draw(st.integers(0, 2)) == 0
    strides = [1] * n if dilated else [draw(st.integers(1, 3)) for _ in range(n)]
    lhs_dilation = [draw(st.integers(1, 3)) for _ in range(n)] if dilated else None
    transposed = lhs_dilation is not None and max(lhs_dilation) > 1
    rhs_dilation = [draw(st.integers(1, 2)) for _ in range(n)] if draw(st.booleans()) else None
    if dilated or draw(st.integers(0, 2)) == 0:
        padding: Any = tuple((draw(st.integers(-1, 3)), draw(st.integers(-1, 3))) for _ in range(n))
    else:
        padding = draw(st.sampled_from(["SAME", "SAME_LOWER", "VALID", "same"]))
    specs = None
    if draw(st.booleans()):
        specs = (_spec(draw, "NC", spatial), _spec(draw, "OI", spatial), _spec(draw, "NC", spatial))
    lhs_spec, rhs_spec, out_spec = specs or ("NC" + spatial, "OI" + spatial, "NC" + spatial)
    rhs_order = [c for c in rhs_spec if c not in "OI"]  # JAX: spatial axes in the kernel's order
    sizes = {"N": draw(st.integers(1, 2)), "C": c_in, **dict(zip(spatial, size, strict=True))}
    lhs = tuple(sizes[c] for c in lhs_spec)
    ksizes = {"O": c_out, "I": c_in // g, **dict(zip(spatial, k, strict=True))}
    rhs = tuple(ksizes[c] for c in rhs_spec)
    named: dict[str, Any] = {"window_strides": tuple(strides), "padding": padding}
    if lhs_dilation is not None:
        named["lhs_dilation"] = tuple(lhs_dilation)
    if rhs_dilation is not None:
        named["rhs_dilation"] = tuple(rhs_dilation)
    if specs is not None:
        named["dimension_numbers"] = specs
    if g > 1:
        named["feature_group_count"] = g
    positional = draw(st.integers(0, 2))  # window_strides, padding written positionally or not
    args = [repr(lhs), repr(rhs)]
    keys = list(named)
    for key in ("window_strides", "padding")[:positional]:
        args.append(repr(named[key]))
        keys.remove(key)
    args += [f"{key}={named[key]!r}" for key in keys]
    prefix = draw(st.sampled_from(["lax.", "jax.lax."]))
    text = f"{prefix}conv_general_dilated({', '.join(args)})"
    facts = {
        "lhs": lhs,
        "rhs": rhs,
        "named": named,
        "specs": (lhs_spec, rhs_spec, out_spec),
        "rhs_order": "".join(rhs_order),
        "groups": g,
        "transposed": transposed,
    }
    return text, facts


def _lax_or_error(fn: Any, *args: Any, **kwargs: Any) -> np.ndarray | None:
    """lax's answer, or None when lax refuses or gives an empty output."""
    try:
        out = np.asarray(fn(*args, **kwargs))
    except (ValueError, TypeError, RuntimeError):
        return None
    return None if out.size == 0 else out


def _parse_and_apply(text: str, x_ncs: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """convarith's answer for the parsed call, or None when parsing or binding refuses."""
    try:
        layer, shape = _parse(text)
        assert shape == x_ncs.shape
        bound = layer.bind(shape)
    except ConvArithError:
        return None
    assert bound.weight_shape == w.shape, (bound, w.shape)
    return apply(bound, x_ncs, w)


@examples(120)
@given(conv_general_calls(), st.integers(0, 2**32 - 1))
def test_conv_general_dilated_text_parses_to_what_lax_computes(case: tuple[str, dict[str, Any]], seed: int) -> None:
    text, facts = case
    rng = np.random.default_rng(seed)
    lhs, rhs = rng.standard_normal(facts["lhs"]), rng.standard_normal(facts["rhs"])
    want = _lax_or_error(lax.conv_general_dilated, jnp.asarray(lhs), jnp.asarray(rhs), **facts["named"])
    lhs_spec, rhs_spec, out_spec = facts["specs"]
    order = facts["rhs_order"]
    x = _to("NC" + order, lhs_spec, lhs)
    kernel = _to("OI" + order, rhs_spec, rhs)  # the direct kernel (out, in/groups, *k)
    if facts["transposed"]:
        g = facts["groups"]
        o, i, *k = kernel.shape
        w = kernel.reshape(g, o // g, i, *k).swapaxes(1, 2).reshape(g * i, o // g, *k)
        w = np.flip(w, tuple(range(2, w.ndim)))
    else:
        w = kernel
    got = _parse_and_apply(text, x, w)
    if want is None:
        assert got is None, text
        return
    assert got is not None, text
    _close(_to(out_spec, "NC" + order, got), want)


@st.composite
def conv_transpose_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    n = draw(st.integers(1, 3))
    spatial = SPATIAL_LETTERS[:n]
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = [draw(st.integers(1, 4 if n < 3 else 3)) for _ in range(n)]
    size = [draw(st.integers(1, 5 if n < 3 else 3)) for _ in range(n)]
    strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
    padding: Any = draw(
        st.one_of(
            st.sampled_from(["SAME", "VALID"]),
            st.tuples(*[st.tuples(st.integers(-1, 4), st.integers(-1, 4))] * n),
        )
    )
    named: dict[str, Any] = {}
    if draw(st.booleans()):
        named["rhs_dilation"] = tuple(draw(st.integers(1, 2)) for _ in range(n))
    flip = draw(st.sampled_from([None, True, False]))
    if flip is not None:
        named["transpose_kernel"] = flip
    if not isinstance(padding, str) and draw(st.booleans()):
        named["use_consistent_padding"] = draw(st.booleans())
    specs = None
    if draw(st.booleans()):
        specs = (_spec(draw, "NC", spatial), _spec(draw, "OI", spatial), _spec(draw, "NC", spatial))
        named["dimension_numbers"] = specs
    # lax.conv_transpose's default: TensorFlow's NHWC / HWIO (JAX's own letters; any spatial names do)
    lhs_spec, rhs_spec, out_spec = specs or ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    # with transpose_kernel the axis named O holds the input channels
    o_size, i_size = (c_in, c_out) if flip else (c_out, c_in)
    sizes = {"N": draw(st.integers(1, 2)), "C": c_in, **dict(zip(spatial, size, strict=True))}
    ksizes = {"O": o_size, "I": i_size, **dict(zip(spatial, k, strict=True))}
    lhs = tuple(sizes[c] for c in lhs_spec)
    rhs = tuple(ksizes[c] for c in rhs_spec)
    args = [repr(lhs), repr(rhs), repr(strides), repr(padding)]
    args += [f"{key}={value!r}" for key, value in named.items()]
    text = f"lax.conv_transpose({', '.join(args)})"
    rhs_order = "".join(c for c in rhs_spec if c not in "OI")
    facts = {
        "lhs": lhs,
        "rhs": rhs,
        "strides": strides,
        "padding": padding,
        "named": named,
        "specs": (lhs_spec, rhs_spec, out_spec),
        "rhs_order": rhs_order,
        "flip": bool(flip),
    }
    return text, facts


@examples(100)
@given(conv_transpose_calls(), st.integers(0, 2**32 - 1))
def test_conv_transpose_text_parses_to_what_lax_computes(case: tuple[str, dict[str, Any]], seed: int) -> None:
    text, facts = case
    rng = np.random.default_rng(seed)
    lhs, rhs = rng.standard_normal(facts["lhs"]), rng.standard_normal(facts["rhs"])
    want = _lax_or_error(
        lax.conv_transpose, jnp.asarray(lhs), jnp.asarray(rhs), facts["strides"], facts["padding"], **facts["named"]
    )
    lhs_spec, rhs_spec, out_spec = facts["specs"]
    order = facts["rhs_order"]
    x = _to("NC" + order, lhs_spec, lhs)
    kernel = _to("OI" + order, rhs_spec, rhs)
    # transpose_kernel=True: the axis named O is the input's and lax flips (PyTorch's layout); False: lax uses
    # the kernel as a direct convolution's
    w = kernel if facts["flip"] else np.flip(kernel.swapaxes(0, 1), tuple(range(2, kernel.ndim)))
    got = _parse_and_apply(text, x, w)
    if want is None:
        assert got is None, text
        return
    assert got is not None, text
    _close(_to(out_spec, "NC" + order, got), want)


@st.composite
def reduce_window_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    n = draw(st.integers(1, 3))
    last = draw(st.booleans())
    c = draw(st.integers(1, 2))
    size = [draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n)]
    window = [draw(st.integers(1, 3)) for _ in range(n)]
    strides = [draw(st.integers(1, 3)) for _ in range(n)]
    dilation = [draw(st.integers(1, 2)) for _ in range(n)] if draw(st.booleans()) else None
    pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(n)]
    padding: Any = draw(st.sampled_from(["SAME", "SAME_LOWER", "VALID", "pairs", "default"]))

    def full(values: list[Any], one: Any) -> tuple[Any, ...]:
        return tuple([one, *values, one] if last else [one, one, *values])

    batch = draw(st.integers(1, 2))
    shape = (batch, *size, c) if last else (batch, c, *size)
    named: dict[str, Any] = {"window_dimensions": full(window, 1), "window_strides": full(strides, 1)}
    if padding == "pairs":
        named["padding"] = full(pads, (0, 0))
    elif padding != "default":
        named["padding"] = padding
    if dilation is not None:
        named["window_dilation"] = full(dilation, 1)
    init = draw(st.sampled_from(["-jnp.inf", "-np.inf", "float('-inf')"]))
    body = [repr(shape), init, "lax.max"] + [f"{k}={v!r}" for k, v in named.items()]
    return f"lax.reduce_window({', '.join(body)})", {"shape": shape, "named": named, "last": last}


@examples(60)
@given(reduce_window_calls(), st.integers(0, 2**32 - 1))
def test_reduce_window_text_parses_to_what_lax_computes(case: tuple[str, dict[str, Any]], seed: int) -> None:
    text, facts = case
    x = np.random.default_rng(seed).standard_normal(facts["shape"])
    want = _lax_or_error(lax.reduce_window, jnp.asarray(x), -jnp.inf, lax.max, **facts["named"])
    x_ncs = np.moveaxis(x, -1, 1) if facts["last"] else x
    try:
        layer, shape = _parse(text)
        bound = layer.bind(shape)
    except ConvArithError:
        assert want is None, text
        return
    assert want is not None, text
    if shape != x_ncs.shape:  # N, C and the last axis all untouched: read channels first, the same windows
        assert facts["last"] and shape == x.shape
        _close(apply(bound, x), want)
        return
    got = apply(bound, x_ncs)
    as_drawn = np.moveaxis(got, 1, -1) if facts["last"] else got
    if facts["last"] and shape == x.shape and as_drawn.shape == want.shape and not np.allclose(as_drawn, want):
        # the window and strides leave both axis 1 and the last axis untouched and every size is equal:
        # the call reads as channels first as well, which the parser takes (the same windows, positionally)
        as_drawn = apply(bound, x)
    _close(as_drawn, want)


def test_parse_call_refusals() -> None:
    cases = {
        "lax.reduce_window((1, 1, 5), 0.0, lax.add, (1, 1, 2), (1, 1, 2))": "computation",
        "lax.conv_general_dilated((1, 1, 5), (1, 1, 2), (2,), ((0, 0),), lhs_dilation=(2,))": "window_strides",
        "lax.conv_general_dilated((1, 1, 5), (1, 1, 2), (1,), 'SAME', lhs_dilation=(2,))": "padding",
        "lax.conv_general_dilated((1, 1, 5), (1, 1, 2), (1,), 'FULL')": "padding",
        "lax.conv_general_dilated(x, w, (1,), 'SAME')": "rhs",
        "lax.conv_general_dilated(x, (1, 1, 2), (1,), 'SAME', batch_group_count=2)": "batch_group_count",
        "lax.conv_general_dilated(x, (1, 1, 2), (1,), 'SAME', dimension_numbers=('NCH', 'OIW', 'NCH'))": (
            "dimension_numbers"
        ),
        "lax.conv_transpose(x, (2, 1, 1), (2,), 'SAME_LOWER')": "padding",
        "lax.reduce_window((1, 1, 5), -jnp.inf, lax.max, (2, 1, 2), (1, 1, 2))": "window_dimensions",
        "lax.reduce_window((1, 1, 5), -jnp.inf, lax.max, (1, 1, 2), (1, 1, 2), base_dilation=(1, 1, 2))": (
            "base_dilation"
        ),
        "lax.reduce_window((1, 1, 5), -jnp.inf, lax.max, (1, 1, 2), padding='SAME')": "window_strides",
        "np.convolve(x, w)": "source",
    }
    for text, param in cases.items():
        with pytest.raises(ConvArithError, match=f"^{param}"):
            _parse(text)
    # what lax itself refuses among them
    with pytest.raises(ValueError, match="String padding is not implemented"):
        lax.conv_general_dilated(jnp.ones((1, 1, 5)), jnp.ones((1, 1, 2)), (1,), "SAME", lhs_dilation=(2,))
    with pytest.raises(ValueError, match="broadcast"):
        lax.reduce_window(jnp.ones((1, 1, 5)), -jnp.inf, lax.max, (1, 1, 2), padding="SAME")


def test_parse_call_examples() -> None:
    assert _parse("lax.conv_general_dilated((1, 3, 32, 32), (18, 1, 3, 3), (2, 2), 'SAME', feature_group_count=3)")[
        0
    ] == Layer("conv2d", 3, 18, kernel_size=3, stride=2, padding="same_tf", groups=3, bias=False)
    layer, shape = _parse("lax.conv_transpose((1, 8, 8, 4), (3, 3, 2, 4), (2, 2), 'SAME', transpose_kernel=True)")
    # HWIO with transpose_kernel: O (4) is the input's channels
    assert (layer.in_channels, layer.out_channels, shape) == (4, 2, (1, 4, 8, 8))
    assert layer.bind(shape).output_shape == (1, 2, 16, 16)
    layer, _ = _parse("lax.conv_transpose((1, 8, 8, 4), (3, 3, 4, 2), (2, 2), 'SAME')")
    assert (layer.in_channels, layer.out_channels) == (4, 2)
    layer, shape = _parse("lax.reduce_window((2, 9, 9, 3), -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), 'SAME')")
    assert layer == Layer("max_pool2d", kernel_size=3, stride=2, padding="same_tf") and shape == (2, 3, 9, 9)


def test_from_native_refuses_every_object() -> None:
    with pytest.raises(ConvArithError, match="no layer objects"):
        adapter.from_native(lax.conv_general_dilated)


def test_version_and_registry() -> None:
    assert adapter.installed() and adapter.version().startswith(jax.__version__)
    assert adapter.NAME == "jax" and adapter.LABEL == "JAX"
    entries = [f.data.get("entry") for f in adapter.findings(Layer("conv_transpose2d", 4, 4, 3, groups=2))]
    assert "jax-conv-transpose" in entries and "transposed-groups" in entries


def test_workarounds_are_named_exactly_when_needed() -> None:
    def codes(layer: Layer, shape: tuple[int, ...]) -> list[str]:
        return [f.data.get("what", "") for f in adapter.findings(layer, shape) if f.code == "needs-workaround"]

    # reflect padding whose cells are read, and not read
    assert codes(Layer("conv1d", 1, 1, 3, padding=1, padding_mode="reflect"), (1, 1, 5))
    assert not codes(Layer("conv1d", 1, 1, 1, stride=2, padding=[(0, 1)], padding_mode="reflect"), (1, 1, 5))
    # ceil_mode that adds a window, that drops one, that changes nothing
    assert codes(Layer("max_pool1d", kernel_size=2, ceil_mode=True), (1, 1, 5))
    assert codes(Layer("max_pool1d", kernel_size=1, stride=1, padding=[(0, 2)], ceil_mode=True), (1, 1, 4))
    assert not codes(Layer("max_pool1d", kernel_size=2, ceil_mode=True), (1, 1, 4))
    # an average over padding
    assert codes(Layer("avg_pool1d", kernel_size=3, padding=1, count_include_pad=False), (1, 1, 5))
    assert not codes(Layer("avg_pool1d", kernel_size=3, padding=1), (1, 1, 5))


def test_ceil_mode_drops_a_window_at_stride_one() -> None:
    """PyTorch's ceil_mode drops a last window that starts in the padding after even at stride 1 (pads ≥ the
    kernel): the floor reduce_window would give one more."""
    layer = Layer("max_pool1d", kernel_size=1, stride=1, padding=[(0, 2)], ceil_mode=True)
    bound = layer.bind((1, 1, 4))
    assert bound.output_shape == (1, 1, 5)
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    _close(run(adapter, bound, x), apply(bound, x))
    with pytest.raises(ConvArithError, match="input_shape"):
        adapter.emit(layer)
    assert adapter.emit(layer.replace(padding=[(0, 0)])).steps  # no change possible: no input needed


def test_weight_layouts() -> None:
    """A convolution's kernel is lax's default OIHW (convarith's layout); a transposed one's JAX layout is the
    direct kernel: rotated 180° with its channel axes swapped within each group."""
    conv = adapter.emit(Layer("conv2d", 4, 6, 3, groups=2))
    assert conv.weight_in == "" and conv.weight_out == "w"
    emitted = adapter.emit(Layer("conv_transpose2d", 4, 6, kernel_size=(2, 3), groups=2))
    w = np.arange(4 * 3 * 6, dtype=np.float64).reshape(4, 3, 2, 3)
    namespace: dict[str, Any] = {"w": w, "np": np}
    out = eval(emitted.weight_out, {}, namespace)  # test-only: our own expression
    assert out.shape == (6, 2, 2, 3)
    np.testing.assert_array_equal(out[3 + 1, 0], w[2, 1, ::-1, ::-1])  # group 1, out 1, in 0
    exec(emitted.weight_in, {}, namespace := {"w": out, "np": np})  # test-only: our own statements
    np.testing.assert_array_equal(namespace["w"], w)


def test_generated_code_is_a_module_that_runs() -> None:
    """``code()`` takes the weight in JAX's layout (the direct kernel of a transposed layer)."""
    layer = Layer("conv_transpose2d", 2, 4, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2)
    bound = layer.bind((1, 2, 4, 4))
    emitted = adapter.emit(layer, bound.input_shape)
    x, w, b = random_arrays(bound)
    namespace: dict[str, Any] = {"w": w, "np": np}
    jax_w = eval(emitted.weight_out, {}, namespace)  # test-only: our own expression
    module: dict[str, Any] = {}
    exec(compile(emitted.code(), "<test>", "exec"), module)  # test-only: the code convarith wrote
    _close(np.asarray(module["make"](jax_w, b)(jnp.asarray(x))), apply(bound, x, w, b))
    _close(np.asarray(build(emitted, w, b)(jnp.asarray(x))), apply(bound, x, w, b))


# -- JAX's traps, asserted as they are (docs/pitfalls.md, /work/notes/pitfalls_jax.md) ------------------------

X4 = jnp.arange(1.0, 5.0).reshape(1, 1, 4)  # NCH
K3 = jnp.array([1.0, 10.0, 100.0]).reshape(1, 1, 3)  # OIH
NCH = ("NCH", "OIH", "NCH")


def test_conv_transpose_same_is_tf_same_not_a_pytorch_padding() -> None:
    """'SAME' gives i·s cells and crops TensorFlow's way (the odd cell after): k=3, s=2 crops (0, 1).
    PyTorch's usual padding=1, output_padding=1 gives the same size but crops (1, 0): values shifted by one."""
    same = lax.conv_transpose(X4, K3, (2,), "SAME", dimension_numbers=NCH, transpose_kernel=True)
    assert same.ravel().tolist() == [1.0, 10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0]
    torch_like = Layer("conv_transpose1d", 1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    shifted = apply(torch_like.bind((1, 1, 4)), np.asarray(X4), np.asarray(K3))
    assert shifted.shape == same.shape and shifted.ravel().tolist() == [
        10.0,
        102.0,
        20.0,
        203.0,
        30.0,
        304.0,
        40.0,
        400.0,
    ]
    tf_like = Layer("conv_transpose1d", 1, 1, 3, stride=2, padding="same_tf", bias=False)
    assert explicit(tf_like).padding == ((0, 1),)
    np.testing.assert_allclose(same, apply(tf_like.bind((1, 1, 4)), np.asarray(X4), np.asarray(K3)))
    text = "lax.conv_transpose((1, 1, 4), (1, 1, 3), (2,), 'SAME', dimension_numbers=('NCH', 'OIH', 'NCH'))"
    assert _parse(text)[0].padding == "same_tf"
    # an even kernel: 'SAME' is symmetric, PyTorch's padding=1 (k=4, s=2)
    k4 = jnp.arange(1.0, 5.0).reshape(1, 1, 4)
    even = lax.conv_transpose(X4, k4, (2,), "SAME", dimension_numbers=NCH, transpose_kernel=True)
    torch_even = Layer("conv_transpose1d", 1, 1, 4, stride=2, padding=1, bias=False)
    np.testing.assert_allclose(even, apply(torch_even.bind((1, 1, 4)), np.asarray(X4), np.asarray(k4)))


def test_conv_transpose_valid_is_not_zero_pairs() -> None:
    """'VALID' is the forward convolution's: (i − 1)s + max(k, s) cells; ((0, 0),) is the direct convolution's
    padding: (i − 1)s + 1 − (k − 1) (jax-ml/jax#17618)."""
    valid = lax.conv_transpose(X4, K3, (2,), "VALID", dimension_numbers=NCH)
    zeros = lax.conv_transpose(X4, K3, (2,), ((0, 0),), dimension_numbers=NCH)
    assert valid.shape == (1, 1, 9) and zeros.shape == (1, 1, 5)
    wide = lax.conv_transpose(X4, jnp.ones((1, 1, 1)), (3,), "VALID", dimension_numbers=NCH)
    assert wide.ravel().tolist() == [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0, 4.0, 0.0, 0.0]


def test_conv_transpose_explicit_pairs_are_the_direct_convolutions_padding() -> None:
    """Integer pairs pad the stride-dilated input of the equivalent direct convolution (k − 1 − p for PyTorch's
    p), unless use_consistent_padding=True, which reads them as PyTorch's (jax-ml/jax#32267, #32268)."""
    torch_p1 = apply(Layer("conv_transpose1d", 1, 1, 3, stride=2, padding=1, bias=False).bind((1, 1, 4)), X4, K3)
    direct = lax.conv_transpose(X4, K3, (2,), ((1, 1),), dimension_numbers=NCH, transpose_kernel=True)
    consistent = lax.conv_transpose(
        X4, K3, (2,), ((1, 1),), dimension_numbers=NCH, transpose_kernel=True, use_consistent_padding=True
    )
    assert direct.shape == (1, 1, 7) == torch_p1.shape
    np.testing.assert_allclose(direct, torch_p1)  # k − 1 − 1 = 1: the same numbers by chance (k = 3)
    np.testing.assert_allclose(consistent, torch_p1)
    torch_p0 = apply(Layer("conv_transpose1d", 1, 1, 3, stride=2, bias=False).bind((1, 1, 4)), X4, K3)
    assert lax.conv_transpose(X4, K3, (2,), ((0, 0),), dimension_numbers=NCH).shape == (1, 1, 5)
    assert torch_p0.shape == (1, 1, 9)
    zero = lax.conv_transpose(
        X4, K3, (2,), ((0, 0),), dimension_numbers=NCH, transpose_kernel=True, use_consistent_padding=True
    )
    np.testing.assert_allclose(zero, torch_p0)


def test_conv_transpose_kernel_is_not_flipped_by_default() -> None:
    """transpose_kernel=False (the default) uses the kernel as a direct convolution's: not flipped, not
    swapped; True flips the spatial axes and swaps O and I (PyTorch's and TensorFlow's transposed conv)."""
    plain = lax.conv_transpose(X4, K3, (1,), "VALID", dimension_numbers=NCH)
    flipped = lax.conv_transpose(X4, K3, (1,), "VALID", dimension_numbers=NCH, transpose_kernel=True)
    torch_values = apply(Layer("conv_transpose1d", 1, 1, 3, bias=False).bind((1, 1, 4)), X4, K3)
    np.testing.assert_allclose(flipped, torch_values)
    np.testing.assert_allclose(plain, apply(Layer("conv_transpose1d", 1, 1, 3, bias=False), X4, K3[..., ::-1]))
    assert not np.allclose(plain, flipped)
    # the swap: a kernel written (in=2, out=3, k) in the OIH slot is refused without transpose_kernel
    x2 = jnp.ones((1, 2, 4))
    w = jnp.ones((2, 3, 3))
    assert lax.conv_transpose(x2, w, (1,), "VALID", dimension_numbers=NCH, transpose_kernel=True).shape == (1, 3, 6)
    with pytest.raises(ValueError, match="feature"):
        lax.conv_transpose(x2, w, (1,), "VALID", dimension_numbers=NCH)


def test_default_dimension_numbers_differ() -> None:
    """conv_general_dilated defaults to NCHW/OIHW; conv_transpose to NHWC/HWIO (TensorFlow's)."""
    x = jnp.ones((1, 3, 8, 8))
    assert lax.conv_general_dilated(x, jnp.ones((5, 3, 3, 3)), (1, 1), "VALID").shape == (1, 5, 6, 6)
    with pytest.raises(ValueError):
        lax.conv_transpose(x, jnp.ones((5, 3, 3, 3)), (1, 1), "VALID")  # read as NHWC / HWIO
    assert lax.conv_transpose(x, jnp.ones((3, 3, 8, 5)), (1, 1), "VALID").shape == (1, 5, 10, 5)
    assert _parse("lax.conv_transpose((1, 3, 8, 8), (3, 3, 8, 5), (1, 1), 'VALID')")[1] == (1, 8, 3, 8)


def test_x64_is_off_by_default() -> None:
    """Without jax_enable_x64 a float64 NumPy array silently becomes float32 (a warning only when float64 is
    asked for by name), and lax computes in float32: 1 + 2⁻³⁰ is 1. The adapter's code turns x64 on,
    process-wide (checked in a fresh process, as this one has it on)."""
    script = (
        "import warnings, numpy as np, jax.numpy as jnp\n"
        "from jax import lax\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    a = jnp.asarray(np.ones(2))\n"
        "    silent = not caught\n"
        "    jnp.asarray(np.ones(2), dtype=np.float64)\n"
        "x = np.full((1, 1, 1), 1 + 2**-30)\n"
        "y = np.asarray(lax.conv_general_dilated(x, np.ones((1, 1, 1)), (1,), 'VALID'))\n"
        "print(a.dtype, silent, len(caught), y.dtype, y.item() == 1.0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["float32", "True", "1", "float32", "True"]
    assert 'jax.config.update("jax_enable_x64", True)' in adapter.emit(Layer("conv1d", 1, 1, 3)).build


def test_lax_same_is_tensorflows_and_same_lower_puts_the_odd_cell_before() -> None:
    k2 = jnp.ones((1, 1, 2))
    same = lax.conv_general_dilated(X4, k2, (1,), "SAME")
    lower = lax.conv_general_dilated(X4, k2, (1,), "SAME_LOWER")
    assert same.ravel().tolist() == [3.0, 5.0, 7.0, 4.0] and lower.ravel().tolist() == [1.0, 3.0, 5.0, 7.0]
    strided = lax.conv_general_dilated(jnp.ones((1, 1, 6)), jnp.ones((1, 1, 3)), (2,), "SAME")
    assert strided.ravel().tolist() == [3.0, 3.0, 2.0]  # 3 windows need 1 more cell: (0, 1)


def test_reduce_window_pads_with_the_init_value() -> None:
    """reduce_window pads with init_value: -inf for a max (PyTorch's max pool ignores the padding) and 0 for a
    sum — a sum divided by the taps is count_include_pad=True; flax.linen.avg_pool's default."""
    x = jnp.arange(1.0, 5.0).reshape(1, 1, 4)
    mx = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 3), (1, 1, 1), ((0, 0), (0, 0), (1, 1)))
    assert mx.ravel().tolist() == [2.0, 3.0, 4.0, 4.0]
    mean = lax.reduce_window(x, 0.0, lax.add, (1, 1, 3), (1, 1, 1), ((0, 0), (0, 0), (1, 1))) / 3
    include = Layer("avg_pool1d", kernel_size=3, stride=1, padding=1)
    np.testing.assert_allclose(mean, apply(include.bind((1, 1, 4)), np.asarray(x)))
    assert not np.allclose(mean, apply(include.replace(count_include_pad=False).bind((1, 1, 4)), np.asarray(x)))


def test_negative_padding_crops() -> None:
    """Negative (low, high) pairs crop the input in conv_general_dilated and reduce_window alike."""
    assert lax.conv_general_dilated(X4, jnp.ones((1, 1, 1)), (1,), ((-1, 0),)).ravel().tolist() == [2.0, 3.0, 4.0]
    got = lax.reduce_window(X4, -jnp.inf, lax.max, (1, 1, 2), (1, 1, 1), ((0, 0), (0, 0), (0, -1)))
    assert got.ravel().tolist() == [2.0, 3.0]


def test_every_padding_mode_runs_through_jnp_pad() -> None:
    for mode, (before, after) in itertools.product(("reflect", "replicate", "circular"), [(2, 1), (-1, 2), (1, -1)]):
        layer = Layer("conv1d", 1, 2, 3, padding=[(before, after)], padding_mode=mode)
        bound = layer.bind((1, 1, 6))
        x, w, b = random_arrays(bound)
        emitted = adapter.emit(layer, bound.input_shape)
        assert any(s.startswith("jnp.pad(") for s in emitted.steps)
        _close(run(adapter, bound, x, w, b), apply(bound, x, w, b))


def test_xla_swap_abort_is_predicted_and_avoided() -> None:
    """XLA aborts the process on lhs_dilation 2 with a 2-tap, unpadded axis beside a kernel larger than
    its input (docs/pitfalls.md#xla-conv-swap-abort): the rule predicts exactly which of these compile
    (each in a process of its own), and the JAX translation of every one computes the reference."""
    import subprocess
    import sys

    from convarith.rules.jax import xla_swap_aborts

    cases = [
        ((3, 2), (3, 2), ((2, 2), (1, 1)), (2, 4)),  # aborts
        ((2, 3), (2, 3), ((1, 1), (2, 2)), (4, 2)),  # aborts (axes swapped)
        ((3, 2), (3, 2), ((2, 2), (1, 1)), (3, 4)),  # the kernel fits the input: compiles
        ((3, 2), (3, 2), ((2, 2), (1, 1)), (2, 2)),  # the 2-tap axis has 2 cells: compiles
        ((3, 2), (3, 2), ((2, 2), (0, 0)), (2, 4)),  # padding left on the 2-tap axis: compiles
    ]
    for kernel, stride, padding, spatial in cases:
        layer = Layer("conv_transpose2d", 1, 1, kernel_size=kernel, stride=stride, padding=padding, bias=False)
        shape = (1, 1, *spatial)
        direct = [(k - 1 - b, k - 1 - a) for k, (b, a) in zip(kernel, explicit(layer, shape).pads, strict=True)]
        raw = (
            "import numpy as np; from jax import lax; "
            f"lax.conv_general_dilated(np.ones({shape}), np.ones((1, 1, *{kernel})), (1, 1), {direct}, "
            f"lhs_dilation={stride})"
        )
        code = subprocess.run([sys.executable, "-c", raw], capture_output=True, timeout=300).returncode
        assert (code == -6) == xla_swap_aborts(layer, shape), (kernel, padding, spatial, code)
        assert (code == -6) == any(f.code == "needs-workaround" for f in check(layer, shape, framework="jax"))
        bound = layer.bind(shape)
        x, w, _ = random_arrays(bound)
        _close(run(adapter, bound, x, w), apply(bound, x, w))
