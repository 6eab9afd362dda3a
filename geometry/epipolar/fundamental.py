"""Fundamental matrices: normalisation, minimal and non-minimal solvers, epipolar distances.

Convention: ``x2ᵀ F x1 = 0`` with pixels ``x (..., N, 2)``; every function is batched over the
leading dimensions. Returned matrices have unit Frobenius norm with their largest-magnitude entry
positive (F is defined up to scale and sign). Robust estimation lives in :mod:`geometry.ransac`.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _fundamental_kernels as fk
from ..common.checks import finite_rows, safe_eigh, safe_svd
from ..common.validate import as_mask, as_matrix, as_points, as_weights, flatten_batch

__all__ = [
    "hartley_normalize",
    "fundamental_7point",
    "fundamental_8point",
    "fundamental_least_squares",
    "sampson_distance",
    "symmetric_epipolar_distance",
]


def _pairs(x1, x2, n_exact=None):
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected the shape of x1 {x1.shape}, got shape {x2.shape}")
    if n_exact is not None and x1.shape[-2] != n_exact:
        raise ValueError(f"x1: expected shape (..., {n_exact}, 2), got shape {x1.shape}")
    return x1, x2


def hartley_normalize(x, mask=None):
    """Hartley's isotropic normalisation of ``x (..., N, 2)``.

    Translates the centroid of the valid points (mask True and finite) to the origin and scales
    their mean distance to √2. Returns ``xn (..., N, 2)`` and ``T (..., 3, 3)`` with
    ``[xn, 1]ᵀ = T [x, 1]ᵀ``. Problems with no spread (all points coincident, or none valid) get
    ``T = I``.
    """
    x = as_points("x", x)
    mask = as_mask("mask", mask, x.shape[:-1]) & np.all(np.isfinite(x), axis=-1)
    w = mask.astype(np.float64)
    cnt = w.sum(-1)
    xs = np.where(mask[..., None], x, 0.0)
    c = xs.sum(-2) / np.maximum(cnt, 1)[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        dx = xs - c[..., None, :]
        d = np.hypot(dx[..., 0], dx[..., 1]) * w   # no overflow for coordinates up to ~1e307
        mean = (d / np.maximum(cnt, 1)[..., None]).sum(-1)
    ok = (mean > 1e-12) & np.isfinite(mean) & np.all(np.isfinite(c), -1)
    s = np.where(ok, np.sqrt(2.0) / np.where(ok, mean, 1.0), 1.0)
    c = np.where(ok[..., None], c, 0.0)
    T = np.zeros(x.shape[:-2] + (3, 3))
    T[..., 0, 0] = T[..., 1, 1] = s
    T[..., :2, 2] = -s[..., None] * c
    T[..., 2, 2] = 1.0
    return (x - c[..., None, :]) * s[..., None, None], T


@njit(parallel=True, cache=True)
def _seven_batch(x1, x2, F, count):
    for b in prange(x1.shape[0]):
        idx = np.arange(7)
        q = np.empty((7, 4))
        s, c1x, c1y, c2x, c2y = fk.normalize_common(x1[b], x2[b], idx, 7, q)
        count[b] = 0
        if s == 0.0:
            continue
        models = np.empty((3, 9))
        ws = np.empty(fk.WS_SIZE)
        S = np.empty((3, 9, 9))
        k = fk.fit_seven_point(q, idx, models, ws, S)
        for j in range(k):
            fk.denormalize(models[j], s, c1x, c1y, c2x, c2y, F[b, j])
        count[b] = k


def fundamental_7point(x1, x2):
    """The 7-point solver: ``x1, x2 (..., 7, 2)`` → ``F (..., 3, 3, 3)``, ``count (...)``.

    ``F[..., k, :, :]`` for ``k < count`` are the (1 or 3) real rank-2 solutions, the rest zero.
    Count 0 marks a degenerate sample (coincident points, rank < 7) or NaN input.
    """
    x1, x2 = _pairs(x1, x2, 7)
    x1f, batch = flatten_batch(x1, 2)
    x2f, _ = flatten_batch(x2, 2)
    B = x1f.shape[0]
    F = np.zeros((B, 3, 3, 3))
    count = np.zeros(B, dtype=np.int64)
    ok = np.all(np.isfinite(x1f), axis=(1, 2)) & np.all(np.isfinite(x2f), axis=(1, 2))
    if ok.any():
        Fo = np.zeros((int(ok.sum()), 3, 3, 3))
        co = np.zeros(int(ok.sum()), dtype=np.int64)
        _seven_batch(x1f[ok], x2f[ok], Fo, co)
        F[ok], count[ok] = Fo, co
    return F.reshape(batch + (3, 3, 3)), count.reshape(batch)


def _design(x1n, x2n):
    u1, v1 = x1n[..., 0], x1n[..., 1]
    u2, v2 = x2n[..., 0], x2n[..., 1]
    one = np.ones_like(u1)
    return np.stack([u2 * u1, u2 * v1, u2, v2 * u1, v2 * v1, v2, u1, v1, one], axis=-1)


def _unit_sign(F):
    n = np.linalg.norm(F, axis=(-2, -1), keepdims=True)
    F = np.where(n > 0, F / np.where(n > 0, n, 1.0), 0.0)
    flat = F.reshape(F.shape[:-2] + (9,))
    big = np.take_along_axis(flat, np.abs(flat).argmax(-1)[..., None], -1)[..., 0]
    return F * np.where(big < 0, -1.0, 1.0)[..., None, None]


def fundamental_8point(x1, x2, mask=None, weights=None):
    """Normalised (weighted) 8-point algorithm with rank-2 projection.

    Args:
        x1, x2: ``(..., N, 2)`` pixels; NaN points are ignored. mask: ``(..., N)`` bool.
        weights: ``(..., N)`` non-negative weights of the algebraic residuals.
    Returns:
        ``F (..., 3, 3)`` minimising ``Σ wᵢ (x2ᵢᵀ F x1ᵢ)²`` in Hartley-normalised coordinates, and
        ``valid (...)``: at least 8 points with positive weight and a unique solution
        (the design matrix has rank 8). Invalid problems get ``F = 0``.
    """
    x1, x2 = _pairs(x1, x2)
    mask = as_mask("mask", mask, x1.shape[:-1])
    w = as_weights("weights", weights, x1.shape[:-1])
    use = mask & np.all(np.isfinite(x1), -1) & np.all(np.isfinite(x2), -1) & (w > 0)
    x1n, T1 = hartley_normalize(x1, use)
    x2n, T2 = hartley_normalize(x2, use)
    A = _design(np.where(use[..., None], x1n, 0.0), np.where(use[..., None], x2n, 0.0))
    A = A * np.where(use, np.sqrt(w), 0.0)[..., None]
    M = np.swapaxes(A, -1, -2) @ A
    evals, evecs, ok_e = safe_eigh(M)     # non-finite M (points that could not be normalised)
    Fn = evecs[..., :, 0].reshape(M.shape[:-2] + (3, 3))
    U, S, Vt, ok_s = safe_svd(Fn)
    S[..., 2] = 0.0
    Fn = U @ (S[..., :, None] * Vt)
    F = _unit_sign(np.swapaxes(T2, -1, -2) @ Fn @ T1)
    scale = np.maximum(evals[..., -1], 1e-300)
    valid = ((use.sum(-1) >= 8) & (evals[..., 1] > 1e-12 * scale) & (S[..., 1] > 1e-9 * S[..., 0])
             & ok_e & ok_s & finite_rows(F) & (np.abs(F).max((-2, -1), initial=0.0) > 0))
    return np.where(valid[..., None, None], F, 0.0), valid


@njit(parallel=True, cache=True)
def _refine_batch(F, x1, x2, use, iterations, out, valid):
    for b in prange(x1.shape[0]):
        N = x1.shape[1]
        idx = np.empty(N, dtype=np.int64)
        n = 0
        for i in range(N):
            if use[b, i]:
                idx[n] = i
                n += 1
        valid[b] = False
        if n < 8:
            continue
        q = np.empty((n, 4))
        s, c1x, c1y, c2x, c2y = fk.normalize_common(x1[b], x2[b], idx, n, q)
        if s == 0.0:
            continue
        # Fn = T2^-T F T1^-1 with T^-1 = [[1/s, 0, cx], [0, 1/s, cy], [0, 0, 1]]
        G = np.empty((3, 3))
        for r in range(3):
            G[r, 0] = F[b, r, 0] / s
            G[r, 1] = F[b, r, 1] / s
            G[r, 2] = F[b, r, 0] * c1x + F[b, r, 1] * c1y + F[b, r, 2]
        f = np.empty(9)
        for j in range(3):
            f[j] = G[0, j] / s
            f[3 + j] = G[1, j] / s
            f[6 + j] = c2x * G[0, j] + c2y * G[1, j] + G[2, j]
        ws = np.empty(fk.WS_SIZE)
        S = np.empty((3, 9, 9))
        sub = np.arange(n)
        if not fk.enforce_rank2(f, ws[240:243]):
            continue
        fk.refine_sampson(q, sub, n, f, ws, S, iterations)
        fk.denormalize(f, s, c1x, c1y, c2x, c2y, out[b])
        valid[b] = True


def fundamental_least_squares(x1, x2, mask=None, *, F0=None, iterations: int = 10):
    """Non-minimal least-squares F: minimises the summed squared Sampson distance.

    Starts from ``F0 (..., 3, 3)`` (default: :func:`fundamental_8point`) and runs
    ``iterations`` Levenberg–Marquardt steps in Hartley-normalised coordinates, keeping rank 2.
    All valid points are used (no robustness: pass RANSAC inliers as ``mask``).
    Returns ``F (..., 3, 3)`` and ``valid (...)`` (at least 8 valid points, rank-2 start).
    """
    x1, x2 = _pairs(x1, x2)
    mask = as_mask("mask", mask, x1.shape[:-1])
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) \
            or not 0 <= iterations <= 10 ** 6:
        raise ValueError(f"iterations: expected an integer in [0, 1000000], got {iterations!r}")
    if F0 is None:
        F0, ok0 = fundamental_8point(x1, x2, mask)
    else:
        F0 = as_matrix("F0", F0, 3, 3, x1.shape[:-2])
        ok0 = np.ones(x1.shape[:-2], dtype=bool)
    use = mask & np.all(np.isfinite(x1), -1) & np.all(np.isfinite(x2), -1)
    x1f, batch = flatten_batch(x1, 2)
    x2f, _ = flatten_batch(x2, 2)
    uf, _ = flatten_batch(use, 1)
    Ff, _ = flatten_batch(np.ascontiguousarray(F0, dtype=np.float64), 2)
    B = x1f.shape[0]
    out = np.zeros((B, 3, 3))
    valid = np.zeros(B, dtype=np.bool_)
    if B:
        _refine_batch(Ff, x1f, x2f, uf, int(iterations), out, valid)
    valid &= np.asarray(ok0).reshape(-1)
    out[~valid] = 0.0
    return out.reshape(batch + (3, 3)), valid.reshape(batch)


def _epipolar_terms(F, x1, x2):
    x1, x2 = _pairs(x1, x2)
    F = as_matrix("F", F, 3, 3)
    Fb = F[..., None, :, :]
    h1 = np.concatenate([x1, np.ones(x1.shape[:-1] + (1,))], -1)
    h2 = np.concatenate([x2, np.ones(x2.shape[:-1] + (1,))], -1)
    l2 = np.einsum("...ij,...j->...i", Fb, h1)  # epipolar line of x1 in image 2
    l1 = np.einsum("...ji,...j->...i", Fb, h2)  # epipolar line of x2 in image 1
    e = np.einsum("...i,...i->...", h2, l2)
    return e, l1, l2


def sampson_distance(F, x1, x2, *, squared: bool = False):
    """Sampson (first-order geometric) distance in pixels, ``(..., N)``.

    ``e / sqrt((F x1)₀² + (F x1)₁² + (Fᵀ x2)₀² + (Fᵀ x2)₁²)`` with ``e = x2ᵀ F x1``
    (absolute value; squared with ``squared=True``). ``F (..., 3, 3)``, ``x1, x2 (..., N, 2)``.
    """
    e, l1, l2 = _epipolar_terms(F, x1, x2)
    d = l2[..., 0] ** 2 + l2[..., 1] ** 2 + l1[..., 0] ** 2 + l1[..., 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(d > 0, e * e / np.where(d > 0, d, 1.0), np.inf)
    return r2 if squared else np.sqrt(r2)


def symmetric_epipolar_distance(F, x1, x2, *, squared: bool = False):
    """Symmetric epipolar distance in pixels, ``(..., N)``:
    ``sqrt(d(x2, F x1)² + d(x1, Fᵀ x2)²)`` (point-to-epipolar-line distances in each image;
    the sum of squares with ``squared=True``)."""
    e, l1, l2 = _epipolar_terms(F, x1, x2)
    n2 = l2[..., 0] ** 2 + l2[..., 1] ** 2
    n1 = l1[..., 0] ** 2 + l1[..., 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where((n1 > 0) & (n2 > 0),
                      e * e * (1.0 / np.where(n2 > 0, n2, 1.0) + 1.0 / np.where(n1 > 0, n1, 1.0)),
                      np.inf)
    return r2 if squared else np.sqrt(r2)
