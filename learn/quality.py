"""Honest quality figures for ``epigeo reconstruct``: which cameras to trust, whether ``frame``
mode beats a trivial baseline, and the warnings the command prints.

- :func:`camera_quality`: per camera, registered or not, its median reprojection error and a
  flag when its detections disagree with the epipolar geometry of the other cameras (residuals
  far above theirs: detector noise, a different person chosen in that view, a wrong camera).
- :func:`keep_cameras`: a :class:`~learn.pseudo_labels.PseudoLabels` of a subset of the
  cameras expanded back to all cameras, the left-out ones with no labels (weight 0).
- :func:`frame_mode_check`: ``frame`` mode's targets against a ``rig`` reconstruction of the
  same detections, next to the trivial "mean pose" prediction.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

import pose

__all__ = ["camera_quality", "inconsistent_cameras", "keep_cameras", "frame_mode_check",
           "label_with_camera_checks", "usable",
           "INCONSISTENT_FACTOR", "INCONSISTENT_FLOOR_PX"]

#: a camera is inconsistent when its median reprojection error exceeds this factor times the
#: median of the other cameras' medians, and at least :data:`INCONSISTENT_FLOOR_PX` pixels.
INCONSISTENT_FACTOR = 4.0
INCONSISTENT_FLOOR_PX = 3.0


def camera_quality(residuals, names, used=None) -> list[dict]:
    """One row per camera from ``residuals (C, T, J)`` px (NaN = not observed / not
    reconstructed / camera not registered) and the ``names``; ``used (C,)`` marks cameras that
    took part (default all). Row keys: ``camera``, ``registered`` (the camera has residuals),
    ``observations`` (finite residuals), ``median_reprojection_px`` (None when unregistered),
    ``consistent`` (False when the residuals are far above the other cameras', see
    :data:`INCONSISTENT_FACTOR`; judged only with ≥ 3 registered cameras), ``used``."""
    res = np.asarray(residuals, np.float64)
    C = res.shape[0]
    used = np.ones(C, bool) if used is None else np.asarray(used, bool)
    med = np.full(C, np.nan)
    n = np.zeros(C, int)
    for c in range(C):
        f = res[c][np.isfinite(res[c])]
        n[c] = f.size
        if f.size:
            med[c] = float(np.median(f))
    reg = used & (n > 0)
    rows = []
    for c in range(C):
        others = reg.copy()
        others[c] = False
        consistent = True
        if reg[c] and others.sum() >= 2:
            ref = float(np.median(med[others]))
            consistent = bool(med[c] <= max(INCONSISTENT_FACTOR * ref, INCONSISTENT_FLOOR_PX))
        rows.append({"camera": str(names[c]), "registered": bool(reg[c]),
                     "observations": int(n[c]),
                     "median_reprojection_px": float(med[c]) if reg[c] else None,
                     "consistent": consistent, "used": bool(used[c])})
    return rows


def inconsistent_cameras(rows) -> list[int]:
    """Indices of registered cameras flagged inconsistent by :func:`camera_quality`, worst first
    (only the worst one when several: one bad camera inflates every other's residuals)."""
    bad = [i for i, r in enumerate(rows) if r["registered"] and not r["consistent"]]
    bad.sort(key=lambda i: -rows[i]["median_reprojection_px"])
    return bad[:1]


def keep_cameras(labels, keep, C: int, K_full):
    """Expand ``labels`` (a :class:`~learn.pseudo_labels.PseudoLabels` of the cameras ``keep``,
    in that order) to all ``C`` cameras: the left-out cameras get no labels (weights 0,
    ``valid`` False, targets 0), NaN residuals, identity/zero poses and their ``K_full``
    intrinsics. Cameras that ``labels`` itself did not register (no finite residual) are left
    out the same way — their identity pose is no pose."""
    keep = np.asarray(keep, int)
    res_sub = labels.residuals
    registered = np.isfinite(res_sub).reshape(len(keep), -1).any(1) if res_sub is not None \
        else np.ones(len(keep), bool)
    T, J = labels.X_cam.shape[1:3]

    def grow(a, fill, axis=0):
        if a is None:
            return None
        shape = list(a.shape)
        shape[axis] = C
        out = np.full(shape, fill, dtype=a.dtype)
        idx = [slice(None)] * a.ndim
        idx[axis] = keep
        out[tuple(idx)] = a
        return out

    X_cam, w, valid = grow(labels.X_cam, 0.0), grow(labels.weights, 0.0), grow(labels.valid, False)
    drop = keep[~registered]
    X_cam[drop], w[drop], valid[drop] = 0.0, 0.0, False
    R = np.broadcast_to(np.eye(3), (C, 3, 3)).copy()
    R[keep] = labels.R
    t = grow(labels.t, 0.0)
    R[drop], t[drop] = np.eye(3), 0.0
    K = np.array(K_full, np.float64, copy=True)
    K[keep] = labels.K
    Rf = tf = None
    if labels.R_frames is not None:
        Rf = np.broadcast_to(np.eye(3), (T, C, 3, 3)).copy()
        Rf[:, keep] = labels.R_frames
        tf = grow(labels.t_frames, 0.0, axis=1)
    residuals = grow(res_sub, np.nan) if res_sub is not None else np.full((C, T, J), np.nan)
    info = dict(labels.info, cameras=C, labelled_fraction=float(valid.mean()))
    return replace(labels, X_cam=X_cam, weights=w, valid=valid, R=R, t=t, K=K, info=info,
                   residuals=residuals, R_frames=Rf, t_frames=tf)


def _mean_pose(X_cam, ok):
    """Per camera, the mean of its targets over the frames where ``ok (C, T)`` → broadcast to
    ``X_cam``'s shape."""
    w = ok[..., None, None].astype(np.float64)
    n = np.maximum(w.sum(1, keepdims=True), 1.0)
    return np.broadcast_to((X_cam * w).sum(1, keepdims=True) / n, X_cam.shape)


def frame_mode_check(frame_labels, rig_labels) -> dict:
    """Is ``frame`` mode better than predicting the mean pose? Both scored by N-MPJPE (per-pose
    optimal scale, in the normalised target units) against ``rig_labels``, a ``rig``
    reconstruction of the same detections (the best reference without ground truth).

    Returns ``{"frame_vs_rig": e_f, "mean_pose_vs_rig": e_m, "worse_than_mean_pose": bool,
    "frames_compared": n}``; ``worse_than_mean_pose`` is None when nothing can be compared."""
    ref_ok = rig_labels.valid
    both = frame_labels.valid & ref_ok
    if not both.any():
        return {"frame_vs_rig": None, "mean_pose_vs_rig": None, "worse_than_mean_pose": None,
                "frames_compared": 0}
    m = (frame_labels.weights > 0) & (rig_labels.weights > 0)
    e_f = float(np.nanmean(np.where(both, pose.n_mpjpe(frame_labels.X_cam, rig_labels.X_cam,
                                                       mask=m), np.nan)))
    mref = rig_labels.weights > 0
    mean = _mean_pose(rig_labels.X_cam, ref_ok)
    e_m = float(np.nanmean(np.where(ref_ok, pose.n_mpjpe(mean, rig_labels.X_cam, mask=mref),
                                    np.nan)))
    return {"frame_vs_rig": e_f, "mean_pose_vs_rig": e_m, "worse_than_mean_pose": bool(e_f >= e_m),
            "frames_compared": int(both.sum())}


def usable(labels) -> bool:
    """The reconstruction is valid and labels at least one frame."""
    return bool(labels.info.get("reconstruction_valid", True) and labels.valid.any())


def label_with_camera_checks(run, names, K_full, *, check: bool = True):
    """Label with ``run(keep) -> PseudoLabels`` (``keep``: camera indices), leave out the cameras
    that do not register or whose detections are inconsistent with the others (one at a time,
    the worst first, reconstructing again without it while ≥ 2 cameras remain).

    Returns ``(labels for all cameras (left-out ones unlabelled, see :func:`keep_cameras`),
    per-camera rows (:func:`camera_quality` plus ``status``), warning messages)``.
    ``check=False`` (``frame`` mode, no residuals) labels once and judges nothing."""
    C = len(names)
    keep = list(range(C))
    labels = run(keep)
    if not check:
        return labels, [], []
    rows = camera_quality(labels.residuals, names)
    flagged: dict[int, dict] = {}
    msgs = []
    while usable(labels) and len(keep) > 2:
        bad = inconsistent_cameras(rows)
        if not bad:
            break
        c = keep[bad[0]]
        others = [r["median_reprojection_px"] for i, r in enumerate(rows)
                  if i != bad[0] and r["registered"]]
        row = dict(rows[bad[0]], used=False, status="left out: inconsistent with the others")
        flagged[c] = row
        msgs.append(
            f"camera {names[c]}: its detections disagree with the other cameras' epipolar "
            f"geometry (median reprojection error {row['median_reprojection_px']:.1f} px, the "
            f"others {float(np.median(others)):.1f} px): detector noise, or another person "
            "chosen in this view (re-detect with `epigeo detect --people N` and keep the "
            "person seen by every camera); left out of calibration.toml, no labels for it, the "
            "other cameras reconstructed without it")
        trial = [k for k in keep if k != c]
        again = run(trial)
        if not usable(again):
            msgs.append(f"reconstructing without camera {names[c]} failed; kept the first "
                        "reconstruction with that camera unlabelled")
            break
        keep, labels = trial, again
        rows = camera_quality(labels.residuals, [names[k] for k in keep])
    full = keep_cameras(labels, keep, C, K_full)
    out_rows = []
    for c in range(C):
        if c in flagged:
            out_rows.append(flagged[c])
            continue
        if c not in keep:   # left out by an earlier failed retry: not possible, kept for safety
            continue
        r = dict(rows[keep.index(c)])
        if not r["registered"]:
            r.update(used=False, status="left out: not registered")
            msgs.append(f"camera {names[c]} could not be registered (placed) from its detections"
                        ": left out of calibration.toml, no labels for it")
        elif not r["consistent"]:
            r["status"] = "used, but its residuals are far above the others'"
            msgs.append(f"camera {names[c]}: median reprojection error "
                        f"{r['median_reprojection_px']:.1f} px, far above the other cameras'")
        else:
            r["status"] = "used"
        out_rows.append(r)
    return full, out_rows, msgs
