"""Compatibility: the static-image readers now live one per layout, in cifar.py and
tinyimagenet.py; what they share (ImageDataset, channel_stats) in images.py. Import from there."""

from snnbench.data.images import ImageDataset, channel_stats

__all__ = ["ImageDataset", "channel_stats"]
