"""A 2D keypoint-detector noise model, seeded and vectorised.

Given exact projections ``x_clean (C, T, J, 2)`` the model produces what a detector such as
OpenPose reports, in this order:

1. **Per-camera time offsets**: camera ``c`` reports frame ``t + o_c`` (``o_c`` uniform integer
   in ``[-max_time_offset, max_time_offset]``, clamped inside each clip), as unsynchronised
   cameras would. ``x_clean`` stays the synchronised truth.
2. **Gaussian pixel noise**: i.i.d. ``N(0, sigma_px²)`` on ``u`` and ``v``.
3. **Left/right swaps**: each (camera, frame, left/right pair) swaps the two joints' detections
   with probability ``swap_ratio``.
4. **Gross outliers**: each observation with probability ``outlier_ratio`` is moved by
   ``outlier_px[0]``–``outlier_px[1]`` px in a random direction (the detector picked another
   limb or person).
5. **Missing joints**: each observation with probability ``missing_ratio``, and every joint
   behind the camera or outside the image, is missing: ``x`` is NaN and confidence 0.
6. **Confidence**: inliers ``N(0.8, 0.08)`` clipped to [0.3, 1]; outliers and swapped joints
   U(0.1, 0.6) (detectors are less sure where they are wrong, but not reliably so).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DetectorNoise", "NoisyDetections", "apply_detector_noise"]


@dataclass(frozen=True)
class DetectorNoise:
    """Parameters of the noise model (see the module docstring); pixels and frames."""

    sigma_px: float = 2.0
    outlier_ratio: float = 0.02
    outlier_px: tuple = (20.0, 150.0)
    missing_ratio: float = 0.02
    swap_ratio: float = 0.005
    max_time_offset: int = 0

    def __post_init__(self):
        for f in ("sigma_px", "outlier_ratio", "missing_ratio", "swap_ratio"):
            v = getattr(self, f)
            if not np.isfinite(v) or v < 0 or (f != "sigma_px" and v > 1):
                raise ValueError(f"{f}: expected a finite number >= 0 (<= 1 for ratios), got {v}")
        if int(self.max_time_offset) < 0:
            raise ValueError(f"max_time_offset: expected >= 0, got {self.max_time_offset}")


CLEAN = DetectorNoise(sigma_px=0.0, outlier_ratio=0.0, missing_ratio=0.0, swap_ratio=0.0)


@dataclass(frozen=True)
class NoisyDetections:
    """``x (C,T,J,2)`` px (NaN where missing), ``confidence (C,T,J)`` (0 where missing),
    ``visible (C,T,J)`` = not missing, ``outlier``/``swapped`` ``(C,T,J)`` bool,
    ``time_offset (C,)`` frames."""

    x: np.ndarray
    confidence: np.ndarray
    visible: np.ndarray
    outlier: np.ndarray
    swapped: np.ndarray
    time_offset: np.ndarray


def apply_detector_noise(x_clean, noise: DetectorNoise, *, image_size, symmetry=None,
                         depth=None, clip_id=None, seed: int = 0) -> NoisyDetections:
    """Corrupt exact projections ``x_clean (C, T, J, 2)`` like a 2D detector.

    Args:
        noise: the :class:`DetectorNoise` parameters.
        image_size: ``(width, height)`` px, or ``(C, 2)`` per camera; joints outside are missing.
        symmetry: ``(J,)`` left/right joint permutation (``Skeleton.symmetry``) for swaps.
        depth: ``(C, T, J)`` camera depths; joints with depth <= 0 are missing.
        clip_id: ``(T,)`` clip index of every frame: time offsets stay inside each clip.
        seed: random seed.
    """
    x_clean = np.asarray(x_clean, dtype=np.float64)
    if x_clean.ndim != 4 or x_clean.shape[-1] != 2:
        raise ValueError(f"x_clean: expected shape (C, T, J, 2), got shape {x_clean.shape}")
    C, T, J, _ = x_clean.shape
    rng = np.random.default_rng(seed)
    o = int(noise.max_time_offset)
    offs = rng.integers(-o, o + 1, C) if o > 0 else np.zeros(C, dtype=np.int64)
    x = x_clean
    if o > 0:
        cid = np.zeros(T, np.int64) if clip_id is None else np.asarray(clip_id, np.int64)
        start = np.searchsorted(cid, cid, side="left")
        end = np.searchsorted(cid, cid, side="right") - 1
        idx = np.clip(np.arange(T)[None] + offs[:, None], start[None], end[None])
        x = x_clean[np.arange(C)[:, None], idx]
        if depth is not None:
            depth = np.asarray(depth)[np.arange(C)[:, None], idx]
    x = x + rng.normal(0.0, noise.sigma_px, x.shape) if noise.sigma_px > 0 else x.copy()
    swapped = np.zeros((C, T, J), dtype=bool)
    if noise.swap_ratio > 0 and symmetry is not None:
        sym = np.asarray(symmetry)
        pairs = np.array([(a, b) for a, b in enumerate(sym) if a < b], dtype=np.int64)
        if len(pairs):
            sw = rng.random((C, T, len(pairs))) < noise.swap_ratio
            c, t, k = np.nonzero(sw)
            a, b = pairs[k, 0], pairs[k, 1]
            xa = x[c, t, a].copy()
            x[c, t, a] = x[c, t, b]
            x[c, t, b] = xa
            swapped[c, t, a] = swapped[c, t, b] = True
    outlier = rng.random((C, T, J)) < noise.outlier_ratio
    n = int(outlier.sum())
    if n:
        ang = rng.uniform(0, 2 * np.pi, n)
        r = rng.uniform(noise.outlier_px[0], noise.outlier_px[1], n)
        x[outlier] += np.stack([r * np.cos(ang), r * np.sin(ang)], -1)
    conf = np.clip(rng.normal(0.8, 0.08, (C, T, J)), 0.3, 1.0)
    bad = outlier | swapped
    conf[bad] = rng.uniform(0.1, 0.6, int(bad.sum()))
    size = np.asarray(image_size, dtype=np.float64).reshape(-1, 2)
    size = np.broadcast_to(size, (C, 2))[:, None, None, :]
    inside = np.all((x >= 0) & (x < size), axis=-1)
    missing = (rng.random((C, T, J)) < noise.missing_ratio) | ~inside | ~np.isfinite(x).all(-1)
    if depth is not None:
        missing |= ~(np.asarray(depth) > 0)
    x[missing] = np.nan
    conf[missing] = 0.0
    return NoisyDetections(x=x, confidence=conf, visible=~missing, outlier=outlier & ~missing,
                           swapped=swapped & ~missing, time_offset=offs)
