"""3D pseudo-labels from multi-view 2D detections, the EpipolarPose way, from a rig, or calibrated.

Input: ``x (C, T, J, 2)`` pixels from ``C`` synchronised cameras (NaN = missing), optional
``confidence (C, T, J)`` in [0, 1], intrinsics ``K (C, 3, 3)``. Output: for every camera and frame
a 3D target in that camera's frame, root-relative, with per-joint weights — what a monocular 3D
network trained on that camera's images should predict.

Modes:
- ``"frame"`` — the EpipolarPose recipe (Kocabas et al. 2019), every frame on its own
  (:func:`epipolar_pair`): for each camera pair, F by RANSAC on the frame's joints,
  ``E = K2ᵀ F K1``, decomposition into four ``(R, t)`` and cheirality, polynomial (Hartley–Sturm)
  triangulation; with more than two cameras, the vector median over the camera pairs'
  reconstructions. Scale is unknown per pair, so targets are scale-normalised.
- ``"rig"`` — static-rig reconstruction (:func:`geometry.reconstruct_rig`): every frame and every
  camera at once with bundle adjustment; far more accurate on real detections.
- ``"window"`` — the rig reconstruction over sliding windows of frames (slowly moving cameras,
  :func:`geometry.reconstruct_rig_windowed`): per-frame cameras.
- ``"calibrated"`` — known cameras ``cameras=(R, t)``: robust multi-view DLT triangulation
  (:func:`geometry.triangulate_multiview`). With the true cameras this is the oracle the other
  modes are compared with.

Units: ``"normalized"`` targets are divided by the pose's RMS distance to the root (per pose);
``"metric"`` targets keep the reconstruction's units (metres with a calibrated rig in metres, or
a rig given a metric scale, e.g. ``rig_options={"subject_height": ..., "height_joints": ...}``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

import geometry as geo
from geometry.rig import check_views
from geometry.common.validate import as_array, as_matrix, as_points, check_positive

__all__ = ["PseudoLabels", "PairReconstruction", "make_pseudo_labels", "epipolar_pair",
           "root_relative", "normalize_scale", "save_pseudo_labels", "load_pseudo_labels", "MODES"]

MODES = ("frame", "rig", "window", "calibrated")


@dataclass(frozen=True)
class PseudoLabels:
    """Per-camera 3D training targets for ``C`` cameras, ``T`` frames, ``J`` joints.

    ``X_cam (C, T, J, 3)``: targets in each camera's frame, root-relative (root at 0), scale
    normalised or metric (``units``), 0 where the weight is 0; ``weights (C, T, J)`` in [0, 1]
    (0 = no label; the detector confidence where given); ``valid (C, T)``: the frame has a usable
    label for that camera; ``X (T, J, 3)``: the fused reconstruction in the world frame (camera
    0) where the mode has one, else camera 0's targets; ``R (C, 3, 3)``, ``t (C, 3)``: cameras
    (identity/zero in ``frame`` mode, which has no single rig; in ``window`` mode those of the
    middle frame); ``K (C, 3, 3)``; ``mode``; ``units``; ``root``: joint indices averaged into
    the root; ``info``: scalar summary figures; ``residuals (C, T, J)``: reprojection error (px)
    of every observation (NaN where not observed/reconstructed, all NaN in ``frame`` mode);
    ``R_frames (T, C, 3, 3)``, ``t_frames (T, C, 3)``: per-frame cameras (``window`` mode, else
    ``None``); ``pair_poses``: ``frame`` mode only, ``(pairs, R (P, T, 3, 3), t (P, T, 3),
    valid (P, T))`` — each camera pair's relative pose in every frame.
    """

    X_cam: np.ndarray
    weights: np.ndarray
    valid: np.ndarray
    X: np.ndarray
    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    mode: str
    units: str
    root: tuple
    info: dict = field(default_factory=dict)
    residuals: np.ndarray | None = None
    R_frames: np.ndarray | None = None
    t_frames: np.ndarray | None = None
    pair_poses: tuple | None = None


@dataclass(frozen=True)
class PairReconstruction:
    """The EpipolarPose recipe's steps for a batch ``(...)`` of camera pairs (:func:`epipolar_pair`).

    ``F (..., 3, 3)`` robust fundamental matrix (``x2ᵀ F x1 = 0``, unit norm); ``E (..., 3, 3)``
    ``= K2ᵀ F K1`` (unit norm, projected to the essential manifold); ``R_candidates (..., 4, 3, 3)``,
    ``t_candidates (..., 4, 3)``: the decomposition of ``E``; ``choice (...)``: the candidate
    cheirality picked (-1 where invalid); ``R``, ``t``: that candidate (``X2 = R X1 + t``,
    ``|t| = 1``); ``X (..., N, 3)``: the Hartley–Sturm triangulation in camera 1's frame (unit
    baseline); ``inliers (..., N)``: RANSAC inliers triangulated in front of both cameras;
    ``valid (...)``.
    """

    F: np.ndarray
    E: np.ndarray
    R_candidates: np.ndarray
    t_candidates: np.ndarray
    choice: np.ndarray
    R: np.ndarray
    t: np.ndarray
    X: np.ndarray
    inliers: np.ndarray
    valid: np.ndarray


def _root_point(X, root):
    return X[..., list(root), :].mean(axis=-2, keepdims=True)


def root_relative(X, root=(0,)) -> np.ndarray:
    """``X (..., J, 3)`` minus its root (the mean of joints ``root``) → ``(..., J, 3)``."""
    X = np.asarray(X, dtype=np.float64)
    return X - _root_point(X, tuple(np.atleast_1d(root)))


def normalize_scale(X, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Divide root-relative poses ``X (..., J, 3)`` by their RMS joint norm over ``mask (..., J)``.

    Returns ``(X / s, s)`` with ``s (...)``; ``s = 1`` where no joint is usable.
    """
    X = np.asarray(X, dtype=np.float64)
    m = np.ones(X.shape[:-1], bool) if mask is None else np.asarray(mask, bool)
    sq = np.where(m, np.sum(X * X, axis=-1), 0.0)
    n = m.sum(-1)
    s = np.sqrt(np.divide(sq.sum(-1), n, out=np.zeros(n.shape), where=n > 0))
    s = np.where(s > 1e-12, s, 1.0)
    return X / s[..., None, None], s


def epipolar_pair(x1, x2, K1, K2, mask=None, *, threshold: float = 3.0,
                  seed: int = 0) -> PairReconstruction:
    """EpipolarPose's two-view step for a batch of problems (e.g. one per frame).

    ``x1, x2 (..., N, 2)`` pixels of the same joints in cameras 1 and 2 (NaN = missing);
    ``K1, K2 (..., 3, 3)`` (broadcast); ``mask (..., N)``. Steps: F by RANSAC
    (:func:`geometry.estimate_fundamental`, Sampson threshold px) → ``E = K2ᵀ F K1``
    (:func:`geometry.essential_from_fundamental`) → the four ``(R, t)``
    (:func:`geometry.decompose_essential`) → cheirality on the inliers
    (:func:`geometry.recover_pose`) → Hartley–Sturm triangulation with ``P1 = K1 [I | 0]``,
    ``P2 = K2 [R | t]`` (:func:`geometry.triangulate_optimal`). Returns :class:`PairReconstruction`.
    """
    x1, x2, K1, K2 = _pair_inputs(x1, x2, K1, K2)
    fr = geo.estimate_fundamental(x1, x2, mask, threshold=threshold, seed=seed)
    return _pair_from_fundamental(x1, x2, K1, K2, fr)


def _pair_inputs(x1, x2, K1, K2):
    """Checked ``x1, x2 (..., N, 2)`` and ``K1, K2`` broadcast to ``(..., 3, 3)``."""
    x1 = as_points("x1", x1)
    x2 = as_points("x2", x2)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected the shape of x1 {x1.shape}, got shape {x2.shape}")
    batch = x1.shape[:-2]
    return (x1, x2, np.broadcast_to(as_matrix("K1", K1, 3, 3), batch + (3, 3)),
            np.broadcast_to(as_matrix("K2", K2, 3, 3), batch + (3, 3)))


def _pair_from_fundamental(x1, x2, K1, K2, fr) -> PairReconstruction:
    """:func:`epipolar_pair` after the F-RANSAC step (``fr``: its ``F``, ``inliers``, ``valid``;
    checked inputs); :mod:`learn.warmup` compiles this part on its own."""
    batch = x1.shape[:-2]
    E = geo.essential_from_fundamental(fr.F, K1, K2)
    Rc, tc = geo.decompose_essential(E)
    pr = geo.recover_pose(E, x1, x2, K1, K2, mask=fr.inliers)
    valid = fr.valid & pr.valid
    # which candidate cheirality chose (recover_pose returns one of the four exactly)
    d = (np.linalg.norm(Rc - pr.R[..., None, :, :], axis=(-2, -1))
         + np.linalg.norm(tc - pr.t[..., None, :], axis=-1))
    choice = np.where(valid, np.argmin(d, axis=-1), -1)
    P1 = np.concatenate([K1, np.zeros(batch + (3, 1))], -1)
    P2 = geo.projection_matrix(K2, pr.R, pr.t)
    tri = geo.triangulate_optimal(x1, x2, P1, P2, F=fr.F, mask=fr.inliers)
    inl = fr.inliers & tri.valid & tri.positive_depth & valid[..., None]
    return PairReconstruction(F=fr.F, E=E, R_candidates=Rc, t_candidates=tc, choice=choice,
                              R=pr.R, t=pr.t, X=np.where(inl[..., None], tri.X, 0.0),
                              inliers=inl, valid=valid)


def _check_inputs(x, K, confidence, image_size, min_confidence):
    x, conf = check_views(x, confidence)
    C = x.shape[0]
    mask = np.all(np.isfinite(x), axis=-1)
    if conf is not None:
        mask &= conf > min_confidence
    if K is None:
        if image_size is None:
            raise ValueError("K: give intrinsics K (C, 3, 3) or image_size (width, height)")
        K = geo.intrinsics_from_image_size(image_size)
    K = as_matrix("K", K, 3, 3)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (C, 3, 3)).copy()
    K = as_matrix("K", K, 3, 3, (C,))
    return x, conf, mask, K


def _frame_pairs(x, K, mask):
    """Every camera pair of the frame recipe → ``pairs``, ``x1, x2 (P, T, J, 2)``, ``K1, K2
    (P, 1, 3, 3)``, ``m (P, T, J)``."""
    pairs = list(combinations(range(x.shape[0]), 2))
    I = np.array([p[0] for p in pairs])
    Jc = np.array([p[1] for p in pairs])
    return pairs, x[I], x[Jc], K[I][:, None], K[Jc][:, None], mask[I] & mask[Jc]


def _frame_mode(x, K, mask, root, threshold, seed):
    """The per-frame EpipolarPose recipe → targets in each camera (normalised), weights, info."""
    C, T, J = x.shape[:3]
    pairs, x1, x2, K1, K2, m = _frame_pairs(x, K, mask)
    rec = epipolar_pair(x1, x2, K1, K2, m, threshold=threshold, seed=seed)
    ok = rec.inliers                                                 # (P, T, J)
    X_j = np.einsum("ptab,ptnb->ptna", rec.R, rec.X) + rec.t[:, :, None, :]
    # candidates per camera: the pairs it belongs to, expressed in its own frame
    cand = [[] for _ in range(C)]
    for p, (i, j) in enumerate(pairs):
        cand[i].append((rec.X[p], ok[p]))
        cand[j].append((X_j[p], ok[p]))
    X_cam = np.zeros((C, T, J, 3))
    w = np.zeros((C, T, J))
    tt = np.arange(T)
    for c in range(C):
        Xc = np.stack([a for a, _ in cand[c]])                       # (M, T, J, 3)
        okc = np.stack([b for _, b in cand[c]])                      # (M, T, J)
        root_ok = okc[..., list(root)].all(-1)
        Xr, _ = normalize_scale(root_relative(Xc, root), okc)
        Xr = np.where(okc[..., None], Xr, 0.0)
        usable = root_ok & (okc.sum(-1) >= max(3, J // 2))           # (M, T)
        med = geo.vector_median(np.moveaxis(Xr, 0, 1).reshape(T, -1, J * 3),
                                mask=np.moveaxis(usable, 0, 1))
        k = np.maximum(med.index, 0)                                 # (T,) chosen candidate
        X_cam[c] = Xr[k, tt]
        w[c] = okc[k, tt] & (usable[k, tt] & med.valid)[:, None]
    info = {"pairs": len(pairs), "pair_frames_valid_fraction": float(rec.valid.mean())}
    return X_cam, w, (pairs, rec.R, rec.t, rec.valid), info


def _calibrated(x, K, mask, conf, cameras, threshold):
    """Robust DLT triangulation with known cameras → world points, validity, residuals.

    ``threshold`` (px) drops views reprojecting farther; ``None`` = adaptive like
    :func:`geometry.reconstruct_rig`: a first pass at 50 px, then ``max(3, 4 σ)`` with σ the
    robust (MAD) per-axis scale of the first pass's residuals."""
    C, T, J = x.shape[:3]
    if not isinstance(cameras, (tuple, list)) or len(cameras) != 2:
        raise ValueError("cameras: expected a pair (R (C, 3, 3), t (C, 3)) for mode "
                         "'calibrated'")
    R = as_matrix("cameras[0] (R)", cameras[0], 3, 3)
    if R.shape != (C, 3, 3):
        raise ValueError(f"cameras[0] (R): expected shape {(C, 3, 3)}, got shape {R.shape}")
    t = as_array("cameras[1] (t)", cameras[1])
    if t.shape != (C, 3):
        raise ValueError(f"cameras[1] (t): expected shape {(C, 3)}, got shape {t.shape}")
    P = geo.projection_matrix(K, R, t)                               # (C, 3, 4)

    def tri_at(thr):
        return geo.triangulate_multiview(P, np.moveaxis(x, 0, 1), mask=np.moveaxis(mask, 0, 1),
                                         weights=None if conf is None else np.moveaxis(conf, 0, 1),
                                         method="dlt", threshold=thr)
    if threshold is None:
        tri = tri_at(50.0)
        ok = tri.valid & (tri.num_views >= 2)
        X0 = np.where(ok[..., None], tri.X, 0.0)
        r0 = np.linalg.norm(geo.project_points(X0[None], K[:, None], R[:, None], t[:, None])
                            - x, axis=-1)[np.moveaxis(tri.used, 0, 1) & ok[None]]
        sigma = 1.4826 * float(np.median(r0)) / np.sqrt(2.0) if r0.size else 1.0
        threshold = min(50.0, max(3.0, 4.0 * sigma))
        tri = tri_at(threshold)
    else:
        tri = tri_at(threshold)
    jv = tri.valid & (tri.num_views >= 2)                            # (T, J)
    X = np.where(jv[..., None], tri.X, 0.0)
    proj = geo.project_points(X[None], K[:, None], R[:, None], t[:, None])
    res = np.linalg.norm(proj - x, axis=-1)
    res = np.where(mask & jv[None], res, np.nan)
    used = np.moveaxis(tri.used, 0, 1) & jv[None]
    info = {"median_reprojection_px": float(np.nanmedian(res[used])) if used.any()
            else float("nan"), "inlier_fraction": float(used.sum() / max(1, mask.sum())),
            "outlier_threshold_px": float(threshold)}
    return R, t, X, jv, res, info


def make_pseudo_labels(x, K=None, confidence=None, mode: str = "rig", *, image_size=None,
                       root=0, units: str = "normalized", min_confidence: float = 0.2,
                       threshold: float = 3.0, seed: int = 0, window: int = 100,
                       rig_options: dict | None = None, cameras=None) -> PseudoLabels:
    """Per-camera 3D training targets from multi-view 2D.

    Args:
        x: ``(C, T, J, 2)`` pixels (NaN = missing), undistorted (see
            :func:`geometry.undistort_points`).
        K: ``(C, 3, 3)`` (or one ``(3, 3)``) intrinsics; if ``None``, a guess from ``image_size``
            (``(width, height)`` px; ``rig``/``window`` then estimate the focal length: Bougnoux
            from the pooled F, refined in bundle adjustment; ``rig_options={"focal": f}`` gives a
            starting guess).
        confidence: optional ``(C, T, J)`` detector confidences; observations at or below
            ``min_confidence`` are ignored, the rest weight the fits and the label weights.
        mode: ``"frame"``, ``"rig"``, ``"window"`` or ``"calibrated"`` (module docstring).
        root: joint index, or indices averaged into the root (e.g. both hips).
        units: ``"normalized"`` (per-pose RMS scale 1) or ``"metric"`` (the reconstruction's
            units; not available in ``frame`` mode).
        threshold: RANSAC threshold (Sampson distance, px) of ``frame``/``rig``/``window``.
            In ``calibrated`` mode a view is dropped when it reprojects farther than
            ``rig_options["outlier_threshold"]`` px, by default an adaptive ``max(3, 4 σ)``
            (σ: robust residual scale), as in :func:`geometry.reconstruct_rig`.
        seed: randomness. window: frames per window (``window`` mode).
        rig_options: keyword arguments for :func:`geometry.reconstruct_rig` (``rig``/``window``).
        cameras: ``(R (C, 3, 3), t (C, 3))`` world→camera poses, for ``mode="calibrated"``.
    Returns:
        :class:`PseudoLabels`. A frame gets a label for a camera (``valid``) when its root and at
        least ``max(3, J // 2)`` joints were reconstructed.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if units not in ("normalized", "metric"):
        raise ValueError(f"units: expected 'normalized' or 'metric', got {units!r}")
    if units == "metric" and mode == "frame":
        raise ValueError("units: 'metric' needs mode 'rig', 'window' or 'calibrated' "
                         "(frame mode has no scale)")
    if (cameras is None) == (mode == "calibrated"):
        raise ValueError("cameras: give (R, t) exactly when mode='calibrated', got "
                         f"{'None' if cameras is None else 'cameras'} with mode={mode!r}")
    check_positive("threshold", threshold)
    K_given = K is not None
    x, conf, mask, K = _check_inputs(x, K, confidence, image_size, min_confidence)
    C, T, J = x.shape[:3]
    root = tuple(int(r) for r in np.atleast_1d(root))
    if any(r < 0 or r >= J for r in root):
        raise ValueError(f"root: joint indices must lie in [0, {J}), got {root}")
    info: dict = {"mode": mode, "cameras": C, "frames": T, "joints": J}
    residuals = np.full((C, T, J), np.nan)
    R_frames = t_frames = pair_poses = None
    if mode == "frame":
        X_cam, w, pair_poses, extra = _frame_mode(x, K, mask, root, threshold, seed)
        info.update(extra)
        R = np.broadcast_to(np.eye(3), (C, 3, 3)).copy()
        t = np.zeros((C, 3))
        X = X_cam[0]
    else:
        if mode == "calibrated":
            R, t, X, jv, residuals, extra = _calibrated(
                x, K, mask, conf, cameras, (rig_options or {}).get("outlier_threshold"))
            info.update(extra)
            Rf, tf = R[None], t[None]
        else:
            opts = dict(rig_options or {})
            fn = geo.reconstruct_rig if mode == "rig" else geo.reconstruct_rig_windowed
            if mode == "window":
                opts["window"] = window
            if not K_given:  # let the rig estimate the focal length from the image size
                opts.setdefault("image_size", image_size)
            rec = fn(x, K=K if K_given else None, mask=mask, confidence=conf, seed=seed, **opts)
            X, jv, residuals, K = rec.X, rec.point_valid, rec.residuals, rec.K
            if mode == "rig":
                R, t = rec.R, rec.t
                Rf, tf = R[None], t[None]
            else:
                R_frames, t_frames = rec.R, rec.t
                R, t = rec.R[T // 2], rec.t[T // 2]
                Rf, tf = rec.R, rec.t
            info.update({k: v for k, v in rec.summary.items()
                         if isinstance(v, (int, float, str, bool, np.floating, np.integer))})
            info["reconstruction_valid"] = bool(rec.valid)
            info["metric"] = bool(rec.metric)
        # (T or 1, C, 3, 3) cameras applied to the frame's world points → (C, T, J, 3)
        Xc = np.einsum("tcab,tjb->ctja", np.broadcast_to(Rf, (T, C, 3, 3)), X) \
            + np.moveaxis(np.broadcast_to(tf, (T, C, 3)), 0, 1)[:, :, None, :]
        Xc = root_relative(Xc, root)
        w = np.broadcast_to(jv, (C, T, J)).astype(np.float64)
        X_cam = normalize_scale(Xc, w > 0)[0] if units == "normalized" else Xc
    root_ok = np.all(w[..., list(root)] > 0, axis=-1)
    valid = root_ok & ((w > 0).sum(-1) >= max(3, J // 2))
    w = np.where(valid[..., None], w, 0.0)
    if conf is not None:
        w = w * np.clip(conf, 0.0, 1.0)
    X_cam = np.where(w[..., None] > 0, X_cam, 0.0)
    info["labelled_fraction"] = float(valid.mean())
    return PseudoLabels(X_cam=X_cam, weights=w, valid=valid, X=np.nan_to_num(X), R=R, t=t, K=K,
                        mode=mode, units=units, root=root, info=info, residuals=residuals,
                        R_frames=R_frames, t_frames=t_frames, pair_poses=pair_poses)


# the dataset file (kept in its own module; re-exported here for existing callers)
from .label_files import load_pseudo_labels, save_pseudo_labels  # noqa: E402
