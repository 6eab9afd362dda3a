"""Sessions: one static rig, many trials — calibrate once from all of them, then label every frame.

A capture day is one rig and many trials (Pose2Sim's *session*; Human3.6M's ~30 sequences per
subject on the same four cameras). Reconstructing each trial on its own costs time in proportion
to its frames and gives each trial only its own motion to calibrate from: a subject sitting still
gives a poor rig. Here:

1. :func:`calibrate_session` picks a bounded, informative subset of frames over *all* trials
   (:func:`geometry.rig.frames.select_frames`: evenly over every trial's time plus farthest-point
   frames in where the person is and how large they appear in each camera), reconstructs the rig
   from it (:func:`geometry.reconstruct_rig`: pooled RANSAC, registration, bundle adjustment), and
   scores every camera on the whole session; its cost no longer grows with the frames.
2. :func:`triangulate_session` labels every frame of every trial with the calibrated cameras in
   large batched calls of the robust multi-view DLT (:func:`geometry.triangulate_multiview`).

Several people per frame are independent observations of the same rig: give a trial as
``(C, T, P, J, 2)``. A one-trial session is :func:`reconstruct_rig` on the selected frames plus
the same labelling.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..common.checks import check_int, check_real, check_seed
from ..common.validate import as_array, as_matrix, as_points
from ..triangulation.fusion import triangulate_multiview
from .frames import select_frames
from .initialise import projections
from .reconstruct import reconstruct_rig
from .selfcalib import intrinsics_from_image_size

__all__ = ["SessionCalibration", "TrialLabels", "calibrate_session", "triangulate_session",
           "reconstruct_session"]


@dataclass(frozen=True)
class SessionCalibration:
    """The rig of a session of ``C`` cameras.

    ``R (C,3,3)``, ``t (C,3)`` world→camera poses (``x_cam = R X + t``; the reference camera is
    ``I``, ``0``; cameras that could not be registered are ``I``, ``0`` with ``camera_valid``
    False); ``K (C,3,3)``; ``focal_std (C,)`` px; ``metric``: the scale is metric (else: unit =
    median camera distance from the reference camera); ``outlier_threshold_px``: the
    reprojection error above which labelling drops a view; ``cameras``: per-camera diagnostics
    (observations, frames seen, median reprojection error in px on the calibration frames);
    ``trials``: per-trial diagnostics (frames, frames used for calibration, cameras without
    detections, messages); ``messages``: problems found in the input, each naming the trial and
    camera; ``summary``: the rig reconstruction's figures and timings; ``valid``: at least two
    cameras registered.
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    focal_std: np.ndarray
    camera_valid: np.ndarray
    metric: bool
    outlier_threshold_px: float
    valid: bool
    cameras: list = field(default_factory=list)
    trials: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    joint_bias: np.ndarray | None = None


@dataclass(frozen=True)
class TrialLabels:
    """3D of one trial with known cameras. ``X (T, [P,] J, 3)`` world joints (0 where not
    valid); ``point_valid (T, [P,] J)``: triangulated from ≥ 2 consistent views;
    ``residuals (C, T, [P,] J)`` reprojection error in px (NaN where not observed or not
    reconstructed); ``inliers (C, T, [P,] J)``: the observations each point rests on;
    ``summary``: frames, labelled fraction, median reprojection error."""

    X: np.ndarray
    point_valid: np.ndarray
    residuals: np.ndarray
    inliers: np.ndarray
    summary: dict = field(default_factory=dict)


def _as_trials(trials, arg, confidences, masks):
    """Validate → list of ``(x (C, N, J, 2), w (C, N, J), shape)`` with people folded into N."""
    if not isinstance(trials, (list, tuple)):
        raise ValueError(f"{arg}: expected a sequence of per-trial arrays (C, T, J, 2) or "
                         f"(C, T, P, J, 2), got {type(trials).__name__}")
    if len(trials) == 0:
        raise ValueError(f"{arg}: no trials")
    for name, seq in (("confidences", confidences), ("masks", masks)):
        if seq is not None and not isinstance(seq, (list, tuple)):
            raise ValueError(f"{name}: expected a sequence with one entry per trial, got "
                             f"{type(seq).__name__}")
        if seq is not None and len(seq) != len(trials):
            raise ValueError(f"{name}: expected one entry per trial ({len(trials)}), "
                             f"got {len(seq)}")
    out, C, J = [], None, None
    for i, xi in enumerate(trials):
        x = as_points(f"{arg}[{i}]", xi)
        if x.ndim not in (4, 5):
            raise ValueError(f"{arg}[{i}]: expected shape (C, T, J, 2) or (C, T, P, J, 2), got "
                             f"shape {x.shape}")
        if C is None:
            C, J = x.shape[0], x.shape[-2]
        if x.shape[0] != C or x.shape[-2] != J:
            raise ValueError(f"{arg}[{i}]: {x.shape[0]} cameras × {x.shape[-2]} joints, but "
                             f"trial 0 has {C} × {J} (shape {x.shape})")
        shape = x.shape[1:-2]
        w = np.ones(x.shape[:-1])
        if x.shape[0] < 2 or x.shape[-2] < 1 or any(s_ < 0 for s_ in x.shape):
            raise ValueError(f"{arg}[{i}]: need at least 2 cameras and 1 joint, got shape "
                             f"{x.shape}")
        if confidences is not None and confidences[i] is not None:
            w = np.nan_to_num(as_array(f"confidences[{i}]", confidences[i]), nan=0.0)
            if w.shape != x.shape[:-1]:
                raise ValueError(f"confidences[{i}]: expected shape {x.shape[:-1]}, got shape "
                                 f"{w.shape}")
            if np.any(w < 0):
                raise ValueError(f"confidences[{i}]: expected non-negative values")
        if masks is not None and masks[i] is not None:
            m = np.asarray(masks[i])
            if m.shape != x.shape[:-1] or m.dtype != bool:
                raise ValueError(f"masks[{i}]: expected bool shape {x.shape[:-1]}, got "
                                 f"{m.dtype} shape {m.shape}")
            w = np.where(m, w, 0.0)
        w = np.where(np.all(np.isfinite(x), -1), w, 0.0)
        out.append((x.reshape(C, -1, J, 2), w.reshape(C, -1, J), shape))
    if C < 2:
        raise ValueError(f"{arg}: need at least 2 cameras, got {C}")
    return out, C, J


def _intrinsics(K, image_size, C, focal):
    if K is not None:
        K = np.broadcast_to(as_matrix("K", K, 3, 3), (C, 3, 3)).copy() if np.ndim(K) == 2 \
            else as_matrix("K", K, 3, 3, (C,)).copy()
        return K, True
    if image_size is None:
        raise ValueError("K: give intrinsics K (C, 3, 3) or image_size (width, height)")
    size = as_array("image_size", image_size, tail=(2,), finite=True)
    return np.broadcast_to(intrinsics_from_image_size(size, focal), (C, 3, 3)).copy(), False


def calibrate_session(trials, K=None, *, confidences=None, masks=None, image_size=None,
                      focal=None, names=None, max_frames: int = 600, min_confidence: float = 0.0,
                      seed: int = 0, **rig_options) -> SessionCalibration:
    """Calibrate one static rig from every trial of a session.

    Args:
        trials: sequence of ``(C, T_i, J, 2)`` (or ``(C, T_i, P, J, 2)`` with several people,
            NaN = absent) undistorted pixels, one per trial, same cameras and joints, any
            lengths (an empty trial is reported and skipped).
        K: ``(C, 3, 3)`` or ``(3, 3)`` intrinsics, or ``None`` with ``image_size`` (``(2,)`` or
            ``(C, 2)`` px) and optional ``focal`` px: estimated as in :func:`reconstruct_rig`.
        confidences, masks: optional per-trial ``(C, T_i[, P], J)`` detector confidences
            (``≤ min_confidence`` drops) and bool masks.
        names: optional trial names for the messages (default ``trial <i>``).
        max_frames: frames (person-frames) used for calibration, over all trials.
        seed: RANSAC and selection seed. rig_options: passed to :func:`reconstruct_rig`
            (``refine_focal``, ``subject_height``/``height_joints``, ``up_joints``, …).
    Returns:
        :class:`SessionCalibration`. Bad arguments raise ``ValueError`` naming the trial.
    """
    t0 = time.perf_counter()
    max_frames = check_int("max_frames", max_frames, 2, None)
    min_confidence = check_real("min_confidence", min_confidence, 0.0)
    seed = check_seed("seed", seed)
    data, C, J = _as_trials(trials, "trials", confidences, masks)
    if names is not None and (isinstance(names, str) or not hasattr(names, "__len__")):
        raise ValueError(f"names: expected one name per trial, got {names!r}")
    names = [f"trial {i}" for i in range(len(data))] if names is None else list(map(str, names))
    if len(names) != len(data):
        raise ValueError(f"names: expected {len(data)} names, got {len(names)}")
    K, K_given = _intrinsics(K, image_size, C, focal)
    messages, trial_info = [], []
    for name, (x, w, shape) in zip(names, data):
        seen = (w > min_confidence).any(axis=(1, 2))
        info = {"name": name, "frames": int(shape[0]) if shape else 0,
                "people_slots": int(np.prod(shape[1:])) if len(shape) > 1 else 1,
                "cameras_without_detections": [int(c) for c in np.flatnonzero(~seen)]}
        if x.shape[1] == 0 or not seen.any():
            messages.append(f"{name}: empty (no detections in any camera); skipped")
        elif (~seen).any():
            messages.append(f"{name}: camera(s) {', '.join(map(str, np.flatnonzero(~seen)))} "
                            "have no detections in this trial; the others are used")
        trial_info.append(info)
    xs = np.concatenate([d[0] for d in data], axis=1)
    ws = np.concatenate([d[1] for d in data], axis=1)
    groups = np.concatenate([np.full(d[0].shape[1], i) for i, d in enumerate(data)])
    obs = ws > min_confidence
    t_sel = time.perf_counter()
    sel = select_frames(xs, K, obs, max_frames=max_frames, groups=groups)
    t_sel = time.perf_counter() - t_sel
    for i, info in enumerate(trial_info):
        info["frames_for_calibration"] = int(np.sum(groups[sel] == i))
    if sel.size < 2:
        return _invalid(C, K, messages + ["session: fewer than 2 frames seen by 2 cameras"],
                        trial_info, t0)
    rig_kw = dict(rig_options)
    rig_kw.setdefault("max_ba_points", sel.size * J)
    rec = reconstruct_rig(xs[:, sel], K if K_given else None, mask=obs[:, sel],
                          confidence=ws[:, sel], image_size=None if K_given else image_size,
                          focal=focal, min_confidence=min_confidence, seed=seed, **rig_kw)
    if not rec.valid:
        return _invalid(C, K, messages + ["session: the rig could not be reconstructed "
                                          f"({rec.summary.get('cameras_registered', 0)} cameras "
                                          "registered)"], trial_info, t0)
    cams = []
    for c in range(C):
        r = rec.residuals[c][np.isfinite(rec.residuals[c])]
        cams.append({"camera": c, "registered": bool(rec.camera_valid[c]),
                     "observations": int(obs[c].sum()),
                     "frames_seen": int(obs[c].any(-1).sum()),
                     "median_reprojection_px": float(np.median(r)) if r.size else float("nan")})
        if not rec.camera_valid[c]:
            messages.append(f"camera {c}: could not be registered; it is left out of the "
                            "labels")
    summary = dict(rec.summary)
    summary.update({"trials": len(data), "frames": int(xs.shape[1]),
                    "frames_for_calibration": int(sel.size), "selection_seconds": t_sel,
                    "seconds": time.perf_counter() - t0})
    return SessionCalibration(R=rec.R, t=rec.t, K=rec.K, focal_std=rec.focal_std,
                              camera_valid=rec.camera_valid, metric=rec.metric,
                              outlier_threshold_px=float(summary["outlier_threshold_px"]),
                              valid=True, cameras=cams, trials=trial_info, messages=messages,
                              summary=summary, joint_bias=rec.joint_bias)


def _invalid(C, K, messages, trial_info, t0):
    return SessionCalibration(
        R=np.broadcast_to(np.eye(3), (C, 3, 3)).copy(), t=np.zeros((C, 3)), K=K,
        focal_std=np.full(C, np.inf), camera_valid=np.zeros(C, bool), metric=False,
        outlier_threshold_px=float("nan"), valid=False, trials=trial_info, messages=messages,
        summary={"seconds": time.perf_counter() - t0})


def triangulate_session(trials, calibration: SessionCalibration, *, confidences=None,
                        masks=None, threshold: float | None = None, min_confidence: float = 0.0,
                        chunk_points: int = 2_000_000) -> list[TrialLabels]:
    """Every frame of every trial triangulated with the session's cameras (robust multi-view
    DLT dropping views that reproject worse than ``threshold`` px, default the calibration's
    ``outlier_threshold_px``), in batched calls of up to ``chunk_points`` frame-joints. The
    calibration's ``joint_bias`` (when set) is subtracted from the detections first; residuals
    are measured against the de-biased detections.

    ``trials``, ``confidences``, ``masks`` as in :func:`calibrate_session`. Returns one
    :class:`TrialLabels` per trial, shaped like its input."""
    if not isinstance(calibration, SessionCalibration):
        raise ValueError("calibration: expected a SessionCalibration (from calibrate_session)")
    min_confidence = check_real("min_confidence", min_confidence, 0.0)
    chunk_points = check_int("chunk_points", chunk_points, 1, None)
    if threshold is not None:
        threshold = check_real("threshold", threshold, 0.0, lo_open=True)
    data, C, J = _as_trials(trials, "trials", confidences, masks)
    if C != calibration.R.shape[0]:
        raise ValueError(f"trials: {C} cameras, the calibration has {calibration.R.shape[0]}")
    thr = calibration.outlier_threshold_px if threshold is None else float(threshold)
    if not np.isfinite(thr) or thr <= 0:
        thr = 10.0
    reg = calibration.camera_valid
    P = projections(calibration.K, calibration.R, calibration.t)
    xs = np.concatenate([d[0] for d in data], axis=1)
    jb = calibration.joint_bias
    if jb is not None:
        if np.shape(jb) != (C, J, 2):
            raise ValueError(f"calibration: joint_bias has shape {np.shape(jb)}, the trials "
                             f"need ({C}, {J}, 2)")
        xs = xs - np.asarray(jb, dtype=np.float64)[:, None]
    xs = xs.reshape(C, -1, 2)
    ws = np.concatenate([d[1] for d in data], axis=1).reshape(C, -1)
    use = (ws > min_confidence) & reg[:, None]
    N = xs.shape[1]
    X, ok, used = np.zeros((N, 3)), np.zeros(N, bool), np.zeros((C, N), bool)
    for a in range(0, N, chunk_points):
        b = min(N, a + chunk_points)
        if calibration.valid:
            tri = triangulate_multiview(P, xs[:, a:b], mask=use[:, a:b], weights=ws[:, a:b],
                                        method="dlt", threshold=thr)
            okc = tri.valid & (tri.num_views >= 2)
            X[a:b] = np.where(okc[:, None], tri.X, 0.0)
            ok[a:b], used[:, a:b] = okc, tri.used & okc[None]
    res = np.full((C, N), np.nan)
    for c in range(C):   # element-wise: OpenBLAS's (N,3)@(3,3) is slow on the CI machine
        Rc, tc, Kc = calibration.R[c], calibration.t[c], calibration.K[c]
        Xc = [X[:, 0] * Rc[i, 0] + X[:, 1] * Rc[i, 1] + X[:, 2] * Rc[i, 2] + tc[i]
              for i in range(3)]
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = Xc[0] / Xc[2], Xc[1] / Xc[2]
            du = Kc[0, 0] * a + Kc[0, 1] * b + Kc[0, 2] - xs[c, :, 0]
            dv = Kc[1, 1] * b + Kc[1, 2] - xs[c, :, 1]
        m = use[c] & ok
        res[c, m] = np.sqrt(du[m] ** 2 + dv[m] ** 2)
    out, a = [], 0
    for x, _, shape in data:
        n = x.shape[1] * J
        r = res[:, a:a + n]
        fin = r[np.isfinite(r)]
        pv = ok[a:a + n]
        out.append(TrialLabels(
            X=X[a:a + n].reshape(shape + (J, 3)), point_valid=pv.reshape(shape + (J,)),
            residuals=r.reshape((C,) + shape + (J,)),
            inliers=used[:, a:a + n].reshape((C,) + shape + (J,)),
            summary={"frames": int(shape[0]) if shape else 0,
                     "labelled_fraction": float(pv.mean()) if pv.size else 0.0,
                     "median_reprojection_px": float(np.median(fin)) if fin.size
                     else float("nan")}))
        a += n
    return out


def reconstruct_session(trials, K=None, *, confidences=None, masks=None, **options):
    """:func:`calibrate_session` then :func:`triangulate_session` on the same trials →
    ``(SessionCalibration, [TrialLabels, ...])``. ``options`` go to :func:`calibrate_session`
    (``min_confidence`` to both)."""
    calib = calibrate_session(trials, K, confidences=confidences, masks=masks, **options)
    labels = triangulate_session(trials, calib, confidences=confidences, masks=masks,
                                 min_confidence=options.get("min_confidence", 0.0))
    return calib, labels
