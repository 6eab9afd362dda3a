"""geometry.essential: E from F, the four pose candidates, cheirality (recover_pose)."""
import cv2
import numpy as np
import pytest

from geometry import (decompose_essential, essential_from_fundamental, essential_from_pose,
                      make_two_view_scene, recover_pose, skew)


def _same_up_to_sign(A, B):
    A = A / np.linalg.norm(A)
    B = B / np.linalg.norm(B)
    return min(np.abs(A - B).max(), np.abs(A + B).max())


def test_essential_from_true_F_is_the_true_E():
    sc = make_two_view_scene(20, 17, seed=11)
    E = essential_from_fundamental(sc.F, sc.K1, sc.K2)
    assert E.shape == (20, 3, 3)
    Et = essential_from_pose(sc.R, sc.t)
    assert max(_same_up_to_sign(E[b], Et[b]) for b in range(20)) < 1e-9
    s = np.linalg.svd(E, compute_uv=False)
    np.testing.assert_allclose(s, np.tile([2 ** -0.5, 2 ** -0.5, 0.0], (20, 1)), atol=1e-12)
    # one K broadcast over the batch, and a zero F gives a zero E
    np.testing.assert_allclose(essential_from_fundamental(sc.F, sc.K1[0], sc.K2[0]), E)
    assert np.all(essential_from_fundamental(np.zeros((3, 3)), np.eye(3), np.eye(3)) == 0)


def test_decompose_matches_opencv_and_contains_true_pose():
    sc = make_two_view_scene(15, 17, seed=12)
    E = essential_from_pose(sc.R, sc.t)
    Rs, ts = decompose_essential(E)
    assert Rs.shape == (15, 4, 3, 3) and ts.shape == (15, 4, 3)
    for b in range(15):
        R1, R2, tc = cv2.decomposeEssentialMat(E[b])
        for k in range(4):
            R, t = Rs[b, k], ts[b, k]
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
            assert np.linalg.det(R) == pytest.approx(1.0)
            assert np.linalg.norm(t) == pytest.approx(1.0)
            assert _same_up_to_sign(skew(t) @ R, E[b]) < 1e-10
        # OpenCV's order: (R1, t), (R1, -t), (R2, t), (R2, -t), t up to a common sign
        ours = {tuple(np.round(Rs[b, k], 8).ravel()) for k in (0, 2)}
        theirs = {tuple(np.round(R, 8).ravel()) for R in (R1, R2)}
        assert ours == theirs
        np.testing.assert_allclose(Rs[b, 0], Rs[b, 1])
        np.testing.assert_allclose(ts[b, 0], -ts[b, 1])
        assert min(np.abs(ts[b, 0] - tc.ravel()).max(), np.abs(ts[b, 0] + tc.ravel()).max()) < 1e-9
        # the true pose is one of the four candidates
        err = [np.abs(Rs[b, k] - sc.R[b]).max() + np.abs(ts[b, k] - sc.t[b]).max()
               for k in range(4)]
        assert min(err) < 1e-9


def test_decompose_rank_deficient_gives_placeholders():
    E = np.stack([np.zeros((3, 3)), np.outer([1.0, 0, 0], [0, 1.0, 0]),
                  np.full((3, 3), 1e-300)])
    Rs, ts = decompose_essential(E)
    np.testing.assert_array_equal(Rs, np.broadcast_to(np.eye(3), (3, 4, 3, 3)))
    assert np.all(ts == 0)


def test_recover_pose_exact_data_gives_true_pose():
    sc = make_two_view_scene(25, 17, seed=13)
    E = essential_from_pose(sc.R, sc.t) * -3.0  # scale and sign of E do not matter
    r = recover_pose(E, sc.x1, sc.x2, sc.K1, sc.K2)
    assert r.valid.all() and r.in_front.all() and np.all(r.num_in_front == 17)
    np.testing.assert_allclose(r.R, sc.R, atol=1e-9)
    np.testing.assert_allclose(r.t, sc.t, atol=1e-9)


def test_recover_pose_agrees_with_opencv_on_the_same_inliers():
    sc = make_two_view_scene(30, 30, noise=1.0, outlier_ratio=0.2, seed=14)
    E = essential_from_pose(sc.R, sc.t)
    E = E + np.random.default_rng(0).normal(0, 0.02, E.shape)  # a perturbed, non-exact E
    r = recover_pose(E, sc.x1, sc.x2, sc.K1, sc.K2, sc.inlier)
    assert r.valid.all()
    assert not np.any(r.in_front & ~sc.inlier)
    for b in range(30):
        m = sc.inlier[b]
        p1 = cv2.undistortPoints(sc.x1[b][m].reshape(-1, 1, 2), sc.K1[b], None)
        p2 = cv2.undistortPoints(sc.x2[b][m].reshape(-1, 1, 2), sc.K2[b], None)
        n, Rc, tc, front = cv2.recoverPose(E[b], p1, p2, np.eye(3))
        np.testing.assert_allclose(r.R[b], Rc, atol=1e-9)
        np.testing.assert_allclose(r.t[b], tc.ravel(), atol=1e-9)
        # OpenCV triangulates by DLT, ours by midpoint: the counts agree up to near-infinity points
        assert abs(int(r.num_in_front[b]) - int(n)) <= 1


def test_recover_pose_invalid_cases_and_mask():
    sc = make_two_view_scene(4, 17, seed=15)
    E = essential_from_pose(sc.R, sc.t)
    E[0] = 0.0                                  # rank 0
    mask = np.ones((4, 17), bool)
    mask[1] = False                             # no point votes
    K2 = sc.K2.copy()
    K2[2] = 0.0                                 # singular K
    r = recover_pose(E, sc.x1, sc.x2, sc.K1, K2, mask)
    np.testing.assert_array_equal(r.valid, [False, False, False, True])
    np.testing.assert_array_equal(r.R[:3], np.broadcast_to(np.eye(3), (3, 3, 3)))
    assert np.all(r.t[:3] == 0) and not r.in_front[:3].any()
    assert np.all(np.isfinite(r.R)) and np.all(np.isfinite(r.t))
    # only the masked points vote and are reported
    r2 = recover_pose(E[3], sc.x1[3], sc.x2[3], sc.K1[3], sc.K2[3], np.arange(17) < 9)
    assert r2.valid and r2.num_in_front == 9 and r2.in_front.shape == (17,)


@pytest.mark.parametrize("kwargs, name", [
    (dict(E=np.zeros((5, 3, 4))), "E"),
    (dict(E=np.zeros((4, 3, 3))), "E"),
    (dict(x1=np.zeros((5, 17, 3))), "x1"),
    (dict(x2=np.zeros((5, 16, 2))), "x2"),
    (dict(K1=np.zeros((5, 2, 3))), "K1"),
    (dict(K2=np.zeros((6, 3, 3))), "K2"),
    (dict(mask=np.ones((5, 16), bool)), "mask"),
    (dict(distance_threshold=0.0), "distance_threshold"),
])
def test_recover_pose_bad_arguments(kwargs, name):
    args = dict(E=np.zeros((5, 3, 3)), x1=np.zeros((5, 17, 2)), x2=np.zeros((5, 17, 2)),
                K1=np.eye(3), K2=np.eye(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        recover_pose(**args)


@pytest.mark.parametrize("fn, args, name", [
    (essential_from_fundamental, (np.zeros((3, 2)), np.eye(3), np.eye(3)), "F"),
    (essential_from_fundamental, (np.zeros((3, 3)), np.eye(2), np.eye(3)), "K1"),
    (essential_from_fundamental, (np.zeros((3, 3)), np.eye(3), "x"), "K2"),
    (decompose_essential, (np.zeros((2, 3)),), "E"),
])
def test_essential_bad_arguments(fn, args, name):
    with pytest.raises(ValueError, match=name):
        fn(*args)
