"""The differential sweep: random layers, every installed framework, compared with convarith.

:func:`verify` draws random layers and inputs with hypothesis (:mod:`convarith.cases`: N-d, every
parameter), and for each case asks every runner (PyTorch, JAX, Keras on each backend, ONNX on
onnxruntime and on the reference evaluator, TensorFlow) to run it through its adapter on random
inputs and weights. Each answer is compared with convarith's reference ops on the output shape and
the values (float64 where the framework computes in it, float32 with :func:`~.base.tolerance`
otherwise), and the layer read back from what the framework built must be the same layer (the
round trip torch → X → torch). A refusal by the framework's rules is counted as such; that the
rules refuse exactly what each framework refuses is proven by the adapters' own tests.

Every runner works in a worker process of its own (:mod:`.worker`), so that the frameworks run
side by side and the calling process imports none of them. A mismatch is shrunk — each parameter
made simpler while the mismatch stays — and given as a runnable reproducer. A mismatch that a
runner's documented bug explains (:class:`~.base.KnownBug`) is listed as such, not hidden.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConvArithError
from ..layer import KINDS, Layer
from . import RUNNERS, adapter, installed

__all__ = ["Mismatch", "Outcome", "Report", "plan", "run_case", "verify"]

Status = str  # "agree", "refused", "mismatch", "known-bug"


# -- one case in one runner (runs inside the runner's worker) ----------------------------------


def run_case(framework: str, layer_data: dict[str, object], shape: Sequence[int], seed: int) -> dict[str, object]:
    """Run one case in ``framework``'s adapter and compare it with convarith: a plain dict.

    Called by name inside a worker, so that it takes and returns only picklable values.

    >>> out = run_case("torch", Layer("conv1d", 1, 2, kernel_size=3, stride=2).to_dict(), (1, 1, 9), 0)
    >>> out["status"], out["shape"]
    ('agree', [1, 2, 4])
    """
    started = time.perf_counter()
    answer = _run_case(framework, Layer.from_dict(layer_data), tuple(shape), seed)
    return {**answer, "seconds": time.perf_counter() - started}


def _run_case(framework: str, layer: Layer, shape: tuple[int, ...], seed: int) -> dict[str, object]:
    from ..ops.reference import apply
    from .base import build, max_difference, random_arrays, tolerance

    bound = layer.bind(shape)
    chosen = adapter(framework)
    refused = [f for f in chosen.findings(layer, bound.input_shape) if f.severity == "error"]
    verdict = _native_verdict(chosen, layer, bound.input_shape, refused)
    if verdict is not None:
        return verdict
    if refused:
        return {"status": "refused", "detail": refused[0].message}
    x, w, b = random_arrays(bound, seed)
    want = apply(bound, x, w, b)
    try:
        emitted = chosen.emit(layer, bound.input_shape)
        made = build(emitted, w, b)
        got = np.asarray(chosen.apply(emitted, made, x), dtype=np.float64)
    except ConvArithError as err:
        return {"status": "mismatch", "detail": f"the adapter refused what its rules accept: {err}"}
    except Exception as err:  # the framework failed on a layer its rules accept
        return {"status": "mismatch", "detail": f"{type(err).__name__}: {_first_line(err)}"}
    out: dict[str, object] = {"shape": list(got.shape), "dtype": emitted.dtype}
    if got.shape != want.shape:
        return {**out, "status": "mismatch", "detail": f"output shape {got.shape}, convarith {want.shape}"}
    taps = math.prod(layer.kernel_size) * max(1, bound.in_channels // layer.groups)
    diff = max_difference(got, want)
    allowed = tolerance(emitted.dtype, want, taps)
    out["max_difference"] = diff
    if not diff <= allowed:
        return {**out, "status": "mismatch", "detail": f"values differ by {diff:.3g} (tolerance {allowed:.2g})"}
    # the round trip: what the framework built, read back as a layer, computes the same values
    back = read_back(chosen, emitted, made, layer)
    if back is not None:
        try:
            again = apply(back.bind(bound.input_shape), x, w, b if back.bias else None)
        except ConvArithError as err:
            return {**out, "status": "mismatch", "detail": f"reads back as {back!r}, which refuses the input: {err}"}
        if not max_difference(again, want) <= allowed:
            return {**out, "status": "mismatch", "detail": f"reads back as {back!r}, which computes other values"}
    return {**out, "status": "agree", "round_trip": back is not None}


def _native_verdict(chosen: Any, layer: Layer, shape: tuple[int, ...], refused: list[Any]) -> dict[str, object] | None:
    """Accept/refuse against the framework itself where the adapter can call it as written
    (``native_refusal``): a mismatch when the rules and the framework disagree, else ``None``."""
    native = getattr(chosen, "native_refusal", None)
    if native is None:
        return None
    try:
        said = native(layer, shape)
    except ConvArithError:
        return None  # the framework's keywords cannot write this layer: nothing to compare
    except Exception as err:  # a crash rather than a refusal: report it
        return {"status": "mismatch", "detail": f"{chosen.LABEL} crashed: {type(err).__name__}: {_first_line(err)}"}
    if refused and said is None:
        return {
            "status": "mismatch",
            "detail": f"the rules refuse ({refused[0].message}) but {chosen.LABEL} computes it",
        }
    if not refused and said is not None:
        return {"status": "mismatch", "detail": f"the rules accept but {chosen.LABEL} refuses: {said}"}
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""


def read_back(chosen: Any, emitted: Any, made: Any, layer: Layer) -> Layer | None:
    """The layer the framework's object says it is, else the layer its one call says (with ``layer``'s
    bias, which a call adds apart); ``None`` where the translation is several pieces or reads neither."""
    if len(emitted.steps) != 1:
        return None  # a pad, a crop or a split around the layer: the pieces are checked on values
    try:
        return chosen.from_native(made)  # type: ignore[no-any-return]
    except ConvArithError:
        pass
    from .syntax import parse_source

    try:
        parsed, _ = chosen.parse_call(parse_source(emitted.steps[0]), emitted.steps[0])
    except ConvArithError:
        return None
    return parsed.replace(bias=layer.bias) if parsed.weighted else parsed  # type: ignore[no-any-return]


# -- the sweep -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One runner's answer for one case."""

    runner: str
    op: str
    status: Status
    detail: str = ""
    known_bug: str = ""


@dataclass(frozen=True)
class Mismatch:
    """An unexplained (or known-bug) disagreement, shrunk to a small case, with its reproducer."""

    runner: str
    layer: Layer
    input_shape: tuple[int, ...]
    seed: int
    detail: str
    known_bug: str = ""

    @property
    def reproducer(self) -> str:
        """Python that shows the disagreement (with the runner's environment set)."""
        runner = RUNNERS[self.runner]
        env = "".join(f"os.environ[{k!r}] = {v!r}\n" for k, v in runner.env)
        return (
            "import os\n"
            f"{env}"
            "from convarith import Layer\n"
            "from convarith.frameworks.verify import run_case\n"
            f"print(run_case({runner.adapter!r}, {self.layer!r}.to_dict(), {self.input_shape!r}, {self.seed}))\n"
        )


@dataclass
class Report:
    """The sweep's counts per runner and op, versions, mismatches and known bugs."""

    runners: tuple[str, ...]
    versions: dict[str, str]
    cases: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    known: list[Mismatch] = field(default_factory=list)
    elapsed: float = 0.0

    def add(self, outcome: Outcome) -> None:
        key = (outcome.runner, outcome.op, outcome.status)
        self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def passed(self) -> bool:
        """No mismatch that a documented framework bug does not explain."""
        return not self.mismatches

    def count(self, runner: str, op: str | None = None, status: str | None = None) -> int:
        return sum(
            n
            for (r, o, s), n in self.counts.items()
            if r == runner and (op is None or o == op) and (status is None or s == status)
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "cases": self.cases,
            "elapsed_seconds": round(self.elapsed, 2),
            "passed": self.passed,
            "runners": {
                r: {
                    "label": RUNNERS[r].label,
                    "version": self.versions.get(r, ""),
                    "seconds": round(self.seconds.get(r, 0.0), 2),
                    "ops": {
                        op: {s: self.count(r, op, s) for s in ("agree", "refused", "mismatch", "known-bug")}
                        for op in KINDS
                        if self.count(r, op)
                    },
                }
                for r in self.runners
            },
            "mismatches": [_mismatch_dict(m) for m in self.mismatches],
            "known_bugs": [_mismatch_dict(m) for m in self.known],
        }


def _mismatch_dict(m: Mismatch) -> dict[str, object]:
    return {
        "runner": m.runner,
        "layer": m.layer.to_dict(),
        "input_shape": list(m.input_shape),
        "seed": m.seed,
        "detail": m.detail,
        "known_bug": m.known_bug,
        "reproducer": m.reproducer,
    }


def _runners(frameworks: Sequence[str] | None) -> tuple[str, ...]:
    if frameworks is None:
        return tuple(name for name, r in RUNNERS.items() if installed(r.adapter))
    chosen = tuple(dict.fromkeys(frameworks))
    for name in chosen:
        if name not in RUNNERS:
            raise ConvArithError("frameworks", f"must name runners among {', '.join(RUNNERS)}", repr(name))
        if not installed(RUNNERS[name].adapter):
            raise ConvArithError("frameworks", f"{name} is not installed", repr(name))
    if not chosen:
        raise ConvArithError("frameworks", "must name at least one runner", "''")
    return chosen


def _known_bug(runner: str, layer: Layer, shape: Sequence[int]) -> str:
    """The documented bug of ``runner`` that this case hits, or ``""``."""
    name = RUNNERS[runner].adapter
    bugs = getattr(adapter(name), "KNOWN_BUGS", ())
    bound = layer.bind(tuple(shape))
    for bug in bugs:
        if bug.runner == runner and bug.hits(bound):
            return f"{bug.name}: {bug.what}" + (f" ({bug.thread})" if bug.thread else "")
    return ""


# the runners share the cores: one thread each (unless the caller's environment says otherwise)
_ONE_THREAD = {
    name: os.environ.get(name, "1")
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    )
}


class _Pool:
    """One worker per runner; a case goes to all of them at once."""

    def __init__(self, runners: Sequence[str]) -> None:
        self.workers = {r: self._worker(r) for r in runners}

    @staticmethod
    def _worker(runner: str) -> Any:
        from .worker import worker_for  # a new process when the last one died

        return worker_for({**_ONE_THREAD, **dict(RUNNERS[runner].env), "CONVARITH_RUNNER": runner})

    def run(self, runners: Sequence[str], layer: Layer, shape: Sequence[int], seed: int) -> dict[str, dict[str, Any]]:
        data = layer.to_dict()
        out: dict[str, dict[str, Any]] = {}
        started = []
        for r in runners:
            try:
                self.workers[r].start(__name__, "run_case", RUNNERS[r].adapter, data, tuple(shape), seed)
                started.append(r)
            except Exception as err:
                out[r] = {"status": "mismatch", "detail": f"{type(err).__name__}: {_first_line(err)}"}
        for r in started:
            try:
                out[r] = self.workers[r].finish()
            except Exception as err:  # the worker itself failed (a framework that aborts the process)
                out[r] = {"status": "mismatch", "detail": f"{type(err).__name__}: {_first_line(err)}"}
        for r in runners:
            if not self.workers[r].alive():
                self.workers[r] = self._worker(r)
        return {r: out[r] for r in runners}

    def versions(self) -> dict[str, str]:
        return {r: str(w.call(f"{__package__}.{RUNNERS[r].adapter}", "version")) for r, w in self.workers.items()}


def _simpler(layer: Layer, shape: tuple[int, ...]) -> list[tuple[Layer, tuple[int, ...]]]:
    """Candidates one step simpler than the case (fewer channels, smaller sizes, plainer parameters)."""
    n = layer.ndim
    out: list[tuple[Layer, tuple[int, ...]]] = []

    def tryit(**changes: Any) -> None:
        try:
            candidate = layer.replace(**changes)
            candidate.bind(shape)
        except ConvArithError:
            return
        out.append((candidate, shape))

    for name, simple in (("stride", 1), ("dilation", 1), ("kernel_size", 1), ("output_padding", 0)):
        values = getattr(layer, name)
        for axis in range(n):
            if values[axis] > simple:
                smaller = list(values)
                smaller[axis] = simple if name != "kernel_size" else values[axis] - 1
                tryit(**{name: tuple(smaller)})
    if layer.is_resolved:
        for axis, (before, after) in enumerate(layer.pads):
            for pair in ((0, 0), (min(before, after), min(before, after)), (before, before), (after, after)):
                if pair != (before, after):
                    pads = list(layer.pads)
                    pads[axis] = pair
                    tryit(padding=tuple(pads))
    elif layer.policy not in ("valid", None):
        tryit(padding=0)
    if layer.groups > 1:
        tryit(groups=1)
    if layer.weighted and layer.in_channels and layer.in_channels > layer.groups:
        tryit(in_channels=layer.groups)
    if layer.weighted and layer.out_channels and layer.out_channels > layer.groups:
        tryit(out_channels=layer.groups)
    for flag, plain in (("ceil_mode", False), ("count_include_pad", True), ("divisor_override", None)):
        if layer.pooling and getattr(layer, flag) != plain:
            tryit(**{flag: plain})
    if layer.padding_mode != "zeros":
        tryit(padding_mode="zeros")
    lead = len(shape) - n
    for axis in range(len(shape)):
        if shape[axis] > 1 and (axis >= lead or axis == 0):
            smaller = list(shape)
            smaller[axis] -= 1
            try:
                layer.bind(tuple(smaller))
            except ConvArithError:
                continue
            out.append((layer, tuple(smaller)))
    return out


def _shrink(pool: _Pool, runner: str, layer: Layer, shape: tuple[int, ...], seed: int, budget: int = 200) -> Mismatch:
    """Make the case simpler while the runner still disagrees (greedy, at most ``budget`` runs)."""
    detail = pool.run([runner], layer, shape, seed)[runner].get("detail", "")
    runs = 0
    improved = True
    while improved and runs < budget:
        improved = False
        for candidate, candidate_shape in _simpler(layer, shape):
            runs += 1
            answer = pool.run([runner], candidate, candidate_shape, seed)[runner]
            if answer["status"] == "mismatch":
                layer, shape, detail = candidate, candidate_shape, str(answer.get("detail", ""))
                improved = True
                break
            if runs >= budget:
                break
    return Mismatch(runner, layer, shape, seed, str(detail))


def plan(
    frameworks: Sequence[str] | None, cases: int, ops: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The runners and kinds a sweep would use; its refusals, before anything starts.

    >>> plan(["torch"], 10, ["conv"])
    (('torch',), ('conv',))
    """
    if not isinstance(cases, int) or cases < 1 or cases > 1_000_000:
        raise ConvArithError("cases", "must be an integer from 1 to 1,000,000", cases)
    kinds = tuple(ops) if ops else KINDS
    for kind in kinds:
        if kind not in KINDS:
            raise ConvArithError("ops", f"must be among {', '.join(KINDS)}", repr(kind))
    return _runners(frameworks), kinds


def verify(
    frameworks: Sequence[str] | None = None,
    *,
    cases: int = 100,
    seed: int = 0,
    ops: Sequence[str] | None = None,
    on_case: Callable[[int, Report], None] | None = None,
) -> Report:
    """Run ``cases`` random layers in every runner of ``frameworks`` (default: every installed one).

    Parameters
    ----------
    frameworks
        Runner names (:data:`~convarith.frameworks.RUNNERS`): ``torch``, ``jax``, ``keras-torch``,
        ``keras-jax``, ``keras-tf``, ``onnx``, ``onnx-ref``, ``tf``.
    cases
        How many random cases (each runs in every runner).
    seed
        Seeds the drawing of the cases and of their values: the same seed, the same sweep.
    ops
        Kinds to draw (``conv``, ``conv_transpose``, ``max_pool``, ``avg_pool``); default all.
    on_case
        Called after each case with its index and the report so far (a progress bar).

    Returns
    -------
    Report
        ``passed`` is false when a runner disagrees with convarith and no documented bug explains it.
    """
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as seeded
        from hypothesis import strategies as st
    except ImportError:
        raise ConvArithError("frameworks", "verify needs hypothesis: pip install 'convarith[verify]'") from None
    from ..cases import bound_layers, layers

    chosen, kinds = plan(frameworks, cases, ops)
    pool = _Pool(chosen)
    report = Report(chosen, pool.versions())
    first: dict[tuple[str, str], tuple[Layer, tuple[int, ...], int]] = {}
    started = time.perf_counter()
    # half inside PyTorch's limits, half beyond them (what other frameworks compute)
    drawn = st.one_of(layers(kinds=kinds), layers(kinds=kinds, torch_like=False))

    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @seeded(seed)
    @given(bound_layers(drawn, forms=(2,)), st.integers(0, 2**32 - 1))
    def sweep(bound: Any, value_seed: int) -> None:
        if report.cases >= cases:
            return
        report.cases += 1
        layer, shape = bound.layer, bound.input_shape
        for runner, answer in pool.run(chosen, layer, shape, value_seed).items():
            status = str(answer["status"])
            bug = _known_bug(runner, layer, shape) if status == "mismatch" else ""
            if bug:
                status = "known-bug"
            report.add(Outcome(runner, layer.kind, status, str(answer.get("detail", "")), bug))
            report.seconds[runner] = report.seconds.get(runner, 0.0) + float(answer.get("seconds", 0.0))
            if status in ("mismatch", "known-bug"):
                first.setdefault((runner, bug), (layer, shape, value_seed))
        if on_case is not None:
            on_case(report.cases, report)

    sweep()
    report.elapsed = time.perf_counter() - started
    for (runner, bug), (layer, shape, value_seed) in first.items():
        if bug:  # listed as it was found: the bug's own test holds its minimal case
            detail = str(pool.run([runner], layer, shape, value_seed)[runner].get("detail", ""))
            report.known.append(Mismatch(runner, layer, shape, value_seed, detail, bug))
        else:
            report.mismatches.append(_shrink(pool, runner, layer, shape, value_seed))
    return report
