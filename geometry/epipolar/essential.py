"""Essential matrices: from F, the four pose candidates, and cheirality.

Conventions: ``E = K2ᵀ F K1``; the relative pose maps camera-1 points to camera 2,
``X2 = R X1 + t`` with ``|t| = 1``, and ``E = [t]ₓ R``. All functions are batched over leading
dimensions; the per-problem work is a Numba kernel (``prange`` over problems).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..common.nb_linalg import jacobi_eigh
from ..common.checks import batch_shape, finite_rows, safe_svd
from ..common.validate import as_mask, as_matrix, as_points, check_positive, flatten_batch

__all__ = ["PoseResult", "essential_from_fundamental", "decompose_essential", "recover_pose"]


@dataclass(frozen=True)
class PoseResult:
    """Result of :func:`recover_pose` for a batch ``(...)``: ``R (..., 3, 3)``, ``t (..., 3)``
    (``|t| = 1``, ``X2 = R X1 + t``), ``in_front (..., N)`` bool (triangulated in front of both
    cameras, closer than the distance threshold), ``num_in_front (...)``, ``valid (...)``.
    Invalid problems hold ``R = I``, ``t = 0``."""

    R: np.ndarray
    t: np.ndarray
    in_front: np.ndarray
    num_in_front: np.ndarray
    valid: np.ndarray


def essential_from_fundamental(F, K1, K2, *, project: bool = True) -> np.ndarray:
    """``E = K2ᵀ F K1`` scaled to unit Frobenius norm → ``(..., 3, 3)``.

    ``F (..., 3, 3)``, ``K1, K2 (..., 3, 3)`` (broadcast; each camera its own K). With
    ``project=True`` E is projected onto the essential manifold (singular values ``(1, 1, 0)/√2``).
    A zero ``F`` gives a zero ``E``.
    """
    F = as_matrix("F", F, 3, 3)
    K1 = as_matrix("K1", K1, 3, 3)
    K2 = as_matrix("K2", K2, 3, 3)
    batch_shape({"F": 2, "K1": 2, "K2": 2}, F=F, K1=K1, K2=K2)
    # E is defined up to scale: each factor divided by its largest entry first, so the product
    # cannot overflow (an inf reaching LAPACK's SVD loops forever).
    unit = lambda A: A / np.maximum(np.abs(A).max((-2, -1), keepdims=True), 1e-300)  # noqa: E731
    with np.errstate(all="ignore"):
        E = np.swapaxes(unit(K2), -1, -2) @ unit(F) @ unit(K1)
    ok = finite_rows(E)
    E = np.where(ok[..., None, None], E, 0.0)
    if project:
        U, S, Vt, ok_s = safe_svd(E)
        E = U @ (np.array([1.0, 1.0, 0.0])[:, None] * Vt) * ((S[..., :1, None] > 0)
                                                           & ok_s[..., None, None])
    n = np.linalg.norm(E, axis=(-2, -1), keepdims=True)
    return np.where(n > 0, E / np.where(n > 0, n, 1.0), 0.0)


@njit(cache=True)
def decompose_nb(E, Rs, ts, A, w, V):
    """The four ``(R, t)`` of ``E (3, 3)`` into ``Rs (4, 3, 3)``, ``ts (4, 3)`` in OpenCV's order
    ``(R1, t), (R1, −t), (R2, t), (R2, −t)``; scratch ``A, V (3, 3)``, ``w (3,)``. False when
    ``E`` has rank < 2 or is not finite."""
    for i in range(3):
        for j in range(3):
            s = 0.0
            for k in range(3):
                s += E[k, i] * E[k, j]
            A[i, j] = s
    tr = A[0, 0] + A[1, 1] + A[2, 2]
    if not tr > 0.0 or not np.isfinite(tr):
        return False
    jacobi_eigh(A, 3, w, V)
    if not w[1] > 1e-12 * tr:
        return False
    # V columns ascending: v3 = V[:,0] (null), v2 = V[:,1], v1 = V[:,2]
    v1 = (V[0, 2], V[1, 2], V[2, 2])
    v2 = (V[0, 1], V[1, 1], V[2, 1])
    v3 = (v1[1] * v2[2] - v1[2] * v2[1], v1[2] * v2[0] - v1[0] * v2[2],
          v1[0] * v2[1] - v1[1] * v2[0])
    e1 = (E[0, 0] * v1[0] + E[0, 1] * v1[1] + E[0, 2] * v1[2],
          E[1, 0] * v1[0] + E[1, 1] * v1[1] + E[1, 2] * v1[2],
          E[2, 0] * v1[0] + E[2, 1] * v1[1] + E[2, 2] * v1[2])
    e2 = (E[0, 0] * v2[0] + E[0, 1] * v2[1] + E[0, 2] * v2[2],
          E[1, 0] * v2[0] + E[1, 1] * v2[1] + E[1, 2] * v2[2],
          E[2, 0] * v2[0] + E[2, 1] * v2[1] + E[2, 2] * v2[2])
    n1 = np.sqrt(e1[0] ** 2 + e1[1] ** 2 + e1[2] ** 2)
    u1 = (e1[0] / n1, e1[1] / n1, e1[2] / n1)
    d = u1[0] * e2[0] + u1[1] * e2[1] + u1[2] * e2[2]
    g = (e2[0] - d * u1[0], e2[1] - d * u1[1], e2[2] - d * u1[2])
    n2 = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
    if not n2 > 0.0:
        return False
    u2 = (g[0] / n2, g[1] / n2, g[2] / n2)
    u3 = (u1[1] * u2[2] - u1[2] * u2[1], u1[2] * u2[0] - u1[0] * u2[2],
          u1[0] * u2[1] - u1[1] * u2[0])
    # R_a = U W Vᵀ, W = [[0,-1,0],[1,0,0],[0,0,1]] → R_a = u2 v1ᵀ − u1 v2ᵀ + u3 v3ᵀ;
    # R_b = U Wᵀ Vᵀ = −u2 v1ᵀ + u1 v2ᵀ + u3 v3ᵀ
    for i in range(3):
        for j in range(3):
            p = u2[i] * v1[j] - u1[i] * v2[j]
            r3 = u3[i] * v3[j]
            Rs[0, i, j] = p + r3
            Rs[1, i, j] = p + r3
            Rs[2, i, j] = -p + r3
            Rs[3, i, j] = -p + r3
    for i in range(3):
        ts[0, i] = u3[i]
        ts[1, i] = -u3[i]
        ts[2, i] = u3[i]
        ts[3, i] = -u3[i]
    return True


@njit(cache=True)
def _inv_upper3(K, Ki):
    """Inverse of a 3×3 matrix by the adjugate (K is an intrinsics matrix)."""
    a, b, c = K[0, 0], K[0, 1], K[0, 2]
    d, e, f = K[1, 0], K[1, 1], K[1, 2]
    g, h, k = K[2, 0], K[2, 1], K[2, 2]
    det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g)
    if det == 0.0 or not np.isfinite(det):
        return False
    Ki[0, 0] = (e * k - f * h) / det
    Ki[0, 1] = (c * h - b * k) / det
    Ki[0, 2] = (b * f - c * e) / det
    Ki[1, 0] = (f * g - d * k) / det
    Ki[1, 1] = (a * k - c * g) / det
    Ki[1, 2] = (c * d - a * f) / det
    Ki[2, 0] = (d * h - e * g) / det
    Ki[2, 1] = (b * g - a * h) / det
    Ki[2, 2] = (a * e - b * d) / det
    return True


@njit(cache=True)
def _depths(R, t, y1, y2):
    """Midpoint triangulation of normalised rays: depths ``(d1, d2)`` along ``y1`` and ``y2``
    (z = 1) of the closest points of the two rays; NaN for parallel rays."""
    a0 = R[0, 0] * y1[0] + R[0, 1] * y1[1] + R[0, 2] * y1[2]
    a1 = R[1, 0] * y1[0] + R[1, 1] * y1[1] + R[1, 2] * y1[2]
    a2 = R[2, 0] * y1[0] + R[2, 1] * y1[1] + R[2, 2] * y1[2]
    aa = a0 * a0 + a1 * a1 + a2 * a2
    bb = y2[0] * y2[0] + y2[1] * y2[1] + y2[2] * y2[2]
    ab = a0 * y2[0] + a1 * y2[1] + a2 * y2[2]
    at = a0 * t[0] + a1 * t[1] + a2 * t[2]
    bt = y2[0] * t[0] + y2[1] * t[1] + y2[2] * t[2]
    det = aa * bb - ab * ab
    if not det > 1e-14 * aa * bb:
        return np.nan, np.nan
    return (ab * bt - at * bb) / det, (aa * bt - ab * at) / det


@njit(cache=True)
def _rays(K1i, K2i, x1, x2, i, y1, y2):
    """Normalised rays (z = 1) of point ``i``; False if it is not finite or at infinity."""
    if not (np.isfinite(x1[i, 0]) and np.isfinite(x1[i, 1]) and np.isfinite(x2[i, 0])
            and np.isfinite(x2[i, 1])):
        return False
    for r in range(3):
        y1[r] = K1i[r, 0] * x1[i, 0] + K1i[r, 1] * x1[i, 1] + K1i[r, 2]
        y2[r] = K2i[r, 0] * x2[i, 0] + K2i[r, 1] * x2[i, 1] + K2i[r, 2]
    if y1[2] == 0.0 or y2[2] == 0.0:
        return False
    y1[0] /= y1[2]
    y1[1] /= y1[2]
    y2[0] /= y2[2]
    y2[1] /= y2[2]
    y1[2] = 1.0
    y2[2] = 1.0
    return True


@njit(cache=True)
def recover_pose_problem(E, x1, x2, K1, K2, mask, dist_thresh, R, t, front):
    """Cheirality test of the four candidates of ``E`` on one problem; writes the winner to
    ``R (3,3)``, ``t (3,)``, ``front (N,)``; returns ``(num_in_front, valid)``."""
    N = x1.shape[0]
    for i in range(3):
        for j in range(3):
            R[i, j] = 1.0 if i == j else 0.0
        t[i] = 0.0
    for i in range(N):
        front[i] = False
    Rs = np.empty((4, 3, 3))
    ts = np.empty((4, 3))
    A = np.empty((3, 3))
    V = np.empty((3, 3))
    w = np.empty(3)
    K1i = np.empty((3, 3))
    K2i = np.empty((3, 3))
    if not decompose_nb(E, Rs, ts, A, w, V):
        return 0, False
    if not (_inv_upper3(K1, K1i) and _inv_upper3(K2, K2i)):
        return 0, False
    y1 = np.empty(3)
    y2 = np.empty(3)
    counts = np.zeros(4, dtype=np.int64)
    for i in range(N):
        if not (mask[i] and _rays(K1i, K2i, x1, x2, i, y1, y2)):
            continue
        for c in range(0, 4, 2):  # t and −t share R: the depths flip sign
            d1, d2 = _depths(Rs[c], ts[c], y1, y2)
            if d1 > 0 and d2 > 0 and d1 < dist_thresh and d2 < dist_thresh:
                counts[c] += 1
            elif d1 < 0 and d2 < 0 and -d1 < dist_thresh and -d2 < dist_thresh:
                counts[c + 1] += 1
    best = 0
    for c in range(1, 4):
        if counts[c] > counts[best]:
            best = c
    if counts[best] == 0:
        return 0, False
    for i in range(3):
        for j in range(3):
            R[i, j] = Rs[best, i, j]
        t[i] = ts[best, i]
    sgn = 1.0 if best % 2 == 0 else -1.0
    c = best - best % 2
    for i in range(N):
        if not (mask[i] and _rays(K1i, K2i, x1, x2, i, y1, y2)):
            continue
        d1, d2 = _depths(Rs[c], ts[c], y1, y2)
        d1 *= sgn
        d2 *= sgn
        front[i] = d1 > 0 and d2 > 0 and d1 < dist_thresh and d2 < dist_thresh
    return counts[best], True


@njit(parallel=True, cache=True)
def _recover_batch(E, x1, x2, K1, K2, mask, dist_thresh, R, t, front, num, valid):
    for b in prange(E.shape[0]):
        c, v = recover_pose_problem(E[b], x1[b], x2[b], K1[b], K2[b], mask[b], dist_thresh,
                                    R[b], t[b], front[b])
        num[b] = c
        valid[b] = v


@njit(parallel=True, cache=True)
def _decompose_batch(E, Rs, ts, ok):
    for b in prange(E.shape[0]):
        A = np.empty((3, 3))
        V = np.empty((3, 3))
        w = np.empty(3)
        ok[b] = decompose_nb(E[b], Rs[b], ts[b], A, w, V)


def decompose_essential(E):
    """The four pose candidates of ``E (..., 3, 3)``.

    Returns ``R (..., 4, 3, 3)`` (proper rotations) and ``t (..., 4, 3)`` (unit) in OpenCV's
    order ``(R1, t), (R1, −t), (R2, t), (R2, −t)`` with ``E ∝ [t]ₓ R`` for each. A rank < 2 ``E``
    gives identity rotations and zero translations.
    """
    E = as_matrix("E", E, 3, 3)
    Ef, batch = flatten_batch(E, 2)
    B = Ef.shape[0]
    Rs = np.zeros((B, 4, 3, 3))
    ts = np.zeros((B, 4, 3))
    ok = np.zeros(B, dtype=np.bool_)
    if B:
        _decompose_batch(Ef, Rs, ts, ok)
    Rs[~ok] = np.eye(3)
    ts[~ok] = 0.0
    return Rs.reshape(batch + (4, 3, 3)), ts.reshape(batch + (4, 3))


def recover_pose(E, x1, x2, K1, K2, mask=None, *, distance_threshold: float = 50.0) -> PoseResult:
    """Relative pose from an essential matrix by cheirality, like ``cv2.recoverPose``.

    Args:
        E: ``(..., 3, 3)`` essential matrices (``x2ᵀ K2⁻ᵀ E K1⁻¹ x1 = 0``).
        x1, x2: ``(..., N, 2)`` pixels; NaN points are ignored. K1, K2: ``(..., 3, 3)``.
        mask: optional ``(..., N)`` bool: only these points vote (e.g. RANSAC inliers).
        distance_threshold: points farther than this (in units of ``|t| = 1``) from either
            camera do not count, as in OpenCV (points near infinity have no reliable sign).

    Each of the four candidates of :func:`decompose_essential` is scored by the number of points
    whose midpoint-triangulated depth is positive in both cameras; the best wins.

    Returns:
        :class:`PoseResult`; ``valid=False`` when ``E`` has rank < 2, K is singular or no point
        lies in front of both cameras.
    """
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected the shape of x1 {x1.shape}, got shape {x2.shape}")
    batch = x1.shape[:-2]
    E = as_matrix("E", E, 3, 3, batch)
    K1 = as_matrix("K1", K1, 3, 3, batch)
    K2 = as_matrix("K2", K2, 3, 3, batch)
    mask = as_mask("mask", mask, x1.shape[:-1])
    dist = check_positive("distance_threshold", distance_threshold)
    N = x1.shape[-2]
    B = int(np.prod(batch, dtype=np.int64))
    R = np.zeros((B, 3, 3))
    t = np.zeros((B, 3))
    front = np.zeros((B, N), dtype=np.bool_)
    num = np.zeros(B, dtype=np.int64)
    valid = np.zeros(B, dtype=np.bool_)
    if B:
        _recover_batch(E.reshape(B, 3, 3), x1.reshape(B, N, 2), x2.reshape(B, N, 2),
                       K1.reshape(B, 3, 3), K2.reshape(B, 3, 3), mask.reshape(B, N), dist,
                       R, t, front, num, valid)
    return PoseResult(R=R.reshape(batch + (3, 3)), t=t.reshape(batch + (3,)),
                      in_front=front.reshape(batch + (N,)), num_in_front=num.reshape(batch),
                      valid=valid.reshape(batch))
