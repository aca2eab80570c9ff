"""Knowledge distillation: a compact student trained from a RecLLM-Adapter teacher."""
