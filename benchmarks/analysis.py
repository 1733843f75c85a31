"""Model analysis speed: a ResNet-50 (written out here, 176 operations) analysed from its shapes,
against ``torchinfo.summary`` on the same model at 224², both in the same run.

Goals (issue 9): the analysis in ≤ 0.5 s after the model is built and ≥ 10× faster than
torchinfo; peak memory independent of the input size (nothing is allocated at the input's size).
Each tool is timed after one warm-up call (the first trace imports PyTorch's meta kernels, the
first summary its hooks; both first calls are reported too), convarith's caches of bound layers,
axis maps and findings emptied before every call. 1 thread. ``analyze`` works out a layer's own
findings and the overlap profiles of nodes that are neither outputs nor upsamplings when they are
asked for; ``analyze + to_dict()`` (every node's findings, a JSON report) is timed too.

    python benchmarks/analysis.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, median, pin_threads


def resnet50():  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, mid: int, stride: int, down: bool) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
            self.conv2, self.bn2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid)
            self.conv3, self.bn3 = nn.Conv2d(mid, mid * 4, 1, bias=False), nn.BatchNorm2d(mid * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = (
                nn.Sequential(nn.Conv2d(cin, mid * 4, 1, stride, bias=False), nn.BatchNorm2d(mid * 4)) if down else None
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            return self.relu(self.bn3(self.conv3(y)) + identity)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
            self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            stages, cin = [], 64
            for i, (mid, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
                blocks = []
                for j in range(n):
                    blocks.append(Bottleneck(cin, mid, (1 if i == 0 else 2) if j == 0 else 1, j == 0))
                    cin = mid * 4
                stages.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(2048, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet50().eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    pin_threads(1)
    import torch

    torch.set_num_threads(1)
    import torchinfo

    from convarith.analysis import analyze as _analyze
    from convarith.analysis.fields import clear_caches

    def analyze(model, shape):  # type: ignore[no-untyped-def]
        clear_caches()  # a cold analysis each time: only a model's repeated blocks share work
        return _analyze(model, shape)

    model = resnet50()
    shape = (1, 3, 224, 224)
    start = time.perf_counter()
    report = analyze(model, shape)
    first_ours = time.perf_counter() - start
    start = time.perf_counter()
    torchinfo.summary(model, input_size=shape, verbose=0)
    first_theirs = time.perf_counter() - start
    times = interleaved(
        {
            "convarith": lambda: analyze(model, shape),
            "torchinfo": lambda: torchinfo.summary(model, input_size=shape, verbose=0),
            "convarith, JSON": lambda: analyze(model, shape).to_dict(),
        },
        args.repeats,
    )
    ours, theirs = median(times["convarith"]), median(times["torchinfo"])
    everything = median(times["convarith, JSON"])
    peaks = {}
    for size in (224, 1024):
        tracemalloc.start()
        analyze(model, (1, 3, size, size))
        peaks[size] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    ratio = theirs / ours
    print(
        f"ResNet-50 ({len(report.nodes)} operations, {report.parameters:,} weights), 1 thread, median of {args.repeats}"
    )
    print(f"  convarith analyze at 224²     {ours * 1000:7.1f} ms   (first call {first_ours * 1000:.0f} ms)")
    print(f"                                goal ≤ 500 ms: {'met' if ours <= 0.5 else 'MISSED'}")
    print(f"  torchinfo.summary at 224²     {theirs * 1000:7.1f} ms   (first call {first_theirs * 1000:.0f} ms)")
    print(f"  speed-up                      {ratio:7.1f}×    goal ≥ 10×: {'met' if ratio >= 10 else 'MISSED'}")
    print(
        f"  analyze + to_dict() at 224²   {everything * 1000:7.1f} ms   ({theirs / everything:.1f}× torchinfo; "
        "every node's findings, which a report asks for and analyze() leaves until then)"
    )
    print(
        f"  peak traced memory, analysis  {peaks[224]:7.1f} MB at 224², {peaks[1024]:.1f} MB at 1024² "
        f"(an input of 1024² alone is {3 * 1024 * 1024 * 4 / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
