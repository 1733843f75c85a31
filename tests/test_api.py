"""The public API as users' tools see it: names, light imports, mypy --strict, and a fuzz of every function.

The fuzz feeds arbitrary Python values (huge and negative ints, nan/inf floats, None, strings,
bytes, nested and ragged lists, NumPy arrays of odd dtypes) into every public function of
``convarith.__all__``: each call returns or raises :class:`~convarith.ConvArithError`, within 1 s,
without a big allocation (address space capped at 1 GiB above the start, in a child process).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convarith
from convarith import ConvArithError

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MYPY = ROOT / ".venv" / "bin" / "mypy"
FRAMEWORKS = ("torch", "jax", "jaxlib", "keras", "tensorflow", "onnx", "onnxruntime")


# -- names ---------------------------------------------------------------------------------------------


def test_every_lazy_name_is_listed_and_resolves() -> None:
    lazy = set(convarith._LAZY)  # type: ignore[attr-defined]
    assert lazy <= set(convarith.__all__)
    assert lazy <= set(dir(convarith))
    assert set(convarith.__all__) <= set(dir(convarith))
    for name in convarith.__all__:
        assert getattr(convarith, name) is not None, name
    assert len(convarith.__all__) == len(set(convarith.__all__))


def test_conv_spec_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning):
        assert convarith.ConvSpec is convarith.Layer  # type: ignore[attr-defined]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [PYTHON, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import convarith",
        "import convarith; convarith.Layer('conv2d', kernel_size=3).bind((8, 8)).findings()",
        "import convarith; convarith.output_shape('conv2d', (1, 1, 8, 8), kernel_size=3)",
        "import convarith; convarith.check(convarith.Layer('conv2d', kernel_size=3), (1, 1, 8, 8))",
        "import convarith.cli",
    ],
)
def test_the_geometry_and_the_cli_import_no_framework_and_no_numpy(code: str) -> None:
    loaded = _modules_after(code)
    heavy = {m for m in loaded if m.split(".")[0] in (*FRAMEWORKS, "numpy", "scipy")}
    assert not heavy, sorted(heavy)[:10]


# -- mypy --strict on a user's script -------------------------------------------------------------------

USER_SCRIPT = """
from __future__ import annotations

import numpy as np

import convarith
from convarith import BoundLayer, ConvArithError, Finding, Layer, check, output_shape, solve

layer: Layer = Layer("conv2d", 1, 2, kernel_size=3, stride=2, padding=1)
bound: BoundLayer = layer.bind((1, 1, 6, 6))
count: int = bound.parameter_count
shape: tuple[int, ...] = output_shape("conv2d", (1, 1, 6, 6), kernel_size=3, stride=2, padding=1)
weight = np.ones((2, 1, 3, 3))
dense = convarith.conv_matrix(layer, weight, (1, 6, 6), format="dense")
csr = convarith.conv_matrix(layer, weight, (1, 6, 6), format="csr")
rows: int = dense.shape[0] + csr.shape[0]
y = convarith.conv(np.ones((1, 1, 6, 6)), weight, stride=2, padding=1)
total: float = float(y.sum())
op: convarith.ConvOperator = convarith.conv_operator(layer, weight, (1, 6, 6))
found: tuple[Finding, ...] = check(layer, (1, 1, 6, 6), framework="torch")
solutions = solve("conv2d", 6, 3)
first: Layer = solutions[0].layer
try:
    Layer("conv2d", kernel_size=0)
except ConvArithError as err:
    param: str = err.param
"""


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    env = {**os.environ, "MYPYPATH": ""}
    return subprocess.run(
        [str(MYPY), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )


@pytest.mark.skipif(not MYPY.exists(), reason="mypy is installed with the test extra")
def test_a_user_script_type_checks_with_mypy_strict(tmp_path: Path) -> None:
    result = _mypy(tmp_path, USER_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not MYPY.exists(), reason="mypy is installed with the test extra")
def test_mypy_reports_a_wrong_use(tmp_path: Path) -> None:
    wrong = USER_SCRIPT + '\nbad: Layer = Layer("conv2d", "one", kernel_size=3)\ncount2: str = bound.parameter_count\n'
    result = _mypy(tmp_path, wrong)
    assert result.returncode == 1
    assert 'Argument 2 to "Layer" has incompatible type "str"' in result.stdout
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in result.stdout


# -- fuzz: any value into every public function ----------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**20, 10**100]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -0.0, 2.5, 1e300]),
    st.text(max_size=6),
    st.sampled_from(["conv2d", "conv_transpose1d", "max_pool2d", "same", "same_tf", "valid", "csr", "dense", "torch"]),
    st.binary(max_size=4),
    st.sampled_from([np.int64(3), np.uint8(2), np.float32(1.5), np.bool_(True), np.complex64(1j)]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
    ),
    max_leaves=8,
)
arrays = st.one_of(
    st.sampled_from(
        [
            np.zeros((1, 1, 4, 4)),
            np.ones((2, 3), dtype=np.int8),
            np.array(["a", "b"]),
            np.array([1 + 2j, 3j]),
            np.zeros((0, 1, 3)),
            np.array([np.nan, np.inf]),
            np.zeros((1, 1, 3), dtype=bool),
            np.array([[1, 2], [3]], dtype=object),
            np.zeros((1, 2, 3, 4, 5)),
        ]
    ),
)
layers_or_values = st.one_of(
    values,
    arrays,
    st.sampled_from(
        [
            convarith.Layer("conv2d", 1, 2, kernel_size=3),
            convarith.Layer("conv_transpose1d", kernel_size=3, stride=2),
            convarith.Layer("max_pool2d", kernel_size=2),
            convarith.Layer("conv1d", kernel_size=3).bind((1, 1, 8)),
        ]
    ),
)

FUZZ_EXAMPLES = 60 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 15
PUBLIC = sorted(
    name
    for name in convarith.__all__
    if callable(getattr(convarith, name)) and not inspect.isclass(getattr(convarith, name))
)
CLASSES = sorted(name for name in convarith.__all__ if inspect.isclass(getattr(convarith, name)))


class _Timeout(BaseException):
    """Raised by the interval timer (a BaseException, so that no library `except Exception` swallows it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _guarded(call: Callable[[], object], seconds: float = 1.0, extra: int = 2**30) -> None:
    """Run ``call`` with a wall-clock limit and the address space capped ``extra`` bytes above the current."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + extra, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, previous)


def _fuzz_one(target: Callable[..., object], args: list[object], kwargs: dict[str, object]) -> None:
    def call() -> None:
        with contextlib.suppress(ConvArithError):
            target(*args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaking NumPy warning is a failure too
        try:
            _guarded(call)
        except _Timeout:
            raise AssertionError(f"{target.__name__}(*{args!r}, **{kwargs!r}) ran over 1 s") from None
        except MemoryError:
            raise AssertionError(f"{target.__name__}(*{args!r}, **{kwargs!r}) allocated over 1 GiB") from None


def _signature(target: Callable[..., object]) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("name", PUBLIC + CLASSES)
@settings(
    max_examples=int(os.environ.get("CONVARITH_FUZZ", "60" if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else "15"))
)
@given(data=st.data())
def test_fuzz_public_api_raises_only_conv_arith_error(name: str, data: st.DataObject) -> None:
    """Any value into any parameter: a result or ConvArithError, within 1 s and 1 GiB."""
    target = getattr(convarith, name)
    if name == "verify":
        # the sweep runs the frameworks for minutes by design: fuzz what it checks before it starts
        from convarith.frameworks.verify import plan as target
    sig = _signature(target)
    if sig is None:
        pytest.skip(f"{name} has no signature")
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for p in params:
        required = p.default is inspect.Parameter.empty
        if not required and not data.draw(st.booleans(), label=f"set {p.name}"):
            continue
        value = data.draw(layers_or_values, label=p.name)
        if p.kind is p.POSITIONAL_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and required):
            args.append(value)
        else:
            kwargs[p.name] = value
    _fuzz_one(target, args, kwargs)
