"""RecLLM-Adapter: adapt pretrained language models to sequential recommendation."""

__version__ = "0.1.0"
