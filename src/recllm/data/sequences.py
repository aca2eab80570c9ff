"""Per-user sequences in compressed form (CSR-like), the exchange format between splits,
batching and evaluation.

A chronological interactions frame becomes three flat arrays plus ``indptr``: user
``u``'s items are ``items[indptr[u]:indptr[u + 1]]``, oldest first. This keeps
20M interactions in a few hundred MB and makes per-user slicing O(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class UserSequences:
    """Chronological item sequences of ``n_users`` users (some may be empty)."""

    indptr: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (nnz,) int32
    weights: np.ndarray  # (nnz,) float32

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, n_users: int) -> UserSequences:
        """Build from a frame sorted by user then time (as preprocessing leaves it)."""
        users = frame["user"].to_numpy()
        if len(users) > 1 and (np.diff(users) < 0).any():
            raise ValueError("interactions must be sorted by user (use preprocess.chronological)")
        counts = np.bincount(users, minlength=n_users) if len(users) else np.zeros(n_users, int)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        weights = (
            frame["weight"].to_numpy(dtype=np.float32)
            if "weight" in frame.columns
            else np.ones(len(frame), dtype=np.float32)
        )
        return cls(indptr, frame["item"].to_numpy(dtype=np.int32), weights)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def items_of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def weights_of(self, user: int) -> np.ndarray:
        return self.weights[self.indptr[user] : self.indptr[user + 1]]

    def users_with_items(self) -> np.ndarray:
        return np.flatnonzero(self.lengths > 0)

    def rows_of(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For a batch of users: (row index in the batch, item) of all their entries."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        counts = ends - starts
        rows = np.repeat(np.arange(len(users)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self.items[np.repeat(starts, counts) + offsets]
