"""Datasets and a batch iterator with PyTorch's names: ``from minstn.utils.data import DataLoader``.

    dataset = TensorDataset(mt.from_numpy(images), mt.from_numpy(labels))
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    for data, target in loader:          # Tensors of 64 images and 64 labels
        ...

A :class:`Dataset` is anything with ``__getitem__`` and ``__len__``; :class:`DataLoader`
draws the indices of each epoch (shuffled with the shared generator of ``mt.manual_seed``,
so a seeded run repeats), and stacks the samples of a batch into Tensors
(:func:`default_collate`). A :class:`TensorDataset` is sliced directly, one gather per
batch instead of one item at a time. Everything runs in the calling process.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import Tensor, array_of
from ..random import generator

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]


class Dataset:
    """Base class: subclasses define ``__getitem__(index)`` and ``__len__()``."""

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no __getitem__")

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no __len__")


class TensorDataset(Dataset):
    """Samples ``(t[i] for t in tensors)``: the tensors share their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t), _copy=False) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) > 1:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ValueError(f"TensorDataset: the tensors need the same first dimension, got shapes {shapes}")

    def __getitem__(self, index):
        return tuple(Tensor(t.data[index]) for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


def default_collate(samples: list):
    """Stack a list of samples into a batch, field by field, as PyTorch's default collate:
    Tensors and arrays are stacked along a new first axis, Python ints become an int64
    Tensor, floats a float64 one; tuples, lists and dicts are collated per field."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate(list(field)) for field in zip(*samples))
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (Tensor, np.ndarray, np.generic)):
        return Tensor(np.stack([np.asarray(array_of(s)) for s in samples]), _copy=False)
    if isinstance(first, bool):
        return Tensor(np.array(samples, dtype=bool), _copy=False)
    if isinstance(first, numbers.Integral):
        return Tensor(np.array(samples, dtype=np.int64), _copy=False)
    if isinstance(first, numbers.Real):
        return Tensor(np.array(samples, dtype=np.float64), _copy=False)
    return samples


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``, PyTorch's arguments.

    ``shuffle=True`` draws a new order at every ``iter()`` (every epoch) from ``generator``
    (a NumPy Generator; default: the shared one, seeded by ``mt.manual_seed``).
    ``drop_last`` drops a last, smaller batch. ``num_workers`` and ``pin_memory`` are accepted
    for PyTorch programs and have no effect: samples are loaded in this process, on the CPU.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn=None, generator=None, num_workers: int = 0, pin_memory: bool = False):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.generator, self.num_workers, self.pin_memory = generator, num_workers, pin_memory

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return (self.generator or generator()).permutation(n)

    def __iter__(self):
        order = self._order()
        if self.batch_size is None:  # no batching: one sample at a time, as in PyTorch
            for i in order:
                yield self.dataset[int(i)]
            return
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                return
            if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
                yield tuple(Tensor(t._array[index], _copy=False) for t in self.dataset.tensors)  # one gather each
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in index])

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
