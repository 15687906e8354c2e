"""Adversarial sets: attack orchestration and the HDF5 store."""
