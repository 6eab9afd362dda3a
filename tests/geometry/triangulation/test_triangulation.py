"""geometry triangulation and fusion: Hartley–Sturm, DLT, vector/geometric median, multi-view."""
import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

import geometry as geo


def _pair(T=200, noise=1.0, seed=0):
    sc = geo.make_multiview_scene(T, 17, noise=noise, outlier_ratio=0.0, seed=seed)
    P = geo.projection_matrix(sc.rig.K, sc.rig.R, sc.rig.t)
    return sc, P, sc.x[0].reshape(-1, 2), sc.x[1].reshape(-1, 2)


def _h(a):
    return np.concatenate([a, np.ones(a.shape[:-1] + (1,))], -1)


def test_optimal_agrees_with_opencv_correct_matches_and_is_never_worse():
    sc, P, x1, x2 = _pair()
    F = geo.fundamental_from_projections(P[0], P[1])
    r = geo.triangulate_optimal(x1, x2, P[0], P[1])
    assert r.valid.all() and r.positive_depth.all()
    c1, c2 = cv2.correctMatches(F, x1[None], x2[None])
    d = np.maximum(np.abs(r.x1 - c1[0]).max(1), np.abs(r.x2 - c2[0]).max(1))
    # OpenCV polishes its polynomial roots less (solvePoly): the two agree to 1e-6 px on most
    # points and to 1e-4 px everywhere, and where they differ ours has the lower cost
    assert np.median(d) < 1e-6 and d.max() < 1e-4
    ours = ((r.x1 - x1) ** 2).sum(1) + ((r.x2 - x2) ** 2).sum(1)
    cvc = ((c1[0] - x1) ** 2).sum(1) + ((c2[0] - x2) ** 2).sum(1)
    assert np.all(ours <= cvc + 1e-9)
    # the corrected points satisfy the epipolar constraint and are the projections of X
    Fn = F / np.linalg.norm(F)
    assert np.abs(np.einsum("ni,ij,nj->n", _h(r.x2), Fn, _h(r.x1))).max() < 1e-9
    np.testing.assert_allclose(geo.project_points(r.X, sc.rig.K[0], sc.rig.R[0], sc.rig.t[0]),
                               r.x1, atol=1e-6)


def test_optimal_reprojection_never_above_dlt():
    sc, P, x1, x2 = _pair(noise=2.0, seed=1)
    opt = geo.triangulate_optimal(x1, x2, P[0], P[1])
    dlt = geo.triangulate_dlt(P[:2], np.stack([x1, x2]))
    assert np.all(opt.reproj_error <= dlt.reproj_error + 1e-9)
    assert np.mean(opt.reproj_error) < np.mean(dlt.reproj_error)


def test_exact_data_recovers_points():
    sc, P, x1, x2 = _pair(T=20, noise=0.0, seed=2)
    r = geo.triangulate_optimal(x1, x2, P[0], P[1])
    X = sc.X.reshape(-1, 3)
    assert np.max(np.linalg.norm(r.X - X, axis=1) / np.linalg.norm(X, axis=1)) < 1e-9


def test_infinity_and_common_centre_are_invalid_not_nan():
    sc, P, x1, x2 = _pair(T=2, noise=0.0, seed=3)
    x1b, x2b = x1.copy(), x2.copy()
    # a point at infinity: the same direction seen by both cameras (parallel rays)
    d = np.array([0.3, 0.2, 1.0])
    for k, (Pk, xk) in enumerate(((P[0], x1b), (P[1], x2b))):
        p = Pk[:, :3] @ d
        xk[1] = p[:2] / p[2]
    r = geo.triangulate_optimal(x1b, x2b, P[0], P[1])
    assert not r.valid[1] and r.valid[2:].all()
    assert np.all(np.isfinite(r.X)) and np.all(np.isfinite(r.x1)) and np.all(np.isfinite(r.x2))
    # two cameras with one centre: no triangulation at all
    Rb = geo.rodrigues_to_matrix(np.array([0.0, 0.3, 0.0])) @ sc.rig.R[0]
    c = geo.camera_centers(sc.rig.R[:1], sc.rig.t[:1])[0]
    P2 = geo.projection_matrix(sc.rig.K[0], Rb, -Rb @ c)
    r = geo.triangulate_optimal(x1, x1, P[0], P2)
    assert not r.valid.any() and np.all(np.isfinite(r.X))


@pytest.mark.parametrize("C", [2, 3, 5, 8])
def test_dlt_exact_with_missing_views(C):
    rig = geo.make_random_rig(C, seed=C)
    sc = geo.make_multiview_scene(10, 17, rig=rig, noise=0.0, outlier_ratio=0.0, seed=C)
    P = geo.projection_matrix(rig.K, rig.R, rig.t)
    x = sc.x.reshape(C, -1, 2).copy()
    rng = np.random.default_rng(C)
    if C > 2:   # drop views at random, keeping two per point
        for n in range(x.shape[1]):
            drop = rng.permutation(C)[:rng.integers(0, C - 1)]
            x[drop, n] = np.nan
    r = geo.triangulate_dlt(P, x)
    X = sc.X.reshape(-1, 3)
    assert r.valid.all()
    assert np.max(np.linalg.norm(r.X - X, axis=1) / np.linalg.norm(X, axis=1)) < 1e-9
    one = x.copy()
    one[1:, 0] = np.nan                              # point 0 seen once: invalid
    r1 = geo.triangulate_dlt(P, one)
    assert not r1.valid[0] and np.all(r1.X[0] == 0)


def test_vector_median_is_the_brute_force_member():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 7, 3))
    mask = rng.random((50, 7)) > 0.2
    r = geo.vector_median(X, mask)
    for b in range(50):
        idx = np.flatnonzero(mask[b])
        if idx.size == 0:
            assert not r.valid[b]
            continue
        Xi = X[b][idx]
        D = np.linalg.norm(Xi[:, None] - Xi[None], axis=-1).sum(1)
        assert r.index[b] == idx[np.argmin(D)]
        np.testing.assert_array_equal(r.X[b], X[b, idx[np.argmin(D)]])


def test_geometric_median_minimises_summed_distance():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(10, 9, 3))
    r = geo.geometric_median(X)
    for b in range(10):
        f = lambda p: np.linalg.norm(X[b] - p, axis=1).sum()  # noqa: E731
        ref = minimize(f, X[b].mean(0), method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}).x
        assert f(r.X[b]) <= f(ref) + 1e-7


def test_multiview_rejects_an_outlier_view_and_reports_quality():
    sc = geo.make_multiview_scene(30, 17, noise=0.5, outlier_ratio=0.0, seed=6)
    P = geo.projection_matrix(sc.rig.K, sc.rig.R, sc.rig.t)
    x = sc.x.reshape(4, -1, 2).copy()
    x[2, ::3] += 60.0                                # every third point wrong in camera 2
    for method in ("dlt", "pairs"):
        r = geo.triangulate_multiview(P, x, method=method, threshold=5.0)
        assert r.valid.all()
        assert not r.used[2, ::3].any()
        # dlt keeps every good view; pairs keeps those within threshold of the winning pair's
        # point (a few are lost where that pair is ill-conditioned: cameras 1 and 3 face
        # each other)
        assert r.used[[0, 1, 3]].mean() > (0.999 if method == "dlt" else 0.97)
        err = np.linalg.norm(r.X - sc.X.reshape(-1, 3), axis=1)
        assert np.median(err) < 0.01
        assert np.all(r.num_views[::3] >= 2) and np.all(r.reproj_error < 5.0)
        assert np.mean(r.num_views[::3] == 3) > (0.999 if method == "dlt" else 0.9)
        assert np.all(r.angle_deg > 30)              # ring cameras 90° apart


def test_camera_helpers_agree_with_opencv():
    rng = np.random.default_rng(7)
    K = np.array([[1200.0, 0, 520], [0, 1210, 480], [0, 0, 1]])
    dist = np.array([-0.2, 0.05, 0.001, -0.002, 0.01])
    rvec, tvec = np.array([0.1, -0.3, 0.2]), np.array([0.2, -0.1, 5.0])
    R = geo.rodrigues_to_matrix(rvec)
    np.testing.assert_allclose(R, cv2.Rodrigues(rvec)[0], atol=1e-15)
    np.testing.assert_allclose(geo.matrix_to_rodrigues(R), rvec, atol=1e-12)
    X = rng.uniform(-1, 1, (100, 3))
    x = geo.project_points(X, K, R, tvec, dist)
    ref = cv2.projectPoints(X, rvec, tvec, K, dist)[0].reshape(-1, 2)
    np.testing.assert_allclose(x, ref, atol=1e-8)
    u = geo.undistort_points(x, K, dist)
    np.testing.assert_allclose(u, geo.project_points(X, K, R, tvec), atol=1e-4)
    Ri, ti = geo.invert_pose(R, tvec)
    Rc, tc = geo.compose_poses(R, tvec, Ri, ti)
    np.testing.assert_allclose(Rc, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(tc, 0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 12), nan_frac=st.floats(0, 1), seed=st.integers(0, 1000))
def test_random_inputs_never_crash(n, nan_frac, seed):
    rng = np.random.default_rng(seed)
    rig = geo.make_ring_rig(3)
    P = geo.projection_matrix(rig.K, rig.R, rig.t)
    x = rng.uniform(-100, 1100, (3, n, 2))
    x[rng.random(x.shape) < nan_frac] = np.nan
    for r in (geo.triangulate_optimal(x[0], x[1], P[0], P[1]), geo.triangulate_dlt(P, x),
              geo.triangulate_multiview(P, x), geo.triangulate_multiview(P, x, method="pairs")):
        assert r.X.shape == (n, 3) and np.all(np.isfinite(r.X))
    m = geo.vector_median(x.transpose(1, 0, 2))
    assert np.all(np.isfinite(m.X))


@pytest.mark.parametrize("call, name", [
    (lambda: geo.triangulate_dlt(np.zeros((2, 3, 3)), np.zeros((2, 5, 2))), "P"),
    (lambda: geo.triangulate_dlt(np.zeros((2, 3, 4)), np.zeros((3, 5, 2))), "x"),
    (lambda: geo.triangulate_optimal(np.zeros((5, 2)), np.zeros((4, 2)), np.eye(3, 4),
                                     np.eye(3, 4)), "x2"),
    (lambda: geo.triangulate_optimal(np.zeros((5, 3)), np.zeros((5, 3)), np.eye(3, 4),
                                     np.eye(3, 4)), "x1"),
    (lambda: geo.vector_median(np.zeros((4, 3)), mask=np.ones(5, bool)), "mask"),
    (lambda: geo.triangulate_multiview(np.zeros((2, 3, 4)), np.zeros((2, 5, 2)),
                                       method="best"), "method"),
])
def test_bad_shapes_raise_value_error(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def _full_search(x1, x2, P1, P2, fast=False):
    """Corrected points from the scalar kernel: ``fast=False`` always runs the full root search
    (every real root in the cost-bounded interval), the reference for the certified paths."""
    from geometry.triangulation.hartley_sturm.poly import epipoles_kernel, hs_kernel
    F = geo.fundamental_from_projections(P1, P2)[None]
    E1, E2 = np.empty((1, 3)), np.empty((1, 3))
    epipoles_kernel(F, P1[None], P2[None], True, E1, E2)
    n = len(x1)
    xc, ok = np.empty((1, 2, n, 2)), np.empty((1, n), dtype=np.bool_)
    use = (np.isfinite(x1).all(1) & np.isfinite(x2).all(1))[None]
    hs_kernel(F, E1, E2, np.ascontiguousarray(x1)[None], np.ascontiguousarray(x2)[None], use, xc,
              ok, 4, fast)
    return xc[0, 0], xc[0, 1], ok[0]


def _hard_cases(rig, n=4000, seed=0):
    """``(name, x1, x2)``: large noise on scene points, uniform points over a wide area (many
    pairs have two minima of the cost, or their minimum at t = ∞) and points next to the
    epipoles at scales 1e-6..100 px."""
    rng = np.random.default_rng(seed)
    P = geo.projection_matrix(rig.K, rig.R, rig.t)
    F = geo.fundamental_from_projections(P[0], P[1])
    U, _, Vt = np.linalg.svd(F)
    e1, e2 = Vt[-1, :2] / Vt[-1, 2], U[:2, -1] / U[2, -1]
    sc = 10.0 ** rng.uniform(-6, 2, (n, 1))
    cases = [("uniform", rng.uniform(-3000, 4000, (n, 2)), rng.uniform(-3000, 4000, (n, 2))),
             ("near epipole", e1 + rng.normal(size=(n, 2)) * sc,
              e2 + rng.normal(size=(n, 2)) * sc * rng.uniform(0, 3, (n, 1)))]
    for noise in (20.0, 300.0):
        s = geo.make_multiview_scene(n // 17 + 1, 17, rig=rig, noise=noise, outlier_ratio=0.0,
                                     seed=seed)
        cases.append((f"noise {noise}", s.x[0].reshape(-1, 2)[:n], s.x[1].reshape(-1, 2)[:n]))
    return P, cases


def _cv_correct_matches(F, x1, x2):
    """cv2.correctMatches on ``(n, 2)`` points; NaN where OpenCV refuses a point. OpenCV 5's
    solvePoly asserts on a vanishing leading coefficient (degenerate sextics, e.g. points at the
    epipoles), which fails the whole call: then the points go one at a time."""
    try:
        c1, c2 = cv2.correctMatches(F, x1[None], x2[None])
        return c1[0], c2[0]
    except cv2.error:
        c1, c2 = np.full_like(x1, np.nan), np.full_like(x2, np.nan)
        for i in range(len(x1)):
            try:
                a, b = cv2.correctMatches(F, x1[None, i:i + 1], x2[None, i:i + 1])
                c1[i], c2[i] = a[0, 0], b[0, 0]
            except cv2.error:
                pass
        return c1, c2


@pytest.mark.parametrize("rig_seed", [None, 0, 1])
def test_certified_fast_path_matches_full_root_search(rig_seed):
    """Regression for the certified fast paths (vector lanes in _hs_fast, scalar in
    hs_correct): on hard cases they find the same global optimum as the full search."""
    rig = geo.make_ring_rig(4) if rig_seed is None else geo.make_random_rig(2, seed=rig_seed)
    P, cases = _hard_cases(rig)
    F = geo.fundamental_from_projections(P[0], P[1])
    for name, x1, x2 in cases:
        r = geo.triangulate_optimal(x1, x2, P[0], P[1])
        a, b, ok = _full_search(x1, x2, P[0], P[1])
        sa, sb, sok = _full_search(x1, x2, P[0], P[1], fast=True)
        assert np.array_equal(sok, ok), name
        assert not np.any(r.valid & ~ok), name
        cost = lambda c1, c2: ((c1 - x1) ** 2).sum(1) + ((c2 - x2) ** 2).sum(1)  # noqa: E731
        ref = cost(a, b)
        for got, m in ((cost(r.x1, r.x2), r.valid), (cost(sa, sb), ok)):
            assert np.all(got[m] <= ref[m] * (1 + 1e-9) + 1e-12), name
        d = np.maximum(np.abs(r.x1 - a).max(1), np.abs(r.x2 - b).max(1))[r.valid]
        assert np.median(d) < 1e-9 and d.max() < 1e-6, name
        # and never worse than OpenCV's correction (where OpenCV gives one)
        c1, c2 = _cv_correct_matches(F, x1, x2)
        cv = cost(c1, c2)
        fin = r.valid & np.isfinite(cv)
        assert np.all(cost(r.x1, r.x2)[fin] <= cv[fin] * (1 + 1e-9) + 1e-9), name
        assert np.all(np.isfinite(r.X)) and np.all(np.isfinite(r.x1)), name


def test_optimal_near_baseline_invalid_like_dlt():
    """Points right next to the epipoles lie near the baseline, where the rays are (nearly)
    parallel: the closed-form intersection must flag them by the DLT's conditioning rule."""
    P, cases = _hard_cases(geo.make_random_rig(2, seed=0))
    _, x1, x2 = cases[1]
    r = geo.triangulate_optimal(x1, x2, P[0], P[1])
    d = geo.triangulate_dlt(P, np.stack([r.x1, r.x2]))
    agree = (r.valid == d.valid).mean()
    assert agree > 0.99 and 0.2 < r.valid.mean() < 0.95
    assert np.all(r.X[~r.valid] == 0) and np.all(r.reproj_error[~r.valid] == 0)
