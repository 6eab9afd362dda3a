"""Per-(camera, joint) 2D detector bias, estimated from bundle-adjustment residuals.

Real 2D detectors place a joint differently in different views (OpenPose's hips and shoulders
disagree between views by ~12 px with the true calibration of the Pose2Sim rig): a bias that is
constant over a trial for one joint in one camera. Left in the data, it is spread over the
cameras by the bundle adjustment. :func:`estimate_joint_bias` measures it as the robust (median)
residual of each (camera, joint) over the frames, shrunk towards 0 (a prior worth
``prior_count`` observations), and removes from each camera's bias field the part that a change
of that camera could produce to first order: an affine image field about the joints' centroid
(shift = pan/tilt, rotation = roll, scale = focal/depth, shear and anisotropic scale =
foreshortening). That gauge keeps the biases from absorbing camera motion; only the
joint-to-joint pattern is left, which no camera motion explains. Measured on the Pose2Sim
balancing trial (median rotation error vs the Qualisys calibration, without the significance
shrinkage): 0.67° with the affine gauge, 0.79° with a 4-parameter similarity gauge, 0.83°
without a gauge, 0.92° with the exact first-order camera-pose field, 1.06° without bias
estimation; with the significance shrinkage (z = 2) 0.74°, and unbiased synthetic data then
give the same cameras as without bias estimation (without it, noise-level biases of ~0.1 px
moved poorly conditioned synthetic trials by up to 0.09°). The default is z = 3: on BlazePose
detections of the Pose2Sim Demo_SinglePerson videos (33 joints, `epigeo reconstruct VIDEOS
--intrinsics-only`) z = 2 made the cameras worse than no bias estimation (median/max 1.60°/3.09°
against 1.42°/2.83°), z = 3 gives 1.53°/2.99° and z = 4 1.48°/2.92°, while OpenPose balancing
(`reconstruct_rig`, seed 0) gives 0.67°/0.94° (z = 2), 0.67°/1.02° (z = 3), 0.75°/1.10° (z = 4).
Tried and left: the standard error of each median from an effective sample size (AR(1),
frame-to-frame correlated detector errors) — the statistically sounder test — drops most of
OpenPose's real biases at z = 2 (balancing 0.87°, BlazePose 1.45°/2.88°).
:func:`reconstruct_rig` alternates it with bundle adjustment (``joint_bias=True``).
"""
from __future__ import annotations

import numpy as np

from .bundle import bundle_adjust

__all__ = ["estimate_joint_bias", "remove_camera_field", "alternate_bias_rounds", "reproject", "SIGNIFICANCE"]

#: z of the significance shrinkage of :func:`estimate_joint_bias` (see there)
SIGNIFICANCE = 3.0


def remove_camera_field(bias, anchors, known):
    """Project out of each camera's bias field what a small camera motion could produce.

    ``bias (C, J, 2)`` px, ``anchors (C, J, 2)`` the joints' typical pixel positions, ``known
    (C, J)`` bool (joints with an estimate). Per camera, least-squares fit of an affine image
    field ``a + A p`` (``p``: anchor minus the anchors' mean; 6 parameters: shift, scale, roll,
    shear, anisotropic scale — the first-order image motion of any camera change: pan/tilt,
    roll, focal/depth, foreshortening) to the known joints, and subtraction of the fit. Cameras
    with fewer than 4 known joints get zero bias. Returns a new ``(C, J, 2)`` array (0 where
    not known)."""
    out = np.zeros_like(bias)
    for c in range(bias.shape[0]):
        k = known[c]
        if k.sum() < 4:
            continue
        p = anchors[c, k] - anchors[c, k].mean(0)
        A = np.zeros((int(k.sum()), 2, 6))
        A[:, 0, 0] = A[:, 1, 1] = 1.0
        A[:, 0, 2], A[:, 0, 3] = p[:, 0], p[:, 1]
        A[:, 1, 4], A[:, 1, 5] = p[:, 0], p[:, 1]
        A = A.reshape(-1, 6)
        y = bias[c, k].reshape(-1)
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        out[c, k] = (y - A @ coef).reshape(-1, 2)
    return out


def estimate_joint_bias(residual, joint, use, observed, J, *, prior_count: float = 5.0,
                        min_count: int = 5, significance: float = SIGNIFICANCE):
    """Robust per-(camera, joint) bias of 2D detections.

    Args:
        residual: ``(C, N, 2)`` observed minus projected pixels of ``N`` frame-joints.
        joint: ``(N,)`` joint index of each frame-joint (``0 … J-1``).
        use: ``(C, N)`` bool, inlier observations to measure from.
        observed: ``(C, N, 2)`` observed pixels (their per-joint median is the anchor of the
            gauge, :func:`remove_camera_field`).
        J: number of joints. prior_count: shrinkage towards 0 (``n / (n + prior_count)``).
        min_count: fewer inliers than this → no estimate (0).
        significance: ``z``; each bias is shrunk by ``max(0, 1 − z² se² / |b|²)`` (positive-part
            James–Stein) with ``se`` the standard error of its median (from the residuals'
            MAD), so that biases at the noise level — which cost the cameras information
            without removing any real bias — are dropped. 0 = no such shrinkage.
    Returns:
        ``(C, J, 2)`` px bias (observed = true projection + bias), camera-motion field removed.
    """
    C = residual.shape[0]
    bias, anchors = np.zeros((C, J, 2)), np.zeros((C, J, 2))
    se = np.full((C, J), np.inf)
    known = np.zeros((C, J), bool)
    for c in range(C):
        for j in range(J):
            sel = use[c] & (joint == j)
            n = int(sel.sum())
            if n < min_count:
                continue
            known[c, j] = True
            r = residual[c, sel]
            med = np.median(r, axis=0)
            bias[c, j] = med * (n / (n + prior_count))
            anchors[c, j] = np.median(observed[c, sel], axis=0)
            mad = 1.4826 * np.median(np.abs(r - med), axis=0)
            se[c, j] = 1.2533 * float(np.hypot(*mad)) / np.sqrt(n)
    bias = remove_camera_field(bias, anchors, known)
    if significance > 0:
        b2 = np.sum(bias ** 2, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(b2 > 0, np.clip(1.0 - significance ** 2 * se ** 2 / b2, 0.0, 1.0), 0.0)
        bias = remove_camera_field(bias * f[..., None], anchors, known)
    return bias


def reproject(K, R, t, X):
    """Pinhole projections ``(C, n, 2)`` px and depths ``(C, n)`` of ``X (n, 3)`` in cameras
    ``K, R, t`` (``(C, 3, 3)``, ``(C, 3, 3)``, ``(C, 3)``); NaN/inf where a depth is 0."""
    Xc = np.einsum("cij,nj->cni", R, X) + t[:, None]
    z = Xc[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = np.einsum("cij,cnj->cni", K[:, :2, :2], Xc[..., :2] / z) + K[:, None, :2, 2]
    return proj, Xc[..., 2]


def alternate_bias_rounds(xs, jsub, J, m, ws, ba, rounds, ba_kw):
    """Alternate per-(camera, joint) bias estimation from the residuals of the original
    detections ``xs (C, n, 2)`` with bundle adjustment on the de-biased ones → ``(bias (C,J,2),
    last valid BundleResult)``."""
    bias = np.zeros((xs.shape[0], J, 2))
    for _ in range(rounds):
        proj, _ = reproject(ba.K, ba.R, ba.t, ba.X)
        use = m & np.isfinite(ba.residuals) & ba.point_valid[None]
        new = estimate_joint_bias(xs - proj, jsub, use, xs, J)
        nb = bundle_adjust(xs - new[:, jsub], ba.K, ba.R, ba.t,
                           np.where(ba.point_valid[:, None], ba.X, np.nan), mask=m, weights=ws,
                           **ba_kw)
        if not nb.valid:
            break
        bias, ba = new, nb
    return bias, ba
