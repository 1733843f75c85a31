"""The padding index map equals PyTorch's F.pad for every mode, size and (before, after), crops included,
and NumPy's np.pad for pads beyond what F.pad takes (repeated reflection, wrapping more than once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convarith import ConvArithError, Layer, output_shape
from convarith.ops.indexing import padded_source
from convarith.ops.kernels import pad

MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
NUMPY_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


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
                try:  # PyTorch's rules, through the keyword front door
                    output_shape("conv1d", (1, 1, size), kernel_size=1, padding=((before, after),), padding_mode=mode)
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
                assert np.array_equal(pad(x.numpy(), [(before, after)], mode)[0, 0], ref)
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("mode", list(MODES))
def test_layer_first_pads_beyond_f_pad_follow_np_pad(mode: str) -> None:
    """A layer pads by any amount: reflect reflects again and again, circular wraps again, as np.pad does."""
    checked = 0
    for size in range(1, 6):
        for before in range(0, 3 * size + 2):
            for after in range(0, 3 * size + 2):
                if mode == "reflect" and size == 1 and before + after:
                    continue  # np.pad refuses to reflect a single cell; the map repeats it
                x = np.arange(1.0, size + 1)
                expected = np.pad(x, (before, after), mode=NUMPY_MODES[mode])
                got = pad(x.reshape(1, 1, size), [(before, after)], mode)[0, 0]
                assert np.array_equal(got, expected), (size, before, after)
                Layer("conv1d", kernel_size=1, padding=[(before, after)], padding_mode=mode).bind((size,))
                checked += 1
    assert checked > 200


def test_circular_padding_needs_a_cell_left_after_its_crops() -> None:
    with pytest.raises(ConvArithError) as err:
        padded_source(3, (2, -3), "circular")
    assert err.value.param == "padding"
