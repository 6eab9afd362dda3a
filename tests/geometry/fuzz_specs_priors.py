"""Argument builders of the ``geometry`` fuzz suite for the priors room (``geometry.priors``:
skeleton- and time-aware 3D, per-camera/joint observation noise)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .fuzz_values import _MV, _rng, corrupt, mask, scalar, views, weights


def _cameras(d, C):
    return corrupt(d, _MV.rig.R[:C]), corrupt(d, _MV.rig.t[:C])


def _index_pairs(d, J):
    """``(B, 2)`` joint pairs inside ``J`` joints, or odd ones (out of range, wrong shape)."""
    pairs = np.array([(a, b) for a, b in ((0, 1), (1, 2), (2, 3), (3, 4)) if b < J], int)
    pairs = pairs.reshape(-1, 2)
    kind = d(st.sampled_from(["good", "good", "good", "empty", "range", "shape", "float"]))
    if kind == "empty":
        return np.zeros((0, 2), int)
    if kind == "range":
        return np.array([[0, J + 3]])
    if kind == "shape":
        return np.arange(3)
    if kind == "float":
        return pairs + 0.5
    return pairs


def s_observation_noise(d):
    x, K, C, T, J = views(d)
    R, t = _cameras(d, C)
    return (x, corrupt(d, _MV.X[:T, :J]), corrupt(d, K), R, t), dict(
        mask=mask(d, (C, T, J)), prior_count=scalar(d, 20.0),
        min_noise_px=scalar(d, 1e-3))


def s_refine_skeleton(d):
    x, K, C, T, J = views(d)
    R, t = _cameras(d, C)
    X0 = None if d(st.booleans()) else corrupt(d, _MV.X[:T, :J])
    segments = None if d(st.booleans()) else corrupt(d, _rng(d).integers(0, 2, T))
    swaps = None if d(st.booleans()) else _index_pairs(d, J)[:1]
    return (x, corrupt(d, K), R, t, X0), dict(
        bones=_index_pairs(d, J), confidence=weights(d, (C, T, J)), mask=mask(d, (C, T, J)),
        swap_pairs=swaps, segments=segments, bone_weight=scalar(d, 1.0),
        smooth_weight=scalar(d, 1.0), bone_sigma=scalar(d, 0.04), max_rounds=scalar(d, 2),
        max_iter=scalar(d, 5), threshold=scalar(d, None, extra=(5.0,)))


def s_refine_rig_skeleton(d):
    args, kw = s_refine_skeleton(d)
    kw.update(camera_rounds=scalar(d, 1, extra=(2,)), ba_iterations=scalar(d, 5))
    return args, kw
