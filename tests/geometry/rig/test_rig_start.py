"""reconstruct_rig's initial registration: the start pair's conditioning and its verification."""
import dataclasses

import numpy as np

import geometry as geo
import pose
from geometry.rig.initialise import pairwise_poses, register_cameras, register_verified


def _pair_errors(R_est, R_true):
    C = len(R_true)
    return np.array([geo.rotation_error_deg(R_est[j] @ R_est[i].T, R_true[j] @ R_true[i].T)
                     for i in range(C) for j in range(i + 1, C)])


def _flat(sc):
    C, T, J = sc.x.shape[:3]
    x = sc.x.reshape(C, T * J, 2)
    return x, np.isfinite(x).all(-1)


def test_cameras_facing_each_other_count_as_badly_conditioned():
    # a person in place seen by a 4-camera ring: pairs (0, 2) and (1, 3) face each other across
    # the person (ray angles ~166°: a joint's depth is fixed no better than by ~14° of
    # parallax); the others are 90° apart
    rig = geo.make_ring_rig(4)
    X = geo.human_like_points(60, 17, spread=0.0, seed=5).reshape(-1, 3)
    x = np.stack([geo.project_points(X, rig.K[c], rig.R[c], rig.t[c]) for c in range(4)])
    x = x + np.random.default_rng(0).normal(0.0, 0.5, x.shape)
    pp = pairwise_poses(x, rig.K, np.isfinite(x).all(-1), threshold=4.0, max_points=20000,
                        seed=0)
    pairs = [tuple(p) for p in pp.pairs]
    facing = [pairs.index((0, 2)), pairs.index((1, 3))]
    side = [k for k in range(len(pairs)) if k not in facing]
    assert np.all(pp.angle_deg[facing] > 160) and np.all(pp.angle_deg[side] < 100)
    cond = pp.score / pp.num_inliers          # every inlier is in front here
    assert np.all(cond[facing] < 0.8) and np.all(cond[side] > 0.99)
    assert int(np.argmax(pp.score)) in side


def test_verified_start_skips_a_wrong_best_pair():
    sc = geo.make_multiview_scene(80, 17, noise=1.0, outlier_ratio=0.05, seed=6)
    x, obs = _flat(sc)
    K = sc.rig.K
    pp = pairwise_poses(x, K, obs, threshold=4.0, max_points=20000, seed=0)
    # turn the pose of pair (0, 1) by 40° about camera 0's y axis and make it the best-scoring
    k = [tuple(p) for p in pp.pairs].index((0, 1))
    R = pp.R.copy()
    R[k] = geo.rodrigues_to_matrix(np.radians(40.0) * np.array([0.0, 1.0, 0.0])) @ R[k]
    score = pp.score.copy()
    score[k] = score.max() + 1.0
    bad = dataclasses.replace(pp, R=R, score=score)
    R1 = register_cameras(x, K, obs, bad, threshold=16.0)[0]
    assert np.median(_pair_errors(R1, sc.rig.R)) > 5.0          # the unverified start is off
    Rv, tv, reg, X, Xv, order, start, costs = register_verified(x, K, obs, bad, threshold=16.0,
                                                                 f_scale=4.0)
    assert reg.all() and start != [0, 1] and len(costs) == 4
    assert costs["0-1"] > min(costs.values())
    assert np.median(_pair_errors(Rv, sc.rig.R)) < 2.0


def test_nearly_static_turning_person_calibrates():
    # a person turning slowly in place, 100 frames at 50 fps (under 1 px of motion per frame),
    # 4 px noise and 10 % outliers: the two facing cameras (1, 3) had the most inliers and the
    # rig came out 77° off, marked valid, with a median reprojection of 7.9 px
    noise = pose.DetectorNoise(sigma_px=4.0, outlier_ratio=0.1, missing_ratio=0.02,
                               swap_ratio=0.0)
    people = pose.make_people(1, ("turn",), 2400, fps=500.0, noise=noise, seed=716)
    x = people.x[:, 140 + 10 * np.arange(100)]
    r = geo.reconstruct_rig(x, people.rig.K)
    assert r.valid and r.camera_valid.all()
    assert np.median(_pair_errors(r.R, people.rig.R)) < 2.0
    assert r.summary["median_reprojection_px"] < 5.0
    assert sorted(r.summary["start_pair"]) != [1, 3]
