"""learn.pseudo_labels: the EpipolarPose recipe step by step, rig/window/calibrated modes, file."""
import numpy as np
import pytest

import geometry as geo
import pose
from learn.pseudo_labels import (MODES, epipolar_pair, load_pseudo_labels, make_pseudo_labels,
                                 normalize_scale, root_relative, save_pseudo_labels)


def _scene(T=6, C=3, noise=0.0, outliers=0.0, seed=1):
    rig = geo.make_ring_rig(C, jitter_deg=10.0, seed=seed)
    return geo.make_multiview_scene(T, 17, rig=rig, noise=noise, outlier_ratio=outliers,
                                    seed=seed)


def _truth_in_cameras(sc, root=0):
    Xc = np.einsum("cab,tjb->ctja", sc.rig.R, sc.X) + sc.rig.t[:, None, None]
    return root_relative(Xc, root)


def _rel_error(pred, gt, mask):
    """Largest joint error after the per-pose optimal scale, relative to the pose's RMS size."""
    s = pose.optimal_scale(pred, gt, mask)
    e = np.linalg.norm(s[..., None, None] * pred - gt, axis=-1)
    size = np.sqrt(np.mean(np.sum(gt * gt, -1), -1))
    return float(np.max(np.where(mask, e, 0.0) / size[..., None]))


# ---------------------------------------------------------------- frame mode, step by step
@pytest.fixture(scope="module")
def pair():
    sc = _scene(T=6, C=2)
    K = sc.rig.K
    rec = epipolar_pair(sc.x[0], sc.x[1], K[0], K[1])
    R_true, t_true = geo.relative_pose(sc.rig.R[0], sc.rig.t[0], sc.rig.R[1], sc.rig.t[1])
    return sc, rec, R_true, t_true


def test_step1_fundamental_satisfies_the_epipolar_constraint(pair):
    sc, rec, _, _ = pair
    assert rec.valid.all()
    d = geo.sampson_distance(rec.F, sc.x[0], sc.x[1])
    assert np.max(d) < 1e-6                                    # pixels
    assert rec.inliers.all()


def test_step2_essential_is_K2T_F_K1_and_equals_the_true_one_up_to_scale(pair):
    sc, rec, R_true, t_true = pair
    K1, K2 = sc.rig.K[0], sc.rig.K[1]
    E = K2.T @ rec.F @ K1
    E /= np.linalg.norm(E, axis=(-2, -1), keepdims=True)
    sign = np.sign(np.sum(E * rec.E, axis=(-2, -1)))[:, None, None]
    np.testing.assert_allclose(sign * E, rec.E, atol=1e-6)
    E_true = geo.skew(t_true / np.linalg.norm(t_true)) @ R_true
    E_true /= np.linalg.norm(E_true)
    sign = np.sign(np.sum(E_true * rec.E, axis=(-2, -1)))[:, None, None]
    np.testing.assert_allclose(sign * rec.E, np.broadcast_to(E_true, rec.E.shape), atol=1e-6)


def test_step3_four_candidates_and_cheirality_picks_the_truth(pair):
    sc, rec, R_true, t_true = pair
    T = sc.x.shape[1]
    assert rec.R_candidates.shape == (T, 4, 3, 3) and rec.t_candidates.shape == (T, 4, 3)
    for f in range(T):
        for k in range(4):  # every candidate explains E
            Ek = geo.skew(rec.t_candidates[f, k]) @ rec.R_candidates[f, k]
            assert abs(abs(np.sum(Ek * rec.E[f])) - np.linalg.norm(Ek)) < 1e-6
        k = rec.choice[f]
        assert geo.rotation_error_deg(rec.R_candidates[f, k], R_true) < 1e-5
        assert geo.direction_error_deg(rec.t_candidates[f, k], t_true) < 1e-5
        np.testing.assert_allclose(rec.R[f], rec.R_candidates[f, k], atol=1e-12)
        # only the chosen candidate puts every joint in front of both cameras
        in_front = []
        for j in range(4):
            P2 = geo.projection_matrix(sc.rig.K[1], rec.R_candidates[f, j], rec.t_candidates[f, j])
            P1 = geo.projection_matrix(sc.rig.K[0], np.eye(3), np.zeros(3))
            tri = geo.triangulate_dlt(np.stack([P1, P2]), sc.x[:, f])
            in_front.append(bool(tri.positive_depth.all()))
        assert in_front == [j == k for j in range(4)]


def test_step4_triangulation_equals_the_truth_up_to_scale(pair):
    sc, rec, _, t_true = pair
    X1 = np.einsum("ab,tjb->tja", sc.rig.R[0], sc.X) + sc.rig.t[0]   # truth in camera 1
    np.testing.assert_allclose(rec.X * np.linalg.norm(t_true), X1, atol=1e-6)


def test_step5_vector_median_picks_the_member_with_least_summed_distance(rng):
    X = rng.normal(size=(50, 5, 6))
    X[:, 2] += 5 * rng.normal(size=(50, 6))
    med = geo.vector_median(X)
    cost = np.linalg.norm(X[:, :, None] - X[:, None], axis=-1).sum(-1)
    np.testing.assert_array_equal(med.index, np.argmin(cost, axis=1))


def test_frame_mode_exact_data_gives_the_truth_in_every_camera():
    sc = _scene(T=5, C=4)
    lab = make_pseudo_labels(sc.x, sc.rig.K, mode="frame")
    assert lab.valid.all() and (lab.weights == 1).all()
    gt = _truth_in_cameras(sc)
    assert _rel_error(lab.X_cam, gt, lab.weights > 0) < 1e-6
    # normalised: unit RMS distance to the root
    np.testing.assert_allclose(np.sqrt(np.mean(np.sum(lab.X_cam ** 2, -1), -1)), 1.0, atol=1e-9)
    pairs, R, t, valid = lab.pair_poses
    assert len(pairs) == 6 and valid.all()
    for p, (i, j) in enumerate(pairs):
        Rt, _ = geo.relative_pose(sc.rig.R[i], sc.rig.t[i], sc.rig.R[j], sc.rig.t[j])
        assert geo.rotation_error_deg(R[p], Rt).max() < 1e-5


def test_frame_mode_median_rejects_a_corrupted_camera(rng):
    sc = _scene(T=4, C=4, seed=3)
    x = sc.x.copy()
    x[3, 1] = rng.uniform(0, 1000, size=x[3, 1].shape)        # camera 3 sees garbage in frame 1
    lab = make_pseudo_labels(x, sc.rig.K, mode="frame")
    gt = _truth_in_cameras(sc)
    # cameras 0-2 have three candidates each, two of them from clean pairs: the median wins
    m = lab.weights[:3] > 0
    assert m[:, 1].any(-1).all()
    assert _rel_error(lab.X_cam[:3], gt[:3], m) < 1e-6


# ---------------------------------------------------------------- calibrated, rig, window
def test_calibrated_mode_exact_data_gives_the_metric_truth():
    sc = _scene(T=5, C=3)
    lab = make_pseudo_labels(sc.x, sc.rig.K, mode="calibrated", units="metric",
                             cameras=(sc.rig.R, sc.rig.t))
    np.testing.assert_allclose(lab.X_cam, _truth_in_cameras(sc), atol=1e-8)
    np.testing.assert_allclose(lab.X, sc.X, atol=1e-8)
    assert np.nanmax(lab.residuals) < 1e-6
    assert lab.valid.all()


def test_calibrated_mode_drops_outlying_views():
    sc = _scene(T=30, C=4, noise=0.0, outliers=0.1, seed=2)
    lab = make_pseudo_labels(sc.x, sc.rig.K, mode="calibrated", units="metric",
                             cameras=(sc.rig.R, sc.rig.t))
    err = np.linalg.norm(lab.X - sc.X, axis=-1)
    # joints with at least two clean views come back exactly
    clean = ((~sc.outlier) & ~sc.missing).sum(0) >= 2
    assert np.median(err[clean]) < 1e-6
    assert np.all(lab.residuals[~sc.outlier & np.isfinite(lab.residuals)] >= 0)


def test_rig_mode_is_far_more_accurate_than_frame_mode_on_noisy_detections():
    people = pose.make_people(1, ("walk", "squat"), 30, seed=0, noise=pose.DetectorNoise(
        sigma_px=2.0, outlier_ratio=0.1, missing_ratio=0.0, swap_ratio=0.0))
    gt = root_relative(np.einsum("cab,tjb->ctja", people.rig.R, people.X)
                       + people.rig.t[:, None, None], 0)
    err = {}
    for mode in ("rig", "frame"):
        lab = make_pseudo_labels(people.x, people.rig.K, people.confidence, mode=mode)
        m = lab.weights > 0
        err[mode] = np.nanmean(pose.n_mpjpe(lab.X_cam, gt, mask=m))
    oracle = make_pseudo_labels(people.x, people.rig.K, people.confidence, mode="calibrated",
                                cameras=(people.rig.R, people.rig.t))
    err["oracle"] = np.nanmean(pose.n_mpjpe(oracle.X_cam, gt, mask=oracle.weights > 0))
    assert err["rig"] < 1.2 * err["oracle"]
    assert err["frame"] > 5 * err["rig"]


def test_window_mode_has_per_frame_cameras_and_accurate_targets():
    sc = _scene(T=40, C=3, noise=0.5, seed=4)
    lab = make_pseudo_labels(sc.x, sc.rig.K, mode="window", window=20)
    assert lab.R_frames.shape == (40, 3, 3, 3) and lab.t_frames.shape == (40, 3, 3)
    np.testing.assert_allclose(lab.R, lab.R_frames[20])
    assert lab.valid.mean() > 0.95
    assert _rel_error(lab.X_cam, _truth_in_cameras(sc), lab.weights > 0) < 0.05
    for f in (0, 39):
        Rt, _ = geo.relative_pose(sc.rig.R[0], sc.rig.t[0], sc.rig.R[1], sc.rig.t[1])
        Re, _ = geo.relative_pose(lab.R_frames[f, 0], lab.t_frames[f, 0], lab.R_frames[f, 1],
                                  lab.t_frames[f, 1])
        assert geo.rotation_error_deg(Re, Rt) < 0.5


# ---------------------------------------------------------------- weights, helpers, file
def test_weights_follow_confidence_and_missing_joints():
    sc = _scene(T=4, C=3)
    conf = np.full(sc.x.shape[:3], 0.9)
    conf[:, 2, 5] = 0.0                     # joint 5 of frame 2 missing everywhere
    conf[:, 3, 0] = 0.1                     # the root of frame 3 below min_confidence
    lab = make_pseudo_labels(sc.x, sc.rig.K, conf, mode="calibrated",
                             cameras=(sc.rig.R, sc.rig.t), min_confidence=0.2)
    assert np.all(lab.weights[:, 2, 5] == 0) and np.all(lab.X_cam[:, 2, 5] == 0)
    assert not lab.valid[:, 3].any() and np.all(lab.weights[:, 3] == 0)
    np.testing.assert_allclose(lab.weights[:, :2], 0.9)


def test_root_relative_and_normalize_scale():
    X = np.arange(24, dtype=float).reshape(2, 4, 3)
    Xr = root_relative(X, (1, 2))
    np.testing.assert_allclose(Xr[:, 1] + Xr[:, 2], 0.0)
    Xn, s = normalize_scale(Xr)
    np.testing.assert_allclose(np.mean(np.sum(Xn ** 2, -1), -1), 1.0)
    np.testing.assert_allclose(Xn * s[:, None, None], Xr)


def test_dataset_file_round_trip(tmp_path):
    sc = _scene(T=4, C=3)
    lab = make_pseudo_labels(sc.x, sc.rig.K, mode="calibrated", cameras=(sc.rig.R, sc.rig.t))
    p = save_pseudo_labels(tmp_path / "labels.npz", lab, x=sc.x)
    back, extras = load_pseudo_labels(p)
    for k in ("X_cam", "weights", "valid", "X", "R", "t", "K", "residuals"):
        np.testing.assert_array_equal(getattr(back, k), getattr(lab, k))
    assert back.mode == "calibrated" and back.root == (0,)
    np.testing.assert_array_equal(extras["x"], sc.x)
    np.savez(tmp_path / "bad.npz", X_cam=lab.X_cam)
    with pytest.raises(ValueError, match=r"bad\.npz.*'weights'"):
        load_pseudo_labels(tmp_path / "bad.npz")


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="nope"), "mode"),
    (dict(units="feet"), "units"),
    (dict(mode="frame", units="metric"), "units"),
    (dict(mode="calibrated"), "cameras"),
    (dict(mode="rig", cameras=(np.eye(3), np.zeros(3))), "cameras"),
    (dict(mode="calibrated", cameras=(np.eye(3)[None], np.zeros((1, 3)))), r"cameras\[0\]"),
    (dict(root=17), "root"),
    (dict(threshold=-1.0), "threshold"),
    (dict(K=None), "K"),
    (dict(K=np.eye(3)[None].repeat(2, 0)), "K"),
    (dict(confidence=np.ones((3, 4))), "confidence"),
])
def test_bad_arguments_raise_value_errors(kwargs, match):
    sc = _scene(T=4, C=3)
    args = dict(K=sc.rig.K, mode="frame")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_pseudo_labels(sc.x, **args)


@pytest.mark.parametrize("x, match", [
    (np.zeros((3, 4, 2)), r"\(C, T, J, 2\)"),
    (np.zeros((1, 4, 17, 2)), "at least 2 cameras"),
])
def test_bad_shapes_raise_value_errors(x, match):
    with pytest.raises(ValueError, match=match):
        make_pseudo_labels(x, np.eye(3), mode="frame")


def test_modes_listed():
    assert set(MODES) == {"frame", "rig", "window", "calibrated"}
