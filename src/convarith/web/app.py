"""The explorer's ASGI application (Starlette) and the server that runs it (uvicorn).

Safe by default: the server binds loopback unless told otherwise; every request whose ``Host``
header is not one the server was bound as is refused (DNS rebinding); request bodies are capped
before they are read; every field is bounded before anything is computed
(:mod:`convarith.web.state`); no user text is ever evaluated; every response carries a strict
Content-Security-Policy (the page loads only its own script and style, no CDN, no inline script);
the page has no access to the file system: the only files served are the page's own, from the
package.

Routes: ``GET /`` the page, ``GET /static/…`` its script and style, ``POST /api/layer`` (a state →
:func:`~convarith.web.payload.describe`), ``POST /api/solve`` (the solver). A refusal is a 400 with
``{"error": {"param", "rule", "value", "message"}}``.
"""

from __future__ import annotations

import json
import socket
import threading
import webbrowser
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from importlib import resources
from typing import Any

from ..errors import ConvArithError
from .payload import describe, error_body, solutions
from .state import read_state

__all__ = ["LOOPBACK", "MAX_BODY", "Server", "create_app", "page_file"]

MAX_BODY = 512 * 1024
"""Largest request body read (a 128 × 128 input of typed values fits with room)."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_FILES = {"explorer.js": "text/javascript", "page.js": "text/javascript", "explorer.css": "text/css"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def page_file(name: str) -> str:
    """The text of one of the page's files, shipped inside the package."""
    return resources.files("convarith.web").joinpath("static", name).read_text(encoding="utf-8")


class _Guard:
    """ASGI middleware: refuse foreign Host headers and oversized bodies, add the security headers."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        length = headers.get("content-length", "0")
        if name not in self.hosts:
            await _plain(send, 421, f"this server answers to {', '.join(sorted(self.hosts))}, not {host!r}")
            return
        if not length.isdigit() or int(length) > MAX_BODY:
            await _plain(send, 413, f"request body larger than {MAX_BODY} bytes")
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, secured)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def create_app(hosts: Sequence[str] = LOOPBACK) -> ASGIApp:
    """The explorer as an ASGI application answering to the Host names ``hosts``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    async def index(request: Request) -> Response:
        return HTMLResponse(page_file("index.html"))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(page_file(name), media_type=_FILES[name])

    async def body(request: Request) -> object:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY:
                raise ConvArithError("request", f"body larger than {MAX_BODY} bytes", None)
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise ConvArithError("request", "must be JSON", None) from None

    def api(compute: Callable[[object], object]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await run_in_threadpool(compute, await body(request))
            except ConvArithError as err:
                return JSONResponse(error_body(err), status_code=400)
            return JSONResponse(result)

        return endpoint

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/layer", api(lambda data: describe(read_state(data))), methods=["POST"]),
        Route("/api/solve", api(solutions), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    return _Guard(app, hosts)


class Server:
    """The explorer served by uvicorn on a socket bound first (so ``port=0`` gives a free port to print).

    >>> server = Server("127.0.0.1", 0)
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> server.close()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, allow_hosts: Sequence[str] = ()) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as err:
            self.socket.close()
            raise ConvArithError(
                "host" if port == 0 else "port",
                f"cannot listen on {host}:{port} ({err.strerror or err})",
                host if port == 0 else port,
            ) from None
        self.socket.listen(128)  # connections wait in the backlog from the moment the URL is printed
        self.host = host
        self.port: int = self.socket.getsockname()[1]
        hosts = [host, *allow_hosts, *(LOOPBACK if host in LOOPBACK else ())]
        self.app = create_app(hosts)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{name}:{self.port}/"

    def _uvicorn(self) -> Any:
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        return self._server

    def run(self, open_browser: bool = False) -> None:
        """Serve until interrupted (Ctrl+C)."""
        server = self._uvicorn()
        if open_browser:
            threading.Timer(0.5, webbrowser.open, args=(self.url,)).start()
        server.run(sockets=[self.socket])

    def start(self) -> str:
        """Serve from a background thread (tests, notebooks); returns the URL once it answers."""
        server = self._uvicorn()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the explorer's server stopped while starting")
            threading.Event().wait(0.01)
        return self.url

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.socket.close()
