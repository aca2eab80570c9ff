"""Full-catalogue ranking metrics and the batched evaluator."""
