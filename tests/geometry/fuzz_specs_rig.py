"""Argument builders of the ``geometry`` fuzz suite for the rig room (``geometry.rig``: bundle
adjustment, focal self-calibration, time offsets, rigs, windows, sessions, frame selection)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import geometry as geo

from .fuzz_values import _MV, _TWO, _rng, batch, corrupt, mask, mat, scalar, vec, views, weights

_SESSION = geo.calibrate_session([_MV.x], _MV.rig.K, max_frames=8, ba_iterations=3)


def s_apply_time_offsets(d):
    x, _, C, T, J = views(d)
    return (x, vec(d, (), C, scale=3.0)), {}


def s_bundle_adjust(d):
    x, K, C, T, J = views(d)
    xv = np.asarray(x, dtype=float).reshape(C, -1, 2) if isinstance(x, np.ndarray) and \
        x.dtype != object and x.ndim == 4 else x
    N = T * J
    X = corrupt(d, _MV.X[:T, :J].reshape(-1, 3) + 0.01)
    R, t = _MV.rig.R[:C], _MV.rig.t[:C]
    kw = dict(loss=d(st.sampled_from(["soft_l1", "huber", "linear", "cauchy", "bogus"])),
              refine_focal=d(st.sampled_from(["none", "shared", "per_camera", "x"])),
              max_nfev=scalar(d, 3), solver=d(st.sampled_from(["schur", "schur", "scipy", "y"])),
              f_scale=scalar(d, 2.0))
    return (xv, corrupt(d, K), corrupt(d, R), corrupt(d, t), X, mask(d, (C, N)),
            weights(d, (C, N))), kw


def s_estimate_time_offsets(d):
    x, _, C, T, J = views(d)
    return (x, mask(d, (C, T, J))), dict(max_offset=scalar(d, min(2, T - 1)),
                                         reference=scalar(d, 0), subframe=d(st.booleans()),
                                         threshold=scalar(d, 3.0))


def s_focal_from_fundamental(d):
    b = batch(d)
    F = mat(d, b, clean=np.broadcast_to(_TWO.F[0], b + (3, 3)))
    return (F, vec(d, b, 2, 500.0), vec(d, b, 2, 500.0)), dict(rel_eps=scalar(d, 1e-9))


def s_intrinsics_from_image_size(d):
    b = batch(d)
    return (corrupt(d, _rng(d).uniform(100, 2000, b + (2,))),
            None if d(st.booleans()) else corrupt(d, _rng(d).uniform(100, 2000, b))), \
        dict(fov_deg=scalar(d, 50.0, extra=(180.0, 179.9)))


def _rig_kw(d):
    return dict(refine_focal=d(st.sampled_from([None, None, "none", "shared", "per_camera", "x"])),
                threshold=scalar(d, 4.0), max_ba_points=scalar(d, 40), ba_iterations=scalar(d, 3),
                seed=0)


def s_reconstruct_rig(d):
    x, K, C, T, J = views(d)
    Kg = None if d(st.booleans()) else corrupt(d, K)
    size = corrupt(d, [1000, 1000]) if Kg is None or d(st.booleans()) else None
    cj = d(st.sampled_from([None, None, list(range(J))[:2], [J], [], "x"]))
    return (x, Kg, mask(d, (C, T, J)), weights(d, (C, T, J))), dict(image_size=size,
                                                                    calibration_joints=cj,
                                                                    **_rig_kw(d))


def s_reconstruct_rig_windowed(d):
    x, K, C, T, J = views(d)
    return (x, corrupt(d, K), mask(d, (C, T, J))), dict(
        window=scalar(d, d(st.integers(1, 6))), step=scalar(d, d(st.integers(1, 4))),
        **_rig_kw(d))


def _trials(d):
    """A session: 0–3 trials of the multi-view scene's cameras (some corrupted)."""
    n = d(st.sampled_from([0, 1, 2, 2, 3]))
    out = []
    for _ in range(n):
        x, _, C, T, J = views(d)
        out.append(x)
    return out if d(st.booleans()) or not out else tuple(out)


def s_calibrate_session(d):
    trials = _trials(d)
    K = None if d(st.booleans()) else corrupt(d, _MV.rig.K)
    return (trials, K), dict(image_size=corrupt(d, [1000, 1000]) if K is None or d(st.booleans())
                             else None, max_frames=scalar(d, 8), min_confidence=scalar(d, 0.0),
                             **_rig_kw(d))


def s_triangulate_session(d):
    trials = _trials(d)
    cal = _SESSION if d(st.integers(0, 4)) else d(st.sampled_from([None, "cal", 3]))
    return (trials, cal), dict(threshold=None if d(st.booleans()) else scalar(d, 10.0),
                               min_confidence=scalar(d, 0.0), chunk_points=scalar(d, 1000))


def s_reconstruct_session(d):
    trials = _trials(d)
    K = None if d(st.booleans()) else corrupt(d, _MV.rig.K)
    return (trials, K), dict(image_size=corrupt(d, [1000, 1000]) if K is None else None,
                             max_frames=scalar(d, 8), ba_iterations=scalar(d, 3))


def s_select_frames(d):
    x, K, C, T, J = views(d)
    return (x, corrupt(d, K), mask(d, (C, T, J))), dict(
        max_frames=scalar(d, d(st.integers(0, 6))), groups=None if d(st.booleans()) else
        corrupt(d, _rng(d).integers(0, 3, T)), min_per_group=scalar(d, 2),
        min_views=scalar(d, 2), even_fraction=scalar(d, 0.5, extra=(1.0,)),
        pool_size=scalar(d, 50))



def s_offsets_with_cameras(d):
    x, K, C, T, J = views(d)
    return (x, corrupt(d, K), corrupt(d, _MV.rig.R[:C]), corrupt(d, _MV.rig.t[:C])), dict(
        max_offset=scalar(d, min(2, T - 1)), reference=scalar(d, 0), smooth=scalar(d, 1.5),
        halves=scalar(d, 4))


def s_smooth_tracks(d):
    x, _, C, T, J = views(d)
    return (x,), dict(sigma=scalar(d, 1.5))


def s_synchronise_rig(d):
    x, K, C, T, J = views(d)
    return (x, corrupt(d, K)), dict(max_offset=scalar(d, min(2, T - 1)), max_rounds=scalar(d, 1),
                                    rig_replicates=scalar(d, 1), tol=scalar(d, 0.02),
                                    **_rig_kw(d))


def s_synchronise_session(d):
    trials = _trials(d)
    K = None if d(st.booleans()) else corrupt(d, _MV.rig.K)
    return (trials, K), dict(image_size=corrupt(d, [1000, 1000]) if K is None else None,
                             max_offset=scalar(d, 0), max_rounds=scalar(d, 1),
                             max_frames=scalar(d, 8), ba_iterations=scalar(d, 3))
