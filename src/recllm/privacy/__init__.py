"""Membership inference against our recommenders and the service (``recllm bench privacy``).

Was the interaction (user u, item i) in the training data? The attacks here read only
what a client of the service could read: top-k lists, with or without scores, for a
supplied history or a known user id. They work over a small target interface
(:mod:`recllm.privacy.targets`), so the same attack runs against a model in this process
and against the HTTP service; the defences (:mod:`recllm.privacy.defences`) change what
a target answers, and :mod:`recllm.privacy.metrics` turns membership signals into ROC
AUC and true-positive rates at low false-positive rates.
"""
