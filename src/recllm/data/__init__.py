"""Data: loaders for the public formats, the canonical dataset, preprocessing, splits, batching."""
