"""Triangulation: linear (DLT, any number of views, masks, weights) and optimal two-view
(Hartley–Sturm), batched and compiled with Numba.

Conventions: cameras ``P = K [R | t]`` (``(..., 3, 4)``, world → pixels), pixels ``(..., N, 2)``
float64, leading dims are independent problems. A point that cannot be triangulated (fewer than
two usable views, NaN observations, parallel rays, a point at infinity) has ``valid=False`` and
``X = 0``; results never hold NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hartley_sturm.fast import NCONST, optimal_kernel, pair_constants
from .hartley_sturm.poly import epipoles_kernel, fundamentals_kernel
from ._dlt_kernels import dlt_kernel, num_chunks, prepare_cameras
from ..common.validate import as_mask, as_matrix, as_points, as_weights

__all__ = [
    "Triangulation",
    "OptimalTriangulation",
    "triangulate_dlt",
    "triangulate_optimal",
    "fundamental_from_projections",
]


@dataclass(frozen=True)
class Triangulation:
    """Result of :func:`triangulate_dlt`.

    ``X (..., N, 3)`` world points (0 where invalid); ``valid (..., N)``; ``reproj_error
    (..., N)`` RMS reprojection error over the views used, in pixels (0 where invalid);
    ``num_views (..., N)`` views used; ``positive_depth (..., N)``: in front of every camera used.
    """

    X: np.ndarray
    valid: np.ndarray
    reproj_error: np.ndarray
    num_views: np.ndarray
    positive_depth: np.ndarray


@dataclass(frozen=True)
class OptimalTriangulation:
    """Result of :func:`triangulate_optimal`.

    ``X (..., N, 3)`` world points; ``x1, x2 (..., N, 2)`` the corrected pixels (they satisfy
    ``x2ᵀ F x1 = 0`` exactly; where invalid, the inputs with NaN as 0); ``valid (..., N)``; ``reproj_error
    (..., N)`` RMS over the two views of the distance between the reprojected ``X`` and the
    observed pixels (px); ``positive_depth (..., N)``: in front of both cameras.
    """

    X: np.ndarray
    x1: np.ndarray
    x2: np.ndarray
    valid: np.ndarray
    reproj_error: np.ndarray
    positive_depth: np.ndarray


def _run_dlt(P, x, use, sw, xref):
    """``P (B,C,3,4)``, ``x, xref (B,C,N,2)``, ``use, sw (B,C,N)`` → kernel outputs."""
    B, C, N = x.shape[:3]
    Pn = np.empty_like(P)
    H = np.empty((B, 4))
    dscale = np.empty((B, C))
    centers = np.empty((B, C, 3))
    has_c = np.empty((B, C), dtype=np.bool_)
    prepare_cameras(P, Pn, H, dscale, centers, has_c)
    X = np.empty((B, N, 3))
    valid = np.empty((B, N), dtype=np.bool_)
    err = np.empty((B, N))
    nv = np.empty((B, N), dtype=np.int64)
    pos = np.empty((B, N), dtype=np.bool_)
    if B * N > 0:
        dlt_kernel(P, Pn, H, dscale, x, use, sw, xref, X, valid, err, nv, pos, num_chunks(B * N))
    return X, valid, err, nv, pos


def triangulate_dlt(P, x, mask=None, weights=None) -> Triangulation:
    """Linear triangulation of ``N`` points seen by ``C`` cameras, with missing views.

    Args:
        P: ``(..., C, 3, 4)`` projection matrices (world → pixels), finite.
        x: ``(..., C, N, 2)`` pixels; NaN marks a missing observation.
        mask: optional ``(..., C, N)`` bool, False drops an observation.
        weights: optional ``(..., C, N)`` non-negative confidences; they multiply the squared
            residuals (0 drops the observation).
    Returns:
        :class:`Triangulation` with batch shape ``broadcast(P[..., 0, 0, 0], x[..., 0, 0, 0])``.

    The homogeneous least-squares solution of the stacked rows ``P_k − x_k P_3``, each scaled to
    a unit plane normal (so a row's residual is the distance of the point from the plane through
    the camera centre and the image line), in a world frame centred on the camera centres. A
    point needs two usable views (mask True, finite pixel, weight > 0) and rays that are not
    parallel; otherwise ``valid=False`` and ``X = 0``.
    """
    P = as_matrix("P", P, 3, 4)
    if P.ndim < 3:
        raise ValueError(f"P: expected shape (..., C, 3, 4), got shape {P.shape}")
    x = as_points("x", x)
    if x.ndim < 3:
        raise ValueError(f"x: expected shape (..., C, N, 2), got shape {x.shape}")
    C, N = x.shape[-3], x.shape[-2]
    if P.shape[-3] != C:
        raise ValueError(f"P: expected shape (..., {C}, 3, 4) to match x {x.shape}, "
                         f"got shape {P.shape}")
    try:
        batch = np.broadcast_shapes(P.shape[:-3], x.shape[:-3])
    except ValueError:
        raise ValueError(f"P/x: batch shapes {P.shape[:-3]} and {x.shape[:-3]} do not "
                         "broadcast") from None
    shape_obs = batch + (C, N)
    m = as_mask("mask", mask, shape_obs)
    w = as_weights("weights", weights, shape_obs)
    nb = int(np.prod(batch, dtype=np.int64))  # explicit: -1 fails for N = 0
    Pb = np.ascontiguousarray(np.broadcast_to(P, batch + (C, 3, 4))).reshape(nb, C, 3, 4)
    xb = np.ascontiguousarray(np.broadcast_to(x, batch + (C, N, 2))).reshape(nb, C, N, 2)
    use = (m & (w > 0)).reshape(nb, C, N) & np.all(np.isfinite(xb), axis=-1)
    sw = np.sqrt(w).reshape(nb, C, N)
    X, valid, err, nv, pos = _run_dlt(Pb, xb, use, sw, xb)
    return Triangulation(X=X.reshape(batch + (N, 3)), valid=valid.reshape(batch + (N,)),
                         reproj_error=err.reshape(batch + (N,)),
                         num_views=nv.reshape(batch + (N,)),
                         positive_depth=pos.reshape(batch + (N,)))


def fundamental_from_projections(P1, P2) -> np.ndarray:
    """Fundamental matrix of two cameras: ``P1, P2 (..., 3, 4)`` → ``F (..., 3, 3)`` with
    ``x2ᵀ F x1 = 0``, unit Frobenius norm (all zeros when the camera centres coincide)."""
    P1 = as_matrix("P1", P1, 3, 4)
    P2 = as_matrix("P2", P2, 3, 4)
    try:
        batch = np.broadcast_shapes(P1.shape[:-2], P2.shape[:-2])
    except ValueError:
        raise ValueError(f"P1/P2: batch shapes {P1.shape[:-2]} and {P2.shape[:-2]} do not "
                         "broadcast") from None
    a = np.ascontiguousarray(np.broadcast_to(P1, batch + (3, 4))).reshape(-1, 3, 4)
    b = np.ascontiguousarray(np.broadcast_to(P2, batch + (3, 4))).reshape(-1, 3, 4)
    F = np.empty((a.shape[0], 3, 3))
    fundamentals_kernel(a, b, F)
    return F.reshape(batch + (3, 3))


def _distinct_centres(Pab) -> np.ndarray:
    """``(B,)``: the two cameras of each pair ``Pab (B, 2, 3, 4)`` have different centres (a
    common centre — a pure rotation — leaves nothing to triangulate)."""
    M, p = Pab[..., :3], Pab[..., 3]
    det = np.linalg.det(M)
    ok = np.all(np.abs(det) > 1e-12 * np.maximum(np.abs(M).max(axis=(-2, -1)) ** 3, 1e-300), -1)
    Ms = np.where(ok[:, None, None, None], M, np.eye(3))
    c = -np.linalg.solve(Ms, p[..., None])[..., 0]                     # (B, 2, 3)
    d = np.linalg.norm(c[:, 0] - c[:, 1], axis=-1)
    scale = np.maximum(np.linalg.norm(c, axis=-1).max(-1), 1.0)
    return ~ok | (d > 1e-9 * scale)


def triangulate_optimal(x1, x2, P1, P2, *, F=None, mask=None) -> OptimalTriangulation:
    """Optimal (Hartley–Sturm) two-view triangulation: minimal squared pixel error.

    Args:
        x1, x2: ``(..., N, 2)`` pixels in cameras 1 and 2 (NaN marks missing).
        P1, P2: ``(..., 3, 4)`` projection matrices (world → pixels).
        F: optional ``(..., 3, 3)`` fundamental matrix (``x2ᵀ F x1 = 0``) used for the
            correction; by default computed from ``P1, P2``.
        mask: optional ``(..., N)`` bool.
    Returns:
        :class:`OptimalTriangulation`: corrected pixels (the pair closest to the observations
        whose rays meet, found among every real root of the degree-6 polynomial and the point at
        infinity), the world points where the corrected rays meet, and quality.

    Points on an epipole, pairs whose corrected rays are parallel (a point at infinity) and
    cameras with a common centre give ``valid=False``, ``X = 0``, never NaN.
    """
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected shape {x1.shape} (like x1), got shape {x2.shape}")
    P1 = as_matrix("P1", P1, 3, 4)
    P2 = as_matrix("P2", P2, 3, 4)
    N = x1.shape[-2]
    shapes = [x1.shape[:-2], P1.shape[:-2], P2.shape[:-2]]
    if F is not None:
        F = as_matrix("F", F, 3, 3)
        shapes.append(F.shape[:-2])
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"x1/P1/P2/F: batch shapes {shapes} do not broadcast") from None
    nb = int(np.prod(batch, dtype=np.int64))  # explicit: -1 fails for N = 0
    m = as_mask("mask", mask, batch + (N,)).reshape(nb, N)
    xa = np.ascontiguousarray(np.broadcast_to(x1, batch + (N, 2))).reshape(nb, N, 2)
    xb = np.ascontiguousarray(np.broadcast_to(x2, batch + (N, 2))).reshape(nb, N, 2)
    Pa = np.broadcast_to(P1, batch + (3, 4)).reshape(-1, 3, 4)
    Pb = np.broadcast_to(P2, batch + (3, 4)).reshape(-1, 3, 4)
    Pab = np.ascontiguousarray(np.stack([Pa, Pb], axis=1))
    B = Pab.shape[0]
    if F is None:
        Fb = np.empty((B, 3, 3))
        fundamentals_kernel(np.ascontiguousarray(Pab[:, 0]), np.ascontiguousarray(Pab[:, 1]), Fb)
    else:
        Fb = np.ascontiguousarray(np.broadcast_to(F, batch + (3, 3))).reshape(-1, 3, 3)
        Fb = Fb / np.maximum(np.linalg.norm(Fb, axis=(-2, -1), keepdims=True), 1e-300)
    pair_ok = _distinct_centres(Pab)
    E1 = np.empty((B, 3))
    E2 = np.empty((B, 3))
    epipoles_kernel(Fb, Pab[:, 0], Pab[:, 1], F is None, E1, E2)
    Pn = np.empty_like(Pab)
    H = np.empty((B, 4))
    dscale = np.empty((B, 2))
    prepare_cameras(Pab, Pn, H, dscale, np.empty((B, 2, 3)), np.empty((B, 2), dtype=np.bool_))
    C = np.empty((B, NCONST))
    pair_constants(Fb, E1, E2, Pn, H, Pab, dscale, C)
    use = m & pair_ok[:, None]
    X = np.empty((B, N, 3))
    c1 = np.empty((B, N, 2))
    c2 = np.empty((B, N, 2))
    valid = np.empty((B, N), dtype=np.bool_)
    err = np.empty((B, N))
    pos = np.empty((B, N), dtype=np.bool_)
    if B * N > 0:
        optimal_kernel(C, Fb, E1, E2, xa, xb, use, X, c1, c2, valid, err, pos,
                       num_chunks(B * N))
    return OptimalTriangulation(X=X.reshape(batch + (N, 3)), x1=c1.reshape(batch + (N, 2)),
                                x2=c2.reshape(batch + (N, 2)), valid=valid.reshape(batch + (N,)),
                                reproj_error=err.reshape(batch + (N,)),
                                positive_depth=pos.reshape(batch + (N,)))
