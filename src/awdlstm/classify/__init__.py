"""Text classification on a language model's encoder (ULMFiT)."""
