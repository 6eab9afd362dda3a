"""Initial rig for :func:`geometry.reconstruct_rig`: pooled pairwise poses → incremental registration.

1. :func:`pairwise_poses` — for every camera pair, every frame's joints seen by both are pooled
   into one robust relative-pose problem (the batched F-RANSAC engine, one problem per pair).
2. :func:`register_cameras` — start from the best-conditioned pair, triangulate, then add the
   camera with the best pair to an already registered one: its rotation by composition, its
   translation's scale from the depths of the joints both reconstructions share, polished by
   PnP on the triangulated joints; re-triangulate with every registered camera after each step.
3. :func:`register_verified` — step 2 from each of the few best-scoring start pairs on a
   subsample of the points, each followed by a short bundle adjustment; the start whose rig
   registers the most cameras with the lowest robust reprojection cost is registered again on
   every point. A nearly static person makes pooled pair poses
   ambiguous (measured: 100-frame turning/reaching clips, 3–4 px noise, 10 % outliers, pair
   rotations 15–115° wrong with as many inliers as the right ones), and one wrong start pair
   sent the whole rig 77–168° off, marked valid, in 9 of 60 such clips; the data's own
   reprojection cost tells the starts apart.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import cv2
import numpy as np

from ..triangulation.fusion import triangulate_multiview
from ..epipolar.relative_pose import estimate_relative_pose
from ..triangulation.two_view import triangulate_dlt

__all__ = ["PairPoses", "pairwise_poses", "register_cameras", "register_verified",
           "ray_angles_deg"]


@dataclass(frozen=True)
class PairPoses:
    """Pooled relative poses of every camera pair ``(i, j)``, ``i < j`` (``X_j = R X_i + t``).

    ``pairs (P, 2)``; ``R (P,3,3)``; ``t (P,3)`` unit; ``F (P,3,3)``; ``valid (P,)``;
    ``num_points (P,)`` pooled observations; ``num_inliers (P,)``; ``angle_deg (P,)`` median
    ray angle of the inliers; ``score (P,)`` inliers in front × conditioning (the median of
    ``min(angle, 180° − angle)`` over 20°, at most 1: parallel and collinear rays both leave the
    depth unknown; 0 = unusable);
    ``points`` list of ``(P,)`` index arrays into the flattened ``T·J`` observations.
    """

    pairs: np.ndarray
    R: np.ndarray
    t: np.ndarray
    F: np.ndarray
    valid: np.ndarray
    num_points: np.ndarray
    num_inliers: np.ndarray
    angle_deg: np.ndarray
    score: np.ndarray
    inliers: list


def ray_angles_deg(x1, x2, K1, K2, R) -> np.ndarray:
    """Angles (degrees) between the rays of ``x1 (N,2)`` in camera 1 and ``x2 (N,2)`` in
    camera 2, both in camera 1's frame (camera 2's rotation ``R``: ``X2 = R X1 + t``)."""
    h1 = np.concatenate([x1, np.ones((len(x1), 1))], 1) @ np.linalg.inv(K1).T
    h2 = np.concatenate([x2, np.ones((len(x2), 1))], 1) @ np.linalg.inv(K2).T @ R
    c = np.sum(h1 * h2, 1) / (np.linalg.norm(h1, axis=1) * np.linalg.norm(h2, axis=1))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def _subsample(idx, max_points):
    if idx.size <= max_points:
        return idx
    return idx[np.linspace(0, idx.size - 1, max_points).round().astype(np.int64)]


def pairwise_poses(x, K, obs, *, threshold, max_points, seed, max_iterations=2000) -> PairPoses:
    """Pooled relative poses of every camera pair.

    ``x (C, N, 2)`` pixels (``N = T·J``), ``K (C,3,3)``, ``obs (C, N)`` usable observations.
    Each pair uses at most ``max_points`` of its shared observations (evenly spread).
    """
    C, N = obs.shape
    pairs = np.array(list(combinations(range(C), 2)), dtype=np.int64).reshape(-1, 2)
    P = len(pairs)
    idx = [_subsample(np.flatnonzero(obs[i] & obs[j]), max_points) for i, j in pairs]
    n = max([len(a) for a in idx] + [1])
    x1 = np.full((P, n, 2), np.nan)
    x2 = np.full((P, n, 2), np.nan)
    for p, (i, j) in enumerate(pairs):
        x1[p, :len(idx[p])] = x[i, idx[p]]
        x2[p, :len(idx[p])] = x[j, idx[p]]
    rel = estimate_relative_pose(x1, x2, K[pairs[:, 0]], K[pairs[:, 1]], threshold=threshold,
                                 max_iterations=max_iterations, seed=seed)
    angle = np.zeros(P)
    score = np.zeros(P)
    inl = []
    for p, (i, j) in enumerate(pairs):
        m = rel.inliers[p, :len(idx[p])]
        inl.append(idx[p][m])
        if rel.valid[p] and m.sum() >= 8:
            a = ray_angles_deg(x1[p, :len(idx[p])][m], x2[p, :len(idx[p])][m], K[i], K[j],
                               rel.R[p])
            angle[p] = float(np.median(a))
            # well-conditioned depth needs rays that are neither parallel nor collinear: two
            # cameras facing each other across a ring see a joint along nearly one line (ray
            # angles ~165-170 deg), which fixes its depth no better than 10-15 deg of parallax;
            # saturate at 20 degrees
            score[p] = rel.num_in_front[p] * min(float(np.median(np.minimum(a, 180.0 - a))),
                                                 20.0) / 20.0
    valid = rel.valid & (score > 0)
    return PairPoses(pairs=pairs, R=rel.R, t=rel.t, F=rel.F, valid=valid,
                     num_points=np.array([len(a) for a in idx]), num_inliers=rel.num_inliers,
                     angle_deg=angle, score=np.where(valid, score, 0.0), inliers=inl)


def projections(K, R, t) -> np.ndarray:
    """``P = K [R | t]`` for every camera: ``(C, 3, 4)``."""
    return K @ np.concatenate([R, t[..., None]], -1)


def triangulate_registered(x, K, R, t, obs, registered, threshold):
    """Robust DLT of every observation over the registered cameras → ``X (N,3)``, ``valid (N,)``,
    ``used (C, N)``."""
    C, N = obs.shape
    m = obs & registered[:, None]
    tri = triangulate_multiview(projections(K, R, t), x, mask=m, method="dlt",
                                threshold=threshold)
    used = np.zeros((C, N), bool)
    used[:] = tri.used
    return tri.X, tri.valid & (tri.num_views >= 2), used


def _pnp_polish(X, x, K, R, t, threshold):
    """Refine a camera's pose on 2D–3D correspondences (RANSAC on reprojection error, seeded
    by the composed pose); returns the input pose if PnP fails or does worse."""
    if len(X) < 6:
        return R, t
    rvec, _ = cv2.Rodrigues(R)
    tvec = t.reshape(3, 1).copy()
    ok, rv, tv, inl = cv2.solvePnPRansac(
        X.astype(np.float64), x.astype(np.float64), K, None, rvec=rvec.copy(), tvec=tvec,
        useExtrinsicGuess=True, iterationsCount=200, reprojectionError=float(threshold),
        confidence=0.999, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or inl is None or len(inl) < 6:
        return R, t

    def err(Rm, tm):
        Xc = X @ Rm.T + tm
        z = np.maximum(Xc[:, 2:3], 1e-9)
        proj = (Xc[:, :2] / z) @ K[:2, :2].T + K[:2, 2]
        e = np.linalg.norm(proj - x, axis=1)
        return np.median(np.where(Xc[:, 2] > 0, e, 1e9))

    Rn = cv2.Rodrigues(rv)[0]
    tn = tv.reshape(3)
    return (Rn, tn) if err(Rn, tn) <= err(R, t) else (R, t)


def register_cameras(x, K, obs, pp: PairPoses, *, threshold, start=None):
    """Incremental registration from pooled pair poses.

    ``start``: index into ``pp.pairs`` of the pair to start from (default: the best score).
    Returns ``R (C,3,3)``, ``t (C,3)`` (world = the first camera of the start pair, scale =
    that pair's baseline), ``registered (C,)``, ``X (N,3)``, ``X_valid (N,)`` and ``order``
    (the registration order as a list of ``(camera, parent)``).
    """
    C, N = obs.shape
    R = np.broadcast_to(np.eye(3), (C, 3, 3)).copy()
    t = np.zeros((C, 3))
    registered = np.zeros(C, bool)
    X = np.zeros((N, 3))
    Xv = np.zeros(N, bool)
    usable = pp.valid.copy()
    if not usable.any():
        return R, t, registered, X, Xv, []
    best = int(np.argmax(pp.score)) if start is None else int(start)
    a, b = pp.pairs[best]
    R[b], t[b] = pp.R[best], pp.t[best]
    registered[[a, b]] = True
    order = [(int(a), -1), (int(b), int(a))]
    X, Xv, _ = triangulate_registered(x, K, R, t, obs, registered, threshold)
    while True:
        cand = [(pp.score[p], p) for p in range(len(pp.pairs)) if usable[p]
                and registered[pp.pairs[p, 0]] != registered[pp.pairs[p, 1]]]
        if not cand:
            break
        _, p = max(cand)
        i, j = pp.pairs[p]
        if registered[i]:   # X_j = R X_i + t
            r, c, Rrc, trc = i, j, pp.R[p], pp.t[p]
        else:               # invert: X_i = Rᵀ X_j − Rᵀ t
            r, c, Rrc, trc = j, i, pp.R[p].T, -pp.R[p].T @ pp.t[p]
        Rc = Rrc @ R[r]
        # the pair's own reconstruction (in camera r, unit baseline) vs the registered points
        pair_pts = pp.inliers[p]
        shared = pair_pts[Xv[pair_pts]]
        s = np.nan
        if shared.size >= 3:
            Pr = K[r] @ np.hstack([np.eye(3), np.zeros((3, 1))])
            Pc = K[c] @ np.hstack([Rrc, trc[:, None]])
            tri = triangulate_dlt(np.stack([Pr, Pc]), np.stack([x[r, shared], x[c, shared]]))
            Xr = X[shared] @ R[r].T + t[r]
            ok = tri.valid & tri.positive_depth & (Xr[:, 2] > 0)
            if ok.sum() >= 3:
                # depth ratio along camera r's rays: both reconstructions see the same joints
                s = float(np.median(np.linalg.norm(Xr[ok], axis=1)
                                    / np.linalg.norm(tri.X[ok], axis=1)))
        if not np.isfinite(s) or s <= 0:
            usable[p] = False       # this pair cannot place the camera; try another
            continue
        tc = Rrc @ t[r] + s * trc
        seen = obs[c] & Xv
        Rc, tc = _pnp_polish(X[seen], x[c, seen], K[c], Rc, tc, 2.0 * threshold)
        R[c], t[c] = Rc, tc
        registered[c] = True
        order.append((int(c), int(r)))
        X, Xv, _ = triangulate_registered(x, K, R, t, obs, registered, threshold)
    return R, t, registered, X, Xv, order


def register_verified(x, K, obs, pp: PairPoses, *, threshold, f_scale, starts: int = 4,
                      max_points: int = 600, iterations: int = 10):
    """:func:`register_cameras` from the ``starts`` best-scoring valid pairs, verified by the data.

    Each start is registered on at most ``max_points`` evenly spread points seen by two or
    more cameras, given ``iterations`` of :func:`geometry.bundle_adjust` (soft-L1, ``f_scale``
    px) and scored by the mean soft-L1 cost of all those points' observations (an observation
    without a triangulated point, or farther than ``10 f_scale``, costs as much as
    ``10 f_scale``). The start registering the most cameras with the lowest cost is then
    registered on every point. Returns what :func:`register_cameras` returns, plus the start
    pair ``[i, j]`` (``[]``: no valid pair) and the cost of every start tried
    (``{"i-j": cost}``; empty when only one start was possible)."""
    def name(p):
        return [int(v) for v in pp.pairs[p]] if p >= 0 else []

    from .bundle import _rho, bundle_adjust
    order = [int(p) for p in np.argsort(-pp.score, kind="stable") if pp.valid[p]][:starts]
    if len(order) <= 1:
        return (*register_cameras(x, K, obs, pp, threshold=threshold),
                name(order[0] if order else -1), {})
    N = obs.shape[1]
    cols = np.flatnonzero(obs.sum(0) >= 2)
    cols = cols[np.unique(np.linspace(0, cols.size - 1, min(max_points, cols.size)).astype(int))]
    remap = np.full(N, -1)
    remap[cols] = np.arange(cols.size)
    sub = replace(pp, inliers=[remap[i][remap[i] >= 0] for i in pp.inliers])
    xs, os_ = x[:, cols], obs[:, cols]
    best, costs = None, {}
    for p in order:
        R, t, reg, X, Xv, _ = register_cameras(xs, K, os_, sub, threshold=threshold, start=p)
        if reg.sum() < 2:
            continue
        m = os_ & reg[:, None] & Xv[None]
        ba = bundle_adjust(xs, K, R, t, np.where(Xv[:, None], X, np.nan), mask=m,
                           loss="soft_l1", f_scale=f_scale, max_nfev=iterations,
                           fixed_cameras=tuple(np.flatnonzero(~reg)) + (int(pp.pairs[p][0]),))
        e = np.where(m, ba.residuals, np.inf) if ba.valid else np.full(m.shape, np.inf)
        e = np.minimum(np.nan_to_num(e, nan=np.inf), 10.0 * f_scale)
        seen = os_ & reg[:, None]
        rho = _rho((e / f_scale) ** 2, "soft_l1")[0]
        cost = float(rho[seen].mean()) if seen.any() else float(_rho(100.0, "soft_l1")[0])
        costs["-".join(map(str, name(p)))] = cost
        if best is None or (-int(reg.sum()), cost) < best[0]:
            best = ((-int(reg.sum()), cost), p)
    p = order[0] if best is None else best[1]
    return (*register_cameras(x, K, obs, pp, threshold=threshold, start=p), name(p), costs)
