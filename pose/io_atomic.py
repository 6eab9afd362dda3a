"""Atomic file output: write to a temporary name in the same folder, then rename.

An interrupted run (Ctrl-C, a killed worker, a full disk) leaves either the previous complete
file or the new complete one, never a truncated file under the final name.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary :class:`~pathlib.Path` beside ``path`` (same folder,
    same suffix, so writers that append a suffix such as ``np.savez`` keep it). On a clean exit
    the file is flushed to disk and renamed onto ``path`` (``os.replace``: atomic on POSIX);
    on an exception the temporary file is removed and ``path`` is left untouched.

    >>> with atomic_path("out/labels.npz") as tmp:
    ...     np.savez_compressed(tmp, a=a)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{path}: the writer produced no file at {tmp}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
