"""Diagnostics: gradient flow, ablations, embeddings, run reports."""
