"""Per-joint, per-camera detector bias and noise from reprojection residuals.

A detector's hip is not its wrist: each (camera, joint) has its own systematic offset (bias) and
spread (noise). :func:`observation_noise` measures both from the residuals of a reconstruction
and turns them into weights for triangulation (``weights=`` of
:func:`geometry.triangulate_multiview`) or bundle adjustment (1/σ² per observation).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..common.validate import as_array, as_mask, as_matrix, check_positive
from .consensus import reproject


@dataclass(frozen=True)
class ObservationNoise:
    """Result of :func:`observation_noise`.

    ``bias (C, J, 2)`` px: median residual (detection − reprojection), 0 where too few samples;
    ``noise (C, J)`` px: robust per-axis standard deviation around the bias (1.4826·MAD, RMS of
    u and v), shrunk toward the camera's pooled value when samples are few; ``count (C, J)``:
    residuals used; ``camera_noise (C,)`` px: the pooled value per camera;
    ``weights (C, J)``: ``(median noise / noise)²`` — relative inverse variances, 1 for a typical
    observation, for ``weights=`` in triangulation or bundle adjustment.
    """

    bias: np.ndarray
    noise: np.ndarray
    count: np.ndarray
    camera_noise: np.ndarray
    weights: np.ndarray


def observation_noise(x, X, K, R, t, mask=None, *, prior_count: float = 20.0,
                      min_noise_px: float = 1e-3) -> ObservationNoise:
    """Estimate per-(camera, joint) bias and noise of detections from their residuals.

    Args:
        x: ``(C, T, J, 2)`` detections, px (NaN = missing).
        X: ``(T, J, 3)`` 3D joints in the world frame (NaN = unknown), e.g. a triangulation.
        K, R, t: ``(C, 3, 3)``, ``(C, 3, 3)``, ``(C, 3)`` cameras, ``x_cam = R X + t``.
        mask: optional ``(C, T, J)`` bool: residuals to use (e.g. the inlier views); default all
            finite ones.
        prior_count: pseudo-count of the shrinkage toward the camera's pooled noise (a joint
            with ``n`` residuals gets ``(n σ_cj² + n0 σ_c²) / (n + n0)``).
        min_noise_px: floor of the noise (noise-free data gives this).
    Returns:
        :class:`ObservationNoise`.

    Residuals are the detection minus the reprojection. On a triangulation from few views they
    are smaller than the detector noise (the point absorbs part of it); compare cameras and
    joints with each other rather than with an absolute scale.
    """
    x = as_array("x", x, tail=(None, None, None, 2))
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    C, T, J = x.shape[:3]
    X = as_array("X", X)
    if X.shape != (T, J, 3):
        raise ValueError(f"X: expected shape ({T}, {J}, 3), got shape {X.shape}")
    K = as_matrix("K", K, 3, 3, (C,))
    R = as_matrix("R", R, 3, 3, (C,))
    t = as_array("t", t, finite=True)
    if t.shape != (C, 3):
        raise ValueError(f"t: expected shape ({C}, 3), got shape {t.shape}")
    m = as_mask("mask", mask, (C, T, J))
    prior_count = check_positive("prior_count", prior_count, allow_zero=True)
    min_noise_px = check_positive("min_noise_px", min_noise_px)
    proj, z = reproject(X, K, R, t)
    r = x - proj                                                     # (C, T, J, 2)
    use = m & np.isfinite(r).all(-1) & (z > 0)
    rn = np.where(use[..., None], r, np.nan)
    count = use.sum(1)                                               # (C, J)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bias = np.nanmedian(rn, axis=1)                          # (C, J, 2)
            dev = np.abs(rn - bias[:, None])
            mad = 1.4826 * np.nanmedian(dev, axis=1)                 # (C, J, 2)
            cam_dev = dev.reshape(C, -1, 2)
            cam_mad = 1.4826 * np.nanmedian(cam_dev, axis=1)         # (C, 2)
    bias = np.where(count[..., None] > 0, np.nan_to_num(bias), 0.0)
    var_j = np.nan_to_num(np.mean(mad ** 2, axis=-1))                # (C, J)
    var_c = np.nan_to_num(np.mean(cam_mad ** 2, axis=-1))            # (C,)
    n = count.astype(np.float64)
    var = (n * var_j + prior_count * var_c[:, None]) / np.maximum(n + prior_count, 1e-12)
    noise = np.maximum(np.sqrt(var), min_noise_px)
    cam_noise = np.maximum(np.sqrt(var_c), min_noise_px)
    ref = float(np.median(noise[count > 0])) if (count > 0).any() else 1.0
    weights = (ref / noise) ** 2
    return ObservationNoise(bias=bias, noise=noise, count=count, camera_noise=cam_noise,
                            weights=weights)
