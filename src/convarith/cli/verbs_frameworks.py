"""Verbs across frameworks: ``translate``, ``check`` and ``verify``.

Each reads a layer written in any framework's syntax (parsed with ``ast``, never evaluated) and
imports a framework only to build and run it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConvArithError
from ..layer import as_choice
from .errors import guarded
from .options import JsonOpt, input_shape

if TYPE_CHECKING:
    from rich.console import Console

    from ..frameworks.translate import Check, Translation
    from ..layer import Layer

__all__ = ["check", "translate", "verify"]

_TARGETS = ("torch", "keras", "jax", "onnx", "tf")

LayerArg = Annotated[
    str,
    typer.Argument(
        metavar="LAYER",
        help="A layer call in PyTorch, Keras, JAX (lax) or TensorFlow syntax, in quotes; arrays as their shapes.",
        show_default=False,
    ),
]
InputShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        help="The input's shape (spatial sizes, optionally after C or N and C); needed where padding depends on it.",
        show_default=False,
    ),
]


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


_OWN_FLAGS = ("input", "input_shape", "in_channels", "to", "framework", "seed")


def _layer_error(err: ConvArithError) -> ConvArithError:
    """A parameter written inside LAYER is reported against LAYER, naming the parameter."""
    if err.param in _OWN_FLAGS or err.param == "source":
        return err
    return ConvArithError("source", f"{err.param}: {err.rule}", err.value)


def _read(text: str, given: str | None) -> tuple[str, Layer, tuple[int, ...] | None]:
    from ..frameworks.translate import parse

    try:
        framework, layer, shape = parse(text)
    except ConvArithError as err:
        raise _layer_error(err) from None
    if given is not None:
        shape = input_shape(f"{layer.kind}{layer.ndim}d", given)
    return framework, layer, shape


def _targets(to: str) -> tuple[str, ...]:
    if to == "all":
        return _TARGETS
    return tuple(as_choice("to", part.strip(), (*_TARGETS, "all")) for part in to.split(","))


@guarded({"source": ("LAYER",), "to": ("--to",)})
def translate(
    layer: LayerArg,
    to: Annotated[str, typer.Option("--to", help="torch, keras, jax, onnx, tf, a comma list, or all.")] = "all",
    input: InputShapeOpt = None,
    run_check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check", help="Run source and target on random values and print the largest difference."
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the check's random values.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """A layer in another framework: the call, the weight conversion, the pads or crops it needs, as code.

    The code defines make(weight, bias=None): it takes the source's weights in the source's layout
    and returns the target layer with them loaded. Each translation checks itself (unless
    --no-check) when both frameworks are installed. Exit 1 if a check finds a difference.

    Examples:

      convarith translate "nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)" --to keras

      convarith translate "keras.layers.Conv2D(16, 3, strides=2, padding='same')" --to torch -i 1x3x32x32

      convarith translate "nn.Conv1d(4, 8, 5, dilation=2)" --to all --json
    """
    from ..frameworks import installed
    from ..frameworks.translate import translate as _translate

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow (Keras' default backend) logs at import

    framework, source, shape = _read(layer, input)
    targets = _targets(to)
    results: list[tuple[str, Translation | ConvArithError, Check | str | None]] = []
    for target in targets:
        try:
            made = _translate(source if framework is None else layer, target, input_shape=shape)
        except ConvArithError as err:
            if len(targets) == 1:
                raise _layer_error(err) from None
            results.append((target, err, None))
            continue
        verdict: Check | str | None = None
        if run_check:
            missing = [name for name in dict.fromkeys((framework, target)) if not installed(name)]
            verdict = f"not run: {', '.join(missing)} not installed" if missing else made.check(seed=seed)
        results.append((target, made, verdict))
    if as_json:
        _dump_translations(results)
    else:
        _print_translations(framework, results)
    if any(not isinstance(v, str | None) and not v.passed for _, _, v in results):
        raise typer.Exit(1)


def _dump_translations(results: Sequence[tuple[str, Translation | ConvArithError, Check | str | None]]) -> None:
    from .verbs_geometry import dump

    out: list[dict[str, object]] = []
    for target, made, verdict in results:
        if isinstance(made, ConvArithError):
            out.append({"target": target, "refused": str(made), "param": made.param})
            continue
        entry = made.to_dict()
        if isinstance(verdict, str):
            entry["check"] = {"run": False, "reason": verdict}
        elif verdict is not None:
            entry["check"] = {
                "run": True,
                "passed": verdict.passed,
                "max_difference": verdict.max_difference,
                "max_reference_difference": verdict.max_reference_difference,
                "tolerance": verdict.tolerance,
                "dtype": verdict.dtype,
            }
        out.append(entry)
    dump(out if len(out) > 1 else out[0])


def _print_translations(
    framework: str, results: Sequence[tuple[str, Translation | ConvArithError, Check | str | None]]
) -> None:
    from rich.markup import escape
    from rich.syntax import Syntax

    from ..frameworks import adapter

    console = _console()
    for index, (target, made, verdict) in enumerate(results):
        label = adapter(target).LABEL
        if index:
            console.print()
        if isinstance(made, ConvArithError):
            console.print(f"[bold]{label}[/bold]  [red]cannot express it[/red]: {escape(str(made))}")
            continue
        console.print(f"[bold]{adapter(framework).LABEL} → {label}[/bold]  ({escape(repr(made.layer))})")
        for step in made.steps:
            console.print(f"  {escape(step)}")
        for found in made.findings:
            if found.severity != "info" or found.code == "pitfall":
                console.print(f"  [yellow]{found.severity}[/yellow] {escape(found.message)}")
        console.print(Syntax(made.code, "python", theme="ansi_dark", background_color="default"))
        if isinstance(verdict, str):
            console.print(f"  check {escape(verdict)}")
        elif verdict is not None:
            colour = "green" if verdict.passed else "red"
            console.print(f"  check [{colour}]{escape(str(verdict))}[/{colour}]")


@guarded({"source": ("LAYER",)})
def check(
    layer: LayerArg,
    input: InputShapeOpt = None,
    framework: Annotated[
        str, typer.Option(help="torch, keras, jax, onnx, tf, a comma list, or all: whose rules to apply.")
    ] = "all",
    as_json: JsonOpt = False,
) -> None:
    """Which frameworks accept a layer, and why the others refuse it, before anything is run.

    Exit 0 whatever the verdicts; the refusals name each framework's rule.

    Examples:

      convarith check "nn.ConvTranspose2d(8, 8, 3, stride=2, groups=2)" --framework keras

      convarith check "nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)" -i 1x1x8x8
    """
    from ..frameworks import adapter
    from ..rules import check as rules_check
    from .verbs_geometry import dump

    _, source, shape = _read(layer, input)
    names = (
        _TARGETS
        if framework == "all"
        else tuple(as_choice("framework", part.strip(), (*_TARGETS, "all")) for part in framework.split(","))
    )
    verdicts = {name: rules_check(source, shape, framework=name) for name in names}
    if as_json:
        dump(
            {
                "layer": source.to_dict(),
                "input_shape": None if shape is None else list(shape),
                "frameworks": {
                    name: {
                        "accepts": not any(f.severity == "error" for f in found),
                        "findings": [f.to_dict() for f in found],
                    }
                    for name, found in verdicts.items()
                },
            }
        )
        return
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    console.print(escape(repr(source)) + (f"  on {'×'.join(map(str, shape))}" if shape else ""))
    table = Table(show_edge=False, header_style="bold")
    table.add_column("framework")
    table.add_column("verdict")
    table.add_column("why")
    for name, found in verdicts.items():
        errors = [f for f in found if f.severity == "error"]
        notes = [f for f in found if f.severity != "error"]
        verdict = (
            "[red]refuses[/red]"
            if errors
            else ("[yellow]with a workaround[/yellow]" if notes else "[green]accepts[/green]")
        )
        why = "; ".join(escape(f.message) for f in (errors or notes)) or ""
        table.add_row(adapter(name).LABEL, verdict, why)
    console.print(table)


@guarded({"frameworks": ("--frameworks",), "cases": ("--cases",), "ops": ("--ops",)})
def verify(
    frameworks: Annotated[
        str | None,
        typer.Option(
            help="Runners, comma-separated: torch, jax, keras-torch, keras-jax, keras-tf, onnx, onnx-ref, tf "
            "(default: every installed one).",
            show_default=False,
        ),
    ] = None,
    cases: Annotated[int, typer.Option(help="Random layers to run in every runner.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the layers and of their values.")] = 0,
    ops: Annotated[
        str | None,
        typer.Option(
            help="Kinds, comma-separated: conv, conv_transpose, max_pool, avg_pool (default: all).", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Random layers run in every installed framework and compared with convarith: shapes, values, round trips.

    Each mismatch is shrunk and printed as a runnable reproducer; cases a framework gets wrong by
    its own specification are listed as known bugs. Exit 1 on a mismatch no known bug explains.

    Examples:

      convarith verify --cases 20

      convarith verify --frameworks torch,keras-jax --cases 20 --ops conv_transpose --seed 7 --json
    """
    from ..frameworks.verify import plan
    from ..frameworks.verify import verify as _verify
    from .options import check_seed

    check_seed(seed)
    runners = None if frameworks is None else [part.strip() for part in frameworks.split(",") if part.strip()]
    kinds = None if ops is None else [part.strip() for part in ops.split(",") if part.strip()]
    plan(runners, cases, kinds)  # refuse bad arguments before the progress bar starts
    if as_json:
        report = _verify(runners, cases=cases, seed=seed, ops=kinds)
        from .verbs_geometry import dump

        dump(report.to_dict())
    else:
        report = _verify_with_progress(runners, cases, seed, kinds)
        _print_report(report)
    if not report.passed:
        raise typer.Exit(1)


def _verify_with_progress(runners: list[str] | None, cases: int, seed: int, kinds: list[str] | None) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..frameworks.verify import verify as _verify

    columns = (TextColumn("verify"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("cases", total=cases)
        return _verify(
            runners, cases=cases, seed=seed, ops=kinds, on_case=lambda done, _: progress.update(task, completed=done)
        )


_SHORT = {"conv": "conv", "conv_transpose": "conv_t", "max_pool": "max", "avg_pool": "avg"}


def _print_report(report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..frameworks import RUNNERS
    from ..layer import KINDS

    console = _console()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("runner")
    for kind in KINDS:
        table.add_column(_SHORT[kind], justify="right")
    for column in ("refused", "mismatch", "known bug", "cases/s"):
        table.add_column(column, justify="right")
    for runner in report.runners:
        bad = report.count(runner, status="mismatch")
        known = report.count(runner, status="known-bug")
        seconds = report.seconds.get(runner, 0.0)
        table.add_row(
            runner,
            *(str(report.count(runner, kind, "agree")) for kind in KINDS),
            str(report.count(runner, status="refused")),
            f"[red]{bad}[/red]" if bad else "0",
            f"[yellow]{known}[/yellow]" if known else "0",
            f"{report.cases / seconds:.0f}" if seconds > 0 else "–",
        )
    console.print(f"[bold]{report.cases} random cases[/bold] in every runner ({report.elapsed:.1f} s)")
    console.print(table)
    console.print(
        "[dim]per op: cases with equal shapes, values and round trip; refused: by the framework's rules[/dim]"
    )
    for runner in report.runners:
        console.print(f"  {runner:<12} {escape(RUNNERS[runner].label)}: {escape(report.versions.get(runner, ''))}")
    for title, items in (("known framework bugs", report.known), ("MISMATCHES (shrunk)", report.mismatches)):
        if items:
            console.print(f"\n[bold]{title}[/bold]")
        for m in items:
            console.print(f"[bold]{RUNNERS[m.runner].label}[/bold]: {escape(m.detail)}")
            if m.known_bug:
                console.print(f"  {escape(m.known_bug)}")
            console.print(escape(m.reproducer), highlight=False)
    verdict = "[green]passed[/green]" if report.passed else "[red]failed[/red]: mismatches no known bug explains"
    console.print(verdict)
