"""reconstruct_rig(joint_bias=...): per-(camera, joint) 2D detector bias estimated in the rig."""
import numpy as np
import pytest

import geometry as geo
from geometry.rig.bias import estimate_joint_bias, remove_camera_field


def _pair_rotation_errors(R_est, R_true):
    C = len(R_true)
    return np.array([geo.rotation_error_deg(R_est[j] @ R_est[i].T, R_true[j] @ R_true[i].T)
                     for i in range(C) for j in range(i + 1, C)])


def test_camera_like_fields_are_removed_and_joint_patterns_kept():
    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 1000, (3, 12, 2))
    known = np.ones((3, 12), bool)
    p = anchors - anchors.mean(1, keepdims=True)
    # shift + a linear map about the centroid (scale, roll, shear): a small camera motion
    field = np.array([3.0, -2.0]) + p @ np.array([[0.01, 0.004], [-0.003, 0.02]])
    np.testing.assert_allclose(remove_camera_field(field, anchors, known), 0.0, atol=1e-9)
    pattern = remove_camera_field(rng.normal(0, 5, (3, 12, 2)), anchors, known)
    np.testing.assert_allclose(remove_camera_field(pattern + field, anchors, known), pattern,
                               atol=1e-9)
    assert np.abs(pattern).max() > 1.0
    # joints without an estimate stay 0; a camera with < 3 known joints gets no bias
    known[1, :10] = False
    out = remove_camera_field(pattern, anchors, known)
    assert np.all(out[1] == 0.0)


def test_estimate_joint_bias_recovers_a_gauge_free_bias_from_residuals():
    rng = np.random.default_rng(1)
    C, T, J = 3, 200, 10
    obs = rng.uniform(0, 1000, (C, T * J, 2))
    joint = np.tile(np.arange(J), T)
    anchors = np.stack([[np.median(obs[c, joint == j], 0) for j in range(J)] for c in range(C)])
    bias = remove_camera_field(rng.normal(0, 6, (C, J, 2)), anchors, np.ones((C, J), bool))
    res = bias[:, joint] + rng.normal(0, 1.0, (C, T * J, 2))
    est = estimate_joint_bias(res, joint, np.ones((C, T * J), bool), obs, J, prior_count=0.0)
    assert np.abs(est - bias).max() < 0.5


def test_joint_bias_restores_the_rig_under_per_view_joint_biases():
    sc = geo.make_multiview_scene(150, 17, noise=0.0, outlier_ratio=0.0, seed=7)
    rng = np.random.default_rng(5)
    bias = remove_camera_field(rng.normal(0, 8, (4, 17, 2)), np.nanmedian(sc.x, 1),
                               np.ones((4, 17), bool))
    x = sc.x + bias[:, None]
    off = geo.reconstruct_rig(x, sc.rig.K, joint_bias=False)
    on = geo.reconstruct_rig(x, sc.rig.K, joint_bias=True, bias_rounds=2)
    e_off = np.median(_pair_rotation_errors(off.R, sc.rig.R))
    e_on = np.median(_pair_rotation_errors(on.R, sc.rig.R))
    assert e_on < 0.4 * e_off, (e_on, e_off)          # measured 0.073° vs 0.273°
    assert on.joint_bias.shape == (4, 17, 2) and np.all(off.joint_bias == 0.0)
    # what no camera motion or 3D point explains is recovered (up to per-joint 3D offsets,
    # which the points absorb): the de-biased detections fit the cameras (1.3 px vs 6.4 px)
    assert np.nanmedian(on.residuals) < 0.3 * np.nanmedian(off.residuals)


def test_noise_level_biases_are_shrunk_away():
    rng = np.random.default_rng(2)
    C, T, J = 3, 300, 10
    obs = rng.uniform(0, 1000, (C, T * J, 2))
    joint = np.tile(np.arange(J), T)
    res = rng.normal(0, 2.0, (C, T * J, 2))          # no bias, 2 px noise
    use = np.ones((C, T * J), bool)
    b = estimate_joint_bias(res, joint, use, obs, J)
    b0 = estimate_joint_bias(res, joint, use, obs, J, significance=0.0)
    assert np.abs(b0).max() > 0.05                     # the raw medians are not 0 ...
    assert np.linalg.norm(b, axis=-1).mean() < 0.25 * np.linalg.norm(b0, axis=-1).mean()


def test_joint_bias_is_a_no_op_on_exact_data():
    sc = geo.make_multiview_scene(40, 17, noise=0.0, outlier_ratio=0.0, seed=1)
    r = geo.reconstruct_rig(sc.x, sc.rig.K, joint_bias=True)
    assert np.abs(r.joint_bias).max() < 1e-6
    assert _pair_rotation_errors(r.R, sc.rig.R).max() < 1e-5
    with pytest.raises(ValueError, match="bias_rounds"):
        geo.reconstruct_rig(sc.x, sc.rig.K, bias_rounds=-1)


def _pose2sim(shared_data, key):
    d = np.load(shared_data / "pose2sim_demo" / "pose2sim_demo.npz")
    kp, K, dist = d[key], d["K"], d["dist"]
    x, conf = kp[..., :2].copy(), kp[..., 2].copy()
    x[conf <= 0] = np.nan
    for c in range(len(K)):
        x[c] = geo.undistort_points(x[c], K[c], dist[c])
    return x, conf, K, d["R"]


def test_pose2sim_joint_bias_brings_the_rig_closer_to_qualisys(shared_data):
    x, conf, K, R_true = _pose2sim(shared_data, "balancing_kp2d")
    on = geo.reconstruct_rig(x, K, confidence=conf, min_confidence=0.2)   # default: on
    off = geo.reconstruct_rig(x, K, confidence=conf, min_confidence=0.2, joint_bias=False)
    e_on = np.median(_pair_rotation_errors(on.R, R_true))
    e_off = np.median(_pair_rotation_errors(off.R, R_true))
    # measured: 0.74° with, 1.06° without (issue #19 target: 0.8°)
    assert e_on <= 0.8 and e_on < e_off - 0.2, (e_on, e_off)


def test_pose2sim_session_within_one_degree_of_qualisys(shared_data):
    xs, confs = [], []
    for key in ("balancing_kp2d", "static_kp2d"):
        x, conf, K, R_true = _pose2sim(shared_data, key)
        xs.append(x)
        confs.append(conf)
    cal, labels = geo.reconstruct_session(xs, K, confidences=confs, min_confidence=0.2)
    err = _pair_rotation_errors(cal.R, R_true)
    assert np.median(err) <= 0.95, err         # measured 0.86° (1.04° without joint_bias)
    assert cal.joint_bias.shape == (4, 25, 2)
    # labelling removes the calibration's bias: residuals against the de-biased detections
    r = labels[0].residuals
    assert np.nanmedian(r) < 6.0 and labels[0].point_valid.mean() > 0.9
