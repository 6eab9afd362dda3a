"""Input checks for multi-person detections and per-camera temporal tracking.

Detections are ``x (C, T, P, J, 2)`` undistorted pixels, NaN where a slot or joint is empty;
the ``P`` slots of a camera-frame are in any order (detectors reorder and swap their IDs).
:func:`track_people` links each camera's detections over time by Hungarian assignment
(:func:`scipy.optimize.linear_sum_assignment`) on the median joint distance to each track's last
pose.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..common.checks import check_int, check_real

__all__ = ["check_people_inputs", "track_people", "detected_slots", "nanmedian_last"]

MAX_PX = 1e7
"""Pixel coordinates beyond ± this are treated as missing (no image is that large)."""


def check_people_inputs(x, confidence=None):
    """``x (C, T, P, J, 2)`` → float64 copy with non-finite or zero-confidence joints as NaN;
    ``confidence (C, T, P, J)`` → float64 (NaN → 0) or None. Raises ``ValueError`` naming the
    argument on a bad shape, type or value."""
    try:
        x = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("x: expected a numeric array of shape (C, T, P, J, 2)") from None
    if x.ndim != 5 or x.shape[-1] != 2:
        raise ValueError(f"x: expected shape (C, T, P, J, 2), got shape {x.shape}")
    C, T, P, J, _ = x.shape
    if C < 2 or T < 1 or J < 1 or P < 1:
        raise ValueError(f"x: expected >= 2 cameras, >= 1 frame, >= 1 slot and >= 1 joint, got "
                         f"shape {x.shape}")
    # non-finite pixels, and ones absurdly far outside any image, are missing
    bad = ~np.isfinite(x).all(-1) | (np.abs(x) > MAX_PX).any(-1)
    x[bad] = np.nan
    if confidence is None:
        return x, None
    try:
        w = np.array(confidence, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("confidence: expected a numeric array of shape (C, T, P, J)") from None
    if w.shape != (C, T, P, J):
        raise ValueError(f"confidence: expected shape {(C, T, P, J)}, got shape {w.shape}")
    w = np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)
    if (w < 0).any():
        raise ValueError("confidence: expected non-negative values")
    x[w <= 0] = np.nan
    return x, w


def detected_slots(x, min_joints: int = 1) -> np.ndarray:
    """``(C, T, P)`` bool: slots with at least ``min_joints`` finite joints."""
    return np.isfinite(x).all(-1).sum(-1) >= min_joints


def nanmedian_last(d, min_count: int = 1) -> np.ndarray:
    """Median over the last axis of the finite values of ``d`` (``inf`` where fewer than
    ``min_count``); a sort instead of :func:`numpy.nanmedian`, which is slow on small arrays."""
    fin = np.isfinite(d)
    n = fin.sum(-1)
    s = np.sort(np.where(fin, d, np.inf), axis=-1)
    k = d.shape[-1]
    lo = np.take_along_axis(s, np.clip((n - 1) // 2, 0, k - 1)[..., None], -1)[..., 0]
    hi = np.take_along_axis(s, np.clip(n // 2, 0, k - 1)[..., None], -1)[..., 0]
    return np.where(n >= max(min_count, 1), 0.5 * (lo + hi), np.inf)


def _pose_distance(a, b):
    """Median joint distance ``(A, B)`` px between poses ``a (A, J, 2)`` and ``b (B, J, 2)``
    over the joints present in both (inf where fewer than 3 are)."""
    return nanmedian_last(np.linalg.norm(a[:, None] - b[None], axis=-1), 3)


def track_people(x, confidence=None, *, max_px: float | None = None,
                 max_gap: int = 10) -> np.ndarray:
    """Per-camera temporal track IDs of multi-person detections.

    Args:
        x: ``(C, T, P, J, 2)`` pixels, NaN where a slot or joint is empty; slot order arbitrary.
        confidence: optional ``(C, T, P, J)``; joints with confidence ``<= 0`` are ignored.
        max_px: largest median joint distance (px) between a track's last pose and a detection
            for them to be linked; default ``20 + 0.25 ·`` the track's image box diagonal.
        max_gap: frames a track may go undetected and still be continued.
    Returns:
        ``(C, T, P)`` int64 track IDs, numbered per camera from 0 in order of first detection;
        ``-1`` for empty slots. Assignment per frame is Hungarian on the median joint distance.
    """
    x, _ = check_people_inputs(x, confidence)
    max_px = None if max_px is None else check_real("max_px", max_px, 0.0, lo_open=True)
    max_gap = check_int("max_gap", max_gap, 0)
    C, T, P, J, _ = x.shape
    det = detected_slots(x)
    ids = np.full((C, T, P), -1, np.int64)
    # distances between consecutive frames' detections, all at once: (C, T-1, P, P)
    step = nanmedian_last(np.linalg.norm(x[:, :-1, :, None] - x[:, 1:, None], axis=-1), 3)
    for c in range(C):
        last = np.empty((0, J, 2))                                    # tracks' last poses
        seen = np.empty(0, np.int64)                                  # frame last seen
        slot = np.empty(0, np.int64)                                  # slot last seen in
        gate = np.empty(0)
        for t in range(T):
            slots = np.flatnonzero(det[c, t])
            if slots.size == 0:
                continue
            cur = x[c, t, slots]
            alive = np.flatnonzero(t - seen <= max_gap + 1)
            match = np.full(slots.size, -1)
            if alive.size:
                prev = seen[alive] == t - 1
                cost = np.empty((alive.size, slots.size))
                if prev.any():
                    cost[prev] = step[c, t - 1][np.ix_(slot[alive[prev]], slots)]
                if not prev.all():
                    cost[~prev] = _pose_distance(last[alive[~prev]], cur)
                ok = np.isfinite(cost) & (cost <= gate[alive, None])
                r, k = linear_sum_assignment(np.where(ok, cost, 1e9))
                good = ok[r, k]
                match[k[good]] = alive[r[good]]
            new = match < 0
            if new.any():
                m = int(new.sum())
                match[new] = last.shape[0] + np.arange(m)
                last = np.concatenate([last, np.full((m, J, 2), np.nan)])
                seen = np.concatenate([seen, np.full(m, t)])
                slot = np.concatenate([slot, np.zeros(m, np.int64)])
                gate = np.concatenate([gate, np.zeros(m)])
            last[match] = np.where(np.isfinite(cur), cur, last[match])
            seen[match] = t
            slot[match] = slots
            if max_px is None:
                lo, hi = np.nanmin(last[match], axis=1), np.nanmax(last[match], axis=1)
                gate[match] = 20.0 + 0.25 * np.linalg.norm(hi - lo, axis=-1)
            else:
                gate[match] = max_px
            ids[c, t, slots] = match
    return ids
