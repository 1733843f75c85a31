"""GIF frames LZW-encoded in order, the encoding overlapped with the drawing in a helper process.

Pillow's GIF encoder holds the GIL, so a thread cannot encode one frame while the next is drawn; a
helper process on a second core can. :class:`Encoder` sends a palette frame's pixels to the helper
while its backlog is short and encodes the frame itself when the helper is behind, so both cores
stay busy; the answers come back in order, and every frame is Pillow's
``Image.tobytes("gif", "P")`` of the same pixels: the file is the one a single process writes.

With a *page* (a GIF's frames, each a rectangle laid over the ones before), a frame's pixels that
repeat what the page shows there become one transparent index before they are encoded, wherever
that is: the helper keeps its own copy of the page, this process its own.

The helper is this file run as a script (``python -P _lzw.py``: it imports the standard library,
Pillow and NumPy, never the user's ``__main__`` nor convarith). Its pipes, one record
at a time:

* in: a kind byte and ``<IIII`` x, y, width, height, then (but for ``P``) ``width × height``
  palette indices: ``F`` a frame to encode (and lay on the page, if there is one), ``U`` a frame
  encoded here, only to lay on the page, ``P`` the page: its size, every pixel index ``x`` (an
  index no frame has, the transparent one); end of input ends it;
* out: a kind byte and ``<I`` length, then the payload: ``H`` once at start (Pillow's version and
  place, which must be this process's Pillow), ``D`` the LZW bytes of each ``F`` frame in order,
  ``E`` an error message (then it exits).

If the helper cannot start, answers garbage, dies or stops answering, the frames it holds are
encoded here from the pixels kept for that (and the page's pixels they cover), with a
``RuntimeWarning``, and the file is the same.

Examples
--------
>>> from PIL import Image
>>> image = Image.new("P", (3, 2), 5)
>>> with Encoder(helper=False) as encoder:
...     done = [*encoder.put(image, "a"), *encoder.finish()]
>>> done == [("a", image.tobytes("gif", "P"))]
True
"""

from __future__ import annotations

import contextlib
import struct
import sys
from collections import deque
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import subprocess
    from types import TracebackType

    import numpy as np
    import numpy.typing as npt
    from PIL import Image

__all__ = ["Encoder", "HelperError", "available", "cores", "encode", "identity"]

REQUEST = struct.Struct("<cIIII")
"""A request to the helper: its kind (``F`` frame, ``U`` update, ``P`` page), x, y, width and height."""
RECORD = struct.Struct("<cI")
"""An answer: its kind (``H`` hello, ``D`` data, ``E`` error) and its payload's length."""

BACKLOG = 1 << 20
"""Pixels sent to the helper and not answered yet above which a frame is encoded here instead
(a few ms of encoding: enough to keep the helper busy between two frames, little to wait for at the end)."""
MIN_PIXELS = 4096
"""Smaller frames are encoded here: a round trip costs more than encoding them."""
HELD = 8 << 20
"""Bytes of encoded frames held back (a frame before them is still with the helper) above which
:meth:`Encoder.put` waits for the helper: memory stays bounded when the helper is starved or stuck."""
PIPE_BYTES = 1 << 20
"""The pipes' capacity asked for (Linux; the default 64 KB would split every large frame)."""
TIMEOUT = 60.0
"""Seconds without an answer after which the helper counts as hung."""

T = TypeVar("T")


class HelperError(Exception):
    """The helper failed; its frames are encoded in this process."""


def encode(image: Image.Image) -> bytes:
    """A ``P`` image's LZW data in GIF sub-blocks: Pillow's encoder, as its GIF writer calls it."""
    return image.tobytes("gif", "P")


def hidden(data: bytes, under: npt.NDArray[np.uint8], transparent: int) -> Image.Image:
    """The ``P`` image of a rectangle's pixels ``data`` with those equal to ``under`` (the page's
    pixels it covers, rows × columns) made ``transparent``.

    >>> import numpy as np
    >>> list(hidden(bytes([1, 2, 3, 4]), np.array([[1, 0], [3, 0]], np.uint8), 9).tobytes())
    [9, 2, 9, 4]
    """
    import numpy as np
    from PIL import Image

    height, width = under.shape
    pixels = np.frombuffer(data, np.uint8).reshape(height, width)
    same = np.negative((pixels == under).view(np.uint8))  # 255 where the page shows the pixel already, else 0
    # bit masks pick the transparent index or the pixel: a boolean mask's indexing is 4× slower
    picked = pixels ^ ((pixels ^ np.uint8(transparent)) & same)
    return Image.frombuffer("P", (width, height), picked.tobytes(), "raw", "P", 0, 1)


def identity() -> str:
    """This process's Pillow, version and place: the helper's must be the same to give the same bytes."""
    import os

    import PIL

    return f"{PIL.__version__} {os.path.realpath(PIL.__file__)}"


def cores() -> int:
    """Cores this process may run on."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available() -> bool:
    """Whether a helper can run beside this process: a second core, POSIX pipes (non-blocking,
    selectable), and an interpreter to start (not a frozen application or a host embedding Python,
    whose ``sys.executable`` is not a Python to run the helper with)."""
    import os

    name = os.path.basename(sys.executable or "").lower()
    return (
        os.name == "posix" and not getattr(sys, "frozen", False) and name.startswith(("python", "pypy")) and cores() > 1
    )


class _Frame(Generic[T]):
    __slots__ = ("data", "lzw", "size", "tag", "under")

    def __init__(
        self,
        tag: T,
        size: tuple[int, int],
        lzw: bytes | None = None,
        data: bytes | None = None,
        under: npt.NDArray[np.uint8] | None = None,
    ) -> None:
        self.tag, self.size, self.lzw, self.data, self.under = tag, size, lzw, data, under

    def encode(self, transparent: int | None) -> bytes:
        """Its LZW bytes, from its pixels (and those of the page under it)."""
        from PIL import Image

        assert self.data is not None
        if self.under is None or transparent is None:
            return encode(Image.frombytes("P", self.size, self.data))
        return encode(hidden(self.data, self.under, transparent))


class Encoder(Generic[T]):
    """Encodes ``P`` images in order, each given back with its tag as soon as it and those before it are done.

    Parameters
    ----------
    helper
        Start a helper process (only worth it with a second core and enough pixels: its start-up
        is about 0.1 s of that core). Without it, every frame is :func:`encode`'d in :meth:`put`.
    backlog
        Pixels the helper may hold unanswered before frames are encoded here (:data:`BACKLOG`).
    timeout
        Seconds without an answer, while waiting for one, after which the helper counts as hung.

    Use it as a context manager: leaving it, by an exception too, ends the helper.
    """

    def __init__(
        self,
        helper: bool,
        *,
        backlog: int = BACKLOG,
        timeout: float = TIMEOUT,
    ) -> None:
        self._frames: deque[_Frame[T]] = deque()  # in order, done or not
        self._sent: deque[_Frame[T]] = deque()  # sent to the helper, unanswered, in order
        self._out: deque[memoryview] = deque()  # bytes for the helper not yet in its pipe
        self._in = bytearray()  # bytes from the helper not yet parsed
        self._backlog, self._limit, self._timeout = 0, backlog, timeout
        self._held = 0  # bytes of encoded frames in _frames
        self._process: subprocess.Popen[bytes] | None = None
        self._greeted = False
        self.remote = 0
        """Frames the helper encoded."""
        self.failure: str | None = None
        """Why the helper was given up, if it was."""
        self._page: npt.NDArray[np.uint8] | None = None
        self._transparent: int | None = None
        self._count = 0  # frames put
        if helper:
            self._start()

    def __enter__(self) -> Encoder[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def page(self, width: int, height: int, transparent: int) -> None:
        """From now on, frames are rectangles laid on a page of ``width × height`` pixels, each encoded
        with its pixels that repeat the page made ``transparent`` (an index no frame has: the page
        starts as that index everywhere, so the first frame is encoded whole)."""
        import numpy as np

        if self._count or self._page is not None:
            raise ValueError("the page is set before the first frame, once")
        self._page, self._transparent = np.full((height, width), transparent, np.uint8), transparent
        if self._process is not None:
            self._send(b"P", (transparent, 0, width, height))
            self._pump()

    def put(self, image: Image.Image, tag: T, at: tuple[int, int] = (0, 0)) -> list[tuple[T, bytes]]:
        """Queue a ``P`` image (on the page: the rectangle at ``at``); returns the frames done by now,
        in order, with their tags."""
        width, height = image.size
        pixels = width * height
        data = image.tobytes()
        self._count += 1
        under = None
        if self._page is not None:
            import numpy as np

            x, y = at
            view = self._page[y : y + height, x : x + width]
            under = view.copy()  # what the frame covers: to encode it here, now or if the helper fails
            view[...] = np.frombuffer(data, np.uint8).reshape(height, width)
        frame = _Frame(tag, image.size, data=data, under=under)
        if self._process is not None and pixels >= MIN_PIXELS and self._backlog < self._limit:
            self._send(b"F", (*at, width, height), data)
            self._sent.append(frame)
            self._backlog += pixels
        else:
            frame.lzw, frame.data, frame.under = frame.encode(self._transparent), None, None
            self._held += len(frame.lzw)
            if self._process is not None and self._page is not None:
                self._send(b"U", (*at, width, height), data)  # the helper's page follows
        self._frames.append(frame)
        if self._process is not None:
            self._pump()
        while self._held > HELD and self._frames[0].lzw is None and self._process is not None:
            self._wait()  # the helper is behind: bound what waits for it
        return self._done()

    def finish(self) -> Iterator[tuple[T, bytes]]:
        """The frames not given back yet, in order, waiting for the helper's last answers."""
        while self._sent and self._process is not None:
            self._wait()
            yield from self._done()
        yield from self._done()
        self.close()

    def _wait(self) -> None:
        """Wait until the pipes can move something (or the helper times out), then move it."""
        import selectors

        process = self._process
        assert process is not None and process.stdout is not None and process.stdin is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout.fileno(), selectors.EVENT_READ)
            if self._out:
                selector.register(process.stdin.fileno(), selectors.EVENT_WRITE)
            ready = selector.select(self._timeout)
        if ready:
            self._pump()
        else:
            self._fail(f"no answer for {self._timeout:g} s")

    def close(self) -> None:
        """End the helper (at once: everything it was asked is answered, or no longer wanted) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        if process.poll() is None:
            process.kill()
        process.wait()

    # -- the helper, from this side --

    def _send(self, kind: bytes, box: tuple[int, int, int, int], data: bytes = b"") -> None:
        """Queue a request for the helper's pipe (moved by :meth:`_pump`)."""
        self._out.append(memoryview(REQUEST.pack(kind, *box)))
        if data:
            self._out.append(memoryview(data))

    def _start(self) -> None:
        import os
        import subprocess

        script = os.path.abspath(__file__)
        if not os.path.isfile(script):  # e.g. imported from a zip
            self._fail(f"{script} is not a file")
            return
        try:
            process = subprocess.Popen(
                # -P: the script's folder (this package's modules) stays off its sys.path
                [sys.executable, "-P", script],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
                start_new_session=True,  # a Ctrl-C reaches this process only, which then ends the helper
            )
        except OSError as err:
            self._fail(f"cannot start {sys.executable}: {err}")
            return
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        for pipe in (process.stdin, process.stdout):
            os.set_blocking(pipe.fileno(), False)
            try:
                import fcntl

                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except (ImportError, AttributeError, OSError):
                pass  # not Linux, or refused: smaller pipes, more and shorter writes

    def _pump(self) -> None:
        """Move what the pipes take now, without waiting: requests out, answers in."""
        import os

        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            while self._out:
                head = self._out[0]
                written = os.write(process.stdin.fileno(), head)
                if written < len(head):
                    self._out[0] = head[written:]
                    break
                self._out.popleft()
        except BlockingIOError:
            pass
        except OSError as err:  # a broken pipe: the helper is gone; its answers may say why
            self._read(process)
            if self._process is not None:
                self._fail(f"it stopped reading ({err.strerror or err})")
            return
        self._read(process)

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        import os
        import subprocess

        assert process.stdout is not None
        eof = False
        while True:
            try:
                chunk = os.read(process.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                break
            except OSError as err:
                self._fail(f"cannot read its answers ({err.strerror or err})")
                return
            if not chunk:
                eof = True
                break
            self._in += chunk
        try:
            self._parse()
        except HelperError as err:
            self._fail(str(err))
            return
        if eof and self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1)
            self._fail(
                "it closed its output" if process.returncode is None else f"it exited (code {process.returncode})"
            )

    def _parse(self) -> None:
        view, start = memoryview(self._in), 0
        try:
            while len(view) - start >= RECORD.size:
                kind, length = RECORD.unpack_from(view, start)
                if kind not in ((b"D", b"E") if self._greeted else (b"H", b"E")) or length > self._longest(kind):
                    raise HelperError(f"unexpected answer {bytes(view[start : start + 16])!r}")
                end = start + RECORD.size + length
                if len(view) < end:
                    break
                payload = bytes(view[start + RECORD.size : end])
                start = end
                if kind == b"E":
                    raise HelperError(payload.decode(errors="replace"))
                if kind == b"H":
                    theirs, ours = payload.decode(errors="replace"), identity()
                    if theirs != ours:
                        raise HelperError(f"its Pillow ({theirs}) is not this process's ({ours})")
                    self._greeted = True
                else:
                    frame = self._sent.popleft()
                    frame.lzw, frame.data, frame.under = payload, None, None
                    self._held += len(payload)
                    self._backlog -= frame.size[0] * frame.size[1]
                    self.remote += 1
        finally:
            view.release()
            del self._in[:start]

    def _longest(self, kind: bytes) -> int:
        """The longest answer of a kind that can be right now (a garbled header is caught before its payload)."""
        if kind != b"D":
            return 1 << 16
        if not self._sent:
            raise HelperError("an answer to no frame")
        width, height = self._sent[0].size
        return 2 * width * height + 1024  # LZW codes are at most 12 bits a pixel, sub-blocks 1 byte in 255

    def _fail(self, reason: str) -> None:
        """Give the helper up: end it, encode here what it held."""
        import warnings

        self.close()
        self.failure = reason
        warnings.warn(
            f"the GIF encoding helper process failed ({reason}); encoding in this process", RuntimeWarning, stacklevel=2
        )
        for frame in self._sent:
            frame.lzw, frame.data, frame.under = frame.encode(self._transparent), None, None
            self._held += len(frame.lzw)
        self._sent.clear()
        self._out.clear()
        self._in.clear()
        self._backlog = 0

    def _done(self) -> list[tuple[T, bytes]]:
        done = []
        while self._frames and self._frames[0].lzw is not None:
            frame = self._frames.popleft()
            assert frame.lzw is not None
            self._held -= len(frame.lzw)
            done.append((frame.tag, frame.lzw))
        return done


# -- the helper --


def _send(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(RECORD.pack(kind, len(payload)))
    out.write(payload)
    out.flush()


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The helper's loop: requests from ``stdin``, answers to ``stdout``; returns the exit code."""
    try:
        import numpy as np  # for a page; imported while the parent chooses the palette, not at the first frame
        from PIL import Image

        _send(stdout, b"H", identity().encode())
        page, transparent = None, 0
        while head := stdin.read(REQUEST.size):
            if len(head) < REQUEST.size:
                raise EOFError("a request's header was cut short")
            kind, x, y, width, height = REQUEST.unpack(head)
            if kind == b"P":
                page, transparent = np.full((height, width), x, np.uint8), x
                continue
            if kind not in (b"F", b"U"):
                raise ValueError(f"unknown request {kind!r}")
            data = stdin.read(width * height)
            if len(data) < width * height:
                raise EOFError(f"a {width}×{height} frame's pixels were cut short")
            if page is None:
                if kind == b"F":
                    _send(stdout, b"D", encode(Image.frombuffer("P", (width, height), data, "raw", "P", 0, 1)))
                continue
            under = page[y : y + height, x : x + width]
            if under.shape != (height, width):
                raise ValueError(f"a {width}×{height} frame at ({x}, {y}) is off the page")
            image = hidden(data, under, transparent) if kind == b"F" else None
            under[...] = np.frombuffer(data, np.uint8).reshape(height, width)
            if image is not None:
                _send(stdout, b"D", encode(image))
    except (KeyboardInterrupt, BrokenPipeError):
        return 1  # interrupted with the parent, or the parent is gone: nobody to tell
    except Exception as err:  # everything else goes back to the parent, which names it
        with contextlib.suppress(OSError):
            _send(stdout, b"E", f"{type(err).__name__}: {err}".encode())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))
