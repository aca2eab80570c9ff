"""The names ``model:`` takes in a training config, importable without torch (the report
reads them to label results files)."""

MODEL_NAMES = ("recllm-adapter", "sasrec", "bpr-mf", "lightgcn")
CF_MODELS = ("bpr-mf", "lightgcn")  # trained on (user, item) pairs, not on sequences
