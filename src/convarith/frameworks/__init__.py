"""Framework adapters: one module per framework, each imported only when it is used.

Nothing is imported eagerly: ``import convarith.frameworks`` never imports a framework, and a
missing or broken framework breaks only the module that needs it. Today:
:mod:`convarith.frameworks.torch` (PyTorch's real ops and autograd, the tour's backend).
"""

from __future__ import annotations

__all__: list[str] = []
