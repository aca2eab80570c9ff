"""Bundles: the self-contained folder that serving loads (format, loading, components)."""
