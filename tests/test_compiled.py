"""The depthwise route compiled by Numba (``convarith.ops.compiled``) and its NumPy fallback, against PyTorch.

Both paths of :func:`convarith.ops.routes.conv_depthwise` run on random depthwise layers (1–3 d,
strides, dilations, pads with crops, every padding mode, channel multipliers): float64 equals
``F.conv{1,2,3}d`` to 1e-12 relative, float32 to 1e-5. The compiled path is forced (whatever the
compile policy says), with each of the kernel's three ways to cover a plane, with chunks of a few
cells (so that a run crosses chunk boundaries) and with the work shared out over two threads; the
fallback is forced by making Numba look missing. Also: threads follow ``OMP_NUM_THREADS``; when the
kernel compiles (never for a one-shot small layer); that ``import convarith`` and the CLI never
import Numba; that a broken Numba, an unwritable or a failing disk cache never fail a call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convarith import BoundLayer, Layer
from convarith.ops import compiled, routes
from convarith.ops.reference import conv
from oracle_torch import Unsupported, run_torch
from strategies import depthwise_layers as any_depthwise_layers

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
BENCH = Layer("conv2d", 256, 256, kernel_size=3, padding=1, groups=256).bind((4, 256, 14, 14))
"""The benchmark's layer (``benchmarks/operators.py --cases depthwise``)."""
needs_numba = pytest.mark.skipif(not compiled.available(), reason="the 'fast' extra (numba) is not installed")


def depthwise_layers() -> st.SearchStrategy[BoundLayer]:
    """1–4 groups, up to 12 cells an axis (6 in 3-d), batch 1–2."""
    return any_depthwise_layers(max_groups=4, max_size=(12, 6), batches=(1, 2))


def arrays(bound: BoundLayer, seed: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    assert bound.weight_shape is not None and bound.batch is not None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(bound.input_shape).astype(dtype)
    return x, rng.standard_normal(bound.weight_shape).astype(dtype)


def torch_of(bound: BoundLayer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """PyTorch's answer in float64 (the reference for both dtypes)."""
    xt, wt = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64))
    try:
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            return np.asarray(run_torch(bound, xt, wt).numpy())
    except (Unsupported, RuntimeError):  # beyond what PyTorch runs (reflect wider than the input)
        assume(False)
        raise


def assert_close(got: np.ndarray, expected: np.ndarray, dtype: Any) -> None:
    assert got.shape == expected.shape
    assert got.dtype == dtype
    error = float(np.abs(got - expected).max(initial=0.0))
    assert error <= TOLERANCE[dtype] * float(np.abs(expected).max(initial=0.0)), (error, np.abs(expected).max())


@contextmanager
def compiled_path(
    explicit: int | None = None, chunk: int | None = None, threads: int | None = None
) -> Iterator[mock.MagicMock]:
    """Force the compiled kernel (``explicit``: one of its :func:`compiled.plans`; ``chunk``: cells per
    chunk; ``threads``: the pin, the work shared out however small); yields the spy on
    :func:`compiled.depthwise`."""
    patches = [
        mock.patch.object(compiled, "wanted", lambda numpy_ns: True),
        mock.patch.object(compiled, "depthwise", wraps=compiled.depthwise),
    ]
    if explicit is not None:
        patches.append(mock.patch.object(compiled, "plan", lambda p, o, s, taps: compiled.plans(p, o, s)[explicit]))
    if chunk is not None:
        patches.append(mock.patch.object(compiled, "CHUNK", chunk))
    if threads is not None:
        patches.append(mock.patch.object(compiled, "PARALLEL_NS", 0.0))
        patches.append(mock.patch.object(compiled, "fft_workers", lambda: threads))

    compiled._geometry.cache_clear()  # laid out with the plan and chunk patched in, and forgotten after
    for patch in patches:
        patch.start()
    try:
        yield compiled.depthwise
    finally:
        for patch in reversed(patches):
            patch.stop()
        compiled._geometry.cache_clear()


@contextmanager
def numpy_path() -> Iterator[mock.MagicMock]:
    """Numba looks missing: the NumPy tap loop runs; yields the spy on :func:`compiled.depthwise`."""
    with (
        mock.patch.object(compiled, "available", lambda: False),
        mock.patch.object(compiled, "depthwise", wraps=compiled.depthwise) as spy,
    ):
        yield spy


# -- both paths against PyTorch ----------------------------------------------------------------------


@needs_numba
@settings(max_examples=120)
@given(
    depthwise_layers(),
    st.sampled_from([0, 1, 2]),
    st.sampled_from([None, 1, 5]),
    st.sampled_from([1, 2]),
    st.integers(0, 2**32 - 1),
)
def test_compiled_route_equals_pytorch(
    bound: BoundLayer, explicit: int, chunk: int | None, threads: int, seed: int
) -> None:
    x, w = arrays(bound, seed, np.float64)
    expected = torch_of(bound, x, w)
    with compiled_path(explicit, chunk, threads) as spy:
        got = routes.conv_depthwise(x, w, bound)
    assert spy.call_count == 1
    assert_close(got, expected, np.float64)


@needs_numba
@settings(max_examples=40)
@given(depthwise_layers(), st.integers(0, 2**32 - 1))
def test_compiled_route_in_float32(bound: BoundLayer, seed: int) -> None:
    x, w = arrays(bound, seed, np.float32)
    expected = torch_of(bound, x, w).astype(np.float32)
    with compiled_path() as spy:
        got = routes.conv_depthwise(x, w, bound)
    assert spy.call_count == 1
    assert_close(got, expected, np.float32)


@settings(max_examples=60)
@given(depthwise_layers(), st.sampled_from([np.float64, np.float32]), st.integers(0, 2**32 - 1))
def test_numpy_fallback_equals_pytorch(bound: BoundLayer, dtype: Any, seed: int) -> None:
    x, w = arrays(bound, seed, dtype)
    expected = torch_of(bound, x, w).astype(dtype)
    with numpy_path() as spy:
        got = routes.conv_depthwise(x, w, bound)
    assert spy.call_count == 0
    assert_close(got, expected, dtype)


@needs_numba
@pytest.mark.parametrize("path", [compiled_path, numpy_path])
def test_both_paths_through_the_public_op(path: Any) -> None:
    """``conv(method="auto")`` on the benchmark's layer picks the taps route, and each path equals PyTorch."""
    x, w = arrays(BENCH, 0, np.float64)
    with path() as spy:
        assert routes.choose(BENCH) == "taps"
        got = conv(x, w, layer=BENCH)
    assert spy.call_count == (1 if path is compiled_path else 0)
    assert_close(got, torch_of(BENCH, x, w), np.float64)


def test_the_kernel_runs_as_plain_python() -> None:
    """The loop Numba compiles is Python: uncompiled, it gives the same numbers (slowly; no Numba needed)."""
    layer = Layer(
        "conv2d", 2, 4, kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1), padding=[(1, -1), (2, 0)], groups=2
    )
    bound = layer.bind((1, 2, 6, 7))
    x, w = arrays(bound, 1, np.float64)
    with (
        compiled_path(),
        mock.patch.object(compiled, "_kernels", lambda: (compiled._depthwise, compiled._depthwise_parallel, False)),
        mock.patch.dict(compiled.compile_seconds, clear=True),
    ):
        got = routes.conv_depthwise(x, w, bound)
    assert_close(got, torch_of(bound, x, w), np.float64)


@needs_numba
def test_byte_order_read_only_arrays_and_threads() -> None:
    """Big-endian and read-only arrays, and four threads at once on one layer (the kernel releases the GIL)."""
    bound = Layer("conv1d", 3, 6, kernel_size=5, padding=2, dilation=2, groups=3).bind((2, 3, 40))
    x, w = arrays(bound, 2, np.float64)
    expected = torch_of(bound, x, w)
    with compiled_path() as spy:
        big = routes.conv_depthwise(x.astype(">f8"), w.astype(">f8"), bound)
        assert big.dtype == np.dtype(">f8")
        assert_close(big.astype(np.float64), expected, np.float64)
        frozen_x, frozen_w = x.copy(), w.copy()
        frozen_x.flags.writeable = frozen_w.flags.writeable = False
        assert_close(routes.conv_depthwise(frozen_x, frozen_w, bound), expected, np.float64)
        results: list[np.ndarray] = []
        threads = [
            threading.Thread(target=lambda: results.append(routes.conv_depthwise(x, w, bound))) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert spy.call_count == 6 and len(results) == 4
    for result in results:
        assert_close(result, expected, np.float64)


@needs_numba
@pytest.mark.parametrize("pin", ["1", "2"])
def test_threads_follow_the_pin(pin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's layer is shared out over ``OMP_NUM_THREADS`` threads (at most Numba's pool)."""
    monkeypatch.setenv("OMP_NUM_THREADS", pin)
    x, w = arrays(BENCH, 5, np.float64)
    with compiled_path(), mock.patch.object(compiled, "_call", wraps=compiled._call) as call:
        got = routes.conv_depthwise(x, w, BENCH)
    assert call.call_args.args[2] == min(int(pin), compiled._threads())
    assert_close(got, torch_of(BENCH, x, w), np.float64)


# -- when the kernel compiles ------------------------------------------------------------------------


@contextmanager
def fresh_process_state() -> Iterator[None]:
    """The compile policy as in a new process: nothing compiled, no NumPy time spent."""
    with mock.patch.dict(compiled._STATE, {"numpy_ns": 0.0}), mock.patch.dict(compiled.compile_seconds, clear=True):
        yield


def test_a_one_shot_tiny_layer_never_compiles_a_large_one_does() -> None:
    tiny = Layer("conv2d", 8, 8, kernel_size=3, padding=1, groups=8).bind((1, 8, 16, 16))
    with fresh_process_state(), mock.patch.object(compiled, "available", lambda: True):
        small_ns = compiled.numpy_cost(tiny, 1)
        assert not compiled.wanted(small_ns)
        assert routes.costs(tiny)["taps"] == small_ns  # the cost model weighs the NumPy loop there
        big_ns = compiled.numpy_cost(BENCH, 4)
        assert big_ns >= compiled.EAGER_NS and compiled.wanted(big_ns)
        assert routes.costs(BENCH)["taps"] == compiled.cost(BENCH, 4) < big_ns / 2
        compiled.spent(compiled.PAYBACK_NS - small_ns / 2)  # many small calls: the compile now pays
        assert compiled.wanted(small_ns)
    with fresh_process_state(), mock.patch.object(compiled, "available", lambda: False):
        assert not compiled.wanted(big_ns)
        assert routes.costs(BENCH)["taps"] == big_ns


def test_the_cost_model_ranks_the_kernels_ways_and_routes() -> None:
    """Stride 1: one run over the plane; stride 2 on a large plane: one run per output row. The compiled
    estimate of the benchmark's layer is within 2× of the ~0.3 ms measured (NumPy loop: ~1.9 ms)."""
    assert compiled.plan((1, 16, 16), (1, 14, 14), (1, 1, 1), 9).explicit == 0
    assert compiled.plan((1, 113, 113), (1, 56, 56), (1, 2, 2), 9).explicit == 2
    assert compiled.plan((18, 18, 18), (8, 16, 16), (2, 1, 1), 27).explicit == 1
    assert 150_000 < compiled.cost(BENCH, 4) < 600_000


@needs_numba
def test_a_broken_numba_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w = arrays(BENCH, 3, np.float64)
    with mock.patch.dict(compiled._STATE, {"kernels": None, "installed": True}):
        monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
        with compiled_path():
            got = routes.conv_depthwise(x, w, BENCH)
        assert not compiled.available()
    assert_close(got, torch_of(BENCH, x, w), np.float64)


@needs_numba
def test_a_failing_disk_cache_compiles_again_without_it() -> None:
    def from_the_cache(*args: Any) -> None:
        raise EOFError("Ran out of input")  # as a half-written index file does

    found = compiled._kernels()
    assert found is not None
    x, w = arrays(BENCH, 4, np.float64)
    with (
        mock.patch.dict(compiled._STATE, {"kernels": (from_the_cache, from_the_cache), "cached": True}),
        mock.patch.dict(compiled.compile_seconds, clear=True),
        mock.patch.object(compiled, "_cache_error", lambda error: True),
        mock.patch.object(compiled, "_compile", return_value=found[:2]) as compile,
        compiled_path(),
    ):
        got = routes.conv_depthwise(x, w, BENCH)
        compile.assert_called_once_with(cache=False)
        assert compiled._STATE["cached"] is False and compiled._STATE["kernels"] == found[:2]
    assert_close(got, torch_of(BENCH, x, w), np.float64)
    with (
        mock.patch.dict(compiled._STATE, {"kernels": (from_the_cache, from_the_cache), "cached": True}),
        mock.patch.dict(compiled.compile_seconds, clear=True),
        compiled_path(),
        pytest.raises(EOFError),  # an error of the kernel itself is not swallowed
    ):
        routes.conv_depthwise(x, w, BENCH)


# -- Numba stays out of the core, and out of sight ---------------------------------------------------------


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )


@pytest.mark.parametrize(
    "code",
    [
        "import convarith, convarith.ops.reference, convarith.ops.routes, convarith.ops.compiled",
        "from convarith.cli import main\n"
        "sys.argv = ['convarith', 'shape', 'conv2d', '-i', '1x8x16x16', '-k', '3', '--groups', '8']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code",
        # a one-shot depthwise call on a small layer, and the cost model of a large one
        "import numpy as np\nfrom convarith import Layer\nfrom convarith.ops import reference, routes\n"
        "bound = Layer('conv2d', 8, 8, kernel_size=3, padding=1, groups=8).bind((1, 8, 16, 16))\n"
        "reference.conv(np.ones((1, 8, 16, 16)), np.ones((8, 1, 3, 3)), layer=bound, method='taps')\n"
        "routes.choose(Layer('conv2d', 256, 256, kernel_size=3, padding=1, groups=256).bind((4, 256, 14, 14)))",
    ],
)
def test_convarith_and_the_cli_do_not_import_numba(code: str) -> None:
    proc = _python(f"import json, sys\n{code}\nprint(json.dumps('numba' in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) is False


@needs_numba
def test_no_writable_cache_compiles_in_memory_silently() -> None:
    """Numba refuses ``cache=True`` when no cache locator applies (here: only the IPython one, which
    applies to notebook cells); the kernel then compiles in memory — no error, no warning (``-W error``)."""
    code = (
        "import numpy as np\nfrom convarith import Layer\nfrom convarith.ops import compiled, reference\n"
        "bound = Layer('conv1d', 2, 2, kernel_size=3, groups=2).bind((1, 2, 9))\n"
        "compiled.wanted = lambda numpy_ns: True\n"
        "out = reference.conv(np.ones((1, 2, 9)), np.ones((2, 1, 3)), layer=bound, method='taps')\n"
        "assert (out == 3).all(), out\n"
        "print(compiled._STATE['cached'], bool(compiled.compile_seconds))"
    )
    proc = _python(code, NUMBA_CACHE_LOCATOR_CLASSES="_IPythonCacheLocator")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
    assert proc.stderr == ""
