"""Argument builders of the ``geometry`` fuzz suite, one per public function (``s_<name>``):
each takes hypothesis's ``draw`` and returns ``(args, kwargs)``."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import geometry as geo

from .fuzz_values import (_MV, _RING, _TWO, _rng, batch, corrupt, intr, mask, mat, npts, points,
                          rot, scalar, two_view, vec, views, weights)
from . import fuzz_specs_people, fuzz_specs_priors, fuzz_specs_rig


def s_apply_similarity(d):
    b = batch(d)
    rng = _rng(d)
    sim = geo.umeyama(rng.normal(size=b + (6, 3)), rng.normal(size=b + (6, 3))) \
        if d(st.booleans()) else geo.Similarity(s=corrupt(d, np.ones(b)), R=rot(d, b), t=vec(d, b), valid=np.ones(b, bool))
    return (sim, points(d, b, npts(d), 3)), {}


def s_camera_centers(d):
    b = batch(d)
    return (rot(d, b), vec(d, b)), {}


def s_compose_poses(d):
    b = batch(d)
    return (rot(d, b), vec(d, b), rot(d, b), vec(d, b)), {}


def s_decompose_essential(d):
    b = batch(d)
    return (mat(d, b, clean=geo.essential_from_pose(geo.rodrigues_to_matrix(
        _rng(d).normal(size=b + (3,))), _rng(d).normal(size=b + (3,)))),), {}


def s_direction_error_deg(d):
    b = batch(d)
    return (vec(d, b), vec(d, b)), dict(sign_invariant=d(st.booleans()))


def s_distort_normalized(d):
    b = batch(d)
    return (points(d, b, npts(d), scale=0.5), corrupt(d, _rng(d).normal(size=(d(st.sampled_from(
        [4, 5, 8, 3])),)) * 0.1)), {}


def s_essential_from_fundamental(d):
    b = batch(d)
    return (mat(d, b, clean=np.broadcast_to(_TWO.F[0], b + (3, 3))), intr(d, b), intr(d, b)), \
        dict(project=d(st.booleans()))


def s_essential_from_pose(d):
    b = batch(d)
    return (rot(d, b), vec(d, b)), {}


def _ransac_kw(d):
    return dict(threshold=scalar(d, 3.0), confidence=scalar(d, 0.99, extra=(1.0, 0.0)),
                max_iterations=scalar(d, 50), seed=scalar(d, 0))


def s_estimate_fundamental(d):
    b, n, x1, x2 = two_view(d)
    return (x1, x2, mask(d, b + (n,))), _ransac_kw(d)


def s_estimate_relative_pose(d):
    b, n, x1, x2 = two_view(d)
    kw = _ransac_kw(d)
    kw["distance_threshold"] = scalar(d, 50.0)
    return (x1, x2, intr(d, b), intr(d, b), mask(d, b + (n,))), kw


def s_fundamental_7point(d):
    b = batch(d)
    n = d(st.sampled_from([7, 7, 7, 6, 8, 0]))
    rng = _rng(d)
    idx = rng.integers(0, 4, size=b) if b else 0
    return (corrupt(d, _TWO.x1[idx][..., :n, :]), corrupt(d, _TWO.x2[idx][..., :n, :])), {}


def s_fundamental_8point(d):
    b, n, x1, x2 = two_view(d)
    return (x1, x2, mask(d, b + (n,)), weights(d, b + (n,))), {}


def s_fundamental_from_pose(d):
    b = batch(d)
    return (intr(d, b), intr(d, b), rot(d, b), vec(d, b)), {}


def s_fundamental_from_projections(d):
    b = batch(d)
    P = geo.projection_matrix(_RING.K[0], _RING.R[0], _RING.t[0])
    P2 = geo.projection_matrix(_RING.K[1], _RING.R[1], _RING.t[1])
    return (mat(d, b, 3, 4, np.broadcast_to(P, b + (3, 4))),
            mat(d, b, 3, 4, np.broadcast_to(P2, b + (3, 4)))), {}


def s_fundamental_least_squares(d):
    b, n, x1, x2 = two_view(d)
    F0 = None if d(st.booleans()) else mat(d, b)
    return (x1, x2, mask(d, b + (n,))), dict(F0=F0, iterations=scalar(d, 3))


def s_geometric_median(d):
    b = batch(d)
    n = npts(d)
    return (points(d, b, n, 3), mask(d, b + (n,)), weights(d, b + (n,))), \
        dict(axis=scalar(d, -2, extra=(5, -9)), max_iter=scalar(d, 20), tol=scalar(d, 1e-8))


def s_hartley_normalize(d):
    b = batch(d)
    n = npts(d)
    return (points(d, b, n), mask(d, b + (n,))), {}


def s_human_like_points(d):
    return (scalar(d, d(st.integers(0, 20))), scalar(d, d(st.integers(0, 20)))), \
        dict(spread=scalar(d, 1.0), seed=scalar(d, 0))


def s_invert_pose(d):
    b = batch(d)
    return (rot(d, b), vec(d, b)), {}


def s_look_at(d):
    b = batch(d)
    return (vec(d, b, scale=5.0), vec(d, b)), dict(up=corrupt(d, [0.0, 0.0, 1.0]))


def s_make_multiview_scene(d):
    rig = None if d(st.booleans()) else geo.make_ring_rig(d(st.integers(1, 4)))
    return (scalar(d, d(st.integers(0, 12))), scalar(d, d(st.integers(0, 8)))), dict(
        rig=rig, noise=scalar(d, 2.0), outlier_ratio=scalar(d, 0.1, extra=(1.0,)),
        missing_ratio=scalar(d, 0.1, extra=(1.0,)),
        outlier_model=d(st.sampled_from(["uniform", "uniform", "bogus"])), seed=scalar(d, 0))


def s_make_random_rig(d):
    return (scalar(d, d(st.integers(0, 6))),), dict(
        distance=corrupt(d, [3.5, 7.0]), height=corrupt(d, [0.5, 2.5]),
        focal=corrupt(d, [1100.0, 1700.0]), image_size=corrupt(d, [1000, 1000]),
        seed=scalar(d, 0))


def s_make_ring_rig(d):
    return (scalar(d, d(st.integers(0, 6))),), dict(
        radius=scalar(d, 5.0), height=scalar(d, 1.6), target=corrupt(d, [0.0, 0.0, 1.0]),
        focal=scalar(d, 1150.0), image_size=corrupt(d, [1000, 1000]),
        jitter_deg=scalar(d, 0.0), seed=scalar(d, 0))


def s_make_two_view_scene(d):
    return (scalar(d, d(st.integers(0, 5))), scalar(d, d(st.integers(0, 20)))), dict(
        noise=scalar(d, 1.0), outlier_ratio=scalar(d, 0.1, extra=(1.0,)),
        structure=d(st.sampled_from(["human", "human", "random", "bogus"])),
        focal=scalar(d, 1150.0), image_size=corrupt(d, [1000, 1000]),
        angle_deg=corrupt(d, [30.0, 150.0]),
        outlier_model=d(st.sampled_from(["uniform", "uniform", "bogus"])), seed=scalar(d, 0))


def s_matrix_to_rodrigues(d):
    return (rot(d, batch(d)),), {}


def s_project_points(d):
    b = batch(d)
    n = npts(d)
    X = corrupt(d, _rng(d).normal(size=b + (n, 3)) + np.array([0, 0, 5.0]))
    R = None if d(st.booleans()) else rot(d, b)
    t = None if R is None and d(st.booleans()) else vec(d, b)
    dist = None if d(st.booleans()) else corrupt(d, np.zeros(5))
    return (X, intr(d, b), R, t, dist), dict(return_depth=d(st.booleans()))


def s_projection_matrix(d):
    b = batch(d)
    return (intr(d, b), rot(d, b), vec(d, b)), {}


def s_recover_pose(d):
    b, n, x1, x2 = two_view(d)
    rng = _rng(d)
    idx = rng.integers(0, 4, size=b) if b else 0
    E = mat(d, b, clean=geo.essential_from_pose(_TWO.R[idx], _TWO.t[idx]))
    return (E, x1, x2, intr(d, b), intr(d, b), mask(d, b + (n,))), \
        dict(distance_threshold=scalar(d, 50.0))


def s_relative_pose(d):
    b = batch(d)
    return (rot(d, b), vec(d, b), rot(d, b), vec(d, b)), dict(normalize=d(st.booleans()))


def s_rodrigues_to_matrix(d):
    return (vec(d, batch(d), scale=2.0),), {}


def s_rotation_aligning(d):
    return (vec(d, ()),), dict(b=corrupt(d, [0.0, 0.0, 1.0]))


def s_rotation_error_deg(d):
    b = batch(d)
    return (rot(d, b), rot(d, b)), {}


def s_sampson_distance(d):
    b, n, x1, x2 = two_view(d)
    return (mat(d, b), x1, x2), dict(squared=d(st.booleans()))


def _joints_X(d):
    T, J = d(st.sampled_from([0, 1, 4])), d(st.sampled_from([0, 2, 5]))
    return corrupt(d, _MV.X[:T, :J] if T <= 8 and J <= 5 else np.zeros((T, J, 3))), J


def _index(d, J):
    return d(st.one_of(st.integers(-J - 2, J + 2), st.sampled_from([1.5, None, "a", [0, 1],
                                                                   np.array([0, 99])])))


def s_scale_from_bone_lengths(d):
    X, J = _joints_X(d)
    nb = d(st.integers(0, 3))
    bones = corrupt(d, _rng(d).integers(-1, J + 2, (nb, 2)))
    return (X, bones, corrupt(d, _rng(d).uniform(0.1, 1.0, nb))), {}


def s_scale_from_height(d):
    X, J = _joints_X(d)
    return (X, scalar(d, 1.7), _index(d, J), _index(d, J)), dict(quantile=scalar(d, 0.5,
                                                                                extra=(1.5,)))


def s_skew(d):
    return (vec(d, batch(d)),), {}


def s_symmetric_epipolar_distance(d):
    b, n, x1, x2 = two_view(d)
    return (mat(d, b), x1, x2), dict(squared=d(st.booleans()))


def _projections(d, C):
    P = np.stack([geo.projection_matrix(_MV.rig.K[c], _MV.rig.R[c], _MV.rig.t[c])
                  for c in range(C)])
    return corrupt(d, P)


def s_triangulate_dlt(d):
    x, _, C, T, J = views(d)
    xv = np.asarray(x).reshape(C, -1, 2) if isinstance(x, np.ndarray) and x.dtype != object \
        and x.ndim == 4 else x
    return (_projections(d, C), xv, mask(d, (C, T * J)), weights(d, (C, T * J))), {}


def s_triangulate_multiview(d):
    args, _ = s_triangulate_dlt(d)
    return args, dict(method=d(st.sampled_from(["dlt", "dlt", "median", "bogus"])),
                      threshold=scalar(d, 10.0), refine=d(st.booleans()))


def s_triangulate_optimal(d):
    b, n, x1, x2 = two_view(d)
    P1 = np.broadcast_to(np.hstack([np.eye(3), np.zeros((3, 1))]), b + (3, 4))
    P2 = np.broadcast_to(geo.projection_matrix(np.eye(3), _TWO.R[0], _TWO.t[0]), b + (3, 4))
    F = None if d(st.booleans()) else mat(d, b)
    return (x1, x2, corrupt(d, P1), corrupt(d, P2)), dict(F=F, mask=mask(d, b + (n,)))


def s_two_view_from_multiview(d):
    C = _MV.x.shape[0]
    pairs = None if d(st.booleans()) else corrupt(d, _rng(d).integers(-1, C + 1, (d(st.integers(
        0, 3)), 2)))
    return (_MV, pairs), {}


def s_umeyama(d):
    b = batch(d)
    n = npts(d)
    src = points(d, b, n, 3)
    dst = corrupt(d, np.asarray(src, dtype=float) * 2 + 1) if isinstance(src, np.ndarray) and \
        src.dtype.kind == "f" else points(d, b, n, 3)
    return (src, dst, mask(d, b + (n,)), weights(d, b + (n,))), \
        dict(with_scale=d(st.booleans()))


def s_undistort_points(d):
    b = batch(d)
    return (points(d, b, npts(d)), intr(d, b), corrupt(d, _rng(d).normal(size=5) * 0.1)), {}


def s_up_from_spine(d):
    X, J = _joints_X(d)
    return (X, _index(d, J), _index(d, J)), {}


def s_vector_median(d):
    b = batch(d)
    n = npts(d)
    return (points(d, b, n, 3), mask(d, b + (n,))), dict(axis=scalar(d, -2, extra=(5, -9)))


SPECS = {name[2:]: fn for mod in (globals(), vars(fuzz_specs_rig), vars(fuzz_specs_people),
                                         vars(fuzz_specs_priors))
         for name, fn in list(mod.items()) if name.startswith("s_")}   # + the rig, people, priors rooms'

SLOW = {"calibrate_session": 30, "reconstruct_session": 30, "triangulate_session": 50,
        "reconstruct_rig": 40, "reconstruct_rig_windowed": 25, "bundle_adjust": 60,
        "estimate_time_offsets": 50, "make_multiview_scene": 60, "estimate_relative_pose": 80,
        "estimate_fundamental": 80, "synchronise_rig": 25, "synchronise_session": 20,
        "offsets_with_cameras": 50, "associate_people": 25, "reconstruct_people": 25,
        "track_people": 60, "refine_skeleton": 40, "observation_noise": 60,
        "refine_rig_skeleton": 30}
DEFAULT_EXAMPLES = 110



_WARM = {
    "estimate_fundamental": ((_TWO.x1, _TWO.x2), {}),
    "estimate_relative_pose": ((_TWO.x1, _TWO.x2, _TWO.K1, _TWO.K2), {}),
    "fundamental_7point": ((_TWO.x1[:, :7], _TWO.x2[:, :7]), {}),
    "fundamental_least_squares": ((_TWO.x1, _TWO.x2), {}),
    "triangulate_optimal": ((_TWO.x1, _TWO.x2, np.hstack([np.eye(3), np.zeros((3, 1))]),
                             geo.projection_matrix(np.eye(3), _TWO.R[0], _TWO.t[0])), {}),
    "estimate_time_offsets": ((_MV.x,), dict(max_offset=2)),
    "reconstruct_rig": ((_MV.x, _MV.rig.K), {}),
    "recover_pose": ((geo.essential_from_pose(_TWO.R, _TWO.t), _TWO.x1, _TWO.x2, _TWO.K1,
                      _TWO.K2), {}),
    "decompose_essential": ((geo.essential_from_pose(_TWO.R, _TWO.t),), {}),
    "triangulate_multiview": ((np.stack([geo.projection_matrix(_MV.rig.K[c], _MV.rig.R[c],
                                                               _MV.rig.t[c]) for c in range(4)]),
                               _MV.x.reshape(4, -1, 2)), {}),
}
