"""The ``convarith`` command: the Typer app, its entry point, and the one-line error contract.

Exit codes: 0 success, 1 a tour check failed, 2 bad input — one line on stderr naming the flag,
the rule and the value, never a traceback. Usage mistakes that Typer itself catches (an unknown
option, ``--seed abc``) are one line too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from .errors import ARGV, one_line
from .verbs_analysis import analyze
from .verbs_frameworks import check, translate, verify
from .verbs_geometry import explain, matrix, shape, solve
from .verbs_pictures import animate, draw_matrix, gallery, tour
from .verbs_web import serve

__all__ = ["app", "main"]

# Typer re-exports click's BadParameter; its bases are click's UsageError and ClickException.
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
_ClickException: type[Exception] = typer.BadParameter.__mro__[2]


class _Group(TyperGroup):
    """Typer's group, with every usage error on one line and the command line remembered."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        token = ARGV.set(tuple(argv))
        try:
            code = super().main(argv, prog_name or "convarith", complete_var, standalone_mode=False, **extra)
        except _ClickException as err:
            code = _report(err)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = 1
        finally:
            ARGV.reset(token)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _report(err: Exception) -> int:
    """Print a Typer usage error as one line (the help for ``convarith`` alone); its exit code."""
    ctx = getattr(err, "ctx", None)
    if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help())
        typer.echo(f"error: {ctx.command_path} needs a verb (see the list above)", err=True)
        return 2
    message = one_line(str(getattr(err, "format_message", lambda: str(err))()))
    hint = f" (see '{ctx.command_path} --help')" if isinstance(err, _UsageError) and ctx is not None else ""
    typer.echo(f"error: {message}{hint}", err=True)
    return int(getattr(err, "exit_code", 2))


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Convolution arithmetic you can run, see and trust.",
    epilog="Run 'convarith VERB --help' for the options and examples of each verb. "
    "--input is always the input's shape: the spatial sizes, optionally after C or N and C.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convarith {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Convolution arithmetic you can run, see and trust."""


app.command()(shape)
app.command()(solve)
app.command()(explain)
app.command()(matrix)
app.command()(animate)
app.command("draw-matrix")(draw_matrix)
app.command()(gallery)
app.command()(tour)
app.command()(translate)
app.command()(check)
app.command()(verify)
app.command()(analyze)
app.command()(serve)


def main() -> None:
    """Console entry point (``convarith = "convarith.cli:main"``)."""
    app()
