"""A learned vector per item age group, added to each item's embedding.

An ID-only sequential model learns which items are new from the sequences they end; an
item's text does not say when it appeared. Grouping the items by their first training
interaction (:func:`recllm.data.splits.age_groups`) and adding one trained vector per
group gives any item embedding that signal. The groups are a buffer saved with the
weights, so serving scores with the groups training used.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recllm.data.splits import age_groups


def group_count_problems(n_groups: int) -> list[str]:
    """What is wrong with an ``item_age_buckets`` setting (0 is off)."""
    if n_groups < 0 or n_groups == 1:
        return [f"item_age_buckets must be 0 (off) or >= 2, got {n_groups}"]
    return []


class ItemAgeMixin(nn.Module):
    """For models whose item table has ``pad_id + 1`` rows (the last is padding): call
    :meth:`_add_item_age` in ``__init__``, :meth:`set_item_ages` before training, and
    add :meth:`age_vectors` to the item embeddings."""

    item_age: nn.Embedding | None
    age_bucket: torch.Tensor | None  # (N + 1,) long: each item's group

    def _add_item_age(self, n_items: int, width: int, n_groups: int) -> None:
        """Register the group vectors (``n_groups`` of ``width``; 0: off) and the groups
        (until :meth:`set_item_ages`, every item counts as newest)."""
        self.item_age = nn.Embedding(n_groups, width) if n_groups else None
        newest = torch.full((n_items + 1,), n_groups - 1) if n_groups else None
        self.register_buffer("age_bucket", newest)

    @torch.no_grad()
    def set_item_ages(self, first_seen: np.ndarray) -> None:
        """Group the items (N,) by ``first_seen``, the time of each one's first training
        interaction (NaN: none), into groups of equally many of the items seen, oldest
        first; an item never seen joins the newest."""
        assert self.item_age is not None and self.age_bucket is not None, "item age is off"
        n_items = len(self.age_bucket) - 1
        if len(first_seen) != n_items:
            raise ValueError(f"first_seen has {len(first_seen)} items, the catalogue {n_items}")
        n_groups = self.item_age.num_embeddings
        groups = age_groups(first_seen, [k / n_groups for k in range(1, n_groups)])
        self.age_bucket[:n_items] = torch.from_numpy(groups)

    def _grow_item_ages(self, n_new: int) -> None:
        """Insert ``n_new`` items before the padding row, in the newest group."""
        assert self.item_age is not None and self.age_bucket is not None, "item age is off"
        newest = torch.full((n_new,), self.item_age.num_embeddings - 1)
        self.age_bucket = torch.cat([self.age_bucket[:-1], newest, self.age_bucket[-1:]])

    def age_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The group vector of each of ``items`` (any shape; None: the whole table,
        padding row included)."""
        assert self.item_age is not None and self.age_bucket is not None, "item age is off"
        groups = self.age_bucket if items is None else self.age_bucket[items]
        return self.item_age(groups)
