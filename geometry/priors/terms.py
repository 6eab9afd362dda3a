"""Index bookkeeping of the prior terms: which bones and frame triples enter the fit, robust bone
lengths per segment, and which joints the time prior may fill in."""
from __future__ import annotations

import numpy as np


def check_index_pairs(name: str, pairs, J: int) -> np.ndarray:
    """``(N, 2)`` int joint index pairs in ``[0, J)`` with distinct members (``()`` = none)."""
    a = np.asarray(pairs)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 2 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected an int array of shape (N, 2), got {a.dtype} "
                         f"{a.shape}")
    if a.min() < 0 or a.max() >= J or np.any(a[:, 0] == a[:, 1]):
        raise ValueError(f"{name}: expected pairs of distinct joint indices in [0, {J}), got "
                         f"values {a.min()}..{a.max()}")
    return a.astype(np.int64)


def estimate_bone_lengths(X, reliable, bones, seg, *, min_frames: int = 5) -> np.ndarray:
    """Median length of each bone over the frames where both joints are reliable, per segment.

    ``X (T, J, 3)``, ``reliable (T, J)``, ``bones (B, 2)``, ``seg (T,)`` → ``(G, B)`` with ``G``
    the number of distinct segment labels (sorted); NaN where fewer than ``min_frames``."""
    labels = np.unique(seg)
    out = np.full((len(labels), len(bones)), np.nan)
    if not len(bones):
        return out
    ln = np.linalg.norm(X[:, bones[:, 0]] - X[:, bones[:, 1]], axis=-1)      # (T, B)
    ok = reliable[:, bones[:, 0]] & reliable[:, bones[:, 1]]
    for g, lab in enumerate(labels):
        s = seg == lab
        for b in range(len(bones)):
            v = ln[s & ok[:, b], b]
            if len(v) >= min_frames:
                out[g, b] = np.median(v)
    return out


def gap_fill(anchored, seg, max_gap: int) -> np.ndarray:
    """``(T, J)``: joints with an anchored frame within ``max_gap`` frames before and after in
    the same segment (the time prior can bridge them)."""
    T, J = anchored.shape
    idx = np.arange(T)[:, None]
    big = T + max_gap + 1
    last = np.where(anchored, idx, -big)
    last = np.maximum.accumulate(last, axis=0)
    nxt = np.where(anchored, idx, 2 * big + T)
    nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
    ok = (idx - last <= max_gap) & (nxt - idx <= max_gap)
    # the anchors must lie in the same segment
    lc = np.clip(last, 0, T - 1)
    nc = np.clip(nxt, 0, T - 1)
    same = (seg[lc] == seg[:, None]) & (seg[nc] == seg[:, None])
    return ok & same


def bone_terms(active, bones, L, seg, weight):
    """Bone targets ``(T, B)`` and 1/σ ``(T, B)`` (0 where a joint is inactive, the length
    unknown or the prior off)."""
    T = active.shape[0]
    if weight <= 0 or not len(bones):
        return np.zeros((T, len(bones))), np.zeros((T, len(bones)))
    labels = np.unique(seg)
    Lt = L[np.searchsorted(labels, seg)]                                    # (T, B)
    use = active[:, bones[:, 0]] & active[:, bones[:, 1]] & np.isfinite(Lt)
    return np.where(use, Lt, 0.0), np.where(use, float(weight), 0.0)


def time_terms(active, seg, w_acc, w_vel):
    """1/σ of the acceleration ``(T−2, J)`` at frames (t, t+1, t+2) and of the velocity
    ``(T−1, J)`` at (t, t+1): non-zero where all the frames' joints are active and in one
    segment."""
    T, J = active.shape
    acc = np.zeros((max(T - 2, 0), J))
    vel = np.zeros((max(T - 1, 0), J))
    if w_acc > 0 and T >= 3:
        ok = (active[:-2] & active[1:-1] & active[2:]
              & (seg[:-2] == seg[1:-1])[:, None] & (seg[1:-1] == seg[2:])[:, None])
        acc = np.where(ok, float(w_acc), 0.0)
    if w_vel > 0 and T >= 2:
        ok = active[:-1] & active[1:] & (seg[:-1] == seg[1:])[:, None]
        vel = np.where(ok, float(w_vel), 0.0)
    return acc, vel
