"""Readers of the native public dataset formats; each returns a canonical Dataset."""
