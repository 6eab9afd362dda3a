"""Slowly moving cameras: :func:`reconstruct_rig` over sliding windows of frames.

Each window of ``window`` frames (stride ``step``) is reconstructed as a static rig; every frame
takes the cameras and points of the window whose centre is nearest (among the windows that
succeeded). Each window has its own world frame (its reference camera) and its own unit scale
(median distance from the reference camera to the others), so per-frame quantities are
comparable across windows as long as the rig's shape changes slowly.

Quality (:func:`window_quality`): a window that reconstructed "successfully" can still be wrong
(a camera registered on the wrong side of the subject, a collapsed baseline). Because the rig
moves slowly, neighbouring windows must agree on the relative rotations of every camera pair,
and the reprojection error must not jump. A window is ``valid=False`` when its relative rotations
disagree with every valid window up to three positions away by more than ``max(5°, 5 ×`` the
median such disagreement``)``, or when its median reprojection error exceeds twice the median
over the windows (and by at least 1 px). Frames of rejected windows take the nearest valid
window.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera import project_points, rotation_error_deg
from ..triangulation.fusion import triangulate_multiview
from .reconstruct import check_rig_inputs, reconstruct_rig

__all__ = ["WindowedRigReconstruction", "reconstruct_rig_windowed"]


@dataclass(frozen=True)
class WindowedRigReconstruction:
    """Result of :func:`reconstruct_rig_windowed` for ``C`` cameras, ``T`` frames, ``J`` joints.

    Like :class:`geometry.RigReconstruction` but with per-frame cameras: ``R (T,C,3,3)``,
    ``t (T,C,3)``, ``K_frames (T,C,3,3)`` (the cameras of the window each frame belongs to, in
    that window's reference-camera frame), ``K (C,3,3)`` the median over the windows, ``X (T,J,3)`` in the same frame, ``point_valid (T,J)``,
    ``residuals (C,T,J)`` px, ``inliers (C,T,J)``, ``camera_valid (T,C)``, ``window_index (T,)``
    (−1 where no window succeeded), ``windows (W, 2)`` frame ranges ``[start, stop)``,
    ``window_valid (W,)`` (reconstructed and consistent with its neighbours, see the module
    docstring), ``metric``, ``summary``, ``valid`` (some window is valid);
    ``window_disagreement_deg (W,)``: the smallest median relative-rotation disagreement with
    the nearby valid windows (NaN without any); ``window_reprojection_px (W,)``: each window's
    median reprojection error (NaN where it failed).
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    K_frames: np.ndarray
    X: np.ndarray
    point_valid: np.ndarray
    residuals: np.ndarray
    inliers: np.ndarray
    camera_valid: np.ndarray
    window_index: np.ndarray
    windows: np.ndarray
    window_valid: np.ndarray
    metric: bool
    valid: bool
    summary: dict = field(default_factory=dict)
    window_disagreement_deg: np.ndarray | None = None
    window_reprojection_px: np.ndarray | None = None


def _windows(T, window, step):
    if T <= window:
        return np.array([[0, T]])
    starts = list(range(0, T - window + 1, step))
    if starts[-1] + window < T:
        starts.append(T - window)
    return np.array([[s, s + window] for s in starts])


def reconstruct_rig_windowed(x, K=None, mask=None, confidence=None, *, window: int = 100,
                             step: int | None = None, image_size=None, focal=None,
                             min_confidence: float = 0.0, **options) -> WindowedRigReconstruction:
    """:func:`geometry.reconstruct_rig` over sliding windows (slowly moving cameras).

    Args:
        x, K, mask, confidence, image_size, focal, min_confidence: as in
            :func:`geometry.reconstruct_rig` (``x (C, T, J, 2)`` px).
        window: frames per window (≥ 2). step: stride (default ``window // 2``).
        **options: passed on to :func:`geometry.reconstruct_rig` (threshold, refine_focal, …).
    Returns:
        :class:`WindowedRigReconstruction`.
    """
    x, Kc, obs, w, given = check_rig_inputs(x, K, mask, confidence, image_size, focal,
                                            min_confidence)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window: expected an integer >= 2, got {window!r}")
    step = window // 2 if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step: expected a positive integer, got {step!r}")
    C, T, J = x.shape[:3]
    wins = _windows(T, int(window), int(step))
    results = []
    for a, b in wins:
        r = reconstruct_rig(x[:, a:b], Kc if given else None, mask=obs[:, a:b],
                            confidence=w[:, a:b], image_size=image_size, focal=focal, **options)
        results.append(r)
    ok, disagree, reproj = window_quality(results)
    centres = wins.mean(1)
    idx = np.full(T, -1)
    if ok.any():
        good = np.flatnonzero(ok)
        frames = np.arange(T)[:, None]
        gap = np.abs(frames + 0.5 - centres[good][None])
        inside = (frames >= wins[good, 0][None]) & (frames < wins[good, 1][None])
        gap = np.where(inside, gap, gap + 2.0 * T)     # a window holding the frame first
        idx = good[np.argmin(gap, axis=1)]
    R = np.broadcast_to(np.eye(3), (T, C, 3, 3)).copy()
    t = np.zeros((T, C, 3))
    Kt = np.broadcast_to(Kc, (T, C, 3, 3)).copy()
    X = np.zeros((T, J, 3))
    pv = np.zeros((T, J), bool)
    res = np.full((C, T, J), np.nan)
    inl = np.zeros((C, T, J), bool)
    cv = np.zeros((T, C), bool)
    for f in range(T):
        k = idx[f]
        if k < 0:
            continue
        r, o = results[k], f - wins[k, 0]
        R[f], t[f], Kt[f], cv[f] = r.R, r.t, r.K, r.camera_valid
        if 0 <= o < _window_len(wins, k):
            X[f], pv[f] = r.X[o], r.point_valid[o]
            res[:, f], inl[:, f] = r.residuals[:, o], r.inliers[:, o]
        else:   # the frame's own window was rejected: triangulate it with the nearest cameras
            X[f], pv[f], res[:, f], inl[:, f] = _triangulate_frame(r, x[:, f], obs[:, f], w[:, f])
    med = [r.summary.get("median_reprojection_px", np.nan) for r, o in zip(results, ok) if o]
    summary = {"cameras": C, "frames": T, "joints": J, "windows": len(wins),
               "windows_valid": int(ok.sum()),
               "windows_rejected": int(sum(r.valid for r in results) - ok.sum()),
               "median_reprojection_px": float(np.median(med)) if med else float("nan"),
               "joints_valid_fraction": float(pv.mean())}
    return WindowedRigReconstruction(
        R=R, t=t, K=np.median(np.stack([r.K for r, o in zip(results, ok) if o] or [Kc]), axis=0),
        K_frames=Kt, X=X, point_valid=pv, residuals=res, inliers=inl, camera_valid=cv,
        window_index=idx, windows=wins, window_valid=ok,
        metric=bool(ok.any() and all(r.metric for r, o in zip(results, ok) if o)),
        valid=bool(ok.any()), summary=summary, window_disagreement_deg=disagree,
        window_reprojection_px=reproj)


def _window_len(wins, k):
    return int(wins[k, 1] - wins[k, 0])


def _triangulate_frame(r, xf, of, wf):
    """One frame's joints ``xf (C, J, 2)`` triangulated with window result ``r``'s cameras →
    ``X (J, 3)``, ``point_valid (J,)``, ``residuals (C, J)``, ``inliers (C, J)``."""
    P = np.einsum("cij,cjk->cik", r.K, np.concatenate([r.R, r.t[..., None]], -1))
    thr = r.summary.get("outlier_threshold_px", 10.0)
    tri = triangulate_multiview(P, xf, mask=of & r.camera_valid[:, None], weights=wf,
                                method="dlt", threshold=float(thr))
    pv = tri.valid & (tri.num_views >= 2)
    X = np.where(pv[:, None], tri.X, 0.0)
    proj = project_points(X, r.K, r.R, r.t)
    seen = of & pv[None] & r.camera_valid[:, None]
    res = np.where(seen, np.linalg.norm(np.nan_to_num(proj) - np.nan_to_num(xf), axis=-1), np.nan)
    return X, pv, res, tri.used & pv[None]


def _pair_rotations(r):
    """``(C, C, 3, 3)`` relative rotations ``R_j R_iᵀ`` of a window and ``(C, C)`` usable."""
    R = r.R
    rel = np.einsum("jab,icb->ijac", R, R)
    cv = r.camera_valid
    return rel, cv[:, None] & cv[None, :] & ~np.eye(len(cv), dtype=bool)


def _disagreement(a, b):
    """Median relative-rotation difference (degrees) of two windows over their common pairs."""
    ra, ua = _pair_rotations(a)
    rb, ub = _pair_rotations(b)
    u = ua & ub
    return float(np.median(rotation_error_deg(ra[u], rb[u]))) if u.any() else np.nan


def window_quality(results, *, min_deg: float = 5.0, factor: float = 5.0, reach: int = 3,
                   reproj_factor: float = 2.0, reproj_min_px: float = 1.0):
    """Which windows to keep: ``(valid (W,), disagreement_deg (W,), reprojection_px (W,))``
    for the per-window :class:`~geometry.RigReconstruction` results.

    A window's disagreement is the smallest median relative-rotation difference to the valid
    windows at most ``reach`` positions away (a slowly moving rig agrees with its nearest
    windows; one wrong window agrees with none). Rejected: disagreement above
    ``max(min_deg, factor ×`` the median disagreement``)`` — when every window would be, the
    best-fitting one is kept — or a median reprojection error above
    ``max(reproj_factor × median, median + reproj_min_px)``."""
    W = len(results)
    ok = np.array([r.valid for r in results], dtype=bool)
    reproj = np.array([r.summary.get("median_reprojection_px", np.nan) if r.valid else np.nan
                       for r in results], dtype=float)
    good = np.flatnonzero(ok)
    dis = np.full(W, np.nan)
    if good.size >= 2:
        for k, w in enumerate(good):
            near = good[max(0, k - reach):k + reach + 1]
            d = [_disagreement(results[w], results[v]) for v in near if v != w]
            d = [v for v in d if np.isfinite(v)]
            dis[w] = min(d) if d else np.nan
        fin = dis[good][np.isfinite(dis[good])]
        thr = max(min_deg, factor * float(np.median(fin))) if fin.size else np.inf
        bad = np.zeros(W, bool)
        bad[good] = dis[good] > thr
        if bad[good].all():
            keep = good[int(np.nanargmin(reproj[good]))] if np.isfinite(reproj[good]).any() \
                else good[0]
            bad[keep] = False
        ok &= ~bad
    fin = reproj[ok & np.isfinite(reproj)]
    if fin.size >= 2:
        med = float(np.median(fin))
        ok &= ~(reproj > max(reproj_factor * med, med + reproj_min_px))
    return ok, dis, reproj
