"""Recipes: the loops that compose data, models and evaluation (train, evaluate, ...)."""
