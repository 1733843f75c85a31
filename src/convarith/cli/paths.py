"""Paths the user gives: every output checked before any work, every value file read with one-line errors.

An output file needs a name with the right suffix, an existing folder to live in, and must not
be a folder; an output folder must not be a file, must be new, empty, or hold only what this verb
writes (so that ``-o /`` or ``--out .`` never scatters files among the user's own), and its parent
must exist. Writability is tried for real (a probe file created and removed at once), since
permission bits do not stop root and some file systems (``/proc``) refuse whatever the bits say.

Value files (``--input-values``, ``--kernel-values``, ``--weights``) are ``.npy`` arrays or
comma-separated tables of real, finite numbers; anything else is one line naming the flag.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConvArithError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ANIMATION_SUFFIXES",
    "animation_target",
    "check_distinct",
    "load_values",
    "output_file",
    "output_folder",
    "picture_file",
]

ANIMATION_SUFFIXES = (".gif", ".png", ".apng", ".svg", ".mp4")
_PICTURES = (".gif", ".png", ".apng", ".svg", ".mp4")
_NAME_MAX = 255


def picture_file(name: str) -> bool:
    """A picture a tour or gallery writes (or an earlier one did)."""
    return Path(name).suffix.lower() in _PICTURES


def _named(param: str, text: str, what: str) -> Path:
    if not text.strip():
        raise ConvArithError(param, f"must name a {what}", repr(text))
    if "\0" in text:
        raise ConvArithError(param, "must not contain a NUL character", repr(text))
    path = Path(text)
    if any(len(os.fsencode(part)) > _NAME_MAX for part in path.parts):
        raise ConvArithError(param, f"has a name longer than {_NAME_MAX} bytes", repr(text))
    return path


def _stat_kind(path: Path) -> str:
    """``"file"``, ``"folder"``, ``"other"`` or ``"missing"`` (a path under a file is missing)."""
    try:
        if path.is_dir():
            return "folder"
        if path.is_file():
            return "file"
        return "other" if path.exists() or path.is_symlink() else "missing"
    except OSError:
        return "missing"


def _folder_to_write_in(param: str, folder: Path, text: str) -> None:
    """``folder`` exists, is a folder, and a file can be created in it."""
    kind = _stat_kind(folder)
    if kind != "folder":
        ancestor = folder
        while _stat_kind(ancestor) == "missing" and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if _stat_kind(ancestor) in ("file", "other"):
            raise ConvArithError(param, f"lies under {str(ancestor)!r}, which is a file, not a folder", repr(text))
        raise ConvArithError(param, f"the folder {str(folder)!r} does not exist (create it first)", repr(text))
    try:
        fd, probe = tempfile.mkstemp(prefix=".convarith-probe-", dir=folder)
    except OSError as err:
        raise ConvArithError(
            param, f"cannot write in the folder {str(folder)!r} ({err.strerror or err})", repr(text)
        ) from None
    os.close(fd)
    os.unlink(probe)


def output_file(param: str, text: str, suffixes: Sequence[str] | None = None, *, what: str = "") -> Path:
    """A file about to be written: named, with one of ``suffixes``, not a folder, in a writable folder.

    >>> output_file("output", "/", (".png", ".svg"))
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: output: is a folder; give a file name ending in .png or .svg; got '/'
    """
    path = _named(param, text, "file")
    wanted = " or ".join(suffixes) if suffixes else ""
    kind = _stat_kind(path)
    if kind == "folder":
        ending = f" ending in {wanted}" if wanted else ""
        raise ConvArithError(param, f"is a folder; give a file name{ending}{what}", repr(text))
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConvArithError(param, f"must end in {wanted}{what}", repr(text))
    if kind == "other":
        raise ConvArithError(param, "exists and is not a regular file", repr(text))
    _folder_to_write_in(param, path.parent, text)
    if kind == "file" and not os.access(path, os.W_OK):
        raise ConvArithError(param, "is not writable", repr(text))
    return path


def output_folder(param: str, text: str, owned: Callable[[str], bool], *, what: str) -> Path:
    """A folder about to be filled: not a file; new, empty, or holding only ``owned`` names; writable.

    ``what`` names the other folders accepted (``"an earlier gallery"``), if any.
    """
    path = _named(param, text, "folder")
    kind = _stat_kind(path)
    if kind in ("file", "other"):
        raise ConvArithError(param, "is a file; give a folder", repr(text))
    if kind == "missing":
        _folder_to_write_in(param, path.parent, text)
        return path
    try:
        foreign = sorted(name for name in os.listdir(path) if not owned(name))
    except OSError as err:
        raise ConvArithError(param, f"cannot read the folder ({err.strerror or err})", repr(text)) from None
    if foreign:
        also = f", or {what}" if what else ""
        raise ConvArithError(
            param,
            f"the folder holds {len(foreign)} other file(s) (such as {foreign[0]!r}); give a new or empty folder{also}",
            repr(text),
        )
    _folder_to_write_in(param, path, text)
    return path


def animation_target(param: str, text: str) -> Path:
    """``animate -o``: a ``.gif``/``.png``/``.svg``/``.mp4`` file, or a folder for a frame sequence.

    A name without a suffix (or an existing folder) is a frame folder: it must be new or empty
    (the writers' rule, checked here before any work).
    """
    path = _named(param, text, "file or folder")
    suffix = path.suffix.lower()
    if suffix in ANIMATION_SUFFIXES:
        target = output_file(param, text, ANIMATION_SUFFIXES)
        if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
            raise ConvArithError(
                param, "MP4 needs the optional extra 'video' (pip install 'convarith[video]')", repr(text)
            )
        return target
    if suffix and _stat_kind(path) != "folder":
        raise ConvArithError(
            param,
            f"must end in {', '.join(ANIMATION_SUFFIXES)}, or name a folder (no suffix) for a frame sequence",
            repr(text),
        )
    return output_folder(param, text, lambda name: False, what="")


# -- value files --------------------------------------------------------------------------------


def _csv(param: str, path: Path, text: str) -> list[list[float]]:
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = []
        for cell in line.split(","):
            try:
                row.append(float(cell))
            except ValueError:
                raise ConvArithError(
                    param, f"must hold real numbers separated by commas; line {number} has {cell.strip()!r}", str(path)
                ) from None
        if rows and len(row) != len(rows[0]):
            raise ConvArithError(
                param, f"rows must have equal lengths; line {number} has {len(row)}, not {len(rows[0])}", str(path)
            )
        rows.append(row)
    return rows


def load_values(param: str, text: str | None) -> npt.NDArray[np.float64] | None:
    """A ``.npy`` array, or a comma-separated table (a 2-d plane; ``#`` starts a comment line).

    Refuses, in one line naming ``param``: a missing or unreadable file, a folder, a pickle or a
    ``.npz``, complex or non-numeric values, NaN or infinity, an empty table, ragged rows.
    """
    if text is None:
        return None
    path = _named(param, text, "file")
    kind = _stat_kind(path)
    if kind == "missing":
        raise ConvArithError(param, "no such file", repr(text))
    if kind == "folder":
        raise ConvArithError(param, "is a folder, not a file", repr(text))
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            if path.suffix.lower() == ".npy":
                loaded = np.load(path, allow_pickle=False)
                if not isinstance(loaded, np.ndarray):
                    raise ConvArithError(param, "must be one array in .npy format (not .npz)", repr(text))
                if loaded.dtype.kind == "c":
                    raise ConvArithError(param, "must hold real numbers, not complex ones", repr(text))
                if loaded.dtype.kind not in "iuf":
                    raise ConvArithError(param, f"must hold numbers, not {loaded.dtype}", repr(text))
                values = loaded.astype(np.float64)
            else:
                try:
                    content = path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    raise ConvArithError(
                        param, "must be a .npy file or UTF-8 text with comma-separated numbers", repr(text)
                    ) from None
                values = np.array(_csv(param, path, content), dtype=np.float64)
        except ConvArithError:
            raise
        except (OSError, ValueError, EOFError, Warning) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "not a readable .npy file"
            raise ConvArithError(param, f"cannot be read ({reason})", repr(text)) from None
    if values.size == 0:
        raise ConvArithError(param, "holds no numbers", repr(text))
    if not bool(np.isfinite(values).all()):
        raise ConvArithError(param, "must hold finite numbers (no NaN or infinity)", repr(text))
    return values


def check_distinct(params: Sequence[tuple[str, Path | None]]) -> None:
    """Two outputs of one command must not be the same file.

    >>> check_distinct([("markdown", Path("a.md")), ("html", Path("a.md"))])
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: html: is the same file as --markdown; got 'a.md'
    """
    seen: dict[Path, str] = {}
    for param, path in params:
        if path is None:
            continue
        key = Path(os.path.abspath(path))
        if key in seen:
            raise ConvArithError(param, f"is the same file as --{seen[key]}", repr(str(path)))
        seen[key] = param
