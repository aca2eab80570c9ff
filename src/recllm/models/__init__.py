"""Recommendation models: baselines here, the LM adapter in later modules."""
