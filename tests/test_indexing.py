"""The padding index map equals PyTorch's F.pad for every mode, size and (before, after), crops included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convarith import ConvArithError, ConvSpec
from convarith.ops.indexing import padded_source

MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@pytest.mark.parametrize("mode", list(MODES))
def test_index_map_and_refusals_match_f_pad(mode: str) -> None:
    checked = 0
    for size in range(1, 8):
        for before in range(-3, size + 2):
            for after in range(-3, size + 2):
                x = torch.arange(1, size + 1, dtype=torch.float64).reshape(1, 1, size)
                try:
                    ref = F.pad(x, (before, after), mode=MODES[mode])[0, 0].numpy()
                except (RuntimeError, NotImplementedError):
                    ref = None
                try:
                    spec = ConvSpec.create("conv1d", kernel_size=1, padding=((before, after),), padding_mode=mode)
                    spec.output_spatial((size,))
                    accepted = True
                except ConvArithError:
                    accepted = False
                if mode != "zeros" and ref is not None and size + min(before, 0) + min(after, 0) >= 1:
                    # PyTorch accepts mixed crop+pad that leaves nothing to wrap and returns
                    # uninitialised memory there; outside those, acceptance must agree.
                    assert accepted == (ref.size > 0), (size, before, after)
                if not accepted or ref is None:
                    continue
                source = padded_source(size, (before, after), mode)
                assert np.array_equal(np.where(source >= 0, source + 1, 0), ref), (size, before, after)
                checked += 1
    assert checked > 100
