"""geometry.ransac.estimate_fundamental: the batched robust engine."""
import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from geometry import estimate_fundamental, make_two_view_scene, sampson_distance
from geometry.camera import rodrigues_to_matrix


def _same_up_to_sign(A, B):
    A = A / np.linalg.norm(A)
    B = B / np.linalg.norm(B)
    return min(np.abs(A - B).max(), np.abs(A + B).max())


def test_exact_data_recovers_true_F_with_zero_residual():
    sc = make_two_view_scene(30, 17, seed=1)
    r = estimate_fundamental(sc.x1, sc.x2)
    assert r.valid.all() and r.inliers.all() and np.all(r.num_inliers == 17)
    assert sampson_distance(r.F, sc.x1, sc.x2).max() < 1e-8
    assert max(_same_up_to_sign(r.F[b], sc.F[b]) for b in range(30)) < 1e-8
    np.testing.assert_allclose(np.linalg.norm(r.F, axis=(1, 2)), 1.0)


def test_exact_inliers_with_outliers_match_opencv_on_the_same_inliers():
    sc = make_two_view_scene(20, 40, outlier_ratio=0.25, structure="random", seed=2)
    r = estimate_fundamental(sc.x1, sc.x2, threshold=1.0, max_iterations=100000)
    assert r.valid.all()
    for b in range(20):
        # every outlier that happens to lie on its epipolar line is harmless; true inliers found
        assert np.all(r.inliers[b][sc.inlier[b]])
        Fc, _ = cv2.findFundamentalMat(sc.x1[b][r.inliers[b]], sc.x2[b][r.inliers[b]],
                                       cv2.FM_8POINT)
        # an outlier that falls within 1 px of its epipolar line is a legitimate inlier and moves
        # both estimates slightly off the truth; on the same inliers they must agree
        assert _same_up_to_sign(r.F[b], Fc) < 1e-4
        assert _same_up_to_sign(r.F[b], sc.F[b]) < 1e-4


def test_noisy_F_no_worse_than_opencv_ransac():
    sc = make_two_view_scene(60, 30, noise=1.0, outlier_ratio=0.2, seed=3)
    r = estimate_fundamental(sc.x1, sc.x2, threshold=3.0)
    ours, cvs = [], []
    for b in range(60):
        Fc, _ = cv2.findFundamentalMat(sc.x1[b], sc.x2[b], cv2.FM_RANSAC, 3.0, 0.999)
        t = sc.inlier[b]
        ours.append(np.median(sampson_distance(r.F[b], sc.x1[b][t], sc.x2[b][t])))
        cvs.append(np.median(sampson_distance(Fc[:3], sc.x1[b][t], sc.x2[b][t])))
    assert r.valid.all()
    # F itself is close to OpenCV's on this metric (measured: 0.57 vs 0.53 px); the pose
    # accuracy that matters is compared in test_relative_pose
    assert np.median(ours) <= 1.15 * np.median(cvs)


@pytest.mark.parametrize("inlier_ratio", [0.3, 0.5, 0.7, 0.9, 1.0])
def test_inlier_ratio_sweep_finds_most_true_inliers(inlier_ratio):
    sc = make_two_view_scene(16, 60, noise=0.5, outlier_ratio=1 - np.sqrt(inlier_ratio),
                             structure="random", seed=4)
    r = estimate_fundamental(sc.x1, sc.x2, threshold=2.0, max_iterations=100000)
    assert r.valid.all()
    found = (r.inliers & sc.inlier).sum() / sc.inlier.sum()
    assert found >= 0.8
    false_pos = (r.inliers & ~sc.inlier).sum() / max(1, (~sc.inlier).sum())
    assert false_pos < 0.1


def test_same_seed_identical_for_any_batch_split():
    sc = make_two_view_scene(25, 17, noise=2.0, outlier_ratio=0.15, seed=5)
    x1 = sc.x1.copy()
    x1[3, 2] = np.nan
    full = estimate_fundamental(x1, sc.x2, seed=7)
    parts = [estimate_fundamental(x1[a:b], sc.x2[a:b], seed=7) for a, b in [(0, 4), (4, 25)]]
    rev = estimate_fundamental(x1[::-1], sc.x2[::-1], seed=7)
    one = estimate_fundamental(x1[10], sc.x2[10], seed=7)
    grid = estimate_fundamental(x1[:24].reshape(4, 6, 17, 2), sc.x2[:24].reshape(4, 6, 17, 2),
                                seed=7)
    np.testing.assert_array_equal(np.concatenate([p.F for p in parts]), full.F)
    np.testing.assert_array_equal(np.concatenate([p.inliers for p in parts]), full.inliers)
    np.testing.assert_array_equal(rev.F[::-1], full.F)
    np.testing.assert_array_equal(one.F, full.F[10])
    assert one.F.shape == (3, 3) and one.valid.shape == ()
    np.testing.assert_array_equal(grid.F.reshape(24, 3, 3), full.F[:24])
    other = estimate_fundamental(x1, sc.x2, seed=8)
    assert not np.array_equal(other.F, full.F)  # the seed matters


def test_one_large_problem():
    sc = make_two_view_scene(1, 20000, noise=1.0, outlier_ratio=0.2, structure="random", seed=6)
    r = estimate_fundamental(sc.x1[0], sc.x2[0])
    assert r.valid and r.F.shape == (3, 3)
    assert (r.inliers & sc.inlier[0]).sum() / sc.inlier[0].sum() > 0.9
    assert _same_up_to_sign(r.F, sc.F[0]) < 1e-2


def _degenerate_cases():
    sc = make_two_view_scene(1, 17, seed=9)
    x1, x2 = sc.x1[0], sc.x2[0]
    planar = make_two_view_scene(1, 30, noise=0.3, structure="planar", seed=9)
    Rz = rodrigues_to_matrix(np.array([0.05, -0.2, 0.1]))
    K = sc.K1[0]
    H = K @ Rz @ np.linalg.inv(K)  # zero baseline: pure rotation
    h = np.c_[x1, np.ones(17)] @ H.T
    cases = {
        "fully masked": (x1, x2, np.zeros(17, bool)),
        "seven valid": (x1, x2, np.arange(17) < 7),
        "nan": (np.where(np.arange(17)[:, None] < 11, np.nan, x1), x2, None),
        "coincident": (np.tile(x1[:1], (17, 1)), np.tile(x2[:1], (17, 1)), None),
        "planar": (planar.x1[0], planar.x2[0], None),
        "zero baseline": (x1, h[:, :2] / h[:, 2:], None),
        "identical images": (x1, x1, None),
    }
    return cases


@pytest.mark.parametrize("name", list(_degenerate_cases()))
def test_degenerate_problems_are_invalid(name):
    x1, x2, mask = _degenerate_cases()[name]
    r = estimate_fundamental(x1, x2, mask)
    assert not r.valid and r.num_inliers == 0 and not r.inliers.any() and np.all(r.F == 0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 24), nan_frac=st.floats(0, 1), dup=st.integers(0, 24),
       masked=st.floats(0, 1), planar=st.booleans(), seed=st.integers(0, 2**16))
def test_property_no_crash_and_valid_consistent(n, nan_frac, dup, masked, planar, seed):
    rng = np.random.default_rng(seed)
    sc = make_two_view_scene(3, max(n, 1), noise=1.0, outlier_ratio=0.1,
                             structure="planar" if planar else "random", seed=seed)
    x1, x2 = sc.x1[:, :n].copy(), sc.x2[:, :n].copy()
    x1[rng.random(x1.shape[:2]) < nan_frac] = np.nan
    if n:
        x1[:, : min(dup, n)] = x1[:, :1]
        x2[:, : min(dup, n)] = x2[:, :1]
    mask = rng.random((3, n)) >= masked
    r = estimate_fundamental(x1, x2, mask)
    usable = mask & np.isfinite(x1).all(-1) & np.isfinite(x2).all(-1)
    assert r.F.shape == (3, 3, 3) and r.inliers.shape == (3, n)
    assert np.all(np.isfinite(r.F))
    assert not np.any(r.inliers & ~usable)
    assert np.all(r.valid[usable.sum(-1) < 8] == False)  # noqa: E712
    np.testing.assert_array_equal(r.num_inliers, r.inliers.sum(-1))
    assert np.all(r.num_inliers[r.valid] >= 8) and np.all(r.F[~r.valid] == 0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(x1=np.zeros((5, 17, 3))), "x1"),
    (dict(x2=np.zeros((5, 16, 2))), "x2"),
    (dict(x1=np.full((5, 17, 2), "s")), "x1"),
    (dict(mask=np.ones((5, 16), bool)), "mask"),
    (dict(mask=np.full((5, 17), 0.5)), "mask"),
    (dict(threshold=-1.0), "threshold"),
    (dict(confidence=1.0), "confidence"),
    (dict(max_iterations=0), "max_iterations"),
    (dict(seed=1.5), "seed"),
])
def test_bad_arguments_raise_value_error(kwargs, name):
    args = dict(x1=np.zeros((5, 17, 2)), x2=np.zeros((5, 17, 2)))
    args.update(kwargs)
    x1, x2 = args.pop("x1"), args.pop("x2")
    with pytest.raises(ValueError, match=name):
        estimate_fundamental(x1, x2, **args)
