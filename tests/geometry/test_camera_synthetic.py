import cv2
import numpy as np
import pytest

import geometry as g


def test_project_matches_opencv(rng):
    X = rng.uniform(-1, 1, (50, 3)) + [0, 0, 5]
    K = np.array([[1200.0, 0, 500], [0, 1150, 480], [0, 0, 1]])
    rvec = np.array([0.1, -0.2, 0.05])
    t = np.array([0.1, 0.2, 0.3])
    dist = np.array([-0.2, 0.05, 0.001, -0.002, 0.01])
    ours = g.project_points(X, K, g.rodrigues_to_matrix(rvec), t, dist)
    ref, _ = cv2.projectPoints(X, rvec, t, K, dist)
    assert np.abs(ours - ref.reshape(-1, 2)).max() < 1e-9


def test_undistort_inverts_distortion(rng):
    K = np.array([[1200.0, 0, 500], [0, 1150, 480], [0, 0, 1]])
    dist = np.array([-0.1, 0.02, 0.001, -0.001])
    X = rng.uniform(-0.5, 0.5, (30, 3)) + [0, 0, 4]
    x_d = g.project_points(X, K, dist=dist)
    x_u = g.project_points(X, K)
    assert np.abs(g.undistort_points(x_d, K, dist) - x_u).max() < 1e-6


def test_relative_pose_and_fundamental_consistent():
    s = g.make_multiview_scene(20, noise=0.0, outlier_ratio=0.0)
    tv = g.two_view_from_multiview(s)
    h = lambda a: np.concatenate([a, np.ones(a.shape[:-1] + (1,))], -1)  # noqa: E731
    r = np.einsum("bni,bij,bnj->bn", h(tv.x2), tv.F, h(tv.x1))
    assert np.abs(r).max() < 1e-9
    X2 = np.einsum("bij,bnj->bni", tv.R, tv.X1) + tv.t[:, None]
    assert np.abs(g.project_points(X2, tv.K2) - tv.x2).max() < 1e-8
    assert np.allclose(np.linalg.norm(tv.t, axis=-1), 1.0)


def test_look_at_points_forward():
    R, t = g.look_at([5.0, 0, 1.5], [0, 0, 1.0])
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    z = R @ np.array([0, 0, 1.0]) + t
    assert z[2] > 0 and abs(z[0]) < 1e-12
    with pytest.raises(ValueError, match="up"):
        g.look_at([0, 0, 5.0], [0, 0, 0], up=[0, 0, 1])


def test_scene_noise_model_seeded():
    a = g.make_multiview_scene(30, noise=2.0, outlier_ratio=0.1, missing_ratio=0.05, seed=3)
    b = g.make_multiview_scene(30, noise=2.0, outlier_ratio=0.1, missing_ratio=0.05, seed=3)
    assert np.array_equal(a.x, b.x, equal_nan=True)
    assert abs(a.outlier.mean() - 0.1 * 0.95) < 0.03 and abs(a.missing.mean() - 0.05) < 0.02
    good = ~(a.outlier | a.missing)
    err = (a.x - a.x_clean)[good]
    assert 1.8 < err.std() < 2.2
    assert np.isnan(a.x[a.missing]).all()


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="X: expected shape"):
        g.project_points(np.zeros((5, 2)), np.eye(3))
    with pytest.raises(ValueError, match="K"):
        g.project_points(np.zeros((5, 3)), np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="structure"):
        g.make_two_view_scene(2, structure="cube")
