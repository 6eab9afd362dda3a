"""Argument checking shared by every public function.

Every public entry point converts its inputs through these helpers so that bad input raises a
``ValueError`` that names the argument, the expected shape and the shape received, long before a
compiled kernel sees it.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "as_array",
    "as_points",
    "as_matrix",
    "as_mask",
    "as_weights",
    "check_positive",
    "check_probability",
    "flatten_batch",
]


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def as_array(name: str, a, *, dtype=np.float64, tail: tuple = (), min_ndim: int = 0,
             finite: bool = False) -> np.ndarray:
    """Convert ``a`` to a contiguous array of ``dtype`` whose trailing dims equal ``tail``.

    ``tail`` entries of ``None`` accept any size. Raises ``ValueError`` naming ``name`` when ``a``
    is not numeric, has the wrong trailing shape, has fewer than ``min_ndim`` dims, or (with
    ``finite=True``) holds NaN or inf.
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds
        raise ValueError(f"{name}: could not convert to an array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected a real array, got dtype {arr.dtype}")
    want = "(..., " + ", ".join("*" if s is None else str(s) for s in tail) + ")" if tail else "(...)"
    if arr.ndim < max(len(tail), min_ndim):
        raise ValueError(f"{name}: expected shape {want} with at least {max(len(tail), min_ndim)} "
                         f"dims, got shape {_shape_str(arr.shape)}")
    if tail:
        got = arr.shape[arr.ndim - len(tail):]
        for g, w in zip(got, tail):
            if w is not None and g != w:
                raise ValueError(f"{name}: expected shape {want}, got shape {_shape_str(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite, got NaN or inf (shape {_shape_str(arr.shape)})")
    return arr


def as_points(name: str, x, dim: int = 2, *, dtype=np.float64) -> np.ndarray:
    """Points shaped ``(..., N, dim)`` as a contiguous float array (NaN allowed: it marks missing)."""
    return as_array(name, x, dtype=dtype, tail=(None, dim))


def as_matrix(name: str, a, rows: int, cols: int, batch_shape: tuple | None = None,
              *, dtype=np.float64) -> np.ndarray:
    """A finite ``(..., rows, cols)`` matrix; broadcast to ``batch_shape + (rows, cols)`` if given."""
    arr = as_array(name, a, dtype=dtype, tail=(rows, cols), finite=True)
    if batch_shape is not None:
        try:
            arr = np.ascontiguousarray(np.broadcast_to(arr, tuple(batch_shape) + (rows, cols)))
        except ValueError:
            raise ValueError(f"{name}: shape {_shape_str(arr.shape)} does not broadcast to "
                             f"{_shape_str(tuple(batch_shape) + (rows, cols))}") from None
    return arr


def as_mask(name: str, mask, shape: tuple) -> np.ndarray:
    """A boolean mask broadcast to ``shape``; ``None`` means all True."""
    if mask is None:
        return np.ones(shape, dtype=np.bool_)
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name}: expected a bool array of shape {_shape_str(shape)}, "
                             f"got dtype {arr.dtype}")
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"{name}: expected a bool array (or 0/1), got other values")
        arr = arr.astype(np.bool_)
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, shape))
    except ValueError:
        raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got shape "
                         f"{_shape_str(arr.shape)}") from None


def as_weights(name: str, w, shape: tuple) -> np.ndarray:
    """Non-negative finite float weights broadcast to ``shape``; ``None`` means all ones."""
    if w is None:
        return np.ones(shape, dtype=np.float64)
    arr = as_array(name, w)
    try:
        arr = np.ascontiguousarray(np.broadcast_to(arr, shape), dtype=np.float64)
    except ValueError:
        raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got shape "
                         f"{_shape_str(np.shape(w))}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: weights must be finite and non-negative")
    return arr


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite positive scalar (or non-negative with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a finite {'non-negative' if allow_zero else 'positive'} "
                         f"number, got {value!r}")
    return v


def check_probability(name: str, value) -> float:
    """A number strictly between 0 and 1."""
    v = check_positive(name, value)
    if not v < 1.0:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
    return v


def flatten_batch(a: np.ndarray, tail_ndim: int) -> tuple[np.ndarray, tuple]:
    """Reshape ``(*batch, *tail)`` to ``(B, *tail)``; returns the array and ``batch`` shape."""
    batch = a.shape[:a.ndim - tail_ndim]
    n = int(np.prod(batch, dtype=np.int64))   # explicit: -1 is ambiguous for empty arrays
    return np.ascontiguousarray(a.reshape((n,) + a.shape[a.ndim - tail_ndim:])), batch
