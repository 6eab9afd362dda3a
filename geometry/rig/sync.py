"""Synchronisation of unsynchronised cameras from the epipolar geometry of pooled joints.

Convention: ``offsets[c] = d`` means camera ``c``'s frame ``t + d`` shows the instant of the
reference camera's frame ``t``; :func:`apply_time_offsets` resamples every camera onto the
reference's frame times (linear interpolation for fractional offsets).

Method (:func:`estimate_time_offsets`): for a static rig, joints of the same instant obey one
fundamental matrix per camera pair. For every camera and every candidate whole-frame shift, all
frames' joints are pooled into one robust F problem (one batched call of the RANSAC engine over
all shifts); the shift with the smallest robust epipolar error wins. The sub-frame offset then
is the vertex of the parabola through the least-squares epipolar costs of the best shift and
its two neighbours (see :func:`_refine`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.validate import as_array, as_mask, as_points, check_positive
from ..epipolar.fundamental import fundamental_least_squares, sampson_distance
from ..epipolar.fundamental_ransac import estimate_fundamental

__all__ = ["TimeOffsets", "estimate_time_offsets", "apply_time_offsets", "shift_frames",
           "temporal_outliers"]


@dataclass(frozen=True)
class TimeOffsets:
    """Result of :func:`estimate_time_offsets` for ``C`` cameras.

    ``offsets (C,)`` frames (float; 0 for the reference), ``integer (C,)`` the best whole-frame
    shift, ``shifts (S,)`` the candidate whole-frame shifts and ``cost (C, S)`` their robust
    epipolar error (median Sampson distance, px; inf where not computable), ``valid (C,)``.
    """

    offsets: np.ndarray
    integer: np.ndarray
    shifts: np.ndarray
    cost: np.ndarray
    valid: np.ndarray


def shift_frames(x, d: float) -> np.ndarray:
    """``x (T, J, 2)`` sampled at frame times ``t + d`` (linear interpolation; NaN outside)."""
    T = x.shape[0]
    tq = np.arange(T) + d
    i0 = np.floor(tq).astype(np.int64)
    a = (tq - i0)[:, None, None]
    out = np.full_like(x, np.nan)
    ok0 = (i0 >= 0) & (i0 < T)
    ok1 = (i0 + 1 >= 0) & (i0 + 1 < T)
    exact = np.isclose(a[:, 0, 0], 0.0)
    lo = np.where(ok0[:, None, None], x[np.clip(i0, 0, T - 1)], np.nan)
    hi = np.where(ok1[:, None, None], x[np.clip(i0 + 1, 0, T - 1)], np.nan)
    out[:] = np.where(exact[:, None, None], lo, (1 - a) * lo + a * hi)
    return out


def apply_time_offsets(x, offsets) -> np.ndarray:
    """Resample ``x (C, T, J, 2)`` so every camera shows the reference camera's instants:
    ``out[c, t] = x[c](t + offsets[c])`` (linear interpolation, NaN outside the recording)."""
    x = as_points("x", x)
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    d = as_array("offsets", offsets, finite=True)
    if d.shape != (x.shape[0],):
        raise ValueError(f"offsets: expected shape ({x.shape[0]},), got shape {d.shape}")
    return np.stack([shift_frames(x[c], float(d[c])) for c in range(x.shape[0])])


def _pooled(xr, xc, d):
    """Pooled correspondences of reference frames ``t`` and camera frames ``t + d``."""
    a = xr.reshape(-1, 2)
    b = shift_frames(xc, d).reshape(-1, 2)
    return a, b


def estimate_time_offsets(x, mask=None, *, max_offset: int = 10, reference: int = 0,
                          subframe: bool = True, threshold: float = 3.0, seed: int = 0) -> TimeOffsets:
    """Per-camera time offsets of an unsynchronised static rig from 2D joints.

    Args:
        x: ``(C, T, J, 2)`` pixels (NaN = missing) of a moving person; the rig is static.
        mask: optional ``(C, T, J)`` bool of usable observations.
        max_offset: whole-frame shifts in ``[-max_offset, max_offset]`` are tried.
        reference: the camera whose clock the others are expressed in.
        subframe: refine to a fraction of a frame (parabola through the costs of the best
            whole-frame shift and its two neighbours).
        threshold: RANSAC threshold (Sampson distance, px) of the pooled F fits.
        seed: RANSAC seed.
    Returns:
        :class:`TimeOffsets` (see the module docstring for the sign convention). A camera whose
        pooled geometry cannot be fitted at any shift (too few joints seen together with the
        reference, a degenerate configuration) has ``valid=False`` and offset 0.
    """
    x = as_points("x", x)
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (C, T, J, 2), got shape {x.shape}")
    C, T, J = x.shape[:3]
    m = as_mask("mask", mask, (C, T, J))
    x = np.where(m[..., None], x, np.nan)
    if isinstance(max_offset, bool) or not isinstance(max_offset, (int, np.integer)) \
            or max_offset < 0 or max_offset >= T:
        raise ValueError(f"max_offset: expected an integer in [0, {T - 1}], got {max_offset!r}")
    if not (isinstance(reference, (int, np.integer)) and 0 <= reference < C):
        raise ValueError(f"reference: expected a camera index in [0, {C}), got {reference!r}")
    threshold = check_positive("threshold", threshold)
    shifts = np.arange(-max_offset, max_offset + 1)
    S = shifts.size
    others = [c for c in range(C) if c != reference]
    a = np.stack([np.stack([_pooled(x[reference], x[c], float(d))[0] for d in shifts])
                  for c in others]) if others else np.zeros((0, S, T * J, 2))
    b = np.stack([np.stack([_pooled(x[reference], x[c], float(d))[1] for d in shifts])
                  for c in others]) if others else np.zeros((0, S, T * J, 2))
    cost = np.full((C, S), np.inf)
    cost[reference] = 0.0
    offsets = np.zeros(C)
    integer = np.zeros(C, dtype=np.int64)
    valid = np.zeros(C, dtype=bool)
    valid[reference] = True
    if not others:
        return TimeOffsets(offsets, integer, shifts, cost, valid)
    fit = estimate_fundamental(a, b, threshold=threshold, seed=seed)
    with np.errstate(invalid="ignore"):
        d = sampson_distance(fit.F, a, b)
    for k, c in enumerate(others):
        for s in range(S):
            dk = d[k, s][np.isfinite(d[k, s])]
            if fit.valid[k, s] and dk.size >= 16:
                cost[c, s] = float(np.median(dk))
        if not np.isfinite(cost[c]).any():
            continue
        best = int(np.argmin(cost[c]))
        integer[c] = shifts[best]
        offsets[c] = float(shifts[best])
        valid[c] = True
        if subframe:
            if 0 < best < S - 1:
                offsets[c] = _refine(x[reference], x[c], int(shifts[best]))
    return TimeOffsets(offsets=offsets, integer=integer, shifts=shifts, cost=cost, valid=valid)


def temporal_outliers(x, *, min_px: float = 12.0) -> np.ndarray:
    """Single-frame glitches of tracks ``x (T, J, 2)`` → ``(T, J)`` bool: farther than
    ``max(min_px, 6 MAD)`` px from the 5-frame running median of the same joint."""
    from scipy.ndimage import median_filter
    med = median_filter(x, size=(5, 1, 1), mode="nearest")
    dev = np.linalg.norm(x - med, axis=-1)
    ok = np.isfinite(dev)
    if not ok.any():
        return np.zeros(dev.shape, dtype=bool)
    mad = float(np.median(dev[ok]))
    return ok & (dev > max(min_px, 6.0 * 1.4826 * mad))


def _refine(xr, xc, d0):
    """Sub-frame offset: vertex of the parabola through the least-squares epipolar costs at the
    whole-frame shifts ``d0 − 1, d0, d0 + 1``.

    Whole-frame samples keep the noise level of every candidate the same (interpolating between
    frames averages the detector noise and biases the cost towards half frames). Near the true
    offset the squared epipolar misfit grows quadratically with the time error (locally linear
    motion), so the vertex is the sub-frame offset. The cost is the 90 % trimmed mean of the
    squared Sampson distances of one fixed set of pairs, each shift with its own least-squares
    ``F``. Gross outliers are found per track, by time (:func:`temporal_outliers`), not by the
    epipolar fit at ``d0``: that would favour the joints that happen to fit there."""
    xr = np.where(temporal_outliers(xr)[..., None], np.nan, xr)
    xc = np.where(temporal_outliers(xc)[..., None], np.nan, xc)
    a = xr.reshape(-1, 2)
    bs = np.stack([shift_frames(xc, float(d0 + k)).reshape(-1, 2) for k in (-1, 0, 1)])
    use = np.all(np.isfinite(bs), axis=(0, 2)) & np.all(np.isfinite(a), -1)
    n = int(use.sum())
    if n < 16:
        return float(d0)
    A = np.broadcast_to(a, bs.shape)
    F, ok = fundamental_least_squares(A, bs, np.broadcast_to(use, bs.shape[:2]), iterations=10)
    if not ok.all():
        return float(d0)
    with np.errstate(invalid="ignore"):
        e = sampson_distance(F, A, bs, squared=True)
    keep = max(8, int(0.9 * n))
    c0, c1, c2 = (float(np.mean(np.sort(e[k][use])[:keep])) for k in range(3))
    den = c0 - 2.0 * c1 + c2
    if not (den > 0 and c1 <= min(c0, c2)):
        return float(d0)
    return float(d0 + np.clip(0.5 * (c0 - c2) / den, -0.5, 0.5))
