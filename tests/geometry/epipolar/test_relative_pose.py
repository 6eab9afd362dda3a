"""geometry.estimate_relative_pose: F-RANSAC → E → cheirality, batched."""
import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from geometry import (direction_error_deg, estimate_relative_pose, make_multiview_scene,
                      make_two_view_scene, rotation_error_deg, sampson_distance, skew,
                      two_view_from_multiview)
from geometry.camera import rodrigues_to_matrix


def _opencv_pose(x1, x2, K1, K2, method=cv2.FM_RANSAC):
    F, inl = cv2.findFundamentalMat(x1, x2, method, 3.0, 0.999)
    E = K2.T @ F[:3] @ K1
    p1 = cv2.undistortPoints(x1.reshape(-1, 1, 2), K1, None)
    p2 = cv2.undistortPoints(x2.reshape(-1, 1, 2), K2, None)
    _, R, t, _ = cv2.recoverPose(E, p1, p2, np.eye(3), mask=inl.copy())
    return R, t.ravel()


def test_exact_data_gives_true_pose_and_zero_residual():
    ring = two_view_from_multiview(make_multiview_scene(4, 17, noise=0.0, outlier_ratio=0.0,
                                                        seed=21))   # 6 pairs × 4 frames
    rand = make_two_view_scene(20, 17, seed=22)
    for sc in (ring, rand):
        r = estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2)
        assert r.valid.all() and r.inliers.all() and np.all(r.num_in_front == 17)
        np.testing.assert_allclose(r.R, sc.R, atol=1e-7)
        np.testing.assert_allclose(r.t, sc.t, atol=1e-7)
        np.testing.assert_allclose(np.linalg.norm(r.t, axis=-1), 1.0)
        assert sampson_distance(r.F, sc.x1, sc.x2).max() < 1e-8
        np.testing.assert_allclose(r.E, skew(r.t) @ r.R / np.sqrt(2), atol=1e-15)


def test_pose_agrees_with_opencv_recover_pose_on_the_same_inliers():
    sc = make_two_view_scene(30, 30, noise=1.5, outlier_ratio=0.2, seed=23)
    r = estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2)
    assert r.valid.all()
    # where the four candidates nearly tie (a bad F on a small human) the midpoint (ours) and
    # DLT (OpenCV) depths may break the tie differently; compare where cheirality is decisive
    clear = np.flatnonzero(r.num_in_front >= 0.75 * r.num_inliers)
    assert len(clear) >= 25
    for b in clear:
        E = sc.K2[b].T @ r.F[b] @ sc.K1[b]
        p1 = cv2.undistortPoints(sc.x1[b].reshape(-1, 1, 2), sc.K1[b], None)
        p2 = cv2.undistortPoints(sc.x2[b].reshape(-1, 1, 2), sc.K2[b], None)
        _, Rc, tc, _ = cv2.recoverPose(E, p1, p2, np.eye(3),
                                       mask=r.inliers[b].astype(np.uint8)[:, None])
        np.testing.assert_allclose(r.R[b], Rc, atol=1e-8)
        np.testing.assert_allclose(r.t[b], tc.ravel(), atol=1e-8)


def test_noisy_pose_no_worse_than_opencv_ransac_loop():
    sc = two_view_from_multiview(make_multiview_scene(40, 17, noise=2.0, outlier_ratio=0.1,
                                                      seed=24))
    r = estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2)
    ok = np.isfinite(sc.x1).all((1, 2)) & np.isfinite(sc.x2).all((1, 2))
    idx = np.flatnonzero(ok)
    cv = [_opencv_pose(sc.x1[b], sc.x2[b], sc.K1[b], sc.K2[b]) for b in idx]
    rot_cv = rotation_error_deg(np.stack([c[0] for c in cv]), sc.R[idx])
    rot_us = rotation_error_deg(r.R[idx], sc.R[idx])
    assert r.valid[idx].mean() > 0.95
    # measured on these 240 pairs: 11.3° (epigeo) vs 16.8° (OpenCV)
    assert np.median(rot_us) <= np.median(rot_cv)
    t_cv = direction_error_deg(np.stack([c[1] for c in cv]), sc.t[idx])
    assert np.median(direction_error_deg(r.t[idx], sc.t[idx])) <= 1.1 * np.median(t_cv)


@pytest.mark.parametrize("inlier_ratio, vs_oracle", [(0.3, 2.5), (0.5, 1.3), (0.7, 1.3),
                                                     (1.0, 1.1)])
def test_inlier_ratio_sweep_recovers_inliers_and_pose(inlier_ratio, vs_oracle):
    B = 24
    sc = make_two_view_scene(B, 60, noise=0.5, outlier_ratio=1 - np.sqrt(inlier_ratio),
                             structure="random", seed=25)
    r = estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2, threshold=2.0,
                               max_iterations=100000)
    assert r.valid.all()
    assert (r.inliers & sc.inlier).sum() / sc.inlier.sum() >= 0.8
    # the oracle: 8-point + recoverPose on the true inliers (a 1 m box seen from 4–7 m is a
    # narrow field of view, so even the oracle's F-based pose is off by a few degrees); and
    # OpenCV's FM_RANSAC with the same threshold and iteration cap
    oracle, cv = [], []
    for b in range(B):
        m = sc.inlier[b]
        F, _ = cv2.findFundamentalMat(sc.x1[b][m], sc.x2[b][m], cv2.FM_8POINT)
        E = sc.K2[b].T @ F @ sc.K1[b]
        p1 = cv2.undistortPoints(sc.x1[b][m].reshape(-1, 1, 2), sc.K1[b], None)
        p2 = cv2.undistortPoints(sc.x2[b][m].reshape(-1, 1, 2), sc.K2[b], None)
        oracle.append(cv2.recoverPose(E, p1, p2, np.eye(3))[1])
        F, inl = cv2.findFundamentalMat(sc.x1[b], sc.x2[b], cv2.FM_RANSAC, 2.0, 0.999, 100000)
        p1 = cv2.undistortPoints(sc.x1[b].reshape(-1, 1, 2), sc.K1[b], None)
        p2 = cv2.undistortPoints(sc.x2[b].reshape(-1, 1, 2), sc.K2[b], None)
        cv.append(cv2.recoverPose(sc.K2[b].T @ F[:3] @ sc.K1[b], p1, p2, np.eye(3),
                                  mask=inl)[1])
    ours = np.median(rotation_error_deg(r.R, sc.R))
    # measured medians (°), ours / oracle / OpenCV: 30 %: 4.3 / 3.3 / 5.4; 50 %: 2.4 / 2.6 / 3.3;
    # 70 %: 1.7 / 1.4 / 3.4; 100 %: 0.94 / 0.92 / 4.1 (at 30 % RANSAC keeps ~89 % of the true
    # inliers and the narrow view amplifies each lost one; on 300 problems ours is 2.0× oracle)
    assert ours <= vs_oracle * np.median(rotation_error_deg(np.stack(oracle), sc.R))
    assert ours <= np.median(rotation_error_deg(np.stack(cv), sc.R))


def test_same_seed_identical_for_any_batch_split():
    sc = make_two_view_scene(18, 17, noise=2.0, outlier_ratio=0.15, seed=26)
    full = estimate_relative_pose(sc.x1, sc.x2, sc.K1, sc.K2, seed=3)
    parts = [estimate_relative_pose(sc.x1[a:b], sc.x2[a:b], sc.K1[a:b], sc.K2[a:b], seed=3)
             for a, b in [(0, 5), (5, 6), (6, 18)]]
    for f in ("R", "t", "F", "inliers", "valid"):
        np.testing.assert_array_equal(np.concatenate([getattr(p, f) for p in parts]),
                                      getattr(full, f))
    grid = estimate_relative_pose(sc.x1.reshape(3, 6, 17, 2), sc.x2.reshape(3, 6, 17, 2),
                                  sc.K1[0], sc.K2[0], seed=3)   # one K broadcast
    np.testing.assert_array_equal(grid.R.reshape(18, 3, 3), full.R)
    one = estimate_relative_pose(sc.x1[7], sc.x2[7], sc.K1[7], sc.K2[7], seed=3)
    assert one.R.shape == (3, 3) and one.valid.shape == ()
    np.testing.assert_array_equal(one.t, full.t[7])


def _degenerate_cases():
    sc = make_two_view_scene(1, 17, seed=27)
    x1, x2, K = sc.x1[0], sc.x2[0], sc.K1[0]
    planar = make_two_view_scene(1, 30, noise=0.3, structure="planar", seed=27)
    H = K @ rodrigues_to_matrix(np.array([0.05, -0.2, 0.1])) @ np.linalg.inv(K)
    h = np.c_[x1, np.ones(17)] @ H.T   # zero baseline: a pure rotation
    return {
        "fully masked": (x1, x2, np.zeros(17, bool)),
        "six valid": (x1, x2, np.arange(17) < 6),
        "nan": (np.where(np.arange(17)[:, None] < 11, np.nan, x1), x2, None),
        "duplicates": (np.tile(x1[:1], (17, 1)), np.tile(x2[:1], (17, 1)), None),
        "planar": (planar.x1[0], planar.x2[0], None),
        "zero baseline": (x1, h[:, :2] / h[:, 2:], None),
        "identical images": (x1, x1, None),
    }


@pytest.mark.parametrize("name", list(_degenerate_cases()))
def test_degenerate_problems_are_invalid_with_placeholders(name):
    x1, x2, mask = _degenerate_cases()[name]
    K = make_two_view_scene(1, 17, seed=27).K1[0]
    r = estimate_relative_pose(x1, x2, K, K, mask)
    assert not r.valid and r.num_in_front == 0
    np.testing.assert_array_equal(r.R, np.eye(3))
    assert np.all(r.t == 0) and np.all(r.E == 0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 24), nan_frac=st.floats(0, 1), dup=st.integers(0, 24),
       masked=st.floats(0, 1), structure=st.sampled_from(["human", "random", "planar"]),
       zero_baseline=st.booleans(), seed=st.integers(0, 2**16))
def test_property_no_crash_and_consistent(n, nan_frac, dup, masked, structure, zero_baseline,
                                          seed):
    rng = np.random.default_rng(seed)
    sc = make_two_view_scene(3, max(n, 1), noise=1.0, outlier_ratio=0.1, structure=structure,
                             seed=seed)
    x1, x2 = sc.x1[:, :n].copy(), sc.x2[:, :n].copy()
    if zero_baseline:
        x2 = x1 + rng.normal(0, 0.5, x1.shape)
    x1[rng.random(x1.shape[:2]) < nan_frac] = np.nan
    if n:
        x1[:, : min(dup, n)] = x1[:, :1]
        x2[:, : min(dup, n)] = x2[:, :1]
    mask = rng.random((3, n)) >= masked
    r = estimate_relative_pose(x1, x2, sc.K1, sc.K2, mask)
    usable = mask & np.isfinite(x1).all(-1) & np.isfinite(x2).all(-1)
    for a in (r.R, r.t, r.F, r.E):
        assert np.all(np.isfinite(a))
    assert r.R.shape == (3, 3, 3) and r.inliers.shape == (3, n) and r.valid.shape == (3,)
    assert not np.any(r.inliers & ~usable)
    assert not np.any(r.valid[usable.sum(-1) < 8])
    if zero_baseline:   # x2 = x1 + noise: the identity homography explains every point
        assert not r.valid.any()
    assert np.all(r.num_in_front <= r.num_inliers)
    v = r.valid
    np.testing.assert_allclose(np.linalg.norm(r.t[v], axis=-1), 1.0)
    np.testing.assert_allclose(r.R[v] @ np.swapaxes(r.R[v], 1, 2),
                               np.broadcast_to(np.eye(3), r.R[v].shape), atol=1e-9)
    assert np.all(r.t[~v] == 0) and np.all(r.R[~v] == np.eye(3))


@pytest.mark.parametrize("kwargs, name", [
    (dict(x1=np.zeros((5, 17, 3))), "x1"),
    (dict(x1=np.full((5, 17, 2), "s")), "x1"),
    (dict(x2=np.zeros((5, 16, 2))), "x2"),
    (dict(K1=np.zeros((5, 3, 2))), "K1"),
    (dict(K1=np.full((3, 3), np.inf)), "K1"),
    (dict(K2=np.zeros((4, 3, 3))), "K2"),
    (dict(mask=np.ones((5, 16), bool)), "mask"),
    (dict(threshold=0.0), "threshold"),
    (dict(confidence=1.5), "confidence"),
    (dict(max_iterations=-3), "max_iterations"),
    (dict(distance_threshold=-1.0), "distance_threshold"),
])
def test_bad_arguments_raise_value_error(kwargs, name):
    args = dict(x1=np.zeros((5, 17, 2)), x2=np.zeros((5, 17, 2)), K1=np.eye(3), K2=np.eye(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        estimate_relative_pose(**args)
