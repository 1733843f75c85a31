"""NumPy reference operators, matrix-free operators and the sparse matrix C: every configuration, exact.

Every function takes a :class:`~convarith.Layer` or :class:`~convarith.BoundLayer` (layer-first:
the layer's own rules, whatever the mathematics defines is computed) or an op name with PyTorch's
keywords (PyTorch's rules). :mod:`.matrix` builds C, :mod:`.reference` computes the ops by several
routes, :mod:`.operator` wraps a layer as a SciPy ``LinearOperator``; :mod:`.kernels` holds the
numeric kernels they share, :mod:`.routes` the fast routes (FFT, phase decomposition, depthwise taps)
and ``method="auto"``'s cost model, and :mod:`.binding` turns the three forms of a layer into one
bound layer.
"""
