"""Find, download and load MNIST (or any data set in MNIST's IDX layout).

Where the files are looked for, in order:

1. ``data_dir``, when given;
2. ``$MINSTN_DATA``, when set;
3. the user cache folder, ``$XDG_CACHE_HOME/minstn/mnist`` (``~/.cache/minstn/mnist``).

Each file may be gzip-compressed (``t10k-images-idx3-ubyte.gz``) or not
(``t10k-images-idx3-ubyte``). Fashion-MNIST, KMNIST... use the same four names, so
they load the same way from their own folder.

When the files are missing and ``download=True``, the official gzip files are fetched
from public mirrors, checked against the official MD5 sums and moved into place
atomically (temporary file + ``os.replace``), so an interrupted or corrupted download
never leaves a file that looks valid.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..files import FileFormatError, atomic_write
from .idx import read_idx

__all__ = [
    "MNIST_FILES", "MNIST_MIRRORS", "MNISTNotFoundError", "DownloadError",
    "search_dirs", "find_mnist", "load_mnist", "download_mnist", "md5sum", "cache_dir", "split_files",
]

# split -> (images, labels): file name without .gz, official MD5 of the .gz file.
MNIST_FILES = {
    "train": (("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
              ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432")),
    "test": (("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
             ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c")),
}

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


class MNISTNotFoundError(FileNotFoundError):
    """MNIST files are not in any searched folder (and were not downloaded)."""


class DownloadError(OSError):
    """Every mirror failed (unreachable, or the MD5 did not match)."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/minstn`` or ``~/.cache/minstn``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minstn"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order: data_dir, $MINSTN_DATA, the cache folder."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    if os.environ.get("MINSTN_DATA"):
        dirs.append(Path(os.environ["MINSTN_DATA"]).expanduser())
    dirs.append(cache_dir() / "mnist")
    return dirs


def _split_names(split: str) -> tuple[str, str]:
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    (images, _), (labels, _) = MNIST_FILES[split]
    return images, labels


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    return None


def _find_split(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = [_find_file(folder, name) for name in _split_names(split)]
    return None if None in found else (found[0], found[1])


def find_mnist(data_dir: str | os.PathLike | None = None, split: str = "train") -> Path | None:
    """The first searched folder holding both files of ``split``, or None.

    Lets a command line say "MNIST not found; using the embedded glyph digits"
    without trying to download anything.
    """
    for folder in search_dirs(data_dir):
        if _find_split(folder, split) is not None:
            return folder
    return None


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, md5: str, opener: Callable) -> None:
    """Download ``url`` to ``dest`` through a temporary file in the same folder."""
    def download(out):
        digest = hashlib.md5()
        with opener(url) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:  # raising here leaves dest absent: it is either absent or complete
            raise DownloadError(f"{url}: MD5 {digest.hexdigest()} does not match the official {md5}")

    atomic_write(dest, download)


def _urlopen(url: str):
    return urllib.request.urlopen(url, timeout=30)


def download_mnist(folder: str | os.PathLike, split: str = "train",
                   mirrors: Sequence[str] = MNIST_MIRRORS, opener: Callable = _urlopen) -> Path:
    """Fetch the gzip files of ``split`` into ``folder``, trying each mirror in turn.

    ``mirrors`` are URL prefixes (``file://`` works, which is how the tests run it
    offline); ``opener(url)`` returns a readable context manager. Files already present
    are kept. Raises :class:`DownloadError` listing every failure.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in MNIST_FILES[split]:
        if _find_file(folder, name) is not None:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name + ".gz"
            try:
                _fetch(url, folder / (name + ".gz"), md5, opener)
                break
            except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors
                failures.append(f"  {url}: {err}")
        else:
            raise DownloadError(f"could not download {name}.gz:\n" + "\n".join(failures))
    return folder


def _not_found_message(split: str, dirs: list[Path]) -> str:
    names = " and ".join(f"{n}(.gz)" for n in _split_names(split))
    folders = "\n".join(f"  {d}" for d in dirs)
    return (f"MNIST {split} split not found. Put {names} in one of:\n{folders}\n"
            "(or pass data_dir=..., set $MINSTN_DATA, or call with download=True when online)")


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, mirrors: Sequence[str] = MNIST_MIRRORS,
               opener: Callable = _urlopen) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``.

    Searches :func:`search_dirs`; if nothing is found and ``download`` is true,
    downloads into the first of data_dir / $MINSTN_DATA / cache folder. Raises
    :class:`MNISTNotFoundError` (a FileNotFoundError) naming the folders and files
    when the data cannot be had, and :class:`~minstn.files.FileFormatError` (a
    ValueError) naming the file on malformed or inconsistent files.
    """
    _split_names(split)  # validate split before touching the disk
    dirs = search_dirs(data_dir)
    folder = find_mnist(data_dir, split)
    if folder is None:
        if not download:
            raise MNISTNotFoundError(_not_found_message(split, dirs))
        try:
            folder = download_mnist(dirs[0], split, mirrors, opener)
        except DownloadError as err:
            raise MNISTNotFoundError(_not_found_message(split, dirs) + f"\nDownload failed: {err}") from err
    image_path, label_path = _find_split(folder, split)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise FileFormatError(image_path, f"expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise FileFormatError(label_path, f"expected class indices (N,) >= 0, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise FileFormatError(image_path, f"has {len(images)} images but {label_path} has {len(labels)} labels")
    return images, labels.astype(np.int64)


def split_files(data_dir: str | os.PathLike | None = None, split: str = "train") -> dict[str, str]:
    """``{path: md5}`` of the image and label files of ``split`` that :func:`load_mnist` reads
    (empty when the split is not on disk): what identifies the data of a run."""
    folder = find_mnist(data_dir, split)
    if folder is None:
        return {}
    return {str(path): md5sum(path) for path in _find_split(folder, split)}
