"""Utilities with PyTorch's names: :mod:`minstn.utils.data` (``Dataset``, ``TensorDataset``, ``DataLoader``)."""

from . import data

__all__ = ["data"]
