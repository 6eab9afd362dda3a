"""Checks of scalar arguments, batch broadcasting and matrices before linear algebra.

Companions of :mod:`geometry.common.validate`: every failure is a ``ValueError`` (or
``TypeError`` for a wrong kind of object) whose message starts with the argument's name.

- :func:`check_int`, :func:`check_real`, :func:`check_choice`, :func:`check_seed` — scalars.
- :func:`batch_shape` — the common batch shape of several arrays, naming them when they do not
  broadcast.
- :func:`finite_rows`, :func:`safe_svd`, :func:`safe_eigh` — LAPACK's SVD can loop forever on
  inf/NaN and fails to converge on astronomically scaled matrices, so callers scale each matrix
  by its largest entry first and only decompose the finite ones; the others get an identity
  decomposition and ``ok = False``.
"""
from __future__ import annotations

import operator

import numpy as np

__all__ = ["check_int", "check_real", "check_choice", "check_seed", "batch_shape",
           "finite_rows", "safe_svd", "safe_eigh", "index_array"]


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (not bool) within ``[lo, hi]``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {value!r}") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name}: expected an integer in [{lo if lo is not None else '-inf'}, "
                         f"{hi if hi is not None else 'inf'}], got {v}")
    return int(v)


def check_real(name: str, value, lo: float | None = None, hi: float | None = None, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number within ``lo``/``hi`` (open ends with ``lo_open``/``hi_open``)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise TypeError(f"{name}: expected a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {value!r}") from None
    bad = not np.isfinite(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        rng = f"{'(' if lo_open else '['}{lo if lo is not None else '-inf'}, " \
              f"{hi if hi is not None else 'inf'}{')' if hi_open else ']'}"
        raise ValueError(f"{name}: expected a finite number in {rng}, got {value!r}")
    return v


def check_choice(name: str, value, choices) -> str:
    """One of ``choices`` (compared with ``==``)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_seed(name: str, seed) -> int:
    """A non-negative integer seed."""
    return check_int(name, seed, 0, None)


def index_array(name: str, idx, size: int) -> np.ndarray:
    """Integer index or sequence of indices into an axis of ``size`` → 1-D int array (negative
    indices count from the end)."""
    try:
        a = np.atleast_1d(np.asarray(idx))
    except Exception:   # noqa: BLE001 - ragged sequences etc.
        raise ValueError(f"{name}: expected joint indices, got {idx!r}") from None
    if a.size == 0 or a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected an integer index or a 1-D sequence of them, "
                         f"got {idx!r}")
    if np.any(a >= size) or np.any(a < -size):
        raise ValueError(f"{name}: index out of range for {size} joints: {a.tolist()}")
    return a.astype(np.int64)


def batch_shape(tails: dict, **arrays) -> tuple:
    """Broadcast batch shape of ``arrays`` (name → array) whose trailing ``tails[name]`` dims are
    the per-item shape. Raises ``ValueError`` naming the arrays when they do not broadcast."""
    shapes = {k: a.shape[:a.ndim - tails.get(k, 0)] for k, a in arrays.items()}
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        desc = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise ValueError(f"{'/'.join(arrays)}: batch shapes do not broadcast ({desc})") from None


def finite_rows(M: np.ndarray) -> np.ndarray:
    """``(...)`` bool: the matrix ``M (..., r, c)`` is all finite."""
    return np.all(np.isfinite(M), axis=(-2, -1))


def _scaled(M):
    """Each matrix divided by its largest finite magnitude; non-finite matrices → identity-like
    zeros and ``ok = False``."""
    ok = finite_rows(M)
    with np.errstate(all="ignore"):
        big = np.max(np.abs(np.where(ok[..., None, None], M, 0.0)), axis=(-2, -1), initial=0.0)
    big = np.where(big > 0, big, 1.0)
    Ms = np.where(ok[..., None, None], M / big[..., None, None], 0.0)
    return Ms, big, ok


def safe_svd(M: np.ndarray):
    """``U, S, Vt, ok`` of ``M (..., r, c)``: the SVD of each finite matrix (computed on the
    matrix scaled by its largest entry, ``S`` scaled back); non-finite matrices get the SVD of
    zero and ``ok = False``. Never loops forever and never raises ``LinAlgError``."""
    Ms, big, ok = _scaled(np.asarray(M, dtype=np.float64))
    try:
        U, S, Vt = np.linalg.svd(Ms)
    except np.linalg.LinAlgError:
        U, S, Vt, bad = _loop(np.linalg.svd, Ms)
        ok = ok & ~bad
    with np.errstate(over="ignore"):
        S = S * big[..., None]
    return U, S, Vt, ok


def safe_eigh(M: np.ndarray):
    """``w, V, ok`` of symmetric ``M (..., n, n)`` like :func:`safe_svd` (ascending ``w``)."""
    Ms, big, ok = _scaled(np.asarray(M, dtype=np.float64))
    try:
        w, V = np.linalg.eigh(Ms)
    except np.linalg.LinAlgError:
        w, V, bad = _loop(np.linalg.eigh, Ms)
        ok = ok & ~bad
    with np.errstate(over="ignore"):
        w = w * big[..., None]
    return w, V, ok


def _loop(fn, Ms):
    """Decompose one matrix at a time; the ones LAPACK rejects get the decomposition of 0."""
    flat = Ms.reshape((-1,) + Ms.shape[-2:])
    zero = fn(np.zeros(Ms.shape[-2:]))
    outs = [np.empty((flat.shape[0],) + np.shape(z)) for z in zero]
    bad = np.zeros(flat.shape[0], bool)
    for i, m in enumerate(flat):
        try:
            res = fn(m)
        except np.linalg.LinAlgError:
            res, bad[i] = zero, True
        for o, r in zip(outs, res):
            o[i] = r
    batch = Ms.shape[:-2]
    return (*(o.reshape(batch + o.shape[1:]) for o in outs), bad.reshape(batch))
