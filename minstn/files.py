"""Files minstn writes and reads: atomic writes, and one error for a bad file.

:func:`atomic_write` writes through a temporary file beside the target and then
``os.replace``-s it into place, so a run killed while saving leaves the previous file
intact, never a half-written one. The temporary file is created with ``os.open`` and
mode 0o666, which the umask then trims exactly as it trims ``open(path, "w")``: a
checkpoint gets the same permissions as the figures beside it (0644 under the usual
umask 022), not the 0600 of ``tempfile.mkstemp``.

:class:`FileFormatError` is what every reader of minstn (checkpoints, IDX files) raises
when a file's *content* is wrong: truncated, corrupt, of another kind, or missing a
field. Its message starts with the file's path and says what is wrong; the file
system's own errors (missing file, no permission) stay ``OSError``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FileFormatError", "atomic_write"]


class FileFormatError(ValueError):
    """The content of ``path`` is not what minstn expects; the message says what."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # so that it survives pickling (a child process's error reaching its parent)
        return type(self), (self.path, self.problem)


def _new_temporary(path: Path) -> tuple[int, Path]:
    for _ in range(100):
        tmp = path.with_name(f"{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # another writer picked the same name: draw again
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(binary_file)`` on a temporary file, then move it onto ``path``.

    If ``write`` raises, ``path`` is untouched and the temporary file is removed.
    """
    path = Path(path)
    fd, tmp = _new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
