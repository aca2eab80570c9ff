"""RecLLM-Adapter: adapt pretrained language models to sequential recommendation.

``from recllm import Recommender`` gives the serving API (:mod:`recllm.serve.api`); it is
imported on first use, so ``import recllm`` stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Filters", "Recommender", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Recommender", "Filters"):
        from recllm.serve import api

        return getattr(api, name)
    raise AttributeError(f"module 'recllm' has no attribute {name!r}")
