"""Slowly moving cameras: :func:`reconstruct_rig` over sliding windows of frames.

Each window of ``window`` frames (stride ``step``) is reconstructed as a static rig; every frame
takes the cameras and points of the window whose centre is nearest (among the windows that
succeeded). Each window has its own world frame (its reference camera) and its own unit scale
(median distance from the reference camera to the others), so per-frame quantities are
comparable across windows as long as the rig's shape changes slowly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
    ``window_valid (W,)``, ``metric``, ``summary``, ``valid`` (some window succeeded).
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
    ok = np.array([r.valid for r in results])
    centres = wins.mean(1)
    idx = np.full(T, -1)
    if ok.any():
        good = np.flatnonzero(ok)
        idx = good[np.argmin(np.abs(np.arange(T)[:, None] + 0.5 - centres[good][None]), axis=1)]
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
        R[f], t[f], Kt[f], X[f], pv[f] = r.R, r.t, r.K, r.X[o], r.point_valid[o]
        res[:, f], inl[:, f], cv[f] = r.residuals[:, o], r.inliers[:, o], r.camera_valid
    med = [r.summary.get("median_reprojection_px", np.nan) for r in results if r.valid]
    summary = {"cameras": C, "frames": T, "joints": J, "windows": len(wins),
               "windows_valid": int(ok.sum()),
               "median_reprojection_px": float(np.median(med)) if med else float("nan"),
               "joints_valid_fraction": float(pv.mean())}
    return WindowedRigReconstruction(
        R=R, t=t, K=np.median(np.stack([r.K for r in results if r.valid] or [Kc]), axis=0),
        K_frames=Kt, X=X, point_valid=pv, residuals=res, inliers=inl, camera_valid=cv,
        window_index=idx, windows=wins, window_valid=ok,
        metric=bool(ok.any() and all(r.metric for r in results if r.valid)),
        valid=bool(ok.any()), summary=summary)
