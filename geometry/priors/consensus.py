"""Robust starting points for the skeleton step: per-joint view consensus and 2D left/right swap
repair, both judged against 3D points triangulated without the view in question.

:func:`consensus_triangulation` tries every pair of usable views of a point, counts the views
reprojecting within a threshold of the pair's triangulation, keeps the pair with the largest
consensus (then the lowest error) and re-triangulates from its consensus set by DLT. Unlike
dropping the worst view of a DLT over all views, it is not misled when half of the views are
wrong (two outliers out of four pull the all-view DLT away from both good views).
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..camera import projection_matrix
from ..triangulation import triangulate_dlt


def reproject(X, K, R, t):
    """``X (..., N, 3)`` world points → pixels ``(C, ..., N, 2)`` and depths ``(C, ..., N)``."""
    KR = np.einsum("cab,cbd->cad", K, R)
    Kt = np.einsum("cab,cb->ca", K, t)
    h = np.einsum("cab,...b->c...a", KR, X) + Kt.reshape((len(K),) + (1,) * (X.ndim - 1) + (3,))
    z = h[..., 2]
    zs = np.where(np.abs(z) < 1e-12, 1e-12, z)
    return h[..., :2] / zs[..., None], z


def consensus_triangulation(x, K, R, t, use, threshold: float, weights=None):
    """Triangulate points ``(N,)`` from views ``x (C, N, 2)`` with usable ``use (C, N)``.

    Returns ``X (N, 3)``, ``inliers (C, N)`` (views within ``threshold`` px, in front of the
    camera), ``valid (N,)`` (at least two inliers). Weights ``(C, N)`` (confidences) score the
    consensus (summed weight of the inliers, then the lowest mean error) and weigh the DLT.
    """
    C, N = use.shape
    P = projection_matrix(K, R, t)
    best_n = np.zeros(N, dtype=np.int64)
    best_e = np.full(N, np.inf)
    best_s = np.zeros(N)
    wts = np.ones((C, N)) if weights is None else np.asarray(weights, dtype=np.float64)
    best_inl = np.zeros((C, N), dtype=bool)
    xf = np.nan_to_num(x)
    for a, b in combinations(range(C), 2):
        ok = use[a] & use[b]
        if not ok.any():
            continue
        tri = triangulate_dlt(P[[a, b]], xf[[a, b]][:, ok])
        Xp = np.zeros((N, 3))
        Xp[ok] = tri.X
        good = np.zeros(N, dtype=bool)
        good[ok] = tri.valid
        proj, z = reproject(Xp, K, R, t)
        err = np.linalg.norm(proj - xf, axis=-1)
        inl = use & (err < threshold) & (z > 0) & good[None]
        n = inl.sum(0)
        e = np.where(inl, err, 0.0).sum(0) / np.maximum(n, 1)
        sc = np.where(inl, wts, 0.0).sum(0)
        better = (sc > best_s + 1e-9) | ((np.abs(sc - best_s) <= 1e-9) & (e < best_e))
        better &= n >= 2
        best_n = np.where(better, n, best_n)
        best_s = np.where(better, sc, best_s)
        best_e = np.where(better, e, best_e)
        best_inl[:, better] = inl[:, better]
    valid = best_n >= 2
    X = np.zeros((N, 3))
    inl = grown = best_inl
    for _ in range(2):          # DLT on the consensus set, then on the views it reprojects into
        if not valid.any():
            break
        w = None if weights is None else weights[:, valid]
        tri = triangulate_dlt(P, xf[:, valid], mask=inl[:, valid], weights=w)
        X[valid] = tri.X
        valid[np.flatnonzero(valid)[~tri.valid]] = False
        proj, z = reproject(X, K, R, t)
        err = np.linalg.norm(proj - xf, axis=-1)
        grown = use & (err < threshold) & (z > 0) & valid[None]
        keep = grown.sum(0) >= 2                # never shrink below the consensus pair
        inl = np.where(keep[None], grown, inl)
    inl = grown                                 # the views the final point reprojects into
    valid &= inl.sum(0) >= 2
    X[~valid] = 0.0
    return X, inl & valid[None], valid


def swap_candidates(x, X, K, R, t, pairs, *, threshold: float, ratio: float = 0.5):
    """Which views' left/right pairs are swapped in 2D: ``(C, T, S)`` bool.

    ``x (C, T, J, 2)`` detections, ``X (T, J, 3)`` a skeleton-consistent solution (NaN where
    unknown), ``pairs (S, 2)`` joint indices. A pair is swapped in a view when the swapped
    assignment reprojects both joints within ``threshold`` px and its summed error is below
    ``ratio`` times that of the detected assignment (a decisive improvement).
    """
    proj, _ = reproject(X, K, R, t)                          # (C, T, J, 2)
    a, b = pairs[:, 0], pairs[:, 1]
    xa, xb = x[:, :, a], x[:, :, b]
    pa, pb = proj[:, :, a], proj[:, :, b]
    keep_a = np.linalg.norm(pa - xa, axis=-1)
    keep_b = np.linalg.norm(pb - xb, axis=-1)
    sw_a = np.linalg.norm(pa - xb, axis=-1)
    sw_b = np.linalg.norm(pb - xa, axis=-1)
    keep, swap = keep_a + keep_b, sw_a + sw_b
    out = (sw_a < threshold) & (sw_b < threshold) & (swap < ratio * keep)
    return np.where(np.isfinite(keep) & np.isfinite(swap), out, False)


def apply_swaps(x, swaps, pairs):
    """``x (C, T, J, ...)`` with the joints of each swapped ``(C, T, S)`` pair exchanged."""
    y = np.array(x, copy=True)
    for s, (a, b) in enumerate(pairs):
        m = swaps[:, :, s]
        if m.any():
            ya = y[:, :, int(a)][m].copy()
            y[:, :, int(a)][m] = y[:, :, int(b)][m]
            y[:, :, int(b)][m] = ya
    return y
