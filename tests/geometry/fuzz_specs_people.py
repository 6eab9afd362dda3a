"""Argument builders of the ``geometry`` fuzz suite for the people room (``geometry.people``:
tracking, association, reconstruction of several people)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .fuzz_values import _MV, _rng, corrupt, scalar, weights


def _people(d):
    """``x (C, T, P, J, 2)``: the multi-view scene's person and a shifted copy, slots shuffled
    per camera-frame (subset of cameras/frames/joints, then corrupted), its K and shape."""
    rng = _rng(d)
    C = d(st.sampled_from([1, 2, 3, 4]))
    T = d(st.sampled_from([1, 2, 5, 8]))
    J = d(st.sampled_from([1, 3, 5]))
    P = d(st.sampled_from([1, 2, 3]))
    cams = rng.choice(4, C, replace=False)
    base = _MV.x[cams][:, :T, :J]
    x = np.full((C, T, P, J, 2), np.nan)
    for p in range(min(P, 2)):
        x[:, :, p] = base + 60.0 * p
    for c in range(C):
        for t in range(T):
            x[c, t] = x[c, t, rng.permutation(P)]
    return corrupt(d, x, clean_weight=4), _MV.rig.K[cams], (C, T, P, J)


def s_track_people(d):
    x, _, shape = _people(d)
    return (x, weights(d, shape)), dict(max_px=scalar(d, None, extra=(30.0,)),
                                        max_gap=scalar(d, 10))


def s_associate_people(d):
    x, K, shape = _people(d)
    return (x, weights(d, shape), corrupt(d, K)), dict(
        num_people=scalar(d, None, extra=(2, "auto")), seed=scalar(d, 0),
        threshold=scalar(d, None, extra=(12.0,)), min_track_frames=scalar(d, 2),
        ba_iterations=3)


def s_reconstruct_people(d):
    x, K, shape = _people(d)
    return (x, weights(d, shape), corrupt(d, K)), dict(
        num_people=scalar(d, None, extra=(2,)), seed=scalar(d, 0),
        min_motion_px=scalar(d, 2.0), min_track_frames=scalar(d, 2), ba_iterations=3)
