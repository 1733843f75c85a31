"""A framework in another process: Keras picks its backend once per process, so each backend (and
anything else set by the environment) runs in a worker of its own, kept alive across calls.

A :class:`Worker` starts ``python -m convarith.frameworks.worker`` with the runner's environment
and sends it requests over a pipe (pickled: both ends are convarith). A request names a function
of convarith by its module and name; the worker imports it, calls it and sends back the result or
the error (a :class:`~convarith.ConvArithError` comes back as itself; any other exception as
:class:`WorkerError` with the worker's type and message).

Examples
--------
>>> with Worker({"CONVARITH_EXAMPLE": "1"}) as worker:
...     worker.call("os", "getenv", "CONVARITH_EXAMPLE")
'1'
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import traceback
from collections.abc import Mapping
from typing import IO, Any

from ..errors import ConvArithError

__all__ = ["Worker", "WorkerError", "worker_for"]


class WorkerError(RuntimeError):
    """An exception inside a worker, other than ConvArithError: its type name, message and traceback."""

    def __init__(self, kind: str, message: str, trace: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.trace = kind, message, trace


def _send(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


class Worker:
    """A child Python process with extra environment variables, answering calls until closed."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        full = {**os.environ, **self.env}
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=full,
        )

    def call(self, module: str, name: str, *args: object, **kwargs: object) -> Any:
        """``module.name(*args, **kwargs)`` in the worker."""
        self.start(module, name, *args, **kwargs)
        return self.finish()

    def start(self, module: str, name: str, *args: object, **kwargs: object) -> None:
        """Send a call without waiting for it (several workers then compute at once); :meth:`finish` waits."""
        process = self._process
        if process.stdin is None or process.poll() is not None:
            raise WorkerError("WorkerExited", f"the worker for {self.env} is not running")
        try:
            _send(process.stdin, (module, name, args, kwargs))
        except BrokenPipeError as err:
            raise WorkerError("WorkerExited", f"the worker for {self.env} stopped ({err!r})") from None

    def finish(self) -> Any:
        """The result of the call :meth:`start` sent (its ConvArithError raised as itself)."""
        process = self._process
        if process.stdout is None:
            raise WorkerError("WorkerExited", f"the worker for {self.env} is not running")
        try:
            ok, value = _receive(process.stdout)
        except EOFError:
            code = self._process.wait(timeout=30)
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise WorkerError("WorkerExited", f"the framework's process stopped ({how})") from None
        if ok:
            return value
        if isinstance(value, ConvArithError):
            raise value
        raise WorkerError(*value)

    def alive(self) -> bool:
        """Whether the process still runs (a framework may abort it)."""
        return self._process.poll() is None

    def close(self) -> None:
        """Stop the worker."""
        if self._process.poll() is None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung framework
                self._process.kill()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WORKERS: dict[tuple[tuple[str, str], ...], Worker] = {}


def worker_for(env: Mapping[str, str]) -> Worker:
    """The process-wide worker for this environment (started on first use, closed at exit)."""
    key = tuple(sorted(env.items()))
    found = _WORKERS.get(key)
    if found is None or found._process.poll() is not None:
        found = _WORKERS[key] = Worker(env)
    return found


def _close_all() -> None:
    for worker in _WORKERS.values():
        worker.close()


import atexit  # noqa: E402  (registered once the pool exists)

atexit.register(_close_all)


def _serve() -> None:  # pragma: no cover - runs in the child
    import importlib

    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb")  # the pipe back, on a descriptor of its own
    os.dup2(2, 1)  # a framework that prints (from Python or C) must not corrupt the pipe
    sys.stdout = sys.stderr
    while True:
        try:
            module, name, args, kwargs = _receive(stdin)
        except EOFError:
            return
        try:
            result = getattr(importlib.import_module(module), name)(*args, **kwargs)
            reply: tuple[bool, object] = (True, result)
        except ConvArithError as err:
            reply = (False, err)
        except BaseException as err:
            reply = (False, (type(err).__name__, str(err), traceback.format_exc()))
        try:
            _send(stdout, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            _send(stdout, (False, ("PicklingError", str(err), "")))


if __name__ == "__main__":  # pragma: no cover
    _serve()
