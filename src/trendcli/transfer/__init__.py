"""Transferability: counts, streaming evaluation, matrices, strength sweeps, outputs."""
