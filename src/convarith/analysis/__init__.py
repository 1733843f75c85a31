"""Model analysis: a real model in, every layer's geometry out (capability C6).

:func:`analyze` traces a model on shapes only — a PyTorch module, an ONNX file, a Keras model — into
a framework-neutral graph (:mod:`convarith.analysis.graph`) and reports, per node, the operation,
its shapes, parameters and multiply-adds, and its receptive field along each input axis through
transposed convolutions, upsampling and every branch; for the model, the input cells no output
reads, mismatched merges, the compounded checkerboard of stacked upsamplings, and (with
:func:`accepted_sizes`) the input sizes it accepts. Conventions: :mod:`convarith.analysis.model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .graph import Graph, Node
from .model import Analysis, NodeReport, analyze_graph

__all__ = ["Analysis", "Graph", "Node", "NodeReport", "analyze", "analyze_graph"]


def analyze(model: object, input_shape: Sequence[int], *, spatial: int | None = None, **options: Any) -> Analysis:
    """Trace ``model`` at ``input_shape`` (shapes only: nothing runs on data) and analyse it.

    ``model``: a ``torch.nn.Module``, a Keras model, an ONNX model, or a path (``.onnx``,
    ``.keras``, ``keras.applications.NAME``). ``input_shape`` in the model's own layout (Keras:
    channels last). ``spatial``: how many trailing axes of the input are spatial (default: all but
    batch and channels; a rank-2 input is a batch of sequences). ``options`` go to the tracer
    (PyTorch: ``extra_args`` after the input).

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 10, stride=5), torch.nn.Conv1d(4, 4, 3, stride=2))
    >>> report = analyze(net, (1, 1, 16000))
    >>> report[report.outputs[0]].fields[0].sizes, str(report[report.outputs[0]].fields[0].rate)
    ((20,), '10')
    """
    from ..frameworks.graphs import trace

    return analyze_graph(trace(model, input_shape, **options), spatial)
