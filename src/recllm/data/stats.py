"""Dataset statistics (``recllm data stats``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from recllm.data.schema import Dataset

PERCENTILES = (5, 25, 50, 75, 95, 99)


def dataset_stats(dataset: Dataset) -> dict[str, Any]:
    """Users, items, interactions, density and sequence-length percentiles.

    ``items`` counts items with at least one interaction; ``items_listed`` counts the
    rows of the item table (catalogues may list items nobody rated).
    """
    frame = dataset.interactions
    n_users = int(frame["user"].nunique())
    n_items = int(frame["item"].nunique())
    lengths = np.bincount(frame["user"].to_numpy())
    lengths = lengths[lengths > 0]
    stats: dict[str, Any] = {
        "name": dataset.name,
        "users": n_users,
        "items": n_items,
        "items_listed": dataset.n_items,
        "interactions": len(frame),
        "density": len(frame) / max(n_users * n_items, 1),
        "feedback": "implicit" if dataset.is_implicit else f"ratings {dataset.rating_scale}",
        "rows_without_timestamp": int(frame["timestamp"].isna().sum()),
        "rows_without_rating": int(frame["rating"].isna().sum()) if not dataset.is_implicit else 0,
        "sequence_length": {
            "min": int(lengths.min()) if len(lengths) else 0,
            "mean": float(lengths.mean()) if len(lengths) else 0.0,
            "max": int(lengths.max()) if len(lengths) else 0,
            **(
                {f"p{p}": float(np.percentile(lengths, p)) for p in PERCENTILES}
                if len(lengths)
                else {}
            ),
        },
        "text_template": dataset.text_template,
    }
    if "review" in frame.columns:
        stats["reviews_with_text"] = int((frame["review"].fillna("").str.len() > 0).sum())
    return stats
