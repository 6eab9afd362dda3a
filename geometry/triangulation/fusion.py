"""Robust fusion of multi-view reconstructions: vector median, geometric median (Weiszfeld) and
multi-view triangulation with outlier rejection (DLT) or pairwise optimal triangulation fused
by the vector median (the EpipolarPose recipe). Batched, compiled with Numba.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ._fusion_kernels import (geometric_median_kernel, multiview_dlt_kernel,
                              multiview_pairs_kernel, vector_median_kernel)
from .hartley_sturm.poly import epipoles_kernel, fundamentals_kernel
from ._dlt_kernels import num_chunks, prepare_cameras
from ..common.validate import as_array, as_mask, as_matrix, as_points, as_weights, check_positive

__all__ = [
    "MedianResult",
    "MultiviewTriangulation",
    "vector_median",
    "geometric_median",
    "triangulate_multiview",
]


@dataclass(frozen=True)
class MedianResult:
    """Result of :func:`vector_median` / :func:`geometric_median`.

    ``X (..., D)`` the median (0 where invalid); ``valid (...)``: at least one usable member;
    ``index (...)``: the member chosen by the vector median (-1 where invalid; for the geometric
    median, the member it started from); ``iterations (...)``: Weiszfeld iterations (0 for the
    vector median); ``converged (...)``.
    """

    X: np.ndarray
    valid: np.ndarray
    index: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


@dataclass(frozen=True)
class MultiviewTriangulation:
    """Result of :func:`triangulate_multiview`.

    ``X (..., N, 3)`` world points (0 where invalid); ``valid (..., N)``; ``reproj_error
    (..., N)`` RMS reprojection error over the views used (px); ``angle_deg (..., N)`` largest
    angle between the rays of two views used (degrees; small means poorly conditioned depth);
    ``num_views (..., N)``; ``used (..., C, N)`` bool: which observations the point rests on.
    """

    X: np.ndarray
    valid: np.ndarray
    reproj_error: np.ndarray
    angle_deg: np.ndarray
    num_views: np.ndarray
    used: np.ndarray


def _members(X, mask, axis):
    """``X`` with the member axis moved next to last and flattened: ``(B, M, D)``, usable
    members ``(B, M)``, the batch shape, ``M``, ``D`` and the normalised axis."""
    X = as_array("X", X, min_ndim=2)
    nd = X.ndim
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -nd <= axis < nd:
        raise ValueError(f"axis: expected an int in [{-nd}, {nd - 1}], got {axis!r}")
    ax = int(axis) % nd
    if ax == nd - 1:
        raise ValueError("axis: the last axis holds the vector coordinates; pick another")
    Xm = np.moveaxis(X, ax, -2)
    batch, M, D = Xm.shape[:-2], Xm.shape[-2], Xm.shape[-1]
    if mask is not None and np.ndim(mask) == nd - 1:
        mask = np.moveaxis(np.asarray(mask), ax, -1)
    m = as_mask("mask", mask, batch + (M,))
    B = int(np.prod(batch, dtype=np.int64))    # explicit: -1 is ambiguous for empty arrays
    Xf = np.ascontiguousarray(Xm).reshape(B, M, D)
    use = m.reshape(B, M) & np.all(np.isfinite(Xf), axis=-1)
    return Xf, use, batch, M, D, ax


def vector_median(X, mask=None, axis: int = -2) -> MedianResult:
    """The member of each set with the least summed Euclidean distance to the other members.

    Args:
        X: ``(..., M, D)`` sets of ``M`` vectors (``axis`` picks the member axis; the last axis
            is always the vector). Members with NaN are ignored.
        mask: optional bool, ``X``'s shape without the last axis; False ignores a member.
        axis: the member axis of ``X`` (default -2).
    Returns:
        :class:`MedianResult` with ``X`` of shape ``X.shape`` without ``axis``.

    Unlike the coordinate-wise median, the result is one of the inputs (a whole 3-D pose or
    joint from one camera pair, as EpipolarPose fuses them).
    """
    Xf, use, batch, M, D, _ = _members(X, mask, axis)
    out = np.empty((Xf.shape[0], D))
    idx = np.empty(Xf.shape[0], dtype=np.int64)
    if Xf.shape[0] and M:
        vector_median_kernel(np.nan_to_num(Xf), use, out, idx)
    else:
        out[:] = 0.0
        idx[:] = -1
    valid = idx >= 0
    return MedianResult(X=out.reshape(batch + (D,)), valid=valid.reshape(batch),
                        index=idx.reshape(batch), iterations=np.zeros(batch, dtype=np.int64),
                        converged=valid.reshape(batch))


def geometric_median(X, mask=None, weights=None, axis: int = -2, *, max_iter: int = 100,
                     tol: float = 1e-10) -> MedianResult:
    """Weighted geometric median (the point minimising the weighted sum of Euclidean distances
    to the members) by Weiszfeld's iteration with the Vardi–Zhang step at data points.

    Args:
        X: ``(..., M, D)``; NaN members are ignored. mask / weights: optional, ``X``'s shape
            without the last axis (weights non-negative). axis: the member axis.
        max_iter: iteration cap; tol: stop when a step moves less than ``tol`` times the spread
            of the set.
    Returns:
        :class:`MedianResult`; ``index`` is the vector-median member it started from.
    """
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter: expected a non-negative int, got {max_iter!r}")
    tol = check_positive("tol", tol)
    Xf, use, batch, M, D, ax = _members(X, mask, axis)
    if weights is None:
        w = np.ones(use.shape)
    else:
        wa = as_array("weights", weights)
        if wa.ndim == len(batch) + 1:      # X's shape without its last axis
            wa = np.moveaxis(wa, ax, -1)
        w = as_weights("weights", wa, batch + (M,)).reshape(Xf.shape[0], M)
    use = use & (w > 0)
    B = Xf.shape[0]
    out = np.zeros((B, D))
    iters = np.zeros(B, dtype=np.int64)
    conv = np.zeros(B, dtype=np.bool_)
    idx = np.full(B, -1, dtype=np.int64)
    if B and M:
        geometric_median_kernel(np.nan_to_num(Xf), use, w, int(max_iter), tol, out, iters, conv)
        vector_median_kernel(np.nan_to_num(Xf), use, np.empty((B, D)), idx)
    valid = idx >= 0
    return MedianResult(X=out.reshape(batch + (D,)), valid=valid.reshape(batch),
                        index=idx.reshape(batch), iterations=iters.reshape(batch),
                        converged=(conv & valid).reshape(batch))


def triangulate_multiview(P, x, mask=None, weights=None, *, method: str = "dlt",
                          threshold: float = 10.0, refine: bool = True) -> MultiviewTriangulation:
    """Triangulate ``N`` points seen by ``C`` cameras, robust to wrong observations.

    Args:
        P: ``(..., C, 3, 4)`` projection matrices (world → pixels) in one world frame.
        x: ``(..., C, N, 2)`` pixels; NaN marks a missing observation.
        mask: optional ``(..., C, N)`` bool. weights: optional ``(..., C, N)`` confidences
            (they weigh the DLT rows; in the pairwise step only weight 0 matters: it drops).
        method: ``"dlt"`` — linear triangulation over all usable views, then repeatedly drop
            the worst view (largest reprojection error, or behind its camera) while its error
            exceeds ``threshold`` and at least two views would remain; ``"pairs"`` — optimal
            (Hartley–Sturm) triangulation of every pair of usable views, fused by the vector
            median; the views used are the winning pair plus those reprojecting within
            ``threshold``.
        threshold: reprojection error (px) above which a view is an outlier.
        refine: (``"pairs"``) re-triangulate the fused point by DLT from the views used; with
            False the point is the vector median itself (one pair's optimal triangulation).
    Returns:
        :class:`MultiviewTriangulation` with per-point quality (reprojection error over the
        views used, largest triangulation angle, views used).
    """
    if method not in ("dlt", "pairs"):
        raise ValueError(f"method: expected 'dlt' or 'pairs', got {method!r}")
    threshold = check_positive("threshold", threshold)
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
    m = as_mask("mask", mask, batch + (C, N))
    w = as_weights("weights", weights, batch + (C, N))
    nb = int(np.prod(batch, dtype=np.int64))  # explicit: -1 fails for N = 0
    Pb = np.ascontiguousarray(np.broadcast_to(P, batch + (C, 3, 4))).reshape(nb, C, 3, 4)
    xb = np.ascontiguousarray(np.broadcast_to(x, batch + (C, N, 2))).reshape(nb, C, N, 2)
    B = Pb.shape[0]
    use = (m & (w > 0)).reshape(nb, C, N) & np.all(np.isfinite(xb), axis=-1)
    xb = np.nan_to_num(xb)
    Pn = np.empty_like(Pb)
    H = np.empty((B, 4))
    dscale = np.empty((B, C))
    centers = np.empty((B, C, 3))
    has_c = np.empty((B, C), dtype=np.bool_)
    prepare_cameras(Pb, Pn, H, dscale, centers, has_c)
    X = np.zeros((B, N, 3))
    valid = np.zeros((B, N), dtype=np.bool_)
    err = np.zeros((B, N))
    ang = np.zeros((B, N))
    nv = np.zeros((B, N), dtype=np.int64)
    used = np.zeros((B, C, N), dtype=np.bool_)
    if B * N > 0 and C > 0:
        nch = num_chunks(B * N)
        if method == "dlt":
            multiview_dlt_kernel(Pb, Pn, H, dscale, centers, has_c, xb, use,
                                 np.sqrt(w).reshape(-1, C, N), threshold, X, valid, err, ang,
                                 nv, used, nch)
        elif C >= 2:
            pairs = np.array(list(combinations(range(C), 2)), dtype=np.int64)
            M = len(pairs)
            Pa = np.ascontiguousarray(Pb[:, pairs[:, 0]]).reshape(-1, 3, 4)
            Pc = np.ascontiguousarray(Pb[:, pairs[:, 1]]).reshape(-1, 3, 4)
            F = np.empty((B * M, 3, 3))
            fundamentals_kernel(Pa, Pc, F)
            E1 = np.empty((B * M, 3))
            E2 = np.empty((B * M, 3))
            epipoles_kernel(F, Pa, Pc, True, E1, E2)
            multiview_pairs_kernel(Pb, Pn, H, dscale, centers, has_c, F.reshape(B, M, 3, 3),
                                   E1.reshape(B, M, 3), E2.reshape(B, M, 3),
                                   np.ascontiguousarray(pairs[:, 0]),
                                   np.ascontiguousarray(pairs[:, 1]), xb, use,
                                   np.sqrt(w).reshape(-1, C, N), threshold, bool(refine), X,
                                   valid, err, ang, nv, used, nch)
    return MultiviewTriangulation(X=X.reshape(batch + (N, 3)), valid=valid.reshape(batch + (N,)),
                                  reproj_error=err.reshape(batch + (N,)),
                                  angle_deg=ang.reshape(batch + (N,)),
                                  num_views=nv.reshape(batch + (N,)),
                                  used=used.reshape(batch + (C, N)))
