"""Serving: the Recommender API over a bundle, its event store, and the HTTP service."""
