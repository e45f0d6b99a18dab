"""PyTorch's dtype names, as the NumPy dtypes that minstn's tensors hold.

``mt.tensor([1, 0, 0], dtype=mt.float)`` is ``mt.tensor(..., dtype=np.float32)``, and
``x.dtype == mt.float32`` compares as in PyTorch. The short names are PyTorch's too:
``float`` is float32, ``double`` float64, ``long`` int64, ``int`` int32, ``half`` float16.
"""

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 - PyTorch's name (torch.float)
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int32 = int = np.dtype(np.int32)  # noqa: A001 - PyTorch's name (torch.int)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 - PyTorch's name (torch.bool)

__all__ = ["float16", "half", "float32", "float", "float64", "double", "uint8", "int32", "int", "int64", "long",
           "bool"]
