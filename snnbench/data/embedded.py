"""Compatibility: the embedded digits now live in digits.py (shared by `digits` and `digits-dvs`)
and the `digits-dvs` reader in digits_dvs.py. Import from there."""

from snnbench.data.digits import ArrayDataset, digits_arrays, source_hash, split_indices

__all__ = ["ArrayDataset", "digits_arrays", "source_hash", "split_indices"]
