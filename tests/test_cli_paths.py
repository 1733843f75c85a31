"""Output-path mistakes in every verb that writes: one line naming the flag, exit 2, nothing written anywhere.

Each case is an ordinary mistake that used to print a traceback or write files where they did not
belong (review of issue 7). Tests run as root, where permission bits do not stop writes; an
unwritable place is a path under a regular file, or under ``/proc``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cli_support import assert_refused, inside, run, snapshot

# verb → (arguments before the path, the flag, the arguments after, the suffix of a good file name)
WRITERS: dict[str, tuple[list[str], str, list[str], str]] = {
    "animate": (["animate", "conv2d", "-i", "4x4", "-k", "3"], "-o", [], ".gif"),
    "draw-matrix": (["draw-matrix", "conv2d", "-i", "4x4", "-k", "3"], "-o", [], ".png"),
    "matrix": (["matrix", "conv2d", "-i", "4x4", "-k", "3"], "-o", [], ".npz"),
    "explain-markdown": (["explain", "conv2d", "-i", "4x4", "-k", "3"], "--markdown", [], ".md"),
    "explain-html": (["explain", "conv2d", "-i", "4x4", "-k", "3"], "--html", [], ".html"),
    "tour": (["tour", "--backend", "numpy", "--no-pictures"], "--out", [], ""),
    "gallery": (["gallery", "--only", "no_padding_no_strides"], "--out", [], ""),
}
FOLDER_VERBS = {"tour", "gallery"}


def _setup(root: Path) -> None:
    (root / "afile.txt").write_text("user data\n")
    (root / "adir").mkdir()
    (root / "adir" / "keep.txt").write_text("user data\n")
    (root / "adir.gif").mkdir()
    (root / "adir.png").mkdir()
    (root / "adir.npz").mkdir()
    (root / "adir.md").mkdir()
    (root / "adir.html").mkdir()
    (root / "notes.txt").write_text("user data\n")


def _mistakes(verb: str, suffix: str) -> dict[str, str]:
    """Mistake → the path text typed (relative to the current folder, a temporary one)."""
    cases = {
        "empty": "",
        "root": "/",
        "missing-parent": f"missing/sub/out{suffix}",
        "under-a-file": f"afile.txt/out{suffix}",
        "proc": f"/proc/convarith-test{suffix}",
        "nul": f"out\0x{suffix}",
    }
    if verb in FOLDER_VERBS:
        cases["file-for-folder"] = "afile.txt"
        cases["current-folder"] = "."  # holds the user's own files
        cases["foreign-folder"] = "adir"
    else:
        cases["folder-for-file"] = f"adir{suffix}"
    return cases


_CASES = [(verb, mistake) for verb, spec in WRITERS.items() for mistake in _mistakes(verb, spec[3])]


@pytest.mark.parametrize(("verb", "mistake"), _CASES)
def test_output_path_mistakes_are_one_line_and_write_nothing(verb: str, mistake: str, tmp_path: Path) -> None:
    before_args, flag, after_args, suffix = WRITERS[verb]
    _setup(tmp_path)
    text = _mistakes(verb, suffix)[mistake]
    root_before = sorted(os.listdir("/"))
    before = snapshot(tmp_path)
    with inside(tmp_path):
        result = run(*before_args, flag, text, *after_args)
    assert_refused(result, flag)
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir("/")) == root_before


@pytest.mark.parametrize("text", ["frames", "adir", "out"])
def test_draw_matrix_never_writes_a_frame_sequence(text: str, tmp_path: Path) -> None:
    _setup(tmp_path)
    (tmp_path / "frames").mkdir()
    before = snapshot(tmp_path)
    with inside(tmp_path):
        err = assert_refused(run("draw-matrix", "conv2d", "-i", "4x4", "-k", "3", "-o", text), "-o")
    assert ".png or .svg" in err
    assert snapshot(tmp_path) == before


def test_animate_frames_go_only_into_a_new_or_empty_folder(tmp_path: Path) -> None:
    args = ["animate", "conv2d", "-i", "4x4", "-k", "3", "-o"]  # a 2×2 output: 4 frames
    _setup(tmp_path)
    with inside(tmp_path):
        assert_refused(run(*args, "."), "-o")  # the current folder holds the user's files
        assert_refused(run(*args, "adir"), "-o")
        assert_refused(run(*args, "afile.txt"), "-o")  # a file where a folder is needed
        assert_refused(run(*args, "frames.jpeg"), "-o")  # neither a known picture nor a folder
        first = run(*args, "frames")
        assert first.code == 0, first.err
        names = sorted(os.listdir(tmp_path / "frames"))
        assert len(names) == 4 and all(re.fullmatch(r"frame_\d+\.png", name) for name in names), names
        before = snapshot(tmp_path)
        assert "new or empty" in assert_refused(run(*args, "frames", "--frames", "svg"), "-o")  # the writers' rule
        assert snapshot(tmp_path) == before


def test_a_tour_or_gallery_folder_may_be_reused(tmp_path: Path) -> None:
    out = tmp_path / "g"
    for _ in range(2):
        result = run("gallery", "--only", "no_padding_no_strides", "--out", str(out))
        assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "no_padding_no_strides.gif"]


def test_unwritable_folder_without_root(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through permission bits; the /proc and under-a-file cases cover root")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_refused(run("matrix", "conv2d", "-i", "4x4", "-k", "3", "-o", str(locked / "c.npz")), "-o")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_two_outputs_of_explain_must_differ(tmp_path: Path) -> None:
    with inside(tmp_path):
        result = run("explain", "conv2d", "-i", "4x4", "-k", "3", "--markdown", "x.txt", "--html", "x.txt")
    assert "--markdown" in assert_refused(result, "--html")
    assert list(tmp_path.iterdir()) == []


def test_mp4_needs_the_video_extra_or_works(tmp_path: Path) -> None:
    import importlib.util

    result = run("animate", "conv1d", "-i", "4", "-k", "3", "-o", str(tmp_path / "a.mp4"))
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        assert "video" in assert_refused(result, "-o")
        assert list(tmp_path.iterdir()) == []
    else:
        assert result.code == 0, result.err
        assert (tmp_path / "a.mp4").stat().st_size > 0
