"""geometry.reconstruct_rig / reconstruct_rig_windowed: static-rig reconstruction."""
import numpy as np
import pytest

import geometry as geo
from geometry.alignment import n_mpjpe


def _pair_rotation_errors(R_est, R_true):
    C = len(R_true)
    return np.array([geo.rotation_error_deg(R_est[j] @ R_est[i].T, R_true[j] @ R_true[i].T)
                     for i in range(C) for j in range(i + 1, C)])


def _oracle(scene, threshold):
    rig = scene.rig
    P = geo.projection_matrix(rig.K, rig.R, rig.t)
    C, T, J = scene.x.shape[:3]
    o = geo.triangulate_multiview(P, scene.x.reshape(C, -1, 2), method="dlt", threshold=threshold)
    return o.X.reshape(T, J, 3), o.valid.reshape(T, J)


def test_exact_data_recovers_the_rig_and_points():
    sc = geo.make_multiview_scene(40, 17, noise=0.0, outlier_ratio=0.0, seed=1)
    r = geo.reconstruct_rig(sc.x, sc.rig.K)
    assert r.valid and r.camera_valid.all() and r.point_valid.all()
    assert _pair_rotation_errors(r.R, sc.rig.R).max() < 1e-5
    np.testing.assert_allclose(r.R[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(r.t[0], 0.0, atol=1e-12)
    # camera 0 is the world: the truth in camera 0's frame equals the estimate up to scale
    X0 = np.einsum("ij,tnj->tni", sc.rig.R[0], sc.X) + sc.rig.t[0]
    s = np.median(np.linalg.norm(X0, axis=-1) / np.linalg.norm(r.X, axis=-1))
    np.testing.assert_allclose(s * r.X, X0, atol=1e-6)
    assert np.nanmax(r.residuals) < 1e-6
    # unit: median distance from camera 0's centre to the others
    d = np.linalg.norm(geo.camera_centers(r.R, r.t)[1:] - geo.camera_centers(r.R, r.t)[0], axis=1)
    assert abs(np.median(d) - 1.0) < 1e-9


def test_noisy_ring_rotation_and_nmpjpe_close_to_true_cameras():
    sc = geo.make_multiview_scene(150, 17, noise=2.0, outlier_ratio=0.1, seed=2)
    r = geo.reconstruct_rig(sc.x, sc.rig.K, seed=3)
    assert r.valid and r.camera_valid.all()
    assert np.median(_pair_rotation_errors(r.R, sc.rig.R)) < 0.2
    Xo, vo = _oracle(sc, r.summary["outlier_threshold_px"])
    ours = n_mpjpe(r.X, sc.X, r.point_valid)
    oracle = n_mpjpe(Xo, sc.X, vo)
    assert ours <= 1.05 * oracle
    # the outliers are found: most injected outliers are not inliers of the points
    assert (r.inliers & sc.outlier).sum() < 0.1 * sc.outlier.sum()
    assert r.inliers[~sc.outlier].mean() > 0.9


def test_confidence_weights_and_mask_drop_observations():
    sc = geo.make_multiview_scene(60, 17, noise=1.0, outlier_ratio=0.0, seed=4)
    x = sc.x.copy()
    x[2, :, :3] += 80.0                     # corrupted joints of one camera...
    conf = np.ones(x.shape[:3])
    conf[2, :, :3] = 0.0                    # ...that the detector marked as unreliable
    r = geo.reconstruct_rig(x, sc.rig.K, confidence=conf)
    assert r.valid and np.median(_pair_rotation_errors(r.R, sc.rig.R)) < 0.2
    assert np.isnan(r.residuals[2, :, :3]).all()   # dropped, not scored
    m = np.ones(x.shape[:3], bool)
    m[2, :, :3] = False
    r2 = geo.reconstruct_rig(x, sc.rig.K, mask=m)
    np.testing.assert_allclose(r2.R, r.R, atol=1e-9)


def test_unknown_shared_focal_recovered_within_2_percent():
    rig = geo.make_ring_rig(focal=1400.0)
    sc = geo.make_multiview_scene(200, 17, rig=rig, noise=2.0, outlier_ratio=0.1, seed=5)
    r = geo.reconstruct_rig(sc.x, None, image_size=rig.image_size)
    assert r.valid and r.summary["refine_focal"] == "shared"
    f = r.K[:, 0, 0]
    assert np.all(np.abs(f / 1400.0 - 1) < 0.02)
    assert np.all((r.focal_std > 0) & (r.focal_std < 0.02 * 1400.0))


def test_unknown_per_camera_focals_on_random_rig():
    rig = geo.make_random_rig(4, seed=3)
    sc = geo.make_multiview_scene(200, 17, rig=rig, noise=2.0, outlier_ratio=0.1, seed=6)
    r = geo.reconstruct_rig(sc.x, None, image_size=rig.image_size, refine_focal="per_camera")
    assert r.valid
    assert np.all(np.abs(r.K[:, 0, 0] / rig.K[:, 0, 0] - 1) < 0.02)
    assert np.median(_pair_rotation_errors(r.R, rig.R)) < 0.2


def test_metric_scale_from_height_and_up_direction():
    sc = geo.make_multiview_scene(80, 17, noise=0.5, outlier_ratio=0.0, seed=7)
    top, feet = 10, (3, 6)                  # template: head top, ankles
    h_true = np.quantile(np.linalg.norm(sc.X[:, top] - sc.X[:, list(feet)].mean(1), axis=-1), 0.9)
    r = geo.reconstruct_rig(sc.x, sc.rig.K, subject_height=h_true, height_joints=(top, feet),
                            up_joints=(0, 8))
    assert r.metric
    # metric: camera distances equal the true ones
    c_est, c_true = geo.camera_centers(r.R, r.t), geo.camera_centers(sc.rig.R, sc.rig.t)
    np.testing.assert_allclose(np.linalg.norm(c_est[1:] - c_est[0], axis=1),
                               np.linalg.norm(c_true[1:] - c_true[0], axis=1), rtol=0.01)
    up = geo.up_from_spine(r.X, 0, 8)
    assert up[2] > 0.9999
    # reprojection still consistent after the similarity
    assert r.summary["median_reprojection_px"] < 1.0


def test_camera_that_sees_nothing_is_flagged_not_fatal():
    sc = geo.make_multiview_scene(60, 17, noise=1.0, outlier_ratio=0.0, seed=8)
    x = sc.x.copy()
    x[3] = np.nan
    r = geo.reconstruct_rig(x, sc.rig.K)
    assert r.valid and r.camera_valid.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(r.R[3], np.eye(3))
    assert np.isnan(r.residuals[3]).all() and not r.inliers[3].any()
    assert np.median(_pair_rotation_errors(r.R[:3], sc.rig.R[:3])) < 0.2


def test_camera_zero_blind_uses_next_camera_as_world():
    sc = geo.make_multiview_scene(60, 17, noise=1.0, outlier_ratio=0.0, seed=9)
    x = sc.x.copy()
    x[0] = np.nan
    r = geo.reconstruct_rig(x, sc.rig.K)
    assert r.valid and r.summary["reference_camera"] == 1 and not r.camera_valid[0]
    np.testing.assert_allclose(r.R[1], np.eye(3), atol=1e-12)


def test_colocated_cameras_and_blind_rig_give_valid_false():
    rig = geo.make_ring_rig(2)
    R2 = geo.rodrigues_to_matrix(np.array([0.0, 0.2, 0.0])) @ rig.R[0]
    c0 = geo.camera_centers(rig.R, rig.t)[0]
    colocated = geo.synthetic.Rig(K=rig.K, R=np.stack([rig.R[0], R2]),
                                  t=np.stack([rig.t[0], -R2 @ c0]), image_size=rig.image_size)
    sc = geo.make_multiview_scene(30, 17, rig=colocated, noise=0.5, outlier_ratio=0.0, seed=10)
    r = geo.reconstruct_rig(sc.x, rig.K)
    assert not r.valid and not r.camera_valid.any()
    assert np.all(np.isfinite(r.R)) and np.all(np.isfinite(r.X))
    blind = geo.reconstruct_rig(np.full((3, 5, 17, 2), np.nan), rig.K[0])
    assert not blind.valid


def test_single_motionless_frame_no_crash():
    sc = geo.make_multiview_scene(1, 17, noise=0.5, outlier_ratio=0.0, seed=11)
    r = geo.reconstruct_rig(sc.x, sc.rig.K)
    assert np.all(np.isfinite(r.R)) and np.all(np.isfinite(r.X))
    if r.valid:
        assert np.median(_pair_rotation_errors(r.R, sc.rig.R)) < 5.0


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=np.zeros((4, 10, 2))), "x"),
    (dict(x=np.zeros((1, 10, 17, 2))), "x"),
    (dict(K=np.eye(3)[None].repeat(3, 0)), "K"),
    (dict(K=None), "K"),
    (dict(confidence=np.ones((4, 10, 16))), "confidence"),
    (dict(mask=np.ones((4, 10), bool)), "mask"),
    (dict(refine_focal="all"), "refine_focal"),
    (dict(threshold=-1.0), "threshold"),
    (dict(subject_height=1.7), "subject_height"),
    (dict(K=None, image_size=(1000, 0)), "image_size"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(x=np.zeros((4, 10, 17, 2)), K=geo.make_ring_rig().K)
    args.update(kwargs)
    x = args.pop("x")
    K = args.pop("K")
    with pytest.raises(ValueError, match=name):
        geo.reconstruct_rig(x, K, **args)


def test_windowed_mode_per_frame_cameras():
    sc = geo.make_multiview_scene(120, 17, noise=1.0, outlier_ratio=0.05, seed=12)
    r = geo.reconstruct_rig_windowed(sc.x, sc.rig.K, window=60, step=30)
    assert r.valid and r.window_valid.all() and r.windows.tolist() == [[0, 60], [30, 90], [60, 120]]
    assert r.R.shape == (120, 4, 3, 3) and r.X.shape == (120, 17, 3)
    assert r.window_index[0] == 0 and r.window_index[119] == 2
    for f in (0, 70, 119):
        assert np.median(_pair_rotation_errors(r.R[f], sc.rig.R)) < 0.3
    with pytest.raises(ValueError, match="window"):
        geo.reconstruct_rig_windowed(sc.x, sc.rig.K, window=1)


def _pose2sim(shared_data):
    d = np.load(shared_data / "pose2sim_demo" / "pose2sim_demo.npz")
    kp, K, dist = d["balancing_kp2d"], d["K"], d["dist"]
    x, conf = kp[..., :2].copy(), kp[..., 2].copy()
    x[conf <= 0] = np.nan
    for c in range(len(K)):
        x[c] = geo.undistort_points(x[c], K[c], dist[c])
    return x, conf, K, d["R"]


def test_pose2sim_balancing_rotation_error_against_qualisys(shared_data):
    x, conf, K, R_true = _pose2sim(shared_data)
    r = geo.reconstruct_rig(x, K, confidence=conf, min_confidence=0.2)
    assert r.valid and r.camera_valid.all()
    err = _pair_rotation_errors(r.R, R_true)
    assert np.median(err) <= 1.5, err
