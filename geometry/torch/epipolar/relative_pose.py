"""Batched relative pose of calibrated pairs for torch tensors: F-RANSAC → E = K2ᵀ F K1 →
cheirality, the whole chain batched over problems on any device (no per-problem loop, no host
synchronisation inside a chunk). Same result fields as :mod:`geometry.relative_pose`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common import as_matrix, as_points, check_positive, chunked, skew
from .essential import recover_core
from .fundamental_ransac import MIN_INLIERS, check_pairs, check_ransac_options, fundamental_core

__all__ = ["RelativePoseResult", "estimate_relative_pose"]


@dataclass(frozen=True)
class RelativePoseResult:
    """Result of :func:`estimate_relative_pose` (tensors), batch ``(...)``: ``R (..., 3, 3)``,
    ``t (..., 3)`` (``X2 = R X1 + t``, ``|t| = 1``; ``I``/``0`` where invalid), ``F`` (unit norm),
    ``E = [t]ₓ R / √2``, ``inliers (..., N)``, ``valid``, ``num_inliers``, ``num_in_front``."""

    R: torch.Tensor
    t: torch.Tensor
    F: torch.Tensor
    E: torch.Tensor
    inliers: torch.Tensor
    valid: torch.Tensor
    num_inliers: torch.Tensor
    num_in_front: torch.Tensor


def _pose_chunk(x1, x2, use, K1, K2, threshold, max_iterations, seed, check_degeneracy,
                refine_iterations, dist, chunk_size, confidence: float = 0.999):
    F, inl, num, ok = fundamental_core(x1, x2, use, threshold, max_iterations, seed,
                                       check_degeneracy, refine_iterations, chunk_size,
                                       confidence)
    E = K2.transpose(-1, -2) @ F @ K1
    R, t, _, nf, okp = recover_core(E, x1, x2, K1, K2, inl, dist, chunk_size)
    valid = ok & okp
    eye = torch.eye(3, dtype=F.dtype, device=F.device).expand_as(R)
    R = torch.where(valid[:, None, None], R, eye)
    t = torch.where(valid[:, None], t, torch.zeros_like(t))
    Ep = (skew(t) @ R) * (0.5 ** 0.5)
    return (R, t, F, Ep, inl, valid, num, torch.where(valid, nf, torch.zeros_like(nf)))


def estimate_relative_pose(x1, x2, K1, K2, mask=None, *, threshold: float = 3.0,
                           confidence: float = 0.999, max_iterations: int = 1000, seed: int = 0,
                           check_degeneracy: bool = True, distance_threshold: float = 50.0,
                           refine_iterations: int = 3,
                           chunk_size: int = 16384) -> RelativePoseResult:
    """Relative pose of camera 2 w.r.t. camera 1 for a batch of calibrated two-view problems.

    Args:
        x1, x2: ``(..., N, 2)`` pixels (NaN = missing), float32/float64 (float16/bfloat16:
            computed in float32, returned in their dtype), any device; ``N < 8`` gives
            ``valid=False`` everywhere.
        K1, K2: ``(..., 3, 3)`` intrinsics broadcast over the batch (each camera its own K).
        mask: optional ``(..., N)`` bool.
        threshold, confidence, max_iterations, seed, check_degeneracy, refine_iterations,
            chunk_size: as in :func:`geometry.torch.estimate_fundamental`.
        distance_threshold: as in :func:`geometry.torch.recover_pose`.
    Returns:
        :class:`RelativePoseResult`; ``valid=False`` where F-RANSAC failed or no inlier lies in
        front of both cameras.
    """
    dt = as_points("x1", x1).dtype
    x1f, x2f, mf, batch = check_pairs(x1, x2, mask)
    threshold, confidence, max_iterations, seed = check_ransac_options(
        threshold, confidence, max_iterations, seed)
    dist = check_positive("distance_threshold", distance_threshold)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    B, N = x1f.shape[:2]
    K1 = as_matrix("K1", K1, 3, 3, like=x1f)
    K2 = as_matrix("K2", K2, 3, 3, like=x1f)
    for name, K in (("K1", K1), ("K2", K2)):
        try:
            torch.broadcast_shapes(K.shape[:-2], batch)
        except RuntimeError:
            raise ValueError(f"{name}: shape {tuple(K.shape)} does not broadcast to "
                             f"{tuple(batch) + (3, 3)}") from None
    K1 = K1.expand(batch + (3, 3)).reshape(B, 3, 3)
    K2 = K2.expand(batch + (3, 3)).reshape(B, 3, 3)
    use = mf & torch.isfinite(x1f).all(-1) & torch.isfinite(x2f).all(-1)

    def run(a, b, u, k1, k2):
        return _pose_chunk(a, b, u, k1, k2, threshold, max_iterations, seed, check_degeneracy,
                           refine_iterations, dist, chunk_size, confidence)
    if B == 0 or N < MIN_INLIERS:  # nothing to sample: every problem invalid
        z = x1f.new_zeros
        bz = torch.zeros(B, dtype=torch.bool, device=x1f.device)
        iz = torch.zeros(B, dtype=torch.int64, device=x1f.device)
        eye = torch.eye(3, dtype=x1f.dtype, device=x1f.device).expand(B, 3, 3)
        out = (eye, z((B, 3)), z((B, 3, 3)), z((B, 3, 3)),
               torch.zeros((B, N), dtype=torch.bool, device=x1f.device), bz, iz, iz)
    else:
        out = chunked(run, chunk_size, x1f, x2f, use, K1, K2)
    R, t, F, E, inl, valid, num, nf = out
    def sh(a, tail):  # back to the caller's batch shape and (float) dtype
        return a.reshape(batch + tail).to(dt if a.is_floating_point() else a.dtype)
    return RelativePoseResult(R=sh(R, (3, 3)), t=sh(t, (3,)), F=sh(F, (3, 3)), E=sh(E, (3, 3)),
                              inliers=sh(inl, (N,)), valid=sh(valid, ()), num_inliers=sh(num, ()),
                              num_in_front=sh(nf, ()))
