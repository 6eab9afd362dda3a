"""Static-rig reconstruction from 2D joints: every frame, every camera, bundle adjustment.

:func:`reconstruct_rig` takes ``x (C cameras, T frames, J joints, 2)`` pixels of one person filmed
by a static, synchronised rig and recovers every camera's pose (and optionally focal length) and
the person's 3D joints in every frame, without a calibration object:

1. pooled pairwise relative poses — all frames of a camera pair in one robust F-RANSAC problem
   (``E = K2ᵀ F K1``, cheirality), which is what makes real detections usable at all;
2. a camera graph from a start pair outwards: rotations composed, each new camera's baseline
   scaled through the joints it shares with the cameras already placed, polished by PnP; grown
   from each of the four best-conditioned pairs, the lowest short-bundle cost kept
   (:func:`geometry.rig.initialise.register_verified`);
3. robust all-camera triangulation (DLT with reprojection-error outlier rejection);
4. bundle adjustment of cameras (and focal lengths) and points with a robust loss and confidence
   weights on an evenly spread subset of frames (sparse Schur-complement Levenberg–Marquardt, see
   :func:`geometry.bundle_adjust`), then every frame triangulated with the refined cameras.

Gauge: camera 0 defines the world (``R_0 = I``, ``t_0 = 0``; the first camera that sees anything
if camera 0 sees nothing); the scale is the median distance from camera 0's centre to the other
cameras' centres unless a metric scale is asked for (``subject_height`` or ``bone_lengths``);
``up_joints`` additionally rotates the world so the subject's mean spine direction is +z.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .initialise import pairwise_poses, projections, register_verified
from ..common.checks import check_int, index_array
from ..common.validate import as_array, as_mask, as_matrix, as_points, check_positive
from ..alignment import rotation_aligning, scale_from_bone_lengths, scale_from_height, up_from_spine
from .bias import alternate_bias_rounds, reproject
from .bundle import bundle_adjust
from .frames import select_frames
from ..triangulation.fusion import triangulate_multiview
from .selfcalib import focal_consensus, focal_scale_check, intrinsics_from_image_size

__all__ = ["RigReconstruction", "reconstruct_rig", "check_rig_inputs", "check_views"]

_FOCAL = (None, "none", "shared", "per_camera")
BIAS_ITER = 6   # Levenberg–Marquardt iterations of each bias round (warm-started)


@dataclass(frozen=True)
class RigReconstruction:
    """Result of :func:`reconstruct_rig` for ``C`` cameras, ``T`` frames, ``J`` joints.

    ``R (C,3,3)``, ``t (C,3)``: world→camera poses (``x_cam = R X + t``; the reference camera is
    ``I``, ``0``; unregistered cameras ``I``, ``0`` with ``camera_valid`` False); ``K (C,3,3)``
    (refined when focal lengths were refined); ``X (T,J,3)`` world joints (0 where not valid);
    ``point_valid (T,J)``: triangulated from ≥ 2 consistent views; ``residuals (C,T,J)``
    reprojection error in px of every observation (NaN where not observed or not
    reconstructed); ``inliers (C,T,J)``: observations the points rest on; ``focal_std (C,)``
    standard deviation of each focal length in px (0 when not refined, inf when unconstrained);
    ``camera_valid (C,)``; ``metric``: the scale is metric (else: unit = median camera distance
    from the reference camera); ``summary``: figures of the run (``start_pair``, ``start_costs``:
    :func:`geometry.rig.initialise.register_verified`); ``valid``: at least two cameras
    registered and some joints reconstructed; ``joint_bias (C,J,2)``: the per-(camera, joint)
    detector bias in px removed from the detections (observed = projection + bias; zeros unless
    ``joint_bias=True``, :mod:`geometry.rig.bias`).
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    X: np.ndarray
    point_valid: np.ndarray
    residuals: np.ndarray
    inliers: np.ndarray
    focal_std: np.ndarray
    camera_valid: np.ndarray
    metric: bool
    valid: bool
    summary: dict = field(default_factory=dict)
    joint_bias: np.ndarray | None = None


def check_views(x, confidence=None):
    """Validate multi-view detections: ``x (C, T, J, 2)`` pixels with ``C ≥ 2`` cameras, and the
    optional ``confidence (C, T, J)`` (NaN → 0, non-negative). Returns both as float64."""
    x = as_points("x", x)
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    C, T, J = x.shape[:3]
    if C < 2:
        raise ValueError(f"x: need at least 2 cameras, got shape {x.shape}")
    if T < 1 or J < 1:
        raise ValueError(f"x: need at least one frame and one joint, got shape {x.shape}")
    if confidence is None:
        return x, None
    w = as_array("confidence", confidence)
    if w.shape != (C, T, J):
        raise ValueError(f"confidence: expected shape {(C, T, J)}, got shape {w.shape}")
    w = np.nan_to_num(w, nan=0.0)
    if np.any(w < 0):
        raise ValueError("confidence: expected non-negative values")
    return x, w


def check_rig_inputs(x, K, mask, confidence, image_size, focal, min_confidence):
    """Validate :func:`reconstruct_rig`'s inputs → ``x (C,T,J,2)``, ``K (C,3,3)``,
    ``obs (C,T,J)``, ``w (C,T,J)``, ``K_given`` (bool)."""
    x, w = check_views(x, confidence)
    C, T, J = x.shape[:3]
    if K is None:
        if image_size is None:
            raise ValueError("K: give intrinsics K (C, 3, 3) or image_size (width, height)")
        size = as_array("image_size", image_size, tail=(2,), finite=True)
        if size.shape not in ((2,), (C, 2)):
            raise ValueError(f"image_size: expected shape (2,) or ({C}, 2), got shape {size.shape}")
        K = np.broadcast_to(intrinsics_from_image_size(size, focal), (C, 3, 3)).copy()
        given = False
    else:
        K = np.broadcast_to(as_matrix("K", K, 3, 3), (C, 3, 3)).copy() \
            if np.ndim(K) == 2 else as_matrix("K", K, 3, 3, (C,)).copy()
        if np.any(K[:, 0, 0] <= 0) or np.any(K[:, 1, 1] <= 0) or np.any(K[:, 2, 2] == 0):
            raise ValueError("K: focal lengths must be positive and K[2, 2] non-zero")
        K = K / K[:, 2:3, 2:3]
        given = True
    obs = as_mask("mask", mask, (C, T, J)) & np.all(np.isfinite(x), -1)
    if w is None:
        w = np.ones((C, T, J))
    else:
        obs &= w > min_confidence
    return x, K, obs, np.where(obs, w, 0.0), given


def _to_reference(R, t, X, ref):
    """Re-express cameras and points so that camera ``ref`` is the world frame."""
    Rr, tr = R[ref].copy(), t[ref].copy()
    Rn = R @ Rr.T
    tn = t - np.einsum("cij,j->ci", Rn, tr)
    Xn = X @ Rr.T + tr
    return Rn, tn, Xn


def _unit_scale(t, registered, ref):
    """Median distance from the reference camera's centre to the other registered ones."""
    others = [c for c in np.flatnonzero(registered) if c != ref]
    d = [np.linalg.norm(t[c]) for c in others]   # centre of c = −R_cᵀ t_c; |centre| = |t_c|
    s = float(np.median(d)) if d else 1.0
    return s if s > 1e-12 else 1.0


def _ba_subset(x, K, obs, T, J, max_points):
    """Frame-joint indices of the bundle adjustment: every frame when they fit in
    ``max_points``, else the most informative frames (:func:`select_frames`)."""
    frames = np.arange(T)
    if T * J > max_points:
        frames = select_frames(x, K, obs, max_frames=max(2, max_points // J))
    return (frames[:, None] * J + np.arange(J)[None]).reshape(-1)


def _bougnoux(pp, K):
    """A first focal from the pooled pairwise ``F`` (:func:`focal_consensus`: the focal whose
    essential matrices are closest to essential, Bougnoux's per-pair values screened against
    it), or ``None`` where it is implausible or not identifiable (near the singular
    configuration, e.g. optical axes that meet, every focal fits about equally well)."""
    pts = K[:, :2, 2]
    ok = pp.num_inliers >= 16
    if not ok.any():
        return None
    fc = focal_consensus(pp.F[ok], pts[pp.pairs[ok, 0]], pts[pp.pairs[ok, 1]])
    return fc.f if fc.valid else None


def reconstruct_rig(x, K=None, mask=None, confidence=None, *, image_size=None,
                    focal=None, refine_focal: str | None = None, threshold: float = 4.0,
                    outlier_threshold: float | None = None, loss: str = "soft_l1",
                    f_scale: float | None = None, min_confidence: float = 0.0,
                    max_pool_points: int = 20000, max_ba_points: int = 4000,
                    ba_iterations: int = 60, subject_height: float | None = None,
                    height_joints=None, bones=None, bone_lengths=None, up_joints=None,
                    joint_bias: bool = True, bias_rounds: int = 1, calibration_joints=None,
                    seed: int = 0) -> RigReconstruction:
    """Cameras and 3D joints of a static rig from 2D joints in every frame.

    Args:
        x: ``(C, T, J, 2)`` undistorted pixels (NaN = missing) of one person, synchronised.
        K: ``(C, 3, 3)`` or ``(3, 3)`` intrinsics; ``None`` = unknown: a guess from
            ``image_size`` (``(2,)`` or ``(C, 2)`` = width, height px) and ``focal`` (px; default
            a 50° field of view, or Bougnoux's focal from the pooled ``F`` where it is stable),
            refined in bundle adjustment.
        mask: ``(C, T, J)`` bool, observations to use. confidence: ``(C, T, J)`` detector
            confidences (weights of the squared residuals; ``≤ min_confidence`` drops).
        refine_focal: ``"none"``, ``"shared"`` or ``"per_camera"``; default ``"none"`` with a
            given ``K``, ``"shared"`` without.
        threshold: pooled F-RANSAC threshold (Sampson distance, px).
        outlier_threshold: reprojection error (px) above which an observation is an outlier in
            the final triangulation; default ``max(3, 4 σ)`` with σ the robust residual scale
            after bundle adjustment.
        loss, f_scale: robust loss of the bundle adjustment and its scale (px; default from the
            initial residuals).
        max_pool_points: observations per camera pair in the pooled RANSAC.
        max_ba_points: frame-joints in the bundle adjustment (the most informative frames,
            :func:`geometry.rig.frames.select_frames`); every frame is triangulated with the
            refined cameras afterwards.
        ba_iterations: Levenberg–Marquardt iterations of the final bundle-adjustment round (the
            first round, which only finds the gross outliers, stops after 15).
        subject_height, height_joints: metric scale from the subject's height (metres);
            ``height_joints = (top, bottom)`` joint indices (bottom may be a sequence).
        bones, bone_lengths: metric scale from known bone lengths (``(B, 2)`` joint pairs, ``(B,)``).
        up_joints: ``(lower, upper)`` joint indices (or sequences): rotate the world so the mean
            spine direction is +z (origin stays at the reference camera's centre).
        joint_bias: estimate a constant 2D bias per (camera, joint) from the bundle-adjustment
            residuals (robust median over frames, shrunk to 0, with the part any camera motion
            could explain removed: :func:`geometry.rig.bias.estimate_joint_bias`), alternated
            ``bias_rounds`` times with bundle adjustment (warm-started, at most
            :data:`BIAS_ITER` iterations each); the final triangulation and the residuals use
            the de-biased detections. Biases within ~3 standard errors of 0 are shrunk away
            (they only cost the cameras information). Measured: Pose2Sim balancing (real
            OpenPose) median rotation error vs the Qualisys calibration 1.06° → 0.79° (0.74°
            at z = 2, which made BlazePose video cameras worse: see
            :mod:`geometry.rig.bias`);
            synthetic ring with 8 px per-(camera, joint) biases 0.153° → 0.089° (median of 6
            draws, z = 2), without biases unchanged (0.0419°); about +0.15–0.2 s CPU on 1,000 frames
            × 4 cameras.
        calibration_joints: optional joint indices the cameras are estimated from (pairwise
            poses, registration, bundle adjustment, bias); every joint is triangulated with
            the resulting cameras. Default: all. E.g. BlazePose's ten eye/ear/mouth landmarks
            sit on one small, nearly rigid patch with view-dependent errors: without them the
            Pose2Sim Demo_SinglePerson videos calibrate to 0.70–0.78° median / 1.18–1.26° max
            from the Qualisys calibration instead of 1.43–1.59° / 2.83–3.11° (seeds 1–2,
            minimum confidence 0.2–0.5, joint bias on or off); ``pose`` skeletons name theirs
            (``Skeleton.calibration_joints``).
        seed: RANSAC seed.
    Returns:
        :class:`RigReconstruction`. Bad arguments raise ``ValueError``; cameras that cannot be
        placed get ``camera_valid=False``; nothing usable gives ``valid=False``.
    """
    t0 = time.perf_counter()
    x, K, obs, w, K_given = check_rig_inputs(x, K, mask, confidence, image_size, focal,
                                            min_confidence)
    if refine_focal not in _FOCAL:
        raise ValueError(f"refine_focal: expected one of {_FOCAL[1:]}, got {refine_focal!r}")
    refine_focal = refine_focal or ("none" if K_given else "shared")
    threshold = check_positive("threshold", threshold)
    for name, v, lo in (("max_pool_points", max_pool_points, 8), ("max_ba_points", max_ba_points, 1),
                        ("ba_iterations", ba_iterations, 0), ("seed", seed, 0),
                        ("bias_rounds", bias_rounds, 0)):
        check_int(name, v, lo, None)
    if (subject_height is None) != (height_joints is None):
        raise ValueError("subject_height/height_joints: give both (height in metres and "
                         "(top, bottom) joint indices) or neither")
    if (bones is None) != (bone_lengths is None):
        raise ValueError("bones/bone_lengths: give both or neither")
    C, T, J = x.shape[:3]
    N = T * J
    xf = x.reshape(C, N, 2)
    of = obs.reshape(C, N)
    wf = w.reshape(C, N)
    summary = {"cameras": C, "frames": T, "joints": J, "observations": int(of.sum())}
    cal = np.ones(J, bool)
    if calibration_joints is not None:
        cal = np.zeros(J, bool)
        cal[index_array("calibration_joints", calibration_joints, J)] = True
        summary["calibration_joints"] = int(cal.sum())
    of_all = of                                # every joint: the final triangulation
    obs = obs & cal
    of = obs.reshape(C, N)                     # the calibration joints: everything before it

    pp = pairwise_poses(xf, K, of, threshold=threshold, max_points=max_pool_points, seed=seed)
    if not K_given and focal is None:
        fb = _bougnoux(pp, K)
        summary["focal_bougnoux"] = float(fb) if fb else float("nan")
        if fb is not None:
            K[:, 0, 0] = K[:, 1, 1] = fb
            pp = pairwise_poses(xf, K, of, threshold=threshold, max_points=max_pool_points,
                                seed=seed)
    summary.update(pairs_valid=int(pp.valid.sum()), pair_median_angle_deg=float(
        np.median(pp.angle_deg[pp.valid])) if pp.valid.any() else float("nan"))
    init_thr = max(4.0 * threshold, 10.0)
    R, t, reg, X, Xv, order, start, costs = register_verified(xf, K, of, pp, threshold=init_thr,
                                                              f_scale=threshold)
    summary.update(cameras_registered=int(reg.sum()), start_pair=start, start_costs=costs)
    if reg.sum() < 2 or not Xv.any():
        return _invalid(C, T, J, K, refine_focal, summary, t0)
    ref = 0 if reg[0] else int(np.flatnonzero(reg)[0])
    summary["reference_camera"] = ref
    R, t, X = _to_reference(R, t, X, ref)
    s = _unit_scale(t, reg, ref)
    t, X = t / s, X / s

    # robust scale of the initial residuals → the loss scale
    use0 = of & reg[:, None] & Xv[None]
    proj, _ = reproject(K, R, t, X)
    e0 = np.linalg.norm(proj - xf, axis=-1)[use0]
    sigma0 = float(np.median(e0)) if e0.size else 1.0
    fs = float(np.clip(1.5 * sigma0, 1.0, 30.0)) if f_scale is None else \
        check_positive("f_scale", f_scale)
    sub = _ba_subset(x, K, obs & reg[:, None, None], T, J, max_ba_points)
    fixed = tuple(np.flatnonzero(~reg)) + (ref,)
    m = (use0[:, sub] & (wf[:, sub] > 0))
    Xs = np.where(Xv[sub, None], X[sub], np.nan)
    ba = None
    for rnd in range(2):
        ba = bundle_adjust(xf[:, sub], K, R, t, Xs, mask=m, weights=wf[:, sub], loss=loss,
                           f_scale=fs, refine_focal=refine_focal, fixed_cameras=fixed,
                           max_nfev=ba_iterations if rnd else min(ba_iterations, 15))
        if not ba.valid:
            break
        R, t, K = ba.R, ba.t, ba.K
        Xs = np.where(ba.point_valid[:, None], ba.X, np.nan)
        res = ba.residuals[m]
        sig = 1.4826 * float(np.median(res)) if res.size else fs
        if rnd == 0:   # drop gross outliers for the second round
            m = m & ~(ba.residuals > max(4.0 * sig, 3.0 * fs))
    bias = np.zeros((C, J, 2))
    jidx = np.arange(N) % J
    if joint_bias and ba is not None and ba.valid:
        bias, ba = alternate_bias_rounds(
            xf[:, sub], jidx[sub], J, m, wf[:, sub], ba, bias_rounds,
            dict(loss=loss, f_scale=fs, refine_focal=refine_focal, fixed_cameras=fixed,
                 max_nfev=min(ba_iterations, BIAS_ITER)))
        R, t, K = ba.R, ba.t, ba.K
        xf = xf - bias[:, jidx]
        summary["joint_bias_median_px"] = float(np.median(np.linalg.norm(bias, axis=-1)))
    summary["ba_valid"] = bool(ba is not None and ba.valid)
    summary["ba_points"] = int(sub.size)
    res = ba.residuals[m & np.isfinite(ba.residuals)] if ba is not None and ba.valid else e0
    sigma = 1.4826 * float(np.median(res)) / np.sqrt(2.0) if res.size else sigma0
    thr = max(3.0, 4.0 * sigma) if outlier_threshold is None else \
        check_positive("outlier_threshold", outlier_threshold)

    of = of_all
    tri = triangulate_multiview(projections(K, R, t), xf, mask=of & reg[:, None], weights=wf,
                                method="dlt", threshold=thr)
    Xv = tri.valid & (tri.num_views >= 2)
    X = np.where(Xv[:, None], tri.X, 0.0)
    if not Xv.any():
        return _invalid(C, T, J, K, refine_focal, summary, t0)
    if ba is not None and ba.valid:
        s = _unit_scale(t, reg, ref)
        t, X = t / s, X / s
    metric = False
    if subject_height is not None:
        top, bottom = height_joints
        Xn = np.where(Xv.reshape(T, J)[..., None], X.reshape(T, J, 3), np.nan)
        k = scale_from_height(Xn, subject_height, top, bottom, quantile=0.9)
        t, X, metric = t * k, X * k, True
    elif bones is not None:
        Xn = np.where(Xv.reshape(T, J)[..., None], X.reshape(T, J, 3), np.nan)
        k = scale_from_bone_lengths(Xn, bones, bone_lengths)
        t, X, metric = t * k, X * k, True
    if up_joints is not None:
        lower, upper = up_joints
        Xn = np.where(Xv.reshape(T, J)[..., None], X.reshape(T, J, 3), np.nan)
        Ru = rotation_aligning(up_from_spine(Xn, lower, upper))
        R = R @ Ru.T
        X = X @ Ru.T
        summary["world"] = f"camera {ref} centre, subject's spine along +z"
    else:
        summary["world"] = f"camera {ref}"
    R[~reg] = np.eye(3)
    t[~reg] = 0.0

    proj, depth = reproject(K, R, t, X)
    seen = of & Xv[None] & reg[:, None]
    residuals = np.where(seen, np.linalg.norm(np.nan_to_num(proj) - np.nan_to_num(xf), axis=-1),
                         np.nan)
    inl = tri.used & Xv[None]
    ri = residuals[inl]
    focal_std = ba.focal_std if (ba is not None and ba.valid) else \
        np.full(C, np.inf if refine_focal != "none" else 0.0)
    if refine_focal != "none" and ba is not None and ba.valid and (pp.num_inliers >= 16).any():
        # the covariance misses a common error of every focal: check them against the F's
        okp = (pp.num_inliers >= 16) & reg[pp.pairs].all(1)
        if okp.any():
            chk = focal_scale_check(pp.F[okp], pp.pairs[okp], K)
            focal_std = np.hypot(focal_std, chk.excess)
            summary["focal_scale_check"] = chk.scale
    summary.update({
        "refine_focal": refine_focal,
        "focal_px": float(np.median(K[reg, 0, 0])),
        "focal_std_px": float(np.max(focal_std[reg])),
        "loss_scale_px": fs,
        "outlier_threshold_px": float(thr),
        "median_reprojection_px": float(np.median(ri)) if ri.size else float("nan"),
        "inlier_fraction": float(inl.sum() / max(1, seen.sum())),
        "joints_valid_fraction": float(Xv.mean()),
        "registration_order": " ".join(f"{c}<-{p}" for c, p in order),
        "seconds": time.perf_counter() - t0,
    })
    return RigReconstruction(
        R=R, t=t, K=K, X=X.reshape(T, J, 3), point_valid=Xv.reshape(T, J),
        residuals=residuals.reshape(C, T, J), inliers=inl.reshape(C, T, J), focal_std=focal_std,
        camera_valid=reg.copy(), metric=metric, valid=True, summary=summary, joint_bias=bias)


def _invalid(C, T, J, K, refine_focal, summary, t0):
    summary["seconds"] = time.perf_counter() - t0
    return RigReconstruction(
        R=np.broadcast_to(np.eye(3), (C, 3, 3)).copy(), t=np.zeros((C, 3)), K=K,
        X=np.zeros((T, J, 3)), point_valid=np.zeros((T, J), bool),
        residuals=np.full((C, T, J), np.nan), inliers=np.zeros((C, T, J), bool),
        focal_std=np.full(C, np.inf if refine_focal != "none" else 0.0),
        camera_valid=np.zeros(C, bool), metric=False, valid=False, summary=summary,
        joint_bias=np.zeros((C, J, 2)))
