"""Wall time and memory of the pictures: small GIFs, the gallery, and the two acceptance runs.

Goals: one GIF of a 3×3 kernel over a 5×5 input in ≤ 0.3 s (issue 4); the whole gallery in ≤ 10 s
(issue 4); a 40×40-input, 3×3-kernel numeric GIF in ≤ 1 s, build + compose + write (issue 7); a
64 → 64-channel 8×8 animation (3×3 kernel, 2304 frames) in ≤ 2 s and ≤ 300 MB peak (issue 7).
Each acceptance run is timed in-process per stage (build the frame model, compose the scene,
write the GIF), with its process time and the load average beside the wall time; the memory as
tracemalloc's peak of Python allocations (Pillow's images included) and the process's peak
resident size; 1 thread, and for a large GIF the LZW helper process on a second core (its process
time is shown apart; ``--in-process`` keeps every GIF in one process, to compare).

    python benchmarks/render.py [--repeats 15] [--gallery-repeats 3] [--big-repeats 3] [--skip-gallery]
        [--in-process] [--floors]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).parent))
from _common import median, pin_threads

if TYPE_CHECKING:
    from PIL import Image

    from convarith.render.frames import Animation


def _children() -> float:
    """Process time of the reaped child processes so far (the GIF writer's LZW helper)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stages(make, out: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from convarith.render import compose, write

    cpu, helper = time.process_time(), _children()
    start = time.perf_counter()
    anim = make()
    built = time.perf_counter()
    scene = compose(anim)
    composed = time.perf_counter()
    write(scene, out)
    written = time.perf_counter()
    return {
        "build": built - start,
        "compose": composed - built,
        "write": written - composed,
        "total": written - start,
        "cpu": time.process_time() - cpu,
        "helper": _children() - helper,
        "frames": len(scene.frames),
        "bytes": out.stat().st_size,
    }


def _acceptance(name: str, make, goal_s: float, goal_mb: float | None, repeats: int, out: Path) -> None:  # type: ignore[no-untyped-def]
    slug = "".join(ch if ch.isalnum() else "_" for ch in name)
    runs = [_stages(make, out / f"{slug}{n}.gif") for n in range(repeats)]
    tracemalloc.start()
    _stages(make, out / f"{slug}-mem.gif")
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    m = {key: median([r[key] for r in runs]) for key in ("build", "compose", "write", "total", "cpu", "helper")}
    verdict = "met" if m["total"] <= goal_s else "MISSED"
    print(
        f"  {name:<34} {m['total']:6.2f} s  (build {m['build']:.2f}, compose {m['compose']:.2f}, "
        f"write {m['write']:.2f}; {runs[0]['frames']:.0f} frames, {runs[0]['bytes'] / 1e6:.1f} MB)  "
        f"goal ≤ {goal_s:g} s: {verdict}"
    )
    # process time too: on a shared machine it moves less with the load than the wall time does
    helper = f" (+ {m['helper']:.2f} s in the LZW helper process)" if m["helper"] else ""
    print(f"  {'':<34} {m['cpu']:6.2f} s process time{helper}, load {os.getloadavg()[0]:.1f}")
    if goal_mb is not None:
        print(f"  {'':<34} peak {peak:6.0f} MB traced  goal ≤ {goal_mb:g} MB: {'met' if peak <= goal_mb else 'MISSED'}")
    else:
        print(f"  {'':<34} peak {peak:6.0f} MB traced")


Rectangles = list[tuple[tuple[int, int, int, int], "Image.Image"]]
"""A GIF's frames as the writer hands them to the encoder: each changed rectangle and its pixels."""


def _drawn(make: Callable[[], Animation]) -> tuple[float, Rectangles, int | None]:
    """The GIF writer's drawing alone (build, compose, palette, every frame's changed rectangle cut out
    and its bytes taken), no encoding: its wall time, the rectangles, the transparent index."""
    from PIL import GifImagePlugin

    from convarith.render import compose
    from convarith.render.writers import _free_index, _rectangles

    start = time.perf_counter()
    parts: Rectangles = []
    for box, image in _rectangles(compose(make())):
        image.tobytes()  # what handing it to the encoder costs first
        parts.append((box, image))
    elapsed = time.perf_counter() - start
    header, _ = GifImagePlugin.getheader(parts[0][1], info={"loop": 0, "duration": 500})
    return elapsed, parts, _free_index(parts[0][1], header)


def _encoded(parts: Rectangles, transparent: int | None, size: tuple[int, int], helper: bool) -> float:
    """The GIF writer's encoding alone, of rectangles drawn already (the transparent pixels found,
    LZW-encoded; with the helper process, or in this one)."""
    from convarith.render._lzw import Encoder

    start = time.perf_counter()
    with Encoder[int](helper) as encoder:
        if transparent is not None:
            encoder.page(*size, transparent)
        for n, (box, image) in enumerate(parts):
            encoder.put(image, n, box[:2])
        list(encoder.finish())
    return time.perf_counter() - start


def _floors(make: Callable[[], Animation], repeats: int) -> None:
    """Where a large GIF's time goes: its drawing alone and its encoding alone. The writer overlaps
    them on two cores; neither can be shorter than its floor, nor the whole than their sum / 2."""
    drawn: list[float] = []
    parts: Rectangles = []
    transparent = None
    for _ in range(repeats):
        elapsed, parts, transparent = _drawn(make)
        drawn.append(elapsed)
    first = parts[0][1]
    pixels = sum(image.size[0] * image.size[1] for _, image in parts)
    helped = [_encoded(parts, transparent, first.size, True) for _ in range(repeats)]
    alone = [_encoded(parts, transparent, first.size, False) for _ in range(repeats)]
    print(f"  {'':<34} drawing alone {median(drawn):.2f} s (no encoding, best {min(drawn):.2f});")
    print(
        f"  {'':<34} encoding alone ({pixels / 1e6:.0f} Mpx drawn already) {median(helped):.2f} s with the helper, "
        f"{median(alone):.2f} s in one process"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--gallery-repeats", type=int, default=3)
    parser.add_argument("--big-repeats", type=int, default=3)
    parser.add_argument("--skip-gallery", action="store_true")
    parser.add_argument("--in-process", action="store_true", help="no LZW helper process (as on one core)")
    parser.add_argument(
        "--floors", action="store_true", help="also time the 40×40 GIF's drawing alone and its encoding alone"
    )
    args = parser.parse_args()
    pin_threads(1)
    if args.in_process:
        from convarith.render import _lzw

        _lzw.cores = lambda: 1
    from convarith import Layer
    from convarith.render import animate, build_animation, gallery
    from convarith.render.gallery_items import GALLERY

    small = Layer("conv2d", kernel_size=3)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        animate(small, (5, 5), out / "warm.gif")  # imports, font cache
        gif_times, svg_times = [], []
        for n in range(args.repeats):
            start = time.perf_counter()
            animate(small, (5, 5), out / f"a{n}.gif")
            gif_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            animate(small, (5, 5), out / f"a{n}.svg")
            svg_times.append(time.perf_counter() - start)
        gif, svg = median(gif_times), median(svg_times)
        helper = "in one process" if args.in_process else "large GIFs LZW-encoded by a helper process too"
        print(f"pictures, 1 thread, {helper} (median of {args.repeats} small runs, {args.big_repeats} acceptance runs)")
        verdict = "met" if gif <= 0.3 else "MISSED"
        print(f"  one 5×5/3×3 GIF (9 frames)         {gif * 1000:7.1f} ms   goal ≤ 300 ms: {verdict}")
        print(f"  one 5×5/3×3 animated SVG           {svg * 1000:7.1f} ms")
        if not args.skip_gallery:
            gallery_times = []
            for n in range(args.gallery_repeats):
                start = time.perf_counter()
                written = gallery(out / f"gallery{n}")
                gallery_times.append(time.perf_counter() - start)
            frames = sum(len(item.scene().frames) for item in GALLERY)
            whole = median(gallery_times)
            print(
                f"  whole gallery ({len(written) - 1} files, {frames} frames) {whole:6.2f} s    "
                f"goal ≤ 10 s: {'met' if whole <= 10 else 'MISSED'}"
            )
        _acceptance(
            "40×40/3×3 numeric GIF (guide)",
            lambda: build_animation(small, (40, 40), numeric=True),
            1.0,
            None,
            args.big_repeats,
            out,
        )
        _acceptance(
            "64→64 channels, 8×8/3×3 GIF",
            lambda: build_animation(Layer("conv2d", 64, 64, kernel_size=3), (8, 8)),
            2.0,
            300.0,
            args.big_repeats,
            out,
        )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"  process peak resident size         {peak_rss:7.0f} MB")
    if args.floors:  # last: it holds every rectangle of the 40×40 GIF at once
        print("  40×40/3×3 numeric GIF (guide), apart:")
        _floors(lambda: build_animation(small, (40, 40), numeric=True), args.big_repeats)


if __name__ == "__main__":
    main()
