"""The ``serve`` verb: the explorer page on a local server."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from ..errors import ConvArithError
from .errors import guarded

__all__ = ["serve"]

_FLAGS = {"host": ("--host",), "port": ("--port",), "allow_hosts": ("--allow-host",), "web": ("--host",)}


@guarded(_FLAGS)
def serve(
    host: Annotated[
        str, typer.Option(help="The address to listen on (loopback unless you say otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port (0: any free port, printed).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Another Host name the page may be reached by (needed when --host is not loopback).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the explorer: any layer, animated, linked to its matrix, in every framework's code.

    The page and its data come from this process only (no CDN); it answers only to the host names
    it was bound as (and --allow-host), and stops with Ctrl+C.

    Example: convarith serve --open
    """
    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConvArithError("web", "the explorer needs the optional extra 'web' (pip install 'convarith[web]')", None)
    if not 0 <= port <= 65535:
        raise ConvArithError("port", "must be 0 … 65535", port)
    from ..web.app import LOOPBACK, Server

    server = Server(host, port, allow_hosts=tuple(allow_host or ()))
    typer.echo(f"convarith explorer: {server.url}  (Ctrl+C to stop)")
    if host not in LOOPBACK:
        names = ", ".join([host, *(allow_host or ())])
        typer.echo(f"note: listening beyond this machine; the page answers to the host names {names}", err=True)
    try:
        server.run(open_browser=open_browser)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
