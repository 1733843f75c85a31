"""The explorer: an interactive page (``convarith serve``) and notebook display of any layer.

The page draws what :func:`~convarith.web.payload.describe` computes; the server
(:mod:`convarith.web.app`, Starlette under uvicorn, optional extra ``web``) and the notebook widget
(:mod:`convarith.web.widget`, optional extra ``notebook``) only carry it. Nothing here is imported
by ``import convarith``.
"""
