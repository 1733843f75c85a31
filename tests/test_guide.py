"""Every relationship of Dumoulin & Visin (1–15) and every worked example of its figures."""

from __future__ import annotations

import itertools

import pytest

from convarith import Layer, coverage, equivalent_direct_conv, output_shape
from convarith.geometry import RELATIONSHIPS, relationship_for
from convarith.geometry.arithmetic import conv_output_size, conv_transpose_output_size, pool_output_size


def _general(kind: str, i: int, k: int, s: int, p: int, d: int = 1, a: int = 0) -> int:
    if kind == "conv_transpose":
        return conv_transpose_output_size(i, k, s, (p, p), d, a)
    if kind == "max_pool":
        return pool_output_size(i, k, s, (p, p), d)
    return conv_output_size(i, k, s, (p, p), d)


def _cases(kind: str):  # every small configuration of one axis
    for i, k, s, p, d in itertools.product(range(1, 12), range(1, 6), range(1, 4), range(0, 5), range(1, 4)):
        if kind == "max_pool" and (2 * p > k or d > 1):
            continue
        ops = range(max(s, d)) if kind == "conv_transpose" else [0]
        for a in ops:
            try:
                spec = Layer(f"{kind}1d", kernel_size=k, stride=s, padding=p, dilation=d, output_padding=a)
                spec.output_spatial((i,))
            except ValueError:
                continue
            yield spec, i, k, s, p, d, a


@pytest.mark.parametrize("kind", ["conv", "conv_transpose", "max_pool"])
def test_the_chosen_relationship_gives_the_general_output(kind: str) -> None:
    seen = set()
    for spec, i, k, s, p, d, a in _cases(kind):
        rel = relationship_for(spec)
        if rel is None:
            assert kind == "conv_transpose" and (d > 1 or a >= s)
            continue
        seen.add(rel.number)
        assert rel.output(i=i, k=k, s=s, p=p, d=d, a=a) == spec.output_spatial((i,))[0], (rel.number, i, k, s, p, d, a)
    expected = {"conv": {1, 2, 3, 4, 5, 6, 15}, "conv_transpose": {8, 9, 10, 11, 12, 13, 14}, "max_pool": {2, 3, 6, 7}}
    assert expected[kind] <= seen


@pytest.mark.parametrize("number", range(1, 16))
def test_each_relationship_holds_on_its_whole_domain(number: int) -> None:
    """Not only where it is the most specific one: wherever its condition holds."""
    rel = RELATIONSHIPS[number]
    conditions = {
        1: lambda s, p, k, d, a, i: s == 1 and p == 0 and d == 1,
        2: lambda s, p, k, d, a, i: s == 1 and d == 1,
        3: lambda s, p, k, d, a, i: s == 1 and k % 2 == 1 and p == k // 2 and d == 1,
        4: lambda s, p, k, d, a, i: s == 1 and p == k - 1 and d == 1,
        5: lambda s, p, k, d, a, i: p == 0 and d == 1,
        6: lambda s, p, k, d, a, i: d == 1,
        7: lambda s, p, k, d, a, i: p == 0 and d == 1,
        8: lambda s, p, k, d, a, i: s == 1 and p == 0 and d == 1 and a == 0,
        9: lambda s, p, k, d, a, i: s == 1 and d == 1 and a == 0,
        10: lambda s, p, k, d, a, i: s == 1 and k % 2 == 1 and p == k // 2 and d == 1 and a == 0,
        11: lambda s, p, k, d, a, i: s == 1 and p == k - 1 and d == 1 and a == 0,
        12: lambda s, p, k, d, a, i: p == 0 and d == 1 and a == 0,
        13: lambda s, p, k, d, a, i: d == 1 and a == 0,
        14: lambda s, p, k, d, a, i: d == 1 and a < s,
        15: lambda s, p, k, d, a, i: True,
    }
    kind = "conv_transpose" if 8 <= number <= 14 else "max_pool" if number == 7 else "conv"
    checked = 0
    for _spec, i, k, s, p, d, a in _cases(kind):
        if conditions[number](s, p, k, d, a, i):
            assert rel.output(i=i, k=k, s=s, p=p, d=d, a=a) == _general(kind, i, k, s, p, d, a)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    ("figure", "i", "k", "s", "p", "o"),
    [
        ("1.1", 5, 3, 1, 0, 3),  # numeric convolution
        ("1.3", 5, 3, 2, 1, 3),  # N = 2, i = 5, k = 3, s = 2, p = 1
        ("2.1", 4, 3, 1, 0, 2),
        ("2.2", 5, 4, 1, 2, 6),
        ("2.3", 5, 3, 1, 1, 5),
        ("2.4", 5, 3, 1, 2, 7),
        ("2.5", 5, 3, 2, 0, 2),
        ("2.6", 5, 3, 2, 1, 3),
        ("2.7", 6, 3, 2, 1, 3),
    ],
)
def test_convolution_figures(figure: str, i: int, k: int, s: int, p: int, o: int) -> None:
    assert output_shape("conv2d", (1, 1, i, i), kernel_size=k, stride=s, padding=p) == (1, 1, o, o)


def test_pooling_figures() -> None:
    # Figures 1.5 / 1.6: 3×3 pooling with unit strides over a 5×5 input.
    assert output_shape("max_pool2d", (1, 1, 5, 5), kernel_size=3, stride=1) == (1, 1, 3, 3)
    assert output_shape("avg_pool2d", (1, 1, 5, 5), kernel_size=3, stride=1) == (1, 1, 3, 3)


def test_figure_2_7_leaves_the_last_padded_row_unread() -> None:
    cov = coverage(Layer("conv2d", kernel_size=3, stride=2, padding=1), (6, 6))
    assert all(c.unread_input == () and c.unread_pad == (0, 1) for c in cov)


@pytest.mark.parametrize(
    ("figure", "i", "k", "s", "p", "i_prime", "stretched", "p_prime", "a", "o_prime"),
    [
        ("4.1", 4, 3, 1, 0, 2, 2, 2, 0, 4),
        ("4.2", 5, 4, 1, 2, 6, 6, 1, 0, 5),
        ("4.3", 5, 3, 1, 1, 5, 5, 1, 0, 5),
        ("4.4", 5, 3, 1, 2, 7, 7, 0, 0, 5),
        ("4.5", 5, 3, 2, 0, 2, 3, 2, 0, 5),
        ("4.6", 5, 3, 2, 1, 3, 5, 1, 0, 5),
        ("4.7", 6, 3, 2, 1, 3, 5, 1, 1, 6),
    ],
)
def test_transposed_figures(
    figure: str, i: int, k: int, s: int, p: int, i_prime: int, stretched: int, p_prime: int, a: int, o_prime: int
) -> None:
    conv = Layer("conv2d", kernel_size=k, stride=s, padding=p)
    assert conv.output_spatial((i, i)) == (i_prime, i_prime)
    transposed = Layer("conv_transpose2d", kernel_size=k, stride=s, padding=p, output_padding=a)
    assert transposed.output_spatial((i_prime, i_prime)) == (o_prime, o_prime) == (i, i)
    for eq in equivalent_direct_conv(transposed, (i_prime, i_prime)):
        assert (eq.stretched, eq.pad, eq.output_padding, eq.output) == (stretched, (p_prime, p_prime + a), a, o_prime)
    assert relationship_for(transposed) is not None


def test_dilation_figure_5_1() -> None:
    spec = Layer("conv2d", kernel_size=3, dilation=2)
    assert spec.output_spatial((7, 7)) == (3, 3)
    assert relationship_for(spec).number == 15  # type: ignore[union-attr]


@pytest.mark.parametrize("number", range(8, 15))
def test_the_guide_p_prime_matches_the_equivalent_direct_conv(number: int) -> None:
    rel = RELATIONSHIPS[number]
    for spec, i, k, s, p, _d, a in _cases("conv_transpose"):
        if relationship_for(spec) is not rel:
            continue
        (eq,) = equivalent_direct_conv(spec, (i,))
        expected = {"p′ = k − 1": k - 1, "p′ = k − p − 1": k - p - 1, "p′ = p": p, "p′ = 0": 0}
        stated = next(v for text, v in expected.items() if rel.direct_padding.startswith(text))
        assert eq.pad == (stated, stated + a)
        assert eq.stretched == (i - 1) * s + 1
