"""geometry.bundle_adjust, self-calibration and alignment helpers used by the rig."""
import numpy as np
import pytest

import geometry as geo


def _perturbed(seed=0, T=30, noise=0.0):
    sc = geo.make_multiview_scene(T, 17, noise=noise, outlier_ratio=0.0, seed=seed)
    rng = np.random.default_rng(seed)
    rig = sc.rig
    C = rig.num_cameras
    R0 = np.stack([geo.rodrigues_to_matrix(rng.normal(0, 0.02, 3)) @ rig.R[c] if c else rig.R[c]
                   for c in range(C)])
    t0 = rig.t + np.r_[[np.zeros(3)], rng.normal(0, 0.05, (C - 1, 3))]
    X0 = sc.X.reshape(-1, 3) + rng.normal(0, 0.03, (T * 17, 3))
    return sc, R0, t0, X0


@pytest.mark.parametrize("solver", ["schur", "scipy"])
def test_exact_data_converges_to_zero_residual(solver):
    sc, R0, t0, X0 = _perturbed(1)
    C = sc.rig.num_cameras
    x = sc.x.reshape(C, -1, 2)
    r = geo.bundle_adjust(x, sc.rig.K, R0, t0, X0, fixed_cameras=(0,), loss="linear",
                          solver=solver, max_nfev=100)
    assert r.valid
    assert np.nanmax(r.residuals) < 1e-4
    # the gauge: camera 0 fixed; everything else equal to the truth up to the global scale
    c_est = geo.camera_centers(r.R, r.t)
    c_true = geo.camera_centers(sc.rig.R, sc.rig.t)
    s = np.linalg.norm(c_true[1] - c_true[0]) / np.linalg.norm(c_est[1] - c_est[0])
    for c in range(1, C):
        assert geo.rotation_error_deg(r.R[c], sc.rig.R[c]) < 1e-4
    np.testing.assert_allclose(s * (c_est - c_est[0]), c_true - c_true[0], atol=1e-5)


def test_schur_and_scipy_solvers_agree_on_noisy_data():
    sc, R0, t0, X0 = _perturbed(2, noise=1.0)
    C = sc.rig.num_cameras
    x = sc.x.reshape(C, -1, 2)
    a = geo.bundle_adjust(x, sc.rig.K, R0, t0, X0, solver="schur", max_nfev=100)
    b = geo.bundle_adjust(x, sc.rig.K, R0, t0, X0, solver="scipy", max_nfev=200)
    assert a.valid and b.valid
    # same minimum; the exact Schur steps get at least as low as scipy's inexact (lsmr) trf
    assert a.cost <= b.cost * (1 + 1e-9)
    assert b.cost - a.cost <= 0.05 * b.cost
    for c in range(C):
        assert geo.rotation_error_deg(a.R[c], b.R[c]) < 0.02


def test_focal_refinement_recovers_focal_and_reports_its_std():
    sc, R0, t0, X0 = _perturbed(3, T=60, noise=0.5)
    C = sc.rig.num_cameras
    K0 = sc.rig.K.copy()
    K0[:, 0, 0] *= 0.95
    K0[:, 1, 1] *= 0.95
    r = geo.bundle_adjust(sc.x.reshape(C, -1, 2), K0, R0, t0, X0, refine_focal="shared",
                          max_nfev=100)
    f_true = sc.rig.K[0, 0, 0]
    assert abs(r.K[0, 0, 0] / f_true - 1) < 0.01
    assert np.all(r.focal_std > 0) and np.all(r.focal_std < 0.01 * f_true)
    assert abs(r.K[0, 0, 0] - f_true) < 5 * r.focal_std[0]


def test_points_seen_once_are_left_alone_and_flagged():
    sc, R0, t0, X0 = _perturbed(4)
    C = sc.rig.num_cameras
    x = sc.x.reshape(C, -1, 2).copy()
    x[1:, 5] = np.nan                           # point 5 seen by camera 0 only
    r = geo.bundle_adjust(x, sc.rig.K, R0, t0, X0, max_nfev=30)
    assert r.valid and not r.point_valid[5] and r.point_valid[6]
    np.testing.assert_array_equal(r.X[5], X0[5])
    empty = geo.bundle_adjust(np.full_like(x, np.nan), sc.rig.K, R0, t0, X0)
    assert not empty.valid and np.all(np.isfinite(empty.R))


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=np.zeros((4, 10))), "x"),
    (dict(R=np.zeros((3, 3, 3))), "R"),
    (dict(t=np.zeros((4, 2))), "t"),
    (dict(X=np.zeros((9, 3))), "X"),
    (dict(loss="l2"), "loss"),
    (dict(refine_focal="yes"), "refine_focal"),
    (dict(f_scale=0.0), "f_scale"),
    (dict(mask=np.ones((4, 9), bool)), "mask"),
])
def test_bundle_bad_arguments(kwargs, name):
    args = dict(x=np.zeros((4, 10, 2)), K=np.eye(3), R=np.tile(np.eye(3), (4, 1, 1)),
                t=np.zeros((4, 3)), X=np.zeros((10, 3)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        geo.bundle_adjust(args.pop("x"), args.pop("K"), args.pop("R"), args.pop("t"),
                          args.pop("X"), **args)


def test_bougnoux_focal_from_exact_fundamental():
    rig = geo.make_random_rig(2, seed=2)
    R, t = geo.relative_pose(rig.R[0], rig.t[0], rig.R[1], rig.t[1])
    F = geo.fundamental_from_pose(rig.K[0], rig.K[1], R, t)
    res = geo.focal_from_fundamental(F, rig.K[0, :2, 2], rig.K[1, :2, 2])
    assert res.valid
    np.testing.assert_allclose([res.f1, res.f2], rig.K[:, 0, 0], rtol=1e-6)


def test_intrinsics_guess_and_umeyama():
    K = geo.intrinsics_from_image_size((1000, 800))
    assert K[0, 2] == 500 and K[1, 2] == 400
    assert np.isclose(K[0, 0], 500 / np.tan(np.radians(25)))
    with pytest.raises(ValueError, match="image_size"):
        geo.intrinsics_from_image_size((1000, -1))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    Rt = geo.rodrigues_to_matrix(np.array([0.3, -0.2, 0.5]))
    Y = 2.5 * X @ Rt.T + np.array([1.0, 2.0, 3.0])
    sim = geo.umeyama(X, Y)
    np.testing.assert_allclose(geo.apply_similarity(sim, X), Y, atol=1e-10)
