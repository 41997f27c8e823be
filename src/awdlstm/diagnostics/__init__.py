"""Diagnostics the seeds teach (SPEC §7): gradient flow, ablations, embeddings, run reports."""
