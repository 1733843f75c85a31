"""Wall time of the pictures: one 5×5/3×3 GIF, and the whole gallery.

Goals (issue 4): one GIF of a 3×3 kernel over a 5×5 input in ≤ 0.3 s; the whole gallery
(``convarith gallery``: every guide animation, the numeric figures, the extras, C images, overlap
maps, index.html) in ≤ 10 s on the 2-core development machine.

    python benchmarks/render.py [--repeats 15] [--gallery-repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import median, pin_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--gallery-repeats", type=int, default=3)
    args = parser.parse_args()
    pin_threads(1)
    from convarith.render import animate, gallery
    from convarith.render.gallery_items import GALLERY

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        animate("conv2d", (5, 5), out / "warm.gif", kernel_size=3)  # imports, font cache
        gif_times, svg_times = [], []
        for n in range(args.repeats):
            start = time.perf_counter()
            animate("conv2d", (5, 5), out / f"a{n}.gif", kernel_size=3)
            gif_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            animate("conv2d", (5, 5), out / f"a{n}.svg", kernel_size=3)
            svg_times.append(time.perf_counter() - start)
        gallery_times = []
        for n in range(args.gallery_repeats):
            start = time.perf_counter()
            written = gallery(out / f"gallery{n}")
            gallery_times.append(time.perf_counter() - start)
        frames = sum(len(item.scene().frames) for item in GALLERY)

    gif, svg, whole = median(gif_times), median(svg_times), median(gallery_times)
    print(f"pictures, 1 thread (median of {args.repeats} GIF/SVG runs, {args.gallery_repeats} gallery runs)")
    print(
        f"  one 5×5/3×3 GIF (9 frames)      {gif * 1000:8.1f} ms   goal ≤ 300 ms: {'met' if gif <= 0.3 else 'MISSED'}"
    )
    print(f"  one 5×5/3×3 animated SVG        {svg * 1000:8.1f} ms")
    print(
        f"  whole gallery ({len(written) - 1} files, {frames} frames) {whole:6.2f} s    "
        f"goal ≤ 10 s: {'met' if whole <= 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
