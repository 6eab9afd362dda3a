"""Batched relative pose of calibrated pairs: F-RANSAC → E = K2ᵀ F K1 → cheirality.

One fused Numba kernel per problem (``prange`` over problems): the robust fundamental matrix of
:mod:`geometry.ransac` on pixels (threshold in pixels), its essential matrix with each camera's
own K, and :func:`geometry.essential.recover_pose` voting with the RANSAC inliers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .essential import recover_pose_problem
from .fundamental_ransac import check_pairs, check_ransac_options, fundamental_problem
from ..common.validate import as_matrix, check_positive

__all__ = ["RelativePoseResult", "estimate_relative_pose"]


@dataclass(frozen=True)
class RelativePoseResult:
    """Result of :func:`estimate_relative_pose` for a batch ``(...)``.

    ``R (..., 3, 3)``, ``t (..., 3)`` with ``X2 = R X1 + t``, ``|t| = 1`` (``I``/``0`` where
    invalid); ``F (..., 3, 3)`` (unit norm, ``x2ᵀ F x1 = 0``); ``E (..., 3, 3) = [t]ₓ R / √2``
    (unit norm, the essential matrix of the returned pose); ``inliers (..., N)`` (RANSAC
    inliers); ``valid (...)``; ``num_inliers (...)``; ``num_in_front (...)``: inliers
    triangulated in front of both cameras.
    """

    R: np.ndarray
    t: np.ndarray
    F: np.ndarray
    E: np.ndarray
    inliers: np.ndarray
    valid: np.ndarray
    num_inliers: np.ndarray
    num_in_front: np.ndarray


@njit(cache=True)
def _pose_problem(x1, x2, mask, K1, K2, threshold, confidence, max_iterations, seed,
                  check_degeneracy, dist_thresh, R, t, F, E, inl, front):
    c, v = fundamental_problem(x1, x2, mask, threshold, confidence, max_iterations, seed,
                               check_degeneracy, F, inl)
    for i in range(3):
        for j in range(3):
            R[i, j] = 1.0 if i == j else 0.0
            E[i, j] = 0.0
        t[i] = 0.0
    if not v:
        return c, 0, False
    Ep = np.empty((3, 3))
    for i in range(3):  # E = K2ᵀ F K1
        for j in range(3):
            s = 0.0
            for a in range(3):
                fa = F[a, 0] * K1[0, j] + F[a, 1] * K1[1, j] + F[a, 2] * K1[2, j]
                s += K2[a, i] * fa
            Ep[i, j] = s
    nf, ok = recover_pose_problem(Ep, x1, x2, K1, K2, inl, dist_thresh, R, t, front)
    if not ok:
        return c, 0, False
    # E of the returned pose: [t]x R / sqrt(2)
    r2 = np.sqrt(0.5)
    for j in range(3):
        E[0, j] = (-t[2] * R[1, j] + t[1] * R[2, j]) * r2
        E[1, j] = (t[2] * R[0, j] - t[0] * R[2, j]) * r2
        E[2, j] = (-t[1] * R[0, j] + t[0] * R[1, j]) * r2
    return c, nf, True


@njit(parallel=True, cache=True)
def _pose_batch(x1, x2, mask, K1, K2, threshold, confidence, max_iterations, seed,
                check_degeneracy, dist_thresh, R, t, F, E, inl, front, num, nfront, valid):
    for b in prange(x1.shape[0]):
        c, nf, v = _pose_problem(x1[b], x2[b], mask[b], K1[b], K2[b], threshold, confidence,
                                 max_iterations, seed, check_degeneracy, dist_thresh, R[b], t[b],
                                 F[b], E[b], inl[b], front[b])
        num[b] = c
        nfront[b] = nf
        valid[b] = v


def estimate_relative_pose(x1, x2, K1, K2, mask=None, *, threshold: float = 3.0,
                           confidence: float = 0.999, max_iterations: int = 1000, seed: int = 0,
                           check_degeneracy: bool = True,
                           distance_threshold: float = 50.0) -> RelativePoseResult:
    """Relative pose of camera 2 w.r.t. camera 1 for a batch of calibrated two-view problems.

    Args:
        x1, x2: ``(..., N, 2)`` pixels (NaN = missing). K1, K2: ``(..., 3, 3)`` intrinsics,
            broadcast over the batch (each camera its own K).
        mask: optional ``(..., N)`` bool.
        threshold, confidence, max_iterations, seed, check_degeneracy: as in
            :func:`geometry.ransac.estimate_fundamental` (threshold: Sampson distance in pixels).
        distance_threshold: as in :func:`geometry.essential.recover_pose`.

    Returns:
        :class:`RelativePoseResult`; ``valid=False`` where F-RANSAC failed (fewer than 8 valid
        points, degenerate) or no inlier lies in front of both cameras.
    """
    x1f, x2f, mf, batch = check_pairs(x1, x2, mask)
    threshold, confidence, max_iterations, seed = check_ransac_options(
        threshold, confidence, max_iterations, seed)
    dist = check_positive("distance_threshold", distance_threshold)
    B, N = x1f.shape[:2]
    K1 = as_matrix("K1", K1, 3, 3, batch).reshape(B, 3, 3)
    K2 = as_matrix("K2", K2, 3, 3, batch).reshape(B, 3, 3)
    R = np.zeros((B, 3, 3))
    t = np.zeros((B, 3))
    F = np.zeros((B, 3, 3))
    E = np.zeros((B, 3, 3))
    inl = np.zeros((B, N), dtype=np.bool_)
    front = np.zeros((B, N), dtype=np.bool_)
    num = np.zeros(B, dtype=np.int64)
    nfront = np.zeros(B, dtype=np.int64)
    valid = np.zeros(B, dtype=np.bool_)
    if B:
        _pose_batch(x1f, x2f, mf, K1, K2, threshold, confidence, max_iterations, np.uint64(seed),
                    bool(check_degeneracy), dist, R, t, F, E, inl, front, num, nfront, valid)
    sh = lambda a, tail: a.reshape(batch + tail)  # noqa: E731
    return RelativePoseResult(R=sh(R, (3, 3)), t=sh(t, (3,)), F=sh(F, (3, 3)), E=sh(E, (3, 3)),
                              inliers=sh(inl, (N,)), valid=sh(valid, ()),
                              num_inliers=sh(num, ()), num_in_front=sh(nfront, ()))
